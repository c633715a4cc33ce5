//! The error body and codes every colmena service answers with (see docs/protocol.md,
//! "Errors").
//!
//! This module owns the JSON shape `{"error":{"code","message"}}` and the code → status
//! table, so the two services and their clients cannot drift apart. Invariant: a code's
//! status never depends on who sends it. Turning an error into an HTTP response (headers,
//! `Retry-After`) is server work and lives in `colmena_shared::error::ApiError`.
use http::StatusCode;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// A pushed event at an applied seq is not the event applied there.
    DuplicateMismatch,
    PayloadTooLarge,
    UnsupportedMediaType,
    IdempotencyKeyReused,
    NotImplemented,
    StorageUnavailable,
    Unavailable,
    InvalidCredentials,
    TooManyAttempts,
    /// The payments do not settle the sale's total (400).
    PaymentMismatch,
    ShiftAlreadyOpen,
    ShiftNotOpen,
    /// The shift was closed with another count.
    ShiftClosed,
    UnknownSale,
    ReturnExceedsSale,
    ReturnWindowExpired,
    /// A pushed event of a kind this central does not know: deploy central first.
    UnsupportedEvent,
    /// `/sell` names a product central marked inactive (409).
    ProductInactive,
    /// `If-Match` names another version than the one stored (412).
    VersionMismatch,
    /// Another product already has this barcode (409).
    BarcodeTaken,
    /// A transfer step that its transfer's state or this branch cannot take: cancel after a
    /// dispatch, dispatch at the receiving branch, receive before the dispatch is known… (409).
    TransferConflict,
    /// A receipt names more units than were dispatched, or a product the transfer does not
    /// carry (409).
    ReceiptExceedsDispatch,
}

impl ErrorCode {
    /// The HTTP status this code is always sent with.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidRequest | ErrorCode::PaymentMismatch => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized | ErrorCode::InvalidCredentials => StatusCode::UNAUTHORIZED,
            ErrorCode::TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::UnknownProduct | ErrorCode::NotFound | ErrorCode::UnknownSale => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::InsufficientStock
            | ErrorCode::IdempotencyKeyInFlight
            | ErrorCode::SequenceGap
            | ErrorCode::DuplicateMismatch
            | ErrorCode::ShiftAlreadyOpen
            | ErrorCode::ShiftNotOpen
            | ErrorCode::ShiftClosed
            | ErrorCode::ReturnExceedsSale
            | ErrorCode::ReturnWindowExpired
            | ErrorCode::ProductInactive
            | ErrorCode::BarcodeTaken
            | ErrorCode::TransferConflict
            | ErrorCode::ReceiptExceedsDispatch => StatusCode::CONFLICT,
            ErrorCode::VersionMismatch => StatusCode::PRECONDITION_FAILED,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::IdempotencyKeyReused | ErrorCode::UnsupportedEvent => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::NotImplemented => StatusCode::NOT_IMPLEMENTED,
            ErrorCode::StorageUnavailable | ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The code as it appears in the body (what serde writes).
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
            ErrorCode::DuplicateMismatch => "duplicate_mismatch",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::IdempotencyKeyReused => "idempotency_key_reused",
            ErrorCode::NotImplemented => "not_implemented",
            ErrorCode::StorageUnavailable => "storage_unavailable",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::InvalidCredentials => "invalid_credentials",
            ErrorCode::TooManyAttempts => "too_many_attempts",
            ErrorCode::PaymentMismatch => "payment_mismatch",
            ErrorCode::ShiftAlreadyOpen => "shift_already_open",
            ErrorCode::ShiftNotOpen => "shift_not_open",
            ErrorCode::ShiftClosed => "shift_closed",
            ErrorCode::UnknownSale => "unknown_sale",
            ErrorCode::ReturnExceedsSale => "return_exceeds_sale",
            ErrorCode::ReturnWindowExpired => "return_window_expired",
            ErrorCode::UnsupportedEvent => "unsupported_event",
            ErrorCode::ProductInactive => "product_inactive",
            ErrorCode::VersionMismatch => "version_mismatch",
            ErrorCode::BarcodeTaken => "barcode_taken",
            ErrorCode::TransferConflict => "transfer_conflict",
            ErrorCode::ReceiptExceedsDispatch => "receipt_exceeds_dispatch",
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

/// `error` of the error body. Public so that the OpenAPI documents describe the very type the
/// services serialize.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// For people: what exactly was wrong (not stable, do not parse).
    #[schema(example = "ARROZ-1KG: 3 in stock, 5 requested")]
    pub message: String,
}

/// Every error response of both services.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"error": {"code": "insufficient_stock", "message": "ARROZ-1KG: 3 in stock, 5 requested"}}))]
pub struct ErrorBody {
    pub error: ErrorDetail,
    /// Only with `sequence_gap`: the highest seq central has applied for the branch.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0)]
    pub applied_through: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn a_client_reads_an_error_body_back() {
        let b: ErrorBody =
            serde_json::from_str(r#"{"error":{"code":"sequence_gap","message":"expected 43"},"applied_through":42}"#)
                .unwrap();
        assert_eq!(b.error.code, ErrorCode::SequenceGap);
        assert_eq!(b.applied_through, Some(42));
        let b: ErrorBody = serde_json::from_str(r#"{"error":{"code":"not_found","message":"x"}}"#).unwrap();
        assert_eq!(b.applied_through, None);
        assert_eq!(b.error.code.status().as_u16(), 404);
    }
}
