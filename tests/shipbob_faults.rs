//! Faults over the wire for ShipBob (issue 20): 500 orders confirmed, edited, cancelled and
//! tracked through one orchestrator over the ShipBob simulator failing about 35 % of
//! requests with the fault mix of `tests/faults.rs` (HTTP 500, 429, connections reset before
//! the answer, answers lost after the change was applied, HTTP 500 after the change was
//! applied, answers slower than the adapter's timeout), a fifth of the orders split into two
//! shipments; then the orchestrator's retries run until quiet.
//!
//! Afterwards: every order exists exactly once at the simulator and its record is `Exported`
//! with the simulator's id — none lost, none created twice, none left to an operator (ShipBob
//! can be asked by reference); every edit reaches the simulator; every cancel cancels each
//! shipment once; tracking loses no status (every state and carrier event of a single-parcel
//! order is in its history) and emits no event twice.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;

mod support;
use support::shipbob::american;

use fulfillkit::http::{HttpConfig, RetryConfig};
use fulfillkit::model::{Order, OrderId, StatusCode};
use fulfillkit::orchestrator::{
    Automation, ChangeOutcome, CollectingSink, Condition, EventKind, ExportState, Instance,
    Orchestrator, RoutingRule, ShipmentRecord,
};
use fulfillkit::simulator::{FaultCounts, Faults, ShipBobSimulator};
use fulfillkit::testkit::TestClock;

const ORDERS: usize = 500;
const CONCURRENCY: usize = 16;
const MAX_ROUNDS: usize = 30;
const JITTER: Duration = Duration::from_millis(40);
const REQUEST_TIMEOUT: Duration = Duration::from_millis(38);

/// The fault mix of `tests/faults.rs`.
fn faults(seed: u64) -> Faults {
    Faults::none()
        .with_server_errors(0.08)
        .with_rate_limits(0.07, 0)
        .with_resets(0.05)
        .with_lost_responses(0.05)
        .with_applied_server_errors(0.05)
        .with_latency_jitter(JITTER)
        .with_seed(seed)
}

fn http() -> HttpConfig {
    let mut http = HttpConfig::default();
    http.retry = RetryConfig::default()
        .with_backoff(Duration::from_millis(1), Duration::from_millis(5))
        .with_max_retries(2);
    http.request_timeout = REQUEST_TIMEOUT;
    http.jitter_seed = Some(13);
    http.rate_limit = None;
    http
}

async fn concurrently<T, F, Fut, R>(items: Vec<T>, f: F) -> Vec<R>
where
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = R>,
{
    let mut results = Vec::with_capacity(items.len());
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        let chunk: Vec<_> = items.by_ref().take(CONCURRENCY).map(&f).collect();
        results.extend(futures_util::future::join_all(chunk).await);
    }
    results
}

#[derive(Debug, Default)]
struct Figures {
    orders: usize,
    split: usize,
    exported: usize,
    first_confirm_failures: usize,
    export_retry_rounds: usize,
    duplicates_refused: u64,
    edits: usize,
    edits_pending_first: usize,
    cancels: usize,
    cancel_attempts: usize,
    tracking_rounds: usize,
    tracking_failed: usize,
    status_events: usize,
    faults: FaultCounts,
    requests: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_shipbob_orders_survive_thirty_percent_faults() {
    let started = Instant::now();
    let sim = ShipBobSimulator::builder()
        .with_rate_limit(None)
        .with_split_orders(0.2)
        .with_seed(7)
        .with_faults(faults(303))
        .start()
        .await
        .unwrap();
    let events = Arc::new(CollectingSink::new());
    let clock = TestClock::at(Utc::now());
    let orchestrator = Arc::new(
        Orchestrator::builder()
            .instance(Instance::new(
                "shipbob",
                "ShipBob",
                Arc::new(
                    sim.provider_builder()
                        .with_http_config(http())
                        .with_max_track_batch(10)
                        .build()
                        .unwrap(),
                ),
            ))
            .rule(RoutingRule::new("all", Condition::Always, "shipbob"))
            .events(events.clone())
            .tracking_concurrency(8)
            .clock(clock.clock())
            .build()
            .unwrap(),
    );
    let mut figures = Figures {
        orders: ORDERS,
        ..Figures::default()
    };
    let all: Vec<Order> = (0..ORDERS)
        .map(|i| american(&format!("SB-{i:05}")))
        .collect();
    let record = |id: OrderId| {
        let orchestrator = orchestrator.clone();
        async move {
            orchestrator
                .shipment(&id)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("order {id} has no record: silently lost"))
        }
    };

