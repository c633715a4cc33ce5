//! The pipeline's ordering, with the fsync held or failed on purpose. (That an answered
//! sale really is on disk after a power cut is the failpoints test binary's job.)
use super::*;
use colmena_shared::ids::ProductId;
use colmena_shared::wire::CatalogSeedItem;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

/// Each sync waits for a permit from the test, then succeeds or fails as told.
struct Gated {
    permits: std_mpsc::Receiver<bool>,
    syncs: Arc<AtomicU64>,
}

impl Durability for Gated {
    fn sync(&mut self) -> std::io::Result<()> {
        let ok = self.permits.recv().unwrap_or(true);
        self.syncs.fetch_add(1, Ordering::SeqCst);
        if ok {
            Ok(())
        } else {
            Err(std::io::Error::other("injected EIO"))
        }
    }
}

struct Rig {
    writer: WriterHandle,
    thread: std::thread::JoinHandle<()>,
    state: Arc<OutboxState>,
    permits: std_mpsc::Sender<bool>,
    syncs: Arc<AtomicU64>,
    people: Arc<crate::people::People>,
    till: Arc<crate::till::Till>,
    transfers: Arc<crate::transfers::Transfers>,
    inventory: Arc<Inventory>,
    dir: tempfile::TempDir,
}

impl Rig {
    fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// Drops the last handle (the threads flush and stop); the store goes with the dir.
    fn finish(self) {
        drop(self.writer);
        self.thread.join().unwrap();
    }
}

fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let conn = open(dir.path()).unwrap();
    db::migrate(&conn).unwrap();
    let (permits, rx) = std_mpsc::channel();
    let syncs = Arc::new(AtomicU64::new(0));
    let state = Arc::new(OutboxState::default());
    let people = Arc::new(crate::people::People::new("CUS", Vec::new(), Duration::from_secs(60)).unwrap());
    let till = Arc::new(crate::till::Till::new(
        Vec::new(),
        crate::till::Rules {
            return_window: Duration::from_secs(86_400),
            cashier_return_limit_cents: 5000,
        },
    ));
    let inventory = Arc::new(Inventory::default());
    let transfers = Arc::new(crate::transfers::Transfers::new(Vec::new()));
    let (writer, thread) = spawn(WriterParts {
        conn,
        checkpoint_conn: open(dir.path()).unwrap(),
        durability: Box::new(Gated {
            permits: rx,
            syncs: syncs.clone(),
        }),
        branch_id: "CUS".into(),
        inventory: inventory.clone(),
        idempotency: Arc::new(Idempotency::load(Vec::new())),
        state: state.clone(),
        people: people.clone(),
        till: till.clone(),
        transfers: transfers.clone(),
        fsync_duration: prometheus::Histogram::with_opts(prometheus::HistogramOpts::new("fsync", "test")).unwrap(),
    })
    .unwrap();
    Rig {
        writer,
        thread,
        state,
        permits,
        syncs,
        people,
        till,
        transfers,
        inventory,
        dir,
    }
}

fn adjust(delta: i64) -> RecordAdjustment {
    RecordAdjustment {
        product_id: ProductId::parse("P1").unwrap(),
        delta,
        reason: "recount".into(),
        user_id: None,
        reserved: None,
        remember: None,
    }
}

fn seed() -> Seed {
    Seed(vec![CatalogSeedItem {
        product_id: ProductId::parse("P1").unwrap(),
        name: "uno".into(),
        price_cents: 100,
        stock: 5,
    }])
}

/// Submits from another thread; the receiver yields the answer when it comes.
fn submit<C: Command>(w: &WriterHandle, cmd: C) -> std_mpsc::Receiver<Result<C::Reply, StoreError>> {
    let (tx, rx) = std_mpsc::channel();
    let w = w.clone();
    std::thread::spawn(move || {
        let _ = tx.send(w.submit_blocking(cmd));
    });
    rx
}

#[test]
fn a_commit_is_answered_and_published_only_after_its_fsync() {
    let r = rig();
    let pending = submit(&r.writer, seed());
    // Committed (the writer moved on), but the fsync is held: no answer, and the relay's
    // bound has not moved.
    assert!(
        pending.recv_timeout(Duration::from_millis(300)).is_err(),
        "answered before the fsync"
    );
    assert_eq!(r.state.last_seq.load(Ordering::Acquire), 0);
    r.permits.send(true).unwrap();
    let reply = pending
        .recv_timeout(Duration::from_secs(5))
        .expect("answered after the fsync");
    assert!(reply.is_ok(), "{reply:?}");
    assert_eq!(r.state.last_seq.load(Ordering::Acquire), 1, "published with the fsync");
    assert_eq!(r.syncs.load(Ordering::SeqCst), 1);
    r.finish();
}

