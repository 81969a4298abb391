//! Delivery statuses: the normalized [`StatusCode`], the provider's words kept beside it in
//! [`DeliveryStatus`], trouble on the way as [`Problem`], pickup points, and the
//! [`StatusTable`] that maps a provider's raw status text to a code.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use super::shared_text::Text;
use chrono::{DateTime, NaiveTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use super::order::Payment;

/// The normalized classification of a delivery status, which host triggers match on.
///
/// Codes −1…1000 are exactly SalesRender's logistic status codes, so triggers written against
/// them keep working; 900, 910 and 920 are fulfillkit's extensions. The classification order
/// (used to sort a status history) is the order of the codes, with [`StatusCode::Unknown`] last.
/// Serialized as its snake_case name; [`StatusCode::code`] gives the integer.
///
/// | code | variant | meaning |
/// |---:|---|---|
/// | −1 | `Unregistered` | not registered at the provider, or removed there |
/// | 1 | `Created` | created, not yet registered |
/// | 50 | `Registered` | registered at the provider, waiting for processing |
/// | 100 | `Accepted` | accepted by the warehouse or partner |
/// | 150 | `Packed` | packed |
/// | 200 | `InTransit` | handed to the carrier, on its way |
/// | 300 | `Arrived` | arrived in the destination city or pickup point |
/// | 400 | `OnDelivery` | out for delivery |
/// | 450 | `Pending` | a delivery attempt failed, or waiting for the recipient |
/// | 500 | `Delivered` | delivered |
/// | 550 | `Paid` | delivered and cash on delivery collected |
/// | 600 | `Returned` | refused or undeliverable; a return is expected |
/// | 650 | `ReturningToSender` | travelling back |
/// | 699 | `DeliveredToSender` | back at the warehouse |
/// | 900 | `Cancelled` | cancelled before shipping |
/// | 910 | `Lost` | lost by a carrier |
/// | 920 | `Damaged` | damaged in transit |
/// | 1000 | `Unknown` | the provider said something not in the status table |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusCode {
    /// −1: not registered at the provider, or removed there.
    Unregistered,
    /// 1: created, not yet registered.
    Created,
    /// 50: registered at the provider, waiting for processing.
    Registered,
    /// 100: accepted by the warehouse or partner.
    Accepted,
    /// 150: packed.
    Packed,
    /// 200: handed to the carrier, on its way.
    InTransit,
    /// 300: arrived in the destination city or pickup point.
    Arrived,
    /// 400: out for delivery.
    OnDelivery,
    /// 450: a delivery attempt failed, or waiting for the recipient.
    Pending,
    /// 500: delivered.
    Delivered,
    /// 550: delivered and cash on delivery collected.
    Paid,
    /// 600: refused or undeliverable; a return is expected.
    Returned,
    /// 650: travelling back to the sender.
    ReturningToSender,
    /// 699: back at the sender's warehouse.
    DeliveredToSender,
    /// 900: cancelled (fulfillkit extension).
    Cancelled,
    /// 910: lost (fulfillkit extension).
    Lost,
    /// 920: damaged (fulfillkit extension).
    Damaged,
    /// 1000: the provider's status is not in the status table; the original text is kept.
    Unknown,
}

impl StatusCode {
    /// Every code in classification order.
    pub const ALL: [StatusCode; 18] = [
        StatusCode::Unregistered,
        StatusCode::Created,
        StatusCode::Registered,
        StatusCode::Accepted,
        StatusCode::Packed,
        StatusCode::InTransit,
        StatusCode::Arrived,
        StatusCode::OnDelivery,
        StatusCode::Pending,
        StatusCode::Delivered,
        StatusCode::Paid,
        StatusCode::Returned,
        StatusCode::ReturningToSender,
        StatusCode::DeliveredToSender,
        StatusCode::Cancelled,
        StatusCode::Lost,
        StatusCode::Damaged,
        StatusCode::Unknown,
    ];

