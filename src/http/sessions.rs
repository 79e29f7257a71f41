//! The embedded auth core's sessions for app backends: introspection (RFC 7662 shape),
//! revocation (RFC 7009 shape), revoking every session of an account, and the texted
//! password's login.
//!
//! All but the password login need a backend API key. Introspection answers
//! `{"active": false}` for an unknown, revoked or expired session alike, and revocation 200
//! whether or not the session existed: neither tells a caller which sessions exist. With a
//! remote auth core the sessions are the app's own, and these routes answer 404.
//!
//! Password logins are limited by failures per login and per client address (429 with
//! `Retry-After`); an unknown number costs the same Argon2 work as a wrong password.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use tracing::{debug, info};

use super::limits::client_key;
use super::{ApiError, ApiState, ClientIp, authorize};
use crate::core::auth::SessionCore;
use crate::core::clock::UnixSecs;
use crate::core::limits::PasswordGuesses;

/// Forget counted failures this often (the buckets of logins and addresses that refilled).
const SWEEP_EVERY_SECS: UnixSecs = 60;

/// Failed password logins counted so far, shared by the route's requests.
#[derive(Clone, Default)]
pub struct PasswordGate(Arc<Mutex<(PasswordGuesses, UnixSecs)>>);

/// `token=<session>`, form-encoded (as RFC 7662 and 7009 say) or as JSON. The RFCs'
/// `token_type_hint` is read (a string, or the request is malformed) and then ignored: there
/// is one kind of token here. Other fields are ignored, as the RFCs allow extensions.
#[derive(Deserialize)]
struct TokenRequest {
    token: String,
    #[serde(
        default,
        rename = "token_type_hint",
        deserialize_with = "present_string"
    )]
    _token_type_hint: Option<String>,
}

/// A field that may be absent but, when present, is a string (not `null`, not a number).
fn present_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    String::deserialize(d).map(Some)
}

/// `{"account_id": "<decimal>"}`: revoke every session of an account, on the API
/// (`/v1/sessions/revoke-all`) and on the admin listener alike.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RevokeAllRequest {
    account_id: String,
}

impl RevokeAllRequest {
    pub(super) fn account_id(&self) -> Result<u64, ApiError> {
        self.account_id
            .parse()
            .map_err(|_| ApiError::bad_request("bad_account_id", "account_id is a decimal number"))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordLoginRequest {
    login: String,
    password: String,
}

/// The body as JSON or as a form, by its `Content-Type`.
fn read_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                e.body_text(),
            )
        } else {
            ApiError::bad_request("bad_request", e.body_text())
        }
    })?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        serde_urlencoded::from_bytes(&body)
            .map_err(|e| ApiError::bad_request("bad_request", e.to_string()))
    } else if essence.eq_ignore_ascii_case("application/json") {
        Json::<T>::from_bytes(&body)
            .map(|Json(v)| v)
            .map_err(ApiError::from_json)
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send application/x-www-form-urlencoded or application/json",
        ))
    }
}

fn sessions(state: &ApiState) -> Result<&Arc<dyn SessionCore>, ApiError> {
    state.sessions.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "sessions belong to the remote auth core in this deployment",
        )
    })
}

/// What every keyed route reads, in this order: the backend's key (a missing or wrong one is
/// 401 before anything else), the embedded auth core (404 without one), then the body.
fn keyed_request<'s, T: DeserializeOwned>(
    state: &'s ApiState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(String, &'s Arc<dyn SessionCore>, T), ApiError> {
    let backend = authorize(state, headers)?;
    let core = sessions(state)?;
    let request = read_body(headers, body)?;
    Ok((backend, core, request))
}

pub(super) async fn introspect(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (backend, core, request): (_, _, TokenRequest) = keyed_request(&state, &headers, body)?;
    let found = core
        .introspect(&request.token)
        .await
        .map_err(ApiError::internal)?;
    debug!(%backend, active = found.is_some(), "session introspected");
    Ok(Json(match found {
        Some(s) => {
            let mut answer = json!({
                "active": true,
                "sub": s.account_id.to_string(),
                "exp": s.expires_at,
            });
            if let Some(msisdn) = s.msisdn {
                answer["msisdn"] = json!(msisdn.as_str());
            }
            if let Some(iat) = s.issued_at {
                answer["iat"] = json!(iat);
            }
            answer
        }
        None => json!({ "active": false }),
    }))
}

pub(super) async fn revoke(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (backend, core, request): (_, _, TokenRequest) = keyed_request(&state, &headers, body)?;
    core.revoke(&request.token)
        .await
        .map_err(ApiError::internal)?;
    debug!(%backend, "session revoked");
    // The removal is durable (`revoke` synced the store) before this 200.
    Ok(Json(json!({})))
}

pub(super) async fn revoke_all(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (backend, core, request): (_, _, RevokeAllRequest) = keyed_request(&state, &headers, body)?;
    let account_id = request.account_id()?;
    let revoked = core
        .revoke_account(account_id)
        .await
        .map_err(ApiError::internal)?;
    info!(%backend, account_id, revoked, "every session of an account revoked");
    // The removals are durable (`revoke_account` synced the store) before this 200.
    Ok(Json(json!({ "revoked": revoked })))
}

pub(super) async fn password_login(
    State(state): State<ApiState>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let core = sessions(&state)?;
    let request: PasswordLoginRequest = read_body(&headers, body)?;
    let (now, rules) = (state.poller.clock.now(), state.limits.load());
    // The poll limits' key: the same client is one bucket for both.
    let address = client_key(client).to_string();
    let login = request.login.trim().to_owned();
    {
        let mut gate = state.password_gate.0.lock().expect("password gate lock");
        let (guesses, swept_at) = &mut *gate;
        if now >= *swept_at + SWEEP_EVERY_SECS {
            guesses.sweep(now);
            *swept_at = now;
        }
        if let Err((limit, wait)) = guesses.admit(&rules, &login, &address, now) {
            metrics::counter!("moauth_limit_hits_total", "limit" => limit.as_str()).increment(1);
            metrics::counter!("moauth_password_logins_total", "result" => "limited").increment(1);
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many failed password logins; retry after the time in Retry-After",
            )
            .retry_after(wait));
        }
    }
    let issued = core
        .password_login(&login, request.password)
        .await
        .map_err(ApiError::internal)?;
    let Some(issued) = issued else {
        state
            .password_gate
            .0
            .lock()
            .expect("password gate lock")
            .0
            .failed(&rules, &login, &address, now);
        metrics::counter!("moauth_password_logins_total", "result" => "invalid").increment(1);
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "the login or the password is wrong",
        ));
    };
    metrics::counter!("moauth_password_logins_total", "result" => "ok").increment(1);
    info!(account_id = issued.account_id, "password login");
    // The session is durable (`password_login` synced the store) before this 200.
    Ok(Json(json!({
        "session": issued.session,
        "account_id": issued.account_id.to_string(),
        "expires_at": issued.expires_at,
    })))
}
