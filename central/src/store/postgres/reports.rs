//! The report rollups on PostgreSQL (the shape and rules are in `crate::store::reports`):
//! a push's rows as one `UNNEST` upsert in its transaction, a report's reads in one
//! snapshot, and the one-time fill from the sales and returns already applied.
//!
//! A push's total rows come sorted by the table's key, so two pushes that share rows (the
//! chain-wide shards) lock them in the same order and cannot deadlock; they may wait for
//! each other's commit, which is the price of reading a month by day from ~6,000 rows.
//! Its detail blobs are its branch's own: one read of them, one upsert.
use super::PgStore;
use crate::store::reports::{
    add_event, detail_sql, fold_details, merge_detail, read_sql, rollups_of, rollups_skipped, stored_return,
    stored_sale, Acc, RollupRead, RollupRow, RollupScope, Rollups, DIM_CHAIN, DIM_TOTAL, ROLLUP_ADD,
};
use crate::store::StoreError;
use colmena_shared::wire::Event;
use std::collections::HashMap;
use tokio_postgres::types::ToSql;

fn upsert_sql() -> String {
    format!(
        "INSERT INTO report_rollup(dim, level, bucket, branch_key, key, sales_count, units, gross_cents, \
         returns_cents) \
         SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::int8[], $4::int8[], $5::text[], $6::int8[], $7::int8[], \
         $8::int8[], $9::int8[]) \
         ON CONFLICT (dim, level, bucket, branch_key, key) DO UPDATE SET {ROLLUP_ADD}"
    )
}

/// Adds a push's newly applied events to the rollups, in the push's transaction.
pub(super) async fn write_push(
    tx: &deadpool_postgres::Transaction<'_>,
    branch_key: i64,
    new: &[Event],
) -> Result<(), StoreError> {
    if rollups_skipped() || new.is_empty() {
        return Ok(());
    }
    write(tx, &rollups_of(branch_key, new).finish()).await
}

async fn write(tx: &deadpool_postgres::Transaction<'_>, rows: &Rollups<'_>) -> Result<(), StoreError> {
    if !rows.totals.is_empty() {
        write_totals(tx, rows).await?;
    }
    if !rows.details.is_empty() {
        write_details(tx, rows).await?;
    }
    Ok(())
}

async fn write_totals(tx: &deadpool_postgres::Transaction<'_>, rows: &Rollups<'_>) -> Result<(), StoreError> {
    let n = rows.totals.len();
    let (mut dim, mut level, mut bucket, mut branch, mut key) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut sales, mut units, mut gross, mut returns) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for (k, t) in &rows.totals {
        dim.push(k.dim);
        level.push(k.level);
        bucket.push(k.bucket);
        branch.push(k.branch_key);
        key.push(k.key.as_str());
        sales.push(t.sales);
        units.push(t.units);
        gross.push(t.gross);
        returns.push(t.returns);
    }
    let stmt = tx.prepare_cached(&upsert_sql()).await?;
    let p: [&(dyn ToSql + Sync); 9] = [&dim, &level, &bucket, &branch, &key, &sales, &units, &gross, &returns];
    tx.execute(&stmt, &p).await?;
    Ok(())
}

/// Rewrites the detail blobs a push touches: one read of them all, one upsert. Their
/// branch's pushes are serialised by its locked branch row, so nothing changes them in
/// between.
async fn write_details(tx: &deadpool_postgres::Transaction<'_>, rows: &Rollups<'_>) -> Result<(), StoreError> {
    let (mut level, mut bucket, mut branch) = (Vec::new(), Vec::new(), Vec::new());
    for &(l, b, k) in rows.details.keys() {
        level.push(l);
        bucket.push(b);
        branch.push(k);
    }
    let select = tx
        .prepare_cached(
            "SELECT d.level, d.bucket, d.branch_key, d.detail FROM report_detail d \
             JOIN UNNEST($1::int8[], $2::int8[], $3::int8[]) AS w(level, bucket, branch_key) \
             ON d.level = w.level AND d.bucket = w.bucket AND d.branch_key = w.branch_key",
        )
        .await?;
    let mut old: HashMap<(i64, i64, i64), Vec<u8>> = HashMap::new();
    for r in tx.query(&select, &[&level, &bucket, &branch]).await? {
        old.insert((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?), r.try_get(3)?);
    }
    let mut texts = Vec::with_capacity(rows.details.len());
    for (k, add) in &rows.details {
        texts.push(merge_detail(old.get(k).map(Vec::as_slice), add)?);
    }
    let put = tx
        .prepare_cached(
            "INSERT INTO report_detail(level, bucket, branch_key, detail) \
             SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::int8[], $4::bytea[]) \
             ON CONFLICT (level, bucket, branch_key) DO UPDATE SET detail = excluded.detail",
        )
        .await?;
    tx.execute(&put, &[&level, &bucket, &branch, &texts]).await?;
    Ok(())
}

