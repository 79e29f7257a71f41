//! The subscriber's phone number in E.164, as proven by the SMS path.
//!
//! SMSCs write the sender in many ways (`+8613800138000`, `008613800138000`, `13800138000` with
//! TON national or unknown). The account is keyed by the E.164 form, so every spelling of one
//! number must normalise to the same `Msisdn`.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// SMPP type of number values that matter for normalisation.
const TON_INTERNATIONAL: u8 = 1;
const TON_NATIONAL: u8 = 2;
const TON_ALPHANUMERIC: u8 = 5;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum MsisdnError {
    #[error("alphanumeric sender {0:?} is not a phone number")]
    Alphanumeric(String),
    #[error("sender {0:?} is not a phone number")]
    NotDigits(String),
    #[error("sender {0:?} has {1} digits; E.164 allows 7 to 15")]
    Length(String, usize),
}

/// An E.164 number with its leading `+`.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Msisdn(String);

impl Msisdn {
    /// Normalises an SMPP source address given its TON and the operator's country code
    /// (used when the SMSC sends national numbers).
    pub fn from_smpp(addr: &str, ton: u8, default_cc: &str) -> Result<Self, MsisdnError> {
        let raw = addr.trim();
        if ton == TON_ALPHANUMERIC {
            return Err(MsisdnError::Alphanumeric(raw.to_owned()));
        }
        let digits: String = raw
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '(' | ')'))
            .collect();
        let international = if let Some(rest) = digits.strip_prefix('+') {
            rest.to_owned()
        } else if let Some(rest) = digits.strip_prefix("00") {
            rest.to_owned()
        } else if ton == TON_INTERNATIONAL {
            digits.clone()
        } else if ton == TON_NATIONAL || digits.starts_with('0') {
            format!(
                "{default_cc}{}",
                digits.strip_prefix('0').unwrap_or(&digits)
            )
        } else if digits.starts_with(default_cc) && digits.len() > 11 {
            // TON unknown: a number that already carries the country code and is longer than
            // any national mobile number is taken as international.
            digits.clone()
        } else {
            format!("{default_cc}{digits}")
        };
        Self::from_digits(raw, &international)
    }

    /// Parses `+<digits>` exactly; used for config, CLI and stored values.
    pub fn parse(s: &str) -> Result<Self, MsisdnError> {
        match s.strip_prefix('+') {
            Some(digits) => Self::from_digits(s, digits),
            None => Err(MsisdnError::NotDigits(s.to_owned())),
        }
    }

    fn from_digits(raw: &str, digits: &str) -> Result<Self, MsisdnError> {
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MsisdnError::NotDigits(raw.to_owned()));
        }
        if !(7..=15).contains(&digits.len()) {
            return Err(MsisdnError::Length(raw.to_owned(), digits.len()));
        }
        Ok(Msisdn(format!("+{digits}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digits without `+`, as an SMPP destination address with TON international.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }

    /// `+86 138****8000`: enough for a person to recognise their number, not enough to harvest.
    pub fn masked(&self) -> String {
        let digits = self.digits();
        let cc_len = country_code_len(digits);
        let (cc, national) = digits.split_at(cc_len);
        let keep_head = 3.min(national.len().saturating_sub(4));
        let tail = national.len().saturating_sub(4).max(keep_head);
        format!(
            "+{cc} {}{}{}",
            &national[..keep_head],
            "*".repeat(tail - keep_head),
            &national[tail..]
        )
    }
}

/// Length of the E.164 country code, from the ITU-T assignment pattern: zones 1 and 7 are one
/// digit, a fixed set of two-digit codes, everything else three digits.
fn country_code_len(digits: &str) -> usize {
    const TWO_DIGIT: &[&str] = &[
        "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46",
        "47", "48", "49", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63",
        "64", "65", "66", "81", "82", "84", "86", "90", "91", "92", "93", "94", "95", "98",
    ];
    if digits.starts_with('1') || digits.starts_with('7') {
        1
    } else if TWO_DIGIT.iter().any(|cc| digits.starts_with(cc)) {
        2
    } else {
        3
    }
}

impl TryFrom<String> for Msisdn {
    type Error = MsisdnError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Msisdn> for String {
    fn from(m: Msisdn) -> String {
        m.0
    }
}

/// Full number only in debug output: info-level logs use [`Msisdn::masked`].
impl fmt::Debug for Msisdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.masked())
    }
}

impl fmt::Display for Msisdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_one_number_is_the_same_msisdn() {
        let want = Msisdn::parse("+8613800138000").unwrap();
        for (addr, ton) in [
            ("+8613800138000", 0),
            ("8613800138000", 1),
            ("008613800138000", 0),
            ("13800138000", 2),
            ("13800138000", 0),
            ("8613800138000", 0),
        ] {
            assert_eq!(
                Msisdn::from_smpp(addr, ton, "86").unwrap(),
                want,
                "{addr} ton {ton}"
            );
        }
        assert_eq!(
            Msisdn::from_smpp("07700900123", 2, "44").unwrap().as_str(),
            "+447700900123"
        );
    }

    #[test]
    fn non_numbers_are_refused() {
        assert!(matches!(
            Msisdn::from_smpp("BANK", 5, "86"),
            Err(MsisdnError::Alphanumeric(_))
        ));
        assert!(Msisdn::from_smpp("12ab", 1, "86").is_err());
        assert!(Msisdn::from_smpp("123", 1, "86").is_err());
        assert!(Msisdn::parse("8613800138000").is_err());
    }

    #[test]
    fn masking_keeps_country_code_head_and_tail() {
        assert_eq!(
            Msisdn::parse("+8613800138000").unwrap().masked(),
            "+86 138****8000"
        );
        assert_eq!(
            Msisdn::parse("+14155550123").unwrap().masked(),
            "+1 415***0123"
        );
        assert_eq!(
            Msisdn::parse("+447700900123").unwrap().masked(),
            "+44 770***0123"
        );
        assert_eq!(
            format!("{:?}", Msisdn::parse("+8613800138000").unwrap()),
            "+86 138****8000"
        );
    }
}