    /// The stable integer code (SalesRender-compatible below 900).
    pub const fn code(self) -> i32 {
        match self {
            StatusCode::Unregistered => -1,
            StatusCode::Created => 1,
            StatusCode::Registered => 50,
            StatusCode::Accepted => 100,
            StatusCode::Packed => 150,
            StatusCode::InTransit => 200,
            StatusCode::Arrived => 300,
            StatusCode::OnDelivery => 400,
            StatusCode::Pending => 450,
            StatusCode::Delivered => 500,
            StatusCode::Paid => 550,
            StatusCode::Returned => 600,
            StatusCode::ReturningToSender => 650,
            StatusCode::DeliveredToSender => 699,
            StatusCode::Cancelled => 900,
            StatusCode::Lost => 910,
            StatusCode::Damaged => 920,
            StatusCode::Unknown => 1000,
        }
    }

    /// The code's snake_case name, as serialized (`in_transit`).
    pub const fn as_str(self) -> &'static str {
        match self {
            StatusCode::Unregistered => "unregistered",
            StatusCode::Created => "created",
            StatusCode::Registered => "registered",
            StatusCode::Accepted => "accepted",
            StatusCode::Packed => "packed",
            StatusCode::InTransit => "in_transit",
            StatusCode::Arrived => "arrived",
            StatusCode::OnDelivery => "on_delivery",
            StatusCode::Pending => "pending",
            StatusCode::Delivered => "delivered",
            StatusCode::Paid => "paid",
            StatusCode::Returned => "returned",
            StatusCode::ReturningToSender => "returning_to_sender",
            StatusCode::DeliveredToSender => "delivered_to_sender",
            StatusCode::Cancelled => "cancelled",
            StatusCode::Lost => "lost",
            StatusCode::Damaged => "damaged",
            StatusCode::Unknown => "unknown",
        }
    }

    /// The code for an integer, or `None` if no code has that number.
    pub fn from_code(code: i32) -> Option<StatusCode> {
        StatusCode::ALL.into_iter().find(|s| s.code() == code)
    }

    /// Whether nothing more can happen to the shipment whatever the payment:
    /// `Paid`, `DeliveredToSender`, `Cancelled`, `Lost`, `Damaged`.
    ///
    /// `Delivered` is final only for a prepaid order (see [`StatusCode::is_final_for`]): with
    /// cash on delivery, `Paid` may still follow.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            StatusCode::Paid
                | StatusCode::DeliveredToSender
                | StatusCode::Cancelled
                | StatusCode::Lost
                | StatusCode::Damaged
        )
    }

    /// Whether tracking can stop for an order paid with `payment`: the terminal codes, and
    /// `Delivered` for a prepaid order.
    pub fn is_final_for(self, payment: &Payment) -> bool {
        self.is_terminal() || (self == StatusCode::Delivered && !payment.is_cash_on_delivery())
    }
}

impl PartialOrd for StatusCode {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Classification order: the order of [`StatusCode::ALL`], `Unknown` last.
impl Ord for StatusCode {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.code().cmp(&other.code())
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?} ({})", self.code())
    }
}

/// Trouble on the way, reported beside the status code (it is not a code of its own).
///
/// A failed delivery attempt is [`StatusCode::Pending`] with [`Problem::RecipientAbsent`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Problem {
    /// Nobody was there to receive the parcel.
    RecipientAbsent,
    /// The courier could not find the address.
    AddressNotFound,
    /// The recipient refused the parcel or refused to pay.
    Refused,
    /// The provider waits for stock.
    OutOfStock,
    /// Another problem, in the provider's words.
    Other(String),
}

/// Longest `original` text kept, in characters.
pub const ORIGINAL_MAX_CHARS: usize = 250;

/// One status of a shipment: the normalized code and exactly what the provider said.
#[derive(Debug, Clone, Eq, Hash, Serialize, Deserialize)]
#[allow(
    clippy::derived_hash_with_manual_eq,
    reason = "`eq` compares every field the derived hash hashes, only in another order"
)]
pub struct DeliveryStatus {
    /// Normalized classification.
    pub code: StatusCode,
    /// The provider's own status text, trimmed, at most 250 characters; never dropped.
    #[serde(deserialize_with = "deserialize_original")]
    pub original: Text,
    /// When the provider says the status happened (UTC).
    pub at: DateTime<Utc>,
    /// Trouble on the way, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<Problem>,
    /// The pickup point the parcel waits at, if any. Boxed: most statuses have none, and a
    /// history keeps many statuses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pickup_point: Option<Box<PickupPoint>>,
    /// The carrier handling the parcel, e.g. `SDA`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier: Option<Text>,
    /// The carrier's own tracking number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier_tracking_number: Option<Text>,
    /// A page where the recipient can follow the parcel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_url: Option<Text>,
}

