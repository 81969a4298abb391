//! ShipBob's JSON shapes (protocol doc §4–§7): the create body built from an [`Order`], the
//! order / shipment / carrier-tracking / inventory views read back, the mutation bodies, the
//! error bodies of every service family, and ShipBob's timestamps.
//!
//! Replies are read leniently: every field is optional or defaulted, enums are kept as text
//! (an unknown value must never fail a reply, §3.1 \[assumed]), ids are `i64`, and dates are
//! kept as text until they are used, so that one unreadable date fails only its shipment.
//! Status texts are mapped in `status.rs`; HTTP lives in `client.rs`.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{Error, FieldError, Result};
use crate::model::{
    FieldKind, Order, Payment, Waybill, WaybillField, WaybillForm, normalize_phone,
};

/// Waybill key: the shipping method sent as `shipping_method` (matched by ShipBob against the
/// merchant's Ship Option Mapping; an unknown text becomes Standard).
pub(crate) const SHIPPING_METHOD: &str = "shipping_method";
/// Waybill key: `gift_message`.
pub(crate) const GIFT_MESSAGE: &str = "gift_message";
/// Longest `gift_message` (protocol doc §4.1).
const GIFT_MESSAGE_MAX: usize = 500;
/// Longest `shipping_method` we send \[assumed]: ShipBob gives only a minimum of 1.
const SHIPPING_METHOD_MAX: usize = 100;
/// Longest `reference_id` (§4.1).
const REFERENCE_MAX: usize = 300;
/// Tag limits (§4.1): name 1–50, value 1–500 characters.
const TAG_NAME_MAX: usize = 50;
const TAG_VALUE_MAX: usize = 500;

/// The waybill fields of a ShipBob order.
pub(crate) fn waybill_form() -> Result<WaybillForm> {
    WaybillForm::new(vec![
        WaybillField::new(
            SHIPPING_METHOD,
            "Shipping method",
            FieldKind::Text {
                max_len: Some(SHIPPING_METHOD_MAX),
            },
        )
        .with_help("as named in ShipBob's Ship Option Mapping; the instance's default when empty"),
        WaybillField::new(
            GIFT_MESSAGE,
            "Gift message",
            FieldKind::Text {
                max_len: Some(GIFT_MESSAGE_MAX),
            },
        ),
    ])
}

// ---------------------------------------------------------------------------------------------
// Amounts
// ---------------------------------------------------------------------------------------------

pub(crate) use crate::provider::amount::Amount;

// ---------------------------------------------------------------------------------------------
// Create (§4.1)
// ---------------------------------------------------------------------------------------------

/// What an instance adds to every create.
#[derive(Debug, Clone)]
pub(crate) struct OrderDefaults {
    /// `shipping_method` when the waybill names none.
    pub(crate) shipping_method: String,
    /// `location_id`: the fulfillment center the instance is pinned to.
    pub(crate) location_id: Option<i64>,
}

/// `POST /order` body, fields in the order of the protocol's fixture.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct CreateOrder {
    pub(crate) reference_id: String,
    pub(crate) order_number: String,
    #[serde(rename = "type")]
    pub(crate) order_type: &'static str,
    pub(crate) shipping_method: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) purchase_date: Option<String>,
    pub(crate) recipient: Recipient,
    pub(crate) products: Vec<ProductLine>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) location_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) gift_message: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) tags: Vec<Tag>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) financials: Option<Financials>,
}

/// `recipient` of a create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Recipient {
    pub(crate) name: String,
    pub(crate) address: RecipientAddress,
    pub(crate) email: Option<String>,
    pub(crate) phone_number: Option<String>,
}

/// `recipient.address` of a create; absent optional parts are sent as `null`, as in the
/// protocol's fixture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct RecipientAddress {
    pub(crate) address1: String,
    pub(crate) address2: Option<String>,
    pub(crate) company_name: Option<String>,
    pub(crate) city: String,
    pub(crate) state: Option<String>,
    pub(crate) country: String,
    pub(crate) zip_code: Option<String>,
}

/// One `products[]` line, "by reference id" (variant A, §4.1), always with `name` so that a
/// new SKU is created instead of failing the order \[assumed].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ProductLine {
    pub(crate) reference_id: String,
    pub(crate) name: String,
    pub(crate) quantity: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) unit_price: Option<Amount>,
    pub(crate) external_line_id: u32,
}

/// One of `tags[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Tag {
    pub(crate) name: String,
    pub(crate) value: String,
}

/// `financials`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Financials {
    pub(crate) total_price: Amount,
}

/// Whether `text` fits `max` characters.
fn fits(text: &str, max: usize) -> bool {
    !text.is_empty() && text.chars().count() <= max
}

