//! The store as each consumer needs it: one narrow trait per consumer, shaped for batches and
//! for a database across the network.
//!
//! | consumer | trait |
//! | --- | --- |
//! | SMPP links' group commit (deliver_sm) | [`IngestStore`] |
//! | the login pipeline | [`PipelineStore`] |
//! | polls (`POST /v1/logins/poll`, `GET /v1/logins/{T}`) | [`PollStore`] |
//! | `POST /v1/logins` | [`MintStore`] |
//! | the SMPP links' sending side | [`OutboxStore`] |
//! | the webhook dispatcher | [`WebhookStore`] |
//! | the embedded auth core | [`AccountStore`] |
//! | the pipeline's STOP / START | [`OptOutStore`] |
//! | the pipeline's global SMS budget | [`SmsBudgetStore`] |
//! | the embedded auth core's registrar (new accounts' passwords) | [`PasswordStore`] |
//!
//! # Durability, for every implementation
//! A method that *writes* is atomic: all of its effect or none. It is **durable once a
//! [`StoreBase::sync`] that started after it has resolved**; methods that say "durable when
//! it resolves" are durable without one. Whoever acknowledges something to the outside (a
//! deliver_sm_resp, an HTTP 200, an SMS or a webhook call that exposes a state) calls `sync`
//! first. A backend whose writes are durable at commit (PostgreSQL) makes `sync` a no-op; an
//! embedded one (sled) flushes once for everyone waiting (group commit).
//!
//! # Exactly once
//! Decisions that must happen once are made by the store, atomically, never by a read and a
//! later write in the caller: a redelivered MO is stored once ([`IngestStore::append_digested`]),
//! a session is handed out once ([`PollStore::take_session`]), a number gets one account
//! ([`AccountStore::log_in`]), an MO leaves the inbox only together with its outcome
//! ([`PipelineStore::commit_outcomes`]). Queues (inbox, outbox, webhooks) are at-least-once:
//! an item leaves only when acknowledged, so after a crash it is handed out again.
//!
//! Every implementation passes the battery in `crate::store::battery` (run against sled by
//! `cargo test`, and against each further backend with the same macro).

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use tokio::sync::watch;

use crate::core::auth::{Account, AuthAnswer, NewSession, SessionInfo, SessionKey};
use crate::core::budget::{SmsCounts, Windows};
use crate::core::clock::UnixSecs;
use crate::core::error::StoreError;
#[cfg(doc)]
use crate::core::login::LoginState;
use crate::core::login::{LoginRecord, MintedLogin};
use crate::core::mo::{MoMessage, RejectedMo};
use crate::core::msisdn::Msisdn;
use crate::core::notify::LoginWatch;
use crate::core::outbound::{Outbound, QueuedEvent, SentRecord, SmsRoute};
use crate::core::token::Challenge;

pub type StoreResult<T> = Result<T, StoreError>;
pub type StoreFuture<'a, T> = BoxFuture<'a, StoreResult<T>>;

/// An MO's place in the inbox: increasing in arrival order, stable until it leaves.
pub type MoId = u64;
/// A queued reply or webhook event; increasing in the order they were queued.
pub type QueueId = u64;

/// What every consumer may ask.
pub trait StoreBase: Send + Sync {
    /// Resolves once every write this process made before the call is durable.
    fn sync(&self) -> StoreFuture<'_, ()>;

    /// Queue depths for `/metrics` and `/status`. Cheap: never a scan per call.
    fn depths(&self) -> Depths;

    /// How many logins polls wait on right now in this process (the entries of its
    /// [`LoginNotifier`](crate::core::notify::LoginNotifier)): 0 once every poll has left.
    fn poll_waiters(&self) -> usize;

    /// Whether a store behind the network answered its last check (for `/readyz`); cheap,
    /// never a round-trip per call. An embedded store has nothing to reach: its disk is
    /// checked by [`StoreBase::sync`].
    fn reachable(&self) -> bool {
        true
    }
}

