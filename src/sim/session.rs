//! One ESME connection to the simulator: bind, then requests both ways.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::{SinkExt, StreamExt};
use rusmpp::pdus::{
    BindReceiverResp, BindTransceiverResp, BindTransmitterResp, DeliverSm, SubmitSm, SubmitSmResp,
};
use rusmpp::types::{COctetString, OctetString};
use rusmpp::values::{DataCoding, EsmClass, Npi, Ton};
use rusmpp::{Command, CommandStatus, Pdu};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::{Inject, MoRequest, SimError, SimState, Submitted};
use crate::smpp::frame::{Inbound, SmppCodec};
use crate::smpp::{text, udh};

const ESM_UDHI: u8 = 0x40;

/// Builds the deliver_sm PDUs a phone's SMS arrives as: GSM 7-bit when it fits, UCS-2
/// otherwise, concatenated with a UDH when long.
pub(super) fn mo_pdus(request: &MoRequest, refs: &AtomicU64) -> Result<Vec<DeliverSm>, SimError> {
    let from = request
        .from
        .strip_prefix('+')
        .ok_or_else(|| SimError::BadRequest("`from` must be E.164 with a leading +".into()))?;
    if from.is_empty() || from.len() > 20 || !from.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SimError::BadRequest(format!(
            "`from` {:?} is not a phone number",
            request.from
        )));
    }
    let to = request.to.as_deref().unwrap_or("10690000");
    let source = COctetString::from_str(from).map_err(|e| SimError::BadRequest(e.to_string()))?;
    let destination = COctetString::from_str(to)
        .map_err(|_| SimError::BadRequest(format!("`to` {to:?} is not a short code")))?;
    let reference = refs.fetch_add(1, Ordering::Relaxed) as u8;
    Ok(text::encode_sms(&request.text, reference)
        .map_err(|e| SimError::BadRequest(e.to_string()))?
        .into_iter()
        .map(|segment| {
            DeliverSm::builder()
                .source_addr_ton(Ton::International)
                .source_addr_npi(Npi::Isdn)
                .source_addr(source.clone())
                .dest_addr_ton(Ton::Unknown)
                .dest_addr_npi(Npi::Unknown)
                .destination_addr(destination.clone())
                .esm_class(EsmClass::from(if segment.esm_class_udhi {
                    ESM_UDHI
                } else {
                    0
                }))
                .data_coding(DataCoding::from(segment.data_coding))
                .short_message(OctetString::from_vec(segment.short_message).expect("segment fits"))
                .build()
        })
        .collect())
}

/// Parts of concatenated submits waiting for their siblings, by (destination, reference).
type Partial = HashMap<(String, u16), Vec<Option<(String, String)>>>;

pub(super) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    state: Arc<SimState>,
    stop: CancellationToken,
) {
    let mut framed = Framed::new(stream, SmppCodec::new(crate::smpp::link::MAX_PDU));
    let id = state.next_session.fetch_add(1, Ordering::Relaxed);
    let (inject_tx, mut inject_rx) = mpsc::channel::<Inject>(1024);
    let mut bound = false;
    let mut next_seq: u32 = 1;
    let mut waiting: HashMap<u32, oneshot::Sender<u32>> = HashMap::new();
    let mut partial: Partial = HashMap::new();
    loop {
        let result = tokio::select! {
            inbound = framed.next() => match inbound {
                Some(Ok(inbound)) => {
                    handle(&mut framed, inbound, &state, &mut bound, &mut waiting, &mut partial, id, &inject_tx).await
                }
                Some(Err(e)) => {
                    warn!(%peer, error = %e, "sim: unreadable stream; closing");
                    Err(())
                }
                None => Err(()),
            },
            Some(inject) = inject_rx.recv() => {
                let seq = next_seq;
                next_seq = if next_seq >= 0x7FFF_FFFF { 1 } else { next_seq + 1 };
                waiting.insert(seq, inject.answered);
                framed.send(Command::new(CommandStatus::EsmeRok, seq, inject.pdu)).await.map_err(|_| ())
            }
            _ = stop.cancelled() => {
                let _ = framed.send(Command::new(CommandStatus::EsmeRok, next_seq, Pdu::Unbind)).await;
                Err(())
            }
        };
        if result.is_err() {
            break;
        }
    }
    if bound {
        state.sessions.lock().expect("sim lock").remove(&id);
        state.bound.send_modify(|n| *n -= 1);
    }
    debug!(%peer, "sim: session closed");
}

