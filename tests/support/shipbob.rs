//! Helpers shared by the ShipBob test files: the protocol's fixture order, a fast transport
//! configuration, a mockito-backed builder, and the conformance driver over the simulator.
#![allow(dead_code, reason = "each test file uses a different subset")]

use std::time::Duration;

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use mockito::ServerGuard;
use rust_decimal::Decimal;

use fulfillkit::Result;
use fulfillkit::http::{HttpConfig, RetryConfig};
use fulfillkit::model::*;
use fulfillkit::provider::shipbob::{ShipBobBuilder, ShipBobProvider};
use fulfillkit::simulator::ShipBobSimulator;
use fulfillkit::testkit::{self, ConformanceDriver};

pub const TOKEN: &str = "pat-7c0ffee-shipbob-test";
pub const CHANNEL: i64 = 432951;
/// The secret of the protocol's webhook fixture (bytes 0x00..0x17).
pub const WEBHOOK_SECRET: &str = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX";

pub fn fast_http() -> HttpConfig {
    let mut http = HttpConfig::default();
    http.retry =
        RetryConfig::default().with_backoff(Duration::from_millis(1), Duration::from_millis(5));
    http.jitter_seed = Some(7);
    http.rate_limit = None;
    http
}

/// A builder against a mockito server: its URL, the test token and channel, fast retries,
/// the change feed read on every call.
pub fn builder(server: &ServerGuard) -> ShipBobBuilder {
    ShipBobBuilder::new(TOKEN, CHANNEL)
        .with_base_url(server.url())
        .with_http_config(fast_http())
        .with_feed_interval(Duration::ZERO)
}

pub fn provider(server: &ServerGuard) -> ShipBobProvider {
    builder(server).build().unwrap()
}

/// The order behind the protocol's create fixture (§11.5): Jane Roe in Chicago, two bags of
/// light roast at 12.50 USD.
pub fn jane_roe() -> Order {
    let mut order = testkit::sample_order("SO-1001");
    order.customer = Customer {
        name: "Jane Roe".into(),
        phone: "+1 312 555 0100".into(),
        email: Some("jane@example.com".into()),
    };
    order.address = Address {
        country: "US".into(),
        region: Some("IL".into()),
        city: "Chicago".into(),
        postcode: "60607".into(),
        lines: vec!["100 N Racine Ave".into(), "Suite 100".into()],
        provider_address_id: None,
        pickup_point_id: None,
    };
    order.lines = vec![CartLine {
        sku: "LIGHT-ROAST".into(),
        name: "Light Roast Coffee".into(),
        product_type: None,
        quantity: 2,
        unit_price: Decimal::new(1250, 2),
    }];
    order.currency = "USD".into();
    order.confirmed_at = Some(Utc.with_ymd_and_hms(2026, 9, 20, 10, 0, 0).unwrap());
    order.with_custom_field("source", "crm")
}

/// The exact create body of [`jane_roe`].
pub const JANE_ROE_BODY: &str = r#"{"reference_id":"SO-1001","order_number":"SO-1001","type":"DTC","shipping_method":"Standard","purchase_date":"2026-09-20T10:00:00Z","recipient":{"name":"Jane Roe","address":{"address1":"100 N Racine Ave","address2":"Suite 100","company_name":null,"city":"Chicago","state":"IL","country":"US","zip_code":"60607"},"email":"jane@example.com","phone_number":"+13125550100"},"products":[{"reference_id":"LIGHT-ROAST","name":"Light Roast Coffee","quantity":2,"unit_price":12.5,"external_line_id":1}],"tags":[{"name":"source","value":"crm"}],"financials":{"total_price":25.0}}"#;

/// An American order `id` of `LIGHT-ROAST` (stocked by the simulator).
pub fn american(id: &str) -> Order {
    let mut order = jane_roe();
    order.id = id.into();
    order.custom_fields.clear();
    order
}

/// Steers a [`ShipBobSimulator`] for the conformance suite.
pub struct SimDriver<'a>(pub &'a ShipBobSimulator);

#[async_trait]
impl ConformanceDriver for SimDriver<'_> {
    async fn lock(&self, shipment: &ShipmentRef) -> Result<()> {
        self.0
            .advance(shipment.order_id.as_str(), "Processing/Picked")
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
