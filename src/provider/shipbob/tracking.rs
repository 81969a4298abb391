//! Tracking without one call per order (protocol doc §5.3): a bounded cache of the orders'
//! latest views, kept current by an incremental change feed; carrier statuses from the
//! tracking API for shipments that changed; and the mapping of an order with one or more
//! shipments to the statuses of its one shipment record.
//!
//! **The change feed.** Each read lists `GET /order?LastUpdateStartDate=<cursor − overlap>` and
//! `…?LastTrackingUpdateStartDate=<cursor − overlap>` (holds and exceptions change the first,
//! carrier progress the second), 250 orders a page, with the channel header, and stores every
//! order it brings. The cursor is the newest `last_update_at` / `last_tracking_update_at` seen
//! (ShipBob's own timestamps, so the client's clock does not matter; before any, ShipBob's
//! `Date` at the first read); the overlap (5 minutes, §5.3) covers late commits. A tracking
//! call reads the feed unless a read started within the feed interval before it, then
//! answers from the cache; orders it has never seen are read by id in batches
//! (`GET /order?IDs=…`). When the feed cannot be read, the call reads every order it asks
//! about by id. Webhook deliveries update the same cache.
//!
//! **Carrier statuses.** For shipments with a label whose `last_tracking_update_at` differs
//! from the one last read, `GET /shipments-tracking?ShipmentIds=…` (25 ids a call) gives the
//! carrier's status, substatus and history; each becomes a status of its own.
//!
//! **Split orders.** ShipBob splits an order into several shipments (stock in several
//! centers, cartons); fulfillkit keeps one record per order. Cancelled shipments are ignored
//! unless all are cancelled, and the order moves at the pace of its slowest shipment (§11.1):
//! only statuses up to the least advanced shipment's are reported, so the record reaches
//! `Delivered` when the last parcel is delivered, and tracking does not stop before.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::ShipBobProvider;
use super::client::Missing;
use super::status;
use super::wire::{self, OrderView, ReturnView, ShipmentTracking, ShipmentView, TrackingEvent};
use crate::error::{Error, Result};
use crate::model::{DeliveryStatus, ShipmentRef, StatusCode, StatusTable, TrackingUpdate};

/// Entries kept in each of the tracker's memories.
const MEMORY_CAP: usize = 100_000;
/// Shortest pause of the change feed after a failed read (the calls meanwhile read their
/// orders by id).
const FEED_RETRY_GAP: Duration = Duration::from_secs(1);
/// Most shipment ids per `GET /shipments-tracking` (§5.4).
pub(crate) const CARRIER_BATCH: usize = 25;

/// A bounded insertion-ordered map: the oldest entry goes when the cap is reached.
#[derive(Debug)]
struct Bounded<K, V> {
    map: HashMap<K, V>,
    order: VecDeque<K>,
}

impl<K, V> Default for Bounded<K, V> {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }
}

