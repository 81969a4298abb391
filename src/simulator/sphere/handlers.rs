//! The HTTP side of the [`SphereSimulator`](super::SphereSimulator): `SphereApi`, the [`Api`]
//! the server calls with each request. It routes the request below the environment, checks
//! the API key, environment and client code, validates the body against the protocol and the
//! product master, pages listings and runs the action's handler against the state.
//!
//! The orders, shipments and their JSON rows are in `state.rs`; faults, counting and the HTTP
//! server itself are shared with Wapi in `simulator/server.rs` and `simulator/faults.rs`.

use std::sync::Mutex;

use chrono::NaiveDate;
use hyper::Method;
use serde_json::{Map, Value, json};

use super::fixtures::SphereCustomer;
use super::state::{SphereOrder, SphereState};
use crate::error::FieldError;
use crate::http::Secret;
use crate::model::normalize_status_key;
use crate::simulator::lifecycle::{OrderBook, Progress, Step};
use crate::simulator::server::{Api, Core, SimRequest, SimResponse, lock};

/// Rows per page when a listing sets no `limit`.
const DEFAULT_LIMIT: usize = 100;
/// Most rows per page.
const MAX_LIMIT: usize = 1_000;
/// Longest ship-to customer code (§7.1).
const CUSTOMER_CODE_MAX_CHARS: usize = 20;
/// Statuses (normalized) in which an order may be updated or voided (§10(b)).
const CHANGEABLE: &[&str] = &["open", "pending", "onhold", "backordered", "new", "entered"];

/// Statuses (normalized) of a voided order (§10(a)).
const VOID: &[&str] = &["void", "voided", "cancelled", "canceled", "deleted"];

/// What the server calls for each request: the account, the counters and faults, and the
/// state behind one lock.
pub(super) struct SphereApi {
    pub(super) core: Core,
    pub(super) environment: String,
    pub(super) api_key: Secret,
    pub(super) client_code: String,
    pub(super) location_id: u32,
    pub(super) product_check: bool,
    pub(super) state: Mutex<SphereState>,
}

/// The actions (§6, §7).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Orders,
    Order(String),
    Shipments,
    Inventory,
    InventoryAccounts,
    Customers,
    Adjustments,
    Suppliers,
}

impl Route {
    fn label(&self) -> &'static str {
        match self {
            Route::Orders => "/orders",
            Route::Order(_) => "/orders/{id}",
            Route::Shipments => "/shipments",
            Route::Inventory => "/inventory",
            Route::InventoryAccounts => "/inventory_accounts",
            Route::Customers => "/customers",
            Route::Adjustments => "/adjustments",
            Route::Suppliers => "/suppliers",
        }
    }

    fn allows(&self, method: &Method) -> bool {
        match self {
            Route::Orders => matches!(*method, Method::GET | Method::POST),
            Route::Order(_) => matches!(*method, Method::GET | Method::POST | Method::DELETE),
            _ => *method == Method::GET,
        }
    }
}

/// The environment segment and route of `request`.
fn route(request: &SimRequest) -> Option<(String, Route)> {
    let segments = request.segments_below(&["v2", "wms"], false)?;
    let (environment, rest) = segments.split_first()?;
    let route = match rest {
        [action] => match action.as_str() {
            "orders" => Route::Orders,
            "shipments" => Route::Shipments,
            "inventory" => Route::Inventory,
            "inventory_accounts" => Route::InventoryAccounts,
            "customers" => Route::Customers,
            "adjustments" => Route::Adjustments,
            "suppliers" => Route::Suppliers,
            _ => return None,
        },
        [orders, id] if orders == "orders" => Route::Order(id.clone()),
        _ => return None,
    };
    Some((environment.clone(), route))
}

/// A 422 listing `problems` as `{"errors":[{"field","message"}]}` (§8, §10(c)).
fn unprocessable(problems: &[FieldError]) -> SimResponse {
    let errors: Vec<Value> = problems
        .iter()
        .map(|p| json!({"field": p.path, "message": p.reason}))
        .collect();
    SimResponse::json(422, &json!({ "errors": errors }))
}

