//! The till: shifts, tenders and returns (docs/protocol.md, "The till").
//!
//! Both services compute a shift's summary with the same [`ShiftTally`], the branch from
//! what it records and central from the events it applied; central's `consistent` says the
//! two agree. Every amount is integer cents; every sum is checked, so a hostile amount is a
//! 400, never an overflow.
use crate::ids::{truncate, ProductId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Most payments on one sale.
pub const MAX_PAYMENTS: usize = 16;
/// The largest single amount (a payment, a float, a cash movement, a count): 10^13 currency
/// units. Sixteen of them still fit an i64 many times over.
pub const MAX_AMOUNT_CENTS: i64 = 1_000_000_000_000_000;
/// The method a sale without `payments` is recorded with.
pub const UNSPECIFIED: &str = "unspecified";
/// The only method that may exceed what is left to pay; the excess is the change.
pub const CASH: &str = "cash";

/// Whether `m` is a payment method id: `[a-z_]{1,32}` (`cash`, `card`, `wallet`, …).
pub fn is_method(m: &str) -> bool {
    (1..=32).contains(&m.len()) && m.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

/// A payment method id, or why not.
pub fn check_method(field: &str, m: &str) -> Result<(), String> {
    if is_method(m) {
        Ok(())
    } else {
        Err(format!("{field} must be 1-32 chars of [a-z_], got {:?}", truncate(m)))
    }
}

/// A till or shift id: 1–64 chars of `[A-Za-z0-9._-]`.
pub fn check_till_id(field: &str, s: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{field} must be 1-64 chars of [A-Za-z0-9._-], got {:?}",
            truncate(s)
        ))
    }
}

/// An amount of money that must be positive (`1..=MAX_AMOUNT_CENTS`).
pub fn check_positive_amount(field: &str, a: i64) -> Result<i64, String> {
    if (1..=MAX_AMOUNT_CENTS).contains(&a) {
        Ok(a)
    } else {
        Err(format!("{field} must be between 1 and {MAX_AMOUNT_CENTS}, got {a}"))
    }
}

/// An amount that may be zero (a float, a count): `0..=MAX_AMOUNT_CENTS`.
pub fn check_amount(field: &str, a: i64) -> Result<i64, String> {
    if (0..=MAX_AMOUNT_CENTS).contains(&a) {
        Ok(a)
    } else {
        Err(format!("{field} must be between 0 and {MAX_AMOUNT_CENTS}, got {a}"))
    }
}

/// One tender of a sale.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[schema(example = json!({"method": "cash", "amount_cents": 2000}))]
pub struct Payment {
    #[schema(pattern = "^[a-z_]{1,32}$")]
    pub method: String,
    #[schema(minimum = 1, maximum = 1_000_000_000_000_000_i64)]
    pub amount_cents: i64,
}

/// Why a set of payments does not settle a total (400 `payment_mismatch`).
pub fn check_payments(payments: &[Payment], total_cents: i64) -> Result<i64, String> {
    if payments.is_empty() {
        return Err("payments must not be empty (leave it out for an unspecified tender)".into());
    }
    if payments.len() > MAX_PAYMENTS {
        return Err(format!("a sale has at most {MAX_PAYMENTS} payments"));
    }
    let (mut paid, mut not_cash) = (0i64, 0i64);
    for (i, p) in payments.iter().enumerate() {
        // Runs for every paid sale, at the branch and again at central: the field's name is
        // only built for an error.
        if !is_method(&p.method) {
            check_method(&format!("payments[{i}].method"), &p.method)?;
        }
        if !(1..=MAX_AMOUNT_CENTS).contains(&p.amount_cents) {
            check_positive_amount(&format!("payments[{i}].amount_cents"), p.amount_cents)?;
        }
        paid += p.amount_cents; // ≤ 16 × 10^15: no overflow
        if p.method != CASH {
            not_cash += p.amount_cents;
        }
    }
    if paid < total_cents {
        return Err(format!("payments cover {paid} of a {total_cents} total"));
    }
    if not_cash > total_cents {
        return Err(format!(
            "only cash may exceed the total: {not_cash} paid by other methods on a {total_cents} total"
        ));
    }
    Ok(paid - total_cents)
}

