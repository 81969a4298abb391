//! The store suite fails a store that breaks a contract, with a message naming the contract:
//! one deliberately broken store per contract, each a wrapper over `MemoryStore` with one
//! breakage switched on, run through the whole suite (`run_store_suite`).

use chrono::{DateTime, Duration, Utc};
use fulfillkit::model::{Event, EventId, OrderException, OrderId, Waybill};
use fulfillkit::store::{
    DueQuery, Effects, ExceptionCursor, ExceptionFilter, ExportState, Lease, MemoryStore,
    ShipmentRecord, Store, TrackingWrite, TrackingWriteOutcome,
};
use fulfillkit::testkit::{run_store_suite, sample_record};
use fulfillkit::{Error, Result, async_trait};

/// One way a store author gets the contract wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Breakage {
    /// None: the control.
    Nothing,
    /// `insert` replaces an existing record.
    InsertOverwrites,
    /// `update` writes whatever the version.
    UpdateIgnoresVersion,
    /// `update` checks the version, then writes: two writers at one version both win.
    CheckThenWrite,
    /// `last_reported` is not stored (the Delivered event repeats on every poll).
    DropsLastReported,
    /// `next_poll_at` is not stored.
    DropsNextPollAt,
    /// `list_failed` ignores `after`: every page is the first.
    ListingIgnoresAfter,
    /// `list_exporting` never ends: every page moves on, forever.
    EndlessListing,
    /// `list_pending_updates` finds nothing.
    PendingUpdatesMissing,
    /// `claim_due` answers newest first.
    ClaimDueUnordered,
    /// Claims are stored without their expiry: a crashed replica's shipments stay claimed.
    ClaimsNeverExpire,
    /// `release_claims` does nothing.
    ReleaseIgnored,
    /// `apply_tracking` writes whatever the version.
    ApplyTrackingIgnoresVersion,
    /// `acquire_order_lease` always succeeds.
    LeaseIgnoresHolder,
    /// `mark_delivered` does nothing: the outbox delivers every event again.
    MarkDeliveredIgnored,
    /// `pending_events` ignores `before`.
    OutboxIgnoresBefore,
    /// An order keeps only its latest exception.
    ExceptionHistoryKeepsLatest,
    /// `list_exceptions` ignores its filter.
    ExceptionFilterIgnored,
    /// `save_waybill` does nothing.
    WaybillsNotKept,
    /// `get` never answers.
    GetHangs,
    /// The database is down: `insert` fails.
    DatabaseDown,
}

use Breakage::*;

struct Broken {
    inner: MemoryStore,
    breakage: Breakage,
}

impl Broken {
    fn is(&self, breakage: Breakage) -> bool {
        self.breakage == breakage
    }

    fn forget_fields(&self, mut record: ShipmentRecord) -> ShipmentRecord {
        if self.is(DropsLastReported) {
            record.last_reported = None;
        }
        if self.is(DropsNextPollAt) {
            record.next_poll_at = None;
        }
        record
    }

    async fn stored_version(&self, order_id: &OrderId) -> Option<u64> {
        self.inner
            .get(order_id)
            .await
            .ok()
            .flatten()
            .map(|r| r.version)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("connection refused")]
struct Down;

#[async_trait]
impl Store for Broken {
    async fn get(&self, order_id: &OrderId) -> Result<Option<ShipmentRecord>> {
        if self.is(GetHangs) {
            std::future::pending::<()>().await;
        }
        self.inner.get(order_id).await
    }

    async fn insert(&self, record: ShipmentRecord, effects: Effects) -> Result<bool> {
        if self.is(DatabaseDown) {
            return Err(Error::store("insert a shipment record", Down));
        }
        if self.is(InsertOverwrites)
            && let Some(version) = self.stored_version(&record.order_id).await
        {
            let mut record = record;
            record.version = version;
            self.inner.update(record, effects).await?;
            return Ok(true);
        }
        self.inner.insert(self.forget_fields(record), effects).await
    }

    async fn update(&self, mut record: ShipmentRecord, effects: Effects) -> Result<ShipmentRecord> {
        if self.is(UpdateIgnoresVersion)
            && let Some(version) = self.stored_version(&record.order_id).await
        {
            record.version = version;
        }
        if self.is(CheckThenWrite) {
            let stored = self.stored_version(&record.order_id).await;
            if stored.is_some_and(|v| v != record.version) {
                return Err(Error::Conflict {
                    message: "version moved on".into(),
                });
            }
            // The gap between the check and the write, where another writer gets in.
            tokio::task::yield_now().await;
            if let Some(version) = self.stored_version(&record.order_id).await {
                record.version = version;
            }
        }
        self.inner.update(self.forget_fields(record), effects).await
    }

