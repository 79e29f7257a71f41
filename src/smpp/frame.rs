//! SMPP framing over rusmpp's owned `Command`, without I/O.
//!
//! rusmpp's own `CommandCodec` is not used for reading because of how it fails: a decode error ends
//! the `Framed` stream, so one bad PDU from the SMSC would cost the whole session, and its decoders
//! read mandatory fields from the whole buffer, so an unterminated C-string in one PDU can consume
//! the next PDU's bytes. Here the length prefix is read first and exactly one frame is split off
//! before rusmpp sees it, so decoding can never leave that frame. What happens next depends on
//! what broke:
//! - a command_length that is too small or too large is fatal (`FrameError`): the stream cannot be
//!   resynchronised after it;
//! - anything wrong inside the frame is `Inbound::Bad`, carrying the raw header and a `PduError`
//!   whose status is what the SMSC should be told, so the session survives. The one exception is a
//!   negative response whose body does not decode: SMPP returns no useful body with a non-zero
//!   status, so the header alone is delivered as a `Command` and the request it answers still
//!   gets its status instead of timing out.

use bytes::{BufMut, Bytes, BytesMut};
use rusmpp::command::CommandParts;
use rusmpp::decode::{
    COctetStringDecodeError, DecodeError, DecodeErrorKind, DecodeWithKeyOptional,
};
use rusmpp::encode::{Length, owned::Encode};
use rusmpp::pdus::{DataSmResp, DeliverSmResp};
use rusmpp::tlvs::Tlv;
use rusmpp::{Command, CommandId, CommandStatus, Pdu};
use thiserror::Error;
use tokio_util::codec::{Decoder, Encoder};

/// command_length, command_id, command_status, sequence_number.
pub const HEADER_LEN: usize = 16;
/// Enough for any short_message PDU; raise it for SMSCs sending long message_payload (up to 64 KiB).
pub const DEFAULT_MAX_LEN: usize = 8192;
/// Octets of the command_length field, which counts itself.
const LENGTH_LEN: usize = 4;

/// The header as read from the wire, kept even when the body is unusable so a bad PDU can still
/// be answered with its sequence number and logged with its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub command_length: u32,
    pub command_id: u32,
    pub command_status: u32,
    pub sequence_number: u32,
}

/// One frame taken off the stream.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "the large variant is the common one; boxing it costs an allocation per PDU"
)]
pub enum Inbound {
    Command(Command),
    Bad { header: Header, error: PduError },
}

/// The stream can no longer be trusted; close the connection.
#[derive(Debug, Error)]
pub enum FrameError {
    #[error("command_length {len} is shorter than the {HEADER_LEN}-octet header")]
    TooShort { len: usize },
    #[error("command_length {len} exceeds the limit of {max_len}")]
    TooLong { len: usize, max_len: usize },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// What was wrong inside one frame; the frame itself was consumed and the stream is intact.
#[derive(Debug, Error)]
pub enum PduError {
    #[error("unknown command_id {0:#010x}")]
    UnknownCommandId(u32),
    #[error("{0:?} has an empty body but needs one")]
    MissingBody(CommandId),
    #[error("{count} octets left over after the {command_id:?} body")]
    TrailingOctets { command_id: CommandId, count: usize },
    #[error("{command_id:?} TLV {tag:#06x} declares {declared} octets but its value has {decoded}")]
    TlvLength {
        command_id: CommandId,
        tag: u16,
        declared: u16,
        decoded: usize,
    },
    #[error("{command_id:?} body does not decode (fault: {fault:?}): {source}")]
    Body {
        command_id: CommandId,
        /// Where the body broke, when that could be told: it picks the status to answer.
        fault: Option<Fault>,
        #[source]
        source: DecodeError,
    },
}

/// Where a body went wrong. rusmpp's `DecodeError` does not name the field (that needs its
/// `verbose` feature), so for the message PDUs moauth exchanges (submit_sm, deliver_sm, data_sm)
/// the mandatory fields are walked again to find it, because the SMSC acts on a specific status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The body ends inside a field.
    Truncated,
    ServiceType,
    SourceAddr,
    DestinationAddr,
    ScheduleDeliveryTime,
    ValidityPeriod,
    /// sm_length runs past the body.
    ShortMessage,
    /// A TLV header or length runs past the body.
    TlvStream,
    /// The TLVs are well framed but one of their values is refused.
    TlvValue,
}

