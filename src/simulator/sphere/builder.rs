//! [`SphereSimulatorBuilder`]: the settings of a [`SphereSimulator`] and their defaults,
//! checked and turned into a running server by [`start`](SphereSimulatorBuilder::start).
//!
//! The default data itself (inventory, customers, account) is in `fixtures.rs`; what the
//! running simulator keeps is in `state.rs`.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use super::SphereSimulator;
use super::fixtures::{
    DEFAULT_API_KEY, DEFAULT_CLIENT_CODE, DEFAULT_ENVIRONMENT, DEFAULT_LOCATION_ID, SphereCustomer,
    SphereInventoryRow, default_customers, default_inventory,
};
use super::handlers::SphereApi;
use super::state::SphereState;
use crate::error::{Error, FieldError, Result};
use crate::http::Secret;
use crate::simulator::faults::Faults;
use crate::simulator::lifecycle::{Lifecycle, LifecyclePicker};
use crate::simulator::server::{Core, Server};

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
            state: Mutex::new(SphereState::new(
                inventory,
                self.customers,
                LifecyclePicker::new(self.lifecycles, self.seed)?,
            )),
        });
        let server = Server::start("sphere", self.addr, api.clone()).await?;
        Ok(SphereSimulator { server, api })
    }
}
