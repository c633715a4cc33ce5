//! HTTP routes, one file per resource. Handlers are thin: extract, check the input with
//! [`crate::domain`], call the [`crate::store::Store`], map the outcome.
//!
//! Every resource is one `web::resource` with its methods, so a wrong method is a 405 and
//! metrics are labelled by the route pattern. `/openapi.json` is registered by
//! [`crate::openapi::configure`] (the document is generated from these handlers, so this
//! module does not depend on it).
use crate::metrics::CentralMetrics;
use crate::store::Store;
use actix_web::{web, HttpResponse};

pub mod audit;
pub mod backups;
pub mod branches;
pub mod catalog;
pub mod inventory;
pub mod responses;
pub mod sales;
pub mod sync;
pub mod till;
pub mod users;

/// Registers every route but `/openapi.json`. `push_limit` is the body limit of
/// `POST /sync/push`.
pub fn configure(cfg: &mut web::ServiceConfig, push_limit: usize) {
    cfg.service(web::resource("/health").route(web::get().to(colmena_shared::http::health)))
        .service(web::resource("/metrics").route(web::get().to(metrics)));
    catalog::config(cfg);
    inventory::config(cfg);
    branches::config(cfg);
    sales::config(cfg);
    till::config(cfg);
    sync::config(cfg, push_limit);
    backups::config(cfg);
    users::config(cfg);
    audit::config(cfg);
}

/// `GET /metrics`: refreshes the gauges computed from the store, then renders.
#[utoipa::path(
    get, path = "/metrics", tag = "operations", security(()),
    summary = "Prometheus metrics (no token)",
    responses((status = 200, description = "Prometheus text format 0.0.4", body = String,
        content_type = "text/plain; version=0.0.4; charset=utf-8"))
)]
async fn metrics(
    store: web::Data<dyn Store>,
    metrics: web::Data<CentralMetrics>,
    registry: web::Data<prometheus::Registry>,
) -> HttpResponse {
    match store.negative_stock_products().await {
        Ok(n) => metrics.negative_stock.set(i64::try_from(n).unwrap_or(i64::MAX)),
        Err(e) => tracing::warn!(error = %e, "cannot count negative stock for /metrics"),
    }
    colmena_shared::http::metrics_endpoint(registry).await
}
