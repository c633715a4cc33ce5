//! The push loop's decisions, as a small state machine with no I/O.
//!
//! The loop (in `push_loop`) reads a batch, sends it, turns central's answer into an
//! [`Outcome`] and asks [`PushState::decide`] what to do; everything here is plain data, so
//! each rule is unit-tested without a network or a store (see docs/protocol.md, "The relay").
//!
//! Invariants:
//! - `next_after` (the seq the next batch continues from) only moves to a position central
//!   reported: its `applied_through` on success, or — once stored durably — its position in a
//!   `sequence_gap` — and each round starts at least at the stored `acked_through`, so
//!   nothing recorded there is sent again.
//! - Prefetching (reading the next batch while one is in flight) happens only while pushes
//!   succeed: after a failure the next attempt resends the same batch, and a prefetch would be
//!   read for nothing at every retry.
//! - Refusals back off exponentially (1 s .. 60 s); the first success resets that backoff.
use crate::breaker::Backoff;
use colmena_shared::error::{ErrorBody, ErrorCode};
use std::time::Duration;

/// Refused pushes back off from this ...
const REJECTED_MIN: Duration = Duration::from_secs(1);
/// ... up to this.
const REJECTED_MAX: Duration = Duration::from_secs(60);
/// Pause after a breaker failure (timeout, transport error, 5xx) the retries did not mend.
const AFTER_FAILURE: Duration = Duration::from_millis(200);
/// Pause when every breaker is open but no future trial time is known (or it is due now).
const OPEN_POLL: Duration = Duration::from_millis(50);
/// Added to the wait for a half-open trial, so the breaker is surely due when the loop wakes.
const TRIAL_MARGIN: Duration = Duration::from_millis(5);

/// What came of sending one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 200: central applied the branch's events through `applied_through`.
    Applied { applied_through: u64 },
    /// 409 `sequence_gap`: central stands at `applied_through` for this branch.
    SequenceGap { applied_through: u64 },
    /// Central refused the batch (a 4xx that is not a breaker failure), or answered something
    /// the relay cannot use (a 409 without `applied_through`, a 200 that is not a push answer).
    Rejected,
    /// 429/503 with `Retry-After`.
    RetryAfter(Duration),
    /// A breaker failure the retries did not mend: timeout, transport error, 5xx, 408, 429.
    Failed,
    /// Every URL's breaker is open (failover found none to call); the earliest half-open trial
    /// is `until_trial` from now (None: none is scheduled in the future).
    BreakerOpen { until_trial: Option<Duration> },
}

/// What the loop does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Mark the outbox acknowledged through `through` (in the background) and resume from
    /// `through + 1` at once.
    Ack { through: u64 },
    /// Store `through` as acknowledged *before* going on (if central is ahead of this store,
    /// that write raises the seq floor, which must happen before new sales), then call
    /// [`PushState::resynced`] to resume from `through + 1`. If it cannot be stored, resend.
    Resync { through: u64 },
    /// Wait this long, then resend the same batch.
    BackOff(Duration),
}

/// The push loop's memory between batches.
pub struct PushState {
    next_after: u64,
    flowing: bool,
    rejected: Backoff,
}

impl PushState {
    /// Starts after the stored `acked_through`, not flowing.
    pub fn new(acked_through: u64) -> PushState {
        PushState {
            next_after: acked_through,
            flowing: false,
            rejected: Backoff::new(REJECTED_MIN, REJECTED_MAX),
        }
    }

    /// The next batch starts after this seq.
    pub fn next_after(&self) -> u64 {
        self.next_after
    }

    /// The stored `acked_through` is a floor: what is recorded there is never re-sent.
    pub fn catch_up(&mut self, stored_acked_through: u64) {
        self.next_after = self.next_after.max(stored_acked_through);
    }

    /// Whether a batch read from the outbox continues where central expects it; if not, the
    /// events in between were purged already and the loop can only skip to what is left.
    pub fn continues(&self, batch_first: u64) -> bool {
        batch_first == self.next_after + 1
    }

    /// The range `(after, through)` to prefetch while a batch ending at `batch_last` is in
    /// flight, given the durable `last_seq`; None when there is nothing more or pushes are not
    /// flowing.
    pub fn prefetch(&self, batch_last: u64, last_seq: u64) -> Option<(u64, u64)> {
        (self.flowing && batch_last < last_seq).then_some((batch_last, last_seq))
    }

