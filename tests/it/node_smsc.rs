//! The login flow end to end over node-smpp (npm `smpp` 0.5.1, `tests/peers/node-smsc`), an
//! SMSC implementation moauth shares no code with, beside python-smpplib
//! (`sim_vs_smpplib.rs`) and the hand-written PDUs of `foreign_smsc.rs`.
//!
//! `.ci/run` installs node-smpp under `target/tmp/node-smsc` (npm ci from the committed
//! package-lock.json); on a developer's machine the test does that itself when npm is there,
//! and is skipped without Node.js unless CI=true.

use crate::common;

use std::path::Path;

use common::node_smsc::NodeSmsc;
use common::{ALICE, PATIENCE, START, poll_login};
use moauth::cli::{SIM_PASSWORD, SIM_SYSTEM_ID, embedded_config};
use moauth::core::clock::Clock;
use moauth::core::token::{Token, Verifier};
use moauth::daemon::{Daemon, Options};
use serde_json::json;

/// node-smpp's SMSC, or None (test skipped) where Node.js is missing outside CI.
async fn node_smsc() -> Option<NodeSmsc> {
    let node = std::process::Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "Node.js is required for the node-smpp interop test"
        );
        eprintln!("skipped: no Node.js for node-smpp");
        return None;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("node-smsc");
    Some(
        NodeSmsc::start(&dir, SIM_SYSTEM_ID, SIM_PASSWORD)
            .await
            .unwrap(),
    )
}

/// The phone texting the short code through node-smpp; its deliver_sm_resp status.
async fn phone_sends(smsc: &NodeSmsc, text: &str) -> serde_json::Value {
    let answer = smsc
        .request(json!({ "cmd": "mo", "from": ALICE, "to": "10690000", "text": text }))
        .await
        .unwrap();
    answer["status"].clone()
}

#[tokio::test]
async fn a_new_number_logs_in_and_gets_its_credentials_through_node_smpp() {
    let Some(smsc) = node_smsc().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = embedded_config(
        dir.path().join("store"),
        "127.0.0.1:0".parse().unwrap(),
        smsc.addr,
    );
    let daemon = Daemon::start(config, Clock::manual(START), Options::default())
        .await
        .unwrap();
    assert!(smsc.wait_bound(1, PATIENCE).await, "no bind_transceiver");
    let http = common::http_client();

    // A new number: the login completes and the credentials SMS goes back through node-smpp.
    let verifier = Verifier::random();
    let token = Token::for_verifier(&verifier, START);
    assert_eq!(phone_sends(&smsc, &format!("LOGIN {token}")).await, 0);
    let (_, answer) = poll_login(&http, daemon.http_addr, &verifier, &token, 10_000).await;
    assert_eq!(answer["state"], "complete", "{answer}");
    let sms = smsc.wait_submits(1, PATIENCE).await;
    assert_eq!(sms.len(), 1, "{sms:?}");
    assert_eq!(sms[0]["from"], "10690000");
    assert_eq!(sms[0]["to"], ALICE.trim_start_matches('+'));
    assert_eq!(sms[0]["data_coding"], 0);
    let text = sms[0]["text"].as_str().unwrap();
    assert!(text.contains("password"), "{text}");

    // The same number again: logged in, no second credentials SMS. HELP's reply is then the
    // next SMS node-smpp sees, so nothing was sent in between.
    let verifier = Verifier::random();
    let token = Token::for_verifier(&verifier, START + 1);
    assert_eq!(phone_sends(&smsc, &format!("login {token}")).await, 0);
    let (_, answer) = poll_login(&http, daemon.http_addr, &verifier, &token, 10_000).await;
    assert_eq!(answer["state"], "complete", "{answer}");
    assert_eq!(phone_sends(&smsc, "HELP").await, 0);
    let sms = smsc.wait_submits(2, PATIENCE).await;
    assert_eq!(sms.len(), 2, "{sms:?}");
    let help = sms[1]["text"].as_str().unwrap();
    assert!(help.contains("to log in"), "{help}");

    daemon.shutdown().await;
}
