//! Transfers between branches, at the branch (docs/protocol.md, "Transfers"): the view of
//! each transfer this branch sends or receives, and its two steps — dispatch (the sending
//! branch) and receipt (the receiving branch). Nothing here touches SQLite.
//!
//! Central creates and cancels transfers and sends each one whole to both its branches by
//! pull; the storage writer merges that into the local row in the pull's own transaction,
//! never moving a row back ([`colmena_shared::transfers::TransferStatus::rank`]). Each step
//! taken here is an event through the outbox, durable before its 200, through a writer
//! command that checks the ordered rule (still `requested` / still `in_transit`) in its own
//! transaction ([`crate::storage::apply_transfers`]).
//!
//! Invariants:
//! - Memory ([`Transfers`]) holds the rows as they are durable: loaded at start, then told
//!   by the syncer after each fsync, so a read right after a 200 sees that step and a read
//!   never shows a step that is not durable.
//! - A dispatch reserves its units in memory like a sale (all or nothing) before it is
//!   queued; a receipt's units reach memory only once durable.
//! - A step already taken answers 200 with the transfer as it stands and writes nothing;
//!   steps are taken one at a time per branch ([`Transfers::step`]), so a repeated
//!   dispatch waits for the first instead of reserving the stock a second time.
use crate::app::AppState;
use crate::error::BranchError;
use crate::inventory::ReserveError;
use crate::permissions::Caller;
use crate::storage::{DispatchTransfer, ReceiveTransfer};
use colmena_shared::transfers::{
    check_receipt_request, check_transfer_id, plan_receipt, ReceiptError, ReceiveRequest, Transfer, TransferEventLine,
    TransferList, TransferStatus,
};
use colmena_shared::wire::{Change, ChangeKind};
use std::collections::BTreeMap;
use std::sync::RwLock;

/// This branch's transfers, by id, as they are durable.
pub struct Transfers {
    rows: RwLock<BTreeMap<String, Transfer>>,
    /// Held by a step from its first read to its answer (never by a read): transfer steps
    /// are rare, and one at a time a repeat finds the first one's outcome.
    step: tokio::sync::Mutex<()>,
}

impl Transfers {
    pub fn new(loaded: Vec<Transfer>) -> Transfers {
        Transfers {
            rows: RwLock::new(loaded.into_iter().map(|t| (t.transfer_id.clone(), t)).collect()),
            step: tokio::sync::Mutex::new(()),
        }
    }

    /// A durable row: memory takes it as it now is.
    pub fn put(&self, t: Transfer) {
        let mut rows = self.rows.write().unwrap_or_else(|e| e.into_inner());
        rows.insert(t.transfer_id.clone(), t);
    }

    pub fn get(&self, transfer_id: &str) -> Option<Transfer> {
        let rows = self.rows.read().unwrap_or_else(|e| e.into_inner());
        rows.get(transfer_id).cloned()
    }

    /// Every transfer with `status` (all when `None`), by id.
    pub fn list(&self, status: Option<TransferStatus>) -> Vec<Transfer> {
        let rows = self.rows.read().unwrap_or_else(|e| e.into_inner());
        rows.values()
            .filter(|t| status.is_none_or(|s| t.status == s))
            .cloned()
            .collect()
    }
}

/// The transfer a pulled `transfer` change carries, if this branch should keep it: it must
/// validate and be sent or received by this branch. Anything else is skipped with a warning
/// and never fails the pull (the other changes of the page must still apply).
pub fn pulled<'a>(branch_id: &str, c: &'a Change) -> Option<&'a Transfer> {
    let t = match (c.kind, &c.transfer) {
        (ChangeKind::Transfer, Some(t)) => t,
        _ => {
            tracing::warn!(cursor = c.cursor, "a transfer change without its transfer; skipped");
            return None;
        }
    };
    if let Err(e) = t.validate() {
        tracing::warn!(cursor = c.cursor, transfer_id = %t.transfer_id, error = %e, "an invalid transfer pulled; skipped");
        return None;
    }
    if t.from_branch != branch_id && t.to_branch != branch_id {
        tracing::warn!(cursor = c.cursor, transfer_id = %t.transfer_id, "a transfer between other branches pulled; skipped");
        return None;
    }
    Some(t)
}

/// Why a branch cannot take a step that belongs to the other side.
pub fn wrong_side(t: &Transfer) -> String {
    format!(
        "{} receives {}; {} dispatches it",
        t.to_branch, t.transfer_id, t.from_branch
    )
}

/// Why a receipt is refused before the dispatch is known here.
pub fn not_dispatched(t: &Transfer) -> String {
    match t.status {
        TransferStatus::Cancelled => format!(
            "{} was cancelled at central; there is nothing to receive",
            t.transfer_id
        ),
        _ => format!(
            "{} is not dispatched yet as far as this branch knows (status {})",
            t.transfer_id,
            t.status.as_str()
        ),
    }
}

/// Whether a received transfer was received with exactly these lines.
pub fn same_receipt(t: &Transfer, lines: &[TransferEventLine]) -> bool {
    t.lines.len() == lines.len()
        && t.lines
            .iter()
            .zip(lines)
            .all(|(d, r)| d.product_id == r.product_id.as_str() && d.received == Some(r.quantity) && d.lost == r.lost)
}

