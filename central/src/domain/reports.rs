//! The head office's sales reports (docs/protocol.md, "Reports"): the query's rules, which
//! rollup rows answer it, and how they fold into rows keyed by branch, product, cashier,
//! method, or a day or hour of the report's time zone.
//!
//! Invariants:
//! - A report never reads a sale: it reads `crate::store::reports` rollups, whose
//!   smallest bucket is a UTC quarter hour. `from` and `to` must therefore fall on a
//!   quarter hour (a date's midnight always does in today's zones), and every day or hour
//!   of the zone is a whole number of quarters, so the answer is exact to the cent.
//! - A range is covered by the coarsest buckets that fit inside it (days, then hours,
//!   then quarters at its ragged edges), so reading a month costs about as much as
//!   reading its days.
//! - A day or hour key is the zone's civil date or hour of the bucket's start. Reading
//!   by hour buckets is used only when no hour bucket straddles two keys (a zone whose
//!   offset is not a whole hour, such as Asia/Kolkata, falls back to quarter buckets).
//! - An hour that happens twice when clocks go back is one row (its key is the same).
use crate::error::CentralError;
use crate::store::reports::{
    level_width, levels, RollupRead, RollupRow, RollupScope, DIM_CASHIER, DIM_CHAIN, DIM_METHOD, DIM_PRODUCT,
    DIM_TOTAL, HOUR_MS, LEVEL_HOUR, LEVEL_QUARTER, QUARTER_MS,
};
use colmena_shared::clock;
use colmena_shared::ids::BranchId;
use colmena_shared::reports::{
    parse_bound, GroupBy, ReportBound, ReportRow, ReportTotals, SalesReport, MAX_RANGE_DAYS,
};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::Deserialize;
use std::collections::BTreeMap;

/// `GET /reports/sales` and `GET /reports/sales.csv` query. Unknown parameters are
/// rejected: a misspelt filter would otherwise report the whole chain.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReportsQuery {
    /// Start, inclusive: a date (`2026-12-07`, midnight in `tz`) or an RFC 3339 instant on
    /// a quarter hour (`2026-12-07T05:00:00Z`).
    #[param(example = "2026-12-07")]
    pub from: String,
    /// End, exclusive, written like `from`. At most 366 days after `from`.
    #[param(example = "2026-12-08")]
    pub to: String,
    /// What the rows are keyed by.
    #[param(value_type = GroupBy)]
    pub group_by: String,
    /// Only this branch's sales and returns.
    #[param(pattern = "^[A-Z0-9_-]{2,16}$")]
    pub branch_id: Option<String>,
    /// An IANA time zone (`America/Lima`); default: central's `--timezone` (UTC unless set).
    #[param(example = "America/Lima")]
    pub tz: Option<String>,
}

/// Why a report query is refused (400 `invalid_request`, the message as below).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReportError {
    #[error("{0}")]
    GroupBy(String),
    #[error("{0}")]
    Bound(String),
    #[error("{0}")]
    Branch(String),
    #[error("unknown time zone {0:?}: tz must be an IANA name such as America/Lima or UTC")]
    UnknownZone(String),
    #[error("{field} {value} is not on a quarter hour: reports are kept in quarter-hour buckets (minute 0, 15, 30 or 45, second 0, UTC)")]
    NotOnQuarter { field: &'static str, value: String },
    #[error("{0} has no midnight that falls on a quarter hour in this time zone")]
    RaggedDay(String),
    #[error("from is after to")]
    Reversed,
    #[error("the range spans more than {MAX_RANGE_DAYS} days")]
    TooLong,
}

impl From<ReportError> for CentralError {
    fn from(e: ReportError) -> CentralError {
        CentralError::InvalidRequest(e.to_string())
    }
}

/// The zone a report is read in when its query names none (`--timezone`).
#[derive(Debug, Clone)]
pub struct DefaultZone(pub String);

/// A checked report query.
#[derive(Debug, Clone)]
pub struct ReportPlan {
    pub group_by: GroupBy,
    pub tz: TimeZone,
    pub tz_name: String,
    pub from_ms: i64,
    pub to_ms: i64,
    pub branch: Option<String>,
}

/// A time zone by IANA name (`--timezone`, `tz`): from the database built into the binary,
/// so a report reads the same on every host.
pub fn time_zone(name: &str) -> Result<TimeZone, ReportError> {
    TimeZone::get(name).map_err(|_| ReportError::UnknownZone(name.chars().take(64).collect()))
}

/// `--timezone`'s parser: the name as given, once it is known to be a zone.
pub fn time_zone_name(name: &str) -> Result<String, String> {
    time_zone(name).map(|_| name.to_string()).map_err(|e| e.to_string())
}

