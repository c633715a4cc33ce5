//! The in-memory inventory every `/sell` is answered from.
//!
//! Invariants:
//! - `stock` here = committed stock (SQLite) − reservations of sales not yet committed.
//!   A sale reserves before it is queued for commit and the reservation is released if the
//!   commit fails, so two concurrent sales can never both take the last unit.
//! - Stock only *increases* here after the increase is durable (adjustments +, allocations
//!   from central), so nothing is ever sold from units that could still vanish.
//! - No `RefMut` is held across an `.await` or while touching another key: every line is
//!   reserved under its own shard lock, one after the other, in product-id order.
//! - Only what `/sell` needs lives here (price, version, stock: 24 bytes a product, keyed by
//!   an id stored inline up to 24 bytes, so no allocation per product). Names are read from
//!   the store by the listing endpoints, so a branch with 100,000 products keeps its memory
//!   small (BENCHMARKS.md, P9).
use crate::storage::products::ProductRow;
use compact_str::CompactString;
use dashmap::DashMap;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy)]
pub struct Item {
    pub price_cents: i64,
    pub version: u64,
    pub stock: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReserveError {
    UnknownProduct(String),
    Insufficient {
        product_id: String,
        available: i64,
        requested: i64,
    },
}

/// Units taken from one product for one request, to give back if the commit fails.
#[derive(Debug, Clone)]
pub struct Reserved {
    pub product_id: String,
    pub quantity: i64,
    pub unit_price_cents: i64,
    /// Stock right after this reservation.
    pub remaining: i64,
}

#[derive(Default)]
pub struct Inventory {
    map: DashMap<CompactString, Item>,
}

impl Inventory {
    pub fn from_rows(rows: Vec<ProductRow>) -> Inventory {
        let map = DashMap::with_capacity(rows.len());
        for r in rows {
            map.insert(
                CompactString::from(r.product_id),
                Item {
                    price_cents: r.price_cents,
                    version: r.version,
                    stock: r.stock,
                },
            );
        }
        Inventory { map }
    }

    /// Takes `quantity` of each product, all or nothing. Lines naming the same product are
    /// checked against their sum.
    pub fn reserve(&self, lines: &[(String, i64)]) -> Result<Vec<Reserved>, ReserveError> {
        let mut wanted: BTreeMap<&str, i64> = BTreeMap::new();
        for (pid, q) in lines {
            *wanted.entry(pid.as_str()).or_insert(0) += *q;
        }
        let mut taken: Vec<Reserved> = Vec::with_capacity(wanted.len());
        for (pid, q) in wanted {
            let outcome = match self.map.get_mut(pid) {
                None => Err(ReserveError::UnknownProduct(pid.to_string())),
                Some(mut item) => {
                    if item.stock < q {
                        Err(ReserveError::Insufficient {
                            product_id: pid.to_string(),
                            available: item.stock.max(0),
                            requested: q,
                        })
                    } else {
                        item.stock -= q;
                        Ok(Reserved {
                            product_id: pid.to_string(),
                            quantity: q,
                            unit_price_cents: item.price_cents,
                            remaining: item.stock,
                        })
                    }
                }
            };
            match outcome {
                Ok(r) => taken.push(r),
                Err(e) => {
                    self.release(&taken);
                    return Err(e);
                }
            }
        }
        Ok(taken)
    }

    /// Gives reserved units back (the commit failed).
    pub fn release(&self, taken: &[Reserved]) {
        for r in taken {
            if let Some(mut item) = self.map.get_mut(r.product_id.as_str()) {
                item.stock += r.quantity;
            }
        }
    }

    /// Adds durable units (positive adjustment, allocation); returns the new stock.
    pub fn add(&self, product_id: &str, delta: i64) -> Option<i64> {
        self.map.get_mut(product_id).map(|mut item| {
            item.stock += delta;
            item.stock
        })
    }

    /// Applies a catalog change from central unless we already have a newer version.
    pub fn upsert_product(&self, product_id: &str, price_cents: i64, version: u64) {
        let mut e = self.map.entry(CompactString::from(product_id)).or_insert_with(|| Item {
            price_cents,
            version: 0,
            stock: 0,
        });
        if version > e.version {
            e.price_cents = price_cents;
            e.version = version;
        }
    }

    /// Inserts a product seen for the first time with its stock (first-boot seed).
    pub fn insert(&self, product_id: &str, item: Item) {
        self.map.insert(CompactString::from(product_id), item);
    }

    pub fn get(&self, product_id: &str) -> Option<Item> {
        self.map.get(product_id).map(|r| *r.value())
    }

    pub fn contains(&self, product_id: &str) -> bool {
        self.map.contains_key(product_id)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn inv(stock: i64) -> Inventory {
        Inventory::from_rows(vec![
            ProductRow {
                product_id: "P1".into(),
                name: "a".into(),
                price_cents: 100,
                version: 1,
                stock,
            },
            ProductRow {
                product_id: "P2".into(),
                name: "b".into(),
                price_cents: 250,
                version: 1,
                stock,
            },
        ])
    }

    #[test]
    fn a_basket_that_fails_on_one_line_takes_nothing() {
        let i = inv(5);
        let err = i.reserve(&[("P1".into(), 2), ("P2".into(), 6)]).unwrap_err();
        assert_eq!(
            err,
            ReserveError::Insufficient {
                product_id: "P2".into(),
                available: 5,
                requested: 6
            }
        );
        assert_eq!(i.get("P1").unwrap().stock, 5);
        assert_eq!(i.get("P2").unwrap().stock, 5);
    }

    #[test]
    fn repeated_lines_are_checked_against_their_sum() {
        let i = inv(5);
        assert!(i.reserve(&[("P1".into(), 3), ("P1".into(), 3)]).is_err());
        let r = i.reserve(&[("P1".into(), 2), ("P1".into(), 3)]).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].remaining, 0);
    }

    #[test]
    fn concurrent_reservations_never_oversell() {
        let i = Arc::new(inv(1000));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let i = i.clone();
                std::thread::spawn(move || (0..500).filter(|_| i.reserve(&[("P1".into(), 1)]).is_ok()).count())
            })
            .collect();
        let sold: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(sold, 1000);
        assert_eq!(i.get("P1").unwrap().stock, 0);
    }

    #[test]
    fn an_older_catalog_version_is_ignored() {
        let i = inv(1);
        i.upsert_product("P1", 999, 3);
        i.upsert_product("P1", 1, 2);
        let p = i.get("P1").unwrap();
        assert_eq!((p.price_cents, p.version, p.stock), (999, 3, 1));
    }
}