#[test]
fn a_backup_is_published_only_once_every_event_in_it_is_durable() {
    let r = rig();
    let backups = colmena_shared::backup::Backups::new(r.dir().join("backups"), "sucursal", 5);
    let reader = std::sync::Mutex::new(open(&r.dir()).unwrap());
    let seeded = submit(&r.writer, seed());
    r.permits.send(true).unwrap();
    assert!(matches!(seeded.recv_timeout(Duration::from_secs(5)), Ok(Ok(()))));
    // Seq 2 is committed — any reader sees it — but its fsync is held.
    let held = submit(&r.writer, adjust(3));
    let committed = || meta::get(&reader.lock().unwrap(), meta::LAST_SEQ).unwrap();
    let t0 = std::time::Instant::now();
    while committed() < 2 {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the adjustment was never committed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(r.state.last_seq.load(Ordering::Acquire), 1);

    let err = crate::backup::take(&backups, &reader, &r.state, Duration::from_millis(300)).unwrap_err();
    assert!(err.to_string().contains("through seq 2"), "{err}");
    assert!(
        backups.list().unwrap().is_empty(),
        "a copy holding an unsynced event was published"
    );
    let left: Vec<_> = std::fs::read_dir(backups.dir()).unwrap().collect();
    assert!(left.is_empty(), "the unpublished copy was left behind: {left:?}");

    // The fsync comes while a backup waits: it is published, holding seq 2.
    let info = std::thread::scope(|s| {
        let taking = s.spawn(|| crate::backup::take(&backups, &reader, &r.state, Duration::from_secs(5)));
        std::thread::sleep(Duration::from_millis(200));
        assert!(!taking.is_finished(), "published before the fsync");
        r.permits.send(true).unwrap();
        taking.join().unwrap().unwrap()
    });
    assert!(matches!(held.recv_timeout(Duration::from_secs(5)), Ok(Ok(_))));
    let (_, path) = backups.get(&info.id).unwrap();
    let copy = Connection::open(path).unwrap();
    assert_eq!(meta::get(&copy, meta::LAST_SEQ).unwrap(), 2);
    r.finish();
}

#[test]
fn commands_arriving_while_an_fsync_runs_share_the_next_fsync() {
    let r = rig();
    let first = submit(&r.writer, seed());
    std::thread::sleep(Duration::from_millis(200));
    // While the first fsync is held, three more commits queue behind it.
    let more: Vec<_> = (0..3)
        .map(|_| {
            let rx = submit(&r.writer, adjust(1));
            std::thread::sleep(Duration::from_millis(50));
            rx
        })
        .collect();
    r.permits.send(true).unwrap();
    assert!(first.recv_timeout(Duration::from_secs(5)).unwrap().is_ok());
    r.permits.send(true).unwrap();
    for rx in more {
        assert!(rx.recv_timeout(Duration::from_secs(5)).unwrap().is_ok());
    }
    assert_eq!(
        r.syncs.load(Ordering::SeqCst),
        2,
        "one fsync for the three queued commits"
    );
    assert_eq!(r.state.last_seq.load(Ordering::Acquire), 4);
    r.finish();
}

#[test]
fn a_failed_fsync_is_a_storage_error_and_the_store_takes_no_more_writes() {
    let r = rig();
    let ok = submit(&r.writer, seed());
    r.permits.send(true).unwrap();
    assert!(ok.recv_timeout(Duration::from_secs(5)).unwrap().is_ok());
    let failed = submit(&r.writer, adjust(2));
    r.permits.send(false).unwrap();
    assert!(matches!(
        failed.recv_timeout(Duration::from_secs(5)).unwrap(),
        Err(StoreError::SyncFailed(_))
    ));
    // Refused before any commit: no fsync is even attempted, and nothing reaches the store
    // (the failed batch itself was committed as seq 2, its durability unknown).
    let refused = submit(&r.writer, adjust(3));
    assert!(matches!(
        refused.recv_timeout(Duration::from_secs(5)).unwrap(),
        Err(StoreError::SyncFailed(_))
    ));
    assert_eq!(r.syncs.load(Ordering::SeqCst), 2);
    let stored = meta::get(&open(&r.dir()).unwrap(), meta::LAST_SEQ).unwrap();
    assert_eq!(stored, 2, "the refused command was not committed");
    assert_eq!(
        r.state.last_seq.load(Ordering::Acquire),
        1,
        "nothing after the failure is published"
    );
    r.finish();
}

#[test]
fn shutdown_answers_after_every_earlier_command_is_durable() {
    let r = rig();
    let sale = submit(&r.writer, seed());
    // Committed and held at the syncer before the Shutdown is even sent (the two
    // submitting threads would otherwise race).
    std::thread::sleep(Duration::from_millis(200));
    let stop = submit(&r.writer, Shutdown);
    assert!(
        stop.recv_timeout(Duration::from_millis(300)).is_err(),
        "stopped before the fsync"
    );
    r.permits.send(true).unwrap();
    r.permits.send(true).unwrap();
    assert!(sale.recv_timeout(Duration::from_secs(5)).unwrap().is_ok());
    assert!(matches!(stop.recv_timeout(Duration::from_secs(5)).unwrap(), Ok(())));
    // The threads already stopped on the Shutdown; this only joins and cleans up.
    r.finish();
}

#[test]
fn handlers_routed_through_their_worker_threads_dispatcher_all_get_their_answers() {
    let r = rig();
    for _ in 0..16 {
        r.permits.send(true).unwrap();
    }
    assert!(submit(&r.writer, seed())
        .recv_timeout(Duration::from_secs(5))
        .unwrap()
        .is_ok());
    // As on an actix worker: a current-thread runtime, the handlers spawned locally.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    let replies = local.block_on(&rt, async {
        let handlers: Vec<_> = (0..5)
            .map(|_| {
                let w = r.writer.clone();
                tokio::task::spawn_local(async move { w.submit_from_handler(adjust(1)).await })
            })
            .collect();
        let mut replies = Vec::new();
        for h in handlers {
            let reply = tokio::time::timeout(Duration::from_secs(5), h).await;
            replies.push(reply.expect("answered").expect("handler ran"));
        }
        replies
    });
    let seqs: Vec<u64> = replies.iter().map(|r| r.as_ref().expect("recorded").seq).collect();
    assert_eq!(seqs.len(), 5, "{replies:?}");
    assert!(reply::has_local_route(), "the dispatcher was started on this thread");
    r.finish();
}

