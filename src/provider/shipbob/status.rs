//! ShipBob's status vocabulary as data (protocol doc §4.7, §5.2, §11.1–§11.2): the status
//! table, the texts the adapter writes into `original`, the carrier's words that refine a
//! status (out for delivery, lost, damaged, nobody home), and which shipment states still allow
//! a cancel or an update.
//!
//! Every status the adapter reports has one of four `original` shapes, all keys of the
//! table (compared normalized, so case, spaces, `_` and `-` do not matter):
//!
//! - a shipment status, alone or with its latest status detail: `Processing`,
//!   `Processing/Picked (100)`, `Completed/OutForDelivery (202)`, `OnHold/InvalidAddress (401)`;
//! - the carrier's status from the tracking API, with its substatus when there is one:
//!   `tracking: InTransit`, `tracking: InTransit/OutForDelivery`, `tracking: Delivered`;
//! - an order status, for an order that has no shipment yet: `ImportReview`;
//! - a return order of the shipment, its type and status: `return: RTS/Arrived`,
//!   `return: Regular/AwaitingArrival`.
//!
//! An instance can override any of these texts. A detail the table does not know falls back to
//! its shipment status (`OnHold/Manual (405)` is still `Registered`); a text nothing matches is
//! `Unknown`, never an error. Pure: no I/O here.

use chrono::{DateTime, Utc};

use super::wire::{ReturnView, ShipmentView, StatusDetail, TrackingEvent};
use crate::model::{DeliveryStatus, Problem, StatusCode, StatusTable, Text, normalize_status_key};

