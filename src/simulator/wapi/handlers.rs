//! The HTTP side of the [`WapiSimulator`](super::WapiSimulator): `WapiApi`, the [`Api`] the
//! server calls with each request. It routes the request, checks the `x-client-id` and the
//! HMAC-SHA1 signature, validates the body against the protocol and runs the endpoint's
//! handler against the state.
//!
//! The orders and their JSON views are in `state.rs`; faults, counting and the HTTP server
//! itself are shared with Sphere in `simulator/server.rs` and `simulator/faults.rs`.

use std::sync::Mutex;

use hmac::{Hmac, KeyInit, Mac};
use hyper::Method;
use serde_json::{Map, Value, json};
use sha1::Sha1;

use super::fixtures::{WapiPickupPoint, WapiStockRow};
use super::state::{
    DetailedJson, StatusesJson, TrackingJson, WapiOrder, WapiState, field, is_self_collect, text,
};
use crate::http::Secret;
use crate::model::normalize_status_key;
use crate::simulator::lifecycle::{OrderBook, Progress, Step};
use crate::simulator::server::{Api, Core, SimRequest, SimResponse, lock};

/// Pickup points returned when a search sets no limit.
const DEFAULT_POINTS_LIMIT: usize = 20;
/// Most pickup points one search returns.
const MAX_POINTS_LIMIT: usize = 100;

const CANNOT_BE_EDITED: &str = "This order cannot be edited anymore!";
const CRITICAL_INCIDENT: &str =
    "This order has critical incident opened. Please resolve incident before order update.";
const NO_CHANGES: &str =
    "The data you have provided brings no changes. Please check and try again!";

/// Statuses (normalized) in which `UpdateOrder` is accepted (§5, §15b).
const UPDATABLE: &[&str] = &["pending", "error", "onhold", "new", "updated"];
/// Statuses (normalized) in which `cancelOrder` is accepted (§6, §15b).
const CANCELLABLE: &[&str] = &["pending", "error", "outofstock", "onhold", "new", "updated"];

/// What the server calls for each request: the configuration, the counters and faults, and
/// the state behind one lock.
pub(super) struct WapiApi {
    pub(super) core: Core,
    pub(super) client_id: String,
    pub(super) secret: Secret,
    pub(super) pickup_directory: bool,
    pub(super) cancel_after_assignment: bool,
    pub(super) tracking_by_order_number: bool,
    pub(super) state: Mutex<WapiState>,
}

/// The endpoints (§4–§13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Create,
    Update,
    Cancel,
    Tracking,
    Detailed,
    DetailedBefore2022,
    StockV1,
    StockV2,
    AddComment,
    PickupPoints,
}

impl Route {
    const ALL: [Route; 10] = [
        Route::Create,
        Route::Update,
        Route::Cancel,
        Route::Tracking,
        Route::Detailed,
        Route::DetailedBefore2022,
        Route::StockV1,
        Route::StockV2,
        Route::AddComment,
        Route::PickupPoints,
    ];

    /// The path below `/api`, spelled as the protocol document does.
    fn path(self) -> &'static str {
        match self {
            Route::Create => "/outbounds",
            Route::Update => "/outbounds/UpdateOrder",
            Route::Cancel => "/outbounds/cancelOrder",
            Route::Tracking => "/tracking",
            Route::Detailed => "/tracking/getDetailedOrderStatus",
            Route::DetailedBefore2022 => "/getDetailedOrderStatus",
            Route::StockV1 => "/stock/getProductRemainder",
            Route::StockV2 => "/stock/getProductRemainderV2",
            Route::AddComment => "/courier/addComment",
            Route::PickupPoints => "/pickupPoints/search",
        }
    }
}

impl WapiApi {
    fn route(&self, request: &SimRequest) -> Option<Route> {
        let segments = request.segments_below(&["api"], true)?;
        let path = format!("/{}", segments.join("/"));
        Route::ALL
            .into_iter()
            .filter(|r| *r != Route::PickupPoints || self.pickup_directory)
            .find(|r| r.path().eq_ignore_ascii_case(&path))
    }

    /// `None` when the credentials are right, else the refusal (§2, §3).
    fn refuse_credentials(&self, request: &SimRequest) -> Option<SimResponse> {
        if request.header("x-client-id").map(str::trim) != Some(self.client_id.as_str()) {
            self.core.stats().unauthorized += 1;
            return Some(SimResponse::error(401, "Invalid client id"));
        }
        if !signature_matches(
            self.secret.expose().as_bytes(),
            &request.body,
            request.header("x-signature"),
        ) {
            self.core.stats().bad_signatures += 1;
            return Some(SimResponse::error(400, "Invalid signature"));
        }
        None
    }

