//! Transfers on PostgreSQL (rules in [`crate::store::transfers`]; docs/protocol.md,
//! "Transfers").
//!
//! Every writer of a transfer, at any central process, holds the feed lock
//! ([`super::writes::lock_feed`]) from before it reads the transfer until it commits: a
//! create, a cancel, and a push carrying transfer steps (which takes it after its branch
//! row, the lock every push holds first; nothing takes them in the other order). So a
//! cancel and a dispatch that cross are serialised: either the cancel commits first and the
//! dispatch then applies over it (what happened at the store wins), or the dispatch commits
//! first and the cancel finds the transfer in transit and is refused. A dispatch is never
//! lost. A push without transfer steps takes no more locks than before.
use super::catalog::{lookup_key, record_key};
use super::writes::{insert_audit, lock_feed, take_cursor};
use super::{PgStore, KIND_TRANSFER};
use crate::store::common::{json_text, to_i64, to_u64, AppliedEvent};
use crate::store::transfers::{
    conflict_message, decode, ledger_deltas, new_transfer, plan_cancel, plan_step, step_kind, step_lines_text,
    transfer_answer, transfer_id, ACTION_TRANSFER_CANCEL, ACTION_TRANSFER_CREATE, STEP_DISPATCH,
};
use crate::store::{
    CancelOutcome, IdempotencyKey, Idempotent, StoreError, TransferFilter, TransferOutcome, TransfersApplied,
};
use colmena_shared::clock;
use colmena_shared::transfers::{Transfer, TransferRequest, TransferStatus};
use colmena_shared::wire::Event;
use std::collections::{BTreeMap, HashMap};
use tokio_postgres::types::ToSql;

type Tx<'a> = deadpool_postgres::Transaction<'a>;

/// The feed cursors this transaction hands out, under the feed lock it holds.
pub(super) struct Feed {
    last: i64,
    taken: bool,
}

impl Feed {
    /// Takes the feed lock.
    pub(super) async fn lock(tx: &Tx<'_>) -> Result<Feed, StoreError> {
        Ok(Feed {
            last: lock_feed(tx).await?,
            taken: false,
        })
    }

    /// Records the last cursor handed out (before commit).
    pub(super) async fn finish(self, tx: &Tx<'_>) -> Result<(), StoreError> {
        if self.taken {
            take_cursor(tx, self.last).await?;
        }
        Ok(())
    }

    /// One feed entry for each of the transfer's two branches (and no other).
    async fn transfer(&mut self, tx: &Tx<'_>, t: &Transfer, now: i64) -> Result<(), StoreError> {
        let body = json_text(t)?;
        let insert = tx
            .prepare_cached(
                "INSERT INTO changes(cursor, kind, product_id, branch_key, payload, created_ms) \
                 VALUES ($1, $2, '', $3, $4, $5)",
            )
            .await?;
        for b in [&t.from_branch, &t.to_branch] {
            let key = branch_key(tx, b).await?;
            self.last += 1;
            self.taken = true;
            tx.execute(&insert, &[&self.last, &KIND_TRANSFER, &key, &body, &now])
                .await?;
        }
        Ok(())
    }
}

/// A branch's key, created if it is new (both branches of a transfer were known when it
/// was created, so this only creates after a database was tampered with).
async fn branch_key(tx: &Tx<'_>, branch: &str) -> Result<i64, StoreError> {
    let select = tx
        .prepare_cached("SELECT branch_key FROM branches WHERE branch_id = $1")
        .await?;
    if let Some(r) = tx.query_opt(&select, &[&branch]).await? {
        return Ok(r.try_get(0)?);
    }
    let insert = tx
        .prepare_cached("INSERT INTO branches(branch_id) VALUES ($1) ON CONFLICT (branch_id) DO NOTHING")
        .await?;
    tx.execute(&insert, &[&branch]).await?;
    Ok(tx.query_one(&select, &[&branch]).await?.try_get(0)?)
}

async fn load(tx: &Tx<'_>, id: &str) -> Result<Option<Transfer>, StoreError> {
    let stmt = tx
        .prepare_cached("SELECT body FROM transfers WHERE transfer_id = $1")
        .await?;
    match tx.query_opt(&stmt, &[&id]).await? {
        Some(r) => Ok(Some(decode(id, r.try_get(0)?)?)),
        None => Ok(None),
    }
}

