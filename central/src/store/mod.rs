//! Central's storage: the one place that knows how state is kept.
//!
//! Routes talk to `Arc<dyn Store>` only, so a PostgreSQL implementation can be added beside
//! [`sqlite::SqliteStore`] without touching them. The trait is shaped by what must be atomic:
//!
//! - [`Store::apply_push`] is *one* transactional operation: reading the branch's
//!   `applied_through`, deciding duplicates/gap, inserting the events, moving the stock
//!   ledger and advancing the branch all happen in one transaction, and pushes of one branch
//!   are serialised, so every seq is applied exactly once however often or concurrently a
//!   branch retries.
//! - [`Store::upsert_product`], [`Store::allocate`] and [`Store::put_user`] write the
//!   catalog/ledger/users, the pull feed *and* the audit trail in one transaction, so a
//!   branch never sees a change central does not have, and no admin change goes unrecorded
//!   (docs/protocol.md, "Users" and "Audit trail"). The first two also decide their
//!   `If-Match` and record their `Idempotency-Key` in that transaction ([`catalog`]), so a
//!   version check cannot go stale before the write and a key is remembered iff its change
//!   was committed.
//!
//! - A push's transfer steps (`transfer_dispatched`, `transfer_received`) are applied in
//!   that same push transaction, in seq order, before its other events' rows are written; a
//!   step its transfer cannot take refuses the whole push ([`PushOutcome::TransferConflict`]).
//!   Every change of a transfer writes a feed entry for each of its two branches in its own
//!   transaction ([`transfers`], docs/protocol.md, "Transfers"). A push without transfer
//!   steps writes exactly what it wrote before.
//! - The till's events (shifts, cash movements, returns) are applied in that same push
//!   transaction. Each shift keeps running totals, updated once per push that touches it
//!   (not per event), so `GET /shifts` reads a row per shift instead of re-adding its sales;
//!   a push of plain sales (no shift, no payments) touches nothing more than before.
//!
//! - The sales rollups of the head office's reports ([`reports`]) are moved in that same
//!   push transaction, from its newly applied sales and returns only, so a duplicate push
//!   never counts twice.
//!
//! Answers that are part of the domain (a gap, an unknown product) are values of the outcome
//! enums; [`StoreError`] is only "could not read or persist right now" (503).
use async_trait::async_trait;
use colmena_shared::backup::{BackupError, BackupInfo, Backups};
use colmena_shared::ids::{BranchId, ProductId};
use colmena_shared::till::{CentralReturn, CentralShift, ShiftStatus};
use colmena_shared::users::{AuditEntry, Role, User, UserId};
use colmena_shared::wire::{AllocationResponse, BranchSummary, CentralProductStock, CentralSale, Event, Product};
use std::path::PathBuf;
use std::str::FromStr;

pub use catalog::{IdempotencyKey, Idempotent, IfMatch, ProductChange, ProductOutcome};
pub use transfers::{transit_stats, CancelOutcome, TransferFilter, TransferOutcome, TransfersApplied};

pub mod catalog;
mod common;
pub mod postgres;
pub mod reports;
pub mod sqlite;
mod till;
mod transfers;

/// Where the store lives, from `--database`. Its `Debug` hides a PostgreSQL password (see
/// [`redact_url`]), so logging the settings never leaks it.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A file path: the embedded SQLite store.
    Sqlite(PathBuf),
    /// `postgres://…` / `postgresql://…`: [`postgres::PgStore`], shared by any number of
    /// central processes.
    Postgres(String),
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DatabaseUrl::Sqlite(p) => f.debug_tuple("Sqlite").field(p).finish(),
            DatabaseUrl::Postgres(url) => f.debug_tuple("Postgres").field(&redact_url(url)).finish(),
        }
    }
}

/// A connection URL with its password replaced by `***`, both as `user:password@` and as
/// a `password=` query parameter; anything else is kept, so a log line still says which
/// server and database were meant.
pub fn redact_url(url: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    let mut out = match head.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let authority = match authority.rsplit_once('@') {
                Some((userinfo, host)) => match userinfo.split_once(':') {
                    Some((user, _)) => format!("{user}:***@{host}"),
                    None => format!("{userinfo}@{host}"),
                },
                None => authority.to_string(),
            };
            format!("{scheme}://{authority}{path}")
        }
        None => head.to_string(),
    };
    if let Some(q) = query {
        let params: Vec<String> = q
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

impl FromStr for DatabaseUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Ok(DatabaseUrl::Postgres(s.to_string()))
        } else if s.is_empty() {
            Err("--database is empty".into())
        } else {
            Ok(DatabaseUrl::Sqlite(PathBuf::from(s)))
        }
    }
}

