//! What the branch keeps to validate returns: how much of each sale line was returned
//! (`returned`), each return (`returns`), and each sale of the return window after its
//! outbox row is purged (`sale_records`).
//!
//! A sale is read from its outbox row while that exists (the row *is* the sale, durable
//! before its 201), so selling writes nothing extra. When the housekeeping purge drops
//! acknowledged outbox rows, the sales among them still inside the return window are first
//! copied to `sale_records` in the same transaction; records older than the window go.
//! `returned` moves in the transaction of the return event, and the writer checks it there,
//! so concurrent returns of one sale can never refund more than was sold.
use super::db::{Result, StoreError};
use colmena_shared::wire::Event;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashMap;

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS returns (
    return_id   TEXT PRIMARY KEY,
    seq         INTEGER NOT NULL,
    sale_seq    INTEGER NOT NULL,
    created_ms  INTEGER NOT NULL,
    total_cents INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS returned (
    sale_seq   INTEGER NOT NULL,
    product_id TEXT NOT NULL,
    quantity   INTEGER NOT NULL,
    PRIMARY KEY (sale_seq, product_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sale_records (
    seq     INTEGER PRIMARY KEY,
    sold_ms INTEGER NOT NULL,
    payload TEXT NOT NULL
);
";

/// A sale this branch recorded: when, and the event as shipped.
pub struct SaleRecord {
    pub sold_ms: i64,
    pub event: Event,
}

/// The sale recorded under `seq`, from the outbox or, once purged, its record.
pub fn sale(conn: &Connection, seq: u64) -> Result<Option<SaleRecord>> {
    let found: Option<(i64, String)> = conn
        .prepare_cached(
            "SELECT created_ms, payload FROM outbox WHERE seq = ?1 AND kind = 'sale' \
             UNION ALL SELECT sold_ms, payload FROM sale_records WHERE seq = ?1 LIMIT 1",
        )?
        .query_row([seq as i64], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((sold_ms, payload)) = found else {
        return Ok(None);
    };
    let event = serde_json::from_str(&payload)
        .map_err(|e| StoreError::Corrupt(format!("sale {seq} is not a valid event: {e}")))?;
    Ok(Some(SaleRecord { sold_ms, event }))
}

/// Units of each product of sale `sale_seq` returned so far.
pub fn returned(conn: &Connection, sale_seq: u64) -> Result<HashMap<String, i64>> {
    let mut st = conn.prepare_cached("SELECT product_id, quantity FROM returned WHERE sale_seq = ?1")?;
    let rows = st.query_map([sale_seq as i64], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn add_returned(conn: &Connection, sale_seq: u64, product_id: &str, quantity: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO returned(sale_seq, product_id, quantity) VALUES (?1, ?2, ?3) \
         ON CONFLICT(sale_seq, product_id) DO UPDATE SET quantity = quantity + excluded.quantity",
    )?
    .execute(params![sale_seq as i64, product_id, quantity])?;
    Ok(())
}

pub fn insert(
    conn: &Connection,
    return_id: &str,
    seq: u64,
    sale_seq: u64,
    now_ms: i64,
    total_cents: i64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO returns(return_id, seq, sale_seq, created_ms, total_cents) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![return_id, seq as i64, sale_seq as i64, now_ms, total_cents])?;
    Ok(())
}

/// Before the outbox purge: keeps the sales it is about to drop that are still returnable
/// (sold at or after `window_start_ms`), and forgets records older than the window.
pub fn archive_before_purge(conn: &Connection, acked_through: u64, before_ms: i64, window_start_ms: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO sale_records(seq, sold_ms, payload) SELECT seq, created_ms, payload FROM outbox \
         WHERE kind = 'sale' AND seq <= ?1 AND created_ms < ?2 AND created_ms >= ?3",
    )?
    .execute(params![acked_through as i64, before_ms, window_start_ms])?;
    conn.prepare_cached("DELETE FROM sale_records WHERE sold_ms < ?1")?
        .execute([window_start_ms])?;
    Ok(())
}
