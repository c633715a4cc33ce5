//! Housekeeping: every 10 minutes, purges acknowledged outbox events older than
//! `--outbox-retention` and idempotency records older than `--idempotency-ttl`; the sales
//! among the purged events that are younger than `--return-window` are kept returnable.
//!
//! The purge runs in the writer, which deletes only events at or below the *stored*
//! `acked_through`, so nothing central has not acknowledged is ever lost; retention keeps
//! acknowledged events long enough for the relay to resend them after a central restore.
use crate::storage::{Purge, WriterHandle};
use colmena_shared::clock;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Time between purges.
const EVERY: Duration = Duration::from_secs(600);

pub struct Housekeeping {
    pub writer: WriterHandle,
    pub outbox_retention: Duration,
    pub idempotency_ttl: Duration,
    /// Sales this recent stay returnable after their outbox rows go.
    pub return_window: Duration,
}

impl Housekeeping {
    /// Purges every [`EVERY`] (the first one after a full period) until `cancel` fires.
    pub async fn run(self, cancel: CancellationToken) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(EVERY) => {},
                _ = cancel.cancelled() => break,
            }
            let now = clock::now_millis();
            let job = Purge {
                outbox_before_ms: now - self.outbox_retention.as_millis() as i64,
                idempotency_before_ms: now - self.idempotency_ttl.as_millis() as i64,
                returns_since_ms: now - self.return_window.as_millis() as i64,
            };
            if let Err(e) = self.writer.submit(job).await {
                tracing::error!(error = %e, "housekeeping purge failed");
            }
        }
    }
}
