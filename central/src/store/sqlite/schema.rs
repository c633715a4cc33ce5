//! The SQLite file: how it is opened, its embedded schema and migrations.
use super::BUSY_TIMEOUT;
use crate::store::StoreError;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;

/// The version that added the report rollups (filled from the sales and returns already
/// applied when it is reached).
const REPORTS_VERSION: usize = 7;

/// Schema versions; `MIGRATIONS[i]` takes the database from `user_version` i to i+1.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: branches, catalog, pull feed, ledger, sales, adjustments.
    r#"
CREATE TABLE branches (
    branch_key      INTEGER PRIMARY KEY,            -- internal ordinal, also in sales cursors
    branch_id       TEXT NOT NULL UNIQUE,
    applied_through INTEGER NOT NULL DEFAULT 0,     -- highest seq applied
    last_push_ms    INTEGER,                        -- last accepted push, Unix ms
    events_applied  INTEGER NOT NULL DEFAULT 0,
    sales_count     INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE products (
    product_id  TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    price_cents INTEGER NOT NULL,
    version     INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL
) WITHOUT ROWID;
-- The pull feed. kind 0 = product change (global), 1 = allocation (branch_key set).
CREATE TABLE changes (
    cursor      INTEGER PRIMARY KEY,
    kind        INTEGER NOT NULL,
    product_id  TEXT NOT NULL,
    branch_key  INTEGER,
    name        TEXT,
    price_cents INTEGER,
    version     INTEGER,
    quantity    INTEGER,
    created_ms  INTEGER NOT NULL
);
CREATE INDEX changes_by_branch ON changes(branch_key, cursor);
-- The ledger, materialised: Σ allocations + Σ adjustments − Σ sold per (branch, product).
-- Clustered by branch: a push touches only its own branch's few pages. A product's row
-- across branches is found by one key lookup per branch (see read_inventory).
CREATE TABLE stock (
    branch_key INTEGER NOT NULL,
    product_id TEXT NOT NULL,
    stock      INTEGER NOT NULL,
    PRIMARY KEY (branch_key, product_id)
) WITHOUT ROWID;
-- Oversold (branch, product) pairs, for the metric; keyed like stock so a push touches
-- only its own branch's entries.
CREATE INDEX stock_negative ON stock(branch_key, product_id) WHERE stock < 0;
-- lines: [["P1",2,550],...] = [product_id, quantity, unit_price_cents] per line.
CREATE TABLE sales (
    branch_key  INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    sale_id     TEXT NOT NULL,
    sold_ms     INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    total_cents INTEGER NOT NULL,
    cashier_id  TEXT,
    lines       TEXT NOT NULL,
    PRIMARY KEY (branch_key, seq)
) WITHOUT ROWID;
-- Entries (branch_key, sold_ms, seq): serves /sales in (branch, sold_at, seq) order. A push
-- appends at its own branch's end. (A global index on sold_ms would make every push touch
-- hundreds of pages, as branches' recent sales interleave.)
CREATE INDEX sales_by_branch_time ON sales(branch_key, sold_ms);
CREATE TABLE adjustments (
    branch_key     INTEGER NOT NULL,
    seq            INTEGER NOT NULL,
    product_id     TEXT NOT NULL,
    quantity_delta INTEGER NOT NULL,
    reason         TEXT,
    occurred_ms    INTEGER NOT NULL,
    received_ms    INTEGER NOT NULL,
    PRIMARY KEY (branch_key, seq)
) WITHOUT ROWID;
"#,
    // 2: users, user changes in the pull feed, the audit trail (docs/protocol.md, "Users").
    r#"
-- branches: a JSON array of branch ids (sorted) or ["*"]; pin_hash: argon2id PHC string.
CREATE TABLE users (
    user_id    TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    branches   TEXT NOT NULL,
    active     INTEGER NOT NULL,
    pin_hash   TEXT NOT NULL,
    version    INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
) WITHOUT ROWID;
-- kind 2 = user change: product_id '', branch_key NULL, user_id set, payload the UserRecord
-- JSON (with its PIN hash), audience the branches that hear of it (",ABA,CUS," or ",*,").
ALTER TABLE changes ADD COLUMN user_id TEXT;
ALTER TABLE changes ADD COLUMN payload TEXT;
ALTER TABLE changes ADD COLUMN audience TEXT;
CREATE INDEX changes_users ON changes(cursor) WHERE kind = 2;
-- before/after: the resource as JSON (users without PIN or hash); before NULL on create.
-- Read in id order (commit order); admin changes are few, so no time index.
CREATE TABLE audit (
    id     INTEGER PRIMARY KEY,
    at_ms  INTEGER NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    before TEXT,
    after  TEXT NOT NULL
);
"#,
    // 3: the user whose token caused an adjustment (docs/protocol.md, "Event kinds").
    r#"
ALTER TABLE adjustments ADD COLUMN user_id TEXT;
"#,
    // 4: the till (docs/protocol.md, "The till at central"). Written so that running it on
    // a database that already has it changes nothing: IF NOT EXISTS, and the sales columns
    // are added by `add_missing_columns` (SQLite's ALTER has no IF NOT EXISTS).
    r#"
-- sales gains shift_id and payments (ADDED_COLUMNS): payments [["cash",2000],...] =
-- [method, amount_cents], NULL = none sent (unspecified). Both are NULL for a plain sale,
-- which therefore writes what it wrote before (two trailing NULLs).
-- A sale's returned_cents is read from returns_by_sale, never written on the sale.
CREATE TABLE IF NOT EXISTS returns (
    branch_key    INTEGER NOT NULL,
    seq           INTEGER NOT NULL,
    return_id     TEXT NOT NULL,
    sale_id       TEXT NOT NULL,
    returned_ms   INTEGER NOT NULL,
    received_ms   INTEGER NOT NULL,
    total_cents   INTEGER NOT NULL,
    restock       INTEGER NOT NULL,
    refund_method TEXT NOT NULL,
    shift_id      TEXT,
    reason        TEXT,
    user_id       TEXT,
    lines         TEXT NOT NULL,                    -- as sales.lines
    PRIMARY KEY (branch_key, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS returns_by_sale ON returns(branch_key, sale_id);
CREATE INDEX IF NOT EXISTS returns_by_branch_time ON returns(branch_key, returned_ms);
CREATE TABLE IF NOT EXISTS cash_movements (
    branch_key   INTEGER NOT NULL,
    seq          INTEGER NOT NULL,
    shift_id     TEXT NOT NULL,
    movement     TEXT NOT NULL,                     -- in | out
    amount_cents INTEGER NOT NULL,
    reason       TEXT,
    occurred_ms  INTEGER NOT NULL,
    received_ms  INTEGER NOT NULL,
    user_id      TEXT,
    PRIMARY KEY (branch_key, seq)
) WITHOUT ROWID;
-- shift_opened (kind 0: till_id, opening_float_cents) and shift_closed (kind 1:
-- counted_cash_cents, summary = the branch's ShiftSummary as JSON), as applied.
CREATE TABLE IF NOT EXISTS shift_events (
    branch_key          INTEGER NOT NULL,
    seq                 INTEGER NOT NULL,
    kind                INTEGER NOT NULL,
    shift_id            TEXT NOT NULL,
    occurred_ms         INTEGER NOT NULL,
    received_ms         INTEGER NOT NULL,
    user_id             TEXT,
    till_id             TEXT,
    opening_float_cents INTEGER,
    counted_cash_cents  INTEGER,
    summary             TEXT,
    PRIMARY KEY (branch_key, seq)
) WITHOUT ROWID;
-- One row per shift: what opened and closed it, and running totals moved once per push
-- (store/till.rs). opened_ms NULL: never seen opened (not listed).
CREATE TABLE IF NOT EXISTS shifts (
    branch_key          INTEGER NOT NULL,
    shift_id            TEXT NOT NULL,
    till_id             TEXT,
    opened_by           TEXT,
    opened_ms           INTEGER,
    opening_float_cents INTEGER NOT NULL DEFAULT 0,
    closed_by           TEXT,
    closed_ms           INTEGER,
    counted_cash_cents  INTEGER,
    branch_summary      TEXT,
    sales_count         INTEGER NOT NULL DEFAULT 0,
    gross_cents         INTEGER NOT NULL DEFAULT 0,
    returns_cents       INTEGER NOT NULL DEFAULT 0,
    cash_in_cents       INTEGER NOT NULL DEFAULT 0,
    cash_out_cents      INTEGER NOT NULL DEFAULT 0,
    by_method           TEXT NOT NULL DEFAULT '{}',  -- {"cash": 2850, ...}
    PRIMARY KEY (branch_key, shift_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS shifts_by_branch_time ON shifts(branch_key, opened_ms);
"#,
    // 5: catalog fields, scheduled prices, idempotency records (docs/protocol.md, "Catalog
    // at central"). Re-runnable like 4: its columns are ADDED_COLUMNS, the rest IF NOT EXISTS.
    r#"
-- products gains barcode, category, active (default 1), reorder_point (default 0) and a
-- schedule (sched_price_cents, sched_effective_ms: both NULL or both set); price_cents
-- stays the base price. A barcode is unique among the products holding one.
CREATE UNIQUE INDEX IF NOT EXISTS products_barcode ON products(barcode) WHERE barcode IS NOT NULL;
-- changes gains the same columns, so a product change carries the values of its own
-- version. Rows written before this migration have NULLs, which a branch reads as the
-- defaults.
-- The first success of each Idempotency-Key of an admin write, for 24 h.
CREATE TABLE IF NOT EXISTS idempotency (
    key         TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    status      INTEGER NOT NULL,
    body        TEXT NOT NULL,
    created_ms  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idempotency_by_age ON idempotency(created_ms);
"#,
    // 6: transfers between branches (docs/protocol.md, "Transfers"). Re-runnable like 5.
    r#"
-- One row per transfer: the columns its reads filter on, and the whole transfer as JSON
-- (body: what GET /transfers/{id} answers and its feed entries carry). num orders them
-- (TR-000001 is num 1). dispatch_seq / receipt_seq: the seq of the step's event at the
-- branch that took it (its row in transfer_events).
CREATE TABLE IF NOT EXISTS transfers (
    transfer_id   TEXT PRIMARY KEY,
    num           INTEGER NOT NULL UNIQUE,
    from_branch   TEXT NOT NULL,
    to_branch     TEXT NOT NULL,
    status        TEXT NOT NULL,                    -- requested | cancelled | in_transit | received
    dispatched_ms INTEGER,
    dispatch_seq  INTEGER,
    receipt_seq   INTEGER,
    body          TEXT NOT NULL,
    updated_ms    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS transfers_by_status ON transfers(status);
-- The transfer steps pushed by branches, as applied: kind 0 = transfer_dispatched,
-- 1 = transfer_received; lines = the event's transfer_lines as JSON.
CREATE TABLE IF NOT EXISTS transfer_events (
    branch_key  INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    kind        INTEGER NOT NULL,
    transfer_id TEXT NOT NULL,
    lines       TEXT NOT NULL,
    occurred_ms INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    user_id     TEXT,
    PRIMARY KEY (branch_key, seq)
) WITHOUT ROWID;
-- changes kind 3 = transfer change: product_id '', branch_key = one of the transfer's two
-- branches (one row for each), payload = the transfer as JSON.
"#,
    // 7: the sales rollups of the head office's reports (docs/protocol.md, "Reports"; see
    // store/reports.rs). Key order puts a report's range first; a push's rows for its
    // branch are contiguous within each bucket. The sales and returns already applied are
    // added by `super::reports::backfill` in the same transaction.
    r#"
CREATE TABLE IF NOT EXISTS report_rollup (
    dim           INTEGER NOT NULL,                 -- 0 totals; 4 chain-wide totals (branch_key < 0)
    level         INTEGER NOT NULL,                 -- 0 quarter hour, 1 hour, 2 day (UTC)
    bucket        INTEGER NOT NULL,                 -- at_ms / the level's width
    branch_key    INTEGER NOT NULL,                 -- < 0: a chain-wide shard
    key           TEXT NOT NULL,                    -- '' for totals
    sales_count   INTEGER NOT NULL,
    units         INTEGER NOT NULL,
    gross_cents   INTEGER NOT NULL,
    returns_cents INTEGER NOT NULL,
    PRIMARY KEY (dim, level, bucket, branch_key, key)
) WITHOUT ROWID;
-- Per branch and quarter hour (level 0), its figures by product (1), cashier (2) and
-- method (3): sorted binary entries (store/reports/blob.rs).
CREATE TABLE IF NOT EXISTS report_detail (
    level      INTEGER NOT NULL,
    bucket     INTEGER NOT NULL,
    branch_key INTEGER NOT NULL,
    detail     BLOB NOT NULL,
    PRIMARY KEY (level, bucket, branch_key)
); -- a rowid table: its rows are kilobytes, which WITHOUT ROWID stores badly
"#,
];

/// Columns a migration adds to an existing table, by migration index: SQLite's `ALTER TABLE
/// ADD COLUMN` fails on a column that exists, so each is added only when missing.
const ADDED_COLUMNS: &[(usize, &str, &str, &str)] = &[
    (3, "sales", "shift_id", "TEXT"),
    (3, "sales", "payments", "TEXT"),
    (4, "products", "barcode", "TEXT"),
    (4, "products", "category", "TEXT"),
    (4, "products", "active", "INTEGER NOT NULL DEFAULT 1"),
    (4, "products", "reorder_point", "INTEGER NOT NULL DEFAULT 0"),
    (4, "products", "sched_price_cents", "INTEGER"),
    (4, "products", "sched_effective_ms", "INTEGER"),
    (4, "changes", "barcode", "TEXT"),
    (4, "changes", "category", "TEXT"),
    (4, "changes", "active", "INTEGER"),
    (4, "changes", "reorder_point", "INTEGER"),
    (4, "changes", "sched_price_cents", "INTEGER"),
    (4, "changes", "sched_effective_ms", "INTEGER"),
];

fn add_missing_columns(conn: &Connection, migration: usize) -> Result<(), StoreError> {
    for (_, table, column, ty) in ADDED_COLUMNS.iter().filter(|c| c.0 == migration) {
        let exists: bool = conn
            .prepare(&format!("SELECT 1 FROM pragma_table_info('{table}') WHERE name = ?1"))?
            .exists([column])?;
        if !exists {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {ty}"))?;
        }
    }
    Ok(())
}

pub(super) fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| StoreError::Database(format!("cannot open {}: {e}", path.display())))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

/// `PRAGMA application_id` of a central store ("COLC"), so restore can tell our files.
pub const APPLICATION_ID: i32 = 0x434F_4C43;

pub(super) fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let app_id: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    if app_id != 0 && app_id != APPLICATION_ID {
        return Err(StoreError::Corrupt(format!(
            "not a colmena central store (application_id {app_id:#x})"
        )));
    }
    if app_id == 0 {
        conn.pragma_update(None, "application_id", APPLICATION_ID)?;
    }
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(StoreError::Database(format!(
            "the database is at schema version {version}, newer than this binary knows ({known})"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.unchecked_transaction()?;
        add_missing_columns(&tx, i)?;
        tx.execute_batch(sql)?;
        if i + 1 == REPORTS_VERSION {
            super::reports::backfill(&tx)?;
        }
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "applied schema migration");
    }
    Ok(())
}
