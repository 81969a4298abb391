//! Several orchestrators on one store, as replicas of a host share one database: tracking
//! work is split by claims (a crashed replica's claims expire), edits of one order are
//! serialized by the order's edit lease, and an event written before a crash reaches the
//! sink after the restart — once per id.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use fulfillkit::Error;
use fulfillkit::model::{OrderId, StatusCode};
use fulfillkit::orchestrator::{
    CollectingSink, Condition, Event, EventKind, EventSink, Instance, Orchestrator, RoutingRule,
};
use fulfillkit::provider::mock::MockProvider;
use fulfillkit::store::{DueQuery, Lease, MemoryStore, Store};
use fulfillkit::testkit::{TestClock, sample_order};

fn replica(
    store: &Arc<MemoryStore>,
    mock: &Arc<MockProvider>,
    clock: &TestClock,
    sink: Arc<dyn EventSink>,
    owner: &str,
) -> Orchestrator {
    Orchestrator::builder()
        .instance(Instance::new("mock", "Mock", mock.clone()))
        .rule(RoutingRule::new("all", Condition::Always, "mock"))
        .store(store.clone())
        .events(sink)
        .clock(clock.clock())
        .owner(owner)
        .edit_lease(Duration::from_secs(300), Duration::from_millis(50))
        .build()
        .expect("orchestrator")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_split_tracking_and_never_poll_one_shipment_twice_in_a_round() {
    let store = Arc::new(MemoryStore::new());
    let clock = TestClock::at(Utc::now());
    // Latency keeps both replicas' requests in flight at the same time.
    let mock = Arc::new(
        MockProvider::new()
            .with_clock(clock.clock())
            .with_operation_latency(
                fulfillkit::error::Operation::Track,
                Duration::from_millis(5),
            ),
    );
    let sink = Arc::new(CollectingSink::new());
    let a = replica(&store, &mock, &clock, sink.clone(), "replica-a");
    let b = replica(&store, &mock, &clock, sink.clone(), "replica-b");
    for i in 0..600 {
        let order = sample_order(&format!("SO-{i:04}"));
        assert!(a.on_order_confirmed(&order).await.unwrap().is_exported());
    }
    for round in 0..3 {
        clock.advance(chrono::Duration::hours(3));
        // A share of the shipments moves each round.
        for i in (round..600).step_by(7) {
            mock.advance(&OrderId::new(format!("SO-{i:04}")), StatusCode::InTransit)
                .ok();
        }
        let before = mock.calls_of(fulfillkit::error::Operation::Track).len();
        let (ra, rb) = tokio::join!(a.sync_tracking(), b.sync_tracking());
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        let calls = mock.calls_of(fulfillkit::error::Operation::Track);
        let mut polled: HashMap<OrderId, usize> = HashMap::new();
        for call in &calls[before..] {
            for id in &call.order_ids {
                *polled.entry(id.clone()).or_default() += 1;
            }
        }
        assert_eq!(
            polled.len(),
            600,
            "round {round}: every due shipment is polled"
        );
        assert!(
            polled.values().all(|&n| n == 1),
            "round {round}: no shipment is polled by both replicas"
        );
        assert_eq!(ra.polled + rb.polled, 600, "round {round}");
        assert!(
            ra.polled > 0 && rb.polled > 0,
            "round {round}: both replicas did work ({} / {})",
            ra.polled,
            rb.polled
        );
    }
    // One event per real change, whichever replica saw it.
    let changes = sink
        .events()
        .into_iter()
        .filter(|e| matches!(e.kind, EventKind::DeliveryStatusChanged { .. }))
        .count();
    let moved: HashSet<usize> = (0..3).flat_map(|r| (r..600).step_by(7)).collect();
    assert_eq!(changes, moved.len());
}

#[tokio::test]
async fn a_crashed_replicas_claims_are_polled_after_their_lease_expires() {
    let store = Arc::new(MemoryStore::new());
    let clock = TestClock::at(Utc::now());
    let mock = Arc::new(MockProvider::new().with_clock(clock.clock()));
    let b = replica(
        &store,
        &mock,
        &clock,
        Arc::new(CollectingSink::new()),
        "replica-b",
    );
    for i in 0..10 {
        let outcome = b
            .on_order_confirmed(&sample_order(&format!("SO-{i}")))
            .await
            .unwrap();
        assert!(outcome.is_exported());
    }
    clock.advance(chrono::Duration::hours(2));
    // Replica A claims four shipments for five minutes, then dies before polling them.
    let lease = Lease::new("replica-a", clock.now() + chrono::Duration::minutes(5));
    let claimed = store
        .claim_due(&DueQuery::new("mock", clock.now(), lease, 4))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 4);
    let report = b.sync_tracking().await.unwrap();
    assert_eq!(
        report.polled, 6,
        "claimed shipments are left to their claimant"
    );
    clock.advance(chrono::Duration::minutes(5));
    let report = b.sync_tracking().await.unwrap();
    assert_eq!(
        report.polled, 4,
        "after the lease expired, the dead replica's shipments are polled"
    );
}

