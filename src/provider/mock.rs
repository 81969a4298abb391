//! [`MockProvider`]: an in-memory, deterministic, scriptable provider for tests.
//!
//! It behaves like a well-mannered fulfillment company (idempotent create, updates refused once
//! the order is packed, unknown orders reported as such) and lets a test steer it: move a
//! shipment along ([`MockProvider::advance`]), make it report any raw text
//! ([`MockProvider::advance_raw`]), fail the next calls ([`MockProvider::fail_next`]), slow it
//! down ([`MockProvider::with_latency`]), and read back every call it received
//! ([`MockProvider::calls`]). Available with the `mock` feature.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{CancelOutcome, Capabilities, FulfillmentProvider, UpdateOutcome};
use crate::error::{Error, Operation, Result};
use crate::model::{
    AddressKind, AddressOption, AddressQuery, DeliveryStatus, Order, OrderId, Shipment,
    ShipmentRef, Sku, StatusCode, StatusTable, StockLevel, TrackingUpdate, Waybill, WaybillForm,
};

/// One call the mock received.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Call {
    /// Which operation.
    pub operation: Operation,
    /// The orders concerned (empty for stock and address searches).
    pub order_ids: Vec<OrderId>,
    /// How many items the call carried (shipments for `track`, skus for `stock`, else 1).
    pub batch: usize,
    /// Whether the call returned an error.
    pub failed: bool,
}

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

