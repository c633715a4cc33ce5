//! The catalog's rules both stores apply inside their write transaction (docs/protocol.md,
//! "Catalog at central"), and the `Idempotency-Key` records of central's admin writes.
//!
//! Invariants:
//! - A stored product is a base `price_cents` plus at most one scheduled price
//!   `(sched_price_cents, sched_effective_ms)`. A schedule whose instant has passed is the
//!   price in force ([`colmena_shared::catalog::price_in_force`]) even before a write folds
//!   it into the base, so readers never depend on when the fold happened.
//! - The version moves only when what a branch would apply changes (name, base price,
//!   schedule, barcode, category, active, reorder point): the same PUT again is no change,
//!   no feed entry and no audit entry.
//! - An `If-Match` is checked against the version read in the same transaction as the
//!   write, so two writers holding the same version cannot both win.
//! - An idempotency record is written only with a success, in the success's transaction:
//!   a record exists iff its change was committed.
use super::{AllocationOutcome, StoreError};
use colmena_shared::catalog::{price_in_force, Product, ScheduledPrice};
use colmena_shared::clock;
use colmena_shared::ids::ProductId;

/// The columns of a [`ProductRow`], in its field order (both stores select them so).
pub const PRODUCT_COLUMNS: &str =
    "name, price_cents, sched_price_cents, sched_effective_ms, barcode, category, active, reorder_point, version";

/// How long an `Idempotency-Key` is remembered (docs/protocol.md, "Idempotency keys").
pub const IDEMPOTENCY_TTL_MS: i64 = 24 * 60 * 60 * 1000;

/// A parsed `If-Match` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    /// `*`: any existing product.
    Any,
    /// The versions named by strong tags (`"3"`). Weak tags and strong tags that are no
    /// version of ours are well-formed but match nothing, so they are not kept.
    Versions(Vec<u64>),
}

impl IfMatch {
    /// Strong comparison against the stored version (`None`: no such product).
    pub fn matches(&self, current: Option<u64>) -> bool {
        match (self, current) {
            (_, None) => false,
            (IfMatch::Any, Some(_)) => true,
            (IfMatch::Versions(v), Some(c)) => v.contains(&c),
        }
    }
}

/// A validated `PUT /products/{id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductChange {
    pub product: ProductId,
    pub name: String,
    pub price_cents: i64,
    /// With a schedule: `price_cents` takes over at this instant (Unix ms, in the future
    /// when validated).
    pub effective_ms: Option<i64>,
    pub barcode: Option<String>,
    pub category: Option<String>,
    pub active: bool,
    pub reorder_point: i64,
    pub if_match: Option<IfMatch>,
}

/// A product as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductRow {
    pub name: String,
    pub price_cents: i64,
    pub sched_price_cents: Option<i64>,
    pub sched_effective_ms: Option<i64>,
    pub barcode: Option<String>,
    pub category: Option<String>,
    pub active: bool,
    pub reorder_point: i64,
    pub version: i64,
}

impl ProductRow {
    /// The schedule as `(price_cents, effective_ms)`, if both halves are stored.
    pub fn schedule(&self) -> Option<(i64, i64)> {
        self.sched_price_cents.zip(self.sched_effective_ms)
    }

    /// The row with a schedule whose instant has come folded into the base price.
    pub fn folded(mut self, now_ms: i64) -> ProductRow {
        if let Some((p, at)) = self.schedule() {
            if now_ms >= at {
                self.price_cents = p;
                self.sched_price_cents = None;
                self.sched_effective_ms = None;
            }
        }
        self
    }

    /// What clients read at `now_ms`: the price in force and the schedule still to come.
    pub fn view(&self, product_id: &str, now_ms: i64) -> Product {
        let sched = self.schedule();
        Product {
            product_id: product_id.to_string(),
            name: self.name.clone(),
            price_cents: price_in_force(self.price_cents, sched, now_ms),
            version: u64::try_from(self.version).unwrap_or(0),
            barcode: self.barcode.clone(),
            category: self.category.clone(),
            active: self.active,
            reorder_point: self.reorder_point,
            scheduled_price: sched.filter(|(_, at)| *at > now_ms).map(scheduled),
        }
    }

