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

mod accounts;
mod budget;
mod export;
mod inbox;
mod listen;
mod logins;
pub mod migrate;
mod minted;
mod node;
mod outcomes;
mod parts;
mod passwords;
mod queues;
mod rows;
mod sweep;
mod traits;

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use thiserror::Error;
use tokio_postgres::NoTls;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::core::error::StoreError;
use crate::core::notify::LoginNotifier;
use listen::Wake;
use node::Signals;

pub use export::{PgImport, export};
pub use migrate::{MIGRATIONS, Migrated, migrate};

pub use sweep::SWEEP_LOCK;

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
    #[error("postgres: could not LISTEN for other nodes' commits in time")]
    NotListening,
    /// A row moauth cannot read back (written by something else, or a newer build).
    #[error("postgres: unreadable row in {table}: {what}")]
    Corrupt { table: &'static str, what: String },
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

/// One node's handle on the shared database; cheap to clone. Dropping the last clone stops
/// its listening connection and its depth refresh.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// This node's name in lease columns, so an operator can see who holds what.
    node: String,
    /// How long a claim on inbox, outbox or webhook work lasts unless finished or renewed.
    lease: Duration,
    signals: Arc<Signals>,
    logins: LoginNotifier,
    _stop: Arc<DropGuard>,
}

impl PgStore {
    /// Opens the pool, brings the schema up to date (see [`migrate`]) and starts listening
    /// for other nodes' commits. Fails if the database cannot be reached now.
    pub async fn open(
        connection: &Connection,
        node: &str,
        lease: Duration,
    ) -> Result<PgStore, PostgresError> {
        let pool = connection.pool()?;
        let mut client = pool.get().await?;
        let migrated = migrate(&mut client).await?;
        drop(client);
        if migrated.ahead {
            tracing::warn!(
                version = migrated.version,
                "postgres: the schema is newer than this build knows; running on it"
            );
        }
        let stop = CancellationToken::new();
        let signals = Arc::new(Signals::default());
        let logins = LoginNotifier::default();
        let wake = {
            let (signals, logins) = (signals.clone(), logins.clone());
            Arc::new(move |w: Wake| {
                signals.wake(&w, |challenge| match challenge {
                    Some(c) => logins.notify(c),
                    None => logins.notify_all(),
                })
            })
        };
        let mut listening = listen::spawn(connection.config()?, wake, stop.clone());
        // Serve only once other nodes' commits reach this one: a poll answered before then
        // could wait out its whole wait_ms for a change that already happened.
        tokio::time::timeout(connection.statement_timeout, listening.wait_for(|l| *l))
            .await
            .map_err(|_| PostgresError::NotListening)?
            .map_err(|_| PostgresError::NotListening)?;
        signals.refresh(&pool).await;
        node::spawn_refresh(pool.clone(), signals.clone(), stop.clone());
        Ok(PgStore {
            pool,
            node: node.to_owned(),
            lease,
            signals,
            logins,
            _stop: Arc::new(stop.drop_guard()),
        })
    }
}

impl From<PostgresError> for StoreError {
    fn from(e: PostgresError) -> StoreError {
        match e {
            PostgresError::Corrupt { table, what } => StoreError::Corrupt {
                tree: table,
                message: what,
            },
            other => StoreError::Backend(other.to_string()),
        }
    }
}
