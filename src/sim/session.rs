//! One ESME connection to the simulator: bind, then requests both ways.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use futures::{SinkExt, StreamExt};
use rusmpp::pdus::{
    BindReceiverResp, BindTransceiverResp, BindTransmitterResp, DataSm, DeliverSm, SubmitSm,
    SubmitSmResp,
};
use rusmpp::tlvs::MessageDeliveryRequestTlvValue as Tlv;
use rusmpp::tlvs::MessageSubmissionRequestTlvValue as SubmitTlv;
use rusmpp::types::{AnyOctetString, COctetString, OctetString};
use rusmpp::values::{DataCoding, EsmClass, MessagePayload, MessageState, Npi, Ton};
use rusmpp::{Command, CommandStatus, Pdu};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::{Deliver, MoRequest, Order, ReceiptStyle, SimError, SimState, SlowRequest, Submitted};
use crate::smpp::frame::{Inbound, SmppCodec};
use crate::smpp::status::SmppStatus;
use crate::smpp::tls::Stream;
use crate::smpp::{text, udh};

const ESM_UDHI: u8 = 0x40;
const ESM_RECEIPT: u8 = 0x04;
const DEFAULT_SHORT_CODE: &str = "10690000";

/// The deliver_sm a phone's SMS arrives as: GSM 7-bit when it fits, UCS-2 otherwise,
/// concatenated with a UDH when long; then shaped as the request's faults say.
pub fn mo_delivers(request: &MoRequest, reference: u8) -> Result<Vec<Deliver>, SimError> {
    let bad = |e: String| SimError::BadRequest(e);
    let segments = if request.latin1 {
        let octets = request
            .text
            .chars()
            .map(|c| u8::try_from(u32::from(c)).map_err(|_| bad(format!("{c:?} is not Latin-1"))))
            .collect::<Result<Vec<u8>, _>>()?;
        vec![text::Segment {
            data_coding: 0,
            esm_class_udhi: false,
            short_message: octets,
        }]
    } else {
        text::encode_sms(&request.text, reference).map_err(|e| bad(e.to_string()))?
    };
    let mut delivers = Vec::with_capacity(segments.len());
    for mut segment in segments {
        if request.malformed_concat {
            segment.short_message = malformed_concat(&segment)?;
            segment.esm_class_udhi = true;
        }
        let (short_message, message_payload) = if segment.short_message.len() > 254 {
            (Vec::new(), Some(segment.short_message))
        } else {
            (segment.short_message, None)
        };
        delivers.push(Deliver {
            from: request.from.clone(),
            to: request.to.clone(),
            esm_class: if segment.esm_class_udhi { ESM_UDHI } else { 0 },
            data_coding: segment.data_coding,
            short_message,
            message_payload,
            data_sm: request.data_sm,
            ..Deliver::default()
        });
    }
    Ok(delivers)
}

/// The segment's user data with an 8-bit concatenation IE of length 2 in front of its UDH,
/// and its own concatenation IE (if any) rewritten as a 16-bit one after it.
fn malformed_concat(segment: &text::Segment) -> Result<Vec<u8>, SimError> {
    let (concat, payload) = if segment.esm_class_udhi {
        let (header, payload) =
            udh::split(&segment.short_message).map_err(|e| SimError::BadRequest(e.to_string()))?;
        (header.concat(), payload)
    } else {
        (None, &segment.short_message[..])
    };
    let mut header = vec![0x00, 0x02, 0x01, 0x01];
    if let Some(c) = concat {
        header.extend([0x08, 0x04]);
        header.extend(c.reference.to_be_bytes());
        header.extend([c.total, c.seq]);
    }
    let mut data = vec![u8::try_from(header.len()).expect("short UDH")];
    data.extend(header);
    data.extend_from_slice(payload);
    Ok(data)
}

/// The PDU an MO (or receipt) goes out as: deliver_sm, or data_sm when asked.
pub(super) fn mo_pdu(d: &Deliver) -> Result<Pdu, SimError> {
    if !d.data_sm {
        return Ok(deliver_pdu(d)?.into());
    }
    let deliver = deliver_pdu(&Deliver {
        data_sm: false,
        ..d.clone()
    })?;
    let payload = d
        .message_payload
        .clone()
        .unwrap_or_else(|| d.short_message.clone());
    let mut pdu = DataSm::builder()
        .source_addr_ton(deliver.source_addr_ton)
        .source_addr_npi(deliver.source_addr_npi)
        .source_addr(deliver.source_addr.clone())
        .destination_addr(deliver.destination_addr.clone())
        .esm_class(deliver.esm_class)
        .data_coding(deliver.data_coding)
        .build();
    pdu.push_tlv(SubmitTlv::MessagePayload(MessagePayload::new(
        AnyOctetString::from_vec(payload),
    )));
    if let Some(sar) = d.sar {
        pdu.push_tlv(SubmitTlv::SarMsgRefNum(sar.reference));
        pdu.push_tlv(SubmitTlv::SarTotalSegments(sar.total));
        pdu.push_tlv(SubmitTlv::SarSegmentSeqnum(sar.seq));
    }
    Ok(pdu.into())
}

