//! A small circuit breaker in front of the remote auth core.
//!
//! While the auth core is down, every MO in the inbox would otherwise cost a full round of
//! timeouts and retries against it. After `failures` requests in a row fail, the breaker
//! opens: nothing is sent for `open_for`, the pipeline's tries fail at once and the MOs wait
//! in the inbox. Then one probe goes out (half open); its success closes the breaker, its
//! failure opens it again. Sans-IO: the caller passes `now` in, so every transition is a
//! plain unit test.

use std::time::{Duration, Instant};

use crate::core::health::AuthCoreHealth;

/// Whether a request may go out now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    Yes,
    /// Yes, as the one probe of a half-open breaker.
    Probe,
    /// No: the breaker is open, or a probe is already out.
    No,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// A probe went out at `since`.
    HalfOpen {
        since: Instant,
    },
}

#[derive(Debug, Clone)]
pub struct Breaker {
    failures: u32,
    open_for: Duration,
    state: State,
}

impl Breaker {
    /// `failures` (at least 1) consecutive failures open it for `open_for`.
    pub fn new(failures: u32, open_for: Duration) -> Breaker {
        Breaker {
            failures: failures.max(1),
            open_for,
            state: State::Closed { failures: 0 },
        }
    }

    pub fn admit(&mut self, now: Instant) -> Admit {
        match self.state {
            State::Closed { .. } => Admit::Yes,
            State::Open { until } if now < until => Admit::No,
            // A probe whose outcome never came (its request was dropped) does not hold the
            // breaker forever: after another `open_for` the next probe may go.
            State::HalfOpen { since } if now < since + self.open_for => Admit::No,
            State::Open { .. } | State::HalfOpen { .. } => {
                self.state = State::HalfOpen { since: now };
                Admit::Probe
            }
        }
    }

    /// The auth core answered (an answer or a refusal: either way it is there).
    pub fn success(&mut self) {
        self.state = State::Closed { failures: 0 };
    }

    /// A request failed: a connect error, a timeout, a 5xx or a garbled answer.
    pub fn failure(&mut self, now: Instant) {
        self.state = match self.state {
            State::Closed { failures } if failures + 1 < self.failures => State::Closed {
                failures: failures + 1,
            },
            _ => State::Open {
                until: now + self.open_for,
            },
        };
    }

    pub fn health(&self, now: Instant) -> AuthCoreHealth {
        match self.state {
            State::Closed { .. } => AuthCoreHealth::Closed,
            State::Open { until } if now < until => AuthCoreHealth::Open,
            State::Open { .. } | State::HalfOpen { .. } => AuthCoreHealth::HalfOpen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN_FOR: Duration = Duration::from_secs(30);

    #[test]
    fn stays_closed_below_the_threshold_and_a_success_resets_the_count() {
        let t0 = Instant::now();
        let mut b = Breaker::new(3, OPEN_FOR);
        b.failure(t0);
        b.failure(t0);
        b.success();
        b.failure(t0);
        b.failure(t0);
        assert_eq!(b.health(t0), AuthCoreHealth::Closed);
        assert_eq!(b.admit(t0), Admit::Yes);
    }

    #[test]
    fn repeated_failures_open_it_and_nothing_goes_out_until_the_probe() {
        let t0 = Instant::now();
        let mut b = Breaker::new(3, OPEN_FOR);
        for _ in 0..3 {
            assert_eq!(b.admit(t0), Admit::Yes);
            b.failure(t0);
        }
        assert_eq!(b.health(t0), AuthCoreHealth::Open);
        assert_eq!(b.admit(t0 + OPEN_FOR - Duration::from_millis(1)), Admit::No);
        let later = t0 + OPEN_FOR;
        assert_eq!(b.health(later), AuthCoreHealth::HalfOpen);
        assert_eq!(b.admit(later), Admit::Probe);
        assert_eq!(b.admit(later), Admit::No, "only one probe at a time");
        assert_eq!(
            b.admit(later + OPEN_FOR),
            Admit::Probe,
            "a probe that never reported back does not block the next"
        );
    }

    #[test]
    fn a_failed_probe_opens_it_again_and_a_good_one_closes_it() {
        let t0 = Instant::now();
        let mut b = Breaker::new(1, OPEN_FOR);
        b.failure(t0);
        let probe_at = t0 + OPEN_FOR;
        assert_eq!(b.admit(probe_at), Admit::Probe);
        b.failure(probe_at);
        assert_eq!(b.health(probe_at), AuthCoreHealth::Open);
        assert_eq!(b.admit(probe_at + OPEN_FOR / 2), Admit::No);

        let second = probe_at + OPEN_FOR;
        assert_eq!(b.admit(second), Admit::Probe);
        b.success();
        assert_eq!(b.health(second), AuthCoreHealth::Closed);
        assert_eq!(b.admit(second), Admit::Yes);
    }

    #[test]
    fn up_means_embedded_or_closed() {
        assert!(AuthCoreHealth::Embedded.is_up() && AuthCoreHealth::Closed.is_up());
        assert!(!AuthCoreHealth::Open.is_up() && !AuthCoreHealth::HalfOpen.is_up());
    }
}
