//! What a running [`SphereSimulator`](super::SphereSimulator) keeps: its orders
//! (`SphereOrder`, with lifecycle progress), the shipments made when they ship
//! (`SphereShipment`), the indexes, inventory and customers over them (`SphereState`), and the
//! JSON rows the API returns for an order or a shipment.
//!
//! Requests and their validation are in `handlers.rs`; the data a simulator starts with is in
//! `fixtures.rs`.

use std::collections::HashMap;

use chrono::{NaiveDate, NaiveDateTime};
use serde_json::{Map, Value, json};

use super::fixtures::{SphereCustomer, SphereInventoryRow};
use crate::model::normalize_status_key;
use crate::simulator::SimOrder;
use crate::simulator::lifecycle::{LifecyclePicker, OrderBook, Progress, Step};
use crate::simulator::server::Clock;

/// The first `order_id` handed out (the protocol fixture's).
const FIRST_ORDER_ID: u64 = 88_213;
/// The first `shipment_id` handed out.
const FIRST_SHIPMENT_ID: u64 = 5_120;

/// Statuses (normalized) of an order that has shipped: it has a shipment.
const SHIPPED: &[&str] = &[
    "shipped",
    "closed",
    "complete",
    "delivered",
    "returned",
    "rmareceived",
];

/// An order as the simulator keeps it, keyed by its `order_id`.
#[derive(Debug)]
pub(super) struct SphereOrder {
    pub(super) id: u64,
    pub(super) number: String,
    pub(super) body: Map<String, Value>,
    pub(super) status: String,
    history: Vec<String>,
    created: NaiveDateTime,
    pub(super) updated: NaiveDateTime,
    pub(super) progress: Progress,
}

/// A compact SphereWMS date-time, `YYYYMMDDhhmmss` (§2).
fn compact(at: NaiveDateTime) -> String {
    at.format("%Y%m%d%H%M%S").to_string()
}

impl SphereOrder {
    /// Order `id` numbered `number` with `body`, created at `at`, at the start of `progress`
    /// but without a status yet: [`OrderBook::enter`] its first step.
    pub(super) fn new(
        id: u64,
        number: String,
        body: Map<String, Value>,
        progress: Progress,
        at: NaiveDateTime,
    ) -> Self {
        Self {
            id,
            number,
            body,
            status: String::new(),
            history: Vec::new(),
            created: at,
            updated: at,
            progress,
        }
    }

    pub(super) fn has_shipped(&self) -> bool {
        SHIPPED.contains(&normalize_status_key(&self.status).as_str())
    }

    /// The order as the API returns it: the stored body plus id, status, stamps and shipped
    /// quantities.
    pub(super) fn row(&self) -> Value {
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

    pub(super) fn snapshot(&self) -> SimOrder {
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
pub(super) struct SphereShipment {
    id: u64,
    pub(super) order_id: u64,
    pub(super) order_number: String,
    location_id: Value,
    pub(super) ship_date: NaiveDate,
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

    pub(super) fn row(&self, client_code: &str) -> Value {
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

/// Everything the simulator keeps between requests.
#[derive(Debug)]
pub(super) struct SphereState {
    pub(super) orders: HashMap<u64, SphereOrder>,
    /// Order number → order id.
    pub(super) by_number: HashMap<String, u64>,
    pub(super) next_order_id: u64,
    pub(super) shipments: Vec<SphereShipment>,
    next_shipment_id: u64,
    pub(super) inventory: Vec<SphereInventoryRow>,
    pub(super) customers: Vec<SphereCustomer>,
    pub(super) picker: LifecyclePicker,
    pub(super) clock: Clock,
}

impl SphereState {
    /// No orders or shipments yet, `inventory` and `customers` as given; new orders follow a
    /// lifecycle of `picker`.
    pub(super) fn new(
        inventory: Vec<SphereInventoryRow>,
        customers: Vec<SphereCustomer>,
        picker: LifecyclePicker,
    ) -> Self {
        Self {
            orders: HashMap::new(),
            by_number: HashMap::new(),
            next_order_id: FIRST_ORDER_ID,
            shipments: Vec::new(),
            next_shipment_id: FIRST_SHIPMENT_ID,
            inventory,
            customers,
            picker,
            clock: Clock::default(),
        }
    }

    pub(super) fn upsert_customer(&mut self, customer: SphereCustomer) {
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
    pub(super) fn accounts(&self, primary: u32) -> Vec<u32> {
        let mut ids = vec![primary];
        for row in &self.inventory {
            if !ids.contains(&row.location_id) {
                ids.push(row.location_id);
            }
        }
        ids
    }
}

/// Orders are ticked by `order_id`.
impl OrderBook for SphereState {
    type Key = u64;

    fn keys(&self) -> Vec<u64> {
        self.orders.keys().copied().collect()
    }

    fn progress_mut(&mut self, id: &u64) -> Option<&mut Progress> {
        self.orders.get_mut(id).map(|order| &mut order.progress)
    }

    /// Sphere keeps the raw status only; a shipped status adds the order's shipment, once.
    fn enter(&mut self, id: &u64, step: &Step) {
        let (id, status) = (*id, step.status.as_str());
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
