//! [`MemoryStore`]: the [`Store`] contract in one process's memory, compactly — for tests,
//! examples and single-process hosts.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::packed::{History, Interner, Slot};
use super::{
    DuePosition, DueQuery, Effects, ExceptionCursor, ExceptionFilter, ExportState, HistoryWrite,
    Lease, ShipmentRecord, Store, TrackingWrite, TrackingWriteOutcome,
};
use crate::error::{Error, Result};
use crate::model::{
    DeliveryStatus, Event, EventId, InstanceId, OrderException, OrderId, Text, Waybill,
};

/// One record as kept: its fields, with the statuses packed aside ([`History`]).
#[derive(Debug)]
struct Stored {
    /// The record, its `history`, `current_status` and `last_reported` left empty.
    record: ShipmentRecord,
    history: History,
    current: Slot,
    last_reported: Slot,
    /// The tracking claim on it, if any (its owner's name shared store-wide).
    claim: Option<(Text, DateTime<Utc>)>,
}

impl Stored {
    /// Whether `owner` may claim the record at `now`.
    fn claimable_by(&self, owner: &str, now: DateTime<Utc>) -> bool {
        self.claim
            .as_ref()
            .is_none_or(|(held, until)| held.as_str() == owner || *until <= now)
    }

    fn pack(mut record: ShipmentRecord, texts: &mut Interner, empty: &Empty) -> Self {
        let history = History::pack(&record.history, texts);
        if *record.waybill == *empty.waybill {
            record.waybill = Arc::clone(&empty.waybill);
        }
        let current = Slot::of(record.current_status.as_ref(), &history);
        let last_reported = Slot::of(record.last_reported.as_ref(), &history);
        record.history = Arc::clone(&empty.history);
        record.current_status = None;
        record.last_reported = None;
        Self {
            record,
            history,
            current,
            last_reported,
            claim: None,
        }
    }

    fn unpack(&self) -> ShipmentRecord {
        let mut record = self.record.clone();
        record.history = self.history.unpack();
        record.current_status = self.current.status(&self.history, None);
        record.last_reported = self
            .last_reported
            .status(&self.history, Some((&self.current, &record.current_status)));
        record
    }

    /// [`ShipmentRecord::is_active`] on the packed form.
    fn is_active(&self) -> bool {
        let r = &self.record;
        r.shipment().is_some()
            && !r.tracking_stopped
            && !self
                .current
                .code(&self.history)
                .is_some_and(|code| code.is_final_for(&r.order.payment))
    }

    /// Where the record sits in its instance's due index, if tracking follows it.
    fn due_position(&self) -> Option<DuePosition> {
        self.is_active().then(|| DuePosition::of(&self.record))
    }
}

#[derive(Debug, Default)]
struct MemoryState {
    /// Boxed: tree nodes hold eleven entries, and inline records made every node a large
    /// allocation, half of it empty.
    records: BTreeMap<OrderId, Box<Stored>>,
    /// Active records of each instance by due position: tracking reads only what is due.
    due: HashMap<InstanceId, BTreeSet<DuePosition>>,
    order_leases: HashMap<OrderId, Lease>,
    waybills: HashMap<OrderId, Waybill>,
    exceptions: BTreeMap<(OrderId, u32), OrderException>,
    /// Undelivered events by write sequence, and where each id sits.
    outbox: BTreeMap<u64, Event>,
    outbox_ids: HashMap<EventId, u64>,
    next_event: u64,
    texts: Interner,
    empty: Empty,
}

/// The one empty history and waybill records are stored with.
#[derive(Debug, Default)]
struct Empty {
    history: Arc<[DeliveryStatus]>,
    waybill: Arc<Waybill>,
}

impl MemoryState {
    /// Stores `record` (new or replacing), keeping the due index in step.
    fn put(&mut self, record: ShipmentRecord) {
        let mut stored = Box::new(Stored::pack(record, &mut self.texts, &self.empty));
        let order_id = stored.record.order_id.clone();
        if let Some(old) = self.records.get_mut(&order_id) {
            // A whole-record write keeps the record's tracking claim.
            stored.claim = old.claim.take();
        }
        let (old_instance, old_position) = self
            .records
            .insert(order_id.clone(), stored)
            .map(|old| (Some(old.record.instance.clone()), old.due_position()))
            .unwrap_or_default();
        self.reindex_order(&order_id, old_instance, old_position);
    }

    /// Moves the due index entry of `order_id` from `old_position` (under `old_instance`)
    /// to where the stored record now belongs, if anywhere.
    fn reindex_order(
        &mut self,
        order_id: &OrderId,
        old_instance: Option<InstanceId>,
        old_position: Option<DuePosition>,
    ) {
        if let (Some(instance), Some(position)) = (old_instance, old_position)
            && let Some(index) = self.due.get_mut(&instance)
        {
            index.remove(&position);
        }
        if let Some(stored) = self.records.get(order_id)
            && let Some(position) = stored.due_position()
        {
            self.due
                .entry(stored.record.instance.clone())
                .or_default()
                .insert(position);
        }
    }