impl PgStore {
    /// Runs a report's reads in one snapshot.
    pub(super) async fn report_rows_inner(&self, reads: Vec<RollupRead>) -> Result<Vec<Vec<RollupRow>>, StoreError> {
        self.snapshot_read(move |tx| {
            Box::pin(async move {
                let mut all = Vec::with_capacity(reads.len());
                for r in &reads {
                    let mut out = Vec::new();
                    let mut p: Vec<&(dyn ToSql + Sync)> = vec![&r.dim, &r.level, &r.from_bucket, &r.to_bucket];
                    if let RollupScope::Branch(b) = &r.scope {
                        p.push(b);
                    }
                    if !matches!(r.dim, DIM_TOTAL | DIM_CHAIN) {
                        let stmt = tx.prepare_cached(&detail_sql(r, |n| format!("${n}"), "::int8")).await?;
                        let mut blobs = Vec::new();
                        for row in tx.query(&stmt, &p).await? {
                            blobs.push((row.try_get(0)?, row.try_get(1)?));
                        }
                        all.push(fold_details(blobs, r.dim)?);
                        continue;
                    }
                    let sql = read_sql(r, |n| format!("${n}"), "::int8");
                    let stmt = tx.prepare_cached(&sql).await?;
                    for row in tx.query(&stmt, &p).await? {
                        out.push(RollupRow {
                            branch_id: row.try_get(0)?,
                            bucket: row.try_get(1)?,
                            key: row.try_get(2)?,
                            sales: row.try_get(3)?,
                            units: row.try_get(4)?,
                            gross: row.try_get(5)?,
                            returns: row.try_get(6)?,
                        });
                    }
                    all.push(out);
                }
                Ok(all)
            })
        })
        .await
    }
}

/// Rows read per page while filling.
const FILL_PAGE: i64 = 50_000;

/// Fills the rollups from every sale and return already applied, page by page (the
/// migration that created them runs this in its own transaction).
pub(super) async fn backfill(tx: &deadpool_postgres::Transaction<'_>) -> Result<(), StoreError> {
    let (mut after_key, mut after_seq) = (i64::MIN, i64::MIN);
    loop {
        let rows = tx
            .query(
                "SELECT branch_key, seq, sold_ms, total_cents, cashier_id, lines, payments FROM sales \
                 WHERE (branch_key, seq) > ($1, $2) ORDER BY branch_key, seq LIMIT $3",
                &[&after_key, &after_seq, &FILL_PAGE],
            )
            .await?;
        let mut batch = Vec::with_capacity(rows.len());
        for r in &rows {
            (after_key, after_seq) = (r.try_get(0)?, r.try_get(1)?);
            let lines: String = r.try_get(5)?;
            let payments: Option<String> = r.try_get(6)?;
            let e = stored_sale(r.try_get(3)?, r.try_get(4)?, &lines, payments.as_deref())?;
            batch.push((after_key, r.try_get::<_, i64>(2)?, e));
        }
        write_batch(tx, &batch).await?;
        if (rows.len() as i64) < FILL_PAGE {
            break;
        }
    }
    let (mut after_key, mut after_seq) = (i64::MIN, i64::MIN);
    loop {
        let rows = tx
            .query(
                "SELECT branch_key, seq, returned_ms, total_cents, user_id, lines, refund_method FROM returns \
                 WHERE (branch_key, seq) > ($1, $2) ORDER BY branch_key, seq LIMIT $3",
                &[&after_key, &after_seq, &FILL_PAGE],
            )
            .await?;
        let mut batch = Vec::with_capacity(rows.len());
        for r in &rows {
            (after_key, after_seq) = (r.try_get(0)?, r.try_get(1)?);
            let user: Option<String> = r.try_get(4)?;
            let lines: String = r.try_get(5)?;
            let e = stored_return(r.try_get(3)?, user.as_deref(), &lines, r.try_get(6)?)?;
            batch.push((after_key, r.try_get::<_, i64>(2)?, e));
        }
        write_batch(tx, &batch).await?;
        if (rows.len() as i64) < FILL_PAGE {
            break;
        }
    }
    Ok(())
}

async fn write_batch(tx: &deadpool_postgres::Transaction<'_>, batch: &[(i64, i64, Event)]) -> Result<(), StoreError> {
    let mut acc = Acc::default();
    for (key, at, e) in batch {
        add_event(&mut acc, *key, *at, e);
    }
    write(tx, &acc.finish()).await
}
