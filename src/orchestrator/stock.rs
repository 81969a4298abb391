//! Stock as the orchestrator serves it: read from the providers in batches, cached per
//! instance and sku for a time-to-live, shown per role, and watched for changes.
//!
//! - [`Orchestrator::stock`] answers from the cache and asks the provider only for skus that
//!   are missing or expired, in requests of at most
//!   [`Capabilities::max_stock_batch`](crate::provider::Capabilities::max_stock_batch) skus.
//! - [`Orchestrator::stock_for_order`] gives the order card one entry per cart line, at the
//!   instance the order went (or would go) to.
//! - [`Orchestrator::render_stock`] applies the instance's
//!   [`StockPolicy`](crate::model::StockPolicy): the same level is "15" to one role, "few" to
//!   another and nothing to a third.
//! - [`Orchestrator::sync_stock`] reads every instance's whole stock and emits
//!   [`EventKind::StockChanged`] for each sku whose quantity differs from what was last
//!   announced.
//!
//! What the thresholds and views mean lives in [`crate::model`]; this module only fetches,
//! caches and compares.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Instance, Orchestrator};
use crate::error::{Error, Operation, Result};
use crate::model::{Automation, Event, EventId, EventKind};
use crate::model::{InstanceId, Order, Sku, StockDisplay, StockLevel};

/// The stock of one cart line at the instance of its order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LineStock {
    /// Position of the line in [`Order::lines`].
    pub line: usize,
    /// The line's product.
    pub sku: Sku,
    /// Units the line asks for.
    pub quantity: u32,
    /// The level at the instance; `None` when the provider does not report the sku there.
    pub stock: Option<StockLevel>,
}

impl LineStock {
    /// Whether the instance has at least the line's quantity available (`false` when the sku
    /// is not reported).
    pub fn is_covered(&self) -> bool {
        self.stock
            .as_ref()
            .is_some_and(|s| s.available >= i64::from(self.quantity))
    }
}

/// What [`Orchestrator::stock_for_order`] returns: where the stock was read and one entry per
/// cart line, in cart order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OrderStock {
    /// The instance of the order's shipment record, or the one it routes to.
    pub instance: InstanceId,
    /// One entry per cart line.
    pub lines: Vec<LineStock>,
}

/// An instance whose stock could not be read during [`Orchestrator::sync_stock`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StockSyncFailure {
    /// The instance.
    pub instance: InstanceId,
    /// What its provider answered.
    pub error: Error,
}

/// What [`Orchestrator::sync_stock`] did.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct StockSyncReport {
    /// Instances whose stock was read.
    pub instances: usize,
    /// Skus read, over all instances.
    pub skus: usize,
    /// [`EventKind::StockChanged`] events emitted.
    pub changes: usize,
    /// Instances whose provider failed; the others were synced regardless.
    pub failures: Vec<StockSyncFailure>,
}

/// One cached answer of a provider about one sku.
#[derive(Debug, Clone)]
struct CachedStock {
    /// `None`: the provider did not report the sku. Remembered too, so that a sku the
    /// provider does not know is not asked for again on every call.
    level: Option<StockLevel>,
    fetched_at: DateTime<Utc>,
}

/// Stock levels per instance and sku, with the time they were read.
pub(crate) struct StockCache {
    ttl: Duration,
    levels: Mutex<HashMap<InstanceId, HashMap<Sku, CachedStock>>>,
    /// The quantity last announced per instance and sku by `sync_stock`; kept apart from
    /// `levels` so that a change first seen by an order card's read is still announced by the
    /// next sync. The async lock also keeps two syncs from interleaving.
    announced: tokio::sync::Mutex<HashMap<InstanceId, HashMap<Sku, i64>>>,
}

impl std::fmt::Debug for StockCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StockCache")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl StockCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            levels: Mutex::new(HashMap::new()),
            announced: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    fn levels(&self) -> MutexGuard<'_, HashMap<InstanceId, HashMap<Sku, CachedStock>>> {
        // The map is consistent after every statement, so a panic elsewhere while holding the
        // lock leaves nothing half-written.
        self.levels.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Fresh cached answers for `skus`, and the skus to ask the provider for.
    fn lookup(
        &self,
        instance: &InstanceId,
        skus: &[&Sku],
        now: DateTime<Utc>,
    ) -> (HashMap<Sku, Option<StockLevel>>, Vec<Sku>) {
        let levels = self.levels();
        let cached = levels.get(instance);
        let mut found = HashMap::with_capacity(skus.len());
        let mut missing = Vec::new();
        for sku in skus {
            match cached.and_then(|c| c.get(*sku)) {
                Some(entry) if is_fresh(entry.fetched_at, now, self.ttl) => {
                    found.insert((*sku).clone(), entry.level.clone());
                }
                _ => missing.push((*sku).clone()),
            }
        }
        (found, missing)
    }

    fn store(
        &self,
        instance: &InstanceId,
        answers: impl IntoIterator<Item = (Sku, Option<StockLevel>)>,
        fetched_at: DateTime<Utc>,
    ) {
        let mut levels = self.levels();
        let cached = levels.entry(instance.clone()).or_default();
        for (sku, level) in answers {
            cached.insert(sku, CachedStock { level, fetched_at });
        }
    }

    /// Skus cached for `instance`, whatever their age.
    fn cached_skus(&self, instance: &InstanceId) -> Vec<Sku> {
        self.levels()
            .get(instance)
            .map(|c| c.keys().cloned().collect())
            .unwrap_or_default()
    }
}

