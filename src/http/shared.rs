//! A request budget shared by several processes: the hook through which replicas of a host keep
//! a provider account's rate limit together ([`SharedRateLimit`]).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::RateLimit;
use crate::error::Result;

/// Hands out the requests of a provider account's rate limit to every process that uses the
/// account: a provider's limit is the account's (ShipBob allows 150 requests a minute per
/// account), so two replicas must not each send the whole of it.
///
/// `PgStore` implements it with one row per account in the database
/// (`store::postgres::PgStore`, feature `postgres`); give it to a provider through
/// [`HttpConfig::with_shared_rate_limit`](super::HttpConfig::with_shared_rate_limit).
#[async_trait]
pub trait SharedRateLimit: Send + Sync + fmt::Debug + 'static {
    /// Reserves one request of `account` under `limit` and returns how long the caller waits
    /// before sending it. Reserving never refuses: a busy account answers with a longer wait.
    ///
    /// # Errors
    ///
    /// The budget could not be reached ([`Error::Store`](crate::Error::Store) for a
    /// database): the request is not sent.
    async fn reserve(&self, account: &str, limit: RateLimit) -> Result<Duration>;
}

/// A [`SharedRateLimit`] and the account name it is kept under, as set on an
/// [`HttpConfig`](super::HttpConfig).
#[derive(Clone)]
pub struct SharedBudget {
    /// The budget.
    pub budget: Arc<dyn SharedRateLimit>,
    /// The account's name in it: the same in every replica, different for every account
    /// (e.g. `shipbob:<channel id>`).
    pub account: String,
}

impl fmt::Debug for SharedBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedBudget")
            .field("budget", &self.budget)
            .field("account", &self.account)
            .finish()
    }
}

/// Two budgets are equal when they are the same budget under the same account name.
impl PartialEq for SharedBudget {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.budget, &other.budget) && self.account == other.account
    }
}