impl Fault {
    fn status(self) -> CommandStatus {
        match self {
            Fault::Truncated => CommandStatus::EsmeRinvcmdlen,
            Fault::ServiceType => CommandStatus::EsmeRinvsertyp,
            Fault::SourceAddr => CommandStatus::EsmeRinvsrcadr,
            Fault::DestinationAddr => CommandStatus::EsmeRinvdstadr,
            Fault::ScheduleDeliveryTime => CommandStatus::EsmeRinvsched,
            Fault::ValidityPeriod => CommandStatus::EsmeRinvexpiry,
            Fault::ShortMessage => CommandStatus::EsmeRinvmsglen,
            Fault::TlvStream => CommandStatus::EsmeRinvtlvstream,
            Fault::TlvValue => CommandStatus::EsmeRinvtlvval,
        }
    }
}

impl PduError {
    /// The command_status to answer the bad PDU with (see `Header::reject`).
    pub fn status(&self) -> CommandStatus {
        match self {
            PduError::UnknownCommandId(_) => CommandStatus::EsmeRinvcmdid,
            PduError::MissingBody(_) | PduError::TrailingOctets { .. } => {
                CommandStatus::EsmeRinvcmdlen
            }
            PduError::TlvLength { .. } => CommandStatus::EsmeRinvtlvlen,
            PduError::Body { fault, .. } => fault.map_or(CommandStatus::EsmeRsyserr, Fault::status),
        }
    }
}

impl Header {
    fn parse(frame: &[u8]) -> Header {
        let word = |at: usize| {
            u32::from_be_bytes([frame[at], frame[at + 1], frame[at + 2], frame[at + 3]])
        };
        Header {
            command_length: word(0),
            command_id: word(4),
            command_status: word(8),
            sequence_number: word(12),
        }
    }

    /// The command_id that answers this PDU: its `_resp` for a request that has one, generic_nack
    /// for an unknown id or a request without a response (outbind, alert_notification), and
    /// `None` for a response, which is never answered (answering one invites a loop of nacks).
    pub fn response_id(&self) -> Option<CommandId> {
        match CommandId::from(self.command_id) {
            CommandId::Other(_) => Some(CommandId::GenericNack),
            id if id.is_response() => None,
            id => match id.matching_response() {
                CommandId::Other(_) => Some(CommandId::GenericNack),
                response => Some(response),
            },
        }
    }

    /// The negative answer to a PDU that could not be used, with its sequence number echoed.
    ///
    /// deliver_sm_resp and data_sm_resp keep their (unused, empty) message_id because some SMSCs
    /// refuse them without it; other responses carry no body when the status is an error.
    pub fn reject(&self, status: CommandStatus) -> Option<Command> {
        let id = self.response_id()?;
        let pdu = match id {
            CommandId::DeliverSmResp => Some(Pdu::DeliverSmResp(DeliverSmResp::default())),
            CommandId::DataSmResp => Some(Pdu::DataSmResp(DataSmResp::default())),
            _ => None,
        };
        Some(Command::from_parts(CommandParts::new(
            id,
            status,
            self.sequence_number,
            pdu,
        )))
    }
}

/// Takes the next frame off `buf`, or `Ok(None)` until a whole frame has arrived.
pub fn next(buf: &mut BytesMut, max_len: usize) -> Result<Option<Inbound>, FrameError> {
    let Some(prefix) = buf.first_chunk::<LENGTH_LEN>() else {
        return Ok(None);
    };
    let len = usize::try_from(u32::from_be_bytes(*prefix)).unwrap_or(usize::MAX);
    if len < HEADER_LEN {
        return Err(FrameError::TooShort { len });
    }
    if len > max_len {
        return Err(FrameError::TooLong { len, max_len });
    }
    if buf.len() < len {
        buf.reserve(len - buf.len());
        return Ok(None);
    }
    Ok(Some(decode_frame(buf.split_to(len).freeze())))
}

