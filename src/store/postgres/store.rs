//! The [`Store`] methods of [`PgStore`]: parameters in, rows out. The SQL is in `sql.rs`.

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::{PgStore, db_error, unreadable};
use crate::error::{Error, Result};
use crate::model::{Event, EventId, OrderException, OrderId, StatusCode, Waybill};
use crate::store::{
    DuePosition, DueQuery, Effects, ExceptionCursor, ExceptionFilter, ExportState, HistoryWrite,
    Lease, ShipmentRecord, Store, TrackingWrite, TrackingWriteOutcome,
};

/// A count or a limit as SQL's bigint.
fn big(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn version_to_sql(version: u64, order_id: &OrderId) -> Result<i64> {
    i64::try_from(version).map_err(|e| {
        unreadable(
            format!("write the version of the shipment record of order {order_id}"),
            e,
        )
    })
}

fn json<T: serde::Serialize + ?Sized>(value: &T, what: &str) -> Result<String> {
    serde_json::to_string(value).map_err(|e| unreadable(format!("serialize {what}"), e))
}

fn parse<T: DeserializeOwned>(text: &str, what: impl Into<String>) -> Result<T> {
    serde_json::from_str(text).map_err(|e| unreadable(what, e))
}

/// The columns a record's row is filtered and sorted on, and its JSON.
struct RecordRow {
    instance: String,
    version: i64,
    export_state: &'static str,
    pending_update: bool,
    cod: bool,
    active: bool,
    next_poll_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
    json: String,
}

impl RecordRow {
    fn of(record: &ShipmentRecord) -> Result<Self> {
        Ok(Self {
            instance: record.instance.as_str().to_owned(),
            version: version_to_sql(record.version, &record.order_id)?,
            export_state: match record.export {
                ExportState::Exporting { .. } => "exporting",
                ExportState::Exported { .. } => "exported",
                ExportState::Failed { .. } => "failed",
            },
            pending_update: record.pending_update.is_some(),
            cod: record.order.payment.is_cash_on_delivery(),
            active: record.is_active(),
            next_poll_at: record.next_poll_at,
            updated_at: record.updated_at,
            json: record_json(record)?,
        })
    }
}

/// The fields of a record that are columns, not kept in its `record` JSON.
const COLUMN_FIELDS: [&str; 3] = ["version", "next_poll_at", "updated_at"];

/// The `record` column: the record's JSON without [`COLUMN_FIELDS`].
fn record_json(record: &ShipmentRecord) -> Result<String> {
    let what = || format!("serialize the shipment record of order {}", record.order_id);
    let mut value = serde_json::to_value(record).map_err(|e| unreadable(what(), e))?;
    if let Some(fields) = value.as_object_mut() {
        for field in COLUMN_FIELDS {
            fields.remove(field);
        }
    }
    serde_json::to_string(&value).map_err(|e| unreadable(what(), e))
}

/// A row of `version, record` as a record.
fn record_from(row: &PgRow) -> Result<ShipmentRecord> {
    let what = "read a shipment record";
    let version: i64 = row.try_get(0).map_err(db_error(what))?;
    let text: String = row.try_get(1).map_err(db_error(what))?;
    let mut record: ShipmentRecord = parse(&text, what)?;
    record.version = u64::try_from(version).map_err(|e| unreadable(what, e))?;
    Ok(record)
}

/// Events as the arrays the SQL unnests. One id appears once: the last write of it wins, as
/// the same id written twice is one event.
#[derive(Default)]
struct EventArrays {
    /// For tracking writes: the order of the write each event belongs to.
    write_order: Vec<String>,
    id: Vec<String>,
    order_id: Vec<Option<String>>,
    occurred_at: Vec<DateTime<Utc>>,
    json: Vec<String>,
}

impl EventArrays {
    fn of<'a>(events: impl DoubleEndedIterator<Item = (&'a str, &'a Event)>) -> Result<Self> {
        let mut seen = HashSet::new();
        let mut arrays = Self::default();
        // Walk from the end to keep each id's last write, then restore the order.
        for (write_order, event) in events.rev() {
            if !seen.insert(event.id.as_str()) {
                continue;
            }
            arrays.write_order.push(write_order.to_owned());
            arrays.id.push(event.id.as_str().to_owned());
            arrays
                .order_id
                .push(event.order_id.as_ref().map(|o| o.as_str().to_owned()));
            arrays.occurred_at.push(event.occurred_at);
            arrays.json.push(json(event, "an event")?);
        }
        arrays.write_order.reverse();
        arrays.id.reverse();
        arrays.order_id.reverse();
        arrays.occurred_at.reverse();
        arrays.json.reverse();
        Ok(arrays)
    }
}

