//! The branch's HTTP surface (contract §2). Handlers are thin: extract, call the domain in
//! [`crate::sales`], map the result.
use crate::app::AppState;
use crate::error::BranchError;
use crate::sales::{self, SellOutcome};
use crate::storage::{outbox as outbox_table, products};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use colmena_shared::backup::{off_thread, BackupInfo, BackupList, VerifyResult};
use colmena_shared::clock;
use colmena_shared::error::ErrorBody;
use colmena_shared::http::{bearer_token, tokens_equal};
use colmena_shared::ids::ProductId;
use colmena_shared::wire::{
    AdjustmentRequest, BranchInventory, BranchProduct, BranchStatus, OutboxPage, OutboxStatus, SellRequest,
};
#[allow(unused_imports)] // named only in the OpenAPI attributes
use colmena_shared::wire::{AdjustmentResponse, SaleResponse};
use serde::Deserialize;
use std::sync::atomic::Ordering;
use std::time::Instant;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // One resource per path, so a wrong method is 405 rather than 404.
    cfg.service(web::resource("/sell").route(web::post().to(sell)))
        .service(web::resource("/inventory").route(web::get().to(inventory)))
        .service(web::resource("/inventory/{product_id}").route(web::get().to(product)))
        .service(web::resource("/stock/adjustments").route(web::post().to(adjust)))
        .service(web::resource("/status").route(web::get().to(status)))
        .service(web::resource("/outbox").route(web::get().to(outbox)))
        .service(web::resource("/sales/export").route(web::get().to(sales_export)))
        .service(
            web::resource("/admin/backups")
                .route(web::post().to(create_backup))
                .route(web::get().to(list_backups)),
        )
        .service(web::resource("/admin/backups/{id}/download").route(web::get().to(download_backup)))
        .service(web::resource("/admin/backups/{id}/verify").route(web::post().to(verify_backup)))
        .service(web::resource("/health").route(web::get().to(colmena_shared::http::health)))
        .service(web::resource("/openapi.json").route(web::get().to(crate::openapi::openapi_json)))
        .service(web::resource("/metrics").route(web::get().to(metrics)));
}

/// The POS token every endpoint but `/health`, `/metrics` and `/openapi.json` requires. Checked before any
/// body is read.
pub struct PosToken(pub String);

pub async fn require_pos_token(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let path = req.path();
    if path != "/health" && path != "/metrics" && path != "/openapi.json" {
        let ok = match (req.app_data::<web::Data<PosToken>>(), bearer_token(req.request())) {
            (Some(expected), Some(got)) => tokens_equal(&expected.0, got),
            _ => false,
        };
        if !ok {
            let res = BranchError::Unauthorized.error_response();
            return Ok(req.into_response(res).map_into_right_body());
        }
    }
    Ok(next.call(req).await?.map_into_left_body())
}

#[utoipa::path(
    post, path = "/sell", tag = "sales",
    summary = "Sell one product or a basket",
    description = "All-or-nothing: if any line fails, nothing is sold. The 201 is sent only once the sale is \
durable in the branch's local store. An `Idempotency-Key` retry with the same body replays the first 201 \
(with `Idempotent-Replayed: true`) and sells nothing more.",
    params(("Idempotency-Key" = Option<String>, Header, nullable = false, description = "1-255 visible ASCII characters; remembered at least 24 h",
        min_length = 1, max_length = 255, pattern = "^[!-~]{1,255}$")),
    request_body(content = SellRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Sold (or replayed)", body = SaleResponse,
            headers(("Idempotent-Replayed" = String, description = "`true` when this is the first response again"))),
        (status = 400, description = "`invalid_request`: malformed JSON, wrong types, out-of-range quantity, bad ids, empty or mixed basket, bad Idempotency-Key", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing or wrong POS token", body = ErrorBody),
        (status = 404, description = "`unknown_product`: a line names a product this branch does not have", body = ErrorBody),
        (status = 409, description = "`insufficient_stock`: a line asks for more than is in stock; `idempotency_key_in_flight`: the same key is being processed", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: body over `--body-limit` (default 1 MiB)", body = ErrorBody), (status = 415, description = "`unsupported_media_type`: the body is not `application/json`, or an unsupported `Content-Encoding`", body = ErrorBody),
        (status = 422, description = "`idempotency_key_reused`: the same Idempotency-Key with a different body", body = ErrorBody),
        (status = 503, description = "`storage_unavailable`: the local store cannot read or persist right now; nothing was changed", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    )
)]
async fn sell(
    app: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<SellRequest>,
) -> Result<HttpResponse, BranchError> {
    let started = Instant::now();
    let result = sell_inner(&app, &req, body.into_inner()).await;
    let m = &app.metrics;
    match &result {
        Ok(_) => {}
        Err(e) => {
            let reason = match e {
                BranchError::InsufficientStock { .. } => "insufficient_stock",
                BranchError::UnknownProduct(_) => "unknown_product",
                BranchError::StorageUnavailable(_) => "storage_unavailable",
                BranchError::IdempotencyKeyInFlight => "idempotency_key_in_flight",
                BranchError::IdempotencyKeyReused => "idempotency_key_reused",
                _ => "invalid_request",
            };
            m.sale_rejections.with_label_values(&[reason]).inc();
        }
    }
    m.sell_duration.observe(started.elapsed().as_secs_f64());
    result
}

