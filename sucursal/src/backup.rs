//! Online backups of the branch's store, published only once everything in them is durable.
//!
//! The outbox writer commits a batch before the syncer fsyncs it (see [`crate::storage`]), so
//! a copy taken with SQLite's backup API can hold sales that a power cut in the next
//! millisecond would take from the live store: sales never answered 201. A restore of such a
//! copy would bring them back, and with them seqs the live store has since given to other
//! sales. So a copy stays a hidden `.partial` file until the live store's durable `last_seq`
//! has reached the copy's own; if it does not within the settle time (a stuck disk, or a
//! store stopped by a failed fsync), the copy is deleted and the backup fails.
use crate::storage::{meta, OutboxState};
use colmena_shared::backup::{BackupError, BackupInfo, Backups};
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
