//! Helpers shared by the Wapi test files: credentials, the signature recomputed independently
//! of the adapter, a fast transport configuration, the protocol's "COD, Italy" fixture.
#![allow(dead_code, reason = "each test file uses a different subset")]

use hmac::{Hmac, KeyInit, Mac};
use mockito::{Server, ServerGuard};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use sha1::Sha1;

use fulfillkit::Error;
use fulfillkit::model::*;
use fulfillkit::provider::FulfillmentProvider;
use fulfillkit::provider::wapi::{WapiBuilder, WapiProvider};
use fulfillkit::testkit;

pub const CLIENT_ID: &str = "8c1f6c1e-0000-4000-8000-00000000cafe";
pub const SECRET: &str = "wapi-test-secret";

/// HMAC-SHA1 hex, computed independently of the adapter.
pub fn hmac_hex(body: &[u8]) -> String {
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The request carries our client id and a signature over exactly the bytes received.
pub fn signed(req: &mockito::Request) -> bool {
    let body = req.body().cloned().unwrap_or_default();
    let header = |name: &str| {
        req.header(name)
            .first()
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    header("x-client-id").as_deref() == Some(CLIENT_ID)
        && header("x-signature") == Some(hmac_hex(&body))
        && header("content-type").as_deref() == Some("application/json")
        && header("accept").as_deref() == Some("application/json")
}

pub use super::fast_http;

pub fn builder(server: &ServerGuard) -> WapiBuilder {
    WapiBuilder::new(CLIENT_ID, SECRET)
        .with_base_url(format!("{}/api", server.url()))
        .with_http_config(fast_http())
        .with_courier_service("SDA")
        .with_courier_service("DPD PL")
}

pub fn provider(server: &ServerGuard) -> WapiProvider {
    builder(server).build().unwrap()
}

/// The order behind the protocol's "COD, Italy" fixture.
pub fn cod_italy() -> (Order, Waybill) {
    let mut order = testkit::sample_order("SO-1001");
    order.customer.phone = "+39 340 123 4567".into();
    order.address.lines = vec!["Via Roma 12".into(), "int. 4".into()];
    order.lines = vec![
        CartLine {
            sku: "Demo Product-1".into(),
            name: "Demo 1".into(),
            product_type: None,
            quantity: 2,
            unit_price: Decimal::new(245, 1),
        },
        CartLine {
            sku: "Demo Product-2".into(),
            name: "Demo 2".into(),
            product_type: None,
            quantity: 1,
            unit_price: Decimal::new(1000, 2),
        },
    ];
    order.payment = Payment::CashOnDelivery {
        amount: Decimal::new(5900, 2),
    };
    let waybill = Waybill::new()
        .with("comment", "call first")
        .with("courier_service", "SDA")
        .with("preferred_delivery_date", "2024-05-10")
        .with("preferred_delivery_day_part", "morning");
    (order, waybill)
}

pub fn cod_italy_body() -> Value {
    json!({
        "orderNumber": "SO-1001",
        "product": {"name": "Demo Product-1", "quantity": 2, "price": 24.5, "unitPriceForInvoice": 24.5},
        "additionalProducts": [{"name": "Demo Product-2", "quantity": 1, "price": 10.0, "unitPriceForInvoice": 10.0}],
        "cashOnDelivery": 59.0,
        "receiver": {
            "firstName": "Giulia Rossi", "lastName": "", "phoneNumber": "+393401234567",
            "emailAddress": "giulia@example.com", "addressText": "Via Roma 12",
            "addressAdditionalInfo": "int. 4", "city": "Venezia", "country": "IT", "zipCode": "30121"
        },
        "comment": "call first",
        "courierService": "SDA",
        "preferredDeliveryDate": "2024-05-10",
        "preferredDeliveryDayPart": "morning"
    })
}

/// A create against a server answering `status` with `body`, one retry allowed.
pub async fn create_against(status: usize, body: &str) -> (Error, ServerGuard) {
    let mut server = Server::new_async().await;
    server
        .mock("POST", "/api/outbounds")
        .with_status(status)
        .with_body(body)
        .create_async()
        .await;
    let (order, waybill) = cod_italy();
    let mut config = fast_http();
    config.retry = config.retry.with_max_retries(1);
    let err = builder(&server)
        .with_http_config(config)
        .build()
        .unwrap()
        .create_order(&order, &waybill)
        .await
        .unwrap_err();
    (err, server)
}
