//! The durable outbox: replies waiting for an SMSC to accept them.
//!
//! A message leaves only when its submit_sm_resp says OK (at-least-once: a crash between the
//! resp and the removal sends it again).

use std::sync::Arc;

use tokio::sync::{Notify, watch};

use super::gauge::Gauge;
use super::{StoreError, decode};
use crate::core::outbound::Outbound;

#[derive(Clone)]
pub struct Outbox {
    pub(super) tree: sled::Tree,
    /// Bumped on every enqueue; a receiver never misses that something was queued since it
    /// last looked, even while it was busy elsewhere.
    queued: Arc<watch::Sender<u64>>,
    removed: Arc<Notify>,
    pub(super) depth: Gauge,
}

impl Outbox {
    pub(super) fn new(tree: sled::Tree) -> Self {
        Outbox {
            depth: Gauge::counted(&tree),
            tree,
            queued: Arc::new(watch::channel(0).0),
            removed: Arc::new(Notify::new()),
        }
    }

    /// Tells every sender that messages were queued.
    pub(super) fn wake(&self) {
        self.queued.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// `changed()` on the receiver resolves whenever messages were queued since it last saw.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.queued.subscribe()
    }

    /// Up to `limit` messages for one connection, oldest first, skipping ids in `skip`
    /// (those already in flight).
    pub fn pending_for(
        &self,
        smsc: &str,
        skip: impl Fn(u64) -> bool,
        limit: usize,
    ) -> Result<Vec<(u64, Outbound)>, StoreError> {
        let mut found = Vec::new();
        for entry in self.tree.iter() {
            if found.len() >= limit {
                break;
            }
            let (key, value) = entry?;
            let id = u64::from_be_bytes(key.as_ref().try_into().unwrap_or_default());
            if skip(id) {
                continue;
            }
            let message: Outbound = decode("outbox", &value)?;
            if message.smsc == smsc {
                found.push((id, message));
            }
        }
        Ok(found)
    }

    /// Called once the SMSC has accepted the message (or refused it for good).
    pub fn remove(&self, id: u64) -> Result<(), StoreError> {
        if self.tree.remove(id.to_be_bytes())?.is_some() {
            self.depth.sub(1);
        }
        self.removed.notify_waiters();
        Ok(())
    }

    /// Resolves once nothing is waiting to be sent (used by drains and tests).
    pub async fn wait_empty(&self) {
        loop {
            let removed = self.removed.notified();
            tokio::pin!(removed);
            removed.as_mut().enable();
            if self.tree.is_empty() {
                return;
            }
            removed.await;
        }
    }

    pub(super) fn len(&self) -> usize {
        self.depth.get()
    }
}
