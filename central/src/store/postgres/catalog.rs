//! The catalog's writes and reads on PostgreSQL: a product PUT (its rules in
//! [`crate::store::catalog`]) and the `Idempotency-Key` records of central's admin writes.
//!
//! Every write here first takes the feed lock ([`super::writes::lock_feed`]), which every
//! feed writer of every central process takes: the `If-Match` check, the barcode's
//! uniqueness and the idempotency lookup therefore read the latest committed state, and no
//! other writer can change it before this transaction commits. Two requests with one key at
//! once are serialised on that lock; the second finds the first's record and replays it.
use super::writes::{insert_audit, lock_feed, take_cursor};
use super::{PgStore, KIND_PRODUCT};
use crate::store::catalog::{
    plan_product_put, product_answer, replay, IdempotencyKey, IdempotencyRecord, Idempotent, ProductChange,
    ProductOutcome, ProductPlan, ProductRow, IDEMPOTENCY_TTL_MS, PRODUCT_COLUMNS,
};
use crate::store::common::{json_text, ACTION_PRODUCT_PUT};
use crate::store::StoreError;
use colmena_shared::clock;
use colmena_shared::wire::Product;

type Tx<'a> = deadpool_postgres::Transaction<'a>;

/// A `products` row selected with [`PRODUCT_COLUMNS`].
fn product_row(r: &tokio_postgres::Row) -> Result<ProductRow, StoreError> {
    Ok(ProductRow {
        name: r.try_get(0)?,
        price_cents: r.try_get(1)?,
        sched_price_cents: r.try_get(2)?,
        sched_effective_ms: r.try_get(3)?,
        barcode: r.try_get(4)?,
        category: r.try_get(5)?,
        active: r.try_get(6)?,
        reorder_point: r.try_get(7)?,
        version: r.try_get(8)?,
    })
}

/// Every product (or only `only`) as clients read it at `now_ms`, by `product_id`.
pub(super) async fn read_products(tx: &Tx<'_>, only: Option<&str>, now_ms: i64) -> Result<Vec<Product>, StoreError> {
    let stmt = tx
        .prepare_cached(&format!(
            "SELECT {PRODUCT_COLUMNS}, product_id FROM products \
             WHERE $1::text IS NULL OR product_id = $1 ORDER BY product_id"
        ))
        .await?;
    let rows = tx.query(&stmt, &[&only]).await?;
    rows.iter()
        .map(|r| {
            let id: String = r.try_get(9)?;
            Ok(product_row(r)?.view(&id, now_ms))
        })
        .collect()
}

/// The answer an `Idempotency-Key` already has, if any; records past their 24 hours are
/// purged first (an index range delete), so a key is remembered exactly that long.
pub(super) async fn lookup_key<T>(
    tx: &Tx<'_>,
    key: &IdempotencyKey,
    now_ms: i64,
) -> Result<Option<Idempotent<T>>, StoreError> {
    let purge = tx
        .prepare_cached("DELETE FROM idempotency WHERE created_ms < $1")
        .await?;
    tx.execute(&purge, &[&(now_ms - IDEMPOTENCY_TTL_MS)]).await?;
    let select = tx
        .prepare_cached("SELECT fingerprint, status, body FROM idempotency WHERE key = $1")
        .await?;
    let stored: Option<IdempotencyRecord> = match tx.query_opt(&select, &[&key.key]).await? {
        Some(r) => Some((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)),
        None => None,
    };
    Ok(replay(key, stored))
}

/// Remembers a success under its key, in the success's own transaction.
pub(super) async fn record_key(
    tx: &Tx<'_>,
    key: &IdempotencyKey,
    answer: Option<(i64, String)>,
    now_ms: i64,
) -> Result<(), StoreError> {
    if let Some((status, body)) = answer {
        let stmt = tx
            .prepare_cached(
                "INSERT INTO idempotency(key, fingerprint, status, body, created_ms) VALUES ($1, $2, $3, $4, $5)",
            )
            .await?;
        tx.execute(&stmt, &[&key.key, &key.fingerprint, &status, &body, &now_ms])
            .await?;
    }
    Ok(())
}

