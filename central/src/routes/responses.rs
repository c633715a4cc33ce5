//! Error responses several operations share, for their `#[utoipa::path]` attributes
//! (`responses((status = 200, ..), AdminErrors)`), so one description is written once.
//! Every body is the error body of docs/protocol.md, "Errors". Documentation only: the
//! handlers answer with [`crate::error::CentralError`].
use colmena_shared::error::ErrorBody;
use utoipa::IntoResponses;

// Shared by both services.
pub use colmena_shared::openapi::{BackupIdErrors, BodyErrors};

/// 401, 403 and 503 of an admin operation (every route but `/sync/*` and the public ones).
#[derive(IntoResponses)]
pub enum AdminErrors {
    #[response(
        status = 401,
        description = "`unauthorized`: missing or wrong bearer token",
        headers(("WWW-Authenticate" = String, description = "`Bearer`"))
    )]
    Unauthorized(ErrorBody),
    #[response(status = 403, description = "`forbidden`: a branch token used outside `/sync/*`")]
    Forbidden(ErrorBody),
    #[response(
        status = 503,
        description = "`storage_unavailable`: the store cannot read or persist right now; nothing was changed",
        headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))
    )]
    StorageUnavailable(ErrorBody),
}

/// 401 and 503 of a `/sync/*` operation (its 403 says which branch rule was broken).
#[derive(IntoResponses)]
pub enum SyncErrors {
    #[response(
        status = 401,
        description = "`unauthorized`: missing or wrong bearer token",
        headers(("WWW-Authenticate" = String, description = "`Bearer`"))
    )]
    Unauthorized(ErrorBody),
    #[response(
        status = 503,
        description = "`storage_unavailable`: the store cannot read or persist right now; nothing was changed",
        headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))
    )]
    StorageUnavailable(ErrorBody),
}

/// A backup endpoint on PostgreSQL, where backups are the database server's business.
#[derive(IntoResponses)]
#[response(
    status = 501,
    description = "`not_implemented`: central runs on PostgreSQL (use pg_dump)"
)]
pub struct NotOnPostgres(pub ErrorBody);
