//! Orchestrator CPU per export: `on_order_confirmed` (route, waybill, validation, intent,
//! create, record, event) against `MockProvider` with no latency, beside the baseline of
//! calling the same provider's `create_order` directly, measured in the same run.
//!
//! Each sample starts from a fresh provider (and orchestrator) and times only the calls, the
//! orders being made beforehand: one provider and store growing over millions of iterations
//! made both figures swing by a factor of five as their maps were rehashed.
//!
//! Run: `cargo bench --bench export`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use fulfillkit::model::{Order, Waybill};
use fulfillkit::orchestrator::{Condition, Instance, Orchestrator, RoutingRule};
use fulfillkit::provider::FulfillmentProvider;
use fulfillkit::provider::mock::MockProvider;
use fulfillkit::testkit::sample_order;

fn orders(prefix: &str, n: u64) -> Vec<Order> {
    (0..n)
        .map(|i| sample_order(&format!("{prefix}-{i}")))
        .collect()
}

fn export(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("export");
    group.bench_function("baseline_provider_create", |b| {
        b.iter_custom(|iters| {
            let mock = MockProvider::new();
            let orders = orders("B", iters);
            let waybill = Waybill::new();
            runtime.block_on(async {
                let started = Instant::now();
                for order in &orders {
                    let _ = std::hint::black_box(mock.create_order(order, &waybill).await);
                }
                started.elapsed()
            })
        })
    });
    group.bench_function("on_order_confirmed", |b| {
        b.iter_custom(|iters| {
            let mock = Arc::new(MockProvider::new());
            let orchestrator = Orchestrator::builder()
                .instance(Instance::new("only", "only", mock))
                .rule(RoutingRule::new("all", Condition::Always, "only"))
                .build()
                .expect("build");
            let orders = orders("O", iters);
            runtime.block_on(async {
                let started = Instant::now();
                for order in &orders {
                    let _ = std::hint::black_box(orchestrator.on_order_confirmed(order).await);
                }
                started.elapsed()
            })
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(8));
    targets = export
}
criterion_main!(benches);
