//! Tracking through the orchestrator against `MockProvider`: batching and concurrency per
//! instance, events only on real changes, the merge rules end to end, adaptive stops, pickup
//! points, overrides, failing instances, and push intake racing a poll.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use fulfillkit::Error;
use fulfillkit::error::Operation;
use fulfillkit::model::*;
use fulfillkit::orchestrator::*;
use fulfillkit::provider::Capabilities;
use fulfillkit::provider::mock::MockProvider;
use fulfillkit::store::Effects;
use fulfillkit::testkit::{TestClock, sample_order};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 2, 8, 0, 0).unwrap()
}

fn hours(h: i64) -> chrono::Duration {
    chrono::Duration::hours(h)
}

struct World {
    orchestrator: Orchestrator,
    mocks: Vec<Arc<MockProvider>>,
    events: Arc<CollectingSink>,
    clock: TestClock,
}

impl World {
    /// Moves the clock to `at` and polls what is due then.
    async fn sync(&self, at: DateTime<Utc>) -> fulfillkit::Result<SyncReport> {
        self.clock.set(at);
        self.orchestrator.sync_tracking().await
    }
}

/// One instance per mock, each taking the orders whose tag is its id.
fn world(mocks: Vec<MockProvider>, settings: InstanceSettings) -> World {
    let mocks: Vec<Arc<MockProvider>> = mocks.into_iter().map(Arc::new).collect();
    let events = Arc::new(CollectingSink::new());
    let clock = TestClock::at(t0());
    let mut builder = Orchestrator::builder()
        .events(events.clone())
        .clock(clock.clock())
        .tracking_concurrency(4);
    for (i, mock) in mocks.iter().enumerate() {
        mock.set_now(Some(t0()));
        let id = format!("i{i}");
        builder = builder
            .instance(
                Instance::new(id.as_str(), id.as_str(), mock.clone())
                    .with_settings(settings.clone()),
            )
            .rule(RoutingRule::new(
                id.as_str(),
                Condition::HasTag { tag: id.clone() },
                id.as_str(),
            ));
    }
    World {
        orchestrator: builder.build().unwrap(),
        mocks,
        events,
        clock,
    }
}

async fn export(w: &World, id: &str, instance: usize) -> Order {
    let order = sample_order(id).with_tag(format!("i{instance}"));
    let _ = w.orchestrator.on_order_confirmed(&order).await.unwrap();
    order
}

fn status_events(w: &World) -> Vec<(OrderId, Option<DeliveryStatus>, DeliveryStatus, Automation)> {
    w.events
        .take()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::DeliveryStatusChanged { from, to } => Some((
                e.order_id.unwrap(),
                from.map(Arc::unwrap_or_clone),
                Arc::unwrap_or_clone(to),
                e.automation,
            )),
            _ => None,
        })
        .collect()
}

/// A time after every poll interval, so every active shipment is due.
fn later(h: i64) -> DateTime<Utc> {
    t0() + hours(h)
}

#[tokio::test(start_paused = true)]
async fn a_thousand_shipments_over_three_instances_respect_batches_and_concurrency() {
    let limits = [7, 50, 100];
    let w = world(
        limits
            .iter()
            .map(|&b| {
                MockProvider::new()
                    .with_capabilities(Capabilities::all(b, 100))
                    .with_latency(Duration::from_millis(20))
            })
            .collect(),
        InstanceSettings::default(),
    );
    for n in 0..1000 {
        export(&w, &format!("SO-{n:04}"), n % 3).await;
    }
    w.events.take();
    let report = w.sync(later(3)).await.unwrap();
    assert_eq!(report.polled, 1000);
    assert_eq!(report.failed, 0);
    // The first poll finds the status each shipment was exported with: no news, no event.
    assert_eq!(report.changed, 0);
    assert!(status_events(&w).is_empty());
    for (mock, limit) in w.mocks.iter().zip(limits) {
        let calls = mock.calls_of(Operation::Track);
        let shipments = 1000 / 3 + usize::from(limit == 7); // instance 0 gets 334
        assert_eq!(calls.iter().map(|c| c.batch).sum::<usize>(), shipments);
        assert_eq!(mock.largest_batch(Operation::Track), limit.min(shipments));
        assert_eq!(calls.len(), shipments.div_ceil(limit));
        // Create calls were sequential; the peak comes from tracking.
        let expected_peak = calls.len().min(4);
        assert_eq!(mock.max_in_flight(), expected_peak, "batch limit {limit}");
    }
    assert_eq!(
        report.requests,
        334usize.div_ceil(7) + 333usize.div_ceil(50) + 333usize.div_ceil(100)
    );
}

