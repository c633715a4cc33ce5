//! Input rules of central's endpoints: everything a client sends is checked here and turned
//! into typed values before the store sees it, so the store never has to doubt its input and
//! every bad input is a 400 that changed nothing.
use crate::error::CentralError;
use crate::store::{AuditFilter, ReturnsCursor, ReturnsFilter, SalesCursor, SalesFilter, ShiftsFilter, UserChange};
use colmena_shared::clock;
use colmena_shared::ids::{check_delta, check_text, BranchId, ProductId};
use colmena_shared::till::ShiftStatus;
use colmena_shared::users::{Pin, UserId, UserPut};
use colmena_shared::wire::{Event, EventKind};
use serde::Deserialize;

mod catalog;
pub mod reports;
mod transfers;
pub use catalog::{allocation_fingerprint, idempotency_key, if_match, product_fingerprint, product_upsert};
pub use transfers::{transfer_fingerprint, transfer_id, transfer_request, transfers_query, TransfersQuery};

/// Highest accepted price: 100 million in major units (`100_000_000.00`).
pub const MAX_PRICE_CENTS: i64 = 10_000_000_000;
/// Longest product name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Highest accepted seq or cursor: what the stores can keep in a signed 64-bit column.
pub const MAX_SEQ: u64 = i64::MAX as u64;
/// Page sizes of `/sales` and `/sync/pull`.
pub const MAX_PAGE: u32 = 1000;
pub const DEFAULT_SALES_PAGE: u32 = 100;
pub const DEFAULT_PULL_PAGE: u32 = 1000;

pub fn product_id(s: &str) -> Result<ProductId, CentralError> {
    ProductId::parse(s).map_err(CentralError::InvalidRequest)
}

pub fn branch_id(s: &str) -> Result<BranchId, CentralError> {
    BranchId::parse(s).map_err(CentralError::InvalidRequest)
}

pub fn user_id(s: &str) -> Result<UserId, CentralError> {
    UserId::parse(s).map_err(CentralError::InvalidRequest)
}

/// Most branches one user may be listed at (more is surely a mistake; `["*"]` covers all).
pub const MAX_USER_BRANCHES: usize = 1000;

/// `PUT /users/{id}` body → the change to store (its PIN not yet hashed: that is slow work
/// for a blocking thread) and the PIN, if one was sent. Whether every branch is known is the
/// store's call, in the same transaction as the write. Messages never quote the PIN.
pub fn user_put(user_id: UserId, body: UserPut) -> Result<(UserChange, Option<Pin>), CentralError> {
    check_text("name", &body.name, 1, MAX_NAME_CHARS).map_err(CentralError::InvalidRequest)?;
    let branches = user_branches(body.branches)?;
    let change = UserChange {
        user_id,
        name: body.name,
        role: body.role,
        branches,
        active: body.active,
        pin_hash: None,
    };
    Ok((change, body.pin))
}

