//! Deterministic faults inside the processes (issue 6), with the `fail` crate: binaries
//! built with `--features failpoints` into their own target dir (`target/failpoints`), so
//! the normal release binaries are never replaced. Failpoints are set per process through
//! the `FAILPOINTS` environment variable.
//!
//! - `outbox.before_commit=N*return`: the branch writer's commit fails → 503
//!   `storage_unavailable`, stock given back, outbox and Idempotency-Key table untouched,
//!   and once the failpoint is spent the same process sells normally, with no seq burned.
//! - `sell.after_commit=return`: the branch process exits right after the durable commit,
//!   before the 201 → the client sees a broken connection, yet after a restart the sale is
//!   in `/outbox`, its Idempotency-Key replays it, and it reaches central exactly once.
//! - `push.before_commit=return` (central): central exits in the middle of applying a push
//!   batch, after the events are applied in its transaction and before the commit → after
//!   the restart central has none of that batch, and the branch re-pushes it to reach §4.
#[path = "support/proxy.rs"]
mod proxy;
mod support;

use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;
use support::*;

/// These tests start several processes each: run them one at a time (an async mutex: the
/// guard is held across the whole test).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
static BUILT: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

/// A failpoints build of `package`, built (once per test process, so never stale; a no-op
/// when up to date) into `target/failpoints`, apart from the normal release binaries.
fn failpoint_bin(package: &'static str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = root.join("target").join("failpoints");
    let path = target.join("release").join(package);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !built.contains(&package) {
        let status = Command::new(env!("CARGO"))
            .current_dir(root)
            .args(["build", "--release", "-p", package, "--bin", package, "--features"])
            .arg(format!("{package}/failpoints"))
            .arg("--target-dir")
            .arg(&target)
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build of the failpoints {package} failed");
        built.push(package);
    }
    assert!(path.exists(), "{} not found", path.display());
    path
}

fn branch(dir: &Path, central_url: &str, extra: &[&str], failpoints: Option<&str>) -> Proc {
    let envs = failpoints
        .map(|f| vec![("FAILPOINTS".to_string(), f.to_string())])
        .unwrap_or_default();
    Proc::spawn_path(
        "branch-CUS",
        failpoint_bin("colmena-sucursal"),
        branch_args(dir, "CUS", central_url, extra),
        envs,
        dir,
    )
}

async fn call(
    c: &reqwest::Client,
    method: &str,
    url: &str,
    body: Option<&Value>,
    key: Option<&str>,
) -> (u16, Value, bool) {
    let mut rb = match method {
        "POST" => c.post(url),
        _ => c.get(url),
    }
    .bearer_auth(POS_TOKEN);
    if let Some(b) = body {
        rb = rb.json(b);
    }
    if let Some(k) = key {
        rb = rb.header("Idempotency-Key", k);
    }
    let r = rb.send().await.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = r.status().as_u16();
    let replayed = r.headers().get("idempotent-replayed").is_some_and(|v| v == "true");
    (status, r.json().await.unwrap_or(Value::Null), replayed)
}

