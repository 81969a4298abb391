//! The operator console over the bundled simulators: the HTTP API and console of
//! `fulfillkit::http_api` mounted in a small axum app, with orders in every state.
//!
//! Run with `cargo run --example console`, then open <http://127.0.0.1:3000/>.
//! `--port N` picks another port; `--check` starts everything, reads the API once through
//! the server and exits (what CI runs).
//!
//! - Wapi (Italy, prepaid): orders delivered, in transit and just exported, one exception
//!   open (an address edit after the parcel left), one resolved, a failed export that a
//!   retry will fix, and a flagged one whose WH number the operator attaches; stock and the
//!   simulator's pickup-point directory for the order card.
//! - Sphere (Canada) and ShipBob (United States), whose statuses arrive by signed webhook at
//!   the webhook router, mounted outside the login.
//!
//! The login is a stub: every request is the operator `alice`, with the role named by the
//! `demo_role` cookie (`warehouse` by default; `/demo/role/sales` switches to `sales`, which
//! sees stock as levels, `/demo/role/courier` to one that sees none).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Request};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use chrono::Utc;

use fulfillkit::http::{HttpConfig, RetryConfig};
use fulfillkit::http_api::{Caller, HttpApi};
use fulfillkit::model::{
    Address, Order, Resolution, ResolutionAction, StockPolicy, StockThresholds, StockView,
};
use fulfillkit::orchestrator::{
    AcceptedPayment, Condition, ExportState, Instance, InstanceSettings, Orchestrator, RoutingRule,
};
use fulfillkit::simulator::{
    Faults, Lifecycle, ShipBobSimulator, SphereInventoryRow, SphereSimulator, WapiSimulator,
    WapiStockRow,
};
use fulfillkit::testkit::{TestClock, sample_order};
use fulfillkit::webhook::{ShipBobWebhooks, WebhookSecret};

/// The secret the host gives ShipBob when it subscribes (ShipBob's documentation example).
const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The cookie the stub login reads the role from.
const ROLE_COOKIE: &str = "demo_role";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let check = args.iter().any(|a| a == "--check");
    let port: u16 = match args.iter().position(|a| a == "--port") {
        Some(i) => args.get(i + 1).ok_or("--port needs a number")?.parse()?,
        None if check => 0,
        None => 3000,
    };
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    let address = listener.local_addr()?;

    // The providers: three simulators on 127.0.0.1.
    let wapi = WapiSimulator::builder()
        .with_pickup_point_directory(true)
        .with_stock([
            WapiStockRow::new("IT", "ITWH2", "Demo Product-1", 15),
            WapiStockRow::new("IT", "ITWH2", "Demo Product-2", 3),
        ])
        .start()
        .await?;
    let sphere = SphereSimulator::builder()
        .with_inventory([SphereInventoryRow::new(100, "Demo Product-1", 120)])
        .start()
        .await?;
    let shipbob = ShipBobSimulator::builder()
        .with_lifecycle(Lifecycle::new([
            "None",
            "Processing/Packed",
            "Completed/InTransit",
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
    let secret = WebhookSecret::parse(WEBHOOK_SECRET)?;

    // Quick retries, so the failures below are recorded at once.
    let mut http = HttpConfig::default();
    http.retry =
        RetryConfig::default().with_backoff(Duration::from_millis(1), Duration::from_millis(5));
    let clock = TestClock::at(Utc::now());
    let orchestrator = Orchestrator::builder()
        .instance(
            Instance::new(
                "wapi-it",
                "Wapi, Italy prepaid (Acme Srl)",
                Arc::new(
                    wapi.provider_builder()
                        .with_pickup_point_directory(true)
                        .with_courier_service("SDA")
                        .with_courier_service("DPD PL")
                        .with_http_config(http)
                        .with_instance_label("wapi-it")
                        .build()?,
                ),
            )
            .with_settings(
                InstanceSettings::default()
                    .with_accepted_payment(AcceptedPayment::Prepaid)
                    .with_warehouse("ITWH2")
                    .with_stock_policy(
                        StockPolicy::new(StockThresholds::new(5, 100)?)
                            .with_view("warehouse", StockView::Exact)
                            .with_view("sales", StockView::Levels),
                    ),
            ),
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
            "Italy",
            Condition::country(["IT"]),
            "wapi-it",
        ))
        .rule(RoutingRule::new(
            "Canada",
            Condition::country(["CA"]),
            "sphere-ca",
        ))
        .rule(RoutingRule::new(
            "United States",
            Condition::country(["US"]),
            "shipbob-us",
        ))
        .clock(clock.clock())
        .build()?;

    // The host's app: the operator API and console behind its login, webhooks outside it.
    let api = HttpApi::new(orchestrator.clone()).with_shipbob_webhooks(
        "shipbob-us",
        ShipBobWebhooks::new(shipbob_provider.clone(), secret.clone()),
    );
    let app = Router::new()
        .nest(
            "/fulfillment",
            api.router().layer(middleware::from_fn(stub_login)),
        )
        .nest("/hooks", api.webhook_router())
        .route("/", get(|| async { Redirect::to("/fulfillment/console/") }))
        .route("/demo/role/{role}", get(switch_role));
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
    });
    shipbob_provider
        .subscribe_webhooks(&format!("http://{address}/hooks/shipbob-us"), &secret)
        .await?;

    let flagged_wh = orders(&orchestrator, &wapi, &sphere, &shipbob, &clock).await?;

    let base = format!("http://{address}");
    if check {
        let page: serde_json::Value = reqwest::Client::new()
            .get(format!("{base}/fulfillment/api/exceptions?status=all"))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let exceptions = page["items"].as_array().map_or(0, Vec::len);
        let failed = orchestrator.failed_exports(None, 100).await?.records;
        let flagged = failed
            .iter()
            .filter(|r| {
                matches!(
                    r.export,
                    ExportState::Failed {
                        retryable: false,
                        ..
                    }
                )
            })
            .count();
        let attempts = shipbob.webhook_attempts();
        let delivered = attempts.iter().filter(|a| a.delivered()).count();
        println!(
            "console check: {exceptions} exceptions, {} failed exports ({flagged} flagged), \
             {delivered} of {} ShipBob webhooks taken, served at {base}",
            failed.len(),
            attempts.len()
        );
        assert_eq!(exceptions, 2, "one open exception and one resolved");
        assert_eq!(
            (failed.len(), flagged),
            (2, 1),
            "one failed export, one flagged"
        );
        assert!(
            delivered > 0 && delivered == attempts.len(),
            "the webhook router took every ShipBob delivery"
        );
        return Ok(());
    }
    println!("fulfillkit console at {base}/fulfillment/console/  (Ctrl-C stops)");
    println!(
        "  signed in as alice (warehouse); {base}/demo/role/sales or /demo/role/courier switches role"
    );
    println!(
        "  open exception: SO-1003; failed exports: SO-1007 (retry), SO-1008 (attach {flagged_wh})"
    );
    println!("  order card: SO-1009 (Wapi), SO-1005 (Sphere), SO-1006 (ShipBob)");
    println!("  API document: {base}/fulfillment/api/openapi.json");
    server.await??;
    Ok(())
}