/// The recipient of `order` as ShipBob reads it: the first street line as `address1`, the
/// others joined as `address2`, the region as `state`, the phone in E.164.
pub(crate) fn recipient(order: &Order) -> Recipient {
    let mut lines = order
        .address
        .lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty());
    let address1 = lines.next().unwrap_or_default().to_owned();
    let rest: Vec<&str> = lines.collect();
    let non_empty = |text: &str| Some(text.trim().to_owned()).filter(|t| !t.is_empty());
    Recipient {
        name: order.customer.name.trim().to_owned(),
        address: RecipientAddress {
            address1,
            address2: non_empty(&rest.join(", ")),
            company_name: None,
            city: order.address.city.trim().to_owned(),
            state: order.address.region.as_deref().and_then(non_empty),
            country: order.address.country.trim().to_ascii_uppercase(),
            zip_code: non_empty(&order.address.postcode),
        },
        email: order.customer.email.as_deref().and_then(non_empty),
        phone_number: non_empty(&normalize_phone(&order.customer.phone)),
    }
}

/// The create body of `order` (under its provider-facing id) with `waybill` over the
/// instance's `defaults`.
///
/// Prices go out only for orders in US dollars: ShipBob documents `financials.total_price` as
/// USD and no currency field \[assumed, §4.1]. Custom fields that fit ShipBob's limits become
/// `tags`.
///
/// # Errors
///
/// [`Error::Validation`] for what ShipBob cannot carry: cash on delivery (ShipBob collects
/// none), a pickup point (ShipBob delivers to the door only, §9), a reference over 300
/// characters.
pub(crate) fn create_body(
    order: &Order,
    waybill: &Waybill,
    defaults: &OrderDefaults,
) -> Result<CreateOrder> {
    let mut problems = Vec::new();
    if matches!(order.payment, Payment::CashOnDelivery { .. }) {
        problems.push(FieldError::new(
            "payment",
            "shipbob does not collect cash on delivery",
        ));
    }
    if order.address.pickup_point_id.is_some() {
        problems.push(FieldError::new(
            "address.pickup_point_id",
            "shipbob delivers to the door only (no pickup points)",
        ));
    }
    if !fits(order.id.as_str(), REFERENCE_MAX) {
        problems.push(FieldError::new(
            "id",
            format!("shipbob reference ids are 1 to {REFERENCE_MAX} characters"),
        ));
    }
    if !problems.is_empty() {
        return Err(Error::validation(
            format!("order {} for shipbob", order.id),
            problems,
        ));
    }
    let usd = order.currency.eq_ignore_ascii_case("USD");
    let text = |key: &str| waybill.text(key).map(str::trim).filter(|t| !t.is_empty());
    let products = order
        .lines
        .iter()
        .zip(1u32..)
        .map(|(line, n)| ProductLine {
            reference_id: line.sku.as_str().to_owned(),
            name: line.name.trim().to_owned(),
            quantity: line.quantity,
            unit_price: usd.then_some(Amount(line.unit_price)),
            external_line_id: n,
        })
        .collect();
    let tags = order
        .custom_fields
        .iter()
        .filter(|(k, v)| fits(k, TAG_NAME_MAX) && fits(v, TAG_VALUE_MAX))
        .map(|(k, v)| Tag {
            name: k.clone(),
            value: v.clone(),
        })
        .collect();
    Ok(CreateOrder {
        reference_id: order.id.as_str().to_owned(),
        order_number: order.id.as_str().to_owned(),
        order_type: "DTC",
        shipping_method: text(SHIPPING_METHOD)
            .unwrap_or(&defaults.shipping_method)
            .to_owned(),
        purchase_date: order
            .confirmed_at
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        recipient: recipient(order),
        products,
        location_id: defaults.location_id,
        gift_message: text(GIFT_MESSAGE).map(str::to_owned),
        tags,
        financials: usd.then(|| Financials {
            total_price: Amount(order.total()),
        }),
    })
}

// ---------------------------------------------------------------------------------------------
// Views read back (§4.3, §5.1, §5.4)
// ---------------------------------------------------------------------------------------------

/// A list that may arrive as `null`.
fn nullable_vec<'de, D, T>(d: D) -> std::result::Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// `Orders.OrderViewModel` (§4.3), as far as the adapter reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct OrderView {
    pub(crate) id: i64,
    pub(crate) reference_id: Option<String>,
    pub(crate) order_number: Option<String>,
    pub(crate) status: Option<String>,
    pub(crate) created_date: Option<String>,
    pub(crate) recipient: Option<RecipientView>,
    #[serde(deserialize_with = "nullable_vec")]
    pub(crate) products: Vec<OrderProduct>,
    #[serde(deserialize_with = "nullable_vec")]
    pub(crate) shipments: Vec<ShipmentView>,
}

