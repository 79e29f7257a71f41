//! Holes a security review found and reproduced, each shown closed over real sockets: a key
//! collecting logins it did not mint, half-sent requests exhausting the daemon, webhooks
//! following redirects.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::process::Spawned;
use common::receiver::Receiver;
use common::{ALICE, BOB, Harness, PATIENCE};
use moauth::daemon::{Options, api_key_hash};
use moauth::ops::config::{ApiKey, WebhookConfig};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn key(name: &str, secret: &str) -> ApiKey {
    ApiKey {
        name: name.into(),
        sha256: api_key_hash(secret),
    }
}

async fn lookup(h: &Harness, token: &moauth::core::token::Token, bearer: &str) -> (u16, Value) {
    let response = h
        .http
        .get(h.api(&format!("/v1/logins/{}", token.compact())))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn a_key_collects_only_the_logins_it_minted() {
    let h = Harness::start_with(Options::default(), |c| {
        c.http.api_keys = vec![key("shop", "shop-key"), key("crm", "crm-key")];
    })
    .await;
    let (_, minted, _) = h.mint("shop-key").await;
    let (app_verifier, app_token) = h.app_token(0);
    h.phone_sends(ALICE, &format!("LOGIN {minted}")).await;
    h.phone_sends(BOB, &format!("LOGIN {app_token}")).await;
    h.settled_submits(2).await;

    // Another backend's login and an app's login: the token alone is not enough.
    for token in [&minted, &app_token] {
        let (status, answer) = lookup(&h, token, "crm-key").await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (403, Some("not_your_login"))
        );
    }
    let (status, answer) = lookup(&h, &app_token, "shop-key").await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (403, Some("not_your_login"))
    );

    // Nothing was handed out by those attempts: the owners still collect.
    let (status, answer) = lookup(&h, &minted, "shop-key").await;
    assert_eq!((status, answer["state"].as_str()), (200, Some("complete")));
    let (status, answer) = h.poll(&app_verifier, &app_token, 0).await;
    assert_eq!((status, answer["state"].as_str()), (200, Some("complete")));
}

/// Opens `count` connections to `addr`, each with a request head that never ends.
async fn half_sent_requests(addr: std::net::SocketAddr, count: usize) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(count);
    for _ in 0..count {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: moauth\r\nX-Slow: 1")
            .await
            .unwrap();
        held.push(stream);
    }
    held
}

#[tokio::test]
async fn half_sent_requests_are_closed_and_leave_the_daemon_its_descriptors() {
    // As reproduced: the daemon allowed 300 descriptors, more half-sent requests than that.
    // The keys land in the base config's [http] table.
    let d =
        Spawned::start_with_open_files("header_read_timeout_secs = 2\nidle_timeout_secs = 2", 300)
            .await;
    let mut held = half_sent_requests(d.http, 400).await;

    // The SMPP link loses its connection under the attack and needs a descriptor to come back.
    let binds = d.sim.bind_attempts().len();
    d.sim.drop_connections().await;
    let attempts = d.sim.wait_bind_attempts(binds + 1, PATIENCE).await;
    assert!(
        attempts.len() > binds,
        "the SMPP link could not reconnect; logs:\n{}",
        d.logs.text()
    );
    assert!(
        d.sim.wait_bound(1, PATIENCE).await,
        "the SMPP link did not bind again; logs:\n{}",
        d.logs.text()
    );

    let http = common::http_client();
    let health = tokio::time::timeout(
        PATIENCE,
        http.get(format!("http://{}/healthz", d.http)).send(),
    )
    .await
    .expect("/healthz did not answer")
    .unwrap();
    assert_eq!(health.status(), 200);

    // Every half-sent request is closed by the daemon, none left hanging.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    for stream in &mut held {
        let mut buf = [0u8; 512];
        loop {
            match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
                Ok(Ok(0) | Err(_)) => break,
                Ok(Ok(_)) => continue,
                Err(_) => panic!("a half-sent request was still open after {PATIENCE:?}"),
            }
        }
    }
    // A new client: the daemon closed the idle one's kept-alive connection by now.
    let ready: Value = common::http_client()
        .get(format!("http://{}/readyz", d.http))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["smsc_bound"], serde_json::json!(["sim"]));
}

