//! [`WapiSimulator`]: a stateful fake of Wapi's "Warehouse API" (`shared/protocols/wapi.md`)
//! over HTTP, with its builder, credentials, stock rows and pickup points.
//!
//! The endpoints and the rules they follow are documented on [`WapiSimulator`].

use std::collections::HashMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use chrono::NaiveDateTime;
use chrono::format::{Fixed, Item};
use hmac::{Hmac, KeyInit, Mac};
use hyper::Method;
use serde_json::{Map, Value, json};
use sha1::Sha1;

use super::faults::Faults;
use super::lifecycle::{Lifecycle, LifecyclePicker, Step};
use super::server::{Api, Clock, Core, Server, SimRequest, SimResponse, lock};
use super::{SimOrder, SimStats};
use crate::error::{Error, Result};
use crate::http::Secret;
use crate::model::normalize_status_key;
use crate::provider::wapi::{STATUS_DATE_ITEMS, WapiBuilder};

/// The client id a simulator started with [`WapiSimulator::start`] accepts.
pub const DEFAULT_CLIENT_ID: &str = "5f0c6d1e-51a7-4c3d-9e8f-00000000517a";
/// The HMAC secret a simulator started with [`WapiSimulator::start`] accepts.
pub const DEFAULT_SECRET: &str = "wapi-simulator-secret";

/// Number of the first WH number handed out (`WH0000100001`).
const FIRST_WH_NUMBER: u64 = 100_001;
/// Pickup points returned when a search sets no limit.
const DEFAULT_POINTS_LIMIT: usize = 20;
/// Most pickup points one search returns.
const MAX_POINTS_LIMIT: usize = 100;

const CANNOT_BE_EDITED: &str = "This order cannot be edited anymore!";
const CRITICAL_INCIDENT: &str =
    "This order has critical incident opened. Please resolve incident before order update.";
const NO_CHANGES: &str =
    "The data you have provided brings no changes. Please check and try again!";

/// Statuses (normalized) from which the carrier's name and number are known: the parcel was
/// handed to the carrier.
const WITH_CARRIER: &[&str] = &[
    "dispatched",
    "intransit",
    "delivered",
    "returning",
    "returnedtosender",
    "returnprocessed",
    "lost",
    "damaged",
];
/// Terminal statuses (§15a), normalized: the top-level trouble status may be stale there.
const TERMINAL: &[&str] = &[
    "delivered",
    "returnedtosender",
    "returnprocessed",
    "cancelled",
    "lost",
    "damaged",
];
/// Statuses (normalized) in which `UpdateOrder` is accepted (§5, §15b).
const UPDATABLE: &[&str] = &["pending", "error", "onhold", "new", "updated"];
/// Statuses (normalized) in which `cancelOrder` is accepted (§6, §15b).
const CANCELLABLE: &[&str] = &["pending", "error", "outofstock", "onhold", "new", "updated"];

/// The credentials a [`WapiSimulator`] accepts.
#[derive(Clone)]
#[non_exhaustive]
pub struct WapiCredentials {
    /// The `x-client-id`.
    pub client_id: String,
    /// The HMAC secret.
    pub secret: Secret,
}

impl fmt::Debug for WapiCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WapiCredentials").finish_non_exhaustive()
    }
}

/// One row of the simulator's stock table: a product in a warehouse of a country (§10).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WapiStockRow {
    /// ISO alpha-2 code of the country (`IT`); requests may name it so or by name.
    pub country: String,
    /// The country's name as Wapi writes it (`Italy`).
    pub country_name: String,
    /// `warehouseName`, e.g. `ITWH2`.
    pub warehouse_name: String,
    /// `productName`: the sku.
    pub product_name: String,
    /// `remainingQuantity`: units in the warehouse.
    pub remaining: i64,
    /// `reservedQuantity`: units held by orders.
    pub reserved: i64,
    /// `availableQuantity`: units orderable now (V1's `reminderQuantity` is their sum).
    pub available: i64,
    /// `InTransitQuantity`.
    pub in_transit: i64,
    /// `returningQuantity`.
    pub returning: i64,
}

impl WapiStockRow {
    /// `available` units of `product` in `warehouse` of `country` (ISO code), nothing
    /// reserved, in transit or returning.
    pub fn new(
        country: impl Into<String>,
        warehouse: impl Into<String>,
        product: impl Into<String>,
        available: i64,
    ) -> Self {
        let country = country.into();
        Self {
            country_name: country_name(&country).unwrap_or(&country).to_owned(),
            country,
            warehouse_name: warehouse.into(),
            product_name: product.into(),
            remaining: available,
            reserved: 0,
            available,
            in_transit: 0,
            returning: 0,
        }
    }

    /// Sets the reserved units (the remaining ones become available + reserved).
    pub fn with_reserved(mut self, reserved: i64) -> Self {
        self.reserved = reserved;
        self.remaining = self.available.saturating_add(reserved);
        self
    }

    /// Sets the units in transit and returning.
    pub fn with_in_transit(mut self, in_transit: i64, returning: i64) -> Self {
        self.in_transit = in_transit;
        self.returning = returning;
        self
    }

