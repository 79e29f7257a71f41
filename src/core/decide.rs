//! What an MO means, decided without I/O: the heart of the patent's claims 3–5.
//!
//! Given the parsed SMS body, the sender, when it arrived and what is already recorded for its
//! token's challenge, [`decide`] says whether to ask the auth core, what state to record and
//! which reply to send. Time is an argument, so every branch is a plain unit test.

use crate::core::auth::AuthAnswer;
use crate::core::clock::UnixSecs;
use crate::core::login::LoginRecord;
use crate::core::login::LoginState;
use crate::core::login::RejectReason;
use crate::core::msisdn::Msisdn;
use crate::core::replies::Reply;
use crate::core::token::{Body, Challenge, Token};

/// The acceptance window and how long results stay answerable.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub max_age_secs: u64,
    pub max_future_secs: u64,
    pub result_ttl_secs: u64,
}

impl Window {
    /// Past this moment a token can no longer be accepted (and an unanswered login is expired).
    pub fn expires_at(&self, token: &Token) -> UnixSecs {
        token.issued_at() + self.max_age_secs
    }

    /// How long the record of a token refused for its timestamp is kept: the answer to its
    /// poll, no longer; the token never reached the auth core, so there is no replay to catch.
    pub(crate) fn keep_refused(&self, now: UnixSecs) -> UnixSecs {
        now + self.result_ttl_secs
    }

