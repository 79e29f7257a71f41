//! One bound SMPP session as a state machine without I/O, in the manner of quinn-proto: the
//! link feeds it what arrived (`handle_command`, `handle_bad`), what became durable
//! (`ack_deliver`) and the passing of time (`handle_timeout`), always with `now`; it answers
//! with PDUs to write (`poll_transmit`), the next moment it needs waking (`poll_timeout`) and
//! what happened (`poll_event`). Every protocol decision lives here — the submit window
//! (counted in PDUs), the TPS pacing, throttle and retry policy, what a submit_sm that went
//! unanswered means, the enquire_link schedule and unbind — so tests drive it on virtual time.
//!
//! A submit_sm whose response does not come within the response timeout is *unknown*, not
//! failed: the SMSC may have accepted it and only be slow. Its sequence number is kept, so a
//! late answer still settles the message; a copy goes again only `resend_after` later, at
//! most `max_resends` times; after that the message is given up. At most `1 + max_resends`
//! copies of a message whose answers never come are sent on one session.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use rusmpp::pdus::{DataSm, DataSmResp, DeliverSm, DeliverSmResp, SubmitSm};
use rusmpp::{Command, CommandId, CommandStatus, Pdu};

use super::frame::Header;

/// After ESME_RTHROTTLED or ESME_RMSGQFUL nothing is submitted for this long.
pub const THROTTLE_PAUSE: Duration = Duration::from_secs(1);
/// Attempts for a message the SMSC refuses with a temporary error (system error, submit
/// failed, application error) before it is dropped as failed; the pause grows each time.
pub const TEMPORARY_TRIES: u32 = 4;
/// How long an unbind may go unanswered before the session counts as closed anyway.
pub const UNBIND_WAIT: Duration = Duration::from_secs(2);

/// The policy a session runs under, from the SMSC's config.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Most submit_sm PDUs awaiting their response at once.
    pub window: usize,
    /// submit_sm per second; 0 for no cap.
    pub max_tps: u32,
    pub response_timeout: Duration,
    pub enquire_every: Duration,
    /// Pause after a copy went unanswered before the next goes (or the message is given up).
    pub resend_after: Duration,
    pub max_resends: u32,
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Our unbind was answered (or not, within [`UNBIND_WAIT`]).
    Stopped,
    UnboundByPeer,
    /// An enquire_link went unanswered and nothing else was heard meanwhile.
    Dead,
}

/// How an outbox message left the session for good: the link removes it from the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every segment accepted.
    Accepted,
    /// Refused with a status that says trying again will not help.
    Refused(CommandStatus),
    /// Refused temporarily [`TEMPORARY_TRIES`] times.
    KeptRefusing(CommandStatus),
    /// Every copy went unanswered: the SMSC may or may not have it.
    Unknown { copies: u32 },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A deliver_sm from the SMSC: answer it with [`Session::ack`] once what it carries is
    /// durable.
    Deliver {
        seq: u32,
        pdu: Box<DeliverSm>,
    },
    /// A data_sm from the SMSC (SMPP 3.4 lets it carry MOs and receipts): the same, with a
    /// data_sm_resp.
    DataSm {
        seq: u32,
        pdu: Box<DataSm>,
    },
    /// A segment of message `id` was accepted under `message_id`; `late` when its answer came
    /// after the response timeout.
    Accepted {
        id: u64,
        message_id: String,
        late: bool,
    },
    /// Message `id` needs nothing more from this session.
    Finished {
        id: u64,
        outcome: Outcome,
    },
    /// The SMSC asked us to slow down; the message goes again after the pause.
    Throttled {
        id: u64,
        status: CommandStatus,
    },
    /// A temporary refusal; the message goes again after a growing pause.
    Refused {
        id: u64,
        status: CommandStatus,
        tries: u32,
    },
    /// A copy of message `id` went unanswered within the response timeout: its fate is
    /// unknown. `copies` is how many copies so far had no answer.
    Unanswered {
        id: u64,
        copies: u32,
    },
    /// Another copy of a message whose earlier copies went unanswered is going out.
    Resent {
        id: u64,
        copy: u32,
    },
    /// A response that matches no request of ours (or one settled long ago).
    Unexpected {
        seq: u32,
        command_id: CommandId,
    },
    /// A request this ESME does not serve; answered with generic_nack.
    Unsupported {
        command_id: CommandId,
    },
    Ended(Ended),
}

