//! What a running [`WapiSimulator`](super::WapiSimulator) keeps: its orders (`WapiOrder`, with
//! status history, carrier and lifecycle progress), the indexes and counters over them
//! (`WapiState`), the §7 / §8 JSON views of an order (with the simulator's own `statusDate`
//! format), and how a stored body is read (Wapi binds JSON keys case-insensitively).
//!
//! Requests and their validation are in `handlers.rs`; the data a simulator starts with is in
//! `fixtures.rs`.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use chrono::NaiveDateTime;
use chrono::format::{Item, StrftimeItems};
use serde_json::{Map, Value};

use super::fixtures::{WapiPickupPoint, WapiStockRow};
use crate::model::normalize_status_key;
use crate::simulator::SimOrder;
use crate::simulator::lifecycle::{Lifecycle, LifecyclePicker, OrderBook, Progress, Step};
use crate::simulator::server::Clock;

/// Number of the first WH number handed out (`WH0000100001`).
const FIRST_WH_NUMBER: u64 = 100_001;

/// Statuses (normalized) from which the carrier's name and number are known: the parcel was
/// handed to the carrier.
const WITH_CARRIER: &[&str] = &[
    "dispatched",
    "intransit",
    "delivered",
    "returning",
    "returnedtosender",
    "returnprocessed",
    "lost",
    "damaged",
];
/// Terminal statuses (§15a), normalized: the top-level trouble status may be stale there.
const TERMINAL: &[&str] = &[
    "delivered",
    "returnedtosender",
    "returnprocessed",
    "cancelled",
    "lost",
    "damaged",
];

/// The §7 fields of one order in a tracking reply. Absent courier fields are left out, as Wapi
/// does before dispatch.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TrackingJson<'a> {
    tracking_number: &'a str,
    delivery_status: &'a str,
    delivery_status_text: String,
    trouble_status: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    courier_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    courier_site: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    courier_tracking_site_link: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    courier_tracking_number: Option<&'a str>,
}

/// The §7 reply: `{"statuses": [...]}`.
#[derive(serde::Serialize)]
pub(super) struct StatusesJson<'a> {
    pub(super) statuses: Vec<TrackingJson<'a>>,
}

/// One order of the §8 reply: the history, a `null` statusDate, and the §7 fields.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DetailedJson<'a> {
    status_history: Vec<HistoryJson<'a>>,
    /// Always `null`, as in the documented example.
    status_date: (),
    #[serde(flatten)]
    tracking: TrackingJson<'a>,
}

/// How the simulator writes a §8 `statusDate`: the protocol documents a local date-time
/// without offset, whole seconds and 0 to 7 fractional digits (`2022-05-02T05:56:52.05`); the
/// simulator's clock counts milliseconds, so it writes 3 (`2022-05-02T05:56:52.050`).
///
/// Defined here, not borrowed from the adapter that reads these dates, so that a wrong format
/// cannot pass both: a test pins the text to the documented shape.
const STATUS_DATE_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.3f";

/// [`STATUS_DATE_FORMAT`] parsed once, not again for every history entry of every tracking
/// reply.
static STATUS_DATE_ITEMS: LazyLock<Vec<Item<'static>>> =
    LazyLock::new(|| StrftimeItems::new(STATUS_DATE_FORMAT).collect());

/// Writes a §8 `statusDate` straight into the reply.
fn status_date<S: serde::Serializer>(
    at: &NaiveDateTime,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    serializer.collect_str(&at.format_with_items(STATUS_DATE_ITEMS.iter()))
}

/// One `statusHistory` entry of the §8 reply.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct HistoryJson<'a> {
    #[serde(serialize_with = "status_date")]
    status_date: NaiveDateTime,
    status_name: &'a str,
    status_comment: Option<&'a str>,
    trouble_status: Option<&'a str>,
}

/// One entry of an order's status history.
#[derive(Debug, Clone)]
struct Entry {
    at: NaiveDateTime,
    status: String,
    trouble: Option<String>,
    comment: Option<String>,
    location: Option<String>,
}

/// The carrier of a dispatched order.
#[derive(Debug, Clone)]
struct Courier {
    name: String,
    tracking_number: String,
}

impl Courier {
    /// The carrier's home page, for the carriers Wapi's examples name.
    fn site(&self) -> Option<&'static str> {
        Some(match normalize_status_key(&self.name).as_str() {
            "sda" => "https://www.sda.it",
            "gls" | "glsit" => "https://www.gls-italy.com",
            "dpdpl" => "https://www.dpd.com.pl",
            "inpost" => "https://inpost.pl",
            _ => return None,
        })
    }
}

