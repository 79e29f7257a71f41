//! `[http] admin_listen`: `/metrics` and `/status` leave the API's address for a private one,
//! and the API's routes are not on the private one.

use crate::common;

use common::Harness;
use moauth::daemon::Options;

async fn status_of(http: &reqwest::Client, url: String) -> u16 {
    http.get(url).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn operators_routes_move_to_the_admin_listener() {
    let h = Harness::start_with(Options::default(), |c| {
        c.http.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let admin = h.daemon().admin_addr.expect("an admin listener");
    assert_ne!(admin, h.daemon().http_addr);
    let on_admin = |path: &str| format!("http://{admin}{path}");

    for path in ["/metrics", "/status", "/healthz", "/readyz"] {
        assert_eq!(status_of(&h.http, on_admin(path)).await, 200, "{path}");
    }
    let scrape = h.http.get(on_admin("/metrics")).send().await.unwrap();
    assert!(scrape.text().await.unwrap().contains("moauth_inbox_depth"));

    // The API's address keeps the API and the probes, not the operators' routes.
    for path in ["/metrics", "/status"] {
        let response = h.http.get(h.api(path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path} on the API listener");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"], "not_found");
    }
    assert_eq!(status_of(&h.http, h.api("/healthz")).await, 200);
    let (verifier, token) = h.app_token(0);
    assert_eq!(h.poll(&verifier, &token, 0).await.0, 200);

    // And the admin listener has no API: a poll there is not a route.
    let poll = h
        .http
        .post(on_admin("/v1/logins/poll"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(poll.status(), 404);
}

#[tokio::test]
async fn without_an_admin_listener_the_api_address_serves_everything() {
    let h = Harness::start().await;
    assert_eq!(h.daemon().admin_addr, None);
    for path in ["/metrics", "/status", "/healthz"] {
        assert_eq!(status_of(&h.http, h.api(path)).await, 200, "{path}");
    }
}
