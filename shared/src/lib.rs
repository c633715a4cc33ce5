//! colmena-shared: what the branch and central agree on.
//!
//! Layout:
//! - [`ids`]: validated identifiers and quantities (contract §0) — the only way a string from a
//!   client becomes a `ProductId` or a `BranchId`.
//! - [`wire`]: the JSON bodies of the contract (§2, §3), with serde.
//! - [`error`]: the error body and codes of §1; every service maps its own error enum onto
//!   [`error::ApiError`].
//! - [`http`]: actix plumbing both services share: JSON/query/path configs whose rejections are
//!   contract errors, bearer tokens, and the middleware that measures every request and makes
//!   sure no error leaves without a JSON body.
//! - [`metrics`]: HTTP metrics and the `/metrics` renderer.
//! - [`openapi`]: the bearer scheme and rendering both services' OpenAPI documents share.
//! - [`backup`]: online backups of an embedded store, checksums, retention, restore.
//! - [`clock`]: RFC 3339 UTC timestamps.
//! - [`telemetry`]: `tracing` setup (`RUST_LOG`, `--log-format json`).
pub mod backup;
pub mod checkpoint;
pub mod clock;
pub mod error;
pub mod http;
pub mod ids;
pub mod memory;
pub mod metrics;
pub mod openapi;
pub mod telemetry;
pub mod wire;