    /// Sets the country's name as Wapi writes it.
    pub fn with_country_name(mut self, name: impl Into<String>) -> Self {
        self.country_name = name.into();
        self
    }

    fn in_country(&self, wanted: &str) -> bool {
        let wanted = wanted.trim();
        self.country.eq_ignore_ascii_case(wanted) || self.country_name.eq_ignore_ascii_case(wanted)
    }
}

/// The English names of the countries Wapi serves, for the stock replies.
fn country_name(code: &str) -> Option<&'static str> {
    Some(match code.to_ascii_uppercase().as_str() {
        "IT" => "Italy",
        "ES" => "Spain",
        "PL" => "Poland",
        "PT" => "Portugal",
        "BG" => "Bulgaria",
        "RO" => "Romania",
        "GR" => "Greece",
        "HU" => "Hungary",
        "CZ" => "Czech Republic",
        "SK" => "Slovakia",
        "HR" => "Croatia",
        "SI" => "Slovenia",
        "DE" => "Germany",
        "FR" => "France",
        _ => return None,
    })
}

/// A pickup point or parcel locker of the simulator's directory (§13).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WapiPickupPoint {
    /// `code`: what an order's `selfCollectPointName` names.
    pub code: String,
    /// `carrier`, e.g. `Inpost`.
    pub carrier: String,
    /// `name`, e.g. `Paczkomat WAW01A`.
    pub name: String,
    /// `addressText`: the street line.
    pub address_text: String,
    /// `city`.
    pub city: String,
    /// `zipCode`.
    pub zip_code: String,
    /// `country`, ISO alpha-2.
    pub country: String,
    /// `openingHours`, free text such as `24/7` or `Mo-Fr 09:00-19:00`.
    pub opening_hours: Option<String>,
}

impl WapiPickupPoint {
    /// A point `code` of `carrier` named `name` at `address_text`, `zip_code` `city`,
    /// `country`, without opening hours.
    pub fn new(
        code: impl Into<String>,
        carrier: impl Into<String>,
        name: impl Into<String>,
        country: impl Into<String>,
        city: impl Into<String>,
        zip_code: impl Into<String>,
        address_text: impl Into<String>,
    ) -> Self {
        Self {
            code: code.into(),
            carrier: carrier.into(),
            name: name.into(),
            address_text: address_text.into(),
            city: city.into(),
            zip_code: zip_code.into(),
            country: country.into(),
            opening_hours: None,
        }
    }

    /// Sets the opening hours.
    pub fn with_opening_hours(mut self, hours: impl Into<String>) -> Self {
        self.opening_hours = Some(hours.into());
        self
    }

    fn to_json(&self) -> Value {
        json!({
            "code": self.code,
            "carrier": self.carrier,
            "name": self.name,
            "addressText": self.address_text,
            "city": self.city,
            "zipCode": self.zip_code,
            "country": self.country,
            "openingHours": self.opening_hours,
        })
    }

    /// `name, street, zip city`: how the point is named in a status.
    fn place(&self) -> String {
        format!(
            "{}, {}, {} {}",
            self.name, self.address_text, self.zip_code, self.city
        )
    }
}

/// The stock table a simulator starts with: Wapi's test products (§1) in Italy and Spain.
fn default_stock() -> Vec<WapiStockRow> {
    vec![
        WapiStockRow::new("IT", "ITWH2", "Demo Product-1", 42)
            .with_reserved(8)
            .with_in_transit(5, 1),
        WapiStockRow::new("IT", "ITWH2", "Demo Product-2", 0),
        WapiStockRow::new("ES", "ESWH1", "Demo Product-1", 120).with_reserved(3),
        WapiStockRow::new("ES", "ESWH1", "Demo Product-2", 17),
    ]
}

/// The pickup points a simulator starts with: lockers and points in Poland and Italy.
fn default_pickup_points() -> Vec<WapiPickupPoint> {
    vec![
        WapiPickupPoint::new(
            "WAW01A",
            "Inpost",
            "Paczkomat WAW01A",
            "PL",
            "Warszawa",
            "00-001",
            "ul. Prosta 1",
        )
        .with_opening_hours("24/7"),
        WapiPickupPoint::new(
            "WAW07M",
            "Inpost",
            "Paczkomat WAW07M",
            "PL",
            "Warszawa",
            "00-695",
            "ul. Nowogrodzka 22",
        )
        .with_opening_hours("24/7"),
        WapiPickupPoint::new(
            "PL14062",
            "DPD PL",
            "DPD Pickup Żabka",
            "PL",
            "Kraków",
            "31-042",
            "Rynek Główny 13",
        )
        .with_opening_hours("Mo-Sa 06:00-23:00, Su 10:00-20:00"),
        WapiPickupPoint::new(
            "SDA-VE-0042",
            "SDA",
            "Punto Poste Tabaccheria Rialto",
            "IT",
            "Venezia",
            "30125",
            "Campo San Bartolomio 5300",
        )
        .with_opening_hours("Mo-Fr 08:30-19:30, Sa 09:00-13:00"),
    ]
}