fn decode_frame(frame: Bytes) -> Inbound {
    let header = Header::parse(&frame);
    let id = CommandId::from(header.command_id);
    if let CommandId::Other(raw) = id {
        return Inbound::Bad {
            header,
            error: PduError::UnknownCommandId(raw),
        };
    }
    let status = CommandStatus::from(header.command_status);
    let command = |pdu| {
        Inbound::Command(Command::from_parts(CommandParts::new(
            id,
            status,
            header.sequence_number,
            pdu,
        )))
    };
    match decode_body(id, &frame[HEADER_LEN..]) {
        Ok(pdu) => command(pdu),
        Err(error) if id.is_response() && status != CommandStatus::EsmeRok => {
            tracing::debug!(%error, status = %super::status::SmppStatus::from(status), "body of a negative response ignored");
            // The same command an empty body gives, so re-encoding it is stable (fuzzing).
            command(decode_body(id, &[]).ok().flatten())
        }
        Err(error) => Inbound::Bad { header, error },
    }
}

fn decode_body(id: CommandId, body: &[u8]) -> Result<Option<Pdu>, PduError> {
    // rusmpp skips whatever follows the header of a PDU that has no body (found by fuzzing),
    // so octets there are refused here rather than silently dropped.
    if has_no_body(id) && !body.is_empty() {
        return Err(PduError::TrailingOctets {
            command_id: id,
            count: body.len(),
        });
    }
    // rusmpp splits decoded fields off its buffer; the frame itself stays intact for `locate`.
    let mut src = BytesMut::from(body);
    match <Pdu as DecodeWithKeyOptional>::decode(id, &mut src, body.len()) {
        Err(source) => {
            let fault =
                locate(id, body).or_else(|| ran_out(&source, &src).then_some(Fault::Truncated));
            Err(PduError::Body {
                command_id: id,
                fault,
                source,
            })
        }
        Ok(_) if !src.is_empty() => Err(PduError::TrailingOctets {
            command_id: id,
            count: src.len(),
        }),
        // rusmpp yields no PDU for an empty body; only responses may omit theirs.
        Ok(None) if id.is_operation() => Err(PduError::MissingBody(id)),
        Ok(None) => Ok(None),
        Ok(Some((pdu, _))) => match tlvs(&pdu).iter().find(|tlv| !tlv_length_agrees(tlv)) {
            Some(tlv) => Err(PduError::TlvLength {
                command_id: id,
                tag: tlv.tag().into(),
                declared: tlv.value_length(),
                decoded: tlv.value().map_or(0, Length::length),
            }),
            None => Ok(Some(pdu)),
        },
    }
}

/// Commands that are the 16-octet header alone.
fn has_no_body(id: CommandId) -> bool {
    matches!(
        id,
        CommandId::GenericNack
            | CommandId::EnquireLink
            | CommandId::EnquireLinkResp
            | CommandId::Unbind
            | CommandId::UnbindResp
    )
}

/// The TLVs of the message PDUs, whose values rusmpp decodes without regard to the declared
/// value_length: a fixed-size value (message_state) is read as one octet whatever the length
/// says, even past the end of the body, and a C-string value (receipted_message_id) is searched
/// for its NUL into the TLVs after it. A body that decodes with a length that disagrees with
/// its value was therefore read at the wrong offsets and cannot be trusted.
fn tlvs(pdu: &Pdu) -> &[Tlv] {
    match pdu {
        Pdu::DeliverSm(pdu) => pdu.tlvs(),
        Pdu::SubmitSm(pdu) => pdu.tlvs(),
        Pdu::DataSm(pdu) => pdu.tlvs(),
        _ => &[],
    }
}

fn tlv_length_agrees(tlv: &Tlv) -> bool {
    usize::from(tlv.value_length()) == tlv.value().map_or(0, Length::length)
}

