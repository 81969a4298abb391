//! Order exceptions: raised when the provider cannot take an edit, listed for operators, and
//! resolved by them — which resumes automation for the order. While one is open, fulfillkit
//! exports and updates nothing for the order on its own, edits are recorded on it, and every
//! event says `automation: suspended`. A `Reexport` resolution cancels the old shipment and
//! exports the latest version under a new number ([`super::provider_order_id`]).
//!
//! Edits themselves (what raises an exception) are in `changes.rs`.

use std::sync::Arc;

use super::{
    Automation, ChangeOutcome, EventKind, ExceptionCursor, ExceptionFilter, ExportOutcome,
    ExportState, Orchestrator, PAGE, ShipmentRecord, Target, Trigger,
};
use crate::error::{Error, ErrorKind, Failure, FieldError, Result};
use crate::model::{
    DeliveryStatus, ExceptionReason, KeyField, Order, OrderException, OrderId, Resolution,
    ResolutionAction, StatusCode, Waybill,
};
use crate::provider::CancelOutcome;

/// One page of [`Orchestrator::exceptions`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ExceptionPage {
    /// The exceptions, ordered by order id, then by their number within the order.
    pub exceptions: Vec<OrderException>,
    /// Pass this as `after` for the next page; `None` on the last page. Its text form
    /// (`to_string()`, read back with `parse()`) fits in a query string.
    pub next_after: Option<ExceptionCursor>,
}

impl Orchestrator {
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
    /// time), ordered by order id and then by their number within the order (an order keeps
    /// every exception it had), starting after `after`, at most `limit` (1 to 500).
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn exceptions(
        &self,
        filter: &ExceptionFilter,
        after: Option<&ExceptionCursor>,
        limit: usize,
    ) -> Result<ExceptionPage> {
        let limit = limit.clamp(1, PAGE);
        let exceptions = self
            .inner
            .store
            .list_exceptions(filter, after, limit)
            .await?;
        let next_after = (exceptions.len() == limit)
            .then(|| exceptions.last().map(ExceptionCursor::of))
            .flatten();
        Ok(ExceptionPage {
            exceptions,
            next_after,
        })
    }

    /// The latest exception of an order, open or resolved.
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn exception(&self, order_id: impl Into<OrderId>) -> Result<Option<OrderException>> {
        self.inner.store.exception(&order_id.into()).await
    }

    /// Every exception an order had, oldest first.
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn exception_history(
        &self,
        order_id: impl Into<OrderId>,
    ) -> Result<Vec<OrderException>> {
        self.inner.store.exception_history(&order_id.into()).await
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
        self.with_edit_lease(order_id, self.resolve_leased(order_id, resolution))
            .await
    }

    async fn resolve_leased(
        &self,
        order_id: &OrderId,
        resolution: Resolution,
    ) -> Result<OrderException> {
        if resolution.action == ResolutionAction::Reexport {
            // Cancels and exports outside the order lock, since `export` takes it itself.
            self.reexport(order_id).await?;
        }

        let _guard = self.lock_order(order_id).await;
        let exception = self.open_exception(order_id).await?;
        let record = self.record(order_id).await?;
        let now = self.now();
        let cancelled = (resolution.action == ResolutionAction::CancelledAtProvider).then(|| {
            DeliveryStatus::new(
                StatusCode::Cancelled,
                "cancelled at the provider by an operator",
                now,
            )
        });
        let resolved = OrderException {
            resolution: Some(resolution),
            resolved_at: Some(now),
            ..exception
        };
        // One write: the record resumes, the exception is resolved, the events are stored.
        self.modify_with(record, Some(&resolved), |r| {
            r.automation = Automation::Active;
            r.pending_update = None;
            r.updated_at = now;
            let cancelled = cancelled
                .as_ref()
                .and_then(|status| super::mark_cancelled(r, status, now));
            cancelled
                .into_iter()
                .chain([EventKind::ExceptionResolved {
                    exception: resolved.clone(),
                }])
                .collect()
        })
        .await?;
        Ok(resolved)
    }

    /// The `Reexport` work before the exception is resolved: check, cancel, export. Safe to
    /// repeat after a failure at any step: a shipment other than the exception's is never
    /// cancelled, and the export is idempotent on the new number.
    async fn reexport(&self, order_id: &OrderId) -> Result<()> {
        let guard = self.lock_order(order_id).await;
        let exception = self.open_exception(order_id).await?;
        let record = self.record(order_id).await?;
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
            // The old shipment is gone and the new one not made yet: a failed export says so
            // honestly (not retryable by automation, which is suspended anyway), and `export`
            // accepts it. The new shipment starts a new history.
            self.modify(record, |r| {
                let change = super::mark_cancelled(r, &cancelled, now);
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
                change.into_iter().collect()
            })
            .await?;
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

    /// Records an exception for the refused `order`, suspends automation, tells the host.
    pub(super) async fn raise(
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
        let seq = self
            .inner
            .store
            .exception(&current.order_id)
            .await?
            .map_or(1, |latest| latest.seq.saturating_add(1));
        let exception = OrderException {
            order_id: current.order_id.clone(),
            seq,
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
        // One write: the exception, the suspended record and the event.
        self.modify_with(current, Some(&exception), |r| {
            r.automation = Automation::Suspended;
            r.pending_update = None;
            r.updated_at = now;
            vec![EventKind::ExceptionRaised {
                exception: exception.clone(),
            }]
        })
        .await?;
        Ok(ChangeOutcome::Exception { exception })
    }
}
