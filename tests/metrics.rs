//! The metrics the `metrics` feature emits (issue 17), recorded by metrics-util's debugging
//! recorder installed as the global recorder (this test binary has it to itself): an export,
//! an edit that becomes an exception and its resolution, a tracking poll with a status change,
//! and HTTP calls to the Wapi simulator.

use std::collections::BTreeSet;
use std::sync::Arc;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};

use fulfillkit::model::{Resolution, ResolutionAction, StatusCode, Waybill};
use fulfillkit::orchestrator::{Condition, Instance, Orchestrator, RoutingRule};
use fulfillkit::provider::FulfillmentProvider;
use fulfillkit::provider::mock::MockProvider;
use fulfillkit::simulator::WapiSimulator;
use fulfillkit::testkit::{TestClock, sample_order};

/// (name, sorted labels) of every metric recorded, with counters' values.
type Seen = Vec<(String, BTreeSet<(String, String)>, Option<u64>)>;

#[tokio::test(flavor = "current_thread")]
async fn every_operation_reports_its_metrics() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder of this test binary");

    let clock = TestClock::new();
    let mock = Arc::new(
        MockProvider::new()
            .with_lock_stage(StatusCode::Packed)
            .with_clock(clock.clock()),
    );
    let orchestrator = Orchestrator::builder()
        .instance(Instance::new("it", "Italy", mock.clone()))
        .rule(RoutingRule::new("all", Condition::Always, "it"))
        .clock(clock.clock())
        .build()
        .unwrap();
    let order = sample_order("SO-1");
    assert!(
        orchestrator
            .on_order_confirmed(&order)
            .await
            .unwrap()
            .is_exported()
    );
    mock.advance(&order.id, StatusCode::Packed).unwrap();
    clock.advance(chrono::Duration::hours(2));
    orchestrator.sync_tracking().await.unwrap();
    let mut edited = order.clone();
    edited.customer.name = "Mario Bianchi".into();
    assert!(
        orchestrator
            .on_order_changed(&edited)
            .await
            .unwrap()
            .exception()
            .is_some()
    );
    orchestrator
        .resolve_exception(
            &order.id,
            Resolution::new(ResolutionAction::AcceptProviderVersion, "operator"),
        )
        .await
        .unwrap();

    let wapi = WapiSimulator::start().await.unwrap();
    let provider = wapi
        .provider_builder()
        .with_instance_label("wapi-it")
        .build()
        .unwrap();
    provider
        .create_order(&sample_order("SO-2"), &Waybill::new())
        .await
        .unwrap();

    let seen: Seen = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let (_, key) = key.into_parts();
            let labels = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            let count = match value {
                DebugValue::Counter(n) => Some(n),
                _ => None,
            };
            (key.name().to_owned(), labels, count)
        })
        .collect();
    let has = |name: &str, labels: &[(&str, &str)]| {
        seen.iter().any(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.contains(&((*k).to_owned(), (*v).to_owned())))
        })
    };
    for (name, labels) in [
        (
            "fulfillkit_exports_total",
            &[("instance", "it"), ("outcome", "exported")][..],
        ),
        (
            "fulfillkit_provider_calls_total",
            &[
                ("instance", "it"),
                ("operation", "create_order"),
                ("outcome", "ok"),
            ],
        ),
        (
            "fulfillkit_provider_call_duration_seconds",
            &[("instance", "it"), ("operation", "track")],
        ),
        (
            "fulfillkit_provider_calls_total",
            &[("operation", "update_order"), ("outcome", "ok")],
        ),
        ("fulfillkit_tracking_polled_total", &[("instance", "it")]),
        (
            "fulfillkit_status_changes_total",
            &[("instance", "it"), ("code", "packed")],
        ),
        (
            "fulfillkit_exceptions_raised_total",
            &[("instance", "it"), ("reason", "too_late")],
        ),
        (
            "fulfillkit_exceptions_resolved_total",
            &[("instance", "it"), ("action", "accept_provider_version")],
        ),
        (
            "fulfillkit_events_emitted_total",
            &[("kind", "delivery_status_changed")],
        ),
        (
            "fulfillkit_http_requests_total",
            &[
                ("provider", "wapi"),
                ("instance", "wapi-it"),
                ("endpoint", "POST /outbounds"),
                ("status", "200"),
            ],
        ),
        (
            "fulfillkit_http_request_duration_seconds",
            &[("provider", "wapi"), ("endpoint", "POST /outbounds")],
        ),
    ] {
        assert!(
            has(name, labels),
            "{name} {labels:?} missing from {seen:#?}"
        );
    }
}
