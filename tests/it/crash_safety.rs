//! Crash safety: a burst of MOs while the daemon is SIGKILLed at random moments.
//!
//! The simulator redelivers whatever was not acknowledged, as an SMSC does. At the end every
//! acknowledged MO has produced exactly one login, no number has two accounts, and every new
//! number got its credential SMS at least once (the duplicates are counted and printed).
//! 10,000 MOs by default; `MOAUTH_CRASH_MOS=100000 cargo test --release --test crash_safety`
//! for the large run.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::process::Spawned;
use futures::StreamExt;
use moauth::core::clock::Clock;
use moauth::core::token::{Token, Verifier};
use moauth::sim::Deliver;
use serde_json::Value;

const CHUNK: usize = 200;
const KILLS: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_burst_loses_nothing() {
    let total: usize = std::env::var("MOAUTH_CRASH_MOS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let numbers = (total / 20).max(1);
    // A load test from one client and one number block: the abuse limits would bite.
    let no_limits = "[limits]\npoll_per_minute = 0\nmo_per_number_per_hour = 0\n\
                     new_accounts_per_prefix_per_hour = 0";
    let mut d = Spawned::start(no_limits, &[]).await;
    let now = Clock::System.now();
    let logins: Vec<(String, Verifier, Token)> = (0..total)
        .map(|i| {
            let verifier = Verifier::random();
            let token = Token::for_verifier(&verifier, now);
            (format!("+86135{:08}", i % numbers), verifier, token)
        })
        .collect();
    let chunks: Vec<Vec<Deliver>> = logins
        .chunks(CHUNK)
        .map(|chunk| {
            chunk
                .iter()
                .map(|(from, _, token)| Deliver {
                    from: from.clone(),
                    data_coding: 1,
                    short_message: format!("LOGIN {token}").into_bytes(),
                    ..Deliver::default()
                })
                .collect()
        })
        .collect();
    let kill_at: BTreeSet<usize> = (1..=KILLS)
        .map(|k| k * chunks.len() / (KILLS + 1))
        .collect();

    let mut kills = 0;
    for (i, chunk) in chunks.iter().enumerate() {
        let kill_now = kill_at.contains(&i);
        let mut attempt = 0;
        loop {
            attempt += 1;
            assert!(attempt < 20, "chunk {i} never acknowledged");
            let sending = d.sim.deliver(chunk);
            let result = if kill_now && attempt == 1 {
                // Kill somewhere inside the chunk: some of it acknowledged, some not.
                let delay = Duration::from_micros(rand::random_range(0..20_000));
                let (result, ()) = tokio::join!(sending, async {
                    tokio::time::sleep(delay).await;
                    d.signal(libc::SIGKILL);
                });
                result
            } else {
                sending.await
            };
            match result {
                Ok(acked) if acked.statuses.iter().all(|s| *s == 0) => break,
                _ => {
                    if kill_now && attempt == 1 {
                        assert_eq!(d.exit_code().await, -1, "killed by a signal");
                        kills += 1;
                        d.relaunch().await;
                    }
                }
            }
        }
        if kill_now && attempt == 1 {
            // The whole chunk was acknowledged before the kill landed: kill now instead.
            d.signal(libc::SIGKILL);
            d.exit_code().await;
            kills += 1;
            d.relaunch().await;
        }
    }
    assert_eq!(kills, KILLS);

    let http = common::http_client();
    let answers: Vec<(String, Value)> = futures::stream::iter(logins.iter())
        .map(|(from, verifier, token)| {
            let (http, addr) = (http.clone(), d.http);
            async move {
                let (_, answer) = common::poll_login(&http, addr, verifier, token, 30_000).await;
                (from.clone(), answer)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;

    let mut accounts: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut created: BTreeMap<String, usize> = BTreeMap::new();
    for (from, answer) in &answers {
        assert_eq!(answer["state"], "complete", "{from}: {answer}");
        accounts
            .entry(from.clone())
            .or_default()
            .insert(answer["account_id"].as_str().unwrap().to_owned());
        if answer["created"] == true {
            *created.entry(from.clone()).or_default() += 1;
        }
    }
    assert_eq!(accounts.len(), numbers);
    assert!(
        accounts.values().all(|ids| ids.len() == 1),
        "a number got two accounts"
    );
    assert!(
        created.values().all(|n| *n == 1) && created.len() == numbers,
        "one registration per number"
    );

    // A number may get its credentials twice (sent, then the kill came before the record of
    // it was durable), so the count of SMS says nothing: wait, SMS by SMS, until every number
    // has had one, or two minutes pass.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let mut credentials: BTreeMap<String, usize> = BTreeMap::new();
    let mut waiting_for = numbers;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let submits = d.sim.wait_submits(waiting_for, left).await;
        credentials.clear();
        for sms in submits.iter().filter(|s| s.text.contains("password")) {
            *credentials.entry(sms.to.clone()).or_default() += 1;
        }
        if credentials.len() == numbers || left.is_zero() {
            break;
        }
        waiting_for = submits.len() + 1;
    }
    assert_eq!(
        credentials.len(),
        numbers,
        "every new number got its credentials"
    );
    let twice = credentials.values().filter(|n| **n > 1).count();
    println!(
        "crash safety: {total} MOs, {kills} SIGKILLs, {numbers} numbers registered once each; \
         credential SMS sent twice to {twice} numbers"
    );
}
