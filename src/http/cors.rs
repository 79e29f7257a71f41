//! CORS on the login routes (`POST /v1/logins/poll`, `POST /v1/logins`,
//! `GET /v1/logins/{token}`), for a page on another origin that uses `moauth.js` against
//! moauth directly.
//!
//! Nothing is allowed unless `[http] cors_origins` lists the origin exactly: a preflight
//! from any other origin gets no `Access-Control-Allow-Origin`, so the browser blocks the call.
//! No credentials mode: the poll carries its verifier in the body and the keyed routes an
//! `Authorization` header the page sets itself, never a cookie. The probes, the operators'
//! routes and the page itself get no CORS headers at all.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// How long a browser may cache a preflight's answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// The layer for `origins`, or None when none is configured (no CORS at all).
pub fn layer(origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|origin| HeaderValue::from_str(origin).ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
            // A page that got 429 should be able to read when to come back.
            .expose_headers([HeaderName::from_static("retry-after")])
            .max_age(PREFLIGHT_MAX_AGE),
    )
}
