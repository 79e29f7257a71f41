//! Text of a short message: decoding inbound user data and encoding outbound texts into SMS parts.
//!
//! Both directions live here because they share the GSM 03.38 tables, and decoding must be the
//! exact inverse of encoding for `moauth sim` and the tests to prove anything. The tables are
//! written out rather than taken from rusmpp-extra, which encodes only (there is nothing in rusmpp
//! to decode with) and whose multipart builder defaults every message to reference 0.
//!
//! SMPP carries GSM 7-bit text unpacked, one septet per octet, so no bit packing happens here.
//! National language shift tables are not applied: `udh::Udh` exposes the shift IEs and the
//! default tables are used, which is what TS 23.038 asks of a receiver without those tables.
//!
//! data_coding values decoded (anything else is `TextError::Unsupported`, e.g. 0x02/0x04 binary):
//! - 0x00 GSM default alphabet; 0x01 IA5 (ASCII); 0x03 Latin-1; 0x08 UCS-2 (read as UTF-16BE, so
//!   surrogate pairs from handsets that really send UTF-16 decode too).
//! - 0x10..=0x1F: reserved by SMPP, but some SMSCs copy the handset's TP-DCS into data_coding
//!   unchanged; read as TS 23.038's general data coding group with a message class (bits 3..2:
//!   00 GSM, 10 UCS-2, 01 8-bit and 11 reserved are unsupported).
//! - 0xC0..=0xDF GSM and 0xE0..=0xEF UCS-2 (TS 23.038 message waiting groups, to which SMPP
//!   defers for 0xC0 and up); 0xF0..=0xF3 GSM with a message class (0xF4..=0xF7 is 8-bit data).

use thiserror::Error;

/// The escape to the extension table, and also the "display a space" code within it.
const ESC: u8 = 0x1B;

/// GSM 03.38 default alphabet by septet; the entry at `ESC` is never output or matched.
const BASIC: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{1B}', 'Æ', 'æ', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

/// GSM 03.38 default extension table: the septet after `ESC`, and the character it stands for.
const EXTENSION: [(u8, char); 10] = [
    (0x0A, '\u{0C}'),
    (0x14, '^'),
    (0x28, '{'),
    (0x29, '}'),
    (0x2F, '\\'),
    (0x3C, '['),
    (0x3D, '~'),
    (0x3E, ']'),
    (0x40, '|'),
    (0x65, '€'),
];

/// Octets of text in one SMS without a UDH: 160 septets, or 70 UCS-2 units of two octets.
const GSM_SINGLE: usize = 160;
const UCS2_SINGLE: usize = 140;
/// Octets of text per part once the 6-octet concatenation UDH takes its share of the 140 octets
/// (in septets: 48 bits of header round up to 7 septets, 160 - 7 = 153).
const GSM_PART: usize = 153;
const UCS2_PART: usize = 134;
/// Start of the concatenation UDH: UDHL 5, IEI 0x00 (8-bit reference), IE length 3.
const CONCAT_UDH: [u8; 3] = [0x05, 0x00, 0x03];

/// data_coding values moauth sends.
const DC_GSM: u8 = 0x00;
const DC_UCS2: u8 = 0x08;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TextError {
    #[error("data_coding {0:#04x} is not a text alphabet moauth decodes")]
    Unsupported(u8),
    #[error("text needs {parts} SMS parts; concatenation allows at most 255")]
    TooLong { parts: usize },
}

/// One SMS of an outbound text, ready for submit_sm's data_coding, esm_class and short_message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub data_coding: u8,
    /// Set the UDHI bit (0x40) of esm_class: `short_message` starts with a UDH.
    pub esm_class_udhi: bool,
    pub short_message: Vec<u8>,
}

#[derive(Clone, Copy)]
enum Alphabet {
    Gsm,
    Ascii,
    Latin1,
    Ucs2,
}

fn alphabet(data_coding: u8) -> Result<Alphabet, TextError> {
    Ok(match data_coding {
        0x00 | 0xC0..=0xDF | 0xF0..=0xF3 => Alphabet::Gsm,
        0x01 => Alphabet::Ascii,
        0x03 => Alphabet::Latin1,
        0x08 | 0xE0..=0xEF => Alphabet::Ucs2,
        0x10..=0x1F => match (data_coding >> 2) & 0b11 {
            0b00 => Alphabet::Gsm,
            0b10 => Alphabet::Ucs2,
            _ => return Err(TextError::Unsupported(data_coding)),
        },
        _ => return Err(TextError::Unsupported(data_coding)),
    })
}

