//! `PUT /products/{product_id}`, `GET /products`.
use super::responses::{AdminErrors, BodyErrors};
use crate::domain;
use crate::error::CentralError;
use crate::store::Store;
use actix_web::{web, HttpResponse};
use colmena_shared::wire::{ProductList, ProductUpsert};
#[allow(unused_imports)] // named only in the OpenAPI attributes
use colmena_shared::{error::ErrorBody, wire::Product};

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/products").route(web::get().to(list)))
        .service(web::resource("/products/{product_id}").route(web::put().to(upsert)));
}

#[utoipa::path(
    put, path = "/products/{product_id}", tag = "catalog",
    summary = "Create or update a product (admin)",
    description = "Idempotent: the same name and price again changes nothing (same version). A change gets a new \
`version` and reaches every branch by pull.",
    params(("product_id" = String, Path, description = "The SKU", pattern = "^[A-Za-z0-9._-]{1,64}$", example = "ARROZ-1KG")),
    request_body(content = ProductUpsert, content_type = "application/json"),
    responses(
        (status = 200, description = "The product as saved, with its version", body = Product),
        (status = 400, description = "`invalid_request`: bad product_id, malformed JSON, wrong types, blank or over-long name, price out of 0..=10000000000", body = ErrorBody),
        AdminErrors,
        BodyErrors,
    )
)]
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

#[utoipa::path(
    get, path = "/products", tag = "catalog",
    summary = "Central's catalog (admin)",
    responses((status = 200, description = "Every product, by product_id", body = ProductList), AdminErrors)
)]
async fn list(store: web::Data<dyn Store>) -> Result<HttpResponse, CentralError> {
    Ok(HttpResponse::Ok().json(ProductList {
        products: store.products().await?,
    }))
}
