//! `moauth sim`: a small SMSC for demos, tests, benchmarks and integrators' staging.
//!
//! It behaves as a carrier's SMSC does on the wire: it checks bind credentials, answers every
//! request with the matching sequence number, injects mobile-originated SMS as deliver_sm and
//! waits for their deliver_sm_resp, accepts submit_sm with a message id, and records what was
//! submitted (concatenated parts joined) so a test can read it back. It shares no state with
//! the daemon: everything crosses a real TCP socket.

mod control;
mod session;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use control::control_router;

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub listen: SocketAddr,
    /// The loopback HTTP API for injecting MOs and reading submits; None to skip it.
    pub control: Option<SocketAddr>,
    pub system_id: String,
    pub password: String,
}

#[derive(Debug, Error)]
pub enum SimError {
    #[error("no ESME is bound to the simulator")]
    NotBound,
    #[error("the ESME did not answer the deliver_sm")]
    NoAnswer,
    #[error("{0}")]
    BadRequest(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// An MO to inject, as a phone would send it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoRequest {
    /// E.164 with `+`.
    pub from: String,
    /// The short code; defaults to the bound ESME's first destination.
    #[serde(default)]
    pub to: Option<String>,
    pub text: String,
}

/// What the ESME answered for each deliver_sm of an injected MO.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MoResult {
    /// command_status of every deliver_sm_resp, one per segment.
    pub statuses: Vec<u32>,
}

/// A message the ESME submitted, parts joined.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Submitted {
    pub message_id: String,
    pub from: String,
    pub to: String,
    pub data_coding: u8,
    pub parts: usize,
    pub text: String,
}

/// Shared between the listener, sessions and control API.
pub(crate) struct SimState {
    config: SimConfig,
    sessions: Mutex<HashMap<u64, mpsc::Sender<Inject>>>,
    next_session: AtomicU64,
    next_message_id: AtomicU64,
    submits: Mutex<Vec<Submitted>>,
    submits_seen: watch::Sender<usize>,
    bound: watch::Sender<usize>,
}

/// One deliver_sm to send and where to report its resp status.
pub(crate) struct Inject {
    pdu: rusmpp::pdus::DeliverSm,
    answered: oneshot::Sender<u32>,
}

#[derive(Clone)]
pub struct Simulator {
    state: Arc<SimState>,
    pub smpp_addr: SocketAddr,
    pub control_addr: Option<SocketAddr>,
    stop: CancellationToken,
}

/// deliver_sm not answered within this are reported as such.
const ANSWER_WAIT: Duration = Duration::from_secs(30);

impl Simulator {
    /// Binds the listeners and starts serving; returns once both accept connections.
    pub async fn start(config: SimConfig) -> Result<Simulator, SimError> {
        let listener = TcpListener::bind(config.listen).await?;
        let smpp_addr = listener.local_addr()?;
        let state = Arc::new(SimState {
            config: config.clone(),
            sessions: Mutex::new(HashMap::new()),
            next_session: AtomicU64::new(1),
            next_message_id: AtomicU64::new(0x1000),
            submits: Mutex::new(Vec::new()),
            submits_seen: watch::channel(0).0,
            bound: watch::channel(0).0,
        });
        let stop = CancellationToken::new();
        let mut sim = Simulator {
            state: state.clone(),
            smpp_addr,
            control_addr: None,
            stop: stop.clone(),
        };
        if let Some(addr) = config.control {
            let control = TcpListener::bind(addr).await?;
            sim.control_addr = Some(control.local_addr()?);
            let app = control_router(sim.clone());
            let stop = stop.clone();
            tokio::spawn(async move {
                let _ = axum::serve(control, app)
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await;
            });
        }
        tokio::spawn(accept(listener, state, stop));
        info!(smpp = %smpp_addr, control = ?sim.control_addr, "simulator listening");
        Ok(sim)
    }

    /// Sends an MO to a bound ESME (segmented if long) and waits for each deliver_sm_resp.
    pub async fn send_mo(&self, request: &MoRequest) -> Result<MoResult, SimError> {
        let session = {
            let sessions = self.state.sessions.lock().expect("sim lock");
            sessions.values().next().cloned()
        }
        .ok_or(SimError::NotBound)?;
        let pdus = session::mo_pdus(request, &self.state.next_message_id)?;
        let mut waiting = Vec::new();
        for pdu in pdus {
            let (answered, status) = oneshot::channel();
            session
                .send(Inject { pdu, answered })
                .await
                .map_err(|_| SimError::NotBound)?;
            waiting.push(status);
        }
        let mut statuses = Vec::new();
        for status in waiting {
            let status = tokio::time::timeout(ANSWER_WAIT, status)
                .await
                .map_err(|_| SimError::NoAnswer)?
                .map_err(|_| SimError::NoAnswer)?;
            statuses.push(status);
        }
        Ok(MoResult { statuses })
    }

    pub fn submits(&self) -> Vec<Submitted> {
        self.state.submits.lock().expect("sim lock").clone()
    }

    /// Waits until at least `count` messages were submitted in total.
    pub async fn wait_submits(&self, count: usize, timeout: Duration) -> Vec<Submitted> {
        let mut seen = self.state.submits_seen.subscribe();
        let _ = tokio::time::timeout(timeout, seen.wait_for(|n| *n >= count)).await;
        self.submits()
    }

    /// Waits until at least `count` ESME sessions are bound.
    pub async fn wait_bound(&self, count: usize, timeout: Duration) -> bool {
        let mut bound = self.state.bound.subscribe();
        tokio::time::timeout(timeout, bound.wait_for(|n| *n >= count))
            .await
            .is_ok()
    }

    pub fn bound_sessions(&self) -> usize {
        *self.state.bound.borrow()
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }
}

async fn accept(listener: TcpListener, state: Arc<SimState>, stop: CancellationToken) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(session::serve(stream, peer, state.clone(), stop.clone()));
                }
                Err(e) => warn!(error = %e, "simulator accept failed"),
            },
            _ = stop.cancelled() => return,
        }
    }
}

impl SimState {
    fn record_submit(&self, submitted: Submitted) {
        let mut submits = self.submits.lock().expect("sim lock");
        submits.push(submitted);
        let count = submits.len();
        self.submits_seen.send_replace(count);
    }

    fn next_message_id(&self) -> String {
        format!("{:x}", self.next_message_id.fetch_add(1, Ordering::Relaxed))
    }
}
