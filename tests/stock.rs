//! Stock through the orchestrator: thresholds and per-role views, the per-sku cache with its
//! TTL on an injected clock, batching as the mock records it, the order card's per-line
//! stock, and `sync_stock` announcing changes only.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};

use fulfillkit::Error;
use fulfillkit::error::Operation;
use fulfillkit::model::*;
use fulfillkit::orchestrator::*;
use fulfillkit::provider::mock::MockProvider;
use fulfillkit::provider::{Capabilities, FulfillmentProvider};
use fulfillkit::testkit::sample_order;

/// A clock the test moves by hand.
#[derive(Clone)]
struct TestClock(Arc<Mutex<DateTime<Utc>>>);

impl TestClock {
    fn new() -> Self {
        Self(Arc::new(Mutex::new(
            Utc.with_ymd_and_hms(2024, 5, 10, 8, 0, 0).unwrap(),
        )))
    }

    fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap();
        *now += chrono::Duration::from_std(by).unwrap();
    }

    fn clock(&self) -> Clock {
        let now = self.0.clone();
        Arc::new(move || *now.lock().unwrap())
    }
}

fn skus(names: &[&str]) -> Vec<Sku> {
    names.iter().map(|s| Sku::new(*s)).collect()
}

fn policy() -> StockPolicy {
    StockPolicy::new(StockThresholds::new(5, 50).unwrap())
        .with_view("warehouse", StockView::Exact)
        .with_view("sales", StockView::Levels)
}

struct Setup {
    orchestrator: Orchestrator,
    mock: Arc<MockProvider>,
    events: Arc<CollectingSink>,
    clock: TestClock,
}

fn setup_with(mock: MockProvider, ttl: Option<Duration>) -> Setup {
    let mock = Arc::new(mock);
    let events = Arc::new(CollectingSink::new());
    let clock = TestClock::new();
    let mut builder = Orchestrator::builder()
        .instance(
            Instance::new("wh", "Warehouse", mock.clone())
                .with_settings(InstanceSettings::default().with_stock_policy(policy())),
        )
        .rule(RoutingRule::new("all", Condition::Always, "wh"))
        .events(events.clone())
        .clock(clock.clock());
    if let Some(ttl) = ttl {
        builder = builder.stock_cache_ttl(ttl);
    }
    Setup {
        orchestrator: builder.build().unwrap(),
        mock,
        events,
        clock,
    }
}

fn setup(levels: impl IntoIterator<Item = StockLevel>) -> Setup {
    setup_with(MockProvider::new().with_stock(levels), None)
}

fn wh() -> InstanceId {
    "wh".into()
}

