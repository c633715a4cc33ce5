//! colmena-central: the chain's server. It applies every branch event exactly once,
//! owns the catalog and the allocations, and answers for the whole chain's stock and sales
//! (see docs/protocol.md, 'Central endpoints').
//!
//! Layout:
//! - [`config`]: command line and environment (docs/protocol.md, 'Command line').
//! - [`startup`]: `Application::build` → `run_until_stopped`, graceful shutdown.
//! - [`auth`]: bearer tokens → admin or branch, checked before any body is read.
//! - [`routes`]: one file per resource, thin handlers.
//! - [`domain`]: the input rules: everything a client sends is checked there.
//! - [`store`]: the `Store` trait (async; the push apply is one transactional method) and
//!   its two implementations, embedded SQLite and PostgreSQL.
//! - [`error`]: `CentralError`, mapped exhaustively onto the error body (docs/protocol.md, 'Errors').
//! - [`openapi`]: the OpenAPI 3.1 document, generated from the routes and wire types.
//! - [`metrics`]: central's metrics (docs/protocol.md, 'Metrics').
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
