//! People: the users central manages, their roles, what branches receive of them by pull,
//! and the branch's login (see docs/protocol.md, "People and permissions").
//!
//! A PIN travels only from a manager to central (`PUT /users/{id}`) and from a cashier to a
//! branch (`POST /login`). [`Pin`] has no `Serialize` and a redacted `Debug`, so it cannot
//! end up in a response or a log line by accident; what leaves central is the argon2id hash,
//! and only towards branches.
use crate::ids::truncate;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use std::fmt;
use utoipa::ToSchema;

/// A user's id: 1–64 chars of `[A-Za-z0-9._-]`, like a product id (but never an integer).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "ana")]
pub struct UserId(String);

impl UserId {
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = (1..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
        if ok {
            Ok(UserId(s.to_string()))
        } else {
            Err(format!(
                "user_id must be 1-64 chars of [A-Za-z0-9._-], got {:?}",
                truncate(s)
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for UserId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        UserId::parse(&s).map_err(de::Error::custom)
    }
}

/// What a user may do at a branch (the permission table: docs/protocol.md, "Permissions").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Cashier,
    Supervisor,
    Manager,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Cashier => "cashier",
            Role::Supervisor => "supervisor",
            Role::Manager => "manager",
        }
    }
}

/// A PIN as typed: 4–8 ASCII digits. Never serialized, never printed.
#[derive(Clone, PartialEq, Eq, ToSchema)]
#[schema(value_type = String, pattern = "^[0-9]{4,8}$", example = "4821")]
pub struct Pin(String);

impl Pin {
    pub fn parse(s: &str) -> Result<Pin, String> {
        if (4..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Pin(s.to_string()))
        } else {
            // The value itself is not echoed: it is a secret even when malformed.
            Err("pin must be 4-8 digits".to_string())
        }
    }
    /// The digits, for hashing and verifying only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(<redacted>)")
    }
}

impl<'de> Deserialize<'de> for Pin {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Read as any JSON value first: serde's own type error would quote the value
        // ("invalid type: integer `4821`"), and a PIN sent as a number is still a PIN.
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Pin::parse(&s).map_err(de::Error::custom),
            _ => Err(de::Error::custom("pin must be a string of 4-8 digits")),
        }
    }
}

fn yes() -> bool {
    true
}

/// `PUT /users/{user_id}` at central (admin token).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Ana Quispe", "role": "cashier", "branches": ["CUS"], "pin": "4821", "active": true}))]
pub struct UserPut {
    /// 1–200 characters.
    pub name: String,
    pub role: Role,
    /// Branch ids where the user may log in, or `["*"]` for every branch. At least one.
    pub branches: Vec<String>,
    /// Required when the user is created; kept when omitted on an update.
    #[serde(default)]
    pub pin: Option<Pin>,
    #[serde(default = "yes")]
    pub active: bool,
}

/// A user as central answers it: never the PIN nor its hash.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct User {
    pub user_id: UserId,
    pub name: String,
    pub role: Role,
    pub branches: Vec<String>,
    pub active: bool,
    /// Bumped by every change; branches ignore an older version than the one they hold.
    pub version: u64,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserList {
    pub users: Vec<User>,
}

/// A user as branches receive it by pull: with the argon2id hash of the PIN (a PHC string),
/// so that a branch verifies logins with central down.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct UserRecord {
    pub user_id: UserId,
    pub name: String,
    pub role: Role,
    pub branches: Vec<String>,
    pub active: bool,
    pub version: u64,
    pub pin_hash: String,
}

impl User {
    /// What central answers of a stored user: everything but the hash.
    pub fn from_record(r: &UserRecord, updated_at: String) -> User {
        User {
            user_id: r.user_id.clone(),
            name: r.name.clone(),
            role: r.role,
            branches: r.branches.clone(),
            active: r.active,
            version: r.version,
            updated_at,
        }
    }
}

impl UserRecord {
    /// Whether the user may work at `branch_id` at all (active, and the branch listed).
    pub fn may_work_at(&self, branch_id: &str) -> bool {
        self.active && self.branches.iter().any(|b| b == "*" || b == branch_id)
    }
}

