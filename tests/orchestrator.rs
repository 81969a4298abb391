//! The orchestrator against `MockProvider`: routing, waybill defaults and validation, strict
//! addresses, exactly-once export, failures and retries, cancel, and the Store suite.

use std::sync::Arc;
use std::time::Duration;

use rust_decimal::Decimal;

mod support;
use support::cod;

use fulfillkit::Error;
use fulfillkit::error::Operation;
use fulfillkit::model::*;
use fulfillkit::orchestrator::*;
use fulfillkit::provider::mock::MockProvider;
use fulfillkit::provider::{CancelOutcome, Capabilities};
use fulfillkit::store::Effects;
use fulfillkit::testkit::{self, sample_order};

fn italy() -> Condition {
    Condition::country(["IT"])
}

struct Setup {
    orchestrator: Orchestrator,
    prepaid: Arc<MockProvider>,
    cod: Arc<MockProvider>,
    events: Arc<CollectingSink>,
    store: Arc<MemoryStore>,
}

/// Two instances of one provider kind for Italy (prepaid / COD), as the issue describes.
fn setup_with(prepaid: MockProvider, cod: MockProvider) -> Setup {
    let prepaid = Arc::new(prepaid);
    let cod = Arc::new(cod);
    let events = Arc::new(CollectingSink::new());
    let store = Arc::new(MemoryStore::new());
    let orchestrator = Orchestrator::builder()
        .instance(
            Instance::new("it-prepaid", "Italy prepaid", prepaid.clone()).with_settings(
                InstanceSettings::default().with_accepted_payment(AcceptedPayment::Prepaid),
            ),
        )
        .instance(
            Instance::new("it-cod", "Italy COD", cod.clone()).with_settings(
                InstanceSettings::default().with_accepted_payment(AcceptedPayment::CashOnDelivery),
            ),
        )
        .rule(RoutingRule::new("italy prepaid", italy(), "it-prepaid"))
        .rule(RoutingRule::new("italy cod", italy(), "it-cod"))
        .store(store.clone())
        .events(events.clone())
        .build()
        .unwrap();
    Setup {
        orchestrator,
        prepaid,
        cod,
        events,
        store,
    }
}

fn setup() -> Setup {
    setup_with(MockProvider::new(), MockProvider::new())
}

// ---------------------------------------------------------------------------------------------
// Routing

#[test]
fn each_condition_kind_and_their_composition() {
    let order = sample_order("SO-1")
        .with_tag("vip")
        .with_custom_field("channel", "web");
    let mut typed = order.clone();
    typed.lines[0].product_type = Some("cosmetics".into());
    let sku = |s: &str| Sku::new(s);
    let cases: Vec<(Condition, &Order, bool)> = vec![
        (Condition::Always, &order, true),
        (italy(), &order, true),
        (
            Condition::CountryIn {
                countries: vec!["it".into()],
            },
            &order,
            true,
        ),
        (Condition::country(["PL"]), &order, false),
        (Condition::payment(PaymentKind::Prepaid), &order, true),
        (
            Condition::payment(PaymentKind::CashOnDelivery),
            &order,
            false,
        ),
        (
            Condition::AnySkuIn {
                skus: vec![sku("X"), sku("Demo Product-1")],
            },
            &order,
            true,
        ),
        (
            Condition::AnySkuIn {
                skus: vec![sku("X")],
            },
            &order,
            false,
        ),
        (
            Condition::AllSkusIn {
                skus: vec![sku("Demo Product-1")],
            },
            &order,
            true,
        ),
        (
            Condition::AllSkusIn {
                skus: vec![sku("X")],
            },
            &order,
            false,
        ),
        (
            Condition::ProductTypeIn {
                types: vec!["cosmetics".into()],
            },
            &typed,
            true,
        ),
        (
            Condition::ProductTypeIn {
                types: vec!["cosmetics".into()],
            },
            &order,
            false,
        ),
        // total is 49.00
        (
            Condition::TotalBetween {
                min: Some(Decimal::new(49, 0)),
                max: Some(Decimal::new(49, 0)),
            },
            &order,
            true,
        ),
        (
            Condition::TotalBetween {
                min: Some(Decimal::new(50, 0)),
                max: None,
            },
            &order,
            false,
        ),
        (
            Condition::TotalBetween {
                min: None,
                max: Some(Decimal::new(4899, 2)),
            },
            &order,
            false,
        ),
        (Condition::tag("vip"), &order, true),
        (Condition::tag("b2b"), &order, false),
        (
            Condition::CustomFieldEquals {
                key: "channel".into(),
                value: "web".into(),
            },
            &order,
            true,
        ),
        (
            Condition::CustomFieldEquals {
                key: "channel".into(),
                value: "app".into(),
            },
            &order,
            false,
        ),
        (
            Condition::All {
                conditions: vec![italy(), Condition::tag("vip")],
            },
            &order,
            true,
        ),
        (
            Condition::All {
                conditions: vec![italy(), Condition::tag("b2b")],
            },
            &order,
            false,
        ),
        (Condition::All { conditions: vec![] }, &order, true),
        (
            Condition::Any {
                conditions: vec![Condition::tag("b2b"), italy()],
            },
            &order,
            true,
        ),
        (Condition::Any { conditions: vec![] }, &order, false),
        (
            Condition::Not {
                condition: Box::new(italy()),
            },
            &order,
            false,
        ),
        (
            Condition::Predicate(Predicate::new("heavy", |o: &Order| {
                o.lines.iter().map(|l| l.quantity).sum::<u32>() >= 2
            })),
            &order,
            true,
        ),
        (
            Condition::Predicate(Predicate::new("huge", |o: &Order| o.lines.len() > 5)),
            &order,
            false,
        ),
    ];
    for (condition, order, expected) in cases {
        assert_eq!(condition.matches(order), expected, "{condition:?}");
    }
}

