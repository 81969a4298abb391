//! [`MockProvider`]: an in-memory, deterministic, scriptable provider for tests.
//!
//! It behaves like a well-mannered fulfillment company (idempotent create, updates refused once
//! the order is packed, unknown orders reported as such) and lets a test steer it:
//!
//! - move a shipment along ([`MockProvider::advance`]), make it report any raw text
//!   ([`MockProvider::advance_raw`]), or produce the update a webhook would push
//!   ([`MockProvider::push_update`]);
//! - plan failures ([`MockProvider::inject`] with a [`Fault`]): the next calls, the calls
//!   about one order, or a call that applies its change and then loses the answer;
//! - change its knobs while a test runs: latency ([`MockProvider::set_latency`]), the
//!   tracking script ([`MockProvider::set_script`]), the lock stage
//!   ([`MockProvider::set_lock_stage`]);
//! - read back every call with its arguments ([`MockProvider::calls`], [`Call::payload`]),
//!   including calls the caller gave up on during the latency ([`Call::cancelled`]), and
//!   forget them between phases of a test ([`MockProvider::reset_calls`]);
//! - share the test's clock with the orchestrator ([`MockProvider::with_clock`] and
//!   [`TestClock`](crate::testkit::TestClock)).
//!
//! Available with the `mock` feature.

mod calls;
mod faults;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use calls::{Call, CallPayload};
pub use faults::Fault;

use super::{CancelOutcome, Capabilities, FulfillmentProvider, UpdateOutcome};
use crate::error::{Error, Failure, Operation, Result};
use crate::model::{
    AddressKind, AddressOption, AddressQuery, DeliveryStatus, Order, OrderId, Shipment,
    ShipmentRef, Sku, StatusCode, StatusTable, StockLevel, TrackingUpdate, Waybill, WaybillForm,
};

#[derive(Debug)]
struct MockShipment {
    reference: ShipmentRef,
    order: Order,
    waybill: Waybill,
    statuses: Vec<DeliveryStatus>,
    script_pos: usize,
}

impl MockShipment {
    fn current(&self) -> Option<&DeliveryStatus> {
        self.statuses.last()
    }
}

#[derive(Debug)]
struct State {
    shipments: HashMap<OrderId, MockShipment>,
    next_ref: u64,
    faults: Vec<Fault>,
    calls: Vec<Call>,
    stock: BTreeMap<Sku, StockLevel>,
    directory: Vec<AddressOption>,
    now: Option<DateTime<Utc>>,
    clock: Option<SharedClock>,
    lock_stage: StatusCode,
    latency: HashMap<Operation, Duration>,
    script: Vec<StatusCode>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            shipments: HashMap::new(),
            next_ref: 0,
            faults: Vec::new(),
            calls: Vec::new(),
            stock: BTreeMap::new(),
            directory: Vec::new(),
            now: None,
            clock: None,
            lock_stage: StatusCode::Packed,
            latency: HashMap::new(),
            script: Vec::new(),
        }
    }
}

impl State {
    /// Takes one use of the first fault that fails a whole call.
    fn take_call_fault(&mut self, operation: Operation, order_ids: &[OrderId]) -> Option<Fault> {
        let fault = self
            .faults
            .iter_mut()
            .find(|f| f.fails_call(operation, order_ids))?;
        fault.times -= 1;
        let taken = fault.clone();
        self.faults.retain(|f| f.times > 0);
        Some(taken)
    }

    /// Takes one use of the first fault that fails `order_id`'s shipment in a `track`.
    fn take_shipment_fault(&mut self, order_id: &OrderId) -> Option<Fault> {
        let fault = self
            .faults
            .iter_mut()
            .find(|f| f.fails_shipment(order_id))?;
        fault.times -= 1;
        let taken = fault.clone();
        self.faults.retain(|f| f.times > 0);
        Some(taken)
    }
}

/// The orchestrator's clock type, shared with a test (see [`MockProvider::with_clock`]).
#[derive(Clone)]
struct SharedClock(crate::orchestrator::Clock);

impl std::fmt::Debug for SharedClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedClock")
    }
}

