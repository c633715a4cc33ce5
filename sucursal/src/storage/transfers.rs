//! The `transfers` table: this branch's view of each transfer it sends or receives
//! (docs/protocol.md, "Transfers"), reads and writes side by side.
//!
//! A row is the whole [`Transfer`] as JSON plus its status in a column of its own (for
//! `GET /transfers?status=`). Rows change in two places only, both inside the writer's
//! transaction: a pull merges central's view ([`merge`]), and a dispatch or receipt made here
//! moves the row in the same transaction as its outbox event
//! ([`super::apply_transfers`]).
//!
//! Invariant: a pull never moves a row back
//! ([`colmena_shared::transfers::TransferStatus::rank`]): a step this branch
//! took stands until central's view catches up with it.
use super::db::{Result, StoreError};
use colmena_shared::transfers::Transfer;
use rusqlite::{params, Connection, OptionalExtension};

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS transfers (
    transfer_id TEXT PRIMARY KEY,
    status      TEXT NOT NULL,
    body        TEXT NOT NULL
) WITHOUT ROWID;
";

fn decode(id: &str, body: &str) -> Result<Transfer> {
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt(format!("transfer {id} is not valid JSON: {e}")))
}

/// The transfer `transfer_id` as this branch knows it.
pub fn get(conn: &Connection, transfer_id: &str) -> Result<Option<Transfer>> {
    let body: Option<String> = conn
        .prepare_cached("SELECT body FROM transfers WHERE transfer_id = ?1")?
        .query_row([transfer_id], |r| r.get(0))
        .optional()?;
    body.map(|b| decode(transfer_id, &b)).transpose()
}

/// Writes the transfer as it now stands (insert or replace).
pub fn put(conn: &Connection, t: &Transfer) -> Result<()> {
    let body = serde_json::to_string(t).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    conn.prepare_cached(
        "INSERT INTO transfers(transfer_id, status, body) VALUES (?1, ?2, ?3) \
         ON CONFLICT(transfer_id) DO UPDATE SET status = excluded.status, body = excluded.body",
    )?
    .execute(params![t.transfer_id, t.status.as_str(), body])?;
    Ok(())
}

/// Every transfer this branch knows, by id (start-up load; a branch has few).
pub fn load_all(conn: &Connection) -> Result<Vec<Transfer>> {
    let mut st = conn.prepare_cached("SELECT transfer_id, body FROM transfers ORDER BY transfer_id")?;
    let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (id, body) = row?;
        out.push(decode(&id, &body)?);
    }
    Ok(out)
}

/// Central's view of a transfer merged into the local row, in the pull's transaction;
/// returns the row as it now stands. A local row further along (this branch dispatched or
/// received it and central has not applied that yet) keeps its status and step fields;
/// otherwise central's view is taken whole — so a dispatch that crossed a cancel at
/// central wins, and the receiving branch learns what was dispatched.
pub fn merge(conn: &Connection, central: &Transfer) -> Result<Transfer> {
    let merged = match get(conn, &central.transfer_id)? {
        Some(local) if local.status.rank() > central.status.rank() => local,
        _ => central.clone(),
    };
    put(conn, &merged)?;
    Ok(merged)
}