pub(super) fn deliver_pdu(d: &Deliver) -> Result<DeliverSm, SimError> {
    let bad = |what: &str| SimError::BadRequest(what.to_owned());
    let (ton, from) = match d.from.strip_prefix('+') {
        Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            (Ton::International, digits)
        }
        _ => {
            return Err(bad(&format!(
                "`from` {:?} must be E.164 with a leading +",
                d.from
            )));
        }
    };
    let to = d.to.as_deref().unwrap_or(DEFAULT_SHORT_CODE);
    let mut pdu = DeliverSm::builder()
        .source_addr_ton(ton)
        .source_addr_npi(Npi::Isdn)
        .source_addr(COctetString::from_str(from).map_err(|_| bad("`from` is too long"))?)
        .destination_addr(COctetString::from_str(to).map_err(|_| bad("`to` is not a short code"))?)
        .esm_class(EsmClass::from(d.esm_class))
        .data_coding(DataCoding::from(d.data_coding))
        .short_message(
            OctetString::from_vec(d.short_message.clone())
                .map_err(|_| bad("short_message over 255 octets; use message_payload"))?,
        )
        .build();
    if let Some(payload) = &d.message_payload {
        pdu.push_tlv(Tlv::MessagePayload(MessagePayload::new(
            AnyOctetString::from_vec(payload.clone()),
        )));
    }
    if let Some(sar) = d.sar {
        pdu.push_tlv(Tlv::SarMsgRefNum(sar.reference));
        pdu.push_tlv(Tlv::SarTotalSegments(sar.total));
        pdu.push_tlv(Tlv::SarSegmentSeqnum(sar.seq));
    }
    if let Some(id) = &d.receipted_message_id {
        let id = COctetString::from_str(id).map_err(|_| bad("receipted_message_id"))?;
        pdu.push_tlv(Tlv::ReceiptedMessageId(id));
    }
    if let Some(state) = d.message_state {
        pdu.push_tlv(Tlv::MessageState(MessageState::from(state)));
    }
    Ok(pdu)
}

/// Parts of concatenated submits waiting for their siblings, by (destination, reference).
type Partial = HashMap<(String, u16), Vec<Option<(String, String)>>>;

/// A connection's state between PDUs.
struct Conn<'a> {
    framed: Framed<Box<dyn Stream>, SmppCodec>,
    state: &'a SimState,
    id: u64,
    orders: mpsc::Sender<Order>,
    bound: bool,
    next_seq: u32,
    waiting: HashMap<u32, oneshot::Sender<u32>>,
    receipts: HashSet<u32>,
    partial: Partial,
    /// submit_sm answers kept back while the simulator holds responses.
    held: Vec<(Command, Option<Deliver>)>,
    /// Answers sent late on purpose (see [`super::Simulator::delay_responses`]), in the order
    /// they fall due: when, the answer, the receipt that follows it, and whether to close then.
    late: VecDeque<Late>,
}

struct Late {
    due: tokio::time::Instant,
    answer: Command,
    receipt: Option<Deliver>,
    close: bool,
}

