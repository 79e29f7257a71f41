//! The token's check: CRC-10/ATM over the 140 bits of the first 28 symbols.
//!
//! A CRC rather than Crockford's mod-37 check symbol, because mod 37 needs the symbols `*~$=U`,
//! which are awkward to type and not all in GSM-7's basic set; ten bits fit exactly in two
//! ordinary symbols.
//!
//! Why it catches the two mistakes people make when copying a token:
//! - one wrong symbol changes at most 5 consecutive bits;
//! - swapping two adjacent symbols `a b` → `b a` flips `a ⊕ b` in both, at most 10 consecutive bits.
//!
//! Either way the error pattern is `E(x) = x^j · B(x)` with `B ≠ 0` of degree < 10. The generator
//! `P(x) = x^10 + x^9 + x^5 + x^4 + x + 1` has a nonzero constant term, so it shares no factor with
//! `x^j`; it divides `E` only if it divides `B`, which a nonzero polynomial of lower degree cannot.
//! The argument covers the whole 150-bit codeword, so mistakes in the check symbols themselves,
//! or a swap across the 28th/29th symbol, are caught as well.
//!
//! The bitwise form is the reference implementation in `protocol/token.md`; 140 bits per token do
//! not warrant a table.

/// `P(x)` without its `x^10` term.
const POLY: u16 = 0x233;
const MASK: u16 = 0x3FF;

/// CRC-10/ATM (init 0, no reflection, xorout 0) of a bit string, most significant bit first.
pub fn crc10(bits: impl IntoIterator<Item = bool>) -> u16 {
    bits.into_iter().fold(0, |crc, bit| {
        let feedback = ((crc >> 9) & 1 == 1) != bit;
        let shifted = (crc << 1) & MASK;
        if feedback { shifted ^ POLY } else { shifted }
    })
}

/// The check over 5-bit symbol values, each taken most significant bit first.
pub fn over_symbols(values: &[u8]) -> u16 {
    crc10(
        values
            .iter()
            .flat_map(|&v| (0..5).rev().map(move |i| (v >> i) & 1 == 1)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn byte_bits(bytes: &[u8]) -> impl Iterator<Item = bool> + '_ {
        bytes
            .iter()
            .flat_map(|&b| (0..8).rev().map(move |i| (b >> i) & 1 == 1))
    }

    #[test]
    fn catalogue_check_value() {
        // The "check" value of CRC-10/ATM in the CRC RevEng catalogue.
        assert_eq!(crc10(byte_bits(b"123456789")), 0x199);
    }

    #[test]
    fn known_values() {
        assert_eq!(crc10(byte_bits(b"")), 0);
        assert_eq!(crc10(byte_bits(&[0x00])), 0);
        // A lone 1 bit is x^10 after shifting, and x^10 mod P(x) is P without its top term.
        assert_eq!(crc10([true]), POLY);
        assert_eq!(crc10(byte_bits(&[0x80])), 0x188); // x^17 mod P(x)
    }

    #[test]
    fn symbols_are_read_five_bits_at_a_time() {
        let values = [0b10000, 0b00001, 0b11111, 0b01010];
        let bits = "10000000011111101010".chars().map(|c| c == '1');
        assert_eq!(over_symbols(&values), crc10(bits));
    }

    #[test]
    fn a_codeword_leaves_no_remainder() {
        let mut values = [7u8; 30];
        let check = over_symbols(&values[..28]);
        values[28] = (check >> 5) as u8;
        values[29] = (check & 0x1F) as u8;
        assert_eq!(over_symbols(&values), 0);
    }

    #[test]
    fn every_burst_of_up_to_ten_bits_is_detected() {
        // The CRC is linear (init 0, xorout 0), so damage goes unnoticed exactly when the error
        // pattern alone leaves remainder 0; try every burst at every offset of 150 bits.
        for len in 1..=10 {
            for pattern in (1u16 << (len - 1))..(1 << len) {
                if pattern & 1 == 0 && len > 1 {
                    continue;
                }
                for start in 0..=150 - len {
                    let error = (0..150).map(|i| {
                        i >= start && i < start + len && (pattern >> (start + len - 1 - i)) & 1 == 1
                    });
                    assert_ne!(crc10(error), 0, "burst {pattern:b} at bit {start}");
                }
            }
        }
    }
}
