//! Webhooks as a backend receives them: a real HTTP receiver on loopback (tests/it/common/receiver.rs)
//! that verifies every call with `signing::verify`, deduplicates on `event_id` and refuses
//! stale timestamps, as protocol/webhooks.md tells receivers to do.

use crate::common;

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use common::receiver::{Receiver, TOLERANCE_SECS};
use common::{ALICE, BOB, Harness};
use moauth::daemon::{Options, api_key_hash};
use moauth::ops::config::{ApiKey, Config, WebhookConfig};

fn backend(config: &mut Config, name: &str, key: &str, receiver: &Receiver) {
    config.http.api_keys.push(ApiKey {
        name: name.into(),
        sha256: api_key_hash(key),
    });
    config.webhooks.push(WebhookConfig {
        backend: name.into(),
        url: receiver.url(),
        secret: receiver.state.secret.into(),
        allow_plain_http: false,
    });
}

/// Waits until the daemon has no webhook event left to deliver.
async fn queue_drained(h: &Harness) {
    common::eventually("the webhook queue drained", async || {
        h.daemon().store.depths().webhooks == 0
    })
    .await;
}

#[tokio::test]
async fn each_terminal_state_reaches_the_minting_backend_once_signed() {
    let mut shop = Receiver::start("shop-webhook-secret").await;
    let mut crm = Receiver::start("crm-webhook-secret").await;
    let h = Harness::start_with(Options::default(), |c| {
        backend(c, "shop", "shop-key", &shop);
        backend(c, "crm", "crm-key", &crm);
    })
    .await;
    shop.keep_time_with(&h.clock);
    crm.keep_time_with(&h.clock);

    // An app-made token has no backend: it is polled as ever and reported to nobody.
    let (app_verifier, app_token) = h.app_token(0);
    h.phone_sends(BOB, &format!("LOGIN {app_token}")).await;
    let (_, answer) = h.poll(&app_verifier, &app_token, 10_000).await;
    assert_eq!(answer["state"], "complete");

    let (completed_verifier, completed, _) = h.mint("shop-key").await;
    let (_, mistyped, _) = h.mint("shop-key").await;
    let (_, unanswered, _) = h.mint("crm-key").await;

    h.phone_sends(ALICE, &format!("LOGIN {completed}")).await;
    let event = shop.next_event().await;
    assert_eq!(event["state"], "complete");
    assert_eq!(event["token_challenge"], completed.challenge().as_str());
    assert_eq!(event["msisdn"], "+86 138****8000");
    assert_eq!(event["created"], true);
    assert!(event["session"].as_str().is_some_and(|s| s.len() >= 40));
    assert!(event["account_id"].is_string());
    // The webhook was the session's one hand-out.
    let (_, answer) = h.poll(&completed_verifier, &completed, 0).await;
    assert_eq!(answer, serde_json::json!({ "state": "consumed" }));

    let mut typo: Vec<char> = mistyped.to_string().chars().collect();
    let last = typo.last_mut().unwrap();
    *last = if *last == 'Z' { 'Y' } else { 'Z' };
    h.phone_sends(ALICE, &format!("LOGIN {}", typo.iter().collect::<String>()))
        .await;
    let event = shop.next_event().await;
    assert_eq!(event["state"], "rejected");
    assert_eq!(event["reason"], "bad_token");
    assert_eq!(event["token_challenge"], mistyped.challenge().as_str());
    assert!(event.get("session").is_none());

    // No SMS for the third: once its window closes the crm backend hears so, and only it.
    h.clock.advance(601);
    let event = crm.next_event().await;
    assert_eq!(event["state"], "expired");
    assert_eq!(event["token_challenge"], unanswered.challenge().as_str());
    assert_eq!(event["occurred_at"], h.clock.now());

    h.settled_submits(3).await;
    queue_drained(&h).await;
    assert!(
        shop.events.try_recv().is_err(),
        "an event too many for shop"
    );
    assert!(crm.events.try_recv().is_err(), "an event too many for crm");
    let ids: HashSet<String> = shop.state.seen.lock().unwrap().clone();
    assert_eq!(ids.len(), 2);

    // The signature covers the body: a changed one is refused.
    let (header, body) = crm.state.accepted.lock().unwrap()[0].clone();
    let forged = String::from_utf8(body.to_vec())
        .unwrap()
        .replace("expired", "complete");
    let (status, why) = crm.send(header, forged.into()).await;
    assert_eq!(status, 401, "{why}");
    assert!(why.contains("does not match"), "{why}");

    // A captured call sent again is caught: by its event_id while fresh, by its age later.
    assert_eq!(crm.replay(0).await, (200, "duplicate".into()));
    h.clock.advance(TOLERANCE_SECS + 1);
    let (status, why) = crm.replay(0).await;
    assert_eq!(status, 401, "{why}");
    assert!(why.contains("beyond the tolerance"), "{why}");
    assert!(crm.events.try_recv().is_err());
}

