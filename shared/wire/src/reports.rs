//! Head-office sales reports (docs/protocol.md, "Reports"): the answer of
//! `GET /reports/sales` and its CSV twin, and the shape rules of their query that need no
//! time-zone database (which `group_by`, what a `from`/`to` looks like, the longest range).
//!
//! Invariants: every figure is integer cents or a count, never a float; `net_cents` is
//! always `gross_cents - returns_cents`; rows are sorted by `key` and keys are unique.
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use utoipa::ToSchema;

/// The longest range one report may span, in days (a year, leap day included).
pub const MAX_RANGE_DAYS: i64 = 366;

/// What the rows of a report are keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// The branch id.
    Branch,
    /// The product id.
    Product,
    /// The date in the report's time zone (`2026-12-07`).
    Day,
    /// The hour in the report's time zone (`2026-12-07T14`).
    Hour,
    /// The cashier of a sale, the user who took a return; empty when none was named.
    Cashier,
    /// The tender method (`cash`, `card`, …, `unspecified`).
    Method,
}

impl GroupBy {
    pub const ALL: [GroupBy; 6] = [
        GroupBy::Branch,
        GroupBy::Product,
        GroupBy::Day,
        GroupBy::Hour,
        GroupBy::Cashier,
        GroupBy::Method,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Branch => "branch",
            GroupBy::Product => "product",
            GroupBy::Day => "day",
            GroupBy::Hour => "hour",
            GroupBy::Cashier => "cashier",
            GroupBy::Method => "method",
        }
    }

    /// `group_by` from the query string, or the message of a 400.
    pub fn parse(s: &str) -> Result<GroupBy, String> {
        GroupBy::ALL.into_iter().find(|g| g.as_str() == s).ok_or_else(|| {
            format!(
                "group_by must be one of branch, product, day, hour, cashier, method; got {:?}",
                crate::ids::truncate(s)
            )
        })
    }
}

/// A `from` or `to` as written: a calendar date (midnight in the report's time zone) or
/// an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportBound {
    /// `YYYY-MM-DD`.
    Date { year: i16, month: i8, day: i8 },
    /// RFC 3339, as milliseconds since the epoch.
    Instant(i64),
}

/// Reads a `from`/`to` (`field` names it in the message of a 400). A date's day is only
/// checked against its month by whoever places it in a time zone.
pub fn parse_bound(field: &str, s: &str) -> Result<ReportBound, String> {
    let bad = || {
        format!(
            "{field} must be a date (2026-12-07) or an RFC 3339 instant (2026-12-07T05:00:00Z), got {:?}",
            crate::ids::truncate(s)
        )
    };
    let b = s.as_bytes();
    if b.len() == 10 && b[4] == b'-' && b[7] == b'-' {
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let part = &s[r];
            part.bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| part.parse().ok())
                .flatten()
        };
        let (Some(year), Some(month), Some(day)) = (num(0..4), num(5..7), num(8..10)) else {
            return Err(bad());
        };
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) || !(1..=9999).contains(&year) {
            return Err(bad());
        }
        // Checked ranges: the narrowing casts cannot truncate.
        return Ok(ReportBound::Date {
            year: year as i16,
            month: month as i8,
            day: day as i8,
        });
    }
    crate::clock::parse_rfc3339_millis(s)
        .map(ReportBound::Instant)
        .ok_or_else(bad)
}

/// The figures of one row, or of the whole report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReportTotals {
    /// Sales counted (a `method` or `product` row counts each sale that used it).
    #[schema(minimum = 0)]
    pub sales_count: i64,
    /// Units sold (returned units are not taken off).
    #[schema(minimum = 0)]
    pub units: i64,
    /// What the sales took, in cents.
    #[schema(minimum = 0)]
    pub gross_cents: i64,
    /// What returns paid back, in cents, counted when the return was made.
    #[schema(minimum = 0)]
    pub returns_cents: i64,
    /// `gross_cents - returns_cents` (negative when a period refunded more than it sold).
    pub net_cents: i64,
}

impl ReportTotals {
    /// Adds `other` in; sums saturate rather than wrap (no real chain gets near i64).
    pub fn add(&mut self, other: &ReportTotals) {
        self.sales_count = self.sales_count.saturating_add(other.sales_count);
        self.units = self.units.saturating_add(other.units);
        self.gross_cents = self.gross_cents.saturating_add(other.gross_cents);
        self.returns_cents = self.returns_cents.saturating_add(other.returns_cents);
        self.net_cents = self.gross_cents.saturating_sub(self.returns_cents);
    }
}

/// One row of a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReportRow {
    /// The group: a branch id, product id, date, hour, cashier id (may be empty) or method.
    pub key: String,
    #[schema(minimum = 0)]
    pub sales_count: i64,
    #[schema(minimum = 0)]
    pub units: i64,
    #[schema(minimum = 0)]
    pub gross_cents: i64,
    #[schema(minimum = 0)]
    pub returns_cents: i64,
    pub net_cents: i64,
}

