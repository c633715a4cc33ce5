//! The report rollups on SQLite (the shape and rules are in `crate::store::reports`):
//! a push's rows upserted in its savepoint, a report's reads, and the one-time fill of
//! the rollups from the sales and returns a store held before they existed.
use crate::store::reports::{
    add_event, detail_sql, fold_details, merge_detail, read_sql, rollups_of, rollups_skipped, stored_return,
    stored_sale, Acc, Prepared, RollupRead, RollupRow, RollupScope, Rollups, DIM_CHAIN, DIM_TOTAL, ROLLUP_ADD,
};
use crate::store::StoreError;
use colmena_shared::wire::Event;
use rusqlite::{params, Connection, OptionalExtension, ToSql};

fn upsert_sql() -> String {
    format!(
        "INSERT INTO report_rollup(dim, level, bucket, branch_key, key, sales_count, units, gross_cents, \
         returns_cents) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
         ON CONFLICT(dim, level, bucket, branch_key, key) DO UPDATE SET {ROLLUP_ADD}"
    )
}

/// Adds a push's newly applied events to the rollups, inside the push's savepoint (the
/// caller's `tx`), so they commit or roll back with the events themselves.
/// `pre` is what [`crate::store::reports::prepare`] summed of the whole push, used when
/// every event of it is new (`all_new`).
pub(super) fn write_push(
    tx: &Connection,
    branch_key: i64,
    new: &[Event],
    all_new: bool,
    pre: Option<&Prepared>,
) -> Result<(), StoreError> {
    if rollups_skipped() || new.is_empty() {
        return Ok(());
    }
    match pre {
        Some(pre) if all_new => write(tx, &pre.rollups(branch_key)),
        _ => write(tx, &rollups_of(branch_key, new).finish()),
    }
}

fn write(tx: &Connection, rows: &Rollups<'_>) -> Result<(), StoreError> {
    let mut upsert = tx.prepare_cached(&upsert_sql())?;
    for (k, t) in &rows.totals {
        upsert.execute(params![
            k.dim,
            k.level,
            k.bucket,
            k.branch_key,
            k.key,
            t.sales,
            t.units,
            t.gross,
            t.returns
        ])?;
    }
    let mut select =
        tx.prepare_cached("SELECT detail FROM report_detail WHERE level = ?1 AND bucket = ?2 AND branch_key = ?3")?;
    let mut put = tx.prepare_cached(
        "INSERT INTO report_detail(level, bucket, branch_key, detail) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT(level, bucket, branch_key) DO UPDATE SET detail = excluded.detail",
    )?;
    for (&(level, bucket, branch), add) in &rows.details {
        let old: Option<Vec<u8>> = select
            .query_row(params![level, bucket, branch], |r| r.get(0))
            .optional()?;
        put.execute(params![level, bucket, branch, merge_detail(old.as_deref(), add)?])?;
    }
    Ok(())
}

/// Runs a report's reads, in the caller's snapshot.
pub(super) fn read(conn: &Connection, reads: &[RollupRead]) -> Result<Vec<Vec<RollupRow>>, StoreError> {
    let mut all = Vec::with_capacity(reads.len());
    for r in reads {
        let mut out = Vec::new();
        let mut p: Vec<&dyn ToSql> = vec![&r.dim, &r.level, &r.from_bucket, &r.to_bucket];
        if let RollupScope::Branch(b) = &r.scope {
            p.push(b);
        }
        if !matches!(r.dim, DIM_TOTAL | DIM_CHAIN) {
            let mut stmt = conn.prepare_cached(&detail_sql(r, |n| format!("?{n}"), ""))?;
            let blobs = stmt
                .query_map(&p[..], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<Result<Vec<(String, Vec<u8>)>, _>>()?;
            all.push(fold_details(blobs, r.dim)?);
            continue;
        }
        let sql = read_sql(r, |n| format!("?{n}"), "");
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(&p[..], |row| {
            Ok(RollupRow {
                branch_id: row.get(0)?,
                bucket: row.get(1)?,
                key: row.get(2)?,
                sales: row.get(3)?,
                units: row.get(4)?,
                gross: row.get(5)?,
                returns: row.get(6)?,
            })
        })?;
        for row in rows {
            out.push(row?);
        }
        all.push(out);
    }
    Ok(all)
}

/// Sales and returns added per write while filling (bounds the memory of the fill).
const FILL_BATCH: usize = 50_000;

/// Fills the rollups from every sale and return already applied (the migration that
/// created them runs this in its own transaction).
pub(super) fn backfill(tx: &Connection) -> Result<(), StoreError> {
    // (branch key, at, event), written FILL_BATCH at a time.
    let mut batch: Vec<(i64, i64, Event)> = Vec::new();
    {
        let mut sales =
            tx.prepare("SELECT branch_key, sold_ms, total_cents, cashier_id, lines, payments FROM sales")?;
        let mut rows = sales.query([])?;
        while let Some(r) = rows.next()? {
            let (key, at, total): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            let lines: String = r.get(4)?;
            let payments: Option<String> = r.get(5)?;
            batch.push((key, at, stored_sale(total, r.get(3)?, &lines, payments.as_deref())?));
            if batch.len() >= FILL_BATCH {
                write_batch(tx, &std::mem::take(&mut batch))?;
            }
        }
    }
    {
        let mut returns =
            tx.prepare("SELECT branch_key, returned_ms, total_cents, user_id, lines, refund_method FROM returns")?;
        let mut rows = returns.query([])?;
        while let Some(r) = rows.next()? {
            let (key, at, total): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            let user: Option<String> = r.get(3)?;
            let lines: String = r.get(4)?;
            batch.push((key, at, stored_return(total, user.as_deref(), &lines, r.get(5)?)?));
            if batch.len() >= FILL_BATCH {
                write_batch(tx, &std::mem::take(&mut batch))?;
            }
        }
    }
    write_batch(tx, &batch)
}

fn write_batch(tx: &Connection, batch: &[(i64, i64, Event)]) -> Result<(), StoreError> {
    let mut acc = Acc::default();
    for (key, at, e) in batch {
        add_event(&mut acc, *key, *at, e);
    }
    write(tx, &acc.finish())
}
