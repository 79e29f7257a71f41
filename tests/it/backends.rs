//! App backends and their API keys: several named keys, reloaded without a restart, and
//! logins the server mints for them (`POST /v1/logins`), completed by the SMS the minted
//! `sms:` URI prepares.

use crate::common;

use common::{ALICE, Harness};
use moauth::core::token::Token;
use moauth::daemon::{Options, api_key_hash};
use moauth::ops::config::ApiKey;

fn key(name: &str, secret: &str) -> ApiKey {
    ApiKey {
        name: name.into(),
        sha256: api_key_hash(secret),
    }
}

async fn mint_status(h: &Harness, bearer: Option<&str>) -> u16 {
    let mut request = h.http.post(h.api("/v1/logins"));
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    request.send().await.unwrap().status().as_u16()
}

/// The SMS text an `sms:` URI puts into the composer (RFC 5724 `body`, percent-decoded).
fn composer_text(sms_uri: &str) -> String {
    let encoded = sms_uri.split_once("?body=").unwrap().1.as_bytes();
    let mut text = Vec::new();
    let mut i = 0;
    while i < encoded.len() {
        if encoded[i] == b'%' {
            let hex = std::str::from_utf8(&encoded[i + 1..i + 3]).unwrap();
            text.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            text.push(encoded[i]);
            i += 1;
        }
    }
    String::from_utf8(text).unwrap()
}

#[tokio::test]
async fn a_minted_login_is_completed_by_the_sms_its_uri_prepares() {
    let h = Harness::start_with(Options::default(), |c| {
        c.http.api_keys = vec![key("shop", "shop-key")];
        c.templates.app = Some("shop".into());
    })
    .await;
    let (verifier, token, answer) = h.mint("shop-key").await;
    assert!(token.verifies(&verifier));
    // protocol/webhooks.md: a webhook's token_challenge is symbols 2–21 of the token.
    assert_eq!(&token.compact()[1..21], token.challenge().as_str());
    assert_eq!(token.issued_at(), h.clock.now());
    assert_eq!(answer["expires_at"], h.clock.now() + 600);
    let sms_uri = answer["sms_uri"].as_str().unwrap();
    assert!(sms_uri.starts_with("sms:10690000?body="), "{sms_uri}");
    let text = composer_text(sms_uri);
    // The app's name after the token (login-jacking): the grammar ignores it.
    assert_eq!(text, format!("LOGIN {token} shop"));

    let (_, pending) = h.poll(&verifier, &token, 0).await;
    assert_eq!(pending["state"], "pending");
    h.phone_sends(ALICE, &text).await;
    let (status, complete) = h.poll(&verifier, &token, 10_000).await;
    assert_eq!(
        (status, complete["state"].as_str()),
        (200, Some("complete"))
    );
    assert_eq!(complete["msisdn"], "+86 138****8000");
    let (_, again) = h.poll(&verifier, &token, 0).await;
    assert_eq!(again["state"], "consumed");
    // The credential SMS of the new account is the only reply.
    assert_eq!(h.settled_submits(1).await.len(), 1);

    // Every mint is a new login.
    let (_, other, _) = h.mint("shop-key").await;
    assert_ne!(other.challenge(), token.challenge());
    Token::parse(&other.compact()).unwrap();
}

#[tokio::test]
async fn several_named_keys_and_a_reload_changes_who_gets_in_without_a_restart() {
    let mut h = Harness::start_with(Options::default(), |c| {
        c.http.api_keys = vec![key("shop", "shop-key"), key("crm", "crm-key")];
    })
    .await;
    assert_eq!(mint_status(&h, Some("shop-key")).await, 201);
    assert_eq!(mint_status(&h, Some("crm-key")).await, 201);
    assert_eq!(mint_status(&h, Some("ads-key")).await, 401);
    assert_eq!(mint_status(&h, Some("shop-key ")).await, 201);
    assert_eq!(mint_status(&h, Some("")).await, 401);
    assert_eq!(mint_status(&h, None).await, 401);

    let (_, token, _) = h.mint("crm-key").await;
    let lookup = h.api(&format!("/v1/logins/{}", token.compact()));
    let lookup_status = |bearer: &'static str| {
        let request = h.http.get(&lookup).bearer_auth(bearer);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(lookup_status("crm-key").await, 200);

    // The operator drops crm and adds ads, then reloads (what SIGHUP does).
    let addr = h.daemon().http_addr;
    h.config.http.api_keys = vec![key("shop", "shop-key"), key("ads", "ads-key")];
    let waiting = h.daemon().reload(&h.config);
    assert!(waiting.is_empty(), "{waiting:?}");
    assert_eq!(h.daemon().http_addr, addr);
    assert_eq!(mint_status(&h, Some("crm-key")).await, 401);
    assert_eq!(lookup_status("crm-key").await, 401);
    assert_eq!(mint_status(&h, Some("ads-key")).await, 201);
    // ads gets in, but not into the login crm minted.
    assert_eq!(lookup_status("ads-key").await, 403);
    assert_eq!(mint_status(&h, Some("shop-key")).await, 201);

    // No key left: the keyed routes are switched off.
    h.config.http.api_keys.clear();
    h.daemon().reload(&h.config);
    assert_eq!(mint_status(&h, Some("shop-key")).await, 404);
    assert_eq!(lookup_status("shop-key").await, 404);
}
