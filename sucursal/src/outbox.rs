//! The outbox writer: the only code that writes the branch's store, with group commit and a
//! pipelined fsync.
//!
//! Handlers hand a [`Job`] to the writer thread and wait on a oneshot. The writer opens a
//! transaction, applies every job that is waiting, and — while the syncer is still busy
//! with the previous batch — goes on applying jobs as they arrive (up to [`MAX_BATCH`]).
//! As soon as the syncer is free it commits, *without* an fsync (its connection runs
//! `synchronous=OFF`), and hands the committed batch over. The syncer fdatasyncs the WAL
//! file — once for every batch committed since its last sync — and only then applies the
//! batch's in-memory effects and answers its jobs. So a `/sell` is answered 201 only after
//! its event is on disk; hundreds of sales share a commit and an fsync (a batch is what
//! arrived during the last fsync, as in plain group commit); and the writer's CPU work on
//! batch N+1 overlaps the disk's work on batch N instead of waiting for it.
//!
//! Thread crossings are batched too, because on these VMs a wake-up costs as much as the
//! SQLite insert: the writer holding a batch open is woken when the syncer is free or
//! [`WAKE_EVERY`] jobs wait (not per job), and HTTP handlers are answered through their
//! worker thread's dispatcher task, one message per worker per batch (see [`Replier`]).
//!
//! Invariants:
//! - seqs are assigned here, in commit order, 1, 2, 3… without gaps; `meta.last_seq` moves in
//!   the same transaction, so a seq is never reused even after a crash or a purge.
//! - Nothing is answered, published (`OutboxState::last_seq`, which bounds what the relay
//!   reads and ships) or applied to memory before the fsync that covers it. The WAL is
//!   append-only between checkpoints, so one fdatasync covers every commit before it; a
//!   power cut loses only unanswered batches, and SQLite's WAL recovery (frame checksums)
//!   drops a half-written one whole.
//! - The writer connection never checkpoints (`wal_autocheckpoint=0`, and `synchronous=FULL`
//!   again before it closes): a checkpoint without syncs could let the WAL restart over
//!   frames that are in neither a synced WAL nor a synced database file. Checkpoints run on
//!   `synchronous=FULL` connections only — the background [`Checkpointer`] and, when the WAL
//!   passes [`CATCH_UP_FRAMES`], the writer's own checkpoint connection between batches.
//! - If the commit fails, *nothing* of the batch happened: every job is answered
//!   `StorageUnavailable`, and the writer itself gives back the stock its sales reserved (so
//!   that holds even if the waiting handler was cancelled).
//! - If an fsync fails, what reached the disk is unknown (on Linux a failed fsync may drop the
//!   dirty pages and report success next time), so the store stops taking writes until the
//!   process restarts and SQLite recovers from what is really on disk. The batches it covered
//!   are answered `StorageUnavailable` and keep their stock reserved (it may have been sold).
//! - Effects that increase in-memory stock (positive adjustments, allocations) and the
//!   idempotency records are applied after the fsync, before the reply.
//! - The threads end when every handle is dropped or on [`Job::Shutdown`], after finishing
//!   the jobs they have: that is the graceful-shutdown flush.
//!
//! [`Checkpointer`]: colmena_shared::checkpoint::Checkpointer
use crate::idempotency::{Idempotency, InFlightGuard, Record};
use crate::inventory::{Inventory, Item, Reserved};
use crate::store::{self, StoreError};
use colmena_shared::clock;
use colmena_shared::ids::ProductId;
use colmena_shared::wire::{
    AdjustmentResponse, CatalogSeedItem, Change, ChangeKind, Event, EventKind, SaleLineOut, SaleResponse,
};
use rusqlite::{params, Connection, Transaction};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::sync::{mpsc, oneshot, Notify};

/// Most jobs in one transaction: bounds commit latency under a storm.
pub const MAX_BATCH: usize = 2048;

/// WAL size (pages) at which the writer checkpoints between two batches, so the WAL restarts
/// from its beginning even under a load that never pauses (SQLite's own auto-checkpoint
/// default; the background checkpointer has usually copied most of it already).
pub const CATCH_UP_FRAMES: i32 = 1000;

/// Jobs waiting that wake the writer while the syncer is busy (see [`WriterWake`]): a few
/// wake-ups per fsync under load instead of one per sale.
pub const WAKE_EVERY: usize = 16;

/// Why every write is refused once an fsync has failed.
const POISONED: &str = "an earlier fsync failed; restart the branch to recover";

/// Sync bookkeeping shared with the relay, `/status` and `/metrics`.
#[derive(Default)]
pub struct OutboxState {
    /// The last seq that is durable (fsync'd). Committed-but-not-yet-synced events are above
    /// it, invisible to the relay and to `/status`.
    pub last_seq: AtomicU64,
    pub acked_through: AtomicU64,
    pub pull_cursor: AtomicU64,
    /// Woken after every commit that added events.
    pub new_events: Notify,
}

impl OutboxState {
    pub fn pending(&self) -> u64 {
        self.last_seq
            .load(Ordering::Acquire)
            .saturating_sub(self.acked_through.load(Ordering::Acquire))
    }

