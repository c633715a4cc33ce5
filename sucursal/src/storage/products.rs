//! The `products` table: name, price, catalog fields (docs/protocol.md, "Catalog at the
//! branch"), catalog version and committed stock of each product. (The in-memory
//! [`crate::inventory::Inventory`] answers sales; this table is what it and the search index
//! ([`crate::catalog`]) are rebuilt from, and what the listing endpoints read names from.)
//!
//! Invariant: `stock` is the committed stock *except* for the sales of the writer's open
//! batch, which are written once at the end of the batch ([`super::apply`]'s `BatchCtx`);
//! whoever reads the stock inside the writer subtracts them ([`stock_of`] does not).
use super::db::{Result, StoreError};
use colmena_shared::catalog::{check_barcode, MAX_CATEGORY_CHARS, MAX_REORDER_POINT};
use colmena_shared::wire::Change;
use rusqlite::{params, Connection, OptionalExtension};

/// The catalog fields a product change carries beyond name and price. What an older central
/// leaves out reads as the defaults: no barcode, no category, active, no reorder point,
/// nothing scheduled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogFields {
    pub barcode: Option<String>,
    pub category: Option<String>,
    pub active: bool,
    pub reorder_point: i64,
    /// `(price_cents, effective_ms)`: the price that takes over at that instant.
    pub scheduled: Option<(i64, i64)>,
}

impl Default for CatalogFields {
    fn default() -> Self {
        CatalogFields {
            barcode: None,
            category: None,
            active: true,
            reorder_point: 0,
            scheduled: None,
        }
    }
}

