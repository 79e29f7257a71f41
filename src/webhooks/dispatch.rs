//! Delivers the durable webhook queue, and records the minted logins that expire unanswered.
//!
//! One task. Each round it first turns minted logins whose window closed without an SMS into
//! `expired` records with their event, then starts calls for the queued events that are due
//! (a few at once, so one slow receiver does not hold up the rest). Every call is signed anew
//! (`crate::signing`, protocol/signing.md) with the time it is made and bounded by a timeout;
//! an event leaves the queue only on a 2xx. A failure pauses that backend's webhook, not just
//! the one event: a receiver that is down gets one probe per pause rather than a call for every
//! event queued for it. The pause is 0.5 s after the first failure in a row, doubling to 10
//! minutes, each jittered down by up to half so that moauth nodes do not retry in lockstep; the
//! first 2xx ends it and the backlog follows, oldest first. The schedule lives in memory: after
//! a restart every queued event is tried at once, then backs off again. Nothing is dropped; an
//! event whose backend lost its webhook in a reload waits until one is configured again.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use thiserror::Error;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::{Target, Targets};
use crate::core::clock::{Clock, UnixSecs};
use crate::core::error::StoreError;
use crate::core::events;
use crate::core::live::Live;
use crate::core::login::LoginRecord;
use crate::core::login::LoginState;
use crate::core::outbound::QueuedEvent;
use crate::core::store::WebhookStore;
use crate::signing;

/// A receiver that has not answered within this is treated as down.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const FIRST_RETRY: Duration = Duration::from_millis(500);
const LAST_RETRY: Duration = Duration::from_secs(600);
/// Calls in flight at once.
const IN_FLIGHT: usize = 8;
/// Minted logins checked for expiry per round.
const DUE_BATCH: usize = 256;
/// How often, at the least, the queue and the due logins are looked at.
const TICK: Duration = Duration::from_secs(1);
const SWEEP_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Error)]
pub enum DeliveryError {
    #[error("backend {0:?} has no webhook configured")]
    NoTarget(String),
    #[error("{0}")]
    Http(reqwest::Error),
    #[error("the receiver answered {0}")]
    Status(u16),
}

/// The one HTTP client for every webhook call. A signed event (a `complete` one carries the
/// session) goes to the configured URL and nowhere else: a redirect is a failed delivery.
pub fn client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

/// The wait after the `failures`-th failed attempt in a row, before jitter.
pub fn backoff(failures: u32) -> Duration {
    FIRST_RETRY
        .saturating_mul(1 << failures.saturating_sub(1).min(20))
        .min(LAST_RETRY)
}

fn jittered(wait: Duration) -> Duration {
    let millis = wait.as_millis() as u64;
    Duration::from_millis(millis / 2 + rand::random_range(0..=millis / 2))
}

pub struct Dispatcher {
    pub store: Arc<dyn WebhookStore>,
    pub targets: Live<Targets>,
    pub clock: Clock,
    pub client: reqwest::Client,
}

/// A backend's failures in a row, and until when its webhook is not called.
struct Pause {
    failures: u32,
    until: Instant,
}

impl Dispatcher {
    /// Runs until `stop`; calls still in flight then are dropped and, still queued, made again
    /// after the restart.
    pub async fn run(self, stop: CancellationToken) {
        let mut queued = self.store.events_queued();
        let mut paused: HashMap<String, Pause> = HashMap::new();
        let mut flying: HashSet<u64> = HashSet::new();
        let mut in_flight = FuturesUnordered::new();
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        loop {
            if let Err(e) = self.expire_due().await {
                warn!(error = %e, "could not record expired logins; will try again");
            }
            let now = Instant::now();
            let waiting = |id: u64, queued: &QueuedEvent| {
                flying.contains(&id) || paused.get(&queued.backend).is_some_and(|p| p.until > now)
            };
            let pending = self
                .store
                .pending_events(&waiting, IN_FLIGHT - flying.len())
                .await;
            match pending {
                // Only what is durable leaves: an event (which may carry the session) is
                // visible here as soon as its outcome commits, before the pipeline's sync.
                Ok(due) if !due.is_empty() && self.store.sync().await.is_err() => {
                    warn!("store flush failed; webhook calls wait");
                }
                Ok(due) => {
                    for (id, queued) in due {
                        flying.insert(id);
                        in_flight.push(self.deliver(id, queued));
                    }
                }
                Err(e) => warn!(error = %e, "webhook queue unreadable; will try again"),
            }
            metrics::gauge!("moauth_webhook_queue_depth").set(self.store.depths().webhooks as f64);
            let wake = paused
                .values()
                .map(|p| p.until)
                .filter(|until| *until > now)
                .fold(now + TICK, Instant::min);
            tokio::select! {
                Some((id, queued, result)) = in_flight.next(), if !in_flight.is_empty() => {
                    flying.remove(&id);
                    self.settle(id, &queued, result, &mut paused).await;
                }
                Ok(()) = queued.changed() => {}
                _ = tokio::time::sleep_until(wake) => {}
                _ = sweep.tick() => self.sweep().await,
                _ = stop.cancelled() => return,
            }
        }
    }

