//! What each write job does inside its savepoint: a push applied exactly once, a catalog
//! upsert, an allocation, a user put (each admin change with its audit entry), the
//! configured branches.
use super::catalog::{lookup_key, record_key};
use super::writer::{Buffers, Writer};
use super::{KIND_ALLOCATION, KIND_USER};
use crate::store::catalog::{allocation_answer, IdempotencyKey, Idempotent};
use crate::store::common::{
    corrupt, encode_lines, first_mismatch, json_text, plan_user_put, to_i64, to_u64, AppliedEvent, UserPlan, UserRow,
    ACTION_ALLOCATION_CREATE, ACTION_USER_PUT, ACTOR_ADMIN,
};
use crate::store::till::encode_payments;
use crate::store::{
    AllocationOutcome, PushOutcome, StoreError, TillApplied, TransfersApplied, UserChange, UserOutcome,
};
use colmena_shared::clock;
use colmena_shared::ids::{BranchId, ProductId};
use colmena_shared::users::User;
use colmena_shared::wire::{AllocationResponse, Event, EventKind};
use rusqlite::{params, Connection, OptionalExtension, ToSql};
use std::collections::{BTreeMap, HashMap};

impl Writer {
    /// The branch's key and `applied_through`, creating the branch if it is new.
    pub(super) fn branch(conn: &Connection, branch: &str) -> Result<(i64, i64), StoreError> {
        let found = conn
            .prepare_cached("SELECT branch_key, applied_through FROM branches WHERE branch_id = ?1")?
            .query_row([branch], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        if let Some(found) = found {
            return Ok(found);
        }
        conn.prepare_cached("INSERT INTO branches(branch_id) VALUES (?1)")?
            .execute([branch])?;
        Ok((conn.last_insert_rowid(), 0))
    }

    pub(super) fn apply_push(
        &mut self,
        branch: &BranchId,
        events: &[Event],
        rollups: Option<&crate::store::reports::Prepared>,
    ) -> Result<PushOutcome, StoreError> {
        let now = clock::now_millis();
        let tx = self.conn.savepoint()?;
        let (key, at) = Self::branch(&tx, branch.as_str())?;
        let at = to_u64(at);
        // Events are strictly increasing, so the duplicates are a prefix.
        let first_new = events.partition_point(|e| e.seq <= at);
        let (dups, new) = events.split_at(first_new);
        if let Some(first) = new.first() {
            let continues = first.seq == at + 1 && new.windows(2).all(|w| w[1].seq == w[0].seq + 1);
            if !continues {
                return Ok(PushOutcome::Gap { applied_through: at }); // dropping tx rolls back
            }
        }
        if let Some(seq) = Self::first_mismatch_in(&tx, key, dups, at)? {
            return Ok(PushOutcome::Mismatch {
                seq,
                applied_through: at,
            });
        }
        let mut deltas: BTreeMap<&str, i64> = BTreeMap::new();
        let mut transfers = TransfersApplied::default();
        // Only a push carrying transfer steps reads or writes anything more.
        if crate::store::transfers::has_steps(new) {
            let steps =
                super::transfers::apply_steps(&tx, key, branch.as_str(), new, now, &mut deltas, &mut transfers)?;
            if let Some((seq, message)) = steps {
                return Ok(PushOutcome::TransferConflict {
                    seq,
                    message,
                    applied_through: at,
                }); // dropping tx rolls back
            }
        }
        let mut till = TillApplied::default();
        let sales = insert_events(&tx, &mut self.bufs, key, now, new, &mut deltas, &mut till)?;
        {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO stock(product_id, branch_key, stock) VALUES (?1, ?2, ?3) \
                 ON CONFLICT(branch_key, product_id) DO UPDATE SET stock = stock + excluded.stock",
            )?;
            for (product, delta) in &deltas {
                upsert.execute(params![product, key, delta])?;
            }
        }
        super::till::move_shifts(&tx, key, new, &mut till)?;
        super::reports::write_push(&tx, key, new, dups.is_empty(), rollups)?;
        let applied_through = new.last().map_or(at, |e| e.seq);
        tx.prepare_cached(
            "UPDATE branches SET applied_through = ?2, last_push_ms = ?3, \
             events_applied = events_applied + ?4, sales_count = sales_count + ?5 WHERE branch_key = ?1",
        )?
        .execute(params![
            key,
            to_i64("seq", applied_through)?,
            now,
            new.len() as i64,
            sales
        ])?;
        crate::failpoints::push_before_commit();
        tx.commit()?;
        Ok(PushOutcome::Applied {
            applied_through,
            applied: new.len() as u64,
            duplicates: dups.len() as u64,
            till,
            transfers,
        })
    }