/// The requests from the SMSC that carry a message for us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound {
    DeliverSm,
    DataSm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Bound,
    Unbinding,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Request {
    Submit { id: u64, segment: usize },
    EnquireLink,
    Unbind,
}

/// An outbox message the session is responsible for until [`Event::Finished`].
#[derive(Debug)]
struct Message {
    segments: Vec<SubmitSm>,
    accepted: Vec<bool>,
    /// Segments of the current copy sent and not yet answered.
    in_flight: usize,
    /// Segments of the current copy still waiting for the window or the pacer.
    queued: usize,
    /// A segment of the current copy was refused for now, or went unanswered.
    retry: bool,
    timed_out: bool,
    /// A final refusal of some segment.
    refused: Option<CommandStatus>,
    /// Temporary refusals so far.
    refusals: u32,
    /// Copies that went unanswered, including those of earlier sessions.
    unanswered: u32,
    /// When the next copy goes (or the message is given up), after one went unanswered.
    resend_at: Option<Instant>,
}

#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    state: State,
    next_sequence: u32,
    outstanding: HashMap<u32, (Request, Instant)>,
    /// Sequence numbers of submits that timed out, kept so a late answer is still matched.
    late: HashMap<u32, (u64, usize)>,
    messages: HashMap<u64, Message>,
    /// Submit segments waiting for the window, the pacer or a pause.
    ready: VecDeque<(u64, usize)>,
    /// Everything else to write, in order: answers, enquire_link, unbind.
    out: VecDeque<Command>,
    events: VecDeque<Event>,
    pacer: Pacer,
    paused_until: Option<Instant>,
    next_enquire: Instant,
    last_heard: Instant,
}

/// Spaces submit_sm evenly at the carrier's TPS cap: each PDU books the next free slot, so
/// the rate holds over any stretch of time and there is no burst after an idle spell.
#[derive(Debug)]
struct Pacer {
    interval: Duration,
    next_free: Option<Instant>,
}

impl Pacer {
    fn free_at(&self, now: Instant) -> Option<Instant> {
        self.next_free.filter(|at| *at > now)
    }

    fn book(&mut self, now: Instant) {
        if !self.interval.is_zero() {
            let start = self.next_free.map_or(now, |at| at.max(now));
            self.next_free = Some(start + self.interval);
        }
    }
}

impl Session {
    /// A session whose bind was just accepted at `now`; `first_sequence` follows the bind's.
    pub fn new(config: SessionConfig, now: Instant, first_sequence: u32) -> Self {
        let interval = if config.max_tps == 0 {
            Duration::ZERO
        } else {
            Duration::from_secs(1) / config.max_tps
        };
        Session {
            next_enquire: now + config.enquire_every,
            config,
            state: State::Bound,
            next_sequence: first_sequence,
            outstanding: HashMap::new(),
            late: HashMap::new(),
            messages: HashMap::new(),
            ready: VecDeque::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            pacer: Pacer {
                interval,
                next_free: None,
            },
            paused_until: None,
            last_heard: now,
        }
    }

    /// SMPP sequence numbers run 1..=0x7FFFFFFF and then wrap.
    pub fn next_sequence(&mut self) -> u32 {
        let seq = self.next_sequence;
        self.next_sequence = if seq >= 0x7FFF_FFFF { 1 } else { seq + 1 };
        seq
    }

    /// How many more outbox messages the session takes now: the window's free PDUs, minus
    /// segments already waiting. The link hands over at most this many.
    pub fn wants(&self) -> usize {
        if self.state != State::Bound {
            return 0;
        }
        self.config
            .window
            .saturating_sub(self.submits_in_flight() + self.ready.len())
    }

    /// Whether message `id` is the session's to send: the link must not hand it over again.
    pub fn has(&self, id: u64) -> bool {
        self.messages.contains_key(&id)
    }

    /// Messages handed over and not finished, so the link can count unanswered copies of them
    /// if the session ends first.
    pub fn unfinished(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        self.messages.iter().map(|(id, m)| {
            // A copy in flight when the session ends may or may not have reached the SMSC.
            let open = u32::from(m.in_flight > 0 && !m.timed_out);
            (*id, m.unanswered + open)
        })
    }

