//! The `meta` table: the store's counters, one integer per key.
//!
//! `last_seq` moves in the same transaction as the event that takes that seq, so a seq is
//! never reused, even after a crash or a purge of old outbox rows.
use super::db::Result;
use rusqlite::{params, Connection, OptionalExtension};

/// The highest seq ever given to an event.
pub const LAST_SEQ: &str = "last_seq";
/// The highest seq central has acknowledged.
pub const ACKED_THROUGH: &str = "acked_through";
/// Where the next pull from central starts.
pub const PULL_CURSOR: &str = "pull_cursor";
/// After an upgrade from schema 1: users are pulled again from this cursor…
pub const USERS_CATCH_UP_FROM: &str = "users_catch_up_from";
/// …up to this one (the pull cursor at the upgrade). Nothing to do when FROM >= TO.
pub const USERS_CATCH_UP_TO: &str = "users_catch_up_to";
/// Set once the `--catalog` seed has been applied.
pub const SEEDED: &str = "seeded";

/// A counter's value; 0 when it was never set.
pub fn get(conn: &Connection, key: &str) -> Result<u64> {
    let v: Option<i64> = conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?;
    Ok(v.unwrap_or(0).max(0) as u64)
}

pub fn set(conn: &Connection, key: &str, value: u64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![key, value as i64])?;
    Ok(())
}
