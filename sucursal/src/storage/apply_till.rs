//! The till's commands inside the writer's open transaction: opening and closing shifts,
//! cash movements and returns (docs/protocol.md, "The till").
//!
//! Each function first checks what only the writer can check for certain (the shift is
//! open, the till has no other open shift, the sale still has the units) and answers a
//! [`Refusal`] having written nothing; otherwise it takes the next seq, writes its event
//! with [`outbox::insert`] and its table changes, and returns what memory learns after the
//! fsync. The answer a retry with the same `Idempotency-Key` replays is stored in the same
//! transaction.
use super::apply::{BatchCtx, Remembered};
use super::commands::{CloseShift, OpenShift, RecordCashMovement, RecordReturn, Refusal};
use super::db::{Result, StoreError};
use super::shifts::{self, ShiftRow};
use super::{idempotency, outbox, products, returns};
use crate::idempotency::InFlightGuard;
use colmena_shared::ids::ProductId;
use colmena_shared::till::{CashMovement, ReturnResponse, ShiftTally};
use colmena_shared::users::UserId;
use colmena_shared::wire::{Event, EventKind, EventLine};
use rusqlite::Transaction;
use std::sync::Arc;

/// Stores the answer a retry with the same key replays, in the command's transaction.
pub(super) fn remember<T: serde::Serialize>(
    tx: &Transaction,
    ctx: &BatchCtx,
    guard: Option<InFlightGuard>,
    answer: &T,
) -> Result<Remembered> {
    let Some(guard) = guard else { return Ok(None) };
    let body = serde_json::to_string(answer).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    idempotency::insert(tx, &guard.key, &guard.fingerprint, ctx.now_ms, &body)?;
    Ok(Some((guard, Arc::from(body), ctx.now_ms)))
}

/// `{branch}-{tag}-{seq:06}`: ids of shifts and returns come from their event's seq, which
/// is never reused, so they are unique at the branch and (with the branch id) at central.
pub(super) fn event_id(branch_id: &str, tag: &str, seq: u64) -> String {
    format!("{branch_id}-{tag}-{seq:06}")
}

fn write_event(tx: &Transaction, ctx: &BatchCtx, ev: &Event) -> Result<()> {
    let body = serde_json::to_string(ev).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    outbox::insert(tx, ev.seq, ev.kind.as_str(), ctx.now_ms, &body)
}

fn user(u: &Option<UserId>) -> Option<String> {
    u.as_ref().map(|u| u.as_str().to_string())
}

pub(super) fn open_shift(
    tx: &Transaction,
    ctx: &mut BatchCtx,
    cmd: OpenShift,
) -> Result<std::result::Result<(ShiftRow, Remembered), Refusal>> {
    if let Some(shift_id) = shifts::open_on_till(tx, &cmd.till_id)? {
        return Ok(Err(Refusal::ShiftAlreadyOpen {
            till_id: cmd.till_id,
            shift_id,
        }));
    }
    ctx.seq += 1;
    let row = ShiftRow {
        shift_id: event_id(ctx.branch_id, "SH", ctx.seq),
        till_id: cmd.till_id,
        opened_by: user(&cmd.opened_by),
        opened_ms: ctx.now_ms,
        opening_float_cents: cmd.opening_float_cents,
        open: true,
        closed_by: None,
        closed_ms: None,
        counted_cash_cents: None,
        tally: ShiftTally::default(),
    };
    shifts::insert(tx, &row)?;
    write_event(
        tx,
        ctx,
        &Event {
            seq: ctx.seq,
            kind: EventKind::ShiftOpened,
            occurred_at: ctx.occurred_at.clone(),
            user_id: cmd.opened_by,
            shift_id: Some(row.shift_id.clone()),
            till_id: Some(row.till_id.clone()),
            opening_float_cents: Some(row.opening_float_cents),
            ..Event::default()
        },
    )?;
    let remembered = remember(tx, ctx, cmd.remember, &row.to_wire())?;
    Ok(Ok((row, remembered)))
}

pub(super) fn cash_movement(
    tx: &Transaction,
    ctx: &mut BatchCtx,
    cmd: RecordCashMovement,
) -> Result<std::result::Result<(CashMovement, Remembered), Refusal>> {
    let (kind, amount) = (cmd.kind, cmd.amount_cents);
    if let Err(refusal) = ctx.shifts.add(tx, &cmd.shift_id, |t| t.movement(kind, amount))? {
        return Ok(Err(refusal));
    }
    ctx.seq += 1;
    write_event(
        tx,
        ctx,
        &Event {
            seq: ctx.seq,
            kind: EventKind::CashMovement,
            occurred_at: ctx.occurred_at.clone(),
            user_id: cmd.user_id.clone(),
            shift_id: Some(cmd.shift_id.clone()),
            movement: Some(cmd.kind),
            amount_cents: Some(cmd.amount_cents),
            reason: Some(cmd.reason.clone()),
            ..Event::default()
        },
    )?;
    let answer = CashMovement {
        shift_id: cmd.shift_id,
        seq: ctx.seq,
        kind: cmd.kind,
        amount_cents: cmd.amount_cents,
        reason: cmd.reason,
        user_id: user(&cmd.user_id),
        recorded_at: ctx.occurred_at.clone(),
    };
    let remembered = remember(tx, ctx, cmd.remember, &answer)?;
    Ok(Ok((answer, remembered)))
}

