//! Per-client limits on the HTTP API, over real sockets: a client address gets only its share
//! of the long-poll slots, a key only so many mints, and behind a trusted reverse proxy the
//! client the proxy names is the one counted (`[http] trusted_proxies`), while the same
//! header from anyone else is ignored.

use crate::common;

use common::{Harness, PATIENCE};
use moauth::core::token::{Token, Verifier};
use moauth::daemon::{Options, api_key_hash};
use moauth::ops::config::ApiKey;
use serde_json::{Value, json};

/// A poll as `forwarded_for` behind a proxy would send it (None: no header): (status, error).
async fn poll_as(
    h: &Harness,
    forwarded_for: Option<&str>,
    (verifier, token): &(Verifier, Token),
    wait_ms: u64,
) -> (u16, Value) {
    let mut request = h.http.post(h.api("/v1/logins/poll")).json(&json!({
        "verifier": verifier.to_base64url(),
        "token": token.to_string(),
        "wait_ms": wait_ms,
    }));
    if let Some(client) = forwarded_for {
        request = request.header("x-forwarded-for", client);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Holds a long-poll open in the background until its login changes or 30 s pass.
fn hold_long_poll(h: &Harness) -> tokio::task::JoinHandle<(u16, Value)> {
    let (http, addr) = (h.http.clone(), h.daemon().http_addr);
    let (verifier, token) = h.app_token(0);
    tokio::spawn(async move { common::poll_login(&http, addr, &verifier, &token, 30_000).await })
}

#[tokio::test]
async fn one_address_gets_only_its_share_of_the_long_polls() {
    let h = Harness::start_with(Options::default(), |c| {
        c.limits.max_long_polls = 100;
        c.limits.max_long_polls_per_client = 2;
        c.http.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let held = [hold_long_poll(&h), hold_long_poll(&h)];
    // Until both hold their slots a probe may get one and answer `pending` after 100 ms.
    let probe = h.app_token(0);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let answer = loop {
        let (status, answer) = poll_as(&h, None, &probe, 100).await;
        if status == 429 {
            break answer;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "one address held every long-poll it wanted: the share never bit"
        );
    };
    assert_eq!(answer["error"], "too_many_long_polls");
    // Far below the global cap: another client still long-polls.
    let (status, answer) = poll_as(&h, Some("198.51.100.7"), &probe, 100).await;
    assert_eq!((status, &answer["state"]), (200, &json!("pending")));
    for poll in held {
        poll.abort();
    }
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_bucket() {
    let h = Harness::start_with(Options::default(), |c| {
        c.limits.poll_per_minute = 1;
        c.limits.poll_burst = 1;
        c.http.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let login = h.app_token(0);
    assert_eq!(poll_as(&h, Some("198.51.100.7"), &login, 0).await.0, 200);
    let (status, answer) = poll_as(&h, Some("198.51.100.7"), &login, 0).await;
    assert_eq!((status, &answer["error"]), (429, &json!("rate_limited")));
    // A client behind the same proxy, and one that forged an entry before the proxy's.
    assert_eq!(poll_as(&h, Some("198.51.100.8"), &login, 0).await.0, 200);
    let forged = "198.51.100.99, 198.51.100.7";
    assert_eq!(poll_as(&h, Some(forged), &login, 0).await.0, 429);
}

#[tokio::test]
async fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
    let h = Harness::start_with(Options::default(), |c| {
        c.limits.poll_per_minute = 1;
        c.limits.poll_burst = 1;
    })
    .await;
    let login = h.app_token(0);
    assert_eq!(poll_as(&h, Some("198.51.100.7"), &login, 0).await.0, 200);
    // A new address in the header is no new client: the peer's bucket is empty.
    assert_eq!(poll_as(&h, Some("198.51.100.8"), &login, 0).await.0, 429);
}

#[tokio::test]
async fn a_key_minting_past_its_bucket_gets_429_with_retry_after() {
    let h = Harness::start_with(Options::default(), |c| {
        c.limits.mint_per_minute = 1;
        c.limits.mint_burst = 2;
        c.http.api_keys = ["shop", "crm"]
            .map(|name| ApiKey {
                name: name.into(),
                sha256: api_key_hash(&format!("{name}-key")),
            })
            .to_vec();
    })
    .await;
    let mint = |key: &'static str| {
        let request = h.http.post(h.api("/v1/logins")).bearer_auth(key);
        async move { request.send().await.unwrap() }
    };
    for _ in 0..2 {
        assert_eq!(mint("shop-key").await.status(), 201);
    }
    let refused = mint("shop-key").await;
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited");
    // Buckets are per key; a wrong key still hears 401, not 429.
    assert_eq!(mint("crm-key").await.status(), 201);
    assert_eq!(mint("no-such-key").await.status(), 401);
}

/// A password login whose client the proxy names in `header` (`forwarded` or
/// `x-forwarded-for`): its status.
async fn password_login_as(h: &Harness, (header, client): (&str, &str), login: &str) -> u16 {
    let response = h
        .http
        .post(h.api("/v1/password-logins"))
        .header(header, client)
        .json(&json!({ "login": login, "password": "a wrong guess" }))
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}

/// A proxy may name an IPv4 client in IPv6's mapped form (`[::ffff:a.b.c.d]`): it is the same
/// client as `a.b.c.d`, and another mapped address is another client, for the password
/// failures as for the poll bucket.
#[tokio::test]
async fn an_ipv4_client_in_mapped_form_is_counted_as_itself_for_password_failures() {
    let h = Harness::start_with(Options::default(), |c| {
        c.limits.password_failures_per_address_per_hour = 2;
        c.http.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let mapped = |v4: &str| ("forwarded", format!("for=\"[::ffff:{v4}]\""));
    let (header, seven) = mapped("198.51.100.7");
    for login in ["+8613800138001", "+8613800138002"] {
        assert_eq!(password_login_as(&h, (header, &seven), login).await, 401);
    }
    let plain = ("x-forwarded-for", "198.51.100.7");
    assert_eq!(
        password_login_as(&h, plain, "+8613800138003").await,
        429,
        "198.51.100.7 failed twice already, written the other way"
    );
    let (header, eight) = mapped("198.51.100.8");
    assert_eq!(
        password_login_as(&h, (header, &eight), "+8613800138004").await,
        401,
        "another client's failures are not this one's"
    );
}
