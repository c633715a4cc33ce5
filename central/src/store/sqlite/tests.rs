//! The SQLite store's own tests: encoding, query plans, group commit, reopening.
use super::*;
use crate::store::common::{decode_lines, encode_lines};
use crate::store::UserChange;
use colmena_shared::wire::{EventKind, EventLine};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// A fresh store path in a temp dir that is removed when the guard drops (bind it for the
/// whole test: the store's files must outlive every connection to them).
struct TmpStore {
    dir: PathBuf,
    path: PathBuf,
}

impl Drop for TmpStore {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn tmp(tag: &str) -> TmpStore {
    let dir = std::env::temp_dir().join(format!("colmena-central-unit-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("c.db");
    TmpStore { dir, path }
}

fn sale(seq: u64, product: &str, q: i64) -> Event {
    Event {
        seq,
        kind: EventKind::Sale,
        occurred_at: "2026-11-23T16:00:00Z".into(),
        sale_id: Some(format!("CUS-{seq:010}")),
        lines: Some(vec![EventLine {
            product_id: ProductId::parse(product).unwrap(),
            quantity: q,
            unit_price_cents: 5,
        }]),
        total_cents: Some(5 * q),
        ..Event::default()
    }
}

/// A push that applied `n` new events, none duplicate, up to `through`.
fn applied(through: u64, n: u64) -> PushOutcome {
    PushOutcome::Applied {
        applied_through: through,
        applied: n,
        duplicates: 0,
        till: crate::store::TillApplied::default(),
        transfers: crate::store::TransfersApplied::default(),
    }
}

fn cus() -> BranchId {
    BranchId::parse("CUS").unwrap()
}

#[test]
fn lines_round_trip_through_their_compact_encoding() {
    let mut buf = Vec::new();
    let lines = sale(1, "P-1.x", 3).lines.unwrap();
    encode_lines(&mut buf, &lines);
    assert_eq!(std::str::from_utf8(&buf).unwrap(), r#"[["P-1.x",3,5]]"#);
    let back = decode_lines(std::str::from_utf8(&buf).unwrap()).unwrap();
    assert_eq!(back[0].line_total_cents, 15);
}

#[tokio::test]
async fn queries_use_their_indexes() {
    let tmp = tmp("plans");
    let path = &tmp.path;
    let store = SqliteStore::open(path).unwrap();
    store.apply_push(cus(), vec![sale(1, "P1", 1)]).await.unwrap();
    let conn = Connection::open(path).unwrap();
    let plan = |sql: &str| -> String {
        let mut s = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = s.query_map([], |r| r.get::<_, String>(3)).unwrap();
        rows.map(|r| r.unwrap()).collect::<Vec<_>>().join(" | ")
    };
    let p = plan(
        "SELECT * FROM sales WHERE branch_key = 1 AND (sold_ms, seq) > (5, 6) AND sold_ms < 9 \
         ORDER BY sold_ms, seq LIMIT 3",
    );
    assert!(p.contains("sales_by_branch_time") && !p.contains("TEMP B-TREE"), "{p}");
    let p = plan(
        "SELECT s.product_id, b.branch_id, s.stock FROM branches b CROSS JOIN stock s \
         ON s.branch_key = b.branch_key AND s.product_id = 'P1'",
    );
    assert!(p.contains("PRIMARY KEY (branch_key=? AND product_id=?)"), "{p}");
    let p = plan(
        "SELECT cursor FROM changes WHERE branch_key IS NULL AND cursor > 3 UNION ALL \
         SELECT cursor FROM changes WHERE branch_key = 2 AND cursor > 3 ORDER BY cursor LIMIT 5",
    );
    assert!(p.contains("changes_by_branch") && !p.contains("TEMP B-TREE"), "{p}");
    let p = plan("SELECT cursor FROM changes WHERE kind = 2 AND cursor > 3 ORDER BY cursor LIMIT 5");
    assert!(p.contains("changes_users") && !p.contains("TEMP B-TREE"), "{p}");
    let p = plan("SELECT count(*) FROM stock WHERE stock < 0");
    assert!(p.contains("stock_negative"), "{p}");
    // A sale's returned_cents: one lookup of returns_by_sale per sale read.
    let p = plan(
        "SELECT seq, (SELECT coalesce(sum(r.total_cents), 0) FROM returns r INDEXED BY returns_by_sale \
         WHERE r.branch_key = sales.branch_key AND r.sale_id = sales.sale_id) FROM sales \
         WHERE branch_key = 1 AND (sold_ms, seq) > (5, 6) ORDER BY sold_ms, seq LIMIT 3",
    );
    assert!(
        p.contains("returns_by_sale") && p.contains("sales_by_branch_time"),
        "{p}"
    );
    assert!(!p.contains("TEMP B-TREE"), "{p}");
    let p = plan(
        "SELECT * FROM returns WHERE branch_key = 1 AND (returned_ms, seq) > (5, 6) AND returned_ms < 9 \
         ORDER BY returned_ms, seq LIMIT 3",
    );
    assert!(
        p.contains("returns_by_branch_time") && !p.contains("TEMP B-TREE"),
        "{p}"
    );
    let p = plan("SELECT * FROM shifts WHERE branch_key = 1 AND opened_ms >= 5 AND opened_ms < 9");
    assert!(p.contains("shifts_by_branch_time"), "{p}");
    store.close().await;
}

#[tokio::test]
async fn a_push_of_plain_sales_writes_only_its_sales_its_stock_its_branch_row_and_its_rollups() {
    let tmp = tmp("plain");
    let store = SqliteStore::open(&tmp.path).unwrap();
    store.apply_push(cus(), vec![sale(1, "P1", 1)]).await.unwrap();
    let changes = || store.write(|w| Ok(w.conn.total_changes()));
    let before = changes().await.unwrap();
    let batch: Vec<Event> = (2..=101)
        .map(|s| sale(s, if s % 2 == 0 { "P1" } else { "P2" }, 1))
        .collect();
    assert_eq!(store.apply_push(cus(), batch).await.unwrap(), applied(101, 100));
    // 100 sales, 2 stock rows, 1 branch row, and the report rollups of their one quarter
    // hour: 3 total rows (quarter, hour, day), 2 chain-shard rows (quarter, hour), 1
    // detail blob. Nothing for the till.
    assert_eq!(changes().await.unwrap() - before, 100 + 2 + 1 + 3 + 2 + 1);
    store.close().await;
}

#[tokio::test]
async fn the_till_migration_run_again_changes_nothing_and_keeps_the_data() {
    let tmp = tmp("remigrate");
    let store = SqliteStore::open(&tmp.path).unwrap();
    let mut paid = sale(1, "P1", 2);
    paid.shift_id = Some("SH1".into());
    paid.payments = Some(vec![colmena_shared::till::Payment {
        method: "cash".into(),
        amount_cents: 20,
    }]);
    store.apply_push(cus(), vec![paid]).await.unwrap();
    store.close().await;
    // As if the version bump had been lost after the migration ran.
    Connection::open(&tmp.path)
        .unwrap()
        .pragma_update(None, "user_version", 3)
        .unwrap();
    let store = SqliteStore::open(&tmp.path).unwrap();
    let page = store.sales(SalesFilter::default(), None, 10).await.unwrap();
    assert_eq!(page.sales[0].shift_id.as_deref(), Some("SH1"));
    assert_eq!(page.sales[0].payments[0].amount_cents, 20);
    let version: i64 = Connection::open(&tmp.path)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, schema::MIGRATIONS.len() as i64);
    store.close().await;
}

/// Returns once a job holds the writer thread, as a group of its own, until `release`
/// is sent: the jobs queued meanwhile make up the next group.
async fn hold_writer(store: &Arc<SqliteStore>) -> std::sync::mpsc::Sender<()> {
    let (release, held) = std::sync::mpsc::channel::<()>();
    let (running, is_running) = oneshot::channel::<()>();
    let s = store.clone();
    tokio::spawn(async move {
        s.write(move |_| {
            let _ = running.send(());
            let _ = held.recv();
            Ok(())
        })
        .await
    });
    is_running.await.unwrap();
    release
}

async fn wait_queued(store: &SqliteStore, queued: usize) {
    while WRITE_QUEUE - store.writes.capacity() < queued {
        tokio::task::yield_now().await;
    }
}

/// Counts the writer connection's commits from now on (a commit hook).
async fn count_commits(store: &SqliteStore) -> Arc<AtomicUsize> {
    let commits = Arc::new(AtomicUsize::new(0));
    let c = commits.clone();
    store
        .write(move |w| {
            let _ = w.conn.commit_hook(Some(move || {
                c.fetch_add(1, Relaxed);
                false
            }));
            Ok(())
        })
        .await
        .unwrap();
    commits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_queued_behind_a_busy_writer_share_one_commit_and_a_gap_rolls_back_only_itself() {
    let tmp = tmp("group");
    let store = Arc::new(SqliteStore::open(&tmp.path).unwrap());
    let commits = count_commits(&store).await;
    let release = hold_writer(&store).await;
    let mut pushes = Vec::new();
    for i in 0..40 {
        let s = store.clone();
        let branch = BranchId::parse(&format!("B{i:02}")).unwrap();
        // B07 starts at seq 5: a gap, answered as such while the rest of its group commits.
        let first = if i == 7 { 5 } else { 1 };
        pushes.push(tokio::spawn(async move {
            s.apply_push(branch, vec![sale(first, "P1", 1), sale(first + 1, "P1", 1)])
                .await
        }));
    }
    wait_queued(&store, 40).await;
    let before = commits.load(Relaxed);
    release.send(()).unwrap();
    for (i, p) in pushes.into_iter().enumerate() {
        let out = p.await.unwrap().unwrap();
        if i == 7 {
            assert_eq!(out, PushOutcome::Gap { applied_through: 0 });
        } else {
            assert_eq!(out, applied(2, 2));
        }
    }
    // The 40 pushes share one commit (the hold, alone and writing nothing, commits none).
    assert_eq!(commits.load(Relaxed) - before, 1);
    let branches = store.branches().await.unwrap();
    assert_eq!(branches.len(), 39, "the gap's new branch row was rolled back with it");
    assert!(branches.iter().all(|b| b.applied_through == 2));
    assert_eq!(store.inventory().await.unwrap()[0].by_branch.values().sum::<i64>(), -78);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_sqlite_abandons_a_group_its_jobs_fail_and_the_jobs_after_it_run_in_the_next() {
    let tmp = tmp("abandon");
    let store = Arc::new(SqliteStore::open(&tmp.path).unwrap());
    let release = hold_writer(&store).await;
    let s = store.clone();
    let first = tokio::spawn(async move { s.apply_push(cus(), vec![sale(1, "P1", 1)]).await });
    wait_queued(&store, 1).await;
    let s = store.clone();
    // What SQLite does on SQLITE_FULL or an I/O error: the whole transaction is gone.
    let abandon = tokio::spawn(async move { s.write(|w| Ok(w.conn.execute_batch("ROLLBACK")?)).await });
    wait_queued(&store, 2).await;
    let s = store.clone();
    let after = tokio::spawn(async move { s.apply_push(cus(), vec![sale(1, "P1", 3)]).await });
    wait_queued(&store, 3).await;
    release.send(()).unwrap();
    assert!(
        matches!(first.await.unwrap(), Err(StoreError::Database(_))),
        "not committed, not acknowledged"
    );
    assert!(abandon.await.unwrap().is_err());
    assert_eq!(after.await.unwrap().unwrap(), applied(1, 1));
    assert_eq!(
        store.inventory().await.unwrap()[0].by_branch["CUS"],
        -3,
        "only the later push is stored"
    );
    store.close().await;
}

#[tokio::test]
async fn a_store_reopens_at_its_schema_version_and_keeps_its_data() {
    let tmp = tmp("reopen");
    let path = &tmp.path;
    let store = SqliteStore::open(path).unwrap();
    let out = store
        .apply_push(cus(), vec![sale(1, "P1", 2), sale(2, "P1", 1)])
        .await
        .unwrap();
    assert_eq!(out, applied(2, 2));
    store.close().await;
    assert!(matches!(store.branches().await, Err(StoreError::Closed)));
    let store = SqliteStore::open(path).unwrap();
    let inv = store.inventory().await.unwrap();
    assert_eq!(inv[0].by_branch["CUS"], -3);
    assert_eq!(store.negative_stock_products().await.unwrap(), 1);
    store.close().await;
}

fn user(id: &str, branches: &[&str], active: bool, pin_hash: Option<&str>) -> UserChange {
    UserChange {
        user_id: colmena_shared::users::UserId::parse(id).unwrap(),
        name: format!("User {id}"),
        role: colmena_shared::users::Role::Cashier,
        branches: branches.iter().map(|b| b.to_string()).collect(),
        active,
        pin_hash: pin_hash.map(str::to_string),
    }
}

/// The user ids of the user changes a branch pulls.
async fn pulled_users(store: &SqliteStore, branch: &str, include: bool) -> Vec<(String, u64)> {
    let b = BranchId::parse(branch).unwrap();
    let data = store.pull(b, 0, 1000, include).await.unwrap();
    data.changes
        .iter()
        .filter_map(|c| c.user.as_ref().map(|u| (u.user_id.to_string(), u.version)))
        .collect()
}

#[tokio::test]
async fn users_reach_the_branches_they_were_or_are_listed_at_and_every_change_is_audited() {
    let tmp = tmp("users");
    let store = SqliteStore::open(&tmp.path).unwrap();
    let branches = ["CUS", "ABA", "LIM"].map(|b| BranchId::parse(b).unwrap()).to_vec();
    store.ensure_branches(branches).await.unwrap();

    assert_eq!(
        store.put_user(user("ana", &["CUS"], true, None)).await.unwrap(),
        UserOutcome::PinRequired
    );
    assert_eq!(
        store
            .put_user(user("ana", &["XYZ"], true, Some("$argon2id$h1")))
            .await
            .unwrap(),
        UserOutcome::UnknownBranch("XYZ".into())
    );
    let UserOutcome::Saved(v1) = store
        .put_user(user("ana", &["CUS"], true, Some("$argon2id$h1")))
        .await
        .unwrap()
    else {
        panic!("not saved")
    };
    assert_eq!(v1.version, 1);
    // The same fields, no PIN: nothing changes.
    let again = store.put_user(user("ana", &["CUS"], true, None)).await.unwrap();
    assert_eq!(again, UserOutcome::Saved(v1.clone()));
    // Moved from CUS to ABA: both hear of it; LIM never does.
    store.put_user(user("ana", &["ABA"], true, None)).await.unwrap();
    store
        .put_user(user("bob", &["*"], true, Some("$argon2id$h2")))
        .await
        .unwrap();
    assert_eq!(
        pulled_users(&store, "CUS", true).await,
        [("ana".into(), 1), ("ana".into(), 2), ("bob".into(), 1)]
    );
    assert_eq!(
        pulled_users(&store, "ABA", true).await,
        [("ana".into(), 2), ("bob".into(), 1)]
    );
    assert_eq!(pulled_users(&store, "LIM", true).await, [("bob".into(), 1)]);
    assert!(pulled_users(&store, "CUS", false).await.is_empty());
    let cus = store.pull(cus(), 0, 1000, true).await.unwrap();
    let record = cus.changes[1].user.as_ref().unwrap();
    assert_eq!(record.pin_hash, "$argon2id$h1", "the PIN is kept when omitted");

    let users = store.users().await.unwrap();
    assert_eq!(
        users.iter().map(|u| u.user_id.as_str()).collect::<Vec<_>>(),
        ["ana", "bob"]
    );
    let page = store.audit(crate::store::AuditFilter::default(), 0, 2).await.unwrap();
    assert_eq!(page.entries.len(), 2);
    assert_eq!(page.entries[0].before, None);
    assert_eq!(
        page.entries[1].before.as_ref().unwrap()["branches"],
        serde_json::json!(["CUS"])
    );
    assert_eq!(page.entries[1].after["branches"], serde_json::json!(["ABA"]));
    let rest = store
        .audit(crate::store::AuditFilter::default(), page.next.unwrap(), 2)
        .await
        .unwrap();
    assert_eq!((rest.entries.len(), rest.next), (1, None));
    for e in page.entries.iter().chain(&rest.entries) {
        assert!(!e.after.to_string().contains("argon2"), "{e:?}");
    }
    store.close().await;
}

#[tokio::test]
async fn a_catalog_of_schema_4_reads_back_with_the_defaults_after_migration_5() {
    let tmp = tmp("schema4");
    {
        // A database as a central of schema 4 left it: a product and its feed entry.
        let conn = Connection::open(&tmp.path).unwrap();
        for sql in &schema::MIGRATIONS[..4] {
            conn.execute_batch(sql).unwrap();
        }
        conn.execute_batch(
            "ALTER TABLE sales ADD COLUMN shift_id TEXT; ALTER TABLE sales ADD COLUMN payments TEXT;
             INSERT INTO products VALUES ('P1', 'Pan', 100, 3, 0);
             INSERT INTO changes(kind, product_id, name, price_cents, version, created_ms)
             VALUES (0, 'P1', 'Pan', 100, 3, 0);",
        )
        .unwrap();
        conn.pragma_update(None, "application_id", schema::APPLICATION_ID)
            .unwrap();
        conn.pragma_update(None, "user_version", 4).unwrap();
    }
    let store = SqliteStore::open(&tmp.path).unwrap();
    let p = store.product(ProductId::parse("P1").unwrap()).await.unwrap().unwrap();
    assert_eq!(
        p,
        Product {
            product_id: "P1".into(),
            name: "Pan".into(),
            price_cents: 100,
            version: 3,
            ..Product::default()
        }
    );
    // The old feed entry carries none of the new fields: a branch reads the defaults.
    let pull = store.pull(cus(), 0, 10, false).await.unwrap();
    assert_eq!((pull.changes[0].active, pull.changes[0].reorder_point), (None, None));
    store.close().await;
}