pub(super) async fn serve(
    stream: Box<dyn Stream>,
    peer: SocketAddr,
    state: Arc<SimState>,
    stop: CancellationToken,
) {
    let (orders, mut order_rx) = mpsc::channel::<Order>(1024);
    let mut hold = state.faults.hold_responses.subscribe();
    let mut conn = Conn {
        framed: Framed::new(stream, SmppCodec::new(crate::smpp::link::MAX_PDU)),
        state: &state,
        id: state.next_session.fetch_add(1, Ordering::Relaxed),
        orders,
        bound: false,
        next_seq: 1,
        waiting: HashMap::new(),
        receipts: HashSet::new(),
        partial: HashMap::new(),
        held: Vec::new(),
        late: VecDeque::new(),
    };
    loop {
        let result = tokio::select! {
            inbound = conn.framed.next() => match inbound {
                Some(Ok(inbound)) => conn.handle(inbound).await,
                Some(Err(e)) => {
                    warn!(%peer, error = %e, "sim: unreadable stream; closing");
                    Err(())
                }
                None => Err(()),
            },
            Some(order) = order_rx.recv() => conn.obey(order).await,
            _ = sleep_until_due(conn.late.front().map(|l| l.due)), if !conn.late.is_empty() => {
                conn.send_late().await
            }
            Ok(()) = hold.changed() => {
                if *hold.borrow_and_update() { Ok(()) } else { conn.release().await }
            }
            _ = stop.cancelled() => {
                let seq = conn.sequence();
                let _ = conn.framed.send(Command::new(CommandStatus::EsmeRok, seq, Pdu::Unbind)).await;
                Err(())
            }
        };
        if result.is_err() {
            break;
        }
    }
    if conn.bound {
        state.sessions.lock().expect("sim lock").remove(&conn.id);
        state.bound.send_modify(|n| *n -= 1);
    }
    let unanswered = conn.held.len();
    state.faults.outstanding.send_modify(|n| *n -= unanswered);
    debug!(%peer, "sim: session closed");
}

async fn sleep_until_due(due: Option<tokio::time::Instant>) {
    if let Some(due) = due {
        tokio::time::sleep_until(due).await;
    }
}

