//! The outbox writer: the only code that writes the branch's store, with group commit.
//!
//! Handlers hand a [`Job`] to the writer thread and wait on a oneshot. The thread takes
//! every job that is waiting (up to [`MAX_BATCH`]), applies them all in ONE transaction —
//! one WAL fsync for the lot — and only then answers each of them. So a `/sell` is answered
//! 201 only after its event is durable, and under load hundreds of sales share an fsync.
//!
//! Invariants:
//! - seqs are assigned here, in commit order, 1, 2, 3… without gaps; `meta.last_seq` moves in
//!   the same transaction, so a seq is never reused even after a crash or a purge.
//! - If the commit fails, *nothing* of the batch happened: every job is answered
//!   `StorageUnavailable`, and the writer itself gives back the stock its sales reserved (so
//!   that holds even if the waiting handler was cancelled).
//! - Effects that increase in-memory stock (positive adjustments, allocations) and the
//!   idempotency records are applied after the commit, before the reply.
//! - The thread ends when every handle is dropped, after finishing the jobs it has: that is
//!   the graceful-shutdown flush.
use crate::idempotency::{Idempotency, InFlightGuard, Record};
use crate::inventory::{Inventory, Item, Reserved};
use crate::store::{self, StoreError};
use colmena_shared::clock;
use colmena_shared::ids::ProductId;
use colmena_shared::wire::{
    AdjustmentResponse, CatalogSeedItem, Change, ChangeKind, Event, EventKind, EventLine, SaleLineOut, SaleResponse,
};
use rusqlite::{params, Connection, Transaction};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Notify};

/// Most jobs in one transaction: bounds commit latency under a storm.
pub const MAX_BATCH: usize = 2048;

/// Sync bookkeeping shared with the relay, `/status` and `/metrics`.
#[derive(Default)]
pub struct OutboxState {
    pub last_seq: AtomicU64,
    pub acked_through: AtomicU64,
    pub pull_cursor: AtomicU64,
    /// Woken after every commit that added events.
    pub new_events: Notify,
}

impl OutboxState {
    pub fn pending(&self) -> u64 {
        self.last_seq
            .load(Ordering::Acquire)
            .saturating_sub(self.acked_through.load(Ordering::Acquire))
    }
}

pub struct SaleLineIn {
    pub product_id: ProductId,
    pub quantity: i64,
}

pub struct SaleJob {
    pub lines: Vec<SaleLineIn>,
    pub reserved: Vec<Reserved>,
    pub cashier_id: Option<String>,
    pub idempotency: Option<InFlightGuard>,
}

pub struct AdjustJob {
    pub product_id: ProductId,
    pub delta: i64,
    pub reason: String,
    /// Set for a negative delta: the units taken before the commit.
    pub reserved: Option<Reserved>,
}

pub struct PullJob {
    pub changes: Vec<Change>,
    pub next_cursor: u64,
    pub applied_through: u64,
}

pub enum Job {
    Sale(SaleJob),
    Adjust(AdjustJob),
    Pull(PullJob),
    /// Central acknowledged (or, after a `sequence_gap`, stands at) this seq.
    SetAcked(u64),
    /// Drop acknowledged events older than `outbox_before_ms` and idempotency records older
    /// than `idempotency_before_ms`.
    Purge {
        outbox_before_ms: i64,
        idempotency_before_ms: i64,
    },
    /// First-boot catalog; ignored unless the store is empty.
    Seed(Vec<CatalogSeedItem>),
    /// Finish every job queued before this one, then stop the thread.
    Shutdown,
}

impl Job {
    fn take_reserved(&mut self) -> Vec<Reserved> {
        match self {
            Job::Sale(s) => std::mem::take(&mut s.reserved),
            Job::Adjust(a) => a.reserved.take().into_iter().collect(),
            _ => Vec::new(),
        }
    }
}

#[derive(Debug)]
pub enum Reply {
    Sale(SaleResponse),
    Adjust(AdjustmentResponse),
    Done,
}

struct Envelope {
    job: Job,
    reply: oneshot::Sender<Result<Reply, StoreError>>,
}

/// Cheap to clone; the writer thread stops when the last clone is dropped.
#[derive(Clone)]
pub struct WriterHandle {
    tx: mpsc::UnboundedSender<Envelope>,
}

