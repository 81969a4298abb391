//! Quickstart: the whole lifecycle over real HTTP, against the bundled simulators of both
//! fulfillment companies.
//!
//! Three instances — two Wapi accounts (prepaid and cash on delivery, Italy and Poland) and
//! one Sphere account (United States) — chosen per order by routing rules; a pickup point found
//! in Wapi's directory; orders exported on confirmation; an edit applied; simulated days passing
//! with tracking events (a parcel waiting at a pickup point, from Wapi's own wording); an edit that comes too late, becomes an
//! exception and is resolved; the stock as two roles see it; a final table.
//!
//! Run with `cargo run --example quickstart`.

use std::sync::Arc;

use chrono::Utc;
use fulfillkit::model::{
    Address, AddressQuery, Order, Payment, Resolution, ResolutionAction, StatusCode, StockDisplay,
    StockPolicy, StockThresholds, StockView,
};
use fulfillkit::orchestrator::{
    AcceptedPayment, Automation, ChangeOutcome, CollectingSink, Condition, EventKind,
    ExportOutcome, Instance, InstanceSettings, Orchestrator, PaymentKind, RoutingRule,
};
use fulfillkit::simulator::{SphereInventoryRow, SphereSimulator, WapiSimulator, WapiStockRow};
use fulfillkit::testkit::{TestClock, sample_order};

