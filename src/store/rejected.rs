//! MOs that cannot lead to a login (an undecodable coding, a malformed header, a sender that is
//! not a phone number), kept as received so an operator can see what came in and why it went
//! nowhere. Acknowledging such an MO is right (the SMSC must not retry it forever); forgetting
//! it is not.

use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

use super::{StoreError, decode, encode, remove_where};
use crate::core::clock::UnixSecs;
use crate::core::mo::{MoMessage, RejectedMo};

#[derive(Clone)]
pub struct Rejected {
    pub(super) tree: sled::Tree,
}

impl Rejected {
    pub(super) fn new(tree: sled::Tree) -> Self {
        Rejected { tree }
    }

    pub fn all(&self) -> Result<Vec<RejectedMo>, StoreError> {
        self.tree
            .iter()
            .map(|entry| decode("rejected", &entry?.1))
            .collect()
    }

    /// Forgets rejections of MOs received before `cutoff`.
    pub fn expire(&self, cutoff: UnixSecs) -> Result<usize, StoreError> {
        remove_where(&self.tree, "rejected", |r: &RejectedMo| {
            r.mo.received_at < cutoff
        })
    }

    pub fn len(&self) -> usize {
        self.tree.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }
}

impl super::Store {
    /// Moves inbox MO `id` to the rejected tree with its reason, in one transaction.
    pub fn reject_mo(&self, id: u64, mo: &MoMessage, reason: &str) -> Result<(), StoreError> {
        let value = encode(&RejectedMo {
            mo: mo.clone(),
            reason: reason.to_owned(),
        });
        (&self.inbox.tree, &self.rejected.tree).transaction(|(inbox, rejected)| {
            inbox.remove(&id.to_be_bytes())?;
            rejected.insert(&id.to_be_bytes(), value.as_slice())?;
            Ok::<_, ConflictableTransactionError<StoreError>>(())
        })?;
        Ok(())
    }
}
