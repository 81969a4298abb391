//! The SQL text of every [`PgStore`](super::PgStore) query, with the host's table names put
//! in once when the store is built (queries are runtime strings: nothing needs a database at
//! build time).

/// Replaces `{t}` (qualified table prefix) and `{p}` (unqualified prefix, for index names).
pub(super) fn with_tables(sql: &str, qualified: &str, prefix: &str) -> String {
    sql.replace("{t}", qualified).replace("{p}", prefix)
}

/// The events of a write, from arrays `$e..$e+3` (ids, order ids, occurred at, JSON), in
/// their order, stored only when `cond` holds. The same id written again is one event, moved
/// to the end of the outbox.
fn events_cte(first: usize, cond: &str) -> String {
    let [a, b, c, d] = [first, first + 1, first + 2, first + 3];
    format!(
        "ev AS (
            INSERT INTO {{t}}events (id, order_id, occurred_at, event)
            SELECT e.id, e.order_id, e.occurred_at, e.event::jsonb
            FROM UNNEST(${a}::text[], ${b}::text[], ${c}::timestamptz[], ${d}::text[])
                WITH ORDINALITY AS e(id, order_id, occurred_at, event, n)
            WHERE {cond}
            ORDER BY e.n
            ON CONFLICT (id) DO UPDATE SET seq = nextval('{{t}}events_seq'),
                order_id = excluded.order_id, occurred_at = excluded.occurred_at,
                event = excluded.event
        )"
    )
}

/// The exception of a write (`$15..$20`), stored (or replacing the one with its seq) when
/// `$20` is set and `cond` holds.
fn exception_cte(cond: &str) -> String {
    format!(
        "ex AS (
            INSERT INTO {{t}}exceptions (order_id, seq, instance, open, detected_at, exception)
            SELECT $15::text, $16::bigint, $17::text, $18::boolean, $19::timestamptz, $20::jsonb
            WHERE $20::text IS NOT NULL AND {cond}
            ON CONFLICT (order_id, seq) DO UPDATE SET instance = excluded.instance,
                open = excluded.open, detected_at = excluded.detected_at,
                exception = excluded.exception
        )"
    )
}

/// `insert`: `$1..$10` the record's columns, `$11..$14` events, `$15..$20` exception. Returns
/// the number of records inserted (0 or 1).
pub(super) fn insert() -> String {
    format!(
        "WITH rec AS (
            INSERT INTO {{t}}shipments (order_id, instance, version, export_state,
                pending_update, cod, active, next_poll_at, updated_at, record)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb)
            ON CONFLICT (order_id) DO NOTHING
            RETURNING order_id
        ), {events}, {exception}
        SELECT count(*) FROM rec",
        events = events_cte(11, "EXISTS (SELECT 1 FROM rec)"),
        exception = exception_cte("EXISTS (SELECT 1 FROM rec)"),
    )
}

/// `update`: as [`insert`], `$3` the new version, `$21` the expected one. Returns the number
/// of records written and the version read (NULL: no record).
pub(super) fn update() -> String {
    format!(
        "WITH cur AS (
            SELECT version FROM {{t}}shipments WHERE order_id = $1
        ), rec AS (
            UPDATE {{t}}shipments SET instance = $2, version = $3, export_state = $4,
                pending_update = $5, cod = $6, active = $7, next_poll_at = $8,
                updated_at = $9, record = $10::jsonb
            WHERE order_id = $1 AND version = $21
            RETURNING order_id
        ), {events}, {exception}
        SELECT (SELECT count(*) FROM rec), (SELECT version FROM cur)",
        events = events_cte(11, "EXISTS (SELECT 1 FROM rec)"),
        exception = exception_cte("EXISTS (SELECT 1 FROM rec)"),
    )
}

/// The whole record as JSON: the `record` column holds every field but the three that change
/// on every poll, which are columns (so a poll that learns nothing rewrites no JSON).
macro_rules! whole_record {
    ($row:literal) => {
        concat!(
            "(",
            $row,
            "record || jsonb_build_object('version', ",
            $row,
            "version, 'next_poll_at', ",
            $row,
            "next_poll_at, 'updated_at', ",
            $row,
            "updated_at))::text"
        )
    };
}

