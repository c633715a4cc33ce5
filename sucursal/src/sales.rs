//! Selling: validation, idempotency, reservation, pricing, durable commit. (Adjusting and
//! counting stock: [`crate::stock`].)
//!
//! The path of a sale: validate → (idempotency check) → reserve in the DashMap → price the
//! basket → hand it to the storage writer → wait for the group commit → 201. Nothing here
//! waits for central. What a sale costs and what its answer says are decided here; the
//! storage only persists what it is given and numbers it.
use crate::app::AppState;
use crate::error::BranchError;
use crate::idempotency::Begin;
use crate::inventory::{ReserveError, Reserved};
use crate::permissions::Caller;
use crate::storage::{Receipt, RecordSale, Remember};
use colmena_shared::ids::{check_quantity, check_text, check_visible_ascii, ProductId};
use colmena_shared::till::{
    check_method, check_payments, check_positive_amount, check_till_id, is_method, Payment, MAX_AMOUNT_CENTS,
    MAX_PAYMENTS, UNSPECIFIED,
};
use colmena_shared::wire::{SaleLineOut, SaleResponse, SellRequest};
use std::sync::Arc;

/// Most lines in one basket.
pub const MAX_LINES: usize = 500;

#[derive(Debug, Clone)]
pub struct ValidSale {
    pub lines: Vec<(ProductId, i64)>,
    pub cashier_id: Option<String>,
    /// Checked in shape here; whether they settle the total once it is priced.
    pub payments: Option<Vec<Payment>>,
    pub shift_id: Option<String>,
}

/// A basket priced from its reservations: what the storage records and the 201 reports.
#[derive(Debug, Clone)]
pub struct PricedSale {
    pub lines: Vec<SaleLineOut>,
    pub total_cents: i64,
    pub cashier_id: Option<String>,
    /// `None`: the tender is unspecified.
    pub payments: Option<Vec<Payment>>,
    pub change_cents: i64,
    pub shift_id: Option<String>,
}

/// Prices each line at the unit price it was reserved at (the price in force when its
/// stock was taken). Sums saturate: with quantities ≤ 1,000,000 and prices ≤ 10^10 cents a
/// basket cannot overflow an i64, but a saturated total is still no panic.
/// The tenders are checked against the total here: `payment_mismatch` when they do not
/// settle it (only cash may exceed it; the excess is the change).
pub fn price(sale: ValidSale, reserved: &[Reserved]) -> Result<PricedSale, BranchError> {
    let ValidSale {
        lines,
        cashier_id,
        payments,
        shift_id,
    } = sale;
    let mut out = Vec::with_capacity(lines.len());
    let mut total: i64 = 0;
    for (product_id, quantity) in lines {
        let r = reserved
            .iter()
            .find(|r| r.product_id == product_id.as_str())
            .ok_or_else(|| BranchError::StorageUnavailable(format!("sale line {product_id} has no reservation")))?;
        let line_total = r.unit_price_cents.saturating_mul(quantity);
        total = total.saturating_add(line_total);
        out.push(SaleLineOut {
            product_id: product_id.into_string(),
            quantity,
            unit_price_cents: r.unit_price_cents,
            line_total_cents: line_total,
            remaining_stock: r.remaining,
        });
    }
    let change_cents = match &payments {
        None => 0,
        Some(ps) => check_payments(ps, total).map_err(BranchError::PaymentMismatch)?,
    };
    Ok(PricedSale {
        lines: out,
        total_cents: total,
        cashier_id,
        payments,
        change_cents,
        shift_id,
    })
}

/// The 201 of a recorded sale.
pub fn response(branch_id: &str, sale: PricedSale, receipt: Receipt) -> SaleResponse {
    SaleResponse {
        sale_id: receipt.sale_id,
        branch_id: branch_id.to_string(),
        seq: receipt.seq,
        lines: sale.lines,
        total_cents: sale.total_cents,
        sold_at: receipt.committed_at,
        cashier_id: sale.cashier_id,
        payments: sale.payments.unwrap_or_else(|| {
            vec![Payment {
                method: UNSPECIFIED.into(),
                amount_cents: sale.total_cents,
            }]
        }),
        change_cents: sale.change_cents,
        shift_id: sale.shift_id,
        sync: "pending".into(),
    }
}

