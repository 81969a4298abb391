//! [`SphereSimulator`]: a stateful fake of the SphereWMS API v2 (`shared/protocols/sphere.md`)
//! over HTTP, with its builder, credentials, inventory rows and customers.
//!
//! The endpoints and the rules they follow are documented on [`SphereSimulator`].

use std::collections::HashMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use chrono::{NaiveDate, NaiveDateTime};
use hyper::Method;
use serde_json::{Map, Value, json};

use super::faults::Faults;
use super::lifecycle::{Lifecycle, LifecyclePicker};
use super::server::{Api, Clock, Core, Server, SimRequest, SimResponse, lock};
use super::{SimOrder, SimStats};
use crate::error::{Error, FieldError, Result};
use crate::http::Secret;
use crate::model::normalize_status_key;
use crate::provider::sphere::SphereBuilder;

/// The environment a simulator started with [`SphereSimulator::start`] serves.
pub const DEFAULT_ENVIRONMENT: &str = "sim-api";
/// The API key a simulator started with [`SphereSimulator::start`] accepts.
pub const DEFAULT_API_KEY: &str = "sphere-simulator-key";
/// The client code of a simulator started with [`SphereSimulator::start`].
pub const DEFAULT_CLIENT_CODE: &str = "100";
/// The inventory account (location id) of a simulator started with
/// [`SphereSimulator::start`].
pub const DEFAULT_LOCATION_ID: u32 = 100;

/// The first `order_id` handed out (the protocol fixture's).
const FIRST_ORDER_ID: u64 = 88_213;
/// The first `shipment_id` handed out.
const FIRST_SHIPMENT_ID: u64 = 5_120;
/// Rows per page when a listing sets no `limit`.
const DEFAULT_LIMIT: usize = 100;
/// Most rows per page.
const MAX_LIMIT: usize = 1_000;
/// Longest ship-to customer code (§7.1).
const CUSTOMER_CODE_MAX_CHARS: usize = 20;
/// Statuses (normalized) in which an order may be updated or voided (§10(b)).
const CHANGEABLE: &[&str] = &["open", "pending", "onhold", "backordered", "new", "entered"];
/// Statuses (normalized) of an order that has shipped: it has a shipment.
const SHIPPED: &[&str] = &[
    "shipped",
    "closed",
    "complete",
    "delivered",
    "returned",
    "rmareceived",
];
/// Statuses (normalized) of a voided order (§10(a)).
const VOID: &[&str] = &["void", "voided", "cancelled", "canceled", "deleted"];

/// The account a [`SphereSimulator`] serves and the key it accepts.
#[derive(Clone)]
#[non_exhaustive]
pub struct SphereCredentials {
    /// The environment name (the path segment after the base URL).
    pub environment: String,
    /// The API key.
    pub api_key: Secret,
    /// The client code.
    pub client_code: String,
    /// The inventory account orders ship from.
    pub location_id: u32,
}

impl fmt::Debug for SphereCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SphereCredentials")
            .field("environment", &self.environment)
            .field("client_code", &self.client_code)
            .field("location_id", &self.location_id)
            .finish_non_exhaustive()
    }
}

/// One row of the simulator's inventory: a product in an inventory account (§7.4).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SphereInventoryRow {
    /// `location_id`: the inventory account.
    pub location_id: u32,
    /// `product_code`: the sku; the product master is the set of these codes.
    pub product_code: String,
    /// `description`.
    pub description: String,
    /// `on_hand`: units in the account.
    pub on_hand: i64,
    /// `allocated`: units held by orders.
    pub allocated: i64,
    /// `available`: units orderable now.
    pub available: i64,
}

impl SphereInventoryRow {
    /// `available` units of `product_code` in account `location_id`, none allocated.
    pub fn new(location_id: u32, product_code: impl Into<String>, available: i64) -> Self {
        let product_code = product_code.into();
        Self {
            location_id,
            description: product_code.clone(),
            product_code,
            on_hand: available,
            allocated: 0,
            available,
        }
    }

    /// Sets the allocated units (on hand becomes available + allocated).
    pub fn with_allocated(mut self, allocated: i64) -> Self {
        self.allocated = allocated;
        self.on_hand = self.available.saturating_add(allocated);
        self
    }

    /// Sets the description.
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }
}