async fn sell_inner(app: &AppState, req: &HttpRequest, body: SellRequest) -> Result<HttpResponse, BranchError> {
    let key = match req.headers().get("idempotency-key") {
        None => None,
        Some(v) => {
            let k = v
                .to_str()
                .map_err(|_| BranchError::InvalidRequest("Idempotency-Key must be visible ASCII".into()))?;
            sales::check_idempotency_key(k)?;
            Some(k.to_string())
        }
    };
    let sale = sales::validate_sale(body)?;
    match sales::sell(app, sale, key.as_deref()).await? {
        SellOutcome::Created(resp) => {
            app.metrics.sales.inc();
            Ok(HttpResponse::Created().json(resp))
        }
        SellOutcome::Replayed(body) => Ok(HttpResponse::Created()
            .insert_header(("Idempotent-Replayed", "true"))
            .content_type("application/json")
            .body(body.to_string())),
    }
}

#[utoipa::path(
    get, path = "/inventory", tag = "inventory",
    summary = "This branch's stock, every product",
    responses((status = 200, description = "Every product, by product_id", body = BranchInventory), (status = 401, description = "`unauthorized`: missing or wrong POS token", body = ErrorBody), (status = 503, description = "`storage_unavailable`: the local store cannot be read right now", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))))
)]
async fn inventory(app: web::Data<AppState>) -> Result<HttpResponse, BranchError> {
    // Names come from the store (memory holds only what /sell needs); price and stock from
    // memory, the figures /sell works with. A product not yet in memory is not yet durable.
    let names = app.read(products::names).await?;
    let products = names
        .into_iter()
        .filter_map(|(id, name)| {
            app.inventory.get(&id).map(|it| BranchProduct {
                product_id: id,
                name,
                price_cents: it.price_cents,
                stock: it.stock,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(BranchInventory {
        branch_id: app.branch_id.to_string(),
        products,
    }))
}

#[utoipa::path(
    get, path = "/inventory/{product_id}", tag = "inventory",
    summary = "One product's stock at this branch",
    params(("product_id" = String, Path, description = "The SKU", pattern = "^[A-Za-z0-9._-]{1,64}$", example = "ARROZ-1KG")),
    responses(
        (status = 200, description = "The product", body = BranchProduct),
        (status = 400, description = "`invalid_request`: not a valid product_id", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing or wrong POS token", body = ErrorBody),
        (status = 404, description = "`unknown_product`: this branch has no such product", body = ErrorBody),
        (status = 503, description = "`storage_unavailable`: the local store cannot be read right now", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    )
)]
async fn product(app: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, BranchError> {
    let id = ProductId::parse(&path).map_err(BranchError::InvalidRequest)?;
    let it = app
        .inventory
        .get(id.as_str())
        .ok_or_else(|| BranchError::UnknownProduct(id.to_string()))?;
    let pid = id.to_string();
    let name = app
        .read(move |c| products::name(c, &pid))
        .await?
        .unwrap_or_else(|| id.to_string());
    Ok(HttpResponse::Ok().json(BranchProduct {
        product_id: id.into_string(),
        name,
        price_cents: it.price_cents,
        stock: it.stock,
    }))
}

#[utoipa::path(
    post, path = "/stock/adjustments", tag = "inventory",
    summary = "Adjust stock: goods received (+), shrinkage (-), count corrections",
    description = "Durable and synced to central exactly like a sale.",
    request_body(content = AdjustmentRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Adjusted", body = AdjustmentResponse),
        (status = 400, description = "`invalid_request`: malformed JSON, wrong types, zero or out-of-range delta, bad reason", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing or wrong POS token", body = ErrorBody),
        (status = 404, description = "`unknown_product`: this branch has no such product", body = ErrorBody),
        (status = 409, description = "`insufficient_stock`: the delta would make stock negative", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: body over `--body-limit` (default 1 MiB)", body = ErrorBody), (status = 415, description = "`unsupported_media_type`: the body is not `application/json`, or an unsupported `Content-Encoding`", body = ErrorBody), (status = 503, description = "`storage_unavailable`: the local store cannot read or persist right now; nothing was changed", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    )
)]
async fn adjust(app: web::Data<AppState>, body: web::Json<AdjustmentRequest>) -> Result<HttpResponse, BranchError> {
    let r = sales::adjust(&app, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(r))
}

async fn oldest_pending_age(app: &AppState) -> Result<f64, BranchError> {
    let acked = app.outbox.acked_through.load(Ordering::Acquire);
    let oldest = app.read(move |c| outbox_table::oldest_pending_ms(c, acked)).await?;
    Ok(oldest
        .map(|ms| ((clock::now_millis() - ms).max(0) as f64) / 1000.0)
        .unwrap_or(0.0))
}

#[utoipa::path(
    get, path = "/status", tag = "operations",
    summary = "Sync state: circuit breaker, outbox, last push and pull",
    responses((status = 200, description = "The branch's sync state", body = BranchStatus), (status = 401, description = "`unauthorized`: missing or wrong POS token", body = ErrorBody), (status = 503, description = "`storage_unavailable`: the local store cannot read or persist right now; nothing was changed", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))))
)]
async fn status(app: web::Data<AppState>) -> Result<HttpResponse, BranchError> {
    let age = oldest_pending_age(&app).await?;
    let (url, circuit) = app.sync.active();
    let at = |ms: i64| {
        if ms > 0 {
            Some(clock::millis_to_rfc3339(ms))
        } else {
            None
        }
    };
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

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct OutboxQuery {
    /// Most events to return (default 100).
    #[param(minimum = 1, maximum = 10_000)]
    limit: Option<u32>,
}

#[utoipa::path(
    get, path = "/outbox", tag = "operations",
    summary = "Events not yet acknowledged by central, oldest first",
    params(OutboxQuery),
    responses(
        (status = 200, description = "Pending events, in the push format", body = OutboxPage),
        (status = 400, description = "`invalid_request`: limit not an integer in 1..=10000, or a malformed query string", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing or wrong POS token", body = ErrorBody), (status = 503, description = "`storage_unavailable`: the local store cannot read or persist right now; nothing was changed", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    )
)]
async fn outbox(app: web::Data<AppState>, q: web::Query<OutboxQuery>) -> Result<HttpResponse, BranchError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=10_000).contains(&limit) {
        return Err(BranchError::InvalidRequest("limit must be 1..=10000".into()));
    }
    let acked = app.outbox.acked_through.load(Ordering::Acquire);
    let durable = app.outbox.last_seq.load(Ordering::Acquire);
    let events = app
        .read(move |c| outbox_table::events(c, acked, durable, limit as usize))
        .await?;
    Ok(HttpResponse::Ok().json(OutboxPage {
        branch_id: app.branch_id.to_string(),
        events,
    }))
}