/// An order as the simulator keeps it, keyed by its order number.
#[derive(Debug)]
pub(super) struct WapiOrder {
    pub(super) number: String,
    pub(super) wh: String,
    pub(super) body: Map<String, Value>,
    pub(super) status: String,
    trouble: Option<String>,
    /// The last trouble status ever reported: Wapi keeps it on terminal statuses (§7).
    last_trouble: Option<String>,
    history: Vec<Entry>,
    pub(super) progress: Progress,
    courier: Option<Courier>,
    pub(super) incident: bool,
    pub(super) comments: Vec<Value>,
}

impl WapiOrder {
    /// Order `number` with WH number `wh` and `body`, at the start of `progress` but without a
    /// status yet: [`WapiOrder::enter`] its first step.
    pub(super) fn new(
        number: String,
        wh: String,
        body: Map<String, Value>,
        progress: Progress,
    ) -> Self {
        Self {
            number,
            wh,
            body,
            status: String::new(),
            trouble: None,
            last_trouble: None,
            history: Vec::new(),
            progress,
            courier: None,
            incident: false,
            comments: Vec::new(),
        }
    }

    /// Records `step` at `at` as the current status.
    pub(super) fn enter(
        &mut self,
        step: &Step,
        at: NaiveDateTime,
        points: &[WapiPickupPoint],
        default_courier: &str,
        next_courier_number: &mut u64,
    ) {
        let mut comment = step.comment.clone();
        let mut location = None;
        if step.at_pickup_point
            && let Some(code) = self.pickup_point()
        {
            let known = points.iter().find(|p| p.code.eq_ignore_ascii_case(&code));
            let place = match known {
                Some(point) => point.place(),
                None => {
                    let receiver = field(&self.body, "receiver").and_then(Value::as_object);
                    let part = |name| receiver.and_then(|r| text(r, name)).unwrap_or("");
                    format!(
                        "{code}, {}, {} {}",
                        part("addressText"),
                        part("zipCode"),
                        part("city")
                    )
                }
            };
            let hours = known
                .and_then(|p| p.opening_hours.as_deref())
                .map(|h| format!("; opening hours: {h}"))
                .unwrap_or_default();
            let lead = comment.unwrap_or_else(|| "Parcel available for pickup".into());
            comment = Some(format!("{lead} at {place}{hours}"));
            location = Some(place);
        }
        if let Some(trouble) = &step.trouble {
            self.last_trouble = Some(trouble.clone());
        }
        self.status = step.status.clone();
        self.trouble = step.trouble.clone();
        self.history.push(Entry {
            at,
            status: step.status.clone(),
            trouble: step.trouble.clone(),
            comment,
            location,
        });
        let key = normalize_status_key(&step.status);
        if self.courier.is_none() && WITH_CARRIER.contains(&key.as_str()) {
            let name = text(&self.body, "courierService")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .unwrap_or_else(|| {
                    if self.pickup_point().is_some() {
                        "Inpost".into()
                    } else {
                        default_courier.to_owned()
                    }
                });
            self.courier = Some(Courier {
                name,
                tracking_number: format!("SIM{:010}", *next_courier_number),
            });
            *next_courier_number += 1;
        }
    }

    /// The point code of a self-collect order.
    fn pickup_point(&self) -> Option<String> {
        is_self_collect(&self.body)
            .then(|| text(&self.body, "selfCollectPointName").map(str::to_owned))
            .flatten()
    }

    fn is_terminal(&self) -> bool {
        TERMINAL.contains(&normalize_status_key(&self.status).as_str())
    }

    /// The top-level `troubleStatus`: the current entry's, except on terminal statuses, where
    /// Wapi keeps the last one reported (§7: `Delivered` with `CannotLocateConsignee`).
    fn top_trouble(&self) -> Option<&str> {
        if self.is_terminal() {
            self.last_trouble.as_deref()
        } else {
            self.trouble.as_deref()
        }
    }

    /// `deliveryStatusText` (§7): `[dd.mm.yyyy hh:mm:ss] Status: '…'; Comments: '…'` with
    /// `; Location: '…'` when known; a pending order without comment is "being processed".
    fn status_text(&self) -> String {
        let Some(last) = self.history.last() else {
            return "Order is being processed".into();
        };
        if normalize_status_key(&last.status) == "pending" && last.comment.is_none() {
            return "Order is being processed".into();
        }
        let mut text = format!(
            "[{}] Status: '{}'; Comments: '{}'",
            last.at.format("%d.%m.%Y %H:%M:%S"),
            last.status,
            last.comment.as_deref().unwrap_or("")
        );
        if let Some(location) = &last.location {
            text.push_str(&format!("; Location: '{location}'"));
        }
        text
    }

