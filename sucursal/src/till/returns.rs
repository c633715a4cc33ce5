//! Returns and voids: `POST /sales/{sale_id}/returns`.
//!
//! A return refunds at the sale's own unit prices, never more of a product than the sale
//! sold minus what earlier returns took back — checked here against what is durable and
//! again by the writer in the return's own transaction, so concurrent returns of one sale
//! cannot both pass. Without `lines` it returns everything not yet returned (a void).
//! Restocked units reach the in-memory stock only once the return is durable.
use super::{begin, user_of, Answer, Begun};
use crate::app::AppState;
use crate::error::BranchError;
use crate::permissions::Caller;
use crate::storage::returns::{self as stored, SaleRecord};
use crate::storage::RecordReturn;
use colmena_shared::clock;
use colmena_shared::ids::{check_quantity, check_text};
use colmena_shared::till::{check_method, check_till_id, ReturnLine, ReturnRequest, ReturnResponse, CASH};
use colmena_shared::users::Role;
use colmena_shared::wire::Event;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};

fn invalid(m: String) -> BranchError {
    BranchError::InvalidRequest(m)
}

/// The seq of one of this branch's sale ids (`{branch}-{seq:010}`), if it is one.
pub fn sale_seq(branch_id: &str, sale_id: &str) -> Option<u64> {
    let digits = sale_id.strip_prefix(branch_id)?.strip_prefix('-')?;
    if digits.is_empty() || digits.len() > 19 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|s| *s > 0)
}

/// A sale's units and unit price per product (a product on two lines counts once, at the
/// price it was sold at: both lines were reserved at the same moment).
fn sold_of(sale: &Event) -> BTreeMap<String, (i64, i64)> {
    let mut sold = BTreeMap::new();
    for l in sale.lines.iter().flatten() {
        let e = sold
            .entry(l.product_id.as_str().to_string())
            .or_insert((0, l.unit_price_cents));
        e.0 += l.quantity;
    }
    sold
}

/// The refund method when the request names none: the sale's one method, else cash.
fn default_refund_method(sale: &Event) -> String {
    match sale.payments.as_deref() {
        Some([first, rest @ ..]) if rest.iter().all(|p| p.method == first.method) => first.method.clone(),
        _ => CASH.to_string(),
    }
}

/// The lines to return, each within what is left of the sale, at the sale's prices.
fn lines_to_return(
    req_lines: Option<Vec<colmena_shared::till::ReturnLineRequest>>,
    sold: &BTreeMap<String, (i64, i64)>,
    returned: &HashMap<String, i64>,
) -> Result<Vec<ReturnLine>, BranchError> {
    let left = |p: &str| {
        sold.get(p)
            .map_or(0, |(q, _)| q - returned.get(p).copied().unwrap_or(0))
    };
    let wanted: BTreeMap<String, i64> = match req_lines {
        None => sold
            .keys()
            .map(|p| (p.clone(), left(p)))
            .filter(|(_, q)| *q > 0)
            .collect(),
        Some(lines) => {
            if lines.is_empty() || lines.len() > crate::sales::MAX_LINES {
                return Err(invalid(format!(
                    "lines must hold 1 to {} lines (leave it out to return everything)",
                    crate::sales::MAX_LINES
                )));
            }
            let mut w = BTreeMap::new();
            for (i, l) in lines.into_iter().enumerate() {
                check_quantity(&format!("lines[{i}].quantity"), l.quantity).map_err(invalid)?;
                *w.entry(l.product_id.into_string()).or_insert(0i64) += l.quantity;
            }
            w
        }
    };
    if wanted.is_empty() {
        return Err(BranchError::ReturnExceedsSale(
            "everything this sale sold was already returned".into(),
        ));
    }
    let mut out = Vec::with_capacity(wanted.len());
    for (product_id, quantity) in wanted {
        let Some((_, unit_price_cents)) = sold.get(&product_id) else {
            return Err(BranchError::ReturnExceedsSale(format!(
                "{product_id} is not in this sale"
            )));
        };
        let l = left(&product_id);
        if quantity > l {
            return Err(BranchError::ReturnExceedsSale(format!(
                "{product_id}: {l} left to return, {quantity} requested"
            )));
        }
        out.push(ReturnLine {
            line_total_cents: unit_price_cents.saturating_mul(quantity),
            product_id,
            quantity,
            unit_price_cents: *unit_price_cents,
        });
    }
    Ok(out)
}

