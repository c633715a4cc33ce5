//! The `users` table: the users central sends this branch by pull (docs/protocol.md,
//! "People and permissions"), hash of the PIN included, so logins work with central down.
//!
//! Invariant: a row only ever moves to a newer `version`; an older or repeated change (a
//! re-pull after a restored central) leaves it as it is. The in-memory directory
//! ([`crate::people`]) is rebuilt from this table at start.
use super::db::{Result, StoreError};
use colmena_shared::users::{Role, UserId, UserRecord};
use rusqlite::{params, Connection};

fn role_from_str(s: &str) -> Option<Role> {
    match s {
        "cashier" => Some(Role::Cashier),
        "supervisor" => Some(Role::Supervisor),
        "manager" => Some(Role::Manager),
        _ => None,
    }
}

/// Inserts the user, or replaces it when `version` is newer than the stored one.
pub fn upsert(conn: &Connection, u: &UserRecord) -> Result<()> {
    // The branch list is stored as JSON: it is read whole, never queried by element.
    let branches = serde_json::to_string(&u.branches).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    conn.prepare_cached(
        "INSERT INTO users(user_id, name, role, branches, active, version, pin_hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT(user_id) DO UPDATE SET name = excluded.name, role = excluded.role,
            branches = excluded.branches, active = excluded.active, version = excluded.version,
            pin_hash = excluded.pin_hash
         WHERE excluded.version > users.version",
    )?
    .execute(params![
        u.user_id.as_str(),
        u.name,
        u.role.as_str(),
        branches,
        u.active,
        u.version as i64,
        u.pin_hash
    ])?;
    Ok(())
}

/// Every stored user, for the directory at start.
pub fn load_all(conn: &Connection) -> Result<Vec<UserRecord>> {
    let mut st =
        conn.prepare("SELECT user_id, name, role, branches, active, version, pin_hash FROM users ORDER BY user_id")?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, bool>(4)?,
            r.get::<_, i64>(5)?,
            r.get::<_, String>(6)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, name, role, branches, active, version, pin_hash) = row?;
        let bad = |what: &str| StoreError::Corrupt(format!("users row {id:?}: bad {what}"));
        out.push(UserRecord {
            user_id: UserId::parse(&id).map_err(|_| bad("user_id"))?,
            name,
            role: role_from_str(&role).ok_or_else(|| bad("role"))?,
            branches: serde_json::from_str(&branches).map_err(|_| bad("branches"))?,
            active,
            version: version.max(0) as u64,
            pin_hash,
        });
    }
    Ok(out)
}
