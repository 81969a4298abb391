//! Records: insert, compare-and-swap (one writer at a time, and several at once), every field
//! read back as written, the listings of failed, unfinished and pending work, waybills.

use std::sync::Arc;

use super::{MAX_PAGES, event, exported, sample_record, shared, status, t};
use crate::error::{Error, ErrorKind, Failure};
use crate::model::{
    Automation, EventId, InstanceId, KeyField, OpeningHours, Order, OrderId, PickupPoint, Problem,
    StatusCode, Waybill,
};
use crate::store::{Effects, ExportState, PendingUpdate, ShipmentRecord, Store};

/// Whether the event `id` waits in the outbox.
async fn pending(store: &dyn Store, id: &EventId) -> bool {
    store
        .pending_events(t(23), 100_000)
        .await
        .expect("pending_events")
        .iter()
        .any(|e| e.id == *id)
}

/// `insert` stores a record (with its events) only if none exists for its order.
pub async fn insert_is_if_absent(store: &dyn Store) {
    let record = sample_record("FK-STORE-1", "a", exported("FK-STORE-1"));
    let first = event(&record, 11);
    assert!(
        store
            .insert(record.clone(), Effects::events(vec![first.clone()]))
            .await
            .expect("insert"),
        "store contract `insert`: the first insert of an order must store it"
    );
    let mut other = record.clone();
    other.instance = InstanceId::new("b");
    let second = event(&record, 12);
    assert!(
        !store
            .insert(other, Effects::events(vec![second.clone()]))
            .await
            .expect("insert"),
        "store contract `insert`: a second insert of an order must not store it"
    );
    let stored = store
        .get(&record.order_id)
        .await
        .expect("get")
        .expect("store contract `insert`: the inserted record must be readable");
    assert_eq!(
        stored, record,
        "store contract `insert`: the first record stays as written"
    );
    assert!(
        pending(store, &first.id).await,
        "store contract `insert`: the events of an insert are stored with it (outbox)"
    );
    assert!(
        !pending(store, &second.id).await,
        "store contract `insert`: an insert that stored nothing stores no events"
    );
    store
        .mark_delivered(&[first.id])
        .await
        .expect("mark_delivered");
    assert_eq!(
        store
            .get(&OrderId::new("FK-STORE-NONE"))
            .await
            .expect("get"),
        None,
        "store contract `get`: an unknown order has no record"
    );
}

/// `update` is a compare-and-swap on `version`, bumps it, and stores its effects only when
/// it wrote.
pub async fn update_is_compare_and_swap(store: &dyn Store) {
    let record = sample_record(
        "FK-STORE-2",
        "a",
        ExportState::Exporting {
            since: t(9),
            owner: None,
        },
    );
    store
        .insert(record.clone(), Effects::none())
        .await
        .expect("insert");
    let mut first = record.clone();
    first.export = exported("FK-STORE-2");
    let written = event(&record, 13);
    let saved = store
        .update(first, Effects::events(vec![written.clone()]))
        .await
        .expect("store contract `update`: an update at the stored version must succeed");
    assert_eq!(
        saved.version,
        record.version + 1,
        "store contract `update`: an update bumps the version by one"
    );
    // A writer still holding the old version must be refused, and change nothing.
    let mut stale = record.clone();
    stale.automation = Automation::Suspended;
    let lost = event(&record, 14);
    let err = store
        .update(stale, Effects::events(vec![lost.clone()]))
        .await
        .expect_err("store contract `update`: an update at a stale version must fail");
    assert!(
        matches!(err, Error::Conflict { .. }),
        "store contract `update`: a stale update fails with Error::Conflict, got {err:?}"
    );
    let stored = store
        .get(&record.order_id)
        .await
        .expect("get")
        .expect("record");
    assert_eq!(
        stored, saved,
        "store contract `update`: a refused update changes nothing"
    );
    assert!(
        pending(store, &written.id).await,
        "store contract `update`: the events of an update are stored with it (outbox)"
    );
    assert!(
        !pending(store, &lost.id).await,
        "store contract `update`: a refused update stores no events"
    );
    store
        .mark_delivered(&[written.id])
        .await
        .expect("mark_delivered");
    let mut ghost = record.clone();
    ghost.order_id = OrderId::new("FK-STORE-GHOST");
    assert!(
        matches!(
            store.update(ghost, Effects::none()).await,
            Err(Error::NotFound { .. })
        ),
        "store contract `update`: updating an order without a record is Error::NotFound"
    );
}

