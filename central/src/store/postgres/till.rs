//! The till in the PostgreSQL store, as in the SQLite one (`sqlite/till.rs`): its events'
//! rows, the per-shift totals, what a duplicate is compared with, and the reads of
//! `GET /shifts` and `GET /returns`.
//!
//! A push stays a constant number of statements: each till table takes all of the push's
//! rows as `UNNEST` arrays in one statement, sent in the same pipeline as the sales. Only a
//! push that touches a shift pays one more round trip, to read those shifts' rows (under
//! the branch's row lock, so no other push of the branch can move them meanwhile). A push
//! of plain sales sends none of these statements.
use crate::store::common::{encode_lines, json_text, to_i64, to_u64, AppliedEvent};
use crate::store::till::{
    apply_to_shifts, decode_return_lines, movement_text, shift_columns, touched_shifts, ShiftRow,
};
use crate::store::{ReturnsCursor, ReturnsFilter, ReturnsPageData, ShiftsFilter, StoreError, TillApplied};
use colmena_shared::clock;
use colmena_shared::ids::BranchId;
use colmena_shared::till::{CentralReturn, CentralShift, ShiftStatus};
use colmena_shared::wire::{Event, EventKind};
use deadpool_postgres::Transaction;
use futures::future::{try_join_all, BoxFuture};
use std::collections::{BTreeMap, HashMap};
use tokio_postgres::types::ToSql;

/// `shift_events.kind`.
const SHIFT_OPENED: i16 = 0;
const SHIFT_CLOSED: i16 = 1;

/// A push's till rows, column by column (`ret_*` returns, `mov_*` cash movements, `sev_*`
/// shift events), ready to be bound as arrays.
#[derive(Default)]
pub(super) struct TillColumns<'a> {
    ret_seq: Vec<i64>,
    ret_id: Vec<&'a str>,
    ret_sale: Vec<&'a str>,
    ret_ms: Vec<i64>,
    ret_total: Vec<i64>,
    ret_restock: Vec<bool>,
    ret_method: Vec<&'a str>,
    ret_shift: Vec<Option<&'a str>>,
    ret_reason: Vec<Option<&'a str>>,
    ret_user: Vec<Option<&'a str>>,
    ret_lines: Vec<String>,
    mov_seq: Vec<i64>,
    mov_shift: Vec<&'a str>,
    mov_kind: Vec<&'static str>,
    mov_amount: Vec<i64>,
    mov_reason: Vec<Option<&'a str>>,
    mov_ms: Vec<i64>,
    mov_user: Vec<Option<&'a str>>,
    sev_seq: Vec<i64>,
    sev_kind: Vec<i16>,
    sev_shift: Vec<&'a str>,
    sev_ms: Vec<i64>,
    sev_user: Vec<Option<&'a str>>,
    sev_till: Vec<Option<&'a str>>,
    sev_float: Vec<Option<i64>>,
    sev_counted: Vec<Option<i64>>,
    sev_summary: Vec<Option<String>>,
}

