//! [`ShipBobSimulator`]: a stateful fake of ShipBob's Developer API
//! ([`provider::shipbob::protocol`](crate::provider::shipbob::protocol), version `2026-07`) over HTTP, following the document's simulator contract
//! (§10.2): orders and their shipments on a state machine, split orders, the carrier's
//! tracking, inventory per fulfillment center, webhook subscriptions with signed deliveries
//! to a host URL, the 150-per-minute sliding window, and the shared fault knobs.
//!
//! Files: `model.rs` (orders, shipments, states, inventory and their JSON views), `api.rs`
//! (routes and answers), `outbox.rs` (webhook deliveries). The endpoints and rules are
//! documented on [`ShipBobSimulator`].

mod api;
mod model;
mod outbox;

use std::collections::HashMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;

pub use model::ShipBobInventoryRow;
pub use outbox::WebhookAttempt;

use self::api::{Behaviour, ShipBobApi, State, Subscription};
use self::outbox::{Outbox, WebhookKnobs};
use super::faults::Faults;
use super::lifecycle::{Lifecycle, LifecyclePicker, Step};
use super::server::{Clock, Core, Server, lock};
use super::{SimOrder, SimStats};
use crate::error::{Error, FieldError, Result};
use crate::http::Secret;
use crate::provider::shipbob::ShipBobBuilder;
use crate::webhook::WebhookSecret;

/// The Personal Access Token a simulator started with [`ShipBobSimulator::start`] accepts.
pub const DEFAULT_TOKEN: &str = "shipbob-simulator-pat";
/// The channel id of the token's channel (the protocol fixture's).
pub const DEFAULT_CHANNEL_ID: i64 = 432_951;
/// The fulfillment center orders go to unless they name one: Moreno Valley (CA).
pub const DEFAULT_LOCATION_ID: i64 = 228;
/// Its name.
pub const DEFAULT_LOCATION_NAME: &str = "Moreno Valley (CA)";
/// ShipBob's limit: 150 requests per token in any 60 seconds (§3.2).
pub const DEFAULT_RATE_LIMIT_PER_MINUTE: u32 = 150;

impl Lifecycle {
    /// ShipBob, delivered (the state machine of protocol doc §10.2): `None` → `Processing` →
    /// `Processing/Picked` → `/Packed` → `/Labeled` → `LabeledCreated` (tracking) →
    /// `Completed/Processing` → `Completed/InTransit` → `Completed/OutForDelivery` →
    /// `Completed/Delivered`.
    ///
    /// ShipBob steps are state names, `Status/Detail` as in §5.2; a step's `trouble` is the
    /// carrier's own status (`Available for Pickup`, `Return to sender`) and its `comment`
    /// the carrier's message.
    pub fn shipbob_delivered() -> Self {
        Self::new([
            "None",
            "Processing",
            "Processing/Picked",
            "Processing/Packed",
            "Processing/Labeled",
            "LabeledCreated",
            "Completed/Processing",
            "Completed/InTransit",
            "Completed/OutForDelivery",
            "Completed/Delivered",
        ])
    }

    /// ShipBob, nobody home at the first attempt (`Completed/DeliveryException`, which fires
    /// no webhook), delivered at the second.
    pub fn shipbob_delivery_exception() -> Self {
        Self::new([
            "None",
            "Processing",
            "Processing/Picked",
            "Processing/Packed",
            "LabeledCreated",
            "Completed/InTransit",
            "Completed/OutForDelivery",
            "Completed/DeliveryException",
            "Completed/OutForDelivery",
            "Completed/Delivered",
        ])
    }

    /// ShipBob, held by the carrier at a pickup location (`Available for Pickup`), then
    /// collected.
    pub fn shipbob_pickup() -> Self {
        Self::new([
            Step::new("None"),
            Step::new("Processing"),
            Step::new("Processing/Packed"),
            Step::new("LabeledCreated"),
            Step::new("Completed/InTransit"),
            Step::new("Completed/InTransit")
                .with_trouble("Available for Pickup")
                .with_comment("Held at the post office for pickup"),
            Step::new("Completed/Delivered"),
        ])
    }

