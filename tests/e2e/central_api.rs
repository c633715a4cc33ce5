//! Central as a real process: crash safety under `kill -9`, SIGTERM and a restart from disk,
//! exit codes of a bad configuration, tokens from the environment. The API itself is tested
//! in process by the `api` binary's `central_api`.
//!
//! The store-dependent tests run on both stores (`sqlite::…`, `postgres::…`), as there.

use crate::support::central::*;
use crate::support::postgres::{both_stores, StoreKind};
use crate::support::{
    allocate, branch_token, central_sales, client, get_json, metric, metrics_text, put_product, spawn_central_db, Proc,
    TempDir, ADMIN_TOKEN,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A central process with branches CUS and ABA on a fresh database of the store `db`.
fn start(db: StoreKind, tag: &str) -> (TempDir, Proc) {
    let dir = TempDir::new(tag);
    let p = spawn_central_db(dir.path(), &db.database(dir.path(), tag), &["CUS", "ABA"], &[]);
    (dir, p)
}

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
            let c = crate::support::client_builder()
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
    let m = metrics_text(&c, &central.url).await;
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
    let mut cmd = std::process::Command::new(crate::support::bin("colmena-central"));
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
    let missing_dir = missing_dir.to_str().unwrap();
    /// A central's flags on `database`, with an admin token if `admin`, then `more`.
    fn flags<'a>(database: &'a str, admin: bool, more: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec!["--listen", "127.0.0.1:0", "--database", database];
        if admin {
            v.extend(["--admin-token", "a"]);
        }
        v.extend(more);
        v
    }
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (flags(db, false, &[]), "--admin-token"),
        (flags(db, true, &["--branch-token", "CUS"]), "BRANCH=secret"),
        (flags(db, true, &["--branch-token", "cus=x"]), "branch_id"),
        (
            flags("postgres://u@127.0.0.1/db", true, &[]),
            "cannot open the PostgreSQL database",
        ),
        (flags(missing_dir, true, &[]), "cannot open"),
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

both_stores!(
    kill_9_during_a_push_storm_loses_nothing_acknowledged_and_applies_no_partial_batch,
    sigterm_stops_central_with_exit_0_and_a_restart_keeps_everything,
);
