//! Writing a provider: an adapter for an imaginary 3PL, "Parcel Pigeon", against the
//! `FulfillmentProvider` trait, registered as an instance beside `MockProvider`. Copy it as
//! the model for your own adapter.
//!
//! The pigeon service keeps its orders in memory here; a real adapter would make HTTP calls
//! through `fulfillkit::http::HttpClient` instead. What it shows, each a contract the
//! conformance suite (`fulfillkit::testkit::run_all`) checks:
//!
//! - create is idempotent on the order id, and makes one order at the provider;
//! - an update *keeps* the edit (`Applied`), or says `NoChange` when nothing changed;
//! - "too late" is decided by the furthest stage the order reached, so a status word the
//!   table does not know (a carrier's odd text) never re-opens editing;
//! - a cancel is `Cancelled`, then `AlreadyCancelled`, or `TooLate` once locked;
//! - `track` answers every shipment it knows and reports the others as `NotFound`: one unknown
//!   shipment never fails the call.
//!
//! `tests/custom_provider.rs` runs the conformance suite against it. Run with
//! `cargo run --example custom_provider`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use fulfillkit::async_trait;
use fulfillkit::model::{
    DeliveryStatus, Order, OrderId, Shipment, ShipmentRef, StatusCode, StatusTable, TrackingUpdate,
    Waybill,
};
use fulfillkit::orchestrator::{Condition, ExportOutcome, Instance, Orchestrator, RoutingRule};
use fulfillkit::provider::mock::MockProvider;
use fulfillkit::provider::{CancelOutcome, Capabilities, FulfillmentProvider, UpdateOutcome};
use fulfillkit::{Error, Result};

/// The first stage at which the pigeon service refuses edits and cancels.
const LOCK_STAGE: StatusCode = StatusCode::Packed;

/// What the pigeon service keeps per order.
#[derive(Debug)]
struct Nest {
    reference: ShipmentRef,
    order: Order,
    waybill: Waybill,
    /// Every status reported, oldest first (the raw word kept in each).
    history: Vec<DeliveryStatus>,
}

impl Nest {
    /// The furthest stage the order reached, ignoring words the table does not know.
    fn furthest(&self) -> Option<&DeliveryStatus> {
        self.history
            .iter()
            .filter(|s| s.code != StatusCode::Unknown)
            .max_by_key(|s| s.code)
    }

    /// The service's words for the state that makes a change too late, if it is.
    fn too_late(&self) -> Option<String> {
        self.furthest()
            .filter(|s| s.code >= LOCK_STAGE)
            .map(|s| s.original.to_string())
    }

    fn is_cancelled(&self) -> bool {
        self.history
            .last()
            .is_some_and(|s| s.code == StatusCode::Cancelled)
    }
}

/// The adapter. Raw statuses are the service's own words, mapped through a table.
#[derive(Debug)]
pub struct ParcelPigeon {
    nests: Mutex<HashMap<OrderId, Nest>>,
    table: StatusTable,
}

impl Default for ParcelPigeon {
    fn default() -> Self {
        Self {
            nests: Mutex::default(),
            table: StatusTable::new()
                .with("hatched", StatusCode::Registered)
                .with("in the coop", StatusCode::Packed)
                .with("flying", StatusCode::InTransit)
                .with("landed", StatusCode::Delivered)
                .with("released", StatusCode::Cancelled),
        }
    }
}

impl ParcelPigeon {
    /// The service's back office reporting a new status word for an order (used by demos
    /// and tests).
    pub fn set_status(&self, order_id: &OrderId, raw: &str) -> Result<()> {
        let mut nests = self.nests();
        let nest = nests.get_mut(order_id).ok_or_else(|| not_found(order_id))?;
        nest.history.push(self.table.status(raw, Utc::now()));
        Ok(())
    }

    /// How many orders the service holds (its back office's count; the conformance driver
    /// uses it to check that a create makes exactly one).
    pub fn orders_held(&self) -> usize {
        self.nests().len()
    }

    fn nests(&self) -> std::sync::MutexGuard<'_, HashMap<OrderId, Nest>> {
        self.nests.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn not_found(order_id: &OrderId) -> Error {
    Error::NotFound {
        what: format!("pigeon order {order_id}"),
    }
}

#[async_trait]
impl FulfillmentProvider for ParcelPigeon {
    fn kind(&self) -> &str {
        "parcel-pigeon"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new(10, 10)
            .with_update(true)
            .with_cancel(true)
    }

