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
//!     .rule(RoutingRule::new("italy", Condition::CountryIn { countries: vec!["IT".into()] }, "it-prepaid"))
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

mod changes;
mod directory;
mod events;
mod instance;
mod locks;
mod numbering;
mod routing;
mod stock;
mod store;
mod tracking;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

// Each concern's file decides what it makes public.
pub use changes::*;
pub use directory::*;
pub use numbering::provider_order_id;
pub use stock::*;
pub use tracking::*;

pub use crate::model::StatusOrder;
pub use events::{ChannelSink, CollectingSink, Event, EventKind, EventSink, NullSink};
pub use instance::{AcceptedPayment, Instance, InstanceSettings};
pub use routing::{Condition, PaymentKind, Predicate, Route, RoutingRule};
pub use store::{
    Automation, ExceptionFilter, ExportState, Fingerprint, Fingerprints, MemoryStore,
    PendingUpdate, ShipmentRecord, Store,
};

use crate::error::{Error, FieldError, Result};
use crate::model::{
    DeliveryStatus, InstanceId, Order, OrderId, Shipment, ShipmentRef, StatusCode, Waybill,
    WaybillForm,
};
use crate::provider::CancelOutcome;

/// The orchestrator's source of "now"; inject one in tests.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Attempts of a compare-and-swap loop before giving up with the conflict.
const CAS_ATTEMPTS: usize = 16;
/// Page size when walking the store.
const PAGE: usize = 500;

/// The result of [`Orchestrator::on_order_confirmed`] and [`Orchestrator::export_to`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[allow(
    clippy::large_enum_variant,
    reason = "one value per export call; boxing would make every caller's match clumsier"
)]
pub enum ExportOutcome {
    /// The order was created at the provider now.
    Exported {
        /// The instance it went to.
        instance: InstanceId,
        /// The provider's shipment.
        shipment: Shipment,
    },
    /// The order had been exported before; nothing was sent.
    AlreadyExported {
        /// The instance it went to.
        instance: InstanceId,
        /// Its reference there.
        shipment: ShipmentRef,
    },
    /// Automation is suspended for the order (open exception); nothing was sent.
    Suspended,
    /// Another caller (or replica) is exporting the order right now; nothing was sent.
    InProgress,
}

/// How long failed exports and pending edits are retried automatically before they are left
/// to an operator. An error that retrying cannot fix is left at once, whatever the limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RetryLimits {
    /// Attempts at most (default 20): the one that reaches it is the last.
    pub max_attempts: u32,
    /// Retried no longer than this after the first failure (default 3 days).
    pub max_age: Duration,
}

impl Default for RetryLimits {
    fn default() -> Self {
        Self {
            max_attempts: 20,
            max_age: Duration::from_secs(3 * 24 * 3600),
        }
    }
}

impl RetryLimits {
    /// `max_attempts` attempts within `max_age` of the first failure.
    pub fn new(max_attempts: u32, max_age: Duration) -> Self {
        Self {
            max_attempts: max_attempts.max(1),
            max_age,
        }
    }

    /// Whether a failure that is the `attempts`-th, the first of which happened at `since`,
    /// may still be retried at `now`.
    pub fn allow(&self, attempts: u32, since: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        // A clock that went back counts as no age at all.
        let age = (now - since).to_std().unwrap_or(Duration::ZERO);
        attempts < self.max_attempts && age < self.max_age
    }
}

/// What [`Orchestrator::retry_failed_exports`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RetryReport {
    /// Failed exports and abandoned intents tried again.
    pub attempted: usize,
    /// Of those, export intents whose owner was gone.
    pub abandoned: usize,
    /// Of those, now exported.
    pub exported: usize,
    /// Of those, failed again.
    pub failed: usize,
    /// Failed exports left alone: not retryable, or automation suspended.
    pub skipped: usize,
}

impl RetryReport {
    fn count(&mut self, outcome: &Result<ExportOutcome>) {
        match outcome {
            Ok(ExportOutcome::Exported { .. } | ExportOutcome::AlreadyExported { .. }) => {
                self.exported += 1
            }
            Ok(_) => self.skipped += 1,
            Err(_) => self.failed += 1,
        }
    }
}

/// What [`Orchestrator::reconcile`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileReport {
    /// Unfinished export intents found.
    pub found: usize,
    /// Of those, now exported (or found exported at the provider).
    pub exported: usize,
    /// Of those, failed (the record says why; non-retryable ones need an operator).
    pub failed: usize,
    /// Of those, younger than `min_age` and left to their owner.
    pub left_alone: usize,
}

