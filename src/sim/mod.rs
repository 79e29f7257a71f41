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
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use control::control_router;
pub use session::mo_delivers;

use crate::smpp::tls::Stream;
use crate::smpp::udh::Concat;

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub listen: SocketAddr,
    /// The loopback HTTP API for injecting MOs and reading submits; None to skip it.
    pub control: Option<SocketAddr>,
    pub system_id: String,
    pub password: String,
    /// Serve SMPP over TLS with this certificate, as carriers that offer TLS do.
    pub tls: Option<Arc<rustls::ServerConfig>>,
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

/// An MO to inject, as a phone would send it, and how an unusual SMSC would pass it on.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoRequest {
    /// E.164 with `+`.
    pub from: String,
    /// The short code; defaults to the bound ESME's first destination.
    #[serde(default)]
    pub to: Option<String>,
    pub text: String,
    /// Deliver it as data_sm (text in message_payload), as some SMSCs deliver MOs.
    #[serde(default, skip_serializing_if = "is_false")]
    pub data_sm: bool,
    /// The text as Latin-1 octets under data_coding 0, in one PDU, as SMSCs that pass their
    /// own alphabet under "the SMSC default" do.
    #[serde(default, skip_serializing_if = "is_false")]
    pub latin1: bool,
    /// Every UDH starts with an 8-bit concatenation IE of the wrong length (a message that
    /// needs no concatenation gets a UDH with only that IE); the correct numbering follows as a
    /// 16-bit IE, as a broken gateway writes it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub malformed_concat: bool,
}

fn is_false(b: &bool) -> bool {
    !b
}

/// One deliver_sm exactly as the SMSC sends it, for tests and integrators who need codings,
/// part orders or TLVs a phone's plain text does not give.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deliver {
    pub from: String,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub esm_class: u8,
    #[serde(default)]
    pub data_coding: u8,
    #[serde(default)]
    pub short_message: Vec<u8>,
    #[serde(default)]
    pub message_payload: Option<Vec<u8>>,
    #[serde(default)]
    pub sar: Option<Concat>,
    #[serde(default)]
    pub receipted_message_id: Option<String>,
    #[serde(default)]
    pub message_state: Option<u8>,
    /// Send it as a data_sm (short_message, if any, goes into message_payload), as some
    /// SMSCs deliver MOs.
    #[serde(default)]
    pub data_sm: bool,
}

/// How the simulator writes the message id in the delivery receipts it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStyle {
    /// As in submit_sm_resp (hex), in the text and the receipted_message_id TLV.
    Hex,
    /// The same number in decimal, in the text only (as some SMSCs do).
    Decimal,
}

impl std::str::FromStr for ReceiptStyle {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "hex" => Ok(ReceiptStyle::Hex),
            "decimal" => Ok(ReceiptStyle::Decimal),
            other => Err(format!("unknown receipt style {other:?}: hex or decimal")),
        }
    }
}

/// Faults the simulator shows from now on, set from a test ([`Simulator::set_faults`]),
/// `moauth sim` flags, `moauth sim faults` or `POST /faults`. What is absent is left as it is.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FaultSettings {
    /// Milliseconds before each kind of request is answered (0: at once).
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub delay_ms: HashMap<SlowRequest, u64>,
    /// Send a delivery receipt for every submit that asks for one, its message id written so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipts: Option<ReceiptStyle>,
    /// Send each receipt before the submit_sm_resp it reports on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipts_first: Option<bool>,
    /// Refuse binds (ESME_RBINDFAIL) whatever the credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refuse_binds: Option<bool>,
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
    sessions: Mutex<HashMap<u64, mpsc::Sender<Order>>>,
    next_session: AtomicU64,
    next_message_id: AtomicU64,
    submits: Mutex<Vec<Submitted>>,
    submits_seen: watch::Sender<usize>,
    /// Arrival time of every submit_sm PDU (each part), for rate measurements.
    submit_times: Mutex<Vec<Instant>>,
    bound: watch::Sender<usize>,
    /// Delivery receipts the ESME has answered.
    receipts_answered: watch::Sender<usize>,
    /// enquire_link requests the ESME has sent, over every session.
    enquire_links: watch::Sender<usize>,
    /// TLS handshakes that failed (a client that does not trust our certificate).
    handshake_failures: watch::Sender<usize>,
    faults: Faults,
    /// Which bound session the next MO goes to: MOs are spread over the binds in turn.
    next_pick: AtomicUsize,
    /// Send a deliver_sm again, on a bound session, when the one it went out on closed before
    /// its resp came (see [`Simulator::redeliver_unanswered`]).
    redeliver: AtomicBool,
    redelivered: AtomicUsize,
}

