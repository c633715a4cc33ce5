//! The state every handler and background task of a branch shares.
use crate::breaker::{Breaker, State};
use crate::idempotency::Idempotency;
use crate::inventory::Inventory;
use crate::metrics::BranchMetrics;
use crate::people::People;
use crate::storage::{OutboxState, StoreError, WriterHandle};
use colmena_shared::ids::BranchId;
use rusqlite::Connection;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What the relay knows about central, for `/status`.
pub struct SyncStatus {
    pub endpoints: Vec<(String, Arc<Breaker>)>,
    /// Index into `endpoints` of the URL the relay uses now.
    pub active: AtomicUsize,
    pub last_push_ok_ms: AtomicI64,
    pub last_pull_ok_ms: AtomicI64,
}

impl SyncStatus {
    pub fn active(&self) -> (&str, State) {
        let i = self
            .active
            .load(Ordering::Acquire)
            .min(self.endpoints.len().saturating_sub(1));
        match self.endpoints.get(i) {
            Some((url, b)) => (url.as_str(), b.state()),
            None => ("", State::Closed),
        }
    }
}

pub struct AppState {
    pub branch_id: BranchId,
    pub inventory: Arc<Inventory>,
    pub idempotency: Arc<Idempotency>,
    pub outbox: Arc<OutboxState>,
    pub writer: WriterHandle,
    /// A read-only connection for `/outbox`, `/status`, `/metrics` (never the writer's).
    pub reader: Arc<Mutex<Connection>>,
    pub metrics: BranchMetrics,
    pub sync: Arc<SyncStatus>,
    pub backups: colmena_shared::backup::Backups,
    /// Users, sessions and logins.
    pub people: Arc<People>,
    /// Open shifts and the till's rules.
    pub till: Arc<crate::till::Till>,
    /// The search index of the catalog.
    pub catalog: Arc<crate::catalog::Catalog>,
    /// This branch's transfers, as they are durable.
    pub transfers: Arc<crate::transfers::Transfers>,
}

impl AppState {
    /// Runs `f` on the read connection off the async threads.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            let conn = reader.lock().unwrap_or_else(|e| e.into_inner());
            f(&conn)
        })
        .await
        .map_err(|_| StoreError::WriterGone)?
    }
}
