//! `[http]`: where the API listens and the backends' API keys.
//!
//! `problems()` returns what types alone cannot say, as (key path relative to the section,
//! message) pairs; `ops::config` turns each path into the file's line and column.

use std::net::SocketAddr;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Enables `GET /v1/logins/{token}` for backends holding one of these keys.
    #[serde(default)]
    pub api_keys: Vec<ApiKey>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: default_listen(),
            api_keys: Vec::new(),
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    pub name: String,
    /// Hex SHA-256 of the key, so the file never holds the key itself.
    pub sha256: String,
}

impl HttpConfig {
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        for (i, key) in self.api_keys.iter().enumerate() {
            if key.sha256.len() != 64 || !key.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                problems.push((
                    format!("api_keys.{i}.sha256"),
                    "must be 64 hex digits".into(),
                ));
            }
            // Logs and webhooks name the backend by it.
            if key.name.trim().is_empty() || self.api_keys[..i].iter().any(|k| k.name == key.name) {
                problems.push((
                    format!("api_keys.{i}.name"),
                    format!("{:?}: names must be non-empty and unique", key.name),
                ));
            }
        }
        problems
    }
}