/// Whether the body ended inside the field rusmpp was reading. rusmpp's C-string decoder leaves
/// the buffer at the string when it fails, so no NUL in what is left means the body ended early.
fn ran_out(error: &DecodeError, rest: &[u8]) -> bool {
    match error.kind() {
        DecodeErrorKind::UnexpectedEof => true,
        DecodeErrorKind::COctetStringDecodeError(COctetStringDecodeError::NotNullTerminated) => {
            !rest.contains(&0)
        }
        _ => false,
    }
}

/// Finds the first broken field of a message PDU body that rusmpp refused, mirroring rusmpp's
/// rules (C-strings NUL-terminated within their maximum and ASCII; times empty or 17 octets).
fn locate(id: CommandId, body: &[u8]) -> Option<Fault> {
    let mut rest = body;
    let walked = match id {
        CommandId::SubmitSm | CommandId::DeliverSm => walk_sm(&mut rest),
        CommandId::DataSm => walk_data_sm(&mut rest),
        _ => return None,
    };
    Some(match walked.and_then(|()| walk_tlvs(rest)) {
        Err(fault) => fault,
        Ok(()) => Fault::TlvValue,
    })
}

fn walk_sm(rest: &mut &[u8]) -> Result<(), Fault> {
    c_string(rest, 6, Fault::ServiceType)?;
    octets(rest, 2)?;
    c_string(rest, 21, Fault::SourceAddr)?;
    octets(rest, 2)?;
    c_string(rest, 21, Fault::DestinationAddr)?;
    octets(rest, 3)?;
    time(rest, Fault::ScheduleDeliveryTime)?;
    time(rest, Fault::ValidityPeriod)?;
    octets(rest, 4)?;
    let sm_length = octets(rest, 1)?[0];
    octets(rest, usize::from(sm_length)).map_err(|_| Fault::ShortMessage)?;
    Ok(())
}

fn walk_data_sm(rest: &mut &[u8]) -> Result<(), Fault> {
    c_string(rest, 6, Fault::ServiceType)?;
    octets(rest, 2)?;
    c_string(rest, 21, Fault::SourceAddr)?;
    octets(rest, 2)?;
    c_string(rest, 21, Fault::DestinationAddr)?;
    octets(rest, 3)?;
    Ok(())
}

fn walk_tlvs(mut rest: &[u8]) -> Result<(), Fault> {
    while !rest.is_empty() {
        let header = octets(&mut rest, 4).map_err(|_| Fault::TlvStream)?;
        let len = u16::from_be_bytes([header[2], header[3]]);
        octets(&mut rest, usize::from(len)).map_err(|_| Fault::TlvStream)?;
    }
    Ok(())
}

fn octets<'a>(rest: &mut &'a [u8], n: usize) -> Result<&'a [u8], Fault> {
    let (taken, tail) = rest.split_at_checked(n).ok_or(Fault::Truncated)?;
    *rest = tail;
    Ok(taken)
}

/// A C-string of at most `max` octets including its NUL; returns its length without the NUL.
fn c_string(rest: &mut &[u8], max: usize, field: Fault) -> Result<usize, Fault> {
    let Some(nul) = rest.iter().take(max).position(|&b| b == 0) else {
        return Err(if rest.contains(&0) {
            field
        } else {
            Fault::Truncated
        });
    };
    let text = octets(rest, nul + 1)?;
    if text.is_ascii() { Ok(nul) } else { Err(field) }
}

/// An SMPP time: empty, or 16 characters and a NUL.
fn time(rest: &mut &[u8], field: Fault) -> Result<(), Fault> {
    match c_string(rest, 17, field)? {
        0 | 16 => Ok(()),
        _ => Err(field),
    }
}

/// `Decoder`/`Encoder` for `tokio_util::codec::Framed`, applying the same length limit both ways
/// so moauth never sends a PDU it would itself refuse (the simulator uses this codec too).
#[derive(Debug, Clone)]
pub struct SmppCodec {
    max_len: usize,
}

impl SmppCodec {
    pub fn new(max_len: usize) -> Self {
        SmppCodec { max_len }
    }
}

impl Default for SmppCodec {
    fn default() -> Self {
        SmppCodec::new(DEFAULT_MAX_LEN)
    }
}

