//! Readings from `/proc` the figures need: the box's CPU ticks (how idle it was during a
//! run) and a process's memory (P9). Parsing is split from reading so it can be tested on
//! captured text.

/// `(total, idle + iowait)` ticks from the aggregate `cpu ` line of `/proc/stat`: user,
/// nice, system, idle, iowait, irq and softirq count towards the total, as they always have
/// in the report (steal and guest do not).
pub fn box_ticks(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(7)
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    if f.len() < 7 {
        return None;
    }
    Some((f.iter().sum(), f[3] + f[4]))
}

/// A `/proc/PID/status` field in kB (`VmRSS:   12345 kB`), 0 when absent.
pub fn status_kb(status: &str, field: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// kB as MiB with one decimal.
pub fn mib(kb: u64) -> String {
    format!("{:.1}", kb as f64 / 1024.0)
}

/// The resident set as the P9 row shows it: "12.3 MiB (anonymous 4.5 MiB)".
pub fn rss_note(status: &str) -> String {
    format!(
        "{} MiB (anonymous {} MiB)",
        mib(status_kb(status, "VmRSS")),
        mib(status_kb(status, "RssAnon"))
    )
}

/// The peak resident set (`VmHWM`) in MiB.
pub fn peak_mib(status: &str) -> String {
    mib(status_kb(status, "VmHWM"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tcolmena-sucurs\nVmPeak:\t  812344 kB\nVmHWM:\t   65536 kB\n\
VmRSS:\t   51200 kB\nRssAnon:\t   30822 kB\nRssFile:\t   20378 kB\n";

    #[test]
    fn the_box_ticks_add_up_the_first_seven_columns_and_keep_idle_apart() {
        let stat = "cpu  100 5 50 800 20 3 2 7 0 0\ncpu0 50 2 25 400 10 1 1 3 0 0\n";
        assert_eq!(box_ticks(stat), Some((980, 820)));
        assert_eq!(box_ticks("intr 1 2 3\n"), None);
    }

    #[test]
    fn memory_is_reported_in_mebibytes_with_its_anonymous_part() {
        assert_eq!(rss_note(STATUS), "50.0 MiB (anonymous 30.1 MiB)");
        assert_eq!(peak_mib(STATUS), "64.0");
    }

    #[test]
    fn a_missing_field_reads_as_zero() {
        assert_eq!(status_kb(STATUS, "VmSwap"), 0);
        assert_eq!(rss_note(""), "0.0 MiB (anonymous 0.0 MiB)");
    }

    #[test]
    fn a_field_name_must_match_whole() {
        // "VmRSS" must not be read from a line such as "VmRSSx:".
        assert_eq!(status_kb("VmRSSx:\t 9 kB\nVmRSS:\t 2048 kB\n", "VmRSS"), 2048);
    }
}
