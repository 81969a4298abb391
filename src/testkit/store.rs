//! Conformance checks for [`Store`] implementations: run [`run_store_suite`] against your
//! database-backed store (on an empty database) to check it behaves as the orchestrator
//! expects.

use chrono::{TimeZone, Utc};

use super::sample_order;
use crate::error::{Error, ErrorKind, Failure};
use crate::model::{
    DeliveryStatus, ExceptionReason, InstanceId, KeyField, OrderException, OrderId, Resolution,
    ResolutionAction, ShipmentRef, StatusCode, Waybill,
};
use crate::orchestrator::{
    Automation, ExceptionFilter, ExportState, PendingUpdate, ShipmentRecord, Store,
};

/// A record for `order_id` at `instance` in `export` state, version 0.
pub fn sample_record(order_id: &str, instance: &str, export: ExportState) -> ShipmentRecord {
    let order = sample_order(order_id);
    let at = Utc
        .with_ymd_and_hms(2024, 5, 2, 10, 0, 0)
        .single()
        .unwrap_or_default();
    ShipmentRecord::new(order, instance, Waybill::new(), export, at)
}

fn exported(order_id: &str) -> ExportState {
    ExportState::Exported {
        shipment: ShipmentRef::new(order_id, format!("REF-{order_id}")),
        tracking_number: None,
        at: Utc::now(),
    }
}

/// `insert` stores a record only if none exists for its order.
pub async fn insert_is_if_absent(store: &dyn Store) {
    let record = sample_record("FK-STORE-1", "a", exported("FK-STORE-1"));
    assert!(
        store.insert(record.clone()).await.expect("insert"),
        "first insert must store"
    );
    let mut other = record.clone();
    other.instance = InstanceId::new("b");
    assert!(
        !store.insert(other).await.expect("insert"),
        "second insert must not store"
    );
    let stored = store
        .get(&record.order_id)
        .await
        .expect("get")
        .expect("record");
    assert_eq!(stored, record, "the first record stays");
    assert_eq!(
        store
            .get(&OrderId::new("FK-STORE-NONE"))
            .await
            .expect("get"),
        None
    );
}

/// `update` is a compare-and-swap on `version` and bumps it.
pub async fn update_is_compare_and_swap(store: &dyn Store) {
    let record = sample_record(
        "FK-STORE-2",
        "a",
        ExportState::Exporting {
            since: Utc::now(),
            owner: None,
        },
    );
    store.insert(record.clone()).await.expect("insert");
    let mut first = record.clone();
    first.export = exported("FK-STORE-2");
    let saved = store
        .update(first)
        .await
        .expect("update at the current version");
    assert_eq!(
        saved.version,
        record.version + 1,
        "update must bump the version"
    );
    // A writer still holding the old version must be refused, and change nothing.
    let mut stale = record.clone();
    stale.automation = Automation::Suspended;
    let err = store
        .update(stale)
        .await
        .expect_err("stale update must fail");
    assert!(
        matches!(err, Error::Conflict { .. }),
        "stale update: {err:?}"
    );
    let stored = store
        .get(&record.order_id)
        .await
        .expect("get")
        .expect("record");
    assert_eq!(stored, saved);
    let mut ghost = record.clone();
    ghost.order_id = OrderId::new("FK-STORE-GHOST");
    assert!(matches!(
        store.update(ghost).await,
        Err(Error::NotFound { .. })
    ));
}

/// `list_active` returns exported, non-final records of one instance, in pages.
pub async fn list_active_pages_per_instance(store: &dyn Store) {
    for i in 0..7 {
        let id = format!("FK-STORE-ACT-{i}");
        store
            .insert(sample_record(&id, "act", exported(&id)))
            .await
            .expect("insert");
    }
    let mut done = sample_record("FK-STORE-ACT-DONE", "act", exported("FK-STORE-ACT-DONE"));
    done.current_status = Some(std::sync::Arc::new(DeliveryStatus::new(
        StatusCode::Cancelled,
        "Cancelled",
        Utc::now(),
    )));
    store.insert(done).await.expect("insert");
    let failed = ExportState::Failed {
        retryable: true,
        failure: Failure::new(ErrorKind::Transport, "x", true),
        since: Utc::now(),
        attempts: 1,
    };
    store
        .insert(sample_record("FK-STORE-ACT-F", "act", failed))
        .await
        .expect("insert");
    let other = sample_record(
        "FK-STORE-ACT-OTHER",
        "other",
        exported("FK-STORE-ACT-OTHER"),
    );
    store.insert(other).await.expect("insert");

    let instance = InstanceId::new("act");
    let mut seen = Vec::new();
    let mut after: Option<OrderId> = None;
    loop {
        let page = store
            .list_active(&instance, after.as_ref(), 3)
            .await
            .expect("list");
        assert!(page.len() <= 3, "page larger than the limit");
        let Some(last) = page.last() else { break };
        after = Some(last.order_id.clone());
        seen.extend(page.into_iter().map(|r| r.order_id.to_string()));
    }
    let expected: Vec<String> = (0..7).map(|i| format!("FK-STORE-ACT-{i}")).collect();
    assert_eq!(
        seen, expected,
        "active records of the instance, each once, in id order"
    );
}