/// Constant-time comparison of a supplied key with the real one.
fn same_key(supplied: &str, key: &str) -> bool {
    supplied.len() == key.len()
        && supplied
            .bytes()
            .zip(key.bytes())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

/// The checked essentials of an order body.
struct CheckedOrder {
    number: String,
    customer_code: String,
}

impl SphereApi {
    /// `None` when the key, environment and client are right, else the refusal (§3, §8).
    fn refuse_credentials(&self, request: &SimRequest, environment: &str) -> Option<SimResponse> {
        let mut supplied: Vec<&str> = Vec::new();
        if let Some(authorization) = request.header("authorization") {
            // Another scheme than Bearer supplies no valid key.
            let token = authorization
                .split_once(' ')
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map_or("", |(_, token)| token.trim());
            supplied.push(token);
        }
        supplied.extend(request.header("key"));
        supplied.extend(request.query("key"));
        let key = self.api_key.expose();
        if supplied.is_empty() || !supplied.iter().all(|s| same_key(s, key)) {
            self.core.stats().unauthorized += 1;
            return Some(SimResponse::error(401, "Invalid API key"));
        }
        if environment != self.environment {
            self.core.stats().unauthorized += 1;
            return Some(SimResponse::error(
                403,
                format!("API key is not enabled for environment {environment}"),
            ));
        }
        if let Some(client) = request.query("client_code")
            && client.trim() != self.client_code
        {
            self.core.stats().unauthorized += 1;
            return Some(SimResponse::error(
                403,
                format!("API key is not enabled for client_code {client}"),
            ));
        }
        None
    }

    fn bad_request(&self, message: impl Into<String>) -> SimResponse {
        self.core.stats().bad_requests += 1;
        SimResponse::error(400, message)
    }

    fn json_body(
        &self,
        request: &SimRequest,
    ) -> std::result::Result<Map<String, Value>, SimResponse> {
        match serde_json::from_slice::<Value>(&request.body) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(self.bad_request("the body must be a JSON object")),
            Err(e) => Err(self.bad_request(format!("the body is not valid JSON: {e}"))),
        }
    }

    /// One page of `rows` as `limit` and `page` ask (§4).
    fn page(&self, request: &SimRequest, rows: Vec<Value>) -> SimResponse {
        let number = |name: &str, default: usize| match request.query(name) {
            None => Ok(default),
            Some(text) => text
                .trim()
                .parse::<usize>()
                .map_err(|_| self.bad_request(format!("{name} must be a whole number"))),
        };
        let limit = match number("limit", DEFAULT_LIMIT) {
            Ok(0) => return self.bad_request("limit must be at least 1"),
            Ok(limit) => limit.min(MAX_LIMIT),
            Err(refusal) => return refusal,
        };
        let page = match number("page", 0) {
            Ok(page) => page,
            Err(refusal) => return refusal,
        };
        let rows: Vec<Value> = rows
            .into_iter()
            .skip(page.saturating_mul(limit))
            .take(limit)
            .collect();
        SimResponse::json(200, &Value::Array(rows))
    }

    /// Checks an order body (§7.1) against the account and the product master.
    fn check_order(
        &self,
        body: &Map<String, Value>,
        state: &SphereState,
    ) -> std::result::Result<CheckedOrder, SimResponse> {
        match trimmed(body, "client_code") {
            Some(client) if client == self.client_code => {}
            Some(client) => {
                self.core.stats().unauthorized += 1;
                return Err(SimResponse::error(
                    403,
                    format!("API key is not enabled for client_code {client}"),
                ));
            }
            None => {}
        }
        let mut problems = Vec::new();
        let require =
            |map: &Map<String, Value>, path: &str, name: &str, problems: &mut Vec<FieldError>| {
                let value = trimmed(map, name);
                if value.is_none() {
                    problems.push(FieldError::new(format!("{path}{name}"), "is required"));
                }
                value
            };
        require(body, "", "client_code", &mut problems);
        let number = require(body, "", "order_number", &mut problems).unwrap_or_default();
        let customer_code = require(body, "", "customer_code", &mut problems).unwrap_or_default();
        if customer_code.chars().count() > CUSTOMER_CODE_MAX_CHARS {
            problems.push(FieldError::new(
                "customer_code",
                format!("must be at most {CUSTOMER_CODE_MAX_CHARS} characters"),
            ));
        }
        match body.get("ship_to").and_then(Value::as_object) {
            Some(ship_to) => {
                for name in ["name", "street_1", "city", "zip", "country"] {
                    require(ship_to, "ship_to.", name, &mut problems);
                }
            }
            None => problems.push(FieldError::new("ship_to", "is required")),
        }
        match body.get("location_id").map(|v| (v, v.as_u64())) {
            Some((_, Some(id))) => {
                let known = u32::try_from(id)
                    .is_ok_and(|id| state.accounts(self.location_id).contains(&id));
                if !known {
                    problems.push(FieldError::new(
                        "location_id",
                        format!("Unknown inventory account {id}"),
                    ));
                }
            }
            Some((_, None)) => {
                problems.push(FieldError::new("location_id", "must be an integer"));
            }
            None => problems.push(FieldError::new("location_id", "is required")),
        }
        match body.get("lines").and_then(Value::as_array) {
            Some(lines) if !lines.is_empty() => {
                for (i, line) in lines.iter().enumerate() {
                    let path = format!("lines[{i}]");
                    let Some(line) = line.as_object() else {
                        problems.push(FieldError::new(path, "must be an object"));
                        continue;
                    };
                    match trimmed(line, "product_code") {
                        None => problems.push(FieldError::new(
                            format!("{path}.product_code"),
                            "is required",
                        )),
                        Some(code)
                            if self.product_check
                                && !state.inventory.iter().any(|r| r.product_code == code) =>
                        {
                            problems.push(FieldError::new(
                                format!("{path}.product_code"),
                                format!("Unknown product code {code}"),
                            ));
                        }
                        Some(_) => {}
                    }
                    if line
                        .get("quantity")
                        .and_then(Value::as_u64)
                        .is_none_or(|q| q == 0)
                    {
                        problems.push(FieldError::new(
                            format!("{path}.quantity"),
                            "must be a whole number above 0",
                        ));
                    }
                }
            }
            _ => problems.push(FieldError::new("lines", "must list at least one line")),
        }
        if problems.is_empty() {
            Ok(CheckedOrder {
                number,
                customer_code,
            })
        } else {
            self.core.stats().bad_requests += 1;
            Err(unprocessable(&problems))
        }
    }

    /// Adds the ship-to customer of `body` to the directory when its code is new.
    fn remember_customer(state: &mut SphereState, code: &str, body: &Map<String, Value>) {
        if state.customers.iter().any(|c| c.customer_code == code) {
            return;
        }
        if let Some(ship_to) = body.get("ship_to").and_then(Value::as_object) {
            state.upsert_customer(SphereCustomer::from_ship_to(code, ship_to));
        }
    }

    fn create(&self, request: &SimRequest) -> SimResponse {
        let body = match self.json_body(request) {
            Ok(body) => body,
            Err(refusal) => return refusal,
        };
        let mut state = lock(&self.state);
        let checked = match self.check_order(&body, &state) {
            Ok(checked) => checked,
            Err(refusal) => return refusal,
        };
        *self
            .core
            .stats()
            .creates
            .entry(checked.number.clone())
            .or_insert(0) += 1;
        if state.by_number.contains_key(&checked.number) {
            self.core.stats().duplicates_refused += 1;
            return SimResponse::error(409, format!("duplicate order_number {}", checked.number));
        }
        let id = state.next_order_id;
        state.next_order_id += 1;
        Self::remember_customer(&mut state, &checked.customer_code, &body);
        let Some((progress, first)) = Progress::start(state.picker.pick()) else {
            return SimResponse::error(500, "the order's lifecycle has no step");
        };
        let at = state.clock.now();
        let order = SphereOrder::new(id, checked.number.clone(), body, progress, at);
        state.orders.insert(id, order);
        state.by_number.insert(checked.number, id);
        state.enter(&id, &first);
        match state.orders.get(&id) {
            Some(order) => SimResponse::json(201, &order.row()),
            None => SimResponse::error(500, "the order vanished"),
        }
    }

    fn list_orders(&self, request: &SimRequest) -> SimResponse {
        let number = request.query("order_number").map(str::trim);
        let status = request.query("status").map(normalize_status_key);
        let state = lock(&self.state);
        let mut orders: Vec<&SphereOrder> = state
            .orders
            .values()
            .filter(|o| number.is_none_or(|n| o.number == n))
            .filter(|o| {
                status
                    .as_deref()
                    .is_none_or(|s| normalize_status_key(&o.status) == s)
            })
            .collect();
        orders.sort_by_key(|o| o.id);
        let rows = orders.into_iter().map(SphereOrder::row).collect();
        drop(state);
        self.page(request, rows)
    }

    fn order_not_found(id: &str) -> SimResponse {
        SimResponse::error(404, format!("Order {id} not found"))
    }

    fn read_order(&self, id_text: &str) -> SimResponse {
        let state = lock(&self.state);
        let Some(order) = id_text
            .parse::<u64>()
            .ok()
            .and_then(|id| state.orders.get(&id))
        else {
            return Self::order_not_found(id_text);
        };
        let row = order.row();
        drop(state);
        let mut stats = self.core.stats();
        stats.largest_track_batch = stats.largest_track_batch.max(1);
        SimResponse::json(200, &row)
    }

    fn update_order(&self, request: &SimRequest, id_text: &str) -> SimResponse {
        let Some(id) = id_text.parse::<u64>().ok() else {
            return Self::order_not_found(id_text);
        };
        let body = match self.json_body(request) {
            Ok(body) => body,
            Err(refusal) => return refusal,
        };
        let mut state = lock(&self.state);
        let Some(order) = state.orders.get(&id) else {
            return Self::order_not_found(id_text);
        };
        if !CHANGEABLE.contains(&normalize_status_key(&order.status).as_str()) {
            return SimResponse::error(
                409,
                format!("Order {id} is {} and cannot be updated", order.status),
            );
        }
        let stored_number = order.number.clone();
        let checked = match self.check_order(&body, &state) {
            Ok(checked) => checked,
            Err(refusal) => return refusal,
        };
        if checked.number != stored_number {
            self.core.stats().bad_requests += 1;
            return unprocessable(&[FieldError::new(
                "order_number",
                format!("cannot be changed (order {id} is {stored_number})"),
            )]);
        }
        Self::remember_customer(&mut state, &checked.customer_code, &body);
        let at = state.clock.now();
        match state.orders.get_mut(&id) {
            Some(order) => {
                order.body = body;
                order.updated = at;
                SimResponse::json(200, &order.row())
            }
            None => Self::order_not_found(id_text),
        }
    }

    fn void_order(&self, id_text: &str) -> SimResponse {
        let mut state = lock(&self.state);
        let Some((id, status)) = id_text
            .parse::<u64>()
            .ok()
            .and_then(|id| state.orders.get(&id).map(|o| (id, o.status.clone())))
        else {
            return Self::order_not_found(id_text);
        };
        let key = normalize_status_key(&status);
        // Voiding a void order leaves it void.
        if VOID.contains(&key.as_str()) {
            return SimResponse::json(200, &json!({"order_id": id, "status": status}));
        }
        if !CHANGEABLE.contains(&key.as_str()) {
            return SimResponse::error(409, format!("Order {id} is {status} and cannot be voided"));
        }
        state.leave(&id, &Step::new("void"));
        SimResponse::json(200, &json!({"order_id": id, "status": "void"}))
    }

    fn shipments(&self, request: &SimRequest) -> SimResponse {
        let number = request.query("order_number").map(str::trim);
        let order_id = match request.query("order_id").map(|t| t.trim().parse::<u64>()) {
            None => None,
            Some(Ok(id)) => Some(id),
            Some(Err(_)) => return self.bad_request("order_id must be a whole number"),
        };
        let from = match request.query("from_date").map(parse_date) {
            None => None,
            Some(Some(date)) => Some(date),
            Some(None) => return self.bad_request("from_date must be a date YYYY-MM-DD"),
        };
        let state = lock(&self.state);
        let rows = state
            .shipments
            .iter()
            .filter(|s| number.is_none_or(|n| s.order_number == n))
            .filter(|s| order_id.is_none_or(|id| s.order_id == id))
            .filter(|s| from.is_none_or(|d| s.ship_date >= d))
            .map(|s| s.row(&self.client_code))
            .collect();
        drop(state);
        self.page(request, rows)
    }

    fn inventory(&self, request: &SimRequest) -> SimResponse {
        let location = match request
            .query("location_id")
            .map(|t| t.trim().parse::<u32>())
        {
            None => None,
            Some(Ok(id)) => Some(id),
            Some(Err(_)) => return self.bad_request("location_id must be a whole number"),
        };
        let product = request.query("product_code").map(str::trim);
        let state = lock(&self.state);
        let rows = state
            .inventory
            .iter()
            .filter(|r| location.is_none_or(|l| r.location_id == l))
            .filter(|r| product.is_none_or(|p| r.product_code == p))
            .map(|r| {
                json!({
                    "client_code": self.client_code,
                    "location_id": r.location_id,
                    "product_code": r.product_code,
                    "description": r.description,
                    "on_hand": r.on_hand,
                    "allocated": r.allocated,
                    "available": r.available,
                })
            })
            .collect();
        drop(state);
        self.page(request, rows)
    }

    fn inventory_accounts(&self, request: &SimRequest) -> SimResponse {
        let state = lock(&self.state);
        let rows = state
            .accounts(self.location_id)
            .into_iter()
            .map(|id| {
                let description = if id == self.location_id {
                    "Primary-Pickable".to_owned()
                } else {
                    format!("Inventory account {id}")
                };
                json!({
                    "id": id,
                    "description": description,
                    "printed_name": "Simulated client",
                    "location_type": "W",
                })
            })
            .collect();
        drop(state);
        self.page(request, rows)
    }

    fn customers(&self, request: &SimRequest) -> SimResponse {
        let keyword = request
            .query("keyword")
            .map(str::trim)
            .filter(|k| !k.is_empty());
        let state = lock(&self.state);
        let rows = state
            .customers
            .iter()
            .filter(|c| keyword.is_none_or(|k| c.matches(k)))
            .map(SphereCustomer::to_json)
            .collect();
        drop(state);
        self.page(request, rows)
    }
}

