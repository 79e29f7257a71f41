//! SMPP the way carriers speak it, outbound and on the link: window, TPS cap, throttling, and
//! an SMSC that drops, refuses or talks garbage. Every case crosses real TCP.

use crate::common;

use common::{ALICE, Harness, PATIENCE, eventually, help_from};
use moauth::daemon::Options;
use moauth::sim::Deliver;

#[tokio::test]
async fn the_window_of_outstanding_submits_is_never_exceeded() {
    let h = Harness::start_with(Options::default(), |c| c.smsc[0].window = 4).await;
    h.sim.hold_responses(true);
    let mos: Vec<Deliver> = (0..12).map(help_from).collect();
    h.sim.deliver(&mos).await.unwrap();
    assert_eq!(h.sim.wait_outstanding(4, PATIENCE).await, 4);
    let store = h.daemon().store.clone();
    eventually("all replies queued", async || {
        store.depths().inbox == 0 && store.depths().outbox == 12
    })
    .await;
    h.sim.hold_responses(false);
    h.settled_submits(12).await;
    assert_eq!(h.sim.max_outstanding(), 4);
}

#[tokio::test]
async fn the_tps_cap_holds_over_a_few_hundred_messages() {
    let h = Harness::start_with(Options::default(), |c| {
        c.smsc[0].max_tps = 100;
        c.smsc[0].window = 20;
    })
    .await;
    let mos: Vec<Deliver> = (0..200).map(help_from).collect();
    h.sim.deliver(&mos).await.unwrap();
    h.settled_submits(200).await;
    let times = h.sim.submit_times();
    let span = times[times.len() - 1]
        .duration_since(times[0])
        .as_secs_f64();
    let rate = (times.len() - 1) as f64 / span;
    assert!(
        rate <= 105.0,
        "{rate:.1} submit_sm/s over {span:.2} s exceeds the cap of 100"
    );
}

#[tokio::test]
async fn a_throttled_submit_is_retried_and_delivered() {
    let h = Harness::start().await;
    h.sim.throttle_next_submits(2);
    h.phone_sends(ALICE, "HELP").await;
    let sms = h.settled_submits(1).await;
    assert!(sms[0].text.contains("tap"));
    assert_eq!(
        h.sim.submit_times().len(),
        3,
        "two throttled attempts, then the one accepted"
    );
}

#[tokio::test]
async fn an_mo_whose_resp_was_lost_is_redelivered_and_processed_once() {
    let h = Harness::start().await;
    let (verifier, token) = h.app_token(0);
    let mo = Deliver {
        from: ALICE.into(),
        data_coding: 1,
        short_message: format!("LOGIN {token}").into_bytes(),
        ..Deliver::default()
    };
    h.sim.deliver_then_drop(&mo).await.unwrap();
    assert!(
        h.sim.wait_bound(1, PATIENCE).await,
        "daemon did not reconnect"
    );
    let attempts = h.sim.wait_bind_attempts(2, PATIENCE).await;
    assert_eq!(attempts.len(), 2);
    assert!(h.sim.wait_bound(1, PATIENCE).await);
    let acked = h.sim.deliver(&[mo]).await.unwrap();
    assert_eq!(acked.statuses, [0], "the redelivery is acknowledged");
    let (_, answer) = h.poll(&verifier, &token, 10_000).await;
    assert_eq!(answer["state"], "complete");
    h.settled_submits(1).await;
    assert_eq!(h.daemon().store.account_count().await.unwrap(), 1);
}

#[tokio::test]
async fn acknowledged_mos_survive_the_smsc_dropping_the_connection() {
    let h = Harness::start().await;
    let mos: Vec<Deliver> = (0..20).map(help_from).collect();
    h.sim.deliver(&mos).await.unwrap();
    h.sim.drop_connections().await;
    h.sim.wait_bind_attempts(2, PATIENCE).await;
    assert!(h.sim.wait_bound(1, PATIENCE).await);
    h.sim.wait_submits(20, PATIENCE).await;
    tokio::time::timeout(PATIENCE, h.daemon().store.outbox_drained())
        .await
        .unwrap();
    // At-least-once: a reply whose submit_sm_resp was cut off by the drop is sent again.
    let answered: std::collections::BTreeSet<String> =
        h.sim.submits().into_iter().map(|s| s.to).collect();
    let asked: std::collections::BTreeSet<String> = (0..20).map(|i| help_from(i).from).collect();
    assert_eq!(answered, asked);
}

#[tokio::test]
async fn refused_binds_back_off_instead_of_looping() {
    let h = Harness::start().await;
    h.sim.refuse_binds(true);
    h.sim.drop_connections().await;
    let attempts = h.sim.wait_bind_attempts(5, PATIENCE).await;
    assert_eq!(attempts.len(), 5);
    let gaps: Vec<f64> = attempts
        .windows(2)
        .skip(1)
        .map(|w| w[1].duration_since(w[0]).as_secs_f64())
        .collect();
    assert!(gaps[0] >= 0.2, "first retry after {:.3} s", gaps[0]);
    assert!(
        gaps[2] >= 2.0 * gaps[0] * 0.9,
        "backoff does not grow: {gaps:?}"
    );
    h.sim.refuse_binds(false);
    assert!(
        h.sim.wait_bound(1, PATIENCE).await,
        "daemon gave up instead of retrying"
    );
}

#[tokio::test]
async fn garbage_on_the_socket_drops_the_connection_and_the_daemon_recovers() {
    let h = Harness::start().await;
    h.sim
        .send_garbage(b"\x00\x00\x00\x03garbage".to_vec())
        .await
        .unwrap();
    h.sim.wait_bind_attempts(2, PATIENCE).await;
    assert!(h.sim.wait_bound(1, PATIENCE).await);
    let (verifier, token) = h.app_token(0);
    h.phone_sends(ALICE, &format!("LOGIN {token}")).await;
    assert_eq!(
        h.poll(&verifier, &token, 10_000).await.1["state"],
        "complete"
    );
}

#[tokio::test]
async fn a_temporary_refusal_is_retried_and_a_permanent_one_dropped() {
    let h = Harness::start().await;
    h.sim.refuse_next_submits(1, 0x08);
    h.phone_sends(ALICE, "HELP").await;
    h.settled_submits(1).await;
    assert_eq!(h.sim.submit_times().len(), 2, "ESME_RSYSERR, then accepted");

    h.sim.refuse_next_submits(1, 0x0B);
    h.phone_sends(ALICE, "STOP").await;
    tokio::time::timeout(PATIENCE, h.daemon().store.outbox_drained())
        .await
        .unwrap();
    assert_eq!(
        h.sim.submit_times().len(),
        3,
        "ESME_RINVDSTADR is final: no retry"
    );
    assert_eq!(h.sim.submits().len(), 1);
}

#[tokio::test]
async fn a_receiver_and_transmitter_pair_carries_the_login() {
    let h = Harness::start_with(Options::default(), |c| {
        c.smsc[0].bind = moauth::ops::config::BindMode::Pair;
    })
    .await;
    assert!(
        h.sim.wait_bound(2, PATIENCE).await,
        "both halves of the pair bind"
    );
    let (verifier, token) = h.app_token(0);
    h.phone_sends(ALICE, &format!("LOGIN {token}")).await;
    assert_eq!(
        h.poll(&verifier, &token, 10_000).await.1["state"],
        "complete"
    );
    h.settled_submits(1).await;
    let ready = h.readyz().await;
    assert_eq!(
        ready["smsc_bound"],
        serde_json::json!(["sim/receiver", "sim/transmitter"])
    );
}
