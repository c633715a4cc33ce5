//! The writes, each one transaction: a push applied exactly once (its branch row locked),
//! a catalog upsert, an allocation and a user put (each taking the next feed cursor under
//! the feed lock, and recording its audit entry).
use super::catalog::{lookup_key, record_key};
use super::reads::{user_row, SELECT_USERS};
use super::till::TillColumns;
use super::{PgStore, KIND_ALLOCATION, KIND_USER};
use crate::store::catalog::{allocation_answer, IdempotencyKey, Idempotent};
use crate::store::common::{
    encode_lines, first_mismatch, json_text, plan_user_put, to_i64, to_u64, AppliedEvent, UserPlan,
    ACTION_ALLOCATION_CREATE, ACTION_USER_PUT, ACTOR_ADMIN,
};
use crate::store::till::payments_text;
use crate::store::{
    AllocationOutcome, PushOutcome, StoreError, TillApplied, TransfersApplied, UserChange, UserOutcome,
};
use colmena_shared::clock;
use colmena_shared::ids::{BranchId, ProductId};
use colmena_shared::users::User;
use colmena_shared::wire::{AllocationResponse, Event, EventKind};
use futures::future::{try_join_all, BoxFuture};
use std::collections::{BTreeMap, HashMap};
use tokio_postgres::types::ToSql;

/// The branch's key and `applied_through`, its row locked until the transaction ends;
/// created first if it is new.
async fn lock_branch(tx: &deadpool_postgres::Transaction<'_>, branch: &str) -> Result<(i64, i64), StoreError> {
    let select = tx
        .prepare_cached("SELECT branch_key, applied_through FROM branches WHERE branch_id = $1 FOR UPDATE")
        .await?;
    // Select first: the insert would take (and waste) an identity value on every push.
    if let Some(r) = tx.query_opt(&select, &[&branch]).await? {
        return Ok((r.try_get(0)?, r.try_get(1)?));
    }
    let insert = tx
        .prepare_cached("INSERT INTO branches(branch_id) VALUES ($1) ON CONFLICT (branch_id) DO NOTHING")
        .await?;
    tx.execute(&insert, &[&branch]).await?;
    // A concurrent creator's row is visible to this new statement once it committed.
    let r = tx.query_one(&select, &[&branch]).await?;
    Ok((r.try_get(0)?, r.try_get(1)?))
}

/// Locks the feed counter and returns the last cursor handed out (see the module doc).
pub(super) async fn lock_feed(tx: &deadpool_postgres::Transaction<'_>) -> Result<i64, StoreError> {
    let stmt = tx
        .prepare_cached("SELECT last_cursor FROM feed_counter WHERE id = 1 FOR UPDATE")
        .await?;
    Ok(tx.query_one(&stmt, &[]).await?.try_get(0)?)
}

pub(super) async fn take_cursor(tx: &deadpool_postgres::Transaction<'_>, cursor: i64) -> Result<(), StoreError> {
    let stmt = tx
        .prepare_cached("UPDATE feed_counter SET last_cursor = $1 WHERE id = 1")
        .await?;
    tx.execute(&stmt, &[&cursor]).await?;
    Ok(())
}

/// One push's rows, column by column, ready to be bound as arrays.
#[derive(Default)]
struct PushColumns<'a> {
    sale_seq: Vec<i64>,
    sale_id: Vec<&'a str>,
    sale_sold: Vec<i64>,
    sale_total: Vec<i64>,
    sale_cashier: Vec<Option<&'a str>>,
    sale_lines: Vec<String>,
    sale_shift: Vec<Option<&'a str>>,
    sale_payments: Vec<Option<String>>,
    adj_seq: Vec<i64>,
    adj_product: Vec<&'a str>,
    adj_delta: Vec<i64>,
    adj_reason: Vec<Option<&'a str>>,
    adj_occurred: Vec<i64>,
    adj_user: Vec<Option<&'a str>>,
    /// Per-product ledger change of the whole batch: one upsert row per product touched.
    deltas: BTreeMap<&'a str, i64>,
    till: TillColumns<'a>,
}

