//! `GET /status`: the branch's sync state (circuit breaker, outbox, last push and pull; see
//! docs/protocol.md, "Branch endpoints").
use super::responses::CommonErrors;
use crate::app::AppState;
use crate::error::BranchError;
use crate::storage::outbox as outbox_table;
use actix_web::{web, HttpResponse};
use colmena_shared::clock;
use colmena_shared::wire::{BranchStatus, OutboxStatus};
use std::sync::atomic::Ordering;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/status").route(web::get().to(status)));
}

/// Seconds since the oldest event central has not acknowledged was committed (0 when none).
/// Shared with `/metrics`, which exports the same figure as a gauge.
pub(super) async fn oldest_pending_age(app: &AppState) -> Result<f64, BranchError> {
    let acked = app.outbox.acked_through.load(Ordering::Acquire);
    let oldest = app.read(move |c| outbox_table::oldest_pending_ms(c, acked)).await?;
    Ok(oldest
        .map(|ms| ((clock::now_millis() - ms).max(0) as f64) / 1000.0)
        .unwrap_or(0.0))
}

#[utoipa::path(
    get, path = "/status", tag = "operations",
    summary = "Sync state: circuit breaker, outbox, last push and pull",
    responses((status = 200, description = "The branch's sync state", body = BranchStatus), CommonErrors)
)]
async fn status(app: web::Data<AppState>) -> Result<HttpResponse, BranchError> {
    let age = oldest_pending_age(&app).await?;
    let (url, circuit) = app.sync.active();
    // 0 means "not since start": null on the wire.
    let at = |ms: i64| (ms > 0).then(|| clock::millis_to_rfc3339(ms));
    Ok(HttpResponse::Ok().json(BranchStatus {
        branch_id: app.branch_id.to_string(),
        central_url: url.to_string(),
        circuit: circuit.as_str().to_string(),
        outbox: OutboxStatus {
            pending: app.outbox.pending(),
            oldest_pending_age_seconds: age,
            last_seq: app.outbox.last_seq.load(Ordering::Acquire),
            acked_through: app.outbox.acked_through.load(Ordering::Acquire),
        },
        last_push_ok_at: at(app.sync.last_push_ok_ms.load(Ordering::Acquire)),
        last_pull_ok_at: at(app.sync.last_pull_ok_ms.load(Ordering::Acquire)),
        pull_cursor: app.outbox.pull_cursor.load(Ordering::Acquire),
    }))
}
