//! Crockford base32: the symbols a person reads off a screen and types into an SMS.
//!
//! Reading is deliberately forgiving and writing deliberately strict. People type tokens on
//! phone keyboards, so case does not matter, the look-alikes `I`/`L`/`O` are read as `1`/`0`, and
//! Chinese input methods that emit full-width letters, ideographic spaces or typographic dashes
//! are folded back to ASCII before anything else looks at the text. What moauth writes is always
//! the canonical upper-case form, so a token has exactly one spelling on the wire and in the store.
//!
//! Folding is split in two on purpose: [`fold`] rewrites a whole SMS (keywords, colons and spaces
//! too), while [`value`] reads one symbol.

/// The 32 symbols, indexed by their 5-bit value. All are in GSM-7's basic set, so an SMS carrying a
/// token never has to fall back to UCS-2.
pub const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Rewrites the forms phones produce for ASCII characters back into ASCII, leaving everything else
/// (Chinese keywords, signatures) untouched.
pub fn fold(text: &str) -> String {
    text.chars().map(fold_char).collect()
}

fn fold_char(c: char) -> char {
    match c {
        // U+FF01..U+FF5E mirror ASCII 0x21..0x7E, including the full-width hyphen U+FF0D.
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        '\u{2010}'..='\u{2015}' | '\u{2212}' => '-',
        _ => c,
    }
}

/// The 5-bit value of one typed symbol, if it is one.
pub fn value(c: char) -> Option<u8> {
    let canonical = match c.to_ascii_uppercase() {
        'I' | 'L' => b'1',
        'O' => b'0',
        other => u8::try_from(other).ok()?,
    };
    let index = ALPHABET.iter().position(|&s| s == canonical)?;
    u8::try_from(index).ok()
}

/// The canonical symbol for a value below 32.
pub fn symbol(value: u8) -> u8 {
    ALPHABET[usize::from(value)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_symbol_reads_back_as_its_value() {
        for v in 0..32u8 {
            assert_eq!(value(char::from(symbol(v))), Some(v));
            assert_eq!(value(char::from(symbol(v)).to_ascii_lowercase()), Some(v));
        }
    }

    #[test]
    fn look_alikes_read_as_digits() {
        for (typed, meant) in [
            ('i', '1'),
            ('I', '1'),
            ('l', '1'),
            ('L', '1'),
            ('o', '0'),
            ('O', '0'),
        ] {
            assert_eq!(value(typed), value(meant), "{typed}");
        }
    }

    #[test]
    fn u_and_punctuation_are_not_symbols() {
        for c in ['U', 'u', '*', '~', '$', '=', '-', ' ', '登', '\u{FF21}'] {
            assert_eq!(value(c), None, "{c}");
        }
    }

    #[test]
    fn full_width_forms_fold_to_ascii() {
        assert_eq!(fold("１ＡＢＣ"), "1ABC");
        assert_eq!(fold("ｌｏｇｉｎ：１"), "login:1");
    }

    #[test]
    fn ideographic_space_and_dashes_fold() {
        assert_eq!(fold("登录\u{3000}1"), "登录 1");
        let dashes = "\u{2010}\u{2011}\u{2012}\u{2013}\u{2014}\u{2015}\u{2212}\u{FF0D}";
        assert_eq!(fold(dashes), "--------");
    }

    #[test]
    fn other_text_is_left_alone() {
        assert_eq!(
            fold("Sent from my iPhone 发自我的手机"),
            "Sent from my iPhone 发自我的手机"
        );
    }
}