/// How much work waits, as gauges report it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Depths {
    /// MOs stored and not yet processed.
    pub inbox: usize,
    /// Parts of concatenated MOs waiting for their siblings.
    pub parts: usize,
    /// Replies not yet accepted by an SMSC.
    pub outbox: usize,
    /// Webhook events not yet answered 2xx.
    pub webhooks: usize,
    /// New accounts still waiting for their password to be made, hashed and texted (the
    /// registrar's backlog: the SMS budget's credentials share spent, or hashing behind).
    pub passwords_pending: usize,
}

/// The SMPP links' side of the inbox: every deliver_sm is stored before it is acknowledged.
pub trait IngestStore: StoreBase {
    /// Appends `mos` to the inbox in order, except those whose digest (beside each, as
    /// [`MoMessage::digest`] made it) was already received within `redelivery_window` seconds
    /// of their `received_at` (an SMSC that missed our deliver_sm_resp sends the PDU again):
    /// those are stored once, in the same transaction. Returns how many were such repeats.
    /// Atomic; durable after `sync`. The ingest makes each digest once, for its arrivals
    /// note and for this.
    fn append_digested<'a>(
        &'a self,
        mos: &'a [(MoMessage, [u8; 16])],
        redelivery_window: u64,
    ) -> StoreFuture<'a, usize>;

    /// [`IngestStore::append_digested`], making the digests here.
    fn append_mos<'a>(
        &'a self,
        mos: &'a [MoMessage],
        redelivery_window: u64,
    ) -> StoreFuture<'a, usize> {
        let digested: Vec<_> = mos.iter().map(|mo| (mo.clone(), mo.digest())).collect();
        Box::pin(async move { self.append_digested(&digested, redelivery_window).await })
    }

    /// Resolves when MOs may have been appended since the last wake: the pipeline's cue.
    /// A wake given while nobody waits is kept for the next waiter.
    fn mos_arrived(&self) -> BoxFuture<'_, ()>;
}

/// Reads the poll, the pipeline and the webhook side share.
pub trait LoginReads: StoreBase {
    /// The login's record; None means nothing was recorded (a poll derives `pending` or
    /// `expired` from the token alone).
    fn login<'a>(&'a self, challenge: &'a Challenge) -> StoreFuture<'a, Option<LoginRecord>>;

    /// Which backend minted the login, if one did.
    fn minted<'a>(&'a self, challenge: &'a Challenge) -> StoreFuture<'a, Option<MintedLogin>>;
}

/// Where a part of a concatenated SMS sits.
pub struct PartKey<'a> {
    /// Identifies the message the part belongs to (sender, reference, ...).
    pub group: &'a [u8],
    pub seq: u8,
    pub total: u8,
}

/// What filing one part led to.
#[derive(Debug, PartialEq, Eq)]
pub enum Filed {
    /// Kept until its siblings come.
    Waiting,
    /// This part was filed already; dropped.
    Duplicate,
    /// The last part: the whole message went into the inbox under this id.
    Complete(MoId),
}

/// What an MO led to, committed with its removal from the inbox.
#[derive(Debug)]
pub enum Outcome {
    Decided {
        mo: MoId,
        /// The login state to record, if any.
        login: Option<(Challenge, LoginRecord)>,
        /// The session `login` hands out, when the embedded auth core left it to this commit
        /// ([`Granted::session`](crate::core::auth::Granted::session)); stored only if
        /// `login` is.
        session: Option<NewSession>,
        /// SMS to queue.
        replies: Vec<Outbound>,
        /// The webhook event reporting `login`, if its backend has a webhook.
        event: Option<QueuedEvent>,
    },
    /// The MO could not be read; kept aside for an operator.
    Rejected { mo: MoId, rejected: RejectedMo },
}

impl Outcome {
    /// Leaves only the MO's removal and its replies: the login state, the session it hands
    /// out and the event reporting it are not to be recorded.
    pub fn drop_login(&mut self) {
        if let Outcome::Decided {
            login,
            session,
            event,
            ..
        } = self
        {
            *login = None;
            *session = None;
            *event = None;
        }
    }
}

