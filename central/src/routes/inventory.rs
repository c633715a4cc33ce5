//! `GET /inventory`, `GET /inventory/{product_id}`: the consolidated ledger.
use super::responses::AdminErrors;
use crate::domain;
use crate::error::CentralError;
use crate::store::Store;
use actix_web::{web, HttpResponse};
use colmena_shared::wire::CentralInventory;
#[allow(unused_imports)] // named only in the OpenAPI attributes
use colmena_shared::{error::ErrorBody, wire::CentralProductStock};

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/inventory").route(web::get().to(all)))
        .service(web::resource("/inventory/{product_id}").route(web::get().to(one)));
}

#[utoipa::path(
    get, path = "/inventory", tag = "inventory",
    summary = "The chain's stock: every product, total and by branch (admin)",
    responses(
        (status = 200, description = "Every product in the catalog or with any ledger entry", body = CentralInventory),
        AdminErrors,
    )
)]
async fn all(store: web::Data<dyn Store>) -> Result<HttpResponse, CentralError> {
    Ok(HttpResponse::Ok().json(CentralInventory {
        products: store.inventory().await?,
    }))
}

#[utoipa::path(
    get, path = "/inventory/{product_id}", tag = "inventory",
    summary = "One product's stock across the chain (admin)",
    params(("product_id" = String, Path, description = "The SKU", pattern = "^[A-Za-z0-9._-]{1,64}$", example = "ARROZ-1KG")),
    responses(
        (status = 200, description = "The product; a branch absent from `by_branch` has 0", body = CentralProductStock),
        (status = 400, description = "`invalid_request`: not a valid product_id", body = ErrorBody),
        (status = 404, description = "`unknown_product`: central knows neither the product nor any ledger entry for it", body = ErrorBody),
        AdminErrors,
    )
)]
async fn one(store: web::Data<dyn Store>, path: web::Path<String>) -> Result<HttpResponse, CentralError> {
    let product = domain::product_id(&path)?;
    match store.inventory_of(product.clone()).await? {
        Some(p) => Ok(HttpResponse::Ok().json(p)),
        None => Err(CentralError::UnknownProduct(product.into_string())),
    }
}
