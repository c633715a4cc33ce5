//! What the writer can be asked to do: one type per command, each with its own reply type.
//!
//! [`super::WriterHandle::submit`] takes any [`Command`] and returns its `Reply`, so a caller
//! gets exactly the reply its command produces — a mismatch is a compile error. Internally
//! every command becomes one [`Op`] variant that carries the command and its typed
//! [`Replier`].
use super::reply::{Replier, Unanswered};
use crate::idempotency::InFlightGuard;
use crate::inventory::Reserved;
use crate::sales::PricedSale;
use colmena_shared::ids::ProductId;
use colmena_shared::till::{CashMovement, CashMovementKind, ReturnLine, ReturnResponse, Shift};
use colmena_shared::transfers::{Transfer, TransferEventLine};
use colmena_shared::users::UserId;
use colmena_shared::wire::{CatalogSeedItem, Change};
use std::collections::HashMap;

/// A request to the writer thread.
pub trait Command: Send + 'static {
    type Reply: Send + 'static;
    #[doc(hidden)]
    fn into_op(self, reply: Replier<Self::Reply>) -> Op;
}

/// Why the writer refused a command: the till's rules that only the writer can check for
/// certain, because it alone sees every command in commit order (a sale and the close of
/// its shift, two returns of one sale). A refused command writes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    UnknownShift(String),
    ShiftNotOpen(String),
    ShiftAlreadyOpen {
        till_id: String,
        shift_id: String,
    },
    /// Closed before, with another count.
    ShiftClosed {
        shift_id: String,
        counted_cash_cents: i64,
    },
    ReturnExceedsSale {
        product_id: String,
        left: i64,
        requested: i64,
    },
    /// No transfer with this id at this branch.
    UnknownTransfer(String),
    /// The transfer's state here, or this branch's side of it, does not allow the step
    /// (docs/protocol.md, "Transfers"); the message says why.
    TransferConflict(String),
}

/// A command's reply when the writer may refuse it.
pub type Outcome<T> = Result<T, Refusal>;

/// Record a sale priced by [`crate::sales`]: an event in the outbox and the stock it takes.
/// Refused when it names a shift that is not open.
pub struct RecordSale {
    pub sale: PricedSale,
    /// The units reserved in memory for this sale; given back if the commit fails.
    pub reserved: Vec<Reserved>,
    /// Remember the answer under an `Idempotency-Key`, in the same transaction.
    pub remember: Option<Remember>,
}

/// An `Idempotency-Key` to record with a sale, and how to render the answer it replays:
/// the domain decides what a sale's answer is, the storage keeps it.
pub struct Remember {
    pub guard: InFlightGuard,
    pub render: fn(branch_id: &str, &PricedSale, &Receipt) -> serde_json::Result<String>,
}

/// What the store gave a recorded event: its place in the branch's sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub seq: u64,
    /// `{branch_id}-{seq:010}`.
    pub sale_id: String,
    /// RFC 3339 commit time of the batch (the event's `occurred_at`).
    pub committed_at: String,
}

#[derive(Debug)]
pub struct SaleRecorded {
    pub receipt: Receipt,
    /// The sale as given, handed back so the answer is built without a copy.
    pub sale: PricedSale,
}