#[test]
fn conditions_round_trip_as_json_but_predicates_do_not_serialize() {
    let condition = Condition::Any {
        conditions: vec![
            Condition::Not {
                condition: Box::new(Condition::tag("b2b")),
            },
            Condition::TotalBetween {
                min: Some(Decimal::new(10, 0)),
                max: None,
            },
        ],
    };
    let json = serde_json::to_string(&condition).unwrap();
    assert_eq!(serde_json::from_str::<Condition>(&json).unwrap(), condition);
    let rule = RoutingRule::new("r", condition, "i");
    let back: RoutingRule = serde_json::from_str(&serde_json::to_string(&rule).unwrap()).unwrap();
    assert_eq!(back, rule);
    assert!(serde_json::to_string(&Condition::Predicate(Predicate::new("p", |_| true))).is_err());
}

#[test]
fn payment_picks_one_of_two_instances_of_the_same_provider() {
    let s = setup();
    let prepaid = sample_order("SO-1");
    assert_eq!(
        s.orchestrator.route(&prepaid).unwrap(),
        Route {
            instance: "it-prepaid".into(),
            rule: "italy prepaid".into()
        }
    );
    // The first rule matches the country, but its instance refuses COD: the next rule wins.
    let route = s.orchestrator.route(&cod(sample_order("SO-2"))).unwrap();
    assert_eq!(route.instance.as_str(), "it-cod");
}

#[test]
fn cod_is_never_routed_to_a_prepaid_only_instance() {
    let mock = Arc::new(MockProvider::new());
    let o = Orchestrator::builder()
        .instance(Instance::new("prepaid", "p", mock).with_settings(
            InstanceSettings::default().with_accepted_payment(AcceptedPayment::Prepaid),
        ))
        .rule(RoutingRule::new("everything", Condition::Always, "prepaid"))
        .build()
        .unwrap();
    let err = o.route(&cod(sample_order("SO-1"))).unwrap_err();
    assert!(
        matches!(&err, Error::NoRoute { order_id, rules_tried } if order_id == "SO-1" && rules_tried == &["everything"]),
        "{err:?}"
    );
}

#[test]
fn disabled_instances_are_skipped() {
    let mock = Arc::new(MockProvider::new());
    let o = Orchestrator::builder()
        .instance(
            Instance::new("off", "o", mock.clone())
                .with_settings(InstanceSettings::default().with_enabled(false)),
        )
        .instance(Instance::new("on", "o", mock))
        .rule(RoutingRule::new("first", Condition::Always, "off"))
        .rule(RoutingRule::new("second", Condition::Always, "on"))
        .build()
        .unwrap();
    assert_eq!(o.route(&sample_order("SO-1")).unwrap().rule, "second");
}

