//! The order as the host hands it over: customer, shipping address, cart, payment.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::codes::{is_country_code, is_currency_code};
use super::ids::{OrderId, Sku};
use super::limits::{
    ADDRESS_LINES_MAX, CART_LINES_MAX, ID_MAX_CHARS, LABELS_MAX, TEXT_MAX_CHARS, check_text,
};
use crate::error::{Error, FieldError, Result};

/// A confirmed order of the host, the unit that is exported to a fulfillment company.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// The host's id (order number); fulfillkit never invents one.
    pub id: OrderId,
    /// When the order was confirmed, if it has been.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_at: Option<DateTime<Utc>>,
    /// Who receives the parcel.
    pub customer: Customer,
    /// Where the parcel goes.
    pub address: Address,
    /// What is in the parcel.
    pub lines: Vec<CartLine>,
    /// Prepaid, or cash to collect on delivery.
    pub payment: Payment,
    /// ISO 4217 code of every amount in the order, e.g. `EUR`.
    pub currency: String,
    /// Free-form labels of the host, used by routing rules.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub tags: BTreeSet<String>,
    /// Free-form key/value data of the host, used by routing rules.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom_fields: BTreeMap<String, String>,
}

/// The recipient of an order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Customer {
    /// Full name as it goes on the label.
    pub name: String,
    /// Phone in E.164 form (`+393401234567`); spaces, dashes and brackets are tolerated.
    pub phone: String,
    /// E-mail, needed by some carriers (parcel lockers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// A postal address, or a pickup point's address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Address {
    /// ISO 3166-1 alpha-2 code, upper case: `IT`, `PL`.
    pub country: String,
    /// Region, province or state, where the country uses one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// City or town.
    pub city: String,
    /// Postal code, kept as text (leading zeros matter: `08002`).
    pub postcode: String,
    /// Street lines, first line first (street and house number, then flat, floor ...).
    pub lines: Vec<String>,
    /// Id of this address in the provider's address directory, when chosen from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_address_id: Option<String>,
    /// Code of the pickup point or parcel locker the parcel goes to, if not to the door.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pickup_point_id: Option<String>,
}

/// One line of the cart.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CartLine {
    /// Product code as registered at the fulfillment company.
    pub sku: Sku,
    /// Human-readable product name.
    pub name: String,
    /// The host's product type (used by routing rules), e.g. `cosmetics`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_type: Option<String>,
    /// How many units.
    pub quantity: u32,
    /// Price of one unit, in the order's currency.
    pub unit_price: Decimal,
}

/// How the order is paid.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Payment {
    /// Paid before shipping; nothing to collect.
    Prepaid,
    /// The carrier collects `amount` from the recipient.
    CashOnDelivery {
        /// Amount to collect, in the order's currency.
        amount: Decimal,
    },
}

impl Payment {
    /// Whether cash is collected on delivery.
    pub fn is_cash_on_delivery(&self) -> bool {
        matches!(self, Payment::CashOnDelivery { .. })
    }

    /// The amount to collect: zero when prepaid.
    pub fn cod_amount(&self) -> Decimal {
        match self {
            Payment::Prepaid => Decimal::ZERO,
            Payment::CashOnDelivery { amount } => *amount,
        }
    }
}

