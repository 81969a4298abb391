//! The simulators over the wire, without mockito: each adapter passes the conformance suite
//! against the simulator of its provider; credentials are checked as the real APIs would;
//! duplicates, refusals past the editable stage, lifecycles, stock and directories follow the
//! protocol documents; and every fault knob produces its fault at the configured rate (1,000
//! requests, fixed seeds, with a tolerance).

use std::time::{Duration, Instant};

use async_trait::async_trait;
use hmac::{Hmac, KeyInit, Mac};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use sha1::Sha1;

use fulfillkit::http::{HttpConfig, RetryConfig};
use fulfillkit::model::*;
use fulfillkit::provider::sphere::AuthMode;
use fulfillkit::provider::{CancelOutcome, FulfillmentProvider, UpdateOutcome};
use fulfillkit::simulator::{
    Faults, Lifecycle, SphereCustomer, SphereSimulator, WapiPickupPoint, WapiSimulator,
};
use fulfillkit::testkit::{self, ConformanceDriver};
use fulfillkit::{Error, Result};

/// Requests per fault-rate test.
const RATE_REQUESTS: usize = 1_000;
/// The rate every fault-rate test configures, and the accepted count around its expectation
/// (100 ± 40: four standard deviations of a binomial over 1,000 draws).
const RATE: f64 = 0.1;
const RATE_RANGE: std::ops::RangeInclusive<usize> = 60..=140;

/// Retries with millisecond backoffs, no rate limit, a fixed jitter seed.
fn fast_http(max_retries: usize) -> HttpConfig {
    let mut http = HttpConfig::default();
    http.retry = RetryConfig::default()
        .with_backoff(Duration::from_millis(1), Duration::from_millis(5))
        .with_max_retries(max_retries);
    http.jitter_seed = Some(7);
    http.rate_limit = None;
    http
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .build()
        .expect("a plain HTTP client")
}

/// What the client saw of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// An answer: status, `Retry-After`, body.
    Answered(u16, Option<String>, String),
    /// The connection ended without an answer.
    Dropped,
}

impl Outcome {
    fn status(&self) -> Option<u16> {
        match self {
            Outcome::Answered(status, ..) => Some(*status),
            Outcome::Dropped => None,
        }
    }
}

async fn outcome(request: reqwest::RequestBuilder) -> Outcome {
    let Ok(response) = request.send().await else {
        return Outcome::Dropped;
    };
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match response.text().await {
        Ok(body) => Outcome::Answered(status, retry_after, body),
        Err(_) => Outcome::Dropped,
    }
}

// ---------------------------------------------------------------------------------------------
// Wapi

/// HMAC-SHA1 hex of `body`, computed independently of the adapter and the simulator.
fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A signed `POST {base}{path}` with `body`, as Wapi expects it.
fn wapi_post(
    client: &reqwest::Client,
    wapi: &WapiSimulator,
    path: &str,
    body: &str,
) -> reqwest::RequestBuilder {
    let credentials = wapi.credentials();
    client
        .post(format!("{}{path}", wapi.base_url()))
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .header("x-client-id", credentials.client_id)
        .header(
            "x-signature",
            sign(credentials.secret.expose(), body.as_bytes()),
        )
        .body(body.to_owned())
}

/// A valid create body for order `number`.
fn wapi_create_body(number: &str) -> String {
    json!({
        "orderNumber": number,
        "product": {"name": "Demo Product-1", "quantity": 1, "price": 0, "unitPriceForInvoice": 19.9},
        "cashOnDelivery": 0,
        "receiver": {
            "firstName": "Giulia Rossi", "lastName": "", "phoneNumber": "+393401234567",
            "addressText": "Via Roma 12", "addressAdditionalInfo": "", "city": "Venezia",
            "country": "IT", "zipCode": "30121"
        }
    })
    .to_string()
}

/// Steers the Wapi simulator for the conformance suite.
struct WapiDriver<'a>(&'a WapiSimulator);

#[async_trait]
impl ConformanceDriver for WapiDriver<'_> {
    async fn lock(&self, shipment: &ShipmentRef) -> Result<()> {
        self.0.advance(shipment.order_id.as_str(), "Dispatched")
    }

    async fn report_raw_status(&self, shipment: &ShipmentRef, raw: &str) -> Result<()> {
        self.0.advance(shipment.order_id.as_str(), raw)
    }

    /// The points of [`many_points`], more than two pages of the search.
    async fn directory_query(&self) -> Result<fulfillkit::model::AddressQuery> {
        Ok(fulfillkit::model::AddressQuery::in_country("PL").with_city("Poznan"))
    }

    fn largest_track_batch(&self) -> Option<usize> {
        Some(self.0.stats().largest_track_batch)
    }

    async fn orders_held(&self) -> Option<usize> {
        Some(self.0.orders().len())
    }
}

#[tokio::test]
async fn wapi_adapter_passes_the_conformance_suite() {
    let wapi = WapiSimulator::start().await.unwrap();
    let provider = wapi
        .provider_builder()
        .with_http_config(fast_http(3))
        .build()
        .unwrap();
    testkit::run_all(&provider, &WapiDriver(&wapi)).await;
    let stats = wapi.stats();
    assert_eq!(stats.largest_track_batch, 50);
    assert!(stats.duplicated_order_numbers().is_empty(), "{stats:?}");
    assert_eq!(
        stats.bad_signatures + stats.unauthorized + stats.bad_requests,
        0
    );
    wapi.shutdown().await;
}

/// 230 lockers in Poznan: more than two pages of 100, and far more than a default page.
fn many_points() -> Vec<WapiPickupPoint> {
    (0..230)
        .map(|n| {
            WapiPickupPoint::new(
                format!("POZ{n:03}"),
                "Inpost",
                format!("Paczkomat POZ{n:03}"),
                "PL",
                "Poznan",
                "60-001",
                format!("ul. Długa {n}"),
            )
        })
        .collect()
}

#[tokio::test]
async fn wapi_adapter_with_its_directory_passes_the_conformance_suite() {
    let wapi = WapiSimulator::builder()
        .with_pickup_points(many_points())
        .start()
        .await
        .unwrap();
    let provider = wapi
        .provider_builder()
        .with_http_config(fast_http(3))
        .with_pickup_point_directory(true)
        .build()
        .unwrap();
    let report = testkit::run_all(&provider, &WapiDriver(&wapi)).await;
    assert!(
        report
            .passed
            .contains(&"search_addresses (limit 0 is everything)")
    );
    let everything = provider
        .search_addresses(&fulfillkit::model::AddressQuery::in_country("PL").with_city("Poznan"))
        .await
        .unwrap();
    assert_eq!(everything.len(), 230);
    wapi.shutdown().await;
}