/// `recipient` of an order or shipment view.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct RecipientView {
    pub(crate) name: Option<String>,
    pub(crate) address: Option<AddressView>,
    pub(crate) email: Option<String>,
    pub(crate) phone_number: Option<String>,
}

/// `recipient.address` of a view.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct AddressView {
    pub(crate) address1: Option<String>,
    pub(crate) address2: Option<String>,
    pub(crate) city: Option<String>,
    pub(crate) state: Option<String>,
    pub(crate) country: Option<String>,
    pub(crate) zip_code: Option<String>,
}

/// One of an order view's `products`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct OrderProduct {
    pub(crate) id: Option<i64>,
    pub(crate) reference_id: Option<String>,
    pub(crate) sku: Option<String>,
    pub(crate) quantity: Option<i64>,
}

/// `Orders.ShipmentViewModel` (§5.1), as far as the adapter reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct ShipmentView {
    pub(crate) id: i64,
    pub(crate) order_id: Option<i64>,
    pub(crate) reference_id: Option<String>,
    pub(crate) status: Option<String>,
    #[serde(deserialize_with = "nullable_vec")]
    pub(crate) status_details: Vec<StatusDetail>,
    pub(crate) tracking: Option<TrackingInfo>,
    pub(crate) last_tracking_update_at: Option<String>,
    pub(crate) last_update_at: Option<String>,
    pub(crate) created_date: Option<String>,
    pub(crate) delivery_date: Option<String>,
    pub(crate) recipient: Option<RecipientView>,
    #[serde(deserialize_with = "nullable_vec")]
    pub(crate) products: Vec<ShipmentProduct>,
}

/// One of `status_details` (§5.2).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct StatusDetail {
    pub(crate) id: Option<i64>,
    pub(crate) name: Option<String>,
    pub(crate) description: Option<String>,
}

/// `tracking` of a shipment: null until a label exists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct TrackingInfo {
    pub(crate) carrier: Option<String>,
    pub(crate) carrier_service: Option<String>,
    pub(crate) tracking_number: Option<String>,
    pub(crate) tracking_url: Option<String>,
    pub(crate) shipping_date: Option<String>,
}

/// One of a shipment's `products`, with the inventory items that carry its `inventory_id`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct ShipmentProduct {
    pub(crate) id: Option<i64>,
    pub(crate) reference_id: Option<String>,
    pub(crate) sku: Option<String>,
    #[serde(deserialize_with = "nullable_vec")]
    pub(crate) inventory_items: Vec<InventoryItem>,
}

/// One of a shipment product's `inventory_items`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct InventoryItem {
    pub(crate) id: Option<i64>,
    pub(crate) quantity: Option<i64>,
}

impl ShipmentView {
    /// The carrier's tracking number, when a label exists.
    pub(crate) fn tracking_number(&self) -> Option<&str> {
        self.tracking
            .as_ref()
            .and_then(|t| t.tracking_number.as_deref())
            .map(str::trim)
            .filter(|n| !n.is_empty())
    }

    /// The latest of `last_update_at` and `last_tracking_update_at` that can be read: the
    /// version of this shipment's data.
    pub(crate) fn version(&self) -> Option<DateTime<Utc>> {
        [&self.last_update_at, &self.last_tracking_update_at]
            .into_iter()
            .filter_map(|t| t.as_deref().and_then(parse_time))
            .max()
    }
}

impl OrderView {
    /// The latest version of any of its shipments (see [`ShipmentView::version`]).
    pub(crate) fn version(&self) -> Option<DateTime<Utc>> {
        self.shipments
            .iter()
            .filter_map(ShipmentView::version)
            .max()
    }

    /// Whether this is the order with reference `reference` (exact, case-sensitive: the
    /// `ReferenceIds` filter's semantics are not documented, §4.2 \[assumed]).
    pub(crate) fn has_reference(&self, reference: &str) -> bool {
        self.reference_id.as_deref() == Some(reference)
    }
}

/// `Tracking.ShipmentTrackingResponse` (§5.4).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct ShipmentTracking {
    pub(crate) shipment_id: Option<i64>,
    pub(crate) carrier_tracking_number: Option<String>,
    pub(crate) tracking_id: Option<String>,
    pub(crate) carrier: Option<String>,
    pub(crate) status: Option<String>,
    pub(crate) substatus: Option<String>,
    pub(crate) message: Option<String>,
    pub(crate) carrier_message: Option<String>,
    pub(crate) location: Option<String>,
    pub(crate) last_updated: Option<String>,
    pub(crate) public_tracking_url: Option<String>,
    #[serde(deserialize_with = "nullable_vec")]
    pub(crate) history: Vec<TrackingEvent>,
}

