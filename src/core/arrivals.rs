//! When each MO in flight reached this process, to the millisecond, for the MO → session
//! latency (`moauth_mo_to_session_seconds`).
//!
//! An MO's stored `received_at` is whole Unix seconds (what the store and the token window
//! need), which makes a sub-second login read as 0 or 1 s. The instant it arrived is kept here,
//! in memory, keyed by the MO's digest, from the moment ingest takes it until the pipeline
//! finishes it. An MO processed without an entry (stored before a restart, ingested by another
//! node, a joined long SMS) falls back to whole seconds. The map is bounded: an entry nobody
//! takes (a redelivery of an MO already finished) is dropped by [`Arrivals::forget_older`],
//! and past [`MAX_ENTRIES`] new arrivals are not noted at all.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// More MOs in flight than this and latency is not worth the memory: arrivals go unnoted.
pub const MAX_ENTRIES: usize = 100_000;

#[derive(Clone, Default)]
pub struct Arrivals {
    noted: Arc<Mutex<HashMap<[u8; 16], Instant>>>,
}

impl Arrivals {
    /// Notes that the MO with this digest arrived at `at`; a redelivery keeps the first time.
    pub fn note(&self, digest: [u8; 16], at: Instant) {
        let mut noted = self.lock();
        if noted.len() < MAX_ENTRIES {
            noted.entry(digest).or_insert(at);
        }
    }

    /// How long ago, at `now`, the MO arrived; forgets it. None when it was never noted.
    pub fn take(&self, digest: &[u8; 16], now: Instant) -> Option<Duration> {
        let at = self.lock().remove(digest)?;
        Some(now.saturating_duration_since(at))
    }

    /// Drops entries older than `age` at `now`: MOs that were redelivered after they were
    /// finished, or have waited so long that whole seconds are precise enough.
    pub fn forget_older(&self, age: Duration, now: Instant) {
        self.lock()
            .retain(|_, at| now.saturating_duration_since(*at) <= age);
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 16], Instant>> {
        self.noted.lock().expect("arrivals lock")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_arrival_is_taken_once_with_its_age() {
        let arrivals = Arrivals::default();
        let t0 = Instant::now();
        arrivals.note([1; 16], t0);
        // A redelivery does not reset the clock.
        arrivals.note([1; 16], t0 + Duration::from_millis(5));
        let now = t0 + Duration::from_millis(42);
        assert_eq!(
            arrivals.take(&[1; 16], now),
            Some(Duration::from_millis(42))
        );
        assert_eq!(arrivals.take(&[1; 16], now), None);
        assert!(arrivals.is_empty());
    }

    #[test]
    fn old_entries_are_forgotten() {
        let arrivals = Arrivals::default();
        let t0 = Instant::now();
        arrivals.note([1; 16], t0);
        arrivals.note([2; 16], t0 + Duration::from_secs(10));
        arrivals.forget_older(Duration::from_secs(5), t0 + Duration::from_secs(12));
        assert_eq!(arrivals.len(), 1);
        assert!(
            arrivals
                .take(&[2; 16], t0 + Duration::from_secs(12))
                .is_some()
        );
    }
}
