//! Races (issue 10, part 3): many confirmations of one order, and edits, polls and pushes on
//! one shipment at the same time, checked after the fact against what was done.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};

use fulfillkit::error::Operation;
use fulfillkit::model::*;
use fulfillkit::orchestrator::*;
use fulfillkit::provider::mock::MockProvider;
use fulfillkit::testkit::sample_order;

fn orchestrator(
    mock: Arc<MockProvider>,
    store: Arc<MemoryStore>,
    events: Arc<CollectingSink>,
) -> Orchestrator {
    Orchestrator::builder()
        .instance(Instance::new("only", "only", mock))
        .rule(RoutingRule::new("all", Condition::Always, "only"))
        .store(store)
        .events(events)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_confirms_create_once() {
    let mock = Arc::new(MockProvider::new().with_latency(Duration::from_millis(10)));
    let events = Arc::new(CollectingSink::new());
    let o = Arc::new(orchestrator(
        mock.clone(),
        Arc::new(MemoryStore::new()),
        events.clone(),
    ));
    let order = sample_order("SO-100");
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (o, order) = (o.clone(), order.clone());
            tokio::spawn(async move { o.on_order_confirmed(&order).await })
        })
        .collect();
    for task in tasks {
        let outcome = task.await.unwrap().unwrap();
        assert!(
            matches!(
                outcome,
                ExportOutcome::Exported { .. } | ExportOutcome::AlreadyExported { .. }
            ),
            "{outcome:?}"
        );
    }
    assert_eq!(mock.calls_of(Operation::Create).len(), 1);
    assert_eq!(mock.created_count(), 1);
    let exported = events
        .events()
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Exported { .. }))
        .count();
    assert_eq!(exported, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_polls_and_pushes_on_one_shipment_lose_nothing() {
    let mock = Arc::new(MockProvider::new().with_latency(Duration::from_millis(3)));
    let store = Arc::new(MemoryStore::new());
    let events = Arc::new(CollectingSink::new());
    // Two orchestrators on one store: replicas must behave as one.
    let a = Arc::new(orchestrator(mock.clone(), store.clone(), events.clone()));
    let b = Arc::new(orchestrator(mock.clone(), store.clone(), events.clone()));
    let order = sample_order("SO-RACE");
    let _ = a.on_order_confirmed(&order).await.unwrap();
    let reference = store
        .get(&order.id)
        .await
        .unwrap()
        .unwrap()
        .shipment()
        .unwrap()
        .clone();
    let t0 = Utc.with_ymd_and_hms(2024, 5, 2, 8, 0, 0).unwrap();

    let mut pushed = Vec::new();
    let mut edits = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..30u32 {
        let o = if i % 2 == 0 { a.clone() } else { b.clone() };
        // An edit: each one a new phone number.
        let mut edited = order.clone();
        edited.customer.phone = format!("+3934012{:05}", i);
        edits.push(edited.clone());
        // Edits go through one replica: across replicas an edit is not serialized (see the
        // README's Reliability section); polls and pushes go through both.
        let editor = a.clone();
        tasks.push(tokio::spawn(async move {
            editor.on_order_changed(&edited).await.map(drop)
        }));
        // A webhook push of a status only the push knows.
        let status = DeliveryStatus::new(
            StatusCode::InTransit,
            format!("hub {i:02}"),
            t0 + chrono::Duration::minutes(i.into()),
        );
        pushed.push(status.clone());
        let update = TrackingUpdate::Statuses {
            shipment: reference.clone(),
            statuses: vec![status],
        };
        let pusher = o.clone();
        tasks.push(tokio::spawn(async move {
            pusher.ingest_tracking("only", vec![update]).await.map(drop)
        }));
        // A poll.
        let poller = o.clone();
        tasks.push(tokio::spawn(async move {
            poller.sync_tracking().await.map(drop)
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }

    let record = store.get(&order.id).await.unwrap().unwrap();
    // Every pushed status and the provider's own are in the history.
    for status in &pushed {
        assert!(record.history.contains(status), "lost {}", status.original);
    }
    assert!(
        record
            .history
            .iter()
            .any(|s| s.code == StatusCode::Registered),
        "lost the polled status"
    );
    assert_eq!(record.current_status.as_ref().unwrap().original, "hub 29");
    // The edits: the provider holds one of the edited versions, and the record's fingerprints
    // are exactly those of what the provider holds (no edit half-applied or overwritten by a
    // tracking write).
    let (at_provider, _) = mock.stored_order(&order.id).unwrap();
    assert!(
        edits
            .iter()
            .any(|e| e.customer.phone == at_provider.customer.phone)
    );
    assert_eq!(record.fingerprints, Fingerprints::of(&at_provider));
    assert_eq!(record.order.customer.phone, at_provider.customer.phone);
    assert_eq!(record.pending_update, None);
    // One status event per real change: never two events for the same current status in a row.
    let changes: Vec<DeliveryStatus> = events
        .events()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::DeliveryStatusChanged { to, .. } => Some(Arc::unwrap_or_clone(to)),
            _ => None,
        })
        .collect();
    for pair in changes.windows(2) {
        assert!(
            is_reportable_change(Some(&pair[0]), &pair[1]),
            "duplicate event for {}",
            pair[1].original
        );
    }
}
