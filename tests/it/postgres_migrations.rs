//! The PostgreSQL schema: applied at start by whichever node comes first, once, however many
//! nodes start together, and never silently over a schema someone changed by hand.

use crate::common;

use common::postgres::database;
use moauth::store::postgres::{MIGRATIONS, Migrated, PostgresError, migrate};

fn newest() -> i32 {
    MIGRATIONS.last().unwrap().version
}

#[tokio::test]
async fn a_fresh_database_gets_every_migration_and_a_second_start_none() {
    let Some(db) = database().await else { return };
    let pool = db.connection().pool().unwrap();
    let first = migrate(&mut pool.get().await.unwrap()).await.unwrap();
    let all: Vec<i32> = MIGRATIONS.iter().map(|m| m.version).collect();
    assert_eq!(
        first,
        Migrated {
            applied: all,
            version: newest(),
            ahead: false
        }
    );
    let again = migrate(&mut pool.get().await.unwrap()).await.unwrap();
    assert_eq!(again.applied, Vec::<i32>::new());
    assert_eq!(again.version, newest());
    let client = db.client().await;
    let tables: Vec<String> = client
        .query(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = 'public' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for table in [
        "accounts",
        "inbox",
        "inbox_seen",
        "logins",
        "minted",
        "moauth_migrations",
        "outbox",
        "parts",
        "rejected",
        "sent",
        "sessions",
        "webhooks",
    ] {
        assert!(
            tables.iter().any(|t| t == table),
            "{table} missing: {tables:?}"
        );
    }
}

#[tokio::test]
async fn three_nodes_starting_together_apply_the_schema_once() {
    let Some(db) = database().await else { return };
    let nodes: Vec<_> = (0..3)
        .map(|_| {
            let connection = db.connection();
            tokio::spawn(async move {
                let (mut client, conn) =
                    tokio_postgres::connect(&connection.url, tokio_postgres::NoTls)
                        .await
                        .unwrap();
                tokio::spawn(conn);
                migrate(&mut client).await.unwrap()
            })
        })
        .collect();
    let mut applied = Vec::new();
    for node in nodes {
        let migrated = node.await.unwrap();
        assert_eq!(migrated.version, newest());
        applied.extend(migrated.applied);
    }
    let all: Vec<i32> = MIGRATIONS.iter().map(|m| m.version).collect();
    assert_eq!(
        applied, all,
        "each migration applied exactly once over the three"
    );
}

#[tokio::test]
async fn a_schema_changed_after_its_migration_is_refused() {
    let Some(db) = database().await else { return };
    let mut client = db.client().await;
    migrate(&mut client).await.unwrap();
    client
        .execute(
            "UPDATE moauth_migrations SET sha256 = '\\x00' WHERE version = 1",
            &[],
        )
        .await
        .unwrap();
    let refused = migrate(&mut client).await.unwrap_err();
    assert!(
        matches!(refused, PostgresError::MigrationChanged { version: 1, .. }),
        "{refused}"
    );
}

#[tokio::test]
async fn a_database_newer_than_this_build_is_reported_not_refused() {
    let Some(db) = database().await else { return };
    let mut client = db.client().await;
    migrate(&mut client).await.unwrap();
    let next = newest() + 1;
    client
        .execute(
            "INSERT INTO moauth_migrations (version, name, sha256) VALUES ($1, 'from the future', '\\x00')",
            &[&next],
        )
        .await
        .unwrap();
    let migrated = migrate(&mut client).await.unwrap();
    assert_eq!(
        migrated,
        Migrated {
            applied: vec![],
            version: next,
            ahead: true
        }
    );
}

#[tokio::test]
async fn one_account_per_number_holds_against_concurrent_inserts() {
    let Some(db) = database().await else { return };
    migrate(&mut db.client().await).await.unwrap();
    let (a, b) = (db.client().await, db.client().await);
    let insert = "INSERT INTO accounts (msisdn, created_at) VALUES ('+8613800138000', 1)";
    let (ra, rb) = tokio::join!(a.execute(insert, &[]), b.execute(insert, &[]));
    assert_eq!(
        [ra.is_ok(), rb.is_ok()].iter().filter(|ok| **ok).count(),
        1,
        "{ra:?} {rb:?}"
    );
}
