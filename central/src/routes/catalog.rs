//! `PUT /products/{product_id}`, `GET /products`.
use crate::domain;
use crate::error::CentralError;
use crate::store::Store;
use actix_web::{web, HttpResponse};
use colmena_shared::wire::{ProductList, ProductUpsert};

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/products").route(web::get().to(list)))
        .service(web::resource("/products/{product_id}").route(web::put().to(upsert)));
}

async fn upsert(
    store: web::Data<dyn Store>,
    path: web::Path<String>,
    body: web::Json<ProductUpsert>,
) -> Result<HttpResponse, CentralError> {
    let product = domain::product_id(&path)?;
    let (name, price_cents) = domain::product_upsert(body.into_inner())?;
    let saved = store.upsert_product(product, name, price_cents).await?;
    Ok(HttpResponse::Ok().json(saved))
}

async fn list(store: web::Data<dyn Store>) -> Result<HttpResponse, CentralError> {
    Ok(HttpResponse::Ok().json(ProductList {
        products: store.products().await?,
    }))
}