#[utoipa::path(
    get, path = "/metrics", tag = "operations", security(()),
    summary = "Prometheus metrics (no token)",
    responses((status = 200, description = "Prometheus text format 0.0.4", body = String,
        content_type = "text/plain; version=0.0.4; charset=utf-8"))
)]
async fn metrics(app: web::Data<AppState>) -> HttpResponse {
    let m = &app.metrics;
    m.outbox_pending.set(app.outbox.pending() as i64);
    if let Ok(age) = oldest_pending_age(&app).await {
        m.outbox_oldest_age.set(age);
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(colmena_shared::metrics::render(&m.registry))
}

fn backup_error(e: colmena_shared::backup::BackupError) -> BranchError {
    use colmena_shared::backup::BackupError as B;
    match e {
        B::NotFound(id) => BranchError::NotFound(format!("no backup {id:?}")),
        B::Io(e) => BranchError::StorageUnavailable(format!("backup: {e}")),
        B::Sqlite(e) => BranchError::StorageUnavailable(format!("backup: {e}")),
        B::Invalid(m) => BranchError::StorageUnavailable(m),
    }
}

async fn take_backup(app: &AppState) -> Result<colmena_shared::backup::BackupInfo, BranchError> {
    let backups = app.backups.clone();
    let reader = app.reader.clone();
    let outbox = app.outbox.clone();
    off_thread(move || crate::backup::take(&backups, &reader, &outbox, crate::backup::SETTLE))
        .await
        .map_err(backup_error)
}

#[utoipa::path(
    post, path = "/admin/backups", tag = "operations",
    summary = "Take an online backup of the branch's store",
    responses(
        (status = 201, description = "The backup, complete with its checksum sidecar", body = BackupInfo),
        (status = 401, description = "`unauthorized`: missing or wrong POS token", body = ErrorBody), (status = 503, description = "`storage_unavailable`: the local store cannot read or persist right now; nothing was changed", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    )
)]
async fn create_backup(app: web::Data<AppState>) -> Result<HttpResponse, BranchError> {
    let info = take_backup(&app).await?;
    tracing::info!(id = %info.id, size = info.size_bytes, "backup created");
    Ok(HttpResponse::Created().json(info))
}