/// `list_failed` and `list_exporting` find the records in those states.
pub async fn list_failed_and_exporting(store: &dyn Store) {
    let failed = ExportState::Failed {
        retryable: false,
        failure: Failure::new(ErrorKind::Unauthenticated, "no", false),
        since: Utc::now(),
        attempts: 2,
    };
    store
        .insert(sample_record("FK-STORE-FAIL", "a", failed))
        .await
        .expect("insert");
    let intent = ExportState::Exporting {
        since: Utc::now(),
        owner: None,
    };
    store
        .insert(sample_record("FK-STORE-INTENT", "a", intent))
        .await
        .expect("insert");
    let failed: Vec<_> = store
        .list_failed(None, 1000)
        .await
        .expect("list")
        .into_iter()
        .map(|r| r.order_id)
        .collect();
    assert!(failed.contains(&OrderId::new("FK-STORE-FAIL")));
    assert!(!failed.contains(&OrderId::new("FK-STORE-INTENT")));
    let intents: Vec<_> = store
        .list_exporting(None, 1000)
        .await
        .expect("list")
        .into_iter()
        .map(|r| r.order_id)
        .collect();
    assert!(intents.contains(&OrderId::new("FK-STORE-INTENT")));
    assert!(!intents.contains(&OrderId::new("FK-STORE-FAIL")));
}

/// `list_pending_updates` finds the records with an edit waiting.
pub async fn list_pending_updates(store: &dyn Store) {
    let mut waiting = sample_record("FK-STORE-PEND", "a", exported("FK-STORE-PEND"));
    waiting.pending_update = Some(Box::new(PendingUpdate {
        order: crate::model::Order::clone(&waiting.order),
        waybill: Waybill::new(),
        changed_fields: vec![KeyField::Phone],
        since: Utc::now(),
        attempts: 1,
        last_failure: Failure::new(ErrorKind::Timeout, "timed out", true),
    }));
    store.insert(waiting).await.expect("insert");
    let plain = sample_record("FK-STORE-PLAIN", "a", exported("FK-STORE-PLAIN"));
    store.insert(plain).await.expect("insert");
    let ids: Vec<_> = store
        .list_pending_updates(None, 1000)
        .await
        .expect("list")
        .into_iter()
        .map(|r| r.order_id)
        .collect();
    assert!(ids.contains(&OrderId::new("FK-STORE-PEND")));
    assert!(!ids.contains(&OrderId::new("FK-STORE-PLAIN")));
}

/// Waybills are saved and read back per order.
pub async fn keeps_waybills(store: &dyn Store) {
    let id = OrderId::new("FK-STORE-WB");
    assert_eq!(store.waybill(&id).await.expect("waybill"), None);
    let waybill = Waybill::new().with("comment", "ring twice");
    store
        .save_waybill(&id, waybill.clone())
        .await
        .expect("save");
    assert_eq!(store.waybill(&id).await.expect("waybill"), Some(waybill));
}

/// Exceptions are stored per order and listed by filter, in pages.
pub async fn keeps_exceptions(store: &dyn Store) {
    let at = |h| {
        Utc.with_ymd_and_hms(2024, 5, 2, h, 0, 0)
            .single()
            .unwrap_or_default()
    };
    for (i, instance, hour, resolved) in
        [(1, "a", 8, false), (2, "a", 9, true), (3, "b", 10, false)]
    {
        let order_id = format!("FK-STORE-EX-{i}");
        let exported = sample_order(&order_id);
        let mut requested = exported.clone();
        requested.customer.phone = "+393409999999".into();
        let exception = OrderException {
            order_id: OrderId::new(order_id.clone()),
            instance: InstanceId::new(instance),
            shipment: ShipmentRef::new(order_id.as_str(), format!("REF-{order_id}")),
            reason: ExceptionReason::TooLate,
            changed_fields: [KeyField::Phone].into(),
            provider_state: Some("Packed".into()),
            delivery_status: Some(DeliveryStatus::new(StatusCode::Packed, "Packed", at(hour))),
            exported,
            requested,
            later_edits: Vec::new(),
            detected_at: at(hour),
            resolution: resolved.then(|| Resolution {
                action: ResolutionAction::Manual,
                by: "op".into(),
                note: None,
            }),
            resolved_at: resolved.then(|| at(hour + 1)),
        };
        store.put_exception(exception).await.expect("put");
    }
    let ids = |list: Vec<OrderException>| {
        list.into_iter()
            .map(|e| e.order_id.to_string())
            .collect::<Vec<_>>()
    };
    let open = store
        .list_exceptions(&ExceptionFilter::open(), None, 100)
        .await
        .expect("list");
    assert_eq!(ids(open), ["FK-STORE-EX-1", "FK-STORE-EX-3"]);
    let by_instance = ExceptionFilter {
        instance: Some(InstanceId::new("a")),
        since: Some(at(9)),
        ..ExceptionFilter::default()
    };
    assert_eq!(
        ids(store
            .list_exceptions(&by_instance, None, 100)
            .await
            .expect("list")),
        ["FK-STORE-EX-2"]
    );
    let first = store
        .list_exceptions(&ExceptionFilter::default(), None, 2)
        .await
        .expect("list");
    assert_eq!(first.len(), 2);
    let rest = store
        .list_exceptions(&ExceptionFilter::default(), Some(&first[1].order_id), 2)
        .await
        .expect("list");
    assert_eq!(ids(rest), ["FK-STORE-EX-3"]);
    let one = store
        .exception(&OrderId::new("FK-STORE-EX-2"))
        .await
        .expect("get")
        .expect("exception");
    assert!(!one.is_open());
}

/// Runs every store check (on an empty store).
pub async fn run_store_suite(store: &dyn Store) {
    insert_is_if_absent(store).await;
    update_is_compare_and_swap(store).await;
    list_active_pages_per_instance(store).await;
    list_failed_and_exporting(store).await;
    list_pending_updates(store).await;
    keeps_waybills(store).await;
    keeps_exceptions(store).await;
}