    async fn deliver(
        &self,
        id: u64,
        queued: QueuedEvent,
    ) -> (u64, QueuedEvent, Result<(), DeliveryError>) {
        let target = self.targets.load().get(&queued.backend).cloned();
        let result = match target {
            Some(target) => self.post(&target, &queued.body).await,
            None => Err(DeliveryError::NoTarget(queued.backend.clone())),
        };
        (id, queued, result)
    }

    async fn post(&self, target: &Target, body: &str) -> Result<(), DeliveryError> {
        let signature = signing::sign(target.secret(), self.clock.now(), body.as_bytes());
        let response = self
            .client
            .post(&target.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(signing::HEADER, signature)
            .body(body.to_owned())
            .send()
            .await
            // The URL may carry a receiver's own token in its query; it stays out of the logs.
            .map_err(|e| DeliveryError::Http(e.without_url()))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(DeliveryError::Status(status.as_u16()))
        }
    }

    async fn settle(
        &self,
        id: u64,
        queued: &QueuedEvent,
        result: Result<(), DeliveryError>,
        paused: &mut HashMap<String, Pause>,
    ) {
        match result {
            Ok(()) => {
                metrics::counter!("moauth_webhook_calls_total", "outcome" => "delivered")
                    .increment(1);
                paused.remove(&queued.backend);
                // A removal lost in a crash sends the event again, with the same event_id.
                if let Err(e) = self.store.ack_event(id).await {
                    warn!(error = %e, event_id = %queued.event_id, "delivered webhook event not removed; it will be sent again");
                }
                debug!(backend = %queued.backend, event_id = %queued.event_id, "webhook delivered");
            }
            Err(e) => {
                metrics::counter!("moauth_webhook_calls_total", "outcome" => "failed").increment(1);
                let now = Instant::now();
                let pause = paused.entry(queued.backend.clone()).or_insert(Pause {
                    failures: 0,
                    until: now,
                });
                // Calls already in flight when the pause began fail with it; they count once.
                if pause.until <= now {
                    pause.failures += 1;
                    let wait = jittered(backoff(pause.failures));
                    pause.until = now + wait;
                    warn!(
                        backend = %queued.backend,
                        event_id = %queued.event_id,
                        failures = pause.failures,
                        retry_in_ms = wait.as_millis() as u64,
                        error = %e,
                        "webhook call failed; backend paused"
                    );
                }
            }
        }
    }

    async fn expire_due(&self) -> Result<(), StoreError> {
        let targets = self.targets.load();
        let expired = expire_due(&*self.store, &targets, self.clock.now()).await?;
        if expired > 0 {
            info!(expired, "minted logins expired without an SMS");
        }
        Ok(())
    }

    async fn sweep(&self) {
        match self.store.sweep_minted(self.clock.now()).await {
            Ok(swept) => debug!(swept, "minted logins swept"),
            Err(e) => warn!(error = %e, "sweep of minted logins failed"),
        }
    }
}