impl PartialEq for DeliveryStatus {
    /// Every field equal. The cheap fields are compared first: tracking compares each status a
    /// provider reports with the whole stored history, and statuses differ mostly by time.
    fn eq(&self, other: &Self) -> bool {
        self.code == other.code
            && self.at == other.at
            && self.original == other.original
            && self.carrier == other.carrier
            && self.carrier_tracking_number == other.carrier_tracking_number
            && self.tracking_url == other.tracking_url
            && self.problem == other.problem
            && self.pickup_point == other.pickup_point
    }
}

impl DeliveryStatus {
    /// A status with `code` and the provider's text `original` (trimmed and cut to 250
    /// characters), at `at`.
    pub fn new(code: StatusCode, original: impl AsRef<str>, at: DateTime<Utc>) -> Self {
        Self {
            code,
            original: clean_original(original.as_ref()).into(),
            at,
            problem: None,
            pickup_point: None,
            carrier: None,
            carrier_tracking_number: None,
            tracking_url: None,
        }
    }

    /// Sets the problem.
    pub fn with_problem(mut self, problem: Problem) -> Self {
        self.problem = Some(problem);
        self
    }

    /// Sets the pickup point.
    pub fn with_pickup_point(mut self, point: PickupPoint) -> Self {
        self.pickup_point = Some(Box::new(point));
        self
    }

    /// Sets the carrier and its tracking number.
    pub fn with_carrier(mut self, carrier: impl Into<Text>, tracking_number: Option<Text>) -> Self {
        self.carrier = Some(carrier.into());
        self.carrier_tracking_number = tracking_number;
        self
    }
}

impl DeliveryStatus {
    /// The status with every text a provider sent bounded, as fulfillkit keeps it: the
    /// original text as [`clean_original`] makes it; carrier, problem and pickup-point texts
    /// trimmed, cut to [`TEXT_MAX_CHARS`](super::TEXT_MAX_CHARS) characters and cleaned of
    /// control characters; a tracking number or link that is blank, longer than that or holds
    /// a control character dropped (a cut number would be a wrong one). Short clean texts are
    /// kept as they are, without a copy.
    pub(crate) fn bounded(mut self) -> Self {
        use super::limits::{TEXT_MAX_CHARS as MAX, bound_text, usable_id};
        fn keep(text: &mut String) {
            if let std::borrow::Cow::Owned(bounded) = bound_text(text, MAX) {
                *text = bounded;
            } else if text.len() != text.trim().len() {
                *text = text.trim().to_owned();
            }
        }
        fn keep_text(text: &mut Text) {
            if let std::borrow::Cow::Owned(bounded) = bound_text(text, MAX) {
                *text = bounded.into();
            } else if text.len() != text.trim().len() {
                *text = text.trim().into();
            }
        }
        let untrimmed = |t: &str| t.starts_with(is_trimmed) || t.ends_with(is_trimmed);
        if self.original.len() > ORIGINAL_MAX_CHARS || untrimmed(&self.original) {
            self.original = clean_original(&self.original).into();
        }
        if let Some(carrier) = &mut self.carrier {
            keep_text(carrier);
        }
        if let Some(Problem::Other(text)) = &mut self.problem {
            keep(text);
        }
        self.carrier_tracking_number = self
            .carrier_tracking_number
            .take()
            .filter(|n| usable_id(n, MAX));
        self.tracking_url = self.tracking_url.take().filter(|u| usable_id(u, MAX));
        if let Some(point) = &mut self.pickup_point {
            for text in [
                &mut point.id,
                &mut point.name,
                &mut point.address,
                &mut point.postcode,
            ] {
                keep(text);
            }
            point.phones.retain(|p| usable_id(p, MAX));
            if let Some(note) = &mut point.opening_hours.note {
                keep(note);
            }
        }
        self
    }
}

