//! The writer thread: the only code that writes the branch's store.
//!
//! It opens a transaction, applies every command that is waiting, and — while the syncer is
//! still busy with the previous batch — goes on applying commands as they arrive (up to
//! [`MAX_BATCH`]). As soon as the syncer is free it commits, *without* an fsync (its
//! connection runs `synchronous=OFF`), and hands the committed batch over (see
//! [`super::syncer`]).
//!
//! Invariants:
//! - seqs are assigned here, in commit order, 1, 2, 3… without gaps; `meta.last_seq` moves in
//!   the same transaction, so a seq is never reused even after a crash or a purge.
//! - The writer connection never checkpoints (`wal_autocheckpoint=0`, and `synchronous=FULL`
//!   again before it closes): a checkpoint without syncs could let the WAL restart over
//!   frames that are in neither a synced WAL nor a synced database file. Checkpoints run on
//!   `synchronous=FULL` connections only — the background checkpointer and, when the WAL
//!   passes [`CATCH_UP_FRAMES`], the writer's own checkpoint connection between batches.
//! - If the commit fails, *nothing* of the batch happened: every command is answered
//!   `StorageUnavailable`, and the writer itself gives back the stock its commands reserved
//!   (so that holds even if the waiting handler was cancelled).
//! - The threads end when every handle is dropped or on [`super::Shutdown`], after finishing the
//!   commands they have: that is the graceful-shutdown flush.
use super::apply::{apply, BatchCtx, Pending, TillPending};
use super::commands::{Command, Op};
use super::db::{Result, StoreError};
use super::reply::{local_route, Replier, Route, Unanswered};
use super::shifts::ShiftBatch;
use super::syncer::{Committed, ToSyncer, POISONED};
use super::{meta, products};
use crate::inventory::{Inventory, Reserved};
use colmena_shared::clock;
use rusqlite::{Connection, Transaction};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::sync::{mpsc, oneshot};

/// Most commands in one transaction: bounds commit latency under a storm.
pub const MAX_BATCH: usize = 2048;

/// WAL size (pages) at which the writer checkpoints between two batches, so the WAL restarts
/// from its beginning even under a load that never pauses (SQLite's own auto-checkpoint
/// default; the background checkpointer has usually copied most of it already).
pub const CATCH_UP_FRAMES: i32 = 1000;

/// Commands waiting that wake the writer while the syncer is busy (see [`WriterWake`]): a
/// few wake-ups per fsync under load instead of one per sale.
pub const WAKE_EVERY: usize = 16;

/// Wakes the writer thread while it holds a batch open for a busy syncer: when the syncer
/// is free, or once [`WAKE_EVERY`] commands wait. Waking it for every command instead cost a
/// futex wake in the handler and a context switch in the writer per sale (one futex call
/// per sale under strace), and the writer gains nothing by applying a command early.
pub(super) struct WriterWake {
    /// Commands sent and not yet taken by the writer.
    queued: AtomicUsize,
    /// The writer thread, once it runs.
    thread: OnceLock<std::thread::Thread>,
}

impl WriterWake {
    pub(super) fn new() -> WriterWake {
        WriterWake {
            queued: AtomicUsize::new(0),
            thread: OnceLock::new(),
        }
    }

    fn queued(&self) {
        if self.queued.fetch_add(1, Ordering::AcqRel) + 1 >= WAKE_EVERY {
            self.wake();
        }
    }

    fn taken(&self) {
        self.queued.fetch_sub(1, Ordering::AcqRel);
    }

    /// Cheap when the writer is not parked: no system call.
    pub(super) fn wake(&self) {
        if let Some(t) = self.thread.get() {
            t.unpark();
        }
    }
}

/// Cheap to clone; the writer thread stops when the last clone is dropped.
#[derive(Clone)]
pub struct WriterHandle {
    pub(super) tx: mpsc::UnboundedSender<Op>,
    pub(super) wake: Arc<WriterWake>,
}

