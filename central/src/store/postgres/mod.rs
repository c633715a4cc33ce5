//! The PostgreSQL store: chosen by `--database postgres://…`, so any number of central
//! processes can serve one chain over one database (they share nothing else).
//!
//! Semantics are those of [`super::sqlite::SqliteStore`] (the reference); what differs is how
//! they hold when several processes write at once:
//!
//! - **Exactly-once push apply.** A push locks its branch's row (`SELECT … FOR UPDATE`, after
//!   an insert-if-missing) before reading `applied_through`, and inserts the events, moves
//!   the ledger and advances the branch in that same transaction. Two pushes of one branch,
//!   at one instance or at two, are therefore serialised on that row; the second sees the
//!   first's `applied_through` and skips its events as duplicates. Pushes of different
//!   branches never wait for each other, but for the reports' chain-wide rollup rows
//!   ([`reports`]): a push locks its shard's rows (one in eight branches share one) until
//!   it commits.
//! - **A gap-free pull feed.** Feed cursors are not a sequence (a sequence hands out numbers
//!   in call order, and transactions commit in another order, so a reader could pass cursor 7
//!   while 6 is still uncommitted and never see 6). Every feed writer instead locks the one
//!   row of `feed_counter` first and takes `last_cursor + 1` under that lock, held until its
//!   commit. PostgreSQL makes a transaction visible before it releases its locks, so the next
//!   writer gets its cursor only after the previous one is visible: cursor order is commit
//!   order, and a reader's snapshot always holds a prefix of the feed.
//! - **Admin writes in order.** A product PUT and an allocation take that same feed lock
//!   first, so the `If-Match` check, the barcode's uniqueness and the `Idempotency-Key`
//!   lookup all read the latest committed state and hold until commit: two processes
//!   writing one product, or one key, are serialised there ([`catalog`]).
//! - **Transfers** ([`transfers`]): every writer of a transfer holds the feed lock, a push
//!   with transfer steps taking it after its branch row, so a cancel and a dispatch that
//!   cross are serialised and the dispatch is never lost.
//! - **Batched writes.** A push is a constant number of statements whatever its size: the
//!   sales and adjustments go in as `UNNEST` arrays (one statement each), the stock ledger as
//!   one multi-row upsert of the batch's per-product deltas, all pipelined on the connection
//!   (sent together, one round trip), with prepared statements cached per connection. The
//!   till's events add one statement per table they fill, in the same pipeline, and a push
//!   that touches a shift one read of those shifts before it ([`till`]).
//! - **Migrations** are embedded ([`schema::MIGRATIONS`]) and applied at start inside one transaction
//!   that first takes a transaction-scoped advisory lock, so two instances starting at once
//!   apply them once (the second waits, then finds nothing to do).
//! - **Failures** (database down, connection lost, pool exhausted for
//!   [`POOL_WAIT`]) are [`StoreError::Database`], answered 503 `storage_unavailable`; a
//!   connection that died is dropped by the pool and a new one opened on the next call.
//!
//! Backups: none of its own ([`Store::backup`] keeps its `None` default); PostgreSQL is
//! backed up with `pg_dump` or base backups plus WAL archiving (see DEPLOYMENT.md).
use super::common::to_u64;
use super::{
    AllocationOutcome, AuditFilter, AuditPageData, IdempotencyKey, Idempotent, ProductChange, ProductOutcome, PullData,
    PushOutcome, ReturnsCursor, ReturnsFilter, ReturnsPageData, SalesCursor, SalesFilter, SalesPageData, ShiftsFilter,
    Store, StoreError, UserChange, UserOutcome,
};
use super::{CancelOutcome, TransferFilter, TransferOutcome};
use async_trait::async_trait;
use colmena_shared::clock;
use colmena_shared::ids::{BranchId, ProductId};
use colmena_shared::till::CentralShift;
use colmena_shared::transfers::{Transfer, TransferRequest};
use colmena_shared::users::{User, UserId};
use colmena_shared::wire::{BranchSummary, CentralProductStock, Event, Product};
use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use std::str::FromStr;
use std::time::Duration;

mod catalog;
mod reads;
mod reports;
mod schema;
mod till;
mod tls;
mod transfers;
mod writes;

use reads::*;

/// Key of the advisory lock held while migrating ("colmena" in ASCII).
const MIGRATION_LOCK: i64 = 0x0063_6f6c_6d65_6e61;
/// Connections per central process. Two cores serve a few dozen concurrent pushes at most;
/// more connections only add contention (and count against the server's `max_connections`).
const POOL_SIZE: usize = 16;
/// How long a request waits for a pooled connection, or for a new one to be opened, before
/// it is answered 503 (the relay retries): a dead database must not hang requests.
const POOL_WAIT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