impl WriterHandle {
    pub async fn submit(&self, job: Job) -> Result<Reply, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Envelope { job, reply })
            .map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }

    /// For start-up code that runs before the async runtime serves requests.
    pub fn submit_blocking(&self, job: Job) -> Result<Reply, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Envelope { job, reply })
            .map_err(|_| StoreError::WriterGone)?;
        rx.blocking_recv().map_err(|_| StoreError::WriterGone)?
    }
}

pub struct Writer {
    conn: Connection,
    branch_id: String,
    inventory: Arc<Inventory>,
    idempotency: Arc<Idempotency>,
    state: Arc<OutboxState>,
    last_seq: u64,
}

/// Starts the writer thread; returns its handle and the thread to join on shutdown.
pub fn spawn(
    conn: Connection,
    branch_id: String,
    inventory: Arc<Inventory>,
    idempotency: Arc<Idempotency>,
    state: Arc<OutboxState>,
) -> std::io::Result<(WriterHandle, std::thread::JoinHandle<()>)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let last_seq = state.last_seq.load(Ordering::Acquire);
    let writer = Writer {
        conn,
        branch_id,
        inventory,
        idempotency,
        state,
        last_seq,
    };
    let join = std::thread::Builder::new()
        .name("outbox-writer".into())
        .spawn(move || writer.run(rx))?;
    Ok((WriterHandle { tx }, join))
}