    /// The §7 fields of the order.
    pub(super) fn tracking_json(&self) -> TrackingJson<'_> {
        let courier = self.courier.as_ref();
        let site = courier.and_then(Courier::site);
        TrackingJson {
            tracking_number: &self.wh,
            delivery_status: &self.status,
            delivery_status_text: self.status_text(),
            trouble_status: self.top_trouble(),
            courier_name: courier.map(|c| c.name.as_str()),
            courier_site: site,
            courier_tracking_site_link: courier
                .zip(site)
                .map(|(c, site)| format!("{site}/tracking?number={}", c.tracking_number)),
            courier_tracking_number: courier.map(|c| c.tracking_number.as_str()),
        }
    }

    /// The §8 object: history first, as in the documented example.
    pub(super) fn detailed_json(&self) -> DetailedJson<'_> {
        DetailedJson {
            status_history: self
                .history
                .iter()
                .map(|e| HistoryJson {
                    status_date: e.at,
                    status_name: &e.status,
                    status_comment: e.comment.as_deref(),
                    trouble_status: e.trouble.as_deref(),
                })
                .collect(),
            status_date: (),
            tracking: self.tracking_json(),
        }
    }

    pub(super) fn snapshot(&self) -> SimOrder {
        SimOrder {
            order_number: self.number.clone(),
            reference: self.wh.clone(),
            status: self.status.clone(),
            trouble: self.trouble.clone(),
            history: self.history.iter().map(|e| e.status.clone()).collect(),
            body: Value::Object(self.body.clone()),
        }
    }
}

/// Everything the simulator keeps between requests.
#[derive(Debug)]
pub(super) struct WapiState {
    /// Order number → order.
    pub(super) orders: HashMap<String, WapiOrder>,
    /// WH number → order number.
    pub(super) by_wh: HashMap<String, String>,
    pub(super) next_wh: u64,
    pub(super) next_courier_number: u64,
    /// The carrier of orders that name none and are not self-collect.
    default_courier: String,
    pub(super) stock: Vec<WapiStockRow>,
    pub(super) points: Vec<WapiPickupPoint>,
    pub(super) picker: LifecyclePicker,
    pub(super) pickup_lifecycle: Arc<Lifecycle>,
    pub(super) clock: Clock,
}

impl WapiState {
    /// No orders yet, `stock` and pickup `points` as given; new orders follow a lifecycle of
    /// `picker`, self-collect ones `pickup_lifecycle`, and go with `default_courier` unless
    /// they name one or are self-collect.
    pub(super) fn new(
        stock: Vec<WapiStockRow>,
        points: Vec<WapiPickupPoint>,
        picker: LifecyclePicker,
        pickup_lifecycle: Lifecycle,
        default_courier: String,
    ) -> Self {
        Self {
            orders: HashMap::new(),
            by_wh: HashMap::new(),
            next_wh: FIRST_WH_NUMBER,
            next_courier_number: 1,
            default_courier,
            stock,
            points,
            picker,
            pickup_lifecycle: Arc::new(pickup_lifecycle),
            clock: Clock::default(),
        }
    }

    pub(super) fn by_wh_mut(&mut self, wh: &str) -> Option<&mut WapiOrder> {
        let number = self.by_wh.get(wh.trim())?;
        self.orders.get_mut(number)
    }
}

/// Orders are ticked by order number.
impl OrderBook for WapiState {
    type Key = String;

    fn keys(&self) -> Vec<String> {
        self.orders.keys().cloned().collect()
    }

    fn progress_mut(&mut self, number: &String) -> Option<&mut Progress> {
        self.orders.get_mut(number).map(|order| &mut order.progress)
    }

    fn enter(&mut self, number: &String, step: &Step) {
        let at = self.clock.now();
        if let Some(order) = self.orders.get_mut(number) {
            order.enter(
                step,
                at,
                &self.points,
                &self.default_courier,
                &mut self.next_courier_number,
            );
        }
    }
}

