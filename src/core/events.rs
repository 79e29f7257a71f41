//! The body of a webhook call, made from the login record it reports (sans-IO).
//!
//! A `complete` event carries the session, and handing it to the webhook *is* the one
//! hand-out: the record is stored as `consumed` in the same transaction, so a poll after it
//! answers `consumed` and no session leaves moauth twice (protocol/webhooks.md).

use serde::Serialize;

use crate::core::clock::UnixSecs;
use crate::core::login::LoginRecord;
use crate::core::login::LoginState;
use crate::core::login::RejectReason;
use crate::core::outbound::QueuedEvent;
use crate::core::token::Challenge;

#[derive(Serialize)]
struct Body<'a> {
    event_id: &'a str,
    token_challenge: &'a str,
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<RejectReason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    created: Option<bool>,
    /// Masked, as the poll answers it.
    #[serde(skip_serializing_if = "Option::is_none")]
    msisdn: Option<String>,
    occurred_at: UnixSecs,
}

/// The record to store and the event that reports it, for a terminal state; `None` for a
/// state that is not one (`consumed` is only ever the end of `complete`).
pub fn report(
    backend: &str,
    challenge: &Challenge,
    record: &LoginRecord,
    event_id: &str,
) -> Option<(LoginRecord, QueuedEvent)> {
    let mut body = Body {
        event_id,
        token_challenge: challenge.as_str(),
        state: "",
        reason: None,
        session: None,
        account_id: None,
        created: None,
        msisdn: record.msisdn.as_ref().map(|m| m.masked()),
        occurred_at: record.decided_at,
    };
    let mut stored = record.clone();
    match &record.state {
        LoginState::Complete {
            session,
            account_id,
            created,
        } => {
            body.state = "complete";
            body.session = Some(session);
            body.account_id = Some(account_id);
            body.created = Some(*created);
            stored.state = LoginState::Consumed;
        }
        LoginState::Expired => body.state = "expired",
        LoginState::Rejected { reason } => {
            body.state = "rejected";
            body.reason = Some(*reason);
        }
        // Not terminal (Waiting), or told already (Consumed).
        LoginState::Consumed | LoginState::Waiting => return None,
    }
    let body = serde_json::to_string(&body).expect("an event serialises to JSON");
    Some((
        stored,
        QueuedEvent {
            backend: backend.to_owned(),
            event_id: event_id.to_owned(),
            body,
        },
    ))
}

/// 128 random bits in hex: unique without coordination, even across a store that was wiped.
pub fn new_event_id() -> String {
    let mut bytes = [0u8; 16];
    rand::fill(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::msisdn::Msisdn;
    use crate::core::token::{Token, Verifier};

    fn record(state: LoginState) -> LoginRecord {
        LoginRecord {
            state,
            msisdn: Some(Msisdn::parse("+8613800138000").unwrap()),
            issued_at: 100,
            decided_at: 150,
            keep_until: 5_000,
        }
    }

    fn challenge() -> Challenge {
        Token::for_verifier(&Verifier::random(), 100).challenge()
    }

    #[test]
    fn a_complete_event_carries_the_session_and_the_record_becomes_consumed() {
        let c = challenge();
        let complete = record(LoginState::Complete {
            session: "sess".into(),
            account_id: "acct".into(),
            created: true,
        });
        let (stored, event) = report("shop", &c, &complete, "e1").unwrap();
        assert_eq!(stored.state, LoginState::Consumed);
        assert_eq!(stored.keep_until, complete.keep_until);
        let body: serde_json::Value = serde_json::from_str(&event.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "event_id": "e1", "token_challenge": c.as_str(), "state": "complete",
                "session": "sess", "account_id": "acct", "created": true,
                "msisdn": "+86 138****8000", "occurred_at": 150
            })
        );
        assert_eq!(event.backend, "shop");
    }

    #[test]
    fn rejected_and_expired_events_carry_no_session() {
        let c = challenge();
        let rejected = record(LoginState::Rejected {
            reason: RejectReason::BadToken,
        });
        let (stored, event) = report("shop", &c, &rejected, "e2").unwrap();
        assert_eq!(stored, rejected);
        let body: serde_json::Value = serde_json::from_str(&event.body).unwrap();
        assert_eq!(body["state"], "rejected");
        assert_eq!(body["reason"], "bad_token");
        assert!(body.get("session").is_none());

        let expired = LoginRecord {
            msisdn: None,
            ..record(LoginState::Expired)
        };
        let (_, event) = report("shop", &c, &expired, "e3").unwrap();
        let body: serde_json::Value = serde_json::from_str(&event.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"event_id": "e3", "token_challenge": c.as_str(), "state": "expired", "occurred_at": 150})
        );
        assert!(report("shop", &c, &record(LoginState::Consumed), "e4").is_none());
    }

    #[test]
    fn event_ids_do_not_repeat() {
        assert_ne!(new_event_id(), new_event_id());
        assert_eq!(new_event_id().len(), 32);
    }
}