/// What a sweep may remove: everything past these times.
#[derive(Debug, Clone, Copy)]
pub struct SweepDue {
    /// Login records whose `keep_until` is before this.
    pub now: UnixSecs,
    /// Parts received before this whose siblings never came.
    pub parts_before: UnixSecs,
    /// Redelivery digests of MOs received before this.
    pub seen_before: UnixSecs,
    /// Rejected MOs received before this.
    pub rejected_before: UnixSecs,
    /// Records of SMS submitted before this (their receipts came or never will).
    pub sent_before: UnixSecs,
}

/// How much a sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    pub parts: usize,
    pub seen: usize,
    pub rejected: usize,
    pub sent: usize,
}

/// The login pipeline: takes MOs oldest first and commits what each led to.
pub trait PipelineStore: IngestStore + LoginReads {
    /// Up to `limit` MOs, oldest first. They stay in the inbox until an outcome removes them,
    /// so after a crash they are taken again.
    fn oldest_mos(&self, limit: usize) -> StoreFuture<'_, Vec<(MoId, MoMessage)>>;

    /// For each outcome whose MO is still in the inbox, atomically: the MO leaves the inbox,
    /// the login state (if any) is recorded where the recorded one may become it
    /// ([`LoginState::may_become`]: a terminal state stays terminal, whatever was read when
    /// the outcome was decided) and, only then, its session stored and its event queued for
    /// its webhook; the replies are queued for sending. An outcome whose MO is gone (another
    /// node committed it, or its number was erased) leaves nothing. The whole slice is one
    /// transaction: all of it or none. Waiting polls of the recorded logins are woken.
    /// Durable after `sync`; nothing queued here is handed to an SMSC or a webhook before
    /// then.
    fn commit_outcomes<'a>(&'a self, outcomes: &'a [Outcome]) -> StoreFuture<'a, ()>;

    /// Records that the login's MO waits for the auth core, unless a state is recorded
    /// already (a decided state is never overwritten). Durable after `sync`; after a crash
    /// the MO is taken again and marks itself again.
    fn mark_waiting<'a>(
        &'a self,
        challenge: &'a Challenge,
        record: &'a LoginRecord,
    ) -> StoreFuture<'a, ()>;

    /// Moves one part of a concatenated MO from the inbox to the parts; when it completes
    /// its message, `join` makes the whole and it goes back into the inbox (as a new MO)
    /// while the parts go. Atomic; a part filed twice is dropped. Durable after `sync`.
    fn file_part<'a>(
        &'a self,
        mo: MoId,
        at: PartKey<'a>,
        part: &'a MoMessage,
        join: &'a (dyn Fn(Vec<MoMessage>) -> MoMessage + Send + Sync),
    ) -> StoreFuture<'a, Filed>;

    /// Removes login records past their `keep_until`, never one that changed meanwhile;
    /// returns how many. May take long on a big store: run beside the pipeline, not in it.
    fn sweep_logins(&self, now: UnixSecs) -> StoreFuture<'_, usize>;

    /// Removes stale parts, redelivery digests and rejected MOs.
    fn sweep_leftovers(&self, due: SweepDue) -> StoreFuture<'_, Swept>;

    /// The MOs kept aside as unreadable, for an operator.
    fn rejected_mos(&self) -> StoreFuture<'_, Vec<RejectedMo>>;
}

/// The poll: reads a login, waits for it to change, hands its session out once.
pub trait PollStore: LoginReads {
    /// Swaps `Complete` for `Consumed` if the record is still exactly `seen`; returns the
    /// record as it was, or None if it changed meanwhile (another poll won). **Durable when
    /// it resolves**: once a session is answered, no crash can make a second poll get it. An
    /// error leaves it collectable: a later poll reads `Complete` and takes it again.
    fn take_session<'a>(
        &'a self,
        challenge: &'a Challenge,
        seen: &'a LoginRecord,
    ) -> StoreFuture<'a, Option<LoginRecord>>;

    /// Registers a waiter for the login's next change. Watch first, then read, then wait,
    /// and no change slips between. Costs nothing once the watch is dropped.
    fn watch_login(&self, challenge: &Challenge) -> LoginWatch;
}

/// `POST /v1/logins`: logins moauth makes for a backend.
pub trait MintStore: LoginReads {
    /// Records who minted the login and when it falls due. **Durable when it resolves**: the
    /// answer lets the SMS be sent, and the login's owner must be known when it arrives.
    fn mint<'a>(&'a self, challenge: &'a Challenge, login: &'a MintedLogin) -> StoreFuture<'a, ()>;
}