/// One row: the `original` text, its code, and the problem it implies.
type Row = (&'static str, StatusCode, Option<Problem>);

/// The prefix of carrier statuses in `original`.
pub(crate) const CARRIER_PREFIX: &str = "tracking: ";

/// The rows of §11.1 in lifecycle order.
const ROWS: &[Row] = &[
    // Known to ShipBob, not yet in the warehouse's hands.
    ("None", StatusCode::Registered, None),
    ("ImportReview", StatusCode::Registered, None),
    // Blocked: an operator or stock must act (§5.2: 300–308 stock, 400–404 holds).
    ("OnHold", StatusCode::Registered, None),
    ("OnHold/PaymentDeclined (400)", StatusCode::Registered, None),
    (
        "OnHold/InvalidAddress (401)",
        StatusCode::Registered,
        Some(Problem::AddressNotFound),
    ),
    (
        "OnHold/ReserveDateNotMet (402)",
        StatusCode::Registered,
        None,
    ),
    (
        "OnHold/MissingTarriffInformation (404)",
        StatusCode::Registered,
        None,
    ),
    ("Exception", StatusCode::Registered, None),
    ("Exception/Bundle (300)", StatusCode::Registered, None),
    ("Exception/MergedItem (301)", StatusCode::Registered, None),
    ("Exception/InactiveSku (302)", StatusCode::Registered, None),
    (
        "Exception/OutOfStock (303)",
        StatusCode::Registered,
        Some(Problem::OutOfStock),
    ),
    ("Exception/UnknownSku (304)", StatusCode::Registered, None),
    (
        "Exception/InternalTransferInProgress (305)",
        StatusCode::Registered,
        None,
    ),
    (
        "Exception/BinTransferInProgress (306)",
        StatusCode::Registered,
        None,
    ),
    (
        "Exception/InventoryInNonPickableLocation (307)",
        StatusCode::Registered,
        None,
    ),
    (
        "Exception/InventoryPartiallyCommitted (308)",
        StatusCode::Registered,
        Some(Problem::OutOfStock),
    ),
    // In the fulfillment center.
    ("Processing", StatusCode::Accepted, None),
    ("Processing/Picked (100)", StatusCode::Accepted, None),
    ("Processing/Packed (101)", StatusCode::Packed, None),
    ("Processing/Labeled (102)", StatusCode::Packed, None),
    ("LabeledCreated", StatusCode::Packed, None),
    // Left ShipBob (§5.2: Completed says nothing about delivery).
    ("Completed", StatusCode::InTransit, None),
    ("Completed/Processing (200)", StatusCode::InTransit, None),
    ("Completed/InTransit (201)", StatusCode::InTransit, None),
    (
        "Completed/OutForDelivery (202)",
        StatusCode::OnDelivery,
        None,
    ),
    ("Completed/Delivered (203)", StatusCode::Delivered, None),
    (
        "Completed/DeliveryException (204)",
        StatusCode::Pending,
        None,
    ),
    ("Cancelled", StatusCode::Cancelled, None),
    // Order statuses, for an order without shipments.
    ("PartiallyFulfilled", StatusCode::InTransit, None),
    ("Fulfilled", StatusCode::InTransit, None),
    // The carrier (tracking API, §5.4).
    ("tracking: PreTransit", StatusCode::Packed, None),
    ("tracking: InTransit", StatusCode::InTransit, None),
    (
        "tracking: InTransit/OutForDelivery",
        StatusCode::OnDelivery,
        None,
    ),
    ("tracking: Available for Pickup", StatusCode::Arrived, None),
    (
        "tracking: Delivery attempt Failed",
        StatusCode::Pending,
        None,
    ),
    ("tracking: DeliveryException", StatusCode::Pending, None),
    ("tracking: Delivered", StatusCode::Delivered, None),
    (
        "tracking: Return to sender",
        StatusCode::ReturningToSender,
        None,
    ),
    ("tracking: Cancelled", StatusCode::Cancelled, None),
    // Return orders (`GET /return`, §11.1): the carrier brings the parcel back (`RTS`), or the
    // customer sends the goods back after delivery (`Regular`). A cancelled return reports
    // nothing.
    (
        "return: RTS/AwaitingArrival",
        StatusCode::ReturningToSender,
        None,
    ),
    ("return: RTS/Arrived", StatusCode::DeliveredToSender, None),
    (
        "return: RTS/Processing",
        StatusCode::DeliveredToSender,
        None,
    ),
    ("return: RTS/Completed", StatusCode::DeliveredToSender, None),
    (
        "return: Regular/AwaitingArrival",
        StatusCode::Returned,
        None,
    ),
    ("return: Regular/Arrived", StatusCode::Returned, None),
    ("return: Regular/Processing", StatusCode::Returned, None),
    ("return: Regular/Completed", StatusCode::Returned, None),
    // `tracking: Exception`, `tracking: Failed` and `CleanSweeped` are Unknown on purpose
    // (§11.1): their meaning is not documented.
];

/// The status table of §11.1 as data (see the module docs for the texts).
pub(crate) fn status_table() -> StatusTable {
    ROWS.iter().fold(
        StatusTable::new(),
        |table, (raw, code, problem)| match problem {
            Some(problem) => table.with_problem(raw, *code, problem.clone()),
            None => table.with(raw, *code),
        },
    )
}

/// The latest status detail of a shipment: the last entry with a name or an id.
fn latest_detail(shipment: &ShipmentView) -> Option<&StatusDetail> {
    shipment
        .status_details
        .iter()
        .rev()
        .find(|d| d.id.is_some() || d.name.as_deref().is_some_and(|n| !n.trim().is_empty()))
}

/// The shipment's status as `original` text: `Status` or `Status/Detail (id)`.
pub(crate) fn shipment_text(shipment: &ShipmentView) -> String {
    let status = shipment
        .status
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or("None");
    match latest_detail(shipment) {
        None => status.to_owned(),
        Some(detail) => {
            let name = detail.name.as_deref().map(str::trim).unwrap_or_default();
            match detail.id {
                Some(id) if !name.is_empty() => format!("{status}/{name} ({id})"),
                Some(id) => format!("{status}/({id})"),
                None => format!("{status}/{name}"),
            }
        }
    }
}

/// `text` mapped by `table`, falling back from `Status/Detail (id)` to a known detail of the
/// same name or id, then to the status alone, then `Unknown`; the text is always kept.
fn mapped(table: &StatusTable, text: &str, at: DateTime<Utc>) -> DeliveryStatus {
    let mut status = table.status(text, at);
    if status.code != StatusCode::Unknown {
        return status;
    }
    let Some((head, detail)) = text.split_once('/') else {
        return status;
    };
    let (name, id) = match detail.rsplit_once(" (") {
        Some((name, id)) => (name, id.strip_suffix(')')),
        None => (detail, None),
    };
    let name_key = normalize_status_key(name);
    let head_key = normalize_status_key(head);
    // A known detail of the same status, by name first, then by id.
    let by_detail = ROWS.iter().find(|(row, _, _)| {
        let Some((row_head, row_detail)) = row.split_once('/') else {
            return false;
        };
        if normalize_status_key(row_head) != head_key {
            return false;
        }
        let (row_name, row_id) = row_detail
            .rsplit_once(" (")
            .map(|(n, i)| (n, i.strip_suffix(')')))
            .unwrap_or((row_detail, None));
        (!name_key.is_empty() && normalize_status_key(row_name) == name_key)
            || (id.is_some() && row_id == id)
    });
    let fallback = match by_detail {
        Some((row, _, _)) => table.lookup(row),
        None => table.lookup(head),
    };
    if let Some(mapping) = fallback {
        status.code = mapping.code;
        status.problem = mapping.problem.clone();
    }
    status
}

/// The warehouse status of `shipment` at `at`: its text mapped, with the carrier, tracking
/// number and link once a label exists.
pub(crate) fn warehouse_status(
    table: &StatusTable,
    shipment: &ShipmentView,
    at: DateTime<Utc>,
) -> DeliveryStatus {
    let text = shipment_text(shipment);
    with_label(mapped(table, &text, at), shipment)
}

/// An order's own status (for an order that has no shipment yet).
pub(crate) fn order_status(table: &StatusTable, status: &str, at: DateTime<Utc>) -> DeliveryStatus {
    mapped(table, status.trim(), at)
}

/// `status` with the shipment's carrier, tracking number and public link, when it has them.
pub(crate) fn with_label(mut status: DeliveryStatus, shipment: &ShipmentView) -> DeliveryStatus {
    if let Some(tracking) = &shipment.tracking {
        let number = shipment.tracking_number().map(Text::from);
        if let Some(carrier) = tracking
            .carrier
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
        {
            status = status.with_carrier(carrier, number);
        } else {
            status.carrier_tracking_number = number;
        }
        status.tracking_url = tracking
            .tracking_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(Text::from);
    }
    status
}

/// One carrier status (the tracking API's current status or a history entry) as text.
pub(crate) fn carrier_text(status: &str, substatus: Option<&str>) -> String {
    match substatus.map(str::trim).filter(|s| !s.is_empty()) {
        Some(sub) => format!("{CARRIER_PREFIX}{}/{sub}", status.trim()),
        None => format!("{CARRIER_PREFIX}{}", status.trim()),
    }
}

/// The status a return order reports: `return: <type>/<status>` (`return: RTS/Arrived`);
/// `None` for a cancelled return or one without a status. A type or status the table does
/// not know is `Unknown` with its text.
pub(crate) fn return_status(
    table: &StatusTable,
    ret: &ReturnView,
    at: DateTime<Utc>,
) -> Option<DeliveryStatus> {
    let status = ret
        .status
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())?;
    if normalize_status_key(status) == "cancelled" {
        return None;
    }
    let kind = match ret.return_type.as_deref().map(str::trim) {
        // The listing filter spells RTS `ReturnToSender` (§4.7).
        Some(k) if normalize_status_key(k) == "returntosender" => "RTS",
        Some(k) if !k.is_empty() => k,
        _ => "Regular",
    };
    Some(table.status(&format!("{RETURN_PREFIX}{kind}/{status}"), at))
}

