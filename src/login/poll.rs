//! Answering the app's poll: the patent's "second connection".
//!
//! The answer is derived from the login record (or its absence and the token's age). A
//! `complete` answer hands the session out exactly once: the record is swapped to `consumed`
//! and flushed before the answer leaves, so no crash can hand the same session out twice.
//! A record answers until its `keep_until` (the token's window plus `[login] result_ttl_secs`),
//! so `consumed` and `expired` stay apart that long; after it the login reads `expired`.
//!
//! When the daemon stops, every long-poll still waiting answers at once with its login's
//! state (`pending`, as a rule) instead of being cut off: the app polls again, on this
//! process's successor or on another node.

use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::core::clock::Clock;
use crate::core::decide::Window;
use crate::core::error::StoreError;
use crate::core::live::Live;
use crate::core::login::LoginState;
use crate::core::login::RejectReason;
use crate::core::store::PollStore;
use crate::core::token::Token;
use std::sync::Arc;

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
    pub store: Arc<dyn PollStore>,
    pub clock: Clock,
    /// Reloadable (SIGHUP).
    pub window: Live<Window>,
    /// Cancelled when the daemon stops: waiting polls answer with what they have.
    pub stopping: CancellationToken,
}

impl Poller {
    /// Answers now, or as soon as the login changes within `wait`.
    pub async fn poll(&self, token: &Token, wait: Duration) -> Result<PollAnswer, StoreError> {
        if wait.is_zero() {
            // Nothing to wait for, so no watch.
            return self.answer_now(token).await;
        }
        let deadline = Instant::now() + wait;
        loop {
            let mut changed = self.store.watch_login(&token.challenge());
            let answer = self.answer_now(token).await?;
            if answer != PollAnswer::Pending {
                return Ok(answer);
            }
            // A login nobody texted for turns expired when its token's window closes: look
            // again then. Pending past the window means its MO waits for the auth core, which
            // only a change of the record ends.
            let now = self.clock.now();
            let expires_at = self.window.load().expires_at(token);
            let wake = if now <= expires_at {
                deadline.min(Instant::now() + Duration::from_secs(expires_at - now + 1))
            } else {
                deadline
            };
            tokio::select! {
                _ = changed.changed() => {}
                _ = tokio::time::sleep_until(wake) => {
                    if wake >= deadline {
                        return self.answer_now(token).await;
                    }
                }
                _ = self.stopping.cancelled() => return self.answer_now(token).await,
            }
        }
    }

    async fn answer_now(&self, token: &Token) -> Result<PollAnswer, StoreError> {
        let challenge = token.challenge();
        loop {
            // A record past its `keep_until` is gone, swept or not: an uncollected session
            // is not handed out late, and `consumed` turns into `expired` on time.
            let now = self.clock.now();
            let record = self.store.login(&challenge).await?;
            let Some(record) = record.filter(|r| r.keep_until >= now) else {
                return Ok(if now > self.window.load().expires_at(token) {
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
                    // Durable once taken: the record says `consumed`, so after any crash a
                    // second poll cannot get this session again.
                    if self
                        .store
                        .take_session(&challenge, &record)
                        .await?
                        .is_none()
                    {
                        continue;
                    }
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
                LoginState::Waiting => PollAnswer::Pending,
            });
        }
    }
}
