//! `[[webhooks]]`: one backend's webhook per entry.
//!
//! `problems()` returns what types alone cannot say, as (key path relative to the section,
//! message) pairs; `ops::config` turns each path into the file's line and column.

use serde::Deserialize;

/// A backend's webhook: where the events of the logins it minted are POSTed
/// (protocol/webhooks.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The `name` of the `[[http.api_keys]]` entry whose logins this webhook receives.
    pub backend: String,
    /// An `http://` or `https://` URL.
    pub url: String,
    /// Signs every call (protocol/signing.md); also `secret_file` / `secret_env`.
    pub secret: String,
}

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
        let scheme_ok = reqwest::Url::parse(&self.url)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
        if !scheme_ok {
            problems.push(("url".into(), "must be an http:// or https:// URL".into()));
        }
        problems
    }
}