/// Stores `t` over its row; `step` is the (kind, seq) of the branch event that moved it.
async fn update(tx: &Tx<'_>, t: &Transfer, now: i64, step: Option<(i16, i64)>) -> Result<(), StoreError> {
    let dispatched = t.dispatched_at.as_deref().and_then(clock::parse_rfc3339_millis);
    let (dispatch_seq, receipt_seq) = match step {
        Some((STEP_DISPATCH, seq)) => (Some(seq), None),
        Some((_, seq)) => (None, Some(seq)),
        None => (None, None),
    };
    let stmt = tx
        .prepare_cached(
            "UPDATE transfers SET status = $2, dispatched_ms = $3, body = $4, updated_ms = $5, \
             dispatch_seq = coalesce($6, dispatch_seq), receipt_seq = coalesce($7, receipt_seq) \
             WHERE transfer_id = $1",
        )
        .await?;
    let body = json_text(t)?;
    tx.execute(
        &stmt,
        &[
            &t.transfer_id,
            &t.status.as_str(),
            &dispatched,
            &body,
            &now,
            &dispatch_seq,
            &receipt_seq,
        ],
    )
    .await?;
    Ok(())
}

async fn exists(tx: &Tx<'_>, sql: &str, id: &str) -> Result<bool, StoreError> {
    let stmt = tx.prepare_cached(sql).await?;
    Ok(tx.query_opt(&stmt, &[&id]).await?.is_some())
}

