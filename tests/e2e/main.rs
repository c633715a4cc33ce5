//! The `e2e` test binary: tests against the real `colmena-central` / `colmena-sucursal`
//! processes (built beforehand: `scripts/test.sh`, or `cargo build --release --workspace
//! --bins`), for what only a process shows: `kill -9`, SIGTERM and exit codes, memory of a
//! process, restarts from disk, the relay through a fault proxy, chaos, PostgreSQL
//! fail-over, a real Prometheus, schemathesis, and the cashier's page in headless Chromium.
#[path = "../support/mod.rs"]
mod support;

mod bad_input_corpus;
mod branch_api;
mod cashier_page;
mod cashier_page_bench;
mod catalog;
mod central_api;
mod chaos;
mod chaos_till;
mod chaos_transfers;
mod operations;
mod people;
mod postgres_failover;
mod prometheus_e2e;
mod relay_e2e;
mod schemathesis;
mod till;
mod transfers;
