//! Exceptions: written with record changes, listed by filter in pages, kept as a history per
//! order.

use super::{MAX_PAGES, exported, sample_record, status, t};
use crate::model::{
    ExceptionReason, InstanceId, KeyField, OrderException, OrderId, Resolution, ResolutionAction,
    ShipmentRef, StatusCode,
};
use crate::store::{Effects, ExceptionCursor, ExceptionFilter, Store};

fn exception(order_id: &str, seq: u32, instance: &str, hour: u32) -> OrderException {
    let exported = crate::testkit::sample_order(order_id);
    let mut requested = exported.clone();
    requested.customer.phone = "+393409999999".into();
    OrderException {
        order_id: OrderId::new(order_id),
        seq,
        instance: InstanceId::new(instance),
        shipment: ShipmentRef::new(order_id, format!("REF-{order_id}")),
        reason: ExceptionReason::TooLate,
        changed_fields: [KeyField::Phone].into(),
        provider_state: Some("Packed".into()),
        delivery_status: Some(status(StatusCode::Packed, "Packed", hour)),
        exported,
        requested,
        later_edits: Vec::new(),
        detected_at: t(hour),
        resolution: None,
        resolved_at: None,
    }
}

fn resolved(mut exception: OrderException, hour: u32) -> OrderException {
    exception.resolution = Some(Resolution::new(ResolutionAction::Manual, "op"));
    exception.resolved_at = Some(t(hour));
    exception
}

/// Writes `exception` with its order's record (inserted the first time, updated after).
async fn write(store: &dyn Store, exception: OrderException) {
    let id = exception.order_id.as_str().to_owned();
    let effects = Effects::none().with_exception(exception);
    match store.get(&OrderId::new(id.as_str())).await.expect("get") {
        None => {
            let record = sample_record(&id, "a", exported(&id));
            assert!(store.insert(record, effects).await.expect("insert"));
        }
        Some(record) => {
            store.update(record, effects).await.expect("update");
        }
    }
}

fn keys(list: &[OrderException]) -> Vec<(String, u32)> {
    list.iter()
        .map(|e| (e.order_id.to_string(), e.seq))
        .collect()
}

/// Every exception passing `filter`, one page of `limit` at a time.
async fn walk(store: &dyn Store, filter: &ExceptionFilter, limit: usize) -> Vec<OrderException> {
    let mut seen: Vec<OrderException> = Vec::new();
    for _ in 0..MAX_PAGES {
        let after = seen.last().map(ExceptionCursor::of);
        let page = store
            .list_exceptions(filter, after.as_ref(), limit)
            .await
            .expect("list_exceptions");
        assert!(
            page.len() <= limit,
            "store contract `exceptions`: a page holds at most `limit` exceptions"
        );
        if page.is_empty() {
            return seen;
        }
        seen.extend(page);
    }
    panic!(
        "store contract `exceptions`: the listing did not end after {MAX_PAGES} pages (is `after` ignored?)"
    );
}

/// Exceptions written with record changes are read back whole and listed by filter (open or
/// resolved, instance, detection time), in pages ordered by order id and number.
pub async fn keeps_exceptions(store: &dyn Store) {
    let written = [
        exception("FK-STORE-EX-1", 1, "a", 8),
        resolved(exception("FK-STORE-EX-2", 1, "a", 9), 10),
        exception("FK-STORE-EX-3", 1, "b", 10),
    ];
    for e in &written {
        write(store, e.clone()).await;
    }
    let all = walk(store, &ExceptionFilter::default(), 1).await;
    let ours: Vec<_> = all
        .into_iter()
        .filter(|e| e.order_id.as_str().starts_with("FK-STORE-EX-"))
        .collect();
    assert_eq!(
        ours, written,
        "store contract `exceptions`: exceptions read back whole, ordered by order id, each once across pages"
    );
    let open = walk(store, &ExceptionFilter::open(), 10).await;
    assert_eq!(
        keys(&open),
        [("FK-STORE-EX-1".into(), 1), ("FK-STORE-EX-3".into(), 1)],
        "store contract `exceptions`: the open filter lists open exceptions only"
    );
    let recent_of_a = ExceptionFilter::default()
        .with_instance("a")
        .detected_between(Some(t(9)), Some(t(11)));
    assert_eq!(
        keys(&walk(store, &recent_of_a, 10).await),
        [("FK-STORE-EX-2".into(), 1)],
        "store contract `exceptions`: filters by instance and detection time [since, until)"
    );
    assert_eq!(
        keys(&walk(store, &ExceptionFilter::resolved(), 10).await),
        [("FK-STORE-EX-2".into(), 1)],
        "store contract `exceptions`: the resolved filter lists resolved exceptions only"
    );
}

/// An order keeps every exception it had: a new number adds one, the same number replaces
/// it (its resolution), `exception` answers the latest.
pub async fn exception_history(store: &dyn Store) {
    let order = OrderId::new("FK-STORE-HIST");
    let first = exception("FK-STORE-HIST", 1, "a", 8);
    write(store, first.clone()).await;
    let first = resolved(first, 9);
    write(store, first.clone()).await;
    let second = exception("FK-STORE-HIST", 2, "a", 10);
    write(store, second.clone()).await;
    assert_eq!(
        store.exception(&order).await.expect("exception"),
        Some(second.clone()),
        "store contract `exception history`: `exception` answers the order's latest exception"
    );
    assert_eq!(
        store
            .exception_history(&order)
            .await
            .expect("exception_history"),
        [first.clone(), second.clone()],
        "store contract `exception history`: a second exception is added, not a replacement; the same number replaces"
    );
    let both = walk(store, &ExceptionFilter::default().with_instance("a"), 1).await;
    assert_eq!(
        keys(&both)
            .into_iter()
            .filter(|(id, _)| id == "FK-STORE-HIST")
            .collect::<Vec<_>>(),
        [("FK-STORE-HIST".into(), 1), ("FK-STORE-HIST".into(), 2)],
        "store contract `exception history`: the listing pages through every exception of an order"
    );
    let open = walk(store, &ExceptionFilter::open(), 10).await;
    assert!(
        keys(&open).contains(&("FK-STORE-HIST".into(), 2))
            && !keys(&open).contains(&("FK-STORE-HIST".into(), 1)),
        "store contract `exception history`: the open filter sees each exception's own state"
    );
    assert_eq!(
        store
            .exception(&OrderId::new("FK-STORE-HIST-NONE"))
            .await
            .expect("exception"),
        None
    );
}