/// One entry of a carrier `history`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct TrackingEvent {
    pub(crate) status: Option<String>,
    pub(crate) substatus: Option<String>,
    pub(crate) message: Option<String>,
    pub(crate) carrier_message: Option<String>,
    pub(crate) location: Option<String>,
    pub(crate) timestamp: Option<String>,
}

/// A return order from `GET /return?OriginalShipmentIds=…` (§12 #33). The enums are
/// documented (§4.7); the field names beyond them are assumed from the other 2026-07 views.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct ReturnView {
    pub(crate) id: Option<i64>,
    /// `AwaitingArrival`, `Arrived`, `Processing`, `Completed`, `Cancelled`.
    pub(crate) status: Option<String>,
    /// `Regular` or `RTS`.
    pub(crate) return_type: Option<String>,
    pub(crate) original_shipment_id: Option<i64>,
    pub(crate) insert_date: Option<String>,
    pub(crate) last_update_at: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Cancel and mutations (§4.5, §4.6)
// ---------------------------------------------------------------------------------------------

/// `Orders.CanceledOrderViewModel`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct CanceledOrder {
    pub(crate) status: Option<String>,
    pub(crate) order: Option<OrderView>,
    #[serde(deserialize_with = "nullable_vec")]
    pub(crate) canceled_shipment_results: Vec<CancelResult>,
}

/// One of `canceled_shipment_results`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct CancelResult {
    pub(crate) shipment_id: Option<i64>,
    pub(crate) is_success: Option<bool>,
    pub(crate) reason: Option<String>,
}

/// `PUT /shipment/{id}:updateAddress` body, fields in the order of the protocol's fixture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct UpdateAddress {
    pub(crate) recipient_name: String,
    pub(crate) street_address1: String,
    pub(crate) street_address2: Option<String>,
    pub(crate) city: String,
    pub(crate) state: Option<String>,
    pub(crate) zip_code: Option<String>,
    pub(crate) country_code: String,
    pub(crate) phone_number: Option<String>,
    pub(crate) email: Option<String>,
    pub(crate) company_name: Option<String>,
    /// Always `false`: only an operator may force an address ShipBob rejects (§4.6
    /// \[assumed]).
    pub(crate) override_verification: bool,
}

impl From<&Recipient> for UpdateAddress {
    fn from(r: &Recipient) -> Self {
        Self {
            recipient_name: r.name.clone(),
            street_address1: r.address.address1.clone(),
            street_address2: r.address.address2.clone(),
            city: r.address.city.clone(),
            state: r.address.state.clone(),
            zip_code: r.address.zip_code.clone(),
            country_code: r.address.country.clone(),
            phone_number: r.phone_number.clone(),
            email: r.email.clone(),
            company_name: r.address.company_name.clone(),
            override_verification: false,
        }
    }
}

/// The 200 answer of a shipment mutation: `is_success` and an error when refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct MutationResult {
    pub(crate) is_success: Option<bool>,
    pub(crate) error: Option<CodeMessage>,
}

/// `{"code", "message"}` of the shipment services.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct CodeMessage {
    pub(crate) code: Option<String>,
    pub(crate) message: Option<String>,
}

/// One line of `GET /shipment/{id}:getLineItems`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct LineItem {
    pub(crate) inventory_id: Option<i64>,
    pub(crate) quantity: Option<i64>,
    pub(crate) product_variant: Option<ProductVariant>,
    pub(crate) lot: Option<Lot>,
}

/// `product_variant` of a line item.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct ProductVariant {
    pub(crate) sku: Option<String>,
}

/// `lot` of a line item (read shape; written flat, §4.6).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct Lot {
    pub(crate) lot_number: Option<String>,
    pub(crate) lot_date: Option<String>,
}

/// `POST /shipment/{id}:updateLineItems` body: the complete list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct UpdateLineItems {
    pub(crate) items: Vec<LineItemWrite>,
}

/// One written line item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct LineItemWrite {
    pub(crate) inventory_id: i64,
    pub(crate) quantity: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) lot_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) lot_date: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Inventory (§6) and webhook subscriptions (§7.2)
// ---------------------------------------------------------------------------------------------

/// The body envelope of the inventory and subscription listings: `items` and the `next` link.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub(crate) struct Page<T> {
    #[serde(default = "Vec::new", deserialize_with = "nullable_vec")]
    pub(crate) items: Vec<T>,
    #[serde(default)]
    pub(crate) next: Option<String>,
}

/// `Inventory.InventoryQuantityResponse` of `GET /inventory-level`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct InventoryLevel {
    pub(crate) inventory_id: Option<i64>,
    pub(crate) sku: Option<String>,
    pub(crate) total_committed_quantity: Option<i64>,
    pub(crate) total_fulfillable_quantity: Option<i64>,
    pub(crate) total_awaiting_quantity: Option<i64>,
}

