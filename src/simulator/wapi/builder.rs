//! [`WapiSimulatorBuilder`]: the settings of a [`WapiSimulator`] and their defaults, checked
//! and turned into a running server by [`start`](WapiSimulatorBuilder::start).
//!
//! The default data itself (stock table, pickup points, credentials) is in `fixtures.rs`; what
//! the running simulator keeps is in `state.rs`.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use super::WapiSimulator;
use super::fixtures::{
    DEFAULT_CLIENT_ID, DEFAULT_SECRET, WapiPickupPoint, WapiStockRow, default_pickup_points,
    default_stock,
};
use super::handlers::WapiApi;
use super::state::WapiState;
use crate::error::{Error, Result};
use crate::http::Secret;
use crate::simulator::faults::Faults;
use crate::simulator::lifecycle::{Lifecycle, LifecyclePicker};
use crate::simulator::server::{Core, Server};

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
            tracking_by_order_number: self.tracking_by_order_number,
            state: Mutex::new(WapiState::new(
                self.stock,
                self.pickup_points,
                LifecyclePicker::new(self.lifecycles, self.seed)?,
                self.pickup_lifecycle,
                self.courier,
            )),
        });
        let server = Server::start("wapi", self.addr, api.clone()).await?;
        Ok(WapiSimulator { server, api })
    }
}
