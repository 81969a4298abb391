//! `MockProvider` as a host's test suite uses it: planned failures (before and after
//! applying, per order, per operation), knobs changed while a test runs, the call record with
//! payloads, calls cancelled during latency, webhook-style pushes, and one clock shared with
//! the orchestrator.

use std::sync::Arc;
use std::time::Duration;

use fulfillkit::Error;
use fulfillkit::error::Operation;
use fulfillkit::model::{EventKind, StatusCode, TrackingUpdate, Waybill};
use fulfillkit::orchestrator::{
    ChangeOutcome, CollectingSink, Condition, ExportOutcome, Instance, MemoryStore, Orchestrator,
    RoutingRule,
};
use fulfillkit::provider::mock::{CallPayload, Fault, MockProvider};
use fulfillkit::provider::{FulfillmentProvider, UpdateOutcome};
use fulfillkit::testkit::{TestClock, sample_order};

fn timeout() -> Error {
    Error::Timeout {
        what: "mock".into(),
    }
}

#[tokio::test]
async fn a_failure_after_applying_keeps_the_change_and_loses_the_answer() {
    let mock = MockProvider::new();
    let order = sample_order("SO-1");
    let shipment = mock.create_order(&order, &Waybill::new()).await.unwrap();
    let mut edited = order.clone();
    edited.customer.name = "Anna Bianchi".into();
    mock.inject(Fault::new(Operation::Update, timeout()).after_applying());
    let err = mock
        .update_order(&shipment.reference, &edited, &Waybill::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }));
    // The provider kept the edit although the caller heard a timeout...
    assert_eq!(mock.stored_order(&order.id).unwrap().0, edited);
    // ...so the caller's retry finds nothing left to change.
    let retry = mock
        .update_order(&shipment.reference, &edited, &Waybill::new())
        .await
        .unwrap();
    assert_eq!(retry, UpdateOutcome::NoChange);
    let failed: Vec<bool> = mock
        .calls_of(Operation::Update)
        .iter()
        .map(|c| c.failed)
        .collect();
    assert_eq!(failed, [true, false]);
}

#[tokio::test]
async fn failures_for_one_order_leave_the_others_alone() {
    let mock = MockProvider::new();
    mock.inject(
        Fault::new(Operation::Create, timeout())
            .for_order("SO-2")
            .times(2),
    );
    for id in ["SO-1", "SO-2", "SO-3", "SO-2", "SO-2"] {
        let result = mock.create_order(&sample_order(id), &Waybill::new()).await;
        let should_fail = id == "SO-2" && mock.calls().len() <= 4;
        assert_eq!(result.is_err(), should_fail, "{id}");
    }
    assert_eq!(mock.created_count(), 3);
}

#[tokio::test]
async fn a_tracking_failure_for_one_shipment_is_reported_for_it_alone() {
    let mock = MockProvider::new();
    let a = mock
        .create_order(&sample_order("SO-A"), &Waybill::new())
        .await
        .unwrap();
    let b = mock
        .create_order(&sample_order("SO-B"), &Waybill::new())
        .await
        .unwrap();
    mock.inject(Fault::new(Operation::Track, timeout()).for_order("SO-A"));
    let refs = [a.reference.clone(), b.reference.clone()];
    let updates = mock.track(&refs).await.unwrap();
    assert!(
        matches!(&updates[0], TrackingUpdate::Failed { shipment, .. } if *shipment == a.reference)
    );
    assert!(!updates[1].statuses().is_empty());
    // Used up: the next poll answers both.
    let updates = mock.track(&refs).await.unwrap();
    assert!(updates.iter().all(|u| !u.statuses().is_empty()));
}

#[tokio::test]
async fn failures_per_operation_are_used_in_order_and_can_be_cleared() {
    let mock = MockProvider::new();
    let order = sample_order("SO-1");
    mock.fail_next(Operation::Create, timeout(), 1);
    mock.inject(Fault::new(Operation::Create, Error::protocol("garbled")));
    mock.inject(Fault::new(Operation::Stock, timeout()).times(5));
    let first = mock
        .create_order(&order, &Waybill::new())
        .await
        .unwrap_err();
    let second = mock
        .create_order(&order, &Waybill::new())
        .await
        .unwrap_err();
    assert!(matches!(first, Error::Timeout { .. }));
    assert!(matches!(second, Error::Protocol { .. }));
    mock.create_order(&order, &Waybill::new()).await.unwrap();
    assert!(mock.stock(&[]).await.is_err());
    mock.clear_faults();
    assert!(mock.stock(&[]).await.is_ok());
}