#[allow(clippy::too_many_arguments)]
async fn handle(
    framed: &mut Framed<TcpStream, SmppCodec>,
    inbound: Inbound,
    state: &SimState,
    bound: &mut bool,
    waiting: &mut HashMap<u32, oneshot::Sender<u32>>,
    partial: &mut Partial,
    id: u64,
    inject: &mpsc::Sender<Inject>,
) -> Result<(), ()> {
    let command = match inbound {
        Inbound::Command(c) => c,
        Inbound::Bad { header, error } => {
            warn!(?header, %error, "sim: malformed PDU");
            if let Some(answer) = header.reject(error.status()) {
                framed.send(answer).await.map_err(|_| ())?;
            }
            return Ok(());
        }
    };
    let seq = command.sequence_number();
    let answer = match command.pdu() {
        Some(Pdu::BindTransceiver(b)) => Some(bind_answer(
            state,
            bound,
            seq,
            b.system_id.as_str(),
            b.password.as_str(),
            |s| BindTransceiverResp::builder().system_id(s).build().into(),
        )),
        Some(Pdu::BindReceiver(b)) => Some(bind_answer(
            state,
            bound,
            seq,
            b.system_id.as_str(),
            b.password.as_str(),
            |s| BindReceiverResp::builder().system_id(s).build().into(),
        )),
        Some(Pdu::BindTransmitter(b)) => Some(bind_answer(
            state,
            bound,
            seq,
            b.system_id.as_str(),
            b.password.as_str(),
            |s| BindTransmitterResp::builder().system_id(s).build().into(),
        )),
        Some(Pdu::EnquireLink) => Some(Command::new(
            CommandStatus::EsmeRok,
            seq,
            Pdu::EnquireLinkResp,
        )),
        Some(Pdu::Unbind) => {
            framed
                .send(Command::new(CommandStatus::EsmeRok, seq, Pdu::UnbindResp))
                .await
                .map_err(|_| ())?;
            return Err(());
        }
        Some(Pdu::SubmitSm(submit)) if *bound => {
            let message_id = state.next_message_id();
            record_submit(state, partial, submit, &message_id);
            Some(Command::new(
                CommandStatus::EsmeRok,
                seq,
                SubmitSmResp::builder()
                    .message_id(COctetString::from_str(&message_id).expect("hex id"))
                    .build(),
            ))
        }
        Some(Pdu::SubmitSm(_)) => Some(Command::new(
            CommandStatus::EsmeRinvbndsts,
            seq,
            Pdu::GenericNack,
        )),
        Some(Pdu::DeliverSmResp(_)) | Some(Pdu::EnquireLinkResp) | Some(Pdu::UnbindResp) | None => {
            if let Some(answered) = waiting.remove(&seq) {
                let _ = answered.send(u32::from(command.status()));
            }
            None
        }
        Some(_) => Some(Command::new(
            CommandStatus::EsmeRinvcmdid,
            seq,
            Pdu::GenericNack,
        )),
    };
    if *bound && !state.sessions.lock().expect("sim lock").contains_key(&id) {
        state
            .sessions
            .lock()
            .expect("sim lock")
            .insert(id, inject.clone());
        state.bound.send_modify(|n| *n += 1);
    }
    if let Some(answer) = answer {
        let refused = answer.status() != CommandStatus::EsmeRok && !*bound;
        framed.send(answer).await.map_err(|_| ())?;
        if refused {
            return Err(());
        }
    }
    Ok(())
}

fn bind_answer(
    state: &SimState,
    bound: &mut bool,
    seq: u32,
    system_id: &str,
    password: &str,
    resp: impl Fn(COctetString<1, 16>) -> Pdu,
) -> Command {
    let ours = COctetString::from_str("moauth-sim").expect("ascii");
    if *bound {
        return Command::new(CommandStatus::EsmeRalybnd, seq, resp(ours));
    }
    if system_id != state.config.system_id || password != state.config.password {
        warn!(system_id, "sim: bind refused: wrong credentials");
        return Command::new(CommandStatus::EsmeRinvpaswd, seq, resp(ours));
    }
    *bound = true;
    info!(system_id, "sim: ESME bound");
    Command::new(CommandStatus::EsmeRok, seq, resp(ours))
}

/// Records a submit, joining concatenated parts once all have arrived.
fn record_submit(state: &SimState, partial: &mut Partial, submit: &SubmitSm, message_id: &str) {
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
    let text = text::decode(data_coding, data).unwrap_or_else(|e| format!("<undecodable: {e}>"));
    let Some(concat) = concat else {
        state.record_submit(Submitted {
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
    let parts = partial
        .entry(key.clone())
        .or_insert_with(|| vec![None; usize::from(concat.total)]);
    if let Some(slot) = parts.get_mut(usize::from(concat.seq) - 1) {
        *slot = Some((message_id.to_owned(), text));
    }
    if parts.iter().all(Option::is_some) {
        let parts = partial.remove(&key).unwrap_or_default();
        let count = parts.len();
        let (ids, texts): (Vec<String>, Vec<String>) = parts.into_iter().flatten().unzip();
        state.record_submit(Submitted {
            message_id: ids.join(","),
            from,
            to,
            data_coding,
            parts: count,
            text: texts.concat(),
        });
    }
}
