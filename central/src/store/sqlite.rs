//! The embedded store: one SQLite file in WAL mode, `synchronous=FULL` (a commit is on
//! disk before a push is answered).
//!
//! Layout:
//! - **One writer connection, owned by a dedicated thread.** Every write is a job sent over a
//!   bounded channel and run there in order, so writes are serialised without a lock (two
//!   pushes of one branch can never interleave) and no async worker ever blocks on SQLite.
//! - **Group commit.** The jobs that queue while the writer is busy run together, each in its
//!   own savepoint of one transaction, and share its commit and fsync ([`Writer::run`]). On a
//!   disk whose fsync takes milliseconds this is what lets many branches push at once.
//! - **Reader connections in a small pool**, used through `spawn_blocking`. In WAL mode they
//!   read a committed snapshot and never wait for the writer, so queries don't slow pushes.
//! - **Schema migrations** are embedded ([`MIGRATIONS`]) and applied at open, tracked by
//!   `PRAGMA user_version`.
//!
//! Tables: `branches` (progress per branch), `products` (catalog), `changes` (the pull feed;
//! its `cursor` is the rowid, strictly increasing, global to all branches), `stock` (the
//! materialised ledger, one row per (product, branch) that ever had an entry), `sales` (one row
//! per sale event, lines in a compact JSON column) and `adjustments`. Allocations live in
//! `changes`: they are the feed entries themselves.
use super::{AllocationOutcome, PullData, PushOutcome, SalesCursor, SalesFilter, SalesPageData, Store, StoreError};
use async_trait::async_trait;
use colmena_shared::backup::{BackupError, BackupInfo, Backups};
use colmena_shared::checkpoint::Checkpointer;
use colmena_shared::clock;
use colmena_shared::ids::{BranchId, ProductId};
use colmena_shared::wire::{
    AllocationResponse, BranchSummary, CentralProductStock, CentralSale, CentralSaleLine, Change, ChangeKind, Event,
    EventKind, Product,
};
use rusqlite::{params, params_from_iter, Connection, OpenFlags, OptionalExtension};
use std::collections::{BTreeMap, VecDeque};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Schema versions; `MIGRATIONS[i]` takes the database from `user_version` i to i+1.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE branches (
    branch_key      INTEGER PRIMARY KEY,            -- internal ordinal, also in sales cursors
    branch_id       TEXT NOT NULL UNIQUE,
    applied_through INTEGER NOT NULL DEFAULT 0,     -- highest seq applied
    last_push_ms    INTEGER,                        -- last accepted push, Unix ms
    events_applied  INTEGER NOT NULL DEFAULT 0,
    sales_count     INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE products (
    product_id  TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    price_cents INTEGER NOT NULL,
    version     INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL
) WITHOUT ROWID;
-- The pull feed. kind 0 = product change (global), 1 = allocation (branch_key set).
CREATE TABLE changes (
    cursor      INTEGER PRIMARY KEY,
    kind        INTEGER NOT NULL,
    product_id  TEXT NOT NULL,
    branch_key  INTEGER,
    name        TEXT,
    price_cents INTEGER,
    version     INTEGER,
    quantity    INTEGER,
    created_ms  INTEGER NOT NULL
);
CREATE INDEX changes_by_branch ON changes(branch_key, cursor);
-- The ledger, materialised: Σ allocations + Σ adjustments − Σ sold per (branch, product).
-- Clustered by branch: a push touches only its own branch's few pages. A product's row
-- across branches is found by one key lookup per branch (see read_inventory).
CREATE TABLE stock (
    branch_key INTEGER NOT NULL,
    product_id TEXT NOT NULL,
    stock      INTEGER NOT NULL,
    PRIMARY KEY (branch_key, product_id)
) WITHOUT ROWID;
-- Oversold (branch, product) pairs, for the metric; keyed like stock so a push touches
-- only its own branch's entries.
CREATE INDEX stock_negative ON stock(branch_key, product_id) WHERE stock < 0;
-- lines: [["P1",2,550],...] = [product_id, quantity, unit_price_cents] per line.
CREATE TABLE sales (
    branch_key  INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    sale_id     TEXT NOT NULL,
    sold_ms     INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    total_cents INTEGER NOT NULL,
    cashier_id  TEXT,
    lines       TEXT NOT NULL,
    PRIMARY KEY (branch_key, seq)
) WITHOUT ROWID;
-- Entries (branch_key, sold_ms, seq): serves /sales in (branch, sold_at, seq) order. A push
-- appends at its own branch's end. (A global index on sold_ms would make every push touch
-- hundreds of pages, as branches' recent sales interleave.)
CREATE INDEX sales_by_branch_time ON sales(branch_key, sold_ms);
CREATE TABLE adjustments (
    branch_key     INTEGER NOT NULL,
    seq            INTEGER NOT NULL,
    product_id     TEXT NOT NULL,
    quantity_delta INTEGER NOT NULL,
    reason         TEXT,
    occurred_ms    INTEGER NOT NULL,
    received_ms    INTEGER NOT NULL,
    PRIMARY KEY (branch_key, seq)
) WITHOUT ROWID;
"#];

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

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

fn corrupt(what: impl Into<String>) -> StoreError {
    StoreError::Corrupt(what.into())
}

fn to_i64(what: &str, v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Database(format!("{what} {v} is out of range")))
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
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
            buf: Vec::with_capacity(256),
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

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| StoreError::Database(format!("cannot open {}: {e}", path.display())))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

