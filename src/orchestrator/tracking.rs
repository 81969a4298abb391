//! Tracking: polling providers for status changes ([`Orchestrator::sync_tracking`]) or taking
//! them pushed by the host ([`Orchestrator::ingest_tracking`]), merging them into the record
//! ([`merge_statuses`]), and emitting [`EventKind::DeliveryStatusChanged`] on every real change
//! — and only then.
//!
//! Polling is adaptive ([`PollPolicy`]): each shipment gets its next poll time from its current
//! status, final statuses stop tracking, and so does age. Due shipments are grouped by instance
//! and sent in batches of the provider's `max_track_batch`, at most
//! [`tracking_concurrency`](super::OrchestratorBuilder::tracking_concurrency) requests in flight
//! per instance (the provider's own rate limit applies on top); instances are polled side by
//! side, and one failing instance does not stop the others.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::{JoinError, JoinSet};

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use super::{
    EventKind, ExportState, Instance, Orchestrator, PAGE, ShipmentRecord, claim_until, numbering,
};
use crate::error::{ErrorKind, Failure, FieldError, Result};
use crate::model::{
    Address, DeliveryStatus, InstanceId, OrderId, Payment, PickupPoint, ShipmentRef, StatusCode,
    StatusTable, TrackingUpdate, is_reportable_change, merge_statuses, merge_statuses_owned,
};
use crate::store::{
    DuePosition, DueQuery, HistoryWrite, Lease, TrackingWrite, TrackingWriteOutcome,
};

/// When each shipment is polled next, by its current status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct PollPolicy {
    /// Interval by current status; statuses not listed use `default_interval`.
    pub intervals: BTreeMap<StatusCode, Duration>,
    /// Interval for statuses not in `intervals` (default 1 h).
    pub default_interval: Duration,
    /// Interval for a cash-on-delivery order that is `Delivered` but not yet `Paid`
    /// (default 6 h).
    pub cod_delivered_interval: Duration,
    /// Tracking stops this long after export (default 150 days), with an event.
    pub max_tracking_age: Duration,
}

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;

impl Default for PollPolicy {
    /// 30 min while `Arrived` / `OnDelivery` / `Pending`, 2 h while `InTransit`, 1 h otherwise,
    /// 6 h for COD `Delivered` until `Paid`, 150 days at most.
    fn default() -> Self {
        let minutes = |m| Duration::from_secs(m * MINUTE);
        Self {
            intervals: [
                (StatusCode::Arrived, minutes(30)),
                (StatusCode::OnDelivery, minutes(30)),
                (StatusCode::Pending, minutes(30)),
                (StatusCode::InTransit, Duration::from_secs(2 * HOUR)),
            ]
            .into(),
            default_interval: Duration::from_secs(HOUR),
            cod_delivered_interval: Duration::from_secs(6 * HOUR),
            max_tracking_age: Duration::from_secs(150 * 24 * HOUR),
        }
    }
}

impl PollPolicy {
    /// Sets the interval for one status.
    pub fn with_interval(mut self, status: StatusCode, interval: Duration) -> Self {
        self.intervals.insert(status, interval);
        self
    }

    /// Sets the interval for statuses without their own.
    pub fn with_default_interval(mut self, interval: Duration) -> Self {
        self.default_interval = interval;
        self
    }

    /// Sets the maximum tracking age.
    pub fn with_max_tracking_age(mut self, age: Duration) -> Self {
        self.max_tracking_age = age;
        self
    }

    /// Checks the policy: every interval positive and none of the durations beyond 100 years
    /// (a date that far ahead is beyond what dates can hold).
    ///
    /// # Errors
    ///
    /// [`Error::Validation`](crate::Error::Validation) naming every bad duration.
    pub fn validate(&self) -> Result<()> {
        const LONGEST: Duration = Duration::from_secs(100 * 365 * 24 * HOUR);
        let mut errors = Vec::new();
        let mut check = |path: String, d: Duration, zero_ok: bool| {
            if d.is_zero() && !zero_ok {
                errors.push(FieldError::new(path, "must be positive"));
            } else if d > LONGEST {
                errors.push(FieldError::new(path, "must be at most 100 years"));
            }
        };
        for (code, interval) in &self.intervals {
            check(format!("intervals.{code:?}"), *interval, false);
        }
        check("default_interval".into(), self.default_interval, false);
        check(
            "cod_delivered_interval".into(),
            self.cod_delivered_interval,
            false,
        );
        check("max_tracking_age".into(), self.max_tracking_age, true);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(crate::Error::validation("poll policy", errors))
        }
    }

    /// When a shipment in `current` paid with `payment` is polled next after `now`; `None`
    /// when tracking stops (a final status), or when that time is beyond what a date can hold.
    pub fn next_poll_at(
        &self,
        current: Option<&DeliveryStatus>,
        payment: &Payment,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let interval = self.next_interval(current, payment)?;
        now.checked_add_signed(chrono::Duration::from_std(interval).ok()?)
    }

    /// How long until the next poll of a shipment in `current` paid with `payment`; `None`
    /// when the status is final and tracking stops.
    pub fn next_interval(
        &self,
        current: Option<&DeliveryStatus>,
        payment: &Payment,
    ) -> Option<Duration> {
        let Some(status) = current else {
            return Some(self.default_interval);
        };
        if status.code.is_final_for(payment) {
            return None;
        }
        if status.code == StatusCode::Delivered {
            return Some(self.cod_delivered_interval);
        }
        Some(
            self.intervals
                .get(&status.code)
                .copied()
                .unwrap_or(self.default_interval),
        )
    }
}

