//! The syncer thread: fsync, then publish, apply in memory and answer, batch by batch in
//! commit order.
//!
//! Nothing is answered, published (`OutboxState::last_seq`, which bounds what the relay
//! reads and ships) or applied to memory before the fsync that covers it. If an fsync fails,
//! what reached the disk is unknown (on Linux a failed fsync may drop the dirty pages and
//! report success next time), so the store stops taking writes until the process restarts
//! and SQLite recovers from what is really on disk; the batches it covered are answered
//! `StorageUnavailable` and keep their stock reserved (it may have been sold).
use super::apply::{Pending, TillPending};
use super::durability::Durability;
use super::reply::{Answers, Replier};
use super::state::OutboxState;
use super::writer::WriterWake;
use crate::idempotency::{Idempotency, Record};
use crate::inventory::{Inventory, Item, Reserved};
use colmena_shared::wire::ChangeKind;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// Why every write is refused once an fsync has failed.
pub(super) const POISONED: &str = "an earlier fsync failed; restart the branch to recover";

/// What the writer thread hands the syncer: one committed, not yet durable, batch.
pub(super) struct Committed {
    pub through_seq: u64,
    pub added_events: bool,
    pub pendings: Vec<Pending>,
    /// Each command's reserved units, in the order of `pendings`.
    pub reserved: Vec<Vec<Reserved>>,
}

pub(super) enum ToSyncer {
    Batch(Committed),
    /// Answered once every batch before it is answered.
    Stop(Replier<()>),
}

pub(super) struct Syncer {
    /// The writer may be holding a batch open until this syncer is free.
    pub wake_writer: Arc<WriterWake>,
    pub in_flight: Arc<AtomicUsize>,
    pub durability: Box<dyn Durability>,
    pub inventory: Arc<Inventory>,
    pub idempotency: Arc<Idempotency>,
    pub state: Arc<OutboxState>,
    pub people: Arc<crate::people::People>,
    /// The open shifts' figures, told of each durable event on them.
    pub till: Arc<crate::till::Till>,
    /// The transfers in memory, told of each durable change to one.
    pub transfers: Arc<crate::transfers::Transfers>,
    pub poisoned: Arc<AtomicBool>,
    pub fsync_duration: prometheus::Histogram,
}

impl Syncer {
    pub(super) fn run(mut self, rx: std::sync::mpsc::Receiver<ToSyncer>) {
        let mut queue = Vec::new();
        while let Ok(first) = rx.recv() {
            queue.push(first);
            // Everything committed while the last fsync ran shares the next one.
            while let Ok(m) = rx.try_recv() {
                queue.push(m);
            }
            let synced = self.sync();
            let mut stop = None;
            let mut answered = 0;
            for m in queue.drain(..) {
                match m {
                    ToSyncer::Batch(c) => {
                        self.finish(c, &synced);
                        answered += 1;
                    }
                    ToSyncer::Stop(reply) => stop = Some(reply),
                }
            }
            if answered > 0 && self.in_flight.fetch_sub(answered, Ordering::AcqRel) == answered {
                self.wake_writer.wake();
            }
            if let Some(reply) = stop {
                reply.send(Ok(()));
                return;
            }
        }
    }

