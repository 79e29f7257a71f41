//! Group commit for incoming MOs: the deliver_sm_resp waits for this.
//!
//! Links hand each MO over with a one-shot reply channel; the ingest task writes every MO that
//! is waiting into the inbox, flushes once for the whole batch, then answers each. So a burst
//! of deliver_sm costs one fsync, and no deliver_sm is acknowledged before it is durable.

use tokio::sync::{mpsc, oneshot};
use tracing::{error, info};

use super::Store;
use crate::core::mo::MoMessage;

const MAX_BATCH: usize = 1024;

/// An MO to store, or (None) only a wait for the next flush, for writes made elsewhere (a
/// delivery receipt's update) that must be durable before their PDU is answered.
type Job = (Option<MoMessage>, oneshot::Sender<bool>);

#[derive(Clone)]
pub struct Ingest {
    jobs: mpsc::Sender<Job>,
}

impl Ingest {
    /// Starts the ingest task; it ends when every `Ingest` handle is dropped.
    /// MOs repeated within `redelivery_window` seconds are acknowledged, not stored again.
    pub fn start(store: Store, redelivery_window: u64) -> (Ingest, tokio::task::JoinHandle<()>) {
        let (jobs, rx) = mpsc::channel(MAX_BATCH * 4);
        (
            Ingest { jobs },
            tokio::spawn(run(store, rx, redelivery_window)),
        )
    }

    /// Resolves to true once the MO is durable in the inbox, false if it could not be stored.
    pub async fn store(&self, mo: MoMessage) -> oneshot::Receiver<bool> {
        let (done, durable) = oneshot::channel();
        // A closed channel drops `done`, which the receiver reads as "not stored".
        let _ = self.jobs.send((Some(mo), done)).await;
        durable
    }

    /// Resolves to true once everything written to the store so far is durable.
    pub async fn flushed(&self) -> oneshot::Receiver<bool> {
        let (done, durable) = oneshot::channel();
        let _ = self.jobs.send((None, done)).await;
        durable
    }
}

async fn run(store: Store, mut rx: mpsc::Receiver<Job>, redelivery_window: u64) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let (messages, waiters): (Vec<Option<MoMessage>>, Vec<_>) = jobs.drain(..).unzip();
        let messages: Vec<MoMessage> = messages.into_iter().flatten().collect();
        let stored = match store.inbox.append(&messages, redelivery_window) {
            Ok(repeats) => {
                if repeats > 0 {
                    info!(
                        repeats,
                        "redelivered MOs acknowledged without processing them again"
                    );
                }
                store.flush().await.map(|()| repeats)
            }
            Err(e) => Err(e),
        };
        if let Ok(repeats) = stored {
            let received = (messages.len() - repeats) as u64;
            metrics::counter!("moauth_mo_received_total").increment(received);
            metrics::counter!("moauth_mo_redelivered_total").increment(repeats as u64);
        }
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
