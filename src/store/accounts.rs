//! Accounts, sessions and answered auth requests of the embedded auth core.
//!
//! Accounts are keyed by E.164 number (the login ID), so the number index is the key itself.
//! Sessions are stored by SHA-256 of the token: a copy of the store does not yield live
//! sessions. Answers are kept per request id until the login they served is committed, so a
//! retried MO (after a crash) gets the same account, session and credentials, never a second
//! account or a lost credential SMS.

use sha2::{Digest, Sha256};
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

use super::record::SessionRecord;
use super::{StoreError, decode, encode};
use crate::core::auth::{Account, AuthAnswer, Credentials};
use crate::core::clock::UnixSecs;
use crate::core::msisdn::Msisdn;

#[derive(Clone)]
pub struct Accounts {
    accounts: sled::Tree,
    sessions: sled::Tree,
    answers: sled::Tree,
}

/// What to write for one login: the account to create if the number has none yet.
pub struct NewLogin<'a> {
    pub request_id: u64,
    pub msisdn: &'a Msisdn,
    pub password_hash_if_new: Option<String>,
    pub password_if_new: Option<String>,
    pub session: String,
    pub session_expires_at: UnixSecs,
    pub now: UnixSecs,
}

impl Accounts {
    pub(super) fn new(accounts: sled::Tree, sessions: sled::Tree, answers: sled::Tree) -> Self {
        Accounts {
            accounts,
            sessions,
            answers,
        }
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

    /// Logs the number in, creating its account when `password_hash_if_new` is given and the
    /// number still has none; records the answer under the request id. Atomic when it
    /// creates the account.
    pub fn login(&self, new: NewLogin<'_>) -> Result<AuthAnswer, StoreError> {
        let session_key = Sha256::digest(new.session.as_bytes());
        if let Some(v) = self.accounts.get(new.msisdn.as_str())? {
            return self.log_in_existing(&new, &session_key, decode("accounts", &v)?);
        }
        let answer = (&self.accounts, &self.sessions, &self.answers).transaction(
            |(accounts, sessions, answers)| {
                let key = new.msisdn.as_str().as_bytes();
                let (account_id, created) = match accounts.get(key)? {
                    Some(v) => {
                        let account: Account =
                            decode("accounts", &v).map_err(ConflictableTransactionError::Abort)?;
                        (account.id, false)
                    }
                    None => {
                        let Some(hash) = &new.password_hash_if_new else {
                            return Err(ConflictableTransactionError::Abort(
                                StoreError::AccountVanished,
                            ));
                        };
                        let id = accounts.generate_id()?;
                        let account = Account {
                            id,
                            password_hash: hash.clone(),
                            created_at: new.now,
                        };
                        accounts.insert(key, encode(&account))?;
                        (id, true)
                    }
                };
                let session = SessionRecord {
                    account_id,
                    expires_at: new.session_expires_at,
                };
                sessions.insert(session_key.as_slice(), encode(&session))?;
                let answer = AuthAnswer {
                    account_id: account_id.to_string(),
                    created,
                    session: new.session.clone(),
                    credentials: if created {
                        new.password_if_new.clone().map(|password| Credentials {
                            login: new.msisdn.as_str().to_owned(),
                            password,
                        })
                    } else {
                        None
                    },
                };
                answers.insert(&new.request_id.to_be_bytes(), encode(&answer))?;
                Ok(answer)
            },
        )?;
        Ok(answer)
    }

    /// A returning number: no account to create, so two plain writes instead of a sled
    /// transaction (each of which writes out sled's log buffer twice, the largest cost per MO
    /// in the benchmarks). Accounts are never removed, so the one read cannot go stale. The
    /// session goes first and the answer that names it second: a crash between them leaves an
    /// unused session record that expires, never an answer whose session does not exist.
    fn log_in_existing(
        &self,
        new: &NewLogin<'_>,
        session_key: &[u8],
        account: Account,
    ) -> Result<AuthAnswer, StoreError> {
        let session = SessionRecord {
            account_id: account.id,
            expires_at: new.session_expires_at,
        };
        self.sessions.insert(session_key, encode(&session))?;
        let answer = AuthAnswer {
            account_id: account.id.to_string(),
            created: false,
            session: new.session.clone(),
            credentials: None,
        };
        self.answers
            .insert(new.request_id.to_be_bytes(), encode(&answer))?;
        Ok(answer)
    }

    /// Forgets a request's answer (and the plaintext credentials in it) once the login it
    /// served is committed.
    pub fn settle(&self, request_id: u64) -> Result<(), StoreError> {
        self.answers.remove(request_id.to_be_bytes())?;
        Ok(())
    }

    pub fn count(&self) -> usize {
        self.accounts.len()
    }
}