    /// The decision for one batch's outcome.
    pub fn decide(&mut self, outcome: Outcome) -> Action {
        let wait = match outcome {
            Outcome::Applied { applied_through } => {
                self.next_after = applied_through;
                self.flowing = true;
                self.rejected = Backoff::new(REJECTED_MIN, REJECTED_MAX);
                return Action::Ack {
                    through: applied_through,
                };
            }
            // Neither flowing nor the backoff change: the resend after a resync is the normal
            // path, not a failure.
            Outcome::SequenceGap { applied_through } => {
                return Action::Resync {
                    through: applied_through,
                }
            }
            Outcome::Rejected => self.rejected.next().unwrap_or(REJECTED_MIN),
            Outcome::RetryAfter(d) => d,
            Outcome::Failed => AFTER_FAILURE,
            Outcome::BreakerOpen { until_trial } => match until_trial {
                Some(d) if !d.is_zero() => d + TRIAL_MARGIN,
                _ => OPEN_POLL,
            },
        };
        self.flowing = false;
        Action::BackOff(wait)
    }

    /// Central's position from a `sequence_gap` is stored: resume after it.
    pub fn resynced(&mut self, through: u64) {
        self.next_after = through;
    }
}

/// After a wake-up with `waiting` events ready, how long to linger so a batch fills: not at
/// all when a full batch is already there or lingering is off.
pub fn linger(waiting: u64, batch_max_events: usize, linger: Duration) -> Option<Duration> {
    ((waiting as usize) < batch_max_events && !linger.is_zero()).then_some(linger)
}