#[tokio::main]
async fn main() -> fulfillkit::Result<()> {
    // 1. Two Wapi accounts and one Sphere account, each a simulator on 127.0.0.1.
    let wapi_prepaid = WapiSimulator::builder()
        .with_pickup_point_directory(true)
        .with_stock([WapiStockRow::new("IT", "ITWH2", "Demo Product-1", 15)])
        .start()
        .await?;
    let wapi_cod = WapiSimulator::start().await?;
    let sphere = SphereSimulator::builder()
        .with_inventory([SphereInventoryRow::new(100, "Demo Product-1", 120)])
        .start()
        .await?;
    let events = Arc::new(CollectingSink::new());
    // Simulated days pass on this clock: the orchestrator's polls and events follow it.
    let clock = TestClock::at(Utc::now());
    let start = clock.now();
    let only = |accepted| InstanceSettings::default().with_accepted_payment(accepted);
    let orchestrator = Orchestrator::builder()
        .instance(
            Instance::new(
                "wapi-prepaid",
                "Wapi, prepaid (Acme Srl)",
                Arc::new(
                    wapi_prepaid
                        .provider_builder()
                        // The simulator's directory; Wapi itself has none.
                        .with_pickup_point_directory(true)
                        .with_instance_label("wapi-prepaid")
                        .build()?,
                ),
            )
            .with_settings(
                only(AcceptedPayment::Prepaid).with_stock_policy(
                    StockPolicy::new(StockThresholds::new(20, 100)?)
                        .with_view("warehouse", StockView::Exact)
                        .with_view("sales", StockView::Levels),
                ),
            ),
        )
        .instance(
            Instance::new(
                "wapi-cod",
                "Wapi, cash on delivery (Acme Srl)",
                Arc::new(
                    wapi_cod
                        .provider_builder()
                        .with_instance_label("wapi-cod")
                        .build()?,
                ),
            )
            .with_settings(only(AcceptedPayment::CashOnDelivery)),
        )
        .instance(Instance::new(
            "sphere-us",
            "Sphere, United States (Acme Inc)",
            Arc::new(
                sphere
                    .provider_builder()
                    .with_instance_label("sphere-us")
                    .build()?,
            ),
        ))
        .rule(RoutingRule::new(
            "IT/PL prepaid",
            Condition::All {
                conditions: vec![
                    Condition::country(["IT", "PL"]),
                    Condition::payment(PaymentKind::Prepaid),
                ],
            },
            "wapi-prepaid",
        ))
        .rule(RoutingRule::new(
            "IT/PL cash on delivery",
            Condition::country(["IT", "PL"]),
            "wapi-cod",
        ))
        .rule(RoutingRule::new(
            "US",
            Condition::country(["US"]),
            "sphere-us",
        ))
        .events(events.clone())
        .clock(clock.clock())
        .build()?;
    println!("== instances");
    for instance in orchestrator.instances() {
        println!(
            "  {:<13} {} ({})",
            instance.id,
            instance.label,
            instance.provider.kind()
        );
    }

    // 2. The customer of SO-1003 picks a parcel locker from Wapi's directory.
    println!("\n== pickup points in Warszawa");
    let points = orchestrator
        .search_addresses(
            "wapi-prepaid",
            &AddressQuery::in_country("PL").with_text("warszawa"),
        )
        .await?;
    for point in &points {
        println!(
            "  {:<7} {:<18} {}, {}",
            point.id,
            point.label,
            point.address.lines.join(", "),
            point.address.postcode
        );
    }
    let locker = points.first().expect("the simulator serves Warsaw lockers");

    // 3. Confirmed orders are exported to the instance their rules pick.
    println!("\n== export on confirmation");
    let orders = vec![
        sample_order("SO-1001"),
        cod(sample_order("SO-1002")),
        to_locker(sample_order("SO-1003"), locker.to_address()),
        american(sample_order("SO-1004")),
    ];
    for order in &orders {
        if let ExportOutcome::Exported { instance, shipment } =
            orchestrator.on_order_confirmed(order).await?
        {
            println!(
                "  {} -> {instance:<13} as {}",
                order.id, shipment.reference.provider_ref
            );
        }
    }
    events.take();

    // 4. The operator corrects a phone number before the parcel is packed: it reaches Wapi.
    println!("\n== an edit before packing");
    let mut edited = orders[0].clone();
    edited.customer.phone = "+39 340 555 1234".into();
    report_change(&edited, orchestrator.on_order_changed(&edited).await?);

    // 5. Days pass at the providers; each round the orchestrator polls what is due.
    println!("\n== tracking");
    for day in 1..=4 {
        wapi_prepaid.tick();
        wapi_cod.tick();
        sphere.tick();
        clock.set(start + chrono::Duration::days(day));
        orchestrator.sync_tracking().await?;
        for event in events.take() {
            if let EventKind::DeliveryStatusChanged { to, .. } = &event.kind {
                let order = event.order_id.map(|o| o.to_string()).unwrap_or_default();
                let mut line = format!(
                    "  day {day}: {order} {} {:?} \"{}\"",
                    to.code.code(),
                    to.code,
                    to.original
                );
                if let Some(problem) = &to.problem {
                    line += &format!(", {problem:?}");
                }
                if let Some(point) = &to.pickup_point {
                    let arrived = to.code == StatusCode::Arrived;
                    line += &format!(
                        ", {} {} ({}, {}), open {}",
                        if arrived { "waiting at" } else { "bound for" },
                        point.name,
                        point.address,
                        point.postcode,
                        point
                            .opening_hours
                            .note
                            .as_deref()
                            .unwrap_or("see opening hours")
                    );
                }
                if event.automation == Automation::Suspended {
                    line += " [automation suspended]";
                }
                println!("{line}");
            }
        }
        if day == 2 {
            edit_too_late(&orchestrator, &orders[1]).await?;
            events.take();
        }
    }

    // 6. The order card: SO-1001's stock as two roles see it.
    println!("\n== stock of SO-1001 as two roles see it");
    let card = orchestrator.stock_for_order(&orders[0]).await?;
    for line in &card.lines {
        let Some(stock) = &line.stock else { continue };
        for role in ["warehouse", "sales"] {
            let shown = match orchestrator.render_stock(&card.instance, role, stock)? {
                StockDisplay::Exact { available } => format!("{available} pcs"),
                StockDisplay::Level(level) => format!("{level:?}"),
                StockDisplay::Hidden => "nothing".into(),
            };
            println!("  {} at {}: {role} sees {shown}", line.sku, card.instance);
        }
    }

    // 7. Where everything stands.
    println!("\n== orders");
    println!(
        "  {:<8} {:<13} {:<18} status",
        "order", "instance", "tracking"
    );
    for order in &orders {
        let Some(record) = orchestrator.shipment(&order.id).await? else {
            continue;
        };
        let tracking = record
            .current_status
            .as_ref()
            .and_then(|s| s.carrier_tracking_number.clone())
            .or_else(|| record.shipment().map(|s| s.provider_ref.clone()))
            .unwrap_or_default();
        let status = record
            .current_status
            .as_ref()
            .map(|s| format!("{} {:?} \"{}\"", s.code.code(), s.code, s.original))
            .unwrap_or_default();
        println!(
            "  {:<8} {:<13} {:<18} {status}",
            order.id.as_str(),
            record.instance.as_str(),
            tracking
        );
    }
    println!(
        "\n{} requests to Wapi (prepaid), {} to Wapi (COD), {} to Sphere",
        total(&wapi_prepaid.stats().requests),
        total(&wapi_cod.stats().requests),
        total(&sphere.stats().requests)
    );
    wapi_prepaid.shutdown().await;
    wapi_cod.shutdown().await;
    sphere.shutdown().await;
    Ok(())
}