impl<K: Hash + Eq + Clone, V> Bounded<K, V> {
    fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key)
    }

    fn put(&mut self, key: K, value: V) {
        if let Some(known) = self.map.get_mut(&key) {
            *known = value;
            return;
        }
        self.map.insert(key.clone(), value);
        self.order.push_back(key);
        if self.order.len() > MEMORY_CAP
            && let Some(old) = self.order.pop_front()
        {
            self.map.remove(&old);
        }
    }

    fn remove(&mut self, key: &K) {
        self.map.remove(key);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Where the change feed stands.
#[derive(Debug, Default)]
struct Feed {
    /// The newest change seen (ShipBob's timestamps), or ShipBob's clock at the first read.
    cursor: Option<DateTime<Utc>>,
    /// When the last successful read started (this process's clock).
    started: Option<Instant>,
    /// When the last read failed, if the last read failed.
    failed: Option<Instant>,
    /// When the first successful read started: from then on every change is in a read, so a
    /// view stored since is current once a read after the call has been made. Views stored
    /// before (creates, webhooks) are read again by id once.
    watching_since: Option<Instant>,
}

/// The carrier's answer for one shipment, with the `last_tracking_update_at` it belongs to.
#[derive(Debug, Clone)]
struct Carrier {
    key: Option<String>,
    tracking: Option<Arc<ShipmentTracking>>,
}

/// The memories of one provider instance's tracking.
#[derive(Debug)]
pub(crate) struct Tracker {
    /// Order id → its newest view and when it was stored (this process's clock).
    orders: Mutex<Bounded<i64, (Arc<OrderView>, Instant)>>,
    carrier: Mutex<Bounded<i64, Carrier>>,
    /// Shipment id → its last warehouse text and the time it was first seen with it.
    seen: Mutex<Bounded<i64, (String, DateTime<Utc>)>>,
    feed: tokio::sync::Mutex<Feed>,
    interval: Duration,
    overlap: Duration,
}

impl Tracker {
    pub(crate) fn new(interval: Duration, overlap: Duration) -> Self {
        Self {
            orders: Mutex::default(),
            carrier: Mutex::default(),
            seen: Mutex::default(),
            feed: tokio::sync::Mutex::default(),
            interval,
            overlap,
        }
    }

    /// The cached view of order `id`.
    pub(crate) fn cached(&self, id: i64) -> Option<Arc<OrderView>> {
        lock(&self.orders)
            .get(&id)
            .map(|(view, _)| Arc::clone(view))
    }

    /// The cached view of order `id` if it was stored at or after `since`: what the change
    /// feed has watched over since `since` is current.
    fn cached_since(&self, id: i64, since: Instant) -> Option<Arc<OrderView>> {
        lock(&self.orders)
            .get(&id)
            .filter(|(_, stored)| *stored >= since)
            .map(|(view, _)| Arc::clone(view))
    }

    /// Stores `view` unless the cache holds a newer one (out-of-order webhooks, a feed page
    /// read before a webhook); returns what the cache holds now.
    pub(crate) fn store(&self, view: OrderView) -> Arc<OrderView> {
        let mut orders = lock(&self.orders);
        if let Some((known, _)) = orders.get(&view.id)
            && known.version() > view.version()
        {
            return Arc::clone(known);
        }
        let view = Arc::new(view);
        orders.put(view.id, (Arc::clone(&view), Instant::now()));
        view
    }

    /// Forgets order `id` (after a change of ours: the next call reads it again).
    pub(crate) fn forget(&self, id: i64) {
        lock(&self.orders).remove(&id);
    }

    /// Forgets the carrier answer of shipment `id`, so that it is read again.
    pub(crate) fn forget_carrier(&self, id: i64) {
        lock(&self.carrier).remove(&id);
    }

    /// The time to report for shipment `id` entering `text` at `at`: the time it was first
    /// seen with that text, so that a shipment whose `last_update_at` moves without a change
    /// of status (an address edit, the tracking-uploaded flag) reports nothing new.
    fn stable_at(&self, id: i64, text: &str, at: DateTime<Utc>) -> DateTime<Utc> {
        let mut seen = lock(&self.seen);
        match seen.get(&id) {
            Some((known, first)) if known == text => *first,
            _ => {
                seen.put(id, (text.to_owned(), at));
                at
            }
        }
    }
}

/// The carrier's answers of one call: per shipment id, what it said, or why it could not be
/// read.
#[derive(Debug, Default)]
pub(crate) struct Carriers {
    pub(crate) known: HashMap<i64, Arc<ShipmentTracking>>,
    pub(crate) failed: HashMap<i64, Error>,
    /// The return orders of shipments the carrier is sending back, by shipment id.
    pub(crate) returns: Returns,
}

/// Return orders by the id of the shipment they return (`original_shipment_id`).
pub(crate) type Returns = HashMap<i64, Vec<Arc<ReturnView>>>;

/// The time to report for a shipment entering a status: `(shipment id, text, time seen)` →
/// the time it was first seen with that text (see [`Tracker`]).
pub(crate) type StableAt<'a> = dyn FnMut(i64, &str, DateTime<Utc>) -> DateTime<Utc> + 'a;

/// A date of a reply: `Ok(None)` when absent, an error when present but unreadable.
fn date(text: Option<&str>, what: &str) -> Result<Option<DateTime<Utc>>> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => wire::parse_time(t).map(Some).ok_or_else(|| {
            Error::protocol(format!(
                "shipbob sent an unreadable {what}: {:?}",
                t.chars().take(40).collect::<String>()
            ))
        }),
    }
}

