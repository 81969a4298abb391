//! What the ShipBob simulator holds: orders and their shipments, the shipment state machine of
//! protocol doc §10.2, the carrier's view of each labelled shipment, the inventory, and the
//! JSON views the endpoints and webhooks send (the shapes of §4.3, §5.1, §5.4, §6).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDateTime;
use serde_json::{Value, json};

use crate::model::normalize_status_key;
use crate::simulator::{Lifecycle, Step};

/// One known state of the machine: its name, the shipment `status`, and the detail.
struct Known {
    name: &'static str,
    status: &'static str,
    detail: Option<(i64, &'static str, &'static str)>,
}

const fn state(
    name: &'static str,
    status: &'static str,
    detail: Option<(i64, &'static str, &'static str)>,
) -> Known {
    Known {
        name,
        status,
        detail,
    }
}

/// The states of §10.2 (detail ids, names and descriptions of §5.2).
const STATES: &[Known] = &[
    state("None", "None", None),
    state("ImportReview", "ImportReview", None),
    state("Processing", "Processing", None),
    state(
        "Processing/Picked",
        "Processing",
        Some((100, "Picked", "Picking Completed")),
    ),
    state(
        "Processing/Packed",
        "Processing",
        Some((101, "Packed", "Packing Completed")),
    ),
    state(
        "Processing/Labeled",
        "Processing",
        Some((102, "Labeled", "Label Generated")),
    ),
    state("LabeledCreated", "LabeledCreated", None),
    state(
        "Completed/Processing",
        "Completed",
        Some((200, "Processing", "Waiting for carrier pickup")),
    ),
    state(
        "Completed/InTransit",
        "Completed",
        Some((201, "InTransit", "Shipment In Transit")),
    ),
    state(
        "Completed/OutForDelivery",
        "Completed",
        Some((202, "OutForDelivery", "Out for Delivery")),
    ),
    state(
        "Completed/Delivered",
        "Completed",
        Some((203, "Delivered", "Delivered")),
    ),
    state(
        "Completed/DeliveryException",
        "Completed",
        Some((204, "DeliveryException", "Delivery Exception")),
    ),
    state(
        "Exception/OutOfStock",
        "Exception",
        Some((303, "OutOfStock", "Out of stock")),
    ),
    state(
        "Exception/UnknownSku",
        "Exception",
        Some((304, "UnknownSku", "Unknown SKU")),
    ),
    state(
        "OnHold/InvalidAddress",
        "OnHold",
        Some((401, "InvalidAddress", "Invalid address")),
    ),
    state(
        "OnHold/PaymentDeclined",
        "OnHold",
        Some((400, "PaymentDeclined", "Payment declined")),
    ),
    state("Cancelled", "Cancelled", None),
];

/// The wire `status` and status detail of a state name (case and spacing as the caller
/// likes: compared normalized). A name the machine does not know is its own status (a
/// `Status/Detail` name gets that detail without an id), so tests can make ShipBob report any
/// text.
pub(crate) fn wire_state(name: &str) -> (String, Option<(Option<i64>, String, String)>) {
    let key = normalize_status_key(name);
    if let Some(known) = STATES.iter().find(|s| normalize_status_key(s.name) == key) {
        return (
            known.status.to_owned(),
            known
                .detail
                .map(|(id, n, d)| (Some(id), n.to_owned(), d.to_owned())),
        );
    }
    match name.split_once('/') {
        Some((status, detail)) => (
            status.to_owned(),
            Some((None, detail.to_owned(), detail.to_owned())),
        ),
        None => (name.to_owned(), None),
    }
}

/// Whether a shipment in state `name` may still be cancelled or changed (§11.2).
pub(crate) fn editable(name: &str) -> bool {
    let (status, detail) = wire_state(name);
    match normalize_status_key(&status).as_str() {
        "none" | "importreview" | "exception" | "onhold" => true,
        "processing" => detail.is_none(),
        _ => false,
    }
}