    /// The first of a push's duplicates (`dups`, at or below `at`) that is not the event
    /// stored under its seq, if any.
    fn first_mismatch_in(tx: &Connection, key: i64, dups: &[Event], at: u64) -> Result<Option<u64>, StoreError> {
        let Some(first) = dups.first() else {
            return Ok(None);
        };
        let range = params![key, to_i64("seq", first.seq)?, to_i64("seq", at)?];
        let mut out = HashMap::new();
        let mut sales = tx.prepare_cached(
            "SELECT seq, sale_id, sold_ms, total_cents, cashier_id, lines, shift_id, payments FROM sales \
             WHERE branch_key = ?1 AND seq BETWEEN ?2 AND ?3",
        )?;
        let rows = sales.query_map(range, |r| {
            Ok((
                to_u64(r.get(0)?),
                AppliedEvent::Sale {
                    sale_id: r.get(1)?,
                    at_ms: r.get(2)?,
                    total_cents: r.get(3)?,
                    cashier_id: r.get(4)?,
                    lines: r.get(5)?,
                    shift_id: r.get(6)?,
                    payments: r.get(7)?,
                },
            ))
        })?;
        for row in rows {
            let (seq, e) = row?;
            out.insert(seq, e);
        }
        let mut adjustments = tx.prepare_cached(
            "SELECT seq, product_id, quantity_delta, reason, occurred_ms, user_id FROM adjustments \
             WHERE branch_key = ?1 AND seq BETWEEN ?2 AND ?3",
        )?;
        let rows = adjustments.query_map(range, |r| {
            Ok((
                to_u64(r.get(0)?),
                AppliedEvent::Adjustment {
                    product_id: r.get(1)?,
                    quantity_delta: r.get(2)?,
                    reason: r.get(3)?,
                    at_ms: r.get(4)?,
                    user_id: r.get(5)?,
                },
            ))
        })?;
        for row in rows {
            let (seq, e) = row?;
            out.insert(seq, e);
        }
        super::till::applied_till_events(tx, range, &mut out)?;
        super::transfers::applied_steps(tx, range, &mut out)?;
        first_mismatch(dups, &out)
    }

    pub(super) fn allocate(
        &mut self,
        branch: &str,
        product: &str,
        quantity: i64,
        idempotency: Option<&IdempotencyKey>,
    ) -> Result<Idempotent<AllocationOutcome>, StoreError> {
        let now = clock::now_millis();
        let tx = self.conn.savepoint()?;
        if let Some(k) = idempotency {
            if let Some(answer) = lookup_key(&tx, k, now)? {
                return Ok(answer); // dropping tx rolls the purge back: nothing changed
            }
        }
        let outcome = allocate_in(&tx, branch, product, quantity, now)?;
        if let Some(k) = idempotency {
            record_key(&tx, k, allocation_answer(&outcome)?, now)?;
        }
        tx.commit()?;
        Ok(Idempotent::Fresh(outcome))
    }

