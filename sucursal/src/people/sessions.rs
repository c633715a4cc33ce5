//! Login sessions: who a user bearer token is, until when.
//!
//! A token is 256 random bits from the OS, sent once (in the 200 of `POST /login`) as 64 hex
//! characters. Only its SHA-256 is kept, so neither memory dumps nor `Debug` output hold a
//! usable token. Sessions live in memory only: a restart logs everyone out, which is the
//! safe side (docs/protocol.md, "Login").
use argon2::password_hash::rand_core::{OsRng, RngCore};
use colmena_shared::users::{Role, UserId};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

/// Most live sessions; at the cap, expired ones are dropped first, then the one that
/// expires soonest.
pub const MAX_SESSIONS: usize = 100_000;

type TokenHash = [u8; 32];

fn hash(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// What a live token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user_id: UserId,
    pub role: Role,
    pub expires_at_ms: i64,
}

/// A session just opened: the token itself, which only the login's 200 may carry.
pub struct NewSession {
    pub token: String,
    pub expires_at_ms: i64,
}

impl fmt::Debug for NewSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewSession")
            .field("token", &"<redacted>")
            .field("expires_at_ms", &self.expires_at_ms)
            .finish()
    }
}

#[derive(Default)]
pub struct Sessions {
    live: Mutex<HashMap<TokenHash, Session>>,
}

impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sessions").field("live", &self.len()).finish()
    }
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TokenHash, Session>> {
        // A panic elsewhere while holding the lock leaves a usable map.
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn open(&self, user_id: UserId, role: Role, expires_at_ms: i64, now_ms: i64) -> NewSession {
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut live = self.lock();
        if live.len() >= MAX_SESSIONS {
            live.retain(|_, s| s.expires_at_ms > now_ms);
            if live.len() >= MAX_SESSIONS {
                let soonest = live.iter().min_by_key(|(_, s)| s.expires_at_ms).map(|(k, _)| *k);
                if let Some(k) = soonest {
                    live.remove(&k);
                }
            }
        }
        live.insert(
            hash(&token),
            Session {
                user_id,
                role,
                expires_at_ms,
            },
        );
        NewSession { token, expires_at_ms }
    }

    /// The live session of `token`; an expired one is dropped.
    pub fn resolve(&self, token: &str, now_ms: i64) -> Option<Session> {
        let key = hash(token);
        let mut live = self.lock();
        match live.get(&key) {
            Some(s) if s.expires_at_ms > now_ms => Some(s.clone()),
            Some(_) => {
                live.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Ends the session of `token`; false if there was none.
    pub fn end(&self, token: &str) -> bool {
        self.lock().remove(&hash(token)).is_some()
    }

    /// Ends every session of `user_id`; how many there were.
    pub fn revoke_user(&self, user_id: &UserId) -> usize {
        let mut live = self.lock();
        let before = live.len();
        live.retain(|_, s| &s.user_id != user_id);
        before - live.len()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_random_hex_and_never_printed() {
        let s = Sessions::default();
        let ana = UserId::parse("ana").unwrap();
        let a = s.open(ana.clone(), Role::Cashier, 1000, 0);
        let b = s.open(ana.clone(), Role::Cashier, 1000, 0);
        assert_eq!(a.token.len(), 64);
        assert!(a.token.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a.token, b.token);
        assert!(!format!("{a:?}").contains(&a.token));
        assert!(!format!("{s:?}").contains(&a.token));
        let sess = s.resolve(&a.token, 1).unwrap();
        assert!(!format!("{sess:?}").contains(&a.token));
        assert_eq!(sess.user_id, ana);
    }

    #[test]
    fn expiry_logout_and_revocation_end_sessions() {
        let s = Sessions::default();
        let ana = UserId::parse("ana").unwrap();
        let bob = UserId::parse("bob").unwrap();
        let a = s.open(ana.clone(), Role::Cashier, 1000, 0);
        assert!(s.resolve(&a.token, 999).is_some());
        assert!(s.resolve(&a.token, 1000).is_none());
        let a = s.open(ana.clone(), Role::Cashier, 1000, 0);
        assert!(s.end(&a.token) && s.resolve(&a.token, 1).is_none());
        let a = s.open(ana.clone(), Role::Cashier, 1000, 0);
        let b = s.open(bob, Role::Manager, 1000, 0);
        assert_eq!(s.revoke_user(&ana), 1);
        assert!(s.resolve(&a.token, 1).is_none() && s.resolve(&b.token, 1).is_some());
    }
}
