//! The embedded sled store: one process, one directory, zero configuration.
//!
//! It implements the traits of [`crate::core::store`] and nothing else leaves this module:
//! sled's types, its quirks (see [`flush`]) and its key layouts stay here. Each tree has one
//! owner module (inbox, logins, accounts, outbox, ...); changes that span trees (an MO's
//! outcome) are one sled transaction. Writes are durable once [`SledStore`]'s `sync` (one
//! shared flush, group commit) has resolved after them.
//!
//! Waiting polls are woken through a [`LoginNotifier`] after each write to a login, never
//! through sled's `watch_prefix`, which keeps a subscriber per poll for ever.

mod accounts;
mod budget;
mod erase;
mod expiry;
mod export;
mod flush;
mod gauge;
mod inbox;
mod logins;
mod minted;
mod open;
mod outbox;
mod parts;
mod passwords;
mod record;
mod rejected;
mod sent;
mod webhooks;

use std::path::Path;
use std::sync::Arc;

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::watch;

use accounts::Accounts;
use expiry::Expiry;
use inbox::Inbox;
use logins::Logins;
use minted::Minted;
use outbox::Outbox;
use parts::Parts;
use record::Record;
use rejected::Rejected;
use sent::Sent;
use webhooks::Webhooks;

pub use export::SledImport;
pub use open::{OpenError, STOP_IT_FIRST, check_dir};

use crate::core::auth::{Account, AuthAnswer, NewSession, SessionInfo, SessionKey};
use crate::core::clock::UnixSecs;
use crate::core::error::StoreError;
use crate::core::login::{LoginRecord, MintedLogin};
use crate::core::mo::{MoMessage, RejectedMo};
use crate::core::msisdn::Msisdn;
use crate::core::notify::{LoginNotifier, LoginWatch};
use crate::core::outbound::{Outbound, QueuedEvent, SentRecord};
use crate::core::store::{
    AccountStore, Depths, Filed, IngestStore, LoginReads, MintStore, MoId, NewLogin, OptOutStore,
    OutboxRoutes, OutboxStore, Outcome, PartKey, PasswordStore, PendingPassword, PipelineStore,
    PollStore, QueueId, StoreBase, StoreFuture, StoreResult, SweepDue, Swept, WebhookStore,
};
use crate::core::token::Challenge;

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Backend(e.to_string())
    }
}

impl From<TransactionError<StoreError>> for StoreError {
    fn from(e: TransactionError<StoreError>) -> Self {
        match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => e.into(),
        }
    }
}

/// Handles to every tree; cheap to clone (sled trees are reference-counted).
#[derive(Clone)]
pub struct SledStore {
    db: sled::Db,
    /// This process's hold on the directory, released when the last handle goes.
    _lock: Option<Arc<open::StoreLock>>,
    flusher: Arc<flush::Flusher>,
    notifier: LoginNotifier,
    inbox: Inbox,
    logins: Logins,
    accounts: Accounts,
    outbox: Outbox,
    parts: Parts,
    rejected: Rejected,
    sent: Sent,
    minted: Minted,
    webhooks: Webhooks,
    /// Number → when it texted STOP (8 bytes, big-endian Unix seconds).
    opt_outs: sled::Tree,
    /// The global SMS budget's counts (`budget`).
    sms_budget: sled::Tree,
    /// How many accounts are marked "password pending" (`accounts.pending`).
    passwords_pending: gauge::Gauge,
}

impl SledStore {
    /// Opens (creating if needed) the store at `path`, which only this process may hold.
    /// Refuses a store an import did not finish filling.
    pub fn open(path: &Path, cache_capacity_mb: u64) -> Result<SledStore, OpenError> {
        let store = Self::open_for_import(path, cache_capacity_mb)?;
        if export::import_unfinished(&store.db)? {
            return Err(OpenError::ImportUnfinished {
                path: path.to_owned(),
            });
        }
        Ok(store)
    }

