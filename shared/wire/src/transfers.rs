//! Transfers between branches (docs/protocol.md, "Transfers").
//!
//! A transfer is requested at central, dispatched by the sending branch and received by the
//! receiving one; each step is recorded where it happens. Central's view travels to both
//! branches by pull (a `transfer` change carrying the whole [`Transfer`]); the two branch
//! steps travel to central as outbox events (`transfer_dispatched`, `transfer_received`,
//! whose lines are [`TransferEventLine`]s). The rules both sides check a step by live here.
//!
//! Invariant (docs/protocol.md, "The invariant"): for every line, once received,
//! `received + lost == quantity`; before that, the dispatched `quantity` is in transit.
use crate::ids::{truncate, BranchId, ProductId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use utoipa::ToSchema;

/// Most lines on one transfer.
pub const MAX_TRANSFER_LINES: usize = 500;
/// Longest note, in characters.
pub const MAX_NOTE_CHARS: usize = 200;

/// Where a transfer stands. `requested` → `in_transit` (dispatched) → `received`;
/// `requested` → `cancelled` at central. A dispatch that crossed a cancel still moves it to
/// `in_transit`: what happened at the store wins.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TransferStatus {
    #[default]
    Requested,
    Cancelled,
    InTransit,
    Received,
}

impl TransferStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TransferStatus::Requested => "requested",
            TransferStatus::Cancelled => "cancelled",
            TransferStatus::InTransit => "in_transit",
            TransferStatus::Received => "received",
        }
    }

    pub fn parse(s: &str) -> Option<TransferStatus> {
        match s {
            "requested" => Some(TransferStatus::Requested),
            "cancelled" => Some(TransferStatus::Cancelled),
            "in_transit" => Some(TransferStatus::InTransit),
            "received" => Some(TransferStatus::Received),
            _ => None,
        }
    }

    /// How far along the transfer is, for merging two views of it: a branch never moves a
    /// transfer back (a pull carrying `requested` does not undo the branch's own dispatch).
    /// `cancelled` ranks with `requested`-then-cancelled, below any step a store took.
    pub fn rank(self) -> u8 {
        match self {
            TransferStatus::Requested => 0,
            TransferStatus::Cancelled => 1,
            TransferStatus::InTransit => 2,
            TransferStatus::Received => 3,
        }
    }
}

/// One line of `POST /transfers` and of a receipt (`POST /transfers/{id}/receive`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[schema(example = json!({"product_id": "ARROZ-1KG", "quantity": 10}))]
pub struct TransferLineRequest {
    pub product_id: ProductId,
    /// Requested: 1..=1,000,000. Received: 0..=what was dispatched.
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub quantity: i64,
}

/// `POST /transfers` (central, admin).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"from_branch": "CUS", "to_branch": "ABA",
    "lines": [{"product_id": "ARROZ-1KG", "quantity": 10}], "note": "ABA se quedó sin arroz"}))]
pub struct TransferRequest {
    pub from_branch: BranchId,
    pub to_branch: BranchId,
    pub lines: Vec<TransferLineRequest>,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub note: Option<String>,
}

impl TransferRequest {
    /// The rules that need no store: another branch, 1..=500 lines of distinct products,
    /// each 1..=1,000,000 units, a note of at most 200 characters. Unknown branches and
    /// products are the store's to answer (404).
    pub fn validate(&self) -> Result<(), String> {
        if self.from_branch == self.to_branch {
            return Err(format!(
                "a transfer goes to another branch: from_branch and to_branch are both {}",
                self.from_branch.as_str()
            ));
        }
        check_lines_shape(self.lines.len())?;
        let mut seen = BTreeSet::new();
        for l in &self.lines {
            crate::ids::check_quantity(&format!("{}: quantity", l.product_id.as_str()), l.quantity)?;
            if !seen.insert(l.product_id.as_str()) {
                return Err(format!("{} appears twice in lines", l.product_id.as_str()));
            }
        }
        if let Some(n) = &self.note {
            crate::ids::check_text("note", n, 1, MAX_NOTE_CHARS)?;
        }
        Ok(())
    }
}

