//! Helpers both stores share: integer conversions at the database boundary, the compact
//! encoding of sale lines, the inventory's per-product accumulator, and the user and
//! audit rules (what a user PUT writes, who hears of it, how an audit row reads back).
use super::{StoreError, UserChange, UserOutcome};
use colmena_shared::clock;
use colmena_shared::users::{AuditEntry, Role, User, UserId, UserRecord};
use colmena_shared::wire::{CentralProductStock, CentralSaleLine, Event, EventKind};
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::io::Write as _;

pub(crate) fn corrupt(what: impl Into<String>) -> StoreError {
    StoreError::Corrupt(what.into())
}

pub(crate) fn to_i64(what: &str, v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Database(format!("{what} {v} is out of range")))
}

pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Writes sale lines as `[["P1",2,550],...]`. Product ids are `[A-Za-z0-9._-]` (validated at
/// the boundary), so they need no JSON escaping.
pub(crate) fn encode_lines(buf: &mut Vec<u8>, lines: &[colmena_shared::wire::EventLine]) {
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

pub(crate) fn decode_lines(text: &str) -> Result<Vec<CentralSaleLine>, StoreError> {
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

pub(crate) fn inventory_entry(out: &mut BTreeMap<String, CentralProductStock>, id: String) -> &mut CentralProductStock {
    out.entry(id).or_insert_with_key(|id| CentralProductStock {
        product_id: id.clone(),
        name: None,
        price_cents: None,
        total_stock: 0,
        by_branch: BTreeMap::new(),
        in_transit: 0,
    })
}

/// Audit actions (docs/protocol.md, "Audit trail").
pub(crate) const ACTION_USER_PUT: &str = "user.put";
pub(crate) const ACTION_PRODUCT_PUT: &str = "product.put";
pub(crate) const ACTION_ALLOCATION_CREATE: &str = "allocation.create";
/// The only actor so far: central's admin token.
pub(crate) const ACTOR_ADMIN: &str = "admin";

pub(crate) fn json_text<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| corrupt(format!("cannot encode JSON: {e}")))
}

pub(crate) fn role_from_str(s: &str) -> Result<Role, StoreError> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).map_err(|_| corrupt(format!("unknown role {s:?}")))
}

/// A stored user row, as both stores read it.
pub(crate) struct UserRow {
    pub user_id: String,
    pub name: String,
    pub role: String,
    pub branches: String,
    pub active: bool,
    pub pin_hash: String,
    pub version: i64,
    pub updated_ms: i64,
}

impl UserRow {
    pub(crate) fn record(&self) -> Result<UserRecord, StoreError> {
        Ok(UserRecord {
            user_id: UserId::parse(&self.user_id).map_err(corrupt)?,
            name: self.name.clone(),
            role: role_from_str(&self.role)?,
            branches: serde_json::from_str(&self.branches)
                .map_err(|e| corrupt(format!("user {}: branches: {e}", self.user_id)))?,
            active: self.active,
            version: to_u64(self.version),
            pin_hash: self.pin_hash.clone(),
        })
    }

    pub(crate) fn user(&self) -> Result<User, StoreError> {
        Ok(User::from_record(
            &self.record()?,
            clock::millis_to_rfc3339(self.updated_ms),
        ))
    }
}

/// What a `PUT /users/{id}` does to the stored user (the same decision in both stores).
pub(crate) enum UserPlan {
    /// Nothing to write: answer this outcome.
    Answer(UserOutcome),
    /// Write `record` (users row, feed entry for `audience`, audit entry from `before`).
    Write {
        record: UserRecord,
        before: Option<User>,
        audience: String,
    },
}

