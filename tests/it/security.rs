//! Holes a security review found and reproduced, each shown closed over real sockets: a key
//! collecting logins it did not mint, half-sent requests exhausting the daemon, webhooks
//! following redirects.

use crate::common;

use common::{ALICE, BOB, Harness};
use moauth::daemon::{Options, api_key_hash};
use moauth::ops::config::ApiKey;
use serde_json::Value;

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