/// What to do once the transaction is committed (or undo if it is not).
enum Pending {
    Sale {
        resp: SaleResponse,
        idem: Option<(InFlightGuard, Arc<str>, i64)>,
    },
    Adjust {
        seq: u64,
        product_id: String,
        delta: i64,
    },
    Pull {
        changes: Vec<Change>,
        next_cursor: u64,
        acked: Option<u64>,
    },
    SetAcked(u64),
    Purge {
        idempotency_before_ms: i64,
    },
    Seed(Vec<CatalogSeedItem>),
    Nothing,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::UnboundedReceiver<Envelope>) {
        let mut batch: Vec<Envelope> = Vec::with_capacity(64);
        let mut stop: Option<Envelope> = None;
        while let Some(first) = rx.blocking_recv() {
            let mut next = Some(first);
            while let Some(env) = next.take() {
                if matches!(env.job, Job::Shutdown) {
                    stop = Some(env);
                    break;
                }
                batch.push(env);
                if batch.len() < MAX_BATCH {
                    next = rx.try_recv().ok();
                }
            }
            if !batch.is_empty() {
                self.commit_batch(&mut batch);
            }
            if let Some(env) = stop.take() {
                tracing::info!(last_seq = self.last_seq, "outbox writer flushed and stopped");
                let _ = env.reply.send(Ok(Reply::Done));
                return;
            }
        }
        tracing::info!("outbox writer drained and stopped");
    }

    fn commit_batch(&mut self, batch: &mut Vec<Envelope>) {
        let now_ms = clock::now_millis();
        let mut ctx = BatchCtx {
            now_ms,
            occurred_at: clock::millis_to_rfc3339(now_ms),
            sold: HashMap::new(),
        };
        let mut seq = self.last_seq;
        let mut replies = Vec::with_capacity(batch.len());
        let mut jobs = Vec::with_capacity(batch.len());
        // Reservations are taken out of the jobs first so that, whatever fails, they can be
        // given back.
        let mut reserved: Vec<Vec<Reserved>> = Vec::with_capacity(batch.len());
        for env in batch.drain(..) {
            let mut job = env.job;
            reserved.push(job.take_reserved());
            jobs.push(job);
            replies.push(env.reply);
        }
        let result: Result<Vec<Pending>, StoreError> = (|| {
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let mut pendings = Vec::with_capacity(jobs.len());
            for (job, r) in jobs.into_iter().zip(&reserved) {
                pendings.push(apply(&tx, &self.branch_id, &mut seq, &mut ctx, job, r)?);
            }
            for (product_id, quantity) in &ctx.sold {
                add_stock(&tx, product_id, -quantity)?;
            }
            if seq != self.last_seq {
                store::set_meta(&tx, "last_seq", seq)?;
            }
            crate::failpoints::before_commit()?;
            tx.commit()?;
            Ok(pendings)
        })();
        match result {
            Ok(pendings) => {
                let added_events = seq != self.last_seq;
                self.last_seq = seq;
                self.state.last_seq.store(seq, Ordering::Release);
                let outcomes: Vec<Reply> = pendings
                    .into_iter()
                    .zip(reserved)
                    .map(|(p, r)| self.after_commit(p, r))
                    .collect();
                if added_events {
                    self.state.new_events.notify_one();
                }
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, jobs = replies.len(), "outbox commit failed; nothing of this batch was stored");
                for r in &reserved {
                    self.inventory.release(r);
                }
                for reply in replies {
                    let _ = reply.send(Err(StoreError::Corrupt(e.to_string())));
                }
            }
        }
    }

    fn after_commit(&self, p: Pending, reserved: Vec<Reserved>) -> Reply {
        match p {
            Pending::Sale { resp, idem } => {
                if let Some((guard, response, created_ms)) = idem {
                    self.idempotency.record(
                        guard.key.clone(),
                        Record {
                            fingerprint: guard.fingerprint.clone(),
                            response,
                            created_ms,
                        },
                    );
                    drop(guard);
                }
                Reply::Sale(resp)
            }
            Pending::Adjust { seq, product_id, delta } => {
                let stock = match reserved.first() {
                    Some(r) => r.remaining,
                    None => self.inventory.add(&product_id, delta).unwrap_or(0),
                };
                Reply::Adjust(AdjustmentResponse { seq, stock })
            }
            Pending::Pull {
                changes,
                next_cursor,
                acked,
            } => {
                for c in &changes {
                    match c.kind {
                        ChangeKind::Product => self.inventory.upsert_product(
                            &c.product_id,
                            c.name.as_deref().unwrap_or(&c.product_id),
                            c.price_cents.unwrap_or(0),
                            c.version.unwrap_or(0),
                        ),
                        ChangeKind::Allocation => {
                            let q = c.quantity.unwrap_or(0);
                            if self.inventory.add(&c.product_id, q).is_none() {
                                self.inventory.insert(
                                    &c.product_id,
                                    Item {
                                        name: Arc::from(c.product_id.as_str()),
                                        price_cents: 0,
                                        version: 0,
                                        stock: q,
                                    },
                                );
                            }
                        }
                    }
                }
                self.state.pull_cursor.store(next_cursor, Ordering::Release);
                if let Some(a) = acked {
                    self.state.acked_through.store(a, Ordering::Release);
                }
                Reply::Done
            }
            Pending::SetAcked(a) => {
                self.state.acked_through.store(a, Ordering::Release);
                Reply::Done
            }
            Pending::Purge { idempotency_before_ms } => {
                self.idempotency.purge_before(idempotency_before_ms);
                Reply::Done
            }
            Pending::Seed(items) => {
                for it in items {
                    self.inventory.insert(
                        it.product_id.as_str(),
                        Item {
                            name: Arc::from(it.name.as_str()),
                            price_cents: it.price_cents,
                            version: 0,
                            stock: it.stock,
                        },
                    );
                }
                Reply::Done
            }
            Pending::Nothing => Reply::Done,
        }
    }
}

fn raise_seq_floor(seq: &mut u64, central_applied_through: u64) {
    if central_applied_through > *seq {
        tracing::warn!(
            central = central_applied_through,
            local = *seq,
            "central is ahead of this store (restored from an older copy?); new events continue above central's applied_through"
        );
        *seq = central_applied_through;
    }
}

