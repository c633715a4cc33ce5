//! The till's share of the chaos load (docs/protocol.md, "The till"): every cashier works a
//! shift on their own till, pays with a random mix of tenders, now and then returns a unit
//! of a sale or moves cash, and at the end of some rounds closes the shift with a count
//! near the expected cash. After each round every closed shift must be `consistent` at
//! central: its figures recomputed from the events central applied equal the branch's.
use super::chaos::{lock, Cashier, SellerReport};
use crate::support::till::code;
use crate::support::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// A random tender for a sale whose total is unknown in advance (prices move during the
/// run, from 50 to 5000 cents a unit): nothing, cash with change, or a one-cent card or
/// wallet part with the rest in cash.
pub(super) fn payments(rng: &mut fastrand::Rng) -> Option<Value> {
    let plenty = json!({"method": "cash", "amount_cents": 1_000_000});
    match rng.u32(0..4) {
        0 => None,
        1 => Some(json!([plenty])),
        2 => Some(json!([{"method": "card", "amount_cents": 1}, plenty])),
        _ => Some(json!([{"method": "wallet", "amount_cents": 1}, plenty])),
    }
}

/// `POST url+path` as the cashier with an Idempotency-Key, through restarts (a new session
/// after a 401) and kills (the same key again until the branch answers). `None` when it
/// never answered; a 5xx is reported as unexpected.
pub(super) async fn post(
    c: &reqwest::Client,
    url: &str,
    till: &Cashier,
    path: &str,
    body: &Value,
    r: &mut SellerReport,
) -> Option<(u16, Value)> {
    let key = format!("{}-{}-{}", till.user_id, path.len(), fastrand::u64(..));
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let token = super::chaos::session(c, url, till, r).await?;
        let sent = c
            .post(format!("{url}{path}"))
            .bearer_auth(&token)
            .header("Idempotency-Key", &key)
            .json(body)
            .send()
            .await;
        match sent {
            Ok(resp) if resp.status() == 401 => *lock(&till.token) = None,
            Ok(resp) => {
                let status = resp.status().as_u16();
                let v: Value = resp.json().await.unwrap_or(Value::Null);
                if status == 409 && code(&v) == "idempotency_key_in_flight" {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                if status >= 500 {
                    r.unexpected.push(format!("POST {path} {body}: {status} {v}"));
                }
                return Some((status, v));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    None
}

/// The cashier's open shift, opening one on their till if they have none.
pub(super) async fn shift(c: &reqwest::Client, url: &str, till: &Cashier, r: &mut SellerReport) -> Option<String> {
    if let Some(s) = lock(&till.shift).clone() {
        return Some(s);
    }
    let body = json!({"till_id": till.till_id, "opening_float_cents": 10_000});
    match post(c, url, till, "/shifts", &body, r).await? {
        (201, v) => {
            let id = v["shift_id"].as_str()?.to_string();
            *lock(&till.shift) = Some(id.clone());
            Some(id)
        }
        (st, v) => {
            r.unexpected.push(format!("open shift on {}: {st} {v}", till.till_id));
            None
        }
    }
}

/// One unit of `product` of `sale_id` back, refunded from the shift's drawer.
pub(super) async fn return_one(
    c: &reqwest::Client,
    url: &str,
    till: &Cashier,
    (sale_id, product): (&str, &str),
    shift: &str,
    r: &mut SellerReport,
) {
    let body = json!({"lines": [{"product_id": product, "quantity": 1}], "reason": "chaos", "shift_id": shift});
    match post(c, url, till, &format!("/sales/{sale_id}/returns"), &body, r).await {
        Some((201, _)) => r.returns += 1,
        // The same unit twice (a sale of one unit drawn again) is refused, rightly.
        Some((409, v)) if code(&v) == "return_exceeds_sale" => {}
        Some((st, v)) => r.unexpected.push(format!("return {sale_id}: {st} {v}")),
        None => {}
    }
}

pub(super) async fn move_cash(
    c: &reqwest::Client,
    url: &str,
    till: &Cashier,
    shift: &str,
    rng: &mut fastrand::Rng,
    r: &mut SellerReport,
) {
    let kind = if rng.bool() { "in" } else { "out" };
    let body = json!({"kind": kind, "amount_cents": rng.i64(1..2000), "reason": "chaos"});
    match post(c, url, till, &format!("/shifts/{shift}/cash-movements"), &body, r).await {
        Some((201, _)) => r.cash_moves += 1,
        Some((st, v)) => r.unexpected.push(format!("cash movement on {shift}: {st} {v}")),
        None => {}
    }
}

/// Closes the cashier's shift counting the expected cash give or take a little.
pub(super) async fn close(
    c: &reqwest::Client,
    url: &str,
    till: &Cashier,
    rng: &mut fastrand::Rng,
    r: &mut SellerReport,
) {
    let Some(shift) = lock(&till.shift).clone() else { return };
    let Some(token) = super::chaos::session(c, url, till, r).await else {
        return;
    };
    let Some(now) = try_get_json_auth(c, &format!("{url}/shifts/{shift}"), &token).await else {
        return;
    };
    let Some(expected) = now["summary"]["expected_cash_cents"].as_i64() else {
        return;
    };
    let counted = (expected + rng.i64(-100..=100)).max(0);
    match post(
        c,
        url,
        till,
        &format!("/shifts/{shift}/close"),
        &json!({"counted_cash_cents": counted}),
        r,
    )
    .await
    {
        Some((200, _)) => {
            *lock(&till.shift) = None;
            r.shifts_closed += 1;
        }
        Some((st, v)) => r.unexpected.push(format!("close {shift}: {st} {v}")),
        None => {}
    }
}

async fn try_get_json_auth(c: &reqwest::Client, url: &str, token: &str) -> Option<Value> {
    let resp = c.get(url).bearer_auth(token).send().await.ok()?;
    resp.status().is_success().then_some(())?;
    resp.json().await.ok()
}

/// Every closed shift of `branch` is consistent at central; how many there are.
pub(super) async fn check_shifts(c: &reqwest::Client, central: &str, branch: &str, round: usize) -> usize {
    let v = get_json(
        c,
        &format!("{central}/shifts?branch_id={branch}&status=closed"),
        ADMIN_TOKEN,
    )
    .await;
    let shifts = v["shifts"].as_array().cloned().unwrap_or_default();
    for s in &shifts {
        assert_eq!(
            s["consistent"], true,
            "round {round}: {branch}: a closed shift is not consistent at central: {s}"
        );
    }
    shifts.len()
}