/// An in-memory provider for tests; see the [module docs](self).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> fulfillkit::Result<()> {
/// use fulfillkit::provider::{FulfillmentProvider, UpdateOutcome, mock::MockProvider};
/// use fulfillkit::model::{StatusCode, Waybill};
///
/// let mock = MockProvider::new();
/// let order = fulfillkit::testkit::sample_order("SO-1");
/// let shipment = mock.create_order(&order, &Waybill::new()).await?;
/// // A second create returns the same shipment.
/// assert_eq!(mock.create_order(&order, &Waybill::new()).await?, shipment);
/// assert_eq!(mock.created_count(), 1);
///
/// // Once packed, the order can no longer be changed.
/// mock.advance(&order.id, StatusCode::Packed)?;
/// let outcome = mock.update_order(&shipment.reference, &order, &Waybill::new()).await?;
/// assert!(matches!(outcome, UpdateOutcome::TooLate { .. }));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct MockProvider {
    kind: String,
    capabilities: Capabilities,
    form: WaybillForm,
    table: StatusTable,
    state: Mutex<State>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    next_call: AtomicU64,
}

impl Default for MockProvider {
    fn default() -> Self {
        Self::new()
    }
}

/// A call in progress: keeps the in-flight count, and marks the recorded call cancelled if
/// the caller drops it before [`CallGuard::finish`].
struct CallGuard<'a> {
    mock: &'a MockProvider,
    seq: u64,
    finished: bool,
}

impl CallGuard<'_> {
    /// Records how the call ended and hands its result back.
    fn finish<T>(mut self, result: Result<T>) -> Result<T> {
        self.finished = true;
        let failed = result.is_err();
        self.mock.with_call(self.seq, |call| call.failed = failed);
        result
    }
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        self.mock.in_flight.fetch_sub(1, Ordering::SeqCst);
        if !self.finished {
            self.mock.with_call(self.seq, |call| call.cancelled = true);
        }
    }
}

/// What a started call must do about a planned fault.
struct Started<'a> {
    guard: CallGuard<'a>,
    /// Fail before applying.
    before: Option<Error>,
    /// Apply, then fail.
    after: Option<Error>,
}

/// The raw text the mock reports for `code`: its variant name, e.g. `InTransit`.
fn raw_name(code: StatusCode) -> String {
    format!("{code:?}")
}

impl MockProvider {
    /// A mock of kind `mock` supporting every operation, tracking batches of 50 and stock
    /// batches of 100, refusing changes from `Packed` on.
    pub fn new() -> Self {
        let table = StatusCode::ALL
            .into_iter()
            .filter(|c| *c != StatusCode::Unknown)
            .fold(StatusTable::new(), |t, c| t.with(&raw_name(c), c));
        Self {
            kind: "mock".into(),
            capabilities: Capabilities::all(50, 100),
            form: WaybillForm::default(),
            table,
            state: Mutex::new(State::default()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            next_call: AtomicU64::new(0),
        }
    }

    /// Sets the kind reported by [`FulfillmentProvider::kind`].
    pub fn with_kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = kind.into();
        self
    }

    /// Sets the capabilities; unsupported operations return [`Error::Unsupported`].
    pub fn with_capabilities(mut self, capabilities: Capabilities) -> Self {
        self.capabilities = capabilities;
        self
    }

    /// Sets the waybill form.
    pub fn with_waybill_form(mut self, form: WaybillForm) -> Self {
        self.form = form;
        self
    }

    /// Sets the first status at which updates and cancels are refused (default `Packed`).
    pub fn with_lock_stage(self, stage: StatusCode) -> Self {
        self.set_lock_stage(stage);
        self
    }

    /// Delays every call by `latency` (tokio time, so tests may pause the clock).
    pub fn with_latency(self, latency: Duration) -> Self {
        self.set_latency(latency);
        self
    }

    /// Delays the calls of one operation by `latency` (e.g. only `track`, for benchmarks).
    pub fn with_operation_latency(self, operation: Operation, latency: Duration) -> Self {
        self.set_operation_latency(operation, latency);
        self
    }

    /// On each `track`, moves every tracked shipment one step along `script`.
    pub fn with_script(self, script: Vec<StatusCode>) -> Self {
        self.set_script(script);
        self
    }

    /// Sets the stock table.
    pub fn with_stock(self, levels: impl IntoIterator<Item = StockLevel>) -> Self {
        self.set_stock(levels);
        self
    }

    /// Sets the address directory.
    pub fn with_directory(self, entries: Vec<AddressOption>) -> Self {
        self.lock().directory = entries;
        self
    }

