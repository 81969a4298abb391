//! The fixture of the HTTP API and console tests (`http_api.rs`, `console_browser.rs`): an
//! orchestrator over two `MockProvider` instances with orders in every state the console
//! shows, and the router served on 127.0.0.1 behind a stub of the host's authentication layer.
#![allow(dead_code, reason = "each test file uses a different subset")]

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use chrono::Duration;

use fulfillkit::Error;
use fulfillkit::error::Operation;
use fulfillkit::http_api::{Caller, HttpApi};
use fulfillkit::model::*;
use fulfillkit::orchestrator::*;
use fulfillkit::provider::mock::MockProvider;
use fulfillkit::provider::{Capabilities, FulfillmentProvider};
use fulfillkit::testkit::{TestClock, sample_order};

/// The header the stub host layer reads: `role:operator`.
pub const USER_HEADER: &str = "x-test-user";

/// Orders with an open exception (a phone, a name and an address edit refused), in order.
pub const EXCEPTIONS: [&str; 3] = ["SO-1", "SO-2", "SO-3"];
/// Exported, no exception: the demo order card.
pub const EXPORTED: &str = "SO-4";
/// A failed export automation retries (the provider timed out).
pub const RETRYABLE: &str = "SO-5";
/// A flagged export: the provider refused a duplicate, yet has the order as [`FLAGGED_REF`].
pub const FLAGGED: &str = "SO-6";
/// Exported to the Polish instance, whose provider has neither stock nor directory.
pub const POLISH: &str = "PL-1";

pub struct Console {
    pub orchestrator: Orchestrator,
    pub it: Arc<MockProvider>,
    pub pl: Arc<MockProvider>,
    pub clock: TestClock,
    /// The provider's reference of [`FLAGGED`].
    pub flagged_ref: String,
}

/// The Italian instance's waybill form: a decimal, a text, an optional select.
pub fn italian_form() -> WaybillForm {
    WaybillForm::new(vec![
        WaybillField::new("insured_value", "Insured value", FieldKind::Decimal)
            .with_help("In the order's currency"),
        WaybillField::new(
            "comment",
            "Comment for the courier",
            FieldKind::Text { max_len: Some(50) },
        ),
        WaybillField::new(
            "day_part",
            "Time of day",
            FieldKind::Select {
                options: vec![
                    SelectOption {
                        value: "morning".into(),
                        label: "Morning".into(),
                    },
                    SelectOption {
                        value: "evening".into(),
                        label: "Evening".into(),
                    },
                ],
            },
        ),
    ])
    .expect("a valid form")
}

/// Pickup points in Venice.
pub fn venice_directory() -> Vec<AddressOption> {
    let point = |id: &str, label: &str, line: &str, kind| AddressOption {
        id: id.into(),
        kind,
        label: label.into(),
        address: Address {
            country: "IT".into(),
            region: None,
            city: "Venezia".into(),
            postcode: "30121".into(),
            lines: vec![line.into()],
            provider_address_id: None,
            pickup_point_id: None,
        },
        carrier: Some("SDA".into()),
        opening_hours: None,
    };
    vec![
        point(
            "VE01",
            "Punto Rialto",
            "Ruga dei Oresi 55",
            AddressKind::PickupPoint,
        ),
        point(
            "VE02",
            "Locker San Marco",
            "Calle Larga 12",
            AddressKind::Locker,
        ),
        point(
            "VE03",
            "Tabacchi Cannaregio",
            "Strada Nova 4",
            AddressKind::PickupPoint,
        ),
    ]
}

fn polish(mut order: Order) -> Order {
    order.address.country = "PL".into();
    order.address.city = "Łódź".into();
    order.address.postcode = "90-001".into();
    order.address.lines = vec!["ul. Piotrkowska 1".into()];
    order.customer.phone = "+48501234567".into();
    order.currency = "PLN".into();
    order
}

