//! `SmscLink`: one ESME connection to an SMSC, kept up for the daemon's lifetime.
//!
//! The task connects, binds, and then only moves bytes and timers for the sans-IO
//! [`Session`], which makes every protocol decision (window, pacing, retries, what an
//! unanswered submit means, enquire_link, unbind). What needs the store stays here:
//! deliver_sm go to the group commit and are answered only once durable; outbox messages are
//! handed to the session and leave the outbox when it says they are finished. A store that
//! fails (a database outage) does not end the connection: deliver_sm are answered with a
//! temporary error so the SMSC retries them, and the outbox is read again after a pause
//! ([`STORE_RETRY`]). Any other failure ends the connection and the task reconnects with
//! exponential backoff and jitter.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, SinkExt, StreamExt};
use rusmpp::pdus::{BindReceiver, BindTransceiver, BindTransmitter, DataSm, DeliverSm, SubmitSm};
use rusmpp::tlvs::{Tlv, TlvValue};
use rusmpp::types::{COctetString, OctetString};
use rusmpp::values::{DataCoding, EsmClass, InterfaceVersion, Npi, RegisteredDelivery, Ton};
use rusmpp::{Command, CommandId, CommandStatus, Pdu};
use thiserror::Error;
use tokio::net::TcpStream;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::config::{BindMode, SmscConfig};
use super::frame::{FrameError, Inbound, SmppCodec};
use super::receipt::{EarlyReceipts, Receipt};
use super::session::{
    Ended, Event, Inbound as Carrier, Outcome, Session, SessionConfig, TEMPORARY_TRIES,
};
use super::status::SmppStatus;
use super::text;
use super::tls::{Stream, TlsClient, TlsError};
use super::udh::Concat;
use crate::core::clock::Clock;
use crate::core::error::StoreError;
use crate::core::health::LinkStates;
use crate::core::mo::MoMessage;
use crate::core::msisdn::Msisdn;
use crate::core::outbound::Outbound;
use crate::core::outbound::SentRecord;
use crate::core::store::OutboxStore;
use crate::store::ingest::Ingest;

/// Largest PDU accepted from an SMSC: a deliver_sm with a full 64 KiB message_payload.
pub const MAX_PDU: usize = 70_000;
/// How long the outbox rests after the store failed on it; the bind stays up meanwhile.
const STORE_RETRY: Duration = Duration::from_secs(1);
/// esm_class "message type" bits for an SMSC delivery receipt.
const ESM_RECEIPT_MASK: u8 = 0x3C;
const ESM_UDHI: u8 = 0x40;

#[derive(Debug, Error)]
pub enum LinkError {
    #[error("connect to {address}: {source}")]
    Connect {
        address: String,
        source: std::io::Error,
    },
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("bind refused by {address}: {status}")]
    BindRefused { address: String, status: SmppStatus },
    #[error("connection closed by the SMSC")]
    Closed,
    #[error("enquire_link unanswered: link is dead")]
    Dead,
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("send: {0}")]
    Send(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// What a connection is bound for: both directions, or one half of a receiver + transmitter
/// pair (for SMSCs that offer no transceiver bind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Transceiver,
    Receiver,
    Transmitter,
}

impl Role {
    /// The roles to bind for a connection's configured mode.
    pub fn for_mode(mode: BindMode) -> &'static [Role] {
        match mode {
            BindMode::Transceiver => &[Role::Transceiver],
            BindMode::Pair => &[Role::Receiver, Role::Transmitter],
        }
    }

    fn sends(self) -> bool {
        self != Role::Receiver
    }

    /// The role as logs name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Transceiver => "transceiver",
            Role::Receiver => "receiver",
            Role::Transmitter => "transmitter",
        }
    }

    /// The name a bound connection is shown under in /readyz and logs.
    pub fn label(self, smsc: &str) -> String {
        match self {
            Role::Transceiver => smsc.to_owned(),
            Role::Receiver => format!("{smsc}/receiver"),
            Role::Transmitter => format!("{smsc}/transmitter"),
        }
    }
}