    /// Opens the store at `path` whatever an import left in it: for `moauth store import`,
    /// which finishes or replaces it.
    pub fn open_for_import(path: &Path, cache_capacity_mb: u64) -> Result<SledStore, OpenError> {
        let lock = open::StoreLock::acquire(path)?;
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(cache_capacity_mb * 1024 * 1024)
            .open()
            .map_err(|e| match e {
                sled::Error::Io(cause) => OpenError::Unusable {
                    path: path.to_owned(),
                    cause,
                },
                e => OpenError::Store(e.into()),
            })?;
        Ok(Self::from_db(db, Some(Arc::new(lock)))?)
    }

    /// A store in a temporary directory, removed when the last handle goes (tests).
    pub fn temporary() -> Result<SledStore, StoreError> {
        Self::from_db(sled::Config::new().temporary(true).open()?, None)
    }

    fn from_db(db: sled::Db, lock: Option<Arc<open::StoreLock>>) -> Result<SledStore, StoreError> {
        let accounts = Accounts::open(&db)?;
        Ok(SledStore {
            _lock: lock,
            inbox: Inbox::open(&db)?,
            logins: Logins::open(&db)?,
            passwords_pending: gauge::Gauge::counted(&accounts.pending),
            accounts,
            outbox: Outbox::new(db.open_tree("outbox")?),
            flusher: Arc::new(flush::Flusher::default()),
            notifier: LoginNotifier::default(),
            parts: Parts::open(&db)?,
            rejected: Rejected::new(db.open_tree("rejected")?),
            sent: Sent::open(&db)?,
            minted: Minted::open(&db)?,
            webhooks: Webhooks::new(db.open_tree("webhooks")?),
            opt_outs: db.open_tree("opt_outs")?,
            sms_budget: db.open_tree("sms_budget")?,
            db,
        })
    }

