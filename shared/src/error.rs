//! The error body and codes of contract §1.
//!
//! Every service has its own `thiserror` enum at its HTTP boundary and maps each variant
//! (exhaustively) onto an [`ApiError`]; this module owns the JSON shape and the
//! code → status table so the two services cannot drift apart.
use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidRequest,
    Unauthorized,
    Forbidden,
    UnknownProduct,
    NotFound,
    MethodNotAllowed,
    InsufficientStock,
    IdempotencyKeyInFlight,
    SequenceGap,
    PayloadTooLarge,
    UnsupportedMediaType,
    IdempotencyKeyReused,
    NotImplemented,
    StorageUnavailable,
    Unavailable,
}

impl ErrorCode {
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidRequest => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::UnknownProduct | ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::InsufficientStock | ErrorCode::IdempotencyKeyInFlight | ErrorCode::SequenceGap => {
                StatusCode::CONFLICT
            }
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::NotImplemented => StatusCode::NOT_IMPLEMENTED,
            ErrorCode::StorageUnavailable | ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::UnknownProduct => "unknown_product",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::InsufficientStock => "insufficient_stock",
            ErrorCode::IdempotencyKeyInFlight => "idempotency_key_in_flight",
            ErrorCode::SequenceGap => "sequence_gap",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::IdempotencyKeyReused => "idempotency_key_reused",
            ErrorCode::NotImplemented => "not_implemented",
            ErrorCode::StorageUnavailable => "storage_unavailable",
            ErrorCode::Unavailable => "unavailable",
        }
    }

    /// The code a bare status (from actix itself, e.g. 405) is reported with.
    pub fn for_status(status: StatusCode) -> ErrorCode {
        match status.as_u16() {
            401 => ErrorCode::Unauthorized,
            403 => ErrorCode::Forbidden,
            404 => ErrorCode::NotFound,
            405 => ErrorCode::MethodNotAllowed,
            413 => ErrorCode::PayloadTooLarge,
            415 => ErrorCode::UnsupportedMediaType,
            501 => ErrorCode::NotImplemented,
            500..=599 => ErrorCode::Unavailable,
            _ => ErrorCode::InvalidRequest,
        }
    }
}

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

/// `error` of the §1 body. Public so that the OpenAPI documents describe the very type the
/// services serialize.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// For people: what exactly was wrong (not stable, do not parse).
    #[schema(example = "ARROZ-1KG: 3 in stock, 5 requested")]
    pub message: String,
}

/// Every error response of both services (contract §1).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"error": {"code": "insufficient_stock", "message": "ARROZ-1KG: 3 in stock, 5 requested"}}))]
pub struct ErrorBody {
    pub error: ErrorDetail,
    /// Only with `sequence_gap`: the highest seq central has applied for the branch.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0)]
    pub applied_through: Option<u64>,
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
    fn codes_serialize_like_their_names() {
        for c in [
            ErrorCode::IdempotencyKeyReused,
            ErrorCode::StorageUnavailable,
            ErrorCode::UnknownProduct,
        ] {
            assert_eq!(
                serde_json::to_value(c).unwrap(),
                serde_json::Value::String(c.as_str().into())
            );
        }
    }
}
