//! `POST /stock/adjustments` (goods received, shrinkage, corrections) and `POST
//! /stock/counts` (a physical count): durable and synced to central exactly like a sale (see
//! docs/protocol.md, "Branch endpoints" and "Catalog at the branch"). Both take an
//! `Idempotency-Key` with the semantics of `/sell`.
use super::responses::{BodyErrors, CommonErrors, IdempotencyKey};
use crate::app::AppState;
use crate::error::BranchError;
use crate::stock;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use colmena_shared::catalog::StockCountRequest;
#[allow(unused_imports)] // named only in the OpenAPI attributes
use colmena_shared::catalog::StockCountResponse;
use colmena_shared::error::ErrorBody;
use colmena_shared::wire::AdjustmentRequest;
#[allow(unused_imports)] // named only in the OpenAPI attributes
use colmena_shared::wire::AdjustmentResponse;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/stock/adjustments").route(web::post().to(adjust)))
        .service(web::resource("/stock/counts").route(web::post().to(count)));
}

#[utoipa::path(
    post, path = "/stock/adjustments", tag = "inventory",
    summary = "Adjust stock: goods received (+), shrinkage (-), count corrections",
    description = "Durable and synced to central exactly like a sale. `stock` is the product's stock as of this \
adjustment's commit. An `Idempotency-Key` retry with the same body replays the first 201 (with \
`Idempotent-Replayed: true`) and adjusts nothing more.",
    params(IdempotencyKey),
    request_body(content = AdjustmentRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Adjusted (or replayed)", body = AdjustmentResponse,
            headers(("Idempotent-Replayed" = String, description = "`true` when this is the first response again"))),
        (status = 400, description = "`invalid_request`: malformed JSON, wrong types, zero or out-of-range delta, bad reason, bad Idempotency-Key", body = ErrorBody),
        (status = 404, description = "`unknown_product`: this branch has no such product", body = ErrorBody),
        (status = 409, description = "`insufficient_stock`: the delta would make stock negative; `idempotency_key_in_flight`: the same key is being processed", body = ErrorBody),
        (status = 422, description = "`idempotency_key_reused`: the same Idempotency-Key with a different body", body = ErrorBody),
        BodyErrors,
        CommonErrors,
    )
)]
async fn adjust(
    app: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<AdjustmentRequest>,
) -> Result<HttpResponse, BranchError> {
    let key = super::idempotency_key(&req)?;
    let caller = crate::auth::caller(&req);
    let r = stock::adjust(&app, body.into_inner(), caller.as_ref(), key.as_deref()).await?;
    Ok(super::answered(StatusCode::CREATED, r))
}

#[utoipa::path(
    post, path = "/stock/counts", tag = "inventory",
    summary = "Record a physical count: the stock becomes `counted`",
    description = "The difference against the stock as of the count's own commit (after every sale committed \
before it) is recorded as `adjustment` events with reason `count`, and the stock becomes `counted`; sales \
committed after the count take from the counted stock. `seq` is the first event recorded, null when the count \
matched. An `Idempotency-Key` retry with the same body replays the first 201.",
    params(IdempotencyKey),
    request_body(content = StockCountRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Counted (or replayed)", body = StockCountResponse,
            headers(("Idempotent-Replayed" = String, description = "`true` when this is the first response again"))),
        (status = 400, description = "`invalid_request`: malformed JSON, wrong types, `counted` outside 0-1000000, bad Idempotency-Key", body = ErrorBody),
        (status = 404, description = "`unknown_product`: this branch has no such product", body = ErrorBody),
        (status = 409, description = "`idempotency_key_in_flight`: the same key is being processed", body = ErrorBody),
        (status = 422, description = "`idempotency_key_reused`: the same Idempotency-Key with a different body", body = ErrorBody),
        BodyErrors,
        CommonErrors,
    )
)]
async fn count(
    app: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<StockCountRequest>,
) -> Result<HttpResponse, BranchError> {
    let key = super::idempotency_key(&req)?;
    let caller = crate::auth::caller(&req);
    let r = stock::count(&app, body.into_inner(), caller.as_ref(), key.as_deref()).await?;
    Ok(super::answered(StatusCode::CREATED, r))
}