    fn bad_request(&self, message: impl Into<String>) -> SimResponse {
        self.core.stats().bad_requests += 1;
        SimResponse::error(400, message)
    }

    fn create(&self, body: &Map<String, Value>) -> SimResponse {
        let number = match check_order(body) {
            Ok(number) => number,
            Err(problems) => return self.bad_request(problems),
        };
        *self.core.stats().creates.entry(number.clone()).or_insert(0) += 1;
        let mut state = lock(&self.state);
        let state = &mut *state;
        if state.orders.contains_key(&number) {
            self.core.stats().duplicates_refused += 1;
            return SimResponse::error(400, format!("Order with number '{number}' already exists"));
        }
        let wh = format!("WH{:010}", state.next_wh);
        state.next_wh += 1;
        let lifecycle = if is_self_collect(body) {
            state.pickup_lifecycle.clone()
        } else {
            state.picker.pick()
        };
        let Some((progress, first)) = Progress::start(lifecycle) else {
            return SimResponse::error(500, "the order's lifecycle has no step");
        };
        let order = WapiOrder::new(number.clone(), wh.clone(), body.clone(), progress);
        state.by_wh.insert(wh.clone(), number.clone());
        state.orders.insert(number.clone(), order);
        state.enter(&number, &first);
        SimResponse::json(200, &json!({ "trackingNumber": wh }))
    }

    fn update(&self, body: &Map<String, Value>) -> SimResponse {
        let Some(wh) = text(body, "trackingNumber").filter(|t| !t.trim().is_empty()) else {
            return self.bad_request("trackingNumber is required");
        };
        let number = match check_order(body) {
            Ok(number) => number,
            Err(problems) => return self.bad_request(problems),
        };
        let mut state = lock(&self.state);
        let Some(order) = state.by_wh_mut(wh) else {
            return self.bad_request(format!("Order with tracking number '{wh}' was not found"));
        };
        if order.number != number {
            return self.bad_request(format!(
                "orderNumber of order {} cannot be changed",
                order.wh
            ));
        }
        if order.incident {
            return SimResponse::error(400, CRITICAL_INCIDENT);
        }
        if !UPDATABLE.contains(&normalize_status_key(&order.status).as_str()) {
            return SimResponse::error(400, CANNOT_BE_EDITED);
        }
        let mut replacement = body.clone();
        replacement.retain(|k, _| !k.eq_ignore_ascii_case("trackingNumber"));
        if replacement == order.body {
            return SimResponse::error(400, NO_CHANGES);
        }
        order.body = replacement;
        SimResponse::json(
            200,
            &json!(format!(
                "The order with number '{}' has been updated successfully",
                order.wh
            )),
        )
    }