/// What one [`Orchestrator::sync_tracking`] (or ingest) did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SyncReport {
    /// Shipments asked about (or updates ingested).
    pub polled: usize,
    /// Shipments whose current status really changed (one event each).
    pub changed: usize,
    /// Shipments in batches that failed; they are polled again next time.
    pub failed: usize,
    /// Shipments whose tracking stopped (final status or maximum age).
    pub stopped: usize,
    /// Tracking requests sent.
    pub requests: usize,
    /// One entry per failed batch (no order id) or shipment (with its order id).
    pub errors: Vec<TrackingError>,
}

/// A tracking failure in a [`SyncReport`]: a whole batch of an instance, or one shipment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TrackingError {
    /// The instance polled.
    pub instance: InstanceId,
    /// The order whose shipment failed; `None` when the whole request failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<OrderId>,
    /// What went wrong.
    pub failure: Failure,
}

impl std::fmt::Display for TrackingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.order_id {
            Some(order_id) => write!(f, "{} order {order_id}: {}", self.instance, self.failure),
            None => write!(f, "{}: {}", self.instance, self.failure),
        }
    }
}

impl SyncReport {
    fn absorb(&mut self, other: SyncReport) {
        self.polled += other.polled;
        self.changed += other.changed;
        self.failed += other.failed;
        self.stopped += other.stopped;
        self.requests += other.requests;
        self.errors.extend(other.errors);
    }
}

/// Where the listing of one instance's due shipments stands.
#[derive(Default)]
struct Listing {
    /// The last position claimed.
    after: Option<DuePosition>,
    /// Due shipments not yet in a batch (taken from the front: a `Vec` moved the rest of
    /// the page for every batch).
    due: VecDeque<ShipmentRecord>,
    /// Shipments past the maximum tracking age, to stop.
    too_old: Vec<ShipmentRecord>,
    /// No more pages (or listing failed).
    done: bool,
}

/// One unit of tracking work of an instance.
enum Work {
    Batch(Vec<ShipmentRecord>),
    Stop(Box<ShipmentRecord>),
    ListingFailed(crate::Error),
}

/// A batch with the provider's answer, or a shipment to stop, as the fetching stream yields
/// them.
enum Fetched {
    Batch(Vec<ShipmentRecord>, Result<Vec<TrackingUpdate>>),
    Stop(Box<ShipmentRecord>),
}

/// Reports of joined tasks added up; the first error is kept and returned once every task
/// has finished, and a task's panic goes on in the caller.
#[derive(Default)]
struct Joined {
    report: SyncReport,
    first_error: Option<crate::Error>,
}

impl Joined {
    fn absorb(&mut self, result: std::result::Result<Result<SyncReport>, JoinError>) {
        match result {
            Ok(Ok(report)) => self.report.absorb(report),
            Ok(Err(error)) => {
                self.first_error.get_or_insert(error);
            }
            Err(error) => match error.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                // Cancelled: only when the runtime shuts down under us.
                Err(error) => {
                    self.first_error
                        .get_or_insert(crate::Error::transport("tracking task", error));
                }
            },
        }
    }

    fn finish(self) -> Result<SyncReport> {
        match self.first_error {
            Some(error) => Err(error),
            None => Ok(self.report),
        }
    }
}

/// A provider's statuses merged into a history, once per answer.
struct Merged {
    /// The history they were merged into.
    base: Arc<[DeliveryStatus]>,
    /// The result (`base` itself when the answer held nothing new).
    history: Arc<[DeliveryStatus]>,
    /// The current status of the result.
    current: Option<Arc<DeliveryStatus>>,
}