/// A ship-to customer of the simulator's Customer Master (§7.5).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SphereCustomer {
    /// `customer_code`.
    pub customer_code: String,
    /// `name`.
    pub name: String,
    /// `bill_to_code` (the customer itself unless set).
    pub bill_to_code: String,
    /// `street_1`.
    pub street_1: String,
    /// `street_2`.
    pub street_2: Option<String>,
    /// `street_3`.
    pub street_3: Option<String>,
    /// `city`.
    pub city: String,
    /// `state`.
    pub state: Option<String>,
    /// `zip`.
    pub zip: String,
    /// `country`, ISO alpha-2.
    pub country: String,
    /// `phone`.
    pub phone: Option<String>,
    /// `email`.
    pub email: Option<String>,
}

impl SphereCustomer {
    /// Customer `code` named `name` at `street_1`, `zip` `city`, `country`.
    pub fn new(
        code: impl Into<String>,
        name: impl Into<String>,
        country: impl Into<String>,
        city: impl Into<String>,
        zip: impl Into<String>,
        street_1: impl Into<String>,
    ) -> Self {
        let customer_code = code.into();
        Self {
            bill_to_code: customer_code.clone(),
            customer_code,
            name: name.into(),
            street_1: street_1.into(),
            street_2: None,
            street_3: None,
            city: city.into(),
            state: None,
            zip: zip.into(),
            country: country.into(),
            phone: None,
            email: None,
        }
    }

    /// Sets the state (region).
    pub fn with_state(mut self, state: impl Into<String>) -> Self {
        self.state = Some(state.into());
        self
    }

    /// Sets the phone and email.
    pub fn with_contact(mut self, phone: impl Into<String>, email: impl Into<String>) -> Self {
        self.phone = Some(phone.into());
        self.email = Some(email.into());
        self
    }

    /// The customer described by an order's `ship_to`.
    fn from_ship_to(code: &str, ship_to: &Map<String, Value>) -> Self {
        let text = |name: &str| {
            ship_to
                .get(name)
                .and_then(Value::as_str)
                .map(str::trim)
                .unwrap_or("")
                .to_owned()
        };
        let optional = |name: &str| Some(text(name)).filter(|t| !t.is_empty());
        Self {
            customer_code: code.to_owned(),
            name: text("name"),
            bill_to_code: code.to_owned(),
            street_1: text("street_1"),
            street_2: optional("street_2"),
            street_3: optional("street_3"),
            city: text("city"),
            state: optional("state"),
            zip: text("zip"),
            country: text("country"),
            phone: optional("phone"),
            email: optional("email"),
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "customer_code": self.customer_code,
            "name": self.name,
            "bill_to_code": self.bill_to_code,
            "street_1": self.street_1,
            "street_2": self.street_2,
            "street_3": self.street_3,
            "city": self.city,
            "state": self.state,
            "zip": self.zip,
            "country": self.country,
            "phone": self.phone,
            "email": self.email,
        })
    }

    fn matches(&self, keyword: &str) -> bool {
        let keyword = keyword.to_lowercase();
        [
            Some(&self.customer_code),
            Some(&self.name),
            Some(&self.street_1),
            self.street_2.as_ref(),
            self.street_3.as_ref(),
            Some(&self.city),
            self.state.as_ref(),
            Some(&self.zip),
        ]
        .into_iter()
        .flatten()
        .any(|t| t.to_lowercase().contains(&keyword))
    }
}

/// The inventory a simulator starts with at account `location`: the protocol fixture's
/// products and Wapi's test products (so `testkit::sample_order` is accepted), plus a
/// quarantine account at `location + 10` that is never orderable stock.
fn default_inventory(location: u32) -> Vec<SphereInventoryRow> {
    vec![
        SphereInventoryRow::new(location, "ABC-100", 112)
            .with_allocated(8)
            .with_description("Widget"),
        SphereInventoryRow::new(location, "XYZ-7", 40).with_description("Gadget"),
        SphereInventoryRow::new(location, "Demo Product-1", 250).with_description("Demo 1"),
        SphereInventoryRow::new(location, "Demo Product-2", 0).with_description("Demo 2"),
        SphereInventoryRow::new(location.saturating_add(10), "ABC-100", 5)
            .with_description("Widget (quarantine)"),
    ]
}