/// The statuses of one shipment: its warehouse status and, when the carrier answered, the
/// carrier's current status and history (oldest first).
fn shipment_statuses(
    table: &StatusTable,
    shipment: &ShipmentView,
    carrier: Option<&ShipmentTracking>,
    returns: &[Arc<ReturnView>],
    stable_at: &mut StableAt<'_>,
    now: DateTime<Utc>,
) -> Result<Vec<DeliveryStatus>> {
    // When the shipment last changed; replies without `last_update_at` (webhook bodies, short
    // listings) fall back to the carrier's last change, then the creation.
    let updated = date(shipment.last_update_at.as_deref(), "last_update_at")?;
    let tracked = date(
        shipment.last_tracking_update_at.as_deref(),
        "last_tracking_update_at",
    )?;
    let created = date(shipment.created_date.as_deref(), "created_date")?;
    let text = status::shipment_text(shipment);
    let at = stable_at(
        shipment.id,
        &text,
        updated.or(tracked).or(created).unwrap_or(now),
    );
    let mut statuses = vec![status::warehouse_status(table, shipment, at)];
    let Some(carrier) = carrier else {
        return_statuses(table, shipment, returns, stable_at, at, &mut statuses)?;
        return Ok(statuses);
    };
    let label = |mut s: DeliveryStatus| {
        s = status::with_label(s, shipment);
        if let Some(name) = carrier
            .carrier
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
        {
            s.carrier.get_or_insert_with(|| name.into());
        }
        if let Some(number) = carrier
            .carrier_tracking_number
            .as_deref()
            .or(carrier.tracking_id.as_deref())
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            s.carrier_tracking_number
                .get_or_insert_with(|| number.into());
        }
        if let Some(url) = carrier
            .public_tracking_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
        {
            s.tracking_url.get_or_insert_with(|| url.into());
        }
        s
    };
    for event in carrier.history.iter().rev() {
        let Some(at) = date(event.timestamp.as_deref(), "tracking history timestamp")? else {
            continue;
        };
        if let Some(s) = status::carrier_status(table, event, at) {
            statuses.push(label(s));
        }
    }
    let current = TrackingEvent {
        status: carrier.status.clone(),
        substatus: carrier.substatus.clone(),
        message: carrier.message.clone(),
        carrier_message: carrier.carrier_message.clone(),
        location: carrier.location.clone(),
        timestamp: carrier.last_updated.clone(),
    };
    let at = date(current.timestamp.as_deref(), "tracking last_updated")?.unwrap_or(at);
    if let Some(s) = status::carrier_status(table, &current, at).map(label) {
        // The newest history entry usually is the current status itself.
        if !statuses.contains(&s) {
            statuses.push(s);
        }
    }
    return_statuses(table, shipment, returns, stable_at, at, &mut statuses)?;
    Ok(statuses)
}

/// Appends the statuses of the shipment's return orders (`return: RTS/Arrived`, …), each at
/// the time it was first seen with its status: a return's `last_update_at` also moves
/// without a change of status. Their memory is keyed by the negated return id, apart from
/// the shipments' (ShipBob's ids are positive).
fn return_statuses(
    table: &StatusTable,
    shipment: &ShipmentView,
    returns: &[Arc<ReturnView>],
    stable_at: &mut StableAt<'_>,
    fallback: DateTime<Utc>,
    statuses: &mut Vec<DeliveryStatus>,
) -> Result<()> {
    for ret in returns {
        let seen = date(ret.last_update_at.as_deref(), "return last_update_at")?
            .or(date(ret.insert_date.as_deref(), "return insert_date")?)
            .unwrap_or(fallback);
        let Some(mut s) = status::return_status(table, ret, seen) else {
            continue;
        };
        if let Some(id) = ret.id {
            s.at = stable_at(id.saturating_neg(), &s.original, seen);
        }
        statuses.push(status::with_label(s, shipment));
    }
    Ok(())
}

