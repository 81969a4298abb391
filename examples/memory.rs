//! Memory per active shipment in `MemoryStore`, with a 10-status history: resident memory
//! (from `/proc/self/statm`, Linux) before and after storing N records, divided by N, beside
//! the baseline of the same N orders alone in a `Vec` measured in the same run.
//!
//! Run: `cargo run --release --example memory -- [N]` (default 100,000).

use chrono::{TimeZone, Utc};
use fulfillkit::model::{DeliveryStatus, ShipmentRef, StatusCode};
use fulfillkit::store::{Effects, ExportState, MemoryStore, Store};
use fulfillkit::testkit::{sample_order, sample_record};

/// Resident set size in bytes, if the platform tells.
fn rss() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> fulfillkit::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let t0 = Utc
        .with_ymd_and_hms(2024, 5, 2, 8, 0, 0)
        .single()
        .unwrap_or_default();
    // Ten statuses as a provider reports them: the provider's status words (shared by every
    // shipment), the carrier, and the shipment's own carrier tracking number in each.
    let history = |n: usize| -> Vec<DeliveryStatus> {
        (0..10)
            .map(|i| {
                DeliveryStatus::new(
                    StatusCode::ALL[i % 9],
                    format!("status text {i}"),
                    t0 + chrono::Duration::hours(i as i64) + chrono::Duration::seconds(n as i64),
                )
                .with_carrier("SDA", Some(format!("383148H{n:07}").into()))
            })
            .collect()
    };
    let before = rss().unwrap_or(0);
    let orders: Vec<_> = (0..n)
        .map(|i| sample_order(&format!("SO-{i:07}")))
        .collect();
    let after_orders = rss().unwrap_or(0);

    let store = MemoryStore::new();
    let before_store = rss().unwrap_or(0);
    for i in 0..n {
        let id = format!("SO-{i:07}");
        let mut record = sample_record(
            &id,
            "wapi-it",
            ExportState::Exported {
                shipment: ShipmentRef::new(id.as_str(), format!("WH{i:010}")),
                tracking_number: Some(format!("WH{i:010}")),
                at: t0,
            },
        );
        // As tracking leaves it: the reported status shares the current one.
        let history = history(i);
        record.current_status = history.last().cloned().map(std::sync::Arc::new);
        record.last_reported = record.current_status.clone();
        record.history = history.into();
        store.insert(record, Effects::none()).await?;
    }
    let after_store = rss().unwrap_or(0);
    let per = |bytes: u64| bytes as f64 / n as f64;
    println!("{n} shipments, 10 statuses each, in MemoryStore");
    println!(
        "  baseline (the orders alone in a Vec): {:.0} bytes per order",
        per(after_orders.saturating_sub(before))
    );
    println!(
        "  MemoryStore record (order, waybill, fingerprints, 10 statuses, current, reported): {:.0} bytes per shipment (goal <= 2048); ratio to the order alone {:.1}",
        per(after_store.saturating_sub(before_store)),
        per(after_store.saturating_sub(before_store))
            / per(after_orders.saturating_sub(before)).max(1.0)
    );
    drop(orders);
    Ok(())
}
