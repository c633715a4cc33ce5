//! `GET /metrics`: the branch's Prometheus metrics, no token (see docs/protocol.md,
//! "Metrics"). The outbox and low-stock gauges are refreshed here, at scrape time, from atomics and one
//! indexed read, never from inside the writer's transaction.
use super::status::oldest_pending_age;
use crate::app::AppState;
use actix_web::{web, HttpResponse};

#[utoipa::path(
    get, path = "/metrics", tag = "operations", security(()),
    summary = "Prometheus metrics (no token)",
    responses((status = 200, description = "Prometheus text format 0.0.4", body = String,
        content_type = "text/plain; version=0.0.4; charset=utf-8"))
)]
pub(super) async fn metrics(app: web::Data<AppState>) -> HttpResponse {
    let m = &app.metrics;
    m.outbox_pending.set(app.outbox.pending() as i64);
    // One pass over the inventory per scrape (100,000 products: a millisecond or so), so
    // the sale path keeps no counter of its own.
    m.low_stock.set(app.inventory.low_stock_count() as i64);
    // A store that cannot be read leaves the age gauge at its last value: a scrape must not
    // fail because of it.
    if let Ok(age) = oldest_pending_age(&app).await {
        m.outbox_oldest_age.set(age);
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(colmena_shared::metrics::render(&m.registry))
}