    /// ShipBob, undeliverable and returned to the sender by the carrier: the carrier's
    /// `Return to sender` opens an `RTS` return order (`GET /return`) awaiting arrival, which
    /// then arrives back at the fulfillment center and is completed.
    ///
    /// A step named `Return/<status>` (or `Return/<type>/<status>`, type `RTS` or `Regular`)
    /// moves the shipment's return order instead of the shipment.
    pub fn shipbob_return_to_sender() -> Self {
        Self::new([
            Step::new("None"),
            Step::new("Processing"),
            Step::new("LabeledCreated"),
            Step::new("Completed/InTransit"),
            Step::new("Completed/DeliveryException"),
            Step::new("Completed/InTransit")
                .with_trouble("Return to sender")
                .with_comment("Return to sender: insufficient address"),
            Step::new("Return/Arrived"),
            Step::new("Return/Completed"),
        ])
    }

    /// ShipBob, held for an invalid address until `:updateAddress` saves a valid one, then
    /// delivered.
    pub fn shipbob_address_hold() -> Self {
        Self::new([
            "None",
            "OnHold/InvalidAddress",
            "Processing",
            "Processing/Picked",
            "LabeledCreated",
            "Completed/InTransit",
            "Completed/Delivered",
        ])
    }

    /// ShipBob, out of stock first (`Exception/OutOfStock`), then fulfilled and delivered.
    pub fn shipbob_out_of_stock() -> Self {
        Self::new([
            "None",
            "Exception/OutOfStock",
            "Processing",
            "Processing/Picked",
            "LabeledCreated",
            "Completed/InTransit",
            "Completed/Delivered",
        ])
    }
}

/// The account a [`ShipBobSimulator`] serves and the token it accepts.
#[derive(Clone)]
#[non_exhaustive]
pub struct ShipBobCredentials {
    /// The Personal Access Token.
    pub token: Secret,
    /// The token's channel.
    pub channel_id: i64,
}

impl fmt::Debug for ShipBobCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShipBobCredentials")
            .field("channel_id", &self.channel_id)
            .finish_non_exhaustive()
    }
}

/// A ShipBob order as the simulator holds it, with its shipments (see also [`SimOrder`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ShipBobSimOrder {
    /// ShipBob's order id.
    pub id: i64,
    /// Our reference (`reference_id`).
    pub reference_id: String,
    /// The order status derived from the shipments.
    pub status: String,
    /// The shipments.
    pub shipments: Vec<ShipBobSimShipment>,
    /// Shipments cancelled through the API (one per shipment, never twice).
    pub cancels: u32,
    /// The create body as received.
    pub body: serde_json::Value,
    /// The current recipient (after address updates).
    pub recipient: serde_json::Value,
}

/// A shipment as the simulator holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShipBobSimShipment {
    /// ShipBob's shipment id.
    pub id: i64,
    /// The state name (`Completed/InTransit`, …).
    pub state: String,
    /// Every state entered, oldest first.
    pub history: Vec<String>,
    /// The carrier's tracking number, once labelled.
    pub tracking_number: Option<String>,
    /// The carrier's statuses so far (`status` or `status/substatus`), oldest first.
    pub carrier_history: Vec<String>,
    /// Units per sku.
    pub lines: Vec<(String, i64)>,
    /// The shipment's return order as `type/status` (`RTS/Arrived`), if it has one.
    pub return_order: Option<String>,
}

/// Builds and starts a [`ShipBobSimulator`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> fulfillkit::Result<()> {
/// use fulfillkit::simulator::{Lifecycle, ShipBobSimulator};
///
/// let shipbob = ShipBobSimulator::builder()
///     .with_lifecycle(Lifecycle::shipbob_delivery_exception())
///     .with_split_orders(0.5)
///     .with_rate_limit(None)
///     .start()
///     .await?;
/// assert!(shipbob.base_url().starts_with("http://127.0.0.1:"));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ShipBobSimulatorBuilder {
    addr: SocketAddr,
    token: Secret,
    channel_id: i64,
    faults: Faults,
    seed: u64,
    lifecycles: Vec<(u32, Lifecycle)>,
    split_orders: f64,
    inventory: Vec<ShipBobInventoryRow>,
    rate_limit: Option<u32>,
    rate_window: Duration,
    cancel_refusal_422: bool,
    duplicate_as_errors: bool,
    webhooks: WebhookKnobs,
    subscriptions: Vec<(String, WebhookSecret)>,
}

