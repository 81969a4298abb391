//! The orchestrator: what a backend actually calls.
//!
//! It holds the configured [`Instance`]s, routes each order to one by [`RoutingRule`]s,
//! fills and checks the waybill, exports the order when it is confirmed, and keeps a
//! [`ShipmentRecord`] per order in the host's [`Store`], telling the host about every change
//! through its [`EventSink`]. It talks to providers only through the
//! [`FulfillmentProvider`](crate::provider::FulfillmentProvider) trait and never builds an HTTP
//! request itself.
//!
//! Exactly-once export: a per-order lock inside the process, and a compare-and-swap on the
//! record's version in the store across processes, so concurrent confirmations of one order
//! (two requests, or two replicas sharing a store) make one provider call.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> fulfillkit::Result<()> {
//! use std::sync::Arc;
//! use fulfillkit::orchestrator::{
//!     AcceptedPayment, Condition, ExportOutcome, Instance, InstanceSettings, Orchestrator,
//!     PaymentKind, RoutingRule,
//! };
//! use fulfillkit::provider::mock::MockProvider;
//!
//! let prepaid = Instance::new("it-prepaid", "Italy, prepaid", Arc::new(MockProvider::new()))
//!     .with_settings(InstanceSettings::default().with_accepted_payment(AcceptedPayment::Prepaid));
//! let orchestrator = Orchestrator::builder()
//!     .instance(prepaid)
//!     .rule(RoutingRule::new("italy", Condition::country(["IT"]), "it-prepaid"))
//!     .build()?;
//!
//! let order = fulfillkit::testkit::sample_order("SO-1");
//! assert_eq!(orchestrator.route(&order)?.instance.as_str(), "it-prepaid");
//! match orchestrator.on_order_confirmed(&order).await? {
//!     ExportOutcome::Exported { instance, shipment } => println!("{instance}: {}", shipment.reference.provider_ref),
//!     other => panic!("unexpected {other:?}"),
//! }
//! // Confirming again never creates a second shipment.
//! assert!(matches!(orchestrator.on_order_confirmed(&order).await?, ExportOutcome::AlreadyExported { .. }));
//! # Ok(()) }
//! ```

mod builder;
mod cancellation;
mod changes;
mod directory;
mod events;
mod exceptions;
mod export;
mod instance;
mod locks;
mod numbering;
mod operator;
mod recovery;
mod routing;
mod stock;
mod tracking;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

pub use builder::OrchestratorBuilder;
pub use changes::{ChangeOutcome, UpdateRetryReport};
pub use directory::DEFAULT_ADDRESS_LIMIT;
pub use events::{ChannelSink, CollectingSink, EventSink, NullSink};
pub use exceptions::ExceptionPage;
pub use export::ExportOutcome;
pub use instance::{AcceptedPayment, Instance, InstanceSettings};
pub use numbering::provider_order_id;
pub use operator::FailedExportPage;
pub use recovery::{ReconcileReport, RetryLimits, RetryReport};
pub use routing::{Condition, PaymentKind, Predicate, Route, RoutingRule};
pub use stock::{LineStock, OrderStock, StockSyncFailure, StockSyncReport};
// The records and the store live in `crate::store`, the events in `crate::model`; the
// orchestrator's API names them, so they are at hand here too.
pub use crate::model::{Automation, Event, EventId, EventKind};
pub use crate::store::{
    ExceptionCursor, ExceptionFilter, ExportState, Fingerprint, Fingerprints, MemoryStore,
    PendingUpdate, ShipmentRecord, Store,
};
pub use tracking::{PollPolicy, SyncReport, TrackingError};

pub use crate::model::StatusOrder;

pub(crate) use cancellation::mark_cancelled;
use directory::DirectoryCache;
use export::{Target, Trigger};
use stock::StockCache;

use crate::error::{Error, Operation, Result};
use crate::model::{InstanceId, Order, OrderException, OrderId, Waybill, WaybillForm};
use crate::store::Effects;
use crate::telemetry;