/// `PRAGMA application_id` of a central store ("COLC"), so restore can tell our files.
pub const APPLICATION_ID: i32 = 0x434F_4C43;

fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let app_id: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    if app_id != 0 && app_id != APPLICATION_ID {
        return Err(StoreError::Corrupt(format!(
            "not a colmena central store (application_id {app_id:#x})"
        )));
    }
    if app_id == 0 {
        conn.pragma_update(None, "application_id", APPLICATION_ID)?;
    }
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(StoreError::Database(format!(
            "the database is at schema version {version}, newer than this binary knows ({known})"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "applied schema migration");
    }
    Ok(())
}

/// How often the background checkpointer runs ([`colmena_shared::checkpoint`]): it took
/// about a tenth of the writer's time, the one thread every push waits for.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(10);

/// Idle reader connections, opened on demand up to [`MAX_READERS`].
struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
}

impl Readers {
    fn open(&self) -> Result<Connection, StoreError> {
        let conn = open_connection(&self.path)?;
        conn.pragma_update(None, "query_only", true)?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(conn)
    }
    fn take(&self) -> Result<Connection, StoreError> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match idle {
            Some(c) => Ok(c),
            None => self.open(),
        }
    }
    fn put(&self, conn: Connection) {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).push(conn);
    }
}

/// The writer thread's state.
struct Writer {
    conn: Connection,
    /// Reused for encoding sale lines, so the apply loop does not allocate per event.
    buf: Vec<u8>,
}

