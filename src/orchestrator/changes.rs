//! Edits after export: key-field changes pushed to the provider, order exceptions when it is
//! too late, and automation suspended until an operator resolves them.
//!
//! Only the key fields count (customer name, phone, shipping address, cart); they are compared
//! through the [`Fingerprints`] stored at export, so tags, custom fields or a re-ordered cart
//! never reach the provider. A changed order is validated and sent with `update_order`:
//!
//! - the provider applied it → the record keeps the new version, [`EventKind::OrderUpdated`];
//! - it is too late (packed, handed to the carrier), or the provider cannot update orders at
//!   all → an [`OrderException`] with both versions, automation [`Automation::Suspended`] for
//!   the order, [`EventKind::ExceptionRaised`];
//! - a transient failure (timeout, transport, rate limit, a server error after the HTTP
//!   client's retries) → the edit is kept as the record's [`PendingUpdate`] and
//!   [`Orchestrator::retry_pending_updates`] sends it later: it is not an exception.
//!
//! While an exception is open, fulfillkit exports and updates nothing for the order on its
//! own, edits are recorded on the exception, and every event says `automation: suspended`
//! so the host's triggers and validators can skip the order ([`Orchestrator::automation_allowed`]
//! answers the same question on demand). [`Orchestrator::resolve_exception`] ends it.
//!
//! A re-exported order carries a new number at its provider ([`super::provider_order_id`]).
//!
//! Tracking and the export itself live elsewhere in the orchestrator.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tracing::Instrument;

use super::{
    Automation, EventKind, ExceptionFilter, ExportOutcome, ExportState, Fingerprints, Instance,
    Orchestrator, PAGE, PendingUpdate, ShipmentRecord, Target, Trigger, numbering,
};
use crate::error::{Error, ErrorKind, Failure, FieldError, Result};
use crate::model::{
    DeliveryStatus, ExceptionReason, KeyField, Order, OrderException, OrderId, Resolution,
    ResolutionAction, StatusCode, SuspendedEdit, Waybill,
};
use crate::provider::{CancelOutcome, UpdateOutcome};

/// Most edits kept on one exception while it is open; older ones are dropped first (the
/// latest is what a re-export sends, the rest is history for the operator).
const MAX_SUSPENDED_EDITS: usize = 100;

/// The result of [`Orchestrator::on_order_changed`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
#[allow(
    clippy::large_enum_variant,
    reason = "one value per edit; boxing would make every caller's match clumsier"
)]
#[must_use = "the outcome says what happened at the provider"]
pub enum ChangeOutcome {
    /// The order has not been exported (yet); nothing was sent. A failed export keeps the
    /// edited order, so its retry sends the current version.
    NotExported,
    /// No key field changed (or the version was already settled by an operator); nothing was
    /// sent.
    Unchanged,
    /// The provider applied the edit.
    Applied {
        /// The key fields that changed.
        changed_fields: Vec<KeyField>,
    },
    /// The provider already had these values; the record was brought in line, no event.
    AlreadyAtProvider {
        /// The key fields that changed against the stored version.
        changed_fields: Vec<KeyField>,
    },
    /// The provider could not take the edit: an exception was raised and automation is
    /// suspended for the order.
    Exception {
        /// The new exception.
        exception: OrderException,
    },
    /// A transient failure: the edit is kept and [`Orchestrator::retry_pending_updates`] sends
    /// it later.
    Pending {
        /// The key fields that changed.
        changed_fields: Vec<KeyField>,
        /// What went wrong this time.
        failure: Failure,
    },
    /// Automation is suspended (an open exception); nothing was sent.
    Suspended {
        /// The key fields that differ from the exported version.
        changed_fields: Vec<KeyField>,
        /// Whether the edit was new and recorded on the exception.
        recorded: bool,
    },
}