    /// Takes the time of new statuses from `clock` — the same one the orchestrator has
    /// (e.g. [`TestClock::clock`](crate::testkit::TestClock::clock)), so a test keeps one
    /// "now".
    pub fn with_clock(self, clock: crate::orchestrator::Clock) -> Self {
        self.lock().clock = Some(SharedClock(clock));
        self
    }

    /// The first status at which updates and cancels are refused.
    pub fn lock_stage(&self) -> StatusCode {
        self.lock().lock_stage
    }

    /// Changes the lock stage from now on (statuses already reported are judged by it too).
    pub fn set_lock_stage(&self, stage: StatusCode) {
        self.lock().lock_stage = stage;
    }

    /// Delays every call by `latency` from now on (calls already waiting keep theirs).
    pub fn set_latency(&self, latency: Duration) {
        let mut state = self.lock();
        for operation in Operation::ALL {
            state.latency.insert(operation, latency);
        }
    }

    /// Delays the calls of one operation by `latency` from now on.
    pub fn set_operation_latency(&self, operation: Operation, latency: Duration) {
        self.lock().latency.insert(operation, latency);
    }

    /// Replaces the tracking script: from the next `track` on, every tracked shipment moves
    /// one step along `script`, starting from its first step.
    pub fn set_script(&self, script: Vec<StatusCode>) {
        let mut state = self.lock();
        state.script = script;
        for shipment in state.shipments.values_mut() {
            shipment.script_pos = 0;
        }
    }

    /// Replaces the stock of the given skus (others stay).
    pub fn set_stock(&self, levels: impl IntoIterator<Item = StockLevel>) {
        let mut state = self.lock();
        for level in levels {
            state.stock.insert(level.sku.clone(), level);
        }
    }

    /// Adds entries to the address directory; an entry with the id of one already there
    /// replaces it.
    pub fn add_directory_entries(&self, entries: impl IntoIterator<Item = AddressOption>) {
        let mut state = self.lock();
        for entry in entries {
            match state.directory.iter_mut().find(|e| e.id == entry.id) {
                Some(existing) => *existing = entry,
                None => state.directory.push(entry),
            }
        }
    }

    /// Fixes the mock's clock at `now` (statuses get this time); `None` goes back to the
    /// clock of [`Self::with_clock`], or the system clock.
    pub fn set_now(&self, now: Option<DateTime<Utc>>) {
        self.lock().now = now;
    }

    /// Moves the shipment of `order_id` to `code`, reported with the raw text of the code's
    /// name (e.g. `InTransit`).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] if the order was never created.
    pub fn advance(&self, order_id: &OrderId, code: StatusCode) -> Result<()> {
        let mut state = self.lock();
        let at = now(&state);
        Self::push(
            &mut state,
            order_id,
            DeliveryStatus::new(code, raw_name(code), at),
        )
    }

    /// Makes the shipment report the raw status `raw`, mapped through the mock's status table
    /// (code names such as `Delivered`); anything else becomes `Unknown` with `raw` kept.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] if the order was never created.
    pub fn advance_raw(&self, order_id: &OrderId, raw: &str) -> Result<()> {
        let mut state = self.lock();
        let status = self.table.status(raw, now(&state));
        Self::push(&mut state, order_id, status)
    }

    /// Appends a fully specified status (with pickup point, carrier, ...).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] if the order was never created.
    pub fn push_status(&self, order_id: &OrderId, status: DeliveryStatus) -> Result<()> {
        Self::push(&mut self.lock(), order_id, status)
    }