#[tokio::test]
async fn an_edit_waits_for_another_replicas_lease_and_reports_busy() {
    let store = Arc::new(MemoryStore::new());
    let clock = TestClock::at(Utc::now());
    let mock = Arc::new(MockProvider::new().with_clock(clock.clock()));
    let b = replica(
        &store,
        &mock,
        &clock,
        Arc::new(CollectingSink::new()),
        "replica-b",
    );
    let order = sample_order("SO-1");
    assert!(b.on_order_confirmed(&order).await.unwrap().is_exported());
    // Replica A is editing the order (it holds the lease for five minutes).
    let lease = Lease::new("replica-a#7", clock.now() + chrono::Duration::minutes(5));
    assert!(
        store
            .acquire_order_lease(&order.id, &lease, clock.now())
            .await
            .unwrap()
    );
    let mut edited = order.clone();
    edited.customer.phone = "+393409999999".into();
    let busy = b.on_order_changed(&edited).await;
    assert!(matches!(busy, Err(Error::Busy { .. })), "{busy:?}");
    assert!(busy.as_ref().is_err_and(Error::is_retryable));
    assert!(matches!(b.cancel("SO-1").await, Err(Error::Busy { .. })));
    assert_eq!(
        mock.stored_order(&order.id).map(|(o, _)| o.customer.phone),
        Some(order.customer.phone.clone()),
        "nothing reached the provider"
    );
    // A's lease runs out (it died): the edit goes through.
    clock.advance(chrono::Duration::minutes(5));
    let outcome = b.on_order_changed(&edited).await.unwrap();
    assert!(outcome.is_at_provider(), "{outcome:?}");
    // The lease was released after the edit: A can take it at once.
    assert!(
        store
            .acquire_order_lease(&order.id, &lease, clock.now())
            .await
            .unwrap()
    );
}

/// A sink whose delivery never completes: the process "dies" while handing the event over.
struct HangingSink;

#[async_trait]
impl EventSink for HangingSink {
    async fn emit(&self, _event: Event) {
        std::future::pending::<()>().await;
    }
}

#[tokio::test]
async fn an_event_written_before_a_crash_is_delivered_after_the_restart_once() {
    let store = Arc::new(MemoryStore::new());
    let clock = TestClock::at(Utc::now());
    let mock = Arc::new(MockProvider::new().with_clock(clock.clock()));
    let before_crash = replica(&store, &mock, &clock, Arc::new(HangingSink), "run-1");
    let order = sample_order("SO-1");
    // The export is written (with its event), then the process dies handing it to the sink.
    let export = tokio::time::timeout(
        Duration::from_millis(200),
        before_crash.on_order_confirmed(&order),
    )
    .await;
    assert!(export.is_err(), "the sink never returns");
    drop(before_crash);
    assert_eq!(store.pending_event_count(), 1);
    assert!(mock.created_count() == 1);

    let sink = Arc::new(CollectingSink::new());
    let restarted = replica(&store, &mock, &clock, sink.clone(), "run-2");
    // Younger than the outbox grace: maybe still on its way from a live writer.
    assert_eq!(restarted.deliver_pending_events().await.unwrap(), 0);
    clock.advance(chrono::Duration::minutes(1));
    let report = restarted.reconcile(Duration::ZERO).await.unwrap();
    assert_eq!(report.events_delivered, 1);
    let events = sink.take();
    assert_eq!(events.len(), 1);
    assert!(matches!(events[0].kind, EventKind::Exported { .. }));
    assert_eq!(events[0].order_id.as_ref(), Some(&order.id));
    // Delivered means delivered: running it again sends nothing.
    assert_eq!(restarted.deliver_pending_events().await.unwrap(), 0);
    assert!(sink.take().is_empty());
    assert_eq!(store.pending_event_count(), 0);
    // The record says exported: nothing was lost with the crash.
    assert!(
        restarted
            .shipment("SO-1")
            .await
            .unwrap()
            .unwrap()
            .shipment()
            .is_some()
    );
}

#[tokio::test]
async fn every_event_carries_its_own_stable_id() {
    let clock = TestClock::at(Utc::now());
    let mock = Arc::new(MockProvider::new().with_clock(clock.clock()));
    let store = Arc::new(MemoryStore::new());
    let sink = Arc::new(CollectingSink::new());
    let orchestrator = replica(&store, &mock, &clock, sink.clone(), "only");
    for i in 0..20 {
        let order = sample_order(&format!("SO-{i}"));
        assert!(
            orchestrator
                .on_order_confirmed(&order)
                .await
                .unwrap()
                .is_exported()
        );
        mock.advance(&order.id, StatusCode::InTransit).unwrap();
    }
    clock.advance(chrono::Duration::hours(2));
    orchestrator.sync_tracking().await.unwrap();
    let events = sink.events();
    assert_eq!(events.len(), 40);
    let ids: HashSet<_> = events.iter().map(|e| e.id.clone()).collect();
    assert_eq!(ids.len(), events.len(), "ids are unique");
    assert_eq!(
        store.pending_event_count(),
        0,
        "every delivered event is marked"
    );
    // The id survives serialization, so a host can store it to deduplicate.
    let text = serde_json::to_string(&events[0]).unwrap();
    let back: Event = serde_json::from_str(&text).unwrap();
    assert_eq!(back.id, events[0].id);
}
