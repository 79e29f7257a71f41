//! Signals as systemd and operators send them to the real binary: SIGTERM drains, SIGHUP
//! reloads (or refuses a broken file and keeps running on the old one).

use crate::common;

use std::collections::BTreeSet;

use common::PATIENCE;
use common::process::{BIND_TRANSCEIVER, Spawned, UNBIND};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use moauth::core::clock::Clock;
use moauth::core::token::{Token, Verifier};
use serde_json::json;
use std::time::{Duration, Instant};

/// `TimeoutStopSec=` of systemd/moauth.service: systemd kills what still runs after it.
fn stop_timeout() -> Duration {
    let unit = include_str!("../../systemd/moauth.service");
    let secs = unit
        .lines()
        .find_map(|l| l.strip_prefix("TimeoutStopSec=")?.strip_suffix('s'))
        .expect("the unit sets TimeoutStopSec=Ns");
    Duration::from_secs(secs.parse().unwrap())
}

const BURST: usize = 40;

fn phone(i: usize) -> String {
    format!("+86138001{i:05}")
}

#[tokio::test]
async fn sigterm_during_a_burst_exits_0_unbinds_and_every_acked_mo_is_processed_after_restart() {
    // SIGTERM goes out as soon as the first MO is acknowledged, so it lands mid-burst:
    // some MOs are acknowledged after it (they must survive), some are never answered.
    let mut d = Spawned::start("", &[]).await;
    let mut burst: FuturesUnordered<_> = (0..BURST)
        .map(|i| {
            let sim = d.sim.clone();
            async move {
                let result = sim
                    .send_mo(&moauth::sim::MoRequest {
                        from: phone(i),
                        to: Some("10690000".into()),
                        text: "HELP".into(),
                        ..Default::default()
                    })
                    .await;
                (i, result)
            }
        })
        .collect();

    let mut acked = BTreeSet::new();
    let (first, result) = burst.next().await.unwrap();
    if result.is_ok_and(|r| r.statuses == [0]) {
        acked.insert(phone(first));
    }
    d.signal(libc::SIGTERM);
    while let Some((i, result)) = burst.next().await {
        // Not acknowledged (an error status, or no answer before the unbind) means the
        // SMSC keeps it and delivers it again later: not ours to process.
        if result.is_ok_and(|r| r.statuses == [0]) {
            acked.insert(phone(i));
        }
    }
    assert_eq!(d.exit_code().await, 0, "logs:\n{}", d.logs.text());
    assert_eq!(
        d.tap.count(UNBIND),
        1,
        "the daemon must unbind before exiting"
    );
    assert!(!acked.is_empty());

    d.relaunch().await;
    let answered = tokio::time::timeout(PATIENCE, async {
        let mut seen = 0;
        loop {
            let submits = d.sim.wait_submits(seen + 1, PATIENCE).await;
            seen = submits.len();
            let to: BTreeSet<String> = submits.into_iter().map(|s| s.to).collect();
            if acked.is_subset(&to) {
                return to;
            }
        }
    })
    .await;
    assert!(
        answered.is_ok(),
        "some acknowledged MOs were never answered: acked {acked:?}, submits {:?}",
        d.sim.submits()
    );
    d.signal(libc::SIGTERM);
    assert_eq!(d.exit_code().await, 0);
}

const HELP_V1: &str = "[templates]\nhelp = \"help v1 from {app}\"";
const HELP_V2: &str = "[templates]\nhelp = \"help v2 from {app}\"";

#[tokio::test]
async fn sighup_with_a_changed_template_changes_the_next_sms_without_a_rebind() {
    let mut d = Spawned::start(HELP_V1, &[]).await;
    d.phone_sends(common::ALICE, "HELP").await;
    assert_eq!(d.nth_submit(1).await.text, "help v1 from moauth");

    d.write_config(HELP_V2);
    d.signal(libc::SIGHUP);
    d.notify.wait_for("RELOADING=1").await;
    d.notify.wait_for("READY=1").await;
    // Another phone: the same text from the same number so soon would look like a redelivery.
    d.phone_sends(common::BOB, "HELP").await;
    assert_eq!(d.nth_submit(2).await.text, "help v2 from moauth");

    assert_eq!(d.tap.count(BIND_TRANSCEIVER), 1, "a reload must not rebind");
    assert_eq!(d.tap.count(UNBIND), 0);
    d.signal(libc::SIGTERM);
    assert_eq!(d.exit_code().await, 0);
}

#[tokio::test]
async fn sighup_with_a_broken_file_keeps_the_old_config() {
    let mut d = Spawned::start(HELP_V1, &[]).await;

    d.write_config("[templates]\nhelp = 5");
    d.signal(libc::SIGHUP);
    d.notify.wait_for("RELOADING=1").await;
    let ready = d.notify.wait_for("READY=1").await;
    assert!(ready.contains("reload failed"), "{ready}");
    assert!(ready.contains("key `templates.help`"), "{ready}");
    let refused = d
        .logs
        .wait_message("configuration NOT reloaded; the running one stays")
        .await;
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("moauth.toml:8:8:"),
        "{refused}"
    );

    d.phone_sends(common::ALICE, "HELP").await;
    assert_eq!(d.nth_submit(1).await.text, "help v1 from moauth");
    assert_eq!(d.tap.count(BIND_TRANSCEIVER), 1);
    d.signal(libc::SIGTERM);
    assert_eq!(d.exit_code().await, 0);
}

const OPEN_POLLS: usize = 5;

#[tokio::test]
async fn sigterm_answers_every_open_long_poll_with_its_state_then_exits() {
    // A stop used to leave long-polls hanging for the 5 s drain, then cut them off: the app
    // got an empty reply. Each must get its login's state at once instead.
    let mut d = Spawned::start("", &[]).await;
    let http = common::http_client();
    let polls: Vec<_> = (0..OPEN_POLLS)
        .map(|_| {
            let verifier = Verifier::random();
            let token = Token::for_verifier(&verifier, Clock::System.now());
            let (http, addr) = (http.clone(), d.http);
            tokio::spawn(async move {
                let body = json!({
                    "verifier": verifier.to_base64url(),
                    "token": token.to_string(),
                    "wait_ms": 30_000,
                });
                let response = http
                    .post(format!("http://{addr}/v1/logins/poll"))
                    .json(&body)
                    .send()
                    .await
                    .map_err(|e| format!("poll: {e}"))?;
                let status = response.status().as_u16();
                let text = response.text().await.map_err(|e| format!("body: {e}"))?;
                Ok::<_, String>((status, text, Instant::now()))
            })
        })
        .collect();
    common::eventually("every long-poll open", async || {
        common::scrape(&http, d.http, "moauth_long_polls_active").await == Some(OPEN_POLLS as f64)
    })
    .await;

    let stopped = Instant::now();
    d.signal(libc::SIGTERM);
    for poll in polls {
        let (status, text, answered) = poll
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("a long-poll got no answer: {e}; logs:\n{}", d.logs.text()));
        assert_eq!(status, 200, "{text}");
        let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(answer, json!({ "state": "pending" }));
        assert!(
            answered - stopped < Duration::from_secs(2),
            "answered {:?} after SIGTERM",
            answered - stopped
        );
    }
    assert_eq!(d.exit_code().await, 0, "logs:\n{}", d.logs.text());
    assert!(
        stopped.elapsed() < stop_timeout(),
        "the daemon took {:?} to stop",
        stopped.elapsed()
    );
    assert!(
        !d.logs.text().contains("aborted"),
        "no task was cut off:\n{}",
        d.logs.text()
    );
}
