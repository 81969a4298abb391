//! Fidelity (issue 16): pickup points that reach the tracking events, an idempotent cancel,
//! errors that keep their cause, per-shipment failures, SalesRender parity of the merge. All
//! through the public API, over the simulators where a provider is involved.

mod support;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use fulfillkit::error::Operation;
use fulfillkit::model::{
    Address, CommentRules, DeliveryStatus, ExceptionReason, Problem, ShipmentRef, StatusCode,
    TrackingUpdate,
};
use fulfillkit::orchestrator::{
    ChangeOutcome, CollectingSink, Condition, EventKind, ExportState, Instance, Orchestrator,
    RetryLimits, RoutingRule,
};
use fulfillkit::provider::mock::MockProvider;
use fulfillkit::provider::{CancelOutcome, FulfillmentProvider};
use fulfillkit::simulator::{SphereSimulator, WapiSimulator};
use fulfillkit::testkit::{TestClock, sample_order};
use fulfillkit::{Error, ErrorKind};

fn status_events(events: &CollectingSink) -> Vec<(Option<DeliveryStatus>, DeliveryStatus)> {
    events
        .take()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::DeliveryStatusChanged { from, to } => {
                Some((from.map(Arc::unwrap_or_clone), Arc::unwrap_or_clone(to)))
            }
            _ => None,
        })
        .collect()
}

