//! The embedded store: one SQLite file in WAL mode, `synchronous=FULL` (a commit is on
//! disk before a push is answered).
//!
//! Layout:
//! - **One writer connection, owned by a dedicated thread.** Every write is a job sent over a
//!   bounded channel and run there in order, so writes are serialised without a lock (two
//!   pushes of one branch can never interleave) and no async worker ever blocks on SQLite.
//! - **Group commit.** The jobs that queue while the writer is busy run together, each in its
//!   own savepoint of one transaction, and share its commit and fsync ([`writer::Writer::run`]). On a
//!   disk whose fsync takes milliseconds this is what lets many branches push at once.
//! - **Reader connections in a small pool**, used through `spawn_blocking`. In WAL mode they
//!   read a committed snapshot and never wait for the writer, so queries don't slow pushes.
//! - **Schema migrations** are embedded ([`schema::MIGRATIONS`]) and applied at open, tracked by
//!   `PRAGMA user_version`.
//!
//! Tables: `branches` (progress per branch), `products` (catalog, with its scheduled
//! prices), `idempotency` (the first success of each admin `Idempotency-Key`), `changes` (the pull feed;
//! its `cursor` is the rowid, strictly increasing, global to all branches), `stock` (the
//! materialised ledger, one row per (product, branch) that ever had an entry), `sales` (one row
//! per sale event, lines and payments in compact JSON columns), `adjustments`, the till's
//! `returns`, `cash_movements`, `shift_events` and `shifts` (see [`till`]), `users` (with
//! their PIN hashes), `audit` (every admin change), `transfers` and `transfer_events` (see
//! [`transfers`]), `report_rollup` (the reports' running totals, see [`reports`]). Allocations live in `changes`: they are the
//! feed entries themselves.
use super::common::to_u64;
use super::{
    AllocationOutcome, AuditFilter, AuditPageData, IdempotencyKey, Idempotent, ProductChange, ProductOutcome, PullData,
    PushOutcome, ReturnsCursor, ReturnsFilter, ReturnsPageData, SalesCursor, SalesFilter, SalesPageData, ShiftsFilter,
    Store, StoreError, UserChange, UserOutcome,
};
use super::{CancelOutcome, TransferFilter, TransferOutcome};
use async_trait::async_trait;
use colmena_shared::backup::{BackupError, BackupInfo, Backups};
use colmena_shared::checkpoint::Checkpointer;
use colmena_shared::clock;
use colmena_shared::ids::{BranchId, ProductId};
use colmena_shared::till::CentralShift;
use colmena_shared::transfers::{Transfer, TransferRequest};
use colmena_shared::users::{User, UserId};
use colmena_shared::wire::{BranchSummary, CentralProductStock, Event, Product};
use rusqlite::Connection;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Semaphore};

mod catalog;
mod reads;
mod reports;
mod schema;
#[cfg(test)]
mod tests;
mod till;
mod transfers;
mod writer;
mod writes;

use reads::*;
pub use schema::APPLICATION_ID;
use schema::{migrate, open_connection};
use writer::{Readers, Writer};

/// Jobs waiting for the writer. Bounded so a flood of pushes waits in the HTTP layer
/// (where each one is already parsed) instead of growing a queue without limit.
const WRITE_QUEUE: usize = 256;
/// Jobs per group commit at most: bounds one transaction's size and the wait of its first job.
const MAX_GROUP: usize = 64;
/// Reader connections at most; more concurrent queries wait for one.
const MAX_READERS: usize = 8;
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const KIND_PRODUCT: i64 = 0;
const KIND_ALLOCATION: i64 = 1;
const KIND_USER: i64 = 2;
const KIND_TRANSFER: i64 = 3;

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

/// A write, run on the writer thread inside its own savepoint of a group transaction. It
/// returns how to answer its caller once the group's commit has succeeded or failed.
type Job = Box<dyn FnOnce(&mut Writer) -> Answer + Send>;
/// Sends a job's result, or the group's commit error, to the waiting caller.
type Answer = Box<dyn FnOnce(Result<(), &StoreError>) + Send>;

enum Msg {
    Job(Job),
    Stop,
}

