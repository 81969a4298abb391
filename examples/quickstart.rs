//! Quickstart: the whole lifecycle over real HTTP, against the bundled simulators of the three
//! fulfillment companies.
//!
//! Four instances — two Wapi accounts (prepaid and cash on delivery, Italy and Poland), one
//! Sphere account (Canada) and one ShipBob channel (United States) — chosen per order by
//! routing rules by country; a pickup point found in Wapi's directory; orders exported on
//! confirmation; an edit applied; simulated days passing with tracking events (a parcel
//! waiting at a pickup point, from Wapi's own wording; ShipBob's statuses arriving by signed
//! webhook to a route of the host); an edit that comes too late, becomes an exception and is
//! resolved; the stock as two roles see it; a final table.
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
use fulfillkit::simulator::{
    Lifecycle, ShipBobSimulator, SphereInventoryRow, SphereSimulator, WapiSimulator, WapiStockRow,
};
use fulfillkit::testkit::{TestClock, sample_order};
use fulfillkit::webhook::{ShipBobWebhooks, WebhookIntake, WebhookSecret};

/// The secret the host gives ShipBob when it subscribes (ShipBob's documentation example).
const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

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
    // ShipBob moves a parcel from import to delivery in four days here.
    let shipbob = ShipBobSimulator::builder()
        .with_lifecycle(Lifecycle::new([
            "None",
            "Processing/Packed",
            "Completed/InTransit",
            "Completed/OutForDelivery",
            "Completed/Delivered",
        ]))
        .start()
        .await?;
    let shipbob_provider = Arc::new(
        shipbob
            .provider_builder()
            .with_instance_label("shipbob-us")
            .build()?,
    );
    // The host's webhook route (its own web framework in real life) and the subscription.
    let (hook_url, mut deliveries) = webhook_route().await;
    let secret = WebhookSecret::parse(WEBHOOK_SECRET).expect("a valid secret");
    shipbob_provider
        .subscribe_webhooks(&hook_url, &secret)
        .await?;
    let intake = ShipBobWebhooks::new(shipbob_provider.clone(), secret);
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
            "sphere-ca",
            "Sphere, Canada (Acme Inc)",
            Arc::new(
                sphere
                    .provider_builder()
                    .with_instance_label("sphere-ca")
                    .build()?,
            ),
        ))
        .instance(Instance::new(
            "shipbob-us",
            "ShipBob, United States (Acme Inc)",
            shipbob_provider.clone(),
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
            "CA",
            Condition::country(["CA"]),
            "sphere-ca",
        ))
        .rule(RoutingRule::new(
            "US",
            Condition::country(["US"]),
            "shipbob-us",
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
        canadian(sample_order("SO-1004")),
        american(sample_order("SO-1005")),
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
        shipbob.tick();
        clock.set(start + chrono::Duration::days(day));
        // ShipBob pushes its news: the route verifies each delivery, drops repeats, and the
        // orchestrator ingests the updates.
        shipbob
            .settle_webhooks(std::time::Duration::from_secs(2))
            .await;
        while let Ok((headers, body)) = deliveries.try_recv() {
            match intake.receive(&headers, &body).await {
                Ok(WebhookIntake::Updates {
                    webhook_id,
                    topic,
                    updates,
                }) => {
                    orchestrator.ingest_tracking("shipbob-us", updates).await?;
                    intake.processed(&webhook_id).await?;
                    for event in events.take() {
                        if let EventKind::DeliveryStatusChanged { to, .. } = &event.kind {
                            let order = event.order_id.map(|o| o.to_string()).unwrap_or_default();
                            println!(
                                "  day {day}: {order} {} {:?} \"{}\" (webhook {})",
                                to.code.code(),
                                to.code,
                                to.original,
                                topic.as_deref().unwrap_or("?")
                            );
                        }
                    }
                }
                Ok(_) => {}
                Err(error) => println!("  webhook refused ({}): {error}", error.http_status()),
            }
        }
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
        "  {:<8} {:<13} {:<22} status",
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
            .or_else(|| record.shipment().map(|s| s.provider_ref.as_str().into()))
            .unwrap_or_default();
        let status = record
            .current_status
            .as_ref()
            .map(|s| format!("{} {:?} \"{}\"", s.code.code(), s.code, s.original))
            .unwrap_or_default();
        println!(
            "  {:<8} {:<13} {:<22} {status}",
            order.id.as_str(),
            record.instance.as_str(),
            tracking
        );
    }
    println!(
        "\n{} requests to Wapi (prepaid), {} to Wapi (COD), {} to Sphere, {} to ShipBob; {} \
         webhooks from ShipBob",
        total(&wapi_prepaid.stats().requests),
        total(&wapi_cod.stats().requests),
        total(&sphere.stats().requests),
        total(&shipbob.stats().requests),
        shipbob.webhook_attempts().len()
    );
    wapi_prepaid.shutdown().await;
    wapi_cod.shutdown().await;
    sphere.shutdown().await;
    shipbob.shutdown().await;
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

fn canadian(mut order: Order) -> Order {
    order.address = Address {
        country: "CA".into(),
        region: Some("ON".into()),
        city: "Toronto".into(),
        postcode: "M5V 2T6".into(),
        lines: vec!["12 Elm St".into(), "Apt 4".into()],
        provider_address_id: None,
        pickup_point_id: None,
    };
    order.customer.name = "Jane Smith".into();
    order.customer.phone = "+14165550101".into();
    order.currency = "CAD".into();
    order
}

fn american(mut order: Order) -> Order {
    order.address = Address {
        country: "US".into(),
        region: Some("IL".into()),
        city: "Chicago".into(),
        postcode: "60607".into(),
        lines: vec!["100 N Racine Ave".into(), "Suite 100".into()],
        provider_address_id: None,
        pickup_point_id: None,
    };
    order.customer.name = "Jane Roe".into();
    order.customer.phone = "+13125550100".into();
    order.currency = "USD".into();
    order
}

/// A delivery as the host's route received it: headers and the raw body.
type Delivery = (Vec<(String, String)>, Vec<u8>);

/// A minimal webhook route on 127.0.0.1 standing in for the host's web framework: it answers
/// 200 at once and hands each delivery (headers and raw body) to the application.
async fn webhook_route() -> (String, tokio::sync::mpsc::UnboundedReceiver<Delivery>) {
    use http_body_util::BodyExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let url = format!(
        "http://{}/hooks/shipbob",
        listener.local_addr().expect("bound")
    );
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let sender = sender.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |request: hyper::Request<hyper::body::Incoming>| {
                        let sender = sender.clone();
                        async move {
                            let (parts, body) = request.into_parts();
                            let body = body.collect().await?.to_bytes().to_vec();
                            let headers = parts
                                .headers
                                .iter()
                                .filter_map(|(k, v)| {
                                    Some((k.to_string(), v.to_str().ok()?.to_owned()))
                                })
                                .collect();
                            let _ = sender.send((headers, body));
                            Ok::<_, hyper::Error>(hyper::Response::new(http_body_util::Empty::<
                                bytes::Bytes,
                            >::new(
                            )))
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, receiver)
}