    /// Writes the effects of a change.
    fn record_effects(&mut self, effects: Effects) {
        self.enqueue(effects.events);
        if let Some(exception) = effects.exception {
            self.exceptions
                .insert((exception.order_id.clone(), exception.seq), exception);
        }
    }

    fn enqueue(&mut self, events: Vec<Event>) {
        for event in events {
            let seq = self.next_event;
            self.next_event += 1;
            if let Some(old) = self.outbox_ids.insert(event.id.clone(), seq) {
                // The same id written twice is one event.
                self.outbox.remove(&old);
            }
            self.outbox.insert(seq, event);
        }
    }

    /// A page of records passing `keep`.
    fn records(
        &self,
        after: Option<&OrderId>,
        limit: usize,
        keep: impl Fn(&ShipmentRecord) -> bool,
    ) -> Vec<ShipmentRecord> {
        let range = match after {
            Some(after) => self
                .records
                .range::<OrderId, _>((Bound::Excluded(after), Bound::Unbounded)),
            None => self.records.range::<OrderId, _>(..),
        };
        range
            .filter(|(_, s)| keep(&s.record))
            .take(limit)
            .map(|(_, s)| s.unpack())
            .collect()
    }

    fn apply(&mut self, write: TrackingWrite) -> TrackingWriteOutcome {
        let Some(stored) = self.records.get_mut(&write.order_id) else {
            return TrackingWriteOutcome::NotFound;
        };
        if stored.record.version != write.version {
            return TrackingWriteOutcome::Conflict;
        }
        let old_position = stored.due_position();
        match &write.history {
            HistoryWrite::Keep => {}
            HistoryWrite::Append(statuses) => {
                let mut history = stored.history.unpack().to_vec();
                history.extend_from_slice(statuses);
                stored.history = History::pack(&history, &mut self.texts);
            }
            HistoryWrite::Replace(history) => {
                stored.history = History::pack(history, &mut self.texts);
            }
        }
        stored.current = Slot::of(write.current_status.as_ref(), &stored.history);
        stored.last_reported = Slot::of(write.last_reported.as_ref(), &stored.history);
        let record = &mut stored.record;
        record.next_poll_at = write.next_poll_at;
        record.tracking_stopped = write.tracking_stopped;
        record.updated_at = write.updated_at;
        record.version += 1;
        let version = record.version;
        let instance = record.instance.clone();
        stored.claim = None;
        self.reindex_order(&write.order_id, Some(instance), old_position);
        self.enqueue(write.events);
        TrackingWriteOutcome::Written { version }
    }
}

