//! Background WAL checkpoints for a store with one writer thread.
//!
//! A checkpoint copies committed WAL frames into the database file and fsyncs it. Left to
//! SQLite's auto-checkpoint it runs *inside* the writer's commit, so every few thousand
//! commits one group of waiting requests pays for it (a visible step in the p99). Here a
//! thread with its own connection runs `PRAGMA wal_checkpoint(PASSIVE)` every `every`,
//! never blocking the writer. Under a load that never pauses, the writer appends while
//! this thread copies, so the WAL never fully empties here: the writer must still
//! checkpoint now and then between its own transactions (central's writer keeps SQLite's
//! auto-checkpoint; the branch's writer, whose connection does not sync, runs it on a
//! separate `synchronous=FULL` connection), so its next transaction restarts the WAL from
//! the beginning, bounding the file. By then there is little left to copy.
//!
//! The connection given here must be `synchronous=FULL` (or NORMAL): a checkpoint's syncs
//! are what make the copied frames durable in the database file before the WAL restarts
//! over them.
use rusqlite::Connection;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

pub struct Checkpointer {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: std::thread::JoinHandle<()>,
}

impl Checkpointer {
    /// Starts the thread on `conn` (a connection of its own to the store).
    pub fn start(conn: Connection, every: Duration) -> std::io::Result<Checkpointer> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                let mut failing = false;
                loop {
                    {
                        let (lock, cv) = &*flag;
                        let stopped = lock.lock().unwrap_or_else(|e| e.into_inner());
                        let (stopped, _) = cv.wait_timeout(stopped, every).unwrap_or_else(|e| e.into_inner());
                        if *stopped {
                            break;
                        }
                    }
                    let r = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0));
                    match (r, failing) {
                        (Ok(_), true) => {
                            tracing::info!("background checkpoints work again");
                            failing = false;
                        }
                        (Err(e), false) => {
                            // The writer's own auto-checkpoint still bounds the WAL.
                            tracing::warn!(error = %e, "background checkpoint failed");
                            failing = true;
                        }
                        _ => {}
                    }
                }
            })?;
        Ok(Checkpointer { stop, thread })
    }

    /// Stops the thread and waits for it (a checkpoint in progress finishes first).
    pub fn stop(self) {
        let (lock, cv) = &*self.stop;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
        let _ = self.thread.join();
    }
}
