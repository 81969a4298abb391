//! What operator screens read and do beyond the lifecycle calls: the failed exports waiting
//! for someone (listed page by page), one order's exception, the waybill values an operator
//! saved, and a retry of one failed export on an operator's word.
//!
//! These exist so that a screen (the host's, or the console of `fulfillkit::http_api`) never
//! needs to call the [`Store`](super::Store) itself: what the store keeps can change shape
//! without every screen changing with it.

use super::{ExportOutcome, Orchestrator, PAGE, ShipmentRecord, Target, Trigger};
use crate::error::Result;
use crate::model::{OrderId, Waybill};

/// One page of [`Orchestrator::failed_exports`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FailedExportPage {
    /// Records whose export failed ([`ExportState::Failed`](super::ExportState::Failed)),
    /// ordered by order id.
    pub records: Vec<ShipmentRecord>,
    /// Pass this as `after` for the next page; `None` on the last page.
    pub next_after: Option<OrderId>,
}

impl Orchestrator {
    /// One page of the records whose export failed, ordered by order id, starting after
    /// `after`, at most `limit` (1 to 500). Each record's [`ExportState::Failed`](super::ExportState::Failed) says whether
    /// automation will retry it (`retryable`) or it waits for an operator: a retry on their
    /// word ([`Self::retry_export`]) or the provider's reference attached
    /// ([`Self::attach_shipment`]).
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn failed_exports(
        &self,
        after: Option<&OrderId>,
        limit: usize,
    ) -> Result<FailedExportPage> {
        let limit = limit.clamp(1, PAGE);
        let records = self.inner.store.list_failed(after, limit).await?;
        let next_after = (records.len() == limit)
            .then(|| records.last().map(|r| r.order_id.clone()))
            .flatten();
        Ok(FailedExportPage {
            records,
            next_after,
        })
    }

    /// The waybill values an operator saved for `order_id` ([`Self::save_waybill`]), without
    /// the instance's defaults; `None` when none were saved.
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn saved_waybill(&self, order_id: impl Into<OrderId>) -> Result<Option<Waybill>> {
        self.inner.store.waybill(&order_id.into()).await
    }

    /// Exports a recorded order again, on an operator's word: to the instance of its record,
    /// with the waybill the operator saved over the instance's defaults (as at confirmation),
    /// also when automation would not (the failure is not retryable, the retry limits are
    /// reached, or an exception suspended the order). Like every export, it never creates a
    /// second shipment: an exported order answers [`ExportOutcome::AlreadyExported`].
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`](crate::Error::NotFound) when the order has no record; otherwise as
    /// [`Self::export_to`] (a failure is recorded on the record again).
    pub async fn retry_export(&self, order_id: impl Into<OrderId>) -> Result<ExportOutcome> {
        let order_id = order_id.into();
        let record = self.record(&order_id).await?;
        let span = tracing::info_span!(
            "fulfillkit.export",
            order_id = %record.order_id,
            instance = %record.instance
        );
        tracing::Instrument::instrument(
            self.export(
                &record.order,
                Target::Instance(&record.instance),
                None,
                Trigger::Operator,
                self.inner.stale_intent,
            ),
            span,
        )
        .await
    }
}
