//! The PostgreSQL store: several moauth nodes on one database, any node able to finish any
//! node's work.
//!
//! Built on tokio-postgres with a deadpool-postgres pool: plain SQL at run time, no
//! compile-time database access (sqlx's checked queries need a database or a cached schema at
//! build time) and about a third of sqlx's dependency tree. LISTEN/NOTIFY needs a connection
//! whose messages we read ourselves, which tokio-postgres offers directly.
//!
//! Every connection carries a statement timeout, so a database that hangs (a failover in
//! progress, a lock held too long) turns into an error the caller can answer — a temporary
//! SMPP status, a failing `/readyz` — instead of a task stuck forever.

pub mod migrate;

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use thiserror::Error;
use tokio_postgres::NoTls;

pub use migrate::{MIGRATIONS, Migrated, migrate};

#[derive(Debug, Error)]
pub enum PostgresError {
    /// Connection lost, statement timed out, constraint violated: the operation did not
    /// happen (or, for a lost connection during COMMIT, may have: callers that acknowledge
    /// only after a successful commit stay correct either way).
    #[error("postgres: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("postgres: no connection from the pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// The URL does not parse; the URL itself is not repeated (it may hold a password).
    #[error("postgres: the store url is not a valid connection string: {0}")]
    Url(tokio_postgres::Error),
    #[error("postgres: {0}")]
    Build(#[from] deadpool_postgres::BuildError),
    #[error("postgres: migration {version} ({name}) failed: {source}")]
    Migration {
        version: i32,
        name: &'static str,
        source: tokio_postgres::Error,
    },
    #[error(
        "postgres: migration {version} ({name}) was applied with other contents than this \
         build's; the schema was changed outside moauth's migrations"
    )]
    MigrationChanged { version: i32, name: &'static str },
}

/// How to reach the database. The URL may hold a password: no Debug output.
#[derive(Clone)]
pub struct Connection {
    /// A libpq-style URL or key=value string, e.g. `postgres://moauth@db/moauth`.
    pub url: String,
    pub pool_size: usize,
    pub statement_timeout: Duration,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("pool_size", &self.pool_size)
            .field("statement_timeout", &self.statement_timeout)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// The parsed URL with moauth's session settings added.
    pub fn config(&self) -> Result<tokio_postgres::Config, PostgresError> {
        let mut config: tokio_postgres::Config = self.url.parse().map_err(PostgresError::Url)?;
        config.application_name("moauth");
        config.options(format!(
            "-c statement_timeout={}",
            self.statement_timeout.as_millis()
        ));
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(self.statement_timeout);
        }
        Ok(config)
    }

    /// A pool of up to `pool_size` connections, opened lazily: building it does not touch
    /// the database.
    pub fn pool(&self) -> Result<Pool, PostgresError> {
        let manager = Manager::from_config(
            self.config()?,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        Ok(Pool::builder(manager)
            .max_size(self.pool_size)
            .wait_timeout(Some(self.statement_timeout))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()?)
    }
}