/// The code the record would take from `statuses` alone: the most advanced known code, or
/// `Unknown` when nothing is known.
fn current_code(statuses: &[DeliveryStatus]) -> StatusCode {
    statuses
        .iter()
        .map(|s| s.code)
        .filter(|c| *c != StatusCode::Unknown)
        .max()
        .unwrap_or(StatusCode::Unknown)
}

/// The statuses of `order` for its shipment record (see the module docs for split orders).
///
/// # Errors
///
/// [`Error::Protocol`] when a date of the order cannot be read: the order's update fails,
/// the others of the call do not.
pub(crate) fn order_statuses(
    table: &StatusTable,
    order: &OrderView,
    carrier: &HashMap<i64, Arc<ShipmentTracking>>,
    returns: &Returns,
    stable_at: &mut StableAt<'_>,
    now: DateTime<Utc>,
) -> Result<Vec<DeliveryStatus>> {
    if order.shipments.is_empty() {
        let at = date(order.created_date.as_deref(), "created_date")?.unwrap_or(now);
        let raw = order.status.as_deref().unwrap_or("ImportReview");
        return Ok(vec![status::order_status(table, raw, at)]);
    }
    let mut per_shipment = Vec::with_capacity(order.shipments.len());
    for shipment in &order.shipments {
        let statuses = shipment_statuses(
            table,
            shipment,
            carrier.get(&shipment.id).map(|c| &**c),
            returns.get(&shipment.id).map_or(&[][..], Vec::as_slice),
            stable_at,
            now,
        )?;
        per_shipment.push((current_code(&statuses), statuses));
    }
    if per_shipment.len() == 1 {
        return Ok(per_shipment.pop().map(|(_, s)| s).unwrap_or_default());
    }
    let active: Vec<_> = per_shipment
        .iter()
        .filter(|(code, _)| *code != StatusCode::Cancelled)
        .collect();
    if active.is_empty() {
        return Ok(per_shipment.into_iter().flat_map(|(_, s)| s).collect());
    }
    let slowest = active
        .iter()
        .map(|(code, _)| *code)
        .min()
        .unwrap_or(StatusCode::Unknown);
    Ok(active
        .into_iter()
        .flat_map(|(_, statuses)| statuses.iter())
        .filter(|s| s.code <= slowest)
        .cloned()
        .collect())
}

impl ShipBobProvider {
    /// Brings the cache up to date with the change feed, unless a read that started within
    /// the feed interval before `called` did so; returns whether the cache can be trusted
    /// for this call. After a failed read the feed is left alone for the retry gap (and the
    /// call reads its orders by id): a feed that cannot be read costs one attempt, not one
    /// per call. See the module docs.
    ///
    /// Returns since when stored views can be trusted (when the feed was first read), or `None`
    /// when the feed is not current and every order must be read by id.
    ///
    /// # Errors
    ///
    /// Refused credentials and the rate limit (every other call would meet them too).
    pub(crate) async fn refresh_feed(&self, called: Instant) -> Result<Option<Instant>> {
        let mut feed = self.tracker.feed.lock().await;
        let interval = self.tracker.interval;
        if feed
            .started
            .is_some_and(|started| started + interval >= called)
        {
            return Ok(feed.watching_since);
        }
        if feed
            .failed
            .is_some_and(|failed| failed + interval.max(FEED_RETRY_GAP) > Instant::now())
        {
            return Ok(None);
        }
        let started = Instant::now();
        let local = Utc::now();
        let overlap = chrono::Duration::from_std(self.tracker.overlap).unwrap_or_default();
        let from = wire::query_time(feed.cursor.unwrap_or(local) - overlap);
        let mut server_time = None;
        let mut newest = feed.cursor;
        for filter in ["LastUpdateStartDate", "LastTrackingUpdateStartDate"] {
            let listing = match self
                .client
                .list_orders(&[(filter, from.clone()), ("SortOrder", "Oldest".into())])
                .await
            {
                Ok(listing) => listing,
                Err(error) if super::is_fatal(&error) => return Err(error),
                Err(error) => {
                    tracing::warn!(%error, "shipbob change feed unreadable; reading orders by id");
                    feed.failed = Some(Instant::now());
                    return Ok(None);
                }
            };
            server_time = server_time.or(listing.server_time);
            for order in listing.orders {
                newest = newest.max(order.version());
                self.tracker.store(order);
            }
        }
        // The next read starts at the newest change seen (ShipBob's own timestamps, §5.3),
        // or, before any, at ShipBob's clock when this read began.
        feed.cursor = newest.or(server_time).or(Some(local));
        feed.started = Some(started);
        feed.failed = None;
        Ok(Some(*feed.watching_since.get_or_insert(started)))
    }

