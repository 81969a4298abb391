//! Persistence: the [`Store`] trait a host's database serves, the records it keeps, and
//! [`MemoryStore`] for tests and single-process hosts.
//!
//! The contract is written for a real database shared by several replicas of a host:
//!
//! - **Records with a version.** Every change of a [`ShipmentRecord`] is a compare-and-swap on
//!   its `version` ([`Store::update`]), so two replicas never overwrite each other.
//! - **An outbox.** Every write carries the [`Event`]s its change causes ([`Effects`]) and
//!   stores them in the same atomic operation; the orchestrator hands them to the host's sink
//!   afterwards and marks them delivered ([`Store::mark_delivered`]). What a crash left behind
//!   is listed by [`Store::pending_events`]: no event is lost between a write and its
//!   delivery.
//! - **Due listing with claims.** Tracking asks for the shipments of one instance that are due
//!   ([`Store::claim_due`]), oldest first, from an index on the next poll time, and claims them
//!   with a [`Lease`]: another replica skips a claimed shipment until the lease expires (a
//!   crashed replica's work is picked up after that).
//! - **In-place tracking writes.** A tracking result changes a few fields of a record at an
//!   expected version ([`Store::apply_tracking`], a batch per provider answer), never a whole
//!   record.
//! - **Edit leases.** Edits, cancels and exception resolutions of one order are serialized
//!   across replicas by a per-order [`Lease`] ([`Store::acquire_order_lease`]), taken before the
//!   provider is called: no database lock is ever held across an HTTP call.
//! - **Exception history.** An order keeps every [`OrderException`] it had, numbered by
//!   [`OrderException::seq`].
//!
//! Check an implementation with [`testkit::run_store_suite`](crate::testkit::run_store_suite).
//! A store reports its own failures (database down, a row it cannot read) as
//! [`Error::Store`](crate::Error::Store), which is retryable.

mod memory;
mod packed;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
mod record;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::{DeliveryStatus, Event, EventId, InstanceId, OrderException, OrderId, Waybill};

pub use memory::MemoryStore;
pub use record::{ExportState, Fingerprint, Fingerprints, PendingUpdate, ShipmentRecord};

/// A time-limited hold: who holds it and until when. Used for tracking claims and for
/// per-order edit leases. A lease past `until` is free for anyone; a lease is always free for
/// its own owner.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Lease {
    /// Who holds it ([`Orchestrator::owner`](crate::orchestrator::Orchestrator::owner)).
    pub owner: String,
    /// When it expires.
    pub until: DateTime<Utc>,
}

impl Lease {
    /// A lease held by `owner` until `until`.
    pub fn new(owner: impl Into<String>, until: DateTime<Utc>) -> Self {
        Self {
            owner: owner.into(),
            until,
        }
    }

    /// Whether `owner` may take a thing held by `self` at `now`: it is `owner`'s own, or it
    /// expired.
    pub fn yields_to(&self, owner: &str, now: DateTime<Utc>) -> bool {
        self.owner == owner || self.until <= now
    }
}

/// What a write stores together with the record, in the same atomic operation: the events the
/// change causes (the outbox) and the exception it raises, updates or resolves.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Effects {
    /// Events to store undelivered, in this order.
    pub events: Vec<Event>,
    /// An exception to store: inserted, or replacing the one with the same order id and
    /// [`seq`](OrderException::seq).
    pub exception: Option<OrderException>,
}

impl Effects {
    /// No events, no exception.
    pub fn none() -> Self {
        Self::default()
    }

    /// These events.
    pub fn events(events: Vec<Event>) -> Self {
        Self {
            events,
            exception: None,
        }
    }

    /// Also stores `exception`.
    pub fn with_exception(mut self, exception: OrderException) -> Self {
        self.exception = Some(exception);
        self
    }
}

/// A shipment's place in the due order: by next poll time (`None`, "as soon as possible",
/// first), then by order id. Tracking walks an instance's due shipments in this order, each
/// page after the last position of the previous one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DuePosition {
    /// The next poll time.
    pub due: Option<DateTime<Utc>>,
    /// The order.
    pub order_id: OrderId,
}