/// What [`clean_original`] strips from both ends: whitespace and ASCII control characters
/// (PHP's `trim`, which SalesRender uses, strips NUL and the vertical tab too).
fn is_trimmed(c: char) -> bool {
    c.is_whitespace() || c.is_ascii_control()
}

/// Trims whitespace and ASCII control characters from both ends and cuts a provider's status
/// text to [`ORIGINAL_MAX_CHARS`] characters.
pub fn clean_original(text: &str) -> String {
    let trimmed = text.trim_matches(is_trimmed);
    match trimmed.char_indices().nth(ORIGINAL_MAX_CHARS) {
        Some((cut, _)) => trimmed[..cut].trim_end_matches(is_trimmed).to_owned(),
        None => trimmed.to_owned(),
    }
}

fn deserialize_original<'de, D: Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
    let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
    Ok(clean_original(&raw).into())
}

/// A pickup point or parcel locker where the parcel waits for the recipient.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PickupPoint {
    /// The provider's or carrier's code of the point.
    pub id: String,
    /// Display name, e.g. `Paczkomat WAW01A`.
    pub name: String,
    /// The point's address on one line, as the provider gives it.
    pub address: String,
    /// The point's postal code.
    pub postcode: String,
    /// Phone numbers of the point.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phones: Vec<String>,
    /// When the point is open.
    #[serde(default)]
    pub opening_hours: OpeningHours,
    /// Where the point is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinates: Option<Coordinates>,
}

/// A position in WGS 84 degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Coordinates {
    /// Latitude, −90…90.
    pub lat: f64,
    /// Longitude, −180…180.
    pub lon: f64,
}

// Coordinates are compared bit for bit: two points are the same point only if the provider
// sent the same numbers, which is what change detection needs.
impl Eq for Coordinates {}

impl std::hash::Hash for Coordinates {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.lat.to_bits().hash(state);
        self.lon.to_bits().hash(state);
    }
}

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl Weekday {
    /// Monday to Sunday.
    pub const ALL: [Weekday; 7] = [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
        Weekday::Saturday,
        Weekday::Sunday,
    ];
}

/// A time range within one day, `from` inclusive, `to` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TimeRange {
    /// Opening time.
    pub from: NaiveTime,
    /// Closing time.
    pub to: NaiveTime,
}

/// Opening hours per weekday; a day missing from `days` is closed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OpeningHours {
    /// Open ranges per day.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub days: BTreeMap<Weekday, Vec<TimeRange>>,
    /// The provider's own wording when it gives no structure, e.g. `24/7`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl OpeningHours {
    /// The same ranges on each of `days`.
    pub fn on(days: &[Weekday], ranges: &[TimeRange]) -> Self {
        Self {
            days: days.iter().map(|d| (*d, ranges.to_vec())).collect(),
            note: None,
        }
    }

    /// Whether the point is open on `day` at `time`.
    pub fn is_open(&self, day: Weekday, time: NaiveTime) -> bool {
        self.days
            .get(&day)
            .is_some_and(|ranges| ranges.iter().any(|r| r.from <= time && time < r.to))
    }
}

/// One rule of [`CommentRules`]: a status whose comment contains any of `contains` gets
/// `code`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommentRule {
    /// Phrases, compared with the comment without case, accents or runs of whitespace
    /// ([`normalize_search_text`](super::normalize_search_text)): "disponibile per il ritiro"
    /// matches "Disponibile per il RITIRO presso…".
    pub contains: Vec<String>,
    /// The code a matching status gets.
    pub code: StatusCode,
}