pub struct SmscLink {
    pub config: SmscConfig,
    pub role: Role,
    /// Set when the SMSC is reached over TLS.
    pub tls: Option<Arc<TlsClient>>,
    pub store: Arc<dyn OutboxStore>,
    pub ingest: Ingest,
    pub states: LinkStates,
    pub clock: Clock,
    /// Receipts that came before their submit_sm_resp, shared by every link (the two halves
    /// of a pair see the receipt and the resp on different connections).
    pub early_receipts: Arc<Mutex<EarlyReceipts>>,
}

type Framer = Framed<Box<dyn Stream>, SmppCodec>;

impl SmscLink {
    /// Keeps the link up until `stop`; then unbinds and returns.
    pub async fn run(self, stop: CancellationToken) {
        let name = self.role.label(&self.config.name);
        let mut failures: u32 = 0;
        let mut unanswered = HashMap::new();
        loop {
            let result = self
                .connect_and_serve(&stop, &mut failures, &mut unanswered)
                .await;
            // Attempts since the link was last bound (a bound session resets the count).
            let attempt = failures + 1;
            let address = &self.config.address;
            match &result {
                Ok(Ended::Stopped) => {
                    self.states.set(&name, false);
                    info!(smsc = %name, "unbound");
                    return;
                }
                Ok(Ended::UnboundByPeer) => {
                    warn!(smsc = %name, %address, "SMSC unbound");
                    self.states.failed(&name, "the SMSC unbound".into());
                }
                Ok(Ended::Dead) => {
                    warn!(smsc = %name, %address, error = %LinkError::Dead, "SMSC link down");
                    self.states.failed(&name, LinkError::Dead.to_string());
                }
                Err(e) => {
                    if let LinkError::BindRefused { status, .. } = e {
                        metrics::counter!("moauth_smsc_bind_failures_total", "smsc" => self.config.name.clone(), "status" => status.name())
                            .increment(1);
                    }
                    warn!(smsc = %name, %address, attempt, error = %e, "SMSC link down");
                    self.states
                        .failed(&name, format!("{e} (attempt {attempt})"));
                }
            }
            if stop.is_cancelled() {
                return;
            }
            let delay = match &result {
                // Wrong credentials stay wrong until someone changes them: retrying on the
                // usual schedule would only hammer the SMSC (and may get the account locked).
                Err(LinkError::BindRefused { status, .. }) if status.is_authentication() => {
                    error!(smsc = %name, %address, attempt, retry_in_secs = AUTH_RETRY.as_secs(), "the SMSC refused our credentials: check system_id, password and system_type; restart moauth after fixing them to retry at once");
                    AUTH_RETRY
                }
                _ => backoff(failures),
            };
            failures = failures.saturating_add(1);
            info!(smsc = %name, delay_ms = delay.as_millis() as u64, "reconnecting");
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stop.cancelled() => return,
            }
        }
    }

    async fn connect_and_serve(
        &self,
        stop: &CancellationToken,
        failures: &mut u32,
        unanswered: &mut HashMap<u64, u32>,
    ) -> Result<Ended, LinkError> {
        let timeout = Duration::from_secs(self.config.response_timeout_secs);
        let address = self.config.address.to_string();
        let tcp = tokio::time::timeout(
            timeout,
            TcpStream::connect(self.config.address.connect_to()),
        )
        .await
        .map_err(|_| LinkError::Timeout(timeout))?
        .map_err(|source| LinkError::Connect {
            address: address.clone(),
            source,
        })?;
        tcp.set_nodelay(true).map_err(|source| LinkError::Connect {
            address: address.clone(),
            source,
        })?;
        // The address as configured, and the one a name resolved to this time. Compared as
        // text: SmscAddress::from(ip) would drop an IPv6 scope id that SocketAddr shows.
        let peer = match tcp.peer_addr() {
            Ok(ip) if ip.to_string() != address => format!("{address} ({ip})"),
            _ => address,
        };
        let stream: Box<dyn Stream> = match &self.tls {
            Some(tls) => tokio::time::timeout(timeout, tls.wrap(tcp))
                .await
                .map_err(|_| LinkError::Timeout(timeout))??,
            None => Box::new(tcp),
        };
        let mut framed = Framed::new(stream, SmppCodec::new(MAX_PDU));
        const BIND_SEQUENCE: u32 = 1;
        self.bind(&mut framed, BIND_SEQUENCE, timeout, peer).await?;
        *failures = 0;
        self.states.set(&self.role.label(&self.config.name), true);
        info!(smsc = %self.config.name, address = %self.config.address, role = self.role.as_str(), "bound");
        let c = &self.config;
        let policy = SessionConfig {
            window: c.window,
            max_tps: c.max_tps,
            response_timeout: timeout,
            enquire_every: Duration::from_secs(c.enquire_link_secs.max(1)),
            resend_after: Duration::from_secs(c.resend_after_secs),
            max_resends: c.max_resends,
        };
        let mut served = Served {
            link: self,
            framed,
            session: Session::new(policy, now(), BIND_SEQUENCE + 1),
            acks: FuturesUnordered::new(),
            recipients: HashMap::new(),
            unanswered,
            outbox_dirty: true,
            outbox_retry: None,
            store_down: false,
        };
        let ended = served.serve(stop).await;
        let open: Vec<(u64, u32)> = served
            .session
            .unfinished()
            .filter(|(_, copies)| *copies > 0)
            .collect();
        served.unanswered.extend(open);
        ended
    }

    async fn bind(
        &self,
        framed: &mut Framer,
        seq: u32,
        timeout: Duration,
        address: String,
    ) -> Result<(), LinkError> {
        let c = &self.config;
        let version = match c.interface_version.as_str() {
            "5.0" => InterfaceVersion::Smpp5_0,
            _ => InterfaceVersion::Smpp3_4,
        };
        macro_rules! bind_pdu {
            ($pdu:ident) => {
                Pdu::from(
                    $pdu::builder()
                        .system_id(c_string(&c.system_id))
                        .password(c_string(c.password.expose()))
                        .system_type(c_string(&c.system_type))
                        .interface_version(version)
                        .address_range(c_string(&c.address_range))
                        .build(),
                )
            };
        }
        let (bind, expected) = match self.role {
            Role::Transceiver => (bind_pdu!(BindTransceiver), CommandId::BindTransceiverResp),
            Role::Receiver => (bind_pdu!(BindReceiver), CommandId::BindReceiverResp),
            Role::Transmitter => (bind_pdu!(BindTransmitter), CommandId::BindTransmitterResp),
        };
        send(framed, Command::new(CommandStatus::EsmeRok, seq, bind)).await?;
        let answer = tokio::time::timeout(timeout, framed.next())
            .await
            .map_err(|_| LinkError::Timeout(timeout))?;
        match answer {
            Some(Ok(Inbound::Command(resp)))
                if resp.id() == expected && resp.sequence_number() == seq =>
            {
                if resp.status() == CommandStatus::EsmeRok {
                    Ok(())
                } else {
                    Err(LinkError::BindRefused {
                        address,
                        status: resp.status().into(),
                    })
                }
            }
            Some(Ok(other)) => {
                let id = match &other {
                    Inbound::Command(command) => u32::from(command.id()),
                    Inbound::Bad { header, .. } => header.command_id,
                };
                warn!(smsc = %c.name, command_id = format_args!("0x{id:08X}"), "unexpected answer to bind");
                Err(LinkError::Closed)
            }
            Some(Err(e)) => Err(e.into()),
            None => Err(LinkError::Closed),
        }
    }
}