impl ChangeOutcome {
    /// The key fields the edit changed, in order (empty when nothing was compared or sent).
    pub fn changed_fields(&self) -> Vec<KeyField> {
        match self {
            ChangeOutcome::Applied { changed_fields }
            | ChangeOutcome::AlreadyAtProvider { changed_fields }
            | ChangeOutcome::Pending { changed_fields, .. }
            | ChangeOutcome::Suspended { changed_fields, .. } => changed_fields.clone(),
            ChangeOutcome::Exception { exception } => {
                exception.changed_fields.iter().copied().collect()
            }
            ChangeOutcome::NotExported | ChangeOutcome::Unchanged => Vec::new(),
        }
    }

    /// Whether the provider has the edited order now (applied, or it had it already).
    pub fn is_at_provider(&self) -> bool {
        matches!(
            self,
            ChangeOutcome::Applied { .. } | ChangeOutcome::AlreadyAtProvider { .. }
        )
    }

    /// The exception the edit raised, if it did.
    pub fn exception(&self) -> Option<&OrderException> {
        match self {
            ChangeOutcome::Exception { exception } => Some(exception),
            _ => None,
        }
    }
}

/// What [`Orchestrator::retry_pending_updates`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UpdateRetryReport {
    /// Pending edits sent again.
    pub attempted: usize,
    /// Of those, now at the provider (applied, or it already had them).
    pub applied: usize,
    /// Of those, refused as too late: they became exceptions.
    pub exceptions: usize,
    /// Of those, failed again and still pending.
    pub failed: usize,
    /// Pending edits left alone: settled meanwhile, automation suspended, or the shipment or
    /// its instance gone.
    pub skipped: usize,
}

/// One page of [`Orchestrator::exceptions`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ExceptionPage {
    /// The exceptions, ordered by order id.
    pub exceptions: Vec<OrderException>,
    /// Pass this as `after` for the next page; `None` on the last page.
    pub next_after: Option<OrderId>,
}

impl Orchestrator {
    /// Pushes an operator's edit of an exported order to its provider.
    ///
    /// Call it whenever the host saves an order; it is cheap when nothing that matters
    /// changed (no provider call). Calls for one order are serialized.
    ///
    /// Only the key fields count (customer name, phone, shipping address, cart as sku,
    /// quantity and price independent of line order), compared through the [`Fingerprints`]
    /// stored at export; tags and custom fields never do. A changed order is validated and
    /// sent with `update_order`:
    ///
    /// - applied → the record keeps the new version, [`EventKind::OrderUpdated`];
    /// - the provider already had it → the record keeps it, no event;
    /// - too late (packed, handed to the carrier), or the provider cannot update orders at
    ///   all → an [`OrderException`] with both versions, the provider's state and the
    ///   delivery status; automation is [`Automation::Suspended`] for the order;
    ///   [`EventKind::ExceptionRaised`];
    /// - a transient failure (timeout, transport, rate limit, a server error after the HTTP
    ///   client's retries) → not an exception: the edit is kept as the record's
    ///   [`PendingUpdate`] and [`Self::retry_pending_updates`] sends it later.
    ///
    /// While automation is suspended, an edit is recorded on the open exception and never
    /// sent. A version an operator already settled by resolving the exception (e.g. the host
    /// kept its edit after [`ResolutionAction::AcceptProviderVersion`]) is not sent again.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] when the edited order (or its waybill, or a strict address) is
    /// invalid: nothing is sent. A provider error that retrying cannot fix
    /// (`Unauthenticated`, `NotFound`, `Protocol`, a provider-side `Validation`): nothing is
    /// stored, so the next call tries again. Store errors.
    #[tracing::instrument(name = "fulfillkit.order_changed", skip_all, fields(order_id = %order.id))]
    pub async fn on_order_changed(&self, order: &Order) -> Result<ChangeOutcome> {
        let _guard = self.lock_order(&order.id).await;
        let Some(record) = self.inner.store.get(&order.id).await? else {
            return Ok(ChangeOutcome::NotExported);
        };
        // First: a re-export the operator chose may be half done (old shipment cancelled, new
        // one not yet made), and it sends the exception's latest edit.
        if record.automation == Automation::Suspended {
            return self.record_suspended_edit(&record, order).await;
        }
        if record.shipment().is_none() {
            self.refresh_failed_export(record, order).await?;
            return Ok(ChangeOutcome::NotExported);
        }

        let new = Fingerprints::of(order);
        let mut changed = record.fingerprints.changed(&new);
        if changed.is_empty() {
            match &record.pending_update {
                None => return Ok(ChangeOutcome::Unchanged),
                // The host went back to the provider's values while an edit was pending; the
                // provider may have taken that edit despite the error, so send this version.
                Some(pending) => changed = pending.changed_fields.clone(),
            }
        } else if record.pending_update.is_none() && self.settled(&record, &new).await? {
            return Ok(ChangeOutcome::Unchanged);
        }

        let instance = self.instance_or_err(&record.instance)?;
        let waybill = self.prepare(order, instance, &record.waybill).await?;
        self.push_update(record, instance, order, &waybill, changed)
            .await
    }