/// The store could not do its work; nothing was changed. Reported as 503 `storage_unavailable`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(String),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    #[error("the store is shutting down")]
    Closed,
}

/// Result of [`Store::apply_push`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// Every new event was applied (possibly none: an empty or all-duplicate push).
    Applied {
        applied_through: u64,
        /// Events applied by this push.
        applied: u64,
        /// Events at or below the previous `applied_through`, skipped.
        duplicates: u64,
        /// What the till's events of this push did, for the metrics.
        till: TillApplied,
        /// What the transfer steps of this push did, for the metrics.
        transfers: TransfersApplied,
    },
    /// The first new event does not continue the branch's sequence, or the new events have
    /// a hole. Nothing was applied.
    Gap { applied_through: u64 },
    /// An event at or below `applied_through` is not the event applied under its seq (its
    /// digest differs): not a retry but a different history. Nothing was applied.
    Mismatch { seq: u64, applied_through: u64 },
    /// A transfer step that its transfer's state or this branch cannot take (an unknown
    /// transfer, the wrong branch, the wrong state, other lines): a peer sending something
    /// impossible (docs/protocol.md, "Transfers"). Nothing was applied.
    TransferConflict {
        seq: u64,
        message: String,
        applied_through: u64,
    },
}

/// The till's part of an applied push (counted for `colmena_central_returns_total` and
/// `colmena_central_shifts_closed_total`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TillApplied {
    pub returns: u64,
    /// Shifts closed whose branch summary equals central's.
    pub shifts_consistent: u64,
    /// Shifts closed whose branch summary differs from central's.
    pub shifts_inconsistent: u64,
}

/// Result of [`Store::allocate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllocationOutcome {
    Allocated(AllocationResponse),
    /// Central's catalog has no such product.
    UnknownProduct,
    /// Central has never heard of the branch (no token configured, never pushed).
    UnknownBranch,
}

/// Filters of `GET /sales` and `/sales/export`. Times are Unix milliseconds; `from` is
/// inclusive and `to` exclusive, on the sale's `sold_at`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SalesFilter {
    pub branch: Option<BranchId>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// Only sales recorded with this `cashier_id`.
    pub cashier: Option<UserId>,
}

/// A position in the sales order: by branch (`branch_id`), then `sold_at`, then `seq`.
/// `branch` is the store's own ordinal for the branch (stable for the life of the database),
/// not its id; clients see the cursor only as an opaque string (see
/// [`crate::domain::encode_cursor`]). A cursor naming no known branch yields an empty page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SalesCursor {
    pub branch: i64,
    pub sold_ms: i64,
    pub seq: i64,
}

/// A position in the returns order: by branch, then `returned_at`, then `seq`; the same
/// shape (and the same paging) as the sales order, `sold_ms` holding the return's time.
pub type ReturnsCursor = SalesCursor;

/// Where a page starts within one branch (ordinal `branch`), as `(ms, seq)` to be read
/// *after*: just after the cursor when the cursor is in this branch and not before
/// `from_ms`, else at `from_ms` (inclusive). Both stores page sales and returns this way.
pub(crate) fn start_in_branch(from_ms: Option<i64>, after: Option<SalesCursor>, branch: i64) -> (i64, i64) {
    let from = from_ms.unwrap_or(i64::MIN);
    match after {
        Some(c) if c.branch == branch && c.sold_ms >= from => (c.sold_ms, c.seq),
        _ => (from, i64::MIN),
    }
}

/// One page of sales and where the next page starts (`None` on the last page).
#[derive(Debug, Clone)]
pub struct SalesPageData {
    pub sales: Vec<CentralSale>,
    pub next: Option<SalesCursor>,
}

/// Filters of `GET /shifts`. Times are Unix ms on the shift's `opened_at`: `from`
/// inclusive, `to` exclusive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShiftsFilter {
    pub branch: Option<BranchId>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub status: Option<ShiftStatus>,
}

/// Filters of `GET /returns`, on the return's `returned_at` (as [`SalesFilter`]'s times).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReturnsFilter {
    pub branch: Option<BranchId>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
}