fn one_instance(
    provider: Arc<dyn FulfillmentProvider>,
    events: Arc<CollectingSink>,
    clock: &TestClock,
) -> Orchestrator {
    Orchestrator::builder()
        .instance(Instance::new("only", "only", provider))
        .rule(RoutingRule::new("all", Condition::Always, "only"))
        .events(events)
        .clock(clock.clock())
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// 1. Pickup points
// ---------------------------------------------------------------------------------------------

/// An order for locker WAW01A of the Wapi simulator's directory, addressed as its directory
/// entry says.
fn to_the_locker(id: &str) -> fulfillkit::model::Order {
    let mut order = sample_order(id);
    order.customer.name = "Jan Nowak".into();
    order.customer.phone = "+48501234567".into();
    order.currency = "PLN".into();
    order.address = Address {
        country: "PL".into(),
        region: None,
        city: "Warszawa".into(),
        postcode: "00-001".into(),
        lines: vec!["ul. Prosta 1".into()],
        provider_address_id: Some("WAW01A".into()),
        pickup_point_id: Some("WAW01A".into()),
    };
    order
}

async fn track_pickup_order(directory: bool) -> Vec<(Option<DeliveryStatus>, DeliveryStatus)> {
    let sim = WapiSimulator::builder()
        .with_pickup_point_directory(directory)
        .start()
        .await
        .unwrap();
    let events = Arc::new(CollectingSink::new());
    let wapi = sim
        .provider_builder()
        .with_pickup_point_directory(directory);
    let clock = TestClock::at(Utc::now());
    let start = clock.now();
    let o = one_instance(Arc::new(wapi.build().unwrap()), events.clone(), &clock);
    let order = to_the_locker("SO-LOCKER");
    let _ = o.on_order_confirmed(&order).await.unwrap();
    events.take();
    let mut seen = Vec::new();
    // Lifecycle::wapi_pickup_point: AssignedToPartner, Dispatched, InTransit, InTransit
    // "Parcel available for pickup at …", Delivered.
    for day in 1..=5 {
        sim.tick();
        clock.set(start + chrono::Duration::days(day));
        o.sync_tracking().await.unwrap();
        seen.extend(status_events(&events));
    }
    seen
}

#[tokio::test]
async fn a_parcel_waiting_at_the_pickup_point_is_an_event_carrying_the_point() {
    let seen = track_pickup_order(true).await;
    let codes: Vec<_> = seen.iter().map(|(_, to)| to.code).collect();
    assert_eq!(
        codes,
        [
            StatusCode::Accepted,
            StatusCode::InTransit,
            StatusCode::InTransit,
            StatusCode::Arrived,
            StatusCode::Delivered
        ],
        "{seen:?}"
    );
    // From the moment it leaves the warehouse, every status names the point.
    for (_, to) in &seen[1..] {
        let point = to.pickup_point.as_deref().expect("the point");
        assert_eq!(point.id, "WAW01A");
        assert_eq!(point.postcode, "00-001");
    }
    let (from, arrived) = &seen[3];
    assert_eq!(from.as_ref().map(|s| s.code), Some(StatusCode::InTransit));
    let point = arrived.pickup_point.as_deref().unwrap();
    assert_eq!(point.name, "Paczkomat WAW01A", "from the directory");
    assert_eq!(point.opening_hours.note.as_deref(), Some("24/7"));
    assert!(point.address.contains("ul. Prosta 1"), "{point:?}");
}

#[tokio::test]
async fn without_a_directory_the_point_comes_from_the_order() {
    let seen = track_pickup_order(false).await;
    let arrived = seen
        .iter()
        .map(|(_, to)| to)
        .find(|to| to.code == StatusCode::Arrived)
        .expect("an Arrived event");
    let point = arrived.pickup_point.as_deref().unwrap();
    assert_eq!(
        (
            point.id.as_str(),
            point.address.as_str(),
            point.postcode.as_str()
        ),
        ("WAW01A", "ul. Prosta 1, Warszawa", "00-001")
    );
}

#[test]
fn comment_rules_are_serde_data_matched_without_case_or_accents() {
    let rules = fulfillkit::provider::wapi::default_comment_rules();
    assert_eq!(
        rules.code_for("Paczka GOTOWA do odbioru w punkcie"),
        Some(StatusCode::Arrived)
    );
    assert_eq!(
        rules.code_for("Przesyłka wydana do doręczenia"),
        Some(StatusCode::OnDelivery)
    );
    assert_eq!(rules.code_for("Partita dal magazzino"), None);
    let json = serde_json::to_string(&rules).unwrap();
    let back: CommentRules = serde_json::from_str(&json).unwrap();
    assert_eq!(back, rules);
    let custom: CommentRules =
        serde_json::from_str(r#"[{"contains": ["ritirabile presso"], "code": "arrived"}]"#)
            .unwrap();
    assert_eq!(
        custom.code_for("Ritirabile presso il punto"),
        Some(StatusCode::Arrived)
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Cancel
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_repeated_cancel_changes_nothing_and_keeps_the_providers_words() {
    let sim = SphereSimulator::start().await.unwrap();
    let events = Arc::new(CollectingSink::new());
    let sphere = sim
        .provider_builder()
        .with_http_config(support::sphere::fast_http())
        .build()
        .unwrap();
    let clock = TestClock::at(Utc::now());
    let o = one_instance(Arc::new(sphere), events.clone(), &clock);
    let order = sample_order("SO-CANCEL");
    let _ = o.on_order_confirmed(&order).await.unwrap();
    events.take();

    let first = o.cancel(&order.id).await.unwrap();
    assert_eq!(
        first,
        CancelOutcome::Cancelled {
            state: Some("void".into())
        }
    );
    let requests = sim.stats().total_requests();
    let second = o.cancel(&order.id).await.unwrap();
    assert!(
        matches!(second, CancelOutcome::AlreadyCancelled { .. }),
        "{second:?}"
    );
    assert_eq!(
        sim.stats().total_requests(),
        requests,
        "no call the second time"
    );

    let changes = status_events(&events);
    assert_eq!(changes.len(), 1, "one event per real change: {changes:?}");
    let (from, to) = &changes[0];
    assert_eq!(
        (to.code, to.original.as_str()),
        (StatusCode::Cancelled, "void")
    );
    assert_eq!(from.as_ref().map(|s| s.code), Some(StatusCode::Registered));
    let record = o.shipment(&order.id).await.unwrap().unwrap();
    assert_eq!(
        record.last_reported.as_deref(),
        Some(to),
        "last reported kept up"
    );
    // Tracking finds the same: no second event.
    clock.advance(chrono::Duration::days(1));
    o.sync_tracking().await.unwrap();
    assert!(status_events(&events).is_empty());
}

#[tokio::test]
async fn a_refused_wapi_cancel_says_what_happened() {
    let sim = WapiSimulator::start().await.unwrap();
    let provider = sim.provider_builder().build().unwrap();
    let order = sample_order("SO-1");
    let shipment = provider
        .create_order(&order, &Default::default())
        .await
        .unwrap()
        .reference;
    sim.tick(); // AssignedToPartner
    let outcome = provider.cancel_order(&shipment).await.unwrap();
    assert_eq!(
        outcome,
        CancelOutcome::TooLate {
            state: "AssignedToPartner".into()
        }
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Errors
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_server_error_keeps_its_cause_and_is_retried_until_the_limits() {
    let mut server = mockito::Server::new_async().await;
    server
        .mock("POST", "/api/outbounds")
        .with_status(503)
        .with_body(r#"{"Error":"warehouse system down"}"#)
        .create_async()
        .await;
    let mut http = support::wapi::fast_http();
    http.retry = http.retry.with_max_retries(0);
    let wapi = support::wapi::builder(&server)
        .with_http_config(http)
        .build()
        .unwrap();
    let events = Arc::new(CollectingSink::new());
    let clock = TestClock::new();
    let o = Orchestrator::builder()
        .instance(Instance::new("only", "only", Arc::new(wapi)))
        .rule(RoutingRule::new("all", Condition::Always, "only"))
        .events(events.clone())
        .clock(clock.clock())
        .retry_limits(RetryLimits::new(3, Duration::from_secs(3600)))
        .build()
        .unwrap();
    let order = sample_order("SO-503");
    let err = o.on_order_confirmed(&order).await.unwrap_err();
    assert!(err.is_retryable(), "a 503 may work later: {err:?}");

    let record = o.shipment(&order.id).await.unwrap().unwrap();
    let ExportState::Failed {
        retryable,
        failure,
        attempts,
        ..
    } = &record.export
    else {
        panic!("{:?}", record.export);
    };
    assert!(*retryable);
    assert_eq!(*attempts, 1);
    assert_eq!(failure.kind, ErrorKind::Provider);
    assert_eq!(failure.http_status, Some(503));
    assert_eq!(failure.endpoint.as_deref(), Some("POST /outbounds"));
    assert!(
        failure.message.contains("warehouse system down"),
        "{failure}"
    );

    // Two more attempts reach the limit: then it is an operator's, with an event that says so.
    for expected in [true, false] {
        clock.advance(chrono::Duration::minutes(5));
        let report = o.retry_failed_exports().await.unwrap();
        assert_eq!(report.attempted, 1);
        let record = o.shipment(&order.id).await.unwrap().unwrap();
        assert!(
            matches!(record.export, ExportState::Failed { retryable, .. } if retryable == expected),
            "{:?}",
            record.export
        );
    }
    let report = o.retry_failed_exports().await.unwrap();
    assert_eq!((report.attempted, report.skipped), (0, 1), "{report:?}");
    let last = events
        .take()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::ExportFailed { retryable, failure } => Some((retryable, failure)),
            _ => None,
        })
        .last()
        .unwrap();
    assert!(!last.0 && last.1.retryable, "given up on a retryable error");
}

#[tokio::test]
async fn a_permanent_refusal_is_not_retried_at_all() {
    let mut server = mockito::Server::new_async().await;
    let create = server
        .mock("POST", "/api/outbounds")
        .with_status(403)
        .with_body(r#"{"error":"account suspended"}"#)
        .expect(1)
        .create_async()
        .await;
    let o = one_instance(
        Arc::new(support::wapi::provider(&server)),
        Arc::new(CollectingSink::new()),
        &TestClock::new(),
    );
    let order = sample_order("SO-403");
    let err = o.on_order_confirmed(&order).await.unwrap_err();
    assert!(!err.is_retryable(), "{err:?}");
    let report = o.retry_failed_exports().await.unwrap();
    assert_eq!((report.attempted, report.skipped), (0, 1));
    create.assert_async().await;
    let record = o.shipment(&order.id).await.unwrap().unwrap();
    assert!(matches!(
        record.export,
        ExportState::Failed {
            retryable: false,
            ..
        }
    ));
}

#[tokio::test]
async fn a_pending_edit_the_provider_keeps_failing_becomes_an_exception() {
    let mock = Arc::new(MockProvider::new());
    let events = Arc::new(CollectingSink::new());
    let clock = TestClock::new();
    let o = Orchestrator::builder()
        .instance(Instance::new("only", "only", mock.clone()))
        .rule(RoutingRule::new("all", Condition::Always, "only"))
        .events(events.clone())
        .clock(clock.clock())
        .retry_limits(RetryLimits::new(10, Duration::from_secs(3600)))
        .build()
        .unwrap();
    let order = sample_order("SO-1");
    let _ = o.on_order_confirmed(&order).await.unwrap();
    let mut edited = order.clone();
    edited.customer.name = "Mario Bianchi".into();
    mock.fail_next(
        Operation::Update,
        Error::provider_status("mock", "update_order", 502, "bad gateway"),
        100,
    );
    assert!(matches!(
        o.on_order_changed(&edited).await.unwrap(),
        ChangeOutcome::Pending { .. }
    ));
    // Past the age limit, the next failure hands the edit to an operator.
    clock.advance(chrono::Duration::hours(2));
    let report = o.retry_pending_updates().await.unwrap();
    assert_eq!(report.exceptions, 1, "{report:?}");
    let page = o.exceptions(&Default::default(), None, 10).await.unwrap();
    let exception = &page.exceptions[0];
    assert_eq!(exception.reason, ExceptionReason::ProviderFailed);
    assert!(
        exception
            .provider_state
            .as_deref()
            .is_some_and(|s| s.contains("HTTP 502") && s.contains("bad gateway")),
        "{exception:?}"
    );
    assert!(!o.automation_allowed(&order.id).await.unwrap());
}

// ---------------------------------------------------------------------------------------------
// 4. One bad item fails one shipment
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn one_unreadable_wapi_status_fails_its_shipment_only() {
    let mut server = mockito::Server::new_async().await;
    server
        .mock("POST", "/api/tracking/getDetailedOrderStatus")
        .with_body(
            r#"[{"trackingNumber":"WH1","deliveryStatus":"InTransit","statusHistory":[{"statusDate":"2024-05-04T13:48:00","statusName":"InTransit"}]},
                {"trackingNumber":"WH2","deliveryStatus":"InTransit","statusHistory":[{"statusDate":"the fourth of May","statusName":"InTransit"}]}]"#,
        )
        .create_async()
        .await;
    let wapi = support::wapi::provider(&server);
    let refs = [
        ShipmentRef::new("SO-1", "WH1"),
        ShipmentRef::new("SO-2", "WH2"),
    ];
    let updates = wapi.track(&refs).await.unwrap();
    assert_eq!(updates.len(), 2);
    assert_eq!(updates[0].statuses()[0].code, StatusCode::InTransit);
    assert!(
        matches!(&updates[1], TrackingUpdate::Failed { shipment, failure }
            if shipment.provider_ref == "WH2" && failure.kind == ErrorKind::Protocol),
        "{:?}",
        updates[1]
    );
}

#[tokio::test]
async fn a_failed_shipment_is_reported_and_polled_again_while_the_others_move_on() {
    let mock = Arc::new(MockProvider::new());
    let events = Arc::new(CollectingSink::new());
    let clock = TestClock::at(Utc::now());
    let o = one_instance(mock.clone(), events.clone(), &clock);
    let (a, b) = (sample_order("SO-A"), sample_order("SO-B"));
    let _ = o.on_order_confirmed(&a).await.unwrap();
    let _ = o.on_order_confirmed(&b).await.unwrap();
    mock.advance(&a.id, StatusCode::InTransit).unwrap();
    mock.advance(&b.id, StatusCode::InTransit).unwrap();
    // The provider cannot read SO-B's answer this time: a webhook-style push of a failure.
    let b_ref = o
        .shipment(&b.id)
        .await
        .unwrap()
        .unwrap()
        .shipment()
        .cloned()
        .unwrap();
    let report = o
        .ingest_tracking(
            "only",
            vec![TrackingUpdate::failed(
                b_ref,
                &Error::protocol("unreadable statusDate"),
            )],
        )
        .await
        .unwrap();
    assert_eq!(report.failed, 1);
    assert_eq!(report.errors[0].order_id.as_ref(), Some(&b.id));
    assert!(report.errors[0].failure.message.contains("statusDate"));
    // Both still move on the next poll.
    clock.advance(chrono::Duration::hours(3));
    let report = o.sync_tracking().await.unwrap();
    assert_eq!((report.polled, report.changed), (2, 2));
}

// ---------------------------------------------------------------------------------------------
// 5. SalesRender parity
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_second_failed_attempt_on_another_day_is_news() {
    let mock = Arc::new(MockProvider::new());
    let events = Arc::new(CollectingSink::new());
    let clock = TestClock::at(Utc::now());
    let o = one_instance(mock.clone(), events.clone(), &clock);
    let order = sample_order("SO-1");
    let _ = o.on_order_confirmed(&order).await.unwrap();
    let day = |d| Utc::now() + chrono::Duration::days(d);
    for d in [1, 2] {
        mock.push_status(
            &order.id,
            DeliveryStatus::new(StatusCode::Pending, "Destinatario assente", day(d))
                .with_problem(Problem::RecipientAbsent),
        )
        .unwrap();
        clock.set(day(d) + chrono::Duration::hours(1));
        o.sync_tracking().await.unwrap();
    }
    let attempts: Vec<_> = status_events(&events)
        .into_iter()
        .filter(|(_, to)| to.code == StatusCode::Pending)
        .collect();
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(attempts[1].0.as_ref().map(|s| s.at), Some(attempts[0].1.at));
}

#[test]
fn status_texts_lose_control_characters_at_both_ends_as_php_trim_does() {
    let at = Utc::now();
    for raw in ["\0Delivered", "Delivered\u{b}", " \t\0Delivered\r\n\0"] {
        assert_eq!(
            DeliveryStatus::new(StatusCode::Delivered, raw, at).original,
            "Delivered",
            "{raw:?}"
        );
    }
    assert_eq!(
        DeliveryStatus::new(StatusCode::Delivered, "\0a", at),
        DeliveryStatus::new(StatusCode::Delivered, "a", at)
    );
}
