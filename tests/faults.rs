//! Faults over the wire (issue 10, part 1): orders confirmed, edited, cancelled and tracked
//! through one orchestrator with a Wapi and a Sphere instance, both simulators failing about
//! 35 % of requests (HTTP 500, 429 with `Retry-After`, connections reset before the answer,
//! answers lost after the change was applied, HTTP 500 after the change was applied, answers
//! slower than the adapter's request timeout), then the orchestrator's retries run until quiet.
//!
//! Afterwards, for every order: exactly one order at its simulator, and a record that is
//! `Exported` with the simulator's reference — directly, or (Wapi only, whose protocol has no
//! lookup by order number) after an operator attached the WH number to the record flagged
//! `Failed { retryable: false }` naming the order; no order without a record, none exported
//! twice. Every edit reaches the simulator, every cancel
//! cancels exactly once, and tracking loses no status and duplicates no event.
//!
//! The default test runs 1,000 orders (500 per provider); the ignored one 5,000.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use rust_decimal::Decimal;

mod support;

use fulfillkit::Error;
use fulfillkit::http::{HttpConfig, RetryConfig};
use fulfillkit::model::{CartLine, Order, OrderId, StatusCode};
use fulfillkit::orchestrator::{
    Automation, ChangeOutcome, CollectingSink, Condition, EventKind, ExportState, Instance,
    Orchestrator, RoutingRule, ShipmentRecord,
};
use fulfillkit::simulator::{FaultCounts, Faults, SimOrder, SphereSimulator, WapiSimulator};
use fulfillkit::testkit::{TestClock, sample_order};

/// Orders confirmed concurrently (the simulators' delays overlap).
const CONCURRENCY: usize = 16;
/// Upper bound of every "until quiet" loop.
const MAX_ROUNDS: usize = 30;
/// The longest delay a simulator adds; the adapters' request timeout is 95 % of it, so about
/// 5 % of the requests answer too late.
const JITTER: Duration = Duration::from_millis(40);
const REQUEST_TIMEOUT: Duration = Duration::from_millis(38);

/// 30 % of requests fail by the five fault knobs, about 5 % more by the jitter.
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

/// Two retries with millisecond backoffs (so that faults also reach the orchestrator), a
/// short request timeout, no rate limit, a fixed jitter seed.
fn http() -> HttpConfig {
    let mut http = HttpConfig::default();
    http.retry = RetryConfig::default()
        .with_backoff(Duration::from_millis(1), Duration::from_millis(5))
        .with_max_retries(2);
    http.request_timeout = REQUEST_TIMEOUT;
    http.jitter_seed = Some(11);
    http.rate_limit = None;
    http
}

struct Rig {
    clock: TestClock,
    wapi: WapiSimulator,
    sphere: SphereSimulator,
    orchestrator: Arc<Orchestrator>,
    events: Arc<CollectingSink>,
}