/// The trimmed text of key `name`, if it is a non-blank string.
fn trimmed(map: &Map<String, Value>, name: &str) -> Option<String> {
    map.get(name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

/// `YYYY-MM-DD` or compact `YYYYMMDD`.
fn parse_date(text: &str) -> Option<NaiveDate> {
    let text = text.trim();
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(text, "%Y%m%d"))
        .ok()
}

impl Api for SphereApi {
    fn core(&self) -> &Core {
        &self.core
    }

    fn endpoint(&self, request: &SimRequest) -> String {
        match route(request) {
            Some((_, route)) => format!("{} {}", request.method, route.label()),
            None => format!("{} <unknown>", request.method),
        }
    }

    fn handle(&self, request: &SimRequest) -> SimResponse {
        let Some((environment, route)) = route(request) else {
            return SimResponse::error(404, "Unknown action");
        };
        if let Some(refusal) = self.refuse_credentials(request, &environment) {
            return refusal;
        }
        if !route.allows(&request.method) {
            return SimResponse::error(405, format!("{} is not allowed here", request.method));
        }
        match (&request.method, &route) {
            (&Method::POST, Route::Orders) => self.create(request),
            (_, Route::Orders) => self.list_orders(request),
            (&Method::GET, Route::Order(id)) => self.read_order(id),
            (&Method::POST, Route::Order(id)) => self.update_order(request, id),
            (_, Route::Order(id)) => self.void_order(id),
            (_, Route::Shipments) => self.shipments(request),
            (_, Route::Inventory) => self.inventory(request),
            (_, Route::InventoryAccounts) => self.inventory_accounts(request),
            (_, Route::Customers) => self.customers(request),
            (_, Route::Adjustments | Route::Suppliers) => self.page(request, Vec::new()),
        }
    }

    fn server_error(&self) -> SimResponse {
        SimResponse::error(500, "Internal server error")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_compare_exactly() {
        assert!(same_key("abc", "abc"));
        assert!(!same_key("abd", "abc"));
        assert!(!same_key("ab", "abc"));
        assert!(!same_key("", "abc"));
    }

    #[test]
    fn dates() {
        assert_eq!(
            parse_date("2024-05-03"),
            NaiveDate::from_ymd_opt(2024, 5, 3)
        );
        assert_eq!(parse_date("20240503"), NaiveDate::from_ymd_opt(2024, 5, 3));
        assert_eq!(parse_date("May 3"), None);
    }
}