/// The customers a simulator starts with.
fn default_customers() -> Vec<SphereCustomer> {
    vec![
        SphereCustomer::new(
            "ACME-CMH",
            "Acme Store Columbus",
            "US",
            "Columbus",
            "43004",
            "100 Main St",
        )
        .with_state("OH")
        .with_contact("+16145550100", "columbus@acme.example"),
        SphereCustomer::new(
            "ACME-NYC",
            "Acme Store New York",
            "US",
            "New York",
            "10001",
            "350 5th Ave",
        )
        .with_state("NY"),
    ]
}

/// Builds a [`SphereSimulator`]; every setting has a default (see
/// [`SphereSimulator::start`]).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> fulfillkit::Result<()> {
/// use fulfillkit::simulator::{Lifecycle, SphereInventoryRow, SphereSimulator};
///
/// let sphere = SphereSimulator::builder()
///     .with_account("faes-api", "my-key", "200", 300)
///     .with_lifecycle(Lifecycle::sphere_delivered())
///     .with_inventory([SphereInventoryRow::new(300, "SKU-1", 12)])
///     .start()
///     .await?;
/// assert_eq!(sphere.credentials().location_id, 300);
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[must_use = "a builder does nothing until it is built"]
pub struct SphereSimulatorBuilder {
    addr: SocketAddr,
    environment: String,
    api_key: Secret,
    client_code: String,
    location_id: u32,
    faults: Faults,
    seed: u64,
    lifecycles: Vec<(u32, Lifecycle)>,
    inventory: Option<Vec<SphereInventoryRow>>,
    customers: Vec<SphereCustomer>,
    product_check: bool,
}

impl fmt::Debug for SphereSimulatorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SphereSimulatorBuilder")
            .field("addr", &self.addr)
            .field("environment", &self.environment)
            .field("client_code", &self.client_code)
            .field("location_id", &self.location_id)
            .field("faults", &self.faults)
            .finish_non_exhaustive()
    }
}

impl Default for SphereSimulatorBuilder {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            environment: DEFAULT_ENVIRONMENT.into(),
            api_key: Secret::new(DEFAULT_API_KEY),
            client_code: DEFAULT_CLIENT_CODE.into(),
            location_id: DEFAULT_LOCATION_ID,
            faults: Faults::none(),
            seed: 0,
            lifecycles: vec![(1, Lifecycle::sphere_shipped())],
            inventory: None,
            customers: default_customers(),
            product_check: true,
        }
    }
}

impl SphereSimulatorBuilder {
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