/// Whether the shipment has left ShipBob or has a label: it has tracking.
pub(crate) fn has_label(name: &str) -> bool {
    matches!(
        normalize_status_key(&wire_state(name).0).as_str(),
        "labeledcreated" | "completed"
    )
}

/// The carrier's status, substatus and message in state `name`, when the carrier has the
/// parcel (`None` before the label).
pub(crate) fn carrier_state(name: &str) -> Option<(&'static str, &'static str, &'static str)> {
    Some(match normalize_status_key(name).as_str() {
        "labeledcreated" => ("PreTransit", "Label created", "Shipping label created"),
        "completed/processing" => ("PreTransit", "Awaiting pickup", "Awaiting carrier pickup"),
        "completed/intransit" => ("InTransit", "DepartedFacility", "Departed carrier facility"),
        "completed/outfordelivery" => {
            ("InTransit", "OutForDelivery", "Package is out for delivery")
        }
        "completed/delivered" => ("Delivered", "", "Delivered, front door"),
        "completed/deliveryexception" => (
            "Delivery attempt Failed",
            "Failed Attempt",
            "No one available to receive the package",
        ),
        _ => return None,
    })
}

/// The webhook topics a shipment entering state `name` fires (§7.1, §11.1):
/// `order.shipped` at the label, carrier progress as `order.shipment.tracking.updated`,
/// delivery, exceptions and holds; a delivery exception fires nothing (a documented gap, §5.2).
pub(crate) fn topics_of(name: &str, carrier_override: bool) -> &'static [&'static str] {
    let key = normalize_status_key(name);
    let (status, _) = wire_state(name);
    match key.as_str() {
        "labeledcreated" => &["order.shipped"],
        "completed/delivered" => &["order.shipment.delivered"],
        "completed/deliveryexception" => &[],
        "completed/processing" | "completed/intransit" | "completed/outfordelivery" => {
            &["order.shipment.tracking.updated"]
        }
        _ if carrier_override => &["order.shipment.tracking.updated"],
        _ => match normalize_status_key(&status).as_str() {
            "exception" => &["order.shipment.exception"],
            "onhold" => &["order.shipment.on_hold"],
            "cancelled" => &["order.shipment.cancelled"],
            _ => &[],
        },
    }
}

/// One event of the carrier's history.
#[derive(Debug, Clone)]
pub(crate) struct CarrierEvent {
    pub(crate) status: String,
    pub(crate) substatus: String,
    pub(crate) message: String,
    pub(crate) at: NaiveDateTime,
}

/// One product line of a shipment.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub(crate) sku: String,
    pub(crate) name: String,
    pub(crate) inventory_id: i64,
    pub(crate) quantity: i64,
}

/// A shipment: where it is in its lifecycle and everything its views show.
#[derive(Debug, Clone)]
pub(crate) struct SimShipment {
    pub(crate) id: i64,
    pub(crate) lifecycle: Arc<Lifecycle>,
    /// Index of the current step; `None` once moved off the lifecycle.
    pub(crate) position: Option<usize>,
    /// Ticks to wait before moving (the second parcel of a split order lags).
    pub(crate) lag: u32,
    /// The state name (`Completed/InTransit`, or any text set by a test).
    pub(crate) state: String,
    pub(crate) carrier_override: Option<String>,
    pub(crate) carrier_message: Option<String>,
    pub(crate) lines: Vec<Line>,
    pub(crate) location: (i64, String),
    pub(crate) recipient: Value,
    pub(crate) tracking_number: Option<String>,
    pub(crate) carrier: String,
    pub(crate) created: NaiveDateTime,
    pub(crate) last_update: NaiveDateTime,
    pub(crate) last_tracking_update: Option<NaiveDateTime>,
    pub(crate) delivered: Option<NaiveDateTime>,
    pub(crate) carrier_history: Vec<CarrierEvent>,
    pub(crate) is_tracking_uploaded: bool,
    /// Every state entered, oldest first.
    pub(crate) history: Vec<String>,
    /// The return order of this shipment (`GET /return`), once the carrier sends it back or
    /// a lifecycle step opens one.
    pub(crate) return_order: Option<SimReturn>,
}