pub(crate) fn plan_user_put(old: Option<&UserRow>, change: UserChange) -> Result<UserPlan, StoreError> {
    let old = old.map(|r| Ok::<_, StoreError>((r.record()?, r.user()?))).transpose()?;
    let Some(pin_hash) = change
        .pin_hash
        .clone()
        .or_else(|| old.as_ref().map(|(r, _)| r.pin_hash.clone()))
    else {
        return Ok(UserPlan::Answer(UserOutcome::PinRequired));
    };
    let version = old.as_ref().map_or(0, |(r, _)| r.version) + 1;
    let record = UserRecord {
        user_id: change.user_id,
        name: change.name,
        role: change.role,
        branches: change.branches,
        active: change.active,
        version,
        pin_hash,
    };
    if let Some((r, user)) = &old {
        // PUT is idempotent: the same fields again, and no new PIN, change nothing (no new
        // version, feed entry or audit entry). A new PIN always counts (its salt is new).
        let same = r.name == record.name && r.role == record.role && r.branches == record.branches;
        if same && r.active == record.active && change.pin_hash.is_none() {
            return Ok(UserPlan::Answer(UserOutcome::Saved(user.clone())));
        }
    }
    let audience = audience(old.as_ref().map(|(r, _)| r.branches.as_slice()), &record.branches);
    Ok(UserPlan::Write {
        record,
        before: old.map(|(_, u)| u),
        audience,
    })
}

/// The branches a user change is sent to by pull: those of its old list and of its new
/// one (a branch the user was just removed from must hear of it to end the user's
/// sessions), comma-wrapped (`,ABA,CUS,`) so a branch matches with one `',' || id || ','`
/// search; `*` matches every branch. Branch ids have no commas.
pub(crate) fn audience(old: Option<&[String]>, new: &[String]) -> String {
    let mut all: Vec<&str> = old.unwrap_or_default().iter().chain(new).map(String::as_str).collect();
    all.sort_unstable();
    all.dedup();
    format!(",{},", all.join(","))
}

/// An audit row as both stores read it back.
pub(crate) fn audit_entry(
    id: i64,
    at_ms: i64,
    actor: String,
    action: String,
    target: String,
    before: Option<String>,
    after: String,
) -> Result<AuditEntry, StoreError> {
    let parse = |t: &str| serde_json::from_str(t).map_err(|e| corrupt(format!("audit entry {id}: {e}")));
    Ok(AuditEntry {
        id: to_u64(id),
        at: clock::millis_to_rfc3339(at_ms),
        actor,
        action,
        target,
        before: before.as_deref().map(parse).transpose()?,
        after: parse(&after)?,
    })
}

/// The `UserRecord` a user change of the pull feed carries.
pub(crate) fn user_record(cursor: u64, payload: Option<&str>) -> Result<UserRecord, StoreError> {
    let payload = payload.ok_or_else(|| corrupt(format!("user change {cursor} has no payload")))?;
    serde_json::from_str(payload).map_err(|e| corrupt(format!("user change {cursor}: {e}")))
}

/// What central keeps of an applied event: enough to tell whether a pushed duplicate (an
/// event at or below `applied_through`) is that very event, a retry, or a different event
/// under an applied seq. Compared only when a push carries duplicates, so the ingest path
/// pays nothing for it. Every field an event of its kind carries is here.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AppliedEvent {
    Sale {
        sale_id: String,
        at_ms: i64,
        total_cents: i64,
        cashier_id: Option<String>,
        /// [`encode_lines`]' text.
        lines: String,
        shift_id: Option<String>,
        /// [`super::till::encode_payments`]' text; `None` when the branch sent none.
        payments: Option<String>,
    },
    Adjustment {
        product_id: String,
        quantity_delta: i64,
        reason: Option<String>,
        at_ms: i64,
        user_id: Option<String>,
    },
    ShiftOpened {
        shift_id: String,
        till_id: String,
        opening_float_cents: i64,
        at_ms: i64,
        user_id: Option<String>,
    },
    CashMovement {
        shift_id: String,
        /// `in` or `out`.
        movement: String,
        amount_cents: i64,
        reason: Option<String>,
        at_ms: i64,
        user_id: Option<String>,
    },
    ShiftClosed {
        shift_id: String,
        counted_cash_cents: i64,
        /// The branch's summary as JSON (serde's field order, methods sorted: one text per
        /// summary).
        summary: String,
        at_ms: i64,
        user_id: Option<String>,
    },
    Return {
        return_id: String,
        sale_id: String,
        /// [`encode_lines`]' text.
        lines: String,
        total_cents: i64,
        restock: bool,
        refund_method: String,
        shift_id: Option<String>,
        reason: Option<String>,
        at_ms: i64,
        user_id: Option<String>,
    },
    /// `transfer_dispatched` (kind 0) or `transfer_received` (kind 1).
    TransferStep {
        kind: i16,
        transfer_id: String,
        /// The event's `transfer_lines` as JSON.
        lines: String,
        at_ms: i64,
        user_id: Option<String>,
    },
}