#[test]
fn build_refuses_unknown_instances_duplicates_and_impossible_strict_mode() {
    let mock = Arc::new(MockProvider::new());
    let no_directory = Arc::new(MockProvider::new().with_capabilities(Capabilities::new(10, 10)));
    let err = Orchestrator::builder()
        .instance(Instance::new("a", "a", mock.clone()))
        .instance(Instance::new("a", "again", mock))
        .instance(
            Instance::new("strict", "s", no_directory)
                .with_settings(InstanceSettings::default().with_strict_addresses(true)),
        )
        .rule(RoutingRule::new("typo", Condition::Always, "b"))
        .build()
        .unwrap_err();
    let paths: Vec<&str> = err.field_errors().iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "instances[1].id",
            "instances[2].settings.strict_addresses",
            "rules[0].instance"
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Export

fn required_courier_form() -> WaybillForm {
    WaybillForm::new(vec![
        WaybillField::new(
            "courier",
            "Courier",
            FieldKind::Select {
                options: vec![SelectOption::plain("SDA"), SelectOption::plain("GLS")],
            },
        )
        .required(),
        WaybillField::new("comment", "Comment", FieldKind::Text { max_len: Some(10) }),
    ])
    .unwrap()
}

fn one_instance(
    mock: Arc<MockProvider>,
    settings: InstanceSettings,
) -> (Orchestrator, Arc<CollectingSink>) {
    let events = Arc::new(CollectingSink::new());
    let o = Orchestrator::builder()
        .instance(Instance::new("only", "only", mock).with_settings(settings))
        .rule(RoutingRule::new("all", Condition::Always, "only"))
        .events(events.clone())
        .build()
        .unwrap();
    (o, events)
}

#[tokio::test]
async fn export_stores_the_record_and_emits_exported() {
    let s = setup();
    let order = sample_order("SO-1");
    let outcome = s.orchestrator.on_order_confirmed(&order).await.unwrap();
    let ExportOutcome::Exported { instance, shipment } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(instance.as_str(), "it-prepaid");
    assert_eq!(s.prepaid.created_count(), 1);
    assert_eq!(s.cod.created_count(), 0);
    let record = s.orchestrator.shipment(&order.id).await.unwrap().unwrap();
    assert_eq!(record.shipment(), Some(&shipment.reference));
    assert_eq!(record.fingerprints, Fingerprints::of(&order));
    assert_eq!(
        record.current_status.as_ref().map(|s| s.code),
        Some(StatusCode::Registered)
    );
    assert_eq!(record.automation, Automation::Active);
    let events = s.events.events();
    assert_eq!(events.len(), 1);
    assert!(
        matches!(&events[0].kind, EventKind::Exported { shipment: r, .. } if *r == shipment.reference)
    );
    assert_eq!(events[0].order_id.as_ref(), Some(&order.id));
    assert_eq!(events[0].automation, Automation::Active);

    // Again: nothing sent, nothing emitted.
    let again = s.orchestrator.on_order_confirmed(&order).await.unwrap();
    assert!(matches!(again, ExportOutcome::AlreadyExported { .. }));
    assert_eq!(s.prepaid.calls_of(Operation::Create).len(), 1);
    assert_eq!(s.events.events().len(), 1);
}

#[tokio::test]
async fn waybill_defaults_fill_a_required_field_and_operator_values_win() {
    let mock = Arc::new(MockProvider::new().with_waybill_form(required_courier_form()));
    let settings = InstanceSettings::default().with_waybill_defaults(
        Waybill::new()
            .with("courier", "SDA")
            .with("comment", "default"),
    );
    let (o, _) = one_instance(mock.clone(), settings);
    let order = sample_order("SO-1");
    let _ = o.on_order_confirmed(&order).await.unwrap();
    let (_, sent) = mock.stored_order(&order.id).unwrap();
    assert_eq!(sent.text("courier"), Some("SDA"));
    assert_eq!(sent.instance.as_ref().map(|i| i.as_str()), Some("only"));

    let second = sample_order("SO-2");
    o.save_waybill(&second.id, Waybill::new().with("courier", "GLS"))
        .await
        .unwrap();
    let _ = o.on_order_confirmed(&second).await.unwrap();
    let (_, sent) = mock.stored_order(&second.id).unwrap();
    assert_eq!(sent.text("courier"), Some("GLS"));
    assert_eq!(sent.text("comment"), Some("default"));
}

#[tokio::test]
async fn a_missing_waybill_field_or_an_invalid_order_refuses_the_export_without_a_call() {
    let mock = Arc::new(MockProvider::new().with_waybill_form(required_courier_form()));
    let (o, events) = one_instance(mock.clone(), InstanceSettings::default());

    let err = o
        .on_order_confirmed(&sample_order("SO-1"))
        .await
        .unwrap_err();
    let paths: Vec<&str> = err.field_errors().iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["waybill.values.courier"]);

    let mut bad = sample_order("SO-2");
    bad.customer.phone = "123".into();
    bad.lines[0].quantity = 0;
    o.save_waybill(
        &bad.id,
        Waybill::new().with("comment", "far too long for it"),
    )
    .await
    .unwrap();
    let err = o.on_order_confirmed(&bad).await.unwrap_err();
    let paths: Vec<&str> = err.field_errors().iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "customer.phone",
            "lines[0].quantity",
            "waybill.values.courier",
            "waybill.values.comment"
        ]
    );
    assert!(
        mock.calls().is_empty(),
        "no provider call: {:?}",
        mock.calls()
    );
    assert!(events.events().is_empty());
    assert!(o.shipment(&bad.id).await.unwrap().is_none());
}

