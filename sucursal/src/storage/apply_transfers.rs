//! Dispatching and receiving transfers inside the writer's transaction (docs/protocol.md,
//! "Transfers").
//!
//! Each step first checks, against the `transfers` row of this very transaction, what only
//! the writer can check for certain — the transfer is still `requested` (dispatch) or
//! `in_transit` (receipt) here, and this branch is the side that takes the step — and
//! answers a [`Refusal`] having written nothing. A step already taken answers the row as it
//! stands with no new event, so two concurrent dispatches write exactly one event. Otherwise
//! it takes the next seq, writes the event, moves the stock and the row, all in one
//! transaction.
//!
//! Invariants:
//! - A dispatch's units were reserved in memory before it was queued; here they leave the
//!   stored stock. A receipt's units are added to the stored stock here, and reach memory
//!   only in the syncer, once durable.
//! - The row and the event move together: a restart finds a transfer `in_transit` here
//!   exactly when its `transfer_dispatched` event exists.
use super::apply::BatchCtx;
use super::commands::{DispatchTransfer, ReceiveTransfer, Refusal, TransferStep};
use super::db::{Result, StoreError};
use super::{outbox, payload, products, transfers};
use crate::inventory::Reserved;
use crate::transfers::{not_dispatched, same_receipt, wrong_side};
use colmena_shared::ids::ProductId;
use colmena_shared::transfers::{TransferEventLine, TransferStatus};
use colmena_shared::users::UserId;
use colmena_shared::wire::EventKind;
use rusqlite::Transaction;
use std::collections::BTreeMap;

/// A receipt's units that arrived, per product, for memory after the fsync.
pub(super) type Arrived = Vec<(String, i64)>;

fn write_event(
    tx: &Transaction,
    ctx: &mut BatchCtx,
    kind: EventKind,
    transfer_id: &str,
    lines: &[TransferEventLine],
    user_id: Option<&UserId>,
) -> Result<u64> {
    ctx.seq += 1;
    let body = payload::transfer_step(ctx.seq, &ctx.occurred_at, kind, transfer_id, lines, user_id)?;
    outbox::insert(tx, ctx.seq, kind.as_str(), ctx.now_ms, &body)?;
    Ok(ctx.seq)
}

pub(super) fn dispatch(
    tx: &Transaction,
    ctx: &mut BatchCtx,
    cmd: &DispatchTransfer,
    reserved: &[Reserved],
) -> Result<std::result::Result<TransferStep, Refusal>> {
    let Some(mut t) = transfers::get(tx, &cmd.transfer_id)? else {
        return Ok(Err(Refusal::UnknownTransfer(cmd.transfer_id.clone())));
    };
    if t.from_branch != ctx.branch_id {
        return Ok(Err(Refusal::TransferConflict(wrong_side(&t))));
    }
    match t.status {
        TransferStatus::InTransit | TransferStatus::Received => {
            return Ok(Ok(TransferStep { transfer: t, seq: None }));
        }
        TransferStatus::Cancelled => {
            return Ok(Err(Refusal::TransferConflict(format!(
                "{} was cancelled at central; it cannot be dispatched",
                t.transfer_id
            ))));
        }
        TransferStatus::Requested => {}
    }
    // The domain reserved the lines it read from memory; central never changes a
    // transfer's lines, but if the row here says otherwise the reservation is not this
    // dispatch's and nothing is written.
    let want: BTreeMap<&str, i64> = t.lines.iter().map(|l| (l.product_id.as_str(), l.quantity)).collect();
    let got: BTreeMap<&str, i64> = reserved.iter().map(|r| (r.product_id.as_str(), r.quantity)).collect();
    if want != got {
        return Ok(Err(Refusal::TransferConflict(format!(
            "{} changed while it was being dispatched; retry",
            t.transfer_id
        ))));
    }
    let lines = t
        .lines
        .iter()
        .map(|l| {
            Ok(TransferEventLine {
                product_id: ProductId::parse(&l.product_id).map_err(StoreError::Corrupt)?,
                quantity: l.quantity,
                lost: None,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    for l in &t.lines {
        products::add_stock_of_known(tx, &l.product_id, -l.quantity)?;
    }
    let seq = write_event(
        tx,
        ctx,
        EventKind::TransferDispatched,
        &t.transfer_id,
        &lines,
        cmd.user_id.as_ref(),
    )?;
    t.status = TransferStatus::InTransit;
    t.dispatched_at = Some(ctx.occurred_at.clone());
    t.dispatched_by = cmd.user_id.as_ref().map(|u| u.as_str().to_string());
    transfers::put(tx, &t)?;
    Ok(Ok(TransferStep {
        transfer: t,
        seq: Some(seq),
    }))
}

pub(super) fn receive(
    tx: &Transaction,
    ctx: &mut BatchCtx,
    cmd: &ReceiveTransfer,
) -> Result<std::result::Result<(TransferStep, Arrived), Refusal>> {
    let Some(mut t) = transfers::get(tx, &cmd.transfer_id)? else {
        return Ok(Err(Refusal::UnknownTransfer(cmd.transfer_id.clone())));
    };
    if t.to_branch != ctx.branch_id {
        return Ok(Err(Refusal::TransferConflict(wrong_side(&t))));
    }
    match t.status {
        TransferStatus::Requested | TransferStatus::Cancelled => {
            return Ok(Err(Refusal::TransferConflict(not_dispatched(&t))));
        }
        TransferStatus::Received => {
            return Ok(if same_receipt(&t, &cmd.lines) {
                Ok((TransferStep { transfer: t, seq: None }, Vec::new()))
            } else {
                Err(Refusal::TransferConflict(format!(
                    "{} was already received with other quantities",
                    t.transfer_id
                )))
            });
        }
        TransferStatus::InTransit => {}
    }
    // The plan was made against memory's view of the dispatched lines; it must account
    // for every unit of this row's.
    let fits = t.lines.len() == cmd.lines.len()
        && t.lines.iter().zip(&cmd.lines).all(|(d, r)| {
            d.product_id == r.product_id.as_str() && r.quantity.checked_add(r.lost.unwrap_or(0)) == Some(d.quantity)
        });
    if !fits {
        return Ok(Err(Refusal::TransferConflict(format!(
            "{} changed while it was being received; retry",
            t.transfer_id
        ))));
    }
    let mut arrived = Vec::new();
    for (d, r) in t.lines.iter_mut().zip(&cmd.lines) {
        if r.quantity > 0 {
            // A product the catalog has not brought here yet arrives as a placeholder, as
            // an allocation does.
            products::allocate(tx, &d.product_id, r.quantity)?;
            arrived.push((d.product_id.clone(), r.quantity));
        }
        d.received = Some(r.quantity);
        d.lost = Some(r.lost.unwrap_or(0));
    }
    let seq = write_event(
        tx,
        ctx,
        EventKind::TransferReceived,
        &t.transfer_id,
        &cmd.lines,
        cmd.user_id.as_ref(),
    )?;
    t.status = TransferStatus::Received;
    t.received_at = Some(ctx.occurred_at.clone());
    t.received_by = cmd.user_id.as_ref().map(|u| u.as_str().to_string());
    transfers::put(tx, &t)?;
    Ok(Ok((
        TransferStep {
            transfer: t,
            seq: Some(seq),
        },
        arrived,
    )))
}
