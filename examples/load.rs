//! Load harness of issues #11 and #18: the wire figures, against the bundled simulators over
//! loopback and against `MockProvider`, each printed beside its bound and beside a naive
//! baseline measured in the same run.
//!
//! ```text
//! cargo run --release --example load                         # defaults: a few minutes
//! cargo run --release --example load -- --scenario a --shipments 100000   # the issue's figures
//! ```
//!
//! **A. Tracking, on realistic work.** `--shipments` orders over `--instances` instances are
//! exported with no latency; every shipment then carries ten statuses (A1: `--instances` Wapi
//! simulators whose orders go through ten lifecycle steps, all Wapi because Sphere reads one
//! order per request and its bound would be another formula; A2: `MockProvider` instances,
//! nine statuses pushed per order with a carrier and the shipment's own tracking number). One
//! unmeasured `sync_tracking()` loads the histories into the store. Then `--rounds` measured
//! rounds: before each, the orchestrator's clock moves 3 h on (every shipment is due) and
//! about `--moving` percent of the shipments gain a status, so each round merges news,
//! reports changes and writes them. No rate limit (`with_rate_limit(None)`: the adapters
//! default to 5 requests/s). Printed per round and as medians: wall time against the bound
//! `ceil(ceil(N / instances / batch) / concurrency) × latency` (instances side by side), the
//! CPU used per shipment (fulfillkit's threads and the simulators' threads separately: the
//! simulators run on their own tokio runtime, threads named `sim`; `MockProvider` runs in
//! fulfillkit's threads and counts there), and a naive baseline over the simulators: one
//! `track(&[one])` request per shipment, one after the other, as an hourly cron integration
//! does it, timed over `--naive-shipments` and extrapolated to N (it only asks; it stores
//! nothing, which favours it). `--backend sim|mock` runs one of the two. `--backend postgres`
//! (feature `postgres`) runs A2 twice in the same run, over `MemoryStore` and over `PgStore`
//! (`DATABASE_URL`, or a throwaway cluster started from the machine's PostgreSQL binaries
//! like the tests do), and prints the database round trips per provider batch (statements
//! the store sent, `PgStore::round_trips`, over tracking requests).
//!
//! **B. Confirmation latency.** A fresh Wapi simulator with `--latency-ms`; `--orders`
//! confirmations sent open-loop at `--rate` per second (each spawned at its scheduled time,
//! whether or not the previous ones returned), after `--warmup` unrecorded ones at the same rate
//! (the connection pool of a host in steady state is warm). Per order: the time
//! `on_order_confirmed` takes until it returns `Exported` (judged against `latency + 2 ms`), and
//! the time from its scheduled start (which also counts the harness's timer, up to ~1 ms late).
//! Baseline: `--naive-orders` confirmations one after the other. With `--backend postgres`,
//! B runs over `MemoryStore` and then over `PgStore` (a fresh simulator each).
//!
//! CPU time comes from `/proc/self/task/*/schedstat` (nanoseconds), or, where that is missing,
//! from `/proc/self/task/*/stat` utime + stime in clock ticks (`getconf CLK_TCK`, else 100).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use fulfillkit::error::Operation;
use fulfillkit::model::{DeliveryStatus, ShipmentRef, StatusCode};
use fulfillkit::orchestrator::{Condition, ExportOutcome, Instance, Orchestrator, RoutingRule};
use fulfillkit::provider::mock::MockProvider;
use fulfillkit::provider::{Capabilities, FulfillmentProvider};
use fulfillkit::simulator::{Faults, Lifecycle, Step, WapiSimulator, WapiSimulatorBuilder};
use fulfillkit::testkit::{TestClock, sample_order};
use fulfillkit::{Error, Result};