/// Builds a [`WapiSimulator`]; every setting has a default (see
/// [`WapiSimulator::start`]).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> fulfillkit::Result<()> {
/// use fulfillkit::simulator::{Faults, Lifecycle, WapiSimulator, WapiStockRow};
///
/// let wapi = WapiSimulator::builder()
///     .with_credentials("my-client-id", "my-secret")
///     .with_lifecycle_mix([
///         (8, Lifecycle::wapi_delivered()),
///         (1, Lifecycle::wapi_failed_attempt()),
///         (1, Lifecycle::wapi_returned()),
///     ])
///     .with_stock([WapiStockRow::new("IT", "ITWH6", "SKU-1", 10)])
///     .with_pickup_point_directory(true)
///     .with_faults(Faults::none().with_server_errors(0.01).with_seed(7))
///     .start()
///     .await?;
/// assert!(wapi.base_url().ends_with("/api"));
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[must_use = "a builder does nothing until it is built"]
pub struct WapiSimulatorBuilder {
    addr: SocketAddr,
    client_id: String,
    secret: Secret,
    faults: Faults,
    seed: u64,
    lifecycles: Vec<(u32, Lifecycle)>,
    pickup_lifecycle: Lifecycle,
    stock: Vec<WapiStockRow>,
    pickup_points: Vec<WapiPickupPoint>,
    pickup_directory: bool,
    cancel_after_assignment: bool,
    courier: String,
    tracking_by_order_number: bool,
}

impl fmt::Debug for WapiSimulatorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WapiSimulatorBuilder")
            .field("addr", &self.addr)
            .field("faults", &self.faults)
            .field("seed", &self.seed)
            .field("pickup_directory", &self.pickup_directory)
            .finish_non_exhaustive()
    }
}

impl Default for WapiSimulatorBuilder {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            client_id: DEFAULT_CLIENT_ID.into(),
            secret: Secret::new(DEFAULT_SECRET),
            faults: Faults::none(),
            seed: 0,
            lifecycles: vec![(1, Lifecycle::wapi_delivered())],
            pickup_lifecycle: Lifecycle::wapi_pickup_point(),
            stock: default_stock(),
            pickup_points: default_pickup_points(),
            pickup_directory: false,
            cancel_after_assignment: false,
            courier: "SDA".into(),
            tracking_by_order_number: false,
        }
    }
}

