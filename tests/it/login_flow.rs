//! The whole flow over real SMPP and HTTP on loopback: issue "One SMS logs a person in".

use crate::common;

use std::collections::BTreeSet;
use std::time::Instant;

use common::{ALICE, BOB, Harness, PATIENCE};
use moauth::core::mo::MoMessage;
use moauth::core::store::{IngestStore, StoreBase};
use moauth::daemon::Options;
use serde_json::json;

#[tokio::test]
async fn new_number_gets_account_credentials_sms_and_session_on_poll() {
    let h = Harness::start().await;
    let (verifier, token) = h.app_token(5);
    let acked = h.phone_sends(ALICE, &format!("LOGIN {token}")).await;
    assert_eq!(acked.statuses, [0], "deliver_sm_resp must be OK");

    let (status, answer) = h.poll(&verifier, &token, 10_000).await;
    assert_eq!(status, 200);
    assert_eq!(answer["state"], "complete");
    assert_eq!(answer["created"], true);
    assert_eq!(answer["msisdn"], "+86 138****8000");
    assert_eq!(answer["session"].as_str().unwrap().len(), 43);

    let sms = h.settled_submits(1).await;
    assert_eq!(sms[0].to, ALICE);
    assert_eq!(sms[0].from, "10690000");
    assert!(sms[0].text.contains("+8613800138000"), "{}", sms[0].text);
    assert!(sms[0].text.contains("password "), "{}", sms[0].text);
    assert_eq!(h.daemon().store.account_count().await.unwrap(), 1);
}

#[tokio::test]
async fn same_number_again_gets_same_account_and_no_credentials_sms() {
    let h = Harness::start().await;
    let (v1, t1) = h.app_token(0);
    h.phone_sends(ALICE, &format!("LOGIN {t1}")).await;
    let (_, first) = h.poll(&v1, &t1, 10_000).await;
    h.settled_submits(1).await;

    let (v2, t2) = h.app_token(0);
    h.phone_sends(ALICE, &format!("l {}", t2.compact().to_lowercase()))
        .await;
    let (_, second) = h.poll(&v2, &t2, 10_000).await;
    assert_eq!(second["state"], "complete");
    assert_eq!(second["created"], false);
    assert_eq!(second["account_id"], first["account_id"]);
    assert_ne!(second["session"], first["session"]);
    h.settled_submits(1).await;
    assert_eq!(h.daemon().store.account_count().await.unwrap(), 1);
}

#[tokio::test]
async fn bad_check_symbol_gets_error_sms_and_rejected_bad_token() {
    let h = Harness::start().await;
    let (verifier, token) = h.app_token(0);
    let mut text: Vec<char> = token.to_string().chars().collect();
    let last = text.last_mut().unwrap();
    *last = if *last == 'Z' { 'Y' } else { 'Z' };
    let typo: String = text.into_iter().collect();
    let acked = h.phone_sends(ALICE, &format!("LOGIN {typo}")).await;
    assert_eq!(acked.statuses, [0], "a bad token is still acknowledged");

    let sms = h.settled_submits(1).await;
    assert!(sms[0].text.contains("not valid"), "{}", sms[0].text);
    let (_, answer) = h.poll(&verifier, &token, 0).await;
    assert_eq!(
        answer,
        json!({ "state": "rejected", "reason": "bad_token" })
    );
    assert_eq!(h.daemon().store.account_count().await.unwrap(), 0);
}

#[tokio::test]
async fn replayed_token_from_another_phone_is_rejected() {
    let h = Harness::start().await;
    let (verifier, token) = h.app_token(0);
    h.phone_sends(ALICE, &format!("LOGIN {token}")).await;
    h.settled_submits(1).await;
    h.phone_sends(BOB, &format!("LOGIN {token}")).await;

    let sms = h.settled_submits(2).await;
    assert_eq!(sms[1].to, BOB);
    assert!(sms[1].text.contains("already used"), "{}", sms[1].text);
    let (_, answer) = h.poll(&verifier, &token, 0).await;
    assert_eq!(answer, json!({ "state": "rejected", "reason": "replayed" }));
}

#[tokio::test]
async fn replay_after_the_session_was_collected_only_gets_an_error_sms() {
    let h = Harness::start().await;
    let (verifier, token) = h.app_token(0);
    h.phone_sends(ALICE, &format!("LOGIN {token}")).await;
    assert_eq!(
        h.poll(&verifier, &token, 10_000).await.1["state"],
        "complete"
    );
    h.phone_sends(BOB, &format!("LOGIN {token}")).await;
    // ALICE's credentials and BOB's error, in whichever order the registrar's hash allows.
    let sms = h.settled_submits(2).await;
    let to: BTreeSet<&str> = sms.iter().map(|s| s.to.as_str()).collect();
    assert_eq!(to, BTreeSet::from([ALICE, BOB]));
    assert_eq!(h.poll(&verifier, &token, 0).await.1["state"], "consumed");
    assert_eq!(h.daemon().store.account_count().await.unwrap(), 1);
}

#[tokio::test]
async fn token_outside_the_window_is_expired() {
    let h = Harness::start().await;
    let (verifier, token) = h.app_token(601);
    h.phone_sends(ALICE, &format!("LOGIN {token}")).await;
    let sms = h.settled_submits(1).await;
    assert!(sms[0].text.contains("expired"), "{}", sms[0].text);
    assert_eq!(
        h.poll(&verifier, &token, 0).await.1,
        json!({ "state": "expired" })
    );
    assert_eq!(h.daemon().store.account_count().await.unwrap(), 0);

    let (never_sent_v, never_sent) = h.app_token(0);
    assert_eq!(
        h.poll(&never_sent_v, &never_sent, 0).await.1,
        json!({ "state": "pending" })
    );
    h.clock.advance(601);
    assert_eq!(
        h.poll(&never_sent_v, &never_sent, 0).await.1,
        json!({ "state": "expired" })
    );
}

