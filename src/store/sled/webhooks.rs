//! The durable webhook queue: login events waiting for their backend to answer 2xx.
//!
//! An event is queued in the same transaction that records the login state it reports
//! ([`super::Store::commit_outcome`], [`super::Store::record_expiry`]), so a recorded terminal
//! state always has its event and a crash cannot lose one. It leaves only when the backend
//! answered 2xx (at-least-once: a crash between that answer and the removal sends it again,
//! with the same `event_id`, which is what the receiver deduplicates on). Keys are
//! sled-generated ids, so iteration order is the order the states were recorded.

use std::sync::Arc;

use tokio::sync::watch;

use super::gauge::Gauge;
use super::{StoreError, decode};
use crate::core::outbound::QueuedEvent;

#[derive(Clone)]
pub struct Webhooks {
    pub(super) tree: sled::Tree,
    /// Bumped on every enqueue, like the outbox's, so the dispatcher never misses one.
    queued: Arc<watch::Sender<u64>>,
    pub(super) depth: Gauge,
}

impl Webhooks {
    pub(super) fn new(tree: sled::Tree) -> Self {
        Webhooks {
            depth: Gauge::counted(&tree),
            tree,
            queued: Arc::new(watch::channel(0).0),
        }
    }

    pub(super) fn wake(&self) {
        self.queued.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// `changed()` on the receiver resolves whenever events were queued since it last saw.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.queued.subscribe()
    }

    /// Up to `limit` events, oldest first, skipping those `skip` picks (in flight, or for a
    /// backend that is paused).
    pub fn pending(
        &self,
        skip: impl Fn(u64, &QueuedEvent) -> bool,
        limit: usize,
    ) -> Result<Vec<(u64, QueuedEvent)>, StoreError> {
        let mut found = Vec::new();
        for entry in self.tree.iter() {
            if found.len() >= limit {
                break;
            }
            let (key, value) = entry?;
            let id = u64::from_be_bytes(key.as_ref().try_into().unwrap_or_default());
            let queued = decode("webhooks", &value)?;
            if !skip(id, &queued) {
                found.push((id, queued));
            }
        }
        Ok(found)
    }

    /// Called once the backend answered 2xx.
    pub fn remove(&self, id: u64) -> Result<(), StoreError> {
        if self.tree.remove(id.to_be_bytes())?.is_some() {
            self.depth.sub(1);
        }
        Ok(())
    }

    pub(super) fn len(&self) -> usize {
        self.depth.get()
    }
}
