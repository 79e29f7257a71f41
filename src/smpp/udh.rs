//! User Data Header (3GPP TS 23.040 §9.2.3.24) at the front of a `short_message` whose esm_class
//! has UDHI set.
//!
//! rusmpp's `Udh::decode` reads only the first information element, so a header carrying a port
//! IE before the concatenation IE (common from handsets and gateways) loses the part numbers.
//! This parser walks every IE, borrows them from the message (no copies on the MO hot path), and
//! checks the ones moauth acts on when the header is split, so a `Udh` that exists is one whose
//! `concat()` can be trusted by reassembly. Unknown IEs are kept as raw bytes: the header must be
//! skipped correctly even when moauth does not understand all of it.

use thiserror::Error;

pub use crate::core::mo::Concat;

/// IEI of the concatenated short message IE with an 8-bit reference.
const IEI_CONCAT_8: u8 = 0x00;
/// IEI of the concatenated short message IE with a 16-bit reference.
const IEI_CONCAT_16: u8 = 0x08;
/// IEI of the national language single shift IE (table applies after a 0x1B escape only).
const IEI_SINGLE_SHIFT: u8 = 0x24;
/// IEI of the national language locking shift IE (table replaces the default alphabet).
const IEI_LOCKING_SHIFT: u8 = 0x25;

/// One information element, borrowed from the user data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ie<'a> {
    pub iei: u8,
    pub data: &'a [u8],
}

/// A parsed header; every IE is kept in wire order so callers can act on ones not modelled here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Udh<'a> {
    ies: Vec<Ie<'a>>,
}

/// Why a header cannot be used; the message it came from should not be reassembled or rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum UdhError {
    #[error("user data is empty, so it has no UDH length octet")]
    Empty,
    #[error("UDH length {udhl} runs past the {available} octets of user data that follow it")]
    UdhlBeyondData { udhl: usize, available: usize },
    #[error("information element at offset {offset} runs past the end of the UDH")]
    IeBeyondUdh { offset: usize },
}

/// Splits user data into its header and the payload after it.
///
/// The payload is returned as octets because its meaning (septets, UCS-2 units, binary) depends
/// on data_coding, which this module does not see.
pub fn split(user_data: &[u8]) -> Result<(Udh<'_>, &[u8]), UdhError> {
    let (&udhl, rest) = user_data.split_first().ok_or(UdhError::Empty)?;
    let udhl = usize::from(udhl);
    if udhl > rest.len() {
        return Err(UdhError::UdhlBeyondData {
            udhl,
            available: rest.len(),
        });
    }
    let (mut header, payload) = rest.split_at(udhl);
    let mut ies = Vec::new();
    while !header.is_empty() {
        let offset = udhl - header.len();
        let [iei, len, tail @ ..] = header else {
            return Err(UdhError::IeBeyondUdh { offset });
        };
        let len = usize::from(*len);
        if len > tail.len() {
            return Err(UdhError::IeBeyondUdh { offset });
        }
        let (data, next) = tail.split_at(len);
        let ie = Ie { iei: *iei, data };
        // TS 23.040 §9.2.3.24: a receiver ignores an IE it cannot use and reads on; the IE's
        // own length octet still says where the next one starts. Other stacks do the same, so
        // a gateway's malformed concatenation IE costs the part numbering, not the message.
        if usable(ie) {
            ies.push(ie);
        }
        header = next;
    }
    Ok((Udh { ies }, payload))
}

/// Whether an IE moauth interprets is well formed, so the accessors below never meet one that
/// is not; IEs moauth does not interpret are always kept.
fn usable(ie: Ie<'_>) -> bool {
    let expected = match ie.iei {
        IEI_CONCAT_8 => 3,
        IEI_CONCAT_16 => 4,
        IEI_SINGLE_SHIFT | IEI_LOCKING_SHIFT => 1,
        _ => return true,
    };
    ie.data.len() == expected
        && concat_of(ie).is_none_or(|c| c.total != 0 && c.seq != 0 && c.seq <= c.total)
}

/// Reads a concatenation IE whose length has already been checked.
fn concat_of(ie: Ie<'_>) -> Option<Concat> {
    match (ie.iei, ie.data) {
        (IEI_CONCAT_8, &[reference, total, seq]) => Some(Concat {
            reference: u16::from(reference),
            total,
            seq,
        }),
        (IEI_CONCAT_16, &[hi, lo, total, seq]) => Some(Concat {
            reference: u16::from_be_bytes([hi, lo]),
            total,
            seq,
        }),
        _ => None,
    }
}

impl<'a> Udh<'a> {
    pub fn ies(&self) -> &[Ie<'a>] {
        &self.ies
    }