/// The body an `Idempotency-Key` replays: the first 201, byte for byte.
fn response_body(branch_id: &str, sale: &PricedSale, receipt: &Receipt) -> serde_json::Result<String> {
    serde_json::to_string(&response(branch_id, sale.clone(), receipt.clone()))
}

pub enum SellOutcome {
    Created(SaleResponse),
    /// The JSON body of the first 201 for this Idempotency-Key.
    Replayed(Arc<str>),
}

pub fn validate_sale(req: SellRequest) -> Result<ValidSale, BranchError> {
    let invalid = BranchError::InvalidRequest;
    let basket = req.items.is_some();
    let lines: Vec<(ProductId, i64)> = match (req.items, req.product_id, req.quantity) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(invalid("use either product_id/quantity or items, not both".into()))
        }
        (Some(items), None, None) => {
            if items.is_empty() {
                return Err(invalid("items must not be empty".into()));
            }
            if items.len() > MAX_LINES {
                return Err(invalid(format!("a basket has at most {MAX_LINES} lines")));
            }
            items.into_iter().map(|l| (l.product_id, l.quantity)).collect()
        }
        (None, Some(p), Some(q)) => vec![(p, q)],
        (None, Some(_), None) => return Err(invalid("quantity is required".into())),
        (None, None, Some(_)) => return Err(invalid("product_id is required".into())),
        (None, None, None) => return Err(invalid("body needs product_id and quantity, or items".into())),
    };
    for (i, (_, q)) in lines.iter().enumerate() {
        // The field's name is only built for the error: this runs on every sale.
        if check_quantity("quantity", *q).is_err() {
            let field = if basket {
                format!("items[{i}].quantity")
            } else {
                "quantity".to_string()
            };
            check_quantity(&field, *q).map_err(invalid)?;
        }
    }
    if let Some(c) = &req.cashier_id {
        check_text("cashier_id", c, 1, 64).map_err(invalid)?;
    }
    if let Some(id) = &req.shift_id {
        check_till_id("shift_id", id).map_err(invalid)?;
    }
    if let Some(ps) = &req.payments {
        // Their shape is a malformed request; whether they settle the total is decided
        // once the basket is priced (`payment_mismatch`).
        if ps.is_empty() || ps.len() > MAX_PAYMENTS {
            return Err(BranchError::PaymentMismatch(format!(
                "payments must hold 1 to {MAX_PAYMENTS} tenders (leave it out for an unspecified tender)"
            )));
        }
        for (i, p) in ps.iter().enumerate() {
            // The field's name is only built for an error: this runs on every paid sale.
            if !is_method(&p.method) {
                check_method(&format!("payments[{i}].method"), &p.method).map_err(invalid)?;
            }
            if !(1..=MAX_AMOUNT_CENTS).contains(&p.amount_cents) {
                check_positive_amount(&format!("payments[{i}].amount_cents"), p.amount_cents)
                    .map_err(BranchError::PaymentMismatch)?;
            }
        }
    }
    Ok(ValidSale {
        lines,
        cashier_id: req.cashier_id,
        payments: req.payments,
        shift_id: req.shift_id,
    })
}

/// Who made the sale: with a user token, the session's user is the cashier, and a body
/// naming someone else is refused (a till cannot sell in another cashier's name). With the
/// POS token the body's `cashier_id`, if any, stands as given.
pub fn attribute(sale: &mut ValidSale, caller: &Caller) -> Result<(), BranchError> {
    if let Caller::User { user_id, .. } = caller {
        if sale.cashier_id.as_deref().is_some_and(|c| c != user_id.as_str()) {
            return Err(BranchError::Forbidden(
                "cashier_id must be the logged-in user's id (or left out)".into(),
            ));
        }
        sale.cashier_id = Some(user_id.to_string());
    }
    Ok(())
}

/// What "the same body" means for Idempotency-Key: the request as understood, so clients
/// that re-serialise (whitespace, key order, `1` vs `"1"`) still match.
pub fn fingerprint(v: &ValidSale) -> String {
    let lines: Vec<(&str, i64)> = v.lines.iter().map(|(p, q)| (p.as_str(), *q)).collect();
    serde_json::json!({"lines": lines, "cashier_id": v.cashier_id, "payments": v.payments, "shift_id": v.shift_id})
        .to_string()
}

pub fn check_idempotency_key(key: &str) -> Result<(), BranchError> {
    check_visible_ascii("Idempotency-Key", key, 1, 255).map_err(BranchError::InvalidRequest)
}

