//! The sales rollups both stores keep for the head office's reports (docs/protocol.md,
//! "Reports"): what a push adds to them, and how a report asks for them back.
//!
//! One table, `report_rollup`, keyed by (dimension, level, bucket, branch, key) with four
//! running figures (sales, units, gross, returns). A *level* is a bucket width in UTC:
//! a quarter hour, an hour or a day; `bucket` is `at_ms / width`. Every real time zone's
//! offset is a whole number of quarter hours, so any day or hour of any zone is a whole
//! number of quarter buckets: reports are exact without reading a sale. The coarser
//! levels only make long ranges cheap to read (a 30-day report of 1,000 branches reads
//! ~60,000 rows, not ~3,000,000).
//!
//! Invariants:
//! - A push's rollup rows are written in the push's own transaction, from its newly
//!   applied events only (never its duplicates), so a row is moved exactly once per event
//!   however often a batch is retried.
//! - A sale counts at its `occurred_at`; a return at its own `occurred_at` and under its
//!   own user and refund method, not the sale's: that is when and by whom the cash left
//!   the drawer (a store accountant's view).
//! - Rows are aggregated per push before they are written and come sorted in key order,
//!   so on PostgreSQL concurrent pushes lock shared rows in one order (no deadlock).
//! - Figures saturate at `i64::MAX` in the store rather than fail a push: a push that
//!   cannot apply would stick the branch's outbox forever.
use super::common::corrupt;
use super::StoreError;
use colmena_shared::ids::ProductId;
use colmena_shared::till::{CASH, UNSPECIFIED};
use colmena_shared::wire::{Event, EventKind, EventLine};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

/// Bucket widths, by level.
pub(crate) const QUARTER_MS: i64 = 15 * 60 * 1000;
pub(crate) const HOUR_MS: i64 = 60 * 60 * 1000;
pub(crate) const DAY_MS: i64 = 24 * 60 * 60 * 1000;
pub(crate) const LEVEL_QUARTER: i64 = 0;
pub(crate) const LEVEL_HOUR: i64 = 1;
pub(crate) const LEVEL_DAY: i64 = 2;

pub(crate) fn level_width(level: i64) -> i64 {
    match level {
        LEVEL_DAY => DAY_MS,
        LEVEL_HOUR => HOUR_MS,
        _ => QUARTER_MS,
    }
}

/// Dimensions: the whole branch, or split by product, cashier or tender method.
pub(crate) const DIM_TOTAL: i64 = 0;
pub(crate) const DIM_PRODUCT: i64 = 1;
pub(crate) const DIM_CASHIER: i64 = 2;
pub(crate) const DIM_METHOD: i64 = 3;

/// The levels kept per dimension. The per-branch totals have all three (a report by
/// branch over a month reads days, plus hours and quarters at its ragged edges); the
/// split dimensions skip hours to keep a push's writes down (their reports have no speed
/// goal and read quarters at the edges).
pub(crate) fn levels(dim: i64) -> &'static [i64] {
    match dim {
        DIM_TOTAL => &[LEVEL_DAY, LEVEL_HOUR, LEVEL_QUARTER],
        _ => &[LEVEL_DAY, LEVEL_QUARTER],
    }
}

/// Chain-wide totals (for reports by day or hour over every branch) live under these
/// negative branch keys, `-1 - branch_key % CHAIN_SHARDS`: one chain row per bucket would
/// make every push of every branch wait on one PostgreSQL row lock; eight spread that, and
/// a month by day still reads only ~6,000 rows.
pub(crate) const CHAIN_SHARDS: i64 = 8;
/// Levels of the chain-wide rows.
pub(crate) const CHAIN_LEVELS: &[i64] = &[LEVEL_HOUR, LEVEL_QUARTER];

/// `--skip-report-rollups`: a benchmark baseline only (ingest without the rollup writes, to
/// measure what they cost in the same run). Process-wide; reports are wrong while it is set.
static SKIP_ROLLUPS: AtomicBool = AtomicBool::new(false);

