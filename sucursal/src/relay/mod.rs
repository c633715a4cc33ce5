//! The relay: ships the outbox to central and pulls catalog and allocations back (see
//! docs/protocol.md, "The relay").
//!
//! - **Push** (`push_loop`, its decisions in `push`): one loop, one batch in flight, strictly in
//!   seq order. Woken by the writer after each commit, it lingers (≤ 10 ms) to fill a batch
//!   (≤ 500 events / ≤ 1 MiB, gzip above 1 KiB). 200 → `acked_through` recorded durably (in
//!   the background, while the next batch goes out; a backlog's next batch is read while one
//!   is in flight); 409 `sequence_gap` → resume from central's `applied_through + 1`
//!   (acknowledged events are retained for `--outbox-retention`, so this is possible after a
//!   central restore).
//! - **Pull** (`pull`): at start and every `--pull-interval`; applies changes and the new
//!   cursor in one local transaction (through the writer), so an allocation is never applied
//!   twice.
//! - **Every request** (`client`) goes through the endpoint's circuit breaker, with failover
//!   across `--central-url a,b`: each URL has its own breaker; a call goes to the first URL
//!   whose breaker is not OPEN (or is due for its half-open trial), so the relay moves on
//!   only when a URL's breaker opens, and returns to the preferred URL as soon as its trial
//!   succeeds.
//! - **Classification**: timeouts, transport errors, 5xx, 408, 429 are breaker failures;
//!   other 4xx are not (logged as errors, counted `rejected`, and the loop backs off
//!   1 s .. 60 s). `Retry-After` on 429/503 is honoured by the loop (and such a response is
//!   not retried by the middleware, which cannot see the header).
//!
//! The relay sees the rest of the branch only through [`RelayDeps`]: an [`OutboxReader`] on
//! the read-only connection, the [`Ledger`] (its only way into the writer), the outbox
//! atomics, the metrics and the `/status` view. It never writes the store directly.
mod batch;
mod client;
mod ledger;
mod pull;
mod push;
mod push_loop;

pub use client::{build, is_breaker_failure, EndpointParts};
pub use ledger::Ledger;

use crate::app::SyncStatus;
use crate::breaker::BreakerConfig;
use crate::metrics::BranchMetrics;
use crate::storage::outbox::{self as outbox_table, OutboxRow};
use crate::storage::{OutboxState, StoreError};
use client::Central;
use colmena_shared::ids::BranchId;
use rusqlite::Connection;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct RelaySettings {
    pub central_urls: Vec<String>,
    pub central_token: String,
    /// `--central-ca`: the only roots an `https://` central is verified against when set.
    pub central_ca: Option<std::path::PathBuf>,
    pub breaker: BreakerConfig,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub retries: u32,
    pub batch_max_events: usize,
    pub batch_max_bytes: usize,
    pub linger: Duration,
    pub pull_interval: Duration,
}

/// Reads outbox rows for the relay, on the branch's read-only connection (never the
/// writer's), off the async threads.
#[derive(Clone)]
pub struct OutboxReader {
    conn: Arc<Mutex<Connection>>,
}

impl OutboxReader {
    pub fn new(conn: Arc<Mutex<Connection>>) -> OutboxReader {
        OutboxReader { conn }
    }

    /// Up to `max_events` / `max_bytes` of events in `after + 1 ..= through`.
    pub async fn read(
        &self,
        after: u64,
        through: u64,
        max_events: usize,
        max_bytes: usize,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let conn = conn.lock().unwrap_or_else(|e| e.into_inner());
            outbox_table::read(&conn, after, through, max_events, max_bytes)
        })
        .await
        .map_err(|_| StoreError::WriterGone)?
    }
}

/// Everything the relay uses of the branch.
pub struct RelayDeps {
    pub branch_id: BranchId,
    pub outbox: OutboxReader,
    pub ledger: Ledger,
    /// `last_seq` bounds what is pushed; `acked_through` and `pull_cursor` are where push
    /// and pull resume; `new_events` wakes the push loop.
    pub state: Arc<OutboxState>,
    pub metrics: BranchMetrics,
    pub sync: Arc<SyncStatus>,
    /// The search index, rebuilt after a pull that changed products.
    pub catalog: Arc<crate::catalog::Catalog>,
}

pub struct Relay {
    deps: RelayDeps,
    central: Central,
    settings: RelaySettings,
}

impl Relay {
    pub fn new(deps: RelayDeps, endpoints: Vec<EndpointParts>, settings: RelaySettings) -> Arc<Relay> {
        let central = Central::new(
            endpoints,
            &settings.central_token,
            deps.sync.clone(),
            deps.metrics.clone(),
        );
        Arc::new(Relay {
            deps,
            central,
            settings,
        })
    }
}

/// Sleeps for `d`; false if `cancel` fired first.
async fn sleep_or_cancel(d: Duration, cancel: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = cancel.cancelled() => false,
    }
}
