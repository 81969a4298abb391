//! The SphereWMS v2 wire format: request and response bodies with the field names of the
//! protocol reference ([`protocol`](crate::provider::sphere::protocol)), and the pure functions that map the
//! crate's model onto them and back (order body, dates, shipments, inventory, customers,
//! error bodies).
//!
//! Nothing here does I/O. Authentication, sending, paging and turning HTTP statuses into crate
//! errors live in the client; the status vocabulary lives in `status.rs`. Almost every name
//! here is \[assumed] (the stored API guide stops before the order chapter): each decision is
//! marked on the item that implements it, so that it can be corrected in one place once a
//! real API key shows the real shapes. Field order in the request structs is the order of the
//! §10(c) fixtures, which the tests compare byte for byte.

use std::collections::HashMap;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};
use rust_decimal::Decimal;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Number, Value};

use crate::error::{Error, FieldError, Result};
use crate::model::{
    Address, AddressKind, AddressOption, AddressQuery, DeliveryStatus, FieldKind, Order, Payment,
    SelectOption, StatusTable, StockLevel, Text, Waybill, WaybillField, WaybillForm,
    normalize_phone,
};
pub(crate) use crate::provider::OneOrMany;
use crate::provider::waybill_value;

// ---------------------------------------------------------------------------------------------
// Lenient field readers
// ---------------------------------------------------------------------------------------------

/// Longest excerpt of a bad value quoted in an error message.
const EXCERPT_MAX_CHARS: usize = 40;

fn excerpt(text: &str) -> String {
    text.chars().take(EXCERPT_MAX_CHARS).collect()
}

/// An id: a JSON integer, or a string of digits (ids are integers in the documented
/// adjustments example; a string is accepted in case another endpoint quotes them
/// \[assumed]). `null`, a missing field or `""` read as `None`.
fn lenient_id<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<u64>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("id {n} is not a non-negative integer"))),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| D::Error::custom(format!("id {:?} is not an integer", excerpt(&s)))),
        Some(other) => Err(D::Error::custom(format!("id {other} is not an integer"))),
    }
}

/// A text field that may also arrive as a number (`client_code` is a string in the
/// documented example, but `"100"` looks numeric \[assumed]). `null` or missing read as
/// `None`.
fn lenient_text<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<String>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(D::Error::custom(format!("{other} is not text"))),
    }
}

/// A required text field, with the leniency of [`lenient_text`].
fn required_text<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    lenient_text(d)?.ok_or_else(|| D::Error::custom("a required text is null"))
}

/// A quantity: a JSON integer, an integral number such as `112.0`, or a string of one
/// \[assumed]. `null` or missing read as `None`.
fn lenient_int<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<i64>, D::Error> {
    let bad = |v: &dyn std::fmt::Display| D::Error::custom(format!("{v} is not a whole number"));
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(i) = n.as_i64() {
                return Ok(Some(i));
            }
            // An integral float is exact in i64 range below 2^53, far beyond any quantity.
            match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(f as i64)),
                _ => Err(bad(&n)),
            }
        }
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| bad(&excerpt(&s))),
        Some(other) => Err(bad(&other)),
    }
}

/// A required quantity, with the leniency of [`lenient_int`].
fn required_int<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<i64, D::Error> {
    lenient_int(d)?.ok_or_else(|| D::Error::custom("a required quantity is null"))
}

/// Reads `null` (or a missing field, with `#[serde(default)]`) as the type's default.
fn null_as_default<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The trimmed text, if not blank.
fn non_blank(text: Option<&str>) -> Option<&str> {
    text.map(|t| t.trim_matches(|c: char| c.is_whitespace() || c.is_control()))
        .filter(|t| !t.is_empty())
}

// ---------------------------------------------------------------------------------------------
// Amounts
// ---------------------------------------------------------------------------------------------

/// `amount` as an exact JSON number (protocol §7.1: "decimal as JSON number").
///
/// The decimal is normalized (trailing zeros dropped: `24.50` → `24.5`, `59.00` → `59`) and
/// not rounded: SphereWMS's precision is unknown, and a unit price such as `0.125` is sent as
/// is \[assumed]. The text goes through [`Number::from_str`]; without serde_json's
/// `arbitrary_precision` feature the number is held as an f64 there, so it is accepted only if
/// it prints back as the very same text. `None` when it does not (more than ~15 significant
/// digits): the caller reports a validation error instead of sending a different amount.
/// Sphere keeps this small equivalent of Wapi's `Amount` so that the two providers share no
/// wire code.
pub(crate) fn exact_number(amount: Decimal) -> Option<Number> {
    let text = amount.normalize().to_string();
    let number = Number::from_str(&text).ok()?;
    (number.to_string() == text).then_some(number)
}

// ---------------------------------------------------------------------------------------------
// Waybill form
// ---------------------------------------------------------------------------------------------

/// Waybill key: carrier/service code as configured in the WMS → `ship_via`.
pub const SHIP_VIA: &str = "ship_via";
/// Waybill key: purchase order number → `po_number`.
pub const PO_NUMBER: &str = "po_number";
/// Waybill key: free notes for the warehouse → `notes`.
pub const NOTES: &str = "notes";
/// Waybill key: order date, `YYYY-MM-DD` → `order_date`.
pub const ORDER_DATE: &str = "order_date";

/// The waybill form of SphereWMS: the keys [`order_body`] reads.
///
/// `ship_via` is a select offered only when the instance configures codes (they are set up in
/// the WMS, so free text would only produce refusals); without it the WMS default applies.
/// No length limits are declared: SphereWMS documents none we know of, and it answers a
/// validation error itself \[assumed].
pub(crate) fn waybill_form(ship_via_options: &[String]) -> Result<WaybillForm> {
    let mut fields = Vec::new();
    if !ship_via_options.is_empty() {
        fields.push(
            WaybillField::new(
                SHIP_VIA,
                "Ship via",
                FieldKind::Select {
                    options: ship_via_options
                        .iter()
                        .map(|o| SelectOption::plain(o.clone()))
                        .collect(),
                },
            )
            .with_help("carrier and service code as configured in SphereWMS"),
        );
    }
    fields.push(WaybillField::new(
        PO_NUMBER,
        "PO number",
        FieldKind::Text { max_len: None },
    ));
    fields.push(WaybillField::new(
        NOTES,
        "Notes",
        FieldKind::Text { max_len: None },
    ));
    fields.push(
        WaybillField::new(ORDER_DATE, "Order date", FieldKind::Date)
            .with_help("defaults to the day the order was confirmed"),
    );
    WaybillForm::new(fields)
}

// ---------------------------------------------------------------------------------------------
// Order body
// ---------------------------------------------------------------------------------------------

/// Longest ship-to customer code we generate (§7.1, \[assumed]).
pub(crate) const CUSTOMER_CODE_MAX_CHARS: usize = 20;

/// Top-level keys of [`OrderBody`]; a configured COD field must not reuse one.
pub(crate) const ORDER_BODY_KEYS: &[&str] = &[
    "order_id",
    "client_code",
    "order_number",
    "location_id",
    "customer_code",
    "ship_to",
    "bill_to",
    "ship_via",
    "po_number",
    "order_date",
    "notes",
    "lines",
    "status",
    "created_on",
    "updated_on",
];

/// Instance configuration that shapes every order body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OrderConfig {
    /// `client_code`: the merchant inside the WMS.
    pub(crate) client_code: String,
    /// `location_id`: the inventory account orders ship from.
    pub(crate) location_id: u32,
    /// Prefix of the ship-to customer codes we generate.
    pub(crate) customer_code_prefix: String,
    /// The order field that carries a cash-on-delivery amount; `None` refuses COD orders.
    pub(crate) cod_field: Option<String>,
    /// Seconds east of UTC of the instance's local time (for the default order date).
    pub(crate) utc_offset_secs: i32,
}

/// Body of `POST /orders` and `POST /orders/{order_id}` (protocol §7.1, \[assumed]).
///
/// `street_2`, `street_3` and `po_number` are always sent (`""` when empty), as in the
/// fixture, so that a full-object update clears them; the other optional fields are omitted
/// when there is no value. `bill_to` is never sent (the model has no billing address); the
/// cash-on-delivery amount, when configured, goes last under the configured name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct OrderBody {
    /// `client_code`, from configuration.
    pub(crate) client_code: String,
    /// `order_number`: the host's order id, unique per client, the idempotency key.
    pub(crate) order_number: String,
    /// `location_id`: the inventory account, from configuration.
    pub(crate) location_id: u32,
    /// `customer_code`: the ship-to customer, see [`order_body`].
    pub(crate) customer_code: String,
    /// `ship_to`.
    pub(crate) ship_to: ShipTo,
    /// `ship_via`: carrier/service code from the waybill.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) ship_via: Option<String>,
    /// `po_number`, `""` when none.
    pub(crate) po_number: String,
    /// `order_date`, `YYYY-MM-DD`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) order_date: Option<NaiveDate>,
    /// `notes`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) notes: Option<String>,
    /// `lines`, numbered from 1.
    pub(crate) lines: Vec<OrderLine>,
    /// The configured COD field and its amount, when cash is collected.
    #[serde(flatten)]
    pub(crate) cod: Map<String, Value>,
}

