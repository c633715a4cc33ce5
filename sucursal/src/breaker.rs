//! The circuit breaker towards central: crate `failsafe`, plus what failsafe lacks.
//!
//! failsafe gives the CLOSED → OPEN → HALF_OPEN → CLOSED state machine with a
//! consecutive-failures policy. This module adds (see NOTES.md, "failsafe's gaps"):
//! - **state visibility**: failsafe has no state getter; an [`Instrument`] tracks the state
//!   into an atomic, and tells an injectable [`Observer`] (metrics) of every transition;
//! - **exactly one half-open trial**: failsafe admits any number of calls in HALF_OPEN; a
//!   [`Permit`] flagged as the trial is required there, and only one exists at a time;
//! - **sub-second, observable backoff**: failsafe's own backoffs count whole seconds and
//!   panic below 1 s, and hide the chosen wait. [`Backoff`] is an equal-jittered exponential
//!   (`base/2 + rand(0..=base/2)`, base = min·2ⁿ capped at max) that records each wait, so
//!   the relay can sleep exactly until the next trial instead of polling the breaker.
//!
//! Time comes from `failsafe::clock::now()`, so `failsafe::clock::freeze` makes unit tests
//! exact. Hooks run outside failsafe's lock; the observer never runs under one of ours.
use failsafe::failure_policy::{consecutive_failures, ConsecutiveFailures};
use failsafe::{Config, Instrument, StateMachine};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed,
    Open,
    HalfOpen,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
        }
    }
    fn from_u8(v: u8) -> State {
        match v {
            1 => State::Open,
            2 => State::HalfOpen,
            _ => State::Closed,
        }
    }
    fn to_u8(self) -> u8 {
        match self {
            State::Closed => 0,
            State::Open => 1,
            State::HalfOpen => 2,
        }
    }
}

/// Told of transitions and rejections (metrics, logs, tests).
pub trait Observer: Send + Sync {
    fn on_transition(&self, to: State);
    fn on_rejected(&self);
}

impl Observer for () {
    fn on_transition(&self, _to: State) {}
    fn on_rejected(&self) {}
}

/// Equal-jittered exponential backoff that remembers the last wait it chose.
#[derive(Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
    last: Arc<AtomicU64>,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max: max.max(min),
            attempt: 0,
            last: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl Iterator for Backoff {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        let base = self
            .min
            .saturating_mul(1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let half = base / 2;
        let jitter_ns = fastrand::u64(0..=half.as_nanos().min(u64::MAX as u128) as u64);
        let wait = half + Duration::from_nanos(jitter_ns);
        self.last
            .store(wait.as_nanos().min(u64::MAX as u128) as u64, Ordering::Release);
        Some(wait)
    }
}

#[derive(Clone)]
struct Tracker {
    state: Arc<AtomicU8>,
    open_until: Arc<Mutex<Option<Instant>>>,
    last_wait: Arc<AtomicU64>,
    observer: Arc<dyn Observer>,
}

impl Tracker {
    fn set(&self, to: State) {
        let prev = self.state.swap(to.to_u8(), Ordering::AcqRel);
        if prev != to.to_u8() {
            self.observer.on_transition(to);
        }
    }
}

impl Instrument for Tracker {
    fn on_call_rejected(&self) {
        self.observer.on_rejected();
    }
    fn on_open(&self) {
        let wait = Duration::from_nanos(self.last_wait.load(Ordering::Acquire));
        *self.open_until.lock().unwrap_or_else(|e| e.into_inner()) = Some(failsafe::clock::now() + wait);
        self.set(State::Open);
    }
    fn on_half_open(&self) {
        self.set(State::HalfOpen);
    }
    fn on_closed(&self) {
        *self.open_until.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.set(State::Closed);
    }
}

#[derive(Debug, Clone)]
pub struct BreakerConfig {
    pub failures: u32,
    pub wait_min: Duration,
    pub wait_max: Duration,
}

pub struct Breaker {
    machine: StateMachine<ConsecutiveFailures<Backoff>, Tracker>,
    tracker: Tracker,
    trial_in_flight: AtomicBool,
}

/// The call was not allowed: the breaker is open, or the half-open trial is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("circuit breaker is open")]
pub struct Rejected;

impl Breaker {
    pub fn new(cfg: &BreakerConfig, observer: Arc<dyn Observer>) -> Arc<Breaker> {
        let backoff = Backoff::new(cfg.wait_min, cfg.wait_max);
        let tracker = Tracker {
            state: Arc::new(AtomicU8::new(State::Closed.to_u8())),
            open_until: Arc::new(Mutex::new(None)),
            last_wait: backoff.last.clone(),
            observer,
        };
        let machine = Config::new()
            .failure_policy(consecutive_failures(cfg.failures, backoff))
            .instrument(tracker.clone())
            .build();
        Arc::new(Breaker {
            machine,
            tracker,
            trial_in_flight: AtomicBool::new(false),
        })
    }

    pub fn state(&self) -> State {
        State::from_u8(self.tracker.state.load(Ordering::Acquire))
    }

    /// While OPEN: when the half-open trial becomes possible.
    pub fn open_until(&self) -> Option<Instant> {
        if self.state() == State::Open {
            *self.tracker.open_until.lock().unwrap_or_else(|e| e.into_inner())
        } else {
            None
        }
    }