fn user_change(cursor: u64, id: &str, version: u64, active: bool) -> colmena_shared::wire::Change {
    use colmena_shared::users::{Role, UserId, UserRecord};
    colmena_shared::wire::Change {
        cursor,
        kind: colmena_shared::wire::ChangeKind::User,
        product_id: String::new(),
        name: None,
        price_cents: None,
        version: None,
        quantity: None,
        user: Some(UserRecord {
            user_id: UserId::parse(id).unwrap(),
            name: format!("User {id}"),
            role: Role::Cashier,
            branches: vec!["CUS".into()],
            active,
            version,
            pin_hash: format!("$argon2id$hash-of-{id}-v{version}"),
        }),
        ..Default::default()
    }
}

#[test]
fn pulled_users_reach_memory_after_the_fsync_and_only_newer_versions_count() {
    let rig = rig();
    let ana = colmena_shared::users::UserId::parse("ana").unwrap();
    let pull = |changes, next_cursor| ApplyPull {
        changes,
        next_cursor,
        applied_through: 0,
        users_catch_up: false,
    };
    let rx = submit(&rig.writer, pull(vec![user_change(1, "ana", 2, true)], 1));
    std::thread::sleep(Duration::from_millis(50));
    assert!(rig.people.user(&ana).is_none(), "not in memory before its fsync");
    rig.permits.send(true).unwrap();
    rx.recv().unwrap().unwrap();
    assert_eq!(rig.people.user(&ana).unwrap().version, 2);
    // An older version (a re-pull from a restored central) changes nothing, on disk either.
    let rx = submit(&rig.writer, pull(vec![user_change(2, "ana", 1, false)], 2));
    rig.permits.send(true).unwrap();
    rx.recv().unwrap().unwrap();
    assert!(rig.people.user(&ana).unwrap().active);
    let conn = open(&rig.dir()).unwrap();
    let stored = users::load_all(&conn).unwrap();
    assert_eq!((stored.len(), stored[0].version, stored[0].active), (1, 2, true));
    assert_eq!(stored[0].pin_hash, "$argon2id$hash-of-ana-v2");
    rig.finish();
}

