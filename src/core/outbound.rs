//! What leaves moauth: SMS replies and webhook events, each queued durably with the state that
//! caused it, and the record of an SMS the SMSC accepted (for its delivery receipt).

use serde::{Deserialize, Serialize};

use crate::core::clock::UnixSecs;
use crate::core::msisdn::Msisdn;

/// An SMS to send.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outbound {
    /// The SMSC connection to send through (the one the MO came from).
    pub smsc: String,
    pub from: String,
    pub to: Msisdn,
    /// May hold a password; never logged.
    pub text: String,
    pub created_at: UnixSecs,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field("smsc", &self.smsc)
            .field("to", &self.to)
            .field("chars", &self.text.chars().count())
            .finish()
    }
}

/// Where a reply to a number goes: the SMSC connection its MO came through, and the short
/// code it was sent to (the reply's sender).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsRoute {
    pub smsc: String,
    pub from: String,
}

impl SmsRoute {
    /// The SMS carrying `text` to `to` along this route.
    pub fn sms(self, to: Msisdn, text: String, now: UnixSecs) -> Outbound {
        Outbound {
            smsc: self.smsc,
            from: self.from,
            to,
            text,
            created_at: now,
        }
    }
}

/// An SMS the SMSC accepted, under its message id, until its delivery receipt comes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentRecord {
    pub to: Msisdn,
    pub submitted_at: UnixSecs,
    /// The receipt's stat (DELIVRD, UNDELIV, …) once one came.
    pub outcome: Option<String>,
}

/// One call to make: the exact body (signed anew at every attempt) and whose webhook gets it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedEvent {
    /// The `[[http.api_keys]]` name of the backend that minted the login.
    pub backend: String,
    pub event_id: String,
    /// The JSON body as sent; it may carry a session, so it is never logged.
    pub body: String,
}

impl std::fmt::Debug for QueuedEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueuedEvent")
            .field("backend", &self.backend)
            .field("event_id", &self.event_id)
            .finish()
    }
}
