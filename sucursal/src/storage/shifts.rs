//! The `shifts` and `shift_methods` tables: every shift of this branch, with its running
//! figures kept in the same transaction as the events that move them.
//!
//! A shift's row is its summary's source of truth: a sale, cash movement or refund on it
//! adds to the row (and to its `shift_methods` rows) in the transaction that records the
//! event, and only while the row is `open`. Within one batch the additions are gathered per
//! shift ([`ShiftBatch`]) and written once at its end, as the stock sold is: under load
//! hundreds of sales of a batch fall on the same few shifts. So after a crash the figures are exactly those
//! of the durable events, and a restart loads them as they are (nothing to replay). The
//! partial unique index keeps one open shift per till even if a check elsewhere were wrong.
use super::commands::Refusal;
use super::db::Result;
use colmena_shared::clock;
use colmena_shared::till::{Shift, ShiftStatus, ShiftTally};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::{BTreeMap, HashMap};

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS shifts (
    shift_id            TEXT PRIMARY KEY,
    till_id             TEXT NOT NULL,
    opened_by           TEXT,
    opened_ms           INTEGER NOT NULL,
    opening_float_cents INTEGER NOT NULL,
    status              TEXT NOT NULL,
    closed_by           TEXT,
    closed_ms           INTEGER,
    counted_cash_cents  INTEGER,
    sales_count         INTEGER NOT NULL DEFAULT 0,
    gross_cents         INTEGER NOT NULL DEFAULT 0,
    returns_cents       INTEGER NOT NULL DEFAULT 0,
    cash_in_cents       INTEGER NOT NULL DEFAULT 0,
    cash_out_cents      INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS shifts_one_open_per_till ON shifts(till_id) WHERE status = 'open';
CREATE INDEX IF NOT EXISTS shifts_by_status ON shifts(status);
CREATE TABLE IF NOT EXISTS shift_methods (
    shift_id  TEXT NOT NULL,
    method    TEXT NOT NULL,
    net_cents INTEGER NOT NULL,
    PRIMARY KEY (shift_id, method)
) WITHOUT ROWID;
";

/// A shift as stored, with its figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShiftRow {
    pub shift_id: String,
    pub till_id: String,
    pub opened_by: Option<String>,
    pub opened_ms: i64,
    pub opening_float_cents: i64,
    pub open: bool,
    pub closed_by: Option<String>,
    pub closed_ms: Option<i64>,
    pub counted_cash_cents: Option<i64>,
    pub tally: ShiftTally,
}

impl ShiftRow {
    /// The shift as the branch's endpoints answer it.
    pub fn to_wire(&self) -> Shift {
        Shift {
            shift_id: self.shift_id.clone(),
            till_id: self.till_id.clone(),
            opened_by: self.opened_by.clone(),
            opened_at: clock::millis_to_rfc3339(self.opened_ms),
            opening_float_cents: self.opening_float_cents,
            status: if self.open {
                ShiftStatus::Open
            } else {
                ShiftStatus::Closed
            },
            closed_by: self.closed_by.clone(),
            closed_at: self.closed_ms.map(clock::millis_to_rfc3339),
            summary: self.tally.summary(self.opening_float_cents, self.counted_cash_cents),
        }
    }
}

const COLUMNS: &str = "shift_id, till_id, opened_by, opened_ms, opening_float_cents, status, closed_by, closed_ms, \
     counted_cash_cents, sales_count, gross_cents, returns_cents, cash_in_cents, cash_out_cents";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ShiftRow> {
    Ok(ShiftRow {
        shift_id: r.get(0)?,
        till_id: r.get(1)?,
        opened_by: r.get(2)?,
        opened_ms: r.get(3)?,
        opening_float_cents: r.get(4)?,
        open: r.get::<_, String>(5)? == "open",
        closed_by: r.get(6)?,
        closed_ms: r.get(7)?,
        counted_cash_cents: r.get(8)?,
        tally: ShiftTally {
            sales_count: r.get::<_, i64>(9)?.max(0) as u64,
            gross_cents: r.get(10)?,
            returns_cents: r.get(11)?,
            by_method: BTreeMap::new(),
            cash_in_cents: r.get(12)?,
            cash_out_cents: r.get(13)?,
        },
    })
}

fn with_methods(conn: &Connection, mut s: ShiftRow) -> Result<ShiftRow> {
    let mut st = conn.prepare_cached("SELECT method, net_cents FROM shift_methods WHERE shift_id = ?1")?;
    let rows = st.query_map([&s.shift_id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    for m in rows {
        let (method, cents) = m?;
        s.tally.by_method.insert(method, cents);
    }
    Ok(s)
}

/// One shift, open or closed.
pub fn get(conn: &Connection, shift_id: &str) -> Result<Option<ShiftRow>> {
    let found = conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM shifts WHERE shift_id = ?1"))?
        .query_row([shift_id], row)
        .optional()?;
    found.map(|s| with_methods(conn, s)).transpose()
}

/// Every open shift (what a starting branch keeps in memory).
pub fn load_open(conn: &Connection) -> Result<Vec<ShiftRow>> {
    let mut st = conn.prepare(&format!("SELECT {COLUMNS} FROM shifts WHERE status = 'open'"))?;
    let rows: Vec<ShiftRow> = st.query_map([], row)?.collect::<rusqlite::Result<_>>()?;
    rows.into_iter().map(|s| with_methods(conn, s)).collect()
}

/// The open shift of a till, if any.
pub fn open_on_till(conn: &Connection, till_id: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT shift_id FROM shifts WHERE till_id = ?1 AND status = 'open'")?
        .query_row([till_id], |r| r.get(0))
        .optional()?)
}

pub fn is_open(conn: &Connection, shift_id: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM shifts WHERE shift_id = ?1 AND status = 'open'")?
        .query_row([shift_id], |_| Ok(()))
        .optional()?
        .is_some())
}