    /// Serves `environment` for `api_key`, client `client_code` and inventory account
    /// `location_id` (the four values of `SphereBuilder::new`; defaults
    /// [`DEFAULT_ENVIRONMENT`], [`DEFAULT_API_KEY`], [`DEFAULT_CLIENT_CODE`],
    /// [`DEFAULT_LOCATION_ID`]).
    pub fn with_account(
        mut self,
        environment: impl Into<String>,
        api_key: impl Into<Secret>,
        client_code: impl Into<String>,
        location_id: u32,
    ) -> Self {
        self.environment = environment.into();
        self.api_key = api_key.into();
        self.client_code = client_code.into();
        self.location_id = location_id;
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

    /// Every order follows `lifecycle` (default [`Lifecycle::sphere_shipped`]).
    pub fn with_lifecycle(self, lifecycle: Lifecycle) -> Self {
        self.with_lifecycle_mix([(1, lifecycle)])
    }

    /// Each new order follows one of `mix`, picked with the weights given (seeded with
    /// [`SphereSimulatorBuilder::with_seed`]).
    pub fn with_lifecycle_mix(mut self, mix: impl IntoIterator<Item = (u32, Lifecycle)>) -> Self {
        self.lifecycles = mix.into_iter().collect();
        self
    }

    /// Replaces the inventory (default: `ABC-100`, `XYZ-7`, `Demo Product-1`, `Demo
    /// Product-2` in the account, and a quarantine account at `location_id + 10`). Its
    /// product codes are the product master orders are checked against.
    pub fn with_inventory(mut self, rows: impl IntoIterator<Item = SphereInventoryRow>) -> Self {
        self.inventory = Some(rows.into_iter().collect());
        self
    }

    /// Replaces the customer directory (default: two Acme stores).
    pub fn with_customers(mut self, customers: impl IntoIterator<Item = SphereCustomer>) -> Self {
        self.customers = customers.into_iter().collect();
        self
    }

    /// Whether order lines must name a product of the inventory (default true: SphereWMS
    /// rejects unknown parts, protocol §5).
    pub fn with_product_check(mut self, yes: bool) -> Self {
        self.product_check = yes;
        self
    }

    /// Starts the simulator on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] for invalid faults or lifecycles, or a blank environment, key or
    /// client code; [`Error::Transport`] when the address cannot be bound.
    pub async fn start(self) -> Result<SphereSimulator> {
        let mut errors = Vec::new();
        if self.environment.trim().is_empty() || self.environment.contains('/') {
            errors.push(FieldError::new("environment", "must be one path segment"));
        }
        if self.api_key.is_empty() {
            errors.push(FieldError::new("api_key", "must not be empty"));
        }
        if self.client_code.trim().is_empty() {
            errors.push(FieldError::new("client_code", "must not be empty"));
        }
        if !errors.is_empty() {
            return Err(Error::validation("sphere simulator", errors));
        }
        let inventory = self
            .inventory
            .unwrap_or_else(|| default_inventory(self.location_id));
        let api = Arc::new(SphereApi {
            core: Core::new(self.faults)?,
            environment: self.environment,
            api_key: self.api_key,
            client_code: self.client_code,
            location_id: self.location_id,
            product_check: self.product_check,
            state: Mutex::new(SphereState {
                orders: HashMap::new(),
                by_number: HashMap::new(),
                next_order_id: FIRST_ORDER_ID,
                shipments: Vec::new(),
                next_shipment_id: FIRST_SHIPMENT_ID,
                inventory,
                customers: self.customers,
                picker: LifecyclePicker::new(self.lifecycles, self.seed)?,
                clock: Clock::default(),
            }),
        });
        let server = Server::start("sphere", self.addr, api.clone()).await?;
        Ok(SphereSimulator { server, api })
    }
}

/// A stateful fake of the SphereWMS API v2 on `127.0.0.1`, stopped by
/// [`shutdown`](SphereSimulator::shutdown) or on drop. See [`simulator`](super) for the
/// model.
///
/// Orders get `order_id`s from 88213 on and follow a [`Lifecycle`] (one step per
/// [`tick`](SphereSimulator::tick)); `created_on` / `updated_on` are compact UTC stamps
/// (`YYYYMMDDhhmmss`). When an order ships, a shipment with a carrier, service and tracking
/// number (invented: UPS-style `1Z999AA1…`) is added.
///
/// Every action is below `{base}/{environment}` with `base` = `http://127.0.0.1:PORT/v2/wms`;
/// field names are `snake_case`, lists are bare arrays paged with `limit` (default 100, at
/// most 1000) and `page` (from 0); § numbers are sections of the protocol reference
/// (`sphere.md`), whose order endpoints are themselves assumed:
///
/// - `POST /orders`: create (§7.1), 201 with the order; a known `order_number` is 409
///   `{"error":"duplicate order_number X"}`;
/// - `GET /orders`: "find our order", filters `client_code`, `order_number`, `status`;
/// - `GET /orders/{id}`: the order, or 404;
/// - `POST /orders/{id}`: full replacement while open (§7.2), else 409
///   `{"error":"Order N is allocated and cannot be updated"}`;
/// - `DELETE /orders/{id}`: void while open, `{"order_id":N,"status":"void"}`, else 409
///   `{"error":"Order N is allocated and cannot be voided"}`;
/// - `GET /shipments`: shipments (§7.3), made when an order ships; filters `order_number`,
///   `order_id`, `from_date`;
/// - `GET /inventory`: the inventory table (§7.4), filters `location_id`, `product_code`;
/// - `GET /inventory_accounts`: the inventory accounts (§7.5);
/// - `GET /customers`: the ship-to directory (§7.5), filter `keyword`;
/// - `GET /adjustments`, `GET /suppliers`: documented (§6), always empty here.
///
/// Credentials (§3): the API key as `Authorization: Bearer {key}`, a `key` header or a `key`
/// query parameter; none, or any wrong one, is 401 `{"error":"Invalid API key"}`. Another
/// environment in the path, or another `client_code` in the query or body, is 403. An invalid
/// body is 422 `{"errors":[{"field":…,"message":…}]}` (an unknown product code as in §10(c));
/// one that is not JSON is 400.
///
/// A create names a ship-to `customer_code`; an unknown one is added to the customer
/// directory from `ship_to`, as SphereWMS does for uploads (protocol §5).
pub struct SphereSimulator {
    server: Server,
    api: Arc<SphereApi>,
}

impl fmt::Debug for SphereSimulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SphereSimulator")
            .field("base_url", &self.base_url())
            .field("environment", &self.api.environment)
            .finish_non_exhaustive()
    }
}

