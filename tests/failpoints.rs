//! Deterministic faults inside the processes, with the `fail` crate: binaries
//! built with `--features failpoints` as `colmena-sucursal-failpoints` and
//! `colmena-central-failpoints`, beside the normal release binaries (which are never
//! replaced). Failpoints are set per process through the `FAILPOINTS` environment variable.
//!
//! - `outbox.before_commit=N*return`: the branch writer's commit fails → 503
//!   `storage_unavailable`, stock given back, outbox and Idempotency-Key table untouched,
//!   and once the failpoint is spent the same process sells normally, with no seq burned.
//! - `sell.after_commit=return`: the branch process exits right after the durable commit,
//!   before the 201 → the client sees a broken connection, yet after a restart the sale is
//!   in `/outbox`, its Idempotency-Key replays it, and it reaches central exactly once.
//! - `push.before_commit=return` (central): central exits in the middle of applying a push
//!   batch, after the events are applied in its transaction and before the commit → after
//!   the restart central has none of that batch, and the branch re-pushes it to reach the invariant.
//! - A power cut (not a kill: the page cache is lost too) in the middle of a sales storm:
//!   every sale answered 201 is on disk afterwards, and the store is consistent. And its
//!   negative control: with `outbox.skip_fsync=return` (the branch answers without the
//!   fsync) the same cut loses answered sales — so the test can fail.
//! - The same power cut under central in the middle of a push storm from six branches: every
//!   push answered 200 is in central's store afterwards (whole pushes only, each event once),
//!   and a re-push of everything from seq 1 after the reboot counts each sale once. Its
//!   negative control: with `sqlite.skip_fsync=return` (central's store never fsyncs) the
//!   cut loses answered pushes.
//! - The same again with central on PostgreSQL and the power cut under the database (a
//!   private cluster with the server's durable defaults, its data dir on the image). Its
//!   negative control: `synchronous_commit=off` on central's connections loses answered
//!   pushes.
mod support;

use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::proxy;
use support::*;