    /// Orders `ids` by id (`GET /order?IDs=…`), stored in the cache.
    pub(crate) async fn read_orders(&self, ids: &[i64]) -> Result<HashMap<i64, Arc<OrderView>>> {
        let list: Vec<String> = ids.iter().map(i64::to_string).collect();
        let listing = self.client.list_orders(&[("IDs", list.join(","))]).await?;
        let wanted: HashSet<i64> = ids.iter().copied().collect();
        Ok(listing
            .orders
            .into_iter()
            .filter(|o| wanted.contains(&o.id))
            .map(|o| {
                let view = self.tracker.store(o);
                (view.id, view)
            })
            .collect())
    }

    /// Order `id` by `GET /order/{id}`, stored in the cache.
    pub(crate) async fn read_order(&self, id: i64, what: &str) -> Result<Arc<OrderView>> {
        let request = self.client.get(&["order", &id.to_string()]);
        let (view, _) = self
            .client
            .fetch::<OrderView>(request, Missing::Thing(what))
            .await?;
        Ok(self.tracker.store(view))
    }

    /// The carrier answers for the labelled shipments of `orders`, read again where
    /// `last_tracking_update_at` moved since the last read. A failed read is recorded for
    /// its shipments (their orders' updates fail, and are read again next time); refused
    /// credentials and the rate limit fail the call.
    pub(crate) async fn carrier_statuses(&self, orders: &[Arc<OrderView>]) -> Result<Carriers> {
        let mut known = HashMap::new();
        let mut failed = HashMap::new();
        let mut stale: Vec<(i64, Option<String>)> = Vec::new();
        {
            let cache = lock(&self.tracker.carrier);
            for shipment in orders.iter().flat_map(|o| o.shipments.iter()) {
                if shipment.tracking_number().is_none()
                    || status::editability(shipment) == status::Editability::Cancelled
                {
                    continue;
                }
                match cache.get(&shipment.id) {
                    Some(entry) if entry.key == shipment.last_tracking_update_at => {
                        if let Some(tracking) = &entry.tracking {
                            known.insert(shipment.id, Arc::clone(tracking));
                        }
                    }
                    _ => stale.push((shipment.id, shipment.last_tracking_update_at.clone())),
                }
            }
        }
        stale.sort_by_key(|(id, _)| *id);
        stale.dedup_by_key(|(id, _)| *id);
        for chunk in stale.chunks(CARRIER_BATCH) {
            let ids: Vec<String> = chunk.iter().map(|(id, _)| id.to_string()).collect();
            let request = self
                .client
                .get(&["shipments-tracking"])
                .with_query("ShipmentIds", ids.join(","));
            let answer = self
                .client
                .fetch::<Vec<ShipmentTracking>>(request, Missing::Endpoint)
                .await;
            let rows = match answer {
                Ok((rows, _)) => rows,
                Err(error @ (Error::Unauthenticated { .. } | Error::RateLimited { .. })) => {
                    return Err(error);
                }
                Err(error) => {
                    tracing::warn!(%error, "shipbob carrier tracking could not be read");
                    for (id, _) in chunk {
                        failed.insert(*id, error.clone());
                    }
                    continue;
                }
            };
            let mut by_id: HashMap<i64, Arc<ShipmentTracking>> = rows
                .into_iter()
                .filter_map(|row| row.shipment_id.map(|id| (id, Arc::new(row))))
                .collect();
            let mut cache = lock(&self.tracker.carrier);
            for (id, key) in chunk {
                let tracking = by_id.remove(id);
                if let Some(tracking) = &tracking {
                    known.insert(*id, Arc::clone(tracking));
                }
                cache.put(
                    *id,
                    Carrier {
                        key: key.clone(),
                        tracking,
                    },
                );
            }
        }
        let returns = self.returns_of(&known).await?;
        Ok(Carriers {
            known,
            failed,
            returns,
        })
    }