    /// The [`TrackingUpdate`] a webhook of this provider would push for `order_id` now: its
    /// shipment with every status so far. Hand it to
    /// [`Orchestrator::ingest_tracking`](crate::orchestrator::Orchestrator::ingest_tracking)
    /// as a host's webhook handler would. Not recorded as a call (the provider pushed it;
    /// nobody asked).
    ///
    /// ```
    /// # fn main() -> fulfillkit::Result<()> {
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use fulfillkit::model::{StatusCode, Waybill};
    /// use fulfillkit::provider::{FulfillmentProvider, mock::MockProvider};
    ///
    /// let mock = MockProvider::new();
    /// let order = fulfillkit::testkit::sample_order("SO-1");
    /// mock.create_order(&order, &Waybill::new()).await?;
    /// mock.advance(&order.id, StatusCode::Delivered)?;
    /// let pushed = mock.push_update(&order.id)?;
    /// assert_eq!(pushed.statuses().last().map(|s| s.code), Some(StatusCode::Delivered));
    /// # Ok(()) })
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] if the order was never created.
    pub fn push_update(&self, order_id: &OrderId) -> Result<TrackingUpdate> {
        let state = self.lock();
        let shipment = state
            .shipments
            .get(order_id)
            .ok_or_else(|| not_found(order_id))?;
        Ok(TrackingUpdate::Statuses {
            shipment: shipment.reference.clone(),
            statuses: shipment.statuses.clone(),
        })
    }

    /// Plans a failure (see [`Fault`]). Faults are used in the order they were planned.
    pub fn inject(&self, fault: Fault) {
        if fault.times > 0 {
            self.lock().faults.push(fault);
        }
    }

    /// Makes the next `times` calls of `operation` fail with `error`, before applying them
    /// (shorthand for [`Self::inject`] with [`Fault::new`]).
    pub fn fail_next(&self, operation: Operation, error: Error, times: usize) {
        self.inject(Fault::new(operation, error).times(times));
    }

    /// Forgets every planned failure not used yet.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Every call received so far, in the order they arrived.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// The calls of one operation.
    pub fn calls_of(&self, operation: Operation) -> Vec<Call> {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.operation == operation)
            .cloned()
            .collect()
    }

    /// Returns the calls received so far and forgets them, with the in-flight high-water
    /// mark ([`Self::max_in_flight`]): the next phase of a test starts from a clean record.
    pub fn take_calls(&self) -> Vec<Call> {
        let calls = std::mem::take(&mut self.lock().calls);
        self.max_in_flight
            .store(self.in_flight.load(Ordering::SeqCst), Ordering::SeqCst);
        calls
    }

    /// Forgets the calls received so far (see [`Self::take_calls`]).
    pub fn reset_calls(&self) {
        drop(self.take_calls());
    }

    /// The largest batch any call of `operation` carried (0 if none).
    pub fn largest_batch(&self, operation: Operation) -> usize {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.operation == operation)
            .map(|c| c.batch)
            .max()
            .unwrap_or(0)
    }

    /// The most calls that were in progress at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    /// How many distinct orders were created (a repeated create does not count).
    pub fn created_count(&self) -> usize {
        self.lock().shipments.len()
    }

    /// The order and waybill the mock holds for `order_id`, as last created or updated.
    pub fn stored_order(&self, order_id: &OrderId) -> Option<(Order, Waybill)> {
        self.lock()
            .shipments
            .get(order_id)
            .map(|s| (s.order.clone(), s.waybill.clone()))
    }

    /// The statuses the mock holds for `order_id`, oldest first.
    pub fn statuses(&self, order_id: &OrderId) -> Vec<DeliveryStatus> {
        self.lock()
            .shipments
            .get(order_id)
            .map(|s| s.statuses.clone())
            .unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock (in a test assertion) must not hide the mock's state
        // from the rest of the test.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with_call(&self, seq: u64, change: impl FnOnce(&mut Call)) {
        if let Some(call) = self.lock().calls.iter_mut().rev().find(|c| c.seq == seq) {
            change(call);
        }
    }

    fn push(state: &mut State, order_id: &OrderId, status: DeliveryStatus) -> Result<()> {
        let shipment = state
            .shipments
            .get_mut(order_id)
            .ok_or_else(|| not_found(order_id))?;
        shipment.statuses.push(status);
        Ok(())
    }

    /// Common prologue of every call: records it, counts it in flight, waits the latency,
    /// then decides the failure (capability first, then planned faults).
    async fn begin(&self, payload: CallPayload) -> Started<'_> {
        let operation = payload.operation();
        let order_ids = payload.order_ids();
        let seq = self.next_call.fetch_add(1, Ordering::SeqCst);
        let now_in_flight = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        let guard = CallGuard {
            mock: self,
            seq,
            finished: false,
        };
        self.max_in_flight
            .fetch_max(now_in_flight, Ordering::SeqCst);
        let latency = {
            let mut state = self.lock();
            state.calls.push(Call {
                operation,
                order_ids: order_ids.clone(),
                batch: payload.batch(),
                failed: false,
                cancelled: false,
                payload,
                seq,
            });
            state.latency.get(&operation).copied()
        };
        if let Some(latency) = latency {
            tokio::time::sleep(latency).await;
        }
        if !self.capabilities.supports(operation) {
            return Started {
                guard,
                before: Some(Error::unsupported(operation, self.kind.clone())),
                after: None,
            };
        }
        let fault = self.lock().take_call_fault(operation, &order_ids);
        let (before, after) = match fault {
            Some(f) if f.after_applying => (None, Some(f.error)),
            Some(f) => (Some(f.error), None),
            None => (None, None),
        };
        Started {
            guard,
            before,
            after,
        }
    }

    /// Runs `apply` unless a fault fails the call first; a fault after applying replaces a
    /// successful answer.
    fn answer<T>(started: Started<'_>, apply: impl FnOnce() -> Result<T>) -> Result<T> {
        let Started {
            guard,
            before,
            after,
        } = started;
        if let Some(error) = before {
            return guard.finish(Err(error));
        }
        let result = apply();
        let result = match (result, after) {
            (Ok(_), Some(error)) => Err(error),
            (result, _) => result,
        };
        guard.finish(result)
    }

    /// Whether the shipment's furthest known stage is at or past the lock stage: a status the
    /// table does not know never re-opens editing.
    fn too_late(lock_stage: StatusCode, shipment: &MockShipment) -> Option<String> {
        let current = shipment
            .statuses
            .iter()
            .rev()
            .find(|s| s.code != StatusCode::Unknown)?;
        (current.code >= lock_stage).then(|| current.original.to_string())
    }

    fn shipment_mut<'s>(
        state: &'s mut State,
        reference: &ShipmentRef,
    ) -> Result<&'s mut MockShipment> {
        state
            .shipments
            .get_mut(&reference.order_id)
            .filter(|s| s.reference == *reference)
            .ok_or_else(|| Error::NotFound {
                what: format!(
                    "mock shipment {} of order {}",
                    reference.provider_ref, reference.order_id
                ),
            })
    }

    fn apply_create(&self, order: &Order, waybill: &Waybill) -> Result<Shipment> {
        order.validate()?;
        self.form.validate(waybill)?;
        let mut state = self.lock();
        let at = now(&state);
        if let Some(existing) = state.shipments.get(&order.id) {
            return Ok(Shipment {
                reference: existing.reference.clone(),
                tracking_number: Some(existing.reference.provider_ref.clone()),
                status: existing.statuses.first().cloned(),
            });
        }
        state.next_ref += 1;
        let reference = ShipmentRef::new(order.id.clone(), format!("MOCK-{:06}", state.next_ref));
        let first =
            DeliveryStatus::new(StatusCode::Registered, raw_name(StatusCode::Registered), at);
        state.shipments.insert(
            order.id.clone(),
            MockShipment {
                reference: reference.clone(),
                order: order.clone(),
                waybill: waybill.clone(),
                statuses: vec![first.clone()],
                script_pos: 0,
            },
        );
        Ok(Shipment {
            tracking_number: Some(reference.provider_ref.clone()),
            reference,
            status: Some(first),
        })
    }

    fn apply_update(
        &self,
        shipment: &ShipmentRef,
        order: &Order,
        waybill: &Waybill,
    ) -> Result<UpdateOutcome> {
        order.validate()?;
        self.form.validate(waybill)?;
        let mut state = self.lock();
        let lock_stage = state.lock_stage;
        let stored = Self::shipment_mut(&mut state, shipment)?;
        if let Some(state) = Self::too_late(lock_stage, stored) {
            return Ok(UpdateOutcome::TooLate { state });
        }
        if stored.order == *order && stored.waybill == *waybill {
            return Ok(UpdateOutcome::NoChange);
        }
        stored.order = order.clone();
        stored.waybill = waybill.clone();
        Ok(UpdateOutcome::Applied)
    }

    fn apply_cancel(&self, shipment: &ShipmentRef) -> Result<CancelOutcome> {
        let mut state = self.lock();
        let at = now(&state);
        let lock_stage = state.lock_stage;
        let stored = Self::shipment_mut(&mut state, shipment)?;
        if let Some(cancelled) = stored.current().filter(|s| s.code == StatusCode::Cancelled) {
            return Ok(CancelOutcome::AlreadyCancelled {
                state: Some(cancelled.original.to_string()),
            });
        }
        if let Some(state) = Self::too_late(lock_stage, stored) {
            return Ok(CancelOutcome::TooLate { state });
        }
        let raw = raw_name(StatusCode::Cancelled);
        stored
            .statuses
            .push(DeliveryStatus::new(StatusCode::Cancelled, &raw, at));
        Ok(CancelOutcome::Cancelled { state: Some(raw) })
    }

    fn apply_track(&self, shipments: &[ShipmentRef]) -> Result<Vec<TrackingUpdate>> {
        let mut state = self.lock();
        let at = now(&state);
        let script = state.script.clone();
        let mut updates = Vec::with_capacity(shipments.len());
        for reference in shipments {
            let fault = state.take_shipment_fault(&reference.order_id);
            if let Some(fault) = fault.as_ref().filter(|f| !f.after_applying) {
                updates.push(failed(reference, &fault.error));
                continue;
            }
            let Ok(stored) = Self::shipment_mut(&mut state, reference) else {
                updates.push(TrackingUpdate::NotFound {
                    shipment: reference.clone(),
                    at,
                });
                continue;
            };
            if let Some(code) = script.get(stored.script_pos) {
                stored.script_pos += 1;
                stored
                    .statuses
                    .push(DeliveryStatus::new(*code, raw_name(*code), at));
            }
            updates.push(match fault {
                Some(fault) => failed(reference, &fault.error),
                None => TrackingUpdate::Statuses {
                    shipment: reference.clone(),
                    statuses: stored.statuses.clone(),
                },
            });
        }
        Ok(updates)
    }

    fn apply_stock(&self, skus: &[Sku]) -> Result<Vec<StockLevel>> {
        let state = self.lock();
        Ok(if skus.is_empty() {
            state.stock.values().cloned().collect()
        } else {
            skus.iter()
                .filter_map(|sku| state.stock.get(sku).cloned())
                .collect()
        })
    }

    fn apply_search(&self, query: &AddressQuery) -> Result<Vec<AddressOption>> {
        let state = self.lock();
        let contains =
            |hay: &str, needle: &str| hay.to_lowercase().contains(&needle.to_lowercase());
        // 0 means everything, as `AddressQuery::limit` documents.
        let limit = if query.limit == 0 {
            usize::MAX
        } else {
            query.limit
        };
        Ok(state
            .directory
            .iter()
            .filter(|e| e.address.country.eq_ignore_ascii_case(&query.country))
            .filter(|e| {
                query
                    .city
                    .as_deref()
                    .is_none_or(|c| contains(&e.address.city, c))
            })
            .filter(|e| {
                query
                    .postcode
                    .as_deref()
                    .is_none_or(|p| e.address.postcode.starts_with(p))
            })
            .filter(|e| {
                query.text.as_deref().is_none_or(|t| {
                    contains(&e.label, t)
                        || contains(&e.id, t)
                        || e.address.lines.iter().any(|l| contains(l, t))
                })
            })
            .filter(|e| !query.pickup_points_only || e.kind != AddressKind::Door)
            .take(limit)
            .cloned()
            .collect())
    }
}