impl WriterHandle {
    pub async fn submit<C: Command>(&self, cmd: C) -> Result<C::Reply> {
        self.send(cmd, None)?.await.map_err(|_| StoreError::WriterGone)?
    }

    /// [`submit`](Self::submit) for HTTP handlers, the hot path: the answer comes through
    /// this worker thread's dispatcher (see [`super::reply`]). Only from an actix-web
    /// handler — elsewhere there may be no `LocalSet` to run the dispatcher.
    pub async fn submit_from_handler<C: Command>(&self, cmd: C) -> Result<C::Reply> {
        self.send(cmd, Some(local_route()))?
            .await
            .map_err(|_| StoreError::WriterGone)?
    }

    /// For start-up code that runs before the async runtime serves requests, and tests.
    pub fn submit_blocking<C: Command>(&self, cmd: C) -> Result<C::Reply> {
        self.send(cmd, None)?
            .blocking_recv()
            .map_err(|_| StoreError::WriterGone)?
    }

    /// Queues the command; the receiver yields its answer.
    fn send<C: Command>(&self, cmd: C, route: Option<Route>) -> Result<oneshot::Receiver<Result<C::Reply>>> {
        let (reply, rx) = Replier::new(route);
        // Counted before it can be taken, so the count never goes below zero.
        self.wake.queued();
        self.tx.send(cmd.into_op(reply)).map_err(|_| {
            self.wake.taken();
            StoreError::WriterGone
        })?;
        Ok(rx)
    }
}

pub(super) struct Writer {
    pub conn: Connection,
    /// Batches handed to the syncer and not yet answered.
    pub in_flight: Arc<AtomicUsize>,
    pub wake: Arc<WriterWake>,
    /// `synchronous=FULL`, for the catch-up checkpoints.
    pub checkpoint_conn: Connection,
    /// WAL size in pages after the last commit (from SQLite's wal hook).
    pub wal_frames: Arc<AtomicI32>,
    pub branch_id: String,
    pub inventory: Arc<Inventory>,
    pub poisoned: Arc<AtomicBool>,
    pub last_seq: u64,
    pub syncer: std::sync::mpsc::Sender<ToSyncer>,
}

/// The commands collected for one transaction.
struct Batch {
    pendings: Vec<Pending>,
    /// Commands refused once the transaction failed (or that failed it).
    failed: Vec<Unanswered>,
    /// Every command's reserved units, whatever happened to it, so they can be given back.
    reserved: Vec<Vec<Reserved>>,
}

