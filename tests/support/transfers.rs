//! Transfers for tests (docs/protocol.md, "Transfers"): creating one at central, a step at a
//! branch, and the extended invariant over central's view of every transfer. Shared by the
//! in-process tests (`api`) and the process tests (`e2e`).
use super::http::get_json;
use super::ADMIN_TOKEN;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// `POST /transfers` at central with an Idempotency-Key: status and body.
pub async fn request(c: &reqwest::Client, central: &str, body: &Value, key: &str) -> (u16, Value) {
    let r = c
        .post(format!("{central}/transfers"))
        .bearer_auth(ADMIN_TOKEN)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .expect("POST /transfers");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Creates a transfer at central (panics unless 201) and returns its id.
pub async fn create(c: &reqwest::Client, central: &str, from: &str, to: &str, lines: &[(&str, i64)]) -> String {
    let body = json!({
        "from_branch": from, "to_branch": to,
        "lines": lines.iter().map(|(p, q)| json!({"product_id": p, "quantity": q})).collect::<Vec<_>>(),
        "note": "prueba",
    });
    let key = format!("tr-{}", fastrand::u64(..));
    let (status, v) = request(c, central, &body, &key).await;
    assert_eq!(status, 201, "POST /transfers: {v}");
    assert_eq!(v["status"], "requested", "{v}");
    v["transfer_id"].as_str().expect("transfer_id").to_string()
}

/// `POST {branch}/transfers/{id}/{step}` (`dispatch` or `receive`) with `token`: status and
/// body.
pub async fn step(c: &reqwest::Client, branch: &str, token: &str, id: &str, step: &str, body: &Value) -> (u16, Value) {
    let r = c
        .post(format!("{branch}/transfers/{id}/{step}"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("POST a transfer step");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// `GET {base}/transfers/{id}` with `token` (panics unless 200).
pub async fn get(c: &reqwest::Client, base: &str, token: &str, id: &str) -> Value {
    get_json(c, &format!("{base}/transfers/{id}"), token).await
}

/// Every transfer central has, by id.
pub async fn central_transfers(c: &reqwest::Client, central: &str) -> BTreeMap<String, Value> {
    let v = get_json(c, &format!("{central}/transfers"), ADMIN_TOKEN).await;
    v["transfers"]
        .as_array()
        .expect("transfers")
        .iter()
        .map(|t| (t["transfer_id"].as_str().expect("id").to_string(), t.clone()))
        .collect()
}

/// The invariant's transfer part at central (docs/protocol.md, "The invariant"): every
/// received line balances (`received + lost == quantity`); `in_transit` of each product is
/// exactly what its transfers in transit carry; and `total_stock` = Σ `by_branch` +
/// `in_transit`. Returns the units in transit and lost, in all.
pub async fn check_central(c: &reqwest::Client, central: &str) -> (i64, i64) {
    let mut carried: BTreeMap<String, i64> = BTreeMap::new();
    let mut lost_total = 0;
    for (id, t) in central_transfers(c, central).await {
        for l in t["lines"].as_array().expect("lines") {
            let p = l["product_id"].as_str().expect("product_id").to_string();
            let q = l["quantity"].as_i64().expect("quantity");
            match t["status"].as_str() {
                Some("in_transit") => *carried.entry(p).or_default() += q,
                Some("received") => {
                    let (r, lost) = (l["received"].as_i64(), l["lost"].as_i64());
                    assert_eq!(
                        r.zip(lost).map(|(r, l)| r + l),
                        Some(q),
                        "{id}: {p} does not balance: {t}"
                    );
                    lost_total += lost.unwrap_or(0);
                }
                Some("requested" | "cancelled") => {}
                other => panic!("{id}: unknown status {other:?}"),
            }
        }
    }
    let inv = get_json(c, &format!("{central}/inventory"), ADMIN_TOKEN).await;
    let mut in_transit_total = 0;
    for p in inv["products"].as_array().expect("products") {
        let id = p["product_id"].as_str().expect("product_id");
        let in_transit = p["in_transit"].as_i64().expect("in_transit");
        let by_branch: i64 = p["by_branch"]
            .as_object()
            .expect("by_branch")
            .values()
            .map(|v| v.as_i64().expect("stock"))
            .sum();
        assert_eq!(
            in_transit,
            carried.get(id).copied().unwrap_or(0),
            "{id}: central's in_transit is not what its transfers carry"
        );
        assert_eq!(
            p["total_stock"].as_i64(),
            Some(by_branch + in_transit),
            "{id}: total_stock != Σ by_branch + in_transit: {p}"
        );
        in_transit_total += in_transit;
    }
    let listed: i64 = carried.values().sum();
    assert_eq!(
        in_transit_total, listed,
        "a product in transit is missing from /inventory"
    );
    (in_transit_total, lost_total)
}
