//! Central's side of the wire for tests: events as a branch pushes them, pushes by hand,
//! and readers of central's answers (branch rows, stock, a byte-exact snapshot). Shared by
//! the in-process tests (`api`) and the process tests (`e2e`); see docs/protocol.md for the
//! shapes.
use super::{branch_token, ADMIN_TOKEN};
use serde_json::{json, Value};

pub const T0: &str = "2026-11-23T16:00:00Z";

/// A sale event: one line per `(product, quantity, unit price)`.
pub fn sale(seq: u64, lines: &[(&str, i64, i64)]) -> Value {
    let total: i64 = lines.iter().map(|(_, q, p)| q * p).sum();
    json!({
        "seq": seq, "kind": "sale", "occurred_at": T0, "sale_id": format!("S-{seq:010}"),
        "lines": lines.iter().map(|(p, q, u)| json!({"product_id": p, "quantity": q, "unit_price_cents": u})).collect::<Vec<_>>(),
        "total_cents": total,
    })
}

pub fn adjustment(seq: u64, product: &str, delta: i64) -> Value {
    json!({"seq": seq, "kind": "adjustment", "occurred_at": T0, "product_id": product, "quantity_delta": delta, "reason": "count"})
}

/// Sales `from..=to`, each one unit of P1 at 100.
pub fn sales(from: u64, to: u64) -> Vec<Value> {
    (from..=to).map(|s| sale(s, &[("P1", 1, 100)])).collect()
}

pub async fn push(c: &reqwest::Client, url: &str, branch: &str, events: &[Value]) -> (u16, Value) {
    let r = c
        .post(format!("{url}/sync/push"))
        .bearer_auth(branch_token(branch))
        .json(&json!({"branch_id": branch, "events": events}))
        .send()
        .await
        .expect("push");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Pushes and expects 200; returns `(applied_through, duplicates)`.
pub async fn push_ok(c: &reqwest::Client, url: &str, branch: &str, events: &[Value]) -> (u64, u64) {
    let (status, body) = push(c, url, branch, events).await;
    assert_eq!(status, 200, "push: {body}");
    (
        body["applied_through"].as_u64().unwrap(),
        body["duplicates"].as_u64().unwrap(),
    )
}

pub fn branch_row(branches: &Value, id: &str) -> Value {
    branches["branches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["branch_id"] == id)
        .cloned()
        .unwrap_or(Value::Null)
}

pub fn seqs(sales: &[Value]) -> Vec<u64> {
    sales.iter().map(|s| s["seq"].as_u64().unwrap()).collect()
}

pub fn stock_of(inventory: &Value, product: &str, branch: &str) -> Option<i64> {
    inventory["products"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["product_id"] == product)?["by_branch"][branch]
        .as_i64()
}

/// Everything a client can see, as raw bodies: compared byte for byte.
pub async fn snapshot(c: &reqwest::Client, url: &str) -> String {
    let mut out = String::new();
    for path in [
        "/inventory",
        "/products",
        "/branches",
        "/sales?limit=1000",
        "/sync/pull?branch_id=CUS",
        "/sync/pull?branch_id=CUS&include=users",
        "/users",
        "/audit?limit=1000",
    ] {
        let r = c
            .get(format!("{url}{path}"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
        out.push_str(&r.text().await.unwrap());
        out.push('\n');
    }
    out
}

/// The deterministic event `seq` of `branch` in the storm: mostly sales, every 5th an
/// adjustment.
#[allow(clippy::manual_is_multiple_of)] // `is_multiple_of` is newer than the workspace's MSRV (1.85)
pub fn storm_event(seq: u64) -> Value {
    if seq % 5 == 0 {
        adjustment(seq, "P2", (seq % 7 + 1) as i64)
    } else if seq % 4 == 0 {
        sale(seq, &[("P1", (seq % 3 + 1) as i64, 550), ("P2", 2, 120)])
    } else {
        sale(seq, &[("P1", (seq % 3 + 1) as i64, 550)])
    }
}

pub const STORM_BATCH: u64 = 50;

pub const STORM_ALLOCATION: i64 = 1000;

/// `PUT /users/{id}` with the admin token: (status, body).
pub async fn put_user(c: &reqwest::Client, url: &str, id: &str, body: Value) -> (u16, Value) {
    let r = c
        .put(format!("{url}/users/{id}"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .expect("PUT /users");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// [`put_user`], expecting 200; the saved user.
pub async fn put_user_ok(c: &reqwest::Client, url: &str, id: &str, body: Value) -> Value {
    let (status, v) = put_user(c, url, id, body).await;
    assert_eq!(status, 200, "PUT /users/{id}: {v}");
    v
}