#[test]
fn a_schema_1_store_upgrades_and_owes_its_users_up_to_its_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let conn = open(dir.path()).unwrap();
    db::migrate(&conn).unwrap();
    // Make it look like a schema-1 store that had pulled through cursor 42.
    conn.execute_batch("DROP TABLE users").unwrap();
    meta::set(&conn, meta::PULL_CURSOR, 42).unwrap();
    conn.pragma_update(None, "user_version", 1).unwrap();
    db::migrate(&conn).unwrap();
    let v: i32 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    let loaded = db::load(&conn, 0).unwrap();
    assert_eq!((v, loaded.users.len(), loaded.users_catch_up), (5, 0, (0, 42)));
    // Migrating again (every start) changes nothing.
    db::migrate(&conn).unwrap();
    assert_eq!(db::load(&conn, 0).unwrap().users_catch_up, (0, 42));
}

fn open_shift(till: &str) -> OpenShift {
    OpenShift {
        till_id: till.into(),
        opening_float_cents: 1000,
        opened_by: None,
        remember: None,
    }
}

/// A sale of one P1 at 100 on `shift`, with nothing reserved (stock is not the point).
fn sale_on(shift: &str) -> RecordSale {
    RecordSale {
        sale: crate::sales::PricedSale {
            lines: vec![colmena_shared::wire::SaleLineOut {
                product_id: "P1".into(),
                quantity: 1,
                unit_price_cents: 100,
                line_total_cents: 100,
                remaining_stock: 4,
            }],
            total_cents: 100,
            cashier_id: None,
            payments: None,
            change_cents: 0,
            shift_id: Some(shift.into()),
        },
        reserved: Vec::new(),
        remember: None,
    }
}

fn return_of(sale_seq: u64, quantity: i64) -> RecordReturn {
    RecordReturn {
        sale_seq,
        sale_id: format!("CUS-{sale_seq:010}"),
        lines: vec![colmena_shared::till::ReturnLine {
            product_id: "P1".into(),
            quantity,
            unit_price_cents: 100,
            line_total_cents: 100 * quantity,
        }],
        sold: [("P1".to_string(), 2)].into(),
        restock: true,
        refund_method: "cash".into(),
        shift_id: None,
        reason: "damaged".into(),
        user_id: None,
        remember: None,
    }
}

#[test]
fn a_sale_on_a_shift_closed_before_it_in_the_same_batch_is_refused_and_takes_no_seq() {
    let r = rig();
    let opened = submit(&r.writer, open_shift("T1"));
    r.permits.send(true).unwrap();
    let shift = opened.recv_timeout(Duration::from_secs(5)).unwrap().unwrap().unwrap();
    assert!(r.till.is_open(&shift.shift_id));
    // The syncer is held on a batch (a seed, ignored: the store has data); the close and
    // then the sale join the next batch.
    let held = submit(&r.writer, seed());
    std::thread::sleep(Duration::from_millis(100));
    let closed = submit(
        &r.writer,
        CloseShift {
            shift_id: shift.shift_id.clone(),
            counted_cash_cents: 1000,
            closed_by: None,
            remember: None,
        },
    );
    std::thread::sleep(Duration::from_millis(50));
    let sold = submit(&r.writer, sale_on(&shift.shift_id));
    std::thread::sleep(Duration::from_millis(50));
    r.permits.send(true).unwrap();
    r.permits.send(true).unwrap();
    assert!(held.recv_timeout(Duration::from_secs(5)).unwrap().is_ok());
    let closed = closed.recv_timeout(Duration::from_secs(5)).unwrap().unwrap().unwrap();
    assert_eq!(closed.summary.difference_cents, Some(0));
    assert_eq!(
        sold.recv_timeout(Duration::from_secs(5)).unwrap().unwrap().unwrap_err(),
        Refusal::ShiftNotOpen(shift.shift_id.clone())
    );
    assert!(!r.till.is_open(&shift.shift_id));
    // Open (1), the close (2): the refused sale took no seq.
    assert_eq!(r.state.last_seq.load(Ordering::Acquire), 2);
    r.finish();
}