    // 1. Confirm under faults, then retry failed exports until quiet.
    let confirmed = concurrently(all.clone(), |order| {
        let orchestrator = orchestrator.clone();
        async move { orchestrator.on_order_confirmed(&order).await }
    })
    .await;
    figures.first_confirm_failures = confirmed.iter().filter(|r| r.is_err()).count();
    let mut quiet = false;
    for round in 0..MAX_ROUNDS {
        let report = orchestrator.retry_failed_exports().await.unwrap();
        if report.attempted == 0 {
            figures.export_retry_rounds = round;
            quiet = true;
            break;
        }
    }
    assert!(quiet, "retry_failed_exports never became quiet");

    // 2. Exactly one order per reference at the simulator, each record exported with its id.
    let held = sim.shipbob_orders();
    assert_eq!(held.len(), ORDERS, "no order created twice, none missing");
    let by_reference: BTreeMap<&str, _> =
        held.iter().map(|o| (o.reference_id.as_str(), o)).collect();
    assert_eq!(by_reference.len(), ORDERS);
    let exported_events: HashMap<OrderId, usize> = events
        .events()
        .into_iter()
        .filter(|e| matches!(e.kind, EventKind::Exported { .. }))
        .filter_map(|e| e.order_id)
        .fold(HashMap::new(), |mut m, id| {
            *m.entry(id).or_insert(0) += 1;
            m
        });
    for order in &all {
        let sim_order = by_reference
            .get(order.id.as_str())
            .unwrap_or_else(|| panic!("{} lost", order.id));
        let record: ShipmentRecord = record(order.id.clone()).await;
        let ExportState::Exported { shipment, .. } = &record.export else {
            panic!("{} ended {:?}", order.id, record.export);
        };
        assert_eq!(
            shipment.provider_ref,
            sim_order.id.to_string(),
            "{}",
            order.id
        );
        assert_eq!(
            exported_events.get(&order.id),
            Some(&1),
            "{}: one Exported event",
            order.id
        );
        figures.exported += 1;
        if sim_order.shipments.len() > 1 {
            figures.split += 1;
        }
    }
    figures.duplicates_refused = sim.stats().duplicates_refused;

    // 3. Edits (every 4th order) and cancels (every 4th, offset 2), still editable.
    let edits: Vec<Order> = all
        .iter()
        .step_by(4)
        .map(|o| {
            let mut edited = o.clone();
            edited.customer.name = format!("Edited {}", o.id);
            edited
        })
        .collect();
    figures.edits = edits.len();
    let changed = concurrently(edits.clone(), |order| {
        let orchestrator = orchestrator.clone();
        async move { orchestrator.on_order_changed(&order).await }
    })
    .await;
    for (order, outcome) in edits.iter().zip(&changed) {
        match outcome {
            Ok(ChangeOutcome::Applied { .. } | ChangeOutcome::AlreadyAtProvider { .. }) => {}
            Ok(ChangeOutcome::Pending { .. }) => figures.edits_pending_first += 1,
            other => panic!("{}: {other:?}", order.id),
        }
    }
    let mut quiet = false;
    for _ in 0..MAX_ROUNDS {
        let report = orchestrator.retry_pending_updates().await.unwrap();
        assert_eq!(report.exceptions, 0, "nothing was too late");
        if report.attempted == 0 {
            quiet = true;
            break;
        }
    }
    assert!(quiet, "retry_pending_updates never became quiet");
    for edited in &edits {
        let record = record(edited.id.clone()).await;
        assert!(record.pending_update.is_none(), "{}", edited.id);
        assert_eq!(record.automation, Automation::Active, "{}", edited.id);
        let held = sim.shipbob_order(edited.id.as_str()).unwrap();
        assert_eq!(
            held.recipient["name"],
            edited.customer.name.as_str(),
            "{}",
            edited.id
        );
    }
    let cancels: Vec<OrderId> = all
        .iter()
        .skip(2)
        .step_by(4)
        .map(|o| o.id.clone())
        .collect();
    figures.cancels = cancels.len();
    let attempts = concurrently(cancels.clone(), |id| {
        let orchestrator = orchestrator.clone();
        async move {
            for attempt in 1..=MAX_ROUNDS {
                match orchestrator.cancel(&id).await {
                    Ok(outcome) if outcome.is_cancelled() => return attempt,
                    Ok(other) => panic!("{id}: {other:?}"),
                    Err(e) if e.is_retryable() => {}
                    Err(e) => panic!("{id}: {e}"),
                }
            }
            panic!("{id}: never cancelled")
        }
    })
    .await;
    figures.cancel_attempts = attempts.iter().sum();
    for id in &cancels {
        let held = sim.shipbob_order(id.as_str()).unwrap();
        assert!(
            held.shipments.iter().all(|s| s.state == "Cancelled"),
            "{id}: {held:?}"
        );
        assert_eq!(
            held.cancels as usize,
            held.shipments.len(),
            "{id}: each parcel cancelled once"
        );
    }

