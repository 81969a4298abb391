//! Wapi's status vocabulary as data: the status table of protocol §15a, the trouble-status
//! rules that refine it, which statuses are terminal, and which still allow an update or a
//! cancel (§15b).
//!
//! Everything here is pure and keyed by the normalized status text (lowercase, without spaces,
//! `_` and `-`, see [`normalize_status_key`]), so the wire string `AssignedToPartner` and the
//! display label "Assigned to partner" are the same status. Parsing the wire and building
//! [`DeliveryStatus`] values from tracking replies lives in `wire.rs`; HTTP lives in the client.

use crate::model::{
    CommentRules, DeliveryStatus, Problem, StatusCode, StatusTable, normalize_status_key,
};

/// One row of the status table: raw Wapi text, its code, and the problem it implies.
type Row = (&'static str, StatusCode, Option<Problem>);

/// The rows of protocol §15a, in lifecycle order.
///
/// Wire strings of R are exact; `New`, `On hold`, `Updated`, the label steps, `Shipment created`
/// and `Return processed` are display labels of D and W whose wire spelling is unknown
/// (\[assumed]: the normalized comparison lets "Label created" match `LabelCreated` too).
const ROWS: &[Row] = &[
    // Created at Wapi, not yet registered (D/W only).
    ("New", StatusCode::Created, None),
    // Waiting inside Wapi. Wapi's `Pending` is *not* normalized `Pending` (450, failed
    // attempt); `Error` stays visible to triggers through `original` = "Error".
    ("Pending", StatusCode::Registered, None),
    ("OnHold", StatusCode::Registered, None),
    ("On hold", StatusCode::Registered, None),
    ("Updated", StatusCode::Registered, None),
    (
        "OutOfStock",
        StatusCode::Registered,
        Some(Problem::OutOfStock),
    ),
    ("Error", StatusCode::Registered, None),
    // At the partner in the destination country.
    ("AssignedToPartner", StatusCode::Accepted, None),
    ("WaybillNotCreated", StatusCode::Accepted, None),
    // Label steps of D and `Shipment created`: wire strings guessed [assumed].
    ("Tracking number received", StatusCode::Packed, None),
    ("Label to send", StatusCode::Packed, None),
    ("Label created", StatusCode::Packed, None),
    ("Label sent", StatusCode::Packed, None),
    ("Shipment created", StatusCode::Packed, None),
    // With the carrier.
    ("Dispatched", StatusCode::InTransit, None),
    ("InTransit", StatusCode::InTransit, None),
    ("Delivered", StatusCode::Delivered, None),
    // Back to the warehouse.
    ("Returning", StatusCode::ReturningToSender, None),
    ("ReturnedToSender", StatusCode::DeliveredToSender, None),
    ("Return processed", StatusCode::DeliveredToSender, None),
    // Terminal without delivery (codes 900/910/920 are fulfillkit's extensions).
    ("Cancelled", StatusCode::Cancelled, None),
    ("Lost", StatusCode::Lost, None),
    ("Damaged", StatusCode::Damaged, None),
];

/// Raw statuses after which nothing changes any more (§15a), normalized.
const TERMINAL: &[&str] = &[
    "delivered",
    "returnedtosender",
    "returnprocessed",
    "cancelled",
    "lost",
    "damaged",
];

/// Raw statuses during which a carrier attempts delivery, normalized: the only ones where a
/// failed-attempt trouble turns the code into `Pending` (§15a).
const ON_THE_ROAD: &[&str] = &["intransit", "dispatched"];

/// Wapi's status table (§15a) as data: every raw status the protocol names and its code.
///
/// A raw status not in the table maps to [`StatusCode::Unknown`] with its text kept; instance
/// overrides go on top with [`StatusTable::with_overrides`]. "Arrived" (300), "OnDelivery"
/// (400) and "Paid" (550) are never produced: Wapi reports nothing that means them \[assumed].
pub(crate) fn status_table() -> StatusTable {
    ROWS.iter().fold(
        StatusTable::new(),
        |table, (raw, code, problem)| match problem {
            Some(problem) => table.with_problem(raw, *code, problem.clone()),
            None => table.with(raw, *code),
        },
    )
}

/// Whether `raw` is a status the table knows (normalized comparison).
fn is_known_raw(raw: &str) -> bool {
    let key = normalize_status_key(raw);
    ROWS.iter()
        .any(|(row, _, _)| normalize_status_key(row) == key)
}

/// Whether `raw` is one of Wapi's terminal statuses: `Delivered`, `ReturnedToSender`,
/// `Return processed`, `Cancelled`, `Lost`, `Damaged` (§15a; normalized comparison).
pub(crate) fn is_terminal_raw(raw: &str) -> bool {
    TERMINAL.contains(&normalize_status_key(raw).as_str())
}

/// Whether `raw` is Wapi's `Cancelled`: after a refused cancel, the order is cancelled anyway
/// (§6, \[assumed]).
pub(crate) fn is_cancelled_raw(raw: &str) -> bool {
    normalize_status_key(raw) == "cancelled"
}

/// Wapi's raw status of a cancelled order (§9).
pub(crate) const CANCELLED: &str = "Cancelled";

/// Whether `raw` is Wapi's `Pending`: a cancel refused in this state is a `Conflict`, not
/// "too late" (§6, \[assumed]).
pub(crate) fn is_pending_raw(raw: &str) -> bool {
    normalize_status_key(raw) == "pending"
}

/// The comment rules a Wapi instance uses unless configured otherwise \[assumed]: Wapi has no
/// status for "waiting at the pickup point" or "out for delivery", only the carrier's free
/// `statusComment` on an `InTransit` entry, in the destination country's language. These
/// phrases (Italian, Spanish, Polish, English) are our reading of carrier wording, not a Wapi
/// document: extend or replace them per instance with
/// [`WapiBuilder::with_comment_rules`](super::WapiBuilder::with_comment_rules).
///
/// - `Arrived` (300): "disponibile per il ritiro", "pronto per il ritiro", "in giacenza
///   presso", "disponible para recoger", "listo para recoger", "gotowa do odbioru", "czeka na
///   odbior", "available for pickup", "ready for pickup", "ready for collection";
/// - `OnDelivery` (400): "in consegna", "en reparto", "wydana do doreczenia", "out for
///   delivery".
pub fn default_comment_rules() -> CommentRules {
    CommentRules::new()
        .with(
            StatusCode::Arrived,
            [
                "disponibile per il ritiro",
                "pronto per il ritiro",
                "in giacenza presso",
                "disponible para recoger",
                "listo para recoger",
                "gotowa do odbioru",
                "czeka na odbior",
                "available for pickup",
                "ready for pickup",
                "ready for collection",
            ],
        )
        .with(
            StatusCode::OnDelivery,
            [
                "in consegna",
                "en reparto",
                "wydana do doreczenia",
                "out for delivery",
            ],
        )
}

/// `status` refined by its `comment` under `rules`: only an `InTransit` status without a
/// trouble status is refined (trouble statuses and the documented vocabulary win).
pub(crate) fn apply_comment(
    mut status: DeliveryStatus,
    comment: Option<&str>,
    rules: &CommentRules,
) -> DeliveryStatus {
    if status.code != StatusCode::InTransit || status.problem.is_some() {
        return status;
    }
    if let Some(code) = comment.and_then(|c| rules.code_for(c)) {
        status.code = code;
    }
    status
}

/// `status` (already mapped from `raw_status` by the table) refined by Wapi's trouble status
/// `trouble` (§9, §15a, \[assumed] throughout):
///
/// - no trouble (absent, `null` or blank): `status` unchanged;
/// - a terminal status (raw per [`is_terminal_raw`], or a terminal or `Delivered` code after
///   instance overrides): the trouble is stale (R pairs `Delivered` with
///   `CannotLocateConsignee`) and ignored;
/// - `IsAbsent1` / `IsAbsent` while the raw status is `InTransit` or `Dispatched`: code
///   `Pending` (450, failed attempt) with [`Problem::RecipientAbsent`];
/// - `CannotLocateConsignee1` / `CannotLocateConsignee` likewise, with
///   [`Problem::AddressNotFound`];
/// - either of those on another non-terminal status (e.g. `Returning`): the code is kept and
///   only the problem is recorded, since the text still explains what happened;
/// - `IsRefused` on any non-terminal status: code `Returned` (600) with [`Problem::Refused`];
/// - any other trouble text: the code is kept, with [`Problem::Other`] holding the text.
///
/// Trouble strings are compared normalized, like statuses.
pub(crate) fn apply_trouble(
    mut status: DeliveryStatus,
    raw_status: &str,
    trouble: Option<&str>,
) -> DeliveryStatus {
    let Some(trouble) = trouble.map(str::trim).filter(|t| !t.is_empty()) else {
        return status;
    };
    let terminal_code = status.code.is_terminal() || status.code == StatusCode::Delivered;
    if is_terminal_raw(raw_status) || terminal_code {
        return status;
    }
    let on_the_road = ON_THE_ROAD.contains(&normalize_status_key(raw_status).as_str());
    let failed_attempt = |status: &mut DeliveryStatus, problem: Problem| {
        if on_the_road {
            status.code = StatusCode::Pending;
        }
        status.problem = Some(problem);
    };
    match normalize_status_key(trouble).as_str() {
        "isabsent1" | "isabsent" => failed_attempt(&mut status, Problem::RecipientAbsent),
        "cannotlocateconsignee1" | "cannotlocateconsignee" => {
            failed_attempt(&mut status, Problem::AddressNotFound);
        }
        "isrefused" => {
            status.code = StatusCode::Returned;
            status.problem = Some(Problem::Refused);
        }
        _ => status.problem = Some(Problem::Other(trouble.to_owned())),
    }
    status
}

/// Whether an operation may still change the order at Wapi, judged from its raw status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Editability {
    /// Documented as allowed: make the call (its reply still wins, see the :00/:30 hand-off).
    Allowed,
    /// Not documented either way: make the call and respect a refusal.
    TryIt,
    /// Known to be too late: answer `TooLate { state }` without calling Wapi.
    TooLate,
}

