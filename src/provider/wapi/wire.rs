//! The Wapi wire format: request and response bodies with the exact JSON spellings of the
//! protocol reference ([`protocol`](crate::provider::wapi::protocol)), and the pure functions that map the crate's
//! model onto them and back.
//!
//! Nothing here does I/O. Signing, sending, retrying and turning HTTP statuses into crate errors
//! live in the client; the status vocabulary (table, trouble rules, editability) lives in
//! `status.rs`. Field order in the request structs is the order of the protocol's fixtures,
//! because the signed bytes are compared with them in tests. Every decision the protocol leaves
//! open is marked \[assumed] on the item that implements it.

use std::borrow::Cow;

use chrono::format::{Item, Numeric, Pad, Parsed};
use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone, Timelike, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::status::{apply_comment, apply_trouble};
use crate::error::{Error, FieldError, Result};
use crate::model::{
    Address, AddressKind, AddressOption, AddressQuery, CartLine, CommentRules, DeliveryStatus,
    FieldKind, OpeningHours, Order, SelectOption, StatusTable, StockLevel, Text, Waybill,
    WaybillField, WaybillForm, normalize_phone, with_status_key,
};
pub(crate) use crate::provider::OneOrMany;
use crate::provider::waybill_value;

// ---------------------------------------------------------------------------------------------
// Amounts
// ---------------------------------------------------------------------------------------------

pub(crate) use crate::provider::amount::Amount;

/// Writes `Some(bool)` as the string `"true"` / `"false"`, as `whCodeAsMandatory` wants: both
/// examples of R send a string, the prose speaks of true/False (§4, \[assumed]).
fn bool_as_string<S: Serializer>(
    value: &Option<bool>,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    match value {
        Some(true) => serializer.serialize_str("true"),
        Some(false) => serializer.serialize_str("false"),
        None => serializer.serialize_none(),
    }
}

/// Reads `null` (or a missing field, with `#[serde(default)]`) as the type's default.
fn null_as_default<'de, D, T>(deserializer: D) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

// ---------------------------------------------------------------------------------------------
// Create / update / cancel
// ---------------------------------------------------------------------------------------------

/// Waybill key: preferred delivery date, `YYYY-MM-DD` → `preferredDeliveryDate`.
pub const PREFERRED_DELIVERY_DATE: &str = "preferred_delivery_date";
/// Waybill key: `morning` or `evening` → `preferredDeliveryDayPart`.
pub const PREFERRED_DELIVERY_DAY_PART: &str = "preferred_delivery_day_part";
/// Waybill key: let the recipient open the parcel before paying (Bulgaria) → `checkBeforeCOD`.
pub const CHECK_BEFORE_COD: &str = "check_before_cod";
/// Waybill key: carrier service agreed with Wapi IT → `courierService`.
pub const COURIER_SERVICE: &str = "courier_service";
/// Waybill key: free comment → `comment`.
pub const COMMENT: &str = "comment";
/// Longest waybill comment, in characters \[assumed: Wapi documents no limit].
pub(crate) const COMMENT_MAX_CHARS: usize = 500;

/// The part of the day the recipient prefers; any other value is ignored by Wapi (§4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum DayPart {
    /// `"morning"`.
    Morning,
    /// `"evening"`.
    Evening,
}

impl DayPart {
    /// The day part named `text` (exact wire spelling).
    fn parse(text: &str) -> Option<Self> {
        match text {
            "morning" => Some(DayPart::Morning),
            "evening" => Some(DayPart::Evening),
            _ => None,
        }
    }
}

/// Body of `POST /outbounds` (§4).
///
/// Keys are sent exactly as spelled in the protocol tables, although R's examples hint at
/// case-insensitive binding \[assumed]. The order of the fields is the order of the §15c
/// fixtures: `isSelfCollect` and `selfCollectPointName` come before `receiver`. Invoice-only
/// fields (`ReasonForExport`, `*FlatAmount`, `CurrencyForInvoice`), `attachments` and
/// `receiver.nationalID` are not produced by the model and therefore not declared; the dropped
/// `pipelineId` is never sent \[doc H].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateOrderBody {
    /// `orderNumber`: the host's order id, unique at Wapi.
    pub(crate) order_number: String,
    /// `product`: the first cart line.
    pub(crate) product: Line,
    /// `additionalProducts`: cart lines 2..n, omitted when there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) additional_products: Vec<Line>,
    /// `cashOnDelivery`: the amount to collect, 0 when prepaid.
    pub(crate) cash_on_delivery: Amount,
    /// `isSelfCollect`: `true` for a pickup point or locker, omitted otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) is_self_collect: Option<bool>,
    /// `selfCollectPointName`: the point's or locker's code when `isSelfCollect`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) self_collect_point_name: Option<String>,
    /// `receiver`.
    pub(crate) receiver: Receiver,
    /// `comment`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) comment: Option<String>,
    /// `whCode`: the preferred warehouse, e.g. `ITWH6`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) wh_code: Option<String>,
    /// `whCodeAsMandatory`: sent as the string `"true"` / `"false"` \[assumed].
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "bool_as_string"
    )]
    pub(crate) wh_code_as_mandatory: Option<bool>,
    /// `courierService`: only by agreement with Wapi IT (`SDA`, `DPD PL`, `Inpost`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) courier_service: Option<String>,
    /// `checkBeforeCOD` (Bulgaria only).
    #[serde(rename = "checkBeforeCOD", skip_serializing_if = "Option::is_none")]
    pub(crate) check_before_cod: Option<bool>,
    /// `preferredDeliveryDate`, `YYYY-MM-DD`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) preferred_delivery_date: Option<NaiveDate>,
    /// `preferredDeliveryDayPart`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) preferred_delivery_day_part: Option<DayPart>,
}

/// One product line of a create or update body (§4).
///
/// `price` and `unitPriceForInvoice` are always sent, as numbers: R calls them required while P
/// omits them, and one example writes a string \[assumed].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Line {
    /// `name`: the product code as registered at Wapi (the cart line's sku).
    pub(crate) name: String,
    /// `quantity`.
    pub(crate) quantity: u32,
    /// `price`: unit price used for COD; 0 for prepaid orders.
    pub(crate) price: Amount,
    /// `unitPriceForInvoice`: the real unit price, also for prepaid orders.
    pub(crate) unit_price_for_invoice: Amount,
}

/// The recipient of a create or update body (§4).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Receiver {
    /// `firstName`: the full name, as P does \[doc P].
    pub(crate) first_name: String,
    /// `lastName`: always `""`, as P does \[doc P].
    pub(crate) last_name: String,
    /// `phoneNumber`, normalized (`+393401234567`).
    pub(crate) phone_number: String,
    /// `emailAddress`; required by Wapi for Inpost Packomat.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) email_address: Option<String>,
    /// `houseNumber`: the model keeps the house number inside the street line, so it is never
    /// filled from an order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) house_number: Option<String>,
    /// `addressText`: the first address line (the point's address for self-collect).
    pub(crate) address_text: String,
    /// `addressAdditionalInfo`: the other address lines joined with `", "`, or `""`.
    pub(crate) address_additional_info: String,
    /// `city`.
    pub(crate) city: String,
    /// `country`: ISO alpha-2.
    pub(crate) country: String,
    /// `zipCode`, as text (leading zeros kept).
    pub(crate) zip_code: String,
}

/// Instance configuration that shapes every create body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct WireDefaults {
    /// `whCode` and `whCodeAsMandatory`: the preferred warehouse and whether Wapi may fall back
    /// to another one.
    pub(crate) warehouse: Option<(String, bool)>,
    /// `courierService` used when the waybill names none.
    pub(crate) courier_service: Option<String>,
}

/// The waybill form of Wapi: the keys [`create_body`] reads.
///
/// `courier_service` is offered only when the instance configures options (Wapi accepts it
/// only by agreement); the comment limit of 500 characters is ours \[assumed].
pub(crate) fn waybill_form(courier_options: &[String]) -> Result<WaybillForm> {
    let mut fields = vec![
        WaybillField::new(
            PREFERRED_DELIVERY_DATE,
            "Preferred delivery date",
            FieldKind::Date,
        )
        .with_help("Wapi hands the parcel to the partner at least 2 days before this date"),
        WaybillField::new(
            PREFERRED_DELIVERY_DAY_PART,
            "Preferred time of day",
            FieldKind::Select {
                options: vec![
                    SelectOption {
                        value: "morning".into(),
                        label: "Morning".into(),
                    },
                    SelectOption {
                        value: "evening".into(),
                        label: "Evening".into(),
                    },
                ],
            },
        ),
        WaybillField::new(CHECK_BEFORE_COD, "Check before paying", FieldKind::Bool)
            .with_help("Bulgaria only: the recipient may open the parcel before paying"),
    ];
    if !courier_options.is_empty() {
        fields.push(
            WaybillField::new(
                COURIER_SERVICE,
                "Courier service",
                FieldKind::Select {
                    options: courier_options
                        .iter()
                        .map(|o| SelectOption::plain(o.clone()))
                        .collect(),
                },
            )
            .with_help("only services agreed with Wapi IT; none for Inpost Packomat"),
        );
    }
    fields.push(WaybillField::new(
        COMMENT,
        "Comment",
        FieldKind::Text {
            max_len: Some(COMMENT_MAX_CHARS),
        },
    ));
    WaybillForm::new(fields)
}

/// The wire line for `line`: prices only when cash is collected, the invoice price always.
fn wire_line(line: &CartLine, collect_cash: bool) -> Line {
    Line {
        name: line.sku.to_string(),
        quantity: line.quantity,
        price: Amount(if collect_cash {
            line.unit_price
        } else {
            Decimal::ZERO
        }),
        unit_price_for_invoice: Amount(line.unit_price),
    }
}