pub fn skip_rollups(skip: bool) {
    SKIP_ROLLUPS.store(skip, Ordering::Relaxed);
}

pub(crate) fn rollups_skipped() -> bool {
    SKIP_ROLLUPS.load(Ordering::Relaxed)
}

/// One rollup row's identity, in the table's key order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct RollupKey {
    pub dim: i64,
    pub level: i64,
    pub bucket: i64,
    pub branch_key: i64,
    pub key: String,
}

/// One rollup row's figures (all non-negative).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub sales: i64,
    pub units: i64,
    pub gross: i64,
    pub returns: i64,
}

impl Tally {
    fn add(&mut self, o: &Tally) {
        self.sales = self.sales.saturating_add(o.sales);
        self.units = self.units.saturating_add(o.units);
        self.gross = self.gross.saturating_add(o.gross);
        self.returns = self.returns.saturating_add(o.returns);
    }
}

/// What a push adds to the rollups, one entry per row it touches, in key order.
pub(crate) type Rollups = BTreeMap<RollupKey, Tally>;

/// The rollup rows of a push's newly applied events (sales and returns; other kinds do
/// not move money). `branch_key` is the pushing branch's key.
pub(crate) fn rollups_of(branch_key: i64, events: &[Event]) -> Rollups {
    let mut out = Rollups::new();
    for e in events {
        let Some(at) = colmena_shared::clock::parse_rfc3339_millis(&e.occurred_at) else {
            continue; // validated before any store sees it
        };
        add_event(&mut out, branch_key, at, e);
    }
    out
}

/// Adds one event, which happened at `at` (ms), to `out`.
pub(crate) fn add_event(out: &mut Rollups, branch_key: i64, at: i64, e: &Event) {
    match e.kind {
        EventKind::Sale => add_sale(out, branch_key, at, e),
        EventKind::Return => add_return(out, branch_key, at, e),
        _ => {}
    }
}

/// A stored sale as the event it was applied from (what its rollup rows need), for
/// filling the rollups of a store that had sales before they existed.
pub(crate) fn stored_sale(
    total: i64,
    cashier: Option<String>,
    lines: &str,
    payments: Option<&str>,
) -> Result<Event, StoreError> {
    let payments = payments
        .map(|p| super::till::decode_payments(Some(p), total))
        .transpose()?;
    Ok(Event {
        kind: EventKind::Sale,
        total_cents: Some(total),
        cashier_id: cashier,
        lines: Some(event_lines(lines)?),
        payments,
        ..Event::default()
    })
}

/// A stored return as the event it was applied from (see [`stored_sale`]).
pub(crate) fn stored_return(
    total: i64,
    user: Option<&str>,
    lines: &str,
    refund_method: String,
) -> Result<Event, StoreError> {
    let user_id = user
        .map(|u| colmena_shared::users::UserId::parse(u).map_err(corrupt))
        .transpose()?;
    Ok(Event {
        kind: EventKind::Return,
        total_cents: Some(total),
        user_id,
        lines: Some(event_lines(lines)?),
        refund_method: Some(refund_method),
        ..Event::default()
    })
}

fn event_lines(text: &str) -> Result<Vec<EventLine>, StoreError> {
    super::common::decode_lines(text)?
        .into_iter()
        .map(|l| {
            Ok(EventLine {
                product_id: ProductId::parse(&l.product_id).map_err(corrupt)?,
                quantity: l.quantity,
                unit_price_cents: l.unit_price_cents,
            })
        })
        .collect()
}

