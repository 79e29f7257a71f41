//! `[[webhooks]]`: one backend's webhook per entry.
//!
//! `problems()` returns what types alone cannot say, as (key path relative to the section,
//! message) pairs; `ops::config` turns each path into the file's line and column.

use serde::Deserialize;

use crate::core::secret::Secret;

/// A backend's webhook: where the events of the logins it minted are POSTed
/// (protocol/webhooks.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The `name` of the `[[http.api_keys]]` entry whose logins this webhook receives.
    pub backend: String,
    /// An `https://` URL; `http://` only to a loopback address or with `allow_plain_http`.
    pub url: String,
    /// Signs every call (protocol/signing.md); also `secret_file` / `secret_env`.
    pub secret: Secret,
    /// The operator's explicit choice to send events, sessions included, over plain http://
    /// to a host that is not loopback (e.g. a private network they trust).
    #[serde(default)]
    pub allow_plain_http: bool,
}

/// Why plain `http://` is refused for a webhook beyond loopback.
const WEBHOOK_PLAIN_HTTP: &str =
    "a `complete` event carries the session; set allow_plain_http = true to accept that";

impl WebhookConfig {
    /// `backends` are the names of the `[[http.api_keys]]` entries; `earlier` the webhooks
    /// above this one in the file.
    pub fn problems<'a>(
        &self,
        backends: &[&str],
        mut earlier: impl Iterator<Item = &'a WebhookConfig>,
    ) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let backend = &self.backend;
        if !backends.contains(&backend.as_str()) {
            problems.push((
                "backend".into(),
                format!("{backend:?} is not the name of an [[http.api_keys]] entry"),
            ));
        } else if earlier.any(|h| &h.backend == backend) {
            problems.push((
                "backend".into(),
                format!("{backend:?} has a webhook already"),
            ));
        }
        if let Err(message) =
            crate::signing::check_url(&self.url, self.allow_plain_http, WEBHOOK_PLAIN_HTTP)
        {
            problems.push(("url".into(), message));
        }
        problems
    }
}
