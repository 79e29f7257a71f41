//! Parts of concatenated MOs waiting for their siblings.
//!
//! A part leaves the inbox only into this tree, and the whole message enters the inbox only as
//! the parts leave this tree, each in one transaction: a restart mid-message loses no part, and
//! a message is never both half-stored and joined. Keys are the part's group (sender,
//! destination, connection, reference, total) followed by its number, so two phones using the
//! same reference never mix.

use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

use super::{StoreError, decode, encode, remove_where};
use crate::core::clock::UnixSecs;
use crate::core::mo::MoMessage;

#[derive(Clone)]
pub struct Parts {
    pub(super) tree: sled::Tree,
}

/// What filing a part achieved.
#[derive(Debug, PartialEq, Eq)]
pub enum Filed {
    /// Stored; the message still lacks parts.
    Waiting,
    /// The same part number was already there; this copy was dropped.
    Duplicate,
    /// That was the last part: the joined message is in the inbox under this id.
    Complete(u64),
}

/// One part as filed: the group it belongs to, its number and how many there are.
pub struct PartKey<'a> {
    pub group: &'a [u8],
    pub seq: u8,
    pub total: u8,
}

fn key(group: &[u8], seq: u8) -> Vec<u8> {
    let mut key = Vec::with_capacity(group.len() + 1);
    key.extend_from_slice(group);
    key.push(seq);
    key
}

impl super::Store {
    /// Moves inbox MO `id`, a part whose payload is `part`, into the parts tree; when it was
    /// the last one, `join` makes the whole message from the parts in order, which replaces
    /// them in the inbox. Not durable until the store is flushed.
    pub fn file_part(
        &self,
        id: u64,
        at: PartKey<'_>,
        part: &MoMessage,
        join: impl Fn(Vec<MoMessage>) -> MoMessage,
    ) -> Result<Filed, StoreError> {
        let value = encode(part);
        let filed = (&self.inbox.tree, &self.parts.tree).transaction(|(inbox, parts)| {
            inbox.remove(&id.to_be_bytes())?;
            let this = key(at.group, at.seq);
            if parts.get(&this)?.is_some() {
                return Ok(Filed::Duplicate);
            }
            parts.insert(this, value.as_slice())?;
            let mut all = Vec::with_capacity(usize::from(at.total));
            for seq in 1..=at.total {
                match parts.get(key(at.group, seq))? {
                    Some(v) => all.push(
                        decode::<MoMessage>("parts", &v)
                            .map_err(ConflictableTransactionError::Abort)?,
                    ),
                    None => return Ok(Filed::Waiting),
                }
            }
            for seq in 1..=at.total {
                parts.remove(key(at.group, seq))?;
            }
            let whole = inbox.generate_id()?;
            inbox.insert(&whole.to_be_bytes(), encode(&join(all)))?;
            Ok(Filed::Complete(whole))
        })?;
        Ok(filed)
    }
}

impl Parts {
    pub(super) fn new(tree: sled::Tree) -> Self {
        Parts { tree }
    }

    /// Drops parts that arrived before `cutoff`; returns how many.
    pub fn expire(&self, cutoff: UnixSecs) -> Result<usize, StoreError> {
        remove_where(&self.tree, "parts", |part: &MoMessage| {
            part.received_at < cutoff
        })
    }

    pub fn len(&self) -> usize {
        self.tree.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }
}