/// `POST /sales/{sale_id}/returns`.
pub async fn record(
    app: &AppState,
    sale_id: &str,
    req: ReturnRequest,
    caller: Option<&Caller>,
    key: Option<&str>,
) -> Result<Answer<ReturnResponse>, BranchError> {
    let (user, role) = user_of(caller)?;
    let reason = match &req.reason {
        Some(r) => {
            check_text("reason", r, 1, 64).map_err(invalid)?;
            r.clone()
        }
        None => "unspecified".to_string(),
    };
    if let Some(m) = &req.refund_method {
        check_method("refund_method", m).map_err(invalid)?;
    }
    if let Some(id) = &req.shift_id {
        check_till_id("shift_id", id).map_err(invalid)?;
        if !app.till.is_open(id) {
            return Err(BranchError::ShiftNotOpen(id.clone()));
        }
    }
    let seq = sale_seq(app.branch_id.as_str(), sale_id).ok_or_else(|| BranchError::UnknownSale(sale_id.into()))?;
    let (record, returned) = app
        .read(move |c| Ok((stored::sale(c, seq)?, stored::returned(c, seq)?)))
        .await?;
    let Some(SaleRecord { sold_ms, event: sale }) = record else {
        return Err(BranchError::UnknownSale(sale_id.into()));
    };
    let window = app.till.rules.return_window;
    if clock::now_millis() - sold_ms > window.as_millis() as i64 {
        return Err(BranchError::ReturnWindowExpired(format!(
            "sale {sale_id} is older than the {}-day return window",
            window.as_secs() / 86_400
        )));
    }
    let fp = json!({"op": "return", "sale_id": sale_id, "lines": req.lines.as_ref().map(|ls| ls.iter()
        .map(|l| (l.product_id.as_str(), l.quantity)).collect::<Vec<_>>()), "reason": reason,
        "restock": req.restock, "refund_method": req.refund_method, "shift_id": req.shift_id});
    let sold = sold_of(&sale);
    let lines = lines_to_return(req.lines, &sold, &returned)?;
    let total: i64 = lines.iter().fold(0, |a, l| a.saturating_add(l.line_total_cents));
    let limit = app.till.rules.cashier_return_limit_cents;
    if role == Role::Cashier && total > limit {
        return Err(BranchError::Forbidden(format!(
            "a refund of {total} cents is over the cashier limit of {limit}; a supervisor or manager may do it"
        )));
    }
    let guard = match begin(app, key, fp.to_string())? {
        Begun::Replay(body) => return Ok(Answer::Replayed(body)),
        Begun::Fresh(g) => g,
    };
    let refund_method = req.refund_method.unwrap_or_else(|| default_refund_method(&sale));
    let done = app
        .writer
        .submit(RecordReturn {
            sale_seq: seq,
            sale_id: sale_id.to_string(),
            lines,
            sold: sold.into_iter().map(|(p, (q, _))| (p, q)).collect(),
            restock: req.restock.unwrap_or(true),
            refund_method,
            shift_id: req.shift_id,
            reason,
            user_id: Some(user),
            remember: guard,
        })
        .await?
        .map_err(BranchError::refused_on_shift)?;
    app.metrics.till.returns.inc();
    app.metrics.till.refunded_cents.inc_by(done.total_cents.max(0) as u64);
    Ok(Answer::New(done))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_branchs_sale_ids_have_a_seq() {
        assert_eq!(sale_seq("CUS", "CUS-0000000042"), Some(42));
        assert_eq!(sale_seq("CUS", "CUS-12345678901"), Some(12_345_678_901));
        for bad in [
            "ABA-0000000042",
            "CUS0000000042",
            "CUS-",
            "CUS-00000000x2",
            "CUS-0000000000",
            "CUS--1",
        ] {
            assert_eq!(sale_seq("CUS", bad), None, "{bad}");
        }
    }
}