#[test]
fn two_returns_in_one_batch_cannot_together_take_back_more_than_was_sold() {
    let r = rig();
    let held = submit(&r.writer, seed());
    std::thread::sleep(Duration::from_millis(100));
    let first = submit(&r.writer, return_of(1, 2));
    std::thread::sleep(Duration::from_millis(50));
    let second = submit(&r.writer, return_of(1, 1));
    std::thread::sleep(Duration::from_millis(50));
    r.permits.send(true).unwrap();
    r.permits.send(true).unwrap();
    assert!(held.recv_timeout(Duration::from_secs(5)).unwrap().is_ok());
    let done = first.recv_timeout(Duration::from_secs(5)).unwrap().unwrap().unwrap();
    assert_eq!(done.total_cents, 200);
    assert_eq!(
        second
            .recv_timeout(Duration::from_secs(5))
            .unwrap()
            .unwrap()
            .unwrap_err(),
        Refusal::ReturnExceedsSale {
            product_id: "P1".into(),
            left: 0,
            requested: 1
        }
    );
    r.finish();
}

#[test]
fn a_sale_stays_returnable_after_the_purge_drops_its_outbox_row_and_goes_with_the_window() {
    let r = rig();
    let sold = submit(&r.writer, sale_on("none"));
    r.permits.send(true).unwrap();
    // No such shift: refused; a sale without one is recorded.
    assert!(sold.recv_timeout(Duration::from_secs(5)).unwrap().unwrap().is_err());
    let mut plain = sale_on("none");
    plain.sale.shift_id = None;
    let sold = submit(&r.writer, plain);
    r.permits.send(true).unwrap();
    let seq = sold
        .recv_timeout(Duration::from_secs(5))
        .unwrap()
        .unwrap()
        .unwrap()
        .receipt
        .seq;
    let acked = submit(&r.writer, RecordAck(seq));
    r.permits.send(true).unwrap();
    acked.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
    let reader = open(&r.dir()).unwrap();
    let far_future = colmena_shared::clock::now_millis() + 60_000;
    let purge = |returns_since_ms| Purge {
        outbox_before_ms: far_future,
        idempotency_before_ms: 0,
        returns_since_ms,
    };
    // The outbox row goes; the sale is still found, from its record.
    let purged = submit(&r.writer, purge(0));
    r.permits.send(true).unwrap();
    purged.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
    assert_eq!(outbox::max_seq(&reader).unwrap(), 0, "the outbox row was purged");
    let kept = returns::sale(&reader, seq)
        .unwrap()
        .expect("the sale is still returnable");
    assert_eq!(kept.event.total_cents, Some(100));
    // Once the window has passed, the record goes too.
    let purged = submit(&r.writer, purge(far_future));
    r.permits.send(true).unwrap();
    purged.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
    assert!(returns::sale(&reader, seq).unwrap().is_none());
    r.finish();
}

#[test]
fn a_schema_3_store_gains_the_catalog_fields_with_their_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let conn = open(dir.path()).unwrap();
    // The products table as schema 3 had it, with a product in it.
    conn.execute_batch(
        "CREATE TABLE products (product_id TEXT PRIMARY KEY, name TEXT NOT NULL, price_cents INTEGER NOT NULL,
            version INTEGER NOT NULL, stock INTEGER NOT NULL) WITHOUT ROWID;
         INSERT INTO products VALUES ('P1', 'uno', 100, 3, 7);
         PRAGMA user_version = 3;",
    )
    .unwrap();
    db::migrate(&conn).unwrap();
    db::migrate(&conn).unwrap();
    let v: i32 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    let rows = products::load_all(&conn).unwrap();
    assert_eq!(v, 5);
    assert_eq!((rows[0].stock, rows[0].version), (7, 3));
    assert_eq!(rows[0].catalog, products::CatalogFields::default());
}

