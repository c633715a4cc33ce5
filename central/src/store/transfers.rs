//! Transfers between branches at central: the rules both stores apply inside their write
//! transaction (docs/protocol.md, "Transfers").
//!
//! A transfer is stored as one row: its filter columns (status, the two branches, when it
//! was dispatched) and the whole [`Transfer`] as JSON, which is also what its feed entries
//! carry. Each branch step pushed as an event is also kept in `transfer_events` (keyed by
//! branch and seq, like every other applied event), so a re-pushed step can be compared
//! with what was applied.
//!
//! Invariants:
//! - Every change of a transfer (created, cancelled, dispatch applied, receipt applied)
//!   writes, in its own transaction, one feed entry for each of its two branches and no
//!   other branch.
//! - A dispatch moves the sending branch's ledger down by every line's quantity; a receipt
//!   moves the receiving branch's ledger up by what arrived. Between the two, the dispatched
//!   quantity is `in_transit`, so the chain's total stock is unchanged by a transfer except
//!   for the units booked lost.
//! - What happened at a store wins over a cancel it crossed: a dispatch applies to a
//!   `cancelled` transfer too. Everything else a peer could push about a transfer that does
//!   not fit its state refuses the whole push ([`super::PushOutcome::TransferConflict`]).
use super::common::corrupt;
use super::StoreError;
use colmena_shared::clock;
use colmena_shared::ids::BranchId;
use colmena_shared::transfers::{Transfer, TransferLine, TransferRequest, TransferStatus};
use colmena_shared::wire::{CentralProductStock, Event, EventKind};
use std::collections::BTreeMap;

/// Audit actions (docs/protocol.md, "Audit trail").
pub(crate) const ACTION_TRANSFER_CREATE: &str = "transfer.create";
pub(crate) const ACTION_TRANSFER_CANCEL: &str = "transfer.cancel";

/// `transfer_events.kind`.
pub(crate) const STEP_DISPATCH: i16 = 0;
pub(crate) const STEP_RECEIPT: i16 = 1;

/// Result of [`super::Store::create_transfer`].
// One short-lived value per request, moved once: boxing the large variant saves nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferOutcome {
    Created(Transfer),
    /// A branch central does not know (no token configured, never pushed).
    UnknownBranch(String),
    /// A product not in central's catalog.
    UnknownProduct(String),
}

/// Result of [`super::Store::cancel_transfer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelOutcome {
    /// Cancelled now.
    Cancelled(Transfer),
    /// Cancelled before: answered as it is, nothing written.
    AlreadyCancelled(Transfer),
    NotFound,
    /// Already dispatched (or received): the store's step stands.
    Conflict(Transfer),
}

/// Filters of `GET /transfers`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransferFilter {
    pub status: Option<TransferStatus>,
    /// Transfers from or to this branch.
    pub branch: Option<BranchId>,
}

/// What the transfer steps of an applied push did (for the metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransfersApplied {
    pub dispatched: u64,
    pub received: u64,
    pub units_lost: u64,
}

/// The status and body a created transfer is remembered with under its `Idempotency-Key`;
/// `None` for a refusal (only successes are remembered).
pub(crate) fn transfer_answer(outcome: &TransferOutcome) -> Result<Option<(i64, String)>, StoreError> {
    match outcome {
        TransferOutcome::Created(t) => Ok(Some((201, super::common::json_text(t)?))),
        TransferOutcome::UnknownBranch(_) | TransferOutcome::UnknownProduct(_) => Ok(None),
    }
}

/// The id of the `n`th transfer: `TR-000001`.
pub(crate) fn transfer_id(n: i64) -> String {
    format!("TR-{n:06}")
}

/// A new transfer from a validated request.
pub(crate) fn new_transfer(id: String, req: &TransferRequest, now_ms: i64) -> Transfer {
    Transfer {
        transfer_id: id,
        from_branch: req.from_branch.as_str().to_string(),
        to_branch: req.to_branch.as_str().to_string(),
        status: TransferStatus::Requested,
        lines: req
            .lines
            .iter()
            .map(|l| TransferLine {
                product_id: l.product_id.as_str().to_string(),
                quantity: l.quantity,
                received: None,
                lost: None,
            })
            .collect(),
        note: req.note.clone(),
        requested_at: clock::millis_to_rfc3339(now_ms),
        ..Transfer::default()
    }
}