/// The orchestrator with every order in place.
pub async fn console() -> Console {
    // Edits become exceptions at once: the Italian provider cannot update orders.
    let it = Arc::new(
        MockProvider::new()
            .with_capabilities(Capabilities::all(50, 100).with_update(false))
            .with_waybill_form(italian_form())
            .with_stock([StockLevel::new("Demo Product-1", 15)])
            .with_directory(venice_directory()),
    );
    let pl = Arc::new(MockProvider::new().with_capabilities(Capabilities::new(50, 100)));
    let clock = TestClock::new();
    let policy = StockPolicy::new(StockThresholds::new(5, 100).expect("thresholds"))
        .with_view("warehouse", StockView::Exact)
        .with_view("sales", StockView::Levels);
    let orchestrator = Orchestrator::builder()
        .instance(
            Instance::new("it", "Italy", it.clone())
                .with_settings(InstanceSettings::default().with_stock_policy(policy)),
        )
        .instance(
            // Everyone may see levels here, but the provider has no stock to show.
            Instance::new("pl", "Poland", pl.clone())
                .with_settings(InstanceSettings::default().with_stock_policy(
                    StockPolicy::default().with_default_view(StockView::Levels),
                )),
        )
        .rule(RoutingRule::new("italy", Condition::country(["IT"]), "it"))
        .rule(RoutingRule::new("poland", Condition::country(["PL"]), "pl"))
        .clock(clock.clock())
        .build()
        .expect("an orchestrator");

    let edits: [fn(&mut Order); 3] = [
        |o| o.customer.phone = "+393409999999".into(),
        |o| o.customer.name = "Giulia Bianchi".into(),
        |o| o.address.lines = vec!["Fondamenta Nove 3".into()],
    ];
    for (id, edit) in EXCEPTIONS.iter().zip(edits) {
        let order = sample_order(id);
        let outcome = orchestrator
            .on_order_confirmed(&order)
            .await
            .expect("exported");
        assert!(outcome.is_exported(), "{id}: {outcome:?}");
        let mut edited = order.clone();
        edit(&mut edited);
        let change = orchestrator.on_order_changed(&edited).await.expect("edit");
        assert!(change.exception().is_some(), "{id}: {change:?}");
        clock.advance(Duration::hours(1));
    }

    let outcome = orchestrator
        .on_order_confirmed(&sample_order(EXPORTED))
        .await
        .expect("exported");
    assert!(outcome.is_exported());

    it.fail_next(
        Operation::Create,
        Error::Timeout {
            what: "POST /orders".into(),
        },
        1,
    );
    let failed = orchestrator
        .on_order_confirmed(&sample_order(RETRYABLE))
        .await;
    assert!(failed.is_err(), "{failed:?}");

    // The provider has the order, but refuses it as a duplicate: an operator attaches it.
    let flagged_order = sample_order(FLAGGED);
    let at_provider = it
        .create_order(&flagged_order, &Waybill::new())
        .await
        .expect("created at the provider");
    it.fail_next(
        Operation::Create,
        Error::Conflict {
            message: format!("order {FLAGGED} already exists"),
        },
        1,
    );
    let failed = orchestrator.on_order_confirmed(&flagged_order).await;
    assert!(failed.is_err(), "{failed:?}");

    let outcome = orchestrator
        .on_order_confirmed(&polish(sample_order(POLISH)))
        .await
        .expect("exported");
    assert!(outcome.is_exported());

    Console {
        orchestrator,
        it,
        pl,
        clock,
        flagged_ref: at_provider.reference.provider_ref,
    }
}

/// The stub of the host's authentication layer: a request with `x-test-user: role:name` is
/// the host's user `name` with `role`; any other is refused by the host (403) before the
/// router sees it.
pub async fn host_auth(mut request: Request, next: Next) -> Response {
    let user = request
        .headers()
        .get(USER_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(':'))
        .map(|(role, name)| Caller::new(role, name));
    match user {
        Some(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        None => (StatusCode::FORBIDDEN, "the host's login refused you").into_response(),
    }
}

/// The host's app: the router under `/fulfillment` behind [`host_auth`].
pub fn host_app(orchestrator: Orchestrator) -> Router {
    Router::new().nest(
        "/fulfillment",
        HttpApi::new(orchestrator)
            .router()
            .layer(middleware::from_fn(host_auth)),
    )
}

/// Serves `app` on 127.0.0.1 (a free port); returns its base URL.
pub async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let address = listener.local_addr().expect("an address");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("the server runs");
    });
    format!("http://{address}")
}