/// The prefix of return orders' statuses in `original`.
pub(crate) const RETURN_PREFIX: &str = "return: ";

/// A carrier status mapped: the table (substatus first, then the status alone), then the
/// carrier's words (§11.1, \[assumed] — ShipBob documents no substatus vocabulary):
/// - "lost" → `Lost`, "damage" → `Damaged` (unless delivered);
/// - on a failed attempt (`Pending`): nobody home → [`Problem::RecipientAbsent`], an address
///   problem → [`Problem::AddressNotFound`], a refusal → `Returned` with
///   [`Problem::Refused`].
pub(crate) fn carrier_status(
    table: &StatusTable,
    event: &TrackingEvent,
    at: DateTime<Utc>,
) -> Option<DeliveryStatus> {
    let raw = event
        .status
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())?;
    let text = carrier_text(raw, event.substatus.as_deref());
    let mut status = table.status(&text, at);
    if status.code == StatusCode::Unknown
        && let Some(mapping) = table.lookup(&carrier_text(raw, None))
    {
        status.code = mapping.code;
        status.problem = mapping.problem.clone();
    }
    let words: String = [&event.substatus, &event.message, &event.carrier_message]
        .into_iter()
        .flatten()
        .map(|t| t.to_lowercase())
        .collect::<Vec<_>>()
        .join(" ");
    if status.code != StatusCode::Delivered {
        if words.contains("lost") {
            status.code = StatusCode::Lost;
        } else if words.contains("damage") {
            status.code = StatusCode::Damaged;
        }
    }
    if status.code == StatusCode::Pending && status.problem.is_none() {
        if words.contains("refus") {
            status.code = StatusCode::Returned;
            status.problem = Some(Problem::Refused);
        } else if [
            "no one",
            "nobody",
            "not home",
            "absent",
            "unavailable",
            "not available",
        ]
        .iter()
        .any(|w| words.contains(w))
        {
            status.problem = Some(Problem::RecipientAbsent);
        } else if words.contains("address") {
            status.problem = Some(Problem::AddressNotFound);
        }
    }
    Some(status)
}

