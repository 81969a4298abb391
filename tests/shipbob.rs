//! The ShipBob adapter against scripted HTTP (mockito): the exact bytes of create, the
//! duplicate-reference path, tracking with the carrier's history, paging, cancel, update,
//! stock and errors, with the protocol document's fixtures (§11.5).

use mockito::{Matcher, Server};

mod support;
use support::shipbob::*;

use fulfillkit::Error;
use fulfillkit::model::{ShipmentRef, StatusCode, TrackingUpdate, Waybill};
use fulfillkit::provider::{CancelOutcome, FulfillmentProvider, UpdateOutcome};

const CREATED: &str = r#"{"id":309589638,"created_date":"2026-09-20T10:00:05.1234567+00:00","purchase_date":"2026-09-20T10:00:00+00:00","reference_id":"SO-1001","order_number":"1001","status":"ImportReview","type":"DTC","channel":{"id":432951,"name":"PAT Channel"},"shipping_method":"Standard","recipient":{"name":"Jane Roe","address":{"address1":"100 N Racine Ave","address2":"Suite 100","company_name":null,"city":"Chicago","state":"IL","country":"US","zip_code":"60607"},"email":"jane@example.com","phone_number":"+13125550100"},"products":[{"id":51234567,"reference_id":"LIGHT-ROAST","sku":"LIGHT-ROAST","quantity":2,"unit_price":12.5,"external_line_id":1,"gtin":null,"upc":null,"quantity_unit_of_measure_code":null}],"shipments":[{"id":100810005,"order_id":309589638,"reference_id":"SO-1001","status":"None","status_details":[],"created_date":"2026-09-20T10:00:05+00:00","last_update_at":"2026-09-20T10:00:05+00:00","last_tracking_update_at":null,"location":{"id":228,"name":"Moreno Valley (CA)"},"tracking":null,"is_tracking_uploaded":false,"delivery_date":null,"actual_fulfillment_date":null,"estimated_fulfillment_date":"2026-09-21T23:59:00+00:00","estimated_fulfillment_date_status":"PendingOnTime","ship_option":"Standard","products":[{"id":51234567,"reference_id":"LIGHT-ROAST","sku":"LIGHT-ROAST","name":"Light Roast Coffee","inventory_items":[{"id":20104984,"name":"Light Roast Coffee","quantity":2,"quantity_committed":2,"lot":null,"expiration_date":null,"serial_numbers":[],"is_dangerous_goods":false}]}],"recipient":{"name":"Jane Roe","full_name":"Jane Roe","email":"jane@example.com","phone_number":"+13125550100","address":{"address1":"100 N Racine Ave","address2":"Suite 100","company_name":null,"city":"Chicago","state":"IL","country":"US","zip_code":"60607"}},"measurements":{"depth_in":0,"length_in":0,"width_in":0,"total_weight_oz":0},"package_material_type":"Unknown","require_signature":false,"insurance_value":null,"invoice_amount":null,"invoice_currency_code":null,"gift_message":null,"parent_cartons":[]}],"tags":[{"name":"source","value":"crm"}],"financials":{"total_price":25.0},"gift_message":null,"retailer_program_data":null,"shipping_terms":null}"#;
const DUPLICATE: &str = r#"{"":["Cannot insert order with existing ReferenceId"]}"#;
const FOUND: &str = r#"[{"id":309589638,"reference_id":"SO-1001","order_number":"1001","status":"Processing","type":"DTC","shipments":[{"id":100810005,"order_id":309589638,"status":"Processing","status_details":[],"tracking":null,"is_tracking_uploaded":false}]}]"#;
const IN_TRANSIT: &str = r#"[{"id":309589638,"reference_id":"SO-1001","status":"Fulfilled","shipments":[{"id":100810005,"order_id":309589638,"reference_id":"SO-1001","status":"Completed","status_details":[{"id":201,"name":"InTransit","description":"Shipment In Transit","inventory_id":null,"exception_fulfillment_center_id":null,"extra_information":null}],"tracking":{"carrier":"USPS","carrier_service":"Priority","tracking_number":"9400111899223197428490","tracking_url":"https://tools.usps.com/go/TrackConfirmAction?tLabels=9400111899223197428490","shipping_date":"2026-09-21T18:02:00+00:00","bol":null,"pro_number":null,"scac":null},"is_tracking_uploaded":false,"actual_fulfillment_date":"2026-09-21T17:40:00+00:00","last_tracking_update_at":"2026-09-22T03:15:00+00:00","delivery_date":null}]}]"#;
const CARRIER: &str = r#"[{"shipment_id":100810005,"tracking_id":"9400111899223197428490","carrier_tracking_number":"9400111899223197428490","carrier":"USPS","service":"Priority","status":"InTransit","substatus":"OutForDelivery","message":"Package is out for delivery","carrier_message":"Out for Delivery, Expected Delivery by 8:00pm","location":"Chicago, IL","eta":"2026-09-23T20:00:00Z","last_updated":"2026-09-23T08:10:00Z","public_tracking_url":"https://tools.usps.com/go/TrackConfirmAction?tLabels=9400111899223197428490","history":[{"status":"InTransit","substatus":"OutForDelivery","message":"Package is out for delivery","carrier_message":"Out for Delivery","location":"Chicago, IL","timestamp":"2026-09-23T08:10:00Z"},{"status":"InTransit","substatus":"ArrivedAtFacility","message":"Package arrived at carrier facility","carrier_message":"Arrived at USPS Regional Facility","location":"Chicago, IL","timestamp":"2026-09-22T22:00:00Z"}]}]"#;
const UPDATE_ADDRESS: &str = r#"{"recipient_name":"Jane Roe","street_address1":"200 W Madison St","street_address2":null,"city":"Chicago","state":"IL","zip_code":"60606","country_code":"US","phone_number":"+13125550100","email":"jane@example.com","company_name":null,"override_verification":false}"#;

