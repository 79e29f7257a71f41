//! Time as a value the caller passes in.
//!
//! The token window, session expiry and the sweeper all depend on "now". Protocol logic takes
//! `now` as an argument; the daemon reads it from a [`Clock`] so tests can move time without
//! sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Unix seconds, as carried by tokens and stored records.
pub type UnixSecs = u64;

/// Where the daemon gets the current time from.
#[derive(Clone, Debug)]
pub enum Clock {
    System,
    /// A clock that only moves when a test says so.
    Manual(Arc<AtomicU64>),
}

impl Clock {
    pub fn manual(start: UnixSecs) -> Self {
        Clock::Manual(Arc::new(AtomicU64::new(start)))
    }

    pub fn now(&self) -> UnixSecs {
        match self {
            Clock::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            Clock::Manual(t) => t.load(Ordering::Relaxed),
        }
    }

    /// Moves a manual clock; a system clock ignores it.
    pub fn advance(&self, secs: u64) {
        if let Clock::Manual(t) = self {
            t.fetch_add(secs, Ordering::Relaxed);
        }
    }
}