#[tokio::test]
async fn knobs_change_while_the_test_runs() {
    let mock = Arc::new(MockProvider::new());
    let order = sample_order("SO-1");
    let shipment = mock.create_order(&order, &Waybill::new()).await.unwrap();
    mock.advance(&order.id, StatusCode::Packed).unwrap();
    // The host's 3PL allows edits until shipped: move the lock stage on.
    mock.set_lock_stage(StatusCode::InTransit);
    let mut edited = order.clone();
    edited.customer.name = "Anna Bianchi".into();
    let outcome = mock
        .update_order(&shipment.reference, &edited, &Waybill::new())
        .await
        .unwrap();
    assert_eq!(outcome, UpdateOutcome::Applied);
    // A script set mid-test starts on the next poll.
    mock.set_script(vec![StatusCode::InTransit, StatusCode::Delivered]);
    let refs = [shipment.reference.clone()];
    let codes = |u: &[TrackingUpdate]| u[0].statuses().last().map(|s| s.code);
    assert_eq!(
        codes(&mock.track(&refs).await.unwrap()),
        Some(StatusCode::InTransit)
    );
    assert_eq!(
        codes(&mock.track(&refs).await.unwrap()),
        Some(StatusCode::Delivered)
    );
}

#[tokio::test]
async fn the_call_record_keeps_payloads_and_can_be_reset() {
    let mock = MockProvider::new();
    let order = sample_order("SO-1");
    let waybill = Waybill::new();
    let shipment = mock.create_order(&order, &waybill).await.unwrap();
    mock.track(std::slice::from_ref(&shipment.reference))
        .await
        .unwrap();
    let calls = mock.take_calls();
    assert_eq!(calls.len(), 2);
    match &calls[0].payload {
        CallPayload::Create {
            order: sent,
            waybill: w,
        } => {
            assert_eq!(**sent, order);
            assert_eq!(*w, waybill);
        }
        other => panic!("expected a create, got {other:?}"),
    }
    assert_eq!(calls[0].payload.order(), Some(&order));
    assert!(
        matches!(&calls[1].payload, CallPayload::Track { shipments } if shipments == std::slice::from_ref(&shipment.reference))
    );
    // The next phase starts from a clean record.
    assert!(mock.calls().is_empty());
    mock.stock(&["A".into()]).await.unwrap();
    mock.reset_calls();
    assert!(mock.calls().is_empty());
    assert_eq!(mock.largest_batch(Operation::Stock), 0);
}

#[tokio::test(start_paused = true)]
async fn a_call_cancelled_during_latency_is_recorded_and_changes_nothing() {
    let mock = MockProvider::new();
    mock.set_operation_latency(Operation::Create, Duration::from_secs(30));
    let order = sample_order("SO-1");
    let gave_up = tokio::time::timeout(
        Duration::from_secs(5),
        mock.create_order(&order, &Waybill::new()),
    )
    .await;
    assert!(gave_up.is_err(), "the caller's timeout comes first");
    let calls = mock.calls();
    assert_eq!(calls.len(), 1);
    assert!(calls[0].cancelled && !calls[0].failed);
    assert_eq!(mock.created_count(), 0);
    // Latency changed at runtime: the retry answers at once.
    mock.set_latency(Duration::ZERO);
    mock.create_order(&order, &Waybill::new()).await.unwrap();
    let calls = mock.calls();
    assert!(!calls[1].cancelled);
    assert_eq!(mock.created_count(), 1);
}

/// A host test as the issue describes it: one clock for the orchestrator and the mock, a
/// delivery arriving by webhook, not by polling.
#[tokio::test]
async fn a_pushed_update_goes_through_the_orchestrator_on_one_clock() {
    let clock = TestClock::new();
    let mock = Arc::new(MockProvider::new().with_clock(clock.clock()));
    let events = Arc::new(CollectingSink::new());
    let orchestrator = Orchestrator::builder()
        .instance(Instance::new("it", "Italy", mock.clone()))
        .rule(RoutingRule::new("all", Condition::Always, "it"))
        .store(Arc::new(MemoryStore::new()))
        .events(events.clone())
        .clock(clock.clock())
        .build()
        .unwrap();
    let order = sample_order("SO-1");
    let ExportOutcome::Exported { .. } = orchestrator.on_order_confirmed(&order).await.unwrap()
    else {
        panic!("not exported");
    };
    clock.advance(chrono::Duration::hours(26));
    mock.advance(&order.id, StatusCode::Delivered).unwrap();
    let pushed = mock.push_update(&order.id).unwrap();
    orchestrator
        .ingest_tracking("it", vec![pushed])
        .await
        .unwrap();
    let delivered = events
        .events()
        .into_iter()
        .find_map(|e| match e.kind {
            EventKind::DeliveryStatusChanged { to, .. } if to.code == StatusCode::Delivered => {
                Some((to.at, e.occurred_at))
            }
            _ => None,
        })
        .expect("a DeliveryStatusChanged event for the pushed delivery");
    // The status and the event carry the test's time, not the machine's.
    assert_eq!(delivered, (clock.now(), clock.now()));
    // A push is not a call: the record shows only the create.
    assert_eq!(mock.calls().len(), 1);
    // The edit afterwards is refused: the delivery moved the order past the lock.
    let mut edited = order.clone();
    edited.customer.name = "Anna Bianchi".into();
    assert!(matches!(
        orchestrator.on_order_changed(&edited).await.unwrap(),
        ChangeOutcome::Exception { .. }
    ));
}