    pub(super) fn put_user(&mut self, change: UserChange) -> Result<UserOutcome, StoreError> {
        let now = clock::now_millis();
        let tx = self.conn.savepoint()?;
        for b in change.branches.iter().filter(|b| *b != "*") {
            let known: Option<i64> = tx
                .prepare_cached("SELECT 1 FROM branches WHERE branch_id = ?1")?
                .query_row([b], |r| r.get(0))
                .optional()?;
            if known.is_none() {
                return Ok(UserOutcome::UnknownBranch(b.clone()));
            }
        }
        let old = tx
            .prepare_cached(
                "SELECT user_id, name, role, branches, active, pin_hash, version, updated_ms FROM users WHERE user_id = ?1",
            )?
            .query_row([change.user_id.as_str()], user_row)
            .optional()?;
        let (record, before, audience) = match plan_user_put(old.as_ref(), change)? {
            UserPlan::Answer(outcome) => return Ok(outcome),
            UserPlan::Write {
                record,
                before,
                audience,
            } => (record, before, audience),
        };
        let (id, version) = (record.user_id.as_str(), to_i64("version", record.version)?);
        let branches = json_text(&record.branches)?;
        tx.prepare_cached(
            "INSERT INTO users(user_id, name, role, branches, active, pin_hash, version, updated_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
             ON CONFLICT(user_id) DO UPDATE SET name = excluded.name, role = excluded.role, \
             branches = excluded.branches, active = excluded.active, pin_hash = excluded.pin_hash, \
             version = excluded.version, updated_ms = excluded.updated_ms",
        )?
        .execute(params![
            id,
            record.name,
            record.role.as_str(),
            branches,
            record.active,
            record.pin_hash,
            version,
            now
        ])?;
        tx.prepare_cached(
            "INSERT INTO changes(kind, product_id, user_id, payload, audience, version, created_ms) \
             VALUES (?1, '', ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![KIND_USER, id, json_text(&record)?, audience, version, now])?;
        let saved = User::from_record(&record, clock::millis_to_rfc3339(now));
        let before = before.as_ref().map(json_text).transpose()?;
        let target = format!("/users/{id}");
        insert_audit(
            &tx,
            now,
            ACTION_USER_PUT,
            &target,
            before.as_deref(),
            &json_text(&saved)?,
        )?;
        tx.commit()?;
        Ok(UserOutcome::Saved(saved))
    }

    pub(super) fn ensure_branches(&mut self, branches: &[BranchId]) -> Result<(), StoreError> {
        let tx = self.conn.savepoint()?;
        {
            let mut insert = tx.prepare_cached("INSERT OR IGNORE INTO branches(branch_id) VALUES (?1)")?;
            for b in branches {
                insert.execute([b.as_str()])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

/// An allocation inside the caller's savepoint (which the caller commits).
fn allocate_in(
    tx: &Connection,
    branch: &str,
    product: &str,
    quantity: i64,
    now: i64,
) -> Result<AllocationOutcome, StoreError> {
    let key: Option<i64> = tx
        .prepare_cached("SELECT branch_key FROM branches WHERE branch_id = ?1")?
        .query_row([branch], |r| r.get(0))
        .optional()?;
    let Some(key) = key else {
        return Ok(AllocationOutcome::UnknownBranch);
    };
    let known: Option<i64> = tx
        .prepare_cached("SELECT 1 FROM products WHERE product_id = ?1")?
        .query_row([product], |r| r.get(0))
        .optional()?;
    if known.is_none() {
        return Ok(AllocationOutcome::UnknownProduct);
    }
    tx.prepare_cached(
        "INSERT INTO changes(kind, product_id, branch_key, quantity, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![KIND_ALLOCATION, product, key, quantity, now])?;
    let cursor = tx.last_insert_rowid();
    let branch_stock: i64 = tx
        .prepare_cached(
            "INSERT INTO stock(product_id, branch_key, stock) VALUES (?1, ?2, ?3) \
             ON CONFLICT(branch_key, product_id) DO UPDATE SET stock = stock + excluded.stock RETURNING stock",
        )?
        .query_row(params![product, key, quantity], |r| r.get(0))?;
    let done = AllocationResponse {
        branch_id: branch.to_string(),
        product_id: product.to_string(),
        quantity,
        cursor: to_u64(cursor),
        branch_stock,
    };
    let target = format!("/branches/{branch}/allocations");
    insert_audit(tx, now, ACTION_ALLOCATION_CREATE, &target, None, &json_text(&done)?)?;
    Ok(AllocationOutcome::Allocated(done))
}

/// A sale in a shift or with payments.
const INSERT_TILL_SALE: &str = "INSERT INTO sales(branch_key, seq, sale_id, sold_ms, received_ms, total_cents, \
     cashier_id, lines, shift_id, payments) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

/// Inserts a push's new events (the ledger's per-product change is added to `deltas`, the
/// till's counts to `till`); returns how many were sales. Sales and adjustments are the
/// hot path: one cached statement each, no allocation per event.
fn insert_events<'e>(
    tx: &Connection,
    bufs: &mut Buffers,
    key: i64,
    now: i64,
    events: &'e [Event],
    deltas: &mut BTreeMap<&'e str, i64>,
    till: &mut TillApplied,
) -> Result<i64, StoreError> {
    let mut insert_sale = tx.prepare_cached(
        "INSERT INTO sales(branch_key, seq, sale_id, sold_ms, received_ms, total_cents, cashier_id, lines) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    let mut insert_adjustment = tx.prepare_cached(
        "INSERT INTO adjustments(branch_key, seq, product_id, quantity_delta, reason, occurred_ms, received_ms, \
         user_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    let mut sales = 0i64;
    for e in events {
        let seq = to_i64("seq", e.seq)?;
        let occurred = clock::parse_rfc3339_millis(&e.occurred_at)
            .ok_or_else(|| StoreError::Database(format!("event {seq}: unparsable occurred_at")))?;
        match e.kind {
            EventKind::Sale => {
                let lines = e.lines.as_deref().unwrap_or_default();
                encode_lines(&mut bufs.lines, lines);
                let encoded = std::str::from_utf8(&bufs.lines).map_err(|e| corrupt(e.to_string()))?;
                let payments = match e.payments.as_deref() {
                    Some(ps) => {
                        encode_payments(&mut bufs.payments, ps);
                        Some(std::str::from_utf8(&bufs.payments).map_err(|e| corrupt(e.to_string()))?)
                    }
                    None => None,
                };
                let (sale_id, total, cashier) = (
                    e.sale_id.as_deref().unwrap_or_default(),
                    e.total_cents.unwrap_or_default(),
                    e.cashier_id.as_deref(),
                );
                let shift = e.shift_id.as_deref();
                let p: [&dyn ToSql; 10] = [
                    &key, &seq, &sale_id, &occurred, &now, &total, &cashier, &encoded, &shift, &payments,
                ];
                // A plain sale binds and writes exactly what it did before the till existed.
                if shift.is_none() && payments.is_none() {
                    insert_sale.execute(&p[..8])?;
                } else {
                    tx.prepare_cached(INSERT_TILL_SALE)?.execute(&p[..])?;
                }
                for l in lines {
                    *deltas.entry(l.product_id.as_str()).or_default() -= l.quantity;
                }
                sales += 1;
            }
            EventKind::Adjustment => {
                let product = e.product_id.as_ref().map(ProductId::as_str).unwrap_or_default();
                let delta = e.quantity_delta.unwrap_or_default();
                insert_adjustment.execute(params![
                    key,
                    seq,
                    product,
                    delta,
                    e.reason.as_deref(),
                    occurred,
                    now,
                    e.user_id.as_ref().map(|u| u.as_str()),
                ])?;
                *deltas.entry(product).or_default() += delta;
            }
            EventKind::ShiftOpened | EventKind::CashMovement | EventKind::ShiftClosed | EventKind::Return => {
                let at = super::till::At {
                    key,
                    seq,
                    occurred,
                    now,
                };
                super::till::insert_event(tx, &mut bufs.lines, at, e, deltas, till)?;
            }
            // Applied before the rest of the push (super::transfers::apply_steps).
            EventKind::TransferDispatched | EventKind::TransferReceived => {}
            // `domain::check_push` refuses it before any store sees it.
            EventKind::Unknown => {
                return Err(StoreError::Database(format!(
                    "event {seq}: kind unknown is not applied here"
                )))
            }
        }
    }
    Ok(sales)
}

/// A `users` row (columns in the order of the SELECTs that use it).
pub(super) fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        user_id: r.get(0)?,
        name: r.get(1)?,
        role: r.get(2)?,
        branches: r.get(3)?,
        active: r.get(4)?,
        pin_hash: r.get(5)?,
        version: r.get(6)?,
        updated_ms: r.get(7)?,
    })
}

/// Records an admin change in the audit trail, inside the change's own savepoint.
pub(super) fn insert_audit(
    tx: &Connection,
    now: i64,
    action: &str,
    target: &str,
    before: Option<&str>,
    after: &str,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO audit(at_ms, actor, action, target, before, after) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![now, ACTOR_ADMIN, action, target, before, after])?;
    Ok(())
}