    /// The return orders of the shipments whose carrier says `Return to sender`
    /// (`GET /return?OriginalShipmentIds=…`, 25 ids a call), so that the parcel's arrival
    /// back at ShipBob is reported (§11.1). Read on every call while the shipment is on its
    /// way back: a return moves without the shipment's timestamps moving. A listing that
    /// fails (a token without `returns_read` answers 403) is logged and skipped: the
    /// shipment's other statuses stand, and the next poll asks again. Refused credentials
    /// and the rate limit fail the call.
    async fn returns_of(&self, known: &HashMap<i64, Arc<ShipmentTracking>>) -> Result<Returns> {
        let mut sent_back: Vec<i64> = known
            .iter()
            .filter(|(_, t)| {
                std::iter::once(t.status.as_deref())
                    .chain(t.history.iter().map(|e| e.status.as_deref()))
                    .flatten()
                    .any(|s| crate::model::normalize_status_key(s) == "returntosender")
            })
            .map(|(id, _)| *id)
            .collect();
        sent_back.sort_unstable();
        let mut returns = Returns::new();
        for chunk in sent_back.chunks(CARRIER_BATCH) {
            let ids: Vec<String> = chunk.iter().map(i64::to_string).collect();
            let request = self
                .client
                .get(&["return"])
                .with_query("OriginalShipmentIds", ids.join(","));
            let rows = match self.client.list_linked::<ReturnView>(request).await {
                Ok(rows) => rows,
                Err(error @ (Error::Unauthenticated { .. } | Error::RateLimited { .. })) => {
                    return Err(error);
                }
                Err(error) => {
                    tracing::warn!(%error, "shipbob return orders could not be read");
                    continue;
                }
            };
            for row in rows {
                if let Some(id) = row.original_shipment_id.filter(|id| chunk.contains(id)) {
                    returns.entry(id).or_default().push(Arc::new(row));
                }
            }
        }
        Ok(returns)
    }

    /// The update for `shipment` from `order`: its statuses, or `Failed` when a date of the
    /// order cannot be read or its carrier statuses could not be fetched.
    pub(crate) fn update_for(
        &self,
        shipment: &ShipmentRef,
        order: &OrderView,
        carrier: &Carriers,
        now: DateTime<Utc>,
    ) -> TrackingUpdate {
        if let Some(error) = order
            .shipments
            .iter()
            .find_map(|s| carrier.failed.get(&s.id))
        {
            return TrackingUpdate::failed(shipment.clone(), error);
        }
        let mut stable_at =
            |id: i64, text: &str, at: DateTime<Utc>| self.tracker.stable_at(id, text, at);
        match order_statuses(
            &self.table,
            order,
            &carrier.known,
            &carrier.returns,
            &mut stable_at,
            now,
        ) {
            Ok(statuses) => TrackingUpdate::Statuses {
                shipment: shipment.clone(),
                statuses,
            },
            Err(error) => {
                tracing::warn!(
                    order_id = %shipment.order_id,
                    shipment = %shipment.provider_ref,
                    %error,
                    "shipbob order cannot be read"
                );
                TrackingUpdate::failed(shipment.clone(), &error)
            }
        }
    }

