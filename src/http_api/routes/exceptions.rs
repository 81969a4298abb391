//! Order exceptions: the list with its filters and pages, one exception with both versions of
//! the order and what changed between them, and resolving it. Every read goes through
//! `exception_source`.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::super::ApiState;
use super::super::caller::Caller;
use super::super::exception_source;
use super::super::extract::{ApiJson, ApiPath, ApiQuery};
use super::super::problem::{Problem, ProblemField};
use super::page_limit;
use crate::model::{
    DeliveryStatus, ExceptionReason, KeyField, Order, OrderException, Resolution, ResolutionAction,
};
use crate::orchestrator::ExceptionFilter;

/// Longest resolution note, in characters.
const NOTE_MAX_CHARS: usize = 2_000;

pub(super) fn routes() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(detail))
        .routes(routes!(resolve))
}

/// Which exceptions to list.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum StatusFilter {
    /// Waiting for an operator (the default).
    #[default]
    Open,
    /// Resolved.
    Resolved,
    /// Both.
    All,
}

/// Filters and the page of the exception list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ExceptionParams {
    /// `open` (default), `resolved` or `all`.
    #[serde(default)]
    #[param(inline)]
    status: StatusFilter,
    /// Only this instance.
    instance: Option<String>,
    /// Detected at or after (RFC 3339).
    since: Option<DateTime<Utc>>,
    /// Detected before (RFC 3339).
    until: Option<DateTime<Utc>>,
    /// The `next` of the previous page (opaque).
    after: Option<String>,
    /// Exceptions per page, 1 to 100 (default 25).
    limit: Option<usize>,
}