impl fmt::Debug for ShipBobSimulatorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShipBobSimulatorBuilder")
            .field("addr", &self.addr)
            .field("channel_id", &self.channel_id)
            .field("faults", &self.faults)
            .field("rate_limit", &self.rate_limit)
            .field("split_orders", &self.split_orders)
            .finish_non_exhaustive()
    }
}

impl Default for ShipBobSimulatorBuilder {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            token: Secret::new(DEFAULT_TOKEN),
            channel_id: DEFAULT_CHANNEL_ID,
            faults: Faults::none(),
            seed: 0,
            lifecycles: vec![(1, Lifecycle::shipbob_delivered())],
            split_orders: 0.0,
            inventory: model::default_inventory(),
            rate_limit: Some(DEFAULT_RATE_LIMIT_PER_MINUTE),
            rate_window: api::WINDOW,
            cancel_refusal_422: false,
            duplicate_as_errors: false,
            webhooks: WebhookKnobs::default(),
            subscriptions: Vec::new(),
        }
    }
}

impl ShipBobSimulatorBuilder {
    /// Listens on `addr` (default `127.0.0.1:0`, a free port).
    pub fn with_addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Listens on `127.0.0.1:port`.
    pub fn with_port(self, port: u16) -> Self {
        self.with_addr(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
    }

    /// Accepts `token` for channel `channel_id` (defaults [`DEFAULT_TOKEN`],
    /// [`DEFAULT_CHANNEL_ID`]).
    pub fn with_credentials(mut self, token: impl Into<Secret>, channel_id: i64) -> Self {
        self.token = token.into();
        self.channel_id = channel_id;
        self
    }

    /// Injects `faults` (default none).
    pub fn with_faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// Seeds the picks of lifecycles, splits and webhook knobs (default 0).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Every shipment follows `lifecycle` (default [`Lifecycle::shipbob_delivered`]).
    pub fn with_lifecycle(self, lifecycle: Lifecycle) -> Self {
        self.with_lifecycle_mix([(1, lifecycle)])
    }

    /// Each new order's shipments follow one of `mix`, picked with the weights given.
    pub fn with_lifecycle_mix(mut self, mix: impl IntoIterator<Item = (u32, Lifecycle)>) -> Self {
        self.lifecycles = mix.into_iter().collect();
        self
    }

    /// Splits this fraction of the orders with more than one unit into two shipments (the
    /// second a tick behind the first), as ShipBob does when stock sits in two centers
    /// (default 0: never).
    pub fn with_split_orders(mut self, fraction: f64) -> Self {
        self.split_orders = fraction;
        self
    }

    /// Replaces the inventory (default: `LIGHT-ROAST` and `Demo Product-1` in Moreno Valley
    /// and Fairburn, `LIGHT-ROAST-5LB` in Moreno Valley).
    pub fn with_inventory(mut self, rows: impl IntoIterator<Item = ShipBobInventoryRow>) -> Self {
        self.inventory = rows.into_iter().collect();
        self
    }

    /// The sliding-window limit per token and minute (default 150, ShipBob's; `None` for
    /// none). Over it: 429 with `x-retry-after` and `x-remaining-calls: 0`.
    pub fn with_rate_limit(mut self, per_minute: Option<u32>) -> Self {
        self.rate_limit = per_minute;
        self
    }

    /// Counts the rate limit over `window` instead of ShipBob's minute: `with_rate_limit(n)`
    /// then allows `n` requests per `window` (a short window lets a test check a request rate
    /// within seconds). Refusals are counted in [`SimStats::rate_limited`].
    pub fn with_rate_window(mut self, window: Duration) -> Self {
        self.rate_window = window;
        self
    }

    /// Refuses a cancel that cancels nothing with 422 instead of 200 `status: Failure`
    /// (ShipBob documents both shapes).
    pub fn with_cancel_refusals_as_422(mut self, yes: bool) -> Self {
        self.cancel_refusal_422 = yes;
        self
    }

    /// Answers a duplicate `reference_id` with `{"errors": [...]}` instead of the observed
    /// `{"": [...]}`.
    pub fn with_duplicate_errors_list(mut self, yes: bool) -> Self {
        self.duplicate_as_errors = yes;
        self
    }

    /// Subscribes `url` to every order topic with `secret` from the start (the same as a
    /// `POST /webhook`).
    pub fn with_webhook(mut self, url: impl Into<String>, secret: WebhookSecret) -> Self {
        self.subscriptions.push((url.into(), secret));
        self
    }

    /// Delivers each webhook message twice with this probability (same `webhook-id`).
    pub fn with_webhook_duplicates(mut self, probability: f64) -> Self {
        self.webhooks.duplicates = probability;
        self
    }

    /// Lets deliveries overtake each other: each is held back a random moment, and a batch
    /// sent by [`ShipBobSimulator::deliver_webhooks`] goes out newest first.
    pub fn with_webhook_reordering(mut self, yes: bool) -> Self {
        self.webhooks.reorder = yes;
        self
    }

    /// Never sends `order.shipment.delivered` (ShipBob: "does not always fire").
    pub fn with_dropped_delivered_webhooks(mut self, yes: bool) -> Self {
        self.webhooks.drop_delivered = yes;
        self
    }

    /// Scales ShipBob's retry schedule (0 s, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h) by
    /// `factor` (default 0.001).
    pub fn with_webhook_time_scale(mut self, factor: f64) -> Self {
        self.webhooks.time_scale = factor;
        self
    }

    /// Keeps deliveries queued until [`ShipBobSimulator::deliver_webhooks`] sends them
    /// (default: a background task sends them as they come).
    pub fn with_manual_webhook_delivery(mut self, yes: bool) -> Self {
        self.webhooks.manual = yes;
        self
    }

    /// Starts the simulator on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] for invalid faults, lifecycles or knobs, or a blank token;
    /// [`Error::Transport`] when the address cannot be bound.
    pub async fn start(self) -> Result<ShipBobSimulator> {
        let mut problems = Vec::new();
        if self.token.expose().trim().is_empty() || self.channel_id <= 0 {
            problems.push(FieldError::new(
                "credentials",
                "the token must not be empty and the channel id must be positive",
            ));
        }
        for (name, p) in [
            ("split_orders", self.split_orders),
            ("webhook_duplicates", self.webhooks.duplicates),
        ] {
            if !(0.0..=1.0).contains(&p) {
                problems.push(FieldError::new(name, "must be a probability within 0..=1"));
            }
        }
        if !(self.webhooks.time_scale >= 0.0 && self.webhooks.time_scale.is_finite()) {
            problems.push(FieldError::new(
                "webhook_time_scale",
                "must be a finite factor ≥ 0",
            ));
        }
        if self.rate_limit == Some(0) {
            problems.push(FieldError::new(
                "rate_limit",
                "must be positive (None for none)",
            ));
        }
        if !problems.is_empty() {
            return Err(Error::validation("shipbob simulator", problems));
        }
        let picker = LifecyclePicker::new(self.lifecycles, self.seed)?;
        let outbox = Outbox::new(self.webhooks, self.seed);
        let subscriptions: Vec<Subscription> = self
            .subscriptions
            .into_iter()
            .enumerate()
            .map(|(i, (url, secret))| Subscription {
                id: format!("sim-{}", i + 1),
                url,
                topics: crate::provider::shipbob::WEBHOOK_TOPICS
                    .iter()
                    .map(|t| (*t).to_owned())
                    .collect(),
                secret,
                description: Some("simulator".into()),
            })
            .collect();
        let outbox = Arc::new(Mutex::new(outbox));
        let wake = Arc::new(tokio::sync::Notify::new());
        let api = Arc::new(ShipBobApi {
            core: Core::new(self.faults)?,
            behaviour: Behaviour {
                token: self.token,
                channel_id: self.channel_id,
                rate_limit: self.rate_limit,
                rate_window: self.rate_window,
                split_orders: self.split_orders,
                cancel_refusal_422: self.cancel_refusal_422,
                duplicate_as_errors: self.duplicate_as_errors,
            },
            state: Mutex::new(State {
                orders: HashMap::new(),
                by_reference: HashMap::new(),
                shipment_order: HashMap::new(),
                next_order: api::FIRST_ORDER_ID,
                next_shipment: api::FIRST_SHIPMENT_ID,
                next_subscription: api::FIRST_SUBSCRIPTION_ID,
                inventory: self.inventory,
                subscriptions,
                picker,
                split_rng: fastrand::Rng::with_seed(self.seed ^ 0x5_9117),
                clock: Clock::default(),
                windows: HashMap::new(),
                simulations: HashMap::new(),
            }),
            outbox: Arc::clone(&outbox),
            wake: Arc::clone(&wake),
        });
        let server = Server::start("shipbob", self.addr, api.clone()).await?;
        let sender = tokio::spawn(outbox::run(outbox, wake));
        Ok(ShipBobSimulator {
            server,
            api,
            sender: Some(sender),
        })
    }
}

/// A stateful fake of ShipBob's API on `127.0.0.1`, stopped by
/// [`shutdown`](ShipBobSimulator::shutdown) or on drop. Follows the simulator contract of
/// protocol doc §10.2:
///
/// - every endpoint lives under `/{version}/…` for `2026-07` (and `2026-01`); a missing or
///   wrong `Authorization: Bearer <token>` (scheme in any case) is 401 with an empty body;
///   over 150 calls in 60 s (per token) is 429 with `x-retry-after` and
///   `x-remaining-calls: 0`, and every other answer carries `x-remaining-calls`;
/// - `POST /order` checks the required fields (400 model-state map) and the
///   `shipbob_channel_id` header; a known `reference_id` in the channel is **422
///   `{"": ["Cannot insert order with existing ReferenceId"]}`**; a new order is 201 with
///   its shipments in `None` (`ImportReview` for the order) — two shipments for a split
///   order;
/// - `GET /order` filters by `IDs`, `ReferenceIds` (exact), `StartDate`/`EndDate`,
///   `LastUpdateStartDate`/`EndDate`, `LastTrackingUpdateStartDate`/`EndDate`, `HasTracking`,
///   `IsTrackingUploaded` and the channel header, sorts by `SortOrder`, pages with `Page` and
///   `Limit` (≤ 250) and answers `Page-Number`, `Page-Size`, `Total-Count`, `Total-Pages`
///   and `Next-Page` headers; `GET /order/{id}`, `/order/{id}/shipment[/{id}]`,
///   `/shipment/{id}`;
/// - `POST /order/{id}:cancel` cancels every shipment not yet picked (§11.2) and answers
///   `Success`, `PartialSuccess` or `Failure` with a reason per shipment (422 with
///   [`ShipBobSimulatorBuilder::with_cancel_refusals_as_422`]); `POST /shipment/{id}:cancel`;
/// - `PUT /shipment/{id}:updateAddress` and `POST /shipment/{id}:updateLineItems` (the
///   complete list) in the same window, else 200 `is_success: false` with `CONFLICT`; a
///   valid address releases an `OnHold/InvalidAddress` hold; `GET …:getLineItems`;
///   `POST /shipment:batchUpdateTrackingUpload`;
/// - `GET /shipments-tracking?ShipmentIds=…` (1 to 25, else 400 with a JSON string) and
///   `GET /tracking?TrackingIds=…`: the carrier's status, substatus and history, newest first;
/// - `GET /inventory-level[/{id}][/locations]` with `SearchBy`, `InventoryIds`,
///   `LocationId`, `PageSize` and a cursor in the `next` link; committed stock grows with
///   each order;
/// - `GET /channel`, `/fulfillment-center`, `/location`, `/shipping-method`;
///   `POST`/`GET /webhook`, `DELETE /webhook/{id}`;
/// - the sandbox's `POST /simulate/shipment` (`ShipOrder`, `DeliverOrder`, chains of up to 5,
///   applied at once) and `GET /simulate/status/{id}`;
/// - `GET /return?OriginalShipmentIds=…`: the return orders of parcels sent back;
/// - simulator-only (not ShipBob): `POST /_sim/shipment/{id}:advance` with
///   `{"to": "<state>"}`, `GET /_sim/deliveries`, and `POST /_sim/faults` with the knobs to
///   change (`server_error`, `rate_limited`, `latency_ms`, `seed`, …; 204, or 400 changing
///   nothing).
///
/// Each move of a shipment (a [`tick`](ShipBobSimulator::tick), an
/// [`advance`](ShipBobSimulator::advance), a cancel, an address update) queues the webhooks
/// of its topic to every matching subscription: the order model for `order.shipped` and
/// `order.delivered`, the shipment model for `order.shipment.*`, signed by Standard Webhooks
/// with the subscription's secret, headers `webhook-id`, `webhook-timestamp`,
/// `webhook-signature` and `x-webhook-topic`; any answer but a 2xx is retried on ShipBob's
/// schedule scaled by the time scale, up to 9 attempts.
pub struct ShipBobSimulator {
    server: Server,
    api: Arc<ShipBobApi>,
    sender: Option<JoinHandle<()>>,
}

impl fmt::Debug for ShipBobSimulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShipBobSimulator")
            .field("base_url", &self.base_url())
            .finish_non_exhaustive()
    }
}

