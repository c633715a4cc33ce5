//! The branch's durable sale path, in this process: real HTTP, a real SQLite file, the
//! branch built exactly as `colmena-sucursal` builds it. Central is a dead URL here: the
//! branch must not care. What needs a real process (`kill -9`) is in the `e2e` binary's
//! `branch_api`.

use crate::support::app::{self, App};
use crate::support::pos::*;
use crate::support::*;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

/// A branch CUS in this process, its catalog `PRODUCTS` products of `stock` units each.
async fn start_branch(dir: &Path, stock: i64) -> App {
    let catalog = write_catalog(dir, stock);
    app::spawn_branch(dir, "CUS", &dead_url(), &["--catalog", &catalog]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_concurrent_sales_never_oversells_and_every_201_is_durable() {
    let dir = TempDir::new("storm");
    let initial = 1500;
    let branch = start_branch(dir.path(), initial).await;
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
async fn idempotency_key_replays_refuses_mismatch_and_concurrency_and_survives_restart() {
    let dir = TempDir::new("idem");
    let mut branch = start_branch(dir.path(), 1000).await;
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
    // A graceful stop (what SIGTERM does in the binary), then the same flags again.
    branch.stop().await.expect("a graceful stop ends with Ok");
    branch.restart().await;
    let (s4, fourth, r4) = post(&c, &format!("{}/sell", branch.url), &body, Some("key-1")).await;
    assert_eq!((s4, r4), (201, true));
    assert_eq!(fourth, first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_its_documented_4xx_and_changes_nothing() {
    let dir = TempDir::new("badinput");
    let branch = start_branch(dir.path(), 1000).await;
    let c = client();
    let inv_before = get_bytes(&c, &format!("{}/inventory", branch.url), Some(POS_TOKEN)).await;
    let out_before = get_bytes(
        &c,
        &format!("{}/outbox?limit=10000", branch.url),
        Some(BRANCH_ADMIN_TOKEN),
    )
    .await;
    let cases = corpus::branch_api_corpus();
    assert!(cases.len() >= 60, "{} cases", cases.len());
    let failures = corpus::run_all(&cases, |_| branch.addr.clone()).await;
    corpus::assert_no_failures(&failures, cases.len());
    let inv_after = get_bytes(&c, &format!("{}/inventory", branch.url), Some(POS_TOKEN)).await;
    let out_after = get_bytes(
        &c,
        &format!("{}/outbox?limit=10000", branch.url),
        Some(BRANCH_ADMIN_TOKEN),
    )
    .await;
    assert_eq!(inv_before, inv_after, "inventory changed");
    assert_eq!(out_before, out_after, "outbox changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics_need_no_token_and_status_reports_the_outbox() {
    let dir = TempDir::new("health");
    let branch = start_branch(dir.path(), 10).await;
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
    let m = metrics_text(&c, &branch.url).await;
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
