//! The store traits on PostgreSQL: each method is one of the SQL operations beside this file,
//! with the backend's error turned into the core's.
//!
//! Every write here is committed when its future resolves, so `sync` has nothing left to do:
//! on PostgreSQL "durable after `sync`" and "durable when it resolves" are the same moment.

use std::sync::atomic::Ordering;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::watch;

use super::PgStore;
use crate::core::auth::{Account, AuthAnswer, NewSession, SessionInfo, SessionKey};
use crate::core::clock::UnixSecs;
use crate::core::error::StoreError;
use crate::core::login::{LoginRecord, MintedLogin};
use crate::core::mo::{MoMessage, RejectedMo};
use crate::core::msisdn::Msisdn;
use crate::core::notify::LoginWatch;
use crate::core::outbound::{Outbound, QueuedEvent, SentRecord};
use crate::core::store::{
    AccountStore, Depths, Filed, IngestStore, LoginReads, MintStore, MoId, NewLogin, OptOutStore,
    OutboxRoutes, OutboxStore, Outcome, PartKey, PasswordStore, PendingPassword, PipelineStore,
    PollStore, QueueId, StoreBase, StoreFuture, SweepDue, Swept, WebhookStore,
};
use crate::core::token::Challenge;

/// Boxes `future`, turning its PostgreSQL error into the core's.
fn boxed<'a, T, F>(future: F) -> StoreFuture<'a, T>
where
    F: Future<Output = Result<T, super::PostgresError>> + Send + 'a,
{
    future.map(|r| r.map_err(StoreError::from)).boxed()
}

impl StoreBase for PgStore {
    /// Every write is committed before its call returns: nothing is left to flush.
    fn sync(&self) -> StoreFuture<'_, ()> {
        futures::future::ready(Ok(())).boxed()
    }

    /// Whether the database answered the last depth refresh (at most a second ago).
    fn reachable(&self) -> bool {
        self.signals
            .reachable
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn depths(&self) -> Depths {
        let s = &self.signals;
        Depths {
            inbox: s.inbox.load(Ordering::Relaxed),
            parts: s.parts.load(Ordering::Relaxed),
            outbox: s.outbox.load(Ordering::Relaxed),
            webhooks: s.webhooks.load(Ordering::Relaxed),
            passwords_pending: s.passwords_pending.load(Ordering::Relaxed),
        }
    }

    fn poll_waiters(&self) -> usize {
        self.logins.len()
    }
}

impl IngestStore for PgStore {
    fn append_digested<'a>(
        &'a self,
        mos: &'a [(MoMessage, [u8; 16])],
        redelivery_window: u64,
    ) -> StoreFuture<'a, usize> {
        boxed(async move {
            let repeats = self.append(mos, redelivery_window).await?;
            if repeats < mos.len() {
                self.signals.mos_arrived.notify_one();
            }
            Ok(repeats)
        })
    }

    fn mos_arrived(&self) -> BoxFuture<'_, ()> {
        self.signals.mos_arrived.notified().boxed()
    }
}

impl LoginReads for PgStore {
    fn login<'a>(&'a self, challenge: &'a Challenge) -> StoreFuture<'a, Option<LoginRecord>> {
        boxed(PgStore::login(self, challenge))
    }

    fn minted<'a>(&'a self, challenge: &'a Challenge) -> StoreFuture<'a, Option<MintedLogin>> {
        boxed(PgStore::minted(self, challenge))
    }
}

impl PipelineStore for PgStore {
    fn oldest_mos(&self, limit: usize) -> StoreFuture<'_, Vec<(MoId, MoMessage)>> {
        boxed(self.claim_inbox(limit))
    }

    fn commit_outcomes<'a>(&'a self, outcomes: &'a [Outcome]) -> StoreFuture<'a, ()> {
        boxed(async move {
            PgStore::commit_outcomes(self, outcomes).await?;
            // Other nodes hear of it by NOTIFY; this node's polls need not wait for that.
            for outcome in outcomes {
                if let Outcome::Decided {
                    login: Some((challenge, _)),
                    ..
                } = outcome
                {
                    self.logins.notify(challenge);
                }
            }
            self.signals
                .replies_queued
                .send_modify(|n| *n = n.wrapping_add(1));
            self.signals
                .events_queued
                .send_modify(|n| *n = n.wrapping_add(1));
            Ok(())
        })
    }

    fn mark_waiting<'a>(
        &'a self,
        challenge: &'a Challenge,
        record: &'a LoginRecord,
    ) -> StoreFuture<'a, ()> {
        boxed(PgStore::mark_waiting(self, challenge, record))
    }

    fn file_part<'a>(
        &'a self,
        mo: MoId,
        at: PartKey<'a>,
        part: &'a MoMessage,
        join: &'a (dyn Fn(Vec<MoMessage>) -> MoMessage + Send + Sync),
    ) -> StoreFuture<'a, Filed> {
        boxed(PgStore::file_part(self, mo, at, part, join))
    }

    fn sweep_logins(&self, now: UnixSecs) -> StoreFuture<'_, usize> {
        boxed(self.sweep_logins_due(now))
    }

    fn sweep_leftovers(&self, due: SweepDue) -> StoreFuture<'_, Swept> {
        boxed(self.sweep_leftovers_due(due))
    }

    fn rejected_mos(&self) -> StoreFuture<'_, Vec<RejectedMo>> {
        boxed(self.rejected())
    }
}

