//! The `outbox` table: every event this branch has created, by seq, its JSON payload
//! stored ready to send. The relay reads it in order; acknowledged rows are purged after
//! `--outbox-retention` (so a central restored from a backup can still be re-sent them).
//!
//! Readers never read past the durable `last_seq` they are given: an event committed but not
//! yet fsync'd must not reach central (or `/outbox`), or a power cut could make central hold
//! a seq this store reuses.
use super::db::{Result, StoreError};
use colmena_shared::wire::Event;
use rusqlite::{params, Connection, OptionalExtension};

/// One outbox row as the relay reads it.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub seq: u64,
    pub created_ms: i64,
    pub payload: String,
}

/// Appends an event. `kind` repeats the payload's own `kind` in a column, for reads that
/// filter by kind (the sales export).
pub fn insert(conn: &Connection, seq: u64, kind: &str, created_ms: i64, payload: &str) -> Result<()> {
    conn.prepare_cached("INSERT INTO outbox(seq, kind, created_ms, payload) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![seq as i64, kind, created_ms, payload])?;
    Ok(())
}

/// Drops the acknowledged events (seq ≤ `acked_through`) committed before `before_ms`.
pub fn purge_acked(conn: &Connection, acked_through: u64, before_ms: i64) -> Result<()> {
    conn.prepare_cached("DELETE FROM outbox WHERE seq <= ?1 AND created_ms < ?2")?
        .execute(params![acked_through as i64, before_ms])?;
    Ok(())
}

/// The highest seq in the table (0 when empty).
pub fn max_seq(conn: &Connection) -> Result<u64> {
    let max: Option<i64> = conn.query_row("SELECT MAX(seq) FROM outbox", [], |r| r.get(0))?;
    Ok(max.unwrap_or(0).max(0) as u64)
}

/// Up to `max_events` events in `after_seq + 1 ..= through_seq`, stopping before `max_bytes`
/// of payload (always at least one event, so an oversize event can never wedge the relay).
/// `through_seq` is the durable `last_seq`.
pub fn read(
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
pub fn events(conn: &Connection, after_seq: u64, through_seq: u64, limit: usize) -> Result<Vec<Event>> {
    let rows = read(conn, after_seq, through_seq, limit, usize::MAX)?;
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
pub fn sales_between(conn: &Connection, from_ms: i64, to_ms: i64, through_seq: u64) -> Result<Vec<Event>> {
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
