//! HTTP routes, one file per resource. Handlers are thin: extract, check the input with
//! [`crate::domain`], call the [`crate::store::Store`], map the outcome.
//!
//! Every resource is one `web::resource` with its methods, so a wrong method is a 405 and
//! metrics are labelled by the route pattern. `/openapi.json` is registered by
//! [`crate::openapi::configure`] (the document is generated from these handlers, so this
//! module does not depend on it).
use crate::error::CentralError;
use crate::metrics::CentralMetrics;
use crate::store::Store;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

pub mod audit;
pub mod backups;
pub mod branches;
pub mod catalog;
pub mod inventory;
pub mod reports;
pub mod responses;
pub mod sales;
pub mod sync;
pub mod till;
pub mod transfers;
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
    transfers::config(cfg);
    reports::config(cfg);
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
    let in_transit = crate::store::TransferFilter {
        status: Some(colmena_shared::transfers::TransferStatus::InTransit),
        branch: None,
    };
    match store.transfers(in_transit).await {
        Ok(ts) => {
            let overdue_ms = i64::try_from(metrics.transfer_overdue_after.as_millis()).unwrap_or(i64::MAX);
            let now = colmena_shared::clock::now_millis();
            metrics.set_transit(crate::store::transit_stats(&ts, now, overdue_ms));
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the transfers in transit for /metrics"),
    }
    colmena_shared::http::metrics_endpoint(registry).await
}

/// Every value of header `name`, as text; a value that is not visible ASCII is a 400.
pub(crate) fn header_values<'r>(req: &'r HttpRequest, name: &str) -> Result<Vec<&'r str>, CentralError> {
    req.headers()
        .get_all(name)
        .map(|v| {
            v.to_str()
                .map_err(|_| CentralError::InvalidRequest(format!("{name} must be visible ASCII")))
        })
        .collect()
}

/// The `Idempotency-Key` of an admin write (docs/protocol.md, "Catalog at central"); sent
/// twice it is ambiguous, so a 400.
pub(crate) fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, CentralError> {
    match header_values(req, "Idempotency-Key")?.as_slice() {
        [] => Ok(None),
        [k] => crate::domain::idempotency_key(Some(k)),
        _ => Err(CentralError::InvalidRequest(
            "Idempotency-Key must be sent at most once".into(),
        )),
    }
}

/// The first answer to an `Idempotency-Key`, again: its status and body as they were.
pub(crate) fn replayed(status: u16, body: String) -> HttpResponse {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    HttpResponse::build(status)
        .insert_header(("Idempotent-Replayed", "true"))
        .content_type("application/json")
        .body(body)
}
