//! The order card: an order's shipment, its waybill form and values, and its stock as the
//! caller's role may see it.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::super::ApiState;
use super::super::caller::Caller;
use super::super::extract::{ApiJson, ApiPath, ApiQuery};
use super::super::problem::Problem;
use crate::error::{Error, Result};
use crate::model::{DeliveryStatus, InstanceId, Order, StockDisplay, StockView, Waybill};
use crate::orchestrator::{Automation, ExportState, Orchestrator, ShipmentRecord};

pub(super) fn routes() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::new()
        .routes(routes!(order))
        .routes(routes!(waybill, save_waybill))
        .routes(routes!(stock))
        .routes(routes!(stock_of_order))
}

/// What fulfillkit keeps about one order's shipment.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct OrderView {
    /// The host's order id.
    order_id: String,
    /// The instance it is (being) exported to.
    instance: String,
    /// `exporting`, `exported` or `failed`.
    export_state: &'static str,
    /// The export state in full: for `exported` the provider's reference and tracking number,
    /// for `failed` the failure (kind, message, HTTP status, endpoint), the attempts and
    /// whether automation retries it.
    #[schema(value_type = Object)]
    export: ExportState,
    /// `active`, or `suspended` while an exception is open.
    #[schema(value_type = String)]
    automation: Automation,
    /// The current delivery status: normalized `code`, the provider's `original` text, `at`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    current_status: Option<DeliveryStatus>,
    /// The order as last sent to the provider.
    #[schema(value_type = Object)]
    order: Order,
    /// When the record last changed.
    updated_at: DateTime<Utc>,
}

impl OrderView {
    pub(super) fn of(record: ShipmentRecord) -> Self {
        let export_state = match &record.export {
            ExportState::Exporting { .. } => "exporting",
            ExportState::Exported { .. } => "exported",
            ExportState::Failed { .. } => "failed",
        };
        Self {
            order_id: record.order_id.to_string(),
            instance: record.instance.to_string(),
            export_state,
            export: record.export,
            automation: record.automation,
            current_status: record.current_status.as_deref().cloned(),
            order: Order::clone(&record.order),
            updated_at: record.updated_at,
        }
    }
}

/// The shipment record of `order_id`, or `NotFound` naming it.
pub(super) async fn record_of(
    orchestrator: &Orchestrator,
    order_id: &str,
) -> Result<ShipmentRecord> {
    orchestrator
        .shipment(order_id)
        .await?
        .ok_or_else(|| Error::NotFound {
            what: format!("order {order_id} (fulfillkit has no record of it)"),
        })
}

