//! Delivery receipts, without I/O: which submitted message a receipt reports on, and how it
//! ended.
//!
//! SMSCs say it in two places: the receipted_message_id / message_state TLVs (SMPP 3.4 §5.3.2)
//! and the de-facto text format of Appendix B (`id:… sub:… dlvrd:… stat:DELIVRD err:…`). Many
//! send only the text, and some write the id there in decimal although submit_sm_resp gave it
//! in hex, so [`Receipt::candidate_ids`] offers both spellings to match against.
//!
//! A receipt can also arrive before the submit_sm_resp that tells us its message id: with a
//! receiver + transmitter pair they travel on different connections, and a busy SMSC sends them
//! in either order. [`EarlyReceipts`] keeps such receipts for a grace period, so the resp still
//! finds its receipt; only one still unmatched after it counts as `unmatched`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What a receipt says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub message_id: String,
    /// DELIVRD, EXPIRED, DELETED, UNDELIV, ACCEPTD, UNKNOWN, REJECTD, ENROUTE.
    pub stat: String,
    pub err: Option<String>,
}

/// message_state TLV values (SMPP 3.4 §5.2.28) in the receipt text's words.
fn state_word(state: u8) -> &'static str {
    match state {
        1 => "ENROUTE",
        2 => "DELIVRD",
        3 => "EXPIRED",
        4 => "DELETED",
        5 => "UNDELIV",
        6 => "ACCEPTD",
        8 => "REJECTD",
        _ => "UNKNOWN",
    }
}

impl Receipt {
    /// Reads a receipt from its TLVs (preferred when present) and its text.
    pub fn parse(
        text: &str,
        receipted_id: Option<&str>,
        message_state: Option<u8>,
    ) -> Option<Receipt> {
        let field = |name: &str| {
            text.split_whitespace()
                .find_map(|word| word.strip_prefix(name)?.strip_prefix(':'))
                .map(str::to_owned)
        };
        let message_id = receipted_id
            .map(str::to_owned)
            .filter(|id| !id.is_empty())
            .or_else(|| field("id"))?;
        let stat = message_state
            .map(|s| state_word(s).to_owned())
            .or_else(|| field("stat"))
            .unwrap_or_else(|| "UNKNOWN".into());
        Some(Receipt {
            message_id,
            stat: stat.to_ascii_uppercase(),
            err: field("err"),
        })
    }

    /// The id as given, and its other spelling when it reads as a number in hex or decimal.
    pub fn candidate_ids(&self) -> Vec<String> {
        let id = self.message_id.trim().to_ascii_lowercase();
        let mut ids = vec![id.clone()];
        if let Ok(n) = id.parse::<u64>() {
            ids.push(format!("{n:x}"));
        }
        if let Ok(n) = u64::from_str_radix(&id, 16) {
            ids.push(n.to_string());
        }
        ids.dedup();
        ids
    }

    pub fn delivered(&self) -> bool {
        self.stat == "DELIVRD"
    }
}

/// Receipts waiting for the submit_sm_resp of their message, per SMSC, without I/O.
#[derive(Debug, Default)]
pub struct EarlyReceipts {
    /// Under every spelling of the id, each entry with the one it is filed under first.
    by_id: HashMap<(String, String), (Receipt, Instant)>,
}

impl EarlyReceipts {
    /// Keeps a receipt nothing matched yet, received at `now`.
    pub fn keep(&mut self, smsc: &str, receipt: Receipt, now: Instant) {
        for id in receipt.candidate_ids() {
            self.by_id
                .insert((smsc.to_owned(), id), (receipt.clone(), now));
        }
    }

    /// The receipt waiting for `message_id` (as submit_sm_resp gave it), if one came early.
    pub fn take(&mut self, smsc: &str, message_id: &str) -> Option<Receipt> {
        let id = message_id.trim().to_ascii_lowercase();
        let (receipt, _) = self.by_id.remove(&(smsc.to_owned(), id))?;
        for other in receipt.candidate_ids() {
            self.by_id.remove(&(smsc.to_owned(), other));
        }
        Some(receipt)
    }

    /// Receipts kept longer than `grace`, removed: no message of ours will claim them now.
    pub fn expire(&mut self, now: Instant, grace: Duration) -> Vec<(String, Receipt)> {
        let mut expired: Vec<(String, Receipt)> = Vec::new();
        self.by_id.retain(|(smsc, id), (receipt, at)| {
            let keep = now.saturating_duration_since(*at) < grace;
            if !keep && receipt.candidate_ids().first() == Some(id) {
                expired.push((smsc.clone(), receipt.clone()));
            }
            keep
        });
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_early_receipt_waits_for_its_resp_under_either_spelling() {
        let t0 = Instant::now();
        let mut early = EarlyReceipts::default();
        let decimal = Receipt::parse("id:4660 stat:DELIVRD", None, None).unwrap();
        early.keep("a", decimal.clone(), t0);
        assert_eq!(early.take("b", "1234"), None, "another SMSC's id space");
        assert_eq!(early.take("a", "1234"), Some(decimal));
        assert_eq!(
            early.take("a", "4660"),
            None,
            "taken once, under every spelling"
        );
        let late = Receipt::parse("id:ff stat:UNDELIV", None, None).unwrap();
        early.keep("a", late.clone(), t0);
        let grace = Duration::from_secs(60);
        assert!(early.expire(t0 + Duration::from_secs(59), grace).is_empty());
        assert_eq!(
            early.expire(t0 + grace, grace),
            vec![("a".to_owned(), late)]
        );
        assert!(early.by_id.is_empty());
    }

    const TEXT: &str = "id:1234 sub:001 dlvrd:001 submit date:2611240930 done date:2611240931 stat:DELIVRD err:000 text:hello";

    #[test]
    fn text_receipt_gives_id_stat_and_err() {
        let r = Receipt::parse(TEXT, None, None).unwrap();
        assert_eq!(r.message_id, "1234");
        assert!(r.delivered());
        assert_eq!(r.err.as_deref(), Some("000"));
    }

    #[test]
    fn tlvs_win_over_the_text() {
        let r = Receipt::parse(TEXT, Some("4d2"), Some(5)).unwrap();
        assert_eq!((r.message_id.as_str(), r.stat.as_str()), ("4d2", "UNDELIV"));
    }

    #[test]
    fn decimal_and_hex_spellings_are_both_candidates() {
        let decimal = Receipt::parse("id:4660 stat:DELIVRD", None, None).unwrap();
        assert!(decimal.candidate_ids().contains(&"1234".to_owned()));
        let hex = Receipt::parse("id:1A2B stat:DELIVRD", None, None).unwrap();
        assert_eq!(hex.candidate_ids(), ["1a2b", "6699"]);
    }

    #[test]
    fn text_without_an_id_is_not_a_receipt() {
        assert_eq!(Receipt::parse("stat:DELIVRD", None, None), None);
    }
}