/// A create inside the caller's transaction (which holds the feed lock).
async fn create_in(
    tx: &Tx<'_>,
    feed: &mut Feed,
    req: &TransferRequest,
    now: i64,
) -> Result<TransferOutcome, StoreError> {
    for b in [&req.from_branch, &req.to_branch] {
        if !exists(tx, "SELECT 1 FROM branches WHERE branch_id = $1", b.as_str()).await? {
            return Ok(TransferOutcome::UnknownBranch(b.as_str().to_string()));
        }
    }
    for l in &req.lines {
        if !exists(
            tx,
            "SELECT 1 FROM products WHERE product_id = $1",
            l.product_id.as_str(),
        )
        .await?
        {
            return Ok(TransferOutcome::UnknownProduct(l.product_id.as_str().to_string()));
        }
    }
    let num: i64 = tx
        .query_one(
            &tx.prepare_cached("SELECT coalesce(max(num), 0) + 1 FROM transfers")
                .await?,
            &[],
        )
        .await?
        .try_get(0)?;
    let t = new_transfer(transfer_id(num), req, now);
    let body = json_text(&t)?;
    let insert = tx
        .prepare_cached(
            "INSERT INTO transfers(transfer_id, num, from_branch, to_branch, status, body, updated_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .await?;
    tx.execute(
        &insert,
        &[
            &t.transfer_id,
            &num,
            &t.from_branch,
            &t.to_branch,
            &t.status.as_str(),
            &body,
            &now,
        ],
    )
    .await?;
    feed.transfer(tx, &t, now).await?;
    let target = format!("/transfers/{}", t.transfer_id);
    insert_audit(tx, now, ACTION_TRANSFER_CREATE, &target, None, &body).await?;
    Ok(TransferOutcome::Created(t))
}

impl PgStore {
    pub(super) async fn create_transfer_inner(
        &self,
        req: &TransferRequest,
        key: Option<&IdempotencyKey>,
    ) -> Result<Idempotent<TransferOutcome>, StoreError> {
        let now = clock::now_millis();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // Taken first, as every admin write does: the key lookup and the number read the
        // latest committed state.
        let mut feed = Feed::lock(&tx).await?;
        if let Some(k) = key {
            if let Some(answer) = lookup_key(&tx, k, now).await? {
                let _ = tx.rollback().await;
                return Ok(answer);
            }
        }
        let outcome = create_in(&tx, &mut feed, req, now).await?;
        if !matches!(outcome, TransferOutcome::Created(_)) {
            let _ = tx.rollback().await;
            return Ok(Idempotent::Fresh(outcome));
        }
        if let Some(k) = key {
            record_key(&tx, k, transfer_answer(&outcome)?, now).await?;
        }
        feed.finish(&tx).await?;
        tx.commit().await?;
        Ok(Idempotent::Fresh(outcome))
    }

    pub(super) async fn cancel_transfer_inner(&self, id: &str) -> Result<CancelOutcome, StoreError> {
        let now = clock::now_millis();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // Held until commit: a push's dispatch of this transfer waits for it, or it waits
        // for the dispatch and then finds it in transit (see the module doc).
        let mut feed = Feed::lock(&tx).await?;
        let Some(t) = load(&tx, id).await? else {
            let _ = tx.rollback().await;
            return Ok(CancelOutcome::NotFound);
        };
        let cancelled = match plan_cancel(&t, now) {
            Ok(Some(c)) => c,
            Ok(None) => {
                let _ = tx.rollback().await;
                return Ok(CancelOutcome::AlreadyCancelled(t));
            }
            Err(()) => {
                let _ = tx.rollback().await;
                return Ok(CancelOutcome::Conflict(t));
            }
        };
        update(&tx, &cancelled, now, None).await?;
        feed.transfer(&tx, &cancelled, now).await?;
        let target = format!("/transfers/{id}");
        let (before, after) = (json_text(&t)?, json_text(&cancelled)?);
        insert_audit(&tx, now, ACTION_TRANSFER_CANCEL, &target, Some(&before), &after).await?;
        feed.finish(&tx).await?;
        tx.commit().await?;
        Ok(CancelOutcome::Cancelled(cancelled))
    }
}

/// Applies a push's transfer steps in seq order inside the push's transaction (which holds
/// its branch row): takes the feed lock, then per step the transfer, its feed entries and
/// its `transfer_events` row; its ledger change is added to `deltas`. Returns the first
/// impossible step as `(seq, message)`; the caller then rolls the whole push back.
#[allow(clippy::too_many_arguments)]
pub(super) async fn apply_steps<'e>(
    tx: &Tx<'_>,
    key: i64,
    branch: &str,
    events: &'e [Event],
    now: i64,
    deltas: &mut BTreeMap<&'e str, i64>,
    applied: &mut TransfersApplied,
) -> Result<Option<(u64, String)>, StoreError> {
    let mut feed = Feed::lock(tx).await?;
    let insert = tx
        .prepare_cached(
            "INSERT INTO transfer_events(branch_key, seq, kind, transfer_id, lines, occurred_ms, received_ms, \
             user_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .await?;
    for e in events {
        let Some(kind) = step_kind(e.kind) else {
            continue;
        };
        let seq = to_i64("seq", e.seq)?;
        let at_ms = clock::parse_rfc3339_millis(&e.occurred_at)
            .ok_or_else(|| StoreError::Database(format!("event {seq}: unparsable occurred_at")))?;
        let id = e.transfer_id.as_deref().unwrap_or_default();
        let t = match plan_step(load(tx, id).await?.as_ref(), branch, e, at_ms) {
            Ok(t) => t,
            Err(why) => return Ok(Some((e.seq, conflict_message(e, &why)))),
        };
        update(tx, &t, now, Some((kind, seq))).await?;
        feed.transfer(tx, &t, now).await?;
        let lines = step_lines_text(e)?;
        let user = e.user_id.as_ref().map(|u| u.as_str());
        tx.execute(&insert, &[&key, &seq, &kind, &id, &lines, &at_ms, &now, &user])
            .await?;
        ledger_deltas(e, deltas, applied);
    }
    feed.finish(tx).await?;
    Ok(None)
}

/// The transfer steps a branch pushed in a seq range, as applied (for the duplicate check).
pub(super) async fn applied_steps(
    tx: &tokio_postgres::Transaction<'_>,
    params: &[&(dyn ToSql + Sync)],
    out: &mut HashMap<u64, AppliedEvent>,
) -> Result<(), StoreError> {
    let sql = "SELECT seq, kind, transfer_id, lines, occurred_ms, user_id FROM transfer_events \
         WHERE branch_key = $1 AND seq BETWEEN $2 AND $3";
    for r in tx.query(sql, params).await? {
        let step = AppliedEvent::TransferStep {
            kind: r.try_get(1)?,
            transfer_id: r.try_get(2)?,
            lines: r.try_get(3)?,
            at_ms: r.try_get(4)?,
            user_id: r.try_get(5)?,
        };
        out.insert(to_u64(r.try_get(0)?), step);
    }
    Ok(())
}

/// Transfers matching `filter` (or only `id`), by number (= transfer_id order).
pub(super) async fn read_transfers(
    tx: &Tx<'_>,
    filter: &TransferFilter,
    id: Option<&str>,
) -> Result<Vec<Transfer>, StoreError> {
    let stmt = tx
        .prepare_cached(
            "SELECT transfer_id, body FROM transfers WHERE ($1::text IS NULL OR status = $1) \
             AND ($2::text IS NULL OR from_branch = $2 OR to_branch = $2) \
             AND ($3::text IS NULL OR transfer_id = $3) ORDER BY num",
        )
        .await?;
    let status = filter.status.map(TransferStatus::as_str);
    let branch = filter.branch.as_ref().map(|b| b.as_str());
    let mut out = Vec::new();
    for r in tx.query(&stmt, &[&status, &branch, &id]).await? {
        let id: &str = r.try_get(0)?;
        out.push(decode(id, r.try_get(1)?)?);
    }
    Ok(out)
}

/// Every transfer now in transit (for the inventory and the gauges).
pub(super) async fn in_transit(tx: &Tx<'_>) -> Result<Vec<Transfer>, StoreError> {
    let filter = TransferFilter {
        status: Some(TransferStatus::InTransit),
        branch: None,
    };
    read_transfers(tx, &filter, None).await
}