/// `in` puts cash into the drawer, `out` takes it out (a small expense, a bank drop).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CashMovementKind {
    In,
    Out,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ShiftStatus {
    Open,
    Closed,
}

/// A shift's figures, running while it is open and final once closed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[schema(example = json!({"sales_count": 12, "gross_cents": 35550, "returns_cents": 1000, "net_cents": 34550,
    "by_method": {"cash": 24550, "card": 10000}, "cash_in_cents": 0, "cash_out_cents": 1000,
    "expected_cash_cents": 33550, "counted_cash_cents": 33500, "difference_cents": -50}))]
pub struct ShiftSummary {
    pub sales_count: u64,
    pub gross_cents: i64,
    pub returns_cents: i64,
    pub net_cents: i64,
    /// Net per method: payments, less change for cash, less refunds.
    pub by_method: BTreeMap<String, i64>,
    pub cash_in_cents: i64,
    pub cash_out_cents: i64,
    /// Float + net cash − cash out + cash in.
    pub expected_cash_cents: i64,
    /// Only once closed.
    pub counted_cash_cents: Option<i64>,
    /// Counted − expected; only once closed.
    pub difference_cents: Option<i64>,
}

/// Accumulates a shift's summary from its facts, in any order. Sums saturate: they are
/// reports of amounts each already bounded, so no input can make them panic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShiftTally {
    pub sales_count: u64,
    pub gross_cents: i64,
    pub returns_cents: i64,
    pub by_method: BTreeMap<String, i64>,
    pub cash_in_cents: i64,
    pub cash_out_cents: i64,
}

impl ShiftTally {
    fn method(&mut self, m: &str, cents: i64) {
        // Looked up before inserting: the key is allocated once per method, not per sale.
        match self.by_method.get_mut(m) {
            Some(v) => *v = v.saturating_add(cents),
            None => {
                self.by_method.insert(m.to_string(), cents);
            }
        }
    }

    /// A sale of `total_cents` paid with `payments` (`None`: unspecified).
    pub fn sale(&mut self, total_cents: i64, payments: Option<&[Payment]>) {
        self.sales_count += 1;
        self.gross_cents = self.gross_cents.saturating_add(total_cents);
        match payments {
            None => self.method(UNSPECIFIED, total_cents),
            Some(ps) => {
                let paid = ps.iter().fold(0i64, |a, p| a.saturating_add(p.amount_cents));
                for p in ps {
                    self.method(&p.method, p.amount_cents);
                }
                let change = paid.saturating_sub(total_cents);
                if change > 0 {
                    self.method(CASH, -change);
                }
            }
        }
    }

    pub fn refund(&mut self, total_cents: i64, refund_method: &str) {
        self.returns_cents = self.returns_cents.saturating_add(total_cents);
        self.method(refund_method, -total_cents);
    }

    pub fn movement(&mut self, kind: CashMovementKind, amount_cents: i64) {
        match kind {
            CashMovementKind::In => self.cash_in_cents = self.cash_in_cents.saturating_add(amount_cents),
            CashMovementKind::Out => self.cash_out_cents = self.cash_out_cents.saturating_add(amount_cents),
        }
    }

    /// Adds another tally's figures to this one (the branch keeps one per open shift and
    /// adds each durable batch's).
    pub fn merge(&mut self, other: &ShiftTally) {
        self.sales_count += other.sales_count;
        self.gross_cents = self.gross_cents.saturating_add(other.gross_cents);
        self.returns_cents = self.returns_cents.saturating_add(other.returns_cents);
        for (m, c) in &other.by_method {
            self.method(m, *c);
        }
        self.cash_in_cents = self.cash_in_cents.saturating_add(other.cash_in_cents);
        self.cash_out_cents = self.cash_out_cents.saturating_add(other.cash_out_cents);
    }