/// The exception of an effect as its columns (all NULL without one).
struct ExceptionRow {
    order_id: Option<String>,
    seq: Option<i64>,
    instance: Option<String>,
    open: Option<bool>,
    detected_at: Option<DateTime<Utc>>,
    json: Option<String>,
}

impl ExceptionRow {
    fn of(exception: Option<&OrderException>) -> Result<Self> {
        Ok(match exception {
            None => Self {
                order_id: None,
                seq: None,
                instance: None,
                open: None,
                detected_at: None,
                json: None,
            },
            Some(e) => Self {
                order_id: Some(e.order_id.as_str().to_owned()),
                seq: Some(i64::from(e.seq)),
                instance: Some(e.instance.as_str().to_owned()),
                open: Some(e.is_open()),
                detected_at: Some(e.detected_at),
                json: Some(json(e, &format!("the exception of order {}", e.order_id))?),
            },
        })
    }
}

impl PgStore {
    /// Runs `insert` or `update` (same parameters; `expected` only for `update`).
    async fn write(
        &self,
        sql: &str,
        record: &ShipmentRecord,
        effects: &Effects,
        expected: Option<i64>,
        what: &str,
    ) -> Result<PgRow> {
        let row = RecordRow::of(record)?;
        let events = EventArrays::of(effects.events.iter().map(|e| (record.order_id.as_str(), e)))?;
        let exception = ExceptionRow::of(effects.exception.as_ref())?;
        sqlx::query(sql)
            .bind(record.order_id.as_str())
            .bind(row.instance)
            .bind(row.version)
            .bind(row.export_state)
            .bind(row.pending_update)
            .bind(row.cod)
            .bind(row.active)
            .bind(row.next_poll_at)
            .bind(row.updated_at)
            .bind(row.json)
            .bind(events.id)
            .bind(events.order_id)
            .bind(events.occurred_at)
            .bind(events.json)
            .bind(exception.order_id)
            .bind(exception.seq)
            .bind(exception.instance)
            .bind(exception.open)
            .bind(exception.detected_at)
            .bind(exception.json)
            .bind(expected)
            .fetch_one(self.trip())
            .await
            .map_err(db_error(what))
    }

    /// A page of records of a listing query.
    async fn page(
        &self,
        sql: &str,
        after: Option<&OrderId>,
        limit: usize,
        what: &str,
    ) -> Result<Vec<ShipmentRecord>> {
        sqlx::query(sql)
            .bind(after.map(OrderId::as_str))
            .bind(big(limit))
            .fetch_all(self.trip())
            .await
            .map_err(db_error(what))?
            .iter()
            .map(record_from)
            .collect()
    }

    /// Exceptions from rows of `exception`.
    async fn exceptions(
        &self,
        query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
        what: &str,
    ) -> Result<Vec<OrderException>> {
        query
            .fetch_all(self.trip())
            .await
            .map_err(db_error(what))?
            .iter()
            .map(|row| {
                let text: String = row.try_get(0).map_err(db_error(what))?;
                parse(&text, what)
            })
            .collect()
    }

