//! The branch's HTTP surface, one file per resource (see docs/protocol.md, "Branch
//! endpoints"). Handlers are thin: extract, call the domain ([`crate::sales`],
//! [`crate::stock`], [`crate::catalog`], [`crate::till`], [`crate::transfers`], the store reads in [`crate::storage`], [`crate::backup`]), map the result.
//!
//! Every path is one `web::resource` with its methods, so a wrong method is a 405 rather
//! than a 404. `/openapi.json` is registered by [`crate::openapi::configure`] (the document
//! is generated from these handlers, so this module does not depend on it), and the caller
//! and its permission are checked by [`crate::auth`] before any handler runs.
use actix_web::web;

pub mod adjustments;
pub mod backups;
pub mod export;
pub mod inventory;
pub mod login;
pub mod metrics;
pub mod outbox;
pub mod page;
pub mod products;
pub mod responses;
pub mod returns;
pub mod sell;
pub mod shifts;
pub mod status;
pub mod transfers;

/// Registers every route but `/openapi.json`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/health").route(web::get().to(colmena_shared::http::health)))
        .service(web::resource("/metrics").route(web::get().to(metrics::metrics)));
    sell::config(cfg);
    login::config(cfg);
    inventory::config(cfg);
    adjustments::config(cfg);
    products::config(cfg);
    status::config(cfg);
    outbox::config(cfg);
    export::config(cfg);
    backups::config(cfg);
    shifts::config(cfg);
    returns::config(cfg);
    transfers::config(cfg);
    page::config(cfg);
}

/// The request's `Idempotency-Key`, checked (1-255 visible ASCII), if it has one.
pub fn idempotency_key(req: &actix_web::HttpRequest) -> Result<Option<String>, crate::error::BranchError> {
    use crate::error::BranchError;
    let Some(v) = req.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let k = v
        .to_str()
        .map_err(|_| BranchError::InvalidRequest("Idempotency-Key must be visible ASCII".into()))?;
    crate::sales::check_idempotency_key(k)?;
    Ok(Some(k.to_string()))
}

/// A till answer with `status`: the new body, or the first one again for a repeated
/// `Idempotency-Key` (with `Idempotent-Replayed: true`, as `/sell` does).
pub fn answered<T: serde::Serialize>(
    status: actix_web::http::StatusCode,
    answer: crate::till::Answer<T>,
) -> actix_web::HttpResponse {
    match answer {
        crate::till::Answer::New(body) => actix_web::HttpResponse::build(status).json(body),
        crate::till::Answer::Replayed(body) => actix_web::HttpResponse::build(status)
            .insert_header(("Idempotent-Replayed", "true"))
            .content_type("application/json")
            .body(body.to_string()),
    }
}