impl<'a> TillColumns<'a> {
    /// Adds one till event; a restocking return adds its lines to `deltas`.
    pub(super) fn push(
        &mut self,
        e: &'a Event,
        seq: i64,
        occurred: i64,
        deltas: &mut BTreeMap<&'a str, i64>,
        till: &mut TillApplied,
    ) -> Result<(), StoreError> {
        let user = e.user_id.as_ref().map(|u| u.as_str());
        match e.kind {
            EventKind::Return => {
                let lines = e.lines.as_deref().unwrap_or_default();
                let mut buf = Vec::with_capacity(64);
                encode_lines(&mut buf, lines);
                let restock = e.restock.unwrap_or_default();
                self.ret_seq.push(seq);
                self.ret_id.push(e.return_id.as_deref().unwrap_or_default());
                self.ret_sale.push(e.sale_id.as_deref().unwrap_or_default());
                self.ret_ms.push(occurred);
                self.ret_total.push(e.total_cents.unwrap_or_default());
                self.ret_restock.push(restock);
                self.ret_method.push(e.refund_method.as_deref().unwrap_or_default());
                self.ret_shift.push(e.shift_id.as_deref());
                self.ret_reason.push(e.reason.as_deref());
                self.ret_user.push(user);
                self.ret_lines
                    .push(String::from_utf8(buf).map_err(|x| StoreError::Corrupt(x.to_string()))?);
                if restock {
                    for l in lines {
                        *deltas.entry(l.product_id.as_str()).or_default() += l.quantity;
                    }
                }
                till.returns += 1;
            }
            EventKind::CashMovement => {
                self.mov_seq.push(seq);
                self.mov_shift.push(e.shift_id.as_deref().unwrap_or_default());
                self.mov_kind.push(e.movement.map(movement_text).unwrap_or_default());
                self.mov_amount.push(e.amount_cents.unwrap_or_default());
                self.mov_reason.push(e.reason.as_deref());
                self.mov_ms.push(occurred);
                self.mov_user.push(user);
            }
            EventKind::ShiftOpened | EventKind::ShiftClosed => {
                self.sev_seq.push(seq);
                self.sev_kind.push(if e.kind == EventKind::ShiftOpened {
                    SHIFT_OPENED
                } else {
                    SHIFT_CLOSED
                });
                self.sev_shift.push(e.shift_id.as_deref().unwrap_or_default());
                self.sev_ms.push(occurred);
                self.sev_user.push(user);
                self.sev_till.push(e.till_id.as_deref());
                self.sev_float.push(e.opening_float_cents);
                self.sev_counted.push(e.counted_cash_cents);
                self.sev_summary.push(e.summary.as_ref().map(json_text).transpose()?);
            }
            EventKind::Sale
            | EventKind::Adjustment
            | EventKind::TransferDispatched
            | EventKind::TransferReceived
            | EventKind::Unknown => {
                return Err(StoreError::Database(format!(
                    "event {seq}: kind {} is not a till event",
                    e.kind.as_str()
                )))
            }
        }
        Ok(())
    }
}

/// A `shifts` row, columns in `shift_columns`' order from `first`.
fn shift_row(r: &tokio_postgres::Row, first: usize) -> Result<ShiftRow, StoreError> {
    let mut row = ShiftRow::new("");
    row.shift_id = r.try_get(first)?;
    row.till_id = r.try_get(first + 1)?;
    row.opened_by = r.try_get(first + 2)?;
    row.opened_ms = r.try_get(first + 3)?;
    row.opening_float_cents = r.try_get(first + 4)?;
    row.closed_by = r.try_get(first + 5)?;
    row.closed_ms = r.try_get(first + 6)?;
    row.counted_cash_cents = r.try_get(first + 7)?;
    row.branch_summary = r.try_get(first + 8)?;
    row.tally.sales_count = to_u64(r.try_get(first + 9)?);
    row.tally.gross_cents = r.try_get(first + 10)?;
    row.tally.returns_cents = r.try_get(first + 11)?;
    row.tally.cash_in_cents = r.try_get(first + 12)?;
    row.tally.cash_out_cents = r.try_get(first + 13)?;
    row.set_by_method(r.try_get(first + 14)?)?;
    Ok(row)
}

/// The shifts a push touches, read (one statement) and moved by its events; empty, without
/// a statement, when it touches none.
pub(super) async fn move_shifts(
    tx: &Transaction<'_>,
    key: i64,
    events: &[Event],
    till: &mut TillApplied,
) -> Result<Vec<ShiftRow>, StoreError> {
    let touched: Vec<&str> = touched_shifts(events).into_iter().collect();
    if touched.is_empty() {
        return Ok(Vec::new());
    }
    let stmt = tx
        .prepare_cached(&format!(
            "SELECT {} FROM shifts WHERE branch_key = $1 AND shift_id = ANY($2::text[])",
            shift_columns(None)
        ))
        .await?;
    let mut rows = BTreeMap::new();
    for r in tx.query(&stmt, &[&key, &touched]).await? {
        let row = shift_row(&r, 0)?;
        rows.insert(row.shift_id.clone(), row);
    }
    apply_to_shifts(&mut rows, events, till)?;
    Ok(rows.into_values().collect())
}

