//! The till's rules both stores share (docs/protocol.md, "Event kinds" and "The till at
//! central"): how a sale's payments and a return's lines are kept, a shift's stored row
//! ([`ShiftRow`]: what its `shift_opened`/`shift_closed` said plus running totals), how a
//! push's events move those totals ([`apply_to_shifts`]), and how a row reads back as a
//! [`CentralShift`].
//!
//! Invariants:
//! - A shift's totals are exactly what [`ShiftTally`] accumulates from every applied sale,
//!   return and cash movement naming the shift, each once: they are moved only inside the
//!   push transaction that applies those events, once per push (not per event).
//! - A return counts in the shift that paid its refund (its own `shift_id`), not in the
//!   sale's shift.
//! - `consistent` is `summary == branch_summary`, recomputed on every read, so it can never
//!   disagree with the two summaries it is shown beside.
//! - A push's events of one branch come in seq order and a branch opens a shift before
//!   selling in it, so when `shift_closed` applies, the shift's totals are final; the
//!   comparison made then is the one the metrics count.
use super::common::{corrupt, decode_lines, json_text};
use super::{StoreError, TillApplied};
use colmena_shared::clock;
use colmena_shared::till::{CentralShift, Payment, ReturnLine, ShiftStatus, ShiftSummary, ShiftTally, UNSPECIFIED};
use colmena_shared::wire::{Event, EventKind};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;

/// Writes payments as `[["cash",2000],["card",500]]`. Methods are `[a-z_]` (validated at the
/// boundary), so they need no JSON escaping.
pub(crate) fn encode_payments(buf: &mut Vec<u8>, payments: &[Payment]) {
    buf.clear();
    buf.push(b'[');
    for (i, p) in payments.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        // Writing into a Vec cannot fail.
        let _ = write!(buf, "[\"{}\",{}]", p.method, p.amount_cents);
    }
    buf.push(b']');
}

/// The stored form of a sale's payments: `None` when the branch sent none.
pub(crate) fn payments_text(payments: Option<&[Payment]>) -> Result<Option<String>, StoreError> {
    let Some(payments) = payments else {
        return Ok(None);
    };
    let mut buf = Vec::with_capacity(32);
    encode_payments(&mut buf, payments);
    String::from_utf8(buf)
        .map(Some)
        .map_err(|e| corrupt(format!("payments: {e}")))
}

/// A sale's payments as answered: those stored, or one `unspecified` payment of the total.
pub(crate) fn decode_payments(text: Option<&str>, total_cents: i64) -> Result<Vec<Payment>, StoreError> {
    let Some(text) = text else {
        return Ok(vec![Payment {
            method: UNSPECIFIED.to_string(),
            amount_cents: total_cents,
        }]);
    };
    let raw: Vec<(String, i64)> = serde_json::from_str(text).map_err(|e| corrupt(format!("sale payments: {e}")))?;
    Ok(raw
        .into_iter()
        .map(|(method, amount_cents)| Payment { method, amount_cents })
        .collect())
}

/// A return's lines, stored in the sales' compact encoding.
pub(crate) fn decode_return_lines(text: &str) -> Result<Vec<ReturnLine>, StoreError> {
    Ok(decode_lines(text)?
        .into_iter()
        .map(|l| ReturnLine {
            product_id: l.product_id,
            quantity: l.quantity,
            unit_price_cents: l.unit_price_cents,
            line_total_cents: l.line_total_cents,
        })
        .collect())
}

/// `cash_movement`'s direction as stored: `in` or `out`.
pub(crate) fn movement_text(kind: colmena_shared::till::CashMovementKind) -> &'static str {
    match kind {
        colmena_shared::till::CashMovementKind::In => "in",
        colmena_shared::till::CashMovementKind::Out => "out",
    }
}

/// The event's time, already validated by `Event::validate`.
pub(crate) fn occurred_ms(e: &Event) -> Result<i64, StoreError> {
    clock::parse_rfc3339_millis(&e.occurred_at)
        .ok_or_else(|| StoreError::Database(format!("event {}: unparsable occurred_at", e.seq)))
}

/// The `shifts` columns a [`ShiftRow`] is read from and written to, in this order.
const SHIFT_COLUMNS: [&str; 15] = [
    "shift_id",
    "till_id",
    "opened_by",
    "opened_ms",
    "opening_float_cents",
    "closed_by",
    "closed_ms",
    "counted_cash_cents",
    "branch_summary",
    "sales_count",
    "gross_cents",
    "returns_cents",
    "cash_in_cents",
    "cash_out_cents",
    "by_method",
];