    /// Every outcome of the slice in one sled transaction over the trees they touch.
    fn commit(&self, outcomes: &[Outcome]) -> StoreResult<()> {
        enum Encoded<'o> {
            Decided {
                mo: MoId,
                login: Option<(Challenge, &'o LoginRecord, Vec<u8>)>,
                session: Option<(&'o NewSession, Vec<u8>)>,
                replies: Vec<Vec<u8>>,
                event: Option<Vec<u8>>,
            },
            Rejected {
                mo: MoId,
                value: Vec<u8>,
            },
        }
        let encoded: Vec<Encoded> = outcomes
            .iter()
            .map(|outcome| match outcome {
                Outcome::Decided {
                    mo,
                    login,
                    session,
                    replies,
                    event,
                } => Encoded::Decided {
                    mo: *mo,
                    login: login.as_ref().map(|(c, r)| (*c, r, encode(r))),
                    session: session.as_ref().map(|s| (s, accounts::session_value(s))),
                    replies: replies.iter().map(encode).collect(),
                    event: event.as_ref().map(encode),
                },
                Outcome::Rejected { mo, rejected } => Encoded::Rejected {
                    mo: *mo,
                    value: encode(rejected),
                },
            })
            .collect();
        let counted = (
            &self.inbox.tree,
            &self.logins.tree,
            &self.outbox.tree,
            &self.webhooks.tree,
            &self.rejected.tree,
            self.logins.due.tree(),
            self.accounts.sessions_tree(),
            self.accounts.account_sessions_tree(),
            self.accounts.sessions_due_tree(),
        )
            .transaction(|trees| {
                let (
                    inbox,
                    logins,
                    outbox,
                    webhooks,
                    rejected,
                    logins_due,
                    sessions,
                    by_account,
                    due,
                ) = trees;
                let session_trees = accounts::SessionTrees {
                    sessions,
                    by_account,
                    due,
                };
                let (mut left_inbox, mut replies_queued, mut events_queued) = (0, 0, 0);
                let mut recorded_logins = Vec::new();
                for outcome in &encoded {
                    match outcome {
                        Encoded::Decided {
                            mo,
                            login,
                            session,
                            replies,
                            event,
                        } => {
                            // An MO no longer in the inbox (its number erased meanwhile) leaves
                            // nothing behind, as on PostgreSQL.
                            if inbox.remove(&mo.to_be_bytes())?.is_none() {
                                continue;
                            }
                            left_inbox += 1;
                            let mut recorded = true;
                            if let Some((challenge, next, value)) = login {
                                let earlier = logins
                                    .get(challenge.as_bytes())?
                                    .map(|v| decode::<LoginRecord>("logins", &v))
                                    .transpose()
                                    .map_err(ConflictableTransactionError::Abort)?;
                                // A terminal state stays terminal (`LoginState::may_become`).
                                recorded = earlier.is_none_or(|r| r.state.may_become(&next.state));
                                if recorded {
                                    recorded_logins.push(*challenge);
                                    logins.insert(challenge.as_bytes(), value.as_slice())?;
                                    Expiry::note_in(
                                        logins_due,
                                        next.keep_until,
                                        challenge.as_bytes(),
                                    )?;
                                    if let Some((new, value)) = session {
                                        session_trees.insert(new, value)?;
                                    }
                                }
                            }
                            for value in replies {
                                let id = outbox.generate_id()?;
                                outbox.insert(&id.to_be_bytes(), value.as_slice())?;
                                replies_queued += 1;
                            }
                            // The event reports the login state: none for a state not recorded.
                            if let Some(value) = event.as_ref().filter(|_| recorded) {
                                let id = webhooks.generate_id()?;
                                webhooks.insert(&id.to_be_bytes(), value.as_slice())?;
                                events_queued += 1;
                            }
                        }
                        Encoded::Rejected { mo, value } => {
                            if inbox.remove(&mo.to_be_bytes())?.is_none() {
                                continue;
                            }
                            left_inbox += 1;
                            rejected.insert(&mo.to_be_bytes(), value.as_slice())?;
                        }
                    }
                }
                Ok::<_, ConflictableTransactionError<StoreError>>((
                    left_inbox,
                    replies_queued,
                    events_queued,
                    recorded_logins,
                ))
            })?;
        let (left_inbox, replies, events, recorded_logins) = counted;
        self.inbox.depth.sub(left_inbox);
        // Waiting polls of the logins recorded, and of no other.
        for challenge in &recorded_logins {
            self.notifier.notify(challenge);
        }
        if replies > 0 {
            self.outbox.depth.add(replies);
            self.outbox.wake();
        }
        if events > 0 {
            self.webhooks.depth.add(events);
            self.webhooks.wake();
        }
        Ok(())
    }

    fn expire(
        &self,
        expires_at: UnixSecs,
        challenge: &Challenge,
        record: &LoginRecord,
        event: &QueuedEvent,
    ) -> StoreResult<bool> {
        let record_value = encode(record);
        let event_value = encode(event);
        let due = minted::due_key(expires_at, challenge);
        let recorded = (
            &self.logins.tree,
            &self.minted.due,
            &self.webhooks.tree,
            self.logins.due.tree(),
        )
            .transaction(|(logins, minted_due, webhooks, logins_due)| {
                minted_due.remove(due.as_slice())?;
                if logins.get(challenge.as_bytes())?.is_some() {
                    return Ok(false);
                }
                logins.insert(challenge.as_bytes(), record_value.as_slice())?;
                Expiry::note_in(logins_due, record.keep_until, challenge.as_bytes())?;
                let id = webhooks.generate_id()?;
                webhooks.insert(&id.to_be_bytes(), event_value.as_slice())?;
                Ok::<_, ConflictableTransactionError<StoreError>>(true)
            })?;
        if recorded {
            self.notifier.notify(challenge);
            self.webhooks.depth.add(1);
            self.webhooks.wake();
        }
        Ok(recorded)
    }
}

/// A sled call is a local B-tree operation (no I/O wait but a flush), so it runs in place.
fn ready<'a, T: Send + 'a>(result: StoreResult<T>) -> StoreFuture<'a, T> {
    futures::future::ready(result).boxed()
}

impl StoreBase for SledStore {
    fn sync(&self) -> StoreFuture<'_, ()> {
        self.flusher.flush(&self.db).boxed()
    }

    fn depths(&self) -> Depths {
        Depths {
            inbox: self.inbox.len(),
            parts: self.parts.len(),
            outbox: self.outbox.len(),
            webhooks: self.webhooks.len(),
            passwords_pending: self.passwords_pending.get(),
        }
    }

    fn poll_waiters(&self) -> usize {
        self.notifier.len()
    }
}

