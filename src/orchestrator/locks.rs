//! Per-order locks inside one process: one tokio mutex per order currently being worked on,
//! removed when nobody holds or waits for it, so memory follows the orders in flight and two
//! different orders never wait for each other (a fixed set of striped locks made unrelated
//! orders queue behind each other's provider calls).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

use crate::model::OrderId;

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