/// What merging an answer into a record did.
#[derive(Default)]
struct Tracked {
    /// The change to report, if the current status really changed.
    event: Option<EventKind>,
    /// Tracking stops: the status is final.
    stopped: bool,
}

/// A tracking result ready to write, with what is needed to merge it again after a conflict.
struct Prepared {
    write: TrackingWrite,
    merged: Merged,
    polled: Option<ShipmentRef>,
    stopped: bool,
}

/// Each update of a provider's answer beside the record it is about: the first update of a
/// shipment counts, a shipment not asked about is ignored. Providers mostly answer in the
/// order asked, so that is tried first; otherwise each update goes to its record by hash (a
/// search per record was quadratic in the batch).
fn pair(batch: &[ShipmentRecord], updates: Vec<TrackingUpdate>) -> Vec<Option<TrackingUpdate>> {
    let in_order = updates.len() == batch.len()
        && batch
            .iter()
            .zip(&updates)
            .all(|(r, u)| r.shipment() == Some(u.shipment()));
    if in_order {
        return updates.into_iter().map(Some).collect();
    }
    let mut paired: Vec<Option<TrackingUpdate>> = Vec::new();
    paired.resize_with(batch.len(), || None);
    let index: HashMap<&ShipmentRef, usize> = batch
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.shipment().map(|s| (s, i)))
        .collect();
    for update in updates {
        if let Some(slot) = index.get(update.shipment()).map(|&i| &mut paired[i]) {
            slot.get_or_insert(update);
        }
    }
    paired
}

/// How the history of a record moved from `before` to `after`: kept, grown at the end (the
/// usual news), or replaced.
fn history_write(before: &Arc<[DeliveryStatus]>, after: &Arc<[DeliveryStatus]>) -> HistoryWrite {
    if Arc::ptr_eq(before, after) {
        HistoryWrite::Keep
    } else if after.len() >= before.len() && after[..before.len()] == before[..] {
        HistoryWrite::Append(after[before.len()..].to_vec())
    } else {
        HistoryWrite::Replace(Arc::clone(after))
    }
}

impl Orchestrator {
    /// Polls every due shipment (exported, not final, `next_poll_at <= now`) of every instance
    /// and applies what the providers report: batches of the provider's `max_track_batch`, at
    /// most `tracking_concurrency` requests in flight per instance, instances side by side.
    ///
    /// "Now" is the orchestrator's clock ([`OrchestratorBuilder::clock`](super::OrchestratorBuilder::clock),
    /// the system clock by default) — the one clock of every record and event: which
    /// shipments are due, their next poll, and the time stamped on each event all come
    /// from it. Tests move a [`TestClock`](crate::testkit::TestClock) instead of passing a time.
    ///
    /// # Errors
    ///
    /// Only store errors while listing; provider failures are counted in the report and the
    /// shipments concerned are polled again next time.
    #[tracing::instrument(name = "fulfillkit.sync_tracking", skip_all)]
    pub async fn sync_tracking(&self) -> Result<SyncReport> {
        let now = self.now();
        // One task per instance, so that the work of answering one provider (decoding, merging,
        // storing) runs beside the others on every worker thread. The set aborts them all if
        // this future is dropped, as dropping the future would have stopped the work in place.
        let mut tasks = JoinSet::new();
        for index in 0..self.inner.instances.len() {
            let this = self.clone();
            tasks.spawn(async move { this.sync_instance(index, now).await });
        }
        let mut joined = Joined::default();
        while let Some(result) = tasks.join_next().await {
            joined.absorb(result);
        }
        joined.finish()
    }