/// Rules that refine a provider's status by its free comment text, for providers whose
/// status vocabulary lacks a step their comments describe (Wapi reports a parcel waiting at
/// a pickup point only as `InTransit` with a comment such as "disponibile per il ritiro").
///
/// Rules are tried in order; the first whose phrases occur in the comment gives the code.
/// Serde data (a list of rules), so an instance's rules can live in the host's configuration.
/// Which statuses a provider refines is the provider's rule (Wapi: `InTransit` without a
/// trouble status).
///
/// ```
/// use fulfillkit::model::{CommentRules, StatusCode};
///
/// let rules = CommentRules::new()
///     .with(StatusCode::Arrived, ["disponibile per il ritiro", "available for pickup"])
///     .with(StatusCode::OnDelivery, ["in consegna"]);
/// assert_eq!(rules.code_for("Pacco DISPONIBILE per il ritiro presso Tabaccheria"), Some(StatusCode::Arrived));
/// assert_eq!(rules.code_for("In consegna oggi"), Some(StatusCode::OnDelivery));
/// assert_eq!(rules.code_for("Partito dall'hub"), None);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<CommentRule>", into = "Vec<CommentRule>")]
pub struct CommentRules {
    rules: Vec<CommentRule>,
    /// Every phrase, normalized once, with its rule's code, in rule order.
    normalized: Vec<(String, StatusCode)>,
}

impl From<Vec<CommentRule>> for CommentRules {
    fn from(rules: Vec<CommentRule>) -> Self {
        let normalized = rules
            .iter()
            .flat_map(|rule| {
                rule.contains
                    .iter()
                    .map(|phrase| (super::normalize_search_text(phrase), rule.code))
            })
            .filter(|(phrase, _)| !phrase.is_empty())
            .collect();
        Self { rules, normalized }
    }
}

impl From<CommentRules> for Vec<CommentRule> {
    fn from(rules: CommentRules) -> Self {
        rules.rules
    }
}

impl CommentRules {
    /// No rules: comments change nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a rule after the existing ones: a comment containing any of `phrases` gives
    /// `code`.
    pub fn with<I, S>(self, code: StatusCode, phrases: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut rules = self.rules;
        rules.push(CommentRule {
            contains: phrases.into_iter().map(Into::into).collect(),
            code,
        });
        rules.into()
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[CommentRule] {
        &self.rules
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.normalized.is_empty()
    }

    /// The code of the first rule whose phrase occurs in `comment`, if any.
    pub fn code_for(&self, comment: &str) -> Option<StatusCode> {
        if self.normalized.is_empty() || comment.trim().is_empty() {
            return None;
        }
        let comment = super::normalize_search_text(comment);
        self.normalized
            .iter()
            .find(|(phrase, _)| comment.contains(phrase.as_str()))
            .map(|(_, code)| *code)
    }
}

/// What a raw provider status means: a code and, optionally, a problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusMapping {
    /// The normalized code.
    pub code: StatusCode,
    /// Trouble the raw status implies, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<Problem>,
}

/// A provider's table raw status text → [`StatusMapping`], as data.
///
/// Keys are compared after lowercasing and removing spaces, `_` and `-`, so
/// "Assigned to partner" finds `AssignedToPartner`. A raw status not in the table maps to
/// [`StatusCode::Unknown`]; it is never an error. Instances can override entries
/// ([`StatusTable::with_overrides`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusTable {
    entries: HashMap<String, StatusMapping>,
}