impl Order {
    /// An order with no tags, custom fields or confirmation time.
    pub fn new(
        id: impl Into<OrderId>,
        customer: Customer,
        address: Address,
        lines: Vec<CartLine>,
        payment: Payment,
        currency: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            confirmed_at: None,
            customer,
            address,
            lines,
            payment,
            currency: currency.into(),
            tags: BTreeSet::new(),
            custom_fields: BTreeMap::new(),
        }
    }

    /// Adds a tag.
    pub fn with_tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.insert(tag.into());
        self
    }

    /// Sets a custom field.
    pub fn with_custom_field(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.custom_fields.insert(key.into(), value.into());
        self
    }

    /// Sum of `quantity × unit_price` over the cart, exact; a total beyond [`Decimal`]'s range
    /// (about ±7.9 × 10²⁸) saturates at [`Decimal::MAX`] / [`Decimal::MIN`] instead of
    /// panicking.
    pub fn total(&self) -> Decimal {
        self.lines.iter().fold(Decimal::ZERO, |sum, l| {
            sum.saturating_add(l.unit_price.saturating_mul(Decimal::from(l.quantity)))
        })
    }

    /// Checks everything a fulfillment company needs, reporting every problem at once.
    ///
    /// Besides the business rules (a phone in E.164, ISO country and currency codes, a street,
    /// a non-empty cart of positive quantities, no negative amounts), every text is bounded
    /// ([`model` limits](super::ID_MAX_CHARS)): ids, skus, tags and custom-field keys at most
    /// [`ID_MAX_CHARS`](super::ID_MAX_CHARS) characters, other texts at most
    /// [`TEXT_MAX_CHARS`](super::TEXT_MAX_CHARS), no control characters anywhere; at most
    /// [`ADDRESS_LINES_MAX`](super::ADDRESS_LINES_MAX) street lines,
    /// [`CART_LINES_MAX`](super::CART_LINES_MAX) cart lines and
    /// [`LABELS_MAX`](super::LABELS_MAX) tags and custom fields; `confirmed_at` must lie in the
    /// years 1970 to 9999, which every provider's date format can carry. (The orchestrator
    /// also refuses host order ids containing [`REEXPORT_MARKER`](super::REEXPORT_MARKER),
    /// `~`, which it reserves for the numbers of re-exported orders.)
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] listing each bad field with its path and reason.
    ///
    /// # Examples
    ///
    /// ```
    /// use fulfillkit::model::{Address, CartLine, Customer, Order, Payment};
    /// use rust_decimal::Decimal;
    ///
    /// let mut order = Order::new(
    ///     "SO-1",
    ///     Customer { name: "Giulia Rossi".into(), phone: "+39 340 123-4567".into(), email: None },
    ///     Address {
    ///         country: "IT".into(), region: None, city: "Venezia".into(), postcode: "30121".into(),
    ///         lines: vec!["Via Roma 12".into()], provider_address_id: None, pickup_point_id: None,
    ///     },
    ///     vec![CartLine {
    ///         sku: "Demo Product-1".into(), name: "Demo".into(), product_type: None,
    ///         quantity: 2, unit_price: Decimal::new(2450, 2),
    ///     }],
    ///     Payment::Prepaid,
    ///     "EUR",
    /// );
    /// assert!(order.validate().is_ok());
    ///
    /// order.customer.phone = "call me".into();
    /// order.lines[0].quantity = 0;
    /// let err = order.validate().unwrap_err();
    /// let paths: Vec<_> = err.field_errors().iter().map(|f| f.path.as_str()).collect();
    /// assert_eq!(paths, ["customer.phone", "lines[0].quantity"]);
    /// ```
    pub fn validate(&self) -> Result<()> {
        let mut errors = Vec::new();
        let mut bad = |path: &str, reason: &str| errors.push(FieldError::new(path, reason));

        if self.id.as_str().trim().is_empty() {
            bad("id", "must not be empty");
        }
        if let Some(at) = self.confirmed_at
            && !(earliest_date()..=latest_date()).contains(&at)
        {
            bad("confirmed_at", "must lie in the years 1970 to 9999");
        }
        if self.customer.name.trim().is_empty() {
            bad("customer.name", "must not be empty");
        }
        if !is_e164(&self.customer.phone) {
            bad(
                "customer.phone",
                "must be E.164: '+' then 8 to 15 digits (spaces, dashes and brackets allowed)",
            );
        }
        if !is_country_code(&self.address.country) {
            bad(
                "address.country",
                "must be an ISO 3166-1 alpha-2 code in upper case",
            );
        }
        if self.address.city.trim().is_empty() {
            bad("address.city", "must not be empty");
        }
        if self.address.postcode.trim().is_empty() {
            bad("address.postcode", "must not be empty");
        }
        if self.address.lines.iter().all(|l| l.trim().is_empty()) {
            bad("address.lines", "must contain a street");
        }
        if self.lines.is_empty() {
            bad("lines", "the cart must not be empty");
        }
        for (i, line) in self.lines.iter().enumerate() {
            if line.sku.as_str().trim().is_empty() {
                bad(&format!("lines[{i}].sku"), "must not be empty");
            }
            if line.quantity == 0 {
                bad(&format!("lines[{i}].quantity"), "must be at least 1");
            }
            if line.unit_price.is_sign_negative() && !line.unit_price.is_zero() {
                bad(&format!("lines[{i}].unit_price"), "must not be negative");
            }
        }
        if let Payment::CashOnDelivery { amount } = &self.payment
            && amount.is_sign_negative()
            && !amount.is_zero()
        {
            bad("payment.amount", "must not be negative");
        }
        if !is_currency_code(&self.currency) {
            bad("currency", "must be an active ISO 4217 code in upper case");
        }

        self.check_bounds(&mut errors);

        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::validation(format!("order {}", self.id), errors))
        }
    }

    /// The length, count and control-character rules of [`Order::validate`].
    fn check_bounds(&self, errors: &mut Vec<FieldError>) {
        let id = |path: &str, value: &str, errors: &mut Vec<FieldError>| {
            check_text(path, value, ID_MAX_CHARS, errors)
        };
        let text = |path: &str, value: &str, errors: &mut Vec<FieldError>| {
            check_text(path, value, TEXT_MAX_CHARS, errors)
        };
        let count = |path: &str, n: usize, max: usize, errors: &mut Vec<FieldError>| {
            if n > max {
                errors.push(FieldError::new(
                    path,
                    format!("must have at most {max} entries"),
                ));
            }
        };
        id("id", self.id.as_str(), errors);
        text("customer.name", &self.customer.name, errors);
        text("customer.phone", &self.customer.phone, errors);
        if let Some(email) = &self.customer.email {
            text("customer.email", email, errors);
        }
        let address = &self.address;
        if let Some(region) = &address.region {
            text("address.region", region, errors);
        }
        text("address.city", &address.city, errors);
        text("address.postcode", &address.postcode, errors);
        count(
            "address.lines",
            address.lines.len(),
            ADDRESS_LINES_MAX,
            errors,
        );
        for (i, line) in address.lines.iter().enumerate() {
            text(&format!("address.lines[{i}]"), line, errors);
        }
        if let Some(value) = &address.provider_address_id {
            id("address.provider_address_id", value, errors);
        }
        if let Some(value) = &address.pickup_point_id {
            id("address.pickup_point_id", value, errors);
        }
        count("lines", self.lines.len(), CART_LINES_MAX, errors);
        for (i, line) in self.lines.iter().enumerate() {
            id(&format!("lines[{i}].sku"), line.sku.as_str(), errors);
            text(&format!("lines[{i}].name"), &line.name, errors);
            if let Some(kind) = &line.product_type {
                id(&format!("lines[{i}].product_type"), kind, errors);
            }
        }
        count("tags", self.tags.len(), LABELS_MAX, errors);
        for tag in &self.tags {
            id("tags", tag, errors);
        }
        count(
            "custom_fields",
            self.custom_fields.len(),
            LABELS_MAX,
            errors,
        );
        for (key, value) in &self.custom_fields {
            id("custom_fields", key, errors);
            text(
                &format!(
                    "custom_fields.{}",
                    key.chars().take(ID_MAX_CHARS).collect::<String>()
                ),
                value,
                errors,
            );
        }
    }
}

