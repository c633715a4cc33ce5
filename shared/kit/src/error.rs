//! The error as an actix response: [`ApiError`].
//!
//! The body and its codes ([`ErrorBody`], [`ErrorDetail`], [`ErrorCode`]) are wire types and
//! live in `colmena-wire` (`shared/wire/src/error.rs`); they are re-exported here so that
//! services import everything error-related from one place. `ApiError` stays in this crate
//! because it implements actix's `ResponseError`, which the orphan rule only allows next to
//! one of the two types, and because `Retry-After` is a header, not part of the body.
//!
//! Every service has its own `thiserror` enum at its HTTP boundary and maps each variant
//! (exhaustively) onto an [`ApiError`].
use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use std::fmt;

pub use colmena_wire::error::{ErrorBody, ErrorCode, ErrorDetail};

/// An error as it goes on the wire.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// Only for `sequence_gap`: where central stands for the branch.
    pub applied_through: Option<u64>,
    /// Seconds, sent as `Retry-After` (503s).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            applied_through: None,
            retry_after: None,
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// The JSON body, `{"error":{"code","message"}}` (+ `applied_through` for sequence gaps).
    pub fn body(&self) -> String {
        serde_json::to_string(&ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message.clone(),
            },
            applied_through: self.applied_through,
        })
        .unwrap_or_else(|_| r#"{"error":{"code":"invalid_request","message":"error"}}"#.to_string())
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for ApiError {}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut b = HttpResponse::build(self.status_code());
        b.insert_header((header::CONTENT_TYPE, "application/json"));
        if let Some(s) = self.retry_after {
            b.insert_header((header::RETRY_AFTER, s.to_string()));
        }
        b.body(self.body())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_gap_carries_applied_through() {
        let mut e = ApiError::new(ErrorCode::SequenceGap, "expected 43");
        e.applied_through = Some(42);
        let v: serde_json::Value = serde_json::from_str(&e.body()).unwrap();
        assert_eq!(v["error"]["code"], "sequence_gap");
        assert_eq!(v["applied_through"], 42);
        assert_eq!(e.status_code(), StatusCode::CONFLICT);
    }

    #[test]
    fn the_body_bytes_are_the_wire_shape() {
        // Clients and the committed OpenAPI examples rely on these exact bytes: field order,
        // no `applied_through` unless set, no `Retry-After` in the body.
        let e = ApiError::new(ErrorCode::StorageUnavailable, "retry later").with_retry_after(1);
        assert_eq!(
            e.body(),
            r#"{"error":{"code":"storage_unavailable","message":"retry later"}}"#
        );
        let mut gap = ApiError::new(ErrorCode::SequenceGap, "expected 43");
        gap.applied_through = Some(42);
        assert_eq!(
            gap.body(),
            r#"{"error":{"code":"sequence_gap","message":"expected 43"},"applied_through":42}"#
        );
    }
}
