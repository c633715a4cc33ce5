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
    pub logins: IntCounterVec,
    /// Active products with a reorder point whose stock is below it (set at scrape time).
    pub low_stock: IntGauge,
    pub till: TillMetrics,
    /// Transfer steps taken here: `step` is `dispatched` or `received`.
    pub transfer_steps: IntCounterVec,
    /// Units booked lost in transit by the receipts taken here.
    pub transfer_units_lost: IntCounter,
}

/// The till's figures (docs/protocol.md, "Metrics").
#[derive(Clone)]
pub struct TillMetrics {
    pub returns: IntCounter,
    pub refunded_cents: IntCounter,
    pub shifts_closed: IntCounter,
    pub shift_cash_difference: IntGauge,
    pub open_shifts: IntGauge,
}

impl TillMetrics {
    fn register(r: &Registry) -> prometheus::Result<TillMetrics> {
        Ok(TillMetrics {
            returns: registered(
                r,
                IntCounter::new(
                    "colmena_returns_total",
                    "Returns and voids recorded (201) by this branch.",
                )?,
            )?,
            refunded_cents: registered(
                r,
                IntCounter::new(
                    "colmena_refunded_cents_total",
                    "Money given back by returns, in cents (at the sales' own prices).",
                )?,
            )?,
            shifts_closed: registered(
                r,
                IntCounter::new("colmena_shifts_closed_total", "Shifts closed at this branch.")?,
            )?,
            shift_cash_difference: registered(
                r,
                IntGauge::new(
                    "colmena_shift_cash_difference_cents",
                    "Counted minus expected cash of the last shift closed here (negative: cash missing).",
                )?,
            )?,
            open_shifts: registered(
                r,
                IntGauge::new("colmena_open_shifts", "Shifts open at this branch now.")?,
            )?,
        })
    }
}

/// Registers `c` in `registry` and hands it back.
fn registered<C: prometheus::core::Collector + Clone + 'static>(registry: &Registry, c: C) -> prometheus::Result<C> {
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

fn histogram(name: &str, help: &str, buckets: Vec<f64>) -> prometheus::Result<Histogram> {
    Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
}

fn counter_vec(name: &str, help: &str, label: &str) -> prometheus::Result<IntCounterVec> {
    IntCounterVec::new(Opts::new(name, help), &[label])
}

impl BranchMetrics {
    pub fn new() -> prometheus::Result<BranchMetrics> {
        let registry = Registry::new();
        let r = &registry;
        let m = BranchMetrics {
            http: HttpMetrics::register(r)?,
            sales: registered(r, IntCounter::new("colmena_sales_total", "Sales acknowledged (201) by this branch.")?)?,
            sale_rejections: registered(
                r,
                counter_vec("colmena_sale_rejections_total", "Sales refused, by reason.", "reason")?,
            )?,
            sell_duration: registered(
                r,
                histogram(
                    "colmena_sell_duration_seconds",
                    "POST /sell handler time including the durable commit.",
                    fast_buckets(),
                )?,
            )?,
            fsync_duration: registered(
                r,
                histogram(
                    "colmena_outbox_fsync_duration_seconds",
                    "One fdatasync of the outbox WAL: the disk's share of every /sell (a batch of sales waits for one).",
                    fast_buckets(),
                )?,
            )?,
            outbox_pending: registered(
                r,
                IntGauge::new("colmena_outbox_pending", "Outbox events not yet acknowledged by central.")?,
            )?,
            outbox_oldest_age: registered(
                r,
                Gauge::new(
                    "colmena_outbox_oldest_pending_age_seconds",
                    "Age of the oldest outbox event not yet acknowledged by central (0 when none).",
                )?,
            )?,
            sync_latency: registered(
                r,
                histogram(
                    "colmena_sync_latency_seconds",
                    "From an event's commit in the outbox to central's ack.",
                    sync_buckets(),
                )?,
            )?,
            sync_request_duration: registered(
                r,
                histogram(
                    "colmena_sync_request_duration_seconds",
                    "One push or pull round trip to central.",
                    sync_buckets(),
                )?,
            )?,
            sync_errors: registered(
                r,
                counter_vec("colmena_sync_errors_total", "Failed or refused sync calls, by kind.", "kind")?,
            )?,
            breaker_state: registered(
                r,
                GaugeVec::new(
                    Opts::new(
                        "colmena_circuit_breaker_state",
                        "Circuit breaker state towards central (one-hot).",
                    ),
                    &["state"],
                )?,
            )?,
            breaker_transitions: registered(
                r,
                counter_vec(
                    "colmena_circuit_breaker_transitions_total",
                    "Circuit breaker transitions, by target state.",
                    "to",
                )?,
            )?,
            push_batches: registered(
                r,
                counter_vec(
                    "colmena_push_batches_total",
                    "Push batches sent to central, by how they were read: `prefetched` (while the one before was in flight) or `on_demand`.",
                    "read",
                )?,
            )?,
            logins: registered(
                r,
                counter_vec(
                    "colmena_logins_total",
                    "POST /login attempts, by outcome: ok, invalid_credentials, too_many_attempts.",
                    "outcome",
                )?,
            )?,
            low_stock: registered(
                r,
                IntGauge::new(
                    "colmena_low_stock_products",
                    "Active products with a reorder point whose stock at this branch is below it.",
                )?,
            )?,
            till: TillMetrics::register(r)?,
            transfer_steps: registered(
                r,
                counter_vec(
                    "colmena_transfer_steps_total",
                    "Transfer steps taken at this branch (dispatched: stock left; received: stock arrived).",
                    "step",
                )?,
            )?,
            transfer_units_lost: registered(
                r,
                IntCounter::new(
                    "colmena_transfer_units_lost_total",
                    "Units that did not arrive, booked lost in transit by receipts at this branch.",
                )?,
            )?,
            registry,
        };
        m.seed_labels();
        Ok(m)
    }

    /// Every label value exists from the start, so dashboards and alerts never see gaps.
    fn seed_labels(&self) {
        let seed = |v: &IntCounterVec, labels: &[&str]| {
            for l in labels {
                v.with_label_values(&[l]).inc_by(0);
            }
        };
        seed(
            &self.sync_errors,
            &[
                "timeout",
                "connect",
                "http_5xx",
                "tls",
                "central_ahead",
                "rejected",
                "unsupported_event",
                "circuit_open",
            ],
        );
        let refusals = [
            ErrorCode::InsufficientStock,
            ErrorCode::UnknownProduct,
            ErrorCode::InvalidRequest,
            ErrorCode::StorageUnavailable,
            ErrorCode::PaymentMismatch,
            ErrorCode::ShiftNotOpen,
            ErrorCode::ProductInactive,
        ];
        seed(&self.sale_rejections, &refusals.map(|c| c.as_str()));
        seed(&self.breaker_transitions, &["closed", "open", "half_open"]);
        seed(&self.push_batches, &["prefetched", "on_demand"]);
        seed(&self.logins, &["ok", "invalid_credentials", "too_many_attempts"]);
        seed(&self.transfer_steps, &["dispatched", "received"]);
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
