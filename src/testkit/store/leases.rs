//! Per-order edit leases, and the event outbox.

use super::{event, exported, sample_record, t};
use crate::model::{Event, OrderId};
use crate::store::{Effects, Lease, Store};

/// An order's edit lease has one holder at a time: taken when free, expired or the taker's
/// own (extended), refused otherwise; released only by its holder.
pub async fn order_leases(store: &dyn Store) {
    let order = OrderId::new("FK-EDIT-1");
    let take = async |owner: &str, until: u32, now: u32| {
        store
            .acquire_order_lease(&order, &Lease::new(owner, t(until)), t(now))
            .await
            .expect("acquire_order_lease")
    };
    assert!(
        take("replica-a", 13, 12).await,
        "store contract `order leases`: a free lease is taken"
    );
    assert!(
        !take("replica-b", 13, 12).await,
        "store contract `order leases`: a lease held by another owner is refused"
    );
    assert!(
        take("replica-a", 14, 12).await,
        "store contract `order leases`: the holder may take its lease again (extending it)"
    );
    assert!(
        !take("replica-b", 15, 13).await,
        "store contract `order leases`: an extended lease holds until its new expiry"
    );
    assert!(
        take("replica-b", 15, 14).await,
        "store contract `order leases`: an expired lease is taken"
    );
    store
        .release_order_lease(&order, "replica-a")
        .await
        .expect("release_order_lease");
    assert!(
        !take("replica-c", 15, 14).await,
        "store contract `order leases`: only the holder's release frees a lease"
    );
    store
        .release_order_lease(&order, "replica-b")
        .await
        .expect("release_order_lease");
    assert!(
        take("replica-c", 15, 14).await,
        "store contract `order leases`: a released lease is free at once"
    );
    assert!(
        store
            .acquire_order_lease(
                &OrderId::new("FK-EDIT-2"),
                &Lease::new("replica-b", t(15)),
                t(14)
            )
            .await
            .expect("acquire_order_lease"),
        "store contract `order leases`: leases are per order"
    );
    for (order, owner) in [("FK-EDIT-1", "replica-c"), ("FK-EDIT-2", "replica-b")] {
        store
            .release_order_lease(&OrderId::new(order), owner)
            .await
            .expect("release_order_lease");
    }
}

/// The outbox: events written with changes are pending, oldest first, filtered by when they
/// occurred, read back whole, and gone once marked delivered.
pub async fn outbox(store: &dyn Store) {
    let leftover = store
        .pending_events(t(23), 100)
        .await
        .expect("pending_events");
    assert!(
        leftover.is_empty(),
        "store contract `outbox`: events marked delivered are no longer pending ({} left)",
        leftover.len()
    );
    let record = sample_record("FK-OUTBOX-1", "a", exported("FK-OUTBOX-1"));
    let (e1, e2, e3) = (event(&record, 10), event(&record, 11), event(&record, 12));
    store
        .insert(
            record.clone(),
            Effects::events(vec![e1.clone(), e2.clone()]),
        )
        .await
        .expect("insert");
    store
        .update(record.clone(), Effects::events(vec![e3.clone()]))
        .await
        .expect("update");
    let all = store
        .pending_events(t(23), 100)
        .await
        .expect("pending_events");
    assert_eq!(
        all,
        [e1.clone(), e2.clone(), e3.clone()],
        "store contract `outbox`: pending events read back whole, in the order they were written"
    );
    assert_eq!(
        store
            .pending_events(t(12), 100)
            .await
            .expect("pending_events"),
        [e1.clone(), e2.clone()],
        "store contract `outbox`: only events that occurred before `before` are listed"
    );
    assert_eq!(
        store
            .pending_events(t(23), 1)
            .await
            .expect("pending_events"),
        std::slice::from_ref(&e1),
        "store contract `outbox`: at most `limit` events, oldest first"
    );
    let unknown = Event::for_order(
        e1.kind.clone(),
        record.order_id.clone(),
        record.instance.clone(),
        t(10),
        record.automation,
    );
    store
        .mark_delivered(&[e1.id.clone(), unknown.id])
        .await
        .expect("store contract `outbox`: marking an unknown id delivered is not an error");
    assert_eq!(
        store
            .pending_events(t(23), 100)
            .await
            .expect("pending_events"),
        [e2.clone(), e3.clone()],
        "store contract `outbox`: an event marked delivered is no longer pending"
    );
    store
        .mark_delivered(&[e1.id, e2.id, e3.id])
        .await
        .expect("mark_delivered");
    assert!(
        store
            .pending_events(t(23), 100)
            .await
            .expect("pending_events")
            .is_empty(),
        "store contract `outbox`: marking delivered twice is harmless"
    );
}
