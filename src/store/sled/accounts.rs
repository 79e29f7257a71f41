//! Accounts, sessions and answered auth requests of the embedded auth core.
//!
//! Accounts are keyed by E.164 number (the login ID), so the number index is the key itself.
//! Sessions are stored by SHA-256 of the token ([`SessionKey`]): a copy of the store does not
//! yield live sessions. Two indexes point at them, both with empty values: `account_sessions`
//! (account id ‖ key) to end every session of an account, and `sessions_due` (expiry ‖ key)
//! so the sweep reads only what is due. A returning number's session is written by the
//! pipeline's commit, with the login that hands it out (`SessionTrees`, see
//! [`Granted::session`](crate::core::auth::Granted::session)). A new number's account and
//! session are written here, in one transaction, with the answer kept per request id until
//! the login it served is committed: a retried MO (after a crash) gets the same account and
//! session, never a second account.
//!
//! A new account whose password is to be texted is created without one, and marked in
//! `password_pending` (account id → [`PendingRecord`]) in the same transaction; the registrar
//! resumes from that index (see `passwords.rs`).
//!
//! A session is written after its two index entries and removed before them, so a crash in
//! between leaves an index entry pointing at nothing (skipped and removed when next read),
//! never a session that revocation or the sweep cannot find.

use sled::Transactional;
use sled::transaction::{
    ConflictableTransactionError, TransactionalTree, UnabortableTransactionError,
};

use super::expiry::fill;
use super::record::{PendingRecord, SessionRecord};
use super::{StoreError, decode, encode};
use crate::core::auth::{Account, AuthAnswer, NewSession, SessionInfo, SessionKey};
use crate::core::clock::UnixSecs;
use crate::core::msisdn::Msisdn;
use crate::core::store::NewLogin;

#[derive(Clone)]
pub struct Accounts {
    accounts: sled::Tree,
    sessions: sled::Tree,
    /// account id (8 bytes, big-endian) ‖ session key → nothing.
    by_account: sled::Tree,
    /// expiry (8 bytes, big-endian) ‖ session key → nothing.
    due: sled::Tree,
    answers: sled::Tree,
    /// account id (8 bytes, big-endian: oldest first) → [`PendingRecord`].
    pub(super) pending: sled::Tree,
}

fn account_key(account_id: u64, key: &SessionKey) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..8].copy_from_slice(&account_id.to_be_bytes());
    k[8..].copy_from_slice(&key.0);
    k
}

fn due_key(expires_at: UnixSecs, key: &SessionKey) -> [u8; 40] {
    account_key(expires_at, key)
}

/// The session key a `sessions` key holds.
fn session_key(key: &[u8]) -> Option<SessionKey> {
    <[u8; 32]>::try_from(key).ok().map(SessionKey)
}

fn key_after_prefix(entry: &[u8]) -> Option<SessionKey> {
    session_key(entry.get(8..)?)
}

fn session_record(new: &NewSession) -> SessionRecord {
    SessionRecord {
        account_id: new.account_id,
        expires_at: new.expires_at,
        issued_at: Some(new.issued_at),
        msisdn: Some(new.msisdn.clone()),
    }
}

/// The session record of `new`, encoded.
pub(super) fn session_value(new: &NewSession) -> Vec<u8> {
    encode(&session_record(new))
}

/// The trees a session is written to, as one transaction sees them.
pub(super) struct SessionTrees<'t> {
    pub sessions: &'t TransactionalTree,
    pub by_account: &'t TransactionalTree,
    pub due: &'t TransactionalTree,
}

impl SessionTrees<'_> {
    /// Writes a session (`value`: its [`session_value`]) and its two index entries.
    pub fn insert(
        &self,
        new: &NewSession,
        value: &[u8],
    ) -> Result<(), UnabortableTransactionError> {
        self.by_account
            .insert(account_key(new.account_id, &new.key).as_slice(), &[][..])?;
        self.due
            .insert(due_key(new.expires_at, &new.key).as_slice(), &[][..])?;
        self.sessions.insert(new.key.0.as_slice(), value)?;
        Ok(())
    }
}

impl Accounts {
    /// Opens the trees; sessions stored before their indexes existed are indexed here once.
    pub(super) fn open(db: &sled::Db) -> Result<Self, StoreError> {
        let sessions = db.open_tree("sessions")?;
        let by_account = db.open_tree("account_sessions")?;
        let due = db.open_tree("sessions_due")?;
        let record = |value: &[u8]| decode::<SessionRecord>("sessions", value);
        fill(db, &by_account, &sessions, |_, value| {
            Ok(record(value)?.account_id)
        })?;
        fill(db, &due, &sessions, |_, v| Ok(record(v)?.expires_at))?;
        Ok(Accounts {
            accounts: db.open_tree("accounts")?,
            sessions,
            by_account,
            due,
            answers: db.open_tree("auth_receipts")?,
            pending: db.open_tree("password_pending")?,
        })
    }