    /// Blocks until every event through `seq` is durable, or `timeout` passes (then false:
    /// the syncer is stuck on a slow disk, or its store stopped after a failed fsync). For
    /// code off the async runtime; a batch waits one fsync, so the poll is short.
    pub fn wait_durable(&self, seq: u64, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while self.last_seq.load(Ordering::Acquire) < seq {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        true
    }
}

pub struct SaleLineIn {
    pub product_id: ProductId,
    pub quantity: i64,
}

pub struct SaleJob {
    pub lines: Vec<SaleLineIn>,
    pub reserved: Vec<Reserved>,
    pub cashier_id: Option<String>,
    pub idempotency: Option<InFlightGuard>,
}

pub struct AdjustJob {
    pub product_id: ProductId,
    pub delta: i64,
    pub reason: String,
    /// Set for a negative delta: the units taken before the commit.
    pub reserved: Option<Reserved>,
}

pub struct PullJob {
    pub changes: Vec<Change>,
    pub next_cursor: u64,
    pub applied_through: u64,
}

pub enum Job {
    Sale(SaleJob),
    Adjust(AdjustJob),
    Pull(PullJob),
    /// Central acknowledged (or, after a `sequence_gap`, stands at) this seq.
    SetAcked(u64),
    /// Drop acknowledged events older than `outbox_before_ms` and idempotency records older
    /// than `idempotency_before_ms`.
    Purge {
        outbox_before_ms: i64,
        idempotency_before_ms: i64,
    },
    /// First-boot catalog; ignored unless the store is empty.
    Seed(Vec<CatalogSeedItem>),
    /// Finish every job queued before this one, then stop the thread.
    Shutdown,
}

impl Job {
    fn take_reserved(&mut self) -> Vec<Reserved> {
        match self {
            Job::Sale(s) => std::mem::take(&mut s.reserved),
            Job::Adjust(a) => a.reserved.take().into_iter().collect(),
            _ => Vec::new(),
        }
    }
}

#[derive(Debug)]
pub enum Reply {
    Sale(SaleResponse),
    Adjust(AdjustmentResponse),
    Done,
}

struct Envelope {
    job: Job,
    reply: Replier,
}

type Answer = (oneshot::Sender<Result<Reply, StoreError>>, Result<Reply, StoreError>);

/// Where a job's answer goes: its oneshot, and — for jobs submitted from an actix worker
/// thread — that thread's dispatcher task, which the syncer hands all of a batch's answers
/// for the thread in one message. Sending each oneshot from the syncer thread instead is a
/// remote wake of the worker's runtime per sale (an eventfd write, one per sale measured
/// with `perf stat`); from the dispatcher, on the worker's own thread, it is a local one.
struct Replier {
    tx: oneshot::Sender<Result<Reply, StoreError>>,
    route: Option<Route>,
}

impl Replier {
    /// Answers directly (errors, and callers off the HTTP workers).
    fn send(self, r: Result<Reply, StoreError>) {
        let _ = self.tx.send(r);
    }
}

#[derive(Clone)]
struct Route(mpsc::UnboundedSender<Vec<Answer>>);

thread_local! {
    static ROUTE: std::cell::RefCell<Option<Route>> = const { std::cell::RefCell::new(None) };
}

/// This thread's dispatcher task, started on first use. Must run inside a `LocalSet`, as
/// every actix-web handler does (its futures are `!Send`, so actix runs them with
/// `spawn_local` on the worker's own thread).
fn local_route() -> Route {
    ROUTE.with(|cell| {
        let mut cell = cell.borrow_mut();
        if let Some(r) = cell.as_ref().filter(|r| !r.0.is_closed()) {
            return r.clone();
        }
        let (tx, mut rx) = mpsc::unbounded_channel::<Vec<Answer>>();
        tokio::task::spawn_local(async move {
            while let Some(answers) = rx.recv().await {
                for (tx, r) in answers {
                    let _ = tx.send(r);
                }
            }
        });
        let route = Route(tx);
        *cell = Some(route.clone());
        route
    })
}

/// Answers a durable batch: routed answers grouped by route, one message per group.
fn answer_all(answers: impl Iterator<Item = (Replier, Reply)>) {
    let mut groups: Vec<(Route, Vec<Answer>)> = Vec::new();
    for (replier, reply) in answers {
        let Replier { tx, route } = replier;
        let Some(route) = route else {
            let _ = tx.send(Ok(reply));
            continue;
        };
        match groups.iter_mut().find(|(g, _)| g.0.same_channel(&route.0)) {
            Some((_, v)) => v.push((tx, Ok(reply))),
            None => groups.push((route, vec![(tx, Ok(reply))])),
        }
    }
    for (route, answers) in groups {
        // The worker's runtime has stopped: answer directly (its tasks are gone anyway).
        if let Err(mpsc::error::SendError(answers)) = route.0.send(answers) {
            for (tx, r) in answers {
                let _ = tx.send(r);
            }
        }
    }
}

/// Wakes the writer thread while it holds a batch open for a busy syncer: when the syncer
/// is free, or once [`WAKE_EVERY`] jobs wait. Waking it for every job instead cost a futex
/// wake in the handler and a context switch in the writer per sale (one futex call per sale
/// under strace), and the writer gains nothing by applying a job early.
struct WriterWake {
    /// Jobs sent and not yet taken by the writer.
    queued: AtomicUsize,
    /// The writer thread, once it runs.
    thread: OnceLock<std::thread::Thread>,
}

impl WriterWake {
    fn job_queued(&self) {
        if self.queued.fetch_add(1, Ordering::AcqRel) + 1 >= WAKE_EVERY {
            self.wake();
        }
    }

    fn job_taken(&self) {
        self.queued.fetch_sub(1, Ordering::AcqRel);
    }

    /// Cheap when the writer is not parked: no system call.
    fn wake(&self) {
        if let Some(t) = self.thread.get() {
            t.unpark();
        }
    }
}

/// Cheap to clone; the writer thread stops when the last clone is dropped.
#[derive(Clone)]
pub struct WriterHandle {
    tx: mpsc::UnboundedSender<Envelope>,
    wake: Arc<WriterWake>,
}

impl WriterHandle {
    pub async fn submit(&self, job: Job) -> Result<Reply, StoreError> {
        self.send(job, None)?.await.map_err(|_| StoreError::WriterGone)?
    }

    /// [`submit`](Self::submit) for HTTP handlers, the hot path: the answer comes through
    /// this worker thread's dispatcher (see [`Replier`]). Only from an actix-web handler —
    /// elsewhere there may be no `LocalSet` to run the dispatcher.
    pub async fn submit_from_handler(&self, job: Job) -> Result<Reply, StoreError> {
        self.send(job, Some(local_route()))?
            .await
            .map_err(|_| StoreError::WriterGone)?
    }

    /// For start-up code that runs before the async runtime serves requests.
    pub fn submit_blocking(&self, job: Job) -> Result<Reply, StoreError> {
        self.send(job, None)?
            .blocking_recv()
            .map_err(|_| StoreError::WriterGone)?
    }

    /// Queues the job; the receiver yields its answer.
    fn send(&self, job: Job, route: Option<Route>) -> Result<oneshot::Receiver<Result<Reply, StoreError>>, StoreError> {
        let (tx, rx) = oneshot::channel();
        // Counted before it can be taken, so the count never goes below zero.
        self.wake.job_queued();
        let reply = Replier { tx, route };
        self.tx.send(Envelope { job, reply }).map_err(|_| {
            self.wake.job_taken();
            StoreError::WriterGone
        })?;
        Ok(rx)
    }
}

/// Makes every commit so far durable. [`WalFile`] in production; tests inject their own to
/// hold or fail the fsync.
pub trait Durability: Send + 'static {
    fn sync(&mut self) -> std::io::Result<()>;
}