/// The SQLite [`Store`].
pub struct SqliteStore {
    writes: mpsc::Sender<Msg>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    checkpointer: Mutex<Option<Checkpointer>>,
    readers: Arc<Readers>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and migrates it. Blocking: call it
    /// at startup, before serving.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let conn = open_connection(path)?;
        let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Database(format!(
                "cannot use WAL mode on {} (got {mode})",
                path.display()
            )));
        }
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "cache_size", -2048)?; // 2 MiB
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
        // A group's savepoints keep the pages they change in a statement journal; past 64 KiB
        // SQLite spills it to a temp file, created and deleted per job (measured: a fifth of
        // the writer's time on a push of adjustments to 500 products). Keep it in memory.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.set_prepared_statement_cache_capacity(64);
        migrate(&conn)?;
        let checkpoint_conn = open_connection(path)?;
        if crate::failpoints::skip_fsync() {
            conn.pragma_update(None, "synchronous", "OFF")?;
            checkpoint_conn.pragma_update(None, "synchronous", "OFF")?;
        }

        let readers = Arc::new(Readers {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(MAX_READERS),
        });
        // Open one reader now so a path readers cannot use fails at startup, not later.
        let first = readers.open()?;
        readers.put(first);

        let checkpointer = Checkpointer::start(checkpoint_conn, CHECKPOINT_EVERY)
            .map_err(|e| StoreError::Database(format!("cannot start the checkpoint thread: {e}")))?;
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        let mut writer = Writer {
            conn,
            bufs: writer::Buffers {
                lines: Vec::with_capacity(256),
                payments: Vec::with_capacity(64),
            },
        };
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Database(format!("cannot start the writer thread: {e}")))?;
        Ok(SqliteStore {
            writes: tx,
            writer_thread: Mutex::new(Some(thread)),
            checkpointer: Mutex::new(Some(checkpointer)),
            readers,
        })
    }

    /// Runs `f` on the writer thread and waits for its result.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Writer) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |w| {
            let r = f(w);
            Box::new(move |committed: Result<(), &StoreError>| {
                // A job that failed was rolled back to its savepoint: its own error stands.
                let r = match (committed, r) {
                    (Err(e), Ok(_)) => Err(StoreError::Database(e.to_string())),
                    (_, r) => r,
                };
                let _ = tx.send(r);
            })
        });
        self.writes.send(Msg::Job(job)).await.map_err(|_| StoreError::Closed)?;
        // The sender is dropped without an answer only if the job panicked.
        rx.await
            .map_err(|_| StoreError::Database("the write failed unexpectedly".into()))?
    }

    /// Runs `f` on a reader connection, inside one read transaction (one snapshot).
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let permit = self.readers.permits.acquire().await.map_err(|_| StoreError::Closed)?;
        let readers = self.readers.clone();
        let r = tokio::task::spawn_blocking(move || {
            let conn = readers.take()?;
            let r = (|| {
                let tx = conn.unchecked_transaction()?;
                let r = f(&tx)?;
                tx.finish()?;
                Ok(r)
            })();
            readers.put(conn);
            r
        })
        .await
        .map_err(|e| StoreError::Database(format!("read task failed: {e}")))?;
        drop(permit);
        r
    }
}

/// How often the background checkpointer runs ([`colmena_shared::checkpoint`]): it took
/// about a tenth of the writer's time, the one thread every push waits for.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(10);

#[async_trait]
impl Store for SqliteStore {
    async fn ensure_branches(&self, branches: Vec<BranchId>) -> Result<(), StoreError> {
        self.write(move |w| w.ensure_branches(&branches)).await
    }

    async fn apply_push(&self, branch: BranchId, events: Vec<Event>) -> Result<PushOutcome, StoreError> {
        // The rollups are summed here, on the request's thread: the writer only writes them.
        let rollups = (!crate::store::reports::rollups_skipped()).then(|| crate::store::reports::prepare(&events));
        self.write(move |w| w.apply_push(&branch, &events, rollups.as_ref()))
            .await
    }

    async fn upsert_product(
        &self,
        change: ProductChange,
        key: Option<IdempotencyKey>,
    ) -> Result<Idempotent<ProductOutcome>, StoreError> {
        self.write(move |w| w.upsert_product(&change, key.as_ref())).await
    }

    async fn products(&self) -> Result<Vec<Product>, StoreError> {
        self.read(|c| catalog::read_products(c, None, clock::now_millis()))
            .await
    }

    async fn product(&self, product: ProductId) -> Result<Option<Product>, StoreError> {
        self.read(move |c| Ok(catalog::read_products(c, Some(product.as_str()), clock::now_millis())?.pop()))
            .await
    }

    async fn allocate(
        &self,
        branch: BranchId,
        product: ProductId,
        quantity: i64,
        key: Option<IdempotencyKey>,
    ) -> Result<Idempotent<AllocationOutcome>, StoreError> {
        self.write(move |w| w.allocate(branch.as_str(), product.as_str(), quantity, key.as_ref()))
            .await
    }

