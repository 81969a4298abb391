//! The HTTP side of the ShipBob simulator: routes of protocol doc §12 marked "sim", the
//! token and channel checks, the sliding-window rate limit of §3.2, and each endpoint's
//! answer per §10.2.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, NaiveDateTime};
use hyper::Method;
use serde_json::{Map, Value, json};

use super::model::{Line, ShipBobInventoryRow, SimShipBobOrder, SimShipment, editable};
use super::outbox::Outbox;
use crate::http::Secret;
use crate::model::normalize_status_key;
use crate::simulator::Step;
use crate::simulator::lifecycle::LifecyclePicker;
use crate::simulator::server::{Api, Clock, Core, SimRequest, SimResponse, lock};
use crate::webhook::WebhookSecret;

/// The first order id handed out (the protocol fixture's).
pub(crate) const FIRST_ORDER_ID: i64 = 309_589_638;
/// The first shipment id handed out (the fixture's).
pub(crate) const FIRST_SHIPMENT_ID: i64 = 100_810_005;
/// The first webhook subscription id (the fixture's).
pub(crate) const FIRST_SUBSCRIPTION_ID: i64 = 88_421;
/// API versions served (§10.2).
const VERSIONS: &[&str] = &["2026-07", "2026-01"];
/// ShipBob's rate-limit window (§3.2).
pub(crate) const WINDOW: Duration = Duration::from_secs(60);
/// Most shipment ids per tracking call (§5.4).
const MAX_TRACKING_IDS: usize = 25;

/// A webhook subscription.
#[derive(Debug, Clone)]
pub(crate) struct Subscription {
    pub(crate) id: String,
    pub(crate) url: String,
    pub(crate) topics: Vec<String>,
    pub(crate) secret: WebhookSecret,
    pub(crate) description: Option<String>,
}

/// Everything behind the simulator's lock.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) orders: HashMap<i64, SimShipBobOrder>,
    pub(crate) by_reference: HashMap<(i64, String), i64>,
    pub(crate) shipment_order: HashMap<i64, i64>,
    pub(crate) next_order: i64,
    pub(crate) next_shipment: i64,
    pub(crate) next_subscription: i64,
    pub(crate) inventory: Vec<ShipBobInventoryRow>,
    pub(crate) subscriptions: Vec<Subscription>,
    pub(crate) picker: LifecyclePicker,
    pub(crate) split_rng: fastrand::Rng,
    pub(crate) clock: Clock,
    /// Request times per token, for the sliding window.
    pub(crate) windows: HashMap<String, VecDeque<Instant>>,
    /// Sandbox simulations by id, as `GET /simulate/status/{id}` shows them.
    pub(crate) simulations: HashMap<String, Value>,
}

/// How the simulator behaves where ShipBob's behaviour is a knob.
#[derive(Debug, Clone)]
pub(crate) struct Behaviour {
    pub(crate) token: Secret,
    pub(crate) channel_id: i64,
    pub(crate) rate_limit: Option<u32>,
    /// The rate limit's sliding window (ShipBob's: a minute).
    pub(crate) rate_window: Duration,
    pub(crate) split_orders: f64,
    pub(crate) cancel_refusal_422: bool,
    pub(crate) duplicate_as_errors: bool,
}

/// The simulator's API: state, counters and faults, webhook outbox.
#[derive(Debug)]
pub(crate) struct ShipBobApi {
    pub(crate) core: Core,
    pub(crate) behaviour: Behaviour,
    pub(crate) state: Mutex<State>,
    pub(crate) outbox: Arc<Mutex<Outbox>>,
    pub(crate) wake: Arc<tokio::sync::Notify>,
}

/// A JSON answer with ShipBob's model-state map `{"<field>": ["msg"]}`.
fn model_state(status: u16, field: &str, message: &str) -> SimResponse {
    SimResponse::json(status, &json!({ field: [message] }))
}

/// A shipment-service refusal `{"code", "message"}`.
fn code_message(status: u16, code: &str, message: &str) -> SimResponse {
    SimResponse::json(status, &json!({"code": code, "message": message}))
}

/// RFC 7807 ProblemDetails (inventory).
fn problem(status: u16, detail: &str, instance: &str) -> SimResponse {
    SimResponse::json(
        status,
        &json!({
            "type": "https://tools.ietf.org/html/rfc7231#section-6.5.1",
            "title": "Bad Request", "status": status, "detail": detail, "instance": instance
        }),
    )
}

fn with_header(mut response: SimResponse, name: &'static str, value: String) -> SimResponse {
    response.headers.push((name, value));
    response
}

/// Compares two secrets in time independent of where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A query date: ISO 8601 with or without offset (UTC then).
fn query_date(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.naive_utc())
        .ok()
        .or_else(|| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").ok())
}

/// The value of query parameter `name`, compared case-insensitively (ASP.NET binding), with
/// repeated keys joined by commas.
fn param(request: &SimRequest, name: &str) -> Option<String> {
    let values: Vec<&str> = request
        .query
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}

fn list_param(request: &SimRequest, name: &str) -> Option<Vec<String>> {
    param(request, name).map(|v| {
        v.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    })
}

fn bool_param(request: &SimRequest, name: &str) -> Option<bool> {
    param(request, name).and_then(|v| v.trim().to_ascii_lowercase().parse().ok())
}

/// The path below the version: segments, the version itself first. `None` for another root.
fn split_path(request: &SimRequest) -> Option<(String, Vec<String>)> {
    let segments = request.segments_below(&[], false)?;
    let (first, rest) = segments.split_first()?;
    Some((first.clone(), rest.to_vec()))
}

/// `{id}` for numeric segments, keeping an action suffix (`{id}:cancel`).
fn label_segment(segment: &str) -> String {
    let (head, action) = match segment.split_once(':') {
        Some((head, action)) => (head, Some(action)),
        None => (segment, None),
    };
    let head = if !head.is_empty() && head.bytes().all(|b| b.is_ascii_digit()) {
        "{id}"
    } else {
        head
    };
    match action {
        Some(action) => format!("{head}:{action}"),
        None => head.to_owned(),
    }
}

impl ShipBobApi {
    /// Refuses a missing or wrong token (401, empty body, §10.2).
    fn refuse_credentials(&self, request: &SimRequest) -> Option<SimResponse> {
        let token = request
            .header("authorization")
            .and_then(|a| a.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        match token {
            Some(token) if same_secret(token, self.behaviour.token.expose()) => None,
            _ => {
                self.core.stats().unauthorized += 1;
                Some(SimResponse {
                    status: 401,
                    body: Bytes::new(),
                    headers: Vec::new(),
                })
            }
        }
    }

    /// The sliding window of §3.2: `Err` with the 429 when the token used its calls, else
    /// the calls left.
    fn admit(&self, state: &mut State) -> Result<Option<u32>, SimResponse> {
        let Some(limit) = self.behaviour.rate_limit else {
            return Ok(None);
        };
        let now = Instant::now();
        let window = state
            .windows
            .entry(self.behaviour.token.expose().to_owned())
            .or_default();
        while window
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= self.behaviour.rate_window)
        {
            window.pop_front();
        }
        if window.len() >= limit as usize {
            let wait = window
                .front()
                .map(|t| {
                    self.behaviour
                        .rate_window
                        .saturating_sub(now.saturating_duration_since(*t))
                })
                .unwrap_or(self.behaviour.rate_window);
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let response = SimResponse::json(
                429,
                &json!({
                    "statusCode": 429,
                    "message": format!("Rate limit is exceeded. Try again in {secs} seconds.")
                }),
            );
            let response = with_header(response, "x-retry-after", secs.to_string());
            return Err(with_header(response, "x-remaining-calls", "0".into()));
        }
        window.push_back(now);
        Ok(Some(limit - window.len() as u32))
    }

