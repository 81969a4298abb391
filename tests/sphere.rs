//! The Sphere adapter against a scripted HTTP server: every endpoint's exact request (path,
//! query, auth in each mode, JSON body), every fixture of the protocol document parsed, every
//! error path with hit counts, paging (three pages, the 1000-page guard), creates after a
//! dropped connection or a timeout (raw server: they look up instead of posting twice). The
//! conformance suite runs over the Sphere simulator (`tests/simulator.rs`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use mockito::{Matcher, Server, ServerGuard};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use fulfillkit::Error;
use fulfillkit::error::FieldError;
use fulfillkit::error::Operation;
use fulfillkit::model::*;
use fulfillkit::provider::sphere::{AuthMode, SphereBuilder, SphereProvider};
use fulfillkit::provider::{CancelOutcome, FulfillmentProvider, UpdateOutcome};

mod support;
use support::sphere::*;

fn path(action: &str) -> String {
    format!("{PREFIX}/{action}")
}

fn query(pairs: &[(&str, &str)]) -> Matcher {
    Matcher::AllOf(
        pairs
            .iter()
            .map(|(k, v)| Matcher::UrlEncoded((*k).into(), (*v).into()))
            .collect(),
    )
}

/// The "find our order" query for SO-1001, page 0.
fn lookup_query() -> Matcher {
    query(&[
        ("client_code", "100"),
        ("order_number", "SO-1001"),
        ("limit", "100"),
        ("page", "0"),
    ])
}

fn shipment() -> ShipmentRef {
    ShipmentRef::new("SO-1001", "88213")
}

// ---------------------------------------------------------------------------------------------
// Create

#[tokio::test]
async fn create_looks_up_then_posts_the_fixture_body() {
    let mut server = Server::new_async().await;
    let lookup = server
        .mock("GET", path("orders").as_str())
        .match_query(lookup_query())
        .match_request(bearer)
        .with_body("[]")
        .expect(1)
        .create_async()
        .await;
    let create = server
        .mock("POST", path("orders").as_str())
        .match_request(bearer)
        .match_header("content-type", "application/json")
        .match_body(Matcher::Json(jane_body()))
        .with_status(201)
        .with_body(CREATED)
        .expect(1)
        .create_async()
        .await;
    let (order, waybill) = jane();
    let shipment = provider(&server)
        .create_order(&order, &waybill)
        .await
        .unwrap();
    assert_eq!(shipment.reference, ShipmentRef::new("SO-1001", "88213"));
    assert_eq!(shipment.tracking_number, None, "shipments come later");
    let status = shipment.status.unwrap();
    assert_eq!(
        (status.code, status.original.as_str()),
        (StatusCode::Registered, "open")
    );
    assert_eq!(
        status.at,
        Utc.with_ymd_and_hms(2024, 5, 2, 10, 15, 0).unwrap()
    );
    lookup.assert_async().await;
    create.assert_async().await;
}

#[tokio::test]
async fn a_repeated_create_reuses_the_order_found_by_number() {
    let mut server = Server::new_async().await;
    let lookup = server
        .mock("GET", path("orders").as_str())
        .match_query(lookup_query())
        .with_body(FOUND)
        .expect(2)
        .create_async()
        .await;
    let create = server
        .mock("POST", path("orders").as_str())
        .expect(0)
        .create_async()
        .await;
    let sphere = provider(&server);
    let (order, waybill) = jane();
    let first = sphere.create_order(&order, &waybill).await.unwrap();
    let second = sphere.create_order(&order, &waybill).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(first.reference.provider_ref, "88213");
    assert_eq!(first.status.unwrap().code, StatusCode::Accepted);
    lookup.assert_async().await;
    create.assert_async().await;
}

