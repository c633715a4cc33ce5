//! The branch's HTTP boundary errors. Each variant maps to exactly one contract code; the
//! match in `ResponseError` has no catch-all arm, so a new variant forces a decision.
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use colmena_shared::error::{ApiError, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum BranchError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("missing or wrong bearer token")]
    Unauthorized,
    #[error("{0}: no such product")]
    UnknownProduct(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{product_id}: {available} in stock, {requested} requested")]
    InsufficientStock {
        product_id: String,
        available: i64,
        requested: i64,
    },
    #[error("a request with this Idempotency-Key is being processed")]
    IdempotencyKeyInFlight,
    #[error("this Idempotency-Key was used with a different body")]
    IdempotencyKeyReused,
    #[error("the local store cannot persist right now: {0}")]
    StorageUnavailable(String),
    #[error("{0}")]
    NotImplemented(String),
}

impl BranchError {
    fn to_api(&self) -> ApiError {
        let code = match self {
            BranchError::InvalidRequest(_) => ErrorCode::InvalidRequest,
            BranchError::Unauthorized => ErrorCode::Unauthorized,
            BranchError::UnknownProduct(_) => ErrorCode::UnknownProduct,
            BranchError::NotFound(_) => ErrorCode::NotFound,
            BranchError::InsufficientStock { .. } => ErrorCode::InsufficientStock,
            BranchError::IdempotencyKeyInFlight => ErrorCode::IdempotencyKeyInFlight,
            BranchError::IdempotencyKeyReused => ErrorCode::IdempotencyKeyReused,
            BranchError::StorageUnavailable(_) => ErrorCode::StorageUnavailable,
            BranchError::NotImplemented(_) => ErrorCode::NotImplemented,
        };
        let api = ApiError::new(code, self.to_string());
        match self {
            BranchError::StorageUnavailable(_) => api.with_retry_after(1),
            _ => api,
        }
    }
}

impl ResponseError for BranchError {
    fn status_code(&self) -> StatusCode {
        self.to_api().code.status()
    }
    fn error_response(&self) -> HttpResponse {
        self.to_api().error_response()
    }
}

impl From<crate::storage::StoreError> for BranchError {
    fn from(e: crate::storage::StoreError) -> Self {
        BranchError::StorageUnavailable(e.to_string())
    }
}