/// Builds an [`Orchestrator`].
pub struct OrchestratorBuilder {
    instances: Vec<Instance>,
    rules: Vec<RoutingRule>,
    store: Option<Arc<dyn Store>>,
    events: Option<Arc<dyn EventSink>>,
    clock: Option<Clock>,
    stale_intent: Duration,
    stock_ttl: Duration,
    directory_ttl: Duration,
    poll_policy: PollPolicy,
    tracking_concurrency: usize,
    retry_limits: RetryLimits,
}

impl fmt::Debug for OrchestratorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrchestratorBuilder")
            .field("instances", &self.instances)
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

impl OrchestratorBuilder {
    /// Adds an instance.
    pub fn instance(mut self, instance: Instance) -> Self {
        self.instances.push(instance);
        self
    }

    /// Adds a routing rule after the ones already added (first match wins).
    pub fn rule(mut self, rule: RoutingRule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Adds routing rules in order.
    pub fn rules(mut self, rules: impl IntoIterator<Item = RoutingRule>) -> Self {
        self.rules.extend(rules);
        self
    }

    /// Sets the store (default: a new [`MemoryStore`]).
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Sets the event sink (default: [`NullSink`]).
    pub fn events(mut self, events: Arc<dyn EventSink>) -> Self {
        self.events = Some(events);
        self
    }

    /// Sets the clock (default: the system clock).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// How old an unfinished export intent written by *another* orchestrator (a replica
    /// sharing the store) must be before this one takes it over (default 10 minutes, longer
    /// than a provider call with all its retries). An intent this orchestrator wrote and no
    /// longer works on (the call's future was dropped, or saving its result failed) is taken
    /// over at once.
    pub fn stale_intent_after(mut self, age: Duration) -> Self {
        self.stale_intent = age;
        self
    }

    /// How long stock read from a provider is served from the cache (default 60 s).
    pub fn stock_cache_ttl(mut self, ttl: Duration) -> Self {
        self.stock_ttl = ttl;
        self
    }

    /// How long a provider's address directory is served from the cache (default 1 h).
    pub fn directory_cache_ttl(mut self, ttl: Duration) -> Self {
        self.directory_ttl = ttl;
        self
    }

    /// When each shipment is polled next, by status (see [`PollPolicy`]).
    pub fn poll_policy(mut self, policy: PollPolicy) -> Self {
        self.poll_policy = policy;
        self
    }

    /// How long failed exports and pending edits are retried before an operator gets them
    /// (default 20 attempts within 3 days; see [`RetryLimits`]).
    pub fn retry_limits(mut self, limits: RetryLimits) -> Self {
        self.retry_limits = limits;
        self
    }

    /// Most tracking requests in flight per instance (default 4, at least 1).
    pub fn tracking_concurrency(mut self, requests: usize) -> Self {
        self.tracking_concurrency = requests.max(1);
        self
    }

    /// Checks the configuration and builds the orchestrator.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] listing every problem: duplicate instance ids, rules naming an
    /// unknown instance, strict addresses on a provider without an address directory, a poll
    /// policy with a zero or absurd interval ([`PollPolicy::validate`]).
    pub fn build(self) -> Result<Orchestrator> {
        let mut errors = Vec::new();
        if let Err(e) = self.poll_policy.validate() {
            errors.extend(
                e.field_errors()
                    .iter()
                    .map(|f| FieldError::new(format!("poll_policy.{}", f.path), f.reason.clone())),
            );
        }
        let mut by_id = HashMap::new();
        for (i, instance) in self.instances.iter().enumerate() {
            if by_id.insert(instance.id.clone(), i).is_some() {
                errors.push(FieldError::new(
                    format!("instances[{i}].id"),
                    format!("duplicate instance id {}", instance.id),
                ));
            }
            // The instance's waybill defaults must be values its provider's form accepts.
            let form = instance.provider.waybill_form();
            let defaults = &instance.settings.waybill_defaults;
            let checked = form.validate(&form.fill_defaults(defaults));
            for problem in checked.err().iter().flat_map(|e| e.field_errors()) {
                // A required field the operator fills per order is not the defaults' business.
                if problem.reason != "is required" {
                    errors.push(FieldError::new(
                        format!("instances[{i}].settings.waybill_defaults.{}", problem.path),
                        problem.reason.clone(),
                    ));
                }
            }
            if instance.settings.strict_addresses
                && !instance.provider.capabilities().address_directory
            {
                errors.push(FieldError::new(
                    format!("instances[{i}].settings.strict_addresses"),
                    format!(
                        "{} has no address directory, so strict addresses cannot be enforced",
                        instance.provider.kind()
                    ),
                ));
            }
        }
        for (i, rule) in self.rules.iter().enumerate() {
            if !by_id.contains_key(&rule.instance) {
                errors.push(FieldError::new(
                    format!("rules[{i}].instance"),
                    format!(
                        "rule {:?} names unknown instance {}",
                        rule.name, rule.instance
                    ),
                ));
            }
        }
        if !errors.is_empty() {
            return Err(Error::validation("orchestrator configuration", errors));
        }
        Ok(Orchestrator {
            inner: Arc::new(Inner {
                instances: self.instances,
                by_id,
                rules: self.rules,
                store: self.store.unwrap_or_else(|| Arc::new(MemoryStore::new())),
                events: self.events.unwrap_or_else(|| Arc::new(NullSink)),
                clock: self.clock.unwrap_or_else(|| Arc::new(Utc::now)),
                stale_intent: self.stale_intent,
                stock_cache: StockCache::new(self.stock_ttl),
                directory_cache: DirectoryCache::new(self.directory_ttl),
                poll_policy: self.poll_policy,
                tracking_concurrency: self.tracking_concurrency,
                retry_limits: self.retry_limits,
                locks: locks::OrderLocks::default(),
                owner: format!("fulfillkit-{:016x}", fastrand::u64(..)),
            }),
        })
    }
}

/// Which instance an export goes to.
enum Target<'a> {
    Routed,
    Instance(&'a InstanceId),
}

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
    /// Names this orchestrator in the export intents it writes.
    owner: String,
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
        OrchestratorBuilder {
            instances: Vec::new(),
            rules: Vec::new(),
            store: None,
            events: None,
            clock: None,
            stale_intent: Duration::from_secs(600),
            stock_ttl: Duration::from_secs(60),
            directory_ttl: Duration::from_secs(3600),
            poll_policy: PollPolicy::default(),
            tracking_concurrency: 4,
            retry_limits: RetryLimits::default(),
        }
    }

    /// The instances, in registration order.
    pub fn instances(&self) -> &[Instance] {
        &self.inner.instances
    }

    /// The instance with `id`.
    pub fn instance(&self, id: &InstanceId) -> Option<&Instance> {
        self.inner.by_id.get(id).map(|i| &self.inner.instances[*i])
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
    pub async fn shipment(&self, order_id: &OrderId) -> Result<Option<ShipmentRecord>> {
        self.inner.store.get(order_id).await
    }

    /// The waybill form of `instance` as its order card shows it: the provider's fields with
    /// the instance's waybill defaults as their defaults, so a required field the instance
    /// fills is pre-filled, not blocked, and a renderer's pre-fill is the instance's value.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown instance.
    pub fn waybill_form(&self, instance: &InstanceId) -> Result<WaybillForm> {
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
    pub fn waybill_schema(&self, instance: &InstanceId) -> Result<serde_json::Value> {
        Ok(self.waybill_form(instance)?.json_schema())
    }

    /// Saves an operator's waybill values for an order; they take precedence over the
    /// instance's defaults at export.
    ///
    /// # Errors
    ///
    /// Whatever the store reports.
    pub async fn save_waybill(&self, order_id: &OrderId, waybill: Waybill) -> Result<()> {
        self.inner.store.save_waybill(order_id, waybill).await
    }

    /// Exports a confirmed order: route it, fill the waybill, check both, write an export
    /// intent, create the order at the provider, store the shipment record and emit
    /// [`EventKind::Exported`]. A second call for the same order never creates a second
    /// shipment.
    ///
    /// # Errors
    ///
    /// [`Error::NoRoute`]; [`Error::Validation`] naming every bad field of the order and the
    /// waybill (nothing is sent); the provider's error (the record then says
    /// [`ExportState::Failed`], [`EventKind::ExportFailed`] is emitted, and
    /// [`Self::retry_failed_exports`] can try again).
    pub async fn on_order_confirmed(&self, order: &Order) -> Result<ExportOutcome> {
        self.export(order, Target::Routed, None, true, self.inner.stale_intent)
            .await
    }

    /// Exports `order` to `instance` by hand (an operator's choice in the order card), with
    /// the operator's `waybill` over the instance defaults. Works for orders whose automation
    /// is suspended too.
    ///
    /// # Errors
    ///
    /// As [`Self::on_order_confirmed`]; [`Error::NotFound`] for an unknown instance.
    pub async fn export_to(
        &self,
        order: &Order,
        instance: &InstanceId,
        waybill: &Waybill,
    ) -> Result<ExportOutcome> {
        self.export(
            order,
            Target::Instance(instance),
            Some(waybill.clone()),
            false,
            self.inner.stale_intent,
        )
        .await
    }

    /// Tries every failed, retryable export again (automation must be active), and takes
    /// over export intents whose owner is gone: this orchestrator's own that no call works on
    /// any more (its future was dropped, or saving the result failed), and other
    /// orchestrators' older than [`stale_intent_after`](OrchestratorBuilder::stale_intent_after).
    /// The provider's create is idempotent on the order number, so an order the abandoned call
    /// did create is found, never made twice.
    ///
    /// # Errors
    ///
    /// Only store errors; provider errors are counted in the report and kept in the records.
    pub async fn retry_failed_exports(&self) -> Result<RetryReport> {
        let mut report = RetryReport::default();
        let mut after: Option<OrderId> = None;
        loop {
            let page = self
                .inner
                .store
                .list_exporting(after.as_ref(), PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.order_id.clone());
            for record in page {
                if !self.intent_abandoned(&record.export, self.inner.stale_intent)
                    || record.automation == Automation::Suspended
                {
                    continue;
                }
                report.abandoned += 1;
                report.attempted += 1;
                let outcome = self
                    .export(
                        &record.order,
                        Target::Instance(&record.instance),
                        Some(Waybill::clone(&record.waybill)),
                        true,
                        self.inner.stale_intent,
                    )
                    .await;
                report.count(&outcome);
            }
        }
        let mut after: Option<OrderId> = None;
        loop {
            let page = self.inner.store.list_failed(after.as_ref(), PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.order_id.clone());
            for record in page {
                let retryable = matches!(
                    record.export,
                    ExportState::Failed {
                        retryable: true,
                        ..
                    }
                );
                if !retryable || record.automation == Automation::Suspended {
                    report.skipped += 1;
                    continue;
                }
                report.attempted += 1;
                let outcome = self
                    .export(
                        &record.order,
                        Target::Instance(&record.instance),
                        Some(Waybill::clone(&record.waybill)),
                        true,
                        self.inner.stale_intent,
                    )
                    .await;
                report.count(&outcome);
            }
        }
        Ok(report)
    }

    /// Completes export intents left behind by a process that died between the provider's
    /// create and the record's save. **Call it at start-up**, before serving confirmations.
    ///
    /// Each intent at least `min_age` old is exported again through the provider's idempotent
    /// create: a provider that can look the order up (Sphere) returns the existing shipment; one
    /// that cannot (Wapi refuses the duplicate number) makes the record
    /// [`ExportState::Failed`] with `retryable: false` and an [`EventKind::ExportFailed`] naming
    /// the order, for an operator to attach — never a second order. A single process passes
    /// `Duration::ZERO`; with replicas sharing a store, pass more than the longest provider
    /// call (the builder's `stale_intent_after`) so a live replica's export is left alone.
    ///
    /// # Errors
    ///
    /// Only store errors; provider outcomes are counted in the report.
    pub async fn reconcile(&self, min_age: Duration) -> Result<ReconcileReport> {
        let mut report = ReconcileReport::default();
        let mut after: Option<OrderId> = None;
        loop {
            let page = self
                .inner
                .store
                .list_exporting(after.as_ref(), PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.order_id.clone());
            for record in page {
                report.found += 1;
                let outcome = self
                    .export(
                        &record.order,
                        Target::Instance(&record.instance),
                        Some(Waybill::clone(&record.waybill)),
                        false,
                        min_age,
                    )
                    .await;
                match outcome {
                    Ok(ExportOutcome::Exported { .. } | ExportOutcome::AlreadyExported { .. }) => {
                        report.exported += 1
                    }
                    Ok(_) => report.left_alone += 1,
                    Err(_) => report.failed += 1,
                }
            }
        }
        Ok(report)
    }

    /// Cancels an exported order at its provider. The shipment's `Cancelled` status keeps the
    /// provider's words when it gives them (Sphere's `void`, Wapi's `Cancelled`), and is
    /// reported once ([`EventKind::DeliveryStatusChanged`]). Cancelling an order whose record
    /// is cancelled already changes nothing and answers
    /// [`CancelOutcome::AlreadyCancelled`] without calling the provider. `TooLate` is passed
    /// through.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the order was never exported; the provider's error.
    pub async fn cancel(&self, order_id: &OrderId) -> Result<CancelOutcome> {
        let _guard = self.lock_order(order_id).await;
        let record = self.exported_record(order_id).await?;
        if let Some(cancelled) = record
            .current_status
            .as_ref()
            .filter(|s| s.code == StatusCode::Cancelled)
        {
            return Ok(CancelOutcome::AlreadyCancelled {
                state: Some(cancelled.original.clone()),
            });
        }
        let Some(shipment) = record.shipment().cloned() else {
            return Err(not_exported(order_id));
        };
        let instance = self.instance_or_err(&record.instance)?;
        let outcome = instance.provider.cancel_order(&shipment).await?;
        if outcome.is_cancelled() {
            let text = outcome.state().unwrap_or("cancelled through fulfillkit");
            self.record_cancellation(record, text).await?;
        }
        Ok(outcome)
    }

    /// Records that the order's shipment is cancelled (`text` in the provider's words where
    /// known), unless the record says so already, and reports the change once. The one place
    /// a cancellation is written: cancel, exception resolution and re-export all use it.
    async fn record_cancellation(
        &self,
        record: ShipmentRecord,
        text: &str,
    ) -> Result<ShipmentRecord> {
        let now = self.now();
        let status = DeliveryStatus::new(StatusCode::Cancelled, text, now);
        let mut change = None;
        let saved = self
            .modify(record, |r| {
                change = mark_cancelled(r, &status, now);
            })
            .await?;
        if let Some((from, to)) = change {
            self.emit(EventKind::DeliveryStatusChanged { from, to }, &saved)
                .await;
        }
        Ok(saved)
    }

    /// Attaches an order that exists at its provider to its record, by the provider's
    /// reference: the operator's way out for an export that fulfillkit could not finish on its
    /// own (flagged `ExportFailed { retryable: false }`, e.g. a Wapi create whose answer was
    /// lost and whose WH number the API cannot look up). The order must have a record (it was
    /// confirmed) at the instance it was routed to.
    ///
    /// The reference is checked with the provider first: the shipment is tracked once, and
    /// only an answer with statuses for it is accepted. Then the record becomes `Exported` with
    /// that shipment, [`EventKind::Exported`] is emitted, and the statuses are applied as a
    /// tracking poll would (with its [`EventKind::DeliveryStatusChanged`]). Attaching the
    /// reference a record already holds changes nothing.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the order has no record, or the provider does not know the
    /// reference; [`Error::Conflict`] when the record already holds another shipment or is
    /// being exported right now; [`Error::Validation`] for a blank or overlong reference; the
    /// provider's error when it cannot be asked.
    pub async fn attach_shipment(
        &self,
        order_id: &OrderId,
        provider_ref: impl Into<String>,
    ) -> Result<ShipmentRecord> {
        let provider_ref = provider_ref.into();
        if !crate::model::usable_id(&provider_ref, crate::model::ID_MAX_CHARS) {
            return Err(Error::validation(
                format!("shipment of order {order_id}"),
                vec![FieldError::new(
                    "provider_ref",
                    format!(
                        "must be 1 to {} characters without control characters",
                        crate::model::ID_MAX_CHARS
                    ),
                )],
            ));
        }
        let _guard = self.lock_order(order_id).await;
        let record = self
            .inner
            .store
            .get(order_id)
            .await?
            .ok_or_else(|| Error::NotFound {
                what: format!("shipment record of order {order_id}"),
            })?;
        let shipment = ShipmentRef::new(
            provider_order_id(order_id, record.export_seq),
            provider_ref.trim(),
        );
        match record.shipment() {
            Some(held) if *held == shipment => return Ok(record),
            Some(held) => {
                return Err(Error::Conflict {
                    message: format!(
                        "order {order_id} is exported as {} already",
                        held.provider_ref
                    ),
                });
            }
            None => {}
        }
        if self.settled_outcome(&record, self.inner.stale_intent) == Some(ExportOutcome::InProgress)
        {
            return Err(Error::Conflict {
                message: format!("order {order_id} is being exported right now"),
            });
        }
        let instance = self.instance_or_err(&record.instance)?;
        let update = instance
            .provider
            .track(std::slice::from_ref(&shipment))
            .await?
            .into_iter()
            .find(|u| u.shipment() == &shipment && !u.statuses().is_empty())
            .ok_or_else(|| Error::NotFound {
                what: format!(
                    "shipment {} of order {order_id} at {}",
                    shipment.provider_ref, instance.id
                ),
            })?;
        let at = self.now();
        let exported = ExportState::Exported {
            shipment: shipment.clone(),
            tracking_number: None,
            at,
        };
        let saved = self
            .modify(record, |r| {
                r.export = exported.clone();
                r.next_poll_at = None;
                r.updated_at = at;
            })
            .await?;
        self.emit(
            EventKind::Exported {
                shipment: shipment.clone(),
                tracking_number: None,
            },
            &saved,
        )
        .await;
        self.ingest_locked(instance, saved, update).await?;
        self.inner
            .store
            .get(order_id)
            .await?
            .ok_or_else(|| Error::NotFound {
                what: format!("shipment record of order {order_id}"),
            })
    }

    async fn export(
        &self,
        order: &Order,
        target: Target<'_>,
        operator_waybill: Option<Waybill>,
        automatic: bool,
        takeover_after: Duration,
    ) -> Result<ExportOutcome> {
        let _guard = self.lock_order(&order.id).await;
        let existing = self.inner.store.get(&order.id).await?;
        if let Some(record) = &existing {
            if automatic && record.automation == Automation::Suspended {
                return Ok(ExportOutcome::Suspended);
            }
            if let Some(outcome) = self.settled_outcome(record, takeover_after) {
                return Ok(outcome);
            }
        }

        let instance = match target {
            Target::Routed => self.instance_or_err(&self.route(order)?.instance)?,
            Target::Instance(id) => self.instance_or_err(id)?,
        };
        let operator = match operator_waybill {
            Some(w) => w,
            None => self
                .inner
                .store
                .waybill(&order.id)
                .await?
                .unwrap_or_default(),
        };
        let waybill = self.prepare(order, instance, &operator).await?;

        // The intent: written before the provider call so that a crash in between leaves a
        // trace that reconciliation can complete.
        let now = self.now();
        let mut intent = ShipmentRecord {
            order_id: order.id.clone(),
            instance: instance.id.clone(),
            order: Arc::new(order.clone()),
            waybill: Arc::new(waybill.clone()),
            export: ExportState::Exporting {
                since: now,
                owner: Some(self.inner.owner.clone()),
            },
            fingerprints: Fingerprints::of(order),
            current_status: None,
            history: Arc::default(),
            last_reported: None,
            next_poll_at: None,
            tracking_stopped: false,
            pending_update: None,
            export_seq: 0,
            automation: Automation::Active,
            version: 0,
            updated_at: now,
        };
        // Attempts so far and when they began, for the retry limits.
        let previous = match &existing {
            Some(ShipmentRecord {
                export:
                    ExportState::Failed {
                        attempts, since, ..
                    },
                ..
            }) => Some((*attempts, *since)),
            _ => None,
        };
        let claimed = match existing {
            None => {
                if self.inner.store.insert(intent.clone()).await? {
                    Some(intent)
                } else {
                    None
                }
            }
            Some(record) => {
                intent.version = record.version;
                intent.automation = record.automation;
                // A re-export (exception resolution) numbered the record anew; keep it.
                intent.export_seq = record.export_seq;
                intent.history = record.history;
                intent.current_status = record.current_status;
                match self.inner.store.update(intent).await {
                    Ok(saved) => Some(saved),
                    Err(Error::Conflict { .. }) => None,
                    Err(e) => return Err(e),
                }
            }
        };
        let Some(record) = claimed else {
            // Another replica wrote first: report what it did.
            return Ok(match self.inner.store.get(&order.id).await? {
                Some(r) => self
                    .settled_outcome(&r, takeover_after)
                    .unwrap_or(ExportOutcome::InProgress),
                None => ExportOutcome::InProgress,
            });
        };

        let sent = numbering::provider_order(order, record.export_seq);
        let created = instance
            .provider
            .create_order(&sent, &waybill)
            .await
            .and_then(|shipment| accepted_shipment(&sent.id, instance, shipment));
        match created {
            Ok(shipment) => {
                let at = self.now();
                let exported = ExportState::Exported {
                    shipment: shipment.reference.clone(),
                    tracking_number: shipment.tracking_number.clone(),
                    at,
                };
                let first_status = shipment.status.clone();
                let saved = self
                    .modify(record, |r| {
                        r.export = exported.clone();
                        if let Some(status) = &first_status {
                            r.push_status(status.clone());
                            // Announced by the Exported event: the first poll that finds it
                            // unchanged has no news.
                            let shared = Arc::new(status.clone());
                            r.current_status = Some(Arc::clone(&shared));
                            r.last_reported = Some(shared);
                        }
                        r.updated_at = at;
                    })
                    .await?;
                self.emit(
                    EventKind::Exported {
                        shipment: shipment.reference.clone(),
                        tracking_number: shipment.tracking_number.clone(),
                    },
                    &saved,
                )
                .await;
                Ok(ExportOutcome::Exported {
                    instance: instance.id.clone(),
                    shipment,
                })
            }
            Err(error) => {
                let at = self.now();
                let attempts = previous.map_or(1, |(attempts, _)| attempts + 1);
                let since = previous.map_or(at, |(_, since)| since);
                let retryable =
                    error.is_retryable() && self.inner.retry_limits.allow(attempts, since, at);
                let failure = error.to_failure();
                let failed = ExportState::Failed {
                    retryable,
                    failure: failure.clone(),
                    attempts,
                    since,
                };
                let saved = self
                    .modify(record, |r| {
                        r.export = failed.clone();
                        r.updated_at = at;
                    })
                    .await?;
                self.emit(EventKind::ExportFailed { retryable, failure }, &saved)
                    .await;
                Err(error)
            }
        }
    }

    /// The outcome for a record that needs no export: already exported, or being exported by
    /// someone else (an intent younger than `takeover_after`).
    fn settled_outcome(
        &self,
        record: &ShipmentRecord,
        takeover_after: Duration,
    ) -> Option<ExportOutcome> {
        match &record.export {
            ExportState::Exported { shipment, .. } => Some(ExportOutcome::AlreadyExported {
                instance: record.instance.clone(),
                shipment: shipment.clone(),
            }),
            ExportState::Exporting { .. } => (!self
                .intent_abandoned(&record.export, takeover_after))
            .then_some(ExportOutcome::InProgress),
            ExportState::Failed { .. } => None,
        }
    }

    /// Whether an export intent may be taken over: written by this orchestrator (callers hold
    /// the order's lock, so no call of ours works on it any more), or older than
    /// `takeover_after`.
    fn intent_abandoned(&self, export: &ExportState, takeover_after: Duration) -> bool {
        let ExportState::Exporting { since, owner } = export else {
            return false;
        };
        if owner.as_deref() == Some(self.inner.owner.as_str()) {
            return true;
        }
        (self.now() - *since).to_std().unwrap_or(Duration::ZERO) >= takeover_after
    }

    /// The waybill for `order` at `instance`: operator values over instance defaults over the
    /// form's defaults; then the order, the waybill and (strict mode) the address are checked
    /// together, so the error names every bad field.
    async fn prepare(
        &self,
        order: &Order,
        instance: &Instance,
        operator: &Waybill,
    ) -> Result<Waybill> {
        let form = instance.provider.waybill_form();
        let mut waybill = form.fill_defaults(&operator.over(&instance.settings.waybill_defaults));
        waybill.instance = Some(instance.id.clone());

        let mut fields: Vec<FieldError> = order
            .validate()
            .err()
            .map(|e| e.field_errors().to_vec())
            .unwrap_or_default();
        fields.extend(numbering::host_id_problem(&order.id));
        if let Err(e) = form.validate(&waybill) {
            fields.extend(
                e.field_errors()
                    .iter()
                    .map(|f| FieldError::new(format!("waybill.{}", f.path), f.reason.clone())),
            );
        }
        if instance.settings.strict_addresses {
            if let Some(problem) = self
                .strict_address_problem(instance, &order.address)
                .await?
            {
                fields.push(problem);
            }
        }
        if fields.is_empty() {
            Ok(waybill)
        } else {
            Err(Error::validation(format!("order {}", order.id), fields))
        }
    }

    /// Applies `change` to `record` and stores it with compare-and-swap; on a conflict,
    /// re-reads the record and applies `change` again, so a concurrent change is kept.
    async fn modify(
        &self,
        mut record: ShipmentRecord,
        mut change: impl FnMut(&mut ShipmentRecord),
    ) -> Result<ShipmentRecord> {
        let order_id = record.order_id.clone();
        let mut last_error = None;
        for _ in 0..CAS_ATTEMPTS {
            change(&mut record);
            // The record moves into the store: on a conflict it is read again anyway.
            match self.inner.store.update(record).await {
                Ok(saved) => return Ok(saved),
                Err(e @ Error::Conflict { .. }) => {
                    last_error = Some(e);
                    record =
                        self.inner
                            .store
                            .get(&order_id)
                            .await?
                            .ok_or_else(|| Error::NotFound {
                                what: format!("shipment record of order {order_id}"),
                            })?;
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| Error::Conflict {
            message: format!("shipment record of order {order_id} kept changing"),
        }))
    }

    async fn exported_record(&self, order_id: &OrderId) -> Result<ShipmentRecord> {
        self.inner
            .store
            .get(order_id)
            .await?
            .filter(|r| r.shipment().is_some())
            .ok_or_else(|| not_exported(order_id))
    }

    fn instance_or_err(&self, id: &InstanceId) -> Result<&Instance> {
        self.instance(id).ok_or_else(|| Error::NotFound {
            what: format!("instance {id}"),
        })
    }

    async fn emit(&self, kind: EventKind, record: &ShipmentRecord) {
        let event = Event::for_order(
            kind,
            record.order_id.clone(),
            record.instance.clone(),
            self.now(),
            record.automation,
        );
        self.inner.events.emit(event).await;
    }

    fn now(&self) -> DateTime<Utc> {
        (self.inner.clock)()
    }

    async fn lock_order(&self, order_id: &OrderId) -> locks::OrderGuard<'_> {
        self.inner.locks.lock(order_id).await
    }
}

/// Marks `r` cancelled with `status` unless its current status is `Cancelled` already:
/// history, current and last reported status, no further polls. Returns the change to report
/// (from, to), or `None` when nothing changed.
pub(crate) fn mark_cancelled(
    r: &mut ShipmentRecord,
    status: &DeliveryStatus,
    now: DateTime<Utc>,
) -> Option<(Option<Arc<DeliveryStatus>>, Arc<DeliveryStatus>)> {
    if r.current_status
        .as_ref()
        .is_some_and(|s| s.code == StatusCode::Cancelled)
    {
        return None;
    }
    r.push_status(status.clone());
    let shared = Arc::new(status.clone());
    r.current_status = Some(Arc::clone(&shared));
    r.next_poll_at = None;
    r.updated_at = now;
    Some((r.last_reported.replace(Arc::clone(&shared)), shared))
}

/// `shipment` as a provider's create returned it, if fulfillkit can keep it: a shipment of the
/// order number that was sent (never another order's, whatever the provider matched it
/// with), a usable reference; a tracking number and a first status bounded like everything
/// else a provider reports.
fn accepted_shipment(
    sent: &OrderId,
    instance: &Instance,
    mut shipment: Shipment,
) -> Result<Shipment> {
    let reference = &shipment.reference;
    if reference.order_id != *sent {
        return Err(Error::protocol(format!(
            "{} answered the create of order {sent} with a shipment of order {}",
            instance.id, reference.order_id
        )));
    }
    if !crate::model::usable_id(&reference.provider_ref, crate::model::ID_MAX_CHARS) {
        return Err(Error::protocol(format!(
            "{} answered the create of order {sent} with an unusable reference (blank, longer \
             than {} characters or with control characters)",
            instance.id,
            crate::model::ID_MAX_CHARS
        )));
    }
    if let Some(number) = &shipment.tracking_number {
        if !crate::model::usable_id(number, crate::model::TEXT_MAX_CHARS) {
            tracing::warn!(order_id = %sent, instance = %instance.id, "unusable tracking number dropped");
            shipment.tracking_number = None;
        }
    }
    shipment.status = shipment.status.map(DeliveryStatus::bounded);
    Ok(shipment)
}

fn not_exported(order_id: &OrderId) -> Error {
    Error::NotFound {
        what: format!("exported shipment of order {order_id}"),
    }
}
