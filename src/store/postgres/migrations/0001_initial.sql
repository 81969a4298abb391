-- fulfillkit PgStore, schema version 1.
-- `{t}` is the host's table prefix (schema-qualified when a schema was chosen), `{p}` the same
-- prefix unqualified (index names). Rows keep the README's JSON in `record`, `waybill`,
-- `exception` and `event` columns, readable with psql; the other columns are what the queries
-- filter and sort on, kept in step by PgStore on every write.

CREATE TABLE {t}shipments (
    -- "C": ids sort byte-wise, as the Store contract's listings and DuePosition do.
    order_id      text COLLATE "C" PRIMARY KEY,
    instance      text NOT NULL,
    -- Compare-and-swap: every write checks and bumps it.
    version       bigint NOT NULL,
    -- 'exporting' | 'exported' | 'failed' (ExportState's tag).
    export_state  text NOT NULL,
    pending_update boolean NOT NULL,
    -- Cash on delivery: `Delivered` is final only for prepaid orders.
    cod           boolean NOT NULL,
    -- ShipmentRecord::is_active: tracking follows it.
    active        boolean NOT NULL,
    next_poll_at  timestamptz,
    -- The due order's key: "as soon as possible" (NULL) first, as -infinity, so a position
    -- in the due order is one indexable row comparison.
    due_key       timestamptz NOT NULL
                  GENERATED ALWAYS AS (coalesce(next_poll_at, '-infinity'::timestamptz)) STORED,
    -- The tracking claim (Store::claim_due), free when NULL or expired.
    claim_owner   text,
    claim_until   timestamptz,
    updated_at    timestamptz NOT NULL,
    -- The whole ShipmentRecord as JSON.
    record        jsonb NOT NULL
);

-- Due listing: an instance's active shipments by next poll time ("as soon as possible" first).
CREATE INDEX {p}shipments_due ON {t}shipments (instance, due_key, order_id) WHERE active;
CREATE INDEX {p}shipments_failed ON {t}shipments (order_id) WHERE export_state = 'failed';
CREATE INDEX {p}shipments_exporting ON {t}shipments (order_id) WHERE export_state = 'exporting';
CREATE INDEX {p}shipments_pending_update ON {t}shipments (order_id) WHERE pending_update;

-- Per-order edit leases (Store::acquire_order_lease).
CREATE TABLE {t}order_leases (
    order_id  text COLLATE "C" PRIMARY KEY,
    owner     text NOT NULL,
    until     timestamptz NOT NULL
);

CREATE TABLE {t}waybills (
    order_id  text COLLATE "C" PRIMARY KEY,
    waybill   jsonb NOT NULL
);

CREATE TABLE {t}exceptions (
    order_id     text COLLATE "C" NOT NULL,
    seq          bigint NOT NULL,
    instance     text NOT NULL,
    open         boolean NOT NULL,
    detected_at  timestamptz NOT NULL,
    exception    jsonb NOT NULL,
    PRIMARY KEY (order_id, seq)
);
CREATE INDEX {p}exceptions_open ON {t}exceptions (order_id, seq) WHERE open;

-- The outbox: events written with the change that caused them, deleted once delivered.
CREATE SEQUENCE {t}events_seq;
CREATE TABLE {t}events (
    id           text PRIMARY KEY,
    -- Write order (pending_events lists by it).
    seq          bigint NOT NULL DEFAULT nextval('{t}events_seq'),
    order_id     text,
    occurred_at  timestamptz NOT NULL,
    event        jsonb NOT NULL
);
CREATE INDEX {p}events_by_seq ON {t}events (seq);

-- Shared provider rate budgets (PgStore::rate_budget): one row per provider account, the
-- theoretical arrival time of the next request (GCRA), on the database's clock.
CREATE TABLE {t}rate_budgets (
    key   text PRIMARY KEY,
    tat   timestamptz NOT NULL
);