/// One item of `GET /inventory-level/locations`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct InventoryLocations {
    pub(crate) inventory_id: Option<i64>,
    pub(crate) sku: Option<String>,
    #[serde(deserialize_with = "nullable_vec")]
    pub(crate) locations: Vec<LocationLevel>,
}

/// One fulfillment center of an [`InventoryLocations`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct LocationLevel {
    pub(crate) location_id: Option<i64>,
    pub(crate) name: Option<String>,
    pub(crate) committed_quantity: Option<i64>,
    pub(crate) fulfillable_quantity: Option<i64>,
    pub(crate) awaiting_quantity: Option<i64>,
}

/// `POST /webhook` body (§7.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct CreateSubscription {
    pub(crate) topics: Vec<String>,
    pub(crate) url: String,
    pub(crate) description: String,
    pub(crate) secret: String,
}

/// A subscription as listed (`id` a string since 2025-07, a number in 1.0).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct Subscription {
    pub(crate) id: Option<serde_json::Value>,
    pub(crate) url: Option<String>,
    #[serde(deserialize_with = "nullable_vec")]
    pub(crate) topics: Vec<String>,
}

impl Subscription {
    /// The id as text, whichever JSON type it came as.
    pub(crate) fn id_text(&self) -> Option<String> {
        match self.id.as_ref()? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Errors (§3.3) and time (§3.1)
// ---------------------------------------------------------------------------------------------

/// What an error body says: a message and, for model-state maps, the fields it names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ErrorDetails {
    /// Every message found, joined with `; `.
    pub(crate) message: String,
    /// `{"<field>": ["msg"]}` entries with a non-empty key.
    pub(crate) fields: Vec<FieldError>,
    /// `code` of the shipment services (`CONFLICT`, `VALIDATION_ERROR`, …).
    pub(crate) code: Option<String>,
}

/// Longest message kept from an error body, in characters.
const ERROR_TEXT_MAX: usize = 500;

fn cut(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(ERROR_TEXT_MAX) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// Reads any of ShipBob's error bodies (§3.3): an ASP.NET model-state map (`{"field":
/// ["msg"]}`, the empty key included), `{"code","message"}`, RFC 7807 ProblemDetails, the rate
/// limiter's `{"statusCode","message"}`, a JSON string, or plain text.
pub(crate) fn error_details(body: &[u8]) -> ErrorDetails {
    let mut details = ErrorDetails::default();
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        details.message = cut(&String::from_utf8_lossy(body));
        return details;
    };
    let mut messages: Vec<String> = Vec::new();
    match &value {
        serde_json::Value::String(text) => messages.push(text.clone()),
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                match value {
                    serde_json::Value::Array(items) => {
                        for text in items.iter().filter_map(|v| v.as_str()) {
                            if key.is_empty() || key == "errors" {
                                messages.push(text.to_owned());
                            } else {
                                messages.push(format!("{key}: {text}"));
                                details.fields.push(FieldError::new(key.clone(), cut(text)));
                            }
                        }
                    }
                    serde_json::Value::String(text)
                        if matches!(key.as_str(), "message" | "detail" | "title" | "error") =>
                    {
                        messages.push(text.clone());
                    }
                    serde_json::Value::String(text) if key == "code" => {
                        details.code = Some(text.clone());
                    }
                    serde_json::Value::Object(inner) if key == "error" => {
                        if let Some(text) = inner.get("message").and_then(|m| m.as_str()) {
                            messages.push(text.to_owned());
                        }
                        if let Some(code) = inner.get("code").and_then(|c| c.as_str()) {
                            details.code = Some(code.to_owned());
                        }
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
    // ProblemDetails carries both title and detail; the detail says more.
    if let serde_json::Value::Object(map) = &value
        && let (Some(title), Some(_)) = (
            map.get("title").and_then(|t| t.as_str()),
            map.get("detail").and_then(|d| d.as_str()),
        )
    {
        messages.retain(|m| m != title);
    }
    details.message = cut(&messages.join("; "));
    if details.message.is_empty() && !matches!(value, serde_json::Value::Object(_)) {
        details.message = cut(&String::from_utf8_lossy(body));
    }
    details
}

/// Parses one of ShipBob's timestamps: ISO 8601 with 0 to 9 fraction digits and `Z`, an
/// offset, or no offset at all (then UTC) (§3.1 \[assumed]).
pub(crate) fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if text.is_empty() || text.len() > 40 {
        return None;
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc())
}

/// A timestamp as the adapter writes it in queries: RFC 3339, UTC, milliseconds.
pub(crate) fn query_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Parses a JSON body of type `T` without the HTTP client (webhook bodies).
pub(crate) fn from_body<T: DeserializeOwned>(body: &[u8]) -> std::result::Result<T, String> {
    serde_json::from_slice(body).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::sample_order;
    use chrono::TimeZone;
    use rust_decimal::Decimal;

    fn defaults() -> OrderDefaults {
        OrderDefaults {
            shipping_method: "Standard".into(),
            location_id: None,
        }
    }

    #[test]
    fn amounts_are_exact_json_numbers() {
        let text = |d: Decimal| serde_json::to_string(&Amount(d)).unwrap();
        assert_eq!(text(Decimal::new(125, 1)), "12.5");
        assert_eq!(text(Decimal::new(2500, 2)), "25.0");
        assert_eq!(text(Decimal::new(25, 0)), "25");
        assert_eq!(text(Decimal::new(10005, 3)), "10.01");
        assert_eq!(text(Decimal::new(-3, 0)), "-3");
    }

    #[test]
    fn the_create_body_follows_the_fixture() {
        let mut order = sample_order("SO-1001");
        order.customer.name = "Jane Roe".into();
        order.customer.phone = "+1 312 555 0100".into();
        order.customer.email = Some("jane@example.com".into());
        order.address.country = "us".into();
        order.address.region = Some("IL".into());
        order.address.city = "Chicago".into();
        order.address.postcode = "60607".into();
        order.address.lines = vec!["100 N Racine Ave".into(), "Suite 100".into()];
        order.lines[0].sku = "LIGHT-ROAST".into();
        order.lines[0].name = "Light Roast Coffee".into();
        order.lines[0].unit_price = Decimal::new(1250, 2);
        order.currency = "USD".into();
        order.confirmed_at = Some(Utc.with_ymd_and_hms(2026, 9, 20, 10, 0, 0).unwrap());
        let order = order.with_custom_field("source", "crm");
        let body = create_body(&order, &Waybill::new(), &defaults()).unwrap();
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"reference_id":"SO-1001","order_number":"SO-1001","type":"DTC","shipping_method":"Standard","purchase_date":"2026-09-20T10:00:00Z","recipient":{"name":"Jane Roe","address":{"address1":"100 N Racine Ave","address2":"Suite 100","company_name":null,"city":"Chicago","state":"IL","country":"US","zip_code":"60607"},"email":"jane@example.com","phone_number":"+13125550100"},"products":[{"reference_id":"LIGHT-ROAST","name":"Light Roast Coffee","quantity":2,"unit_price":12.5,"external_line_id":1}],"tags":[{"name":"source","value":"crm"}],"financials":{"total_price":25.0}}"#
        );
    }

    #[test]
    fn what_shipbob_cannot_carry_is_refused_at_once() {
        let mut order = sample_order("SO-1");
        order.payment = Payment::CashOnDelivery {
            amount: Decimal::ONE,
        };
        order.address.pickup_point_id = Some("P1".into());
        let err = create_body(&order, &Waybill::new(), &defaults()).unwrap_err();
        let paths: Vec<_> = err.field_errors().iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["payment", "address.pickup_point_id"]);
        // Not in dollars: no prices at all; the waybill's method wins.
        let order = sample_order("SO-2");
        let body = create_body(
            &order,
            &Waybill::new()
                .with(SHIPPING_METHOD, "Expedited")
                .with(GIFT_MESSAGE, "Happy birthday"),
            &OrderDefaults {
                shipping_method: "Standard".into(),
                location_id: Some(228),
            },
        )
        .unwrap();
        let json = serde_json::to_value(&body).unwrap();
        assert!(json.get("financials").is_none());
        assert!(json["products"][0].get("unit_price").is_none());
        assert_eq!(json["shipping_method"], "Expedited");
        assert_eq!(json["gift_message"], "Happy birthday");
        assert_eq!(json["location_id"], 228);
    }

