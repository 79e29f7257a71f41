//! The default auth core: accounts in moauth's own store.
//!
//! A new number gets a random password (65 bits) stored only as an Argon2id hash. Hashing
//! costs tens of milliseconds of CPU, so it runs on the bounded pool of [`Hasher`] threads,
//! never on the runtime, and never on the login path: a new number's account is created
//! "password pending" and its session issued at once, and the [`Registrar`](super::Registrar)
//! makes, stores and texts the password beside the pipeline. Until its hash is stored no
//! password logs in to the account, after the same work as a wrong one.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::FutureExt;
use futures::future::BoxFuture;

use super::hasher::{HashError, Hasher};
use crate::core::auth::{
    AuthAnswer, AuthCore, AuthError, AuthRequest, ByNumber, Credentials, Granted, IssuedSession,
    NewSession, SessionCore, SessionInfo, SessionKey,
};
use crate::core::clock::{Clock, UnixSecs};
use crate::core::error::StoreError;
use crate::core::health::AuthCoreHealth;
use crate::core::msisdn::Msisdn;
use crate::core::store::{AccountStore, NewAccount, NewLogin};
use std::sync::Arc;
use tokio::sync::{Notify, OnceCell};

/// Password alphabet: Crockford base32 in lower case, readable and GSM-7 safe.
const PASSWORD_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
pub(super) const PASSWORD_LEN: usize = 13;

pub struct EmbeddedAuth {
    store: Arc<dyn AccountStore>,
    clock: Clock,
    session_ttl_secs: u64,
    send_credentials: bool,
    hasher: Hasher,
    /// A hash of a random password with the current parameters: what a login with an unknown
    /// number (or one whose password is pending) is checked against, so that it costs as
    /// much as a wrong password.
    dummy_hash: OnceCell<String>,
    /// Tells the registrar that an account waits for its password.
    registrations: Arc<Notify>,
}

impl EmbeddedAuth {
    pub fn new(
        store: Arc<dyn AccountStore>,
        clock: Clock,
        session_ttl_secs: u64,
        send_credentials: bool,
        hasher: Hasher,
        registrations: Arc<Notify>,
    ) -> Self {
        AuthCoreHealth::Embedded.publish();
        EmbeddedAuth {
            store,
            clock,
            session_ttl_secs,
            send_credentials,
            hasher,
            dummy_hash: OnceCell::new(),
            registrations,
        }
    }

    async fn dummy_hash(&self) -> Result<&String, AuthError> {
        self.dummy_hash
            .get_or_try_init(|| self.hasher.hash(random_password()))
            .await
            .map_err(unavailable)
    }

    async fn password_login_inner(
        &self,
        login: &str,
        password: String,
    ) -> Result<Option<IssuedSession>, AuthError> {
        let account = match Msisdn::parse(login) {
            Ok(msisdn) => self.store.account(&msisdn).await?.map(|a| (msisdn, a)),
            Err(_) => None,
        };
        // The same Argon2 work whether or not the account exists and has its password.
        let hash = account.as_ref().and_then(|(_, a)| a.password_hash.clone());
        let has_password = hash.is_some();
        let hash = match hash {
            Some(hash) => hash,
            None => self.dummy_hash().await?.clone(),
        };
        let matches = self
            .hasher
            .verify(password, hash)
            .await
            .map_err(unavailable)?
            && has_password;
        let Some((msisdn, account)) = account.filter(|_| matches) else {
            return Ok(None);
        };
        let session = random_session();
        let now = self.clock.now();
        let expires_at = now + self.session_ttl_secs;
        self.store
            .add_session(NewSession {
                account_id: account.id,
                msisdn,
                key: SessionKey::of(&session),
                issued_at: now,
                expires_at,
            })
            .await?;
        self.store.sync().await?;
        Ok(Some(IssuedSession {
            session,
            account_id: account.id,
            expires_at,
        }))
    }

