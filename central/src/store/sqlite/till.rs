//! The till in the SQLite store: its events' rows (`returns`, `cash_movements`,
//! `shift_events`), the per-shift totals (`shifts`, moved once per push through
//! [`crate::store::till::apply_to_shifts`]), what a duplicate is compared with, and the
//! reads of `GET /shifts` and `GET /returns`. Everything here runs inside the push's
//! savepoint or a reader's snapshot; none of it runs for a push of plain sales.
use crate::store::common::{encode_lines, json_text, to_i64, to_u64, AppliedEvent};
use crate::store::till::{
    apply_to_shifts, decode_return_lines, movement_text, shift_columns, touched_shifts, ShiftRow,
};
use crate::store::{ReturnsCursor, ReturnsFilter, ReturnsPageData, ShiftsFilter, StoreError, TillApplied};
use colmena_shared::clock;
use colmena_shared::ids::BranchId;
use colmena_shared::till::{CentralReturn, CentralShift, ShiftStatus};
use colmena_shared::wire::{Event, EventKind};
use rusqlite::{params, Connection, OptionalExtension, ToSql};
use std::collections::{BTreeMap, HashMap};

/// `shift_events.kind`.
const SHIFT_OPENED: i64 = 0;
const SHIFT_CLOSED: i64 = 1;

/// Where and when an event is applied.
pub(super) struct At {
    pub key: i64,
    pub seq: i64,
    pub occurred: i64,
    pub now: i64,
}

