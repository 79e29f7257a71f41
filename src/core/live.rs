//! Settings a reload (SIGHUP) replaces while everything keeps running.
//!
//! Readers load the current value per MO or request without a lock; a reload swaps the whole
//! value after the new file passed every check, so a bad file changes nothing.

use std::sync::Arc;

use arc_swap::ArcSwap;

/// A value readers load per use and a reload replaces whole.
pub type Live<T> = Arc<ArcSwap<T>>;

pub fn live<T>(value: T) -> Live<T> {
    Arc::new(ArcSwap::from_pointee(value))
}