    /// One `apply_tracking` statement: writes with distinct orders.
    async fn apply_distinct(&self, writes: &[TrackingWrite]) -> Result<Vec<TrackingWriteOutcome>> {
        let what = "apply tracking results";
        let n = writes.len();
        let mut order_id = Vec::with_capacity(n);
        let mut version = Vec::with_capacity(n);
        let mut patch = Vec::with_capacity(n);
        let mut append = Vec::with_capacity(n);
        let mut next_poll_at = Vec::with_capacity(n);
        let mut stopped = Vec::with_capacity(n);
        let mut terminal = Vec::with_capacity(n);
        let mut delivered = Vec::with_capacity(n);
        let mut updated_at = Vec::with_capacity(n);
        for w in writes {
            order_id.push(w.order_id.as_str().to_owned());
            version.push(version_to_sql(w.version, &w.order_id)?);
            let mut fields = serde_json::Map::new();
            let mut put = |key: &str, value: serde_json::Result<serde_json::Value>| -> Result<()> {
                let value = value
                    .map_err(|e| unreadable(format!("serialize tracking of {}", w.order_id), e))?;
                fields.insert(key.to_owned(), value);
                Ok(())
            };
            if let Some(status) = &w.current_status {
                put("current_status", serde_json::to_value(status))?;
            }
            if let Some(status) = &w.last_reported {
                put("last_reported", serde_json::to_value(status))?;
            }
            put(
                "tracking_stopped",
                Ok(serde_json::Value::Bool(w.tracking_stopped)),
            )?;
            match &w.history {
                HistoryWrite::Keep => append.push(None),
                HistoryWrite::Append(statuses) => {
                    append.push(Some(json(statuses, "appended statuses")?));
                }
                HistoryWrite::Replace(history) => {
                    put("history", serde_json::to_value(history))?;
                    append.push(None);
                }
            }
            patch.push(json(&fields, "a tracking result")?);
            next_poll_at.push(w.next_poll_at);
            stopped.push(w.tracking_stopped);
            let code = w.current_status.as_ref().map(|s| s.code);
            terminal.push(code.is_some_and(StatusCode::is_terminal));
            delivered.push(code == Some(StatusCode::Delivered));
            updated_at.push(w.updated_at);
        }
        let events = EventArrays::of(
            writes
                .iter()
                .flat_map(|w| w.events.iter().map(move |e| (w.order_id.as_str(), e)))
                .collect::<Vec<_>>()
                .into_iter(),
        )?;
        let rows = sqlx::query(&self.tables.queries.apply_tracking)
            .bind(order_id)
            .bind(version)
            .bind(patch)
            .bind(append)
            .bind(next_poll_at)
            .bind(stopped)
            .bind(terminal)
            .bind(delivered)
            .bind(updated_at)
            .bind(events.write_order)
            .bind(events.id)
            .bind(events.order_id)
            .bind(events.occurred_at)
            .bind(events.json)
            .fetch_all(self.trip())
            .await
            .map_err(db_error(what))?;
        rows.iter()
            .map(|row| {
                let version: Option<i64> = row.try_get(0).map_err(db_error(what))?;
                let found: bool = row.try_get(1).map_err(db_error(what))?;
                Ok(match version {
                    Some(v) => TrackingWriteOutcome::Written {
                        version: u64::try_from(v).map_err(|e| unreadable(what, e))?,
                    },
                    None if found => TrackingWriteOutcome::Conflict,
                    None => TrackingWriteOutcome::NotFound,
                })
            })
            .collect()
    }
}

#[async_trait]
impl Store for PgStore {
    async fn get(&self, order_id: &OrderId) -> Result<Option<ShipmentRecord>> {
        let what = format!("read the shipment record of order {order_id}");
        sqlx::query(&self.tables.queries.get)
            .bind(order_id.as_str())
            .fetch_optional(self.trip())
            .await
            .map_err(db_error(&what))?
            .as_ref()
            .map(record_from)
            .transpose()
    }

    async fn insert(&self, record: ShipmentRecord, effects: Effects) -> Result<bool> {
        let what = format!("insert the shipment record of order {}", record.order_id);
        let row = self
            .write(&self.tables.queries.insert, &record, &effects, None, &what)
            .await?;
        let inserted: i64 = row.try_get(0).map_err(db_error(&what))?;
        Ok(inserted > 0)
    }