/// A user's branches: exactly `["*"]`, or 1..=1000 branch ids, sorted without repeats (so
/// the same set sent in another order is no change).
fn user_branches(branches: Vec<String>) -> Result<Vec<String>, CentralError> {
    if branches.len() == 1 && branches[0] == "*" {
        return Ok(branches);
    }
    if branches.is_empty() || branches.len() > MAX_USER_BRANCHES {
        return Err(CentralError::InvalidRequest(format!(
            "branches must list 1-{MAX_USER_BRANCHES} branch ids, or be exactly [\"*\"]"
        )));
    }
    let mut ids = Vec::with_capacity(branches.len());
    for b in &branches {
        if b == "*" {
            return Err(CentralError::InvalidRequest(
                "\"*\" (every branch) must be the only entry of branches".into(),
            ));
        }
        ids.push(branch_id(b)?.as_str().to_string());
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// An allocation's quantity: non-zero, |q| ≤ 1_000_000 (negative withdraws stock).
pub fn allocation_quantity(q: i64) -> Result<i64, CentralError> {
    check_delta("quantity", q).map_err(CentralError::InvalidRequest)
}

/// Checks a push before it reaches the store: every event of a kind this central applies
/// and does not refuse (else the whole push is 422, so nothing of it, not even the events
/// before the refused one, is applied, and the branch keeps them all), valid by the shared
/// rules ([`Event::validate`], which the branch applied before committing it — central adds
/// no stricter rule, or a branch's outbox could get stuck on an event it already sold), seqs
/// strictly increasing and storable. Whether the seqs continue the branch's sequence is the
/// store's call (it needs `applied_through`, read in the same transaction).
pub fn check_push(events: &[Event], refused: &RefusedKinds) -> Result<(), CentralError> {
    let mut prev: Option<u64> = None;
    for e in events {
        check_event(e, refused)?;
        if let Some(p) = prev {
            if e.seq <= p {
                return Err(CentralError::InvalidRequest(format!(
                    "events must be in increasing seq order: {} follows {p}",
                    e.seq
                )));
            }
        }
        prev = Some(e.seq);
    }
    Ok(())
}

/// The event kinds this central applies. A branch newer than central may send others: they
/// are refused whole (422 `unsupported_event`), never skipped, so the branch keeps them.
pub fn applies(kind: EventKind) -> bool {
    match kind {
        EventKind::Sale
        | EventKind::Adjustment
        | EventKind::ShiftOpened
        | EventKind::CashMovement
        | EventKind::ShiftClosed
        | EventKind::Return
        | EventKind::TransferDispatched
        | EventKind::TransferReceived => true,
        EventKind::Unknown => false,
    }
}

/// Kinds this central knows but refuses as if it predated them (`--refuse-event-kind`, a
/// test and rollout aid: docs/protocol.md, "Command line").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefusedKinds(pub Vec<EventKind>);

impl RefusedKinds {
    fn refuses(&self, kind: EventKind) -> bool {
        !applies(kind) || self.0.contains(&kind)
    }
}

/// A `--refuse-event-kind` value: the wire name of a kind central applies.
pub fn refusable_kind(s: &str) -> Result<EventKind, String> {
    let kind: EventKind = serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|e| format!("not an event kind: {e}"))?;
    if !applies(kind) {
        let known: Vec<&str> = [
            EventKind::Sale,
            EventKind::Adjustment,
            EventKind::ShiftOpened,
            EventKind::CashMovement,
            EventKind::ShiftClosed,
            EventKind::Return,
            EventKind::TransferDispatched,
            EventKind::TransferReceived,
        ]
        .iter()
        .map(|k| k.as_str())
        .collect();
        return Err(format!(
            "{:?} is not a kind central applies (one of {})",
            truncate(s),
            known.join(", ")
        ));
    }
    Ok(kind)
}

fn check_event(e: &Event, refused: &RefusedKinds) -> Result<(), CentralError> {
    if refused.refuses(e.kind) {
        return Err(CentralError::UnsupportedEvent {
            seq: e.seq,
            kind: e.kind.as_str(),
        });
    }
    e.validate().map_err(CentralError::InvalidRequest)?;
    if e.seq > MAX_SEQ {
        return Err(CentralError::InvalidRequest(format!(
            "event seq {} is too large",
            e.seq
        )));
    }
    Ok(())
}

/// A page size: default when absent, 1..=1000.
pub fn page_limit(limit: Option<u32>, default: u32) -> Result<u32, CentralError> {
    match limit {
        None => Ok(default),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(n) => Err(CentralError::InvalidRequest(format!(
            "limit must be between 1 and {MAX_PAGE}, got {n}"
        ))),
    }
}

/// A pull cursor from the query string.
pub fn pull_after(after: Option<u64>) -> Result<u64, CentralError> {
    match after {
        Some(a) if a > MAX_SEQ => Err(CentralError::InvalidRequest(format!("after {a} is too large"))),
        a => Ok(a.unwrap_or(0)),
    }
}

fn time(field: &str, s: &str) -> Result<i64, CentralError> {
    clock::parse_rfc3339_millis(s)
        .ok_or_else(|| CentralError::InvalidRequest(format!("{field} must be an RFC 3339 time, got {s:?}")))
}

/// The filters of `/sales` and `/sales/export`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SalesFilterQuery {
    /// Only this branch's sales.
    #[param(pattern = "^[A-Z0-9_-]{2,16}$")]
    pub branch_id: Option<String>,
    /// Earliest `sold_at`, inclusive (RFC 3339).
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// Latest `sold_at`, exclusive (RFC 3339).
    #[param(format = DateTime)]
    pub to: Option<String>,
    /// Only the sales of this cashier (a user id).
    #[param(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub cashier_id: Option<String>,
}

