//! The `api` test binary: everything that needs no process of its own. Central and branches
//! run in this process ([`support::app`]), several per test and many tests at once, on
//! `127.0.0.1:0` with fresh temp dirs; the repository's static files (OpenAPI documents,
//! deployment and observability configuration) and the test proxy are checked here too.
//!
//! Tests that need `kill -9`, a power cut, a real SIGTERM, the process's exit code or
//! environment, or a failpoint build live in the `e2e` and `failpoints` binaries.
#[path = "../support/mod.rs"]
mod support;

mod bad_input_corpus;
mod branch_api;
mod catalog;
mod catalog_chain;
mod central_api;
mod central_catalog;
mod central_till;
mod central_transfers;
mod central_users;
mod chain;
mod deployment_files;
mod observability_config;
mod openapi;
mod page;
mod people;
mod proxy;
mod reports;
mod security;
mod till;
mod tls;
mod transfers;
mod transfers_chain;