    /// Sends every pending edit (kept after a transient failure) again. Edits of orders whose
    /// automation is suspended are left alone.
    ///
    /// # Errors
    ///
    /// Only store errors; provider errors are counted in the report and kept on the records.
    #[tracing::instrument(name = "fulfillkit.retry_pending_updates", skip_all)]
    pub async fn retry_pending_updates(&self) -> Result<UpdateRetryReport> {
        let mut report = UpdateRetryReport::default();
        let mut after: Option<OrderId> = None;
        loop {
            let page = self
                .inner
                .store
                .list_pending_updates(after.as_ref(), PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.order_id.clone());
            for listed in page {
                let _guard = self.lock_order(&listed.order_id).await;
                // Re-read under the lock: an edit may have been settled since the listing.
                let Some(record) = self.inner.store.get(&listed.order_id).await? else {
                    report.skipped += 1;
                    continue;
                };
                let Some(pending) = record.pending_update.clone() else {
                    report.skipped += 1;
                    continue;
                };
                let instance = match self.instance(&record.instance) {
                    Some(i) if record.shipment().is_some() => i,
                    _ => {
                        report.skipped += 1;
                        continue;
                    }
                };
                if record.automation == Automation::Suspended {
                    report.skipped += 1;
                    continue;
                }
                report.attempted += 1;
                let outcome = self
                    .push_update(
                        record.clone(),
                        instance,
                        &pending.order,
                        &pending.waybill,
                        pending.changed_fields.clone(),
                    )
                    .instrument(tracing::info_span!(
                        "fulfillkit.order_changed",
                        order_id = %record.order_id,
                        instance = %record.instance
                    ))
                    .await;
                match outcome {
                    Ok(ChangeOutcome::Applied { .. } | ChangeOutcome::AlreadyAtProvider { .. }) => {
                        report.applied += 1
                    }
                    Ok(ChangeOutcome::Exception { .. }) => report.exceptions += 1,
                    Ok(_) => report.failed += 1,
                    Err(error) => {
                        // Retrying cannot fix it (a permanent refusal, a 403, a 410): the
                        // edit goes to an operator with the failure, nothing is lost.
                        let failure = error.to_failure();
                        let raised = self
                            .raise(
                                record,
                                &pending.order,
                                pending.changed_fields.clone(),
                                ExceptionReason::ProviderFailed,
                                Some(failure.message),
                            )
                            .await?;
                        if matches!(raised, ChangeOutcome::Exception { .. }) {
                            report.exceptions += 1;
                        } else {
                            report.skipped += 1;
                        }
                    }
                }
            }
        }
        Ok(report)
    }

    /// Whether the host's triggers and validators may act on the order: `false` while it has
    /// an open exception. An order fulfillkit does not know is not suspended.
    ///
    /// # Errors
    ///
    /// Store errors: a store that cannot answer must not be taken for "allowed".
    pub async fn automation_allowed(&self, order_id: impl Into<OrderId>) -> Result<bool> {
        Ok(self
            .inner
            .store
            .get(&order_id.into())
            .await?
            .is_none_or(|r| r.automation == Automation::Active))
    }