#[tokio::test]
async fn events_only_on_real_changes() {
    let w = world(vec![MockProvider::new()], InstanceSettings::default());
    let order = export(&w, "SO-1", 0).await;
    w.events.take();
    // The first poll finds the status the export recorded: no news, the first poll included.
    let report = w.sync(later(2)).await.unwrap();
    assert_eq!((report.polled, report.changed), (1, 0));
    assert!(status_events(&w).is_empty());
    let record = w.orchestrator.shipment(&order.id).await.unwrap().unwrap();
    assert_eq!(record.last_reported, record.current_status);

    // Nothing new at the provider: no event.
    let report = w.sync(later(4)).await.unwrap();
    assert_eq!((report.polled, report.changed), (1, 0));
    assert!(status_events(&w).is_empty());

    w.mocks[0].set_now(Some(later(5)));
    w.mocks[0]
        .advance(&order.id, StatusCode::InTransit)
        .unwrap();
    w.sync(later(6)).await.unwrap();
    let moved = status_events(&w);
    assert_eq!(moved.len(), 1);
    assert_eq!(
        moved[0].1.as_ref().map(|s| s.code),
        Some(StatusCode::Registered)
    );
    assert_eq!(moved[0].2.code, StatusCode::InTransit);

    // Not due yet (InTransit polls every 2 h): nothing asked.
    let calls = w.mocks[0].calls_of(Operation::Track).len();
    let report = w.sync(later(7)).await.unwrap();
    assert_eq!(report.polled, 0);
    assert_eq!(w.mocks[0].calls_of(Operation::Track).len(), calls);
}

#[tokio::test]
async fn returned_rewrite_and_back_dated_statuses_end_to_end() {
    let w = world(vec![MockProvider::new()], InstanceSettings::default());
    let order = export(&w, "SO-1", 0).await;
    let mock = &w.mocks[0];
    mock.push_status(
        &order.id,
        DeliveryStatus::new(StatusCode::Returned, "Refused", later(2)),
    )
    .unwrap();
    mock.push_status(
        &order.id,
        DeliveryStatus::new(StatusCode::InTransit, "On the way", later(3)),
    )
    .unwrap();
    // A Delivered reported late, back-dated before the return.
    mock.push_status(
        &order.id,
        DeliveryStatus::new(StatusCode::Delivered, "Delivered", later(1)),
    )
    .unwrap();
    w.events.take();
    w.sync(later(4)).await.unwrap();
    let record = w.orchestrator.shipment(&order.id).await.unwrap().unwrap();
    let current = record.current_status.unwrap();
    assert_eq!(current.code, StatusCode::ReturningToSender);
    assert_eq!(current.original, "On the way");
    assert!(
        record
            .history
            .iter()
            .any(|s| s.code == StatusCode::Delivered && s.at == later(1))
    );
    assert_eq!(status_events(&w).len(), 1);
}

#[tokio::test]
async fn final_statuses_and_old_age_stop_tracking() {
    let w = world(
        vec![MockProvider::new(), MockProvider::new()],
        InstanceSettings::default(),
    );
    let done = export(&w, "SO-DONE", 0).await;
    let old = export(&w, "SO-OLD", 1).await;
    w.mocks[0].advance(&done.id, StatusCode::Delivered).unwrap();
    let report = w.sync(later(2)).await.unwrap();
    assert_eq!(report.stopped, 1, "prepaid Delivered is final");
    let record = w.orchestrator.shipment(&done.id).await.unwrap().unwrap();
    assert!(!record.is_active());
    assert_eq!(record.next_poll_at, None);

    w.events.take();
    let report = w.sync(t0() + chrono::Duration::days(151)).await.unwrap();
    assert_eq!((report.stopped, report.polled), (1, 0));
    let record = w.orchestrator.shipment(&old.id).await.unwrap().unwrap();
    assert!(record.tracking_stopped);
    let events = w.events.take();
    assert!(
        matches!(&events[..], [e] if matches!(&e.kind, EventKind::TrackingStopped { reason } if reason.contains("150 days")))
    );
    // Stopped shipments are never polled again.
    let calls = w.mocks[1].calls_of(Operation::Track).len();
    w.sync(t0() + chrono::Duration::days(160)).await.unwrap();
    assert_eq!(w.mocks[1].calls_of(Operation::Track).len(), calls);
}