/// Central's position from a 409 body (the typed error body of docs/protocol.md, "Errors");
/// None when the body is not a `sequence_gap` carrying one.
pub fn gap_position(body: &str) -> Option<u64> {
    let body: ErrorBody = serde_json::from_str(body).ok()?;
    (body.error.code == ErrorCode::SequenceGap)
        .then_some(body.applied_through)
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use colmena_shared::error::{ApiError, ErrorCode};

    fn backoff_of(a: Action) -> Duration {
        match a {
            Action::BackOff(d) => d,
            other => panic!("expected a backoff, got {other:?}"),
        }
    }

    #[test]
    fn starts_after_the_stored_ack_and_never_falls_below_it() {
        let mut s = PushState::new(10);
        assert_eq!(s.next_after(), 10);
        s.catch_up(7);
        assert_eq!(s.next_after(), 10);
        s.catch_up(12);
        assert_eq!(s.next_after(), 12);
    }

    #[test]
    fn an_ack_marks_through_central_position_and_resumes_after_it() {
        let mut s = PushState::new(0);
        assert_eq!(
            s.decide(Outcome::Applied { applied_through: 50 }),
            Action::Ack { through: 50 }
        );
        assert_eq!(s.next_after(), 50);
        assert!(s.continues(51));
    }

    #[test]
    fn a_partial_ack_resumes_after_what_central_applied() {
        let mut s = PushState::new(0);
        // The batch was 1..=100; central applied only through 40.
        assert_eq!(
            s.decide(Outcome::Applied { applied_through: 40 }),
            Action::Ack { through: 40 }
        );
        assert_eq!(s.next_after(), 40);
    }

    #[test]
    fn a_sequence_gap_resumes_only_once_stored() {
        let mut s = PushState::new(100);
        assert_eq!(
            s.decide(Outcome::SequenceGap { applied_through: 30 }),
            Action::Resync { through: 30 }
        );
        // Not moved until the loop has stored the position.
        assert_eq!(s.next_after(), 100);
        s.resynced(30);
        assert_eq!(s.next_after(), 30);
        assert!(s.continues(31));
    }

    #[test]
    fn a_sequence_gap_neither_stops_nor_starts_prefetching() {
        let mut s = PushState::new(0);
        s.decide(Outcome::Applied { applied_through: 10 });
        s.decide(Outcome::SequenceGap { applied_through: 5 });
        assert_eq!(s.prefetch(20, 30), Some((20, 30)));

        let mut s = PushState::new(0);
        s.decide(Outcome::SequenceGap { applied_through: 5 });
        assert_eq!(s.prefetch(20, 30), None);
    }

    #[test]
    fn rejections_back_off_exponentially_and_an_ack_resets_that() {
        let mut s = PushState::new(0);
        // Each wait is the base with up to half of it as jitter: base/2 ..= base.
        let first = backoff_of(s.decide(Outcome::Rejected));
        assert!(
            (Duration::from_millis(500)..=Duration::from_secs(1)).contains(&first),
            "{first:?}"
        );
        let second = backoff_of(s.decide(Outcome::Rejected));
        assert!(
            (Duration::from_secs(1)..=Duration::from_secs(2)).contains(&second),
            "{second:?}"
        );
        for _ in 0..10 {
            let d = backoff_of(s.decide(Outcome::Rejected));
            assert!(d <= Duration::from_secs(60), "{d:?}");
        }
        s.decide(Outcome::Applied { applied_through: 1 });
        let after_reset = backoff_of(s.decide(Outcome::Rejected));
        assert!(after_reset <= Duration::from_secs(1), "{after_reset:?}");
    }

    #[test]
    fn retry_after_is_obeyed_as_given() {
        let mut s = PushState::new(0);
        assert_eq!(
            s.decide(Outcome::RetryAfter(Duration::from_secs(7))),
            Action::BackOff(Duration::from_secs(7))
        );
    }

    #[test]
    fn a_transient_failure_retries_shortly_and_leaves_the_rejection_backoff_alone() {
        let mut s = PushState::new(0);
        assert_eq!(s.decide(Outcome::Failed), Action::BackOff(AFTER_FAILURE));
        let first = backoff_of(s.decide(Outcome::Rejected));
        assert!(first <= Duration::from_secs(1), "{first:?}");
    }

    #[test]
    fn an_open_breaker_waits_for_its_trial() {
        let mut s = PushState::new(0);
        assert_eq!(
            s.decide(Outcome::BreakerOpen {
                until_trial: Some(Duration::from_secs(2))
            }),
            Action::BackOff(Duration::from_secs(2) + TRIAL_MARGIN)
        );
        assert_eq!(
            s.decide(Outcome::BreakerOpen { until_trial: None }),
            Action::BackOff(OPEN_POLL)
        );
        assert_eq!(
            s.decide(Outcome::BreakerOpen {
                until_trial: Some(Duration::ZERO)
            }),
            Action::BackOff(OPEN_POLL)
        );
    }

    #[test]
    fn prefetching_runs_only_while_pushes_succeed() {
        let mut s = PushState::new(0);
        assert_eq!(s.prefetch(10, 20), None, "not before the first success");
        s.decide(Outcome::Applied { applied_through: 10 });
        assert_eq!(s.prefetch(20, 30), Some((20, 30)));
        assert_eq!(s.prefetch(30, 30), None, "nothing beyond the batch");
        for failure in [
            Outcome::Rejected,
            Outcome::Failed,
            Outcome::RetryAfter(Duration::from_secs(1)),
            Outcome::BreakerOpen { until_trial: None },
        ] {
            s.decide(Outcome::Applied { applied_through: 10 });
            s.decide(failure);
            assert_eq!(s.prefetch(20, 30), None, "after {failure:?}");
        }
    }

    #[test]
    fn a_batch_that_does_not_continue_is_noticed() {
        let s = PushState::new(10);
        assert!(s.continues(11));
        assert!(!s.continues(15));
    }

    #[test]
    fn lingers_only_for_a_partial_batch() {
        let l = Duration::from_millis(10);
        assert_eq!(linger(3, 500, l), Some(l));
        assert_eq!(linger(500, 500, l), None);
        assert_eq!(linger(3, 500, Duration::ZERO), None);
    }

    #[test]
    fn the_gap_position_is_read_from_the_error_body() {
        // Exactly what central sends: the shared error type's body.
        let mut gap = ApiError::new(ErrorCode::SequenceGap, "expected 43");
        gap.applied_through = Some(42);
        assert_eq!(gap_position(&gap.body()), Some(42));
        assert_eq!(gap_position(r#"{"error":{"code":"sequence_gap","message":"x"}}"#), None);
        assert_eq!(gap_position("<html>proxy error</html>"), None);
        assert_eq!(gap_position(r#"{"applied_through":-1}"#), None);
    }
}
