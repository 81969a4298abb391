//! Conformance checks for [`Store`] implementations: run [`run_store_suite`] against your
//! database-backed store (on an empty database) to check it keeps the contract the
//! orchestrator relies on.
//!
//! Each check is a free async function that panics with a message naming the contract it
//! found broken. [`run_store_suite`] runs them all, each under a time limit
//! ([`CHECK_TIME_LIMIT`]): a store that never answers, or a listing that never ends, fails
//! the suite instead of hanging it. Every loop in the checks is bounded.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use fulfillkit::store::MemoryStore;
//!
//! fulfillkit::testkit::run_store_suite(&MemoryStore::new()).await;
//! # }
//! ```

mod exceptions;
mod leases;
mod records;
mod tracking;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use super::sample_order;
use crate::model::{DeliveryStatus, Event, EventKind, ShipmentRef, StatusCode, Waybill};
use crate::store::{ExportState, ShipmentRecord, Store};

pub use exceptions::{exception_history, keeps_exceptions};
pub use leases::{order_leases, outbox};
pub use records::{
    concurrent_writers, every_field_round_trips, insert_is_if_absent, keeps_waybills,
    list_failed_and_exporting, list_pending_updates, update_is_compare_and_swap,
};
pub use tracking::{apply_tracking_in_place, claim_due_lists_and_claims, claims_expire};

/// How long one check may take in [`run_store_suite`] before it fails as hung.
pub const CHECK_TIME_LIMIT: Duration = Duration::from_secs(60);

/// Most pages any listing in the checks walks: a listing that does not end fails.
const MAX_PAGES: usize = 1_000;

/// A record for `order_id` at `instance` in `export` state, version 0.
pub fn sample_record(order_id: &str, instance: &str, export: ExportState) -> ShipmentRecord {
    let order = sample_order(order_id);
    ShipmentRecord::new(order, instance, Waybill::new(), export, t(10))
}

/// 2 May 2024 at `hour`:00 UTC: the checks' clock.
fn t(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 2, hour, 0, 0)
        .single()
        .unwrap_or_default()
}

fn exported(order_id: &str) -> ExportState {
    ExportState::Exported {
        shipment: ShipmentRef::new(order_id, format!("REF-{order_id}")),
        tracking_number: None,
        at: t(9),
    }
}

fn status(code: StatusCode, text: &str, hour: u32) -> DeliveryStatus {
    DeliveryStatus::new(code, text, t(hour))
}

/// An event about `record`, occurred at `hour`.
fn event(record: &ShipmentRecord, hour: u32) -> Event {
    Event::for_order(
        EventKind::TrackingStopped {
            reason: format!("store suite {hour}"),
        },
        record.order_id.clone(),
        record.instance.clone(),
        t(hour),
        record.automation,
    )
}

fn shared(status: DeliveryStatus) -> Option<Arc<DeliveryStatus>> {
    Some(Arc::new(status))
}

/// Runs `check` under [`CHECK_TIME_LIMIT`], failing with the contract's name if it hangs,
/// breaks an assertion or meets an error.
async fn limited(contract: &str, check: impl Future<Output = ()>) {
    super::contract::run_check("store", contract, CHECK_TIME_LIMIT, check).await;
}

/// Runs every store check on an empty store, each under [`CHECK_TIME_LIMIT`] (the host's
/// test runtime needs tokio's time driver, as `#[tokio::test]` has).
///
/// # Panics
///
/// On the first broken contract, with a message ``store contract `<name>`: ...`` — also when
/// the store answers an error where the contract expects an answer (a store whose database
/// is down fails the first check, naming it).
pub async fn run_store_suite(store: &dyn Store) {
    limited("insert", insert_is_if_absent(store)).await;
    limited("update", update_is_compare_and_swap(store)).await;
    limited("update (concurrent)", concurrent_writers(store)).await;
    limited("round trip", every_field_round_trips(store)).await;
    limited(
        "list_failed / list_exporting",
        list_failed_and_exporting(store),
    )
    .await;
    limited("list_pending_updates", list_pending_updates(store)).await;
    limited("claim_due", claim_due_lists_and_claims(store)).await;
    limited("claim_due (leases)", claims_expire(store)).await;
    limited("apply_tracking", apply_tracking_in_place(store)).await;
    limited("order leases", order_leases(store)).await;
    limited("outbox", outbox(store)).await;
    limited("waybills", keeps_waybills(store)).await;
    limited("exceptions", keeps_exceptions(store)).await;
    limited("exception history", exception_history(store)).await;
}
