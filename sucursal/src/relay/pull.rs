//! Pull: catalog changes and stock allocations from central (see docs/protocol.md,
//! "Sync pull"), at start-up and every `--pull-interval`.
//!
//! Each page is applied with its new cursor in one local transaction (through the
//! [`Ledger`](super::Ledger)), so an allocation is never applied twice; the cursor never
//! moves backwards, even when central's does (a restored central).
use super::{sleep_or_cancel, Relay};
use colmena_shared::clock;
use colmena_shared::wire::PullResponse;
use reqwest::header::AUTHORIZATION;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Changes asked for per page; a shorter page is the last one.
const PULL_LIMIT: usize = 1000;

impl Relay {
    /// Pulls every page of changes after the stored cursor. Ok once central answered and every
    /// page is stored.
    pub async fn pull_once(&self) -> Result<(), String> {
        let metrics = &self.deps.metrics;
        loop {
            let after = self.deps.state.pull_cursor.load(Ordering::Acquire);
            let auth = self.central.auth();
            let resp = self
                .central
                .call(|ep| {
                    ep.client
                        .get(format!("{}/sync/pull?after={after}&limit={PULL_LIMIT}", ep.url))
                        .header(AUTHORIZATION, auth)
                })
                .await
                .map_err(|e| format!("{e:?}"))?;
            if !resp.status().is_success() {
                metrics.sync_errors.with_label_values(&["rejected"]).inc();
                return Err(format!("pull answered {}", resp.status()));
            }
            let page: PullResponse = resp.json().await.map_err(|e| {
                metrics.sync_errors.with_label_values(&["rejected"]).inc();
                format!("pull answer is not valid: {e}")
            })?;
            let n = page.changes.len();
            if page.next < after && n == 0 {
                tracing::warn!(
                    after,
                    next = page.next,
                    "central's pull cursor is behind ours (central restored?)"
                );
            }
            let next_cursor = if n == 0 { after } else { page.next.max(after) };
            self.deps
                .ledger
                .apply_pull(page.changes, next_cursor, page.applied_through)
                .await
                .map_err(|e| format!("cannot store pulled changes: {e}"))?;
            self.deps
                .sync
                .last_pull_ok_ms
                .store(clock::now_millis(), Ordering::Release);
            if n < PULL_LIMIT {
                return Ok(());
            }
        }
    }

    /// The pull loop (the first pull happens at start-up, before serving).
    pub async fn run_pull(self: Arc<Self>, cancel: CancellationToken) {
        loop {
            if !sleep_or_cancel(self.settings.pull_interval, &cancel).await {
                break;
            }
            if let Err(e) = self.pull_once().await {
                tracing::debug!(error = %e, "pull did not complete");
            }
        }
        tracing::info!("relay pull loop stopped");
    }
}