    fn cancel(&self, body: &Map<String, Value>) -> SimResponse {
        let wh = text(body, "trackingNumber").map(str::trim).unwrap_or("");
        let number = text(body, "orderNumber").map(str::trim).unwrap_or("");
        if wh.is_empty() && number.is_empty() {
            return self.bad_request("trackingNumber is required");
        }
        let mut state = lock(&self.state);
        let state = &mut *state;
        let key = if wh.is_empty() {
            Some(number.to_owned())
        } else {
            state.by_wh.get(wh).cloned()
        };
        let Some(order) = key.and_then(|k| state.orders.get(&k)) else {
            self.core.stats().bad_requests += 1;
            return SimResponse::error(
                400,
                format!("Order with tracking number '{wh}' was not found"),
            );
        };
        let key = normalize_status_key(&order.status);
        let allowed = CANCELLABLE.contains(&key.as_str())
            || (key == "assignedtopartner" && self.cancel_after_assignment);
        if !allowed {
            return SimResponse::error(400, CANNOT_BE_EDITED);
        }
        let comment = text(body, "comment")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned);
        let mut step = Step::new("Cancelled");
        step.comment = comment;
        let (order_number, order_wh) = (order.number.clone(), order.wh.clone());
        state.leave(&order_number, &step);
        SimResponse::json(
            200,
            &json!(format!(
                "The order with number '{order_wh}' has been cancelled successfully"
            )),
        )
    }

    /// The WH numbers of a tracking request, deduplicated in order, counted as a batch.
    fn tracking_numbers<'b>(
        &self,
        body: &'b Map<String, Value>,
    ) -> std::result::Result<Vec<&'b str>, SimResponse> {
        let numbers = field(body, "trackingNumbers")
            .and_then(Value::as_array)
            .and_then(|a| {
                a.iter()
                    .map(|n| n.as_str().map(str::trim))
                    .collect::<Option<Vec<&str>>>()
            })
            .ok_or_else(|| self.bad_request("trackingNumbers must be an array of strings"))?;
        let mut seen = std::collections::HashSet::with_capacity(numbers.len());
        let unique: Vec<&str> = numbers.into_iter().filter(|n| seen.insert(*n)).collect();
        let mut stats = self.core.stats();
        stats.largest_track_batch = stats.largest_track_batch.max(unique.len());
        Ok(unique)
    }

    fn tracking(&self, body: &Map<String, Value>, detailed: bool) -> SimResponse {
        let numbers = match self.tracking_numbers(body) {
            Ok(numbers) => numbers,
            Err(refusal) => return refusal,
        };
        let state = lock(&self.state);
        let known = numbers
            .iter()
            .filter_map(|wh| {
                state.by_wh.get(*wh).or_else(|| {
                    self.tracking_by_order_number
                        .then(|| state.orders.get_key_value(*wh).map(|(number, _)| number))
                        .flatten()
                })
            })
            .filter_map(|number| state.orders.get(number));
        // Typed rows that borrow from the state: building `Value` trees made the simulator
        // spend more CPU per tracked shipment than the client it serves.
        if detailed {
            let rows: Vec<DetailedJson<'_>> = known.map(WapiOrder::detailed_json).collect();
            SimResponse::json_of(200, &rows)
        } else {
            let statuses: Vec<TrackingJson<'_>> = known.map(WapiOrder::tracking_json).collect();
            SimResponse::json_of(200, &StatusesJson { statuses })
        }
    }

    fn stock(&self, body: &Map<String, Value>, v2: bool) -> SimResponse {
        let country = text(body, "country")
            .map(str::trim)
            .filter(|c| !c.is_empty());
        let product = text(body, "productName")
            .map(str::trim)
            .filter(|p| !p.is_empty());
        let warehouse = text(body, "warehouseName")
            .map(str::trim)
            .filter(|w| !w.is_empty() && v2);
        let state = lock(&self.state);
        let rows: Vec<&WapiStockRow> = state
            .stock
            .iter()
            .filter(|r| country.is_none_or(|c| r.in_country(c)))
            .filter(|r| product.is_none_or(|p| r.product_name.eq_ignore_ascii_case(p)))
            .filter(|r| warehouse.is_none_or(|w| r.warehouse_name.eq_ignore_ascii_case(w)))
            .collect();
        // The reply names the country as the request did (the fixtures echo `IT` and `Italy`).
        let country_of = |r: &WapiStockRow| country.unwrap_or(&r.country_name).to_owned();
        let values: Vec<Value> = if v2 {
            rows.iter()
                .map(|r| {
                    json!({
                        "country": country_of(r),
                        "warehouseName": r.warehouse_name,
                        "productName": r.product_name,
                        "remainingQuantity": r.remaining,
                        "reservedQuantity": r.reserved,
                        "availableQuantity": r.available,
                        "InTransitQuantity": r.in_transit,
                        "returningQuantity": r.returning,
                    })
                })
                .collect()
        } else {
            // V1 knows no warehouses: one row per country and product.
            let mut sums: Vec<(String, String, i64)> = Vec::new();
            for r in &rows {
                let name = country_of(r);
                match sums
                    .iter_mut()
                    .find(|(c, p, _)| *c == name && *p == r.product_name)
                {
                    Some(sum) => sum.2 += r.available,
                    None => sums.push((name, r.product_name.clone(), r.available)),
                }
            }
            sums.into_iter()
                .map(|(country, product, quantity)| {
                    json!({
                        "country": country,
                        "productName": product,
                        "reminderQuantity": quantity,
                    })
                })
                .collect()
        };
        // One product asked and found: a single object, as R shows it.
        match (product, <[Value; 1]>::try_from(values)) {
            (Some(_), Ok([one])) => SimResponse::json(200, &one),
            (_, Ok([one])) => SimResponse::json(200, &json!([one])),
            (_, Err(values)) => SimResponse::json(200, &Value::Array(values)),
        }
    }

    fn add_comment(&self, body: &Map<String, Value>) -> SimResponse {
        let wh = text(body, "trackingNumber").map(str::trim).unwrap_or("");
        if text(body, "commentForCourier").is_none() {
            return self.bad_request("commentForCourier is required");
        }
        let mut state = lock(&self.state);
        let Some(order) = state.by_wh_mut(wh) else {
            return self.bad_request(format!("Order with tracking number '{wh}' was not found"));
        };
        order.comments.push(Value::Object(body.clone()));
        SimResponse::json(200, &json!("Comment has been added successfully"))
    }

    fn pickup_points(&self, body: &Map<String, Value>) -> SimResponse {
        let wanted = |name| text(body, name).map(str::trim).filter(|t| !t.is_empty());
        let limit = match field(body, "limit") {
            None | Some(Value::Null) => DEFAULT_POINTS_LIMIT,
            Some(v) => match v.as_u64() {
                Some(n) if n > 0 => usize::try_from(n)
                    .unwrap_or(MAX_POINTS_LIMIT)
                    .min(MAX_POINTS_LIMIT),
                _ => return self.bad_request("limit must be a positive whole number"),
            },
        };
        let offset = match field(body, "offset") {
            None | Some(Value::Null) => 0,
            Some(v) => match v.as_u64().and_then(|n| usize::try_from(n).ok()) {
                Some(n) => n,
                None => return self.bad_request("offset must be a whole number"),
            },
        };
        let (country, city, zip, query, carrier) = (
            wanted("country"),
            wanted("city"),
            wanted("zipCode"),
            wanted("query").map(str::to_lowercase),
            wanted("carrier"),
        );
        let state = lock(&self.state);
        let points: Vec<Value> = state
            .points
            .iter()
            .filter(|p| country.is_none_or(|c| p.country.eq_ignore_ascii_case(c)))
            .filter(|p| city.is_none_or(|c| p.city.to_lowercase() == c.to_lowercase()))
            .filter(|p| zip.is_none_or(|z| p.zip_code.starts_with(z)))
            .filter(|p| carrier.is_none_or(|c| p.carrier.eq_ignore_ascii_case(c)))
            .filter(|p| {
                query.as_deref().is_none_or(|q| {
                    [&p.code, &p.name, &p.address_text]
                        .iter()
                        .any(|t| t.to_lowercase().contains(q))
                })
            })
            .skip(offset)
            .take(limit)
            .map(WapiPickupPoint::to_json)
            .collect();
        SimResponse::json(200, &json!({ "points": points }))
    }
}

