//! `cargo bench --bench nodes`: logins per second, MO → session latency and database work per
//! login, on sled (one node) and on PostgreSQL (one node, three nodes), in one run.
//!
//! Each setup runs the release `moauth` binary as separate processes (`moauth run --config`)
//! against the built-in simulator, with one bind per node; PostgreSQL is a throwaway cluster
//! with its default durability (fsync on) and pg_stat_statements loaded. First every number is
//! registered (untimed: each registration costs an Argon2id hash); then the timed logins, all
//! of returning numbers, run `MOAUTH_NODES_IN_FLIGHT` at a time. Each login starts its
//! long-poll at a random node, then the phone's MO goes out over the next bind in turn; its
//! latency is from the MO's send to the poll's `complete`. The statements and transactions the
//! database executed during the timed part are divided by the logins (background work
//! included: each node's once-a-second depth refresh).
//!
//! Knobs: `MOAUTH_NODES_LOGINS` (default 3000), `MOAUTH_NODES_NUMBERS` (200),
//! `MOAUTH_NODES_IN_FLIGHT` (32).

#[path = "../tests/it/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::nodes::{Node, write_config, write_config_with_store};
use common::postgres::{OwnCluster, TestDatabase};
use futures::StreamExt;
use moauth::core::clock::Clock;
use moauth::core::token::LoginStart;
use moauth::sim::{Deliver, Simulator};

const EXTRA: &str = "[limits]\npoll_per_minute = 0\nmo_per_number_per_hour = 0\n\
                     new_accounts_per_prefix_per_hour = 0";

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Figures {
    setup: String,
    logins: usize,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    database: Option<Database>,
    load: String,
}

/// What PostgreSQL did per login: statements, commits, and the busiest statements' calls.
struct Database {
    statements: f64,
    commits: f64,
    top: Vec<(f64, String)>,
}

#[tokio::main]
async fn main() {
    moauth::install_crypto_provider();
    let logins = knob("MOAUTH_NODES_LOGINS", 3000);
    let numbers = knob("MOAUTH_NODES_NUMBERS", 200);
    let in_flight = knob("MOAUTH_NODES_IN_FLIGHT", 32);
    let cluster = OwnCluster::start_durable()
        .await
        .expect("PostgreSQL 15 is needed for this benchmark");
    let mut figures = Vec::new();
    for (backend, nodes) in [("sled", 1), ("postgres", 1), ("postgres", 3), ("sled", 1)] {
        let db = match backend {
            "postgres" => Some(cluster.database().await),
            _ => None,
        };
        eprintln!("{backend}, {nodes} node(s): {numbers} numbers, {logins} logins");
        figures.push(run(backend, nodes, db.as_ref(), logins, numbers, in_flight).await);
    }
    print(&figures);
}

