//! Group commit of store flushes: one fsync for everyone waiting.
//!
//! Many callers need "everything I wrote is durable" at the same moment: the ingest task
//! before it answers deliver_sm, the login pipeline after a batch, every poll that hands a
//! session out. sled 0.34's `flush_async` can hang forever when two run at once
//! (spacejam/sled#1308, fixed only in unreleased sled; our crash-safety test hit it), so
//! flushes here are the blocking `flush`, one at a time, on the blocking pool.
//!
//! A caller queued behind a running flush cannot count on that one (it may have started
//! before the caller's write), but it can count on any flush that *started* after its write.
//! Flushes are numbered as they start; a caller notes the number the next flush will get,
//! and if a flush with that number has already succeeded when its turn comes, its writes are
//! durable and it returns without flushing. So callers that arrive during one flush share the
//! next one instead of running one each, in a row.

use std::sync::{Arc, Mutex};

use crate::core::error::StoreError;

#[derive(Default)]
pub(super) struct Flusher {
    /// Held while a flush runs: one at a time (the sled bug above). Fair, so first come first.
    /// The flush itself owns the guard, not the caller's future: a caller that stops waiting
    /// (`/readyz`'s timeout drops its future) leaves the flush running and the turn taken
    /// until it ends, so a second flush never starts beside it.
    turn: Arc<tokio::sync::Mutex<()>>,
    numbers: Arc<Mutex<Numbers>>,
    /// Makes every flush fail, as a full or failing disk does.
    #[cfg(test)]
    pub(super) failing: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
struct Numbers {
    /// The last flush that started.
    started: u64,
    /// The last flush that succeeded; every flush up to it has finished.
    succeeded: u64,
}

impl Flusher {
    /// Returns once every write to `db` made before the call is durable.
    pub(super) async fn flush(&self, db: &sled::Db) -> Result<(), StoreError> {
        #[cfg(test)]
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Backend("flush failed (test)".into()));
        }
        let db = db.clone();
        self.flush_with(move || db.flush().map(drop).map_err(StoreError::from))
            .await
    }

    /// [`Flusher::flush`] with the blocking flush given, so tests can hold one open.
    async fn flush_with(
        &self,
        flush: impl FnOnce() -> Result<(), StoreError> + Send + 'static,
    ) -> Result<(), StoreError> {
        // The lock orders our writes before the start of any flush numbered `covering` or
        // higher: those flushes cover them.
        let covering = self.numbers.lock().expect("flush numbers").started + 1;
        let turn = self.turn.clone().lock_owned().await;
        let number = {
            let mut numbers = self.numbers.lock().expect("flush numbers");
            if numbers.succeeded >= covering {
                return Ok(());
            }
            numbers.started += 1;
            numbers.started
        };
        let numbers = self.numbers.clone();
        tokio::task::spawn_blocking(move || {
            let flushed = flush();
            if flushed.is_ok() {
                numbers.lock().expect("flush numbers").succeeded = number;
            }
            // Only now may the next flush start, whether or not anyone still waits for this.
            drop(turn);
            flushed
        })
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flusher() -> (sled::Db, Flusher) {
        let db = sled::Config::new().temporary(true).open().unwrap();
        (db, Flusher::default())
    }

    #[tokio::test]
    async fn callers_that_arrive_during_a_flush_share_the_next_one() {
        let (db, flusher) = flusher();
        let running = flusher.turn.lock().await;
        db.insert(b"k", b"v").unwrap();
        let mut waiting: Vec<_> = (0..8).map(|_| Box::pin(flusher.flush(&db))).collect();
        for caller in &mut waiting {
            assert!(futures::poll!(caller.as_mut()).is_pending());
        }
        drop(running);
        for result in futures::future::join_all(waiting).await {
            result.unwrap();
        }
        assert_eq!(flusher.numbers.lock().unwrap().started, 1);
    }

    /// `/readyz` gives up on a flush after 1 s and drops its future; the flush goes on, and
    /// no other may start beside it (sled#1308) until it ends.
    #[tokio::test]
    async fn a_dropped_caller_keeps_the_turn_until_its_flush_ends() {
        let flusher = Arc::new(Flusher::default());
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (started, running) = tokio::sync::oneshot::channel();
        let slow = flusher.clone();
        let first = tokio::spawn(async move {
            slow.flush_with(move || {
                let _ = started.send(());
                held.recv().unwrap();
                Ok(())
            })
            .await
        });
        running.await.unwrap();
        first.abort();
        assert!(first.await.unwrap_err().is_cancelled());

        assert!(
            flusher.turn.try_lock().is_err(),
            "the turn was given back while the flush still ran: a second could start beside it"
        );
        release.send(()).unwrap();
        let db = sled::Config::new().temporary(true).open().unwrap();
        flusher.flush(&db).await.unwrap();
    }

    #[tokio::test]
    async fn a_caller_after_a_flush_gets_a_flush_of_its_own() {
        let (db, flusher) = flusher();
        db.insert(b"a", b"1").unwrap();
        flusher.flush(&db).await.unwrap();
        db.insert(b"b", b"2").unwrap();
        flusher.flush(&db).await.unwrap();
        assert_eq!(flusher.numbers.lock().unwrap().started, 2);
    }
}