#[test]
fn pulled_catalog_fields_are_stored_and_an_older_version_changes_none_of_them() {
    use colmena_shared::catalog::ScheduledPrice;
    use colmena_shared::wire::{Change, ChangeKind};
    let rig = rig();
    let product = |cursor, version, active, price| Change {
        cursor,
        kind: ChangeKind::Product,
        product_id: "AZUCAR-1KG".into(),
        name: Some("Azúcar rubia 1 kg".into()),
        price_cents: Some(price),
        version: Some(version),
        barcode: Some("7750885000018".into()),
        category: Some("abarrotes".into()),
        active: Some(active),
        reorder_point: Some(12),
        scheduled_price: Some(ScheduledPrice {
            price_cents: price + 40,
            effective_at: "2026-12-24T05:00:00Z".into(),
        }),
        ..Default::default()
    };
    for (changes, next_cursor) in [
        (vec![product(1, 2, false, 550)], 1),
        (vec![product(2, 1, true, 999)], 2),
    ] {
        let rx = submit(
            &rig.writer,
            ApplyPull {
                changes,
                next_cursor,
                applied_through: 0,
                users_catch_up: false,
            },
        );
        rig.permits.send(true).unwrap();
        rx.recv().unwrap().unwrap();
    }
    let at = colmena_shared::clock::parse_rfc3339_millis("2026-12-24T05:00:00Z").unwrap();
    let want = products::CatalogFields {
        barcode: Some("7750885000018".into()),
        category: Some("abarrotes".into()),
        active: false,
        reorder_point: 12,
        scheduled: Some((590, at)),
    };
    let rows = products::load_all(&open(&rig.dir()).unwrap()).unwrap();
    assert_eq!((rows[0].price_cents, rows[0].version), (550, 2));
    assert_eq!(rows[0].catalog, want);
    let item = rig.inventory.get("AZUCAR-1KG").unwrap();
    assert_eq!((item.price_cents, item.version, item.active), (550, 2, false));
    assert_eq!((item.scheduled(), item.reorder_point), (Some((590, at)), 12));
    rig.finish();
}

#[test]
fn two_dispatches_of_one_transfer_record_one_event_and_a_stale_pull_does_not_undo_it() {
    use colmena_shared::transfers::{Transfer, TransferLine, TransferStatus};
    use colmena_shared::wire::{Change, ChangeKind};
    let rig = rig();
    let seeded = submit(&rig.writer, seed());
    rig.permits.send(true).unwrap();
    seeded.recv().unwrap().unwrap();
    let requested = Transfer {
        transfer_id: "TR-000001".into(),
        from_branch: "CUS".into(),
        to_branch: "ABA".into(),
        status: TransferStatus::Requested,
        lines: vec![TransferLine {
            product_id: "P1".into(),
            quantity: 2,
            received: None,
            lost: None,
        }],
        requested_at: "2026-12-07T14:00:00Z".into(),
        ..Default::default()
    };
    let pull = |cursor: u64, t: &Transfer| ApplyPull {
        changes: vec![Change {
            cursor,
            kind: ChangeKind::Transfer,
            transfer: Some(t.clone()),
            ..Default::default()
        }],
        next_cursor: cursor,
        applied_through: 0,
        users_catch_up: false,
    };
    let pulled = submit(&rig.writer, pull(1, &requested));
    rig.permits.send(true).unwrap();
    pulled.recv().unwrap().unwrap();
    assert_eq!(
        rig.transfers.get("TR-000001").unwrap().status,
        TransferStatus::Requested
    );

    // Both reserve (memory does not know yet), but the writer lets only the first through.
    let dispatch = || DispatchTransfer {
        transfer_id: "TR-000001".into(),
        user_id: None,
        reserved: rig.inventory.reserve(&[("P1".into(), 2)]).unwrap(),
    };
    let (a, b) = (submit(&rig.writer, dispatch()), submit(&rig.writer, dispatch()));
    for _ in 0..2 {
        rig.permits.send(true).unwrap();
    }
    let steps = [a.recv().unwrap().unwrap().unwrap(), b.recv().unwrap().unwrap().unwrap()];
    assert_eq!(steps.iter().filter(|s| s.seq.is_some()).count(), 1, "{steps:?}");
    assert_eq!(steps[0].transfer, steps[1].transfer);
    assert_eq!(steps[0].transfer.status, TransferStatus::InTransit);
    assert_eq!(
        rig.inventory.get("P1").unwrap().stock,
        3,
        "the second reservation is given back"
    );
    let reader = open(&rig.dir()).unwrap();
    let events: i64 = reader
        .query_row(
            "SELECT COUNT(*) FROM outbox WHERE kind = 'transfer_dispatched'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(events, 1);
    assert_eq!(products::stock_of(&reader, "P1").unwrap(), Some(3));

    // Central's view from before it applied the dispatch: the dispatch stands.
    let stale = submit(&rig.writer, pull(2, &requested));
    rig.permits.send(true).unwrap();
    stale.recv().unwrap().unwrap();
    assert_eq!(rig.transfers.get("TR-000001").unwrap(), steps[0].transfer);
    assert_eq!(
        transfers::get(&reader, "TR-000001").unwrap().unwrap(),
        steps[0].transfer
    );
    rig.finish();
}
