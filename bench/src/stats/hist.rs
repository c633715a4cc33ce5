//! A quantile from a Prometheus histogram in the text exposition format (a branch's
//! `/metrics`), for figures P2 (the branch's own fsyncs) and P7 (sync latency).
//!
//! Buckets are cumulative (`…_bucket{le="0.05"} 18148`), the last one `+Inf` holding the
//! total. The quantile is interpolated linearly inside the first bucket that reaches it, as
//! Prometheus' `histogram_quantile` does; when that bucket is `+Inf` there is no upper bound
//! to interpolate to and the answer is [`Quantile::Unbounded`].
//!
//! Every series whose line starts with `NAME_bucket{` is read, in file order: the script asks
//! only for unlabelled histograms, which have one series.

use super::num::{awk_num, awk_str, fixed};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Quantile {
    /// No observations (or no such histogram).
    Empty,
    /// It lies in the `+Inf` bucket.
    Unbounded,
    /// Seconds, interpolated inside its bucket.
    Seconds(f64),
}

#[derive(Debug, PartialEq)]
pub struct HistSummary {
    pub quantile: Quantile,
    /// Share of observations at or below `bound` (0 when no bucket has exactly that bound);
    /// `None` when there are no observations.
    pub share_at_or_below: Option<f64>,
    pub count: u64,
}

/// Summarises histogram `name` in `metrics`: the `q` quantile and the share of observations
/// in buckets up to `bound` (a bucket boundary, e.g. the 50 ms goal of P7).
pub fn summarise(metrics: &str, name: &str, q: f64, bound: f64) -> HistSummary {
    let prefix = format!("{name}_bucket{{");
    let buckets: Vec<(f64, f64)> = metrics
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .map(|l| (upper_bound(l), awk_num(l.split_whitespace().last().unwrap_or(""))))
        .collect();
    let total = buckets.last().map_or(0.0, |b| b.1);
    if total == 0.0 {
        return HistSummary {
            quantile: Quantile::Empty,
            share_at_or_below: None,
            count: 0,
        };
    }
    let want = q * total;
    let (mut prev_le, mut prev_count) = (0.0, 0.0);
    let mut quantile = None;
    let mut share = 0.0;
    for &(le, count) in &buckets {
        if le == bound {
            share = count / total;
        }
        if quantile.is_none() && count >= want {
            quantile = Some(if le.is_infinite() {
                Quantile::Unbounded
            } else {
                Quantile::Seconds(prev_le + (le - prev_le) * (want - prev_count) / (count - prev_count))
            });
        }
        (prev_le, prev_count) = (le, count);
    }
    HistSummary {
        quantile: quantile.unwrap_or(Quantile::Empty),
        share_at_or_below: Some(share),
        count: total as u64,
    }
}

/// The `le="…"` label of a bucket line; `+Inf` is infinite.
fn upper_bound(line: &str) -> f64 {
    let Some(at) = line.rfind("le=\"") else { return 0.0 };
    let rest = &line[at + 4..];
    let le = rest.split('"').next().unwrap_or("");
    if le == "+Inf" {
        f64::INFINITY
    } else {
        awk_num(le)
    }
}

impl HistSummary {
    /// The quantile in milliseconds to `decimals` places, or "n/a" / "inf". The seconds go
    /// through six significant digits first, as they always have in the script's report.
    pub fn quantile_ms(&self, decimals: usize) -> String {
        match self.quantile {
            Quantile::Empty => "n/a".into(),
            Quantile::Unbounded => "inf".into(),
            Quantile::Seconds(s) => fixed(awk_num(&awk_str(s)) * 1000.0, decimals),
        }
    }

    /// The share at or below the bound in percent, two decimals (of a share first rounded
    /// to four, as the script always did), or "n/a".
    pub fn share_percent(&self) -> String {
        match self.share_at_or_below {
            None => "n/a".into(),
            Some(f) => fixed(awk_num(&fixed(f, 4)) * 100.0, 2),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A branch's `/metrics` after a second of `/sell` under wrk with a live central.
    const METRICS: &str = include_str!("../../fixtures/sucursal-metrics.txt");

    /// Count, p99 in ms to `decimals`, and the share under 50 ms of `histogram` in METRICS.
    fn p99(histogram: &str, decimals: usize) -> (u64, String, String) {
        let h = summarise(METRICS, histogram, 0.99, 0.05);
        (h.count, h.quantile_ms(decimals), h.share_percent())
    }

    #[test]
    fn the_sync_latency_p99_is_interpolated_inside_its_bucket() {
        // 0.99 × 18282 = 18099.18 lies in (0.025, 0.05]: 16644 → 18148.
        assert_eq!(
            p99("colmena_sync_latency_seconds", 1),
            (18282, "49.2".into(), "99.27".into())
        );
    }

    #[test]
    fn the_fsync_p99_reads_the_same_way_with_more_decimals() {
        assert_eq!(
            p99("colmena_outbox_fsync_duration_seconds", 3),
            (752, "4.669".into(), "100.00".into())
        );
    }

    #[test]
    fn a_histogram_that_is_absent_or_empty_has_no_quantile() {
        let h = summarise(METRICS, "colmena_no_such_histogram", 0.99, 0.05);
        assert_eq!(
            (h.quantile_ms(1), h.share_percent(), h.count),
            ("n/a".into(), "n/a".into(), 0)
        );
        let zero = "h_bucket{le=\"0.1\"} 0\nh_bucket{le=\"+Inf\"} 0\n";
        assert_eq!(summarise(zero, "h", 0.99, 0.05).quantile, Quantile::Empty);
    }

    #[test]
    fn a_quantile_beyond_the_last_finite_bound_is_unbounded() {
        let text = "h_bucket{le=\"0.05\"} 90\nh_bucket{le=\"+Inf\"} 100\n";
        let h = summarise(text, "h", 0.99, 0.05);
        assert_eq!(h.quantile_ms(1), "inf");
        assert_eq!(h.share_percent(), "90.00");
    }

    #[test]
    fn the_first_bucket_interpolates_from_zero() {
        let text = "h_bucket{le=\"0.01\"} 100\nh_bucket{le=\"+Inf\"} 100\n";
        assert_eq!(summarise(text, "h", 0.5, 0.05).quantile_ms(3), "5.000");
    }

    #[test]
    fn a_name_that_prefixes_another_metric_does_not_read_its_buckets() {
        let text = "h_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh2_bucket{le=\"1\"} 9\n";
        assert_eq!(summarise(text, "h", 0.99, 0.05).count, 1);
    }
}
