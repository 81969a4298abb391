//! Export on confirmation: route, fill and check the waybill, write the intent, create the
//! order at the provider, record the shipment (or the failure) and tell the host.
//!
//! Exactly once: the per-order lock inside the process, and the intent written with
//! compare-and-swap in the store across processes, so concurrent confirmations of one order
//! make one provider call; an intent left behind is taken over by its owner at once and by
//! others after the stale-intent age (see [`Orchestrator::retry_failed_exports`]).

use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;

use super::{
    Automation, EventKind, ExportState, Instance, Orchestrator, ShipmentRecord, numbering,
};
use crate::error::{Error, FieldError, Result};
use crate::model::{DeliveryStatus, InstanceId, Order, OrderId, Shipment, ShipmentRef, Waybill};
use crate::store::Effects;

/// The result of [`Orchestrator::on_order_confirmed`] and [`Orchestrator::export_to`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[allow(
    clippy::large_enum_variant,
    reason = "one value per export call; boxing would make every caller's match clumsier"
)]
#[must_use = "the outcome says what happened at the provider"]
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

impl ExportOutcome {
    /// Whether the order is at the provider: exported now or before.
    pub fn is_exported(&self) -> bool {
        matches!(
            self,
            ExportOutcome::Exported { .. } | ExportOutcome::AlreadyExported { .. }
        )
    }

    /// The instance the order went to, once exported.
    pub fn instance(&self) -> Option<&InstanceId> {
        match self {
            ExportOutcome::Exported { instance, .. }
            | ExportOutcome::AlreadyExported { instance, .. } => Some(instance),
            _ => None,
        }
    }

    /// The order's reference at the provider, once exported.
    pub fn shipment(&self) -> Option<&ShipmentRef> {
        match self {
            ExportOutcome::Exported { shipment, .. } => Some(&shipment.reference),
            ExportOutcome::AlreadyExported { shipment, .. } => Some(shipment),
            _ => None,
        }
    }
}

/// Which instance an export goes to.
#[derive(Clone, Copy)]
pub(super) enum Target<'a> {
    /// Where the routing rules send the order.
    Routed,
    /// This one (an operator's choice, a retry, a re-export).
    Instance(&'a InstanceId),
}

/// Who asks for an export: automation leaves an order with an open exception alone, an
/// operator does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Trigger {
    /// A confirmation or a retry.
    Automation,
    /// An operator's explicit export or re-export.
    Operator,
}

/// Attempts of the failed export a new attempt follows, and when the first one failed.
type PreviousFailures = Option<(u32, chrono::DateTime<chrono::Utc>)>;

