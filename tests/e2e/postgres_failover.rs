//! Scale-out central: several central processes over one PostgreSQL database,
//! branches configured with every central's URL, and the failures that setup must survive.
//!
//! - Two centrals receiving the same branch's pushes at once apply each seq exactly once.
//! - `kill -9` of one central under sustained POS load: sales continue, the branches' relays
//!   fail over to the other URL (and return to the first once it is back), and after drain
//!   the invariant (docs/protocol.md) holds for every branch.
//! - `kill -9` of PostgreSQL's postmaster under load: the centrals answer 503 while it is
//!   down (no panic, no exit), the branches' breakers open and close again after the restart,
//!   and the invariant holds.
//!
//! The database is a private cluster the test starts itself (see `support/postgres.rs`).

use crate::support::postgres::{self, PgCluster};
use crate::support::{
    allocate, branch_token, central_sales, check_invariant, client, eventually, get_json, metric, put_product, sell,
    spawn_branch, spawn_central_db, wait_pulled, Proc, TempDir, ADMIN_TOKEN, POS_TOKEN,
};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PRODUCTS: [&str; 4] = ["P1", "P2", "P3", "P4"];
/// Enough stock that no sale of the load is ever refused: every failed /sell is a real failure.
const STOCK: i64 = 1_000_000;

/// Two centrals over `database`, each knowing `branches`' tokens.
fn two_centrals(dir: &TempDir, database: &str, branches: &[&str]) -> (Proc, Proc) {
    let a = spawn_central_db(dir.path(), database, branches, &[]);
    let b = spawn_central_db(dir.path(), database, branches, &[]);
    (a, b)
}

/// The catalog and an allocation of every product to every branch, through `central`.
async fn seed(c: &reqwest::Client, central: &str, branches: &[&str]) {
    for (i, p) in PRODUCTS.iter().enumerate() {
        put_product(c, central, p, &format!("Producto {p}"), 100 + 25 * i as i64).await;
    }
    for b in branches {
        for p in PRODUCTS {
            allocate(c, central, b, p, STOCK).await;
        }
    }
}

/// What the POS load saw: sale ids answered 201 per branch, and failed /sell calls.
#[derive(Default)]
struct Load {
    acked: Mutex<BTreeMap<String, BTreeSet<String>>>,
    sold: AtomicU64,
    failed: AtomicU64,
}