/// A bound connection being served: bytes and timers in and out of its [`Session`].
struct Served<'a> {
    link: &'a SmscLink,
    framed: Framer,
    session: Session,
    /// deliver_sm and data_sm waiting for what they carry to be durable: (sequence number,
    /// which request, stored?).
    acks: FuturesUnordered<BoxFuture<'static, (u32, Carrier, bool)>>,
    /// Where each message handed to the session goes, for its sent record.
    recipients: HashMap<u64, Msisdn>,
    /// Copies per outbox message that went unanswered, kept across reconnects so the bound
    /// on copies holds when a slow SMSC also drops the link.
    unanswered: &'a mut HashMap<u64, u32>,
    outbox_dirty: bool,
    /// After the store failed: when the outbox may be read again.
    outbox_retry: Option<tokio::time::Instant>,
    /// The store failed and has not served the outbox since (one log line per outage).
    store_down: bool,
}

/// How often receipts that came before their resp are checked for the end of their grace.
const EARLY_RECEIPT_SWEEP: Duration = Duration::from_secs(5);

/// Time as the session sees it: tokio's clock, so tests that pause tokio's time drive it too.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl Served<'_> {
    async fn serve(&mut self, stop: &CancellationToken) -> Result<Ended, LinkError> {
        let mut queued = self.link.store.replies_queued();
        let mut sweep = tokio::time::interval(EARLY_RECEIPT_SWEEP);
        loop {
            // Before the outbox is read again: a finished message must leave it first. An
            // event the store failed on is dropped (see `store_failed`); the rest follow.
            let ended = loop {
                match self.on_events().await {
                    Err(LinkError::Store(e)) => self.store_failed(&e),
                    ended => break ended?,
                }
            };
            if stop.is_cancelled() && !self.session.is_closing() && self.acks.is_empty() {
                self.session.close(now());
            }
            if self.outbox_dirty
                && self.outbox_retry.is_none()
                && self.link.role.sends()
                && !stop.is_cancelled()
            {
                match self.fill_window().await {
                    Err(LinkError::Store(e)) => self.store_failed(&e),
                    filled => {
                        filled?;
                        if std::mem::take(&mut self.store_down) {
                            info!(smsc = %self.link.config.name, "store available again: replies resume");
                        }
                    }
                }
            }
            while let Some(command) = self.session.poll_transmit(now()) {
                send(&mut self.framed, command).await?;
            }
            if let Some(ended) = ended {
                return Ok(ended);
            }
            let wake = self
                .session
                .poll_timeout()
                .map(tokio::time::Instant::from_std);
            tokio::select! {
                inbound = self.framed.next() => match inbound {
                    Some(Ok(Inbound::Command(command))) => self.session.handle_command(now(), &command),
                    Some(Ok(Inbound::Bad { header, error })) => {
                        warn!(smsc = %self.link.config.name, command_id = format_args!("0x{:08X}", header.command_id), seq = header.sequence_number, %error, "malformed PDU");
                        self.session.handle_bad(now(), &header, error.status());
                    }
                    Some(Err(e)) => return Err(e.into()),
                    None => return Err(LinkError::Closed),
                },
                Some((seq, carrier, stored)) = self.acks.next(), if !self.acks.is_empty() => {
                    // `stored` is true only after the MO's inbox write (or the receipt's
                    // update) was flushed by the group commit: the SMSC may forget the message
                    // once it reads this OK. Otherwise it gets a temporary error and redelivers.
                    self.session.ack(seq, carrier, stored);
                }
                Ok(()) = queued.changed() => self.outbox_dirty = true,
                _ = sweep.tick() => self.expire_early_receipts(),
                _ = sleep_until(self.outbox_retry), if self.outbox_retry.is_some() => {
                    self.outbox_retry = None;
                    self.outbox_dirty = true;
                }
                _ = sleep_until(wake), if wake.is_some() => {
                    self.session.handle_timeout(now());
                    // A pause or a resend may have ended: the window may take messages again.
                    self.outbox_dirty = true;
                }
                _ = stop.cancelled(), if !stop.is_cancelled() => {}
            }
        }
    }

    /// The store failed on the outbox, a sent record or a receipt: the bind stays up (a
    /// database outage is not the SMSC's fault, and binding again would not cure it), and
    /// the outbox is read again after [`STORE_RETRY`]. What the failed call would have done
    /// is done again later or not at all, as after a reconnect: a message the SMSC took that
    /// could not leave the outbox is sent again (at least once), a sent record not written
    /// leaves its receipt unmatched.
    fn store_failed(&mut self, error: &StoreError) {
        if !std::mem::replace(&mut self.store_down, true) {
            warn!(smsc = %self.link.config.name, %error, retry_in_ms = STORE_RETRY.as_millis() as u64, "store unavailable: replies wait, the link stays bound");
        }
        self.outbox_retry = Some(tokio::time::Instant::now() + STORE_RETRY);
        self.outbox_dirty = true;
    }

    /// Hands outbox messages to the session while its window has room.
    async fn fill_window(&mut self) -> Result<(), LinkError> {
        let room = self.session.wants();
        if room == 0 {
            return Ok(());
        }
        let session = &self.session;
        let batch = self
            .link
            .store
            .pending_replies(&self.link.config.name, &|id| session.has(id), room)
            .await?;
        if !batch.is_empty() {
            // The pipeline commits an outcome before its batch's sync, so a reply can be
            // visible here before it is durable. Sent now and then lost in a crash, its MO
            // would be processed again: a second credential SMS with another password. The
            // sync is shared with any other waiting (group commit) and is next to free when
            // the pipeline's own has already covered it.
            self.link.store.sync().await?;
        }
        self.outbox_dirty = batch.len() == room;
        for (id, message) in batch {
            let segments = match submit_sms(id, &message, self.link.config.delivery_receipts) {
                Ok(segments) => segments,
                Err(e) => {
                    error!(smsc = %self.link.config.name, outbox = id, to = %message.to.masked(), error = %e, "reply dropped: it cannot be sent as SMS");
                    metrics::counter!("moauth_sms_failed_total", "smsc" => self.link.config.name.clone()).increment(1);
                    self.link.store.ack_reply(id).await?;
                    continue;
                }
            };
            let unanswered = self.unanswered.get(&id).copied().unwrap_or(0);
            if unanswered > self.link.config.max_resends {
                self.finished(id, Outcome::Unknown { copies: unanswered })
                    .await?;
                continue;
            }
            debug!(smsc = %self.link.config.name, outbox = id, to = %message.to.masked(), "submitting");
            self.recipients.insert(id, message.to);
            self.session.submit(id, segments, unanswered);
        }
        Ok(())
    }

    /// Acts on what the session decided; Some when the session is over.
    async fn on_events(&mut self) -> Result<Option<Ended>, LinkError> {
        let name = self.link.config.name.clone();
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::Deliver { seq, pdu } => {
                    self.on_message(seq, Carrier::DeliverSm, Carried::from(&*pdu))
                        .await?
                }
                Event::DataSm { seq, pdu } => {
                    self.on_message(seq, Carrier::DataSm, Carried::from(&*pdu))
                        .await?
                }
                Event::Accepted {
                    id,
                    message_id,
                    late,
                } => {
                    debug!(smsc = %name, outbox = id, %message_id, late, "accepted");
                    metrics::counter!("moauth_sms_sent_total", "smsc" => name.clone()).increment(1);
                    if let Some(to) = self.recipients.get(&id) {
                        let record = SentRecord {
                            to: to.clone(),
                            submitted_at: self.link.clock.now(),
                            outcome: None,
                        };
                        self.link
                            .store
                            .record_sent(&name, &message_id, &record)
                            .await?;
                        let early = self
                            .link
                            .early_receipts
                            .lock()
                            .expect("early receipts lock")
                            .take(&name, &message_id);
                        if let Some(receipt) = early {
                            self.settle(&[message_id], &receipt).await?;
                        }
                    }
                }
                Event::Finished { id, outcome } => self.finished(id, outcome).await?,
                Event::Throttled { id, status } => {
                    warn!(smsc = %name, outbox = id, status = %SmppStatus::from(status), "SMSC asks us to slow down");
                    metrics::counter!("moauth_sms_throttled_total", "smsc" => name.clone())
                        .increment(1);
                }
                Event::Refused { id, status, tries } => {
                    warn!(smsc = %name, outbox = id, status = %SmppStatus::from(status), tries, "temporary refusal; will retry");
                }
                Event::Unanswered { id, copies } => {
                    warn!(smsc = %name, outbox = id, copies, "submit_sm unanswered in time; the SMSC may have it: a late answer still counts");
                    metrics::counter!("moauth_sms_unanswered_total", "smsc" => name.clone())
                        .increment(1);
                }
                Event::Resent { id, copy } => {
                    warn!(smsc = %name, outbox = id, copy, "no answer to earlier copies; sending the message again");
                    metrics::counter!("moauth_sms_resent_total", "smsc" => name.clone())
                        .increment(1);
                }
                Event::Unexpected { seq, command_id } => {
                    if command_id == CommandId::EnquireLinkResp {
                        debug!(smsc = %name, seq, "late enquire_link_resp");
                    } else {
                        warn!(smsc = %name, command_id = format_args!("0x{:08X}", u32::from(command_id)), seq, "response to nothing we wait for");
                    }
                }
                Event::Unsupported { command_id } => {
                    warn!(smsc = %name, command_id = format_args!("0x{:08X}", u32::from(command_id)), "unsupported request");
                }
                Event::Ended(ended) => return Ok(Some(ended)),
            }
        }
        Ok(None)
    }

    /// The message needs nothing more from any connection: the SMSC has it, refused it, or
    /// may have it and we stop sending copies.
    /// One line per reply, by the SMPP name of the status that settled it: `reply accepted`
    /// (INFO) or `reply dropped` (ERROR), with the masked recipient, so an operator finds what
    /// became of the SMS a phone was sent by its number.
    async fn finished(&mut self, id: u64, outcome: Outcome) -> Result<(), LinkError> {
        let name = &self.link.config.name;
        let to = self.recipients.remove(&id).map(|to| to.masked());
        let to = to.as_deref();
        match outcome {
            Outcome::Accepted => {
                info!(smsc = %name, outbox = id, to, status = %super::status::OK_NAME, "reply accepted");
            }
            Outcome::Refused(status) => {
                let status = SmppStatus::from(status);
                error!(smsc = %name, outbox = id, to, status = %status.name(), meaning = status.meaning(), "reply dropped: the SMSC refused it for good");
                metrics::counter!("moauth_sms_failed_total", "smsc" => name.clone()).increment(1);
            }
            Outcome::KeptRefusing(status) => {
                let status = SmppStatus::from(status);
                error!(smsc = %name, outbox = id, to, status = %status.name(), meaning = status.meaning(), tries = TEMPORARY_TRIES, "reply dropped: the SMSC kept refusing it");
                metrics::counter!("moauth_sms_failed_total", "smsc" => name.clone()).increment(1);
            }
            Outcome::Unknown { copies } => {
                error!(smsc = %name, outbox = id, to, copies, "reply given up: no copy was answered; not sending it again (the SMSC may have it)");
                metrics::counter!("moauth_sms_unknown_total", "smsc" => name.clone()).increment(1);
            }
        }
        self.unanswered.remove(&id);
        self.link.store.ack_reply(id).await?;
        Ok(())
    }

    /// Records a receipt's outcome on the sent message it names; false when none is known.
    async fn settle(&mut self, ids: &[String], receipt: &Receipt) -> Result<bool, LinkError> {
        let name = &self.link.config.name;
        let Some(sent) = self
            .link
            .store
            .settle_sent(name, ids, &receipt.stat)
            .await?
        else {
            return Ok(false);
        };
        let stat = receipt_stat(&receipt.stat);
        metrics::counter!("moauth_dlr_total", "smsc" => name.clone(), "stat" => stat).increment(1);
        if receipt.delivered() {
            info!(smsc = %name, to = %sent.to.masked(), "delivered");
        } else {
            warn!(smsc = %name, to = %sent.to.masked(), stat = %receipt.stat, err = receipt.err.as_deref(), "not delivered");
        }
        Ok(true)
    }

    /// Receipts no submit_sm_resp claimed within their grace period.
    fn expire_early_receipts(&self) {
        let grace = self.receipt_grace();
        let expired = self
            .link
            .early_receipts
            .lock()
            .expect("early receipts lock")
            .expire(now(), grace);
        for (smsc, receipt) in expired {
            metrics::counter!("moauth_dlr_total", "smsc" => smsc.clone(), "stat" => "unmatched")
                .increment(1);
            warn!(smsc = %smsc, message_id = %receipt.message_id, "receipt for a message we do not know");
        }
    }

    /// A submit_sm_resp can come as late as the resend pause after its timeout.
    fn receipt_grace(&self) -> Duration {
        let c = &self.link.config;
        Duration::from_secs(c.response_timeout_secs + c.resend_after_secs)
    }

    /// An MO or a delivery receipt, from a deliver_sm or a data_sm.
    async fn on_message(
        &mut self,
        seq: u32,
        carrier: Carrier,
        message: Carried<'_>,
    ) -> Result<(), LinkError> {
        if message.esm_class & ESM_RECEIPT_MASK != 0 {
            return self.on_receipt(seq, carrier, &message).await;
        }
        let user_data = match message_payload(message.tlvs) {
            Some(payload) if message.short_message.is_empty() => payload,
            _ => message.short_message.to_vec(),
        };
        let mo = MoMessage {
            smsc: self.link.config.name.clone(),
            source_addr: message.source_addr,
            source_ton: message.source_ton,
            destination_addr: message.destination_addr,
            esm_class: message.esm_class,
            data_coding: self
                .link
                .config
                .default_alphabet
                .explicit(message.data_coding),
            user_data,
            sar: sar(message.tlvs),
            received_at: self.link.clock.now(),
        };
        let durable = self.link.ingest.store(mo).await;
        self.acks
            .push(async move { (seq, carrier, durable.await.unwrap_or(false)) }.boxed());
        Ok(())
    }

    /// Records how a message of ours ended; answers once that is durable, so an SMSC never
    /// forgets a receipt we did not keep.
    async fn on_receipt(
        &mut self,
        seq: u32,
        carrier: Carrier,
        message: &Carried<'_>,
    ) -> Result<(), LinkError> {
        let name = &self.link.config.name;
        let raw = match message_payload(message.tlvs) {
            Some(payload) if message.short_message.is_empty() => payload,
            _ => message.short_message.to_vec(),
        };
        let data_coding = self
            .link
            .config
            .default_alphabet
            .explicit(message.data_coding);
        let text = text::decode(data_coding, &raw)
            .unwrap_or_else(|_| String::from_utf8_lossy(&raw).into_owned());
        let (mut receipted_id, mut state) = (None, None);
        for tlv in message.tlvs {
            match tlv.value() {
                Some(TlvValue::ReceiptedMessageId(id)) => receipted_id = Some(id.to_string()),
                Some(TlvValue::MessageState(s)) => state = Some(u8::from(*s)),
                _ => {}
            }
        }
        match Receipt::parse(&text, receipted_id.as_deref(), state) {
            Some(receipt) => match self.settle(&receipt.candidate_ids(), &receipt).await {
                Ok(true) => {}
                Ok(false) => {
                    // Its submit_sm_resp may still be on its way (on the other connection of
                    // a pair, or late): kept in memory until it comes or the grace runs out.
                    debug!(smsc = %name, message_id = %receipt.message_id, "receipt before its submit_sm_resp; kept");
                    self.link
                        .early_receipts
                        .lock()
                        .expect("early receipts lock")
                        .keep(name, receipt, now());
                }
                Err(LinkError::Store(e)) => {
                    // Nothing recorded: a temporary error, and the SMSC sends it again.
                    self.store_failed(&e);
                    let refused = futures::future::ready((seq, carrier, false));
                    self.acks.push(refused.boxed());
                    return Ok(());
                }
                Err(e) => return Err(e),
            },
            None => warn!(smsc = %name, "delivery receipt without a message id"),
        }
        let durable = self.link.ingest.flushed().await;
        // Answered OK only after the flush that covers the receipt's update (an early receipt
        // is only in memory: a crash within its grace period loses it).
        self.acks
            .push(async move { (seq, carrier, durable.await.unwrap_or(false)) }.boxed());
        Ok(())
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at).await;
    }
}

