//! One replica of a host on PostgreSQL: what a backend running several replicas behind a load
//! balancer sets up, in a process of its own (`tests/replica_processes.rs` runs two of them
//! against one database, kills one and restarts it).
//!
//! The set-up is [`build`]: the host's pool, `PgStore::migrate()` at start-up, the store given
//! to the orchestrator with the replica's own owner name, each provider account's rate limit
//! shared through the store, `reconcile()` before serving, and an event sink that
//! deduplicates by event id (here a table in the same database).
//!
//! The host's traffic comes on standard input, one JSON command per line (`{"cmd":"confirm",
//! "orders":[…]}`, `change`, `track`, `retry`, `reconcile`, `quit`); each answer is one JSON
//! line on standard output. Configuration from the environment:
//!
//! | variable | meaning |
//! |---|---|
//! | `DATABASE_URL` | the database |
//! | `FULFILLKIT_SCHEMA` | the schema of fulfillkit's tables (default: the search path) |
//! | `FULFILLKIT_OWNER` | this replica's name (a pod name) |
//! | `SPHERE_URL`, `SHIPBOB_URL` | the providers (the simulators' default credentials) |
//! | `SHIPBOB_RATE` | the ShipBob account's requests per second, shared by all replicas |
//! | `POLL_INTERVAL_MS` | how soon a shipment is polled again (default: the poll policy's) |
//! | `CLAIM_TTL_MS` | how long a tracking claim holds (default 5 min): a killed replica's claims are polled by another after it |
//!
//! ```text
//! DATABASE_URL=postgres://… FULFILLKIT_OWNER=pod-a SPHERE_URL=… SHIPBOB_URL=… \
//!   cargo run --example replica --features postgres
//! ```

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use fulfillkit::http::{HttpConfig, RateLimit, RetryConfig};
use fulfillkit::model::{
    AddressOption, AddressQuery, Order, Shipment, ShipmentRef, Sku, StockLevel, TrackingUpdate,
    Waybill,
};
use fulfillkit::orchestrator::{
    Condition, Event, EventSink, Instance, Orchestrator, PollPolicy, RoutingRule,
};
use fulfillkit::provider::shipbob::ShipBobBuilder;
use fulfillkit::provider::sphere::SphereBuilder;
use fulfillkit::provider::{CancelOutcome, Capabilities, FulfillmentProvider, UpdateOutcome};
use fulfillkit::simulator;
use fulfillkit::store::postgres::{PgPool, PgPoolOptions, PgStore};
use fulfillkit::{Error, Result};

/// What a replica is told by its environment.
#[derive(Clone)]
pub struct Config {
    pub database_url: String,
    pub schema: Option<String>,
    pub owner: String,
    pub sphere_url: String,
    pub shipbob_url: String,
    pub shipbob_rate: u32,
    pub poll_interval: Option<Duration>,
    pub claim_ttl: Option<Duration>,
}

impl Config {
    pub fn from_env() -> std::result::Result<Self, String> {
        let var = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
        Ok(Self {
            database_url: var("DATABASE_URL")?,
            schema: std::env::var("FULFILLKIT_SCHEMA").ok(),
            owner: var("FULFILLKIT_OWNER")?,
            sphere_url: var("SPHERE_URL")?,
            shipbob_url: var("SHIPBOB_URL")?,
            shipbob_rate: var("SHIPBOB_RATE")?
                .parse()
                .map_err(|_| "SHIPBOB_RATE must be a number".to_owned())?,
            poll_interval: match std::env::var("POLL_INTERVAL_MS") {
                Ok(ms) => {
                    Some(Duration::from_millis(ms.parse().map_err(|_| {
                        "POLL_INTERVAL_MS must be a number".to_owned()
                    })?))
                }
                Err(_) => None,
            },
            claim_ttl: match std::env::var("CLAIM_TTL_MS") {
                Ok(ms) => Some(Duration::from_millis(
                    ms.parse()
                        .map_err(|_| "CLAIM_TTL_MS must be a number".to_owned())?,
                )),
                Err(_) => None,
            },
        })
    }
}