impl Orchestrator {
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
        let span = tracing::info_span!("fulfillkit.export", order_id = %order.id, instance = tracing::field::Empty);
        self.export(
            order,
            Target::Routed,
            None,
            Trigger::Automation,
            self.inner.stale_intent,
        )
        .instrument(span)
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
        instance: impl AsRef<str>,
        waybill: &Waybill,
    ) -> Result<ExportOutcome> {
        let instance = InstanceId::from(instance.as_ref());
        let span =
            tracing::info_span!("fulfillkit.export", order_id = %order.id, instance = %instance);
        self.export(
            order,
            Target::Instance(&instance),
            Some(waybill.clone()),
            Trigger::Operator,
            self.inner.stale_intent,
        )
        .instrument(span)
        .await
    }

    /// The export pipeline; every entry point (confirmation, operator, retry, reconciliation,
    /// re-export) goes through it, under the order's lock. Its outcome is counted in
    /// `fulfillkit_exports_total`.
    pub(super) async fn export(
        &self,
        order: &Order,
        target: Target<'_>,
        operator_waybill: Option<Waybill>,
        trigger: Trigger,
        takeover_after: Duration,
    ) -> Result<ExportOutcome> {
        let result = self
            .export_locked(order, target, operator_waybill, trigger, takeover_after)
            .await;
        if crate::telemetry::ENABLED {
            let outcome = match &result {
                Ok(ExportOutcome::Exported { .. }) => "exported",
                Ok(ExportOutcome::AlreadyExported { .. }) => "already_exported",
                Ok(ExportOutcome::Suspended) => "suspended",
                Ok(ExportOutcome::InProgress) => "in_progress",
                Err(Error::Validation { .. } | Error::NoRoute { .. }) => "refused",
                Err(_) => "failed",
            };
            let instance = match (&result, &target) {
                (Ok(outcome), _) if outcome.instance().is_some() => outcome.instance(),
                (_, Target::Instance(id)) => Some(*id),
                _ => None,
            };
            crate::telemetry::export(instance.map_or("", InstanceId::as_str), outcome);
        }
        result
    }

    async fn export_locked(
        &self,
        order: &Order,
        target: Target<'_>,
        operator_waybill: Option<Waybill>,
        trigger: Trigger,
        takeover_after: Duration,
    ) -> Result<ExportOutcome> {
        let _guard = self.lock_order(&order.id).await;
        let existing = self.inner.store.get(&order.id).await?;
        if let Some(outcome) = existing
            .as_ref()
            .and_then(|record| self.no_export_needed(record, trigger, takeover_after))
        {
            return Ok(outcome);
        }
        let instance = match target {
            Target::Routed => self.instance_or_err(&self.route(order)?.instance)?,
            Target::Instance(id) => self.instance_or_err(id)?,
        };
        tracing::Span::current().record("instance", tracing::field::display(&instance.id));
        let operator = match operator_waybill {
            Some(waybill) => waybill,
            None => self
                .inner
                .store
                .waybill(&order.id)
                .await?
                .unwrap_or_default(),
        };
        let waybill = self.prepare(order, instance, &operator).await?;
        let previous = previous_failures(existing.as_ref());
        let Some(intent) = self.claim(order, instance, &waybill, existing).await? else {
            // Another replica wrote first: report what it did.
            return Ok(match self.inner.store.get(&order.id).await? {
                Some(r) => self
                    .settled_outcome(&r, takeover_after)
                    .unwrap_or(ExportOutcome::InProgress),
                None => ExportOutcome::InProgress,
            });
        };
        let sent = numbering::provider_order(order, intent.export_seq);
        let created = super::observed(
            instance,
            crate::error::Operation::Create,
            instance.provider.create_order(&sent, &waybill),
        )
        .await
        .and_then(|shipment| accepted_shipment(&sent.id, instance, shipment));
        match created {
            Ok(shipment) => self.record_export(intent, instance, shipment).await,
            Err(error) => {
                self.record_failure(intent, &error, previous).await?;
                Err(error)
            }
        }
    }

    /// The outcome for a record that must not be exported now: suspended (for automation),
    /// exported already, or being exported by someone else.
    fn no_export_needed(
        &self,
        record: &ShipmentRecord,
        trigger: Trigger,
        takeover_after: Duration,
    ) -> Option<ExportOutcome> {
        if trigger == Trigger::Automation && record.automation == Automation::Suspended {
            return Some(ExportOutcome::Suspended);
        }
        self.settled_outcome(record, takeover_after)
    }

    /// Writes the export intent — before the provider call, so that a crash in between
    /// leaves a trace that reconciliation can complete — with compare-and-swap: `None` when
    /// another caller wrote first.
    async fn claim(
        &self,
        order: &Order,
        instance: &Instance,
        waybill: &Waybill,
        existing: Option<ShipmentRecord>,
    ) -> Result<Option<ShipmentRecord>> {
        let now = self.now();
        let mut intent = ShipmentRecord::new(
            order.clone(),
            instance.id.clone(),
            waybill.clone(),
            ExportState::Exporting {
                since: now,
                owner: Some(self.inner.owner.clone()),
            },
            now,
        );
        match existing {
            None => Ok(self
                .inner
                .store
                .insert(intent.clone(), Effects::none())
                .await?
                .then_some(intent)),
            Some(record) => {
                intent.version = record.version;
                intent.automation = record.automation;
                // A re-export (exception resolution) numbered the record anew; keep it.
                intent.export_seq = record.export_seq;
                intent.history = record.history;
                intent.current_status = record.current_status;
                match self.inner.store.update(intent, Effects::none()).await {
                    Ok(saved) => Ok(Some(saved)),
                    Err(Error::Conflict { .. }) => Ok(None),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// The provider has the order: the record says so (with the first status, announced by
    /// the event), and the host hears [`EventKind::Exported`].
    async fn record_export(
        &self,
        intent: ShipmentRecord,
        instance: &Instance,
        shipment: Shipment,
    ) -> Result<ExportOutcome> {
        let at = self.now();
        let exported = ExportState::Exported {
            shipment: shipment.reference.clone(),
            tracking_number: shipment.tracking_number.clone(),
            at,
        };
        let first_status = shipment.status.clone();
        self.modify(intent, |r| {
            r.export = exported.clone();
            if let Some(status) = &first_status {
                r.push_status(status.clone());
                // Announced by the Exported event: the first poll that finds it unchanged
                // has no news.
                let shared = Arc::new(status.clone());
                r.current_status = Some(Arc::clone(&shared));
                r.last_reported = Some(shared);
            }
            r.updated_at = at;
            vec![EventKind::Exported {
                shipment: shipment.reference.clone(),
                tracking_number: shipment.tracking_number.clone(),
            }]
        })
        .await?;
        Ok(ExportOutcome::Exported {
            instance: instance.id.clone(),
            shipment,
        })
    }

    /// The export failed: the record keeps the order with the failure, retryable while the
    /// error is and the retry limits allow, and the host hears [`EventKind::ExportFailed`].
    async fn record_failure(
        &self,
        intent: ShipmentRecord,
        error: &Error,
        previous: PreviousFailures,
    ) -> Result<()> {
        let at = self.now();
        let attempts = previous.map_or(1, |(attempts, _)| attempts + 1);
        let since = previous.map_or(at, |(_, since)| since);
        let retryable = error.is_retryable() && self.inner.retry_limits.allow(attempts, since, at);
        let failure = error.to_failure();
        let failed = ExportState::Failed {
            retryable,
            failure: failure.clone(),
            attempts,
            since,
        };
        self.modify(intent, |r| {
            r.export = failed.clone();
            r.updated_at = at;
            vec![EventKind::ExportFailed {
                retryable,
                failure: failure.clone(),
            }]
        })
        .await?;
        Ok(())
    }

    /// The outcome for a record that needs no export: already exported, or being exported by
    /// someone else (an intent younger than `takeover_after`).
    pub(super) fn settled_outcome(
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
    pub(super) fn intent_abandoned(&self, export: &ExportState, takeover_after: Duration) -> bool {
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
    pub(super) async fn prepare(
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
        if instance.settings.strict_addresses
            && let Some(problem) = self
                .strict_address_problem(instance, &order.address)
                .await?
        {
            fields.push(problem);
        }
        if fields.is_empty() {
            Ok(waybill)
        } else {
            Err(Error::validation(format!("order {}", order.id), fields))
        }
    }
}

/// The failed attempts an export follows, for the retry limits.
fn previous_failures(existing: Option<&ShipmentRecord>) -> PreviousFailures {
    match existing.map(|r| &r.export) {
        Some(ExportState::Failed {
            attempts, since, ..
        }) => Some((*attempts, *since)),
        _ => None,
    }
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
    if let Some(number) = &shipment.tracking_number
        && !crate::model::usable_id(number, crate::model::TEXT_MAX_CHARS)
    {
        tracing::warn!(order_id = %sent, instance = %instance.id, "unusable tracking number dropped");
        shipment.tracking_number = None;
    }
    shipment.status = shipment.status.map(DeliveryStatus::bounded);
    Ok(shipment)
}
