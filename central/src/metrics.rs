//! Central's metrics (see docs/protocol.md, 'Metrics'), registered in the process's own
//! registry beside the shared HTTP metrics.
//!
//! Updated by the routes *after* the store answered, never while the store holds a lock.
use crate::store::TillApplied;
use colmena_shared::wire::BranchSummary;
use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

#[derive(Clone)]
pub struct CentralMetrics {
    pub events_applied: IntCounterVec,
    pub duplicates: IntCounterVec,
    pub apply_duration: Histogram,
    pub applied_through: IntGaugeVec,
    pub last_push: IntGaugeVec,
    /// (branch, product) pairs with ledger stock below zero: oversells to reconcile.
    /// Refreshed from the store on every scrape.
    pub negative_stock: IntGauge,
    /// Returns applied, per branch.
    pub returns: IntCounterVec,
    /// Shifts closed, per branch and `consistent` (`true`: the branch's closing summary is
    /// the one central computed from the events it applied).
    pub shifts_closed: IntCounterVec,
}

/// The values of `colmena_central_shifts_closed_total`'s `consistent` label.
const CONSISTENT: [&str; 2] = ["true", "false"];

impl CentralMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let events_applied = IntCounterVec::new(
            Opts::new("colmena_sync_events_applied_total", "Branch events applied at central."),
            &["branch_id"],
        )?;
        let duplicates = IntCounterVec::new(
            Opts::new(
                "colmena_sync_duplicate_events_total",
                "Pushed events skipped as already applied.",
            ),
            &["branch_id"],
        )?;
        let apply_duration = Histogram::with_opts(
            HistogramOpts::new(
                "colmena_sync_apply_duration_seconds",
                "Time to apply one push batch, queueing included.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
        )?;
        let applied_through = IntGaugeVec::new(
            Opts::new(
                "colmena_branch_applied_through",
                "Highest event seq applied per branch.",
            ),
            &["branch_id"],
        )?;
        let last_push = IntGaugeVec::new(
            Opts::new(
                "colmena_branch_last_push_timestamp_seconds",
                "Unix time of the branch's last accepted push.",
            ),
            &["branch_id"],
        )?;
        let negative_stock = IntGauge::new(
            "colmena_central_negative_stock_products",
            "Number of (branch, product) pairs whose stock at central is below zero.",
        )?;
        let returns = IntCounterVec::new(
            Opts::new("colmena_central_returns_total", "Returns applied at central."),
            &["branch_id"],
        )?;
        let shifts_closed = IntCounterVec::new(
            Opts::new(
                "colmena_central_shifts_closed_total",
                "Shifts closed at central, by whether the branch's closing summary matched central's.",
            ),
            &["branch_id", "consistent"],
        )?;
        registry.register(Box::new(events_applied.clone()))?;
        registry.register(Box::new(duplicates.clone()))?;
        registry.register(Box::new(apply_duration.clone()))?;
        registry.register(Box::new(applied_through.clone()))?;
        registry.register(Box::new(last_push.clone()))?;
        registry.register(Box::new(negative_stock.clone()))?;
        registry.register(Box::new(returns.clone()))?;
        registry.register(Box::new(shifts_closed.clone()))?;
        Ok(CentralMetrics {
            events_applied,
            duplicates,
            apply_duration,
            applied_through,
            last_push,
            negative_stock,
            returns,
            shifts_closed,
        })
    }

    /// Seeds the per-branch series from the store, so gauges survive a restart and every
    /// known branch has its series from the first scrape.
    pub fn seed(&self, branches: &[BranchSummary]) {
        for b in branches {
            let id = b.branch_id.as_str();
            self.events_applied.with_label_values(&[id]);
            self.duplicates.with_label_values(&[id]);
            self.returns.with_label_values(&[id]);
            // Both exist at 0 from the start, so the first inconsistent close is an increase
            // an alert can see, not a series appearing at 1.
            for c in CONSISTENT {
                self.shifts_closed.with_label_values(&[id, c]);
            }
            self.applied_through
                .with_label_values(&[id])
                .set(gauge(b.applied_through));
            if let Some(ms) = b
                .last_push_at
                .as_deref()
                .and_then(colmena_shared::clock::parse_rfc3339_millis)
            {
                self.last_push.with_label_values(&[id]).set(ms / 1000);
            }
        }
    }

    /// Records an accepted push.
    pub fn pushed(&self, branch: &str, applied: u64, duplicates: u64, applied_through: u64, now_secs: i64) {
        self.events_applied.with_label_values(&[branch]).inc_by(applied);
        self.duplicates.with_label_values(&[branch]).inc_by(duplicates);
        self.applied_through
            .with_label_values(&[branch])
            .set(gauge(applied_through));
        self.last_push.with_label_values(&[branch]).set(now_secs);
    }
}

impl CentralMetrics {
    /// Records what an accepted push's till events did. Adding 0 too, so a branch first
    /// heard of after the start has its series from its first push.
    pub fn till_applied(&self, branch: &str, till: TillApplied) {
        self.returns.with_label_values(&[branch]).inc_by(till.returns);
        for (c, n) in CONSISTENT
            .into_iter()
            .zip([till.shifts_consistent, till.shifts_inconsistent])
        {
            self.shifts_closed.with_label_values(&[branch, c]).inc_by(n);
        }
    }
}

fn gauge(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
