//! The outbox's counters that the relay, `/status`, `/metrics` and backups read without
//! touching SQLite.
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::Notify;

/// Sync bookkeeping shared with the relay, `/status` and `/metrics`.
#[derive(Default)]
pub struct OutboxState {
    /// The last seq that is durable (fsync'd). Committed-but-not-yet-synced events are above
    /// it, invisible to the relay and to `/status`.
    pub last_seq: AtomicU64,
    pub acked_through: AtomicU64,
    pub pull_cursor: AtomicU64,
    /// After an upgrade, users are pulled again from this cursor up to `users_catch_up_to`
    /// (see `storage::db`); equal or above it, nothing is left to catch up.
    pub users_catch_up_from: AtomicU64,
    pub users_catch_up_to: AtomicU64,
    /// Woken after every durable batch that added events.
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
