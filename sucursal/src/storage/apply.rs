//! Applying one command inside the writer's open transaction: the statements it runs, and
//! the [`Pending`] effects to carry out once the batch is durable.
//!
//! Adding an event kind means one `apply_*` function here (it takes the next seq, writes the
//! payload with [`super::outbox::insert`] and its table changes) and one [`Pending`] variant
//! for what memory learns after the fsync.
use super::apply_stock;
use super::apply_till::{self, ReturnDone};
use super::apply_transfers::{self, Arrived};
use super::commands::{
    AdjustmentRecorded, ApplyPull, CountRecorded, Op, Outcome, Purge, Receipt, RecordAck, RecordSale, Refusal,
    SaleRecorded, Seed, TransferStep,
};
use super::db::{self, Result, StoreError};
use super::reply::{Refused, Replier, Unanswered};
use super::shifts::{ShiftBatch, ShiftRow};
use super::{idempotency, meta, outbox, payload, products, returns, transfers, users};
use crate::idempotency::InFlightGuard;
use crate::inventory::Reserved;
use colmena_shared::till::{CashMovement, ReturnResponse, Shift, ShiftTally};
use colmena_shared::transfers::Transfer;
use colmena_shared::wire::{CatalogSeedItem, Change, ChangeKind};
use rusqlite::Transaction;
use std::collections::HashMap;
use std::sync::Arc;

/// What the commands of one transaction share.
pub(super) struct BatchCtx<'a> {
    pub branch_id: &'a str,
    /// The last seq given, moved by every event of the batch.
    pub seq: u64,
    pub now_ms: i64,
    /// Every event of a batch carries the batch's commit time; formatted once.
    pub occurred_at: String,
    /// Units sold per product in this batch, written to `products` once at the end: under
    /// load many sales of a batch sell the same few products.
    pub sold: HashMap<String, i64>,
    /// Reused by every sale of the batch for its payload.
    pub payload: String,
    /// The shifts the batch's events fall on, and what they add to each.
    pub shifts: ShiftBatch,
}

/// What to do once the transaction is durable, and whom to answer.
pub(super) enum Pending {
    Sale {
        recorded: SaleRecorded,
        /// The guard, the answer to replay and its time, to put in memory after the fsync.
        remembered: Remembered,
        reply: Replier<Outcome<SaleRecorded>>,
    },
    /// A durable event of the till.
    Till(TillPending),
    /// A command the writer refused: it wrote nothing; its answer waits for the batch like
    /// any other (the refusal read the batch's state), and its reserved stock is given back.
    Refused(Refused),
    Adjustment {
        recorded: AdjustmentRecorded,
        product_id: String,
        delta: i64,
        remembered: Remembered,
        reply: Replier<AdjustmentRecorded>,
    },
    /// A count: memory adds its delta (memory = committed − reservations in flight, so
    /// adding what the commit added keeps that true).
    Count {
        recorded: CountRecorded,
        product_id: String,
        remembered: Remembered,
        reply: Replier<CountRecorded>,
    },
    /// A transfer step (or one found already taken): memory takes the row as it now is; a
    /// receipt's units arrive in stock; an untaken dispatch gives its reservation back.
    Transfer {
        step: TransferStep,
        arrived: Arrived,
        reply: Replier<Outcome<TransferStep>>,
    },
    Pull {
        changes: Vec<Change>,
        /// The pulled transfers as merged here, for memory.
        transfers: Vec<Transfer>,
        next_cursor: u64,
        acked: Option<u64>,
        users_catch_up: bool,
        reply: Replier<()>,
    },
    Ack {
        acked: u64,
        reply: Replier<()>,
    },
    Purge {
        idempotency_before_ms: i64,
        reply: Replier<()>,
    },
    Seed {
        items: Vec<CatalogSeedItem>,
        reply: Replier<()>,
    },
    Nothing(Replier<()>),
}

/// What the till's durable events change in memory, and whom to answer.
pub(super) enum TillPending {
    /// A shift opened or closed (or a close repeated): memory takes the row as it now is.
    Shift {
        row: ShiftRow,
        remembered: Remembered,
        reply: Replier<Outcome<Shift>>,
    },
    CashMovement {
        answer: CashMovement,
        remembered: Remembered,
        reply: Replier<Outcome<CashMovement>>,
    },
    Return {
        done: ReturnDone,
        reply: Replier<Outcome<ReturnResponse>>,
    },
    /// What the batch added to each open shift, for memory (nobody waits for it).
    Totals(Vec<(String, ShiftTally)>),
}

