//! Central's errors at the HTTP boundary, mapped onto the error body and codes of
//! docs/protocol.md, "Errors".
use crate::store::StoreError;
use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use colmena_shared::error::{ApiError, ErrorCode};

/// Seconds a client is asked to wait after a 503.
const RETRY_AFTER_SECS: u64 = 1;

/// What a client is told when the store cannot read or persist; the cause goes to the log.
const STORAGE_UNAVAILABLE_MESSAGE: &str = "storage is unavailable; nothing was changed, retry later";

#[derive(Debug, thiserror::Error)]
pub enum CentralError {
    /// Malformed or out-of-range input (400).
    #[error("{0}")]
    InvalidRequest(String),
    /// Missing or wrong bearer token (401).
    #[error("missing or wrong bearer token")]
    Unauthorized,
    /// A valid token used outside its scope (403).
    #[error("{0}")]
    Forbidden(String),
    /// Central's catalog has no such product (404).
    #[error("unknown product {0}")]
    UnknownProduct(String),
    /// No such resource (404).
    #[error("{0}")]
    NotFound(String),
    /// A push that does not continue the branch's sequence (409).
    #[error("the push does not continue the branch's sequence: expected seq {}", applied_through + 1)]
    SequenceGap { applied_through: u64 },
    /// A push whose event at an already-applied seq is not the event applied there (409).
    #[error("event {seq} differs from the event central applied under that seq (applied through {applied_through})")]
    DuplicateMismatch { seq: u64, applied_through: u64 },
    /// A transfer step that cannot be taken: a cancel after the dispatch, or (with
    /// `applied_through`) a pushed step its transfer's state or branch does not allow (409).
    #[error("{message}")]
    TransferConflict {
        message: String,
        applied_through: Option<u64>,
    },
    /// A pushed event of a kind this central cannot apply (422); the branch keeps it and
    /// pushes it again once central is upgraded.
    #[error("event {seq} is of a kind this central does not apply ({kind}); upgrade central before its branches")]
    UnsupportedEvent { seq: u64, kind: &'static str },
    /// `If-Match` names another version than the stored one, or the product does not exist
    /// (412); the message says the current version.
    #[error("{0}")]
    VersionMismatch(String),
    /// Another product holds the barcode (409).
    #[error("barcode {barcode} is already held by product {holder}")]
    BarcodeTaken { barcode: String, holder: String },
    /// The same `Idempotency-Key` with a different request (422).
    #[error("this Idempotency-Key was used for a different request")]
    IdempotencyKeyReused,
    /// Not offered by this deployment, with what to use instead (501).
    #[error("{0}")]
    NotImplemented(String),
    /// The store could not read or persist; nothing was changed (503).
    #[error(transparent)]
    Storage(#[from] StoreError),
}

impl CentralError {
    /// The one code this error is answered with (no catch-all arm: a new variant forces a
    /// decision).
    pub fn code(&self) -> ErrorCode {
        match self {
            CentralError::InvalidRequest(_) => ErrorCode::InvalidRequest,
            CentralError::Unauthorized => ErrorCode::Unauthorized,
            CentralError::Forbidden(_) => ErrorCode::Forbidden,
            CentralError::UnknownProduct(_) => ErrorCode::UnknownProduct,
            CentralError::NotFound(_) => ErrorCode::NotFound,
            CentralError::SequenceGap { .. } => ErrorCode::SequenceGap,
            CentralError::DuplicateMismatch { .. } => ErrorCode::DuplicateMismatch,
            CentralError::TransferConflict { .. } => ErrorCode::TransferConflict,
            CentralError::UnsupportedEvent { .. } => ErrorCode::UnsupportedEvent,
            CentralError::VersionMismatch(_) => ErrorCode::VersionMismatch,
            CentralError::BarcodeTaken { .. } => ErrorCode::BarcodeTaken,
            CentralError::IdempotencyKeyReused => ErrorCode::IdempotencyKeyReused,
            CentralError::NotImplemented(_) => ErrorCode::NotImplemented,
            CentralError::Storage(_) => ErrorCode::StorageUnavailable,
        }
    }

    fn api(&self) -> ApiError {
        match self {
            CentralError::SequenceGap { applied_through } | CentralError::DuplicateMismatch { applied_through, .. } => {
                let mut e = ApiError::new(self.code(), self.to_string());
                e.applied_through = Some(*applied_through);
                e
            }
            CentralError::TransferConflict {
                applied_through: Some(at),
                ..
            } => {
                let mut e = ApiError::new(self.code(), self.to_string());
                e.applied_through = Some(*at);
                e
            }
            // The store's error text is for the log only (see `error_response`).
            CentralError::Storage(_) => {
                ApiError::new(self.code(), STORAGE_UNAVAILABLE_MESSAGE).with_retry_after(RETRY_AFTER_SECS)
            }
            _ => ApiError::new(self.code(), self.to_string()),
        }
    }
}

impl ResponseError for CentralError {
    fn status_code(&self) -> StatusCode {
        self.code().status()
    }

    fn error_response(&self) -> HttpResponse {
        if let CentralError::Storage(e) = self {
            // The client gets a generic message; the operator gets the cause.
            tracing::error!(error = %e, "storage unavailable");
        }
        let mut res = self.api().error_response();
        if let CentralError::Unauthorized = self {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_its_documented_status() {
        let cases = [
            (CentralError::InvalidRequest("x".into()), 400, "invalid_request"),
            (CentralError::Unauthorized, 401, "unauthorized"),
            (CentralError::Forbidden("x".into()), 403, "forbidden"),
            (CentralError::UnknownProduct("P".into()), 404, "unknown_product"),
            (CentralError::NotFound("x".into()), 404, "not_found"),
            (CentralError::SequenceGap { applied_through: 4 }, 409, "sequence_gap"),
            (
                CentralError::DuplicateMismatch {
                    seq: 3,
                    applied_through: 4,
                },
                409,
                "duplicate_mismatch",
            ),
            (CentralError::VersionMismatch("x".into()), 412, "version_mismatch"),
            (
                CentralError::TransferConflict {
                    message: "x".into(),
                    applied_through: Some(2),
                },
                409,
                "transfer_conflict",
            ),
            (
                CentralError::BarcodeTaken {
                    barcode: "12345678".into(),
                    holder: "P1".into(),
                },
                409,
                "barcode_taken",
            ),
            (CentralError::IdempotencyKeyReused, 422, "idempotency_key_reused"),
            (CentralError::NotImplemented("x".into()), 501, "not_implemented"),
            (CentralError::Storage(StoreError::Closed), 503, "storage_unavailable"),
        ];
        for (e, status, code) in cases {
            assert_eq!(e.status_code().as_u16(), status, "{e:?}");
            assert_eq!(e.api().code.as_str(), code);
            assert_eq!(e.code().as_str(), code);
        }
        let gap = CentralError::SequenceGap { applied_through: 4 }.api();
        assert_eq!(gap.applied_through, Some(4));
        assert!(CentralError::Storage(StoreError::Closed).api().retry_after.is_some());
    }
}