#[tokio::test]
async fn wapi_checks_the_client_id_and_the_signature_over_the_received_bytes() {
    let wapi = WapiSimulator::start().await.unwrap();
    let http = client();
    let body = r#"{"trackingNumbers":[]}"#;
    let good = outcome(wapi_post(&http, &wapi, "/tracking", body)).await;
    assert_eq!(good.status(), Some(200), "{good:?}");

    // Signed over other bytes (one space more): a 400 that says "signature".
    let spaced = r#"{"trackingNumbers": []}"#;
    let credentials = wapi.credentials();
    let forged = http
        .post(format!("{}/tracking", wapi.base_url()))
        .header("x-client-id", credentials.client_id.clone())
        .header(
            "x-signature",
            sign(credentials.secret.expose(), spaced.as_bytes()),
        )
        .body(body);
    let Outcome::Answered(400, _, refusal) = outcome(forged).await else {
        panic!("a wrong signature must be a 400");
    };
    assert_eq!(refusal, r#"{"error":"Invalid signature"}"#);
    let unsigned = http
        .post(format!("{}/tracking", wapi.base_url()))
        .header("x-client-id", credentials.client_id.clone())
        .body(body);
    assert_eq!(outcome(unsigned).await.status(), Some(400));
    let wrong_id = http
        .post(format!("{}/tracking", wapi.base_url()))
        .header("x-client-id", "someone-else")
        .header(
            "x-signature",
            sign(credentials.secret.expose(), body.as_bytes()),
        )
        .body(body);
    assert_eq!(outcome(wrong_id).await.status(), Some(401));

    // The adapter with a wrong secret or id: Unauthenticated, and nothing created.
    let order = testkit::sample_order("SO-AUTH");
    for builder in [
        fulfillkit::provider::wapi::WapiBuilder::new(credentials.client_id.clone(), "wrong"),
        fulfillkit::provider::wapi::WapiBuilder::new("wrong-id", credentials.secret.clone()),
    ] {
        let provider = builder
            .with_base_url(wapi.base_url())
            .with_http_config(fast_http(0))
            .build()
            .unwrap();
        let err = provider
            .create_order(&order, &Waybill::new())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Unauthenticated { .. }), "{err:?}");
    }
    let stats = wapi.stats();
    assert_eq!((stats.bad_signatures, stats.unauthorized), (3, 2));
    assert!(wapi.orders().is_empty());
    assert!(stats.creates.is_empty());
}