    /// Takes outbox message `id`, already split into its submit_sm segments. `unanswered` is
    /// how many of its copies went unanswered on earlier sessions: they count against
    /// `max_resends`.
    pub fn submit(&mut self, id: u64, segments: Vec<SubmitSm>, unanswered: u32) {
        if self.messages.contains_key(&id) || segments.is_empty() {
            return;
        }
        let count = segments.len();
        self.messages.insert(
            id,
            Message {
                accepted: vec![false; count],
                segments,
                in_flight: 0,
                queued: 0,
                retry: false,
                timed_out: false,
                refused: None,
                refusals: 0,
                unanswered,
                resend_at: None,
            },
        );
        self.queue_copy(id);
    }

    /// Queues every segment of `id` not yet accepted.
    fn queue_copy(&mut self, id: u64) {
        let Some(message) = self.messages.get_mut(&id) else {
            return;
        };
        message.retry = false;
        message.timed_out = false;
        message.resend_at = None;
        for (segment, accepted) in message.accepted.iter().enumerate() {
            if !accepted {
                self.ready.push_back((id, segment));
                message.queued += 1;
            }
        }
    }

    /// Answers the deliver_sm or data_sm `seq`: OK when what it carried is durable, else a
    /// temporary error so the SMSC delivers it again.
    pub fn ack(&mut self, seq: u32, request: Inbound, stored: bool) {
        let status = if stored {
            CommandStatus::EsmeRok
        } else {
            CommandStatus::EsmeRxTAppn
        };
        let answer = match request {
            Inbound::DeliverSm => Command::new(status, seq, DeliverSmResp::default()),
            Inbound::DataSm => Command::new(status, seq, DataSmResp::default()),
        };
        self.out.push_back(answer);
    }

    /// Starts an orderly end: nothing more is submitted, and the session ends when the
    /// SMSC answers the unbind (or after [`UNBIND_WAIT`]).
    pub fn close(&mut self, now: Instant) {
        if self.state != State::Bound {
            return;
        }
        self.state = State::Unbinding;
        let seq = self.request(Request::Unbind, now);
        self.out
            .push_back(Command::new(CommandStatus::EsmeRok, seq, Pdu::Unbind));
    }

    pub fn is_closing(&self) -> bool {
        self.state != State::Bound
    }

    /// A PDU the link could not decode: answered with the status the framing chose.
    pub fn handle_bad(&mut self, now: Instant, header: &Header, status: CommandStatus) {
        self.last_heard = now;
        if let Some(answer) = header.reject(status) {
            self.out.push_back(answer);
        }
    }

    /// A PDU from the SMSC.
    pub fn handle_command(&mut self, now: Instant, command: &Command) {
        self.last_heard = now;
        let seq = command.sequence_number();
        match command.pdu() {
            Some(Pdu::DeliverSm(deliver)) => self.events.push_back(Event::Deliver {
                seq,
                pdu: Box::new(deliver.clone()),
            }),
            Some(Pdu::DataSm(data)) => self.events.push_back(Event::DataSm {
                seq,
                pdu: Box::new(data.clone()),
            }),
            // SMPP defines no response to alert_notification; one would confuse the SMSC.
            Some(Pdu::AlertNotification(_)) => {}
            Some(Pdu::EnquireLink) => {
                self.out.push_back(Command::new(
                    CommandStatus::EsmeRok,
                    seq,
                    Pdu::EnquireLinkResp,
                ));
            }
            Some(Pdu::Unbind) => {
                self.out
                    .push_back(Command::new(CommandStatus::EsmeRok, seq, Pdu::UnbindResp));
                self.end(Ended::UnboundByPeer);
            }
            _ if is_response(command.id()) => self.handle_response(now, command),
            _ => {
                self.events.push_back(Event::Unsupported {
                    command_id: command.id(),
                });
                self.out.push_back(Command::new(
                    CommandStatus::EsmeRinvcmdid,
                    seq,
                    Pdu::GenericNack,
                ));
            }
        }
    }

    fn end(&mut self, how: Ended) {
        if self.state != State::Closed {
            self.state = State::Closed;
            self.events.push_back(Event::Ended(how));
        }
    }

