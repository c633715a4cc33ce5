//! `GET /products/search`: find products by name, id or barcode at the till (see
//! docs/protocol.md, "Catalog at the branch"). Answered from the in-memory index and
//! inventory: no store read per keystroke.
use super::responses::ReadErrors;
use crate::app::AppState;
use crate::catalog::{self, SearchParams};
use crate::error::BranchError;
use actix_web::{web, HttpResponse};
#[allow(unused_imports)] // named only in the OpenAPI attributes
use colmena_shared::catalog::SearchResponse;
use colmena_shared::error::ErrorBody;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/products/search").route(web::get().to(search)));
}

#[utoipa::path(
    get, path = "/products/search", tag = "inventory",
    summary = "Search active products by text or barcode",
    description = "`q`: a substring of the name or product id, case and accents ignored (\"azucar\" finds \
\"Azúcar rubia 1 kg\"). `barcode`: exactly that barcode. Exactly one of the two. Only active products, ordered \
by name, each with its stock and the price in force now on the branch's clock.",
    params(SearchParams),
    responses(
        (status = 200, description = "The products found (possibly none)", body = SearchResponse),
        (status = 400, description = "`invalid_request`: neither or both of q and barcode, q empty or over 64 characters, a barcode that is not 8-14 digits, limit outside 1-100", body = ErrorBody),
        ReadErrors,
    )
)]
async fn search(app: web::Data<AppState>, params: web::Query<SearchParams>) -> Result<HttpResponse, BranchError> {
    let query = params.into_inner().check()?;
    let now = colmena_shared::clock::now_millis();
    Ok(HttpResponse::Ok().json(catalog::search(&app.catalog, &app.inventory, &query, now)))
}
