//! `POST /transfers`, `GET /transfers`, `GET /transfers/{transfer_id}`,
//! `POST /transfers/{transfer_id}/cancel` (admin; docs/protocol.md, "Transfers"). The two
//! branch steps arrive as pushed events (`routes/sync.rs`); both branches learn of every
//! change by pull.
use super::responses::{AdminErrors, BodyErrors};
use crate::domain::{self, TransfersQuery};
use crate::error::CentralError;
use crate::metrics::CentralMetrics;
use crate::store::{CancelOutcome, Idempotent, Store, TransferOutcome};
use actix_web::{web, HttpRequest, HttpResponse};
#[allow(unused_imports)] // named only in the OpenAPI attributes
use colmena_shared::error::ErrorBody;
use colmena_shared::transfers::{Transfer, TransferList, TransferRequest};

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/transfers")
            .route(web::get().to(list))
            .route(web::post().to(create)),
    )
    .service(web::resource("/transfers/{transfer_id}").route(web::get().to(one)))
    .service(web::resource("/transfers/{transfer_id}/cancel").route(web::post().to(cancel)));
}

#[utoipa::path(
    post, path = "/transfers", tag = "transfers",
    summary = "Request a transfer of stock from one branch to another (admin)",
    description = "Creates the transfer (`requested`, with the next `TR-` id); both branches learn of it by pull. \
The sending branch dispatches it and the receiving branch receives it, each pushing its step as an event. With an \
`Idempotency-Key`, a retry of the same request replays the first 201 (with `Idempotent-Replayed: true`) and \
creates nothing more.",
    params(
        ("Idempotency-Key" = Option<String>, Header, nullable = false, description = "1-255 visible ASCII characters; remembered 24 h",
            min_length = 1, max_length = 255, pattern = "^[!-~]{1,255}$"),
    ),
    request_body(content = TransferRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "The transfer, `requested` (or replayed)", body = Transfer,
            headers(("Idempotent-Replayed" = String, description = "`true` when this is the first answer again"))),
        (status = 400, description = "`invalid_request`: malformed JSON, wrong types, a missing field, from_branch equal to to_branch, no lines or more than 500, a quantity out of 1..=1000000, a product twice, a blank or over-long note, bad Idempotency-Key", body = ErrorBody),
        (status = 404, description = "`not_found`: a branch with no token that never pushed; `unknown_product`: a product not in central's catalog", body = ErrorBody),
        (status = 422, description = "`idempotency_key_reused`: the same Idempotency-Key with a different request", body = ErrorBody),
        AdminErrors,
        BodyErrors,
    )
)]
async fn create(
    store: web::Data<dyn Store>,
    metrics: web::Data<CentralMetrics>,
    req: HttpRequest,
    body: web::Json<TransferRequest>,
) -> Result<HttpResponse, CentralError> {
    let key = super::idempotency_key(&req)?;
    let request = domain::transfer_request(body.into_inner())?;
    let key = key.map(|k| domain::transfer_fingerprint(k, &request));
    match store.create_transfer(request, key).await? {
        Idempotent::Fresh(TransferOutcome::Created(t)) => {
            metrics.transfer_step("requested", 1);
            Ok(HttpResponse::Created().json(t))
        }
        Idempotent::Fresh(TransferOutcome::UnknownBranch(b)) => Err(CentralError::NotFound(format!(
            "unknown branch {b}: central has no token for it and it never pushed"
        ))),
        Idempotent::Fresh(TransferOutcome::UnknownProduct(p)) => Err(CentralError::UnknownProduct(p)),
        Idempotent::Replay { status, body } => Ok(super::replayed(status, body)),
        Idempotent::KeyReused => Err(CentralError::IdempotencyKeyReused),
    }
}

#[utoipa::path(
    get, path = "/transfers", tag = "transfers",
    summary = "Transfers, by transfer_id (admin)",
    params(TransfersQuery),
    responses(
        (status = 200, description = "The transfers matching the filters, by transfer_id", body = TransferList),
        (status = 400, description = "`invalid_request`: an unknown status, a bad branch_id, an unknown query parameter", body = ErrorBody),
        AdminErrors,
    )
)]
async fn list(store: web::Data<dyn Store>, query: web::Query<TransfersQuery>) -> Result<HttpResponse, CentralError> {
    let filter = domain::transfers_query(query.into_inner())?;
    Ok(HttpResponse::Ok().json(TransferList {
        transfers: store.transfers(filter).await?,
    }))
}

#[utoipa::path(
    get, path = "/transfers/{transfer_id}", tag = "transfers",
    summary = "One transfer as central knows it (admin)",
    params(("transfer_id" = String, Path, description = "The transfer", pattern = "^[A-Za-z0-9._-]{1,64}$", example = "TR-000001")),
    responses(
        (status = 200, description = "The transfer", body = Transfer),
        (status = 400, description = "`invalid_request`: not a valid transfer_id", body = ErrorBody),
        (status = 404, description = "`not_found`: no such transfer", body = ErrorBody),
        AdminErrors,
    )
)]
async fn one(store: web::Data<dyn Store>, path: web::Path<String>) -> Result<HttpResponse, CentralError> {
    let id = domain::transfer_id(&path)?;
    match store.transfer(id.clone()).await? {
        Some(t) => Ok(HttpResponse::Ok().json(t)),
        None => Err(not_found(&id)),
    }
}

#[utoipa::path(
    post, path = "/transfers/{transfer_id}/cancel", tag = "transfers",
    summary = "Cancel a transfer not yet dispatched (admin)",
    description = "Only a `requested` transfer can be cancelled; cancelling a cancelled one answers it again. Both \
branches learn of it by pull. A dispatch that crossed the cancel still applies when the sending branch pushes it: \
what happened at the store wins.",
    params(("transfer_id" = String, Path, description = "The transfer", pattern = "^[A-Za-z0-9._-]{1,64}$", example = "TR-000001")),
    responses(
        (status = 200, description = "The transfer, `cancelled`", body = Transfer),
        (status = 400, description = "`invalid_request`: not a valid transfer_id", body = ErrorBody),
        (status = 404, description = "`not_found`: no such transfer", body = ErrorBody),
        (status = 409, description = "`transfer_conflict`: already dispatched or received", body = ErrorBody),
        AdminErrors,
    )
)]
async fn cancel(
    store: web::Data<dyn Store>,
    metrics: web::Data<CentralMetrics>,
    path: web::Path<String>,
) -> Result<HttpResponse, CentralError> {
    let id = domain::transfer_id(&path)?;
    match store.cancel_transfer(id.clone()).await? {
        CancelOutcome::Cancelled(t) => {
            metrics.transfer_step("cancelled", 1);
            Ok(HttpResponse::Ok().json(t))
        }
        CancelOutcome::AlreadyCancelled(t) => Ok(HttpResponse::Ok().json(t)),
        CancelOutcome::NotFound => Err(not_found(&id)),
        CancelOutcome::Conflict(t) => Err(CentralError::TransferConflict {
            message: format!(
                "transfer {id} is {}: only a requested transfer can be cancelled",
                t.status.as_str()
            ),
            applied_through: None,
        }),
    }
}

fn not_found(id: &str) -> CentralError {
    CentralError::NotFound(format!("no transfer {id}"))
}