#[tokio::test]
async fn poll_with_a_verifier_that_does_not_match_is_refused() {
    let h = Harness::start().await;
    let (_, token) = h.app_token(0);
    let (stranger, _) = h.app_token(0);
    h.phone_sends(ALICE, &format!("LOGIN {token}")).await;
    let (status, answer) = h.poll(&stranger, &token, 0).await;
    assert_eq!(status, 403);
    assert_eq!(answer["error"], "verifier_mismatch");
}

#[tokio::test]
async fn long_poll_returns_as_soon_as_the_mo_is_processed() {
    let h = Harness::start().await;
    let (verifier, token) = h.app_token(0);
    let started = Instant::now();
    let (answer, _) = tokio::join!(h.poll(&verifier, &token, 30_000), async {
        // Sent only once the poll is waiting on its login (the store's notifier holds it).
        common::eventually("the long-poll waiting", async || {
            h.daemon().store.poll_waiters() == 1
        })
        .await;
        h.phone_sends(ALICE, &format!("LOGIN {token}")).await
    });
    assert_eq!(answer.1["state"], "complete");
    assert!(
        started.elapsed() < PATIENCE,
        "long-poll waited for its timeout"
    );
}

#[tokio::test]
async fn second_poll_of_a_completed_login_is_consumed() {
    let h = Harness::start().await;
    let (verifier, token) = h.app_token(0);
    h.phone_sends(ALICE, &format!("LOGIN {token}")).await;
    assert_eq!(
        h.poll(&verifier, &token, 10_000).await.1["state"],
        "complete"
    );
    assert_eq!(
        h.poll(&verifier, &token, 0).await.1,
        json!({ "state": "consumed" })
    );
}

#[tokio::test]
async fn acknowledged_mo_survives_a_restart_before_processing() {
    let mut h = Harness::start_with(Options { hold_inbox: true }, |_| {}).await;
    let (verifier, token) = h.app_token(0);
    let acked = h.phone_sends(ALICE, &format!("LOGIN {token}")).await;
    assert_eq!(acked.statuses, [0]);
    assert_eq!(h.daemon().store.depths().inbox, 1);
    assert_eq!(h.poll(&verifier, &token, 0).await.1["state"], "pending");

    h.restart(Options::default()).await;
    let (_, answer) = h.poll(&verifier, &token, 10_000).await;
    assert_eq!(answer["state"], "complete");
    assert_eq!(answer["created"], true);
    h.settled_submits(1).await;
    assert_eq!(h.daemon().store.depths().inbox, 0);
}

#[tokio::test]
async fn stop_and_help_are_answered_from_templates() {
    let h = Harness::start().await;
    h.phone_sends(ALICE, "HELP").await;
    h.settled_submits(1).await;
    h.phone_sends(ALICE, " stop ").await;
    let sms = h.settled_submits(2).await;
    assert!(sms[0].text.contains("tap"), "{}", sms[0].text);
    assert!(sms[1].text.contains("no more messages"), "{}", sms[1].text);
}

#[tokio::test]
async fn chinese_templates_go_out_as_ucs2() {
    let h = Harness::start_with(Options::default(), |c| {
        c.templates.language = moauth::ops::config::Language::Zh;
    })
    .await;
    let (verifier, token) = h.app_token(0);
    h.phone_sends(ALICE, &format!("登录{token}")).await;
    assert_eq!(
        h.poll(&verifier, &token, 10_000).await.1["state"],
        "complete"
    );
    let sms = h.settled_submits(1).await;
    assert_eq!(sms[0].data_coding, 8);
    assert!(
        sms[0].text.starts_with("【moauth】您的账号已创建"),
        "{}",
        sms[0].text
    );
}

#[tokio::test]
async fn token_sent_twice_in_one_round_of_the_pipeline_is_a_replay_the_second_time() {
    let mut h = Harness::start().await;
    let (verifier, token) = h.app_token(0);
    let now = h.clock.now();
    // Both MOs wait in the inbox before the pipeline starts, so one round decides both.
    h.restart_after(Options::default(), |store| async move {
        // The stopped daemon's last tasks may hold the store a moment longer.
        let store = common::eventually_ok("the stopped daemon's store", async || {
            moauth::store::sled::SledStore::open(&store, 16)
        })
        .await;
        let mos: Vec<MoMessage> = [ALICE, BOB]
            .iter()
            .map(|from| MoMessage {
                smsc: "sim".into(),
                source_addr: from.trim_start_matches('+').into(),
                source_ton: 1,
                destination_addr: "10690000".into(),
                esm_class: 0,
                data_coding: 1,
                user_data: format!("LOGIN {token}").into_bytes(),
                sar: None,
                received_at: now,
            })
            .collect();
        store.append_mos(&mos, 600).await.unwrap();
        store.sync().await.unwrap();
    })
    .await;

    let mut sms = h.settled_submits(2).await;
    // The credentials follow their hash, so they may come after BOB's error.
    sms.sort_by(|a, b| a.to.cmp(&b.to));
    assert_eq!((sms[0].to.as_str(), sms[1].to.as_str()), (ALICE, BOB));
    assert!(sms[0].text.contains("password "), "{}", sms[0].text);
    assert!(sms[1].text.contains("already used"), "{}", sms[1].text);
    let (_, answer) = h.poll(&verifier, &token, 0).await;
    assert_eq!(answer, json!({ "state": "rejected", "reason": "replayed" }));
    assert_eq!(h.daemon().store.account_count().await.unwrap(), 1);
}
