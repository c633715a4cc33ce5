//! The branch's errors at its HTTP boundary, mapped onto the error body and codes of
//! docs/protocol.md, "Errors".
//!
//! Each variant has exactly one [`ErrorCode`] ([`BranchError::code`]: no catch-all arm, so a
//! new variant forces a decision); the response and the metrics labels both come from it.
//! Store and OS error text never reaches a client: [`BranchError::StorageUnavailable`]
//! carries it for the log only, and the client gets a generic message.
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use colmena_shared::error::{ApiError, ErrorCode};

/// Seconds a client is asked to wait after a 503.
const RETRY_AFTER_SECS: u64 = 1;

/// What a client is told when the store cannot read or persist; the cause goes to the log.
const STORAGE_UNAVAILABLE_MESSAGE: &str = "the local store cannot persist right now; nothing was changed; retry";

#[derive(Debug, thiserror::Error)]
pub enum BranchError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("missing or wrong bearer token")]
    Unauthorized,
    /// The caller is known but may not do this (the permission table, [`crate::permissions`]).
    #[error("{0}")]
    Forbidden(String),
    /// One message for every failed login: which part was wrong is not told.
    #[error("unknown user or wrong PIN")]
    InvalidCredentials,
    /// Seconds until one more attempt is allowed.
    #[error("too many failed logins; retry later")]
    TooManyAttempts(u64),
    #[error("{0}: no such product")]
    UnknownProduct(String),
    #[error("{0}")]
    NotFound(String),
    /// A sale line names a product central made inactive.
    #[error("{0}: the product is inactive and is no longer sold")]
    ProductInactive(String),
    #[error("{product_id}: {available} in stock, {requested} requested")]
    InsufficientStock {
        product_id: String,
        available: i64,
        requested: i64,
    },
    /// The payments do not settle the total, or a non-cash tender exceeds it.
    #[error("{0}")]
    PaymentMismatch(String),
    #[error("till {till_id} already has shift {shift_id} open")]
    ShiftAlreadyOpen { till_id: String, shift_id: String },
    #[error("shift {0} is not open")]
    ShiftNotOpen(String),
    #[error("shift {shift_id} was already closed with a count of {counted_cash_cents}")]
    ShiftClosed { shift_id: String, counted_cash_cents: i64 },
    #[error("{0}: no such sale at this branch")]
    UnknownSale(String),
    #[error("{0}")]
    ReturnExceedsSale(String),
    #[error("{0}")]
    ReturnWindowExpired(String),
    /// A transfer step this branch's side or the transfer's state here does not allow.
    #[error("{0}")]
    TransferConflict(String),
    /// A receipt of more than was dispatched, or of a product the transfer does not carry.
    #[error("{0}")]
    ReceiptExceedsDispatch(String),
    #[error("a request with this Idempotency-Key is being processed")]
    IdempotencyKeyInFlight,
    #[error("this Idempotency-Key was used with a different body")]
    IdempotencyKeyReused,
    /// The detail (store or OS error text) is for the log only, never for the client.
    #[error("the local store cannot persist right now: {0}")]
    StorageUnavailable(String),
    #[error("{0}")]
    NotImplemented(String),
}

