//! The till: shifts (a till's session from opening float to cash count), cash movements
//! and returns (docs/protocol.md, "The till"). Tenders on a sale are in [`crate::sales`].
//!
//! Every fact here is an event through the same outbox as a sale, durable before its 2xx.
//! The rules that depend on commit order — a shift is still open, a till has no other open
//! shift, a sale still has the units being returned — are checked by the storage writer in
//! the event's own transaction ([`crate::storage::Refusal`]); this module checks everything
//! else first (shape, permissions, the return window) and pre-checks the ordered rules
//! against memory so that most refusals cost no write.
//!
//! Memory holds the open shifts with their running figures ([`Till`]), loaded from the
//! store at start and told of each durable event by the syncer, so `GET /shifts/{id}` of an
//! open shift and the shift check of `/sell` read no SQLite.
pub mod returns;
pub mod shifts;

use crate::app::AppState;
use crate::error::BranchError;
use crate::idempotency::{Begin, InFlightGuard};
use crate::permissions::Caller;
use crate::storage::shifts::ShiftRow;
use colmena_shared::till::ShiftTally;
use colmena_shared::users::{Role, UserId};
use dashmap::DashMap;
use std::sync::Arc;
use std::time::Duration;

/// The branch's till settings (`--return-window`, `--cashier-return-limit`).
#[derive(Debug, Clone)]
pub struct Rules {
    pub return_window: Duration,
    pub cashier_return_limit_cents: i64,
}

/// The open shifts, by id.
pub struct Till {
    open: DashMap<String, ShiftRow>,
    pub rules: Rules,
}

impl Till {
    pub fn new(open_shifts: Vec<ShiftRow>, rules: Rules) -> Till {
        Till {
            open: open_shifts.into_iter().map(|s| (s.shift_id.clone(), s)).collect(),
            rules,
        }
    }

    /// A durable open or close: memory takes the row as it now is.
    pub fn put(&self, row: ShiftRow) {
        if row.open {
            self.open.insert(row.shift_id.clone(), row);
        } else {
            self.open.remove(&row.shift_id);
        }
    }

    /// A durable event on an open shift adds its figures.
    pub fn add(&self, shift_id: &str, t: &ShiftTally) {
        if let Some(mut s) = self.open.get_mut(shift_id) {
            s.tally.merge(t);
        }
    }

    pub fn is_open(&self, shift_id: &str) -> bool {
        self.open.contains_key(shift_id)
    }

    /// An open shift as it stands.
    pub fn get(&self, shift_id: &str) -> Option<ShiftRow> {
        self.open.get(shift_id).map(|s| s.clone())
    }

    pub fn open_count(&self) -> usize {
        self.open.len()
    }
}

/// A till endpoint's answer: new, or the first answer again for a repeated
/// `Idempotency-Key` (its JSON, sent as it was).
pub enum Answer<T> {
    New(T),
    Replayed(Arc<str>),
}

/// Starts an `Idempotency-Key`'s request (same semantics as `/sell`): the guard to record
/// the answer with, or the answer to replay.
pub(crate) fn begin(app: &AppState, key: Option<&str>, fingerprint: String) -> Result<Begun, BranchError> {
    let Some(k) = key else { return Ok(Begun::Fresh(None)) };
    match app.idempotency.begin(k, fingerprint) {
        Begin::Proceed(g) => Ok(Begun::Fresh(Some(g))),
        Begin::Replay(body) => Ok(Begun::Replay(body)),
        Begin::Mismatch => Err(BranchError::IdempotencyKeyReused),
        Begin::InFlight => Err(BranchError::IdempotencyKeyInFlight),
    }
}

pub(crate) enum Begun {
    Fresh(Option<InFlightGuard>),
    Replay(Arc<str>),
}

/// The logged-in user behind a till action. The permission table lets only users reach
/// these endpoints; anything else is refused here too rather than recorded as nobody.
pub(crate) fn user_of(caller: Option<&Caller>) -> Result<(UserId, Role), BranchError> {
    match caller {
        Some(Caller::User { user_id, role }) => Ok((user_id.clone(), *role)),
        _ => Err(BranchError::Forbidden("the till needs a logged-in user".into())),
    }
}

/// A cashier acts on their own shifts only; supervisors and managers on any.
pub(crate) fn may_act_on(row: &ShiftRow, user: &UserId, role: Role) -> bool {
    role != Role::Cashier || row.opened_by.as_deref() == Some(user.as_str())
}