#[tokio::test]
async fn wapi_refuses_a_duplicate_order_number_and_counts_it() {
    let wapi = WapiSimulator::start().await.unwrap();
    let order = testkit::sample_order("SO-DUP");
    // Two adapters: each remembers only its own creates.
    let first = wapi.provider_builder().build().unwrap();
    let second = wapi.provider_builder().build().unwrap();
    let shipment = first.create_order(&order, &Waybill::new()).await.unwrap();
    assert_eq!(
        Some(shipment.reference.provider_ref.clone()),
        wapi.wh_number("SO-DUP")
    );
    assert!(shipment.reference.provider_ref.starts_with("WH"));
    let err = second
        .create_order(&order, &Waybill::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");

    let raw = outcome(wapi_post(
        &client(),
        &wapi,
        "/outbounds",
        &wapi_create_body("SO-DUP"),
    ))
    .await;
    assert_eq!(
        raw,
        Outcome::Answered(
            400,
            None,
            r#"{"error":"Order with number 'SO-DUP' already exists"}"#.into()
        )
    );
    let stats = wapi.stats();
    assert_eq!(stats.creates_of("SO-DUP"), 3);
    assert_eq!(stats.duplicates_refused, 2);
    assert_eq!(stats.duplicated_order_numbers(), ["SO-DUP"]);
    assert_eq!(wapi.orders().len(), 1);
}

#[tokio::test]
async fn wapi_refuses_updates_and_cancels_past_the_editable_stage_with_the_documented_bodies() {
    let wapi = WapiSimulator::start().await.unwrap();
    let provider = wapi.provider_builder().build().unwrap();
    let mut order = testkit::sample_order("SO-EDIT");
    let shipment = provider
        .create_order(&order, &Waybill::new())
        .await
        .unwrap()
        .reference;

    // Pending: an edit is applied, the same edit again changes nothing.
    order.customer.name = "Giulia Bianchi".into();
    assert_eq!(
        provider
            .update_order(&shipment, &order, &Waybill::new())
            .await
            .unwrap(),
        UpdateOutcome::Applied
    );
    assert_eq!(
        wapi.order("SO-EDIT").unwrap().body["receiver"]["firstName"],
        "Giulia Bianchi"
    );
    assert_eq!(
        provider
            .update_order(&shipment, &order, &Waybill::new())
            .await
            .unwrap(),
        UpdateOutcome::NoChange
    );
    // A critical incident blocks updates until resolved.
    wapi.set_incident("SO-EDIT", true).unwrap();
    order.customer.name = "Giulia Verdi".into();
    assert_eq!(
        provider
            .update_order(&shipment, &order, &Waybill::new())
            .await
            .unwrap(),
        UpdateOutcome::TooLate {
            state: "critical incident".into()
        }
    );
    wapi.set_incident("SO-EDIT", false).unwrap();

    // Handed to the partner: the documented refusal, raw and through the adapter.
    assert_eq!(wapi.tick(), 1);
    let mut body = wapi.order("SO-EDIT").unwrap().body;
    body["trackingNumber"] = json!(shipment.provider_ref);
    let http = client();
    let refused = r#"{"error":"This order cannot be edited anymore!"}"#;
    let update = outcome(wapi_post(
        &http,
        &wapi,
        "/outbounds/UpdateOrder",
        &body.to_string(),
    ))
    .await;
    assert_eq!(update, Outcome::Answered(400, None, refused.into()));
    let cancel_body = json!({"trackingNumber": shipment.provider_ref, "orderNumber": "SO-EDIT",
        "sourceOrderId": "", "comment": ""})
    .to_string();
    let cancel = outcome(wapi_post(
        &http,
        &wapi,
        "/outbounds/cancelOrder",
        &cancel_body,
    ))
    .await;
    assert_eq!(cancel, Outcome::Answered(400, None, refused.into()));
    let fresh = wapi.provider_builder().build().unwrap();
    assert_eq!(
        fresh
            .update_order(&shipment, &order, &Waybill::new())
            .await
            .unwrap(),
        UpdateOutcome::TooLate {
            state: "AssignedToPartner".into()
        }
    );
    assert_eq!(
        wapi.provider_builder()
            .build()
            .unwrap()
            .cancel_order(&shipment)
            .await
            .unwrap(),
        CancelOutcome::TooLate {
            state: "AssignedToPartner".into()
        }
    );
    assert_eq!(wapi.order("SO-EDIT").unwrap().status, "AssignedToPartner");

    // A pending order cancels, and stays out of the lifecycle.
    let other = provider
        .create_order(&testkit::sample_order("SO-CANCEL"), &Waybill::new())
        .await
        .unwrap()
        .reference;
    assert_eq!(
        provider.cancel_order(&other).await.unwrap(),
        CancelOutcome::Cancelled {
            state: Some("Cancelled".into())
        }
    );
    wapi.tick();
    let cancelled = wapi.order("SO-CANCEL").unwrap();
    assert_eq!(cancelled.history, ["Pending", "Cancelled"]);
}

/// An order to a parcel locker in Warszawa.
fn locker_order(id: &str) -> Order {
    let mut order = testkit::sample_order(id);
    order.address = Address {
        country: "PL".into(),
        region: None,
        city: "Warszawa".into(),
        postcode: "00-001".into(),
        lines: vec!["ul. Prosta 1".into()],
        provider_address_id: None,
        pickup_point_id: Some("WAW01A".into()),
    };
    order.customer.phone = "+48501234567".into();
    order.lines[0].unit_price = Decimal::new(199, 1);
    order.currency = "PLN".into();
    order
}

#[tokio::test]
async fn wapi_lifecycles_have_failed_attempts_returns_and_pickup_points() {
    let wapi = WapiSimulator::start().await.unwrap();
    let provider = wapi.provider_builder().build().unwrap();
    let mut refs = Vec::new();
    for id in ["SO-A", "SO-B", "SO-C"] {
        let order = testkit::sample_order(id);
        refs.push(
            provider
                .create_order(&order, &Waybill::new())
                .await
                .unwrap()
                .reference,
        );
    }
    refs.push(
        provider
            .create_order(&locker_order("SO-D"), &Waybill::new())
            .await
            .unwrap()
            .reference,
    );
    wapi.set_lifecycle("SO-B", Lifecycle::wapi_failed_attempt())
        .unwrap();
    wapi.set_lifecycle("SO-C", Lifecycle::wapi_returned())
        .unwrap();
    let mut moves = Vec::new();
    for _ in 0..8 {
        moves.push(wapi.tick());
    }
    // Lifecycles of 5, 7, 8 and 6 steps: everyone moves, then they finish one by one.
    assert_eq!(moves, [4, 4, 4, 4, 3, 2, 1, 0]);

    let updates = provider.track(&refs).await.unwrap();
    let statuses = |n: usize| updates[n].statuses().to_vec();
    for n in 0..4 {
        let s = statuses(n);
        assert!(
            s.windows(2).all(|w| w[0].at < w[1].at),
            "history stamps increase: {s:?}"
        );
        assert_eq!(s[0].original, "Pending");
    }
    let a = statuses(0);
    let last = a.last().unwrap();
    assert_eq!(last.code, StatusCode::Delivered);
    assert_eq!(last.carrier.as_deref(), Some("SDA"));
    assert!(
        last.carrier_tracking_number
            .as_deref()
            .is_some_and(|n| n.starts_with("SIM"))
    );

    let b = statuses(1);
    let attempt = b
        .iter()
        .find(|s| s.problem == Some(Problem::RecipientAbsent))
        .expect("a failed attempt");
    assert_eq!(attempt.code, StatusCode::Pending);
    assert_eq!(b.last().unwrap().code, StatusCode::Delivered);

    let c = statuses(2);
    let codes: Vec<StatusCode> = c.iter().map(|s| s.code).collect();
    assert!(codes.contains(&StatusCode::Returned), "refused: {codes:?}");
    assert!(codes.contains(&StatusCode::ReturningToSender), "{codes:?}");
    assert_eq!(*codes.last().unwrap(), StatusCode::DeliveredToSender);

    let d = statuses(3);
    assert_eq!(d.last().unwrap().code, StatusCode::Delivered);
    assert_eq!(d.last().unwrap().carrier.as_deref(), Some("Inpost"));
    // The point, its address and opening hours are in the history's comment.
    let detailed = outcome(wapi_post(
        &client(),
        &wapi,
        "/tracking/getDetailedOrderStatus",
        &json!({"trackingNumbers": [refs[3].provider_ref]}).to_string(),
    ))
    .await;
    let Outcome::Answered(200, _, body) = detailed else {
        panic!("{detailed:?}");
    };
    let rows: Value = serde_json::from_str(&body).unwrap();
    let comments: Vec<&str> = rows[0]["statusHistory"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["statusComment"].as_str())
        .collect();
    assert!(
        comments.iter().any(
            |c| c.contains("Paczkomat WAW01A, ul. Prosta 1, 00-001 Warszawa")
                && c.contains("opening hours: 24/7")
        ),
        "{comments:?}"
    );
    assert_eq!(rows[0]["courierSite"], "https://inpost.pl");

    // An explicit advance off the lifecycle: ticks leave the order there.
    wapi.advance("SO-A", "Lost").unwrap();
    assert_eq!(wapi.tick(), 0);
    assert!(matches!(
        wapi.advance("SO-NOPE", "Lost"),
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn wapi_stock_table_and_opt_in_pickup_point_directory() {
    let plain = WapiSimulator::start().await.unwrap();
    assert!(
        !plain
            .provider_builder()
            .build()
            .unwrap()
            .capabilities()
            .address_directory
    );
    let missing = outcome(wapi_post(
        &client(),
        &plain,
        "/pickupPoints/search",
        r#"{"country":"PL"}"#,
    ))
    .await;
    assert_eq!(missing.status(), Some(404));

    let wapi = WapiSimulator::builder()
        .with_pickup_point_directory(true)
        .start()
        .await
        .unwrap();
    // The simulator serves a directory Wapi does not have: the set-up says so.
    let provider = wapi
        .provider_builder()
        .with_pickup_point_directory(true)
        .with_stock_country("IT")
        .build()
        .unwrap();
    let levels = provider.stock(&["Demo Product-1".into()]).await.unwrap();
    assert_eq!(
        levels,
        vec![StockLevel {
            sku: "Demo Product-1".into(),
            warehouse: Some("ITWH2".into()),
            available: 42,
            reserved: Some(8),
            in_transit: Some(5),
        }]
    );
    wapi.set_stock(fulfillkit::simulator::WapiStockRow::new(
        "IT",
        "ITWH2",
        "Demo Product-1",
        3,
    ));
    assert_eq!(
        provider.stock(&["Demo Product-1".into()]).await.unwrap()[0].available,
        3
    );
    // V1 answers one object for one product, as the protocol shows it.
    let v1 = outcome(wapi_post(
        &client(),
        &wapi,
        "/stock/getProductRemainder",
        r#"{"country":"IT","productName":"Demo Product-1"}"#,
    ))
    .await;
    assert_eq!(
        v1,
        Outcome::Answered(
            200,
            None,
            r#"{"country":"IT","productName":"Demo Product-1","reminderQuantity":3}"#.into()
        )
    );

    let found = provider
        .search_addresses(&AddressQuery::in_country("PL").with_city("Warszawa"))
        .await
        .unwrap();
    let codes: Vec<&str> = found.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(codes, ["WAW01A", "WAW07M"]);
    assert_eq!(found[0].kind, AddressKind::Locker);
    assert_eq!(
        found[0]
            .opening_hours
            .as_ref()
            .and_then(|h| h.note.as_deref()),
        Some("24/7")
    );
    let by_text = provider
        .search_addresses(&AddressQuery::in_country("IT").with_text("rialto"))
        .await
        .unwrap();
    assert_eq!(by_text.len(), 1);
    assert_eq!(by_text[0].kind, AddressKind::PickupPoint);
}

#[tokio::test]
async fn wapi_a_lost_create_response_makes_the_retry_a_visible_duplicate() {
    let wapi = WapiSimulator::builder()
        .with_faults(
            Faults::none()
                .with_lost_responses(1.0)
                .with_endpoints(["POST /outbounds"]),
        )
        .start()
        .await
        .unwrap();
    let provider = wapi
        .provider_builder()
        .with_http_config(fast_http(2))
        .build()
        .unwrap();
    let order = testkit::sample_order("SO-LOST");
    let err = provider
        .create_order(&order, &Waybill::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    // The first attempt created the order; both retries were refused as duplicates, and the
    // client heard none of it.
    assert_eq!(wapi.order("SO-LOST").unwrap().status, "Pending");
    let stats = wapi.stats();
    assert_eq!(stats.creates_of("SO-LOST"), 3);
    assert_eq!(stats.duplicates_refused, 2);
    assert_eq!(stats.faults.lost_after_apply, 3);

    wapi.set_faults(Faults::none()).unwrap();
    let err = provider
        .create_order(&order, &Waybill::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
}

#[tokio::test]
async fn wapi_adapter_rides_out_server_errors_and_rate_limits() {
    let wapi = WapiSimulator::builder()
        .with_faults(
            Faults::none()
                .with_server_errors(0.3)
                .with_rate_limits(0.2, 0)
                .with_seed(3),
        )
        .start()
        .await
        .unwrap();
    let provider = wapi
        .provider_builder()
        .with_http_config(fast_http(12))
        .build()
        .unwrap();
    let mut refs = Vec::new();
    for n in 0..20 {
        let order = testkit::sample_order(&format!("SO-RIDE-{n}"));
        refs.push(
            provider
                .create_order(&order, &Waybill::new())
                .await
                .unwrap()
                .reference,
        );
    }
    assert_eq!(provider.track(&refs).await.unwrap().len(), 20);
    let stats = wapi.stats();
    assert!(
        stats.faults.server_errors > 0 && stats.faults.rate_limited > 0,
        "{stats:?}"
    );
    assert!(
        stats.duplicated_order_numbers().is_empty(),
        "5xx and 429 apply nothing"
    );
}

/// Every knob at once, each at [`RATE`]: the four faults are disjoint slices of one draw, so
/// the client sees each at its own rate.
fn all_knobs(seed: u64) -> Faults {
    Faults::none()
        .with_server_errors(RATE)
        .with_rate_limits(RATE, 7)
        .with_resets(RATE)
        .with_lost_responses(RATE)
        .with_seed(seed)
}

/// What the client saw of creates with distinct order numbers, and whether each order exists
/// afterwards (a reset stores nothing, a lost response stores the order).
#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    created: u64,
    server_errors: u64,
    rate_limited: u64,
    resets: u64,
    lost: u64,
}

impl Tally {
    fn of(seen: &[(Outcome, bool)], created: u16, server_error: &str) -> Self {
        let mut tally = Tally::default();
        for (outcome, stored) in seen {
            match (outcome, stored) {
                (Outcome::Answered(status, _, _), true) if *status == created => tally.created += 1,
                (Outcome::Answered(500, _, body), false) if body == server_error => {
                    tally.server_errors += 1;
                }
                (Outcome::Answered(429, Some(after), _), false) if after == "7" => {
                    tally.rate_limited += 1;
                }
                (Outcome::Dropped, false) => tally.resets += 1,
                (Outcome::Dropped, true) => tally.lost += 1,
                other => panic!("unexpected outcome {other:?}"),
            }
        }
        for (knob, n) in [
            ("server_error", tally.server_errors),
            ("rate_limited", tally.rate_limited),
            ("reset_before_response", tally.resets),
            ("lost_after_apply", tally.lost),
        ] {
            assert!(
                RATE_RANGE.contains(&(n as usize)),
                "{knob}: {n} of {RATE_REQUESTS}"
            );
        }
        tally
    }

    /// The simulator's own fault counters, in the same shape.
    fn of_stats(stats: &fulfillkit::simulator::SimStats, created: u64) -> Self {
        Tally {
            created,
            server_errors: stats.faults.server_errors,
            rate_limited: stats.faults.rate_limited,
            resets: stats.faults.resets,
            lost: stats.faults.lost_after_apply,
        }
    }
}

/// `requests` empty tracking requests to a Wapi simulator with `faults`.
async fn wapi_tracking_outcomes(faults: Faults, requests: usize) -> (Vec<Outcome>, WapiSimulator) {
    let wapi = WapiSimulator::builder()
        .with_faults(faults)
        .start()
        .await
        .unwrap();
    let http = client();
    let mut outcomes = Vec::with_capacity(requests);
    for _ in 0..requests {
        outcomes.push(
            outcome(wapi_post(
                &http,
                &wapi,
                "/tracking",
                r#"{"trackingNumbers":[]}"#,
            ))
            .await,
        );
    }
    (outcomes, wapi)
}

#[tokio::test]
async fn wapi_each_fault_knob_comes_at_its_configured_rate() {
    let wapi = WapiSimulator::builder()
        .with_faults(all_knobs(11))
        .start()
        .await
        .unwrap();
    let http = client();
    let mut seen = Vec::with_capacity(RATE_REQUESTS);
    for n in 0..RATE_REQUESTS {
        let number = format!("SO-{n:04}");
        let body = wapi_create_body(&number);
        let outcome = outcome(wapi_post(&http, &wapi, "/outbounds", &body)).await;
        seen.push((outcome, wapi.order(&number).is_some()));
    }
    let tally = Tally::of(&seen, 200, r#"{"Error":"Internal server error"}"#);
    let stats = wapi.stats();
    assert_eq!(Tally::of_stats(&stats, tally.created), tally);
    // Every order exists whose create was applied, the lost ones included; none twice.
    assert_eq!(wapi.orders().len() as u64, tally.created + tally.lost);
    assert_eq!(stats.requests_to("POST /outbounds"), RATE_REQUESTS as u64);
    assert!(stats.duplicated_order_numbers().is_empty());
}

#[tokio::test]
async fn wapi_latency_delays_every_request_and_a_seed_repeats_its_faults() {
    let latency = Duration::from_millis(10);
    let started = Instant::now();
    let (outcomes, wapi) = wapi_tracking_outcomes(Faults::none().with_latency(latency), 20).await;
    // A lower bound only: never time the upper side.
    assert!(started.elapsed() >= latency * 20);
    assert!(outcomes.iter().all(|o| o.status() == Some(200)));
    assert_eq!(wapi.stats().faults.delayed, 20);

    let mixed = |seed| {
        Faults::none()
            .with_server_errors(0.1)
            .with_rate_limits(0.1, 0)
            .with_resets(0.1)
            .with_seed(seed)
    };
    // The statuses seen (`None` for a dropped connection), request by request.
    let sequence = |outcomes: Vec<Outcome>| -> Vec<Option<u16>> {
        outcomes.iter().map(Outcome::status).collect()
    };
    let (one, _a) = wapi_tracking_outcomes(mixed(5), 200).await;
    let (two, _b) = wapi_tracking_outcomes(mixed(5), 200).await;
    let (other, _c) = wapi_tracking_outcomes(mixed(6), 200).await;
    let one = sequence(one);
    assert!(one.contains(&Some(500)) && one.contains(&Some(429)) && one.contains(&None));
    assert_eq!(one, sequence(two));
    assert_ne!(one, sequence(other));
}

#[tokio::test]
async fn wapi_malformed_requests_get_a_json_400_and_the_server_keeps_serving() {
    let wapi = WapiSimulator::start().await.unwrap();
    let http = client();
    for (path, body, expected) in [
        ("/outbounds", "not json", "not valid JSON"),
        ("/outbounds", "[1,2]", "JSON object"),
        (
            "/outbounds",
            r#"{"orderNumber":5}"#,
            "orderNumber is required",
        ),
        (
            "/tracking",
            r#"{"trackingNumbers":"WH1"}"#,
            "array of strings",
        ),
        (
            "/outbounds/UpdateOrder",
            r#"{"orderNumber":"x"}"#,
            "trackingNumber is required",
        ),
    ] {
        let Outcome::Answered(400, _, text) = outcome(wapi_post(&http, &wapi, path, body)).await
        else {
            panic!("{path} {body}: expected a 400");
        };
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert!(
            parsed["error"]
                .as_str()
                .is_some_and(|e| e.contains(expected)),
            "{path} {body}: {text}"
        );
    }
    let huge = "x".repeat(1024 * 1024 + 1);
    assert_eq!(
        outcome(wapi_post(&http, &wapi, "/outbounds", &huge))
            .await
            .status(),
        Some(413)
    );
    let get = http.get(format!("{}/outbounds", wapi.base_url()));
    assert_eq!(outcome(get).await.status(), Some(405));
    assert_eq!(
        outcome(wapi_post(&http, &wapi, "/nowhere", "{}"))
            .await
            .status(),
        Some(404)
    );
    // Paths and keys are case-insensitive, as at Wapi.
    let body = r#"{"TrackingNumbers":[]}"#;
    assert_eq!(
        outcome(wapi_post(&http, &wapi, "/TRACKING", body))
            .await
            .status(),
        Some(200)
    );
    let stats = wapi.stats();
    assert_eq!(stats.bad_requests, 6);
    assert_eq!(stats.requests_to("POST /tracking"), 2);
    assert_eq!(stats.requests_to("GET /outbounds"), 1);
    assert_eq!(stats.requests_to("POST <unknown>"), 1);
}

#[tokio::test]
async fn simulators_stop_on_shutdown_and_on_drop() {
    let wapi = WapiSimulator::start().await.unwrap();
    let addr = wapi.addr();
    assert!(tokio::net::TcpStream::connect(addr).await.is_ok());
    wapi.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());

    let sphere = SphereSimulator::start().await.unwrap();
    let addr = sphere.addr();
    // A pooled keep-alive connection must not outlive the simulator either.
    let http = client();
    let url = format!(
        "{}/{}/suppliers",
        sphere.base_url(),
        sphere.credentials().environment
    );
    let key = sphere.credentials().api_key.expose().to_owned();
    assert_eq!(
        outcome(http.get(&url).bearer_auth(&key)).await.status(),
        Some(200)
    );
    drop(sphere);
    // The abort takes effect when the runtime next polls the server's task.
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    assert_eq!(
        outcome(http.get(&url).bearer_auth(&key)).await,
        Outcome::Dropped
    );
}

// ---------------------------------------------------------------------------------------------
// Sphere

/// Steers the Sphere simulator for the conformance suite.
struct SphereDriver<'a>(&'a SphereSimulator);

#[async_trait]
impl ConformanceDriver for SphereDriver<'_> {
    async fn lock(&self, shipment: &ShipmentRef) -> Result<()> {
        self.0.advance(shipment.order_id.as_str(), "allocated")
    }

    /// More customers in one city than a page of the listing, or a default page of 20.
    async fn directory_query(&self) -> Result<fulfillkit::model::AddressQuery> {
        for n in 0..130 {
            self.0.add_customer(SphereCustomer::new(
                format!("CONF{n:03}"),
                format!("Conformance customer {n}"),
                "US",
                "Conformance City",
                "43004",
                format!("{n} Main St"),
            ));
        }
        Ok(fulfillkit::model::AddressQuery::in_country("US").with_city("Conformance City"))
    }

    async fn report_raw_status(&self, shipment: &ShipmentRef, raw: &str) -> Result<()> {
        self.0.advance(shipment.order_id.as_str(), raw)
    }

    fn largest_track_batch(&self) -> Option<usize> {
        Some(self.0.stats().largest_track_batch)
    }

    async fn orders_held(&self) -> Option<usize> {
        Some(self.0.orders().len())
    }
}

#[tokio::test]
async fn sphere_adapter_passes_the_conformance_suite() {
    let sphere = SphereSimulator::start().await.unwrap();
    let provider = sphere
        .provider_builder()
        .with_http_config(fast_http(3))
        .build()
        .unwrap();
    testkit::run_all(&provider, &SphereDriver(&sphere)).await;
    let stats = sphere.stats();
    assert_eq!(stats.largest_track_batch, 1);
    assert!(stats.duplicated_order_numbers().is_empty(), "{stats:?}");
    assert_eq!(stats.unauthorized + stats.bad_requests, 0);
}

/// The bug of issue 23: the orchestrator fills its directory index with `limit: 0`, which
/// Sphere answered with a default page of 20, so strict addresses refused every customer of
/// a city past the 20th.
#[tokio::test]
async fn strict_addresses_accept_every_customer_of_a_city_past_one_page() {
    use fulfillkit::orchestrator::{Instance, InstanceSettings, Orchestrator};
    let sphere = SphereSimulator::start().await.unwrap();
    for n in 0..26 {
        sphere.add_customer(SphereCustomer::new(
            format!("DAYTON{n:02}"),
            format!("Dayton customer {n}"),
            "US",
            "Dayton",
            "45402",
            format!("{n} Wayne Ave"),
        ));
    }
    let provider = sphere
        .provider_builder()
        .with_http_config(fast_http(3))
        .with_customer_directory(true)
        .build()
        .unwrap();
    let orchestrator = Orchestrator::builder()
        .instance(
            Instance::new("sphere", "Sphere", std::sync::Arc::new(provider))
                .with_settings(InstanceSettings::default().with_strict_addresses(true)),
        )
        .build()
        .unwrap();
    let everything = orchestrator
        .search_addresses(
            "sphere",
            &AddressQuery::in_country("US")
                .with_city("Dayton")
                .with_limit(100),
        )
        .await
        .unwrap();
    assert_eq!(everything.len(), 26);
    for entry in &everything {
        orchestrator
            .validate_address("sphere", &entry.to_address())
            .await
            .unwrap_or_else(|e| panic!("{} refused: {e}", entry.id));
    }
}

#[tokio::test]
async fn sphere_adapter_passes_the_conformance_suite_with_directory_and_small_batches() {
    let sphere = SphereSimulator::start().await.unwrap();
    let provider = sphere
        .provider_builder()
        .with_http_config(fast_http(3))
        .with_customer_directory(true)
        .with_max_track_batch(3)
        .with_auth_mode(AuthMode::Query)
        .build()
        .unwrap();
    testkit::run_all(&provider, &SphereDriver(&sphere)).await;
    assert!(sphere.stats().duplicated_order_numbers().is_empty());
}

/// An order in Columbus, OH, with the protocol fixture's products.
fn jane(id: &str) -> Order {
    let mut order = testkit::sample_order(id);
    order.customer.name = "Jane Smith".into();
    order.customer.phone = "+16145550101".into();
    order.address = Address {
        country: "US".into(),
        region: Some("OH".into()),
        city: "Columbus".into(),
        postcode: "43004".into(),
        lines: vec!["12 Elm St".into(), "Apt 4".into()],
        provider_address_id: None,
        pickup_point_id: None,
    };
    order.lines = vec![CartLine {
        sku: "ABC-100".into(),
        name: "Widget".into(),
        product_type: None,
        quantity: 2,
        unit_price: Decimal::new(2450, 2),
    }];
    order.currency = "USD".into();
    order
}

fn sphere_get(
    client: &reqwest::Client,
    sphere: &SphereSimulator,
    action: &str,
) -> reqwest::RequestBuilder {
    let credentials = sphere.credentials();
    client
        .get(format!(
            "{}/{}/{action}",
            sphere.base_url(),
            credentials.environment
        ))
        .bearer_auth(credentials.api_key.expose())
}

fn sphere_request(
    client: &reqwest::Client,
    sphere: &SphereSimulator,
    method: reqwest::Method,
    action: &str,
    body: &Value,
) -> reqwest::RequestBuilder {
    let credentials = sphere.credentials();
    client
        .request(
            method,
            format!("{}/{}/{action}", sphere.base_url(), credentials.environment),
        )
        .bearer_auth(credentials.api_key.expose())
        .json(body)
}

fn sphere_body(number: &str) -> Value {
    json!({
        "client_code": "100", "order_number": number, "location_id": 100,
        "customer_code": format!("FK-{number}"),
        "ship_to": {"name": "Jane Smith", "street_1": "12 Elm St", "city": "Columbus",
            "state": "OH", "zip": "43004", "country": "US"},
        "lines": [{"line_number": 1, "product_code": "ABC-100", "quantity": 2}]
    })
}

#[tokio::test]
async fn sphere_accepts_the_key_in_each_of_its_three_modes_and_refuses_a_wrong_one() {
    let sphere = SphereSimulator::start().await.unwrap();
    for mode in [AuthMode::Bearer, AuthMode::Header, AuthMode::Query] {
        let good = sphere
            .provider_builder()
            .with_auth_mode(mode)
            .build()
            .unwrap();
        assert!(!good.stock(&[]).await.unwrap().is_empty(), "{mode:?}");
        let credentials = sphere.credentials();
        let wrong = fulfillkit::provider::sphere::SphereBuilder::new(
            credentials.environment,
            "not-the-key",
            credentials.client_code,
            credentials.location_id,
        )
        .with_base_url(sphere.base_url())
        .with_auth_mode(mode)
        .with_http_config(fast_http(0))
        .build()
        .unwrap();
        let err = wrong.stock(&[]).await.unwrap_err();
        assert!(
            matches!(err, Error::Unauthenticated { .. }),
            "{mode:?}: {err:?}"
        );
    }
    let http = client();
    let base = format!(
        "{}/{}/inventory",
        sphere.base_url(),
        sphere.credentials().environment
    );
    let none = outcome(http.get(&base)).await;
    assert_eq!(
        none,
        Outcome::Answered(401, None, r#"{"error":"Invalid API key"}"#.into())
    );
    let key = sphere.credentials().api_key.expose().to_owned();
    // Two ways at once, one of them wrong: refused.
    let mixed = http.get(&base).bearer_auth(&key).header("key", "nope");
    assert_eq!(outcome(mixed).await.status(), Some(401));
    let other_env = format!("{}/another-env/inventory", sphere.base_url());
    assert_eq!(
        outcome(http.get(&other_env).bearer_auth(&key))
            .await
            .status(),
        Some(403)
    );
    let other_client = http
        .get(format!("{base}?client_code=999"))
        .bearer_auth(&key);
    assert_eq!(outcome(other_client).await.status(), Some(403));
    assert_eq!(sphere.stats().unauthorized, 3 + 4);
}

#[tokio::test]
async fn sphere_refuses_a_duplicate_order_number_with_409_and_finds_it_by_number() {
    let sphere = SphereSimulator::start().await.unwrap();
    let http = client();
    let body = sphere_body("SO-DUP");
    let first = outcome(sphere_request(
        &http,
        &sphere,
        reqwest::Method::POST,
        "orders",
        &body,
    ))
    .await;
    let Outcome::Answered(201, _, created) = first else {
        panic!("{first:?}");
    };
    let created: Value = serde_json::from_str(&created).unwrap();
    assert_eq!(created["status"], "open");
    assert_eq!(created["order_id"], 88213);
    assert_eq!(created["lines"][0]["quantity_shipped"], 0);
    let second = outcome(sphere_request(
        &http,
        &sphere,
        reqwest::Method::POST,
        "orders",
        &body,
    ))
    .await;
    assert_eq!(
        second,
        Outcome::Answered(
            409,
            None,
            r#"{"error":"duplicate order_number SO-DUP"}"#.into()
        )
    );
    let found = outcome(sphere_get(
        &http,
        &sphere,
        "orders?client_code=100&order_number=SO-DUP",
    ))
    .await;
    let Outcome::Answered(200, _, rows) = found else {
        panic!("{found:?}");
    };
    let rows: Value = serde_json::from_str(&rows).unwrap();
    assert_eq!(rows.as_array().map(Vec::len), Some(1));
    assert_eq!(rows[0]["order_id"], 88213);

    // The adapter finds the order by number instead of posting it again.
    let order = jane("SO-DUP");
    let shipment = sphere
        .provider_builder()
        .build()
        .unwrap()
        .create_order(&order, &Waybill::new())
        .await
        .unwrap();
    assert_eq!(shipment.reference.provider_ref, "88213");
    let stats = sphere.stats();
    assert_eq!(stats.creates_of("SO-DUP"), 2);
    assert_eq!(stats.duplicates_refused, 1);
    assert_eq!(stats.requests_to("POST /orders"), 2);
}

#[tokio::test]
async fn sphere_refuses_updates_and_voids_once_allocated_with_the_documented_bodies() {
    let sphere = SphereSimulator::start().await.unwrap();
    let provider = sphere.provider_builder().build().unwrap();
    let mut order = jane("SO-LOCK");
    let shipment = provider
        .create_order(&order, &Waybill::new())
        .await
        .unwrap()
        .reference;
    order.customer.name = "Jane Doe".into();
    assert_eq!(
        provider
            .update_order(&shipment, &order, &Waybill::new())
            .await
            .unwrap(),
        UpdateOutcome::Applied
    );
    assert_eq!(
        sphere.order("SO-LOCK").unwrap().body["ship_to"]["name"],
        "Jane Doe"
    );

    assert_eq!(sphere.tick(), 1);
    let id = shipment.provider_ref.clone();
    let http = client();
    let void = outcome(sphere_request(
        &http,
        &sphere,
        reqwest::Method::DELETE,
        &format!("orders/{id}"),
        &json!({}),
    ))
    .await;
    assert_eq!(
        void,
        Outcome::Answered(
            409,
            None,
            format!(r#"{{"error":"Order {id} is allocated and cannot be voided"}}"#)
        )
    );
    let update = outcome(sphere_request(
        &http,
        &sphere,
        reqwest::Method::POST,
        &format!("orders/{id}"),
        &sphere_body("SO-LOCK"),
    ))
    .await;
    assert_eq!(update.status(), Some(409));
    assert_eq!(
        provider
            .update_order(&shipment, &order, &Waybill::new())
            .await
            .unwrap(),
        UpdateOutcome::TooLate {
            state: "allocated".into()
        }
    );
    assert_eq!(
        provider.cancel_order(&shipment).await.unwrap(),
        CancelOutcome::TooLate {
            state: "allocated".into()
        }
    );

    let open = provider
        .create_order(&jane("SO-OPEN"), &Waybill::new())
        .await
        .unwrap()
        .reference;
    assert_eq!(
        provider.cancel_order(&open).await.unwrap(),
        CancelOutcome::Cancelled {
            state: Some("void".into())
        }
    );
    assert_eq!(sphere.order("SO-OPEN").unwrap().status, "void");
    let again = outcome(sphere_request(
        &http,
        &sphere,
        reqwest::Method::DELETE,
        &format!("orders/{}", open.provider_ref),
        &json!({}),
    ))
    .await;
    assert_eq!(again.status(), Some(200));
    let unknown = outcome(sphere_get(&http, &sphere, "orders/1")).await;
    assert_eq!(
        unknown,
        Outcome::Answered(404, None, r#"{"error":"Order 1 not found"}"#.into())
    );
}

#[tokio::test]
async fn sphere_lifecycles_ship_with_a_carrier_tracking_number() {
    let sphere = SphereSimulator::builder()
        .with_lifecycle_mix([(1, Lifecycle::sphere_returned())])
        .start()
        .await
        .unwrap();
    let provider = sphere
        .provider_builder()
        .with_ship_via("UPS-GND")
        .build()
        .unwrap();
    let shipment = provider
        .create_order(
            &jane("SO-SHIP"),
            &Waybill::new().with("ship_via", "UPS-GND"),
        )
        .await
        .unwrap()
        .reference;
    for _ in 0..4 {
        sphere.tick();
    }
    assert_eq!(sphere.order("SO-SHIP").unwrap().status, "shipped");
    let updates = provider
        .track(std::slice::from_ref(&shipment))
        .await
        .unwrap();
    let status = updates[0].statuses().last().unwrap().clone();
    assert_eq!(status.code, StatusCode::InTransit);
    assert_eq!(status.carrier.as_deref(), Some("UPS"));
    assert!(
        status
            .carrier_tracking_number
            .as_deref()
            .is_some_and(|n| n.starts_with("1Z999AA1")),
        "{status:?}"
    );
    sphere.tick();
    let updates = provider
        .track(std::slice::from_ref(&shipment))
        .await
        .unwrap();
    assert_eq!(
        updates[0].statuses().last().unwrap().code,
        StatusCode::DeliveredToSender
    );
    assert_eq!(
        sphere.order("SO-SHIP").unwrap().history,
        [
            "open",
            "allocated",
            "picked",
            "packed",
            "shipped",
            "returned"
        ]
    );
    assert_eq!(sphere.tick(), 0);

    // The shipment as `GET /shipments` lists it, filtered by ship date.
    let http = client();
    let rows = |query: &str| {
        let request = sphere_get(&http, &sphere, &format!("shipments?{query}"));
        async move {
            match outcome(request).await {
                Outcome::Answered(200, _, body) => {
                    serde_json::from_str::<Vec<Value>>(&body).unwrap()
                }
                other => panic!("{other:?}"),
            }
        }
    };
    let shipped = rows("order_number=SO-SHIP&from_date=2000-01-01").await;
    assert_eq!(shipped.len(), 1);
    assert_eq!(
        shipped[0]["order_id"],
        json!(shipment.provider_ref.parse::<u64>().unwrap())
    );
    assert_eq!(shipped[0]["service"], "Ground");
    assert_eq!(shipped[0]["packages"][0]["weight_unit"], "LB");
    assert!(rows("from_date=2999-01-01").await.is_empty());
    assert_eq!(rows("").await.len(), 1, "one shipment in all");
    let accounts = outcome(sphere_get(
        &http,
        &sphere,
        "inventory_accounts?client_code=100",
    ))
    .await;
    let Outcome::Answered(200, _, accounts) = accounts else {
        panic!("{accounts:?}");
    };
    let ids: Vec<u64> = serde_json::from_str::<Vec<Value>>(&accounts)
        .unwrap()
        .iter()
        .filter_map(|a| a["id"].as_u64())
        .collect();
    assert_eq!(ids, [100, 110]);
}

#[tokio::test]
async fn wapi_stores_courier_comments_for_known_orders() {
    let wapi = WapiSimulator::start().await.unwrap();
    let http = client();
    let created = outcome(wapi_post(
        &http,
        &wapi,
        "/outbounds",
        &wapi_create_body("SO-NOTE"),
    ))
    .await;
    assert_eq!(created.status(), Some(200));
    let wh = wapi.wh_number("SO-NOTE").unwrap();
    let comment =
        json!({"trackingNumber": wh, "commentForCourier": "after 17:00", "solveCode": "1"});
    let stored = outcome(wapi_post(
        &http,
        &wapi,
        "/courier/addComment",
        &comment.to_string(),
    ))
    .await;
    assert_eq!(stored.status(), Some(200));
    assert_eq!(wapi.courier_comments("SO-NOTE"), [comment]);
    let unknown = json!({"trackingNumber": "WH404", "commentForCourier": "x"});
    let refused = outcome(wapi_post(
        &http,
        &wapi,
        "/courier/addComment",
        &unknown.to_string(),
    ))
    .await;
    assert_eq!(refused.status(), Some(400));
}

#[tokio::test]
async fn sphere_customers_directory_inventory_and_product_master() {
    let sphere = SphereSimulator::start().await.unwrap();
    let provider = sphere
        .provider_builder()
        .with_customer_directory(true)
        .build()
        .unwrap();
    provider
        .create_order(&jane("SO-CUST"), &Waybill::new())
        .await
        .unwrap();
    // The order's ship-to became a customer of the directory.
    let found = provider
        .search_addresses(&AddressQuery::in_country("US").with_text("smith"))
        .await
        .unwrap();
    let codes: Vec<&str> = found.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(codes, ["FK-SO-CUST"]);
    assert_eq!(found[0].address.city, "Columbus");
    let stores = provider
        .search_addresses(&AddressQuery::in_country("US").with_text("acme"))
        .await
        .unwrap();
    assert_eq!(stores.len(), 2);

    // Stock of the instance's account only: the quarantine account is never counted.
    let levels = provider.stock(&["ABC-100".into()]).await.unwrap();
    assert_eq!(
        levels,
        vec![StockLevel {
            sku: "ABC-100".into(),
            warehouse: Some("100".into()),
            available: 112,
            reserved: Some(8),
            in_transit: None,
        }]
    );

    let mut unknown = jane("SO-UNKNOWN");
    unknown.lines[0].sku = "NOPE-1".into();
    let err = provider
        .create_order(&unknown, &Waybill::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Validation { fields, .. }
            if fields[0].path == "lines[0].product_code"
            && fields[0].reason == "Unknown product code NOPE-1"),
        "{err:?}"
    );
    assert!(sphere.order("SO-UNKNOWN").is_none());

    let http = client();
    let bad = outcome(sphere_request(
        &http,
        &sphere,
        reqwest::Method::POST,
        "orders",
        &json!({"client_code": "100", "lines": []}),
    ))
    .await;
    let Outcome::Answered(422, _, text) = bad else {
        panic!("{bad:?}");
    };
    let errors: Value = serde_json::from_str(&text).unwrap();
    let fields: Vec<&str> = errors["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(
        fields,
        [
            "order_number",
            "customer_code",
            "ship_to",
            "location_id",
            "lines"
        ]
    );
    let not_json = http
        .post(format!(
            "{}/{}/orders",
            sphere.base_url(),
            sphere.credentials().environment
        ))
        .bearer_auth(sphere.credentials().api_key.expose())
        .body("{");
    assert_eq!(outcome(not_json).await.status(), Some(400));
    let page = outcome(sphere_get(&http, &sphere, "inventory?limit=2&page=1")).await;
    let Outcome::Answered(200, _, rows) = page else {
        panic!("{page:?}");
    };
    let rows: Value = serde_json::from_str(&rows).unwrap();
    assert_eq!(rows[0]["product_code"], "Demo Product-1");
}

#[tokio::test]
async fn sphere_a_lost_create_response_is_found_by_number_not_posted_twice() {
    let sphere = SphereSimulator::builder()
        .with_faults(
            Faults::none()
                .with_lost_responses(1.0)
                .with_endpoints(["POST /orders"]),
        )
        .start()
        .await
        .unwrap();
    let provider = sphere
        .provider_builder()
        .with_http_config(fast_http(3))
        .build()
        .unwrap();
    let shipment = provider
        .create_order(&jane("SO-LOST"), &Waybill::new())
        .await
        .unwrap();
    assert_eq!(
        Some(shipment.reference.provider_ref),
        sphere.order_id("SO-LOST").map(|id| id.to_string())
    );
    let stats = sphere.stats();
    assert_eq!(stats.creates_of("SO-LOST"), 1);
    assert_eq!(stats.faults.lost_after_apply, 1);
    assert_eq!(
        stats.requests_to("GET /orders"),
        2,
        "one lookup before, one after"
    );
}

#[tokio::test]
async fn sphere_each_fault_knob_comes_at_its_configured_rate_and_latency_delays() {
    let sphere = SphereSimulator::builder()
        .with_faults(all_knobs(21))
        .start()
        .await
        .unwrap();
    let http = client();
    let mut seen = Vec::with_capacity(RATE_REQUESTS);
    for n in 0..RATE_REQUESTS {
        let number = format!("SO-{n:04}");
        let body = sphere_body(&number);
        let outcome = outcome(sphere_request(
            &http,
            &sphere,
            reqwest::Method::POST,
            "orders",
            &body,
        ))
        .await;
        seen.push((outcome, sphere.order(&number).is_some()));
    }
    let tally = Tally::of(&seen, 201, r#"{"error":"Internal server error"}"#);
    let stats = sphere.stats();
    assert_eq!(Tally::of_stats(&stats, tally.created), tally);
    assert_eq!(sphere.orders().len() as u64, tally.created + tally.lost);
    assert!(stats.duplicated_order_numbers().is_empty());

    // Knobs change at runtime.
    let latency = Duration::from_millis(5);
    sphere
        .set_faults(Faults::none().with_latency(latency))
        .unwrap();
    sphere.reset_stats();
    let started = Instant::now();
    for _ in 0..10 {
        let read = outcome(sphere_get(&http, &sphere, "suppliers")).await;
        assert_eq!(read.status(), Some(200));
    }
    // A lower bound only: never time the upper side.
    assert!(started.elapsed() >= latency * 10);
    assert_eq!(sphere.stats().faults.delayed, 10);
    assert!(sphere.set_faults(Faults::none().with_resets(2.0)).is_err());
    assert_eq!(
        sphere.faults().latency,
        latency,
        "a refused change keeps the old knobs"
    );
}

#[tokio::test]
async fn simulators_are_shareable_and_keep_their_secrets_out_of_debug_output() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<WapiSimulator>();
    shareable::<SphereSimulator>();

    let wapi_builder = WapiSimulator::builder().with_credentials("wapi-id-1", "wapi-s3cr3t");
    let wapi = wapi_builder.clone().start().await.unwrap();
    let sphere_builder =
        SphereSimulator::builder().with_account("env-1", "sphere-s3cr3t", "100", 100);
    let sphere = sphere_builder.clone().start().await.unwrap();
    let shown = format!(
        "{wapi_builder:?} {wapi:?} {:?} {sphere_builder:?} {sphere:?} {:?}",
        wapi.credentials(),
        sphere.credentials()
    );
    for secret in ["wapi-s3cr3t", "sphere-s3cr3t", "wapi-id-1"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains(&sphere.base_url()), "{shown}");
}
