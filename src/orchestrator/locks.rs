//! Per-order locks inside one process: one tokio mutex per order currently being worked on,
//! removed when nobody holds or waits for it, so memory follows the orders in flight and two
//! different orders never wait for each other (a fixed set of striped locks made unrelated
//! orders queue behind each other's provider calls).
//!
//! Across processes, edits of one order are serialized by the order's edit lease in the store
//! ([`Orchestrator::with_edit_lease`]): taken before the provider is called, released after,
//! expiring on its own if the holder dies. No database lock is held across an HTTP call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

use std::sync::atomic::{AtomicU64, Ordering};

use super::{Orchestrator, claim_until};
use crate::error::{Error, Result};
use crate::model::OrderId;
use crate::store::{Lease, Store};

type Entry = Arc<tokio::sync::Mutex<()>>;

/// The lock table.
#[derive(Debug, Default)]
pub(super) struct OrderLocks {
    held: Mutex<HashMap<OrderId, Entry>>,
}

/// Holds one order's lock; releases it (and forgets it when unused) on drop.
pub(super) struct OrderGuard<'a> {
    locks: &'a OrderLocks,
    order_id: OrderId,
    guard: Option<OwnedMutexGuard<()>>,
}

impl OrderLocks {
    /// Waits until no one else in this process works on `order_id`.
    pub(super) async fn lock(&self, order_id: &OrderId) -> OrderGuard<'_> {
        let entry = self.table().entry(order_id.clone()).or_default().clone();
        let guard = entry.lock_owned().await;
        OrderGuard {
            locks: self,
            order_id: order_id.clone(),
            guard: Some(guard),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<OrderId, Entry>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.table().len()
    }
}

impl Drop for OrderGuard<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut table = self.locks.table();
        // Only the table's own reference left: nobody holds or waits for this order's lock.
        // Waiters clone their reference under the table lock, so this check cannot race them.
        if table
            .get(&self.order_id)
            .is_some_and(|entry| Arc::strong_count(entry) == 1)
        {
            table.remove(&self.order_id);
        }
    }
}

impl Orchestrator {
    /// Runs `work` holding `order_id`'s edit lease in the store: waits for another holder's
    /// lease up to the configured wait, then gives up with [`Error::Busy`] (nothing was
    /// done). The lease is released after `work`, whatever its result, and also when `work`
    /// is dropped midway; if the process dies, it expires after its time to live.
    ///
    /// Each call holds a lease of its own (the orchestrator's owner name and a call number),
    /// so two calls in one process serialize like calls on two replicas. Take it before the
    /// order's in-process lock, never while holding it.
    pub(super) async fn with_edit_lease<T>(
        &self,
        order_id: &OrderId,
        work: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let holder = self.acquire_edit_lease(order_id).await?;
        let result = work.await;
        holder.release().await;
        result
    }

    async fn acquire_edit_lease(&self, order_id: &OrderId) -> Result<LeaseHolder> {
        static CALLS: AtomicU64 = AtomicU64::new(0);
        let owner = format!(
            "{}#{}",
            self.inner.owner,
            CALLS.fetch_add(1, Ordering::Relaxed)
        );
        let settings = self.inner.edit_lease;
        let started = std::time::Instant::now();
        let mut pause = std::time::Duration::from_millis(2);
        loop {
            let now = self.now();
            let lease = Lease::new(owner.clone(), claim_until(now, settings.ttl));
            if self
                .inner
                .store
                .acquire_order_lease(order_id, &lease, now)
                .await?
            {
                return Ok(LeaseHolder {
                    store: Arc::clone(&self.inner.store),
                    order_id: order_id.clone(),
                    owner: Some(owner),
                });
            }
            let waited = started.elapsed();
            if waited >= settings.wait {
                return Err(Error::Busy {
                    what: format!("order {order_id}"),
                });
            }
            tokio::time::sleep(pause.min(settings.wait - waited)).await;
            pause = (pause * 2).min(std::time::Duration::from_millis(100));
        }
    }
}

/// Holds an order's edit lease; releases it when told, or (when dropped without) from a task
/// of its own.
struct LeaseHolder {
    store: Arc<dyn Store>,
    order_id: OrderId,
    owner: Option<String>,
}

impl LeaseHolder {
    async fn release(mut self) {
        if let Some(owner) = self.owner.take() {
            release(&*self.store, &self.order_id, &owner).await;
        }
    }
}

impl Drop for LeaseHolder {
    fn drop(&mut self) {
        let Some(owner) = self.owner.take() else {
            return;
        };
        // Dropped midway (the caller's future was cancelled): release without waiting.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let store = Arc::clone(&self.store);
            let order_id = self.order_id.clone();
            runtime.spawn(async move { release(&*store, &order_id, &owner).await });
        }
    }
}

async fn release(store: &dyn Store, order_id: &OrderId, owner: &str) {
    if let Err(error) = store.release_order_lease(order_id, owner).await {
        tracing::warn!(%error, %order_id, "edit lease not released; it expires on its own");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn one_order_at_a_time_others_freely_and_nothing_left_behind() {
        let locks = Arc::new(OrderLocks::default());
        let a = OrderId::new("A");
        let first = locks.lock(&a).await;
        // Another order is not held up.
        let other = tokio::time::timeout(Duration::from_millis(1), locks.lock(&OrderId::new("B")))
            .await
            .expect("B is free");
        drop(other);
        // The same order waits.
        let waiting = {
            let (locks, a) = (locks.clone(), a.clone());
            tokio::spawn(async move {
                let _second = locks.lock(&a).await;
            })
        };
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(!waiting.is_finished());
        drop(first);
        waiting.await.expect("second holder ran");
        assert_eq!(locks.len(), 0, "unused locks are forgotten");
    }
}
