//! [`WapiSimulator`]: a stateful fake of Wapi's "Warehouse API" ([`protocol`](crate::provider::wapi::protocol))
//! over HTTP. The endpoints and the rules they follow are documented on [`WapiSimulator`].
//!
//! This file holds the handle a test or host drives the simulator with (start, inspect,
//! `tick` / `advance`, faults and counters) and the module's public names. The rest lives in
//! the same file set as the Sphere simulator's folder: `builder.rs` (the builder and its
//! defaults), `fixtures.rs` (credentials, stock rows, pickup points and the data a simulator
//! starts with), `state.rs` (the orders, their indexes and their JSON views) and `handlers.rs`
//! (routing, credential checks, the endpoints and request validation). How orders move along
//! their lifecycle is shared with Sphere in `simulator/lifecycle.rs`.

mod builder;
mod fixtures;
mod handlers;
mod state;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::Value;

pub use self::builder::WapiSimulatorBuilder;
pub use self::fixtures::{
    DEFAULT_CLIENT_ID, DEFAULT_SECRET, WapiCredentials, WapiPickupPoint, WapiStockRow,
};
use self::handlers::WapiApi;
use self::state::WapiOrder;
use super::faults::Faults;
use super::lifecycle::{Lifecycle, OrderBook, Step};
use super::server::{Server, lock};
use super::{SimOrder, SimStats};
use crate::error::{Error, Result};
use crate::provider::wapi::WapiBuilder;

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
        if state.advance(&order_number.to_owned(), &step) {
            Ok(())
        } else {
            Err(not_found(order_number))
        }
    }

    /// Moves every order one step along its lifecycle; returns how many moved. Orders at
    /// their last step, cancelled, or moved off their lifecycle by `advance` stay.
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
        let order = state
            .orders
            .get_mut(order_number)
            .ok_or_else(|| not_found(order_number))?;
        order.progress.follow(lifecycle, &order.status);
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