pub(crate) fn reserve_error(e: ReserveError) -> BranchError {
    match e {
        ReserveError::UnknownProduct(p) => BranchError::UnknownProduct(p),
        ReserveError::Inactive(p) => BranchError::ProductInactive(p),
        ReserveError::Insufficient {
            product_id,
            available,
            requested,
        } => BranchError::InsufficientStock {
            product_id,
            available,
            requested,
        },
    }
}

/// Only from an HTTP handler (see [`crate::storage::WriterHandle::submit_from_handler`]).
pub async fn sell(app: &AppState, sale: ValidSale, key: Option<&str>) -> Result<SellOutcome, BranchError> {
    let guard = match key {
        None => None,
        Some(k) => match app.idempotency.begin(k, fingerprint(&sale)) {
            Begin::Proceed(g) => Some(g),
            Begin::Replay(body) => return Ok(SellOutcome::Replayed(body)),
            Begin::Mismatch => return Err(BranchError::IdempotencyKeyReused),
            Begin::InFlight => return Err(BranchError::IdempotencyKeyInFlight),
        },
    };
    // A shift closed before this sale is refused before any stock is held; one closed
    // while it commits is refused by the writer, which orders the two.
    if let Some(id) = &sale.shift_id {
        if !app.till.is_open(id) {
            return Err(BranchError::ShiftNotOpen(id.clone()));
        }
    }
    let wanted: Vec<(String, i64)> = sale.lines.iter().map(|(p, q)| (p.to_string(), *q)).collect();
    // Priced at this instant on the branch's own clock: a scheduled price is in force from
    // its instant on, with or without central (docs/protocol.md, "Catalog at the branch").
    let reserved = app
        .inventory
        .reserve_for_sale(&wanted, colmena_shared::clock::now_millis())
        .map_err(reserve_error)?;
    let priced = match price(sale, &reserved) {
        Ok(p) => p,
        Err(e) => {
            app.inventory.release(&reserved);
            return Err(e);
        }
    };
    let cmd = RecordSale {
        sale: priced,
        reserved,
        remember: guard.map(|guard| Remember {
            guard,
            render: response_body,
        }),
    };
    // On failure or refusal the writer has already given the reserved units back.
    let recorded = app
        .writer
        .submit_from_handler(cmd)
        .await?
        .map_err(BranchError::refused_on_shift)?;
    crate::failpoints::after_commit();
    Ok(SellOutcome::Created(response(
        app.branch_id.as_str(),
        recorded.sale,
        recorded.receipt,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(v: serde_json::Value) -> SellRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn both_body_forms_validate() {
        let a = validate_sale(req(serde_json::json!({"product_id": "P1", "quantity": 5}))).unwrap();
        let b = validate_sale(req(serde_json::json!({"items": [{"product_id": "P1", "quantity": 5}]}))).unwrap();
        assert_eq!(fingerprint(&a), fingerprint(&b));
    }

    #[test]
    fn integer_and_string_product_ids_have_the_same_fingerprint() {
        let a = validate_sale(req(serde_json::json!({"product_id": 7, "quantity": 1}))).unwrap();
        let b = validate_sale(req(serde_json::json!({"product_id": "7", "quantity": 1}))).unwrap();
        assert_eq!(fingerprint(&a), fingerprint(&b));
    }

    #[test]
    fn mixed_or_empty_bodies_are_invalid() {
        for v in [
            serde_json::json!({}),
            serde_json::json!({"items": []}),
            serde_json::json!({"product_id": "P1"}),
            serde_json::json!({"quantity": 1}),
            serde_json::json!({"product_id": "P1", "quantity": 0}),
            serde_json::json!({"product_id": "P1", "quantity": 1_000_001}),
            serde_json::json!({"product_id": "P1", "quantity": 1, "items": [{"product_id": "P1", "quantity": 1}]}),
            serde_json::json!({"product_id": "P1", "quantity": 1, "cashier_id": ""}),
            serde_json::json!({"product_id": "P1", "quantity": 1, "shift_id": ""}),
            serde_json::json!({"product_id": "P1", "quantity": 1, "shift_id": "a b"}),
            serde_json::json!({"product_id": "P1", "quantity": 1, "payments": []}),
            serde_json::json!({"product_id": "P1", "quantity": 1, "payments": [{"method": "", "amount_cents": 1}]}),
        ] {
            assert!(validate_sale(req(v.clone())).is_err(), "{v}");
        }
    }
}