    async fn create_order(&self, order: &Order, waybill: &Waybill) -> Result<Shipment> {
        order.validate()?;
        let mut nests = self.nests();
        // Idempotent on the order id: a second create returns the first shipment and makes
        // no second order.
        let nest = nests.entry(order.id.clone()).or_insert_with(|| Nest {
            reference: ShipmentRef::new(order.id.clone(), format!("PIGEON-{}", order.id)),
            order: order.clone(),
            waybill: waybill.clone(),
            history: vec![self.table.status("hatched", Utc::now())],
        });
        Ok(Shipment {
            reference: nest.reference.clone(),
            tracking_number: Some(nest.reference.provider_ref.clone()),
            status: nest.history.first().cloned(),
        })
    }

    async fn update_order(
        &self,
        shipment: &ShipmentRef,
        order: &Order,
        waybill: &Waybill,
    ) -> Result<UpdateOutcome> {
        order.validate()?;
        let mut nests = self.nests();
        let nest = nests
            .get_mut(&shipment.order_id)
            .ok_or_else(|| not_found(&shipment.order_id))?;
        if let Some(state) = nest.too_late() {
            return Ok(UpdateOutcome::TooLate { state });
        }
        if nest.order == *order && nest.waybill == *waybill {
            return Ok(UpdateOutcome::NoChange);
        }
        // `Applied` means the provider keeps the edit: store it.
        nest.order = order.clone();
        nest.waybill = waybill.clone();
        Ok(UpdateOutcome::Applied)
    }

    async fn cancel_order(&self, shipment: &ShipmentRef) -> Result<CancelOutcome> {
        let mut nests = self.nests();
        let nest = nests
            .get_mut(&shipment.order_id)
            .ok_or_else(|| not_found(&shipment.order_id))?;
        if nest.is_cancelled() {
            return Ok(CancelOutcome::AlreadyCancelled {
                state: Some("released".into()),
            });
        }
        if let Some(state) = nest.too_late() {
            return Ok(CancelOutcome::TooLate { state });
        }
        nest.history.push(self.table.status("released", Utc::now()));
        Ok(CancelOutcome::Cancelled {
            state: Some("released".into()),
        })
    }

    async fn track(&self, shipments: &[ShipmentRef]) -> Result<Vec<TrackingUpdate>> {
        let nests = self.nests();
        let now = Utc::now();
        Ok(shipments
            .iter()
            .map(|s| match nests.get(&s.order_id) {
                Some(nest) if nest.reference == *s => TrackingUpdate::Statuses {
                    shipment: s.clone(),
                    // Unknown words are StatusCode::Unknown with the original text kept.
                    statuses: nest.history.clone(),
                },
                // Never an error for the whole call: the other shipments are still tracked.
                _ => TrackingUpdate::NotFound {
                    shipment: s.clone(),
                    at: now,
                },
            })
            .collect())
    }
}

#[allow(
    dead_code,
    reason = "tests/custom_provider.rs includes this file as a module"
)]
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let pigeon = Arc::new(ParcelPigeon::default());
    let orchestrator = Orchestrator::builder()
        .instance(Instance::new(
            "pigeons",
            "Parcel Pigeon (PL)",
            pigeon.clone(),
        ))
        .instance(Instance::new(
            "mock",
            "Everything else",
            Arc::new(MockProvider::new()),
        ))
        .rule(RoutingRule::new(
            "poland by pigeon",
            Condition::country(["PL"]),
            "pigeons",
        ))
        .rule(RoutingRule::new("rest", Condition::Always, "mock"))
        .build()?;

    let mut order = fulfillkit::testkit::sample_order("SO-7");
    order.address.country = "PL".into();
    order.customer.phone = "+48501234567".into();
    if let ExportOutcome::Exported { instance, shipment } =
        orchestrator.on_order_confirmed(&order).await?
    {
        println!(
            "{} -> {instance} as {}",
            order.id, shipment.reference.provider_ref
        );
        pigeon.set_status(&order.id, "flying")?;
        let update = pigeon.track(&[shipment.reference]).await?;
        // The history, oldest first: the last entry is the current status.
        if let Some(status) = update.first().and_then(|u| u.statuses().last()) {
            println!("status: {:?} (\"{}\")", status.code, status.original);
        }
    }
    Ok(())
}