    fn handle_response(&mut self, now: Instant, command: &Command) {
        let seq = command.sequence_number();
        if let Some((request, _)) = self.outstanding.remove(&seq) {
            match request {
                Request::EnquireLink => {}
                Request::Unbind => self.end(Ended::Stopped),
                Request::Submit { id, segment } => {
                    if let Some(message) = self.messages.get_mut(&id) {
                        message.in_flight -= 1;
                    }
                    self.submit_answered(now, id, segment, command, false);
                }
            }
        } else if let Some((id, segment)) = self.late.remove(&seq) {
            self.submit_answered(now, id, segment, command, true);
        } else {
            self.events.push_back(Event::Unexpected {
                seq,
                command_id: command.id(),
            });
        }
    }

    fn submit_answered(
        &mut self,
        now: Instant,
        id: u64,
        segment: usize,
        command: &Command,
        late: bool,
    ) {
        let status = command.status();
        let Some(message) = self.messages.get_mut(&id) else {
            return;
        };
        match status {
            CommandStatus::EsmeRok => {
                let message_id = match command.pdu() {
                    Some(Pdu::SubmitSmResp(resp)) => resp.message_id().to_string(),
                    _ => String::new(),
                };
                if !message.accepted[segment] {
                    message.accepted[segment] = true;
                    self.events.push_back(Event::Accepted {
                        id,
                        message_id,
                        late,
                    });
                }
            }
            // A late refusal of a copy we already gave up waiting for changes nothing.
            _ if late => {}
            CommandStatus::EsmeRthrottled | CommandStatus::EsmeRmsgqful => {
                message.retry = true;
                self.paused_until = Some(now + THROTTLE_PAUSE);
                self.events.push_back(Event::Throttled { id, status });
            }
            CommandStatus::EsmeRsyserr
            | CommandStatus::EsmeRsubmitfail
            | CommandStatus::EsmeRxTAppn
            | CommandStatus::EsmeRdeliveryfailure => {
                message.refusals += 1;
                let tries = message.refusals;
                if tries < TEMPORARY_TRIES {
                    message.retry = true;
                    self.paused_until = Some(now + THROTTLE_PAUSE * tries);
                    self.events.push_back(Event::Refused { id, status, tries });
                } else {
                    message.refused = Some(status);
                }
            }
            _ => message.refused = Some(status),
        }
        self.settle(now, id);
    }

    /// Decides what comes next for message `id` once its current copy is all answered (or
    /// a late answer arrives for an earlier one).
    fn settle(&mut self, now: Instant, id: u64) {
        let Some(message) = self.messages.get_mut(&id) else {
            return;
        };
        let outcome = if message.accepted.iter().all(|a| *a) {
            Some(Outcome::Accepted)
        } else if message.in_flight > 0 || message.queued > 0 || message.resend_at.is_some() {
            None
        } else if let Some(status) = message.refused {
            Some(if message.refusals >= TEMPORARY_TRIES {
                Outcome::KeptRefusing(status)
            } else {
                Outcome::Refused(status)
            })
        } else if message.timed_out {
            message.resend_at = Some(now + self.config.resend_after);
            None
        } else if message.retry {
            self.queue_copy(id);
            None
        } else {
            None
        };
        if let Some(outcome) = outcome {
            self.finish(id, outcome);
        }
    }

    fn finish(&mut self, id: u64, outcome: Outcome) {
        self.messages.remove(&id);
        self.late.retain(|_, (late_id, _)| *late_id != id);
        self.outstanding
            .retain(|_, (r, _)| !matches!(r, Request::Submit { id: i, .. } if *i == id));
        self.ready.retain(|(ready_id, _)| *ready_id != id);
        self.events.push_back(Event::Finished { id, outcome });
    }

    fn request(&mut self, request: Request, now: Instant) -> u32 {
        let seq = self.next_sequence();
        self.outstanding.insert(seq, (request, now));
        seq
    }

    fn submits_in_flight(&self) -> usize {
        self.outstanding
            .values()
            .filter(|(r, _)| matches!(r, Request::Submit { .. }))
            .count()
    }