async fn run(
    backend: &str,
    count: usize,
    db: Option<&TestDatabase>,
    logins: usize,
    numbers: usize,
    in_flight: usize,
) -> Figures {
    let sim = common::loopback_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = Vec::new();
    for i in 0..count {
        let name = format!("n{i}");
        let config = match db {
            Some(db) => write_config(dir.path(), &name, &db.url, sim.smpp_addr, EXTRA),
            None => {
                let store = format!("path = \"{}\"", dir.path().join(&name).display());
                write_config_with_store(dir.path(), &name, &store, sim.smpp_addr, EXTRA)
            }
        };
        nodes.push(Node::launch(&name, &config).await);
    }
    let https: Arc<Vec<_>> = Arc::new(nodes.iter().map(|n| n.http).collect());
    let phones: Arc<Vec<String>> =
        Arc::new((0..numbers).map(|i| format!("+86137{i:08}")).collect());

    // Untimed: every number gets its account.
    let _ = logins_over(&sim, &https, &phones, numbers, in_flight).await;

    let client = match db {
        Some(db) => {
            let client = db.client().await;
            client
                .batch_execute(
                    "CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
                     SELECT pg_stat_statements_reset(); SELECT pg_stat_reset();",
                )
                .await
                .unwrap();
            Some(client)
        }
        None => None,
    };
    let commits_before = match &client {
        Some(c) => commits(c, db.unwrap()).await,
        None => 0,
    };
    let started = Instant::now();
    let mut latencies = logins_over(&sim, &https, &phones, logins, in_flight).await;
    let elapsed = started.elapsed();
    let database = match &client {
        Some(c) => {
            let db = db.unwrap();
            let commits = commits(c, db).await - commits_before;
            let rows = c
                .query(
                    "SELECT calls, query FROM pg_stat_statements
                      WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1)
                      ORDER BY calls DESC",
                    &[&db.name],
                )
                .await
                .unwrap();
            let per = |n: i64| n as f64 / logins as f64;
            let statements: i64 = rows.iter().map(|r| r.get::<_, i64>(0)).sum();
            let top = rows
                .iter()
                .take(12)
                .map(|r| {
                    let query: String = r.get(1);
                    let short: String = query.split_whitespace().collect::<Vec<_>>().join(" ");
                    (per(r.get(0)), short.chars().take(90).collect())
                })
                .collect();
            Some(Database {
                statements: per(statements),
                commits: per(commits),
                top,
            })
        }
        None => None,
    };
    for node in &mut nodes {
        node.stop().await;
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
    Figures {
        setup: format!(
            "{backend}, {count} node{}",
            if count == 1 { "" } else { "s" }
        ),
        logins,
        per_second: logins as f64 / elapsed.as_secs_f64(),
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        database,
        load: std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .next()
            .unwrap_or("?")
            .to_owned(),
    }
}

async fn commits(client: &tokio_postgres::Client, db: &TestDatabase) -> i64 {
    client
        .query_one(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = $1",
            &[&db.name],
        )
        .await
        .unwrap()
        .get(0)
}

/// `count` logins of `phones` in turn, `in_flight` at a time; each one's MO → session time.
async fn logins_over(
    sim: &Simulator,
    https: &Arc<Vec<std::net::SocketAddr>>,
    phones: &Arc<Vec<String>>,
    count: usize,
    in_flight: usize,
) -> Vec<Duration> {
    let http = common::http_client();
    futures::stream::iter(0..count)
        .map(|i| {
            let (sim, https, phones, http) =
                (sim.clone(), https.clone(), phones.clone(), http.clone());
            async move {
                let login = LoginStart::new(Clock::System.now(), "10690000", "LOGIN");
                let node = https[rand::random_range(0..https.len())];
                let mo = Deliver {
                    from: phones[i % phones.len()].clone(),
                    short_message: format!("LOGIN {}", login.token).into_bytes(),
                    ..Deliver::default()
                };
                let poll = tokio::spawn(async move {
                    common::poll_login(&http, node, &login.verifier, &login.token, 30_000).await
                });
                let sent = Instant::now();
                let acked = sim.deliver(&[mo]).await.unwrap();
                assert_eq!(acked.statuses, [0]);
                let (_, answer) = poll.await.unwrap();
                assert_eq!(answer["state"], "complete", "{answer}");
                sent.elapsed()
            }
        })
        .buffer_unordered(in_flight)
        .collect()
        .await
}

fn print(figures: &[Figures]) {
    println!(
        "| setup | logins | logins/s | MO → session p50 | p99 | statements / login | commits / login | load (1 min) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for f in figures {
        let (statements, commits) = match &f.database {
            Some(d) => (format!("{:.1}", d.statements), format!("{:.1}", d.commits)),
            None => ("–".into(), "–".into()),
        };
        println!(
            "| {} | {} | {:.0} | {:.1} ms | {:.1} ms | {statements} | {commits} | {} |",
            f.setup, f.logins, f.per_second, f.p50_ms, f.p99_ms, f.load
        );
    }
    for f in figures {
        if let Some(Database { top, .. }) = &f.database {
            println!("\n{}: the busiest statements, calls per login\n", f.setup);
            println!("| calls / login | statement |\n|---|---|");
            for (calls, query) in top {
                println!("| {calls:.2} | `{}` |", query.replace('|', "\\|"));
            }
        }
    }
}
