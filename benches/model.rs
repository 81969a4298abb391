//! Cost of validating an order and a waybill, against cloning the same order (the cost of
//! merely touching its data) as the baseline measured in the same run.

use criterion::{Criterion, criterion_group, criterion_main};
use fulfillkit::model::{FieldKind, SelectOption, Waybill, WaybillField, WaybillForm};
use fulfillkit::testkit::sample_order;
use std::hint::black_box;

fn validation(c: &mut Criterion) {
    let order = sample_order("SO-BENCH-1");
    let form = WaybillForm::new(vec![
        WaybillField::new("comment", "Comment", FieldKind::Text { max_len: Some(200) }),
        WaybillField::new(
            "courier",
            "Courier",
            FieldKind::Select {
                options: vec![SelectOption::plain("SDA"), SelectOption::plain("DPD PL")],
            },
        )
        .required(),
        WaybillField::new("date", "Date", FieldKind::Date),
    ])
    .expect("a valid form");
    let waybill = Waybill::new()
        .with("comment", "ring twice")
        .with("courier", "SDA")
        .with("date", "2024-05-10");

    let mut group = c.benchmark_group("validation");
    group.bench_function("baseline_order_clone", |b| {
        b.iter(|| black_box(&order).clone())
    });
    group.bench_function("order_validate", |b| {
        b.iter(|| black_box(&order).validate())
    });
    group.bench_function("waybill_validate", |b| {
        b.iter(|| form.validate(black_box(&waybill)))
    });
    group.finish();
}

criterion_group!(benches, validation);
criterion_main!(benches);