/// Orders in every state; returns the WH number of the flagged order, for the operator to
/// attach.
async fn orders(
    orchestrator: &Orchestrator,
    wapi: &WapiSimulator,
    sphere: &SphereSimulator,
    shipbob: &ShipBobSimulator,
    clock: &TestClock,
) -> Result<String, Box<dyn std::error::Error>> {
    // Delivered, in transit.
    for (id, status) in [("SO-1001", "InTransit"), ("SO-1002", "Delivered")] {
        let _ = orchestrator.on_order_confirmed(&sample_order(id)).await?;
        wapi.advance(id, status)?;
    }
    // An address edit after the parcel left the warehouse: an exception stays open; another
    // was resolved by an operator already.
    for id in ["SO-1003", "SO-1004"] {
        let order = sample_order(id);
        let _ = orchestrator.on_order_confirmed(&order).await?;
        wapi.advance(id, "Dispatched")?;
        let mut edited = order.clone();
        edited.address.lines = vec!["Fondamenta Nove 3".into()];
        edited.customer.phone = "+393405551234".into();
        let _ = orchestrator.on_order_changed(&edited).await?;
        clock.advance(chrono::Duration::minutes(20));
    }
    let _ = orchestrator
        .resolve_exception(
            "SO-1004",
            Resolution::new(ResolutionAction::AcceptProviderVersion, "bruno")
                .with_note("the customer collects it at the old address"),
        )
        .await?;
    // Canada and the United States.
    let _ = orchestrator
        .on_order_confirmed(&canadian(sample_order("SO-1005")))
        .await?;
    sphere.advance("SO-1005", "picked")?;
    let _ = orchestrator
        .on_order_confirmed(&american(sample_order("SO-1006")))
        .await?;
    shipbob.tick();
    shipbob.tick();
    shipbob.settle_webhooks(Duration::from_secs(5)).await;

    // Flagged: Wapi took the order but its answer was lost, and it refuses the number again.
    wapi.set_faults(
        Faults::none()
            .with_lost_responses(1.0)
            .with_endpoints(["POST /outbounds"]),
    )?;
    let _ = orchestrator
        .on_order_confirmed(&sample_order("SO-1008"))
        .await
        .expect_err("the answer is lost");
    wapi.set_faults(Faults::none())?;
    let _ = orchestrator.retry_failed_exports().await?;
    let flagged_wh = wapi.wh_number("SO-1008").ok_or("Wapi has SO-1008")?;
    // Failed, for automation to retry: Wapi answers 500 until the faults are lifted.
    wapi.set_faults(
        Faults::none()
            .with_server_errors(1.0)
            .with_endpoints(["POST /outbounds"]),
    )?;
    let _ = orchestrator
        .on_order_confirmed(&sample_order("SO-1007"))
        .await
        .expect_err("Wapi fails");
    wapi.set_faults(Faults::none())?;
    // The order card's order: exported, still editable.
    let mut card = sample_order("SO-1009");
    card.lines.push(fulfillkit::model::CartLine {
        sku: "Demo Product-2".into(),
        name: "Demo Product 2".into(),
        product_type: None,
        quantity: 1,
        unit_price: rust_decimal::Decimal::new(990, 2),
    });
    let _ = orchestrator.on_order_confirmed(&card).await?;
    orchestrator.sync_tracking().await?;
    Ok(flagged_wh)
}

/// The host's login, stubbed: always alice, in the role the `demo_role` cookie names.
async fn stub_login(mut request: Request, next: Next) -> Response {
    let role = request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == ROLE_COOKIE)
        .map(|(_, role)| role.to_owned())
        .unwrap_or_else(|| "warehouse".to_owned());
    request.extensions_mut().insert(Caller::new(role, "alice"));
    next.run(request).await
}

/// `/demo/role/{role}`: sets the stub login's role and goes back to the console.
async fn switch_role(Path(role): Path<String>) -> Response {
    let role: String = role
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(32)
        .collect();
    let mut response = Redirect::to("/fulfillment/console/#/card?order=SO-1009").into_response();
    if let Ok(cookie) =
        HeaderValue::from_str(&format!("{ROLE_COOKIE}={role}; Path=/; SameSite=Strict"))
    {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
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
