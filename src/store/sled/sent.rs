//! Messages the SMSC accepted, by the message id it gave, until a receipt says how they ended
//! and a while after: the pipeline's sweep forgets those submitted before
//! [`SweepDue::sent_before`](crate::core::store::SweepDue::sent_before), reading only them.

use super::expiry::Expiry;
use super::{StoreError, decode, encode};
use crate::core::clock::UnixSecs;
use crate::core::outbound::SentRecord;

#[derive(Clone)]
pub struct Sent {
    pub(super) tree: sled::Tree,
    /// submitted_at ‖ key: what the sweep reads.
    due: Expiry,
}

fn key(smsc: &str, message_id: &str) -> Vec<u8> {
    format!("{smsc}\0{}", message_id.trim().to_ascii_lowercase()).into_bytes()
}

impl Sent {
    pub(super) fn open(db: &sled::Db) -> Result<Self, StoreError> {
        let tree = db.open_tree("sent")?;
        Ok(Sent {
            due: Expiry::open(db, "sent_due", &tree, |_, value| {
                Ok(decode::<SentRecord>("sent", value)?.submitted_at)
            })?,
            tree,
        })
    }

    pub fn record(
        &self,
        smsc: &str,
        message_id: &str,
        record: &SentRecord,
    ) -> Result<(), StoreError> {
        let key = key(smsc, message_id);
        self.due.note(record.submitted_at, &key)?;
        self.tree.insert(key, encode(record))?;
        Ok(())
    }

    /// Forgets messages submitted before `before`; returns how many.
    pub fn sweep(&self, before: UnixSecs) -> Result<usize, StoreError> {
        let sweep = self
            .due
            .sweep_records(&self.tree, "sent", before, |sent: &SentRecord| {
                sent.submitted_at
            })?;
        Ok(sweep.removed)
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
