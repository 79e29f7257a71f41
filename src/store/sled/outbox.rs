//! The durable outbox: replies waiting for an SMSC to accept them.
//!
//! A message leaves only when its submit_sm_resp says OK (at-least-once: a crash between the
//! resp and the removal sends it again).

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::{Notify, watch};

use super::gauge::Gauge;
use super::{StoreError, decode, encode};
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

    /// How many messages wait for each connection name.
    pub fn per_smsc(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let mut counts = BTreeMap::new();
        for entry in self.tree.iter() {
            let (_, value) = entry?;
            let message: Outbound = decode("outbox", &value)?;
            *counts.entry(message.smsc).or_default() += 1;
        }
        Ok(counts)
    }

    /// Gives the messages queued for `from` the connection `to` picks; how many moved.
    pub fn reroute(
        &self,
        from: &str,
        to: &(dyn Fn(&Outbound) -> Option<String> + Send + Sync),
    ) -> Result<u64, StoreError> {
        let mut moved = 0;
        for entry in self.tree.iter() {
            let (key, value) = entry?;
            let mut message: Outbound = decode("outbox", &value)?;
            if message.smsc != from {
                continue;
            }
            if let Some(smsc) = to(&message) {
                message.smsc = smsc;
                // Only if unchanged since read: a sender may have removed it meanwhile.
                let swapped =
                    self.tree
                        .compare_and_swap(&key, Some(value), Some(encode(&message)))?;
                moved += u64::from(swapped.is_ok());
            }
        }
        if moved > 0 {
            self.wake();
        }
        Ok(moved)
    }

    /// Removes every message queued for `smsc`; how many.
    pub fn drop_for(&self, smsc: &str) -> Result<u64, StoreError> {
        let mut dropped = 0;
        for entry in self.tree.iter() {
            let (key, value) = entry?;
            let message: Outbound = decode("outbox", &value)?;
            if message.smsc == smsc && self.tree.remove(&key)?.is_some() {
                dropped += 1;
            }
        }
        self.depth.sub(dropped as usize);
        if dropped > 0 {
            self.removed.notify_waiters();
        }
        Ok(dropped)
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