/// The `ship_to` address of an order body (§7.1): `name` and `street_1..3` follow the
/// documented adjustment address; the other names are \[assumed].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ShipTo {
    /// `name`: the recipient's full name.
    pub(crate) name: String,
    /// `street_1`: the first address line.
    pub(crate) street_1: String,
    /// `street_2`: the second line, `""` when none.
    pub(crate) street_2: String,
    /// `street_3`: the remaining lines joined with `", "`, `""` when none.
    pub(crate) street_3: String,
    /// `city`.
    pub(crate) city: String,
    /// `state`: the region, when the order has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) state: Option<String>,
    /// `zip`, as text.
    pub(crate) zip: String,
    /// `country`: ISO alpha-2.
    pub(crate) country: String,
    /// `phone`, normalized (`+16145550101`).
    pub(crate) phone: String,
    /// `email`, when the order has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) email: Option<String>,
}

/// One line of an order body (§7.1).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct OrderLine {
    /// `line_number`, from 1.
    pub(crate) line_number: u32,
    /// `product_code`: the sku, which must exist in the WMS's Product Master.
    pub(crate) product_code: String,
    /// `quantity`.
    pub(crate) quantity: u32,
    /// `unit_price` as an exact JSON number; omitted for a zero price, as the fixture's second
    /// line shows \[assumed]. The cart line's name is not sent: the Product Master has the
    /// description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) unit_price: Option<Number>,
}

/// The ship-to customer code of `order` (§7.1): the directory entry the operator chose
/// (`address.provider_address_id`, a SphereWMS customer code), else `customer_code_prefix` +
/// the order id, which must fit [`CUSTOMER_CODE_MAX_CHARS`] \[assumed: SphereWMS creates the
/// customer from `ship_to`, as CSV uploads do].
fn customer_code(order: &Order, prefix: &str, errors: &mut Vec<FieldError>) -> String {
    if let Some(chosen) = non_blank(order.address.provider_address_id.as_deref()) {
        return chosen.to_owned();
    }
    let code = format!("{prefix}{}", order.id.as_str().trim());
    if code.chars().count() > CUSTOMER_CODE_MAX_CHARS {
        errors.push(FieldError::new(
            "id",
            format!(
                "with the customer code prefix {prefix:?} must be at most \
                 {CUSTOMER_CODE_MAX_CHARS} characters for a sphere customer code"
            ),
        ));
    }
    code
}

/// The body of `POST /orders` (and of an update) for `order` with `waybill` (§7.1).
///
/// - `order_number` is the order id; `client_code` and `location_id` come from `config`;
/// - `customer_code`: see [`customer_code`]; `ship_to` carries the full address so that the
///   WMS can create or refresh that customer;
/// - address lines 1 and 2 go to `street_1` / `street_2`, any further lines joined into
///   `street_3`; the region is `state`; the phone is normalized;
/// - cart lines become `lines` numbered from 1 (`product_code` is the sku);
/// - waybill: `ship_via`, `po_number`, `notes`, `order_date` (else the day the order was
///   confirmed, in the instance's local time, else none);
/// - cash on delivery: refused unless `config.cod_field` names the field to carry the amount
///   (nothing in the sources covers COD at SphereWMS) \[assumed].
///
/// It does not re-run [`Order::validate`] (the caller does).
///
/// # Errors
///
/// [`Error::Validation`] listing every problem: COD without a configured field, a generated
/// customer code over 20 characters, an amount that cannot be written exactly, a waybill value
/// of the wrong type.
pub(crate) fn order_body(
    order: &Order,
    waybill: &Waybill,
    config: &OrderConfig,
) -> Result<OrderBody> {
    let mut errors = Vec::new();
    let mut cod = Map::new();
    if let Payment::CashOnDelivery { amount } = &order.payment {
        match &config.cod_field {
            None => errors.push(FieldError::new(
                "payment",
                "cash on delivery is not supported by this sphere instance (no COD field \
                 configured)",
            )),
            Some(field) => match exact_number(*amount) {
                Some(number) => {
                    cod.insert(field.clone(), Value::Number(number));
                }
                None => errors.push(FieldError::new(
                    "payment.amount",
                    "cannot be written exactly as a JSON number",
                )),
            },
        }
    }
    let customer_code = customer_code(order, &config.customer_code_prefix, &mut errors);

    let text = |v: &Value| v.as_str().map(|s| s.trim().to_owned());
    let ship_via = waybill_value(waybill, SHIP_VIA, "must be text", &mut errors, text);
    let po_number = waybill_value(waybill, PO_NUMBER, "must be text", &mut errors, text);
    let notes = waybill_value(waybill, NOTES, "must be text", &mut errors, text);
    let order_date = waybill_value(
        waybill,
        ORDER_DATE,
        "must be a date YYYY-MM-DD",
        &mut errors,
        |_| waybill.date(ORDER_DATE),
    )
    .or_else(|| {
        // Checked: a confirmation time at the edge of what dates can hold must not panic
        // when shifted to local time.
        let offset = chrono::TimeDelta::try_seconds(i64::from(config.utc_offset_secs))?;
        let local = order.confirmed_at?.naive_utc().checked_add_signed(offset)?;
        Some(local.date())
    });

    let mut lines = Vec::with_capacity(order.lines.len());
    for (i, line) in order.lines.iter().enumerate() {
        let unit_price = if line.unit_price.is_zero() {
            None
        } else {
            let number = exact_number(line.unit_price);
            if number.is_none() {
                errors.push(FieldError::new(
                    format!("lines[{i}].unit_price"),
                    "cannot be written exactly as a JSON number",
                ));
            }
            number
        };
        lines.push(OrderLine {
            line_number: u32::try_from(i + 1).unwrap_or(u32::MAX),
            product_code: line.sku.as_str().trim().to_owned(),
            quantity: line.quantity,
            unit_price,
        });
    }
    if lines.is_empty() {
        errors.push(FieldError::new("lines", "the cart must not be empty"));
    }
    if !errors.is_empty() {
        return Err(Error::validation(format!("order {}", order.id), errors));
    }

    let address = &order.address;
    let mut street = address
        .lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty());
    let street_1 = street.next().unwrap_or_default().to_owned();
    let street_2 = street.next().unwrap_or_default().to_owned();
    let street_3 = street.collect::<Vec<_>>().join(", ");
    let ship_to = ShipTo {
        name: order.customer.name.trim().to_owned(),
        street_1,
        street_2,
        street_3,
        city: address.city.trim().to_owned(),
        state: non_blank(address.region.as_deref()).map(str::to_owned),
        zip: address.postcode.trim().to_owned(),
        country: address.country.trim().to_owned(),
        phone: normalize_phone(&order.customer.phone),
        email: non_blank(order.customer.email.as_deref()).map(str::to_owned),
    };
    Ok(OrderBody {
        client_code: config.client_code.clone(),
        order_number: order.id.as_str().to_owned(),
        location_id: config.location_id,
        customer_code,
        ship_to,
        ship_via,
        po_number: po_number.unwrap_or_default(),
        order_date,
        notes,
        lines,
        cod,
    })
}

// ---------------------------------------------------------------------------------------------
// Orders in replies
// ---------------------------------------------------------------------------------------------

/// An order as SphereWMS returns it from create, read, update and "find our order" (§7.1).
/// Only the fields the adapter reads are declared; all are optional so that a sparse reply
/// (a create answering only `order_id`) still parses.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct OrderRow {
    /// `order_id`: SphereWMS's id, the provider reference.
    #[serde(default, deserialize_with = "lenient_id")]
    pub(crate) order_id: Option<u64>,
    /// `order_number`: our order id.
    #[serde(default, deserialize_with = "lenient_text")]
    pub(crate) order_number: Option<String>,
    /// `client_code`.
    #[serde(default, deserialize_with = "lenient_text")]
    pub(crate) client_code: Option<String>,
    /// `status` (§10).
    #[serde(default, deserialize_with = "lenient_text")]
    pub(crate) status: Option<String>,
    /// `created_on`, compact or ISO.
    #[serde(default, deserialize_with = "lenient_text")]
    pub(crate) created_on: Option<String>,
    /// `updated_on`, compact or ISO.
    #[serde(default, deserialize_with = "lenient_text")]
    pub(crate) updated_on: Option<String>,
}

