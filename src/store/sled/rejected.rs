//! MOs that cannot lead to a login (an undecodable coding, a malformed header, a sender that is
//! not a phone number), kept as received so an operator can see what came in and why it went
//! nowhere. Acknowledging such an MO is right (the SMSC must not retry it forever); forgetting
//! it is not.

use super::{StoreError, decode, remove_where};
use crate::core::clock::UnixSecs;
use crate::core::mo::RejectedMo;

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
}
