//! The sled store's side of `moauth store export` / `import` (see [`crate::store::export`]).
//!
//! Export walks each tree in key order and writes its records; the expiry indexes and the
//! account-session index are not written, since import rebuilds them beside each record.
//! sled is single-process: both run with moauth stopped (the store's lock says so).
//!
//! Import writes into the target in place and is all-or-refused rather than atomic: a sled
//! transaction holds its writes in memory, which a large store would not fit. So the first
//! write is a marker, removed by the last once everything is flushed; a store with the marker
//! (an import that died half-way) is refused by [`SledStore::open`] and counts as not empty,
//! and `moauth store import --replace` starts it over.
//!
//! Ids: sled draws every id (accounts, inbox, outbox, webhooks) from one counter per database.
//! An import keeps each record's id (an account id is what apps know a person by; an answer
//! names the MO it served by id), so it moves the counter past every imported id at the end:
//! a new account or MO never takes an id already used.
//!
//! A session or pending password names its account by id, and PostgreSQL refuses one whose
//! account is not there (a foreign key). sled has no such constraint and no index of accounts
//! by id, so the import keeps the ids of the accounts it has put (about 16 bytes each, not the
//! records) and refuses the same records PostgreSQL does.

use std::collections::HashSet;

use futures::FutureExt;
use futures::future::BoxFuture;

use super::record::{PendingRecord, SessionRecord};
use super::{SledStore, budget, decode, encode, minted};
use crate::core::auth::{Account, AuthAnswer, SessionKey};
use crate::core::error::StoreError;
use crate::core::login::{LoginRecord, MintedLogin};
use crate::core::mo::{MoMessage, RejectedMo};
use crate::core::msisdn::Msisdn;
use crate::core::outbound::{Outbound, QueuedEvent, SentRecord};
use crate::core::token::Challenge;
use crate::store::export::{
    ImportTarget, Item, MoveError, challenge_from, from_hex, invalid, part_group, session_hash,
    to_hex,
};

/// The tree whose one key marks an import that has not finished.
pub(super) const IMPORTING: &str = "moauth_import";
const MARKER: &[u8] = b"incomplete";

/// Ids above this are not ids sled hands out (it would take a million restarts a million
/// times over): refused rather than spun to.
const HIGHEST_ID: u64 = 1 << 40;

fn id_of(tree: &'static str, key: &[u8]) -> Result<u64, StoreError> {
    <[u8; 8]>::try_from(key)
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt {
            tree,
            message: format!("a key of {} bytes, not an id", key.len()),
        })
}

fn challenge_of(tree: &'static str, key: &[u8]) -> Result<Challenge, StoreError> {
    Challenge::from_bytes(key).ok_or_else(|| StoreError::Corrupt {
        tree,
        message: "a key that is not a challenge".into(),
    })
}

fn text_of(tree: &'static str, key: &[u8]) -> Result<String, StoreError> {
    String::from_utf8(key.to_vec()).map_err(|_| StoreError::Corrupt {
        tree,
        message: "a key that is not text".into(),
    })
}

fn msisdn_of(tree: &'static str, key: &[u8]) -> Result<Msisdn, StoreError> {
    Msisdn::parse(&text_of(tree, key)?).map_err(|e| StoreError::Corrupt {
        tree,
        message: e.to_string(),
    })
}

