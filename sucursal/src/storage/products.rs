//! The `products` table: name, price, catalog version and committed stock of each product.
//! (The in-memory [`crate::inventory::Inventory`] answers sales; this table is what it is
//! rebuilt from at start, and what the listing endpoints read names from.)
use super::db::{Result, StoreError};
use rusqlite::{params, Connection, OptionalExtension};

#[derive(Debug, Clone)]
pub struct ProductRow {
    pub product_id: String,
    pub name: String,
    pub price_cents: i64,
    pub version: u64,
    pub stock: i64,
}

pub fn load_all(conn: &Connection) -> Result<Vec<ProductRow>> {
    let mut st = conn.prepare("SELECT product_id, name, price_cents, version, stock FROM products")?;
    let rows = st.query_map([], |r| {
        Ok(ProductRow {
            product_id: r.get(0)?,
            name: r.get(1)?,
            price_cents: r.get(2)?,
            version: r.get::<_, i64>(3)?.max(0) as u64,
            stock: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
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

/// A catalog change from central: inserts the product, or updates its name and price when
/// `version` is newer than the one stored (an older version is ignored).
pub fn upsert_catalog(conn: &Connection, product_id: &str, name: &str, price_cents: i64, version: u64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO products(product_id, name, price_cents, version, stock) VALUES (?1, ?2, ?3, ?4, 0)
         ON CONFLICT(product_id) DO UPDATE SET name = excluded.name, price_cents = excluded.price_cents,
            version = excluded.version WHERE excluded.version > products.version",
    )?
    .execute(params![product_id, name, price_cents, version as i64])?;
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
