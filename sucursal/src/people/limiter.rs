//! Failed-login accounting: 5 failures for one user, or 20 from one client address, within
//! 5 minutes make the next attempt a 429 (docs/protocol.md, "Login"). A 4–8 digit PIN is
//! weak by nature; these limits, not the hash, are what stop guessing.
//!
//! Memory is bounded whatever a client sends: each key keeps at most its limit of
//! timestamps, and a map at [`MAX_KEYS`] first drops keys whose failures are all older than
//! the window, then the key with the oldest last failure.
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;

/// The window failures are counted in.
pub const WINDOW_MS: i64 = 5 * 60 * 1000;
/// Failures for one user id within the window before it is refused.
pub const PER_USER: usize = 5;
/// Failures from one client address within the window before it is refused.
pub const PER_ADDRESS: usize = 20;
/// Most keys one map holds.
pub const MAX_KEYS: usize = 10_000;

/// Failure times per key, newest last.
struct Window<K> {
    limit: usize,
    failures: HashMap<K, VecDeque<i64>>,
}

impl<K: Hash + Eq + Clone> Window<K> {
    fn new(limit: usize) -> Self {
        Window {
            limit,
            failures: HashMap::new(),
        }
    }

    /// Milliseconds until `key` may try again; `None` when it may now.
    fn blocked_for(&mut self, key: &K, now_ms: i64) -> Option<i64> {
        let times = self.failures.get_mut(key)?;
        while times.front().is_some_and(|t| *t + WINDOW_MS <= now_ms) {
            times.pop_front();
        }
        if times.is_empty() {
            self.failures.remove(key);
            return None;
        }
        // Full: the oldest failure's slot frees when it leaves the window.
        (times.len() >= self.limit).then(|| times.front().map_or(0, |t| t + WINDOW_MS - now_ms))
    }

    fn record(&mut self, key: K, now_ms: i64) {
        if !self.failures.contains_key(&key) && self.failures.len() >= MAX_KEYS {
            self.make_room(now_ms);
        }
        let times = self.failures.entry(key).or_default();
        times.push_back(now_ms);
        // Only the newest `limit` failures can ever decide a refusal.
        while times.len() > self.limit {
            times.pop_front();
        }
    }

    fn make_room(&mut self, now_ms: i64) {
        self.failures
            .retain(|_, t| t.back().is_some_and(|last| last + WINDOW_MS > now_ms));
        if self.failures.len() >= MAX_KEYS {
            let oldest = self
                .failures
                .iter()
                .min_by_key(|(_, t)| t.back().copied().unwrap_or(i64::MIN))
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.failures.remove(&k);
            }
        }
    }

    fn clear(&mut self, key: &K) {
        self.failures.remove(key);
    }

    fn len(&self) -> usize {
        self.failures.len()
    }
}

/// Both windows. Keys are the user id as typed (a well-formed one only) and the peer IP.
pub struct Limiter {
    by_user: Window<String>,
    by_address: Window<IpAddr>,
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter {
            by_user: Window::new(PER_USER),
            by_address: Window::new(PER_ADDRESS),
        }
    }
}

impl Limiter {
    /// `Err(seconds)` to wait (at least 1) when this user or address is over its limit.
    pub fn check(&mut self, user: Option<&str>, address: Option<IpAddr>, now_ms: i64) -> Result<(), u64> {
        let by_user = user.and_then(|u| self.by_user.blocked_for(&u.to_string(), now_ms));
        let by_address = address.and_then(|a| self.by_address.blocked_for(&a, now_ms));
        match by_user.max(by_address) {
            None => Ok(()),
            Some(ms) => Err((ms.max(0) as u64).div_ceil(1000).max(1)),
        }
    }

    pub fn failed(&mut self, user: Option<&str>, address: Option<IpAddr>, now_ms: i64) {
        if let Some(u) = user {
            self.by_user.record(u.to_string(), now_ms);
        }
        if let Some(a) = address {
            self.by_address.record(a, now_ms);
        }
    }

    /// A successful login forgets the user's failures (not the address's: one right PIN
    /// must not reset a guesser's count on other users).
    pub fn succeeded(&mut self, user: &str) {
        self.by_user.clear(&user.to_string());
    }

    /// Keys held (users, addresses), for tests.
    pub fn sizes(&self) -> (usize, usize) {
        (self.by_user.len(), self.by_address.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_block_the_user_until_the_oldest_leaves_the_window() {
        let mut l = Limiter::default();
        for i in 0..5 {
            assert_eq!(l.check(Some("ana"), None, i * 1000), Ok(()));
            l.failed(Some("ana"), None, i * 1000);
        }
        assert_eq!(l.check(Some("ana"), None, 5000), Err(295));
        assert_eq!(l.check(Some("bob"), None, 5000), Ok(()));
        assert_eq!(l.check(Some("ana"), None, WINDOW_MS), Ok(()));
    }

    #[test]
    fn twenty_failures_block_the_address_for_every_user() {
        let mut l = Limiter::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for i in 0..20 {
            l.failed(Some(&format!("u{i}")), Some(a), 0);
        }
        assert!(l.check(Some("new"), Some(a), 1).is_err());
        assert_eq!(l.check(Some("new"), Some(b), 1), Ok(()));
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_names() {
        let mut l = Limiter::default();
        for i in 0..(MAX_KEYS as i64 + 500) {
            l.failed(Some(&format!("user{i}")), None, i);
        }
        assert!(l.sizes().0 <= MAX_KEYS);
    }

    #[test]
    fn success_forgets_the_user_only() {
        let mut l = Limiter::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..5 {
            l.failed(Some("ana"), Some(a), 0);
        }
        l.succeeded("ana");
        assert_eq!(l.check(Some("ana"), Some(a), 1), Ok(()));
        assert_eq!(l.sizes(), (0, 1));
    }
}