/// One command of the host's traffic.
#[derive(Debug, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    Confirm { orders: Vec<Order> },
    Change { orders: Vec<Order> },
    Track,
    Retry,
    Reconcile,
    Quit,
}

/// The answer to one command.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Answer {
    pub cmd: String,
    pub ok: usize,
    pub failed: usize,
    /// `track`: the orders whose status this replica fetched successfully in this round.
    pub polled: Vec<String>,
    pub errors: Vec<String>,
}

/// The host's sink: a table with the event id as its key, so a redelivered event is counted,
/// not stored twice (the deduplicated view), and every delivery is counted.
struct TableSink {
    pool: PgPool,
    table: String,
}

#[async_trait]
impl EventSink for TableSink {
    async fn emit(&self, event: Event) {
        let query = format!(
            "INSERT INTO {} (id, kind, order_id, event, deliveries) VALUES ($1, $2, $3, $4::jsonb, 1)
             ON CONFLICT (id) DO UPDATE SET deliveries = {0}.deliveries + 1",
            self.table
        );
        let json = serde_json::to_string(&event).unwrap_or_default();
        // `emit` cannot fail: a host's sink retries until its own store takes the event.
        for attempt in 0..50 {
            let written = sqlx::query(&query)
                .bind(event.id.as_str())
                .bind(event.kind.name())
                .bind(event.order_id.as_ref().map(|o| o.as_str().to_owned()))
                .bind(&json)
                .execute(&self.pool)
                .await;
            if written.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10 * (attempt + 1))).await;
        }
    }
}

/// A provider that remembers which orders it fetched a status for (the test's evidence of
/// "no shipment polled by two replicas in one round").
#[derive(Debug)]
struct Logged<P> {
    inner: P,
    polled: Arc<Mutex<BTreeSet<String>>>,
}

#[async_trait]
impl<P: FulfillmentProvider> FulfillmentProvider for Logged<P> {
    fn kind(&self) -> &str {
        self.inner.kind()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    fn waybill_form(&self) -> std::borrow::Cow<'_, fulfillkit::model::WaybillForm> {
        self.inner.waybill_form()
    }
    async fn create_order(&self, order: &Order, waybill: &Waybill) -> Result<Shipment> {
        self.inner.create_order(order, waybill).await
    }
    async fn update_order(
        &self,
        shipment: &ShipmentRef,
        order: &Order,
        waybill: &Waybill,
    ) -> Result<UpdateOutcome> {
        self.inner.update_order(shipment, order, waybill).await
    }
    async fn cancel_order(&self, shipment: &ShipmentRef) -> Result<CancelOutcome> {
        self.inner.cancel_order(shipment).await
    }
    async fn track(&self, shipments: &[ShipmentRef]) -> Result<Vec<TrackingUpdate>> {
        let updates = self.inner.track(shipments).await?;
        // A shipment whose answer failed is released and may be polled again at once, by
        // either replica: only answers count.
        if let Ok(mut polled) = self.polled.lock() {
            polled.extend(
                updates
                    .iter()
                    .filter(|u| !matches!(u, TrackingUpdate::Failed { .. }))
                    .map(|u| u.shipment().order_id.as_str().to_owned()),
            );
        }
        Ok(updates)
    }
    async fn stock(&self, skus: &[Sku]) -> Result<Vec<StockLevel>> {
        self.inner.stock(skus).await
    }
    async fn search_addresses(&self, query: &AddressQuery) -> Result<Vec<AddressOption>> {
        self.inner.search_addresses(query).await
    }
}

/// Quick retries and timeouts: the simulators answer in milliseconds.
fn http() -> HttpConfig {
    let mut http = HttpConfig::default();
    http.retry = RetryConfig::default()
        .with_backoff(Duration::from_millis(2), Duration::from_millis(20))
        .with_max_retries(3);
    http.request_timeout = Duration::from_millis(500);
    http.rate_limit = None;
    http
}

/// The replica: its store (migrated), its orchestrator, and the log of polled orders.
pub struct Replica {
    pub orchestrator: Orchestrator,
    pub store: PgStore,
    polled: Arc<Mutex<BTreeSet<String>>>,
}

