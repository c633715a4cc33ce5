//! colmena-wire: what a branch, central and any client of theirs agree on, and nothing else.
//!
//! A POS integrator depends on this crate alone to build requests and read responses; both
//! services depend on it through `colmena-shared` (the server kit), which re-exports these
//! modules so that `colmena_shared::wire::Event` and `colmena_wire::wire::Event` are the same
//! type. The crate pulls in no HTTP server, runtime, database or metrics library (a test,
//! `tests/no_server_deps.rs`, keeps it so); the protocol these types carry is described in
//! docs/protocol.md.
//!
//! Layout:
//! - [`ids`]: validated identifiers and quantities — the only way a string from a client
//!   becomes a `ProductId` or a `BranchId`.
//! - [`wire`]: the JSON bodies of every endpoint and of the sync protocol, with serde;
//!   [`event`]: one outbox event and its validation (re-exported by [`wire`]).
//! - [`error`]: the error body `{"error":{"code","message"}}` and its codes, each with its
//!   HTTP status.
//! - [`catalog`]: products, barcodes, scheduled prices, the branch's search and counts.
//! - [`till`]: shifts, tenders, returns and the shift summary both services compute.
//! - [`transfers`]: transfers between branches, their steps and the receipt rule.
//! - [`users`]: users, roles, PINs (never serialized) and the branch login.
//! - [`reports`]: the head office's sales reports (answer, CSV, query shape).
//! - [`clock`]: RFC 3339 UTC timestamps.
pub mod catalog;
pub mod clock;
pub mod error;
pub mod event;
pub mod ids;
pub mod reports;
pub mod till;
pub mod transfers;
pub mod users;
pub mod wire;