impl AppliedEvent {
    /// The form in which central stores `e`.
    pub(crate) fn of(e: &Event, buf: &mut Vec<u8>) -> Result<AppliedEvent, StoreError> {
        let at_ms = clock::parse_rfc3339_millis(&e.occurred_at)
            .ok_or_else(|| StoreError::Database(format!("event {}: unparsable occurred_at", e.seq)))?;
        let user_id = e.user_id.as_ref().map(|u| u.as_str().to_string());
        let shift_id = e.shift_id.clone();
        let lines = |buf: &mut Vec<u8>| {
            encode_lines(buf, e.lines.as_deref().unwrap_or_default());
            String::from_utf8(buf.clone()).map_err(|x| corrupt(x.to_string()))
        };
        Ok(match e.kind {
            EventKind::Sale => AppliedEvent::Sale {
                sale_id: e.sale_id.clone().unwrap_or_default(),
                at_ms,
                total_cents: e.total_cents.unwrap_or_default(),
                cashier_id: e.cashier_id.clone(),
                lines: lines(buf)?,
                shift_id,
                payments: super::till::payments_text(e.payments.as_deref())?,
            },
            EventKind::Adjustment => AppliedEvent::Adjustment {
                product_id: e
                    .product_id
                    .as_ref()
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_default(),
                quantity_delta: e.quantity_delta.unwrap_or_default(),
                reason: e.reason.clone(),
                at_ms,
                user_id,
            },
            EventKind::ShiftOpened => AppliedEvent::ShiftOpened {
                shift_id: shift_id.unwrap_or_default(),
                till_id: e.till_id.clone().unwrap_or_default(),
                opening_float_cents: e.opening_float_cents.unwrap_or_default(),
                at_ms,
                user_id,
            },
            EventKind::CashMovement => AppliedEvent::CashMovement {
                shift_id: shift_id.unwrap_or_default(),
                movement: e
                    .movement
                    .map(super::till::movement_text)
                    .unwrap_or_default()
                    .to_string(),
                amount_cents: e.amount_cents.unwrap_or_default(),
                reason: e.reason.clone(),
                at_ms,
                user_id,
            },
            EventKind::ShiftClosed => AppliedEvent::ShiftClosed {
                shift_id: shift_id.unwrap_or_default(),
                counted_cash_cents: e.counted_cash_cents.unwrap_or_default(),
                summary: e.summary.as_ref().map(json_text).transpose()?.unwrap_or_default(),
                at_ms,
                user_id,
            },
            EventKind::Return => AppliedEvent::Return {
                return_id: e.return_id.clone().unwrap_or_default(),
                sale_id: e.sale_id.clone().unwrap_or_default(),
                lines: lines(buf)?,
                total_cents: e.total_cents.unwrap_or_default(),
                restock: e.restock.unwrap_or_default(),
                refund_method: e.refund_method.clone().unwrap_or_default(),
                shift_id,
                reason: e.reason.clone(),
                at_ms,
                user_id,
            },
            EventKind::TransferDispatched | EventKind::TransferReceived => AppliedEvent::TransferStep {
                kind: super::transfers::step_kind(e.kind).unwrap_or_default(),
                transfer_id: e.transfer_id.clone().unwrap_or_default(),
                lines: super::transfers::step_lines_text(e)?,
                at_ms,
                user_id,
            },
            // `domain::check_push` refuses it before any store sees it.
            EventKind::Unknown => {
                return Err(StoreError::Database(format!(
                    "event {}: kind unknown is not applied here",
                    e.seq
                )))
            }
        })
    }
}

/// The first of `dups` that is not the event stored under its seq (or has none stored:
/// every applied event is, so that is a different history too).
pub(crate) fn first_mismatch(dups: &[Event], stored: &HashMap<u64, AppliedEvent>) -> Result<Option<u64>, StoreError> {
    let mut buf = Vec::new();
    for e in dups {
        if stored.get(&e.seq) != Some(&AppliedEvent::of(e, &mut buf)?) {
            return Ok(Some(e.seq));
        }
    }
    Ok(None)
}