pub(super) const GET: &str = concat!(
    "SELECT version, ",
    whole_record!(""),
    " FROM {t}shipments WHERE order_id = $1"
);

/// A page of records passing `filter`, after `$1` (NULL: from the start), at most `$2`.
pub(super) fn listing(filter: &str) -> String {
    format!(
        "SELECT version, {record} FROM {{t}}shipments
         WHERE {filter} AND ($1::text IS NULL OR order_id > $1::text COLLATE \"C\")
         ORDER BY order_id LIMIT $2",
        record = whole_record!("")
    )
}

/// Claims due shipments: `$1` instance, `$2` now, `$3` owner, `$4` lease end, `$5` limit,
/// and with `after`, `$6` its due time (NULL: "as soon as possible") and `$7` its order.
/// `due_key` puts "as soon as possible" first as `-infinity`, so the position is one
/// indexable row comparison. Rows another claimer is locking are skipped, not waited for.
pub(super) fn claim_due(after: bool) -> String {
    let after = if after {
        "AND (due_key, order_id) > (coalesce($6::timestamptz, '-infinity'), $7::text COLLATE \"C\")"
    } else {
        ""
    };
    format!(
        "WITH picked AS (
            SELECT order_id FROM {{t}}shipments
            WHERE active AND instance = $1 AND due_key <= $2 {after}
              AND (claim_owner IS NULL OR claim_owner = $3 OR claim_until <= $2)
            ORDER BY due_key, order_id
            LIMIT $5
            FOR UPDATE SKIP LOCKED
        )
        UPDATE {{t}}shipments s SET claim_owner = $3, claim_until = $4
        FROM picked WHERE s.order_id = picked.order_id
        RETURNING s.version, {record}",
        record = whole_record!("s.")
    )
}

/// Tracking writes, one per order, from arrays: `$1` order, `$2` expected version, `$3` JSON
/// patch of the tracking fields, `$4` statuses to append (NULL: none), `$5` next poll,
/// `$6` stopped, `$7` current code terminal, `$8` current code delivered, `$9` updated at;
/// events `$10..$14` (the write's order first). Returns, per write, the new version (NULL:
/// not written) and whether the record exists.
pub(super) const APPLY_TRACKING: &str = "WITH w AS (
            SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::text[],
                $5::timestamptz[], $6::boolean[], $7::boolean[], $8::boolean[],
                $9::timestamptz[]) WITH ORDINALITY
            AS w(order_id, version, patch, append, next_poll_at, stopped, terminal,
                 delivered, updated_at, ord)
        ), upd AS (
            UPDATE {t}shipments s SET
                -- A poll that learned nothing leaves the JSON as it is (not rewritten).
                record = CASE
                    WHEN w.append IS NULL
                        AND w.patch::jsonb->'history' IS NULL
                        AND s.record->'current_status' IS NOT DISTINCT FROM w.patch::jsonb->'current_status'
                        AND s.record->'last_reported' IS NOT DISTINCT FROM w.patch::jsonb->'last_reported'
                        AND s.record->'tracking_stopped' IS NOT DISTINCT FROM w.patch::jsonb->'tracking_stopped'
                    THEN s.record
                    WHEN w.append IS NULL
                    THEN (s.record - '{current_status,last_reported}'::text[]) || w.patch::jsonb
                    ELSE jsonb_set(
                        (s.record - '{current_status,last_reported}'::text[]) || w.patch::jsonb,
                        '{history}',
                        coalesce(s.record->'history', '[]'::jsonb) || w.append::jsonb)
                END,
                version = s.version + 1,
                next_poll_at = w.next_poll_at,
                active = s.export_state = 'exported' AND NOT w.stopped
                    AND NOT (w.terminal OR (w.delivered AND NOT s.cod)),
                claim_owner = NULL,
                claim_until = NULL,
                updated_at = w.updated_at
            FROM w
            WHERE s.order_id = w.order_id AND s.version = w.version
            RETURNING s.order_id, s.version
        ), ev AS (
            INSERT INTO {t}events (id, order_id, occurred_at, event)
            SELECT e.id, e.order_id, e.occurred_at, e.event::jsonb
            FROM UNNEST($10::text[], $11::text[], $12::text[], $13::timestamptz[], $14::text[])
                WITH ORDINALITY AS e(write_order, id, order_id, occurred_at, event, n)
            JOIN upd ON upd.order_id = e.write_order
            ORDER BY e.n
            ON CONFLICT (id) DO UPDATE SET seq = nextval('{t}events_seq'),
                order_id = excluded.order_id, occurred_at = excluded.occurred_at,
                event = excluded.event
        )
        SELECT upd.version,
               EXISTS (SELECT 1 FROM {t}shipments x WHERE x.order_id = w.order_id)
        FROM w LEFT JOIN upd ON upd.order_id = w.order_id
        ORDER BY w.ord";