impl WapiSimulatorBuilder {
    /// Listens on `addr` (default `127.0.0.1:0`, a free port). Use `0.0.0.0:PORT` to reach
    /// it from other machines (a staging backend).
    pub fn with_addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Listens on `127.0.0.1:port`.
    pub fn with_port(self, port: u16) -> Self {
        self.with_addr(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
    }

    /// Accepts `client_id` and the HMAC `secret` (defaults [`DEFAULT_CLIENT_ID`] and
    /// [`DEFAULT_SECRET`]).
    pub fn with_credentials(
        mut self,
        client_id: impl Into<String>,
        secret: impl Into<Secret>,
    ) -> Self {
        self.client_id = client_id.into();
        self.secret = secret.into();
        self
    }

    /// Injects `faults` (default none).
    pub fn with_faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// Seeds the pick of each new order's lifecycle from the mix (default 0).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Every order that is not self-collect follows `lifecycle` (default
    /// [`Lifecycle::wapi_delivered`]).
    pub fn with_lifecycle(self, lifecycle: Lifecycle) -> Self {
        self.with_lifecycle_mix([(1, lifecycle)])
    }

    /// Each new order that is not self-collect follows one of `mix`, picked with the weights
    /// given (seeded with [`WapiSimulatorBuilder::with_seed`]).
    pub fn with_lifecycle_mix(mut self, mix: impl IntoIterator<Item = (u32, Lifecycle)>) -> Self {
        self.lifecycles = mix.into_iter().collect();
        self
    }

    /// Self-collect orders (`isSelfCollect: true`) follow `lifecycle` (default
    /// [`Lifecycle::wapi_pickup_point`]).
    pub fn with_pickup_lifecycle(mut self, lifecycle: Lifecycle) -> Self {
        self.pickup_lifecycle = lifecycle;
        self
    }

    /// Replaces the stock table (default: `Demo Product-1` and `-2` in `ITWH2` and `ESWH1`).
    pub fn with_stock(mut self, rows: impl IntoIterator<Item = WapiStockRow>) -> Self {
        self.stock = rows.into_iter().collect();
        self
    }

    /// Serves `POST /pickupPoints/search` (default off: the endpoint does not exist at Wapi,
    /// protocol §13).
    pub fn with_pickup_point_directory(mut self, yes: bool) -> Self {
        self.pickup_directory = yes;
        self
    }

    /// Replaces the pickup points (default: lockers and points in Warszawa, Kraków and
    /// Venezia) and serves the directory. Self-collect orders name their point from this list
    /// in their statuses, whether the directory is served or not.
    pub fn with_pickup_points(mut self, points: impl IntoIterator<Item = WapiPickupPoint>) -> Self {
        self.pickup_points = points.into_iter().collect();
        self.pickup_directory = true;
        self
    }

    /// Accepts cancels of orders already `AssignedToPartner` (a special agreement with Wapi,
    /// §6; default off).
    pub fn with_cancel_after_assignment(mut self, yes: bool) -> Self {
        self.cancel_after_assignment = yes;
        self
    }

    /// The carrier of orders that name no `courierService` and are not self-collect
    /// (default `SDA`; self-collect orders go with `Inpost`).
    pub fn with_default_courier(mut self, courier: impl Into<String>) -> Self {
        self.courier = courier.into();
        self
    }

    /// Makes `POST /tracking` and `/tracking/getDetailedOrderStatus` also answer for an order
    /// number given in place of a WH number, with that order's row (which names its WH
    /// number). Default off: Wapi documents no lookup by order number, and whether its
    /// tracking answers one is unconfirmed; the adapter tries it after a create is refused as
    /// a repeated number.
    pub fn with_tracking_by_order_number(mut self, yes: bool) -> Self {
        self.tracking_by_order_number = yes;
        self
    }

    /// Starts the simulator on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] for invalid faults or lifecycles, or blank credentials;
    /// [`Error::Transport`] when the address cannot be bound.
    pub async fn start(self) -> Result<WapiSimulator> {
        if self.client_id.trim().is_empty() || self.secret.is_empty() {
            return Err(Error::validation(
                "wapi simulator",
                vec![crate::error::FieldError::new(
                    "credentials",
                    "client id and secret must not be empty",
                )],
            ));
        }
        self.pickup_lifecycle.validate("pickup_lifecycle")?;
        let api = Arc::new(WapiApi {
            core: Core::new(self.faults)?,
            client_id: self.client_id,
            secret: self.secret,
            pickup_directory: self.pickup_directory,
            cancel_after_assignment: self.cancel_after_assignment,
            courier: self.courier,
            tracking_by_order_number: self.tracking_by_order_number,
            state: Mutex::new(WapiState {
                orders: HashMap::new(),
                by_wh: HashMap::new(),
                next_wh: FIRST_WH_NUMBER,
                next_courier_number: 1,
                stock: self.stock,
                points: self.pickup_points,
                picker: LifecyclePicker::new(self.lifecycles, self.seed)?,
                pickup_lifecycle: Arc::new(self.pickup_lifecycle),
                clock: Clock::default(),
            }),
        });
        let server = Server::start("wapi", self.addr, api.clone()).await?;
        Ok(WapiSimulator { server, api })
    }
}

/// A stateful fake of Wapi's HTTP API on `127.0.0.1`, stopped by
/// [`shutdown`](WapiSimulator::shutdown) or on drop. See [`simulator`](super) for the
/// model.
///
/// Orders are keyed by `orderNumber` and get WH numbers `WH0000100001`, `WH0000100002`, …;
/// each follows a [`Lifecycle`] (one step per [`tick`](WapiSimulator::tick)), with a status
/// history stamped by the wall clock (UTC, millisecond precision, never twice the same
/// instant). From `Dispatched` on, the tracking replies name a carrier and its tracking number
/// (invented, `SIM…`).
///
/// Every endpoint is a signed `POST` below `{base}/api` (matched case-insensitively, as the
/// ASP.NET service behind the real API does; JSON keys are bound case-insensitively too); §
/// numbers are sections of the protocol reference (`wapi.md`):
///
/// - `POST /outbounds`: create (§4), answering `{"trackingNumber":"WH…"}`; a known
///   `orderNumber` is 400 `{"error":"Order with number 'X' already exists"}`;
/// - `POST /outbounds/UpdateOrder`: full replacement (§5) in `Pending`, `Error`, `OnHold`,
///   `New` or `Updated`, else one of the three documented refusals;
/// - `POST /outbounds/cancelOrder`: cancel (§6) in `Pending`, `Error`, `OutOfStock`,
///   `OnHold`, `New` or `Updated` (and `AssignedToPartner` if enabled), else 400
///   `{"error": "This order cannot be edited anymore!"}`;
/// - `POST /tracking`: `{"statuses":[…]}` (§7), unknown numbers left out;
/// - `POST /tracking/getDetailedOrderStatus`: the array with `statusHistory` (§8), also at the
///   pre-2022 path `POST /getDetailedOrderStatus`;
/// - `POST /stock/getProductRemainder` and `…V2`: the stock table (§10);
/// - `POST /courier/addComment`: stores the comment (§11);
/// - `POST /pickupPoints/search`: the pickup-point directory (§13), only when enabled, since
///   it does not exist at Wapi.
///
/// Credentials: a missing or unknown `x-client-id` is 401; a missing or wrong `x-signature`
/// (HMAC-SHA1 of the exact body bytes, hex) is 400 `{"error":"Invalid signature"}`. A body
/// that is not the documented JSON is 400 with `{"error": "<what is wrong>"}`.
pub struct WapiSimulator {
    server: Server,
    api: Arc<WapiApi>,
}

impl fmt::Debug for WapiSimulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WapiSimulator")
            .field("base_url", &self.base_url())
            .finish_non_exhaustive()
    }
}

