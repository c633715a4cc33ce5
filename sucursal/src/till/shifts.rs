//! Opening, reading and closing shifts, and cash movements on them.
use super::{begin, may_act_on, user_of, Answer, Begun};
use crate::app::AppState;
use crate::error::BranchError;
use crate::permissions::Caller;
use crate::storage::shifts::ShiftRow;
use crate::storage::{CloseShift, OpenShift, RecordCashMovement};
use colmena_shared::ids::check_text;
use colmena_shared::till::{
    check_amount, check_positive_amount, check_till_id, CashMovement, CashMovementRequest, CloseShiftRequest,
    OpenShiftRequest, Shift,
};
use serde_json::json;

fn invalid(m: String) -> BranchError {
    BranchError::InvalidRequest(m)
}

/// `POST /shifts`: opens a shift on a till for the caller.
pub async fn open(
    app: &AppState,
    req: OpenShiftRequest,
    caller: Option<&Caller>,
    key: Option<&str>,
) -> Result<Answer<Shift>, BranchError> {
    let (user, _) = user_of(caller)?;
    check_till_id("till_id", &req.till_id).map_err(invalid)?;
    check_amount("opening_float_cents", req.opening_float_cents).map_err(invalid)?;
    let fp = json!({"op": "open_shift", "till_id": req.till_id, "float": req.opening_float_cents, "by": user.as_str()});
    let guard = match begin(app, key, fp.to_string())? {
        Begun::Replay(body) => return Ok(Answer::Replayed(body)),
        Begun::Fresh(g) => g,
    };
    let shift = app
        .writer
        .submit(OpenShift {
            till_id: req.till_id,
            opening_float_cents: req.opening_float_cents,
            opened_by: Some(user),
            remember: guard,
        })
        .await??;
    app.metrics.till.open_shifts.set(app.till.open_count() as i64);
    Ok(Answer::New(shift))
}

/// A shift the caller may see or act on: 404 when there is none, 403 when it is another
/// cashier's and the caller is a cashier.
async fn visible(app: &AppState, shift_id: &str, caller: Option<&Caller>) -> Result<ShiftRow, BranchError> {
    let (user, role) = user_of(caller)?;
    let row = match app.till.get(shift_id) {
        Some(r) => r,
        None => {
            let id = shift_id.to_string();
            app.read(move |c| crate::storage::shifts::get(c, &id))
                .await?
                .ok_or_else(|| BranchError::NotFound(format!("no shift {shift_id} at this branch")))?
        }
    };
    if !may_act_on(&row, &user, role) {
        return Err(BranchError::Forbidden(format!(
            "shift {shift_id} is another cashier's; a supervisor or manager may act on it"
        )));
    }
    Ok(row)
}

/// `GET /shifts/{id}`: the shift with its running (or final) summary.
pub async fn get(app: &AppState, shift_id: &str, caller: Option<&Caller>) -> Result<Shift, BranchError> {
    Ok(visible(app, shift_id, caller).await?.to_wire())
}

/// `POST /shifts/{id}/cash-movements`.
pub async fn cash_movement(
    app: &AppState,
    shift_id: &str,
    req: CashMovementRequest,
    caller: Option<&Caller>,
    key: Option<&str>,
) -> Result<Answer<CashMovement>, BranchError> {
    check_positive_amount("amount_cents", req.amount_cents).map_err(invalid)?;
    let reason = match req.reason {
        Some(r) => {
            check_text("reason", &r, 1, 64).map_err(invalid)?;
            r
        }
        None => "unspecified".to_string(),
    };
    let row = visible(app, shift_id, caller).await?;
    if !row.open {
        return Err(BranchError::ShiftNotOpen(shift_id.to_string()));
    }
    let (user, _) = user_of(caller)?;
    let fp = json!({"op": "cash_movement", "shift_id": shift_id, "kind": req.kind, "amount": req.amount_cents,
        "reason": reason, "by": user.as_str()});
    let guard = match begin(app, key, fp.to_string())? {
        Begun::Replay(body) => return Ok(Answer::Replayed(body)),
        Begun::Fresh(g) => g,
    };
    let moved = app
        .writer
        .submit(RecordCashMovement {
            shift_id: shift_id.to_string(),
            kind: req.kind,
            amount_cents: req.amount_cents,
            reason,
            user_id: Some(user),
            remember: guard,
        })
        .await??;
    Ok(Answer::New(moved))
}

/// `POST /shifts/{id}/close`: the closed shift with its final summary. The same count again
/// answers the same closed shift; another count is 409 `shift_closed`.
pub async fn close(
    app: &AppState,
    shift_id: &str,
    req: CloseShiftRequest,
    caller: Option<&Caller>,
    key: Option<&str>,
) -> Result<Answer<Shift>, BranchError> {
    check_amount("counted_cash_cents", req.counted_cash_cents).map_err(invalid)?;
    let row = visible(app, shift_id, caller).await?;
    if !row.open {
        // Closing again with the same count is the same close: nothing new to record.
        return match row.counted_cash_cents {
            Some(c) if c == req.counted_cash_cents => Ok(Answer::New(row.to_wire())),
            other => Err(BranchError::ShiftClosed {
                shift_id: shift_id.to_string(),
                counted_cash_cents: other.unwrap_or_default(),
            }),
        };
    }
    let (user, _) = user_of(caller)?;
    let fp = json!({"op": "close_shift", "shift_id": shift_id, "counted": req.counted_cash_cents});
    let guard = match begin(app, key, fp.to_string())? {
        Begun::Replay(body) => return Ok(Answer::Replayed(body)),
        Begun::Fresh(g) => g,
    };
    let shift = app
        .writer
        .submit(CloseShift {
            shift_id: shift_id.to_string(),
            counted_cash_cents: req.counted_cash_cents,
            closed_by: Some(user),
            remember: guard,
        })
        .await??;
    let m = &app.metrics;
    m.till.open_shifts.set(app.till.open_count() as i64);
    m.till.shifts_closed.inc();
    m.till
        .shift_cash_difference
        .set(shift.summary.difference_cents.unwrap_or(0));
    Ok(Answer::New(shift))
}