impl fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserRecord")
            .field("user_id", &self.user_id)
            .field("role", &self.role)
            .field("branches", &self.branches)
            .field("active", &self.active)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// `POST /login` at a branch. Both fields are plain strings: a malformed id or PIN is just
/// a failed login (401 `invalid_credentials`), like any other.
#[derive(Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(example = "ana")]
    pub user_id: String,
    #[schema(example = "4821")]
    #[serde(deserialize_with = "secret_string")]
    pub pin: String,
}

/// A string field holding a secret: a value of another JSON type is refused without serde's
/// usual message, which would quote it (`invalid type: integer `4821``) into a 400 body.
fn secret_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Ok(s),
        _ => Err(de::Error::custom("pin must be a string")),
    }
}

impl fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginRequest")
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

/// 200 of `POST /login`: a bearer token for this branch until `expires_at`.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct LoginResponse {
    pub token: String,
    pub user_id: UserId,
    pub name: String,
    pub role: Role,
    #[schema(format = DateTime)]
    pub expires_at: String,
}

impl fmt::Debug for LoginResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginResponse")
            .field("user_id", &self.user_id)
            .field("role", &self.role)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// One admin change as central's audit trail keeps it (`GET /audit`): who did what to which
/// resource, and the resource before and after. Users appear without PIN or hash.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
#[schema(example = json!({"id": 7, "at": "2026-11-23T16:00:00Z", "actor": "admin", "action": "product.put",
    "target": "/products/ARROZ-1KG", "before": {"product_id": "ARROZ-1KG", "name": "Arroz 1 kg", "price_cents": 500, "version": 1},
    "after": {"product_id": "ARROZ-1KG", "name": "Arroz 1 kg", "price_cents": 520, "version": 2}}))]
pub struct AuditEntry {
    /// Increasing in the order the changes were committed.
    pub id: u64,
    #[schema(format = DateTime)]
    pub at: String,
    /// Who made the change: `admin` (the admin token).
    pub actor: String,
    /// `user.put`, `product.put` or `allocation.create`.
    pub action: String,
    /// The resource changed, as its path (`/users/ana`, `/products/P1`, `/branches/CUS/allocations`).
    pub target: String,
    /// The resource before the change; `null` when it was created.
    #[schema(value_type = Option<Object>)]
    pub before: Option<serde_json::Value>,
    /// The resource after the change.
    #[schema(value_type = Object)]
    pub after: serde_json::Value,
}

/// A page of `GET /audit`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Pass as `after` for the next page; `null` on the last page.
    #[schema(example = "a42")]
    pub next: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pin_is_four_to_eight_digits_and_never_printed() {
        for ok in ["0000", "4821", "12345678"] {
            let p = Pin::parse(ok).unwrap();
            assert_eq!(format!("{p:?}"), "Pin(<redacted>)");
        }
        for bad in ["", "123", "123456789", "12a4", "١٢٣٤", " 1234", "12.4"] {
            let e = Pin::parse(bad).unwrap_err();
            assert!(!e.contains(bad) || bad.is_empty(), "{e}");
        }
    }

    #[test]
    fn a_pin_of_the_wrong_type_is_refused_without_quoting_it() {
        #[derive(Debug, Deserialize)]
        struct B {
            #[allow(dead_code)]
            pin: Pin,
        }
        for body in [
            r#"{"pin": 4821}"#,
            r#"{"pin": 48.21}"#,
            r#"{"pin": ["4821"]}"#,
            r#"{"pin": "48x1"}"#,
        ] {
            let e = serde_json::from_str::<B>(body).unwrap_err().to_string();
            assert!(!e.contains("48"), "{e}");
        }
    }

    #[test]
    fn a_user_may_work_where_listed_or_everywhere_with_a_star() {
        let mut u = UserRecord {
            user_id: UserId::parse("ana").unwrap(),
            name: "Ana".into(),
            role: Role::Cashier,
            branches: vec!["CUS".into()],
            active: true,
            version: 1,
            pin_hash: "$argon2id$secret".into(),
        };
        assert!(u.may_work_at("CUS") && !u.may_work_at("ABA"));
        u.branches = vec!["*".into()];
        assert!(u.may_work_at("ABA"));
        u.active = false;
        assert!(!u.may_work_at("ABA"));
        assert!(!format!("{u:?}").contains("secret"), "the hash is never printed");
    }
}
