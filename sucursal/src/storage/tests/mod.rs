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

/// Submits `cmd`, lets its one fsync through, and returns its answer.
fn commit<C: Command>(r: &Rig, cmd: C) -> C::Reply {
    let rx = submit(&r.writer, cmd);
    r.permits.send(true).unwrap();
    rx.recv().unwrap().unwrap()
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

mod kinds;
