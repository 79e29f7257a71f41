//! Three `moauth run` nodes on one PostgreSQL, one SMSC with a bind from each: a node is
//! SIGKILLed in the middle of a burst of logins and no login is lost.
//!
//! The node is frozen (SIGSTOP) before the kill, so it surely dies holding MOs it never
//! answered. The simulator spreads the MOs over the three binds in turn and, like an SMSC, sends again
//! on another bind whatever it had sent to the dead node without a deliver_sm_resp (and
//! retries an MO refused with an error status). At the end every acknowledged MO's login is
//! complete exactly once at a random surviving node, no number has two accounts, every new
//! number got its credentials at least once (duplicates are counted and printed), and the
//! killed node, started again, binds and serves a poll.
//! `MOAUTH_NODES_LOGINS=2000 cargo test --test it postgres_sigkill` for a larger burst.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::nodes::{Node, write_config};
use common::postgres::database;
use common::{PATIENCE, eventually, poll_login};
use futures::StreamExt;
use moauth::core::clock::Clock;
use moauth::core::token::{LoginStart, Token, Verifier};
use moauth::sim::Deliver;
use serde_json::Value;

const NODES: [&str; 3] = ["a", "b", "c"];
/// MOs in flight at once, over all binds.
const IN_FLIGHT: usize = 24;
/// A load test from one client and one number block, with cheap password hashes: the abuse
/// limits and Argon2's cost are not what this test is about.
const EXTRA: &str = "[limits]\npoll_per_minute = 0\nmo_per_number_per_hour = 0\n\
                     new_accounts_per_prefix_per_hour = 0\n\n\
                     [auth.argon2]\nmemory_kib = 1024\niterations = 1";

