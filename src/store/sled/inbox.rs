//! The durable MO inbox: every deliver_sm is written here before it is acknowledged.
//!
//! Keys are sled-generated, monotonically increasing ids, so iteration order is arrival order.
//! The raw user data is kept (not decoded text) so that nothing the SMSC sent is lost to a
//! decoding decision made before the MO was safe.
//!
//! An SMSC that missed our deliver_sm_resp (a dropped connection, a restart) delivers the same
//! PDU again. The inbox remembers a digest of every MO for a window and stores a repeat only
//! once, in the same transaction as the MO itself, so a redelivery is acknowledged but never
//! processed twice.

use std::sync::Arc;

use sled::Transactional;
use sled::transaction::ConflictableTransactionError;
use tokio::sync::Notify;

use super::expiry::Expiry;
use super::gauge::Gauge;
use super::{StoreError, decode, encode};
use crate::core::mo::MoMessage;

#[derive(Clone)]
pub struct Inbox {
    pub(super) tree: sled::Tree,
    /// MO digest → arrival time, for recognising redeliveries.
    seen: sled::Tree,
    /// arrival time ‖ digest: what the sweep of `seen` reads.
    seen_due: Expiry,
    arrived: Arc<Notify>,
    pub(super) depth: Gauge,
}

impl Inbox {
    pub(super) fn open(db: &sled::Db) -> Result<Self, StoreError> {
        let tree = db.open_tree("inbox")?;
        let seen = db.open_tree("inbox_seen")?;
        Ok(Inbox {
            depth: Gauge::counted(&tree),
            seen_due: Expiry::open(db, "inbox_seen_due", &seen, |_, at| Ok(seen_at(at)))?,
            tree,
            seen,
            arrived: Arc::new(Notify::new()),
        })
    }

    /// Writes a batch, skipping MOs already received within `window` seconds (redeliveries);
    /// returns how many were redeliveries. Not durable until the store is flushed.
    pub fn append(
        &self,
        messages: &[(MoMessage, [u8; 16])],
        window: u64,
    ) -> Result<usize, StoreError> {
        let values: Vec<(&[u8; 16], Vec<u8>, u64)> = messages
            .iter()
            .map(|(mo, digest)| (digest, encode(mo), mo.received_at))
            .collect();
        let repeats = (&self.tree, &self.seen, self.seen_due.tree()).transaction(
            |(inbox, seen, seen_due)| {
                let mut repeats = 0;
                for (digest, value, received_at) in &values {
                    let earlier = seen
                        .get(*digest)?
                        .and_then(|v| v.as_ref().try_into().ok().map(u64::from_be_bytes));
                    if earlier.is_some_and(|t| t + window >= *received_at) {
                        repeats += 1;
                        continue;
                    }
                    seen.insert(*digest, &received_at.to_be_bytes())?;
                    Expiry::note_in(seen_due, *received_at, *digest)?;
                    let id = inbox.generate_id()?;
                    inbox.insert(&id.to_be_bytes(), value.as_slice())?;
                }
                Ok::<_, ConflictableTransactionError<StoreError>>(repeats)
            },
        )?;
        self.depth.add(messages.len() - repeats);
        Ok(repeats)
    }

    /// The redelivery digests, for export.
    pub(super) fn seen_tree(&self) -> &sled::Tree {
        &self.seen
    }

    /// Remembers a digest as [`Inbox::append`] does, for import.
    pub(super) fn note_seen(&self, digest: &[u8], at: u64) -> Result<(), StoreError> {
        self.seen_due.note(at, digest)?;
        self.seen.insert(digest, &at.to_be_bytes())?;
        Ok(())
    }

    /// Forgets digests of MOs received before `before`, reading only those.
    pub fn sweep_seen(&self, before: u64) -> Result<usize, StoreError> {
        let sweep = self.seen_due.sweep(before, |digest| {
            let due = self
                .seen
                .get(digest)?
                .is_some_and(|at| seen_at(&at) < before);
            if due {
                self.seen.remove(digest)?;
            }
            Ok(due)
        })?;
        Ok(sweep.removed)
    }

    /// Tells the login worker that durable MOs are waiting.
    pub fn wake(&self) {
        self.arrived.notify_one();
    }

    pub async fn arrived(&self) {
        self.arrived.notified().await
    }

    /// The oldest `limit` MOs, in arrival order.
    pub fn oldest(&self, limit: usize) -> Result<Vec<(u64, MoMessage)>, StoreError> {
        self.tree
            .iter()
            .take(limit)
            .map(|entry| {
                let (key, value) = entry?;
                let id = u64::from_be_bytes(key.as_ref().try_into().unwrap_or_default());
                Ok((id, decode("inbox", &value)?))
            })
            .collect()
    }

    pub(super) fn len(&self) -> usize {
        self.depth.get()
    }
}

/// A digest's arrival time; an unreadable one counts as long ago.
fn seen_at(value: &[u8]) -> u64 {
    value.try_into().map(u64::from_be_bytes).unwrap_or(0)
}
