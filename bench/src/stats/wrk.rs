//! What one `wrk -t2 -c64 -d… --latency` run measured, read from wrk's text report.
//!
//! The script saves wrk's stdout, the `time` of wrk itself (`%U %S`), the server's CPU ticks
//! and the box's ticks around the run; [`WrkRun::from_report`] turns them into the figures
//! the raw section and the medians use. A field wrk did not print stays `None`: the script
//! refuses a run with no request count, so nothing here guesses one.

use super::num::{awk_num, fixed};

/// One wrk run's figures, as printed to the script (strings: as wrk wrote them, or
/// formatted as the report shows them).
#[derive(Debug, Default, PartialEq)]
pub struct WrkRun {
    /// `Requests/sec:` exactly as wrk printed it.
    pub rps: Option<String>,
    /// Latency percentiles in milliseconds, three decimals.
    pub p50_ms: Option<String>,
    pub p99_ms: Option<String>,
    /// Requests completed (`N requests in …`).
    pub requests: Option<u64>,
    /// `Non-2xx or 3xx responses:`, 0 when wrk printed no such line.
    pub non2xx: u64,
    /// wrk's `Socket errors: …` text, when it printed one.
    pub socket_errors: Option<String>,
}

/// Resources spent around a run, for the per-request costs.
#[derive(Debug, Clone, Copy)]
pub struct RunCost {
    /// The server's utime+stime over the run, in clock ticks, and ticks per second.
    pub server_ticks: u64,
    pub hz: u64,
    /// `/proc/stat`'s (total, idle+iowait) ticks before and after the run.
    pub box_before: (u64, u64),
    pub box_after: (u64, u64),
}

impl WrkRun {
    pub fn from_report(report: &str) -> WrkRun {
        let mut run = WrkRun::default();
        for line in report.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if line.starts_with("Requests/sec:") && run.rps.is_none() {
                run.rps = fields.get(1).map(|s| s.to_string());
            } else if fields.first() == Some(&"50%") && run.p50_ms.is_none() {
                run.p50_ms = fields.get(1).map(|v| to_ms(v));
            } else if fields.first() == Some(&"99%") && run.p99_ms.is_none() {
                run.p99_ms = fields.get(1).map(|v| to_ms(v));
            } else if line.contains("requests in") && run.requests.is_none() {
                run.requests = fields.first().map(|n| awk_num(n) as u64);
            } else if line.contains("Non-2xx") {
                if let Some((_, n)) = line.split_once(": ") {
                    run.non2xx = awk_num(n) as u64;
                }
            }
            if let Some(at) = line.find("Socket errors:") {
                run.socket_errors = Some(line[at..].to_string());
            }
        }
        run
    }

    /// The server's CPU per request in µs (utime+stime ÷ requests), one decimal: much less
    /// noisy than req/s on a shared box.
    pub fn server_cpu_us(&self, cost: &RunCost) -> Option<String> {
        let n = self.requests.filter(|&n| n > 0)? as f64;
        if cost.hz == 0 {
            return None;
        }
        Some(fixed(cost.server_ticks as f64 / cost.hz as f64 * 1e6 / n, 1))
    }

    /// wrk's own CPU per request in µs, from bash's `time` of it ("user sys" in seconds).
    pub fn generator_cpu_us(&self, time_report: &str) -> Option<String> {
        let n = self.requests.filter(|&n| n > 0)? as f64;
        let line = time_report.lines().find(|l| !l.trim().is_empty())?;
        let mut f = line.split_whitespace();
        let (user, sys) = (awk_num(f.next()?), awk_num(f.next().unwrap_or("0")));
        Some(fixed((user + sys) * 1e6 / n, 1))
    }
}

/// Percent of the box idle (idle+iowait) between two `/proc/stat` readings, no decimals.
pub fn idle_percent(cost: &RunCost) -> Option<String> {
    let total = cost.box_after.0.checked_sub(cost.box_before.0).filter(|&t| t > 0)?;
    let idle = cost.box_after.1.saturating_sub(cost.box_before.1);
    Some(fixed(100.0 * idle as f64 / total as f64, 0))
}