impl WapiSimulator {
    /// Starts a simulator on a free port of `127.0.0.1` with the defaults: credentials
    /// [`DEFAULT_CLIENT_ID`] / [`DEFAULT_SECRET`], no faults, every order following
    /// [`Lifecycle::wapi_delivered`] (self-collect ones [`Lifecycle::wapi_pickup_point`]),
    /// the default stock table, no pickup-point directory.
    ///
    /// # Errors
    ///
    /// [`Error::Transport`] when no port can be bound.
    pub async fn start() -> Result<Self> {
        Self::builder().start().await
    }

    /// A builder to set credentials, faults, lifecycles, stock and pickup points.
    pub fn builder() -> WapiSimulatorBuilder {
        WapiSimulatorBuilder::default()
    }

    /// The base URL for [`WapiBuilder::with_base_url`]: `http://127.0.0.1:PORT/api`.
    pub fn base_url(&self) -> String {
        format!("http://{}/api", self.server.connect_addr())
    }

    /// The address the server is bound to.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The credentials the simulator accepts.
    pub fn credentials(&self) -> WapiCredentials {
        WapiCredentials {
            client_id: self.api.client_id.clone(),
            secret: self.api.secret.clone(),
        }
    }

    /// A [`WapiBuilder`] for this simulator: its URL and credentials and no rate limit (the
    /// simulator needs no protection; set one to test throttling). Everything else is as in
    /// production — in particular the pickup-point directory stays off: Wapi has no such
    /// endpoint, so a set-up that searches it must say so with
    /// [`WapiBuilder::with_pickup_point_directory`] and knows it differs from production.
    pub fn provider_builder(&self) -> WapiBuilder {
        WapiBuilder::new(self.api.client_id.clone(), self.api.secret.clone())
            .with_base_url(self.base_url())
            .with_rate_limit(None)
    }

    /// Moves order `order_number` to raw status `status` (no trouble, no comment), as Wapi
    /// would report it; see [`Lifecycle`] for how later ticks continue.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when no order has that number.
    pub fn advance(&self, order_number: &str, status: &str) -> Result<()> {
        self.advance_with(order_number, Step::new(status))
    }

    /// Moves order `order_number` to `step` (raw status with trouble status and comment).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when no order has that number.
    pub fn advance_with(&self, order_number: &str, step: Step) -> Result<()> {
        let mut state = lock(&self.api.state);
        let state = &mut *state;
        let order = state
            .orders
            .get_mut(order_number)
            .ok_or_else(|| not_found(order_number))?;
        order.position = order.lifecycle.position_of(&step.status, order.position);
        let at = state.clock.now();
        order.enter(
            &step,
            at,
            &state.points,
            &self.api.courier,
            &mut state.next_courier_number,
        );
        Ok(())
    }

    /// Moves every order one step along its lifecycle; returns how many moved. Orders at
    /// their last step, cancelled, or moved off their lifecycle by `advance` stay.
    pub fn tick(&self) -> usize {
        let mut state = lock(&self.api.state);
        let state = &mut *state;
        let mut numbers: Vec<&String> = state.orders.keys().collect();
        // A stable order, so that the stamps follow the order numbers.
        numbers.sort();
        let numbers: Vec<String> = numbers.into_iter().cloned().collect();
        let mut moved = 0;
        for number in numbers {
            let at = state.clock.now();
            if let Some(order) = state.orders.get_mut(&number) {
                let Some(next) = order.position.map(|p| p + 1) else {
                    continue;
                };
                let Some(step) = order.lifecycle.steps().get(next).cloned() else {
                    continue;
                };
                order.position = Some(next);
                order.enter(
                    &step,
                    at,
                    &state.points,
                    &self.api.courier,
                    &mut state.next_courier_number,
                );
                moved += 1;
            }
        }
        moved
    }

    /// Makes order `order_number` follow `lifecycle` from its first step matching the current
    /// status (or off the lifecycle when none does).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown order, [`Error::Validation`] for an empty
    /// lifecycle.
    pub fn set_lifecycle(&self, order_number: &str, lifecycle: Lifecycle) -> Result<()> {
        lifecycle.validate("lifecycle")?;
        let mut state = lock(&self.api.state);
        let order = state
            .orders
            .get_mut(order_number)
            .ok_or_else(|| not_found(order_number))?;
        order.position = lifecycle.position_of(&order.status, None);
        order.lifecycle = Arc::new(lifecycle);
        Ok(())
    }

    /// Opens (or resolves) a critical incident on order `order_number`: while open, updates
    /// are refused with the documented "critical incident" body (§5).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when no order has that number.
    pub fn set_incident(&self, order_number: &str, open: bool) -> Result<()> {
        let mut state = lock(&self.api.state);
        let order = state
            .orders
            .get_mut(order_number)
            .ok_or_else(|| not_found(order_number))?;
        order.incident = open;
        Ok(())
    }

