//! Push as well as poll: a backend may have a webhook that moauth calls on every terminal
//! state (`complete`, `rejected`, `expired`) of the logins that backend minted with
//! `POST /v1/logins` (protocol/webhooks.md).
//!
//! Who gets what: a login minted by backend B reports to B's webhook and to no one else; an
//! app-made token has no owner and is only polled, exactly as before. The `complete` event
//! carries the session, and that is its one hand-out (the record becomes `consumed`).
//!
//! Durability: [`Hooks::route`] turns the state an MO led to into the event that goes into
//! the same store transaction ([`crate::core::store::PipelineStore::commit_outcomes`]); logins that expire
//! without an SMS are recorded with their event by the [`dispatch::Dispatcher`], which also
//! delivers the queue with retries. A state is recorded if and only if its event is queued.

pub mod config;
pub mod dispatch;

use std::collections::HashMap;
use std::sync::Arc;

use crate::core::error::StoreError;
use crate::core::events;
use crate::core::live::Live;
use crate::core::login::LoginRecord;
use crate::core::outbound::QueuedEvent;
use crate::core::secret::Secret;
use crate::core::store::LoginReads;
use crate::core::token::Challenge;
use config::WebhookConfig;

/// Where a backend's events go and the secret that signs them.
#[derive(Clone)]
pub struct Target {
    pub url: String,
    secret: Secret,
}

impl Target {
    pub fn secret(&self) -> &[u8] {
        self.secret.expose().as_bytes()
    }
}

/// Each backend's webhook by backend name; reloadable (SIGHUP).
#[derive(Clone, Default)]
pub struct Targets(HashMap<String, Target>);

impl Targets {
    pub fn from_config(hooks: &[WebhookConfig]) -> Targets {
        Targets(
            hooks
                .iter()
                .map(|h| {
                    let target = Target {
                        url: h.url.clone(),
                        secret: h.secret.clone(),
                    };
                    (h.backend.clone(), target)
                })
                .collect(),
        )
    }

    pub fn get(&self, backend: &str) -> Option<&Target> {
        self.0.get(backend)
    }
}

/// A login's state as the pipeline is about to record it: under its token's challenge.
pub type Recorded = Option<(Challenge, LoginRecord)>;

/// Decides, as the pipeline is about to record a login's state, whether an event goes with it.
#[derive(Clone)]
pub struct Hooks {
    pub store: Arc<dyn LoginReads>,
    pub targets: Live<Targets>,
}

impl Hooks {
    /// The record to store and the event to queue with it. A login gets an event when it
    /// was minted by a backend that has a webhook now and the state is terminal.
    pub async fn route(
        &self,
        login: Recorded,
    ) -> Result<(Recorded, Option<QueuedEvent>), StoreError> {
        let Some((challenge, record)) = login else {
            return Ok((None, None));
        };
        let Some(minted) = self.store.minted(&challenge).await? else {
            return Ok((Some((challenge, record)), None));
        };
        if self.targets.load().get(&minted.backend).is_none() {
            return Ok((Some((challenge, record)), None));
        }
        Ok(
            match events::report(
                &minted.backend,
                &challenge,
                &record,
                &events::new_event_id(),
            ) {
                Some((stored, queued)) => (Some((challenge, stored)), Some(queued)),
                None => (Some((challenge, record)), None),
            },
        )
    }
}
