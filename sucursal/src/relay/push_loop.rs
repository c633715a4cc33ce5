//! The push loop's I/O: reads batches from the outbox, sends them, turns central's answers
//! into [`Outcome`]s, and carries out what [`PushState::decide`] chooses.
//!
//! One batch is in flight at a time, strictly in seq order, and only durable events
//! (at most `OutboxState::last_seq`) are read. Two things overlap the round trip to central,
//! which is what a backlog drains at: the next batch is read and encoded while the current
//! one is in flight (used only if the push succeeds as a whole), and `acked_through` is
//! stored in the background (at most one such write at a time, so they land in order). A
//! lost `acked_through` only means a re-push after a restart, which central skips as
//! duplicates; the outbox purge goes by the stored value, so it never deletes what central
//! has not acknowledged.
use super::batch::Batch;
use super::client::CallError;
use super::push::{self, Action, Outcome, PushState};
use super::{sleep_or_cancel, Relay};
use colmena_shared::clock;
use colmena_shared::wire::PushResponse;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};
use reqwest::StatusCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A batch being read ahead, while the previous one is in flight.
type Prefetch = JoinHandle<Result<Option<Batch>, String>>;

/// Waits for the background `acked_through` write, if one is in flight.
async fn settle(ack: &mut Option<JoinHandle<bool>>) {
    if let Some(h) = ack.take() {
        let _ = h.await;
    }
}

impl Relay {
    /// The push loop. Returns when `cancel` fires.
    pub async fn run_push(self: Arc<Self>, cancel: CancellationToken) {
        let state = self.deps.state.clone();
        let mut sm = PushState::new(state.acked_through.load(Ordering::Acquire));
        let mut prefetched: Option<Prefetch> = None;
        let mut ack_in_flight: Option<JoinHandle<bool>> = None;
        loop {
            if cancel.is_cancelled() {
                break;
            }
            sm.catch_up(state.acked_through.load(Ordering::Acquire));
            let last = state.last_seq.load(Ordering::Acquire);
            if last <= sm.next_after() {
                if !self.wait_for_events(sm.next_after(), &cancel).await {
                    break;
                }
                continue;
            }
            let (batch, read) = match self.next_batch(prefetched.take(), sm.next_after(), last).await {
                Ok(Some(found)) => found,
                Ok(None) => {
                    if !sleep_or_cancel(Duration::from_millis(100), &cancel).await {
                        break;
                    }
                    continue;
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the outbox");
                    if !sleep_or_cancel(Duration::from_secs(1), &cancel).await {
                        break;
                    }
                    continue;
                }
            };
            self.deps.metrics.push_batches.with_label_values(&[read]).inc();
            if !sm.continues(batch.first) {
                tracing::error!(expected = sm.next_after() + 1, found = batch.first, "outbox events needed by central were already purged (raise --outbox-retention); skipping to what is left");
            }
            if let Some((after, through)) = sm.prefetch(batch.last, last) {
                let me = self.clone();
                prefetched = Some(tokio::spawn(async move { me.read_batch(after, through).await }));
            }
            let outcome = self.push_batch(&batch).await;
            match sm.decide(outcome) {
                Action::Ack { through } => self.acked(&batch, through, &mut ack_in_flight).await,
                Action::Resync { through } => {
                    // Not in the background: if central is ahead of this store, the write
                    // raises the seq floor, which must happen before new sales.
                    settle(&mut ack_in_flight).await;
                    if self.record_acked(through).await {
                        sm.resynced(through);
                    }
                }
                Action::BackOff(d) => {
                    if !sleep_or_cancel(d, &cancel).await {
                        break;
                    }
                }
            }
        }
        if let Some(h) = prefetched.take() {
            h.abort();
        }
        settle(&mut ack_in_flight).await;
        tracing::info!("relay push loop stopped");
    }

    /// Nothing to send: waits for the writer's wake-up (or a 1 s tick), then lingers so a
    /// batch can fill. False when cancelled.
    async fn wait_for_events(&self, next_after: u64, cancel: &CancellationToken) -> bool {
        let state = &self.deps.state;
        tokio::select! {
            _ = state.new_events.notified() => {},
            _ = tokio::time::sleep(Duration::from_secs(1)) => {},
            _ = cancel.cancelled() => return false,
        }
        let waiting = state.last_seq.load(Ordering::Acquire).saturating_sub(next_after);
        if let Some(d) = push::linger(waiting, self.settings.batch_max_events, self.settings.linger) {
            tokio::time::sleep(d).await;
        }
        true
    }

