//! Two real processes of `examples/replica.rs` on one PostgreSQL (a throwaway cluster) and
//! the Sphere and ShipBob simulators injecting faults: 1,000 orders confirmed through both at
//! once (every order on both), one replica SIGKILLed mid-run and restarted, edits through
//! both, tracking rounds on both, then the same replica SIGKILLed again mid-round holding
//! tracking claims. Afterwards every order exists exactly once at its simulator, every record
//! is exported, every status change reached the host's deduplicated sink (at least once,
//! never under two ids), no shipment was polled by both replicas in one round, the killed
//! replica's claims were polled once they expired, and the ShipBob account never saw more
//! than its rate limit, shared through the store. Figures are printed.
//!
//! The processes are this test binary re-run as `replica_child` (below), which serves the
//! example's code: no cargo inside the test.
#![cfg(feature = "postgres")]

mod support;

#[path = "../examples/replica.rs"]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's `main` is not used here"
)]
mod replica;

use std::collections::{BTreeSet, HashMap};
use std::process::Stdio;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use fulfillkit::model::{CartLine, Order};
use fulfillkit::simulator::{Faults, ShipBobSimulator, SphereSimulator};
use fulfillkit::store::postgres::{PgPoolOptions, PgStore};
use fulfillkit::store::{ExportState, Store};
use fulfillkit::testkit::sample_order;
use replica::Answer;
use support::pg::{TestDatabase, fresh_schema};

const CHILD: &str = "FULFILLKIT_REPLICA_CHILD";
const SPHERE_ORDERS: usize = 900;
const SHIPBOB_ORDERS: usize = 100;
/// The ShipBob account's limit as the simulator enforces it: this many requests per second.
const SHIPBOB_LIMIT_PER_SECOND: u32 = 20;
/// What the replicas are configured to send together (below the account's limit, as a host
/// configures it).
const SHIPBOB_RATE: u32 = 12;
const TRACKING_ROUNDS: usize = 3;
const POLL_INTERVAL: Duration = Duration::from_secs(2);
/// Tracking claims hold this long: longer than a replica takes to poll what it claimed, so a
/// live replica's claims never lapse mid-round.
const CLAIM_TTL: Duration = Duration::from_secs(8);

/// A replica process: the example's `serve`, when run by the test below.
#[tokio::test]
#[ignore = "a replica process of `two_replica_processes_…`, started by it"]
async fn replica_child() {
    if std::env::var(CHILD).is_err() {
        return;
    }
    let config = replica::Config::from_env().expect("replica configuration");
    replica::serve(config).await.expect("replica");
}

fn faults(seed: u64) -> Faults {
    Faults::none()
        .with_server_errors(0.05)
        .with_resets(0.03)
        .with_lost_responses(0.03)
        .with_applied_server_errors(0.03)
        .with_seed(seed)
}

/// An order in Columbus, OH, of a product in Sphere's default inventory.
fn sphere_order(i: usize) -> Order {
    let mut order = support::american(sample_order(&format!("S-{i:05}")));
    order.lines = vec![CartLine {
        sku: "ABC-100".into(),
        name: "Widget".into(),
        product_type: None,
        quantity: 2,
        unit_price: Decimal::new(2450, 2),
    }];
    order
}

fn shipbob_order(i: usize) -> Order {
    let mut order = support::shipbob::american(&format!("B-{i:05}"));
    order.tags.insert("shipbob".into());
    order
}

struct Process {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    name: String,
}

struct Env {
    url: String,
    schema: String,
    sphere: String,
    shipbob: String,
}

impl Process {
    async fn start(env: &Env, owner: &str) -> Self {
        let exe = std::env::current_exe().expect("the test binary");
        let mut child = Command::new(exe)
            .args([
                "replica_child",
                "--exact",
                "--ignored",
                "--quiet",
                "--test-threads",
                "1",
            ])
            .env(CHILD, "1")
            .env("DATABASE_URL", &env.url)
            .env("FULFILLKIT_SCHEMA", &env.schema)
            .env("FULFILLKIT_OWNER", owner)
            .env("SPHERE_URL", &env.sphere)
            .env("SHIPBOB_URL", &env.shipbob)
            .env("SHIPBOB_RATE", SHIPBOB_RATE.to_string())
            .env("POLL_INTERVAL_MS", POLL_INTERVAL.as_millis().to_string())
            .env("CLAIM_TTL_MS", CLAIM_TTL.as_millis().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start a replica");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut process = Self {
            child,
            stdin,
            stdout,
            name: owner.to_owned(),
        };
        let ready = process.answer().await;
        assert_eq!(ready.cmd, "ready", "{owner} did not start");
        process
    }