/// `POST /transfers/{id}/receive` (receiving branch). `lines` absent: everything dispatched
/// arrived. Present: what arrived per product; a dispatched product not listed arrived 0,
/// and every unit short is booked `lost`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"lines": [{"product_id": "ARROZ-1KG", "quantity": 9}]}))]
pub struct ReceiveRequest {
    #[serde(default)]
    pub lines: Option<Vec<TransferLineRequest>>,
}

/// One line of a transfer as both services show it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct TransferLine {
    pub product_id: String,
    /// Requested, and (a dispatch ships the whole request) dispatched.
    pub quantity: i64,
    /// Once received: the units that arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received: Option<i64>,
    /// Once received: `quantity - received`, booked `lost_in_transit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost: Option<i64>,
}

/// A transfer (central's `GET /transfers/{id}`, a branch's `GET /transfers/{id}`, and the
/// `transfer` of a pull change).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[schema(example = json!({"transfer_id": "TR-000001", "from_branch": "CUS", "to_branch": "ABA",
    "status": "in_transit", "lines": [{"product_id": "ARROZ-1KG", "quantity": 10}],
    "note": "ABA se quedó sin arroz", "requested_at": "2026-12-07T14:00:00Z",
    "dispatched_at": "2026-12-07T15:10:00Z", "dispatched_by": "sara"}))]
pub struct Transfer {
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub transfer_id: String,
    pub from_branch: String,
    pub to_branch: String,
    pub status: TransferStatus,
    pub lines: Vec<TransferLine>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[schema(format = DateTime)]
    pub requested_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub cancelled_at: Option<String>,
    /// When the sending branch dispatched it, on that branch's clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub dispatched_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatched_by: Option<String>,
    /// When the receiving branch received it, on that branch's clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub received_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_by: Option<String>,
}

impl Transfer {
    /// Checks a transfer that arrived from a peer (a pull change): ids, lines, and the
    /// received/lost figures against the status. Returns a message naming what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        check_transfer_id(&self.transfer_id)?;
        BranchId::parse(&self.from_branch)?;
        BranchId::parse(&self.to_branch)?;
        if self.from_branch == self.to_branch {
            return Err("from_branch equals to_branch".into());
        }
        check_lines_shape(self.lines.len())?;
        let received = self.status == TransferStatus::Received;
        let mut seen = BTreeSet::new();
        for l in &self.lines {
            ProductId::parse(&l.product_id)?;
            if !seen.insert(l.product_id.as_str()) {
                return Err(format!("{} appears twice in lines", l.product_id));
            }
            crate::ids::check_quantity("quantity", l.quantity)?;
            match (received, l.received, l.lost) {
                (true, Some(r), Some(lost)) if r >= 0 && lost >= 0 && r.checked_add(lost) == Some(l.quantity) => {}
                (false, None, None) => {}
                _ => {
                    return Err(format!(
                        "{}: received/lost do not fit status {}",
                        l.product_id,
                        self.status.as_str()
                    ))
                }
            }
        }
        if let Some(n) = &self.note {
            crate::ids::check_text("note", n, 1, MAX_NOTE_CHARS)?;
        }
        for t in [&self.requested_at].into_iter().chain(
            [&self.cancelled_at, &self.dispatched_at, &self.received_at]
                .into_iter()
                .flatten(),
        ) {
            if crate::clock::parse_rfc3339_millis(t).is_none() {
                return Err(format!("{:?} is not an RFC 3339 time", truncate(t)));
            }
        }
        Ok(())
    }
}

/// `GET /transfers` (both services).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TransferList {
    pub transfers: Vec<Transfer>,
}

/// One line of a `transfer_dispatched` or `transfer_received` event.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct TransferEventLine {
    pub product_id: ProductId,
    /// Dispatched: the units that left (1..=1,000,000). Received: the units that arrived
    /// (0..=1,000,000).
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub quantity: i64,
    /// Received only: the units that did not arrive, booked `lost_in_transit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub lost: Option<i64>,
}

/// A transfer id: 1–64 chars of `[A-Za-z0-9._-]` (central makes `TR-000001`).
pub fn check_transfer_id(s: &str) -> Result<(), String> {
    crate::till::check_till_id("transfer_id", s)
}

fn check_lines_shape(n: usize) -> Result<(), String> {
    if n == 0 {
        return Err("a transfer needs at least one line".into());
    }
    if n > MAX_TRANSFER_LINES {
        return Err(format!("a transfer has at most {MAX_TRANSFER_LINES} lines"));
    }
    Ok(())
}