#[utoipa::path(
    get, path = "/admin/backups", tag = "operations",
    summary = "Every complete backup, oldest first",
    responses((status = 200, description = "The backups", body = BackupList), (status = 401, description = "`unauthorized`: missing or wrong POS token", body = ErrorBody), (status = 503, description = "`storage_unavailable`: the local store cannot read or persist right now; nothing was changed", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))))
)]
async fn list_backups(app: web::Data<AppState>) -> Result<HttpResponse, BranchError> {
    let b = app.backups.clone();
    let list = off_thread(move || b.list()).await.map_err(backup_error)?;
    Ok(HttpResponse::Ok().json(colmena_shared::backup::BackupList { backups: list }))
}

#[utoipa::path(
    get, path = "/admin/backups/{id}/download", tag = "operations",
    summary = "Download a backup file",
    params(("id" = String, Path, description = "A backup id from the list", example = "sucursal-2026-11-23-160000")),
    responses(
        (status = 200, description = "The SQLite file, as an attachment", content_type = "application/octet-stream",
            body = Vec<u8>, headers(("Content-Disposition" = String, description = "attachment; filename=..."))),
        (status = 400, description = "`invalid_request`: a malformed path", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing or wrong POS token", body = ErrorBody),
        (status = 404, description = "`not_found`: no such backup", body = ErrorBody),
        (status = 503, description = "`storage_unavailable`: the local store cannot read or persist right now; nothing was changed", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    )
)]
async fn download_backup(app: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, BranchError> {
    let b = app.backups.clone();
    let id = id.into_inner();
    let (info, path) = off_thread(move || b.get(&id)).await.map_err(backup_error)?;
    colmena_shared::http::stream_file(&path, &info.file_name)
        .await
        .map_err(|e| BranchError::StorageUnavailable(format!("backup: {e}")))
}

#[utoipa::path(
    post, path = "/admin/backups/{id}/verify", tag = "operations",
    summary = "Re-check a backup's SHA-256 against its sidecar",
    params(("id" = String, Path, description = "A backup id from the list", example = "sucursal-2026-11-23-160000")),
    responses(
        (status = 200, description = "`ok` tells whether the file still has its recorded checksum", body = VerifyResult),
        (status = 400, description = "`invalid_request`: a malformed path", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing or wrong POS token", body = ErrorBody),
        (status = 404, description = "`not_found`: no such backup", body = ErrorBody),
        (status = 503, description = "`storage_unavailable`: the local store cannot read or persist right now; nothing was changed", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    )
)]
async fn verify_backup(app: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, BranchError> {
    let b = app.backups.clone();
    let id = id.into_inner();
    let r = off_thread(move || b.verify(&id)).await.map_err(backup_error)?;
    Ok(HttpResponse::Ok().json(r))
}

/// Takes a backup every `every` until cancelled.
pub async fn run_scheduled_backups(
    app: web::Data<AppState>,
    every: std::time::Duration,
    cancel: tokio_util::sync::CancellationToken,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = cancel.cancelled() => return,
        }
        match take_backup(&app).await {
            Ok(info) => tracing::info!(id = %info.id, "scheduled backup created"),
            Err(e) => tracing::error!(error = %e, "scheduled backup failed"),
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ExportQuery {
    /// Earliest `sold_at` (inclusive), RFC 3339.
    #[param(format = DateTime)]
    from: Option<String>,
    /// Latest `sold_at` (inclusive), RFC 3339.
    #[param(format = DateTime)]
    to: Option<String>,
}

/// `GET /sales/export?from=&to=`: this branch's sales still in its store, one CSV row per
/// sale line, for carrying data out by hand while offline.
#[utoipa::path(
    get, path = "/sales/export", tag = "sales",
    summary = "This branch's sales still in its store, as CSV (for carrying data out while offline)",
    description = "One row per sale line: `sale_id,branch_id,seq,sold_at,cashier_id,product_id,quantity,\
unit_price_cents,line_total_cents`. Sales are kept `--outbox-retention` (default 7 days).",
    params(ExportQuery),
    responses(
        (status = 200, description = "CSV with a header row", body = String, content_type = "text/csv; charset=utf-8",
            headers(("Content-Disposition" = String, description = "attachment; filename=\"sales-<branch>.csv\""))),
        (status = 400, description = "`invalid_request`: from/to not RFC 3339, from after to, or a malformed query string", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing or wrong POS token", body = ErrorBody), (status = 503, description = "`storage_unavailable`: the local store cannot read or persist right now; nothing was changed", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    )
)]
async fn sales_export(app: web::Data<AppState>, q: web::Query<ExportQuery>) -> Result<HttpResponse, BranchError> {
    let parse = |name: &str, v: &Option<String>| -> Result<Option<i64>, BranchError> {
        match v {
            None => Ok(None),
            Some(s) => clock::parse_rfc3339_millis(s)
                .map(Some)
                .ok_or_else(|| BranchError::InvalidRequest(format!("{name} must be an RFC 3339 time"))),
        }
    };
    let from = parse("from", &q.from)?.unwrap_or(i64::MIN);
    let to = parse("to", &q.to)?.unwrap_or(i64::MAX);
    if from > to {
        return Err(BranchError::InvalidRequest("from must not be after to".into()));
    }
    let durable = app.outbox.last_seq.load(Ordering::Acquire);
    let events = app
        .read(move |c| outbox_table::sales_between(c, from, to, durable))
        .await?;
    let mut csv = String::from(
        "sale_id,branch_id,seq,sold_at,cashier_id,product_id,quantity,unit_price_cents,line_total_cents\n",
    );
    let branch = app.branch_id.to_string();
    for e in events {
        for l in e.lines.as_deref().unwrap_or_default() {
            let row = [
                e.sale_id.clone().unwrap_or_default(),
                branch.clone(),
                e.seq.to_string(),
                e.occurred_at.clone(),
                e.cashier_id.clone().unwrap_or_default(),
                l.product_id.to_string(),
                l.quantity.to_string(),
                l.unit_price_cents.to_string(),
                (l.quantity * l.unit_price_cents).to_string(),
            ];
            csv.push_str(&colmena_shared::http::csv_row(&row));
        }
    }
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"sales-{branch}.csv\""),
        ))
        .body(csv))
}
