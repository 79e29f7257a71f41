//! The SMS keywords (issues #14 item 9, #16, #17 item 4): STOP and START, PASSWORD, LOGOUT, and
//! the login notice, from a phone over real SMPP, checked over real HTTP.

use crate::common;

use common::{ALICE, BOB, Harness};
use moauth::http::config::ApiKey;
use moauth::http::keys::api_key_hash;
use serde_json::{Value, json};

const KEY: &str = "shop-key";

async fn harness(tweak: impl FnOnce(&mut moauth::ops::config::Config)) -> Harness {
    Harness::start_with(Default::default(), |c| {
        c.http.api_keys = vec![ApiKey {
            name: "shop".into(),
            sha256: api_key_hash(KEY),
        }];
        c.templates.app = Some("shop".into());
        tweak(c);
    })
    .await
}

async fn sms_login(h: &Harness, from: &str) -> Value {
    let (verifier, token) = h.app_token(0);
    h.phone_sends(from, &format!("LOGIN {token} shop")).await;
    let (status, answer) = h.poll(&verifier, &token, 10_000).await;
    assert_eq!((status, answer["state"].as_str()), (200, Some("complete")));
    answer
}

async fn active(h: &Harness, session: &Value) -> bool {
    let answer: Value = h
        .http
        .post(h.api("/v1/sessions/introspect"))
        .bearer_auth(KEY)
        .json(&json!({ "token": session }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["active"].as_bool().unwrap()
}

async fn password_login(h: &Harness, login: &str, password: &str) -> u16 {
    h.http
        .post(h.api("/v1/password-logins"))
        .json(&json!({ "login": login, "password": password }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn stop_silences_every_sms_until_start_and_logins_still_work() {
    let h = harness(|_| {}).await;
    h.phone_sends(ALICE, "退订").await;
    let sms = h.settled_submits(1).await;
    assert!(sms[0].text.contains("no more messages"), "{}", sms[0].text);

    h.phone_sends(ALICE, "HELP").await;
    h.phone_sends(ALICE, "LOGIN 1234").await;
    let login = sms_login(&h, ALICE).await;
    assert_eq!(login["created"], true, "the login works, silently");
    h.settled_submits(1).await;

    h.phone_sends(ALICE, "start").await;
    let sms = h.settled_submits(2).await;
    assert!(sms[1].text.contains("messages again"), "{}", sms[1].text);
    // Not "HELP" again: the same PDU within the redelivery window is taken for a redelivery.
    h.phone_sends(ALICE, "help").await;
    let sms = h.settled_submits(3).await;
    assert!(sms[2].text.contains("tap"), "{}", sms[2].text);

    let series = "moauth_sms_suppressed_total{reason=\"opted_out\"}";
    let suppressed = common::scrape(&h.http, h.daemon().http_addr, series)
        .await
        .unwrap();
    assert!(
        suppressed >= 3.0,
        "HELP, the error and the credentials: {suppressed}"
    );
}

#[tokio::test]
async fn password_texts_a_new_one_and_the_old_one_stops_working() {
    let h = harness(|_| {}).await;
    sms_login(&h, ALICE).await;
    let sms = h.settled_submits(1).await;
    let old = common::texted_password(&sms[0].text);
    assert_eq!(password_login(&h, ALICE, &old).await, 200);

    h.phone_sends(ALICE, "密码").await;
    let sms = h.settled_submits(2).await;
    assert!(sms[1].text.contains("new password"), "{}", sms[1].text);
    let new = common::texted_password(&sms[1].text);
    assert_ne!(new, old);
    assert_eq!(password_login(&h, ALICE, &old).await, 401);
    assert_eq!(password_login(&h, ALICE, &new).await, 200);

    h.phone_sends(BOB, "PASSWORD").await;
    let sms = h.settled_submits(3).await;
    assert_eq!(sms[2].to, BOB);
    assert!(sms[2].text.contains("no account"), "{}", sms[2].text);
    assert_eq!(h.daemon().store.account_count().await.unwrap(), 1);
}

#[tokio::test]
async fn password_over_the_reply_limit_changes_nothing() {
    let h = harness(|c| c.limits.error_sms_per_number_per_hour = 1).await;
    sms_login(&h, ALICE).await;
    let sms = h.settled_submits(1).await;
    let old = common::texted_password(&sms[0].text);
    h.phone_sends(ALICE, "HELP").await;
    h.settled_submits(2).await;
    h.phone_sends(ALICE, "PASSWORD").await;
    h.phone_sends(ALICE, "help").await;
    common::eventually("the inbox to empty", async || {
        h.daemon().store.depths().inbox == 0
    })
    .await;
    h.settled_submits(2).await;
    assert_eq!(
        password_login(&h, ALICE, &old).await,
        200,
        "a new password that could not be texted was never made"
    );
}

#[tokio::test]
async fn logout_ends_every_session_of_the_number_and_no_other() {
    let h = harness(|_| {}).await;
    let first = sms_login(&h, ALICE).await;
    let second = sms_login(&h, ALICE).await;
    let bob = sms_login(&h, BOB).await;
    h.settled_submits(2).await;
    h.phone_sends(ALICE, "logout").await;
    let sms = h.settled_submits(3).await;
    assert_eq!(sms[2].to, ALICE);
    assert!(sms[2].text.contains("has ended"), "{}", sms[2].text);
    assert!(!active(&h, &first["session"]).await);
    assert!(!active(&h, &second["session"]).await);
    assert!(active(&h, &bob["session"]).await);
}

#[tokio::test]
async fn notify_logins_texts_an_existing_account_after_each_login() {
    let h = harness(|c| c.login.notify_logins = true).await;
    sms_login(&h, ALICE).await;
    let sms = h.settled_submits(1).await;
    assert!(
        sms[0].text.contains("password"),
        "a new account gets its credentials only"
    );
    h.clock.advance(60);
    sms_login(&h, ALICE).await;
    let sms = h.settled_submits(2).await;
    assert_eq!(
        sms[1].text,
        format!(
            "You logged in to shop at {} UTC. Not you? Text LOGOUT to end every session.",
            hh_mm(h.clock.now())
        )
    );
}

#[tokio::test]
async fn without_notify_logins_a_returning_number_gets_no_sms() {
    let h = harness(|_| {}).await;
    sms_login(&h, ALICE).await;
    sms_login(&h, ALICE).await;
    h.settled_submits(1).await;
}

fn hh_mm(at: u64) -> String {
    let minute = at % 86_400 / 60;
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

/// With a remote auth core, LOGOUT is a signed call to `[auth.remote] logout_url`.
#[tokio::test]
async fn logout_with_a_remote_core_is_a_signed_call_naming_the_number() {
    use axum::body::Bytes;
    use axum::http::HeaderMap;
    use tokio::sync::mpsc;

    let (tx, mut calls) = mpsc::unbounded_channel::<(HeaderMap, Bytes)>();
    let app = axum::Router::new().route(
        "/logout",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            async move {
                tx.send((headers, body)).unwrap();
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let h = harness(|c| {
        let mut remote = crate::remote_auth::remote_config(format!("http://{addr}/login"));
        remote.logout_url = Some(format!("http://{addr}/logout"));
        c.auth.mode = moauth::ops::config::AuthMode::Remote;
        c.auth.remote = Some(remote);
    })
    .await;
    h.phone_sends(ALICE, "LOGOUT").await;
    let (headers, body) = tokio::time::timeout(common::PATIENCE, calls.recv())
        .await
        .unwrap()
        .unwrap();
    let signature = headers[moauth::signing::HEADER].to_str().unwrap();
    moauth::signing::verify(
        crate::remote_auth::SECRET.as_bytes(),
        signature,
        &body,
        h.clock.now(),
        300,
    )
    .unwrap();
    let call: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        call,
        json!({ "event": "logout", "msisdn": ALICE, "requested_at": h.clock.now() })
    );
    let sms = h.settled_submits(1).await;
    assert!(sms[0].text.contains("has ended"), "{}", sms[0].text);
}
