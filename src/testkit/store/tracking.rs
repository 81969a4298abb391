//! Tracking: due listing in due order with claims, lease expiry, and in-place writes.

use super::{event, exported, sample_record, shared, status, t};
use crate::error::{ErrorKind, Failure};
use crate::model::{OrderId, StatusCode};
use crate::store::{
    DuePosition, DueQuery, Effects, ExportState, HistoryWrite, Lease, ShipmentRecord, Store,
    TrackingWrite, TrackingWriteOutcome,
};

fn ids(records: &[ShipmentRecord]) -> Vec<&str> {
    records.iter().map(|r| r.order_id.as_str()).collect()
}

async fn claim(
    store: &dyn Store,
    instance: &str,
    owner: &str,
    now_hour: u32,
    after: Option<DuePosition>,
    limit: usize,
) -> Vec<ShipmentRecord> {
    let lease = Lease::new(owner, t(now_hour + 1));
    store
        .claim_due(&DueQuery::new(instance, t(now_hour), lease, limit).after(after))
        .await
        .expect("claim_due")
}

/// `claim_due` lists an instance's due, tracked shipments oldest first (no next poll time
/// first), in pages after a position, and claims them: another owner gets none of them.
pub async fn claim_due_lists_and_claims(store: &dyn Store) {
    let insert = async |id: &str, instance: &str, edit: &dyn Fn(&mut ShipmentRecord)| {
        let mut record = sample_record(id, instance, exported(id));
        edit(&mut record);
        store.insert(record, Effects::none()).await.expect("insert");
    };
    // Inserted out of due order.
    insert("FK-DUE-D3", "due", &|r| r.next_poll_at = Some(t(9))).await;
    insert("FK-DUE-LATER", "due", &|r| r.next_poll_at = Some(t(20))).await;
    insert("FK-DUE-D1", "due", &|_| {}).await;
    insert("FK-DUE-D4", "due", &|r| r.next_poll_at = Some(t(9))).await;
    insert("FK-DUE-D2", "due", &|r| r.next_poll_at = Some(t(8))).await;
    insert("FK-DUE-FINAL", "due", &|r| {
        r.current_status = shared(status(StatusCode::Delivered, "Delivered", 8));
    })
    .await;
    insert("FK-DUE-STOPPED", "due", &|r| r.tracking_stopped = true).await;
    insert("FK-DUE-OTHER", "due-elsewhere", &|_| {}).await;
    let failed = ExportState::Failed {
        retryable: true,
        failure: Failure::new(ErrorKind::Timeout, "timed out", true),
        attempts: 1,
        since: t(9),
    };
    store
        .insert(
            sample_record("FK-DUE-FAILED", "due", failed),
            Effects::none(),
        )
        .await
        .expect("insert");

    let first = claim(store, "due", "replica-a", 12, None, 2).await;
    assert_eq!(
        ids(&first),
        ["FK-DUE-D1", "FK-DUE-D2"],
        "store contract `claim_due`: due shipments oldest first (no next poll time first), at most `limit`"
    );
    let after = first.last().map(DuePosition::of);
    let rest = claim(store, "due", "replica-a", 12, after, 10).await;
    assert_eq!(
        ids(&rest),
        ["FK-DUE-D3", "FK-DUE-D4"],
        "store contract `claim_due`: the next page starts after `after`, same due time by order id; not due, final, stopped, unexported and other instances' shipments are never listed"
    );
    let after = rest.last().map(DuePosition::of);
    assert!(
        claim(store, "due", "replica-a", 12, after, 10)
            .await
            .is_empty(),
        "store contract `claim_due`: nothing after the last due shipment"
    );
    assert!(
        claim(store, "due", "replica-b", 12, None, 10)
            .await
            .is_empty(),
        "store contract `claim_due`: shipments claimed under a live lease are skipped for other owners"
    );
    let stored = store
        .get(&OrderId::new("FK-DUE-D1"))
        .await
        .expect("get")
        .expect("record");
    assert_eq!(
        first[0], stored,
        "store contract `claim_due`: a claimed record is the stored record"
    );
    store
        .release_claims(
            "replica-a",
            &["FK-DUE-D1", "FK-DUE-D2", "FK-DUE-D3", "FK-DUE-D4"].map(OrderId::new),
        )
        .await
        .expect("release_claims");
}

