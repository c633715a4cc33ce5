//! `GET /branches`, `POST /branches/{branch_id}/allocations`.
use super::responses::{AdminErrors, BodyErrors};
use crate::domain;
use crate::error::CentralError;
use crate::store::{AllocationOutcome, Idempotent, Store};
use actix_web::{web, HttpRequest, HttpResponse};
use colmena_shared::wire::{AllocationRequest, BranchList};
#[allow(unused_imports)] // named only in the OpenAPI attributes
use colmena_shared::{error::ErrorBody, wire::AllocationResponse};

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/branches").route(web::get().to(list)))
        .service(web::resource("/branches/{branch_id}/allocations").route(web::post().to(allocate)));
}

#[utoipa::path(
    get, path = "/branches", tag = "branches",
    summary = "Every branch with a token or that ever pushed (admin)",
    responses((status = 200, description = "The branches, by branch_id", body = BranchList), AdminErrors)
)]
async fn list(store: web::Data<dyn Store>) -> Result<HttpResponse, CentralError> {
    Ok(HttpResponse::Ok().json(BranchList {
        branches: store.branches().await?,
    }))
}

#[utoipa::path(
    post, path = "/branches/{branch_id}/allocations", tag = "branches",
    summary = "Send stock to (or, negative, withdraw it from) a branch (admin)",
    description = "The branch receives the allocation by pull. With an `Idempotency-Key`, a retry of the same \
request replays the first 201 (with `Idempotent-Replayed: true`) and allocates nothing more.",
    params(
        ("branch_id" = String, Path, description = "The branch", pattern = "^[A-Z0-9_-]{2,16}$", example = "CUS"),
        ("Idempotency-Key" = Option<String>, Header, nullable = false, description = "1-255 visible ASCII characters; remembered 24 h",
            min_length = 1, max_length = 255, pattern = "^[!-~]{1,255}$"),
    ),
    request_body(content = AllocationRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "The allocation, its feed cursor and the branch's ledger stock after it (or replayed)", body = AllocationResponse,
            headers(("Idempotent-Replayed" = String, description = "`true` when this is the first answer again"))),
        (status = 400, description = "`invalid_request`: bad branch_id or product_id, malformed JSON, zero or out-of-range quantity, bad Idempotency-Key", body = ErrorBody),
        (status = 404, description = "`unknown_product`: not in the catalog of central; `not_found`: a branch with no token that never pushed", body = ErrorBody),
        (status = 422, description = "`idempotency_key_reused`: the same Idempotency-Key with a different request", body = ErrorBody),
        AdminErrors,
        BodyErrors,
    )
)]
async fn allocate(
    store: web::Data<dyn Store>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<AllocationRequest>,
) -> Result<HttpResponse, CentralError> {
    let branch = domain::branch_id(&path)?;
    let key = super::idempotency_key(&req)?;
    let AllocationRequest { product_id, quantity } = body.into_inner();
    let quantity = domain::allocation_quantity(quantity)?;
    let key = key.map(|k| domain::allocation_fingerprint(k, &branch, &product_id, quantity));
    match store
        .allocate(branch.clone(), product_id.clone(), quantity, key)
        .await?
    {
        Idempotent::Fresh(AllocationOutcome::Allocated(a)) => Ok(HttpResponse::Created().json(a)),
        Idempotent::Fresh(AllocationOutcome::UnknownProduct) => {
            Err(CentralError::UnknownProduct(product_id.into_string()))
        }
        Idempotent::Fresh(AllocationOutcome::UnknownBranch) => Err(CentralError::NotFound(format!(
            "unknown branch {branch}: central has no token for it and it never pushed"
        ))),
        Idempotent::Replay { status, body } => Ok(super::replayed(status, body)),
        Idempotent::KeyReused => Err(CentralError::IdempotencyKeyReused),
    }
}