/// fdatasyncs the store's WAL file. It is opened by path for every sync — an open(2) is
/// nothing beside the fsync — so it is always the WAL SQLite is writing. Its directory is
/// fsync'd once, so the WAL's own directory entry survives a power cut too.
pub struct WalFile {
    wal: PathBuf,
    dir: PathBuf,
    dir_synced: bool,
}

impl WalFile {
    /// For the SQLite database at `db`.
    pub fn for_db(db: &Path) -> WalFile {
        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        WalFile {
            wal: PathBuf::from(wal),
            dir: db.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(".")),
            dir_synced: false,
        }
    }
}

impl Durability for WalFile {
    fn sync(&mut self) -> std::io::Result<()> {
        if crate::failpoints::skip_fsync() {
            return Ok(());
        }
        std::fs::File::open(&self.wal)?.sync_data()?;
        if !self.dir_synced {
            std::fs::File::open(&self.dir)?.sync_all()?;
            self.dir_synced = true;
        }
        Ok(())
    }
}

/// What the writer thread hands the syncer: one committed, not yet durable, batch.
struct Committed {
    through_seq: u64,
    added_events: bool,
    pendings: Vec<Pending>,
    reserved: Vec<Vec<Reserved>>,
    replies: Vec<Replier>,
}

enum ToSyncer {
    Batch(Committed),
    /// Answered once every batch before it is answered.
    Stop(Replier),
}

pub struct Writer {
    conn: Connection,
    /// Batches handed to the syncer and not yet answered.
    in_flight: Arc<AtomicUsize>,
    wake: Arc<WriterWake>,
    /// `synchronous=FULL`, for the catch-up checkpoints.
    checkpoint_conn: Connection,
    /// WAL size in pages after the last commit (from SQLite's wal hook).
    wal_frames: Arc<AtomicI32>,
    branch_id: String,
    inventory: Arc<Inventory>,
    poisoned: Arc<AtomicBool>,
    last_seq: u64,
    syncer: std::sync::mpsc::Sender<ToSyncer>,
}

/// Everything the writer thread needs. `conn` becomes the writer's connection (this module
/// sets its pragmas); `checkpoint_conn` is a second connection of its own to the same store.
pub struct WriterParts {
    pub conn: Connection,
    pub checkpoint_conn: Connection,
    pub durability: Box<dyn Durability>,
    pub branch_id: String,
    pub inventory: Arc<Inventory>,
    pub idempotency: Arc<Idempotency>,
    pub state: Arc<OutboxState>,
    /// Observes every fsync the syncer makes.
    pub fsync_duration: prometheus::Histogram,
}

/// Starts the writer and syncer threads; returns the handle and the writer thread to join on
/// shutdown (it joins the syncer).
pub fn spawn(parts: WriterParts) -> Result<(WriterHandle, std::thread::JoinHandle<()>), StoreError> {
    let WriterParts {
        mut conn,
        checkpoint_conn,
        durability,
        branch_id,
        inventory,
        idempotency,
        state,
        fsync_duration,
    } = parts;
    // Durability is the syncer's job (see the module doc); the writer must never checkpoint.
    conn.pragma_update(None, "synchronous", "OFF")?;
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    // The writer touches few pages (the outbox's tail, the products being sold): 1 MiB of
    // cache is plenty, and the start-up load's pages need not stay resident (P9).
    conn.pragma_update(None, "cache_size", -1024)?;
    conn.execute_batch("PRAGMA shrink_memory")?;
    checkpoint_conn.pragma_update(None, "synchronous", "FULL")?;
    let wal_frames = Arc::new(AtomicI32::new(0));
    let frames = wal_frames.clone();
    conn.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, pages: std::os::raw::c_int| {
        frames.store(pages, Ordering::Relaxed);
        Ok(())
    }))?;
    let (tx, rx) = mpsc::unbounded_channel();
    let (sync_tx, sync_rx) = std::sync::mpsc::channel();
    let poisoned = Arc::new(AtomicBool::new(false));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let wake = Arc::new(WriterWake {
        queued: AtomicUsize::new(0),
        thread: OnceLock::new(),
    });
    let syncer = Syncer {
        wake_writer: wake.clone(),
        in_flight: in_flight.clone(),
        durability,
        inventory: inventory.clone(),
        idempotency,
        state: state.clone(),
        poisoned: poisoned.clone(),
        fsync_duration,
    };
    let syncer_thread = std::thread::Builder::new()
        .name("outbox-syncer".into())
        .spawn(move || syncer.run(sync_rx))
        .map_err(|e| StoreError::Corrupt(format!("start the syncer thread: {e}")))?;
    let writer = Writer {
        conn,
        in_flight,
        wake: wake.clone(),
        checkpoint_conn,
        wal_frames,
        branch_id,
        inventory,
        poisoned,
        last_seq: state.last_seq.load(Ordering::Acquire),
        syncer: sync_tx,
    };
    let join = std::thread::Builder::new()
        .name("outbox-writer".into())
        .spawn(move || writer.run(rx, syncer_thread))
        .map_err(|e| StoreError::Corrupt(format!("start the writer thread: {e}")))?;
    Ok((WriterHandle { tx, wake }, join))
}

