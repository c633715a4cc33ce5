//! Online backups of the branch's store, published only once everything in them is durable.
//!
//! The outbox writer commits a batch before the syncer fsyncs it (see [`crate::storage`]), so
//! a copy taken with SQLite's backup API can hold sales that a power cut in the next
//! millisecond would take from the live store: sales never answered 201. A restore of such a
//! copy would bring them back, and with them seqs the live store has since given to other
//! sales. So a copy stays a hidden `.partial` file until the live store's durable `last_seq`
//! has reached the copy's own; if it does not within the settle time (a stuck disk, or a
//! store stopped by a failed fsync), the copy is deleted and the backup fails.
//!
//! Backups are taken on demand (`POST /admin/backups`, [`crate::routes::backups`]) and, with
//! `--backup-every`, by [`run_scheduled_backups`]; both go through [`take_now`].
use crate::app::AppState;
use crate::storage::{meta, OutboxState};
use actix_web::web;
use colmena_shared::backup::{off_thread, BackupError, BackupInfo, Backups};
use rusqlite::Connection;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::Duration;

/// How long a backup waits for the events in its copy to become durable (one fsync, as a
/// rule).
pub const SETTLE: Duration = Duration::from_secs(5);

/// Takes a backup through `reader` (a read connection to the live store; held only while
/// copying). Blocking: call it off the async runtime.
pub fn take(
    backups: &Backups,
    reader: &Mutex<Connection>,
    outbox: &OutboxState,
    settle: Duration,
) -> Result<BackupInfo, BackupError> {
    let partial = {
        let conn = reader.lock().unwrap_or_else(|e| e.into_inner());
        backups.copy(&conn)?
    };
    let holds_through =
        meta::get(&partial.open()?, meta::LAST_SEQ).map_err(|e| BackupError::Invalid(format!("read the copy: {e}")))?;
    if !outbox.wait_durable(holds_through, settle) {
        return Err(BackupError::Invalid(format!(
            "the copy holds events through seq {holds_through}, but the store has made only {} \
             durable; the backup was not published",
            outbox.last_seq.load(Ordering::Acquire)
        )));
    }
    partial.publish()
}

/// Takes a backup of the live store now, off the async threads.
pub async fn take_now(app: &AppState) -> Result<BackupInfo, BackupError> {
    let backups = app.backups.clone();
    let reader = app.reader.clone();
    let outbox = app.outbox.clone();
    off_thread(move || take(&backups, &reader, &outbox, SETTLE)).await
}

/// Takes a backup every `every` until cancelled. A failed backup is logged and the schedule
/// goes on: the next one may succeed.
pub async fn run_scheduled_backups(
    app: web::Data<AppState>,
    every: Duration,
    cancel: tokio_util::sync::CancellationToken,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = cancel.cancelled() => return,
        }
        match take_now(&app).await {
            Ok(info) => tracing::info!(id = %info.id, "scheduled backup created"),
            Err(e) => tracing::error!(error = %e, "scheduled backup failed"),
        }
    }
}
