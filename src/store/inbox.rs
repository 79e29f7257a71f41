//! The durable MO inbox: every deliver_sm is written here before it is acknowledged.
//!
//! Keys are sled-generated, monotonically increasing ids, so iteration order is arrival order.
//! The raw user data is kept (not decoded text) so that nothing the SMSC sent is lost to a
//! decoding decision made before the MO was safe.

use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::sync::Notify;

use super::{StoreError, decode, encode};
use crate::clock::UnixSecs;

/// A mobile-originated SMS as received, before interpretation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoMessage {
    /// Name of the SMSC connection it came in on; replies go out the same way.
    pub smsc: String,
    pub source_addr: String,
    pub source_ton: u8,
    pub destination_addr: String,
    pub esm_class: u8,
    pub data_coding: u8,
    /// short_message, or the message_payload TLV when short_message was empty.
    pub user_data: Vec<u8>,
    pub received_at: UnixSecs,
}

#[derive(Clone)]
pub struct Inbox {
    pub(super) tree: sled::Tree,
    db: sled::Db,
    arrived: Arc<Notify>,
}

impl Inbox {
    pub(super) fn new(tree: sled::Tree, db: sled::Db) -> Self {
        Inbox {
            tree,
            db,
            arrived: Arc::new(Notify::new()),
        }
    }

    /// Writes a batch; not durable until the store is flushed.
    pub fn append(&self, messages: &[MoMessage]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for mo in messages {
            let id = self.db.generate_id()?;
            batch.insert(&id.to_be_bytes(), encode(mo));
        }
        self.tree.apply_batch(batch)?;
        Ok(())
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
            received_at: 1,
        }
    }

    #[test]
    fn oldest_returns_arrival_order() {
        let store = crate::store::temporary();
        store.inbox.append(&[mo("a"), mo("b")]).unwrap();
        store.inbox.append(&[mo("c")]).unwrap();
        let texts: Vec<_> = store
            .inbox
            .oldest(10)
            .unwrap()
            .into_iter()
            .map(|(_, m)| m.user_data)
            .collect();
        assert_eq!(texts, [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
    }
}
