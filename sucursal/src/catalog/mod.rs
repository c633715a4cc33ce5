//! The catalog at the branch: `GET /products/search` (docs/protocol.md, "Catalog at the
//! branch").
//!
//! The names, ids and barcodes to search live in an immutable [`Snapshot`] ([`search`]),
//! built from the store at start and rebuilt by the relay after each pull that changed
//! products (once, however many pages), off the sale path; readers take an `Arc` of the current one, so a
//! rebuild never blocks a search and a search never sees half a catalog. What a pull does
//! not change on its own — stock, the price in force, `active` — is read from the inventory
//! at query time, so an answer is never staler than memory.
pub mod search;

pub use search::Snapshot;

use crate::error::BranchError;
use crate::inventory::Inventory;
use crate::storage::{products, StoreError};
use colmena_shared::catalog::{check_barcode, SearchHit, SearchResponse};
use rusqlite::Connection;
use std::sync::{Arc, Mutex, RwLock};

/// Longest `q`, in characters, after trimming.
pub const MAX_QUERY_CHARS: usize = 64;
/// Most hits of one search, and the default.
pub const MAX_LIMIT: u32 = 100;
pub const DEFAULT_LIMIT: u32 = 20;

/// The query string of `GET /products/search`.
#[derive(Debug, Clone, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Text to find in names and product ids (case and accents ignored), 1-64 characters
    /// after trimming. Exactly one of `q` and `barcode`.
    #[param(min_length = 1, max_length = 64)]
    pub q: Option<String>,
    /// 8-14 digits, matched exactly. Exactly one of `q` and `barcode`.
    #[param(pattern = "^[0-9]{8,14}$")]
    pub barcode: Option<String>,
    /// Most products answered, 1-100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

/// A checked search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    Text { q: String, limit: usize },
    Barcode(String),
}

impl SearchParams {
    pub fn check(self) -> Result<Query, BranchError> {
        let invalid = |m: &str| BranchError::InvalidRequest(m.to_string());
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(invalid("limit must be 1-100"));
        }
        match (self.q, self.barcode) {
            (Some(q), None) => {
                let q = q.trim();
                let n = q.chars().count();
                if n == 0 || n > MAX_QUERY_CHARS {
                    return Err(invalid("q must be 1-64 characters (after trimming)"));
                }
                Ok(Query::Text {
                    q: q.to_string(),
                    limit: limit as usize,
                })
            }
            (None, Some(b)) => {
                check_barcode(&b).map_err(BranchError::InvalidRequest)?;
                Ok(Query::Barcode(b))
            }
            _ => Err(invalid("give exactly one of q and barcode")),
        }
    }
}

/// The search index, swapped whole when the catalog changes.
pub struct Catalog {
    current: RwLock<Arc<Snapshot>>,
    /// A read-only connection to rebuild from (the branch's shared reader).
    reader: Arc<Mutex<Connection>>,
}

impl Catalog {
    /// Builds the index from the store (at start, after any first-boot seed).
    pub fn load(reader: Arc<Mutex<Connection>>) -> Result<Catalog, StoreError> {
        let snapshot = build(&reader)?;
        Ok(Catalog {
            current: RwLock::new(Arc::new(snapshot)),
            reader,
        })
    }

    /// The snapshot searches read now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        // A poisoned lock still holds a whole snapshot: only whole ones are ever stored.
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Rebuilds the index from the store, on a blocking thread: a full read and sort of the
    /// catalog (tens of milliseconds for 100,000 products) must not hold an async worker.
    /// Called once a pull whose pages changed products has stored them.
    pub async fn refresh(self: &Arc<Self>) -> Result<(), StoreError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let snapshot = Arc::new(build(&me.reader)?);
            let old = std::mem::replace(&mut *me.current.write().unwrap_or_else(|e| e.into_inner()), snapshot);
            // The build's temporaries (every row as Strings) and, once no search holds it,
            // the old snapshot go back to the OS rather than staying in RSS (BENCHMARKS.md, P9).
            drop(old);
            colmena_shared::memory::release_free_memory();
            Ok(())
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("the search index rebuild did not finish: {e}")))?
    }
}

fn build(reader: &Mutex<Connection>) -> Result<Snapshot, StoreError> {
    let rows = {
        let conn = reader.lock().unwrap_or_else(|e| e.into_inner());
        products::load_catalog(&conn)?
    };
    Ok(Snapshot::build(rows))
}

/// Answers a search: active products only, each with its stock and the price in force at
/// `now_ms`, read from `inventory` now.
pub fn search(catalog: &Catalog, inventory: &Inventory, query: &Query, now_ms: i64) -> SearchResponse {
    let snapshot = catalog.snapshot();
    let active = |id: &str| inventory.get(id).is_some_and(|i| i.active);
    let found = match query {
        Query::Text { q, limit } => snapshot.find_text(q, *limit, active),
        Query::Barcode(b) => snapshot.find_barcode(b, active),
    };
    let products = found
        .into_iter()
        .filter_map(|f| {
            // Read again for the figures: the product may have been sold meanwhile, and a
            // product gone from memory (never, today) is left out rather than invented.
            let item = inventory.get(f.product_id)?;
            Some(SearchHit {
                product_id: f.product_id.to_string(),
                name: f.name.to_string(),
                price_cents: item.price_at(now_ms),
                stock: item.stock,
                barcode: f.barcode.map(str::to_string),
            })
        })
        .collect();
    SearchResponse { products }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: Option<&str>, barcode: Option<&str>, limit: Option<u32>) -> SearchParams {
        SearchParams {
            q: q.map(str::to_string),
            barcode: barcode.map(str::to_string),
            limit,
        }
    }

    #[test]
    fn a_search_names_exactly_one_of_q_and_barcode_within_bounds() {
        assert_eq!(
            params(Some(" azúcar "), None, None).check().unwrap(),
            Query::Text {
                q: "azúcar".into(),
                limit: 20
            }
        );
        assert!(params(None, Some("7750885000018"), Some(100)).check().is_ok());
        let long = "x".repeat(65);
        for bad in [
            params(None, None, None),
            params(Some("a"), Some("7750885000018"), None),
            params(Some("   "), None, None),
            params(Some(&long), None, None),
            params(None, Some("77508850000A8"), None),
            params(None, Some("1234567"), None),
            params(Some("a"), None, Some(0)),
            params(Some("a"), None, Some(101)),
        ] {
            assert!(bad.clone().check().is_err(), "{bad:?}");
        }
        // 64 accented characters are 64 characters, not 128 bytes.
        assert!(params(Some(&"ú".repeat(64)), None, None).check().is_ok());
    }
}