/// Claims expire with their lease (a crashed replica's shipments are picked up), an owner
/// may claim its own again, and only the owner's release frees a claim early.
pub async fn claims_expire(store: &dyn Store) {
    for id in ["FK-LEASE-1", "FK-LEASE-2"] {
        store
            .insert(sample_record(id, "lease", exported(id)), Effects::none())
            .await
            .expect("insert");
    }
    // replica-a holds both until 13:00.
    assert_eq!(
        ids(&claim(store, "lease", "replica-a", 12, None, 10).await),
        ["FK-LEASE-1", "FK-LEASE-2"],
        "store contract `claim_due (leases)`: unclaimed due shipments are claimed"
    );
    assert!(
        claim(store, "lease", "replica-b", 12, None, 10)
            .await
            .is_empty(),
        "store contract `claim_due (leases)`: a live claim keeps other owners out"
    );
    assert_eq!(
        ids(&claim(store, "lease", "replica-a", 12, None, 10).await).len(),
        2,
        "store contract `claim_due (leases)`: an owner may claim its own shipments again"
    );
    // At 13:00 replica-a's lease ran out: replica-b takes both, until 14:00.
    assert_eq!(
        ids(&claim(store, "lease", "replica-b", 13, None, 10).await),
        ["FK-LEASE-1", "FK-LEASE-2"],
        "store contract `claim_due (leases)`: a claim whose lease expired is claimable again"
    );
    store
        .release_claims("replica-a", &[OrderId::new("FK-LEASE-1")])
        .await
        .expect("release_claims");
    assert!(
        claim(store, "lease", "replica-a", 13, None, 10)
            .await
            .is_empty(),
        "store contract `release_claims`: only the owner's release frees a claim"
    );
    store
        .release_claims("replica-b", &[OrderId::new("FK-LEASE-1")])
        .await
        .expect("release_claims");
    assert_eq!(
        ids(&claim(store, "lease", "replica-a", 13, None, 10).await),
        ["FK-LEASE-1"],
        "store contract `release_claims`: a released shipment is claimable at once"
    );
    store
        .release_claims("replica-a", &[OrderId::new("FK-LEASE-1")])
        .await
        .expect("release_claims");
    store
        .release_claims("replica-b", &[OrderId::new("FK-LEASE-2")])
        .await
        .expect("release_claims");
}