fn put(out: &mut Rollups, dim: i64, branch_key: i64, at: i64, key: &str, t: &Tally) {
    for &level in levels(dim) {
        let k = RollupKey {
            dim,
            level,
            bucket: at.div_euclid(level_width(level)),
            branch_key,
            key: key.to_string(),
        };
        out.entry(k).or_default().add(t);
    }
    if dim == DIM_TOTAL {
        for &level in CHAIN_LEVELS {
            let k = RollupKey {
                dim,
                level,
                bucket: at.div_euclid(level_width(level)),
                branch_key: -1 - branch_key.rem_euclid(CHAIN_SHARDS),
                key: String::new(),
            };
            out.entry(k).or_default().add(t);
        }
    }
}

fn add_sale(out: &mut Rollups, branch_key: i64, at: i64, e: &Event) {
    let lines = e.lines.as_deref().unwrap_or_default();
    let total = e.total_cents.unwrap_or_default();
    let units = lines.iter().fold(0i64, |u, l| u.saturating_add(l.quantity));
    let sale = Tally {
        sales: 1,
        units,
        gross: total,
        returns: 0,
    };
    put(out, DIM_TOTAL, branch_key, at, "", &sale);
    put(
        out,
        DIM_CASHIER,
        branch_key,
        at,
        e.cashier_id.as_deref().unwrap_or(""),
        &sale,
    );
    // A product on two lines of one sale is still one sale of it.
    let mut products: BTreeMap<&str, Tally> = BTreeMap::new();
    for l in lines {
        let t = products.entry(l.product_id.as_str()).or_default();
        t.sales = 1;
        t.units = t.units.saturating_add(l.quantity);
        t.gross = t.gross.saturating_add(l.quantity.saturating_mul(l.unit_price_cents));
    }
    for (p, t) in &products {
        put(out, DIM_PRODUCT, branch_key, at, p, t);
    }
    for (m, amount) in tenders(e) {
        let t = Tally {
            sales: 1,
            units,
            gross: amount,
            returns: 0,
        };
        put(out, DIM_METHOD, branch_key, at, &m, &t);
    }
}

/// What each method of a sale really took: its payments, less the change (given from
/// cash, the only method that may exceed the total), so the methods add up to the total
/// exactly. A sale without payments is one `unspecified` tender of its total.
pub(crate) fn tenders(e: &Event) -> BTreeMap<String, i64> {
    let total = e.total_cents.unwrap_or_default();
    let mut out = BTreeMap::new();
    let Some(payments) = e.payments.as_deref() else {
        out.insert(UNSPECIFIED.to_string(), total);
        return out;
    };
    let paid = payments.iter().fold(0i64, |s, p| s.saturating_add(p.amount_cents));
    let mut change = paid.saturating_sub(total).max(0);
    for p in payments {
        let mut amount = p.amount_cents;
        if p.method == CASH && change > 0 {
            let given = change.min(amount);
            amount -= given;
            change -= given;
        }
        let slot = out.entry(p.method.clone()).or_insert(0i64);
        *slot = slot.saturating_add(amount);
    }
    out
}

fn add_return(out: &mut Rollups, branch_key: i64, at: i64, e: &Event) {
    let total = e.total_cents.unwrap_or_default();
    let refund = Tally {
        returns: total,
        ..Tally::default()
    };
    put(out, DIM_TOTAL, branch_key, at, "", &refund);
    let user = e.user_id.as_ref().map(|u| u.as_str()).unwrap_or("");
    put(out, DIM_CASHIER, branch_key, at, user, &refund);
    put(
        out,
        DIM_METHOD,
        branch_key,
        at,
        e.refund_method.as_deref().unwrap_or(UNSPECIFIED),
        &refund,
    );
    let mut products: BTreeMap<&str, i64> = BTreeMap::new();
    for l in e.lines.as_deref().unwrap_or_default() {
        let r = products.entry(l.product_id.as_str()).or_default();
        *r = r.saturating_add(l.quantity.saturating_mul(l.unit_price_cents));
    }
    for (p, r) in products {
        let t = Tally {
            returns: r,
            ..Tally::default()
        };
        put(out, DIM_PRODUCT, branch_key, at, p, &t);
    }
}