/// Sets the replica up, as a host does at start-up.
pub async fn build(config: &Config) -> Result<Replica> {
    // The host's pool (here made from DATABASE_URL).
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .connect(&config.database_url)
        .await
        .map_err(|e| Error::store("connect to the database", e))?;
    let mut store = PgStore::builder(pool.clone());
    if let Some(schema) = &config.schema {
        store = store.with_schema(schema.clone());
    }
    let store = store.build()?;
    store.migrate().await?;

    let sink_table = match &config.schema {
        Some(schema) => format!("{schema}.host_events"),
        None => "host_events".to_owned(),
    };
    // Replicas starting together: CREATE TABLE IF NOT EXISTS races with itself, so under a lock.
    let setup = async {
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('replica example sink'))")
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!(
            "CREATE TABLE IF NOT EXISTS {sink_table} (id text PRIMARY KEY, kind text NOT NULL,
             order_id text, event jsonb NOT NULL, deliveries int NOT NULL)"
        ))
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    };
    setup
        .await
        .map_err(|e| Error::store("create the sink table", e))?;

    let polled = Arc::new(Mutex::new(BTreeSet::new()));
    let sphere = SphereBuilder::new(
        simulator::DEFAULT_ENVIRONMENT,
        simulator::DEFAULT_API_KEY,
        simulator::DEFAULT_CLIENT_CODE,
        simulator::DEFAULT_LOCATION_ID,
    )
    .with_base_url(config.sphere_url.clone())
    .with_http_config(http())
    .with_max_track_batch(10)
    .build()?;
    // The account's limit is the account's: every replica reserves its requests in the store.
    let mut shipbob_http = http();
    shipbob_http.rate_limit = Some(RateLimit {
        per_second: config.shipbob_rate,
        burst: 1,
    });
    let shipbob_http = shipbob_http.with_shared_rate_limit(
        Arc::new(store.clone()),
        format!("shipbob:{}", simulator::SHIPBOB_DEFAULT_CHANNEL_ID),
    );
    let shipbob = ShipBobBuilder::new(
        simulator::SHIPBOB_DEFAULT_TOKEN,
        simulator::SHIPBOB_DEFAULT_CHANNEL_ID,
    )
    .with_base_url(config.shipbob_url.clone())
    .with_http_config(shipbob_http)
    .with_feed_interval(Duration::ZERO)
    .with_feed_overlap(Duration::ZERO)
    .with_max_track_batch(25)
    .build()?;

    let mut poll_policy = PollPolicy::default();
    if let Some(interval) = config.poll_interval {
        poll_policy.intervals.clear();
        poll_policy.default_interval = interval;
        poll_policy.cod_delivered_interval = interval;
    }
    let mut builder = Orchestrator::builder();
    if let Some(ttl) = config.claim_ttl {
        builder = builder.tracking_claim_ttl(ttl);
    }
    let orchestrator = builder
        .poll_policy(poll_policy)
        .instance(Instance::new(
            "sphere",
            "Sphere",
            Arc::new(Logged {
                inner: sphere,
                polled: polled.clone(),
            }),
        ))
        .instance(Instance::new(
            "shipbob",
            "ShipBob",
            Arc::new(Logged {
                inner: shipbob,
                polled: polled.clone(),
            }),
        ))
        .rule(RoutingRule::new(
            "shipbob",
            Condition::tag("shipbob"),
            "shipbob",
        ))
        .rule(RoutingRule::new("rest", Condition::Always, "sphere"))
        .store(Arc::new(store.clone()))
        .events(Arc::new(TableSink {
            pool,
            table: sink_table,
        }))
        .owner(config.owner.clone())
        .tracking_concurrency(4)
        .stale_intent_after(Duration::from_secs(2))
        .outbox_grace(Duration::ZERO)
        .edit_lease(Duration::from_secs(30), Duration::from_secs(10))
        .build()?;
    // Before serving: finish what a crashed process (maybe this one) left behind.
    orchestrator.reconcile(Duration::from_secs(2)).await?;
    Ok(Replica {
        orchestrator,
        store,
        polled,
    })
}

