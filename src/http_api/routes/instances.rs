//! Who is asking, the instances, and an instance's address / pickup-point directory.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::super::ApiState;
use super::super::caller::Caller;
use super::super::extract::{ApiPath, ApiQuery};
use super::super::problem::{Problem, ProblemField};
use crate::model::{Address, AddressOption, AddressQuery, StockView};
use crate::orchestrator::{AcceptedPayment, Instance};

/// Most directory entries one search returns.
const MAX_ADDRESS_RESULTS: usize = 50;

pub(super) fn routes() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(list))
        .routes(routes!(addresses))
}

/// The caller, as the host's layer identified them.
#[utoipa::path(
    get,
    path = "/api/me",
    tag = "caller",
    responses(
        (status = 200, description = "The caller", body = Caller),
        (status = 401, description = "No caller", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn me(caller: Caller) -> Json<Caller> {
    Json(caller)
}

/// Instances.
#[derive(Debug, Serialize, ToSchema)]
struct InstanceList {
    /// In registration order.
    items: Vec<InstanceView>,
}

/// One configured provider account, as an operator sees it.
#[derive(Debug, Serialize, ToSchema)]
struct InstanceView {
    /// Instance id, used by routing rules and in every record.
    id: String,
    /// Human-readable name.
    label: String,
    /// The provider kind (`wapi`, `sphere`, `shipbob`, …).
    provider: String,
    /// A disabled instance receives no new orders.
    enabled: bool,
    /// `prepaid`, `cash_on_delivery` or `any`.
    #[schema(value_type = String)]
    accepted_payment: AcceptedPayment,
    /// The merchant's legal entity.
    #[serde(skip_serializing_if = "Option::is_none")]
    legal_entity: Option<String>,
    /// The warehouse the account ships from.
    #[serde(skip_serializing_if = "Option::is_none")]
    warehouse: Option<String>,
    /// Whether only addresses from the provider's directory are accepted.
    strict_addresses: bool,
    /// What the provider can do.
    capabilities: CapabilitiesView,
    /// How much of this instance's stock the caller's role sees: `hidden`, `levels` or
    /// `exact`.
    #[schema(value_type = String)]
    stock_view: StockView,
    /// Whether the webhook router takes this instance's webhooks.
    webhooks: bool,
}

/// What an instance's provider supports.
#[derive(Debug, Serialize, ToSchema)]
struct CapabilitiesView {
    /// Orders can be changed after export.
    update: bool,
    /// Orders can be cancelled.
    cancel: bool,
    /// Stock can be read.
    stock: bool,
    /// The address / pickup-point directory can be searched.
    address_directory: bool,
    /// The provider pushes tracking updates (webhooks).
    push_tracking: bool,
}

impl InstanceView {
    fn of(instance: &Instance, role: &str, webhooks: bool) -> Self {
        let capabilities = instance.provider.capabilities();
        Self {
            id: instance.id.to_string(),
            label: instance.label.clone(),
            provider: instance.provider.kind().to_owned(),
            enabled: instance.settings.enabled,
            accepted_payment: instance.settings.accepted_payment,
            legal_entity: instance.settings.legal_entity.clone(),
            warehouse: instance.settings.warehouse.clone(),
            strict_addresses: instance.settings.strict_addresses,
            capabilities: CapabilitiesView {
                update: capabilities.update,
                cancel: capabilities.cancel,
                stock: capabilities.stock,
                address_directory: capabilities.address_directory,
                push_tracking: capabilities.push_tracking,
            },
            stock_view: instance.settings.stock_policy.view_for(role),
            webhooks,
        }
    }
}

/// The instances, in registration order.
#[utoipa::path(
    get,
    path = "/api/instances",
    tag = "instances",
    responses(
        (status = 200, description = "The instances", body = InstanceList),
        (status = 401, description = "No caller", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list(State(state): State<Arc<ApiState>>, caller: Caller) -> Json<InstanceList> {
    let items = state
        .orchestrator
        .instances()
        .iter()
        .map(|i| InstanceView::of(i, caller.role(), state.webhook_instances.contains(&i.id)))
        .collect();
    Json(InstanceList { items })
}

/// A search of an instance's directory.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct AddressSearch {
    /// ISO 3166-1 alpha-2 country (required).
    country: String,
    /// Restrict to a city.
    city: Option<String>,
    /// Restrict to postcodes starting with this.
    postcode: Option<String>,
    /// Free text: name, street or code; every word must match.
    text: Option<String>,
    /// Only pickup points and lockers.
    #[serde(default)]
    pickup_points_only: bool,
    /// At most this many entries, 1 to 50 (default 20).
    limit: Option<usize>,
}

/// Directory entries, best match first.
#[derive(Debug, Serialize, ToSchema)]
struct AddressList {
    items: Vec<AddressEntry>,
}

/// One directory entry and the order address it becomes when chosen.
#[derive(Debug, Serialize, ToSchema)]
struct AddressEntry {
    /// The entry: `id`, `kind` (`door`, `pickup_point`, `locker`), `label`, `address`,
    /// `carrier`, `opening_hours`.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    entry: AddressOption,
    /// The order's shipping address for this entry (with `provider_address_id` and, for a
    /// pickup point or locker, `pickup_point_id` set).
    #[schema(value_type = Object)]
    order_address: Address,
}

/// Searches an instance's address / pickup-point directory (served from fulfillkit's cache
/// of the provider's directory, so typing costs no provider call).
#[utoipa::path(
    get,
    path = "/api/instances/{instance}/addresses",
    tag = "instances",
    params(("instance" = String, Path, description = "Instance id"), AddressSearch),
    responses(
        (status = 200, description = "Matching entries, best first", body = AddressList),
        (status = 400, description = "Malformed query", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown instance", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The provider has no directory", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The provider failed", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn addresses(
    State(state): State<Arc<ApiState>>,
    ApiPath(instance): ApiPath<String>,
    ApiQuery(search): ApiQuery<AddressSearch>,
) -> Result<Json<AddressList>, Problem> {
    let limit = search
        .limit
        .unwrap_or(crate::orchestrator::DEFAULT_ADDRESS_LIMIT);
    if !(1..=MAX_ADDRESS_RESULTS).contains(&limit) {
        return Err(Problem::bad_request(
            "limit is out of range",
            vec![ProblemField::new(
                "limit",
                format!("must be between 1 and {MAX_ADDRESS_RESULTS}"),
            )],
        ));
    }
    let country = search.country.trim().to_ascii_uppercase();
    if !crate::model::is_country_code(&country) {
        return Err(Problem::bad_request(
            "country is not a country code",
            vec![ProblemField::new(
                "country",
                "must be an ISO 3166-1 alpha-2 code",
            )],
        ));
    }
    let mut query = AddressQuery::in_country(country)
        .pickup_points_only(search.pickup_points_only)
        .with_limit(limit);
    let given = |text: Option<String>| text.filter(|t| !t.trim().is_empty());
    if let Some(city) = given(search.city) {
        query = query.with_city(city);
    }
    if let Some(postcode) = given(search.postcode) {
        query = query.with_postcode(postcode);
    }
    if let Some(text) = given(search.text) {
        query = query.with_text(text);
    }
    let found = state
        .orchestrator
        .search_addresses(&instance, &query)
        .await?;
    let items = found
        .into_iter()
        .map(|entry| AddressEntry {
            order_address: entry.to_address(),
            entry,
        })
        .collect();
    Ok(Json(AddressList { items }))
}