impl Drop for ShipBobSimulator {
    fn drop(&mut self) {
        if let Some(sender) = self.sender.take() {
            sender.abort();
        }
    }
}

fn not_found(reference: &str) -> Error {
    Error::NotFound {
        what: format!("shipbob simulator order {reference}"),
    }
}

impl ShipBobSimulator {
    /// Starts a simulator on a free port of `127.0.0.1` with the defaults: token
    /// [`DEFAULT_TOKEN`] for channel [`DEFAULT_CHANNEL_ID`], no faults, ShipBob's rate limit,
    /// every shipment following [`Lifecycle::shipbob_delivered`], no split orders, the
    /// default inventory, no subscriptions.
    ///
    /// # Errors
    ///
    /// [`Error::Transport`] when no port can be bound.
    pub async fn start() -> Result<Self> {
        Self::builder().start().await
    }

    /// A builder to set credentials, faults, lifecycles, splits, inventory and webhooks.
    pub fn builder() -> ShipBobSimulatorBuilder {
        ShipBobSimulatorBuilder::default()
    }

    /// The base URL for [`ShipBobBuilder::with_base_url`]: `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.server.connect_addr())
    }

    /// The address the server is bound to.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The token and channel the simulator accepts.
    pub fn credentials(&self) -> ShipBobCredentials {
        ShipBobCredentials {
            token: self.api.behaviour.token.clone(),
            channel_id: self.api.behaviour.channel_id,
        }
    }

    /// A [`ShipBobBuilder`] for this simulator: its URL, token and channel, no client-side
    /// rate limit (set one to test throttling), and the change feed read on every tracking
    /// call without overlap (the simulator's changes are visible at once), so that a test
    /// sees a move at once.
    pub fn provider_builder(&self) -> ShipBobBuilder {
        ShipBobBuilder::new(
            self.api.behaviour.token.clone(),
            self.api.behaviour.channel_id,
        )
        .with_base_url(self.base_url())
        .with_rate_limit(None)
        .with_feed_interval(Duration::ZERO)
        .with_feed_overlap(Duration::ZERO)
    }

    /// ShipBob's id of the order with reference `reference`.
    pub fn order_id(&self, reference: &str) -> Option<i64> {
        lock(&self.api.state)
            .by_reference
            .get(&(self.api.behaviour.channel_id, reference.to_owned()))
            .copied()
    }

    /// Moves every shipment of order `reference` that is not cancelled to state `state`
    /// (`Processing/Picked`, `Completed/Delivered`, or any text ShipBob should report); later
    /// ticks continue from the first step of its lifecycle with that name, if any.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when no order has that reference.
    pub fn advance(&self, reference: &str, state: &str) -> Result<()> {
        self.advance_with(reference, Step::new(state))
    }

    /// Moves every open shipment of order `reference` to `step` (state, carrier status,
    /// carrier message).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when no order has that reference.
    pub fn advance_with(&self, reference: &str, step: Step) -> Result<()> {
        let id = self
            .order_id(reference)
            .ok_or_else(|| not_found(reference))?;
        let mut state = lock(&self.api.state);
        let shipments: Vec<i64> = state
            .orders
            .get(&id)
            .map(|o| {
                o.shipments
                    .iter()
                    .filter(|s| !s.is_cancelled())
                    .map(|s| s.id)
                    .collect()
            })
            .unwrap_or_default();
        for sid in shipments {
            self.api.advance_shipment(&mut state, sid, step.clone());
        }
        Ok(())
    }

    /// Moves shipment `shipment_id` to `step`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown shipment.
    pub fn advance_shipment(&self, shipment_id: i64, step: Step) -> Result<()> {
        let mut state = lock(&self.api.state);
        self.api
            .advance_shipment(&mut state, shipment_id, step)
            .map(drop)
            .ok_or_else(|| Error::NotFound {
                what: format!("shipbob simulator shipment {shipment_id}"),
            })
    }

    /// Moves every shipment one step along its lifecycle (a lagging one waits a tick);
    /// returns how many moved. Cancelled shipments, those at their last step and those moved
    /// off their lifecycle stay.
    pub fn tick(&self) -> usize {
        let mut state = lock(&self.api.state);
        let mut ids: Vec<i64> = state.orders.keys().copied().collect();
        ids.sort_unstable();
        let mut moved = 0;
        for oid in ids {
            let now = state.clock.now();
            let mut fired = Vec::new();
            if let Some(order) = state.orders.get_mut(&oid) {
                for shipment in &mut order.shipments {
                    if shipment.is_cancelled() {
                        continue;
                    }
                    if shipment.lag > 0 {
                        shipment.lag -= 1;
                        continue;
                    }
                    let Some(next) = shipment.position.map(|p| p + 1) else {
                        continue;
                    };
                    let Some(step) = shipment.lifecycle.steps().get(next).cloned() else {
                        continue;
                    };
                    shipment.position = Some(next);
                    fired.push((shipment.id, shipment.enter(&step, now)));
                    moved += 1;
                }
            }
            for (sid, topics) in fired {
                self.api.after_move(&state, oid, sid, topics);
            }
        }
        moved
    }

    /// Makes every shipment of order `reference` follow `lifecycle` from its first step
    /// matching the current state (or off the lifecycle when none does).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown order, [`Error::Validation`] for an empty
    /// lifecycle.
    pub fn set_lifecycle(&self, reference: &str, lifecycle: Lifecycle) -> Result<()> {
        lifecycle.validate("lifecycle")?;
        let id = self
            .order_id(reference)
            .ok_or_else(|| not_found(reference))?;
        let lifecycle = Arc::new(lifecycle);
        let mut state = lock(&self.api.state);
        if let Some(order) = state.orders.get_mut(&id) {
            for shipment in &mut order.shipments {
                shipment.position = lifecycle.position_of(&shipment.state, None);
                shipment.lifecycle = Arc::clone(&lifecycle);
            }
        }
        Ok(())
    }

    /// Order `reference` in the simulators' common shape: `status` is the order status,
    /// `history` the states of its first shipment.
    pub fn order(&self, reference: &str) -> Option<SimOrder> {
        let id = self.order_id(reference)?;
        let state = lock(&self.api.state);
        state.orders.get(&id).map(common)
    }

    /// Every order, by reference.
    pub fn orders(&self) -> Vec<SimOrder> {
        let state = lock(&self.api.state);
        let mut orders: Vec<SimOrder> = state.orders.values().map(common).collect();
        orders.sort_by(|a, b| a.order_number.cmp(&b.order_number));
        orders
    }

    /// Order `reference` with its shipments.
    pub fn shipbob_order(&self, reference: &str) -> Option<ShipBobSimOrder> {
        let id = self.order_id(reference)?;
        let state = lock(&self.api.state);
        state.orders.get(&id).map(detailed)
    }

    /// Every order with its shipments, by order id.
    pub fn shipbob_orders(&self) -> Vec<ShipBobSimOrder> {
        let state = lock(&self.api.state);
        let mut orders: Vec<ShipBobSimOrder> = state.orders.values().map(detailed).collect();
        orders.sort_by_key(|o| o.id);
        orders
    }

    /// Adds or replaces (same inventory id and center) a row of the inventory.
    pub fn set_inventory(&self, row: ShipBobInventoryRow) {
        let mut state = lock(&self.api.state);
        match state
            .inventory
            .iter_mut()
            .find(|r| r.inventory_id == row.inventory_id && r.location_id == row.location_id)
        {
            Some(existing) => *existing = row,
            None => state.inventory.push(row),
        }
    }

    /// Subscribes `url` to `topics` with `secret` (as `POST /webhook` would); returns the
    /// subscription id.
    pub fn subscribe(&self, url: &str, topics: &[&str], secret: WebhookSecret) -> String {
        let mut state = lock(&self.api.state);
        let id = state.next_subscription.to_string();
        state.next_subscription += 1;
        state.subscriptions.push(Subscription {
            id: id.clone(),
            url: url.to_owned(),
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            secret,
            description: None,
        });
        id
    }

    /// Every webhook delivery attempt so far, in the order made.
    pub fn webhook_attempts(&self) -> Vec<WebhookAttempt> {
        lock(&self.api.outbox).attempts()
    }

    /// Sends every queued webhook message now (due or not), newest first with reordering;
    /// failures are queued again on the schedule. Returns the attempts made. The way to
    /// deliver with [`ShipBobSimulatorBuilder::with_manual_webhook_delivery`].
    pub async fn deliver_webhooks(&self) -> usize {
        outbox::send_due(&self.api.outbox, true).await
    }

    /// Waits until no webhook message is queued or being sent, at most `timeout`; returns
    /// whether that happened (messages failing until their last retry count as settled once
    /// dropped).
    pub async fn settle_webhooks(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if lock(&self.api.outbox).is_idle() {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            self.api.wake.notify_one();
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Replaces the fault knobs, restarting their RNG from the new seed.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] for invalid faults (the old ones stay).
    pub fn set_faults(&self, faults: Faults) -> Result<()> {
        self.api.core.set_faults(faults)
    }

    /// The fault knobs in force.
    pub fn faults(&self) -> Faults {
        self.api.core.faults()
    }

    /// A copy of the counters (`creates` per reference id; `largest_track_batch` is the most
    /// ids in one `GET /order?IDs=…`).
    pub fn stats(&self) -> SimStats {
        self.api.core.stats().clone()
    }

    /// Sets every counter back to zero.
    pub fn reset_stats(&self) {
        self.api.core.reset_stats();
    }

    /// Stops the server, its connections and the webhook sender.
    pub async fn shutdown(mut self) {
        if let Some(sender) = self.sender.take() {
            sender.abort();
            let _ = sender.await;
        }
        self.server.shutdown().await;
    }
}

