//! Deterministic fault injection for tests (crate `fail`, cargo feature `failpoints`).
//! Without the feature every function here is an empty inline function.
use crate::storage::StoreError;

/// `outbox.before_commit`: `return` makes the writer's commit fail (→ 503, stock restored);
/// `panic`/`exit` crash between applying and committing.
#[inline]
pub fn before_commit() -> Result<(), StoreError> {
    #[cfg(feature = "failpoints")]
    fail::fail_point!("outbox.before_commit", |_| Err(StoreError::Corrupt(
        "failpoint outbox.before_commit".into()
    )));
    Ok(())
}

/// `sell.after_commit`: runs after the sale is durable, before the 201 is sent.
/// `return` ends the whole process at once (exit status 137, no shutdown hook, like
/// `kill -9`): a crash between commit and reply. `panic` would only end the handler task.
#[inline]
pub fn after_commit() {
    #[cfg(feature = "failpoints")]
    fail::fail_point!("sell.after_commit", |_| {
        eprintln!("failpoint sell.after_commit: exiting after the durable commit, before the reply");
        std::process::exit(137)
    });
}

/// `outbox.skip_fsync`: `return` makes the syncer answer without fsyncing the WAL — the bug
/// the power-cut test must catch (its negative control).
#[inline]
pub fn skip_fsync() -> bool {
    #[cfg(feature = "failpoints")]
    fail::fail_point!("outbox.skip_fsync", |_| true);
    false
}