/// The upsert's `SET` clause (the same text works on SQLite and PostgreSQL): adds the
/// pushed figures, saturating at `i64::MAX` (figures are never negative).
pub(crate) const ROLLUP_ADD: &str = "sales_count = CASE WHEN report_rollup.sales_count > \
     9223372036854775807 - excluded.sales_count THEN 9223372036854775807 ELSE report_rollup.sales_count + \
     excluded.sales_count END, units = CASE WHEN report_rollup.units > 9223372036854775807 - excluded.units THEN \
     9223372036854775807 ELSE report_rollup.units + excluded.units END, gross_cents = CASE WHEN \
     report_rollup.gross_cents > 9223372036854775807 - excluded.gross_cents THEN 9223372036854775807 ELSE \
     report_rollup.gross_cents + excluded.gross_cents END, returns_cents = CASE WHEN report_rollup.returns_cents > \
     9223372036854775807 - excluded.returns_cents THEN 9223372036854775807 ELSE report_rollup.returns_cents + \
     excluded.returns_cents END";

/// Which branches' rows a read takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollupScope {
    /// One branch (by id; an unknown branch has no rows).
    Branch(String),
    /// Every branch, each row with its branch.
    AllBranches,
    /// The chain-wide rows (every branch, summed).
    Chain,
}

/// One read of the rollups: the rows of `dim` at `level` with buckets in
/// `[from_bucket, to_bucket)`, summed per branch and key (and per bucket if `by_bucket`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupRead {
    pub dim: i64,
    pub level: i64,
    pub from_bucket: i64,
    pub to_bucket: i64,
    pub scope: RollupScope,
    pub by_bucket: bool,
}

/// A row read back: the branch id (empty for chain rows), the bucket (0
/// unless read `by_bucket`), the key and the figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupRow {
    pub branch_id: String,
    pub bucket: i64,
    pub key: String,
    pub sales: i64,
    pub units: i64,
    pub gross: i64,
    pub returns: i64,
}

/// The `SELECT` of one read, for the store whose placeholders `p(n)` writes (`?n` or
/// `$n`) and whose sums need `cast` to come back as i64 (PostgreSQL's `SUM(int8)` is a
/// numeric). Parameters: dim, level, from_bucket, to_bucket and, for one branch, its id.
/// Rows are summed by branch key first and named after (one branch lookup per group, not
/// per row); chain rows have no branch (an empty id), and their shards come back one row
/// each, for the caller to add up.
pub(crate) fn read_sql(read: &RollupRead, p: fn(usize) -> String, cast: &str) -> String {
    // A literal in GROUP BY is a column position in SQLite: only a real column goes there.
    let (bucket_col, group_bucket) = if read.by_bucket {
        ("r.bucket".to_string(), "r.bucket, ")
    } else {
        (format!("0{cast}"), "")
    };
    let scope = match read.scope {
        RollupScope::Branch(_) => format!(
            "r.branch_key = (SELECT branch_key FROM branches WHERE branch_id = {})",
            p(5)
        ),
        RollupScope::AllBranches => "r.branch_key > 0".to_string(),
        RollupScope::Chain => "r.branch_key < 0".to_string(),
    };
    format!(
        "SELECT COALESCE(b.branch_id, ''), g.bucket, g.key, g.sales, g.units, g.gross, g.returns FROM \
         (SELECT r.branch_key AS branch_key, {bucket_col} AS bucket, r.key AS key, SUM(r.sales_count){cast} AS sales, \
         SUM(r.units){cast} AS units, SUM(r.gross_cents){cast} AS gross, SUM(r.returns_cents){cast} AS returns \
         FROM report_rollup r WHERE r.dim = {} AND r.level = {} AND r.bucket >= {} AND r.bucket < {} AND {scope} \
         GROUP BY r.branch_key, {group_bucket}r.key) g LEFT JOIN branches b ON b.branch_key = g.branch_key",
        p(1),
        p(2),
        p(3),
        p(4)
    )
}
