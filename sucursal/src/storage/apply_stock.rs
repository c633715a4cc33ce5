//! Applying the stock commands inside the writer's transaction: adjustments and counts
//! (docs/protocol.md, "Catalog at the branch").
//!
//! Invariants:
//! - The stock a command reads here is the committed stock as of its own place in commit
//!   order: `products.stock` minus what the open batch's sales took (those are written once
//!   at the end of the batch, see [`BatchCtx::sold`]).
//! - A count's difference is computed here, never by the handler: only the writer knows
//!   which sales commit before the count and which after.
//! - One `adjustment` event carries at most `MAX_QUANTITY` units (central refuses more), so
//!   a larger difference becomes several events in the same transaction.
use super::apply::{BatchCtx, Remembered};
use super::apply_till::remember;
use super::commands::{AdjustmentRecorded, CountRecorded, RecordAdjustment, RecordCount};
use super::db::{Result, StoreError};
use super::{outbox, payload, products};
use colmena_shared::catalog::StockCountResponse;
use colmena_shared::ids::{ProductId, MAX_QUANTITY};
use colmena_shared::users::UserId;
use colmena_shared::wire::AdjustmentResponse;
use rusqlite::Transaction;

/// The reason a count's adjustment events carry.
pub const COUNT_REASON: &str = "count";

/// The committed stock of `product_id` as of this point of the batch.
fn committed_stock(tx: &Transaction, ctx: &BatchCtx, product_id: &str) -> Result<i64> {
    let stored = products::stock_of(tx, product_id)?
        .ok_or_else(|| StoreError::Corrupt(format!("stock of unknown product {product_id}")))?;
    Ok(stored.saturating_sub(ctx.sold.get(product_id).copied().unwrap_or(0)))
}

fn event(
    tx: &Transaction,
    ctx: &mut BatchCtx,
    product_id: &ProductId,
    delta: i64,
    reason: &str,
    user_id: Option<&UserId>,
) -> Result<u64> {
    ctx.seq += 1;
    let body = payload::adjustment(ctx.seq, &ctx.occurred_at, product_id, delta, reason, user_id)?;
    outbox::insert(tx, ctx.seq, "adjustment", ctx.now_ms, &body)?;
    Ok(ctx.seq)
}

pub(super) fn adjustment(
    tx: &Transaction,
    ctx: &mut BatchCtx,
    cmd: &mut RecordAdjustment,
) -> Result<(AdjustmentRecorded, Remembered)> {
    let seq = event(tx, ctx, &cmd.product_id, cmd.delta, &cmd.reason, cmd.user_id.as_ref())?;
    products::add_stock_of_known(tx, cmd.product_id.as_str(), cmd.delta)?;
    let stock = committed_stock(tx, ctx, cmd.product_id.as_str())?;
    let remembered = remember(tx, ctx, cmd.remember.take(), &AdjustmentResponse { seq, stock })?;
    Ok((AdjustmentRecorded { seq, stock }, remembered))
}

pub(super) fn count(
    tx: &Transaction,
    ctx: &mut BatchCtx,
    cmd: &mut RecordCount,
) -> Result<(CountRecorded, Remembered)> {
    let before = committed_stock(tx, ctx, cmd.product_id.as_str())?;
    let delta = cmd.counted.saturating_sub(before);
    let mut first = None;
    let mut left = delta;
    while left != 0 {
        let piece = left.clamp(-MAX_QUANTITY, MAX_QUANTITY);
        left -= piece;
        let seq = event(tx, ctx, &cmd.product_id, piece, COUNT_REASON, cmd.user_id.as_ref())?;
        first.get_or_insert(seq);
    }
    if delta != 0 {
        products::add_stock_of_known(tx, cmd.product_id.as_str(), delta)?;
    }
    let answer = StockCountResponse {
        seq: first,
        stock: cmd.counted,
        delta,
    };
    let remembered = remember(tx, ctx, cmd.remember.take(), &answer)?;
    Ok((CountRecorded { seq: first, delta }, remembered))
}