    async fn inventory(&self) -> Result<Vec<CentralProductStock>, StoreError> {
        self.read(|c| read_inventory(c, None)).await
    }

    async fn inventory_of(&self, product: ProductId) -> Result<Option<CentralProductStock>, StoreError> {
        self.read(move |c| Ok(read_inventory(c, Some(product.as_str()))?.pop()))
            .await
    }

    async fn branches(&self) -> Result<Vec<BranchSummary>, StoreError> {
        self.read(read_branches).await
    }

    async fn sales(
        &self,
        filter: SalesFilter,
        after: Option<SalesCursor>,
        limit: u32,
    ) -> Result<SalesPageData, StoreError> {
        self.read(move |c| read_sales(c, &filter, after, limit)).await
    }

    async fn shifts(&self, filter: ShiftsFilter) -> Result<Vec<CentralShift>, StoreError> {
        self.read(move |c| till::read_shifts(c, &filter)).await
    }

    async fn returns(
        &self,
        filter: ReturnsFilter,
        after: Option<ReturnsCursor>,
        limit: u32,
    ) -> Result<ReturnsPageData, StoreError> {
        self.read(move |c| till::read_returns(c, &filter, after, limit)).await
    }

    async fn pull(
        &self,
        branch: BranchId,
        after: u64,
        limit: u32,
        include_users: bool,
    ) -> Result<PullData, StoreError> {
        self.read(move |c| read_pull(c, branch.as_str(), after, limit, include_users))
            .await
    }

    async fn put_user(&self, change: UserChange) -> Result<UserOutcome, StoreError> {
        self.write(move |w| w.put_user(change)).await
    }

    async fn user(&self, user: UserId) -> Result<Option<User>, StoreError> {
        self.read(move |c| Ok(read_users(c, Some(user.as_str()))?.pop())).await
    }

    async fn users(&self) -> Result<Vec<User>, StoreError> {
        self.read(|c| read_users(c, None)).await
    }

    async fn audit(&self, filter: AuditFilter, after: u64, limit: u32) -> Result<AuditPageData, StoreError> {
        self.read(move |c| read_audit(c, filter, after, limit)).await
    }

    async fn create_transfer(
        &self,
        request: TransferRequest,
        key: Option<IdempotencyKey>,
    ) -> Result<Idempotent<TransferOutcome>, StoreError> {
        self.write(move |w| w.create_transfer(&request, key.as_ref())).await
    }

    async fn cancel_transfer(&self, id: String) -> Result<CancelOutcome, StoreError> {
        self.write(move |w| w.cancel_transfer(&id)).await
    }

    async fn transfers(&self, filter: TransferFilter) -> Result<Vec<Transfer>, StoreError> {
        self.read(move |c| transfers::read_transfers(c, &filter, None)).await
    }

    async fn transfer(&self, id: String) -> Result<Option<Transfer>, StoreError> {
        self.read(move |c| Ok(transfers::read_transfers(c, &TransferFilter::default(), Some(&id))?.pop()))
            .await
    }

    async fn report_rows(
        &self,
        reads: Vec<super::reports::RollupRead>,
    ) -> Result<Vec<Vec<super::reports::RollupRow>>, StoreError> {
        self.read(move |c| reports::read(c, &reads)).await
    }

    async fn negative_stock_products(&self) -> Result<u64, StoreError> {
        self.read(|c| {
            let n: i64 = c
                .prepare_cached("SELECT count(*) FROM stock WHERE stock < 0")?
                .query_row([], |r| r.get(0))?;
            Ok(to_u64(n))
        })
        .await
    }

    async fn backup(&self, backups: Backups) -> Option<Result<BackupInfo, BackupError>> {
        // Its own connection, not a pooled reader: the backup API copies page by page and
        // must not run inside another read transaction of the same connection.
        let path = self.readers.path.clone();
        Some(
            colmena_shared::backup::off_thread(move || {
                let conn = open_connection(&path).map_err(|e| BackupError::Invalid(e.to_string()))?;
                backups.create(&conn)
            })
            .await,
        )
    }

    async fn close(&self) {
        self.readers.permits.close();
        let checkpointer = self.checkpointer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(c) = checkpointer {
            let _ = tokio::task::spawn_blocking(move || c.stop()).await;
        }
        let _ = self.writes.send(Msg::Stop).await;
        let thread = self.writer_thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = thread {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        self.readers.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}
