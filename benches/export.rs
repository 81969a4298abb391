//! Orchestrator CPU per export: `on_order_confirmed` (route, waybill, validation, intent,
//! create, record, event) against `MockProvider` with no latency, beside the baseline of
//! calling the same provider's `create_order` directly, measured in the same run.
//!
//! Run: `cargo bench --bench export`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{Criterion, criterion_group, criterion_main};
use fulfillkit::model::Waybill;
use fulfillkit::orchestrator::{Condition, Instance, Orchestrator, RoutingRule};
use fulfillkit::provider::FulfillmentProvider;
use fulfillkit::provider::mock::MockProvider;
use fulfillkit::testkit::sample_order;

fn export(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mock = Arc::new(MockProvider::new());
    let orchestrator = Orchestrator::builder()
        .instance(Instance::new("only", "only", mock.clone()))
        .rule(RoutingRule::new("all", Condition::Always, "only"))
        .build()
        .expect("build");
    let next = AtomicU64::new(0);
    let order_for = |prefix: &str| {
        let n = next.fetch_add(1, Ordering::Relaxed);
        sample_order(&format!("{prefix}-{n}"))
    };
    let mut group = c.benchmark_group("export");
    group.bench_function("baseline_provider_create", |b| {
        b.iter_batched(
            || order_for("B"),
            |order| runtime.block_on(mock.create_order(&order, &Waybill::new())),
            criterion::BatchSize::SmallInput,
        )
    });
    group.bench_function("on_order_confirmed", |b| {
        b.iter_batched(
            || order_for("O"),
            |order| runtime.block_on(orchestrator.on_order_confirmed(&order)),
            criterion::BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, export);
criterion_main!(benches);
