//! colmena-sucursal: a store's POS backend that keeps selling when the network or the head
//! office is down.
//!
//! Layout:
//! - [`config`]: flags and env vars; [`startup`]: `Application::build → run_until_stopped`.
//! - [`inventory`]: the DashMap every sale is answered from (reservations, no oversell).
//! - [`storage`]: the SQLite file and its single writer with group commit — a fact is
//!   acknowledged only once fsync'd.
//! - [`sales`]: sell/adjust domain logic; [`idempotency`]: `Idempotency-Key` records.
//! - [`backup`]: online backups, published once all they hold is durable.
//! - [`relay`]: push/pull with central; [`breaker`]: the circuit breaker around it.
//! - [`people`]: users pulled from central, logins and sessions; [`permissions`]: the one
//!   table of who may do what; [`auth`]: the middleware resolving the bearer token to a
//!   caller and asking that table.
//! - [`transfers`]: transfers between branches — this branch's view of each, dispatch and
//!   receipt.
//! - [`routes`]: the HTTP surface, one file per resource; [`openapi`]: the OpenAPI 3.1 document, generated from the routes;
//!   [`error`]: the boundary's error enum; [`metrics`]: Prometheus.
pub mod app;
pub mod auth;
pub mod backup;
pub mod breaker;
pub mod catalog;
pub mod config;
pub mod error;
pub mod failpoints;
pub mod housekeeping;
pub mod idempotency;
pub mod inventory;
pub mod metrics;
pub mod openapi;
pub mod people;
pub mod permissions;
pub mod relay;
pub mod routes;
pub mod sales;
pub mod startup;
pub mod stock;
pub mod storage;
pub mod till;
pub mod transfers;
