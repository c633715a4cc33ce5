//! `/shifts`: a till's session from its opening float to its cash count (docs/protocol.md,
//! "The till"). Every `POST` is an event through the outbox and takes `Idempotency-Key`.
use super::responses::{BodyErrors, CommonErrors, IdempotencyKey};
use super::{answered, idempotency_key};
use crate::app::AppState;
use crate::error::BranchError;
use crate::till::shifts;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use colmena_shared::error::ErrorBody;
#[allow(unused_imports)] // named only in the OpenAPI attributes
use colmena_shared::till::{CashMovement, Shift};
use colmena_shared::till::{CashMovementRequest, CloseShiftRequest, OpenShiftRequest};

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/shifts").route(web::post().to(open)))
        .service(web::resource("/shifts/{shift_id}").route(web::get().to(get)))
        .service(web::resource("/shifts/{shift_id}/cash-movements").route(web::post().to(cash_movement)))
        .service(web::resource("/shifts/{shift_id}/close").route(web::post().to(close)));
}

#[utoipa::path(
    post, path = "/shifts", tag = "till",
    summary = "Open a shift on a till with its opening float",
    description = "One open shift per till. The caller (a logged-in user) is `opened_by`.",
    params(IdempotencyKey),
    request_body(content = OpenShiftRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Opened", body = Shift),
        (status = 400, description = "`invalid_request`: bad till id or float", body = ErrorBody),
        (status = 409, description = "`shift_already_open`: the till has an open shift; `idempotency_key_in_flight`", body = ErrorBody),
        (status = 422, description = "`idempotency_key_reused`", body = ErrorBody),
        BodyErrors,
        CommonErrors,
    )
)]
async fn open(
    app: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<OpenShiftRequest>,
) -> Result<HttpResponse, BranchError> {
    let key = idempotency_key(&req)?;
    let caller = crate::auth::caller(&req);
    let a = shifts::open(&app, body.into_inner(), caller.as_ref(), key.as_deref()).await?;
    Ok(answered(StatusCode::CREATED, a))
}

#[utoipa::path(
    get, path = "/shifts/{shift_id}", tag = "till",
    summary = "A shift with its running (or final) summary",
    description = "A cashier sees their own shifts; a supervisor or manager any.",
    params(("shift_id" = String, Path, description = "e.g. `CUS-SH-000007`")),
    responses(
        (status = 200, description = "The shift", body = Shift),
        (status = 404, description = "`not_found`: no such shift at this branch", body = ErrorBody),
        CommonErrors,
    )
)]
async fn get(app: web::Data<AppState>, req: HttpRequest, path: web::Path<String>) -> Result<HttpResponse, BranchError> {
    let caller = crate::auth::caller(&req);
    let shift = shifts::get(&app, &path.into_inner(), caller.as_ref()).await?;
    Ok(HttpResponse::Ok().json(shift))
}

#[utoipa::path(
    post, path = "/shifts/{shift_id}/cash-movements", tag = "till",
    summary = "Put cash into, or take it out of, an open shift's drawer",
    params(("shift_id" = String, Path, description = "An open shift"),
        IdempotencyKey),
    request_body(content = CashMovementRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Recorded", body = CashMovement),
        (status = 400, description = "`invalid_request`: zero, negative or too large amount, bad reason", body = ErrorBody),
        (status = 404, description = "`not_found`: no such shift", body = ErrorBody),
        (status = 409, description = "`shift_not_open`: the shift is closed; `idempotency_key_in_flight`", body = ErrorBody),
        (status = 422, description = "`idempotency_key_reused`", body = ErrorBody),
        BodyErrors,
        CommonErrors,
    )
)]
async fn cash_movement(
    app: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<CashMovementRequest>,
) -> Result<HttpResponse, BranchError> {
    let key = idempotency_key(&req)?;
    let caller = crate::auth::caller(&req);
    let a = shifts::cash_movement(
        &app,
        &path.into_inner(),
        body.into_inner(),
        caller.as_ref(),
        key.as_deref(),
    )
    .await?;
    Ok(answered(StatusCode::CREATED, a))
}

#[utoipa::path(
    post, path = "/shifts/{shift_id}/close", tag = "till",
    summary = "Close a shift with the cash counted: the closing report",
    description = "The same count again answers the same closed shift. A cashier closes their own shift; a \
supervisor or manager any.",
    params(("shift_id" = String, Path, description = "The shift"),
        IdempotencyKey),
    request_body(content = CloseShiftRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Closed, with the final summary and its difference", body = Shift),
        (status = 400, description = "`invalid_request`: negative or too large count", body = ErrorBody),
        (status = 404, description = "`not_found`: no such shift", body = ErrorBody),
        (status = 409, description = "`shift_closed`: already closed with another count; `idempotency_key_in_flight`", body = ErrorBody),
        (status = 422, description = "`idempotency_key_reused`", body = ErrorBody),
        BodyErrors,
        CommonErrors,
    )
)]
async fn close(
    app: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<CloseShiftRequest>,
) -> Result<HttpResponse, BranchError> {
    let key = idempotency_key(&req)?;
    let caller = crate::auth::caller(&req);
    let a = shifts::close(
        &app,
        &path.into_inner(),
        body.into_inner(),
        caller.as_ref(),
        key.as_deref(),
    )
    .await?;
    Ok(answered(StatusCode::OK, a))
}