    async fn login_inner(&self, request: &AuthRequest) -> Result<Granted, AuthError> {
        let stored = |answer| Granted {
            answer,
            session: None,
        };
        if let Some(answer) = self.store.auth_answer(request.request_id).await? {
            return Ok(stored(answer));
        }
        let now = self.clock.now();
        let session = random_session();
        let session_expires_at = now + self.session_ttl_secs;
        // A returning number: nothing to write here. The session is stored with the login's
        // outcome, in the pipeline's commit.
        if let Some(account) = self.store.account(&request.msisdn).await? {
            return Ok(Granted {
                session: Some(NewSession {
                    account_id: account.id,
                    msisdn: request.msisdn.clone(),
                    key: SessionKey::of(&session),
                    issued_at: now,
                    expires_at: session_expires_at,
                }),
                answer: AuthAnswer {
                    account_id: account.id.to_string(),
                    created: false,
                    session,
                    credentials: None,
                },
            });
        }
        // A new number: its account is created at once, in the store's own transaction, and
        // the answer kept, so a retry of the MO logs in to the same account. No hashing here:
        // a new account's password is the registrar's work.
        let answer = self
            .store
            .log_in(NewLogin {
                request_id: request.request_id,
                msisdn: &request.msisdn,
                new_account: NewAccount {
                    password_to: self.send_credentials.then(|| request.reply_via.clone()),
                },
                session,
                session_expires_at,
                now,
            })
            .await?;
        if answer.created && self.send_credentials {
            self.registrations.notify_one();
        }
        Ok(stored(answer))
    }
}

impl AuthCore for EmbeddedAuth {
    fn login<'a>(&'a self, request: &'a AuthRequest) -> BoxFuture<'a, Result<Granted, AuthError>> {
        self.login_inner(request).boxed()
    }

    fn settle<'a>(&'a self, request_ids: &'a [u64]) -> BoxFuture<'a, Result<(), AuthError>> {
        async move { Ok(self.store.settle_answers(request_ids).await?) }.boxed()
    }

    fn knows<'a>(&'a self, msisdn: &'a Msisdn) -> BoxFuture<'a, Result<Option<bool>, AuthError>> {
        async move { Ok(Some(self.store.account(msisdn).await?.is_some())) }.boxed()
    }

    fn health(&self) -> AuthCoreHealth {
        AuthCoreHealth::Embedded
    }

    /// Only the store can fail here, and an MO waits for the store however long it takes.
    fn max_wait_secs(&self) -> Option<u64> {
        None
    }

    /// The new hash is stored before the SMS is queued; a crash between them leaves the MO in
    /// the inbox, and its retry makes (and texts) yet another password.
    fn reset_password<'a>(
        &'a self,
        msisdn: &'a Msisdn,
    ) -> BoxFuture<'a, Result<ByNumber<Credentials>, AuthError>> {
        async move {
            if self.store.account(msisdn).await?.is_none() {
                return Ok(ByNumber::NoAccount);
            }
            let password = random_password();
            let hash = self
                .hasher
                .hash(password.clone())
                .await
                .map_err(unavailable)?;
            if !self.store.set_password(msisdn, hash).await? {
                return Ok(ByNumber::NoAccount);
            }
            Ok(ByNumber::Done(Credentials {
                login: msisdn.as_str().to_owned(),
                password,
            }))
        }
        .boxed()
    }

    fn log_out<'a>(&'a self, msisdn: &'a Msisdn) -> BoxFuture<'a, Result<ByNumber<()>, AuthError>> {
        async move {
            let Some(account) = self.store.account(msisdn).await? else {
                return Ok(ByNumber::NoAccount);
            };
            let ended = self.store.revoke_sessions(account.id).await?;
            tracing::info!(
                account_id = account.id,
                sessions = ended,
                "LOGOUT: sessions ended"
            );
            Ok(ByNumber::Done(()))
        }
        .boxed()
    }

    fn sweep(&self, now: UnixSecs) -> BoxFuture<'_, Result<usize, AuthError>> {
        async move { Ok(self.store.sweep_sessions(now).await?) }.boxed()
    }
}

impl SessionCore for EmbeddedAuth {
    fn introspect<'a>(
        &'a self,
        session: &'a str,
    ) -> BoxFuture<'a, Result<Option<SessionInfo>, StoreError>> {
        async move {
            let found = self.store.session(&SessionKey::of(session)).await?;
            Ok(found.filter(|s| s.expires_at > self.clock.now()))
        }
        .boxed()
    }

    fn revoke<'a>(&'a self, session: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        async move {
            self.store.revoke_session(&SessionKey::of(session)).await?;
            self.store.sync().await
        }
        .boxed()
    }

    fn revoke_account(&self, account_id: u64) -> BoxFuture<'_, Result<usize, StoreError>> {
        async move {
            let revoked = self.store.revoke_sessions(account_id).await?;
            self.store.sync().await?;
            Ok(revoked)
        }
        .boxed()
    }

    fn password_login<'a>(
        &'a self,
        login: &'a str,
        password: String,
    ) -> BoxFuture<'a, Result<Option<IssuedSession>, AuthError>> {
        self.password_login_inner(login, password).boxed()
    }
}

