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

use super::{StoreError, decode, encode};
use crate::core::mo::MoMessage;

#[derive(Clone)]
pub struct Inbox {
    pub(super) tree: sled::Tree,
    /// MO digest → arrival time, for recognising redeliveries.
    seen: sled::Tree,
    arrived: Arc<Notify>,
}

impl Inbox {
    pub(super) fn new(tree: sled::Tree, seen: sled::Tree) -> Self {
        Inbox {
            tree,
            seen,
            arrived: Arc::new(Notify::new()),
        }
    }

    /// Writes a batch, skipping MOs already received within `window` seconds (redeliveries);
    /// returns how many were redeliveries. Not durable until the store is flushed.
    pub fn append(&self, messages: &[MoMessage], window: u64) -> Result<usize, StoreError> {
        let values: Vec<([u8; 16], Vec<u8>, u64)> = messages
            .iter()
            .map(|mo| (mo.digest(), encode(mo), mo.received_at))
            .collect();
        let repeats = (&self.tree, &self.seen).transaction(|(inbox, seen)| {
            let mut repeats = 0;
            for (digest, value, received_at) in &values {
                let earlier = seen
                    .get(digest)?
                    .and_then(|v| v.as_ref().try_into().ok().map(u64::from_be_bytes));
                if earlier.is_some_and(|t| t + window >= *received_at) {
                    repeats += 1;
                    continue;
                }
                seen.insert(digest, &received_at.to_be_bytes())?;
                let id = inbox.generate_id()?;
                inbox.insert(&id.to_be_bytes(), value.as_slice())?;
            }
            Ok::<_, ConflictableTransactionError<StoreError>>(repeats)
        })?;
        Ok(repeats)
    }

    /// Forgets digests older than the window.
    pub fn sweep_seen(&self, now: u64, window: u64) -> Result<usize, StoreError> {
        let mut removed = 0;
        for entry in self.seen.iter() {
            let (key, value) = entry?;
            let at = value
                .as_ref()
                .try_into()
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            if at + window < now {
                self.seen.remove(key)?;
                removed += 1;
            }
        }
        Ok(removed)
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

    pub fn len(&self) -> usize {
        self.tree.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mo(text: &str) -> MoMessage {
        MoMessage {
            smsc: "main".into(),
            source_addr: "8613800138000".into(),
            source_ton: 1,
            destination_addr: "10690000".into(),
            esm_class: 0,
            data_coding: 0,
            user_data: text.as_bytes().to_vec(),
            sar: None,
            received_at: 1,
        }
    }

    #[test]
    fn oldest_returns_arrival_order() {
        let store = crate::store::temporary();
        store.inbox.append(&[mo("a"), mo("b")], 60).unwrap();
        store.inbox.append(&[mo("c")], 60).unwrap();
        let texts: Vec<_> = store
            .inbox
            .oldest(10)
            .unwrap()
            .into_iter()
            .map(|(_, m)| m.user_data)
            .collect();
        assert_eq!(texts, [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
    }

    #[test]
    fn redelivery_within_the_window_is_stored_once() {
        let store = crate::store::temporary();
        assert_eq!(store.inbox.append(&[mo("a"), mo("a")], 60).unwrap(), 1);
        let mut later = mo("a");
        later.received_at = 61;
        assert_eq!(store.inbox.append(&[later.clone()], 60).unwrap(), 1);
        later.received_at = 62;
        assert_eq!(store.inbox.append(&[mo("b"), later], 60).unwrap(), 0);
        assert_eq!(store.inbox.len(), 3);
    }
}
