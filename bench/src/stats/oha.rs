//! What one open-loop `oha … --latency-correction --no-tui` run measured (figures P2, P7),
//! read from oha's text report.
//!
//! oha prints its percentiles as `  99.00% in 0.0049 secs` (older releases) or
//! `  99.00% in 4.9086 ms`; both become milliseconds. A value oha did not print stays
//! `None`, so the script can say "?" instead of inventing one.

use super::num::{awk_num, fixed};

#[derive(Debug, Default, PartialEq)]
pub struct OhaRun {
    /// Latency percentiles in milliseconds, three decimals.
    pub p50_ms: Option<String>,
    pub p99_ms: Option<String>,
    /// `Requests/sec:`, no decimals.
    pub rps: Option<String>,
    /// The count on the `[201]` line of the status code distribution, as oha wrote it.
    pub created: Option<String>,
    /// Lines of the status and error distributions that are not a 2xx, e.g. `[503] 41
    /// responses` or `[1] aborted due to deadline`.
    pub other_lines: usize,
}

impl OhaRun {
    pub fn from_report(report: &str) -> OhaRun {
        let mut run = OhaRun::default();
        for line in report.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.get(1) == Some(&"in") {
                let slot = match f.first() {
                    Some(&"50.00%") => &mut run.p50_ms,
                    Some(&"99.00%") => &mut run.p99_ms,
                    _ => continue,
                };
                if slot.is_none() {
                    *slot = f.get(2).map(|v| percentile_ms(v, f.get(3).copied().unwrap_or("")));
                }
            } else if line.contains("Requests/sec:") && run.rps.is_none() {
                run.rps = f.get(1).map(|v| fixed(awk_num(v), 0));
            } else if f.first() == Some(&"[201]") && run.created.is_none() {
                run.created = f.get(1).map(|s| s.to_string());
            }
            if let Some(rest) = line.strip_prefix("  [") {
                if rest.chars().next().is_some_and(|c| c != '2') {
                    run.other_lines += 1;
                }
            }
        }
        run
    }
}

fn percentile_ms(value: &str, unit: &str) -> String {
    let v = awk_num(value);
    fixed(if unit.starts_with("sec") { v * 1000.0 } else { v }, 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECS: &str = include_str!("../../fixtures/oha-latency-corrected.txt");
    const MS: &str = include_str!("../../fixtures/oha-ms.txt");

    /// p50, p99, requests/s and the 201 count read from `report` ("" for one not read).
    fn figures(report: &str) -> [String; 4] {
        let run = OhaRun::from_report(report);
        [run.p50_ms, run.p99_ms, run.rps, run.created].map(Option::unwrap_or_default)
    }

    #[test]
    fn a_report_in_seconds_yields_percentiles_in_milliseconds() {
        assert_eq!(figures(SECS), ["0.900", "4.900", "8500", "84950"]);
    }

    #[test]
    fn non_2xx_statuses_and_errors_are_counted_as_lines() {
        assert_eq!(OhaRun::from_report(SECS).other_lines, 2);
        assert_eq!(OhaRun::from_report(MS).other_lines, 0);
    }

    #[test]
    fn a_report_in_milliseconds_is_read_as_is() {
        assert_eq!(figures(MS), ["0.812", "4.909", "1000", "1001"]);
    }

    #[test]
    fn a_failed_run_reports_nothing() {
        let run = OhaRun::from_report("Error: connection refused\n");
        assert_eq!(run, OhaRun::default());
    }
}
