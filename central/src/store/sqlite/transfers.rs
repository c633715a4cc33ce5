//! Transfers on SQLite (rules in [`crate::store::transfers`]; docs/protocol.md,
//! "Transfers").
//!
//! Every write here runs on the single writer thread inside its job's savepoint: a create
//! or cancel reads the transfer and writes it, its two feed entries and its audit entry with
//! no other write between; a push's steps are applied one by one in seq order inside the
//! push's own savepoint, so a later step sees an earlier one and a refused step rolls the
//! whole push back.
use super::catalog::{lookup_key, record_key};
use super::writer::Writer;
use super::writes::insert_audit;
use super::KIND_TRANSFER;
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
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::{BTreeMap, HashMap};

/// The transfer `id` as stored, if any.
fn load(conn: &Connection, id: &str) -> Result<Option<Transfer>, StoreError> {
    let body: Option<String> = conn
        .prepare_cached("SELECT body FROM transfers WHERE transfer_id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    body.map(|b| decode(id, &b)).transpose()
}

/// Stores `t` over its row; `step` is the (kind, seq) of the branch event that moved it.
fn update(conn: &Connection, t: &Transfer, now: i64, step: Option<(i16, i64)>) -> Result<(), StoreError> {
    let dispatched = t.dispatched_at.as_deref().and_then(clock::parse_rfc3339_millis);
    let (dispatch_seq, receipt_seq) = match step {
        Some((STEP_DISPATCH, seq)) => (Some(seq), None),
        Some((_, seq)) => (None, Some(seq)),
        None => (None, None),
    };
    conn.prepare_cached(
        "UPDATE transfers SET status = ?2, dispatched_ms = ?3, body = ?4, updated_ms = ?5, \
         dispatch_seq = coalesce(?6, dispatch_seq), receipt_seq = coalesce(?7, receipt_seq) WHERE transfer_id = ?1",
    )?
    .execute(params![
        t.transfer_id,
        t.status.as_str(),
        dispatched,
        json_text(t)?,
        now,
        dispatch_seq,
        receipt_seq
    ])?;
    Ok(())
}

/// One feed entry for each of the transfer's two branches (and no other).
fn feed(conn: &Connection, t: &Transfer, now: i64) -> Result<(), StoreError> {
    let body = json_text(t)?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO changes(kind, product_id, branch_key, payload, created_ms) VALUES (?1, '', ?2, ?3, ?4)",
    )?;
    for b in [&t.from_branch, &t.to_branch] {
        let (key, _) = Writer::branch(conn, b)?;
        insert.execute(params![KIND_TRANSFER, key, body, now])?;
    }
    Ok(())
}

fn known(conn: &Connection, sql: &str, id: &str) -> Result<bool, StoreError> {
    Ok(conn.prepare_cached(sql)?.exists([id])?)
}

/// A create inside the caller's savepoint: nothing is written unless it is created.
fn create_in(tx: &Connection, req: &TransferRequest, now: i64) -> Result<TransferOutcome, StoreError> {
    for b in [&req.from_branch, &req.to_branch] {
        if !known(tx, "SELECT 1 FROM branches WHERE branch_id = ?1", b.as_str())? {
            return Ok(TransferOutcome::UnknownBranch(b.as_str().to_string()));
        }
    }
    for l in &req.lines {
        if !known(
            tx,
            "SELECT 1 FROM products WHERE product_id = ?1",
            l.product_id.as_str(),
        )? {
            return Ok(TransferOutcome::UnknownProduct(l.product_id.as_str().to_string()));
        }
    }
    let num: i64 = tx
        .prepare_cached("SELECT coalesce(max(num), 0) + 1 FROM transfers")?
        .query_row([], |r| r.get(0))?;
    let t = new_transfer(transfer_id(num), req, now);
    let body = json_text(&t)?;
    tx.prepare_cached(
        "INSERT INTO transfers(transfer_id, num, from_branch, to_branch, status, body, updated_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        t.transfer_id,
        num,
        t.from_branch,
        t.to_branch,
        t.status.as_str(),
        body,
        now
    ])?;
    feed(tx, &t, now)?;
    let target = format!("/transfers/{}", t.transfer_id);
    insert_audit(tx, now, ACTION_TRANSFER_CREATE, &target, None, &body)?;
    Ok(TransferOutcome::Created(t))
}

impl Writer {
    pub(super) fn create_transfer(
        &mut self,
        req: &TransferRequest,
        key: Option<&IdempotencyKey>,
    ) -> Result<Idempotent<TransferOutcome>, StoreError> {
        let now = clock::now_millis();
        let tx = self.conn.savepoint()?;
        if let Some(k) = key {
            if let Some(answer) = lookup_key(&tx, k, now)? {
                return Ok(answer); // dropping tx rolls the purge back: nothing changed
            }
        }
        let outcome = create_in(&tx, req, now)?;
        if let Some(k) = key {
            record_key(&tx, k, transfer_answer(&outcome)?, now)?;
        }
        tx.commit()?;
        Ok(Idempotent::Fresh(outcome))
    }

