//! `POST /sell`: one product or a basket, answered 201 only once the sale is durable (see
//! docs/protocol.md, "Branch endpoints" and "Idempotency keys").
//!
//! Every refusal is counted in `colmena_sale_rejections_total` under its error code, and
//! every call (sold or not) in `colmena_sell_duration_seconds`.
use super::responses::{BodyErrors, CommonErrors};
use crate::app::AppState;
use crate::error::BranchError;
use crate::sales::{self, SellOutcome};
use actix_web::{web, HttpRequest, HttpResponse};
use colmena_shared::error::ErrorBody;
#[allow(unused_imports)] // named only in the OpenAPI attributes
use colmena_shared::wire::SaleResponse;
use colmena_shared::wire::SellRequest;
use std::time::Instant;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/sell").route(web::post().to(sell)));
}

#[utoipa::path(
    post, path = "/sell", tag = "sales",
    summary = "Sell one product or a basket",
    description = "All-or-nothing: if any line fails, nothing is sold. The 201 is sent only once the sale is \
durable in the branch's local store. An `Idempotency-Key` retry with the same body replays the first 201 \
(with `Idempotent-Replayed: true`) and sells nothing more. With a user token the sale records that user as \
`cashier_id`.",
    params(("Idempotency-Key" = Option<String>, Header, nullable = false, description = "1-255 visible ASCII characters; remembered at least 24 h",
        min_length = 1, max_length = 255, pattern = "^[!-~]{1,255}$")),
    request_body(content = SellRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Sold (or replayed)", body = SaleResponse,
            headers(("Idempotent-Replayed" = String, description = "`true` when this is the first response again"))),
        (status = 400, description = "`invalid_request`: malformed JSON, wrong types, out-of-range quantity, bad ids, empty or mixed basket, bad Idempotency-Key", body = ErrorBody),
        (status = 403, description = "`forbidden`: this caller may not sell, or a user token with a body `cashier_id` other than its user", body = ErrorBody),
        (status = 404, description = "`unknown_product`: a line names a product this branch does not have", body = ErrorBody),
        (status = 409, description = "`insufficient_stock`: a line asks for more than is in stock; `idempotency_key_in_flight`: the same key is being processed", body = ErrorBody),
        (status = 422, description = "`idempotency_key_reused`: the same Idempotency-Key with a different body", body = ErrorBody),
        BodyErrors,
        CommonErrors,
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
    if let Err(e) = &result {
        m.sale_rejected(e.code());
    }
    m.sell_duration.observe(started.elapsed().as_secs_f64());
    result
}

async fn sell_inner(app: &AppState, req: &HttpRequest, body: SellRequest) -> Result<HttpResponse, BranchError> {
    let key = super::idempotency_key(req)?;
    let mut sale = sales::validate_sale(body)?;
    if let Some(caller) = crate::auth::caller(req) {
        sales::attribute(&mut sale, &caller)?;
    }
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