fn not_found(transfer_id: &str) -> BranchError {
    BranchError::NotFound(format!("no transfer {transfer_id} at this branch"))
}

/// `GET /transfers`: `status` is one of the four statuses, or absent.
pub fn list(app: &AppState, status: Option<&str>) -> Result<TransferList, BranchError> {
    let status = match status {
        None => None,
        Some(s) => Some(TransferStatus::parse(s).ok_or_else(|| {
            BranchError::InvalidRequest("status must be requested, cancelled, in_transit or received".into())
        })?),
    };
    Ok(TransferList {
        transfers: app.transfers.list(status),
    })
}

/// `GET /transfers/{id}`.
pub fn get(app: &AppState, transfer_id: &str) -> Result<Transfer, BranchError> {
    app.transfers.get(transfer_id).ok_or_else(|| not_found(transfer_id))
}

/// The transfer `transfer_id` if this branch knows it and takes `step` on it.
fn known(app: &AppState, transfer_id: &str, sender: bool) -> Result<Transfer, BranchError> {
    if check_transfer_id(transfer_id).is_err() {
        return Err(not_found(transfer_id));
    }
    let t = app.transfers.get(transfer_id).ok_or_else(|| not_found(transfer_id))?;
    let ours = if sender { &t.from_branch } else { &t.to_branch };
    if ours != app.branch_id.as_str() {
        return Err(BranchError::TransferConflict(wrong_side(&t)));
    }
    Ok(t)
}

/// `POST /transfers/{id}/dispatch` at the sending branch: every line's units leave the stock.
pub async fn dispatch(app: &AppState, transfer_id: &str, caller: Option<&Caller>) -> Result<Transfer, BranchError> {
    let _one_at_a_time = app.transfers.step.lock().await;
    let t = known(app, transfer_id, true)?;
    match t.status {
        TransferStatus::InTransit | TransferStatus::Received => return Ok(t),
        TransferStatus::Cancelled => {
            return Err(BranchError::TransferConflict(format!(
                "{transfer_id} was cancelled at central; it cannot be dispatched"
            )))
        }
        TransferStatus::Requested => {}
    }
    let lines: Vec<(String, i64)> = t.lines.iter().map(|l| (l.product_id.clone(), l.quantity)).collect();
    // Active or not (a product no longer sold may still be moved), all or nothing; a
    // product this branch has never held has nothing left, as a sale would be told.
    let reserved = app.inventory.reserve(&lines).map_err(|e| match e {
        ReserveError::UnknownProduct(p) => {
            let requested = lines.iter().find(|(id, _)| *id == p).map_or(0, |(_, q)| *q);
            BranchError::InsufficientStock {
                product_id: p,
                available: 0,
                requested,
            }
        }
        other => crate::sales::reserve_error(other),
    })?;
    let step = app
        .writer
        .submit_from_handler(DispatchTransfer {
            transfer_id: transfer_id.to_string(),
            user_id: caller.and_then(Caller::user_id).cloned(),
            reserved,
        })
        .await?
        .map_err(BranchError::from)?;
    if step.seq.is_some() {
        app.metrics.transfer_steps.with_label_values(&["dispatched"]).inc();
    }
    Ok(step.transfer)
}

/// `POST /transfers/{id}/receive` at the receiving branch, once the dispatch is known here.
pub async fn receive(
    app: &AppState,
    transfer_id: &str,
    req: ReceiveRequest,
    caller: Option<&Caller>,
) -> Result<Transfer, BranchError> {
    // A malformed receipt is a 400 whatever the transfer's state.
    if let Some(lines) = &req.lines {
        check_receipt_request(lines).map_err(BranchError::InvalidRequest)?;
    }
    let _one_at_a_time = app.transfers.step.lock().await;
    let t = known(app, transfer_id, false)?;
    if matches!(t.status, TransferStatus::Requested | TransferStatus::Cancelled) {
        return Err(BranchError::TransferConflict(not_dispatched(&t)));
    }
    let lines = plan_receipt(&t.lines, req.lines.as_deref()).map_err(|e| match e {
        ReceiptError::Invalid(m) => BranchError::InvalidRequest(m),
        ReceiptError::Exceeds(m) => BranchError::ReceiptExceedsDispatch(m),
    })?;
    if t.status == TransferStatus::Received {
        if same_receipt(&t, &lines) {
            return Ok(t);
        }
        return Err(BranchError::TransferConflict(format!(
            "{transfer_id} was already received with other quantities"
        )));
    }
    let lost: i64 = lines.iter().map(|l| l.lost.unwrap_or(0)).sum();
    let step = app
        .writer
        .submit_from_handler(ReceiveTransfer {
            transfer_id: transfer_id.to_string(),
            lines,
            user_id: caller.and_then(Caller::user_id).cloned(),
        })
        .await?
        .map_err(BranchError::from)?;
    if step.seq.is_some() {
        app.metrics.transfer_steps.with_label_values(&["received"]).inc();
        app.metrics.transfer_units_lost.inc_by(lost.max(0) as u64);
    }
    Ok(step.transfer)
}
