//! The sales rollups both stores keep for the head office's reports (docs/protocol.md,
//! "Reports"): what a push adds to them, and how a report asks for them back.
//!
//! Two tables. `report_rollup` keeps the totals, keyed by (dimension 0, level, bucket,
//! branch, '') with four running figures (sales, units, gross, returns). A *level* is a
//! bucket width in UTC: a quarter hour, an hour or a day; `bucket` is `at_ms / width`.
//! Every real time zone's offset is a whole number of quarter hours, so any day or hour of
//! any zone is a whole number of quarter buckets: reports are exact without reading a sale.
//! The coarser levels only make long ranges cheap to read (a 30-day report of 1,000
//! branches reads ~55,000 rows, not ~3,000,000). `report_detail` keeps the split figures
//! (by product, cashier, method) as one binary blob per (quarter, branch) (`blob.rs`):
//! a push rewrites the blob of each quarter it touches (usually one, small: its branch's
//! sales of that quarter) instead of upserting a row per product it sold, and never a
//! day's blob, which would grow all day and be rewritten on every push. Reports by
//! product, cashier or method add the quarters' blobs up; they have no latency goal.
//! A push's figures are summed in memory first (`acc.rs`: keys borrowed from its events,
//! one hash update per figure), so it touches each row and blob once.
//!
//! Invariants:
//! - A push's rollup rows are written in the push's own transaction, from its newly
//!   applied events only (never its duplicates), so a row is moved exactly once per event
//!   however often a batch is retried.
//! - A sale counts at its `occurred_at`; a return at its own `occurred_at` and under its
//!   own user and refund method, not the sale's: that is when and by whom the cash left
//!   the drawer (a store accountant's view).
//! - Rows are aggregated per push before they are written and come sorted in key order,
//!   so on PostgreSQL concurrent pushes lock shared rows in one order (no deadlock). A
//!   detail blob belongs to one branch, whose pushes are serialised (its branch row is
//!   locked, or SQLite's single writer), so its read-modify-write cannot race.
//! - Figures saturate at `i64::MAX` in the store rather than fail a push: a push that
//!   cannot apply would stick the branch's outbox forever.
use super::common::corrupt;
use super::StoreError;
use colmena_shared::ids::ProductId;
use colmena_shared::till::{CASH, UNSPECIFIED};
use colmena_shared::wire::{Event, EventKind, EventLine};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

mod acc;
mod blob;

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
/// The chain-wide totals: a dimension of their own, so a read of them is one contiguous
/// key range (under the branches' totals they were interleaved with every branch's rows of
/// the same bucket, and a month by day scanned all of them).
pub(crate) const DIM_CHAIN: i64 = 4;

/// The levels kept per dimension. The per-branch totals have all three (a report by
/// branch over a month reads days, plus hours and quarters at its ragged edges); the
/// split dimensions keep quarters only, so a push rewrites one small blob per quarter it
/// touches (its branch's sales of that quarter), never a day's growing blob: their reports
/// have no speed goal and add the quarters up when read.
pub(crate) fn levels(dim: i64) -> &'static [i64] {
    match dim {
        DIM_TOTAL => &[LEVEL_DAY, LEVEL_HOUR, LEVEL_QUARTER],
        _ => &[LEVEL_QUARTER],
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

/// One detail blob's identity: (level, bucket, branch key).
pub(crate) type DetailKey = (i64, i64, i64);
/// A detail blob's content: (dimension, key) → figures.
#[cfg(test)]
pub(crate) type Detail = BTreeMap<(i64, String), Tally>;
/// What a push adds to one detail blob: (dimension, key, figures), sorted by dimension
/// and key, each once.
pub(crate) type DetailAdd<'a> = Vec<(i64, &'a str, Tally)>;

/// What a push adds to the rollups, in key order: the total rows, and the split figures
/// (product, cashier, method) of each (level, bucket, branch) it touches.
#[derive(Debug, Default)]
pub(crate) struct Rollups<'a> {
    pub totals: BTreeMap<RollupKey, Tally>,
    pub details: BTreeMap<DetailKey, DetailAdd<'a>>,
}

pub(crate) use acc::{prepare, Acc, Prepared};

/// The rollup figures of a push's newly applied events (sales and returns; other kinds do
/// not move money). `branch_key` is the pushing branch's key.
pub(crate) fn rollups_of(branch_key: i64, events: &[Event]) -> Acc<'_> {
    let mut acc = Acc::default();
    for e in events {
        let Some(at) = colmena_shared::clock::parse_rfc3339_millis(&e.occurred_at) else {
            continue; // validated before any store sees it
        };
        add_event(&mut acc, branch_key, at, e);
    }
    acc
}

/// Adds one event, which happened at `at` (ms), to `out`.
pub(crate) fn add_event<'a>(out: &mut Acc<'a>, branch_key: i64, at: i64, e: &'a Event) {
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

pub(crate) use blob::merge_detail;
#[cfg(test)]
use blob::{decode_detail, encode_detail};