/// The value of key `name`, matched exactly first, then case-insensitively (ASP.NET binds
/// JSON keys case-insensitively, and R's examples mix `trackingNumber`/`TrackingNumber`).
pub(super) fn field<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    map.get(name).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// The text of key `name`, if it is a string.
pub(super) fn text<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    field(map, name).and_then(Value::as_str)
}

/// `isSelfCollect`, as a boolean or the strings `"true"` / `"false"`.
pub(super) fn is_self_collect(body: &Map<String, Value>) -> bool {
    match field(body, "isSelfCollect") {
        Some(Value::Bool(yes)) => *yes,
        Some(Value::String(s)) => s.trim().eq_ignore_ascii_case("true"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_dates_have_the_documented_shape_and_the_adapter_reads_them_back() {
        use crate::provider::wapi::parse_status_date;

        /// The example of the protocol reference (§8 `statusHistory[].statusDate`).
        const DOCUMENTED: &str = "2022-05-02T05:56:52.05";

        /// `YYYY-MM-DDTHH:MM:SS`, then nothing or `.` and 1 to 7 digits: no offset, no zone.
        fn has_documented_shape(text: &str) -> bool {
            const WHOLE_SECONDS: &[u8] = b"dddd-dd-ddTdd:dd:dd";
            let (main, fraction) = match text.split_once('.') {
                Some((main, fraction)) => (main, Some(fraction)),
                None => (text, None),
            };
            main.len() == WHOLE_SECONDS.len()
                && main
                    .bytes()
                    .zip(WHOLE_SECONDS)
                    .all(|(c, pattern)| match pattern {
                        b'd' => c.is_ascii_digit(),
                        literal => c == *literal,
                    })
                && fraction.is_none_or(|f| {
                    (1..=7).contains(&f.len()) && f.bytes().all(|b| b.is_ascii_digit())
                })
        }

        #[derive(serde::Serialize)]
        struct Date(#[serde(serialize_with = "status_date")] NaiveDateTime);
        let write = |at: NaiveDateTime| match serde_json::to_value(Date(at)) {
            Ok(Value::String(text)) => text,
            other => panic!("a statusDate is a JSON string, not {other:?}"),
        };

        assert!(has_documented_shape(DOCUMENTED));
        let documented = parse_status_date(DOCUMENTED, 0).expect("the adapter reads the example");
        let at = documented.naive_utc();
        let text = write(at);
        assert_eq!(text, "2022-05-02T05:56:52.050");
        assert!(has_documented_shape(&text), "{text}");
        // The simulator's text and the documented one are the same instant to the adapter.
        assert_eq!(parse_status_date(&text, 0).expect("reads it"), documented);

        // Whole seconds and the last millisecond of a year keep the shape.
        for at in [
            chrono::NaiveDate::from_ymd_opt(2024, 2, 29).and_then(|d| d.and_hms_opt(0, 0, 0)),
            chrono::NaiveDate::from_ymd_opt(2023, 12, 31)
                .and_then(|d| d.and_hms_milli_opt(23, 59, 59, 999)),
        ] {
            let at = at.expect("a valid date");
            let text = write(at);
            assert!(has_documented_shape(&text), "{text}");
            assert_eq!(
                parse_status_date(&text, 0).expect("reads it").naive_utc(),
                at
            );
        }
        for wrong in [
            "2022-05-02T05:56:52.050Z",
            "2022-05-02 05:56:52",
            "2022-05-02T05:56:52.",
        ] {
            assert!(!has_documented_shape(wrong), "{wrong}");
        }
    }

    #[test]
    fn the_stale_trouble_stays_on_terminal_statuses_only() {
        let (progress, _) = Progress::start(Arc::new(Lifecycle::wapi_delivered())).unwrap();
        let mut order = WapiOrder::new("SO-1".into(), "WH1".into(), Map::new(), progress);
        let mut n = 1;
        let at = chrono::DateTime::UNIX_EPOCH.naive_utc();
        order.enter(
            &Step::new("InTransit").with_trouble("IsAbsent1"),
            at,
            &[],
            "SDA",
            &mut n,
        );
        assert_eq!(order.top_trouble(), Some("IsAbsent1"));
        order.enter(&Step::new("InTransit"), at, &[], "SDA", &mut n);
        assert_eq!(order.top_trouble(), None);
        order.enter(&Step::new("Delivered"), at, &[], "SDA", &mut n);
        assert_eq!(order.top_trouble(), Some("IsAbsent1"));
        assert_eq!(order.courier.as_ref().map(|c| c.name.as_str()), Some("SDA"));
        assert_eq!(n, 2, "one carrier number per order");
    }
}