impl IngestStore for SledStore {
    fn append_digested<'a>(
        &'a self,
        mos: &'a [(MoMessage, [u8; 16])],
        redelivery_window: u64,
    ) -> StoreFuture<'a, usize> {
        let repeats = self.inbox.append(mos, redelivery_window);
        // Only what was stored is work for the pipeline; a batch of redeliveries is not.
        if repeats.as_ref().is_ok_and(|&repeats| repeats < mos.len()) {
            self.inbox.wake();
        }
        ready(repeats)
    }

    fn mos_arrived(&self) -> BoxFuture<'_, ()> {
        self.inbox.arrived().boxed()
    }
}

impl LoginReads for SledStore {
    fn login<'a>(&'a self, challenge: &'a Challenge) -> StoreFuture<'a, Option<LoginRecord>> {
        ready(self.logins.get(challenge))
    }

    fn minted<'a>(&'a self, challenge: &'a Challenge) -> StoreFuture<'a, Option<MintedLogin>> {
        ready(self.minted.get(challenge))
    }
}

impl PipelineStore for SledStore {
    fn oldest_mos(&self, limit: usize) -> StoreFuture<'_, Vec<(MoId, MoMessage)>> {
        ready(self.inbox.oldest(limit))
    }

    fn commit_outcomes<'a>(&'a self, outcomes: &'a [Outcome]) -> StoreFuture<'a, ()> {
        ready(self.commit(outcomes))
    }

    fn mark_waiting<'a>(
        &'a self,
        challenge: &'a Challenge,
        record: &'a LoginRecord,
    ) -> StoreFuture<'a, ()> {
        ready(self.logins.mark_waiting(challenge, record))
    }

    fn file_part<'a>(
        &'a self,
        mo: MoId,
        at: PartKey<'a>,
        part: &'a MoMessage,
        join: &'a (dyn Fn(Vec<MoMessage>) -> MoMessage + Send + Sync),
    ) -> StoreFuture<'a, Filed> {
        ready(parts::file(&self.inbox, &self.parts, mo, at, part, join))
    }

    fn sweep_logins(&self, now: UnixSecs) -> StoreFuture<'_, usize> {
        // A million live logins take seconds to walk: on the blocking pool.
        let logins = self.logins.clone();
        async move {
            tokio::task::spawn_blocking(move || logins.sweep(now))
                .await
                .map_err(|e| StoreError::Backend(e.to_string()))?
        }
        .boxed()
    }

    fn sweep_leftovers(&self, due: SweepDue) -> StoreFuture<'_, Swept> {
        ready((|| {
            Ok(Swept {
                parts: self.parts.expire(due.parts_before)?,
                seen: self.inbox.sweep_seen(due.seen_before)?,
                rejected: self.rejected.expire(due.rejected_before)?,
                sent: self.sent.sweep(due.sent_before)?,
            })
        })())
    }

    fn rejected_mos(&self) -> StoreFuture<'_, Vec<RejectedMo>> {
        ready(self.rejected.all())
    }
}

impl PollStore for SledStore {
    fn take_session<'a>(
        &'a self,
        challenge: &'a Challenge,
        seen: &'a LoginRecord,
    ) -> StoreFuture<'a, Option<LoginRecord>> {
        async move {
            if !self.logins.begin_take(challenge, seen)? {
                return Ok(None);
            }
            // A failed flush leaves the session collectable: the swap is in the tree but not
            // durable, and reads keep seeing `complete` until a later take's flush succeeds.
            self.sync().await?;
            if !self.logins.handed_out(challenge) {
                return Ok(None);
            }
            self.notifier.notify(challenge);
            Ok(Some(seen.clone()))
        }
        .boxed()
    }

    fn watch_login(&self, challenge: &Challenge) -> LoginWatch {
        self.notifier.watch(challenge)
    }
}

impl MintStore for SledStore {
    fn mint<'a>(&'a self, challenge: &'a Challenge, login: &'a MintedLogin) -> StoreFuture<'a, ()> {
        async move {
            self.minted.insert(challenge, login)?;
            self.sync().await
        }
        .boxed()
    }
}