impl Api for WapiApi {
    fn core(&self) -> &Core {
        &self.core
    }

    fn endpoint(&self, request: &SimRequest) -> String {
        match self.route(request) {
            Some(route) => format!("{} {}", request.method, route.path()),
            None => format!("{} <unknown>", request.method),
        }
    }

    fn handle(&self, request: &SimRequest) -> SimResponse {
        let Some(route) = self.route(request) else {
            return SimResponse::error(
                404,
                "No HTTP resource was found that matches the request URI",
            );
        };
        if request.method != Method::POST {
            return SimResponse::error(405, "The requested resource does not support this method");
        }
        if let Some(refusal) = self.refuse_credentials(request) {
            return refusal;
        }
        let body = match serde_json::from_slice::<Value>(&request.body) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return self.bad_request("the body must be a JSON object"),
            Err(e) => return self.bad_request(format!("the body is not valid JSON: {e}")),
        };
        match route {
            Route::Create => self.create(&body),
            Route::Update => self.update(&body),
            Route::Cancel => self.cancel(&body),
            Route::Tracking => self.tracking(&body, false),
            Route::Detailed | Route::DetailedBefore2022 => self.tracking(&body, true),
            Route::StockV1 => self.stock(&body, false),
            Route::StockV2 => self.stock(&body, true),
            Route::AddComment => self.add_comment(&body),
            Route::PickupPoints => self.pickup_points(&body),
        }
    }

    fn server_error(&self) -> SimResponse {
        // §3: the 500 body has a capital `Error`.
        SimResponse::json(500, &json!({ "Error": "Internal server error" }))
    }
}

/// Whether `header` is the hex HMAC-SHA1 of `body` under `secret` (either case of hex digits;
/// compared in constant time).
fn signature_matches(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some(digest) = header.and_then(|h| decode_hex(h.trim())) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<Sha1> as KeyInit>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&digest).is_ok()
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