    // 4. Tracking: one lifecycle step per round (the second parcel of a split lags one), and
    //    after each, `now` a day later and sync until no shipment failed.
    for _ in 0..11 {
        sim.tick();
        clock.advance(chrono::Duration::days(1));
        let mut clean = false;
        for _ in 0..MAX_ROUNDS {
            let report = orchestrator.sync_tracking().await.unwrap();
            figures.tracking_rounds += 1;
            figures.tracking_failed += report.failed;
            if report.failed == 0 && report.errors.is_empty() {
                clean = true;
                break;
            }
        }
        assert!(clean, "sync_tracking never ran without failures");
    }

    let mut per_order: HashMap<OrderId, Vec<_>> = HashMap::new();
    for event in events.events() {
        if let (EventKind::DeliveryStatusChanged { from, to }, Some(id)) =
            (event.kind, event.order_id)
        {
            figures.status_events += 1;
            per_order.entry(id).or_default().push((from, to));
        }
    }
    for order in &all {
        let id = &order.id;
        let record = record(id.clone()).await;
        let held = by_reference[id.as_str()];
        let held = sim
            .shipbob_order(id.as_str())
            .unwrap_or_else(|| panic!("{}", held.id));
        let chain = per_order.get(id).cloned().unwrap_or_default();
        // A chain: each event starts where the last ended and brings news; the last is the
        // current status.
        let mut previous = chain.first().and_then(|(from, _)| from.clone());
        for (from, to) in &chain {
            assert_eq!(from.as_ref(), previous.as_ref(), "{id}: {chain:?}");
            assert_ne!(from.as_ref(), Some(to), "{id}: an event without news");
            previous = Some(to.clone());
        }
        assert_eq!(previous.as_ref(), record.current_status.as_ref(), "{id}");
        let current = record
            .current_status
            .as_ref()
            .unwrap_or_else(|| panic!("{id}: no status"));
        if cancels.contains(id) {
            assert_eq!(current.code, StatusCode::Cancelled, "{id}");
            let cancelled = chain
                .iter()
                .filter(|(_, to)| to.code == StatusCode::Cancelled)
                .count();
            assert_eq!(cancelled, 1, "{id}: cancelled once: {chain:?}");
            continue;
        }
        assert_eq!(
            current.code,
            StatusCode::Delivered,
            "{id}: {current:?} / {held:?}"
        );
        if held.shipments.len() > 1 {
            continue;
        }
        // A single parcel: every state it went through and every carrier event is kept.
        let shipment = &held.shipments[0];
        for state in &shipment.history {
            let found = record.history.iter().any(|s| {
                let text = s.original.as_str();
                text == state
                    || text.starts_with(&format!("{state} ("))
                    || text.replace('/', "").starts_with(&state.replace('/', ""))
            });
            assert!(
                found,
                "{id}: state {state} lost; record {:?}",
                record.history
            );
        }
        for event in &shipment.carrier_history {
            let text = format!("tracking: {event}");
            assert!(
                record.history.iter().any(|s| s.original == text),
                "{id}: carrier {text} lost; record {:?}",
                record.history
            );
        }
    }

    let stats = sim.stats();
    figures.faults = stats.faults;
    figures.requests = stats.total_requests();
    eprintln!("{figures:#?}\nin {:?}", started.elapsed());
    let counts = figures.faults;
    assert!(
        counts.server_errors > 0 && counts.rate_limited > 0,
        "{counts:?}"
    );
    assert!(
        counts.resets > 0 && counts.lost_after_apply > 0,
        "{counts:?}"
    );
    assert!(counts.server_errors_after_apply > 0, "{counts:?}");
    assert!(figures.first_confirm_failures > 0 || figures.duplicates_refused > 0);
    assert!(figures.split > 0);
    assert_eq!(figures.exported, figures.orders);
    sim.shutdown().await;
}