    /// The batch after `next_after`: the prefetched one if it starts there, else read now.
    /// The second value says which, for the `push_batches` metric.
    async fn next_batch(
        &self,
        prefetched: Option<Prefetch>,
        next_after: u64,
        last: u64,
    ) -> Result<Option<(Batch, &'static str)>, String> {
        let ready = match prefetched {
            Some(h) => h.await.ok().and_then(Result::ok).flatten(),
            None => None,
        };
        if let Some(b) = ready.filter(|b| b.after == next_after) {
            return Ok(Some((b, "prefetched")));
        }
        Ok(self.read_batch(next_after, last).await?.map(|b| (b, "on_demand")))
    }

    /// The batch after `after`, up to `through`, read and encoded on blocking threads; None
    /// when the outbox has nothing there.
    async fn read_batch(&self, after: u64, through: u64) -> Result<Option<Batch>, String> {
        let (max_events, max_bytes) = (self.settings.batch_max_events, self.settings.batch_max_bytes);
        let rows = self
            .deps
            .outbox
            .read(after, through, max_events, max_bytes)
            .await
            .map_err(|e| e.to_string())?;
        if rows.is_empty() {
            return Ok(None);
        }
        let branch = self.deps.branch_id.clone();
        tokio::task::spawn_blocking(move || Batch::encode(branch.as_str(), after, &rows))
            .await
            .map(Some)
            .map_err(|e| format!("encoding a push batch failed: {e}"))
    }

    /// Sends one batch and says what came of it (logging and counting what went wrong).
    async fn push_batch(&self, batch: &Batch) -> Outcome {
        let auth = self.central.auth();
        let res = self
            .central
            .call(|ep| {
                let mut rb = ep
                    .client
                    .post(format!("{}/sync/push", ep.url))
                    .header(AUTHORIZATION, auth)
                    .header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                if batch.gz {
                    rb = rb.header(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                }
                rb.body(batch.body.clone())
            })
            .await;
        match res {
            Ok(resp) if resp.status() == StatusCode::CONFLICT => {
                let text = resp.text().await.unwrap_or_default();
                match push::gap_position(&text) {
                    Some(at) => {
                        tracing::warn!(
                            applied_through = at,
                            sent_from = batch.first,
                            "central reports a sequence gap; resuming from its position"
                        );
                        Outcome::SequenceGap { applied_through: at }
                    }
                    None => {
                        tracing::error!(body = %text, "central answered 409 without applied_through");
                        self.count_rejected();
                        Outcome::Rejected
                    }
                }
            }
            Ok(resp) => match resp.json::<PushResponse>().await {
                Ok(pr) => Outcome::Applied {
                    applied_through: pr.applied_through,
                },
                Err(e) => {
                    tracing::error!(error = %e, "central's push answer is not valid JSON");
                    self.count_rejected();
                    Outcome::Rejected
                }
            },
            Err(e) => call_failed(e),
        }
    }

    fn count_rejected(&self) {
        self.deps.metrics.sync_errors.with_label_values(&["rejected"]).inc();
    }

    /// Central applied the batch through `at`: the latency of what it applied is observed,
    /// and `at` is stored in the background (after the previous such write).
    async fn acked(self: &Arc<Self>, batch: &Batch, at: u64, ack_in_flight: &mut Option<JoinHandle<bool>>) {
        let now = clock::now_millis();
        for &(seq, created_ms) in &batch.created {
            if seq <= at {
                self.deps
                    .metrics
                    .sync_latency
                    .observe(((now - created_ms).max(0) as f64) / 1000.0);
            }
        }
        if at < batch.last {
            tracing::warn!(
                applied_through = at,
                last_in_batch = batch.last,
                "central applied less than the batch"
            );
        }
        settle(ack_in_flight).await;
        let me = self.clone();
        *ack_in_flight = Some(tokio::spawn(async move { me.record_acked(at).await }));
        self.deps.sync.last_push_ok_ms.store(now, Ordering::Release);
    }

    /// Records central's position durably. False if the store could not record it.
    async fn record_acked(&self, at: u64) -> bool {
        match self.deps.ledger.set_acked(at).await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, "cannot record acked_through");
                false
            }
        }
    }
}

/// A failed call as an [`Outcome`], logged (its metrics are already counted by the client).
fn call_failed(e: CallError) -> Outcome {
    match e {
        CallError::Open { retry_at } => {
            let now = failsafe::clock::now();
            Outcome::BreakerOpen {
                until_trial: retry_at.filter(|t| *t > now).map(|t| t - now),
            }
        }
        CallError::Failed(msg) => {
            tracing::warn!(error = %msg, "push to central failed");
            Outcome::Failed
        }
        CallError::Rejected(msg) => {
            tracing::error!(error = %msg, "central rejected the push; backing off");
            Outcome::Rejected
        }
        CallError::RetryAfter(d) => {
            tracing::warn!(seconds = d.as_secs(), "central asked to retry the push later");
            Outcome::RetryAfter(d)
        }
    }
}