/// What to do once the transaction is committed (or undo if it is not).
enum Pending {
    Sale {
        resp: SaleResponse,
        idem: Option<(InFlightGuard, Arc<str>, i64)>,
    },
    Adjust {
        seq: u64,
        product_id: String,
        delta: i64,
    },
    Pull {
        changes: Vec<Change>,
        next_cursor: u64,
        acked: Option<u64>,
    },
    SetAcked(u64),
    Purge {
        idempotency_before_ms: i64,
    },
    Seed(Vec<CatalogSeedItem>),
    Nothing,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::UnboundedReceiver<Envelope>, syncer_thread: std::thread::JoinHandle<()>) {
        let _ = self.wake.thread.set(std::thread::current());
        loop {
            let Some(first) = rx.blocking_recv() else { break };
            self.wake.job_taken();
            if let Some(stop) = self.one_batch(first, &mut rx) {
                if let Err(std::sync::mpsc::SendError(ToSyncer::Stop(reply))) =
                    self.syncer.send(ToSyncer::Stop(stop.reply))
                {
                    reply.send(Err(StoreError::WriterGone));
                }
                break;
            }
        }
        let Writer {
            conn, syncer, last_seq, ..
        } = self;
        drop(syncer);
        let _ = syncer_thread.join();
        // If this is the last connection to close, SQLite checkpoints the WAL into the
        // database and deletes it: that checkpoint must sync.
        if let Err(e) = conn.pragma_update(None, "synchronous", "FULL") {
            tracing::warn!(error = %e, "cannot set synchronous=FULL on the writer before closing");
        }
        drop(conn);
        tracing::info!(last_seq, "outbox writer flushed and stopped");
    }

    /// Opens a transaction with `first`, applies what arrives while the syncer is busy,
    /// commits and hands the batch to the syncer. Returns the Shutdown job if one came (the
    /// jobs before it are in this batch).
    fn one_batch(&mut self, first: Envelope, rx: &mut mpsc::UnboundedReceiver<Envelope>) -> Option<Envelope> {
        let now_ms = clock::now_millis();
        let mut ctx = BatchCtx {
            now_ms,
            occurred_at: clock::millis_to_rfc3339(now_ms),
            sold: HashMap::new(),
            payload: String::new(),
        };
        let mut seq = self.last_seq;
        let mut replies = Vec::with_capacity(64);
        let mut pendings = Vec::with_capacity(64);
        // Reservations are taken out of the jobs first so that, whatever fails, they can be
        // given back.
        let mut reserved: Vec<Vec<Reserved>> = Vec::with_capacity(64);
        let mut stop = None;
        // The open transaction, or why this batch fails (the jobs are still collected, so
        // every one of them is answered and its stock given back).
        let mut open: Result<Transaction<'_>, StoreError> = if self.poisoned.load(Ordering::Acquire) {
            Err(StoreError::SyncFailed(POISONED.into()))
        } else {
            self.conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(StoreError::from)
        };
        let mut next = Some(first);
        loop {
            if let Some(env) = next.take() {
                if matches!(env.job, Job::Shutdown) {
                    stop = Some(env);
                    break;
                }
                let mut job = env.job;
                let r = job.take_reserved();
                if let Ok(t) = &open {
                    match apply(t, &self.branch_id, &mut seq, &mut ctx, job, &r) {
                        Ok(p) => pendings.push(p),
                        // Dropping the transaction rolls it back.
                        Err(e) => open = Err(e),
                    }
                }
                reserved.push(r);
                replies.push(env.reply);
                if replies.len() >= MAX_BATCH {
                    break;
                }
            }
            if let Ok(env) = rx.try_recv() {
                self.wake.job_taken();
                next = Some(env);
                continue;
            }
            // Nothing waiting. Commit now if the syncer could take the batch at once;
            // otherwise anything that arrives before it is free joins this batch.
            if open.is_err() || self.in_flight.load(Ordering::Acquire) == 0 {
                break;
            }
            // Until the syncer is free or WAKE_EVERY jobs wait (an unpark that came before
            // this park makes it return at once; a spurious return only loops).
            std::thread::park();
        }
        if replies.is_empty() {
            return stop;
        }
        let result = open.and_then(|tx| {
            for (product_id, quantity) in &ctx.sold {
                add_stock(&tx, product_id, -quantity)?;
            }
            if seq != self.last_seq {
                store::set_meta(&tx, "last_seq", seq)?;
            }
            crate::failpoints::before_commit()?;
            tx.commit()?;
            Ok(())
        });
        match result {
            Ok(()) => {
                let added_events = seq != self.last_seq;
                self.last_seq = seq;
                let committed = Committed {
                    through_seq: seq,
                    added_events,
                    pendings,
                    reserved,
                    replies,
                };
                self.in_flight.fetch_add(1, Ordering::AcqRel);
                if let Err(std::sync::mpsc::SendError(ToSyncer::Batch(c))) =
                    self.syncer.send(ToSyncer::Batch(committed))
                {
                    // Only if the syncer thread died: the batch may or may not be durable.
                    for reply in c.replies {
                        reply.send(Err(StoreError::WriterGone));
                    }
                }
                if self.wal_frames.load(Ordering::Relaxed) >= CATCH_UP_FRAMES {
                    self.catch_up_checkpoint();
                }
            }
            Err(e) => {
                // The transaction (if any) was dropped: rolled back, nothing happened.
                tracing::error!(error = %e, jobs = replies.len(), "outbox commit failed; nothing of this batch was stored");
                for r in &reserved {
                    self.inventory.release(r);
                }
                for reply in replies {
                    reply.send(Err(match &e {
                        StoreError::SyncFailed(m) => StoreError::SyncFailed(m.clone()),
                        other => StoreError::Corrupt(other.to_string()),
                    }));
                }
            }
        }
        stop
    }

    /// Copies the WAL into the database file (both synced, on the FULL connection) while the
    /// writer is between transactions, so its next transaction starts the WAL over.
    fn catch_up_checkpoint(&mut self) {
        match self
            .checkpoint_conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0))
        {
            Ok(_) => self.wal_frames.store(0, Ordering::Relaxed),
            // The WAL only grows a little more; the next commit tries again.
            Err(e) => tracing::warn!(error = %e, "catch-up checkpoint failed"),
        }
    }
}

/// The syncer thread: fsync, then publish, apply in memory and answer, batch by batch in
/// commit order.
struct Syncer {
    /// The writer may be holding a batch open until this syncer is free.
    wake_writer: Arc<WriterWake>,
    in_flight: Arc<AtomicUsize>,
    durability: Box<dyn Durability>,
    inventory: Arc<Inventory>,
    idempotency: Arc<Idempotency>,
    state: Arc<OutboxState>,
    poisoned: Arc<AtomicBool>,
    fsync_duration: prometheus::Histogram,
}