    /// The summary for a shift opened with `opening_float_cents`; with a count once closed.
    pub fn summary(&self, opening_float_cents: i64, counted_cash_cents: Option<i64>) -> ShiftSummary {
        let cash = self.by_method.get(CASH).copied().unwrap_or(0);
        let expected = opening_float_cents
            .saturating_add(cash)
            .saturating_sub(self.cash_out_cents)
            .saturating_add(self.cash_in_cents);
        ShiftSummary {
            sales_count: self.sales_count,
            gross_cents: self.gross_cents,
            returns_cents: self.returns_cents,
            net_cents: self.gross_cents.saturating_sub(self.returns_cents),
            by_method: self.by_method.clone(),
            cash_in_cents: self.cash_in_cents,
            cash_out_cents: self.cash_out_cents,
            expected_cash_cents: expected,
            counted_cash_cents,
            difference_cents: counted_cash_cents.map(|c| c.saturating_sub(expected)),
        }
    }
}

// ---------------------------------------------------------------- branch endpoints

/// `POST /shifts`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(example = json!({"till_id": "T1", "opening_float_cents": 10000}))]
pub struct OpenShiftRequest {
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub till_id: String,
    #[schema(minimum = 0, maximum = 1_000_000_000_000_000_i64)]
    pub opening_float_cents: i64,
}

/// A shift at the branch (`POST /shifts`, `GET /shifts/{id}`, the close).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[schema(example = json!({"shift_id": "CUS-SH-000007", "till_id": "T1", "opened_by": "ana",
    "opened_at": "2026-12-07T13:00:00.000Z", "opening_float_cents": 10000, "status": "open",
    "summary": {"sales_count": 0, "gross_cents": 0, "returns_cents": 0, "net_cents": 0, "by_method": {},
    "cash_in_cents": 0, "cash_out_cents": 0, "expected_cash_cents": 10000, "counted_cash_cents": null,
    "difference_cents": null}}))]
pub struct Shift {
    pub shift_id: String,
    pub till_id: String,
    pub opened_by: Option<String>,
    #[schema(format = DateTime)]
    pub opened_at: String,
    pub opening_float_cents: i64,
    pub status: ShiftStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub closed_at: Option<String>,
    pub summary: ShiftSummary,
}

/// `POST /shifts/{id}/cash-movements`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(example = json!({"kind": "out", "amount_cents": 1500, "reason": "taxi for a delivery"}))]
pub struct CashMovementRequest {
    pub kind: CashMovementKind,
    #[schema(minimum = 1, maximum = 1_000_000_000_000_000_i64)]
    pub amount_cents: i64,
    #[schema(min_length = 1, max_length = 64)]
    pub reason: Option<String>,
}

/// The 201 of a cash movement.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct CashMovement {
    pub shift_id: String,
    pub seq: u64,
    pub kind: CashMovementKind,
    pub amount_cents: i64,
    pub reason: String,
    pub user_id: Option<String>,
    #[schema(format = DateTime)]
    pub recorded_at: String,
}

/// `POST /shifts/{id}/close`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(example = json!({"counted_cash_cents": 43550}))]
pub struct CloseShiftRequest {
    #[schema(minimum = 0, maximum = 1_000_000_000_000_000_i64)]
    pub counted_cash_cents: i64,
}

/// One line of a return request.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ReturnLineRequest {
    pub product_id: ProductId,
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub quantity: i64,
}

/// `POST /sales/{sale_id}/returns`. Without `lines`, everything not yet returned (a void).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(example = json!({"lines": [{"product_id": "ARROZ-1KG", "quantity": 1}], "reason": "damaged",
    "restock": false, "refund_method": "cash", "shift_id": "CUS-SH-000007"}))]
pub struct ReturnRequest {
    pub lines: Option<Vec<ReturnLineRequest>>,
    #[schema(min_length = 1, max_length = 64)]
    pub reason: Option<String>,
    /// Put the units back into stock (default `true`); `false` for damaged goods.
    pub restock: Option<bool>,
    /// Default: the sale's method when it was paid with one, else `cash`.
    #[schema(pattern = "^[a-z_]{1,32}$")]
    pub refund_method: Option<String>,
    /// The open shift whose drawer pays the refund.
    pub shift_id: Option<String>,
}

/// One line of a return: the sale's own unit price.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct ReturnLine {
    pub product_id: String,
    pub quantity: i64,
    pub unit_price_cents: i64,
    pub line_total_cents: i64,
}