/// The orchestrator's source of "now"; inject one in tests.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Attempts of a compare-and-swap loop before giving up with the conflict.
const CAS_ATTEMPTS: usize = 16;
/// Page size when walking the store.
const PAGE: usize = 500;

/// Connects the host to its fulfillment instances; see the [module docs](self).
///
/// Cloning is cheap and gives another handle to the same orchestrator (instances, store,
/// caches and per-order locks are shared), so it can be moved into spawned tasks.
#[derive(Clone)]
pub struct Orchestrator {
    inner: Arc<Inner>,
}

/// What an [`Orchestrator`] handle shares.
struct Inner {
    instances: Vec<Instance>,
    by_id: HashMap<InstanceId, usize>,
    rules: Vec<RoutingRule>,
    store: Arc<dyn Store>,
    events: Arc<dyn EventSink>,
    clock: Clock,
    stale_intent: Duration,
    stock_cache: StockCache,
    directory_cache: DirectoryCache,
    poll_policy: PollPolicy,
    tracking_concurrency: usize,
    retry_limits: RetryLimits,
    locks: locks::OrderLocks,
    /// Names this orchestrator in the export intents, claims and leases it writes.
    owner: String,
    /// How long a tracking claim holds (a replica that dies mid-round holds its shipments
    /// this long).
    claim_ttl: Duration,
    /// How long an order's edit lease holds, and how long a caller waits for another's.
    edit_lease: EditLease,
    /// How old an undelivered event must be before `deliver_pending_events` takes it.
    outbox_grace: Duration,
}

/// The edit lease settings ([`OrchestratorBuilder::edit_lease`]).
#[derive(Debug, Clone, Copy)]
struct EditLease {
    ttl: Duration,
    wait: Duration,
}

/// `now + ttl`, or the last representable time when that is beyond it.
fn claim_until(now: DateTime<Utc>, ttl: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(ttl)
        .ok()
        .and_then(|ttl| now.checked_add_signed(ttl))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl fmt::Debug for Orchestrator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Orchestrator")
            .field("instances", &self.inner.instances)
            .field("rules", &self.inner.rules)
            .finish_non_exhaustive()
    }
}

impl Orchestrator {
    /// A builder with no instances, no rules, a [`MemoryStore`] and a [`NullSink`].
    pub fn builder() -> OrchestratorBuilder {
        OrchestratorBuilder::new()
    }

    /// The instances, in registration order.
    pub fn instances(&self) -> &[Instance] {
        &self.inner.instances
    }

