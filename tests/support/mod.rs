//! Shared test helpers: the fast transport settings and the order variants several test
//! files use; provider fixtures live in `shipbob.rs`, `sphere.rs` and `wapi.rs`.
#![allow(dead_code, reason = "each test file uses a different subset")]

pub mod pg;
pub mod shipbob;
pub mod sphere;
pub mod wapi;

use std::time::Duration;

use fulfillkit::http::{HttpConfig, RetryConfig};
use fulfillkit::model::{Address, Order, Payment};

/// Millisecond backoffs, a fixed jitter seed and no rate limit: retries happen, fast and
/// reproducibly.
pub fn fast_http() -> HttpConfig {
    let mut http = HttpConfig::default();
    http.retry =
        RetryConfig::default().with_backoff(Duration::from_millis(1), Duration::from_millis(5));
    http.jitter_seed = Some(7);
    http.rate_limit = None;
    http
}

/// `order` paid cash on delivery, the whole total collected.
pub fn cod(mut order: Order) -> Order {
    order.payment = Payment::CashOnDelivery {
        amount: order.total(),
    };
    order
}

/// `order` going to Columbus, OH, in dollars.
pub fn american(mut order: Order) -> Order {
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
    order.currency = "USD".into();
    order
}