pub(super) fn close_shift(
    tx: &Transaction,
    ctx: &mut BatchCtx,
    cmd: CloseShift,
) -> Result<std::result::Result<(ShiftRow, Remembered), Refusal>> {
    // What this batch added to the shift so far goes in first: the close reads the row.
    ctx.shifts.close(tx, &cmd.shift_id)?;
    let Some(mut row) = shifts::get(tx, &cmd.shift_id)? else {
        return Ok(Err(Refusal::UnknownShift(cmd.shift_id)));
    };
    if !row.open {
        // Closing again with the same count is the same close (nothing new happens).
        return Ok(match row.counted_cash_cents {
            Some(c) if c == cmd.counted_cash_cents => Ok((row, None)),
            other => Err(Refusal::ShiftClosed {
                shift_id: cmd.shift_id,
                counted_cash_cents: other.unwrap_or_default(),
            }),
        });
    }
    ctx.seq += 1;
    row.open = false;
    row.closed_by = user(&cmd.closed_by);
    row.closed_ms = Some(ctx.now_ms);
    row.counted_cash_cents = Some(cmd.counted_cash_cents);
    shifts::close(
        tx,
        &row.shift_id,
        row.closed_by.as_deref(),
        ctx.now_ms,
        cmd.counted_cash_cents,
    )?;
    let shift = row.to_wire();
    write_event(
        tx,
        ctx,
        &Event {
            seq: ctx.seq,
            kind: EventKind::ShiftClosed,
            occurred_at: ctx.occurred_at.clone(),
            user_id: cmd.closed_by,
            shift_id: Some(row.shift_id.clone()),
            counted_cash_cents: Some(cmd.counted_cash_cents),
            summary: Some(shift.summary.clone()),
            ..Event::default()
        },
    )?;
    let remembered = remember(tx, ctx, cmd.remember, &shift)?;
    Ok(Ok((row, remembered)))
}

/// What a durable return changes in memory.
pub(super) struct ReturnDone {
    pub answer: ReturnResponse,
    pub remembered: Remembered,
}

pub(super) fn record_return(
    tx: &Transaction,
    ctx: &mut BatchCtx,
    cmd: RecordReturn,
) -> Result<std::result::Result<ReturnDone, Refusal>> {
    let already = returns::returned(tx, cmd.sale_seq)?;
    for l in &cmd.lines {
        let sold = cmd.sold.get(&l.product_id).copied().unwrap_or(0);
        let left = sold - already.get(&l.product_id).copied().unwrap_or(0);
        if l.quantity > left {
            return Ok(Err(Refusal::ReturnExceedsSale {
                product_id: l.product_id.clone(),
                left: left.max(0),
                requested: l.quantity,
            }));
        }
    }
    let total_cents = cmd.lines.iter().map(|l| l.line_total_cents).sum::<i64>();
    if let Some(id) = &cmd.shift_id {
        let method = cmd.refund_method.as_str();
        if let Err(refusal) = ctx.shifts.add(tx, id, |t| t.refund(total_cents, method))? {
            return Ok(Err(refusal));
        }
    }
    ctx.seq += 1;
    let return_id = event_id(ctx.branch_id, "RT", ctx.seq);
    for l in &cmd.lines {
        returns::add_returned(tx, cmd.sale_seq, &l.product_id, l.quantity)?;
        // A product the branch no longer holds gets nothing back (it cannot be: the
        // catalog only grows), rather than failing every command of the batch.
        if cmd.restock {
            products::add_stock(tx, &l.product_id, l.quantity)?;
        }
    }
    returns::insert(tx, &return_id, ctx.seq, cmd.sale_seq, ctx.now_ms, total_cents)?;
    let lines = cmd
        .lines
        .iter()
        .map(|l| {
            Ok(EventLine {
                product_id: ProductId::parse(&l.product_id).map_err(StoreError::Corrupt)?,
                quantity: l.quantity,
                unit_price_cents: l.unit_price_cents,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let answer = ReturnResponse {
        return_id,
        sale_id: cmd.sale_id,
        seq: ctx.seq,
        lines: cmd.lines,
        total_cents,
        restock: cmd.restock,
        refund_method: cmd.refund_method,
        shift_id: cmd.shift_id,
        reason: cmd.reason,
        user_id: user(&cmd.user_id),
        returned_at: ctx.occurred_at.clone(),
    };
    write_event(
        tx,
        ctx,
        &Event {
            seq: ctx.seq,
            kind: EventKind::Return,
            occurred_at: ctx.occurred_at.clone(),
            sale_id: Some(answer.sale_id.clone()),
            lines: Some(lines),
            total_cents: Some(total_cents),
            reason: Some(answer.reason.clone()),
            user_id: cmd.user_id,
            shift_id: answer.shift_id.clone(),
            return_id: Some(answer.return_id.clone()),
            restock: Some(answer.restock),
            refund_method: Some(answer.refund_method.clone()),
            ..Event::default()
        },
    )?;
    let remembered = remember(tx, ctx, cmd.remember, &answer)?;
    Ok(Ok(ReturnDone { answer, remembered }))
}