/// `GET /sales` query. Unknown parameters are rejected: a misspelt filter would otherwise
/// silently return every sale.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SalesQuery {
    /// Only this branch's sales.
    #[param(pattern = "^[A-Z0-9_-]{2,16}$")]
    pub branch_id: Option<String>,
    /// Earliest `sold_at`, inclusive (RFC 3339).
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// Latest `sold_at`, exclusive (RFC 3339).
    #[param(format = DateTime)]
    pub to: Option<String>,
    /// Only the sales of this cashier (a user id).
    #[param(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub cashier_id: Option<String>,
    /// Page size (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// The `next` of the previous page (opaque).
    pub after: Option<String>,
}

/// `from` is inclusive, `to` exclusive; `from > to` is a mistake, not an empty range.
pub fn sales_filter(q: SalesFilterQuery) -> Result<SalesFilter, CentralError> {
    let branch = q.branch_id.as_deref().map(branch_id).transpose()?;
    let (from_ms, to_ms) = time_range(q.from.as_deref(), q.to.as_deref())?;
    let cashier = q
        .cashier_id
        .as_deref()
        .map(|c| UserId::parse(c).map_err(|e| CentralError::InvalidRequest(e.replacen("user_id", "cashier_id", 1))))
        .transpose()?;
    Ok(SalesFilter {
        branch,
        from_ms,
        to_ms,
        cashier,
    })
}

/// `GET /sales` → filter, position, page size.
pub fn sales_query(q: SalesQuery) -> Result<(SalesFilter, Option<SalesCursor>, u32), CentralError> {
    let filter = sales_filter(SalesFilterQuery {
        branch_id: q.branch_id,
        from: q.from,
        to: q.to,
        cashier_id: q.cashier_id,
    })?;
    let after = q.after.as_deref().map(decode_cursor).transpose()?;
    let limit = page_limit(q.limit, DEFAULT_SALES_PAGE)?;
    Ok((filter, after, limit))
}

/// `GET /audit` query. Unknown parameters are rejected, as on `/sales`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Earliest change, inclusive (RFC 3339).
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// Latest change, exclusive (RFC 3339).
    #[param(format = DateTime)]
    pub to: Option<String>,
    /// Page size (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// The `next` of the previous page (opaque).
    pub after: Option<String>,
}

/// `GET /audit` → bounds, the id to read after, page size.
pub fn audit_query(q: AuditQuery) -> Result<(AuditFilter, u64, u32), CentralError> {
    let (from_ms, to_ms) = time_range(q.from.as_deref(), q.to.as_deref())?;
    let after = q.after.as_deref().map(decode_audit_cursor).transpose()?.unwrap_or(0);
    let limit = page_limit(q.limit, DEFAULT_SALES_PAGE)?;
    Ok((AuditFilter { from_ms, to_ms }, after, limit))
}

/// The opaque `next`/`after` of `/audit`: `a<id>`.
pub fn encode_audit_cursor(id: u64) -> String {
    format!("a{id}")
}

fn decode_audit_cursor(s: &str) -> Result<u64, CentralError> {
    s.strip_prefix('a')
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| d.parse::<u64>().ok())
        .filter(|id| *id <= MAX_SEQ)
        .ok_or_else(|| {
            CentralError::InvalidRequest(format!("after is not a cursor returned by /audit: {:?}", truncate(s)))
        })
}

/// `GET /shifts` query. Unknown parameters are rejected, as on `/sales`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ShiftsQuery {
    /// Only this branch's shifts.
    #[param(pattern = "^[A-Z0-9_-]{2,16}$")]
    pub branch_id: Option<String>,
    /// Earliest `opened_at`, inclusive (RFC 3339).
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// Latest `opened_at`, exclusive (RFC 3339).
    #[param(format = DateTime)]
    pub to: Option<String>,
    /// Only open or only closed shifts.
    #[param(inline)]
    pub status: Option<ShiftStatus>,
}