fn common(order: &model::SimShipBobOrder) -> SimOrder {
    SimOrder {
        order_number: order.reference_id.clone(),
        reference: order.id.to_string(),
        status: order.status().to_owned(),
        trouble: None,
        history: order
            .shipments
            .first()
            .map(|s| s.history.clone())
            .unwrap_or_default(),
        body: order.body.clone(),
    }
}

fn detailed(order: &model::SimShipBobOrder) -> ShipBobSimOrder {
    ShipBobSimOrder {
        id: order.id,
        reference_id: order.reference_id.clone(),
        status: order.status().to_owned(),
        shipments: order
            .shipments
            .iter()
            .map(|s| ShipBobSimShipment {
                id: s.id,
                state: s.state.clone(),
                history: s.history.clone(),
                tracking_number: s.tracking_number.clone(),
                carrier_history: s
                    .carrier_history
                    .iter()
                    .map(|e| {
                        if e.substatus.is_empty() {
                            e.status.clone()
                        } else {
                            format!("{}/{}", e.status, e.substatus)
                        }
                    })
                    .collect(),
                lines: s
                    .lines
                    .iter()
                    .map(|l| (l.sku.clone(), l.quantity))
                    .collect(),
                return_order: s
                    .return_order
                    .as_ref()
                    .map(|r| format!("{}/{}", r.return_type, r.status)),
            })
            .collect(),
        cancels: order.cancels,
        body: order.body.clone(),
        recipient: order.recipient.clone(),
    }
}
