//! The `idempotency` table: the first answer to each `Idempotency-Key`, written in the same
//! transaction as the sale it answers (see [`crate::idempotency`] for the semantics).
use super::db::Result;
use rusqlite::{params, Connection};

#[derive(Debug, Clone)]
pub struct IdempotencyRow {
    pub key: String,
    pub fingerprint: String,
    pub created_ms: i64,
    pub response: String,
}

pub fn load_since(conn: &Connection, since_ms: i64) -> Result<Vec<IdempotencyRow>> {
    let mut st =
        conn.prepare("SELECT key, fingerprint, created_ms, response FROM idempotency WHERE created_ms >= ?1")?;
    let rows = st.query_map([since_ms], |r| {
        Ok(IdempotencyRow {
            key: r.get(0)?,
            fingerprint: r.get(1)?,
            created_ms: r.get(2)?,
            response: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

pub fn insert(conn: &Connection, key: &str, fingerprint: &str, created_ms: i64, response: &str) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO idempotency(key, fingerprint, created_ms, response) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![key, fingerprint, created_ms, response])?;
    Ok(())
}

pub fn purge_before(conn: &Connection, before_ms: i64) -> Result<()> {
    conn.prepare_cached("DELETE FROM idempotency WHERE created_ms < ?1")?
        .execute([before_ms])?;
    Ok(())
}