/// A receipt's final state as a metric label: one of the SMPP words, lower case, so the
/// label set stays small whatever an SMSC writes.
fn receipt_stat(stat: &str) -> &'static str {
    const KNOWN: [&str; 8] = [
        "delivrd", "expired", "deleted", "undeliv", "acceptd", "unknown", "rejectd", "enroute",
    ];
    KNOWN
        .into_iter()
        .find(|known| stat.eq_ignore_ascii_case(known))
        .unwrap_or("other")
}

/// What deliver_sm and data_sm both carry, as far as moauth reads them. A data_sm has no
/// short_message: its text is in message_payload.
struct Carried<'a> {
    source_addr: String,
    source_ton: u8,
    destination_addr: String,
    esm_class: u8,
    data_coding: u8,
    short_message: &'a [u8],
    tlvs: &'a [Tlv],
}

impl<'a> From<&'a DeliverSm> for Carried<'a> {
    fn from(pdu: &'a DeliverSm) -> Self {
        Carried {
            source_addr: pdu.source_addr.to_string(),
            source_ton: u8::from(pdu.source_addr_ton),
            destination_addr: pdu.destination_addr.to_string(),
            esm_class: u8::from(pdu.esm_class),
            data_coding: u8::from(pdu.data_coding),
            short_message: pdu.short_message().as_ref(),
            tlvs: pdu.tlvs(),
        }
    }
}

