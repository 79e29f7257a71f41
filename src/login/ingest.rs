//! Group commit for incoming MOs: the deliver_sm_resp waits for this.
//!
//! Links hand each MO over with a one-shot reply channel; the ingest task writes every MO that
//! is waiting into the inbox, flushes once for the whole batch, then answers each. So a burst
//! of deliver_sm costs one fsync, and no deliver_sm is acknowledged before it is durable.

use tokio::sync::{mpsc, oneshot};
use tracing::error;

use crate::store::{MoMessage, Store};

const MAX_BATCH: usize = 1024;

type Job = (MoMessage, oneshot::Sender<bool>);

#[derive(Clone)]
pub struct Ingest {
    jobs: mpsc::Sender<Job>,
}

impl Ingest {
    /// Starts the ingest task; it ends when every `Ingest` handle is dropped.
    pub fn start(store: Store) -> (Ingest, tokio::task::JoinHandle<()>) {
        let (jobs, rx) = mpsc::channel(MAX_BATCH * 4);
        (Ingest { jobs }, tokio::spawn(run(store, rx)))
    }

    /// Resolves to true once the MO is durable in the inbox, false if it could not be stored.
    pub async fn store(&self, mo: MoMessage) -> oneshot::Receiver<bool> {
        let (done, durable) = oneshot::channel();
        // A closed channel drops `done`, which the receiver reads as "not stored".
        let _ = self.jobs.send((mo, done)).await;
        durable
    }
}

async fn run(store: Store, mut rx: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let (messages, waiters): (Vec<_>, Vec<_>) = jobs.drain(..).unzip();
        let stored = match store.inbox.append(&messages) {
            Ok(()) => store.flush().await,
            Err(e) => Err(e),
        };
        if let Err(e) = &stored {
            error!(error = %e, count = messages.len(), "MOs not stored; the SMSC will redeliver");
        }
        for waiter in waiters {
            let _ = waiter.send(stored.is_ok());
        }
        if stored.is_ok() {
            store.inbox.wake();
        }
    }
}