    /// The WH number of order `order_number`.
    pub fn wh_number(&self, order_number: &str) -> Option<String> {
        lock(&self.api.state)
            .orders
            .get(order_number)
            .map(|o| o.wh.clone())
    }

    /// Order `order_number` as the simulator holds it.
    pub fn order(&self, order_number: &str) -> Option<SimOrder> {
        lock(&self.api.state)
            .orders
            .get(order_number)
            .map(WapiOrder::snapshot)
    }

    /// Every order, by order number.
    pub fn orders(&self) -> Vec<SimOrder> {
        let state = lock(&self.api.state);
        let mut orders: Vec<SimOrder> = state.orders.values().map(WapiOrder::snapshot).collect();
        orders.sort_by(|a, b| a.order_number.cmp(&b.order_number));
        orders
    }

    /// The comments sent for order `order_number` through `POST /courier/addComment`, as
    /// received.
    pub fn courier_comments(&self, order_number: &str) -> Vec<Value> {
        lock(&self.api.state)
            .orders
            .get(order_number)
            .map(|o| o.comments.clone())
            .unwrap_or_default()
    }

    /// Adds or replaces (same country, warehouse and product) a row of the stock table.
    pub fn set_stock(&self, row: WapiStockRow) {
        let mut state = lock(&self.api.state);
        let existing = state.stock.iter_mut().find(|r| {
            r.country.eq_ignore_ascii_case(&row.country)
                && r.warehouse_name == row.warehouse_name
                && r.product_name == row.product_name
        });
        match existing {
            Some(existing) => *existing = row,
            None => state.stock.push(row),
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

    /// A copy of the counters.
    pub fn stats(&self) -> SimStats {
        self.api.core.stats().clone()
    }

    /// Sets every counter back to zero.
    pub fn reset_stats(&self) {
        self.api.core.reset_stats();
    }

    /// Stops the server and closes its connections.
    pub async fn shutdown(mut self) {
        self.server.shutdown().await;
    }
}

fn not_found(order_number: &str) -> Error {
    Error::NotFound {
        what: format!("simulated wapi order {order_number}"),
    }
}

/// The §7 fields of one order in a tracking reply. Absent courier fields are left out, as Wapi
/// does before dispatch.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct TrackingJson<'a> {
    tracking_number: &'a str,
    delivery_status: &'a str,
    delivery_status_text: String,
    trouble_status: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    courier_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    courier_site: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    courier_tracking_site_link: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    courier_tracking_number: Option<&'a str>,
}

/// The §7 reply: `{"statuses": [...]}`.
#[derive(serde::Serialize)]
struct StatusesJson<'a> {
    statuses: Vec<TrackingJson<'a>>,
}

/// One order of the §8 reply: the history, a `null` statusDate, and the §7 fields.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct DetailedJson<'a> {
    status_history: Vec<HistoryJson<'a>>,
    /// Always `null`, as in the documented example.
    status_date: (),
    #[serde(flatten)]
    tracking: TrackingJson<'a>,
}

/// Writes a §8 `statusDate` straight into the reply.
fn status_date<S: serde::Serializer>(
    at: &NaiveDateTime,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    // `%Y-%m-%dT%H:%M:%S%.3f`: the adapter's whole-second items, then milliseconds.
    let millis = [Item::Fixed(Fixed::Nanosecond3)];
    serializer.collect_str(&format_args!(
        "{}{}",
        at.format_with_items(STATUS_DATE_ITEMS.iter()),
        at.format_with_items(millis.iter())
    ))
}

/// One `statusHistory` entry of the §8 reply.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct HistoryJson<'a> {
    #[serde(serialize_with = "status_date")]
    status_date: NaiveDateTime,
    status_name: &'a str,
    status_comment: Option<&'a str>,
    trouble_status: Option<&'a str>,
}

/// One entry of an order's status history.
#[derive(Debug, Clone)]
struct Entry {
    at: NaiveDateTime,
    status: String,
    trouble: Option<String>,
    comment: Option<String>,
    location: Option<String>,
}

/// The carrier of a dispatched order.
#[derive(Debug, Clone)]
struct Courier {
    name: String,
    tracking_number: String,
}

impl Courier {
    /// The carrier's home page, for the carriers Wapi's examples name.
    fn site(&self) -> Option<&'static str> {
        Some(match normalize_status_key(&self.name).as_str() {
            "sda" => "https://www.sda.it",
            "gls" | "glsit" => "https://www.gls-italy.com",
            "dpdpl" => "https://www.dpd.com.pl",
            "inpost" => "https://inpost.pl",
            _ => return None,
        })
    }
}

#[derive(Debug)]
struct WapiOrder {
    number: String,
    wh: String,
    body: Map<String, Value>,
    status: String,
    trouble: Option<String>,
    /// The last trouble status ever reported: Wapi keeps it on terminal statuses (§7).
    last_trouble: Option<String>,
    history: Vec<Entry>,
    lifecycle: Arc<Lifecycle>,
    position: Option<usize>,
    courier: Option<Courier>,
    incident: bool,
    comments: Vec<Value>,
}