#[derive(Debug, Default)]
struct State {
    shipments: HashMap<OrderId, MockShipment>,
    next_ref: u64,
    failures: HashMap<Operation, VecDeque<Error>>,
    calls: Vec<Call>,
    stock: BTreeMap<Sku, StockLevel>,
    directory: Vec<AddressOption>,
    now: Option<DateTime<Utc>>,
    clock: Option<SharedClock>,
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
    lock_stage: StatusCode,
    latency: HashMap<Operation, Duration>,
    script: Vec<StatusCode>,
    state: Mutex<State>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl Default for MockProvider {
    fn default() -> Self {
        Self::new()
    }
}

/// Decrements the in-flight counter when a call ends, however it ends.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
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
            lock_stage: StatusCode::Packed,
            latency: HashMap::new(),
            script: Vec::new(),
            state: Mutex::new(State::default()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
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
    pub fn with_lock_stage(mut self, stage: StatusCode) -> Self {
        self.lock_stage = stage;
        self
    }

    /// Delays every call by `latency` (tokio time, so tests may pause the clock).
    pub fn with_latency(mut self, latency: Duration) -> Self {
        for operation in Operation::ALL {
            self.latency.insert(operation, latency);
        }
        self
    }

    /// Delays the calls of one operation by `latency` (e.g. only `track`, for benchmarks).
    pub fn with_operation_latency(mut self, operation: Operation, latency: Duration) -> Self {
        self.latency.insert(operation, latency);
        self
    }

    /// On each `track`, moves every tracked shipment one step along `script`.
    pub fn with_script(mut self, script: Vec<StatusCode>) -> Self {
        self.script = script;
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

    /// Replaces the stock of the given skus (others stay).
    pub fn set_stock(&self, levels: impl IntoIterator<Item = StockLevel>) {
        let mut state = self.lock();
        for level in levels {
            state.stock.insert(level.sku.clone(), level);
        }
    }

    /// Fixes the mock's clock at `now` (statuses get this time); `None` goes back to the
    /// clock of [`Self::with_clock`], or the system clock.
    pub fn set_now(&self, now: Option<DateTime<Utc>>) {
        self.lock().now = now;
    }

    /// Takes the time of new statuses from `clock` — the same one the orchestrator has
    /// (e.g. [`TestClock::clock`](crate::testkit::TestClock::clock)), so a test keeps one
    /// "now".
    pub fn with_clock(self, clock: crate::orchestrator::Clock) -> Self {
        self.lock().clock = Some(SharedClock(clock));
        self
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

    /// Makes the next `times` calls of `operation` fail with `error`.
    pub fn fail_next(&self, operation: Operation, error: Error, times: usize) {
        let mut state = self.lock();
        let queue = state.failures.entry(operation).or_default();
        queue.extend(std::iter::repeat_n(error, times));
    }

    /// Every call received so far, in order.
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

    fn push(state: &mut State, order_id: &OrderId, status: DeliveryStatus) -> Result<()> {
        let shipment = state
            .shipments
            .get_mut(order_id)
            .ok_or_else(|| Error::NotFound {
                what: format!("mock shipment for order {order_id}"),
            })?;
        shipment.statuses.push(status);
        Ok(())
    }

    /// Common prologue of every call: latency, in-flight count, capability, scripted failure.
    /// Records the call; returns the guard to keep while the call runs.
    async fn begin(
        &self,
        operation: Operation,
        order_ids: Vec<OrderId>,
        batch: usize,
    ) -> Result<InFlight<'_>> {
        let now_in_flight = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        let guard = InFlight(&self.in_flight);
        self.max_in_flight
            .fetch_max(now_in_flight, Ordering::SeqCst);
        if let Some(latency) = self.latency.get(&operation) {
            tokio::time::sleep(*latency).await;
        }
        let mut state = self.lock();
        let failure = if !self.capabilities.supports(operation) {
            Some(Error::unsupported(operation, self.kind.clone()))
        } else {
            state
                .failures
                .get_mut(&operation)
                .and_then(VecDeque::pop_front)
        };
        state.calls.push(Call {
            operation,
            order_ids,
            batch,
            failed: failure.is_some(),
        });
        match failure {
            Some(error) => Err(error),
            None => Ok(guard),
        }
    }

    fn too_late(&self, shipment: &MockShipment) -> Option<String> {
        let current = shipment
            .statuses
            .iter()
            .rev()
            .find(|s| s.code != StatusCode::Unknown)?;
        (current.code >= self.lock_stage).then(|| current.original.to_string())
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
        let _guard = self
            .begin(Operation::Create, vec![order.id.clone()], 1)
            .await?;
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

    async fn update_order(
        &self,
        shipment: &ShipmentRef,
        order: &Order,
        waybill: &Waybill,
    ) -> Result<UpdateOutcome> {
        let _guard = self
            .begin(Operation::Update, vec![shipment.order_id.clone()], 1)
            .await?;
        order.validate()?;
        self.form.validate(waybill)?;
        let mut state = self.lock();
        let stored = Self::shipment_mut(&mut state, shipment)?;
        if let Some(state) = self.too_late(stored) {
            return Ok(UpdateOutcome::TooLate { state });
        }
        if stored.order == *order && stored.waybill == *waybill {
            return Ok(UpdateOutcome::NoChange);
        }
        stored.order = order.clone();
        stored.waybill = waybill.clone();
        Ok(UpdateOutcome::Applied)
    }

    async fn cancel_order(&self, shipment: &ShipmentRef) -> Result<CancelOutcome> {
        let _guard = self
            .begin(Operation::Cancel, vec![shipment.order_id.clone()], 1)
            .await?;
        let mut state = self.lock();
        let at = now(&state);
        let stored = Self::shipment_mut(&mut state, shipment)?;
        if let Some(cancelled) = stored.current().filter(|s| s.code == StatusCode::Cancelled) {
            return Ok(CancelOutcome::AlreadyCancelled {
                state: Some(cancelled.original.to_string()),
            });
        }
        if let Some(state) = self.too_late(stored) {
            return Ok(CancelOutcome::TooLate { state });
        }
        let raw = raw_name(StatusCode::Cancelled);
        stored
            .statuses
            .push(DeliveryStatus::new(StatusCode::Cancelled, &raw, at));
        Ok(CancelOutcome::Cancelled { state: Some(raw) })
    }

    async fn track(&self, shipments: &[ShipmentRef]) -> Result<Vec<TrackingUpdate>> {
        let ids = shipments.iter().map(|s| s.order_id.clone()).collect();
        let _guard = self.begin(Operation::Track, ids, shipments.len()).await?;
        let mut state = self.lock();
        let at = now(&state);
        let mut updates = Vec::with_capacity(shipments.len());
        for reference in shipments {
            let Ok(stored) = Self::shipment_mut(&mut state, reference) else {
                updates.push(TrackingUpdate::NotFound {
                    shipment: reference.clone(),
                    at,
                });
                continue;
            };
            if let Some(code) = self.script.get(stored.script_pos) {
                stored.script_pos += 1;
                stored
                    .statuses
                    .push(DeliveryStatus::new(*code, raw_name(*code), at));
            }
            updates.push(TrackingUpdate::Statuses {
                shipment: reference.clone(),
                statuses: stored.statuses.clone(),
            });
        }
        Ok(updates)
    }

    async fn stock(&self, skus: &[Sku]) -> Result<Vec<StockLevel>> {
        let _guard = self.begin(Operation::Stock, Vec::new(), skus.len()).await?;
        let state = self.lock();
        Ok(if skus.is_empty() {
            state.stock.values().cloned().collect()
        } else {
            skus.iter()
                .filter_map(|sku| state.stock.get(sku).cloned())
                .collect()
        })
    }

    async fn search_addresses(&self, query: &AddressQuery) -> Result<Vec<AddressOption>> {
        let _guard = self
            .begin(Operation::SearchAddresses, Vec::new(), 1)
            .await?;
        let state = self.lock();
        let contains =
            |hay: &str, needle: &str| hay.to_lowercase().contains(&needle.to_lowercase());
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