#[tokio::test]
async fn cod_delivered_keeps_tracking_until_paid() {
    let w = world(vec![MockProvider::new()], InstanceSettings::default());
    let mut order = sample_order("SO-COD").with_tag("i0");
    order.payment = Payment::CashOnDelivery {
        amount: order.total(),
    };
    let _ = w.orchestrator.on_order_confirmed(&order).await.unwrap();
    w.mocks[0]
        .advance(&order.id, StatusCode::Delivered)
        .unwrap();
    w.sync(later(2)).await.unwrap();
    let record = w.orchestrator.shipment(&order.id).await.unwrap().unwrap();
    assert!(record.is_active());
    assert_eq!(record.next_poll_at, Some(later(2) + hours(6)));
    w.mocks[0].advance(&order.id, StatusCode::Paid).unwrap();
    let report = w.sync(later(9)).await.unwrap();
    assert_eq!(report.stopped, 1);
}

#[tokio::test]
async fn pickup_point_details_reach_the_event() {
    let w = world(vec![MockProvider::new()], InstanceSettings::default());
    let order = export(&w, "SO-1", 0).await;
    let nine = chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap();
    let six = chrono::NaiveTime::from_hms_opt(18, 0, 0).unwrap();
    let point = PickupPoint {
        id: "WAW01A".into(),
        name: "Paczkomat WAW01A".into(),
        address: "ul. Prosta 1, Warszawa".into(),
        postcode: "00-001".into(),
        phones: vec!["+48221234567".into()],
        opening_hours: OpeningHours::on(
            &Weekday::ALL,
            &[TimeRange {
                from: nine,
                to: six,
            }],
        ),
        coordinates: None,
    };
    w.mocks[0]
        .push_status(
            &order.id,
            DeliveryStatus::new(StatusCode::Arrived, "Waiting in the locker", later(1))
                .with_pickup_point(point.clone())
                .with_carrier("Inpost", Some("6800001234".into())),
        )
        .unwrap();
    w.sync(later(2)).await.unwrap();
    let events = status_events(&w);
    let to = &events.last().unwrap().2;
    assert_eq!(to.code, StatusCode::Arrived);
    assert_eq!(to.pickup_point.as_deref(), Some(&point));
    assert_eq!(to.carrier.as_deref(), Some("Inpost"));
    assert!(
        to.pickup_point
            .as_ref()
            .unwrap()
            .opening_hours
            .is_open(Weekday::Monday, nine)
    );
}

#[tokio::test]
async fn unknown_raw_statuses_keep_their_text_and_overrides_apply() {
    let settings = InstanceSettings::default().with_status_override(
        "Error",
        StatusMapping {
            code: StatusCode::Pending,
            problem: Some(Problem::Other("provider error".into())),
        },
    );
    let w = world(
        vec![MockProvider::new(), MockProvider::new()],
        InstanceSettings::default(),
    );
    let o = world(vec![MockProvider::new()], settings);
    let plain = export(&w, "SO-1", 0).await;
    let overridden = export(&o, "SO-2", 0).await;

    w.mocks[0].set_now(Some(later(1)));
    w.mocks[0]
        .advance_raw(&plain.id, "Consegna rimandata dal cliente")
        .unwrap();
    w.sync(later(2)).await.unwrap();
    let current = w
        .orchestrator
        .shipment(&plain.id)
        .await
        .unwrap()
        .unwrap()
        .current_status
        .unwrap();
    assert_eq!(current.code, StatusCode::Unknown);
    assert_eq!(current.original, "Consegna rimandata dal cliente");

    o.mocks[0].set_now(Some(later(1)));
    o.mocks[0].advance_raw(&overridden.id, "Error").unwrap();
    o.sync(later(2)).await.unwrap();
    let current = o
        .orchestrator
        .shipment(&overridden.id)
        .await
        .unwrap()
        .unwrap()
        .current_status
        .unwrap();
    assert_eq!(current.code, StatusCode::Pending);
    assert_eq!(current.original, "Error");
    assert_eq!(
        current.problem,
        Some(Problem::Other("provider error".into()))
    );
}