/// The shipment of an order fulfillkit knows.
#[utoipa::path(
    get,
    path = "/api/orders/{order_id}",
    tag = "orders",
    params(("order_id" = String, Path, description = "The host's order id")),
    responses(
        (status = 200, description = "The order's shipment record", body = OrderView),
        (status = 404, description = "Fulfillkit has no record of the order", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn order(
    State(state): State<Arc<ApiState>>,
    ApiPath(order_id): ApiPath<String>,
) -> Result<Json<OrderView>, Problem> {
    Ok(Json(OrderView::of(
        record_of(&state.orchestrator, &order_id).await?,
    )))
}

/// Which instance's form to show.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct WaybillParams {
    /// The instance whose form to show; defaults to the instance of the order's shipment
    /// record, then to the one its saved values were meant for.
    instance: Option<String>,
}

/// The waybill form of an order in the order card.
#[derive(Debug, Serialize, ToSchema)]
struct WaybillView {
    /// The order.
    order_id: String,
    /// The instance whose form this is.
    instance: String,
    /// The form as JSON Schema (draft 2020-12), with the instance's defaults as `default`s;
    /// optional selects start with `{"const": null}`, decimals are strings.
    #[schema(value_type = Object)]
    schema: Value,
    /// Rendering hints: `ui:order`, the fields in their declared order.
    #[schema(value_type = Object)]
    ui_schema: Value,
    /// The values an operator saved (without the instance's defaults, which are in the
    /// schema).
    #[schema(value_type = Object)]
    values: Map<String, Value>,
}

/// Which instance an order's waybill belongs to: the one asked for, the record's, the one the
/// saved values were meant for.
async fn waybill_instance(
    orchestrator: &Orchestrator,
    order_id: &str,
    asked: Option<String>,
    saved: Option<&Waybill>,
) -> Result<InstanceId, Problem> {
    if let Some(instance) = asked.filter(|i| !i.trim().is_empty()) {
        return Ok(InstanceId::from(instance));
    }
    if let Some(record) = orchestrator.shipment(order_id).await? {
        return Ok(record.instance);
    }
    if let Some(instance) = saved.and_then(|w| w.instance.clone()) {
        return Ok(instance);
    }
    Err(Problem::from_error(&Error::validation(
        format!("waybill of order {order_id}"),
        vec![crate::error::FieldError::new(
            "instance",
            "is required: fulfillkit has no record of the order yet",
        )],
    )))
}

fn view(
    orchestrator: &Orchestrator,
    order_id: &str,
    instance: &InstanceId,
    saved: Option<Waybill>,
) -> Result<WaybillView> {
    let form = orchestrator.waybill_form(instance)?;
    let values = saved
        .filter(|w| w.instance.as_ref().is_none_or(|i| i == instance))
        .map(|w| w.values.into_iter().collect())
        .unwrap_or_default();
    Ok(WaybillView {
        order_id: order_id.to_owned(),
        instance: instance.to_string(),
        schema: form.json_schema(),
        ui_schema: form.ui_schema(),
        values,
    })
}

/// An order's waybill form and the values saved for it.
#[utoipa::path(
    get,
    path = "/api/orders/{order_id}/waybill",
    tag = "orders",
    params(("order_id" = String, Path, description = "The host's order id"), WaybillParams),
    responses(
        (status = 200, description = "The form and its values", body = WaybillView),
        (status = 404, description = "Unknown instance", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No instance given for an order fulfillkit has no record of", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn waybill(
    State(state): State<Arc<ApiState>>,
    ApiPath(order_id): ApiPath<String>,
    ApiQuery(params): ApiQuery<WaybillParams>,
) -> Result<Json<WaybillView>, Problem> {
    let orchestrator = &state.orchestrator;
    let saved = orchestrator.saved_waybill(order_id.as_str()).await?;
    let instance =
        waybill_instance(orchestrator, &order_id, params.instance, saved.as_ref()).await?;
    Ok(Json(view(orchestrator, &order_id, &instance, saved)?))
}

/// Waybill values to save.
#[derive(Debug, Deserialize, ToSchema)]
struct WaybillValues {
    /// The instance the values are meant for (as for reading the form).
    #[serde(default)]
    instance: Option<String>,
    /// Field key → value, as the form's schema describes it; `null` or absent leaves a field
    /// to the instance's default.
    #[schema(value_type = Object)]
    values: Map<String, Value>,
}

/// Saves an operator's waybill values for an order, once they pass the instance's form (with
/// its defaults filled in, as export will check them); they take precedence over the
/// instance's defaults at export. An order fulfillkit has a record of takes values for its
/// record's instance only.
#[utoipa::path(
    put,
    path = "/api/orders/{order_id}/waybill",
    tag = "orders",
    params(("order_id" = String, Path, description = "The host's order id")),
    request_body = WaybillValues,
    responses(
        (status = 200, description = "Saved; the form and the saved values", body = WaybillView),
        (status = 404, description = "Unknown instance", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid values, one entry per field in `errors` (`/values/<key>`), or another instance than the record's", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn save_waybill(
    State(state): State<Arc<ApiState>>,
    ApiPath(order_id): ApiPath<String>,
    ApiJson(body): ApiJson<WaybillValues>,
) -> Result<Json<WaybillView>, Problem> {
    let orchestrator = &state.orchestrator;
    let recorded = orchestrator
        .shipment(order_id.as_str())
        .await?
        .map(|r| r.instance);
    let instance = waybill_instance(orchestrator, &order_id, body.instance, None).await?;
    // Export and its retries send the waybill to the record's instance: values meant for
    // another instance's form would only fail there.
    if let Some(recorded) = recorded.filter(|r| *r != instance) {
        return Err(Problem::from_error(&Error::validation(
            format!("waybill of order {order_id}"),
            vec![crate::error::FieldError::new(
                "instance",
                format!("must be {recorded}, where the order is recorded"),
            )],
        )));
    }
    let form = orchestrator.waybill_form(&instance)?;
    let waybill = Waybill {
        instance: Some(instance.clone()),
        values: body.values.into_iter().collect(),
    };
    form.validate(&form.fill_defaults(&waybill))
        .map_err(|error| match error {
            Error::Validation { fields, .. } => {
                Error::validation(format!("waybill of order {order_id}"), fields)
            }
            other => other,
        })?;
    orchestrator
        .save_waybill(order_id.as_str(), waybill.clone())
        .await?;
    Ok(Json(view(
        orchestrator,
        &order_id,
        &instance,
        Some(waybill),
    )?))
}

/// The stock of an order's cart lines, as the caller's role may see it.
#[derive(Debug, Serialize, ToSchema)]
struct OrderStockView {
    /// The instance the stock was read at: the order's record's, or the one it routes to.
    instance: String,
    /// The caller's role.
    role: String,
    /// What the role sees at this instance: `hidden`, `levels` or `exact`.
    #[schema(value_type = String)]
    view: StockView,
    /// One entry per cart line, in cart order.
    lines: Vec<LineStockView>,
}

/// The stock of one cart line as the caller's role sees it.
#[derive(Debug, Serialize, ToSchema)]
struct LineStockView {
    /// Position of the line in the order.
    line: usize,
    /// The line's product.
    sku: String,
    /// Units the line asks for.
    quantity: u32,
    /// `"hidden"`, `{"level": "out_of_stock" | "few" | "in_stock" | "many"}` or
    /// `{"exact": {"available": n}}`; `null` when the provider does not report the sku.
    #[schema(value_type = Option<Object>)]
    stock: Option<StockDisplay>,
}

/// Stock of `order` as `role` sees it. A role that sees nothing costs no provider call.
async fn stock_for(
    orchestrator: &Orchestrator,
    order: &Order,
    role: &str,
) -> Result<OrderStockView> {
    let instance_id = match orchestrator.shipment(order.id.clone()).await? {
        Some(record) => record.instance,
        None => orchestrator.route(order)?.instance,
    };
    let instance = orchestrator
        .instance(&instance_id)
        .ok_or_else(|| Error::NotFound {
            what: format!("instance {instance_id}"),
        })?;
    let view = instance.settings.stock_policy.view_for(role);
    let lines = if view == StockView::Hidden {
        order
            .lines
            .iter()
            .enumerate()
            .map(|(line, l)| LineStockView {
                line,
                sku: l.sku.to_string(),
                quantity: l.quantity,
                stock: Some(StockDisplay::Hidden),
            })
            .collect()
    } else {
        let stock = orchestrator.stock_for_order(order).await?;
        let mut lines = Vec::with_capacity(stock.lines.len());
        for line in stock.lines {
            let shown = match &line.stock {
                Some(level) => Some(orchestrator.render_stock(&stock.instance, role, level)?),
                None => None,
            };
            lines.push(LineStockView {
                line: line.line,
                sku: line.sku.to_string(),
                quantity: line.quantity,
                stock: shown,
            });
        }
        lines
    };
    Ok(OrderStockView {
        instance: instance_id.to_string(),
        role: role.to_owned(),
        view,
        lines,
    })
}

/// The stock of a recorded order's cart lines, as the caller's role may see it.
#[utoipa::path(
    get,
    path = "/api/orders/{order_id}/stock",
    tag = "orders",
    params(("order_id" = String, Path, description = "The host's order id")),
    responses(
        (status = 200, description = "Stock per cart line", body = OrderStockView),
        (status = 404, description = "Fulfillkit has no record of the order (post it to /api/stock)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The provider has no stock", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The provider failed", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn stock(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    ApiPath(order_id): ApiPath<String>,
) -> Result<Json<OrderStockView>, Problem> {
    let record = record_of(&state.orchestrator, &order_id).await?;
    Ok(Json(
        stock_for(&state.orchestrator, &record.order, caller.role()).await?,
    ))
}

/// An order fulfillkit may not know yet (the card before confirmation).
#[derive(Debug, Deserialize, ToSchema)]
struct OrderBody {
    /// The order, as fulfillkit's `Order` serializes.
    #[schema(value_type = Object)]
    order: Order,
}

/// The stock of any order's cart lines (one fulfillkit has no record of yet, routed by the
/// routing rules), as the caller's role may see it. A POST only because the order is the
/// request's body: nothing is stored.
#[utoipa::path(
    post,
    path = "/api/stock",
    tag = "orders",
    request_body = OrderBody,
    responses(
        (status = 200, description = "Stock per cart line", body = OrderStockView),
        (status = 422, description = "No routing rule matched, or the provider has no stock", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The provider failed", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn stock_of_order(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    ApiJson(body): ApiJson<OrderBody>,
) -> Result<Json<OrderStockView>, Problem> {
    Ok(Json(
        stock_for(&state.orchestrator, &body.order, caller.role()).await?,
    ))
}