/// [`SHIFT_COLUMNS`] for a select list, each prefixed with `table.` when given (another
/// table of the query may have a column of the same name).
pub(crate) fn shift_columns(table: Option<&str>) -> String {
    let prefix = table.map(|t| format!("{t}.")).unwrap_or_default();
    SHIFT_COLUMNS
        .iter()
        .map(|c| format!("{prefix}{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One shift as stored: what opened and closed it, and its running totals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ShiftRow {
    pub shift_id: String,
    /// `None` until a `shift_opened` names the shift (a shift never seen opened is kept,
    /// so its totals are not lost, but not listed).
    pub till_id: Option<String>,
    pub opened_by: Option<String>,
    pub opened_ms: Option<i64>,
    pub opening_float_cents: i64,
    pub closed_by: Option<String>,
    pub closed_ms: Option<i64>,
    pub counted_cash_cents: Option<i64>,
    /// The branch's closing summary, as JSON.
    pub branch_summary: Option<String>,
    pub tally: ShiftTally,
}

impl ShiftRow {
    pub(crate) fn new(shift_id: &str) -> ShiftRow {
        ShiftRow {
            shift_id: shift_id.to_string(),
            ..ShiftRow::default()
        }
    }

    /// The totals' per-method part as stored (a JSON object).
    pub(crate) fn by_method_text(&self) -> Result<String, StoreError> {
        json_text(&self.tally.by_method)
    }

    pub(crate) fn set_by_method(&mut self, text: &str) -> Result<(), StoreError> {
        self.tally.by_method =
            serde_json::from_str(text).map_err(|e| corrupt(format!("shift {}: by_method: {e}", self.shift_id)))?;
        Ok(())
    }

    /// Central's summary of the shift (with the count once closed).
    fn summary(&self) -> ShiftSummary {
        self.tally.summary(self.opening_float_cents, self.counted_cash_cents)
    }

    /// The shift as `GET /shifts` shows it; `None` for a shift never seen opened.
    pub(crate) fn central(&self, branch_id: &str) -> Result<Option<CentralShift>, StoreError> {
        let (Some(till_id), Some(opened_ms)) = (&self.till_id, self.opened_ms) else {
            return Ok(None);
        };
        let branch_summary: Option<ShiftSummary> = self
            .branch_summary
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| corrupt(format!("shift {}: branch summary: {e}", self.shift_id)))?;
        let summary = self.summary();
        let closed = self.closed_ms.is_some();
        Ok(Some(CentralShift {
            branch_id: branch_id.to_string(),
            shift_id: self.shift_id.clone(),
            till_id: till_id.clone(),
            opened_by: self.opened_by.clone(),
            opened_at: clock::millis_to_rfc3339(opened_ms),
            opening_float_cents: self.opening_float_cents,
            status: if closed { ShiftStatus::Closed } else { ShiftStatus::Open },
            closed_by: self.closed_by.clone(),
            closed_at: self.closed_ms.map(clock::millis_to_rfc3339),
            consistent: branch_summary.as_ref().map(|b| *b == summary),
            branch_summary,
            summary,
        }))
    }
}

/// The shift an event moves: the one it opens, closes or names (a sale's or a cash
/// movement's, the drawer that paid a return's refund).
fn shift_of(e: &Event) -> Option<&str> {
    match e.kind {
        EventKind::Sale
        | EventKind::Return
        | EventKind::ShiftOpened
        | EventKind::CashMovement
        | EventKind::ShiftClosed => e.shift_id.as_deref(),
        EventKind::Adjustment | EventKind::TransferDispatched | EventKind::TransferReceived | EventKind::Unknown => {
            None
        }
    }
}

/// The shifts `events` touch. Empty for a push of plain sales, which then costs nothing
/// more than before shifts existed.
pub(crate) fn touched_shifts(events: &[Event]) -> BTreeSet<&str> {
    events.iter().filter_map(shift_of).collect()
}

/// Moves the shifts in `rows` (every touched shift, stored or new) by `events`, in order,
/// and counts the closes in `till`.
pub(crate) fn apply_to_shifts(
    rows: &mut BTreeMap<String, ShiftRow>,
    events: &[Event],
    till: &mut TillApplied,
) -> Result<(), StoreError> {
    for e in events {
        let Some(shift_id) = shift_of(e) else {
            continue;
        };
        let row = rows
            .entry(shift_id.to_string())
            .or_insert_with(|| ShiftRow::new(shift_id));
        match e.kind {
            EventKind::Sale => row.tally.sale(e.total_cents.unwrap_or_default(), e.payments.as_deref()),
            EventKind::Return => row.tally.refund(
                e.total_cents.unwrap_or_default(),
                e.refund_method.as_deref().unwrap_or(UNSPECIFIED),
            ),
            EventKind::CashMovement => {
                if let Some(kind) = e.movement {
                    row.tally.movement(kind, e.amount_cents.unwrap_or_default());
                }
            }
            EventKind::ShiftOpened => {
                row.till_id = e.till_id.clone();
                row.opened_by = e.user_id.as_ref().map(|u| u.as_str().to_string());
                row.opened_ms = Some(occurred_ms(e)?);
                row.opening_float_cents = e.opening_float_cents.unwrap_or_default();
            }
            EventKind::ShiftClosed => {
                row.closed_by = e.user_id.as_ref().map(|u| u.as_str().to_string());
                row.closed_ms = Some(occurred_ms(e)?);
                row.counted_cash_cents = e.counted_cash_cents;
                let branch = e.summary.as_ref();
                row.branch_summary = branch.map(json_text).transpose()?;
                if branch == Some(&row.summary()) {
                    till.shifts_consistent += 1;
                } else {
                    till.shifts_inconsistent += 1;
                }
            }
            EventKind::Adjustment
            | EventKind::TransferDispatched
            | EventKind::TransferReceived
            | EventKind::Unknown => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use colmena_shared::till::CashMovementKind;

    fn event(seq: u64, kind: EventKind) -> Event {
        Event {
            seq,
            kind,
            occurred_at: "2026-12-07T13:00:00Z".into(),
            shift_id: Some("SH1".into()),
            ..Event::default()
        }
    }

    fn pay(method: &str, amount_cents: i64) -> Payment {
        Payment {
            method: method.into(),
            amount_cents,
        }
    }

    /// The events of one shift: the float, a cash sale with change, a payment-less sale, a
    /// refund in cash, a cash drop; closed with what `ShiftTally` says.
    fn shift_events(counted: i64) -> Vec<Event> {
        let mut open = event(1, EventKind::ShiftOpened);
        open.till_id = Some("T1".into());
        open.opening_float_cents = Some(10_000);
        let mut cash = event(2, EventKind::Sale);
        cash.total_cents = Some(1550);
        cash.payments = Some(vec![pay("cash", 2000)]);
        let mut plain = event(3, EventKind::Sale);
        plain.total_cents = Some(700);
        let mut refund = event(4, EventKind::Return);
        refund.total_cents = Some(300);
        refund.refund_method = Some("cash".into());
        let mut out = event(5, EventKind::CashMovement);
        out.movement = Some(CashMovementKind::Out);
        out.amount_cents = Some(1000);
        let mut tally = ShiftTally::default();
        tally.sale(1550, Some(&[pay("cash", 2000)]));
        tally.sale(700, None);
        tally.refund(300, "cash");
        tally.movement(CashMovementKind::Out, 1000);
        let mut close = event(6, EventKind::ShiftClosed);
        close.counted_cash_cents = Some(counted);
        close.summary = Some(tally.summary(10_000, Some(counted)));
        vec![open, cash, plain, refund, out, close]
    }

    #[test]
    fn payments_round_trip_and_their_absence_reads_as_one_unspecified_payment() {
        let ps = vec![pay("card", 500), pay("cash", 2000)];
        let text = payments_text(Some(&ps)).unwrap().unwrap();
        assert_eq!(text, r#"[["card",500],["cash",2000]]"#);
        assert_eq!(decode_payments(Some(&text), 2100).unwrap(), ps);
        assert_eq!(payments_text(None).unwrap(), None);
        assert_eq!(decode_payments(None, 700).unwrap(), vec![pay(UNSPECIFIED, 700)]);
    }

    #[test]
    fn a_shift_applied_in_one_push_or_event_by_event_has_the_same_row_and_is_consistent() {
        let events = shift_events(10_000 + 1550 - 300 - 1000);
        let mut whole = BTreeMap::new();
        let mut till = TillApplied::default();
        apply_to_shifts(&mut whole, &events, &mut till).unwrap();
        assert_eq!((till.shifts_consistent, till.shifts_inconsistent), (1, 0));
        let mut one_by_one = BTreeMap::new();
        for e in &events {
            apply_to_shifts(&mut one_by_one, std::slice::from_ref(e), &mut TillApplied::default()).unwrap();
        }
        assert_eq!(whole, one_by_one);
        let shown = whole["SH1"].central("CUS").unwrap().unwrap();
        assert_eq!(shown.consistent, Some(true));
        assert_eq!(shown.summary.difference_cents, Some(0));
        assert_eq!(shown.summary.by_method["unspecified"], 700);
    }

    #[test]
    fn a_close_whose_summary_disagrees_is_counted_and_shown_inconsistent() {
        let mut events = shift_events(9_000);
        if let Some(s) = events[5].summary.as_mut() {
            s.sales_count += 1;
        }
        let mut rows = BTreeMap::new();
        let mut till = TillApplied::default();
        apply_to_shifts(&mut rows, &events, &mut till).unwrap();
        assert_eq!((till.shifts_consistent, till.shifts_inconsistent), (0, 1));
        assert_eq!(rows["SH1"].central("CUS").unwrap().unwrap().consistent, Some(false));
    }

    #[test]
    fn a_shift_never_seen_opened_keeps_its_totals_but_is_not_listed() {
        let events = shift_events(0);
        let mut rows = BTreeMap::new();
        apply_to_shifts(&mut rows, &events[1..3], &mut TillApplied::default()).unwrap();
        assert_eq!(rows["SH1"].tally.sales_count, 2);
        assert_eq!(rows["SH1"].central("CUS").unwrap(), None);
        assert_eq!(touched_shifts(&events).into_iter().collect::<Vec<_>>(), ["SH1"]);
    }
}
