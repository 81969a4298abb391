//! Cancelling an exported order, and the one helper that records a cancellation (used by
//! cancel, exception resolution and re-export alike).

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{EventKind, Orchestrator, ShipmentRecord, not_exported, observed};
use crate::error::Operation;
use crate::error::Result;
use crate::model::{DeliveryStatus, OrderId, StatusCode};
use crate::provider::CancelOutcome;

impl Orchestrator {
    /// Cancels an exported order at its provider. The shipment's `Cancelled` status keeps the
    /// provider's words when it gives them (Sphere's `void`, Wapi's `Cancelled`), and is
    /// reported once ([`EventKind::DeliveryStatusChanged`]). Cancelling an order whose record
    /// is cancelled already changes nothing and answers
    /// [`CancelOutcome::AlreadyCancelled`] without calling the provider. `TooLate` is passed
    /// through.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`](crate::Error::NotFound) when the order was never exported; the provider's error.
    #[tracing::instrument(name = "fulfillkit.cancel", skip_all, fields(order_id, instance))]
    pub async fn cancel(&self, order_id: impl Into<OrderId>) -> Result<CancelOutcome> {
        let order_id = &order_id.into();
        tracing::Span::current().record("order_id", tracing::field::display(order_id));
        self.with_edit_lease(order_id, self.cancel_leased(order_id))
            .await
    }

    async fn cancel_leased(&self, order_id: &OrderId) -> Result<CancelOutcome> {
        let _guard = self.lock_order(order_id).await;
        let record = self.exported_record(order_id).await?;
        if let Some(cancelled) = record
            .current_status
            .as_ref()
            .filter(|s| s.code == StatusCode::Cancelled)
        {
            return Ok(CancelOutcome::AlreadyCancelled {
                state: Some(cancelled.original.to_string()),
            });
        }
        let Some(shipment) = record.shipment().cloned() else {
            return Err(not_exported(order_id));
        };
        let instance = self.instance_or_err(&record.instance)?;
        tracing::Span::current().record("instance", tracing::field::display(&instance.id));
        let outcome = observed(
            instance,
            Operation::Cancel,
            instance.provider.cancel_order(&shipment),
        )
        .await?;
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
        self.modify(record, |r| {
            mark_cancelled(r, &status, now).into_iter().collect()
        })
        .await
    }
}

/// Marks `r` cancelled with `status` unless its current status is `Cancelled` already:
/// history, current and last reported status, no further polls. Returns the change to report,
/// or `None` when nothing changed.
pub(crate) fn mark_cancelled(
    r: &mut ShipmentRecord,
    status: &DeliveryStatus,
    now: DateTime<Utc>,
) -> Option<EventKind> {
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
    Some(EventKind::DeliveryStatusChanged {
        from: r.last_reported.replace(Arc::clone(&shared)),
        to: shared,
    })
}