/// The first instant `confirmed_at` may be: 1970-01-01T00:00:00Z.
fn earliest_date() -> DateTime<Utc> {
    DateTime::UNIX_EPOCH
}

/// The last instant `confirmed_at` may be: the end of 9999, shifted by the largest UTC offset a
/// provider may apply, so that every local date still has four digits.
fn latest_date() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(9999, 12, 30)
        .and_then(|d| d.and_hms_opt(23, 59, 59))
        .map_or(DateTime::UNIX_EPOCH, |d| d.and_utc())
}

/// The phone with spaces, dashes, dots and brackets removed, as sent to providers.
pub fn normalize_phone(phone: &str) -> String {
    phone
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.' | '\u{a0}'))
        .collect()
}

fn is_e164(phone: &str) -> bool {
    let normalized = normalize_phone(phone);
    match normalized.strip_prefix('+') {
        Some(digits) => {
            (8..=15).contains(&digits.len())
                && digits.bytes().all(|b| b.is_ascii_digit())
                && !digits.starts_with('0')
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn valid_order() -> Order {
        Order::new(
            "SO-1001",
            Customer {
                name: "Giulia Rossi".into(),
                phone: "+39 (340) 123-4567".into(),
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
                CartLine {
                    sku: "Demo Product-1".into(),
                    name: "Demo 1".into(),
                    product_type: Some("cosmetics".into()),
                    quantity: 2,
                    unit_price: Decimal::new(2450, 2),
                },
                CartLine {
                    sku: "Demo Product-2".into(),
                    name: "Demo 2".into(),
                    product_type: None,
                    quantity: 1,
                    unit_price: Decimal::new(1000, 2),
                },
            ],
            Payment::CashOnDelivery {
                amount: Decimal::new(5900, 2),
            },
            "EUR",
        )
    }

    fn paths(order: &Order) -> Vec<(String, String)> {
        match order.validate() {
            Ok(()) => vec![],
            Err(e) => e
                .field_errors()
                .iter()
                .map(|f| (f.path.clone(), f.reason.clone()))
                .collect(),
        }
    }

    fn single_error(order: &Order) -> (String, String) {
        let errs = paths(order);
        assert_eq!(errs.len(), 1, "expected one error, got {errs:?}");
        errs.into_iter().next().unwrap()
    }

    #[test]
    fn valid_order_passes() {
        assert_eq!(paths(&valid_order()), vec![]);
        assert_eq!(valid_order().total(), Decimal::new(5900, 2));
    }

    #[test]
    fn each_rule_names_its_field_and_reason() {
        type Edit = fn(&mut Order);
        let cases: Vec<(Edit, &str, &str)> = vec![
            (|o| o.id = "  ".into(), "id", "must not be empty"),
            (
                |o| o.customer.name = " ".into(),
                "customer.name",
                "must not be empty",
            ),
            (
                |o| o.customer.phone = "3401234567".into(),
                "customer.phone",
                "E.164",
            ),
            (
                |o| o.customer.phone = "+39 12".into(),
                "customer.phone",
                "E.164",
            ),
            (
                |o| o.customer.phone = "+1234567890123456".into(),
                "customer.phone",
                "E.164",
            ),
            (
                |o| o.customer.phone = "+39 34O 1234567".into(),
                "customer.phone",
                "E.164",
            ),
            (
                |o| o.address.country = "XX".into(),
                "address.country",
                "ISO 3166-1",
            ),
            (
                |o| o.address.country = "it".into(),
                "address.country",
                "ISO 3166-1",
            ),
            (
                |o| o.address.city = "".into(),
                "address.city",
                "must not be empty",
            ),
            (
                |o| o.address.postcode = " ".into(),
                "address.postcode",
                "must not be empty",
            ),
            (|o| o.address.lines = vec![], "address.lines", "street"),
            (
                |o| o.address.lines = vec![" ".into()],
                "address.lines",
                "street",
            ),
            (|o| o.lines.clear(), "lines", "must not be empty"),
            (
                |o| o.lines[1].quantity = 0,
                "lines[1].quantity",
                "at least 1",
            ),
            (
                |o| o.lines[0].unit_price = Decimal::new(-1, 2),
                "lines[0].unit_price",
                "negative",
            ),
            (
                |o| o.lines[0].sku = "".into(),
                "lines[0].sku",
                "must not be empty",
            ),
            (
                |o| {
                    o.payment = Payment::CashOnDelivery {
                        amount: Decimal::new(-500, 2),
                    }
                },
                "payment.amount",
                "negative",
            ),
            (|o| o.currency = "EURO".into(), "currency", "ISO 4217"),
        ];
        for (edit, path, reason) in cases {
            let mut order = valid_order();
            edit(&mut order);
            let (got_path, got_reason) = single_error(&order);
            assert_eq!(got_path, path);
            assert!(
                got_reason.contains(reason),
                "{path}: reason {got_reason:?} lacks {reason:?}"
            );
        }
    }

    #[test]
    fn five_bad_fields_report_five() {
        let mut order = valid_order();
        order.customer.name.clear();
        order.customer.phone = "nope".into();
        order.address.country = "ZZ".into();
        order.lines[0].quantity = 0;
        order.currency = "XYZ".into();
        let errs = paths(&order);
        let got: Vec<&str> = errs.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            got,
            [
                "customer.name",
                "customer.phone",
                "address.country",
                "lines[0].quantity",
                "currency"
            ]
        );
        let message = order.validate().unwrap_err().to_string();
        assert!(message.starts_with("invalid order SO-1001: customer.name"));
    }

    #[test]
    fn zero_prices_and_zero_cod_are_valid() {
        let mut order = valid_order();
        order.lines[0].unit_price = Decimal::ZERO;
        order.payment = Payment::CashOnDelivery {
            amount: Decimal::ZERO,
        };
        assert_eq!(paths(&order), vec![]);
    }

    #[test]
    fn phone_normalization() {
        assert_eq!(normalize_phone("+39 (340) 123-4567"), "+393401234567");
        assert!(is_e164("+48501234567"));
        assert!(!is_e164("+0501234567"));
    }
}

/// Hostile input (issue 10, part 4): arbitrary orders, odd unicode, huge and negative
/// decimals, zero quantities, and arbitrary JSON in place of any field.
#[cfg(test)]
mod hostile {
    use proptest::prelude::*;
    use serde_json::Value;

    use super::tests::valid_order;
    use super::*;
    use crate::provider::hostile_tests::{arb_json, arb_text, config};

    fn arb_decimal() -> impl Strategy<Value = Decimal> {
        prop_oneof![
            Just(Decimal::MAX),
            Just(Decimal::MIN),
            Just(Decimal::ZERO),
            Just(Decimal::new(-0, 2)),
            Just(Decimal::new(1, 28)),
            Just(Decimal::new(-1, 28)),
            (any::<i64>(), 0u32..=28).prop_map(|(n, scale)| Decimal::new(n, scale)),
            (
                any::<u32>(),
                any::<u32>(),
                any::<u32>(),
                any::<bool>(),
                0u32..=28
            )
                .prop_map(|(lo, mid, hi, neg, scale)| Decimal::from_parts(lo, mid, hi, neg, scale)),
        ]
    }

    fn arb_phone() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("+39 (340) 123-4567".to_owned()),
            Just("+\u{a0}393401234567".to_owned()),
            Just("+٣٩٣٤٠١٢٣٤٥٦٧".to_owned()),
            Just("+０３９３４０１２３４５".to_owned()),
            "\\+[0-9 ().-]{0,24}",
            arb_text(),
        ]
    }

    fn arb_line() -> impl Strategy<Value = CartLine> {
        (
            arb_text(),
            arb_text(),
            prop::option::of(arb_text()),
            prop_oneof![Just(0u32), Just(1), Just(u32::MAX), any::<u32>()],
            arb_decimal(),
        )
            .prop_map(|(sku, name, product_type, quantity, unit_price)| CartLine {
                sku: sku.into(),
                name,
                product_type,
                quantity,
                unit_price,
            })
    }

    fn arb_order() -> impl Strategy<Value = Order> {
        let customer = (arb_text(), arb_phone(), prop::option::of(arb_text()))
            .prop_map(|(name, phone, email)| Customer { name, phone, email });
        let code = || prop_oneof![Just("IT".to_owned()), Just("EUR".to_owned()), arb_text()];
        let address = (
            code(),
            prop::option::of(arb_text()),
            arb_text(),
            arb_text(),
            prop::collection::vec(arb_text(), 0..4),
            prop::option::of(arb_text()),
            prop::option::of(arb_text()),
        )
            .prop_map(
                |(country, region, city, postcode, lines, provider_address_id, pickup_point_id)| {
                    Address {
                        country,
                        region,
                        city,
                        postcode,
                        lines,
                        provider_address_id,
                        pickup_point_id,
                    }
                },
            );
        let payment = prop_oneof![
            Just(Payment::Prepaid),
            arb_decimal().prop_map(|amount| Payment::CashOnDelivery { amount }),
        ];
        (
            arb_text(),
            customer,
            address,
            prop::collection::vec(arb_line(), 0..6),
            payment,
            code(),
            prop::collection::btree_set(arb_text(), 0..3),
            prop::collection::btree_map(arb_text(), arb_text(), 0..3),
        )
            .prop_map(
                |(id, customer, address, lines, payment, currency, tags, custom_fields)| {
                    let mut order = Order::new(id, customer, address, lines, payment, currency);
                    order.tags = tags;
                    order.custom_fields = custom_fields;
                    order
                },
            )
    }

    fn is_known_path(path: &str, lines: usize) -> bool {
        const FIXED: &[&str] = &[
            "id",
            "customer.name",
            "customer.phone",
            "address.country",
            "address.city",
            "address.postcode",
            "address.lines",
            "lines",
            "payment.amount",
            "currency",
        ];
        const BOUNDED: &[&str] = &[
            "confirmed_at",
            "customer.email",
            "address.region",
            "address.provider_address_id",
            "address.pickup_point_id",
            "tags",
            "custom_fields",
        ];
        FIXED.contains(&path)
            || BOUNDED.contains(&path)
            || path.starts_with("address.lines[")
            || path.starts_with("custom_fields.")
            || (0..lines).any(|i| {
                ["sku", "quantity", "unit_price", "name", "product_type"]
                    .iter()
                    .any(|field| path == format!("lines[{i}].{field}"))
            })
    }

    /// Paths into an order's JSON where arbitrary JSON is put.
    const JSON_PATHS: &[&[&str]] = &[
        &["id"],
        &["confirmed_at"],
        &["customer"],
        &["customer", "phone"],
        &["address", "lines"],
        &["address", "country"],
        &["lines"],
        &["lines", "0"],
        &["lines", "0", "quantity"],
        &["lines", "0", "unit_price"],
        &["payment"],
        &["payment", "amount"],
        &["currency"],
        &["tags"],
        &["custom_fields"],
    ];

    fn set_at(value: &mut Value, path: &[&str], new: Value) {
        let mut at = value;
        for key in path {
            at = match at {
                Value::Object(map) => map.entry(key.to_string()).or_insert(Value::Null),
                Value::Array(items) => {
                    match key.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                        Some(item) => item,
                        None => return,
                    }
                }
                _ => return,
            };
        }
        *at = new;
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn validation_never_panics_and_names_known_paths(order in arb_order()) {
            let _ = order.total();
            match order.validate() {
                Ok(()) => {
                    prop_assert!(!order.lines.is_empty());
                    prop_assert!(order.lines.iter().all(|l| l.quantity > 0));
                }
                Err(err) => {
                    let is_validation = matches!(err, Error::Validation { .. });
                    prop_assert!(is_validation, "{:?}", err);
                    prop_assert!(!err.field_errors().is_empty());
                    for field in err.field_errors() {
                        prop_assert!(is_known_path(&field.path, order.lines.len()), "{}", field.path);
                    }
                    let _ = err.to_string();
                }
            }
            // The JSON form reads back into the same order.
            let json = serde_json::to_string(&order).unwrap();
            let back: Order = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(back, order);
        }

        #[test]
        fn arbitrary_json_in_any_field_is_an_error_or_an_order(
            at in prop::sample::select(JSON_PATHS),
            new in arb_json(),
        ) {
            let mut value = serde_json::to_value(valid_order()).unwrap();
            set_at(&mut value, at, new);
            if let Ok(order) = serde_json::from_value::<Order>(value.clone()) {
                let _ = order.total();
                let _ = order.validate();
            }
            let bytes = serde_json::to_vec(&value).unwrap();
            if let Ok(order) = serde_json::from_slice::<Order>(&bytes) {
                let _ = order.validate();
            }
        }
    }

    #[test]
    fn huge_totals_saturate() {
        let mut order = valid_order();
        order.lines.truncate(1);
        order.lines[0].unit_price = Decimal::MAX;
        order.lines[0].quantity = u32::MAX;
        assert_eq!(order.total(), Decimal::MAX);
        assert!(order.validate().is_ok(), "huge but valid");
        order.lines[0].unit_price = Decimal::MIN;
        assert_eq!(order.total(), Decimal::MIN);
    }
}