/// The `POST /outbounds` body for `order` with its `waybill`, under instance `config` (§4).
///
/// - cart line 1 → `product`, lines 2..n → `additionalProducts`; `name` is the sku;
/// - prepaid: `cashOnDelivery` 0 and every `price` 0, `unitPriceForInvoice` the unit price;
///   cash on delivery: `cashOnDelivery` the amount and `price` the unit price. A COD payment of
///   0 is sent like a prepaid order, because `cashOnDelivery: 0` with non-zero prices would make
///   Wapi collect the price-based sum \[assumed];
/// - receiver: full name in `firstName`, `lastName` `""` \[doc P]; normalized phone; first
///   address line in `addressText`, the rest in `addressAdditionalInfo`;
/// - a pickup point (`address.pickup_point_id`) → `isSelfCollect: true` with its code;
/// - waybill keys of [`waybill_form`]; a waybill `courier_service` wins over the instance's;
///   the instance's warehouse gives `whCode` / `whCodeAsMandatory`.
///
/// It does not re-run [`Order::validate`] (the caller does); it checks only what it needs to
/// build the body.
///
/// # Errors
///
/// [`Error::Validation`] when the cart is empty, or when a waybill value of a known key has the
/// wrong type or is out of range (each problem listed).
pub(crate) fn create_body(
    order: &Order,
    waybill: &Waybill,
    config: &WireDefaults,
) -> Result<CreateOrderBody> {
    let mut errors = Vec::new();
    if order.lines.is_empty() {
        errors.push(FieldError::new("lines", "the cart must not be empty"));
    }
    let preferred_delivery_date = waybill_value(
        waybill,
        PREFERRED_DELIVERY_DATE,
        "must be a date YYYY-MM-DD",
        &mut errors,
        |_| waybill.date(PREFERRED_DELIVERY_DATE),
    );
    let preferred_delivery_day_part = waybill_value(
        waybill,
        PREFERRED_DELIVERY_DAY_PART,
        "must be one of: morning, evening",
        &mut errors,
        |v| v.as_str().and_then(DayPart::parse),
    );
    let check_before_cod = waybill_value(
        waybill,
        CHECK_BEFORE_COD,
        "must be true or false",
        &mut errors,
        Value::as_bool,
    );
    let courier_service =
        waybill_value(waybill, COURIER_SERVICE, "must be text", &mut errors, |v| {
            v.as_str().map(|s| s.trim().to_owned())
        });
    let comment = waybill_value(
        waybill,
        COMMENT,
        "must be text of at most 500 characters",
        &mut errors,
        |v| {
            v.as_str()
                .filter(|s| s.chars().count() <= COMMENT_MAX_CHARS)
                .map(|s| s.trim().to_owned())
        },
    );

    let collect_cash = order.payment.cod_amount() > Decimal::ZERO;
    let mut lines = order.lines.iter().map(|l| wire_line(l, collect_cash));
    let product = match lines.next() {
        Some(product) if errors.is_empty() => product,
        _ => return Err(Error::validation(format!("order {}", order.id), errors)),
    };
    let additional_products = lines.collect();

    let address = &order.address;
    let mut address_lines = address
        .lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty());
    let address_text = address_lines.next().unwrap_or_default().to_owned();
    let address_additional_info = address_lines.collect::<Vec<_>>().join(", ");
    let receiver = Receiver {
        first_name: order.customer.name.trim().to_owned(),
        last_name: String::new(),
        phone_number: normalize_phone(&order.customer.phone),
        email_address: order
            .customer
            .email
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(str::to_owned),
        house_number: None,
        address_text,
        address_additional_info,
        city: address.city.trim().to_owned(),
        country: address.country.trim().to_owned(),
        zip_code: address.postcode.trim().to_owned(),
    };
    let point = address
        .pickup_point_id
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty());

    Ok(CreateOrderBody {
        order_number: order.id.to_string(),
        product,
        additional_products,
        cash_on_delivery: Amount(if collect_cash {
            order.payment.cod_amount()
        } else {
            Decimal::ZERO
        }),
        is_self_collect: point.map(|_| true),
        self_collect_point_name: point.map(str::to_owned),
        receiver,
        comment,
        wh_code: config.warehouse.as_ref().map(|(code, _)| code.clone()),
        wh_code_as_mandatory: config.warehouse.as_ref().map(|(_, mandatory)| *mandatory),
        courier_service: courier_service
            .or_else(|| config.courier_service.clone())
            .filter(|c| !c.is_empty()),
        check_before_cod,
        preferred_delivery_date,
        preferred_delivery_day_part,
    })
}

/// Body of `POST /outbounds/UpdateOrder`: the full create body plus `trackingNumber` (§5). The
/// update replaces the whole order; it is not a patch \[assumed].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct UpdateOrderBody {
    /// Every create field, at the top level.
    #[serde(flatten)]
    pub(crate) order: CreateOrderBody,
    /// `trackingNumber`: the WH number.
    #[serde(rename = "trackingNumber")]
    pub(crate) tracking_number: String,
}

/// Body of `POST /outbounds/cancelOrder` (§6). Which fields are required is undocumented, so
/// all four are always sent, `""` when there is no value \[assumed].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CancelOrderBody {
    /// `trackingNumber`: the WH number.
    pub(crate) tracking_number: String,
    /// `orderNumber`: the host's order id.
    pub(crate) order_number: String,
    /// `sourceOrderId`: the id on the originating platform, `""` when none.
    pub(crate) source_order_id: String,
    /// `comment`, `""` when none.
    pub(crate) comment: String,
}

/// The WH number in a `POST /outbounds` 200 reply: `{"trackingNumber":"WH0000000024"}` (§4).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreatedResponse {
    /// The WH number, the key of every later call.
    pub(crate) tracking_number: String,
}

/// How Wapi refused an `UpdateOrder` (§5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UpdateRefusal {
    /// "This order cannot be edited anymore!": too late; read the state via tracking.
    CannotBeEdited,
    /// An incident is open at Wapi; an operator resolves it there.
    CriticalIncident,
    /// The body changes nothing: the update is a no-op, reported as updated.
    NoChanges,
}

const REFUSAL_CANNOT_BE_EDITED: &str = "This order cannot be edited anymore!";
const REFUSAL_CRITICAL_INCIDENT: &str =
    "This order has critical incident opened. Please resolve incident before order update.";
const REFUSAL_NO_CHANGES: &str =
    "The data you have provided brings no changes. Please check and try again!";

/// Which §5 refusal `text` (the message [`error_text`] extracted from the body) is.
///
/// The exact trimmed text of R is matched first; as a fallback any text containing
/// `cannot be edited` (any case) is [`UpdateRefusal::CannotBeEdited`] \[assumed]. `None` for any
/// other text.
pub(crate) fn classify_update_refusal(text: &str) -> Option<UpdateRefusal> {
    match text.trim() {
        REFUSAL_CANNOT_BE_EDITED => Some(UpdateRefusal::CannotBeEdited),
        REFUSAL_CRITICAL_INCIDENT => Some(UpdateRefusal::CriticalIncident),
        REFUSAL_NO_CHANGES => Some(UpdateRefusal::NoChanges),
        other if other.to_lowercase().contains("cannot be edited") => {
            Some(UpdateRefusal::CannotBeEdited)
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Longest error text kept from a body, in characters.
pub(crate) const ERROR_TEXT_MAX_CHARS: usize = 500;

/// The message of an error body (§3, \[assumed]): from a JSON object the first key matching
/// `error` case-insensitively, then `message`, then `title` (a non-string value is kept as its
/// JSON text); from a JSON string the string; otherwise the raw text, lossy UTF-8. Trimmed and
/// cut to [`ERROR_TEXT_MAX_CHARS`] characters. The client caps the body before calling this.
pub(crate) fn error_text(body: &[u8]) -> String {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let raw = || String::from_utf8_lossy(body).into_owned();
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => ["error", "message", "title"]
            .iter()
            .find_map(|wanted| {
                map.iter()
                    .find(|(key, value)| key.eq_ignore_ascii_case(wanted) && !value.is_null())
                    .map(|(_, value)| match value {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
            })
            .unwrap_or_else(raw),
        Ok(Value::String(s)) => s,
        _ => raw(),
    };
    let trimmed = text.trim();
    match trimmed.char_indices().nth(ERROR_TEXT_MAX_CHARS) {
        Some((cut, _)) => trimmed[..cut].trim_end().to_owned(),
        None => trimmed.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Tracking
// ---------------------------------------------------------------------------------------------

/// Body of `POST /tracking` and `POST /tracking/getDetailedOrderStatus` (§7, §8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TrackingRequest {
    /// `trackingNumbers`: WH numbers (the client sends at most 50 per call \[assumed]).
    pub(crate) tracking_numbers: Vec<String>,
}

/// The 200 reply of `POST /tracking`: `{"statuses":[…]}` (§7). R wraps it in an extra pair of
/// braces, which is read as a typo \[doc R / assumed]. A requested number missing from
/// `statuses` means "no news", not an error \[assumed].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct TrackingResponse {
    /// One entry per known order; `null` reads as empty.
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) statuses: Vec<TrackingStatus>,
}

/// The WH number and raw status of the row answering a `/tracking` request made with order
/// number `number` in place of a WH number: one row about another number (a row echoing
/// `number` itself, or several rows, prove nothing).
pub(crate) fn wh_number_for(reply: TrackingResponse, number: &str) -> Option<(String, String)> {
    let mut rows = reply.statuses.into_iter().filter(|row| {
        let wh = row.tracking_number.trim();
        !wh.is_empty() && wh != number.trim()
    });
    let row = rows.next()?;
    if rows.next().is_some()
        || !crate::model::usable_id(&row.tracking_number, crate::model::ID_MAX_CHARS)
    {
        return None;
    }
    Some((row.tracking_number.trim().to_owned(), row.delivery_status))
}

/// One order of a `/tracking` reply (§7). Only `trackingNumber` and `deliveryStatus` are
/// required: the 2021 example has no `courier*` fields \[doc H / assumed]. Unknown fields are
/// ignored and `null` is accepted for every optional one.
///
/// The adapter reads only the raw status from `/tracking` (to judge a refused update or
/// cancel); statuses with history and carrier data come from [`DetailedStatus`]. The other
/// fields are declared so the documented shape stays in one place.
#[allow(
    dead_code,
    reason = "the documented reply in full; only the raw status is read today"
)]
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TrackingStatus {
    /// `trackingNumber`: the WH number.
    pub(crate) tracking_number: String,
    /// `deliveryStatus`: the raw status (§9).
    pub(crate) delivery_status: String,
    /// `deliveryStatusText`: a display text, never used for mapping.
    pub(crate) delivery_status_text: Option<String>,
    /// `troubleStatus` (§9); can be stale on terminal statuses.
    pub(crate) trouble_status: Option<String>,
    /// `courierName`, e.g. `SDA`.
    pub(crate) courier_name: Option<String>,
    /// `courierSite`: the carrier's home page.
    pub(crate) courier_site: Option<String>,
    /// `courierTrackingNumber`: the carrier's own number.
    pub(crate) courier_tracking_number: Option<String>,
    /// `courierTrackingSiteLink`: the carrier's tracking page.
    pub(crate) courier_tracking_site_link: Option<String>,
}

/// One order of a `/tracking/getDetailedOrderStatus` reply, which is a top-level JSON array of
/// these (§8): every §7 field plus the status history. Lenient like [`TrackingStatus`].
///
/// Not read (skipped by the parser, so they cost no allocation per shipment and poll):
/// `deliveryStatusText`, a display text that mapping must not use (see [`map_detailed`]);
/// the top-level `statusDate`, `null` in R's example (the dates that matter are in the
/// history); and each history entry's `statusComment`, free carrier text.
///
/// Texts borrow from the reply where they can (`Cow`): most are read once and dropped, and
/// copying each was a third of the adapter's allocations per tracked shipment.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DetailedStatus<'a> {
    /// `trackingNumber`: the WH number.
    #[serde(borrow)]
    pub(crate) tracking_number: Cow<'a, str>,
    /// `deliveryStatus`: the current raw status.
    #[serde(borrow)]
    pub(crate) delivery_status: Cow<'a, str>,
    /// `troubleStatus` of the current status.
    #[serde(borrow)]
    pub(crate) trouble_status: Option<Cow<'a, str>>,
    /// `courierName`.
    #[serde(borrow)]
    pub(crate) courier_name: Option<Cow<'a, str>>,
    /// `courierSite`.
    #[serde(borrow)]
    pub(crate) courier_site: Option<Cow<'a, str>>,
    /// `courierTrackingNumber`.
    #[serde(borrow)]
    pub(crate) courier_tracking_number: Option<Cow<'a, str>>,
    /// `courierTrackingSiteLink`.
    #[serde(borrow)]
    pub(crate) courier_tracking_site_link: Option<Cow<'a, str>>,
    /// `statusHistory`, chronological in R's example; missing or `null` reads as empty.
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub(crate) status_history: Vec<HistoryEntry<'a>>,
}