impl DuePosition {
    /// The position of `record`.
    pub fn of(record: &ShipmentRecord) -> Self {
        Self {
            due: record.next_poll_at,
            order_id: record.order_id.clone(),
        }
    }
}

/// Which due shipments [`Store::claim_due`] claims.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DueQuery {
    /// Only this instance's shipments.
    pub instance: InstanceId,
    /// Due at this time: `next_poll_at` unset or at most `now`.
    pub now: DateTime<Utc>,
    /// Only positions after this one ([`DuePosition`] order).
    pub after: Option<DuePosition>,
    /// At most this many.
    pub limit: usize,
    /// The claim to put on each: shipments claimed by another owner under a lease that has
    /// not expired at `now` are skipped.
    pub lease: Lease,
}

impl DueQuery {
    /// At most `limit` shipments of `instance` due at `now`, claimed with `lease`.
    pub fn new(
        instance: impl Into<InstanceId>,
        now: DateTime<Utc>,
        lease: Lease,
        limit: usize,
    ) -> Self {
        Self {
            instance: instance.into(),
            now,
            after: None,
            limit,
            lease,
        }
    }

    /// Only positions after `position`.
    pub fn after(mut self, position: Option<DuePosition>) -> Self {
        self.after = position;
        self
    }
}

/// How a [`TrackingWrite`] changes a record's history.
#[derive(Debug, Clone, PartialEq)]
pub enum HistoryWrite {
    /// The history stays as it is.
    Keep,
    /// These statuses go after the stored ones (the common case: the provider reported
    /// something new that sorts last).
    Append(Vec<DeliveryStatus>),
    /// The history becomes this one.
    Replace(Arc<[DeliveryStatus]>),
}

/// The result of one tracking poll for one record, applied in place by
/// [`Store::apply_tracking`] if the record is still at `version`. The write also releases the
/// record's tracking claim.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TrackingWrite {
    /// The order.
    pub order_id: OrderId,
    /// The version the result was computed from: the write applies only at it.
    pub version: u64,
    /// The history change.
    pub history: HistoryWrite,
    /// The new current status.
    pub current_status: Option<Arc<DeliveryStatus>>,
    /// The new last reported status.
    pub last_reported: Option<Arc<DeliveryStatus>>,
    /// The next poll time.
    pub next_poll_at: Option<DateTime<Utc>>,
    /// Whether tracking stopped.
    pub tracking_stopped: bool,
    /// When the result was applied.
    pub updated_at: DateTime<Utc>,
    /// The events it causes, stored with it.
    pub events: Vec<Event>,
}

impl TrackingWrite {
    /// A write that leaves `record`'s tracking fields as they are (set the ones that change),
    /// at `record`'s version, stamped `at`.
    pub fn of(record: &ShipmentRecord, at: DateTime<Utc>) -> Self {
        Self {
            order_id: record.order_id.clone(),
            version: record.version,
            history: HistoryWrite::Keep,
            current_status: record.current_status.clone(),
            last_reported: record.last_reported.clone(),
            next_poll_at: record.next_poll_at,
            tracking_stopped: record.tracking_stopped,
            updated_at: at,
            events: Vec::new(),
        }
    }

    /// Applies the write to `record` (what a store does in place), bumping its version.
    pub fn apply_to(&self, record: &mut ShipmentRecord) {
        match &self.history {
            HistoryWrite::Keep => {}
            HistoryWrite::Append(statuses) => {
                let mut history = Vec::with_capacity(record.history.len() + statuses.len());
                history.extend_from_slice(&record.history);
                history.extend_from_slice(statuses);
                record.history = history.into();
            }
            HistoryWrite::Replace(history) => record.history = Arc::clone(history),
        }
        record.current_status = self.current_status.clone();
        record.last_reported = self.last_reported.clone();
        record.next_poll_at = self.next_poll_at;
        record.tracking_stopped = self.tracking_stopped;
        record.updated_at = self.updated_at;
        record.version += 1;
    }
}