/// Whether something read at `fetched_at` may still be served at `now`. A clock that went
/// backwards makes the entry younger, not expired.
pub(super) fn is_fresh(fetched_at: DateTime<Utc>, now: DateTime<Utc>, ttl: Duration) -> bool {
    match (now - fetched_at).to_std() {
        Ok(age) => age < ttl,
        Err(_) => true,
    }
}

/// One level per sku. A provider that reports a sku per warehouse gets its rows summed (the
/// instance ships from the account, not from one warehouse); the sum carries no warehouse.
fn merge_by_sku(rows: Vec<StockLevel>) -> BTreeMap<Sku, StockLevel> {
    let mut merged: BTreeMap<Sku, StockLevel> = BTreeMap::new();
    for row in rows {
        match merged.get_mut(&row.sku) {
            None => {
                merged.insert(row.sku.clone(), row);
            }
            Some(sum) => {
                sum.warehouse = None;
                sum.available = sum.available.saturating_add(row.available);
                sum.reserved = add_reported(sum.reserved, row.reserved);
                sum.in_transit = add_reported(sum.in_transit, row.in_transit);
            }
        }
    }
    merged
}

fn add_reported(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
    }
}

impl Orchestrator {
    /// The stock of `skus` at `instance`, one level per sku the provider reports, in the order
    /// asked (duplicates once). Skus the provider does not report are left out.
    ///
    /// Served from the cache when read less than the stock TTL ago (default 60 s, see
    /// [`OrchestratorBuilder::stock_cache_ttl`](super::OrchestratorBuilder::stock_cache_ttl));
    /// only missing or expired skus are asked for, in requests of at most the provider's
    /// `max_stock_batch`. An unreported sku is cached as unknown for the same time. A
    /// provider reporting one sku per warehouse has its rows summed into one level.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown instance; [`Error::Unsupported`] (without a call)
    /// when its provider has no stock; the provider's error (skus of batches read before the
    /// failure stay cached).
    pub async fn stock(&self, instance: impl AsRef<str>, skus: &[Sku]) -> Result<Vec<StockLevel>> {
        let instance = self.instance_or_err(instance)?;
        let mut seen = HashSet::with_capacity(skus.len());
        let wanted: Vec<&Sku> = skus.iter().filter(|s| seen.insert(*s)).collect();
        let mut found = self.stock_of(instance, &wanted).await?;
        Ok(wanted
            .into_iter()
            .filter_map(|sku| found.remove(sku).flatten())
            .collect())
    }

    /// The stock of every cart line of `order`, one [`LineStock`] per line, for the order
    /// card: at the instance of the order's shipment record when it has one (exported there,
    /// or an export there is under way or failed), otherwise at the instance it routes to.
    ///
    /// # Errors
    ///
    /// [`Error::NoRoute`] for an order that is neither exported nor routable; otherwise as
    /// [`Self::stock`].
    pub async fn stock_for_order(&self, order: &Order) -> Result<OrderStock> {
        let instance_id = match self.inner.store.get(&order.id).await? {
            Some(record) => record.instance,
            None => self.route(order)?.instance,
        };
        let instance = self.instance_or_err(&instance_id)?;
        let skus: Vec<&Sku> = order.lines.iter().map(|l| &l.sku).collect();
        let found = self.stock_of(instance, &skus).await?;
        let lines = order
            .lines
            .iter()
            .enumerate()
            .map(|(i, line)| LineStock {
                line: i,
                sku: line.sku.clone(),
                quantity: line.quantity,
                stock: found.get(&line.sku).cloned().flatten(),
            })
            .collect();
        Ok(OrderStock {
            instance: instance_id,
            lines,
        })
    }

    /// What `role` (the host's role name) may see of `stock` under `instance`'s
    /// [`StockPolicy`](crate::model::StockPolicy).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown instance.
    pub fn render_stock(
        &self,
        instance: impl AsRef<str>,
        role: &str,
        stock: &StockLevel,
    ) -> Result<StockDisplay> {
        let instance = self.instance_or_err(instance)?;
        Ok(instance.settings.stock_policy.render(role, stock))
    }