impl Syncer {
    fn run(mut self, rx: std::sync::mpsc::Receiver<ToSyncer>) {
        let mut queue = Vec::new();
        while let Ok(first) = rx.recv() {
            queue.push(first);
            // Everything committed while the last fsync ran shares the next one.
            while let Ok(m) = rx.try_recv() {
                queue.push(m);
            }
            let synced: Result<(), String> = if self.poisoned.load(Ordering::Acquire) {
                Err(POISONED.into())
            } else {
                let started = std::time::Instant::now();
                let synced = self.durability.sync();
                self.fsync_duration.observe(started.elapsed().as_secs_f64());
                synced.map_err(|e| {
                    self.poisoned.store(true, Ordering::Release);
                    tracing::error!(error = %e, "fsync of the outbox WAL failed; the store takes no more writes until the branch restarts");
                    format!("fsync of the WAL failed: {e}")
                })
            };
            let mut stop = None;
            let mut answered = 0;
            for m in queue.drain(..) {
                match m {
                    ToSyncer::Batch(c) => {
                        self.finish(c, &synced);
                        answered += 1;
                    }
                    ToSyncer::Stop(reply) => stop = Some(reply),
                }
            }
            if answered > 0 && self.in_flight.fetch_sub(answered, Ordering::AcqRel) == answered {
                self.wake_writer.wake();
            }
            if let Some(reply) = stop {
                reply.send(Ok(Reply::Done));
                return;
            }
        }
    }

    fn finish(&self, c: Committed, synced: &Result<(), String>) {
        if let Err(e) = synced {
            // Stock stays reserved: the sale may be on disk after all.
            for reply in c.replies {
                reply.send(Err(StoreError::SyncFailed(e.clone())));
            }
            return;
        }
        self.state.last_seq.store(c.through_seq, Ordering::Release);
        let outcomes: Vec<Reply> = c
            .pendings
            .into_iter()
            .zip(c.reserved)
            .map(|(p, r)| self.after_commit(p, r))
            .collect();
        if c.added_events {
            self.state.new_events.notify_one();
        }
        answer_all(c.replies.into_iter().zip(outcomes));
    }

    fn after_commit(&self, p: Pending, reserved: Vec<Reserved>) -> Reply {
        match p {
            Pending::Sale { resp, idem } => {
                if let Some((guard, response, created_ms)) = idem {
                    self.idempotency.record(
                        guard.key.clone(),
                        Record {
                            fingerprint: guard.fingerprint.clone(),
                            response,
                            created_ms,
                        },
                    );
                    drop(guard);
                }
                Reply::Sale(resp)
            }
            Pending::Adjust { seq, product_id, delta } => {
                let stock = match reserved.first() {
                    Some(r) => r.remaining,
                    None => self.inventory.add(&product_id, delta).unwrap_or(0),
                };
                Reply::Adjust(AdjustmentResponse { seq, stock })
            }
            Pending::Pull {
                changes,
                next_cursor,
                acked,
            } => {
                for c in &changes {
                    match c.kind {
                        ChangeKind::Product => self.inventory.upsert_product(
                            &c.product_id,
                            c.price_cents.unwrap_or(0),
                            c.version.unwrap_or(0),
                        ),
                        ChangeKind::Allocation => {
                            let q = c.quantity.unwrap_or(0);
                            if self.inventory.add(&c.product_id, q).is_none() {
                                self.inventory.insert(
                                    &c.product_id,
                                    Item {
                                        price_cents: 0,
                                        version: 0,
                                        stock: q,
                                    },
                                );
                            }
                        }
                    }
                }
                self.state.pull_cursor.store(next_cursor, Ordering::Release);
                if let Some(a) = acked {
                    self.state.acked_through.store(a, Ordering::Release);
                }
                Reply::Done
            }
            Pending::SetAcked(a) => {
                self.state.acked_through.store(a, Ordering::Release);
                Reply::Done
            }
            Pending::Purge { idempotency_before_ms } => {
                self.idempotency.purge_before(idempotency_before_ms);
                Reply::Done
            }
            Pending::Seed(items) => {
                for it in items {
                    self.inventory.insert(
                        it.product_id.as_str(),
                        Item {
                            price_cents: it.price_cents,
                            version: 0,
                            stock: it.stock,
                        },
                    );
                }
                Reply::Done
            }
            Pending::Nothing => Reply::Done,
        }
    }
}

fn raise_seq_floor(seq: &mut u64, central_applied_through: u64) {
    if central_applied_through > *seq {
        tracing::warn!(
            central = central_applied_through,
            local = *seq,
            "central is ahead of this store (restored from an older copy?); new events continue above central's applied_through"
        );
        *seq = central_applied_through;
    }
}

fn insert_event(tx: &Transaction, ev: &Event, now_ms: i64) -> Result<(), StoreError> {
    let payload = serde_json::to_string(ev).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let kind = match ev.kind {
        EventKind::Sale => "sale",
        EventKind::Adjustment => "adjustment",
    };
    insert_payload(tx, ev.seq, kind, now_ms, &payload)
}

fn insert_payload(tx: &Transaction, seq: u64, kind: &str, now_ms: i64, payload: &str) -> Result<(), StoreError> {
    tx.prepare_cached("INSERT INTO outbox(seq, kind, created_ms, payload) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![seq as i64, kind, now_ms, payload])?;
    Ok(())
}

/// `{branch_id}-{seq:010}`, the sale id, without `format!`'s machinery (once per sale).
fn sale_id(branch_id: &str, seq: u64) -> String {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(seq);
    let mut id = String::with_capacity(branch_id.len() + 1 + digits.len().max(10));
    id.push_str(branch_id);
    id.push('-');
    for _ in digits.len()..10 {
        id.push('0');
    }
    id.push_str(digits);
    id
}

/// A sale event's fields, borrowed from the job being applied.
struct SalePayload<'a> {
    seq: u64,
    occurred_at: &'a str,
    sale_id: &'a str,
    /// (product_id, quantity, unit_price_cents)
    lines: &'a [(&'a str, i64, i64)],
    total_cents: i64,
    cashier_id: Option<&'a str>,
}