impl PollStore for PgStore {
    fn take_session<'a>(
        &'a self,
        challenge: &'a Challenge,
        seen: &'a LoginRecord,
    ) -> StoreFuture<'a, Option<LoginRecord>> {
        boxed(PgStore::take_session(self, challenge, seen))
    }

    fn watch_login(&self, challenge: &Challenge) -> LoginWatch {
        self.logins.watch(challenge)
    }
}

impl MintStore for PgStore {
    fn mint<'a>(&'a self, challenge: &'a Challenge, login: &'a MintedLogin) -> StoreFuture<'a, ()> {
        boxed(self.insert_minted(challenge, login))
    }
}

impl OutboxRoutes for PgStore {
    fn queued_per_smsc(&self) -> StoreFuture<'_, std::collections::BTreeMap<String, u64>> {
        boxed(self.replies_per_smsc())
    }

    fn reroute_replies<'a>(
        &'a self,
        from: &'a str,
        to: &'a (dyn Fn(&Outbound) -> Option<String> + Send + Sync),
    ) -> StoreFuture<'a, u64> {
        boxed(self.reroute(from, to))
    }

    fn drop_replies<'a>(&'a self, smsc: &'a str) -> StoreFuture<'a, u64> {
        boxed(self.drop_replies_for(smsc))
    }
}

impl OutboxStore for PgStore {
    fn replies_queued(&self) -> watch::Receiver<u64> {
        self.signals.replies_queued.subscribe()
    }

    fn pending_replies<'a>(
        &'a self,
        smsc: &'a str,
        skip: &'a (dyn Fn(QueueId) -> bool + Send + Sync),
        limit: usize,
    ) -> StoreFuture<'a, Vec<(QueueId, Outbound)>> {
        boxed(self.claim_replies(smsc, skip, limit))
    }

    fn ack_reply(&self, id: QueueId) -> StoreFuture<'_, ()> {
        boxed(self.remove_reply(id))
    }

    fn record_sent<'a>(
        &'a self,
        smsc: &'a str,
        message_id: &'a str,
        record: &'a SentRecord,
    ) -> StoreFuture<'a, ()> {
        boxed(PgStore::record_sent(self, smsc, message_id, record))
    }

    fn settle_sent<'a>(
        &'a self,
        smsc: &'a str,
        message_ids: &'a [String],
        outcome: &'a str,
    ) -> StoreFuture<'a, Option<SentRecord>> {
        boxed(PgStore::settle_sent(self, smsc, message_ids, outcome))
    }

    fn sent_record<'a>(
        &'a self,
        smsc: &'a str,
        message_id: &'a str,
    ) -> StoreFuture<'a, Option<SentRecord>> {
        boxed(self.sent(smsc, message_id))
    }

    fn outbox_drained(&self) -> BoxFuture<'_, ()> {
        self.wait_outbox_empty().boxed()
    }
}

impl WebhookStore for PgStore {
    fn events_queued(&self) -> watch::Receiver<u64> {
        self.signals.events_queued.subscribe()
    }

    fn pending_events<'a>(
        &'a self,
        skip: &'a (dyn Fn(QueueId, &QueuedEvent) -> bool + Send + Sync),
        limit: usize,
    ) -> StoreFuture<'a, Vec<(QueueId, QueuedEvent)>> {
        boxed(self.claim_events(skip, limit))
    }

    fn ack_event(&self, id: QueueId) -> StoreFuture<'_, ()> {
        boxed(self.remove_event(id))
    }

    fn oldest_mo_received_at(&self) -> StoreFuture<'_, Option<UnixSecs>> {
        boxed(self.oldest_received_at())
    }

    fn due_minted(
        &self,
        before: UnixSecs,
        limit: usize,
    ) -> StoreFuture<'_, Vec<(UnixSecs, Challenge)>> {
        boxed(self.minted_due(before, limit))
    }

    fn settle_due<'a>(
        &'a self,
        _expires_at: UnixSecs,
        challenge: &'a Challenge,
    ) -> StoreFuture<'a, ()> {
        boxed(PgStore::settle_due(self, challenge))
    }

    fn record_expiry<'a>(
        &'a self,
        _expires_at: UnixSecs,
        challenge: &'a Challenge,
        record: &'a LoginRecord,
        event: &'a QueuedEvent,
    ) -> StoreFuture<'a, bool> {
        boxed(async move {
            let recorded = PgStore::record_expiry(self, challenge, record, event).await?;
            if recorded {
                self.logins.notify(challenge);
                self.signals
                    .events_queued
                    .send_modify(|n| *n = n.wrapping_add(1));
            }
            Ok(recorded)
        })
    }

    fn sweep_minted(&self, now: UnixSecs) -> StoreFuture<'_, usize> {
        boxed(self.sweep_minted_due(now))
    }
}