const KIND_PRODUCT: i16 = 0;
const KIND_ALLOCATION: i16 = 1;
const KIND_USER: i16 = 2;
const KIND_TRANSFER: i16 = 3;

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        // `Display` of a server error is only "db error"; the detail is in its source.
        match e.as_db_error() {
            Some(db) => StoreError::Database(format!("{}: {}", db.code().code(), db.message())),
            None => match colmena_shared::tls::tls_cause(&e) {
                // "error performing TLS handshake" alone does not say what to fix.
                Some(cause) => StoreError::Database(format!("{e}: {cause}")),
                None => StoreError::Database(e.to_string()),
            },
        }
    }
}

impl From<PoolError> for StoreError {
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::Closed => StoreError::Closed,
            PoolError::Backend(e) => e.into(),
            other => StoreError::Database(format!("no database connection: {other}")),
        }
    }
}

/// The PostgreSQL [`Store`]: a connection pool, nothing else. Every piece of state is in the
/// database, so any number of processes may hold one of these over the same database.
pub struct PgStore {
    pool: Pool,
}

impl PgStore {
    /// Connects to `url` and migrates the database. Fails (for `main` to report) if the
    /// database cannot be reached or is at a schema version newer than this binary.
    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
        let (url, tls) = tls::split_url(url).map_err(|e| StoreError::Database(format!("bad PostgreSQL URL: {e}")))?;
        let mut config = tokio_postgres::Config::from_str(&url)
            .map_err(|e| StoreError::Database(format!("bad PostgreSQL URL: {e}")))?;
        config.ssl_mode(tls.ssl_mode());
        let connector = tls.connector().map_err(StoreError::Database)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("colmena-central");
        }
        let manager = Manager::from_config(
            config,
            connector,
            ManagerConfig {
                // `Fast` only checks the connection is not closed: a dead connection fails
                // its next statement, which is a 503 and a retry, cheaper than a ping per use.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(POOL_WAIT))
            .recycle_timeout(Some(POOL_WAIT))
            .build()
            .map_err(|e| StoreError::Database(format!("cannot build the connection pool: {e}")))?;
        let store = PgStore { pool };
        store.migrate().await?;
        Ok(store)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        Ok(self.pool.get().await?)
    }
}