/// Checks a report query; `default_tz` is central's `--timezone`.
pub fn report_plan(q: ReportsQuery, default_tz: &str) -> Result<ReportPlan, ReportError> {
    let group_by = GroupBy::parse(&q.group_by).map_err(ReportError::GroupBy)?;
    let branch = q
        .branch_id
        .as_deref()
        .map(|b| BranchId::parse(b).map(|b| b.as_str().to_string()))
        .transpose()
        .map_err(ReportError::Branch)?;
    let tz_asked = q.tz.as_deref().unwrap_or(default_tz);
    let tz = time_zone(tz_asked)?;
    let tz_name = tz.iana_name().unwrap_or(tz_asked).to_string();
    let from_ms = bound_ms("from", &q.from, &tz)?;
    let to_ms = bound_ms("to", &q.to, &tz)?;
    if from_ms > to_ms {
        return Err(ReportError::Reversed);
    }
    // A local year may be an hour longer than 366 × 24 h across a clock change.
    if to_ms - from_ms > MAX_RANGE_DAYS * 24 * HOUR_MS + HOUR_MS {
        return Err(ReportError::TooLong);
    }
    Ok(ReportPlan {
        group_by,
        tz,
        tz_name,
        from_ms,
        to_ms,
        branch,
    })
}

fn bound_ms(field: &'static str, s: &str, tz: &TimeZone) -> Result<i64, ReportError> {
    let ms = match parse_bound(field, s).map_err(ReportError::Bound)? {
        ReportBound::Instant(ms) => ms,
        ReportBound::Date { year, month, day } => {
            let date = jiff::civil::Date::new(year, month, day)
                .map_err(|_| ReportError::Bound(format!("{field} {s:?} is not a calendar date")))?;
            // The day's first instant: where midnight does not exist (clocks jump over
            // it), the first instant after the jump.
            let start = date
                .to_zoned(tz.clone())
                .map_err(|_| ReportError::Bound(format!("{field} {s:?} is out of range")))?;
            let ms = start.timestamp().as_millisecond();
            if ms.rem_euclid(QUARTER_MS) != 0 {
                return Err(ReportError::RaggedDay(s.to_string()));
            }
            ms
        }
    };
    if ms.rem_euclid(QUARTER_MS) != 0 {
        return Err(ReportError::NotOnQuarter {
            field,
            value: s.to_string(),
        });
    }
    Ok(ms)
}

/// What a report reads: the reads for its rows, then those for its totals (empty when the
/// totals are the sum of the rows).
pub struct ReportReads {
    pub rows: Vec<RollupRead>,
    pub totals: Vec<RollupRead>,
}

/// The rollup reads that answer `plan`.
pub fn report_reads(plan: &ReportPlan) -> Result<ReportReads, ReportError> {
    let scope = match &plan.branch {
        Some(b) => RollupScope::Branch(b.clone()),
        None => RollupScope::AllBranches,
    };
    let spans = |dim: i64, scope: &RollupScope| -> Vec<RollupRead> {
        cover(plan.from_ms, plan.to_ms, levels(dim))
            .into_iter()
            .map(|(level, from_bucket, to_bucket)| RollupRead {
                dim,
                level,
                from_bucket,
                to_bucket,
                scope: scope.clone(),
                by_bucket: false,
            })
            .collect()
    };
    let split = |dim: i64| ReportReads {
        rows: spans(dim, &scope),
        totals: spans(DIM_TOTAL, &scope),
    };
    Ok(match plan.group_by {
        GroupBy::Branch => ReportReads {
            rows: spans(DIM_TOTAL, &scope),
            totals: vec![],
        },
        GroupBy::Product => split(DIM_PRODUCT),
        GroupBy::Cashier => split(DIM_CASHIER),
        GroupBy::Method => split(DIM_METHOD),
        GroupBy::Day | GroupBy::Hour => {
            let level = if hours_fit(plan)? { LEVEL_HOUR } else { LEVEL_QUARTER };
            let w = level_width(level);
            let rows = if plan.from_ms < plan.to_ms {
                vec![RollupRead {
                    dim: if plan.branch.is_some() { DIM_TOTAL } else { DIM_CHAIN },
                    level,
                    from_bucket: plan.from_ms.div_euclid(w),
                    to_bucket: plan.to_ms.div_euclid(w),
                    // Every branch summed: the chain-wide rows, a few per bucket.
                    scope: match &plan.branch {
                        Some(b) => RollupScope::Branch(b.clone()),
                        None => RollupScope::Chain,
                    },
                    by_bucket: true,
                }]
            } else {
                vec![]
            };
            ReportReads { rows, totals: vec![] }
        }
    })
}

/// `[from, to)` as the fewest buckets of `levels` (coarsest first, quarters last):
/// `(level, from_bucket, to_bucket)` spans.
pub(crate) fn cover(from: i64, to: i64, levels: &[i64]) -> Vec<(i64, i64, i64)> {
    let mut out = Vec::new();
    cover_into(from, to, levels, &mut out);
    out
}