    fn channel_header(&self, request: &SimRequest) -> Option<i64> {
        request
            .header("shipbob_channel_id")
            .and_then(|c| c.trim().parse().ok())
    }

    fn route(&self, request: &SimRequest, state: &mut State) -> SimResponse {
        let Some((version, path)) = split_path(request) else {
            return SimResponse::error(404, "not found");
        };
        if version == "_sim" {
            return self.control(request, &path, state);
        }
        if !VERSIONS.contains(&version.as_str()) {
            return SimResponse::error(404, format!("unknown API version {version}"));
        }
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        let m = &request.method;
        match (m, path.as_slice()) {
            (&Method::GET, ["channel"]) => self.channels(),
            (&Method::POST, ["order"]) => self.create(request, state),
            (&Method::GET, ["order"]) => self.list_orders(request, state, &version),
            (&Method::GET, ["order", id]) => self.get_order(request, state, id),
            (&Method::GET, ["order", id, "shipment"]) => self.with_order(request, state, id, |o| {
                SimResponse::json(200, &o.view()["shipments"])
            }),
            (&Method::GET, ["order", id, "shipment", sid]) => {
                self.with_order(request, state, id, |o| match sid.parse::<i64>() {
                    Ok(sid) => match o.shipments.iter().find(|s| s.id == sid) {
                        Some(s) => SimResponse::json(200, &s.view(o.id, &o.reference_id)),
                        None => SimResponse::error(404, "shipment not found"),
                    },
                    Err(_) => SimResponse::error(404, "shipment not found"),
                })
            }
            (&Method::POST, [order, action])
                if *order == "order" && action.ends_with(":cancel") =>
            {
                self.cancel_order(request, state, action.trim_end_matches(":cancel"))
            }
            (&Method::POST, ["shipment", action]) if action.ends_with(":cancel") => {
                self.cancel_shipment(state, action.trim_end_matches(":cancel"))
            }
            (&Method::POST, ["order", _, "shipment", action]) if action.ends_with(":cancel") => {
                self.cancel_shipment(state, action.trim_end_matches(":cancel"))
            }
            (&Method::PUT, ["shipment", action]) if action.ends_with(":updateAddress") => {
                self.update_address(request, state, action.trim_end_matches(":updateAddress"))
            }
            (&Method::GET, ["shipment", action]) if action.ends_with(":getLineItems") => {
                self.line_items(state, action.trim_end_matches(":getLineItems"))
            }
            (&Method::POST, ["shipment", action]) if action.ends_with(":updateLineItems") => {
                self.update_line_items(request, state, action.trim_end_matches(":updateLineItems"))
            }
            (&Method::GET, ["shipment", id]) => self.get_shipment(state, id),
            (&Method::POST, ["shipment:batchUpdateTrackingUpload"]) => {
                self.tracking_uploaded(request, state)
            }
            (&Method::GET, ["shipments-tracking"]) => self.carrier_tracking(request, state),
            (&Method::GET, ["tracking"]) => self.carrier_by_number(request, state),
            (&Method::GET, ["return"]) => self.returns(request, state),
            (&Method::GET, ["inventory-level"]) => {
                self.inventory(request, state, &version, false, None)
            }
            (&Method::GET, ["inventory-level", "locations"]) => {
                self.inventory(request, state, &version, true, None)
            }
            (&Method::GET, ["inventory-level", id]) => match id.parse::<i64>() {
                Ok(id) => self.inventory(request, state, &version, false, Some(id)),
                Err(_) => SimResponse::error(404, "not found"),
            },
            (&Method::GET, ["inventory-level", id, "locations"]) => match id.parse::<i64>() {
                Ok(id) => self.inventory(request, state, &version, true, Some(id)),
                Err(_) => SimResponse::error(404, "not found"),
            },
            (&Method::GET, ["fulfillment-center"]) => self.centers(state),
            (&Method::GET, ["location"]) => self.locations(state),
            (&Method::GET, ["shipping-method"]) => SimResponse::json(
                200,
                &json!([
                    {"id": 1, "name": "Standard", "active": true, "default": true,
                     "service_level": {"id": 1, "name": "Standard (3-5 Day)"}},
                    {"id": 2, "name": "Expedited", "active": true, "default": false,
                     "service_level": {"id": 3, "name": "Expedited (2-Day)"}}
                ]),
            ),
            (&Method::POST, ["simulate", "shipment"]) => self.simulate(request, state),
            (&Method::GET, ["simulate", "status", id]) => match state.simulations.get(*id) {
                Some(status) => SimResponse::json(200, status),
                None => SimResponse::json(404, &json!("Simulation not found")),
            },
            (&Method::POST, ["webhook"]) => self.subscribe(request, state),
            (&Method::GET, ["webhook"]) => self.subscriptions(state),
            (&Method::DELETE, ["webhook", id]) => {
                let before = state.subscriptions.len();
                state.subscriptions.retain(|s| s.id != *id);
                if state.subscriptions.len() < before {
                    SimResponse {
                        status: 204,
                        body: Bytes::new(),
                        headers: Vec::new(),
                    }
                } else {
                    SimResponse::error(404, "subscription not found")
                }
            }
            _ => SimResponse::error(
                404,
                "No HTTP resource was found that matches the request URI",
            ),
        }
    }

    /// Simulator-only control endpoints (§10.2, not ShipBob's): `POST
    /// /_sim/shipment/{id}:advance` with `{"to": "<state>"}`, `GET /_sim/deliveries`.
    fn control(&self, request: &SimRequest, path: &[String], state: &mut State) -> SimResponse {
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        match (&request.method, path.as_slice()) {
            (&Method::POST, ["shipment", action]) if action.ends_with(":advance") => {
                let Ok(id) = action.trim_end_matches(":advance").parse::<i64>() else {
                    return SimResponse::error(404, "shipment not found");
                };
                let to = serde_json::from_slice::<Value>(&request.body)
                    .ok()
                    .and_then(|v| v.get("to").and_then(Value::as_str).map(str::to_owned));
                let Some(to) = to else {
                    return SimResponse::error(400, "body must be {\"to\": \"<state>\"}");
                };
                match self.advance_shipment(state, id, Step::new(to)) {
                    Some(view) => SimResponse::json(200, &view),
                    None => SimResponse::error(404, "shipment not found"),
                }
            }
            (&Method::GET, ["deliveries"]) => {
                let attempts: Vec<Value> = lock(&self.outbox)
                    .attempts()
                    .into_iter()
                    .map(|a| {
                        json!({"webhook_id": a.webhook_id, "topic": a.topic, "url": a.url,
                               "attempt": a.attempt, "status": a.status})
                    })
                    .collect();
                SimResponse::json(200, &Value::Array(attempts))
            }
            (&Method::POST, ["faults"]) => self.set_fault_knobs(request),
            _ => SimResponse::error(404, "unknown simulator control endpoint"),
        }
    }