/// Too late: SO-1002 is with the carrier when the customer moves. An exception stops
/// automation for the order until an operator decides.
async fn edit_too_late(orchestrator: &Orchestrator, order: &Order) -> fulfillkit::Result<()> {
    println!("  -- an edit too late");
    let mut moved = order.clone();
    moved.address.lines = vec!["Via Garibaldi 3".into()];
    let outcome = orchestrator.on_order_changed(&moved).await?;
    report_change(&moved, outcome);
    println!(
        "  automation allowed for SO-1002: {}",
        orchestrator.automation_allowed(&moved.id).await?
    );
    let resolved = orchestrator
        .resolve_exception(
            &moved.id,
            Resolution::new(ResolutionAction::AcceptProviderVersion, "operator-7")
                .with_note("parcel already on its way; customer will collect it"),
        )
        .await?;
    println!(
        "  resolved by {} ({:?}); automation allowed: {}",
        resolved
            .resolution
            .as_ref()
            .map(|r| r.by.as_str())
            .unwrap_or("?"),
        resolved.resolution.as_ref().map(|r| r.action),
        orchestrator.automation_allowed(&moved.id).await?
    );

    Ok(())
}

fn report_change(order: &Order, outcome: ChangeOutcome) {
    match outcome {
        ChangeOutcome::Applied { changed_fields } => {
            println!("  {}: {changed_fields:?} updated at the provider", order.id)
        }
        ChangeOutcome::Exception { exception } => println!(
            "  {}: {:?} refused ({}), exception raised",
            order.id,
            exception.changed_fields,
            exception.provider_state.as_deref().unwrap_or("no state")
        ),
        other => println!("  {}: {other:?}", order.id),
    }
}

fn total(requests: &std::collections::BTreeMap<String, u64>) -> u64 {
    requests.values().sum()
}

fn cod(mut order: Order) -> Order {
    order.payment = Payment::CashOnDelivery {
        amount: order.total(),
    };
    order
}

fn to_locker(mut order: Order, locker: Address) -> Order {
    order.address = locker;
    order.customer.name = "Jan Nowak".into();
    order.customer.phone = "+48501234567".into();
    order.currency = "PLN".into();
    order
}

fn american(mut order: Order) -> Order {
    order.address = Address {
        country: "US".into(),
        region: Some("OH".into()),
        city: "Columbus".into(),
        postcode: "43004".into(),
        lines: vec!["12 Elm St".into(), "Apt 4".into()],
        provider_address_id: None,
        pickup_point_id: None,
    };
    order.customer.name = "Jane Smith".into();
    order.customer.phone = "+16145550101".into();
    order.currency = "USD".into();
    order
}
