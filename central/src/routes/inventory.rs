//! `GET /inventory`, `GET /inventory/{product_id}`: the consolidated ledger.
use crate::domain;
use crate::error::CentralError;
use crate::store::Store;
use actix_web::{web, HttpResponse};
use colmena_shared::wire::CentralInventory;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/inventory").route(web::get().to(all)))
        .service(web::resource("/inventory/{product_id}").route(web::get().to(one)));
}

async fn all(store: web::Data<dyn Store>) -> Result<HttpResponse, CentralError> {
    Ok(HttpResponse::Ok().json(CentralInventory {
        products: store.inventory().await?,
    }))
}

async fn one(store: web::Data<dyn Store>, path: web::Path<String>) -> Result<HttpResponse, CentralError> {
    let product = domain::product_id(&path)?;
    match store.inventory_of(product.clone()).await? {
        Some(p) => Ok(HttpResponse::Ok().json(p)),
        None => Err(CentralError::UnknownProduct(product.into_string())),
    }
}