impl Decoder for SmppCodec {
    type Item = Inbound;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Inbound>, FrameError> {
        next(src, self.max_len)
    }
}

impl Encoder<&Command> for SmppCodec {
    type Error = FrameError;

    fn encode(&mut self, command: &Command, dst: &mut BytesMut) -> Result<(), FrameError> {
        let len = LENGTH_LEN + command.length();
        let too_long = FrameError::TooLong {
            len,
            max_len: self.max_len,
        };
        let command_length = u32::try_from(len)
            .ok()
            .filter(|_| len <= self.max_len)
            .ok_or(too_long)?;
        dst.reserve(len);
        dst.put_u32(command_length);
        command.encode(dst);
        Ok(())
    }
}

impl Encoder<Command> for SmppCodec {
    type Error = FrameError;

    fn encode(&mut self, command: Command, dst: &mut BytesMut) -> Result<(), FrameError> {
        self.encode(&command, dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENQUIRE_LINK: [u8; 16] = [0, 0, 0, 16, 0, 0, 0, 0x15, 0, 0, 0, 0, 0, 0, 0, 7];

    fn command(inbound: Option<Inbound>) -> Command {
        match inbound {
            Some(Inbound::Command(command)) => command,
            other => panic!("expected a command, got {other:?}"),
        }
    }

    fn bad(inbound: Option<Inbound>) -> (Header, PduError) {
        match inbound {
            Some(Inbound::Bad { header, error }) => (header, error),
            other => panic!("expected a bad PDU, got {other:?}"),
        }
    }

    fn encoded(command: &Command) -> Vec<u8> {
        let mut out = BytesMut::new();
        SmppCodec::default().encode(command, &mut out).unwrap();
        out.to_vec()
    }

    #[test]
    fn octets_after_a_header_only_pdu_are_refused() {
        let mut buf =
            BytesMut::from(&hex::decode("0000001180000000000080000004000000").unwrap()[..]);
        match next(&mut buf, DEFAULT_MAX_LEN) {
            // A negative response keeps its header and reads as if its body were empty.
            Ok(Some(Inbound::Command(c))) => assert_eq!(c.pdu(), Some(&Pdu::GenericNack)),
            other => panic!("{other:?}"),
        }
        let mut buf =
            BytesMut::from(&hex::decode("000000110000001500000000000000010000").unwrap()[..17]);
        assert!(matches!(
            next(&mut buf, DEFAULT_MAX_LEN),
            Ok(Some(Inbound::Bad {
                error: PduError::TrailingOctets { count: 1, .. },
                ..
            }))
        ));
    }

    #[test]
    fn frame_split_across_reads() {
        let mut buf = BytesMut::new();
        for &octet in &ENQUIRE_LINK[..15] {
            buf.put_u8(octet);
            assert!(next(&mut buf, DEFAULT_MAX_LEN).unwrap().is_none());
        }
        buf.put_u8(ENQUIRE_LINK[15]);
        let command = command(next(&mut buf, DEFAULT_MAX_LEN).unwrap());
        assert_eq!(command.id(), CommandId::EnquireLink);
        assert_eq!(command.sequence_number(), 7);
        assert!(buf.is_empty());
    }

    #[test]
    fn two_frames_in_one_read() {
        let mut buf = BytesMut::from(&ENQUIRE_LINK[..]);
        buf.extend_from_slice(&[0, 0, 0, 16, 0x80, 0, 0, 0x15, 0, 0, 0, 0, 0, 0, 0, 8]);
        let mut codec = SmppCodec::default();
        assert_eq!(
            command(codec.decode(&mut buf).unwrap()).id(),
            CommandId::EnquireLink
        );
        let second = command(codec.decode(&mut buf).unwrap());
        assert_eq!(second.id(), CommandId::EnquireLinkResp);
        assert_eq!(second.sequence_number(), 8);
        assert!(codec.decode(&mut buf).unwrap().is_none());
    }

    #[test]
    fn unterminated_c_string_stays_in_its_frame() {
        // deliver_sm whose body ends inside source_addr, then an enquire_link full of NULs.
        let body = [0x00, 0x01, 0x01, b'1', b'2', b'3'];
        let mut buf = BytesMut::new();
        buf.put_u32((HEADER_LEN + body.len()) as u32);
        buf.put_slice(&[0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 3]);
        buf.put_slice(&body);
        buf.put_slice(&ENQUIRE_LINK);
        let (header, error) = bad(next(&mut buf, DEFAULT_MAX_LEN).unwrap());
        assert_eq!(header.sequence_number, 3);
        assert!(matches!(
            error,
            PduError::Body {
                command_id: CommandId::DeliverSm,
                fault: Some(Fault::Truncated),
                ..
            }
        ));
        assert_eq!(error.status(), CommandStatus::EsmeRinvcmdlen);
        let answer = header.reject(error.status()).unwrap();
        assert_eq!(
            encoded(&answer),
            [0, 0, 0, 17, 0x80, 0, 0, 5, 0, 0, 0, 2, 0, 0, 0, 3, 0]
        );
        assert_eq!(
            command(next(&mut buf, DEFAULT_MAX_LEN).unwrap()).id(),
            CommandId::EnquireLink
        );
    }

    #[test]
    fn length_outside_limits_is_fatal() {
        let mut buf = BytesMut::from(&[0, 0, 0x20, 0x01][..]);
        assert!(matches!(
            next(&mut buf, DEFAULT_MAX_LEN),
            Err(FrameError::TooLong {
                len: 8193,
                max_len: 8192
            })
        ));
        let mut buf = BytesMut::from(&[0, 0, 0x20, 0x01][..]);
        assert!(next(&mut buf, 65_536).unwrap().is_none());
        let mut buf = BytesMut::from(&[0, 0, 0, 15][..]);
        assert!(matches!(
            next(&mut buf, DEFAULT_MAX_LEN),
            Err(FrameError::TooShort { len: 15 })
        ));
    }

    #[test]
    fn unknown_command_id_is_answered_with_generic_nack() {
        let mut buf = BytesMut::from(&[0, 0, 0, 16, 0, 0, 1, 0x10, 0, 0, 0, 0, 0, 0, 0, 9][..]);
        let (header, error) = bad(next(&mut buf, DEFAULT_MAX_LEN).unwrap());
        assert!(matches!(error, PduError::UnknownCommandId(0x110)));
        let answer = header.reject(error.status()).unwrap();
        assert_eq!(answer.id(), CommandId::GenericNack);
        assert_eq!(
            encoded(&answer),
            [0, 0, 0, 16, 0x80, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 9]
        );
    }

    #[test]
    fn bad_requests_get_their_own_response_and_bad_responses_none() {
        // enquire_link with a stray body octet.
        let mut buf =
            BytesMut::from(&[0, 0, 0, 17, 0, 0, 0, 0x15, 0, 0, 0, 0, 0, 0, 0, 4, 0xAA][..]);
        let (header, error) = bad(next(&mut buf, DEFAULT_MAX_LEN).unwrap());
        assert!(matches!(error, PduError::TrailingOctets { count: 1, .. }));
        let answer = header.reject(error.status()).unwrap();
        assert_eq!(answer.id(), CommandId::EnquireLinkResp);
        assert_eq!(answer.status(), CommandStatus::EsmeRinvcmdlen);
        // deliver_sm without a body.
        let mut buf = BytesMut::from(&[0, 0, 0, 16, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 4][..]);
        let (_, error) = bad(next(&mut buf, DEFAULT_MAX_LEN).unwrap());
        assert!(matches!(error, PduError::MissingBody(CommandId::DeliverSm)));
        // outbind has no response of its own.
        let outbind = Header {
            command_length: 16,
            command_id: 0x0B,
            command_status: 0,
            sequence_number: 1,
        };
        assert_eq!(outbind.response_id(), Some(CommandId::GenericNack));
        // A positive submit_sm_resp whose message_id never ends is bad but never answered.
        let mut buf =
            BytesMut::from(&[0, 0, 0, 17, 0x80, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 4, b'9'][..]);
        let (header, error) = bad(next(&mut buf, DEFAULT_MAX_LEN).unwrap());
        assert_eq!(error.status(), CommandStatus::EsmeRinvcmdlen);
        assert!(header.reject(error.status()).is_none());
    }

    #[test]
    fn negative_response_keeps_its_header() {
        let mut buf =
            BytesMut::from(&[0, 0, 0, 17, 0x80, 0, 0, 4, 0, 0, 0, 0x0B, 0, 0, 0, 4, b'9'][..]);
        let command = command(next(&mut buf, DEFAULT_MAX_LEN).unwrap());
        assert_eq!(command.status(), CommandStatus::EsmeRinvdstadr);
        assert_eq!(command.id(), CommandId::SubmitSmResp);
        assert!(command.pdu().is_none());
    }

    #[test]
    fn faults_name_the_field() {
        fn deliver_sm(body: &[u8]) -> PduError {
            let mut buf = BytesMut::new();
            buf.put_u32((HEADER_LEN + body.len()) as u32);
            buf.put_slice(&[0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 1]);
            buf.put_slice(body);
            bad(next(&mut buf, DEFAULT_MAX_LEN).unwrap()).1
        }
        fn mandatory(source: &[u8], dest: &[u8]) -> Vec<u8> {
            let mut body = vec![0, 1, 1];
            body.extend_from_slice(source);
            body.extend([1, 1]);
            body.extend_from_slice(dest);
            // esm_class, protocol_id, priority, two empty times, registered_delivery,
            // replace_if_present, data_coding, sm_default_msg_id.
            body.extend([0; 9]);
            body
        }
        let mut long_source = [b'1'; 26];
        long_source[25] = 0;
        let error = deliver_sm(&[mandatory(&long_source, b"2\0"), vec![0]].concat());
        assert_eq!(error.status(), CommandStatus::EsmeRinvsrcadr);
        let error = deliver_sm(&[mandatory(b"1\0", &[0xE9, 0]), vec![0]].concat());
        assert_eq!(error.status(), CommandStatus::EsmeRinvdstadr);
        let error = deliver_sm(&[mandatory(b"1\0", b"2\0"), vec![5, b'a']].concat());
        assert_eq!(error.status(), CommandStatus::EsmeRinvmsglen);
        // message_state must be one octet.
        let tlv = [0x04, 0x27, 0x00, 0x02, 0x02, 0x02];
        let error = deliver_sm(&[mandatory(b"1\0", b"2\0"), vec![0], tlv.to_vec()].concat());
        assert_eq!(error.status(), CommandStatus::EsmeRinvtlvval);
        let tlv = [0x04, 0x27, 0x00, 0x05, 0x02, 0x00, 0x1E, 0x00];
        let error = deliver_sm(&[mandatory(b"1\0", b"2\0"), vec![0], tlv.to_vec()].concat());
        assert_eq!(error.status(), CommandStatus::EsmeRinvtlvstream);
        // rusmpp reads this message_state as one octet and accepts the body; the length check
        // catches it.
        let tlv = [0x04, 0x27, 0x00, 0x09, 0x02];
        let error = deliver_sm(&[mandatory(b"1\0", b"2\0"), vec![0], tlv.to_vec()].concat());
        assert!(matches!(
            error,
            PduError::TlvLength {
                tag: 0x0427,
                declared: 9,
                decoded: 1,
                ..
            }
        ));
        assert_eq!(error.status(), CommandStatus::EsmeRinvtlvlen);
    }

    #[test]
    fn encoder_round_trips_and_enforces_the_limit() {
        let answer = Command::new(CommandStatus::EsmeRok, 42, DeliverSmResp::default());
        let mut buf = BytesMut::from(&encoded(&answer)[..]);
        assert_eq!(command(next(&mut buf, DEFAULT_MAX_LEN).unwrap()), answer);
        let mut out = BytesMut::new();
        assert!(matches!(
            SmppCodec::new(16).encode(answer, &mut out),
            Err(FrameError::TooLong {
                len: 17,
                max_len: 16
            })
        ));
    }
}
