//! Shared provider rate budgets: a GCRA (generic cell rate algorithm) row per provider account,
//! reserved in one statement on the database's clock, so replicas with skewed clocks agree.

use std::time::Duration;

use sqlx::Row;

use super::{PgStore, db_error};
use crate::error::Result;
use crate::http::RateLimit;

/// Reserves the next request of `account`: the row's theoretical arrival time moves one
/// emission interval on; the caller waits until at most `burst` intervals remain before it.
pub(super) async fn reserve(store: &PgStore, account: &str, limit: RateLimit) -> Result<Duration> {
    let per_second = u64::from(limit.per_second.max(1));
    let interval_us = 1_000_000 / per_second;
    let window_us = interval_us.saturating_mul(u64::from(limit.burst.max(1)));
    let wait_us: i64 = sqlx::query(&store.tables.queries.reserve_request)
        .bind(account)
        .bind(i64::try_from(interval_us).unwrap_or(i64::MAX))
        .bind(i64::try_from(window_us).unwrap_or(i64::MAX))
        .fetch_one(store.trip())
        .await
        .and_then(|row| row.try_get(0))
        .map_err(db_error(format!("reserve a request of {account}")))?;
    Ok(Duration::from_micros(u64::try_from(wait_us).unwrap_or(0)))
}
