//! Central over real HTTP: exactly-once apply, auth, bad input, crash safety, the pull feed,
//! queries, metrics and process lifecycle (contract §1, §3, §6, §7).
//!
//! Every test about what the store does runs twice, on a real SQLite file (`sqlite::…`) and
//! on a private PostgreSQL cluster (`postgres::…`, a fresh database per test): each is an
//! `async fn(StoreKind)` listed in [`both_stores!`] at the end of this file.
mod support;

use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::postgres::StoreKind;
use support::{
    allocate, branch_token, central_sales, client, get_json, put_product, spawn_central_db, Proc, TempDir, ADMIN_TOKEN,
};

// ------------------------------------------------------------------ helpers

/// A central with branches CUS and ABA on a fresh database of the store `db`.
fn start(db: StoreKind, tag: &str) -> (TempDir, Proc) {
    let dir = TempDir::new(tag);
    let p = spawn_central_db(dir.path(), &db.database(dir.path(), tag), &["CUS", "ABA"], &[]);
    (dir, p)
}

const T0: &str = "2026-11-23T16:00:00Z";

/// A sale event: one line per `(product, quantity, unit price)`.
fn sale(seq: u64, lines: &[(&str, i64, i64)]) -> Value {
    let total: i64 = lines.iter().map(|(_, q, p)| q * p).sum();
    json!({
        "seq": seq, "kind": "sale", "occurred_at": T0, "sale_id": format!("S-{seq:010}"),
        "lines": lines.iter().map(|(p, q, u)| json!({"product_id": p, "quantity": q, "unit_price_cents": u})).collect::<Vec<_>>(),
        "total_cents": total,
    })
}

fn adjustment(seq: u64, product: &str, delta: i64) -> Value {
    json!({"seq": seq, "kind": "adjustment", "occurred_at": T0, "product_id": product, "quantity_delta": delta, "reason": "count"})
}

/// Sales `from..=to`, each one unit of P1 at 100.
fn sales(from: u64, to: u64) -> Vec<Value> {
    (from..=to).map(|s| sale(s, &[("P1", 1, 100)])).collect()
}

