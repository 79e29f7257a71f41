//! When to try the remote auth core again after a request failed.
//!
//! Exponential backoff with jitter: the pause before retry `n` (from 0) is `initial · 2ⁿ`,
//! capped at `max`, then drawn evenly from its upper half, so that several moauth nodes (or a
//! restart) do not hit a recovering auth core in lock step, yet no pause is ever shorter than
//! half its step. Sans-IO: the random draw is an argument.

use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    /// Retries after the first attempt.
    pub retries: u32,
}

impl Backoff {
    /// The pause before retry `retry` (0 is the first retry), or None when the retries are
    /// spent. `jitter` is a random number in `[0, 1)`.
    pub fn delay(&self, retry: u32, jitter: f64) -> Option<Duration> {
        if retry >= self.retries {
            return None;
        }
        let step = self
            .initial
            .saturating_mul(2u32.saturating_pow(retry))
            .min(self.max);
        Some(step.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Backoff = Backoff {
        initial: Duration::from_millis(200),
        max: Duration::from_millis(1_000),
        retries: 4,
    };

    #[test]
    fn pauses_double_up_to_the_cap() {
        let top: Vec<_> = (0..4).map(|n| B.delay(n, 1.0).unwrap()).collect();
        assert_eq!(
            top,
            [200, 400, 800, 1_000].map(Duration::from_millis).to_vec()
        );
    }

    #[test]
    fn jitter_stays_in_the_upper_half_of_each_step() {
        assert_eq!(B.delay(1, 0.0), Some(Duration::from_millis(200)));
        let mid = B.delay(1, 0.5).unwrap();
        assert!(mid > Duration::from_millis(200) && mid < Duration::from_millis(400));
    }

    #[test]
    fn retries_run_out() {
        assert_eq!(B.delay(4, 0.3), None);
        let none = Backoff { retries: 0, ..B };
        assert_eq!(none.delay(0, 0.3), None);
    }

    #[test]
    fn huge_retry_counts_do_not_overflow() {
        let many = Backoff {
            retries: u32::MAX,
            ..B
        };
        assert_eq!(many.delay(1_000, 1.0), Some(Duration::from_millis(1_000)));
    }
}