fn stock_batches(mock: &MockProvider) -> Vec<usize> {
    mock.calls_of(Operation::Stock)
        .iter()
        .map(|c| c.batch)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Views

#[tokio::test]
async fn thresholds_at_each_boundary_as_the_levels_view_shows_them() {
    let cases = [
        ("NEG", -3, Level::OutOfStock),
        ("ZERO", 0, Level::OutOfStock),
        ("ONE", 1, Level::Few),
        ("FEW_MAX", 5, Level::Few),
        ("ABOVE_FEW", 6, Level::InStock),
        ("BELOW_MANY", 49, Level::InStock),
        ("MANY_MIN", 50, Level::Many),
        ("LOTS", 10_000, Level::Many),
    ];
    let s = setup(
        cases
            .iter()
            .map(|(sku, qty, _)| StockLevel::new(*sku, *qty)),
    );
    let names: Vec<&str> = cases.iter().map(|(sku, _, _)| *sku).collect();
    let levels = s.orchestrator.stock(&wh(), &skus(&names)).await.unwrap();
    assert_eq!(levels.len(), cases.len());
    for ((sku, qty, level), stock) in cases.iter().zip(&levels) {
        assert_eq!(stock.sku.as_str(), *sku);
        assert_eq!(
            s.orchestrator.render_stock(wh(), "sales", stock).unwrap(),
            StockDisplay::Level(*level),
            "{sku} = {qty}"
        );
    }
}

#[tokio::test]
async fn three_roles_see_one_order_three_ways() {
    let s = setup([StockLevel::new("Demo Product-1", 15)]);
    let order = sample_order("SO-1");
    let card = s.orchestrator.stock_for_order(&order).await.unwrap();
    let stock = card.lines[0].stock.as_ref().unwrap();
    let seen: Vec<StockDisplay> = ["warehouse", "sales", "courier"]
        .iter()
        .map(|role| s.orchestrator.render_stock(wh(), role, stock).unwrap())
        .collect();
    assert_eq!(
        seen,
        [
            StockDisplay::Exact { available: 15 },
            StockDisplay::Level(Level::InStock),
            StockDisplay::Hidden,
        ]
    );
    let err = s
        .orchestrator
        .render_stock("nope", "sales", stock)
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// Cache

#[tokio::test]
async fn cached_for_the_default_ttl_of_60_seconds_on_the_injected_clock() {
    let s = setup([StockLevel::new("A", 7)]);
    let a = skus(&["A"]);
    assert_eq!(
        s.orchestrator.stock(&wh(), &a).await.unwrap(),
        [StockLevel::new("A", 7)]
    );
    s.mock.set_stock([StockLevel::new("A", 3)]);
    s.clock.advance(Duration::from_secs(59));
    assert_eq!(
        s.orchestrator.stock(&wh(), &a).await.unwrap()[0].available,
        7
    );
    assert_eq!(stock_batches(&s.mock), [1]);

    s.clock.advance(Duration::from_secs(1));
    assert_eq!(
        s.orchestrator.stock(&wh(), &a).await.unwrap()[0].available,
        3
    );
    assert_eq!(stock_batches(&s.mock), [1, 1]);
}

#[tokio::test]
async fn the_ttl_is_configurable() {
    let s = setup_with(
        MockProvider::new().with_stock([StockLevel::new("A", 7)]),
        Some(Duration::from_secs(5)),
    );
    let a = skus(&["A"]);
    s.orchestrator.stock(&wh(), &a).await.unwrap();
    s.clock.advance(Duration::from_secs(4));
    s.orchestrator.stock(&wh(), &a).await.unwrap();
    assert_eq!(s.mock.calls_of(Operation::Stock).len(), 1);
    s.clock.advance(Duration::from_secs(1));
    s.orchestrator.stock(&wh(), &a).await.unwrap();
    assert_eq!(s.mock.calls_of(Operation::Stock).len(), 2);
}

#[tokio::test]
async fn a_miss_for_one_sku_does_not_refetch_the_others() {
    let s = setup([
        StockLevel::new("A", 1),
        StockLevel::new("B", 2),
        StockLevel::new("C", 3),
    ]);
    s.orchestrator
        .stock(&wh(), &skus(&["A", "B"]))
        .await
        .unwrap();
    s.clock.advance(Duration::from_secs(30));
    let levels = s
        .orchestrator
        .stock(&wh(), &skus(&["C", "A", "B"]))
        .await
        .unwrap();
    let order: Vec<&str> = levels.iter().map(|l| l.sku.as_str()).collect();
    assert_eq!(order, ["C", "A", "B"], "in the order asked");
    assert_eq!(stock_batches(&s.mock), [2, 1], "only C was asked for");

    // A and B expire 30 s before C: only they are asked for again.
    s.clock.advance(Duration::from_secs(30));
    s.orchestrator
        .stock(&wh(), &skus(&["A", "B", "C"]))
        .await
        .unwrap();
    assert_eq!(stock_batches(&s.mock), [2, 1, 2]);
}

#[tokio::test]
async fn an_unreported_sku_is_left_out_and_not_asked_for_again() {
    let s = setup([StockLevel::new("A", 1)]);
    let asked = skus(&["GHOST", "A", "A"]);
    let levels = s.orchestrator.stock(&wh(), &asked).await.unwrap();
    assert_eq!(
        levels,
        [StockLevel::new("A", 1)],
        "duplicates once, ghost left out"
    );
    assert_eq!(stock_batches(&s.mock), [2]);
    s.orchestrator.stock(&wh(), &asked).await.unwrap();
    assert_eq!(
        stock_batches(&s.mock),
        [2],
        "the ghost is cached as unknown"
    );
    assert!(s.orchestrator.stock(&wh(), &[]).await.unwrap().is_empty());
    assert_eq!(stock_batches(&s.mock), [2], "nothing asked, no call");
}

#[tokio::test]
async fn requests_are_batched_by_the_providers_max_stock_batch() {
    let names: Vec<String> = (0..10).map(|i| format!("SKU-{i}")).collect();
    let mock = MockProvider::new()
        .with_capabilities(Capabilities::all(50, 3))
        .with_stock(names.iter().map(|n| StockLevel::new(n.as_str(), 1)));
    let s = setup_with(mock, None);
    let asked: Vec<Sku> = names.iter().map(|n| Sku::new(n.as_str())).collect();
    let levels = s.orchestrator.stock(&wh(), &asked).await.unwrap();
    assert_eq!(levels.len(), 10);
    assert_eq!(stock_batches(&s.mock), [3, 3, 3, 1]);
    assert_eq!(s.mock.largest_batch(Operation::Stock), 3);
}

#[tokio::test]
async fn a_provider_without_stock_is_unsupported_without_a_call() {
    let s = setup_with(
        MockProvider::new().with_capabilities(Capabilities::new(50, 100)),
        None,
    );
    let err = s
        .orchestrator
        .stock(&wh(), &skus(&["A"]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Unsupported {
                operation: Operation::Stock,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(s.mock.calls().is_empty());
    let err = s
        .orchestrator
        .stock("nope", &skus(&["A"]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }));
    // sync skips it: nothing to read, nothing failed.
    let report = s.orchestrator.sync_stock().await.unwrap();
    assert_eq!((report.instances, report.failures.len()), (0, 0));
}

// ---------------------------------------------------------------------------------------------
// The order card

#[tokio::test]
async fn stock_for_order_gives_one_entry_per_cart_line_at_the_routed_instance() {
    let mut order = sample_order("SO-1");
    let mut second = order.lines[0].clone();
    second.sku = "UNKNOWN".into();
    second.quantity = 1;
    let mut third = order.lines[0].clone();
    third.quantity = 40;
    order.lines.extend([second, third]);
    let s = setup([StockLevel::new("Demo Product-1", 15)]);

    let card = s.orchestrator.stock_for_order(&order).await.unwrap();
    assert_eq!(card.instance, wh());
    let summary: Vec<(usize, &str, u32, Option<i64>, bool)> = card
        .lines
        .iter()
        .map(|l| {
            (
                l.line,
                l.sku.as_str(),
                l.quantity,
                l.stock.as_ref().map(|s| s.available),
                l.is_covered(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (0, "Demo Product-1", 2, Some(15), true),
            (1, "UNKNOWN", 1, None, false),
            (2, "Demo Product-1", 40, Some(15), false),
        ]
    );
    assert_eq!(stock_batches(&s.mock), [2], "each sku asked once");
}

#[tokio::test]
async fn an_exported_order_reads_stock_where_it_went() {
    let routed = Arc::new(MockProvider::new().with_stock([StockLevel::new("Demo Product-1", 1)]));
    let chosen = Arc::new(MockProvider::new().with_stock([StockLevel::new("Demo Product-1", 99)]));
    let o = Orchestrator::builder()
        .instance(Instance::new("routed", "r", routed))
        .instance(Instance::new("chosen", "c", chosen))
        .rule(RoutingRule::new("all", Condition::Always, "routed"))
        .build()
        .unwrap();
    let order = sample_order("SO-1");
    let before = o.stock_for_order(&order).await.unwrap();
    assert_eq!(before.instance.as_str(), "routed");
    let _ = o
        .export_to(&order, "chosen", &Waybill::new())
        .await
        .unwrap();
    let after = o.stock_for_order(&order).await.unwrap();
    assert_eq!(after.instance.as_str(), "chosen");
    assert_eq!(after.lines[0].stock.as_ref().unwrap().available, 99);
}

// ---------------------------------------------------------------------------------------------
// Sync

fn changes(events: &[Event]) -> Vec<(String, Option<i64>, i64, Level)> {
    events
        .iter()
        .map(|e| {
            assert_eq!(e.order_id, None, "stock events concern no order");
            assert_eq!(e.instance.as_str(), "wh");
            match &e.kind {
                EventKind::StockChanged {
                    sku,
                    from,
                    to,
                    level,
                } => (sku.to_string(), *from, *to, *level),
                other => panic!("unexpected {other:?}"),
            }
        })
        .collect()
}

#[tokio::test]
async fn sync_announces_each_sku_once_then_only_changes() {
    let s = setup([StockLevel::new("A", 60), StockLevel::new("B", 3)]);
    let report = s.orchestrator.sync_stock().await.unwrap();
    assert_eq!(
        (report.instances, report.skus, report.changes),
        (1, 2, 2),
        "{report:?}"
    );
    assert_eq!(
        changes(&s.events.take()),
        [
            ("A".into(), None, 60, Level::Many),
            ("B".into(), None, 3, Level::Few)
        ]
    );

    // Nothing changed: nothing announced.
    let report = s.orchestrator.sync_stock().await.unwrap();
    assert_eq!(report.changes, 0);
    assert!(s.events.take().is_empty());

    // A moves within its level, B changes level.
    s.mock
        .set_stock([StockLevel::new("A", 55), StockLevel::new("B", 0)]);
    s.orchestrator.sync_stock().await.unwrap();
    assert_eq!(
        changes(&s.events.take()),
        [
            ("A".into(), Some(60), 55, Level::Many),
            ("B".into(), Some(3), 0, Level::OutOfStock)
        ]
    );
    assert_eq!(s.mock.calls_of(Operation::Stock).len(), 3);
    assert!(
        s.mock
            .calls_of(Operation::Stock)
            .iter()
            .all(|c| c.batch == 0),
        "a sync reads everything in one call"
    );
}

#[tokio::test]
async fn sync_refreshes_the_cache_and_announces_what_a_read_saw_first() {
    let s = setup([StockLevel::new("A", 10)]);
    s.orchestrator.sync_stock().await.unwrap();
    s.events.take();
    // The sync filled the cache: no call for the order card.
    s.orchestrator.stock(&wh(), &skus(&["A"])).await.unwrap();
    assert_eq!(s.mock.calls_of(Operation::Stock).len(), 1);

    // An order card reads the new quantity first; the next sync still announces it, once.
    s.mock.set_stock([StockLevel::new("A", 4)]);
    s.clock.advance(Duration::from_secs(60));
    let read = s.orchestrator.stock(&wh(), &skus(&["A"])).await.unwrap();
    assert_eq!(read[0].available, 4);
    assert!(s.events.take().is_empty(), "reads do not announce");
    s.orchestrator.sync_stock().await.unwrap();
    assert_eq!(
        changes(&s.events.take()),
        [("A".into(), Some(10), 4, Level::Few)]
    );
    s.orchestrator.sync_stock().await.unwrap();
    assert!(s.events.take().is_empty());
}

/// A provider whose whole stock list the test replaces, so a sku can vanish from it.
#[derive(Debug, Default)]
struct Listing(Mutex<Vec<StockLevel>>);

#[async_trait]
impl FulfillmentProvider for Listing {
    fn kind(&self) -> &str {
        "listing"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::new(10, 10).with_stock(true)
    }
    async fn create_order(&self, _: &Order, _: &Waybill) -> fulfillkit::Result<Shipment> {
        Err(Error::unsupported(Operation::Create, "listing"))
    }
    async fn track(&self, _: &[ShipmentRef]) -> fulfillkit::Result<Vec<TrackingUpdate>> {
        Ok(Vec::new())
    }
    async fn stock(&self, skus: &[Sku]) -> fulfillkit::Result<Vec<StockLevel>> {
        let all = self.0.lock().unwrap().clone();
        Ok(all
            .into_iter()
            .filter(|l| skus.is_empty() || skus.contains(&l.sku))
            .collect())
    }
}

#[tokio::test]
async fn a_sku_that_vanishes_from_the_listing_is_announced_as_zero_and_warehouse_rows_are_summed() {
    let listing = Arc::new(Listing::default());
    let mut w1 = StockLevel::new("A", 4);
    w1.warehouse = Some("W1".into());
    let mut w2 = StockLevel::new("A", 3);
    w2.warehouse = Some("W2".into());
    *listing.0.lock().unwrap() = vec![w1, w2, StockLevel::new("B", 0)];
    let events = Arc::new(CollectingSink::new());
    let o = Orchestrator::builder()
        .instance(Instance::new("wh", "Warehouse", listing.clone()))
        .events(events.clone())
        .build()
        .unwrap();
    o.sync_stock().await.unwrap();
    assert_eq!(
        changes(&events.take()),
        [
            ("A".into(), None, 7, Level::Few),
            ("B".into(), None, 0, Level::OutOfStock)
        ]
    );
    let a = o.stock(&wh(), &skus(&["A"])).await.unwrap();
    assert_eq!((a[0].available, a[0].warehouse.as_deref()), (7, None));

    listing.0.lock().unwrap().clear();
    o.sync_stock().await.unwrap();
    // A was 7 and is gone; B was already 0: nothing to say about it.
    assert_eq!(
        changes(&events.take()),
        [("A".into(), Some(7), 0, Level::OutOfStock)]
    );
    assert!(
        o.stock(&wh(), &skus(&["A"])).await.unwrap().is_empty(),
        "gone from the cache too"
    );
    o.sync_stock().await.unwrap();
    assert!(events.take().is_empty());
}

#[tokio::test]
async fn a_failing_instance_is_reported_and_the_others_are_synced() {
    let broken = Arc::new(MockProvider::new().with_stock([StockLevel::new("A", 1)]));
    let healthy = Arc::new(MockProvider::new().with_stock([StockLevel::new("A", 2)]));
    broken.fail_next(
        Operation::Stock,
        Error::Timeout {
            what: "stock".into(),
        },
        1,
    );
    let events = Arc::new(CollectingSink::new());
    let o = Orchestrator::builder()
        .instance(Instance::new("broken", "b", broken))
        .instance(Instance::new("healthy", "h", healthy))
        .events(events.clone())
        .build()
        .unwrap();
    let report = o.sync_stock().await.unwrap();
    assert_eq!((report.instances, report.changes), (1, 1));
    assert_eq!(report.failures.len(), 1);
    assert_eq!(report.failures[0].instance.as_str(), "broken");
    assert!(matches!(report.failures[0].error, Error::Timeout { .. }));
    assert_eq!(events.events()[0].instance.as_str(), "healthy");
}