    /// Applies tracking updates the host received for `instance` (by webhook): the same
    /// overrides, merge, store and event path as polling.
    ///
    /// # Errors
    ///
    /// [`crate::Error::NotFound`] for an unknown instance; store errors. Updates for orders
    /// without a record are counted as failed, not fatal.
    #[tracing::instrument(
        name = "fulfillkit.ingest_tracking",
        skip_all,
        fields(instance = instance.as_ref(), updates = updates.len())
    )]
    pub async fn ingest_tracking(
        &self,
        instance: impl AsRef<str>,
        updates: Vec<TrackingUpdate>,
    ) -> Result<SyncReport> {
        let instance = self.instance_or_err(instance)?;
        let overrides = overrides_of(instance);
        let now = self.now();
        let mut report = SyncReport::default();
        for update in updates {
            report.polled += 1;
            let Some(record) = self.record_of(update.shipment()).await? else {
                report.failed += 1;
                report.errors.push(TrackingError {
                    instance: instance.id.clone(),
                    order_id: Some(update.shipment().order_id.clone()),
                    failure: Failure::new(
                        ErrorKind::NotFound,
                        format!(
                            "no shipment record holds shipment {} of order {}",
                            update.shipment().provider_ref,
                            update.shipment().order_id
                        ),
                        false,
                    ),
                });
                continue;
            };
            self.ingest_one(instance, &overrides, record, update, now, &mut report)
                .await?;
        }
        Ok(report)
    }

    /// Merges and writes one update the host brought.
    async fn ingest_one(
        &self,
        instance: &Instance,
        overrides: &StatusTable,
        record: ShipmentRecord,
        update: TrackingUpdate,
        now: DateTime<Utc>,
        report: &mut SyncReport,
    ) -> Result<()> {
        if let Some(prepared) = self
            .prepare_update(instance, overrides, record, Some(update), now, report)
            .await
        {
            self.write_tracking(vec![prepared], now, report).await?;
        }
        Ok(())
    }

    /// Applies one update to `record`, which the caller has read under the order's lock.
    pub(super) async fn ingest_locked(
        &self,
        instance: &Instance,
        record: ShipmentRecord,
        update: TrackingUpdate,
    ) -> Result<SyncReport> {
        let mut report = SyncReport {
            polled: 1,
            ..SyncReport::default()
        };
        let overrides = overrides_of(instance);
        let now = self.now();
        self.ingest_one(instance, &overrides, record, update, now, &mut report)
            .await?;
        Ok(report)
    }

    /// Runs [`Self::sync_tracking`] every `interval` until `shutdown` completes, for hosts
    /// that want a loop; errors are logged and the loop goes on.
    pub async fn run_tracking(&self, interval: Duration, shutdown: impl Future<Output = ()>) {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            match self.sync_tracking().await {
                Ok(report) => tracing::debug!(?report, "tracking sync"),
                Err(error) => tracing::warn!(%error, "tracking sync failed"),
            }
            let tick = std::pin::pin!(tokio::time::sleep(interval));
            if let futures_util::future::Either::Left(_) =
                futures_util::future::select(shutdown.as_mut(), tick).await
            {
                return;
            }
        }
    }

    /// The record a provider's shipment belongs to. A re-exported order is known to the
    /// provider by a number of its own ([`super::provider_order_id`]): the record is the
    /// host's, and only if it really holds this shipment.
    async fn record_of(&self, shipment: &ShipmentRef) -> Result<Option<ShipmentRecord>> {
        let host_id = match numbering::parse_provider_order_id(&shipment.order_id) {
            Some((host_id, _)) => host_id,
            None => shipment.order_id.clone(),
        };
        Ok(self
            .inner
            .store
            .get(&host_id)
            .await?
            .filter(|r| r.shipment().is_none_or(|held| held == shipment)))
    }

    /// Polls the due shipments of one instance: pages are listed as batches are needed, so the
    /// first request leaves with the first page and memory follows the requests in flight.
    ///
    /// Answers are applied by tasks of their own, so that a request slot is free again as soon
    /// as its answer arrives: applying a batch overlaps the next requests' latency instead of
    /// adding to it.
    async fn sync_instance(&self, index: usize, now: DateTime<Utc>) -> Result<SyncReport> {
        let instance = &self.inner.instances[index];
        let concurrency = self.inner.tracking_concurrency;
        let overrides = Arc::new(overrides_of(instance));
        let batch_size = instance.provider.capabilities().max_track_batch.max(1);
        let work = futures_util::stream::unfold(Listing::default(), |mut listing| async move {
            loop {
                if let Some(record) = listing.too_old.pop() {
                    return Some((Work::Stop(Box::new(record)), listing));
                }
                if listing.due.len() >= batch_size || (listing.done && !listing.due.is_empty()) {
                    let n = batch_size.min(listing.due.len());
                    let batch = listing.due.drain(..n).collect();
                    return Some((Work::Batch(batch), listing));
                }
                if listing.done {
                    return None;
                }
                // Claimed a page at a time, as batches are needed: another replica skips
                // what this one claimed, and takes it over if this one dies (lease expiry).
                let lease = Lease::new(self.inner.owner.clone(), claim_until(now, self.inner.claim_ttl));
                let query = DueQuery::new(instance.id.clone(), now, lease, PAGE)
                    .after(listing.after.clone());
                let page = match self.inner.store.claim_due(&query).await {
                    Ok(page) => page,
                    Err(error) => {
                        listing.done = true;
                        let unclaimed: Vec<OrderId> =
                            listing.due.drain(..).map(|r| r.order_id).collect();
                        self.release(&unclaimed).await;
                        return Some((Work::ListingFailed(error), listing));
                    }
                };
                match page.last() {
                    Some(last) => {
                        let position = DuePosition::of(last);
                        if listing.after.as_ref().is_some_and(|after| position <= *after) {
                            // A store that does not move forward would loop for ever.
                            listing.done = true;
                            let ids: Vec<OrderId> = page.into_iter().map(|r| r.order_id).collect();
                            self.release(&ids).await;
                            return Some((
                                Work::ListingFailed(crate::Error::protocol(format!(
                                    "the store's due listing did not move past order {}: claim_due must return positions after `after`",
                                    position.order_id
                                ))),
                                listing,
                            ));
                        }
                        listing.after = Some(position);
                    }
                    None => listing.done = true,
                }
                for record in page {
                    if self.too_old(&record, now) {
                        listing.too_old.push(record);
                    } else {
                        listing.due.push_back(record);
                    }
                }
            }
        })
        // Boxed: without the erasure the compiler cannot prove the spawned task Send (its
        // inference of higher-ranked lifetimes in closures returning borrowing futures).
        .boxed();
        let mut fetched = work
            .map(|work| async move {
                match work {
                    Work::Batch(batch) => {
                        let refs: Vec<ShipmentRef> =
                            batch.iter().filter_map(|r| r.shipment().cloned()).collect();
                        let span = tracing::info_span!(
                            "fulfillkit.tracking_request",
                            instance = %instance.id,
                            provider = instance.provider.kind(),
                            shipments = refs.len(),
                        );
                        let answer = super::observed(
                            instance,
                            crate::error::Operation::Track,
                            instance.provider.track(&refs),
                        )
                        .instrument(span)
                        .await;
                        Ok(Fetched::Batch(batch, answer))
                    }
                    Work::Stop(record) => Ok(Fetched::Stop(record)),
                    Work::ListingFailed(error) => Err(error),
                }
            })
            .buffer_unordered(concurrency);
        let mut joined = Joined::default();
        let mut appliers = JoinSet::new();
        while let Some(fetched) = fetched.next().await {
            match fetched {
                Ok(Fetched::Batch(batch, answer)) => {
                    let this = self.clone();
                    let overrides = Arc::clone(&overrides);
                    appliers.spawn(async move {
                        let instance = &this.inner.instances[index];
                        this.apply_batch(instance, &overrides, batch, answer, now)
                            .await
                    });
                    // Answers waiting to be applied stay bounded.
                    while appliers.len() > concurrency {
                        if let Some(result) = appliers.join_next().await {
                            joined.absorb(result);
                        }
                    }
                }
                Ok(Fetched::Stop(record)) => {
                    let mut report = SyncReport::default();
                    let stopped = self.stop(*record, now, &mut report).await;
                    joined.absorb(Ok(stopped.map(|()| report)));
                }
                Err(error) => joined.absorb(Ok(Err(error))),
            }
        }
        while let Some(result) = appliers.join_next().await {
            joined.absorb(result);
        }
        joined.finish()
    }

    /// Applies a provider's answer to the batch of records it was asked about, in one store
    /// write for the whole batch: a failed request counts every shipment as failed and
    /// releases their claims (they are polled again next time).
    #[tracing::instrument(
        name = "fulfillkit.tracking_batch",
        skip_all,
        fields(instance = %instance.id, provider = instance.provider.kind(), shipments = batch.len())
    )]
    async fn apply_batch(
        &self,
        instance: &Instance,
        overrides: &StatusTable,
        batch: Vec<ShipmentRecord>,
        answer: Result<Vec<TrackingUpdate>>,
        now: DateTime<Utc>,
    ) -> Result<SyncReport> {
        let mut report = SyncReport {
            polled: batch.len(),
            requests: 1,
            ..SyncReport::default()
        };
        crate::telemetry::tracking_polled(instance.id.as_str(), batch.len());
        if crate::telemetry::ENABLED {
            for due in batch.iter().filter_map(|r| r.next_poll_at) {
                if let Ok(lag) = (now - due).to_std() {
                    crate::telemetry::tracking_lag(instance.id.as_str(), lag);
                }
            }
        }
        let updates = match answer {
            Ok(updates) => updates,
            Err(error) => {
                report.failed = batch.len();
                report.errors.push(TrackingError {
                    instance: instance.id.clone(),
                    order_id: None,
                    failure: error.to_failure(),
                });
                let ids: Vec<OrderId> = batch.into_iter().map(|r| r.order_id).collect();
                self.release(&ids).await;
                return Ok(report);
            }
        };
        let paired = pair(&batch, updates);
        let mut pending = Vec::with_capacity(batch.len());
        for (record, update) in batch.into_iter().zip(paired) {
            // A shipment missing from the answer is "no news": it is still rescheduled.
            pending.extend(
                self.prepare_update(instance, overrides, record, update, now, &mut report)
                    .await,
            );
        }
        self.write_tracking(pending, now, &mut report).await?;
        Ok(report)
    }

    /// Turns one provider answer about `record` into the write that records it: the merged
    /// history, the new current status, the next poll, and the change event when the current
    /// status really changed. `None` (after counting the failure and releasing the claim) for
    /// a per-shipment failure: the shipment stays due.
    async fn prepare_update(
        &self,
        instance: &Instance,
        overrides: &StatusTable,
        mut record: ShipmentRecord,
        update: Option<TrackingUpdate>,
        now: DateTime<Utc>,
        report: &mut SyncReport,
    ) -> Option<Prepared> {
        if let Some(TrackingUpdate::Failed { shipment, failure }) = &update {
            // This shipment only: it stays due and is polled again next time.
            tracing::warn!(
                instance = %instance.id,
                order_id = %record.order_id,
                shipment = %shipment.provider_ref,
                %failure,
                "tracking answer for one shipment failed"
            );
            report.failed += 1;
            report.errors.push(TrackingError {
                instance: instance.id.clone(),
                order_id: Some(record.order_id.clone()),
                failure: failure.clone(),
            });
            self.release(std::slice::from_ref(&record.order_id)).await;
            return None;
        }
        let incoming: Vec<DeliveryStatus> = match update {
            Some(TrackingUpdate::Statuses { statuses, .. }) => statuses
                .into_iter()
                .map(|s| with_override(overrides, s.bounded()))
                .collect(),
            Some(TrackingUpdate::NotFound { at, .. }) => vec![DeliveryStatus::new(
                StatusCode::Unregistered,
                "not known to the provider",
                at,
            )],
            Some(TrackingUpdate::Failed { .. }) | None => Vec::new(),
        };
        let incoming = self.with_pickup_point(instance, &record, incoming).await;
        // Merged once, against the history as claimed, moving the provider's statuses in.
        // Providers repeat the whole history on every poll: when it holds nothing new, the
        // shared history is kept (and the store writes no history at all).
        let base = Arc::clone(&record.history);
        let merged = if incoming.iter().all(|s| base.contains(s)) {
            Merged {
                history: Arc::clone(&base),
                current: record.current_status.clone(),
                base,
            }
        } else {
            let merged = merge_statuses_owned(&base, incoming, instance.settings.status_order);
            Merged {
                history: merged.history.into(),
                current: merged.current.map(Arc::new),
                base,
            }
        };
        let polled = record.shipment().cloned();
        let tracked = self.track_change(&mut record, &merged, polled.as_ref(), instance, now);
        let mut write = TrackingWrite::of(&record, now);
        write.history = history_write(&merged.base, &record.history);
        write.events = self.events_for(&record, tracked.event.into_iter().collect());
        Some(Prepared {
            write,
            merged,
            polled,
            stopped: tracked.stopped,
        })
    }

    /// Writes prepared tracking results in one store operation, delivers the events of those
    /// written, and merges the others again into their records as they are now (a concurrent
    /// change is kept, never overwritten).
    async fn write_tracking(
        &self,
        prepared: Vec<Prepared>,
        now: DateTime<Utc>,
        report: &mut SyncReport,
    ) -> Result<()> {
        if prepared.is_empty() {
            return Ok(());
        }
        let writes = prepared.iter().map(|p| p.write.clone()).collect();
        let outcomes = self.inner.store.apply_tracking(writes).await?;
        let mut events = Vec::new();
        let mut conflicts = Vec::new();
        for (prepared, outcome) in prepared.into_iter().zip(outcomes) {
            match outcome {
                TrackingWriteOutcome::Written { .. } => {
                    report.changed += usize::from(!prepared.write.events.is_empty());
                    report.stopped += usize::from(prepared.stopped);
                    events.extend(prepared.write.events);
                }
                TrackingWriteOutcome::Conflict => conflicts.push(prepared),
                // Deleted meanwhile: nothing left to track.
                TrackingWriteOutcome::NotFound => {}
            }
        }
        self.deliver(events).await;
        for prepared in conflicts {
            self.write_again(prepared, now, report).await?;
        }
        Ok(())
    }

    /// The slow path of [`Self::write_tracking`]: the record changed since it was claimed, so
    /// the merged result is merged into the record as it is now, with compare-and-swap.
    async fn write_again(
        &self,
        prepared: Prepared,
        now: DateTime<Utc>,
        report: &mut SyncReport,
    ) -> Result<()> {
        let order_id = prepared.write.order_id.clone();
        let Some(record) = self.inner.store.get(&order_id).await? else {
            return Ok(());
        };
        let Some(instance) = self.instance(&record.instance) else {
            return Ok(());
        };
        let mut tracked = Tracked::default();
        self.modify(record, |r| {
            tracked =
                self.track_change(r, &prepared.merged, prepared.polled.as_ref(), instance, now);
            tracked.event.iter().cloned().collect()
        })
        .await?;
        report.changed += usize::from(tracked.event.is_some());
        report.stopped += usize::from(tracked.stopped);
        self.release(std::slice::from_ref(&order_id)).await;
        Ok(())
    }

    /// Merges a provider's answer into `r` and reschedules it: the one rule of tracking
    /// shared by the fast path (the record as claimed) and the slow path (as re-read).
    fn track_change(
        &self,
        r: &mut ShipmentRecord,
        merged: &Merged,
        polled: Option<&ShipmentRef>,
        instance: &Instance,
        now: DateTime<Utc>,
    ) -> Tracked {
        let mut tracked = Tracked::default();
        if r.shipment() != polled {
            // Re-exported meanwhile: the answer is about a shipment the order no longer has.
            return tracked;
        }
        if Arc::ptr_eq(&r.history, &merged.base) {
            if !Arc::ptr_eq(&merged.history, &merged.base) {
                r.history = Arc::clone(&merged.history);
                r.current_status = merged.current.clone();
            }
        } else {
            // Merging depends only on the set of statuses and is idempotent: merging the
            // result into the new history gives the same as merging the statuses again.
            let again = merge_statuses(&r.history, &merged.history, instance.settings.status_order);
            r.history = again.history.into();
            r.current_status = again.current.map(Arc::new);
        }
        if let Some(current) = &r.current_status
            && is_reportable_change(r.last_reported.as_deref(), current)
        {
            // Shared with the current status: a record holds one copy of it.
            tracked.event = Some(EventKind::DeliveryStatusChanged {
                from: r.last_reported.clone(),
                to: Arc::clone(current),
            });
            r.last_reported = Some(Arc::clone(current));
        }
        let policy = &self.inner.poll_policy;
        let payment = &r.order.payment;
        tracked.stopped = policy
            .next_interval(r.current_status.as_deref(), payment)
            .is_none();
        r.next_poll_at = policy.next_poll_at(r.current_status.as_deref(), payment, now);
        r.updated_at = now;
        tracked
    }

    /// Releases this orchestrator's tracking claims on `order_ids`; a failure only delays
    /// them until their lease expires.
    async fn release(&self, order_ids: &[OrderId]) {
        if let Err(error) = self
            .inner
            .store
            .release_claims(&self.inner.owner, order_ids)
            .await
        {
            tracing::warn!(%error, shipments = order_ids.len(), "tracking claims not released; they expire with their lease");
        }
    }

    /// For an order sent to a pickup point (`pickup_point_id` set), gives every status from
    /// the moment the parcel leaves the warehouse (`InTransit` to `Paid`) the point's details
    /// when the provider's status carries none: providers name the point by code at most,
    /// while the recipient needs its address, postcode and opening hours. They come from the
    /// provider's directory when it has one and knows the point, else from what the order
    /// holds (the point's code, address and postcode). A directory that cannot be read falls
    /// back to the order; tracking never fails for it.
    async fn with_pickup_point(
        &self,
        instance: &Instance,
        record: &ShipmentRecord,
        mut incoming: Vec<DeliveryStatus>,
    ) -> Vec<DeliveryStatus> {
        let on_the_way = |s: &DeliveryStatus| {
            s.pickup_point.is_none() && (StatusCode::InTransit..=StatusCode::Paid).contains(&s.code)
        };
        let address = &record.order.address;
        let Some(point_id) = address.pickup_point_id.as_deref() else {
            return incoming;
        };
        if !incoming.iter().any(on_the_way) {
            return incoming;
        }
        let from_directory = if instance.provider.capabilities().address_directory {
            match self.directory_entry(&instance.id, address).await {
                Ok(entry) => entry.and_then(|e| e.to_pickup_point()),
                Err(error) => {
                    tracing::debug!(%error, order_id = %record.order_id, "pickup point not read from the directory");
                    None
                }
            }
        } else {
            None
        };
        let point = Box::new(from_directory.unwrap_or_else(|| point_of_order(point_id, address)));
        for status in incoming.iter_mut().filter(|s| on_the_way(s)) {
            status.pickup_point = Some(point.clone());
        }
        incoming
    }

    fn too_old(&self, record: &ShipmentRecord, now: DateTime<Utc>) -> bool {
        let ExportState::Exported { at, .. } = &record.export else {
            return false;
        };
        (now - *at)
            .to_std()
            .is_ok_and(|age| age > self.inner.poll_policy.max_tracking_age)
    }

    /// Stops tracking `record` (maximum tracking age), with [`EventKind::TrackingStopped`].
    async fn stop(
        &self,
        mut record: ShipmentRecord,
        now: DateTime<Utc>,
        report: &mut SyncReport,
    ) -> Result<()> {
        let days = self.inner.poll_policy.max_tracking_age.as_secs() / (24 * HOUR);
        let stop = |r: &mut ShipmentRecord| {
            r.tracking_stopped = true;
            r.next_poll_at = None;
            r.updated_at = now;
            vec![EventKind::TrackingStopped {
                reason: format!("no final status after {days} days"),
            }]
        };
        let kinds = stop(&mut record);
        let mut write = TrackingWrite::of(&record, now);
        write.tracking_stopped = true;
        write.events = self.events_for(&record, kinds);
        let events = write.events.clone();
        let outcome = self.inner.store.apply_tracking(vec![write]).await?;
        match outcome.first() {
            Some(TrackingWriteOutcome::Written { .. }) => self.deliver(events).await,
            Some(TrackingWriteOutcome::Conflict) => {
                let fresh = self.record(&record.order_id).await?;
                self.modify(fresh, stop).await?;
                self.release(std::slice::from_ref(&record.order_id)).await;
            }
            _ => return Ok(()),
        }
        report.stopped += 1;
        Ok(())
    }
}

