//! Security and crash safety (issue 15): credentials never leave for another origin, no
//! poison-pill orders, no duplicate or misattached shipments, a way out for every flagged
//! order. Every test here goes through the public API, as a host would.

mod support;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;

use fulfillkit::Error;
use fulfillkit::model::{
    DeliveryStatus, Order, OrderId, Resolution, ResolutionAction, Shipment, ShipmentRef,
    StatusCode, TrackingUpdate, Waybill,
};
use fulfillkit::orchestrator::{
    ChangeOutcome, CollectingSink, Condition, EventKind, ExportOutcome, ExportState, Instance,
    Orchestrator, PollPolicy, RoutingRule,
};
use fulfillkit::provider::mock::MockProvider;
use fulfillkit::provider::sphere::{AuthMode, SphereBuilder};
use fulfillkit::provider::wapi::WapiBuilder;
use fulfillkit::provider::{Capabilities, FulfillmentProvider};
use fulfillkit::simulator::{Faults, SphereSimulator, WapiSimulator};
use fulfillkit::testkit::{TestClock, sample_order};

fn orchestrator(provider: Arc<dyn FulfillmentProvider>) -> Orchestrator {
    Orchestrator::builder()
        .instance(Instance::new("only", "only", provider))
        .rule(RoutingRule::new("all", Condition::Always, "only"))
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// 1. Redirects
// ---------------------------------------------------------------------------------------------

/// A server that answers every request with a redirect to `to`, and one that must never be
/// reached.
async fn redirecting(status: usize, to: &str) -> mockito::ServerGuard {
    let mut server = mockito::Server::new_async().await;
    for method in ["GET", "POST", "DELETE"] {
        server
            .mock(method, mockito::Matcher::Any)
            .with_status(status)
            .with_header("location", &format!("{to}/steal"))
            .create_async()
            .await;
    }
    server
}

#[tokio::test]
async fn no_provider_follows_a_redirect_to_another_origin() {
    let mut elsewhere = mockito::Server::new_async().await;
    let mut stolen = Vec::new();
    for method in ["GET", "POST", "DELETE"] {
        stolen.push(
            elsewhere
                .mock(method, mockito::Matcher::Any)
                .expect(0)
                .create_async()
                .await,
        );
    }
    for status in [302, 307, 308] {
        let server = redirecting(status, &elsewhere.url()).await;
        // Sphere with the key in the query string (it would travel in `Referer`) and in a header.
        for mode in [AuthMode::Query, AuthMode::Header] {
            let sphere = support::sphere::builder(&server)
                .with_auth_mode(mode)
                .build()
                .unwrap();
            let shipment = ShipmentRef::new("SO-1", "88213");
            let err = sphere.cancel_order(&shipment).await.unwrap_err();
            assert!(
                matches!(&err, Error::Protocol { message } if message.contains(&elsewhere.url())),
                "{mode:?} {status}: {err:?}"
            );
            assert!(!format!("{err} {err:?}").contains(support::sphere::KEY));
        }
        let wapi = support::wapi::provider(&server);
        let (order, waybill) = support::wapi::cod_italy();
        let err = wapi.create_order(&order, &waybill).await.unwrap_err();
        assert!(
            matches!(&err, Error::Protocol { message } if message.contains("redirect")),
            "{status}: {err:?}"
        );
    }
    for mock in stolen {
        mock.assert_async().await;
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Re-export numbering
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_reexport_never_takes_over_a_host_order_of_the_old_numbering() {
    // A provider that cannot take edits but can cancel: every key-field edit is an exception.
    let mock = Arc::new(
        MockProvider::new().with_capabilities(Capabilities::all(50, 50).with_update(false)),
    );
    let o = orchestrator(mock.clone());
    // The host has its own replacement order named as re-exports used to be numbered.
    let theirs = sample_order("SO-8-R1");
    let ours = sample_order("SO-8");
    let _ = o.on_order_confirmed(&theirs).await.unwrap();
    let _ = o.on_order_confirmed(&ours).await.unwrap();
    let mut edited = ours.clone();
    edited.customer.name = "Another Name".into();
    let ChangeOutcome::Exception { .. } = o.on_order_changed(&edited).await.unwrap() else {
        panic!("expected an exception");
    };
    o.resolve_exception(
        &ours.id,
        Resolution::new(ResolutionAction::Reexport, "operator"),
    )
    .await
    .unwrap();

    let ours_now = o.shipment(&ours.id).await.unwrap().unwrap();
    let theirs_now = o.shipment(&theirs.id).await.unwrap().unwrap();
    let (ours_ref, theirs_ref) = (
        ours_now.shipment().unwrap().clone(),
        theirs_now.shipment().unwrap().clone(),
    );
    assert_ne!(ours_ref.provider_ref, theirs_ref.provider_ref);
    assert_eq!(ours_ref.order_id.as_str(), "SO-8~R1");
    assert_eq!(
        mock.created_count(),
        3,
        "SO-8-R1, SO-8 and SO-8's re-export"
    );

    // Cancelling SO-8 touches SO-8's shipment only.
    assert!(o.cancel(&ours.id).await.unwrap().is_cancelled());
    let theirs_statuses = mock.statuses(&theirs.id);
    assert!(
        theirs_statuses
            .iter()
            .all(|s| s.code != StatusCode::Cancelled),
        "{theirs_statuses:?}"
    );
}

#[tokio::test]
async fn host_ids_in_the_reexport_namespace_are_refused_before_anything_is_sent() {
    let mock = Arc::new(MockProvider::new());
    let o = orchestrator(mock.clone());
    let err = o
        .on_order_confirmed(&sample_order("SO-8~R1"))
        .await
        .unwrap_err();
    assert_eq!(err.field_errors()[0].path, "id");
    assert_eq!(mock.created_count(), 0);
    assert!(o.shipment("SO-8~R1").await.unwrap().is_none());
}

/// A provider that answers a create with another order's shipment (as a lookup by a colliding
/// number would).
#[derive(Debug)]
struct Misattaching;

#[async_trait]
impl FulfillmentProvider for Misattaching {
    fn kind(&self) -> &str {
        "misattaching"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::new(10, 10)
    }
    async fn create_order(&self, _: &Order, _: &Waybill) -> fulfillkit::Result<Shipment> {
        Ok(Shipment {
            reference: ShipmentRef::new("SO-OTHER", "REF-OTHER"),
            tracking_number: None,
            status: None,
        })
    }
    async fn track(&self, _: &[ShipmentRef]) -> fulfillkit::Result<Vec<TrackingUpdate>> {
        Ok(Vec::new())
    }
}

#[tokio::test]
async fn a_record_is_attached_only_to_a_shipment_of_the_number_it_sent() {
    let events = Arc::new(CollectingSink::new());
    let o = Orchestrator::builder()
        .instance(Instance::new("only", "only", Arc::new(Misattaching)))
        .rule(RoutingRule::new("all", Condition::Always, "only"))
        .events(events.clone())
        .build()
        .unwrap();
    let order = sample_order("SO-1");
    let err = o.on_order_confirmed(&order).await.unwrap_err();
    assert!(matches!(err, Error::Protocol { .. }), "{err:?}");
    let record = o.shipment(&order.id).await.unwrap().unwrap();
    assert!(record.shipment().is_none());
    assert!(matches!(record.export, ExportState::Failed { .. }));
}

// ---------------------------------------------------------------------------------------------
// 3. A 5xx after a committed create
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn sphere_looks_the_order_up_before_sending_a_create_again_after_a_5xx() {
    let sphere = SphereSimulator::builder()
        .with_faults(
            Faults::none()
                .with_applied_server_errors(1.0)
                .with_endpoints(["POST /orders"]),
        )
        .start()
        .await
        .unwrap();
    let provider = sphere
        .provider_builder()
        .with_http_config(support::sphere::fast_http())
        .build()
        .unwrap();
    let order = sample_order("SO-5XX");
    let shipment = provider
        .create_order(&order, &Waybill::new())
        .await
        .unwrap();
    let stats = sphere.stats();
    assert_eq!(stats.creates_of("SO-5XX"), 1, "the create was sent once");
    assert_eq!(stats.faults.server_errors_after_apply, 1);
    assert_eq!(
        sphere.order("SO-5XX").unwrap().reference,
        shipment.reference.provider_ref
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Poison pills
// ---------------------------------------------------------------------------------------------

fn at_the_edge() -> [DateTime<Utc>; 4] {
    [
        DateTime::<Utc>::MAX_UTC,
        DateTime::<Utc>::MIN_UTC,
        Utc.with_ymd_and_hms(9999, 12, 31, 23, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(1969, 12, 31, 23, 0, 0).unwrap(),
    ]
}

#[tokio::test]
async fn orders_with_dates_no_provider_can_take_are_refused_not_panicked_on() {
    let sim = SphereSimulator::start().await.unwrap();
    let sphere = sim
        .provider_builder()
        .with_utc_offset(14 * 3600)
        .with_http_config(support::sphere::fast_http())
        .build()
        .unwrap();
    let o = orchestrator(Arc::new(sphere));
    for (i, at) in at_the_edge().into_iter().enumerate() {
        let mut order = sample_order(&format!("SO-EDGE-{i}"));
        order.confirmed_at = Some(at);
        let err = o.on_order_confirmed(&order).await.unwrap_err();
        assert_eq!(err.field_errors()[0].path, "confirmed_at", "{at}");
    }
    // Nothing was left in progress for a restart to trip over.
    let report = o.reconcile(Duration::ZERO).await.unwrap();
    assert_eq!(report.found, 0);
}

#[test]
fn a_poll_policy_beyond_what_dates_hold_is_a_build_error() {
    for policy in [
        PollPolicy::default().with_default_interval(Duration::from_secs(u64::MAX / 4)),
        PollPolicy::default().with_interval(StatusCode::InTransit, Duration::ZERO),
        PollPolicy::default().with_max_tracking_age(Duration::MAX),
    ] {
        let err = Orchestrator::builder()
            .instance(Instance::new("only", "only", Arc::new(MockProvider::new())))
            .poll_policy(policy)
            .build()
            .unwrap_err();
        assert!(
            err.field_errors()[0].path.starts_with("poll_policy."),
            "{err}"
        );
    }
}

#[tokio::test]
async fn tracking_at_the_edge_of_time_does_not_panic() {
    // Exported just before the end of time: the next poll would be after it.
    let end = DateTime::<Utc>::MAX_UTC - chrono::Duration::hours(1);
    let mock = Arc::new(MockProvider::new());
    mock.set_now(Some(end));
    let o = Orchestrator::builder()
        .instance(Instance::new("only", "only", mock.clone()))
        .rule(RoutingRule::new("all", Condition::Always, "only"))
        .clock(Arc::new(move || end))
        .build()
        .unwrap();
    let mut order = sample_order("SO-1");
    order.confirmed_at = None;
    let _ = o.on_order_confirmed(&order).await.unwrap();
    mock.advance(&order.id, StatusCode::InTransit).unwrap();
    let report = o.sync_tracking().await.unwrap();
    assert_eq!((report.polled, report.changed), (1, 1));
}

fn arb_instant() -> impl Strategy<Value = DateTime<Utc>> {
    let min = DateTime::<Utc>::MIN_UTC.timestamp();
    let max = DateTime::<Utc>::MAX_UTC.timestamp();
    prop_oneof![
        (min..=max).prop_map(|s| Utc.timestamp_opt(s, 0).single().unwrap()),
        (-86_400i64 * 3..86_400 * 3).prop_map(|s| Utc.timestamp_opt(s, 0).single().unwrap()),
        (0..86_400i64 * 3).prop_map(|s| {
            Utc.with_ymd_and_hms(9999, 12, 29, 0, 0, 0).unwrap() + chrono::Duration::seconds(s)
        }),
        Just(DateTime::<Utc>::MAX_UTC),
        Just(DateTime::<Utc>::MIN_UTC),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Extreme confirmation times and UTC offsets through validation and both providers'
    /// creates over their simulators: an answer or a typed error, never a panic.
    #[test]
    fn extreme_dates_reach_no_panic(at in arb_instant(), offset in -86_399i32..=86_399) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let sphere_sim = SphereSimulator::start().await.unwrap();
            let wapi_sim = WapiSimulator::start().await.unwrap();
            let sphere = sphere_sim.provider_builder().with_utc_offset(offset).build().unwrap();
            let wapi = wapi_sim.provider_builder().with_utc_offset(offset).build().unwrap();
            let mut order = sample_order("SO-PROP");
            order.confirmed_at = Some(at);
            let valid = order.validate().is_ok();
            for provider in [&sphere as &dyn FulfillmentProvider, &wapi] {
                match provider.create_order(&order, &Waybill::new()).await {
                    Ok(shipment) => {
                        assert!(valid, "{at} accepted by {}", provider.kind());
                        let _ = provider.track(&[shipment.reference]).await.unwrap();
                    }
                    Err(err) => assert!(!valid, "{at}: {err}"),
                }
            }
        });
    }
}

// ---------------------------------------------------------------------------------------------
// 5. A way out for flagged Wapi orders
// ---------------------------------------------------------------------------------------------

/// A Wapi simulator that applies every create and loses the answer.
async fn wapi_losing_creates(lookup: bool) -> WapiSimulator {
    WapiSimulator::builder()
        .with_faults(
            Faults::none()
                .with_lost_responses(1.0)
                .with_endpoints(["POST /outbounds"]),
        )
        .with_tracking_by_order_number(lookup)
        .start()
        .await
        .unwrap()
}

/// An orchestrator over `sim` whose adapter does not retry by itself, so the retry is the
/// orchestrator's own; its clock is `clock`.
fn wapi_orchestrator(
    sim: &WapiSimulator,
    events: Arc<CollectingSink>,
    clock: &TestClock,
) -> Orchestrator {
    let mut http = support::wapi::fast_http();
    http.retry = http.retry.with_max_retries(0);
    let wapi = sim
        .provider_builder()
        .with_http_config(http)
        .build()
        .unwrap();
    Orchestrator::builder()
        .instance(Instance::new("wapi", "wapi", Arc::new(wapi)))
        .rule(RoutingRule::new("all", Condition::Always, "wapi"))
        .events(events)
        .clock(clock.clock())
        .build()
        .unwrap()
}

/// Confirms `order`: Wapi creates it and the answer is lost; then the network heals and the
/// orchestrator's retry sends the create again, which Wapi refuses as a repeated number.
async fn confirm_losing_the_answer(
    sim: &WapiSimulator,
    o: &Orchestrator,
    order: &Order,
) -> fulfillkit::Result<fulfillkit::orchestrator::RetryReport> {
    let err = o.on_order_confirmed(order).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    sim.set_faults(Faults::none()).unwrap();
    o.retry_failed_exports().await
}

#[tokio::test]
async fn a_wapi_order_whose_create_answer_was_lost_is_adopted_where_tracking_answers() {
    let sim = wapi_losing_creates(true).await;
    let o = wapi_orchestrator(
        &sim,
        Arc::new(CollectingSink::new()),
        &TestClock::at(Utc::now()),
    );
    let order = sample_order("SO-LOST");
    let report = confirm_losing_the_answer(&sim, &o, &order).await.unwrap();
    assert_eq!(report.exported, 1, "{report:?}");
    let record = o.shipment(&order.id).await.unwrap().unwrap();
    assert_eq!(
        record.shipment().map(|s| s.provider_ref.clone()),
        sim.wh_number("SO-LOST")
    );
    assert_eq!(sim.orders().len(), 1);
    assert_eq!(sim.stats().creates_of("SO-LOST"), 2);
}

#[tokio::test]
async fn an_operator_attaches_a_flagged_wapi_order_after_checking_it_with_wapi() {
    let sim = wapi_losing_creates(false).await;
    let events = Arc::new(CollectingSink::new());
    let clock = TestClock::at(Utc::now());
    let o = wapi_orchestrator(&sim, events.clone(), &clock);
    let order = sample_order("SO-LOST");
    let report = confirm_losing_the_answer(&sim, &o, &order).await.unwrap();
    assert_eq!(report.failed, 1, "{report:?}");
    let record = o.shipment(&order.id).await.unwrap().unwrap();
    assert!(matches!(
        record.export,
        ExportState::Failed {
            retryable: false,
            ..
        }
    ));

    // A reference Wapi does not know is refused, and nothing changes.
    let err = o
        .attach_shipment(&order.id, "WH0000999999")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert!(
        o.shipment(&order.id)
            .await
            .unwrap()
            .unwrap()
            .shipment()
            .is_none()
    );

    let wh = sim.wh_number("SO-LOST").unwrap();
    let attached = o.attach_shipment(&order.id, wh.clone()).await.unwrap();
    assert_eq!(
        attached.shipment(),
        Some(&ShipmentRef::new("SO-LOST", wh.clone()))
    );
    assert_eq!(
        attached
            .current_status
            .as_ref()
            .map(|s| s.original.as_str()),
        Some("Pending")
    );
    let kinds: Vec<&str> = events
        .take()
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::Exported { .. } => Some("exported"),
            EventKind::DeliveryStatusChanged { .. } => Some("status"),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, ["exported", "status"]);
    // Attaching again is a no-op; another reference is a conflict.
    o.attach_shipment(&order.id, wh).await.unwrap();
    let err = o
        .attach_shipment(&order.id, "WH0000100999")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
    // Tracking follows it from now on.
    sim.advance("SO-LOST", "Delivered").unwrap();
    clock.advance(chrono::Duration::hours(2));
    let report = o.sync_tracking().await.unwrap();
    assert_eq!((report.polled, report.changed), (1, 1));
}

// ---------------------------------------------------------------------------------------------
// 6. Abandoned intents
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_export_abandoned_inside_a_running_process_is_taken_over_at_once() {
    let mock = Arc::new(MockProvider::new().with_latency(Duration::from_millis(200)));
    let o = orchestrator(mock.clone());
    let order = sample_order("SO-DROPPED");
    // The caller gives up while the provider is being called: the intent stays behind.
    let dropped =
        tokio::time::timeout(Duration::from_millis(50), o.on_order_confirmed(&order)).await;
    assert!(dropped.is_err());
    let record = o.shipment(&order.id).await.unwrap().unwrap();
    let ExportState::Exporting { owner, .. } = &record.export else {
        panic!("{:?}", record.export);
    };
    assert_eq!(owner.as_deref(), Some(o.owner()));

    // Not "in progress" for the default ten minutes: its owner knows nobody works on it.
    let report = o.retry_failed_exports().await.unwrap();
    assert_eq!((report.abandoned, report.exported), (1, 1));
    assert!(
        o.shipment(&order.id)
            .await
            .unwrap()
            .unwrap()
            .shipment()
            .is_some()
    );
    assert!(matches!(
        o.on_order_confirmed(&order).await.unwrap(),
        ExportOutcome::AlreadyExported { .. }
    ));
    assert_eq!(mock.created_count(), 1);
}

#[tokio::test]
async fn a_second_confirmation_takes_over_this_process_own_abandoned_intent() {
    let mock = Arc::new(MockProvider::new().with_latency(Duration::from_millis(200)));
    let o = orchestrator(mock.clone());
    let order = sample_order("SO-DROPPED");
    let _ = tokio::time::timeout(Duration::from_millis(50), o.on_order_confirmed(&order)).await;
    assert!(matches!(
        o.on_order_confirmed(&order).await.unwrap(),
        ExportOutcome::Exported { .. }
    ));
    // A replica sharing the store does not take over a fresh intent of another owner.
    let other = Orchestrator::builder()
        .instance(Instance::new("only", "only", mock.clone()))
        .rule(RoutingRule::new("all", Condition::Always, "only"))
        .store(Arc::clone(o.store()))
        .build()
        .unwrap();
    let second = sample_order("SO-SECOND");
    let _ = tokio::time::timeout(Duration::from_millis(50), o.on_order_confirmed(&second)).await;
    assert_eq!(
        other.on_order_confirmed(&second).await.unwrap(),
        ExportOutcome::InProgress
    );
}

// ---------------------------------------------------------------------------------------------
// 7–9. Echoed credentials, userinfo, bounded input
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_provider_echoing_the_signature_cannot_put_it_into_errors_or_records() {
    let mut server = mockito::Server::new_async().await;
    server
        .mock("POST", "/api/outbounds")
        .with_status(400)
        .with_body_from_request(|request| {
            let signature = request.header("x-signature")[0]
                .to_str()
                .unwrap()
                .to_owned();
            format!(r#"{{"error":"bad request, you sent {signature}"}}"#).into_bytes()
        })
        .create_async()
        .await;
    let wapi = support::wapi::provider(&server);
    let (order, waybill) = support::wapi::cod_italy();
    let err = wapi.create_order(&order, &waybill).await.unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("[redacted]"), "{shown}");
    let hex_run = shown
        .split(|c: char| !c.is_ascii_hexdigit())
        .any(|run| run.len() >= 40);
    assert!(!hex_run, "{shown}");
}

#[test]
fn base_urls_with_a_password_are_refused_and_never_printed() {
    let wapi =
        WapiBuilder::new("client", "secret").with_base_url("https://me:hunter2@wapi.example/api");
    assert!(!format!("{wapi:?}").contains("hunter2"));
    let err = wapi.build().unwrap_err();
    assert_eq!(err.field_errors()[0].path, "base_url");
    let sphere = SphereBuilder::new("env", "key", "100", 1)
        .with_base_url("https://me:hunter2@api.spherewms.com/v2/wms");
    assert!(!format!("{sphere:?}").contains("hunter2"));
    assert_eq!(
        sphere.build().unwrap_err().field_errors()[0].path,
        "base_url"
    );
}

#[tokio::test]
async fn oversized_and_control_character_input_is_refused_at_the_door() {
    let mock = Arc::new(MockProvider::new());
    let o = orchestrator(mock.clone());
    let mut order = sample_order("SO-\u{7}1");
    order.customer.name = "Mario\u{0}Rossi".into();
    order.address.lines = vec!["x".repeat(1_000_000)];
    let err = o.on_order_confirmed(&order).await.unwrap_err();
    let paths: Vec<_> = err.field_errors().iter().map(|f| f.path.as_str()).collect();
    assert!(paths.contains(&"id"), "{paths:?}");
    assert!(paths.contains(&"customer.name"), "{paths:?}");
    assert!(paths.contains(&"address.lines[0]"), "{paths:?}");
    assert_eq!(mock.created_count(), 0);
}

#[tokio::test]
async fn oversized_provider_texts_are_bounded_before_they_are_stored() {
    let mock = Arc::new(MockProvider::new());
    let o = orchestrator(mock.clone());
    let order = sample_order("SO-1");
    let _ = o.on_order_confirmed(&order).await.unwrap();
    let huge = "9".repeat(4 * 1024 * 1024);
    let status = DeliveryStatus::new(StatusCode::InTransit, "on its way", Utc::now())
        .with_carrier("C".repeat(10_000), Some(huge.clone().into()));
    mock.push_status(&order.id, status).unwrap();
    o.sync_tracking().await.unwrap();
    let record = o.shipment(&order.id).await.unwrap().unwrap();
    let current = record.current_status.unwrap();
    assert_eq!(
        current.carrier_tracking_number, None,
        "a cut number would be wrong"
    );
    assert_eq!(
        current.carrier.as_deref().map(|c| c.chars().count()),
        Some(fulfillkit::model::TEXT_MAX_CHARS)
    );
    let _: OrderId = record.order_id;
}
