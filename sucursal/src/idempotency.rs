//! `Idempotency-Key` on `/sell` (docs/protocol.md, "Idempotency keys"; IETF draft semantics).
//!
//! - same key, same body → the first 201 again, with `Idempotent-Replayed: true`;
//! - same key, other body → 422 `idempotency_key_reused`;
//! - same key while the first request is still being processed → 409 `idempotency_key_in_flight`.
//!
//! Only successful sales are recorded: a rejected sale changed nothing, so retrying it with
//! the same key simply tries again (and may succeed once stock arrived). A record is written
//! in the *same* transaction as its sale, so after a crash a key is remembered exactly when
//! its sale exists. Records live at least `--idempotency-ttl` (≥ 24 h).
//!
//! Ordering invariant: the in-flight mark of a key is removed only after its record is in
//! [`Idempotency::records`] (the writer drops the [`InFlightGuard`] it carries after
//! recording), so no retry can slip between "not in flight" and "not recorded".
use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Record {
    pub fingerprint: String,
    pub response: Arc<str>,
    pub created_ms: i64,
}

#[derive(Default)]
pub struct Idempotency {
    records: DashMap<String, Record>,
    in_flight: DashMap<String, ()>,
}

pub enum Begin {
    /// The request is new: go ahead, holding the guard until the outcome is recorded.
    Proceed(InFlightGuard),
    Replay(Arc<str>),
    Mismatch,
    InFlight,
}

/// Marks a key as in flight until dropped.
pub struct InFlightGuard {
    owner: Arc<Idempotency>,
    pub key: String,
    pub fingerprint: String,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.owner.in_flight.remove(&self.key);
    }
}

impl Idempotency {
    pub fn load(rows: Vec<crate::storage::idempotency::IdempotencyRow>) -> Idempotency {
        let records = DashMap::with_capacity(rows.len());
        for r in rows {
            records.insert(
                r.key,
                Record {
                    fingerprint: r.fingerprint,
                    response: Arc::from(r.response),
                    created_ms: r.created_ms,
                },
            );
        }
        Idempotency {
            records,
            in_flight: DashMap::new(),
        }
    }

    fn lookup(&self, key: &str, fingerprint: &str) -> Option<Begin> {
        self.records.get(key).map(|r| {
            if r.fingerprint == fingerprint {
                Begin::Replay(r.response.clone())
            } else {
                Begin::Mismatch
            }
        })
    }

    pub fn begin(self: &Arc<Self>, key: &str, fingerprint: String) -> Begin {
        if let Some(b) = self.lookup(key, &fingerprint) {
            return b;
        }
        match self.in_flight.entry(key.to_string()) {
            Entry::Occupied(_) => return Begin::InFlight,
            Entry::Vacant(v) => {
                v.insert(());
            }
        }
        let guard = InFlightGuard {
            owner: self.clone(),
            key: key.to_string(),
            fingerprint,
        };
        // The first request may have finished between the lookup and the mark.
        if let Some(b) = self.lookup(key, &guard.fingerprint) {
            return b; // guard drops: mark removed
        }
        Begin::Proceed(guard)
    }

    pub fn record(&self, key: String, rec: Record) {
        self.records.insert(key, rec);
    }

    pub fn purge_before(&self, before_ms: i64) {
        self.records.retain(|_, r| r.created_ms >= before_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_in_flight_is_refused_until_its_guard_is_dropped() {
        let i = Arc::new(Idempotency::default());
        let g = match i.begin("k", "a".into()) {
            Begin::Proceed(g) => g,
            _ => panic!("new key must proceed"),
        };
        assert!(matches!(i.begin("k", "a".into()), Begin::InFlight));
        i.record(
            "k".into(),
            Record {
                fingerprint: "a".into(),
                response: Arc::from("{}"),
                created_ms: 0,
            },
        );
        drop(g);
        assert!(matches!(i.begin("k", "a".into()), Begin::Replay(_)));
        assert!(matches!(i.begin("k", "b".into()), Begin::Mismatch));
    }

    #[test]
    fn a_failed_request_frees_its_key() {
        let i = Arc::new(Idempotency::default());
        drop(i.begin("k", "a".into()));
        assert!(matches!(i.begin("k", "a".into()), Begin::Proceed(_)));
    }
}
