//! Answering the app's poll: the patent's "second connection".
//!
//! The answer is derived from the login record (or its absence and the token's age). A
//! `complete` answer hands the session out exactly once: the record is swapped to `consumed`
//! and flushed before the answer leaves, so no crash can hand the same session out twice.

use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::clock::Clock;
use crate::login::decide::Window;
use crate::ops::reload::Live;
use crate::store::{LoginState, RejectReason, Store, StoreError};
use crate::token::Token;

#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PollAnswer {
    Pending,
    Complete {
        session: String,
        account_id: String,
        created: bool,
        /// `+86 138****8000`: lets the app show whose number logged in.
        msisdn: String,
    },
    Consumed,
    Expired,
    Rejected {
        reason: RejectReason,
    },
}

impl std::fmt::Debug for PollAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.state())
    }
}

impl PollAnswer {
    pub fn state(&self) -> &'static str {
        match self {
            PollAnswer::Pending => "pending",
            PollAnswer::Complete { .. } => "complete",
            PollAnswer::Consumed => "consumed",
            PollAnswer::Expired => "expired",
            PollAnswer::Rejected { .. } => "rejected",
        }
    }
}

#[derive(Clone)]
pub struct Poller {
    pub store: Store,
    pub clock: Clock,
    /// Reloadable (SIGHUP).
    pub window: Live<Window>,
}

impl Poller {
    /// Answers now, or as soon as the login changes within `wait`.
    pub async fn poll(&self, token: &Token, wait: Duration) -> Result<PollAnswer, StoreError> {
        if wait.is_zero() {
            // Nothing to wait for, so no subscription: a sled watch costs a lock and a channel.
            return self.answer_now(token).await;
        }
        let deadline = Instant::now() + wait;
        loop {
            let mut changed = self.store.logins.watch(&token.challenge());
            let answer = self.answer_now(token).await?;
            if answer != PollAnswer::Pending {
                return Ok(answer);
            }
            let until_expiry = self
                .window
                .load()
                .expires_at(token)
                .saturating_sub(self.clock.now())
                + 1;
            let deadline = deadline.min(Instant::now() + Duration::from_secs(until_expiry));
            if tokio::time::timeout_at(deadline, &mut changed)
                .await
                .is_err()
            {
                return self.answer_now(token).await;
            }
        }
    }

    async fn answer_now(&self, token: &Token) -> Result<PollAnswer, StoreError> {
        let challenge = token.challenge();
        loop {
            let Some(record) = self.store.logins.get(&challenge)? else {
                return Ok(if self.clock.now() > self.window.load().expires_at(token) {
                    PollAnswer::Expired
                } else {
                    PollAnswer::Pending
                });
            };
            return Ok(match &record.state {
                LoginState::Complete {
                    session,
                    account_id,
                    created,
                } => {
                    if self.store.logins.consume(&challenge, &record)?.is_none() {
                        continue;
                    }
                    // Durable now: the record says `consumed`, so after any crash a second
                    // poll cannot get this session again.
                    self.store.flush().await?;
                    PollAnswer::Complete {
                        session: session.clone(),
                        account_id: account_id.clone(),
                        created: *created,
                        msisdn: record
                            .msisdn
                            .as_ref()
                            .map(|m| m.masked())
                            .unwrap_or_default(),
                    }
                }
                LoginState::Consumed => PollAnswer::Consumed,
                LoginState::Expired => PollAnswer::Expired,
                LoginState::Rejected { reason } => PollAnswer::Rejected { reason: *reason },
            });
        }
    }
}