#[async_trait]
impl Store for PgStore {
    async fn ensure_branches(&self, branches: Vec<BranchId>) -> Result<(), StoreError> {
        let ids: Vec<&str> = branches.iter().map(BranchId::as_str).collect();
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO branches(branch_id) SELECT * FROM UNNEST($1::text[]) ON CONFLICT (branch_id) DO NOTHING",
                &[&ids],
            )
            .await?;
        Ok(())
    }

    async fn apply_push(&self, branch: BranchId, events: Vec<Event>) -> Result<PushOutcome, StoreError> {
        self.apply_push_inner(&branch, &events).await
    }

    async fn upsert_product(
        &self,
        change: ProductChange,
        key: Option<IdempotencyKey>,
    ) -> Result<Idempotent<ProductOutcome>, StoreError> {
        self.upsert_product_inner(&change, key.as_ref()).await
    }

    async fn products(&self) -> Result<Vec<Product>, StoreError> {
        self.snapshot_read(|tx| Box::pin(catalog::read_products(tx, None, clock::now_millis())))
            .await
    }

    async fn product(&self, product: ProductId) -> Result<Option<Product>, StoreError> {
        self.snapshot_read(move |tx| {
            Box::pin(async move {
                Ok(catalog::read_products(tx, Some(product.as_str()), clock::now_millis())
                    .await?
                    .pop())
            })
        })
        .await
    }

    async fn allocate(
        &self,
        branch: BranchId,
        product: ProductId,
        quantity: i64,
        key: Option<IdempotencyKey>,
    ) -> Result<Idempotent<AllocationOutcome>, StoreError> {
        self.allocate_inner(branch.as_str(), product.as_str(), quantity, key.as_ref())
            .await
    }

    async fn inventory(&self) -> Result<Vec<CentralProductStock>, StoreError> {
        self.snapshot_read(|tx| Box::pin(read_inventory(tx, None))).await
    }

    async fn inventory_of(&self, product: ProductId) -> Result<Option<CentralProductStock>, StoreError> {
        self.snapshot_read(move |tx| {
            Box::pin(async move { Ok(read_inventory(tx, Some(product.as_str())).await?.pop()) })
        })
        .await
    }

    async fn branches(&self) -> Result<Vec<BranchSummary>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &client
                    .prepare_cached(
                        "SELECT branch_id, applied_through, last_push_ms, events_applied, sales_count \
                         FROM branches ORDER BY branch_id",
                    )
                    .await?,
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(BranchSummary {
                    branch_id: r.try_get(0)?,
                    applied_through: to_u64(r.try_get(1)?),
                    last_push_at: r.try_get::<_, Option<i64>>(2)?.map(clock::millis_to_rfc3339),
                    events_applied: to_u64(r.try_get(3)?),
                    sales_count: to_u64(r.try_get(4)?),
                })
            })
            .collect()
    }

    async fn sales(
        &self,
        filter: SalesFilter,
        after: Option<SalesCursor>,
        limit: u32,
    ) -> Result<SalesPageData, StoreError> {
        self.snapshot_read(move |tx| Box::pin(async move { read_sales(tx, &filter, after, limit).await }))
            .await
    }

    async fn shifts(&self, filter: ShiftsFilter) -> Result<Vec<CentralShift>, StoreError> {
        self.snapshot_read(move |tx| Box::pin(async move { till::read_shifts(tx, &filter).await }))
            .await
    }

    async fn returns(
        &self,
        filter: ReturnsFilter,
        after: Option<ReturnsCursor>,
        limit: u32,
    ) -> Result<ReturnsPageData, StoreError> {
        self.snapshot_read(move |tx| Box::pin(async move { till::read_returns(tx, &filter, after, limit).await }))
            .await
    }

    async fn pull(
        &self,
        branch: BranchId,
        after: u64,
        limit: u32,
        include_users: bool,
    ) -> Result<PullData, StoreError> {
        self.snapshot_read(move |tx| {
            Box::pin(async move { read_pull(tx, branch.as_str(), after, limit, include_users).await })
        })
        .await
    }

    async fn put_user(&self, change: UserChange) -> Result<UserOutcome, StoreError> {
        self.put_user_inner(change).await
    }

    async fn user(&self, user: UserId) -> Result<Option<User>, StoreError> {
        self.snapshot_read(move |tx| Box::pin(async move { Ok(read_users(tx, Some(user.as_str())).await?.pop()) }))
            .await
    }

    async fn users(&self) -> Result<Vec<User>, StoreError> {
        self.snapshot_read(|tx| Box::pin(read_users(tx, None))).await
    }

    async fn audit(&self, filter: AuditFilter, after: u64, limit: u32) -> Result<AuditPageData, StoreError> {
        self.snapshot_read(move |tx| Box::pin(read_audit(tx, filter, after, limit)))
            .await
    }

    async fn create_transfer(
        &self,
        request: TransferRequest,
        key: Option<IdempotencyKey>,
    ) -> Result<Idempotent<TransferOutcome>, StoreError> {
        self.create_transfer_inner(&request, key.as_ref()).await
    }

    async fn cancel_transfer(&self, id: String) -> Result<CancelOutcome, StoreError> {
        self.cancel_transfer_inner(&id).await
    }

    async fn transfers(&self, filter: TransferFilter) -> Result<Vec<Transfer>, StoreError> {
        self.snapshot_read(move |tx| Box::pin(async move { transfers::read_transfers(tx, &filter, None).await }))
            .await
    }

    async fn transfer(&self, id: String) -> Result<Option<Transfer>, StoreError> {
        self.snapshot_read(move |tx| {
            Box::pin(async move {
                Ok(transfers::read_transfers(tx, &TransferFilter::default(), Some(&id))
                    .await?
                    .pop())
            })
        })
        .await
    }

    async fn report_rows(
        &self,
        reads: Vec<super::reports::RollupRead>,
    ) -> Result<Vec<Vec<super::reports::RollupRow>>, StoreError> {
        self.report_rows_inner(reads).await
    }

    async fn negative_stock_products(&self) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let n: i64 = client
            .query_one(
                &client
                    .prepare_cached("SELECT count(*) FROM stock WHERE stock < 0")
                    .await?,
                &[],
            )
            .await?
            .try_get(0)?;
        Ok(to_u64(n))
    }

    async fn close(&self) {
        // Every write is its own transaction, committed before it was answered: nothing is
        // queued here. Closing makes later calls fail with `Closed` and drops idle connections.
        self.pool.close();
    }
}