fn reference() -> ShipmentRef {
    ShipmentRef::new("SO-1001", "309589638")
}

/// Both change-feed listings answer `body` (every page).
async fn feed(server: &mut mockito::ServerGuard, body: &str) -> Vec<mockito::Mock> {
    let mut mocks = Vec::new();
    for filter in ["LastUpdateStartDate", "LastTrackingUpdateStartDate"] {
        mocks.push(
            server
                .mock("GET", "/2026-07/order")
                .match_query(Matcher::Regex(format!("{filter}=")))
                .match_header("shipbob_channel_id", "432951")
                .with_body(body)
                .create_async()
                .await,
        );
    }
    mocks
}

#[tokio::test]
async fn create_sends_the_fixture_bytes_with_token_channel_and_version() {
    let mut server = Server::new_async().await;
    let create = server
        .mock("POST", "/2026-07/order")
        .match_header("authorization", format!("Bearer {TOKEN}").as_str())
        .match_header("shipbob_channel_id", "432951")
        .match_header("content-type", "application/json")
        .match_header("accept", "application/json")
        .match_body(JANE_ROE_BODY)
        .with_status(201)
        .with_body(CREATED)
        .expect(1)
        .create_async()
        .await;
    let shipment = provider(&server)
        .create_order(&jane_roe(), &Waybill::new())
        .await
        .unwrap();
    create.assert_async().await;
    assert_eq!(shipment.reference, reference());
    assert_eq!(shipment.tracking_number, None);
    let status = shipment.status.unwrap();
    assert_eq!(
        (status.code, status.original.as_str()),
        (StatusCode::Registered, "None")
    );
}

#[tokio::test]
async fn the_api_version_is_configuration() {
    let mut server = Server::new_async().await;
    let create = server
        .mock("POST", "/2026-01/order")
        .with_status(201)
        .with_body(CREATED)
        .create_async()
        .await;
    let shipbob = builder(&server)
        .with_api_version("2026-01")
        .build()
        .unwrap();
    shipbob
        .create_order(&jane_roe(), &Waybill::new())
        .await
        .unwrap();
    create.assert_async().await;
}