impl PgStore {
    pub(super) async fn upsert_product_inner(
        &self,
        change: &ProductChange,
        key: Option<&IdempotencyKey>,
    ) -> Result<Idempotent<ProductOutcome>, StoreError> {
        let now = clock::now_millis();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // Every feed writer holds this lock, so what is read next is the latest committed.
        let last = lock_feed(&tx).await?;
        if let Some(k) = key {
            if let Some(answer) = lookup_key(&tx, k, now).await? {
                let _ = tx.rollback().await;
                return Ok(answer);
            }
        }
        let (outcome, wrote) = write_product(&tx, change, last, now).await?;
        let answer = product_answer(&outcome)?;
        match (key, answer) {
            (Some(k), Some(answer)) => record_key(&tx, k, Some(answer), now).await?,
            // Nothing to keep: a refusal, or the same fields again without a key.
            _ if !wrote => {
                let _ = tx.rollback().await;
                return Ok(Idempotent::Fresh(outcome));
            }
            _ => {}
        }
        tx.commit().await?;
        Ok(Idempotent::Fresh(outcome))
    }
}

/// The product PUT proper, under the feed lock (`last`: the last cursor handed out); also
/// says whether it wrote anything.
async fn write_product(
    tx: &Tx<'_>,
    change: &ProductChange,
    last: i64,
    now: i64,
) -> Result<(ProductOutcome, bool), StoreError> {
    let product = change.product.as_str();
    let select = tx
        .prepare_cached(&format!("SELECT {PRODUCT_COLUMNS} FROM products WHERE product_id = $1"))
        .await?;
    let old = tx.query_opt(&select, &[&product]).await?;
    let old = old.as_ref().map(product_row).transpose()?;
    let (row, before, saved) = match plan_product_put(old, change, now) {
        ProductPlan::Answer(outcome) => return Ok((outcome, false)),
        ProductPlan::Write { row, before, saved } => (row, before, saved),
    };
    if let Some(barcode) = &row.barcode {
        let stmt = tx
            .prepare_cached("SELECT product_id FROM products WHERE barcode = $1 AND product_id <> $2")
            .await?;
        if let Some(r) = tx.query_opt(&stmt, &[barcode, &product]).await? {
            let outcome = ProductOutcome::BarcodeTaken {
                barcode: barcode.clone(),
                holder: r.try_get(0)?,
            };
            return Ok((outcome, false));
        }
    }
    let cursor = last + 1;
    take_cursor(tx, cursor).await?;
    let upsert = tx
        .prepare_cached(
            "INSERT INTO products(product_id, name, price_cents, version, updated_ms, barcode, category, active, \
             reorder_point, sched_price_cents, sched_effective_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (product_id) DO UPDATE SET name = excluded.name, price_cents = excluded.price_cents, \
             version = excluded.version, updated_ms = excluded.updated_ms, barcode = excluded.barcode, \
             category = excluded.category, active = excluded.active, reorder_point = excluded.reorder_point, \
             sched_price_cents = excluded.sched_price_cents, sched_effective_ms = excluded.sched_effective_ms",
        )
        .await?;
    tx.execute(
        &upsert,
        &[
            &product,
            &row.name,
            &row.price_cents,
            &row.version,
            &now,
            &row.barcode,
            &row.category,
            &row.active,
            &row.reorder_point,
            &row.sched_price_cents,
            &row.sched_effective_ms,
        ],
    )
    .await?;
    // The feed entry carries the stored base price and schedule, not the price in force:
    // a branch offline at the schedule's instant switches on its own clock.
    let feed = tx
        .prepare_cached(
            "INSERT INTO changes(cursor, kind, product_id, name, price_cents, version, created_ms, barcode, \
             category, active, reorder_point, sched_price_cents, sched_effective_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .await?;
    tx.execute(
        &feed,
        &[
            &cursor,
            &KIND_PRODUCT,
            &product,
            &row.name,
            &row.price_cents,
            &row.version,
            &now,
            &row.barcode,
            &row.category,
            &row.active,
            &row.reorder_point,
            &row.sched_price_cents,
            &row.sched_effective_ms,
        ],
    )
    .await?;
    let before = before.as_ref().map(json_text).transpose()?;
    let target = format!("/products/{product}");
    insert_audit(
        tx,
        now,
        ACTION_PRODUCT_PUT,
        &target,
        before.as_deref(),
        &json_text(&saved)?,
    )
    .await?;
    Ok((ProductOutcome::Saved(saved), true))
}