/// What [`Store::apply_tracking`] did with one [`TrackingWrite`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackingWriteOutcome {
    /// Applied; the record is now at `version`.
    Written {
        /// The record's new version.
        version: u64,
    },
    /// The record is no longer at the write's version: nothing was written.
    Conflict,
    /// There is no record.
    NotFound,
}

/// A position in the exception listing ([`Store::list_exceptions`]): exceptions are ordered by
/// order id, then [`seq`](OrderException::seq). Written as text `{seq}.{order id}` (for a
/// query string) and read back with [`str::parse`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExceptionCursor {
    /// The order.
    pub order_id: OrderId,
    /// The exception's number.
    pub seq: u32,
}

impl ExceptionCursor {
    /// The position of `exception`.
    pub fn of(exception: &OrderException) -> Self {
        Self {
            order_id: exception.order_id.clone(),
            seq: exception.seq,
        }
    }
}

impl std::fmt::Display for ExceptionCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.seq, self.order_id)
    }
}

impl std::str::FromStr for ExceptionCursor {
    type Err = crate::Error;

    fn from_str(text: &str) -> Result<Self> {
        let invalid = || {
            crate::Error::validation(
                "exception cursor",
                vec![crate::error::FieldError::new(
                    "after",
                    "must be a cursor from a previous page (`{seq}.{order id}`)",
                )],
            )
        };
        let (seq, order_id) = text.split_once('.').ok_or_else(invalid)?;
        let digits = !seq.is_empty() && seq.bytes().all(|b| b.is_ascii_digit());
        let seq = seq.parse().ok().filter(|_| digits).ok_or_else(invalid)?;
        if order_id.is_empty() {
            return Err(invalid());
        }
        Ok(Self {
            order_id: order_id.into(),
            seq,
        })
    }
}

/// Which exceptions to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ExceptionFilter {
    /// `Some(true)`: open only; `Some(false)`: resolved only.
    pub open: Option<bool>,
    /// Only this instance.
    pub instance: Option<InstanceId>,
    /// Detected at or after.
    pub since: Option<DateTime<Utc>>,
    /// Detected before.
    pub until: Option<DateTime<Utc>>,
}

impl ExceptionFilter {
    /// Open exceptions only.
    pub fn open() -> Self {
        Self {
            open: Some(true),
            ..Self::default()
        }
    }

    /// Resolved exceptions only.
    pub fn resolved() -> Self {
        Self {
            open: Some(false),
            ..Self::default()
        }
    }

    /// Only exceptions of `instance`.
    pub fn with_instance(mut self, instance: impl Into<InstanceId>) -> Self {
        self.instance = Some(instance.into());
        self
    }

    /// Only exceptions detected in `[since, until)`; either bound may be open.
    pub fn detected_between(
        mut self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> Self {
        self.since = since;
        self.until = until;
        self
    }

    /// Whether `exception` passes the filter.
    pub fn matches(&self, exception: &OrderException) -> bool {
        self.open.is_none_or(|open| exception.is_open() == open)
            && self
                .instance
                .as_ref()
                .is_none_or(|i| *i == exception.instance)
            && self.since.is_none_or(|t| exception.detected_at >= t)
            && self.until.is_none_or(|t| exception.detected_at < t)
    }
}

/// Persistence of shipment records, waybills, exceptions and undelivered events. Implement it
/// over the host's database (or use `PgStore`); check the implementation with
/// [`testkit::run_store_suite`](crate::testkit::run_store_suite). See the
/// [module docs](self) for the contract.
///
/// Record listings are pages ordered by order id; `after` is the last id of the previous page.
/// Failures of the store itself are [`Error::Store`](crate::Error::Store).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The record of `order_id`.
    async fn get(&self, order_id: &OrderId) -> Result<Option<ShipmentRecord>>;

    /// Inserts `record` unless one exists for its order, with `effects`, in one atomic
    /// operation; returns whether it was inserted (when not, nothing is written). The stored
    /// version is `record.version`.
    async fn insert(&self, record: ShipmentRecord, effects: Effects) -> Result<bool>;