/// Several writers at the same version at once: exactly one wins, the others get
/// [`Error::Conflict`] (a store that checks and then writes lets two win).
pub async fn concurrent_writers(store: &dyn Store) {
    const WRITERS: usize = 8;
    let record = sample_record("FK-STORE-CAS", "a", exported("FK-STORE-CAS"));
    store
        .insert(record.clone(), Effects::none())
        .await
        .expect("insert");
    for round in 0..3 {
        let base = store
            .get(&record.order_id)
            .await
            .expect("get")
            .expect("record");
        let writes = (0..WRITERS).map(|w| {
            let mut mine = base.clone();
            mine.export_seq = u32::try_from(round * WRITERS + w + 1).unwrap_or(u32::MAX);
            store.update(mine, Effects::none())
        });
        let results = futures_util::future::join_all(writes).await;
        let won: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(
            won.len(),
            1,
            "store contract `update (concurrent)`: of {WRITERS} writers at version {}, exactly one may win; {} did",
            base.version,
            won.len()
        );
        assert!(
            results
                .iter()
                .filter_map(|r| r.as_ref().err())
                .all(|e| matches!(e, Error::Conflict { .. })),
            "store contract `update (concurrent)`: the losers get Error::Conflict"
        );
        let stored = store
            .get(&record.order_id)
            .await
            .expect("get")
            .expect("record");
        assert_eq!(
            &stored, won[0],
            "store contract `update (concurrent)`: the stored record is the winner's"
        );
    }
}

/// A record with every field set to something other than its default.
fn full_record() -> ShipmentRecord {
    let mut record = sample_record("FK-STORE-FULL", "full", exported("FK-STORE-FULL"));
    record.waybill = Arc::new(
        Waybill::new()
            .with("comment", "ring twice")
            .with("parcels", 2),
    );
    let mut history = vec![
        status(StatusCode::Registered, "Registered", 10),
        status(StatusCode::InTransit, "Left the warehouse", 11)
            .with_carrier("SDA", Some("383148H040001".into())),
        status(StatusCode::Arrived, "At the point", 12),
        status(StatusCode::OnDelivery, "Courier on the way", 13),
    ];
    history[1].tracking_url = Some("https://track.example/383148H040001".into());
    history[2].pickup_point = Some(Box::new(PickupPoint {
        id: "MI-0042".into(),
        name: "Tabacchi Rossi".into(),
        address: "Via Roma 1, Milano".into(),
        postcode: "20121".into(),
        phones: vec!["+390212345678".into()],
        opening_hours: OpeningHours::default(),
        coordinates: None,
    }));
    history[3].problem = Some(Problem::Other("held at customs".into()));
    record.history = history.clone().into();
    // Current and last reported differ: a change is waiting to be reported.
    record.current_status = shared(history[3].clone());
    record.last_reported = shared(history[2].clone());
    record.next_poll_at = Some(t(15));
    record.export_seq = 2;
    record.automation = Automation::Suspended;
    record.pending_update = Some(Box::new(PendingUpdate {
        order: Order::clone(&record.order),
        waybill: Waybill::new().with("comment", "leave at the door"),
        changed_fields: vec![KeyField::Phone, KeyField::Address],
        since: t(11),
        attempts: 3,
        last_failure: Failure::new(ErrorKind::Timeout, "timed out", true),
    }));
    record
}

/// Every field of a record reads back as written, after `insert` and after `update` (a store
/// dropping `last_reported` or `next_poll_at` repeats events and polls).
pub async fn every_field_round_trips(store: &dyn Store) {
    let record = full_record();
    store
        .insert(record.clone(), Effects::none())
        .await
        .expect("insert");
    let read = store
        .get(&record.order_id)
        .await
        .expect("get")
        .expect("record");
    assert_eq!(
        read, record,
        "store contract `round trip`: every field of an inserted record reads back as written"
    );
    let mut changed = read.clone();
    changed.tracking_stopped = true;
    changed.next_poll_at = None;
    changed.last_reported = changed.current_status.clone();
    changed.pending_update = None;
    changed.automation = Automation::Active;
    changed.updated_at = t(16);
    let saved = store
        .update(changed.clone(), Effects::none())
        .await
        .expect("update");
    let read = store
        .get(&record.order_id)
        .await
        .expect("get")
        .expect("record");
    assert_eq!(
        read, saved,
        "store contract `round trip`: every field of an updated record reads back as written"
    );
    changed.version += 1;
    assert_eq!(
        read, changed,
        "store contract `round trip`: update stores the record as given, version bumped"
    );
}