    /// The instance with `id`.
    pub fn instance(&self, id: impl AsRef<str>) -> Option<&Instance> {
        self.inner
            .by_id
            .get(id.as_ref())
            .map(|i| &self.inner.instances[*i])
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The name this orchestrator writes into its export intents
    /// ([`ExportState::Exporting::owner`](ExportState::Exporting)): random per orchestrator,
    /// so replicas sharing a store tell their own intents from the others'.
    pub fn owner(&self) -> &str {
        &self.inner.owner
    }

    /// Where `order` would go: the first rule whose condition matches and whose instance is
    /// enabled and accepts the order's payment. Use it to show "would go to …" in the order
    /// card.
    ///
    /// # Errors
    ///
    /// [`Error::NoRoute`] listing the rules tried.
    pub fn route(&self, order: &Order) -> Result<Route> {
        for rule in &self.inner.rules {
            let Some(instance) = self.instance(&rule.instance) else {
                continue;
            };
            if instance.settings.enabled
                && instance.settings.accepted_payment.accepts(&order.payment)
                && rule.when.matches(order)
            {
                return Ok(Route {
                    instance: rule.instance.clone(),
                    rule: rule.name.clone(),
                });
            }
        }
        Err(Error::NoRoute {
            order_id: order.id.to_string(),
            rules_tried: self.inner.rules.iter().map(|r| r.name.clone()).collect(),
        })
    }

    /// The shipment record of an order.
    ///
    /// # Errors
    ///
    /// Whatever the store reports.
    pub async fn shipment(&self, order_id: impl Into<OrderId>) -> Result<Option<ShipmentRecord>> {
        self.inner.store.get(&order_id.into()).await
    }

    /// The waybill form of `instance` as its order card shows it: the provider's fields with
    /// the instance's waybill defaults as their defaults, so a required field the instance
    /// fills is pre-filled, not blocked, and a renderer's pre-fill is the instance's value.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown instance.
    pub fn waybill_form(&self, instance: impl AsRef<str>) -> Result<WaybillForm> {
        let instance = self.instance_or_err(instance)?;
        instance
            .provider
            .waybill_form()
            .with_defaults(&instance.settings.waybill_defaults)
    }

    /// The JSON Schema (draft 2020-12) of [`Self::waybill_form`], for the order card to render
    /// (see [`WaybillForm::json_schema`]; [`WaybillForm::ui_schema`] gives the field order).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown instance.
    pub fn waybill_schema(&self, instance: impl AsRef<str>) -> Result<serde_json::Value> {
        Ok(self.waybill_form(instance)?.json_schema())
    }

    /// Saves an operator's waybill values for an order; they take precedence over the
    /// instance's defaults at export.
    ///
    /// # Errors
    ///
    /// Whatever the store reports.
    pub async fn save_waybill(&self, order_id: impl Into<OrderId>, waybill: Waybill) -> Result<()> {
        self.inner
            .store
            .save_waybill(&order_id.into(), waybill)
            .await
    }

    /// Applies `change` to `record` and stores it with compare-and-swap, with the events
    /// `change` returns in the same write (the outbox), then delivers them; on a conflict,
    /// re-reads the record and applies `change` again, so a concurrent change is kept.
    async fn modify(
        &self,
        record: ShipmentRecord,
        change: impl FnMut(&mut ShipmentRecord) -> Vec<EventKind>,
    ) -> Result<ShipmentRecord> {
        self.modify_with(record, None, change).await
    }

    /// [`Self::modify`], storing `exception` in the same write.
    async fn modify_with(
        &self,
        mut record: ShipmentRecord,
        exception: Option<&OrderException>,
        mut change: impl FnMut(&mut ShipmentRecord) -> Vec<EventKind>,
    ) -> Result<ShipmentRecord> {
        let order_id = record.order_id.clone();
        let mut last_error = None;
        for _ in 0..CAS_ATTEMPTS {
            let kinds = change(&mut record);
            let events = self.events_for(&record, kinds);
            let effects = Effects {
                events: events.clone(),
                exception: exception.cloned(),
            };
            // The record moves into the store: on a conflict it is read again anyway.
            match self.inner.store.update(record, effects).await {
                Ok(saved) => {
                    self.deliver(events).await;
                    return Ok(saved);
                }
                Err(e @ Error::Conflict { .. }) => {
                    last_error = Some(e);
                    record = self.record(&order_id).await?;
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| Error::Conflict {
            message: format!("shipment record of order {order_id} kept changing"),
        }))
    }

    /// The record of `order_id`, or [`Error::NotFound`] naming it.
    async fn record(&self, order_id: &OrderId) -> Result<ShipmentRecord> {
        self.inner
            .store
            .get(order_id)
            .await?
            .ok_or_else(|| record_not_found(order_id))
    }

    async fn exported_record(&self, order_id: &OrderId) -> Result<ShipmentRecord> {
        self.inner
            .store
            .get(order_id)
            .await?
            .filter(|r| r.shipment().is_some())
            .ok_or_else(|| not_exported(order_id))
    }

    fn instance_or_err(&self, id: impl AsRef<str>) -> Result<&Instance> {
        let id = id.as_ref();
        self.instance(id).ok_or_else(|| Error::NotFound {
            what: format!("instance {id}"),
        })
    }

    /// The events of `kinds` about `record` as it is after the change, stamped now.
    fn events_for(&self, record: &ShipmentRecord, kinds: Vec<EventKind>) -> Vec<Event> {
        if kinds.is_empty() {
            return Vec::new();
        }
        let now = self.now();
        kinds
            .into_iter()
            .map(|kind| {
                Event::for_order(
                    kind,
                    record.order_id.clone(),
                    record.instance.clone(),
                    now,
                    record.automation,
                )
            })
            .collect()
    }

    /// Hands stored events to the sink, in order, and marks them delivered. A failure to mark
    /// them leaves them pending: [`Self::deliver_pending_events`] delivers them again (at
    /// least once; hosts deduplicate by id).
    async fn deliver(&self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        let ids: Vec<EventId> = events.iter().map(|e| e.id.clone()).collect();
        for event in events {
            observe_event(&event);
            self.inner.events.emit(event).await;
        }
        if let Err(error) = self.inner.store.mark_delivered(&ids).await {
            tracing::warn!(%error, events = ids.len(), "delivered events not marked; they will be delivered again");
        }
    }

    fn now(&self) -> DateTime<Utc> {
        (self.inner.clock)()
    }

    async fn lock_order(&self, order_id: &OrderId) -> locks::OrderGuard<'_> {
        self.inner.locks.lock(order_id).await
    }
}

/// A walk over a store listing, page by page: each page is ordered by order id and starts
/// after the last id of the previous one. A store whose listing does not move forward is an
/// error, not an endless loop.
#[derive(Default)]
pub(super) struct Pages {
    after: Option<OrderId>,
    done: bool,
}

impl Pages {
    /// The next page of `list` (called with the last id seen), or `None` after the last.
    pub(super) async fn next(
        &mut self,
        list: impl AsyncFnOnce(Option<&OrderId>) -> Result<Vec<ShipmentRecord>>,
    ) -> Result<Option<Vec<ShipmentRecord>>> {
        if self.done {
            return Ok(None);
        }
        let page = list(self.after.as_ref()).await?;
        let Some(last) = page.last() else {
            self.done = true;
            return Ok(None);
        };
        if self
            .after
            .as_ref()
            .is_some_and(|after| last.order_id <= *after)
        {
            return Err(Error::protocol(format!(
                "the store's listing did not move past order {}: it must return ids after `after`",
                last.order_id
            )));
        }
        self.after = Some(last.order_id.clone());
        Ok(Some(page))
    }
}

/// Records an event about to reach the sink in the metrics.
fn observe_event(event: &Event) {
    telemetry::event_emitted(event.kind.name());
    let instance = event.instance.as_str();
    match &event.kind {
        EventKind::DeliveryStatusChanged { to, .. } => {
            telemetry::status_change(instance, to.code.as_str());
        }
        EventKind::ExceptionRaised { exception } => {
            telemetry::exception_raised(instance, exception.reason.as_str());
        }
        EventKind::ExceptionResolved { exception } => {
            if let Some(resolution) = &exception.resolution {
                telemetry::exception_resolved(instance, resolution.action.as_str());
            }
        }
        _ => {}
    }
}

/// Awaits `call` to `instance`'s provider, recording its outcome and duration in the metrics
/// (`fulfillkit_provider_calls_total`, `fulfillkit_provider_call_duration_seconds`).
async fn observed<T>(
    instance: &Instance,
    operation: Operation,
    call: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    let started = std::time::Instant::now();
    let result = call.await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(error) => error.kind().as_str(),
    };
    telemetry::provider_call(
        instance.id.as_str(),
        operation.as_str(),
        outcome,
        started.elapsed(),
    );
    result
}

fn record_not_found(order_id: &OrderId) -> Error {
    Error::NotFound {
        what: format!("shipment record of order {order_id}"),
    }
}

fn not_exported(order_id: &OrderId) -> Error {
    Error::NotFound {
        what: format!("exported shipment of order {order_id}"),
    }
}