    pub fn get(&self, msisdn: &Msisdn) -> Result<Option<Account>, StoreError> {
        self.accounts
            .get(msisdn.as_str())?
            .map(|v| decode("accounts", &v))
            .transpose()
    }

    pub fn answer(&self, request_id: u64) -> Result<Option<AuthAnswer>, StoreError> {
        self.answers
            .get(request_id.to_be_bytes())?
            .map(|v| decode("auth_receipts", &v))
            .transpose()
    }

    /// Logs the number in, creating its account (and its "password pending" mark) if it
    /// still has none; records the answer under the request id, in one transaction.
    pub fn login(&self, new: NewLogin<'_>) -> Result<AuthAnswer, StoreError> {
        let session_key = SessionKey::of(&new.session);
        let answer = (
            &self.accounts,
            &self.sessions,
            &self.by_account,
            &self.due,
            &self.answers,
            &self.pending,
        )
            .transaction(|(accounts, sessions, by_account, due, answers, pending)| {
                let key = new.msisdn.as_str().as_bytes();
                let (account_id, created) = match accounts.get(key)? {
                    Some(v) => {
                        let account: Account =
                            decode("accounts", &v).map_err(ConflictableTransactionError::Abort)?;
                        (account.id, false)
                    }
                    None => {
                        let id = accounts.generate_id()?;
                        let account = Account {
                            id,
                            password_hash: None,
                            created_at: new.now,
                        };
                        accounts.insert(key, encode(&account))?;
                        if let Some(to) = &new.new_account.password_to {
                            let mark = PendingRecord {
                                msisdn: new.msisdn.clone(),
                                smsc: to.smsc.clone(),
                                from: to.from.clone(),
                                since: new.now,
                            };
                            pending.insert(&id.to_be_bytes(), encode(&mark))?;
                        }
                        (id, true)
                    }
                };
                let session = NewSession {
                    account_id,
                    msisdn: new.msisdn.clone(),
                    key: session_key,
                    issued_at: new.now,
                    expires_at: new.session_expires_at,
                };
                let trees = SessionTrees {
                    sessions,
                    by_account,
                    due,
                };
                trees.insert(&session, &session_value(&session))?;
                // A new account's credentials follow by themselves, once hashed and stored.
                let answer = AuthAnswer {
                    account_id: account_id.to_string(),
                    created,
                    session: new.session.clone(),
                    credentials: None,
                };
                answers.insert(&new.request_id.to_be_bytes(), encode(&answer))?;
                Ok(answer)
            })?;
        Ok(answer)
    }

    /// Forgets the requests' answers once the logins they served are committed; removing
    /// one that is not there writes nothing.
    pub fn settle(&self, request_ids: &[u64]) -> Result<(), StoreError> {
        for id in request_ids {
            self.answers.remove(id.to_be_bytes())?;
        }
        Ok(())
    }

    pub fn count(&self) -> usize {
        self.accounts.len()
    }

    pub(super) fn remove_account(&self, msisdn: &Msisdn) -> Result<bool, StoreError> {
        Ok(self.accounts.remove(msisdn.as_str())?.is_some())
    }

    pub(super) fn accounts_tree(&self) -> &sled::Tree {
        &self.accounts
    }

    pub(super) fn answers_tree(&self) -> &sled::Tree {
        &self.answers
    }

    pub(super) fn sessions_tree(&self) -> &sled::Tree {
        &self.sessions
    }

    pub(super) fn account_sessions_tree(&self) -> &sled::Tree {
        &self.by_account
    }

    pub(super) fn sessions_due_tree(&self) -> &sled::Tree {
        &self.due
    }

    /// The keys of sessions whose record names `msisdn` (a scan: for erasure only).
    pub(super) fn sessions_naming(&self, msisdn: &Msisdn) -> Result<Vec<SessionKey>, StoreError> {
        let mut keys = Vec::new();
        for entry in self.sessions.iter() {
            let (key, value) = entry?;
            let record: SessionRecord = decode("sessions", &value)?;
            if record.msisdn.as_ref() == Some(msisdn)
                && let Some(key) = session_key(&key)
            {
                keys.push(key);
            }
        }
        Ok(keys)
    }

