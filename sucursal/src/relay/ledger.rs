//! The relay's only way into the single writer: the two durable records it makes.
//!
//! Everything the relay stores goes through [`Ledger`], so a change to the writer's API
//! touches this file alone. Both records are applied by the writer thread in its own
//! transactions, in submission order.
use crate::storage::{ApplyPull, RecordAck, StoreError, WriterHandle};
use colmena_shared::wire::Change;

/// The writer, as the relay uses it.
#[derive(Clone)]
pub struct Ledger {
    writer: WriterHandle,
}

impl Ledger {
    pub fn new(writer: WriterHandle) -> Ledger {
        Ledger { writer }
    }

    /// Applies one pulled page of `changes` and the new pull cursor in one local transaction,
    /// with central's `applied_through` for this branch (which may raise the seq floor), so a
    /// pulled allocation is never applied twice.
    pub async fn apply_pull(
        &self,
        changes: Vec<Change>,
        next_cursor: u64,
        applied_through: u64,
    ) -> Result<(), StoreError> {
        self.writer
            .submit(ApplyPull {
                changes,
                next_cursor,
                applied_through,
                users_catch_up: false,
            })
            .await
    }

    /// Applies only the users of a page pulled again after an upgrade, and moves the
    /// catch-up cursor to `next_cursor` (the pull cursor stays where it is).
    pub async fn apply_users_catch_up(&self, changes: Vec<Change>, next_cursor: u64) -> Result<(), StoreError> {
        self.writer
            .submit(ApplyPull {
                changes,
                next_cursor,
                applied_through: 0,
                users_catch_up: true,
            })
            .await
    }

    /// Records that central acknowledged (or, after a `sequence_gap`, stands at) `through`.
    pub async fn set_acked(&self, through: u64) -> Result<(), StoreError> {
        self.writer.submit(RecordAck(through)).await
    }
}