/// A return order whose `original_shipment_id` is a shipment (protocol doc §4.7, §11.1).
#[derive(Debug, Clone)]
pub(crate) struct SimReturn {
    /// The return's id (the shipment's, offset: one return per shipment here).
    pub(crate) id: i64,
    /// `RTS` (the carrier brings it back) or `Regular` (the customer sends it back).
    pub(crate) return_type: String,
    /// `AwaitingArrival`, `Arrived`, `Processing`, `Completed` or `Cancelled`.
    pub(crate) status: String,
    pub(crate) created: NaiveDateTime,
    pub(crate) updated: NaiveDateTime,
}

/// The offset of a shipment's return id from the shipment id.
const RETURN_ID_OFFSET: i64 = 5_000_000;

/// A lifecycle step that moves the shipment's return, not the shipment: `Return/<status>`
/// (of the open return, an `RTS` one when none is open) or `Return/<type>/<status>`.
fn return_step(status: &str) -> Option<(Option<&str>, &str)> {
    let rest = status.strip_prefix("Return/")?;
    Some(match rest.split_once('/') {
        Some((kind, status)) => (Some(kind), status),
        None => (None, rest),
    })
}

impl SimShipment {
    /// Moves to `step` at `at`: status, details, label and carrier history. Returns the
    /// webhook topics the move fires.
    pub(crate) fn enter(&mut self, step: &Step, at: NaiveDateTime) -> &'static [&'static str] {
        if let Some((kind, status)) = return_step(&step.status) {
            self.history.push(step.status.clone());
            self.open_return(kind, status, at);
            // Return orders fire `return.*` topics, which the simulator does not send.
            return &[];
        }
        self.state = step.status.clone();
        self.carrier_override = step.trouble.clone();
        self.carrier_message = step.comment.clone();
        self.last_update = at;
        self.history.push(step.status.clone());
        if has_label(&self.state) && self.tracking_number.is_none() {
            self.tracking_number = Some(format!("9400{:018}", self.id));
        }
        if normalize_status_key(&self.state) == "completed/delivered" {
            self.delivered.get_or_insert(at);
        }
        if let Some((status, substatus, message)) = self.carrier_now() {
            let changed = self
                .carrier_history
                .last()
                .is_none_or(|e| e.status != status || e.substatus != substatus);
            if changed {
                self.carrier_history.push(CarrierEvent {
                    status,
                    substatus,
                    message,
                    at,
                });
                self.last_tracking_update = Some(at);
            }
        }
        if self
            .carrier_override
            .as_deref()
            .is_some_and(|c| normalize_status_key(c) == "returntosender")
            && self.return_order.is_none()
        {
            self.open_return(Some("RTS"), "AwaitingArrival", at);
        }
        topics_of(&self.state, self.carrier_override.is_some())
    }

    /// Opens a return of `kind` (default: the open one's, else `RTS`) in `status`, or moves
    /// the open one there.
    fn open_return(&mut self, kind: Option<&str>, status: &str, at: NaiveDateTime) {
        let id = self.id + RETURN_ID_OFFSET;
        let ret = self.return_order.get_or_insert_with(|| SimReturn {
            id,
            return_type: kind.unwrap_or("RTS").to_owned(),
            status: String::new(),
            created: at,
            updated: at,
        });
        if let Some(kind) = kind {
            kind.clone_into(&mut ret.return_type);
        }
        status.clone_into(&mut ret.status);
        ret.updated = at;
    }

    /// The return's view (`GET /return`), if the shipment has one.
    pub(crate) fn return_view(&self) -> Option<Value> {
        let ret = self.return_order.as_ref()?;
        let done = matches!(ret.status.as_str(), "Completed" | "Cancelled");
        Some(json!({
            "id": ret.id,
            "status": ret.status,
            "return_type": ret.return_type,
            "original_shipment_id": self.id,
            "reference_id": format!("RMA-{}", ret.id),
            "fulfillment_center": {"id": self.location.0, "name": self.location.1},
            "insert_date": stamp(ret.created),
            "last_update_at": stamp(ret.updated),
            "completed_date": if done { Value::String(stamp(ret.updated)) } else { Value::Null },
            "tracking_number": self.tracking_number,
        }))
    }

    /// The carrier's current status, substatus and message.
    fn carrier_now(&self) -> Option<(String, String, String)> {
        if !has_label(&self.state) {
            return None;
        }
        let base = carrier_state(&self.state);
        match (&self.carrier_override, base) {
            (Some(status), _) => Some((
                status.clone(),
                String::new(),
                self.carrier_message.clone().unwrap_or_default(),
            )),
            (None, Some((status, sub, message))) => Some((
                status.to_owned(),
                sub.to_owned(),
                self.carrier_message
                    .clone()
                    .unwrap_or_else(|| message.to_owned()),
            )),
            (None, None) => None,
        }
    }

    /// Whether the shipment is cancelled.
    pub(crate) fn is_cancelled(&self) -> bool {
        normalize_status_key(&self.state) == "cancelled"
    }

    /// The shipment's view (`Orders.ShipmentViewModel`, §5.1).
    pub(crate) fn view(&self, order_id: i64, reference: &str) -> Value {
        let (status, detail) = wire_state(&self.state);
        let details: Vec<Value> = detail
            .map(|(id, name, description)| {
                json!({
                    "id": id, "name": name, "description": description,
                    "inventory_id": null, "exception_fulfillment_center_id": null,
                    "extra_information": null
                })
            })
            .into_iter()
            .collect();
        let tracking = self.tracking_number.as_ref().map(|number| {
            json!({
                "carrier": self.carrier,
                "carrier_service": "Priority",
                "tracking_number": number,
                "tracking_url": format!("https://tools.usps.com/go/TrackConfirmAction?tLabels={number}"),
                "shipping_date": self.carrier_history.first().map(|e| stamp(e.at)),
                "bol": null, "pro_number": null, "scac": null
            })
        });
        let products: Vec<Value> = self
            .lines
            .iter()
            .map(|l| {
                json!({
                    "id": l.inventory_id + 31_000_000,
                    "reference_id": l.sku, "sku": l.sku, "name": l.name,
                    "inventory_items": [{
                        "id": l.inventory_id, "name": l.name, "quantity": l.quantity,
                        "quantity_committed": l.quantity, "lot": null, "expiration_date": null,
                        "serial_numbers": [], "is_dangerous_goods": false
                    }]
                })
            })
            .collect();
        json!({
            "id": self.id,
            "order_id": order_id,
            "reference_id": reference,
            "status": status,
            "status_details": details,
            "created_date": stamp(self.created),
            "last_update_at": stamp(self.last_update),
            "last_tracking_update_at": self.last_tracking_update.map(stamp),
            "location": {"id": self.location.0, "name": self.location.1},
            "tracking": tracking,
            "is_tracking_uploaded": self.is_tracking_uploaded,
            "delivery_date": self.delivered.map(stamp),
            "actual_fulfillment_date": self.carrier_history.first().map(|e| stamp(e.at)),
            "ship_option": "Standard",
            "products": products,
            "recipient": self.recipient,
            "measurements": {"depth_in": 0, "length_in": 0, "width_in": 0, "total_weight_oz": 0},
            "package_material_type": "Unknown",
            "require_signature": false,
            "gift_message": null,
            "parent_cartons": []
        })
    }

    /// The carrier's view (`Tracking.ShipmentTrackingResponse`, §5.4), once labelled.
    pub(crate) fn carrier_view(&self) -> Option<Value> {
        let number = self.tracking_number.as_ref()?;
        let current = self.carrier_history.last()?;
        let history: Vec<Value> = self
            .carrier_history
            .iter()
            .rev()
            .map(|e| {
                json!({
                    "status": e.status, "substatus": nullable(&e.substatus),
                    "message": e.message, "carrier_message": e.message,
                    "location": "Chicago, IL", "timestamp": stamp(e.at)
                })
            })
            .collect();
        Some(json!({
            "shipment_id": self.id,
            "tracking_id": number,
            "carrier_tracking_number": number,
            "carrier": self.carrier,
            "service": "Priority",
            "status": current.status,
            "substatus": nullable(&current.substatus),
            "message": current.message,
            "carrier_message": current.message,
            "location": "Chicago, IL",
            "eta": null,
            "last_updated": stamp(current.at),
            "public_tracking_url": format!("https://tools.usps.com/go/TrackConfirmAction?tLabels={number}"),
            "history": history
        }))
    }
}

