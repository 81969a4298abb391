//! De-duplication of webhook deliveries by `webhook-id`: the [`Deduplicator`] trait a host can
//! back with its database, and the bounded in-memory [`MemoryDeduplicator`].
//!
//! Providers deliver at least once and retry for about a day (ShipBob: 8 attempts), so the
//! same message arrives again whenever an answer was slow or lost. A host asks
//! [`Deduplicator::is_known`] before decoding and calls [`Deduplicator::remember`] once the
//! updates are stored — not before, so a delivery whose processing failed is processed again
//! on the provider's retry. Two copies racing through at once are harmless: ingesting tracking
//! updates is idempotent and independent of their order.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::error::Result;

/// Message ids a [`MemoryDeduplicator`] keeps by default.
pub const DEFAULT_DEDUP_CAPACITY: usize = 100_000;
/// How long a [`MemoryDeduplicator`] keeps an id by default: 7 days, longer than any
/// provider's retry window (protocol doc §7.3, \[assumed]).
pub const DEFAULT_DEDUP_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Remembers which webhook messages were processed.
///
/// With several replicas behind one webhook URL the host backs this by a store all replicas
/// share (a table keyed by message id, with a TTL): a [`MemoryDeduplicator`] only knows what
/// its own process saw, so a retry landing on another replica is processed again — harmless,
/// only wasted work.
#[async_trait]
pub trait Deduplicator: Send + Sync + 'static {
    /// Whether message `id` was processed already.
    async fn is_known(&self, id: &str) -> Result<bool>;

    /// Records message `id` as processed.
    async fn remember(&self, id: &str) -> Result<()>;
}

#[async_trait]
impl<D: Deduplicator + ?Sized> Deduplicator for Arc<D> {
    async fn is_known(&self, id: &str) -> Result<bool> {
        (**self).is_known(id).await
    }

    async fn remember(&self, id: &str) -> Result<()> {
        (**self).remember(id).await
    }
}

/// The ids of one process, oldest first, bounded in number and age.
#[derive(Debug, Default)]
struct Seen {
    at: HashMap<Arc<str>, Instant>,
    order: VecDeque<Arc<str>>,
}

/// An in-memory [`Deduplicator`]: at most `capacity` ids, each forgotten after `retention`
/// (the oldest first when full). For one process; see the trait for several replicas.
#[derive(Debug)]
pub struct MemoryDeduplicator {
    seen: Mutex<Seen>,
    capacity: usize,
    retention: Duration,
}

impl Default for MemoryDeduplicator {
    fn default() -> Self {
        Self::new(DEFAULT_DEDUP_CAPACITY, DEFAULT_DEDUP_RETENTION)
    }
}

impl MemoryDeduplicator {
    /// Keeps at most `capacity` ids (at least 1), each for `retention`.
    pub fn new(capacity: usize, retention: Duration) -> Self {
        Self {
            seen: Mutex::default(),
            capacity: capacity.max(1),
            retention,
        }
    }

    /// How many ids are remembered now.
    pub fn len(&self) -> usize {
        self.lock().at.len()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn expire(&self, seen: &mut Seen, now: Instant) {
        while let Some(oldest) = seen.order.front() {
            let expired = seen
                .at
                .get(oldest)
                .is_none_or(|at| now.saturating_duration_since(*at) >= self.retention);
            if !expired && seen.order.len() <= self.capacity {
                break;
            }
            if let Some(gone) = seen.order.pop_front() {
                seen.at.remove(&gone);
            }
        }
    }
}

#[async_trait]
impl Deduplicator for MemoryDeduplicator {
    async fn is_known(&self, id: &str) -> Result<bool> {
        let mut seen = self.lock();
        self.expire(&mut seen, Instant::now());
        Ok(seen.at.contains_key(id))
    }

    async fn remember(&self, id: &str) -> Result<()> {
        let now = Instant::now();
        let mut seen = self.lock();
        if !seen.at.contains_key(id) {
            let key: Arc<str> = Arc::from(id);
            seen.at.insert(Arc::clone(&key), now);
            seen.order.push_back(key);
        }
        self.expire(&mut seen, now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn remembers_until_full_then_forgets_the_oldest() {
        let dedup = MemoryDeduplicator::new(2, DEFAULT_DEDUP_RETENTION);
        assert!(!dedup.is_known("a").await.unwrap());
        dedup.remember("a").await.unwrap();
        dedup.remember("a").await.unwrap();
        dedup.remember("b").await.unwrap();
        assert!(dedup.is_known("a").await.unwrap());
        dedup.remember("c").await.unwrap();
        assert!(!dedup.is_known("a").await.unwrap());
        assert!(dedup.is_known("b").await.unwrap() && dedup.is_known("c").await.unwrap());
        assert_eq!(dedup.len(), 2);
    }

    #[tokio::test]
    async fn forgets_after_the_retention() {
        let dedup = MemoryDeduplicator::new(10, Duration::ZERO);
        dedup.remember("a").await.unwrap();
        assert!(!dedup.is_known("a").await.unwrap());
        assert!(dedup.is_empty());
    }
}
