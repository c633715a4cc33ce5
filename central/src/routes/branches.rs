//! `GET /branches`, `POST /branches/{branch_id}/allocations`.
use crate::domain;
use crate::error::CentralError;
use crate::store::{AllocationOutcome, Store};
use actix_web::{web, HttpResponse};
use colmena_shared::wire::{AllocationRequest, BranchList};

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/branches").route(web::get().to(list)))
        .service(web::resource("/branches/{branch_id}/allocations").route(web::post().to(allocate)));
}

async fn list(store: web::Data<dyn Store>) -> Result<HttpResponse, CentralError> {
    Ok(HttpResponse::Ok().json(BranchList {
        branches: store.branches().await?,
    }))
}

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