/// Decodes user data (after any UDH has been split off) as the given data_coding says.
///
/// Lenient, because a login hangs on a token in the text and a carrier's stray octet must not
/// lose it: a septet or UCS-2 unit that cannot be what data_coding says becomes U+FFFD and the
/// rest is read on. Only a data_coding that is not text at all is refused.
pub fn decode(data_coding: u8, bytes: &[u8]) -> Result<String, TextError> {
    // Many SMSCs pass Latin-1 (or 8-bit ASCII) octets under data_coding 0, "the SMSC default
    // alphabet", and under 1: an octet with the high bit set cannot be a GSM septet or ASCII,
    // so such user data is read as Latin-1, and a token in it survives a stray "é". (An SMSC
    // known to do so is configured with `default_alphabet`, and its 0 arrives here as 3 or 1.)
    // Under 1 the ASCII arm below reads every octet as Latin-1 already.
    if data_coding == 0x00 && bytes.iter().any(|octet| *octet >= 0x80) {
        return Ok(latin1(bytes));
    }
    let seven_bit = |octet: u8| (octet < 0x80).then_some(octet);
    match alphabet(data_coding)? {
        Alphabet::Gsm => {
            let mut text = String::with_capacity(bytes.len());
            let mut septets = bytes.iter().copied();
            while let Some(octet) = septets.next() {
                match seven_bit(octet) {
                    Some(ESC) => {
                        // A sender never ends on an escape; TS 23.038 renders ESC in the
                        // extension table as a space, and a dangling one is read the same way.
                        let escaped = septets.next().map_or(Some(ESC), seven_bit);
                        text.push(escaped.map_or(char::REPLACEMENT_CHARACTER, extended));
                    }
                    Some(septet) => text.push(BASIC[usize::from(septet)]),
                    None => text.push(char::REPLACEMENT_CHARACTER),
                }
            }
            Ok(text)
        }
        // ASCII is Latin-1's lower half, so high octets under it are read as Latin-1 too.
        Alphabet::Ascii | Alphabet::Latin1 => Ok(latin1(bytes)),
        Alphabet::Ucs2 => {
            let units = bytes
                .chunks_exact(2)
                .map(|pair| u16::from_be_bytes([pair[0], pair[1]]));
            let mut text: String = char::decode_utf16(units)
                .map(|unit| unit.unwrap_or(char::REPLACEMENT_CHARACTER))
                .collect();
            // An odd octet at the end is half a unit: shown, not a reason to lose the rest.
            if !bytes.len().is_multiple_of(2) {
                text.push(char::REPLACEMENT_CHARACTER);
            }
            Ok(text)
        }
    }
}

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().copied().map(char::from).collect()
}

/// The character for `ESC septet`. TS 23.038: a code missing from the extension table is shown
/// as the default-alphabet character, and ESC ESC (reserved for a further table) as a space.
fn extended(septet: u8) -> char {
    match EXTENSION.iter().find(|(code, _)| *code == septet) {
        Some(&(_, c)) => c,
        None if septet == ESC => ' ',
        None => BASIC[usize::from(septet)],
    }
}

/// In [`BASIC_UP_TO_FF`]: the character is not in the basic table.
const NOT_BASIC: u8 = 0xFF;

/// The basic table's septet of each character up to U+00FF (nearly every character of a
/// text that fits GSM), so encoding one takes an index rather than a walk through the table.
const BASIC_UP_TO_FF: [u8; 256] = {
    let mut table = [NOT_BASIC; 256];
    let mut septet = 0;
    while septet < BASIC.len() {
        let c = BASIC[septet] as usize;
        if septet != ESC as usize && c < table.len() {
            table[c] = septet as u8;
        }
        septet += 1;
    }
    table
};

/// The unpacked GSM encoding of one character (the first `len` of `septets`: a septet, or
/// the escape and an extension septet), or `None` if it is outside both tables.
fn gsm_septets(c: char) -> Option<([u8; 2], usize)> {
    let basic = match BASIC_UP_TO_FF.get(c as usize) {
        Some(&NOT_BASIC) => None,
        Some(&septet) => Some(septet),
        // Above U+00FF the basic table has only Greek capitals.
        None => (0u8..128).find(|&s| s != ESC && BASIC[usize::from(s)] == c),
    };
    if let Some(septet) = basic {
        return Some(([septet, 0], 1));
    }
    let &(code, _) = EXTENSION.iter().find(|(_, e)| *e == c)?;
    Some(([ESC, code], 2))
}