fn insert_event(tx: &Transaction, ev: &Event, now_ms: i64) -> Result<(), StoreError> {
    let payload = serde_json::to_string(ev).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let kind = match ev.kind {
        EventKind::Sale => "sale",
        EventKind::Adjustment => "adjustment",
    };
    tx.prepare_cached("INSERT INTO outbox(seq, kind, created_ms, payload) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![ev.seq as i64, kind, now_ms, payload])?;
    Ok(())
}

fn add_stock(tx: &Transaction, product_id: &str, delta: i64) -> Result<usize, StoreError> {
    Ok(tx
        .prepare_cached("UPDATE products SET stock = stock + ?1 WHERE product_id = ?2")?
        .execute(params![delta, product_id])?)
}

fn adjustment_event(seq: u64, occurred_at: &str, product_id: &ProductId, delta: i64, reason: &str) -> Event {
    Event {
        seq,
        kind: EventKind::Adjustment,
        occurred_at: occurred_at.to_string(),
        sale_id: None,
        lines: None,
        total_cents: None,
        cashier_id: None,
        product_id: Some(product_id.clone()),
        quantity_delta: Some(delta),
        reason: Some(reason.to_string()),
    }
}

/// What the jobs of one transaction share.
struct BatchCtx {
    now_ms: i64,
    /// Every event of a batch carries the batch's commit time; formatted once.
    occurred_at: String,
    /// Units sold per product in this batch, written to `products` once at the end.
    sold: HashMap<String, i64>,
}

/// Applies one job inside the open transaction; returns what to do after the commit.
fn apply(
    tx: &Transaction,
    branch_id: &str,
    seq: &mut u64,
    ctx: &mut BatchCtx,
    job: Job,
    reserved: &[Reserved],
) -> Result<Pending, StoreError> {
    let now_ms = ctx.now_ms;
    match job {
        Job::Sale(s) => {
            *seq += 1;
            let occurred_at = ctx.occurred_at.clone();
            let sale_id = format!("{branch_id}-{:010}", *seq);
            let mut lines_out = Vec::with_capacity(s.lines.len());
            let mut ev_lines = Vec::with_capacity(s.lines.len());
            let mut total: i64 = 0;
            for l in &s.lines {
                let r = reserved
                    .iter()
                    .find(|r| r.product_id == l.product_id.as_str())
                    .ok_or_else(|| StoreError::Corrupt(format!("sale line {} has no reservation", l.product_id)))?;
                let line_total = r.unit_price_cents.saturating_mul(l.quantity);
                total = total.saturating_add(line_total);
                lines_out.push(SaleLineOut {
                    product_id: l.product_id.to_string(),
                    quantity: l.quantity,
                    unit_price_cents: r.unit_price_cents,
                    line_total_cents: line_total,
                    remaining_stock: r.remaining,
                });
                ev_lines.push(EventLine {
                    product_id: l.product_id.clone(),
                    quantity: l.quantity,
                    unit_price_cents: r.unit_price_cents,
                });
            }
            // Summed per product and written once per batch: under load many sales of a
            // batch sell the same few products.
            for r in reserved {
                match ctx.sold.get_mut(r.product_id.as_str()) {
                    Some(q) => *q += r.quantity,
                    None => {
                        ctx.sold.insert(r.product_id.clone(), r.quantity);
                    }
                }
            }
            let ev = Event {
                seq: *seq,
                kind: EventKind::Sale,
                occurred_at: occurred_at.clone(),
                sale_id: Some(sale_id.clone()),
                lines: Some(ev_lines),
                total_cents: Some(total),
                cashier_id: s.cashier_id.clone(),
                product_id: None,
                quantity_delta: None,
                reason: None,
            };
            insert_event(tx, &ev, now_ms)?;
            let resp = SaleResponse {
                sale_id,
                branch_id: branch_id.to_string(),
                seq: *seq,
                lines: lines_out,
                total_cents: total,
                sold_at: occurred_at,
                cashier_id: s.cashier_id,
                sync: "pending".into(),
            };
            let idem = match s.idempotency {
                Some(guard) => {
                    let body = serde_json::to_string(&resp).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    tx.prepare_cached("INSERT OR REPLACE INTO idempotency(key, fingerprint, created_ms, response) VALUES (?1, ?2, ?3, ?4)")?
                        .execute(params![guard.key, guard.fingerprint, now_ms, body])?;
                    Some((guard, Arc::from(body), now_ms))
                }
                None => None,
            };
            Ok(Pending::Sale { resp, idem })
        }
        Job::Adjust(a) => {
            *seq += 1;
            let occurred_at = ctx.occurred_at.clone();
            let n = add_stock(tx, a.product_id.as_str(), a.delta)?;
            if n == 0 {
                return Err(StoreError::Corrupt(format!(
                    "adjustment of unknown product {}",
                    a.product_id
                )));
            }
            insert_event(
                tx,
                &adjustment_event(*seq, &occurred_at, &a.product_id, a.delta, &a.reason),
                now_ms,
            )?;
            Ok(Pending::Adjust {
                seq: *seq,
                product_id: a.product_id.into_string(),
                delta: a.delta,
            })
        }
        Job::Pull(p) => {
            for c in &p.changes {
                match c.kind {
                    ChangeKind::Product => {
                        tx.prepare_cached(
                            "INSERT INTO products(product_id, name, price_cents, version, stock) VALUES (?1, ?2, ?3, ?4, 0)
                             ON CONFLICT(product_id) DO UPDATE SET name = excluded.name, price_cents = excluded.price_cents,
                                version = excluded.version WHERE excluded.version > products.version",
                        )?
                        .execute(params![
                            c.product_id,
                            c.name.as_deref().unwrap_or(&c.product_id),
                            c.price_cents.unwrap_or(0),
                            c.version.unwrap_or(0) as i64
                        ])?;
                    }
                    ChangeKind::Allocation => {
                        let q = c.quantity.unwrap_or(0);
                        if add_stock(tx, &c.product_id, q)? == 0 {
                            tx.prepare_cached(
                                "INSERT INTO products(product_id, name, price_cents, version, stock) VALUES (?1, ?1, 0, 0, ?2)",
                            )?
                            .execute(params![c.product_id, q])?;
                        }
                    }
                }
            }
            store::set_meta(tx, "pull_cursor", p.next_cursor)?;
            // Central's applied_through: events up to it are at central. A branch whose data
            // is older than central's view (restored copy) jumps its seq past it.
            let mut acked = None;
            raise_seq_floor(seq, p.applied_through);
            let current = store::get_meta(tx, "acked_through")?;
            if p.applied_through > current {
                store::set_meta(tx, "acked_through", p.applied_through)?;
                acked = Some(p.applied_through);
            }
            Ok(Pending::Pull {
                changes: p.changes,
                next_cursor: p.next_cursor,
                acked,
            })
        }
        Job::SetAcked(a) => {
            // Central stands at `a`. Normally a <= our last seq; if central is ahead (this
            // store is an older copy), our next seq must be above it or central would drop
            // new sales as duplicates.
            raise_seq_floor(seq, a);
            store::set_meta(tx, "acked_through", a)?;
            Ok(Pending::SetAcked(a))
        }
        Job::Purge {
            outbox_before_ms,
            idempotency_before_ms,
        } => {
            let acked = store::get_meta(tx, "acked_through")?;
            tx.prepare_cached("DELETE FROM outbox WHERE seq <= ?1 AND created_ms < ?2")?
                .execute(params![acked as i64, outbox_before_ms])?;
            tx.prepare_cached("DELETE FROM idempotency WHERE created_ms < ?1")?
                .execute([idempotency_before_ms])?;
            Ok(Pending::Purge { idempotency_before_ms })
        }
        Job::Shutdown => Ok(Pending::Nothing),
        Job::Seed(items) => {
            if !store::is_empty(tx)? {
                tracing::info!("store already has data; --catalog ignored");
                return Ok(Pending::Nothing);
            }
            let occurred_at = ctx.occurred_at.clone();
            for it in &items {
                tx.prepare_cached(
                    "INSERT INTO products(product_id, name, price_cents, version, stock) VALUES (?1, ?2, ?3, 0, ?4)",
                )?
                .execute(params![it.product_id.as_str(), it.name, it.price_cents, it.stock])?;
                // The seed stock travels to central as adjustments so its ledger agrees; in
                // pieces of at most MAX_QUANTITY, the most one adjustment may carry, or
                // central would reject the event and the branch's sync would stop there.
                let mut left = it.stock;
                while left > 0 {
                    let piece = left.min(colmena_shared::ids::MAX_QUANTITY);
                    left -= piece;
                    *seq += 1;
                    insert_event(
                        tx,
                        &adjustment_event(*seq, &occurred_at, &it.product_id, piece, "initial_catalog"),
                        now_ms,
                    )?;
                }
            }
            store::set_meta(tx, "seeded", 1)?;
            Ok(Pending::Seed(items))
        }
    }
}
