//! `GET /branches`, `POST /branches/{branch_id}/allocations`.
use super::responses::{AdminErrors, BodyErrors};
use crate::domain;
use crate::error::CentralError;
use crate::store::{AllocationOutcome, Store};
use actix_web::{web, HttpResponse};
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
    description = "The branch receives the allocation by pull.",
    params(("branch_id" = String, Path, description = "The branch", pattern = "^[A-Z0-9_-]{2,16}$", example = "CUS")),
    request_body(content = AllocationRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "The allocation, its feed cursor and the branch's ledger stock after it", body = AllocationResponse),
        (status = 400, description = "`invalid_request`: bad branch_id or product_id, malformed JSON, zero or out-of-range quantity", body = ErrorBody),
        (status = 404, description = "`unknown_product`: not in the catalog of central; `not_found`: a branch with no token that never pushed", body = ErrorBody),
        AdminErrors,
        BodyErrors,
    )
)]
async fn allocate(
    store: web::Data<dyn Store>,
    path: web::Path<String>,
    body: web::Json<AllocationRequest>,
) -> Result<HttpResponse, CentralError> {
    let branch = domain::branch_id(&path)?;
    let AllocationRequest { product_id, quantity } = body.into_inner();
    let quantity = domain::allocation_quantity(quantity)?;
    match store.allocate(branch.clone(), product_id.clone(), quantity).await? {
        AllocationOutcome::Allocated(a) => Ok(HttpResponse::Created().json(a)),
        AllocationOutcome::UnknownProduct => Err(CentralError::UnknownProduct(product_id.into_string())),
        AllocationOutcome::UnknownBranch => Err(CentralError::NotFound(format!(
            "unknown branch {branch}: central has no token for it and it never pushed"
        ))),
    }
}