/// Checks a create (or update) body against §4; returns the order number, or every problem
/// joined with `; `.
fn check_order(body: &Map<String, Value>) -> std::result::Result<String, String> {
    let mut problems = Vec::new();
    let number = match text(body, "orderNumber").map(str::trim) {
        Some(n) if !n.is_empty() => n.to_owned(),
        _ => {
            problems.push("orderNumber is required".to_owned());
            String::new()
        }
    };
    match field(body, "product") {
        Some(line) => check_line(line, "product", &mut problems),
        None => problems.push("product is required".into()),
    }
    match field(body, "additionalProducts") {
        None | Some(Value::Null) => {}
        Some(Value::Array(lines)) => {
            for (i, line) in lines.iter().enumerate() {
                check_line(line, &format!("additionalProducts[{i}]"), &mut problems);
            }
        }
        Some(_) => problems.push("additionalProducts must be an array".into()),
    }
    match field(body, "cashOnDelivery").and_then(Value::as_f64) {
        Some(amount) if amount >= 0.0 => {}
        Some(_) => problems.push("cashOnDelivery must not be negative".into()),
        None => problems.push("cashOnDelivery is required (a number, 0 when prepaid)".into()),
    }
    let self_collect = is_self_collect(body);
    match field(body, "receiver").and_then(Value::as_object) {
        Some(receiver) => {
            for name in [
                "firstName",
                "phoneNumber",
                "addressText",
                "city",
                "country",
                "zipCode",
            ] {
                if text(receiver, name).is_none_or(|t| t.trim().is_empty()) {
                    problems.push(format!("receiver.{name} is required"));
                }
            }
            if text(receiver, "addressAdditionalInfo").is_none() {
                problems.push("receiver.addressAdditionalInfo is required (\"\" when none)".into());
            }
            // Inpost Packomat: a self-collect order without courier service (§4).
            let packomat = self_collect && text(body, "courierService").is_none();
            if packomat && text(receiver, "emailAddress").is_none_or(|t| t.trim().is_empty()) {
                problems.push("receiver.emailAddress is required for a parcel locker".into());
            }
        }
        None => problems.push("receiver is required".into()),
    }
    if self_collect && text(body, "selfCollectPointName").is_none_or(|t| t.trim().is_empty()) {
        problems.push("selfCollectPointName is required when isSelfCollect is true".into());
    }
    if problems.is_empty() {
        Ok(number)
    } else {
        Err(problems.join("; "))
    }
}

fn check_line(line: &Value, path: &str, problems: &mut Vec<String>) {
    let Some(line) = line.as_object() else {
        problems.push(format!("{path} must be an object"));
        return;
    };
    if text(line, "name").is_none_or(|n| n.trim().is_empty()) {
        problems.push(format!("{path}.name is required"));
    }
    if field(line, "quantity")
        .and_then(Value::as_u64)
        .is_none_or(|q| q < 1)
    {
        problems.push(format!(
            "{path}.quantity must be a whole number of at least 1"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_the_protocol_vectors() {
        let key = b"wapi-test-secret";
        let body = br#"{"trackingNumbers":["WH0000000024"]}"#;
        let good = "62632382e16fa3a1eba48be2c5aab85a879a5dfb";
        assert!(signature_matches(key, body, Some(good)));
        assert!(signature_matches(key, body, Some(&good.to_uppercase())));
        assert!(signature_matches(
            key,
            b"",
            Some("2bbf4e1917e2f2e9e159c52f3d24139b508bf1c3")
        ));
        // One space more in the body is another signature.
        assert!(!signature_matches(
            key,
            br#"{"trackingNumbers": ["WH0000000024"]}"#,
            Some(good)
        ));
        // Base64 of the same digest is not accepted.
        assert!(!signature_matches(
            key,
            body,
            Some("YmMjguFvo6HrpIvixaq4WoeaXfs=")
        ));
        for bad in [None, Some(""), Some("zz"), Some("abc"), Some("é1")] {
            assert!(!signature_matches(key, body, bad), "{bad:?}");
        }
    }

    #[test]
    fn order_checks_list_every_problem() {
        let body = json!({"orderNumber": " ", "product": {"name": "x", "quantity": 0},
            "additionalProducts": [7], "receiver": {"firstName": "A"},
            "isSelfCollect": true});
        let problems = check_order(body.as_object().unwrap()).unwrap_err();
        for expected in [
            "orderNumber is required",
            "product.quantity",
            "additionalProducts[0] must be an object",
            "cashOnDelivery is required",
            "receiver.phoneNumber is required",
            "receiver.addressAdditionalInfo",
            "receiver.emailAddress",
            "selfCollectPointName",
        ] {
            assert!(problems.contains(expected), "{expected} in {problems}");
        }
        // Keys bind case-insensitively.
        let body = json!({"OrderNumber": "SO-1", "Product": {"Name": "p", "Quantity": 1},
            "cashOnDelivery": 0, "receiver": {"firstName": "A", "phoneNumber": "1",
            "addressText": "s", "addressAdditionalInfo": "", "city": "c", "country": "IT",
            "zipCode": "1"}});
        assert_eq!(check_order(body.as_object().unwrap()).unwrap(), "SO-1");
    }
}