impl OrderRow {
    /// The raw status, if not blank.
    pub(crate) fn status(&self) -> Option<&str> {
        non_blank(self.status.as_deref())
    }

    /// Whether this row is our order `order_number` of `client_code`: the number matches
    /// exactly (trimmed) and the client, when the row names one, is ours. Filtering locally
    /// keeps a server that ignores a query filter from handing us someone else's order.
    pub(crate) fn is_order(&self, order_number: &str, client_code: &str) -> bool {
        non_blank(self.order_number.as_deref()) == Some(order_number.trim())
            && non_blank(self.client_code.as_deref()).is_none_or(|c| c == client_code.trim())
    }

    /// When the status was last set: `updated_on`, else `created_on` (see
    /// [`parse_date_time`]). An unreadable date is skipped with a warning rather than failing
    /// a create that succeeded or a whole tracking batch \[assumed].
    pub(crate) fn status_time(&self, utc_offset_secs: i32) -> Option<DateTime<Utc>> {
        [&self.updated_on, &self.created_on]
            .into_iter()
            .filter_map(|t| non_blank(t.as_deref()))
            .find_map(|text| match parse_date_time(text, utc_offset_secs) {
                Ok(at) => Some(at),
                Err(error) => {
                    tracing::warn!(%error, "sphere order date skipped");
                    None
                }
            })
    }
}

/// The one order to reuse among `rows` that are all ours (same order number): one that is not
/// voided if there is one, then the lowest `order_id` (the first created). Rows without an
/// `order_id` cannot be addressed and are ignored.
pub(crate) fn pick_existing(rows: Vec<OrderRow>) -> Option<OrderRow> {
    rows.into_iter()
        .filter(|r| r.order_id.is_some())
        .min_by_key(|r| {
            let void = r.status().is_some_and(super::status::is_void_raw);
            (void, r.order_id)
        })
}

// ---------------------------------------------------------------------------------------------
// Dates
// ---------------------------------------------------------------------------------------------

/// Reads a date or date-time of a SphereWMS reply (§2).
///
/// Accepted: the compact forms of the documented example, `YYYYMMDD` and `YYYYMMDDhhmmss`
/// \[doc A0]; ISO 8601 `YYYY-MM-DD`, and `YYYY-MM-DDThh:mm[:ss[.f]]` (`T` or a space) with or
/// without an offset (`Z`, `+02:00`, `+0200`) \[assumed]. A time without an offset, and a bare
/// date (read as midnight), are local time at `utc_offset_secs` east of UTC (0: UTC, as the
/// time zone is not stated) \[assumed]; an explicit offset wins.
///
/// # Errors
///
/// [`Error::Protocol`] for any other text, an impossible date, or an offset beyond ±24 h.
pub(crate) fn parse_date_time(text: &str, utc_offset_secs: i32) -> Result<DateTime<Utc>> {
    let text = text.trim();
    let bad = || {
        Error::protocol(format!(
            "sphere date {:?} is not YYYYMMDD, YYYYMMDDhhmmss or ISO 8601",
            excerpt(text)
        ))
    };
    let naive = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        // ASCII digits only, so byte slicing is on character boundaries.
        let part = |range: std::ops::Range<usize>| text[range].parse::<u32>().map_err(|_| bad());
        let date = match text.len() {
            8 | 14 => {
                let year = i32::try_from(part(0..4)?).map_err(|_| bad())?;
                NaiveDate::from_ymd_opt(year, part(4..6)?, part(6..8)?).ok_or_else(bad)?
            }
            _ => return Err(bad()),
        };
        let time = if text.len() == 14 {
            (part(8..10)?, part(10..12)?, part(12..14)?)
        } else {
            (0, 0, 0)
        };
        date.and_hms_opt(time.0, time.1, time.2).ok_or_else(bad)?
    } else {
        if let Ok(with_offset) = DateTime::parse_from_rfc3339(text) {
            return Ok(with_offset.with_timezone(&Utc));
        }
        for format in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
            if let Ok(with_offset) = DateTime::parse_from_str(text, format) {
                return Ok(with_offset.with_timezone(&Utc));
            }
        }
        [
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%d %H:%M:%S%.f",
            "%Y-%m-%dT%H:%M",
        ]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .or_else(|| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
        .ok_or_else(bad)?
    };
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

// ---------------------------------------------------------------------------------------------
// Shipments
// ---------------------------------------------------------------------------------------------

/// One shipment of an order, from `GET /shipments` (§7.3, \[assumed]). An order may have
/// several shipments and each several packages; the model carries one tracking number, so the
/// rest stays here.
#[allow(
    dead_code,
    reason = "the assumed reply in full; only carrier and tracking numbers are read today"
)]
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct ShipmentRow {
    /// `shipment_id`.
    #[serde(default, deserialize_with = "lenient_id")]
    pub(crate) shipment_id: Option<u64>,
    /// `order_id`.
    #[serde(default, deserialize_with = "lenient_id")]
    pub(crate) order_id: Option<u64>,
    /// `order_number`.
    #[serde(default, deserialize_with = "lenient_text")]
    pub(crate) order_number: Option<String>,
    /// `ship_date`, compact or ISO.
    #[serde(default, deserialize_with = "lenient_text")]
    pub(crate) ship_date: Option<String>,
    /// `ship_via`: the WMS's carrier/service code.
    #[serde(default, deserialize_with = "lenient_text")]
    pub(crate) ship_via: Option<String>,
    /// `carrier`, e.g. `UPS`.
    #[serde(default, deserialize_with = "lenient_text")]
    pub(crate) carrier: Option<String>,
    /// `service`, e.g. `Ground`.
    #[serde(default, deserialize_with = "lenient_text")]
    pub(crate) service: Option<String>,
    /// `tracking_numbers`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) tracking_numbers: Vec<String>,
    /// `packages`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) packages: Vec<Package>,
}

/// One package of a shipment (§7.3).
#[allow(
    dead_code,
    reason = "the assumed reply in full; only the tracking number is read today"
)]
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct Package {
    /// `tracking_number`.
    #[serde(default, deserialize_with = "lenient_text")]
    pub(crate) tracking_number: Option<String>,
    /// `weight` (not money, so a float is fine).
    #[serde(default)]
    pub(crate) weight: Option<f64>,
    /// `weight_unit`, e.g. `LB`.
    #[serde(default, deserialize_with = "lenient_text")]
    pub(crate) weight_unit: Option<String>,
}

impl ShipmentRow {
    /// Whether the row belongs to SphereWMS order `order_id` (number `order_number`): by id
    /// when the row has one, else by number.
    pub(crate) fn is_of(&self, order_id: u64, order_number: &str) -> bool {
        match self.order_id {
            Some(id) => id == order_id,
            None => non_blank(self.order_number.as_deref()) == Some(order_number.trim()),
        }
    }

    /// The first tracking number: of `tracking_numbers`, else of the packages.
    fn first_tracking_number(&self) -> Option<&str> {
        self.tracking_numbers
            .iter()
            .map(|t| t.trim())
            .find(|t| !t.is_empty())
            .or_else(|| {
                self.packages
                    .iter()
                    .find_map(|p| non_blank(p.tracking_number.as_deref()))
            })
    }

    /// `carrier`, else `ship_via`.
    fn carrier(&self) -> Option<&str> {
        non_blank(self.carrier.as_deref()).or_else(|| non_blank(self.ship_via.as_deref()))
    }
}

/// `status` with the carrier and first tracking number of `shipments` (§7.3).
///
/// Shipments are taken in `shipment_id` order (the first created first); the first one with a
/// tracking number gives `carrier_tracking_number` and its `carrier` (else its `ship_via`);
/// without any tracking number the first carrier is still reported. `service` and further
/// numbers are not carried by the model.
pub(crate) fn with_shipments(
    mut status: DeliveryStatus,
    shipments: &[ShipmentRow],
) -> DeliveryStatus {
    let mut ordered: Vec<&ShipmentRow> = shipments.iter().collect();
    ordered.sort_by_key(|s| (s.shipment_id.is_none(), s.shipment_id));
    let tracked = ordered
        .iter()
        .find_map(|s| s.first_tracking_number().map(|number| (s, number)));
    match tracked {
        Some((shipment, number)) => {
            status.carrier = shipment.carrier().map(Text::from);
            status.carrier_tracking_number = Some(number.into());
        }
        None => {
            status.carrier = ordered.iter().find_map(|s| s.carrier()).map(Text::from);
        }
    }
    status
}