/// Whether a shipment may still be changed or cancelled (§11.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Editability {
    /// Not picked, packed or shipped: make the call (ShipBob's reply still wins).
    Allowed,
    /// Cancelled already.
    Cancelled,
    /// Picked or later: too late, in ShipBob's words.
    TooLate(String),
}

/// §11.2: allowed while `None`, `ImportReview`, `Processing` without a picked / packed /
/// labelled detail, `Exception` or `OnHold`; too late once picked, `LabeledCreated` or
/// `Completed`; a status the table does not know is tried (ShipBob's reply decides)
/// \[assumed].
pub(crate) fn editability(shipment: &ShipmentView) -> Editability {
    let status = normalize_status_key(shipment.status.as_deref().unwrap_or("None"));
    let picked = latest_detail(shipment).is_some_and(|d| {
        d.id.is_some_and(|id| (100..=102).contains(&id))
            || d.name.as_deref().is_some_and(|n| {
                matches!(
                    normalize_status_key(n).as_str(),
                    "picked" | "packed" | "labeled" | "labelled"
                )
            })
    });
    match status.as_str() {
        "cancelled" => Editability::Cancelled,
        "processing" if picked => Editability::TooLate(shipment_text(shipment)),
        "labeledcreated" | "completed" | "cleansweeped" => {
            Editability::TooLate(shipment_text(shipment))
        }
        _ => Editability::Allowed,
    }
}

