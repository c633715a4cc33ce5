//! Adjusting and counting stock (docs/protocol.md, "Branch endpoints" and "Catalog at the
//! branch"): validation, `Idempotency-Key`, the durable commit.
//!
//! Invariants:
//! - A decrease is reserved in memory before it is queued (stock never goes negative by an
//!   adjustment); an increase reaches memory only once durable.
//! - A count's difference is computed by the writer at the count's commit
//!   ([`crate::storage::apply_stock`]), against every event committed before it; memory then
//!   adds that difference, which keeps memory = committed − reservations in flight.
//! - Both take an `Idempotency-Key` with the semantics of `/sell`: the first 201 is recorded
//!   in the event's own transaction and replayed byte for byte.
use crate::app::AppState;
use crate::error::BranchError;
use crate::permissions::Caller;
use crate::sales::reserve_error;
use crate::storage::{RecordAdjustment, RecordCount};
use crate::till::{begin, Answer, Begun};
use colmena_shared::catalog::{StockCountRequest, StockCountResponse, MAX_COUNTED};
use colmena_shared::ids::{check_delta, check_text};
use colmena_shared::wire::{AdjustmentRequest, AdjustmentResponse};
use serde_json::json;

/// A stock adjustment by `caller`; a user's adjustment records their `user_id`.
pub async fn adjust(
    app: &AppState,
    req: AdjustmentRequest,
    caller: Option<&Caller>,
    key: Option<&str>,
) -> Result<Answer<AdjustmentResponse>, BranchError> {
    let delta = check_delta("quantity_delta", req.quantity_delta).map_err(BranchError::InvalidRequest)?;
    let reason = match req.reason {
        Some(r) => {
            check_text("reason", &r, 1, 64).map_err(BranchError::InvalidRequest)?;
            r
        }
        None => "unspecified".to_string(),
    };
    let user_id = caller.and_then(Caller::user_id).cloned();
    // The request as understood: a retry that spells the same adjustment otherwise (no
    // reason vs "unspecified") is the same adjustment.
    let fp = json!({"op": "adjustment", "product_id": req.product_id.as_str(), "delta": delta,
        "reason": reason, "by": user_id.as_ref().map(|u| u.as_str())});
    let guard = match begin(app, key, fp.to_string())? {
        Begun::Replay(body) => return Ok(Answer::Replayed(body)),
        Begun::Fresh(g) => g,
    };
    if !app.inventory.contains(req.product_id.as_str()) {
        return Err(BranchError::UnknownProduct(req.product_id.to_string()));
    }
    let reserved = if delta < 0 {
        let mut r = app
            .inventory
            .reserve(&[(req.product_id.to_string(), -delta)])
            .map_err(reserve_error)?;
        r.pop()
    } else {
        None
    };
    let recorded = app
        .writer
        .submit(RecordAdjustment {
            product_id: req.product_id,
            delta,
            reason,
            user_id,
            reserved,
            remember: guard,
        })
        .await?;
    Ok(Answer::New(AdjustmentResponse {
        seq: recorded.seq,
        stock: recorded.stock,
    }))
}

/// A stock count by `caller`: the stock becomes `counted`.
pub async fn count(
    app: &AppState,
    req: StockCountRequest,
    caller: Option<&Caller>,
    key: Option<&str>,
) -> Result<Answer<StockCountResponse>, BranchError> {
    if !(0..=MAX_COUNTED).contains(&req.counted) {
        return Err(BranchError::InvalidRequest(format!(
            "counted must be 0-{MAX_COUNTED}, got {}",
            req.counted
        )));
    }
    let user_id = caller.and_then(Caller::user_id).cloned();
    let fp = json!({"op": "count", "product_id": req.product_id.as_str(), "counted": req.counted,
        "by": user_id.as_ref().map(|u| u.as_str())});
    let guard = match begin(app, key, fp.to_string())? {
        Begun::Replay(body) => return Ok(Answer::Replayed(body)),
        Begun::Fresh(g) => g,
    };
    if !app.inventory.contains(req.product_id.as_str()) {
        return Err(BranchError::UnknownProduct(req.product_id.to_string()));
    }
    let counted = req.counted;
    let recorded = app
        .writer
        .submit(RecordCount {
            product_id: req.product_id,
            counted,
            user_id,
            remember: guard,
        })
        .await?;
    Ok(Answer::New(StockCountResponse {
        seq: recorded.seq,
        stock: counted,
        delta: recorded.delta,
    }))
}