/// `from`/`to` as Unix ms: `from` inclusive, `to` exclusive; `from > to` is a mistake.
fn time_range(from: Option<&str>, to: Option<&str>) -> Result<(Option<i64>, Option<i64>), CentralError> {
    let from_ms = from.map(|s| time("from", s)).transpose()?;
    let to_ms = to.map(|s| time("to", s)).transpose()?;
    if let (Some(f), Some(t)) = (from_ms, to_ms) {
        if f > t {
            return Err(CentralError::InvalidRequest("from is after to".into()));
        }
    }
    Ok((from_ms, to_ms))
}

pub fn shifts_query(q: ShiftsQuery) -> Result<ShiftsFilter, CentralError> {
    let (from_ms, to_ms) = time_range(q.from.as_deref(), q.to.as_deref())?;
    Ok(ShiftsFilter {
        branch: q.branch_id.as_deref().map(branch_id).transpose()?,
        from_ms,
        to_ms,
        status: q.status,
    })
}

/// `GET /returns` query. Unknown parameters are rejected, as on `/sales`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReturnsQuery {
    /// Only this branch's returns.
    #[param(pattern = "^[A-Z0-9_-]{2,16}$")]
    pub branch_id: Option<String>,
    /// Earliest `returned_at`, inclusive (RFC 3339).
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// Latest `returned_at`, exclusive (RFC 3339).
    #[param(format = DateTime)]
    pub to: Option<String>,
    /// Page size (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// The `next` of the previous page (opaque).
    pub after: Option<String>,
}

/// `GET /returns` → filter, position, page size.
pub fn returns_query(q: ReturnsQuery) -> Result<(ReturnsFilter, Option<ReturnsCursor>, u32), CentralError> {
    let (from_ms, to_ms) = time_range(q.from.as_deref(), q.to.as_deref())?;
    let filter = ReturnsFilter {
        branch: q.branch_id.as_deref().map(branch_id).transpose()?,
        from_ms,
        to_ms,
    };
    let after = q.after.as_deref().map(decode_returns_cursor).transpose()?;
    let limit = page_limit(q.limit, DEFAULT_SALES_PAGE)?;
    Ok((filter, after, limit))
}

/// What a pull asks for beyond products and allocations: `include=users`, or nothing. Any
/// other value (empty included) is 400, as its documented pattern says.
pub fn pull_include_users(include: Option<&str>) -> Result<bool, CentralError> {
    match include {
        None => Ok(false),
        Some("users") => Ok(true),
        Some(other) => Err(CentralError::InvalidRequest(format!(
            "include must be users, got {:?}",
            truncate(other)
        ))),
    }
}

/// The opaque `next`/`after` of `/sales`: `s<branch>.<sold_ms>.<seq>`. Clients must not
/// parse it; the prefix lets the format change later without ambiguity.
pub fn encode_cursor(c: SalesCursor) -> String {
    format!("s{}.{}.{}", c.branch, c.sold_ms, c.seq)
}

pub fn decode_cursor(s: &str) -> Result<SalesCursor, CentralError> {
    decode_position('s', "/sales", s)
}

/// The opaque `next`/`after` of `/returns`: `r<branch>.<returned_ms>.<seq>` (a cursor of
/// `/sales` is refused, and the other way round).
pub fn encode_returns_cursor(c: ReturnsCursor) -> String {
    format!("r{}.{}.{}", c.branch, c.sold_ms, c.seq)
}

pub fn decode_returns_cursor(s: &str) -> Result<ReturnsCursor, CentralError> {
    decode_position('r', "/returns", s)
}