fn directory_entry(id: &str) -> AddressOption {
    AddressOption {
        id: id.into(),
        kind: AddressKind::PickupPoint,
        label: format!("Point {id}"),
        address: sample_order("x").address,
        carrier: None,
        opening_hours: None,
    }
}

#[tokio::test]
async fn strict_addresses_accept_directory_entries_and_refuse_the_rest() {
    let mock = Arc::new(MockProvider::new().with_directory(vec![directory_entry("VE-1")]));
    let (o, _) = one_instance(
        mock.clone(),
        InstanceSettings::default().with_strict_addresses(true),
    );

    let mut chosen = sample_order("SO-1");
    chosen.address = directory_entry("VE-1").to_address();
    assert!(matches!(
        o.on_order_confirmed(&chosen).await.unwrap(),
        ExportOutcome::Exported { .. }
    ));

    let typed_in = sample_order("SO-2");
    let err = o.on_order_confirmed(&typed_in).await.unwrap_err();
    assert_eq!(err.field_errors()[0].path, "address.provider_address_id");

    let mut unknown = sample_order("SO-3");
    unknown.address.provider_address_id = Some("VE-404".into());
    let err = o.on_order_confirmed(&unknown).await.unwrap_err();
    assert!(err.field_errors()[0].reason.contains("VE-404"), "{err}");
    assert_eq!(mock.created_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_confirms_create_once() {
    let s = setup_with(
        MockProvider::new().with_latency(Duration::from_millis(20)),
        MockProvider::new(),
    );
    let orchestrator = Arc::new(s.orchestrator);
    let order = sample_order("SO-RACE");
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (o, order) = (orchestrator.clone(), order.clone());
        tasks.push(tokio::spawn(
            async move { o.on_order_confirmed(&order).await },
        ));
    }
    let mut exported = 0;
    for task in tasks {
        match task.await.unwrap().unwrap() {
            ExportOutcome::Exported { .. } => exported += 1,
            ExportOutcome::AlreadyExported { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(exported, 1);
    assert_eq!(s.prepaid.calls_of(Operation::Create).len(), 1);
    assert_eq!(s.events.events().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_orchestrators_sharing_a_store_create_once() {
    let mock = Arc::new(MockProvider::new().with_latency(Duration::from_millis(20)));
    let store = Arc::new(MemoryStore::new());
    let replica = || {
        Arc::new(
            Orchestrator::builder()
                .instance(Instance::new("only", "only", mock.clone()))
                .rule(RoutingRule::new("all", Condition::Always, "only"))
                .store(store.clone())
                .build()
                .unwrap(),
        )
    };
    let (a, b) = (replica(), replica());
    let order = sample_order("SO-TWO");
    let mut tasks = Vec::new();
    for i in 0..20 {
        let o = if i % 2 == 0 { a.clone() } else { b.clone() };
        let order = order.clone();
        tasks.push(tokio::spawn(
            async move { o.on_order_confirmed(&order).await },
        ));
    }
    for task in tasks {
        let outcome = task.await.unwrap().unwrap();
        assert!(
            matches!(
                outcome,
                ExportOutcome::Exported { .. }
                    | ExportOutcome::AlreadyExported { .. }
                    | ExportOutcome::InProgress
            ),
            "{outcome:?}"
        );
    }
    assert_eq!(mock.calls_of(Operation::Create).len(), 1);
    assert!(
        store
            .get(&order.id)
            .await
            .unwrap()
            .unwrap()
            .shipment()
            .is_some()
    );
}

#[tokio::test]
async fn a_provider_failure_is_recorded_emitted_and_retried() {
    let s = setup();
    let order = sample_order("SO-1");
    s.prepaid.fail_next(
        Operation::Create,
        Error::Timeout {
            what: "POST /outbounds".into(),
        },
        1,
    );
    let err = s.orchestrator.on_order_confirmed(&order).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }));
    let record = s.store.get(&order.id).await.unwrap().unwrap();
    assert!(
        matches!(&record.export, ExportState::Failed { retryable: true, attempts: 1, failure, .. } if failure.message.contains("timed out")),
        "{:?}",
        record.export
    );
    assert!(matches!(
        s.events.events()[0].kind,
        EventKind::ExportFailed {
            retryable: true,
            ..
        }
    ));

    // A non-retryable failure is kept but not retried.
    let other = sample_order("SO-2");
    s.prepaid.fail_next(
        Operation::Create,
        Error::Unauthenticated {
            provider: "mock".into(),
        },
        1,
    );
    s.orchestrator.on_order_confirmed(&other).await.unwrap_err();

    let report = s.orchestrator.retry_failed_exports().await.unwrap();
    assert_eq!(
        (
            report.attempted,
            report.exported,
            report.failed,
            report.skipped,
            report.abandoned
        ),
        (1, 1, 0, 1, 0)
    );
    let record = s.store.get(&order.id).await.unwrap().unwrap();
    assert!(record.shipment().is_some());
    assert!(matches!(
        s.events.events().last().unwrap().kind,
        EventKind::Exported { .. }
    ));
    assert_eq!(s.prepaid.created_count(), 1);
    // Nothing left to retry.
    let again = s.orchestrator.retry_failed_exports().await.unwrap();
    assert_eq!(again.attempted, 0);
}

#[tokio::test]
async fn manual_export_to_a_chosen_instance() {
    let s = setup();
    let order = sample_order("SO-1");
    let outcome = s
        .orchestrator
        .export_to(&order, "it-cod", &Waybill::new())
        .await
        .unwrap();
    assert!(
        matches!(outcome, ExportOutcome::Exported { ref instance, .. } if instance.as_str() == "it-cod")
    );
    assert_eq!(s.cod.created_count(), 1);
    let err = s
        .orchestrator
        .export_to(&order, "nope", &Waybill::new())
        .await;
    // Already exported: the instance is not even looked at.
    assert!(matches!(err, Ok(ExportOutcome::AlreadyExported { .. })));
    let err = s
        .orchestrator
        .export_to(&sample_order("SO-2"), "nope", &Waybill::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }));
}

#[tokio::test]
async fn cancel_passes_too_late_through_and_records_a_cancellation() {
    let s = setup();
    let a = sample_order("SO-1");
    let b = sample_order("SO-2");
    let _ = s.orchestrator.on_order_confirmed(&a).await.unwrap();
    let _ = s.orchestrator.on_order_confirmed(&b).await.unwrap();
    assert_eq!(
        s.orchestrator.cancel(&a.id).await.unwrap(),
        CancelOutcome::Cancelled {
            state: Some("Cancelled".into())
        }
    );
    let record = s.store.get(&a.id).await.unwrap().unwrap();
    assert_eq!(
        record.current_status.map(|s| s.code),
        Some(StatusCode::Cancelled)
    );
    assert!(matches!(
        s.events.events().last().unwrap().kind,
        EventKind::DeliveryStatusChanged { ref to, .. } if to.code == StatusCode::Cancelled
    ));

    s.prepaid.advance(&b.id, StatusCode::Packed).unwrap();
    assert!(matches!(
        s.orchestrator.cancel(&b.id).await.unwrap(),
        CancelOutcome::TooLate { .. }
    ));
    assert!(matches!(
        s.orchestrator.cancel("SO-404").await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn a_stale_intent_is_taken_over_but_a_fresh_one_is_left_alone() {
    let store = Arc::new(MemoryStore::new());
    let mock = Arc::new(MockProvider::new());
    let order = sample_order("SO-1");
    let mut intent = testkit::sample_record(
        "SO-1",
        "only",
        ExportState::Exporting {
            since: chrono::Utc::now(),
            owner: None,
        },
    );
    intent.order = order.clone().into();
    store.insert(intent, Effects::none()).await.unwrap();
    let o = Orchestrator::builder()
        .instance(Instance::new("only", "only", mock.clone()))
        .rule(RoutingRule::new("all", Condition::Always, "only"))
        .store(store.clone())
        .stale_intent_after(Duration::from_secs(3600))
        .build()
        .unwrap();
    assert_eq!(
        o.on_order_confirmed(&order).await.unwrap(),
        ExportOutcome::InProgress
    );
    assert_eq!(mock.created_count(), 0);
    let o = Orchestrator::builder()
        .instance(Instance::new("only", "only", mock.clone()))
        .rule(RoutingRule::new("all", Condition::Always, "only"))
        .store(store)
        .stale_intent_after(Duration::ZERO)
        .build()
        .unwrap();
    assert!(matches!(
        o.on_order_confirmed(&order).await.unwrap(),
        ExportOutcome::Exported { .. }
    ));
    assert_eq!(mock.created_count(), 1);
}

#[tokio::test]
async fn memory_store_passes_the_store_suite() {
    testkit::run_store_suite(&MemoryStore::new()).await;
}

#[tokio::test]
async fn reconcile_completes_intents_left_by_a_crash_without_a_second_order() {
    use fulfillkit::provider::FulfillmentProvider;
    let store = Arc::new(MemoryStore::new());
    let mock = Arc::new(MockProvider::new());
    // A provider that cannot de-duplicate (as Wapi): it refuses the number it already has.
    let refusing = Arc::new(MockProvider::new());
    refusing.fail_next(
        Operation::Create,
        Error::Conflict {
            message: "order SO-3 already exists".into(),
        },
        10,
    );
    let events = Arc::new(CollectingSink::new());
    // A process created SO-1 at the provider, then died before saving the record.
    let crashed = sample_order("SO-1");
    let created = mock.create_order(&crashed, &Waybill::new()).await.unwrap();
    let old = chrono::Utc::now() - chrono::Duration::minutes(30);
    let intent = |id: &str, instance: &str| {
        let mut r = testkit::sample_record(
            id,
            instance,
            ExportState::Exporting {
                since: old,
                owner: None,
            },
        );
        r.order = sample_order(id).into();
        r
    };
    store
        .insert(intent("SO-1", "only"), Effects::none())
        .await
        .unwrap();
    // Another died before the create: the provider never saw SO-2.
    store
        .insert(intent("SO-2", "only"), Effects::none())
        .await
        .unwrap();
    store
        .insert(intent("SO-3", "refusing"), Effects::none())
        .await
        .unwrap();
    // A fresh intent belongs to a live replica.
    let mut fresh = intent("SO-4", "only");
    fresh.export = ExportState::Exporting {
        since: chrono::Utc::now(),
        owner: None,
    };
    store.insert(fresh, Effects::none()).await.unwrap();

    let o = Orchestrator::builder()
        .instance(Instance::new("only", "only", mock.clone()))
        .instance(Instance::new("refusing", "refusing", refusing.clone()))
        .store(store.clone())
        .events(events.clone())
        .build()
        .unwrap();
    let report = o.reconcile(Duration::from_secs(600)).await.unwrap();
    assert_eq!(
        (
            report.found,
            report.exported,
            report.failed,
            report.left_alone
        ),
        (4, 2, 1, 1)
    );
    assert_eq!(mock.created_count(), 2, "SO-1 once (reused) and SO-2");
    assert_eq!(mock.calls_of(Operation::Create).len(), 3);
    let first = store.get(&"SO-1".into()).await.unwrap().unwrap();
    assert_eq!(
        first.shipment(),
        Some(&created.reference),
        "the existing shipment was reused"
    );
    let flagged = store.get(&"SO-3".into()).await.unwrap().unwrap();
    assert!(
        matches!(&flagged.export, ExportState::Failed { retryable: false, failure, .. } if failure.message.contains("SO-3")),
        "{:?}",
        flagged.export
    );
    let failed: Vec<_> = events
        .events()
        .into_iter()
        .filter(|e| {
            matches!(
                e.kind,
                EventKind::ExportFailed {
                    retryable: false,
                    ..
                }
            )
        })
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        failed[0].order_id.as_ref().map(|o| o.as_str()),
        Some("SO-3")
    );
    let fresh = store.get(&"SO-4".into()).await.unwrap().unwrap();
    assert!(matches!(fresh.export, ExportState::Exporting { .. }));
    assert_eq!(refusing.created_count(), 0);
}