/// One page of exceptions.
#[derive(Debug, Serialize, ToSchema)]
struct ExceptionList {
    /// The exceptions of this page.
    items: Vec<ExceptionSummary>,
    /// Pass as `after` for the next page; absent when no more can follow (a full page may
    /// be followed by an empty one).
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

/// An exception in the list.
#[derive(Debug, Serialize, ToSchema)]
struct ExceptionSummary {
    /// The order.
    order_id: String,
    /// The instance the order was exported to.
    instance: String,
    /// The customer's name as the provider has it.
    customer: String,
    /// `too_late`, `unsupported` or `provider_failed`.
    #[schema(value_type = String)]
    reason: ExceptionReason,
    /// Key fields the refused edit changed: `name`, `phone`, `address`, `cart`.
    #[schema(value_type = Vec<String>)]
    changed_fields: BTreeSet<KeyField>,
    /// The provider's state that made the update impossible, in its words.
    #[serde(skip_serializing_if = "Option::is_none")]
    provider_state: Option<String>,
    /// The delivery status when the refusal was seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    delivery_status: Option<DeliveryStatus>,
    /// Edits seen while it was open.
    later_edits: usize,
    /// When the refusal was seen.
    detected_at: DateTime<Utc>,
    /// Whether it waits for an operator.
    open: bool,
    /// How it was resolved: `action`, `by`, `note`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    resolution: Option<Resolution>,
    /// When it was resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    resolved_at: Option<DateTime<Utc>>,
}

impl ExceptionSummary {
    fn of(exception: OrderException) -> Self {
        Self {
            order_id: exception.order_id.to_string(),
            instance: exception.instance.to_string(),
            customer: exception.exported.customer.name.clone(),
            reason: exception.reason,
            open: exception.is_open(),
            later_edits: exception.later_edits.len(),
            changed_fields: exception.changed_fields,
            provider_state: exception.provider_state,
            delivery_status: exception.delivery_status,
            detected_at: exception.detected_at,
            resolution: exception.resolution,
            resolved_at: exception.resolved_at,
        }
    }
}

/// The order exceptions passing the filters, a page at a time, ordered by order id.
#[utoipa::path(
    get,
    path = "/api/exceptions",
    tag = "exceptions",
    params(ExceptionParams),
    responses(
        (status = 200, description = "One page; follow `next` for the rest", body = ExceptionList),
        (status = 400, description = "Malformed filter or page", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list(
    State(state): State<Arc<ApiState>>,
    ApiQuery(params): ApiQuery<ExceptionParams>,
) -> Result<Json<ExceptionList>, Problem> {
    let limit = page_limit(params.limit)?;
    if let (Some(since), Some(until)) = (params.since, params.until)
        && since >= until
    {
        return Err(Problem::bad_request(
            "the time range is empty",
            vec![ProblemField::new("until", "must be after since")],
        ));
    }
    let mut filter = match params.status {
        StatusFilter::Open => ExceptionFilter::open(),
        StatusFilter::Resolved => ExceptionFilter::resolved(),
        StatusFilter::All => ExceptionFilter::default(),
    };
    if let Some(instance) = params.instance.filter(|i| !i.trim().is_empty()) {
        filter = filter.with_instance(instance);
    }
    filter = filter.detected_between(params.since, params.until);
    let page = exception_source::page(
        &state.orchestrator,
        &filter,
        params.after.as_deref().filter(|a| !a.is_empty()),
        limit,
    )
    .await?;
    Ok(Json(ExceptionList {
        items: page
            .exceptions
            .into_iter()
            .map(ExceptionSummary::of)
            .collect(),
        next: page.next,
    }))
}

/// One exception in full, with what changed.
#[derive(Debug, Serialize, ToSchema)]
struct ExceptionDetail {
    /// Whether it waits for an operator.
    open: bool,
    /// The key fields that differ between what the provider has and the host's latest
    /// version, side by side.
    changes: Vec<FieldChange>,
    /// The exception: both versions of the order (`exported`, what the provider has, and
    /// `requested`, the refused edit), `later_edits`, the provider's state, the delivery
    /// status, and the resolution once handled.
    #[schema(value_type = Object)]
    exception: OrderException,
}

/// One key field, as the provider has it and as the host asks for it.
#[derive(Debug, Serialize, ToSchema)]
struct FieldChange {
    /// `name`, `phone`, `address` or `cart`.
    #[schema(value_type = String)]
    field: KeyField,
    /// As the provider has it.
    exported: String,
    /// As the host's latest version has it.
    requested: String,
}

/// A key field of `order` as one line of text, for people to compare.
fn key_field_text(order: &Order, field: KeyField) -> String {
    match field {
        KeyField::Name => order.customer.name.clone(),
        KeyField::Phone => order.customer.phone.clone(),
        KeyField::Address => {
            let a = &order.address;
            let mut parts: Vec<String> = a.lines.clone();
            parts.push(format!("{} {}", a.postcode, a.city).trim().to_owned());
            if let Some(region) = &a.region {
                parts.push(region.clone());
            }
            parts.push(a.country.clone());
            if let Some(point) = &a.pickup_point_id {
                parts.push(format!("pickup point {point}"));
            }
            parts.join(", ")
        }
        KeyField::Cart => order
            .lines
            .iter()
            .map(|l| format!("{} × {} @ {}", l.sku, l.quantity, l.unit_price.normalize()))
            .collect::<Vec<_>>()
            .join("; "),
    }
}

impl ExceptionDetail {
    fn of(exception: OrderException) -> Self {
        let latest = exception.latest_requested();
        let changes = KeyField::ALL
            .into_iter()
            .filter_map(|field| {
                let exported = key_field_text(&exception.exported, field);
                let requested = key_field_text(latest, field);
                (exported != requested).then_some(FieldChange {
                    field,
                    exported,
                    requested,
                })
            })
            .collect();
        Self {
            open: exception.is_open(),
            changes,
            exception,
        }
    }
}

/// An order's exception (the open one, or the last resolved) with both versions of the order.
#[utoipa::path(
    get,
    path = "/api/exceptions/{order_id}",
    tag = "exceptions",
    params(("order_id" = String, Path, description = "The host's order id")),
    responses(
        (status = 200, description = "The exception", body = ExceptionDetail),
        (status = 404, description = "The order has no exception", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn detail(
    State(state): State<Arc<ApiState>>,
    ApiPath(order_id): ApiPath<String>,
) -> Result<Json<ExceptionDetail>, Problem> {
    let exception = exception_source::of_order(&state.orchestrator, &order_id).await?;
    Ok(Json(ExceptionDetail::of(exception)))
}

/// An operator's decision; who decided is the caller.
#[derive(Debug, Deserialize, ToSchema)]
struct ResolveBody {
    /// `accept_provider_version` (keep what the provider has), `reexport` (cancel at the
    /// provider and export the latest version anew), `cancelled_at_provider` (the operator
    /// cancelled it there), `manual` (handled outside fulfillkit).
    #[schema(value_type = String)]
    action: ResolutionAction,
    /// A note for the record.
    #[serde(default)]
    note: Option<String>,
}

/// Resolves an order's open exception as the caller decided, resuming automation for the
/// order.
#[utoipa::path(
    post,
    path = "/api/exceptions/{order_id}/resolve",
    tag = "exceptions",
    params(("order_id" = String, Path, description = "The host's order id")),
    request_body = ResolveBody,
    responses(
        (status = 200, description = "Resolved", body = ExceptionDetail),
        (status = 404, description = "The order has no exception", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already resolved, or (reexport) too late to cancel at the provider", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid resolution, or (reexport) the order cannot be exported", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The provider failed; the exception stays open", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn resolve(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    ApiPath(order_id): ApiPath<String>,
    ApiJson(body): ApiJson<ResolveBody>,
) -> Result<Json<ExceptionDetail>, Problem> {
    let mut resolution = Resolution::new(body.action, caller.operator());
    if let Some(note) = body.note.filter(|n| !n.trim().is_empty()) {
        if note.chars().count() > NOTE_MAX_CHARS {
            return Err(Problem::from_error(&crate::Error::validation(
                format!("resolution of the exception of order {order_id}"),
                vec![crate::error::FieldError::new(
                    "note",
                    format!("must be at most {NOTE_MAX_CHARS} characters"),
                )],
            )));
        }
        resolution = resolution.with_note(note);
    }
    let resolved = state
        .orchestrator
        .resolve_exception(order_id.as_str(), resolution)
        .await?;
    Ok(Json(ExceptionDetail::of(resolved)))
}