    async fn update(&self, mut record: ShipmentRecord, effects: Effects) -> Result<ShipmentRecord> {
        let what = format!("update the shipment record of order {}", record.order_id);
        let expected = version_to_sql(record.version, &record.order_id)?;
        record.version += 1;
        let row = self
            .write(
                &self.tables.queries.update,
                &record,
                &effects,
                Some(expected),
                &what,
            )
            .await?;
        let written: i64 = row.try_get(0).map_err(db_error(&what))?;
        let found: Option<i64> = row.try_get(1).map_err(db_error(&what))?;
        match (written, found) {
            (1.., _) => Ok(record),
            (_, None) => Err(Error::NotFound {
                what: format!("shipment record of order {}", record.order_id),
            }),
            (_, Some(_)) => Err(Error::Conflict {
                message: format!(
                    "shipment record of order {} changed (version {expected} is no longer current)",
                    record.order_id
                ),
            }),
        }
    }

    async fn list_failed(
        &self,
        after: Option<&OrderId>,
        limit: usize,
    ) -> Result<Vec<ShipmentRecord>> {
        self.page(
            &self.tables.queries.list_failed,
            after,
            limit,
            "list failed exports",
        )
        .await
    }

    async fn list_exporting(
        &self,
        after: Option<&OrderId>,
        limit: usize,
    ) -> Result<Vec<ShipmentRecord>> {
        self.page(
            &self.tables.queries.list_exporting,
            after,
            limit,
            "list unfinished exports",
        )
        .await
    }

    async fn list_pending_updates(
        &self,
        after: Option<&OrderId>,
        limit: usize,
    ) -> Result<Vec<ShipmentRecord>> {
        self.page(
            &self.tables.queries.list_pending_updates,
            after,
            limit,
            "list pending updates",
        )
        .await
    }

    async fn claim_due(&self, query: &DueQuery) -> Result<Vec<ShipmentRecord>> {
        let what = format!("claim due shipments of instance {}", query.instance);
        let queries = &self.tables.queries;
        let sql = match query.after {
            Some(_) => &queries.claim_due_after,
            None => &queries.claim_due,
        };
        let mut q = sqlx::query(sql)
            .bind(query.instance.as_str())
            .bind(query.now)
            .bind(query.lease.owner.as_str())
            .bind(query.lease.until)
            .bind(big(query.limit));
        if let Some(after) = &query.after {
            q = q.bind(after.due).bind(after.order_id.as_str());
        }
        let mut records = q
            .fetch_all(self.trip())
            .await
            .map_err(db_error(&what))?
            .iter()
            .map(record_from)
            .collect::<Result<Vec<_>>>()?;
        records.sort_by_cached_key(DuePosition::of);
        Ok(records)
    }

    async fn apply_tracking(
        &self,
        writes: Vec<TrackingWrite>,
    ) -> Result<Vec<TrackingWriteOutcome>> {
        // One statement per run of distinct orders (a provider answer names each shipment
        // once, so normally one); a repeated order goes to the next statement, after the
        // first write of it, as the contract applies writes in order.
        let mut outcomes = vec![TrackingWriteOutcome::NotFound; writes.len()];
        let mut left: Vec<usize> = (0..writes.len()).collect();
        while !left.is_empty() {
            let mut seen = HashSet::new();
            let (now, later): (Vec<usize>, Vec<usize>) = left
                .iter()
                .partition(|&&i| seen.insert(writes[i].order_id.as_str()));
            let batch: Vec<TrackingWrite> = now.iter().map(|&i| writes[i].clone()).collect();
            for (i, outcome) in now.iter().zip(self.apply_distinct(&batch).await?) {
                outcomes[*i] = outcome;
            }
            left = later;
        }
        Ok(outcomes)
    }

    async fn release_claims(&self, owner: &str, order_ids: &[OrderId]) -> Result<()> {
        let ids: Vec<&str> = order_ids.iter().map(OrderId::as_str).collect();
        sqlx::query(&self.tables.queries.release_claims)
            .bind(owner)
            .bind(ids)
            .execute(self.trip())
            .await
            .map_err(db_error("release tracking claims"))?;
        Ok(())
    }