impl ReportRow {
    pub fn new(key: String, t: &ReportTotals) -> ReportRow {
        ReportRow {
            key,
            sales_count: t.sales_count,
            units: t.units,
            gross_cents: t.gross_cents,
            returns_cents: t.returns_cents,
            net_cents: t.gross_cents.saturating_sub(t.returns_cents),
        }
    }
}

/// `GET /reports/sales`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"group_by": "branch", "tz": "America/Lima", "from": "2026-12-07T05:00:00.000Z",
    "to": "2026-12-08T05:00:00.000Z", "rows": [{"key": "CUS", "sales_count": 2, "units": 3, "gross_cents": 2650,
    "returns_cents": 550, "net_cents": 2100}], "totals": {"sales_count": 2, "units": 3, "gross_cents": 2650,
    "returns_cents": 550, "net_cents": 2100}}))]
pub struct SalesReport {
    pub group_by: GroupBy,
    /// The IANA time zone days and hours were read in.
    pub tz: String,
    /// Start of the range, inclusive (RFC 3339, UTC).
    #[schema(format = DateTime)]
    pub from: String,
    /// End of the range, exclusive (RFC 3339, UTC).
    #[schema(format = DateTime)]
    pub to: String,
    /// One row per key that had a sale or a return in the range, sorted by key.
    pub rows: Vec<ReportRow>,
    /// The whole range (for `product` and `method`, not the sum of the rows' counts: a sale
    /// is counted once here).
    pub totals: ReportTotals,
}

/// The CSV's header row.
pub const CSV_HEADER: &str = "key,sales_count,units,gross_cents,returns_cents,net_cents\r\n";

impl SalesReport {
    /// The report as CSV: the header, one row per row, CRLF rows, RFC 4180 quoting of keys.
    /// The totals are not a row (a key could be spelt like any label we chose).
    pub fn to_csv(&self) -> String {
        let mut out = String::with_capacity(CSV_HEADER.len() + self.rows.len() * 48);
        out.push_str(CSV_HEADER);
        for r in &self.rows {
            // Writing into a String cannot fail.
            let _ = write!(
                out,
                "{},{},{},{},{},{}\r\n",
                csv_field(&r.key),
                r.sales_count,
                r.units,
                r.gross_cents,
                r.returns_cents,
                r.net_cents
            );
        }
        out
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_group_by_parses_from_its_own_name_and_nothing_else_does() {
        for g in GroupBy::ALL {
            assert_eq!(GroupBy::parse(g.as_str()), Ok(g));
        }
        assert!(GroupBy::parse("week").unwrap_err().contains("group_by must be one of"));
        assert!(GroupBy::parse("Branch").is_err());
    }

    #[test]
    fn a_bound_is_a_date_or_an_instant_and_anything_else_is_refused() {
        assert_eq!(
            parse_bound("from", "2026-12-07"),
            Ok(ReportBound::Date {
                year: 2026,
                month: 12,
                day: 7
            })
        );
        assert!(matches!(
            parse_bound("to", "2026-12-07T05:00:00Z"),
            Ok(ReportBound::Instant(_))
        ));
        for bad in [
            "2026-13-07",
            "2026-12-32",
            "2026-1-07",
            "07/12/2026",
            "",
            "2026-12-07T25:00:00Z",
            "+026-12-07",
        ] {
            let e = parse_bound("from", bad).unwrap_err();
            assert!(e.starts_with("from must be a date"), "{bad}: {e}");
        }
    }

    #[test]
    fn net_is_gross_minus_returns_and_sums_saturate() {
        let mut t = ReportTotals::default();
        t.add(&ReportTotals {
            sales_count: 1,
            units: 2,
            gross_cents: 1000,
            returns_cents: 1500,
            net_cents: 0,
        });
        assert_eq!(t.net_cents, -500);
        t.add(&ReportTotals {
            gross_cents: i64::MAX,
            ..Default::default()
        });
        assert_eq!(t.gross_cents, i64::MAX);
    }

    #[test]
    fn the_csv_quotes_a_key_only_when_it_must() {
        let r = SalesReport {
            group_by: GroupBy::Cashier,
            tz: "UTC".into(),
            from: "a".into(),
            to: "b".into(),
            rows: vec![
                ReportRow::new("".into(), &ReportTotals::default()),
                ReportRow::new("a,b".into(), &ReportTotals::default()),
            ],
            totals: ReportTotals::default(),
        };
        assert_eq!(r.to_csv(), format!("{CSV_HEADER},0,0,0,0,0\r\n\"a,b\",0,0,0,0,0\r\n"));
    }
}
