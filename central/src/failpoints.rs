//! Deterministic fault injection for tests (crate `fail`, cargo feature `failpoints`).
//! Without the feature every function here is an empty inline function.

/// `push.before_commit`: runs inside the push transaction, after every event was applied
/// and before the commit. `return` ends the whole process at once (exit status 137, no
/// shutdown hook, like `kill -9`): a crash in the middle of an apply, which must leave none
/// of the batch behind.
#[inline]
pub fn push_before_commit() {
    #[cfg(feature = "failpoints")]
    fail::fail_point!("push.before_commit", |_| {
        eprintln!("failpoint push.before_commit: exiting in the middle of a push apply");
        std::process::exit(137)
    });
}

/// `sqlite.skip_fsync`: `return` runs the SQLite store's writer and checkpointer with
/// `synchronous=OFF` once the schema is in place, so a push is answered 200 without its
/// commit being fsync'd — the bug the central power-cut test must catch (its negative
/// control). Read once, when the store opens.
#[inline]
pub fn skip_fsync() -> bool {
    #[cfg(feature = "failpoints")]
    fail::fail_point!("sqlite.skip_fsync", |_| true);
    false
}