/// The current status of an order row mapped through `table`, stamped with
/// [`OrderRow::status_time`] or `fallback_at`; `None` when the row has no status.
pub(crate) fn order_status(
    row: &OrderRow,
    table: &StatusTable,
    utc_offset_secs: i32,
    fallback_at: DateTime<Utc>,
) -> Option<DeliveryStatus> {
    let raw = row.status()?;
    let at = row.status_time(utc_offset_secs).unwrap_or(fallback_at);
    Some(table.status(raw, at))
}

// ---------------------------------------------------------------------------------------------
// Inventory
// ---------------------------------------------------------------------------------------------

/// One row of `GET /inventory`: one (client, inventory account, product) (§7.4, \[assumed]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct InventoryRow {
    /// `client_code`.
    #[serde(default, deserialize_with = "lenient_text")]
    pub(crate) client_code: Option<String>,
    /// `location_id`: the inventory account.
    #[serde(default, deserialize_with = "lenient_id")]
    pub(crate) location_id: Option<u64>,
    /// `product_code`: the sku.
    #[serde(deserialize_with = "required_text")]
    pub(crate) product_code: String,
    /// `description`.
    #[allow(dead_code, reason = "part of the assumed reply, kept for debugging")]
    #[serde(default, deserialize_with = "lenient_text")]
    pub(crate) description: Option<String>,
    /// `on_hand`: units in the account.
    #[allow(dead_code, reason = "part of the assumed reply, kept for debugging")]
    #[serde(default, deserialize_with = "lenient_int")]
    pub(crate) on_hand: Option<i64>,
    /// `allocated`: units held by orders.
    #[serde(default, deserialize_with = "lenient_int")]
    pub(crate) allocated: Option<i64>,
    /// `available`: units orderable now.
    #[serde(deserialize_with = "required_int")]
    pub(crate) available: i64,
}

/// Stock levels from inventory `rows`, for inventory account `location_id` of `client_code`
/// only (§7.4): rows of another account (Quarantine, Hold) or client are never counted.
///
/// `available` is the row's `available`, `reserved` its `allocated`, `warehouse` the account
/// number. Several rows of one product in the account (e.g. per lot) are summed \[assumed].
/// Products keep the order of their first row.
pub(crate) fn stock_levels(
    rows: &[InventoryRow],
    location_id: u32,
    client_code: &str,
) -> Vec<StockLevel> {
    let mut levels: Vec<StockLevel> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for row in rows {
        let ours = row.location_id == Some(u64::from(location_id))
            && non_blank(row.client_code.as_deref()).is_none_or(|c| c == client_code.trim());
        let sku = row.product_code.trim();
        if !ours || sku.is_empty() {
            continue;
        }
        match index.get(sku) {
            Some(&i) => {
                let level = &mut levels[i];
                level.available = level.available.saturating_add(row.available);
                level.reserved = match (level.reserved, row.allocated) {
                    (Some(a), Some(b)) => Some(a.saturating_add(b)),
                    (a, b) => a.or(b),
                };
            }
            None => {
                index.insert(sku.to_owned(), levels.len());
                levels.push(StockLevel {
                    sku: sku.into(),
                    warehouse: Some(location_id.to_string()),
                    available: row.available,
                    reserved: row.allocated,
                    in_transit: None,
                });
            }
        }
    }
    levels
}

// ---------------------------------------------------------------------------------------------
// Customers (ship-to directory)
// ---------------------------------------------------------------------------------------------

/// One row of `GET /customers` (§7.5, \[assumed]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct CustomerRow {
    /// `customer_code`: what an order's `customer_code` takes.
    #[serde(deserialize_with = "required_text")]
    pub(crate) customer_code: String,
    /// `name`.
    #[serde(default, deserialize_with = "lenient_text")]
    pub(crate) name: Option<String>,
    /// `bill_to_code`.
    #[allow(dead_code, reason = "part of the assumed reply, kept for debugging")]
    #[serde(default, deserialize_with = "lenient_text")]
    pub(crate) bill_to_code: Option<String>,
    /// `street_1`.
    #[serde(default, deserialize_with = "lenient_text")]
    pub(crate) street_1: Option<String>,
    /// `street_2`.
    #[serde(default, deserialize_with = "lenient_text")]
    pub(crate) street_2: Option<String>,
    /// `street_3`.
    #[serde(default, deserialize_with = "lenient_text")]
    pub(crate) street_3: Option<String>,
    /// `city`.
    #[serde(default, deserialize_with = "lenient_text")]
    pub(crate) city: Option<String>,
    /// `state`.
    #[serde(default, deserialize_with = "lenient_text")]
    pub(crate) state: Option<String>,
    /// `zip`.
    #[serde(default, deserialize_with = "lenient_text")]
    pub(crate) zip: Option<String>,
    /// `country`, ISO alpha-2.
    #[serde(default, deserialize_with = "lenient_text")]
    pub(crate) country: Option<String>,
}

impl CustomerRow {
    /// Whether the row fits `query`'s country, city and postcode (compared here as well,
    /// because the endpoint is only known to filter by `keyword`). A row that lacks a value is
    /// not excluded by it.
    pub(crate) fn matches(&self, query: &AddressQuery) -> bool {
        let fits = |value: Option<&str>, wanted: Option<&str>, test: fn(&str, &str) -> bool| match (
            non_blank(value),
            non_blank(wanted),
        ) {
            (Some(value), Some(wanted)) => test(value, wanted),
            _ => true,
        };
        let prefix = |value: &str, wanted: &str| {
            value
                .to_lowercase()
                .replace(' ', "")
                .starts_with(&wanted.to_lowercase().replace(' ', ""))
        };
        fits(self.country.as_deref(), Some(&query.country), |a, b| {
            a.eq_ignore_ascii_case(b)
        }) && fits(self.city.as_deref(), query.city.as_deref(), |a, b| {
            a.to_lowercase() == b.to_lowercase()
        }) && fits(self.zip.as_deref(), query.postcode.as_deref(), prefix)
    }

    /// The directory entry: a door address whose id is the customer code and whose label is
    /// the name (else the code). Its [`AddressOption::to_address`] puts the code into
    /// `provider_address_id`, which the order body sends as `customer_code`.
    pub(crate) fn to_address_option(&self) -> AddressOption {
        let code = self.customer_code.trim();
        let text = |v: &Option<String>| non_blank(v.as_deref()).unwrap_or_default().to_owned();
        AddressOption {
            id: code.to_owned(),
            kind: AddressKind::Door,
            label: non_blank(self.name.as_deref()).unwrap_or(code).to_owned(),
            address: Address {
                country: text(&self.country).to_uppercase(),
                region: non_blank(self.state.as_deref()).map(str::to_owned),
                city: text(&self.city),
                postcode: text(&self.zip),
                lines: [&self.street_1, &self.street_2, &self.street_3]
                    .into_iter()
                    .filter_map(|l| non_blank(l.as_deref()))
                    .map(str::to_owned)
                    .collect(),
                provider_address_id: None,
                pickup_point_id: None,
            },
            carrier: None,
            opening_hours: None,
        }
    }
}