/// These tests start several processes each: run them one at a time (an async mutex: the
/// guard is held across the whole test).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A branch that retries and pulls quickly, for the tests that hold it off behind a proxy.
const FAST: [&str; 10] = [
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

/// The failpoints build of `package` (`<package>-failpoints`, beside the release binaries).
/// Tests never build it: `scripts/test.sh` does, up front ([`bin`] says how when it is
/// missing).
fn failpoint_bin(package: &'static str) -> PathBuf {
    bin(&format!("{package}-failpoints"))
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
    .bearer_auth(branch_token_for(url));
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
    let outbox = get_json(c, &format!("{url}/outbox?limit=10000"), BRANCH_ADMIN_TOKEN).await;
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

    let basket = json!({"items": [{"product_id": "P1", "quantity": 3}, {"product_id": "P2", "quantity": 1}]});
    let refused = [
        (
            "/sell",
            basket.clone(),
            Some("k-1"),
            "a failed sale leaves stock, outbox and last_seq as they were",
        ),
        (
            "/stock/adjustments",
            json!({"product_id": "P2", "quantity_delta": -2, "reason": "shrink"}),
            None,
            "a failed adjustment changes nothing",
        ),
    ];
    for (path, body, key, unchanged) in refused {
        let (status, body, _) = call(&c, "POST", &format!("{}{path}", b.url), Some(&body), key).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (503, Some("storage_unavailable")),
            "{path}: {body}"
        );
        assert_eq!(branch_state(&c, &b.url).await, before, "{unchanged}");
    }

    // Spent: the same process sells, the retried key is a new sale (nothing was recorded
    // for it), and the seq continues with no gap.
    let (status, sale, replayed) = call(&c, "POST", &format!("{}/sell", b.url), Some(&basket), Some("k-1")).await;
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
    let mut b = branch(dir.path(), &proxy.url, &FAST, Some("sell.after_commit=return"));
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
    let branch = spawn_branch(dir.path(), "CUS", &proxy.url, &FAST);
    wait_pulled(&c, &central.url, &branch.url, "CUS", Duration::from_secs(20)).await;

    // A first batch is applied normally.
    let mut acked = BTreeSet::new();
    acked.extend(sell_ids(&c, &branch.url, "P1", 10).await);
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

/// A file system on which a power cut can be simulated: an ext4 image on a loop device, shut
/// down with `EXT4_IOC_SHUTDOWN` + `EXT4_GOING_FLAGS_NOLOGFLUSH` (xfstests' "godown"). From
/// that instant every write fails and whatever was not fsync'd never reaches the image,
/// exactly as if the machine had lost power; unmount + mount then shows what a reboot would.
struct PowerCutFs {
    img: PathBuf,
    mnt: PathBuf,
    mounted: bool,
}

impl PowerCutFs {
    /// None (the caller skips, loudly) where loop mounts are impossible: not root, or no
    /// `mkfs.ext4`/loop device (CI runs as root on a machine with both).
    fn new(dir: &Path) -> Option<PowerCutFs> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return None;
        }
        let img = dir.join("disk.img");
        let mnt = dir.join("mnt");
        std::fs::create_dir_all(&mnt).ok()?;
        std::fs::File::create(&img).ok()?.set_len(256 << 20).ok()?;
        let ok = |c: &mut Command| c.status().is_ok_and(|s| s.success());
        if !ok(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&img)) {
            return None;
        }
        let mut fs = PowerCutFs {
            img,
            mnt,
            mounted: false,
        };
        if !fs.mount() {
            return None;
        }
        Some(fs)
    }

    fn mount(&mut self) -> bool {
        self.mounted = Command::new("mount")
            .args(["-o", "loop"])
            .arg(&self.img)
            .arg(&self.mnt)
            .status()
            .is_ok_and(|s| s.success());
        self.mounted
    }

    fn umount(&mut self) {
        for _ in 0..50 {
            if Command::new("umount")
                .arg(&self.mnt)
                .status()
                .is_ok_and(|s| s.success())
            {
                self.mounted = false;
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("cannot unmount {}", self.mnt.display());
    }

    fn cut_power(&self) {
        const EXT4_IOC_SHUTDOWN: libc::c_ulong = 0x8004_587D; // _IOR('X', 125, __u32)
        const EXT4_GOING_FLAGS_NOLOGFLUSH: u32 = 2;
        let dir = std::fs::File::open(&self.mnt).expect("open the mount point");
        let flags = EXT4_GOING_FLAGS_NOLOGFLUSH;
        // SAFETY: a valid fd and a pointer to a live u32, as the ioctl expects.
        let rc = unsafe {
            libc::ioctl(
                std::os::fd::AsRawFd::as_raw_fd(&dir),
                EXT4_IOC_SHUTDOWN as _,
                &flags as *const u32,
            )
        };
        assert_eq!(rc, 0, "EXT4_IOC_SHUTDOWN: {}", std::io::Error::last_os_error());
    }
}

impl Drop for PowerCutFs {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
        }
    }
}

/// What one power cut left: the sales answered 201 (seq → sale_id) and the store after the
/// reboot (seq → sale_id of every sale event, stock per product).
struct CutOutcome {
    acked: std::collections::BTreeMap<u64, String>,
    failed_after_cut: usize,
    stored: std::collections::BTreeMap<u64, String>,
    sold_in_store: std::collections::BTreeMap<String, i64>,
    stock: std::collections::BTreeMap<String, i64>,
    last_seq: u64,
    all_seqs_contiguous: bool,
}

const CUT_STOCK: i64 = 1_000_000;