struct Login {
    from: String,
    verifier: Verifier,
    token: Token,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_burst_loses_no_login() {
    let Some(db) = database().await else { return };
    let total: usize = std::env::var("MOAUTH_NODES_LOGINS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(240);
    // Every fifth login is a number's second: a returning user, on whichever node.
    let numbers = total * 4 / 5;
    let sim = common::loopback_sim().await;
    sim.redeliver_unanswered(true);
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = Vec::new();
    for name in NODES {
        let config = write_config(dir.path(), name, &db.url, sim.smpp_addr, EXTRA);
        nodes.push(Node::launch(name, &config).await);
    }
    assert_eq!(sim.bound_sessions(), NODES.len());

    let now = Clock::System.now();
    let logins: Arc<Vec<Login>> = Arc::new(
        (0..total)
            .map(|i| {
                let verifier = Verifier::random();
                let token = Token::for_verifier(&verifier, now);
                Login {
                    from: format!("+86136{:08}", i % numbers),
                    verifier,
                    token,
                }
            })
            .collect(),
    );

    // The burst, in the background; node a dies once a third of it is acknowledged.
    let acked_so_far = Arc::new(AtomicUsize::new(0));
    let burst = {
        let (sim, logins, acked_so_far) = (sim.clone(), logins.clone(), acked_so_far.clone());
        tokio::spawn(async move {
            futures::stream::iter(0..logins.len())
                .map(|i| {
                    let (sim, logins, acked_so_far) =
                        (sim.clone(), logins.clone(), acked_so_far.clone());
                    async move {
                        let mo = Deliver {
                            from: logins[i].from.clone(),
                            short_message: format!("LOGIN {}", logins[i].token).into_bytes(),
                            ..Deliver::default()
                        };
                        // An error status (the database busy, say) is retried as an SMSC does.
                        for _ in 0..10 {
                            if let Ok(result) = sim.deliver(std::slice::from_ref(&mo)).await
                                && result.statuses == [0]
                            {
                                acked_so_far.fetch_add(1, Ordering::SeqCst);
                                return Some(i);
                            }
                        }
                        None
                    }
                })
                .buffer_unordered(IN_FLIGHT)
                .collect::<Vec<Option<usize>>>()
                .await
        })
    };
    eventually("a third of the burst acknowledged", async || {
        acked_so_far.load(Ordering::SeqCst) >= total / 3
    })
    .await;
    // Frozen first, so that it surely holds MOs it never answers: of any three MOs sent
    // from now on, one goes to its bind. The other nodes keep acknowledging meanwhile.
    nodes[0].signal(libc::SIGSTOP);
    let frozen_at = acked_so_far.load(Ordering::SeqCst);
    eventually("three more MOs acknowledged by the others", async || {
        acked_so_far.load(Ordering::SeqCst) >= frozen_at + 3
    })
    .await;
    nodes[0].kill().await;
    let outcomes = burst.await.unwrap();
    let redelivered = sim.redelivered();
    assert!(redelivered > 0, "the dead node held no unanswered MO");
    let acked: BTreeSet<usize> = outcomes.iter().flatten().copied().collect();
    assert_eq!(
        acked.len(),
        total,
        "MOs never acknowledged by any node: {:?}",
        (0..total)
            .filter(|i| !acked.contains(i))
            .collect::<Vec<_>>()
    );

    // Every acknowledged login: complete at one random survivor, consumed at the other.
    let survivors = [nodes[1].http, nodes[2].http];
    let http = common::http_client();
    let answers: Vec<(usize, Value, Value)> = futures::stream::iter(acked.iter().copied())
        .map(|i| {
            let (http, logins) = (http.clone(), logins.clone());
            let first = rand::random_range(0..survivors.len());
            let (here, there) = (survivors[first], survivors[1 - first]);
            async move {
                let login = &logins[i];
                let (_, answer) =
                    poll_login(&http, here, &login.verifier, &login.token, 20_000).await;
                let (_, again) = poll_login(&http, there, &login.verifier, &login.token, 0).await;
                (i, answer, again)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let mut accounts: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (i, answer, again) in &answers {
        let from = logins[*i].from.as_str();
        assert_eq!(answer["state"], "complete", "{from}: {answer}");
        assert_eq!(
            again["state"], "consumed",
            "{from}: handed out twice: {again}"
        );
        accounts
            .entry(from)
            .or_default()
            .insert(answer["account_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(accounts.len(), numbers);
    assert!(
        accounts.values().all(|ids| ids.len() == 1),
        "a number got two accounts"
    );
    let client = db.client().await;
    let in_db: i64 = client
        .query_one("SELECT count(DISTINCT msisdn) FROM accounts", &[])
        .await
        .unwrap()
        .get(0);
    let rows: i64 = client
        .query_one("SELECT count(*) FROM accounts", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!((in_db, rows), (numbers as i64, numbers as i64));

    // Credentials: at least once per new number, whichever node sent them.
    let mut credentials: BTreeMap<String, usize> = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + PATIENCE * 3;
    while credentials.len() < numbers && tokio::time::Instant::now() < deadline {
        let submits = sim.wait_submits(numbers, PATIENCE).await;
        credentials.clear();
        for sms in submits.iter().filter(|s| s.text.contains("password")) {
            *credentials.entry(sms.to.clone()).or_default() += 1;
        }
        if credentials.len() < numbers {
            let more = submits.len() + 1;
            sim.wait_submits(more, PATIENCE).await;
        }
    }
    assert_eq!(
        credentials.len(),
        numbers,
        "a new number got no credentials"
    );
    let twice = credentials.values().filter(|n| **n > 1).count();

    // The killed node comes back: it binds and serves a poll.
    nodes[0].relaunch().await;
    assert!(sim.wait_bound(NODES.len(), PATIENCE).await);
    let late = LoginStart::new(Clock::System.now(), "10690000", "LOGIN");
    let acked = common::phone_sends(&sim, "+8613612345678", &format!("LOGIN {}", late.token)).await;
    assert_eq!(acked.statuses, vec![0]);
    let (_, answer) = poll_login(&http, nodes[0].http, &late.verifier, &late.token, 20_000).await;
    assert_eq!(answer["state"], "complete", "{answer}");

    let _ = writeln!(
        std::io::stderr(),
        "postgres_sigkill: {total} logins over {} nodes, node a frozen after {frozen_at} \
         acks and killed; {redelivered} deliver_sm redelivered; {numbers} new numbers, {twice} \
         got their credentials twice",
        NODES.len(),
    );
    for node in &mut nodes {
        assert_eq!(node.stop().await, 0, "{}", node.name);
    }
}