impl Conn<'_> {
    /// Sends `answer` (then `receipt`) now, or queues it when this kind of request is slow.
    /// `close` ends the session once it is sent.
    async fn respond(
        &mut self,
        request: Option<SlowRequest>,
        answer: Command,
        receipt: Option<Deliver>,
        close: bool,
    ) -> Result<(), ()> {
        let delay = request.and_then(|r| {
            let delays = self.state.faults.delays.lock().expect("sim lock");
            delays.get(&r).copied().filter(|d| !d.is_zero())
        });
        if let Some(delay) = delay {
            self.late.push_back(Late {
                due: tokio::time::Instant::now() + delay,
                answer,
                receipt,
                close,
            });
            return Ok(());
        }
        self.send(answer).await?;
        if let Some(receipt) = receipt {
            self.send_receipt(&receipt).await?;
        }
        if close { Err(()) } else { Ok(()) }
    }

    /// Sends every late answer that has fallen due.
    async fn send_late(&mut self) -> Result<(), ()> {
        let now = tokio::time::Instant::now();
        while self.late.front().is_some_and(|l| l.due <= now) {
            let late = self.late.pop_front().expect("checked");
            self.send(late.answer).await?;
            if let Some(receipt) = late.receipt {
                self.send_receipt(&receipt).await?;
            }
            if late.close {
                return Err(());
            }
        }
        Ok(())
    }

    fn sequence(&mut self) -> u32 {
        let seq = self.next_seq;
        self.next_seq = if seq >= 0x7FFF_FFFF { 1 } else { seq + 1 };
        seq
    }

    async fn send(&mut self, command: Command) -> Result<(), ()> {
        self.framed.send(command).await.map_err(|_| ())
    }

    async fn obey(&mut self, order: Order) -> Result<(), ()> {
        match order {
            Order::Deliver(pdu, answered) => {
                let seq = self.sequence();
                self.waiting.insert(seq, answered);
                self.send(Command::new(CommandStatus::EsmeRok, seq, *pdu))
                    .await
            }
            Order::Drop => Err(()),
            Order::DeliverThenDrop(pdu) => {
                let seq = self.sequence();
                self.send(Command::new(CommandStatus::EsmeRok, seq, *pdu))
                    .await?;
                Err(())
            }
            Order::Garbage(bytes) => {
                let stream = self.framed.get_mut();
                stream.write_all(&bytes).await.map_err(|_| ())
            }
        }
    }

    /// Sends the submit answers kept back, and the receipts that follow them.
    async fn release(&mut self) -> Result<(), ()> {
        let held = std::mem::take(&mut self.held);
        self.state
            .faults
            .outstanding
            .send_modify(|n| *n -= held.len());
        for (answer, receipt) in held {
            self.send(answer).await?;
            if let Some(receipt) = receipt {
                self.send_receipt(&receipt).await?;
            }
        }
        Ok(())
    }

    async fn send_receipt(&mut self, receipt: &Deliver) -> Result<(), ()> {
        let Ok(pdu) = deliver_pdu(receipt) else {
            return Ok(());
        };
        let seq = self.sequence();
        self.receipts.insert(seq);
        self.send(Command::new(CommandStatus::EsmeRok, seq, pdu))
            .await
    }

    async fn handle(&mut self, inbound: Inbound) -> Result<(), ()> {
        let command = match inbound {
            Inbound::Command(c) => c,
            Inbound::Bad { header, error } => {
                warn!(command_id = format_args!("0x{:08X}", header.command_id), seq = header.sequence_number, %error, "sim: malformed PDU");
                if let Some(answer) = header.reject(error.status()) {
                    self.send(answer).await?;
                }
                return Ok(());
            }
        };
        let seq = command.sequence_number();
        let answer = match command.pdu() {
            Some(Pdu::BindTransceiver(b)) => {
                self.bind(seq, b.system_id.as_str(), b.password.as_str(), true, |s| {
                    BindTransceiverResp::builder().system_id(s).build().into()
                })
            }
            Some(Pdu::BindReceiver(b)) => {
                self.bind(seq, b.system_id.as_str(), b.password.as_str(), true, |s| {
                    BindReceiverResp::builder().system_id(s).build().into()
                })
            }
            Some(Pdu::BindTransmitter(b)) => {
                self.bind(seq, b.system_id.as_str(), b.password.as_str(), false, |s| {
                    BindTransmitterResp::builder().system_id(s).build().into()
                })
            }
            Some(Pdu::EnquireLink) => {
                self.state.enquire_links.send_modify(|n| *n += 1);
                Command::new(CommandStatus::EsmeRok, seq, Pdu::EnquireLinkResp)
            }
            Some(Pdu::Unbind) => {
                let answer = Command::new(CommandStatus::EsmeRok, seq, Pdu::UnbindResp);
                return self
                    .respond(Some(SlowRequest::Unbind), answer, None, true)
                    .await;
            }
            Some(Pdu::SubmitSm(submit)) if self.bound => return self.submit(seq, submit).await,
            Some(Pdu::SubmitSm(_)) => {
                Command::new(CommandStatus::EsmeRinvbndsts, seq, SubmitSmResp::default())
            }
            Some(Pdu::GenericNack) => {
                self.state.faults.nacks.fetch_add(1, Ordering::SeqCst);
                warn!(seq, status = %SmppStatus::from(command.status()), "sim: the ESME answered generic_nack");
                if let Some(answered) = self.waiting.remove(&seq) {
                    let _ = answered.send(u32::from(command.status()));
                }
                return Ok(());
            }
            Some(Pdu::DeliverSmResp(_))
            | Some(Pdu::DataSmResp(_))
            | Some(Pdu::EnquireLinkResp)
            | Some(Pdu::UnbindResp)
            | None => {
                if let Some(answered) = self.waiting.remove(&seq) {
                    let _ = answered.send(u32::from(command.status()));
                } else if self.receipts.remove(&seq) && command.status() == CommandStatus::EsmeRok {
                    self.state.receipts_answered.send_modify(|n| *n += 1);
                }
                return Ok(());
            }
            Some(_) => Command::new(CommandStatus::EsmeRinvcmdid, seq, Pdu::GenericNack),
        };
        let refused = answer.status() != CommandStatus::EsmeRok && !self.bound;
        let slow = match command.pdu() {
            Some(Pdu::EnquireLink) => Some(SlowRequest::EnquireLink),
            Some(Pdu::BindTransceiver(_) | Pdu::BindReceiver(_) | Pdu::BindTransmitter(_)) => {
                Some(SlowRequest::Bind)
            }
            _ => None,
        };
        self.respond(slow, answer, None, refused).await
    }

    fn bind(
        &mut self,
        seq: u32,
        system_id: &str,
        password: &str,
        receives: bool,
        resp: impl Fn(COctetString<1, 16>) -> Pdu,
    ) -> Command {
        let faults = &self.state.faults;
        faults.bind_attempts.send_modify(|a| a.push(Instant::now()));
        let ours = COctetString::from_str("moauth-sim").expect("ascii");
        if self.bound {
            return Command::new(CommandStatus::EsmeRalybnd, seq, resp(ours));
        }
        if faults.refuse_binds.load(Ordering::SeqCst) {
            let status = match faults.bind_refusal.load(Ordering::SeqCst) {
                0 => CommandStatus::EsmeRbindfail,
                status => CommandStatus::from(status),
            };
            return Command::new(status, seq, resp(ours));
        }
        if system_id != self.state.config.system_id || password != self.state.config.password {
            warn!(system_id, "sim: bind refused: wrong credentials");
            return Command::new(CommandStatus::EsmeRinvpaswd, seq, resp(ours));
        }
        self.bound = true;
        if receives {
            let mut sessions = self.state.sessions.lock().expect("sim lock");
            sessions.insert(self.id, self.orders.clone());
        }
        self.state.bound.send_modify(|n| *n += 1);
        info!(system_id, "sim: ESME bound");
        Command::new(CommandStatus::EsmeRok, seq, resp(ours))
    }

    async fn submit(&mut self, seq: u32, submit: &SubmitSm) -> Result<(), ()> {
        let state = self.state;
        state
            .submit_times
            .lock()
            .expect("sim lock")
            .push(Instant::now());
        let refused = state
            .faults
            .refuse_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        let answer = if refused {
            let status = CommandStatus::from(state.faults.refuse_status.load(Ordering::SeqCst));
            Command::new(status, seq, SubmitSmResp::default())
        } else {
            let message_id = state.next_message_id();
            self.record(submit, &message_id);
            Command::new(
                CommandStatus::EsmeRok,
                seq,
                SubmitSmResp::builder()
                    .message_id(COctetString::from_str(&message_id).expect("hex id"))
                    .build(),
            )
        };
        let mut receipt = if refused {
            None
        } else {
            self.receipt_for(submit, &answer)
        };
        if state.faults.receipts_first.load(Ordering::SeqCst)
            && let Some(early) = receipt.take()
        {
            self.send_receipt(&early).await?;
        }
        if *state.faults.hold_responses.borrow() {
            self.held.push((answer, receipt));
            let now = self.held.len();
            state.faults.outstanding.send_modify(|n| *n += 1);
            state
                .faults
                .max_outstanding
                .fetch_max(now, Ordering::SeqCst);
            return Ok(());
        }
        self.respond(Some(SlowRequest::SubmitSm), answer, receipt, false)
            .await
    }

    /// A DELIVRD receipt, if receipts are on and the submit asked for one.
    fn receipt_for(&self, submit: &SubmitSm, answer: &Command) -> Option<Deliver> {
        let style = (*self.state.faults.receipts.lock().expect("sim lock"))?;
        if u8::from(submit.registered_delivery) & 0x01 == 0 {
            return None;
        }
        let Some(Pdu::SubmitSmResp(resp)) = answer.pdu() else {
            return None;
        };
        let hex_id = resp.message_id().as_str().to_owned();
        let id = match style {
            ReceiptStyle::Hex => hex_id.clone(),
            ReceiptStyle::Decimal => u64::from_str_radix(&hex_id, 16).ok()?.to_string(),
        };
        let text = format!(
            "id:{id} sub:001 dlvrd:001 submit date:2611240930 done date:2611240931 stat:DELIVRD err:000 text:"
        );
        Some(Deliver {
            from: format!("+{}", submit.destination_addr.as_str()),
            to: Some(submit.source_addr.as_str().to_owned()),
            esm_class: ESM_RECEIPT,
            short_message: text.into_bytes(),
            receipted_message_id: (style == ReceiptStyle::Hex).then_some(hex_id),
            message_state: (style == ReceiptStyle::Hex).then_some(2),
            ..Deliver::default()
        })
    }

    /// Records a submit, joining concatenated parts once all have arrived.
    fn record(&mut self, submit: &SubmitSm, message_id: &str) {
        let data_coding = u8::from(submit.data_coding);
        let raw = submit.short_message().as_ref();
        let to = format!("+{}", submit.destination_addr.as_str());
        let from = submit.source_addr.as_str().to_owned();
        let udhi = u8::from(submit.esm_class) & ESM_UDHI != 0;
        let split = if udhi { udh::split(raw).ok() } else { None };
        let (concat, data) = match &split {
            Some((header, data)) => (header.concat(), *data),
            None => (None, raw),
        };
        let text =
            text::decode(data_coding, data).unwrap_or_else(|e| format!("<undecodable: {e}>"));
        let Some(concat) = concat else {
            self.state.record_submit(Submitted {
                message_id: message_id.to_owned(),
                from,
                to,
                data_coding,
                parts: 1,
                text,
            });
            return;
        };
        let key = (to.clone(), concat.reference);
        let parts = self
            .partial
            .entry(key.clone())
            .or_insert_with(|| vec![None; usize::from(concat.total)]);
        if let Some(slot) = parts.get_mut(usize::from(concat.seq) - 1) {
            *slot = Some((message_id.to_owned(), text));
        }
        if parts.iter().all(Option::is_some) {
            let parts = self.partial.remove(&key).unwrap_or_default();
            let count = parts.len();
            let (ids, texts): (Vec<String>, Vec<String>) = parts.into_iter().flatten().unzip();
            self.state.record_submit(Submitted {
                message_id: ids.join(","),
                from,
                to,
                data_coding,
                parts: count,
                text: texts.concat(),
            });
        }
    }
}