/// The SMPP links' sending side: replies queued by the pipeline, and what became of them.
pub trait OutboxStore: StoreBase {
    /// Changes whenever replies were queued since the receiver last looked.
    fn replies_queued(&self) -> watch::Receiver<u64>;

    /// Up to `limit` replies for the SMSC connection `smsc`, oldest first, skipping those
    /// `skip` picks (already in flight on this node). Only what is durable may be sent:
    /// `sync` before sending. A shared backend hands each out to one node at a time (a lease).
    fn pending_replies<'a>(
        &'a self,
        smsc: &'a str,
        skip: &'a (dyn Fn(QueueId) -> bool + Send + Sync),
        limit: usize,
    ) -> StoreFuture<'a, Vec<(QueueId, Outbound)>>;

    /// The SMSC accepted the reply (or refused it for good): it leaves the outbox.
    /// Durable after `sync`; a crash before that sends it again (at-least-once).
    fn ack_reply(&self, id: QueueId) -> StoreFuture<'_, ()>;

    /// Remembers an accepted SMS under the SMSC's message id, for its delivery receipt.
    fn record_sent<'a>(
        &'a self,
        smsc: &'a str,
        message_id: &'a str,
        record: &'a SentRecord,
    ) -> StoreFuture<'a, ()>;

    /// A delivery receipt came: records its outcome on the first of `message_ids` known.
    /// Durable after `sync`.
    fn settle_sent<'a>(
        &'a self,
        smsc: &'a str,
        message_ids: &'a [String],
        outcome: &'a str,
    ) -> StoreFuture<'a, Option<SentRecord>>;

    /// What is known of an accepted SMS: where it went and what its receipt said.
    fn sent_record<'a>(
        &'a self,
        smsc: &'a str,
        message_id: &'a str,
    ) -> StoreFuture<'a, Option<SentRecord>>;

    /// Resolves once no reply waits to be sent (drains and tests).
    fn outbox_drained(&self) -> BoxFuture<'_, ()>;
}

/// The webhook dispatcher: delivers events, and records logins that expired unanswered.
pub trait WebhookStore: LoginReads {
    /// Changes whenever events were queued since the receiver last looked.
    fn events_queued(&self) -> watch::Receiver<u64>;

    /// Up to `limit` events, oldest first, skipping those `skip` picks (in flight, or for a
    /// paused backend). Only what is durable may be delivered: `sync` before calling out.
    fn pending_events<'a>(
        &'a self,
        skip: &'a (dyn Fn(QueueId, &QueuedEvent) -> bool + Send + Sync),
        limit: usize,
    ) -> StoreFuture<'a, Vec<(QueueId, QueuedEvent)>>;

    /// The backend answered 2xx: the event leaves the queue. Durable after `sync`; a crash
    /// before that delivers it again with the same `event_id` (at-least-once).
    fn ack_event(&self, id: QueueId) -> StoreFuture<'_, ()>;

    /// When the oldest MO still in the inbox was received: a minted login that falls due
    /// after it may still have its SMS waiting there.
    fn oldest_mo_received_at(&self) -> StoreFuture<'_, Option<UnixSecs>>;

    /// Up to `limit` minted logins whose window closed before `before`, soonest first.
    fn due_minted(
        &self,
        before: UnixSecs,
        limit: usize,
    ) -> StoreFuture<'_, Vec<(UnixSecs, Challenge)>>;

    /// The login fell due and needs no event: it is no longer due.
    fn settle_due<'a>(
        &'a self,
        expires_at: UnixSecs,
        challenge: &'a Challenge,
    ) -> StoreFuture<'a, ()>;

    /// A minted login fell due with no SMS: records `record` (expired) and queues `event`,
    /// unless a state is recorded already; either way it is no longer due. Returns whether
    /// it was recorded. Atomic; durable after `sync`.
    fn record_expiry<'a>(
        &'a self,
        expires_at: UnixSecs,
        challenge: &'a Challenge,
        record: &'a LoginRecord,
        event: &'a QueuedEvent,
    ) -> StoreFuture<'a, bool>;

    /// Forgets minted logins past their `keep_until`; returns how many.
    fn sweep_minted(&self, now: UnixSecs) -> StoreFuture<'_, usize>;
}

