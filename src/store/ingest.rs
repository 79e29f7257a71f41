//! Group commit for incoming MOs: the deliver_sm_resp waits for this.
//!
//! Links hand each MO over with a one-shot reply channel; the ingest task writes every MO that
//! is waiting into the inbox, flushes once for the whole batch, then answers each. So a burst
//! of deliver_sm costs one fsync, and no deliver_sm is acknowledged before it is durable.

use tokio::sync::{mpsc, oneshot};
use tracing::{error, info};

use std::sync::Arc;

use crate::core::arrivals::Arrivals;
use crate::core::mo::MoMessage;
use crate::core::store::IngestStore;

const MAX_BATCH: usize = 1024;

/// An MO to store with its digest, or (None) only a wait for the next flush, for writes made
/// elsewhere (a delivery receipt's update) that must be durable before their PDU is answered.
type Job = (Option<(MoMessage, [u8; 16])>, oneshot::Sender<bool>);

#[derive(Clone)]
pub struct Ingest {
    jobs: mpsc::Sender<Job>,
    arrivals: Arrivals,
}

impl Ingest {
    /// Starts the ingest task; it ends when every `Ingest` handle is dropped.
    /// MOs repeated within `redelivery_window` seconds are acknowledged, not stored again.
    /// Each MO's arrival is noted in `arrivals` for the MO → session latency.
    pub fn start(
        store: Arc<dyn IngestStore>,
        redelivery_window: u64,
        arrivals: Arrivals,
    ) -> (Ingest, tokio::task::JoinHandle<()>) {
        let (jobs, rx) = mpsc::channel(MAX_BATCH * 4);
        (
            Ingest { jobs, arrivals },
            tokio::spawn(run(store, rx, redelivery_window)),
        )
    }

    /// Resolves to true once the MO is durable in the inbox, false if it could not be stored.
    pub async fn store(&self, mo: MoMessage) -> oneshot::Receiver<bool> {
        let digest = mo.digest();
        self.arrivals.note(digest, std::time::Instant::now());
        let (done, durable) = oneshot::channel();
        // A closed channel drops `done`, which the receiver reads as "not stored".
        let _ = self.jobs.send((Some((mo, digest)), done)).await;
        durable
    }

    /// Resolves to true once everything written to the store so far is durable.
    pub async fn flushed(&self) -> oneshot::Receiver<bool> {
        let (done, durable) = oneshot::channel();
        let _ = self.jobs.send((None, done)).await;
        durable
    }
}

async fn run(store: Arc<dyn IngestStore>, mut rx: mpsc::Receiver<Job>, redelivery_window: u64) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let (messages, waiters): (Vec<Option<_>>, Vec<_>) = jobs.drain(..).unzip();
        let messages: Vec<(MoMessage, [u8; 16])> = messages.into_iter().flatten().collect();
        let stored = match store.append_digested(&messages, redelivery_window).await {
            Ok(repeats) => {
                if repeats > 0 {
                    info!(
                        repeats,
                        "redelivered MOs acknowledged without processing them again"
                    );
                }
                store.sync().await.map(|()| repeats)
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
    }
}
