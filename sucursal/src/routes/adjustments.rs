//! `POST /stock/adjustments`: goods received, shrinkage, count corrections; durable and
//! synced to central exactly like a sale (see docs/protocol.md, "Branch endpoints").
use super::responses::{BodyErrors, CommonErrors};
use crate::app::AppState;
use crate::error::BranchError;
use crate::sales;
use actix_web::{web, HttpRequest, HttpResponse};
use colmena_shared::error::ErrorBody;
use colmena_shared::wire::AdjustmentRequest;
#[allow(unused_imports)] // named only in the OpenAPI attributes
use colmena_shared::wire::AdjustmentResponse;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/stock/adjustments").route(web::post().to(adjust)));
}

#[utoipa::path(
    post, path = "/stock/adjustments", tag = "inventory",
    summary = "Adjust stock: goods received (+), shrinkage (-), count corrections",
    description = "Durable and synced to central exactly like a sale.",
    request_body(content = AdjustmentRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Adjusted", body = AdjustmentResponse),
        (status = 400, description = "`invalid_request`: malformed JSON, wrong types, zero or out-of-range delta, bad reason", body = ErrorBody),
        (status = 404, description = "`unknown_product`: this branch has no such product", body = ErrorBody),
        (status = 409, description = "`insufficient_stock`: the delta would make stock negative", body = ErrorBody),
        BodyErrors,
        CommonErrors,
    )
)]
async fn adjust(
    app: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<AdjustmentRequest>,
) -> Result<HttpResponse, BranchError> {
    let caller = crate::auth::caller(&req);
    let r = sales::adjust(&app, body.into_inner(), caller.as_ref()).await?;
    Ok(HttpResponse::Created().json(r))
}