    async fn acquire_order_lease(
        &self,
        order_id: &OrderId,
        lease: &Lease,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let taken = sqlx::query(&self.tables.queries.acquire_order_lease)
            .bind(order_id.as_str())
            .bind(lease.owner.as_str())
            .bind(lease.until)
            .bind(now)
            .fetch_optional(self.trip())
            .await
            .map_err(db_error(format!("take the edit lease of order {order_id}")))?;
        Ok(taken.is_some())
    }

    async fn release_order_lease(&self, order_id: &OrderId, owner: &str) -> Result<()> {
        sqlx::query(&self.tables.queries.release_order_lease)
            .bind(order_id.as_str())
            .bind(owner)
            .execute(self.trip())
            .await
            .map_err(db_error(format!(
                "release the edit lease of order {order_id}"
            )))?;
        Ok(())
    }

    async fn save_waybill(&self, order_id: &OrderId, waybill: Waybill) -> Result<()> {
        let text = json(&waybill, &format!("the waybill of order {order_id}"))?;
        sqlx::query(&self.tables.queries.save_waybill)
            .bind(order_id.as_str())
            .bind(text)
            .execute(self.trip())
            .await
            .map_err(db_error(format!("save the waybill of order {order_id}")))?;
        Ok(())
    }

    async fn waybill(&self, order_id: &OrderId) -> Result<Option<Waybill>> {
        let what = format!("read the waybill of order {order_id}");
        let row = sqlx::query(&self.tables.queries.waybill)
            .bind(order_id.as_str())
            .fetch_optional(self.trip())
            .await
            .map_err(db_error(&what))?;
        row.map(|row| {
            let text: String = row.try_get(0).map_err(db_error(&what))?;
            parse(&text, &what)
        })
        .transpose()
    }

    async fn exception(&self, order_id: &OrderId) -> Result<Option<OrderException>> {
        let query = sqlx::query(&self.tables.queries.exception).bind(order_id.as_str());
        Ok(self
            .exceptions(query, &format!("read the exception of order {order_id}"))
            .await?
            .pop())
    }

    async fn exception_history(&self, order_id: &OrderId) -> Result<Vec<OrderException>> {
        let query = sqlx::query(&self.tables.queries.exception_history).bind(order_id.as_str());
        self.exceptions(query, &format!("read the exceptions of order {order_id}"))
            .await
    }

    async fn list_exceptions(
        &self,
        filter: &ExceptionFilter,
        after: Option<&ExceptionCursor>,
        limit: usize,
    ) -> Result<Vec<OrderException>> {
        let query = sqlx::query(&self.tables.queries.list_exceptions)
            .bind(filter.open)
            .bind(filter.instance.as_ref().map(|i| i.as_str()))
            .bind(filter.since)
            .bind(filter.until)
            .bind(after.map(|c| c.order_id.as_str()))
            .bind(after.map(|c| i64::from(c.seq)))
            .bind(big(limit));
        self.exceptions(query, "list exceptions").await
    }

    async fn pending_events(&self, before: DateTime<Utc>, limit: usize) -> Result<Vec<Event>> {
        let what = "list undelivered events";
        sqlx::query(&self.tables.queries.pending_events)
            .bind(before)
            .bind(big(limit))
            .fetch_all(self.trip())
            .await
            .map_err(db_error(what))?
            .iter()
            .map(|row| {
                let text: String = row.try_get(0).map_err(db_error(what))?;
                parse(&text, what)
            })
            .collect()
    }

    async fn mark_delivered(&self, ids: &[EventId]) -> Result<()> {
        let ids: Vec<&str> = ids.iter().map(EventId::as_str).collect();
        sqlx::query(&self.tables.queries.mark_delivered)
            .bind(ids)
            .execute(self.trip())
            .await
            .map_err(db_error("mark events delivered"))?;
        Ok(())
    }
}
