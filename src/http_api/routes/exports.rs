//! Exports that failed: the ones automation retries and the flagged ones that wait for an
//! operator, a retry (of all, or of one on an operator's word), and attaching the provider's
//! reference of an order that exists there.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::super::ApiState;
use super::super::extract::{ApiJson, ApiPath, ApiQuery};
use super::super::problem::Problem;
use super::orders::{OrderView, record_of};
use super::page_limit;
use crate::error::Failure;
use crate::model::OrderId;
use crate::orchestrator::{Automation, ExportState, ShipmentRecord};

pub(super) fn routes() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::new()
        .routes(routes!(failed))
        .routes(routes!(retry_all))
        .routes(routes!(retry))
        .routes(routes!(attach))
}

/// Filters and the page of the failed exports.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct FailedParams {
    /// `true`: only the flagged ones (automation will not retry them: an operator retries
    /// or attaches); `false`: only those automation retries; absent: both.
    flagged: Option<bool>,
    /// The `next` of the previous page (opaque).
    after: Option<String>,
    /// Exports per page, 1 to 100 (default 25).
    limit: Option<usize>,
}

/// One page of failed exports.
#[derive(Debug, Serialize, ToSchema)]
struct FailedExportList {
    /// The failed exports of this page, ordered by order id.
    items: Vec<FailedExport>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

/// An export that failed.
#[derive(Debug, Serialize, ToSchema)]
struct FailedExport {
    /// The order.
    order_id: String,
    /// The instance it was meant for.
    instance: String,
    /// The customer's name.
    customer: String,
    /// Whether it waits for an operator: automation will not retry it (the error cannot be
    /// fixed by retrying, the retry limits are reached, or an exception suspended the order).
    flagged: bool,
    /// What went wrong the last time: `kind`, `message`, `retryable`, `http_status`,
    /// `endpoint`.
    #[schema(value_type = Object)]
    failure: Failure,
    /// Attempts so far.
    attempts: u32,
    /// When the first of these attempts failed.
    since: DateTime<Utc>,
    /// `active`, or `suspended` while an exception is open.
    #[schema(value_type = String)]
    automation: Automation,
}

impl FailedExport {
    fn of(record: ShipmentRecord) -> Option<Self> {
        let ExportState::Failed {
            retryable,
            failure,
            attempts,
            since,
        } = record.export
        else {
            return None;
        };
        Some(Self {
            order_id: record.order_id.to_string(),
            instance: record.instance.to_string(),
            customer: record.order.customer.name.clone(),
            flagged: !retryable || record.automation == Automation::Suspended,
            failure,
            attempts,
            since,
            automation: record.automation,
        })
    }
}

/// The exports that failed, a page at a time, ordered by order id.
#[utoipa::path(
    get,
    path = "/api/exports/failed",
    tag = "exports",
    params(FailedParams),
    responses(
        (status = 200, description = "One page; follow `next` for the rest", body = FailedExportList),
        (status = 400, description = "Malformed page", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn failed(
    State(state): State<Arc<ApiState>>,
    ApiQuery(params): ApiQuery<FailedParams>,
) -> Result<Json<FailedExportList>, Problem> {
    let limit = page_limit(params.limit)?;
    let mut after = params.after.filter(|a| !a.is_empty()).map(OrderId::from);
    // One more than the page holds tells whether another page follows. The flag is
    // filtered here, so the store's pages are read until this one is full.
    let mut items = Vec::with_capacity(limit + 1);
    while items.len() <= limit {
        let page = state
            .orchestrator
            .failed_exports(after.as_ref(), limit + 1)
            .await?;
        items.extend(
            page.records
                .into_iter()
                .filter_map(FailedExport::of)
                .filter(|f| params.flagged.is_none_or(|flagged| f.flagged == flagged)),
        );
        match page.next_after {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    items.truncate(limit + 1);
    let next = (items.len() > limit)
        .then(|| {
            items.pop();
            items.last().map(|f| f.order_id.clone())
        })
        .flatten();
    Ok(Json(FailedExportList { items, next }))
}

/// An empty JSON body: every state-changing request carries one.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Empty {}

/// What a retry of every failed export did.
#[derive(Debug, Serialize, ToSchema)]
struct RetryReportView {
    /// Failed exports and abandoned intents tried again.
    attempted: usize,
    /// Of those, intents whose owner was gone.
    abandoned: usize,
    /// Of those, now exported.
    exported: usize,
    /// Of those, failed again.
    failed: usize,
    /// Failed exports left alone: flagged (not retryable) or suspended.
    skipped: usize,
}

/// Retries every failed export automation would retry (what the host's periodic
/// `retry_failed_exports` does), now.
#[utoipa::path(
    post,
    path = "/api/exports/retry",
    tag = "exports",
    request_body = Empty,
    responses(
        (status = 200, description = "What was retried", body = RetryReportView),
    )
)]
async fn retry_all(
    State(state): State<Arc<ApiState>>,
    ApiJson(Empty {}): ApiJson<Empty>,
) -> Result<Json<RetryReportView>, Problem> {
    let report = state.orchestrator.retry_failed_exports().await?;
    Ok(Json(RetryReportView {
        attempted: report.attempted,
        abandoned: report.abandoned,
        exported: report.exported,
        failed: report.failed,
        skipped: report.skipped,
    }))
}

/// Exports one recorded order again on the caller's word, also when automation would not
/// (flagged). An order already at the provider is not sent again.
#[utoipa::path(
    post,
    path = "/api/exports/{order_id}/retry",
    tag = "exports",
    params(("order_id" = String, Path, description = "The host's order id")),
    request_body = Empty,
    responses(
        (status = 200, description = "The order's record after the attempt", body = OrderView),
        (status = 404, description = "Fulfillkit has no record of the order", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The order or its waybill is invalid", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The provider failed again (recorded on the order)", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn retry(
    State(state): State<Arc<ApiState>>,
    ApiPath(order_id): ApiPath<String>,
    ApiJson(Empty {}): ApiJson<Empty>,
) -> Result<Json<OrderView>, Problem> {
    let _outcome = state.orchestrator.retry_export(order_id.as_str()).await?;
    Ok(Json(OrderView::of(
        record_of(&state.orchestrator, &order_id).await?,
    )))
}

/// The provider's reference of an order that exists there.
#[derive(Debug, Deserialize, ToSchema)]
struct AttachBody {
    /// The provider's reference (a WH number, an order id at the provider).
    provider_ref: String,
}

/// Attaches the provider's reference of an order that exists at its provider (checked there
/// first): the way out for an export fulfillkit could not finish on its own.
#[utoipa::path(
    post,
    path = "/api/exports/{order_id}/attach",
    tag = "exports",
    params(("order_id" = String, Path, description = "The host's order id")),
    request_body = AttachBody,
    responses(
        (status = 200, description = "Attached; the order's record", body = OrderView),
        (status = 404, description = "No record of the order, or the provider does not know the reference", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The record holds another shipment, or is being exported", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A blank or overlong reference", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The provider failed", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn attach(
    State(state): State<Arc<ApiState>>,
    ApiPath(order_id): ApiPath<String>,
    ApiJson(body): ApiJson<AttachBody>,
) -> Result<Json<OrderView>, Problem> {
    let record = state
        .orchestrator
        .attach_shipment(order_id.as_str(), body.provider_ref)
        .await?;
    Ok(Json(OrderView::of(record)))
}
