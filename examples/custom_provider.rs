//! Writing a provider: an adapter for an imaginary 3PL, "Parcel Pigeon", against the
//! `FulfillmentProvider` trait, registered as an instance beside `MockProvider`.
//!
//! The pigeon service keeps its orders in memory here; a real adapter would make HTTP calls
//! through `fulfillkit::http::HttpClient` instead. `tests/custom_provider.rs` runs the
//! conformance suite against it. Run with `cargo run --example custom_provider`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::Utc;
use fulfillkit::model::{
    Order, OrderId, Shipment, ShipmentRef, StatusCode, StatusTable, TrackingUpdate, Waybill,
};
use fulfillkit::orchestrator::{Condition, ExportOutcome, Instance, Orchestrator, RoutingRule};
use fulfillkit::provider::mock::MockProvider;
use fulfillkit::provider::{CancelOutcome, Capabilities, FulfillmentProvider, UpdateOutcome};
use fulfillkit::{Error, Result};

/// What the pigeon service keeps per order: its reference and its raw status word.
#[derive(Debug)]
struct Nest {
    reference: ShipmentRef,
    raw_status: String,
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
    /// The service's back office changing an order's status (used by demos and tests).
    pub fn set_status(&self, order_id: &OrderId, raw: &str) -> Result<()> {
        let mut nests = self.nests.lock().unwrap_or_else(|e| e.into_inner());
        let nest = nests.get_mut(order_id).ok_or_else(|| Error::NotFound {
            what: format!("pigeon order {order_id}"),
        })?;
        nest.raw_status = raw.to_owned();
        Ok(())
    }

    /// `TooLate` once the pigeon is in the coop or later.
    fn locked(&self, raw: &str) -> bool {
        self.table
            .lookup(raw)
            .is_some_and(|m| m.code >= StatusCode::Packed)
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

    async fn create_order(&self, order: &Order, _waybill: &Waybill) -> Result<Shipment> {
        order.validate()?;
        let mut nests = self.nests.lock().unwrap_or_else(|e| e.into_inner());
        // Idempotent on the order id: a second create returns the first shipment.
        let nest = nests.entry(order.id.clone()).or_insert_with(|| Nest {
            reference: ShipmentRef::new(order.id.clone(), format!("PIGEON-{}", order.id)),
            raw_status: "hatched".into(),
        });
        Ok(Shipment {
            reference: nest.reference.clone(),
            tracking_number: Some(nest.reference.provider_ref.clone()),
            status: Some(self.table.status(&nest.raw_status, Utc::now())),
        })
    }

    async fn update_order(
        &self,
        shipment: &ShipmentRef,
        order: &Order,
        _waybill: &Waybill,
    ) -> Result<UpdateOutcome> {
        order.validate()?;
        let nests = self.nests.lock().unwrap_or_else(|e| e.into_inner());
        let nest = nests
            .get(&shipment.order_id)
            .ok_or_else(|| Error::NotFound {
                what: format!("pigeon order {}", shipment.order_id),
            })?;
        Ok(if self.locked(&nest.raw_status) {
            UpdateOutcome::TooLate {
                state: nest.raw_status.clone(),
            }
        } else {
            UpdateOutcome::Applied
        })
    }

    async fn cancel_order(&self, shipment: &ShipmentRef) -> Result<CancelOutcome> {
        let mut nests = self.nests.lock().unwrap_or_else(|e| e.into_inner());
        let nest = nests
            .get_mut(&shipment.order_id)
            .ok_or_else(|| Error::NotFound {
                what: format!("pigeon order {}", shipment.order_id),
            })?;
        if self.locked(&nest.raw_status) && nest.raw_status != "released" {
            return Ok(CancelOutcome::TooLate {
                state: nest.raw_status.clone(),
            });
        }
        nest.raw_status = "released".into();
        Ok(CancelOutcome::Cancelled {
            state: Some("cancelled".into()),
        })
    }

    async fn track(&self, shipments: &[ShipmentRef]) -> Result<Vec<TrackingUpdate>> {
        let nests = self.nests.lock().unwrap_or_else(|e| e.into_inner());
        let now = Utc::now();
        Ok(shipments
            .iter()
            .map(|s| match nests.get(&s.order_id) {
                Some(nest) => TrackingUpdate::Statuses {
                    shipment: s.clone(),
                    // Unknown words become StatusCode::Unknown, original text kept.
                    statuses: vec![self.table.status(&nest.raw_status, now)],
                },
                None => TrackingUpdate::NotFound {
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
        let status = &update[0].statuses()[0];
        println!("status: {:?} (\"{}\")", status.code, status.original);
    }
    Ok(())
}