impl Writer {
    pub(super) fn run(mut self, mut rx: mpsc::UnboundedReceiver<Op>, syncer_thread: std::thread::JoinHandle<()>) {
        let _ = self.wake.thread.set(std::thread::current());
        loop {
            let Some(first) = rx.blocking_recv() else { break };
            self.wake.taken();
            if let Some(stop) = self.one_batch(first, &mut rx) {
                if let Err(std::sync::mpsc::SendError(ToSyncer::Stop(reply))) = self.syncer.send(ToSyncer::Stop(stop)) {
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
    /// commits and hands the batch to the syncer. Returns the Shutdown's replier if one came
    /// (the commands before it are in this batch).
    fn one_batch(&mut self, first: Op, rx: &mut mpsc::UnboundedReceiver<Op>) -> Option<Replier<()>> {
        let now_ms = clock::now_millis();
        let mut ctx = BatchCtx {
            branch_id: &self.branch_id,
            seq: self.last_seq,
            now_ms,
            occurred_at: clock::millis_to_rfc3339(now_ms),
            sold: HashMap::new(),
            payload: String::new(),
            shifts: ShiftBatch::default(),
        };
        let mut batch = Batch {
            pendings: Vec::with_capacity(64),
            failed: Vec::new(),
            reserved: Vec::with_capacity(64),
        };
        let mut stop = None;
        // The open transaction, or why this batch fails (the commands are still collected,
        // so every one of them is answered and its stock given back).
        let mut open: Result<Transaction<'_>> = if self.poisoned.load(Ordering::Acquire) {
            Err(StoreError::SyncFailed(POISONED.into()))
        } else {
            self.conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(StoreError::from)
        };
        let mut next = Some(first);
        loop {
            if let Some(mut op) = next.take() {
                if let Op::Shutdown(reply) = op {
                    stop = Some(reply);
                    break;
                }
                let r = op.take_reserved();
                match &open {
                    Ok(t) => match apply(t, &mut ctx, op, &r) {
                        Ok(p) => batch.pendings.push(p),
                        // Dropping the transaction rolls it back.
                        Err((e, unanswered)) => {
                            batch.failed.push(unanswered);
                            open = Err(e);
                        }
                    },
                    Err(_) => batch.failed.push(op.into_unanswered()),
                }
                batch.reserved.push(r);
                if batch.reserved.len() >= MAX_BATCH {
                    break;
                }
            }
            if let Ok(op) = rx.try_recv() {
                self.wake.taken();
                next = Some(op);
                continue;
            }
            // Nothing waiting. Commit now if the syncer could take the batch at once;
            // otherwise anything that arrives before it is free joins this batch.
            if open.is_err() || self.in_flight.load(Ordering::Acquire) == 0 {
                break;
            }
            // Until the syncer is free or WAKE_EVERY commands wait (an unpark that came
            // before this park makes it return at once; a spurious return only loops).
            std::thread::park();
        }
        if batch.reserved.is_empty() {
            return stop;
        }
        let seq = ctx.seq;
        let sold = std::mem::take(&mut ctx.sold);
        let shifts = std::mem::take(&mut ctx.shifts);
        let last_seq = self.last_seq;
        let result = open.and_then(|tx| {
            for (product_id, quantity) in &sold {
                products::add_stock(&tx, product_id, -quantity)?;
            }
            let totals = shifts.flush(&tx)?;
            if seq != last_seq {
                meta::set(&tx, meta::LAST_SEQ, seq)?;
            }
            crate::failpoints::before_commit()?;
            tx.commit()?;
            Ok(totals)
        });
        match result {
            Ok(totals) => {
                if !totals.is_empty() {
                    // Memory learns the shifts' new figures with the batch, once durable.
                    batch.pendings.push(Pending::Till(TillPending::Totals(totals)));
                    batch.reserved.push(Vec::new());
                }
                self.hand_to_syncer(seq, batch)
            }
            Err(e) => self.fail_batch(&e, batch),
        }
        stop
    }

    fn hand_to_syncer(&mut self, seq: u64, batch: Batch) {
        let added_events = seq != self.last_seq;
        self.last_seq = seq;
        let committed = Committed {
            through_seq: seq,
            added_events,
            pendings: batch.pendings,
            reserved: batch.reserved,
        };
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        if let Err(std::sync::mpsc::SendError(ToSyncer::Batch(c))) = self.syncer.send(ToSyncer::Batch(committed)) {
            // Only if the syncer thread died: the batch may or may not be durable.
            for p in c.pendings {
                p.unanswered().fail(StoreError::WriterGone);
            }
        }
        if self.wal_frames.load(Ordering::Relaxed) >= CATCH_UP_FRAMES {
            self.catch_up_checkpoint();
        }
    }

    /// The transaction (if any) was dropped: rolled back, nothing of the batch happened.
    fn fail_batch(&self, e: &StoreError, batch: Batch) {
        let jobs = batch.reserved.len();
        tracing::error!(error = %e, jobs, "outbox commit failed; nothing of this batch was stored");
        for r in &batch.reserved {
            self.inventory.release(r);
        }
        let refused = || match e {
            StoreError::SyncFailed(m) => StoreError::SyncFailed(m.clone()),
            other => StoreError::Corrupt(other.to_string()),
        };
        for p in batch.pendings {
            p.unanswered().fail(refused());
        }
        for u in batch.failed {
            u.fail(refused());
        }
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
