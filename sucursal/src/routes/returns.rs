//! `POST /sales/{sale_id}/returns`: returns and voids at the sale's own prices
//! (docs/protocol.md, "The till").
use super::responses::{BodyErrors, CommonErrors, IdempotencyKey};
use super::{answered, idempotency_key};
use crate::app::AppState;
use crate::error::BranchError;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use colmena_shared::error::ErrorBody;
use colmena_shared::till::ReturnRequest;
#[allow(unused_imports)] // named only in the OpenAPI attributes
use colmena_shared::till::ReturnResponse;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/sales/{sale_id}/returns").route(web::post().to(record)));
}

#[utoipa::path(
    post, path = "/sales/{sale_id}/returns", tag = "till",
    summary = "Return (part of) a sale, or void it (no `lines`: everything not yet returned)",
    description = "Refunds at the sale's own unit prices, never more of a product than was sold minus what was \
already returned (also under concurrent returns). `restock` (default true) puts the units back into stock once \
the return is durable. A cashier may refund up to `--cashier-return-limit` cents; more needs a supervisor or \
manager.",
    params(("sale_id" = String, Path, description = "A sale of this branch, e.g. `CUS-0000000042`"),
        IdempotencyKey),
    request_body(content = ReturnRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Returned", body = ReturnResponse),
        (status = 400, description = "`invalid_request`: bad quantity, reason, method or shift id", body = ErrorBody),
        (status = 403, description = "`forbidden`: over the cashier's refund limit, or not a logged-in user", body = ErrorBody),
        (status = 404, description = "`unknown_sale`: this branch holds no such sale", body = ErrorBody),
        (status = 409, description = "`return_exceeds_sale`: more than is left of the sale, or a product not in it; \
`return_window_expired`; `shift_not_open`; `idempotency_key_in_flight`", body = ErrorBody),
        (status = 422, description = "`idempotency_key_reused`", body = ErrorBody),
        BodyErrors,
        CommonErrors,
    )
)]
async fn record(
    app: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<ReturnRequest>,
) -> Result<HttpResponse, BranchError> {
    let key = idempotency_key(&req)?;
    let caller = crate::auth::caller(&req);
    let a = crate::till::returns::record(
        &app,
        &path.into_inner(),
        body.into_inner(),
        caller.as_ref(),
        key.as_deref(),
    )
    .await?;
    Ok(answered(StatusCode::CREATED, a))
}