    /// One page of exceptions passing `filter` (open or resolved, by instance, by detection
    /// time), ordered by order id, starting after `after`, at most `limit` (1 to 500).
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn exceptions(
        &self,
        filter: &ExceptionFilter,
        after: Option<&OrderId>,
        limit: usize,
    ) -> Result<ExceptionPage> {
        let limit = limit.clamp(1, PAGE);
        let exceptions = self
            .inner
            .store
            .list_exceptions(filter, after, limit)
            .await?;
        let next_after = (exceptions.len() == limit)
            .then(|| exceptions.last().map(|e| e.order_id.clone()))
            .flatten();
        Ok(ExceptionPage {
            exceptions,
            next_after,
        })
    }

    /// Resolves the open exception of `order_id` as the operator decided, resumes automation
    /// and emits [`EventKind::ExceptionResolved`]; returns the resolved exception.
    ///
    /// - [`ResolutionAction::AcceptProviderVersion`]: the provider keeps what it has; the
    ///   refused version (and later edits up to the last one) is not sent again.
    /// - [`ResolutionAction::Reexport`]: the latest requested version is routed and checked,
    ///   the old shipment is cancelled at its provider, and the order is exported as a new
    ///   shipment under the next [`provider_order_id`](super::provider_order_id). When the provider can no longer
    ///   cancel, nothing is re-exported (that would ship twice) and the exception stays open.
    /// - [`ResolutionAction::CancelledAtProvider`]: the shipment is marked
    ///   [`StatusCode::Cancelled`] (with [`EventKind::DeliveryStatusChanged`]).
    /// - [`ResolutionAction::Manual`]: nothing else changes.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the order has no exception (or no record);
    /// [`Error::Conflict`] when it is already resolved; [`Error::Validation`] for an empty
    /// `by`. For `Reexport`: [`Error::TooLate`] when the provider refuses the cancel,
    /// [`Error::Unsupported`] when it cannot cancel at all, routing, validation and provider
    /// errors — in every case the exception stays open and the call can be repeated.
    #[tracing::instrument(
        name = "fulfillkit.resolve_exception",
        skip_all,
        fields(order_id, action = ?resolution.action)
    )]
    pub async fn resolve_exception(
        &self,
        order_id: impl Into<OrderId>,
        resolution: Resolution,
    ) -> Result<OrderException> {
        let order_id = &order_id.into();
        tracing::Span::current().record("order_id", tracing::field::display(order_id));
        if resolution.by.trim().is_empty() {
            return Err(Error::validation(
                format!("resolution of the exception of order {order_id}"),
                vec![FieldError::new("by", "must name who resolved it")],
            ));
        }
        if resolution.action == ResolutionAction::Reexport {
            // Cancels and exports outside the order lock, since `export` takes it itself.
            self.reexport(order_id).await?;
        }

        let _guard = self.lock_order(order_id).await;
        let exception = self.open_exception(order_id).await?;
        let record = self
            .inner
            .store
            .get(order_id)
            .await?
            .ok_or_else(|| Error::NotFound {
                what: format!("shipment record of order {order_id}"),
            })?;
        let now = self.now();
        let cancelled = (resolution.action == ResolutionAction::CancelledAtProvider).then(|| {
            DeliveryStatus::new(
                StatusCode::Cancelled,
                "cancelled at the provider by an operator",
                now,
            )
        });
        let mut status_change = None;
        // The record resumes before the exception is marked resolved: a crash in between
        // leaves the exception open, and resolving it again is harmless.
        let saved = self
            .modify(record, |r| {
                r.automation = Automation::Active;
                r.pending_update = None;
                status_change = cancelled
                    .as_ref()
                    .and_then(|status| super::mark_cancelled(r, status, now));
                r.updated_at = now;
            })
            .await?;
        let resolved = OrderException {
            resolution: Some(resolution),
            resolved_at: Some(now),
            ..exception
        };
        self.inner.store.put_exception(resolved.clone()).await?;
        if let Some((from, to)) = status_change {
            self.emit(EventKind::DeliveryStatusChanged { from, to }, &saved)
                .await;
        }
        self.emit(
            EventKind::ExceptionResolved {
                exception: resolved.clone(),
            },
            &saved,
        )
        .await;
        Ok(resolved)
    }

    /// The `Reexport` work before the exception is resolved: check, cancel, export. Safe to
    /// repeat after a failure at any step: a shipment other than the exception's is never
    /// cancelled, and the export is idempotent on the new number.
    async fn reexport(&self, order_id: &OrderId) -> Result<()> {
        let guard = self.lock_order(order_id).await;
        let exception = self.open_exception(order_id).await?;
        let record = self
            .inner
            .store
            .get(order_id)
            .await?
            .ok_or_else(|| Error::NotFound {
                what: format!("shipment record of order {order_id}"),
            })?;
        if record
            .shipment()
            .is_some_and(|current| *current != exception.shipment)
        {
            // Re-exported already (a repeated call after the export succeeded).
            return Ok(());
        }
        let order = exception.latest_requested().clone();
        // Everything that can refuse the new export is checked before the old shipment is
        // cancelled, so a refusal never leaves the order with no shipment.
        let route = self.route(&order)?;
        let target = self.instance_or_err(&route.instance)?;
        let waybill = if route.instance == record.instance {
            Waybill::clone(&record.waybill)
        } else {
            // Waybill fields belong to one provider's form; start from the operator's values.
            self.inner
                .store
                .waybill(order_id)
                .await?
                .unwrap_or_default()
        };
        self.prepare(&order, target, &waybill).await?;

        if record.shipment().is_some() {
            let source = self.instance_or_err(&record.instance)?;
            let outcome = super::observed(
                source,
                crate::error::Operation::Cancel,
                source.provider.cancel_order(&exception.shipment),
            )
            .await?;
            if let CancelOutcome::TooLate { state } = outcome {
                return Err(Error::TooLate { state });
            }
            let now = self.now();
            let cancelled = DeliveryStatus::new(
                StatusCode::Cancelled,
                outcome
                    .state()
                    .unwrap_or("cancelled through fulfillkit for a re-export"),
                now,
            );
            let failure = Failure::new(
                ErrorKind::Conflict,
                format!(
                    "shipment {} cancelled at the provider for a re-export of order {order_id}",
                    exception.shipment.provider_ref
                ),
                false,
            );
            let mut change = None;
            // The old shipment is gone and the new one not made yet: a failed export says so
            // honestly (not retryable by automation, which is suspended anyway), and `export`
            // accepts it. The new shipment starts a new history.
            let saved = self
                .modify(record, |r| {
                    change = super::mark_cancelled(r, &cancelled, now);
                    r.export = ExportState::Failed {
                        retryable: false,
                        failure: failure.clone(),
                        attempts: 0,
                        since: now,
                    };
                    r.export_seq += 1;
                    r.current_status = None;
                    r.history = Arc::default();
                    r.last_reported = None;
                    r.next_poll_at = None;
                    r.tracking_stopped = false;
                    r.pending_update = None;
                    r.updated_at = now;
                })
                .await?;
            if let Some((from, to)) = change {
                self.emit(EventKind::DeliveryStatusChanged { from, to }, &saved)
                    .await;
            }
        }
        drop(guard);

        match self
            .export(
                &order,
                Target::Instance(&route.instance),
                Some(waybill),
                Trigger::Operator,
                self.inner.stale_intent,
            )
            .await?
        {
            ExportOutcome::Exported { .. } | ExportOutcome::AlreadyExported { .. } => Ok(()),
            ExportOutcome::InProgress | ExportOutcome::Suspended => Err(Error::Conflict {
                message: format!("order {order_id} is being exported by another caller"),
            }),
        }
    }

    async fn open_exception(&self, order_id: &OrderId) -> Result<OrderException> {
        let exception =
            self.inner
                .store
                .exception(order_id)
                .await?
                .ok_or_else(|| Error::NotFound {
                    what: format!("exception of order {order_id}"),
                })?;
        match &exception.resolution {
            None => Ok(exception),
            Some(resolution) => Err(Error::Conflict {
                message: format!(
                    "the exception of order {order_id} is already resolved ({:?} by {})",
                    resolution.action, resolution.by
                ),
            }),
        }
    }

    /// Sends `order` (an edit of `record`'s order, already checked) to the provider and
    /// settles the record by the answer.
    async fn push_update(
        &self,
        record: ShipmentRecord,
        instance: &Instance,
        order: &Order,
        waybill: &Waybill,
        changed: Vec<KeyField>,
    ) -> Result<ChangeOutcome> {
        let Some(shipment) = record.shipment().cloned() else {
            return Ok(ChangeOutcome::NotExported);
        };
        if !instance.provider.capabilities().update {
            return self
                .raise(record, order, changed, ExceptionReason::Unsupported, None)
                .await;
        }
        let sent = numbering::provider_order(order, record.export_seq);
        let answer = super::observed(
            instance,
            crate::error::Operation::Update,
            instance.provider.update_order(&shipment, &sent, waybill),
        )
        .await;
        match answer {
            Ok(UpdateOutcome::Applied) => {
                let saved = self.settle(record, order, waybill).await?;
                self.emit(
                    EventKind::OrderUpdated {
                        changed_fields: changed.clone(),
                    },
                    &saved,
                )
                .await;
                Ok(ChangeOutcome::Applied {
                    changed_fields: changed,
                })
            }
            Ok(UpdateOutcome::NoChange) => {
                self.settle(record, order, waybill).await?;
                Ok(ChangeOutcome::AlreadyAtProvider {
                    changed_fields: changed,
                })
            }
            Ok(UpdateOutcome::TooLate { state }) | Err(Error::TooLate { state }) => {
                self.raise(
                    record,
                    order,
                    changed,
                    ExceptionReason::TooLate,
                    Some(state),
                )
                .await
            }
            Err(Error::Unsupported { .. }) => {
                self.raise(record, order, changed, ExceptionReason::Unsupported, None)
                    .await
            }
            Err(error) if error.is_retryable() => {
                let now = self.now();
                let failure = error.to_failure();
                let (since, attempts) = record
                    .pending_update
                    .as_ref()
                    .map_or((now, 0), |p| (p.since, p.attempts));
                if !self.inner.retry_limits.allow(attempts + 1, since, now) {
                    // Past the retry limits: an operator decides, with the last failure.
                    return self
                        .raise(
                            record,
                            order,
                            changed,
                            ExceptionReason::ProviderFailed,
                            Some(failure.message),
                        )
                        .await;
                }
                self.modify(record, |r| {
                    let (since, attempts) = r
                        .pending_update
                        .as_ref()
                        .map_or((now, 0), |p| (p.since, p.attempts));
                    r.pending_update = Some(Box::new(PendingUpdate {
                        order: order.clone(),
                        waybill: waybill.clone(),
                        changed_fields: changed.clone(),
                        since,
                        attempts: attempts + 1,
                        last_failure: failure.clone(),
                    }));
                    r.updated_at = now;
                })
                .await?;
                Ok(ChangeOutcome::Pending {
                    changed_fields: changed,
                    failure,
                })
            }
            Err(error) => Err(error),
        }
    }

    /// The provider has `order`: it becomes the record's version.
    async fn settle(
        &self,
        record: ShipmentRecord,
        order: &Order,
        waybill: &Waybill,
    ) -> Result<ShipmentRecord> {
        let now = self.now();
        let fingerprints = Fingerprints::of(order);
        self.modify(record, |r| {
            r.order = Arc::new(order.clone());
            r.waybill = Arc::new(waybill.clone());
            r.fingerprints = fingerprints.clone();
            // A newer edit kept by another replica meanwhile stays pending.
            if r.pending_update
                .as_ref()
                .is_none_or(|p| Fingerprints::of(&p.order) == fingerprints)
            {
                r.pending_update = None;
            }
            r.updated_at = now;
        })
        .await
    }

    /// Records an exception for the refused `order`, suspends automation, tells the host.
    async fn raise(
        &self,
        record: ShipmentRecord,
        order: &Order,
        changed: Vec<KeyField>,
        reason: ExceptionReason,
        provider_state: Option<String>,
    ) -> Result<ChangeOutcome> {
        let now = self.now();
        // The status as of now: tracking may have moved it while the provider answered, and
        // that move is usually why it is too late.
        let current = self
            .inner
            .store
            .get(&record.order_id)
            .await?
            .unwrap_or(record);
        let Some(shipment) = current.shipment().cloned() else {
            return Ok(ChangeOutcome::NotExported);
        };
        let exception = OrderException {
            order_id: current.order_id.clone(),
            instance: current.instance.clone(),
            shipment,
            reason,
            changed_fields: changed.into_iter().collect(),
            provider_state,
            delivery_status: current.current_status.as_deref().cloned(),
            exported: Order::clone(&current.order),
            requested: order.clone(),
            later_edits: Vec::new(),
            detected_at: now,
            resolution: None,
            resolved_at: None,
        };
        // The exception first: a crash before the record is suspended leaves an open
        // exception and an active record, and the next edit raises it again; the other order
        // could leave a suspended order with nothing to resolve.
        self.inner.store.put_exception(exception.clone()).await?;
        let saved = self
            .modify(current, |r| {
                r.automation = Automation::Suspended;
                r.pending_update = None;
                r.updated_at = now;
            })
            .await?;
        self.emit(
            EventKind::ExceptionRaised {
                exception: exception.clone(),
            },
            &saved,
        )
        .await;
        Ok(ChangeOutcome::Exception { exception })
    }

    /// An edit while suspended: recorded on the open exception, never sent.
    async fn record_suspended_edit(
        &self,
        record: &ShipmentRecord,
        order: &Order,
    ) -> Result<ChangeOutcome> {
        let new = Fingerprints::of(order);
        let changed_fields = record.fingerprints.changed(&new);
        let Some(mut exception) = self
            .inner
            .store
            .exception(&order.id)
            .await?
            .filter(OrderException::is_open)
        else {
            tracing::warn!(order_id = %order.id, "automation suspended without an open exception; edit not recorded");
            return Ok(ChangeOutcome::Suspended {
                changed_fields,
                recorded: false,
            });
        };
        if Fingerprints::of(exception.latest_requested()) == new {
            return Ok(ChangeOutcome::Suspended {
                changed_fields,
                recorded: false,
            });
        }
        order.validate()?;
        exception.later_edits.push(SuspendedEdit {
            order: order.clone(),
            changed_fields: changed_fields.iter().copied().collect(),
            at: self.now(),
        });
        let excess = exception
            .later_edits
            .len()
            .saturating_sub(MAX_SUSPENDED_EDITS);
        exception.later_edits.drain(..excess);
        self.inner.store.put_exception(exception).await?;
        Ok(ChangeOutcome::Suspended {
            changed_fields,
            recorded: true,
        })
    }

    /// Whether an operator already settled exactly this version by resolving the order's last
    /// exception (e.g. accepted the provider's version while the host kept its edit), with the
    /// provider's version unchanged since: sending it again would only raise it again.
    async fn settled(&self, record: &ShipmentRecord, new: &Fingerprints) -> Result<bool> {
        Ok(self
            .inner
            .store
            .exception(&record.order_id)
            .await?
            .is_some_and(|e| {
                !e.is_open()
                    && Fingerprints::of(&e.exported) == record.fingerprints
                    && Fingerprints::of(e.latest_requested()) == *new
            }))
    }

    /// A failed export keeps the order for its retry: make that the edited one, so the retry
    /// does not send a stale version.
    async fn refresh_failed_export(&self, record: ShipmentRecord, order: &Order) -> Result<()> {
        if !matches!(record.export, ExportState::Failed { .. }) || *record.order == *order {
            return Ok(());
        }
        let now = self.now();
        let fingerprints = Fingerprints::of(order);
        self.modify(record, |r| {
            if matches!(r.export, ExportState::Failed { .. }) {
                r.order = Arc::new(order.clone());
                r.fingerprints = fingerprints.clone();
                r.updated_at = now;
            }
        })
        .await?;
        Ok(())
    }
}
