//! [`SphereSimulator`]: a stateful fake of the SphereWMS API v2 ([`protocol`](crate::provider::sphere::protocol))
//! over HTTP. The endpoints and the rules they follow are documented on [`SphereSimulator`].
//!
//! This file holds the handle a test or host drives the simulator with (start, inspect,
//! `tick` / `advance`, faults and counters) and the module's public names. The rest lives in
//! the same file set as the Wapi simulator's folder: `builder.rs` (the builder and its
//! defaults), `fixtures.rs` (credentials, inventory rows, customers and the data a simulator
//! starts with), `state.rs` (the orders, their shipments and indexes, and their JSON rows) and
//! `handlers.rs` (routing, credential checks, the endpoints and request validation). How
//! orders move along their lifecycle is shared with Wapi in `simulator/lifecycle.rs`.

mod builder;
mod fixtures;
mod handlers;
mod state;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

pub use self::builder::SphereSimulatorBuilder;
pub use self::fixtures::{
    DEFAULT_API_KEY, DEFAULT_CLIENT_CODE, DEFAULT_ENVIRONMENT, DEFAULT_LOCATION_ID,
    SphereCredentials, SphereCustomer, SphereInventoryRow,
};
use self::handlers::SphereApi;
use self::state::SphereOrder;
use super::faults::Faults;
use super::lifecycle::{Lifecycle, OrderBook, Step};
use super::server::{Server, lock};
use super::{SimOrder, SimStats};
use crate::error::{Error, Result};
use crate::provider::sphere::SphereBuilder;

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
        if state.advance(&id, &Step::new(status)) {
            Ok(())
        } else {
            Err(not_found(order_number))
        }
    }

    /// Moves every order one step along its lifecycle; returns how many moved. Orders at
    /// their last step, voided, or moved off their lifecycle by `advance` stay.
    pub fn tick(&self) -> usize {
        lock(&self.api.state).tick()
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
            order.progress.follow(lifecycle, &order.status);
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