    /// Same content (everything but the version).
    fn same_content(&self, other: &ProductRow) -> bool {
        ProductRow {
            version: other.version,
            ..self.clone()
        } == *other
    }
}

/// A schedule as the wire carries it.
pub fn scheduled((price_cents, at): (i64, i64)) -> ScheduledPrice {
    ScheduledPrice {
        price_cents,
        effective_at: clock::millis_to_rfc3339(at),
    }
}

/// Result of [`super::Store::upsert_product`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProductOutcome {
    /// Created, changed, or the same fields again (then with its unchanged version).
    Saved(Product),
    /// `If-Match` named another version, or the product does not exist (`current: None`).
    VersionMismatch { current: Option<u64> },
    /// Another product holds the barcode.
    BarcodeTaken { barcode: String, holder: String },
    /// A schedule for a product that has no price in force yet.
    NoPriceInForce,
}

/// What a product PUT does, decided from the row read in the write transaction.
// One short-lived value per request, moved once: boxing the large variant saves nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum ProductPlan {
    /// Nothing to write: answer this (a refusal, or the same fields again).
    Answer(ProductOutcome),
    /// Write `row` (its version already moved on), a feed entry and an audit entry.
    Write {
        row: ProductRow,
        before: Option<Product>,
        saved: Product,
    },
}

/// The decision of a product PUT. `old` is the stored row (unfolded); the barcode's
/// uniqueness is the store's check (it needs a query).
pub fn plan_product_put(old: Option<ProductRow>, change: &ProductChange, now_ms: i64) -> ProductPlan {
    let old = old.map(|r| r.folded(now_ms));
    if let Some(m) = &change.if_match {
        let current = old.as_ref().map(|r| u64::try_from(r.version).unwrap_or(0));
        if !m.matches(current) {
            return ProductPlan::Answer(ProductOutcome::VersionMismatch { current });
        }
    }
    let (price_cents, sched) = match (change.effective_ms, &old) {
        (Some(_), None) => return ProductPlan::Answer(ProductOutcome::NoPriceInForce),
        (Some(at), Some(o)) => (o.price_cents, Some((change.price_cents, at))),
        (None, _) => (change.price_cents, None),
    };
    let mut row = ProductRow {
        name: change.name.clone(),
        price_cents,
        sched_price_cents: sched.map(|s| s.0),
        sched_effective_ms: sched.map(|s| s.1),
        barcode: change.barcode.clone(),
        category: change.category.clone(),
        active: change.active,
        reorder_point: change.reorder_point,
        version: 1,
    };
    let product_id = change.product.as_str();
    if let Some(o) = &old {
        if o.same_content(&row) {
            return ProductPlan::Answer(ProductOutcome::Saved(o.view(product_id, now_ms)));
        }
        row.version = o.version.saturating_add(1);
    }
    ProductPlan::Write {
        before: old.map(|o| o.view(product_id, now_ms)),
        saved: row.view(product_id, now_ms),
        row,
    }
}

/// An `Idempotency-Key` and what "the same request" means for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub key: String,
    /// Method, path, the request as understood (not its spelling) and its `If-Match`.
    pub fingerprint: String,
}

/// A write under an optional `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Idempotent<T> {
    /// Done now (or refused now: only successes are remembered).
    Fresh(T),
    /// The key's first success, answered again as it was.
    Replay { status: u16, body: String },
    /// The key was used for another request.
    KeyReused,
}

/// A stored idempotency record: fingerprint, status, body.
pub type IdempotencyRecord = (String, i64, String);