    /// True when a call now would not be refused for being OPEN (does not change state, does
    /// not count a rejection — unlike failsafe's `is_call_permitted`).
    pub fn looks_available(&self) -> bool {
        match self.state() {
            State::Closed => true,
            State::HalfOpen => !self.trial_in_flight.load(Ordering::Acquire),
            State::Open => self.open_until().is_none_or(|t| failsafe::clock::now() > t),
        }
    }

    /// Asks to make one call. The permit must be resolved with `success` or `failure`;
    /// dropping it unresolved (the call was cancelled) records nothing but frees the trial.
    pub fn acquire(self: &Arc<Self>) -> Result<Permit, Rejected> {
        if !self.machine.is_call_permitted() {
            return Err(Rejected);
        }
        let trial = self.state() == State::HalfOpen;
        if trial
            && self
                .trial_in_flight
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            self.tracker.observer.on_rejected();
            return Err(Rejected);
        }
        Ok(Permit {
            breaker: self.clone(),
            trial,
            done: false,
        })
    }
}

pub struct Permit {
    breaker: Arc<Breaker>,
    trial: bool,
    done: bool,
}

impl Permit {
    pub fn success(mut self) {
        self.done = true;
        self.breaker.machine.on_success();
    }
    pub fn failure(mut self) {
        self.done = true;
        self.breaker.machine.on_error();
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.trial {
            self.breaker.trial_in_flight.store(false, Ordering::Release);
        }
        let _ = self.done;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use failsafe::clock;

    #[derive(Default)]
    struct Recorder {
        transitions: Mutex<Vec<State>>,
        rejected: AtomicU64,
    }
    impl Observer for Recorder {
        fn on_transition(&self, to: State) {
            self.transitions.lock().unwrap().push(to);
        }
        fn on_rejected(&self) {
            self.rejected.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn breaker(rec: Arc<Recorder>) -> Arc<Breaker> {
        let cfg = BreakerConfig {
            failures: 3,
            wait_min: Duration::from_secs(1),
            wait_max: Duration::from_secs(60),
        };
        Breaker::new(&cfg, rec)
    }

    fn fail_n(b: &Arc<Breaker>, n: usize) {
        for _ in 0..n {
            b.acquire().expect("permitted").failure();
        }
    }

    #[test]
    fn walks_closed_open_half_open_open_half_open_closed() {
        clock::freeze(|time| {
            let rec = Arc::new(Recorder::default());
            let b = breaker(rec.clone());
            assert_eq!(b.state(), State::Closed);
            fail_n(&b, 2);
            assert_eq!(b.state(), State::Closed, "two failures are below the threshold");
            fail_n(&b, 1);
            assert_eq!(b.state(), State::Open);
            assert!(b.acquire().is_err(), "no call while open");
            assert_eq!(rec.rejected.load(Ordering::Relaxed), 1);

            let wait1 = b.open_until().unwrap() - clock::now();
            assert!(
                wait1 >= Duration::from_millis(500) && wait1 <= Duration::from_secs(1),
                "{wait1:?}"
            );
            time.advance(wait1 + Duration::from_millis(1));
            let trial = b.acquire().expect("trial after the wait");
            assert_eq!(b.state(), State::HalfOpen);
            assert!(b.acquire().is_err(), "only one trial at a time");
            trial.failure();
            assert_eq!(b.state(), State::Open);

            let wait2 = b.open_until().unwrap() - clock::now();
            assert!(
                wait2 >= Duration::from_secs(1) && wait2 <= Duration::from_secs(2),
                "wait grows: {wait2:?}"
            );
            time.advance(wait2 + Duration::from_millis(1));
            b.acquire().expect("second trial").success();
            assert_eq!(b.state(), State::Closed);
            assert_eq!(
                *rec.transitions.lock().unwrap(),
                vec![
                    State::Open,
                    State::HalfOpen,
                    State::Open,
                    State::HalfOpen,
                    State::Closed
                ]
            );
        });
    }

    #[test]
    fn a_success_resets_the_consecutive_count() {
        let rec = Arc::new(Recorder::default());
        let b = breaker(rec);
        fail_n(&b, 2);
        b.acquire().unwrap().success();
        fail_n(&b, 2);
        assert_eq!(b.state(), State::Closed);
    }

    #[test]
    fn a_cancelled_trial_frees_the_half_open_slot() {
        clock::freeze(|time| {
            let b = breaker(Arc::new(Recorder::default()));
            fail_n(&b, 3);
            time.advance(Duration::from_secs(2));
            let t = b.acquire().unwrap();
            drop(t);
            assert_eq!(b.state(), State::HalfOpen);
            assert!(b.acquire().is_ok());
        });
    }

    #[test]
    fn backoff_is_equal_jittered_and_capped() {
        let mut bo = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let waits: Vec<Duration> = (0..10).map(|_| bo.next().unwrap()).collect();
        for (n, w) in waits.iter().enumerate() {
            let base = Duration::from_secs(1u64 << n).min(Duration::from_secs(60));
            assert!(
                *w >= base / 2 && *w <= base,
                "attempt {n}: {w:?} not in [{:?}, {base:?}]",
                base / 2
            );
        }
        // Jitter: 200 draws of the capped wait are not all the same.
        let distinct: std::collections::HashSet<u128> = (0..200).map(|_| bo.next().unwrap().as_millis()).collect();
        assert!(distinct.len() > 10, "no jitter: {distinct:?}");
    }
}