/// A hashing failure as the auth core reports it. A helper, not `From`: AuthError lives in
/// core, which knows nothing of auth's hasher.
fn unavailable(error: HashError) -> AuthError {
    AuthError::Unavailable(error.to_string())
}

pub(super) fn random_password() -> String {
    let mut bytes = [0u8; PASSWORD_LEN];
    rand::fill(&mut bytes);
    bytes
        .iter()
        .map(|b| PASSWORD_ALPHABET[usize::from(b % 32)] as char)
        .collect()
}

/// 256 random bits, base64url: opaque to everyone but this core.
fn random_session() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::auth::config::Argon2Config;
    use crate::core::outbound::SmsRoute;
    use crate::core::store::PasswordStore;
    use crate::core::token::{Token, Verifier};
    use crate::store::sled::SledStore;

    fn auth(store: Arc<SledStore>) -> EmbeddedAuth {
        let hasher = Hasher::start(&Argon2Config::default()).unwrap();
        EmbeddedAuth::new(
            store,
            Clock::manual(1_700_000_000),
            60,
            true,
            hasher,
            Arc::new(Notify::new()),
        )
    }

    pub(in crate::auth) fn request(id: u64, number: &str) -> AuthRequest {
        AuthRequest {
            request_id: id,
            msisdn: Msisdn::parse(number).unwrap(),
            token: Token::for_verifier(&Verifier::random(), 1_700_000_000),
            received_at: 1_700_000_000,
            reply_via: SmsRoute {
                smsc: "sim".into(),
                from: "10690000".into(),
            },
            may_create: true,
        }
    }

    #[tokio::test]
    async fn new_number_gets_its_account_and_session_before_any_password() {
        let store = Arc::new(SledStore::temporary().unwrap());
        let auth = auth(store.clone());
        let number = Msisdn::parse("+8613800138000").unwrap();
        let granted = auth.login(&request(1, "+8613800138000")).await.unwrap();
        assert!(granted.session.is_none(), "stored with the new account");
        let answer = granted.answer;
        assert!(answer.created);
        assert!(answer.credentials.is_none(), "texted once hashed, not here");
        let account = store.account(&number).await.unwrap().unwrap();
        assert_eq!(account.password_hash, None);
        let pending = store.pending_passwords(&|_| false, 10).await.unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(
            (&pending[0].msisdn, pending[0].to.smsc.as_str()),
            (&number, "sim")
        );
        // Until the hash is stored, no password logs in: not even an empty one.
        for guess in ["", "0123456789abc"] {
            let session = auth.password_login(number.as_str(), guess.into()).await;
            assert!(session.unwrap().is_none());
        }
    }

    #[tokio::test]
    async fn returning_number_keeps_account_and_gets_no_credentials() {
        let store = Arc::new(SledStore::temporary().unwrap());
        let auth = auth(store.clone());
        let first = auth.login(&request(1, "+8613800138000")).await.unwrap();
        let second = auth.login(&request(2, "+8613800138000")).await.unwrap();
        // The returning login's session is left to the pipeline's commit, not stored here.
        let unstored = second.session.expect("left to the pipeline's commit");
        let key = SessionKey::of(&second.answer.session);
        assert_eq!(unstored.key, key);
        assert!(store.session(&key).await.unwrap().is_none());
        assert!(store.auth_answer(2).await.unwrap().is_none());
        let (first, second) = (first.answer, second.answer);
        assert_eq!(first.account_id, second.account_id);
        assert_eq!(unstored.account_id.to_string(), second.account_id);
        assert!(!second.created && second.credentials.is_none());
        assert_ne!(first.session, second.session);
        assert_eq!(
            store.pending_passwords(&|_| false, 10).await.unwrap().len(),
            1
        );
    }

    #[tokio::test]
    async fn retried_request_gets_the_same_answer_until_settled() {
        let store = Arc::new(SledStore::temporary().unwrap());
        let auth = auth(store);
        let first = auth.login(&request(7, "+8613800138000")).await.unwrap();
        let again = auth.login(&request(7, "+8613800138000")).await.unwrap();
        assert_eq!(first.answer, again.answer);
        auth.settle(&[7]).await.unwrap();
        let after = auth.login(&request(7, "+8613800138000")).await.unwrap();
        assert!(!after.answer.created);
    }
}