/// The answer a stored record gives to a request under its key, if any.
pub fn replay<T>(key: &IdempotencyKey, stored: Option<IdempotencyRecord>) -> Option<Idempotent<T>> {
    let (fingerprint, status, body) = stored?;
    if fingerprint != key.fingerprint {
        return Some(Idempotent::KeyReused);
    }
    Some(Idempotent::Replay {
        status: u16::try_from(status).unwrap_or(200),
        body,
    })
}

/// The status and body a success is remembered with, `None` for a refusal.
pub fn product_answer(outcome: &ProductOutcome) -> Result<Option<(i64, String)>, StoreError> {
    match outcome {
        ProductOutcome::Saved(p) => Ok(Some((200, super::common::json_text(p)?))),
        ProductOutcome::VersionMismatch { .. }
        | ProductOutcome::BarcodeTaken { .. }
        | ProductOutcome::NoPriceInForce => Ok(None),
    }
}

/// As [`product_answer`], for an allocation (201).
pub fn allocation_answer(outcome: &AllocationOutcome) -> Result<Option<(i64, String)>, StoreError> {
    match outcome {
        AllocationOutcome::Allocated(a) => Ok(Some((201, super::common::json_text(a)?))),
        AllocationOutcome::UnknownProduct | AllocationOutcome::UnknownBranch => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(price: i64, at: Option<i64>) -> ProductChange {
        ProductChange {
            product: ProductId::parse("P1").unwrap(),
            name: "Pan".into(),
            price_cents: price,
            effective_ms: at,
            barcode: None,
            category: None,
            active: true,
            reorder_point: 0,
            if_match: None,
        }
    }

    fn row(plan: ProductPlan) -> ProductRow {
        match plan {
            ProductPlan::Write { row, .. } => row,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_schedule_keeps_the_price_in_force_and_folds_once_its_instant_passed() {
        let first = row(plan_product_put(None, &change(100, None), 0));
        let sched = row(plan_product_put(Some(first), &change(120, Some(1_000)), 10));
        assert_eq!(
            (sched.price_cents, sched.schedule(), sched.version),
            (100, Some((120, 1_000)), 2)
        );
        assert_eq!(sched.view("P1", 999).price_cents, 100);
        assert_eq!(sched.view("P1", 1_000).price_cents, 120);
        assert!(sched.view("P1", 1_000).scheduled_price.is_none());
        // The same schedule again is no change.
        assert!(matches!(
            plan_product_put(Some(sched.clone()), &change(120, Some(1_000)), 20),
            ProductPlan::Answer(ProductOutcome::Saved(p)) if p.version == 2
        ));
        // After the instant, a PUT of the price now in force is no change either.
        assert!(matches!(
            plan_product_put(Some(sched), &change(120, None), 2_000),
            ProductPlan::Answer(ProductOutcome::Saved(p)) if p.version == 2 && p.price_cents == 120
        ));
        assert!(matches!(
            plan_product_put(None, &change(1, Some(5)), 0),
            ProductPlan::Answer(ProductOutcome::NoPriceInForce)
        ));
    }

    #[test]
    fn if_match_is_a_strong_comparison_with_the_stored_version() {
        let first = row(plan_product_put(None, &change(100, None), 0));
        let mut c = change(200, None);
        c.if_match = Some(IfMatch::Versions(vec![2]));
        assert!(matches!(
            plan_product_put(Some(first.clone()), &c, 0),
            ProductPlan::Answer(ProductOutcome::VersionMismatch { current: Some(1) })
        ));
        c.if_match = Some(IfMatch::Any);
        assert!(matches!(
            plan_product_put(None, &c, 0),
            ProductPlan::Answer(ProductOutcome::VersionMismatch { current: None })
        ));
        c.if_match = Some(IfMatch::Versions(vec![7, 1]));
        assert_eq!(row(plan_product_put(Some(first), &c, 0)).version, 2);
    }
}
