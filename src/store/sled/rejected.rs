//! MOs that cannot lead to a login (an undecodable coding, a malformed header, a sender that is
//! not a phone number), kept as received so an operator can see what came in and why it went
//! nowhere. Acknowledging such an MO is right (the SMSC must not retry it forever); forgetting
//! it is not.
//!
//! Keys are the MO's inbox id, so the tree is in arrival order already: the sweep reads from
//! the oldest and stops at the first that is not due, with no index of its own.

use super::{StoreError, decode};
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

    /// Forgets rejections of MOs received before `cutoff`, oldest first, up to the first
    /// that is not due (a clock stepped back may keep one a little longer, never lose one).
    pub fn expire(&self, cutoff: UnixSecs) -> Result<usize, StoreError> {
        let mut removed = 0;
        for entry in self.tree.iter() {
            let (key, value) = entry?;
            if decode::<RejectedMo>("rejected", &value)?.mo.received_at >= cutoff {
                break;
            }
            self.tree.remove(key)?;
            removed += 1;
        }
        Ok(removed)
    }
}