impl Pending {
    /// The batch did not become durable: this command failed.
    pub(super) fn unanswered(self) -> Unanswered {
        match self {
            Pending::Sale { reply, .. } => reply.into(),
            Pending::Adjustment { reply, .. } => reply.into(),
            Pending::Count { reply, .. } => reply.into(),
            Pending::Transfer { reply, .. } => reply.into(),
            Pending::Till(TillPending::Shift { reply, .. }) => reply.into(),
            Pending::Till(TillPending::CashMovement { reply, .. }) => reply.into(),
            Pending::Till(TillPending::Return { reply, .. }) => reply.into(),
            Pending::Till(TillPending::Totals(_)) => Unanswered::nobody(),
            Pending::Refused(r) => r.into(),
            Pending::Pull { reply, .. }
            | Pending::Ack { reply, .. }
            | Pending::Purge { reply, .. }
            | Pending::Seed { reply, .. }
            | Pending::Nothing(reply) => reply.into(),
        }
    }
}

/// Applies one command; on failure hands its replier back to be told so.
pub(super) fn apply(
    tx: &Transaction,
    ctx: &mut BatchCtx,
    op: Op,
    reserved: &[Reserved],
) -> std::result::Result<Pending, (StoreError, Unanswered)> {
    fn fail<T: Send + 'static>(reply: Replier<T>) -> impl FnOnce(StoreError) -> (StoreError, Unanswered) {
        move |e| (e, reply.into())
    }
    match op {
        Op::Sale(cmd, reply) => match sale(tx, ctx, cmd, reserved) {
            Ok(Ok((recorded, remembered))) => Ok(Pending::Sale {
                recorded,
                remembered,
                reply,
            }),
            Ok(Err(refusal)) => Ok(Pending::Refused(reply.refuse(refusal))),
            Err(e) => Err(fail(reply)(e)),
        },
        Op::OpenShift(cmd, reply) => match apply_till::open_shift(tx, ctx, cmd) {
            Ok(Ok((row, remembered))) => Ok(Pending::Till(TillPending::Shift { row, remembered, reply })),
            Ok(Err(refusal)) => Ok(Pending::Refused(reply.refuse(refusal))),
            Err(e) => Err(fail(reply)(e)),
        },
        Op::CloseShift(cmd, reply) => match apply_till::close_shift(tx, ctx, cmd) {
            Ok(Ok((row, remembered))) => Ok(Pending::Till(TillPending::Shift { row, remembered, reply })),
            Ok(Err(refusal)) => Ok(Pending::Refused(reply.refuse(refusal))),
            Err(e) => Err(fail(reply)(e)),
        },
        Op::CashMovement(cmd, reply) => match apply_till::cash_movement(tx, ctx, cmd) {
            Ok(Ok((answer, remembered))) => Ok(Pending::Till(TillPending::CashMovement {
                answer,
                remembered,
                reply,
            })),
            Ok(Err(refusal)) => Ok(Pending::Refused(reply.refuse(refusal))),
            Err(e) => Err(fail(reply)(e)),
        },
        Op::Return(cmd, reply) => match apply_till::record_return(tx, ctx, cmd) {
            Ok(Ok(done)) => Ok(Pending::Till(TillPending::Return { done, reply })),
            Ok(Err(refusal)) => Ok(Pending::Refused(reply.refuse(refusal))),
            Err(e) => Err(fail(reply)(e)),
        },
        Op::Adjustment(mut cmd, reply) => match apply_stock::adjustment(tx, ctx, &mut cmd) {
            Ok((recorded, remembered)) => Ok(Pending::Adjustment {
                recorded,
                product_id: cmd.product_id.into_string(),
                delta: cmd.delta,
                remembered,
                reply,
            }),
            Err(e) => Err(fail(reply)(e)),
        },
        Op::Count(mut cmd, reply) => match apply_stock::count(tx, ctx, &mut cmd) {
            Ok((recorded, remembered)) => Ok(Pending::Count {
                recorded,
                product_id: cmd.product_id.into_string(),
                remembered,
                reply,
            }),
            Err(e) => Err(fail(reply)(e)),
        },
        Op::Dispatch(cmd, reply) => match apply_transfers::dispatch(tx, ctx, &cmd, reserved) {
            Ok(Ok(step)) => Ok(Pending::Transfer {
                step,
                arrived: Vec::new(),
                reply,
            }),
            Ok(Err(refusal)) => Ok(Pending::Refused(reply.refuse(refusal))),
            Err(e) => Err(fail(reply)(e)),
        },
        Op::Receive(cmd, reply) => match apply_transfers::receive(tx, ctx, &cmd) {
            Ok(Ok((step, arrived))) => Ok(Pending::Transfer { step, arrived, reply }),
            Ok(Err(refusal)) => Ok(Pending::Refused(reply.refuse(refusal))),
            Err(e) => Err(fail(reply)(e)),
        },
        Op::Pull(cmd, reply) => match pull(tx, ctx, &cmd) {
            Ok((acked, transfers)) => Ok(Pending::Pull {
                changes: cmd.changes,
                transfers,
                next_cursor: cmd.next_cursor,
                acked,
                users_catch_up: cmd.users_catch_up,
                reply,
            }),
            Err(e) => Err(fail(reply)(e)),
        },
        Op::Ack(RecordAck(acked), reply) => {
            // Central stands at `acked`. Normally that is at most our last seq; if central is
            // ahead (this store is an older copy), our next seq must be above it or central
            // would drop new sales as duplicates.
            raise_seq_floor(&mut ctx.seq, acked);
            match meta::set(tx, meta::ACKED_THROUGH, acked) {
                Ok(()) => Ok(Pending::Ack { acked, reply }),
                Err(e) => Err(fail(reply)(e)),
            }
        }
        Op::Purge(cmd, reply) => match purge(tx, &cmd) {
            Ok(()) => Ok(Pending::Purge {
                idempotency_before_ms: cmd.idempotency_before_ms,
                reply,
            }),
            Err(e) => Err(fail(reply)(e)),
        },
        Op::Seed(Seed(items), reply) => match seed(tx, ctx, &items) {
            Ok(true) => Ok(Pending::Seed { items, reply }),
            Ok(false) => Ok(Pending::Nothing(reply)),
            Err(e) => Err(fail(reply)(e)),
        },
        // The writer takes Shutdown out of the batch before applying anything.
        Op::Shutdown(reply) => Ok(Pending::Nothing(reply)),
    }
}