impl SledStore {
    /// Every record, in the order of [`Item`], into `out`. Reads a consistent store only
    /// because nothing else writes it: moauth must be stopped (the caller holds the lock).
    pub fn export(
        &self,
        out: &mut dyn FnMut(&Item) -> Result<(), crate::store::export::MoveError>,
    ) -> Result<(), crate::store::export::MoveError> {
        let a = &self.accounts;
        for entry in a.accounts_tree().iter() {
            let (key, value) = entry.map_err(StoreError::from)?;
            out(&Item::Account {
                msisdn: msisdn_of("accounts", &key)?,
                account: decode::<Account>("accounts", &value)?,
            })?;
        }
        for entry in a.pending.iter() {
            let (key, value) = entry.map_err(StoreError::from)?;
            let pending: PendingRecord = decode("password_pending", &value)?;
            out(&Item::PasswordPending {
                account_id: id_of("password_pending", &key)?,
                msisdn: pending.msisdn,
                smsc: pending.smsc,
                from: pending.from,
                since: pending.since,
            })?;
        }
        for entry in a.sessions_tree().iter() {
            let (key, value) = entry.map_err(StoreError::from)?;
            let record: SessionRecord = decode("sessions", &value)?;
            out(&Item::Session {
                hash: to_hex(&key),
                account_id: record.account_id,
                expires_at: record.expires_at,
                issued_at: record.issued_at,
                msisdn: record.msisdn,
            })?;
        }
        for entry in a.answers_tree().iter() {
            let (key, value) = entry.map_err(StoreError::from)?;
            out(&Item::AuthAnswer {
                request_id: id_of("auth_receipts", &key)?,
                answer: decode::<AuthAnswer>("auth_receipts", &value)?,
            })?;
        }
        for entry in self.logins.tree.iter() {
            let (key, value) = entry.map_err(StoreError::from)?;
            out(&Item::Login {
                challenge: challenge_of("logins", &key)?.as_str().to_owned(),
                record: decode::<LoginRecord>("logins", &value)?,
            })?;
        }
        for entry in self.minted.tree.iter() {
            let (key, value) = entry.map_err(StoreError::from)?;
            let challenge = challenge_of("minted", &key)?;
            let login: MintedLogin = decode("minted", &value)?;
            let due = self
                .minted
                .due
                .contains_key(minted::due_key(login.expires_at, &challenge))
                .map_err(StoreError::from)?;
            out(&Item::Minted {
                challenge: challenge.as_str().to_owned(),
                login,
                due,
            })?;
        }
        for entry in self.inbox.tree.iter() {
            let (key, value) = entry.map_err(StoreError::from)?;
            out(&Item::Inbox {
                id: id_of("inbox", &key)?,
                mo: decode::<MoMessage>("inbox", &value)?,
            })?;
        }
        for entry in self.inbox.seen_tree().iter() {
            let (key, value) = entry.map_err(StoreError::from)?;
            out(&Item::Seen {
                digest: to_hex(&key),
                seen_at: id_of("inbox_seen", &value)?,
            })?;
        }
        for entry in self.parts.tree.iter() {
            let (key, value) = entry.map_err(StoreError::from)?;
            // The key is the group, then the part's number; the group ends with the count.
            let corrupt = || StoreError::Corrupt {
                tree: "parts",
                message: "a key too short for a group and a number".into(),
            };
            let (seq, group) = key.split_last().ok_or_else(corrupt)?;
            let total = *group.last().ok_or_else(corrupt)?;
            out(&Item::Part {
                group: to_hex(group),
                seq: *seq,
                total,
                mo: decode::<MoMessage>("parts", &value)?,
            })?;
        }
        for entry in self.rejected.tree.iter() {
            let (key, value) = entry.map_err(StoreError::from)?;
            out(&Item::Rejected {
                id: id_of("rejected", &key)?,
                rejected: decode::<RejectedMo>("rejected", &value)?,
            })?;
        }
        for entry in self.outbox.tree.iter() {
            let (key, value) = entry.map_err(StoreError::from)?;
            out(&Item::Outbox {
                id: id_of("outbox", &key)?,
                reply: decode::<Outbound>("outbox", &value)?,
            })?;
        }
        for entry in self.sent.tree.iter() {
            let (key, value) = entry.map_err(StoreError::from)?;
            let key = text_of("sent", &key)?;
            let (smsc, message_id) = key.split_once('\0').ok_or(StoreError::Corrupt {
                tree: "sent",
                message: "a key without its SMSC".into(),
            })?;
            out(&Item::Sent {
                smsc: smsc.to_owned(),
                message_id: message_id.to_owned(),
                record: decode::<SentRecord>("sent", &value)?,
            })?;
        }
        for entry in self.webhooks.tree.iter() {
            let (key, value) = entry.map_err(StoreError::from)?;
            out(&Item::Webhook {
                id: id_of("webhooks", &key)?,
                event: decode::<QueuedEvent>("webhooks", &value)?,
            })?;
        }
        for entry in self.opt_outs.iter() {
            let (key, value) = entry.map_err(StoreError::from)?;
            out(&Item::OptOut {
                msisdn: msisdn_of("opt_outs", &key)?,
                since: id_of("opt_outs", &value)?,
            })?;
        }
        for entry in self.sms_budget.iter() {
            let (key, value) = entry.map_err(StoreError::from)?;
            let corrupt = || StoreError::Corrupt {
                tree: "sms_budget",
                message: "not a window and a count".into(),
            };
            let window = value.get(..8).ok_or_else(corrupt)?;
            let count = value.get(8..).ok_or_else(corrupt)?;
            out(&Item::SmsBudget {
                period: text_of("sms_budget", &key)?,
                window: id_of("sms_budget", window)?,
                count: id_of("sms_budget", count)?,
            })?;
        }
        Ok(())
    }