/// Starts `per_branch` POS clients on each of `branches` (named `names`), each selling a
/// small random basket every few milliseconds until the returned flag is set; returns the
/// flag, the load's tally and the clients' tasks.
fn start_load(
    names: &[&str],
    branches: &[Proc],
    per_branch: u64,
) -> (Arc<AtomicBool>, Arc<Load>, Vec<tokio::task::JoinHandle<()>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let load = Arc::new(Load::default());
    let mut tasks = Vec::new();
    for (branch, p) in names.iter().zip(branches) {
        for t in 0..per_branch {
            let (branch, url, stop, load) = (branch.to_string(), p.url.clone(), stop.clone(), load.clone());
            tasks.push(tokio::spawn(async move {
                let c = client();
                let mut rng = fastrand::Rng::with_seed(t * 7919 + branch.len() as u64);
                while !stop.load(Ordering::SeqCst) {
                    let lines = rng.usize(1..=2);
                    let items: Vec<Value> = (0..lines)
                        .map(|i| json!({"product_id": PRODUCTS[(rng.usize(..) + i) % PRODUCTS.len()], "quantity": rng.i64(1..=3)}))
                        .collect();
                    // Two lines may name the same product: the branch checks their sum.
                    match sell(&c, &url, &json!({ "items": items })).await {
                        Some(body) => {
                            let id = body["sale_id"].as_str().unwrap_or_default().to_string();
                            load.acked
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .entry(branch.clone())
                                .or_default()
                                .insert(id);
                            load.sold.fetch_add(1, Ordering::SeqCst);
                        }
                        None => {
                            load.failed.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }));
        }
    }
    (stop, load, tasks)
}

async fn status(c: &reqwest::Client, branch_url: &str) -> Value {
    get_json(c, &format!("{branch_url}/status"), POS_TOKEN).await
}

async fn metrics_text(c: &reqwest::Client, url: &str) -> String {
    match c.get(format!("{url}/metrics")).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

// ------------------------------------------------------------------ exactly once across instances

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_centrals_receiving_one_branchs_pushes_at_once_apply_each_seq_exactly_once() {
    const N: u64 = 600;
    let dir = TempDir::new("pg-race");
    let db = postgres::fresh_database("race");
    let (a, b) = two_centrals(&dir, &db, &["CUS"]);
    let urls = [a.url.clone(), b.url.clone()];
    let known = Arc::new(AtomicU64::new(0));
    let qty = |s: u64| (s % 3 + 1) as i64;
    let mut tasks = Vec::new();
    for t in 0..8u64 {
        let (urls, known) = (urls.clone(), known.clone());
        tasks.push(tokio::spawn(async move {
            let c = client();
            let mut rng = fastrand::Rng::with_seed(t);
            let (mut applied_here, mut pushes) = (0u64, 0u64);
            while known.load(Ordering::SeqCst) < N {
                let at = known.load(Ordering::SeqCst);
                // Overlapping batches, each to either instance at random.
                let start = rng.u64(at.saturating_sub(20) + 1..=at + 1);
                let end = (start + rng.u64(0..60)).min(N);
                let batch: Vec<Value> = (start..=end)
                    .map(|s| {
                        json!({"seq": s, "kind": "sale", "occurred_at": "2026-11-23T16:00:00Z",
                               "sale_id": format!("CUS-{s:010}"),
                               "lines": [{"product_id": "P1", "quantity": qty(s), "unit_price_cents": 100}],
                               "total_cents": qty(s) * 100})
                    })
                    .collect();
                let url = &urls[rng.usize(0..2)];
                let r = c
                    .post(format!("{url}/sync/push"))
                    .bearer_auth(branch_token("CUS"))
                    .json(&json!({"branch_id": "CUS", "events": batch}))
                    .send()
                    .await
                    .expect("push");
                let status = r.status().as_u16();
                let body: Value = r.json().await.unwrap_or(Value::Null);
                pushes += 1;
                let through = body["applied_through"].as_u64().expect("applied_through");
                match status {
                    200 => {
                        assert!(through >= end, "a 200 must cover the batch: {body}");
                        applied_here += batch.len() as u64 - body["duplicates"].as_u64().unwrap_or(0);
                    }
                    409 => assert!(through + 1 < start, "409 although the batch continued: {body}"),
                    other => panic!("unexpected {other}: {body}"),
                }
                known.fetch_max(through, Ordering::SeqCst);
            }
            (applied_here, pushes)
        }));
    }
    let (mut applied, mut pushes) = (0, 0);
    for t in tasks {
        let (x, p) = t.await.expect("pusher");
        applied += x;
        pushes += p;
    }
    // Σ (events − duplicates) over every 200, at both instances == N: each seq counted once.
    assert_eq!(
        applied, N,
        "events applied across {pushes} racing pushes to two instances"
    );
    let c = client();
    for url in &urls {
        // No backups of its own on PostgreSQL: a clear 501 naming the right tool.
        let r = c
            .post(format!("{url}/admin/backups"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("backup");
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 501, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("pg_dump"),
            "{body}"
        );
        let all = get_json(&c, &format!("{url}/branches"), ADMIN_TOKEN).await;
        let row = all["branches"]
            .as_array()
            .and_then(|v| v.iter().find(|b| b["branch_id"] == "CUS"))
            .cloned()
            .unwrap_or(Value::Null);
        assert_eq!(
            (row["applied_through"].as_u64(), row["events_applied"].as_u64()),
            (Some(N), Some(N)),
            "{url}: {row}"
        );
        let seqs: Vec<u64> = central_sales(&c, url, "CUS")
            .await
            .iter()
            .filter_map(|s| s["seq"].as_u64())
            .collect();
        assert_eq!(seqs, (1..=N).collect::<Vec<_>>(), "{url}");
        let inv = get_json(&c, &format!("{url}/inventory"), ADMIN_TOKEN).await;
        assert_eq!(
            inv["products"][0]["by_branch"]["CUS"].as_i64(),
            Some(-(1..=N).map(qty).sum::<i64>()),
            "{url}"
        );
    }
}

// ------------------------------------------------------------------ kill -9 of a central

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_of_one_central_under_load_branches_fail_over_and_the_invariant_holds() {
    let names = ["B01", "B02", "B03"];
    let dir = TempDir::new("pg-failover");
    let db = postgres::fresh_database("failover");
    let (mut a, b) = two_centrals(&dir, &db, &names);
    let c = client();
    seed(&c, &a.url, &names).await;
    let urls = format!("{},{}", a.url, b.url);
    let mut branches = Vec::new();
    for n in names {
        branches.push(spawn_branch(dir.path(), n, &urls, &["--pull-interval", "1s"]));
    }
    for (n, p) in names.iter().zip(&branches) {
        wait_pulled(&c, &a.url, &p.url, n, Duration::from_secs(20)).await;
        assert_eq!(
            status(&c, &p.url).await["central_url"],
            a.url.as_str(),
            "{n} prefers the first URL"
        );
    }

    let (stop, load, tasks) = start_load(&names, &branches, 2);
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // kill -9 the preferred central mid-load.
    let sold_before = load.sold.load(Ordering::SeqCst);
    let a_url = a.url.clone();
    let mut a = tokio::task::spawn_blocking(move || {
        a.kill9();
        a
    })
    .await
    .expect("kill");
    let killed_at = Instant::now();
    // Every branch moves to the second URL, and its pushes reach it.
    for (n, p) in names.iter().zip(&branches) {
        eventually(
            Duration::from_secs(30),
            &format!("{n} fails over to the second central"),
            || async {
                let on_b = status(&c, &p.url).await["central_url"] == b.url.as_str();
                let m = metrics_text(&c, &b.url).await;
                let applied = metric(&m, &format!("colmena_sync_events_applied_total{{branch_id=\"{n}\"}}"));
                (on_b && applied.unwrap_or(0.0) > 0.0).then_some(())
            },
        )
        .await;
    }
    let failover = killed_at.elapsed();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let sold_during = load.sold.load(Ordering::SeqCst) - sold_before;
    assert!(
        sold_during > 100,
        "sales did not continue after the kill: {sold_during}"
    );

    // The first central comes back on its address: the branches return to it.
    let a = tokio::task::spawn_blocking(move || {
        a.restart();
        a
    })
    .await
    .expect("restart");
    assert_eq!(a.url, a_url);
    for (n, p) in names.iter().zip(&branches) {
        eventually(
            Duration::from_secs(90),
            &format!("{n} returns to the first central"),
            || async { (status(&c, &p.url).await["central_url"] == a.url.as_str()).then_some(()) },
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.expect("load task");
    }
    let failed = load.failed.load(Ordering::SeqCst);
    assert_eq!(failed, 0, "a /sell failed while a central was down");

    // The invariant, against either central: they share one database.
    let acked = load.acked.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for (n, p) in names.iter().zip(&branches) {
        let mine = acked.get(*n).cloned().unwrap_or_default();
        assert!(!mine.is_empty(), "{n} sold nothing");
        check_invariant(&c, &b.url, &p.url, n, &mine, true).await;
        check_invariant(&c, &a.url, &p.url, n, &mine, true).await;
    }
    eprintln!(
        "failover: {} sales, {sold_during} in the 1.5 s after failover, all branches on the second URL {:.1} s after the kill",
        load.sold.load(Ordering::SeqCst),
        failover.as_secs_f64()
    );
}

// ------------------------------------------------------------------ kill -9 of PostgreSQL

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_of_postgres_under_load_centrals_answer_503_breakers_open_and_close_and_the_invariant_holds() {
    let names = ["C01", "C02"];
    let dir = TempDir::new("pg-crash");
    // Its own cluster: this test kills it.
    let cluster = tokio::task::spawn_blocking(|| PgCluster::start("crash"))
        .await
        .expect("cluster");
    let db = cluster.url("postgres");
    let (mut a, mut b) = two_centrals(&dir, &db, &names);
    let c = client();
    seed(&c, &a.url, &names).await;
    let urls = format!("{},{}", a.url, b.url);
    // Short breaker waits so the test sees open → closed quickly after the restart.
    let extra = ["--pull-interval", "1s", "--breaker-wait-max", "2s"];
    let mut branches = Vec::new();
    for n in names {
        branches.push(spawn_branch(dir.path(), n, &urls, &extra));
    }
    for (n, p) in names.iter().zip(&branches) {
        wait_pulled(&c, &a.url, &p.url, n, Duration::from_secs(20)).await;
    }
    let (stop, load, tasks) = start_load(&names, &branches, 2);
    tokio::time::sleep(Duration::from_millis(1000)).await;

    let cluster = tokio::task::spawn_blocking(move || {
        cluster.kill9();
        cluster
    })
    .await
    .expect("kill postgres");
    // While it is down: a clean 503 from both centrals, which keep running. (A backend
    // may answer one more query before it notices its postmaster is gone.)
    for url in [&a.url, &b.url] {
        eventually(Duration::from_secs(10), &format!("{url} answers 503"), || async {
            let r = c
                .get(format!("{url}/branches"))
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await
                .expect("central answers");
            if r.status().as_u16() != 503 {
                return None;
            }
            assert!(r.headers().contains_key("retry-after"), "{url}");
            let body: Value = r.json().await.unwrap_or(Value::Null);
            assert_eq!(body["error"]["code"], "storage_unavailable", "{body}");
            Some(())
        })
        .await;
    }
    // Every branch's breakers open (both URLs fail), while its POS keeps selling.
    let sold_at_kill = load.sold.load(Ordering::SeqCst);
    for (n, p) in names.iter().zip(&branches) {
        eventually(Duration::from_secs(40), &format!("{n}'s breakers open"), || async {
            (status(&c, &p.url).await["circuit"] == "open").then_some(())
        })
        .await;
    }
    assert!(
        a.is_running() && b.is_running(),
        "a central exited while PostgreSQL was down"
    );
    assert!(
        load.sold.load(Ordering::SeqCst) > sold_at_kill,
        "sales stopped with PostgreSQL"
    );

    let cluster = tokio::task::spawn_blocking(move || {
        cluster.restart();
        cluster
    })
    .await
    .expect("restart postgres");
    for (n, p) in names.iter().zip(&branches) {
        eventually(
            Duration::from_secs(60),
            &format!("{n}'s breaker closes again"),
            || async {
                let st = status(&c, &p.url).await;
                (st["circuit"] == "closed" && st["outbox"]["pending"].as_u64() == Some(0)).then_some(())
            },
        )
        .await;
    }
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.expect("load task");
    }
    assert_eq!(
        load.failed.load(Ordering::SeqCst),
        0,
        "a /sell failed while PostgreSQL was down"
    );
    let acked = load.acked.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for (n, p) in names.iter().zip(&branches) {
        check_invariant(&c, &a.url, &p.url, n, &acked.get(*n).cloned().unwrap_or_default(), true).await;
    }
    for (n, p) in names.iter().zip(&branches) {
        let m = metrics_text(&c, &p.url).await;
        let opened = metric(&m, r#"colmena_circuit_breaker_transitions_total{to="open"}"#).unwrap_or(0.0);
        assert!(opened >= 1.0, "{n}: no breaker opened\n{m}");
    }
    assert!(a.is_running() && b.is_running(), "a central exited");
    a.kill9();
    b.kill9();
    drop(cluster);
}