#[tokio::test]
async fn a_duplicate_answer_is_followed_by_a_lookup() {
    for (status, body) in [
        (409, r#"{"error":"Duplicate order_number SO-1001"}"#),
        (400, r#"{"error":"Order number SO-1001 already exists"}"#),
        (
            422,
            r#"{"errors":[{"field":"order_number","message":"has already been taken"}]}"#,
        ),
    ] {
        let mut server = Server::new_async().await;
        let empty = server
            .mock("GET", path("orders").as_str())
            .match_query(lookup_query())
            .with_body("[]")
            .expect(1)
            .create_async()
            .await;
        let create = server
            .mock("POST", path("orders").as_str())
            .with_status(status)
            .with_body(body)
            .expect(1)
            .create_async()
            .await;
        let found = server
            .mock("GET", path("orders").as_str())
            .match_query(lookup_query())
            .with_body(FOUND)
            .expect(1)
            .create_async()
            .await;
        let (order, waybill) = jane();
        let shipment = provider(&server)
            .create_order(&order, &waybill)
            .await
            .unwrap();
        assert_eq!(shipment.reference.provider_ref, "88213", "{status}");
        empty.assert_async().await;
        create.assert_async().await;
        found.assert_async().await;
    }
}

#[tokio::test]
async fn a_duplicate_that_cannot_be_found_is_a_conflict() {
    let mut server = Server::new_async().await;
    let lookups = server
        .mock("GET", path("orders").as_str())
        .match_query(Matcher::Any)
        .with_body("[]")
        .expect(2)
        .create_async()
        .await;
    server
        .mock("POST", path("orders").as_str())
        .with_status(409)
        .with_body(r#"{"error":"Duplicate order_number SO-1001"}"#)
        .create_async()
        .await;
    let (order, waybill) = jane();
    let err = provider(&server)
        .create_order(&order, &waybill)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Conflict { message } if message.contains("SO-1001") && message.contains("Duplicate")),
        "{err:?}"
    );
    lookups.assert_async().await;
}

#[tokio::test]
async fn a_create_answered_without_an_order_id_finds_the_order() {
    let mut server = Server::new_async().await;
    server
        .mock("GET", path("orders").as_str())
        .match_query(lookup_query())
        .with_body("[]")
        .expect(1)
        .create_async()
        .await;
    server
        .mock("POST", path("orders").as_str())
        .with_status(201)
        .with_body(r#"{"status":"accepted"}"#)
        .create_async()
        .await;
    let found = server
        .mock("GET", path("orders").as_str())
        .match_query(lookup_query())
        .with_body(FOUND)
        .expect(1)
        .create_async()
        .await;
    let (order, waybill) = jane();
    let shipment = provider(&server)
        .create_order(&order, &waybill)
        .await
        .unwrap();
    assert_eq!(shipment.reference.provider_ref, "88213");
    found.assert_async().await;
}

#[tokio::test]
async fn cash_on_delivery_is_refused_unless_a_field_is_configured() {
    let mut server = Server::new_async().await;
    let (mut order, waybill) = jane();
    order.payment = Payment::CashOnDelivery {
        amount: Decimal::new(4900, 2),
    };
    let nothing = server
        .mock("GET", Matcher::Any)
        .expect(0)
        .create_async()
        .await;
    let err = provider(&server)
        .create_order(&order, &waybill)
        .await
        .unwrap_err();
    assert_eq!(err.field_errors()[0].path, "payment", "{err}");
    nothing.assert_async().await;

    server
        .mock("GET", path("orders").as_str())
        .match_query(Matcher::Any)
        .with_body("[]")
        .create_async()
        .await;
    let mut expected = jane_body();
    expected["cod_amount"] = json!(49);
    let create = server
        .mock("POST", path("orders").as_str())
        .match_body(Matcher::Json(expected))
        .with_status(201)
        .with_body(CREATED)
        .expect(1)
        .create_async()
        .await;
    let sphere = builder(&server)
        .with_cod_field("cod_amount")
        .build()
        .unwrap();
    sphere.create_order(&order, &waybill).await.unwrap();
    create.assert_async().await;
}

// ---------------------------------------------------------------------------------------------
// Update and cancel

async fn read_mock(server: &mut ServerGuard, status: &str, hits: usize) -> mockito::Mock {
    server
        .mock("GET", path("orders/88213").as_str())
        .match_request(bearer)
        .with_body(order_row(88213, "SO-1001", status))
        .expect(hits)
        .create_async()
        .await
}

#[tokio::test]
async fn update_posts_the_full_object_to_the_order() {
    let mut server = Server::new_async().await;
    let read = read_mock(&mut server, "open", 1).await;
    let mut expected = jane_body();
    expected["ship_to"]["street_2"] = json!("Apt 5");
    let update = server
        .mock("POST", path("orders/88213").as_str())
        .match_request(bearer)
        .match_body(Matcher::Json(expected))
        .with_body(order_row(88213, "SO-1001", "open"))
        .expect(1)
        .create_async()
        .await;
    let (mut order, waybill) = jane();
    order.address.lines[1] = "Apt 5".into();
    let outcome = provider(&server)
        .update_order(&shipment(), &order, &waybill)
        .await
        .unwrap();
    assert_eq!(outcome, UpdateOutcome::Applied);
    read.assert_async().await;
    update.assert_async().await;
}

#[tokio::test]
async fn update_and_cancel_past_the_open_states_are_too_late_without_calling() {
    for state in ["allocated", "picked", "shipped", "Wave Planned"] {
        let mut server = Server::new_async().await;
        let read = read_mock(&mut server, state, 2).await;
        let post = server
            .mock("POST", Matcher::Any)
            .expect(0)
            .create_async()
            .await;
        let delete = server
            .mock("DELETE", Matcher::Any)
            .expect(0)
            .create_async()
            .await;
        let sphere = provider(&server);
        let (order, waybill) = jane();
        assert_eq!(
            sphere
                .update_order(&shipment(), &order, &waybill)
                .await
                .unwrap(),
            UpdateOutcome::TooLate {
                state: state.into()
            }
        );
        assert_eq!(
            sphere.cancel_order(&shipment()).await.unwrap(),
            CancelOutcome::TooLate {
                state: state.into()
            }
        );
        read.assert_async().await;
        post.assert_async().await;
        delete.assert_async().await;
    }
}

#[tokio::test]
async fn a_refused_update_is_too_late_with_the_state_read_again() {
    let mut server = Server::new_async().await;
    let open = read_mock(&mut server, "open", 1).await;
    let update = server
        .mock("POST", path("orders/88213").as_str())
        .with_status(409)
        .with_body(r#"{"error":"Order 88213 is allocated and cannot be changed"}"#)
        .expect(1)
        .create_async()
        .await;
    let allocated = read_mock(&mut server, "allocated", 1).await;
    let (order, waybill) = jane();
    let outcome = provider(&server)
        .update_order(&shipment(), &order, &waybill)
        .await
        .unwrap();
    assert_eq!(
        outcome,
        UpdateOutcome::TooLate {
            state: "allocated".into()
        }
    );
    open.assert_async().await;
    update.assert_async().await;
    allocated.assert_async().await;
}

#[tokio::test]
async fn a_422_on_an_open_order_is_validation_naming_the_fields() {
    let mut server = Server::new_async().await;
    let reads = read_mock(&mut server, "open", 2).await;
    server
        .mock("POST", path("orders/88213").as_str())
        .with_status(422)
        .with_body(UNPROCESSABLE)
        .create_async()
        .await;
    let (order, waybill) = jane();
    let err = provider(&server)
        .update_order(&shipment(), &order, &waybill)
        .await
        .unwrap_err();
    assert_eq!(
        err.field_errors(),
        [FieldError::new(
            "lines[0].product_code",
            "Unknown product code ABC-100"
        )]
    );
    assert!(err.to_string().contains("POST /orders/88213"), "{err}");
    reads.assert_async().await;
}

#[tokio::test]
async fn cancel_voids_an_open_order() {
    let mut server = Server::new_async().await;
    let read = read_mock(&mut server, "open", 1).await;
    let void = server
        .mock("DELETE", path("orders/88213").as_str())
        .match_request(bearer)
        .with_body(VOIDED)
        .expect(1)
        .create_async()
        .await;
    assert_eq!(
        provider(&server).cancel_order(&shipment()).await.unwrap(),
        CancelOutcome::Cancelled {
            state: Some("void".into())
        }
    );
    read.assert_async().await;
    void.assert_async().await;
}

#[tokio::test]
async fn a_409_on_void_is_too_late_with_the_state_read_again() {
    let mut server = Server::new_async().await;
    let open = read_mock(&mut server, "open", 1).await;
    let void = server
        .mock("DELETE", path("orders/88213").as_str())
        .with_status(409)
        .with_body(VOID_REFUSED)
        .expect(1)
        .create_async()
        .await;
    let allocated = read_mock(&mut server, "allocated", 1).await;
    assert_eq!(
        provider(&server).cancel_order(&shipment()).await.unwrap(),
        CancelOutcome::TooLate {
            state: "allocated".into()
        }
    );
    open.assert_async().await;
    void.assert_async().await;
    allocated.assert_async().await;
}

#[tokio::test]
async fn cancel_of_a_void_order_is_cancelled_without_calling() {
    let mut server = Server::new_async().await;
    let read = read_mock(&mut server, "void", 1).await;
    let void = server
        .mock("DELETE", Matcher::Any)
        .expect(0)
        .create_async()
        .await;
    assert_eq!(
        provider(&server).cancel_order(&shipment()).await.unwrap(),
        CancelOutcome::AlreadyCancelled {
            state: Some("void".into())
        }
    );
    read.assert_async().await;
    void.assert_async().await;
}

#[tokio::test]
async fn unknown_orders_are_not_found() {
    let mut server = Server::new_async().await;
    let read = server
        .mock("GET", path("orders/88213").as_str())
        .with_status(404)
        .with_body(r#"{"error":"Order not found"}"#)
        .expect(3)
        .create_async()
        .await;
    let sphere = provider(&server);
    let (order, waybill) = jane();
    let err = sphere
        .update_order(&shipment(), &order, &waybill)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::NotFound { what } if what.contains("88213") && what.contains("SO-1001")),
        "{err:?}"
    );
    let err = sphere.cancel_order(&shipment()).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let updates = sphere.track(&[shipment()]).await.unwrap();
    assert!(
        matches!(&updates[..], [TrackingUpdate::NotFound { shipment: s, .. }] if *s == shipment())
    );
    read.assert_async().await;
}

#[tokio::test]
async fn a_non_numeric_reference_never_reaches_the_server() {
    let mut server = Server::new_async().await;
    let mut nothing = Vec::new();
    for method in ["GET", "POST", "DELETE"] {
        nothing.push(
            server
                .mock(method, Matcher::Any)
                .expect(0)
                .create_async()
                .await,
        );
    }
    let sphere = provider(&server);
    let bad = ShipmentRef::new("SO-1001", "WH0000000024");
    let (order, waybill) = jane();
    let err = sphere
        .update_order(&bad, &order, &waybill)
        .await
        .unwrap_err();
    assert_eq!(err.field_errors()[0].path, "provider_ref");
    let err = sphere.cancel_order(&bad).await.unwrap_err();
    assert_eq!(err.field_errors()[0].path, "provider_ref");
    let updates = sphere.track(std::slice::from_ref(&bad)).await.unwrap();
    assert!(matches!(&updates[..], [TrackingUpdate::NotFound { .. }]));
    for mock in nothing {
        mock.assert_async().await;
    }
}

// ---------------------------------------------------------------------------------------------
// Track, stock, directory, form

#[tokio::test]
async fn track_reads_each_order_and_the_shipments_of_shipped_ones() {
    let mut server = Server::new_async().await;
    let shipped = server
        .mock("GET", path("orders/88213").as_str())
        .match_request(bearer)
        .with_body(
            json!({"order_id": 88213, "order_number": "SO-1001", "status": "shipped",
                   "created_on": "20240502101500", "updated_on": "2024-05-03T16:05:00+02:00"})
            .to_string(),
        )
        .expect(1)
        .create_async()
        .await;
    let shipments = server
        .mock("GET", path("shipments").as_str())
        .match_request(bearer)
        .match_query(query(&[
            ("client_code", "100"),
            ("order_number", "SO-1001"),
            ("limit", "100"),
            ("page", "0"),
        ]))
        .with_body(SHIPMENTS)
        .expect(1)
        .create_async()
        .await;
    let open = server
        .mock("GET", path("orders/88214").as_str())
        .with_body(order_row(88214, "SO-1002", "open"))
        .expect(1)
        .create_async()
        .await;
    let other_shipments = server
        .mock("GET", path("shipments").as_str())
        .match_query(Matcher::UrlEncoded("order_number".into(), "SO-1002".into()))
        .expect(0)
        .create_async()
        .await;
    let gone = server
        .mock("GET", path("orders/88215").as_str())
        .with_status(404)
        .expect(1)
        .create_async()
        .await;
    let refs = [
        shipment(),
        ShipmentRef::new("SO-1002", "88214"),
        ShipmentRef::new("SO-1003", "88215"),
    ];
    let updates = provider(&server).track(&refs).await.unwrap();
    assert_eq!(updates.len(), 3);

    let first = &updates[0].statuses()[0];
    assert_eq!(updates[0].shipment(), &refs[0]);
    assert_eq!(
        (first.code, first.original.as_str()),
        (StatusCode::InTransit, "shipped")
    );
    assert_eq!(
        first.at,
        Utc.with_ymd_and_hms(2024, 5, 3, 14, 5, 0).unwrap()
    );
    assert_eq!(first.carrier.as_deref(), Some("UPS"));
    assert_eq!(
        first.carrier_tracking_number.as_deref(),
        Some("1Z999AA10123456784")
    );

    let second = &updates[1].statuses()[0];
    assert_eq!(second.code, StatusCode::Registered);
    // Compact `updated_on`.
    assert_eq!(
        second.at,
        Utc.with_ymd_and_hms(2024, 5, 2, 11, 30, 0).unwrap()
    );
    assert_eq!(second.carrier, None);

    assert!(
        matches!(&updates[2], TrackingUpdate::NotFound { shipment, .. } if *shipment == refs[2])
    );
    for mock in [shipped, shipments, open, other_shipments, gone] {
        mock.assert_async().await;
    }
}

#[tokio::test]
async fn a_status_never_seen_before_is_unknown_with_its_text() {
    let mut server = Server::new_async().await;
    server
        .mock("GET", path("orders/88213").as_str())
        .with_body(order_row(88213, "SO-1001", "Wave Planned"))
        .create_async()
        .await;
    // An unknown status might be a shipped one: its shipments are read.
    let shipments = server
        .mock("GET", path("shipments").as_str())
        .match_query(Matcher::Any)
        .with_body("[]")
        .expect(1)
        .create_async()
        .await;
    let updates = provider(&server).track(&[shipment()]).await.unwrap();
    let status = &updates[0].statuses()[0];
    assert_eq!(
        (status.code, status.original.as_str()),
        (StatusCode::Unknown, "Wave Planned")
    );
    shipments.assert_async().await;
}

#[tokio::test]
async fn stock_reads_available_for_the_configured_location_only() {
    let mut server = Server::new_async().await;
    let one = server
        .mock("GET", path("inventory").as_str())
        .match_request(bearer)
        .match_query(query(&[
            ("client_code", "100"),
            ("location_id", "100"),
            ("product_code", "ABC-100"),
            ("limit", "100"),
            ("page", "0"),
        ]))
        .with_body(
            json!([
                {"client_code": "100", "location_id": 110, "product_code": "ABC-100", "available": 500},
                {"client_code": "100", "location_id": 100, "product_code": "ABC-100", "description": "Widget", "on_hand": 120, "allocated": 8, "available": 112}
            ])
            .to_string(),
        )
        .expect(1)
        .create_async()
        .await;
    let missing = server
        .mock("GET", path("inventory").as_str())
        .match_query(Matcher::UrlEncoded("product_code".into(), "NOPE".into()))
        .with_body("[]")
        .expect(1)
        .create_async()
        .await;
    let sphere = provider(&server);
    let levels = sphere
        .stock(&["ABC-100".into(), "NOPE".into(), "ABC-100".into()])
        .await
        .unwrap();
    assert_eq!(
        levels,
        [StockLevel {
            sku: "ABC-100".into(),
            warehouse: Some("100".into()),
            available: 112,
            reserved: Some(8),
            in_transit: None,
        }]
    );
    one.assert_async().await;
    missing.assert_async().await;

    // No skus: the whole account, without a product filter.
    let all = server
        .mock("GET", path("inventory").as_str())
        .match_query(Matcher::UrlEncoded("location_id".into(), "100".into()))
        .match_request(|req| !req.path_and_query().contains("product_code"))
        .with_body(INVENTORY)
        .expect(1)
        .create_async()
        .await;
    let levels = sphere.stock(&[]).await.unwrap();
    assert_eq!(levels.len(), 1);
    all.assert_async().await;
}

#[tokio::test]
async fn the_customer_directory_is_opt_in() {
    let mut server = Server::new_async().await;
    let query_smith = AddressQuery::in_country("US").with_text("smith");
    let sphere = provider(&server);
    assert!(!sphere.capabilities().address_directory);
    let err = sphere.search_addresses(&query_smith).await.unwrap_err();
    assert!(matches!(
        err,
        Error::Unsupported {
            operation: Operation::SearchAddresses,
            ..
        }
    ));

    let customers = server
        .mock("GET", path("customers").as_str())
        .match_request(bearer)
        .match_query(query(&[
            ("client_code", "100"),
            ("keyword", "smith"),
            // No limit in the query is everything: full pages until a short one.
            ("limit", "100"),
            ("page", "0"),
        ]))
        .with_body(CUSTOMERS)
        .expect(1)
        .create_async()
        .await;
    let sphere = builder(&server)
        .with_customer_directory(true)
        .build()
        .unwrap();
    assert!(sphere.capabilities().address_directory);
    let found = sphere.search_addresses(&query_smith).await.unwrap();
    customers.assert_async().await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, "FK-SO-1001");
    assert_eq!(found[0].kind, AddressKind::Door);
    assert_eq!(found[0].label, "Jane Smith");
    assert_eq!(found[0].address.lines, ["12 Elm St"]);
    // Pickup points do not exist at SphereWMS.
    let lockers = AddressQuery {
        pickup_points_only: true,
        ..query_smith
    };
    assert!(sphere.search_addresses(&lockers).await.unwrap().is_empty());
}

#[tokio::test]
async fn waybill_form_offers_the_configured_ship_via_codes() {
    let server = Server::new_async().await;
    let sphere = provider(&server);
    let form = sphere.waybill_form();
    let keys: Vec<&str> = form.fields.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(keys, ["ship_via", "po_number", "notes", "order_date"]);
    assert!(matches!(
        &form.field("ship_via").unwrap().kind,
        FieldKind::Select { options } if options.len() == 2 && options[0].value == "UPS-GND"
    ));
    assert!(matches!(
        form.field("order_date").unwrap().kind,
        FieldKind::Date
    ));
    // A code outside the configuration is refused before any request.
    let (order, _) = jane();
    let err = sphere
        .create_order(&order, &Waybill::new().with("ship_via", "DHL"))
        .await
        .unwrap_err();
    assert_eq!(err.field_errors()[0].path, "values.ship_via");
}

#[tokio::test]
async fn kind_and_capabilities() {
    let server = Server::new_async().await;
    let sphere = builder(&server).with_max_track_batch(10).build().unwrap();
    assert_eq!(sphere.kind(), "sphere");
    let caps = sphere.capabilities();
    assert!(caps.update && caps.cancel && caps.stock);
    assert!(!caps.address_directory && !caps.push_tracking);
    assert_eq!(caps.max_track_batch, 10);
    assert_eq!(
        provider(&server).capabilities().max_track_batch,
        fulfillkit::provider::sphere::DEFAULT_TRACK_BATCH
    );
}

#[tokio::test]
async fn the_key_travels_as_each_auth_mode_says() {
    for mode in [AuthMode::Bearer, AuthMode::Header, AuthMode::Query] {
        let mut server = Server::new_async().await;
        let inventory = server
            .mock("GET", path("inventory").as_str())
            .match_query(Matcher::Any)
            .match_request(authed(mode))
            .with_body(INVENTORY)
            .expect(1)
            .create_async()
            .await;
        let sphere = builder(&server).with_auth_mode(mode).build().unwrap();
        let levels = sphere.stock(&["ABC-100".into()]).await.unwrap();
        assert_eq!(levels.len(), 1, "{mode:?}");
        inventory.assert_async().await;
    }
}

// ---------------------------------------------------------------------------------------------
// Error paths

/// `stock(["ABC-100"])` against a server answering `status` with `body`, one retry allowed.
async fn stock_against(status: usize, body: &str) -> Error {
    let mut server = Server::new_async().await;
    server
        .mock("GET", path("inventory").as_str())
        .match_query(Matcher::Any)
        .with_status(status)
        .with_body(body)
        .create_async()
        .await;
    let mut http = fast_http();
    http.retry = http.retry.with_max_retries(1);
    builder(&server)
        .with_http_config(http)
        .build()
        .unwrap()
        .stock(&["ABC-100".into()])
        .await
        .unwrap_err()
}

#[tokio::test]
async fn status_codes_map_to_crate_errors() {
    for status in [401, 403] {
        let err = stock_against(status, UNAUTHORIZED).await;
        assert!(
            matches!(err, Error::Unauthenticated { .. }),
            "{status}: {err:?}"
        );
    }
    let err = stock_against(404, r#"{"error":"No such action"}"#).await;
    assert!(
        matches!(&err, Error::Protocol { message } if message.contains("GET /inventory") && message.contains("No such action")),
        "{err:?}"
    );
    let err = stock_against(400, r#"{"error":"location_id is invalid"}"#).await;
    assert_eq!(
        err.field_errors(),
        [FieldError::new("body", "location_id is invalid")]
    );
    let err = stock_against(422, UNPROCESSABLE).await;
    assert_eq!(err.field_errors()[0].path, "lines[0].product_code");
    let err = stock_against(409, r#"{"message":"locked"}"#).await;
    assert!(
        matches!(&err, Error::Conflict { message } if message.contains("locked")),
        "{err:?}"
    );
    let err = stock_against(500, r#"{"error":{"message":"database down"}}"#).await;
    assert!(
        matches!(&err, Error::Provider { status: Some(500), retryable: true, message, .. } if message == "database down"),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert!(
        err.to_string().contains("HTTP 500") && err.to_string().contains("database down"),
        "{err}"
    );
    let failure = err.to_failure();
    assert_eq!(failure.http_status, Some(500));
    assert!(failure.endpoint.unwrap().contains("GET /inventory"));
    // A permanent refusal SphereWMS has no better name for is not retried by anyone.
    let err = stock_against(410, r#"{"error":"gone"}"#).await;
    assert!(!err.is_retryable(), "{err:?}");
}

#[tokio::test]
async fn a_create_refused_with_422_names_the_fields() {
    let mut server = Server::new_async().await;
    server
        .mock("GET", path("orders").as_str())
        .match_query(Matcher::Any)
        .with_body("[]")
        .create_async()
        .await;
    let create = server
        .mock("POST", path("orders").as_str())
        .with_status(422)
        .with_body(UNPROCESSABLE)
        .expect(1)
        .create_async()
        .await;
    let (order, waybill) = jane();
    let err = provider(&server)
        .create_order(&order, &waybill)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Validation { .. }), "{err:?}");
    assert_eq!(err.field_errors()[0].path, "lines[0].product_code");
    create.assert_async().await;
}

#[tokio::test]
async fn server_errors_are_retried_500_500_201() {
    let mut server = Server::new_async().await;
    server
        .mock("GET", path("orders").as_str())
        .match_query(Matcher::Any)
        .with_body("[]")
        .expect(1)
        .create_async()
        .await;
    let fail = server
        .mock("POST", path("orders").as_str())
        .with_status(500)
        .with_body(r#"{"error":"Internal server error"}"#)
        .expect(2)
        .create_async()
        .await;
    let ok = server
        .mock("POST", path("orders").as_str())
        .match_body(Matcher::Json(jane_body()))
        .with_status(201)
        .with_body(CREATED)
        .expect(1)
        .create_async()
        .await;
    let (order, waybill) = jane();
    let s = provider(&server)
        .create_order(&order, &waybill)
        .await
        .unwrap();
    assert_eq!(s.reference.provider_ref, "88213");
    fail.assert_async().await;
    ok.assert_async().await;
}

#[tokio::test]
async fn rate_limit_with_retry_after_then_success() {
    let mut server = Server::new_async().await;
    let limited = server
        .mock("GET", path("orders/88213").as_str())
        .with_status(429)
        .with_header("Retry-After", "1")
        .expect(1)
        .create_async()
        .await;
    let ok = read_mock(&mut server, "open", 1).await;
    let started = std::time::Instant::now();
    let updates = provider(&server).track(&[shipment()]).await.unwrap();
    // The adapter waited as asked (a lower bound only: never time the upper side in tests).
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(updates[0].statuses()[0].code, StatusCode::Registered);
    limited.assert_async().await;
    ok.assert_async().await;
}

#[tokio::test]
async fn a_persistent_429_is_rate_limited() {
    let mut server = Server::new_async().await;
    let limited = server
        .mock("GET", path("orders/88213").as_str())
        .with_status(429)
        .with_header("Retry-After", "0")
        .expect(2)
        .create_async()
        .await;
    let mut http = fast_http();
    http.retry = http.retry.with_max_retries(1);
    let err = builder(&server)
        .with_http_config(http)
        .build()
        .unwrap()
        .track(&[shipment()])
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::RateLimited { retry_after: Some(d) } if d.is_zero()),
        "{err:?}"
    );
    limited.assert_async().await;
}

#[tokio::test]
async fn malformed_json_is_a_protocol_error_naming_the_endpoint() {
    let mut server = Server::new_async().await;
    server
        .mock("GET", path("orders/88213").as_str())
        .with_body(r#"{"order_id": 88213, "status": }"#)
        .create_async()
        .await;
    // The order's shipment fails alone, with the reason; the call itself succeeds.
    let updates = provider(&server).track(&[shipment()]).await.unwrap();
    assert!(
        matches!(&updates[..], [TrackingUpdate::Failed { failure, .. }]
            if failure.kind == fulfillkit::ErrorKind::Protocol && failure.message.contains("GET /orders/88213")),
        "{updates:?}"
    );
    // A listing that is not an array is one too.
    server
        .mock("GET", path("inventory").as_str())
        .match_query(Matcher::Any)
        .with_body(r#"{"data":[]}"#)
        .create_async()
        .await;
    let err = provider(&server).stock(&[]).await.unwrap_err();
    assert!(
        matches!(&err, Error::Protocol { message } if message.contains("GET /inventory")),
        "{err}"
    );
}

#[tokio::test]
async fn a_body_over_the_cap_is_refused() {
    let mut server = Server::new_async().await;
    let rows: Vec<Value> = (0..100)
        .map(|i| json!({"location_id": 100, "product_code": format!("SKU-{i}"), "available": i}))
        .collect();
    server
        .mock("GET", path("inventory").as_str())
        .match_query(Matcher::Any)
        .with_body(Value::Array(rows).to_string())
        .create_async()
        .await;
    let mut http = fast_http();
    http.max_body_bytes = 1024;
    let err = builder(&server)
        .with_http_config(http)
        .build()
        .unwrap()
        .stock(&[])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Protocol { message } if message.contains("cap")),
        "{err}"
    );
}

#[test]
fn build_reports_every_configuration_problem() {
    let err = SphereBuilder::new("", "", "", 100)
        .with_base_url("ftp://nowhere")
        .with_max_track_batch(0)
        .build()
        .unwrap_err();
    let paths: Vec<&str> = err.field_errors().iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "environment",
            "api_key",
            "client_code",
            "base_url",
            "max_track_batch"
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Paging

fn inventory_page(skus: std::ops::Range<usize>) -> String {
    let rows: Vec<Value> = skus
        .map(|i| json!({"client_code": "100", "location_id": 100, "product_code": format!("SKU-{i}"), "available": i}))
        .collect();
    Value::Array(rows).to_string()
}

#[tokio::test]
async fn listings_are_read_across_pages_until_a_short_or_empty_page() {
    for last in [inventory_page(4..5), "[]".to_owned()] {
        let mut server = Server::new_async().await;
        let mut pages = Vec::new();
        for (page, body) in [
            (0, inventory_page(0..2)),
            (1, inventory_page(2..4)),
            (2, last.clone()),
        ] {
            pages.push(
                server
                    .mock("GET", path("inventory").as_str())
                    .match_query(query(&[
                        ("client_code", "100"),
                        ("location_id", "100"),
                        ("limit", "2"),
                        ("page", &page.to_string()),
                    ]))
                    .with_body(body)
                    .expect(1)
                    .create_async()
                    .await,
            );
        }
        let beyond = server
            .mock("GET", path("inventory").as_str())
            .match_query(Matcher::UrlEncoded("page".into(), "3".into()))
            .expect(0)
            .create_async()
            .await;
        let levels = builder(&server)
            .with_page_size(2)
            .build()
            .unwrap()
            .stock(&[])
            .await
            .unwrap();
        let skus: Vec<&str> = levels.iter().map(|l| l.sku.as_str()).collect();
        let expected: &[&str] = if last == "[]" {
            &["SKU-0", "SKU-1", "SKU-2", "SKU-3"]
        } else {
            &["SKU-0", "SKU-1", "SKU-2", "SKU-3", "SKU-4"]
        };
        assert_eq!(skus, expected);
        for page in pages {
            page.assert_async().await;
        }
        beyond.assert_async().await;
    }
}

#[tokio::test]
async fn a_listing_that_never_ends_gives_up_after_1000_pages() {
    let mut server = Server::new_async().await;
    let endless = server
        .mock("GET", path("inventory").as_str())
        .match_query(Matcher::Any)
        .with_body(inventory_page(0..1))
        .expect(fulfillkit::provider::sphere::MAX_PAGES)
        .create_async()
        .await;
    let err = builder(&server)
        .with_page_size(1)
        .build()
        .unwrap()
        .stock(&[])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Protocol { message } if message.contains("1000 pages")),
        "{err}"
    );
    endless.assert_async().await;
}

// ---------------------------------------------------------------------------------------------
// Ambiguous creates (raw server: mockito always answers)

/// A raw SphereWMS holding at most the orders it stored; `post` decides what each POST does
/// (by its 0-based number): store it or not, then drop, stall or answer.
struct Flaky {
    server: RawServer,
    stored: Arc<Mutex<Vec<String>>>,
}

impl Flaky {
    fn start(post: impl Fn(usize) -> (bool, Reply) + Send + Sync + 'static) -> Self {
        let stored = Arc::new(Mutex::new(Vec::<String>::new()));
        let posts = Arc::new(Mutex::new(0));
        let db = stored.clone();
        let server = RawServer::start(move |req| {
            let mut db = db.lock().unwrap();
            match (req.method.as_str(), req.path()) {
                ("GET", p) if p == path("orders") => {
                    let number = req.query("order_number").unwrap_or_default();
                    let rows: Vec<Value> = db
                        .iter()
                        .enumerate()
                        .filter(|(_, n)| **n == number)
                        .map(|(i, n)| {
                            serde_json::from_str(&order_row(88213 + i as u64, n, "open")).unwrap()
                        })
                        .collect();
                    Reply::Respond(200, Value::Array(rows).to_string())
                }
                ("POST", p) if p == path("orders") => {
                    let mut count = posts.lock().unwrap();
                    let (store, reply) = post(*count);
                    *count += 1;
                    if store {
                        let body: Value = serde_json::from_slice(&req.body).unwrap();
                        db.push(body["order_number"].as_str().unwrap().to_owned());
                    }
                    match reply {
                        Reply::Respond(status, _) => Reply::Respond(
                            status,
                            order_row(88213 + db.len() as u64 - 1, "SO-1001", "open"),
                        ),
                        other => other,
                    }
                }
                _ => Reply::Respond(404, "{}".into()),
            }
        });
        Self { server, stored }
    }

    fn provider(&self, max_retries: usize) -> SphereProvider {
        let mut http = fast_http();
        http.retry = http.retry.with_max_retries(max_retries);
        http.request_timeout = Duration::from_millis(300);
        builder_at(self.server.url())
            .with_http_config(http)
            .build()
            .unwrap()
    }

    fn posts(&self) -> usize {
        self.server.count("POST", &path("orders"))
    }

    fn lookups(&self) -> usize {
        self.server.count("GET", &path("orders"))
    }

    fn stored(&self) -> Vec<String> {
        self.stored.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn a_create_stored_but_dropped_is_found_instead_of_posted_twice() {
    // SphereWMS stores the order, then the connection breaks before the answer.
    let flaky = Flaky::start(|_| (true, Reply::Drop));
    let (order, waybill) = jane();
    let shipment = flaky
        .provider(3)
        .create_order(&order, &waybill)
        .await
        .unwrap();
    assert_eq!(shipment.reference, ShipmentRef::new("SO-1001", "88213"));
    assert_eq!(flaky.posts(), 1, "never posted twice");
    assert_eq!(flaky.lookups(), 2, "one lookup before, one after the drop");
    assert_eq!(flaky.stored(), ["SO-1001"]);
}

#[tokio::test]
async fn a_create_dropped_before_it_was_stored_is_posted_again_after_a_lookup() {
    let flaky = Flaky::start(|n| match n {
        0 => (false, Reply::Drop),
        _ => (true, Reply::Respond(201, String::new())),
    });
    let (order, waybill) = jane();
    let shipment = flaky
        .provider(3)
        .create_order(&order, &waybill)
        .await
        .unwrap();
    assert_eq!(shipment.reference.provider_ref, "88213");
    assert_eq!(flaky.posts(), 2);
    assert_eq!(flaky.lookups(), 2);
    assert_eq!(flaky.stored(), ["SO-1001"]);
}

#[tokio::test]
async fn a_create_stored_but_timed_out_is_found_instead_of_posted_twice() {
    let flaky = Flaky::start(|_| (true, Reply::Stall(Duration::from_millis(800))));
    let (order, waybill) = jane();
    let shipment = flaky
        .provider(3)
        .create_order(&order, &waybill)
        .await
        .unwrap();
    assert_eq!(shipment.reference.provider_ref, "88213");
    assert_eq!((flaky.posts(), flaky.lookups()), (1, 2));
    assert_eq!(flaky.stored(), ["SO-1001"]);
}

#[tokio::test]
async fn a_create_that_keeps_dropping_gives_up_after_the_retry_budget() {
    let flaky = Flaky::start(|_| (false, Reply::Drop));
    let (order, waybill) = jane();
    let err = flaky
        .provider(2)
        .create_order(&order, &waybill)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert!(err.is_retryable());
    // The first post and two re-posts, each after a lookup, plus the lookup before the first.
    assert_eq!((flaky.posts(), flaky.lookups()), (3, 4));
    assert!(flaky.stored().is_empty());
}
