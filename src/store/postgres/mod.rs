//! [`PgStore`]: the [`Store`](super::Store) contract on PostgreSQL, for a host that runs
//! several replicas on one database (feature `postgres`).
//!
//! Built from the host's own sqlx [`PgPool`]; every query is a runtime string (nothing needs
//! a database to build). [`PgStore::migrate`] applies the versioned SQL migrations shipped in
//! the crate (`src/store/postgres/migrations/`); table names carry a prefix and optionally a
//! schema the host chooses ([`PgStoreBuilder`]). Rows keep the README's JSON (`record`,
//! `waybill`, `exception`, `event` columns, `jsonb`), so an operator reads them with `psql`;
//! the other columns are what the queries filter and sort on. A shipment's `version`,
//! `next_poll_at` and `updated_at`, which every poll changes, are columns only: a poll that
//! learns nothing leaves the record's JSON as it is.
//!
//! How each part of the contract is served:
//!
//! - every write with its effects (`insert`, `update`: record, events, exception) is **one
//!   statement**, so one round trip and atomic; `update` is a compare-and-swap on `version`;
//! - `claim_due` reads an instance's due shipments from a partial index on (instance, next
//!   poll time, order) and claims them with `FOR UPDATE SKIP LOCKED`: two replicas claiming at
//!   once get disjoint pages, and neither waits for the other;
//! - `apply_tracking` writes a whole provider answer in **one statement** (`UNNEST` arrays),
//!   each write changing the record's JSON in place (`jsonb` patch, statuses appended) at its
//!   expected version, its events stored with it;
//! - edit leases are rows taken with one `INSERT … ON CONFLICT … WHERE` (free, expired or
//!   the owner's own);
//! - the event outbox is a table written in the same statement as the change.
//!
//! It also keeps shared provider rate budgets ([`SharedRateLimit`]): one row per provider
//! account, on the database's clock, so replicas together send no more than the account's
//! limit.
//!
//! What lives elsewhere: the contract and its documentation ([`Store`](super::Store)), the
//! conformance checks ([`testkit::run_store_suite`](crate::testkit::run_store_suite)).

mod budget;
mod migrate;
mod sql;
mod store;

use std::fmt;
use std::sync::Arc;

pub use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::error::{Error, FieldError, Result};
use crate::http::SharedRateLimit;

pub use migrate::MIGRATIONS;

/// The default table prefix: tables are `fulfillkit_shipments`, `fulfillkit_events`, …
pub const DEFAULT_TABLE_PREFIX: &str = "fulfillkit_";

/// The [`Store`](super::Store) on PostgreSQL; see the [module docs](self).
///
/// Cheap to clone (the pool and the prepared query texts are shared). Its `Debug` shows the
/// tables, never the pool's connection options (they hold the database password).
///
/// ```no_run
/// # async fn f() -> fulfillkit::Result<()> {
/// use std::sync::Arc;
/// use fulfillkit::store::postgres::{PgPool, PgStore};
///
/// // The pool the host already holds.
/// let pool = PgPool::connect_lazy("postgres://app@db/app").expect("database url");
/// let store = PgStore::new(pool);
/// store.migrate().await?; // at start-up, before serving
/// let store: Arc<dyn fulfillkit::store::Store> = Arc::new(store);
/// # let _ = store; Ok(()) }
/// ```
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    tables: Arc<Tables>,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("schema", &self.tables.schema)
            .field("table_prefix", &self.tables.prefix)
            .finish_non_exhaustive()
    }
}

/// Where the tables are, and every query's text with their names put in.
struct Tables {
    /// Statements sent by the store and its clones ([`PgStore::round_trips`]).
    round_trips: std::sync::atomic::AtomicU64,
    schema: Option<String>,
    prefix: String,
    /// `schema.prefix` or `prefix`.
    qualified: String,
    queries: Queries,
}

/// The query texts, built once.
struct Queries {
    insert: String,
    update: String,
    get: String,
    list_failed: String,
    list_exporting: String,
    list_pending_updates: String,
    claim_due: String,
    claim_due_after: String,
    apply_tracking: String,
    release_claims: String,
    acquire_order_lease: String,
    release_order_lease: String,
    save_waybill: String,
    waybill: String,
    exception: String,
    exception_history: String,
    list_exceptions: String,
    pending_events: String,
    mark_delivered: String,
    reserve_request: String,
}

impl Tables {
    fn new(schema: Option<String>, prefix: String) -> Self {
        let qualified = match &schema {
            Some(schema) => format!("{schema}.{prefix}"),
            None => prefix.clone(),
        };
        let t = |sql: &str| sql::with_tables(sql, &qualified, &prefix);
        let queries = Queries {
            insert: t(&sql::insert()),
            update: t(&sql::update()),
            get: t(sql::GET),
            list_failed: t(&sql::listing("export_state = 'failed'")),
            list_exporting: t(&sql::listing("export_state = 'exporting'")),
            list_pending_updates: t(&sql::listing("pending_update")),
            claim_due: t(&sql::claim_due(false)),
            claim_due_after: t(&sql::claim_due(true)),
            apply_tracking: t(sql::APPLY_TRACKING),
            release_claims: t(sql::RELEASE_CLAIMS),
            acquire_order_lease: t(sql::ACQUIRE_ORDER_LEASE),
            release_order_lease: t(sql::RELEASE_ORDER_LEASE),
            save_waybill: t(sql::SAVE_WAYBILL),
            waybill: t(sql::WAYBILL),
            exception: t(sql::EXCEPTION),
            exception_history: t(sql::EXCEPTION_HISTORY),
            list_exceptions: t(sql::LIST_EXCEPTIONS),
            pending_events: t(sql::PENDING_EVENTS),
            mark_delivered: t(sql::MARK_DELIVERED),
            reserve_request: t(sql::RESERVE_REQUEST),
        };
        Self {
            round_trips: std::sync::atomic::AtomicU64::new(0),
            schema,
            prefix,
            qualified,
            queries,
        }
    }
}

