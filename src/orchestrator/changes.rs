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
//! While an exception is open, edits are recorded on it and never sent; exceptions, their
//! listing and resolution are in `exceptions.rs`. Tracking and the export itself live
//! elsewhere in the orchestrator.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tracing::Instrument;

use super::{
    Automation, EventKind, ExportState, Fingerprints, Instance, Orchestrator, PAGE, Pages,
    PendingUpdate, ShipmentRecord, numbering,
};
use crate::error::{Error, Failure, Result};
use crate::model::{
    ExceptionReason, KeyField, Order, OrderException, OrderId, SuspendedEdit, Waybill,
};
use crate::provider::UpdateOutcome;

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
    /// kept its edit after [`ResolutionAction::AcceptProviderVersion`](crate::model::ResolutionAction::AcceptProviderVersion)) is not sent again.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] when the edited order (or its waybill, or a strict address) is
    /// invalid: nothing is sent. A provider error that retrying cannot fix
    /// (`Unauthenticated`, `NotFound`, `Protocol`, a provider-side `Validation`): nothing is
    /// stored, so the next call tries again. Store errors.
    #[tracing::instrument(name = "fulfillkit.order_changed", skip_all, fields(order_id = %order.id))]
    pub async fn on_order_changed(&self, order: &Order) -> Result<ChangeOutcome> {
        self.with_edit_lease(&order.id, self.order_changed(order))
            .await
    }

    async fn order_changed(&self, order: &Order) -> Result<ChangeOutcome> {
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
        let mut pages = Pages::default();
        let store = &self.inner.store;
        while let Some(page) = pages
            .next(async |after| store.list_pending_updates(after, PAGE).await)
            .await?
        {
            for listed in page {
                // Another replica editing the order right now: its edit goes first, this
                // one is tried again next time.
                match self
                    .with_edit_lease(
                        &listed.order_id,
                        self.retry_pending(&listed.order_id, &mut report),
                    )
                    .await
                {
                    Err(Error::Busy { .. }) => report.skipped += 1,
                    Err(error) => return Err(error),
                    Ok(()) => {}
                }
            }
        }
        Ok(report)
    }

    /// Sends the pending edit of `order_id` again, if it still has one.
    async fn retry_pending(
        &self,
        order_id: &OrderId,
        report: &mut UpdateRetryReport,
    ) -> Result<()> {
        let _guard = self.lock_order(order_id).await;
        // Re-read under the lock: an edit may have been settled since the listing.
        let Some(record) = self.inner.store.get(order_id).await? else {
            report.skipped += 1;
            return Ok(());
        };
        let Some(pending) = record.pending_update.clone() else {
            report.skipped += 1;
            return Ok(());
        };
        let instance = match self.instance(&record.instance) {
            Some(i) if record.shipment().is_some() => i,
            _ => {
                report.skipped += 1;
                return Ok(());
            }
        };
        if record.automation == Automation::Suspended {
            report.skipped += 1;
            return Ok(());
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
        Ok(())
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
                let event = EventKind::OrderUpdated {
                    changed_fields: changed.clone(),
                };
                self.settle(record, order, waybill, Some(event)).await?;
                Ok(ChangeOutcome::Applied {
                    changed_fields: changed,
                })
            }
            Ok(UpdateOutcome::NoChange) => {
                self.settle(record, order, waybill, None).await?;
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
                    Vec::new()
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

    /// The provider has `order`: it becomes the record's version (with `event`, if any).
    async fn settle(
        &self,
        record: ShipmentRecord,
        order: &Order,
        waybill: &Waybill,
        event: Option<EventKind>,
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
            event.iter().cloned().collect()
        })
        .await
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
        // Written with the record (its version guards the exception too).
        self.modify_with(record.clone(), Some(&exception), |_| Vec::new())
            .await?;
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
            Vec::new()
        })
        .await?;
        Ok(())
    }
}