/// What to write for one login of the embedded auth core.
pub struct NewLogin<'a> {
    /// The MO's inbox id: the same on every retry of that MO.
    pub request_id: u64,
    pub msisdn: &'a Msisdn,
    /// The account to create if the number has none.
    pub new_account: NewAccount,
    pub session: String,
    pub session_expires_at: UnixSecs,
    pub now: UnixSecs,
}

/// A number's first account. It is created without a password, so that its login waits for
/// no hashing; the password comes later ([`PasswordStore`]).
pub struct NewAccount {
    /// Where the password is to be texted: the account is then marked "password pending"
    /// in the same write. None: no password is made (nobody would be told it).
    pub password_to: Option<SmsRoute>,
}

/// A new account whose password is still to be made, stored and texted: the durable mark
/// [`AccountStore::log_in`] leaves with the account, until [`PasswordStore::store_password`]
/// takes it away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingPassword {
    pub msisdn: Msisdn,
    pub account_id: u64,
    pub to: SmsRoute,
    /// When the account was created.
    pub since: UnixSecs,
}

/// The embedded auth core's accounts, sessions and answers.
///
/// Sessions are kept by [`SessionKey`] only, indexed by account (to end them all) and by
/// expiry (so a sweep reads only what is due).
pub trait AccountStore: StoreBase {
    fn account<'a>(&'a self, msisdn: &'a Msisdn) -> StoreFuture<'a, Option<Account>>;

    /// The answer [`log_in`](Self::log_in) gave `request_id`, if it was not settled yet: a
    /// retried MO gets the same account and session.
    fn auth_answer(&self, request_id: u64) -> StoreFuture<'_, Option<AuthAnswer>>;

    /// Logs the number in: creates its account if it has none (`new_account`, marked
    /// "password pending" when it says where to text the password), stores the session (by
    /// hash only) and the answer under the request id. Never two accounts for one number,
    /// whoever races; [`StoreError::AccountVanished`] if the account another login created
    /// meanwhile was erased before this one could read it. Atomic; durable after `sync`.
    fn log_in<'a>(&'a self, new: NewLogin<'a>) -> StoreFuture<'a, AuthAnswer>;

    /// The logins that used `request_ids` are committed: their answers are forgotten, in
    /// one write.
    fn settle_answers<'a>(&'a self, request_ids: &'a [u64]) -> StoreFuture<'a, ()>;

    fn account_count(&self) -> StoreFuture<'_, usize>;

    /// The session stored under `key`, expired or not (the caller compares with its clock).
    fn session<'a>(&'a self, key: &'a SessionKey) -> StoreFuture<'a, Option<SessionInfo>>;

    /// Stores a session for an existing account. Durable after `sync`.
    fn add_session(&self, new: NewSession) -> StoreFuture<'_, ()>;

    /// Removes the session; returns whether there was one. Durable after `sync`.
    fn revoke_session<'a>(&'a self, key: &'a SessionKey) -> StoreFuture<'a, bool>;

    /// Removes every session of the account; returns how many. Durable after `sync`.
    fn revoke_sessions(&self, account_id: u64) -> StoreFuture<'_, usize>;

    /// Replaces the account's password hash (a pending one too: the registrar then sends
    /// nothing); false if the number has no account. Durable after `sync`.
    fn set_password<'a>(&'a self, msisdn: &'a Msisdn, hash: String) -> StoreFuture<'a, bool>;

    /// Removes sessions whose expiry is before `now`, reading only those; returns how many.
    fn sweep_sessions(&self, now: UnixSecs) -> StoreFuture<'_, usize>;

    /// A right-to-erasure request: removes the number's account and sessions and every record
    /// that names it in clear (logins, answers, queued and sent SMS, MOs in the inbox, parts
    /// and rejected, its opt-out); returns how many records went. Durable after `sync`.
    fn erase_number<'a>(&'a self, msisdn: &'a Msisdn) -> StoreFuture<'a, usize>;
}

