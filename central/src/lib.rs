//! colmena-central: the chain's server. It applies every branch event exactly once,
//! owns the catalog and the allocations, and answers for the whole chain's stock and sales
//! (contract §3).
//!
//! Layout:
//! - [`config`]: command line and environment (§7).
//! - [`startup`]: `Application::build` → `run_until_stopped`, graceful shutdown.
//! - [`auth`]: bearer tokens → admin or branch, checked before any body is read.
//! - [`routes`]: one file per resource, thin handlers.
//! - [`domain`]: the input rules: everything a client sends is checked there.
//! - [`store`]: the `Store` trait (async; the push apply is one transactional method) and
//!   its embedded SQLite implementation.
//! - [`error`]: `CentralError`, mapped exhaustively onto the contract's error body (§1).
//! - [`openapi`]: the OpenAPI 3.1 document, generated from the routes and wire types.
//! - [`metrics`]: the central metrics of §6.
pub mod auth;
pub mod config;
pub mod domain;
pub mod error;
pub mod failpoints;
pub mod metrics;
pub mod openapi;
pub mod routes;
pub mod startup;
pub mod store;
