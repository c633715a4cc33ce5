//! Central's OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]`
//! attributes (`routes/*.rs`) and the `ToSchema` derives of the shared wire types — never
//! written by hand. Served at `GET /openapi.json` (no token; registered by [`configure`], so
//! [`crate::routes`] does not depend on this module), printed by the hidden
//! `colmena-central openapi` subcommand, committed as `docs/openapi/central.json`
//! (`scripts/openapi.sh` regenerates it; `tests/api/openapi.rs` fails when it is stale).
use crate::routes;
use actix_web::web;
use std::sync::OnceLock;
use utoipa::OpenApi;

/// Name of the security scheme in the document (also spelt out in `security(...)` below:
/// the derive takes a literal).
pub const SECURITY_SCHEME: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "colmena central (colmena-central)",
        description = "The chain's server: applies every branch's events exactly once, owns the catalog and the \
allocations, and answers for the whole chain's stock and sales. Every error is \
`{\"error\": {\"code\", \"message\"}}` with the codes of the contract. Every endpoint but `/health`, \
`/metrics` and `/openapi.json` needs `Authorization: Bearer <token>`: the admin token for everything, or a \
branch token for `/sync/*` of that branch only (403 otherwise)."
    ),
    paths(
        routes::catalog::upsert,
        routes::catalog::one,
        routes::catalog::list,
        routes::inventory::all,
        routes::inventory::one,
        routes::branches::list,
        routes::branches::allocate,
        routes::sales::list,
        routes::sales::export,
        routes::till::shifts,
        routes::till::returns,
        routes::reports::sales,
        routes::reports::sales_csv,
        routes::sync::push,
        routes::sync::pull,
        routes::users::put,
        routes::users::one,
        routes::users::list,
        routes::audit::list,
        routes::transfers::create,
        routes::transfers::list,
        routes::transfers::one,
        routes::transfers::cancel,
        routes::backups::create,
        routes::backups::list,
        routes::backups::download,
        routes::backups::verify,
        colmena_shared::http::health,
        routes::metrics,
        openapi_json,
    ),
    components(schemas(colmena_shared::error::ErrorBody, colmena_shared::error::ErrorCode)),
    security(("bearer" = [])),
    tags(
        (name = "catalog", description = "Products, names and prices (admin)"),
        (name = "inventory", description = "The chain's stock ledger (admin)"),
        (name = "branches", description = "Branches and stock allocations (admin)"),
        (name = "sales", description = "Sales as central applied them (admin)"),
        (name = "till", description = "Shifts and returns as central applied them (admin)"),
        (name = "reports", description = "Head-office sales reports from running totals (admin)"),
        (name = "users", description = "People who work at the branches, their roles and PINs (admin)"),
        (name = "transfers", description = "Stock sent from one branch to another (admin)"),
        (name = "audit", description = "Who changed what at central (admin)"),
        (name = "sync", description = "The branch <-> central protocol"),
        (name = "operations", description = "Backups, health, metrics"),
    )
)]
struct CentralApi;

/// The document, generated from the code.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = CentralApi::openapi();
    colmena_shared::openapi::add_bearer(
        &mut doc,
        SECURITY_SCHEME,
        "The admin token (`--admin-token`) for everything, or a branch token (`--branch-token BRANCH=secret`) \
         for `/sync/*` of that branch only.",
    );
    doc
}

/// The document as served and committed (pretty JSON, final newline).
pub fn rendered() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| colmena_shared::openapi::render(&document()))
}

/// Registers `GET /openapi.json`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/openapi.json").route(web::get().to(openapi_json)));
}

/// `GET /openapi.json`.
#[utoipa::path(
    get, path = "/openapi.json", tag = "operations", security(()),
    summary = "This document (no token)",
    responses((status = 200, description = "The OpenAPI 3.1 description of this service", body = Object))
)]
pub async fn openapi_json() -> actix_web::HttpResponse {
    colmena_shared::openapi::respond(rendered())
}