/// Lowercases and removes spaces, `_` and `-`: the key under which a raw status is looked up.
pub fn normalize_status_key(raw: &str) -> String {
    raw.chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-') && !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Calls `f` with [`normalize_status_key`] of `raw`, built on the stack when `raw` is short
/// ASCII (most raw statuses): tracking normalizes a few keys per status, and an allocation
/// each showed in profiles.
pub(crate) fn with_status_key<R>(raw: &str, f: impl FnOnce(&str) -> R) -> R {
    let mut buf = [0u8; 64];
    let mut len = 0;
    for &b in raw.as_bytes() {
        if !b.is_ascii() || len == buf.len() {
            return f(&normalize_status_key(raw));
        }
        // char::is_whitespace also counts the vertical tab, u8::is_ascii_whitespace not.
        if !matches!(b, b' ' | b'_' | b'-' | 0x0b) && !b.is_ascii_whitespace() {
            buf[len] = b.to_ascii_lowercase();
            len += 1;
        }
    }
    match std::str::from_utf8(&buf[..len]) {
        Ok(key) => f(key),
        // Unreachable: only ASCII bytes were copied.
        Err(_) => f(&normalize_status_key(raw)),
    }
}

impl StatusTable {
    /// An empty table (every status is `Unknown`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) `raw` → `code`.
    pub fn with(mut self, raw: &str, code: StatusCode) -> Self {
        self.insert(
            raw,
            StatusMapping {
                code,
                problem: None,
            },
        );
        self
    }

    /// Adds (or replaces) `raw` → `code` with `problem`.
    pub fn with_problem(mut self, raw: &str, code: StatusCode, problem: Problem) -> Self {
        self.insert(
            raw,
            StatusMapping {
                code,
                problem: Some(problem),
            },
        );
        self
    }

    /// Adds (or replaces) one entry.
    pub fn insert(&mut self, raw: &str, mapping: StatusMapping) {
        self.entries.insert(normalize_status_key(raw), mapping);
    }

    /// This table with `overrides` applied on top (an instance's own meanings win).
    pub fn with_overrides<'a>(
        mut self,
        overrides: impl IntoIterator<Item = (&'a String, &'a StatusMapping)>,
    ) -> Self {
        for (raw, mapping) in overrides {
            self.insert(raw, mapping.clone());
        }
        self
    }

    /// The mapping of `raw`, if the table has one.
    pub fn lookup(&self, raw: &str) -> Option<&StatusMapping> {
        if self.entries.is_empty() {
            return None;
        }
        with_status_key(raw, |key| self.entries.get(key))
    }

    /// A [`DeliveryStatus`] for `raw` at `at`: the table's code, or `Unknown`; the original
    /// text is always kept.
    pub fn status(&self, raw: &str, at: DateTime<Utc>) -> DeliveryStatus {
        let mut status = DeliveryStatus::new(StatusCode::Unknown, raw, at);
        if let Some(mapping) = self.lookup(raw) {
            status.code = mapping.code;
            status.problem = mapping.problem.clone();
        }
        status
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    #[test]
    fn codes_match_the_salesrender_table() {
        let expected = [
            (StatusCode::Unregistered, -1),
            (StatusCode::Created, 1),
            (StatusCode::Registered, 50),
            (StatusCode::Accepted, 100),
            (StatusCode::Packed, 150),
            (StatusCode::InTransit, 200),
            (StatusCode::Arrived, 300),
            (StatusCode::OnDelivery, 400),
            (StatusCode::Pending, 450),
            (StatusCode::Delivered, 500),
            (StatusCode::Paid, 550),
            (StatusCode::Returned, 600),
            (StatusCode::ReturningToSender, 650),
            (StatusCode::DeliveredToSender, 699),
            (StatusCode::Cancelled, 900),
            (StatusCode::Lost, 910),
            (StatusCode::Damaged, 920),
            (StatusCode::Unknown, 1000),
        ];
        for (status, code) in expected {
            assert_eq!(status.code(), code, "{status:?}");
            assert_eq!(StatusCode::from_code(code), Some(status));
        }
        assert_eq!(StatusCode::from_code(2), None);
        assert_eq!(StatusCode::ALL.len(), expected.len());
    }

    #[test]
    fn classification_order_is_the_listed_order_with_unknown_last() {
        let mut shuffled = StatusCode::ALL;
        shuffled.reverse();
        shuffled.sort();
        assert_eq!(shuffled, StatusCode::ALL);
        assert_eq!(StatusCode::ALL.iter().max(), Some(&StatusCode::Unknown));
        assert!(StatusCode::Delivered < StatusCode::Returned);
        assert!(StatusCode::Damaged < StatusCode::Unknown);
    }

    #[test]
    fn terminal_codes() {
        let terminal: Vec<_> = StatusCode::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(
            terminal,
            [
                StatusCode::Paid,
                StatusCode::DeliveredToSender,
                StatusCode::Cancelled,
                StatusCode::Lost,
                StatusCode::Damaged
            ]
        );
        let cod = Payment::CashOnDelivery {
            amount: Decimal::ONE,
        };
        assert!(StatusCode::Delivered.is_final_for(&Payment::Prepaid));
        assert!(!StatusCode::Delivered.is_final_for(&cod));
        assert!(StatusCode::Paid.is_final_for(&cod));
        assert!(!StatusCode::InTransit.is_final_for(&Payment::Prepaid));
    }

    #[test]
    fn original_is_trimmed_and_capped_on_char_boundaries() {
        let at = Utc::now();
        let s = DeliveryStatus::new(StatusCode::InTransit, "  In consegna \n", at);
        assert_eq!(s.original, "In consegna");
        let long = "ł".repeat(300);
        let s = DeliveryStatus::new(StatusCode::Unknown, &long, at);
        assert_eq!(s.original.chars().count(), ORIGINAL_MAX_CHARS);
        // Deserializing applies the same rule.
        let json =
            serde_json::json!({"code": "unknown", "original": format!(" {long} "), "at": at});
        let back: DeliveryStatus = serde_json::from_value(json).unwrap();
        assert_eq!(back.original.chars().count(), ORIGINAL_MAX_CHARS);
    }

    #[test]
    fn status_table_normalizes_keys_and_keeps_unknown_text() {
        let table = StatusTable::new()
            .with("AssignedToPartner", StatusCode::Accepted)
            .with_problem("IsRefused", StatusCode::Returned, Problem::Refused);
        let at = Utc::now();
        assert_eq!(
            table.status("Assigned to partner", at).code,
            StatusCode::Accepted
        );
        assert_eq!(
            table.status("assigned_to-PARTNER", at).code,
            StatusCode::Accepted
        );
        let refused = table.status("IsRefused", at);
        assert_eq!(refused.problem, Some(Problem::Refused));
        let unknown = table.status(" Parcel eaten by goat ", at);
        assert_eq!(unknown.code, StatusCode::Unknown);
        assert_eq!(unknown.original, "Parcel eaten by goat");
    }

    proptest::proptest! {
        #[test]
        fn lookup_matches_the_normalized_key(raw in "[ _\\-\t\u{0b}\u{0c}aAbBzZ0é\u{130}]{0,80}") {
            let table = StatusTable::new()
                .with("In Transit", StatusCode::InTransit)
                .with("a-b", StatusCode::Arrived)
                .with("é", StatusCode::Lost)
                .with(&"A".repeat(70), StatusCode::Paid);
            let slow = table.entries.get(&normalize_status_key(&raw));
            proptest::prop_assert_eq!(table.lookup(&raw), slow);
        }
    }

    #[test]
    fn lookup_fast_path_agrees_on_edge_cases() {
        let table = StatusTable::new()
            .with("In Transit", StatusCode::InTransit)
            .with(&"a".repeat(70), StatusCode::Paid);
        for raw in [
            "IN_TRANSIT",
            " in-transit\u{0b}",
            "in\ttransit",
            "Intransit",
        ] {
            assert_eq!(
                table.lookup(raw).map(|m| m.code),
                Some(StatusCode::InTransit),
                "{raw:?}"
            );
        }
        assert_eq!(
            table.lookup(&"A".repeat(70)).map(|m| m.code),
            Some(StatusCode::Paid)
        );
        assert_eq!(table.lookup("In Transitx"), None);
        assert_eq!(StatusTable::new().lookup("In Transit"), None);
    }

    #[test]
    fn overrides_win() {
        let base = StatusTable::new().with("Error", StatusCode::Registered);
        let overrides: BTreeMap<String, StatusMapping> = [(
            "error".to_string(),
            StatusMapping {
                code: StatusCode::Pending,
                problem: None,
            },
        )]
        .into();
        let table = base.with_overrides(&overrides);
        assert_eq!(table.status("Error", Utc::now()).code, StatusCode::Pending);
    }

    #[test]
    fn opening_hours() {
        let nine = NaiveTime::from_hms_opt(9, 0, 0).unwrap();
        let five = NaiveTime::from_hms_opt(17, 0, 0).unwrap();
        let hours = OpeningHours::on(
            &[Weekday::Monday, Weekday::Friday],
            &[TimeRange {
                from: nine,
                to: five,
            }],
        );
        assert!(hours.is_open(Weekday::Monday, nine));
        assert!(!hours.is_open(Weekday::Monday, five));
        assert!(!hours.is_open(Weekday::Sunday, nine));
    }
}