const INSERT_RETURNS: &str = "INSERT INTO returns(branch_key, seq, return_id, sale_id, returned_ms, received_ms, \
     total_cents, restock, refund_method, shift_id, reason, user_id, lines) \
     SELECT $1, r.seq, r.return_id, r.sale_id, r.ms, $2, r.total, r.restock, r.method, r.shift_id, r.reason, r.user_id, \
     r.lines FROM UNNEST($3::int8[], $4::text[], $5::text[], $6::int8[], $7::int8[], $8::bool[], $9::text[], \
     $10::text[], $11::text[], $12::text[], $13::text[]) \
     AS r(seq, return_id, sale_id, ms, total, restock, method, shift_id, reason, user_id, lines)";
const INSERT_MOVEMENTS: &str = "INSERT INTO cash_movements(branch_key, seq, shift_id, movement, amount_cents, reason, \
     occurred_ms, received_ms, user_id) \
     SELECT $1, m.seq, m.shift_id, m.kind, m.amount, m.reason, m.ms, $2, m.user_id \
     FROM UNNEST($3::int8[], $4::text[], $5::text[], $6::int8[], $7::text[], $8::int8[], $9::text[]) \
     AS m(seq, shift_id, kind, amount, reason, ms, user_id)";
const INSERT_SHIFT_EVENTS: &str = "INSERT INTO shift_events(branch_key, seq, kind, shift_id, occurred_ms, \
     received_ms, user_id, till_id, opening_float_cents, counted_cash_cents, summary) \
     SELECT $1, s.seq, s.kind, s.shift_id, s.ms, $2, s.user_id, s.till_id, s.float, s.counted, s.summary \
     FROM UNNEST($3::int8[], $4::int2[], $5::text[], $6::int8[], $7::text[], $8::text[], $9::int8[], $10::int8[], \
     $11::text[]) AS s(seq, kind, shift_id, ms, user_id, till_id, float, counted, summary)";
const UPSERT_SHIFTS: &str = "INSERT INTO shifts(branch_key, shift_id, till_id, opened_by, opened_ms, \
     opening_float_cents, closed_by, closed_ms, counted_cash_cents, branch_summary, sales_count, gross_cents, \
     returns_cents, cash_in_cents, cash_out_cents, by_method) \
     SELECT $1, s.* FROM UNNEST($2::text[], $3::text[], $4::text[], $5::int8[], $6::int8[], $7::text[], $8::int8[], \
     $9::int8[], $10::text[], $11::int8[], $12::int8[], $13::int8[], $14::int8[], $15::int8[], $16::text[]) AS s \
     ON CONFLICT (branch_key, shift_id) DO UPDATE SET till_id = excluded.till_id, opened_by = excluded.opened_by, \
     opened_ms = excluded.opened_ms, opening_float_cents = excluded.opening_float_cents, \
     closed_by = excluded.closed_by, closed_ms = excluded.closed_ms, counted_cash_cents = excluded.counted_cash_cents, \
     branch_summary = excluded.branch_summary, sales_count = excluded.sales_count, \
     gross_cents = excluded.gross_cents, returns_cents = excluded.returns_cents, \
     cash_in_cents = excluded.cash_in_cents, cash_out_cents = excluded.cash_out_cents, by_method = excluded.by_method";

/// The moved shifts as the arrays of [`UPSERT_SHIFTS`].
#[derive(Default)]
struct ShiftArrays {
    id: Vec<String>,
    till: Vec<Option<String>>,
    opened_by: Vec<Option<String>>,
    opened_ms: Vec<Option<i64>>,
    float: Vec<i64>,
    closed_by: Vec<Option<String>>,
    closed_ms: Vec<Option<i64>>,
    counted: Vec<Option<i64>>,
    summary: Vec<Option<String>>,
    sales: Vec<i64>,
    gross: Vec<i64>,
    returns: Vec<i64>,
    cash_in: Vec<i64>,
    cash_out: Vec<i64>,
    by_method: Vec<String>,
}

