//! The catalog's writes and reads on SQLite: a product PUT (its rules in
//! [`crate::store::catalog`]) and the `Idempotency-Key` records of central's admin writes.
//!
//! Everything here runs on the single writer thread, inside the job's own savepoint: the
//! `If-Match` check, the barcode's uniqueness and the idempotency lookup read the state the
//! write then changes, and no other write can come between them.
use super::writer::Writer;
use super::KIND_PRODUCT;
use crate::store::catalog::{
    plan_product_put, product_answer, replay, IdempotencyKey, IdempotencyRecord, Idempotent, ProductChange,
    ProductOutcome, ProductPlan, ProductRow, IDEMPOTENCY_TTL_MS, PRODUCT_COLUMNS,
};
use crate::store::common::{json_text, ACTION_PRODUCT_PUT};
use crate::store::StoreError;
use colmena_shared::clock;
use colmena_shared::wire::Product;
use rusqlite::{params, Connection, OptionalExtension};

/// A `products` row selected with [`PRODUCT_COLUMNS`].
pub(super) fn product_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ProductRow> {
    Ok(ProductRow {
        name: r.get(0)?,
        price_cents: r.get(1)?,
        sched_price_cents: r.get(2)?,
        sched_effective_ms: r.get(3)?,
        barcode: r.get(4)?,
        category: r.get(5)?,
        active: r.get(6)?,
        reorder_point: r.get(7)?,
        version: r.get(8)?,
    })
}

/// Every product (or only `only`) as clients read it at `now_ms`, by `product_id`.
pub(super) fn read_products(conn: &Connection, only: Option<&str>, now_ms: i64) -> Result<Vec<Product>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {PRODUCT_COLUMNS}, product_id FROM products WHERE ?1 IS NULL OR product_id = ?1 ORDER BY product_id"
    ))?;
    let rows = stmt.query_map([only], |r| {
        let id: String = r.get(9)?;
        Ok(product_row(r)?.view(&id, now_ms))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The answer an `Idempotency-Key` already has, if any. Records past their 24 hours are
/// purged first (an index range delete, cheap), so a key is remembered exactly that long.
pub(super) fn lookup_key<T>(
    tx: &Connection,
    key: &IdempotencyKey,
    now_ms: i64,
) -> Result<Option<Idempotent<T>>, StoreError> {
    tx.prepare_cached("DELETE FROM idempotency WHERE created_ms < ?1")?
        .execute([now_ms - IDEMPOTENCY_TTL_MS])?;
    let stored: Option<IdempotencyRecord> = tx
        .prepare_cached("SELECT fingerprint, status, body FROM idempotency WHERE key = ?1")?
        .query_row([&key.key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    Ok(replay(key, stored))
}

/// Remembers a success under its key, in the success's own savepoint.
pub(super) fn record_key(
    tx: &Connection,
    key: &IdempotencyKey,
    answer: Option<(i64, String)>,
    now_ms: i64,
) -> Result<(), StoreError> {
    if let Some((status, body)) = answer {
        tx.prepare_cached(
            "INSERT INTO idempotency(key, fingerprint, status, body, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![key.key, key.fingerprint, status, body, now_ms])?;
    }
    Ok(())
}

impl Writer {
    pub(super) fn upsert_product(
        &mut self,
        change: &ProductChange,
        key: Option<&IdempotencyKey>,
    ) -> Result<Idempotent<ProductOutcome>, StoreError> {
        let now = clock::now_millis();
        let tx = self.conn.savepoint()?;
        if let Some(k) = key {
            if let Some(answer) = lookup_key(&tx, k, now)? {
                return Ok(answer); // dropping tx rolls the purge back: nothing changed
            }
        }
        let outcome = write_product(&tx, change, now)?;
        if let Some(k) = key {
            record_key(&tx, k, product_answer(&outcome)?, now)?;
        }
        tx.commit()?;
        Ok(Idempotent::Fresh(outcome))
    }
}

/// The product PUT proper: nothing is written unless the plan says so, so a refusal leaves
/// the savepoint as it found it.
fn write_product(tx: &Connection, change: &ProductChange, now: i64) -> Result<ProductOutcome, StoreError> {
    let product = change.product.as_str();
    let old = tx
        .prepare_cached(&format!("SELECT {PRODUCT_COLUMNS} FROM products WHERE product_id = ?1"))?
        .query_row([product], product_row)
        .optional()?;
    let (row, before, saved) = match plan_product_put(old, change, now) {
        ProductPlan::Answer(outcome) => return Ok(outcome),
        ProductPlan::Write { row, before, saved } => (row, before, saved),
    };
    if let Some(barcode) = &row.barcode {
        let holder: Option<String> = tx
            .prepare_cached("SELECT product_id FROM products WHERE barcode = ?1 AND product_id <> ?2")?
            .query_row([barcode, product], |r| r.get(0))
            .optional()?;
        if let Some(holder) = holder {
            return Ok(ProductOutcome::BarcodeTaken {
                barcode: barcode.clone(),
                holder,
            });
        }
    }
    tx.prepare_cached(
        "INSERT INTO products(product_id, name, price_cents, version, updated_ms, barcode, category, active, \
         reorder_point, sched_price_cents, sched_effective_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
         ON CONFLICT(product_id) DO UPDATE SET name = excluded.name, price_cents = excluded.price_cents, \
         version = excluded.version, updated_ms = excluded.updated_ms, barcode = excluded.barcode, \
         category = excluded.category, active = excluded.active, reorder_point = excluded.reorder_point, \
         sched_price_cents = excluded.sched_price_cents, sched_effective_ms = excluded.sched_effective_ms",
    )?
    .execute(params![
        product,
        row.name,
        row.price_cents,
        row.version,
        now,
        row.barcode,
        row.category,
        row.active,
        row.reorder_point,
        row.sched_price_cents,
        row.sched_effective_ms
    ])?;
    // The feed entry carries the stored base price and schedule, not the price in force:
    // a branch offline at the schedule's instant switches on its own clock.
    tx.prepare_cached(
        "INSERT INTO changes(kind, product_id, name, price_cents, version, created_ms, barcode, category, active, \
         reorder_point, sched_price_cents, sched_effective_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        KIND_PRODUCT,
        product,
        row.name,
        row.price_cents,
        row.version,
        now,
        row.barcode,
        row.category,
        row.active,
        row.reorder_point,
        row.sched_price_cents,
        row.sched_effective_ms
    ])?;
    let before = before.as_ref().map(json_text).transpose()?;
    let target = format!("/products/{product}");
    super::writes::insert_audit(
        tx,
        now,
        ACTION_PRODUCT_PUT,
        &target,
        before.as_deref(),
        &json_text(&saved)?,
    )?;
    Ok(ProductOutcome::Saved(saved))
}