/// Sums the detail blobs a read returned (`(branch_id, text)`) into rows of `dim`, per
/// branch and key.
pub(crate) fn fold_details(
    blobs: impl IntoIterator<Item = (String, Vec<u8>)>,
    dim: i64,
) -> Result<Vec<RollupRow>, StoreError> {
    let mut sums: BTreeMap<(String, String), Tally> = BTreeMap::new();
    for (branch, bytes) in blobs {
        for e in blob::entries(&bytes) {
            let e = e?;
            if e.dim == dim {
                let key = std::str::from_utf8(e.key).map_err(|_| corrupt("report detail key".to_string()))?;
                sums.entry((branch.clone(), key.to_string())).or_default().add(&e.tally);
            }
        }
    }
    Ok(sums
        .into_iter()
        .map(|((branch_id, key), t)| RollupRow {
            branch_id,
            bucket: 0,
            key,
            sales: t.sales,
            units: t.units,
            gross: t.gross,
            returns: t.returns,
        })
        .collect())
}

/// The `SELECT` of a read of a split dimension (product, cashier, method): the blobs of
/// its level and buckets, with their branch ids. Parameters as [`read_sql`]'s (the
/// dimension is checked, not filtered on: every blob holds all three; `cast` types it for
/// PostgreSQL, which would otherwise guess int4).
pub(crate) fn detail_sql(read: &RollupRead, p: fn(usize) -> String, cast: &str) -> String {
    let scope = match read.scope {
        RollupScope::Branch(_) => format!(
            "d.branch_key = (SELECT branch_key FROM branches WHERE branch_id = {})",
            p(5)
        ),
        _ => "d.branch_key > 0".to_string(),
    };
    format!(
        "SELECT COALESCE(b.branch_id, ''), d.detail FROM report_detail d \
         LEFT JOIN branches b ON b.branch_key = d.branch_key \
         WHERE {}{cast} > 0 AND d.level = {} AND d.bucket >= {} AND d.bucket < {} AND {scope}",
        p(1),
        p(2),
        p(3),
        p(4)
    )
}

fn add_sale<'a>(out: &mut Acc<'a>, branch_key: i64, at: i64, e: &'a Event) {
    let lines = e.lines.as_deref().unwrap_or_default();
    let total = e.total_cents.unwrap_or_default();
    let units = lines.iter().fold(0i64, |u, l| u.saturating_add(l.quantity));
    let sale = Tally {
        sales: 1,
        units,
        gross: total,
        returns: 0,
    };
    out.put(DIM_TOTAL, branch_key, at, "", &sale);
    out.put(
        DIM_CASHIER,
        branch_key,
        at,
        e.cashier_id.as_deref().unwrap_or(""),
        &sale,
    );
    // A product on two lines of one sale is still one sale of it.
    let mut products: Vec<(&'a str, Tally)> = Vec::with_capacity(lines.len());
    for l in lines {
        let p = l.product_id.as_str();
        let i = match products.iter().position(|(q, _)| *q == p) {
            Some(i) => i,
            None => {
                products.push((p, Tally::default()));
                products.len() - 1
            }
        };
        let t = &mut products[i].1;
        t.sales = 1;
        t.units = t.units.saturating_add(l.quantity);
        t.gross = t.gross.saturating_add(l.quantity.saturating_mul(l.unit_price_cents));
    }
    for (p, t) in &products {
        out.put(DIM_PRODUCT, branch_key, at, p, t);
    }
    for (m, amount) in tenders(e) {
        let t = Tally {
            sales: 1,
            units,
            gross: amount,
            returns: 0,
        };
        out.put(DIM_METHOD, branch_key, at, m, &t);
    }
}

/// What each method of a sale really took: its payments, less the change (given from
/// cash, the only method that may exceed the total), so the methods add up to the total
/// exactly. A sale without payments is one `unspecified` tender of its total. Each method
/// once, in the order the payments first name it.
pub(crate) fn tenders(e: &Event) -> Vec<(&str, i64)> {
    let total = e.total_cents.unwrap_or_default();
    let Some(payments) = e.payments.as_deref() else {
        return vec![(UNSPECIFIED, total)];
    };
    let mut out: Vec<(&str, i64)> = Vec::with_capacity(payments.len());
    let paid = payments.iter().fold(0i64, |s, p| s.saturating_add(p.amount_cents));
    let mut change = paid.saturating_sub(total).max(0);
    for p in payments {
        let mut amount = p.amount_cents;
        if p.method == CASH && change > 0 {
            let given = change.min(amount);
            amount -= given;
            change -= given;
        }
        match out.iter_mut().find(|(m, _)| *m == p.method.as_str()) {
            Some((_, slot)) => *slot = slot.saturating_add(amount),
            None => out.push((p.method.as_str(), amount)),
        }
    }
    out
}