/// One entry of `statusHistory` (§8).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HistoryEntry<'a> {
    /// `statusDate`, e.g. `2022-05-02T05:56:52.05`, see [`parse_status_date`].
    #[serde(borrow)]
    pub(crate) status_date: Option<Cow<'a, str>>,
    /// `statusName`: the raw status of the entry.
    #[serde(borrow)]
    pub(crate) status_name: Cow<'a, str>,
    /// `troubleStatus` of this entry; counting them counts delivery attempts.
    #[serde(borrow)]
    pub(crate) trouble_status: Option<Cow<'a, str>>,
    /// `statusComment`: the carrier's free text, read only for the comment rules.
    #[serde(borrow, default)]
    pub(crate) status_comment: Option<Cow<'a, str>>,
}

/// Longest excerpt of a bad value quoted in an error message.
const EXCERPT_MAX_CHARS: usize = 40;

fn excerpt(text: &str) -> String {
    text.chars().take(EXCERPT_MAX_CHARS).collect()
}

/// The items of `%Y-%m-%dT%H:%M:%S`, the whole-second part of a §8 `statusDate`, spelled out
/// once: parsing the format string for every status showed in the tracking profile.
const STATUS_DATE_ITEMS: &[Item<'static>] = &[
    Item::Numeric(Numeric::Year, Pad::Zero),
    Item::Literal("-"),
    Item::Numeric(Numeric::Month, Pad::Zero),
    Item::Literal("-"),
    Item::Numeric(Numeric::Day, Pad::Zero),
    Item::Literal("T"),
    Item::Numeric(Numeric::Hour, Pad::Zero),
    Item::Literal(":"),
    Item::Numeric(Numeric::Minute, Pad::Zero),
    Item::Literal(":"),
    Item::Numeric(Numeric::Second, Pad::Zero),
];

/// The instant of a history `statusDate` (§8).
///
/// Wapi writes local date-times without an offset and with 0 to 7 fractional digits
/// (`2022-05-02T05:56:52.05`); they are read as UTC shifted by the instance's
/// `utc_offset_secs` (local = UTC + offset) \[assumed]. A text that carries its own RFC 3339
/// offset is read with that offset instead \[assumed].
///
/// # Errors
///
/// [`Error::Protocol`] for anything else, including more than 7 fractional digits, and for an
/// offset beyond ±24 h.
pub(crate) fn parse_status_date(text: &str, utc_offset_secs: i32) -> Result<DateTime<Utc>> {
    let text = text.trim();
    let bad = || {
        Error::protocol(format!(
            "wapi statusDate {:?} is not a date-time YYYY-MM-DDTHH:MM:SS[.fffffff]",
            excerpt(text)
        ))
    };
    if let Ok(with_offset) = DateTime::parse_from_rfc3339(text) {
        return Ok(with_offset.with_timezone(&Utc));
    }
    let (main, fraction) = match text.split_once('.') {
        Some((main, fraction)) => (main, Some(fraction)),
        None => (text, None),
    };
    let mut parsed = Parsed::new();
    chrono::format::parse(&mut parsed, main, STATUS_DATE_ITEMS.iter()).map_err(|_| bad())?;
    let mut naive = parsed.to_naive_datetime_with_offset(0).map_err(|_| bad())?;
    if let Some(fraction) = fraction {
        if fraction.is_empty()
            || fraction.len() > 7
            || !fraction.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        // At most 7 digits, so the value and the scale fit in u32.
        let digits = fraction
            .bytes()
            .fold(0u32, |n, b| n * 10 + u32::from(b - b'0'));
        let nanos = digits * 10u32.pow(9 - fraction.len() as u32);
        naive = naive.with_nanosecond(nanos).ok_or_else(bad)?;
    }
    let offset = FixedOffset::east_opt(utc_offset_secs).ok_or_else(|| {
        Error::protocol(format!(
            "utc offset of {utc_offset_secs} s is beyond 24 hours"
        ))
    })?;
    offset
        .from_local_datetime(&naive)
        .single()
        .map(|local| local.with_timezone(&Utc))
        .ok_or_else(bad)
}

/// The first non-blank text of `candidates`.
fn first_text<'a>(candidates: &[Option<&'a str>]) -> Option<&'a str> {
    candidates
        .iter()
        .flatten()
        .map(|s| s.trim())
        .find(|s| !s.is_empty())
}

/// Puts the carrier fields of a reply on `status`: `courierName` → `carrier`,
/// `courierTrackingNumber` → `carrier_tracking_number`, `courierTrackingSiteLink` (else
/// `courierSite`) → `tracking_url`. Blank values count as absent.
fn with_courier(
    mut status: DeliveryStatus,
    name: Option<&str>,
    tracking_number: Option<&str>,
    tracking_link: Option<&str>,
    site: Option<&str>,
) -> DeliveryStatus {
    status.carrier = first_text(&[name]).map(Text::from);
    status.carrier_tracking_number = first_text(&[tracking_number]).map(Text::from);
    status.tracking_url = first_text(&[tracking_link, site]).map(Text::from);
    status
}

/// The current status from a top-level `deliveryStatus` and `troubleStatus` (§7 data).
///
/// The top-level trouble is used only while the status is `InTransit` or `Dispatched`: it can
/// be stale, R pairs `Delivered` with `CannotLocateConsignee` (§15a, \[assumed]). `original` is
/// `deliveryStatus`, never `deliveryStatusText`, so that the status table and instance
/// overrides keep working on the raw status.
fn current_status(
    raw: &str,
    trouble: Option<&str>,
    table: &StatusTable,
    at: DateTime<Utc>,
) -> DeliveryStatus {
    let status = table.status(raw, at);
    let on_the_road = with_status_key(raw, |key| matches!(key, "intransit" | "dispatched"));
    apply_trouble(status, raw, trouble.filter(|_| on_the_road))
}

/// The statuses of one detailed-status entry (§8), oldest first.
///
/// - One status per `statusHistory` entry, mapped through `table` with the entry's own
///   trouble status applied (see `status::apply_trouble`), stamped with its `statusDate`
///   (see [`parse_status_date`]); entries are sorted by that date, stably, in case Wapi ever
///   sends them out of order.
/// - When the history is empty, a single status from `deliveryStatus` at `fallback_at`.
/// - When the history's last entry is not the current `deliveryStatus` (compared normalized),
///   the current status is appended, stamped `fallback_at` but never before the last entry:
///   the last status must be the current one \[assumed].
/// - `original` is always the raw status name; `deliveryStatusText`, even when present, is not
///   used, so that tables and instance overrides match on the status name \[assumed].
/// - `courierName`, `courierTrackingNumber` and `courierTrackingSiteLink` (else `courierSite`)
///   go on the last (current) status only.
///
/// # Errors
///
/// [`Error::Protocol`] when a history entry has no `statusDate` or an unreadable one.
pub(crate) fn map_detailed(
    d: &DetailedStatus<'_>,
    table: &StatusTable,
    comments: &CommentRules,
    utc_offset_secs: i32,
    fallback_at: DateTime<Utc>,
) -> Result<Vec<DeliveryStatus>> {
    let mut statuses = Vec::with_capacity(d.status_history.len() + 1);
    // The raw name of the latest entry (the last one among equal dates, as a stable sort
    // leaves it).
    let mut last: Option<(DateTime<Utc>, &str)> = None;
    for entry in &d.status_history {
        let date = entry.status_date.as_deref().ok_or_else(|| {
            Error::protocol(format!(
                "wapi status history of {} has an entry without statusDate",
                excerpt(&d.tracking_number)
            ))
        })?;
        let at = parse_status_date(date, utc_offset_secs)?;
        statuses.push(apply_comment(
            apply_trouble(
                table.status(&entry.status_name, at),
                &entry.status_name,
                entry.trouble_status.as_deref(),
            ),
            entry.status_comment.as_deref(),
            comments,
        ));
        if last.is_none_or(|(last_at, _)| at >= last_at) {
            last = Some((at, &*entry.status_name));
        }
    }
    statuses.sort_by_key(|status| status.at);

    let current_in_history = last.is_some_and(|(_, raw)| {
        with_status_key(&d.delivery_status, |current| {
            with_status_key(raw, |key| key == current)
        })
    });
    if !current_in_history {
        let at = last.map_or(fallback_at, |(last_at, _)| last_at.max(fallback_at));
        statuses.push(current_status(
            &d.delivery_status,
            d.trouble_status.as_deref(),
            table,
            at,
        ));
    }
    if let Some(current) = statuses.pop() {
        statuses.push(with_courier(
            current,
            d.courier_name.as_deref(),
            d.courier_tracking_number.as_deref(),
            d.courier_tracking_site_link.as_deref(),
            d.courier_site.as_deref(),
        ));
    }
    Ok(statuses)
}

// ---------------------------------------------------------------------------------------------
// Stock
// ---------------------------------------------------------------------------------------------

