//! The operator's line for each MO, so "I sent the SMS and nothing happened" is one grep.
//!
//! Every MO the pipeline finishes ends in exactly one INFO line, `MO outcome`, written once
//! its round's outcomes are durable (so the line never tells of something a crash could undo). It
//! names the SMSC the MO came in on, the sender masked (`+86 138****8000`), the first group of
//! the token it carried (`1ABCD`, what the app showed the person), what became of it and the
//! reply queued for the phone, if any. Grep the masked number or the token's first group.
//!
//! The token is not a secret (it travels in clear in the SMS; only the verifier collects a
//! session), and its first five symbols are enough to find a login, not to make one.

use tracing::info;

use crate::core::limits::Limit;
use crate::core::mo::MoMessage;
use crate::core::msisdn::Msisdn;
use crate::core::replies::Reply;
use crate::core::token::Body;

/// Symbols of the token the line shows: the first group of its written form.
const TOKEN_SYMBOLS: usize = 5;

/// What became of one MO.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum MoOutcome {
    /// A login completed for a number that had no account: the account was created.
    Registered,
    /// A login completed for a known number.
    Completed,
    /// No login, for this reason (as `moauth_mo_rejected_total` names it).
    Rejected(&'static str),
    /// An abuse limit refused it: no auth core call; the login, if any, is rejected.
    Limited(Limit),
    Help,
    Stop,
    /// Its header, sender or text could not be read; set aside (`moauth_mo_rejected_total{reason="malformed"}`).
    Malformed,
    /// The same phone sent a token whose login it already completed: nothing new to do.
    Repeated,
}

impl MoOutcome {
    fn as_str(self) -> &'static str {
        match self {
            MoOutcome::Registered => "registered",
            MoOutcome::Completed => "completed",
            MoOutcome::Rejected(_) => "rejected",
            MoOutcome::Limited(_) => "limited",
            MoOutcome::Help => "help",
            MoOutcome::Stop => "stop",
            MoOutcome::Malformed => "malformed",
            MoOutcome::Repeated => "repeated",
        }
    }

    fn reason(self) -> Option<&'static str> {
        match self {
            MoOutcome::Rejected(reason) => Some(reason),
            MoOutcome::Limited(limit) => Some(limit.reason().as_str()),
            _ => None,
        }
    }

    /// The outcome an answer without an auth core call stands for.
    pub fn of_answer(reply: Option<&Reply>) -> MoOutcome {
        match reply {
            Some(Reply::Help) => MoOutcome::Help,
            Some(Reply::Stop) => MoOutcome::Stop,
            Some(reply) => reply
                .rejection()
                .map_or(MoOutcome::Repeated, MoOutcome::Rejected),
            None => MoOutcome::Repeated,
        }
    }
}

/// What is known of an MO so far, for its outcome line.
pub struct MoReport {
    mo: u64,
    smsc: String,
    from: Option<String>,
    token: Option<String>,
    outcome: Option<MoOutcome>,
    /// The SMS queued for the phone.
    reply: Option<&'static str>,
    /// The limit that kept the reply back.
    held_by: Option<Limit>,
    /// What went wrong, for a malformed MO or a refusal.
    detail: Option<String>,
}

impl MoReport {
    /// The sender is read as the pipeline reads it, so even an MO rejected before its
    /// sender is looked at (a broken header) shows whose it was; none if it cannot be read.
    pub fn new(id: u64, mo: &MoMessage, default_country_code: &str) -> MoReport {
        let from = Msisdn::from_smpp(&mo.source_addr, mo.source_ton, default_country_code).ok();
        MoReport {
            mo: id,
            smsc: mo.smsc.clone(),
            from: from.map(|sender| sender.masked()),
            token: None,
            outcome: None,
            reply: None,
            held_by: None,
            detail: None,
        }
    }

    /// The token's first group as the app wrote it: of the token read, or for a mistyped
    /// one, of the challenge as read (apps make version-1 tokens, whose first symbol is `1`).
    pub fn body(&mut self, body: &Body) {
        self.token = match body {
            Body::Login(token) => Some(token.compact()[..TOKEN_SYMBOLS].to_owned()),
            Body::Bad {
                claimed: Some(challenge),
                ..
            } => Some(format!("1{}", &challenge.as_str()[..TOKEN_SYMBOLS - 1])),
            _ => None,
        };
    }

    pub fn detail(&mut self, detail: String) {
        self.detail = Some(detail);
    }

    /// What became of the MO: `reply` is the SMS queued for the phone, `held_by` the limit
    /// that kept one back.
    pub fn outcome(&mut self, outcome: MoOutcome, reply: Option<&Reply>, held_by: Option<Limit>) {
        self.outcome = Some(outcome);
        self.reply = reply.map(Reply::as_str);
        self.held_by = held_by;
    }

    /// The MO's one INFO line; nothing for an MO whose outcome was never decided.
    pub fn log(&self) {
        let Some(outcome) = self.outcome else { return };
        info!(
            mo = self.mo,
            smsc = %self.smsc,
            from = self.from.as_deref(),
            token = self.token.as_deref(),
            outcome = outcome.as_str(),
            reason = outcome.reason(),
            limit = match outcome {
                MoOutcome::Limited(limit) => Some(limit.as_str()),
                _ => None,
            },
            reply = self.reply.unwrap_or("none"),
            reply_held_by = self.held_by.map(Limit::as_str),
            detail = self.detail.as_deref(),
            "MO outcome"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::token::{Token, Verifier, parse_body};

    #[test]
    fn the_token_shows_as_the_first_group_the_app_wrote() {
        let token = Token::for_verifier(&Verifier::random(), 1_800_000_000);
        let written = token.to_string();
        let mut report = MoReport {
            mo: 1,
            smsc: "sim".into(),
            from: None,
            token: None,
            outcome: None,
            reply: None,
            held_by: None,
            detail: None,
        };
        report.body(&parse_body(&format!("LOGIN {written}"), &["LOGIN".into()]));
        assert_eq!(report.token.as_deref(), Some(&written[..5]));

        // The last check symbol mistyped: the challenge still reads.
        let mut typo: Vec<char> = written.chars().collect();
        let last = typo.last_mut().unwrap();
        *last = if *last == 'Z' { 'Y' } else { 'Z' };
        let typo: String = typo.into_iter().collect();
        report.body(&parse_body(&typo, &["LOGIN".into()]));
        assert_eq!(report.token.as_deref(), Some(&written[..5]));

        report.body(&parse_body("HELP", &["LOGIN".into()]));
        assert_eq!(report.token, None);
    }

    #[test]
    fn answers_without_a_login_name_their_outcome() {
        assert!(MoOutcome::of_answer(Some(&Reply::Help)) == MoOutcome::Help);
        assert!(MoOutcome::of_answer(Some(&Reply::Stop)) == MoOutcome::Stop);
        assert!(MoOutcome::of_answer(Some(&Reply::BadToken)) == MoOutcome::Rejected("bad_token"));
        assert!(MoOutcome::of_answer(None) == MoOutcome::Repeated);
    }
}
