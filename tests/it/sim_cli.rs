//! `moauth sim` as an operator runs it, with faults from its flags, from `moauth sim faults`
//! and MOs shaped by `moauth sim send`, and the daemon bound to it over real TCP.

use crate::common;

use std::net::{SocketAddr, TcpListener};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::process::moauth;
use common::{ALICE, PATIENCE, START, poll_login};
use moauth::cli::embedded_config;
use moauth::core::clock::Clock;
use moauth::core::token::{Token, Verifier};
use moauth::daemon::{Daemon, Options};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `moauth sim ARGS…` in the background, once it says it listens.
async fn sim_process(args: &[&str]) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_moauth"))
        .arg("sim")
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    tokio::time::timeout(PATIENCE, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.starts_with("simulator: SMPP") {
                return;
            }
        }
        panic!("moauth sim exited before listening");
    })
    .await
    .expect("moauth sim did not start");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    child
}

async fn json_of(args: &[&str]) -> Value {
    let (code, out, err) = moauth(args).await;
    assert_eq!(code, 0, "moauth {args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[tokio::test]
async fn every_fault_is_set_from_the_command_line() {
    let (smpp, control) = (free_port(), free_port());
    let control_url = format!("http://127.0.0.1:{control}");
    // A host name to listen on; the daemon reaches it by name too (every address tried).
    let _sim = sim_process(&[
        "--listen",
        &format!("localhost:{smpp}"),
        "--control",
        &format!("127.0.0.1:{control}"),
        "--receipts",
        "hex",
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = embedded_config(
        dir.path().join("store"),
        "127.0.0.1:0".parse().unwrap(),
        SocketAddr::from(([127, 0, 0, 1], smpp)),
    );
    config.smsc[0].address = format!("localhost:{smpp}").try_into().unwrap();
    let daemon = Daemon::start(config, Clock::manual(START), Options::default())
        .await
        .unwrap();
    common::eventually("the daemon bound", async || {
        daemon.links.bound().contains(&"sim".to_owned())
    })
    .await;

    let delay = Duration::from_millis(1500);
    let set = json_of(&[
        "sim",
        "faults",
        "--control",
        &control_url,
        "--delay",
        &format!("submit_sm={}", delay.as_millis()),
        "--receipts-first",
    ])
    .await;
    assert_eq!(set["delay_ms"]["submit_sm"], 1500, "{set}");
    assert_eq!(set["receipts_first"], true, "{set}");

    let verifier = Verifier::random();
    let token = Token::for_verifier(&verifier, START);
    let sent_at = Instant::now();
    let acked = json_of(&[
        "sim",
        "send",
        "--control",
        &control_url,
        "--from",
        ALICE,
        "--text",
        &format!("LOGIN {token} -- café"),
        "--data-sm",
        "--latin1",
        "--malformed-concat",
    ])
    .await;
    assert_eq!(acked["statuses"], serde_json::json!([0]), "{acked}");
    let http = common::http_client();
    let (_, answer) = poll_login(&http, daemon.http_addr, &verifier, &token, 10_000).await;
    assert_eq!(answer["state"], "complete", "{answer}");

    // The reply's submit_sm is answered `delay` after it arrived, its receipt before that.
    let submits = common::eventually_ok("a reply submitted", async || {
        let submits = json_of(&["sim", "submits", "--control", &control_url]).await;
        if submits.as_array().is_some_and(|s| !s.is_empty()) {
            Ok(submits)
        } else {
            Err("none yet")
        }
    })
    .await;
    let id = submits[0]["message_id"].as_str().unwrap().to_owned();
    let outcome = common::eventually_ok("the receipt matched", async || {
        let sent = daemon.store.sent_record("sim", &id).await.unwrap();
        sent.and_then(|s| s.outcome).ok_or("not yet")
    })
    .await;
    assert_eq!(outcome, "DELIVRD");
    assert!(
        sent_at.elapsed() >= delay,
        "the submit_sm_resp came only after the delay: {:?}",
        sent_at.elapsed()
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_sim_told_to_listen_on_a_name_that_does_not_resolve_says_so() {
    let (code, _, err) = moauth(&["sim", "--listen", "no-such-smsc.invalid:2775"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no-such-smsc.invalid:2775"), "{err}");
    assert!(err.contains("does not resolve"), "{err}");
}

#[tokio::test]
async fn a_wrong_fault_flag_is_named() {
    let (code, _, err) = moauth(&["sim", "faults", "--delay", "deliver_sm=10"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("submit_sm, enquire_link, bind or unbind"),
        "{err}"
    );
}