/// `apply_tracking` writes a tracking result in place at the expected version, with its
/// events, releasing the claim and moving the shipment in the due order; a stale version
/// writes nothing.
pub async fn apply_tracking_in_place(store: &dyn Store) {
    let registered = status(StatusCode::Registered, "Registered", 9);
    let mut record = sample_record("FK-APPLY-1", "apply", exported("FK-APPLY-1"));
    record.history = vec![registered.clone()].into();
    record.current_status = shared(registered.clone());
    record.last_reported = record.current_status.clone();
    store
        .insert(record.clone(), Effects::none())
        .await
        .expect("insert");
    let other = sample_record("FK-APPLY-2", "apply", exported("FK-APPLY-2"));
    store
        .insert(other.clone(), Effects::none())
        .await
        .expect("insert");
    let claimed = claim(store, "apply", "replica-a", 12, None, 10).await;
    assert_eq!(ids(&claimed), ["FK-APPLY-1", "FK-APPLY-2"]);

    // News: a status appended, reported, the next poll at 14:00.
    let moving = status(StatusCode::InTransit, "Left the warehouse", 11)
        .with_carrier("SDA", Some("383148H040001".into()));
    let mut write = TrackingWrite::of(&record, t(12));
    write.history = HistoryWrite::Append(vec![moving.clone()]);
    write.current_status = shared(moving.clone());
    write.last_reported = write.current_status.clone();
    write.next_poll_at = Some(t(14));
    let news = event(&record, 12);
    write.events = vec![news.clone()];
    let mut expected = record.clone();
    write.apply_to(&mut expected);
    // A stale write in the same batch, and one for no record.
    let mut stale = TrackingWrite::of(&other, t(12));
    stale.version = other.version + 5;
    let lost = event(&other, 12);
    stale.events = vec![lost.clone()];
    let mut ghost = TrackingWrite::of(&other, t(12));
    ghost.order_id = OrderId::new("FK-APPLY-GHOST");
    let outcomes = store
        .apply_tracking(vec![write, stale, ghost])
        .await
        .expect("apply_tracking");
    assert_eq!(
        outcomes,
        [
            TrackingWriteOutcome::Written {
                version: record.version + 1
            },
            TrackingWriteOutcome::Conflict,
            TrackingWriteOutcome::NotFound,
        ],
        "store contract `apply_tracking`: one outcome per write, in order: written at the expected version (bumped), Conflict at another, NotFound without a record"
    );
    let read = store
        .get(&record.order_id)
        .await
        .expect("get")
        .expect("record");
    assert_eq!(
        read, expected,
        "store contract `apply_tracking`: an appended status, the current and last reported status, the next poll and the version are written, nothing else changes"
    );
    assert_eq!(
        store.get(&other.order_id).await.expect("get").as_ref(),
        Some(&other),
        "store contract `apply_tracking`: a write at a stale version changes nothing"
    );
    let pending = store
        .pending_events(t(23), 100_000)
        .await
        .expect("pending_events");
    assert!(
        pending.iter().any(|e| e.id == news.id) && !pending.iter().any(|e| e.id == lost.id),
        "store contract `apply_tracking`: a write stores its events; a refused one does not"
    );
    // The written shipment is due again at 14:00, not before; the refused one stayed
    // claimed until replica-a's lease ran out at 13:00.
    assert_eq!(
        ids(&claim(store, "apply", "replica-b", 13, None, 10).await),
        ["FK-APPLY-2"],
        "store contract `apply_tracking`: a shipment is due at its new next poll time, not before"
    );
    assert_eq!(
        ids(&claim(store, "apply", "replica-b", 14, None, 10).await),
        ["FK-APPLY-2", "FK-APPLY-1"],
        "store contract `apply_tracking`: a write releases the shipment's claim (and due order puts no poll time first)"
    );

    // A replaced history, then a final status: tracking no longer lists the shipment.
    let replaced = vec![
        status(StatusCode::Registered, "Registered", 9),
        status(StatusCode::Packed, "Packed", 10),
        moving.clone(),
    ];
    let mut write = TrackingWrite::of(&read, t(14));
    write.history = HistoryWrite::Replace(replaced.clone().into());
    let outcome = store.apply_tracking(vec![write]).await.expect("apply");
    assert_eq!(
        outcome,
        [TrackingWriteOutcome::Written {
            version: read.version + 1
        }]
    );
    let read = store
        .get(&record.order_id)
        .await
        .expect("get")
        .expect("record");
    assert_eq!(
        &*read.history,
        replaced.as_slice(),
        "store contract `apply_tracking`: a replaced history is written whole"
    );
    let delivered = status(StatusCode::Delivered, "Delivered", 13);
    let mut write = TrackingWrite::of(&read, t(15));
    write.history = HistoryWrite::Append(vec![delivered.clone()]);
    write.current_status = shared(delivered);
    write.next_poll_at = None;
    store.apply_tracking(vec![write]).await.expect("apply");
    let due = claim(store, "apply", "replica-c", 23, None, 10).await;
    assert_eq!(
        ids(&due),
        ["FK-APPLY-2"],
        "store contract `apply_tracking`: a shipment in a final status is no longer due"
    );
    store
        .release_claims("replica-c", &[OrderId::new("FK-APPLY-2")])
        .await
        .expect("release_claims");
    store
        .mark_delivered(&[news.id])
        .await
        .expect("mark_delivered");
}