fn nullable(text: &str) -> Value {
    if text.is_empty() {
        Value::Null
    } else {
        Value::String(text.to_owned())
    }
}

/// An order: the create body as received and its shipments.
#[derive(Debug, Clone)]
pub(crate) struct SimShipBobOrder {
    pub(crate) id: i64,
    pub(crate) reference_id: String,
    pub(crate) channel_id: i64,
    pub(crate) body: Value,
    pub(crate) recipient: Value,
    pub(crate) created: NaiveDateTime,
    pub(crate) shipments: Vec<SimShipment>,
    /// Shipments cancelled through the API (a second cancel of one would be counted twice).
    pub(crate) cancels: u32,
}

impl SimShipBobOrder {
    /// The order status, derived from its shipments (§4.7).
    pub(crate) fn status(&self) -> &'static str {
        let states: Vec<String> = self
            .shipments
            .iter()
            .map(|s| normalize_status_key(&wire_state(&s.state).0))
            .collect();
        if states.is_empty() {
            return "ImportReview";
        }
        if states.iter().all(|s| s == "cancelled") {
            return "Cancelled";
        }
        let open: Vec<&String> = states.iter().filter(|s| *s != "cancelled").collect();
        if open.iter().any(|s| *s == "exception") {
            "Exception"
        } else if open.iter().all(|s| *s == "completed") {
            "Fulfilled"
        } else if open.iter().any(|s| *s == "completed") {
            "PartiallyFulfilled"
        } else if open.iter().all(|s| *s == "none" || *s == "importreview") {
            "ImportReview"
        } else {
            "Processing"
        }
    }

    /// The latest change of any shipment.
    pub(crate) fn last_update(&self) -> NaiveDateTime {
        self.shipments
            .iter()
            .map(|s| s.last_update)
            .max()
            .unwrap_or(self.created)
    }

    /// The latest carrier change of any shipment, if any has tracking.
    pub(crate) fn last_tracking_update(&self) -> Option<NaiveDateTime> {
        self.shipments
            .iter()
            .filter_map(|s| s.last_tracking_update)
            .max()
    }

    /// The order's view (`Orders.OrderViewModel`, §4.3).
    pub(crate) fn view(&self) -> Value {
        let mut quantities: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
        for line in self.shipments.iter().flat_map(|s| s.lines.iter()) {
            let entry = quantities
                .entry(line.sku.as_str())
                .or_insert((line.inventory_id, 0));
            entry.1 += line.quantity;
        }
        let products: Vec<Value> = quantities
            .iter()
            .map(|(sku, (inventory, quantity))| {
                json!({
                    "id": inventory + 31_000_000, "reference_id": sku, "sku": sku,
                    "quantity": quantity, "unit_price": null, "external_line_id": null,
                    "gtin": null, "upc": null, "quantity_unit_of_measure_code": null
                })
            })
            .collect();
        let field = |name: &str| self.body.get(name).cloned().unwrap_or(Value::Null);
        json!({
            "id": self.id,
            "created_date": stamp(self.created),
            "purchase_date": field("purchase_date"),
            "reference_id": self.reference_id,
            "order_number": field("order_number"),
            "status": self.status(),
            "type": field("type"),
            "channel": {"id": self.channel_id, "name": "PAT Channel"},
            "shipping_method": field("shipping_method"),
            "recipient": self.recipient,
            "products": products,
            "shipments": self
                .shipments
                .iter()
                .map(|s| s.view(self.id, &self.reference_id))
                .collect::<Vec<_>>(),
            "tags": field("tags"),
            "financials": field("financials"),
            "gift_message": field("gift_message"),
            "retailer_program_data": null,
            "shipping_terms": null
        })
    }
}