#[tokio::test]
async fn a_receiver_that_is_down_gets_the_event_once_it_is_back() {
    let mut shop = Receiver::start("shop-webhook-secret").await;
    shop.state.refuse.store(3, Ordering::SeqCst);
    let h = Harness::start_with(Options::default(), |c| {
        backend(c, "shop", "shop-key", &shop)
    })
    .await;
    shop.keep_time_with(&h.clock);
    let (_, token, _) = h.mint("shop-key").await;
    h.phone_sends(ALICE, &format!("LOGIN {token}")).await;

    let event = shop.next_event().await;
    assert_eq!(event["state"], "complete");
    // Three refusals, each retried after a growing pause, then the one that got through.
    assert_eq!(shop.state.calls.load(Ordering::SeqCst), 4);
    queue_drained(&h).await;
    assert!(shop.events.try_recv().is_err());
}

#[tokio::test]
async fn queued_events_survive_a_daemon_restart() {
    let mut shop = Receiver::start("shop-webhook-secret").await;
    shop.state.refuse.store(usize::MAX, Ordering::SeqCst);
    let mut h = Harness::start_with(Options::default(), |c| {
        backend(c, "shop", "shop-key", &shop)
    })
    .await;
    shop.keep_time_with(&h.clock);
    let (_, token, _) = h.mint("shop-key").await;
    h.phone_sends(ALICE, &format!("LOGIN {token}")).await;
    common::eventually("a webhook call", async || {
        shop.state.calls.load(Ordering::SeqCst) > 0
    })
    .await;
    assert_eq!(h.daemon().store.depths().webhooks, 1);

    h.restart(Options::default()).await;
    shop.state.refuse.store(0, Ordering::SeqCst);
    let event = shop.next_event().await;
    assert_eq!(event["state"], "complete");
    assert_eq!(event["token_challenge"], token.challenge().as_str());
    queue_drained(&h).await;
    assert!(shop.events.try_recv().is_err());
}

#[tokio::test]
async fn a_backlog_queued_while_the_receiver_was_down_arrives_once_each() {
    let mut shop = Receiver::start("shop-webhook-secret").await;
    shop.state.refuse.store(usize::MAX, Ordering::SeqCst);
    let h = Harness::start_with(Options::default(), |c| {
        backend(c, "shop", "shop-key", &shop)
    })
    .await;
    shop.keep_time_with(&h.clock);
    let mut challenges = HashSet::new();
    for _ in 0..5 {
        let (_, token, _) = h.mint("shop-key").await;
        h.phone_sends(ALICE, &format!("LOGIN {token}")).await;
        challenges.insert(token.challenge().as_str().to_owned());
    }
    common::eventually("five events queued and one call tried", async || {
        h.daemon().store.depths().webhooks >= 5 && shop.state.calls.load(Ordering::SeqCst) > 0
    })
    .await;

    shop.state.refuse.store(0, Ordering::SeqCst);
    let mut delivered = HashSet::new();
    for _ in 0..5 {
        let event = shop.next_event().await;
        assert_eq!(event["state"], "complete");
        assert!(delivered.insert(event["token_challenge"].as_str().unwrap().to_owned()));
    }
    assert_eq!(delivered, challenges);
    queue_drained(&h).await;
    assert!(shop.events.try_recv().is_err());
}