/// A sale's outbox payload: byte for byte what `serde_json::to_string` makes of the same
/// [`Event`] (a test holds the two equal, escapes included), which the relay ships and
/// central parses. Written by hand because it runs once per sale on the writer thread, the
/// one thread every sale waits for: through serde_json it cost about 3.4k instructions
/// (callgrind), most of them escaping the constant keys, plus the `Event`'s clones.
fn write_sale_payload(buf: &mut String, p: &SalePayload<'_>) {
    let mut n = itoa::Buffer::new();
    buf.push_str("{\"seq\":");
    buf.push_str(n.format(p.seq));
    buf.push_str(",\"kind\":\"sale\",\"occurred_at\":");
    push_json_str(buf, p.occurred_at);
    buf.push_str(",\"sale_id\":");
    push_json_str(buf, p.sale_id);
    buf.push_str(",\"lines\":[");
    for (i, (product_id, quantity, unit_price_cents)) in p.lines.iter().enumerate() {
        if i > 0 {
            buf.push(',');
        }
        buf.push_str("{\"product_id\":");
        push_json_str(buf, product_id);
        buf.push_str(",\"quantity\":");
        buf.push_str(n.format(*quantity));
        buf.push_str(",\"unit_price_cents\":");
        buf.push_str(n.format(*unit_price_cents));
        buf.push('}');
    }
    buf.push_str("],\"total_cents\":");
    buf.push_str(n.format(p.total_cents));
    if let Some(c) = p.cashier_id {
        buf.push_str(",\"cashier_id\":");
        push_json_str(buf, c);
    }
    buf.push('}');
}

/// A JSON string as serde_json writes it. Ids and timestamps never need escaping, so they
/// are checked once and copied; anything else (a cashier id with quotes, say) goes through
/// serde_json's own escaper.
fn push_json_str(buf: &mut String, s: &str) {
    if s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        buf.push_str(&serde_json::Value::from(s).to_string());
    } else {
        buf.push('"');
        buf.push_str(s);
        buf.push('"');
    }
}

fn add_stock(tx: &Transaction, product_id: &str, delta: i64) -> Result<usize, StoreError> {
    Ok(tx
        .prepare_cached("UPDATE products SET stock = stock + ?1 WHERE product_id = ?2")?
        .execute(params![delta, product_id])?)
}

fn adjustment_event(seq: u64, occurred_at: &str, product_id: &ProductId, delta: i64, reason: &str) -> Event {
    Event {
        seq,
        kind: EventKind::Adjustment,
        occurred_at: occurred_at.to_string(),
        sale_id: None,
        lines: None,
        total_cents: None,
        cashier_id: None,
        product_id: Some(product_id.clone()),
        quantity_delta: Some(delta),
        reason: Some(reason.to_string()),
    }
}

/// What the jobs of one transaction share.
struct BatchCtx {
    now_ms: i64,
    /// Every event of a batch carries the batch's commit time; formatted once.
    occurred_at: String,
    /// Units sold per product in this batch, written to `products` once at the end.
    sold: HashMap<String, i64>,
    /// Reused by every sale of the batch for its payload.
    payload: String,
}

/// Applies one job inside the open transaction; returns what to do after the commit.
fn apply(
    tx: &Transaction,
    branch_id: &str,
    seq: &mut u64,
    ctx: &mut BatchCtx,
    job: Job,
    reserved: &[Reserved],
) -> Result<Pending, StoreError> {
    let now_ms = ctx.now_ms;
    match job {
        Job::Sale(s) => {
            *seq += 1;
            let occurred_at = ctx.occurred_at.clone();
            let sale_id = sale_id(branch_id, *seq);
            let mut lines_out = Vec::with_capacity(s.lines.len());
            let mut ev_lines: Vec<(&str, i64, i64)> = Vec::with_capacity(s.lines.len());
            let mut total: i64 = 0;
            for l in &s.lines {
                let r = reserved
                    .iter()
                    .find(|r| r.product_id == l.product_id.as_str())
                    .ok_or_else(|| StoreError::Corrupt(format!("sale line {} has no reservation", l.product_id)))?;
                let line_total = r.unit_price_cents.saturating_mul(l.quantity);
                total = total.saturating_add(line_total);
                lines_out.push(SaleLineOut {
                    product_id: l.product_id.to_string(),
                    quantity: l.quantity,
                    unit_price_cents: r.unit_price_cents,
                    line_total_cents: line_total,
                    remaining_stock: r.remaining,
                });
                ev_lines.push((l.product_id.as_str(), l.quantity, r.unit_price_cents));
            }
            // Summed per product and written once per batch: under load many sales of a
            // batch sell the same few products.
            for r in reserved {
                match ctx.sold.get_mut(r.product_id.as_str()) {
                    Some(q) => *q += r.quantity,
                    None => {
                        ctx.sold.insert(r.product_id.clone(), r.quantity);
                    }
                }
            }
            ctx.payload.clear();
            write_sale_payload(
                &mut ctx.payload,
                &SalePayload {
                    seq: *seq,
                    occurred_at: &occurred_at,
                    sale_id: &sale_id,
                    lines: &ev_lines,
                    total_cents: total,
                    cashier_id: s.cashier_id.as_deref(),
                },
            );
            insert_payload(tx, *seq, "sale", now_ms, &ctx.payload)?;
            let resp = SaleResponse {
                sale_id,
                branch_id: branch_id.to_string(),
                seq: *seq,
                lines: lines_out,
                total_cents: total,
                sold_at: occurred_at,
                cashier_id: s.cashier_id,
                sync: "pending".into(),
            };
            let idem = match s.idempotency {
                Some(guard) => {
                    let body = serde_json::to_string(&resp).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    tx.prepare_cached("INSERT OR REPLACE INTO idempotency(key, fingerprint, created_ms, response) VALUES (?1, ?2, ?3, ?4)")?
                        .execute(params![guard.key, guard.fingerprint, now_ms, body])?;
                    Some((guard, Arc::from(body), now_ms))
                }
                None => None,
            };
            Ok(Pending::Sale { resp, idem })
        }
        Job::Adjust(a) => {
            *seq += 1;
            let occurred_at = ctx.occurred_at.clone();
            let n = add_stock(tx, a.product_id.as_str(), a.delta)?;
            if n == 0 {
                return Err(StoreError::Corrupt(format!(
                    "adjustment of unknown product {}",
                    a.product_id
                )));
            }
            insert_event(
                tx,
                &adjustment_event(*seq, &occurred_at, &a.product_id, a.delta, &a.reason),
                now_ms,
            )?;
            Ok(Pending::Adjust {
                seq: *seq,
                product_id: a.product_id.into_string(),
                delta: a.delta,
            })
        }
        Job::Pull(p) => {
            for c in &p.changes {
                match c.kind {
                    ChangeKind::Product => {
                        tx.prepare_cached(
                            "INSERT INTO products(product_id, name, price_cents, version, stock) VALUES (?1, ?2, ?3, ?4, 0)
                             ON CONFLICT(product_id) DO UPDATE SET name = excluded.name, price_cents = excluded.price_cents,
                                version = excluded.version WHERE excluded.version > products.version",
                        )?
                        .execute(params![
                            c.product_id,
                            c.name.as_deref().unwrap_or(&c.product_id),
                            c.price_cents.unwrap_or(0),
                            c.version.unwrap_or(0) as i64
                        ])?;
                    }
                    ChangeKind::Allocation => {
                        let q = c.quantity.unwrap_or(0);
                        if add_stock(tx, &c.product_id, q)? == 0 {
                            tx.prepare_cached(
                                "INSERT INTO products(product_id, name, price_cents, version, stock) VALUES (?1, ?1, 0, 0, ?2)",
                            )?
                            .execute(params![c.product_id, q])?;
                        }
                    }
                }
            }
            store::set_meta(tx, "pull_cursor", p.next_cursor)?;
            // Central's applied_through: events up to it are at central. A branch whose data
            // is older than central's view (restored copy) jumps its seq past it.
            let mut acked = None;
            raise_seq_floor(seq, p.applied_through);
            let current = store::get_meta(tx, "acked_through")?;
            if p.applied_through > current {
                store::set_meta(tx, "acked_through", p.applied_through)?;
                acked = Some(p.applied_through);
            }
            Ok(Pending::Pull {
                changes: p.changes,
                next_cursor: p.next_cursor,
                acked,
            })
        }
        Job::SetAcked(a) => {
            // Central stands at `a`. Normally a <= our last seq; if central is ahead (this
            // store is an older copy), our next seq must be above it or central would drop
            // new sales as duplicates.
            raise_seq_floor(seq, a);
            store::set_meta(tx, "acked_through", a)?;
            Ok(Pending::SetAcked(a))
        }
        Job::Purge {
            outbox_before_ms,
            idempotency_before_ms,
        } => {
            let acked = store::get_meta(tx, "acked_through")?;
            tx.prepare_cached("DELETE FROM outbox WHERE seq <= ?1 AND created_ms < ?2")?
                .execute(params![acked as i64, outbox_before_ms])?;
            tx.prepare_cached("DELETE FROM idempotency WHERE created_ms < ?1")?
                .execute([idempotency_before_ms])?;
            Ok(Pending::Purge { idempotency_before_ms })
        }
        Job::Shutdown => Ok(Pending::Nothing),
        Job::Seed(items) => {
            if !store::is_empty(tx)? {
                tracing::info!("store already has data; --catalog ignored");
                return Ok(Pending::Nothing);
            }
            let occurred_at = ctx.occurred_at.clone();
            for it in &items {
                tx.prepare_cached(
                    "INSERT INTO products(product_id, name, price_cents, version, stock) VALUES (?1, ?2, ?3, 0, ?4)",
                )?
                .execute(params![it.product_id.as_str(), it.name, it.price_cents, it.stock])?;
                // The seed stock travels to central as adjustments so its ledger agrees; in
                // pieces of at most MAX_QUANTITY, the most one adjustment may carry, or
                // central would reject the event and the branch's sync would stop there.
                let mut left = it.stock;
                while left > 0 {
                    let piece = left.min(colmena_shared::ids::MAX_QUANTITY);
                    left -= piece;
                    *seq += 1;
                    insert_event(
                        tx,
                        &adjustment_event(*seq, &occurred_at, &it.product_id, piece, "initial_catalog"),
                        now_ms,
                    )?;
                }
            }
            store::set_meta(tx, "seeded", 1)?;
            Ok(Pending::Seed(items))
        }
    }
}