/// The event lines of a dispatch: 1..=500 distinct products, each 1..=1,000,000, no `lost`.
pub fn check_dispatch_lines(lines: &[TransferEventLine]) -> Result<(), String> {
    check_event_lines(lines, false)
}

/// The event lines of a receipt: distinct products, `quantity` 0..=1,000,000, `lost`
/// present and 0..=1,000,000, and something on every line.
pub fn check_receipt_lines(lines: &[TransferEventLine]) -> Result<(), String> {
    check_event_lines(lines, true)
}

fn check_event_lines(lines: &[TransferEventLine], receipt: bool) -> Result<(), String> {
    check_lines_shape(lines.len())?;
    let mut seen = BTreeSet::new();
    for l in lines {
        let p = l.product_id.as_str();
        if !seen.insert(p) {
            return Err(format!("{p} appears twice in transfer_lines"));
        }
        if receipt {
            let lost = l.lost.ok_or_else(|| format!("{p}: lost missing"))?;
            for (name, v) in [("quantity", l.quantity), ("lost", lost)] {
                if !(0..=crate::ids::MAX_QUANTITY).contains(&v) {
                    return Err(format!("{p}: {name} must be between 0 and 1000000, got {v}"));
                }
            }
            if l.quantity + lost == 0 {
                return Err(format!("{p}: nothing received and nothing lost"));
            }
        } else {
            crate::ids::check_quantity(&format!("{p}: quantity"), l.quantity)?;
            if l.lost.is_some() {
                return Err(format!("{p}: a dispatch has no lost units"));
            }
        }
    }
    Ok(())
}

/// What a receipt books, line by line against what was dispatched: `asked` absent = all
/// arrived; a dispatched product not in `asked` arrived 0. Returns the event lines (in the
/// transfer's line order) or why the receipt is impossible: a product not in the transfer,
/// listed twice, or more than was dispatched.
pub fn plan_receipt(
    dispatched: &[TransferLine],
    asked: Option<&[TransferLineRequest]>,
) -> Result<Vec<TransferEventLine>, ReceiptError> {
    let Some(asked) = asked else {
        return dispatched
            .iter()
            .map(|l| {
                Ok(TransferEventLine {
                    product_id: ProductId::parse(&l.product_id).map_err(ReceiptError::Invalid)?,
                    quantity: l.quantity,
                    lost: Some(0),
                })
            })
            .collect();
    };
    check_receipt_request(asked).map_err(ReceiptError::Invalid)?;
    let mut seen = BTreeSet::new();
    for a in asked {
        let p = a.product_id.as_str();
        if !seen.insert(p) {
            return Err(ReceiptError::Invalid(format!("{p} appears twice in lines")));
        }
        let Some(d) = dispatched.iter().find(|d| d.product_id == p) else {
            return Err(ReceiptError::Exceeds(format!("{p} is not in this transfer")));
        };
        if a.quantity > d.quantity {
            return Err(ReceiptError::Exceeds(format!(
                "{p}: {} dispatched, {} received",
                d.quantity, a.quantity
            )));
        }
    }
    dispatched
        .iter()
        .map(|d| {
            let got = asked
                .iter()
                .find(|a| a.product_id.as_str() == d.product_id)
                .map_or(0, |a| a.quantity);
            Ok(TransferEventLine {
                product_id: ProductId::parse(&d.product_id).map_err(ReceiptError::Invalid)?,
                quantity: got,
                lost: Some(d.quantity - got),
            })
        })
        .collect()
}

/// The rules of a receipt's lines that need no transfer: at most 500 lines, each quantity
/// 0..=1,000,000. Checked first, so a malformed receipt is a 400 whatever the transfer's
/// state; [`plan_receipt`] checks the rest against what was dispatched.
pub fn check_receipt_request(asked: &[TransferLineRequest]) -> Result<(), String> {
    if asked.len() > MAX_TRANSFER_LINES {
        return Err(format!("a receipt has at most {MAX_TRANSFER_LINES} lines"));
    }
    for (i, a) in asked.iter().enumerate() {
        if !(0..=crate::ids::MAX_QUANTITY).contains(&a.quantity) {
            return Err(format!(
                "lines[{i}] ({}): quantity must be between 0 and 1000000, got {}",
                a.product_id.as_str(),
                a.quantity
            ));
        }
    }
    Ok(())
}