impl OutboxStore for SledStore {
    fn replies_queued(&self) -> watch::Receiver<u64> {
        self.outbox.subscribe()
    }

    fn pending_replies<'a>(
        &'a self,
        smsc: &'a str,
        skip: &'a (dyn Fn(QueueId) -> bool + Send + Sync),
        limit: usize,
    ) -> StoreFuture<'a, Vec<(QueueId, Outbound)>> {
        ready(self.outbox.pending_for(smsc, skip, limit))
    }

    fn ack_reply(&self, id: QueueId) -> StoreFuture<'_, ()> {
        ready(self.outbox.remove(id))
    }

    fn record_sent<'a>(
        &'a self,
        smsc: &'a str,
        message_id: &'a str,
        record: &'a SentRecord,
    ) -> StoreFuture<'a, ()> {
        ready(self.sent.record(smsc, message_id, record))
    }

    fn settle_sent<'a>(
        &'a self,
        smsc: &'a str,
        message_ids: &'a [String],
        outcome: &'a str,
    ) -> StoreFuture<'a, Option<SentRecord>> {
        ready(self.sent.settle(smsc, message_ids, outcome))
    }

    fn sent_record<'a>(
        &'a self,
        smsc: &'a str,
        message_id: &'a str,
    ) -> StoreFuture<'a, Option<SentRecord>> {
        ready(self.sent.get(smsc, message_id))
    }

    fn outbox_drained(&self) -> BoxFuture<'_, ()> {
        self.outbox.wait_empty().boxed()
    }
}

impl OutboxRoutes for SledStore {
    fn queued_per_smsc(&self) -> StoreFuture<'_, std::collections::BTreeMap<String, u64>> {
        ready(self.outbox.per_smsc())
    }

    fn reroute_replies<'a>(
        &'a self,
        from: &'a str,
        to: &'a (dyn Fn(&Outbound) -> Option<String> + Send + Sync),
    ) -> StoreFuture<'a, u64> {
        ready(self.outbox.reroute(from, to))
    }

    fn drop_replies<'a>(&'a self, smsc: &'a str) -> StoreFuture<'a, u64> {
        ready(self.outbox.drop_for(smsc))
    }
}

impl WebhookStore for SledStore {
    fn events_queued(&self) -> watch::Receiver<u64> {
        self.webhooks.subscribe()
    }

    fn pending_events<'a>(
        &'a self,
        skip: &'a (dyn Fn(QueueId, &QueuedEvent) -> bool + Send + Sync),
        limit: usize,
    ) -> StoreFuture<'a, Vec<(QueueId, QueuedEvent)>> {
        ready(self.webhooks.pending(skip, limit))
    }

    fn ack_event(&self, id: QueueId) -> StoreFuture<'_, ()> {
        ready(self.webhooks.remove(id))
    }

    fn oldest_mo_received_at(&self) -> StoreFuture<'_, Option<UnixSecs>> {
        ready(
            self.inbox
                .oldest(1)
                .map(|oldest| oldest.first().map(|(_, mo)| mo.received_at)),
        )
    }

    fn due_minted(
        &self,
        before: UnixSecs,
        limit: usize,
    ) -> StoreFuture<'_, Vec<(UnixSecs, Challenge)>> {
        ready(self.minted.due(before, limit))
    }

    fn settle_due<'a>(
        &'a self,
        expires_at: UnixSecs,
        challenge: &'a Challenge,
    ) -> StoreFuture<'a, ()> {
        ready(self.minted.settle_due(expires_at, challenge))
    }

    fn record_expiry<'a>(
        &'a self,
        expires_at: UnixSecs,
        challenge: &'a Challenge,
        record: &'a LoginRecord,
        event: &'a QueuedEvent,
    ) -> StoreFuture<'a, bool> {
        ready(self.expire(expires_at, challenge, record, event))
    }

    fn sweep_minted(&self, now: UnixSecs) -> StoreFuture<'_, usize> {
        ready(self.minted.sweep(now))
    }
}