async fn push(c: &reqwest::Client, url: &str, branch: &str, events: &[Value]) -> (u16, Value) {
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
async fn push_ok(c: &reqwest::Client, url: &str, branch: &str, events: &[Value]) -> (u64, u64) {
    let (status, body) = push(c, url, branch, events).await;
    assert_eq!(status, 200, "push: {body}");
    (
        body["applied_through"].as_u64().unwrap(),
        body["duplicates"].as_u64().unwrap(),
    )
}

fn branch_row(branches: &Value, id: &str) -> Value {
    branches["branches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["branch_id"] == id)
        .cloned()
        .unwrap_or(Value::Null)
}

fn seqs(sales: &[Value]) -> Vec<u64> {
    sales.iter().map(|s| s["seq"].as_u64().unwrap()).collect()
}

fn stock_of(inventory: &Value, product: &str, branch: &str) -> Option<i64> {
    inventory["products"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["product_id"] == product)?["by_branch"][branch]
        .as_i64()
}

/// Everything a client can see, as raw bodies: compared byte for byte.
async fn snapshot(c: &reqwest::Client, url: &str) -> String {
    let mut out = String::new();
    for path in [
        "/inventory",
        "/products",
        "/branches",
        "/sales?limit=1000",
        "/sync/pull?branch_id=CUS",
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

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

// ------------------------------------------------------------------ exactly once

async fn push_of_the_same_batch_twice_applies_it_once(db: StoreKind) {
    let (_d, central) = start(db, "twice");
    let c = client();
    let batch = sales(1, 5);
    assert_eq!(push_ok(&c, &central.url, "CUS", &batch).await, (5, 0));
    assert_eq!(push_ok(&c, &central.url, "CUS", &batch).await, (5, 5));

    let b = branch_row(
        &get_json(&c, &format!("{}/branches", central.url), ADMIN_TOKEN).await,
        "CUS",
    );
    assert_eq!(
        (
            b["applied_through"].as_u64(),
            b["events_applied"].as_u64(),
            b["sales_count"].as_u64()
        ),
        (Some(5), Some(5), Some(5))
    );
    assert_eq!(seqs(&central_sales(&c, &central.url, "CUS").await), vec![1, 2, 3, 4, 5]);
    let inv = get_json(&c, &format!("{}/inventory", central.url), ADMIN_TOKEN).await;
    assert_eq!(stock_of(&inv, "P1", "CUS"), Some(-5));
    let m = c
        .get(format!("{}/metrics", central.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        metric(&m, r#"colmena_sync_duplicate_events_total{branch_id="CUS"}"#),
        Some(5.0),
        "{m}"
    );
    assert_eq!(
        metric(&m, r#"colmena_sync_events_applied_total{branch_id="CUS"}"#),
        Some(5.0)
    );
}

async fn overlapping_batches_apply_only_the_new_events(db: StoreKind) {
    let (_d, central) = start(db, "overlap");
    let c = client();
    assert_eq!(push_ok(&c, &central.url, "CUS", &sales(1, 10)).await, (10, 0));
    assert_eq!(push_ok(&c, &central.url, "CUS", &sales(5, 15)).await, (15, 6));
    assert_eq!(
        seqs(&central_sales(&c, &central.url, "CUS").await),
        (1..=15).collect::<Vec<_>>()
    );
    let b = branch_row(
        &get_json(&c, &format!("{}/branches", central.url), ADMIN_TOKEN).await,
        "CUS",
    );
    assert_eq!(b["events_applied"], 15);
    // An empty push is a valid heartbeat: where central stands, nothing applied.
    assert_eq!(push_ok(&c, &central.url, "CUS", &[]).await, (15, 0));
}

async fn a_gap_is_refused_with_where_central_stands_and_nothing_applied(db: StoreKind) {
    let (_d, central) = start(db, "gap");
    let c = client();
    push_ok(&c, &central.url, "CUS", &sales(1, 3)).await;
    let before = snapshot(&c, &central.url).await;

    let (status, body) = push(&c, &central.url, "CUS", &sales(5, 6)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("sequence_gap")),
        "{body}"
    );
    assert_eq!(body["applied_through"], 3);
    // A hole inside the batch is a gap too, even though the batch starts right.
    let holed = vec![sale(4, &[("P1", 1, 100)]), sale(6, &[("P1", 1, 100)])];
    let (status, body) = push(&c, &central.url, "CUS", &holed).await;
    assert_eq!((status, body["applied_through"].as_u64()), (409, Some(3)), "{body}");
    assert_eq!(snapshot(&c, &central.url).await, before, "a refused push changed state");

    assert_eq!(push_ok(&c, &central.url, "CUS", &sales(4, 6)).await, (6, 0));
}

async fn eight_concurrent_pushers_of_one_branch_apply_every_seq_exactly_once(db: StoreKind) {
    const N: u64 = 400;
    let (_d, central) = start(db, "race");
    let url = central.url.clone();
    let known = Arc::new(AtomicU64::new(0));
    let qty = |s: u64| (s % 3 + 1) as i64;
    let mut tasks = Vec::new();
    for t in 0..8u64 {
        let (url, known) = (url.clone(), known.clone());
        tasks.push(tokio::spawn(async move {
            let c = client();
            let mut rng = fastrand::Rng::with_seed(t);
            let mut applied_here = 0u64;
            let mut pushes = 0;
            while known.load(Ordering::SeqCst) < N {
                let at = known.load(Ordering::SeqCst);
                // Overlap on purpose: start up to 20 below what is known, end anywhere ahead.
                let start = rng.u64(at.saturating_sub(20) + 1..=at + 1);
                let end = (start + rng.u64(0..60)).min(N);
                let batch: Vec<Value> = (start..=end).map(|s| sale(s, &[("P1", qty(s), 100)])).collect();
                let (status, body) = push(&c, &url, "CUS", &batch).await;
                pushes += 1;
                let through = body["applied_through"].as_u64().expect("applied_through");
                match status {
                    200 => {
                        assert!(through >= end, "a 200 must cover the batch: {body}");
                        applied_here += batch.len() as u64 - body["duplicates"].as_u64().unwrap();
                    }
                    409 => assert!(
                        through + 1 < start,
                        "409 although the batch continued the sequence: {body}"
                    ),
                    other => panic!("unexpected {other}: {body}"),
                }
                known.fetch_max(through, Ordering::SeqCst);
            }
            (applied_here, pushes)
        }));
    }
    let mut applied = 0;
    let mut pushes = 0;
    for t in tasks {
        let (a, p) = t.await.unwrap();
        applied += a;
        pushes += p;
    }
    // Σ (events − duplicates) over every 200 == N: each seq was counted as applied once.
    assert_eq!(applied, N, "events applied across {pushes} racing pushes");
    let c = client();
    let b = branch_row(&get_json(&c, &format!("{url}/branches"), ADMIN_TOKEN).await, "CUS");
    assert_eq!(
        (
            b["applied_through"].as_u64(),
            b["events_applied"].as_u64(),
            b["sales_count"].as_u64()
        ),
        (Some(N), Some(N), Some(N))
    );
    assert_eq!(seqs(&central_sales(&c, &url, "CUS").await), (1..=N).collect::<Vec<_>>());
    let inv = get_json(&c, &format!("{url}/inventory"), ADMIN_TOKEN).await;
    assert_eq!(stock_of(&inv, "P1", "CUS"), Some(-(1..=N).map(qty).sum::<i64>()));
}

async fn a_gzip_push_is_decompressed_and_applied(db: StoreKind) {
    let (_d, central) = start(db, "gzip");
    let c = client();
    let body = serde_json::to_vec(&json!({"branch_id": "CUS", "events": sales(1, 200)})).unwrap();
    let zipped = gzip(&body);
    assert!(zipped.len() * 5 < body.len());
    let r = c
        .post(format!("{}/sync/push", central.url))
        .bearer_auth(branch_token("CUS"))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(zipped)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["applied_through"], 200);
    assert_eq!(central_sales(&c, &central.url, "CUS").await.len(), 200);
}

// ------------------------------------------------------------------ auth

async fn tokens_grant_admin_everything_and_branches_only_their_own_sync(db: StoreKind) {
    let (_d, central) = start(db, "auth");
    let c = client();
    let u = &central.url;
    let push_body = json!({"branch_id": "CUS", "events": []});
    let aba_push = json!({"branch_id": "ABA", "events": []});
    // (method, path, token, body, status, code)
    type AuthCase = (&'static str, String, Option<String>, Option<Value>, u16, &'static str);
    let cases: Vec<AuthCase> = vec![
        ("GET", "/products".into(), None, None, 401, "unauthorized"),
        (
            "GET",
            "/inventory".into(),
            Some("wrong".into()),
            None,
            401,
            "unauthorized",
        ),
        (
            "POST",
            "/sync/push".into(),
            None,
            Some(push_body.clone()),
            401,
            "unauthorized",
        ),
        (
            "GET",
            "/sync/pull".into(),
            Some("tok-CUSX".into()),
            None,
            401,
            "unauthorized",
        ),
        ("GET", "/nowhere".into(), None, None, 401, "unauthorized"),
        (
            "GET",
            "/products".into(),
            Some(branch_token("CUS")),
            None,
            403,
            "forbidden",
        ),
        (
            "GET",
            "/inventory".into(),
            Some(branch_token("CUS")),
            None,
            403,
            "forbidden",
        ),
        (
            "GET",
            "/branches".into(),
            Some(branch_token("ABA")),
            None,
            403,
            "forbidden",
        ),
        (
            "GET",
            "/sales".into(),
            Some(branch_token("CUS")),
            None,
            403,
            "forbidden",
        ),
        (
            "GET",
            "/sales/export".into(),
            Some(branch_token("CUS")),
            None,
            403,
            "forbidden",
        ),
        (
            "PUT",
            "/products/P1".into(),
            Some(branch_token("CUS")),
            Some(json!({"name": "x", "price_cents": 1})),
            403,
            "forbidden",
        ),
        (
            "POST",
            "/branches/CUS/allocations".into(),
            Some(branch_token("CUS")),
            Some(json!({"product_id": "P1", "quantity": 1})),
            403,
            "forbidden",
        ),
        (
            "POST",
            "/sync/push".into(),
            Some(branch_token("CUS")),
            Some(aba_push.clone()),
            403,
            "forbidden",
        ),
        (
            "GET",
            "/sync/pull?branch_id=ABA".into(),
            Some(branch_token("CUS")),
            None,
            403,
            "forbidden",
        ),
        (
            "POST",
            "/sync/push".into(),
            Some(branch_token("CUS")),
            Some(push_body.clone()),
            200,
            "",
        ),
        ("GET", "/sync/pull".into(), Some(branch_token("CUS")), None, 200, ""),
        (
            "GET",
            "/sync/pull?branch_id=CUS".into(),
            Some(branch_token("CUS")),
            None,
            200,
            "",
        ),
        (
            "POST",
            "/sync/push".into(),
            Some(ADMIN_TOKEN.into()),
            Some(aba_push),
            200,
            "",
        ),
        (
            "GET",
            "/sync/pull?branch_id=ABA".into(),
            Some(ADMIN_TOKEN.into()),
            None,
            200,
            "",
        ),
        ("GET", "/products".into(), Some(ADMIN_TOKEN.into()), None, 200, ""),
        ("GET", "/health".into(), None, None, 200, ""),
        ("GET", "/metrics".into(), None, None, 200, ""),
    ];
    for (method, path, token, body, status, code) in cases {
        let mut rb = c.request(method.parse().unwrap(), format!("{u}{path}"));
        if let Some(t) = &token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = &body {
            rb = rb.json(b);
        }
        let r = rb.send().await.unwrap();
        let got = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert_eq!(got, status, "{method} {path} with {token:?}: {text}");
        if !code.is_empty() {
            let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{method} {path}: not JSON: {text}"));
            assert_eq!(v["error"]["code"], code, "{method} {path}");
        }
    }
}

/// Sends headers announcing `length` bytes and only a few of them; returns the status line
/// of the answer, which must come without waiting for the rest of the body.
fn answer_before_body(addr: &str, method: &str, path: &str, token: Option<&str>, length: usize) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let auth = token
        .map(|t| format!("authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(s, "{method} {path} HTTP/1.1\r\nhost: x\r\n{auth}content-type: application/json\r\ncontent-length: {length}\r\n\r\n{{\"branch_id\":").unwrap();
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).expect("central answered before the body was sent");
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn huge_bodies_are_refused_before_they_are_read() {
    // Refused in the HTTP layer, before any store is asked: one store is enough.
    let (_d, central) = start(StoreKind::Sqlite, "huge");
    let started = Instant::now();
    let line = answer_before_body(&central.addr, "POST", "/sync/push", None, 100 << 20);
    assert!(line.contains(" 401 "), "{line}");
    let line = answer_before_body(
        &central.addr,
        "POST",
        "/sync/push",
        Some(&branch_token("CUS")),
        100 << 20,
    );
    assert!(line.contains(" 413 "), "{line}");
    let line = answer_before_body(&central.addr, "PUT", "/products/P1", Some(ADMIN_TOKEN), (1 << 20) + 1);
    assert!(line.contains(" 413 "), "{line}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

// ------------------------------------------------------------------ bad input

async fn bad_inputs_are_refused_with_their_documented_error_and_change_nothing(db: StoreKind) {
    let (_d, central) = start(db, "bad");
    let c = client();
    let u = central.url.clone();
    put_product(&c, &u, "P1", "Coca Cola 500ml", 550).await;
    allocate(&c, &u, "CUS", "P1", 100).await;
    push_ok(
        &c,
        &u,
        "CUS",
        &[
            sale(1, &[("P1", 2, 550)]),
            adjustment(2, "P1", 5),
            sale(3, &[("P1", 1, 550)]),
        ],
    )
    .await;
    let before = snapshot(&c, &u).await;

    let cus = branch_token("CUS");
    let adm = ADMIN_TOKEN.to_string();
    let ev = |v: Value| json!({"branch_id": "CUS", "events": [v]}).to_string();
    let mut bad_sale = sale(4, &[("P1", 1, 550)]);
    bad_sale["total_cents"] = json!(1);
    let mut no_lines = sale(4, &[]);
    no_lines["total_cents"] = json!(0);
    let mut refund = sale(4, &[("P1", 1, 550)]);
    refund["kind"] = json!("refund");
    let mut when = sale(4, &[("P1", 1, 550)]);
    when["occurred_at"] = json!("yesterday");
    let two = |a: Value, b: Value| json!({"branch_id": "CUS", "events": [a, b]}).to_string();
    let big_name = "n".repeat(201);
    let too_big = format!("{{\"name\":\"{}\",\"price_cents\":1}}", "x".repeat(1 << 20));
    let too_big_push = format!(
        "{{\"branch_id\":\"CUS\",\"events\":[],\"pad\":\"{}\"}}",
        " ".repeat(2 << 20)
    );
    let bomb = gzip(&[b' '; 40 << 20]);
    let long_id = "p".repeat(65);

    struct Case {
        method: &'static str,
        path: String,
        token: String,
        ctype: Option<&'static str>,
        gzip: bool,
        body: Vec<u8>,
        status: u16,
        code: &'static str,
    }
    let case = |method, path: &str, token: &str, body: &str, status, code| Case {
        method,
        path: path.to_string(),
        token: token.to_string(),
        ctype: Some("application/json"),
        gzip: false,
        body: body.as_bytes().to_vec(),
        status,
        code,
    };
    let mut cases = vec![
        // PUT /products/{id}
        case("PUT", "/products/P1", &adm, "{", 400, "invalid_request"),
        case("PUT", "/products/P1", &adm, "[]", 400, "invalid_request"),
        case("PUT", "/products/P1", &adm, "null", 400, "invalid_request"),
        case(
            "PUT",
            "/products/P1",
            &adm,
            r#"{"name":"","price_cents":1}"#,
            400,
            "invalid_request",
        ),
        case(
            "PUT",
            "/products/P1",
            &adm,
            r#"{"name":"   ","price_cents":1}"#,
            400,
            "invalid_request",
        ),
        case(
            "PUT",
            "/products/P1",
            &adm,
            r#"{"name":"a\u0007b","price_cents":1}"#,
            400,
            "invalid_request",
        ),
        case(
            "PUT",
            "/products/P1",
            &adm,
            &format!(r#"{{"name":"{big_name}","price_cents":1}}"#),
            400,
            "invalid_request",
        ),
        case(
            "PUT",
            "/products/P1",
            &adm,
            r#"{"name":"x","price_cents":-1}"#,
            400,
            "invalid_request",
        ),
        case(
            "PUT",
            "/products/P1",
            &adm,
            r#"{"name":"x","price_cents":10000000001}"#,
            400,
            "invalid_request",
        ),
        case(
            "PUT",
            "/products/P1",
            &adm,
            r#"{"name":"x","price_cents":1.5}"#,
            400,
            "invalid_request",
        ),
        case(
            "PUT",
            "/products/P1",
            &adm,
            r#"{"name":"x","price_cents":"5"}"#,
            400,
            "invalid_request",
        ),
        case(
            "PUT",
            "/products/P1",
            &adm,
            r#"{"price_cents":5}"#,
            400,
            "invalid_request",
        ),
        case(
            "PUT",
            "/products/a%20b",
            &adm,
            r#"{"name":"x","price_cents":5}"#,
            400,
            "invalid_request",
        ),
        case(
            "PUT",
            &format!("/products/{long_id}"),
            &adm,
            r#"{"name":"x","price_cents":5}"#,
            400,
            "invalid_request",
        ),
        case("PUT", "/products/P1", &adm, &too_big, 413, "payload_too_large"),
        Case {
            ctype: None,
            ..case(
                "PUT",
                "/products/P1",
                &adm,
                r#"{"name":"x","price_cents":5}"#,
                415,
                "unsupported_media_type",
            )
        },
        Case {
            ctype: Some("text/plain"),
            ..case(
                "PUT",
                "/products/P1",
                &adm,
                r#"{"name":"x","price_cents":5}"#,
                415,
                "unsupported_media_type",
            )
        },
        case("DELETE", "/products/P1", &adm, "", 405, "method_not_allowed"),
        case("POST", "/products", &adm, "{}", 405, "method_not_allowed"),
        // POST /branches/{id}/allocations
        case(
            "POST",
            "/branches/CUS/allocations",
            &adm,
            r#"{"product_id":"NOPE","quantity":5}"#,
            404,
            "unknown_product",
        ),
        case(
            "POST",
            "/branches/ZZZ/allocations",
            &adm,
            r#"{"product_id":"P1","quantity":5}"#,
            404,
            "not_found",
        ),
        case(
            "POST",
            "/branches/cus/allocations",
            &adm,
            r#"{"product_id":"P1","quantity":5}"#,
            400,
            "invalid_request",
        ),
        case(
            "POST",
            "/branches/CUS/allocations",
            &adm,
            r#"{"product_id":"P1","quantity":0}"#,
            400,
            "invalid_request",
        ),
        case(
            "POST",
            "/branches/CUS/allocations",
            &adm,
            r#"{"product_id":"P1","quantity":1000001}"#,
            400,
            "invalid_request",
        ),
        case(
            "POST",
            "/branches/CUS/allocations",
            &adm,
            r#"{"product_id":"P1","quantity":-1000001}"#,
            400,
            "invalid_request",
        ),
        case(
            "POST",
            "/branches/CUS/allocations",
            &adm,
            r#"{"product_id":"a b","quantity":5}"#,
            400,
            "invalid_request",
        ),
        case(
            "POST",
            "/branches/CUS/allocations",
            &adm,
            r#"{"product_id":1.5,"quantity":5}"#,
            400,
            "invalid_request",
        ),
        case(
            "POST",
            "/branches/CUS/allocations",
            &adm,
            r#"{"product_id":"P1"}"#,
            400,
            "invalid_request",
        ),
        case("GET", "/branches/CUS/allocations", &adm, "", 405, "method_not_allowed"),
        // inventory
        case("GET", "/inventory/NOPE", &adm, "", 404, "unknown_product"),
        case("GET", "/inventory/no%24pe", &adm, "", 400, "invalid_request"),
        // sales and export
        case("GET", "/sales?limit=0", &adm, "", 400, "invalid_request"),
        case("GET", "/sales?limit=1001", &adm, "", 400, "invalid_request"),
        case("GET", "/sales?limit=abc", &adm, "", 400, "invalid_request"),
        case("GET", "/sales?limit=-1", &adm, "", 400, "invalid_request"),
        case("GET", "/sales?from=yesterday", &adm, "", 400, "invalid_request"),
        case("GET", "/sales?branch_id=cus", &adm, "", 400, "invalid_request"),
        case("GET", "/sales?after=garbage", &adm, "", 400, "invalid_request"),
        case(
            "GET",
            "/sales?from=2026-11-24T00:00:00Z&to=2026-11-23T00:00:00Z",
            &adm,
            "",
            400,
            "invalid_request",
        ),
        case("GET", "/sales?brnach_id=CUS", &adm, "", 400, "invalid_request"),
        case("GET", "/sales/export?to=soon", &adm, "", 400, "invalid_request"),
        case("GET", "/sales/export?limit=5", &adm, "", 400, "invalid_request"),
        // POST /sync/push
        case("POST", "/sync/push", &cus, "not json", 400, "invalid_request"),
        case(
            "POST",
            "/sync/push",
            &cus,
            r#"{"branch_id":"CUS"}"#,
            400,
            "invalid_request",
        ),
        case(
            "POST",
            "/sync/push",
            &cus,
            r#"{"branch_id":"cus","events":[]}"#,
            400,
            "invalid_request",
        ),
        case(
            "POST",
            "/sync/push",
            &cus,
            &ev(sale(0, &[("P1", 1, 550)])),
            400,
            "invalid_request",
        ),
        case("POST", "/sync/push", &cus, &ev(bad_sale), 400, "invalid_request"),
        case("POST", "/sync/push", &cus, &ev(no_lines), 400, "invalid_request"),
        case(
            "POST",
            "/sync/push",
            &cus,
            &ev(sale(4, &[("P1", 0, 550)])),
            400,
            "invalid_request",
        ),
        case(
            "POST",
            "/sync/push",
            &cus,
            &ev(sale(4, &[("P1", 1, -5)])),
            400,
            "invalid_request",
        ),
        case(
            "POST",
            "/sync/push",
            &cus,
            &ev(adjustment(4, "P1", 0)),
            400,
            "invalid_request",
        ),
        case(
            "POST",
            "/sync/push",
            &cus,
            &ev(adjustment(4, "bad id", 1)),
            400,
            "invalid_request",
        ),
        case("POST", "/sync/push", &cus, &ev(refund), 400, "invalid_request"),
        case("POST", "/sync/push", &cus, &ev(when), 400, "invalid_request"),
        case(
            "POST",
            "/sync/push",
            &cus,
            &two(sale(5, &[("P1", 1, 1)]), sale(4, &[("P1", 1, 1)])),
            400,
            "invalid_request",
        ),
        case(
            "POST",
            "/sync/push",
            &cus,
            &two(sale(4, &[("P1", 1, 1)]), sale(4, &[("P1", 1, 1)])),
            400,
            "invalid_request",
        ),
        case(
            "POST",
            "/sync/push",
            &cus,
            &two(sale(4, &[("P1", 1, 1)]), adjustment(5, "P1", 0)),
            400,
            "invalid_request",
        ),
        case(
            "POST",
            "/sync/push",
            &cus,
            &ev(sale(10, &[("P1", 1, 1)])),
            409,
            "sequence_gap",
        ),
        case(
            "POST",
            "/sync/push",
            &cus,
            &two(sale(4, &[("P1", 1, 1)]), sale(6, &[("P1", 1, 1)])),
            409,
            "sequence_gap",
        ),
        case("POST", "/sync/push", &cus, &too_big_push, 413, "payload_too_large"),
        Case {
            ctype: Some("text/plain"),
            ..case(
                "POST",
                "/sync/push",
                &cus,
                &ev(sale(4, &[("P1", 1, 1)])),
                415,
                "unsupported_media_type",
            )
        },
        Case {
            gzip: true,
            ..case(
                "POST",
                "/sync/push",
                &cus,
                &ev(sale(4, &[("P1", 1, 1)])),
                400,
                "invalid_request",
            )
        },
        Case {
            gzip: true,
            body: bomb,
            ..case("POST", "/sync/push", &cus, "", 413, "payload_too_large")
        },
        case("GET", "/sync/push", &cus, "", 405, "method_not_allowed"),
        // GET /sync/pull
        case("GET", "/sync/pull?after=-1", &cus, "", 400, "invalid_request"),
        case("GET", "/sync/pull?after=x", &cus, "", 400, "invalid_request"),
        case("GET", "/sync/pull?limit=0", &cus, "", 400, "invalid_request"),
        case("GET", "/sync/pull?limit=5000", &cus, "", 400, "invalid_request"),
        case("GET", "/sync/pull?branch_id=x", &cus, "", 400, "invalid_request"),
        case("GET", "/sync/pull", &adm, "", 400, "invalid_request"),
        case("POST", "/sync/pull", &cus, "{}", 405, "method_not_allowed"),
        // no such endpoint
        case("GET", "/nope", &adm, "", 404, "not_found"),
        case("GET", "/products/P1/extra", &adm, "", 404, "not_found"),
    ];
    assert!(cases.len() >= 40);
    for case in cases.drain(..) {
        let mut rb = c
            .request(case.method.parse().unwrap(), format!("{u}{}", case.path))
            .bearer_auth(&case.token);
        if let Some(ct) = case.ctype {
            rb = rb.header("content-type", ct);
        }
        if case.gzip {
            // The bomb is already compressed; a plain body labelled gzip is not gzip at all.
            rb = rb.header("content-encoding", "gzip");
        }
        if !case.body.is_empty() {
            rb = rb.body(case.body.clone());
        }
        let r = rb
            .send()
            .await
            .unwrap_or_else(|e| panic!("{} {}: {e}", case.method, case.path));
        let status = r.status().as_u16();
        let ctype = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_string());
        let text = r.text().await.unwrap();
        let what = format!("{} {}", case.method, &case.path[..case.path.len().min(80)]);
        assert_eq!(status, case.status, "{what}: {text}");
        assert_eq!(ctype.as_deref(), Some("application/json"), "{what}");
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{what}: not JSON: {text}"));
        assert_eq!(v["error"]["code"], case.code, "{what}: {text}");
        assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}");
    }
    assert_eq!(snapshot(&c, &u).await, before, "a refused request changed state");
    assert!(
        central.log_text().lines().all(|l| !l.contains("panicked")),
        "central panicked"
    );
}

// ------------------------------------------------------------------ crash safety

/// The deterministic event `seq` of `branch` in the storm: mostly sales, every 5th an
/// adjustment.
#[allow(clippy::manual_is_multiple_of)] // `is_multiple_of` is newer than the workspace's MSRV (1.85)
fn storm_event(seq: u64) -> Value {
    if seq % 5 == 0 {
        adjustment(seq, "P2", (seq % 7 + 1) as i64)
    } else if seq % 4 == 0 {
        sale(seq, &[("P1", (seq % 3 + 1) as i64, 550), ("P2", 2, 120)])
    } else {
        sale(seq, &[("P1", (seq % 3 + 1) as i64, 550)])
    }
}

const STORM_BATCH: u64 = 50;
const STORM_ALLOCATION: i64 = 1000;

async fn kill_9_during_a_push_storm_loses_nothing_acknowledged_and_applies_no_partial_batch(db: StoreKind) {
    let branches = ["CUS", "ABA", "B03", "B04"];
    let dir = TempDir::new("storm");
    let mut central = spawn_central_db(dir.path(), &db.database(dir.path(), "storm"), &branches, &[]);
    let url = central.url.clone();
    let c = client();
    put_product(&c, &url, "P1", "Coca Cola", 550).await;
    put_product(&c, &url, "P2", "Galletas", 120).await;
    for b in branches {
        allocate(&c, &url, b, "P1", STORM_ALLOCATION).await;
    }

    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for b in branches {
        let (url, stop) = (url.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let c = reqwest::Client::builder()
                .timeout(Duration::from_secs(3))
                .build()
                .unwrap();
            let (mut acked, mut failures) = (0u64, 0u32);
            while !stop.load(Ordering::SeqCst) {
                let batch: Vec<Value> = (acked + 1..=acked + STORM_BATCH).map(storm_event).collect();
                let sent = c
                    .post(format!("{url}/sync/push"))
                    .bearer_auth(branch_token(b))
                    .json(&json!({"branch_id": b, "events": batch}))
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().as_u16() == 200 => {
                        let v: Value = r.json().await.unwrap();
                        acked = v["applied_through"].as_u64().unwrap();
                        assert_eq!(acked % STORM_BATCH, 0, "{b}: {v}");
                    }
                    Ok(r) => panic!("{b}: unexpected {} {}", r.status(), r.text().await.unwrap_or_default()),
                    Err(_) => {
                        failures += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
            (b, acked, failures)
        }));
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    central = tokio::task::spawn_blocking(move || {
        central.kill9();
        std::thread::sleep(Duration::from_millis(200));
        central.restart();
        central
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    stop.store(true, Ordering::SeqCst);
    let mut acked = BTreeMap::new();
    let mut failures = 0;
    for t in tasks {
        let (b, a, f) = t.await.unwrap();
        acked.insert(b, a);
        failures += f;
    }
    assert!(failures > 0, "no push failed: central was not really down");

    let all = get_json(&c, &format!("{}/branches", central.url), ADMIN_TOKEN).await;
    let inv = get_json(&c, &format!("{}/inventory", central.url), ADMIN_TOKEN).await;
    for b in branches {
        let row = branch_row(&all, b);
        let at = row["applied_through"].as_u64().unwrap();
        assert!(
            at >= acked[b],
            "{b}: acknowledged {} but central stands at {at}",
            acked[b]
        );
        assert!(at > STORM_BATCH, "{b}: the storm barely ran");
        assert_eq!(at % STORM_BATCH, 0, "{b}: a partial batch was applied");
        assert_eq!(row["events_applied"].as_u64(), Some(at), "{b}");
        // Exactly the sales of 1..=at, each once, as sent.
        let got = central_sales(&c, &central.url, b).await;
        let expected: Vec<Value> = (1..=at).map(storm_event).filter(|e| e["kind"] == "sale").collect();
        assert_eq!(got.len(), expected.len(), "{b}");
        for (g, e) in got.iter().zip(&expected) {
            assert_eq!(
                (&g["seq"], &g["sale_id"], &g["total_cents"]),
                (&e["seq"], &e["sale_id"], &e["total_cents"]),
                "{b}"
            );
            assert_eq!(
                g["lines"].as_array().unwrap().len(),
                e["lines"].as_array().unwrap().len(),
                "{b}"
            );
        }
        assert_eq!(row["sales_count"].as_u64(), Some(expected.len() as u64), "{b}");
        // The ledger: allocations + adjustments − sold, recomputed from the events.
        let mut ledger: BTreeMap<&str, i64> = BTreeMap::from([("P1", STORM_ALLOCATION)]);
        for e in (1..=at).map(storm_event) {
            if e["kind"] == "adjustment" {
                *ledger.entry("P2").or_default() += e["quantity_delta"].as_i64().unwrap();
            } else {
                for l in e["lines"].as_array().unwrap() {
                    let p = if l["product_id"] == "P1" { "P1" } else { "P2" };
                    *ledger.entry(p).or_default() -= l["quantity"].as_i64().unwrap();
                }
            }
        }
        for (p, q) in ledger {
            assert_eq!(stock_of(&inv, p, b), Some(q), "{b}/{p}");
        }
    }
    let totals: i64 = inv["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["total_stock"].as_i64().unwrap())
        .sum();
    let by_branch: i64 = inv["products"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| {
            p["by_branch"]
                .as_object()
                .unwrap()
                .values()
                .map(|v| v.as_i64().unwrap())
                .collect::<Vec<_>>()
        })
        .sum();
    assert_eq!(totals, by_branch);
}

// ------------------------------------------------------------------ pull feed

async fn pull_returns_product_changes_and_own_allocations_in_cursor_order(db: StoreKind) {
    let (_d, central) = start(db, "pull");
    let c = client();
    let u = central.url.clone();
    assert_eq!(put_product(&c, &u, "P1", "Coca", 500).await["version"], 1);
    allocate(&c, &u, "CUS", "P1", 10).await;
    put_product(&c, &u, "P2", "Pan", 100).await;
    allocate(&c, &u, "ABA", "P1", 7).await; // another branch's: CUS must not see it
    assert_eq!(put_product(&c, &u, "P1", "Coca", 550).await["version"], 2);
    allocate(&c, &u, "CUS", "P1", -3).await;
    // The same name and price again is no change: no new version, nothing in the feed.
    assert_eq!(put_product(&c, &u, "P1", "Coca", 550).await["version"], 2);
    push_ok(&c, &u, "CUS", &sales(1, 4)).await;

    let pull = |path: String| {
        let c = c.clone();
        async move {
            let r = c.get(path).bearer_auth(branch_token("CUS")).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    let all = pull(format!("{u}/sync/pull")).await;
    let changes = all["changes"].as_array().unwrap();
    let shape: Vec<(String, String, Option<u64>, Option<i64>)> = changes
        .iter()
        .map(|ch| {
            (
                ch["kind"].as_str().unwrap().into(),
                ch["product_id"].as_str().unwrap().into(),
                ch["version"].as_u64(),
                ch["quantity"].as_i64(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        vec![
            ("product".into(), "P1".into(), Some(1), None),
            ("allocation".into(), "P1".into(), None, Some(10)),
            ("product".into(), "P2".into(), Some(1), None),
            ("product".into(), "P1".into(), Some(2), None),
            ("allocation".into(), "P1".into(), None, Some(-3)),
        ]
    );
    let cursors: Vec<u64> = changes.iter().map(|ch| ch["cursor"].as_u64().unwrap()).collect();
    assert!(cursors.windows(2).all(|w| w[0] < w[1]), "{cursors:?}");
    assert_eq!(all["next"].as_u64(), cursors.last().copied());
    assert_eq!(all["applied_through"], 4);
    // Applying in order, as a branch does, leaves the later version.
    let mut price = BTreeMap::new();
    for ch in changes.iter().filter(|ch| ch["kind"] == "product") {
        price.insert(
            ch["product_id"].as_str().unwrap(),
            (ch["version"].as_u64().unwrap(), ch["price_cents"].as_i64().unwrap()),
        );
    }
    assert_eq!(price["P1"], (2, 550));

    // Paging by `after`/`limit` yields the same feed; past the end, `next` stays put.
    let mut paged = Vec::new();
    let mut after = 0;
    loop {
        let page = pull(format!("{u}/sync/pull?after={after}&limit=2")).await;
        let got = page["changes"].as_array().unwrap().clone();
        if got.is_empty() {
            assert_eq!(page["next"], after);
            break;
        }
        after = page["next"].as_u64().unwrap();
        paged.extend(got);
    }
    assert_eq!(&paged, changes);

    // The admin sees a branch's feed by naming it.
    let aba = get_json(&c, &format!("{u}/sync/pull?branch_id=ABA"), ADMIN_TOKEN).await;
    let quantities: Vec<i64> = aba["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|ch| ch["quantity"].as_i64())
        .collect();
    assert_eq!(quantities, vec![7]);
    assert_eq!(aba["applied_through"], 0);
}

// ------------------------------------------------------------------ queries

async fn inventory_shows_the_ledger_including_oversells_and_unknown_products(db: StoreKind) {
    let (_d, central) = start(db, "inventory");
    let c = client();
    let u = central.url.clone();
    put_product(&c, &u, "P1", "Coca", 550).await;
    put_product(&c, &u, "P9", "Never moved", 10).await;
    allocate(&c, &u, "CUS", "P1", 5).await;
    let r: Value = c
        .post(format!("{u}/branches/ABA/allocations"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"product_id": 1, "quantity": 3}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        r["error"]["code"], "unknown_product",
        "integer product ids mean their decimal string"
    );
    // CUS sells 8 of its 5 (an oversell: never refused) and 2 of a product central lacks.
    push_ok(
        &c,
        &u,
        "CUS",
        &[sale(1, &[("P1", 8, 550), ("X7", 2, 30)]), adjustment(2, "P1", 1)],
    )
    .await;

    let one = get_json(&c, &format!("{u}/inventory/P1"), ADMIN_TOKEN).await;
    assert_eq!(
        one,
        json!({"product_id": "P1", "name": "Coca", "price_cents": 550, "total_stock": -2, "by_branch": {"CUS": -2}})
    );
    let unknown = get_json(&c, &format!("{u}/inventory/X7"), ADMIN_TOKEN).await;
    assert_eq!(
        unknown,
        json!({"product_id": "X7", "name": null, "price_cents": null, "total_stock": -2, "by_branch": {"CUS": -2}})
    );
    let all = get_json(&c, &format!("{u}/inventory"), ADMIN_TOKEN).await;
    let ids: Vec<&str> = all["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["product_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["P1", "P9", "X7"]);
    assert_eq!(all["products"][1]["by_branch"], json!({}));
    let m = c
        .get(format!("{u}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(metric(&m, "colmena_central_negative_stock_products"), Some(2.0), "{m}");

    let products = get_json(&c, &format!("{u}/products"), ADMIN_TOKEN).await;
    assert_eq!(products["products"].as_array().unwrap().len(), 2);
}

async fn sales_page_by_cursor_filter_by_branch_and_time_and_export_as_csv(db: StoreKind) {
    let (_d, central) = start(db, "sales");
    let c = client();
    let u = central.url.clone();
    let at = |seq: u64, minute: u64| {
        let mut s = sale(seq, &[("P1", 1, 100), ("P2", 2, 50)]);
        s["occurred_at"] = json!(format!("2026-11-23T10:{minute:02}:00Z"));
        s
    };
    push_ok(&c, &u, "CUS", &(1..=25).map(|s| at(s, s)).collect::<Vec<_>>()).await;
    push_ok(&c, &u, "ABA", &(1..=10).map(|s| at(s, s)).collect::<Vec<_>>()).await;
    let mut cashier = sale(11, &[("P1", 1, 100)]);
    cashier["cashier_id"] = json!("Ana, \"caja\" 1");
    push_ok(&c, &u, "ABA", &[cashier]).await;

    // Every sale exactly once across pages of 7.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let q = after.as_ref().map(|a| format!("&after={a}")).unwrap_or_default();
        let page = get_json(&c, &format!("{u}/sales?limit=7{q}"), ADMIN_TOKEN).await;
        pages += 1;
        let got = page["sales"].as_array().unwrap();
        assert!(got.len() <= 7);
        seen.extend(
            got.iter()
                .map(|s| format!("{}/{}", s["branch_id"].as_str().unwrap(), s["seq"])),
        );
        match page["next"].as_str() {
            Some(n) => after = Some(n.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 6, "36 sales in pages of 7, the last page has next = null");
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!((seen.len(), unique.len()), (36, 36));
    assert_eq!(seen[0], "ABA/1", "sales come branch by branch, in selling order");

    let first = get_json(&c, &format!("{u}/sales?branch_id=CUS&limit=1"), ADMIN_TOKEN).await;
    let s = &first["sales"][0];
    assert_eq!(
        (s["seq"].as_u64(), s["total_cents"].as_i64(), s["sold_at"].as_str()),
        (Some(1), Some(200), Some("2026-11-23T10:01:00Z"))
    );
    assert_eq!(
        s["lines"][1],
        json!({"product_id": "P2", "quantity": 2, "unit_price_cents": 50, "line_total_cents": 100})
    );
    assert!(s["received_at"].as_str().is_some());

    // from is inclusive, to exclusive.
    let window = get_json(
        &c,
        &format!("{u}/sales?branch_id=CUS&from=2026-11-23T10:05:00Z&to=2026-11-23T10:09:00Z"),
        ADMIN_TOKEN,
    )
    .await;
    assert_eq!(seqs(window["sales"].as_array().unwrap()), vec![5, 6, 7, 8]);
    let window = get_json(
        &c,
        &format!("{u}/sales?from=2026-11-23T10:09:00Z&to=2026-11-23T10:11:00Z"),
        ADMIN_TOKEN,
    )
    .await;
    assert_eq!(window["sales"].as_array().unwrap().len(), 4, "ABA 9, 10 and CUS 9, 10");

    let r = c
        .get(format!("{u}/sales/export?branch_id=ABA"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let csv = r.text().await.unwrap();
    let rows: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert!(rows[0].starts_with("sale_id,branch_id,seq,sold_at"), "{}", rows[0]);
    assert_eq!(rows.len(), 1 + 10 * 2 + 1, "a header and one row per sale line");
    assert!(
        rows.last()
            .unwrap()
            .contains(",\"Ana, \"\"caja\"\" 1\",P1,1,100,100,100"),
        "{}",
        rows.last().unwrap()
    );
}

// ------------------------------------------------------------------ lifecycle

async fn sigterm_stops_central_with_exit_0_and_a_restart_keeps_everything(db: StoreKind) {
    let (_d, mut central) = start(db, "sigterm");
    let c = client();
    put_product(&c, &central.url, "P1", "Coca", 550).await;
    push_ok(&c, &central.url, "CUS", &sales(1, 30)).await;
    let before = snapshot(&c, &central.url).await;
    let status = tokio::task::spawn_blocking(move || {
        let s = central.terminate(Duration::from_secs(10));
        (s, central)
    })
    .await
    .unwrap();
    let (status, mut central) = status;
    assert!(
        status.expect("central did not stop within 10 s").success(),
        "exit status {status:?}"
    );

    let mut central = tokio::task::spawn_blocking(move || {
        central.restart();
        central
    })
    .await
    .unwrap();
    assert_eq!(snapshot(&c, &central.url).await, before);
    // Per-branch gauges come back from the store, not from zero.
    let m = c
        .get(format!("{}/metrics", central.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        metric(&m, r#"colmena_branch_applied_through{branch_id="CUS"}"#),
        Some(30.0),
        "{m}"
    );
    assert!(metric(&m, r#"colmena_branch_last_push_timestamp_seconds{branch_id="CUS"}"#).unwrap() > 1.7e9);
    assert_eq!(
        metric(&m, r#"colmena_branch_applied_through{branch_id="ABA"}"#),
        Some(0.0)
    );
    central.kill9();
}

/// Runs the binary with `args` (and no COLMENA_* environment) and returns (exit code, stderr).
fn run_central(args: &[&str], envs: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = std::process::Command::new(support::bin("colmena-central"));
    for (k, _) in std::env::vars() {
        if k.starts_with("COLMENA_") {
            cmd.env_remove(k);
        }
    }
    cmd.args(args)
        .envs(envs.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("central started with a bad configuration: {args:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    (child.wait().unwrap().code(), err)
}

#[test]
fn a_bad_configuration_exits_non_zero_with_a_one_line_reason() {
    let dir = TempDir::new("config");
    let db = dir.path().join("c.db");
    let db = db.to_str().unwrap();
    let missing_dir = dir.path().join("no/such/dir/c.db");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--listen", "127.0.0.1:0", "--database", db], "--admin-token"),
        (
            vec![
                "--listen",
                "127.0.0.1:0",
                "--database",
                db,
                "--admin-token",
                "a",
                "--branch-token",
                "CUS",
            ],
            "BRANCH=secret",
        ),
        (
            vec![
                "--listen",
                "127.0.0.1:0",
                "--database",
                db,
                "--admin-token",
                "a",
                "--branch-token",
                "cus=x",
            ],
            "branch_id",
        ),
        (
            vec![
                "--listen",
                "127.0.0.1:0",
                "--database",
                "postgres://u@127.0.0.1/db",
                "--admin-token",
                "a",
            ],
            "cannot open the PostgreSQL database",
        ),
        (
            vec![
                "--listen",
                "127.0.0.1:0",
                "--database",
                missing_dir.to_str().unwrap(),
                "--admin-token",
                "a",
            ],
            "cannot open",
        ),
        (
            vec!["--listen", "nowhere", "--database", db, "--admin-token", "a"],
            "--listen",
        ),
    ];
    for (args, reason) in cases {
        let (code, err) = run_central(&args, &[("RUST_LOG", "warn")]);
        assert!(code.is_some_and(|c| c != 0), "{args:?}: exit {code:?}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(reason), "{args:?}: {err}");
    }
}

#[tokio::test]
async fn tokens_can_come_from_the_environment() {
    let dir = TempDir::new("env");
    let db = dir.path().join("c.db");
    let args = vec![
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--database".into(),
        db.to_string_lossy().into_owned(),
    ];
    let envs = vec![
        ("COLMENA_ADMIN_TOKEN".to_string(), "env-admin".to_string()),
        (
            "COLMENA_BRANCH_TOKENS".to_string(),
            "CUS=env-cus,ABA=env-aba".to_string(),
        ),
    ];
    let central = Proc::spawn("central-env", "colmena-central", args, envs, dir.path());
    let c = client();
    let branches = get_json(&c, &format!("{}/branches", central.url), "env-admin").await;
    let ids: Vec<&str> = branches["branches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["branch_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["ABA", "CUS"]);
    for (b, t) in [("CUS", "env-cus"), ("ABA", "env-aba")] {
        let r = c
            .post(format!("{}/sync/push", central.url))
            .bearer_auth(t)
            .json(&json!({"branch_id": b, "events": []}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{b}");
    }
}

// ------------------------------------------------------------------ both stores

/// Runs each listed `async fn(StoreKind)` as a test on each store: `sqlite::name` and
/// `postgres::name`. Multi-threaded, so tests that race pushes really race.
macro_rules! both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::StoreKind::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::StoreKind::Postgres).await
                }
            )*
        }
    };
}

both_stores!(
    push_of_the_same_batch_twice_applies_it_once,
    overlapping_batches_apply_only_the_new_events,
    a_gap_is_refused_with_where_central_stands_and_nothing_applied,
    eight_concurrent_pushers_of_one_branch_apply_every_seq_exactly_once,
    a_gzip_push_is_decompressed_and_applied,
    tokens_grant_admin_everything_and_branches_only_their_own_sync,
    bad_inputs_are_refused_with_their_documented_error_and_change_nothing,
    kill_9_during_a_push_storm_loses_nothing_acknowledged_and_applies_no_partial_batch,
    pull_returns_product_changes_and_own_allocations_in_cursor_order,
    inventory_shows_the_ledger_including_oversells_and_unknown_products,
    sales_page_by_cursor_filter_by_branch_and_time_and_export_as_csv,
    sigterm_stops_central_with_exit_0_and_a_restart_keeps_everything,
);
