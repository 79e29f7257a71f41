//! Parts of concatenated MOs waiting for their siblings.
//!
//! A part leaves the inbox only into this tree, and the whole message enters the inbox only as
//! the parts leave this tree, each in one transaction: a restart mid-message loses no part, and
//! a message is never both half-stored and joined. Keys are the part's group (sender,
//! destination, connection, reference, total) followed by its number, so two phones using the
//! same reference never mix.

use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

use super::expiry::Expiry;
use super::gauge::Gauge;
use super::inbox::Inbox;
use super::{StoreError, decode, encode};
use crate::core::clock::UnixSecs;
use crate::core::mo::MoMessage;
use crate::core::store::{Filed, PartKey};

#[derive(Clone)]
pub struct Parts {
    pub(super) tree: sled::Tree,
    /// arrival time ‖ key: what the sweep reads.
    due: Expiry,
    pub(super) depth: Gauge,
}

fn key(group: &[u8], seq: u8) -> Vec<u8> {
    let mut key = Vec::with_capacity(group.len() + 1);
    key.extend_from_slice(group);
    key.push(seq);
    key
}

/// Moves inbox MO `id`, a part whose payload is `part`, into the parts tree; when it was
/// the last one, `join` makes the whole message from the parts in order, which replaces them
/// in the inbox. Not durable until the store is flushed.
pub(super) fn file(
    inbox: &Inbox,
    parts: &Parts,
    id: u64,
    at: PartKey<'_>,
    part: &MoMessage,
    join: &(dyn Fn(Vec<MoMessage>) -> MoMessage + Send + Sync),
) -> Result<Filed, StoreError> {
    let value = encode(part);
    let trees = (&inbox.tree, &parts.tree, parts.due.tree());
    let (filed, left_inbox) = trees.transaction(|(inbox, parts, due)| {
        let left_inbox = inbox.remove(&id.to_be_bytes())?.is_some();
        let this = key(at.group, at.seq);
        if parts.get(&this)?.is_some() {
            return Ok((Filed::Duplicate, left_inbox));
        }
        Expiry::note_in(due, part.received_at, &this)?;
        parts.insert(this, value.as_slice())?;
        let mut all = Vec::with_capacity(usize::from(at.total));
        for seq in 1..=at.total {
            match parts.get(key(at.group, seq))? {
                Some(v) => all.push(
                    decode::<MoMessage>("parts", &v)
                        .map_err(ConflictableTransactionError::Abort)?,
                ),
                None => return Ok((Filed::Waiting, left_inbox)),
            }
        }
        for seq in 1..=at.total {
            parts.remove(key(at.group, seq))?;
        }
        let whole = inbox.generate_id()?;
        inbox.insert(&whole.to_be_bytes(), encode(&join(all)))?;
        Ok((Filed::Complete(whole), left_inbox))
    })?;
    if left_inbox {
        inbox.depth.sub(1);
    }
    match filed {
        Filed::Waiting => parts.depth.add(1),
        Filed::Complete(_) => {
            inbox.depth.add(1);
            parts.depth.sub(usize::from(at.total) - 1);
        }
        Filed::Duplicate => {}
    }
    Ok(filed)
}

impl Parts {
    pub(super) fn open(db: &sled::Db) -> Result<Self, StoreError> {
        let tree = db.open_tree("parts")?;
        Ok(Parts {
            due: Expiry::open(db, "parts_due", &tree, |_, value| {
                Ok(decode::<MoMessage>("parts", value)?.received_at)
            })?,
            depth: Gauge::counted(&tree),
            tree,
        })
    }

    /// Indexes a part by arrival before it is written outside [`file`] (import).
    pub(super) fn note(&self, received_at: UnixSecs, key: &[u8]) -> Result<(), StoreError> {
        self.due.note(received_at, key)
    }

    /// Drops parts that arrived before `cutoff`; returns how many.
    pub fn expire(&self, cutoff: UnixSecs) -> Result<usize, StoreError> {
        let sweep = self
            .due
            .sweep_records(&self.tree, "parts", cutoff, |part: &MoMessage| {
                part.received_at
            })?;
        self.depth.sub(sweep.removed);
        Ok(sweep.removed)
    }

    pub(super) fn len(&self) -> usize {
        self.depth.get()
    }
}