impl SphereSimulator {
    /// Starts a simulator on a free port of `127.0.0.1` with the defaults: environment
    /// [`DEFAULT_ENVIRONMENT`], key [`DEFAULT_API_KEY`], client [`DEFAULT_CLIENT_CODE`],
    /// account [`DEFAULT_LOCATION_ID`], no faults, every order following
    /// [`Lifecycle::sphere_shipped`], the default inventory and customers.
    ///
    /// # Errors
    ///
    /// [`Error::Transport`] when no port can be bound.
    pub async fn start() -> Result<Self> {
        Self::builder().start().await
    }

    /// A builder to set the account, faults, lifecycles, inventory and customers.
    pub fn builder() -> SphereSimulatorBuilder {
        SphereSimulatorBuilder::default()
    }

    /// The base URL for [`SphereBuilder::with_base_url`]: `http://127.0.0.1:PORT/v2/wms`
    /// (the adapter adds the environment).
    pub fn base_url(&self) -> String {
        format!("http://{}/v2/wms", self.server.connect_addr())
    }

    /// The address the server is bound to.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The account served and the key accepted.
    pub fn credentials(&self) -> SphereCredentials {
        SphereCredentials {
            environment: self.api.environment.clone(),
            api_key: self.api.api_key.clone(),
            client_code: self.api.client_code.clone(),
            location_id: self.api.location_id,
        }
    }

    /// A [`SphereBuilder`] for this simulator: its URL and account, and no rate limit (the
    /// simulator needs no protection; set one to test throttling).
    pub fn provider_builder(&self) -> SphereBuilder {
        SphereBuilder::new(
            self.api.environment.clone(),
            self.api.api_key.clone(),
            self.api.client_code.clone(),
            self.api.location_id,
        )
        .with_base_url(self.base_url())
        .with_rate_limit(None)
    }

    /// Moves order `order_number` to raw status `status`, as SphereWMS would report it (a
    /// shipped status adds its shipment); see [`Lifecycle`] for how later ticks continue.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when no order has that number.
    pub fn advance(&self, order_number: &str, status: &str) -> Result<()> {
        let mut state = lock(&self.api.state);
        let id = *state
            .by_number
            .get(order_number)
            .ok_or_else(|| not_found(order_number))?;
        if let Some(order) = state.orders.get_mut(&id) {
            order.position = order.lifecycle.position_of(status, order.position);
        }
        state.enter(id, status);
        Ok(())
    }

