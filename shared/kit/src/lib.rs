//! colmena-shared: the server kit both services (`colmena-central`, `colmena-sucursal`) and
//! the benchmarks are built on.
//!
//! The wire types live in `colmena-wire` (`shared/wire/`), which a client can depend on alone;
//! this crate re-exports its modules unchanged, so `colmena_shared::wire::Event` *is*
//! `colmena_wire::wire::Event`. What is here needs the server stack (actix-web, tokio,
//! SQLite, Prometheus) and is of no use to a client.
//!
//! Layout:
//! - [`ids`], [`wire`], [`clock`]: re-exported from `colmena-wire`.
//! - [`error`]: the error body and codes (from `colmena-wire`) plus [`error::ApiError`], the
//!   error as an actix response; every service maps its own error enum onto it.
//! - [`http`]: actix plumbing both services share: JSON/query/path configs whose rejections are
//!   JSON error bodies, bearer tokens, and the middleware that measures every request and makes
//!   sure no error leaves without a JSON body.
//! - [`metrics`]: HTTP metrics and the `/metrics` renderer.
//! - [`openapi`]: the bearer scheme and rendering both services' OpenAPI documents share.
//! - [`backup`]: online backups of an embedded store, checksums, retention, restore.
//! - [`checkpoint`]: background WAL checkpoints off the writer's commits.
//! - [`memory`]: giving freed heap back to the OS after a burst.
//! - [`telemetry`]: `tracing` setup (`RUST_LOG`, `--log-format json`), shutdown signals.

/// Products, barcodes, scheduled prices; defined in `colmena-wire` (`shared/wire/src/catalog.rs`).
pub use colmena_wire::catalog;
/// RFC 3339 UTC timestamps; defined in `colmena-wire` (`shared/wire/src/clock.rs`).
pub use colmena_wire::clock;
/// Validated identifiers and quantities; defined in `colmena-wire` (`shared/wire/src/ids.rs`).
pub use colmena_wire::ids;
/// Head-office sales reports; defined in `colmena-wire` (`shared/wire/src/reports.rs`).
pub use colmena_wire::reports;
pub use colmena_wire::till;
/// Transfers between branches; defined in `colmena-wire` (`shared/wire/src/transfers.rs`).
pub use colmena_wire::transfers;
/// Users, roles and the branch login; defined in `colmena-wire` (`shared/wire/src/users.rs`).
pub use colmena_wire::users;
/// The JSON bodies of the protocol; defined in `colmena-wire` (`shared/wire/src/wire.rs`).
pub use colmena_wire::wire;

pub mod backup;
pub mod checkpoint;
pub mod error;
pub mod http;
pub mod memory;
pub mod metrics;
pub mod openapi;
pub mod telemetry;
pub mod tls;
