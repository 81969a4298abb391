//! Recovery: failed exports retried within [`RetryLimits`], abandoned export intents taken
//! over, intents a crashed process left behind completed ([`Orchestrator::reconcile`]), and
//! the operator's way out for an order fulfillkit could not finish
//! ([`Orchestrator::attach_shipment`]).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use super::{
    Automation, EventKind, ExportOutcome, ExportState, Orchestrator, PAGE, Pages, ShipmentRecord,
    Target, Trigger, provider_order_id,
};
use crate::error::{Error, FieldError, Result};
use crate::model::{OrderId, ShipmentRef, Waybill};

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
#[non_exhaustive]
pub struct ReconcileReport {
    /// Unfinished export intents found.
    pub found: usize,
    /// Of those, now exported (or found exported at the provider).
    pub exported: usize,
    /// Of those, failed (the record says why; non-retryable ones need an operator).
    pub failed: usize,
    /// Of those, younger than `min_age` and left to their owner.
    pub left_alone: usize,
    /// Undelivered events found in the store's outbox and delivered
    /// ([`Orchestrator::deliver_pending_events`]).
    pub events_delivered: usize,
}

impl Orchestrator {
    /// Tries every failed, retryable export again (automation must be active), and takes
    /// over export intents whose owner is gone: this orchestrator's own that no call works on
    /// any more (its future was dropped, or saving the result failed), and other
    /// orchestrators' older than [`stale_intent_after`](super::OrchestratorBuilder::stale_intent_after).
    /// The provider's create is idempotent on the order number, so an order the abandoned call
    /// did create is found, never made twice.
    ///
    /// # Errors
    ///
    /// Only store errors; provider errors are counted in the report and kept in the records.
    #[tracing::instrument(name = "fulfillkit.retry_failed_exports", skip_all)]
    pub async fn retry_failed_exports(&self) -> Result<RetryReport> {
        let mut report = RetryReport::default();
        let mut pages = Pages::default();
        let store = &self.inner.store;
        while let Some(page) = pages
            .next(async |after| store.list_exporting(after, PAGE).await)
            .await?
        {
            for record in page {
                if !self.intent_abandoned(&record.export, self.inner.stale_intent)
                    || record.automation == Automation::Suspended
                {
                    continue;
                }
                report.abandoned += 1;
                report.attempted += 1;
                report.count(&self.export_again(&record).await);
            }
        }
        let mut pages = Pages::default();
        let store = &self.inner.store;
        while let Some(page) = pages
            .next(async |after| store.list_failed(after, PAGE).await)
            .await?
        {
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
                report.count(&self.export_again(&record).await);
            }
        }
        Ok(report)
    }

    /// Completes what a process that died left behind: export intents written before the
    /// provider's create whose result was never saved, and events stored but never handed to
    /// the sink ([`Self::deliver_pending_events`]). **Call it at start-up**, before serving
    /// confirmations, and from time to time.
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
    #[tracing::instrument(name = "fulfillkit.reconcile", skip_all)]
    pub async fn reconcile(&self, min_age: Duration) -> Result<ReconcileReport> {
        let mut report = ReconcileReport::default();
        let mut pages = Pages::default();
        let store = &self.inner.store;
        while let Some(page) = pages
            .next(async |after| store.list_exporting(after, PAGE).await)
            .await?
        {
            for record in page {
                report.found += 1;
                let outcome = self
                    .export(
                        &record.order,
                        Target::Instance(&record.instance),
                        Some(Waybill::clone(&record.waybill)),
                        Trigger::Operator,
                        min_age,
                    )
                    .instrument(export_span(&record))
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
        report.events_delivered = self.deliver_pending_events().await?;
        Ok(report)
    }

    /// Delivers the events the store's outbox still holds — written with their change, never
    /// marked delivered (the process died before its sink took them, or marking them failed)
    /// — to the sink, oldest first, and marks them delivered; returns how many. Events younger
    /// than the builder's [`outbox_grace`](super::OrchestratorBuilder::outbox_grace) are left
    /// to the call that wrote them.
    ///
    /// Delivery is at least once: an event whose delivery raced this one may reach the sink
    /// twice, with the same [`Event::id`](crate::model::Event) — deduplicate by it.
    ///
    /// # Errors
    ///
    /// Store errors, and [`Error::Protocol`] for a store that lists an event again after it
    /// was marked delivered (instead of delivering it for ever).
    #[tracing::instrument(name = "fulfillkit.deliver_pending_events", skip_all)]
    pub async fn deliver_pending_events(&self) -> Result<usize> {
        let grace =
            chrono::Duration::from_std(self.inner.outbox_grace).unwrap_or(chrono::Duration::MAX);
        let now = self.now();
        let before = now
            .checked_sub_signed(grace)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let mut delivered = std::collections::HashSet::new();
        loop {
            let page = self.inner.store.pending_events(before, PAGE).await?;
            let full = page.len() == PAGE;
            if page.is_empty() {
                break;
            }
            if let Some(again) = page.iter().find(|e| delivered.contains(&e.id)) {
                return Err(Error::protocol(format!(
                    "the store listed event {} as pending after it was marked delivered",
                    again.id
                )));
            }
            let ids: Vec<_> = page.iter().map(|e| e.id.clone()).collect();
            for event in page {
                super::observe_event(&event);
                self.inner.events.emit(event).await;
            }
            self.inner.store.mark_delivered(&ids).await?;
            delivered.extend(ids);
            if !full {
                break;
            }
        }
        Ok(delivered.len())
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
    #[tracing::instrument(
        name = "fulfillkit.attach_shipment",
        skip_all,
        fields(order_id, shipment)
    )]
    pub async fn attach_shipment(
        &self,
        order_id: impl Into<OrderId>,
        provider_ref: impl Into<String>,
    ) -> Result<ShipmentRecord> {
        let order_id = &order_id.into();
        let provider_ref = provider_ref.into();
        let span = tracing::Span::current();
        span.record("order_id", tracing::field::display(order_id));
        span.record("shipment", provider_ref.as_str());
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
        let record = self.record(order_id).await?;
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
        let update = super::observed(
            instance,
            crate::error::Operation::Track,
            instance.provider.track(std::slice::from_ref(&shipment)),
        )
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
                vec![EventKind::Exported {
                    shipment: shipment.clone(),
                    tracking_number: None,
                }]
            })
            .await?;
        self.ingest_locked(instance, saved, update).await?;
        self.record(order_id).await
    }

    /// Exports a listed record again, to its instance, with its waybill (a retry or a
    /// takeover by automation), in a span naming it.
    async fn export_again(&self, record: &ShipmentRecord) -> Result<ExportOutcome> {
        self.export(
            &record.order,
            Target::Instance(&record.instance),
            Some(Waybill::clone(&record.waybill)),
            Trigger::Automation,
            self.inner.stale_intent,
        )
        .instrument(export_span(record))
        .await
    }
}

/// The span of one export a recovery pass makes, so its HTTP calls name their order.
fn export_span(record: &ShipmentRecord) -> tracing::Span {
    tracing::info_span!(
        "fulfillkit.export",
        order_id = %record.order_id,
        instance = %record.instance
    )
}
