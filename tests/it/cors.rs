//! CORS on the login routes (#14 "Also", #17 item 5), spoken as a browser speaks it: a
//! preflight `OPTIONS` with `Origin` and `Access-Control-Request-*`, then the call with
//! `Origin`. Nothing is allowed by default; a configured origin is, and only it.

use crate::common;

use common::Harness;
use moauth::daemon::Options;
use reqwest::Method;
use serde_json::json;

const APP: &str = "https://shop.example";

async fn preflight(h: &Harness, path: &str, origin: &str) -> reqwest::Response {
    h.http
        .request(Method::OPTIONS, h.api(path))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap()
}

fn allowed_origin(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn no_origin_is_allowed_by_default() {
    let h = Harness::start().await;
    let response = preflight(&h, "/v1/logins/poll", APP).await;
    assert_eq!(allowed_origin(&response), None);
    let (verifier, token) = h.app_token(0);
    let poll = h
        .http
        .post(h.api("/v1/logins/poll"))
        .header("origin", APP)
        .json(&json!({ "verifier": verifier.to_base64url(), "token": token.to_string() }))
        .send()
        .await
        .unwrap();
    assert_eq!(poll.status(), 200);
    assert_eq!(allowed_origin(&poll), None);
}

#[tokio::test]
async fn a_configured_origin_may_poll_and_mint_across_origins() {
    let h = Harness::start_with(Options::default(), |c| {
        c.http.cors_origins = vec![APP.into()];
    })
    .await;
    for path in ["/v1/logins/poll", "/v1/logins"] {
        let response = preflight(&h, path, APP).await;
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        assert_eq!(allowed_origin(&response).as_deref(), Some(APP), "{path}");
        let methods = response.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(methods.contains("POST"), "{methods}");
        let headers = response.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase();
        assert!(headers.contains("content-type"), "{headers}");
    }
    let (verifier, token) = h.app_token(0);
    let poll = h
        .http
        .post(h.api("/v1/logins/poll"))
        .header("origin", APP)
        .json(&json!({ "verifier": verifier.to_base64url(), "token": token.to_string() }))
        .send()
        .await
        .unwrap();
    assert_eq!(poll.status(), 200);
    assert_eq!(allowed_origin(&poll).as_deref(), Some(APP));

    // Another origin gets nothing it could use; operators' routes never carry CORS.
    let other = preflight(&h, "/v1/logins/poll", "https://evil.example").await;
    assert_eq!(allowed_origin(&other), None);
    let status = h
        .http
        .get(h.api("/status"))
        .header("origin", APP)
        .send()
        .await
        .unwrap();
    assert_eq!(allowed_origin(&status), None);
}