/// The unpacked GSM encoding of `text`, or `None` if a character is outside both tables.
fn encode_gsm(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        let (septets, len) = gsm_septets(c)?;
        out.extend_from_slice(&septets[..len]);
    }
    Some(out)
}

/// How many SMS the carrier bills for `text`: the parts [`encode_sms`] would make, counted
/// without making them. One that cannot be encoded (too many parts) is never sent, but is
/// counted as one, so that a budget holds it back rather than waves it through.
pub fn billed_segments(text: &str) -> u32 {
    let gsm_len = |c| gsm_septets(c).map(|(_, len)| len);
    let parts = match text.chars().map(gsm_len).sum::<Option<usize>>() {
        Some(septets) => count_parts(
            septets,
            text.chars().map(|c| gsm_len(c).unwrap_or(1)),
            GSM_SINGLE,
            GSM_PART,
        ),
        None => count_parts(
            text.encode_utf16().count(),
            text.chars().map(char::len_utf16),
            UCS2_SINGLE / 2,
            UCS2_PART / 2,
        ),
    };
    u32::try_from(parts)
        .ok()
        .filter(|&parts| parts <= u32::from(u8::MAX))
        .unwrap_or(1)
}

/// How many parts [`encode_sms`]'s cuts make of a text of `total` units (septets or UTF-16
/// units) whose characters take `widths` units each: one if it fits `single`, else parts of
/// `part` units each where a character of two units (an escape pair, a surrogate pair) that
/// would straddle a cut starts the next part.
fn count_parts(
    total: usize,
    widths: impl Iterator<Item = usize>,
    single: usize,
    part: usize,
) -> usize {
    if total <= single {
        return 1;
    }
    let (parts, _) = widths.fold((1, 0), |(parts, used), width| {
        if used + width > part {
            (parts + 1, width)
        } else {
            (parts, used + width)
        }
    });
    parts
}

/// Encodes a text into the SMS parts to submit, in order.
///
/// GSM 7-bit when every character has a GSM encoding (it fits more per SMS and every handset
/// renders it), UCS-2 otherwise. A text longer than one SMS is cut into parts carrying an 8-bit
/// concatenation reference: the caller picks `reference` per message so a handset never merges
/// parts of two messages. A cut never separates an escape pair or a surrogate pair, which would
/// leave a handset rendering garbage on both sides of the cut.
pub fn encode_sms(text: &str, reference: u8) -> Result<Vec<Segment>, TextError> {
    let (data_coding, octets, single, part, unit) = match encode_gsm(text) {
        Some(octets) => (DC_GSM, octets, GSM_SINGLE, GSM_PART, 1),
        None => {
            let octets = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
            (DC_UCS2, octets, UCS2_SINGLE, UCS2_PART, 2)
        }
    };
    if octets.len() <= single {
        return Ok(vec![Segment {
            data_coding,
            esm_class_udhi: false,
            short_message: octets,
        }]);
    }
    let mut chunks = Vec::new();
    let mut rest = octets.as_slice();
    while !rest.is_empty() {
        let mut cut = part.min(rest.len());
        if cut < rest.len() && splits_pair(data_coding, &rest[cut - unit..cut]) {
            cut -= unit;
        }
        let (chunk, tail) = rest.split_at(cut);
        chunks.push(chunk);
        rest = tail;
    }
    let total = u8::try_from(chunks.len()).map_err(|_| TextError::TooLong {
        parts: chunks.len(),
    })?;
    Ok(chunks
        .into_iter()
        .zip(1..=total)
        .map(|(chunk, seq)| {
            let mut short_message = Vec::with_capacity(CONCAT_UDH.len() + 3 + chunk.len());
            short_message.extend(CONCAT_UDH);
            short_message.extend([reference, total, seq]);
            short_message.extend_from_slice(chunk);
            Segment {
                data_coding,
                esm_class_udhi: true,
                short_message,
            }
        })
        .collect())
}