/// A ShipBob timestamp as the simulator writes it: 7 fraction digits and an offset, like the
/// API's own examples (§3.1).
pub(crate) fn stamp(at: NaiveDateTime) -> String {
    use chrono::Timelike;
    format!(
        "{}.{:07}+00:00",
        at.format("%Y-%m-%dT%H:%M:%S"),
        at.nanosecond() % 1_000_000_000 / 100
    )
}

/// One inventory item at one fulfillment center.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShipBobInventoryRow {
    /// ShipBob's inventory id.
    pub inventory_id: i64,
    /// The sku (the product's reference id).
    pub sku: String,
    /// The product name.
    pub name: String,
    /// The fulfillment center.
    pub location_id: i64,
    /// Its name, e.g. `Moreno Valley (CA)`.
    pub location_name: String,
    /// Units physically there.
    pub on_hand: i64,
    /// Units reserved for orders (grows as orders are created).
    pub committed: i64,
    /// Units expected from receiving.
    pub awaiting: i64,
}

impl ShipBobInventoryRow {
    /// `on_hand` units of `sku` (inventory item `inventory_id`) at the default center,
    /// Moreno Valley (CA) (id 228), nothing committed or awaited.
    pub fn new(inventory_id: i64, sku: impl Into<String>, on_hand: i64) -> Self {
        let sku = sku.into();
        Self {
            inventory_id,
            name: sku.clone(),
            sku,
            location_id: super::DEFAULT_LOCATION_ID,
            location_name: super::DEFAULT_LOCATION_NAME.into(),
            on_hand,
            committed: 0,
            awaiting: 0,
        }
    }