impl<'a> From<&'a DataSm> for Carried<'a> {
    fn from(pdu: &'a DataSm) -> Self {
        Carried {
            source_addr: pdu.source_addr.to_string(),
            source_ton: u8::from(pdu.source_addr_ton),
            destination_addr: pdu.destination_addr.to_string(),
            esm_class: u8::from(pdu.esm_class),
            data_coding: u8::from(pdu.data_coding),
            short_message: &[],
            tlvs: pdu.tlvs(),
        }
    }
}

/// Part numbering from sar_msg_ref_num / sar_total_segments / sar_segment_seqnum, when all three
/// are present.
fn sar(tlvs: &[Tlv]) -> Option<Concat> {
    let (mut reference, mut total, mut seq) = (None, None, None);
    for tlv in tlvs {
        match tlv.value() {
            Some(TlvValue::SarMsgRefNum(v)) => reference = Some(*v),
            Some(TlvValue::SarTotalSegments(v)) => total = Some(*v),
            Some(TlvValue::SarSegmentSeqnum(v)) => seq = Some(*v),
            _ => {}
        }
    }
    Some(Concat {
        reference: reference?,
        total: total?,
        seq: seq?,
    })
}

fn message_payload(tlvs: &[Tlv]) -> Option<Vec<u8>> {
    tlvs.iter().find_map(|tlv| match tlv.value() {
        Some(TlvValue::MessagePayload(payload)) => Some(payload.value.as_ref().to_vec()),
        _ => None,
    })
}