/// The pickup point an order names, as far as the order describes it: its code, and the
/// address the host put into the order for it (a point chosen from a directory carries the
/// point's address).
fn point_of_order(id: &str, address: &Address) -> PickupPoint {
    let mut line = address
        .lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    if !address.city.trim().is_empty() {
        if !line.is_empty() {
            line.push_str(", ");
        }
        line.push_str(address.city.trim());
    }
    PickupPoint {
        id: id.to_owned(),
        name: id.to_owned(),
        address: line,
        postcode: address.postcode.trim().to_owned(),
        phones: Vec::new(),
        opening_hours: Default::default(),
        coordinates: None,
    }
}

/// The instance's raw-status overrides as a table (empty for most instances).
fn overrides_of(instance: &Instance) -> StatusTable {
    StatusTable::new().with_overrides(&instance.settings.status_overrides)
}

/// Re-maps `status` when the instance overrides its raw text.
fn with_override(overrides: &StatusTable, mut status: DeliveryStatus) -> DeliveryStatus {
    if let Some(mapping) = overrides.lookup(&status.original) {
        status.code = mapping.code;
        status.problem = mapping.problem.clone();
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    #[test]
    fn poll_intervals_follow_the_status() {
        let policy = PollPolicy::default();
        let at = Utc::now();
        let prepaid = Payment::Prepaid;
        let cod = Payment::CashOnDelivery {
            amount: Decimal::ONE,
        };
        let next = |code, payment: &Payment| {
            policy.next_interval(Some(&DeliveryStatus::new(code, "x", at)), payment)
        };
        assert_eq!(
            next(StatusCode::OnDelivery, &prepaid),
            Some(Duration::from_secs(1800))
        );
        assert_eq!(
            next(StatusCode::InTransit, &prepaid),
            Some(Duration::from_secs(7200))
        );
        assert_eq!(
            next(StatusCode::Registered, &prepaid),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(next(StatusCode::Delivered, &prepaid), None);
        assert_eq!(
            next(StatusCode::Delivered, &cod),
            Some(Duration::from_secs(6 * 3600))
        );
        assert_eq!(next(StatusCode::Paid, &cod), None);
        for code in [
            StatusCode::DeliveredToSender,
            StatusCode::Cancelled,
            StatusCode::Lost,
            StatusCode::Damaged,
        ] {
            assert_eq!(next(code, &cod), None, "{code:?}");
        }
        assert_eq!(
            policy.next_interval(None, &prepaid),
            Some(Duration::from_secs(3600))
        );
    }
}
