//! Pull: catalog changes, stock allocations and users from central (see docs/protocol.md,
//! "Sync pull"), at start-up and every `--pull-interval`.
//!
//! Each page is applied with its new cursor in one local transaction (through the
//! [`Ledger`](super::Ledger)), so an allocation is never applied twice; the cursor never
//! moves backwards, even when central's does (a restored central). A pull that changed
//! products then rebuilds the search index ([`crate::catalog`]) once, however many pages it
//! took: a first sync of 100,000 products is 100 pages, and a rebuild reads the whole catalog.
use super::{sleep_or_cancel, Relay};
use colmena_shared::clock;
use colmena_shared::wire::{ChangeKind, PullResponse};
use reqwest::header::AUTHORIZATION;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Changes asked for per page; a shorter page is the last one.
const PULL_LIMIT: usize = 1000;

impl Relay {
    /// One page of changes after `after`, users included (`include=users`: a central that
    /// predates users ignores the parameter).
    async fn fetch_page(&self, after: u64) -> Result<PullResponse, String> {
        let metrics = &self.deps.metrics;
        let auth = self.central.auth();
        let resp = self
            .central
            .call(|ep| {
                ep.client
                    .get(format!(
                        "{}/sync/pull?after={after}&limit={PULL_LIMIT}&include=users",
                        ep.url
                    ))
                    .header(AUTHORIZATION, auth)
            })
            .await
            .map_err(|e| format!("{e:?}"))?;
        if !resp.status().is_success() {
            metrics.sync_errors.with_label_values(&["rejected"]).inc();
            return Err(format!("pull answered {}", resp.status()));
        }
        resp.json().await.map_err(|e| {
            metrics.sync_errors.with_label_values(&["rejected"]).inc();
            format!("pull answer is not valid: {e}")
        })
    }

    /// After an upgrade from a store without users: pulls the feed again from the catch-up
    /// cursor up to the pull cursor at the upgrade, keeping only its users (docs/protocol.md,
    /// "Users at the branch"). Products and allocations of those pages were applied already.
    async fn catch_up_users(&self) -> Result<(), String> {
        let state = &self.deps.state;
        loop {
            let after = state.users_catch_up_from.load(Ordering::Acquire);
            let to = state.users_catch_up_to.load(Ordering::Acquire);
            if after >= to {
                return Ok(());
            }
            let page = self.fetch_page(after).await?;
            let n = page.changes.len();
            // Past `to` the regular pull takes over; a short page means the feed ends here.
            // Always forwards (after < to), so a confused central cannot loop us.
            let next = if n < PULL_LIMIT {
                to
            } else {
                page.next.clamp(after + 1, to)
            };
            let changes = page.changes.into_iter().filter(|c| c.cursor <= to).collect();
            self.deps
                .ledger
                .apply_users_catch_up(changes, next)
                .await
                .map_err(|e| format!("cannot store pulled users: {e}"))?;
        }
    }

    /// Pulls every page of changes after the stored cursor. Ok once central answered and every
    /// page is stored.
    pub async fn pull_once(&self) -> Result<(), String> {
        self.catch_up_users().await?;
        let mut products_changed = false;
        let pulled = self.pull_pages(&mut products_changed).await;
        if products_changed {
            // After the pages' commits (also when a later page failed: what was stored is
            // searchable), here in the relay's task: searches go on reading the old snapshot
            // meanwhile, and no sale waits for this.
            if let Err(e) = self.deps.catalog.refresh().await {
                tracing::warn!(error = %e, "cannot rebuild the search index; it keeps the previous catalog");
            }
        }
        pulled
    }

    /// Stores every page after the stored cursor; `products_changed` is set once a stored
    /// page had a product change.
    async fn pull_pages(&self, products_changed: &mut bool) -> Result<(), String> {
        loop {
            let after = self.deps.state.pull_cursor.load(Ordering::Acquire);
            let page = self.fetch_page(after).await?;
            let n = page.changes.len();
            if page.next < after && n == 0 {
                tracing::warn!(
                    after,
                    next = page.next,
                    "central's pull cursor is behind ours (central restored?)"
                );
            }
            let wrote = self.deps.state.last_seq.load(Ordering::Acquire);
            if page.applied_through > wrote {
                // Central claims events this store never wrote: a store restored from an
                // older copy, or a peer that is not this chain's central. The seq floor moves
                // (no seq is reused) but nothing pending is acknowledged by it.
                tracing::warn!(
                    central = page.applied_through,
                    local = wrote,
                    "central claims more events than this branch ever wrote; new events continue above it, pending ones are still pushed"
                );
                self.deps
                    .metrics
                    .sync_errors
                    .with_label_values(&["central_ahead"])
                    .inc();
            }
            let next_cursor = if n == 0 { after } else { page.next.max(after) };
            let has_products = page.changes.iter().any(|c| c.kind == ChangeKind::Product);
            self.deps
                .ledger
                .apply_pull(page.changes, next_cursor, page.applied_through)
                .await
                .map_err(|e| format!("cannot store pulled changes: {e}"))?;
            *products_changed |= has_products;
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