    #[test]
    fn error_bodies_of_every_family() {
        let d = error_details(br#"{"":["Cannot insert order with existing ReferenceId"]}"#);
        assert_eq!(d.message, "Cannot insert order with existing ReferenceId");
        assert!(d.fields.is_empty());
        let d = error_details(br#"{"recipient.address.city":["The City field is required."]}"#);
        assert_eq!(d.fields[0].path, "recipient.address.city");
        assert_eq!(d.fields[0].reason, "The City field is required.");
        let d = error_details(
            br#"{"id":1,"is_success":false,"error":{"code":"CONFLICT","message":"Shipment can no longer be modified"}}"#,
        );
        assert_eq!(d.code.as_deref(), Some("CONFLICT"));
        assert_eq!(d.message, "Shipment can no longer be modified");
        let d = error_details(
            br#"{"type":"x","title":"Bad Request","status":400,"detail":"PageSize must be positive","instance":"/i"}"#,
        );
        assert_eq!(d.message, "PageSize must be positive");
        let d = error_details(br#""ShipmentIds must contain between 1 and 25 ids""#);
        assert_eq!(d.message, "ShipmentIds must contain between 1 and 25 ids");
        let d = error_details(
            br#"{"statusCode":429,"message":"Rate limit is exceeded. Try again in 25 seconds."}"#,
        );
        assert!(d.message.starts_with("Rate limit"));
        assert_eq!(
            error_details(b"<html>oops</html>").message,
            "<html>oops</html>"
        );
        assert_eq!(error_details(b"").message, "");
    }

    #[test]
    fn timestamps_with_any_precision_and_offset() {
        let t = |s| parse_time(s).map(|t| t.to_rfc3339());
        assert_eq!(
            t("2025-11-19T00:06:43.7807166+00:00").as_deref(),
            Some("2025-11-19T00:06:43.780716600+00:00")
        );
        assert_eq!(
            t("2019-08-24T14:15:22Z").as_deref(),
            Some("2019-08-24T14:15:22+00:00")
        );
        assert_eq!(
            t("2026-09-20T10:00:05").as_deref(),
            Some("2026-09-20T10:00:05+00:00")
        );
        assert_eq!(
            t("2026-09-20T12:00:05+02:00").as_deref(),
            Some("2026-09-20T10:00:05+00:00")
        );
        for bad in ["", "yesterday", "2026-13-01T00:00:00Z", "2026-09-20"] {
            assert_eq!(t(bad), None, "{bad}");
        }
    }
}

/// Hostile input (issue 10, part 4, for ShipBob): every reply parser of the adapter and the
/// functions it feeds them to, on arbitrary bytes, arbitrary JSON, ShipBob-shaped orders whose
/// every field may be wrong, and the classic hostile bodies. Nothing may panic; an error is
/// typed; a status is never dropped.
#[cfg(test)]
mod hostile {
    use std::collections::HashMap;
    use std::sync::Arc;

    use proptest::prelude::*;
    use reqwest::header::{HeaderMap, HeaderValue};
    use serde_json::{Value, json};

    use super::super::client::{Missing, error_for, retry_after};
    use super::super::status::{carrier_status, editability, status_table, warehouse_status};
    use super::super::tracking::order_statuses;
    use super::*;
    use crate::http::Response;
    use crate::provider::hostile_tests::{
        arb_bytes, arb_date_text, arb_json, arb_text, client, config, hostile_bodies,
        is_recursion_limit,
    };

    /// Every reply parser on `body`, each result run through what the adapter does with it.
    fn parse_all(body: &[u8]) {
        let table = status_table();
        let now = Utc::now();
        let mut same = |_: i64, _: &str, at: DateTime<Utc>| at;
        let mut orders: Vec<OrderView> = Vec::new();
        if let Ok(list) = serde_json::from_slice::<Vec<OrderView>>(body) {
            orders.extend(list);
        }
        if let Ok(one) = serde_json::from_slice::<OrderView>(body) {
            orders.push(one);
        }
        for order in &orders {
            let _ = order.version();
            let _ = order.has_reference("SO-1");
            if let Ok(statuses) = order_statuses(
                &table,
                order,
                &HashMap::new(),
                &HashMap::new(),
                &mut same,
                now,
            ) {
                assert!(!statuses.is_empty(), "a status is never dropped");
                assert!(
                    statuses
                        .iter()
                        .all(|s| !s.original.is_empty()
                            || s.code == crate::model::StatusCode::Unknown)
                );
            }
            for shipment in &order.shipments {
                let _ = editability(shipment);
                let _ = warehouse_status(&table, shipment, now);
                let _ = shipment.tracking_number();
            }
        }
        if let Ok(shipment) = serde_json::from_slice::<ShipmentView>(body) {
            let _ = warehouse_status(&table, &shipment, now);
            let _ = editability(&shipment);
        }
        if let Ok(rows) = serde_json::from_slice::<Vec<ShipmentTracking>>(body) {
            let carrier: HashMap<i64, Arc<ShipmentTracking>> = rows
                .iter()
                .map(|r| (r.shipment_id.unwrap_or_default(), Arc::new(r.clone())))
                .collect();
            for row in &rows {
                for event in &row.history {
                    let _ = carrier_status(&table, event, now);
                }
            }
            let order = OrderView {
                id: 1,
                shipments: carrier
                    .keys()
                    .map(|id| ShipmentView {
                        id: *id,
                        status: Some("Completed".into()),
                        ..ShipmentView::default()
                    })
                    .collect(),
                ..OrderView::default()
            };
            let _ = order_statuses(&table, &order, &carrier, &HashMap::new(), &mut same, now);
        }
        let _ = serde_json::from_slice::<CanceledOrder>(body);
        let _ = serde_json::from_slice::<MutationResult>(body);
        let _ = serde_json::from_slice::<Vec<LineItem>>(body);
        let _ = serde_json::from_slice::<Page<InventoryLevel>>(body);
        let _ = serde_json::from_slice::<Page<InventoryLocations>>(body);
        let _ = serde_json::from_slice::<Page<Subscription>>(body)
            .map(|p| p.items.iter().map(Subscription::id_text).count());
    }

    /// The error mapping on `body` for every status: typed, bounded, secret-free.
    fn check_errors(body: &[u8]) {
        let details = error_details(body);
        assert!(details.message.chars().count() <= ERROR_TEXT_MAX + 1);
        let http = client();
        for status in [400u16, 401, 403, 404, 409, 422, 429, 500, 503, 599] {
            let mut headers = HeaderMap::new();
            headers.insert(
                "x-retry-after",
                HeaderValue::from_static("18446744073709551615"),
            );
            let response = Response {
                status,
                headers,
                body: bytes::Bytes::copy_from_slice(body),
            };
            for missing in [Missing::Thing("shipbob order 1 (SO-1)"), Missing::Endpoint] {
                let err = error_for(http, "GET /order", &response, missing);
                assert!(!format!("{err} {err:?}").contains("s3cr3t"));
            }
            let _ = retry_after(&response.headers);
        }
    }

    /// A ShipBob order whose every field may be wrong.
    fn arb_order() -> impl Strategy<Value = Value> {
        let any_value = || {
            prop_oneof![
                3 => arb_text().prop_map(Value::String),
                1 => any::<i64>().prop_map(Value::from),
                1 => Just(Value::Null),
                1 => arb_json(),
            ]
        };
        let date = || {
            prop_oneof![
                4 => arb_date_text().prop_map(Value::String),
                1 => any_value(),
            ]
        };
        let status = prop::sample::select(vec![
            "None",
            "Processing",
            "Completed",
            "OnHold",
            "Exception",
            "Cancelled",
            "LabeledCreated",
            "CleanSweeped",
            "",
            "On Hold",
        ]);
        (
            status,
            any_value(),
            any_value(),
            date(),
            date(),
            any_value(),
            prop::collection::vec(any_value(), 0..3),
        )
            .prop_map(
                |(status, detail_id, detail_name, updated, tracked, number, extra)| {
                    json!({
                        "id": 309589638, "reference_id": "SO-1", "status": status,
                        "created_date": updated,
                        "shipments": [{
                            "id": 100810005, "order_id": 309589638, "status": status,
                            "status_details": [{"id": detail_id, "name": detail_name}],
                            "last_update_at": updated, "last_tracking_update_at": tracked,
                            "tracking": {"carrier": detail_name, "tracking_number": number,
                                         "tracking_url": number},
                            "products": extra
                        }, {"id": 100810006, "order_id": 309589638, "status": "Cancelled"}]
                    })
                },
            )
    }

    #[test]
    fn hostile_bodies_give_typed_errors() {
        for (label, body) in hostile_bodies() {
            parse_all(&body);
            check_errors(&body);
            if label.starts_with("deep") {
                // Refused, never a stack overflow: as a typed reply or at the recursion limit.
                assert!(
                    serde_json::from_slice::<Vec<OrderView>>(&body).is_err(),
                    "{label}"
                );
                let err = serde_json::from_slice::<Value>(&body).unwrap_err();
                assert!(is_recursion_limit(&err), "{label}: {err}");
            }
        }
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn arbitrary_bytes_never_panic(body in arb_bytes()) {
            parse_all(&body);
            check_errors(&body);
        }

        #[test]
        fn shipbob_shaped_orders_never_panic_nor_lose_a_status(order in arb_order()) {
            let body = serde_json::to_vec(&order).expect("a Value serializes");
            parse_all(&body);
            let parsed: Vec<OrderView> = serde_json::from_slice(&serde_json::to_vec(&vec![order]).expect("serializes")).unwrap_or_default();
            for view in parsed {
                let mut same = |_: i64, _: &str, at: DateTime<Utc>| at;
                match order_statuses(&status_table(), &view, &HashMap::new(), &HashMap::new(), &mut same, Utc::now()) {
                    Ok(statuses) => prop_assert!(!statuses.is_empty()),
                    Err(e) => prop_assert!(matches!(e, Error::Protocol { .. }), "{e}"),
                }
            }
        }

        #[test]
        fn dates_never_panic(text in arb_date_text()) {
            let _ = parse_time(&text);
        }

        #[test]
        fn error_bodies_are_bounded(body in arb_json()) {
            let bytes = serde_json::to_vec(&body).expect("a Value serializes");
            let details = error_details(&bytes);
            prop_assert!(details.message.chars().count() <= ERROR_TEXT_MAX + 1);
        }
    }
}