/// Whether the shipment's status is one §11.2 names as still open (`None`, `ImportReview`,
/// `Processing`, `Exception`, `OnHold`). A refusal for a shipment in any other status (a word
/// the table does not know) is ShipBob deciding it is too late: the conformance contract
/// "an unknown status after the lock stage keeps it locked".
pub(crate) fn is_known_open(shipment: &ShipmentView) -> bool {
    let status = normalize_status_key(shipment.status.as_deref().unwrap_or("None"));
    matches!(
        status.as_str(),
        "none" | "importreview" | "processing" | "exception" | "onhold"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::shipbob::wire::TrackingInfo;

    fn shipment(status: &str, detail: Option<(i64, &str)>) -> ShipmentView {
        ShipmentView {
            id: 1,
            status: Some(status.into()),
            status_details: detail
                .map(|(id, name)| StatusDetail {
                    id: Some(id),
                    name: Some(name.into()),
                    description: None,
                })
                .into_iter()
                .collect(),
            ..ShipmentView::default()
        }
    }

    fn code(status: &str, detail: Option<(i64, &str)>) -> (StatusCode, Option<Problem>, String) {
        let s = warehouse_status(&status_table(), &shipment(status, detail), Utc::now());
        (s.code, s.problem, s.original.to_string())
    }

    #[test]
    fn shipment_statuses_follow_the_documents_table() {
        use StatusCode::*;
        let cases = [
            ("None", None, Registered),
            ("ImportReview", None, Registered),
            ("OnHold", Some((402, "ReserveDateNotMet")), Registered),
            (
                "Exception",
                Some((305, "InternalTransferInProgress")),
                Registered,
            ),
            ("Processing", None, Accepted),
            ("Processing", Some((100, "Picked")), Accepted),
            ("Processing", Some((101, "Packed")), Packed),
            ("Processing", Some((102, "Labeled")), Packed),
            ("LabeledCreated", None, Packed),
            ("Completed", None, InTransit),
            ("Completed", Some((200, "Processing")), InTransit),
            ("Completed", Some((201, "InTransit")), InTransit),
            ("Completed", Some((202, "OutForDelivery")), OnDelivery),
            ("Completed", Some((203, "Delivered")), Delivered),
            ("Completed", Some((204, "DeliveryException")), Pending),
            ("Cancelled", None, Cancelled),
            ("CleanSweeped", None, Unknown),
            // Undocumented details fall back to their status; the text is kept whole.
            ("OnHold", Some((405, "Manual")), Registered),
            // By name when the id differs, by id when the name does.
            ("Completed", Some((999, "outForDelivery")), OnDelivery),
            ("Completed", Some((203, "Zugestellt")), Delivered),
        ];
        for (status, detail, expected) in cases {
            assert_eq!(code(status, detail).0, expected, "{status} {detail:?}");
        }
        assert_eq!(
            code("OnHold", Some((401, "InvalidAddress"))),
            (
                Registered,
                Some(Problem::AddressNotFound),
                "OnHold/InvalidAddress (401)".into()
            )
        );
        assert_eq!(
            code("OnHold", Some((405, "Manual"))).2,
            "OnHold/Manual (405)"
        );
        assert_eq!(
            code("Exception", Some((303, "OutOfStock"))).1,
            Some(Problem::OutOfStock)
        );
        // The JSON's `OnHold` and the page's "On Hold" are one status.
        assert_eq!(code("On Hold", None).0, Registered);
        assert_eq!(
            code("Teleported", None),
            (Unknown, None, "Teleported".into())
        );
    }

    fn event(status: &str, sub: Option<&str>, message: Option<&str>) -> TrackingEvent {
        TrackingEvent {
            status: Some(status.into()),
            substatus: sub.map(Into::into),
            message: message.map(Into::into),
            ..TrackingEvent::default()
        }
    }

    #[test]
    fn return_orders_and_their_words() {
        let table = status_table();
        let at = Utc::now();
        let ret = |kind: Option<&str>, status: &str| ReturnView {
            status: Some(status.into()),
            return_type: kind.map(Into::into),
            ..ReturnView::default()
        };
        let code = |r: &ReturnView| return_status(&table, r, at).map(|s| s.code);
        use StatusCode::*;
        assert_eq!(
            code(&ret(Some("RTS"), "AwaitingArrival")),
            Some(ReturningToSender)
        );
        assert_eq!(code(&ret(Some("RTS"), "Arrived")), Some(DeliveredToSender));
        // The listing filter's spelling of RTS, in any case.
        assert_eq!(
            code(&ret(Some("returnToSender"), "Completed")),
            Some(DeliveredToSender)
        );
        assert_eq!(code(&ret(Some("Regular"), "Processing")), Some(Returned));
        assert_eq!(code(&ret(None, "AwaitingArrival")), Some(Returned));
        // A cancelled return reports nothing; words nobody documented are Unknown, kept.
        assert_eq!(code(&ret(Some("RTS"), "Cancelled")), None);
        assert_eq!(code(&ret(Some("RTS"), " ")), None);
        let odd = return_status(&table, &ret(Some("Exchange"), "Arrived"), at).unwrap();
        assert_eq!(odd.code, Unknown);
        assert_eq!(odd.original, "return: Exchange/Arrived");
    }

    #[test]
    fn carrier_statuses_and_their_words() {
        use StatusCode::*;
        let table = status_table();
        let map = |e: TrackingEvent| carrier_status(&table, &e, Utc::now()).unwrap();
        assert_eq!(
            map(event("PreTransit", Some("Label created"), None)).code,
            Packed
        );
        let s = map(event("InTransit", Some("OutForDelivery"), None));
        assert_eq!(
            (s.code, s.original.as_str()),
            (OnDelivery, "tracking: InTransit/OutForDelivery")
        );
        assert_eq!(
            map(event("InTransit", Some("ArrivedAtFacility"), None)).code,
            InTransit
        );
        assert_eq!(map(event("Available for Pickup", None, None)).code, Arrived);
        assert_eq!(map(event("Delivered", None, None)).code, Delivered);
        assert_eq!(
            map(event("Return to sender", None, None)).code,
            ReturningToSender
        );
        assert_eq!(map(event("Exception", None, None)).code, Unknown);
        assert_eq!(
            map(event("Warp", Some("x"), None)).original,
            "tracking: Warp/x"
        );
        let absent = map(event(
            "Delivery attempt Failed",
            Some("Failed Attempt"),
            Some("No one available to sign"),
        ));
        assert_eq!(
            (absent.code, absent.problem),
            (Pending, Some(Problem::RecipientAbsent))
        );
        let refused = map(event(
            "DeliveryException",
            None,
            Some("Recipient refused delivery"),
        ));
        assert_eq!(
            (refused.code, refused.problem),
            (Returned, Some(Problem::Refused))
        );
        assert_eq!(map(event("Exception", Some("Lost"), None)).code, Lost);
        assert_eq!(
            map(event("InTransit", None, Some("Package damaged"))).code,
            Damaged
        );
        assert!(carrier_status(&table, &event(" ", None, None), Utc::now()).is_none());
    }

    #[test]
    fn the_label_goes_with_the_status() {
        let mut s = shipment("Completed", Some((201, "InTransit")));
        s.tracking = Some(TrackingInfo {
            carrier: Some("USPS".into()),
            tracking_number: Some("9400111899223197428490".into()),
            tracking_url: Some("https://tools.usps.com/x".into()),
            ..TrackingInfo::default()
        });
        let status = warehouse_status(&status_table(), &s, Utc::now());
        assert_eq!(status.carrier.as_deref(), Some("USPS"));
        assert_eq!(
            status.carrier_tracking_number.as_deref(),
            Some("9400111899223197428490")
        );
        assert_eq!(
            status.tracking_url.as_deref(),
            Some("https://tools.usps.com/x")
        );
    }

    #[test]
    fn the_edit_window_closes_once_picked() {
        assert_eq!(editability(&shipment("None", None)), Editability::Allowed);
        assert_eq!(
            editability(&shipment("Processing", None)),
            Editability::Allowed
        );
        assert_eq!(
            editability(&shipment("OnHold", Some((401, "InvalidAddress")))),
            Editability::Allowed
        );
        assert_eq!(
            editability(&shipment("Processing", Some((100, "Picked")))),
            Editability::TooLate("Processing/Picked (100)".into())
        );
        assert!(matches!(
            editability(&shipment("LabeledCreated", None)),
            Editability::TooLate(_)
        ));
        assert!(matches!(
            editability(&shipment("Completed", Some((203, "Delivered")))),
            Editability::TooLate(_)
        ));
        assert_eq!(
            editability(&shipment("Cancelled", None)),
            Editability::Cancelled
        );
    }
}