impl AccountStore for SledStore {
    fn account<'a>(&'a self, msisdn: &'a Msisdn) -> StoreFuture<'a, Option<Account>> {
        ready(self.accounts.get(msisdn))
    }

    fn auth_answer(&self, request_id: u64) -> StoreFuture<'_, Option<AuthAnswer>> {
        ready(self.accounts.answer(request_id))
    }

    fn log_in<'a>(&'a self, new: NewLogin<'a>) -> StoreFuture<'a, AuthAnswer> {
        // An account created for a password to be texted is marked pending with it.
        let marks = new.new_account.password_to.is_some();
        let answer = self.accounts.login(new);
        if marks && answer.as_ref().is_ok_and(|a| a.created) {
            self.passwords_pending.add(1);
        }
        ready(answer)
    }

    fn settle_answers<'a>(&'a self, request_ids: &'a [u64]) -> StoreFuture<'a, ()> {
        ready(self.accounts.settle(request_ids))
    }

    fn account_count(&self) -> StoreFuture<'_, usize> {
        ready(Ok(self.accounts.count()))
    }

    fn session<'a>(&'a self, key: &'a SessionKey) -> StoreFuture<'a, Option<SessionInfo>> {
        ready(self.accounts.session(key))
    }

    fn add_session(&self, new: NewSession) -> StoreFuture<'_, ()> {
        ready(self.accounts.add_session(new))
    }

    fn revoke_session<'a>(&'a self, key: &'a SessionKey) -> StoreFuture<'a, bool> {
        ready(self.accounts.revoke(key))
    }

    fn revoke_sessions(&self, account_id: u64) -> StoreFuture<'_, usize> {
        ready(self.accounts.revoke_all(account_id))
    }

    fn set_password<'a>(&'a self, msisdn: &'a Msisdn, hash: String) -> StoreFuture<'a, bool> {
        ready(self.accounts.set_password(msisdn, hash))
    }

    fn sweep_sessions(&self, now: UnixSecs) -> StoreFuture<'_, usize> {
        ready(self.accounts.sweep(now))
    }

    fn erase_number<'a>(&'a self, msisdn: &'a Msisdn) -> StoreFuture<'a, usize> {
        let erased = self.erase(msisdn);
        if erased.is_ok() {
            self.outbox.wake_removed();
        }
        ready(erased)
    }
}

impl PasswordStore for SledStore {
    fn pending_passwords<'a>(
        &'a self,
        skip: &'a (dyn Fn(&Msisdn) -> bool + Send + Sync),
        limit: usize,
    ) -> StoreFuture<'a, Vec<PendingPassword>> {
        ready(SledStore::pending_passwords(self, skip, limit))
    }

    fn store_password<'a>(
        &'a self,
        pending: &'a PendingPassword,
        password: Option<(&'a str, &'a Outbound)>,
    ) -> StoreFuture<'a, bool> {
        ready(SledStore::store_password(self, pending, password))
    }
}

impl OptOutStore for SledStore {
    fn set_opt_out<'a>(
        &'a self,
        msisdn: &'a Msisdn,
        opted_out: bool,
        now: UnixSecs,
    ) -> StoreFuture<'a, bool> {
        let key = msisdn.as_str();
        ready((|| {
            Ok(if opted_out {
                self.opt_outs.insert(key, &now.to_be_bytes())?.is_none()
            } else {
                self.opt_outs.remove(key)?.is_some()
            })
        })())
    }

    fn opted_out<'a>(&'a self, msisdn: &'a Msisdn) -> StoreFuture<'a, bool> {
        ready(
            self.opt_outs
                .contains_key(msisdn.as_str())
                .map_err(StoreError::from),
        )
    }
}

fn encode<T: Record>(value: &T) -> Vec<u8> {
    value.to_bytes()
}