#[cfg(test)]
mod tests {
    //! The pipeline's ordering, with the fsync held or failed on purpose. (That an answered
    //! sale really is on disk after a power cut is `tests/failpoints.rs`.)
    use super::*;
    use colmena_shared::wire::EventLine;
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
        dir: PathBuf,
    }

    impl Rig {
        /// Drops the last handle (the threads flush and stop) and removes the store.
        fn finish(self) {
            drop(self.writer);
            self.thread.join().unwrap();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn a_sale_payload_is_byte_for_byte_what_serde_json_makes_of_the_event() {
        let awkward = [
            "ana",
            "a \"quoted\" \\ name",
            "only \"quotes\"",
            "only \\ backslash",
            "tab\tnew\nline\r\u{8}\u{c}",
            "ctl\u{1}\u{1f}\u{7f}",
            "ñandú 收银员 🙂",
            "",
        ];
        let mut buf = String::new();
        for (i, cashier) in awkward.iter().map(Some).chain([None]).enumerate() {
            let seq = [1, 42, 9_999_999_999, 10_000_000_000, u64::MAX / 2][i % 5];
            let lines: Vec<(&str, i64, i64)> = (0..=i)
                .map(|k| (["P1", "a.b_c-9", "Z"][k % 3], k as i64 + 1, 250 * k as i64))
                .collect();
            let total = lines.iter().map(|(_, q, u)| q * u).sum();
            let id = sale_id("CUS", seq);
            let ev = Event {
                seq,
                kind: EventKind::Sale,
                occurred_at: "2026-12-02T16:01:05.123Z".into(),
                sale_id: Some(id.clone()),
                lines: Some(
                    lines
                        .iter()
                        .map(|(p, q, u)| EventLine {
                            product_id: ProductId::parse(p).unwrap(),
                            quantity: *q,
                            unit_price_cents: *u,
                        })
                        .collect(),
                ),
                total_cents: Some(total),
                cashier_id: cashier.map(|c| c.to_string()),
                product_id: None,
                quantity_delta: None,
                reason: None,
            };
            buf.clear();
            write_sale_payload(
                &mut buf,
                &SalePayload {
                    seq,
                    occurred_at: &ev.occurred_at,
                    sale_id: &id,
                    lines: &lines,
                    total_cents: total,
                    cashier_id: cashier.copied(),
                },
            );
            assert_eq!(buf, serde_json::to_string(&ev).unwrap(), "cashier {cashier:?}");
            assert_eq!(serde_json::from_str::<Event>(&buf).unwrap(), ev);
        }
    }

    #[test]
    fn sale_ids_are_zero_padded_to_ten_digits_as_format_would() {
        for seq in [0, 1, 42, 999_999_999, 9_999_999_999, 10_000_000_000, u64::MAX] {
            assert_eq!(sale_id("CUS", seq), format!("CUS-{seq:010}"));
        }
    }

    fn rig(tag: &str) -> Rig {
        let dir = std::env::temp_dir().join(format!("colmena-outbox-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let conn = store::open(&dir).unwrap();
        store::migrate(&conn).unwrap();
        let (permits, rx) = std_mpsc::channel();
        let syncs = Arc::new(AtomicU64::new(0));
        let state = Arc::new(OutboxState::default());
        let (writer, thread) = spawn(WriterParts {
            conn,
            checkpoint_conn: store::open(&dir).unwrap(),
            durability: Box::new(Gated {
                permits: rx,
                syncs: syncs.clone(),
            }),
            branch_id: "CUS".into(),
            inventory: Arc::new(Inventory::default()),
            idempotency: Arc::new(Idempotency::load(Vec::new())),
            state: state.clone(),
            fsync_duration: prometheus::Histogram::with_opts(prometheus::HistogramOpts::new("fsync", "test")).unwrap(),
        })
        .unwrap();
        Rig {
            writer,
            thread,
            state,
            permits,
            syncs,
            dir,
        }
    }

    fn adjust(delta: i64) -> Job {
        Job::Adjust(AdjustJob {
            product_id: ProductId::parse("P1").unwrap(),
            delta,
            reason: "recount".into(),
            reserved: None,
        })
    }

    fn seed() -> Job {
        Job::Seed(vec![CatalogSeedItem {
            product_id: ProductId::parse("P1").unwrap(),
            name: "uno".into(),
            price_cents: 100,
            stock: 5,
        }])
    }

    /// Submits from another thread; the receiver yields the answer when it comes.
    fn submit(w: &WriterHandle, job: Job) -> std_mpsc::Receiver<Result<Reply, StoreError>> {
        let (tx, rx) = std_mpsc::channel();
        let w = w.clone();
        std::thread::spawn(move || {
            let _ = tx.send(w.submit_blocking(job));
        });
        rx
    }

    #[test]
    fn a_commit_is_answered_and_published_only_after_its_fsync() {
        let r = rig("ordering");
        let pending = submit(&r.writer, seed());
        // Committed (the writer moved on), but the fsync is held: no answer, and the
        // relay's bound has not moved.
        assert!(
            pending.recv_timeout(Duration::from_millis(300)).is_err(),
            "answered before the fsync"
        );
        assert_eq!(r.state.last_seq.load(Ordering::Acquire), 0);
        r.permits.send(true).unwrap();
        let reply = pending
            .recv_timeout(Duration::from_secs(5))
            .expect("answered after the fsync");
        assert!(matches!(reply, Ok(Reply::Done)), "{reply:?}");
        assert_eq!(r.state.last_seq.load(Ordering::Acquire), 1, "published with the fsync");
        assert_eq!(r.syncs.load(Ordering::SeqCst), 1);
        r.finish();
    }

    #[test]
    fn a_backup_is_published_only_once_every_event_in_it_is_durable() {
        let r = rig("backup");
        let backups = colmena_shared::backup::Backups::new(r.dir.join("backups"), "sucursal", 5);
        let reader = std::sync::Mutex::new(store::open(&r.dir).unwrap());
        let seeded = submit(&r.writer, seed());
        r.permits.send(true).unwrap();
        assert!(matches!(
            seeded.recv_timeout(Duration::from_secs(5)),
            Ok(Ok(Reply::Done))
        ));
        // Seq 2 is committed — any reader sees it — but its fsync is held.
        let held = submit(&r.writer, adjust(3));
        let committed = || store::get_meta(&reader.lock().unwrap(), "last_seq").unwrap();
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
        assert!(matches!(
            held.recv_timeout(Duration::from_secs(5)),
            Ok(Ok(Reply::Adjust(_)))
        ));
        let (_, path) = backups.get(&info.id).unwrap();
        let copy = Connection::open(path).unwrap();
        assert_eq!(store::get_meta(&copy, "last_seq").unwrap(), 2);
        r.finish();
    }

    #[test]
    fn jobs_arriving_while_an_fsync_runs_share_the_next_fsync() {
        let r = rig("sharing");
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
            assert!(matches!(
                rx.recv_timeout(Duration::from_secs(5)).unwrap(),
                Ok(Reply::Adjust(_))
            ));
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
        let r = rig("eio");
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
        let stored = store::get_meta(&store::open(&r.dir).unwrap(), "last_seq").unwrap();
        assert_eq!(stored, 2, "the refused job was not committed");
        assert_eq!(
            r.state.last_seq.load(Ordering::Acquire),
            1,
            "nothing after the failure is published"
        );
        r.finish();
    }

    #[test]
    fn shutdown_answers_after_every_earlier_job_is_durable() {
        let r = rig("shutdown");
        let sale = submit(&r.writer, seed());
        // Committed and held at the syncer before the Shutdown is even sent (the two
        // submitting threads would otherwise race).
        std::thread::sleep(Duration::from_millis(200));
        let stop = submit(&r.writer, Job::Shutdown);
        assert!(
            stop.recv_timeout(Duration::from_millis(300)).is_err(),
            "stopped before the fsync"
        );
        r.permits.send(true).unwrap();
        r.permits.send(true).unwrap();
        assert!(sale.recv_timeout(Duration::from_secs(5)).unwrap().is_ok());
        assert!(matches!(
            stop.recv_timeout(Duration::from_secs(5)).unwrap(),
            Ok(Reply::Done)
        ));
        // The threads already stopped on the Shutdown; this only joins and cleans up.
        r.finish();
    }

    #[test]
    fn handlers_routed_through_their_worker_threads_dispatcher_all_get_their_answers() {
        let r = rig("dispatch");
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
        for reply in &replies {
            assert!(matches!(reply, Ok(Reply::Adjust(_))), "{reply:?}");
        }
        assert!(
            ROUTE.with(|c| c.borrow().is_some()),
            "the dispatcher was started on this thread"
        );
        r.finish();
    }

    #[test]
    fn answers_go_straight_to_the_handler_when_its_dispatcher_is_gone() {
        let (route_tx, route_rx) = mpsc::unbounded_channel::<Vec<Answer>>();
        drop(route_rx);
        let (tx, mut rx) = oneshot::channel();
        let replier = Replier {
            tx,
            route: Some(Route(route_tx)),
        };
        answer_all(std::iter::once((replier, Reply::Done)));
        assert!(matches!(rx.try_recv(), Ok(Ok(Reply::Done))));
    }
}