/// The guard, the answer a retry replays and its time, to put in memory after the fsync.
pub(super) type Remembered = Option<(InFlightGuard, Arc<str>, i64)>;

type SaleDone = (SaleRecorded, Remembered);

fn sale(
    tx: &Transaction,
    ctx: &mut BatchCtx,
    cmd: RecordSale,
    reserved: &[Reserved],
) -> Result<std::result::Result<SaleDone, Refusal>> {
    // Only a sale on a shift pays for this; the check and the shift's figures move in the
    // sale's transaction, after any close committed before it.
    if let Some(id) = &cmd.sale.shift_id {
        let (total, payments) = (cmd.sale.total_cents, cmd.sale.payments.as_deref());
        if let Err(refusal) = ctx.shifts.add(tx, id, |t| t.sale(total, payments))? {
            return Ok(Err(refusal));
        }
    }
    ctx.seq += 1;
    let receipt = Receipt {
        seq: ctx.seq,
        sale_id: payload::sale_id(ctx.branch_id, ctx.seq),
        committed_at: ctx.occurred_at.clone(),
    };
    for r in reserved {
        match ctx.sold.get_mut(r.product_id.as_str()) {
            Some(q) => *q += r.quantity,
            None => {
                ctx.sold.insert(r.product_id.clone(), r.quantity);
            }
        }
    }
    ctx.payload.clear();
    payload::write_sale(
        &mut ctx.payload,
        &payload::SalePayload {
            seq: receipt.seq,
            occurred_at: &receipt.committed_at,
            sale_id: &receipt.sale_id,
            lines: &cmd.sale.lines,
            total_cents: cmd.sale.total_cents,
            cashier_id: cmd.sale.cashier_id.as_deref(),
            shift_id: cmd.sale.shift_id.as_deref(),
            payments: cmd.sale.payments.as_deref(),
        },
    );
    outbox::insert(tx, receipt.seq, "sale", ctx.now_ms, &ctx.payload)?;
    let remembered = match cmd.remember {
        Some(r) => {
            let body =
                (r.render)(ctx.branch_id, &cmd.sale, &receipt).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            idempotency::insert(tx, &r.guard.key, &r.guard.fingerprint, ctx.now_ms, &body)?;
            Some((r.guard, Arc::from(body), ctx.now_ms))
        }
        None => None,
    };
    Ok(Ok((
        SaleRecorded {
            receipt,
            sale: cmd.sale,
        },
        remembered,
    )))
}

