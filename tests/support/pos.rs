//! The point of sale's side for tests: a catalog file for `--catalog`, baskets, storms of
//! concurrent sellers, and readers of a branch's stock. Shared by the in-process tests
//! (`api`) and the process tests (`e2e`); see docs/protocol.md for the shapes.
use super::{client, POS_TOKEN};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

pub const PRODUCTS: usize = 10;

/// Product ids: P0..P8, and "9" — a numeric SKU, as POS clients that send integers use.
pub fn pid(i: usize) -> String {
    if i == 9 {
        "9".to_string()
    } else {
        format!("P{i}")
    }
}

pub fn write_catalog(dir: &Path, stock: i64) -> String {
    let items: Vec<Value> = (0..PRODUCTS)
        .map(|i| json!({"product_id": pid(i), "name": format!("Producto {i}"), "price_cents": 100 + i as i64 * 10, "stock": stock}))
        .collect();
    let path = dir.join("catalog.json");
    std::fs::write(&path, serde_json::to_string(&items).unwrap()).unwrap();
    path.to_string_lossy().into_owned()
}

pub async fn post(c: &reqwest::Client, url: &str, body: &Value, key: Option<&str>) -> (u16, Value, bool) {
    let mut rb = c.post(url).bearer_auth(super::branch_token_for(url)).json(body);
    if let Some(k) = key {
        rb = rb.header("Idempotency-Key", k);
    }
    let r = rb.send().await.expect("request");
    let status = r.status().as_u16();
    let replayed = r.headers().get("idempotent-replayed").is_some_and(|v| v == "true");
    let v = r.json::<Value>().await.unwrap_or(Value::Null);
    (status, v, replayed)
}

pub async fn get(c: &reqwest::Client, url: &str) -> Value {
    let r = c
        .get(url)
        .bearer_auth(super::branch_token_for(url))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200, "GET {url}");
    r.json().await.expect("json")
}

pub async fn stock_by_product(c: &reqwest::Client, base: &str) -> BTreeMap<String, i64> {
    super::by_product(&get(c, &format!("{base}/inventory")).await, "stock")
}

pub fn random_basket() -> Value {
    let lines = fastrand::usize(1..=3);
    let items: Vec<Value> = (0..lines)
        .map(|_| json!({"product_id": pid(fastrand::usize(..PRODUCTS)), "quantity": fastrand::i64(1..=3)}))
        .collect();
    json!({"items": items, "cashier_id": "caja-1"})
}

/// Runs `clients` concurrent sellers of `per_client` random baskets; returns every 201 body
/// and the count of each status seen.
pub async fn storm(base: &str, clients: usize, per_client: usize) -> (Vec<Value>, HashMap<u16, usize>) {
    let c = client();
    let url = format!("{base}/sell");
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (c, url) = (c.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut ok = Vec::new();
            let mut statuses: HashMap<u16, usize> = HashMap::new();
            for _ in 0..per_client {
                match c.post(&url).bearer_auth(POS_TOKEN).json(&random_basket()).send().await {
                    Ok(r) => {
                        let s = r.status().as_u16();
                        *statuses.entry(s).or_default() += 1;
                        if s == 201 {
                            match r.json::<Value>().await {
                                Ok(v) => ok.push(v),
                                Err(_) => break, // connection died mid-body: not acknowledged
                            }
                        }
                    }
                    Err(_) => break, // the server is gone (kill -9 tests)
                }
            }
            (ok, statuses)
        }));
    }
    let mut all = Vec::new();
    let mut statuses: HashMap<u16, usize> = HashMap::new();
    for t in tasks {
        let (ok, st) = t.await.unwrap();
        all.extend(ok);
        for (k, v) in st {
            *statuses.entry(k).or_default() += v;
        }
    }
    (all, statuses)
}

pub fn units_by_product(sales: &[Value]) -> BTreeMap<String, i64> {
    let mut m = BTreeMap::new();
    for s in sales {
        for l in s["lines"].as_array().unwrap() {
            *m.entry(l["product_id"].as_str().unwrap().to_string()).or_insert(0) += l["quantity"].as_i64().unwrap();
        }
    }
    m
}
