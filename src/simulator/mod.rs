//! Stateful HTTP simulators of the Wapi and Sphere APIs (feature `simulator`), for wire-level
//! tests, the quickstart, fault tests, benchmarks and host teams' staging environments.
//!
//! [`WapiSimulator`] and [`SphereSimulator`] are real HTTP/1.1 servers on `127.0.0.1` (hyper,
//! spawned on the current tokio runtime). They speak the protocols of
//! [`provider::wapi::protocol`](crate::provider::wapi::protocol) and [`provider::sphere::protocol`](crate::provider::sphere::protocol) with the documented shapes and
//! check credentials as the real APIs would: Wapi's `x-client-id` and the HMAC-SHA1 signature
//! over the exact bytes received, Sphere's API key as bearer token, `key` header or `key`
//! query parameter. They keep orders keyed by order number and refuse a second create of the
//! same number as the protocol documents say, move orders along a configurable
//! [`Lifecycle`] with [`tick`](WapiSimulator::tick) or explicitly with
//! [`advance`](WapiSimulator::advance), refuse updates and cancels once past the editable
//! stage with the documented bodies, and serve stock tables, Wapi's opt-in pickup-point
//! directory and Sphere's customer directory.
//!
//! [`Faults`] injects latency, 5xx, 429 with `Retry-After`, connections closed before the
//! response and responses lost *after* the change was applied, each at a configured rate and
//! deterministic under a seed. [`SimStats`] counts requests per endpoint, create requests per
//! order number (a duplicate is visible), credential failures and injected faults.
//!
//! What does not live here: the adapters that talk to these servers
//! ([`provider::wapi`](crate::provider::wapi), [`provider::sphere`](crate::provider::sphere))
//! and the in-process [`MockProvider`](crate::provider::mock::MockProvider), which tests the
//! orchestrator without any HTTP.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> fulfillkit::Result<()> {
//! use fulfillkit::model::{StatusCode, Waybill};
//! use fulfillkit::provider::FulfillmentProvider;
//! use fulfillkit::simulator::WapiSimulator;
//!
//! let wapi = WapiSimulator::start().await?;
//! let provider = wapi.provider_builder().build()?;
//! let order = fulfillkit::testkit::sample_order("SO-1001");
//! let shipment = provider.create_order(&order, &Waybill::new()).await?;
//!
//! // Pending → AssignedToPartner → Dispatched → InTransit → Delivered.
//! for _ in 0..4 {
//!     wapi.tick();
//! }
//! let updates = provider.track(&[shipment.reference.clone()]).await?;
//! let latest = updates[0].statuses().last().expect("a status");
//! assert_eq!(latest.code, StatusCode::Delivered);
//! assert_eq!(wapi.stats().requests_to("POST /outbounds"), 1);
//! wapi.shutdown().await;
//! # Ok(()) }
//! ```

mod faults;
mod lifecycle;
mod server;
mod shipbob;
mod sphere;
mod wapi;

use std::collections::BTreeMap;

pub use faults::{FaultCounts, Faults};
pub use lifecycle::{Lifecycle, Step};
pub use shipbob::{
    DEFAULT_CHANNEL_ID as SHIPBOB_DEFAULT_CHANNEL_ID,
    DEFAULT_LOCATION_ID as SHIPBOB_DEFAULT_LOCATION_ID,
    DEFAULT_LOCATION_NAME as SHIPBOB_DEFAULT_LOCATION_NAME,
    DEFAULT_RATE_LIMIT_PER_MINUTE as SHIPBOB_RATE_LIMIT_PER_MINUTE,
    DEFAULT_TOKEN as SHIPBOB_DEFAULT_TOKEN, ShipBobCredentials, ShipBobInventoryRow,
    ShipBobSimOrder, ShipBobSimShipment, ShipBobSimulator, ShipBobSimulatorBuilder, WebhookAttempt,
};
pub use sphere::{
    DEFAULT_API_KEY, DEFAULT_CLIENT_CODE, DEFAULT_ENVIRONMENT, DEFAULT_LOCATION_ID,
    SphereCredentials, SphereCustomer, SphereInventoryRow, SphereSimulator, SphereSimulatorBuilder,
};
pub use wapi::{
    DEFAULT_CLIENT_ID, DEFAULT_SECRET, WapiCredentials, WapiPickupPoint, WapiSimulator,
    WapiSimulatorBuilder, WapiStockRow,
};

/// What a simulator has seen since it started (or since its last `reset_stats`).
///
/// Endpoints are labelled by method and path below the base URL, with ids replaced by
/// placeholders: Wapi `POST /outbounds`, `POST /outbounds/UpdateOrder`,
/// `POST /tracking/getDetailedOrderStatus`, …; Sphere `POST /orders`, `GET /orders`,
/// `GET /orders/{id}`, `DELETE /orders/{id}`, `GET /shipments`, …; a route the simulator does
/// not know is `{METHOD} <unknown>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SimStats {
    /// Requests received per endpoint label, faulted ones included.
    pub requests: BTreeMap<String, u64>,
    /// Create requests per order number that passed authentication and validation, whether
    /// they created the order or were refused as duplicates: a value above 1 means a client
    /// sent the same order twice.
    pub creates: BTreeMap<String, u64>,
    /// Creates refused because the order number already existed.
    pub duplicates_refused: u64,
    /// Wapi requests refused for a missing or wrong `x-signature` (HTTP 400).
    pub bad_signatures: u64,
    /// Requests refused for missing or wrong credentials (HTTP 401) or credentials not
    /// enabled for the environment or client (HTTP 403).
    pub unauthorized: u64,
    /// Requests refused as malformed or invalid (HTTP 400, 413 or 422; signatures excluded).
    pub bad_requests: u64,
    /// Requests refused by the simulated account rate limit (ShipBob's sliding window; not
    /// the injected 429s, which are in `faults`).
    pub rate_limited: u64,
    /// Faults injected, by kind.
    pub faults: FaultCounts,
    /// Most shipments asked for in one tracking request: Wapi's `trackingNumbers` per call;
    /// 1 for Sphere once any order was read by id (it has no batch endpoint).
    pub largest_track_batch: usize,
}

impl SimStats {
    /// Requests received for `endpoint` (a label such as `POST /outbounds`).
    pub fn requests_to(&self, endpoint: &str) -> u64 {
        self.requests.get(endpoint).copied().unwrap_or(0)
    }

    /// Requests received in total.
    pub fn total_requests(&self) -> u64 {
        self.requests.values().sum()
    }

    /// Create requests seen for `order_number` (see [`SimStats::creates`]).
    pub fn creates_of(&self, order_number: &str) -> u64 {
        self.creates.get(order_number).copied().unwrap_or(0)
    }

    /// Order numbers that were sent in more than one create request, in order.
    pub fn duplicated_order_numbers(&self) -> Vec<String> {
        self.creates
            .iter()
            .filter(|(_, count)| **count > 1)
            .map(|(number, _)| number.clone())
            .collect()
    }
}

/// An order as a simulator holds it, for assertions in tests.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SimOrder {
    /// The client's order number (Wapi `orderNumber`, Sphere `order_number`).
    pub order_number: String,
    /// The provider's reference: Wapi's WH number, Sphere's `order_id` as text.
    pub reference: String,
    /// The current raw status.
    pub status: String,
    /// The trouble status of the current status (Wapi only).
    pub trouble: Option<String>,
    /// Every raw status the order went through, oldest first, the current one last.
    pub history: Vec<String>,
    /// The last create or update body the simulator accepted, as received.
    pub body: serde_json::Value,
}
