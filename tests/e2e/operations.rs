//! Operations: online backups, download, verify, retention, offline restore,
//! CSV export, and graceful shutdown under load — real processes, real files.

use crate::support::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

fn catalog(dir: &std::path::Path) -> String {
    let p = dir.join("catalog.json");
    std::fs::write(&p, r#"[{"product_id":"P1","name":"Uno","price_cents":150,"stock":100000},{"product_id":"P2","name":"Dos, con coma","price_cents":90,"stock":100000}]"#).unwrap();
    p.to_string_lossy().into_owned()
}

/// `colmena-sucursal restore FILE --data-dir DIR`, as an operator runs it.
fn restore_branch(file: &std::path::Path, data_dir: &std::path::Path) -> std::process::Output {
    Command::new(bin("colmena-sucursal"))
        .args([
            "restore",
            file.to_str().unwrap(),
            "--data-dir",
            data_dir.to_str().unwrap(),
        ])
        .output()
        .unwrap()
}

async fn post_json(c: &reqwest::Client, url: &str) -> (u16, Value) {
    let r = c.post(url).bearer_auth(branch_token_for(url)).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_branch_backup_downloads_byte_for_byte_verifies_and_a_corrupted_one_fails_verify_and_restore() {
    let dir = TempDir::new("ops-backup");
    let cat = catalog(dir.path());
    let mut branch = spawn_branch(
        dir.path(),
        "CUS",
        &dead_url(),
        &["--catalog", &cat, "--backups-keep", "3"],
    );
    let c = client();
    for _ in 0..25 {
        sell(&c, &branch.url, &json!({"product_id": "P1", "quantity": 2}))
            .await
            .expect("sale");
    }
    let (st, info) = post_json(&c, &format!("{}/admin/backups", branch.url)).await;
    assert_eq!(st, 201, "{info}");
    let id = info["id"].as_str().unwrap().to_string();
    let file_name = info["file_name"].as_str().unwrap();
    assert!(
        file_name.starts_with("backup-sucursal-") && file_name.ends_with(".db"),
        "{file_name}"
    );
    let on_disk = std::fs::read(dir.path().join("branch-CUS/backups").join(file_name)).unwrap();
    assert_eq!(on_disk.len() as u64, info["size_bytes"].as_u64().unwrap());
    let dl = get_ok(
        &c,
        &format!("{}/admin/backups/{id}/download", branch.url),
        BRANCH_ADMIN_TOKEN,
    )
    .await;
    assert!(dl.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains(file_name));
    assert_eq!(dl.bytes().await.unwrap().to_vec(), on_disk, "download equals the file");
    let (st, v) = post_json(&c, &format!("{}/admin/backups/{id}/verify", branch.url)).await;
    assert_eq!((st, v["ok"].clone()), (200, json!(true)), "{v}");

    // Retention keeps exactly 3.
    for _ in 0..4 {
        assert_eq!(post_json(&c, &format!("{}/admin/backups", branch.url)).await.0, 201);
    }
    let list = get_json(&c, &format!("{}/admin/backups", branch.url), BRANCH_ADMIN_TOKEN).await;
    assert_eq!(list["backups"].as_array().unwrap().len(), 3, "{list}");
    let newest = list["backups"].as_array().unwrap().last().unwrap().clone();
    let path = dir
        .path()
        .join("branch-CUS/backups")
        .join(newest["file_name"].as_str().unwrap());
    let nid = newest["id"].as_str().unwrap();
    assert_eq!(
        post_json(&c, &format!("{}/admin/backups/no-such/verify", branch.url))
            .await
            .0,
        404
    );

    // Restore from the good newest backup into a fresh data dir: works.
    let restored_dir = dir.path().join("restored");
    let out = restore_branch(&path, &restored_dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Corrupt it: verify reports it, restore refuses it.
    let mut bytes = std::fs::read(&path).unwrap();
    let i = bytes.len() / 2;
    bytes[i] ^= 0x5a;
    std::fs::write(&path, &bytes).unwrap();
    let (st, v) = post_json(&c, &format!("{}/admin/backups/{nid}/verify", branch.url)).await;
    assert_eq!((st, v["ok"].clone()), (200, json!(false)), "{v}");
    let out = restore_branch(&path, &dir.path().join("other"));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("checksum"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Not a branch store at all (a central-like SQLite file) is refused too.
    let foreign = dir.path().join("foreign.db");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE x(y);")
        .unwrap();
    let sha = {
        let o = Command::new("sha256sum").arg(&foreign).output().unwrap();
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    let out = Command::new(bin("colmena-sucursal"))
        .args([
            "restore",
            foreign.to_str().unwrap(),
            "--data-dir",
            dir.path().join("other2").to_str().unwrap(),
            "--sha256",
            &sha,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success(), "a non-branch file must be refused");
    branch.kill9();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restoring_a_branch_from_an_old_backup_never_duplicates_or_loses_a_sale_at_central() {
    let dir = TempDir::new("ops-restore");
    let central = spawn_central(dir.path(), &["CUS"], &[]);
    let c = client();
    put_product(&c, &central.url, "P1", "Uno", 150).await;
    allocate(&c, &central.url, "CUS", "P1", 100_000).await;
    let mut branch = spawn_branch(dir.path(), "CUS", &central.url, &["--pull-interval", "300ms"]);
    eventually(Duration::from_secs(20), "allocation arrives", || async {
        (get_json(&c, &format!("{}/inventory/P1", branch.url), POS_TOKEN).await["stock"] == 100_000).then_some(())
    })
    .await;
    let mut acked = BTreeSet::new();
    acked.extend(sell_ids(&c, &branch.url, "P1", 10).await);
    let (st, info) = post_json(&c, &format!("{}/admin/backups", branch.url)).await;
    assert_eq!(st, 201);
    acked.extend(sell_ids(&c, &branch.url, "P1", 15).await);
    let st = wait_drained(&c, &branch.url, Duration::from_secs(20)).await;
    let central_at = st["outbox"]["last_seq"].as_u64().unwrap();
    assert!(branch.terminate(Duration::from_secs(10)).is_some_and(|s| s.success()));
    let file = dir
        .path()
        .join("branch-CUS/backups")
        .join(info["file_name"].as_str().unwrap());
    let out = restore_branch(&file, &dir.path().join("branch-CUS"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    branch.restart();
    let mut after = BTreeSet::new();
    for _ in 0..10 {
        let s = sell(&c, &branch.url, &json!({"product_id": "P1", "quantity": 1}))
            .await
            .unwrap();
        assert!(
            s["seq"].as_u64().unwrap() > central_at,
            "seq {} reused after restore (central at {central_at})",
            s["seq"]
        );
        after.insert(s["sale_id"].as_str().unwrap().to_string());
    }
    wait_drained(&c, &branch.url, Duration::from_secs(20)).await;
    let ids: Vec<String> = central_sales(&c, &central.url, "CUS")
        .await
        .iter()
        .map(|s| s["sale_id"].as_str().unwrap().to_string())
        .collect();
    let set: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(ids.len(), set.len(), "no sale twice at central");
    acked.extend(after);
    assert_eq!(
        set, acked,
        "every sale before and after the restore is at central, once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sales_export_is_csv_of_the_branchs_own_sales_within_the_window() {
    let dir = TempDir::new("ops-export");
    let cat = catalog(dir.path());
    let branch = spawn_branch(dir.path(), "CUS", &dead_url(), &["--catalog", &cat]);
    let c = client();
    let s1 = sell(&c, &branch.url, &json!({"items": [{"product_id": "P1", "quantity": 2}, {"product_id": "P2", "quantity": 1}], "cashier_id": "ana, \"la\" cajera"})).await.unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    let cut = colmena_shared::clock::now_rfc3339();
    tokio::time::sleep(Duration::from_millis(30)).await;
    sell(&c, &branch.url, &json!({"product_id": "P1", "quantity": 1}))
        .await
        .unwrap();
    let all = get_ok(&c, &format!("{}/sales/export", branch.url), BRANCH_ADMIN_TOKEN).await;
    assert!(all.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let text = all.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "sale_id,branch_id,seq,sold_at,cashier_id,product_id,quantity,unit_price_cents,line_total_cents"
    );
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[1].contains(r#""ana, ""la"" cajera""#), "quoted: {}", lines[1]);
    assert!(lines[1].starts_with(s1["sale_id"].as_str().unwrap()));
    let early = c
        .get(format!("{}/sales/export?to={}", branch.url, cut))
        .bearer_auth(BRANCH_ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(early.lines().count(), 3, "{early}");
    let bad = c
        .get(format!("{}/sales/export?from=yesterday", branch.url))
        .bearer_auth(BRANCH_ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_sales_storm_exits_0_within_10s_and_loses_no_acknowledged_sale() {
    let dir = TempDir::new("ops-sigterm");
    let cat = catalog(dir.path());
    let mut branch = spawn_branch(dir.path(), "CUS", &dead_url(), &["--catalog", &cat]);
    let url = branch.url.clone();
    let mut tasks = Vec::new();
    let c = client();
    for _ in 0..16 {
        let (c, url) = (c.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut ok = Vec::new();
            let mut other = Vec::new();
            // Until the server goes away: a refused connection or a cut reply ends the client.
            while let Ok(r) = c
                .post(format!("{url}/sell"))
                .bearer_auth(POS_TOKEN)
                .json(&json!({"product_id": "P1", "quantity": 1}))
                .send()
                .await
            {
                let s = r.status().as_u16();
                if s == 201 {
                    match r.json::<Value>().await {
                        Ok(v) => ok.push(v["sale_id"].as_str().unwrap().to_string()),
                        Err(_) => break,
                    }
                } else {
                    other.push(s);
                }
            }
            (ok, other)
        }));
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let t = Instant::now();
    let status = branch.terminate(Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "exit status {status:?}");
    assert!(t.elapsed() < Duration::from_secs(10));
    let mut acked = BTreeSet::new();
    for task in tasks {
        let (ok, other) = task.await.unwrap();
        assert!(
            other.iter().all(|s| *s == 503),
            "in-flight requests finish or get a clean 503: {other:?}"
        );
        acked.extend(ok);
    }
    assert!(acked.len() > 100);
    branch.restart();
    // The restart proves the store opens; the events are read from it directly (`/outbox`
    // pages at most 10,000).
    let _ = get_json(&c, &format!("{}/status", branch.url), POS_TOKEN).await;
    let durable: BTreeSet<String> = stored_events(dir.path(), "CUS")
        .iter()
        .filter_map(|e| e["sale_id"].as_str().map(String::from))
        .collect();
    let lost: Vec<&String> = acked.difference(&durable).collect();
    assert!(lost.is_empty(), "{} acknowledged sales lost", lost.len());
}

async fn admin_post(c: &reqwest::Client, url: &str) -> (u16, Value) {
    let r = c.post(url).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn sale_ids(sales: &[Value]) -> Vec<String> {
    sales
        .iter()
        .map(|s| s["sale_id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_central_restored_from_an_old_backup_gets_the_missing_sales_again_exactly_once() {
    let dir = TempDir::new("ops-central-restore");
    let mut central = spawn_central(dir.path(), &["CUS"], &["--backups-keep", "2"]);
    let c = client();
    put_product(&c, &central.url, "P1", "Uno", 150).await;
    allocate(&c, &central.url, "CUS", "P1", 1000).await;
    let branch = spawn_branch(dir.path(), "CUS", &central.url, &["--pull-interval", "300ms"]);
    wait_pulled(&c, &central.url, &branch.url, "CUS", Duration::from_secs(20)).await;
    let mut acked = BTreeSet::new();
    let sell_n = |n: usize| {
        let (c, url) = (c.clone(), branch.url.clone());
        async move {
            let mut ids = Vec::new();
            for _ in 0..n {
                let s = sell(&c, &url, &json!({"product_id": "P1", "quantity": 1}))
                    .await
                    .expect("sale");
                ids.push(s["sale_id"].as_str().unwrap().to_string());
            }
            ids
        }
    };
    acked.extend(sell_n(10).await);
    wait_drained(&c, &branch.url, Duration::from_secs(20)).await;

    // Online backup, while central serves; only the admin may take one.
    let r = c
        .post(format!("{}/admin/backups", central.url))
        .bearer_auth(branch_token("CUS"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a branch token cannot take central's backups");
    let (st, info) = admin_post(&c, &format!("{}/admin/backups", central.url)).await;
    assert_eq!(st, 201, "{info}");
    let id = info["id"].as_str().unwrap().to_string();
    let file_name = info["file_name"].as_str().unwrap().to_string();
    assert!(
        file_name.starts_with("backup-central-") && file_name.ends_with(".db"),
        "{file_name}"
    );
    let file = dir.path().join("backups").join(&file_name);
    let on_disk = std::fs::read(&file).unwrap();
    let dl = get_ok(&c, &format!("{}/admin/backups/{id}/download", central.url), ADMIN_TOKEN).await;
    assert_eq!(dl.bytes().await.unwrap().to_vec(), on_disk, "download equals the file");
    let (st, v) = admin_post(&c, &format!("{}/admin/backups/{id}/verify", central.url)).await;
    assert_eq!((st, v["ok"].clone()), (200, json!(true)), "{v}");
    let list = get_json(&c, &format!("{}/admin/backups", central.url), ADMIN_TOKEN).await;
    assert_eq!(list["backups"].as_array().unwrap().len(), 1, "{list}");

    // Central moves on past the backup.
    acked.extend(sell_n(15).await);
    wait_drained(&c, &branch.url, Duration::from_secs(20)).await;
    assert_eq!(central_sales(&c, &central.url, "CUS").await.len(), 25);

    // Offline restore: a corrupted copy is refused, the good one replaces the database.
    assert!(central.terminate(Duration::from_secs(10)).is_some_and(|s| s.success()));
    let bad = dir.path().join("corrupted.db");
    let mut bytes = on_disk.clone();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5a;
    std::fs::write(&bad, &bytes).unwrap();
    std::fs::copy(format!("{}.json", file.display()), format!("{}.json", bad.display())).unwrap();
    let db = dir.path().join("central.db");
    let restore = |f: &std::path::Path| {
        Command::new(bin("colmena-central"))
            .args(["restore", f.to_str().unwrap(), "--database", db.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let out = restore(&bad);
    assert!(!out.status.success(), "a corrupted backup must be refused");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("checksum"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = restore(&file);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    central.restart();
    assert_eq!(
        central_sales(&c, &central.url, "CUS").await.len(),
        10,
        "the restored central has what the backup had"
    );

    // The branch's next push does not continue central's sequence: central answers its
    // applied_through and the branch re-sends everything after it, once.
    acked.extend(sell_n(5).await);
    wait_drained(&c, &branch.url, Duration::from_secs(30)).await;
    let ids = sale_ids(&central_sales(&c, &central.url, "CUS").await);
    let set: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(ids.len(), set.len(), "no sale twice at central");
    assert_eq!(set, acked, "every acknowledged sale is at central after the restore");
    check_invariant(&c, &central.url, &branch.url, "CUS", &acked, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_to_central_under_push_load_exits_0_and_every_acknowledged_sale_reaches_it_once() {
    let dir = TempDir::new("ops-central-sigterm");
    let mut central = spawn_central(dir.path(), &["CUS"], &[]);
    let c = client();
    put_product(&c, &central.url, "P1", "Uno", 150).await;
    allocate(&c, &central.url, "CUS", "P1", 1_000_000).await;
    let branch = spawn_branch(dir.path(), "CUS", &central.url, &["--pull-interval", "300ms"]);
    wait_pulled(&c, &central.url, &branch.url, "CUS", Duration::from_secs(20)).await;
    // A sales storm at the branch keeps its relay pushing while central is told to stop.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (c, url, stop) = (c.clone(), branch.url.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut ok = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let s = sell(&c, &url, &json!({"product_id": "P1", "quantity": 1}))
                    .await
                    .expect("the branch sells whatever central does");
                ok.push(s["sale_id"].as_str().unwrap().to_string());
            }
            ok
        }));
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let t = Instant::now();
    let status = central.terminate(Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "central's exit status {status:?}");
    assert!(t.elapsed() < Duration::from_secs(10));
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut acked = BTreeSet::new();
    for task in tasks {
        acked.extend(task.await.unwrap());
    }
    assert!(acked.len() > 100, "only {} sales", acked.len());
    central.restart();
    check_invariant(&c, &central.url, &branch.url, "CUS", &acked, true).await;
}
