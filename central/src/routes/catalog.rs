//! `PUT /products/{product_id}`, `GET /products/{product_id}`, `GET /products`
//! (docs/protocol.md, "Catalog at central"). A product's version is its entity tag: the
//! answers carry `ETag: "<version>"`, and a PUT with `If-Match` writes only over that version.
use super::responses::{AdminErrors, BodyErrors};
use super::{header_values, idempotency_key, replayed};
use crate::domain;
use crate::error::CentralError;
use crate::store::{Idempotent, ProductOutcome, Store};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use colmena_shared::clock;
#[allow(unused_imports)] // named only in the OpenAPI attributes
use colmena_shared::error::ErrorBody;
use colmena_shared::wire::{Product, ProductList, ProductUpsert};

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/products").route(web::get().to(list)))
        .service(
            web::resource("/products/{product_id}")
                .route(web::get().to(one))
                .route(web::put().to(upsert)),
        );
}

/// `"<version>"`: a strong entity tag.
fn etag(version: u64) -> (header::HeaderName, String) {
    (header::ETAG, format!("\"{version}\""))
}

/// The headers of `PUT /products/{product_id}`, for `params(...)`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // documentation only: the handler reads the headers itself
struct PutHeaders {
    /// Write only over this version: `*` (any existing product) or a list of quoted
    /// versions (`"3"`). Weak tags never match.
    #[param(rename = "If-Match", nullable = false, example = "\"3\"")]
    if_match: Option<String>,
    /// 1-255 visible ASCII characters; a repeated key replays the first answer (24 h).
    #[param(
        rename = "Idempotency-Key",
        nullable = false,
        min_length = 1,
        max_length = 255,
        pattern = "^[!-~]{1,255}$"
    )]
    idempotency_key: Option<String>,
}

#[utoipa::path(
    put, path = "/products/{product_id}", tag = "catalog",
    summary = "Create or replace a product (admin)",
    description = "A PUT replaces the product: an omitted barcode or category means none, `active` defaults to \
true and `reorder_point` to 0. Idempotent: the same fields again change nothing (same version). A change gets a \
new `version` and reaches every branch by pull. With `price_effective_at` (RFC 3339, in the future), `price_cents` \
becomes the price from that instant on and the price in force is kept; without it, `price_cents` is in force at \
once and any scheduled price is dropped. With `If-Match`, the write happens only over that version, checked in the \
write's own transaction. With an `Idempotency-Key`, a retry of the same request replays the first answer.",
    params(
        ("product_id" = String, Path, description = "The SKU", pattern = "^[A-Za-z0-9._-]{1,64}$", example = "ARROZ-1KG"),
        PutHeaders,
    ),
    request_body(content = ProductUpsert, content_type = "application/json"),
    responses(
        (status = 200, description = "The product as saved (or replayed), with its version", body = Product,
            headers(("ETag" = String, description = "The version, quoted: `\"4\"`"),
                ("Idempotent-Replayed" = String, description = "`true` when this is the first answer again"))),
        (status = 400, description = "`invalid_request`: bad product_id, malformed JSON, wrong types, blank or over-long name or category, price out of 0..=10000000000, barcode not 8-14 digits, reorder_point out of 0..=1000000, price_effective_at not RFC 3339 or not in the future, a schedule for a product that does not exist yet, malformed If-Match or Idempotency-Key", body = ErrorBody),
        (status = 409, description = "`barcode_taken`: another product holds the barcode", body = ErrorBody),
        (status = 412, description = "`version_mismatch`: If-Match names another version, or the product does not exist", body = ErrorBody),
        (status = 422, description = "`idempotency_key_reused`: the same Idempotency-Key with a different request", body = ErrorBody),
        AdminErrors,
        BodyErrors,
    )
)]
async fn upsert(
    store: web::Data<dyn Store>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<ProductUpsert>,
) -> Result<HttpResponse, CentralError> {
    let product = domain::product_id(&path)?;
    let if_match = domain::if_match(&header_values(&req, "If-Match")?)?;
    let key = idempotency_key(&req)?;
    let change = domain::product_upsert(product, body.into_inner(), if_match, clock::now_millis())?;
    let key = key.map(|k| domain::product_fingerprint(k, &change));
    let id = change.product.as_str().to_string();
    match store.upsert_product(change, key).await? {
        Idempotent::Fresh(ProductOutcome::Saved(p)) => Ok(HttpResponse::Ok().insert_header(etag(p.version)).json(p)),
        Idempotent::Fresh(ProductOutcome::VersionMismatch { current }) => {
            Err(CentralError::VersionMismatch(match current {
                Some(v) => format!("If-Match does not match product {id}: its current version is \"{v}\""),
                None => format!("If-Match names a version of product {id}, which does not exist"),
            }))
        }
        Idempotent::Fresh(ProductOutcome::BarcodeTaken { barcode, holder }) => {
            Err(CentralError::BarcodeTaken { barcode, holder })
        }
        Idempotent::Fresh(ProductOutcome::NoPriceInForce) => Err(CentralError::InvalidRequest(format!(
            "product {id} does not exist yet: a new product needs a price in force first (PUT it without \
             price_effective_at, then schedule the change)"
        ))),
        Idempotent::Replay { status, body } => {
            // The first answer's version is its entity tag; the body is sent as it was.
            let version = serde_json::from_str::<Product>(&body).ok().map(|p| p.version);
            let mut res = replayed(status, body);
            if let Some(v) = version {
                let (name, value) = etag(v);
                if let Ok(value) = header::HeaderValue::from_str(&value) {
                    res.headers_mut().insert(name, value);
                }
            }
            Ok(res)
        }
        Idempotent::KeyReused => Err(CentralError::IdempotencyKeyReused),
    }
}

#[utoipa::path(
    get, path = "/products/{product_id}", tag = "catalog",
    summary = "One product of central's catalog (admin)",
    params(("product_id" = String, Path, description = "The SKU", pattern = "^[A-Za-z0-9._-]{1,64}$", example = "ARROZ-1KG")),
    responses(
        (status = 200, description = "The product: `price_cents` in force now, `scheduled_price` still to come", body = Product,
            headers(("ETag" = String, description = "The version, quoted: `\"4\"`"))),
        (status = 400, description = "`invalid_request`: not a valid product_id", body = ErrorBody),
        (status = 404, description = "`unknown_product`: not in central's catalog", body = ErrorBody),
        AdminErrors,
    )
)]
async fn one(store: web::Data<dyn Store>, path: web::Path<String>) -> Result<HttpResponse, CentralError> {
    let product = domain::product_id(&path)?;
    match store.product(product.clone()).await? {
        Some(p) => Ok(HttpResponse::Ok().insert_header(etag(p.version)).json(p)),
        None => Err(CentralError::UnknownProduct(product.into_string())),
    }
}

#[utoipa::path(
    get, path = "/products", tag = "catalog",
    summary = "Central's catalog (admin)",
    description = "Every product with all its fields: `price_cents` is the price in force now, `scheduled_price` \
the change still to come (null once its instant has passed).",
    responses((status = 200, description = "Every product, by product_id", body = ProductList), AdminErrors)
)]
async fn list(store: web::Data<dyn Store>) -> Result<HttpResponse, CentralError> {
    Ok(HttpResponse::Ok().json(ProductList {
        products: store.products().await?,
    }))
}
