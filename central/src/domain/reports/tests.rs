use super::*;
use crate::store::reports::{DAY_MS, LEVEL_DAY};

fn q(from: &str, to: &str, group_by: &str, tz: Option<&str>) -> ReportsQuery {
    ReportsQuery {
        from: from.into(),
        to: to.into(),
        group_by: group_by.into(),
        branch_id: None,
        tz: tz.map(str::to_string),
    }
}

#[test]
fn a_range_is_covered_by_days_then_hours_then_quarters_at_its_edges() {
    let from = 5 * HOUR_MS + QUARTER_MS; // 05:15 on day 0
    let to = 3 * DAY_MS + 2 * HOUR_MS + 2 * QUARTER_MS; // 02:30 on day 3
    let spans = cover(from, to, levels(DIM_TOTAL));
    assert_eq!(
        spans,
        vec![
            (LEVEL_QUARTER, 21, 24),
            (LEVEL_HOUR, 6, 24),
            (LEVEL_DAY, 1, 3),
            (LEVEL_HOUR, 72, 74),
            (LEVEL_QUARTER, 296, 298),
        ]
    );
    let covered: i64 = spans.iter().map(|(l, a, b)| (b - a) * level_width(*l)).sum();
    assert_eq!(covered, to - from);
    assert!(cover(from, from, levels(DIM_TOTAL)).is_empty());
}

#[test]
fn a_date_is_midnight_in_the_zone_and_an_instant_must_fall_on_a_quarter_hour() {
    let p = report_plan(q("2026-12-07", "2026-12-08", "day", Some("America/Lima")), "UTC").unwrap();
    assert_eq!(
        clock::millis_to_rfc3339(p.from_ms),
        clock::millis_to_rfc3339(1_796_619_600_000)
    );
    assert_eq!(p.to_ms - p.from_ms, DAY_MS);
    let e = report_plan(q("2026-12-07T05:07:00Z", "2026-12-08", "day", None), "UTC").unwrap_err();
    assert!(matches!(e, ReportError::NotOnQuarter { field: "from", .. }));
}

#[test]
fn bad_queries_are_refused_with_a_reason() {
    let cases = [
        (q("2026-12-07", "2026-12-08", "week", None), "group_by must be one of"),
        (
            q("2026-12-07", "2026-12-08", "day", Some("Mars/Olympus")),
            "unknown time zone",
        ),
        (q("2026-12-08", "2026-12-07", "day", None), "from is after to"),
        (q("2025-01-01", "2026-12-07", "day", None), "more than 366 days"),
        (q("2026-02-30", "2026-03-07", "day", None), "not a calendar date"),
        (q("yesterday", "2026-03-07", "day", None), "from must be a date"),
    ];
    for (query, want) in cases {
        let e = report_plan(query, "UTC").unwrap_err().to_string();
        assert!(e.contains(want), "{e} should say {want}");
    }
}

#[test]
fn kolkata_days_are_read_from_quarters_and_lima_days_from_hours() {
    let lima = report_plan(q("2026-12-01", "2026-12-31", "day", Some("America/Lima")), "UTC").unwrap();
    assert_eq!(report_reads(&lima).unwrap().rows[0].level, LEVEL_HOUR);
    let kolkata = report_plan(q("2026-12-01", "2026-12-31", "day", Some("Asia/Kolkata")), "UTC").unwrap();
    assert_eq!(report_reads(&kolkata).unwrap().rows[0].level, LEVEL_QUARTER);
    let hours = report_plan(q("2026-12-01", "2026-12-02", "hour", Some("Asia/Kolkata")), "UTC").unwrap();
    assert_eq!(report_reads(&hours).unwrap().rows[0].level, LEVEL_QUARTER);
}

#[test]
fn a_santiago_day_without_midnight_starts_when_the_clocks_jump() {
    // 2026-09-06: Chile's clocks go from 24:00 on the 5th to 01:00 (UTC-4 → UTC-3).
    let p = report_plan(q("2026-09-06", "2026-09-07", "hour", Some("America/Santiago")), "UTC").unwrap();
    assert_eq!(clock::millis_to_rfc3339(p.from_ms), "2026-09-06T04:00:00Z");
    assert_eq!(p.to_ms - p.from_ms, 23 * HOUR_MS);
}
