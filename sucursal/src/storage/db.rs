//! The branch's SQLite file: where it lives, how every connection is opened, its schema,
//! and what a starting branch loads from it. The statements on each table live in that
//! table's module ([`super::meta`], [`super::products`], [`super::outbox`],
//! [`super::idempotency`], [`super::users`]), reads and writes side by side.
//!
//! Schema versions (`PRAGMA user_version`): 1 the first; 2 adds `users`; 3 the till's tables
//! ([`super::shifts`], [`super::returns`]); 4 the catalog fields of `products` (barcode,
//! category, active, reorder point, scheduled price: [`products::migrate_v4`]); 5 `transfers`
//! ([`super::transfers`]). Every statement of
//! the migration is idempotent (`IF NOT EXISTS`, or a column added only when missing), so a store of any older version is brought
//! up by running it whole. A store upgraded from 1 has a pull cursor past users central
//! created before the upgrade; [`migrate`] records that range so the relay pulls its users
//! once more (docs/protocol.md, "Users at the branch").
//!
//! Invariants:
//! - Only the writer thread ([`super::writer`]) writes. Every reader uses its own
//!   connection, so reads never wait for a commit (WAL).
//! - Every connection opens with `synchronous=FULL`. The writer's own connection then turns
//!   it OFF and leaves the fsync to its syncer thread (see [`super`]); readers only ever read
//!   up to `OutboxState::last_seq`, the last seq that is durable.
use super::{idempotency, meta, outbox, products, returns, shifts, transfers, users};
use rusqlite::{Connection, OpenFlags};
use std::path::Path;

/// `PRAGMA application_id` of a branch store ("COLB"), so restore can tell our files.
pub const APPLICATION_ID: i32 = 0x434F_4C42;
const SCHEMA_VERSION: i32 = 5;

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
CREATE TABLE IF NOT EXISTS users (
    user_id  TEXT PRIMARY KEY,
    name     TEXT NOT NULL,
    role     TEXT NOT NULL,
    branches TEXT NOT NULL,
    active   INTEGER NOT NULL,
    version  INTEGER NOT NULL,
    pin_hash TEXT NOT NULL
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
    // One transaction: a crash mid-upgrade leaves the old version, and the upgrade reruns.
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let upgraded = (|| {
        conn.execute_batch(MIGRATIONS)?;
        conn.execute_batch(shifts::SCHEMA)?;
        conn.execute_batch(returns::SCHEMA)?;
        products::migrate_v4(conn)?;
        conn.execute_batch(transfers::SCHEMA)?;
        if version == 1 && meta::get(conn, meta::PULL_CURSOR)? > 0 {
            // Users are pulled only from schema 2 on; those central changed before this
            // upgrade lie below the stored cursor, so they are pulled again up to it.
            let cursor = meta::get(conn, meta::PULL_CURSOR)?;
            meta::set(conn, meta::USERS_CATCH_UP_TO, cursor)?;
        }
        conn.pragma_update(None, "application_id", APPLICATION_ID)?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        Ok(())
    })();
    match upgraded {
        Ok(()) => Ok(conn.execute_batch("COMMIT")?),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// What a starting branch rebuilds its memory from.
#[derive(Debug, Default)]
pub struct Loaded {
    pub products: Vec<products::ProductRow>,
    pub last_seq: u64,
    pub acked_through: u64,
    pub pull_cursor: u64,
    pub idempotency: Vec<idempotency::IdempotencyRow>,
    pub users: Vec<colmena_shared::users::UserRecord>,
    pub open_shifts: Vec<shifts::ShiftRow>,
    /// Every transfer this branch sends or receives, as it stands here.
    pub transfers: Vec<colmena_shared::transfers::Transfer>,
    /// Users still to be pulled again after an upgrade: `(from, to)` cursors, empty when
    /// `from >= to`.
    pub users_catch_up: (u64, u64),
}

pub fn load(conn: &Connection, idempotency_since_ms: i64) -> Result<Loaded> {
    let last_seq = meta::get(conn, meta::LAST_SEQ)?.max(outbox::max_seq(conn)?);
    Ok(Loaded {
        products: products::load_all(conn)?,
        last_seq,
        acked_through: meta::get(conn, meta::ACKED_THROUGH)?.min(last_seq),
        pull_cursor: meta::get(conn, meta::PULL_CURSOR)?,
        idempotency: idempotency::load_since(conn, idempotency_since_ms)?,
        users: users::load_all(conn)?,
        open_shifts: shifts::load_open(conn)?,
        transfers: transfers::load_all(conn)?,
        users_catch_up: (
            meta::get(conn, meta::USERS_CATCH_UP_FROM)?,
            meta::get(conn, meta::USERS_CATCH_UP_TO)?,
        ),
    })
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