    pub fn session(&self, key: &SessionKey) -> Result<Option<SessionInfo>, StoreError> {
        Ok(self
            .sessions
            .get(key.0)?
            .map(|v| decode("sessions", &v))
            .transpose()?
            .map(|r: SessionRecord| SessionInfo {
                account_id: r.account_id,
                msisdn: r.msisdn,
                issued_at: r.issued_at,
                expires_at: r.expires_at,
            }))
    }

    /// Indexes first, the session last (see the module's note on crashes).
    pub fn add_session(&self, new: NewSession) -> Result<(), StoreError> {
        self.put_session(&new.key, &session_record(&new))
    }

    /// Writes a session and its two index entries, as plain writes (not in a transaction).
    pub(super) fn put_session(
        &self,
        key: &SessionKey,
        record: &SessionRecord,
    ) -> Result<(), StoreError> {
        self.by_account
            .insert(account_key(record.account_id, key), &[])?;
        self.due.insert(due_key(record.expires_at, key), &[])?;
        self.sessions.insert(key.0, encode(record))?;
        Ok(())
    }

    /// The session first, its index entries after.
    pub fn revoke(&self, key: &SessionKey) -> Result<bool, StoreError> {
        let Some(value) = self.sessions.remove(key.0)? else {
            return Ok(false);
        };
        let record: SessionRecord = decode("sessions", &value)?;
        self.by_account
            .remove(account_key(record.account_id, key))?;
        self.due.remove(due_key(record.expires_at, key))?;
        Ok(true)
    }

    pub fn revoke_all(&self, account_id: u64) -> Result<usize, StoreError> {
        let mut revoked = 0;
        for entry in self.by_account.scan_prefix(account_id.to_be_bytes()) {
            let (index, _) = entry?;
            if let Some(key) = key_after_prefix(&index) {
                revoked += usize::from(self.revoke(&key)?);
            }
            self.by_account.remove(index)?;
        }
        Ok(revoked)
    }

    /// A compare-and-swap on the account: a login creating nothing never rewrites it, so
    /// only another reset can race, and then the last one wins whole.
    pub fn set_password(&self, msisdn: &Msisdn, hash: String) -> Result<bool, StoreError> {
        loop {
            let Some(old) = self.accounts.get(msisdn.as_str())? else {
                return Ok(false);
            };
            let mut account: Account = decode("accounts", &old)?;
            account.password_hash = Some(hash.clone());
            let swapped = self.accounts.compare_and_swap(
                msisdn.as_str(),
                Some(&old),
                Some(encode(&account)),
            )?;
            if swapped.is_ok() {
                return Ok(true);
            }
        }
    }

    /// Reads `sessions_due` up to `now` only: the cost follows what is due, not what is stored.
    pub fn sweep(&self, now: UnixSecs) -> Result<usize, StoreError> {
        let mut swept = 0;
        for entry in self.due.range(..now.to_be_bytes()) {
            let (index, _) = entry?;
            if let Some(key) = key_after_prefix(&index) {
                swept += usize::from(self.revoke(&key)?);
            }
            self.due.remove(index)?;
        }
        Ok(swept)
    }
}

#[cfg(test)]
mod tests {
    use super::super::SledStore;
    use super::Accounts;
    use crate::core::auth::NewSession;
    use crate::core::auth::SessionKey;
    use crate::core::msisdn::Msisdn;

    /// A store from before `account_sessions` and `sessions_due` existed has sessions and
    /// no index entries: opening it indexes them, so they are swept and revoked like any.
    #[test]
    fn sessions_from_before_their_indexes_are_swept_and_revoked() {
        let store = SledStore::temporary().unwrap();
        let alice = Msisdn::parse("+8613800138000").unwrap();
        let session = |account_id, name, expires_at| NewSession {
            account_id,
            msisdn: alice.clone(),
            key: SessionKey::of(name),
            issued_at: 1_000,
            expires_at,
        };
        let written = &store.accounts;
        written.add_session(session(7, "expired", 2_000)).unwrap();
        written.add_session(session(8, "live", 9_000)).unwrap();
        // As an older store left them: sessions, and no index entries.
        written.by_account.clear().unwrap();
        written.due.clear().unwrap();

        let opened = Accounts::open(&store.db).unwrap();
        assert_eq!(opened.sweep(3_000).unwrap(), 1);
        assert_eq!(opened.session(&SessionKey::of("expired")).unwrap(), None);
        assert!(opened.session(&SessionKey::of("live")).unwrap().is_some());
        assert_eq!(opened.revoke_all(8).unwrap(), 1);
        assert_eq!(opened.session(&SessionKey::of("live")).unwrap(), None);
    }
}
