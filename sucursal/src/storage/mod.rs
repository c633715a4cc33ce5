//! The branch's storage: its SQLite file, and the single writer that makes every fact
//! durable before anyone is told it happened.
//!
//! Handlers hand a typed [`Command`] to the writer thread ([`WriterHandle::submit`]) and
//! wait for its own reply type. The writer applies every waiting command in one transaction
//! and commits *without* an fsync; the syncer thread then fdatasyncs the WAL — once for every
//! batch committed since its last sync — and only then applies the batch's effects in memory
//! and answers. So a `/sell` is answered 201 only after its event is on disk; hundreds of
//! sales share a commit and an fsync (group commit); and the writer's CPU work on batch N+1
//! overlaps the disk's work on batch N.
//!
//! Layout (each module's doc states its invariants):
//! - [`commands`]: what the writer can be asked, each command with its reply type;
//! - [`writer`]: the writer thread and its handle (batching, commit, checkpoints);
//! - [`syncer`]: the fsync, then publish, apply in memory, answer;
//! - [`durability`]: what "durable" means (the WAL's fdatasync);
//! - [`reply`]: how answers reach handlers (per-worker dispatch);
//! - [`apply`]: what each command writes in the transaction, and does after the fsync
//!   ([`apply_till`]: the till's commands; [`apply_stock`]: adjustments and counts;
//!   [`apply_transfers`]: dispatching and receiving transfers);
//! - [`payload`]: the events' JSON, as stored and shipped to central;
//! - [`db`]: the file, its schema and start-up load; [`meta`], [`products`], [`outbox`],
//!   [`idempotency`], [`users`], [`shifts`], [`returns`], [`transfers`]: each table's reads
//!   and writes;
//! - [`state`]: the durable counters the relay, `/status` and backups read.
//!
//! How to add an event kind: ARCHITECTURE.md, "Adding an event kind".
pub mod apply;
pub mod apply_stock;
pub mod apply_till;
pub mod apply_transfers;
pub mod commands;
pub mod db;
pub mod durability;
pub mod idempotency;
pub mod meta;
pub mod outbox;
pub mod payload;
pub mod products;
pub mod reply;
pub mod returns;
pub mod shifts;
pub mod state;
pub mod syncer;
pub mod transfers;
pub mod users;
pub mod writer;

#[cfg(test)]
mod tests;

pub use commands::{
    AdjustmentRecorded, ApplyPull, CloseShift, Command, CountRecorded, DispatchTransfer, OpenShift, Outcome, Purge,
    Receipt, ReceiveTransfer, RecordAck, RecordAdjustment, RecordCashMovement, RecordCount, RecordReturn, RecordSale,
    Refusal, Remember, SaleRecorded, Seed, Shutdown, TransferStep,
};
pub use db::{db_path, open, StoreError, APPLICATION_ID};
pub use durability::{Durability, WalFile};
pub use state::OutboxState;
pub use writer::WriterHandle;

use crate::idempotency::Idempotency;
use crate::inventory::Inventory;
use rusqlite::Connection;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

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
    /// The user directory, told of pulled users once they are durable.
    pub people: Arc<crate::people::People>,
    /// The open shifts in memory, told of each durable event on them.
    pub till: Arc<crate::till::Till>,
    /// The transfers in memory, told of each durable change to one.
    pub transfers: Arc<crate::transfers::Transfers>,
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
        people,
        till,
        transfers,
        fsync_duration,
    } = parts;
    // Durability is the syncer's job; the writer must never checkpoint (see `writer`).
    conn.pragma_update(None, "synchronous", "OFF")?;
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    // The writer touches few pages (the outbox's tail, the products being sold): 1 MiB of
    // cache is plenty, and the start-up load's pages need not stay resident.
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
    let wake = Arc::new(writer::WriterWake::new());
    let syncer = syncer::Syncer {
        wake_writer: wake.clone(),
        in_flight: in_flight.clone(),
        durability,
        inventory: inventory.clone(),
        idempotency,
        state: state.clone(),
        people,
        till,
        transfers,
        poisoned: poisoned.clone(),
        fsync_duration,
    };
    let syncer_thread = std::thread::Builder::new()
        .name("outbox-syncer".into())
        .spawn(move || syncer.run(sync_rx))
        .map_err(|e| StoreError::Corrupt(format!("start the syncer thread: {e}")))?;
    let writer = writer::Writer {
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