fn decode_position(prefix: char, route: &str, s: &str) -> Result<SalesCursor, CentralError> {
    let bad = || CentralError::InvalidRequest(format!("after is not a cursor returned by {route}: {:?}", truncate(s)));
    let rest = s.strip_prefix(prefix).ok_or_else(bad)?;
    let mut parts = rest.split('.');
    let mut next = || -> Result<i64, CentralError> { parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad) };
    let c = SalesCursor {
        branch: next()?,
        sold_ms: next()?,
        seq: next()?,
    };
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok(c)
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_rejected() {
        let c = SalesCursor {
            sold_ms: -5,
            branch: 3,
            seq: 9,
        };
        assert_eq!(decode_cursor(&encode_cursor(c)).unwrap(), c);
        for bad in ["", "s", "s1.2", "s1.2.3.4", "x1.2.3", "s1.a.3", "s1..3"] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
        assert_eq!(decode_returns_cursor(&encode_returns_cursor(c)).unwrap(), c);
        assert!(decode_returns_cursor(&encode_cursor(c)).is_err());
        assert!(decode_cursor(&encode_returns_cursor(c)).is_err());
    }

    fn event(seq: u64, kind: EventKind) -> Event {
        Event {
            seq,
            kind,
            occurred_at: "2026-12-07T13:00:00Z".into(),
            shift_id: Some("SH1".into()),
            till_id: Some("T1".into()),
            opening_float_cents: Some(0),
            ..Event::default()
        }
    }

    #[test]
    fn every_till_kind_is_applied_unless_refused_and_an_unknown_kind_never_is() {
        let open = [event(1, EventKind::ShiftOpened)];
        assert!(check_push(&open, &RefusedKinds::default()).is_ok());
        let refused = RefusedKinds(vec![EventKind::ShiftOpened]);
        assert!(matches!(
            check_push(&open, &refused),
            Err(CentralError::UnsupportedEvent {
                seq: 1,
                kind: "shift_opened"
            })
        ));
        let unknown = [event(1, EventKind::Unknown)];
        assert!(matches!(
            check_push(&unknown, &RefusedKinds::default()),
            Err(CentralError::UnsupportedEvent { kind: "unknown", .. })
        ));
        assert_eq!(refusable_kind("return"), Ok(EventKind::Return));
        for bad in ["unknown", "refund", "", "Return"] {
            assert!(refusable_kind(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn limits_have_bounds() {
        assert_eq!(page_limit(None, 100).unwrap(), 100);
        assert!(page_limit(Some(0), 100).is_err());
        assert!(page_limit(Some(1001), 100).is_err());
        assert_eq!(page_limit(Some(1000), 100).unwrap(), 1000);
    }

    fn put(name: &str, branches: &[&str]) -> UserPut {
        UserPut {
            name: name.into(),
            role: colmena_shared::users::Role::Cashier,
            branches: branches.iter().map(|b| b.to_string()).collect(),
            pin: None,
            active: true,
        }
    }

    #[test]
    fn user_bodies_are_checked_and_branches_normalised() {
        let ana = || UserId::parse("ana").unwrap();
        let (c, _) = user_put(ana(), put("Ana", &["CUS", "ABA", "CUS"])).unwrap();
        assert_eq!(c.branches, ["ABA", "CUS"]);
        let (c, _) = user_put(ana(), put("Ana", &["*"])).unwrap();
        assert_eq!(c.branches, ["*"]);
        for (name, branches) in [
            ("", &["CUS"][..]),
            ("a\nb", &["CUS"]),
            ("Ana", &[]),
            ("Ana", &["*", "CUS"]),
            ("Ana", &["cus"]),
            ("Ana", &["C"]),
        ] {
            assert!(user_put(ana(), put(name, branches)).is_err(), "{name:?} {branches:?}");
        }
    }

    #[test]
    fn audit_cursors_and_pull_includes_are_checked() {
        assert_eq!(decode_audit_cursor(&encode_audit_cursor(42)).unwrap(), 42);
        for bad in ["", "a", "42", "a-1", "a1x", "a99999999999999999999", "a+1"] {
            assert!(decode_audit_cursor(bad).is_err(), "{bad}");
        }
        assert!(!pull_include_users(None).unwrap());
        assert!(pull_include_users(Some("users")).unwrap());
        for bad in ["user", "", "users,", "users,shifts"] {
            assert!(pull_include_users(Some(bad)).is_err(), "{bad}");
        }
    }
}