fn not_found(order_id: &OrderId) -> Error {
    Error::NotFound {
        what: format!("mock shipment for order {order_id}"),
    }
}

fn failed(reference: &ShipmentRef, error: &Error) -> TrackingUpdate {
    TrackingUpdate::Failed {
        shipment: reference.clone(),
        failure: Failure::from(error),
    }
}

fn now(state: &State) -> DateTime<Utc> {
    match (&state.now, &state.clock) {
        (Some(now), _) => *now,
        (None, Some(clock)) => (clock.0)(),
        (None, None) => Utc::now(),
    }
}

#[async_trait]
impl FulfillmentProvider for MockProvider {
    fn kind(&self) -> &str {
        &self.kind
    }

    fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    fn waybill_form(&self) -> Cow<'_, WaybillForm> {
        Cow::Borrowed(&self.form)
    }

    async fn create_order(&self, order: &Order, waybill: &Waybill) -> Result<Shipment> {
        let started = self
            .begin(CallPayload::Create {
                order: Box::new(order.clone()),
                waybill: waybill.clone(),
            })
            .await;
        Self::answer(started, || self.apply_create(order, waybill))
    }

    async fn update_order(
        &self,
        shipment: &ShipmentRef,
        order: &Order,
        waybill: &Waybill,
    ) -> Result<UpdateOutcome> {
        let started = self
            .begin(CallPayload::Update {
                shipment: shipment.clone(),
                order: Box::new(order.clone()),
                waybill: waybill.clone(),
            })
            .await;
        Self::answer(started, || self.apply_update(shipment, order, waybill))
    }

    async fn cancel_order(&self, shipment: &ShipmentRef) -> Result<CancelOutcome> {
        let started = self
            .begin(CallPayload::Cancel {
                shipment: shipment.clone(),
            })
            .await;
        Self::answer(started, || self.apply_cancel(shipment))
    }

    async fn track(&self, shipments: &[ShipmentRef]) -> Result<Vec<TrackingUpdate>> {
        let started = self
            .begin(CallPayload::Track {
                shipments: shipments.to_vec(),
            })
            .await;
        Self::answer(started, || self.apply_track(shipments))
    }

    async fn stock(&self, skus: &[Sku]) -> Result<Vec<StockLevel>> {
        let started = self
            .begin(CallPayload::Stock {
                skus: skus.to_vec(),
            })
            .await;
        Self::answer(started, || self.apply_stock(skus))
    }

    async fn search_addresses(&self, query: &AddressQuery) -> Result<Vec<AddressOption>> {
        let started = self
            .begin(CallPayload::SearchAddresses {
                query: query.clone(),
            })
            .await;
        Self::answer(started, || self.apply_search(query))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Address;
    use crate::testkit::sample_order;

    #[tokio::test]
    async fn create_is_idempotent_and_recorded() {
        let mock = MockProvider::new();
        let order = sample_order("SO-1");
        let a = mock.create_order(&order, &Waybill::new()).await.unwrap();
        let b = mock.create_order(&order, &Waybill::new()).await.unwrap();
        assert_eq!(a, b);
        assert_eq!(mock.created_count(), 1);
        assert_eq!(mock.calls_of(Operation::Create).len(), 2);
        assert_eq!(a.reference.provider_ref, "MOCK-000001");
    }

    #[tokio::test]
    async fn invalid_order_is_refused_and_nothing_created() {
        let mock = MockProvider::new();
        let mut order = sample_order("SO-1");
        order.lines.clear();
        let err = mock
            .create_order(&order, &Waybill::new())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Validation { .. }));
        assert_eq!(mock.created_count(), 0);
    }

    #[tokio::test]
    async fn progression_and_lock() {
        let mock = MockProvider::new();
        let order = sample_order("SO-1");
        let s = mock.create_order(&order, &Waybill::new()).await.unwrap();
        let mut edited = order.clone();
        edited.customer.name = "Someone Else".into();
        assert_eq!(
            mock.update_order(&s.reference, &edited, &Waybill::new())
                .await
                .unwrap(),
            UpdateOutcome::Applied
        );
        assert_eq!(
            mock.update_order(&s.reference, &edited, &Waybill::new())
                .await
                .unwrap(),
            UpdateOutcome::NoChange
        );
        mock.advance(&order.id, StatusCode::Accepted).unwrap();
        mock.advance(&order.id, StatusCode::Packed).unwrap();
        // An unknown status after the lock does not unlock.
        mock.advance_raw(&order.id, "Strange carrier text").unwrap();
        assert_eq!(
            mock.update_order(&s.reference, &order, &Waybill::new())
                .await
                .unwrap(),
            UpdateOutcome::TooLate {
                state: "Packed".into()
            }
        );
        assert_eq!(
            mock.cancel_order(&s.reference).await.unwrap(),
            CancelOutcome::TooLate {
                state: "Packed".into()
            }
        );
        let tracked = mock
            .track(std::slice::from_ref(&s.reference))
            .await
            .unwrap();
        let codes: Vec<_> = tracked[0].statuses().iter().map(|s| s.code).collect();
        assert_eq!(
            codes,
            [
                StatusCode::Registered,
                StatusCode::Accepted,
                StatusCode::Packed,
                StatusCode::Unknown
            ]
        );
        assert_eq!(tracked[0].statuses()[3].original, "Strange carrier text");
    }

    #[tokio::test]
    async fn cancel_before_lock_is_idempotent() {
        let mock = MockProvider::new();
        let s = mock
            .create_order(&sample_order("SO-1"), &Waybill::new())
            .await
            .unwrap();
        assert_eq!(
            mock.cancel_order(&s.reference).await.unwrap(),
            CancelOutcome::Cancelled {
                state: Some("Cancelled".into())
            }
        );
        assert_eq!(
            mock.cancel_order(&s.reference).await.unwrap(),
            CancelOutcome::AlreadyCancelled {
                state: Some("Cancelled".into())
            }
        );
        let statuses = mock.statuses(&s.reference.order_id);
        assert_eq!(statuses.last().unwrap().code, StatusCode::Cancelled);
        assert_eq!(statuses.len(), 2);
    }

    #[tokio::test]
    async fn failure_injection_fails_exactly_n_times() {
        let mock = MockProvider::new();
        let order = sample_order("SO-1");
        mock.fail_next(
            Operation::Create,
            Error::Timeout {
                what: "create".into(),
            },
            2,
        );
        for _ in 0..2 {
            let err = mock
                .create_order(&order, &Waybill::new())
                .await
                .unwrap_err();
            assert!(matches!(err, Error::Timeout { .. }));
        }
        mock.create_order(&order, &Waybill::new()).await.unwrap();
        let failed: Vec<bool> = mock.calls().iter().map(|c| c.failed).collect();
        assert_eq!(failed, [true, true, false]);
        assert_eq!(mock.created_count(), 1);
    }

    #[tokio::test]
    async fn script_advances_on_each_track_and_unknown_refs_are_not_found() {
        let mock =
            MockProvider::new().with_script(vec![StatusCode::Accepted, StatusCode::InTransit]);
        let s = mock
            .create_order(&sample_order("SO-1"), &Waybill::new())
            .await
            .unwrap();
        let ghost = ShipmentRef::new("SO-404", "MOCK-999999");
        let refs = [s.reference.clone(), ghost.clone()];
        let first = mock.track(&refs).await.unwrap();
        assert_eq!(
            first[0].statuses().last().unwrap().code,
            StatusCode::Accepted
        );
        assert!(
            matches!(&first[1], TrackingUpdate::NotFound { shipment, .. } if *shipment == ghost)
        );
        mock.track(&refs).await.unwrap();
        let third = mock.track(&refs).await.unwrap();
        assert_eq!(
            third[0].statuses().len(),
            3,
            "script exhausted after two steps"
        );
        assert_eq!(mock.largest_batch(Operation::Track), 2);
    }

    #[tokio::test]
    async fn unsupported_capability_is_declared_and_returned() {
        let mock = MockProvider::new().with_capabilities(Capabilities::new(10, 10));
        let err = mock.stock(&[]).await.unwrap_err();
        assert!(matches!(
            err,
            Error::Unsupported {
                operation: Operation::Stock,
                ..
            }
        ));
        let err = mock
            .search_addresses(&AddressQuery::in_country("PL"))
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            Error::Unsupported {
                operation: Operation::SearchAddresses,
                ..
            }
        ));
    }

    #[tokio::test]
    async fn stock_and_directory() {
        let entry = |id: &str, city: &str, kind| AddressOption {
            id: id.into(),
            kind,
            label: format!("Point {id}"),
            address: Address {
                country: "PL".into(),
                region: None,
                city: city.into(),
                postcode: "00-001".into(),
                lines: vec!["ul. Prosta 1".into()],
                provider_address_id: None,
                pickup_point_id: None,
            },
            carrier: None,
            opening_hours: None,
        };
        let mock = MockProvider::new()
            .with_stock([StockLevel::new("A", 5), StockLevel::new("B", 0)])
            .with_directory(vec![
                entry("WAW01A", "Warszawa", AddressKind::Locker),
                entry("KRK01", "Kraków", AddressKind::Door),
            ]);
        let all = mock.stock(&[]).await.unwrap();
        assert_eq!(all.len(), 2);
        let some = mock.stock(&["B".into(), "Z".into()]).await.unwrap();
        assert_eq!(some, vec![StockLevel::new("B", 0)]);
        let found = mock
            .search_addresses(&AddressQuery::in_country("pl").with_city("warsz"))
            .await
            .unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].id, "WAW01A");
        let points = AddressQuery {
            pickup_points_only: true,
            ..AddressQuery::in_country("PL")
        };
        assert_eq!(mock.search_addresses(&points).await.unwrap().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn latency_and_in_flight_are_measured() {
        let mock = std::sync::Arc::new(MockProvider::new().with_latency(Duration::from_millis(20)));
        let mut tasks = Vec::new();
        for i in 0..5 {
            let mock = mock.clone();
            tasks.push(tokio::spawn(async move {
                mock.create_order(&sample_order(&format!("SO-{i}")), &Waybill::new())
                    .await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(mock.max_in_flight(), 5);
        assert_eq!(mock.created_count(), 5);
    }
}