    async fn list_failed(
        &self,
        after: Option<&OrderId>,
        limit: usize,
    ) -> Result<Vec<ShipmentRecord>> {
        let after = if self.is(ListingIgnoresAfter) {
            None
        } else {
            after
        };
        self.inner.list_failed(after, limit).await
    }

    async fn list_exporting(
        &self,
        after: Option<&OrderId>,
        limit: usize,
    ) -> Result<Vec<ShipmentRecord>> {
        if self.is(EndlessListing) {
            let next = format!("{}~", after.map(OrderId::as_str).unwrap_or("FK"));
            let exporting = ExportState::Exporting {
                since: Utc::now(),
                owner: None,
            };
            return Ok(vec![sample_record(&next, "a", exporting)]);
        }
        self.inner.list_exporting(after, limit).await
    }

    async fn list_pending_updates(
        &self,
        after: Option<&OrderId>,
        limit: usize,
    ) -> Result<Vec<ShipmentRecord>> {
        if self.is(PendingUpdatesMissing) {
            return Ok(Vec::new());
        }
        self.inner.list_pending_updates(after, limit).await
    }

    async fn claim_due(&self, query: &DueQuery) -> Result<Vec<ShipmentRecord>> {
        let mut query = query.clone();
        if self.is(ClaimsNeverExpire) {
            query.lease.until = query.now + Duration::days(36_500);
        }
        let mut claimed = self.inner.claim_due(&query).await?;
        if self.is(ClaimDueUnordered) {
            claimed.reverse();
        }
        Ok(claimed)
    }

    async fn apply_tracking(
        &self,
        mut writes: Vec<TrackingWrite>,
    ) -> Result<Vec<TrackingWriteOutcome>> {
        if self.is(ApplyTrackingIgnoresVersion) {
            for write in &mut writes {
                if let Some(version) = self.stored_version(&write.order_id).await {
                    write.version = version;
                }
            }
        }
        self.inner.apply_tracking(writes).await
    }

    async fn release_claims(&self, owner: &str, order_ids: &[OrderId]) -> Result<()> {
        if self.is(ReleaseIgnored) {
            return Ok(());
        }
        self.inner.release_claims(owner, order_ids).await
    }

    async fn acquire_order_lease(
        &self,
        order_id: &OrderId,
        lease: &Lease,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        if self.is(LeaseIgnoresHolder) {
            return Ok(true);
        }
        self.inner.acquire_order_lease(order_id, lease, now).await
    }

    async fn release_order_lease(&self, order_id: &OrderId, owner: &str) -> Result<()> {
        self.inner.release_order_lease(order_id, owner).await
    }

    async fn save_waybill(&self, order_id: &OrderId, waybill: Waybill) -> Result<()> {
        if self.is(WaybillsNotKept) {
            return Ok(());
        }
        self.inner.save_waybill(order_id, waybill).await
    }

    async fn waybill(&self, order_id: &OrderId) -> Result<Option<Waybill>> {
        self.inner.waybill(order_id).await
    }

    async fn exception(&self, order_id: &OrderId) -> Result<Option<OrderException>> {
        self.inner.exception(order_id).await
    }

    async fn exception_history(&self, order_id: &OrderId) -> Result<Vec<OrderException>> {
        let mut history = self.inner.exception_history(order_id).await?;
        if self.is(ExceptionHistoryKeepsLatest) && history.len() > 1 {
            history.drain(..history.len() - 1);
        }
        Ok(history)
    }

    async fn list_exceptions(
        &self,
        filter: &ExceptionFilter,
        after: Option<&ExceptionCursor>,
        limit: usize,
    ) -> Result<Vec<OrderException>> {
        let everything = ExceptionFilter::default();
        let filter = if self.is(ExceptionFilterIgnored) {
            &everything
        } else {
            filter
        };
        self.inner.list_exceptions(filter, after, limit).await
    }

    async fn pending_events(&self, before: DateTime<Utc>, limit: usize) -> Result<Vec<Event>> {
        let before = if self.is(OutboxIgnoresBefore) {
            DateTime::<Utc>::MAX_UTC
        } else {
            before
        };
        self.inner.pending_events(before, limit).await
    }

