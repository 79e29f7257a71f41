//! Wakes the long-polls waiting on one login when its record changes.
//!
//! Anyone can make a valid token, so anyone can open long-polls for challenges nobody will
//! ever text: what a waiting poll holds must go away with it. An entry exists only while a
//! poll waits on its challenge and is removed, under the same lock that adds it, when its
//! last waiter leaves (answered, timed out or disconnected), so the map holds exactly the
//! challenges being waited on and a write to a login costs one hash look-up.
//! (sled's own `watch_prefix` registered a subscriber per poll that sled never dropped:
//! unbounded memory, and every later write paid for every dead subscriber.)
//!
//! Backend-neutral: the sled store notifies after its writes; a shared database notifies
//! when it hears of another node's commit (LISTEN/NOTIFY), feeding the same map.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::core::token::Challenge;

#[derive(Clone, Default)]
pub struct LoginNotifier {
    waiting: Arc<Mutex<HashMap<Challenge, watch::Sender<()>>>>,
}

impl LoginNotifier {
    /// Registers a waiter now: a change notified after this call wakes it, even one that
    /// comes before it is awaited. So: watch, then read the state, then wait.
    pub fn watch(&self, challenge: &Challenge) -> LoginWatch {
        let mut waiting = self.lock();
        let changed = waiting
            .entry(*challenge)
            .or_insert_with(|| watch::channel(()).0)
            .subscribe();
        LoginWatch {
            changed: Some(changed),
            challenge: *challenge,
            notifier: self.clone(),
        }
    }

    /// Wakes every poll waiting on `challenge`; nothing to do when none is.
    pub fn notify(&self, challenge: &Challenge) {
        if let Some(sender) = self.lock().get(challenge) {
            sender.send_replace(());
        }
    }

    /// Wakes every waiting poll, to read its login again: after a shared database's
    /// notifications may have been missed (a dropped LISTEN connection).
    pub fn notify_all(&self) {
        for sender in self.lock().values() {
            sender.send_replace(());
        }
    }

    /// How many challenges are being waited on (for tests and the status report).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Challenge, watch::Sender<()>>> {
        self.waiting.lock().expect("login notifier lock")
    }
}

/// One poll's registration; dropping it unregisters (and removes the entry if it was last).
pub struct LoginWatch {
    changed: Option<watch::Receiver<()>>,
    challenge: Challenge,
    notifier: LoginNotifier,
}

impl LoginWatch {
    /// Resolves at the first change notified since the watch began or since the last call.
    pub async fn changed(&mut self) {
        if let Some(changed) = &mut self.changed {
            // The sender lives as long as any receiver (see Drop), so this cannot fail.
            let _ = changed.changed().await;
        }
    }
}

impl Drop for LoginWatch {
    fn drop(&mut self) {
        let mut waiting = self.notifier.lock();
        // Dropped under the lock, so no `watch` can subscribe between the count and the removal.
        drop(self.changed.take());
        if waiting
            .get(&self.challenge)
            .is_some_and(|sender| sender.receiver_count() == 0)
        {
            waiting.remove(&self.challenge);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::core::token::Verifier;

    #[tokio::test]
    async fn a_change_before_the_wait_is_not_missed() {
        let notifier = LoginNotifier::default();
        let challenge = Verifier::random().challenge();
        let mut watch = notifier.watch(&challenge);
        notifier.notify(&challenge);
        tokio::time::timeout(Duration::from_secs(5), watch.changed())
            .await
            .expect("woken by the earlier change");
    }

    #[tokio::test]
    async fn only_the_changed_login_wakes() {
        let notifier = LoginNotifier::default();
        let (mine, other) = (
            Verifier::random().challenge(),
            Verifier::random().challenge(),
        );
        let mut watch = notifier.watch(&mine);
        notifier.notify(&other);
        assert!(futures::poll!(Box::pin(watch.changed())).is_pending());
    }

    #[test]
    fn the_entry_goes_with_its_last_waiter() {
        let notifier = LoginNotifier::default();
        let challenge = Verifier::random().challenge();
        let first = notifier.watch(&challenge);
        let second = notifier.watch(&challenge);
        assert_eq!(notifier.len(), 1);
        drop(first);
        assert_eq!(notifier.len(), 1);
        drop(second);
        assert!(notifier.is_empty());
    }

    #[test]
    fn ten_thousand_abandoned_watches_leave_nothing_behind() {
        let notifier = LoginNotifier::default();
        for _ in 0..10_000 {
            let watch = notifier.watch(&Verifier::random().challenge());
            drop(watch);
        }
        assert!(notifier.is_empty());
    }
}
