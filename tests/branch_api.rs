//! The branch's durable sale path (issue 2), end to end: the real `colmena-sucursal`
//! binary, real HTTP, a real SQLite file. Central is a dead URL here: the branch must not
//! care.
mod support;

use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use support::*;

const PRODUCTS: usize = 10;

/// Product ids: P0..P8, and "9" — a numeric SKU, as POS clients that send integers use.
fn pid(i: usize) -> String {
    if i == 9 {
        "9".to_string()
    } else {
        format!("P{i}")
    }
}

fn write_catalog(dir: &Path, stock: i64) -> String {
    let items: Vec<Value> = (0..PRODUCTS)
        .map(|i| json!({"product_id": pid(i), "name": format!("Producto {i}"), "price_cents": 100 + i as i64 * 10, "stock": stock}))
        .collect();
    let path = dir.join("catalog.json");
    std::fs::write(&path, serde_json::to_string(&items).unwrap()).unwrap();
    path.to_string_lossy().into_owned()
}

fn start_branch(dir: &Path, stock: i64) -> Proc {
    let catalog = write_catalog(dir, stock);
    spawn_branch(dir, "CUS", &dead_url(), &["--catalog", &catalog])
}

async fn post(c: &reqwest::Client, url: &str, body: &Value, key: Option<&str>) -> (u16, Value, bool) {
    let mut rb = c.post(url).bearer_auth(POS_TOKEN).json(body);
    if let Some(k) = key {
        rb = rb.header("Idempotency-Key", k);
    }
    let r = rb.send().await.expect("request");
    let status = r.status().as_u16();
    let replayed = r.headers().get("idempotent-replayed").is_some_and(|v| v == "true");
    let v = r.json::<Value>().await.unwrap_or(Value::Null);
    (status, v, replayed)
}

async fn get(c: &reqwest::Client, url: &str) -> Value {
    let r = c.get(url).bearer_auth(POS_TOKEN).send().await.expect("request");
    assert_eq!(r.status(), 200, "GET {url}");
    r.json().await.expect("json")
}

