//! Concatenated MOs, without I/O: which MO is a part, which message it belongs to, and how the
//! parts make the whole.
//!
//! Phones number long SMS with a UDH concatenation IE (8- or 16-bit reference); some SMSCs
//! reassemble the UDH away and send sar_* TLVs instead. Both become one [`Concat`]. Parts are
//! joined as raw user data, before any text decoding, because a part boundary may fall inside
//! a UCS-2 surrogate pair or a GSM escape sequence.

use crate::core::mo::MoMessage;
use crate::smpp::udh::{self, Concat, UdhError};

/// esm_class bit: user data starts with a UDH.
pub const ESM_UDHI: u8 = 0x40;

/// One part of a longer message.
#[derive(Debug, PartialEq, Eq)]
pub struct Part {
    /// Sender, destination, connection, reference and count: parts with equal groups belong
    /// together, so two phones picking the same reference never mix.
    pub group: Vec<u8>,
    pub concat: Concat,
    /// The MO with only this part's text: UDH removed, UDHI and sar cleared.
    pub payload: MoMessage,
}

/// Some(part) when `mo` is one part of several; None for a message complete in itself.
pub fn split(mo: &MoMessage) -> Result<Option<Part>, UdhError> {
    let (concat, data) = if mo.esm_class & ESM_UDHI != 0 {
        let (header, data) = udh::split(&mo.user_data)?;
        (header.concat(), data)
    } else {
        (mo.sar, &mo.user_data[..])
    };
    let Some(concat) = concat.filter(|c| c.total > 1 && (1..=c.total).contains(&c.seq)) else {
        return Ok(None);
    };
    let mut group = Vec::new();
    for field in [&mo.smsc, &mo.source_addr, &mo.destination_addr] {
        group.extend_from_slice(field.as_bytes());
        group.push(0);
    }
    group.extend_from_slice(&concat.reference.to_be_bytes());
    group.push(concat.total);
    Ok(Some(Part {
        group,
        concat,
        payload: MoMessage {
            esm_class: mo.esm_class & !ESM_UDHI,
            user_data: data.to_vec(),
            sar: None,
            ..mo.clone()
        },
    }))
}

/// The whole message from its parts in order; it counts as received when its first part was.
pub fn join(parts: Vec<MoMessage>) -> MoMessage {
    let received_at = parts
        .iter()
        .map(|p| p.received_at)
        .min()
        .unwrap_or_default();
    let mut parts = parts.into_iter();
    let mut whole = parts.next().expect("a message has at least two parts");
    for part in parts {
        whole.user_data.extend_from_slice(&part.user_data);
    }
    whole.received_at = received_at;
    whole
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mo(esm_class: u8, user_data: &[u8], sar: Option<Concat>) -> MoMessage {
        MoMessage {
            smsc: "main".into(),
            source_addr: "8613800138000".into(),
            source_ton: 1,
            destination_addr: "10690000".into(),
            esm_class,
            data_coding: 8,
            user_data: user_data.to_vec(),
            sar,
            received_at: 10,
        }
    }

    #[test]
    fn udh_part_is_split_from_its_header() {
        let part = split(&mo(0x40, &[5, 0, 3, 0x2a, 3, 2, 0, 0x41], None))
            .unwrap()
            .unwrap();
        assert_eq!(
            part.concat,
            Concat {
                reference: 0x2a,
                total: 3,
                seq: 2
            }
        );
        assert_eq!(part.payload.user_data, [0, 0x41]);
        assert_eq!(part.payload.esm_class, 0);
    }

    #[test]
    fn sixteen_bit_reference_and_sar_tlvs_are_parts_too() {
        let udh16 = split(&mo(0x40, &[6, 8, 4, 0x12, 0x34, 2, 1, 0x41], None))
            .unwrap()
            .unwrap();
        assert_eq!(udh16.concat.reference, 0x1234);
        let sar = Concat {
            reference: 7,
            total: 2,
            seq: 2,
        };
        let part = split(&mo(0, b"xy", Some(sar))).unwrap().unwrap();
        assert_eq!(
            (part.concat, part.payload.user_data.as_slice()),
            (sar, &b"xy"[..])
        );
    }

    #[test]
    fn a_single_sms_is_not_a_part() {
        assert_eq!(split(&mo(0, b"LOGIN", None)).unwrap(), None);
        assert_eq!(
            split(&mo(0x40, &[5, 0, 3, 1, 1, 1, 0x41], None)).unwrap(),
            None
        );
        let odd = Concat {
            reference: 1,
            total: 2,
            seq: 3,
        };
        assert_eq!(split(&mo(0, b"x", Some(odd))).unwrap(), None);
    }

    #[test]
    fn same_reference_from_two_phones_are_different_groups() {
        let a = split(&mo(0x40, &[5, 0, 3, 9, 2, 1, 0x41], None))
            .unwrap()
            .unwrap();
        let mut other = mo(0x40, &[5, 0, 3, 9, 2, 1, 0x41], None);
        other.source_addr = "8613900139000".into();
        let b = split(&other).unwrap().unwrap();
        assert_ne!(a.group, b.group);
    }

    #[test]
    fn join_keeps_order_and_first_arrival() {
        let mut first = mo(0, &[0xd8, 0x3d], None);
        first.received_at = 5;
        let whole = join(vec![first, mo(0, &[0xde, 0x00], None)]);
        assert_eq!(whole.user_data, [0xd8, 0x3d, 0xde, 0x00]);
        assert_eq!(whole.received_at, 5);
    }
}