impl BranchError {
    /// The one code this error is answered and counted with.
    pub fn code(&self) -> ErrorCode {
        match self {
            BranchError::InvalidRequest(_) => ErrorCode::InvalidRequest,
            BranchError::Unauthorized => ErrorCode::Unauthorized,
            BranchError::Forbidden(_) => ErrorCode::Forbidden,
            BranchError::InvalidCredentials => ErrorCode::InvalidCredentials,
            BranchError::TooManyAttempts(_) => ErrorCode::TooManyAttempts,
            BranchError::UnknownProduct(_) => ErrorCode::UnknownProduct,
            BranchError::NotFound(_) => ErrorCode::NotFound,
            BranchError::ProductInactive(_) => ErrorCode::ProductInactive,
            BranchError::InsufficientStock { .. } => ErrorCode::InsufficientStock,
            BranchError::PaymentMismatch(_) => ErrorCode::PaymentMismatch,
            BranchError::ShiftAlreadyOpen { .. } => ErrorCode::ShiftAlreadyOpen,
            BranchError::ShiftNotOpen(_) => ErrorCode::ShiftNotOpen,
            BranchError::ShiftClosed { .. } => ErrorCode::ShiftClosed,
            BranchError::UnknownSale(_) => ErrorCode::UnknownSale,
            BranchError::ReturnExceedsSale(_) => ErrorCode::ReturnExceedsSale,
            BranchError::ReturnWindowExpired(_) => ErrorCode::ReturnWindowExpired,
            BranchError::TransferConflict(_) => ErrorCode::TransferConflict,
            BranchError::ReceiptExceedsDispatch(_) => ErrorCode::ReceiptExceedsDispatch,
            BranchError::IdempotencyKeyInFlight => ErrorCode::IdempotencyKeyInFlight,
            BranchError::IdempotencyKeyReused => ErrorCode::IdempotencyKeyReused,
            BranchError::StorageUnavailable(_) => ErrorCode::StorageUnavailable,
            BranchError::NotImplemented(_) => ErrorCode::NotImplemented,
        }
    }

    fn to_api(&self) -> ApiError {
        match self {
            BranchError::StorageUnavailable(_) => {
                ApiError::new(self.code(), STORAGE_UNAVAILABLE_MESSAGE).with_retry_after(RETRY_AFTER_SECS)
            }
            BranchError::TooManyAttempts(secs) => ApiError::new(self.code(), self.to_string()).with_retry_after(*secs),
            _ => ApiError::new(self.code(), self.to_string()),
        }
    }
}

impl ResponseError for BranchError {
    fn status_code(&self) -> StatusCode {
        self.code().status()
    }

    fn error_response(&self) -> HttpResponse {
        if let BranchError::StorageUnavailable(detail) = self {
            // The client gets a generic message; the operator gets the cause.
            tracing::error!(error = %detail, "storage unavailable");
        }
        self.to_api().error_response()
    }
}

impl From<crate::storage::Refusal> for BranchError {
    /// A refusal on a shift's own endpoint; a sale or return naming an unknown shift is
    /// mapped by its caller to `shift_not_open` instead.
    fn from(r: crate::storage::Refusal) -> Self {
        use crate::storage::Refusal;
        match r {
            Refusal::UnknownShift(id) => BranchError::NotFound(format!("no shift {id} at this branch")),
            Refusal::ShiftNotOpen(id) => BranchError::ShiftNotOpen(id),
            Refusal::ShiftAlreadyOpen { till_id, shift_id } => BranchError::ShiftAlreadyOpen { till_id, shift_id },
            Refusal::ShiftClosed {
                shift_id,
                counted_cash_cents,
            } => BranchError::ShiftClosed {
                shift_id,
                counted_cash_cents,
            },
            Refusal::ReturnExceedsSale {
                product_id,
                left,
                requested,
            } => BranchError::ReturnExceedsSale(format!("{product_id}: {left} left to return, {requested} requested")),
            Refusal::UnknownTransfer(id) => BranchError::NotFound(format!("no transfer {id} at this branch")),
            Refusal::TransferConflict(m) => BranchError::TransferConflict(m),
        }
    }
}

impl BranchError {
    /// A refusal of an event that only *names* a shift (a sale, a return): an unknown shift
    /// is not a missing resource there but one that is not open (409 `shift_not_open`).
    pub fn refused_on_shift(r: crate::storage::Refusal) -> Self {
        use crate::storage::Refusal;
        match r {
            Refusal::UnknownShift(id) | Refusal::ShiftNotOpen(id) => BranchError::ShiftNotOpen(id),
            other => BranchError::from(other),
        }
    }
}