#[tokio::test]
async fn a_422_for_an_existing_reference_adopts_the_order() {
    let mut server = Server::new_async().await;
    let create = server
        .mock("POST", "/2026-07/order")
        .match_body(JANE_ROE_BODY)
        .with_status(422)
        .with_body(DUPLICATE)
        .expect(1)
        .create_async()
        .await;
    let lookup = server
        .mock("GET", "/2026-07/order")
        .match_query(Matcher::AllOf(vec![
            Matcher::UrlEncoded("ReferenceIds".into(), "SO-1001".into()),
            Matcher::UrlEncoded("Limit".into(), "250".into()),
            Matcher::UrlEncoded("Page".into(), "1".into()),
        ]))
        .match_header("shipbob_channel_id", "432951")
        .with_header("Page-Number", "1")
        .with_header("Total-Pages", "1")
        .with_body(FOUND)
        .expect(1)
        .create_async()
        .await;
    let shipment = provider(&server)
        .create_order(&jane_roe(), &Waybill::new())
        .await
        .unwrap();
    create.assert_async().await;
    lookup.assert_async().await;
    assert_eq!(shipment.reference, reference());
    assert_eq!(shipment.status.unwrap().code, StatusCode::Accepted);
}

#[tokio::test]
async fn a_422_that_is_no_duplicate_is_the_validation_error_it_says() {
    let mut server = Server::new_async().await;
    server
        .mock("POST", "/2026-07/order")
        .with_status(422)
        .with_body(r#"{"recipient.address.zip_code":["The zip code is not valid for IL."]}"#)
        .create_async()
        .await;
    let lookup = server
        .mock("GET", "/2026-07/order")
        .match_query(Matcher::UrlEncoded("ReferenceIds".into(), "SO-1001".into()))
        // Another channel's order with a similar reference does not count.
        .with_body(r#"[{"id":1,"reference_id":"SO-10010","shipments":[]}]"#)
        .expect(1)
        .create_async()
        .await;
    let err = provider(&server)
        .create_order(&jane_roe(), &Waybill::new())
        .await
        .unwrap_err();
    lookup.assert_async().await;
    assert!(!err.is_retryable());
    assert_eq!(err.field_errors()[0].path, "recipient.address.zip_code");
}

#[tokio::test]
async fn a_5xx_is_followed_by_a_lookup_before_any_second_post() {
    let mut server = Server::new_async().await;
    // Stored, then failed: found and adopted, never posted twice.
    let create = server
        .mock("POST", "/2026-07/order")
        .with_status(500)
        .with_body(r#"{"":["An unexpected error occurred."]}"#)
        .expect(1)
        .create_async()
        .await;
    let lookup = server
        .mock("GET", "/2026-07/order")
        .match_query(Matcher::UrlEncoded("ReferenceIds".into(), "SO-1001".into()))
        .with_body(FOUND)
        .expect(1)
        .create_async()
        .await;
    let shipment = provider(&server)
        .create_order(&jane_roe(), &Waybill::new())
        .await
        .unwrap();
    create.assert_async().await;
    lookup.assert_async().await;
    assert_eq!(shipment.reference, reference());
}

#[tokio::test]
async fn a_5xx_before_anything_was_stored_posts_again_after_the_lookup() {
    let mut server = Server::new_async().await;
    let failed = server
        .mock("POST", "/2026-07/order")
        .with_status(503)
        .expect(1)
        .create_async()
        .await;
    let created = server
        .mock("POST", "/2026-07/order")
        .match_body(JANE_ROE_BODY)
        .with_status(201)
        .with_body(CREATED)
        .expect(1)
        .create_async()
        .await;
    let lookup = server
        .mock("GET", "/2026-07/order")
        .match_query(Matcher::UrlEncoded("ReferenceIds".into(), "SO-1001".into()))
        .with_body("[]")
        .expect(1)
        .create_async()
        .await;
    let shipment = provider(&server)
        .create_order(&jane_roe(), &Waybill::new())
        .await
        .unwrap();
    failed.assert_async().await;
    lookup.assert_async().await;
    created.assert_async().await;
    assert_eq!(shipment.reference, reference());
}

#[tokio::test]
async fn a_failed_lookup_is_an_error_to_retry_never_a_second_post() {
    let mut server = Server::new_async().await;
    let create = server
        .mock("POST", "/2026-07/order")
        .with_status(422)
        .with_body(DUPLICATE)
        .expect(1)
        .create_async()
        .await;
    server
        .mock("GET", "/2026-07/order")
        .match_query(Matcher::Any)
        .with_status(503)
        .create_async()
        .await;
    let err = provider(&server)
        .create_order(&jane_roe(), &Waybill::new())
        .await
        .unwrap_err();
    create.assert_async().await;
    assert!(err.is_retryable(), "{err}");
    assert!(!matches!(
        err,
        Error::Conflict { .. } | Error::Validation { .. }
    ));
}

#[tokio::test]
async fn tracking_reports_the_shipment_and_the_carriers_history() {
    let mut server = Server::new_async().await;
    let feeds = feed(&mut server, IN_TRANSIT).await;
    let carrier = server
        .mock("GET", "/2026-07/shipments-tracking")
        .match_query(Matcher::UrlEncoded(
            "ShipmentIds".into(),
            "100810005".into(),
        ))
        .with_body(CARRIER)
        .expect(1)
        .create_async()
        .await;
    let shipbob = provider(&server);
    let updates = shipbob.track(&[reference()]).await.unwrap();
    let TrackingUpdate::Statuses { statuses, .. } = &updates[0] else {
        panic!("{updates:?}")
    };
    let got: Vec<(StatusCode, &str, String)> = statuses
        .iter()
        .map(|s| (s.code, s.original.as_str(), s.at.to_rfc3339()))
        .collect();
    assert_eq!(
        got,
        [
            (
                StatusCode::InTransit,
                "Completed/InTransit (201)",
                "2026-09-22T03:15:00+00:00".into()
            ),
            (
                StatusCode::InTransit,
                "tracking: InTransit/ArrivedAtFacility",
                "2026-09-22T22:00:00+00:00".into()
            ),
            (
                StatusCode::OnDelivery,
                "tracking: InTransit/OutForDelivery",
                "2026-09-23T08:10:00+00:00".into()
            ),
        ]
    );
    for s in statuses {
        assert_eq!(s.carrier.as_deref(), Some("USPS"));
        assert_eq!(
            s.carrier_tracking_number.as_deref(),
            Some("9400111899223197428490")
        );
        assert!(
            s.tracking_url
                .as_deref()
                .unwrap()
                .ends_with("9400111899223197428490")
        );
    }
    // Nothing moved: the carrier is not asked again.
    let again = shipbob.track(&[reference()]).await.unwrap();
    assert_eq!(again, updates);
    carrier.assert_async().await;
    for f in feeds {
        f.expect(2).assert_async().await;
    }
}

#[tokio::test]
async fn orders_the_feed_did_not_bring_are_read_by_id_in_batches() {
    let mut server = Server::new_async().await;
    let _feeds = feed(&mut server, "[]").await;
    let order = |id: i64| {
        format!(
            r#"{{"id":{id},"reference_id":"SO-{id}","status":"Processing","shipments":[{{"id":{},"order_id":{id},"status":"Processing","status_details":[],"last_update_at":"2026-09-20T10:00:05Z"}}]}}"#,
            id + 1000
        )
    };
    let first = server
        .mock("GET", "/2026-07/order")
        .match_query(Matcher::UrlEncoded("IDs".into(), "1,2".into()))
        .with_body(format!("[{},{}]", order(1), order(2)))
        .expect(1)
        .create_async()
        .await;
    let second = server
        .mock("GET", "/2026-07/order")
        .match_query(Matcher::UrlEncoded("IDs".into(), "3".into()))
        .with_body("[]")
        .expect(1)
        .create_async()
        .await;
    let shipbob = builder(&server).with_max_track_batch(2).build().unwrap();
    let refs: Vec<ShipmentRef> = (1..=3)
        .map(|i| ShipmentRef::new(format!("SO-{i}"), i.to_string()))
        .collect();
    let updates = shipbob.track(&refs).await.unwrap();
    first.assert_async().await;
    second.assert_async().await;
    assert_eq!(updates[0].statuses()[0].code, StatusCode::Accepted);
    assert_eq!(updates[1].statuses()[0].original, "Processing");
    assert!(matches!(updates[2], TrackingUpdate::NotFound { .. }));
}

#[tokio::test]
async fn the_feed_follows_next_page_headers() {
    let mut server = Server::new_async().await;
    let order = |id: i64| {
        format!(
            r#"[{{"id":{id},"reference_id":"SO-{id}","status":"Processing","shipments":[{{"id":{},"order_id":{id},"status":"Processing","last_update_at":"2026-09-20T10:00:05Z"}}]}}]"#,
            id + 1000
        )
    };
    let page1 = server
        .mock("GET", "/2026-07/order")
        .match_query(Matcher::AllOf(vec![
            Matcher::Regex("LastUpdateStartDate=".into()),
            Matcher::UrlEncoded("Page".into(), "1".into()),
        ]))
        .with_header(
            "Next-Page",
            "/2026-07/order?LastUpdateStartDate=x&Limit=250&Page=2",
        )
        .with_body(order(1))
        .expect(1)
        .create_async()
        .await;
    let page2 = server
        .mock("GET", "/2026-07/order")
        .match_query(Matcher::AllOf(vec![
            Matcher::UrlEncoded("LastUpdateStartDate".into(), "x".into()),
            Matcher::UrlEncoded("Page".into(), "2".into()),
        ]))
        .with_body(order(2))
        .expect(1)
        .create_async()
        .await;
    let tracking_feed = server
        .mock("GET", "/2026-07/order")
        .match_query(Matcher::Regex("LastTrackingUpdateStartDate=".into()))
        .with_body("[]")
        .create_async()
        .await;
    let by_id = server
        .mock("GET", "/2026-07/order")
        .match_query(Matcher::Regex("IDs=".into()))
        .expect(0)
        .create_async()
        .await;
    let refs = [ShipmentRef::new("SO-1", "1"), ShipmentRef::new("SO-2", "2")];
    let updates = provider(&server).track(&refs).await.unwrap();
    assert!(
        updates
            .iter()
            .all(|u| u.statuses()[0].code == StatusCode::Accepted)
    );
    page1.assert_async().await;
    page2.assert_async().await;
    tracking_feed.assert_async().await;
    by_id.assert_async().await;
}

#[tokio::test]
async fn an_unreadable_date_fails_its_order_only() {
    let mut server = Server::new_async().await;
    let _feeds = feed(
        &mut server,
        r#"[{"id":1,"reference_id":"SO-1","shipments":[{"id":11,"order_id":1,"status":"Processing","last_update_at":"yesterday"}]},
            {"id":2,"reference_id":"SO-2","shipments":[{"id":12,"order_id":2,"status":"CleanSweeped","last_update_at":"2026-09-20T10:00:05"}]}]"#,
    )
    .await;
    let refs = [ShipmentRef::new("SO-1", "1"), ShipmentRef::new("SO-2", "2")];
    let updates = provider(&server).track(&refs).await.unwrap();
    assert!(
        matches!(&updates[0], TrackingUpdate::Failed { failure, .. } if failure.message.contains("yesterday"))
    );
    // An undocumented status is Unknown with its text, never an error.
    let unknown = &updates[1].statuses()[0];
    assert_eq!(
        (unknown.code, unknown.original.as_str()),
        (StatusCode::Unknown, "CleanSweeped")
    );
}

#[tokio::test]
async fn refused_credentials_fail_the_whole_call() {
    let mut server = Server::new_async().await;
    server
        .mock("GET", "/2026-07/order")
        .match_query(Matcher::Any)
        .with_status(401)
        .create_async()
        .await;
    let err = provider(&server).track(&[reference()]).await.unwrap_err();
    assert!(matches!(err, Error::Unauthenticated { .. }), "{err:?}");
    server.reset();
    server
        .mock("POST", "/2026-07/order")
        .with_status(403)
        .create_async()
        .await;
    let err = provider(&server)
        .create_order(&jane_roe(), &Waybill::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unauthenticated { .. }), "{err:?}");
}

#[tokio::test]
async fn a_persistent_429_is_rate_limited_and_retryable() {
    let mut server = Server::new_async().await;
    let limited = server
        .mock("GET", "/2026-07/inventory-level")
        .match_query(Matcher::Any)
        .with_status(429)
        .with_header("x-retry-after", "0")
        .with_header("x-remaining-calls", "0")
        .with_body(
            r#"{"statusCode":429,"message":"Rate limit is exceeded. Try again in 25 seconds."}"#,
        )
        .expect(3)
        .create_async()
        .await;
    let mut http = fast_http();
    http.retry = http.retry.with_max_retries(2);
    let shipbob = builder(&server).with_http_config(http).build().unwrap();
    let err = shipbob.stock(&["LIGHT-ROAST".into()]).await.unwrap_err();
    limited.assert_async().await;
    assert!(matches!(err, Error::RateLimited { .. }), "{err:?}");
    assert!(err.is_retryable());
}

const CANCELLED: &str = r#"{"order_id":309589638,"status":"Success","canceled_shipment_results":[{"shipment_id":100810005,"action":"Cancel","is_success":true,"reason":null}],"order":{"id":309589638,"reference_id":"SO-1001","status":"Cancelled","shipments":[{"id":100810005,"status":"Cancelled"}]}}"#;
const REFUSED: &str = r#"{"order_id":309589638,"status":"Failure","canceled_shipment_results":[{"shipment_id":100810005,"action":"Cancel","is_success":false,"reason":"Shipment is already being processed"}],"order":{"id":309589638,"reference_id":"SO-1001","status":"Processing","shipments":[{"id":100810005,"status":"Processing","status_details":[{"id":100,"name":"Picked","description":"Picking Completed"}]}]}}"#;
const PICKED: &str = r#"{"id":309589638,"reference_id":"SO-1001","status":"Processing","shipments":[{"id":100810005,"status":"Processing","status_details":[{"id":100,"name":"Picked","description":"Picking Completed"}]}]}"#;

#[tokio::test]
async fn cancel_outcomes() {
    let mut server = Server::new_async().await;
    let ok = server
        .mock("POST", "/2026-07/order/309589638:cancel")
        .match_header("shipbob_channel_id", "432951")
        .with_body(CANCELLED)
        .expect(1)
        .create_async()
        .await;
    let outcome = provider(&server).cancel_order(&reference()).await.unwrap();
    ok.assert_async().await;
    assert_eq!(
        outcome,
        CancelOutcome::Cancelled {
            state: Some("Cancelled".into())
        }
    );

    for (status, body) in [
        (200, REFUSED),
        (422, r#"{"":["Order is not cancellable"]}"#),
    ] {
        server.reset();
        server
            .mock("POST", "/2026-07/order/309589638:cancel")
            .with_status(status)
            .with_body(body)
            .create_async()
            .await;
        let reread = server
            .mock("GET", "/2026-07/order/309589638")
            .with_body(PICKED)
            .expect(1)
            .create_async()
            .await;
        let outcome = provider(&server).cancel_order(&reference()).await.unwrap();
        reread.assert_async().await;
        assert_eq!(
            outcome,
            CancelOutcome::TooLate {
                state: "Processing/Picked (100)".into()
            },
            "{status}"
        );
    }

    server.reset();
    server
        .mock("POST", "/2026-07/order/309589638:cancel")
        .with_body(REFUSED)
        .create_async()
        .await;
    server
        .mock("GET", "/2026-07/order/309589638")
        .with_body(r#"{"id":309589638,"shipments":[{"id":100810005,"status":"Cancelled"}]}"#)
        .create_async()
        .await;
    let outcome = provider(&server).cancel_order(&reference()).await.unwrap();
    assert!(
        matches!(outcome, CancelOutcome::AlreadyCancelled { .. }),
        "{outcome:?}"
    );

    server.reset();
    server
        .mock("POST", "/2026-07/order/309589638:cancel")
        .with_body(r#"{"order_id":309589638,"status":"PartialSuccess","canceled_shipment_results":[{"shipment_id":1,"is_success":true},{"shipment_id":2,"is_success":false,"reason":"Shipment is already being processed"}]}"#)
        .create_async()
        .await;
    let outcome = provider(&server).cancel_order(&reference()).await.unwrap();
    assert_eq!(
        outcome,
        CancelOutcome::TooLate {
            state: "partially cancelled: shipment 2: Shipment is already being processed".into()
        }
    );

    server.reset();
    server
        .mock("POST", "/2026-07/order/309589638:cancel")
        .with_status(404)
        .create_async()
        .await;
    let err = provider(&server)
        .cancel_order(&reference())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn an_address_update_sends_the_fixture_bytes() {
    let mut server = Server::new_async().await;
    let read = server
        .mock("GET", "/2026-07/order/309589638")
        .with_body(CREATED)
        .expect(2)
        .create_async()
        .await;
    let update = server
        .mock("PUT", "/2026-07/shipment/100810005:updateAddress")
        .match_header("authorization", format!("Bearer {TOKEN}").as_str())
        .match_body(UPDATE_ADDRESS)
        .with_body(r#"{"id":100810005,"is_success":true,"error":null}"#)
        .expect(1)
        .create_async()
        .await;
    let mut order = jane_roe();
    order.address.lines = vec!["200 W Madison St".into()];
    order.address.postcode = "60606".into();
    let shipbob = provider(&server);
    let outcome = shipbob
        .update_order(&reference(), &order, &Waybill::new())
        .await
        .unwrap();
    update.assert_async().await;
    assert_eq!(outcome, UpdateOutcome::Applied);

    server.reset();
    server
        .mock("GET", "/2026-07/order/309589638")
        .with_body(CREATED)
        .create_async()
        .await;
    server
        .mock("PUT", "/2026-07/shipment/100810005:updateAddress")
        .with_body(r#"{"id":100810005,"is_success":false,"error":{"code":"CONFLICT","message":"Shipment can no longer be modified"}}"#)
        .create_async()
        .await;
    let outcome = shipbob
        .update_order(&reference(), &order, &Waybill::new())
        .await
        .unwrap();
    assert_eq!(
        outcome,
        UpdateOutcome::TooLate {
            state: "Shipment can no longer be modified".into()
        }
    );
    let _ = read;
}

#[tokio::test]
async fn stock_reads_fulfillable_quantities() {
    let mut server = Server::new_async().await;
    let levels = server
        .mock("GET", "/2026-07/inventory-level")
        .match_query(Matcher::AllOf(vec![
            Matcher::UrlEncoded("SearchBy".into(), "LIGHT-ROAST".into()),
            Matcher::UrlEncoded("IsActive".into(), "true".into()),
            Matcher::UrlEncoded("PageSize".into(), "100".into()),
        ]))
        .with_body(r#"{"items":[{"inventory_id":20104984,"sku":"LIGHT-ROAST","name":"Light Roast Coffee","total_on_hand_quantity":1688,"total_committed_quantity":2,"total_fulfillable_quantity":1686,"total_sellable_quantity":1686,"total_awaiting_quantity":0,"total_backordered_quantity":0,"total_exception_quantity":0,"total_internal_transfer_quantity":0},{"inventory_id":20104985,"sku":"LIGHT-ROAST-5LB","name":"Light Roast Coffee 5 lb","total_on_hand_quantity":40,"total_committed_quantity":0,"total_fulfillable_quantity":40,"total_sellable_quantity":40,"total_awaiting_quantity":100,"total_backordered_quantity":0,"total_exception_quantity":0,"total_internal_transfer_quantity":0}],"first":null,"prev":null,"next":null,"last":null}"#)
        .expect(1)
        .create_async()
        .await;
    let got = provider(&server)
        .stock(&["LIGHT-ROAST".into()])
        .await
        .unwrap();
    levels.assert_async().await;
    assert_eq!(
        got.len(),
        1,
        "the partial match LIGHT-ROAST-5LB is not ours"
    );
    assert_eq!(
        (got[0].available, got[0].reserved, got[0].in_transit),
        (1686, Some(2), Some(0))
    );

    let locations = server
        .mock("GET", "/2026-07/inventory-level/locations")
        .match_query(Matcher::UrlEncoded("LocationId".into(), "228".into()))
        .with_body(r#"{"items":[{"inventory_id":20104984,"sku":"LIGHT-ROAST","name":"Light Roast Coffee","locations":[{"location_id":228,"name":"Moreno Valley (CA)","on_hand_quantity":1000,"committed_quantity":2,"fulfillable_quantity":998,"awaiting_quantity":0,"internal_transfer_quantity":0},{"location_id":211,"name":"Fairburn (GA)","on_hand_quantity":688,"committed_quantity":0,"fulfillable_quantity":688,"awaiting_quantity":0,"internal_transfer_quantity":0}]}],"first":null,"prev":null,"next":null,"last":null}"#)
        .expect(1)
        .create_async()
        .await;
    let pinned = builder(&server).with_location_id(228).build().unwrap();
    let got = pinned.stock(&["LIGHT-ROAST".into()]).await.unwrap();
    locations.assert_async().await;
    assert_eq!(
        (got[0].available, got[0].warehouse.as_deref()),
        (998, Some("228"))
    );

    server.reset();
    server
        .mock("GET", "/2026-07/inventory-level")
        .match_query(Matcher::Any)
        .with_status(400)
        .with_body(r#"{"type":"https://tools.ietf.org/html/rfc7231#section-6.5.1","title":"Bad Request","status":400,"detail":"PageSize must be positive","instance":"/2026-07/inventory-level"}"#)
        .create_async()
        .await;
    let err = provider(&server).stock(&[]).await.unwrap_err();
    assert!(
        err.to_string().contains("PageSize must be positive"),
        "{err}"
    );
}

#[tokio::test]
async fn a_next_link_to_another_origin_is_not_followed() {
    let mut server = Server::new_async().await;
    server
        .mock("GET", "/2026-07/inventory-level")
        .match_query(Matcher::Any)
        .with_body(r#"{"items":[{"inventory_id":1,"sku":"A","total_fulfillable_quantity":1}],"next":"https://collector.example/2026-07/inventory-level?Cursor=x"}"#)
        .create_async()
        .await;
    let err = provider(&server).stock(&[]).await.unwrap_err();
    assert!(matches!(err, Error::Protocol { .. }), "{err:?}");
    assert!(err.to_string().contains("collector.example"), "{err}");
}

#[tokio::test]
async fn cash_on_delivery_and_pickup_points_are_refused_before_any_call() {
    let server = Server::new_async().await;
    let mut order = jane_roe();
    order.payment = fulfillkit::model::Payment::CashOnDelivery {
        amount: rust_decimal::Decimal::ONE,
    };
    let err = provider(&server)
        .create_order(&order, &Waybill::new())
        .await
        .unwrap_err();
    assert_eq!(err.field_errors()[0].path, "payment");
    let unsupported = provider(&server)
        .search_addresses(&fulfillkit::model::AddressQuery::in_country("US"))
        .await
        .unwrap_err();
    assert!(matches!(unsupported, Error::Unsupported { .. }));
}