    /// Moves every order one step along its lifecycle; returns how many moved. Orders at
    /// their last step, voided, or moved off their lifecycle by `advance` stay.
    pub fn tick(&self) -> usize {
        let mut state = lock(&self.api.state);
        let mut ids: Vec<u64> = state.orders.keys().copied().collect();
        ids.sort_unstable();
        let mut moved = 0;
        for id in ids {
            let next = state.orders.get(&id).and_then(|order| {
                let next = order.position? + 1;
                let step = order.lifecycle.steps().get(next)?;
                Some((next, step.status.clone()))
            });
            if let Some((position, status)) = next {
                if let Some(order) = state.orders.get_mut(&id) {
                    order.position = Some(position);
                }
                state.enter(id, &status);
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
        let id = *state
            .by_number
            .get(order_number)
            .ok_or_else(|| not_found(order_number))?;
        if let Some(order) = state.orders.get_mut(&id) {
            order.position = lifecycle.position_of(&order.status, None);
            order.lifecycle = Arc::new(lifecycle);
        }
        Ok(())
    }

    /// The `order_id` of order `order_number`.
    pub fn order_id(&self, order_number: &str) -> Option<u64> {
        lock(&self.api.state).by_number.get(order_number).copied()
    }

    /// Order `order_number` as the simulator holds it.
    pub fn order(&self, order_number: &str) -> Option<SimOrder> {
        let state = lock(&self.api.state);
        let id = state.by_number.get(order_number)?;
        state.orders.get(id).map(SphereOrder::snapshot)
    }

    /// Every order, by order id.
    pub fn orders(&self) -> Vec<SimOrder> {
        let state = lock(&self.api.state);
        let mut orders: Vec<&SphereOrder> = state.orders.values().collect();
        orders.sort_by_key(|o| o.id);
        orders.into_iter().map(SphereOrder::snapshot).collect()
    }

    /// Adds or replaces (same account and product) a row of the inventory.
    pub fn set_inventory(&self, row: SphereInventoryRow) {
        let mut state = lock(&self.api.state);
        let existing = state
            .inventory
            .iter_mut()
            .find(|r| r.location_id == row.location_id && r.product_code == row.product_code);
        match existing {
            Some(existing) => *existing = row,
            None => state.inventory.push(row),
        }
    }

    /// Adds or replaces (same code) a customer of the directory.
    pub fn add_customer(&self, customer: SphereCustomer) {
        let mut state = lock(&self.api.state);
        state.upsert_customer(customer);
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
        what: format!("simulated sphere order {order_number}"),
    }
}

#[derive(Debug)]
struct SphereOrder {
    id: u64,
    number: String,
    body: Map<String, Value>,
    status: String,
    history: Vec<String>,
    created: NaiveDateTime,
    updated: NaiveDateTime,
    lifecycle: Arc<Lifecycle>,
    position: Option<usize>,
}

/// A compact SphereWMS date-time, `YYYYMMDDhhmmss` (§2).
fn compact(at: NaiveDateTime) -> String {
    at.format("%Y%m%d%H%M%S").to_string()
}

impl SphereOrder {
    fn has_shipped(&self) -> bool {
        SHIPPED.contains(&normalize_status_key(&self.status).as_str())
    }

    /// The order as the API returns it: the stored body plus id, status, stamps and shipped
    /// quantities.
    fn row(&self) -> Value {
        let mut row = self.body.clone();
        row.insert("order_id".into(), json!(self.id));
        row.insert("status".into(), json!(self.status));
        row.insert("created_on".into(), json!(compact(self.created)));
        row.insert("updated_on".into(), json!(compact(self.updated)));
        let shipped = self.has_shipped();
        if let Some(Value::Array(lines)) = row.get_mut("lines") {
            for line in lines.iter_mut().filter_map(Value::as_object_mut) {
                let quantity = line.get("quantity").cloned().unwrap_or(json!(0));
                line.insert(
                    "quantity_shipped".into(),
                    if shipped { quantity } else { json!(0) },
                );
            }
        }
        Value::Object(row)
    }

    fn snapshot(&self) -> SimOrder {
        SimOrder {
            order_number: self.number.clone(),
            reference: self.id.to_string(),
            status: self.status.clone(),
            trouble: None,
            history: self.history.clone(),
            body: Value::Object(self.body.clone()),
        }
    }
}

/// A shipment of a shipped order (§7.3).
#[derive(Debug)]
struct SphereShipment {
    id: u64,
    order_id: u64,
    order_number: String,
    location_id: Value,
    ship_date: NaiveDate,
    ship_via: String,
    tracking_number: String,
    units: u64,
}

impl SphereShipment {
    /// `UPS-GND` → (`UPS`, `Ground`): the carrier and service of a ship-via code.
    fn carrier_and_service(&self) -> (String, String) {
        let (carrier, service) = self
            .ship_via
            .split_once('-')
            .unwrap_or((self.ship_via.as_str(), ""));
        let carrier = match carrier.to_ascii_uppercase().as_str() {
            "FDX" | "FEDEX" => "FedEx".to_owned(),
            other => other.to_owned(),
        };
        let service = match service.to_ascii_uppercase().as_str() {
            "GND" => "Ground".to_owned(),
            "2D" => "2nd Day Air".to_owned(),
            "1D" | "NDA" => "Next Day Air".to_owned(),
            _ => service.to_owned(),
        };
        (carrier, service)
    }

    fn row(&self, client_code: &str) -> Value {
        let (carrier, service) = self.carrier_and_service();
        // 0.8 lb per unit, one decimal: weights are not money, a float is fine.
        let weight = (self.units.max(1) as f64 * 8.0).round() / 10.0;
        json!({
            "shipment_id": self.id,
            "order_id": self.order_id,
            "order_number": self.order_number,
            "client_code": client_code,
            "location_id": self.location_id,
            "ship_date": self.ship_date.format("%Y%m%d").to_string(),
            "ship_via": self.ship_via,
            "carrier": carrier,
            "service": service,
            "tracking_numbers": [self.tracking_number],
            "packages": [{
                "tracking_number": self.tracking_number,
                "weight": weight,
                "weight_unit": "LB",
            }],
        })
    }
}

#[derive(Debug)]
struct SphereState {
    orders: HashMap<u64, SphereOrder>,
    /// Order number → order id.
    by_number: HashMap<String, u64>,
    next_order_id: u64,
    shipments: Vec<SphereShipment>,
    next_shipment_id: u64,
    inventory: Vec<SphereInventoryRow>,
    customers: Vec<SphereCustomer>,
    picker: LifecyclePicker,
    clock: Clock,
}

impl SphereState {
    /// Sets order `id` to `status` now; a shipped status adds the order's shipment.
    fn enter(&mut self, id: u64, status: &str) {
        let at = self.clock.now();
        let Some(order) = self.orders.get_mut(&id) else {
            return;
        };
        order.status = status.to_owned();
        order.history.push(status.to_owned());
        order.updated = at;
        if !order.has_shipped() || self.shipments.iter().any(|s| s.order_id == id) {
            return;
        }
        let shipment_id = self.next_shipment_id;
        self.next_shipment_id += 1;
        let ship_via = order
            .body
            .get("ship_via")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .unwrap_or("UPS-GND")
            .to_owned();
        let tracking_number = if ship_via.to_ascii_uppercase().starts_with("UPS") {
            format!("1Z999AA1{shipment_id:010}")
        } else {
            format!("SIM{shipment_id:012}")
        };
        let units = order
            .body
            .get("lines")
            .and_then(Value::as_array)
            .map(|lines| {
                lines
                    .iter()
                    .filter_map(|l| l.get("quantity").and_then(Value::as_u64))
                    .sum()
            })
            .unwrap_or(0);
        self.shipments.push(SphereShipment {
            id: shipment_id,
            order_id: id,
            order_number: order.number.clone(),
            location_id: order
                .body
                .get("location_id")
                .cloned()
                .unwrap_or(Value::Null),
            ship_date: at.date(),
            ship_via,
            tracking_number,
            units,
        });
    }

    fn upsert_customer(&mut self, customer: SphereCustomer) {
        match self
            .customers
            .iter_mut()
            .find(|c| c.customer_code == customer.customer_code)
        {
            Some(existing) => *existing = customer,
            None => self.customers.push(customer),
        }
    }

    /// The inventory accounts: the configured one and every account of the inventory.
    fn accounts(&self, primary: u32) -> Vec<u32> {
        let mut ids = vec![primary];
        for row in &self.inventory {
            if !ids.contains(&row.location_id) {
                ids.push(row.location_id);
            }
        }
        ids
    }
}

struct SphereApi {
    core: Core,
    environment: String,
    api_key: Secret,
    client_code: String,
    location_id: u32,
    product_check: bool,
    state: Mutex<SphereState>,
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
        if let Some(client) = request.query("client_code") {
            if client.trim() != self.client_code {
                self.core.stats().unauthorized += 1;
                return Some(SimResponse::error(
                    403,
                    format!("API key is not enabled for client_code {client}"),
                ));
            }
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
        let lifecycle = state.picker.pick();
        let at = state.clock.now();
        let first = lifecycle.steps()[0].status.clone();
        state.orders.insert(
            id,
            SphereOrder {
                id,
                number: checked.number.clone(),
                body,
                status: first.clone(),
                history: Vec::new(),
                created: at,
                updated: at,
                lifecycle,
                position: Some(0),
            },
        );
        state.by_number.insert(checked.number, id);
        state.enter(id, &first);
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
        if let Some(order) = state.orders.get_mut(&id) {
            order.position = None;
        }
        state.enter(id, "void");
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
    fn ship_via_codes_name_carrier_and_service() {
        let shipment = |ship_via: &str| SphereShipment {
            id: 1,
            order_id: 1,
            order_number: "SO-1".into(),
            location_id: json!(100),
            ship_date: NaiveDate::from_ymd_opt(2024, 5, 3).unwrap_or_default(),
            ship_via: ship_via.into(),
            tracking_number: "1Z".into(),
            units: 3,
        };
        assert_eq!(
            shipment("UPS-GND").carrier_and_service(),
            ("UPS".into(), "Ground".into())
        );
        assert_eq!(
            shipment("FDX-2D").carrier_and_service(),
            ("FedEx".into(), "2nd Day Air".into())
        );
        assert_eq!(
            shipment("DHL").carrier_and_service(),
            ("DHL".into(), String::new())
        );
        let row = shipment("UPS-GND").row("100");
        assert_eq!(row["ship_date"], "20240503");
        assert_eq!(row["packages"][0]["weight"], 2.4);
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