impl WapiOrder {
    /// Records `step` at `at` as the current status.
    fn enter(
        &mut self,
        step: &Step,
        at: NaiveDateTime,
        points: &[WapiPickupPoint],
        default_courier: &str,
        next_courier_number: &mut u64,
    ) {
        let mut comment = step.comment.clone();
        let mut location = None;
        if step.at_pickup_point {
            if let Some(code) = self.pickup_point() {
                let known = points.iter().find(|p| p.code.eq_ignore_ascii_case(&code));
                let place = match known {
                    Some(point) => point.place(),
                    None => {
                        let receiver = field(&self.body, "receiver").and_then(Value::as_object);
                        let part = |name| receiver.and_then(|r| text(r, name)).unwrap_or("");
                        format!(
                            "{code}, {}, {} {}",
                            part("addressText"),
                            part("zipCode"),
                            part("city")
                        )
                    }
                };
                let hours = known
                    .and_then(|p| p.opening_hours.as_deref())
                    .map(|h| format!("; opening hours: {h}"))
                    .unwrap_or_default();
                let lead = comment.unwrap_or_else(|| "Parcel available for pickup".into());
                comment = Some(format!("{lead} at {place}{hours}"));
                location = Some(place);
            }
        }
        if let Some(trouble) = &step.trouble {
            self.last_trouble = Some(trouble.clone());
        }
        self.status = step.status.clone();
        self.trouble = step.trouble.clone();
        self.history.push(Entry {
            at,
            status: step.status.clone(),
            trouble: step.trouble.clone(),
            comment,
            location,
        });
        let key = normalize_status_key(&step.status);
        if self.courier.is_none() && WITH_CARRIER.contains(&key.as_str()) {
            let name = text(&self.body, "courierService")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .unwrap_or_else(|| {
                    if self.pickup_point().is_some() {
                        "Inpost".into()
                    } else {
                        default_courier.to_owned()
                    }
                });
            self.courier = Some(Courier {
                name,
                tracking_number: format!("SIM{:010}", *next_courier_number),
            });
            *next_courier_number += 1;
        }
    }

    /// The point code of a self-collect order.
    fn pickup_point(&self) -> Option<String> {
        is_self_collect(&self.body)
            .then(|| text(&self.body, "selfCollectPointName").map(str::to_owned))
            .flatten()
    }

    fn is_terminal(&self) -> bool {
        TERMINAL.contains(&normalize_status_key(&self.status).as_str())
    }

    /// The top-level `troubleStatus`: the current entry's, except on terminal statuses, where
    /// Wapi keeps the last one reported (§7: `Delivered` with `CannotLocateConsignee`).
    fn top_trouble(&self) -> Option<&str> {
        if self.is_terminal() {
            self.last_trouble.as_deref()
        } else {
            self.trouble.as_deref()
        }
    }

    /// `deliveryStatusText` (§7): `[dd.mm.yyyy hh:mm:ss] Status: '…'; Comments: '…'` with
    /// `; Location: '…'` when known; a pending order without comment is "being processed".
    fn status_text(&self) -> String {
        let Some(last) = self.history.last() else {
            return "Order is being processed".into();
        };
        if normalize_status_key(&last.status) == "pending" && last.comment.is_none() {
            return "Order is being processed".into();
        }
        let mut text = format!(
            "[{}] Status: '{}'; Comments: '{}'",
            last.at.format("%d.%m.%Y %H:%M:%S"),
            last.status,
            last.comment.as_deref().unwrap_or("")
        );
        if let Some(location) = &last.location {
            text.push_str(&format!("; Location: '{location}'"));
        }
        text
    }

    /// The §7 fields of the order.
    fn tracking_json(&self) -> TrackingJson<'_> {
        let courier = self.courier.as_ref();
        let site = courier.and_then(Courier::site);
        TrackingJson {
            tracking_number: &self.wh,
            delivery_status: &self.status,
            delivery_status_text: self.status_text(),
            trouble_status: self.top_trouble(),
            courier_name: courier.map(|c| c.name.as_str()),
            courier_site: site,
            courier_tracking_site_link: courier
                .zip(site)
                .map(|(c, site)| format!("{site}/tracking?number={}", c.tracking_number)),
            courier_tracking_number: courier.map(|c| c.tracking_number.as_str()),
        }
    }

    /// The §8 object: history first, as in the documented example.
    fn detailed_json(&self) -> DetailedJson<'_> {
        DetailedJson {
            status_history: self
                .history
                .iter()
                .map(|e| HistoryJson {
                    status_date: e.at,
                    status_name: &e.status,
                    status_comment: e.comment.as_deref(),
                    trouble_status: e.trouble.as_deref(),
                })
                .collect(),
            status_date: (),
            tracking: self.tracking_json(),
        }
    }

    fn snapshot(&self) -> SimOrder {
        SimOrder {
            order_number: self.number.clone(),
            reference: self.wh.clone(),
            status: self.status.clone(),
            trouble: self.trouble.clone(),
            history: self.history.iter().map(|e| e.status.clone()).collect(),
            body: Value::Object(self.body.clone()),
        }
    }
}

