//! `GET /inventory`, `GET /inventory/{product_id}`: this branch's stock.
//!
//! Price and stock come from memory (the figures `/sell` works with: the price is the one in
//! force now, a scheduled price included), names from the store (memory holds only what
//! `/sell` needs). A product not yet in memory is not yet durable,
//! so it is not listed.
use super::responses::ReadErrors;
use crate::app::AppState;
use crate::error::BranchError;
use crate::storage::products;
use actix_web::{web, HttpResponse};
use colmena_shared::error::ErrorBody;
use colmena_shared::ids::ProductId;
use colmena_shared::wire::{BranchInventory, BranchProduct};

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/inventory").route(web::get().to(inventory)))
        .service(web::resource("/inventory/{product_id}").route(web::get().to(product)));
}

#[utoipa::path(
    get, path = "/inventory", tag = "inventory",
    summary = "This branch's stock, every product",
    responses((status = 200, description = "Every product, by product_id", body = BranchInventory), ReadErrors)
)]
async fn inventory(app: web::Data<AppState>) -> Result<HttpResponse, BranchError> {
    let names = app.read(products::names).await?;
    let now = colmena_shared::clock::now_millis();
    let products = names
        .into_iter()
        .filter_map(|(id, name)| {
            app.inventory.get(&id).map(|it| BranchProduct {
                product_id: id,
                name,
                price_cents: it.price_at(now),
                stock: it.stock,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(BranchInventory {
        branch_id: app.branch_id.to_string(),
        products,
    }))
}

#[utoipa::path(
    get, path = "/inventory/{product_id}", tag = "inventory",
    summary = "One product's stock at this branch",
    params(("product_id" = String, Path, description = "The SKU", pattern = "^[A-Za-z0-9._-]{1,64}$", example = "ARROZ-1KG")),
    responses(
        (status = 200, description = "The product", body = BranchProduct),
        (status = 400, description = "`invalid_request`: not a valid product_id", body = ErrorBody),
        (status = 404, description = "`unknown_product`: this branch has no such product", body = ErrorBody),
        ReadErrors,
    )
)]
async fn product(app: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, BranchError> {
    let id = ProductId::parse(&path).map_err(BranchError::InvalidRequest)?;
    let it = app
        .inventory
        .get(id.as_str())
        .ok_or_else(|| BranchError::UnknownProduct(id.to_string()))?;
    let pid = id.to_string();
    let name = app
        .read(move |c| products::name(c, &pid))
        .await?
        .unwrap_or_else(|| id.to_string());
    Ok(HttpResponse::Ok().json(BranchProduct {
        product_id: id.into_string(),
        name,
        price_cents: it.price_at(colmena_shared::clock::now_millis()),
        stock: it.stock,
    }))
}