    async fn mark_delivered(&self, ids: &[EventId]) -> Result<()> {
        if self.is(MarkDeliveredIgnored) {
            return Ok(());
        }
        self.inner.mark_delivered(ids).await
    }
}

async fn run(breakage: Breakage) {
    let store = Broken {
        inner: MemoryStore::new(),
        breakage,
    };
    run_store_suite(&store).await;
}

#[tokio::test]
async fn the_control_passes() {
    // Every test below differs from this one by its breakage alone.
    run(Nothing).await;
}

#[tokio::test]
#[should_panic(expected = "store contract `insert`: a second insert of an order must not store it")]
async fn insert_overwrites() {
    run(InsertOverwrites).await;
}

#[tokio::test]
#[should_panic(expected = "store contract `update`: an update at a stale version must fail")]
async fn update_ignores_version() {
    run(UpdateIgnoresVersion).await;
}

#[tokio::test]
#[should_panic(expected = "store contract `update (concurrent)`: of 8 writers at version")]
async fn check_then_write() {
    run(CheckThenWrite).await;
}

#[tokio::test]
#[should_panic(expected = "store contract `round trip`")]
async fn drops_last_reported() {
    run(DropsLastReported).await;
}

#[tokio::test]
#[should_panic(expected = "store contract `round trip`")]
async fn drops_next_poll_at() {
    run(DropsNextPollAt).await;
}

#[tokio::test]
#[should_panic(
    expected = "store contract `list_failed`: pages are in order id order, after `after`"
)]
async fn listing_ignores_after() {
    run(ListingIgnoresAfter).await;
}

#[tokio::test]
#[should_panic(
    expected = "store contract `list_exporting`: the listing did not end after 1000 pages"
)]
async fn endless_listing_fails_instead_of_hanging() {
    run(EndlessListing).await;
}

#[tokio::test]
#[should_panic(expected = "store contract `list_pending_updates`")]
async fn pending_updates_missing() {
    run(PendingUpdatesMissing).await;
}

#[tokio::test]
#[should_panic(expected = "store contract `claim_due`: due shipments oldest first")]
async fn claim_due_unordered() {
    run(ClaimDueUnordered).await;
}

#[tokio::test]
#[should_panic(
    expected = "store contract `claim_due (leases)`: a claim whose lease expired is claimable again"
)]
async fn claims_never_expire() {
    run(ClaimsNeverExpire).await;
}

#[tokio::test]
#[should_panic(
    expected = "store contract `release_claims`: a released shipment is claimable at once"
)]
async fn release_ignored() {
    run(ReleaseIgnored).await;
}

#[tokio::test]
#[should_panic(expected = "store contract `apply_tracking`: one outcome per write, in order")]
async fn apply_tracking_ignores_version() {
    run(ApplyTrackingIgnoresVersion).await;
}

#[tokio::test]
#[should_panic(
    expected = "store contract `order leases`: a lease held by another owner is refused"
)]
async fn lease_ignores_holder() {
    run(LeaseIgnoresHolder).await;
}

#[tokio::test]
#[should_panic(expected = "store contract `outbox`: events marked delivered are no longer pending")]
async fn mark_delivered_ignored() {
    run(MarkDeliveredIgnored).await;
}

#[tokio::test]
#[should_panic(
    expected = "store contract `outbox`: only events that occurred before `before` are listed"
)]
async fn outbox_ignores_before() {
    run(OutboxIgnoresBefore).await;
}

#[tokio::test]
#[should_panic(
    expected = "store contract `exception history`: a second exception is added, not a replacement"
)]
async fn exception_history_keeps_latest() {
    run(ExceptionHistoryKeepsLatest).await;
}

#[tokio::test]
#[should_panic(
    expected = "store contract `exceptions`: the open filter lists open exceptions only"
)]
async fn exception_filter_ignored() {
    run(ExceptionFilterIgnored).await;
}

#[tokio::test]
#[should_panic(expected = "store contract `waybills`")]
async fn waybills_not_kept() {
    run(WaybillsNotKept).await;
}

// Paused time: the suite's time limit passes at once when nothing else can run.
#[tokio::test(start_paused = true)]
#[should_panic(expected = "store contract `insert`: no answer within")]
async fn a_hanging_store_fails_instead_of_hanging() {
    run(GetHangs).await;
}

#[tokio::test]
#[should_panic(
    expected = "store contract `insert`: insert: Store { what: \"insert a shipment record\""
)]
async fn a_store_whose_database_is_down_fails_naming_the_contract() {
    run(DatabaseDown).await;
}