    /// `POST /simulate/shipment` (§10.1): a chain of at most 5 `ShipOrder` / `DeliverOrder`
    /// actions, applied at once (the requested delays are not waited). A step whose
    /// precondition fails (the shipment on hold, in exception or cancelled; delivering one
    /// not shipped) is `Failed` and the rest `Skipped`.
    fn simulate(&self, request: &SimRequest, state: &mut State) -> SimResponse {
        let body = serde_json::from_slice::<Value>(&request.body).unwrap_or(Value::Null);
        let shipment_id = match body.get("shipment_id") {
            Some(Value::String(id)) => id.trim().parse::<i64>().ok(),
            Some(Value::Number(id)) => id.as_i64(),
            _ => None,
        };
        let mut chain = Vec::new();
        let mut step = body.get("simulation");
        while let Some(simulation) = step.filter(|s| s.is_object()) {
            let action = simulation.get("action").and_then(Value::as_str);
            let delay = simulation.get("delay").and_then(Value::as_i64);
            match action {
                Some(action @ ("ShipOrder" | "DeliverOrder"))
                    if delay.is_none_or(|d| (1..=2880).contains(&d)) =>
                {
                    chain.push(action.to_owned());
                }
                _ => chain.push(String::new()),
            }
            step = simulation.get("next");
        }
        let Some(sid) = shipment_id else {
            self.core.stats().bad_requests += 1;
            return model_state(400, "shipment_id", "The ShipmentId field is required.");
        };
        if chain.is_empty() || chain.len() > 5 || chain.iter().any(String::is_empty) {
            self.core.stats().bad_requests += 1;
            return model_state(
                400,
                "simulation",
                "1 to 5 actions ShipOrder or DeliverOrder, delays 1 to 2880 minutes",
            );
        }
        if !state.shipment_order.contains_key(&sid) {
            return code_message(404, "NOT_FOUND", "Shipment not found");
        }
        let mut outcomes = Vec::new();
        let mut failed = false;
        for action in &chain {
            if failed {
                outcomes.push((action.clone(), "Skipped", None));
                continue;
            }
            let current = state
                .shipment_order
                .get(&sid)
                .and_then(|oid| state.orders.get(oid))
                .and_then(|o| o.shipments.iter().find(|s| s.id == sid))
                .map(|s| s.state.clone())
                .unwrap_or_default();
            let status = normalize_status_key(&super::model::wire_state(&current).0);
            let refusal = match (action.as_str(), status.as_str()) {
                (_, "onhold" | "exception" | "cancelled") => {
                    Some(format!("Shipment is {current} and cannot be simulated"))
                }
                ("DeliverOrder", s) if s != "completed" => {
                    Some("Shipment has not shipped yet".to_owned())
                }
                _ => None,
            };
            if let Some(message) = refusal {
                failed = true;
                outcomes.push((action.clone(), "Failed", Some(message)));
                continue;
            }
            let targets: &[&str] = if action == "ShipOrder" {
                if status == "completed" {
                    &[]
                } else {
                    &["LabeledCreated", "Completed/InTransit"]
                }
            } else {
                &["Completed/Delivered"]
            };
            for target in targets {
                self.advance_shipment(state, sid, Step::new(*target));
            }
            outcomes.push((action.clone(), "Success", None));
        }
        let id = format!(
            "00000000-0000-4000-8000-{:012x}",
            state.simulations.len() + 1
        );
        let now = super::model::stamp(state.clock.now());
        let mut nested = Value::Null;
        for (action, status, message) in outcomes.into_iter().rev() {
            nested = json!({"action": action, "status": status, "schedule_time": now,
                            "message": message, "next": nested});
        }
        state.simulations.insert(
            id.clone(),
            json!({"simulation_id": id, "entity_id": sid.to_string(), "entity_type": "Order",
                   "simulation": nested}),
        );
        SimResponse::json(200, &json!({"simulation_id": id, "message": null}))
    }

    fn channels(&self) -> SimResponse {
        SimResponse::json(
            200,
            &json!({
                "items": [
                    {"id": self.behaviour.channel_id, "name": "PAT Channel", "application_name": "SMA",
                     "scopes": ["channels_read", "orders_read", "orders_write", "fulfillments_read",
                                "inventory_read", "locations_read", "webhooks_read",
                                "webhooks_write", "returns_read", "tracking_read"]},
                    {"id": self.behaviour.channel_id - 1, "name": "ShipBob Default",
                     "application_name": "ShipBob", "scopes": ["orders_read", "inventory_read"]}
                ],
                "next": null, "prev": null
            }),
        )
    }