fn add_return<'a>(out: &mut Acc<'a>, branch_key: i64, at: i64, e: &'a Event) {
    let total = e.total_cents.unwrap_or_default();
    let refund = Tally {
        returns: total,
        ..Tally::default()
    };
    out.put(DIM_TOTAL, branch_key, at, "", &refund);
    let user = e.user_id.as_ref().map(|u| u.as_str()).unwrap_or("");
    out.put(DIM_CASHIER, branch_key, at, user, &refund);
    out.put(
        DIM_METHOD,
        branch_key,
        at,
        e.refund_method.as_deref().unwrap_or(UNSPECIFIED),
        &refund,
    );
    let mut products: Vec<(&'a str, i64)> = Vec::new();
    for l in e.lines.as_deref().unwrap_or_default() {
        let p = l.product_id.as_str();
        let r = l.quantity.saturating_mul(l.unit_price_cents);
        match products.iter_mut().find(|(q, _)| *q == p) {
            Some((_, slot)) => *slot = slot.saturating_add(r),
            None => products.push((p, r)),
        }
    }
    for (p, r) in products {
        let t = Tally {
            returns: r,
            ..Tally::default()
        };
        out.put(DIM_PRODUCT, branch_key, at, p, &t);
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

#[cfg(test)]
mod tests {
    use super::*;
    use colmena_shared::ids::ProductId;

    fn line(p: &str, quantity: i64, unit_price_cents: i64) -> EventLine {
        EventLine {
            product_id: ProductId::parse(p).unwrap(),
            quantity,
            unit_price_cents,
        }
    }

    #[test]
    fn a_detail_blob_reads_back_what_was_written_whatever_its_keys() {
        let mut d = Detail::new();
        for (i, k) in ["P1", "", "a\tb", "x\\ny", "new\nline"].iter().enumerate() {
            let t = Tally {
                sales: i as i64,
                units: 2,
                gross: i64::MAX,
                returns: 7,
            };
            d.insert((1 + i as i64 % 3, k.to_string()), t);
        }
        assert_eq!(decode_detail(&encode_detail(&d)).unwrap(), d);
        let bytes = encode_detail(&d);
        assert!(decode_detail(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode_detail(&[1, 200]).is_err());
        // Adding into a blob is adding into its map.
        let one = Tally {
            sales: 1,
            units: 1,
            gross: 1,
            returns: 1,
        };
        let add: Vec<(i64, &str, Tally)> = vec![(0, "a", one), (1, "P1", one), (3, "zz", one)];
        let mut want = d.clone();
        for (m, k, t) in &add {
            want.entry((*m, k.to_string())).or_default().add(t);
        }
        assert_eq!(decode_detail(&merge_detail(Some(&bytes), &add).unwrap()).unwrap(), want);
        let d_sorted: Vec<(i64, &str, Tally)> = d.iter().map(|((m, k), t)| (*m, k.as_str(), *t)).collect();
        let both = merge_detail(Some(&merge_detail(None, &add).unwrap()), &d_sorted).unwrap();
        assert_eq!(both, encode_detail(&want));
    }

    #[test]
    fn a_split_tender_sale_adds_up_to_its_total_with_the_change_off_cash() {
        let e = Event {
            kind: EventKind::Sale,
            total_cents: Some(2100),
            lines: Some(vec![line("P1", 1, 2100)]),
            payments: Some(vec![
                colmena_shared::till::Payment {
                    method: "card".into(),
                    amount_cents: 500,
                },
                colmena_shared::till::Payment {
                    method: "cash".into(),
                    amount_cents: 2000,
                },
            ]),
            ..Event::default()
        };
        let t = tenders(&e);
        assert_eq!(t, vec![("card", 500), ("cash", 1600)]);
    }

    #[test]
    fn a_return_counts_at_its_own_time_under_its_own_user_and_refund_method() {
        let e = Event {
            kind: EventKind::Return,
            total_cents: Some(550),
            lines: Some(vec![line("P1", 1, 550)]),
            refund_method: Some("card".into()),
            user_id: Some(colmena_shared::users::UserId::parse("sup").unwrap()),
            ..Event::default()
        };
        let mut acc = Acc::default();
        add_event(&mut acc, 3, 5 * QUARTER_MS + 1, &e);
        let out = acc.finish();
        let q = &out.details[&(LEVEL_QUARTER, 5, 3)];
        let returns = |dim: i64, key: &str| q.iter().find(|(d, k, _)| (*d, *k) == (dim, key)).map(|e| e.2.returns);
        assert_eq!(returns(DIM_CASHIER, "sup"), Some(550));
        assert_eq!(returns(DIM_METHOD, "card"), Some(550));
        assert_eq!(returns(DIM_PRODUCT, "P1"), Some(550));
        let total = out
            .totals
            .iter()
            .find(|(k, _)| k.level == LEVEL_QUARTER && k.branch_key == 3);
        assert_eq!(total.map(|(_, t)| (t.sales, t.returns)), Some((0, 550)));
        // One chain shard per level holds the branch's totals too.
        assert_eq!(
            out.totals.keys().filter(|k| k.branch_key < 0).count(),
            CHAIN_LEVELS.len()
        );
    }
}