    /// This store as the target of an import.
    pub fn import_target(self) -> SledImport {
        SledImport {
            store: self,
            highest_id: 0,
            accounts: HashSet::new(),
            marked: false,
        }
    }
}

/// An import into a sled store (see the module's note on the marker and on ids).
pub struct SledImport {
    store: SledStore,
    /// The highest id of any record put so far.
    highest_id: u64,
    /// The ids of the accounts put so far: a session or pending password must name one.
    accounts: HashSet<u64>,
    marked: bool,
}

impl SledImport {
    /// Empty of records.
    fn empty(&self) -> Result<bool, StoreError> {
        for name in self.store.db.tree_names() {
            if self.store.db.open_tree(&name)?.first()?.is_some() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn clear(&self) -> Result<(), StoreError> {
        for name in self.store.db.tree_names() {
            self.store.db.open_tree(&name)?.clear()?;
        }
        self.store.db.flush()?;
        Ok(())
    }

    fn mark(&mut self) -> Result<(), StoreError> {
        if !self.marked {
            self.store.db.open_tree(IMPORTING)?.insert(MARKER, &[])?;
            self.store.db.flush()?;
            self.marked = true;
        }
        Ok(())
    }

    fn put(&mut self, item: Item) -> Result<(), StoreError> {
        self.mark()?;
        let id = match &item {
            Item::Account { account, .. } => account.id,
            Item::PasswordPending { account_id, .. } => *account_id,
            Item::AuthAnswer { request_id: id, .. }
            | Item::Inbox { id, .. }
            | Item::Rejected { id, .. }
            | Item::Outbox { id, .. }
            | Item::Webhook { id, .. } => *id,
            _ => 0,
        };
        if id > HIGHEST_ID {
            return Err(invalid(format!("id {id} is beyond any sled store's")));
        }
        self.highest_id = self.highest_id.max(id);
        match &item {
            Item::Account { account, .. } => {
                self.accounts.insert(account.id);
            }
            Item::PasswordPending { account_id, .. } | Item::Session { account_id, .. }
                if !self.accounts.contains(account_id) =>
            {
                return Err(invalid(format!(
                    "account {account_id} is not among the accounts before this line"
                )));
            }
            _ => {}
        }
        let key = id.to_be_bytes();
        let s = &self.store;
        let a = &s.accounts;
        match item {
            Item::Account { msisdn, account } => {
                a.accounts_tree()
                    .insert(msisdn.as_str(), encode(&account))?;
            }
            Item::PasswordPending {
                msisdn,
                smsc,
                from,
                since,
                ..
            } => {
                let pending = PendingRecord {
                    msisdn,
                    smsc,
                    from,
                    since,
                };
                a.pending.insert(key, encode(&pending))?;
            }
            Item::Session {
                hash,
                account_id,
                expires_at,
                issued_at,
                msisdn,
            } => {
                let session = SessionKey(session_hash(&hash)?);
                let record = SessionRecord {
                    account_id,
                    expires_at,
                    issued_at,
                    msisdn,
                };
                a.put_session(&session, &record)?;
            }
            Item::AuthAnswer { answer, .. } => {
                a.answers_tree().insert(key, encode(&answer))?;
            }
            Item::Login { challenge, record } => {
                let challenge = challenge_from(&challenge)?;
                s.logins.due.note(record.keep_until, challenge.as_bytes())?;
                s.logins
                    .tree
                    .insert(challenge.as_bytes(), encode(&record))?;
            }
            Item::Minted {
                challenge,
                login,
                due,
            } => {
                let challenge = challenge_from(&challenge)?;
                s.minted.insert(&challenge, &login)?;
                if !due {
                    s.minted.settle_due(login.expires_at, &challenge)?;
                }
            }
            Item::Inbox { mo, .. } => {
                s.inbox.tree.insert(key, encode(&mo))?;
            }
            Item::Seen { digest, seen_at } => {
                s.inbox.note_seen(&from_hex("digest", &digest)?, seen_at)?;
            }
            Item::Part {
                group,
                seq,
                total,
                mo,
            } => {
                let mut part = part_group(&group, total)?;
                part.push(seq);
                s.parts.note(mo.received_at, &part)?;
                s.parts.tree.insert(part, encode(&mo))?;
            }
            Item::Rejected { rejected, .. } => {
                s.rejected.tree.insert(key, encode(&rejected))?;
            }
            Item::Outbox { reply, .. } => {
                s.outbox.tree.insert(key, encode(&reply))?;
            }
            Item::Sent {
                smsc,
                message_id,
                record,
            } => s.sent.record(&smsc, &message_id, &record)?,
            Item::Webhook { event, .. } => {
                s.webhooks.tree.insert(key, encode(&event))?;
            }
            Item::OptOut { msisdn, since } => {
                s.opt_outs.insert(msisdn.as_str(), &since.to_be_bytes())?;
            }
            Item::SmsBudget {
                period,
                window,
                count,
            } => {
                if period != "hour" && period != "day" {
                    return Err(invalid(format!("{period:?} is not a budget period")));
                }
                s.sms_budget
                    .insert(period.as_bytes(), budget::value(window, count))?;
            }
            Item::End { .. } => {}
        }
        Ok(())
    }

    /// Moves the id counter past every imported id, flushes, and only then removes the
    /// marker (and flushes that).
    fn finish(mut self) -> Result<(), StoreError> {
        self.mark()?;
        while self.store.db.generate_id()? <= self.highest_id {}
        self.store.db.flush()?;
        self.store.db.open_tree(IMPORTING)?.remove(MARKER)?;
        self.store.db.flush()?;
        Ok(())
    }
}

impl ImportTarget for SledImport {
    fn is_empty(&mut self) -> BoxFuture<'_, Result<bool, StoreError>> {
        futures::future::ready(self.empty()).boxed()
    }

    fn clear(&mut self) -> BoxFuture<'_, Result<(), StoreError>> {
        futures::future::ready(SledImport::clear(self)).boxed()
    }

    fn put(&mut self, line: u64, item: Item) -> BoxFuture<'_, Result<(), MoveError>> {
        let kind = item.kind();
        let put = SledImport::put(self, item).map_err(|source| MoveError::Rejected {
            line,
            kind,
            source,
        });
        futures::future::ready(put).boxed()
    }

    fn finish(self) -> BoxFuture<'static, Result<(), MoveError>> {
        futures::future::ready(SledImport::finish(self).map_err(MoveError::from)).boxed()
    }
}

/// For [`SledStore::open`]: whether an import into this database never finished.
pub(super) fn import_unfinished(db: &sled::Db) -> Result<bool, StoreError> {
    Ok(db.open_tree(IMPORTING)?.contains_key(MARKER)?)
}
