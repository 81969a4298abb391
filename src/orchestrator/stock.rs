//! Stock as the orchestrator serves it: cached per instance, rendered per role.
//!
//! (Issue 8 fills this in.)

use std::time::Duration;

/// Cache of stock levels per instance.
#[derive(Debug)]
pub(crate) struct StockCache {
    #[allow(dead_code, reason = "used once the cache lands")]
    ttl: Duration,
}

impl StockCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self { ttl }
    }
}