/// The `keyword` of a customer search: the query's text, else its postcode, else its city
/// (the endpoint takes a single keyword \[assumed]); `None` lists every customer.
pub(crate) fn customer_keyword(query: &AddressQuery) -> Option<String> {
    [
        query.text.as_deref(),
        query.postcode.as_deref(),
        query.city.as_deref(),
    ]
    .into_iter()
    .find_map(non_blank)
    .map(str::to_owned)
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Longest message kept from an error body, in characters (the client caps the raw body at
/// 64 KiB before this).
pub(crate) const ERROR_TEXT_MAX_CHARS: usize = 500;

/// What an error body says: a message and, when the body names them, the fields at fault.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ErrorDetails {
    /// The message, trimmed and cut to [`ERROR_TEXT_MAX_CHARS`]; `""` for an empty body.
    pub(crate) message: String,
    /// `errors[].field` with its message, in the body's order.
    pub(crate) fields: Vec<FieldError>,
}

fn cut(text: &str) -> String {
    let trimmed = text.trim();
    match trimmed.char_indices().nth(ERROR_TEXT_MAX_CHARS) {
        Some((at, _)) => trimmed[..at].trim_end().to_owned(),
        None => trimmed.to_owned(),
    }
}

fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The message of an object such as `{"message":"…"}`: its `message`, else `error`, else
/// `msg`, else `detail` (first non-null, as text).
fn object_message(map: &Map<String, Value>) -> Option<String> {
    ["message", "error", "msg", "detail"]
        .iter()
        .find_map(|key| map.get(*key).filter(|v| !v.is_null()))
        .map(|v| match v {
            Value::Object(inner) => object_message(inner).unwrap_or_else(|| v.to_string()),
            other => value_text(other),
        })
}

/// Reads an error body leniently (protocol §8, \[assumed]). Accepted shapes:
/// `{"error":"…"}`, `{"error":{"message":"…"}}`, `{"errors":["…"]}`,
/// `{"errors":[{"field":"…","message":"…"}]}`, `{"errors":{"field":"…"}}`, `{"message":"…"}`, a
/// JSON string, and plain text (lossy UTF-8, a BOM skipped). Entries of `errors` with a
/// `field` become field errors at that path; their messages also make up the message when the
/// body has no `error` / `message` of its own.
pub(crate) fn error_details(body: &[u8]) -> ErrorDetails {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let raw = || String::from_utf8_lossy(body).into_owned();
    let (message, fields) = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => {
            let mut fields = Vec::new();
            let mut messages = Vec::new();
            match map.get("errors") {
                Some(Value::Array(items)) => {
                    for item in items {
                        match item {
                            Value::Object(entry) => {
                                let message =
                                    object_message(entry).unwrap_or_else(|| item.to_string());
                                if let Some(field) =
                                    entry.get("field").and_then(Value::as_str).map(str::trim)
                                    && !field.is_empty()
                                {
                                    fields.push(FieldError::new(field, cut(&message)));
                                }
                                messages.push(message);
                            }
                            Value::Null => {}
                            other => messages.push(value_text(other)),
                        }
                    }
                }
                Some(Value::Object(by_field)) => {
                    for (field, value) in by_field {
                        let message = match value {
                            Value::Array(all) => {
                                all.iter().map(value_text).collect::<Vec<_>>().join("; ")
                            }
                            other => value_text(other),
                        };
                        fields.push(FieldError::new(field.as_str(), cut(&message)));
                        messages.push(format!("{field}: {message}"));
                    }
                }
                Some(Value::String(s)) => messages.push(s.clone()),
                _ => {}
            }
            let own = ["error", "message"]
                .iter()
                .find_map(|key| map.get(*key).filter(|v| !v.is_null()))
                .map(|v| match v {
                    Value::Object(inner) => object_message(inner).unwrap_or_else(|| v.to_string()),
                    other => value_text(other),
                });
            let message = own
                .or_else(|| (!messages.is_empty()).then(|| messages.join("; ")))
                .unwrap_or_else(raw);
            (message, fields)
        }
        Ok(Value::String(s)) => (s, Vec::new()),
        _ => (raw(), Vec::new()),
    };
    ErrorDetails {
        message: cut(&message),
        fields,
    }
}

