//! The writer thread (group commit of savepointed jobs) and the reader pool.
use super::schema::open_connection;
use super::{Answer, Job, Msg, MAX_GROUP};
use crate::store::StoreError;
use rusqlite::Connection;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Mutex;
use tokio::sync::{mpsc, Semaphore};

/// Idle reader connections, opened on demand up to [`MAX_READERS`].
pub(super) struct Readers {
    pub(super) path: PathBuf,
    pub(super) idle: Mutex<Vec<Connection>>,
    pub(super) permits: Semaphore,
}

impl Readers {
    pub(super) fn open(&self) -> Result<Connection, StoreError> {
        let conn = open_connection(&self.path)?;
        conn.pragma_update(None, "query_only", true)?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(conn)
    }
    pub(super) fn take(&self) -> Result<Connection, StoreError> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match idle {
            Some(c) => Ok(c),
            None => self.open(),
        }
    }
    pub(super) fn put(&self, conn: Connection) {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).push(conn);
    }
}

/// The writer thread's state.
pub(super) struct Writer {
    pub(super) conn: Connection,
    pub(super) bufs: Buffers,
}

/// Reused for encoding sale lines and payments, so the apply loop does not allocate per
/// event.
#[derive(Default)]
pub(super) struct Buffers {
    pub(super) lines: Vec<u8>,
    pub(super) payments: Vec<u8>,
}

impl Writer {
    /// Group commit: the jobs waiting when the writer is free (up to [`MAX_GROUP`]) run in
    /// one transaction, each inside its own savepoint, and share one commit, i.e. one fsync.
    /// Nobody is answered before that commit returns, so a 200 still means "on disk"; a job
    /// that fails rolls back its own savepoint only, and a failed commit fails every job of
    /// the group (their branches push again, and the per-branch dedup keeps that exact).
    pub(super) fn run(&mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut waiting: VecDeque<Job> = VecDeque::new();
        let mut stopping = false;
        loop {
            if waiting.is_empty() {
                if stopping {
                    break;
                }
                match rx.blocking_recv() {
                    Some(Msg::Job(job)) => waiting.push_back(job),
                    Some(Msg::Stop) | None => break,
                }
            }
            while !stopping && waiting.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(Msg::Job(job)) => waiting.push_back(job),
                    Ok(Msg::Stop) => stopping = true,
                    Err(_) => break,
                }
            }
            self.run_group(&mut waiting);
        }
        // Fold the WAL back into the database so a stopped central leaves one tidy file.
        if let Err(e) = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
            tracing::warn!(error = %e, "checkpoint at close failed");
        }
    }

    /// Runs the jobs at the front of `waiting` as one group transaction and answers them.
    /// Jobs left in `waiting` (only when SQLite abandoned the transaction under a job) run in
    /// the next group, so no job ever runs outside a transaction it knows about.
    fn run_group(&mut self, waiting: &mut VecDeque<Job>) {
        // A job alone needs no outer transaction: its savepoint is the transaction, and SQLite
        // then keeps no statement journal for it. Without the outer transaction (also when
        // BEGIN failed: the error shows up again in the job itself) jobs run one at a time.
        let grouped = waiting.len() > 1 && self.conn.execute_batch("BEGIN IMMEDIATE").is_ok();
        let mut answers: Vec<Answer> = Vec::with_capacity(waiting.len());
        while let Some(job) = waiting.pop_front() {
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(self))) {
                Ok(answer) => answers.push(answer),
                // Its savepoint was rolled back as the panic unwound; its caller gets an error
                // when the dropped answer closes its channel.
                Err(_) => tracing::error!("a store write panicked; its savepoint was rolled back"),
            }
            // Without a group: one job per transaction. With one that SQLite rolled back
            // (disk full, I/O error): the rest wait for the next group.
            if !grouped || self.conn.is_autocommit() {
                break;
            }
        }
        let committed = if !grouped {
            // A job's savepoint ends its own transaction, even when it panics (the savepoint
            // rolls back as it drops); should one ever leave a transaction open, close it.
            if !self.conn.is_autocommit() {
                tracing::error!("a store write left its transaction open; rolled back");
                let _ = self.conn.execute_batch("ROLLBACK");
            }
            Ok(())
        } else if self.conn.is_autocommit() {
            Err(StoreError::Database("the transaction was rolled back by SQLite".into()))
        } else {
            self.conn.execute_batch("COMMIT").map_err(|e| {
                if !self.conn.is_autocommit() {
                    let _ = self.conn.execute_batch("ROLLBACK");
                }
                StoreError::from(e)
            })
        };
        // Answers are sent after the commit and outside any lock.
        for answer in answers {
            answer(committed.as_ref().map(|_| ()));
        }
    }
}