async fn rig() -> Rig {
    let wapi = WapiSimulator::builder()
        .with_faults(faults(101))
        .start()
        .await
        .unwrap();
    let sphere = SphereSimulator::builder()
        .with_faults(faults(202))
        .start()
        .await
        .unwrap();
    let events = Arc::new(CollectingSink::new());
    let clock = TestClock::at(Utc::now());
    let orchestrator = Orchestrator::builder()
        .instance(Instance::new(
            "wapi",
            "Wapi",
            Arc::new(
                wapi.provider_builder()
                    .with_http_config(http())
                    // One GET or two per shipment and no batch endpoint: a batch of 25 would
                    // almost never come through whole at this fault rate.
                    .with_max_track_batch(5)
                    .build()
                    .unwrap(),
            ),
        ))
        .instance(Instance::new(
            "sphere",
            "Sphere",
            Arc::new(
                sphere
                    .provider_builder()
                    .with_http_config(http())
                    // One GET or two per shipment and no batch endpoint: a batch of 25 would
                    // almost never come through whole at this fault rate.
                    .with_max_track_batch(5)
                    .build()
                    .unwrap(),
            ),
        ))
        .rule(RoutingRule::new("US", Condition::country(["US"]), "sphere"))
        .rule(RoutingRule::new("rest", Condition::Always, "wapi"))
        .events(events.clone())
        .tracking_concurrency(8)
        .clock(clock.clock())
        .build()
        .unwrap();
    Rig {
        clock,
        wapi,
        sphere,
        orchestrator: Arc::new(orchestrator),
        events,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Provider {
    Wapi,
    Sphere,
}

/// An order in Columbus, OH, with a product of Sphere's default inventory.
fn american(id: &str) -> Order {
    let mut order = support::american(sample_order(id));
    order.lines = vec![CartLine {
        sku: "ABC-100".into(),
        name: "Widget".into(),
        product_type: None,
        quantity: 2,
        unit_price: Decimal::new(2450, 2),
    }];
    order
}

/// `per_provider` orders for each simulator, numbered so that no number is a prefix of
/// another (`W-00001`, `S-00001`).
fn orders(per_provider: usize) -> Vec<(Provider, Order)> {
    (0..per_provider)
        .flat_map(|i| {
            [
                (Provider::Wapi, sample_order(&format!("W-{i:05}"))),
                (Provider::Sphere, american(&format!("S-{i:05}"))),
            ]
        })
        .collect()
}

impl Rig {
    fn sim_orders(&self, provider: Provider, number: &str) -> Vec<SimOrder> {
        let all = match provider {
            Provider::Wapi => self.wapi.orders(),
            Provider::Sphere => self.sphere.orders(),
        };
        all.into_iter()
            .filter(|o| o.order_number == number)
            .collect()
    }

    fn sim_reference(&self, provider: Provider, number: &str) -> Option<String> {
        match provider {
            Provider::Wapi => self.wapi.wh_number(number),
            Provider::Sphere => self.sphere.order_id(number).map(|id| id.to_string()),
        }
    }

    fn sim_order(&self, provider: Provider, number: &str) -> Option<SimOrder> {
        match provider {
            Provider::Wapi => self.wapi.order(number),
            Provider::Sphere => self.sphere.order(number),
        }
    }

    async fn record(&self, id: &OrderId) -> ShipmentRecord {
        self.orchestrator
            .shipment(id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("order {id} has no record: silently lost"))
    }

    /// Events of `kind_filter` per order.
    fn count_events(&self, pick: impl Fn(&EventKind) -> bool) -> HashMap<OrderId, usize> {
        let mut counts = HashMap::new();
        for event in self.events.events() {
            if pick(&event.kind)
                && let Some(order) = event.order_id
            {
                *counts.entry(order).or_insert(0) += 1;
            }
        }
        counts
    }
}

/// Runs `f` over `items`, `CONCURRENCY` at a time.
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

/// What one run saw, for the report.
#[derive(Debug, Default)]
struct Figures {
    orders: usize,
    exported: usize,
    attached_by_operator: usize,
    first_confirm_failures: usize,
    export_retry_rounds: usize,
    edits: usize,
    edits_pending_first: usize,
    edit_exceptions: usize,
    cancels: usize,
    cancel_attempts: usize,
    tracking_rounds: usize,
    tracking_failed_batches: usize,
    status_events: usize,
    wapi_faults: FaultCounts,
    sphere_faults: FaultCounts,
    wapi_requests: u64,
    sphere_requests: u64,
    wapi_duplicates_refused: u64,
    sphere_duplicates_refused: u64,
}

async fn run(per_provider: usize) -> Figures {
    let started = Instant::now();
    let rig = rig().await;
    let mut figures = Figures::default();
    let all = orders(per_provider);
    figures.orders = all.len();
    let by_id: BTreeMap<OrderId, (Provider, Order)> = all
        .iter()
        .map(|(p, o)| (o.id.clone(), (*p, o.clone())))
        .collect();

    // 1. Confirm every order under faults, then retry failed exports until quiet.
    let orchestrator = rig.orchestrator.clone();
    let confirmed = concurrently(all.clone(), |(_, order)| {
        let orchestrator = orchestrator.clone();
        async move { orchestrator.on_order_confirmed(&order).await }
    })
    .await;
    figures.first_confirm_failures = confirmed.iter().filter(|r| r.is_err()).count();
    let mut quiet = false;
    for round in 0..MAX_ROUNDS {
        let report = rig.orchestrator.retry_failed_exports().await.unwrap();
        if report.attempted == 0 {
            figures.export_retry_rounds = round;
            quiet = true;
            break;
        }
    }
    assert!(quiet, "retry_failed_exports never became quiet");

    // 1b. Orders flagged for an operator (Wapi only: a create applied whose answer was lost
    //     or failed, then the repeated number refused): the operator finds the WH number in
    //     Wapi's back office and attaches it; fulfillkit checks it with Wapi first.
    let mut attached = std::collections::HashSet::new();
    for (id, (provider, _)) in &by_id {
        let number = id.as_str();
        let record = rig.record(id).await;
        let ExportState::Failed {
            retryable: false,
            failure,
            ..
        } = &record.export
        else {
            continue;
        };
        let reason = &failure.message;
        assert_eq!(*provider, Provider::Wapi, "{number}: {reason}");
        assert!(
            reason.contains(number),
            "{number}: the operator's reason must name the order: {reason}"
        );
        assert!(
            reason.contains("already exists"),
            "{number}: only a refused duplicate needs an operator: {reason}"
        );
        let wh = rig
            .wapi
            .wh_number(number)
            .expect("the order exists at Wapi");
        let mut done = false;
        for _ in 0..MAX_ROUNDS {
            match rig.orchestrator.attach_shipment(id, wh.clone()).await {
                Ok(_) => {
                    done = true;
                    break;
                }
                Err(e) if e.is_retryable() || matches!(e, Error::Provider { .. }) => {}
                Err(e) => panic!("{number}: attach failed: {e}"),
            }
        }
        assert!(done, "{number}: never attached");
        attached.insert(id.clone());
    }
    figures.attached_by_operator = attached.len();

    // 2. Every order: one order at the simulator, and a record that is exported with the
    //    simulator's reference (by the operator, for those flagged).
    let exported_events = rig.count_events(|k| matches!(k, EventKind::Exported { .. }));
    let mut exported: Vec<(Provider, Order)> = Vec::new();
    for (id, (provider, order)) in &by_id {
        let number = id.as_str();
        let held = rig.sim_orders(*provider, number);
        assert_eq!(
            held.len(),
            1,
            "{number}: {} orders at the simulator",
            held.len()
        );
        let stats = match provider {
            Provider::Wapi => rig.wapi.stats(),
            Provider::Sphere => rig.sphere.stats(),
        };
        assert!(stats.creates_of(number) >= 1, "{number}: never sent");
        let record = rig.record(id).await;
        match &record.export {
            ExportState::Exported { shipment, .. } => {
                let reference = rig.sim_reference(*provider, number).unwrap();
                assert_eq!(shipment.provider_ref, reference, "{number}");
                assert_eq!(shipment.order_id.as_str(), number);
                assert_eq!(held[0].reference, reference, "{number}");
                if !attached.contains(id) {
                    assert_eq!(stats.creates_of(number), 1, "{number}: sent once");
                }
                assert_eq!(
                    exported_events.get(id).copied().unwrap_or(0),
                    1,
                    "{number}: one Exported event"
                );
                figures.exported += 1;
                exported.push((*provider, order.clone()));
            }
            other => panic!("{number} ({provider:?}) ended {other:?}"),
        }
    }
    assert_eq!(
        rig.sphere.stats().duplicates_refused,
        0,
        "Sphere looks an order up before posting it again"
    );
    assert!(rig.sphere.stats().duplicated_order_numbers().is_empty());
    // Each order for an operator is at least one refused duplicate (more when the refusal's
    // own answer was lost and the create sent again).
    assert!(rig.wapi.stats().duplicates_refused as usize >= figures.attached_by_operator);
    assert_eq!(
        rig.wapi.orders().len() + rig.sphere.orders().len(),
        figures.orders,
        "no order created twice, none missing"
    );

    // 3. Edits (every 4th exported order) and cancels (every 4th, offset 2), still in the
    //    editable stage.
    let edits: Vec<Order> = exported
        .iter()
        .step_by(4)
        .map(|(_, o)| {
            let mut edited = o.clone();
            edited.customer.name = format!("Edited {}", o.id);
            edited
        })
        .collect();
    figures.edits = edits.len();
    let orchestrator = rig.orchestrator.clone();
    let changed = concurrently(edits.clone(), |order| {
        let orchestrator = orchestrator.clone();
        async move { orchestrator.on_order_changed(&order).await }
    })
    .await;
    for (order, outcome) in edits.iter().zip(&changed) {
        match outcome {
            Ok(ChangeOutcome::Applied { .. } | ChangeOutcome::AlreadyAtProvider { .. }) => {}
            Ok(ChangeOutcome::Pending { .. }) => figures.edits_pending_first += 1,
            Ok(ChangeOutcome::Exception { .. }) => figures.edit_exceptions += 1,
            other => panic!("{}: {other:?}", order.id),
        }
    }
    let mut quiet = false;
    for _ in 0..MAX_ROUNDS {
        let report = rig.orchestrator.retry_pending_updates().await.unwrap();
        figures.edit_exceptions += report.exceptions;
        if report.attempted == 0 {
            quiet = true;
            break;
        }
    }
    assert!(quiet, "retry_pending_updates never became quiet");
    let updated_events = rig.count_events(|k| matches!(k, EventKind::OrderUpdated { .. }));
    for edited in &edits {
        let (provider, _) = by_id[&edited.id];
        let record = rig.record(&edited.id).await;
        assert!(record.pending_update.is_none(), "{}", edited.id);
        assert!(
            updated_events.get(&edited.id).copied().unwrap_or(0) <= 1,
            "{}: OrderUpdated duplicated",
            edited.id
        );
        if record.automation == Automation::Suspended {
            continue; // an exception for an operator, counted above
        }
        assert_eq!(record.order.customer.name, edited.customer.name);
        let body = rig
            .sim_order(provider, edited.id.as_str())
            .unwrap()
            .body
            .to_string();
        assert!(
            body.contains(&edited.customer.name),
            "{} ({provider:?}): the edit did not reach the simulator: {body}",
            edited.id
        );
    }

    let cancels: Vec<OrderId> = exported
        .iter()
        .skip(2)
        .step_by(4)
        .map(|(_, o)| o.id.clone())
        .collect();
    figures.cancels = cancels.len();
    let orchestrator = rig.orchestrator.clone();
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

    // 4. Tracking: the simulators move every order along; after each step, `now` moves a day
    //    on (every shipment is due) and sync runs until no batch fails: a shipment whose
    //    batch failed stays due, the others are not due again at the same `now`.
    for _step in 0..4 {
        rig.wapi.tick();
        rig.sphere.tick();
        rig.clock.advance(chrono::Duration::days(1));
        let mut clean = false;
        for _ in 0..MAX_ROUNDS {
            let report = rig.orchestrator.sync_tracking().await.unwrap();
            figures.tracking_rounds += 1;
            figures.tracking_failed_batches += report.errors.len();
            if report.failed == 0 && report.errors.is_empty() {
                clean = true;
                break;
            }
        }
        assert!(clean, "sync_tracking never ran without failures");
    }

    let status_events: Vec<_> = rig
        .events
        .events()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::DeliveryStatusChanged { from, to } => Some((e.order_id?, from, to)),
            _ => None,
        })
        .collect();
    figures.status_events = status_events.len();
    let mut per_order: HashMap<OrderId, Vec<_>> = HashMap::new();
    for (id, from, to) in status_events {
        per_order.entry(id).or_default().push((from, to));
    }
    for id in &cancels {
        let (provider, _) = by_id[id];
        let sim = rig.sim_order(provider, id.as_str()).unwrap();
        let record = rig.record(id).await;
        let cancelled_events = per_order[id]
            .iter()
            .filter(|(_, to)| to.code == StatusCode::Cancelled)
            .count();
        assert_eq!(
            cancelled_events, 1,
            "{id}: cancelled once: {:?}",
            per_order[id]
        );
        assert_eq!(
            record.current_status.as_ref().map(|s| s.code),
            Some(StatusCode::Cancelled),
            "{id}"
        );
        let cancels_at_sim = sim
            .history
            .iter()
            .filter(|s| s.to_lowercase().contains("cancel") || s.to_lowercase() == "void")
            .count();
        assert_eq!(cancels_at_sim, 1, "{id} ({provider:?}): {:?}", sim.history);
    }
    for (provider, order) in &exported {
        let id = &order.id;
        let record = rig.record(id).await;
        let sim = rig.sim_order(*provider, id.as_str()).unwrap();
        let events = per_order.get(id).cloned().unwrap_or_default();
        // A chain: each event starts where the previous one ended (the first one where the
        // export left the record: Sphere answers a create with its first status) and changes
        // something.
        let mut previous = events.first().and_then(|(from, _)| from.clone());
        if let Some(first) = &previous {
            assert_eq!(record.history.first(), Some(&**first), "{id}: {events:?}");
        }
        for (from, to) in &events {
            assert_eq!(from.as_ref(), previous.as_ref(), "{id}: {events:?}");
            assert_ne!(from.as_ref(), Some(to), "{id}: an event without news");
            previous = Some(to.clone());
        }
        assert_eq!(
            previous.as_ref(),
            record.current_status.as_ref(),
            "{id}: the last event is the current status"
        );
        if cancels.contains(id) {
            continue;
        }
        let current = record
            .current_status
            .as_ref()
            .unwrap_or_else(|| panic!("{id}: no status"));
        assert_eq!(
            current.original, sim.status,
            "{id} ({provider:?}): record {current:?}, simulator {sim:?}"
        );
        // No status lost: every raw status the simulator went through is in the history.
        for raw in &sim.history {
            assert!(
                record.history.iter().any(|s| &s.original == raw),
                "{id} ({provider:?}): {raw} lost; record {:?}",
                record.history
            );
        }
    }

    let wapi = rig.wapi.stats();
    let sphere = rig.sphere.stats();
    figures.wapi_faults = wapi.faults;
    figures.sphere_faults = sphere.faults;
    figures.wapi_requests = wapi.total_requests();
    figures.sphere_requests = sphere.total_requests();
    figures.wapi_duplicates_refused = wapi.duplicates_refused;
    figures.sphere_duplicates_refused = sphere.duplicates_refused;
    eprintln!("{figures:#?}\nin {:?}", started.elapsed());
    rig.wapi.shutdown().await;
    rig.sphere.shutdown().await;
    figures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_orders_survive_thirty_percent_faults() {
    let figures = run(500).await;
    assert_eq!(figures.orders, 1_000);
    assert_eq!(figures.exported, figures.orders);
    // The faults did happen, of every kind, and reached the orchestrator.
    for counts in [figures.wapi_faults, figures.sphere_faults] {
        assert!(
            counts.server_errors > 0 && counts.rate_limited > 0,
            "{counts:?}"
        );
        assert!(
            counts.resets > 0 && counts.lost_after_apply > 0,
            "{counts:?}"
        );
        assert!(counts.server_errors_after_apply > 0, "{counts:?}");
    }
    assert!(figures.first_confirm_failures > 0);
    assert!(figures.attached_by_operator > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "5,000 orders: a few minutes; run with --ignored"]
async fn five_thousand_orders_survive_thirty_percent_faults() {
    let figures = run(2_500).await;
    assert_eq!(figures.exported, figures.orders);
}
