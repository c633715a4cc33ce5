//! The branch's Prometheus metrics (see docs/protocol.md, "Metrics"), in a registry owned
//! by the process.
//!
//! Gauges that mirror store state (`colmena_outbox_*`) are refreshed when `/metrics` is
//! scraped, from atomics and one indexed read — never from inside the writer's transaction.
//! The `reason` of a refused sale is the refusal's error code ([`ErrorCode::as_str`]), so
//! the label and the response cannot disagree.
use colmena_shared::error::ErrorCode;
use colmena_shared::metrics::{fast_buckets, sync_buckets, HttpMetrics};
use prometheus::{Gauge, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

#[derive(Clone)]
pub struct BranchMetrics {
    pub registry: Registry,
    pub http: HttpMetrics,
    pub sales: IntCounter,
    pub sale_rejections: IntCounterVec,
    pub sell_duration: Histogram,
    pub fsync_duration: Histogram,
    pub outbox_pending: IntGauge,
    pub outbox_oldest_age: Gauge,
    pub sync_latency: Histogram,
    pub sync_request_duration: Histogram,
    pub sync_errors: IntCounterVec,
    pub breaker_state: GaugeVec,
    pub breaker_transitions: IntCounterVec,
    pub push_batches: IntCounterVec,
}

impl BranchMetrics {
    pub fn new() -> prometheus::Result<BranchMetrics> {
        let registry = Registry::new();
        let http = HttpMetrics::register(&registry)?;
        let sales = IntCounter::new("colmena_sales_total", "Sales acknowledged (201) by this branch.")?;
        let sale_rejections = IntCounterVec::new(
            Opts::new("colmena_sale_rejections_total", "Sales refused, by reason."),
            &["reason"],
        )?;
        let sell_duration = Histogram::with_opts(
            HistogramOpts::new(
                "colmena_sell_duration_seconds",
                "POST /sell handler time including the durable commit.",
            )
            .buckets(fast_buckets()),
        )?;
        let fsync_duration = Histogram::with_opts(
            HistogramOpts::new(
                "colmena_outbox_fsync_duration_seconds",
                "One fdatasync of the outbox WAL: the disk's share of every /sell (a batch of sales waits for one).",
            )
            .buckets(fast_buckets()),
        )?;
        let outbox_pending = IntGauge::new(
            "colmena_outbox_pending",
            "Outbox events not yet acknowledged by central.",
        )?;
        let outbox_oldest_age = Gauge::new(
            "colmena_outbox_oldest_pending_age_seconds",
            "Age of the oldest outbox event not yet acknowledged by central (0 when none).",
        )?;
        let sync_latency = Histogram::with_opts(
            HistogramOpts::new(
                "colmena_sync_latency_seconds",
                "From an event's commit in the outbox to central's ack.",
            )
            .buckets(sync_buckets()),
        )?;
        let sync_request_duration = Histogram::with_opts(
            HistogramOpts::new(
                "colmena_sync_request_duration_seconds",
                "One push or pull round trip to central.",
            )
            .buckets(sync_buckets()),
        )?;
        let sync_errors = IntCounterVec::new(
            Opts::new("colmena_sync_errors_total", "Failed or refused sync calls, by kind."),
            &["kind"],
        )?;
        let breaker_state = GaugeVec::new(
            Opts::new(
                "colmena_circuit_breaker_state",
                "Circuit breaker state towards central (one-hot).",
            ),
            &["state"],
        )?;
        let breaker_transitions = IntCounterVec::new(
            Opts::new(
                "colmena_circuit_breaker_transitions_total",
                "Circuit breaker transitions, by target state.",
            ),
            &["to"],
        )?;
        let push_batches = IntCounterVec::new(
            Opts::new(
                "colmena_push_batches_total",
                "Push batches sent to central, by how they were read: `prefetched` (while the one before was in flight) or `on_demand`.",
            ),
            &["read"],
        )?;
        for c in [
            Box::new(sales.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(sale_rejections.clone()),
            Box::new(sell_duration.clone()),
            Box::new(fsync_duration.clone()),
            Box::new(outbox_pending.clone()),
            Box::new(outbox_oldest_age.clone()),
            Box::new(sync_latency.clone()),
            Box::new(sync_request_duration.clone()),
            Box::new(sync_errors.clone()),
            Box::new(breaker_state.clone()),
            Box::new(breaker_transitions.clone()),
            Box::new(push_batches.clone()),
        ] {
            registry.register(c)?;
        }
        // Every label value exists from the start, so dashboards and alerts never see gaps.
        for k in ["timeout", "connect", "http_5xx", "rejected", "circuit_open"] {
            sync_errors.with_label_values(&[k]).inc_by(0);
        }
        for code in [
            ErrorCode::InsufficientStock,
            ErrorCode::UnknownProduct,
            ErrorCode::InvalidRequest,
            ErrorCode::StorageUnavailable,
        ] {
            sale_rejections.with_label_values(&[code.as_str()]).inc_by(0);
        }
        for s in ["closed", "open", "half_open"] {
            breaker_transitions.with_label_values(&[s]).inc_by(0);
        }
        for r in ["prefetched", "on_demand"] {
            push_batches.with_label_values(&[r]).inc_by(0);
        }
        Ok(BranchMetrics {
            registry,
            http,
            sales,
            sale_rejections,
            sell_duration,
            fsync_duration,
            outbox_pending,
            outbox_oldest_age,
            sync_latency,
            sync_request_duration,
            sync_errors,
            breaker_state,
            breaker_transitions,
            push_batches,
        })
    }

    /// Counts a sale refused with `code` in `colmena_sale_rejections_total`.
    pub fn sale_rejected(&self, code: ErrorCode) {
        self.sale_rejections.with_label_values(&[code.as_str()]).inc();
    }

    /// Sets the one-hot breaker gauge.
    pub fn set_breaker_state(&self, state: &str) {
        for s in ["closed", "open", "half_open"] {
            self.breaker_state
                .with_label_values(&[s])
                .set(if s == state { 1.0 } else { 0.0 });
        }
    }
}