    /// A record must outlive the window, or a replay after the sweep would be taken as new.
    pub(crate) fn keep_until(&self, token_issued_at: UnixSecs, now: UnixSecs) -> UnixSecs {
        (token_issued_at + self.max_age_secs).max(now) + self.result_ttl_secs
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// A fresh, unused token: ask the auth core, then call [`completed`].
    LogIn(Token),
    /// Record this (if anything) and send this reply (if any).
    Answer {
        record: Option<(Challenge, LoginRecord)>,
        reply: Option<Reply>,
    },
}

impl Decision {
    fn reply(reply: Reply) -> Self {
        Decision::Answer {
            record: None,
            reply: Some(reply),
        }
    }
}

pub fn decide(
    body: &Body,
    sender: &Msisdn,
    received_at: UnixSecs,
    prior: Option<&LoginRecord>,
    window: &Window,
) -> Decision {
    let record = |challenge: Challenge, issued_at: UnixSecs, state: LoginState| {
        Some((
            challenge,
            LoginRecord {
                state,
                msisdn: Some(sender.clone()),
                issued_at,
                decided_at: received_at,
                keep_until: window.keep_until(issued_at, received_at),
            },
        ))
    };
    let token = match body {
        Body::Stop => return Decision::reply(Reply::Stop),
        Body::Help => return Decision::reply(Reply::Help),
        Body::Bad { claimed, .. } => {
            // The challenge as read may be the one the app polls for (a typo in the check or
            // time symbols): mark it so the app can stop waiting. A valid SMS for the same
            // challenge later still wins, see below.
            let record = match (claimed, prior) {
                (Some(challenge), None) => record(
                    *challenge,
                    received_at,
                    LoginState::Rejected {
                        reason: RejectReason::BadToken,
                    },
                ),
                _ => None,
            };
            return Decision::Answer {
                record,
                reply: Some(Reply::BadToken),
            };
        }
        Body::Login(token) => token,
    };
    let challenge = token.challenge();
    match prior.map(|p| (&p.state, p.msisdn.as_ref() == Some(sender))) {
        None
        | Some((
            LoginState::Rejected {
                reason: RejectReason::BadToken,
            },
            _,
        )) => {}
        // This very MO, tried again: the inbox is drained in order and a waiting MO holds up
        // the ones behind it, so no other MO can have marked the challenge.
        Some((LoginState::Waiting, _)) => {}
        // The same phone sent the same token twice (a double tap, a resend): nothing new.
        Some((LoginState::Complete { .. } | LoginState::Consumed, true)) => {
            return Decision::Answer {
                record: None,
                reply: None,
            };
        }
        // Another phone texted a token whose session nobody has collected yet: two numbers
        // claim one login, so neither gets it.
        Some((LoginState::Complete { .. }, false)) => {
            let issued_at = token.issued_at();
            return Decision::Answer {
                record: record(
                    challenge,
                    issued_at,
                    LoginState::Rejected {
                        reason: RejectReason::Replayed,
                    },
                ),
                reply: Some(Reply::Replayed),
            };
        }
        Some((LoginState::Expired, _)) => return Decision::reply(Reply::Expired),
        Some(_) => return Decision::reply(Reply::Replayed),
    }
    if received_at > window.expires_at(token) {
        return Decision::Answer {
            record: record(challenge, token.issued_at(), LoginState::Expired),
            reply: Some(Reply::Expired),
        };
    }
    if token.issued_at() > received_at + window.max_future_secs {
        // Kept `result_ttl_secs` from now, whatever the token claims: a token dated a
        // thousand years ahead must not keep its record that long.
        let mut refused = record(
            challenge,
            token.issued_at(),
            LoginState::Rejected {
                reason: RejectReason::BadToken,
            },
        );
        if let Some((_, r)) = &mut refused {
            r.keep_until = window.keep_refused(received_at);
        }
        return Decision::Answer {
            record: refused,
            reply: Some(Reply::BadToken),
        };
    }
    Decision::LogIn(*token)
}

/// The auth core said yes: the login record and the credential SMS it asked for.
pub fn completed(
    token: &Token,
    sender: &Msisdn,
    answer: AuthAnswer,
    now: UnixSecs,
    window: &Window,
) -> (LoginRecord, Option<Reply>) {
    let record = LoginRecord {
        state: LoginState::Complete {
            session: answer.session,
            account_id: answer.account_id,
            created: answer.created,
        },
        msisdn: Some(sender.clone()),
        issued_at: token.issued_at(),
        decided_at: now,
        keep_until: window.keep_until(token.issued_at(), now),
    };
    (record, answer.credentials.map(Reply::Credentials))
}

/// The auth core refused the login: a final rejection and its SMS.
pub fn refused(
    token: &Token,
    sender: &Msisdn,
    now: UnixSecs,
    window: &Window,
) -> (LoginRecord, Reply) {
    let record = LoginRecord {
        state: LoginState::Rejected {
            reason: RejectReason::AuthCoreRefused,
        },
        msisdn: Some(sender.clone()),
        issued_at: token.issued_at(),
        decided_at: now,
        keep_until: window.keep_until(token.issued_at(), now),
    };
    (record, Reply::AuthCoreRefused)
}

/// What an MO the auth core could not answer leads to.
#[derive(Debug, PartialEq, Eq)]
pub enum Unanswered {
    /// Leave the MO in the inbox, try again later; polls say `pending` meanwhile.
    Wait(LoginRecord),
    /// It has waited `max_wait_secs`: reject it with an apology, so nobody waits forever.
    GiveUp(LoginRecord, Reply),
}

/// The auth core was unavailable for an MO received at `received_at`. `max_wait_secs` is
/// the auth core's patience; None waits for as long as it takes.
pub fn unanswered(
    token: &Token,
    sender: &Msisdn,
    received_at: UnixSecs,
    now: UnixSecs,
    max_wait_secs: Option<u64>,
    window: &Window,
) -> Unanswered {
    let record = |state, keep_from| LoginRecord {
        state,
        msisdn: Some(sender.clone()),
        issued_at: token.issued_at(),
        decided_at: now,
        keep_until: window.keep_until(token.issued_at(), keep_from),
    };
    match max_wait_secs {
        Some(max) if now >= received_at.saturating_add(max) => Unanswered::GiveUp(
            record(
                LoginState::Rejected {
                    reason: RejectReason::AuthCoreUnavailable,
                },
                now,
            ),
            Reply::AuthCoreUnavailable,
        ),
        // Kept until the MO must have been given up on, whatever the token's window says.
        Some(max) => Unanswered::Wait(record(LoginState::Waiting, received_at + max)),
        None => Unanswered::Wait(record(LoginState::Waiting, now)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::token::{TokenError, Verifier};

    const NOW: UnixSecs = 1_800_000_000;
    const WINDOW: Window = Window {
        max_age_secs: 600,
        max_future_secs: 120,
        result_ttl_secs: 3600,
    };

    fn alice() -> Msisdn {
        Msisdn::parse("+8613800138000").unwrap()
    }
    fn bob() -> Msisdn {
        Msisdn::parse("+8613900139000").unwrap()
    }
    fn token(issued_at: UnixSecs) -> Token {
        Token::for_verifier(&Verifier::random(), issued_at)
    }
    fn prior(state: LoginState, who: Msisdn) -> LoginRecord {
        LoginRecord {
            state,
            msisdn: Some(who),
            issued_at: NOW,
            decided_at: NOW,
            keep_until: NOW + 10,
        }
    }
    fn complete() -> LoginState {
        LoginState::Complete {
            session: "s".into(),
            account_id: "1".into(),
            created: false,
        }
    }
    fn recorded_state(d: &Decision) -> Option<&LoginState> {
        match d {
            Decision::Answer {
                record: Some((_, r)),
                ..
            } => Some(&r.state),
            _ => None,
        }
    }

    #[test]
    fn fresh_token_asks_the_auth_core() {
        let t = token(NOW - 30);
        assert_eq!(
            decide(&Body::Login(t), &alice(), NOW, None, &WINDOW),
            Decision::LogIn(t)
        );
    }

    #[test]
    fn old_token_is_expired_and_future_token_refused() {
        let old = decide(&Body::Login(token(NOW - 601)), &alice(), NOW, None, &WINDOW);
        assert_eq!(recorded_state(&old), Some(&LoginState::Expired));
        let edge = token(NOW - 600);
        assert_eq!(
            decide(&Body::Login(edge), &alice(), NOW, None, &WINDOW),
            Decision::LogIn(edge)
        );
        let skewed = token(NOW + 120);
        assert_eq!(
            decide(&Body::Login(skewed), &alice(), NOW, None, &WINDOW),
            Decision::LogIn(skewed)
        );
        let future = decide(&Body::Login(token(NOW + 121)), &alice(), NOW, None, &WINDOW);
        assert!(matches!(
            recorded_state(&future),
            Some(LoginState::Rejected {
                reason: RejectReason::BadToken
            })
        ));
    }

    #[test]
    fn second_phone_with_uncollected_token_rejects_the_login() {
        let t = token(NOW);
        let d = decide(
            &Body::Login(t),
            &bob(),
            NOW,
            Some(&prior(complete(), alice())),
            &WINDOW,
        );
        assert!(matches!(
            recorded_state(&d),
            Some(LoginState::Rejected {
                reason: RejectReason::Replayed
            })
        ));
    }

    #[test]
    fn same_phone_resending_changes_nothing() {
        let d = decide(
            &Body::Login(token(NOW)),
            &alice(),
            NOW,
            Some(&prior(complete(), alice())),
            &WINDOW,
        );
        assert_eq!(
            d,
            Decision::Answer {
                record: None,
                reply: None
            }
        );
    }

    #[test]
    fn replay_after_collection_only_gets_an_error_sms() {
        let d = decide(
            &Body::Login(token(NOW)),
            &bob(),
            NOW,
            Some(&prior(LoginState::Consumed, alice())),
            &WINDOW,
        );
        assert_eq!(d, Decision::reply(Reply::Replayed));
    }

    #[test]
    fn bad_token_marks_the_claimed_challenge_but_a_correct_retry_wins() {
        let t = token(NOW);
        let bad = Body::Bad {
            error: TokenError::BadCheck,
            claimed: Some(t.challenge()),
        };
        let d = decide(&bad, &alice(), NOW, None, &WINDOW);
        let Decision::Answer {
            record: Some((challenge, record)),
            reply: Some(Reply::BadToken),
        } = d
        else {
            panic!("{d:?}")
        };
        assert_eq!(challenge, t.challenge());
        assert_eq!(
            decide(&Body::Login(t), &alice(), NOW, Some(&record), &WINDOW),
            Decision::LogIn(t)
        );
    }

    #[test]
    fn an_mo_waiting_for_the_auth_core_asks_again() {
        let t = token(NOW - 30);
        let waiting = prior(LoginState::Waiting, alice());
        assert_eq!(
            decide(&Body::Login(t), &alice(), NOW, Some(&waiting), &WINDOW),
            Decision::LogIn(t)
        );
    }

    #[test]
    fn unanswered_mo_waits_until_its_max_wait_then_is_rejected_with_an_apology() {
        let t = token(NOW - 30);
        let Unanswered::Wait(record) = unanswered(&t, &alice(), NOW, NOW + 899, Some(900), &WINDOW)
        else {
            panic!("gave up early")
        };
        assert_eq!(record.state, LoginState::Waiting);
        assert!(
            record.keep_until >= NOW + 900,
            "swept while it may still wait"
        );
        let Unanswered::GiveUp(record, reply) =
            unanswered(&t, &alice(), NOW, NOW + 900, Some(900), &WINDOW)
        else {
            panic!("waited past max_wait_secs")
        };
        assert_eq!(
            record.state,
            LoginState::Rejected {
                reason: RejectReason::AuthCoreUnavailable
            }
        );
        assert_eq!(reply, Reply::AuthCoreUnavailable);
        assert!(matches!(
            unanswered(&t, &alice(), NOW, NOW + 100_000, None, &WINDOW),
            Unanswered::Wait(_)
        ));
    }

    #[test]
    fn refusal_is_a_final_rejection_with_its_sms() {
        let (record, reply) = refused(&token(NOW), &alice(), NOW, &WINDOW);
        assert_eq!(
            record.state,
            LoginState::Rejected {
                reason: RejectReason::AuthCoreRefused
            }
        );
        assert_eq!(reply, Reply::AuthCoreRefused);
    }

    #[test]
    fn stop_and_help_are_answered_not_parsed() {
        assert_eq!(
            decide(&Body::Stop, &alice(), NOW, None, &WINDOW),
            Decision::reply(Reply::Stop)
        );
        assert_eq!(
            decide(&Body::Help, &alice(), NOW, None, &WINDOW),
            Decision::reply(Reply::Help)
        );
    }
}
