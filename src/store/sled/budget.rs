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

/// The value to write under each key: its window and count.
type Writes = [(&'static [u8], Vec<u8>); 2];

/// The counts of `at`'s windows as `get` reads them, with `segments` added: what to write
/// under each key, and the counts.
fn added<E>(
    at: Windows,
    segments: u64,
    mut get: impl FnMut(&'static [u8]) -> Result<Option<sled::IVec>, E>,
) -> Result<(Writes, SmsCounts), E> {
    let mut add = |key, window| -> Result<_, E> {
        let (stored, n) = read(get(key)?);
        // A stale window counts from 0; a later one (a clock ahead) is added to.
        let (window, n) = if window > stored {
            (window, 0)
        } else {
            (stored, n)
        };
        let n = n.saturating_add(segments);
        Ok(((key, value(window, n)), n))
    };
    let (hour, hour_count) = add(b"hour", at.hour)?;
    let (day, day_count) = add(b"day", at.day)?;
    Ok((
        [hour, day],
        SmsCounts {
            hour: hour_count,
            day: day_count,
        },
    ))
}

impl SmsBudgetStore for SledStore {
    /// Reads first, outside a transaction: a read (0 segments) and a refusal end there and
    /// write nothing (a sled transaction takes sled's global write lock and writes a batch
    /// marker to its log even when it only reads). Counts only grow within their window, so
    /// a refusal read outside stays a refusal; an addition that fits is checked again inside
    /// the transaction that makes it.
    fn count_sms(&self, at: Windows, segments: u64, caps: SmsCounts) -> StoreFuture<'_, SmsCounts> {
        let count = || -> Result<SmsCounts, StoreError> {
            let (_, after) = added(at, segments, |key| self.sms_budget.get(key))?;
            if segments == 0 || after.over(caps).is_some() {
                return Ok(after);
            }
            let counted = self.sms_budget.transaction(|tree| {
                let (writes, after) = added(at, segments, |key| tree.get(key))?;
                if after.over(caps).is_none() {
                    for (key, value) in writes {
                        tree.insert(key, value)?;
                    }
                }
                Ok::<_, ConflictableTransactionError<StoreError>>(after)
            })?;
            Ok(counted)
        };
        ready(count())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::super::SledStore;
    use crate::core::budget::{BudgetHealth, SmsClass};
    use crate::core::limits::LimitsConfig;
    use crate::core::sms_budget::SmsBudget;

    /// 2026-12-02 10:00:00 UTC.
    const NOW: u64 = 1_796_205_600;

    /// Once the budget is spent every SMS is refused, so a refusal is the common case then:
    /// it reads the counts and writes nothing (sled tells a watcher of every write).
    #[tokio::test]
    async fn a_refused_spend_writes_nothing() {
        let store = SledStore::temporary().unwrap();
        let budget = SmsBudget {
            counts: Arc::new(store.clone()),
            health: BudgetHealth::default(),
        };
        let rules = LimitsConfig {
            sms_per_hour: 3,
            sms_per_day: 5,
            sms_reserved_for_credentials_percent: 0,
            ..LimitsConfig::default()
        };
        let mut writes = store.sms_budget.watch_prefix(b"");
        let spend = |segments| budget.spend(SmsClass::Credentials, segments, &rules, NOW);
        assert!(spend(3).await.unwrap());
        for key in ["hour", "day"] {
            let written = writes.next_timeout(Duration::from_secs(5));
            assert!(written.is_ok(), "the {key} count was not written");
        }
        assert!(!spend(1).await.unwrap());
        assert!(
            writes.next_timeout(Duration::ZERO).is_err(),
            "a refused spend wrote"
        );
        assert!(
            !budget
                .has_room(SmsClass::Credentials, &rules, NOW)
                .await
                .unwrap()
        );
        assert!(writes.next_timeout(Duration::ZERO).is_err(), "a read wrote");
    }
}