/// Records `expired`, with its event, for the minted logins whose window closed before `now`
/// without an SMS; returns how many. An MO still in the inbox may be the one that completes
/// such a login (an auth core that was down holds them there), so only logins that expired
/// before the oldest waiting MO arrived are due: any MO for them came too late. A login whose
/// backend has no webhook is only taken off the due list.
async fn expire_due(
    store: &dyn WebhookStore,
    targets: &Targets,
    now: UnixSecs,
) -> Result<usize, StoreError> {
    let horizon = match store.oldest_mo_received_at().await? {
        Some(received_at) => received_at.min(now),
        None => now,
    };
    let mut expired = 0;
    for (expires_at, challenge) in store.due_minted(horizon, DUE_BATCH).await? {
        let minted = store.minted(&challenge).await?;
        let Some(minted) = minted.filter(|m| targets.get(&m.backend).is_some()) else {
            store.settle_due(expires_at, &challenge).await?;
            continue;
        };
        let record = LoginRecord {
            state: LoginState::Expired,
            msisdn: None,
            issued_at: minted.issued_at,
            decided_at: now,
            keep_until: minted.keep_until.max(now),
        };
        let id = events::new_event_id();
        let Some((stored, queued)) = events::report(&minted.backend, &challenge, &record, &id)
        else {
            continue;
        };
        // Not flushed: a record lost in a crash is made again, its due entry went with it.
        if store
            .record_expiry(expires_at, &challenge, &stored, &queued)
            .await?
        {
            expired += 1;
        }
    }
    Ok(expired)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::core::login::MintedLogin;
    use crate::core::mo::MoMessage;
    use crate::core::store::{
        IngestStore, LoginReads, MintStore, Outcome, PipelineStore, StoreBase,
    };
    use crate::core::token::{Token, Verifier};
    use crate::store::sled::SledStore;
    use crate::webhooks::config::WebhookConfig;

    fn shop_hook() -> Targets {
        Targets::from_config(&[WebhookConfig {
            backend: "shop".into(),
            url: "http://127.0.0.1:9/events".into(),
            secret: "s".into(),
            allow_plain_http: false,
        }])
    }

    async fn mint(store: &SledStore, backend: &str, expires_at: UnixSecs) -> Token {
        let token = Token::for_verifier(&Verifier::random(), expires_at - 600);
        let minted = MintedLogin {
            backend: backend.into(),
            issued_at: token.issued_at(),
            expires_at,
            keep_until: expires_at + 3_600,
        };
        store.mint(&token.challenge(), &minted).await.unwrap();
        token
    }

    fn mo_received_at(received_at: UnixSecs) -> MoMessage {
        MoMessage {
            smsc: "sim".into(),
            source_addr: "8613800138000".into(),
            source_ton: 1,
            destination_addr: "10690000".into(),
            esm_class: 0,
            data_coding: 0,
            user_data: b"LOGIN".to_vec(),
            sar: None,
            received_at,
        }
    }

    #[tokio::test]
    async fn a_minted_login_expires_once_and_only_after_every_mo_that_could_complete_it() {
        let store = SledStore::temporary().unwrap();
        let token = mint(&store, "shop", 1_000).await;
        let challenge = token.challenge();
        store.append_mos(&[mo_received_at(999)], 600).await.unwrap();

        // Its window closed, but an MO received inside it still waits in the inbox.
        assert_eq!(expire_due(&store, &shop_hook(), 2_000).await.unwrap(), 0);
        assert!(store.login(&challenge).await.unwrap().is_none());

        let (id, _) = store.oldest_mos(1).await.unwrap()[0].clone();
        store
            .commit_outcomes(&[Outcome::Decided {
                mo: id,
                login: None,
                session: None,
                replies: vec![],
                event: None,
            }])
            .await
            .unwrap();
        assert_eq!(expire_due(&store, &shop_hook(), 2_000).await.unwrap(), 1);
        let record = store.login(&challenge).await.unwrap().unwrap();
        assert_eq!(record.state, LoginState::Expired);
        let queued = store.pending_events(&|_, _| false, 10).await.unwrap();
        assert_eq!(queued.len(), 1);
        assert!(queued[0].1.body.contains(r#""state":"expired""#));

        // Once: it is no longer due.
        assert_eq!(expire_due(&store, &shop_hook(), 3_000).await.unwrap(), 0);
        assert_eq!(store.depths().webhooks, 1);
    }

    #[tokio::test]
    async fn a_login_with_a_state_or_without_a_webhook_gets_no_expiry_event() {
        let store = SledStore::temporary().unwrap();
        let answered = mint(&store, "shop", 1_000).await;
        let quiet = mint(&store, "crm", 1_000).await;
        let record = LoginRecord {
            state: LoginState::Rejected {
                reason: crate::core::login::RejectReason::BadToken,
            },
            msisdn: None,
            issued_at: 400,
            decided_at: 500,
            keep_until: 4_600,
        };
        store.append_mos(&[mo_received_at(500)], 600).await.unwrap();
        let (id, _) = store.oldest_mos(1).await.unwrap()[0].clone();
        store
            .commit_outcomes(&[Outcome::Decided {
                mo: id,
                login: Some((answered.challenge(), record.clone())),
                session: None,
                replies: vec![],
                event: None,
            }])
            .await
            .unwrap();

        assert_eq!(expire_due(&store, &shop_hook(), 2_000).await.unwrap(), 0);
        assert_eq!(
            store.login(&answered.challenge()).await.unwrap(),
            Some(record)
        );
        assert!(store.login(&quiet.challenge()).await.unwrap().is_none());
        assert_eq!(store.depths().webhooks, 0);
        assert!(store.due_minted(u64::MAX, 10).await.unwrap().is_empty());
    }

    #[test]
    fn backoff_doubles_from_half_a_second_to_ten_minutes() {
        let waits: Vec<u64> = (1..=13).map(|n| backoff(n).as_millis() as u64).collect();
        assert_eq!(
            waits,
            [
                500, 1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 256_000, 512_000,
                600_000, 600_000
            ]
        );
        assert_eq!(backoff(u32::MAX), LAST_RETRY);
    }

    #[test]
    fn jitter_stays_between_half_and_all_of_the_wait() {
        for _ in 0..1_000 {
            let wait = jittered(Duration::from_secs(8));
            assert!(
                (Duration::from_secs(4)..=Duration::from_secs(8)).contains(&wait),
                "{wait:?}"
            );
        }
    }
}