    /// `track` for one batch (at most `max_track_batch` shipments).
    pub(crate) async fn track_batch(
        &self,
        batch: &[ShipmentRef],
        trusted_since: Option<Instant>,
        now: DateTime<Utc>,
    ) -> Result<Vec<TrackingUpdate>> {
        let mut updates = Vec::with_capacity(batch.len());
        let mut views: HashMap<i64, Arc<OrderView>> = HashMap::new();
        let mut wanted = Vec::with_capacity(batch.len());
        let mut to_read = Vec::new();
        for shipment in batch {
            let Some(id) = super::order_id_of(shipment) else {
                updates.push(TrackingUpdate::NotFound {
                    shipment: shipment.clone(),
                    at: now,
                });
                continue;
            };
            wanted.push((shipment, id));
            match trusted_since.and_then(|since| self.tracker.cached_since(id, since)) {
                Some(view) => {
                    views.insert(id, view);
                }
                None if !to_read.contains(&id) => to_read.push(id),
                None => {}
            }
        }
        let mut failed: Option<Error> = None;
        if !to_read.is_empty() {
            match self.read_orders(&to_read).await {
                Ok(found) => views.extend(found),
                Err(error @ (Error::Unauthenticated { .. } | Error::RateLimited { .. })) => {
                    return Err(error);
                }
                Err(error) => failed = Some(error),
            }
        }
        let orders: Vec<Arc<OrderView>> = views.values().cloned().collect();
        let carrier = self.carrier_statuses(&orders).await?;
        for (shipment, id) in wanted {
            match views.get(&id) {
                Some(order) => updates.push(self.update_for(shipment, order, &carrier, now)),
                None => match &failed {
                    Some(error) if to_read.contains(&id) => {
                        updates.push(TrackingUpdate::failed(shipment.clone(), error));
                    }
                    _ => updates.push(TrackingUpdate::NotFound {
                        shipment: shipment.clone(),
                        at: now,
                    }),
                },
            }
        }
        Ok(updates)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::shipbob::status::status_table;
    use crate::provider::shipbob::wire::{StatusDetail, TrackingInfo};

    fn shipment(id: i64, status: &str, detail: Option<(i64, &str)>, at: &str) -> ShipmentView {
        ShipmentView {
            id,
            status: Some(status.into()),
            status_details: detail
                .map(|(id, name)| StatusDetail {
                    id: Some(id),
                    name: Some(name.into()),
                    description: None,
                })
                .into_iter()
                .collect(),
            last_update_at: Some(at.into()),
            tracking: Some(TrackingInfo {
                carrier: Some("USPS".into()),
                tracking_number: Some(format!("9400{id}")),
                ..TrackingInfo::default()
            }),
            ..ShipmentView::default()
        }
    }

    fn statuses(order: &OrderView) -> Result<Vec<DeliveryStatus>> {
        let mut same = |_: i64, _: &str, at: DateTime<Utc>| at;
        order_statuses(
            &status_table(),
            order,
            &HashMap::new(),
            &HashMap::new(),
            &mut same,
            Utc::now(),
        )
    }

    fn current(order: &OrderView) -> StatusCode {
        current_code(&statuses(order).unwrap())
    }

    #[test]
    fn a_split_order_moves_at_its_slowest_shipments_pace() {
        let mut order = OrderView {
            id: 1,
            shipments: vec![
                shipment(
                    11,
                    "Completed",
                    Some((203, "Delivered")),
                    "2026-09-22T10:00:00Z",
                ),
                shipment(
                    12,
                    "Completed",
                    Some((201, "InTransit")),
                    "2026-09-21T10:00:00Z",
                ),
            ],
            ..OrderView::default()
        };
        assert_eq!(current(&order), StatusCode::InTransit);
        let reported = statuses(&order).unwrap();
        assert!(reported.iter().all(|s| s.code <= StatusCode::InTransit));
        // The parcel the status is about is named by its tracking number.
        assert_eq!(
            reported[0].carrier_tracking_number.as_deref(),
            Some("940012")
        );
        order.shipments[1] = shipment(
            12,
            "Completed",
            Some((203, "Delivered")),
            "2026-09-23T10:00:00Z",
        );
        assert_eq!(current(&order), StatusCode::Delivered);
        assert_eq!(statuses(&order).unwrap().len(), 2);
        // A cancelled part is ignored; all cancelled is cancelled.
        order.shipments[1] = shipment(12, "Cancelled", None, "2026-09-23T10:00:00Z");
        assert_eq!(current(&order), StatusCode::Delivered);
        order.shipments[0] = shipment(11, "Cancelled", None, "2026-09-23T10:00:00Z");
        assert_eq!(current(&order), StatusCode::Cancelled);
    }

    #[test]
    fn an_unreadable_date_fails_the_order_only() {
        let order = OrderView {
            id: 1,
            shipments: vec![shipment(11, "Processing", None, "the 5th of never")],
            ..OrderView::default()
        };
        let err = statuses(&order).unwrap_err();
        assert!(matches!(err, Error::Protocol { .. }), "{err}");
        let none = OrderView {
            id: 2,
            status: Some("ImportReview".into()),
            ..OrderView::default()
        };
        assert_eq!(current(&none), StatusCode::Registered);
    }

    #[test]
    fn carrier_history_comes_oldest_first_with_the_label() {
        let order = OrderView {
            id: 1,
            shipments: vec![shipment(
                11,
                "Completed",
                Some((201, "InTransit")),
                "2026-09-21T18:02:00Z",
            )],
            ..OrderView::default()
        };
        let carrier: HashMap<i64, Arc<ShipmentTracking>> = [(
            11,
            Arc::new(ShipmentTracking {
                shipment_id: Some(11),
                status: Some("InTransit".into()),
                substatus: Some("OutForDelivery".into()),
                last_updated: Some("2026-09-23T08:10:00Z".into()),
                public_tracking_url: Some("https://t.example/1".into()),
                history: vec![
                    TrackingEvent {
                        status: Some("InTransit".into()),
                        substatus: Some("OutForDelivery".into()),
                        timestamp: Some("2026-09-23T08:10:00Z".into()),
                        ..TrackingEvent::default()
                    },
                    TrackingEvent {
                        status: Some("InTransit".into()),
                        substatus: Some("ArrivedAtFacility".into()),
                        timestamp: Some("2026-09-22T22:00:00Z".into()),
                        ..TrackingEvent::default()
                    },
                ],
                ..ShipmentTracking::default()
            }),
        )]
        .into();
        let mut same = |_: i64, _: &str, at: DateTime<Utc>| at;
        let all = order_statuses(
            &status_table(),
            &order,
            &carrier,
            &HashMap::new(),
            &mut same,
            Utc::now(),
        )
        .unwrap();
        let texts: Vec<_> = all.iter().map(|s| s.original.as_str()).collect();
        assert_eq!(
            texts,
            [
                "Completed/InTransit (201)",
                "tracking: InTransit/ArrivedAtFacility",
                "tracking: InTransit/OutForDelivery"
            ]
        );
        assert_eq!(all[2].code, StatusCode::OnDelivery);
        assert_eq!(all[2].tracking_url.as_deref(), Some("https://t.example/1"));
        assert_eq!(all[2].carrier.as_deref(), Some("USPS"));
    }

    #[test]
    fn a_status_keeps_the_time_it_was_first_seen() {
        let tracker = Tracker::new(Duration::ZERO, Duration::ZERO);
        let t = |h| {
            DateTime::parse_from_rfc3339(&format!("2026-09-21T{h:02}:00:00Z"))
                .unwrap()
                .to_utc()
        };
        assert_eq!(tracker.stable_at(1, "Processing", t(1)), t(1));
        assert_eq!(tracker.stable_at(1, "Processing", t(2)), t(1));
        assert_eq!(tracker.stable_at(1, "OnHold", t(3)), t(3));
        assert_eq!(tracker.stable_at(1, "Processing", t(4)), t(4));
    }

    #[test]
    fn the_cache_keeps_the_newer_view() {
        let tracker = Tracker::new(Duration::ZERO, Duration::ZERO);
        let view = |at: &str, status: &str| OrderView {
            id: 7,
            shipments: vec![shipment(70, status, None, at)],
            ..OrderView::default()
        };
        tracker.store(view("2026-09-21T10:00:00Z", "Processing"));
        let kept = tracker.store(view("2026-09-21T09:00:00Z", "None"));
        assert_eq!(kept.shipments[0].status.as_deref(), Some("Processing"));
        tracker.store(view("2026-09-21T11:00:00Z", "LabeledCreated"));
        assert_eq!(
            tracker.cached(7).unwrap().shipments[0].status.as_deref(),
            Some("LabeledCreated")
        );
        tracker.forget(7);
        assert!(tracker.cached(7).is_none());
    }
}