/// Whether an error body says the order number is already taken (§7.1: a duplicate
/// `order_number` is expected as 409 or 400, wording unknown \[assumed]).
pub(crate) fn is_duplicate(details: &ErrorDetails) -> bool {
    std::iter::once(details.message.as_str())
        .chain(details.fields.iter().map(|f| f.reason.as_str()))
        .any(|text| {
            let text = text.to_lowercase();
            ["duplicate", "already exist", "already been taken", "unique"]
                .iter()
                .any(|w| text.contains(w))
        })
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Timelike};
    use serde_json::json;

    use super::super::status::status_table;
    use super::*;
    use crate::model::{CartLine, Customer, StatusCode};

    // Fixture bodies of protocol §10(c), byte for byte.
    const CREATE: &str = r#"{"client_code":"100","order_number":"SO-1001","location_id":100,"customer_code":"FK-SO-1001","ship_to":{"name":"Jane Smith","street_1":"12 Elm St","street_2":"Apt 4","street_3":"","city":"Columbus","state":"OH","zip":"43004","country":"US","phone":"+16145550101","email":"jane@example.com"},"ship_via":"UPS-GND","po_number":"","order_date":"2024-05-02","notes":"leave at door","lines":[{"line_number":1,"product_code":"ABC-100","quantity":2,"unit_price":24.5},{"line_number":2,"product_code":"XYZ-7","quantity":1}]}"#;
    const CREATED: &str = r#"{"order_id":88213,"order_number":"SO-1001","client_code":"100","location_id":100,"status":"open","created_on":"20240502101500"}"#;
    const FOUND: &str = r#"[{"order_id":88213,"order_number":"SO-1001","client_code":"100","location_id":100,"customer_code":"FK-SO-1001","status":"allocated","created_on":"20240502101500","updated_on":"20240502113000","lines":[{"line_number":1,"product_code":"ABC-100","quantity":2,"quantity_shipped":0}]}]"#;
    const VOIDED: &str = r#"{"order_id":88213,"status":"void"}"#;
    const VOID_REFUSED: &str = r#"{"error":"Order 88213 is allocated and cannot be voided"}"#;
    const SHIPMENTS: &str = r#"[{"shipment_id":5120,"order_id":88213,"order_number":"SO-1001","client_code":"100","location_id":100,"ship_date":"20240503","ship_via":"UPS-GND","carrier":"UPS","service":"Ground","tracking_numbers":["1Z999AA10123456784"],"packages":[{"tracking_number":"1Z999AA10123456784","weight":2.4,"weight_unit":"LB"}]}]"#;
    const INVENTORY: &str = r#"[{"client_code":"100","location_id":100,"product_code":"ABC-100","description":"Widget","on_hand":120,"allocated":8,"available":112}]"#;
    const CUSTOMERS: &str = r#"[{"customer_code":"FK-SO-1001","name":"Jane Smith","bill_to_code":"FK-SO-1001","street_1":"12 Elm St","city":"Columbus","state":"OH","zip":"43004","country":"US"}]"#;
    const UNAUTHORIZED: &str = r#"{"error":"Invalid API key"}"#;
    const UNPROCESSABLE: &str = r#"{"errors":[{"field":"lines[0].product_code","message":"Unknown product code ABC-100"}]}"#;

    fn dec(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    fn config() -> OrderConfig {
        OrderConfig {
            client_code: "100".into(),
            location_id: 100,
            customer_code_prefix: "FK-".into(),
            cod_field: None,
            utc_offset_secs: 0,
        }
    }

    /// The order behind the §10(c) create fixture.
    fn jane() -> Order {
        Order::new(
            "SO-1001",
            Customer {
                name: "Jane Smith".into(),
                phone: "+1 (614) 555-0101".into(),
                email: Some("jane@example.com".into()),
            },
            Address {
                country: "US".into(),
                region: Some("OH".into()),
                city: "Columbus".into(),
                postcode: "43004".into(),
                lines: vec!["12 Elm St".into(), "Apt 4".into()],
                provider_address_id: None,
                pickup_point_id: None,
            },
            vec![
                CartLine {
                    sku: "ABC-100".into(),
                    name: "Widget".into(),
                    product_type: None,
                    quantity: 2,
                    unit_price: dec("24.50"),
                },
                CartLine {
                    sku: "XYZ-7".into(),
                    name: "Free sample".into(),
                    product_type: None,
                    quantity: 1,
                    unit_price: Decimal::ZERO,
                },
            ],
            Payment::Prepaid,
            "USD",
        )
    }

    fn jane_waybill() -> Waybill {
        Waybill::new()
            .with(SHIP_VIA, "UPS-GND")
            .with(PO_NUMBER, "")
            .with(ORDER_DATE, "2024-05-02")
            .with(NOTES, "leave at door")
    }

    fn json_of<T: Serialize>(value: &T) -> String {
        serde_json::to_string(value).unwrap()
    }

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    #[test]
    fn create_fixture_byte_for_byte() {
        let body = order_body(&jane(), &jane_waybill(), &config()).unwrap();
        assert_eq!(json_of(&body), CREATE);
    }

    #[test]
    fn minimal_body_and_address_lines() {
        let mut order = jane();
        order.address.region = None;
        order.address.lines = vec![
            " 1 Long Rd ".into(),
            "".into(),
            "Unit 2".into(),
            "Floor 3".into(),
            "Door B".into(),
        ];
        order.customer.email = None;
        order.lines.truncate(1);
        let body = order_body(&order, &Waybill::new(), &config()).unwrap();
        let value = serde_json::to_value(&body).unwrap();
        assert_eq!(
            value,
            json!({
                "client_code": "100", "order_number": "SO-1001", "location_id": 100,
                "customer_code": "FK-SO-1001",
                "ship_to": {
                    "name": "Jane Smith", "street_1": "1 Long Rd", "street_2": "Unit 2",
                    "street_3": "Floor 3, Door B", "city": "Columbus", "zip": "43004",
                    "country": "US", "phone": "+16145550101"
                },
                "po_number": "",
                "lines": [{"line_number": 1, "product_code": "ABC-100", "quantity": 2, "unit_price": 24.5}]
            })
        );
    }

    #[test]
    fn order_date_defaults_to_the_local_confirmation_day() {
        let mut order = jane();
        order.confirmed_at = Some(at(2024, 5, 2, 23, 30, 0));
        let body = order_body(&order, &Waybill::new(), &config()).unwrap();
        assert_eq!(body.order_date, NaiveDate::from_ymd_opt(2024, 5, 2));
        let east = OrderConfig {
            utc_offset_secs: 3600,
            ..config()
        };
        let body = order_body(&order, &Waybill::new(), &east).unwrap();
        assert_eq!(body.order_date, NaiveDate::from_ymd_opt(2024, 5, 3));
        // The waybill wins.
        let body = order_body(&order, &jane_waybill(), &east).unwrap();
        assert_eq!(body.order_date, NaiveDate::from_ymd_opt(2024, 5, 2));
    }

    #[test]
    fn a_chosen_directory_entry_is_the_customer_code() {
        let mut order = jane();
        order.address.provider_address_id = Some(" CUST-0042 ".into());
        let body = order_body(&order, &Waybill::new(), &config()).unwrap();
        assert_eq!(body.customer_code, "CUST-0042");
    }

    #[test]
    fn cash_on_delivery_needs_a_configured_field() {
        let mut order = jane();
        order.payment = Payment::CashOnDelivery {
            amount: dec("49.00"),
        };
        let err = order_body(&order, &Waybill::new(), &config()).unwrap_err();
        let paths: Vec<_> = err.field_errors().iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["payment"]);

        let with_field = OrderConfig {
            cod_field: Some("cod_amount".into()),
            ..config()
        };
        let body = order_body(&order, &jane_waybill(), &with_field).unwrap();
        let text = json_of(&body);
        assert!(
            text.ends_with(r#""quantity":1}],"cod_amount":49}"#),
            "{text}"
        );
        order.payment = Payment::CashOnDelivery {
            amount: dec("12.345"),
        };
        let body = order_body(&order, &jane_waybill(), &with_field).unwrap();
        assert!(json_of(&body).ends_with(r#""cod_amount":12.345}"#));
        // Prepaid orders carry no COD field at all.
        let body = order_body(&jane(), &jane_waybill(), &with_field).unwrap();
        assert!(!json_of(&body).contains("cod_amount"));
    }

    #[test]
    fn every_body_problem_is_reported() {
        let mut order = jane();
        order.id = "SO-2024-000000000001".into();
        order.payment = Payment::CashOnDelivery {
            amount: Decimal::ONE,
        };
        order.lines[0].unit_price = dec("1234567890123456.78");
        let waybill = Waybill::new()
            .with(SHIP_VIA, 7)
            .with(ORDER_DATE, "02/05/2024");
        let err = order_body(&order, &waybill, &config()).unwrap_err();
        let paths: Vec<_> = err.field_errors().iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "payment",
                "id",
                "waybill.values.ship_via",
                "waybill.values.order_date",
                "lines[0].unit_price"
            ]
        );
        // With an empty prefix the same id fits.
        let mut short = jane();
        short.id = "SO-2024-000000000001".into();
        let no_prefix = OrderConfig {
            customer_code_prefix: String::new(),
            ..config()
        };
        assert!(order_body(&short, &Waybill::new(), &no_prefix).is_ok());
        let mut empty = jane();
        empty.lines.clear();
        let err = order_body(&empty, &Waybill::new(), &config()).unwrap_err();
        assert_eq!(err.field_errors()[0].path, "lines");
    }

    #[test]
    fn exact_numbers() {
        for (text, json) in [
            ("24.50", "24.5"),
            ("59.00", "59"),
            ("0", "0"),
            ("0.125", "0.125"),
            ("1234567.89", "1234567.89"),
            ("0.1", "0.1"),
            ("99999999999.99", "99999999999.99"),
        ] {
            let number = exact_number(dec(text)).unwrap();
            assert_eq!(number.to_string(), json, "{text}");
        }
        assert_eq!(exact_number(dec("1234567890123456.78")), None);
    }

    #[test]
    fn replies_parse() {
        let created: OrderRow = serde_json::from_str(CREATED).unwrap();
        assert_eq!(created.order_id, Some(88213));
        assert_eq!(created.status(), Some("open"));
        assert_eq!(created.status_time(0), Some(at(2024, 5, 2, 10, 15, 0)));
        assert!(created.is_order("SO-1001", "100"));
        assert!(!created.is_order("SO-1002", "100"));
        assert!(!created.is_order("SO-1001", "200"));

        let found: Vec<OrderRow> = serde_json::from_str(FOUND).unwrap();
        assert_eq!(found[0].status(), Some("allocated"));
        // `updated_on` wins over `created_on`.
        assert_eq!(found[0].status_time(0), Some(at(2024, 5, 2, 11, 30, 0)));

        let voided: OrderRow = serde_json::from_str(VOIDED).unwrap();
        assert_eq!(
            (voided.order_id, voided.status()),
            (Some(88213), Some("void"))
        );

        // Sparse and stringly rows parse too.
        let sparse: OrderRow =
            serde_json::from_str(r#"{"order_id":"88214","client_code":100,"status":null}"#)
                .unwrap();
        assert_eq!(sparse.order_id, Some(88214));
        assert_eq!(sparse.client_code.as_deref(), Some("100"));
        assert_eq!(sparse.status(), None);
        for bad in [
            r#"{"order_id":"8a"}"#,
            r#"{"order_id":-1}"#,
            r#"{"order_id":true}"#,
        ] {
            assert!(serde_json::from_str::<OrderRow>(bad).is_err(), "{bad}");
        }
        let one: OneOrMany<OrderRow> = serde_json::from_str(CREATED).unwrap();
        let many: OneOrMany<OrderRow> = serde_json::from_str(FOUND).unwrap();
        assert_eq!(one.into_vec()[0].order_id, many.into_vec()[0].order_id);
    }

    #[test]
    fn picking_the_order_to_reuse() {
        let row = |id: Option<u64>, status: &str| OrderRow {
            order_id: id,
            order_number: Some("SO-1".into()),
            client_code: None,
            status: Some(status.into()),
            created_on: None,
            updated_on: None,
        };
        let picked = pick_existing(vec![
            row(Some(9), "open"),
            row(Some(4), "void"),
            row(Some(7), "allocated"),
        ]);
        assert_eq!(picked.and_then(|r| r.order_id), Some(7));
        let picked = pick_existing(vec![
            row(Some(9), "void"),
            row(Some(4), "void"),
            row(None, "open"),
        ]);
        assert_eq!(picked.and_then(|r| r.order_id), Some(4));
        assert_eq!(pick_existing(vec![row(None, "open")]), None);
        assert_eq!(pick_existing(Vec::new()), None);
    }

    #[test]
    fn dates() {
        let cases = [
            ("20170606", 0, at(2017, 6, 6, 0, 0, 0)),
            ("20170606101154", 0, at(2017, 6, 6, 10, 11, 54)),
            (" 20170606101154 ", 0, at(2017, 6, 6, 10, 11, 54)),
            ("20170606101154", 7200, at(2017, 6, 6, 8, 11, 54)),
            ("20170606", -3600, at(2017, 6, 6, 1, 0, 0)),
            ("2017-06-06", 0, at(2017, 6, 6, 0, 0, 0)),
            ("2017-06-06T10:11:54", 0, at(2017, 6, 6, 10, 11, 54)),
            ("2017-06-06 10:11:54", 0, at(2017, 6, 6, 10, 11, 54)),
            ("2017-06-06T10:11", 0, at(2017, 6, 6, 10, 11, 0)),
            ("2017-06-06T10:11:54", 3600, at(2017, 6, 6, 9, 11, 54)),
            ("2017-06-06T10:11:54Z", 3600, at(2017, 6, 6, 10, 11, 54)),
            (
                "2017-06-06T12:11:54+02:00",
                -3600,
                at(2017, 6, 6, 10, 11, 54),
            ),
            ("2017-06-06T12:11:54+0200", 0, at(2017, 6, 6, 10, 11, 54)),
            ("2017-06-06 12:11:54+02:00", 0, at(2017, 6, 6, 10, 11, 54)),
        ];
        for (text, offset, expected) in cases {
            assert_eq!(parse_date_time(text, offset).unwrap(), expected, "{text}");
        }
        let fractional = parse_date_time("2017-06-06T10:11:54.25", 0).unwrap();
        assert_eq!(fractional.nanosecond(), 250_000_000);
        for bad in [
            "",
            "yesterday",
            "2017066",
            "201706061011",
            "20171306",
            "20170230",
            "20170606251154",
            "20170606106054",
            "2017-13-06",
            "2017-06-06T25:00:00",
            "06/06/2017",
            "2017-06-06T10:11:54+25:00",
            "٢٠١٧٠٦٠٦",
            "ł20170606",
        ] {
            let err = parse_date_time(bad, 0).unwrap_err();
            assert!(matches!(err, Error::Protocol { .. }), "{bad}: {err:?}");
        }
        assert!(parse_date_time("20170606", 86_400).is_err());
        assert!(parse_date_time("20170606", i32::MIN).is_err());
    }

    #[test]
    fn an_unreadable_date_falls_back_to_the_next_one() {
        let row: OrderRow = serde_json::from_str(
            r#"{"order_id":1,"status":"open","updated_on":"soon","created_on":"20240502"}"#,
        )
        .unwrap();
        assert_eq!(row.status_time(0), Some(at(2024, 5, 2, 0, 0, 0)));
        let row: OrderRow =
            serde_json::from_str(r#"{"order_id":1,"status":"open","updated_on":"soon"}"#).unwrap();
        assert_eq!(row.status_time(0), None);
        let fallback = at(2024, 1, 1, 0, 0, 0);
        let status = order_status(&row, &status_table(), 0, fallback).unwrap();
        assert_eq!((status.code, status.at), (StatusCode::Registered, fallback));
    }

    #[test]
    fn shipments_give_the_first_carrier_and_tracking_number() {
        let rows: Vec<ShipmentRow> = serde_json::from_str(SHIPMENTS).unwrap();
        assert!(rows[0].is_of(88213, "SO-1001"));
        assert!(!rows[0].is_of(88214, "SO-1001"));
        assert_eq!(rows[0].packages[0].weight, Some(2.4));
        let base = DeliveryStatus::new(StatusCode::InTransit, "shipped", at(2024, 5, 3, 0, 0, 0));
        let status = with_shipments(base.clone(), &rows);
        assert_eq!(status.carrier.as_deref(), Some("UPS"));
        assert_eq!(
            status.carrier_tracking_number.as_deref(),
            Some("1Z999AA10123456784")
        );

        // Several shipments: the lowest id with a number wins; packages are a fallback; a
        // carrier-less shipment falls back to `ship_via`.
        let rows: Vec<ShipmentRow> = serde_json::from_value(json!([
            {"shipment_id": 7, "order_id": 1, "carrier": "FedEx", "tracking_numbers": []},
            {"shipment_id": 6, "order_id": 1, "ship_via": "DHL-EXP", "tracking_numbers": null,
             "packages": [{"tracking_number": " "}, {"tracking_number": "JD014600"}]},
            {"shipment_id": 5, "order_id": 1, "carrier": "UPS", "tracking_numbers": [""]}
        ]))
        .unwrap();
        let status = with_shipments(base.clone(), &rows);
        assert_eq!(status.carrier.as_deref(), Some("DHL-EXP"));
        assert_eq!(status.carrier_tracking_number.as_deref(), Some("JD014600"));

        let untracked: Vec<ShipmentRow> =
            serde_json::from_value(json!([{"order_number": "SO-1", "carrier": "UPS"}])).unwrap();
        assert!(untracked[0].is_of(99, "SO-1"));
        let status = with_shipments(base.clone(), &untracked);
        assert_eq!(status.carrier.as_deref(), Some("UPS"));
        assert_eq!(status.carrier_tracking_number, None);
        assert_eq!(with_shipments(base.clone(), &[]), base);
    }

    #[test]
    fn inventory_counts_only_our_account_and_client() {
        let rows: Vec<InventoryRow> = serde_json::from_str(INVENTORY).unwrap();
        assert_eq!(
            stock_levels(&rows, 100, "100"),
            [StockLevel {
                sku: "ABC-100".into(),
                warehouse: Some("100".into()),
                available: 112,
                reserved: Some(8),
                in_transit: None,
            }]
        );
        let rows: Vec<InventoryRow> = serde_json::from_value(json!([
            {"client_code": "100", "location_id": 110, "product_code": "ABC-100", "available": 50},
            {"client_code": "200", "location_id": 100, "product_code": "ABC-100", "available": 40},
            {"location_id": "100", "product_code": "XYZ-7", "available": "3", "allocated": null},
            {"client_code": "100", "location_id": 100, "product_code": "ABC-100", "available": 2.0, "allocated": 1},
            {"client_code": "100", "location_id": 100, "product_code": "ABC-100", "available": 5, "allocated": 2},
            {"client_code": "100", "product_code": "NOWHERE", "available": 9}
        ]))
        .unwrap();
        let levels = stock_levels(&rows, 100, "100");
        let summary: Vec<_> = levels
            .iter()
            .map(|l| (l.sku.as_str(), l.available, l.reserved))
            .collect();
        assert_eq!(summary, [("XYZ-7", 3, None), ("ABC-100", 7, Some(3))]);
        for bad in [
            json!([{"product_code": "A"}]),
            json!([{"product_code": "A", "available": 1.5}]),
            json!([{"product_code": null, "available": 1}]),
            json!([{"available": 1}]),
        ] {
            assert!(
                serde_json::from_value::<Vec<InventoryRow>>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn customers_are_door_addresses() {
        let rows: Vec<CustomerRow> = serde_json::from_str(CUSTOMERS).unwrap();
        let option = rows[0].to_address_option();
        assert_eq!(
            option,
            AddressOption {
                id: "FK-SO-1001".into(),
                kind: AddressKind::Door,
                label: "Jane Smith".into(),
                address: Address {
                    country: "US".into(),
                    region: Some("OH".into()),
                    city: "Columbus".into(),
                    postcode: "43004".into(),
                    lines: vec!["12 Elm St".into()],
                    provider_address_id: None,
                    pickup_point_id: None,
                },
                carrier: None,
                opening_hours: None,
            }
        );
        assert_eq!(
            option.to_address().provider_address_id.as_deref(),
            Some("FK-SO-1001")
        );

        let query = AddressQuery::in_country("us")
            .with_city("columbus")
            .with_text("smith");
        assert!(rows[0].matches(&query));
        assert!(!rows[0].matches(&AddressQuery::in_country("CA")));
        assert!(!rows[0].matches(&AddressQuery::in_country("US").with_city("Dayton")));
        let by_zip = AddressQuery {
            postcode: Some("430".into()),
            ..AddressQuery::in_country("US")
        };
        assert!(rows[0].matches(&by_zip));
        let sparse: CustomerRow = serde_json::from_value(json!({"customer_code": 42})).unwrap();
        assert!(
            sparse.matches(&query),
            "a row without values is not excluded by them"
        );
        assert_eq!(sparse.to_address_option().label, "42");
    }

    #[test]
    fn customer_keywords() {
        let query = AddressQuery::in_country("US").with_city("Columbus");
        assert_eq!(customer_keyword(&query).as_deref(), Some("Columbus"));
        let query = AddressQuery {
            postcode: Some("43004".into()),
            ..query
        };
        assert_eq!(customer_keyword(&query).as_deref(), Some("43004"));
        assert_eq!(
            customer_keyword(&query.with_text(" smith ")).as_deref(),
            Some("smith")
        );
        assert_eq!(customer_keyword(&AddressQuery::in_country("US")), None);
    }

    #[test]
    fn waybill_form_keys() {
        let form = waybill_form(&["UPS-GND".into(), "FDX-2D".into()]).unwrap();
        let keys: Vec<_> = form.fields.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, [SHIP_VIA, PO_NUMBER, NOTES, ORDER_DATE]);
        assert!(form.validate(&jane_waybill()).is_ok());
        assert!(
            form.validate(&Waybill::new().with(SHIP_VIA, "DHL"))
                .is_err()
        );
        let without: Vec<_> = waybill_form(&[])
            .unwrap()
            .fields
            .into_iter()
            .map(|f| f.key)
            .collect();
        assert_eq!(without, [PO_NUMBER, NOTES, ORDER_DATE]);
    }

    #[test]
    fn error_bodies() {
        let field = |path: &str, reason: &str| FieldError::new(path, reason);
        let cases: Vec<(&[u8], &str, Vec<FieldError>)> = vec![
            (UNAUTHORIZED.as_bytes(), "Invalid API key", vec![]),
            (VOID_REFUSED.as_bytes(), "Order 88213 is allocated and cannot be voided", vec![]),
            (
                UNPROCESSABLE.as_bytes(),
                "Unknown product code ABC-100",
                vec![field("lines[0].product_code", "Unknown product code ABC-100")],
            ),
            (br#"{"error":{"message":"nested"}}"#, "nested", vec![]),
            (br#"{"error":{"code":7}}"#, r#"{"code":7}"#, vec![]),
            (br#"{"errors":["a","b"]}"#, "a; b", vec![]),
            (
                br#"{"message":"Validation failed","errors":[{"field":"zip","message":"bad"},{"message":"other"},"loose"]}"#,
                "Validation failed",
                vec![field("zip", "bad")],
            ),
            (
                br#"{"errors":{"ship_to.zip":["is required","is too short"]}}"#,
                "ship_to.zip: is required; is too short",
                vec![field("ship_to.zip", "is required; is too short")],
            ),
            (br#"{"message":"m"}"#, "m", vec![]),
            (br#"{"error":null,"message":"m"}"#, "m", vec![]),
            (br#""plain string""#, "plain string", vec![]),
            (b"  Bad Request \n", "Bad Request", vec![]),
            (b"<html>oops</html>", "<html>oops</html>", vec![]),
            (b"\xEF\xBB\xBF{\"error\":\"bom\"}", "bom", vec![]),
            (b"bad \xFF byte", "bad \u{FFFD} byte", vec![]),
            (br#"{"other":"o"}"#, r#"{"other":"o"}"#, vec![]),
            (b"", "", vec![]),
        ];
        for (body, message, fields) in cases {
            let details = error_details(body);
            let shown = String::from_utf8_lossy(body);
            assert_eq!(details.message, message, "{shown}");
            assert_eq!(details.fields, fields, "{shown}");
        }
        let long = "é".repeat(ERROR_TEXT_MAX_CHARS + 10);
        assert_eq!(
            error_details(format!(r#"{{"error":"{long}"}}"#).as_bytes())
                .message
                .chars()
                .count(),
            ERROR_TEXT_MAX_CHARS
        );
    }

    #[test]
    fn duplicates() {
        for body in [
            r#"{"error":"Duplicate order_number SO-1001"}"#,
            r#"{"error":"Order SO-1001 already exists"}"#,
            r#"{"errors":[{"field":"order_number","message":"has already been taken"}]}"#,
            r#"{"message":"order_number must be unique"}"#,
        ] {
            assert!(is_duplicate(&error_details(body.as_bytes())), "{body}");
        }
        for body in [UNPROCESSABLE, UNAUTHORIZED, ""] {
            assert!(!is_duplicate(&error_details(body.as_bytes())), "{body}");
        }
    }
}

/// Hostile input (issue 10, part 4): arbitrary bytes, arbitrary JSON and hostile bodies to
/// every SphereWMS reply parser. None may panic; the decode-and-map paths end in `Ok` or a
/// typed error.
#[cfg(test)]
mod hostile {
    use proptest::prelude::*;
    use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
    use serde_json::json;

    use super::super::client::{Missing, error_for};
    use super::super::status::status_table;
    use super::*;
    use crate::http::Response;
    use crate::provider::hostile_tests::{
        DEEP, arb_bytes, arb_date_text, arb_instant, arb_json, arb_offset, arb_text, client,
        config, hostile_bodies, is_recursion_limit,
    };

    /// Every reply parser of the adapter on `body`, each run through the functions the
    /// adapter feeds it to.
    fn parse_all(body: &[u8], offset: i32, now: DateTime<Utc>) {
        let table = status_table();
        if let Ok(rows) = serde_json::from_slice::<OneOrMany<OrderRow>>(body) {
            let rows = rows.into_vec();
            for row in &rows {
                let _ = row.is_order("SO-1", "100");
                let _ = row.status_time(offset);
                if let Some(status) = order_status(row, &table, offset, now) {
                    assert!(!status.original.is_empty() || row.status().is_none());
                }
            }
            let _ = pick_existing(rows);
        }
        if let Ok(shipments) = serde_json::from_slice::<Vec<ShipmentRow>>(body) {
            for s in &shipments {
                let _ = s.is_of(88213, "SO-1");
            }
            let _ = with_shipments(table.status("shipped", now), &shipments);
        }
        if let Ok(rows) = serde_json::from_slice::<Vec<InventoryRow>>(body) {
            let _ = stock_levels(&rows, 100, "100");
        }
        if let Ok(rows) = serde_json::from_slice::<Vec<CustomerRow>>(body) {
            let query = AddressQuery::in_country("US").with_city("Columbus");
            for row in &rows {
                let _ = row.matches(&query);
                let _ = row.to_address_option().to_address();
            }
        }
        let details = error_details(body);
        assert!(details.message.chars().count() <= ERROR_TEXT_MAX_CHARS);
        let _ = is_duplicate(&details);
    }

    /// The client's mapping of a refused request with `body`, for every status it
    /// distinguishes: never a panic, and never the key.
    fn check_errors(body: &[u8]) {
        let http = client();
        for status in [400, 401, 403, 404, 408, 409, 422, 429, 500, 502, 599] {
            let mut headers = HeaderMap::new();
            headers.insert(
                RETRY_AFTER,
                HeaderValue::from_static("18446744073709551615"),
            );
            let response = Response {
                status,
                headers,
                body: bytes::Bytes::copy_from_slice(body),
            };
            for missing in [Missing::Order("order SO-1"), Missing::Action] {
                let err = error_for(http, "GET /orders", &response, missing);
                assert!(!format!("{err} {err:?}").contains("s3cr3t"));
            }
        }
    }

    /// An order, shipment, inventory or customer row whose fields may all be wrong.
    fn arb_row() -> impl Strategy<Value = Value> {
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
        (
            any_value(),
            any_value(),
            date(),
            date(),
            any_value(),
            any_value(),
            prop::collection::vec(any_value(), 0..3),
        )
            .prop_map(|(id, status, created, updated, code, qty, numbers)| {
                json!({
                    "order_id": id, "order_number": "SO-1", "client_code": "100",
                    "status": status, "created_on": created, "updated_on": updated,
                    "shipment_id": qty, "tracking_numbers": numbers,
                    "packages": [{"tracking_number": code}],
                    "location_id": 100, "product_code": code, "available": qty,
                    "allocated": qty, "customer_code": code, "zip": status
                })
            })
    }

    #[test]
    fn hostile_bodies_give_typed_errors() {
        let http = client();
        for (label, body) in hostile_bodies() {
            parse_all(&body, 0, Utc::now());
            check_errors(&body);
            if label.starts_with("deep") {
                let err = http
                    .decode::<OneOrMany<OrderRow>>("GET /orders", &body)
                    .unwrap_err();
                assert!(matches!(err, Error::Protocol { .. }), "{label}: {err:?}");
            }
        }
        // Order replies are untagged (one row or many) and fields are read as `Value`s: in
        // both places nesting is refused by the recursion limit.
        let deep = format!("{}{}", "[".repeat(DEEP), "]".repeat(DEEP));
        let err = serde_json::from_slice::<OneOrMany<OrderRow>>(deep.as_bytes()).unwrap_err();
        assert!(is_recursion_limit(&err), "{err}");
        let in_field = format!(r#"[{{"location_id":{}"#, "[".repeat(DEEP));
        let err = serde_json::from_slice::<Vec<InventoryRow>>(in_field.as_bytes()).unwrap_err();
        assert!(is_recursion_limit(&err), "{err}");
        // An unknown field is skipped without recursion, to the end of the body.
        let ignored = format!(r#"[{{"ignored":{}"#, "[".repeat(DEEP));
        assert!(serde_json::from_slice::<Vec<InventoryRow>>(ignored.as_bytes()).is_err());
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn arbitrary_bytes(body in arb_bytes(), offset in arb_offset(), now in arb_instant()) {
            parse_all(&body, offset, now);
            check_errors(&body);
        }

        #[test]
        fn arbitrary_json(value in arb_json(), offset in arb_offset(), now in arb_instant()) {
            parse_all(&serde_json::to_vec(&value).unwrap(), offset, now);
            parse_all(&serde_json::to_vec(&[&value]).unwrap(), offset, now);
        }

        #[test]
        fn arbitrary_rows(rows in prop::collection::vec(arb_row(), 0..4), offset in arb_offset(), now in arb_instant()) {
            parse_all(&serde_json::to_vec(&rows).unwrap(), offset, now);
            if let Some(row) = rows.first() {
                parse_all(&serde_json::to_vec(row).unwrap(), offset, now);
            }
        }

        #[test]
        fn arbitrary_dates(text in arb_date_text(), offset in arb_offset()) {
            if let Err(err) = parse_date_time(&text, offset) {
                prop_assert!(matches!(err, Error::Protocol { .. }), "{:?}", err);
                prop_assert!(err.to_string().chars().count() < 200);
            }
        }
    }
}