/// One page of returns and where the next page starts (`None` on the last page).
#[derive(Debug, Clone)]
pub struct ReturnsPageData {
    pub returns: Vec<CentralReturn>,
    pub next: Option<ReturnsCursor>,
}

/// A validated `PUT /users/{user_id}`, its PIN (if any) already hashed.
#[derive(Clone)]
pub struct UserChange {
    pub user_id: UserId,
    pub name: String,
    pub role: Role,
    /// Sorted branch ids without repeats, or exactly `["*"]`.
    pub branches: Vec<String>,
    pub active: bool,
    /// The argon2id PHC string of a new PIN; `None` keeps the current one.
    pub pin_hash: Option<String>,
}

impl std::fmt::Debug for UserChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The hash stays out of every log line.
        f.debug_struct("UserChange")
            .field("user_id", &self.user_id)
            .field("role", &self.role)
            .field("branches", &self.branches)
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

/// Result of [`Store::put_user`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserOutcome {
    /// Created or updated (or unchanged: the same fields again and no new PIN).
    Saved(User),
    /// A new user needs a PIN.
    PinRequired,
    /// A listed branch central does not know (no token configured, never pushed).
    UnknownBranch(String),
}

/// Time bounds of `GET /audit` (Unix ms; `from` inclusive, `to` exclusive).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
}

/// One page of the audit trail; `next` is the last id returned when more follow.
#[derive(Debug, Clone)]
pub struct AuditPageData {
    pub entries: Vec<AuditEntry>,
    pub next: Option<u64>,
}

/// One entry of the pull feed for a branch.
#[derive(Debug, Clone)]
pub struct PullData {
    pub changes: Vec<colmena_shared::wire::Change>,
    pub applied_through: u64,
}

#[async_trait]
pub trait Store: Send + Sync {
    /// Makes sure these branches are listed (with `applied_through` 0 if new).
    async fn ensure_branches(&self, branches: Vec<BranchId>) -> Result<(), StoreError>;

    /// Applies one push of `branch` (see the module doc). `events` must already be
    /// validated and strictly increasing in `seq`.
    async fn apply_push(&self, branch: BranchId, events: Vec<Event>) -> Result<PushOutcome, StoreError>;

    /// Creates or replaces a product ([`catalog::plan_product_put`]): `If-Match`, the
    /// barcode's uniqueness and the idempotency record are all decided in the write's own
    /// transaction. A new product gets version 1; a change increments the version and
    /// appends a product change (with the stored base price and schedule) to the pull feed;
    /// the same fields again change nothing (PUT is idempotent).
    async fn upsert_product(
        &self,
        change: ProductChange,
        key: Option<IdempotencyKey>,
    ) -> Result<Idempotent<ProductOutcome>, StoreError>;

    /// Every product as clients read it now (price in force, schedule still to come).
    async fn products(&self) -> Result<Vec<Product>, StoreError>;

    /// One product as clients read it now; `None` if the catalog has no such product.
    async fn product(&self, product: ProductId) -> Result<Option<Product>, StoreError>;

    /// Sends stock to (or, negative, withdraws it from) a branch: ledger entry, pull feed
    /// entry and idempotency record in one transaction.
    async fn allocate(
        &self,
        branch: BranchId,
        product: ProductId,
        quantity: i64,
        key: Option<IdempotencyKey>,
    ) -> Result<Idempotent<AllocationOutcome>, StoreError>;

    /// Every product central knows (catalog or ledger), by `product_id`.
    async fn inventory(&self) -> Result<Vec<CentralProductStock>, StoreError>;

    /// One product; `None` if central knows neither the product nor any ledger entry for it.
    async fn inventory_of(&self, product: ProductId) -> Result<Option<CentralProductStock>, StoreError>;

    /// Every branch central knows, by `branch_id`.
    async fn branches(&self) -> Result<Vec<BranchSummary>, StoreError>;

    /// Sales in `(branch_id, sold_at, seq)` order after `after`, at most `limit`. Within a
    /// branch this is its selling order; grouping by branch keeps every push an append to
    /// its branch's own part of the store.
    async fn sales(
        &self,
        filter: SalesFilter,
        after: Option<SalesCursor>,
        limit: u32,
    ) -> Result<SalesPageData, StoreError>;