/// Returns the new `acked_through` if central's view moved it, and the pulled transfers as
/// merged here.
fn pull(tx: &Transaction, ctx: &mut BatchCtx, cmd: &ApplyPull) -> Result<(Option<u64>, Vec<Transfer>)> {
    if cmd.users_catch_up {
        for u in cmd.changes.iter().filter_map(user_change) {
            users::upsert(tx, u)?;
        }
        meta::set(tx, meta::USERS_CATCH_UP_FROM, cmd.next_cursor)?;
        return Ok((None, Vec::new()));
    }
    let mut merged = Vec::new();
    for c in &cmd.changes {
        match c.kind {
            ChangeKind::Product => products::upsert_catalog(
                tx,
                &c.product_id,
                c.name.as_deref().unwrap_or(&c.product_id),
                c.price_cents.unwrap_or(0),
                c.version.unwrap_or(0),
                &products::CatalogFields::of(c),
            )?,
            ChangeKind::Allocation => products::allocate(tx, &c.product_id, c.quantity.unwrap_or(0))?,
            ChangeKind::User => {
                if let Some(u) = user_change(c) {
                    users::upsert(tx, u)?;
                }
            }
            // Merged in this transaction, with the cursor (docs/protocol.md, "Transfers").
            ChangeKind::Transfer => {
                if let Some(t) = crate::transfers::pulled(ctx.branch_id, c) {
                    merged.push(transfers::merge(tx, t)?);
                }
            }
            // A kind from a newer central is skipped.
            ChangeKind::Unknown => {}
        }
    }
    meta::set(tx, meta::PULL_CURSOR, cmd.next_cursor)?;
    // Central's applied_through in a pull moves the seq floor (a branch restored from an
    // older copy must not reuse a seq central holds) but acknowledges nothing: only a push
    // answer acknowledges events (docs/protocol.md, "Sync pull"). Pending events stay in the
    // outbox and are pushed; if central has them, its answer acknowledges them after
    // comparing their content. Only when nothing is pending does the mark move with the
    // floor, over seqs this store never wrote.
    let acked = meta::get(tx, meta::ACKED_THROUGH)?;
    let nothing_pending = acked >= ctx.seq;
    raise_seq_floor(&mut ctx.seq, cmd.applied_through);
    if nothing_pending && cmd.applied_through > acked {
        meta::set(tx, meta::ACKED_THROUGH, cmd.applied_through)?;
        return Ok((Some(cmd.applied_through), merged));
    }
    Ok((None, merged))
}

/// The user a `user` change carries. One without its user (a malformed feed entry) is
/// skipped rather than failing the page: the other changes must still apply.
pub(super) fn user_change(c: &Change) -> Option<&colmena_shared::users::UserRecord> {
    match (c.kind, &c.user) {
        (ChangeKind::User, Some(u)) => Some(u),
        _ => None,
    }
}

fn purge(tx: &Transaction, cmd: &Purge) -> Result<()> {
    let acked = meta::get(tx, meta::ACKED_THROUGH)?;
    returns::archive_before_purge(tx, acked, cmd.outbox_before_ms, cmd.returns_since_ms)?;
    outbox::purge_acked(tx, acked, cmd.outbox_before_ms)?;
    idempotency::purge_before(tx, cmd.idempotency_before_ms)
}

/// False when the store already had data (the seed is ignored).
fn seed(tx: &Transaction, ctx: &mut BatchCtx, items: &[CatalogSeedItem]) -> Result<bool> {
    if !db::is_empty(tx)? {
        tracing::info!("store already has data; --catalog ignored");
        return Ok(false);
    }
    for it in items {
        products::insert_seed(tx, it.product_id.as_str(), &it.name, it.price_cents, it.stock)?;
        // The seed stock travels to central as adjustments so its ledger agrees; in pieces
        // of at most MAX_QUANTITY, the most one adjustment may carry, or central would
        // reject the event and the branch's sync would stop there.
        let mut left = it.stock;
        while left > 0 {
            let piece = left.min(colmena_shared::ids::MAX_QUANTITY);
            left -= piece;
            ctx.seq += 1;
            let body = payload::adjustment(
                ctx.seq,
                &ctx.occurred_at,
                &it.product_id,
                piece,
                "initial_catalog",
                None,
            )?;
            outbox::insert(tx, ctx.seq, "adjustment", ctx.now_ms, &body)?;
        }
    }
    meta::set(tx, meta::SEEDED, 1)?;
    Ok(true)
}

fn raise_seq_floor(seq: &mut u64, central_applied_through: u64) {
    if central_applied_through > *seq {
        tracing::warn!(
            central = central_applied_through,
            local = *seq,
            "central is ahead of this store (restored from an older copy?); new events continue above central's applied_through"
        );
        *seq = central_applied_through;
    }
}