impl<'a> PushColumns<'a> {
    fn from_events(events: &'a [Event], till: &mut TillApplied) -> Result<PushColumns<'a>, StoreError> {
        let mut c = PushColumns::default();
        let mut buf = Vec::with_capacity(256);
        for e in events {
            let seq = to_i64("seq", e.seq)?;
            let occurred = clock::parse_rfc3339_millis(&e.occurred_at)
                .ok_or_else(|| StoreError::Database(format!("event {seq}: unparsable occurred_at")))?;
            match e.kind {
                EventKind::Sale => {
                    let lines = e.lines.as_deref().unwrap_or_default();
                    encode_lines(&mut buf, lines);
                    let encoded =
                        String::from_utf8(buf.clone()).map_err(|e| StoreError::Corrupt(format!("sale lines: {e}")))?;
                    c.sale_seq.push(seq);
                    c.sale_id.push(e.sale_id.as_deref().unwrap_or_default());
                    c.sale_sold.push(occurred);
                    c.sale_total.push(e.total_cents.unwrap_or_default());
                    c.sale_cashier.push(e.cashier_id.as_deref());
                    c.sale_lines.push(encoded);
                    c.sale_shift.push(e.shift_id.as_deref());
                    c.sale_payments.push(payments_text(e.payments.as_deref())?);
                    for l in lines {
                        *c.deltas.entry(l.product_id.as_str()).or_default() -= l.quantity;
                    }
                }
                EventKind::Adjustment => {
                    let product = e.product_id.as_ref().map(ProductId::as_str).unwrap_or_default();
                    let delta = e.quantity_delta.unwrap_or_default();
                    c.adj_seq.push(seq);
                    c.adj_product.push(product);
                    c.adj_delta.push(delta);
                    c.adj_reason.push(e.reason.as_deref());
                    c.adj_occurred.push(occurred);
                    c.adj_user.push(e.user_id.as_ref().map(|u| u.as_str()));
                    *c.deltas.entry(product).or_default() += delta;
                }
                EventKind::ShiftOpened | EventKind::CashMovement | EventKind::ShiftClosed | EventKind::Return => {
                    c.till.push(e, seq, occurred, &mut c.deltas, till)?;
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
        Ok(c)
    }
}

const INSERT_SALES: &str =
    "INSERT INTO sales(branch_key, seq, sale_id, sold_ms, received_ms, total_cents, cashier_id, lines) \
     SELECT $1, s.seq, s.sale_id, s.sold_ms, $2, s.total_cents, s.cashier_id, s.lines \
     FROM UNNEST($3::int8[], $4::text[], $5::int8[], $6::int8[], $7::text[], $8::text[]) \
     AS s(seq, sale_id, sold_ms, total_cents, cashier_id, lines)";
/// [`INSERT_SALES`] for a push with a sale in a shift or with payments: a push of plain
/// sales binds exactly what it did before the till existed.
const INSERT_TILL_SALES: &str =
    "INSERT INTO sales(branch_key, seq, sale_id, sold_ms, received_ms, total_cents, cashier_id, lines, shift_id, \
     payments) \
     SELECT $1, s.seq, s.sale_id, s.sold_ms, $2, s.total_cents, s.cashier_id, s.lines, s.shift_id, s.payments \
     FROM UNNEST($3::int8[], $4::text[], $5::int8[], $6::int8[], $7::text[], $8::text[], $9::text[], $10::text[]) \
     AS s(seq, sale_id, sold_ms, total_cents, cashier_id, lines, shift_id, payments)";
const INSERT_ADJUSTMENTS: &str =
    "INSERT INTO adjustments(branch_key, seq, product_id, quantity_delta, reason, occurred_ms, received_ms, \
     user_id) \
     SELECT $1, a.seq, a.product_id, a.delta, a.reason, a.occurred_ms, $2, a.user_id \
     FROM UNNEST($3::int8[], $4::text[], $5::int8[], $6::text[], $7::int8[], $8::text[]) \
     AS a(seq, product_id, delta, reason, occurred_ms, user_id)";
/// What central stored of a branch's events in a seq range (compared with a push's
/// duplicates).
const SELECT_APPLIED_SALES: &str = "SELECT seq, sale_id, sold_ms, total_cents, cashier_id, lines, shift_id, \
     payments FROM sales WHERE branch_key = $1 AND seq BETWEEN $2 AND $3";
const SELECT_APPLIED_ADJUSTMENTS: &str = "SELECT seq, product_id, quantity_delta, reason, occurred_ms, user_id \
     FROM adjustments WHERE branch_key = $1 AND seq BETWEEN $2 AND $3";
// Products come sorted (a BTreeMap), so concurrent upserts lock rows in one order.
const UPSERT_STOCK: &str = "INSERT INTO stock(branch_key, product_id, stock) \
     SELECT $1, d.product_id, d.delta FROM UNNEST($2::text[], $3::int8[]) AS d(product_id, delta) \
     ON CONFLICT (branch_key, product_id) DO UPDATE SET stock = stock.stock + excluded.stock";
const ADVANCE_BRANCH: &str = "UPDATE branches SET applied_through = $2, last_push_ms = $3, \
     events_applied = events_applied + $4, sales_count = sales_count + $5 WHERE branch_key = $1";

/// How the branch row moves with a push.
struct Advance {
    through: i64,
    now: i64,
    applied: i64,
    sales: i64,
}

/// Writes a push's sales, adjustments and ledger change and advances its branch: at most 4
/// statements, prepared before any is sent, so they go out together and are answered in one
/// round trip (tokio-postgres pipelines concurrent requests).
async fn write_push(
    tx: &deadpool_postgres::Transaction<'_>,
    key: i64,
    cols: &PushColumns<'_>,
    a: Advance,
) -> Result<(), StoreError> {
    let products: Vec<&str> = cols.deltas.keys().copied().collect();
    let deltas: Vec<i64> = cols.deltas.values().copied().collect();
    let advance = tx.prepare_cached(ADVANCE_BRANCH).await?;
    let till_sales = cols.sale_shift.iter().any(Option::is_some) || cols.sale_payments.iter().any(Option::is_some);
    let insert_sales = match (cols.sale_seq.is_empty(), till_sales) {
        (true, _) => None,
        (false, false) => Some(tx.prepare_cached(INSERT_SALES).await?),
        (false, true) => Some(tx.prepare_cached(INSERT_TILL_SALES).await?),
    };
    let insert_adjustments = match cols.adj_seq.is_empty() {
        true => None,
        false => Some(tx.prepare_cached(INSERT_ADJUSTMENTS).await?),
    };
    let upsert_stock = match products.is_empty() {
        true => None,
        false => Some(tx.prepare_cached(UPSERT_STOCK).await?),
    };
    let sale_params: [&(dyn ToSql + Sync); 10] = [
        &key,
        &a.now,
        &cols.sale_seq,
        &cols.sale_id,
        &cols.sale_sold,
        &cols.sale_total,
        &cols.sale_cashier,
        &cols.sale_lines,
        &cols.sale_shift,
        &cols.sale_payments,
    ];
    let adjustment_params: [&(dyn ToSql + Sync); 8] = [
        &key,
        &a.now,
        &cols.adj_seq,
        &cols.adj_product,
        &cols.adj_delta,
        &cols.adj_reason,
        &cols.adj_occurred,
        &cols.adj_user,
    ];
    let stock_params: [&(dyn ToSql + Sync); 3] = [&key, &products, &deltas];
    let advance_params: [&(dyn ToSql + Sync); 5] = [&key, &a.through, &a.now, &a.applied, &a.sales];
    let mut statements: Vec<BoxFuture<'_, Result<u64, tokio_postgres::Error>>> = Vec::with_capacity(4);
    if let Some(stmt) = &insert_sales {
        let bound = if till_sales {
            &sale_params[..]
        } else {
            &sale_params[..8]
        };
        statements.push(Box::pin(tx.execute(stmt, bound)));
    }
    if let Some(stmt) = &insert_adjustments {
        statements.push(Box::pin(tx.execute(stmt, &adjustment_params)));
    }
    if let Some(stmt) = &upsert_stock {
        statements.push(Box::pin(tx.execute(stmt, &stock_params)));
    }
    statements.push(Box::pin(tx.execute(&advance, &advance_params)));
    try_join_all(statements).await?;
    Ok(())
}

/// The first of a push's duplicates (`dups`, at or below `at`) that is not the event
/// stored under its seq, if any.
async fn first_mismatch_in(
    tx: &tokio_postgres::Transaction<'_>,
    key: i64,
    dups: &[Event],
    at: u64,
) -> Result<Option<u64>, StoreError> {
    let Some(first) = dups.first() else {
        return Ok(None);
    };
    let range = [to_i64("seq", first.seq)?, to_i64("seq", at)?];
    let params: [&(dyn ToSql + Sync); 3] = [&key, &range[0], &range[1]];
    let mut stored = HashMap::new();
    for r in tx.query(SELECT_APPLIED_SALES, &params).await? {
        let sale = AppliedEvent::Sale {
            sale_id: r.try_get(1)?,
            at_ms: r.try_get(2)?,
            total_cents: r.try_get(3)?,
            cashier_id: r.try_get(4)?,
            lines: r.try_get(5)?,
            shift_id: r.try_get(6)?,
            payments: r.try_get(7)?,
        };
        stored.insert(to_u64(r.try_get(0)?), sale);
    }
    for r in tx.query(SELECT_APPLIED_ADJUSTMENTS, &params).await? {
        let adjustment = AppliedEvent::Adjustment {
            product_id: r.try_get(1)?,
            quantity_delta: r.try_get(2)?,
            reason: r.try_get(3)?,
            at_ms: r.try_get(4)?,
            user_id: r.try_get(5)?,
        };
        stored.insert(to_u64(r.try_get(0)?), adjustment);
    }
    super::till::applied_till_events(tx, &params, &mut stored).await?;
    super::transfers::applied_steps(tx, &params, &mut stored).await?;
    first_mismatch(dups, &stored)
}

impl PgStore {
    pub(super) async fn apply_push_inner(
        &self,
        branch: &BranchId,
        events: &[Event],
    ) -> Result<PushOutcome, StoreError> {
        let now = clock::now_millis();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let (key, at) = lock_branch(&tx, branch.as_str()).await?;
        let at = to_u64(at);
        // Events are strictly increasing, so the duplicates are a prefix.
        let first_new = events.partition_point(|e| e.seq <= at);
        let (dups, new) = events.split_at(first_new);
        if let Some(first) = new.first() {
            let continues = first.seq == at + 1 && new.windows(2).all(|w| w[1].seq == w[0].seq + 1);
            if !continues {
                let _ = tx.rollback().await;
                return Ok(PushOutcome::Gap { applied_through: at });
            }
        }
        if let Some(seq) = first_mismatch_in(&tx, key, dups, at).await? {
            let _ = tx.rollback().await;
            return Ok(PushOutcome::Mismatch {
                seq,
                applied_through: at,
            });
        }
        let mut till = TillApplied::default();
        let mut cols = PushColumns::from_events(new, &mut till)?;
        let mut transfers = TransfersApplied::default();
        // Only a push carrying transfer steps reads or writes anything more (and takes the
        // feed lock, after its branch row).
        if crate::store::transfers::has_steps(new) {
            let steps =
                super::transfers::apply_steps(&tx, key, branch.as_str(), new, now, &mut cols.deltas, &mut transfers)
                    .await?;
            if let Some((seq, message)) = steps {
                let _ = tx.rollback().await;
                return Ok(PushOutcome::TransferConflict {
                    seq,
                    message,
                    applied_through: at,
                });
            }
        }
        let shifts = super::till::move_shifts(&tx, key, new, &mut till).await?;
        let applied_through = new.last().map_or(at, |e| e.seq);
        let advance = Advance {
            through: to_i64("seq", applied_through)?,
            now,
            applied: new.len() as i64,
            sales: cols.sale_seq.len() as i64,
        };
        futures::try_join!(
            write_push(&tx, key, &cols, advance),
            super::till::write(&tx, key, now, &cols.till, shifts),
            super::reports::write_push(&tx, key, new),
        )?;
        tx.commit().await?;
        Ok(PushOutcome::Applied {
            applied_through,
            applied: new.len() as u64,
            duplicates: dups.len() as u64,
            till,
            transfers,
        })
    }

    pub(super) async fn allocate_inner(
        &self,
        branch: &str,
        product: &str,
        quantity: i64,
        idempotency: Option<&IdempotencyKey>,
    ) -> Result<Idempotent<AllocationOutcome>, StoreError> {
        let now = clock::now_millis();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // Taken first: it serialises this with every other admin write (see catalog.rs).
        let last = lock_feed(&tx).await?;
        if let Some(k) = idempotency {
            if let Some(answer) = lookup_key(&tx, k, now).await? {
                let _ = tx.rollback().await;
                return Ok(answer);
            }
        }
        let key = tx
            .query_opt(
                &tx.prepare_cached("SELECT branch_key FROM branches WHERE branch_id = $1")
                    .await?,
                &[&branch],
            )
            .await?;
        let Some(key) = key else {
            let _ = tx.rollback().await;
            return Ok(Idempotent::Fresh(AllocationOutcome::UnknownBranch));
        };
        let key: i64 = key.try_get(0)?;
        let known = tx
            .query_opt(
                &tx.prepare_cached("SELECT 1 FROM products WHERE product_id = $1")
                    .await?,
                &[&product],
            )
            .await?;
        if known.is_none() {
            let _ = tx.rollback().await;
            return Ok(Idempotent::Fresh(AllocationOutcome::UnknownProduct));
        }
        let cursor = last + 1;
        take_cursor(&tx, cursor).await?;
        tx.execute(
            &tx.prepare_cached(
                "INSERT INTO changes(cursor, kind, product_id, branch_key, quantity, created_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .await?,
            &[&cursor, &KIND_ALLOCATION, &product, &key, &quantity, &now],
        )
        .await?;
        let branch_stock: i64 = tx
            .query_one(
                &tx.prepare_cached(
                    "INSERT INTO stock(branch_key, product_id, stock) VALUES ($1, $2, $3) \
                     ON CONFLICT (branch_key, product_id) DO UPDATE SET stock = stock.stock + excluded.stock \
                     RETURNING stock",
                )
                .await?,
                &[&key, &product, &quantity],
            )
            .await?
            .try_get(0)?;
        let done = AllocationResponse {
            branch_id: branch.to_string(),
            product_id: product.to_string(),
            quantity,
            cursor: to_u64(cursor),
            branch_stock,
        };
        let target = format!("/branches/{branch}/allocations");
        insert_audit(&tx, now, ACTION_ALLOCATION_CREATE, &target, None, &json_text(&done)?).await?;
        let outcome = AllocationOutcome::Allocated(done);
        if let Some(k) = idempotency {
            record_key(&tx, k, allocation_answer(&outcome)?, now).await?;
        }
        tx.commit().await?;
        Ok(Idempotent::Fresh(outcome))
    }

    pub(super) async fn put_user_inner(&self, change: UserChange) -> Result<UserOutcome, StoreError> {
        let now = clock::now_millis();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // Every feed writer holds this lock, so the user read next is the latest committed.
        let last = lock_feed(&tx).await?;
        if let Some(unknown) = unknown_branch(&tx, &change.branches).await? {
            let _ = tx.rollback().await;
            return Ok(UserOutcome::UnknownBranch(unknown));
        }
        let old = tx
            .query_opt(
                &tx.prepare_cached(&format!("{SELECT_USERS} WHERE user_id = $1")).await?,
                &[&change.user_id.as_str()],
            )
            .await?;
        let old = old.as_ref().map(user_row).transpose()?;
        let (record, before, audience) = match plan_user_put(old.as_ref(), change)? {
            UserPlan::Answer(outcome) => {
                let _ = tx.rollback().await;
                return Ok(outcome);
            }
            UserPlan::Write {
                record,
                before,
                audience,
            } => (record, before, audience),
        };
        let (id, version) = (record.user_id.as_str(), to_i64("version", record.version)?);
        let (branches, payload) = (json_text(&record.branches)?, json_text(&record)?);
        tx.execute(
            &tx.prepare_cached(
                "INSERT INTO users(user_id, name, role, branches, active, pin_hash, version, updated_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (user_id) DO UPDATE SET name = excluded.name, role = excluded.role, \
                 branches = excluded.branches, active = excluded.active, pin_hash = excluded.pin_hash, \
                 version = excluded.version, updated_ms = excluded.updated_ms",
            )
            .await?,
            &[
                &id,
                &record.name,
                &record.role.as_str(),
                &branches,
                &record.active,
                &record.pin_hash,
                &version,
                &now,
            ],
        )
        .await?;
        let cursor = last + 1;
        take_cursor(&tx, cursor).await?;
        tx.execute(
            &tx.prepare_cached(
                "INSERT INTO changes(cursor, kind, product_id, user_id, payload, audience, version, created_ms) \
                 VALUES ($1, $2, '', $3, $4, $5, $6, $7)",
            )
            .await?,
            &[&cursor, &KIND_USER, &id, &payload, &audience, &version, &now],
        )
        .await?;
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
        )
        .await?;
        tx.commit().await?;
        Ok(UserOutcome::Saved(saved))
    }
}

/// The first of `branches` (but `*`) central does not know, if any.
async fn unknown_branch(
    tx: &deadpool_postgres::Transaction<'_>,
    branches: &[String],
) -> Result<Option<String>, StoreError> {
    let named: Vec<&str> = branches.iter().map(String::as_str).filter(|b| *b != "*").collect();
    let stmt = tx
        .prepare_cached("SELECT branch_id FROM branches WHERE branch_id = ANY($1::text[])")
        .await?;
    let known = tx.query(&stmt, &[&named]).await?;
    let known: Vec<String> = known.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?;
    Ok(named
        .into_iter()
        .find(|b| !known.iter().any(|k| k == b))
        .map(str::to_string))
}

/// Records an admin change in the audit trail, in the change's own transaction (which holds
/// the feed lock, so audit ids follow commit order).
pub(super) async fn insert_audit(
    tx: &deadpool_postgres::Transaction<'_>,
    now: i64,
    action: &str,
    target: &str,
    before: Option<&str>,
    after: &str,
) -> Result<(), StoreError> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO audit(at_ms, actor, action, target, before, after) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .await?;
    tx.execute(&stmt, &[&now, &ACTOR_ADMIN, &action, &target, &before, &after])
        .await?;
    Ok(())
}