impl CatalogFields {
    /// The fields of a product change. Central checks them on its way in; a value that is
    /// still out of shape here (a newer or broken central) is dropped rather than failing
    /// the whole page, so the other changes still apply.
    pub fn of(c: &Change) -> CatalogFields {
        let barcode = c.barcode.clone().filter(|b| check_barcode(b).is_ok());
        let category = c
            .category
            .clone()
            .filter(|s| !s.is_empty() && s.chars().count() <= MAX_CATEGORY_CHARS);
        let scheduled = c.scheduled_price.as_ref().and_then(|s| {
            let at = colmena_shared::clock::parse_rfc3339_millis(&s.effective_at);
            match at {
                Some(at) if s.price_cents >= 0 => Some((s.price_cents, at)),
                _ => {
                    tracing::warn!(product_id = %c.product_id, "scheduled price out of shape in the pull feed; ignored");
                    None
                }
            }
        });
        CatalogFields {
            barcode,
            category,
            active: c.active.unwrap_or(true),
            reorder_point: c.reorder_point.unwrap_or(0).clamp(0, MAX_REORDER_POINT),
            scheduled,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ProductRow {
    pub product_id: String,
    pub name: String,
    pub price_cents: i64,
    pub version: u64,
    pub stock: i64,
    pub catalog: CatalogFields,
}

const ROW_COLUMNS: &str = "product_id, name, price_cents, version, stock, barcode, category, active, reorder_point, \
    sched_price_cents, sched_effective_ms";

fn row(r: &rusqlite::Row) -> rusqlite::Result<ProductRow> {
    let sched_price: Option<i64> = r.get(9)?;
    let sched_at: Option<i64> = r.get(10)?;
    Ok(ProductRow {
        product_id: r.get(0)?,
        name: r.get(1)?,
        price_cents: r.get(2)?,
        version: r.get::<_, i64>(3)?.max(0) as u64,
        stock: r.get(4)?,
        catalog: CatalogFields {
            barcode: r.get(5)?,
            category: r.get(6)?,
            active: r.get::<_, i64>(7)? != 0,
            reorder_point: r.get(8)?,
            scheduled: sched_price.zip(sched_at),
        },
    })
}

pub fn load_all(conn: &Connection) -> Result<Vec<ProductRow>> {
    let mut st = conn.prepare(&format!("SELECT {ROW_COLUMNS} FROM products"))?;
    let rows = st.query_map([], row)?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// The catalog as the search index needs it: id, name, barcode and whether it is active.
pub fn load_catalog(conn: &Connection) -> Result<Vec<(String, String, Option<String>)>> {
    let mut st = conn.prepare("SELECT product_id, name, barcode FROM products")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// Schema 4: the catalog fields. `ALTER TABLE ADD COLUMN` has no `IF NOT EXISTS`, so each
/// column is added only when missing: the migration stays idempotent like the rest.
pub(super) fn migrate_v4(conn: &Connection) -> Result<()> {
    let mut have = std::collections::HashSet::new();
    {
        let mut st = conn.prepare("PRAGMA table_info(products)")?;
        let names = st.query_map([], |r| r.get::<_, String>(1))?;
        for n in names {
            have.insert(n?);
        }
    }
    for (column, decl) in [
        ("barcode", "TEXT"),
        ("category", "TEXT"),
        ("active", "INTEGER NOT NULL DEFAULT 1"),
        ("reorder_point", "INTEGER NOT NULL DEFAULT 0"),
        ("sched_price_cents", "INTEGER"),
        ("sched_effective_ms", "INTEGER"),
    ] {
        if !have.contains(column) {
            conn.execute_batch(&format!("ALTER TABLE products ADD COLUMN {column} {decl}"))?;
        }
    }
    Ok(())
}

/// A product's stock as stored (see the module's invariant); `None` for no such product.
pub fn stock_of(conn: &Connection, product_id: &str) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT stock FROM products WHERE product_id = ?1")?
        .query_row([product_id], |r| r.get(0))
        .optional()?)
}

/// Every product's id and name, by id (for `GET /inventory`).
pub fn names(conn: &Connection) -> Result<Vec<(String, String)>> {
    let mut st = conn.prepare_cached("SELECT product_id, name FROM products ORDER BY product_id")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// One product's name.
pub fn name(conn: &Connection, product_id: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT name FROM products WHERE product_id = ?1")?
        .query_row([product_id], |r| r.get(0))
        .optional()?)
}

/// Adds `delta` to a product's stock; the number of rows changed (0: no such product).
pub fn add_stock(conn: &Connection, product_id: &str, delta: i64) -> Result<usize> {
    Ok(conn
        .prepare_cached("UPDATE products SET stock = stock + ?1 WHERE product_id = ?2")?
        .execute(params![delta, product_id])?)
}

/// Like [`add_stock`], for a product that must exist.
pub fn add_stock_of_known(conn: &Connection, product_id: &str, delta: i64) -> Result<()> {
    if add_stock(conn, product_id, delta)? == 0 {
        return Err(StoreError::Corrupt(format!(
            "stock change of unknown product {product_id}"
        )));
    }
    Ok(())
}

/// A catalog change from central: inserts the product, or updates its name, price and
/// catalog fields when `version` is newer than the one stored (an older version is ignored).
pub fn upsert_catalog(
    conn: &Connection,
    product_id: &str,
    name: &str,
    price_cents: i64,
    version: u64,
    f: &CatalogFields,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO products(product_id, name, price_cents, version, stock, barcode, category, active,
            reorder_point, sched_price_cents, sched_effective_ms)
         VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT(product_id) DO UPDATE SET name = excluded.name, price_cents = excluded.price_cents,
            version = excluded.version, barcode = excluded.barcode, category = excluded.category,
            active = excluded.active, reorder_point = excluded.reorder_point,
            sched_price_cents = excluded.sched_price_cents, sched_effective_ms = excluded.sched_effective_ms
         WHERE excluded.version > products.version",
    )?
    .execute(params![
        product_id,
        name,
        price_cents,
        version as i64,
        f.barcode,
        f.category,
        f.active as i64,
        f.reorder_point,
        f.scheduled.map(|s| s.0),
        f.scheduled.map(|s| s.1),
    ])?;
    Ok(())
}

/// An allocation from central: adds to the stock, creating a placeholder product (its id as
/// its name, price 0, version 0) if the catalog change has not arrived yet.
pub fn allocate(conn: &Connection, product_id: &str, quantity: i64) -> Result<()> {
    if add_stock(conn, product_id, quantity)? == 0 {
        conn.prepare_cached(
            "INSERT INTO products(product_id, name, price_cents, version, stock) VALUES (?1, ?1, 0, 0, ?2)",
        )?
        .execute(params![product_id, quantity])?;
    }
    Ok(())
}

/// A first-boot catalog entry.
pub fn insert_seed(conn: &Connection, product_id: &str, name: &str, price_cents: i64, stock: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO products(product_id, name, price_cents, version, stock) VALUES (?1, ?2, ?3, 0, ?4)",
    )?
    .execute(params![product_id, name, price_cents, stock])?;
    Ok(())
}