    /// `POST /order` (§4.1, §4.2).
    fn create(&self, request: &SimRequest, state: &mut State) -> SimResponse {
        let Some(channel) = self.channel_header(request) else {
            self.core.stats().bad_requests += 1;
            return model_state(
                400,
                "shipbob_channel_id",
                "The shipbob_channel_id header is required.",
            );
        };
        let body = match serde_json::from_slice::<Value>(&request.body) {
            Ok(Value::Object(map)) => map,
            _ => {
                self.core.stats().bad_requests += 1;
                return model_state(400, "", "A non-empty request body is required.");
            }
        };
        let problems = check_order(&body);
        if !problems.is_empty() {
            self.core.stats().bad_requests += 1;
            let map: Map<String, Value> = problems
                .into_iter()
                .map(|(field, message)| (field, json!([message])))
                .collect();
            return SimResponse::json(400, &Value::Object(map));
        }
        let reference = body
            .get("reference_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        *self
            .core
            .stats()
            .creates
            .entry(reference.clone())
            .or_insert(0) += 1;
        if state
            .by_reference
            .contains_key(&(channel, reference.clone()))
        {
            self.core.stats().duplicates_refused += 1;
            let message = "Cannot insert order with existing ReferenceId";
            return if self.behaviour.duplicate_as_errors {
                SimResponse::json(422, &json!({"errors": [message]}))
            } else {
                model_state(422, "", message)
            };
        }
        let now = state.clock.now();
        let id = state.next_order;
        state.next_order += 1;
        let location = body
            .get("location_id")
            .and_then(Value::as_i64)
            .and_then(|l| {
                state
                    .inventory
                    .iter()
                    .find(|r| r.location_id == l)
                    .map(|r| (l, r.location_name.clone()))
            })
            .unwrap_or((
                super::DEFAULT_LOCATION_ID,
                super::DEFAULT_LOCATION_NAME.into(),
            ));
        let lines: Vec<Line> = body
            .get("products")
            .and_then(Value::as_array)
            .map(|products| {
                products
                    .iter()
                    .map(|p| line_of(p, state, location.0))
                    .collect()
            })
            .unwrap_or_default();
        let recipient = shipment_recipient(body.get("recipient"));
        let split = self.behaviour.split_orders > 0.0
            && state.split_rng.f64() < self.behaviour.split_orders
            && (lines.len() > 1 || lines.iter().any(|l| l.quantity > 1));
        let parts: Vec<Vec<Line>> = if split {
            split_lines(lines)
        } else {
            vec![lines]
        };
        let lifecycle = state.picker.pick();
        let mut shipments = Vec::with_capacity(parts.len());
        for (n, part) in parts.into_iter().enumerate() {
            let sid = state.next_shipment;
            state.next_shipment += 1;
            state.shipment_order.insert(sid, id);
            for line in &part {
                commit(&mut state.inventory, line, location.0, line.quantity);
            }
            let first = lifecycle
                .steps()
                .first()
                .cloned()
                .unwrap_or_else(|| Step::new("None"));
            let mut shipment = SimShipment {
                id: sid,
                lifecycle: Arc::clone(&lifecycle),
                position: Some(0),
                lag: n as u32,
                state: String::new(),
                carrier_override: None,
                carrier_message: None,
                lines: part,
                location: location.clone(),
                recipient: recipient.clone(),
                tracking_number: None,
                carrier: "USPS".into(),
                created: now,
                last_update: now,
                last_tracking_update: None,
                delivered: None,
                carrier_history: Vec::new(),
                is_tracking_uploaded: false,
                history: Vec::new(),
                return_order: None,
            };
            shipment.enter(&first, now);
            shipments.push(shipment);
        }
        let order = SimShipBobOrder {
            id,
            reference_id: reference.clone(),
            channel_id: channel,
            recipient: body.get("recipient").cloned().unwrap_or(Value::Null),
            body: Value::Object(body),
            created: now,
            shipments,
            cancels: 0,
        };
        let view = order.view();
        state.by_reference.insert((channel, reference), id);
        state.orders.insert(id, order);
        SimResponse::json(201, &view)
    }

    /// `GET /order` with the filters of §4.4, paged with headers.
    fn list_orders(&self, request: &SimRequest, state: &State, version: &str) -> SimResponse {
        let limit = match param(request, "Limit").map(|l| l.trim().parse::<usize>()) {
            None => 50,
            Some(Ok(l)) if (1..=250).contains(&l) => l,
            _ => {
                self.core.stats().bad_requests += 1;
                return model_state(400, "Limit", "Limit must be between 1 and 250.");
            }
        };
        let page = match param(request, "Page").map(|p| p.trim().parse::<usize>()) {
            None => 1,
            Some(Ok(p)) if p >= 1 => p,
            _ => {
                self.core.stats().bad_requests += 1;
                return model_state(400, "Page", "Page must be at least 1.");
            }
        };
        let ids: Option<Vec<i64>> =
            list_param(request, "IDs").map(|v| v.iter().filter_map(|i| i.parse().ok()).collect());
        if let Some(ids) = &ids {
            let mut stats = self.core.stats();
            stats.largest_track_batch = stats.largest_track_batch.max(ids.len());
        }
        let references = list_param(request, "ReferenceIds");
        let dates = |name: &str| param(request, name).and_then(|d| query_date(&d));
        let (start, end) = (dates("StartDate"), dates("EndDate"));
        let (update_start, update_end) = (dates("LastUpdateStartDate"), dates("LastUpdateEndDate"));
        let (tracking_start, tracking_end) = (
            dates("LastTrackingUpdateStartDate"),
            dates("LastTrackingUpdateEndDate"),
        );
        let has_tracking = bool_param(request, "HasTracking");
        let uploaded = bool_param(request, "IsTrackingUploaded");
        let channel = self.channel_header(request);
        let mut matching: Vec<&SimShipBobOrder> = state
            .orders
            .values()
            .filter(|o| channel.is_none_or(|c| o.channel_id == c))
            .filter(|o| ids.as_ref().is_none_or(|ids| ids.contains(&o.id)))
            .filter(|o| {
                references
                    .as_ref()
                    .is_none_or(|r| r.contains(&o.reference_id))
            })
            .filter(|o| start.is_none_or(|s| o.created >= s) && end.is_none_or(|e| o.created <= e))
            .filter(|o| {
                let at = o.last_update();
                update_start.is_none_or(|s| at >= s) && update_end.is_none_or(|e| at <= e)
            })
            .filter(|o| {
                if tracking_start.is_none() && tracking_end.is_none() {
                    return true;
                }
                o.last_tracking_update().is_some_and(|at| {
                    tracking_start.is_none_or(|s| at >= s) && tracking_end.is_none_or(|e| at <= e)
                })
            })
            .filter(|o| {
                let tracked = o.shipments.iter().any(|s| s.tracking_number.is_some());
                has_tracking.is_none_or(|h| h == tracked)
            })
            .filter(|o| {
                uploaded.is_none_or(|u| {
                    o.shipments
                        .iter()
                        .filter(|s| s.tracking_number.is_some())
                        .any(|s| s.is_tracking_uploaded == u)
                })
            })
            .collect();
        let oldest_first =
            param(request, "SortOrder").is_some_and(|s| s.trim().eq_ignore_ascii_case("oldest"));
        matching.sort_by_key(|o| o.id);
        if !oldest_first {
            matching.reverse();
        }
        let total = matching.len();
        let pages = total.div_ceil(limit).max(1);
        let rows: Vec<Value> = matching
            .iter()
            .skip((page - 1).saturating_mul(limit))
            .take(limit)
            .map(|o| o.view())
            .collect();
        let mut response = SimResponse::json(200, &Value::Array(rows));
        for (name, value) in [
            ("page-number", page.to_string()),
            ("page-size", limit.to_string()),
            ("total-count", total.to_string()),
            ("total-pages", pages.to_string()),
        ] {
            response = with_header(response, name, value);
        }
        if page < pages {
            let query: String = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(
                    request
                        .query
                        .iter()
                        .filter(|(k, _)| !k.eq_ignore_ascii_case("Page")),
                )
                .append_pair("Page", &(page + 1).to_string())
                .finish();
            response = with_header(response, "next-page", format!("/{version}/order?{query}"));
        }
        response
    }

    fn with_order(
        &self,
        request: &SimRequest,
        state: &State,
        id: &str,
        f: impl FnOnce(&SimShipBobOrder) -> SimResponse,
    ) -> SimResponse {
        let channel = self.channel_header(request);
        match id
            .parse::<i64>()
            .ok()
            .and_then(|id| state.orders.get(&id))
            .filter(|o| channel.is_none_or(|c| o.channel_id == c))
        {
            Some(order) => f(order),
            None => model_state(404, "", "Order not found"),
        }
    }

    fn get_order(&self, request: &SimRequest, state: &State, id: &str) -> SimResponse {
        self.with_order(request, state, id, |o| SimResponse::json(200, &o.view()))
    }

    fn get_shipment(&self, state: &State, id: &str) -> SimResponse {
        let found = id.parse::<i64>().ok().and_then(|sid| {
            let order = state.orders.get(state.shipment_order.get(&sid)?)?;
            let shipment = order.shipments.iter().find(|s| s.id == sid)?;
            Some(shipment.view(order.id, &order.reference_id))
        });
        match found {
            Some(view) => SimResponse::json(200, &view),
            None => code_message(404, "NOT_FOUND", "Shipment not found"),
        }
    }

    /// `POST /order/{id}:cancel` (§4.5): every shipment not yet picked is cancelled.
    fn cancel_order(&self, request: &SimRequest, state: &mut State, id: &str) -> SimResponse {
        let channel = self.channel_header(request);
        let Some(id) = id.parse::<i64>().ok().filter(|id| {
            state
                .orders
                .get(id)
                .is_some_and(|o| channel.is_none_or(|c| o.channel_id == c))
        }) else {
            return model_state(404, "", "Order not found");
        };
        let now = state.clock.now();
        let mut results = Vec::new();
        let mut events = Vec::new();
        let (mut done, mut refused) = (0, 0);
        {
            let State {
                orders, inventory, ..
            } = state;
            let Some(order) = orders.get_mut(&id) else {
                return model_state(404, "", "Order not found");
            };
            for shipment in &mut order.shipments {
                let (ok, reason) = if shipment.is_cancelled() {
                    (false, Some("Shipment is already cancelled"))
                } else if editable(&shipment.state) {
                    cancel(shipment, inventory, now);
                    events.push(shipment.id);
                    (true, None)
                } else {
                    (false, Some("Shipment is already being processed"))
                };
                if ok {
                    done += 1;
                } else {
                    refused += 1;
                }
                results.push(json!({"shipment_id": shipment.id, "action": "Cancel",
                                    "is_success": ok, "reason": reason}));
            }
            order.cancels += done;
        }
        for sid in events {
            self.emit(state, id, Some(sid), "order.shipment.cancelled");
        }
        let status = match (done, refused) {
            (_, 0) => "Success",
            (0, _) => "Failure",
            _ => "PartialSuccess",
        };
        if status == "Failure" && self.behaviour.cancel_refusal_422 {
            return model_state(422, "", "Order cannot be cancelled in its current state");
        }
        let view = state.orders.get(&id).map(SimShipBobOrder::view);
        SimResponse::json(
            200,
            &json!({"order_id": id, "status": status, "canceled_shipment_results": results,
                    "order": view}),
        )
    }

    fn cancel_shipment(&self, state: &mut State, sid: &str) -> SimResponse {
        let Some((oid, sid)) = sid
            .parse::<i64>()
            .ok()
            .and_then(|sid| state.shipment_order.get(&sid).map(|o| (*o, sid)))
        else {
            return code_message(404, "NOT_FOUND", "Shipment not found");
        };
        let now = state.clock.now();
        let cancelled = {
            let State {
                orders, inventory, ..
            } = state;
            let Some(shipment) = orders
                .get_mut(&oid)
                .and_then(|o| o.shipments.iter_mut().find(|s| s.id == sid))
            else {
                return code_message(404, "NOT_FOUND", "Shipment not found");
            };
            if !shipment.is_cancelled() && editable(&shipment.state) {
                cancel(shipment, inventory, now);
                true
            } else {
                false
            }
        };
        if cancelled {
            if let Some(order) = state.orders.get_mut(&oid) {
                order.cancels += 1;
            }
            self.emit(state, oid, Some(sid), "order.shipment.cancelled");
            return self.get_shipment(state, &sid.to_string());
        }
        model_state(422, "", "Shipment cannot be cancelled in its current state")
    }

    /// The order and shipment of shipment `sid`, mutable.
    fn shipment_mut<'s>(
        state: &'s mut State,
        sid: &str,
    ) -> Option<(&'s mut SimShipBobOrder, usize)> {
        let sid = sid.parse::<i64>().ok()?;
        let oid = *state.shipment_order.get(&sid)?;
        let order = state.orders.get_mut(&oid)?;
        let index = order.shipments.iter().position(|s| s.id == sid)?;
        Some((order, index))
    }