/// Body of `POST /stock/getProductRemainderV2` (and, without `warehouseName`, of V1) (§10).
/// Each field is optional: no `productName` asks for every product of the country.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StockRequestV2 {
    /// `country`: `"IT"` or `"Italy"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) country: Option<String>,
    /// `productName`: one product.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) product_name: Option<String>,
    /// `warehouseName`, e.g. `ITWH2` (V2 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) warehouse_name: Option<String>,
}

/// One row of a `getProductRemainderV2` reply (§10). Only `productName` and
/// `availableQuantity` are required; the other quantities are optional.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StockRowV2 {
    /// `country`, as Wapi names it (`Italy`).
    #[allow(dead_code, reason = "part of the documented reply, kept for debugging")]
    pub(crate) country: Option<String>,
    /// `warehouseName`.
    pub(crate) warehouse_name: Option<String>,
    /// `productName`: the sku.
    pub(crate) product_name: String,
    /// `remainingQuantity`: units in the warehouse.
    #[allow(dead_code, reason = "part of the documented reply, kept for debugging")]
    pub(crate) remaining_quantity: Option<i64>,
    /// `reservedQuantity`: units held by orders.
    pub(crate) reserved_quantity: Option<i64>,
    /// `availableQuantity`: units orderable now.
    pub(crate) available_quantity: i64,
    /// `InTransitQuantity`, with a capital I on the wire (the camel-case spelling is accepted
    /// too, in case Wapi binds case-insensitively \[assumed]).
    #[serde(rename = "InTransitQuantity", alias = "inTransitQuantity")]
    pub(crate) in_transit_quantity: Option<i64>,
    /// `returningQuantity`.
    #[allow(dead_code, reason = "part of the documented reply, kept for debugging")]
    pub(crate) returning_quantity: Option<i64>,
}

impl StockRowV2 {
    /// The stock level: `available` is `availableQuantity` (§10, \[assumed]).
    pub(crate) fn to_stock_level(&self) -> StockLevel {
        StockLevel {
            sku: self.product_name.as_str().into(),
            warehouse: self.warehouse_name.clone().filter(|w| !w.is_empty()),
            available: self.available_quantity,
            reserved: self.reserved_quantity,
            in_transit: self.in_transit_quantity,
        }
    }
}

/// One row of a `getProductRemainder` (V1) reply (§10). The field really is spelled
/// `reminderQuantity`; negative values occur on test accounts. The adapter uses V2 (§10,
/// \[assumed]); V1 is kept for accounts without it.
#[allow(
    dead_code,
    reason = "V1 is the fallback endpoint, not wired by default"
)]
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StockRowV1 {
    /// `country`.
    pub(crate) country: Option<String>,
    /// `productName`: the sku.
    pub(crate) product_name: String,
    /// `reminderQuantity` (sic): the remaining units.
    pub(crate) reminder_quantity: i64,
}

#[allow(
    dead_code,
    reason = "V1 is the fallback endpoint, not wired by default"
)]
impl StockRowV1 {
    /// The stock level: only the available quantity is known.
    pub(crate) fn to_stock_level(&self) -> StockLevel {
        StockLevel::new(self.product_name.as_str(), self.reminder_quantity)
    }
}

// ---------------------------------------------------------------------------------------------
// Pickup points (simulator-only endpoint)
// ---------------------------------------------------------------------------------------------

/// Body of `POST /pickupPoints/search` (§13). **This endpoint does not exist at Wapi**: it is
/// ours, for the mock server and an operator-run list, and is signed like every call
/// \[assumed].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PickupPointSearch {
    /// `country`, ISO alpha-2.
    pub(crate) country: String,
    /// `city`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) city: Option<String>,
    /// `zipCode`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) zip_code: Option<String>,
    /// `query`: free text (name, street or code).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) query: Option<String>,
    /// `carrier`, e.g. `Inpost`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) carrier: Option<String>,
    /// `limit`: at most this many points; omitted for the server's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) limit: Option<usize>,
    /// `offset`: points to skip, for the next page of a search (ours too); omitted for 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) offset: Option<usize>,
}

impl PickupPointSearch {
    /// The search for `query`, for any carrier (set [`PickupPointSearch::carrier`] to
    /// restrict it); a limit of 0 is omitted.
    pub(crate) fn from_query(query: &AddressQuery) -> Self {
        Self {
            country: query.country.clone(),
            city: query.city.clone(),
            zip_code: query.postcode.clone(),
            query: query.text.clone(),
            carrier: None,
            limit: (query.limit > 0).then_some(query.limit),
            offset: None,
        }
    }
}

/// The 200 reply of `POST /pickupPoints/search` (§13).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct PickupPointsResponse {
    /// The points found; missing or `null` reads as empty.
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) points: Vec<WirePoint>,
}

impl PickupPointsResponse {
    /// The points as directory entries, in the reply's order (see
    /// [`WirePoint::to_address_option`]).
    pub(crate) fn to_options(&self) -> Vec<AddressOption> {
        self.points
            .iter()
            .map(WirePoint::to_address_option)
            .collect()
    }
}

/// One point of a pickup-point search reply (§13). Only `code` is required.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WirePoint {
    /// `code`: what goes into `selfCollectPointName`.
    pub(crate) code: String,
    /// `carrier`, e.g. `Inpost`.
    pub(crate) carrier: Option<String>,
    /// `name`, e.g. `Paczkomat WAW01A`.
    pub(crate) name: Option<String>,
    /// `addressText`: the street line.
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) address_text: String,
    /// `city`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) city: String,
    /// `zipCode`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) zip_code: String,
    /// `country`, ISO alpha-2.
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) country: String,
    /// `openingHours`: free text such as `24/7`.
    pub(crate) opening_hours: Option<String>,
}