impl AccountStore for PgStore {
    fn account<'a>(&'a self, msisdn: &'a Msisdn) -> StoreFuture<'a, Option<Account>> {
        boxed(PgStore::account(self, msisdn))
    }

    fn auth_answer(&self, request_id: u64) -> StoreFuture<'_, Option<AuthAnswer>> {
        boxed(PgStore::auth_answer(self, request_id))
    }

    fn log_in<'a>(&'a self, new: NewLogin<'a>) -> StoreFuture<'a, AuthAnswer> {
        async move {
            match PgStore::log_in(self, new).await {
                Ok(Ok(answer)) => Ok(answer),
                Ok(Err(super::accounts::AccountVanished)) => Err(StoreError::AccountVanished),
                Err(e) => Err(e.into()),
            }
        }
        .boxed()
    }

    fn settle_answers<'a>(&'a self, request_ids: &'a [u64]) -> StoreFuture<'a, ()> {
        boxed(PgStore::settle_answers(self, request_ids))
    }

    fn account_count(&self) -> StoreFuture<'_, usize> {
        boxed(async move { Ok(PgStore::account_count(self).await? as usize) })
    }

    fn session<'a>(&'a self, key: &'a SessionKey) -> StoreFuture<'a, Option<SessionInfo>> {
        boxed(PgStore::session(self, key))
    }

    fn add_session(&self, new: NewSession) -> StoreFuture<'_, ()> {
        boxed(PgStore::add_session(self, new))
    }

    fn revoke_session<'a>(&'a self, key: &'a SessionKey) -> StoreFuture<'a, bool> {
        boxed(PgStore::revoke_session(self, key))
    }

    fn revoke_sessions(&self, account_id: u64) -> StoreFuture<'_, usize> {
        boxed(PgStore::revoke_sessions(self, account_id))
    }

    fn set_password<'a>(&'a self, msisdn: &'a Msisdn, hash: String) -> StoreFuture<'a, bool> {
        boxed(async move { PgStore::set_password(self, msisdn, &hash).await })
    }

    fn sweep_sessions(&self, now: UnixSecs) -> StoreFuture<'_, usize> {
        boxed(PgStore::sweep_sessions_due(self, now))
    }

    fn erase_number<'a>(&'a self, msisdn: &'a Msisdn) -> StoreFuture<'a, usize> {
        boxed(PgStore::erase_number(self, msisdn))
    }
}

impl PasswordStore for PgStore {
    fn pending_passwords<'a>(
        &'a self,
        skip: &'a (dyn Fn(&Msisdn) -> bool + Send + Sync),
        limit: usize,
    ) -> StoreFuture<'a, Vec<PendingPassword>> {
        boxed(PgStore::pending_passwords(self, skip, limit))
    }

    fn store_password<'a>(
        &'a self,
        pending: &'a PendingPassword,
        password: Option<(&'a str, &'a Outbound)>,
    ) -> StoreFuture<'a, bool> {
        boxed(PgStore::store_password(self, pending, password))
    }
}

impl OptOutStore for PgStore {
    fn set_opt_out<'a>(
        &'a self,
        msisdn: &'a Msisdn,
        opted_out: bool,
        now: UnixSecs,
    ) -> StoreFuture<'a, bool> {
        boxed(async move {
            let client = self.pool.get().await?;
            let changed = if opted_out {
                client
                    .execute(
                        "INSERT INTO opt_outs (msisdn, since) VALUES ($1, $2)
                         ON CONFLICT (msisdn) DO NOTHING",
                        &[&msisdn.as_str(), &(now as i64)],
                    )
                    .await?
            } else {
                client
                    .execute(
                        "DELETE FROM opt_outs WHERE msisdn = $1",
                        &[&msisdn.as_str()],
                    )
                    .await?
            };
            Ok(changed > 0)
        })
    }

    fn opted_out<'a>(&'a self, msisdn: &'a Msisdn) -> StoreFuture<'a, bool> {
        boxed(async move {
            let client = self.pool.get().await?;
            let row = client
                .query_opt(
                    "SELECT 1 FROM opt_outs WHERE msisdn = $1",
                    &[&msisdn.as_str()],
                )
                .await?;
            Ok(row.is_some())
        })
    }
}