#[tokio::test]
async fn one_failing_instance_does_not_stop_the_others() {
    let w = world(
        vec![
            MockProvider::new(),
            MockProvider::new(),
            MockProvider::new(),
        ],
        InstanceSettings::default(),
    );
    let orders = [
        export(&w, "SO-0", 0).await,
        export(&w, "SO-1", 1).await,
        export(&w, "SO-2", 2).await,
    ];
    w.mocks[1].fail_next(
        Operation::Track,
        Error::Timeout {
            what: "track".into(),
        },
        1,
    );
    for (i, order) in orders.iter().enumerate() {
        w.mocks[i]
            .advance(&order.id, StatusCode::InTransit)
            .unwrap();
    }
    w.events.take();
    let report = w.sync(later(2)).await.unwrap();
    assert_eq!((report.polled, report.changed, report.failed), (3, 2, 1));
    assert_eq!(
        report.errors[0].instance.as_str(),
        "i1",
        "{:?}",
        report.errors
    );
    let changed: Vec<OrderId> = status_events(&w).into_iter().map(|e| e.0).collect();
    assert!(changed.contains(&orders[0].id) && changed.contains(&orders[2].id));
    // The failed shipment is polled again next time and catches up.
    let report = w.sync(later(2)).await.unwrap();
    assert_eq!((report.polled, report.changed), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_poll_and_push_lose_nothing() {
    let w = world(
        vec![MockProvider::new().with_latency(Duration::from_millis(5))],
        InstanceSettings::default(),
    );
    let order = export(&w, "SO-1", 0).await;
    let reference = w
        .orchestrator
        .shipment(&order.id)
        .await
        .unwrap()
        .unwrap()
        .shipment()
        .unwrap()
        .clone();
    // Every poll runs at a time when the shipment is due.
    w.clock.set(later(30));
    let orchestrator = Arc::new(w.orchestrator);
    let mut pushed = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..20u32 {
        // Polls see the mock's statuses; pushes bring statuses only the webhook knows.
        let status = DeliveryStatus::new(
            StatusCode::InTransit,
            format!("hub {i}"),
            later(1) + chrono::Duration::minutes(i.into()),
        );
        pushed.push(status.clone());
        let o = orchestrator.clone();
        let update = TrackingUpdate::Statuses {
            shipment: reference.clone(),
            statuses: vec![status],
        };
        tasks.push(tokio::spawn(async move {
            o.ingest_tracking("i0", vec![update]).await.map(drop)
        }));
        let o = orchestrator.clone();
        tasks.push(tokio::spawn(
            async move { o.sync_tracking().await.map(drop) },
        ));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let record = orchestrator.shipment(&order.id).await.unwrap().unwrap();
    for status in &pushed {
        assert!(record.history.contains(status), "lost {}", status.original);
    }
    assert!(
        record
            .history
            .iter()
            .any(|s| s.code == StatusCode::Registered),
        "lost the polled status"
    );
    assert_eq!(record.current_status.unwrap().original, "hub 19");
}

#[tokio::test]
async fn ingest_for_unknown_orders_is_counted_not_fatal() {
    let w = world(vec![MockProvider::new()], InstanceSettings::default());
    let update = TrackingUpdate::Statuses {
        shipment: ShipmentRef::new("SO-404", "X"),
        statuses: vec![DeliveryStatus::new(StatusCode::InTransit, "x", t0())],
    };
    let report = w
        .orchestrator
        .ingest_tracking("i0", vec![update])
        .await
        .unwrap();
    assert_eq!((report.polled, report.failed), (1, 1));
    assert!(matches!(
        w.orchestrator.ingest_tracking("nope", vec![]).await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn run_tracking_loops_until_shutdown() {
    let w = world(vec![MockProvider::new()], InstanceSettings::default());
    export(&w, "SO-1", 0).await;
    w.clock.set(later(2));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let orchestrator = Arc::new(w.orchestrator);
    let runner = {
        let o = orchestrator.clone();
        tokio::spawn(async move {
            o.run_tracking(Duration::from_secs(60), async {
                let _ = stopped.await;
            })
            .await
        })
    };
    tokio::time::sleep(Duration::from_secs(150)).await;
    stop.send(()).unwrap();
    runner.await.unwrap();
    // Three rounds (at 0, 60 and 120 s); the shipment was due in the first only, and had no
    // news since its export.
    assert_eq!(w.mocks[0].calls_of(Operation::Track).len(), 1);
    let changes = w
        .events
        .events()
        .iter()
        .filter(|e| matches!(e.kind, EventKind::DeliveryStatusChanged { .. }))
        .count();
    assert_eq!(changes, 0);
}

#[tokio::test]
async fn pushed_updates_find_re_exported_shipments() {
    let store = Arc::new(MemoryStore::new());
    let mut record = fulfillkit::testkit::sample_record(
        "SO-9",
        "i0",
        ExportState::Exported {
            shipment: ShipmentRef::new("SO-9~R1", "REF-2"),
            tracking_number: None,
            at: t0(),
        },
    );
    record.export_seq = 1;
    store.insert(record, Effects::none()).await.unwrap();
    let o = Orchestrator::builder()
        .instance(Instance::new("i0", "i0", Arc::new(MockProvider::new())))
        .store(store.clone())
        .build()
        .unwrap();
    let update = |order: &str, reference: &str| TrackingUpdate::Statuses {
        shipment: ShipmentRef::new(order, reference),
        statuses: vec![DeliveryStatus::new(
            StatusCode::InTransit,
            "moving",
            later(1),
        )],
    };
    let report = o
        .ingest_tracking(
            "i0",
            vec![
                update("SO-9~R1", "REF-2"),
                update("SO-9~R2", "REF-3"),
                update("SO-9~Rx", "REF-2"),
                // A host order of that name is another order, never this one's shipment.
                update("SO-9-R1", "REF-2"),
                // The host's id with the old shipment: not the one the record holds.
                update("SO-9", "REF-1"),
            ],
        )
        .await
        .unwrap();
    assert_eq!((report.polled, report.changed, report.failed), (5, 1, 4));
    let record = store.get(&"SO-9".into()).await.unwrap().unwrap();
    assert_eq!(record.current_status.unwrap().original, "moving");
}

#[tokio::test]
async fn a_parcel_waiting_at_the_chosen_point_gets_its_directory_details() {
    let nine = chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap();
    let seven = chrono::NaiveTime::from_hms_opt(19, 0, 0).unwrap();
    let entry = AddressOption {
        id: "VE-07".into(),
        kind: AddressKind::PickupPoint,
        label: "Edicola San Marco".into(),
        address: Address {
            country: "IT".into(),
            region: None,
            city: "Venezia".into(),
            postcode: "30124".into(),
            lines: vec!["Calle Larga 7".into()],
            provider_address_id: None,
            pickup_point_id: None,
        },
        carrier: None,
        opening_hours: Some(OpeningHours::on(
            &[Weekday::Monday],
            &[TimeRange {
                from: nine,
                to: seven,
            }],
        )),
    };
    let w = world(
        vec![MockProvider::new().with_directory(vec![entry.clone()])],
        InstanceSettings::default(),
    );
    let mut order = sample_order("SO-PT").with_tag("i0");
    order.address = entry.to_address();
    let _ = w.orchestrator.on_order_confirmed(&order).await.unwrap();
    w.mocks[0]
        .push_status(
            &order.id,
            DeliveryStatus::new(StatusCode::Pending, "Destinatario assente", later(1))
                .with_problem(Problem::RecipientAbsent),
        )
        .unwrap();
    w.sync(later(2)).await.unwrap();
    let events = status_events(&w);
    let to = &events.last().unwrap().2;
    assert_eq!(to.code, StatusCode::Pending);
    let point = to
        .pickup_point
        .as_ref()
        .expect("the chosen point's details");
    assert_eq!(
        (point.id.as_str(), point.postcode.as_str()),
        ("VE-07", "30124")
    );
    assert!(point.opening_hours.is_open(Weekday::Monday, nine));
    // The registered status (not waiting anywhere) got none.
    let record = w.orchestrator.shipment(&order.id).await.unwrap().unwrap();
    assert!(
        record
            .history
            .iter()
            .filter(|s| s.code == StatusCode::Registered)
            .all(|s| s.pickup_point.is_none())
    );
}

#[tokio::test(start_paused = true)]
async fn an_answer_about_a_replaced_shipment_is_not_applied() {
    let w = world(
        vec![
            MockProvider::new()
                .with_operation_latency(Operation::Track, Duration::from_millis(200)),
        ],
        InstanceSettings::default(),
    );
    let order = export(&w, "SO-1", 0).await;
    let store = Arc::clone(w.orchestrator.store());
    w.clock.set(later(2));
    let poll = tokio::spawn({
        let orchestrator = w.orchestrator.clone();
        async move { orchestrator.sync_tracking().await }
    });
    // The track request is in flight; meanwhile the order gets a new shipment, as a
    // re-export gives it.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut record = store.get(&order.id).await.unwrap().unwrap();
    assert_eq!(record.history.len(), 1, "the export's first status");
    let replacement = ShipmentRef::new("SO-1~R1", "NEW-1");
    record.export = ExportState::Exported {
        shipment: replacement.clone(),
        tracking_number: None,
        at: later(1),
    };
    record.history = Arc::default();
    record.current_status = None;
    record.last_reported = None;
    store.update(record, Effects::none()).await.unwrap();

    let report = poll.await.unwrap().unwrap();
    assert_eq!(report.polled, 1);
    let record = store.get(&order.id).await.unwrap().unwrap();
    assert_eq!(record.shipment(), Some(&replacement));
    assert!(record.history.is_empty(), "{:?}", record.history);
    assert_eq!(record.current_status, None);
    assert!(
        status_events(&w).is_empty(),
        "no event about the old shipment"
    );
}