    /// The concatenation info, if any.
    ///
    /// TS 23.040 §9.2.3.24: when a non-repeatable IE is repeated, or mutually exclusive IEs
    /// (8-bit and 16-bit concatenation) both occur, the last occurrence is the one that counts.
    pub fn concat(&self) -> Option<Concat> {
        self.ies.iter().rev().find_map(|ie| concat_of(*ie))
    }

    /// National language table (TS 23.038 §6.2.1.2.4) for characters after a 0x1B escape.
    ///
    /// Exposed rather than applied: `text::decode` uses the default tables, and a caller that
    /// needs the national ones can tell from this value that the rendering is approximate.
    pub fn single_shift(&self) -> Option<u8> {
        self.last_octet(IEI_SINGLE_SHIFT)
    }

    /// National language table that replaces the default alphabet for the whole message.
    pub fn locking_shift(&self) -> Option<u8> {
        self.last_octet(IEI_LOCKING_SHIFT)
    }

    fn last_octet(&self, iei: u8) -> Option<u8> {
        self.ies
            .iter()
            .rev()
            .find(|ie| ie.iei == iei)
            .and_then(|ie| ie.data.first().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_then_concat_keeps_both() {
        let data = [
            0x0b, 0x05, 0x04, 0x15, 0x82, 0x00, 0x00, 0x00, 0x03, 0xaa, 0x03, 0x01, b't',
        ];
        let (udh, payload) = split(&data).unwrap();
        assert_eq!(udh.ies().len(), 2);
        assert_eq!(
            udh.concat(),
            Some(Concat {
                reference: 0xaa,
                total: 3,
                seq: 1
            })
        );
        assert_eq!(payload, b"t");
    }

    #[test]
    fn sixteen_bit_reference() {
        let (udh, payload) = split(&[0x06, 0x08, 0x04, 0x9c, 0xfa, 0x03, 0x02]).unwrap();
        assert_eq!(
            udh.concat(),
            Some(Concat {
                reference: 0x9cfa,
                total: 3,
                seq: 2
            })
        );
        assert!(payload.is_empty());
    }

    #[test]
    fn shift_tables_are_exposed() {
        let (udh, _) = split(&[0x06, 0x24, 0x01, 0x03, 0x25, 0x01, 0x02]).unwrap();
        assert_eq!(udh.single_shift(), Some(3));
        assert_eq!(udh.locking_shift(), Some(2));
        assert_eq!(udh.concat(), None);
    }

    #[test]
    fn empty_header_is_valid() {
        let (udh, payload) = split(&[0x00, 0x41]).unwrap();
        assert!(udh.ies().is_empty());
        assert_eq!(payload, [0x41]);
    }

    #[test]
    fn malformed_headers_are_refused() {
        assert_eq!(split(&[]), Err(UdhError::Empty));
        assert_eq!(
            split(&[0x05, 0x00, 0x03]),
            Err(UdhError::UdhlBeyondData {
                udhl: 5,
                available: 2
            })
        );
        assert_eq!(
            split(&[0x03, 0x00, 0x03, 0x01]),
            Err(UdhError::IeBeyondUdh { offset: 0 })
        );
        assert_eq!(
            split(&[0x01, 0x00]),
            Err(UdhError::IeBeyondUdh { offset: 0 })
        );
    }

    #[test]
    fn a_malformed_known_ie_is_ignored_and_the_rest_read() {
        let sixteen = Concat {
            reference: 0x1234,
            total: 2,
            seq: 1,
        };
        // 8-bit concatenation IE of length 2, then a good 16-bit one.
        let data = [
            0x0A, 0x00, 0x02, 0x01, 0x02, 0x08, 0x04, 0x12, 0x34, 0x02, 0x01, b'h', b'i',
        ];
        let (udh, payload) = split(&data).unwrap();
        assert_eq!(udh.concat(), Some(sixteen));
        assert_eq!(payload, b"hi");
        assert_eq!(udh.ies().len(), 1);
        // A good one first, then one of length 4 for the 8-bit IEI: the good one counts.
        let data = [
            0x0C, 0x08, 0x04, 0x12, 0x34, 0x02, 0x01, 0x00, 0x04, 0x01, 0x02, 0x01, 0x01, b'h',
        ];
        assert_eq!(split(&data).unwrap().0.concat(), Some(sixteen));
        // Part numbers no message can have are ignored the same way.
        for (total, seq) in [(0, 1), (2, 0), (2, 3)] {
            let data = [0x05, 0x00, 0x03, 0x01, total, seq, b'x'];
            let (udh, payload) = split(&data).unwrap();
            assert_eq!(udh.concat(), None, "{total} {seq}");
            assert_eq!(payload, b"x");
        }
        // A shift IE of the wrong length is not read either.
        let (udh, _) = split(&[0x04, 0x24, 0x02, 0x03, 0x04]).unwrap();
        assert_eq!(udh.single_shift(), None);
    }
}