/// Whether the last unit before a cut opens a pair: an escape (only ever a lead, as no extension
/// code is `ESC`) or a UTF-16 high surrogate.
fn splits_pair(data_coding: u8, last_unit: &[u8]) -> bool {
    match (data_coding, last_unit) {
        (DC_GSM, &[septet]) => septet == ESC,
        (_, &[hi, lo]) => (0xD800..=0xDBFF).contains(&u16::from_be_bytes([hi, lo])),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smpp::udh;
    use proptest::prelude::*;

    /// Reassembles parts the way the MO side does: split each UDH, check numbering, decode.
    fn reassemble(segments: &[Segment]) -> String {
        let mut bytes = Vec::new();
        for (i, segment) in segments.iter().enumerate() {
            let payload = if segment.esm_class_udhi {
                let (header, payload) = udh::split(&segment.short_message).unwrap();
                let concat = header.concat().unwrap();
                assert_eq!(usize::from(concat.seq), i + 1);
                assert_eq!(usize::from(concat.total), segments.len());
                payload
            } else {
                assert_eq!(segments.len(), 1);
                &segment.short_message[..]
            };
            bytes.extend_from_slice(payload);
            assert_eq!(segment.data_coding, segments[0].data_coding);
        }
        decode(segments[0].data_coding, &bytes).unwrap()
    }

    fn assert_part_sizes(segments: &[Segment]) {
        for segment in segments {
            let limit = match (segment.data_coding, segment.esm_class_udhi) {
                (DC_GSM, false) => GSM_SINGLE,
                (DC_GSM, true) => 6 + GSM_PART,
                (_, false) => UCS2_SINGLE,
                (_, true) => 6 + UCS2_PART,
            };
            assert!(segment.short_message.len() <= limit);
        }
    }

    #[test]
    fn gsm_default_and_extension_tables() {
        let text = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./09:;<=>?¡AZÄÖÑÜ§¿azäöñüà";
        let segments = encode_sms(text, 0).unwrap();
        assert_eq!(segments[0].data_coding, DC_GSM);
        assert_eq!(segments[0].short_message.len(), text.chars().count());
        assert_eq!(reassemble(&segments), text);

        let text = "€[]{}~^\\|\u{0C}";
        let segments = encode_sms(text, 0).unwrap();
        assert_eq!(segments[0].data_coding, DC_GSM);
        assert_eq!(&segments[0].short_message[..2], &[0x1B, 0x65]);
        assert_eq!(segments[0].short_message.len(), 20);
        assert_eq!(reassemble(&segments), text);
    }

    #[test]
    fn gsm_decoding_is_not_ascii() {
        assert_eq!(decode(0, b"@$#!%&/:").unwrap(), "¡¤#!%&/:");
        assert_eq!(decode(1, b"@$#!%&/:").unwrap(), "@$#!%&/:");
        assert_eq!(decode(0xF1, &[0x00, 0x02]).unwrap(), "@$");
        assert_eq!(decode(0x11, &[0x00]).unwrap(), "@");
    }

    #[test]
    fn escapes_outside_the_table_follow_ts_23_038() {
        assert_eq!(decode(0, &[0x1B, 0x41]).unwrap(), "A");
        assert_eq!(decode(0, &[0x1B, 0x1B]).unwrap(), " ");
        assert_eq!(decode(0, &[0x41, 0x1B]).unwrap(), "A ");
    }

    #[test]
    fn other_alphabets() {
        assert_eq!(decode(3, &[0x74, 0xE4, 0x73, 0x74]).unwrap(), "täst");
        assert_eq!(decode(8, &[0xD8, 0x3D, 0xDE, 0x00]).unwrap(), "😀");
        assert_eq!(decode(0x18, &[0x00, 0x41]).unwrap(), "A");
    }

    #[test]
    fn refusals() {
        assert_eq!(decode(4, b"x"), Err(TextError::Unsupported(4)));
        assert_eq!(decode(2, b"x"), Err(TextError::Unsupported(2)));
        assert_eq!(decode(0xF4, b"x"), Err(TextError::Unsupported(0xF4)));
        assert_eq!(decode(0x14, b"x"), Err(TextError::Unsupported(0x14)));
    }

    #[test]
    fn a_stray_octet_costs_one_character_not_the_message() {
        let token = "1ABCD-EFGH0";
        let gsm = encode_gsm(&format!("LOGIN {token}")).unwrap();
        // GSM by data_coding group, so not read as Latin-1: the octet alone is lost.
        let mut stray = gsm.clone();
        stray.push(0x80);
        assert_eq!(
            decode(0xF0, &stray).unwrap(),
            format!("LOGIN {token}\u{fffd}")
        );
        // An escape followed by an octet that is no septet.
        let mut escaped = gsm.clone();
        escaped.extend([ESC, 0x80]);
        assert_eq!(
            decode(0xF0, &escaped).unwrap(),
            format!("LOGIN {token}\u{fffd}")
        );
        let ucs2: Vec<u8> = format!("LOGIN {token}")
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        let mut odd = ucs2.clone();
        odd.push(0x20);
        assert_eq!(decode(8, &odd).unwrap(), format!("LOGIN {token}\u{fffd}"));
        let mut lone = vec![0xD8, 0x3D];
        lone.extend(&ucs2);
        assert_eq!(decode(8, &lone).unwrap(), format!("\u{fffd}LOGIN {token}"));
    }

    #[test]
    fn the_smsc_default_alphabet_decides_what_data_coding_0_means() {
        use crate::smpp::config::DefaultAlphabet;
        // "_" and "@" are other characters in GSM 03.38 ("§", "¡").
        let ascii = b"LOGIN 1ABCD_x@y";
        let read = |alphabet: DefaultAlphabet| decode(alphabet.explicit(0), ascii).unwrap();
        assert_eq!(read(DefaultAlphabet::Gsm), "LOGIN 1ABCD\u{a7}x\u{a1}y");
        assert_eq!(read(DefaultAlphabet::Ascii), "LOGIN 1ABCD_x@y");
        assert_eq!(read(DefaultAlphabet::Latin1), "LOGIN 1ABCD_x@y");
        // "é" in Latin-1 is 0xE9: Latin-1 reads it, ASCII reads it as Latin-1 too (the
        // high bit cannot be ASCII), so the token survives either way.
        let signed = b"LOGIN 1ABCD caf\xe9";
        for alphabet in [
            DefaultAlphabet::Gsm,
            DefaultAlphabet::Ascii,
            DefaultAlphabet::Latin1,
        ] {
            assert_eq!(
                decode(alphabet.explicit(0), signed).unwrap(),
                "LOGIN 1ABCD caf\u{e9}"
            );
        }
    }

    #[test]
    fn high_octets_under_the_default_alphabet_are_read_as_latin1() {
        assert_eq!(
            decode(0, b"LOGIN AB-12 caf\xe9").unwrap(),
            "LOGIN AB-12 caf\u{e9}"
        );
        assert_eq!(decode(1, &[0x41, 0xE4]).unwrap(), "A\u{e4}");
        assert_eq!(
            decode(0, b"A@").unwrap(),
            "A\u{a1}",
            "GSM-7 when every octet is a septet"
        );
    }

    #[test]
    fn single_sms_limits() {
        let gsm = "a".repeat(160);
        assert_eq!(encode_sms(&gsm, 1).unwrap().len(), 1);
        assert_eq!(encode_sms(&format!("{gsm}a"), 1).unwrap().len(), 2);
        // Escape pairs count twice: 80 euros are 160 septets, 81 are not one SMS.
        assert_eq!(encode_sms(&"€".repeat(80), 1).unwrap().len(), 1);
        assert_eq!(encode_sms(&"€".repeat(81), 1).unwrap().len(), 2);
        let ucs2 = "中".repeat(70);
        assert_eq!(encode_sms(&ucs2, 1).unwrap().len(), 1);
        assert_eq!(encode_sms(&format!("{ucs2}中"), 1).unwrap().len(), 2);
        // An emoji is two UTF-16 units: 35 fit, 36 do not.
        assert_eq!(encode_sms(&"😀".repeat(35), 1).unwrap().len(), 1);
        assert_eq!(encode_sms(&"😀".repeat(36), 1).unwrap().len(), 2);
        assert_eq!(
            encode_sms("", 1).unwrap()[0].short_message,
            Vec::<u8>::new()
        );
    }

    #[test]
    fn long_texts_round_trip() {
        for text in [
            "The quick brown fox jumps over the lazy dog. ".repeat(9),
            format!("{}€", "x".repeat(152)).repeat(3),
            "短信验证码登录，无需密码。".repeat(12),
            format!("{}😀", "中".repeat(66)).repeat(3),
        ] {
            let segments = encode_sms(&text, 0xA5).unwrap();
            assert!(segments.len() > 1, "{text}");
            assert_part_sizes(&segments);
            for segment in &segments {
                assert!(segment.esm_class_udhi);
                assert_eq!(segment.short_message[3], 0xA5);
            }
            assert_eq!(reassemble(&segments), text);
        }
    }

    #[test]
    fn cuts_keep_pairs_together() {
        // The escape pair of the euro would straddle septets 153/154.
        let segments = encode_sms(&format!("{}€{}", "x".repeat(152), "y".repeat(20)), 7).unwrap();
        assert_eq!(segments[0].short_message.len(), 6 + 152);
        assert_eq!(&segments[1].short_message[6..8], &[0x1B, 0x65]);
        // The surrogate pair would straddle units 67/68.
        let segments = encode_sms(&format!("{}😀{}", "中".repeat(66), "中".repeat(10)), 7).unwrap();
        assert_eq!(segments[0].short_message.len(), 6 + 132);
        assert_eq!(&segments[1].short_message[6..8], &[0xD8, 0x3D]);
    }

    /// The count agrees with the parts made, around every boundary: 160/153 septets (with
    /// escape pairs on and beside the cuts) and 70/67 UCS-2 units (with surrogate pairs).
    #[test]
    fn billed_segments_counts_the_parts_encode_sms_makes() {
        let made = |text: &str| encode_sms(text, 0).map_or(1, |parts| parts.len());
        let mut texts = Vec::new();
        for n in 0..=12 {
            texts.push("a".repeat(154 + n));
            texts.push("a".repeat(300 + n));
            texts.push("€".repeat(75 + n));
            texts.push("€".repeat(148 + n));
            texts.push(format!("{}€{}", "x".repeat(146 + n), "y".repeat(10)));
            texts.push(format!("{}€{}", "x".repeat(298 + n), "y".repeat(10)));
            texts.push("中".repeat(64 + n));
            texts.push("中".repeat(128 + n));
            texts.push("😀".repeat(30 + n));
            texts.push("😀".repeat(62 + n));
            texts.push(format!("{}😀{}", "中".repeat(62 + n), "中".repeat(10)));
            texts.push(format!("{}😀{}", "中".repeat(128 + n), "中".repeat(10)));
            // One character outside GSM makes the whole text UCS-2.
            texts.push(format!("{}中", "a".repeat(60 + n)));
        }
        texts.push("a".repeat(153 * 255));
        texts.push("a".repeat(153 * 256));
        for text in &texts {
            let billed = usize::try_from(billed_segments(text)).unwrap();
            assert_eq!(billed, made(text), "{} chars: {text}", text.chars().count());
        }
        assert_eq!(billed_segments(&"a".repeat(153 * 256)), 1, "never sent");
    }

    #[test]
    fn too_many_parts_is_refused() {
        assert_eq!(
            encode_sms(&"a".repeat(153 * 256), 0),
            Err(TextError::TooLong { parts: 256 })
        );
        assert_eq!(encode_sms(&"a".repeat(153 * 255), 0).unwrap().len(), 255);
    }

    fn gsm_char() -> impl Strategy<Value = char> {
        let table: Vec<char> = BASIC
            .iter()
            .copied()
            .filter(|&c| c != '\u{1B}')
            .chain(EXTENSION.iter().map(|&(_, c)| c))
            .collect();
        proptest::sample::select(table)
    }

    proptest! {
        #[test]
        fn any_text_round_trips(text in any::<String>(), reference in any::<u8>()) {
            let segments = encode_sms(&text, reference).unwrap();
            assert_part_sizes(&segments);
            prop_assert_eq!(billed_segments(&text) as usize, segments.len());
            prop_assert_eq!(reassemble(&segments), text);
        }

        #[test]
        fn any_gsm_text_round_trips(chars in proptest::collection::vec(gsm_char(), 0..700)) {
            let text: String = chars.into_iter().collect();
            let segments = encode_sms(&text, 9).unwrap();
            prop_assert!(segments.iter().all(|s| s.data_coding == DC_GSM));
            assert_part_sizes(&segments);
            prop_assert_eq!(billed_segments(&text) as usize, segments.len());
            prop_assert_eq!(reassemble(&segments), text);
        }
    }
}
