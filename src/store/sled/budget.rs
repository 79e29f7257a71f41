//! The global SMS budget's two counts (`crate::core::budget`): key `hour` and key `day`, each
//! the window's number and its count (8 + 8 bytes, big-endian). Two keys, whatever the
//! traffic: a new window overwrites the old one's count, so nothing needs sweeping.

use sled::transaction::ConflictableTransactionError;

use super::{SledStore, StoreError, StoreFuture, ready};
use crate::core::budget::{SmsCounts, Windows};
use crate::core::store::SmsBudgetStore;

/// One window's count as stored.
fn read(value: Option<sled::IVec>) -> (u64, u64) {
    let Some(value) = value else { return (0, 0) };
    let word = |at: usize| {
        value
            .get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u64::from_be_bytes)
    };
    (word(0), word(8))
}

/// A window's number and its count, as stored.
pub(super) fn value(window: u64, count: u64) -> Vec<u8> {
    let mut value = window.to_be_bytes().to_vec();
    value.extend_from_slice(&count.to_be_bytes());
    value
}

impl SmsBudgetStore for SledStore {
    fn count_sms(&self, at: Windows, segments: i64) -> StoreFuture<'_, SmsCounts> {
        let counted = self.sms_budget.transaction(|tree| {
            let mut after = [0; 2];
            for (count, (key, window)) in after
                .iter_mut()
                .zip([(&b"hour"[..], at.hour), (&b"day"[..], at.day)])
            {
                let (stored, n) = read(tree.get(key)?);
                let (window, n) = if window > stored {
                    (window, 0)
                } else {
                    (stored, n)
                };
                *count = n.saturating_add_signed(segments);
                // Adding nothing (`has_room`) only reads: a stale window reads as 0 already.
                if segments == 0 {
                    continue;
                }
                tree.insert(key, value(window, *count))?;
            }
            Ok::<_, ConflictableTransactionError<StoreError>>(SmsCounts {
                hour: after[0],
                day: after[1],
            })
        });
        ready(counted.map_err(StoreError::from))
    }
}