/// The embedded auth core's registrar: gives new accounts their password off the login
/// path. After a crash at any point the mark is still there (the account's password never
/// went out) or it is gone together with the stored hash and the queued SMS.
pub trait PasswordStore: StoreBase {
    /// Up to `limit` accounts whose password is pending, oldest first, skipping those `skip`
    /// picks (in hand on this node). A shared backend hands each to one node at a time (a
    /// lease that lapses if that node dies).
    fn pending_passwords<'a>(
        &'a self,
        skip: &'a (dyn Fn(&Msisdn) -> bool + Send + Sync),
        limit: usize,
    ) -> StoreFuture<'a, Vec<PendingPassword>>;

    /// Atomically: if the account of `pending` still has its mark and no password, stores
    /// `hash` and queues `sms` (the password's text); the mark goes either way. None: only
    /// the mark goes (the password may not be texted). Returns whether the hash was stored.
    /// Durable after `sync`; `sms` is handed to no SMSC before then, so no password goes out
    /// whose hash is not stored.
    fn store_password<'a>(
        &'a self,
        pending: &'a PendingPassword,
        password: Option<(&'a str, &'a Outbound)>,
    ) -> StoreFuture<'a, bool>;
}

/// Numbers that texted STOP: the pipeline sends them no SMS until they text START.
pub trait OptOutStore: StoreBase {
    /// Records (`true`, as of `now`) or lifts (`false`) the number's opt-out; returns whether
    /// that changed anything. Durable after `sync`.
    fn set_opt_out<'a>(
        &'a self,
        msisdn: &'a Msisdn,
        opted_out: bool,
        now: UnixSecs,
    ) -> StoreFuture<'a, bool>;

    fn opted_out<'a>(&'a self, msisdn: &'a Msisdn) -> StoreFuture<'a, bool>;
}

/// The counts of the global SMS budget (`crate::core::budget`), one per store: every node of a
/// shared store spends the same budget.
pub trait SmsBudgetStore: StoreBase {
    /// Adds `segments` to the counts of the hour and the day of `at`, atomically, unless a
    /// count would then pass its cap in `caps`: then it adds nothing, and the store should
    /// write nothing (once the budget is spent, every SMS is refused). A count of an earlier
    /// window starts again from 0, and one of a later window (a node whose clock is ahead)
    /// takes the addition. Returns both counts with the addition, made or not, so the caller
    /// sees which cap it would pass; 0 segments only reads. Durable after `sync`.
    fn count_sms(&self, at: Windows, segments: u64, caps: SmsCounts) -> StoreFuture<'_, SmsCounts>;
}

/// Replies by the SMSC connection they wait for, and moving them to another: for the start
/// and reload check (a renamed or removed `[[smsc]]` leaves its replies behind, and no link
/// ever asks for them) and for `moauth outbox`.
pub trait OutboxRoutes: StoreBase {
    /// How many replies wait for each SMSC name.
    fn queued_per_smsc(&self) -> StoreFuture<'_, BTreeMap<String, u64>>;

    /// Gives each reply queued for `from` the SMSC name `to` picks for it (None: it stays);
    /// returns how many moved. Durable after `sync`.
    fn reroute_replies<'a>(
        &'a self,
        from: &'a str,
        to: &'a (dyn Fn(&Outbound) -> Option<String> + Send + Sync),
    ) -> StoreFuture<'a, u64>;

    /// Removes every reply queued for `smsc`; returns how many. Durable after `sync`.
    fn drop_replies<'a>(&'a self, smsc: &'a str) -> StoreFuture<'a, u64>;
}

/// Everything one backend offers; the daemon holds one and hands each consumer its part.
pub trait Store:
    PipelineStore
    + PollStore
    + MintStore
    + OutboxStore
    + OutboxRoutes
    + WebhookStore
    + AccountStore
    + PasswordStore
    + OptOutStore
    + SmsBudgetStore
{
}

impl<T> Store for T where
    T: PipelineStore
        + PollStore
        + MintStore
        + OutboxStore
        + OutboxRoutes
        + WebhookStore
        + AccountStore
        + PasswordStore
        + OptOutStore
        + SmsBudgetStore
{
}