impl ShiftArrays {
    fn of(rows: Vec<ShiftRow>) -> Result<ShiftArrays, StoreError> {
        let mut a = ShiftArrays::default();
        for row in rows {
            a.by_method.push(row.by_method_text()?);
            a.sales.push(to_i64("sales_count", row.tally.sales_count)?);
            a.gross.push(row.tally.gross_cents);
            a.returns.push(row.tally.returns_cents);
            a.cash_in.push(row.tally.cash_in_cents);
            a.cash_out.push(row.tally.cash_out_cents);
            a.id.push(row.shift_id);
            a.till.push(row.till_id);
            a.opened_by.push(row.opened_by);
            a.opened_ms.push(row.opened_ms);
            a.float.push(row.opening_float_cents);
            a.closed_by.push(row.closed_by);
            a.closed_ms.push(row.closed_ms);
            a.counted.push(row.counted_cash_cents);
            a.summary.push(row.branch_summary);
        }
        Ok(a)
    }
}

/// Writes a push's till rows and moved shifts: one statement per table that has rows, all
/// pipelined (sent together, one round trip); nothing for a push without till events.
pub(super) async fn write(
    tx: &Transaction<'_>,
    key: i64,
    now: i64,
    c: &TillColumns<'_>,
    shifts: Vec<ShiftRow>,
) -> Result<(), StoreError> {
    if c.ret_seq.is_empty() && c.mov_seq.is_empty() && c.sev_seq.is_empty() && shifts.is_empty() {
        return Ok(());
    }
    let s = ShiftArrays::of(shifts)?;
    let returns: [&(dyn ToSql + Sync); 13] = [
        &key,
        &now,
        &c.ret_seq,
        &c.ret_id,
        &c.ret_sale,
        &c.ret_ms,
        &c.ret_total,
        &c.ret_restock,
        &c.ret_method,
        &c.ret_shift,
        &c.ret_reason,
        &c.ret_user,
        &c.ret_lines,
    ];
    let movements: [&(dyn ToSql + Sync); 9] = [
        &key,
        &now,
        &c.mov_seq,
        &c.mov_shift,
        &c.mov_kind,
        &c.mov_amount,
        &c.mov_reason,
        &c.mov_ms,
        &c.mov_user,
    ];
    let shift_events: [&(dyn ToSql + Sync); 11] = [
        &key,
        &now,
        &c.sev_seq,
        &c.sev_kind,
        &c.sev_shift,
        &c.sev_ms,
        &c.sev_user,
        &c.sev_till,
        &c.sev_float,
        &c.sev_counted,
        &c.sev_summary,
    ];
    let shift_rows: [&(dyn ToSql + Sync); 16] = [
        &key,
        &s.id,
        &s.till,
        &s.opened_by,
        &s.opened_ms,
        &s.float,
        &s.closed_by,
        &s.closed_ms,
        &s.counted,
        &s.summary,
        &s.sales,
        &s.gross,
        &s.returns,
        &s.cash_in,
        &s.cash_out,
        &s.by_method,
    ];
    let mut prepared = Vec::with_capacity(4);
    for (sql, rows, params) in [
        (INSERT_RETURNS, c.ret_seq.len(), &returns[..]),
        (INSERT_MOVEMENTS, c.mov_seq.len(), &movements[..]),
        (INSERT_SHIFT_EVENTS, c.sev_seq.len(), &shift_events[..]),
        (UPSERT_SHIFTS, s.id.len(), &shift_rows[..]),
    ] {
        if rows > 0 {
            prepared.push((tx.prepare_cached(sql).await?, params));
        }
    }
    let statements: Vec<BoxFuture<'_, Result<u64, tokio_postgres::Error>>> = prepared
        .iter()
        .map(|(stmt, params)| -> BoxFuture<'_, _> { Box::pin(tx.execute(stmt, params)) })
        .collect();
    try_join_all(statements).await?;
    Ok(())
}

/// What central stored of the till's events of a branch in a seq range (`params`: branch
/// key, first seq, last seq), added to `out` for the comparison with a push's duplicates.
pub(super) async fn applied_till_events(
    tx: &tokio_postgres::Transaction<'_>,
    params: &[&(dyn ToSql + Sync)],
    out: &mut HashMap<u64, AppliedEvent>,
) -> Result<(), StoreError> {
    let returns = "SELECT seq, return_id, sale_id, lines, total_cents, restock, refund_method, shift_id, reason, \
         returned_ms, user_id FROM returns WHERE branch_key = $1 AND seq BETWEEN $2 AND $3";
    for r in tx.query(returns, params).await? {
        let e = AppliedEvent::Return {
            return_id: r.try_get(1)?,
            sale_id: r.try_get(2)?,
            lines: r.try_get(3)?,
            total_cents: r.try_get(4)?,
            restock: r.try_get(5)?,
            refund_method: r.try_get(6)?,
            shift_id: r.try_get(7)?,
            reason: r.try_get(8)?,
            at_ms: r.try_get(9)?,
            user_id: r.try_get(10)?,
        };
        out.insert(to_u64(r.try_get(0)?), e);
    }
    let movements = "SELECT seq, shift_id, movement, amount_cents, reason, occurred_ms, user_id FROM cash_movements \
         WHERE branch_key = $1 AND seq BETWEEN $2 AND $3";
    for r in tx.query(movements, params).await? {
        let e = AppliedEvent::CashMovement {
            shift_id: r.try_get(1)?,
            movement: r.try_get(2)?,
            amount_cents: r.try_get(3)?,
            reason: r.try_get(4)?,
            at_ms: r.try_get(5)?,
            user_id: r.try_get(6)?,
        };
        out.insert(to_u64(r.try_get(0)?), e);
    }
    let shift_events = "SELECT seq, kind, shift_id, occurred_ms, user_id, till_id, opening_float_cents, \
         counted_cash_cents, summary FROM shift_events WHERE branch_key = $1 AND seq BETWEEN $2 AND $3";
    for r in tx.query(shift_events, params).await? {
        let kind: i16 = r.try_get(1)?;
        let e = if kind == SHIFT_OPENED {
            AppliedEvent::ShiftOpened {
                shift_id: r.try_get(2)?,
                till_id: r.try_get::<_, Option<String>>(5)?.unwrap_or_default(),
                opening_float_cents: r.try_get::<_, Option<i64>>(6)?.unwrap_or_default(),
                at_ms: r.try_get(3)?,
                user_id: r.try_get(4)?,
            }
        } else {
            AppliedEvent::ShiftClosed {
                shift_id: r.try_get(2)?,
                counted_cash_cents: r.try_get::<_, Option<i64>>(7)?.unwrap_or_default(),
                summary: r.try_get::<_, Option<String>>(8)?.unwrap_or_default(),
                at_ms: r.try_get(3)?,
                user_id: r.try_get(4)?,
            }
        };
        out.insert(to_u64(r.try_get(0)?), e);
    }
    Ok(())
}

/// `GET /shifts`: by branch_id, opened_ms, shift_id.
pub(super) async fn read_shifts(tx: &Transaction<'_>, filter: &ShiftsFilter) -> Result<Vec<CentralShift>, StoreError> {
    let stmt = tx
        .prepare_cached(&format!(
            "SELECT b.branch_id, {} FROM branches b JOIN shifts s ON s.branch_key = b.branch_key \
             WHERE ($1::text IS NULL OR b.branch_id = $1) AND s.opened_ms >= $2 AND s.opened_ms < $3 \
             AND ($4::bool IS NULL OR (s.closed_ms IS NOT NULL) = $4) \
             ORDER BY b.branch_id, s.opened_ms, s.shift_id",
            shift_columns(Some("s"))
        ))
        .await?;
    let closed = filter.status.map(|s| s == ShiftStatus::Closed);
    let rows = tx
        .query(
            &stmt,
            &[
                &filter.branch.as_ref().map(BranchId::as_str),
                &filter.from_ms.unwrap_or(i64::MIN),
                &filter.to_ms.unwrap_or(i64::MAX),
                &closed,
            ],
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let branch_id: &str = r.try_get(0)?;
        out.extend(shift_row(r, 1)?.central(branch_id)?);
    }
    Ok(out)
}

/// `GET /returns`: in (branch_id, returned_ms, seq) order, branch by branch from the
/// cursor's, each an index range scan of `returns_by_branch_time`, until the page is full.
pub(super) async fn read_returns(
    tx: &Transaction<'_>,
    filter: &ReturnsFilter,
    after: Option<ReturnsCursor>,
    limit: u32,
) -> Result<ReturnsPageData, StoreError> {
    let after_branch: Option<String> = match after {
        Some(c) => {
            let stmt = tx
                .prepare_cached("SELECT branch_id FROM branches WHERE branch_key = $1")
                .await?;
            match tx.query_opt(&stmt, &[&c.branch]).await? {
                Some(r) => Some(r.try_get(0)?),
                // Not our cursor: an empty last page.
                None => {
                    return Ok(ReturnsPageData {
                        returns: Vec::new(),
                        next: None,
                    })
                }
            }
        }
        None => None,
    };
    let only = filter.branch.as_ref().map(BranchId::as_str);
    let branches = tx
        .query(
            &tx.prepare_cached(
                "SELECT branch_key, branch_id FROM branches \
                 WHERE branch_id >= $1 AND ($2::text IS NULL OR branch_id = $2) ORDER BY branch_id",
            )
            .await?,
            &[&after_branch.as_deref().unwrap_or(""), &only],
        )
        .await?;
    let stmt = tx
        .prepare_cached(
            "SELECT returned_ms, seq, return_id, sale_id, lines, total_cents, restock, refund_method, shift_id, \
             reason, user_id, received_ms FROM returns \
             WHERE branch_key = $1 AND (returned_ms, seq) > ($2, $3) AND returned_ms < $4 \
             ORDER BY returned_ms, seq LIMIT $5",
        )
        .await?;
    let want = limit as usize;
    let mut returns = Vec::with_capacity(want.min(1024));
    let mut last = None;
    for b in branches {
        let key: i64 = b.try_get(0)?;
        let branch_id: String = b.try_get(1)?;
        let (from_ms, from_seq) = crate::store::start_in_branch(filter.from_ms, after, key);
        let to_ms = filter.to_ms.unwrap_or(i64::MAX);
        // One more than needed tells whether another page follows.
        let room = (want + 1 - returns.len()) as i64;
        for r in tx.query(&stmt, &[&key, &from_ms, &from_seq, &to_ms, &room]).await? {
            if returns.len() == want {
                return Ok(ReturnsPageData { returns, next: last });
            }
            let returned_ms: i64 = r.try_get(0)?;
            let seq: i64 = r.try_get(1)?;
            returns.push(CentralReturn {
                branch_id: branch_id.clone(),
                return_id: r.try_get(2)?,
                sale_id: r.try_get(3)?,
                seq: to_u64(seq),
                lines: decode_return_lines(r.try_get(4)?)?,
                total_cents: r.try_get(5)?,
                restock: r.try_get(6)?,
                refund_method: r.try_get(7)?,
                shift_id: r.try_get(8)?,
                reason: r.try_get(9)?,
                user_id: r.try_get(10)?,
                returned_at: clock::millis_to_rfc3339(returned_ms),
                received_at: clock::millis_to_rfc3339(r.try_get(11)?),
            });
            last = Some(ReturnsCursor {
                branch: key,
                sold_ms: returned_ms,
                seq,
            });
        }
    }
    Ok(ReturnsPageData { returns, next: None })
}