/// The 201 of a return.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct ReturnResponse {
    pub return_id: String,
    pub sale_id: String,
    pub seq: u64,
    pub lines: Vec<ReturnLine>,
    pub total_cents: i64,
    pub restock: bool,
    pub refund_method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shift_id: Option<String>,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[schema(format = DateTime)]
    pub returned_at: String,
}

// ---------------------------------------------------------------- central endpoints

/// A shift as central knows it (`GET /shifts`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct CentralShift {
    pub branch_id: String,
    pub shift_id: String,
    pub till_id: String,
    pub opened_by: Option<String>,
    #[schema(format = DateTime)]
    pub opened_at: String,
    pub opening_float_cents: i64,
    pub status: ShiftStatus,
    pub closed_by: Option<String>,
    #[schema(format = DateTime)]
    pub closed_at: Option<String>,
    /// Central's own summary, recomputed from the events it applied.
    pub summary: ShiftSummary,
    /// The summary the branch closed the shift with (null while open).
    pub branch_summary: Option<ShiftSummary>,
    /// `summary == branch_summary`; null while the shift is open.
    pub consistent: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ShiftList {
    pub shifts: Vec<CentralShift>,
}

/// A return as central knows it (`GET /returns`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct CentralReturn {
    pub branch_id: String,
    pub return_id: String,
    pub sale_id: String,
    pub seq: u64,
    pub lines: Vec<ReturnLine>,
    pub total_cents: i64,
    pub restock: bool,
    pub refund_method: String,
    pub shift_id: Option<String>,
    pub reason: Option<String>,
    pub user_id: Option<String>,
    #[schema(format = DateTime)]
    pub returned_at: String,
    #[schema(format = DateTime)]
    pub received_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReturnsPage {
    pub returns: Vec<CentralReturn>,
    /// Pass as `after` for the next page; `null` on the last page.
    pub next: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pay(method: &str, amount_cents: i64) -> Payment {
        Payment {
            method: method.into(),
            amount_cents,
        }
    }

    #[test]
    fn cash_may_exceed_the_total_and_the_excess_is_change() {
        assert_eq!(check_payments(&[pay("cash", 2000)], 1550), Ok(450));
        assert_eq!(check_payments(&[pay("card", 500), pay("cash", 2000)], 2100), Ok(400));
        assert_eq!(check_payments(&[pay("card", 1550)], 1550), Ok(0));
    }

    #[test]
    fn payments_that_do_not_settle_the_total_are_refused() {
        for ps in [
            vec![],
            vec![pay("cash", 1000)],
            vec![pay("card", 2000)],
            vec![pay("card", 1000), pay("wallet", 1000)],
            vec![pay("cash", 0), pay("card", 1550)],
            vec![pay("cash", -5), pay("card", 1555)],
            vec![pay("Cash", 1550)],
            vec![pay("cash", MAX_AMOUNT_CENTS + 1)],
        ] {
            assert!(check_payments(&ps, 1550).is_err(), "{ps:?}");
        }
        assert!(check_payments(&vec![pay("cash", 100); MAX_PAYMENTS + 1], 100).is_err());
    }

    #[test]
    fn the_summary_nets_change_refunds_and_movements() {
        let mut t = ShiftTally::default();
        t.sale(1550, Some(&[pay("cash", 2000)]));
        t.sale(2100, Some(&[pay("card", 500), pay("cash", 2000)]));
        t.sale(700, None);
        t.refund(300, "cash");
        t.movement(CashMovementKind::Out, 1000);
        t.movement(CashMovementKind::In, 200);
        let s = t.summary(10000, Some(12000));
        assert_eq!(s.sales_count, 3);
        assert_eq!(s.gross_cents, 4350);
        assert_eq!(s.net_cents, 4050);
        assert_eq!(s.by_method["cash"], 1550 + 1600 - 300);
        assert_eq!(s.by_method["card"], 500);
        assert_eq!(s.by_method[UNSPECIFIED], 700);
        assert_eq!(s.expected_cash_cents, 10000 + 2850 - 1000 + 200);
        assert_eq!(s.difference_cents, Some(12000 - 12050));
    }
}