/// Why [`plan_receipt`] refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiptError {
    /// A malformed receipt (400 `invalid_request`).
    Invalid(String),
    /// More than was dispatched, or a product the transfer does not carry (409
    /// `receipt_exceeds_dispatch`).
    Exceeds(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(p: &str, q: i64) -> TransferLine {
        TransferLine {
            product_id: p.into(),
            quantity: q,
            received: None,
            lost: None,
        }
    }

    fn ask(p: &str, q: i64) -> TransferLineRequest {
        TransferLineRequest {
            product_id: ProductId::parse(p).unwrap(),
            quantity: q,
        }
    }

    #[test]
    fn a_receipt_without_lines_receives_everything() {
        let got = plan_receipt(&[line("P1", 10), line("P2", 3)], None).unwrap();
        assert_eq!(
            got.iter().map(|l| (l.quantity, l.lost)).collect::<Vec<_>>(),
            vec![(10, Some(0)), (3, Some(0))]
        );
        check_receipt_lines(&got).unwrap();
    }

    #[test]
    fn a_short_receipt_books_the_shortfall_lost_and_unlisted_products_as_all_lost() {
        let got = plan_receipt(&[line("P1", 10), line("P2", 3)], Some(&[ask("P1", 7)])).unwrap();
        assert_eq!(
            got.iter().map(|l| (l.quantity, l.lost)).collect::<Vec<_>>(),
            vec![(7, Some(3)), (0, Some(3))]
        );
        check_receipt_lines(&got).unwrap();
    }

    #[test]
    fn a_receipt_over_the_dispatch_or_of_another_product_is_refused() {
        let d = [line("P1", 10)];
        assert!(matches!(
            plan_receipt(&d, Some(&[ask("P1", 11)])),
            Err(ReceiptError::Exceeds(_))
        ));
        assert!(matches!(
            plan_receipt(&d, Some(&[ask("P9", 1)])),
            Err(ReceiptError::Exceeds(_))
        ));
        assert!(matches!(
            plan_receipt(&d, Some(&[ask("P1", -1)])),
            Err(ReceiptError::Invalid(_))
        ));
        assert!(matches!(
            plan_receipt(&d, Some(&[ask("P1", 1), ask("P1", 1)])),
            Err(ReceiptError::Invalid(_))
        ));
    }

    #[test]
    fn a_transfer_to_itself_or_with_repeated_products_is_invalid() {
        let t = |from: &str, lines: Vec<TransferLineRequest>| TransferRequest {
            from_branch: BranchId::parse(from).unwrap(),
            to_branch: BranchId::parse("ABA").unwrap(),
            lines,
            note: None,
        };
        assert!(t("CUS", vec![ask("P1", 1)]).validate().is_ok());
        assert!(t("ABA", vec![ask("P1", 1)]).validate().is_err());
        assert!(t("CUS", vec![]).validate().is_err());
        assert!(t("CUS", vec![ask("P1", 0)]).validate().is_err());
        assert!(t("CUS", vec![ask("P1", 1), ask("P1", 2)]).validate().is_err());
    }

    #[test]
    fn a_pulled_transfer_must_balance_its_received_lines() {
        let mut t = Transfer {
            transfer_id: "TR-000001".into(),
            from_branch: "CUS".into(),
            to_branch: "ABA".into(),
            status: TransferStatus::InTransit,
            lines: vec![line("P1", 10)],
            requested_at: "2026-12-07T14:00:00Z".into(),
            ..Default::default()
        };
        t.validate().unwrap();
        t.status = TransferStatus::Received;
        assert!(t.validate().is_err());
        t.lines[0].received = Some(7);
        t.lines[0].lost = Some(3);
        t.validate().unwrap();
        t.lines[0].lost = Some(4);
        assert!(t.validate().is_err());
    }

    #[test]
    fn status_rank_never_lets_a_pull_undo_a_store_step() {
        assert!(TransferStatus::InTransit.rank() > TransferStatus::Cancelled.rank());
        assert!(TransferStatus::Received.rank() > TransferStatus::InTransit.rank());
        for s in ["requested", "cancelled", "in_transit", "received"] {
            assert_eq!(TransferStatus::parse(s).unwrap().as_str(), s);
        }
    }
}
