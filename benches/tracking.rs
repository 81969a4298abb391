//! Tracking benchmarks.
//!
//! - `merge`: statuses merged per second (a 10-status history with a 3-status poll), against
//!   a baseline that only clones and sorts the same statuses by time, measured in the same run.
//! - `sync_tracking`: 100,000 shipments over 4 instances of `MockProvider` with 20 ms latency
//!   per call, batches of 50, 4 requests in flight per instance; every shipment carries ten
//!   statuses and a tenth of them gains one before each sample. The bound is
//!   `ceil(N / batch / instances) / concurrency × latency` per instance (instances run side by
//!   side); the run prints the measured time beside it as a ratio.
//!
//! Run: `cargo bench --bench tracking`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fulfillkit::error::Operation;
use fulfillkit::model::{DeliveryStatus, StatusCode, StatusOrder, merge_statuses};
use fulfillkit::orchestrator::{Condition, Instance, Orchestrator, RoutingRule};
use fulfillkit::provider::Capabilities;
use fulfillkit::provider::mock::MockProvider;
use fulfillkit::testkit::{TestClock, sample_order};
use std::hint::black_box;

fn statuses(n: usize, offset: i64) -> Vec<DeliveryStatus> {
    let t0 = Utc.with_ymd_and_hms(2024, 5, 2, 8, 0, 0).unwrap();
    (0..n)
        .map(|i| {
            let code = StatusCode::ALL[(i * 3) % 14];
            DeliveryStatus::new(
                code,
                format!("status {i}"),
                t0 + chrono::Duration::minutes(i as i64 + offset),
            )
        })
        .collect()
}

fn merge(c: &mut Criterion) {
    let history = statuses(10, 0);
    let poll = statuses(3, 9); // overlaps the last history entry: one duplicate
    let mut group = c.benchmark_group("merge");
    group.throughput(Throughput::Elements((history.len() + poll.len()) as u64));
    group.bench_function("baseline_clone_and_sort_by_time", |b| {
        b.iter(|| {
            let mut all: Vec<DeliveryStatus> = black_box(&history).to_vec();
            all.extend_from_slice(black_box(&poll));
            all.sort_by_key(|s| s.at);
            all
        })
    });
    group.bench_function("merge_statuses", |b| {
        b.iter(|| {
            merge_statuses(
                black_box(&history),
                black_box(&poll),
                StatusOrder::Classification,
            )
        })
    });
    group.finish();
}

const SHIPMENTS: usize = 100_000;
const INSTANCES: usize = 4;
const BATCH: usize = 50;
const CONCURRENCY: usize = 4;
const LATENCY: Duration = Duration::from_millis(20);

fn sync_tracking(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // One world for every sample: each sample moves the clock 3 h on (every shipment is due)
    // and gives a tenth of the shipments a new status first, as a day of deliveries does.
    // Built on first use only: a filtered-out run (`cargo bench -- merge`) builds nothing.
    let world = std::cell::OnceCell::new();
    let measured: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let mut group = c.benchmark_group("sync_tracking");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(30));
    let seen = measured.clone();
    group.bench_function(BenchmarkId::new("mock_20ms_10_statuses", SHIPMENTS), |b| {
        b.iter_custom(|iterations| {
            let world = world.get_or_init(|| runtime.block_on(World::new()));
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                world.move_a_tenth();
                let started = Instant::now();
                let report = runtime
                    .block_on(world.orchestrator.sync_tracking())
                    .expect("sync");
                let took = started.elapsed();
                assert_eq!(report.polled, SHIPMENTS);
                seen.lock().expect("lock").push(took);
                total += took;
            }
            total
        })
    });
    group.finish();
    let runs = measured.lock().expect("lock");
    // Filtered out (`cargo bench -- merge`): no figure to print.
    let Some(best) = runs.iter().min().copied() else {
        return;
    };
    let per_instance = SHIPMENTS / INSTANCES;
    let rounds = per_instance.div_ceil(BATCH).div_ceil(CONCURRENCY);
    let bound = LATENCY * rounds as u32;
    println!(
        "sync_tracking {SHIPMENTS} shipments with 10-status histories, a tenth moving: best {:.3} s, bound {:.3} s ({rounds} rounds x {} ms), ratio {:.3}",
        best.as_secs_f64(),
        bound.as_secs_f64(),
        LATENCY.as_millis(),
        best.as_secs_f64() / bound.as_secs_f64()
    );
}

/// 100,000 exported shipments over 4 mock instances, each with ten statuses, the store
/// already holding them (one sync done).
struct World {
    orchestrator: Orchestrator,
    clock: TestClock,
    mocks: Vec<Arc<MockProvider>>,
    hub: std::sync::atomic::AtomicUsize,
}

impl World {
    async fn new() -> Self {
        let clock = TestClock::at(Utc::now());
        let mut builder = Orchestrator::builder()
            .tracking_concurrency(CONCURRENCY)
            .clock(clock.clock());
        let mut mocks = Vec::new();
        for i in 0..INSTANCES {
            let mock = Arc::new(
                MockProvider::new()
                    .with_capabilities(Capabilities::all(BATCH, 100))
                    .with_operation_latency(Operation::Track, LATENCY)
                    .with_clock(clock.clock()),
            );
            let id = format!("i{i}");
            builder = builder
                .instance(Instance::new(id.as_str(), id.as_str(), mock.clone()))
                .rule(RoutingRule::new(
                    id.as_str(),
                    Condition::HasTag { tag: id.clone() },
                    id.as_str(),
                ));
            mocks.push(mock);
        }
        let orchestrator = builder.build().expect("build");
        for n in 0..SHIPMENTS {
            let order = sample_order(&format!("SO-{n:06}")).with_tag(format!("i{}", n % INSTANCES));
            let _ = orchestrator
                .on_order_confirmed(&order)
                .await
                .expect("export");
        }
        let world = Self {
            orchestrator,
            clock,
            mocks,
            hub: 0.into(),
        };
        for _ in 0..9 {
            world.hop(1);
        }
        world.clock.advance(chrono::Duration::hours(3));
        world
            .orchestrator
            .sync_tracking()
            .await
            .expect("warm-up sync");
        world
    }

    /// Every `stride`-th shipment gains a status at the next hub.
    fn hop(&self, stride: usize) {
        let hub = self.hub.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        for n in (0..SHIPMENTS).step_by(stride) {
            let status = DeliveryStatus::new(
                StatusCode::InTransit,
                format!("Arrived at hub {}", hub % 40),
                self.clock.now() + chrono::Duration::minutes(hub as i64),
            )
            .with_carrier("SDA", Some(format!("SDA{n:07}").into()));
            self.mocks[n % INSTANCES]
                .push_status(&format!("SO-{n:06}").into(), status)
                .expect("push");
        }
    }

    fn move_a_tenth(&self) {
        self.clock.advance(chrono::Duration::hours(3));
        self.hop(10);
    }
}

criterion_group!(benches, merge, sync_tracking);
criterion_main!(benches);