/// Runs `f` over `items`, 16 at a time.
async fn each<T, F, Fut>(items: Vec<T>, f: F) -> (usize, Vec<String>)
where
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let mut ok = 0;
    let mut errors = Vec::new();
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        let chunk: Vec<_> = items.by_ref().take(16).map(&f).collect();
        for result in futures_util::future::join_all(chunk).await {
            match result {
                Ok(true) => ok += 1,
                Ok(false) => {}
                Err(e) => errors.push(e.to_string()),
            }
        }
    }
    (ok, errors)
}

impl Replica {
    /// Answers one command.
    pub async fn handle(&self, command: Command) -> Answer {
        let o = &self.orchestrator;
        let mut answer = Answer::default();
        match command {
            Command::Confirm { orders } => {
                answer.cmd = "confirm".into();
                let n = orders.len();
                let (ok, errors) = each(orders, |order| async move {
                    o.on_order_confirmed(&order)
                        .await
                        .map(|outcome| outcome.is_exported())
                })
                .await;
                (answer.ok, answer.failed, answer.errors) = (ok, n - ok, errors);
            }
            Command::Change { orders } => {
                answer.cmd = "change".into();
                let n = orders.len();
                let (ok, errors) = each(orders, |order| async move {
                    o.on_order_changed(&order).await.map(|_| true)
                })
                .await;
                (answer.ok, answer.failed, answer.errors) = (ok, n - ok, errors);
            }
            Command::Track => {
                answer.cmd = "track".into();
                if let Ok(mut polled) = self.polled.lock() {
                    polled.clear();
                }
                match o.sync_tracking().await {
                    Ok(report) => {
                        answer.ok = report.polled;
                        answer.failed = report.failed;
                    }
                    Err(e) => answer.errors.push(e.to_string()),
                }
                if let Ok(polled) = self.polled.lock() {
                    answer.polled = polled.iter().cloned().collect();
                }
            }
            Command::Retry => {
                answer.cmd = "retry".into();
                match o.retry_failed_exports().await {
                    Ok(report) => answer.ok = report.exported,
                    Err(e) => answer.errors.push(e.to_string()),
                }
                if let Err(e) = o.retry_pending_updates().await {
                    answer.errors.push(e.to_string());
                }
            }
            Command::Reconcile => {
                answer.cmd = "reconcile".into();
                match o.reconcile(Duration::from_secs(2)).await {
                    Ok(_) => {}
                    Err(e) => answer.errors.push(e.to_string()),
                }
                match o.deliver_pending_events().await {
                    Ok(delivered) => answer.ok = delivered,
                    Err(e) => answer.errors.push(e.to_string()),
                }
            }
            Command::Quit => answer.cmd = "quit".into(),
        }
        answer
    }
}

/// Serves commands from standard input until `quit` or its end.
pub async fn serve(config: Config) -> Result<()> {
    let replica = build(&config).await?;
    let mut stdout = tokio::io::stdout();
    let ready = serde_json::to_string(&Answer {
        cmd: "ready".into(),
        ..Answer::default()
    })
    .unwrap_or_default();
    stdout.write_all(format!("{ready}\n").as_bytes()).await.ok();
    stdout.flush().await.ok();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let answer = match serde_json::from_str::<Command>(&line) {
            Ok(Command::Quit) => break,
            Ok(command) => replica.handle(command).await,
            Err(e) => Answer {
                cmd: "invalid".into(),
                errors: vec![e.to_string()],
                ..Answer::default()
            },
        };
        let text = serde_json::to_string(&answer).unwrap_or_default();
        stdout.write_all(format!("{text}\n").as_bytes()).await.ok();
        stdout.flush().await.ok();
    }
    replica.store.pool().close().await;
    Ok(())
}

#[allow(dead_code, reason = "the test runs `serve` itself")]
#[tokio::main]
async fn main() {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("replica: {e} (see the example's docs)");
            std::process::exit(2);
        }
    };
    if let Err(e) = serve(config).await {
        eprintln!("replica: {e}");
        std::process::exit(1);
    }
}
