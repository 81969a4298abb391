//! The Wapi adapter against a scripted HTTP server (mockito): every endpoint's exact request
//! (path, auth headers, signature recomputed here, JSON body), every fixture of the protocol
//! document parsed, every error path with hit counts, secrets absent from every output, and the
//! conformance suite.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use mockito::{Matcher, Server, ServerGuard};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use fulfillkit::error::Operation;
use fulfillkit::http::HttpConfig;
use fulfillkit::model::*;
use fulfillkit::provider::wapi::{WapiBuilder, WapiProvider};
use fulfillkit::provider::{CancelOutcome, FulfillmentProvider, UpdateOutcome};
use fulfillkit::testkit::{self, ConformanceDriver};
use fulfillkit::{Error, Result};

mod support;
use support::wapi::*;

// ---------------------------------------------------------------------------------------------
// Endpoints

#[tokio::test]
async fn create_sends_the_signed_fixture_body_and_returns_the_wh_number() {
    let mut server = Server::new_async().await;
    let (order, waybill) = cod_italy();
    let m = server
        .mock("POST", "/api/outbounds")
        .match_request(signed)
        .match_body(Matcher::Json(cod_italy_body()))
        .with_body(r#"{"trackingNumber":"WH0000653702"}"#)
        .expect(1)
        .create_async()
        .await;
    let wapi = provider(&server);
    let shipment = wapi.create_order(&order, &waybill).await.unwrap();
    assert_eq!(
        shipment.reference,
        ShipmentRef::new("SO-1001", "WH0000653702")
    );
    assert_eq!(shipment.tracking_number.as_deref(), Some("WH0000653702"));
    // A repeated create in this process returns the same shipment without a second request.
    assert_eq!(wapi.create_order(&order, &waybill).await.unwrap(), shipment);
    m.assert_async().await;
}

#[tokio::test]
async fn create_to_a_parcel_locker_prepaid() {
    let mut server = Server::new_async().await;
    let mut order = testkit::sample_order("SO-1002");
    order.customer = Customer {
        name: "Jan Nowak".into(),
        phone: "+48501234567".into(),
        email: Some("jan@example.com".into()),
    };
    order.address = Address {
        country: "PL".into(),
        region: None,
        city: "Warszawa".into(),
        postcode: "00-001".into(),
        lines: vec!["ul. Prosta 1".into()],
        provider_address_id: None,
        pickup_point_id: Some("WAW01A".into()),
    };
    order.lines = vec![CartLine {
        sku: "Demo Product-1".into(),
        name: "Demo".into(),
        product_type: None,
        quantity: 1,
        unit_price: Decimal::new(199, 1),
    }];
    order.currency = "PLN".into();
    let expected = json!({
        "orderNumber": "SO-1002",
        "product": {"name": "Demo Product-1", "quantity": 1, "price": 0, "unitPriceForInvoice": 19.9},
        "cashOnDelivery": 0,
        "isSelfCollect": true,
        "selfCollectPointName": "WAW01A",
        "receiver": {
            "firstName": "Jan Nowak", "lastName": "", "phoneNumber": "+48501234567",
            "emailAddress": "jan@example.com", "addressText": "ul. Prosta 1",
            "addressAdditionalInfo": "", "city": "Warszawa", "country": "PL", "zipCode": "00-001"
        }
    });
    let m = server
        .mock("POST", "/api/outbounds")
        .match_request(signed)
        .match_body(Matcher::Json(expected))
        .with_body(r#"{"trackingNumber":"WH0000653703"}"#)
        .create_async()
        .await;
    let shipment = provider(&server)
        .create_order(&order, &Waybill::new())
        .await
        .unwrap();
    assert_eq!(shipment.reference.provider_ref, "WH0000653703");
    m.assert_async().await;
}

#[tokio::test]
async fn update_sends_the_full_body_with_the_wh_number() {
    let mut server = Server::new_async().await;
    let (order, waybill) = cod_italy();
    let mut expected = cod_italy_body();
    expected["trackingNumber"] = json!("WH0000653702");
    let m = server
        .mock("POST", "/api/outbounds/UpdateOrder")
        .match_request(signed)
        .match_body(Matcher::Json(expected))
        // Not JSON, exactly as the documentation shows it.
        .with_body("{ \"The order with number 'WH0000653702' has been updated successfully\" }")
        .create_async()
        .await;
    let outcome = provider(&server)
        .update_order(
            &ShipmentRef::new("SO-1001", "WH0000653702"),
            &order,
            &waybill,
        )
        .await
        .unwrap();
    assert_eq!(outcome, UpdateOutcome::Applied);
    m.assert_async().await;
}

#[tokio::test]
async fn update_refusals_map_as_documented() {
    let reference = ShipmentRef::new("SO-1001", "WH0000653702");
    let (order, waybill) = cod_italy();

    // "cannot be edited": TooLate with the state read through tracking.
    let mut server = Server::new_async().await;
    server
        .mock("POST", "/api/outbounds/UpdateOrder")
        .with_status(400)
        .with_body(r#"{"error": "This order cannot be edited anymore!"}"#)
        .create_async()
        .await;
    let tracking = server
        .mock("POST", "/api/tracking")
        .match_request(signed)
        .match_body(Matcher::Exact(r#"{"trackingNumbers":["WH0000653702"]}"#.into()))
        .with_body(r#"{"statuses":[{"trackingNumber":"WH0000653702","deliveryStatus":"AssignedToPartner","troubleStatus":null}]}"#)
        .expect(1)
        .create_async()
        .await;
    let wapi = provider(&server);
    assert_eq!(
        wapi.update_order(&reference, &order, &waybill)
            .await
            .unwrap(),
        UpdateOutcome::TooLate {
            state: "AssignedToPartner".into()
        }
    );
    tracking.assert_async().await;
    // Now the adapter knows the state is past editing: no further call.
    let update_hits = server
        .mock("POST", "/api/outbounds/UpdateOrder")
        .expect(0)
        .create_async()
        .await;
    assert!(matches!(
        wapi.update_order(&reference, &order, &waybill)
            .await
            .unwrap(),
        UpdateOutcome::TooLate { .. }
    ));
    update_hits.assert_async().await;

    for (body, expected) in [
        (
            r#"{"error": "This order has critical incident opened. Please resolve incident before order update."}"#,
            UpdateOutcome::TooLate {
                state: "critical incident".into(),
            },
        ),
        (
            r#"{"error": "The data you have provided brings no changes. Please check and try again!"}"#,
            UpdateOutcome::NoChange,
        ),
    ] {
        let mut server = Server::new_async().await;
        server
            .mock("POST", "/api/outbounds/UpdateOrder")
            .with_status(400)
            .with_body(body)
            .create_async()
            .await;
        let outcome = provider(&server)
            .update_order(&reference, &order, &waybill)
            .await
            .unwrap();
        assert_eq!(outcome, expected, "{body}");
    }
}

#[tokio::test]
async fn cancel_sends_all_four_fields_and_judges_refusals_by_the_real_state() {
    let reference = ShipmentRef::new("SO-1001", "WH0000653702");
    let mut server = Server::new_async().await;
    let m = server
        .mock("POST", "/api/outbounds/cancelOrder")
        .match_request(signed)
        .match_body(Matcher::Exact(
            r#"{"trackingNumber":"WH0000653702","orderNumber":"SO-1001","sourceOrderId":"","comment":""}"#
                .into(),
        ))
        .create_async()
        .await;
    assert_eq!(
        provider(&server).cancel_order(&reference).await.unwrap(),
        CancelOutcome::Cancelled {
            state: Some("Cancelled".into())
        }
    );
    m.assert_async().await;

    for (state, expected) in [
        (
            "Cancelled",
            Some(CancelOutcome::AlreadyCancelled {
                state: Some("Cancelled".into()),
            }),
        ),
        (
            "AssignedToPartner",
            Some(CancelOutcome::TooLate {
                state: "AssignedToPartner".into(),
            }),
        ),
        ("Pending", None),
    ] {
        let mut server = Server::new_async().await;
        server
            .mock("POST", "/api/outbounds/cancelOrder")
            .with_status(400)
            .with_body(r#"{"error":"cannot cancel"}"#)
            .create_async()
            .await;
        server
            .mock("POST", "/api/tracking")
            .with_body(format!(
                r#"{{"statuses":[{{"trackingNumber":"WH0000653702","deliveryStatus":"{state}"}}]}}"#
            ))
            .create_async()
            .await;
        let result = provider(&server).cancel_order(&reference).await;
        match expected {
            Some(outcome) => assert_eq!(result.unwrap(), outcome, "{state}"),
            // Refused while still pending: a conflict naming the state, not a bad request.
            None => assert!(
                matches!(&result, Err(Error::Conflict { message }) if message.contains("Pending") && message.contains("cannot cancel")),
                "{result:?}"
            ),
        }
    }
}

const DETAILED: &str = r#"[{"statusHistory":[{"statusDate":"2024-05-02T05:56:52.05","statusName":"Pending","statusComment":null,"troubleStatus":null},{"statusDate":"2024-05-04T13:48:00","statusName":"InTransit","statusComment":"Mancata consegna per destinatario assente","troubleStatus":"IsAbsent1"}],"statusDate":null,"trackingNumber":"WH0000653702","deliveryStatus":"InTransit","deliveryStatusText":"[04.05.2024 13:48:00] Status: 'InTransit'; Comments: 'Mancata consegna per destinatario assente'","troubleStatus":"IsAbsent1","courierName":"SDA","courierTrackingNumber":"383148H047484"}]"#;

#[tokio::test]
async fn track_maps_the_detailed_fixture_and_treats_missing_numbers_as_no_news() {
    let mut server = Server::new_async().await;
    let m = server
        .mock("POST", "/api/tracking/getDetailedOrderStatus")
        .match_request(signed)
        .match_body(Matcher::Exact(
            r#"{"trackingNumbers":["WH0000653702","WH0000653703"]}"#.into(),
        ))
        .with_body(DETAILED)
        .create_async()
        .await;
    let refs = [
        ShipmentRef::new("SO-1001", "WH0000653702"),
        ShipmentRef::new("SO-1003", "WH0000653703"),
    ];
    let updates = provider(&server).track(&refs).await.unwrap();
    m.assert_async().await;
    assert_eq!(updates.len(), 1, "the missing number is no news");
    assert_eq!(updates[0].shipment(), &refs[0]);
    let statuses = updates[0].statuses();
    assert_eq!(statuses.len(), 2);
    assert_eq!(statuses[0].code, StatusCode::Registered);
    assert_eq!(statuses[0].original, "Pending");
    assert_eq!(statuses[0].at.to_rfc3339(), "2024-05-02T05:56:52.050+00:00");
    let last = &statuses[1];
    assert_eq!(last.code, StatusCode::Pending);
    assert_eq!(last.problem, Some(Problem::RecipientAbsent));
    assert_eq!(last.carrier.as_deref(), Some("SDA"));
    assert_eq!(
        last.carrier_tracking_number.as_deref(),
        Some("383148H047484")
    );
}

#[tokio::test]
async fn track_splits_into_batches_of_50() {
    let mut server = Server::new_async().await;
    let sizes = Arc::new(Mutex::new(Vec::new()));
    let seen = sizes.clone();
    server
        .mock("POST", "/api/tracking/getDetailedOrderStatus")
        .with_body_from_request(move |req| {
            let body: Value = serde_json::from_slice(req.body().unwrap()).unwrap();
            seen.lock()
                .unwrap()
                .push(body["trackingNumbers"].as_array().unwrap().len());
            b"[]".to_vec()
        })
        .expect(3)
        .create_async()
        .await;
    let refs: Vec<_> = (0..120)
        .map(|i| ShipmentRef::new(format!("SO-{i}"), format!("WH{i:010}")))
        .collect();
    provider(&server).track(&refs).await.unwrap();
    assert_eq!(*sizes.lock().unwrap(), [50, 50, 20]);
}

#[tokio::test]
async fn a_status_never_seen_before_is_unknown_with_its_text() {
    let mut server = Server::new_async().await;
    server
        .mock("POST", "/api/tracking/getDetailedOrderStatus")
        .with_body(r#"[{"trackingNumber":"WH1","deliveryStatus":"TeleportedToMars","statusHistory":[{"statusDate":"2024-05-02T05:56:52","statusName":"TeleportedToMars"}]}]"#)
        .create_async()
        .await;
    let updates = provider(&server)
        .track(&[ShipmentRef::new("SO-1", "WH1")])
        .await
        .unwrap();
    let status = &updates[0].statuses()[0];
    assert_eq!(status.code, StatusCode::Unknown);
    assert_eq!(status.original, "TeleportedToMars");
}

#[tokio::test]
async fn stock_reads_v2_with_the_documented_spellings() {
    let mut server = Server::new_async().await;
    let m = server
        .mock("POST", "/api/stock/getProductRemainderV2")
        .match_request(signed)
        .match_body(Matcher::Exact(r#"{"country":"IT","warehouseName":"ITWH2"}"#.into()))
        .with_body(r#"[{"country":"Italy","warehouseName":"ITWH2","productName":"Demo Product-1","remainingQuantity":50,"reservedQuantity":8,"availableQuantity":42,"InTransitQuantity":5,"returningQuantity":1},{"country":"Italy","warehouseName":"ITWH2","productName":"Demo Product-2","remainingQuantity":0,"reservedQuantity":0,"availableQuantity":0,"InTransitQuantity":0,"returningQuantity":0}]"#)
        .create_async()
        .await;
    let wapi = builder(&server)
        .with_stock_country("IT")
        .with_warehouse("ITWH2", false)
        .build()
        .unwrap();
    let levels = wapi.stock(&["Demo Product-1".into()]).await.unwrap();
    m.assert_async().await;
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
}

/// `limit: 0` is everything: full pages of 100 until a short one; a server that ignores
/// `offset` (an operator-run list) answers the first page again, and the adapter stops there
/// instead of looping.
#[tokio::test]
async fn a_directory_search_for_everything_stops_when_the_server_does_not_page() {
    let mut server = Server::new_async().await;
    let points: Vec<Value> = (0..100)
        .map(|n| json!({"code": format!("WAW{n:03}"), "city": "Warszawa", "country": "PL"}))
        .collect();
    let m = server
        .mock("POST", "/api/pickupPoints/search")
        .match_request(signed)
        .with_body(json!({ "points": points }).to_string())
        .expect(2)
        .create_async()
        .await;
    let wapi = builder(&server)
        .with_pickup_point_directory(true)
        .build()
        .unwrap();
    let found = wapi
        .search_addresses(&AddressQuery::in_country("PL").with_city("Warszawa"))
        .await
        .unwrap();
    m.assert_async().await;
    assert_eq!(found.len(), 100);
}

#[tokio::test]
async fn address_directory_is_unsupported_unless_opted_in() {
    let mut server = Server::new_async().await;
    let query = AddressQuery::in_country("PL")
        .with_city("Warszawa")
        .with_text("WAW");
    let err = provider(&server)
        .search_addresses(&query)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Unsupported {
            operation: Operation::SearchAddresses,
            ..
        }
    ));
    assert!(!provider(&server).capabilities().address_directory);

    let m = server
        .mock("POST", "/api/pickupPoints/search")
        .match_request(signed)
        .with_body(r#"{"points":[{"code":"WAW01A","carrier":"Inpost","name":"Paczkomat WAW01A","addressText":"ul. Prosta 1","city":"Warszawa","zipCode":"00-001","country":"PL","openingHours":"24/7"}]}"#)
        .create_async()
        .await;
    let wapi = builder(&server)
        .with_pickup_point_directory(true)
        .build()
        .unwrap();
    assert!(wapi.capabilities().address_directory);
    let found = wapi.search_addresses(&query).await.unwrap();
    m.assert_async().await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, "WAW01A");
    assert_eq!(found[0].kind, AddressKind::Locker);
    assert_eq!(found[0].address.postcode, "00-001");
    assert_eq!(
        found[0]
            .opening_hours
            .as_ref()
            .and_then(|h| h.note.as_deref()),
        Some("24/7")
    );
}

#[tokio::test]
async fn waybill_form_offers_the_configured_couriers() {
    let server = Server::new_async().await;
    let form = provider(&server).waybill_form().into_owned();
    let keys: Vec<&str> = form.fields.iter().map(|f| f.key.as_str()).collect();
    for key in [
        "preferred_delivery_date",
        "preferred_delivery_day_part",
        "check_before_cod",
        "courier_service",
        "comment",
    ] {
        assert!(keys.contains(&key), "{key} missing from {keys:?}");
    }
    let courier = form.field("courier_service").unwrap();
    assert!(matches!(&courier.kind, FieldKind::Select { options } if options.len() == 2));
    // A courier outside the configuration is refused before any request.
    let (order, _) = cod_italy();
    let err = provider(&server)
        .create_order(&order, &Waybill::new().with("courier_service", "UPS"))
        .await
        .unwrap_err();
    assert_eq!(err.field_errors()[0].path, "values.courier_service");
}

// ---------------------------------------------------------------------------------------------
// Error paths

#[tokio::test]
async fn status_codes_map_to_crate_errors() {
    let (err, _s) = create_against(400, r#"{"error":"receiver.zipCode is invalid"}"#).await;
    assert!(
        matches!(&err, Error::Validation { fields, .. } if fields[0].reason.contains("zipCode")),
        "{err:?}"
    );
    let (err, _s) = create_against(400, "Invalid signature").await;
    assert!(matches!(err, Error::Unauthenticated { .. }), "{err:?}");
    let (err, _s) = create_against(401, "").await;
    assert!(matches!(err, Error::Unauthenticated { .. }), "{err:?}");
    let (err, _s) = create_against(404, "").await;
    assert!(matches!(err, Error::Protocol { .. }), "{err:?}");
    let (err, _s) = create_against(500, r#"{"Error": "Internal server error"}"#).await;
    assert!(
        matches!(
            &err,
            Error::Provider {
                status: Some(500),
                retryable: true,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "wapi answered POST /outbounds with HTTP 500: Internal server error"
    );
    // A permanent refusal Wapi has no better name for: kept as what it is, never retried.
    for status in [403, 410, 413] {
        let (err, _s) = create_against(status, r#"{"error":"no"}"#).await;
        assert!(
            matches!(&err, Error::Provider { status: Some(s), retryable: false, .. } if *s == status as u16),
            "{err:?}"
        );
        assert!(!err.is_retryable());
    }
    let (err, _s) = create_against(400, r#"{"error":"Order number SO-1001 already exists"}"#).await;
    assert!(
        matches!(&err, Error::Conflict { message } if message.contains("SO-1001")),
        "{err:?}"
    );
}

#[tokio::test]
async fn server_errors_are_retried_500_500_200() {
    let mut server = Server::new_async().await;
    let fail = server
        .mock("POST", "/api/outbounds")
        .with_status(500)
        .with_body(r#"{"Error":"Internal server error"}"#)
        .expect(2)
        .create_async()
        .await;
    let ok = server
        .mock("POST", "/api/outbounds")
        .match_request(signed)
        .with_body(r#"{"trackingNumber":"WH9"}"#)
        .expect(1)
        .create_async()
        .await;
    let (order, waybill) = cod_italy();
    let s = provider(&server)
        .create_order(&order, &waybill)
        .await
        .unwrap();
    assert_eq!(s.reference.provider_ref, "WH9");
    fail.assert_async().await;
    ok.assert_async().await;
}

#[tokio::test]
async fn rate_limit_with_retry_after_then_success() {
    let mut server = Server::new_async().await;
    let limited = server
        .mock("POST", "/api/tracking/getDetailedOrderStatus")
        .with_status(429)
        .with_header("Retry-After", "1")
        .expect(1)
        .create_async()
        .await;
    let ok = server
        .mock("POST", "/api/tracking/getDetailedOrderStatus")
        .with_body("[]")
        .expect(1)
        .create_async()
        .await;
    let started = std::time::Instant::now();
    provider(&server)
        .track(&[ShipmentRef::new("SO-1", "WH1")])
        .await
        .unwrap();
    // The adapter waited as asked (a lower bound only: never time the upper side in tests).
    assert!(started.elapsed() >= Duration::from_secs(1));
    limited.assert_async().await;
    ok.assert_async().await;
}

#[tokio::test]
async fn malformed_json_is_a_protocol_error_naming_the_endpoint() {
    let mut server = Server::new_async().await;
    server
        .mock("POST", "/api/tracking/getDetailedOrderStatus")
        .with_body(r#"[{"trackingNumber": "WH1", "deliveryStatus": }"#)
        .create_async()
        .await;
    let err = provider(&server)
        .track(&[ShipmentRef::new("SO-1", "WH1")])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Protocol { message } if message.contains("getDetailedOrderStatus")),
        "{err}"
    );
}

#[tokio::test]
async fn a_body_over_the_cap_is_refused() {
    let mut server = Server::new_async().await;
    let huge = format!(
        r#"[{{"trackingNumber":"WH1","deliveryStatus":"{}"}}]"#,
        "x".repeat(4096)
    );
    server
        .mock("POST", "/api/tracking/getDetailedOrderStatus")
        .with_body(huge)
        .create_async()
        .await;
    let mut config = fast_http();
    config.max_body_bytes = 1024;
    let err = builder(&server)
        .with_http_config(config)
        .build()
        .unwrap()
        .track(&[ShipmentRef::new("SO-1", "WH1")])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Protocol { message } if message.contains("cap")),
        "{err}"
    );
}

#[tokio::test]
async fn a_slow_read_times_out_and_is_retried() {
    let mut server = Server::new_async().await;
    // mockito counts a hit only once the response is written, so one mock serves both
    // attempts: the first answer is slower than the timeout, the second is immediate.
    let first = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let slow = server
        .mock("POST", "/api/tracking/getDetailedOrderStatus")
        .with_chunked_body(move |w| {
            if first.swap(false, std::sync::atomic::Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(600));
            }
            w.write_all(b"[]")
        })
        // A blocked mockito worker can delay the retry past the timeout too: at least 2.
        .expect_at_least(2)
        .create_async()
        .await;
    let updates = builder(&server)
        .with_timeouts(Duration::from_secs(5), Duration::from_millis(200))
        .build()
        .unwrap()
        .track(&[ShipmentRef::new("SO-1", "WH1")])
        .await
        .unwrap();
    assert!(updates.is_empty());
    slow.assert_async().await;
}

#[test]
fn build_reports_every_configuration_problem() {
    let mut http = HttpConfig::default();
    http.request_timeout = Duration::ZERO;
    let err = WapiBuilder::new("", "")
        .with_base_url("ftp://nowhere")
        .with_max_track_batch(0)
        .with_http_config(http)
        .build()
        .unwrap_err();
    let paths: Vec<&str> = err.field_errors().iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "client_id",
            "secret",
            "base_url",
            "max_track_batch",
            "http.request_timeout"
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Conformance

/// A stateful fake of Wapi on mockito: numbers orders `WH-<orderNumber>`, keeps a raw status per
/// WH number, refuses updates and cancels once the status is past editing.
struct FakeWapi {
    _server: ServerGuard,
    url: String,
    state: Arc<Mutex<FakeState>>,
}

#[derive(Default)]
struct FakeState {
    status: HashMap<String, String>,
    largest_batch: usize,
}

fn numbers(req: &mockito::Request) -> Vec<String> {
    let body: Value = serde_json::from_slice(req.body().unwrap()).unwrap();
    body["trackingNumbers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect()
}

fn wh_of(req: &mockito::Request) -> String {
    let body: Value = serde_json::from_slice(req.body().unwrap()).unwrap();
    body["trackingNumber"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

impl FakeWapi {
    async fn start() -> Self {
        let mut server = Server::new_async().await;
        let state = Arc::new(Mutex::new(FakeState::default()));
        // Exactly one of the two mocks of a path matches a request (mockito answers from the
        // last matching mock once each has been hit).
        let locked = |state: &Arc<Mutex<FakeState>>, yes: bool| {
            let state = state.clone();
            move |req: &mockito::Request| {
                signed(req)
                    && state
                        .lock()
                        .unwrap()
                        .status
                        .get(&wh_of(req))
                        .is_some_and(|s| s != "Pending")
                        == yes
            }
        };
        let st = state.clone();
        server
            .mock("POST", "/api/outbounds")
            .match_request(signed)
            .with_body_from_request(move |req| {
                let body: Value = serde_json::from_slice(req.body().unwrap()).unwrap();
                let wh = format!("WH-{}", body["orderNumber"].as_str().unwrap());
                st.lock()
                    .unwrap()
                    .status
                    .insert(wh.clone(), "Pending".into());
                json!({ "trackingNumber": wh }).to_string().into_bytes()
            })
            .create_async()
            .await;
        for path in ["/api/outbounds/UpdateOrder", "/api/outbounds/cancelOrder"] {
            server
                .mock("POST", path)
                .match_request(locked(&state, true))
                .with_status(400)
                .with_body(r#"{"error": "This order cannot be edited anymore!"}"#)
                .create_async()
                .await;
            server
                .mock("POST", path)
                .match_request(locked(&state, false))
                .with_body("ok")
                .create_async()
                .await;
        }
        let st = state.clone();
        server
            .mock("POST", "/api/tracking")
            .match_request(signed)
            .with_body_from_request(move |req| {
                let state = st.lock().unwrap();
                let statuses: Vec<Value> = numbers(req)
                    .iter()
                    .filter_map(|n| {
                        state
                            .status
                            .get(n)
                            .map(|s| json!({"trackingNumber": n, "deliveryStatus": s}))
                    })
                    .collect();
                json!({ "statuses": statuses }).to_string().into_bytes()
            })
            .create_async()
            .await;
        let st = state.clone();
        server
            .mock("POST", "/api/tracking/getDetailedOrderStatus")
            .match_request(signed)
            .with_body_from_request(move |req| {
                let mut state = st.lock().unwrap();
                let asked = numbers(req);
                state.largest_batch = state.largest_batch.max(asked.len());
                let rows: Vec<Value> = asked
                    .iter()
                    .filter_map(|n| {
                        state.status.get(n).map(|s| {
                            json!({
                                "trackingNumber": n,
                                "deliveryStatus": s,
                                "statusHistory": [
                                    {"statusDate": "2024-05-02T05:56:52", "statusName": s}
                                ]
                            })
                        })
                    })
                    .collect();
                Value::Array(rows).to_string().into_bytes()
            })
            .create_async()
            .await;
        Self {
            url: format!("{}/api", server.url()),
            _server: server,
            state,
        }
    }

    fn provider(&self) -> WapiProvider {
        WapiBuilder::new(CLIENT_ID, SECRET)
            .with_base_url(&self.url)
            .with_http_config(fast_http())
            .build()
            .unwrap()
    }
}

#[async_trait]
impl ConformanceDriver for FakeWapi {
    async fn lock(&self, shipment: &ShipmentRef) -> Result<()> {
        self.state
            .lock()
            .unwrap()
            .status
            .insert(shipment.provider_ref.clone(), "Dispatched".into());
        Ok(())
    }

    async fn report_raw_status(&self, shipment: &ShipmentRef, raw: &str) -> Result<()> {
        self.state
            .lock()
            .unwrap()
            .status
            .insert(shipment.provider_ref.clone(), raw.into());
        Ok(())
    }

    fn largest_track_batch(&self) -> Option<usize> {
        Some(self.state.lock().unwrap().largest_batch)
    }

    async fn orders_held(&self) -> Option<usize> {
        Some(self.state.lock().unwrap().status.len())
    }
}

#[tokio::test]
async fn conformance_suite() {
    let fake = FakeWapi::start().await;
    let wapi = fake.provider();
    testkit::run_all(&wapi, &fake).await;
    assert_eq!(fake.largest_track_batch(), Some(50));
}