/// Record a stock adjustment (an event, and the stock change).
pub struct RecordAdjustment {
    pub product_id: ProductId,
    pub delta: i64,
    pub reason: String,
    /// The logged-in user who made it, if a user token did.
    pub user_id: Option<UserId>,
    /// For a negative delta: the units taken in memory before the commit.
    pub reserved: Option<Reserved>,
    /// Remember the answer under an `Idempotency-Key`, in the same transaction.
    pub remember: Option<InFlightGuard>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdjustmentRecorded {
    pub seq: u64,
    /// The product's stock as of the adjustment's commit (after every event committed
    /// before it): a value the transaction knows, so a replay can repeat it.
    pub stock: i64,
}

/// Record a stock count: the stock becomes `counted`. The writer computes the difference
/// against the stock as of the count's own commit and records it as `adjustment` events
/// with reason `count` (none when nothing changed).
pub struct RecordCount {
    pub product_id: ProductId,
    pub counted: i64,
    pub user_id: Option<UserId>,
    pub remember: Option<InFlightGuard>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountRecorded {
    /// The first adjustment event recorded; `None` when the count matched.
    pub seq: Option<u64>,
    /// `counted − stock as of the commit`.
    pub delta: i64,
}

/// Open a shift on a till (refused while the till has one open).
pub struct OpenShift {
    pub till_id: String,
    pub opening_float_cents: i64,
    pub opened_by: Option<UserId>,
    pub remember: Option<InFlightGuard>,
}

/// Put cash into, or take it out of, an open shift's drawer.
pub struct RecordCashMovement {
    pub shift_id: String,
    pub kind: CashMovementKind,
    pub amount_cents: i64,
    pub reason: String,
    pub user_id: Option<UserId>,
    pub remember: Option<InFlightGuard>,
}

/// Close a shift with the cash counted. Closing a closed shift with the same count answers
/// the same closed shift; another count is refused.
pub struct CloseShift {
    pub shift_id: String,
    pub counted_cash_cents: i64,
    pub closed_by: Option<UserId>,
    pub remember: Option<InFlightGuard>,
}

/// Record a return of (part of) a sale, priced at the sale's unit prices by
/// [`crate::till::returns`]. Refused if it would take any product past what was sold.
pub struct RecordReturn {
    pub sale_seq: u64,
    pub sale_id: String,
    pub lines: Vec<ReturnLine>,
    /// Units of each product the sale sold.
    pub sold: HashMap<String, i64>,
    pub restock: bool,
    pub refund_method: String,
    pub shift_id: Option<String>,
    pub reason: String,
    pub user_id: Option<UserId>,
    pub remember: Option<InFlightGuard>,
}

/// Dispatch a transfer this branch sends: its lines leave the stock (reserved in memory by
/// [`crate::transfers`]), a `transfer_dispatched` event, and the row moves to `in_transit`.
/// Refused unless the transfer is still `requested` here; already dispatched answers the
/// transfer as it stands, with no new event (the reservation is given back).
pub struct DispatchTransfer {
    pub transfer_id: String,
    pub user_id: Option<UserId>,
    /// The transfer's units, taken in memory before the commit (the writer takes them out
    /// of the command first, see [`Op::take_reserved`]).
    pub reserved: Vec<Reserved>,
}

/// Receive a transfer this branch is sent: `lines` are [`colmena_shared::transfers::plan_receipt`]'s,
/// in the transfer's line order. Refused unless the transfer is `in_transit` here; already
/// received with the same lines answers the transfer as it stands, with no new event.
pub struct ReceiveTransfer {
    pub transfer_id: String,
    pub lines: Vec<TransferEventLine>,
    pub user_id: Option<UserId>,
}

/// A transfer step's outcome: the transfer as it now stands, and the event recorded
/// (`None`: the step had already been taken, nothing was written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferStep {
    pub transfer: Transfer,
    pub seq: Option<u64>,
}

/// Apply a page of central's changes and store the new cursor, in one transaction.
pub struct ApplyPull {
    pub changes: Vec<Change>,
    pub next_cursor: u64,
    /// Central's `applied_through` for this branch at the time of the pull.
    pub applied_through: u64,
    /// A page pulled again only for its users, after an upgrade (see [`super::db`]): only
    /// `user` changes are applied and only the catch-up cursor moves to `next_cursor`.
    pub users_catch_up: bool,
}

/// Central acknowledged (or, after a `sequence_gap`, stands at) this seq.
pub struct RecordAck(pub u64);

/// Drop acknowledged events older than `outbox_before_ms` and idempotency records older
/// than `idempotency_before_ms`; keep the sales sold since `returns_since_ms` returnable.
pub struct Purge {
    pub outbox_before_ms: i64,
    pub idempotency_before_ms: i64,
    pub returns_since_ms: i64,
}

/// First-boot catalog; ignored unless the store is empty.
pub struct Seed(pub Vec<CatalogSeedItem>);

/// Finish every command queued before this one, then stop the writer and syncer threads.
pub struct Shutdown;

/// A command with its replier, as the writer thread receives it.
#[doc(hidden)]
pub enum Op {
    Sale(RecordSale, Replier<Outcome<SaleRecorded>>),
    Adjustment(RecordAdjustment, Replier<AdjustmentRecorded>),
    Count(RecordCount, Replier<CountRecorded>),
    OpenShift(OpenShift, Replier<Outcome<Shift>>),
    CashMovement(RecordCashMovement, Replier<Outcome<CashMovement>>),
    CloseShift(CloseShift, Replier<Outcome<Shift>>),
    Return(RecordReturn, Replier<Outcome<ReturnResponse>>),
    Dispatch(DispatchTransfer, Replier<Outcome<TransferStep>>),
    Receive(ReceiveTransfer, Replier<Outcome<TransferStep>>),
    Pull(ApplyPull, Replier<()>),
    Ack(RecordAck, Replier<()>),
    Purge(Purge, Replier<()>),
    Seed(Seed, Replier<()>),
    Shutdown(Replier<()>),
}

impl Op {
    /// The units this command holds in memory, taken out first so that, whatever fails,
    /// they can be given back.
    pub(super) fn take_reserved(&mut self) -> Vec<Reserved> {
        match self {
            Op::Sale(s, _) => std::mem::take(&mut s.reserved),
            Op::Adjustment(a, _) => a.reserved.take().into_iter().collect(),
            Op::Dispatch(d, _) => std::mem::take(&mut d.reserved),
            Op::OpenShift(..)
            | Op::Receive(..)
            | Op::Count(..)
            | Op::CashMovement(..)
            | Op::CloseShift(..)
            | Op::Return(..)
            | Op::Pull(..)
            | Op::Ack(..)
            | Op::Purge(..)
            | Op::Seed(..)
            | Op::Shutdown(_) => Vec::new(),
        }
    }

