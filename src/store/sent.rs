//! Messages the SMSC accepted, by the message id it gave, until a receipt says how they ended.

use super::{StoreError, decode, encode};
use crate::core::outbound::SentRecord;

#[derive(Clone)]
pub struct Sent {
    pub(super) tree: sled::Tree,
}

fn key(smsc: &str, message_id: &str) -> Vec<u8> {
    format!("{smsc}\0{}", message_id.trim().to_ascii_lowercase()).into_bytes()
}

impl Sent {
    pub(super) fn new(tree: sled::Tree) -> Self {
        Sent { tree }
    }

    pub fn record(
        &self,
        smsc: &str,
        message_id: &str,
        record: &SentRecord,
    ) -> Result<(), StoreError> {
        self.tree.insert(key(smsc, message_id), encode(record))?;
        Ok(())
    }

    pub fn get(&self, smsc: &str, message_id: &str) -> Result<Option<SentRecord>, StoreError> {
        self.tree
            .get(key(smsc, message_id))?
            .map(|v| decode("sent", &v))
            .transpose()
    }

    /// Sets the outcome of the first of `ids` that names a sent message; returns that record.
    pub fn settle(
        &self,
        smsc: &str,
        ids: &[String],
        outcome: &str,
    ) -> Result<Option<SentRecord>, StoreError> {
        for id in ids {
            if let Some(mut record) = self.get(smsc, id)? {
                record.outcome = Some(outcome.to_owned());
                self.tree.insert(key(smsc, id), encode(&record))?;
                return Ok(Some(record));
            }
        }
        Ok(None)
    }
}