    /// Shifts central has seen opened, by `branch_id`, then `opened_at`, then `shift_id`,
    /// each with central's own summary from the events it applied (see the module doc).
    async fn shifts(&self, filter: ShiftsFilter) -> Result<Vec<CentralShift>, StoreError>;

    /// Returns in `(branch_id, returned_at, seq)` order after `after`, at most `limit`.
    async fn returns(
        &self,
        filter: ReturnsFilter,
        after: Option<ReturnsCursor>,
        limit: u32,
    ) -> Result<ReturnsPageData, StoreError>;

    /// Feed entries after `after` for `branch`: every product change, the branch's own
    /// allocations and the changes of the transfers it sends or receives, in cursor order, at most `limit`; plus its `applied_through`. With
    /// `include_users`, also the user changes whose old or new branches include `branch`
    /// (or `*`), each with its PIN hash; without, none (docs/protocol.md, "Sync pull").
    async fn pull(&self, branch: BranchId, after: u64, limit: u32, include_users: bool)
        -> Result<PullData, StoreError>;

    /// Creates or updates a user: the users table, a `user` feed entry and an audit entry in
    /// one transaction. A change bumps `version`; the same fields again without a PIN change
    /// nothing.
    async fn put_user(&self, change: UserChange) -> Result<UserOutcome, StoreError>;

    async fn user(&self, user: UserId) -> Result<Option<User>, StoreError>;

    /// Every user, by `user_id` (never a hash).
    async fn users(&self) -> Result<Vec<User>, StoreError>;

    /// Audit entries after id `after` (0: from the start), in id order, at most `limit`.
    async fn audit(&self, filter: AuditFilter, after: u64, limit: u32) -> Result<AuditPageData, StoreError>;

    /// Creates a transfer (docs/protocol.md, "Transfers"): both branches known, every
    /// product in the catalog; the transfer, a feed entry for each of its two branches, an
    /// audit entry and the idempotency record in one transaction.
    async fn create_transfer(
        &self,
        request: colmena_shared::transfers::TransferRequest,
        key: Option<IdempotencyKey>,
    ) -> Result<Idempotent<TransferOutcome>, StoreError>;

    /// Cancels a transfer still `requested` (feed entries and audit entry with it); an
    /// already cancelled one is answered as it is.
    async fn cancel_transfer(&self, id: String) -> Result<CancelOutcome, StoreError>;

    /// Transfers matching `filter`, by `transfer_id`.
    async fn transfers(&self, filter: TransferFilter) -> Result<Vec<colmena_shared::transfers::Transfer>, StoreError>;

    async fn transfer(&self, id: String) -> Result<Option<colmena_shared::transfers::Transfer>, StoreError>;

    /// Number of (branch, product) pairs whose ledger stock is below zero.
    async fn negative_stock_products(&self) -> Result<u64, StoreError>;

    /// The report rollups' rows for `reads`, all from one snapshot (docs/protocol.md,
    /// "Reports"; [`reports`]).
    async fn report_rows(&self, reads: Vec<reports::RollupRead>) -> Result<Vec<Vec<reports::RollupRow>>, StoreError>;

    /// Takes an online backup of the whole store into `backups`: one consistent snapshot,
    /// taken while central keeps serving. `None`: this store has no backup of its own;
    /// PostgreSQL is backed up with its own tools (`pg_dump`, base backups + WAL archiving).
    async fn backup(&self, _backups: Backups) -> Option<Result<BackupInfo, BackupError>> {
        None
    }

    /// Finishes queued writes and closes the store. Later calls fail with `Closed`.
    async fn close(&self);
}

#[cfg(test)]
mod redaction_tests {
    use super::*;

    #[test]
    fn a_database_url_never_shows_its_password_in_debug() {
        for (url, shown) in [
            (
                "postgres://colmena:s3cret@db:5432/colmena",
                "postgres://colmena:***@db:5432/colmena",
            ),
            (
                "postgresql://u:p%40ss@h/d?sslmode=require",
                "postgresql://u:***@h/d?sslmode=require",
            ),
            (
                "postgres://h/d?user=u&password=s3cret",
                "postgres://h/d?user=u&password=***",
            ),
            ("postgres://u@h/d", "postgres://u@h/d"),
        ] {
            let debug = format!("{:?}", DatabaseUrl::from_str(url).unwrap());
            assert!(debug.contains(shown), "{debug}");
            assert!(!debug.contains("s3cret") && !debug.contains("p%40ss"), "{debug}");
        }
    }
}
