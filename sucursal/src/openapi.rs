//! The branch's OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]`
//! attributes (`routes/*.rs`) and the `ToSchema` derives of the shared wire types — never
//! written by hand. Served at `GET /openapi.json` (no token; registered by [`configure`], so
//! [`crate::routes`] does not depend on this module), printed by the hidden
//! `colmena-sucursal openapi` subcommand, committed as `docs/openapi/sucursal.json`
//! (`scripts/openapi.sh` regenerates it; `tests/api/openapi.rs` fails when it is stale).
use crate::routes;
use actix_web::web;
use std::sync::OnceLock;
use utoipa::OpenApi;

/// Name of the security scheme in the document (also spelt out in `security(...)` below:
/// the derive takes a literal).
pub const SECURITY_SCHEME: &str = "pos_token";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "colmena branch (colmena-sucursal)",
        description = "A store's POS backend: sells from memory, acknowledges a sale only once it is durable in \
the branch's local store, and ships its events to central in the background. Every error is \
`{\"error\": {\"code\", \"message\"}}` with the codes of the contract. Every endpoint but `/health`, \
`/metrics`, `/openapi.json` and `POST /login` needs `Authorization: Bearer <token>`: the POS token, a user \
token from `POST /login`, or the branch admin token; what each may do is the permission table \
(docs/protocol.md, \"Permissions\"), 403 `forbidden` otherwise."
    ),
    paths(
        routes::sell::sell,
        routes::login::login,
        routes::login::logout,
        routes::inventory::inventory,
        routes::inventory::product,
        routes::adjustments::adjust,
        routes::adjustments::count,
        routes::products::search,
        routes::status::status,
        routes::outbox::outbox,
        routes::export::sales_export,
        routes::backups::create_backup,
        routes::backups::list_backups,
        routes::backups::download_backup,
        routes::backups::verify_backup,
        routes::shifts::open,
        routes::shifts::get,
        routes::shifts::cash_movement,
        routes::shifts::close,
        routes::returns::record,
        routes::transfers::list,
        routes::transfers::get,
        routes::transfers::dispatch,
        routes::transfers::receive,
        colmena_shared::http::health,
        routes::metrics::metrics,
        openapi_json,
    ),
    components(schemas(colmena_shared::error::ErrorBody, colmena_shared::error::ErrorCode)),
    security(("pos_token" = [])),
    tags(
        (name = "sales", description = "Selling, and the sales this branch keeps"),
        (name = "inventory", description = "Stock at this branch"),
        (name = "operations", description = "Sync state, backups, health, metrics"),
        (name = "people", description = "Logging users in and out"),
        (name = "till", description = "Shifts, cash movements, returns and voids"),
        (name = "transfers", description = "Transfers between branches: dispatching and receiving them"),
    )
)]
struct BranchApi;

/// The document, generated from the code.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = BranchApi::openapi();
    colmena_shared::openapi::add_bearer(
        &mut doc,
        SECURITY_SCHEME,
        "The POS token (`--pos-token`), a user token from `POST /login`, or the branch admin token (`--admin-token`).",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_basket_size_is_the_enforced_one() {
        let doc: serde_json::Value = serde_json::from_str(rendered()).expect("document is JSON");
        let forms = &doc["components"]["schemas"]["SellRequest"]["oneOf"];
        assert_eq!(forms[1]["properties"]["items"]["maxItems"], crate::sales::MAX_LINES);
    }
}