/// wrk's and oha's durations (`850.00us`, `1.36ms`, `1.20s`, `2m`) in milliseconds, three
/// decimals; anything else is passed through as written.
pub fn to_ms(v: &str) -> String {
    let scaled = if let Some(x) = v.strip_suffix("us") {
        awk_num(x) / 1000.0
    } else if let Some(x) = v.strip_suffix("ms") {
        awk_num(x)
    } else if let Some(x) = v.strip_suffix('m') {
        awk_num(x) * 60000.0
    } else if let Some(x) = v.strip_suffix('s') {
        awk_num(x) * 1000.0
    } else {
        return v.to_string();
    };
    fixed(scaled, 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BRANCH: &str = include_str!("../../fixtures/wrk-branch.txt");
    const BRANCH_TIME: &str = include_str!("../../fixtures/wrk-branch.time");
    const NON2XX: &str = include_str!("../../fixtures/wrk-non2xx.txt");

    #[test]
    fn a_clean_wrk_report_yields_rate_percentiles_and_count() {
        let run = WrkRun::from_report(BRANCH);
        assert_eq!(run.rps.as_deref(), Some("17499.10"));
        assert_eq!(run.p50_ms.as_deref(), Some("2.840"));
        assert_eq!(run.p99_ms.as_deref(), Some("18.480"));
        assert_eq!(run.requests, Some(18134));
        assert_eq!(run.non2xx, 0);
        assert_eq!(run.socket_errors, None);
    }

    #[test]
    fn microsecond_percentiles_and_non_2xx_answers_are_read() {
        let run = WrkRun::from_report(NON2XX);
        assert_eq!(run.p50_ms.as_deref(), Some("0.642"));
        assert_eq!(run.p99_ms.as_deref(), Some("30.910"));
        assert_eq!(run.requests, Some(53958));
        assert_eq!(run.non2xx, 53958);
    }

    #[test]
    fn socket_errors_are_kept_as_wrk_wrote_them() {
        let report = format!("{BRANCH}  Socket errors: connect 0, read 3, write 0, timeout 12\n");
        let run = WrkRun::from_report(&report);
        assert_eq!(
            run.socket_errors.as_deref(),
            Some("Socket errors: connect 0, read 3, write 0, timeout 12")
        );
    }

    #[test]
    fn a_report_without_results_has_no_count() {
        let run = WrkRun::from_report("unable to connect to 127.0.0.1:1 Connection refused\n");
        assert_eq!(run, WrkRun::default());
        let cost = RunCost {
            server_ticks: 10,
            hz: 100,
            box_before: (0, 0),
            box_after: (10, 5),
        };
        assert_eq!(run.server_cpu_us(&cost), None);
        assert_eq!(run.generator_cpu_us("0.1 0.2"), None);
    }

    #[test]
    fn per_request_costs_divide_cpu_time_by_requests() {
        let run = WrkRun::from_report(BRANCH);
        // 180 ticks at 100 Hz = 1.8 s of server CPU over 18134 requests.
        let cost = RunCost {
            server_ticks: 180,
            hz: 100,
            box_before: (1000, 400),
            box_after: (1200, 410),
        };
        assert_eq!(run.server_cpu_us(&cost).as_deref(), Some("99.3"));
        // wrk's own time: 0.017 s user + 0.245 s system.
        assert_eq!(run.generator_cpu_us(BRANCH_TIME).as_deref(), Some("14.4"));
        assert_eq!(idle_percent(&cost).as_deref(), Some("5"));
    }

    #[test]
    fn an_idle_share_needs_ticks_to_have_passed() {
        let cost = RunCost {
            server_ticks: 0,
            hz: 100,
            box_before: (5, 1),
            box_after: (5, 1),
        };
        assert_eq!(idle_percent(&cost), None);
    }

    #[test]
    fn durations_of_every_unit_become_milliseconds() {
        assert_eq!(to_ms("850.00us"), "0.850");
        assert_eq!(to_ms("1.36ms"), "1.360");
        assert_eq!(to_ms("1.20s"), "1200.000");
        assert_eq!(to_ms("2m"), "120000.000");
        assert_eq!(to_ms("12"), "12");
        assert_eq!(to_ms(""), "");
    }
}