    /// Time has come to `now`: overdue requests, the enquire_link probe, resends.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.paused_until.is_some_and(|until| until <= now) {
            self.paused_until = None;
        }
        let overdue: Vec<(u32, Request, Instant)> = self
            .outstanding
            .iter()
            .filter(|(_, (r, sent))| now >= *sent + self.wait_for(*r))
            .map(|(seq, (r, sent))| (*seq, *r, *sent))
            .collect();
        for (seq, request, sent) in overdue {
            self.outstanding.remove(&seq);
            match request {
                Request::Submit { id, segment } => {
                    self.late.insert(seq, (id, segment));
                    if let Some(message) = self.messages.get_mut(&id) {
                        message.in_flight -= 1;
                        if !message.timed_out {
                            message.timed_out = true;
                            message.unanswered += 1;
                            self.events.push_back(Event::Unanswered {
                                id,
                                copies: message.unanswered,
                            });
                        }
                    }
                    self.settle(now, id);
                }
                // A slow SMSC that still talks is alive; a silent one is not.
                Request::EnquireLink if self.last_heard > sent => {}
                Request::EnquireLink => self.end(Ended::Dead),
                Request::Unbind => self.end(Ended::Stopped),
            }
        }
        let due: Vec<u64> = self
            .messages
            .iter()
            .filter(|(_, m)| m.resend_at.is_some_and(|at| at <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let message = &self.messages[&id];
            if message.unanswered > self.config.max_resends {
                let copies = message.unanswered;
                self.finish(id, Outcome::Unknown { copies });
            } else {
                let copy = message.unanswered + 1;
                self.events.push_back(Event::Resent { id, copy });
                self.queue_copy(id);
            }
        }
        if self.state == State::Bound && now >= self.next_enquire {
            self.next_enquire = now + self.config.enquire_every;
            let probing = self
                .outstanding
                .values()
                .any(|(r, _)| *r == Request::EnquireLink);
            if !probing {
                let seq = self.request(Request::EnquireLink, now);
                self.out
                    .push_back(Command::new(CommandStatus::EsmeRok, seq, Pdu::EnquireLink));
            }
        }
    }

    fn wait_for(&self, request: Request) -> Duration {
        match request {
            Request::Unbind => UNBIND_WAIT,
            _ => self.config.response_timeout,
        }
    }

    /// The next PDU to write, if any may go at `now`.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Command> {
        if let Some(command) = self.out.pop_front() {
            return Some(command);
        }
        if !self.may_submit(now) {
            return None;
        }
        let (id, segment) = self.ready.pop_front()?;
        let message = self.messages.get_mut(&id)?;
        message.queued -= 1;
        message.in_flight += 1;
        let pdu = message.segments[segment].clone();
        self.pacer.book(now);
        let seq = self.request(Request::Submit { id, segment }, now);
        Some(Command::new(CommandStatus::EsmeRok, seq, pdu))
    }

    fn may_submit(&self, now: Instant) -> bool {
        self.state == State::Bound
            && !self.ready.is_empty()
            && self.paused_until.is_none_or(|until| until <= now)
            && self.pacer.free_at(now).is_none()
            && self.submits_in_flight() < self.config.window
    }

    /// When [`Session::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == State::Closed {
            return None;
        }
        let mut next = self
            .outstanding
            .values()
            .map(|(r, sent)| *sent + self.wait_for(*r))
            .chain(self.messages.values().filter_map(|m| m.resend_at))
            .min();
        let mut consider = |at: Option<Instant>| {
            if let Some(at) = at {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        };
        if self.state == State::Bound {
            consider(Some(self.next_enquire));
            // With the window full, the next answer (or its timeout) is what frees a slot.
            if !self.ready.is_empty() && self.submits_in_flight() < self.config.window {
                consider(self.paused_until);
                consider(self.pacer.next_free);
            }
        }
        next
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}

