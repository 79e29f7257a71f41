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

    /// How long ago, at `now`, each of a round's MOs arrived, for those noted; forgets them
    /// all. One lock for the whole round.
    pub fn take_all(&self, digests: &[[u8; 16]], now: Instant) -> HashMap<[u8; 16], Duration> {
        let mut noted = self.lock();
        digests
            .iter()
            .filter_map(|digest| {
                let at = noted.remove(digest)?;
                Some((*digest, now.saturating_duration_since(at)))
            })
            .collect()
    }

    /// Drops entries older than `age` at `now`: MOs that were redelivered after they were
    /// finished, or have waited so long that whole seconds are precise enough.
    pub fn forget_older(&self, age: Duration, now: Instant) {
        self.lock()
            .retain(|_, at| now.saturating_duration_since(*at) <= age);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
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
        let waited = arrivals.take_all(&[[1; 16], [2; 16]], now);
        assert_eq!(
            waited,
            HashMap::from([([1; 16], Duration::from_millis(42))])
        );
        assert!(arrivals.take_all(&[[1; 16]], now).is_empty());
        assert_eq!(arrivals.len(), 0);
    }

    #[test]
    fn old_entries_are_forgotten() {
        let arrivals = Arrivals::default();
        let t0 = Instant::now();
        arrivals.note([1; 16], t0);
        arrivals.note([2; 16], t0 + Duration::from_secs(10));
        arrivals.forget_older(Duration::from_secs(5), t0 + Duration::from_secs(12));
        assert_eq!(arrivals.len(), 1);
        let taken = arrivals.take_all(&[[1; 16], [2; 16]], t0 + Duration::from_secs(12));
        assert_eq!(taken.keys().collect::<Vec<_>>(), [&[2; 16]]);
    }
}