    /// Replaces the record if its stored version is still `record.version`, storing it with
    /// the version incremented, and `effects` with it, in one atomic operation; returns the
    /// stored record.
    ///
    /// # Errors
    ///
    /// [`Error::Conflict`](crate::Error::Conflict) when the version moved on (re-read and
    /// retry; nothing was written); [`Error::NotFound`](crate::Error::NotFound) when there is
    /// no record.
    async fn update(&self, record: ShipmentRecord, effects: Effects) -> Result<ShipmentRecord>;

    /// Records whose export failed (any instance).
    async fn list_failed(
        &self,
        after: Option<&OrderId>,
        limit: usize,
    ) -> Result<Vec<ShipmentRecord>>;

    /// Records whose export intent was never completed (any instance).
    async fn list_exporting(
        &self,
        after: Option<&OrderId>,
        limit: usize,
    ) -> Result<Vec<ShipmentRecord>>;

    /// Records with an edit waiting for the provider ([`ShipmentRecord::pending_update`]).
    async fn list_pending_updates(
        &self,
        after: Option<&OrderId>,
        limit: usize,
    ) -> Result<Vec<ShipmentRecord>>;

    /// Claims and returns at most `query.limit` records of `query.instance` that tracking
    /// follows ([`ShipmentRecord::is_active`]) and that are due at `query.now`
    /// (`next_poll_at` unset or not after `now`), in [`DuePosition`] order after
    /// `query.after`, skipping those claimed by another owner under an unexpired lease; each
    /// returned record is claimed with `query.lease`. A record that is not due is never read.
    async fn claim_due(&self, query: &DueQuery) -> Result<Vec<ShipmentRecord>>;

    /// Applies each write to its record if the record is still at the write's version,
    /// storing its events with it and releasing the record's claim; one outcome per write, in
    /// order. A database answers a whole provider batch in one round trip.
    async fn apply_tracking(&self, writes: Vec<TrackingWrite>)
    -> Result<Vec<TrackingWriteOutcome>>;

    /// Releases `owner`'s tracking claims on `order_ids` (shipments polled without a result to
    /// write: they are due again at once). Claims of other owners stay.
    async fn release_claims(&self, owner: &str, order_ids: &[OrderId]) -> Result<()>;

    /// Takes the edit lease of `order_id` for `lease.owner` until `lease.until` when it is
    /// free, expired or already `lease.owner`'s (then it is extended); returns whether it was
    /// taken. `now` decides expiry.
    async fn acquire_order_lease(
        &self,
        order_id: &OrderId,
        lease: &Lease,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    /// Releases the edit lease of `order_id` if `owner` holds it.
    async fn release_order_lease(&self, order_id: &OrderId, owner: &str) -> Result<()>;

    /// Saves the operator's waybill values for an order.
    async fn save_waybill(&self, order_id: &OrderId, waybill: Waybill) -> Result<()>;

    /// The operator's waybill values for an order.
    async fn waybill(&self, order_id: &OrderId) -> Result<Option<Waybill>>;

    /// The latest exception of an order (the highest [`seq`](OrderException::seq)), open or
    /// resolved.
    async fn exception(&self, order_id: &OrderId) -> Result<Option<OrderException>>;

    /// Every exception of an order, oldest first.
    async fn exception_history(&self, order_id: &OrderId) -> Result<Vec<OrderException>>;

    /// Exceptions passing `filter`, ordered by order id then `seq`, after `after`.
    async fn list_exceptions(
        &self,
        filter: &ExceptionFilter,
        after: Option<&ExceptionCursor>,
        limit: usize,
    ) -> Result<Vec<OrderException>>;

    /// Undelivered events that occurred before `before`, in the order they were written, at
    /// most `limit`.
    async fn pending_events(&self, before: DateTime<Utc>, limit: usize) -> Result<Vec<Event>>;

    /// Marks events delivered: they are no longer pending. Unknown ids are ignored.
    async fn mark_delivered(&self, ids: &[EventId]) -> Result<()>;
}