fn is_response(id: CommandId) -> bool {
    u32::from(id) & 0x8000_0000 != 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusmpp::pdus::SubmitSmResp;
    use rusmpp::types::{COctetString, OctetString};
    use std::str::FromStr;

    fn config() -> SessionConfig {
        SessionConfig {
            window: 2,
            max_tps: 0,
            response_timeout: Duration::from_secs(10),
            enquire_every: Duration::from_secs(30),
            resend_after: Duration::from_secs(60),
            max_resends: 1,
        }
    }

    fn segments(n: usize) -> Vec<SubmitSm> {
        (0..n)
            .map(|i| {
                SubmitSm::builder()
                    .short_message(OctetString::from_vec(vec![i as u8]).unwrap())
                    .build()
            })
            .collect()
    }

    fn ok(seq: u32, message_id: &str) -> Command {
        Command::new(
            CommandStatus::EsmeRok,
            seq,
            SubmitSmResp::builder()
                .message_id(COctetString::from_str(message_id).unwrap())
                .build(),
        )
    }

    fn status(seq: u32, status: CommandStatus) -> Command {
        Command::new(status, seq, SubmitSmResp::default())
    }

    /// Every PDU the session would write at `now`.
    fn sent(s: &mut Session, now: Instant) -> Vec<Command> {
        std::iter::from_fn(|| s.poll_transmit(now)).collect()
    }

    fn submits(s: &mut Session, now: Instant) -> Vec<Command> {
        sent(s, now)
            .into_iter()
            .filter(|c| c.id() == CommandId::SubmitSm)
            .collect()
    }

    fn events(s: &mut Session) -> Vec<Event> {
        std::iter::from_fn(|| s.poll_event()).collect()
    }

    fn seqs(commands: &[Command]) -> Vec<u32> {
        commands.iter().map(Command::sequence_number).collect()
    }

    #[test]
    fn sequence_numbers_wrap_within_the_valid_range() {
        let mut s = Session::new(config(), Instant::now(), 0x7FFF_FFFF);
        assert_eq!(s.next_sequence(), 0x7FFF_FFFF);
        assert_eq!(s.next_sequence(), 1);
    }

    #[test]
    fn the_window_counts_pdus_and_responses_free_it() {
        let t0 = Instant::now();
        let mut s = Session::new(config(), t0, 2);
        assert_eq!(s.wants(), 2);
        s.submit(1, segments(3), 0);
        assert_eq!(s.wants(), 0, "three segments fill a window of two");
        let first = sent(&mut s, t0);
        assert_eq!(seqs(&first), [2, 3], "only two PDUs in flight");
        s.handle_command(t0, &ok(2, "a"));
        let next = sent(&mut s, t0);
        assert_eq!(seqs(&next), [4]);
        s.handle_command(t0, &ok(3, "b"));
        s.handle_command(t0, &ok(4, "c"));
        let ev = events(&mut s);
        assert_eq!(ev.len(), 4, "{ev:?}");
        assert_eq!(
            ev[3],
            Event::Finished {
                id: 1,
                outcome: Outcome::Accepted
            }
        );
        assert!(!s.has(1));
        assert_eq!(s.wants(), 2);
    }

    #[test]
    fn pacing_spaces_submits_at_the_cap() {
        let t0 = Instant::now();
        let mut s = Session::new(
            SessionConfig {
                window: 10,
                max_tps: 4,
                ..config()
            },
            t0,
            1,
        );
        s.submit(1, segments(3), 0);
        assert_eq!(sent(&mut s, t0).len(), 1);
        assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_millis(250)));
        let t1 = t0 + Duration::from_millis(250);
        assert_eq!(sent(&mut s, t1).len(), 1);
        let later = t0 + Duration::from_secs(5);
        assert_eq!(
            sent(&mut s, later).len(),
            1,
            "idle time is not saved up as a burst"
        );
        s.submit(2, segments(1), 0);
        assert!(sent(&mut s, later).is_empty());
        assert_eq!(sent(&mut s, later + Duration::from_millis(250)).len(), 1);
    }

    #[test]
    fn a_throttled_segment_waits_out_the_pause_and_goes_again() {
        let t0 = Instant::now();
        let mut s = Session::new(config(), t0, 1);
        s.submit(7, segments(1), 0);
        let first = sent(&mut s, t0);
        s.handle_command(
            t0,
            &status(first[0].sequence_number(), CommandStatus::EsmeRthrottled),
        );
        assert!(sent(&mut s, t0).is_empty(), "nothing goes during the pause");
        assert_eq!(s.poll_timeout(), Some(t0 + THROTTLE_PAUSE));
        let t1 = t0 + THROTTLE_PAUSE;
        s.handle_timeout(t1);
        let again = sent(&mut s, t1);
        assert_eq!(again.len(), 1);
        s.handle_command(t1, &ok(again[0].sequence_number(), "x"));
        let ev = events(&mut s);
        assert!(matches!(ev[0], Event::Throttled { id: 7, .. }));
        assert_eq!(
            ev.last(),
            Some(&Event::Finished {
                id: 7,
                outcome: Outcome::Accepted
            })
        );
    }

    #[test]
    fn temporary_refusals_are_retried_a_few_times_then_dropped() {
        let mut now = Instant::now();
        let quiet = SessionConfig {
            enquire_every: Duration::from_secs(3600),
            ..config()
        };
        let mut s = Session::new(quiet, now, 1);
        s.submit(3, segments(1), 0);
        for _ in 0..TEMPORARY_TRIES {
            now += Duration::from_secs(10);
            s.handle_timeout(now);
            let out = submits(&mut s, now);
            assert_eq!(out.len(), 1);
            s.handle_command(
                now,
                &status(out[0].sequence_number(), CommandStatus::EsmeRsyserr),
            );
        }
        assert_eq!(
            events(&mut s).last(),
            Some(&Event::Finished {
                id: 3,
                outcome: Outcome::KeptRefusing(CommandStatus::EsmeRsyserr)
            })
        );
    }

    #[test]
    fn a_final_refusal_finishes_the_message_at_once() {
        let t0 = Instant::now();
        let mut s = Session::new(config(), t0, 1);
        s.submit(3, segments(1), 0);
        let out = sent(&mut s, t0);
        s.handle_command(
            t0,
            &status(out[0].sequence_number(), CommandStatus::EsmeRinvdstadr),
        );
        assert_eq!(
            events(&mut s),
            [Event::Finished {
                id: 3,
                outcome: Outcome::Refused(CommandStatus::EsmeRinvdstadr)
            }]
        );
    }

    #[test]
    fn a_late_answer_settles_a_submit_that_timed_out_and_no_copy_goes() {
        let t0 = Instant::now();
        let mut s = Session::new(config(), t0, 1);
        s.submit(5, segments(1), 0);
        let out = sent(&mut s, t0);
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(s.poll_timeout(), Some(t1));
        s.handle_timeout(t1);
        assert_eq!(events(&mut s), [Event::Unanswered { id: 5, copies: 1 }]);
        assert!(sent(&mut s, t1).is_empty(), "no copy before resend_after");
        assert_eq!(s.wants(), 2, "an unknown submit holds no window");
        let t2 = t1 + Duration::from_secs(3);
        s.handle_command(t2, &ok(out[0].sequence_number(), "late"));
        assert_eq!(
            events(&mut s),
            [
                Event::Accepted {
                    id: 5,
                    message_id: "late".into(),
                    late: true
                },
                Event::Finished {
                    id: 5,
                    outcome: Outcome::Accepted
                }
            ]
        );
        s.handle_timeout(t1 + Duration::from_secs(120));
        assert!(
            sent(&mut s, t1 + Duration::from_secs(120))
                .iter()
                .all(|c| c.id() == CommandId::EnquireLink)
        );
    }

    #[test]
    fn unanswered_copies_are_bounded_paced_and_then_given_up() {
        let t0 = Instant::now();
        let mut s = Session::new(
            SessionConfig {
                max_resends: 2,
                enquire_every: Duration::from_secs(3600),
                ..config()
            },
            t0,
            1,
        );
        s.submit(9, segments(1), 0);
        let mut copies = Vec::new();
        let mut now = t0;
        while s.has(9) {
            copies.extend(
                submits(&mut s, now)
                    .into_iter()
                    .map(|c| (now, c.sequence_number())),
            );
            let Some(next) = s.poll_timeout() else { break };
            now = next;
            s.handle_timeout(now);
        }
        let times: Vec<Duration> = copies.iter().map(|(t, _)| *t - t0).collect();
        assert_eq!(
            times,
            [
                Duration::ZERO,
                Duration::from_secs(70),
                Duration::from_secs(140)
            ],
            "each copy waits the response timeout and resend_after"
        );
        let ev = events(&mut s);
        assert_eq!(
            ev.last(),
            Some(&Event::Finished {
                id: 9,
                outcome: Outcome::Unknown { copies: 3 }
            })
        );
        assert_eq!(
            ev.iter()
                .filter(|e| matches!(e, Event::Resent { .. }))
                .count(),
            2
        );
        // The first copy's answer, after all that, is one nobody waits for any more.
        s.handle_command(now, &ok(copies[0].1, "very-late"));
        assert!(matches!(events(&mut s)[..], [Event::Unexpected { .. }]));
    }

    #[test]
    fn copies_unanswered_on_an_earlier_session_count_against_the_bound() {
        let t0 = Instant::now();
        let mut s = Session::new(config(), t0, 1);
        s.submit(4, segments(1), 1);
        sent(&mut s, t0);
        let t1 = t0 + Duration::from_secs(10);
        s.handle_timeout(t1);
        let t2 = t1 + Duration::from_secs(60);
        s.handle_timeout(t2);
        assert!(
            sent(&mut s, t2)
                .iter()
                .all(|c| c.id() != CommandId::SubmitSm)
        );
        assert_eq!(
            events(&mut s).last(),
            Some(&Event::Finished {
                id: 4,
                outcome: Outcome::Unknown { copies: 2 }
            })
        );
    }

    #[test]
    fn enquire_link_keeps_its_schedule_and_only_silence_kills_the_link() {
        let t0 = Instant::now();
        let mut s = Session::new(config(), t0, 1);
        assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(30)));
        let t1 = t0 + Duration::from_secs(30);
        s.handle_timeout(t1);
        let probe = sent(&mut s, t1);
        assert_eq!(probe[0].id(), CommandId::EnquireLink);
        // Something else arrives: the SMSC is slow, not gone.
        s.handle_command(t1 + Duration::from_secs(5), &ok(999, "x"));
        s.handle_timeout(t1 + Duration::from_secs(10));
        assert!(!events(&mut s).contains(&Event::Ended(Ended::Dead)));
        let t2 = t1 + Duration::from_secs(30);
        s.handle_timeout(t2);
        assert_eq!(sent(&mut s, t2)[0].id(), CommandId::EnquireLink);
        s.handle_timeout(t2 + Duration::from_secs(10));
        assert_eq!(events(&mut s), [Event::Ended(Ended::Dead)]);
        assert_eq!(s.poll_timeout(), None);
    }

    #[test]
    fn unbind_stops_submitting_and_ends_on_the_answer_or_after_a_wait() {
        let t0 = Instant::now();
        let mut s = Session::new(config(), t0, 1);
        s.submit(1, segments(1), 0);
        s.close(t0);
        let out = sent(&mut s, t0);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].id(), CommandId::Unbind);
        assert_eq!(s.wants(), 0);
        s.handle_command(
            t0,
            &Command::new(
                CommandStatus::EsmeRok,
                out[0].sequence_number(),
                Pdu::UnbindResp,
            ),
        );
        assert_eq!(events(&mut s), [Event::Ended(Ended::Stopped)]);

        let mut quiet = Session::new(config(), t0, 1);
        quiet.close(t0);
        sent(&mut quiet, t0);
        assert_eq!(quiet.poll_timeout(), Some(t0 + UNBIND_WAIT));
        quiet.handle_timeout(t0 + UNBIND_WAIT);
        assert_eq!(events(&mut quiet), [Event::Ended(Ended::Stopped)]);
    }

    #[test]
    fn requests_from_the_smsc_are_answered() {
        let t0 = Instant::now();
        let mut s = Session::new(config(), t0, 1);
        s.handle_command(
            t0,
            &Command::new(CommandStatus::EsmeRok, 40, Pdu::EnquireLink),
        );
        s.handle_command(
            t0,
            &Command::new(
                CommandStatus::EsmeRok,
                41,
                Pdu::QuerySmResp(Default::default()),
            ),
        );
        s.ack(42, Inbound::DeliverSm, true);
        s.ack(43, Inbound::DeliverSm, false);
        s.handle_command(
            t0,
            &Command::new(
                CommandStatus::EsmeRok,
                45,
                Pdu::AlertNotification(Default::default()),
            ),
        );
        s.ack(46, Inbound::DataSm, true);
        s.handle_command(t0, &Command::new(CommandStatus::EsmeRok, 44, Pdu::Unbind));
        let out = sent(&mut s, t0);
        let answers: Vec<(CommandId, u32, CommandStatus)> = out
            .iter()
            .map(|c| (c.id(), c.sequence_number(), c.status()))
            .collect();
        assert_eq!(
            answers,
            [
                (CommandId::EnquireLinkResp, 40, CommandStatus::EsmeRok),
                (CommandId::DeliverSmResp, 42, CommandStatus::EsmeRok),
                (CommandId::DeliverSmResp, 43, CommandStatus::EsmeRxTAppn),
                (CommandId::DataSmResp, 46, CommandStatus::EsmeRok),
                (CommandId::UnbindResp, 44, CommandStatus::EsmeRok),
            ]
        );
        assert_eq!(
            events(&mut s),
            [
                Event::Unexpected {
                    seq: 41,
                    command_id: CommandId::QuerySmResp
                },
                Event::Ended(Ended::UnboundByPeer)
            ]
        );
    }
}