/// Misbehaviour on request: what real SMSCs do on bad days.
#[derive(Default)]
struct Faults {
    refuse_next: AtomicU32,
    /// command_status used for those refusals.
    refuse_status: AtomicU32,
    refuse_binds: AtomicBool,
    /// command_status of those refusals; 0 for ESME_RBINDFAIL.
    bind_refusal: AtomicU32,
    bind_attempts: watch::Sender<Vec<Instant>>,
    /// While true, submit_sm are not answered; the answers go out when it turns false.
    hold_responses: watch::Sender<bool>,
    /// Unanswered submit_sm now, and the most ever seen at once.
    outstanding: watch::Sender<usize>,
    max_outstanding: AtomicUsize,
    receipts: Mutex<Option<ReceiptStyle>>,
    /// How long the answer to each kind of request is held back, as a slow SMSC does.
    delays: Mutex<HashMap<SlowRequest, Duration>>,
    /// Send each delivery receipt before the submit_sm_resp it reports on, as an SMSC does
    /// when the two travel different paths.
    receipts_first: AtomicBool,
    /// generic_nack the ESME sent us.
    nacks: AtomicUsize,
}

/// The requests whose answers the simulator can be told to send late.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlowRequest {
    SubmitSm,
    EnquireLink,
    Bind,
    Unbind,
}

impl std::str::FromStr for SlowRequest {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "submit_sm" => Ok(SlowRequest::SubmitSm),
            "enquire_link" => Ok(SlowRequest::EnquireLink),
            "bind" => Ok(SlowRequest::Bind),
            "unbind" => Ok(SlowRequest::Unbind),
            other => Err(format!(
                "unknown request {other:?}: submit_sm, enquire_link, bind or unbind"
            )),
        }
    }
}