impl Writer {
    /// Group commit: the jobs waiting when the writer is free (up to [`MAX_GROUP`]) run in
    /// one transaction, each inside its own savepoint, and share one commit, i.e. one fsync.
    /// Nobody is answered before that commit returns, so a 200 still means "on disk"; a job
    /// that fails rolls back its own savepoint only, and a failed commit fails every job of
    /// the group (their branches push again, and the per-branch dedup keeps that exact).
    fn run(&mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut waiting: VecDeque<Job> = VecDeque::new();
        let mut stopping = false;
        loop {
            if waiting.is_empty() {
                if stopping {
                    break;
                }
                match rx.blocking_recv() {
                    Some(Msg::Job(job)) => waiting.push_back(job),
                    Some(Msg::Stop) | None => break,
                }
            }
            while !stopping && waiting.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(Msg::Job(job)) => waiting.push_back(job),
                    Ok(Msg::Stop) => stopping = true,
                    Err(_) => break,
                }
            }
            self.run_group(&mut waiting);
        }
        // Fold the WAL back into the database so a stopped central leaves one tidy file.
        if let Err(e) = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
            tracing::warn!(error = %e, "checkpoint at close failed");
        }
    }

    /// Runs the jobs at the front of `waiting` as one group transaction and answers them.
    /// Jobs left in `waiting` (only when SQLite abandoned the transaction under a job) run in
    /// the next group, so no job ever runs outside a transaction it knows about.
    fn run_group(&mut self, waiting: &mut VecDeque<Job>) {
        // A job alone needs no outer transaction: its savepoint is the transaction, and SQLite
        // then keeps no statement journal for it. Without the outer transaction (also when
        // BEGIN failed: the error shows up again in the job itself) jobs run one at a time.
        let grouped = waiting.len() > 1 && self.conn.execute_batch("BEGIN IMMEDIATE").is_ok();
        let mut answers: Vec<Answer> = Vec::with_capacity(waiting.len());
        while let Some(job) = waiting.pop_front() {
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(self))) {
                Ok(answer) => answers.push(answer),
                // Its savepoint was rolled back as the panic unwound; its caller gets an error
                // when the dropped answer closes its channel.
                Err(_) => tracing::error!("a store write panicked; its savepoint was rolled back"),
            }
            // Without a group: one job per transaction. With one that SQLite rolled back
            // (disk full, I/O error): the rest wait for the next group.
            if !grouped || self.conn.is_autocommit() {
                break;
            }
        }
        let committed = if !grouped {
            // A job's savepoint ends its own transaction, even when it panics (the savepoint
            // rolls back as it drops); should one ever leave a transaction open, close it.
            if !self.conn.is_autocommit() {
                tracing::error!("a store write left its transaction open; rolled back");
                let _ = self.conn.execute_batch("ROLLBACK");
            }
            Ok(())
        } else if self.conn.is_autocommit() {
            Err(StoreError::Database("the transaction was rolled back by SQLite".into()))
        } else {
            self.conn.execute_batch("COMMIT").map_err(|e| {
                if !self.conn.is_autocommit() {
                    let _ = self.conn.execute_batch("ROLLBACK");
                }
                StoreError::from(e)
            })
        };
        // Answers are sent after the commit and outside any lock.
        for answer in answers {
            answer(committed.as_ref().map(|_| ()));
        }
    }

    /// The branch's key and `applied_through`, creating the branch if it is new.
    fn branch(conn: &Connection, branch: &str) -> Result<(i64, i64), StoreError> {
        let found = conn
            .prepare_cached("SELECT branch_key, applied_through FROM branches WHERE branch_id = ?1")?
            .query_row([branch], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        if let Some(found) = found {
            return Ok(found);
        }
        conn.prepare_cached("INSERT INTO branches(branch_id) VALUES (?1)")?
            .execute([branch])?;
        Ok((conn.last_insert_rowid(), 0))
    }

    fn apply_push(&mut self, branch: &BranchId, events: &[Event]) -> Result<PushOutcome, StoreError> {
        let now = clock::now_millis();
        let tx = self.conn.savepoint()?;
        let (key, at) = Self::branch(&tx, branch.as_str())?;
        let at = to_u64(at);
        // Events are strictly increasing, so the duplicates are a prefix.
        let first_new = events.partition_point(|e| e.seq <= at);
        let (dups, new) = events.split_at(first_new);
        if let Some(first) = new.first() {
            let continues = first.seq == at + 1 && new.windows(2).all(|w| w[1].seq == w[0].seq + 1);
            if !continues {
                return Ok(PushOutcome::Gap { applied_through: at }); // dropping tx rolls back
            }
        }

        let mut deltas: BTreeMap<&str, i64> = BTreeMap::new();
        let mut sales = 0i64;
        {
            let mut insert_sale = tx.prepare_cached(
                "INSERT INTO sales(branch_key, seq, sale_id, sold_ms, received_ms, total_cents, cashier_id, lines) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            let mut insert_adjustment = tx.prepare_cached(
                "INSERT INTO adjustments(branch_key, seq, product_id, quantity_delta, reason, occurred_ms, received_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for e in new {
                let seq = to_i64("seq", e.seq)?;
                let occurred = clock::parse_rfc3339_millis(&e.occurred_at)
                    .ok_or_else(|| StoreError::Database(format!("event {seq}: unparsable occurred_at")))?;
                match e.kind {
                    EventKind::Sale => {
                        let lines = e.lines.as_deref().unwrap_or_default();
                        encode_lines(&mut self.buf, lines);
                        let encoded = std::str::from_utf8(&self.buf).map_err(|e| corrupt(e.to_string()))?;
                        insert_sale.execute(params![
                            key,
                            seq,
                            e.sale_id.as_deref().unwrap_or_default(),
                            occurred,
                            now,
                            e.total_cents.unwrap_or_default(),
                            e.cashier_id.as_deref(),
                            encoded,
                        ])?;
                        for l in lines {
                            *deltas.entry(l.product_id.as_str()).or_default() -= l.quantity;
                        }
                        sales += 1;
                    }
                    EventKind::Adjustment => {
                        let product = e.product_id.as_ref().map(ProductId::as_str).unwrap_or_default();
                        let delta = e.quantity_delta.unwrap_or_default();
                        insert_adjustment.execute(params![
                            key,
                            seq,
                            product,
                            delta,
                            e.reason.as_deref(),
                            occurred,
                            now
                        ])?;
                        *deltas.entry(product).or_default() += delta;
                    }
                }
            }
            let mut upsert = tx.prepare_cached(
                "INSERT INTO stock(product_id, branch_key, stock) VALUES (?1, ?2, ?3) \
                 ON CONFLICT(branch_key, product_id) DO UPDATE SET stock = stock + excluded.stock",
            )?;
            for (product, delta) in &deltas {
                upsert.execute(params![product, key, delta])?;
            }
        }
        let applied_through = new.last().map_or(at, |e| e.seq);
        tx.prepare_cached(
            "UPDATE branches SET applied_through = ?2, last_push_ms = ?3, \
             events_applied = events_applied + ?4, sales_count = sales_count + ?5 WHERE branch_key = ?1",
        )?
        .execute(params![
            key,
            to_i64("seq", applied_through)?,
            now,
            new.len() as i64,
            sales
        ])?;
        crate::failpoints::push_before_commit();
        tx.commit()?;
        Ok(PushOutcome::Applied {
            applied_through,
            applied: new.len() as u64,
            duplicates: dups.len() as u64,
        })
    }

    fn upsert_product(&mut self, product: &str, name: &str, price_cents: i64) -> Result<Product, StoreError> {
        let now = clock::now_millis();
        let tx = self.conn.savepoint()?;
        let old: Option<(String, i64, i64)> = tx
            .prepare_cached("SELECT name, price_cents, version FROM products WHERE product_id = ?1")?
            .query_row([product], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        let version = match &old {
            Some((n, p, v)) if n == name && *p == price_cents => {
                return Ok(Product {
                    product_id: product.to_string(),
                    name: name.to_string(),
                    price_cents,
                    version: to_u64(*v),
                });
            }
            Some((_, _, v)) => v + 1,
            None => 1,
        };
        tx.prepare_cached(
            "INSERT INTO products(product_id, name, price_cents, version, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT(product_id) DO UPDATE SET name = excluded.name, price_cents = excluded.price_cents, \
             version = excluded.version, updated_ms = excluded.updated_ms",
        )?
        .execute(params![product, name, price_cents, version, now])?;
        tx.prepare_cached(
            "INSERT INTO changes(kind, product_id, name, price_cents, version, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![KIND_PRODUCT, product, name, price_cents, version, now])?;
        tx.commit()?;
        Ok(Product {
            product_id: product.to_string(),
            name: name.to_string(),
            price_cents,
            version: to_u64(version),
        })
    }

    fn allocate(&mut self, branch: &str, product: &str, quantity: i64) -> Result<AllocationOutcome, StoreError> {
        let now = clock::now_millis();
        let tx = self.conn.savepoint()?;
        let key: Option<i64> = tx
            .prepare_cached("SELECT branch_key FROM branches WHERE branch_id = ?1")?
            .query_row([branch], |r| r.get(0))
            .optional()?;
        let Some(key) = key else {
            return Ok(AllocationOutcome::UnknownBranch);
        };
        let known: Option<i64> = tx
            .prepare_cached("SELECT 1 FROM products WHERE product_id = ?1")?
            .query_row([product], |r| r.get(0))
            .optional()?;
        if known.is_none() {
            return Ok(AllocationOutcome::UnknownProduct);
        }
        tx.prepare_cached(
            "INSERT INTO changes(kind, product_id, branch_key, quantity, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![KIND_ALLOCATION, product, key, quantity, now])?;
        let cursor = tx.last_insert_rowid();
        let branch_stock: i64 = tx
            .prepare_cached(
                "INSERT INTO stock(product_id, branch_key, stock) VALUES (?1, ?2, ?3) \
                 ON CONFLICT(branch_key, product_id) DO UPDATE SET stock = stock + excluded.stock RETURNING stock",
            )?
            .query_row(params![product, key, quantity], |r| r.get(0))?;
        tx.commit()?;
        Ok(AllocationOutcome::Allocated(AllocationResponse {
            branch_id: branch.to_string(),
            product_id: product.to_string(),
            quantity,
            cursor: to_u64(cursor),
            branch_stock,
        }))
    }

    fn ensure_branches(&mut self, branches: &[BranchId]) -> Result<(), StoreError> {
        let tx = self.conn.savepoint()?;
        {
            let mut insert = tx.prepare_cached("INSERT OR IGNORE INTO branches(branch_id) VALUES (?1)")?;
            for b in branches {
                insert.execute([b.as_str()])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

/// Writes sale lines as `[["P1",2,550],...]`. Product ids are `[A-Za-z0-9._-]` (validated at
/// the boundary), so they need no JSON escaping.
pub(super) fn encode_lines(buf: &mut Vec<u8>, lines: &[colmena_shared::wire::EventLine]) {
    buf.clear();
    buf.push(b'[');
    for (i, l) in lines.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        // Writing into a Vec cannot fail.
        let _ = write!(
            buf,
            "[\"{}\",{},{}]",
            l.product_id.as_str(),
            l.quantity,
            l.unit_price_cents
        );
    }
    buf.push(b']');
}

pub(super) fn decode_lines(text: &str) -> Result<Vec<CentralSaleLine>, StoreError> {
    let raw: Vec<(String, i64, i64)> = serde_json::from_str(text).map_err(|e| corrupt(format!("sale lines: {e}")))?;
    Ok(raw
        .into_iter()
        .map(|(product_id, quantity, unit_price_cents)| CentralSaleLine {
            product_id,
            quantity,
            unit_price_cents,
            line_total_cents: quantity.saturating_mul(unit_price_cents),
        })
        .collect())
}

fn read_products(conn: &Connection) -> Result<Vec<Product>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT product_id, name, price_cents, version FROM products ORDER BY product_id")?;
    let rows = stmt.query_map([], |r| {
        Ok(Product {
            product_id: r.get(0)?,
            name: r.get(1)?,
            price_cents: r.get(2)?,
            version: to_u64(r.get(3)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn read_inventory(conn: &Connection, only: Option<&str>) -> Result<Vec<CentralProductStock>, StoreError> {
    let mut out: BTreeMap<String, CentralProductStock> = BTreeMap::new();
    let (products_sql, stock_sql) = match only {
        Some(_) => (
            "SELECT product_id, name, price_cents FROM products WHERE product_id = ?1",
            // One (branch_key, product_id) lookup per branch: CROSS JOIN keeps branches outside.
            "SELECT s.product_id, b.branch_id, s.stock FROM branches b CROSS JOIN stock s \
             ON s.branch_key = b.branch_key AND s.product_id = ?1",
        ),
        None => (
            "SELECT product_id, name, price_cents FROM products",
            "SELECT s.product_id, b.branch_id, s.stock FROM stock s JOIN branches b ON b.branch_key = s.branch_key",
        ),
    };
    let args: Vec<&str> = only.into_iter().collect();
    {
        let mut stmt = conn.prepare_cached(products_sql)?;
        let mut rows = stmt.query(params_from_iter(args.iter()))?;
        while let Some(r) = rows.next()? {
            let id: String = r.get(0)?;
            let p = inventory_entry(&mut out, id);
            p.name = Some(r.get(1)?);
            p.price_cents = Some(r.get(2)?);
        }
    }
    {
        let mut stmt = conn.prepare_cached(stock_sql)?;
        let mut rows = stmt.query(params_from_iter(args.iter()))?;
        while let Some(r) = rows.next()? {
            let id: String = r.get(0)?;
            let branch: String = r.get(1)?;
            let stock: i64 = r.get(2)?;
            let p = inventory_entry(&mut out, id);
            p.total_stock = p.total_stock.saturating_add(stock);
            p.by_branch.insert(branch, stock);
        }
    }
    Ok(out.into_values().collect())
}

fn inventory_entry(out: &mut BTreeMap<String, CentralProductStock>, id: String) -> &mut CentralProductStock {
    out.entry(id).or_insert_with_key(|id| CentralProductStock {
        product_id: id.clone(),
        name: None,
        price_cents: None,
        total_stock: 0,
        by_branch: BTreeMap::new(),
    })
}

fn read_branches(conn: &Connection) -> Result<Vec<BranchSummary>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT branch_id, applied_through, last_push_ms, events_applied, sales_count FROM branches ORDER BY branch_id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(BranchSummary {
            branch_id: r.get(0)?,
            applied_through: to_u64(r.get(1)?),
            last_push_at: r.get::<_, Option<i64>>(2)?.map(clock::millis_to_rfc3339),
            events_applied: to_u64(r.get(3)?),
            sales_count: to_u64(r.get(4)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Sales in (branch_id, sold_ms, seq) order: branch by branch (from the cursor's branch on),
/// each an index range scan of `sales_by_branch_time`, until the page is full.
fn read_sales(
    conn: &Connection,
    filter: &SalesFilter,
    after: Option<SalesCursor>,
    limit: u32,
) -> Result<SalesPageData, StoreError> {
    let after_branch: Option<String> = match after {
        Some(c) => match conn
            .prepare_cached("SELECT branch_id FROM branches WHERE branch_key = ?1")?
            .query_row([c.branch], |r| r.get(0))
            .optional()?
        {
            Some(id) => Some(id),
            None => {
                return Ok(SalesPageData {
                    sales: Vec::new(),
                    next: None,
                })
            } // not our cursor
        },
        None => None,
    };
    let branches: Vec<(i64, String)> = {
        let mut stmt = conn.prepare_cached(
            "SELECT branch_key, branch_id FROM branches WHERE branch_id >= ?1 AND (?2 IS NULL OR branch_id = ?2) \
             ORDER BY branch_id",
        )?;
        let rows = stmt.query_map(
            params![
                after_branch.as_deref().unwrap_or(""),
                filter.branch.as_ref().map(BranchId::as_str)
            ],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        rows.collect::<Result<_, _>>()?
    };
    let mut stmt = conn.prepare_cached(
        "SELECT sold_ms, seq, sale_id, received_ms, total_cents, cashier_id, lines FROM sales \
         WHERE branch_key = ?1 AND (sold_ms, seq) > (?2, ?3) AND sold_ms < ?4 \
         ORDER BY sold_ms, seq LIMIT ?5",
    )?;
    let want = limit as usize;
    let mut sales = Vec::with_capacity(want.min(1024));
    let mut last = None;
    for (key, branch_id) in branches {
        let (from_ms, from_seq) = super::start_in_branch(filter, after, key);
        let to_ms = filter.to_ms.unwrap_or(i64::MAX);
        // One more than needed tells whether another page follows.
        let room = (want + 1 - sales.len()) as i64;
        let mut rows = stmt.query(params![key, from_ms, from_seq, to_ms, room])?;
        while let Some(r) = rows.next()? {
            if sales.len() == want {
                return Ok(SalesPageData { sales, next: last });
            }
            let sold_ms: i64 = r.get(0)?;
            let seq: i64 = r.get(1)?;
            let lines: String = r.get(6)?;
            sales.push(CentralSale {
                sale_id: r.get(2)?,
                branch_id: branch_id.clone(),
                seq: to_u64(seq),
                lines: decode_lines(&lines)?,
                total_cents: r.get(4)?,
                sold_at: clock::millis_to_rfc3339(sold_ms),
                cashier_id: r.get(5)?,
                received_at: clock::millis_to_rfc3339(r.get(3)?),
            });
            last = Some(SalesCursor {
                sold_ms,
                branch: key,
                seq,
            });
        }
    }
    Ok(SalesPageData { sales, next: None })
}

fn read_pull(conn: &Connection, branch: &str, after: u64, limit: u32) -> Result<PullData, StoreError> {
    let after = to_i64("cursor", after)?;
    // An unknown branch (key -1) gets the product changes only.
    let (key, applied_through) = conn
        .prepare_cached("SELECT branch_key, applied_through FROM branches WHERE branch_id = ?1")?
        .query_row([branch], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
        .optional()?
        .unwrap_or((-1, 0));
    // Two index range scans merged in cursor order: global product changes, and this
    // branch's allocations (skipping every other branch's).
    let mut stmt = conn.prepare_cached(
        "SELECT cursor, kind, product_id, name, price_cents, version, quantity FROM changes \
         WHERE branch_key IS NULL AND cursor > ?1 \
         UNION ALL \
         SELECT cursor, kind, product_id, name, price_cents, version, quantity FROM changes \
         WHERE branch_key = ?2 AND cursor > ?1 \
         ORDER BY cursor LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![after, key, limit], |r| {
        let kind: i64 = r.get(1)?;
        Ok((
            kind,
            Change {
                cursor: to_u64(r.get(0)?),
                kind: ChangeKind::Product,
                product_id: r.get(2)?,
                name: r.get(3)?,
                price_cents: r.get(4)?,
                version: r.get::<_, Option<i64>>(5)?.map(to_u64),
                quantity: r.get(6)?,
            },
        ))
    })?;
    let mut changes = Vec::new();
    for row in rows {
        let (kind, mut change) = row?;
        change.kind = match kind {
            KIND_PRODUCT => ChangeKind::Product,
            KIND_ALLOCATION => ChangeKind::Allocation,
            other => return Err(corrupt(format!("change {} has kind {other}", change.cursor))),
        };
        changes.push(change);
    }
    Ok(PullData {
        changes,
        applied_through: to_u64(applied_through),
    })
}

#[async_trait]
impl Store for SqliteStore {
    async fn ensure_branches(&self, branches: Vec<BranchId>) -> Result<(), StoreError> {
        self.write(move |w| w.ensure_branches(&branches)).await
    }

    async fn apply_push(&self, branch: BranchId, events: Vec<Event>) -> Result<PushOutcome, StoreError> {
        self.write(move |w| w.apply_push(&branch, &events)).await
    }

    async fn upsert_product(&self, product: ProductId, name: String, price_cents: i64) -> Result<Product, StoreError> {
        self.write(move |w| w.upsert_product(product.as_str(), &name, price_cents))
            .await
    }

    async fn products(&self) -> Result<Vec<Product>, StoreError> {
        self.read(read_products).await
    }

    async fn allocate(
        &self,
        branch: BranchId,
        product: ProductId,
        quantity: i64,
    ) -> Result<AllocationOutcome, StoreError> {
        self.write(move |w| w.allocate(branch.as_str(), product.as_str(), quantity))
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

    async fn pull(&self, branch: BranchId, after: u64, limit: u32) -> Result<PullData, StoreError> {
        self.read(move |c| read_pull(c, branch.as_str(), after, limit)).await
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

#[cfg(test)]
mod tests {
    use super::*;
    use colmena_shared::wire::EventLine;
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

    /// A fresh store path in a temp dir that is removed when the guard drops (bind it for the
    /// whole test: the store's files must outlive every connection to them).
    struct TmpStore {
        dir: PathBuf,
        path: PathBuf,
    }

    impl Drop for TmpStore {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn tmp(tag: &str) -> TmpStore {
        let dir = std::env::temp_dir().join(format!("colmena-central-unit-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.db");
        TmpStore { dir, path }
    }

    fn sale(seq: u64, product: &str, q: i64) -> Event {
        Event {
            seq,
            kind: EventKind::Sale,
            occurred_at: "2026-11-23T16:00:00Z".into(),
            sale_id: Some(format!("CUS-{seq:010}")),
            lines: Some(vec![EventLine {
                product_id: ProductId::parse(product).unwrap(),
                quantity: q,
                unit_price_cents: 5,
            }]),
            total_cents: Some(5 * q),
            cashier_id: None,
            product_id: None,
            quantity_delta: None,
            reason: None,
        }
    }

    /// A push that applied `n` new events, none duplicate, up to `through`.
    fn applied(through: u64, n: u64) -> PushOutcome {
        PushOutcome::Applied {
            applied_through: through,
            applied: n,
            duplicates: 0,
        }
    }

    fn cus() -> BranchId {
        BranchId::parse("CUS").unwrap()
    }

    #[test]
    fn lines_round_trip_through_their_compact_encoding() {
        let mut buf = Vec::new();
        let lines = sale(1, "P-1.x", 3).lines.unwrap();
        encode_lines(&mut buf, &lines);
        assert_eq!(std::str::from_utf8(&buf).unwrap(), r#"[["P-1.x",3,5]]"#);
        let back = decode_lines(std::str::from_utf8(&buf).unwrap()).unwrap();
        assert_eq!(back[0].line_total_cents, 15);
    }

    #[tokio::test]
    async fn queries_use_their_indexes() {
        let tmp = tmp("plans");
        let path = &tmp.path;
        let store = SqliteStore::open(path).unwrap();
        store.apply_push(cus(), vec![sale(1, "P1", 1)]).await.unwrap();
        let conn = Connection::open(path).unwrap();
        let plan = |sql: &str| -> String {
            let mut s = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let rows = s.query_map([], |r| r.get::<_, String>(3)).unwrap();
            rows.map(|r| r.unwrap()).collect::<Vec<_>>().join(" | ")
        };
        let p = plan(
            "SELECT * FROM sales WHERE branch_key = 1 AND (sold_ms, seq) > (5, 6) AND sold_ms < 9 \
             ORDER BY sold_ms, seq LIMIT 3",
        );
        assert!(p.contains("sales_by_branch_time") && !p.contains("TEMP B-TREE"), "{p}");
        let p = plan(
            "SELECT s.product_id, b.branch_id, s.stock FROM branches b CROSS JOIN stock s \
             ON s.branch_key = b.branch_key AND s.product_id = 'P1'",
        );
        assert!(p.contains("PRIMARY KEY (branch_key=? AND product_id=?)"), "{p}");
        let p = plan(
            "SELECT cursor FROM changes WHERE branch_key IS NULL AND cursor > 3 UNION ALL \
             SELECT cursor FROM changes WHERE branch_key = 2 AND cursor > 3 ORDER BY cursor LIMIT 5",
        );
        assert!(p.contains("changes_by_branch") && !p.contains("TEMP B-TREE"), "{p}");
        let p = plan("SELECT count(*) FROM stock WHERE stock < 0");
        assert!(p.contains("stock_negative"), "{p}");
        store.close().await;
    }

    /// Returns once a job holds the writer thread, as a group of its own, until `release`
    /// is sent: the jobs queued meanwhile make up the next group.
    async fn hold_writer(store: &Arc<SqliteStore>) -> std::sync::mpsc::Sender<()> {
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (running, is_running) = oneshot::channel::<()>();
        let s = store.clone();
        tokio::spawn(async move {
            s.write(move |_| {
                let _ = running.send(());
                let _ = held.recv();
                Ok(())
            })
            .await
        });
        is_running.await.unwrap();
        release
    }

    async fn wait_queued(store: &SqliteStore, queued: usize) {
        while WRITE_QUEUE - store.writes.capacity() < queued {
            tokio::task::yield_now().await;
        }
    }

    /// Counts the writer connection's commits from now on (a commit hook).
    async fn count_commits(store: &SqliteStore) -> Arc<AtomicUsize> {
        let commits = Arc::new(AtomicUsize::new(0));
        let c = commits.clone();
        store
            .write(move |w| {
                let _ = w.conn.commit_hook(Some(move || {
                    c.fetch_add(1, Relaxed);
                    false
                }));
                Ok(())
            })
            .await
            .unwrap();
        commits
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pushes_queued_behind_a_busy_writer_share_one_commit_and_a_gap_rolls_back_only_itself() {
        let tmp = tmp("group");
        let store = Arc::new(SqliteStore::open(&tmp.path).unwrap());
        let commits = count_commits(&store).await;
        let release = hold_writer(&store).await;
        let mut pushes = Vec::new();
        for i in 0..40 {
            let s = store.clone();
            let branch = BranchId::parse(&format!("B{i:02}")).unwrap();
            // B07 starts at seq 5: a gap, answered as such while the rest of its group commits.
            let first = if i == 7 { 5 } else { 1 };
            pushes.push(tokio::spawn(async move {
                s.apply_push(branch, vec![sale(first, "P1", 1), sale(first + 1, "P1", 1)])
                    .await
            }));
        }
        wait_queued(&store, 40).await;
        let before = commits.load(Relaxed);
        release.send(()).unwrap();
        for (i, p) in pushes.into_iter().enumerate() {
            let out = p.await.unwrap().unwrap();
            if i == 7 {
                assert_eq!(out, PushOutcome::Gap { applied_through: 0 });
            } else {
                assert_eq!(out, applied(2, 2));
            }
        }
        // The 40 pushes share one commit (the hold, alone and writing nothing, commits none).
        assert_eq!(commits.load(Relaxed) - before, 1);
        let branches = store.branches().await.unwrap();
        assert_eq!(branches.len(), 39, "the gap's new branch row was rolled back with it");
        assert!(branches.iter().all(|b| b.applied_through == 2));
        assert_eq!(store.inventory().await.unwrap()[0].by_branch.values().sum::<i64>(), -78);
        store.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn when_sqlite_abandons_a_group_its_jobs_fail_and_the_jobs_after_it_run_in_the_next() {
        let tmp = tmp("abandon");
        let store = Arc::new(SqliteStore::open(&tmp.path).unwrap());
        let release = hold_writer(&store).await;
        let s = store.clone();
        let first = tokio::spawn(async move { s.apply_push(cus(), vec![sale(1, "P1", 1)]).await });
        wait_queued(&store, 1).await;
        let s = store.clone();
        // What SQLite does on SQLITE_FULL or an I/O error: the whole transaction is gone.
        let abandon = tokio::spawn(async move { s.write(|w| Ok(w.conn.execute_batch("ROLLBACK")?)).await });
        wait_queued(&store, 2).await;
        let s = store.clone();
        let after = tokio::spawn(async move { s.apply_push(cus(), vec![sale(1, "P1", 3)]).await });
        wait_queued(&store, 3).await;
        release.send(()).unwrap();
        assert!(
            matches!(first.await.unwrap(), Err(StoreError::Database(_))),
            "not committed, not acknowledged"
        );
        assert!(abandon.await.unwrap().is_err());
        assert_eq!(after.await.unwrap().unwrap(), applied(1, 1));
        assert_eq!(
            store.inventory().await.unwrap()[0].by_branch["CUS"],
            -3,
            "only the later push is stored"
        );
        store.close().await;
    }

    #[tokio::test]
    async fn a_store_reopens_at_its_schema_version_and_keeps_its_data() {
        let tmp = tmp("reopen");
        let path = &tmp.path;
        let store = SqliteStore::open(path).unwrap();
        let out = store
            .apply_push(cus(), vec![sale(1, "P1", 2), sale(2, "P1", 1)])
            .await
            .unwrap();
        assert_eq!(out, applied(2, 2));
        store.close().await;
        assert!(matches!(store.branches().await, Err(StoreError::Closed)));
        let store = SqliteStore::open(path).unwrap();
        let inv = store.inventory().await.unwrap();
        assert_eq!(inv[0].by_branch["CUS"], -3);
        assert_eq!(store.negative_stock_products().await.unwrap(), 1);
        store.close().await;
    }
}