#[derive(Debug)]
struct WapiState {
    /// Order number → order.
    orders: HashMap<String, WapiOrder>,
    /// WH number → order number.
    by_wh: HashMap<String, String>,
    next_wh: u64,
    next_courier_number: u64,
    stock: Vec<WapiStockRow>,
    points: Vec<WapiPickupPoint>,
    picker: LifecyclePicker,
    pickup_lifecycle: Arc<Lifecycle>,
    clock: Clock,
}

impl WapiState {
    fn by_wh_mut(&mut self, wh: &str) -> Option<&mut WapiOrder> {
        let number = self.by_wh.get(wh.trim())?;
        self.orders.get_mut(number)
    }
}

struct WapiApi {
    core: Core,
    client_id: String,
    secret: Secret,
    pickup_directory: bool,
    cancel_after_assignment: bool,
    courier: String,
    tracking_by_order_number: bool,
    state: Mutex<WapiState>,
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
        let mut order = WapiOrder {
            number: number.clone(),
            wh: wh.clone(),
            body: body.clone(),
            status: String::new(),
            trouble: None,
            last_trouble: None,
            history: Vec::new(),
            position: Some(0),
            courier: None,
            incident: false,
            comments: Vec::new(),
            lifecycle: lifecycle.clone(),
        };
        let first = lifecycle.steps()[0].clone();
        let at = state.clock.now();
        order.enter(
            &first,
            at,
            &state.points,
            &self.courier,
            &mut state.next_courier_number,
        );
        state.by_wh.insert(wh.clone(), number.clone());
        state.orders.insert(number, order);
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
        let Some(order) = key.and_then(|k| state.orders.get_mut(&k)) else {
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
        let at = state.clock.now();
        order.position = None;
        order.enter(
            &step,
            at,
            &state.points,
            &self.courier,
            &mut state.next_courier_number,
        );
        SimResponse::json(
            200,
            &json!(format!(
                "The order with number '{}' has been cancelled successfully",
                order.wh
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
    if text.len() % 2 != 0 || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

/// The value of key `name`, matched exactly first, then case-insensitively (ASP.NET binds
/// JSON keys case-insensitively, and R's examples mix `trackingNumber`/`TrackingNumber`).
fn field<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    map.get(name).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// The text of key `name`, if it is a string.
fn text<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    field(map, name).and_then(Value::as_str)
}

/// `isSelfCollect`, as a boolean or the strings `"true"` / `"false"`.
fn is_self_collect(body: &Map<String, Value>) -> bool {
    match field(body, "isSelfCollect") {
        Some(Value::Bool(yes)) => *yes,
        Some(Value::String(s)) => s.trim().eq_ignore_ascii_case("true"),
        _ => false,
    }
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
    fn status_dates_are_written_as_wapi_does_and_read_back_by_the_adapter() {
        #[derive(serde::Serialize)]
        struct Date(#[serde(serialize_with = "status_date")] NaiveDateTime);
        let at = chrono::NaiveDate::from_ymd_opt(2022, 5, 2)
            .and_then(|d| d.and_hms_milli_opt(5, 56, 52, 50))
            .expect("a valid date");
        let text = serde_json::to_value(Date(at)).expect("serializes");
        assert_eq!(text, json!("2022-05-02T05:56:52.050"));
        let read = crate::provider::wapi::parse_status_date(text.as_str().unwrap_or(""), 0)
            .expect("the adapter reads it");
        assert_eq!(read.naive_utc(), at);
    }

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

    #[test]
    fn the_stale_trouble_stays_on_terminal_statuses_only() {
        let mut order = WapiOrder {
            number: "SO-1".into(),
            wh: "WH1".into(),
            body: Map::new(),
            status: String::new(),
            trouble: None,
            last_trouble: None,
            history: Vec::new(),
            lifecycle: Arc::new(Lifecycle::wapi_delivered()),
            position: None,
            courier: None,
            incident: false,
            comments: Vec::new(),
        };
        let mut n = 1;
        let at = chrono::DateTime::UNIX_EPOCH.naive_utc();
        order.enter(
            &Step::new("InTransit").with_trouble("IsAbsent1"),
            at,
            &[],
            "SDA",
            &mut n,
        );
        assert_eq!(order.top_trouble(), Some("IsAbsent1"));
        order.enter(&Step::new("InTransit"), at, &[], "SDA", &mut n);
        assert_eq!(order.top_trouble(), None);
        order.enter(&Step::new("Delivered"), at, &[], "SDA", &mut n);
        assert_eq!(order.top_trouble(), Some("IsAbsent1"));
        assert_eq!(order.courier.as_ref().map(|c| c.name.as_str()), Some("SDA"));
        assert_eq!(n, 2, "one carrier number per order");
    }
}