    /// Reads the whole stock of every instance whose provider has stock (one `stock(&[])`
    /// call each), refreshes the cache, and emits [`EventKind::StockChanged`] for each sku
    /// whose available quantity (and so possibly its level) differs from what the previous
    /// sync announced.
    ///
    /// The first sync of a process announces every sku with `from: None`; a host that only
    /// wants changes skips those. A sku announced before and missing from the provider's
    /// answer is announced as gone to 0 (providers commonly leave out what they no longer
    /// hold). Instances are synced one after another; a failing instance is reported and the
    /// others are synced regardless.
    ///
    /// # Errors
    ///
    /// None yet: provider failures are in [`StockSyncReport::failures`]. The `Result` leaves
    /// room for a store-backed baseline.
    pub async fn sync_stock(&self) -> Result<StockSyncReport> {
        let mut announced = self.inner.stock_cache.announced.lock().await;
        let mut report = StockSyncReport::default();
        for instance in &self.inner.instances {
            if !instance.provider.capabilities().stock {
                continue;
            }
            let rows = match super::observed(
                instance,
                crate::error::Operation::Stock,
                instance.provider.stock(&[]),
            )
            .await
            {
                Ok(rows) => rows,
                Err(error) => {
                    tracing::warn!(instance = %instance.id, %error, "stock sync failed");
                    report.failures.push(StockSyncFailure {
                        instance: instance.id.clone(),
                        error,
                    });
                    continue;
                }
            };
            let now = self.now();
            let current = merge_by_sku(rows);
            report.instances += 1;
            report.skus += current.len();

            // Everything cached that the full listing left out is now known to be unknown.
            let gone: Vec<(Sku, Option<StockLevel>)> = self
                .inner
                .stock_cache
                .cached_skus(&instance.id)
                .into_iter()
                .filter(|sku| !current.contains_key(sku))
                .map(|sku| (sku, None))
                .collect();
            self.inner.stock_cache.store(
                &instance.id,
                gone.into_iter().chain(
                    current
                        .iter()
                        .map(|(sku, level)| (sku.clone(), Some(level.clone()))),
                ),
                now,
            );

            let previous = announced.entry(instance.id.clone()).or_default();
            let mut changes = Vec::new();
            for (sku, level) in &current {
                let before = previous.insert(sku.clone(), level.available);
                if before != Some(level.available) {
                    changes.push((sku.clone(), before, level.available));
                }
            }
            for (sku, before) in previous.iter_mut() {
                if !current.contains_key(sku) && *before != 0 {
                    changes.push((sku.clone(), Some(*before), 0));
                    *before = 0;
                }
            }
            changes.sort_by(|a, b| a.0.cmp(&b.0));
            for (sku, from, to) in changes {
                let level = instance.settings.stock_policy.thresholds.level(to);
                let event = Event {
                    id: EventId::random(),
                    kind: EventKind::StockChanged {
                        sku,
                        from,
                        to,
                        level,
                    },
                    order_id: None,
                    instance: instance.id.clone(),
                    occurred_at: now,
                    automation: Automation::Active,
                };
                crate::telemetry::event_emitted(event.kind.name());
                self.inner.events.emit(event).await;
                report.changes += 1;
            }
        }
        Ok(report)
    }

    /// Cached or fetched answers for `skus` (deduplicated by the caller or not), keyed by sku.
    async fn stock_of(
        &self,
        instance: &Instance,
        skus: &[&Sku],
    ) -> Result<HashMap<Sku, Option<StockLevel>>> {
        let capabilities = instance.provider.capabilities();
        if !capabilities.stock {
            return Err(Error::unsupported(
                Operation::Stock,
                instance.provider.kind(),
            ));
        }
        let (mut found, mut missing) =
            self.inner
                .stock_cache
                .lookup(&instance.id, skus, self.now());
        let mut seen = HashSet::with_capacity(missing.len());
        missing.retain(|s| seen.insert(s.clone()));
        for batch in missing.chunks(capabilities.max_stock_batch.max(1)) {
            let mut answered = merge_by_sku(
                super::observed(
                    instance,
                    crate::error::Operation::Stock,
                    instance.provider.stock(batch),
                )
                .await?,
            );
            // Only what was asked for is kept: a provider answering more is not trusted to
            // have answered it completely.
            let answers: Vec<(Sku, Option<StockLevel>)> = batch
                .iter()
                .map(|sku| (sku.clone(), answered.remove(sku)))
                .collect();
            self.inner
                .stock_cache
                .store(&instance.id, answers.iter().cloned(), self.now());
            found.extend(answers);
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warehouse_rows_are_summed_per_sku() {
        let mut a1 = StockLevel::new("A", 3);
        a1.warehouse = Some("W1".into());
        a1.reserved = Some(1);
        let mut a2 = StockLevel::new("A", 4);
        a2.warehouse = Some("W2".into());
        let merged = merge_by_sku(vec![a1, StockLevel::new("B", 0), a2]);
        let a = &merged[&Sku::new("A")];
        assert_eq!(a.available, 7);
        assert_eq!(a.reserved, Some(1));
        assert_eq!(a.in_transit, None);
        assert_eq!(a.warehouse, None);
        assert_eq!(merged[&Sku::new("B")].available, 0);
    }

    #[test]
    fn freshness_is_strictly_younger_than_the_ttl() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let ttl = Duration::from_secs(60);
        assert!(is_fresh(t0, t0, ttl));
        assert!(is_fresh(t0, t0 + chrono::Duration::seconds(59), ttl));
        assert!(!is_fresh(t0, t0 + chrono::Duration::seconds(60), ttl));
        // A clock stepping back does not expire anything.
        assert!(is_fresh(t0, t0 - chrono::Duration::seconds(5), ttl));
    }
}