fn cover_into(from: i64, to: i64, levels: &[i64], out: &mut Vec<(i64, i64, i64)>) {
    let Some((&level, finer)) = levels.split_first() else {
        return;
    };
    if from >= to {
        return;
    }
    let w = level_width(level);
    if finer.is_empty() {
        out.push((level, from.div_euclid(w), to.div_euclid(w)));
        return;
    }
    let (a, b) = (
        from.div_euclid(w) + i64::from(from.rem_euclid(w) != 0),
        to.div_euclid(w),
    );
    if a < b {
        cover_into(from, a * w, finer, out);
        out.push((level, a, b));
        cover_into(b * w, to, finer, out);
    } else {
        cover_into(from, to, finer, out);
    }
}

/// Whether hour buckets can answer a report by day or hour: the range is whole UTC hours
/// and the zone's offset is a whole number of hours, the same all through each hour of it
/// (then no UTC hour straddles two of the zone's days or hours). Offsets are compared, not keys formatted:
/// this runs once per hour of the range on every such report.
fn hours_fit(plan: &ReportPlan) -> Result<bool, ReportError> {
    if plan.from_ms.rem_euclid(HOUR_MS) != 0 || plan.to_ms.rem_euclid(HOUR_MS) != 0 {
        return Ok(false);
    }
    let mut at = plan.from_ms;
    while at < plan.to_ms {
        let t = Timestamp::from_millisecond(at)
            .map_err(|_| ReportError::Bound(format!("{} is out of range", clock::millis_to_rfc3339(at))))?;
        let offset = plan.tz.to_offset(t);
        // A change of offset inside the hour would split it too.
        let last = Timestamp::from_millisecond(at + HOUR_MS - QUARTER_MS)
            .map_err(|_| ReportError::Bound(format!("{} is out of range", clock::millis_to_rfc3339(at))))?;
        if offset.seconds() % 3600 != 0 || plan.tz.to_offset(last) != offset {
            return Ok(false);
        }
        at += HOUR_MS;
    }
    Ok(true)
}

/// The day or hour key of the instant `ms` in the plan's zone.
fn group_key(plan: &ReportPlan, ms: i64) -> Result<String, ReportError> {
    let t = Timestamp::from_millisecond(ms)
        .map_err(|_| ReportError::Bound(format!("{} is out of range", clock::millis_to_rfc3339(ms))))?;
    let z = t.to_zoned(plan.tz.clone());
    Ok(match plan.group_by {
        GroupBy::Hour => format!("{}T{:02}", z.date(), z.hour()),
        _ => z.date().to_string(),
    })
}

fn figures(r: &RollupRow) -> ReportTotals {
    ReportTotals {
        sales_count: r.sales,
        units: r.units,
        gross_cents: r.gross,
        returns_cents: r.returns,
        net_cents: r.gross.saturating_sub(r.returns),
    }
}

/// Folds what the reads returned (`rows` for [`ReportReads::rows`], `totals` for its
/// totals) into the answer.
pub fn assemble(
    plan: &ReportPlan,
    reads: &ReportReads,
    rows: &[RollupRow],
    totals: &[RollupRow],
) -> Result<SalesReport, ReportError> {
    // A by-day or by-hour report reads one level, by bucket.
    let w = reads.rows.first().map_or(QUARTER_MS, |r| level_width(r.level));
    let mut by_key: BTreeMap<String, ReportTotals> = BTreeMap::new();
    // Many buckets share a day: their key is computed once per bucket start.
    let mut keys: BTreeMap<i64, String> = BTreeMap::new();
    for r in rows {
        let key = match plan.group_by {
            GroupBy::Branch => r.branch_id.clone(),
            GroupBy::Product | GroupBy::Cashier | GroupBy::Method => r.key.clone(),
            GroupBy::Day | GroupBy::Hour => match keys.get(&r.bucket) {
                Some(k) => k.clone(),
                None => {
                    let k = group_key(plan, r.bucket * w)?;
                    keys.insert(r.bucket, k.clone());
                    k
                }
            },
        };
        by_key.entry(key).or_default().add(&figures(r));
    }
    let mut sum = ReportTotals::default();
    // By branch, day or hour every sale is in exactly one row; by product, cashier or
    // method the totals are read on their own (a split-tender sale is one sale).
    if matches!(plan.group_by, GroupBy::Branch | GroupBy::Day | GroupBy::Hour) {
        by_key.values().for_each(|t| sum.add(t));
    } else {
        totals.iter().for_each(|r| sum.add(&figures(r)));
    }
    Ok(SalesReport {
        group_by: plan.group_by,
        tz: plan.tz_name.clone(),
        from: clock::millis_to_rfc3339(plan.from_ms),
        to: clock::millis_to_rfc3339(plan.to_ms),
        rows: by_key.into_iter().map(|(k, t)| ReportRow::new(k, &t)).collect(),
        totals: sum,
    })
}

#[cfg(test)]
mod tests;