impl WirePoint {
    /// The directory entry: a [`AddressKind::Locker`] for carrier Inpost (any case), else a
    /// [`AddressKind::PickupPoint`]; the label is the name, else the code; the opening hours
    /// text goes into [`OpeningHours::note`].
    pub(crate) fn to_address_option(&self) -> AddressOption {
        let carrier = first_text(&[self.carrier.as_deref()]);
        let kind = if carrier.is_some_and(|c| c.eq_ignore_ascii_case("inpost")) {
            AddressKind::Locker
        } else {
            AddressKind::PickupPoint
        };
        let street = self.address_text.trim();
        AddressOption {
            id: self.code.clone(),
            kind,
            label: first_text(&[self.name.as_deref()])
                .unwrap_or(&self.code)
                .to_owned(),
            address: Address {
                country: self.country.trim().to_owned(),
                region: None,
                city: self.city.trim().to_owned(),
                postcode: self.zip_code.trim().to_owned(),
                lines: if street.is_empty() {
                    Vec::new()
                } else {
                    vec![street.to_owned()]
                },
                provider_address_id: None,
                pickup_point_id: None,
            },
            carrier: carrier.map(str::to_owned),
            opening_hours: first_text(&[self.opening_hours.as_deref()]).map(|note| OpeningHours {
                note: Some(note.to_owned()),
                ..OpeningHours::default()
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use chrono::TimeZone;
    use serde_json::json;

    use super::super::status::status_table;
    use super::*;
    use crate::model::{Customer, Payment, Problem, StatusCode};

    // Fixture bodies of protocol §15c, byte for byte.
    const CREATE_COD_IT: &str = r#"{"orderNumber":"SO-1001","product":{"name":"Demo Product-1","quantity":2,"price":24.5,"unitPriceForInvoice":24.5},"additionalProducts":[{"name":"Demo Product-2","quantity":1,"price":10.0,"unitPriceForInvoice":10.0}],"cashOnDelivery":59.0,"receiver":{"firstName":"Giulia","lastName":"Rossi","phoneNumber":"+393401234567","emailAddress":"giulia@example.com","houseNumber":"12","addressText":"Via Roma","addressAdditionalInfo":"int. 4","city":"Venezia","country":"IT","zipCode":"30121"},"comment":"call first","preferredDeliveryDate":"2024-05-10","preferredDeliveryDayPart":"morning"}"#;
    const CREATE_PREPAID_PACKOMAT: &str = r#"{"orderNumber":"SO-1002","product":{"name":"Demo Product-1","quantity":1,"price":0,"unitPriceForInvoice":19.9},"cashOnDelivery":0,"isSelfCollect":true,"selfCollectPointName":"WAW01A","receiver":{"firstName":"Jan Nowak","phoneNumber":"+48501234567","emailAddress":"jan@example.com","addressText":"ul. Prosta 1","addressAdditionalInfo":"","city":"Warszawa","country":"PL","zipCode":"00-001"}}"#;
    const CANCEL: &str = r#"{"trackingNumber":"WH0000653702","orderNumber":"SO-1001","sourceOrderId":"","comment":"customer cancelled"}"#;
    const TRACKING_REQUEST: &str = r#"{"trackingNumbers":["WH0000653702","WH0000653703"]}"#;
    const TRACKING_REPLY: &str = r#"{"statuses":[{"trackingNumber":"WH0000653702","deliveryStatus":"InTransit","deliveryStatusText":"[04.05.2024 13:48:00] Status: 'InTransit'; Comments: 'Mancata consegna per destinatario assente'","troubleStatus":"IsAbsent1","courierName":"SDA","courierSite":"https://www.sda.it","courierTrackingNumber":"383148H047484","courierTrackingSiteLink":"https://www.sda.it/"},{"trackingNumber":"WH0000653703","deliveryStatus":"Pending","deliveryStatusText":"Order is being processed","troubleStatus":null}]}"#;
    const DETAILED_REPLY: &str = r#"[{"statusHistory":[{"statusDate":"2024-05-02T05:56:52.05","statusName":"Pending","statusComment":null,"troubleStatus":null},{"statusDate":"2024-05-04T13:48:00","statusName":"InTransit","statusComment":"Mancata consegna per destinatario assente","troubleStatus":"IsAbsent1"}],"statusDate":null,"trackingNumber":"WH0000653702","deliveryStatus":"InTransit","deliveryStatusText":"[04.05.2024 13:48:00] Status: 'InTransit'; Comments: 'Mancata consegna per destinatario assente'","troubleStatus":"IsAbsent1","courierName":"SDA","courierTrackingNumber":"383148H047484"}]"#;
    const STOCK_V1_REQUEST: &str = r#"{"country":"IT","productName":"Demo Product-1"}"#;
    const STOCK_V1_REPLY: &str =
        r#"{"country":"IT","productName":"Demo Product-1","reminderQuantity":42}"#;
    const STOCK_V2_REQUEST: &str =
        r#"{"country":"Italy","productName":"Demo Product-1","warehouseName":"ITWH2"}"#;
    const STOCK_V2_REPLY: &str = r#"{"country":"Italy","warehouseName":"ITWH2","productName":"Demo Product-1","remainingQuantity":50,"reservedQuantity":8,"availableQuantity":42,"InTransitQuantity":5,"returningQuantity":1}"#;
    const POINTS_REQUEST: &str = r#"{"country":"PL","city":"Warszawa","zipCode":"00-001","query":"WAW","carrier":"Inpost","limit":20}"#;
    const POINTS_REPLY: &str = r#"{"points":[{"code":"WAW01A","carrier":"Inpost","name":"Paczkomat WAW01A","addressText":"ul. Prosta 1","city":"Warszawa","zipCode":"00-001","country":"PL","openingHours":"24/7"}]}"#;

    fn dec(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    fn line(sku: &str, quantity: u32, price: &str) -> CartLine {
        CartLine {
            sku: sku.into(),
            name: format!("{sku} (display)"),
            product_type: None,
            quantity,
            unit_price: dec(price),
        }
    }

    fn cod_order() -> Order {
        Order::new(
            "SO-1001",
            Customer {
                name: "Giulia Rossi".into(),
                phone: "+39 340 123-4567".into(),
                email: Some("giulia@example.com".into()),
            },
            Address {
                country: "IT".into(),
                region: Some("VE".into()),
                city: "Venezia".into(),
                postcode: "30121".into(),
                lines: vec!["Via Roma 12".into(), "int. 4".into()],
                provider_address_id: None,
                pickup_point_id: None,
            },
            vec![
                line("Demo Product-1", 2, "24.50"),
                line("Demo Product-2", 1, "10.00"),
            ],
            Payment::CashOnDelivery {
                amount: dec("59.00"),
            },
            "EUR",
        )
    }

    fn cod_waybill() -> Waybill {
        Waybill::new()
            .with(COMMENT, "call first")
            .with(PREFERRED_DELIVERY_DATE, "2024-05-10")
            .with(PREFERRED_DELIVERY_DAY_PART, "morning")
    }

    fn packomat_order() -> Order {
        Order::new(
            "SO-1002",
            Customer {
                name: "Jan Nowak".into(),
                phone: "+48 501 234 567".into(),
                email: Some("jan@example.com".into()),
            },
            Address {
                country: "PL".into(),
                region: None,
                city: "Warszawa".into(),
                postcode: "00-001".into(),
                lines: vec!["ul. Prosta 1".into()],
                provider_address_id: Some("WAW01A".into()),
                pickup_point_id: Some("WAW01A".into()),
            },
            vec![line("Demo Product-1", 1, "19.90")],
            Payment::Prepaid,
            "PLN",
        )
    }

    fn tracking_request(numbers: &[&str]) -> TrackingRequest {
        TrackingRequest {
            tracking_numbers: numbers.iter().map(|n| n.to_string()).collect(),
        }
    }

    /// The model status of a `/tracking` entry, as §7 and §15a define it.
    fn map_tracking(s: &TrackingStatus, table: &StatusTable, at: DateTime<Utc>) -> DeliveryStatus {
        with_courier(
            current_status(&s.delivery_status, s.trouble_status.as_deref(), table, at),
            s.courier_name.as_deref(),
            s.courier_tracking_number.as_deref(),
            s.courier_tracking_site_link.as_deref(),
            s.courier_site.as_deref(),
        )
    }

    fn parse_rows<T: serde::de::DeserializeOwned>(body: &[u8]) -> serde_json::Result<Vec<T>> {
        serde_json::from_slice::<OneOrMany<T>>(body).map(OneOrMany::into_vec)
    }

    fn json_of<T: Serialize>(value: &T) -> String {
        serde_json::to_string(value).unwrap()
    }

    /// `fixture` with `from` replaced by `to`, asserting `from` is there.
    fn deviate(fixture: &str, from: &str, to: &str) -> String {
        assert!(fixture.contains(from), "fixture lacks {from}");
        fixture.replacen(from, to, 1)
    }

    /// The COD fixture as this adapter writes it. Two documented deviations: the full name
    /// goes into `firstName` with `lastName` "" (P's practice), and the model has no separate
    /// house number, so the street line is `addressText` as a whole.
    fn expected_cod_body() -> String {
        let body = deviate(
            CREATE_COD_IT,
            r#""firstName":"Giulia","lastName":"Rossi""#,
            r#""firstName":"Giulia Rossi","lastName":"""#,
        );
        deviate(
            &body,
            r#""houseNumber":"12","addressText":"Via Roma""#,
            r#""addressText":"Via Roma 12""#,
        )
    }

    #[test]
    fn cod_italy_fixture() {
        let body = create_body(&cod_order(), &cod_waybill(), &WireDefaults::default()).unwrap();
        assert_eq!(json_of(&body), expected_cod_body());
    }

    #[test]
    fn prepaid_packomat_fixture() {
        let body =
            create_body(&packomat_order(), &Waybill::new(), &WireDefaults::default()).unwrap();
        // Only deviation: `lastName` is always sent, as "" (P's practice).
        let expected = deviate(
            CREATE_PREPAID_PACKOMAT,
            r#""firstName":"Jan Nowak","#,
            r#""firstName":"Jan Nowak","lastName":"","#,
        );
        assert_eq!(json_of(&body), expected);
    }

    #[test]
    fn update_body_is_create_plus_tracking_number() {
        let create = create_body(&cod_order(), &cod_waybill(), &WireDefaults::default()).unwrap();
        let update = UpdateOrderBody {
            order: create,
            tracking_number: "WH0000653702".into(),
        };
        let create_json = expected_cod_body();
        let expected = format!(
            "{},\"trackingNumber\":\"WH0000653702\"}}",
            create_json.strip_suffix('}').unwrap()
        );
        assert_eq!(json_of(&update), expected);
    }

    #[test]
    fn cancel_body_fixture() {
        let body = CancelOrderBody {
            tracking_number: "WH0000653702".into(),
            order_number: "SO-1001".into(),
            source_order_id: String::new(),
            comment: "customer cancelled".into(),
        };
        assert_eq!(json_of(&body), CANCEL);
        let empty = CancelOrderBody {
            tracking_number: "WH1".into(),
            order_number: "SO-1".into(),
            source_order_id: String::new(),
            comment: String::new(),
        };
        assert_eq!(
            json_of(&empty),
            r#"{"trackingNumber":"WH1","orderNumber":"SO-1","sourceOrderId":"","comment":""}"#
        );
    }

    #[test]
    fn amounts_are_exact_text() {
        let cases = [
            ("24.5", "24.5"),
            ("24.50", "24.5"),
            ("59.00", "59.0"),
            ("59", "59"),
            ("19.9", "19.9"),
            ("0.1", "0.1"),
            ("0.07", "0.07"),
            ("1234567.89", "1234567.89"),
            ("0", "0"),
            ("0.00", "0.0"),
            ("-0.00", "0.0"),
            ("0.005", "0.01"),
            ("0.015", "0.02"),
            ("2.675", "2.68"),
            ("2.674999", "2.67"),
            ("-1.005", "-1.01"),
            ("9999999999999.99", "9999999999999.99"),
            ("0.30000000000000004", "0.3"),
        ];
        for (input, text) in cases {
            let amount = Amount(dec(input));
            assert_eq!(amount.json_text(), text, "{input}");
            assert_eq!(json_of(&amount), text, "{input}");
        }
    }

    #[test]
    fn an_amount_that_cannot_be_exact_is_refused() {
        let huge = Amount(dec("12345678901234567.25"));
        let err = serde_json::to_string(&huge).unwrap_err();
        assert!(
            err.to_string().contains("cannot be written exactly"),
            "{err}"
        );
        let mut order = cod_order();
        order.lines[0].unit_price = huge.0;
        let body = create_body(&order, &Waybill::new(), &WireDefaults::default()).unwrap();
        assert!(serde_json::to_vec(&body).is_err());
    }

    #[test]
    fn body_with_awkward_amounts_is_exact() {
        let mut order = cod_order();
        order.lines = vec![
            line("A", 1, "0.1"),
            line("B", 3, "0.07"),
            line("C", 1, "1234567.89"),
            line("D", 1, "19.90"),
        ];
        order.payment = Payment::CashOnDelivery {
            amount: dec("1234568.20"),
        };
        let body = create_body(&order, &Waybill::new(), &WireDefaults::default()).unwrap();
        let text = json_of(&body);
        let expected = concat!(
            r#"{"orderNumber":"SO-1001","#,
            r#""product":{"name":"A","quantity":1,"price":0.1,"unitPriceForInvoice":0.1},"#,
            r#""additionalProducts":["#,
            r#"{"name":"B","quantity":3,"price":0.07,"unitPriceForInvoice":0.07},"#,
            r#"{"name":"C","quantity":1,"price":1234567.89,"unitPriceForInvoice":1234567.89},"#,
            r#"{"name":"D","quantity":1,"price":19.9,"unitPriceForInvoice":19.9}],"#,
            r#""cashOnDelivery":1234568.2,"receiver":"#
        );
        assert!(text.starts_with(expected), "{text}");
    }

    #[test]
    fn prepaid_sends_zero_prices_and_invoice_prices() {
        let mut order = cod_order();
        order.payment = Payment::Prepaid;
        let body = create_body(&order, &Waybill::new(), &WireDefaults::default()).unwrap();
        assert_eq!(body.cash_on_delivery, Amount(Decimal::ZERO));
        let value = serde_json::to_value(&body).unwrap();
        assert_eq!(value["cashOnDelivery"], json!(0));
        assert_eq!(value["product"]["price"], json!(0));
        assert_eq!(value["product"]["unitPriceForInvoice"], json!(24.5));
        assert_eq!(value["additionalProducts"][0]["price"], json!(0));
        assert_eq!(
            value["additionalProducts"][0]["unitPriceForInvoice"],
            json!(10.0)
        );
        // A COD of zero is sent like prepaid, so Wapi does not collect the price-based sum.
        order.payment = Payment::CashOnDelivery {
            amount: Decimal::ZERO,
        };
        let zero_cod = create_body(&order, &Waybill::new(), &WireDefaults::default()).unwrap();
        assert_eq!(zero_cod, body);
    }

    #[test]
    fn single_line_has_no_additional_products() {
        let mut order = cod_order();
        order.lines.truncate(1);
        let value = serde_json::to_value(
            create_body(&order, &Waybill::new(), &WireDefaults::default()).unwrap(),
        )
        .unwrap();
        assert!(value.get("additionalProducts").is_none());
        assert!(value.get("isSelfCollect").is_none());
        assert!(value.get("comment").is_none());
    }

    #[test]
    fn receiver_mapping() {
        let mut order = cod_order();
        order.address.lines = vec![
            " Carrer de Mallorca 401 ".into(),
            "".into(),
            "3º 2ª".into(),
            "Escalera B".into(),
        ];
        order.address.postcode = "08002".into();
        order.customer.email = Some("  ".into());
        let body = create_body(&order, &Waybill::new(), &WireDefaults::default()).unwrap();
        let r = &body.receiver;
        assert_eq!(r.first_name, "Giulia Rossi");
        assert_eq!(r.last_name, "");
        assert_eq!(r.phone_number, "+393401234567");
        assert_eq!(r.email_address, None);
        assert_eq!(r.house_number, None);
        assert_eq!(r.address_text, "Carrer de Mallorca 401");
        assert_eq!(r.address_additional_info, "3º 2ª, Escalera B");
        let value = serde_json::to_value(&body).unwrap();
        assert_eq!(value["receiver"]["zipCode"], json!("08002"));
    }

    #[test]
    fn instance_defaults_and_waybill_options() {
        // Inpost courier variant of §4: whCode PLWH1, mandatory, courierService Inpost.
        let config = WireDefaults {
            warehouse: Some(("PLWH1".into(), true)),
            courier_service: Some("Inpost".into()),
        };
        let mut order = packomat_order();
        order.address.pickup_point_id = None;
        let body = create_body(&order, &Waybill::new(), &config).unwrap();
        let text = json_of(&body);
        assert!(
            text.ends_with(
                r#""whCode":"PLWH1","whCodeAsMandatory":"true","courierService":"Inpost"}"#
            ),
            "{text}"
        );
        assert!(!text.contains("isSelfCollect"));

        let config = WireDefaults {
            warehouse: Some(("ITWH6".into(), false)),
            courier_service: Some("SDA".into()),
        };
        let waybill = Waybill::new()
            .with(COURIER_SERVICE, "DPD PL")
            .with(CHECK_BEFORE_COD, true)
            .with(PREFERRED_DELIVERY_DAY_PART, "evening");
        let value =
            serde_json::to_value(create_body(&cod_order(), &waybill, &config).unwrap()).unwrap();
        assert_eq!(value["whCode"], json!("ITWH6"));
        assert_eq!(value["whCodeAsMandatory"], json!("false"));
        assert_eq!(value["courierService"], json!("DPD PL"), "waybill wins");
        assert_eq!(value["checkBeforeCOD"], json!(true));
        assert_eq!(value["preferredDeliveryDayPart"], json!("evening"));

        // Null or empty waybill values fall back to the instance's.
        let waybill = Waybill::new().with(COURIER_SERVICE, "");
        let body = create_body(&cod_order(), &waybill, &config).unwrap();
        assert_eq!(body.courier_service.as_deref(), Some("SDA"));
    }

    #[test]
    fn empty_cart_and_bad_waybill_values_are_validation_errors() {
        let mut order = cod_order();
        order.lines.clear();
        let err = create_body(&order, &Waybill::new(), &WireDefaults::default()).unwrap_err();
        assert!(matches!(err, Error::Validation { .. }), "{err:?}");
        assert_eq!(err.field_errors()[0].path, "lines");

        let waybill = Waybill::new()
            .with(PREFERRED_DELIVERY_DATE, "2024-02-30")
            .with(PREFERRED_DELIVERY_DAY_PART, "night")
            .with(CHECK_BEFORE_COD, "yes")
            .with(COURIER_SERVICE, 7)
            .with(COMMENT, "x".repeat(COMMENT_MAX_CHARS + 1));
        let err = create_body(&cod_order(), &waybill, &WireDefaults::default()).unwrap_err();
        let paths: Vec<&str> = err.field_errors().iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "waybill.values.preferred_delivery_date",
                "waybill.values.preferred_delivery_day_part",
                "waybill.values.check_before_cod",
                "waybill.values.courier_service",
                "waybill.values.comment",
            ]
        );
        let ok = Waybill::new().with(COMMENT, "x".repeat(COMMENT_MAX_CHARS));
        assert!(create_body(&cod_order(), &ok, &WireDefaults::default()).is_ok());
    }

    #[test]
    fn waybill_form_declares_the_keys_create_body_reads() {
        let form = waybill_form(&[]).unwrap();
        let keys: Vec<&str> = form.fields.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                PREFERRED_DELIVERY_DATE,
                PREFERRED_DELIVERY_DAY_PART,
                CHECK_BEFORE_COD,
                COMMENT
            ]
        );
        form.validate(&cod_waybill()).unwrap();
        assert!(
            form.validate(&Waybill::new().with(COURIER_SERVICE, "SDA"))
                .is_err()
        );
        assert!(
            form.validate(&Waybill::new().with(PREFERRED_DELIVERY_DAY_PART, "night"))
                .is_err()
        );

        let form = waybill_form(&["SDA".to_string(), "DPD PL".to_string()]).unwrap();
        let courier = form.field(COURIER_SERVICE).unwrap();
        assert_eq!(
            courier.kind,
            FieldKind::Select {
                options: vec![SelectOption::plain("SDA"), SelectOption::plain("DPD PL")]
            }
        );
        assert_eq!(
            form.field(COMMENT).unwrap().kind,
            FieldKind::Text {
                max_len: Some(COMMENT_MAX_CHARS)
            }
        );
        form.validate(
            &Waybill::new()
                .with(COURIER_SERVICE, "DPD PL")
                .with(CHECK_BEFORE_COD, false),
        )
        .unwrap();
        assert!(
            form.validate(&Waybill::new().with(COURIER_SERVICE, "UPS"))
                .is_err()
        );
    }

    #[test]
    fn tracking_request_and_signed_vector() {
        let request = tracking_request(&["WH0000653702", "WH0000653703"]);
        assert_eq!(json_of(&request), TRACKING_REQUEST);
        // Row 1 of the §2 signing vectors.
        assert_eq!(
            json_of(&tracking_request(&["WH0000000024"])),
            r#"{"trackingNumbers":["WH0000000024"]}"#
        );
    }

    #[test]
    fn create_reply() {
        let reply: CreatedResponse =
            serde_json::from_str(r#"{"trackingNumber":"WH0000653702"}"#).unwrap();
        assert_eq!(reply.tracking_number, "WH0000653702");
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 5, 8, 0, 0).unwrap()
    }

    #[test]
    fn tracking_reply_maps_to_current_statuses() {
        let reply: TrackingResponse = serde_json::from_str(TRACKING_REPLY).unwrap();
        assert_eq!(reply.statuses.len(), 2);
        let table = status_table();

        let first = &reply.statuses[0];
        assert_eq!(first.tracking_number, "WH0000653702");
        let status = map_tracking(first, &table, now());
        assert_eq!(status.code, StatusCode::Pending);
        assert_eq!(status.problem, Some(Problem::RecipientAbsent));
        assert_eq!(status.original, "InTransit");
        assert_eq!(status.at, now());
        assert_eq!(status.carrier.as_deref(), Some("SDA"));
        assert_eq!(
            status.carrier_tracking_number.as_deref(),
            Some("383148H047484")
        );
        assert_eq!(status.tracking_url.as_deref(), Some("https://www.sda.it/"));

        let second = map_tracking(&reply.statuses[1], &table, now());
        assert_eq!(second.code, StatusCode::Registered);
        assert_eq!(second.original, "Pending");
        assert_eq!(second.problem, None);
        assert_eq!(second.carrier, None);
        assert_eq!(second.tracking_url, None);
    }

    #[test]
    fn tracking_reply_is_lenient() {
        let reply: TrackingResponse = serde_json::from_str(
            r#"{"statuses":[{"trackingNumber":"WH1","deliveryStatus":"Delivered","troubleStatus":"CannotLocateConsignee","courierName":null,"courierSite":"https://dpd.pl","extra":{"x":1}}],"more":true}"#,
        )
        .unwrap();
        let status = map_tracking(&reply.statuses[0], &status_table(), now());
        // The stale trouble of a delivered parcel is ignored.
        assert_eq!(status.code, StatusCode::Delivered);
        assert_eq!(status.problem, None);
        assert_eq!(status.tracking_url.as_deref(), Some("https://dpd.pl"));
        let empty: TrackingResponse = serde_json::from_str(r#"{"statuses":null}"#).unwrap();
        assert!(empty.statuses.is_empty());
        let empty: TrackingResponse = serde_json::from_str("{}").unwrap();
        assert!(empty.statuses.is_empty());
        // §7: the top-level trouble counts only on the road.
        let pending: TrackingStatus = serde_json::from_str(
            r#"{"trackingNumber":"WH2","deliveryStatus":"Pending","troubleStatus":"IsRefused"}"#,
        )
        .unwrap();
        let status = map_tracking(&pending, &status_table(), now());
        assert_eq!(
            (status.code, status.problem),
            (StatusCode::Registered, None)
        );
        // Required fields stay required.
        assert!(serde_json::from_str::<TrackingStatus>(r#"{"trackingNumber":"WH3"}"#).is_err());
    }

    #[test]
    fn detailed_reply_maps_to_history() {
        let reply: Vec<DetailedStatus> = serde_json::from_str(DETAILED_REPLY).unwrap();
        assert_eq!(reply.len(), 1);
        let d = &reply[0];
        assert_eq!(d.tracking_number, "WH0000653702");
        let statuses = map_detailed(d, &status_table(), &CommentRules::new(), 0, now()).unwrap();
        assert_eq!(statuses.len(), 2);

        let pending = &statuses[0];
        assert_eq!(pending.code, StatusCode::Registered);
        assert_eq!(pending.original, "Pending");
        assert_eq!(
            pending.at,
            Utc.with_ymd_and_hms(2024, 5, 2, 5, 56, 52).unwrap()
                + chrono::Duration::milliseconds(50)
        );
        assert_eq!(pending.carrier, None);

        let current = &statuses[1];
        assert_eq!(current.code, StatusCode::Pending);
        assert_eq!(current.problem, Some(Problem::RecipientAbsent));
        assert_eq!(current.original, "InTransit");
        assert_eq!(
            current.at,
            Utc.with_ymd_and_hms(2024, 5, 4, 13, 48, 0).unwrap()
        );
        assert_eq!(current.carrier.as_deref(), Some("SDA"));
        assert_eq!(
            current.carrier_tracking_number.as_deref(),
            Some("383148H047484")
        );
        assert_eq!(current.tracking_url, None);

        // With an instance offset of +02:00 every instant moves two hours earlier.
        let shifted = map_detailed(d, &status_table(), &CommentRules::new(), 7200, now()).unwrap();
        assert_eq!(
            shifted[1].at,
            Utc.with_ymd_and_hms(2024, 5, 4, 11, 48, 0).unwrap()
        );
    }

    /// Parsed from text, as the adapter does (the texts borrow from it): leaked, which a
    /// test can afford.
    fn detailed(json: serde_json::Value) -> DetailedStatus<'static> {
        serde_json::from_str(Box::leak(json.to_string().into_boxed_str())).unwrap()
    }

    #[test]
    fn detailed_texts_with_escapes_are_read_whole() {
        // Borrowed where possible, copied where JSON escapes make the text differ from the
        // bytes: both must read the same.
        let body = br#"[{"trackingNumber":"WH\u0031","deliveryStatus":"In\u0020Transit",
            "courierName":"S\"DA","statusHistory":[
            {"statusDate":"2024-05-02T08:00:00","statusName":"Consegna \"prevista\"\n"}]}]"#;
        let details: Vec<DetailedStatus<'_>> = serde_json::from_slice(body).unwrap();
        assert_eq!(details[0].tracking_number, "WH1");
        let statuses = map_detailed(
            &details[0],
            &status_table(),
            &CommentRules::new(),
            0,
            Utc::now(),
        )
        .unwrap();
        assert_eq!(statuses[0].original, "Consegna \"prevista\"");
        let current = statuses.last().unwrap();
        assert_eq!(current.original, "In Transit");
        assert_eq!(current.code, StatusCode::InTransit);
        assert_eq!(current.carrier.as_deref(), Some("S\"DA"));
    }

    #[test]
    fn detailed_without_history_uses_the_current_status() {
        let d = detailed(json!({
            "trackingNumber": "WH1", "deliveryStatus": "InTransit",
            "troubleStatus": "IsRefused", "statusHistory": null,
            "courierName": "DPD PL", "courierTrackingSiteLink": "https://tracktrace.dpd.com.pl/x"
        }));
        let statuses = map_detailed(&d, &status_table(), &CommentRules::new(), 0, now()).unwrap();
        assert_eq!(statuses.len(), 1);
        let s = &statuses[0];
        assert_eq!((s.code, s.at), (StatusCode::Returned, now()));
        assert_eq!(s.problem, Some(Problem::Refused));
        assert_eq!(s.carrier.as_deref(), Some("DPD PL"));
        assert_eq!(
            s.tracking_url.as_deref(),
            Some("https://tracktrace.dpd.com.pl/x")
        );

        let bare = detailed(json!({"trackingNumber": "WH2", "deliveryStatus": "Boh"}));
        let statuses =
            map_detailed(&bare, &status_table(), &CommentRules::new(), 0, now()).unwrap();
        assert_eq!(statuses.len(), 1);
        assert_eq!(statuses[0].code, StatusCode::Unknown);
        assert_eq!(statuses[0].original, "Boh");
    }

    #[test]
    fn detailed_history_is_sorted_and_ends_with_the_current_status() {
        let d = detailed(json!({
            "trackingNumber": "WH1", "deliveryStatus": "Delivered",
            "troubleStatus": "CannotLocateConsignee", "courierName": "SDA",
            "statusHistory": [
                {"statusDate": "2024-05-04T13:48:00", "statusName": "InTransit",
                 "troubleStatus": "CannotLocateConsignee1"},
                {"statusDate": "2024-05-02T05:56:52", "statusName": "Assigned to partner"}
            ]
        }));
        let statuses = map_detailed(&d, &status_table(), &CommentRules::new(), 0, now()).unwrap();
        let summary: Vec<_> = statuses
            .iter()
            .map(|s| (s.code, s.original.as_str(), s.problem.clone()))
            .collect();
        assert_eq!(
            summary,
            [
                (StatusCode::Accepted, "Assigned to partner", None),
                (
                    StatusCode::Pending,
                    "InTransit",
                    Some(Problem::AddressNotFound)
                ),
                (StatusCode::Delivered, "Delivered", None),
            ]
        );
        assert_eq!(statuses[2].at, now());
        assert_eq!(statuses[2].carrier.as_deref(), Some("SDA"));
        assert_eq!(statuses[1].carrier, None);

        // The appended current status is never stamped before the last history entry.
        let early = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        let statuses = map_detailed(&d, &status_table(), &CommentRules::new(), 0, early).unwrap();
        assert_eq!(
            statuses[2].at,
            Utc.with_ymd_and_hms(2024, 5, 4, 13, 48, 0).unwrap()
        );
    }

    #[test]
    fn detailed_with_a_bad_date_is_an_error() {
        for entry in [
            json!({"statusDate": "04.05.2024 13:48", "statusName": "InTransit"}),
            json!({"statusDate": null, "statusName": "InTransit"}),
            json!({"statusName": "InTransit"}),
        ] {
            let d = detailed(json!({
                "trackingNumber": "WH1", "deliveryStatus": "InTransit", "statusHistory": [entry]
            }));
            let err =
                map_detailed(&d, &status_table(), &CommentRules::new(), 0, now()).unwrap_err();
            assert!(matches!(err, Error::Protocol { .. }), "{err:?}");
        }
    }

    #[test]
    fn status_dates() {
        let base = Utc.with_ymd_and_hms(2022, 5, 2, 5, 56, 52).unwrap();
        let ns = |n: i64| base + chrono::Duration::nanoseconds(n);
        let cases = [
            ("2022-05-02T05:56:52", 0, ns(0)),
            ("2022-05-02T05:56:52.05", 0, ns(50_000_000)),
            ("2022-05-02T05:56:52.0512345", 0, ns(51_234_500)),
            ("2022-05-02T05:56:52.1", 0, ns(100_000_000)),
            (" 2022-05-02T05:56:52 ", 0, ns(0)),
            ("2022-05-02T07:56:52", 7200, ns(0)),
            ("2022-05-02T04:56:52.05", -3600, ns(50_000_000)),
            // An explicit offset wins over the instance's.
            ("2022-05-02T07:56:52+02:00", -3600, ns(0)),
            ("2022-05-02T05:56:52.05Z", 3600, ns(50_000_000)),
        ];
        for (text, offset, expected) in cases {
            assert_eq!(parse_status_date(text, offset).unwrap(), expected, "{text}");
        }
        for bad in [
            "",
            "yesterday",
            "2022-05-02",
            "2022-13-02T05:56:52",
            "2022-02-30T05:56:52",
            "2022-05-02T25:56:52",
            "2022-05-02T05:56:52.",
            "2022-05-02T05:56:52.05123456",
            "2022-05-02T05:56:52.0a",
            "2022-05-02T05:56:52.-5",
            "2022-05-02 05:56:52",
            "2022-05-02T05:56:52.05.1",
            "ł2022-05-02T05:56:52",
        ] {
            let err = parse_status_date(bad, 0).unwrap_err();
            assert!(matches!(err, Error::Protocol { .. }), "{bad}: {err:?}");
        }
        assert!(parse_status_date("2022-05-02T05:56:52", 86_400).is_err());
        assert!(parse_status_date("2022-05-02T05:56:52", i32::MIN).is_err());
    }

    #[test]
    fn stock_v1() {
        let request = StockRequestV2 {
            country: Some("IT".into()),
            product_name: Some("Demo Product-1".into()),
            warehouse_name: None,
        };
        assert_eq!(json_of(&request), STOCK_V1_REQUEST);
        assert_eq!(json_of(&StockRequestV2::default()), "{}");

        let rows: Vec<StockRowV1> = parse_rows(STOCK_V1_REPLY.as_bytes()).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            rows[0].to_stock_level(),
            StockLevel::new("Demo Product-1", 42)
        );

        let many = r#"[{"country":"IT","productName":"Demo Product-1","reminderQuantity":-398},
                       {"productName":"Demo Product-2","reminderQuantity":0}]"#;
        let levels: Vec<StockLevel> = parse_rows::<StockRowV1>(many.as_bytes())
            .unwrap()
            .iter()
            .map(StockRowV1::to_stock_level)
            .collect();
        assert_eq!(
            levels,
            [
                StockLevel::new("Demo Product-1", -398),
                StockLevel::new("Demo Product-2", 0)
            ]
        );
    }

    #[test]
    fn stock_v2() {
        let request = StockRequestV2 {
            country: Some("Italy".into()),
            product_name: Some("Demo Product-1".into()),
            warehouse_name: Some("ITWH2".into()),
        };
        assert_eq!(json_of(&request), STOCK_V2_REQUEST);

        let expected = StockLevel {
            sku: "Demo Product-1".into(),
            warehouse: Some("ITWH2".into()),
            available: 42,
            reserved: Some(8),
            in_transit: Some(5),
        };
        let one: Vec<StockRowV2> = parse_rows(STOCK_V2_REPLY.as_bytes()).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].remaining_quantity, Some(50));
        assert_eq!(one[0].returning_quantity, Some(1));
        assert_eq!(one[0].to_stock_level(), expected);

        let array = format!("[{STOCK_V2_REPLY}]");
        let many: Vec<StockRowV2> = parse_rows(array.as_bytes()).unwrap();
        assert_eq!(many[0].to_stock_level(), expected);

        let sparse: Vec<StockRowV2> =
            parse_rows(br#"{"productName":"X","availableQuantity":3,"reservedQuantity":null}"#)
                .unwrap();
        assert_eq!(sparse[0].to_stock_level(), StockLevel::new("X", 3));

        for bad in [&b"{\"productName\":\"X\"}"[..], b"42", b"not json", b""] {
            assert!(parse_rows::<StockRowV2>(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn pickup_points() {
        let query = AddressQuery::in_country("PL")
            .with_city("Warszawa")
            .with_text("WAW")
            .with_limit(20);
        let query = AddressQuery {
            postcode: Some("00-001".into()),
            ..query
        };
        let request = PickupPointSearch {
            carrier: Some("Inpost".into()),
            ..PickupPointSearch::from_query(&query)
        };
        assert_eq!(json_of(&request), POINTS_REQUEST);
        let minimal = PickupPointSearch::from_query(&AddressQuery::in_country("PL"));
        assert_eq!(json_of(&minimal), r#"{"country":"PL"}"#);

        let reply: PickupPointsResponse = serde_json::from_str(POINTS_REPLY).unwrap();
        let options = reply.to_options();
        assert_eq!(
            options,
            [AddressOption {
                id: "WAW01A".into(),
                kind: AddressKind::Locker,
                label: "Paczkomat WAW01A".into(),
                address: Address {
                    country: "PL".into(),
                    region: None,
                    city: "Warszawa".into(),
                    postcode: "00-001".into(),
                    lines: vec!["ul. Prosta 1".into()],
                    provider_address_id: None,
                    pickup_point_id: None,
                },
                carrier: Some("Inpost".into()),
                opening_hours: Some(OpeningHours {
                    note: Some("24/7".into()),
                    ..OpeningHours::default()
                }),
            }]
        );
        // The locker's order address leads back to `selfCollectPointName`.
        assert_eq!(
            options[0].to_address().pickup_point_id.as_deref(),
            Some("WAW01A")
        );

        let other: PickupPointsResponse = serde_json::from_str(
            r#"{"points":[{"code":"P1","carrier":"DPD PL","city":null,"openingHours":null}]}"#,
        )
        .unwrap();
        let option = other.points[0].to_address_option();
        assert_eq!(option.kind, AddressKind::PickupPoint);
        assert_eq!(option.label, "P1");
        assert!(option.address.lines.is_empty());
        assert_eq!(option.opening_hours, None);
        let none: PickupPointsResponse = serde_json::from_str(r#"{"points":null}"#).unwrap();
        assert!(none.points.is_empty());
    }

    #[test]
    fn error_texts() {
        let long = "é".repeat(ERROR_TEXT_MAX_CHARS + 100);
        let long_json = format!(r#"{{"Error":"{long}"}}"#);
        let cases: Vec<(&[u8], String)> = vec![
            (br#"{"Error":"x"}"#, "x".into()),
            (br#"{"error":"x"}"#, "x".into()),
            (br#"{"ERROR":" x "}"#, "x".into()),
            (
                br#"{"Error": "Internal server error"}"#,
                "Internal server error".into(),
            ),
            (br#"{"message":"m"}"#, "m".into()),
            (br#"{"title":"t","detail":"d"}"#, "t".into()),
            (br#"{"message":"m","error":"e"}"#, "e".into()),
            (br#"{"error":null,"message":"m"}"#, "m".into()),
            (br#"{"error":{"code":7}}"#, r#"{"code":7}"#.into()),
            (br#"{"other":"o"}"#, r#"{"other":"o"}"#.into()),
            (br#""plain string""#, "plain string".into()),
            (b"  Bad Request \n", "Bad Request".into()),
            (b"<html>oops</html>", "<html>oops</html>".into()),
            (
                br#"{ "The order with number 'WH0000261906' has been updated successfully" }"#,
                r#"{ "The order with number 'WH0000261906' has been updated successfully" }"#
                    .into(),
            ),
            (b"\xEF\xBB\xBF{\"error\":\"bom\"}", "bom".into()),
            (b"bad \xFF byte", "bad \u{FFFD} byte".into()),
            (b"", String::new()),
            (b"[1,2]", "[1,2]".into()),
        ];
        for (body, expected) in cases {
            assert_eq!(
                error_text(body),
                expected,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        for body in [long.as_bytes(), long_json.as_bytes()] {
            let text = error_text(body);
            assert_eq!(text.chars().count(), ERROR_TEXT_MAX_CHARS);
            assert!(text.chars().all(|c| c == 'é'));
        }
    }

    #[test]
    fn update_refusals() {
        let cases = [
            (
                r#"{"error": "This order cannot be edited anymore!"}"#,
                Some(UpdateRefusal::CannotBeEdited),
            ),
            (
                r#"{"error": "This order has critical incident opened. Please resolve incident before order update."}"#,
                Some(UpdateRefusal::CriticalIncident),
            ),
            (
                r#"{"error": "The data you have provided brings no changes. Please check and try again!"}"#,
                Some(UpdateRefusal::NoChanges),
            ),
            (
                r#"{"error":"  This order cannot be edited anymore!  "}"#,
                Some(UpdateRefusal::CannotBeEdited),
            ),
            (
                r#"{"error":"Order WH1 Cannot Be Edited at this stage"}"#,
                Some(UpdateRefusal::CannotBeEdited),
            ),
            (
                "This order cannot be edited anymore!",
                Some(UpdateRefusal::CannotBeEdited),
            ),
            (
                r#"{"error":"This order has critical incident opened."}"#,
                None,
            ),
            (r#"{"error":"brings no changes"}"#, None),
            (r#"{"Error":"Internal server error"}"#, None),
            ("", None),
        ];
        for (body, expected) in cases {
            assert_eq!(
                classify_update_refusal(&error_text(body.as_bytes())),
                expected,
                "{body}"
            );
        }
    }
}

/// Hostile input (issue 10, part 4): arbitrary bytes, arbitrary JSON and hostile bodies to
/// every Wapi reply parser. None may panic; the decode-and-map paths end in `Ok` or a typed
/// error.
#[cfg(test)]
mod hostile {
    use chrono::{DateTime, Utc};
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::super::status::status_table;
    use super::*;
    use crate::provider::hostile_tests::{
        DEEP, arb_bytes, arb_date_text, arb_instant, arb_json, arb_offset, arb_text, assert_typed,
        client, config, hostile_bodies, is_recursion_limit,
    };

    /// The tracking path of the adapter: decode the `getDetailedOrderStatus` reply, then map
    /// every entry.
    fn track(body: &[u8], offset: i32, now: DateTime<Utc>) -> Result<Vec<Vec<DeliveryStatus>>> {
        let details: Vec<DetailedStatus> = serde_json::from_slice(body)
            .map_err(|e| Error::protocol(format!("does not parse: {e}")))?;
        details
            .iter()
            .map(|d| map_detailed(d, &status_table(), &CommentRules::new(), offset, now))
            .collect()
    }

    /// Every other reply parser of the adapter, each run to the model type it feeds.
    fn parse_all(body: &[u8]) {
        if let Ok(rows) = serde_json::from_slice::<OneOrMany<StockRowV2>>(body) {
            for row in rows.into_vec() {
                let _ = row.to_stock_level();
            }
        }
        if let Ok(rows) = serde_json::from_slice::<OneOrMany<StockRowV1>>(body) {
            for row in rows.into_vec() {
                let _ = row.to_stock_level();
            }
        }
        if let Ok(reply) = serde_json::from_slice::<PickupPointsResponse>(body) {
            for option in reply.to_options() {
                let _ = option.to_address();
            }
        }
        let _ = serde_json::from_slice::<TrackingResponse>(body);
        let _ = serde_json::from_slice::<CreatedResponse>(body);
        let text = error_text(body);
        assert!(text.chars().count() <= ERROR_TEXT_MAX_CHARS);
        assert_eq!(text.trim(), text);
        let _ = classify_update_refusal(&text);
    }

    /// The client's mapping of a refused request with `body`, for every status it
    /// distinguishes: never a panic, and never the secret.
    fn check_errors(body: &[u8]) {
        for status in [400, 401, 404, 429, 500, 599] {
            let response = crate::http::Response {
                status,
                headers: Default::default(),
                body: bytes::Bytes::copy_from_slice(body),
            };
            let err = super::super::client::error_for(client(), "POST /outbounds", &response);
            assert!(!format!("{err} {err:?}").contains("s3cr3t"));
        }
    }

    fn check_track(body: &[u8], offset: i32, now: DateTime<Utc>) {
        match track(body, offset, now) {
            Ok(all) => assert!(all.iter().all(|statuses| !statuses.is_empty())),
            Err(err) => assert_typed(&err),
        }
    }

    /// A `getDetailedOrderStatus` entry whose every field may be wrong: mostly plausible
    /// strings and date-like text, sometimes arbitrary JSON.
    fn arb_detailed() -> impl Strategy<Value = Value> {
        let text = || {
            prop_oneof![
                4 => arb_text().prop_map(Value::String),
                1 => Just(Value::Null),
                1 => arb_json(),
            ]
        };
        let entry = (
            prop_oneof![
                4 => arb_date_text().prop_map(Value::String),
                1 => arb_json(),
            ],
            text(),
            text(),
        )
            .prop_map(|(date, name, trouble)| {
                json!({"statusDate": date, "statusName": name, "troubleStatus": trouble})
            });
        (
            text(),
            text(),
            text(),
            text(),
            prop::collection::vec(entry, 0..6),
        )
            .prop_map(|(number, status, trouble, courier, history)| {
                json!({
                    "trackingNumber": number, "deliveryStatus": status,
                    "troubleStatus": trouble, "courierName": courier,
                    "courierTrackingSiteLink": "https://x", "statusHistory": history
                })
            })
    }

    #[test]
    fn hostile_bodies_give_typed_errors() {
        for (label, body) in hostile_bodies() {
            check_track(&body, 0, Utc::now());
            parse_all(&body);
            check_errors(&body);
            if label.starts_with("deep") {
                let err = track(&body, 0, Utc::now()).unwrap_err();
                assert!(matches!(err, Error::Protocol { .. }), "{label}: {err:?}");
            }
        }
        // The stock reply is untagged (one row or many), so serde buffers it whole before
        // picking a shape: there nesting is refused by the recursion limit.
        let deep = format!("{}{}", "[".repeat(DEEP), "]".repeat(DEEP));
        let err = serde_json::from_slice::<OneOrMany<StockRowV2>>(deep.as_bytes()).unwrap_err();
        assert!(is_recursion_limit(&err), "{err}");
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn arbitrary_bytes(body in arb_bytes(), offset in arb_offset(), now in arb_instant()) {
            check_track(&body, offset, now);
            parse_all(&body);
            check_errors(&body);
        }

        #[test]
        fn arbitrary_json(value in arb_json(), offset in arb_offset(), now in arb_instant()) {
            let body = serde_json::to_vec(&value).unwrap();
            check_track(&body, offset, now);
            check_track(&serde_json::to_vec(&[&value]).unwrap(), offset, now);
            parse_all(&body);
        }

        #[test]
        fn arbitrary_detailed_statuses(
            entries in prop::collection::vec(arb_detailed(), 0..4),
            offset in arb_offset(),
            now in arb_instant(),
        ) {
            check_track(&serde_json::to_vec(&entries).unwrap(), offset, now);
        }

        #[test]
        fn arbitrary_status_dates(text in arb_date_text(), offset in arb_offset()) {
            if let Err(err) = parse_status_date(&text, offset) {
                prop_assert!(matches!(err, Error::Protocol { .. }), "{:?}", err);
                // The message quotes at most a short excerpt of the text.
                prop_assert!(err.to_string().chars().count() < 200);
            }
        }
    }
}
