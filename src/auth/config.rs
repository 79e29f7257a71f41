//! `[auth]` and `[auth.remote]`: which auth core answers logins, and how the remote one is
//! reached.
//!
//! `problems()` returns what types alone cannot say, as (key path relative to the section,
//! message) pairs; `ops::config` turns each path into the file's line and column.

use std::path::PathBuf;

use serde::Deserialize;

use crate::core::secret::Secret;

/// `[auth.argon2]`: the hash's cost and how many run at once.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Argon2Config {
    /// Memory per hash in KiB (OWASP: 19456, i.e. 19 MiB).
    #[serde(default = "default_memory_kib")]
    pub memory_kib: u32,
    /// Passes over the memory (OWASP: 2).
    #[serde(default = "default_iterations")]
    pub iterations: u32,
    /// Lanes per hash (OWASP: 1).
    #[serde(default = "default_parallelism")]
    pub parallelism: u32,
    /// Hashes computed at once, each on its own thread; 0 means one per CPU.
    #[serde(default)]
    pub threads: usize,
}

#[cfg(test)]
impl Argon2Config {
    /// The least work Argon2id takes (1 MiB, one pass, one hashing thread): for tests that
    /// need a real hash, not the cost.
    pub fn cheap() -> Argon2Config {
        Argon2Config {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
            threads: 1,
        }
    }
}

impl Default for Argon2Config {
    fn default() -> Self {
        Argon2Config {
            memory_kib: default_memory_kib(),
            iterations: default_iterations(),
            parallelism: default_parallelism(),
            threads: 0,
        }
    }
}

fn default_memory_kib() -> u32 {
    19 * 1024
}

fn default_iterations() -> u32 {
    2
}

fn default_parallelism() -> u32 {
    1
}

/// Which auth core answers logins: the embedded one, or the app's own over HTTP.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    #[serde(default)]
    pub mode: AuthMode,
    /// The embedded core's password hashes.
    #[serde(default)]
    pub argon2: Argon2Config,
    /// Required when `mode = "remote"`.
    pub remote: Option<RemoteAuthConfig>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    #[default]
    Embedded,
    Remote,
}

/// The remote auth core (protocol/auth-core.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteAuthConfig {
    pub url: String,
    /// HMAC-SHA256 key of the `Moauth-Signature` header (or `secret_file` / `secret_env`).
    pub secret: Secret,
    /// One request, connect to last byte of the answer.
    #[serde(default = "default_remote_timeout_ms")]
    pub timeout_ms: u64,
    /// Further attempts after a connect error, a timeout or a 5xx, within one try of an MO.
    #[serde(default = "default_remote_retries")]
    pub retries: u32,
    #[serde(default = "default_remote_backoff_initial_ms")]
    pub backoff_initial_ms: u64,
    #[serde(default = "default_remote_backoff_max_ms")]
    pub backoff_max_ms: u64,
    /// An MO still without an answer this long after it arrived is rejected with an apology.
    #[serde(default = "default_remote_max_wait_secs")]
    pub max_wait_secs: u64,
    /// Consecutive failed requests that open the circuit breaker.
    #[serde(default = "default_breaker_failures")]
    pub breaker_failures: u32,
    /// How long an open breaker sends nothing before one probe.
    #[serde(default = "default_breaker_open_secs")]
    pub breaker_open_secs: u64,
    /// PEM file of the CAs that sign the auth core's certificate; the Mozilla roots when absent.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Where a texted LOGOUT goes: a signed `POST {"event": "logout", "msisdn", "requested_at"}`
    /// that asks the app's core to end every session of the number. Without it LOGOUT is
    /// answered with HELP.
    #[serde(default)]
    pub logout_url: Option<String>,
}

fn default_remote_timeout_ms() -> u64 {
    5_000
}
fn default_remote_retries() -> u32 {
    2
}
fn default_remote_backoff_initial_ms() -> u64 {
    200
}
fn default_remote_backoff_max_ms() -> u64 {
    5_000
}
fn default_remote_max_wait_secs() -> u64 {
    900
}
fn default_breaker_failures() -> u32 {
    5
}
fn default_breaker_open_secs() -> u64 {
    30
}

impl AuthConfig {
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let mut at = |key: &str, message: &str| problems.push((key.into(), message.into()));
        match (self.mode, &self.remote) {
            (AuthMode::Remote, None) => at(
                "mode",
                "\"remote\" needs an [auth.remote] table with url and secret",
            ),
            (_, Some(remote)) => {
                if let Err(message) =
                    crate::signing::check_url(&remote.url, false, super::PLAIN_HTTP_REFUSED)
                {
                    at("remote.url", &message);
                }
                if let Some(url) = &remote.logout_url
                    && let Err(message) = crate::signing::check_url(
                        url,
                        false,
                        super::remote::LOGOUT_PLAIN_HTTP_REFUSED,
                    )
                {
                    at("remote.logout_url", &message);
                }
                if remote.timeout_ms == 0 {
                    at("remote.timeout_ms", "must be at least 1");
                }
                if remote.backoff_initial_ms == 0
                    || remote.backoff_initial_ms > remote.backoff_max_ms
                {
                    at(
                        "remote.backoff_initial_ms",
                        "must be at least 1 and at most backoff_max_ms",
                    );
                }
                if remote.max_wait_secs == 0 {
                    at("remote.max_wait_secs", "must be at least 1");
                }
                if remote.breaker_failures == 0 {
                    at("remote.breaker_failures", "must be at least 1");
                }
                if remote.breaker_open_secs == 0 {
                    at("remote.breaker_open_secs", "must be at least 1");
                }
                if let Some(path) = &remote.ca_file
                    && let Err(e) = crate::smpp::tls::root_store(Some(path))
                {
                    at("remote.ca_file", &e.to_string());
                }
            }
            (AuthMode::Embedded, None) => {}
        }
        // params() fails only with HashError::Params, which holds argon2's own message.
        if let Err(super::hasher::HashError::Params(e)) = super::hasher::params(&self.argon2) {
            at("argon2.memory_kib", &format!("no Argon2id cost: {e}"));
        }
        problems
    }
}