/// Everything a client can see of a branch's state.
async fn branch_state(c: &reqwest::Client, url: &str) -> (Value, Value, u64) {
    let inv = get_json(c, &format!("{url}/inventory"), POS_TOKEN).await;
    let outbox = get_json(c, &format!("{url}/outbox?limit=10000"), POS_TOKEN).await;
    let st = get_json(c, &format!("{url}/status"), POS_TOKEN).await;
    (inv, outbox, st["outbox"]["last_seq"].as_u64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_commit_is_a_503_that_changes_nothing_and_the_branch_sells_once_it_passes() {
    let _serial = SERIAL.lock().await;
    let dir = TempDir::new("fp-commit");
    let catalog = dir.path().join("catalog.json");
    std::fs::write(
        &catalog,
        r#"[{"product_id":"P1","name":"uno","price_cents":100,"stock":10},{"product_id":"P2","name":"dos","price_cents":200,"stock":5}]"#,
    )
    .unwrap();
    let central = dead_url();
    let c = client();
    // Seed the store (a commit) without failpoints, with two sales already in the outbox.
    let mut seeded = branch(dir.path(), &central, &["--catalog", catalog.to_str().unwrap()], None);
    for _ in 0..2 {
        assert_eq!(
            call(
                &c,
                "POST",
                &format!("{}/sell", seeded.url),
                Some(&json!({"product_id": "P2", "quantity": 1})),
                None
            )
            .await
            .0,
            201
        );
    }
    assert!(seeded.terminate(Duration::from_secs(10)).is_some_and(|s| s.success()));

    // The next two commits of the writer fail, then the failpoint is spent.
    let b = branch(dir.path(), &central, &[], Some("outbox.before_commit=2*return"));
    let before = branch_state(&c, &b.url).await;
    let base = before.2;
    assert!(base >= 2, "the two sales (and the catalog seed) are in the outbox");

    let (status, body, _) = call(
        &c,
        "POST",
        &format!("{}/sell", b.url),
        Some(&json!({"items": [{"product_id": "P1", "quantity": 3}, {"product_id": "P2", "quantity": 1}]})),
        Some("k-1"),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("storage_unavailable")),
        "{body}"
    );
    assert_eq!(
        branch_state(&c, &b.url).await,
        before,
        "a failed sale leaves stock, outbox and last_seq as they were"
    );

    let (status, body, _) = call(
        &c,
        "POST",
        &format!("{}/stock/adjustments", b.url),
        Some(&json!({"product_id": "P2", "quantity_delta": -2, "reason": "shrink"})),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("storage_unavailable")),
        "{body}"
    );
    assert_eq!(
        branch_state(&c, &b.url).await,
        before,
        "a failed adjustment changes nothing"
    );

    // Spent: the same process sells, the retried key is a new sale (nothing was recorded
    // for it), and the seq continues with no gap.
    let (status, sale, replayed) = call(
        &c,
        "POST",
        &format!("{}/sell", b.url),
        Some(&json!({"items": [{"product_id": "P1", "quantity": 3}, {"product_id": "P2", "quantity": 1}]})),
        Some("k-1"),
    )
    .await;
    assert_eq!(status, 201, "{sale}");
    assert!(!replayed, "the failed attempt must not have recorded the key");
    assert_eq!(
        sale["seq"].as_u64(),
        Some(base + 1),
        "no seq was burned by the failures"
    );
    assert_eq!(sale["lines"][0]["remaining_stock"], 7);
    let (status, adj, _) = call(
        &c,
        "POST",
        &format!("{}/stock/adjustments", b.url),
        Some(&json!({"product_id": "P2", "quantity_delta": -2, "reason": "shrink"})),
        None,
    )
    .await;
    assert_eq!(
        (status, adj["seq"].as_u64(), adj["stock"].as_i64()),
        (201, Some(base + 2), Some(0)),
        "{adj}"
    );
    let (inv, outbox, last_seq) = branch_state(&c, &b.url).await;
    assert_eq!(last_seq, base + 2);
    let seqs: Vec<u64> = outbox["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        (1..=base + 2).collect::<Vec<u64>>(),
        "exactly the committed events, in order"
    );
    let stock = |inv: &Value, p: &str| {
        inv["products"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["product_id"] == p)
            .unwrap()["stock"]
            .as_i64()
            .unwrap()
    };
    assert_eq!((stock(&inv, "P1"), stock(&inv, "P2")), (7, 0));
    assert!(b.log_text().contains("outbox commit failed"), "the failure is logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_commit_and_reply_keeps_the_sale_and_central_gets_it_exactly_once() {
    let _serial = SERIAL.lock().await;
    let dir = TempDir::new("fp-crash-reply");
    let central = spawn_central(dir.path(), &["CUS"], &[]);
    let c = client();
    put_product(&c, &central.url, "P1", "uno", 150).await;
    allocate(&c, &central.url, "CUS", "P1", 100).await;
    // Through a proxy, so the relay can be held off while the branch crashes.
    let proxy = proxy::Proxy::start(central.addr.as_str());
    let fast = [
        "--breaker-wait-min",
        "200ms",
        "--breaker-wait-max",
        "1s",
        "--request-timeout",
        "1s",
        "--pull-interval",
        "300ms",
        "--startup-sync-timeout",
        "1s",
    ];
    let mut b = branch(dir.path(), &proxy.url, &fast, Some("sell.after_commit=return"));
    wait_pulled(&c, &central.url, &b.url, "CUS", Duration::from_secs(20)).await;
    proxy.set_reset(true);

    let body = json!({"product_id": "P1", "quantity": 2, "cashier_id": "ana"});
    let r = c
        .post(format!("{}/sell", b.url))
        .bearer_auth(POS_TOKEN)
        .header("Idempotency-Key", "crash-1")
        .json(&body)
        .send()
        .await;
    assert!(r.is_err(), "the client must not get an answer: {r:?}");
    let st = b.wait_exit(Duration::from_secs(10)).expect("the branch process ended");
    assert_eq!(st.code(), Some(137), "ended by the failpoint");

    // Restart without the failpoint: the sale is durable and pending.
    b.set_env("FAILPOINTS", None);
    b.restart();
    let (inv, outbox, last_seq) = branch_state(&c, &b.url).await;
    assert_eq!(last_seq, 1);
    assert_eq!(inv["products"][0]["stock"], 98);
    let events = outbox["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{outbox}");
    assert_eq!(
        (events[0]["kind"].as_str(), events[0]["lines"][0]["quantity"].as_i64()),
        (Some("sale"), Some(2))
    );
    let sale_id = events[0]["sale_id"].as_str().unwrap().to_string();

    // The POS retries with its key: the first result, not a second sale.
    let (status, replay, replayed) = call(&c, "POST", &format!("{}/sell", b.url), Some(&body), Some("crash-1")).await;
    assert_eq!((status, replayed), (201, true), "{replay}");
    assert_eq!(replay["sale_id"].as_str(), Some(sale_id.as_str()));
    assert_eq!(branch_state(&c, &b.url).await.2, 1, "nothing more was sold");

    proxy.heal();
    let acked: BTreeSet<String> = [sale_id.clone()].into();
    check_invariant(&c, &central.url, &b.url, "CUS", &acked, true).await;
    let sales = central_sales(&c, &central.url, "CUS").await;
    assert_eq!(sales.len(), 1);
    assert_eq!(
        (sales[0]["sale_id"].as_str(), sales[0]["lines"][0]["quantity"].as_i64()),
        (Some(sale_id.as_str()), Some(2))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_in_the_middle_of_centrals_apply_leaves_none_of_the_batch_and_the_branch_re_pushes_it() {
    let _serial = SERIAL.lock().await;
    let dir = TempDir::new("fp-central-apply");
    let central_bin = failpoint_bin("colmena-central");
    let mut central = Proc::spawn_path(
        "central",
        central_bin,
        central_args(dir.path(), &["CUS"], &[]),
        vec![],
        dir.path(),
    );
    let c = client();
    put_product(&c, &central.url, "P1", "uno", 150).await;
    allocate(&c, &central.url, "CUS", "P1", 1000).await;
    // The branch reaches central through a proxy, so it can be held off while central restarts.
    let proxy = proxy::Proxy::start(central.addr.as_str());
    let fast = [
        "--breaker-wait-min",
        "200ms",
        "--breaker-wait-max",
        "1s",
        "--request-timeout",
        "1s",
        "--pull-interval",
        "300ms",
        "--startup-sync-timeout",
        "1s",
    ];
    let branch = spawn_branch(dir.path(), "CUS", &proxy.url, &fast);
    wait_pulled(&c, &central.url, &branch.url, "CUS", Duration::from_secs(20)).await;

    // A first batch is applied normally.
    let mut acked = BTreeSet::new();
    for _ in 0..10 {
        acked.insert(
            sell(&c, &branch.url, &json!({"product_id": "P1", "quantity": 1}))
                .await
                .unwrap()["sale_id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let before = wait_drained(&c, &branch.url, Duration::from_secs(20)).await["outbox"]["last_seq"]
        .as_u64()
        .unwrap();
    let snapshot = |c: reqwest::Client, url: String| async move {
        (
            get_json(&c, &format!("{url}/branches"), ADMIN_TOKEN).await,
            get_json(&c, &format!("{url}/inventory"), ADMIN_TOKEN).await,
            central_sales(&c, &url, "CUS").await,
        )
    };
    let committed = snapshot(c.clone(), central.url.clone()).await;

    // Now central dies between applying the next batch and committing it.
    assert!(central.terminate(Duration::from_secs(10)).is_some_and(|s| s.success()));
    central.set_env("FAILPOINTS", Some("push.before_commit=return"));
    central.restart();
    // Hold the relay until the whole batch is in the outbox, then let it through at once.
    proxy.set_blackhole(true);
    for _ in 0..40 {
        acked.insert(
            sell(
                &c,
                &branch.url,
                &json!({"items": [{"product_id": "P1", "quantity": 2}], "cashier_id": "ana"}),
            )
            .await
            .unwrap()["sale_id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    proxy.set_blackhole(false);
    proxy.cut_connections();
    let st = central
        .wait_exit(Duration::from_secs(30))
        .expect("central crashed in the middle of the apply");
    assert_eq!(st.code(), Some(137), "ended by the failpoint:\n{}", central.log_text());
    assert!(
        central.log_text().contains("failpoint push.before_commit"),
        "the crash came from inside the apply"
    );

    // Restarted without the failpoint, with the branch held off: none of that batch is there.
    proxy.set_reset(true);
    central.set_env("FAILPOINTS", None);
    central.restart();
    let after_crash = snapshot(c.clone(), central.url.clone()).await;
    assert_eq!(
        after_crash.0["branches"][0]["applied_through"].as_u64(),
        Some(before),
        "applied_through moved: {}",
        after_crash.0
    );
    assert_eq!(after_crash.1, committed.1, "stock moved");
    assert_eq!(after_crash.2, committed.2, "sales of the unfinished batch are visible");

    // The branch re-pushes and the invariant holds, every sale exactly once.
    proxy.heal();
    check_invariant(&c, &central.url, &branch.url, "CUS", &acked, true).await;
    assert_eq!(central_sales(&c, &central.url, "CUS").await.len(), 50);
}