    /// The product name (default: the sku).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// At fulfillment center `id` named `name`.
    pub fn at_location(mut self, id: i64, name: impl Into<String>) -> Self {
        self.location_id = id;
        self.location_name = name.into();
        self
    }

    /// `awaiting` units expected from receiving.
    pub fn with_awaiting(mut self, awaiting: i64) -> Self {
        self.awaiting = awaiting;
        self
    }

    pub(crate) fn fulfillable(&self) -> i64 {
        self.on_hand - self.committed
    }
}

/// The default inventory: the protocol's fixture products at two centers, and the testkit's
/// `Demo Product-1`.
pub(crate) fn default_inventory() -> Vec<ShipBobInventoryRow> {
    vec![
        ShipBobInventoryRow::new(20104984, "LIGHT-ROAST", 1000).with_name("Light Roast Coffee"),
        ShipBobInventoryRow::new(20104984, "LIGHT-ROAST", 688)
            .with_name("Light Roast Coffee")
            .at_location(211, "Fairburn (GA)"),
        ShipBobInventoryRow::new(20104985, "LIGHT-ROAST-5LB", 40)
            .with_name("Light Roast Coffee 5 lb")
            .with_awaiting(100),
        ShipBobInventoryRow::new(20104986, "Demo Product-1", 500).with_name("Demo Product 1"),
        ShipBobInventoryRow::new(20104986, "Demo Product-1", 250)
            .with_name("Demo Product 1")
            .at_location(211, "Fairburn (GA)"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_names_map_to_the_wire() {
        assert_eq!(
            wire_state("Completed/OutForDelivery"),
            (
                "Completed".into(),
                Some((
                    Some(202),
                    "OutForDelivery".into(),
                    "Out for Delivery".into()
                ))
            )
        );
        assert_eq!(wire_state("completed/out for delivery").0, "Completed");
        assert_eq!(
            wire_state("Parcel abducted"),
            ("Parcel abducted".into(), None)
        );
        assert_eq!(
            wire_state("OnHold/Manual").1,
            Some((None, "Manual".into(), "Manual".into()))
        );
        assert!(editable("None") && editable("OnHold/InvalidAddress") && editable("Processing"));
        assert!(!editable("Processing/Picked") && !editable("LabeledCreated"));
        assert!(!editable("Cancelled") && !editable("Completed/Delivered"));
    }
}
