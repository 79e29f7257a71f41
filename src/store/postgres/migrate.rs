//! Versioned schema migrations, applied at start and by `moauth store migrate`.
//!
//! Each migration is an SQL file compiled into the binary and applied once, in order, inside
//! one transaction with the others that are due: PostgreSQL's DDL is transactional, so a
//! failed migration leaves the schema as it was. Several nodes start at once in a rolling
//! deploy; an advisory lock held for that transaction makes them take turns, so the second
//! finds the work done instead of racing the first. (A migration crate such as refinery takes
//! no such lock, which is why this is a few lines of our own.)
//!
//! A migration's SHA-256 is recorded with it: a file edited after it was applied somewhere is
//! refused, loudly, rather than leaving that database on a schema no build describes.
//! Migrations are additive, so a node of the previous release keeps working on a schema one
//! step newer than it knows (a rolling deploy, or a rollback): that is reported, not refused.

use sha2::{Digest, Sha256};
use tokio_postgres::Client;

use super::PostgresError;

/// One schema step.
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration this build knows, oldest first; versions are consecutive from 1.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("migrations/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "auth answers",
        sql: include_str!("migrations/0002_auth_answers.sql"),
    },
    Migration {
        version: 3,
        name: "sessions",
        sql: include_str!("migrations/0003_sessions.sql"),
    },
    Migration {
        version: 4,
        name: "opt-outs",
        sql: include_str!("migrations/0004_opt_outs.sql"),
    },
    Migration {
        version: 5,
        name: "sms budget",
        sql: include_str!("migrations/0005_sms_budget.sql"),
    },
    Migration {
        version: 6,
        name: "password pending",
        sql: include_str!("migrations/0006_password_pending.sql"),
    },
];

/// The advisory lock key migrations take: "moauth" in ASCII, so it is recognisable in
/// `pg_locks` and unlikely to collide with another application's.
const MIGRATION_LOCK: i64 = 0x6d6f_6175_7468;

/// What [`migrate`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// The versions this call applied, oldest first (empty when the schema was current).
    pub applied: Vec<i32>,
    /// The database's schema version afterwards.
    pub version: i32,
    /// Whether the database is newer than this build (a rollback or a rolling deploy).
    pub ahead: bool,
}

/// Brings the schema up to this build's newest version.
pub async fn migrate(client: &mut Client) -> Result<Migrated, PostgresError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS moauth_migrations (
             version    integer     PRIMARY KEY,
             name       text        NOT NULL,
             sha256     bytea       NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let recorded = tx
        .query("SELECT version, sha256 FROM moauth_migrations", &[])
        .await?;
    let mut newest = 0;
    let mut known = Vec::new();
    for row in &recorded {
        let version: i32 = row.get(0);
        let sha256: Vec<u8> = row.get(1);
        newest = newest.max(version);
        if let Some(migration) = MIGRATIONS.iter().find(|m| m.version == version) {
            if sha256 != digest(migration) {
                return Err(PostgresError::MigrationChanged {
                    version,
                    name: migration.name,
                });
            }
            known.push(version);
        }
    }
    let mut applied = Vec::new();
    for migration in MIGRATIONS.iter().filter(|m| !known.contains(&m.version)) {
        tx.batch_execute(migration.sql)
            .await
            .map_err(|source| PostgresError::Migration {
                version: migration.version,
                name: migration.name,
                source,
            })?;
        tx.execute(
            "INSERT INTO moauth_migrations (version, name, sha256) VALUES ($1, $2, $3)",
            &[&migration.version, &migration.name, &digest(migration)],
        )
        .await?;
        applied.push(migration.version);
        newest = newest.max(migration.version);
    }
    tx.commit().await?;
    let latest = MIGRATIONS.last().map_or(0, |m| m.version);
    Ok(Migrated {
        applied,
        version: newest,
        ahead: newest > latest,
    })
}

fn digest(migration: &Migration) -> Vec<u8> {
    Sha256::digest(migration.sql.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_consecutive_from_one() {
        for (i, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(migration.version as usize, i + 1, "{}", migration.name);
        }
    }
}