    fn sync(&mut self) -> Result<(), String> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(POISONED.into());
        }
        let started = std::time::Instant::now();
        let synced = self.durability.sync();
        self.fsync_duration.observe(started.elapsed().as_secs_f64());
        synced.map_err(|e| {
            self.poisoned.store(true, Ordering::Release);
            tracing::error!(error = %e, "fsync of the outbox WAL failed; the store takes no more writes until the branch restarts");
            format!("fsync of the WAL failed: {e}")
        })
    }

    fn finish(&self, c: Committed, synced: &Result<(), String>) {
        if let Err(e) = synced {
            // Stock stays reserved: the sale may be on disk after all.
            for p in c.pendings {
                p.unanswered().fail(super::db::StoreError::SyncFailed(e.clone()));
            }
            return;
        }
        self.state.last_seq.store(c.through_seq, Ordering::Release);
        let mut answers = Answers::default();
        for (p, r) in c.pendings.into_iter().zip(c.reserved) {
            self.after_commit(p, r, &mut answers);
        }
        if c.added_events {
            self.state.new_events.notify_one();
        }
        answers.deliver();
    }

    /// Carries out a durable command's effects in memory and queues its answer.
    fn after_commit(&self, p: Pending, reserved: Vec<Reserved>, answers: &mut Answers) {
        match p {
            Pending::Sale {
                recorded,
                remembered,
                reply,
            } => {
                self.remember(remembered);
                answers.push(reply.ok(Ok(recorded)));
            }
            Pending::Till(t) => self.after_till(t, answers),
            Pending::Refused(refused) => {
                self.inventory.release(&reserved);
                if let Some(a) = refused.answer() {
                    answers.push(a);
                }
            }
            Pending::Adjustment {
                recorded,
                product_id,
                delta,
                remembered,
                reply,
            } => {
                // A decrease was taken from memory when reserved; an increase arrives now.
                if reserved.is_empty() {
                    self.inventory.add(&product_id, delta);
                }
                self.remember(remembered);
                answers.push(reply.ok(recorded));
            }
            Pending::Count {
                recorded,
                product_id,
                remembered,
                reply,
            } => {
                if recorded.delta != 0 {
                    self.inventory.add(&product_id, recorded.delta);
                }
                self.remember(remembered);
                answers.push(reply.ok(recorded));
            }
            Pending::Transfer { step, arrived, reply } => {
                // Already dispatched: this command's reservation was not used.
                if step.seq.is_none() {
                    self.inventory.release(&reserved);
                }
                for (product_id, q) in &arrived {
                    self.add_arrived(product_id, *q);
                }
                self.transfers.put(step.transfer.clone());
                answers.push(reply.ok(Ok(step)));
            }
            Pending::Pull {
                changes,
                transfers,
                next_cursor,
                acked,
                users_catch_up,
                reply,
            } => {
                if users_catch_up {
                    for u in changes.iter().filter_map(super::apply::user_change) {
                        self.people.apply_user(u);
                    }
                    self.state.users_catch_up_from.store(next_cursor, Ordering::Release);
                    answers.push(reply.ok(()));
                    return;
                }
                for c in &changes {
                    self.apply_change(c);
                }
                for t in transfers {
                    self.transfers.put(t);
                }
                self.state.pull_cursor.store(next_cursor, Ordering::Release);
                if let Some(a) = acked {
                    self.state.acked_through.store(a, Ordering::Release);
                }
                answers.push(reply.ok(()));
            }
            Pending::Ack { acked, reply } => {
                self.state.acked_through.store(acked, Ordering::Release);
                answers.push(reply.ok(()));
            }
            Pending::Purge {
                idempotency_before_ms,
                reply,
            } => {
                self.idempotency.purge_before(idempotency_before_ms);
                answers.push(reply.ok(()));
            }
            Pending::Seed { items, reply } => {
                for it in items {
                    let item = Item::plain(it.price_cents, 0, it.stock);
                    self.inventory.insert(it.product_id.as_str(), item);
                }
                answers.push(reply.ok(()));
            }
            Pending::Nothing(reply) => answers.push(reply.ok(())),
        }
    }

    /// The till's durable events: shifts in memory, restocked units, answers.
    fn after_till(&self, p: TillPending, answers: &mut Answers) {
        match p {
            TillPending::Shift { row, remembered, reply } => {
                self.remember(remembered);
                let shift = row.to_wire();
                self.till.put(row);
                answers.push(reply.ok(Ok(shift)));
            }
            TillPending::CashMovement {
                answer,
                remembered,
                reply,
            } => {
                self.remember(remembered);
                answers.push(reply.ok(Ok(answer)));
            }
            TillPending::Return { done, reply } => {
                self.remember(done.remembered);
                if done.answer.restock {
                    for l in &done.answer.lines {
                        self.inventory.add(&l.product_id, l.quantity);
                    }
                }
                answers.push(reply.ok(Ok(done.answer)));
            }
            TillPending::Totals(totals) => {
                for (id, added) in totals {
                    self.till.add(&id, &added);
                }
            }
        }
    }

    /// Puts a durable answer where a retry with its `Idempotency-Key` finds it.
    fn remember(&self, remembered: super::apply::Remembered) {
        if let Some((guard, response, created_ms)) = remembered {
            self.idempotency.record(
                guard.key.clone(),
                Record {
                    fingerprint: guard.fingerprint.clone(),
                    response,
                    created_ms,
                },
            );
            // Only now, with the record in place, may the key stop being in flight.
            drop(guard);
        }
    }

    /// Durable units that arrived (an allocation, a transfer received): a product not yet
    /// in memory arrives as a placeholder, as the store's [`super::products::allocate`] does.
    fn add_arrived(&self, product_id: &str, q: i64) {
        if self.inventory.add(product_id, q).is_none() {
            self.inventory.insert(product_id, Item::plain(0, 0, q));
        }
    }

    fn apply_change(&self, c: &colmena_shared::wire::Change) {
        match c.kind {
            ChangeKind::Product => self.inventory.upsert_product(
                &c.product_id,
                c.price_cents.unwrap_or(0),
                c.version.unwrap_or(0),
                &super::products::CatalogFields::of(c),
            ),
            ChangeKind::Allocation => self.add_arrived(&c.product_id, c.quantity.unwrap_or(0)),
            ChangeKind::User => {
                if let Some(u) = super::apply::user_change(c) {
                    self.people.apply_user(u);
                }
            }
            // Transfers were merged by the writer; memory takes its rows (`Pending::Pull`).
            ChangeKind::Unknown | ChangeKind::Transfer => {}
        }
    }
}