/// What a session is told to do by the simulator's API.
pub(crate) enum Order {
    Deliver(Box<rusmpp::Pdu>, oneshot::Sender<u32>),
    /// Close the TCP connection without unbinding, as a crashed SMSC would.
    Drop,
    /// Send this deliver_sm, then close at once: its resp can never arrive.
    DeliverThenDrop(Box<rusmpp::Pdu>),
    /// Write these bytes raw onto the socket.
    Garbage(Vec<u8>),
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
            submit_times: Mutex::new(Vec::new()),
            bound: watch::channel(0).0,
            receipts_answered: watch::channel(0).0,
            enquire_links: watch::channel(0).0,
            handshake_failures: watch::channel(0).0,
            faults: Faults::default(),
            next_pick: AtomicUsize::new(0),
            redeliver: AtomicBool::new(false),
            redelivered: AtomicUsize::new(0),
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
        let tls = config.tls.clone().map(tokio_rustls::TlsAcceptor::from);
        tokio::spawn(accept(listener, tls, state, stop));
        info!(smpp = %smpp_addr, control = sim.control_addr.map(|a| a.to_string()), "simulator listening");
        Ok(sim)
    }

    /// Sends an MO to a bound ESME (segmented if long) and waits for each deliver_sm_resp.
    pub async fn send_mo(&self, request: &MoRequest) -> Result<MoResult, SimError> {
        let reference = self.state.next_message_id.fetch_add(1, Ordering::Relaxed) as u8;
        self.deliver(&session::mo_delivers(request, reference)?)
            .await
    }

    /// Sends these deliver_sm in order on one bound session and waits for every resp.
    pub async fn deliver(&self, delivers: &[Deliver]) -> Result<MoResult, SimError> {
        let session = self.any_session()?;
        let mut waiting = Vec::new();
        for deliver in delivers {
            waiting.push(send_on(&session, deliver).await?);
        }
        let mut statuses = Vec::new();
        for (deliver, status) in delivers.iter().zip(waiting) {
            let deadline = tokio::time::Instant::now() + ANSWER_WAIT;
            statuses.push(self.answer(deliver, status, deadline).await?);
        }
        Ok(MoResult { statuses })
    }

    /// The resp's command_status. If the session closes first and redelivery is on, the
    /// deliver_sm goes out again on a bound session (another node's, or the same node's once
    /// it binds again), as an SMSC does with an MO it holds no resp for.
    async fn answer(
        &self,
        deliver: &Deliver,
        mut status: oneshot::Receiver<u32>,
        deadline: tokio::time::Instant,
    ) -> Result<u32, SimError> {
        loop {
            match tokio::time::timeout_at(deadline, status).await {
                Ok(Ok(status)) => return Ok(status),
                Ok(Err(_)) if self.state.redeliver.load(Ordering::SeqCst) => {
                    // A session whose task ended is out of the map before its queue closes,
                    // so a failed send here finds another session next time round.
                    let session = self.bound_session(deadline).await?;
                    self.state.redelivered.fetch_add(1, Ordering::SeqCst);
                    let (answered, unsent) = oneshot::channel();
                    status = send_on(&session, deliver).await.unwrap_or_else(|_| {
                        drop(answered);
                        unsent
                    });
                }
                Ok(Err(_)) | Err(_) => return Err(SimError::NoAnswer),
            }
        }
    }

    /// A bound session, waiting for one until `deadline`.
    async fn bound_session(
        &self,
        deadline: tokio::time::Instant,
    ) -> Result<mpsc::Sender<Order>, SimError> {
        let mut bound = self.state.bound.subscribe();
        loop {
            if let Ok(session) = self.any_session() {
                return Ok(session);
            }
            match tokio::time::timeout_at(deadline, bound.changed()).await {
                Ok(Ok(())) => {}
                _ => return Err(SimError::NotBound),
            }
        }
    }

    /// The next receiving session in turn, as carriers spread MOs over a system_id's binds.
    fn any_session(&self) -> Result<mpsc::Sender<Order>, SimError> {
        let sessions = self.state.sessions.lock().expect("sim lock");
        let mut ids: Vec<&u64> = sessions.keys().collect();
        if ids.is_empty() {
            return Err(SimError::NotBound);
        }
        ids.sort();
        let turn = self.state.next_pick.fetch_add(1, Ordering::Relaxed) % ids.len();
        Ok(sessions[ids[turn]].clone())
    }

    /// Redelivers (true) or gives up on (false, the default) a deliver_sm whose session closed
    /// before its resp; [`Simulator::redelivered`] counts the redeliveries.
    pub fn redeliver_unanswered(&self, redeliver: bool) {
        self.state.redeliver.store(redeliver, Ordering::SeqCst);
    }

    /// How many deliver_sm were sent again because their session closed unanswered.
    pub fn redelivered(&self) -> usize {
        self.state.redelivered.load(Ordering::SeqCst)
    }

    /// Closes every ESME connection abruptly (no unbind).
    pub async fn drop_connections(&self) {
        let sessions: Vec<_> = self
            .state
            .sessions
            .lock()
            .expect("sim lock")
            .values()
            .cloned()
            .collect();
        for session in sessions {
            let _ = session.send(Order::Drop).await;
        }
    }

    /// Sends one deliver_sm and closes the connection before its resp can arrive, as an SMSC
    /// that crashes mid-conversation: the ESME may or may not have stored it.
    pub async fn deliver_then_drop(&self, deliver: &Deliver) -> Result<(), SimError> {
        let pdu = Box::new(session::mo_pdu(deliver)?);
        self.any_session()?
            .send(Order::DeliverThenDrop(pdu))
            .await
            .map_err(|_| SimError::NotBound)
    }

    /// Writes raw bytes onto a bound session's socket.
    pub async fn send_garbage(&self, bytes: Vec<u8>) -> Result<(), SimError> {
        self.any_session()?
            .send(Order::Garbage(bytes))
            .await
            .map_err(|_| SimError::NotBound)
    }

    /// Answers the next `n` submit_sm with ESME_RTHROTTLED.
    pub fn throttle_next_submits(&self, n: u32) {
        self.refuse_next_submits(n, u32::from(rusmpp::CommandStatus::EsmeRthrottled));
    }

    /// Answers the next `n` submit_sm with this command_status.
    pub fn refuse_next_submits(&self, n: u32, status: u32) {
        self.state
            .faults
            .refuse_status
            .store(status, Ordering::SeqCst);
        self.state.faults.refuse_next.store(n, Ordering::SeqCst);
    }

    /// Refuses binds from now on with this command_status (ESME_RINVPASWD: 0x0E, as an SMSC
    /// answers a wrong password).
    pub fn refuse_binds_with(&self, status: u32) {
        self.state
            .faults
            .bind_refusal
            .store(status, Ordering::SeqCst);
        self.refuse_binds(true);
    }

    /// Refuses (true) or accepts (false) binds from now on.
    pub fn refuse_binds(&self, refuse: bool) {
        self.state
            .faults
            .refuse_binds
            .store(refuse, Ordering::SeqCst);
    }

    /// When every bind attempt arrived.
    pub fn bind_attempts(&self) -> Vec<Instant> {
        self.state.faults.bind_attempts.borrow().clone()
    }

    /// Waits until at least `count` bind attempts were made.
    pub async fn wait_bind_attempts(&self, count: usize, timeout: Duration) -> Vec<Instant> {
        let mut attempts = self.state.faults.bind_attempts.subscribe();
        let _ = tokio::time::timeout(timeout, attempts.wait_for(|a| a.len() >= count)).await;
        self.bind_attempts()
    }

    /// Answers this kind of request `delay` after it arrives (zero: at once). Later requests
    /// are answered in order, each its own `delay` after its arrival.
    pub fn delay_responses(&self, request: SlowRequest, delay: Duration) {
        self.state
            .faults
            .delays
            .lock()
            .expect("sim lock")
            .insert(request, delay);
    }

    /// Applies what `settings` give; the rest stays as it was.
    pub fn set_faults(&self, settings: &FaultSettings) {
        for (&request, &ms) in &settings.delay_ms {
            self.delay_responses(request, Duration::from_millis(ms));
        }
        if let Some(style) = settings.receipts {
            self.send_receipts(Some(style));
        }
        if let Some(first) = settings.receipts_first {
            self.receipts_before_resp(first);
        }
        if let Some(refuse) = settings.refuse_binds {
            self.refuse_binds(refuse);
        }
        // As the control API writes them (`moauth sim faults` prints the same).
        let settings = serde_json::to_string(settings).unwrap_or_default();
        info!(%settings, "sim: faults set");
    }

    /// Sends each delivery receipt before (true) or after (false) its submit_sm_resp.
    pub fn receipts_before_resp(&self, first: bool) {
        self.state
            .faults
            .receipts_first
            .store(first, Ordering::SeqCst);
    }

    /// How many generic_nack the ESME has sent.
    pub fn nacks_received(&self) -> usize {
        self.state.faults.nacks.load(Ordering::SeqCst)
    }

    /// Holds (true) or releases (false) the answers to submit_sm.
    pub fn hold_responses(&self, hold: bool) {
        self.state.faults.hold_responses.send_replace(hold);
    }

    /// Waits until at least `count` submit_sm are unanswered at once (while held).
    pub async fn wait_outstanding(&self, count: usize, timeout: Duration) -> usize {
        let mut outstanding = self.state.faults.outstanding.subscribe();
        let _ = tokio::time::timeout(timeout, outstanding.wait_for(|n| *n >= count)).await;
        *outstanding.borrow()
    }

    /// The most submit_sm that were ever unanswered at once.
    pub fn max_outstanding(&self) -> usize {
        self.state.faults.max_outstanding.load(Ordering::SeqCst)
    }

    /// Arrival time of every submit_sm PDU so far.
    pub fn submit_times(&self) -> Vec<Instant> {
        self.state.submit_times.lock().expect("sim lock").clone()
    }

    /// Waits until the ESME has answered at least `count` delivery receipts.
    pub async fn wait_receipts_answered(&self, count: usize, timeout: Duration) -> usize {
        let mut answered = self.state.receipts_answered.subscribe();
        let _ = tokio::time::timeout(timeout, answered.wait_for(|n| *n >= count)).await;
        *answered.borrow()
    }

    /// enquire_link requests received so far (a bound ESME's heartbeat: time passing on its
    /// side, as its own timers see it).
    pub fn enquire_links(&self) -> usize {
        *self.state.enquire_links.borrow()
    }

    /// Waits until at least `count` enquire_link requests were received in total.
    pub async fn wait_enquire_links(&self, count: usize, timeout: Duration) -> usize {
        let mut received = self.state.enquire_links.subscribe();
        let _ = tokio::time::timeout(timeout, received.wait_for(|n| *n >= count)).await;
        *received.borrow()
    }

    /// Waits until at least `count` TLS handshakes have failed.
    pub async fn wait_handshake_failures(&self, count: usize, timeout: Duration) -> usize {
        let mut failures = self.state.handshake_failures.subscribe();
        let _ = tokio::time::timeout(timeout, failures.wait_for(|n| *n >= count)).await;
        *failures.borrow()
    }

    /// Sends a delivery receipt for every accepted submit that asked for one.
    pub fn send_receipts(&self, style: Option<ReceiptStyle>) {
        *self.state.faults.receipts.lock().expect("sim lock") = style;
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

/// Queues one deliver_sm on `session`; the receiver gets its resp's command_status.
async fn send_on(
    session: &mpsc::Sender<Order>,
    deliver: &Deliver,
) -> Result<oneshot::Receiver<u32>, SimError> {
    let (answered, status) = oneshot::channel();
    session
        .send(Order::Deliver(
            Box::new(session::mo_pdu(deliver)?),
            answered,
        ))
        .await
        .map_err(|_| SimError::NotBound)?;
    Ok(status)
}

async fn accept(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    state: Arc<SimState>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let (tls, state, stop) = (tls.clone(), state.clone(), stop.clone());
                    tokio::spawn(async move {
                        let stream: Box<dyn Stream> = match tls {
                            Some(tls) => match tls.accept(stream).await {
                                Ok(stream) => Box::new(stream),
                                Err(e) => {
                                    warn!(%peer, error = %e, "sim: TLS handshake failed");
                                    state.handshake_failures.send_modify(|n| *n += 1);
                                    return;
                                }
                            },
                            None => Box::new(stream),
                        };
                        session::serve(stream, peer, state, stop).await;
                    });
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