pub fn insert(conn: &Connection, s: &ShiftRow) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO shifts(shift_id, till_id, opened_by, opened_ms, opening_float_cents, status) \
         VALUES (?1, ?2, ?3, ?4, ?5, 'open')",
    )?
    .execute(params![
        s.shift_id,
        s.till_id,
        s.opened_by,
        s.opened_ms,
        s.opening_float_cents
    ])?;
    Ok(())
}

/// Adds `t` to an open shift's figures. False (and nothing written) when the shift is not
/// open — the one check every event on a shift passes, made where commits are ordered.
pub fn add(conn: &Connection, shift_id: &str, t: &ShiftTally) -> Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE shifts SET sales_count = sales_count + ?2, gross_cents = gross_cents + ?3, \
             returns_cents = returns_cents + ?4, cash_in_cents = cash_in_cents + ?5, \
             cash_out_cents = cash_out_cents + ?6 WHERE shift_id = ?1 AND status = 'open'",
        )?
        .execute(params![
            shift_id,
            t.sales_count as i64,
            t.gross_cents,
            t.returns_cents,
            t.cash_in_cents,
            t.cash_out_cents
        ])?;
    if changed == 0 {
        return Ok(false);
    }
    let mut upsert = conn.prepare_cached(
        "INSERT INTO shift_methods(shift_id, method, net_cents) VALUES (?1, ?2, ?3) \
         ON CONFLICT(shift_id, method) DO UPDATE SET net_cents = net_cents + excluded.net_cents",
    )?;
    for (method, cents) in &t.by_method {
        upsert.execute(params![shift_id, method, cents])?;
    }
    Ok(true)
}

pub fn close(conn: &Connection, shift_id: &str, closed_by: Option<&str>, closed_ms: i64, counted: i64) -> Result<()> {
    conn.prepare_cached(
        "UPDATE shifts SET status = 'closed', closed_by = ?2, closed_ms = ?3, counted_cash_cents = ?4 \
         WHERE shift_id = ?1 AND status = 'open'",
    )?
    .execute(params![shift_id, closed_by, closed_ms, counted])?;
    Ok(())
}

/// The shifts one batch's events fall on: whether each is open (read once per batch), and
/// what the batch adds to it, written at the end of the batch ([`ShiftBatch::flush`]) or
/// just before the shift's close reads its figures ([`ShiftBatch::flush_one`]).
#[derive(Default)]
pub struct ShiftBatch {
    seen: HashMap<String, Seen>,
}

struct Seen {
    open: bool,
    added: ShiftTally,
}

impl ShiftBatch {
    /// Adds an event's figures (`add` fills them in) to an open shift; the refusal when the
    /// shift is unknown or not open, having added nothing.
    pub fn add(
        &mut self,
        conn: &Connection,
        shift_id: &str,
        add: impl FnOnce(&mut ShiftTally),
    ) -> Result<std::result::Result<(), Refusal>> {
        let seen = match self.seen.get_mut(shift_id) {
            Some(s) => s,
            None => {
                let open = is_open(conn, shift_id)?;
                self.seen.entry(shift_id.to_string()).or_insert(Seen {
                    open,
                    added: ShiftTally::default(),
                })
            }
        };
        if !seen.open {
            return Ok(Err(match get(conn, shift_id)? {
                None => Refusal::UnknownShift(shift_id.to_string()),
                Some(_) => Refusal::ShiftNotOpen(shift_id.to_string()),
            }));
        }
        add(&mut seen.added);
        Ok(Ok(()))
    }

    /// Writes what the batch added to `shift_id` so far, and takes no more for it (it is
    /// being closed).
    pub fn close(&mut self, conn: &Connection, shift_id: &str) -> Result<()> {
        if let Some(s) = self.seen.get_mut(shift_id) {
            let added = std::mem::take(&mut s.added);
            s.open = false;
            if added != ShiftTally::default() {
                self::add(conn, shift_id, &added)?;
            }
        } else {
            self.seen.insert(
                shift_id.to_string(),
                Seen {
                    open: false,
                    added: ShiftTally::default(),
                },
            );
        }
        Ok(())
    }

    /// Writes every shift's additions; what each shift gained, for memory once durable.
    pub fn flush(self, conn: &Connection) -> Result<Vec<(String, ShiftTally)>> {
        let mut out = Vec::new();
        for (id, s) in self.seen {
            if s.open && s.added != ShiftTally::default() {
                self::add(conn, &id, &s.added)?;
                out.push((id, s.added));
            }
        }
        Ok(out)
    }
}
