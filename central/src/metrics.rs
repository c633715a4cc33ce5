//! Central's metrics (see docs/protocol.md, 'Metrics'), registered in the process's own
//! registry beside the shared HTTP metrics.
//!
//! Updated by the routes *after* the store answered, never while the store holds a lock.
use crate::store::{TillApplied, TransfersApplied};
use colmena_shared::wire::BranchSummary;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

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
    /// Transfers dispatched and not yet received; refreshed on every scrape.
    pub transfers_in_transit: IntGauge,
    /// Age of the oldest transfer in transit (by `dispatched_at`), 0 if none.
    pub transfer_oldest_in_transit: IntGauge,
    /// Transfers in transit longer than `transfer_overdue_after`.
    pub transfers_overdue: IntGauge,
    /// `--transfer-overdue-after`.
    pub transfer_overdue_after: std::time::Duration,
    /// Transfer steps taken, by `step` (requested, cancelled, dispatched, received).
    pub transfer_steps: IntCounterVec,
    /// Units booked lost on receipts.
    pub transfer_units_lost: IntCounter,
}

/// The values of `colmena_central_transfer_steps_total`'s `step` label.
pub const TRANSFER_STEPS: [&str; 4] = ["requested", "cancelled", "dispatched", "received"];
/// `--transfer-overdue-after`'s default.
const DEFAULT_OVERDUE_AFTER: std::time::Duration = std::time::Duration::from_secs(48 * 3600);

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
        let transfers_in_transit = IntGauge::new(
            "colmena_central_transfers_in_transit",
            "Transfers dispatched by one branch and not yet received by the other.",
        )?;
        let transfer_oldest_in_transit = IntGauge::new(
            "colmena_central_transfer_oldest_in_transit_seconds",
            "Age of the oldest transfer in transit, by its dispatched_at (0 if none).",
        )?;
        let transfers_overdue = IntGauge::new(
            "colmena_central_transfers_overdue",
            "Transfers in transit for longer than --transfer-overdue-after.",
        )?;
        let transfer_steps = IntCounterVec::new(
            Opts::new(
                "colmena_central_transfer_steps_total",
                "Transfer steps taken at central or applied from branches.",
            ),
            &["step"],
        )?;
        let transfer_units_lost = IntCounter::new(
            "colmena_central_transfer_units_lost_total",
            "Units booked lost in transit by transfer receipts.",
        )?;
        for step in TRANSFER_STEPS {
            transfer_steps.with_label_values(&[step]);
        }
        registry.register(Box::new(transfers_in_transit.clone()))?;
        registry.register(Box::new(transfer_oldest_in_transit.clone()))?;
        registry.register(Box::new(transfers_overdue.clone()))?;
        registry.register(Box::new(transfer_steps.clone()))?;
        registry.register(Box::new(transfer_units_lost.clone()))?;
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
            transfers_in_transit,
            transfer_oldest_in_transit,
            transfers_overdue,
            transfer_overdue_after: DEFAULT_OVERDUE_AFTER,
            transfer_steps,
            transfer_units_lost,
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

impl CentralMetrics {
    /// Records what an accepted push's transfer steps did.
    pub fn transfers_applied(&self, t: TransfersApplied) {
        self.transfer_step("dispatched", t.dispatched);
        self.transfer_step("received", t.received);
        self.transfer_units_lost.inc_by(t.units_lost);
    }

    /// Counts `n` steps of kind `step` (one of [`TRANSFER_STEPS`]).
    pub fn transfer_step(&self, step: &str, n: u64) {
        self.transfer_steps.with_label_values(&[step]).inc_by(n);
    }

    /// Sets the in-transit gauges from `(count, oldest age in seconds, overdue)`.
    pub fn set_transit(&self, (count, oldest_secs, overdue): (u64, i64, u64)) {
        self.transfers_in_transit.set(gauge(count));
        self.transfer_oldest_in_transit.set(oldest_secs);
        self.transfers_overdue.set(gauge(overdue));
    }
}

fn gauge(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