/// Inserts one till event's row; a restocking return adds its lines to `deltas`.
pub(super) fn insert_event<'e>(
    tx: &Connection,
    buf: &mut Vec<u8>,
    at: At,
    e: &'e Event,
    deltas: &mut BTreeMap<&'e str, i64>,
    till: &mut TillApplied,
) -> Result<(), StoreError> {
    let At {
        key,
        seq,
        occurred,
        now,
    } = at;
    let user = e.user_id.as_ref().map(|u| u.as_str());
    match e.kind {
        EventKind::Return => {
            let lines = e.lines.as_deref().unwrap_or_default();
            encode_lines(buf, lines);
            let encoded = std::str::from_utf8(buf).map_err(|x| StoreError::Corrupt(x.to_string()))?;
            let restock = e.restock.unwrap_or_default();
            tx.prepare_cached(
                "INSERT INTO returns(branch_key, seq, return_id, sale_id, returned_ms, received_ms, total_cents, \
                 restock, refund_method, shift_id, reason, user_id, lines) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?
            .execute(params![
                key,
                seq,
                e.return_id.as_deref().unwrap_or_default(),
                e.sale_id.as_deref().unwrap_or_default(),
                occurred,
                now,
                e.total_cents.unwrap_or_default(),
                restock,
                e.refund_method.as_deref().unwrap_or_default(),
                e.shift_id.as_deref(),
                e.reason.as_deref(),
                user,
                encoded,
            ])?;
            if restock {
                for l in lines {
                    *deltas.entry(l.product_id.as_str()).or_default() += l.quantity;
                }
            }
            till.returns += 1;
        }
        EventKind::CashMovement => {
            tx.prepare_cached(
                "INSERT INTO cash_movements(branch_key, seq, shift_id, movement, amount_cents, reason, occurred_ms, \
                 received_ms, user_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                key,
                seq,
                e.shift_id.as_deref().unwrap_or_default(),
                e.movement.map(movement_text).unwrap_or_default(),
                e.amount_cents.unwrap_or_default(),
                e.reason.as_deref(),
                occurred,
                now,
                user,
            ])?;
        }
        EventKind::ShiftOpened | EventKind::ShiftClosed => {
            let kind = if e.kind == EventKind::ShiftOpened {
                SHIFT_OPENED
            } else {
                SHIFT_CLOSED
            };
            let summary = e.summary.as_ref().map(json_text).transpose()?;
            tx.prepare_cached(
                "INSERT INTO shift_events(branch_key, seq, kind, shift_id, occurred_ms, received_ms, user_id, till_id, \
                 opening_float_cents, counted_cash_cents, summary) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                key,
                seq,
                kind,
                e.shift_id.as_deref().unwrap_or_default(),
                occurred,
                now,
                user,
                e.till_id.as_deref(),
                e.opening_float_cents,
                e.counted_cash_cents,
                summary,
            ])?;
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

/// A `shifts` row, columns in `shift_columns`' order from `first`.
fn shift_row(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<(ShiftRow, String)> {
    let mut row = ShiftRow::new("");
    row.shift_id = r.get(first)?;
    row.till_id = r.get(first + 1)?;
    row.opened_by = r.get(first + 2)?;
    row.opened_ms = r.get(first + 3)?;
    row.opening_float_cents = r.get(first + 4)?;
    row.closed_by = r.get(first + 5)?;
    row.closed_ms = r.get(first + 6)?;
    row.counted_cash_cents = r.get(first + 7)?;
    row.branch_summary = r.get(first + 8)?;
    row.tally.sales_count = to_u64(r.get(first + 9)?);
    row.tally.gross_cents = r.get(first + 10)?;
    row.tally.returns_cents = r.get(first + 11)?;
    row.tally.cash_in_cents = r.get(first + 12)?;
    row.tally.cash_out_cents = r.get(first + 13)?;
    Ok((row, r.get(first + 14)?))
}

/// Moves every shift the push's `events` touch: one read and one write per shift, nothing
/// when none is touched.
pub(super) fn move_shifts(
    tx: &Connection,
    key: i64,
    events: &[Event],
    till: &mut TillApplied,
) -> Result<(), StoreError> {
    let touched = touched_shifts(events);
    if touched.is_empty() {
        return Ok(());
    }
    let mut rows = BTreeMap::new();
    {
        let mut select = tx.prepare_cached(&format!(
            "SELECT {} FROM shifts WHERE branch_key = ?1 AND shift_id = ?2",
            shift_columns(None)
        ))?;
        for id in touched {
            let found = select.query_row(params![key, id], |r| shift_row(r, 0)).optional()?;
            let row = match found {
                Some((mut row, by_method)) => {
                    row.set_by_method(&by_method)?;
                    row
                }
                None => ShiftRow::new(id),
            };
            rows.insert(id.to_string(), row);
        }
    }
    apply_to_shifts(&mut rows, events, till)?;
    let mut upsert = tx.prepare_cached(&format!(
        "INSERT OR REPLACE INTO shifts(branch_key, {}) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        shift_columns(None)
    ))?;
    for row in rows.values() {
        let t = &row.tally;
        upsert.execute(params![
            key,
            row.shift_id,
            row.till_id,
            row.opened_by,
            row.opened_ms,
            row.opening_float_cents,
            row.closed_by,
            row.closed_ms,
            row.counted_cash_cents,
            row.branch_summary,
            to_i64("sales_count", t.sales_count)?,
            t.gross_cents,
            t.returns_cents,
            t.cash_in_cents,
            t.cash_out_cents,
            row.by_method_text()?,
        ])?;
    }
    Ok(())
}

/// What central stored of the till's events of a branch in a seq range (`range`: branch
/// key, first seq, last seq), added to `out` for the comparison with a push's duplicates.
pub(super) fn applied_till_events(
    tx: &Connection,
    range: &[&dyn ToSql],
    out: &mut HashMap<u64, AppliedEvent>,
) -> Result<(), StoreError> {
    let mut returns = tx.prepare_cached(
        "SELECT seq, return_id, sale_id, lines, total_cents, restock, refund_method, shift_id, reason, returned_ms, \
         user_id FROM returns WHERE branch_key = ?1 AND seq BETWEEN ?2 AND ?3",
    )?;
    for row in returns.query_map(range, |r| {
        Ok((
            to_u64(r.get(0)?),
            AppliedEvent::Return {
                return_id: r.get(1)?,
                sale_id: r.get(2)?,
                lines: r.get(3)?,
                total_cents: r.get(4)?,
                restock: r.get(5)?,
                refund_method: r.get(6)?,
                shift_id: r.get(7)?,
                reason: r.get(8)?,
                at_ms: r.get(9)?,
                user_id: r.get(10)?,
            },
        ))
    })? {
        let (seq, e) = row?;
        out.insert(seq, e);
    }
    let mut movements = tx.prepare_cached(
        "SELECT seq, shift_id, movement, amount_cents, reason, occurred_ms, user_id FROM cash_movements \
         WHERE branch_key = ?1 AND seq BETWEEN ?2 AND ?3",
    )?;
    for row in movements.query_map(range, |r| {
        Ok((
            to_u64(r.get(0)?),
            AppliedEvent::CashMovement {
                shift_id: r.get(1)?,
                movement: r.get(2)?,
                amount_cents: r.get(3)?,
                reason: r.get(4)?,
                at_ms: r.get(5)?,
                user_id: r.get(6)?,
            },
        ))
    })? {
        let (seq, e) = row?;
        out.insert(seq, e);
    }
    let mut shift_events = tx.prepare_cached(
        "SELECT seq, kind, shift_id, occurred_ms, user_id, till_id, opening_float_cents, counted_cash_cents, summary \
         FROM shift_events WHERE branch_key = ?1 AND seq BETWEEN ?2 AND ?3",
    )?;
    for row in shift_events.query_map(range, |r| {
        let (kind, shift_id, at_ms, user_id): (i64, String, i64, Option<String>) =
            (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
        let e = if kind == SHIFT_OPENED {
            AppliedEvent::ShiftOpened {
                shift_id,
                till_id: r.get::<_, Option<String>>(5)?.unwrap_or_default(),
                opening_float_cents: r.get::<_, Option<i64>>(6)?.unwrap_or_default(),
                at_ms,
                user_id,
            }
        } else {
            AppliedEvent::ShiftClosed {
                shift_id,
                counted_cash_cents: r.get::<_, Option<i64>>(7)?.unwrap_or_default(),
                summary: r.get::<_, Option<String>>(8)?.unwrap_or_default(),
                at_ms,
                user_id,
            }
        };
        Ok((to_u64(r.get(0)?), e))
    })? {
        let (seq, e) = row?;
        out.insert(seq, e);
    }
    Ok(())
}

/// `GET /shifts`: by branch_id, opened_ms, shift_id.
pub(super) fn read_shifts(conn: &Connection, filter: &ShiftsFilter) -> Result<Vec<CentralShift>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT b.branch_id, {} FROM branches b JOIN shifts s ON s.branch_key = b.branch_key \
         WHERE (?1 IS NULL OR b.branch_id = ?1) AND s.opened_ms >= ?2 AND s.opened_ms < ?3 \
         AND (?4 IS NULL OR (s.closed_ms IS NOT NULL) = ?4) \
         ORDER BY b.branch_id, s.opened_ms, s.shift_id",
        shift_columns(Some("s"))
    ))?;
    let closed = filter.status.map(|s| s == ShiftStatus::Closed);
    let rows = stmt.query_map(
        params![
            filter.branch.as_ref().map(BranchId::as_str),
            filter.from_ms.unwrap_or(i64::MIN),
            filter.to_ms.unwrap_or(i64::MAX),
            closed,
        ],
        |r| Ok((r.get::<_, String>(0)?, shift_row(r, 1)?)),
    )?;
    let mut out = Vec::new();
    for row in rows {
        let (branch_id, (mut shift, by_method)) = row?;
        shift.set_by_method(&by_method)?;
        out.extend(shift.central(&branch_id)?);
    }
    Ok(out)
}

/// `GET /returns`: in (branch_id, returned_ms, seq) order, branch by branch from the
/// cursor's, each an index range scan of `returns_by_branch_time`, until the page is full.
pub(super) fn read_returns(
    conn: &Connection,
    filter: &ReturnsFilter,
    after: Option<ReturnsCursor>,
    limit: u32,
) -> Result<ReturnsPageData, StoreError> {
    let empty = || ReturnsPageData {
        returns: Vec::new(),
        next: None,
    };
    let after_branch: Option<String> = match after {
        Some(c) => match conn
            .prepare_cached("SELECT branch_id FROM branches WHERE branch_key = ?1")?
            .query_row([c.branch], |r| r.get(0))
            .optional()?
        {
            Some(id) => Some(id),
            None => return Ok(empty()), // not our cursor
        },
        None => None,
    };
    let branches: Vec<(i64, String)> = conn
        .prepare_cached(
            "SELECT branch_key, branch_id FROM branches WHERE branch_id >= ?1 AND (?2 IS NULL OR branch_id = ?2) \
             ORDER BY branch_id",
        )?
        .query_map(
            params![
                after_branch.as_deref().unwrap_or(""),
                filter.branch.as_ref().map(BranchId::as_str)
            ],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?
        .collect::<Result<_, _>>()?;
    let mut stmt = conn.prepare_cached(
        "SELECT returned_ms, seq, return_id, sale_id, lines, total_cents, restock, refund_method, shift_id, reason, \
         user_id, received_ms FROM returns \
         WHERE branch_key = ?1 AND (returned_ms, seq) > (?2, ?3) AND returned_ms < ?4 \
         ORDER BY returned_ms, seq LIMIT ?5",
    )?;
    let want = limit as usize;
    let mut returns = Vec::with_capacity(want.min(1024));
    let mut last = None;
    for (key, branch_id) in branches {
        let (from_ms, from_seq) = crate::store::start_in_branch(filter.from_ms, after, key);
        let to_ms = filter.to_ms.unwrap_or(i64::MAX);
        // One more than needed tells whether another page follows.
        let room = (want + 1 - returns.len()) as i64;
        let mut rows = stmt.query(params![key, from_ms, from_seq, to_ms, room])?;
        while let Some(r) = rows.next()? {
            if returns.len() == want {
                return Ok(ReturnsPageData { returns, next: last });
            }
            let returned_ms: i64 = r.get(0)?;
            let seq: i64 = r.get(1)?;
            let lines: String = r.get(4)?;
            returns.push(CentralReturn {
                branch_id: branch_id.clone(),
                return_id: r.get(2)?,
                sale_id: r.get(3)?,
                seq: to_u64(seq),
                lines: decode_return_lines(&lines)?,
                total_cents: r.get(5)?,
                restock: r.get(6)?,
                refund_method: r.get(7)?,
                shift_id: r.get(8)?,
                reason: r.get(9)?,
                user_id: r.get(10)?,
                returned_at: clock::millis_to_rfc3339(returned_ms),
                received_at: clock::millis_to_rfc3339(r.get(11)?),
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
