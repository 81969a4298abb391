//! SphereWMS's order status vocabulary as data: the status table of protocol §10(a), which
//! statuses are a void, which still allow an update or a void (§10(b)), and after which
//! statuses shipments are worth reading.
//!
//! Every status string here is \[assumed]: the stored API guide stops before the order chapter,
//! so these are WMS-typical words, several of which the SphereWMS user guide uses ("open
//! orders", allocated, picked, void). Everything is keyed by the normalized text (lowercase,
//! without spaces, `_` and `-`, see [`normalize_status_key`]), so `on_hold`, `On Hold` and
//! `ON-HOLD` are one status. Correct the rows here once a real API key shows the real strings;
//! an instance can also override them (see [`StatusTable::with_overrides`]). Parsing replies
//! lives in `wire.rs`; HTTP lives in the client.

use crate::model::{StatusCode, StatusTable, normalize_status_key};

/// The rows of protocol §10(a), in lifecycle order: raw SphereWMS status → code.
///
/// "Create refused / no `order_id`" (Unregistered, −1) is not a raw status: the adapter
/// reports it as an error from `create_order`, and an order SphereWMS does not know as
/// `TrackingUpdate::NotFound`. Arrived, OnDelivery, Pending (450) and Paid are carrier events a
/// WMS does not track; Lost and Damaged are not WMS order states: none of them is produced.
const ROWS: &[(&str, StatusCode)] = &[
    // A pre-release stage, if the WMS shows one.
    ("new", StatusCode::Created),
    ("entered", StatusCode::Created),
    // In the WMS, not yet allocated.
    ("open", StatusCode::Registered),
    ("pending", StatusCode::Registered),
    ("on_hold", StatusCode::Registered),
    ("backordered", StatusCode::Registered),
    // Warehouse work has started.
    ("released", StatusCode::Accepted),
    ("allocated", StatusCode::Accepted),
    ("picking", StatusCode::Accepted),
    ("picked", StatusCode::Packed),
    ("packed", StatusCode::Packed),
    ("staged", StatusCode::Packed),
    // Handed to the carrier: the WMS knows nothing later.
    ("shipped", StatusCode::InTransit),
    ("closed", StatusCode::InTransit),
    ("complete", StatusCode::InTransit),
    // Only if the WMS ever reports it.
    ("delivered", StatusCode::Delivered),
    ("returned", StatusCode::DeliveredToSender),
    ("rma_received", StatusCode::DeliveredToSender),
    // Terminal.
    ("void", StatusCode::Cancelled),
    ("voided", StatusCode::Cancelled),
    ("cancelled", StatusCode::Cancelled),
    ("canceled", StatusCode::Cancelled),
    ("deleted", StatusCode::Cancelled),
];

/// Statuses in which an order may still be updated or voided (§10(b)), normalized: open and
/// not yet allocated or being picked \[doc U3 for the rule, assumed for the strings].
const CHANGEABLE: &[&str] = &["open", "pending", "onhold", "backordered", "new", "entered"];

/// Statuses that mean the order is voided (§10(a), normalized).
const VOID: &[&str] = &["void", "voided", "cancelled", "canceled", "deleted"];

/// SphereWMS's status table (§10(a)) as data.
///
/// A raw status not in the table maps to [`StatusCode::Unknown`] with its text kept; instance
/// overrides go on top with [`StatusTable::with_overrides`].
pub(crate) fn status_table() -> StatusTable {
    ROWS.iter().fold(StatusTable::new(), |table, (raw, code)| {
        table.with(raw, *code)
    })
}

/// Whether `raw` says the order is voided (normalized comparison).
pub(crate) fn is_void_raw(raw: &str) -> bool {
    VOID.contains(&normalize_status_key(raw).as_str())
}

/// Whether an update or a void may still be sent for an order, judged from its raw status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Editability {
    /// One of the open statuses of §10(b), or no status to judge by: make the call and respect
    /// a refusal.
    Allowed,
    /// Any other status: answer `TooLate { state }` without calling (§10(b)).
    TooLate,
}

/// Whether `raw` still allows an update or a void (§10(b), the same states for both).
///
/// Strict as the protocol says: a status that is not one of the six open ones, including one
/// the table does not know, is too late. A blank status gives nothing to judge by, so the call
/// is made \[assumed].
pub(crate) fn editability(raw: &str) -> Editability {
    let key = normalize_status_key(raw);
    if key.is_empty() || CHANGEABLE.contains(&key.as_str()) {
        Editability::Allowed
    } else {
        Editability::TooLate
    }
}

