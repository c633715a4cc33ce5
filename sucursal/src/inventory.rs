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
//! - Only what `/sell` needs lives here (price, its schedule, version, stock, whether the
//!   product is active and its reorder point: 48 bytes a product, keyed by an id stored
//!   inline up to 24 bytes, so no allocation per product). Names are read from the store by
//!   the listing endpoints and kept by the search index ([`crate::catalog`]), so a branch with
//!   100,000 products keeps its memory small (BENCHMARKS.md, P9).
//! - A sale's unit price is the price in force at the instant it is reserved, on this
//!   branch's clock ([`price_in_force`]): a scheduled price takes over by itself at its
//!   instant, offline too, with no timer and no pull (docs/protocol.md, "Catalog at the
//!   branch").
use crate::storage::products::{CatalogFields, ProductRow};
use colmena_shared::catalog::price_in_force;
use compact_str::CompactString;
use dashmap::DashMap;
use std::collections::BTreeMap;

/// The `sched_effective_ms` of a product with nothing scheduled.
const NO_SCHEDULE: i64 = i64::MAX;

#[derive(Debug, Clone, Copy)]
pub struct Item {
    /// The base price: in force until `sched_effective_ms`.
    pub price_cents: i64,
    pub version: u64,
    pub stock: i64,
    /// The price from `sched_effective_ms` on (meaningless when that is [`NO_SCHEDULE`]).
    pub sched_price_cents: i64,
    pub sched_effective_ms: i64,
    /// 0: no reorder point. At most `MAX_REORDER_POINT` (10^6), so 32 bits hold it.
    pub reorder_point: u32,
    /// An inactive product is not sold nor found; what was sold of it may still be returned.
    pub active: bool,
}

impl Item {
    /// A product with no catalog fields beyond its price (a seed entry, a placeholder).
    pub fn plain(price_cents: i64, version: u64, stock: i64) -> Item {
        Item {
            price_cents,
            version,
            stock,
            sched_price_cents: 0,
            sched_effective_ms: NO_SCHEDULE,
            reorder_point: 0,
            active: true,
        }
    }

    fn set_catalog(&mut self, price_cents: i64, version: u64, f: &CatalogFields) {
        self.price_cents = price_cents;
        self.version = version;
        let (p, at) = f.scheduled.unwrap_or((0, NO_SCHEDULE));
        self.sched_price_cents = p;
        self.sched_effective_ms = at;
        self.reorder_point = u32::try_from(f.reorder_point.max(0)).unwrap_or(u32::MAX);
        self.active = f.active;
    }

    /// `(price_cents, effective_ms)` of the scheduled price, if any.
    pub fn scheduled(&self) -> Option<(i64, i64)> {
        (self.sched_effective_ms != NO_SCHEDULE).then_some((self.sched_price_cents, self.sched_effective_ms))
    }

    /// The unit price in force at `now_ms`.
    pub fn price_at(&self, now_ms: i64) -> i64 {
        price_in_force(self.price_cents, self.scheduled(), now_ms)
    }

    /// Active, with a reorder point, and below it.
    pub fn is_low(&self) -> bool {
        self.active && self.reorder_point > 0 && self.stock < i64::from(self.reorder_point)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReserveError {
    UnknownProduct(String),
    /// A sale line names a product central made inactive.
    Inactive(String),
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
            let mut item = Item::plain(r.price_cents, r.version, r.stock);
            item.set_catalog(r.price_cents, r.version, &r.catalog);
            map.insert(CompactString::from(r.product_id), item);
        }
        Inventory { map }
    }

    /// Takes the units of a sale priced at `now_ms`: all or nothing, and refused for an
    /// inactive product. Each line's unit price is the one in force at `now_ms`.
    pub fn reserve_for_sale(&self, lines: &[(String, i64)], now_ms: i64) -> Result<Vec<Reserved>, ReserveError> {
        self.take(lines, Some(now_ms))
    }