/// A webhook receiver that answers every call with a 307 to `to`, counting the calls.
async fn redirector(to: String) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let app = axum::Router::new().route(
        "/events",
        axum::routing::post(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            let to = to.clone();
            async move { axum::response::Redirect::temporary(&to) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, calls)
}

#[tokio::test]
async fn a_webhook_redirect_is_not_followed_with_the_session() {
    let elsewhere = Receiver::start("shop-webhook-secret").await;
    let (redirecting, calls) = redirector(elsewhere.url()).await;
    let h = Harness::start_with(Options::default(), |c| {
        c.http.api_keys = vec![key("shop", "shop-key")];
        c.webhooks = vec![WebhookConfig {
            backend: "shop".into(),
            url: format!("http://{redirecting}/events"),
            secret: "shop-webhook-secret".into(),
            allow_plain_http: false,
        }];
    })
    .await;
    elsewhere.keep_time_with(&h.clock);
    let (_, token, _) = h.mint("shop-key").await;
    h.phone_sends(ALICE, &format!("LOGIN {token}")).await;

    // The 307 is a failed delivery: the event stays queued and is tried again after a pause,
    // which starts only once the first attempt (redirect and all) is over.
    common::eventually(
        "the webhook retried (else the redirect was taken as delivered)",
        async || calls.load(Ordering::SeqCst) >= 2,
    )
    .await;
    assert_eq!(
        elsewhere.state.calls.load(Ordering::SeqCst),
        0,
        "the signed event with the session went to the Location"
    );
    assert_ne!(h.daemon().store.depths().webhooks, 0);
}

#[tokio::test]
async fn a_future_dated_token_is_refused_and_its_record_kept_only_result_ttl() {
    let h = Harness::start().await;
    let ttl = h.config.login.result_ttl_secs;
    let verifier = moauth::core::token::Verifier::random();
    // About a thousand years ahead, as an attacker may write it.
    let far = h.clock.now() + 1_000 * 365 * 86_400;
    let token = moauth::core::token::Token::for_verifier(&verifier, far);
    h.phone_sends(ALICE, &format!("LOGIN {token}")).await;
    h.settled_submits(1).await;
    let (_, answer) = h.poll(&verifier, &token, 0).await;
    assert_eq!(answer["reason"], "bad_token");

    let record = h
        .daemon()
        .store
        .login(&token.challenge())
        .await
        .unwrap()
        .unwrap();
    assert!(
        record.keep_until <= h.clock.now() + ttl,
        "kept until {}, {} s from now",
        record.keep_until,
        record.keep_until - h.clock.now()
    );
    // Past it the refusal is gone, as any finished login's is.
    h.clock.advance(ttl + 1);
    let (_, answer) = h.poll(&verifier, &token, 0).await;
    assert_ne!(answer["state"], "rejected");
}

/// Review item 12: a config printed with `{:?}` (a panic message, a debug log of a struct
/// that holds one) shows none of its secrets.
#[test]
fn a_config_printed_for_debugging_shows_none_of_its_secrets() {
    let secrets = [
        "smsc-pw",
        "auth-core-hmac-key",
        "webhook-hmac-key",
        "db-password-7",
    ];
    let text = format!(
        r#"
[store]
backend = "postgres"
url = "postgres://moauth:{db}@db.example/moauth"

[[http.api_keys]]
name = "shop"
sha256 = "{sha}"

[[smsc]]
name = "main"
address = "127.0.0.1:2775"
system_id = "moauth"
password = "{smsc}"
short_code = "10690000"

[auth]
mode = "remote"

[auth.remote]
url = "https://accounts.example/moauth"
secret = "{auth}"

[[webhooks]]
backend = "shop"
url = "https://shop.example/moauth"
secret = "{hook}"
"#,
        db = secrets[3],
        sha = api_key_hash("k"),
        smsc = secrets[0],
        auth = secrets[1],
        hook = secrets[2],
    );
    let config = moauth::ops::config::Config::parse("moauth.toml", &text).unwrap();
    let shown = format!("{config:?}");
    for secret in secrets {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains("Secret(redacted)"), "{shown}");
}

/// Review item 8: a long reply is several SMS on the bill, and each counts against the
/// number's hourly allowance of replies.
#[tokio::test]
async fn every_segment_of_a_long_reply_counts_against_the_number() {
    let h = Harness::start_with(Options::default(), |c| {
        c.limits.error_sms_per_number_per_hour = 3;
        c.templates.bad_token = Some(format!("{{app}}: {}", "that code is not valid. ".repeat(8)));
    })
    .await;
    h.phone_sends(ALICE, "HELLO").await;
    h.phone_sends(ALICE, "HELLO AGAIN").await;
    // The pipeline takes MOs in order: once BOB's reply is out, ALICE's MOs were decided.
    h.phone_sends(BOB, "HELLO").await;
    let submits = h.settled_submits(2).await;
    let to_alice: Vec<_> = submits
        .iter()
        .filter(|s| s.to.ends_with("8613800138000"))
        .collect();
    assert_eq!(to_alice.len(), 1, "{submits:?}");
    assert_eq!(to_alice[0].parts, 2);
}

/// Review item 8: replies go only to the configured countries (by default the one of
/// `[numbering]`), so a pumped foreign premium range gets nothing.
#[tokio::test]
async fn no_reply_goes_to_a_country_not_allowed() {
    let h = Harness::start().await;
    h.phone_sends("+447700900123", "HELLO").await;
    let (verifier, token) = h.app_token(0);
    h.phone_sends("+447700900124", &format!("LOGIN {token}"))
        .await;
    h.phone_sends(BOB, "HELLO").await;
    let submits = h.settled_submits(1).await;
    assert!(submits[0].to.ends_with("8613900139000"), "{submits:?}");
    // The login itself still works: only the SMS is held back.
    let (_, answer) = h.poll(&verifier, &token, 0).await;
    assert_eq!(answer["state"], "complete");
}

/// Review item 13: the password a credential SMS carries leaves the store once the SMSC has
/// accepted the SMS: neither the outbox nor the embedded core's kept answer holds it then.
#[tokio::test]
async fn a_credential_sms_leaves_the_store_once_the_smsc_accepted_it() {
    let h = Harness::start().await;
    let (_, token) = h.app_token(0);
    h.phone_sends(ALICE, &format!("LOGIN {token}")).await;
    let submits = h.settled_submits(1).await;
    assert!(submits[0].text.contains("password"), "{submits:?}");
    let store = &h.daemon().store;
    let queued = store.pending_replies("sim", &|_| false, 100).await.unwrap();
    assert!(queued.is_empty(), "{} replies still queued", queued.len());
    for request_id in 0..16 {
        assert!(
            store.auth_answer(request_id).await.unwrap().is_none(),
            "the answer to MO {request_id}, password included, is still kept"
        );
    }
}