fn decode<T: Record>(tree: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    T::from_bytes(tree, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::login::LoginState;

    /// Opens the store at `path` again once the instance dropped before has let go of it:
    /// sled's own IO threads may still hold its lock for a moment after the last handle is
    /// dropped (a restart of the process never meets that).
    pub(super) fn reopen(path: &Path) -> SledStore {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            match SledStore::open(path, 16) {
                Ok(store) => return store,
                Err(e)
                    if e.to_string().contains("could not acquire lock")
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::yield_now();
                }
                Err(e) => panic!("reopening {}: {e}", path.display()),
            }
        }
    }

    /// An MO reading "HELP" from `source_addr`.
    pub(super) fn mo_from(source_addr: &str) -> MoMessage {
        MoMessage {
            smsc: "sim".into(),
            source_addr: source_addr.into(),
            source_ton: 1,
            destination_addr: "10690000".into(),
            esm_class: 0,
            data_coding: 1,
            user_data: b"HELP".to_vec(),
            sar: None,
            received_at: 1_700_000_000,
        }
    }

    /// A `complete` login of `msisdn`'s under a fresh challenge, written to the tree.
    fn stored_complete(store: &SledStore, msisdn: Option<Msisdn>) -> (Challenge, LoginRecord) {
        let challenge = crate::core::token::Verifier::random().challenge();
        let complete = LoginRecord {
            state: LoginState::Complete {
                session: "s".into(),
                account_id: "1".into(),
                created: false,
            },
            msisdn,
            issued_at: 1,
            decided_at: 2,
            keep_until: 3,
        };
        store
            .logins
            .tree
            .insert(challenge.as_bytes(), encode(&complete))
            .unwrap();
        (challenge, complete)
    }

    /// A batch of redeliveries stores nothing, so the pipeline has nothing to take: it is
    /// not woken for it (as on PostgreSQL).
    #[tokio::test]
    async fn a_batch_of_redeliveries_wakes_no_pipeline() {
        let store = SledStore::temporary().unwrap();
        let mos = [mo_from("8613800138000"), mo_from("8613900139000")];
        assert_eq!(store.append_mos(&mos, 600).await.unwrap(), 0);
        assert!(
            store.mos_arrived().now_or_never().is_some(),
            "new MOs wake it"
        );
        assert_eq!(store.append_mos(&mos, 600).await.unwrap(), 2);
        assert!(
            store.mos_arrived().now_or_never().is_none(),
            "only redeliveries: no wake"
        );
    }

    /// #14 item 6: a poll whose flush fails must not leave the session `consumed` (and
    /// lost): it stays collectable, and the next poll whose flush succeeds gets it, once.
    #[tokio::test]
    async fn a_take_whose_flush_fails_leaves_the_session_collectable() {
        let store = SledStore::temporary().unwrap();
        let (challenge, complete) = stored_complete(&store, None);

        store
            .flusher
            .failing
            .store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(store.take_session(&challenge, &complete).await.is_err());
        assert_eq!(
            store.login(&challenge).await.unwrap(),
            Some(complete.clone())
        );
        assert!(store.take_session(&challenge, &complete).await.is_err());

        store
            .flusher
            .failing
            .store(false, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(
            store.take_session(&challenge, &complete).await.unwrap(),
            Some(complete.clone())
        );
        assert_eq!(
            store.take_session(&challenge, &complete).await.unwrap(),
            None
        );
        let consumed = store.login(&challenge).await.unwrap().unwrap();
        assert_eq!(consumed.state, LoginState::Consumed);
    }

    /// A session whose take failed to flush waits in `Logins::untaken`; erasing its number
    /// must take it from there too, or a later poll still reads and collects it.
    #[tokio::test]
    async fn an_erased_number_leaves_no_untaken_session_behind() {
        let store = SledStore::temporary().unwrap();
        let alice = Msisdn::parse("+8613800138000").unwrap();
        let (challenge, complete) = stored_complete(&store, Some(alice.clone()));
        let failing = |on| {
            store
                .flusher
                .failing
                .store(on, std::sync::atomic::Ordering::SeqCst)
        };
        failing(true);
        assert!(store.take_session(&challenge, &complete).await.is_err());
        failing(false);

        store.erase_number(&alice).await.unwrap();
        assert_eq!(store.login(&challenge).await.unwrap(), None);
        assert_eq!(
            store.take_session(&challenge, &complete).await.unwrap(),
            None
        );
    }
}