/// Sells from 16 clients for a while, cuts the power under them, "reboots" and reads back.
async fn sell_through_a_power_cut(tag: &str, failpoints: Option<&str>) -> Option<CutOutcome> {
    let dir = TempDir::new(tag);
    let Some(mut fs) = PowerCutFs::new(dir.path()) else {
        eprintln!("SKIPPED {tag}: needs root, mkfs.ext4 and a loop device for the simulated power cut");
        return None;
    };
    let catalog = dir.path().join("catalog.json");
    let items: Vec<Value> = (1..=4)
        .map(|i| json!({"product_id": format!("P{i}"), "name": format!("p{i}"), "price_cents": 100 * i, "stock": CUT_STOCK}))
        .collect();
    std::fs::write(&catalog, serde_json::to_vec(&items).unwrap()).unwrap();
    let envs = failpoints
        .map(|f| vec![("FAILPOINTS".to_string(), f.to_string())])
        .unwrap_or_default();
    let mut b = Proc::spawn_path(
        "branch-CUS",
        failpoint_bin("colmena-sucursal"),
        branch_args(&fs.mnt, "CUS", &dead_url(), &["--catalog", catalog.to_str().unwrap()]),
        envs,
        dir.path(),
    );
    let c = client();
    let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for w in 0..16 {
        let (c, url, cut) = (c.clone(), b.url.clone(), cut.clone());
        clients.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut failed_after_cut = 0;
            for i in 0.. {
                let body = json!({"product_id": format!("P{}", (w + i) % 4 + 1), "quantity": 1 + (i % 3)});
                let r = c
                    .post(format!("{url}/sell"))
                    .bearer_auth(POS_TOKEN)
                    .json(&body)
                    .send()
                    .await;
                // Read after the answer: the flag is raised before the cut, so a failure the
                // cut caused always sees it.
                let was_cut = cut.load(std::sync::atomic::Ordering::Acquire);
                match r {
                    Ok(r) if r.status().as_u16() == 201 => {
                        let v: Value = r.json().await.unwrap_or(Value::Null);
                        if let (Some(seq), Some(id)) = (v["seq"].as_u64(), v["sale_id"].as_str()) {
                            acked.push((seq, id.to_string()));
                        }
                    }
                    Ok(_) if was_cut => failed_after_cut += 1,
                    Ok(r) => panic!("a sale failed before the power cut: {}", r.status()),
                    // The branch was killed after the cut.
                    Err(_) if was_cut => break,
                    Err(e) => panic!("a sale failed before the power cut: {e}"),
                }
            }
            (acked, failed_after_cut)
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    cut.store(true, std::sync::atomic::Ordering::Release);
    fs.cut_power();
    tokio::time::sleep(Duration::from_millis(300)).await;
    b.kill9();
    let mut outcome = CutOutcome {
        acked: Default::default(),
        failed_after_cut: 0,
        stored: Default::default(),
        sold_in_store: Default::default(),
        stock: Default::default(),
        last_seq: 0,
        all_seqs_contiguous: false,
    };
    for t in clients {
        let (acked, failed) = t.await.expect("client task");
        outcome.acked.extend(acked);
        outcome.failed_after_cut += failed;
    }

    // "Reboot": what is on the image now is all that survived.
    fs.umount();
    assert!(fs.mount(), "remount the image after the cut");
    b.set_env("FAILPOINTS", None);
    b.restart();
    let st = get_json(&c, &format!("{}/status", b.url), POS_TOKEN).await;
    outcome.last_seq = st["outbox"]["last_seq"].as_u64().unwrap();
    let inv = get_json(&c, &format!("{}/inventory", b.url), POS_TOKEN).await;
    for p in inv["products"].as_array().unwrap() {
        outcome.stock.insert(
            p["product_id"].as_str().unwrap().to_string(),
            p["stock"].as_i64().unwrap(),
        );
    }
    assert!(b.terminate(Duration::from_secs(10)).is_some_and(|s| s.success()));
    let db = rusqlite::Connection::open(fs.mnt.join("branch-CUS").join("branch.db")).unwrap();
    let mut st = db
        .prepare("SELECT seq, kind, payload FROM outbox ORDER BY seq")
        .unwrap();
    let rows: Vec<(u64, String, String)> = st
        .query_map([], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    outcome.all_seqs_contiguous = rows.iter().enumerate().all(|(i, r)| r.0 == i as u64 + 1);
    for (seq, kind, payload) in rows {
        if kind != "sale" {
            continue;
        }
        let ev: Value = serde_json::from_str(&payload).unwrap();
        outcome.stored.insert(seq, ev["sale_id"].as_str().unwrap().to_string());
        for l in ev["lines"].as_array().unwrap() {
            *outcome
                .sold_in_store
                .entry(l["product_id"].as_str().unwrap().to_string())
                .or_default() += l["quantity"].as_i64().unwrap();
        }
    }
    drop(st);
    drop(db);
    fs.umount();
    Some(outcome)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sale_answered_201_survives_a_power_cut_in_the_middle_of_a_sales_storm() {
    let _serial = SERIAL.lock().await;
    let Some(o) = sell_through_a_power_cut("fp-power-cut", None).await else {
        return;
    };
    assert!(
        o.acked.len() >= 200,
        "the storm sold too little to mean anything: {}",
        o.acked.len()
    );
    assert!(
        o.failed_after_cut > 0,
        "the cut must hit sales in flight (none failed after it)"
    );
    let lost: Vec<_> = o
        .acked
        .iter()
        .filter(|(seq, id)| o.stored.get(seq) != Some(id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} sales answered 201 are not on disk after the power cut, e.g. {:?}",
        lost.len(),
        o.acked.len(),
        lost.iter().take(5).collect::<Vec<_>>()
    );
    assert!(o.all_seqs_contiguous, "the outbox has a gap after the cut");
    assert_eq!(
        o.last_seq,
        *o.stored.keys().last().unwrap(),
        "last_seq is the last stored event"
    );
    // Never counted twice: the stock the branch reloads is the catalog less exactly the sales
    // on disk (a sale the cut interrupted is either wholly there or wholly absent).
    for p in ["P1", "P2", "P3", "P4"] {
        assert_eq!(
            o.stock.get(p).copied(),
            Some(CUT_STOCK - o.sold_in_store.get(p).copied().unwrap_or(0)),
            "{p}: stock after the reboot does not match the sales on disk"
        );
    }
    eprintln!(
        "power cut: {} sales answered 201, all on disk; {} more on disk than answered (synced, answer lost); {} refused after the cut",
        o.acked.len(),
        o.stored.len() - o.acked.len(),
        o.failed_after_cut
    );
}

/// The negative control of the test above: a branch that answers before its fsync must be
/// caught losing answered sales. (A few tries: the background checkpoint syncs the WAL every
/// 20 ms, so an unlucky cut can land just after one.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_power_cut_test_catches_a_branch_that_answers_before_its_fsync() {
    let _serial = SERIAL.lock().await;
    for attempt in 1..=3 {
        let Some(o) = sell_through_a_power_cut("fp-power-cut-nofsync", Some("outbox.skip_fsync=return")).await else {
            return;
        };
        let lost = o.acked.iter().filter(|(seq, id)| o.stored.get(seq) != Some(id)).count();
        eprintln!(
            "attempt {attempt}: {lost} of {} sales answered 201 lost by the cut",
            o.acked.len()
        );
        if lost > 0 {
            return;
        }
    }
    panic!("three power cuts lost nothing although the branch never fsyncs: the power-cut test cannot fail");
}

// ------------------------------------------------------------------ central's power cut

/// The branches pushing in central's power-cut tests, one pusher each.
const PUSHERS: [&str; 6] = ["CUS", "ABA", "LIM", "ARE", "PIU", "TRU"];
const PUSH_BATCH: u64 = 20;

/// A batch of sale events `from..from + PUSH_BATCH`, each one unit of one of P1..P4.
fn sale_batch(branch: &str, from: u64) -> Value {
    let events: Vec<Value> = (from..from + PUSH_BATCH)
        .map(|seq| {
            let p = format!("P{}", seq % 4 + 1);
            json!({"seq": seq, "kind": "sale", "occurred_at": "2026-11-23T16:00:00Z",
                   "sale_id": format!("{branch}-{seq:010}"),
                   "lines": [{"product_id": p, "quantity": 1, "unit_price_cents": 100}],
                   "total_cents": 100})
        })
        .collect();
    json!({"branch_id": branch, "events": events})
}

/// What a central's store held for a branch after the reboot.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct CentralBranchRow {
    applied_through: u64,
    events_applied: u64,
    sales_count: u64,
    /// Sales rows in the store (the SQLite file is read directly); `sales_count` where the
    /// store is read through central.
    sales_rows: u64,
}

type CentralRows = std::collections::BTreeMap<String, CentralBranchRow>;

/// The push storm of one power cut: per branch, the highest `applied_through` central
/// answered 200 with and the highest seq sent (answered or not), and how many pushes failed
/// once the cut had come.
#[derive(Default)]
struct Storm {
    acked: std::collections::BTreeMap<&'static str, u64>,
    sent: std::collections::BTreeMap<&'static str, u64>,
    failed_after_cut: usize,
}

/// Puts the products, pushes from every branch of [`PUSHERS`] as fast as central answers for
/// 1.5 s, then raises the flag and runs `cut` (which must make central's disk vanish), waits
/// for the pushers to notice and returns what they saw.
async fn push_storm(central_url: &str, cut: impl FnOnce()) -> Storm {
    let c = client();
    for i in 1..=4 {
        put_product(&c, central_url, &format!("P{i}"), &format!("p{i}"), 100).await;
    }
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut pushers = Vec::new();
    for branch in PUSHERS {
        let (c, url, flag) = (c.clone(), central_url.to_string(), flag.clone());
        pushers.push(tokio::spawn(async move {
            let (mut acked, mut sent, mut failed_after_cut) = (0u64, 0u64, 0usize);
            loop {
                let body = sale_batch(branch, sent + 1);
                sent += PUSH_BATCH;
                let r = c
                    .post(format!("{url}/sync/push"))
                    .bearer_auth(branch_token(branch))
                    .json(&body)
                    .send()
                    .await;
                // Read after the answer: the flag is raised before the cut, so a failure the
                // cut caused always sees it.
                let was_cut = flag.load(std::sync::atomic::Ordering::Acquire);
                match r {
                    Ok(r) if r.status().as_u16() == 200 => {
                        let v: Value = r.json().await.unwrap_or(Value::Null);
                        let through = v["applied_through"].as_u64().expect("applied_through in a 200");
                        assert_eq!(through, sent, "{branch}: a push of consecutive seqs applies them all");
                        acked = through;
                    }
                    // Central refuses once its disk is gone; the rest of the storm is moot.
                    Ok(_) | Err(_) if was_cut => {
                        failed_after_cut += 1;
                        break;
                    }
                    Ok(r) => panic!("{branch}: a push failed before the power cut: {}", r.status()),
                    Err(e) => panic!("{branch}: a push failed before the power cut: {e}"),
                }
            }
            (branch, acked, sent, failed_after_cut)
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    flag.store(true, std::sync::atomic::Ordering::Release);
    cut();
    let mut storm = Storm::default();
    for t in pushers {
        let (branch, a, s, f) = t.await.expect("pusher task");
        storm.acked.insert(branch, a);
        storm.sent.insert(branch, s);
        storm.failed_after_cut += f;
    }
    storm
}

/// Every push answered 200 is in the store after the cut: whole pushes only, each event once.
fn assert_nothing_answered_was_lost(storm: &Storm, durable: &CentralRows) {
    let total_acked: u64 = storm.acked.values().sum();
    assert!(
        total_acked >= 500,
        "the storm applied too little to mean anything: {total_acked}"
    );
    assert!(storm.failed_after_cut > 0, "the cut must hit pushes in flight");
    for (branch, &acked) in &storm.acked {
        let row = durable.get(*branch).copied().unwrap_or_default();
        assert!(
            row.applied_through >= acked,
            "{branch}: central answered 200 through seq {acked}, but after the power cut its store is at {}",
            row.applied_through
        );
        assert_eq!(
            row.applied_through % PUSH_BATCH,
            0,
            "{branch}: part of a push survived: {row:?}"
        );
        let n = row.applied_through;
        assert_eq!(
            (row.events_applied, row.sales_count, row.sales_rows),
            (n, n, n),
            "{branch}: {row:?}"
        );
    }
}

/// What the negative controls look for: answered pushes that are not in the store.
fn answered_but_lost(storm: &Storm, durable: &Result<CentralRows, String>) -> Vec<String> {
    match durable {
        Err(e) => vec![format!("the store cannot be read: {e}")],
        Ok(rows) => storm
            .acked
            .iter()
            .filter_map(|(b, &a)| {
                let have = rows.get(*b).map_or(0, |r| r.applied_through);
                (have < a).then(|| format!("{b}: answered through {a}, on disk through {have}"))
            })
            .collect(),
    }
}

/// Central's rows per branch, through its own API (admin).
async fn central_rows(central_url: &str) -> CentralRows {
    let branches = get_json(&client(), &format!("{central_url}/branches"), ADMIN_TOKEN).await;
    branches["branches"]
        .as_array()
        .expect("branches")
        .iter()
        .map(|b| {
            let n = |k: &str| b[k].as_u64().unwrap_or_else(|| panic!("{k} in {b}"));
            let row = CentralBranchRow {
                applied_through: n("applied_through"),
                events_applied: n("events_applied"),
                sales_count: n("sales_count"),
                sales_rows: n("sales_count"),
            };
            (b["branch_id"].as_str().expect("branch_id").to_string(), row)
        })
        .collect()
}

/// Central back on its store after the reboot: every branch, which cannot know which of its
/// unanswered pushes landed, sends everything again from seq 1, and each sale counts once.
async fn assert_a_re_push_counts_each_sale_once(central_url: &str, storm: &Storm) {
    let c = client();
    for (branch, &sent) in &storm.sent {
        let mut from = 1;
        while from <= sent {
            let r = c
                .post(format!("{central_url}/sync/push"))
                .bearer_auth(branch_token(branch))
                .json(&sale_batch(branch, from))
                .send()
                .await
                .expect("re-push");
            assert_eq!(r.status().as_u16(), 200, "{branch}: re-push from {from}");
            from += PUSH_BATCH;
        }
    }
    let rows = central_rows(central_url).await;
    let inventory = get_json(&c, &format!("{central_url}/inventory"), ADMIN_TOKEN).await;
    for (branch, &sent) in &storm.sent {
        let row = rows.get(*branch).copied().unwrap_or_default();
        assert_eq!(
            (row.applied_through, row.events_applied, row.sales_count),
            (sent, sent, sent),
            "{branch}: {row:?}"
        );
        let stock: i64 = inventory["products"]
            .as_array()
            .expect("products")
            .iter()
            .filter_map(|p| p["by_branch"][*branch].as_i64())
            .sum();
        assert_eq!(stock, -(sent as i64), "{branch}: every unit sold is counted once");
    }
}

fn read_sqlite_rows(db: &Path) -> Result<CentralRows, String> {
    let conn = rusqlite::Connection::open(db).map_err(|e| e.to_string())?;
    let mut st = conn
        .prepare(
            "SELECT b.branch_id, b.applied_through, b.events_applied, b.sales_count, \
             (SELECT count(*) FROM sales s WHERE s.branch_key = b.branch_key) FROM branches b",
        )
        .map_err(|e| e.to_string())?;
    let rows = st
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                CentralBranchRow {
                    applied_through: r.get::<_, i64>(1)? as u64,
                    events_applied: r.get::<_, i64>(2)? as u64,
                    sales_count: r.get::<_, i64>(3)? as u64,
                    sales_rows: r.get::<_, i64>(4)? as u64,
                },
            ))
        })
        .map_err(|e| e.to_string())?;
    rows.collect::<Result<_, _>>().map_err(|e| e.to_string())
}

/// One power cut under central on its SQLite store.
struct SqliteCut {
    // Field order is drop order: central is killed before the image is unmounted.
    central: Proc,
    fs: PowerCutFs,
    _dir: TempDir,
    storm: Storm,
    /// What the store file holds after the reboot, read directly, or why it cannot be read.
    durable: Result<CentralRows, String>,
}

/// Central on its SQLite store on the image: a push storm, a power cut under it, a
/// "reboot", and the store file read back.
async fn push_through_a_power_cut(tag: &str, failpoints: Option<&str>) -> Option<SqliteCut> {
    let dir = TempDir::new(tag);
    let Some(mut fs) = PowerCutFs::new(dir.path()) else {
        eprintln!("SKIPPED {tag}: needs root, mkfs.ext4 and a loop device for the simulated power cut");
        return None;
    };
    let envs = failpoints
        .map(|f| vec![("FAILPOINTS".to_string(), f.to_string())])
        .unwrap_or_default();
    let db = fs.mnt.join("central.db");
    let mut central = Proc::spawn_path(
        "central",
        failpoint_bin("colmena-central"),
        central_db_args(db.to_str().unwrap(), &PUSHERS, &[]),
        envs,
        dir.path(),
    );
    let url = central.url.clone();
    let storm = push_storm(&url, || {
        fs.cut_power();
        std::thread::sleep(Duration::from_millis(300));
        central.kill9();
    })
    .await;
    // "Reboot": what is on the image now is all that survived.
    fs.umount();
    assert!(fs.mount(), "remount the image after the cut");
    let durable = read_sqlite_rows(&db);
    Some(SqliteCut {
        central,
        fs,
        _dir: dir,
        storm,
        durable,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_push_central_answered_200_survives_a_power_cut_and_a_re_push_counts_once() {
    let _serial = SERIAL.lock().await;
    let Some(mut o) = push_through_a_power_cut("fp-central-power-cut", None).await else {
        return;
    };
    let durable = o.durable.as_ref().expect("central's store is readable after the cut");
    assert_nothing_answered_was_lost(&o.storm, durable);
    o.central.set_env("FAILPOINTS", None);
    o.central.restart();
    assert_a_re_push_counts_each_sale_once(&o.central.url, &o.storm).await;
    stop_cleanly(&mut o.central);
    o.fs.umount();
    report_cut("SQLite", &o.storm);
}

/// The negative control of the test above: a central that answers a push before its commit
/// is fsync'd must be caught losing answered events (or its whole store).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_power_cut_test_catches_a_central_that_answers_before_its_fsync() {
    let _serial = SERIAL.lock().await;
    assert_a_cut_loses_answered_events("although central never fsyncs", || async {
        let o = push_through_a_power_cut("fp-central-power-cut-nofsync", Some("sqlite.skip_fsync=return")).await?;
        Some(answered_but_lost(&o.storm, &o.durable))
    })
    .await;
}

/// Central answered its last request 0 on SIGTERM.
fn stop_cleanly(central: &mut Proc) {
    assert!(central.terminate(Duration::from_secs(10)).is_some_and(|s| s.success()));
}

fn report_cut(store: &str, storm: &Storm) {
    eprintln!(
        "central power cut ({store}): {} events answered 200, all on disk; {} pushes refused after the cut",
        storm.acked.values().sum::<u64>(),
        storm.failed_after_cut
    );
}

/// The negative controls: up to three cuts (`cut` gives what each lost, or `None` when the
/// machine cannot cut power, which skips); one that loses an answered event is the proof
/// that the positive test can fail, three that lose nothing are a failure.
async fn assert_a_cut_loses_answered_events<F, Fut>(why_it_should: &str, mut cut: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<Vec<String>>>,
{
    for attempt in 1..=3 {
        let Some(lost) = cut().await else {
            return;
        };
        eprintln!("attempt {attempt}: {lost:?}");
        if !lost.is_empty() {
            return;
        }
    }
    panic!("three power cuts lost nothing {why_it_should}: the power-cut test cannot fail");
}

/// One power cut under PostgreSQL, with central on it.
struct PgCut {
    // Field order is drop order: central, then the server, then the image.
    central: Proc,
    pg: support::postgres::PgCluster,
    fs: PowerCutFs,
    _dir: TempDir,
    storm: Storm,
    /// What central reads from the recovered database.
    durable: CentralRows,
}

/// A private PostgreSQL cluster with the server's durable defaults, its data dir on the
/// image; central on it; a push storm and a power cut under the database; then the cluster
/// is started again on the remounted image (crash recovery) and central read back.
/// `url_options` go into the connection URL (`options=…`), e.g. to turn
/// `synchronous_commit` off for the negative control.
async fn push_through_a_pg_power_cut(tag: &str, url_options: Option<&str>) -> Option<PgCut> {
    if !support::postgres::available() {
        eprintln!("SKIPPED {tag}: needs the PostgreSQL 15 server binaries");
        return None;
    }
    let dir = TempDir::new(tag);
    let Some(mut fs) = PowerCutFs::new(dir.path()) else {
        eprintln!("SKIPPED {tag}: needs root, mkfs.ext4 and a loop device for the simulated power cut");
        return None;
    };
    let pg = support::postgres::PgCluster::start_durable_in(fs.mnt.join("pg"));
    let mut url = pg.create_database("powercut");
    if let Some(o) = url_options {
        let sep = if url.contains('?') { '&' } else { '?' };
        url = format!("{url}{sep}options={o}");
    }
    // initdb ran with --no-sync: put the cluster's own files on the image before the storm.
    assert!(Command::new("sync")
        .arg("-f")
        .arg(&fs.mnt)
        .status()
        .is_ok_and(|s| s.success()));
    let mut central = spawn_central_db(dir.path(), &url, &PUSHERS, &[]);
    let central_url = central.url.clone();
    let mnt = fs.mnt.clone();
    let storm = push_storm(&central_url, || {
        fs.cut_power();
        std::thread::sleep(Duration::from_millis(300));
        central.kill9();
        // Every process with a file open on the image (the postmaster and its backends),
        // as the power cut would have stopped them.
        let _ = Command::new("fuser")
            .args(["-k", "-9", "-m"])
            .arg(&mnt)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        pg.kill9();
    })
    .await;
    fs.umount();
    assert!(fs.mount(), "remount the image after the cut");
    pg.restart();
    central.restart();
    let durable = central_rows(&central.url).await;
    Some(PgCut {
        central,
        pg,
        fs,
        _dir: dir,
        storm,
        durable,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_push_central_answered_200_on_postgres_survives_a_power_cut_under_the_database() {
    let _serial = SERIAL.lock().await;
    let Some(mut o) = push_through_a_pg_power_cut("fp-pg-power-cut", None).await else {
        return;
    };
    assert_nothing_answered_was_lost(&o.storm, &o.durable);
    assert_a_re_push_counts_each_sale_once(&o.central.url, &o.storm).await;
    stop_cleanly(&mut o.central);
    o.pg.stop();
    o.fs.umount();
    report_cut("PostgreSQL", &o.storm);
}

/// The negative control of the test above: with `synchronous_commit=off` on central's
/// connections PostgreSQL answers a commit before its WAL is flushed, and the same cut must
/// lose answered pushes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_power_cut_test_catches_commits_answered_before_the_wal_flush() {
    let _serial = SERIAL.lock().await;
    assert_a_cut_loses_answered_events("with synchronous_commit=off (PostgreSQL)", || async {
        let o = push_through_a_pg_power_cut("fp-pg-power-cut-async", Some("-c%20synchronous_commit%3Doff")).await?;
        Some(answered_but_lost(&o.storm, &Ok(o.durable.clone())))
    })
    .await;
}