async fn stock_by_product(c: &reqwest::Client, base: &str) -> BTreeMap<String, i64> {
    let inv = get(c, &format!("{base}/inventory")).await;
    inv["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["product_id"].as_str().unwrap().to_string(),
                p["stock"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn random_basket() -> Value {
    let lines = fastrand::usize(1..=3);
    let items: Vec<Value> = (0..lines)
        .map(|_| json!({"product_id": pid(fastrand::usize(..PRODUCTS)), "quantity": fastrand::i64(1..=3)}))
        .collect();
    json!({"items": items, "cashier_id": "caja-1"})
}

/// Runs `clients` concurrent sellers of `per_client` random baskets; returns every 201 body
/// and the count of each status seen.
async fn storm(base: &str, clients: usize, per_client: usize) -> (Vec<Value>, HashMap<u16, usize>) {
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

fn units_by_product(sales: &[Value]) -> BTreeMap<String, i64> {
    let mut m = BTreeMap::new();
    for s in sales {
        for l in s["lines"].as_array().unwrap() {
            *m.entry(l["product_id"].as_str().unwrap().to_string()).or_insert(0) += l["quantity"].as_i64().unwrap();
        }
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_concurrent_sales_never_oversells_and_every_201_is_durable() {
    let dir = TempDir::new("storm");
    let initial = 1500;
    let branch = start_branch(dir.path(), initial);
    let (sales, statuses) = storm(&branch.url, 32, 1000).await;
    assert!(
        statuses.keys().all(|s| *s == 201 || *s == 409),
        "only 201 and 409 expected: {statuses:?}"
    );
    assert!(
        statuses.get(&409).copied().unwrap_or(0) > 0,
        "stock should run out in this storm: {statuses:?}"
    );
    let c = client();
    let stock = stock_by_product(&c, &branch.url).await;
    let sold = units_by_product(&sales);
    for (p, s) in &stock {
        assert!(*s >= 0, "{p} went negative: {s}");
        assert_eq!(
            initial - s,
            sold.get(p).copied().unwrap_or(0),
            "{p}: stock consumed != units answered 201"
        );
    }
    // Every 201 is an outbox event with its seq, and nothing else is.
    let events = stored_events(dir.path(), "CUS");
    let sale_events: HashMap<String, u64> = events
        .iter()
        .filter(|e| e["kind"] == "sale")
        .map(|e| (e["sale_id"].as_str().unwrap().to_string(), e["seq"].as_u64().unwrap()))
        .collect();
    assert_eq!(sale_events.len(), sales.len());
    for s in &sales {
        assert_eq!(
            sale_events.get(s["sale_id"].as_str().unwrap()),
            Some(&s["seq"].as_u64().unwrap())
        );
    }
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "seqs are 1..n without gaps"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_storm_loses_no_acknowledged_sale_and_never_reuses_a_seq() {
    let dir = TempDir::new("kill9");
    let initial = 100_000;
    let mut branch = start_branch(dir.path(), initial);
    let url = branch.url.clone();
    let storm = tokio::spawn(async move { storm(&url, 16, 100_000).await });
    tokio::time::sleep(Duration::from_millis(700)).await;
    branch.kill9();
    let (acked, _) = storm.await.unwrap();
    assert!(
        acked.len() > 50,
        "the storm should have sold something before the kill: {}",
        acked.len()
    );

    branch.restart();
    let c = client();
    let events = stored_events(dir.path(), "CUS");
    let by_id: HashMap<&str, &Value> = events
        .iter()
        .filter(|e| e["kind"] == "sale")
        .map(|e| (e["sale_id"].as_str().unwrap(), e))
        .collect();
    for s in &acked {
        let e = by_id
            .get(s["sale_id"].as_str().unwrap())
            .unwrap_or_else(|| panic!("acknowledged sale {} lost", s["sale_id"]));
        assert_eq!(e["seq"], s["seq"]);
        assert_eq!(e["total_cents"], s["total_cents"]);
    }
    // Stock = initial − every durable sale (including ones whose 201 never reached the client).
    let durable: Vec<Value> = events.iter().filter(|e| e["kind"] == "sale").cloned().collect();
    let sold = units_by_product(&durable);
    let stock = stock_by_product(&c, &branch.url).await;
    for (p, s) in &stock {
        assert_eq!(*s, initial - sold.get(p).copied().unwrap_or(0), "{p}");
    }
    let last_seq = events.iter().map(|e| e["seq"].as_u64().unwrap()).max().unwrap();
    let (st, v, _) = post(
        &c,
        &format!("{}/sell", branch.url),
        &json!({"product_id": "P1", "quantity": 1}),
        None,
    )
    .await;
    assert_eq!(st, 201);
    assert_eq!(
        v["seq"].as_u64().unwrap(),
        last_seq + 1,
        "the next sale continues the seq"
    );
    let status = get(&c, &format!("{}/status", branch.url)).await;
    assert_eq!(status["outbox"]["last_seq"].as_u64().unwrap(), last_seq + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_replays_refuses_mismatch_and_concurrency_and_survives_restart() {
    let dir = TempDir::new("idem");
    let mut branch = start_branch(dir.path(), 1000);
    let c = client();
    let sell = format!("{}/sell", branch.url);
    let body = json!({"items": [{"product_id": "P1", "quantity": 2}, {"product_id": 9, "quantity": 1}]});
    let before = stock_by_product(&c, &branch.url).await;

    let (s1, first, r1) = post(&c, &sell, &body, Some("key-1")).await;
    assert_eq!((s1, r1), (201, false));
    // Same key, same meaning (product id as a string this time): replay, nothing sold.
    let same = json!({"items": [{"product_id": "P1", "quantity": 2}, {"product_id": "9", "quantity": 1}]});
    let (s2, second, r2) = post(&c, &sell, &same, Some("key-1")).await;
    assert_eq!((s2, r2), (201, true));
    assert_eq!(first, second);
    let (s3, v3, _) = post(&c, &sell, &json!({"product_id": "P1", "quantity": 9}), Some("key-1")).await;
    assert_eq!(s3, 422);
    assert_eq!(v3["error"]["code"], "idempotency_key_reused");
    let after = stock_by_product(&c, &branch.url).await;
    assert_eq!(after["P1"], before["P1"] - 2);
    assert_eq!(after["9"], before["9"] - 1);

    // Concurrent requests with one key: exactly one sale; the others replay or get 409.
    let mut saw_in_flight = false;
    for round in 0..30 {
        let key = format!("race-{round}");
        let p1_before = stock_by_product(&c, &branch.url).await["P2"];
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (c, sell, key) = (c.clone(), sell.clone(), key.clone());
            tasks.push(tokio::spawn(async move {
                post(&c, &sell, &json!({"product_id": "P2", "quantity": 1}), Some(&key)).await
            }));
        }
        let mut originals = 0;
        for t in tasks {
            let (s, v, replayed) = t.await.unwrap();
            match (s, replayed) {
                (201, false) => originals += 1,
                (201, true) => {}
                (409, _) => {
                    assert_eq!(v["error"]["code"], "idempotency_key_in_flight");
                    saw_in_flight = true;
                }
                other => panic!("unexpected {other:?} {v}"),
            }
        }
        assert_eq!(originals, 1, "round {round}: exactly one request sells");
        assert_eq!(stock_by_product(&c, &branch.url).await["P2"], p1_before - 1);
        if saw_in_flight && round >= 3 {
            break;
        }
    }
    assert!(saw_in_flight, "no request ever saw the key in flight");

    // Records survive a restart.
    let st = branch.terminate(Duration::from_secs(10));
    assert!(st.is_some_and(|s| s.success()), "SIGTERM exits 0");
    branch.restart();
    let (s4, fourth, r4) = post(&c, &format!("{}/sell", branch.url), &body, Some("key-1")).await;
    assert_eq!((s4, r4), (201, true));
    assert_eq!(fourth, first);
}

struct Case {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    body: Option<Vec<u8>>,
    content_type: Option<&'static str>,
    token: Option<&'static str>,
    headers: Vec<(&'static str, String)>,
    status: u16,
    code: &'static str,
}

fn case(
    name: &'static str,
    method: &'static str,
    path: &'static str,
    body: &str,
    status: u16,
    code: &'static str,
) -> Case {
    Case {
        name,
        method,
        path,
        body: if body.is_empty() {
            None
        } else {
            Some(body.as_bytes().to_vec())
        },
        content_type: Some("application/json"),
        token: Some(POS_TOKEN),
        headers: vec![],
        status,
        code,
    }
}

fn bad_input_cases() -> Vec<Case> {
    let mut v = vec![
        // POST /sell: JSON shape and types
        case("sell not json", "POST", "/sell", "hello", 400, "invalid_request"),
        case(
            "sell truncated json",
            "POST",
            "/sell",
            r#"{"product_id":"P1","quantity":"#,
            400,
            "invalid_request",
        ),
        case("sell json array", "POST", "/sell", "[]", 400, "invalid_request"),
        case("sell json null", "POST", "/sell", "null", 400, "invalid_request"),
        case("sell json string", "POST", "/sell", r#""P1""#, 400, "invalid_request"),
        case("sell empty object", "POST", "/sell", "{}", 400, "invalid_request"),
        case(
            "sell missing quantity",
            "POST",
            "/sell",
            r#"{"product_id":"P1"}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell missing product",
            "POST",
            "/sell",
            r#"{"quantity":1}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell zero quantity",
            "POST",
            "/sell",
            r#"{"product_id":"P1","quantity":0}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell negative quantity",
            "POST",
            "/sell",
            r#"{"product_id":"P1","quantity":-1}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell quantity over max",
            "POST",
            "/sell",
            r#"{"product_id":"P1","quantity":1000001}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell huge quantity",
            "POST",
            "/sell",
            r#"{"product_id":"P1","quantity":99999999999999999999999}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell float quantity",
            "POST",
            "/sell",
            r#"{"product_id":"P1","quantity":1.5}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell exponent quantity",
            "POST",
            "/sell",
            r#"{"product_id":"P1","quantity":1e2}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell string quantity",
            "POST",
            "/sell",
            r#"{"product_id":"P1","quantity":"1"}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell bool quantity",
            "POST",
            "/sell",
            r#"{"product_id":"P1","quantity":true}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell null quantity",
            "POST",
            "/sell",
            r#"{"product_id":"P1","quantity":null}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell empty product id",
            "POST",
            "/sell",
            r#"{"product_id":"","quantity":1}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell product id with space",
            "POST",
            "/sell",
            r#"{"product_id":"P 1","quantity":1}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell product id too long",
            "POST",
            "/sell",
            &format!(r#"{{"product_id":"{}","quantity":1}}"#, "x".repeat(65)),
            400,
            "invalid_request",
        ),
        case(
            "sell product id float",
            "POST",
            "/sell",
            r#"{"product_id":1.5,"quantity":1}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell product id object",
            "POST",
            "/sell",
            r#"{"product_id":{},"quantity":1}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell product id unicode",
            "POST",
            "/sell",
            r#"{"product_id":"Ñandú","quantity":1}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell unknown product",
            "POST",
            "/sell",
            r#"{"product_id":"NOPE","quantity":1}"#,
            404,
            "unknown_product",
        ),
        case(
            "sell unknown integer product",
            "POST",
            "/sell",
            r#"{"product_id":424242,"quantity":1}"#,
            404,
            "unknown_product",
        ),
        case(
            "sell more than stock",
            "POST",
            "/sell",
            r#"{"product_id":"P1","quantity":1000000}"#,
            409,
            "insufficient_stock",
        ),
        case(
            "sell basket with one short line",
            "POST",
            "/sell",
            r#"{"items":[{"product_id":"P1","quantity":1},{"product_id":"P2","quantity":999999}]}"#,
            409,
            "insufficient_stock",
        ),
        case(
            "sell basket repeated lines over stock",
            "POST",
            "/sell",
            r#"{"items":[{"product_id":"P1","quantity":600},{"product_id":"P1","quantity":600}]}"#,
            409,
            "insufficient_stock",
        ),
        case(
            "sell basket with unknown product",
            "POST",
            "/sell",
            r#"{"items":[{"product_id":"P1","quantity":1},{"product_id":"NOPE","quantity":1}]}"#,
            404,
            "unknown_product",
        ),
        case(
            "sell empty items",
            "POST",
            "/sell",
            r#"{"items":[]}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell items not array",
            "POST",
            "/sell",
            r#"{"items":{"product_id":"P1","quantity":1}}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell items with bad line",
            "POST",
            "/sell",
            r#"{"items":[{"product_id":"P1"}]}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell both forms",
            "POST",
            "/sell",
            r#"{"product_id":"P1","quantity":1,"items":[{"product_id":"P1","quantity":1}]}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell empty cashier",
            "POST",
            "/sell",
            r#"{"product_id":"P1","quantity":1,"cashier_id":""}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell cashier too long",
            "POST",
            "/sell",
            &format!(
                r#"{{"product_id":"P1","quantity":1,"cashier_id":"{}"}}"#,
                "c".repeat(65)
            ),
            400,
            "invalid_request",
        ),
        case(
            "sell cashier control chars",
            "POST",
            "/sell",
            r#"{"product_id":"P1","quantity":1,"cashier_id":"a\u0007b"}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell cashier not string",
            "POST",
            "/sell",
            r#"{"product_id":"P1","quantity":1,"cashier_id":7}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell deeply nested",
            "POST",
            "/sell",
            &format!("{}{}", "[".repeat(5000), "]".repeat(5000)),
            400,
            "invalid_request",
        ),
        case(
            "sell too many lines",
            "POST",
            "/sell",
            &format!(
                r#"{{"items":[{}]}}"#,
                vec![r#"{"product_id":"P1","quantity":1}"#; 501].join(",")
            ),
            400,
            "invalid_request",
        ),
        // POST /stock/adjustments
        case(
            "adjust empty",
            "POST",
            "/stock/adjustments",
            "{}",
            400,
            "invalid_request",
        ),
        case(
            "adjust zero delta",
            "POST",
            "/stock/adjustments",
            r#"{"product_id":"P1","quantity_delta":0}"#,
            400,
            "invalid_request",
        ),
        case(
            "adjust delta over max",
            "POST",
            "/stock/adjustments",
            r#"{"product_id":"P1","quantity_delta":1000001}"#,
            400,
            "invalid_request",
        ),
        case(
            "adjust delta under min",
            "POST",
            "/stock/adjustments",
            r#"{"product_id":"P1","quantity_delta":-1000001}"#,
            400,
            "invalid_request",
        ),
        case(
            "adjust float delta",
            "POST",
            "/stock/adjustments",
            r#"{"product_id":"P1","quantity_delta":2.5}"#,
            400,
            "invalid_request",
        ),
        case(
            "adjust unknown product",
            "POST",
            "/stock/adjustments",
            r#"{"product_id":"NOPE","quantity_delta":5}"#,
            404,
            "unknown_product",
        ),
        case(
            "adjust below zero",
            "POST",
            "/stock/adjustments",
            r#"{"product_id":"P1","quantity_delta":-999999}"#,
            409,
            "insufficient_stock",
        ),
        case(
            "adjust reason too long",
            "POST",
            "/stock/adjustments",
            &format!(
                r#"{{"product_id":"P1","quantity_delta":1,"reason":"{}"}}"#,
                "r".repeat(65)
            ),
            400,
            "invalid_request",
        ),
        case(
            "adjust reason empty",
            "POST",
            "/stock/adjustments",
            r#"{"product_id":"P1","quantity_delta":1,"reason":""}"#,
            400,
            "invalid_request",
        ),
        case(
            "adjust bad product id",
            "POST",
            "/stock/adjustments",
            r#"{"product_id":"a/b","quantity_delta":1}"#,
            400,
            "invalid_request",
        ),
        // GET endpoints
        case(
            "inventory unknown product",
            "GET",
            "/inventory/NOPE",
            "",
            404,
            "unknown_product",
        ),
        case(
            "inventory bad product id",
            "GET",
            "/inventory/bad%20id",
            "",
            400,
            "invalid_request",
        ),
        case(
            "inventory product id too long",
            "GET",
            "/inventory/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "",
            400,
            "invalid_request",
        ),
        case(
            "outbox limit zero",
            "GET",
            "/outbox?limit=0",
            "",
            400,
            "invalid_request",
        ),
        case(
            "outbox limit negative",
            "GET",
            "/outbox?limit=-1",
            "",
            400,
            "invalid_request",
        ),
        case(
            "outbox limit not a number",
            "GET",
            "/outbox?limit=ten",
            "",
            400,
            "invalid_request",
        ),
        case(
            "outbox limit huge",
            "GET",
            "/outbox?limit=99999999999",
            "",
            400,
            "invalid_request",
        ),
        case("unknown path", "GET", "/nope", "", 404, "not_found"),
        case("wrong method on sell", "GET", "/sell", "", 405, "method_not_allowed"),
        case(
            "wrong method on inventory",
            "DELETE",
            "/inventory",
            "",
            405,
            "method_not_allowed",
        ),
        case(
            "wrong method on status",
            "POST",
            "/status",
            "{}",
            405,
            "method_not_allowed",
        ),
    ];
    // Auth
    for (name, path, method) in [
        ("no token on sell", "/sell", "POST"),
        ("no token on inventory", "/inventory", "GET"),
        ("no token on product", "/inventory/P1", "GET"),
        ("no token on adjustments", "/stock/adjustments", "POST"),
        ("no token on status", "/status", "GET"),
        ("no token on outbox", "/outbox", "GET"),
    ] {
        let mut c = case(
            name,
            method,
            path,
            r#"{"product_id":"P1","quantity":1}"#,
            401,
            "unauthorized",
        );
        c.token = None;
        v.push(c);
    }
    let mut c = case(
        "wrong token",
        "POST",
        "/sell",
        r#"{"product_id":"P1","quantity":1}"#,
        401,
        "unauthorized",
    );
    c.token = Some("not-the-token");
    v.push(c);
    let mut c = case(
        "basic auth instead of bearer",
        "GET",
        "/inventory",
        "",
        401,
        "unauthorized",
    );
    c.token = None;
    c.headers.push(("authorization", "Basic dXNlcjpwYXNz".into()));
    v.push(c);
    // Content types and sizes
    let mut c = case(
        "sell text/plain",
        "POST",
        "/sell",
        r#"{"product_id":"P1","quantity":1}"#,
        415,
        "unsupported_media_type",
    );
    c.content_type = Some("text/plain");
    v.push(c);
    let mut c = case(
        "sell no content type",
        "POST",
        "/sell",
        r#"{"product_id":"P1","quantity":1}"#,
        415,
        "unsupported_media_type",
    );
    c.content_type = None;
    v.push(c);
    let mut c = case(
        "adjust form encoded",
        "POST",
        "/stock/adjustments",
        "product_id=P1&quantity_delta=1",
        415,
        "unsupported_media_type",
    );
    c.content_type = Some("application/x-www-form-urlencoded");
    v.push(c);
    let mut c = case("sell 2 MiB body", "POST", "/sell", "", 413, "payload_too_large");
    c.body = Some(format!(r#"{{"product_id":"P1","quantity":1,"pad":"{}"}}"#, "x".repeat(2 << 20)).into_bytes());
    v.push(c);
    let mut c = case("sell empty body", "POST", "/sell", "", 400, "invalid_request");
    c.body = Some(Vec::new());
    v.push(c);
    let mut c = case("sell invalid utf-8", "POST", "/sell", "", 400, "invalid_request");
    c.body = Some(b"{\"product_id\":\"P\xff\xfe\",\"quantity\":1}".to_vec());
    v.push(c);
    let mut c = case(
        "idempotency key too long",
        "POST",
        "/sell",
        r#"{"product_id":"P1","quantity":1}"#,
        400,
        "invalid_request",
    );
    c.headers.push(("idempotency-key", "k".repeat(256)));
    v.push(c);
    let mut c = case(
        "idempotency key with space",
        "POST",
        "/sell",
        r#"{"product_id":"P1","quantity":1}"#,
        400,
        "invalid_request",
    );
    c.headers.push(("idempotency-key", "a b".into()));
    v.push(c);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_its_documented_4xx_and_changes_nothing() {
    let dir = TempDir::new("badinput");
    let branch = start_branch(dir.path(), 1000);
    let c = client();
    let inv_before = c
        .get(format!("{}/inventory", branch.url))
        .bearer_auth(POS_TOKEN)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let out_before = c
        .get(format!("{}/outbox?limit=10000", branch.url))
        .bearer_auth(POS_TOKEN)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let cases = bad_input_cases();
    assert!(cases.len() >= 60, "{} cases", cases.len());
    let mut failures = Vec::new();
    for k in &cases {
        let method = reqwest::Method::from_bytes(k.method.as_bytes()).unwrap();
        let mut rb = c.request(method, format!("{}{}", branch.url, k.path));
        if let Some(t) = k.token {
            rb = rb.bearer_auth(t);
        }
        if let Some(ct) = k.content_type {
            if k.body.is_some() {
                rb = rb.header("content-type", ct);
            }
        }
        for (h, val) in &k.headers {
            rb = rb.header(*h, val.as_str());
        }
        if let Some(b) = &k.body {
            rb = rb.body(b.clone());
        }
        let r = rb.send().await.expect("request");
        let status = r.status().as_u16();
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if status != k.status || body["error"]["code"] != k.code || !ct.starts_with("application/json") {
            failures.push(format!(
                "{}: got {status} {body} ({ct}), want {} {}",
                k.name, k.status, k.code
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    let inv_after = c
        .get(format!("{}/inventory", branch.url))
        .bearer_auth(POS_TOKEN)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let out_after = c
        .get(format!("{}/outbox?limit=10000", branch.url))
        .bearer_auth(POS_TOKEN)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(inv_before, inv_after, "inventory changed");
    assert_eq!(out_before, out_after, "outbox changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adjustments_are_durable_events_and_move_stock() {
    let dir = TempDir::new("adjust");
    let mut branch = start_branch(dir.path(), 10);
    let c = client();
    let url = format!("{}/stock/adjustments", branch.url);
    let (s, v, _) = post(
        &c,
        &url,
        &json!({"product_id": "P1", "quantity_delta": 24, "reason": "receipt"}),
        None,
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["stock"], 34);
    let (s, v, _) = post(
        &c,
        &url,
        &json!({"product_id": "P1", "quantity_delta": -4, "reason": "shrinkage"}),
        None,
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["stock"], 30);
    branch.kill9();
    branch.restart();
    assert_eq!(get(&c, &format!("{}/inventory/P1", branch.url)).await["stock"], 30);
    let events = stored_events(dir.path(), "CUS");
    let adj: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "adjustment" && e["reason"] != "initial_catalog")
        .collect();
    assert_eq!(adj.len(), 2);
    assert_eq!(adj[0]["quantity_delta"], 24);
    assert_eq!(adj[1]["quantity_delta"], -4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics_need_no_token_and_status_reports_the_outbox() {
    let dir = TempDir::new("health");
    let branch = start_branch(dir.path(), 10);
    let c = client();
    let h = c.get(format!("{}/health", branch.url)).send().await.unwrap();
    assert_eq!(h.status(), 200);
    assert_eq!(h.json::<Value>().await.unwrap(), json!({"status": "ok"}));
    let (s, _, _) = post(
        &c,
        &format!("{}/sell", branch.url),
        &json!({"product_id": "P1", "quantity": 1}),
        None,
    )
    .await;
    assert_eq!(s, 201);
    let m = c
        .get(format!("{}/metrics", branch.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("colmena_sales_total 1"), "{m}");
    assert!(
        m.contains(r#"colmena_http_requests_total{method="POST",route="/sell",status="201"} 1"#),
        "{m}"
    );
    // The 201 waited for an fsync of the WAL (the catalog's seed had one before it).
    let fsyncs: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("colmena_outbox_fsync_duration_seconds_count "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(fsyncs >= 1, "no fsync timed: {m}");
    let st = get(&c, &format!("{}/status", branch.url)).await;
    assert_eq!(st["branch_id"], "CUS");
    let pending = st["outbox"]["pending"].as_u64().unwrap();
    assert_eq!(
        pending,
        st["outbox"]["last_seq"].as_u64().unwrap(),
        "nothing acknowledged: central is unreachable"
    );
    assert_eq!(pending, PRODUCTS as u64 + 1, "10 seed adjustments + 1 sale");
    let seen: HashSet<&str> = ["closed", "open", "half_open"].into_iter().collect();
    assert!(seen.contains(st["circuit"].as_str().unwrap()));
    let _ = Arc::new(());
}
