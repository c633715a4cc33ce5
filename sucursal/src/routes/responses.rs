//! Error responses several operations share, for their `#[utoipa::path]` attributes
//! (`responses((status = 200, ..), CommonErrors)`), so one description is written once.
//! Every body is the error body of docs/protocol.md, "Errors". Documentation only: the
//! handlers answer with [`crate::error::BranchError`].
use colmena_shared::error::ErrorBody;
use utoipa::IntoResponses;

// Shared by both services.
pub use colmena_shared::openapi::{BackupIdErrors, BodyErrors};

/// 401, 403 and 503 of an operation that reads or writes the local store.
#[derive(IntoResponses)]
pub enum CommonErrors {
    #[response(status = 401, description = "`unauthorized`: missing, wrong or expired token")]
    Unauthorized(ErrorBody),
    #[response(
        status = 403,
        description = "`forbidden`: this caller may not do this (docs/protocol.md, \"Permissions\")"
    )]
    Forbidden(ErrorBody),
    #[response(
        status = 503,
        description = "`storage_unavailable`: the local store cannot read or persist right now; nothing was changed",
        headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))
    )]
    StorageUnavailable(ErrorBody),
}

/// 401 and 503 of an inventory read.
#[derive(IntoResponses)]
pub enum ReadErrors {
    #[response(status = 401, description = "`unauthorized`: missing, wrong or expired token")]
    Unauthorized(ErrorBody),
    #[response(
        status = 503,
        description = "`storage_unavailable`: the local store cannot be read right now",
        headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))
    )]
    StorageUnavailable(ErrorBody),
}

/// The `Idempotency-Key` header every state-changing `POST` of the till and of `/stock/*`
/// takes (with the semantics of `/sell`, docs/protocol.md "Idempotency keys"), for
/// `params(...)`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // documentation only: handlers read the header with `routes::idempotency_key`
pub struct IdempotencyKey {
    /// As on `/sell`: 1-255 visible ASCII characters; a repeated key replays the first answer.
    #[param(
        rename = "Idempotency-Key",
        nullable = false,
        min_length = 1,
        max_length = 255,
        pattern = "^[!-~]{1,255}$"
    )]
    idempotency_key: Option<String>,
}
