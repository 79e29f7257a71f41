//! `[http]`: where the API and the operators' routes listen, and the backends' API keys.
//!
//! `problems()` returns what types alone cannot say, as (key path relative to the section,
//! message) pairs; `ops::config` turns each path into the file's line and column.

use std::net::SocketAddr;

use ipnet::IpNet;
use serde::Deserialize;

use crate::core::secret::Secret;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Where `/metrics` and `/status` are served instead of `listen`, so that the API can face
    /// apps while operators' routes stay on a private address. None: both on `listen`.
    #[serde(default)]
    pub admin_listen: Option<SocketAddr>,
    /// The bearer key of the operators' commands (`/admin/…`, `moauth accounts …`): they read
    /// and erase any number's data, so a process that can merely reach the admin address must
    /// not be able to use them. Unset: the commands are refused.
    #[serde(default)]
    pub admin_key: Option<Secret>,
    /// Enables `GET /v1/logins/{token}` for backends holding one of these keys.
    #[serde(default)]
    pub api_keys: Vec<ApiKey>,
    /// Open HTTP connections at most; lowered at start to leave descriptors for the rest of
    /// the daemon under the open-file limit (`http::serve`).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// A request's head must arrive within this (a new or a kept-alive connection alike).
    #[serde(default = "default_header_read_timeout_secs")]
    pub header_read_timeout_secs: u64,
    /// A kept-alive connection with no request is closed this long after its last answer.
    #[serde(default = "default_idle_timeout_secs")]
    pub idle_timeout_secs: u64,
    /// Serves the login page at `/login` (`http::page`); `/moauth.js` is always served.
    #[serde(default)]
    pub login_page: bool,
    /// Reverse proxies whose `Forwarded` / `X-Forwarded-For` name the client for the
    /// per-client limits (`http::client`); from any other peer the headers are ignored.
    #[serde(default)]
    pub trusted_proxies: Vec<IpNet>,
    /// Browser origins (`https://shop.example`) allowed to call the login routes across
    /// origins (`http::cors`); none by default.
    #[serde(default)]
    pub cors_origins: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: default_listen(),
            admin_listen: None,
            admin_key: None,
            api_keys: Vec::new(),
            max_connections: default_max_connections(),
            header_read_timeout_secs: default_header_read_timeout_secs(),
            idle_timeout_secs: default_idle_timeout_secs(),
            login_page: false,
            trusted_proxies: Vec::new(),
            cors_origins: Vec::new(),
        }
    }
}

fn default_max_connections() -> usize {
    1024
}

fn default_header_read_timeout_secs() -> u64 {
    10
}

fn default_idle_timeout_secs() -> u64 {
    5
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
        if self
            .admin_listen
            .is_some_and(|admin| admin == self.listen && admin.port() != 0)
        {
            problems.push((
                "admin_listen".into(),
                "must differ from listen (leave it out to serve /metrics and /status on listen)"
                    .into(),
            ));
        }
        for (key, value) in [
            ("max_connections", self.max_connections as u64),
            ("header_read_timeout_secs", self.header_read_timeout_secs),
            ("idle_timeout_secs", self.idle_timeout_secs),
        ] {
            if value == 0 {
                problems.push((key.into(), "must be at least 1".into()));
            }
        }
        for (i, origin) in self.cors_origins.iter().enumerate() {
            if !is_origin(origin) {
                problems.push((
                    format!("cors_origins.{i}"),
                    format!("{origin:?} is not an origin: scheme://host[:port], no path, no \"*\""),
                ));
            }
        }
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

/// `https://shop.example` or `http://localhost:3000`: what a browser sends as `Origin`.
fn is_origin(origin: &str) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    matches!(scheme, "http" | "https")
        && !rest.is_empty()
        && !rest.contains(['/', '*', '?', '#', ' ', '@'])
        && axum::http::HeaderValue::from_str(origin).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cors_origins_are_exact_origins() {
        for good in [
            "https://shop.example",
            "http://localhost:3000",
            "https://[::1]:8443",
        ] {
            assert!(is_origin(good), "{good}");
        }
        for bad in [
            "*",
            "shop.example",
            "https://shop.example/",
            "https://*.example",
            "ftp://x",
        ] {
            assert!(!is_origin(bad), "{bad}");
        }
        let config = HttpConfig {
            cors_origins: vec!["https://ok.example".into(), "*".into()],
            ..HttpConfig::default()
        };
        let problems = config.problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].0, "cors_origins.1");
    }
}