impl From<crate::storage::StoreError> for BranchError {
    fn from(e: crate::storage::StoreError) -> Self {
        BranchError::StorageUnavailable(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_its_status_and_code() {
        let cases = [
            (BranchError::InvalidRequest("x".into()), 400, "invalid_request"),
            (BranchError::Unauthorized, 401, "unauthorized"),
            (BranchError::Forbidden("x".into()), 403, "forbidden"),
            (BranchError::InvalidCredentials, 401, "invalid_credentials"),
            (BranchError::TooManyAttempts(3), 429, "too_many_attempts"),
            (BranchError::UnknownProduct("P".into()), 404, "unknown_product"),
            (BranchError::NotFound("x".into()), 404, "not_found"),
            (BranchError::ProductInactive("P".into()), 409, "product_inactive"),
            (
                BranchError::InsufficientStock {
                    product_id: "P".into(),
                    available: 1,
                    requested: 2,
                },
                409,
                "insufficient_stock",
            ),
            (BranchError::PaymentMismatch("x".into()), 400, "payment_mismatch"),
            (
                BranchError::ShiftAlreadyOpen {
                    till_id: "T1".into(),
                    shift_id: "S".into(),
                },
                409,
                "shift_already_open",
            ),
            (BranchError::ShiftNotOpen("S".into()), 409, "shift_not_open"),
            (
                BranchError::ShiftClosed {
                    shift_id: "S".into(),
                    counted_cash_cents: 1,
                },
                409,
                "shift_closed",
            ),
            (BranchError::UnknownSale("x".into()), 404, "unknown_sale"),
            (BranchError::ReturnExceedsSale("x".into()), 409, "return_exceeds_sale"),
            (
                BranchError::ReturnWindowExpired("x".into()),
                409,
                "return_window_expired",
            ),
            (BranchError::TransferConflict("x".into()), 409, "transfer_conflict"),
            (
                BranchError::ReceiptExceedsDispatch("x".into()),
                409,
                "receipt_exceeds_dispatch",
            ),
            (BranchError::IdempotencyKeyInFlight, 409, "idempotency_key_in_flight"),
            (BranchError::IdempotencyKeyReused, 422, "idempotency_key_reused"),
            (BranchError::StorageUnavailable("x".into()), 503, "storage_unavailable"),
            (BranchError::NotImplemented("x".into()), 501, "not_implemented"),
        ];
        for (e, status, code) in cases {
            assert_eq!(e.status_code().as_u16(), status, "{e:?}");
            assert_eq!(e.code().as_str(), code, "{e:?}");
        }
    }

    #[test]
    fn a_sale_or_return_naming_an_unknown_shift_is_told_the_shift_is_not_open() {
        use crate::storage::Refusal;
        let on_sale = BranchError::refused_on_shift(Refusal::UnknownShift("S".into()));
        assert_eq!(on_sale.code(), ErrorCode::ShiftNotOpen);
        // On the shift's own endpoints an unknown shift is a missing resource.
        assert_eq!(
            BranchError::from(Refusal::UnknownShift("S".into())).code(),
            ErrorCode::NotFound
        );
        let exceeds = Refusal::ReturnExceedsSale {
            product_id: "P1".into(),
            left: 0,
            requested: 1,
        };
        assert_eq!(
            BranchError::refused_on_shift(exceeds).code(),
            ErrorCode::ReturnExceedsSale
        );
    }

    #[test]
    fn storage_detail_stays_out_of_the_response() {
        let e = BranchError::StorageUnavailable("disk I/O error at /var/lib/colmena/branch.db".into());
        let api = e.to_api();
        assert_eq!(api.message, STORAGE_UNAVAILABLE_MESSAGE);
        assert!(!api.body().contains("/var/lib"), "{}", api.body());
        assert_eq!(api.retry_after, Some(RETRY_AFTER_SECS));
        // The log still has it.
        assert!(e.to_string().contains("disk I/O error"));
    }
}