    /// `PUT /shipment/{id}:updateAddress` (§4.6).
    fn update_address(&self, request: &SimRequest, state: &mut State, sid: &str) -> SimResponse {
        let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&request.body) else {
            self.core.stats().bad_requests += 1;
            return code_message(
                400,
                "INVALID_PARAMETER",
                "Request body is invalid or missing required fields",
            );
        };
        let text = |k: &str| {
            body.get(k)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|t| !t.is_empty())
        };
        if text("street_address1").is_none() || text("city").is_none() {
            self.core.stats().bad_requests += 1;
            return code_message(
                400,
                "INVALID_PARAMETER",
                "Request body is invalid or missing required fields",
            );
        }
        let now = state.clock.now();
        let Some((order, index)) = Self::shipment_mut(state, sid) else {
            return code_message(404, "NOT_FOUND", "Shipment not found");
        };
        let shipment = &mut order.shipments[index];
        let sid = shipment.id;
        if !editable(&shipment.state) {
            return SimResponse::json(
                200,
                &json!({"id": sid, "is_success": false,
                "error": {"code": "CONFLICT", "message": "Shipment can no longer be modified"}}),
            );
        }
        let field = |k: &str| body.get(k).cloned().unwrap_or(Value::Null);
        let address = json!({
            "address1": field("street_address1"), "address2": field("street_address2"),
            "company_name": field("company_name"), "city": field("city"),
            "state": field("state"), "country": field("country_code"), "zip_code": field("zip_code")
        });
        shipment.recipient = json!({
            "name": field("recipient_name"), "full_name": field("recipient_name"),
            "email": field("email"), "phone_number": field("phone_number"), "address": address
        });
        shipment.last_update = now;
        // A valid address releases an address hold (§4.6).
        if normalize_status_key(&shipment.state) == "onhold/invalidaddress" {
            let step = Step::new("Processing");
            shipment.position = shipment
                .lifecycle
                .position_of("Processing", shipment.position);
            shipment.enter(&step, now);
        }
        // The order-level recipient follows (open question 18, decided so in the simulator).
        order.recipient = json!({
            "name": field("recipient_name"), "address": address,
            "email": field("email"), "phone_number": field("phone_number")
        });
        if let Some(map) = order.body.as_object_mut() {
            map.insert("recipient".into(), order.recipient.clone());
        }
        let oid = order.id;
        self.emit(state, oid, Some(sid), "order.shipment.address.updated");
        SimResponse::json(200, &json!({"id": sid, "is_success": true, "error": null}))
    }

    fn line_items(&self, state: &mut State, sid: &str) -> SimResponse {
        let Some((order, index)) = Self::shipment_mut(state, sid) else {
            return code_message(404, "NOT_FOUND", "Shipment not found");
        };
        let items: Vec<Value> = order.shipments[index]
            .lines
            .iter()
            .map(|l| {
                json!({"inventory_id": l.inventory_id, "quantity": l.quantity,
                       "committed_quantity": l.quantity,
                       "product_variant": {"id": l.inventory_id + 31_000_000, "name": l.name, "sku": l.sku},
                       "lot": null, "is_lot": false, "is_hazmat": false, "serial_numbers": []})
            })
            .collect();
        SimResponse::json(200, &Value::Array(items))
    }

    /// `POST /shipment/{id}:updateLineItems`: the complete list replaces the shipment's.
    fn update_line_items(&self, request: &SimRequest, state: &mut State, sid: &str) -> SimResponse {
        let items = serde_json::from_slice::<Value>(&request.body)
            .ok()
            .and_then(|v| v.get("items").and_then(Value::as_array).cloned());
        let Some(items) = items.filter(|i| !i.is_empty()) else {
            self.core.stats().bad_requests += 1;
            return code_message(400, "INVALID_PARAMETER", "items must list every line item");
        };
        let mut wanted = Vec::new();
        for item in &items {
            let (Some(inventory_id), Some(quantity)) = (
                item.get("inventory_id").and_then(Value::as_i64),
                item.get("quantity")
                    .and_then(Value::as_i64)
                    .filter(|q| *q > 0),
            ) else {
                self.core.stats().bad_requests += 1;
                return code_message(
                    400,
                    "VALIDATION_ERROR",
                    "inventory_id and a positive quantity are required",
                );
            };
            let Some(row) = state
                .inventory
                .iter()
                .find(|r| r.inventory_id == inventory_id)
            else {
                self.core.stats().bad_requests += 1;
                return code_message(
                    400,
                    "INVALID_PARAMETER",
                    &format!("unknown inventory_id {inventory_id}"),
                );
            };
            wanted.push(Line {
                sku: row.sku.clone(),
                name: row.name.clone(),
                inventory_id,
                quantity,
            });
        }
        let now = state.clock.now();
        let State {
            orders,
            shipment_order,
            inventory,
            ..
        } = state;
        let Some(order) = sid
            .parse::<i64>()
            .ok()
            .and_then(|sid| shipment_order.get(&sid))
            .and_then(|oid| orders.get_mut(oid))
        else {
            return code_message(404, "NOT_FOUND", "Shipment not found");
        };
        let Some(shipment) = order
            .shipments
            .iter_mut()
            .find(|s| sid.parse::<i64>().ok() == Some(s.id))
        else {
            return code_message(404, "NOT_FOUND", "Shipment not found");
        };
        if !editable(&shipment.state) {
            return SimResponse::json(
                200,
                &json!({"id": shipment.id, "is_success": false,
                "error": {"code": "CONFLICT", "message": "Shipment can no longer be modified"}}),
            );
        }
        let location = shipment.location.0;
        for line in &shipment.lines {
            commit(inventory, line, location, -line.quantity);
        }
        for line in &wanted {
            commit(inventory, line, location, line.quantity);
        }
        let changes: Vec<Value> = wanted
            .iter()
            .map(|l| {
                json!({"inventory_id": l.inventory_id, "action": "Updated",
                            "previous_value": null, "new_value": l.quantity})
            })
            .collect();
        shipment.lines = wanted;
        shipment.last_update = now;
        SimResponse::json(
            200,
            &json!({"id": shipment.id, "is_success": true, "error": null,
                                       "shipment_line_items": changes}),
        )
    }

    fn tracking_uploaded(&self, request: &SimRequest, state: &mut State) -> SimResponse {
        let body = serde_json::from_slice::<Value>(&request.body).unwrap_or(Value::Null);
        let flag = body.get("is_tracking_uploaded").and_then(Value::as_bool);
        let ids: Vec<i64> = body
            .get("shipment_ids")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default();
        let Some(flag) = flag.filter(|_| !ids.is_empty()) else {
            self.core.stats().bad_requests += 1;
            return SimResponse::json(
                400,
                &json!("is_tracking_uploaded and shipment_ids are required"),
            );
        };
        let mut results = Vec::new();
        let mut ok = 0;
        for sid in &ids {
            let found = Self::shipment_mut(state, &sid.to_string());
            match found {
                Some((order, index)) => {
                    order.shipments[index].is_tracking_uploaded = flag;
                    ok += 1;
                    results.push(json!({"shipmentId": sid, "isSuccess": true, "error": null}));
                }
                None => results.push(json!({"shipmentId": sid, "isSuccess": false,
                    "error": {"code": "NOT_FOUND", "message": "Shipment not found"}})),
            }
        }
        SimResponse::json(
            200,
            &json!({"results": results,
            "summary": {"total": ids.len(), "successful": ok, "failed": ids.len() - ok}}),
        )
    }

    /// `GET /shipments-tracking?ShipmentIds=…` (§5.4): 1 to 25 ids, comma-separated or
    /// repeated.
    /// The shipment ids of list parameter `param` (1 to 25), or the 400 ShipBob answers.
    fn shipment_ids(&self, request: &SimRequest, param: &str) -> Result<Vec<i64>, SimResponse> {
        let ids: Vec<i64> = list_param(request, param)
            .unwrap_or_default()
            .iter()
            .filter_map(|i| i.parse().ok())
            .collect();
        if ids.is_empty() || ids.len() > MAX_TRACKING_IDS {
            self.core.stats().bad_requests += 1;
            return Err(SimResponse::json(
                400,
                &json!(format!("{param} must contain between 1 and 25 ids")),
            ));
        }
        Ok(ids)
    }

    fn carrier_tracking(&self, request: &SimRequest, state: &State) -> SimResponse {
        let ids = match self.shipment_ids(request, "ShipmentIds") {
            Ok(ids) => ids,
            Err(refused) => return refused,
        };
        let rows: Vec<Value> = ids
            .iter()
            .filter_map(|sid| {
                let order = state.orders.get(state.shipment_order.get(sid)?)?;
                order
                    .shipments
                    .iter()
                    .find(|s| s.id == *sid)?
                    .carrier_view()
            })
            .collect();
        SimResponse::json(200, &Value::Array(rows))
    }

    /// `POST /_sim/faults` (§10.2, simulator only): the knobs named in the JSON body replace
    /// those in force (`latency_ms`, `latency_jitter_ms`, `server_error`, `rate_limited`,
    /// `retry_after_secs`, `reset_before_response`, `lost_after_apply`,
    /// `server_error_after_apply`, `endpoints`, `seed`); the others stay. 204, or 400 naming
    /// what is wrong (nothing changes).
    fn set_fault_knobs(&self, request: &SimRequest) -> SimResponse {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Knobs {
            latency_ms: Option<u64>,
            latency_jitter_ms: Option<u64>,
            server_error: Option<f64>,
            rate_limited: Option<f64>,
            retry_after_secs: Option<u64>,
            reset_before_response: Option<f64>,
            lost_after_apply: Option<f64>,
            server_error_after_apply: Option<f64>,
            endpoints: Option<Vec<String>>,
            seed: Option<u64>,
        }
        let knobs: Knobs = match serde_json::from_slice(&request.body) {
            Ok(knobs) => knobs,
            Err(e) => return SimResponse::error(400, format!("unreadable fault knobs: {e}")),
        };
        let mut faults = self.core.faults();
        let ms = Duration::from_millis;
        faults.latency = knobs.latency_ms.map_or(faults.latency, ms);
        faults.latency_jitter = knobs.latency_jitter_ms.map_or(faults.latency_jitter, ms);
        faults.server_error = knobs.server_error.unwrap_or(faults.server_error);
        faults.rate_limited = knobs.rate_limited.unwrap_or(faults.rate_limited);
        faults.retry_after_secs = knobs.retry_after_secs.unwrap_or(faults.retry_after_secs);
        faults.reset_before_response = knobs
            .reset_before_response
            .unwrap_or(faults.reset_before_response);
        faults.lost_after_apply = knobs.lost_after_apply.unwrap_or(faults.lost_after_apply);
        faults.server_error_after_apply = knobs
            .server_error_after_apply
            .unwrap_or(faults.server_error_after_apply);
        if let Some(endpoints) = knobs.endpoints {
            faults.endpoints = endpoints;
        }
        faults.seed = knobs.seed.unwrap_or(faults.seed);
        match self.core.set_faults(faults) {
            Ok(()) => SimResponse {
                status: 204,
                body: Default::default(),
                headers: Vec::new(),
            },
            Err(e) => SimResponse::error(400, e.to_string()),
        }
    }

    /// `GET /return?OriginalShipmentIds=…` (§12 #33): the returns of those shipments, as a
    /// `{"items", "next", "prev"}` page (the 2026-07 listing shape, assumed for returns).
    fn returns(&self, request: &SimRequest, state: &State) -> SimResponse {
        let ids = match self.shipment_ids(request, "OriginalShipmentIds") {
            Ok(ids) => ids,
            Err(refused) => return refused,
        };
        let items: Vec<Value> = ids
            .iter()
            .filter_map(|sid| {
                let order = state.orders.get(state.shipment_order.get(sid)?)?;
                order.shipments.iter().find(|s| s.id == *sid)?.return_view()
            })
            .collect();
        SimResponse::json(200, &json!({"items": items, "next": null, "prev": null}))
    }

    fn carrier_by_number(&self, request: &SimRequest, state: &State) -> SimResponse {
        let numbers = list_param(request, "TrackingIds").unwrap_or_default();
        let rows: Vec<Value> = state
            .orders
            .values()
            .flat_map(|o| o.shipments.iter())
            .filter(|s| {
                s.tracking_number
                    .as_ref()
                    .is_some_and(|n| numbers.contains(n))
            })
            .filter_map(|s| {
                let mut view = s.carrier_view()?;
                if let Some(map) = view.as_object_mut() {
                    map.remove("shipment_id");
                }
                Some(view)
            })
            .collect();
        SimResponse::json(200, &Value::Array(rows))
    }

    /// `GET /inventory-level[/locations]` (§6), paged by `next` links with a cursor.
    fn inventory(
        &self,
        request: &SimRequest,
        state: &State,
        version: &str,
        per_location: bool,
        only: Option<i64>,
    ) -> SimResponse {
        let path = if per_location {
            "inventory-level/locations"
        } else {
            "inventory-level"
        };
        let page_size = match param(request, "PageSize").map(|p| p.trim().parse::<usize>()) {
            None => 50,
            Some(Ok(p)) if p >= 1 => p.min(250),
            _ => {
                self.core.stats().bad_requests += 1;
                return problem(
                    400,
                    "PageSize must be positive",
                    &format!("/{version}/{path}"),
                );
            }
        };
        let offset = param(request, "Cursor")
            .and_then(|c| {
                c.trim()
                    .strip_prefix('c')
                    .and_then(|n| n.parse::<usize>().ok())
            })
            .unwrap_or(0);
        let search = param(request, "SearchBy").map(|s| s.trim().to_lowercase());
        let ids: Option<Vec<i64>> = list_param(request, "InventoryIds")
            .map(|v| v.iter().filter_map(|i| i.parse().ok()).collect());
        let location = param(request, "LocationId").and_then(|l| l.trim().parse::<i64>().ok());
        // One item per inventory id, in id order.
        let mut items: Vec<i64> = state.inventory.iter().map(|r| r.inventory_id).collect();
        items.sort_unstable();
        items.dedup();
        let rows_of = |id: i64| state.inventory.iter().filter(move |r| r.inventory_id == id);
        let items: Vec<i64> = items
            .into_iter()
            .filter(|id| only.is_none_or(|o| o == *id))
            .filter(|id| ids.as_ref().is_none_or(|ids| ids.contains(id)))
            .filter(|id| {
                search.as_ref().is_none_or(|s| {
                    id.to_string() == *s
                        || rows_of(*id).any(|r| {
                            r.sku.to_lowercase().contains(s) || r.name.to_lowercase().contains(s)
                        })
                })
            })
            .filter(|id| location.is_none_or(|l| rows_of(*id).any(|r| r.location_id == l)))
            .collect();
        let view = |id: i64| {
            let rows: Vec<&ShipBobInventoryRow> = rows_of(id)
                .filter(|r| !per_location || location.is_none_or(|l| r.location_id == l))
                .collect();
            let first = rows.first();
            let sku = first.map(|r| r.sku.clone());
            let name = first.map(|r| r.name.clone());
            if per_location {
                let locations: Vec<Value> = rows
                    .iter()
                    .map(|r| {
                        json!({"location_id": r.location_id, "name": r.location_name,
                        "on_hand_quantity": r.on_hand, "committed_quantity": r.committed,
                        "fulfillable_quantity": r.fulfillable(), "awaiting_quantity": r.awaiting,
                        "internal_transfer_quantity": 0})
                    })
                    .collect();
                json!({"inventory_id": id, "sku": sku, "name": name, "locations": locations})
            } else {
                let sum =
                    |f: fn(&ShipBobInventoryRow) -> i64| rows.iter().map(|r| f(r)).sum::<i64>();
                json!({"inventory_id": id, "sku": sku, "name": name,
                    "total_on_hand_quantity": sum(|r| r.on_hand),
                    "total_committed_quantity": sum(|r| r.committed),
                    "total_fulfillable_quantity": sum(ShipBobInventoryRow::fulfillable),
                    "total_sellable_quantity": sum(ShipBobInventoryRow::fulfillable),
                    "total_awaiting_quantity": sum(|r| r.awaiting),
                    "total_backordered_quantity": 0, "total_exception_quantity": 0,
                    "total_internal_transfer_quantity": 0})
            }
        };
        if let Some(only) = only
            && !per_location
        {
            return match items.first() {
                Some(_) => SimResponse::json(200, &view(only)),
                None => problem(
                    404,
                    "Inventory item not found",
                    &format!("/{version}/{path}"),
                ),
            };
        }
        let page: Vec<Value> = items
            .iter()
            .skip(offset)
            .take(page_size)
            .map(|id| view(*id))
            .collect();
        let next = (offset + page_size < items.len()).then(|| {
            let query: String = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(
                    request
                        .query
                        .iter()
                        .filter(|(k, _)| !k.eq_ignore_ascii_case("Cursor")),
                )
                .append_pair("Cursor", &format!("c{}", offset + page_size))
                .finish();
            format!("/{version}/{path}?{query}")
        });
        SimResponse::json(
            200,
            &json!({"items": page, "first": null, "prev": null,
                                       "next": next, "last": null}),
        )
    }

    fn centers(&self, state: &State) -> SimResponse {
        let mut seen = Vec::new();
        let centers: Vec<Value> = state
            .inventory
            .iter()
            .filter(|r| {
                let new = !seen.contains(&r.location_id);
                seen.push(r.location_id);
                new
            })
            .map(|r| {
                json!({"id": r.location_id, "name": r.location_name, "address1": null,
                "address2": null, "city": null, "state": null, "country": "US", "zip_code": null,
                "phone_number": null, "email": null, "timezone": "Pacific Standard Time"})
            })
            .collect();
        SimResponse::json(200, &Value::Array(centers))
    }

    fn locations(&self, state: &State) -> SimResponse {
        let mut seen = Vec::new();
        let locations: Vec<Value> = state
            .inventory
            .iter()
            .filter(|r| {
                let new = !seen.contains(&r.location_id);
                seen.push(r.location_id);
                new
            })
            .map(|r| {
                json!({"id": r.location_id, "name": r.location_name, "abbreviation": null,
                "timezone": "Pacific Standard Time", "is_active": true,
                "is_receiving_enabled": true, "is_shipping_enabled": true, "access_granted": true,
                "attributes": [], "region": null, "services": []})
            })
            .collect();
        SimResponse::json(200, &Value::Array(locations))
    }

    /// `POST /webhook` (§7.2): answered 201 (as observed), the secret generated when omitted.
    fn subscribe(&self, request: &SimRequest, state: &mut State) -> SimResponse {
        let body = serde_json::from_slice::<Value>(&request.body).unwrap_or(Value::Null);
        let topics: Vec<String> = body
            .get("topics")
            .and_then(Value::as_array)
            .map(|t| {
                t.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let url = body
            .get("url")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let secret = match body.get("secret").and_then(Value::as_str) {
            Some(text) => WebhookSecret::parse(text).ok(),
            None => Some(lock(&self.outbox).secret()),
        };
        let url_ok = url::Url::parse(&url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
        let (Some(secret), false, true) = (secret, topics.is_empty(), url_ok) else {
            self.core.stats().bad_requests += 1;
            return SimResponse::json(
                422,
                &json!({"$type": "ObjectResult", "status_code": 422,
                "value": "topics, an http(s) url and a whsec_ secret are required"}),
            );
        };
        let id = state.next_subscription.to_string();
        state.next_subscription += 1;
        let subscription = Subscription {
            id: id.clone(),
            url: url.clone(),
            topics: topics.clone(),
            secret: secret.clone(),
            description: body
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_owned),
        };
        state.subscriptions.push(subscription);
        SimResponse::json(
            201,
            &json!({"id": id, "created_at": "2026-09-20T09:00:00Z",
            "description": body.get("description"), "secret": secret.expose(),
            "topics": topics, "url": url}),
        )
    }

    fn subscriptions(&self, state: &State) -> SimResponse {
        let items: Vec<Value> = state
            .subscriptions
            .iter()
            .map(|s| {
                json!({"id": s.id, "created_at": "2026-09-20T09:00:00Z",
                "description": s.description, "enabled": true, "topics": s.topics, "url": s.url})
            })
            .collect();
        SimResponse::json(200, &json!({"items": items, "next": null, "prev": null}))
    }

    /// Queues `topic` about order `oid` (and shipment `sid`) to every subscription of it: the
    /// shipment model for `order.shipment.*`, the order model otherwise (§7.3).
    pub(crate) fn emit(&self, state: &State, oid: i64, sid: Option<i64>, topic: &str) {
        let targets: Vec<&Subscription> = state
            .subscriptions
            .iter()
            .filter(|s| s.topics.iter().any(|t| t == topic))
            .collect();
        if targets.is_empty() {
            return;
        }
        let Some(order) = state.orders.get(&oid) else {
            return;
        };
        let body = match sid.filter(|_| topic.starts_with("order.shipment.")) {
            Some(sid) => match order.shipments.iter().find(|s| s.id == sid) {
                Some(s) => s.view(order.id, &order.reference_id),
                None => return,
            },
            None => order.view(),
        };
        let body = Bytes::from(body.to_string());
        let mut outbox = lock(&self.outbox);
        for target in targets {
            outbox.enqueue(topic, body.clone(), &target.url, &target.secret);
        }
        drop(outbox);
        self.wake.notify_one();
    }

    /// Moves shipment `sid` to `step`; returns its view.
    pub(crate) fn advance_shipment(
        &self,
        state: &mut State,
        sid: i64,
        step: Step,
    ) -> Option<Value> {
        let oid = *state.shipment_order.get(&sid)?;
        let now = state.clock.now();
        let order = state.orders.get_mut(&oid)?;
        let shipment = order.shipments.iter_mut().find(|s| s.id == sid)?;
        shipment.position = shipment
            .lifecycle
            .position_of(&step.status, shipment.position);
        let topics = shipment.enter(&step, now);
        self.after_move(state, oid, sid, topics);
        let order = state.orders.get(&oid)?;
        let shipment = order.shipments.iter().find(|s| s.id == sid)?;
        Some(shipment.view(oid, &order.reference_id))
    }

    /// The webhooks of a move: its topics, and `order.delivered` once every open shipment
    /// of the order is delivered.
    pub(crate) fn after_move(&self, state: &State, oid: i64, sid: i64, topics: &[&str]) {
        for topic in topics {
            self.emit(state, oid, Some(sid), topic);
        }
        if topics.contains(&"order.shipment.delivered") {
            let all = state.orders.get(&oid).is_some_and(|o| {
                o.shipments
                    .iter()
                    .filter(|s| !s.is_cancelled())
                    .all(|s| normalize_status_key(&s.state) == "completed/delivered")
            });
            if all {
                self.emit(state, oid, None, "order.delivered");
            }
        }
    }
}

/// Cancels `shipment` at `at`, releasing its stock.
fn cancel(shipment: &mut SimShipment, inventory: &mut [ShipBobInventoryRow], at: NaiveDateTime) {
    let location = shipment.location.0;
    for line in &shipment.lines {
        commit(inventory, line, location, -line.quantity);
    }
    shipment.position = None;
    shipment.enter(&Step::new("Cancelled"), at);
}

/// Adds `quantity` (negative to release) to the committed stock of `line` at `location`.
fn commit(inventory: &mut [ShipBobInventoryRow], line: &Line, location: i64, quantity: i64) {
    if let Some(row) = inventory
        .iter_mut()
        .find(|r| r.inventory_id == line.inventory_id && r.location_id == location)
    {
        row.committed = (row.committed + quantity).max(0);
    }
}

/// The line of a create's product: its inventory item by reference id (an unknown one is
/// created with no stock, as ShipBob creates the product, §4.1).
fn line_of(product: &Value, state: &mut State, location: i64) -> Line {
    let sku = product
        .get("reference_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let name = product
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or(&sku)
        .to_owned();
    let quantity = product.get("quantity").and_then(Value::as_i64).unwrap_or(1);
    let inventory_id = match state.inventory.iter().find(|r| r.sku == sku) {
        Some(row) => row.inventory_id,
        None => {
            let id = state
                .inventory
                .iter()
                .map(|r| r.inventory_id)
                .max()
                .unwrap_or(20_104_983)
                + 1;
            let location_name = state
                .inventory
                .iter()
                .find(|r| r.location_id == location)
                .map(|r| r.location_name.clone())
                .unwrap_or_else(|| super::DEFAULT_LOCATION_NAME.into());
            state.inventory.push(
                ShipBobInventoryRow::new(id, sku.clone(), 0)
                    .with_name(name.clone())
                    .at_location(location, location_name),
            );
            id
        }
    };
    Line {
        sku,
        name,
        inventory_id,
        quantity,
    }
}

/// A split of `lines` into two parcels: the lines halved, or a single line's quantity.
fn split_lines(mut lines: Vec<Line>) -> Vec<Vec<Line>> {
    if lines.len() > 1 {
        let second = lines.split_off(lines.len() / 2);
        return vec![lines, second];
    }
    let Some(mut line) = lines.pop() else {
        return vec![Vec::new()];
    };
    let half = line.quantity / 2;
    let mut other = line.clone();
    other.quantity = half;
    line.quantity -= half;
    vec![vec![line], vec![other]]
}

/// The shipment `recipient` of a create's `recipient` (with `full_name`).
fn shipment_recipient(recipient: Option<&Value>) -> Value {
    let field = |k: &str| {
        recipient
            .and_then(|r| r.get(k))
            .cloned()
            .unwrap_or(Value::Null)
    };
    json!({"name": field("name"), "full_name": field("name"), "email": field("email"),
           "phone_number": field("phone_number"), "address": field("address")})
}

/// The model-state problems of a create body (§4.1), `(field, message)`.
fn check_order(body: &Map<String, Value>) -> Vec<(String, String)> {
    fn text(v: Option<&Value>) -> Option<&str> {
        v.and_then(Value::as_str)
            .map(str::trim)
            .filter(|t| !t.is_empty())
    }
    let mut problems = Vec::new();
    let mut need = |field: &str, ok: bool, message: &str| {
        if !ok {
            problems.push((field.to_owned(), message.to_owned()));
        }
    };
    let reference = text(body.get("reference_id"));
    need(
        "reference_id",
        reference.is_some(),
        "The ReferenceId field is required.",
    );
    need(
        "reference_id",
        reference.is_none_or(|r| r.chars().count() <= 300),
        "The field ReferenceId must be a string with a maximum length of 300.",
    );
    need(
        "type",
        text(body.get("type")).is_some_and(|t| matches!(t, "DTC" | "DropShip" | "B2B")),
        "The Type field is required.",
    );
    need(
        "shipping_method",
        text(body.get("shipping_method")).is_some(),
        "The ShippingMethod field is required.",
    );
    let recipient = body.get("recipient");
    need(
        "recipient.name",
        text(recipient.and_then(|r| r.get("name"))).is_some(),
        "The Name field is required.",
    );
    let address = recipient.and_then(|r| r.get("address"));
    for (field, label) in [
        ("address1", "Address1"),
        ("city", "City"),
        ("country", "Country"),
    ] {
        need(
            &format!("recipient.address.{field}"),
            text(address.and_then(|a| a.get(field))).is_some(),
            &format!("The {label} field is required."),
        );
    }
    let products = body.get("products").and_then(Value::as_array);
    need(
        "products",
        products.is_some_and(|p| !p.is_empty()),
        "The Products field is required.",
    );
    for (i, product) in products.into_iter().flatten().enumerate() {
        need(
            &format!("products[{i}].reference_id"),
            text(product.get("reference_id")).is_some(),
            "The ReferenceId field is required.",
        );
        need(
            &format!("products[{i}].quantity"),
            product
                .get("quantity")
                .and_then(Value::as_i64)
                .is_some_and(|q| q >= 1),
            "The field Quantity must be at least 1.",
        );
    }
    problems
}

impl Api for ShipBobApi {
    fn core(&self) -> &Core {
        &self.core
    }

    fn endpoint(&self, request: &SimRequest) -> String {
        match split_path(request) {
            Some((version, path)) if VERSIONS.contains(&version.as_str()) || version == "_sim" => {
                let prefix = if version == "_sim" { "/_sim" } else { "" };
                let labelled: Vec<String> = path.iter().map(|s| label_segment(s)).collect();
                format!("{} {prefix}/{}", request.method, labelled.join("/"))
            }
            _ => format!("{} <unknown>", request.method),
        }
    }

    fn handle(&self, request: &SimRequest) -> SimResponse {
        let control = split_path(request).is_some_and(|(v, _)| v == "_sim");
        if !control && let Some(refusal) = self.refuse_credentials(request) {
            return refusal;
        }
        let mut state = lock(&self.state);
        let remaining = if control {
            None
        } else {
            match self.admit(&mut state) {
                Ok(remaining) => remaining,
                Err(limited) => {
                    self.core.stats().rate_limited += 1;
                    return limited;
                }
            }
        };
        let response = self.route(request, &mut state);
        match remaining {
            Some(left) => with_header(response, "x-remaining-calls", left.to_string()),
            None => response,
        }
    }

    fn server_error(&self) -> SimResponse {
        model_state(500, "", "An unexpected error occurred.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_labels_hide_ids() {
        assert_eq!(label_segment("309589638:cancel"), "{id}:cancel");
        assert_eq!(label_segment("order"), "order");
        assert_eq!(label_segment("12"), "{id}");
        assert_eq!(
            label_segment("shipment:batchCancel"),
            "shipment:batchCancel"
        );
    }

    #[test]
    fn a_split_halves_the_lines_or_the_quantity() {
        let line = |sku: &str, quantity| Line {
            sku: sku.into(),
            name: sku.into(),
            inventory_id: 1,
            quantity,
        };
        let parts = split_lines(vec![line("a", 1), line("b", 1), line("c", 1)]);
        assert_eq!((parts[0].len(), parts[1].len()), (1, 2));
        let parts = split_lines(vec![line("a", 3)]);
        assert_eq!((parts[0][0].quantity, parts[1][0].quantity), (2, 1));
    }
}