    /// The command will not be applied: all that is left is to say so.
    pub(super) fn into_unanswered(self) -> Unanswered {
        match self {
            Op::Sale(_, r) => r.into(),
            Op::Adjustment(_, r) => r.into(),
            Op::Count(_, r) => r.into(),
            Op::OpenShift(_, r) | Op::CloseShift(_, r) => r.into(),
            Op::CashMovement(_, r) => r.into(),
            Op::Return(_, r) => r.into(),
            Op::Dispatch(_, r) | Op::Receive(_, r) => r.into(),
            Op::Pull(_, r) | Op::Ack(_, r) | Op::Purge(_, r) | Op::Seed(_, r) | Op::Shutdown(r) => r.into(),
        }
    }
}

macro_rules! command {
    ($cmd:ty => $reply:ty, $variant:ident) => {
        impl Command for $cmd {
            type Reply = $reply;
            fn into_op(self, reply: Replier<$reply>) -> Op {
                Op::$variant(self, reply)
            }
        }
    };
}

command!(RecordSale => Outcome<SaleRecorded>, Sale);
command!(RecordAdjustment => AdjustmentRecorded, Adjustment);
command!(RecordCount => CountRecorded, Count);
command!(OpenShift => Outcome<Shift>, OpenShift);
command!(RecordCashMovement => Outcome<CashMovement>, CashMovement);
command!(CloseShift => Outcome<Shift>, CloseShift);
command!(RecordReturn => Outcome<ReturnResponse>, Return);
command!(DispatchTransfer => Outcome<TransferStep>, Dispatch);
command!(ReceiveTransfer => Outcome<TransferStep>, Receive);
command!(ApplyPull => (), Pull);
command!(RecordAck => (), Ack);
command!(Purge => (), Purge);
command!(Seed => (), Seed);

impl Command for Shutdown {
    type Reply = ();
    fn into_op(self, reply: Replier<()>) -> Op {
        Op::Shutdown(reply)
    }
}