/// What a cancel does: `Ok(Some(t))` write `t`; `Ok(None)` already cancelled (answer it as
/// it is); `Err(())` refused (dispatched or received).
pub(crate) fn plan_cancel(t: &Transfer, now_ms: i64) -> Result<Option<Transfer>, ()> {
    match t.status {
        TransferStatus::Requested => Ok(Some(Transfer {
            status: TransferStatus::Cancelled,
            cancelled_at: Some(clock::millis_to_rfc3339(now_ms)),
            ..t.clone()
        })),
        TransferStatus::Cancelled => Ok(None),
        TransferStatus::InTransit | TransferStatus::Received => Err(()),
    }
}

/// The step kind of a transfer event, `None` for every other kind.
pub(crate) fn step_kind(kind: EventKind) -> Option<i16> {
    match kind {
        EventKind::TransferDispatched => Some(STEP_DISPATCH),
        EventKind::TransferReceived => Some(STEP_RECEIPT),
        _ => None,
    }
}

/// Whether a push has any transfer step: a push without one does exactly what it did
/// before transfers existed.
pub(crate) fn has_steps(events: &[Event]) -> bool {
    events.iter().any(|e| step_kind(e.kind).is_some())
}

/// The stored text of a step's lines (compared with a re-pushed duplicate).
pub(crate) fn step_lines_text(e: &Event) -> Result<String, StoreError> {
    super::common::json_text(&e.transfer_lines.as_deref().unwrap_or_default())
}

/// What applying step `e`, pushed by `branch`, does to `current` (the transfer as stored,
/// `None` if unknown): the transfer after it, or why the step is impossible. The ledger
/// moves are the caller's ([`ledger_deltas`]).
pub(crate) fn plan_step(current: Option<&Transfer>, branch: &str, e: &Event, at_ms: i64) -> Result<Transfer, String> {
    let id = e.transfer_id.as_deref().unwrap_or_default();
    let lines = e.transfer_lines.as_deref().unwrap_or_default();
    let Some(t) = current else {
        return Err(format!("transfer {id} is unknown at central"));
    };
    let by = e.user_id.as_ref().map(|u| u.as_str().to_string());
    let at = clock::millis_to_rfc3339(at_ms);
    let find = |p: &str| t.lines.iter().find(|l| l.product_id == p);
    match e.kind {
        EventKind::TransferDispatched => {
            if t.from_branch != branch {
                return Err(format!("transfer {id} is sent by {}, not by {branch}", t.from_branch));
            }
            if !matches!(t.status, TransferStatus::Requested | TransferStatus::Cancelled) {
                return Err(format!(
                    "transfer {id} is {}: it cannot be dispatched",
                    t.status.as_str()
                ));
            }
            let same = lines.len() == t.lines.len()
                && lines
                    .iter()
                    .all(|l| find(l.product_id.as_str()).is_some_and(|d| d.quantity == l.quantity));
            if !same {
                return Err(format!("the dispatched lines are not the lines of transfer {id}"));
            }
            Ok(Transfer {
                status: TransferStatus::InTransit,
                dispatched_at: Some(at),
                dispatched_by: by,
                ..t.clone()
            })
        }
        EventKind::TransferReceived => {
            if t.to_branch != branch {
                return Err(format!("transfer {id} goes to {}, not to {branch}", t.to_branch));
            }
            if t.status != TransferStatus::InTransit {
                return Err(format!("transfer {id} is {}: it cannot be received", t.status.as_str()));
            }
            let mut out = t.clone();
            if lines.len() != t.lines.len() {
                return Err(format!("the received lines do not cover the lines of transfer {id}"));
            }
            for l in lines {
                let p = l.product_id.as_str();
                let lost = l.lost.unwrap_or_default();
                let Some(d) = out.lines.iter_mut().find(|d| d.product_id == p) else {
                    return Err(format!("{p} is not in transfer {id}"));
                };
                if l.quantity.checked_add(lost) != Some(d.quantity) {
                    return Err(format!(
                        "{p}: {} received + {lost} lost is not the {} dispatched",
                        l.quantity, d.quantity
                    ));
                }
                d.received = Some(l.quantity);
                d.lost = Some(lost);
            }
            out.status = TransferStatus::Received;
            out.received_at = Some(at);
            out.received_by = by;
            Ok(out)
        }
        _ => Err(format!("event {} is not a transfer step", e.seq)),
    }
}