impl PgStore {
    /// A store on `pool` with the default tables (`fulfillkit_*` in the connection's search
    /// path). Call [`migrate`](Self::migrate) before using it.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            tables: Arc::new(Tables::new(None, DEFAULT_TABLE_PREFIX.to_owned())),
        }
    }

    /// A builder, to choose a schema or a table prefix.
    pub fn builder(pool: PgPool) -> PgStoreBuilder {
        PgStoreBuilder {
            pool,
            schema: None,
            prefix: DEFAULT_TABLE_PREFIX.to_owned(),
        }
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// How many statements (database round trips) this store and its clones have sent,
    /// migrations excluded: every [`Store`](super::Store) call is one, but `apply_tracking`
    /// with one order twice in a batch (one per repeat). For capacity planning and the load
    /// harness.
    pub fn round_trips(&self) -> u64 {
        self.tables
            .round_trips
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The pool, counting one round trip.
    fn trip(&self) -> &PgPool {
        self.tables
            .round_trips
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        &self.pool
    }

    /// The schema the tables are in (`None`: the connection's search path).
    pub fn schema(&self) -> Option<&str> {
        self.tables.schema.as_deref()
    }

    /// The prefix of every table name.
    pub fn table_prefix(&self) -> &str {
        &self.tables.prefix
    }
}

/// Chooses where a [`PgStore`]'s tables are: a schema (created by [`PgStore::migrate`] if
/// missing) and a table prefix.
///
/// ```no_run
/// # fn f(pool: fulfillkit::store::postgres::PgPool) -> fulfillkit::Result<()> {
/// use fulfillkit::store::postgres::PgStore;
///
/// // Tables `shop.fk_shipments`, `shop.fk_events`, …
/// let store = PgStore::builder(pool).with_schema("shop").with_table_prefix("fk_").build()?;
/// # let _ = store; Ok(()) }
/// ```
#[derive(Clone)]
pub struct PgStoreBuilder {
    pool: PgPool,
    schema: Option<String>,
    prefix: String,
}

impl fmt::Debug for PgStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStoreBuilder")
            .field("schema", &self.schema)
            .field("table_prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl PgStoreBuilder {
    /// Puts the tables in `schema` (default: none, the connection's search path).
    pub fn with_schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// Starts every table name with `prefix` (default [`DEFAULT_TABLE_PREFIX`]; may be empty).
    pub fn with_table_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The store.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] when the schema or prefix is not a plain lowercase SQL name
    /// (`a`–`z`, `0`–`9`, `_`, not starting with a digit; at most 40 characters), every
    /// problem at once.
    pub fn build(self) -> Result<PgStore> {
        let mut errors = Vec::new();
        if let Some(schema) = &self.schema
            && (schema.is_empty() || !is_plain_name(schema))
        {
            errors.push(FieldError::new(
                "schema",
                "must be a lowercase SQL name: a-z, 0-9 and _, not starting with a digit, at most 40 characters",
            ));
        }
        if !self.prefix.is_empty() && !is_plain_name(&self.prefix) {
            errors.push(FieldError::new(
                "table_prefix",
                "must be empty or a lowercase SQL name: a-z, 0-9 and _, not starting with a digit, at most 40 characters",
            ));
        }
        if !errors.is_empty() {
            return Err(Error::validation("postgres store configuration", errors));
        }
        Ok(PgStore {
            pool: self.pool,
            tables: Arc::new(Tables::new(self.schema, self.prefix)),
        })
    }
}

/// A name put into SQL unquoted: nothing in it can end the name.
fn is_plain_name(name: &str) -> bool {
    name.len() <= 40
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

/// A database failure as the crate's error.
fn db_error(what: impl Into<String>) -> impl FnOnce(sqlx::Error) -> Error {
    let what = what.into();
    move |e| Error::store(what, e)
}

/// A row the store cannot read.
fn unreadable(what: impl Into<String>, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::store(what, e)
}

#[async_trait::async_trait]
impl SharedRateLimit for PgStore {
    async fn reserve(
        &self,
        account: &str,
        limit: crate::http::RateLimit,
    ) -> Result<std::time::Duration> {
        budget::reserve(self, account, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn names_are_checked_all_at_once() {
        let pool = PgPool::connect_lazy("postgres://u:hunter2@localhost/db").expect("url");
        let err = PgStore::builder(pool.clone())
            .with_schema("Shop; DROP")
            .with_table_prefix("1x")
            .build()
            .expect_err("bad names");
        assert_eq!(err.field_errors().len(), 2, "{err}");
        let store = PgStore::builder(pool)
            .with_schema("shop")
            .with_table_prefix("")
            .build()
            .expect("good names");
        assert_eq!(store.schema(), Some("shop"));
        let debug = format!("{store:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
    }
}