/// Whether `UpdateOrder` may be sent for an order in `raw` (§15b).
///
/// `Pending` and `Error` are allowed \[doc R]; `OnHold`, `New` and `Updated` are tried
/// \[doc H, D, W / assumed]; any other status of the table is too late. A status the table does
/// not know is tried, so that an unexpected spelling never blocks an edit Wapi would accept
/// \[assumed].
pub(crate) fn update_editability(raw: &str) -> Editability {
    match normalize_status_key(raw).as_str() {
        "pending" | "error" => Editability::Allowed,
        "onhold" | "new" | "updated" => Editability::TryIt,
        _ if is_known_raw(raw) => Editability::TooLate,
        _ => Editability::TryIt,
    }
}

/// Whether `cancelOrder` may be sent for an order in `raw` (§15b).
///
/// `Pending` is allowed \[doc R]. `AssignedToPartner` is allowed only with the instance flag
/// `cancel_after_assignment` (a special agreement with Wapi), otherwise too late
/// \[doc R / assumed]. `Error`, `OutOfStock` and `OnHold` are tried, since D draws an arrow from
/// them to Cancelled \[doc D / assumed]. `New` and `Updated` come before `Pending` in D's
/// lifecycle, so "too late" cannot be right for them: they are tried as well \[assumed]. Any
/// other status of the table (including `Cancelled` itself) is too late; an unknown status is
/// tried.
pub(crate) fn cancel_editability(raw: &str, cancel_after_assignment: bool) -> Editability {
    match normalize_status_key(raw).as_str() {
        "pending" => Editability::Allowed,
        "assignedtopartner" if cancel_after_assignment => Editability::Allowed,
        "assignedtopartner" => Editability::TooLate,
        "error" | "outofstock" | "onhold" | "new" | "updated" => Editability::TryIt,
        _ if is_known_raw(raw) => Editability::TooLate,
        _ => Editability::TryIt,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn at() -> chrono::DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 4, 13, 48, 0).unwrap()
    }

    fn mapped(raw: &str) -> DeliveryStatus {
        status_table().status(raw, at())
    }

    #[test]
    fn every_row_of_the_table() {
        use StatusCode::*;
        let rows: &[(&str, StatusCode, Option<Problem>)] = &[
            ("New", Created, None),
            ("Pending", Registered, None),
            ("OnHold", Registered, None),
            ("On hold", Registered, None),
            ("Updated", Registered, None),
            ("OutOfStock", Registered, Some(Problem::OutOfStock)),
            ("Error", Registered, None),
            ("AssignedToPartner", Accepted, None),
            ("Assigned to partner", Accepted, None),
            ("WaybillNotCreated", Accepted, None),
            ("Tracking number received", Packed, None),
            ("TrackingNumberReceived", Packed, None),
            ("Label to send", Packed, None),
            ("Label created", Packed, None),
            ("Label sent", Packed, None),
            ("Shipment created", Packed, None),
            ("Dispatched", InTransit, None),
            ("InTransit", InTransit, None),
            ("In transit", InTransit, None),
            ("Delivered", Delivered, None),
            ("Returning", ReturningToSender, None),
            ("ReturnedToSender", DeliveredToSender, None),
            ("Returned to sender", DeliveredToSender, None),
            ("Return processed", DeliveredToSender, None),
            ("Cancelled", Cancelled, None),
            ("Lost", Lost, None),
            ("Damaged", Damaged, None),
        ];
        for (raw, code, problem) in rows {
            let status = mapped(raw);
            assert_eq!(status.code, *code, "{raw}");
            assert_eq!(status.problem, *problem, "{raw}");
            assert_eq!(status.original, *raw, "{raw}");
        }
        // `OnHold` and `On hold` share one key.
        assert_eq!(status_table().len(), ROWS.len() - 1);
    }

    #[test]
    fn unknown_status_keeps_its_text() {
        let status = mapped(" In consegna ");
        assert_eq!(status.code, StatusCode::Unknown);
        assert_eq!(status.original, "In consegna");
        assert_eq!(status.problem, None);
    }

    #[test]
    fn terminal_raw_statuses() {
        for raw in [
            "Delivered",
            "ReturnedToSender",
            "Return processed",
            "Cancelled",
            "Lost",
            "Damaged",
            "returned_to-sender",
        ] {
            assert!(is_terminal_raw(raw), "{raw}");
        }
        for raw in [
            "New",
            "Pending",
            "OnHold",
            "Updated",
            "OutOfStock",
            "Error",
            "AssignedToPartner",
            "WaybillNotCreated",
            "Label created",
            "Shipment created",
            "Dispatched",
            "InTransit",
            "Returning",
            "Something else",
        ] {
            assert!(!is_terminal_raw(raw), "{raw}");
        }
    }

    #[test]
    fn cancelled_and_pending() {
        for raw in ["Cancelled", "cancelled", " CANCELLED "] {
            assert!(is_cancelled_raw(raw), "{raw}");
        }
        for raw in ["Pending", "pending"] {
            assert!(is_pending_raw(raw), "{raw}");
        }
        for raw in ["Canceled?", "Pending cancel", "Delivered", ""] {
            assert!(!is_cancelled_raw(raw), "{raw}");
        }
        for raw in ["Cancelled", "OnHold", "Pending review", ""] {
            assert!(!is_pending_raw(raw), "{raw}");
        }
    }

    fn troubled(raw: &str, trouble: Option<&str>) -> (StatusCode, Option<Problem>) {
        let status = apply_trouble(mapped(raw), raw, trouble);
        assert_eq!(status.original, raw.trim(), "original is never touched");
        (status.code, status.problem)
    }

    #[test]
    fn trouble_rules() {
        use StatusCode::*;
        let other = |t: &str| Some(Problem::Other(t.into()));
        let cases: &[(&str, Option<&str>, StatusCode, Option<Problem>)] = &[
            // No trouble.
            ("InTransit", None, InTransit, None),
            ("InTransit", Some(""), InTransit, None),
            ("InTransit", Some("  "), InTransit, None),
            ("OutOfStock", None, Registered, Some(Problem::OutOfStock)),
            // Failed attempts on the road become Pending.
            (
                "InTransit",
                Some("IsAbsent1"),
                Pending,
                Some(Problem::RecipientAbsent),
            ),
            (
                "InTransit",
                Some("IsAbsent"),
                Pending,
                Some(Problem::RecipientAbsent),
            ),
            (
                "Dispatched",
                Some("IsAbsent1"),
                Pending,
                Some(Problem::RecipientAbsent),
            ),
            (
                "In transit",
                Some("isabsent"),
                Pending,
                Some(Problem::RecipientAbsent),
            ),
            (
                "InTransit",
                Some("CannotLocateConsignee1"),
                Pending,
                Some(Problem::AddressNotFound),
            ),
            (
                "Dispatched",
                Some("CannotLocateConsignee"),
                Pending,
                Some(Problem::AddressNotFound),
            ),
            // ... but only there: elsewhere the code is kept.
            (
                "Returning",
                Some("IsAbsent"),
                ReturningToSender,
                Some(Problem::RecipientAbsent),
            ),
            (
                "AssignedToPartner",
                Some("CannotLocateConsignee1"),
                Accepted,
                Some(Problem::AddressNotFound),
            ),
            // Refusal on any non-terminal status.
            (
                "InTransit",
                Some("IsRefused"),
                Returned,
                Some(Problem::Refused),
            ),
            (
                "Dispatched",
                Some("IsRefused"),
                Returned,
                Some(Problem::Refused),
            ),
            (
                "Returning",
                Some("IsRefused"),
                Returned,
                Some(Problem::Refused),
            ),
            (
                "AssignedToPartner",
                Some("IsRefused"),
                Returned,
                Some(Problem::Refused),
            ),
            (
                "Pending",
                Some("IsRefused"),
                Returned,
                Some(Problem::Refused),
            ),
            (
                "In consegna",
                Some("IsRefused"),
                Returned,
                Some(Problem::Refused),
            ),
            // Unknown trouble: code kept, text kept.
            (
                "InTransit",
                Some("Wrong parcel"),
                InTransit,
                other("Wrong parcel"),
            ),
            ("Pending", Some(" Weird "), Registered, other("Weird")),
            // Stale trouble on terminal statuses is ignored.
            ("Delivered", Some("CannotLocateConsignee"), Delivered, None),
            ("Delivered", Some("IsRefused"), Delivered, None),
            (
                "ReturnedToSender",
                Some("IsRefused"),
                DeliveredToSender,
                None,
            ),
            (
                "Return processed",
                Some("IsAbsent"),
                DeliveredToSender,
                None,
            ),
            ("Cancelled", Some("IsAbsent1"), Cancelled, None),
            ("Lost", Some("Whatever"), Lost, None),
            ("Damaged", Some("IsRefused"), Damaged, None),
        ];
        for (raw, trouble, code, problem) in cases {
            assert_eq!(
                troubled(raw, *trouble),
                (*code, problem.clone()),
                "{raw} + {trouble:?}"
            );
        }
    }

    #[test]
    fn trouble_is_ignored_when_an_override_makes_the_code_terminal() {
        let status = DeliveryStatus::new(StatusCode::Delivered, "Consegnato", at());
        let kept = apply_trouble(status.clone(), "Consegnato", Some("IsRefused"));
        assert_eq!(kept, status);
    }

    #[test]
    fn update_editability_table() {
        use Editability::*;
        let cases = [
            ("Pending", Allowed),
            ("Error", Allowed),
            ("OnHold", TryIt),
            ("On hold", TryIt),
            ("New", TryIt),
            ("Updated", TryIt),
            ("OutOfStock", TooLate),
            ("AssignedToPartner", TooLate),
            ("Assigned to partner", TooLate),
            ("WaybillNotCreated", TooLate),
            ("Label created", TooLate),
            ("Shipment created", TooLate),
            ("Dispatched", TooLate),
            ("InTransit", TooLate),
            ("Delivered", TooLate),
            ("Returning", TooLate),
            ("ReturnedToSender", TooLate),
            ("Return processed", TooLate),
            ("Cancelled", TooLate),
            ("Lost", TooLate),
            ("Damaged", TooLate),
            ("Something new", TryIt),
            ("", TryIt),
        ];
        for (raw, expected) in cases {
            assert_eq!(update_editability(raw), expected, "{raw}");
        }
    }

    #[test]
    fn cancel_editability_table() {
        use Editability::*;
        let cases = [
            ("Pending", Allowed, Allowed),
            ("AssignedToPartner", TooLate, Allowed),
            ("Assigned to partner", TooLate, Allowed),
            ("Error", TryIt, TryIt),
            ("OutOfStock", TryIt, TryIt),
            ("OnHold", TryIt, TryIt),
            ("On hold", TryIt, TryIt),
            ("New", TryIt, TryIt),
            ("Updated", TryIt, TryIt),
            ("WaybillNotCreated", TooLate, TooLate),
            ("Tracking number received", TooLate, TooLate),
            ("Label sent", TooLate, TooLate),
            ("Shipment created", TooLate, TooLate),
            ("Dispatched", TooLate, TooLate),
            ("InTransit", TooLate, TooLate),
            ("Delivered", TooLate, TooLate),
            ("Returning", TooLate, TooLate),
            ("ReturnedToSender", TooLate, TooLate),
            ("Return processed", TooLate, TooLate),
            ("Cancelled", TooLate, TooLate),
            ("Lost", TooLate, TooLate),
            ("Damaged", TooLate, TooLate),
            ("Something new", TryIt, TryIt),
        ];
        for (raw, without_flag, with_flag) in cases {
            assert_eq!(cancel_editability(raw, false), without_flag, "{raw}");
            assert_eq!(cancel_editability(raw, true), with_flag, "{raw} (flag)");
        }
    }
}