/// A [`Store`] in memory, for tests, examples and single-process hosts.
///
/// Compact: status texts are kept once for the whole store and histories packed (about 1.9
/// KB per tracked shipment with a ten-status history, the order included; README
/// "Performance"). Tracking reads only due shipments, from an index by next poll time.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<MemoryState>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of shipment records.
    pub fn len(&self) -> usize {
        self.lock().records.len()
    }

    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of undelivered events in the outbox.
    pub fn pending_event_count(&self) -> usize {
        self.lock().outbox.len()
    }

    fn lock(&self) -> MutexGuard<'_, MemoryState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn get(&self, order_id: &OrderId) -> Result<Option<ShipmentRecord>> {
        Ok(self.lock().records.get(order_id).map(|s| s.unpack()))
    }

    async fn insert(&self, record: ShipmentRecord, effects: Effects) -> Result<bool> {
        let mut state = self.lock();
        if state.records.contains_key(&record.order_id) {
            return Ok(false);
        }
        state.put(record);
        state.record_effects(effects);
        Ok(true)
    }

    async fn update(&self, mut record: ShipmentRecord, effects: Effects) -> Result<ShipmentRecord> {
        let mut state = self.lock();
        let stored = state
            .records
            .get(&record.order_id)
            .ok_or_else(|| Error::NotFound {
                what: format!("shipment record of order {}", record.order_id),
            })?;
        if stored.record.version != record.version {
            return Err(Error::Conflict {
                message: format!(
                    "shipment record of order {} changed (version {} is now {})",
                    record.order_id, record.version, stored.record.version
                ),
            });
        }
        record.version += 1;
        state.put(record.clone());
        state.record_effects(effects);
        Ok(record)
    }

    async fn list_failed(
        &self,
        after: Option<&OrderId>,
        limit: usize,
    ) -> Result<Vec<ShipmentRecord>> {
        Ok(self.lock().records(after, limit, |r| {
            matches!(r.export, ExportState::Failed { .. })
        }))
    }

    async fn list_exporting(
        &self,
        after: Option<&OrderId>,
        limit: usize,
    ) -> Result<Vec<ShipmentRecord>> {
        Ok(self.lock().records(after, limit, |r| {
            matches!(r.export, ExportState::Exporting { .. })
        }))
    }

    async fn list_pending_updates(
        &self,
        after: Option<&OrderId>,
        limit: usize,
    ) -> Result<Vec<ShipmentRecord>> {
        Ok(self
            .lock()
            .records(after, limit, |r| r.pending_update.is_some()))
    }

    async fn claim_due(&self, query: &DueQuery) -> Result<Vec<ShipmentRecord>> {
        let mut guard = self.lock();
        let state = &mut *guard;
        let Some(index) = state.due.get(&query.instance) else {
            return Ok(Vec::new());
        };
        let range = match &query.after {
            Some(after) => index.range((Bound::Excluded(after), Bound::Unbounded)),
            None => index.range::<DuePosition, _>(..),
        };
        let owner = state.texts.intern_str(&query.lease.owner);
        let mut claimed = Vec::new();
        for position in range {
            if claimed.len() >= query.limit || position.due.is_some_and(|due| due > query.now) {
                break;
            }
            let Some(stored) = state.records.get_mut(&position.order_id) else {
                continue;
            };
            if stored.claimable_by(&owner, query.now) {
                stored.claim = Some((owner.clone(), query.lease.until));
                claimed.push(stored.unpack());
            }
        }
        Ok(claimed)
    }

    async fn apply_tracking(
        &self,
        writes: Vec<TrackingWrite>,
    ) -> Result<Vec<TrackingWriteOutcome>> {
        let mut state = self.lock();
        Ok(writes.into_iter().map(|w| state.apply(w)).collect())
    }

    async fn release_claims(&self, owner: &str, order_ids: &[OrderId]) -> Result<()> {
        let mut state = self.lock();
        for order_id in order_ids {
            if let Some(stored) = state.records.get_mut(order_id)
                && stored
                    .claim
                    .as_ref()
                    .is_some_and(|(held, _)| held.as_str() == owner)
            {
                stored.claim = None;
            }
        }
        Ok(())
    }

    async fn acquire_order_lease(
        &self,
        order_id: &OrderId,
        lease: &Lease,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut state = self.lock();
        if state
            .order_leases
            .get(order_id)
            .is_some_and(|held| !held.yields_to(&lease.owner, now))
        {
            return Ok(false);
        }
        state.order_leases.insert(order_id.clone(), lease.clone());
        Ok(true)
    }

    async fn release_order_lease(&self, order_id: &OrderId, owner: &str) -> Result<()> {
        let mut state = self.lock();
        if state
            .order_leases
            .get(order_id)
            .is_some_and(|l| l.owner == owner)
        {
            state.order_leases.remove(order_id);
        }
        Ok(())
    }

    async fn save_waybill(&self, order_id: &OrderId, waybill: Waybill) -> Result<()> {
        self.lock().waybills.insert(order_id.clone(), waybill);
        Ok(())
    }

    async fn waybill(&self, order_id: &OrderId) -> Result<Option<Waybill>> {
        Ok(self.lock().waybills.get(order_id).cloned())
    }

    async fn exception(&self, order_id: &OrderId) -> Result<Option<OrderException>> {
        Ok(exceptions_of(&self.lock().exceptions, order_id)
            .next_back()
            .cloned())
    }

    async fn exception_history(&self, order_id: &OrderId) -> Result<Vec<OrderException>> {
        Ok(exceptions_of(&self.lock().exceptions, order_id)
            .cloned()
            .collect())
    }

    async fn list_exceptions(
        &self,
        filter: &ExceptionFilter,
        after: Option<&ExceptionCursor>,
        limit: usize,
    ) -> Result<Vec<OrderException>> {
        let state = self.lock();
        let range = match after {
            Some(after) => state.exceptions.range((
                Bound::Excluded((after.order_id.clone(), after.seq)),
                Bound::Unbounded,
            )),
            None => state.exceptions.range(..),
        };
        Ok(range
            .map(|(_, e)| e)
            .filter(|e| filter.matches(e))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn pending_events(&self, before: DateTime<Utc>, limit: usize) -> Result<Vec<Event>> {
        Ok(self
            .lock()
            .outbox
            .values()
            .filter(|e| e.occurred_at < before)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn mark_delivered(&self, ids: &[EventId]) -> Result<()> {
        let mut state = self.lock();
        for id in ids {
            if let Some(seq) = state.outbox_ids.remove(id) {
                state.outbox.remove(&seq);
            }
        }
        Ok(())
    }
}

/// The exceptions of one order, oldest first.
fn exceptions_of<'a>(
    exceptions: &'a BTreeMap<(OrderId, u32), OrderException>,
    order_id: &OrderId,
) -> impl DoubleEndedIterator<Item = &'a OrderException> {
    exceptions
        .range((order_id.clone(), 0)..=(order_id.clone(), u32::MAX))
        .map(|(_, e)| e)
}