const USAGE: &str = "\
usage: cargo run --release --example load -- [options]

  --shipments N        shipments tracked in scenario A (default 20000; the issue: 100000)
  --instances N        Wapi simulators / instances in scenario A (default 4)
  --latency-ms N       simulator latency per request, both scenarios (default 20)
  --batch N            shipments per tracking request (default 50, the Wapi adapter's)
  --concurrency N      tracking requests in flight per instance (default 4)
  --naive-shipments N  shipments tracked one by one for the baseline (default 200)
  --export-parallel N  confirmations in flight while setting scenario A up (default 64)
  --rate N             confirmations per second in scenario B (default 1000)
  --orders N           confirmations measured in scenario B (default 5000)
  --warmup N           unrecorded confirmations before them (default 500)
  --naive-orders N     sequential confirmations for the baseline (default 200)
  --rounds N           measured tracking rounds in scenario A (default 3)
  --moving PCT         share of shipments gaining a status each round (default 10)
  --backend sim|mock|both|postgres  what scenario A tracks over (default both); postgres:
                       MockProvider over MemoryStore and over PgStore, and B over both
  --scenario a|b|both  what to run (default both)";

#[derive(Debug, Clone)]
struct Options {
    shipments: usize,
    instances: usize,
    latency: Duration,
    batch: usize,
    concurrency: usize,
    naive_shipments: usize,
    export_parallel: usize,
    rate: u32,
    orders: usize,
    warmup: usize,
    naive_orders: usize,
    rounds: usize,
    moving: usize,
    over_simulators: bool,
    over_mock: bool,
    postgres: bool,
    run_a: bool,
    run_b: bool,
}

fn options() -> std::result::Result<Options, String> {
    let mut o = Options {
        shipments: 20_000,
        instances: 4,
        latency: Duration::from_millis(20),
        batch: 50,
        concurrency: 4,
        naive_shipments: 200,
        export_parallel: 64,
        rate: 1000,
        orders: 5000,
        warmup: 500,
        naive_orders: 200,
        rounds: 3,
        moving: 10,
        over_simulators: true,
        over_mock: true,
        postgres: false,
        run_a: true,
        run_b: true,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--help" || arg == "-h" {
            return Err(String::new());
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{arg}: a value is missing"))?;
        let number = || {
            value
                .trim()
                .parse::<usize>()
                .map_err(|_| format!("{arg}: cannot read {value:?} as a number"))
        };
        let positive = || {
            number().and_then(|n| {
                (n > 0)
                    .then_some(n)
                    .ok_or(format!("{arg}: must be at least 1"))
            })
        };
        match arg.as_str() {
            "--shipments" => o.shipments = positive()?,
            "--instances" => o.instances = positive()?,
            "--latency-ms" => o.latency = Duration::from_millis(number()? as u64),
            "--batch" => o.batch = positive()?,
            "--concurrency" => o.concurrency = positive()?,
            "--naive-shipments" => o.naive_shipments = positive()?,
            "--export-parallel" => o.export_parallel = positive()?,
            "--rate" => {
                o.rate = u32::try_from(positive()?).map_err(|_| format!("{arg}: too large"))?
            }
            "--orders" => o.orders = positive()?,
            "--warmup" => o.warmup = number()?,
            "--naive-orders" => o.naive_orders = positive()?,
            "--rounds" => o.rounds = positive()?,
            "--moving" => {
                o.moving = number()?;
                if o.moving > 100 {
                    return Err(format!("{arg}: a percentage, 0 to 100"));
                }
            }
            "--backend" => match value.as_str() {
                "sim" => (o.over_simulators, o.over_mock) = (true, false),
                "mock" => (o.over_simulators, o.over_mock) = (false, true),
                "both" => (o.over_simulators, o.over_mock) = (true, true),
                "postgres" if cfg!(feature = "postgres") => {
                    (o.over_simulators, o.over_mock, o.postgres) = (false, true, true)
                }
                "postgres" => return Err(format!("{arg} postgres needs --features postgres")),
                _ => return Err(format!("{arg}: sim, mock, both or postgres, not {value:?}")),
            },
            "--scenario" => match value.as_str() {
                "a" | "A" => (o.run_a, o.run_b) = (true, false),
                "b" | "B" => (o.run_a, o.run_b) = (false, true),
                "both" => (o.run_a, o.run_b) = (true, true),
                _ => return Err(format!("{arg}: a, b or both, not {value:?}")),
            },
            _ => return Err(format!("unknown option {arg}")),
        }
    }
    o.naive_shipments = o.naive_shipments.min(o.shipments);
    Ok(o)
}

/// One line of the final table.
struct Row {
    figure: String,
    goal: String,
    measured: String,
    verdict: &'static str,
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

fn main() -> Result<()> {
    let options = match options() {
        Ok(options) => options,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("{message}\n");
            }
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    // Two runtimes, so that the CPU of the simulators (threads `sim`) and of fulfillkit and
    // the harness (threads `fk`, and the main thread) can be told apart.
    let simulators = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("sim")
        .enable_all()
        .build()
        .map_err(|e| Error::transport("simulator runtime", e))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("fk")
        .enable_all()
        .build()
        .map_err(|e| Error::transport("fulfillkit runtime", e))?;
    let sim = simulators.handle().clone();
    let mut rows = Vec::new();
    let machine = machine();
    println!("machine: {machine}");
    println!("options: {options:?}");
    println!("rate limit: none (with_rate_limit(None)); the adapters' default is 5 requests/s\n");
    #[cfg(feature = "postgres")]
    let database = if options.postgres {
        Some(pg::TestDatabase::start("load").ok_or_else(|| {
            Error::protocol("--backend postgres: no DATABASE_URL and no PostgreSQL binaries")
        })?)
    } else {
        None
    };
    #[cfg(feature = "postgres")]
    let stores = Stores {
        url: database.as_ref().map(|d| d.url().to_owned()),
    };
    #[cfg(not(feature = "postgres"))]
    let stores = Stores {};
    if options.run_a {
        rows.extend(runtime.block_on(tracking(&options, &sim, &stores))?);
    }
    if options.run_b {
        rows.extend(runtime.block_on(confirmations(&options, &sim, None))?);
        #[cfg(feature = "postgres")]
        if options.postgres {
            let store = runtime.block_on(stores.postgres("confirmations"))?;
            rows.extend(runtime.block_on(confirmations(&options, &sim, Some(store)))?);
        }
    }
    println!("\n== summary ({machine})");
    let widths = [
        rows.iter().map(|r| r.figure.len()).max().unwrap_or(0),
        rows.iter().map(|r| r.goal.len()).max().unwrap_or(0),
        rows.iter().map(|r| r.measured.len()).max().unwrap_or(0),
    ];
    for row in &rows {
        println!(
            "  {:<w0$} | {:<w1$} | {:<w2$} | {}",
            row.figure,
            row.goal,
            row.measured,
            row.verdict,
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
        );
    }
    runtime.shutdown_timeout(Duration::from_secs(1));
    simulators.shutdown_timeout(Duration::from_secs(1));
    #[cfg(feature = "postgres")]
    drop(database);
    Ok(())
}

#[cfg(feature = "postgres")]
#[path = "../tests/support/pg.rs"]
mod pg;

/// Where the PgStore runs of `--backend postgres` keep their tables.
struct Stores {
    #[cfg(feature = "postgres")]
    url: Option<String>,
}

/// A PgStore and a way to count the statements its database committed.
#[cfg(feature = "postgres")]
struct PgRun {
    store: fulfillkit::store::postgres::PgStore,
}

/// Without the `postgres` feature there is no PgStore run.
#[cfg(not(feature = "postgres"))]
enum PgRun {}

/// The store of a run (`None`: the default `MemoryStore`) and its statement count, if any.
fn store_of(pg: &Option<PgRun>) -> Option<Arc<dyn fulfillkit::store::Store>> {
    match pg {
        #[cfg(feature = "postgres")]
        Some(run) => Some(Arc::new(run.store.clone())),
        #[cfg(not(feature = "postgres"))]
        Some(never) => match *never {},
        None => None,
    }
}

async fn statements(pg: &Option<PgRun>) -> Result<Option<i64>> {
    match pg {
        #[cfg(feature = "postgres")]
        Some(run) => run.statements().await.map(Some),
        #[cfg(not(feature = "postgres"))]
        Some(never) => match *never {},
        None => Ok(None),
    }
}

#[cfg(feature = "postgres")]
impl Stores {
    /// A migrated PgStore in a schema of its own.
    async fn postgres(&self, label: &str) -> Result<PgRun> {
        use fulfillkit::store::postgres::{PgPoolOptions, PgStore};
        let url = self
            .url
            .as_deref()
            .ok_or_else(|| Error::protocol("no database"))?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .connect(url)
            .await
            .map_err(|e| Error::store("connect", e))?;
        let store = PgStore::builder(pool)
            .with_schema(pg::fresh_schema(label))
            .build()?;
        store.migrate().await?;
        Ok(PgRun { store })
    }
}

#[cfg(feature = "postgres")]
impl PgRun {
    /// Statements the store has sent so far.
    async fn statements(&self) -> Result<i64> {
        Ok(i64::try_from(self.store.round_trips()).unwrap_or(i64::MAX))
    }
}

/// Starts a Wapi simulator on the simulators' runtime.
async fn start_wapi(
    sim: &tokio::runtime::Handle,
    builder: WapiSimulatorBuilder,
) -> Result<WapiSimulator> {
    sim.spawn(async move { builder.start().await })
        .await
        .map_err(|e| Error::transport("starting a simulator", e))?
}

/// The ten steps every tracked order goes through before the measured rounds.
fn ten_steps() -> Vec<Step> {
    let mut steps = vec![
        Step::new("Pending"),
        Step::new("AssignedToPartner"),
        Step::new("Dispatched"),
        Step::new("InTransit"),
    ];
    steps.extend(
        (1..=6).map(|hub| Step::new("InTransit").with_comment(format!("Arrived at hub {hub}"))),
    );
    steps
}

/// The same ten, then a new step every tick for the share of orders that keep moving.
fn moving_steps() -> Vec<Step> {
    let mut steps = ten_steps();
    steps.extend(
        (7..=40).map(|hub| Step::new("InTransit").with_comment(format!("Arrived at hub {hub}"))),
    );
    steps
}

/// What the measured rounds of one backend came to.
struct Rounds {
    /// Wall time of each round.
    walls: Vec<Duration>,
    /// CPU of fulfillkit's threads (and the harness's) per round, if readable.
    cpu: Vec<Duration>,
    /// CPU of the simulators' threads per round.
    sim_cpu: Vec<Duration>,
    /// Shipments that gained a status, per round.
    moved: Vec<usize>,
    /// Status change events, per round.
    changed: Vec<usize>,
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

/// Runs one unmeasured sync (the store learns every ten-status history), then `o.rounds`
/// measured ones: before each, the clock moves 3 h on (every shipment is due) and `step`
/// gives a share of the shipments a new status.
async fn rounds(
    o: &Options,
    orchestrator: &Arc<Orchestrator>,
    clock: &TestClock,
    mut step: impl FnMut() -> Result<usize>,
) -> Result<Rounds> {
    let sync = async |orchestrator: &Arc<Orchestrator>| -> Result<_> {
        let orchestrator = orchestrator.clone();
        // On a worker of the fulfillkit runtime, as a host runs it.
        let report = tokio::spawn(async move { orchestrator.sync_tracking().await })
            .await
            .map_err(|e| Error::transport("sync task", e))??;
        if report.polled != o.shipments || report.failed != 0 {
            return Err(Error::protocol(format!(
                "the sync polled {} of {} shipments, {} failed: {:?}",
                report.polled, o.shipments, report.failed, report.errors
            )));
        }
        Ok(report)
    };
    clock.advance(chrono::Duration::hours(3));
    let warm = sync(orchestrator).await?;
    println!(
        "  warm-up sync (unmeasured): polled {}, changed {}",
        warm.polled, warm.changed
    );
    let mut rounds = Rounds {
        walls: Vec::new(),
        cpu: Vec::new(),
        sim_cpu: Vec::new(),
        moved: Vec::new(),
        changed: Vec::new(),
    };
    for round in 1..=o.rounds {
        clock.advance(chrono::Duration::hours(3));
        let moved = step()?;
        let cpu_before = cpu();
        let started = Instant::now();
        let report = sync(orchestrator).await?;
        let wall = started.elapsed();
        let used = cpu().zip(cpu_before).map(|(a, b)| a.since(b));
        println!(
            "  round {round}: {moved} shipments gained a status; polled {}, changed {}, requests {}; wall {:.3} s{}",
            report.polled,
            report.changed,
            report.requests,
            wall.as_secs_f64(),
            used.map_or(String::new(), |u| format!(
                "; CPU fulfillkit {:.3} s, simulators {:.3} s ({})",
                u.rest.as_secs_f64(),
                u.simulators.as_secs_f64(),
                u.source
            ))
        );
        rounds.walls.push(wall);
        rounds.moved.push(moved);
        rounds.changed.push(report.changed);
        if let Some(used) = used {
            rounds.cpu.push(used.rest);
            rounds.sim_cpu.push(used.simulators);
        }
    }
    Ok(rounds)
}

/// The rows of one backend's rounds against the bound.
fn tracking_rows(o: &Options, label: &str, rounds: &Rounds, provider_cpu: &str) -> Vec<Row> {
    let per_instance = o.shipments.div_ceil(o.instances);
    let requests_per_instance = per_instance.div_ceil(o.batch);
    let passes = requests_per_instance.div_ceil(o.concurrency);
    let bound = o.latency * passes as u32;
    let wall = median(rounds.walls.clone());
    let ratio = wall.as_secs_f64() / bound.as_secs_f64();
    // Issue #18's goal in memory; issue #19's with PostgreSQL.
    let goal = if label.contains("PgStore") {
        1.25
    } else {
        1.10
    };
    let ratios: Vec<String> = rounds
        .walls
        .iter()
        .map(|w| format!("{:.3}", w.as_secs_f64() / bound.as_secs_f64()))
        .collect();
    println!(
        "  {label}: wall median {:.3} s over {} rounds; bound {:.3} s = ceil(ceil({per_instance} / {}) / {}) = {passes} passes x {} ms; ratio {ratio:.3} (each round: {}; goal <= {goal:.2})",
        wall.as_secs_f64(),
        rounds.walls.len(),
        bound.as_secs_f64(),
        o.batch,
        o.concurrency,
        o.latency.as_millis(),
        ratios.join(", ")
    );
    let mut rows = vec![Row {
        figure: format!(
            "A tracking sync {label}, {} shipments, 10-status histories, ~{}% moving, wall / bound",
            o.shipments, o.moving
        ),
        goal: format!("<= {goal:.2}"),
        measured: format!(
            "{ratio:.3} median of {} rounds ({:.3} s / {:.3} s)",
            rounds.walls.len(),
            wall.as_secs_f64(),
            bound.as_secs_f64()
        ),
        verdict: verdict(ratio <= goal),
    }];
    if !rounds.cpu.is_empty() {
        let per_shipment = |d: Duration| d.as_secs_f64() * 1e6 / o.shipments as f64;
        let ours = per_shipment(median(rounds.cpu.clone()));
        let theirs = per_shipment(median(rounds.sim_cpu.clone()));
        println!(
            "  {label}: CPU per shipment, median of the rounds: fulfillkit {ours:.2} us{provider_cpu}; simulators {theirs:.2} us"
        );
        rows.push(Row {
            figure: format!("A CPU per shipment {label}, fulfillkit threads"),
            goal: "<= 5 us".into(),
            measured: format!("{ours:.2} us{provider_cpu} (simulators {theirs:.2} us more)"),
            verdict: verdict(ours <= 5.0),
        });
    }
    rows
}

/// Scenario A: tracking sync rounds over every shipment of every instance, over the Wapi
/// simulators and over `MockProvider`.
async fn tracking(o: &Options, sim: &tokio::runtime::Handle, stores: &Stores) -> Result<Vec<Row>> {
    let _ = stores;
    let mut rows = Vec::new();
    if o.over_simulators {
        rows.extend(tracking_over_simulators(o, sim).await?);
    }
    if o.over_mock {
        rows.extend(tracking_over_mock(o, None).await?);
        #[cfg(feature = "postgres")]
        if o.postgres {
            let run = stores.postgres("tracking").await?;
            rows.extend(tracking_over_mock(o, Some(run)).await?);
        }
    }
    Ok(rows)
}

/// Exports `o.shipments` orders through `orchestrator`, tagged for `o.instances` instances,
/// `o.export_parallel` at a time; returns the shipments by instance index.
async fn export_all(
    o: &Options,
    orchestrator: &Arc<Orchestrator>,
) -> Result<Vec<(usize, ShipmentRef)>> {
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..o.export_parallel {
        let (orchestrator, next) = (orchestrator.clone(), next.clone());
        let (n, instances) = (o.shipments, o.instances);
        workers.push(tokio::spawn(async move {
            let mut refs = Vec::new();
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= n {
                    return Ok::<_, Error>(refs);
                }
                let order =
                    sample_order(&format!("SO-{k:07}")).with_tag(format!("i{}", k % instances));
                match orchestrator.on_order_confirmed(&order).await? {
                    ExportOutcome::Exported { shipment, .. } => {
                        refs.push((k % instances, shipment.reference))
                    }
                    other => {
                        return Err(Error::protocol(format!("{}: {other:?}", order.id)));
                    }
                }
            }
        }));
    }
    let mut refs: Vec<(usize, ShipmentRef)> = Vec::with_capacity(o.shipments);
    for worker in workers {
        refs.extend(
            worker
                .await
                .map_err(|e| Error::transport("export worker", e))??,
        );
    }
    refs.sort_by(|a, b| a.1.order_id.cmp(&b.1.order_id));
    println!(
        "  setup: {} orders exported in {:.1} s ({:.0} orders/s, no latency)",
        refs.len(),
        started.elapsed().as_secs_f64(),
        refs.len() as f64 / started.elapsed().as_secs_f64()
    );
    Ok(refs)
}

/// The routing rule of instance `i`: orders tagged `i{i}`.
fn rule(i: usize) -> RoutingRule {
    let id = format!("i{i}");
    RoutingRule::new(
        id.as_str(),
        Condition::HasTag { tag: id.clone() },
        id.as_str(),
    )
}

async fn tracking_over_simulators(o: &Options, sim: &tokio::runtime::Handle) -> Result<Vec<Row>> {
    println!(
        "== A1. tracking over the simulators: {} shipments over {} Wapi simulators, {} ms per request, ten statuses each, ~{}% gaining one per round",
        o.shipments,
        o.instances,
        o.latency.as_millis(),
        o.moving
    );
    let clock = TestClock::at(Utc::now());
    let mut simulators = Vec::new();
    let mut providers = Vec::new();
    let mut builder = Orchestrator::builder()
        .tracking_concurrency(o.concurrency)
        .clock(clock.clock());
    let moving = u32::try_from(o.moving).unwrap_or(100);
    for i in 0..o.instances {
        let simulator = start_wapi(
            sim,
            WapiSimulator::builder()
                .with_seed(i as u64 + 1)
                .with_lifecycle_mix([
                    (100 - moving, Lifecycle::new(ten_steps())),
                    (moving, Lifecycle::new(moving_steps())),
                ]),
        )
        .await?;
        let id = format!("i{i}");
        let provider = Arc::new(
            simulator
                .provider_builder()
                .with_rate_limit(None)
                .with_max_track_batch(o.batch)
                .with_instance_label(id.as_str())
                .build()?,
        );
        builder = builder
            .instance(Instance::new(id.as_str(), id.as_str(), provider.clone()))
            .rule(rule(i));
        simulators.push(simulator);
        providers.push(provider);
    }
    let orchestrator = Arc::new(builder.build()?);
    let refs = export_all(o, &orchestrator).await?;
    // Nine steps on: every order has its ten statuses.
    for _ in 0..9 {
        for simulator in &simulators {
            simulator.tick();
        }
    }
    for simulator in &simulators {
        simulator.set_faults(Faults::none().with_latency(o.latency))?;
        simulator.reset_stats();
    }
    let measured = rounds(o, &orchestrator, &clock, || {
        Ok(simulators.iter().map(|s| s.tick()).sum())
    })
    .await?;
    let largest_batch = simulators
        .iter()
        .map(|s| s.stats().largest_track_batch)
        .max()
        .unwrap_or(0);
    println!("  largest tracking batch the simulators saw: {largest_batch}");
    let mut rows = tracking_rows(o, "over the simulators", &measured, "");

    // Naive baseline: one request per shipment, one after the other.
    let sample = &refs[..o.naive_shipments];
    let started = Instant::now();
    for (instance, reference) in sample {
        let updates = providers[*instance]
            .track(std::slice::from_ref(reference))
            .await?;
        if updates.len() != 1 {
            return Err(Error::protocol(format!(
                "{}: {} updates for one shipment",
                reference.order_id,
                updates.len()
            )));
        }
    }
    let naive_each = started.elapsed() / sample.len() as u32;
    let naive_total = naive_each * o.shipments as u32;
    let wall = median(measured.walls.clone());
    let speedup = naive_total.as_secs_f64() / wall.as_secs_f64();
    println!(
        "  naive baseline (sequential, one request per shipment): {:.2} ms per shipment over {} shipments, {:.1} s extrapolated to {}; naive / fulfillkit = {speedup:.0}x",
        naive_each.as_secs_f64() * 1e3,
        sample.len(),
        naive_total.as_secs_f64(),
        o.shipments
    );
    rows.push(Row {
        figure: "A naive sequential / fulfillkit, wall".into(),
        goal: "(ratio)".into(),
        measured: format!(
            "{speedup:.0}x ({:.1} s / {:.3} s)",
            naive_total.as_secs_f64(),
            wall.as_secs_f64()
        ),
        verdict: "-",
    });
    for simulator in simulators {
        simulator.shutdown().await;
    }
    Ok(rows)
}

async fn tracking_over_mock(o: &Options, pg: Option<PgRun>) -> Result<Vec<Row>> {
    let (label, store_name) = match pg {
        Some(_) => ("over MockProvider, PgStore", "PgStore"),
        None => ("over MockProvider", "MemoryStore"),
    };
    println!(
        "\n== A2. tracking over MockProvider, {store_name}: {} shipments over {} instances, {} ms per call, ten statuses each, ~{}% gaining one per round",
        o.shipments,
        o.instances,
        o.latency.as_millis(),
        o.moving
    );
    let clock = TestClock::at(Utc::now());
    let mut mocks = Vec::new();
    let mut builder = Orchestrator::builder()
        .tracking_concurrency(o.concurrency)
        .clock(clock.clock());
    if let Some(store) = store_of(&pg) {
        builder = builder.store(store);
    }
    for i in 0..o.instances {
        let mock = Arc::new(
            MockProvider::new()
                .with_capabilities(Capabilities::all(o.batch, 100))
                .with_operation_latency(Operation::Track, o.latency)
                .with_clock(clock.clock()),
        );
        let id = format!("i{i}");
        builder = builder
            .instance(Instance::new(id.as_str(), id.as_str(), mock.clone()))
            .rule(rule(i));
        mocks.push(mock);
    }
    let orchestrator = Arc::new(builder.build()?);
    let refs = export_all(o, &orchestrator).await?;
    // Nine more statuses each, as a carrier reports them: the hub in the text, the carrier
    // and the shipment's own tracking number.
    let hop = |mock: &MockProvider, reference: &ShipmentRef, hub: usize| {
        let status = DeliveryStatus::new(
            StatusCode::InTransit,
            format!("Arrived at hub {hub}"),
            clock.now() + chrono::Duration::minutes(hub as i64),
        )
        .with_carrier("SDA", Some(format!("SDA{}", reference.provider_ref).into()));
        mock.push_status(&reference.order_id, status)
    };
    for (instance, reference) in &refs {
        for hub in 1..=9 {
            hop(&mocks[*instance], reference, hub)?;
        }
    }
    let mocks_for_rounds = mocks.clone();
    let mut hub = 9;
    let share = (o.moving * o.shipments / 100).max(1);
    let stride = (o.shipments / share).max(1);
    let track_calls = |mocks: &[Arc<MockProvider>]| -> usize {
        mocks
            .iter()
            .map(|m| m.calls_of(Operation::Track).len())
            .sum()
    };
    let statements_before = statements(&pg).await?;
    let calls_before = track_calls(&mocks);
    let measured = rounds(o, &orchestrator, &clock, || {
        hub += 1;
        let mut moved = 0;
        for (instance, reference) in refs.iter().step_by(stride) {
            hop(&mocks_for_rounds[*instance], reference, hub)?;
            moved += 1;
        }
        Ok(moved)
    })
    .await?;
    let mut rows = tracking_rows(o, label, &measured, " (MockProvider's answers included)");
    if let (Some(before), Some(after)) = (statements_before, statements(&pg).await?) {
        let batches = track_calls(&mocks) - calls_before;
        let statements = after - before;
        let per_batch = statements as f64 / batches.max(1) as f64;
        println!(
            "  {label}: {statements} database statements for {batches} provider batches (warm-up and measured rounds): {per_batch:.2} round trips per batch"
        );
        rows.push(Row {
            figure: format!("A database round trips per provider batch {label}"),
            goal: "<= 2".into(),
            measured: format!("{per_batch:.2} ({statements} statements / {batches} batches)"),
            verdict: verdict(per_batch <= 2.0),
        });
    }
    Ok(rows)
}

/// Scenario B: per-order latency of confirmations sent open-loop at a fixed rate.
async fn confirmations(
    o: &Options,
    sim: &tokio::runtime::Handle,
    pg: Option<PgRun>,
) -> Result<Vec<Row>> {
    let store_name = if pg.is_some() {
        "PgStore"
    } else {
        "MemoryStore"
    };
    println!(
        "\n== B. confirmation -> order at the provider, {store_name}: {} orders at {}/s, {} ms per request",
        o.orders,
        o.rate,
        o.latency.as_millis()
    );
    let simulator = start_wapi(
        sim,
        WapiSimulator::builder().with_faults(Faults::none().with_latency(o.latency)),
    )
    .await?;
    let provider = simulator
        .provider_builder()
        .with_rate_limit(None)
        .with_instance_label("wapi")
        .build()?;
    let mut builder = Orchestrator::builder()
        .instance(Instance::new("wapi", "wapi", Arc::new(provider)))
        .rule(RoutingRule::new("all", Condition::Always, "wapi"));
    if let Some(store) = store_of(&pg) {
        builder = builder.store(store);
    }
    let orchestrator = Arc::new(builder.build()?);

    if o.warmup > 0 {
        open_loop(&orchestrator, "WU", o.warmup, o.rate).await?;
    }
    let statements_before = statements(&pg).await?;
    let started = Instant::now();
    let samples = open_loop(&orchestrator, "SO", o.orders, o.rate).await?;
    let took = started.elapsed();
    if let (Some(before), Some(after)) = (statements_before, statements(&pg).await?) {
        println!(
            "  database statements per confirmation: {:.2}",
            (after - before) as f64 / o.orders as f64
        );
    }
    let achieved = o.orders as f64 / took.as_secs_f64();
    let mut call: Vec<Duration> = samples.iter().map(|s| s.call).collect();
    let mut scheduled: Vec<Duration> = samples.iter().map(|s| s.scheduled).collect();
    call.sort();
    scheduled.sort();
    // The issue's goals: 2 ms over the latency in memory, 5 ms with PostgreSQL.
    let goal = o.latency + Duration::from_millis(if pg.is_some() { 5 } else { 2 });
    let p99 = percentile(&call, 0.99);
    println!(
        "  on_order_confirmed: p50 {} p99 {} max {} (goal p99 <= {})",
        ms(percentile(&call, 0.50)),
        ms(p99),
        ms(call.last().copied().unwrap_or_default()),
        ms(goal)
    );
    println!(
        "  from the scheduled start: p50 {} p99 {} max {}",
        ms(percentile(&scheduled, 0.50)),
        ms(percentile(&scheduled, 0.99)),
        ms(scheduled.last().copied().unwrap_or_default())
    );
    println!(
        "  achieved {achieved:.0} orders/s ({} orders, first scheduled to last exported {:.3} s; warm-up {} orders before)",
        o.orders,
        took.as_secs_f64(),
        o.warmup
    );

    // Naive baseline: one confirmation after the other.
    let mut naive = Vec::with_capacity(o.naive_orders);
    let started = Instant::now();
    for k in 0..o.naive_orders {
        let order = sample_order(&format!("NV-{k:07}"));
        let t = Instant::now();
        match orchestrator.on_order_confirmed(&order).await? {
            ExportOutcome::Exported { .. } => naive.push(t.elapsed()),
            other => return Err(Error::protocol(format!("{}: {other:?}", order.id))),
        }
    }
    let naive_rate = o.naive_orders as f64 / started.elapsed().as_secs_f64();
    naive.sort();
    println!(
        "  naive baseline (sequential): {naive_rate:.1} orders/s, p50 {} p99 {}; fulfillkit / naive = {:.1}x",
        ms(percentile(&naive, 0.50)),
        ms(percentile(&naive, 0.99)),
        achieved / naive_rate
    );
    let stats = simulator.stats();
    let creates = stats.requests_to("POST /outbounds");
    let expected = (o.warmup + o.orders + o.naive_orders) as u64;
    println!(
        "  simulator: {creates} creates (expected {expected}), {} duplicated order numbers",
        stats.duplicated_order_numbers().len()
    );
    simulator.shutdown().await;
    Ok(vec![
        Row {
            figure: format!(
                "B confirmation p99 at {}/s ({} orders, {store_name})",
                o.rate, o.orders
            ),
            goal: format!("<= {}", ms(goal)),
            measured: format!(
                "{} (p50 {}, max {}; from schedule p99 {})",
                ms(p99),
                ms(percentile(&call, 0.50)),
                ms(call.last().copied().unwrap_or_default()),
                ms(percentile(&scheduled, 0.99))
            ),
            verdict: verdict(p99 <= goal),
        },
        Row {
            figure: format!("B achieved rate ({store_name})"),
            goal: format!("{}/s", o.rate),
            measured: format!("{achieved:.0}/s"),
            verdict: verdict(achieved >= 0.98 * f64::from(o.rate)),
        },
        Row {
            figure: format!("B fulfillkit / naive sequential, orders/s ({store_name})"),
            goal: "(ratio)".into(),
            measured: format!(
                "{:.1}x ({achieved:.0} / {naive_rate:.1})",
                achieved / naive_rate
            ),
            verdict: "-",
        },
    ])
}

/// The latency of one confirmation.
struct Sample {
    /// From the call to `on_order_confirmed` until it returned.
    call: Duration,
    /// From the time the order was scheduled to be confirmed until it returned.
    scheduled: Duration,
}

/// Confirms `count` orders `{prefix}-k`, one spawned every `1 / rate` s whatever the
/// previous ones are doing, and waits for all of them.
async fn open_loop(
    orchestrator: &Arc<Orchestrator>,
    prefix: &str,
    count: usize,
    rate: u32,
) -> Result<Vec<Sample>> {
    let interval = Duration::from_secs(1) / rate;
    let start = tokio::time::Instant::now() + Duration::from_millis(5);
    let mut tasks = Vec::with_capacity(count);
    for k in 0..count {
        let order = sample_order(&format!("{prefix}-{k:07}"));
        let at = start + interval * k as u32;
        tokio::time::sleep_until(at).await;
        let orchestrator = orchestrator.clone();
        tasks.push(tokio::spawn(async move {
            let called = tokio::time::Instant::now();
            match orchestrator.on_order_confirmed(&order).await? {
                ExportOutcome::Exported { .. } => {
                    let done = tokio::time::Instant::now();
                    Ok(Sample {
                        call: done - called,
                        scheduled: done - at,
                    })
                }
                other => Err(Error::protocol(format!("{}: {other:?}", order.id))),
            }
        }));
    }
    let mut samples = Vec::with_capacity(count);
    for task in tasks {
        samples.push(
            task.await
                .map_err(|e| Error::transport("confirmation task", e))??,
        );
    }
    Ok(samples)
}

/// The `p` quantile of sorted `values` (nearest rank).
fn percentile(values: &[Duration], p: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// CPU time used by this process's threads so far, split by thread name.
#[derive(Debug, Clone, Copy)]
struct Cpu {
    /// Threads named `sim` (the simulators' runtime).
    simulators: Duration,
    /// Every other thread: fulfillkit's runtime (`fk`) and the main thread.
    rest: Duration,
    source: &'static str,
}

impl Cpu {
    fn since(self, before: Cpu) -> Cpu {
        Cpu {
            simulators: self.simulators.saturating_sub(before.simulators),
            rest: self.rest.saturating_sub(before.rest),
            source: self.source,
        }
    }
}

/// Reads `/proc/self/task/*`: `schedstat` (ns on CPU) where the kernel has it, else `stat`
/// utime + stime in clock ticks. `None` where `/proc` is not there.
fn cpu() -> Option<Cpu> {
    let mut total = Cpu {
        simulators: Duration::ZERO,
        rest: Duration::ZERO,
        source: "schedstat",
    };
    for entry in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let path = entry.path();
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        let on_cpu = match std::fs::read_to_string(path.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        {
            Some(ns) => Duration::from_nanos(ns),
            None => {
                total.source = "stat ticks";
                let stat = std::fs::read_to_string(path.join("stat")).ok()?;
                // Fields after the command name in parentheses start at field 3.
                let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
                let ticks =
                    fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
                Duration::from_secs_f64(ticks as f64 / clock_ticks())
            }
        };
        if name.trim_end().starts_with("sim") {
            total.simulators += on_cpu;
        } else {
            total.rest += on_cpu;
        }
    }
    Some(total)
}

/// Clock ticks per second for `/proc/*/stat`: `getconf CLK_TCK`, else 100 (Linux's USER_HZ).
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// `N cores, model name` from `std` and `/proc/cpuinfo`.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cores} cores, {model}")
}