/// Walks a record listing page by page (`limit` 2), at most [`MAX_PAGES`] pages, checking
/// that each page moves past the previous one.
async fn walk(
    contract: &str,
    mut list: impl AsyncFnMut(Option<&OrderId>, usize) -> Vec<ShipmentRecord>,
) -> Vec<OrderId> {
    let mut seen: Vec<OrderId> = Vec::new();
    for _ in 0..MAX_PAGES {
        let page = list(seen.last(), 2).await;
        assert!(
            page.len() <= 2,
            "store contract `{contract}`: a page holds at most `limit` records"
        );
        let Some(last) = page.last() else {
            return seen;
        };
        assert!(
            seen.last().is_none_or(|after| last.order_id > *after)
                && page.windows(2).all(|w| w[0].order_id < w[1].order_id)
                && seen.last().is_none_or(|after| page[0].order_id > *after),
            "store contract `{contract}`: pages are in order id order, after `after`"
        );
        seen.extend(page.into_iter().map(|r| r.order_id));
    }
    panic!(
        "store contract `{contract}`: the listing did not end after {MAX_PAGES} pages (is `after` ignored?)"
    );
}

/// `list_failed` and `list_exporting` find the records in those states, in pages.
pub async fn list_failed_and_exporting(store: &dyn Store) {
    for i in 0..3 {
        let failed = ExportState::Failed {
            retryable: i % 2 == 0,
            failure: Failure::new(ErrorKind::Unauthenticated, "no", false),
            since: t(9),
            attempts: 2,
        };
        let id = format!("FK-STORE-FAIL-{i}");
        store
            .insert(sample_record(&id, "a", failed), Effects::none())
            .await
            .expect("insert");
        let intent = ExportState::Exporting {
            since: t(9),
            owner: Some("replica-1".into()),
        };
        let id = format!("FK-STORE-INTENT-{i}");
        store
            .insert(sample_record(&id, "a", intent), Effects::none())
            .await
            .expect("insert");
    }
    let failed = walk("list_failed", async |after, limit| {
        store.list_failed(after, limit).await.expect("list_failed")
    })
    .await;
    let intents = walk("list_exporting", async |after, limit| {
        store
            .list_exporting(after, limit)
            .await
            .expect("list_exporting")
    })
    .await;
    for i in 0..3 {
        assert!(
            failed.contains(&OrderId::new(format!("FK-STORE-FAIL-{i}"))),
            "store contract `list_failed`: lists every failed export"
        );
        assert!(
            intents.contains(&OrderId::new(format!("FK-STORE-INTENT-{i}"))),
            "store contract `list_exporting`: lists every unfinished export"
        );
    }
    assert!(
        failed.iter().all(|id| !id.as_str().contains("INTENT"))
            && intents.iter().all(|id| !id.as_str().contains("FAIL")),
        "store contract `list_failed / list_exporting`: each lists its own state only"
    );
}

/// `list_pending_updates` finds the records with an edit waiting.
pub async fn list_pending_updates(store: &dyn Store) {
    let mut waiting = sample_record("FK-STORE-PEND", "a", exported("FK-STORE-PEND"));
    waiting.pending_update = Some(Box::new(PendingUpdate {
        order: Order::clone(&waiting.order),
        waybill: Waybill::new(),
        changed_fields: vec![KeyField::Phone],
        since: t(9),
        attempts: 1,
        last_failure: Failure::new(ErrorKind::Timeout, "timed out", true),
    }));
    store
        .insert(waiting, Effects::none())
        .await
        .expect("insert");
    let plain = sample_record("FK-STORE-PLAIN", "a", exported("FK-STORE-PLAIN"));
    store.insert(plain, Effects::none()).await.expect("insert");
    let ids = walk("list_pending_updates", async |after, limit| {
        store
            .list_pending_updates(after, limit)
            .await
            .expect("list_pending_updates")
    })
    .await;
    assert!(
        ids.contains(&OrderId::new("FK-STORE-PEND")),
        "store contract `list_pending_updates`: lists a record with a pending edit"
    );
    assert!(
        !ids.contains(&OrderId::new("FK-STORE-PLAIN")),
        "store contract `list_pending_updates`: lists only records with a pending edit"
    );
}

/// Waybills are saved and read back per order, the last save winning.
pub async fn keeps_waybills(store: &dyn Store) {
    let id = OrderId::new("FK-STORE-WB");
    assert_eq!(
        store.waybill(&id).await.expect("waybill"),
        None,
        "store contract `waybills`: no waybill before one is saved"
    );
    for comment in ["ring twice", "leave at the door"] {
        let waybill = Waybill::new().with("comment", comment);
        store
            .save_waybill(&id, waybill.clone())
            .await
            .expect("save");
        assert_eq!(
            store.waybill(&id).await.expect("waybill"),
            Some(waybill),
            "store contract `waybills`: the last saved waybill reads back"
        );
    }
}