/// Adds step `e`'s ledger change for the pushing branch to `deltas` (a dispatch takes the
/// units out, a receipt puts in what arrived), and counts it in `applied`.
pub(crate) fn ledger_deltas<'e>(e: &'e Event, deltas: &mut BTreeMap<&'e str, i64>, applied: &mut TransfersApplied) {
    let dispatch = e.kind == EventKind::TransferDispatched;
    for l in e.transfer_lines.as_deref().unwrap_or_default() {
        let d = if dispatch { -l.quantity } else { l.quantity };
        *deltas.entry(l.product_id.as_str()).or_default() += d;
        applied.units_lost += u64::try_from(l.lost.unwrap_or_default()).unwrap_or(0);
    }
    if dispatch {
        applied.dispatched += 1;
    } else {
        applied.received += 1;
    }
}

/// A conflict's message: the event, and why.
pub(crate) fn conflict_message(e: &Event, why: &str) -> String {
    format!("{} event {}: {why}", e.kind.as_str(), e.seq)
}

/// A stored transfer's JSON, read back.
pub(crate) fn decode(id: &str, body: &str) -> Result<Transfer, StoreError> {
    serde_json::from_str(body).map_err(|e| corrupt(format!("transfer {id}: {e}")))
}

/// Adds the in-transit units of `transfers` (those `in_transit`) to the inventory: each
/// product's `in_transit`, and its `total_stock` (Σ by_branch + in_transit). A product only
/// in transit is listed too; with `only`, other products are skipped.
pub(crate) fn add_in_transit(
    out: &mut BTreeMap<String, CentralProductStock>,
    transfers: &[Transfer],
    only: Option<&str>,
) {
    for t in transfers.iter().filter(|t| t.status == TransferStatus::InTransit) {
        for l in &t.lines {
            if only.is_some_and(|o| o != l.product_id) {
                continue;
            }
            let p = super::common::inventory_entry(out, l.product_id.clone());
            p.in_transit = p.in_transit.saturating_add(l.quantity);
            p.total_stock = p.total_stock.saturating_add(l.quantity);
        }
    }
}

/// The in-transit gauges at `now_ms`: how many, the age of the oldest in seconds, how many
/// have been in transit longer than `overdue_ms`.
pub fn transit_stats(transfers: &[Transfer], now_ms: i64, overdue_ms: i64) -> (u64, i64, u64) {
    let mut count = 0;
    let mut oldest: Option<i64> = None;
    let mut overdue = 0;
    for t in transfers.iter().filter(|t| t.status == TransferStatus::InTransit) {
        count += 1;
        let Some(at) = t.dispatched_at.as_deref().and_then(clock::parse_rfc3339_millis) else {
            continue;
        };
        oldest = Some(oldest.map_or(at, |o| o.min(at)));
        if now_ms - at > overdue_ms {
            overdue += 1;
        }
    }
    let age = oldest.map_or(0, |o| (now_ms - o).max(0) / 1000);
    (count, age, overdue)
}

#[cfg(test)]
mod tests {
    use super::*;
    use colmena_shared::ids::ProductId;
    use colmena_shared::transfers::{TransferEventLine, TransferLineRequest};

    fn request() -> TransferRequest {
        TransferRequest {
            from_branch: BranchId::parse("CUS").unwrap(),
            to_branch: BranchId::parse("ABA").unwrap(),
            lines: vec![
                TransferLineRequest {
                    product_id: ProductId::parse("P1").unwrap(),
                    quantity: 10,
                },
                TransferLineRequest {
                    product_id: ProductId::parse("P2").unwrap(),
                    quantity: 3,
                },
            ],
            note: None,
        }
    }

