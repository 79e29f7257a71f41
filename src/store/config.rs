//! `[store]`: which backend keeps moauth's state, a tagged choice on `backend`.
//!
//! `backend = "sled"` (the default when the key is absent) is the embedded store in one
//! directory; `backend = "postgres"` is the shared database of several nodes, whose
//! connection URL is a secret (`url`, `url_file` or `url_env`). The loader reads the tag and
//! types the rest of the table as that backend's struct, so every key keeps its exact span.
//!
//! `problems()` returns what types alone cannot say, as (key path relative to the section,
//! message) pairs; `ops::config` turns each path into the file's line and column.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::postgres::Connection;
use crate::core::secret::Secret;

#[derive(Debug, Clone)]
pub enum StoreConfig {
    Sled(SledConfig),
    Postgres(PostgresConfig),
}

impl StoreConfig {
    /// The key that picks the variant, and the variant it picks when absent.
    pub const TAG: &'static str = "backend";
    pub const DEFAULT_BACKEND: &'static str = "sled";
    pub const BACKENDS: &'static [&'static str] = &["sled", "postgres"];

    /// The backend's name, as `backend` spells it.
    pub fn backend(&self) -> &'static str {
        match self {
            StoreConfig::Sled(_) => "sled",
            StoreConfig::Postgres(_) => "postgres",
        }
    }

    pub fn problems(&self) -> Vec<(String, String)> {
        match self {
            StoreConfig::Sled(sled) => sled.problems(),
            StoreConfig::Postgres(postgres) => postgres.problems(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SledConfig {
    /// The store's directory; one process at a time holds it.
    pub path: PathBuf,
    #[serde(default = "default_cache_mb")]
    pub cache_capacity_mb: u64,
}

impl SledConfig {
    pub fn new(path: PathBuf) -> SledConfig {
        SledConfig {
            path,
            cache_capacity_mb: default_cache_mb(),
        }
    }

    fn problems(&self) -> Vec<(String, String)> {
        if self.path.as_os_str().is_empty() {
            vec![("path".into(), "must name a directory".into())]
        } else {
            Vec::new()
        }
    }
}

fn default_cache_mb() -> u64 {
    64
}

/// The shared database. The URL may hold a password: a [`Secret`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// A libpq URL (`postgres://moauth@db/moauth`) or key=value string.
    pub url: Secret,
    /// Connections this node keeps open at most.
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// Longest a statement (and a wait for a pooled connection) may take.
    #[serde(default = "default_statement_timeout_ms")]
    pub statement_timeout_ms: u64,
    /// This node's name in the database's lease columns; by default `HOST-PID`, so that two
    /// processes never share one (each would take the other's claims for its own).
    #[serde(default)]
    pub node: Option<String>,
    /// How long a claim on inbox, outbox or webhook work lasts: after a node dies, the others
    /// finish its work this long after its last claim.
    #[serde(default = "default_lease_secs")]
    pub lease_secs: u64,
}

impl PostgresConfig {
    fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let url = self.url.expose().trim();
        let libpq = url.starts_with("postgres://")
            || url.starts_with("postgresql://")
            || (!url.contains("://") && url.contains('='));
        if !libpq {
            // The URL itself may hold a password: the message does not repeat it.
            problems.push((
                "url".into(),
                "must be a postgres:// URL or a key=value connection string".into(),
            ));
        }
        if self.pool_size == 0 {
            problems.push(("pool_size".into(), "must be at least 1".into()));
        }
        if self.statement_timeout_ms == 0 {
            problems.push(("statement_timeout_ms".into(), "must be at least 1".into()));
        }
        if self.lease_secs == 0 {
            problems.push(("lease_secs".into(), "must be at least 1".into()));
        }
        if self.node.as_deref().is_some_and(|n| n.trim().is_empty()) {
            problems.push(("node".into(), "must not be empty".into()));
        }
        problems
    }

    /// How this node reaches the database.
    pub fn connection(&self) -> Connection {
        Connection {
            url: self.url.expose().to_owned(),
            pool_size: self.pool_size,
            statement_timeout: Duration::from_millis(self.statement_timeout_ms),
        }
    }

    /// The node name to use: the configured one, else `HOST-PID`.
    pub fn node_name(&self) -> String {
        self.node.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "moauth".into());
            format!("{host}-{}", std::process::id())
        })
    }
}

fn default_pool_size() -> usize {
    16
}
fn default_statement_timeout_ms() -> u64 {
    5_000
}
fn default_lease_secs() -> u64 {
    30
}
