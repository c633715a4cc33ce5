//! Central in this process, over real HTTP: exactly-once apply, auth, bad input, the pull
//! feed, queries and metrics (see docs/protocol.md). Crash safety and the process lifecycle
//! (kill -9, SIGTERM, exit codes, tokens from the environment) are in the `e2e` binary's
//! `central_api`.
//!
//! Every test about what the store does runs twice, on a real SQLite file (`sqlite::…`) and
//! on a private PostgreSQL cluster (`postgres::…`, a fresh database per test): each is an
//! `async fn(StoreKind)` listed in `both_stores!` at the end of this file.

use crate::support::app::{self, App};
use crate::support::central::*;
use crate::support::corpus::{self, central_api_corpus};
use crate::support::postgres::{both_stores, StoreKind};
use crate::support::{
    allocate, branch_token, central_sales, client, get_json, gzip, metric, metrics_text, put_product, TempDir,
    ADMIN_TOKEN,
};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

// ------------------------------------------------------------------ helpers

/// A central (in this process) with branches CUS and ABA on a fresh database of the store
/// `db`.
async fn start(db: StoreKind, tag: &str) -> (TempDir, App) {
    let dir = TempDir::new(tag);
    let central = app::spawn_central_db(&db.database(dir.path(), tag), &["CUS", "ABA"], &[]).await;
    (dir, central)
}

// ------------------------------------------------------------------ exactly once

async fn a_different_event_under_an_applied_seq_is_refused_and_changes_nothing(db: StoreKind) {
    let (_d, central) = start(db, "mismatch").await;
    let c = client();
    let mut batch = sales(1, 4);
    let mut adj = adjustment(5, "P1", 7);
    adj["user_id"] = json!("sup");
    batch.push(adj);
    assert_eq!(push_ok(&c, &central.url, "CUS", &batch).await, (5, 0));
    let before = (
        central_sales(&c, &central.url, "CUS").await,
        get_json(&c, &format!("{}/inventory", central.url), ADMIN_TOKEN).await,
    );

    // What a retry sends is the same event, spelled any way JSON allows: a duplicate.
    let mut respelled = batch.clone();
    respelled[1]["lines"][0]["product_id"] = json!("P1");
    assert_eq!(push_ok(&c, &central.url, "CUS", &respelled).await, (5, 5));

    // A different sale, a different user on the adjustment: each is refused with a new event
    // behind it, which is not applied either.
    let mut other_sale = batch[2..].to_vec();
    other_sale[0] = sale(3, &[("P1", 2, 100)]);
    let mut other_user = batch[4..].to_vec();
    other_user[0]["user_id"] = json!("ana");
    for (what, mut events, seq) in [("sale", other_sale, 3), ("adjustment", other_user, 5)] {
        events.push(sale(6, &[("P1", 1, 100)]));
        let (status, body) = push(&c, &central.url, "CUS", &events).await;
        assert_eq!(status, 409, "{what}: {body}");
        assert_eq!(body["error"]["code"], "duplicate_mismatch", "{what}: {body}");
        assert_eq!(body["applied_through"], 5, "{what}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&format!("event {seq}")),
            "{body}"
        );
    }
    let after = (
        central_sales(&c, &central.url, "CUS").await,
        get_json(&c, &format!("{}/inventory", central.url), ADMIN_TOKEN).await,
    );
    assert_eq!(before, after, "a refused push changed central");
}

async fn push_of_the_same_batch_twice_applies_it_once(db: StoreKind) {
    let (_d, central) = start(db, "twice").await;
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
    let m = metrics_text(&c, &central.url).await;
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
    let (_d, central) = start(db, "overlap").await;
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
    let (_d, central) = start(db, "gap").await;
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
    let (_d, central) = start(db, "race").await;
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
    let (_d, central) = start(db, "gzip").await;
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
    let (_d, central) = start(db, "auth").await;
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

#[tokio::test(flavor = "multi_thread")]
async fn huge_bodies_are_refused_before_they_are_read() {
    // Refused in the HTTP layer, before any store is asked: one store is enough.
    let (_d, central) = start(StoreKind::Sqlite, "huge").await;
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
    let (_d, central) = start(db, "bad").await;
    let c = client();
    let u = central.url.clone();
    put_product(&c, &u, "P1", "Coca Cola 500ml", 550).await;
    corpus::seed_catalog(&c, &u).await;
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

    let cases = central_api_corpus();
    assert!(cases.len() >= 40);
    let failures = corpus::run_all(&cases, |_| central.addr.clone()).await;
    corpus::assert_no_failures(&failures, cases.len());
    assert_eq!(snapshot(&c, &u).await, before, "a refused request changed state");
    assert!(app::service_panics() == 0, "central panicked");
}

// ------------------------------------------------------------------ crash safety

// ------------------------------------------------------------------ pull feed

async fn pull_returns_product_changes_and_own_allocations_in_cursor_order(db: StoreKind) {
    let (_d, central) = start(db, "pull").await;
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
    let (_d, central) = start(db, "inventory").await;
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
        json!({"product_id": "P1", "name": "Coca", "price_cents": 550, "total_stock": -2, "by_branch": {"CUS": -2}, "in_transit": 0})
    );
    let unknown = get_json(&c, &format!("{u}/inventory/X7"), ADMIN_TOKEN).await;
    assert_eq!(
        unknown,
        json!({"product_id": "X7", "name": null, "price_cents": null, "total_stock": -2, "by_branch": {"CUS": -2}, "in_transit": 0})
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
    let m = metrics_text(&c, &u).await;
    assert_eq!(metric(&m, "colmena_central_negative_stock_products"), Some(2.0), "{m}");

    let products = get_json(&c, &format!("{u}/products"), ADMIN_TOKEN).await;
    assert_eq!(products["products"].as_array().unwrap().len(), 2);
}

async fn sales_page_by_cursor_filter_by_branch_and_time_and_export_as_csv(db: StoreKind) {
    let (_d, central) = start(db, "sales").await;
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

// ------------------------------------------------------------------ both stores

both_stores!(
    push_of_the_same_batch_twice_applies_it_once,
    a_different_event_under_an_applied_seq_is_refused_and_changes_nothing,
    overlapping_batches_apply_only_the_new_events,
    a_gap_is_refused_with_where_central_stands_and_nothing_applied,
    eight_concurrent_pushers_of_one_branch_apply_every_seq_exactly_once,
    a_gzip_push_is_decompressed_and_applied,
    tokens_grant_admin_everything_and_branches_only_their_own_sync,
    bad_inputs_are_refused_with_their_documented_error_and_change_nothing,
    pull_returns_product_changes_and_own_allocations_in_cursor_order,
    inventory_shows_the_ledger_including_oversells_and_unknown_products,
    sales_page_by_cursor_filter_by_branch_and_time_and_export_as_csv,
);
