//! Server-minted logins (`POST /v1/logins`), for apps that would rather not make tokens.
//!
//! moauth makes the verifier, the token and the `sms:` URI exactly as `moauth token` and an
//! app do ([`LoginStart`]), and remembers which backend asked, so the login's terminal state
//! can go to that backend's webhook. From the SMS on, a minted login is an ordinary one: the
//! same pipeline, the same poll.

use serde::Serialize;

use crate::core::clock::{Clock, UnixSecs};
use crate::core::decide::Window;
use crate::core::error::StoreError;
use crate::core::live::Live;
use crate::core::login::MintedLogin;
use crate::core::store::MintStore;
use crate::core::token::LoginStart;
use std::sync::Arc;

#[derive(Clone)]
pub struct Minter {
    pub store: Arc<dyn MintStore>,
    pub clock: Clock,
    /// Reloadable (SIGHUP), like the pipeline's.
    pub window: Live<Window>,
    pub keywords: Live<Vec<String>>,
    /// The app's name (`[templates] app`), after the token in the SMS body (login-jacking).
    pub app: Live<String>,
    /// The number the SMS goes to: the first `[[smsc]]`'s short code.
    pub short_code: String,
}

/// The answer of `POST /v1/logins`. It holds the verifier, so it has no `Debug`.
#[derive(Serialize)]
pub struct MintAnswer {
    pub verifier: String,
    pub token: String,
    pub sms_uri: String,
    pub expires_at: UnixSecs,
}

impl Minter {
    /// A fresh login for `backend`, durable when this returns.
    pub async fn mint(&self, backend: &str) -> Result<MintAnswer, StoreError> {
        let now = self.clock.now();
        let keyword = self.keywords.load().first().cloned().unwrap_or_default();
        let start = LoginStart::new(now, &self.short_code, &keyword, &self.app.load());
        let window = self.window.load();
        let expires_at = window.expires_at(&start.token);
        // Durable when minted: the answer lets the SMS be sent, and the login's owner must
        // be on disk before it can.
        self.store
            .mint(
                &start.token.challenge(),
                &MintedLogin {
                    backend: backend.to_owned(),
                    issued_at: start.token.issued_at(),
                    expires_at,
                    keep_until: expires_at + window.result_ttl_secs,
                },
            )
            .await?;
        Ok(MintAnswer {
            verifier: start.verifier.to_base64url(),
            token: start.token.to_string(),
            sms_uri: start.sms_uri,
            expires_at,
        })
    }
}
