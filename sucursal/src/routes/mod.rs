//! The branch's HTTP surface, one file per resource (see docs/protocol.md, "Branch
//! endpoints"). Handlers are thin: extract, call the domain ([`crate::sales`], the store
//! reads in [`crate::storage`], [`crate::backup`]), map the result.
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
pub mod responses;
pub mod sell;
pub mod status;

/// Registers every route but `/openapi.json`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/health").route(web::get().to(colmena_shared::http::health)))
        .service(web::resource("/metrics").route(web::get().to(metrics::metrics)));
    sell::config(cfg);
    login::config(cfg);
    inventory::config(cfg);
    adjustments::config(cfg);
    status::config(cfg);
    outbox::config(cfg);
    export::config(cfg);
    backups::config(cfg);
}