    /// Takes `quantity` of each product, all or nothing, active or not (a negative
    /// adjustment: shrinkage of a product no longer sold is still shrinkage).
    pub fn reserve(&self, lines: &[(String, i64)]) -> Result<Vec<Reserved>, ReserveError> {
        self.take(lines, None)
    }

    /// Lines naming the same product are checked against their sum. `sale_at`: a sale's
    /// instant (checks `active`, prices at that instant).
    fn take(&self, lines: &[(String, i64)], sale_at: Option<i64>) -> Result<Vec<Reserved>, ReserveError> {
        let mut wanted: BTreeMap<&str, i64> = BTreeMap::new();
        for (pid, q) in lines {
            *wanted.entry(pid.as_str()).or_insert(0) += *q;
        }
        let mut taken: Vec<Reserved> = Vec::with_capacity(wanted.len());
        for (pid, q) in wanted {
            let outcome = match self.map.get_mut(pid) {
                None => Err(ReserveError::UnknownProduct(pid.to_string())),
                Some(item) if sale_at.is_some() && !item.active => Err(ReserveError::Inactive(pid.to_string())),
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
                            unit_price_cents: item.price_at(sale_at.unwrap_or(i64::MIN)),
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

    /// Applies a catalog change from central unless we already have a newer version (the
    /// same rule as the store's, so memory and store agree).
    pub fn upsert_product(&self, product_id: &str, price_cents: i64, version: u64, f: &CatalogFields) {
        let mut e = self
            .map
            .entry(CompactString::from(product_id))
            .or_insert_with(|| Item::plain(price_cents, 0, 0));
        if version > e.version {
            e.set_catalog(price_cents, version, f);
        }
    }

    /// Active products with a reorder point whose stock is below it. O(products): meant for
    /// a scrape, never for the sale path.
    pub fn low_stock_count(&self) -> usize {
        self.map.iter().filter(|e| e.value().is_low()).count()
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
                catalog: CatalogFields::default(),
            },
            ProductRow {
                product_id: "P2".into(),
                name: "b".into(),
                price_cents: 250,
                version: 1,
                stock,
                catalog: CatalogFields::default(),
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
        i.upsert_product("P1", 999, 3, &CatalogFields::default());
        let inactive = CatalogFields {
            active: false,
            ..CatalogFields::default()
        };
        i.upsert_product("P1", 1, 2, &inactive);
        let p = i.get("P1").unwrap();
        assert_eq!((p.price_cents, p.version, p.stock, p.active), (999, 3, 1, true));
    }

    #[test]
    fn a_sale_is_priced_at_the_price_in_force_at_its_instant() {
        let i = inv(5);
        let f = CatalogFields {
            scheduled: Some((130, 1_000)),
            ..CatalogFields::default()
        };
        i.upsert_product("P1", 100, 2, &f);
        let before = i.reserve_for_sale(&[("P1".into(), 1)], 999).unwrap();
        let after = i.reserve_for_sale(&[("P1".into(), 1)], 1_000).unwrap();
        assert_eq!((before[0].unit_price_cents, after[0].unit_price_cents), (100, 130));
    }

    #[test]
    fn an_inactive_product_is_not_sold_but_may_still_be_adjusted() {
        let i = inv(5);
        let f = CatalogFields {
            active: false,
            reorder_point: 10,
            ..CatalogFields::default()
        };
        i.upsert_product("P2", 250, 2, &f);
        let err = i
            .reserve_for_sale(&[("P1".into(), 1), ("P2".into(), 1)], 0)
            .unwrap_err();
        assert_eq!(err, ReserveError::Inactive("P2".into()));
        assert_eq!(i.get("P1").unwrap().stock, 5, "the basket took nothing");
        assert!(i.reserve(&[("P2".into(), 1)]).is_ok());
        // Inactive products are not counted as low even below their reorder point.
        assert_eq!(i.low_stock_count(), 0);
    }

    #[test]
    fn an_item_stays_small() {
        // 100,000 of them live in memory (BENCHMARKS.md, P9).
        assert!(std::mem::size_of::<Item>() <= 48);
    }
}