    pub(super) fn cancel_transfer(&mut self, id: &str) -> Result<CancelOutcome, StoreError> {
        let now = clock::now_millis();
        let tx = self.conn.savepoint()?;
        let Some(t) = load(&tx, id)? else {
            return Ok(CancelOutcome::NotFound);
        };
        let cancelled = match plan_cancel(&t, now) {
            Ok(Some(c)) => c,
            Ok(None) => return Ok(CancelOutcome::Cancelled(t)),
            Err(()) => return Ok(CancelOutcome::Conflict(t)),
        };
        update(&tx, &cancelled, now, None)?;
        feed(&tx, &cancelled, now)?;
        let target = format!("/transfers/{id}");
        let (before, after) = (json_text(&t)?, json_text(&cancelled)?);
        insert_audit(&tx, now, ACTION_TRANSFER_CANCEL, &target, Some(&before), &after)?;
        tx.commit()?;
        Ok(CancelOutcome::Cancelled(cancelled))
    }
}

/// Applies a push's transfer steps in seq order, inside the push's savepoint: each step's
/// transfer, feed entries and `transfer_events` row, its ledger change added to `deltas`.
/// Returns the first impossible step as `(seq, message)`; the caller then drops the
/// savepoint, so nothing of the push is applied.
pub(super) fn apply_steps<'e>(
    tx: &Connection,
    key: i64,
    branch: &str,
    events: &'e [Event],
    now: i64,
    deltas: &mut BTreeMap<&'e str, i64>,
    applied: &mut TransfersApplied,
) -> Result<Option<(u64, String)>, StoreError> {
    for e in events {
        let Some(kind) = step_kind(e.kind) else {
            continue;
        };
        let seq = to_i64("seq", e.seq)?;
        let at_ms = clock::parse_rfc3339_millis(&e.occurred_at)
            .ok_or_else(|| StoreError::Database(format!("event {seq}: unparsable occurred_at")))?;
        let id = e.transfer_id.as_deref().unwrap_or_default();
        let t = match plan_step(load(tx, id)?.as_ref(), branch, e, at_ms) {
            Ok(t) => t,
            Err(why) => return Ok(Some((e.seq, conflict_message(e, &why)))),
        };
        update(tx, &t, now, Some((kind, seq)))?;
        feed(tx, &t, now)?;
        tx.prepare_cached(
            "INSERT INTO transfer_events(branch_key, seq, kind, transfer_id, lines, occurred_ms, received_ms, user_id) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            key,
            seq,
            kind,
            id,
            step_lines_text(e)?,
            at_ms,
            now,
            e.user_id.as_ref().map(|u| u.as_str())
        ])?;
        ledger_deltas(e, deltas, applied);
    }
    Ok(None)
}

/// The transfer steps a branch pushed in a seq range, as applied (for the duplicate check).
pub(super) fn applied_steps(
    tx: &Connection,
    range: &[&dyn rusqlite::ToSql],
    out: &mut HashMap<u64, AppliedEvent>,
) -> Result<(), StoreError> {
    let mut stmt = tx.prepare_cached(
        "SELECT seq, kind, transfer_id, lines, occurred_ms, user_id FROM transfer_events \
         WHERE branch_key = ?1 AND seq BETWEEN ?2 AND ?3",
    )?;
    let rows = stmt.query_map(range, |r| {
        Ok((
            to_u64(r.get(0)?),
            AppliedEvent::TransferStep {
                kind: r.get(1)?,
                transfer_id: r.get(2)?,
                lines: r.get(3)?,
                at_ms: r.get(4)?,
                user_id: r.get(5)?,
            },
        ))
    })?;
    for row in rows {
        let (seq, e) = row?;
        out.insert(seq, e);
    }
    Ok(())
}

/// Transfers matching `filter` (or only `id`), by number (= transfer_id order).
pub(super) fn read_transfers(
    conn: &Connection,
    filter: &TransferFilter,
    id: Option<&str>,
) -> Result<Vec<Transfer>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT transfer_id, body FROM transfers WHERE (?1 IS NULL OR status = ?1) \
         AND (?2 IS NULL OR from_branch = ?2 OR to_branch = ?2) AND (?3 IS NULL OR transfer_id = ?3) ORDER BY num",
    )?;
    let rows = stmt.query_map(
        params![
            filter.status.map(TransferStatus::as_str),
            filter.branch.as_ref().map(|b| b.as_str()),
            id
        ],
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
    )?;
    let mut out = Vec::new();
    for row in rows {
        let (id, body) = row?;
        out.push(decode(&id, &body)?);
    }
    Ok(out)
}

/// Every transfer now in transit (for the inventory and the gauges).
pub(super) fn in_transit(conn: &Connection) -> Result<Vec<Transfer>, StoreError> {
    let filter = TransferFilter {
        status: Some(TransferStatus::InTransit),
        branch: None,
    };
    read_transfers(conn, &filter, None)
}