    fn step(kind: EventKind, lines: &[(&str, i64, Option<i64>)]) -> Event {
        let mut e: Event = serde_json::from_value(serde_json::json!({
            "seq": 1, "kind": kind.as_str(), "occurred_at": "2026-12-07T15:00:00Z"
        }))
        .unwrap();
        e.transfer_id = Some("TR-000001".into());
        e.transfer_lines = Some(
            lines
                .iter()
                .map(|(p, q, lost)| TransferEventLine {
                    product_id: ProductId::parse(p).unwrap(),
                    quantity: *q,
                    lost: *lost,
                })
                .collect(),
        );
        e
    }

    #[test]
    fn a_dispatch_must_be_the_senders_and_carry_exactly_the_requested_lines() {
        let t = new_transfer(transfer_id(1), &request(), 0);
        assert_eq!(t.transfer_id, "TR-000001");
        let d = step(EventKind::TransferDispatched, &[("P2", 3, None), ("P1", 10, None)]);
        let moved = plan_step(Some(&t), "CUS", &d, 5_000).unwrap();
        assert_eq!(moved.status, TransferStatus::InTransit);
        assert!(plan_step(Some(&t), "ABA", &d, 0).is_err());
        assert!(plan_step(None, "CUS", &d, 0).is_err());
        assert!(plan_step(Some(&moved), "CUS", &d, 0).is_err());
        let short = step(EventKind::TransferDispatched, &[("P1", 10, None)]);
        assert!(plan_step(Some(&t), "CUS", &short, 0).is_err());
        let cancelled = plan_cancel(&t, 1).unwrap().unwrap();
        let crossed = plan_step(Some(&cancelled), "CUS", &d, 2).unwrap();
        assert_eq!(crossed.status, TransferStatus::InTransit);
        assert!(crossed.cancelled_at.is_some());
        assert!(plan_cancel(&crossed, 3).is_err());
        assert_eq!(plan_cancel(&cancelled, 3), Ok(None));
    }

    #[test]
    fn a_receipt_must_account_for_every_dispatched_unit() {
        let t = new_transfer(transfer_id(1), &request(), 0);
        let d = step(EventKind::TransferDispatched, &[("P1", 10, None), ("P2", 3, None)]);
        let r = step(EventKind::TransferReceived, &[("P1", 9, Some(1)), ("P2", 3, Some(0))]);
        assert!(plan_step(Some(&t), "ABA", &r, 0).is_err(), "before the dispatch");
        let moving = plan_step(Some(&t), "CUS", &d, 0).unwrap();
        assert!(plan_step(Some(&moving), "CUS", &r, 0).is_err(), "by the sender");
        let done = plan_step(Some(&moving), "ABA", &r, 0).unwrap();
        assert_eq!(done.lines[0].received, Some(9));
        assert_eq!(done.lines[0].lost, Some(1));
        assert!(done.validate().is_ok());
        let wrong = step(EventKind::TransferReceived, &[("P1", 9, Some(0)), ("P2", 3, Some(0))]);
        assert!(plan_step(Some(&moving), "ABA", &wrong, 0).is_err());
        let mut deltas = BTreeMap::new();
        let mut applied = TransfersApplied::default();
        ledger_deltas(&d, &mut deltas, &mut applied);
        ledger_deltas(&r, &mut deltas, &mut applied);
        assert_eq!(deltas.get("P1"), Some(&-1));
        assert_eq!((applied.dispatched, applied.received, applied.units_lost), (1, 1, 1));
    }

    #[test]
    fn the_transit_gauges_count_only_transfers_on_the_way() {
        let t = new_transfer(transfer_id(1), &request(), 0);
        let d = step(EventKind::TransferDispatched, &[("P1", 10, None), ("P2", 3, None)]);
        let at = clock::parse_rfc3339_millis("2026-12-07T15:00:00Z").unwrap();
        let moving = plan_step(Some(&t), "CUS", &d, at).unwrap();
        assert_eq!(
            transit_stats(&[t.clone(), moving.clone()], at + 10_000, 5_000),
            (1, 10, 1)
        );
        assert_eq!(transit_stats(&[t], at, 5_000), (0, 0, 0));
        let mut inv = BTreeMap::new();
        add_in_transit(&mut inv, &[moving], None);
        assert_eq!(inv["P1"].in_transit, 10);
        assert_eq!(inv["P1"].total_stock, 10);
    }
}