    async fn send(&mut self, command: serde_json::Value) {
        let line = format!("{command}\n");
        self.stdin
            .write_all(line.as_bytes())
            .await
            .expect("send a command");
        self.stdin.flush().await.expect("send a command");
    }

    /// The next answer (libtest's own lines around it are skipped).
    async fn answer(&mut self) -> Answer {
        loop {
            let line = tokio::time::timeout(Duration::from_secs(90), self.stdout.next_line())
                .await
                .unwrap_or_else(|_| panic!("{} did not answer within 90 s", self.name))
                .expect("read an answer")
                .unwrap_or_else(|| panic!("{} exited", self.name));
            if let Some(start) = line.find('{')
                && let Ok(answer) = serde_json::from_str(&line[start..])
            {
                return answer;
            }
            // libtest's lines, and a failing replica's report.
            if !line.trim().is_empty() {
                eprintln!("[{}] {line}", self.name);
            }
        }
    }

    async fn call(&mut self, command: serde_json::Value) -> Answer {
        self.send(command).await;
        self.answer().await
    }

    async fn quit(mut self) {
        self.send(serde_json::json!({"cmd": "quit"})).await;
        let _ = tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await;
    }
}

#[derive(Debug, Default)]
struct Figures {
    confirm_answers: usize,
    killed_after: Duration,
    second_kill: bool,
    restart_confirmed: usize,
    retry_rounds: usize,
    edits_applied: usize,
    polled_per_round: Vec<(usize, usize)>,
    events: i64,
    deliveries: i64,
    status_events: i64,
    shipbob_requests: u64,
    shipbob_seconds: f64,
    shipbob_rate_refusals: u64,
    sphere_requests: u64,
    faults: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replica_processes_one_killed_export_exactly_once_and_deliver_every_event() {
    if std::env::var(CHILD).is_ok() {
        return;
    }
    let Some(db) = TestDatabase::start("replica_processes") else {
        return;
    };
    let started = Instant::now();
    let sphere = SphereSimulator::builder()
        .with_faults(faults(401))
        .start()
        .await
        .expect("sphere simulator");
    let shipbob = ShipBobSimulator::builder()
        .with_faults(faults(402))
        .with_rate_limit(Some(SHIPBOB_LIMIT_PER_SECOND))
        .with_rate_window(Duration::from_secs(1))
        .start()
        .await
        .expect("shipbob simulator");
    let env = Env {
        url: db.url().to_owned(),
        schema: fresh_schema("replicas"),
        sphere: sphere.base_url(),
        shipbob: shipbob.base_url(),
    };
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(db.url())
        .await
        .expect("connect");
    let store = PgStore::builder(pool.clone())
        .with_schema(env.schema.clone())
        .build()
        .expect("store");

    let orders: Vec<Order> = (0..SPHERE_ORDERS)
        .map(sphere_order)
        .chain((0..SHIPBOB_ORDERS).map(shipbob_order))
        .collect();
    let mut figures = Figures::default();

    // Both replicas start at once (migrating one database together) and confirm every order.
    let (mut a, mut b) = tokio::join!(
        Process::start(&env, "replica-a"),
        Process::start(&env, "replica-b")
    );
    let confirm = serde_json::json!({"cmd": "confirm", "orders": orders});
    a.send(confirm.clone()).await;
    b.send(confirm.clone()).await;
    // Replica B dies mid-run: SIGKILL, no clean-up of any kind.
    let kill_at = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    b.child.start_kill().expect("SIGKILL replica-b");
    let _ = b.child.wait().await;
    figures.killed_after = kill_at.elapsed();
    // It comes back under its own name (reconcile at start-up) and is sent again what it had
    // not acknowledged: everything.
    let mut b = Process::start(&env, "replica-b").await;
    let (answer_a, answer_b) = tokio::join!(a.answer(), b.call(confirm));
    figures.confirm_answers = answer_a.ok;
    figures.restart_confirmed = answer_b.ok;

    // Retries until every order is exported (faults fail some confirmations for good).
    for round in 1..=20 {
        let exporting = store.list_exporting(None, 10).await.expect("list");
        let failed = store.list_failed(None, 10).await.expect("list");
        if exporting.is_empty() && failed.is_empty() {
            break;
        }
        figures.retry_rounds = round;
        a.call(serde_json::json!({"cmd": "reconcile"})).await;
        a.call(serde_json::json!({"cmd": "retry"})).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Edits: 100 orders get a new phone number, sent to both replicas at once (the edit lease
    // serializes them; the second finds nothing left to send).
    let edited: Vec<Order> = orders
        .iter()
        .step_by(10)
        .map(|o| {
            let mut o = o.clone();
            o.customer.phone = "+16145550199".into();
            o
        })
        .collect();
    let change = serde_json::json!({"cmd": "change", "orders": edited});
    let (ea, eb) = tokio::join!(a.call(change.clone()), b.call(change));
    figures.edits_applied = ea.ok.max(eb.ok);
    for _ in 0..10 {
        if store
            .list_pending_updates(None, 1)
            .await
            .expect("list")
            .is_empty()
        {
            break;
        }
        a.call(serde_json::json!({"cmd": "retry"})).await;
    }

    // Tracking rounds on both at once, the simulators moving the shipments between rounds.
    for round in 0..TRACKING_ROUNDS {
        sphere.tick();
        shipbob.tick();
        tokio::time::sleep(POLL_INTERVAL + Duration::from_millis(200)).await;
        let track = serde_json::json!({"cmd": "track"});
        let (ta, tb) = tokio::join!(a.call(track.clone()), b.call(track));
        let pa: BTreeSet<&String> = ta.polled.iter().collect();
        let both: Vec<&String> = tb.polled.iter().filter(|id| pa.contains(id)).collect();
        assert!(
            both.is_empty(),
            "round {round}: polled by both replicas: {both:?}"
        );
        figures
            .polled_per_round
            .push((ta.polled.len(), tb.polled.len()));
    }

    // Replica B dies again, in the middle of a tracking round, holding claims: once they
    // expire, the next rounds poll every shipment it held.
    sphere.tick();
    shipbob.tick();
    tokio::time::sleep(POLL_INTERVAL + Duration::from_millis(200)).await;
    let round_start = chrono::Utc::now();
    let track = serde_json::json!({"cmd": "track"});
    a.send(track.clone()).await;
    b.send(track.clone()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    b.child.start_kill().expect("SIGKILL replica-b");
    let _ = b.child.wait().await;
    a.answer().await;
    tokio::time::sleep(CLAIM_TTL).await;
    let mut b = Process::start(&env, "replica-b").await;
    let mut stale = usize::MAX;
    for _ in 0..5 {
        let (_, _) = tokio::join!(a.call(track.clone()), b.call(track.clone()));
        // Active shipments not polled since the round B died in.
        stale = 0;
        for order in &orders {
            if let Some(record) = store.get(&order.id).await.expect("get")
                && record.is_active()
                && record.updated_at < round_start
            {
                stale += 1;
            }
        }
        if stale == 0 {
            break;
        }
    }
    assert_eq!(
        stale, 0,
        "shipments a killed replica had claimed were never polled again"
    );
    figures.second_kill = true;

    // Both deliver what is left in the outbox, then stop.
    for process in [&mut a, &mut b] {
        let answer = process.call(serde_json::json!({"cmd": "reconcile"})).await;
        assert!(answer.errors.is_empty(), "{:?}", answer.errors);
    }
    a.quit().await;
    b.quit().await;

    // Exactly once at the simulators, and every record exported with it.
    let mut numbers: HashMap<String, usize> = HashMap::new();
    for order in sphere.orders().iter().chain(shipbob.orders().iter()) {
        *numbers.entry(order.order_number.clone()).or_default() += 1;
    }
    for order in &orders {
        assert_eq!(
            numbers.get(order.id.as_str()).copied(),
            Some(1),
            "order {} exists exactly once at its simulator",
            order.id
        );
        let record = store
            .get(&order.id)
            .await
            .expect("get")
            .unwrap_or_else(|| panic!("no record of {}", order.id));
        assert!(
            matches!(record.export, ExportState::Exported { .. }),
            "order {} exported: {:?}",
            order.id,
            record.export
        );
    }
    assert_eq!(numbers.len(), orders.len(), "no order the host never sent");

    // Every event delivered (none left in the outbox), none under two ids.
    let far = chrono::Utc::now() + chrono::Duration::days(1);
    let pending = store.pending_events(far, 10).await.expect("pending");
    assert!(pending.is_empty(), "undelivered events: {pending:?}");
    let sink = format!("{}.host_events", env.schema);
    let (events, deliveries): (i64, i64) = sqlx::query_as(&format!(
        "SELECT count(*), coalesce(sum(deliveries), 0)::bigint FROM {sink}"
    ))
    .fetch_one(&pool)
    .await
    .expect("read the sink");
    (figures.events, figures.deliveries) = (events, deliveries);
    let (status_events, distinct_changes): (i64, i64) = sqlx::query_as(&format!(
        "SELECT count(*), count(DISTINCT (order_id, event->'kind'->'to'))
         FROM {sink} WHERE kind = 'delivery_status_changed'"
    ))
    .fetch_one(&pool)
    .await
    .expect("read the sink");
    figures.status_events = status_events;
    assert_eq!(
        status_events, distinct_changes,
        "a status change reached the sink under two event ids"
    );
    let exported_events: i64 = sqlx::query_scalar(&format!(
        "SELECT count(DISTINCT order_id) FROM {sink} WHERE kind = 'exported'"
    ))
    .fetch_one(&pool)
    .await
    .expect("read the sink");
    assert_eq!(
        exported_events as usize,
        orders.len(),
        "one export event per order"
    );
    // Each record's last reported status is in the sink (asked in SQL: the rows are the
    // README's JSON).
    let (reported, missing): (i64, i64) = sqlx::query_as(&format!(
        "SELECT count(*), count(*) FILTER (WHERE NOT EXISTS (
             SELECT 1 FROM {sink} e WHERE e.order_id = s.order_id
               AND e.kind = 'delivery_status_changed'
               AND e.event->'kind'->'to' = s.record->'last_reported'))
         FROM {}.fulfillkit_shipments s WHERE s.record ? 'last_reported'",
        env.schema
    ))
    .fetch_one(&pool)
    .await
    .expect("read the sink");
    assert!(reported > 0, "tracking reported statuses");
    assert_eq!(
        missing, 0,
        "records whose last reported status never reached the sink"
    );

    // The ShipBob account's limit held across both replicas.
    let stats = shipbob.stats();
    figures.shipbob_requests = stats.total_requests();
    figures.shipbob_rate_refusals = stats.rate_limited;
    figures.shipbob_seconds = started.elapsed().as_secs_f64();
    figures.sphere_requests = sphere.stats().total_requests();
    figures.faults = stats.faults.total() + sphere.stats().faults.total();
    assert_eq!(
        stats.rate_limited, 0,
        "the ShipBob simulator refused requests over {SHIPBOB_LIMIT_PER_SECOND}/s"
    );
    println!(
        "replica processes: {} orders ({SPHERE_ORDERS} Sphere, {SHIPBOB_ORDERS} ShipBob) confirmed on both replicas; \
         replica-b SIGKILLed after {:.1} s and restarted, and again mid-tracking (its claims polled after they expired: {}); retry rounds {}; {} edits applied; \
         polled per round (a, b) {:?}, none by both; {} events in the sink ({} deliveries, {} status changes); \
         ShipBob {} requests, {} refused by its {SHIPBOB_LIMIT_PER_SECOND}/s limit (shared budget {SHIPBOB_RATE}/s); \
         Sphere {} requests; {} faults injected; {:.1} s in all",
        orders.len(),
        figures.killed_after.as_secs_f64(),
        figures.second_kill,
        figures.retry_rounds,
        figures.edits_applied,
        figures.polled_per_round,
        figures.events,
        figures.deliveries,
        figures.status_events,
        figures.shipbob_requests,
        figures.shipbob_rate_refusals,
        figures.sphere_requests,
        figures.faults,
        figures.shipbob_seconds,
    );
    // On a database of the host's (DATABASE_URL), leave nothing behind.
    if !db.is_throwaway() {
        sqlx::query(&format!("DROP SCHEMA {} CASCADE", env.schema))
            .execute(&pool)
            .await
            .expect("drop the test schema");
    }
    pool.close().await;
}