/// The submit_sm PDUs for one outbox message: one per segment, all carrying the same
/// concatenation reference (taken from the outbox id, so a resend reuses it).
fn submit_sms(
    id: u64,
    message: &Outbound,
    receipts: bool,
) -> Result<Vec<SubmitSm>, text::TextError> {
    Ok(text::encode_sms(&message.text, id as u8)?
        .into_iter()
        .map(|segment| {
            SubmitSm::builder()
                .source_addr_ton(Ton::Unknown)
                .source_addr_npi(Npi::Unknown)
                .source_addr(c_string(&message.from))
                .dest_addr_ton(Ton::International)
                .dest_addr_npi(Npi::Isdn)
                .destination_addr(c_string(message.to.digits()))
                .esm_class(EsmClass::from(if segment.esm_class_udhi {
                    ESM_UDHI
                } else {
                    0
                }))
                .data_coding(DataCoding::from(segment.data_coding))
                .registered_delivery(RegisteredDelivery::from(u8::from(receipts)))
                .short_message(
                    OctetString::from_vec(segment.short_message)
                        .expect("segments are at most 140 octets"),
                )
                .build()
        })
        .collect())
}

/// Config values are validated for length and ASCII at load time.
fn c_string<const MIN: usize, const MAX: usize>(s: &str) -> COctetString<MIN, MAX> {
    COctetString::from_str(s).unwrap_or_else(|_| COctetString::empty())
}

async fn send(framed: &mut Framer, command: Command) -> Result<(), LinkError> {
    framed
        .send(command)
        .await
        .map_err(|e| LinkError::Send(e.to_string()))
}

/// The pause after the SMSC refused our credentials (ESME_RINVPASWD, ESME_RINVSYSID,
/// ESME_RINVSYSTYP).
pub const AUTH_RETRY: Duration = Duration::from_secs(300);

/// 0.5 s doubling to 60 s, with full jitter so a fleet restarting together spreads out.
fn backoff(failures: u32) -> Duration {
    let ceiling = Duration::from_millis(500)
        .saturating_mul(1u32 << failures.min(7))
        .min(Duration::from_secs(60));
    let millis = ceiling.as_millis() as u64;
    Duration::from_millis(millis / 2 + rand::random_range(0..=millis / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_a_ceiling_with_jitter() {
        for failures in 0..20 {
            let d = backoff(failures);
            let ceiling =
                Duration::from_millis(500 * (1u64 << failures.min(7))).min(Duration::from_secs(60));
            assert!(d <= ceiling && d >= ceiling / 2, "{failures}: {d:?}");
        }
    }
}
