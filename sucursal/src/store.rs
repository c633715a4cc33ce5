//! The branch's local SQLite store: schema, start-up load, and read-only queries.
//!
//! Invariants:
//! - Only the writer thread ([`crate::outbox`]) writes. Everything here that reads uses its
//!   own connection, so reads never wait for a commit (WAL).
//! - `meta.last_seq` is written in the same transaction as the event that takes that seq, so
//!   a crash can never make a seq reusable — even after old outbox rows are purged.
//! - Every connection opens with `synchronous=FULL`. The writer's own connection then turns
//!   it OFF and leaves the fsync to its syncer thread (see [`crate::outbox`]); readers only
//!   ever read up to `OutboxState::last_seq`, the last seq that is durable.
use colmena_shared::wire::Event;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use std::path::Path;

/// `PRAGMA application_id` of a branch store ("COLB"), so restore can tell our files.
pub const APPLICATION_ID: i32 = 0x434F_4C42;
const SCHEMA_VERSION: i32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("corrupt store: {0}")]
    Corrupt(String),
    #[error("the store writer has stopped")]
    WriterGone,
    #[error("{0}")]
    SyncFailed(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

const MIGRATIONS: &str = "
CREATE TABLE IF NOT EXISTS products (
    product_id  TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    price_cents INTEGER NOT NULL,
    version     INTEGER NOT NULL,
    stock       INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (
    seq        INTEGER PRIMARY KEY,
    kind       TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    payload    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS idempotency (
    key         TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    response    TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
";

/// The store's database file in a data dir.
pub fn db_path(dir: &Path) -> std::path::PathBuf {
    dir.join("branch.db")
}

/// Opens (creating if needed) the store at `dir/branch.db` with our pragmas.
pub fn open(dir: &Path) -> Result<Connection> {
    let path = db_path(dir);
    let conn = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

/// Applies the embedded schema; refuses a file that is not a branch store.
pub fn migrate(conn: &Connection) -> Result<()> {
    let app_id: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    let version: i32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if app_id != 0 && app_id != APPLICATION_ID {
        return Err(StoreError::Corrupt(format!(
            "not a colmena branch store (application_id {app_id:#x})"
        )));
    }
    if version > SCHEMA_VERSION {
        return Err(StoreError::Corrupt(format!(
            "store schema {version} is newer than this binary ({SCHEMA_VERSION})"
        )));
    }
    conn.execute_batch(MIGRATIONS)?;
    conn.pragma_update(None, "application_id", APPLICATION_ID)?;
    conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    Ok(())
}

pub fn get_meta(conn: &Connection, key: &str) -> Result<u64> {
    let v: Option<i64> = conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?;
    Ok(v.unwrap_or(0).max(0) as u64)
}

pub fn set_meta(conn: &Connection, key: &str, value: u64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![key, value as i64])?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct ProductRow {
    pub product_id: String,
    pub name: String,
    pub price_cents: i64,
    pub version: u64,
    pub stock: i64,
}

#[derive(Debug, Clone)]
pub struct IdempotencyRow {
    pub key: String,
    pub fingerprint: String,
    pub created_ms: i64,
    pub response: String,
}

/// What a starting branch rebuilds its memory from.
#[derive(Debug, Default)]
pub struct Loaded {
    pub products: Vec<ProductRow>,
    pub last_seq: u64,
    pub acked_through: u64,
    pub pull_cursor: u64,
    pub idempotency: Vec<IdempotencyRow>,
}

pub fn load(conn: &Connection, idempotency_since_ms: i64) -> Result<Loaded> {
    let mut out = Loaded::default();
    let mut st = conn.prepare("SELECT product_id, name, price_cents, version, stock FROM products")?;
    let rows = st.query_map([], |r| {
        Ok(ProductRow {
            product_id: r.get(0)?,
            name: r.get(1)?,
            price_cents: r.get(2)?,
            version: r.get::<_, i64>(3)?.max(0) as u64,
            stock: r.get(4)?,
        })
    })?;
    for row in rows {
        out.products.push(row?);
    }
    let max_seq: Option<i64> = conn.query_row("SELECT MAX(seq) FROM outbox", [], |r| r.get(0))?;
    out.last_seq = get_meta(conn, "last_seq")?.max(max_seq.unwrap_or(0).max(0) as u64);
    out.acked_through = get_meta(conn, "acked_through")?.min(out.last_seq);
    out.pull_cursor = get_meta(conn, "pull_cursor")?;
    let mut st =
        conn.prepare("SELECT key, fingerprint, created_ms, response FROM idempotency WHERE created_ms >= ?1")?;
    let rows = st.query_map([idempotency_since_ms], |r| {
        Ok(IdempotencyRow {
            key: r.get(0)?,
            fingerprint: r.get(1)?,
            created_ms: r.get(2)?,
            response: r.get(3)?,
        })
    })?;
    for row in rows {
        out.idempotency.push(row?);
    }
    Ok(out)
}

/// True when the store has never held anything (the `--catalog` seed applies).
pub fn is_empty(conn: &Connection) -> Result<bool> {
    let n: i64 = conn.query_row(
        "SELECT (SELECT COUNT(*) FROM products) + (SELECT COUNT(*) FROM outbox) + (SELECT COUNT(*) FROM meta)",
        [],
        |r| r.get(0),
    )?;
    Ok(n == 0)
}

/// One outbox row as the relay reads it: the event JSON is stored ready to send.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub seq: u64,
    pub created_ms: i64,
    pub payload: String,
}

/// Up to `max_events` events in `after_seq + 1 ..= through_seq`, stopping before `max_bytes`
/// of payload (always at least one event, so an oversize event can never wedge the relay).
/// `through_seq` is the durable `last_seq`: an event committed but not yet fsync'd must not
/// reach central, or a power cut could make central hold a seq this store reuses.
pub fn read_outbox(
    conn: &Connection,
    after_seq: u64,
    through_seq: u64,
    max_events: usize,
    max_bytes: usize,
) -> Result<Vec<OutboxRow>> {
    let mut st = conn.prepare_cached(
        "SELECT seq, created_ms, payload FROM outbox WHERE seq > ?1 AND seq <= ?3 ORDER BY seq LIMIT ?2",
    )?;
    let mut rows = st.query(params![after_seq as i64, max_events as i64, through_seq as i64])?;
    let mut out = Vec::new();
    let mut bytes = 0usize;
    while let Some(r) = rows.next()? {
        let payload: String = r.get(2)?;
        if !out.is_empty() && bytes + payload.len() + 1 > max_bytes {
            break;
        }
        bytes += payload.len() + 1;
        out.push(OutboxRow {
            seq: r.get::<_, i64>(0)? as u64,
            created_ms: r.get(1)?,
            payload,
        });
    }
    Ok(out)
}

/// Parsed events in `after_seq + 1 ..= through_seq` (for `GET /outbox`).
pub fn outbox_events(conn: &Connection, after_seq: u64, through_seq: u64, limit: usize) -> Result<Vec<Event>> {
    let rows = read_outbox(conn, after_seq, through_seq, limit, usize::MAX)?;
    rows.into_iter()
        .map(|r| {
            serde_json::from_str(&r.payload)
                .map_err(|e| StoreError::Corrupt(format!("outbox event {} is not valid JSON: {e}", r.seq)))
        })
        .collect()
}

/// Commit time of the oldest pending event, if any.
pub fn oldest_pending_ms(conn: &Connection, acked_through: u64) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT created_ms FROM outbox WHERE seq > ?1 ORDER BY seq LIMIT 1")?
        .query_row([acked_through as i64], |r| r.get(0))
        .optional()?)
}

/// Durable sale events (seq ≤ `through_seq`) committed between `from_ms` and `to_ms`
/// (inclusive), in seq order.
pub fn sale_events_between(conn: &Connection, from_ms: i64, to_ms: i64, through_seq: u64) -> Result<Vec<Event>> {
    let mut st = conn.prepare(
        "SELECT seq, payload FROM outbox WHERE kind = 'sale' AND created_ms BETWEEN ?1 AND ?2 AND seq <= ?3 ORDER BY seq",
    )?;
    let rows = st.query_map(params![from_ms, to_ms, through_seq as i64], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, payload) = row?;
        out.push(serde_json::from_str(&payload).map_err(|e| StoreError::Corrupt(format!("outbox event {seq}: {e}")))?);
    }
    Ok(out)
}

/// Every product's id and name, by id (for `GET /inventory`).
pub fn product_names(conn: &Connection) -> Result<Vec<(String, String)>> {
    let mut st = conn.prepare_cached("SELECT product_id, name FROM products ORDER BY product_id")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// One product's name.
pub fn product_name(conn: &Connection, product_id: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT name FROM products WHERE product_id = ?1")?
        .query_row([product_id], |r| r.get(0))
        .optional()?)
}