pub(super) const RELEASE_CLAIMS: &str =
    "UPDATE {t}shipments SET claim_owner = NULL, claim_until = NULL
     WHERE order_id = ANY($2::text[]) AND claim_owner = $1";

/// Takes the lease when free, expired or the owner's own; returns a row when taken.
pub(super) const ACQUIRE_ORDER_LEASE: &str =
    "INSERT INTO {t}order_leases AS l (order_id, owner, until) VALUES ($1, $2, $3)
     ON CONFLICT (order_id) DO UPDATE SET owner = excluded.owner, until = excluded.until
     WHERE l.owner = excluded.owner OR l.until <= $4
     RETURNING 1";

pub(super) const RELEASE_ORDER_LEASE: &str =
    "DELETE FROM {t}order_leases WHERE order_id = $1 AND owner = $2";

pub(super) const SAVE_WAYBILL: &str =
    "INSERT INTO {t}waybills (order_id, waybill) VALUES ($1, $2::jsonb)
     ON CONFLICT (order_id) DO UPDATE SET waybill = excluded.waybill";

pub(super) const WAYBILL: &str = "SELECT waybill::text FROM {t}waybills WHERE order_id = $1";

pub(super) const EXCEPTION: &str =
    "SELECT exception::text FROM {t}exceptions WHERE order_id = $1 ORDER BY seq DESC LIMIT 1";

pub(super) const EXCEPTION_HISTORY: &str =
    "SELECT exception::text FROM {t}exceptions WHERE order_id = $1 ORDER BY seq";

/// `$1` open, `$2` instance, `$3` since, `$4` until, `$5`/`$6` cursor, `$7` limit.
pub(super) const LIST_EXCEPTIONS: &str = "SELECT exception::text FROM {t}exceptions
     WHERE ($1::boolean IS NULL OR open = $1)
       AND ($2::text IS NULL OR instance = $2)
       AND ($3::timestamptz IS NULL OR detected_at >= $3)
       AND ($4::timestamptz IS NULL OR detected_at < $4)
       AND ($5::text IS NULL OR (order_id, seq) > ($5::text COLLATE \"C\", $6::bigint))
     ORDER BY order_id, seq LIMIT $7";

pub(super) const PENDING_EVENTS: &str =
    "SELECT event::text FROM {t}events WHERE occurred_at < $1 ORDER BY seq LIMIT $2";

pub(super) const MARK_DELIVERED: &str = "DELETE FROM {t}events WHERE id = ANY($1::text[])";

/// One request reserved from a shared budget (GCRA on the database's clock): `$1` key, `$2`
/// emission interval and `$3` burst window in microseconds. Returns how many microseconds to
/// wait before sending (negative or zero: at once).
pub(super) const RESERVE_REQUEST: &str = "INSERT INTO {t}rate_budgets AS b (key, tat)
     VALUES ($1, now() + $2 * interval '1 microsecond')
     ON CONFLICT (key) DO UPDATE
         SET tat = greatest(b.tat, now()) + $2 * interval '1 microsecond'
     RETURNING (extract(epoch FROM (b.tat - now())) * 1000000)::bigint - $3";
