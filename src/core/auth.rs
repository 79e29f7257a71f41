//! The auth core's interface: who owns accounts and sessions.
//!
//! The login pipeline asks one question, "log this verified number in", through [`AuthCore`];
//! the embedded core answers from the store, a remote one (the app's own account system) over
//! HTTP. Both deduplicate by request id, so a retried MO never creates a second account and a
//! lost answer can be asked for again.

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::core::clock::UnixSecs;
use crate::core::error::StoreError;
use crate::core::health::AuthCoreHealth;
use crate::core::msisdn::Msisdn;
use crate::core::outbound::SmsRoute;
use crate::core::token::Token;

/// One verified login attempt: the number proven by the SMS path and the token it carried.
#[derive(Debug, Clone)]
pub struct AuthRequest {
    /// The inbox id of the MO: stable across retries.
    pub request_id: u64,
    pub msisdn: Msisdn,
    pub token: Token,
    pub received_at: UnixSecs,
    /// Where an SMS for this number goes (a new account's credentials).
    pub reply_via: SmsRoute,
    /// False when the number's prefix is past its new-account limit: log the number in only
    /// if it has an account (a remote core is told so; the embedded one is asked first).
    pub may_create: bool,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthAnswer {
    pub account_id: String,
    pub created: bool,
    /// Opaque session handed to the app; a secret.
    pub session: String,
    /// Sent to the user by SMS once, when the auth core asks for it; a secret.
    pub credentials: Option<Credentials>,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    pub login: String,
    pub password: String,
}

impl std::fmt::Debug for AuthAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthAnswer")
            .field("account_id", &self.account_id)
            .field("created", &self.created)
            .field("credentials", &self.credentials.is_some())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Error)]
pub enum AuthError {
    /// Final: the login is rejected.
    #[error("auth core refused: {0}")]
    Refused(String),
    /// Temporary: the MO stays in the inbox and is tried again.
    #[error("auth core unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A login the auth core granted.
#[derive(Debug)]
pub struct Granted {
    pub answer: AuthAnswer,
    /// A session the core issued and left unstored, for a core whose sessions live in
    /// moauth's own store: the pipeline stores it with the login's outcome, in the round's one
    /// commit. A crash then keeps both or neither, so no answer is kept for the MO's retry
    /// (and none is left to [`AuthCore::settle`]), and a round pays for one transaction
    /// instead of one per login.
    pub session: Option<NewSession>,
}

pub trait AuthCore: Send + Sync {
    fn login<'a>(&'a self, request: &'a AuthRequest) -> BoxFuture<'a, Result<Granted, AuthError>>;

    /// The logins that used `request_ids` (a round's) are committed: their answers need not
    /// be kept.
    fn settle<'a>(&'a self, request_ids: &'a [u64]) -> BoxFuture<'a, Result<(), AuthError>>;

    /// Whether `msisdn` has an account already, for the new-accounts limit; None when this
    /// core cannot tell without a login (then the login is made with `may_create` false).
    fn knows<'a>(&'a self, _msisdn: &'a Msisdn) -> BoxFuture<'a, Result<Option<bool>, AuthError>> {
        Box::pin(futures::future::ready(Ok(None)))
    }
    /// What `/readyz` reports.
    fn health(&self) -> AuthCoreHealth;

    /// How long an MO may wait for this core before it is rejected with an apology; None
    /// waits for as long as it takes.
    fn max_wait_secs(&self) -> Option<u64>;

    /// PASSWORD from `msisdn`: a new password replaces the account's, to be texted to it.
    fn reset_password<'a>(
        &'a self,
        _msisdn: &'a Msisdn,
    ) -> BoxFuture<'a, Result<ByNumber<Credentials>, AuthError>> {
        Box::pin(futures::future::ready(Ok(ByNumber::NotSupported)))
    }

    /// LOGOUT from `msisdn`: every session of its account ends.
    fn log_out<'a>(
        &'a self,
        _msisdn: &'a Msisdn,
    ) -> BoxFuture<'a, Result<ByNumber<()>, AuthError>> {
        Box::pin(futures::future::ready(Ok(ByNumber::NotSupported)))
    }

    /// Removes what expired by `now` (the embedded core's sessions); run by the pipeline's
    /// periodic sweep. Returns how many went.
    fn sweep(&self, _now: UnixSecs) -> BoxFuture<'_, Result<usize, AuthError>> {
        Box::pin(futures::future::ready(Ok(0)))
    }
}

/// What a command texted from a number did to its account.
#[derive(Debug, PartialEq, Eq)]
pub enum ByNumber<T> {
    Done(T),
    /// The number has no account.
    NoAccount,
    /// This auth core does not do that (a remote core that was given no URL for it).
    NotSupported,
}

/// What the store keeps of a session: SHA-256 of its value. The value itself is a bearer
/// secret; its hash is useless to whoever copies the store.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionKey(pub [u8; 32]);

impl SessionKey {
    pub fn of(session: &str) -> SessionKey {
        SessionKey(Sha256::digest(session.as_bytes()).into())
    }
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

/// A session of the embedded auth core to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    pub account_id: u64,
    pub msisdn: Msisdn,
    pub key: SessionKey,
    pub issued_at: UnixSecs,
    pub expires_at: UnixSecs,
}

/// A session of the embedded auth core as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub account_id: u64,
    /// The account's number; None for a session stored before sessions named it.
    pub msisdn: Option<Msisdn>,
    /// None for a session stored before sessions kept it.
    pub issued_at: Option<UnixSecs>,
    pub expires_at: UnixSecs,
}

/// An account of the embedded auth core, keyed by its E.164 number (the login ID).
#[derive(Clone, Serialize, Deserialize)]
pub struct Account {
    pub id: u64,
    /// Argon2id PHC string; the password itself is never stored. None while a new account's
    /// password is being made (see [`PasswordStore`](crate::core::store::PasswordStore)), or
    /// when it was never to be sent: no password logs in then.
    pub password_hash: Option<String>,
    pub created_at: UnixSecs,
}

/// A session a password login made.
#[derive(Clone)]
pub struct IssuedSession {
    /// The bearer secret itself; only its hash is stored.
    pub session: String,
    pub account_id: u64,
    pub expires_at: UnixSecs,
}

/// The embedded auth core's sessions and passwords as app backends use them over HTTP
/// (introspect, revoke, password login). A remote auth core keeps its own.
pub trait SessionCore: Send + Sync {
    /// The live session of this value; None for unknown, revoked and expired alike.
    fn introspect<'a>(
        &'a self,
        session: &'a str,
    ) -> BoxFuture<'a, Result<Option<SessionInfo>, StoreError>>;

    /// Ends the session if it exists. Durable when it resolves.
    fn revoke<'a>(&'a self, session: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Ends every session of the account; returns how many. Durable when it resolves.
    fn revoke_account(&self, account_id: u64) -> BoxFuture<'_, Result<usize, StoreError>>;

    /// A new session if `password` is the account's; None for a wrong password and an
    /// unknown login alike, after the same work. Durable when it resolves.
    fn password_login<'a>(
        &'a self,
        login: &'a str,
        password: String,
    ) -> BoxFuture<'a, Result<Option<IssuedSession>, AuthError>>;
}
