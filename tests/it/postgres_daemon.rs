//! `moauth run` on PostgreSQL, the real binary: a phone logs in end to end; while the database
//! is down the node says it is not ready and acknowledges no MO, and when the database
//! returns it is ready again and the SMSC's retry logs the phone in. `moauth store migrate`
//! and `check-config` for the postgres section.

use crate::common;

use common::nodes::{Node, write_config};
use common::postgres::{OwnCluster, database};
use common::{ALICE, BOB, PATIENCE, phone_sends, poll_login};
use moauth::core::clock::Clock;
use moauth::core::token::LoginStart;
use moauth::sim::MoRequest;
use moauth::store::postgres::MIGRATIONS;

/// Accepted by a trust-authenticated test cluster, and must never reach a log line.
const DB_PASSWORD: &str = "Sekr1t-db-pw";

fn with_password(url: &str) -> String {
    url.replacen("postgres@", &format!("postgres:{DB_PASSWORD}@"), 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_on_postgres_logs_in_and_is_unready_while_the_database_is_down() {
    let Some(cluster) = OwnCluster::start().await else {
        return;
    };
    let db = cluster.database().await;
    let sim = common::loopback_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "a", &with_password(&db.url), sim.smpp_addr, "");
    let mut node = Node::launch("a", &config).await;
    node.wait_readyz(200, "open").await;

    // The whole flow: MO committed and acknowledged, account made, credentials texted,
    // session handed out once.
    let http = common::http_client();
    let login = LoginStart::new(Clock::System.now(), "10690000", "LOGIN", "");
    let acked = phone_sends(&sim, ALICE, &format!("LOGIN {}", login.token)).await;
    assert_eq!(acked.statuses, vec![0]);
    let (status, answer) =
        poll_login(&http, node.http, &login.verifier, &login.token, 10_000).await;
    assert_eq!(
        (status, answer["state"].as_str()),
        (200, Some("complete")),
        "{answer}"
    );
    assert_eq!(answer["created"], true, "{answer}");
    let (_, again) = poll_login(&http, node.http, &login.verifier, &login.token, 0).await;
    assert_eq!(again["state"], "consumed", "{again}");
    let credentials = sim.wait_submits(1, PATIENCE).await;
    assert!(
        credentials
            .iter()
            .any(|s| s.to == ALICE && s.text.contains("password")),
        "{credentials:?}"
    );

    // The database goes away: not ready, and an MO is refused with a temporary status, not
    // acknowledged (nothing could be committed).
    cluster.stop().await;
    node.wait_readyz(503, "unavailable").await;
    let login = LoginStart::new(Clock::System.now(), "10690000", "LOGIN", "");
    let mo = MoRequest {
        from: BOB.into(),
        to: Some("10690000".into()),
        text: format!("LOGIN {}", login.token),
        ..Default::default()
    };
    // The link stays bound and answers with a temporary error: never an OK.
    let refused = sim.send_mo(&mo).await.expect("the link stays bound");
    assert_ne!(refused.statuses, vec![0], "acknowledged without a database");

    // It comes back: ready again, and the SMSC's retry goes through.
    cluster.restart().await;
    node.wait_readyz(200, "open").await;
    let acked = sim.send_mo(&mo).await.unwrap();
    assert_eq!(acked.statuses, vec![0]);
    let (_, answer) = poll_login(&http, node.http, &login.verifier, &login.token, 10_000).await;
    assert_eq!(answer["state"], "complete", "{answer}");

    assert_eq!(node.stop().await, 0);
    let logs = node.logs.text();
    assert!(logs.contains("postgres store open"), "{logs}");
    assert!(
        !logs.contains(DB_PASSWORD),
        "the database password is in the logs"
    );
}

/// While the database is down the SMPP bind stays up (#13): each deliver_sm is answered with
/// a temporary error (ESME_RX_T_APPN) so the SMSC retries it, and the outbox is read again
/// later instead of the link being torn down and bound again. Once the database is back the
/// retried MO logs the phone in and its credential SMS goes out on the same bind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_keeps_the_smpp_bind_up() {
    let Some(cluster) = OwnCluster::start().await else {
        return;
    };
    let db = cluster.database().await;
    let sim = common::loopback_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "a", &db.url, sim.smpp_addr, "");
    // A heartbeat a second: after each, the link reads the outbox again.
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "short_code = \"10690000\"\n",
        "short_code = \"10690000\"\nenquire_link_secs = 1\n",
    );
    std::fs::write(&config, text).unwrap();
    let mut node = Node::launch("a", &config).await;
    node.wait_readyz(200, "open").await;
    let binds = sim.bind_attempts().len();

    cluster.stop().await;
    node.wait_readyz(503, "unavailable").await;
    let beats = sim.enquire_links();
    let beaten = sim.wait_enquire_links(beats + 3, PATIENCE).await;
    assert_eq!(
        sim.bind_attempts().len(),
        binds,
        "the link was bound again during the outage"
    );
    assert!(beaten >= beats + 3, "the bound link fell silent");
    let login = LoginStart::new(Clock::System.now(), "10690000", "LOGIN", "");
    let mo = MoRequest {
        from: ALICE.into(),
        to: Some("10690000".into()),
        text: format!("LOGIN {}", login.token),
        ..Default::default()
    };
    let refused = sim.send_mo(&mo).await.expect("the link stays bound");
    const ESME_RX_T_APPN: u32 = 0x64;
    assert_eq!(refused.statuses, vec![ESME_RX_T_APPN]);

    cluster.restart().await;
    node.wait_readyz(200, "open").await;
    let acked = sim.send_mo(&mo).await.unwrap();
    assert_eq!(acked.statuses, vec![0]);
    let http = common::http_client();
    let (_, answer) = poll_login(&http, node.http, &login.verifier, &login.token, 10_000).await;
    assert_eq!(answer["state"], "complete", "{answer}");
    let credentials = sim.wait_submits(1, PATIENCE).await;
    assert!(credentials.iter().any(|s| s.to == ALICE), "{credentials:?}");
    assert_eq!(sim.bind_attempts().len(), binds, "one bind throughout");
    assert_eq!(node.stop().await, 0);
}

#[tokio::test]
async fn store_migrate_and_check_config_take_the_postgres_section() {
    let Some(db) = database().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let smsc = "127.0.0.1:2775".parse().unwrap();
    let config = write_config(dir.path(), "a", &with_password(&db.url), smsc, "");
    let config = config.to_str().unwrap();

    // No sled directory is asked for; the URL is parsed, the database not contacted.
    let (code, out, err) = common::process::moauth(&["check-config", config]).await;
    assert_eq!(code, 0, "{out}{err}");

    let (code, out, err) = common::process::moauth(&["store", "migrate", "--config", config]).await;
    assert_eq!(code, 0, "{out}{err}");
    let every: Vec<String> = MIGRATIONS.iter().map(|m| m.version.to_string()).collect();
    assert!(
        out.contains(&format!("applied {}", every.join(", "))),
        "{out}"
    );
    let (code, out, _) = common::process::moauth(&["store", "migrate", "--config", config]).await;
    assert_eq!(code, 0);
    assert!(out.contains("nothing to apply"), "{out}");
    assert!(!format!("{out}{err}").contains(DB_PASSWORD));

    let bad = "postgres://moauth:Sekr1t-db-pw@db:notaport/moauth";
    let config = write_config(dir.path(), "b", bad, smsc, "");
    let (code, out, err) =
        common::process::moauth(&["check-config", config.to_str().unwrap()]).await;
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("key `store.url`"), "{err}");
    assert!(!err.contains(DB_PASSWORD), "{err}");
}