/// Whether an order whose status maps to `code` may have shipments (carrier, tracking
/// numbers) worth a `GET /shipments`: not before packing, not once voided \[assumed]. An
/// unknown status is read, in case it is a shipped state the table does not know yet.
pub(crate) fn may_have_shipments(code: StatusCode) -> bool {
    !matches!(
        code,
        StatusCode::Unregistered
            | StatusCode::Created
            | StatusCode::Registered
            | StatusCode::Accepted
            | StatusCode::Cancelled
    )
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    #[test]
    fn every_row_of_the_table() {
        use StatusCode::*;
        let at = Utc.with_ymd_and_hms(2024, 5, 2, 10, 15, 0).unwrap();
        let rows: &[(&str, StatusCode)] = &[
            ("new", Created),
            ("entered", Created),
            ("open", Registered),
            ("pending", Registered),
            ("on_hold", Registered),
            ("On Hold", Registered),
            ("backordered", Registered),
            ("released", Accepted),
            ("allocated", Accepted),
            ("picking", Accepted),
            ("picked", Packed),
            ("packed", Packed),
            ("staged", Packed),
            ("shipped", InTransit),
            ("closed", InTransit),
            ("complete", InTransit),
            ("delivered", Delivered),
            ("returned", DeliveredToSender),
            ("rma_received", DeliveredToSender),
            ("RMA-Received", DeliveredToSender),
            ("void", Cancelled),
            ("voided", Cancelled),
            ("cancelled", Cancelled),
            ("canceled", Cancelled),
            ("deleted", Cancelled),
            ("VOID", Cancelled),
        ];
        let table = status_table();
        for (raw, code) in rows {
            let status = table.status(raw, at);
            assert_eq!(status.code, *code, "{raw}");
            assert_eq!(status.original, *raw, "{raw}");
            assert_eq!(status.problem, None, "{raw}");
        }
        assert_eq!(table.len(), ROWS.len());
        let unknown = table.status(" Wave Planned ", at);
        assert_eq!(unknown.code, StatusCode::Unknown);
        assert_eq!(unknown.original, "Wave Planned");
    }

    #[test]
    fn the_changeable_states_are_exactly_the_created_and_registered_rows() {
        // §10(b) lists the states that come before allocation: the table's Created and
        // Registered rows. Keeping the two lists in step is what this test is for.
        let table = status_table();
        let at = Utc::now();
        for (raw, code) in ROWS {
            let before_allocation = matches!(code, StatusCode::Created | StatusCode::Registered);
            assert_eq!(
                editability(raw) == Editability::Allowed,
                before_allocation,
                "{raw}"
            );
            assert_eq!(table.status(raw, at).code, *code);
        }
    }

    #[test]
    fn editability_table() {
        use Editability::*;
        for (raw, expected) in [
            ("open", Allowed),
            ("OPEN", Allowed),
            ("pending", Allowed),
            ("on_hold", Allowed),
            ("on hold", Allowed),
            ("backordered", Allowed),
            ("new", Allowed),
            ("entered", Allowed),
            ("", Allowed),
            ("  ", Allowed),
            ("released", TooLate),
            ("allocated", TooLate),
            ("picking", TooLate),
            ("picked", TooLate),
            ("shipped", TooLate),
            ("void", TooLate),
            ("delivered", TooLate),
            ("Wave Planned", TooLate),
        ] {
            assert_eq!(editability(raw), expected, "{raw:?}");
        }
    }

    #[test]
    fn void_statuses() {
        for raw in [
            "void",
            "Voided",
            "CANCELLED",
            "canceled",
            "deleted",
            " void ",
        ] {
            assert!(is_void_raw(raw), "{raw}");
        }
        for raw in ["open", "void pending", "", "allocated"] {
            assert!(!is_void_raw(raw), "{raw}");
        }
    }

    #[test]
    fn shipments_are_read_from_packing_on() {
        use StatusCode::*;
        for code in [Unregistered, Created, Registered, Accepted, Cancelled] {
            assert!(!may_have_shipments(code), "{code}");
        }
        for code in [Packed, InTransit, Delivered, DeliveredToSender, Unknown] {
            assert!(may_have_shipments(code), "{code}");
        }
    }
}
