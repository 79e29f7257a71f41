//! The HTTP API for app backends (protocol/openapi.yaml) and for operators' probes.
//!
//! Every client mistake is a JSON `{error, message}` with a 4xx status; nothing here panics on
//! input. Handlers are thin: the poll logic lives in `login::poll`, minting in `login::mint`.

pub mod admin;
pub mod client;
pub mod config;
pub mod cors;
mod error;
pub mod keys;
pub mod limits;
mod logins;
pub mod page;
pub mod serve;
pub mod sessions;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{MethodRouter, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tracing::debug;

pub use error::ApiError;

use crate::core::auth::{AuthCore, SessionCore};
use crate::core::budget::BudgetHealth;
use crate::core::health::LinkStates;
use crate::core::limits::LimitsConfig;
use crate::core::live::Live;
use crate::core::token::{Token, Verifier};
use crate::login::mint::Minter;
use crate::login::poll::{PollAnswer, Poller};
use keys::ApiKeys;

/// Long-polls wait at most this long (protocol/openapi.yaml).
pub const MAX_WAIT_MS: u64 = 30_000;
const BODY_LIMIT: usize = 4 * 1024;

#[derive(Clone)]
pub struct ApiState {
    pub poller: Poller,
    pub links: LinkStates,
    /// Per-client bucket on the poll routes; rebuilt by a reload that changes its quota.
    pub poll_limiter: Live<limits::PollLimiter>,
    pub long_polls: limits::LongPolls,
    /// Asked only for its health, for `/readyz`.
    pub auth: Arc<dyn AuthCore>,
    /// The backends' API keys; none switches the keyed routes off. Reloadable (SIGHUP).
    pub api_keys: Live<ApiKeys>,
    pub minter: Minter,
    /// Per-key bucket on `POST /v1/logins`; rebuilt by a reload that changes its quota.
    pub mint_limiter: Live<limits::MintLimiter>,
    /// `[http] trusted_proxies`: whose forwarding headers name the client (`client`).
    pub trusted_proxies: Arc<Vec<ipnet::IpNet>>,
    /// `[http] cors_origins`: browser origins allowed on the login routes (`cors`).
    pub cors_origins: Arc<Vec<String>>,
    /// The embedded auth core's sessions; None with a remote auth core.
    pub sessions: Option<Arc<dyn SessionCore>>,
    /// Reloadable (SIGHUP) limits, read per request.
    pub limits: Live<LimitsConfig>,
    pub password_gate: sessions::PasswordGate,
    /// The global SMS budget as the pipeline last found it, for `/readyz`.
    pub sms_budget: BudgetHealth,
}

/// The address the per-client limits count a request against (`client::client_address`).
pub(crate) struct ClientIp(pub std::net::IpAddr);

impl axum::extract::FromRequestParts<ApiState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &ApiState,
    ) -> Result<Self, Self::Rejection> {
        // `serve` puts the peer on every request; an in-process request without one counts
        // as loopback.
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(SocketAddr::from(([127, 0, 0, 1], 0)), |c| c.0);
        Ok(ClientIp(client::client_address(
            peer,
            &parts.headers,
            &state.trusted_proxies,
        )))
    }
}

/// The API's routes plus `operators`' (e.g. `/status`), which get the same JSON answers for a
/// wrong path or method: the fallbacks apply to the routes present when they are set.
pub fn router(state: ApiState, operators: Router) -> Router {
    let cors = cors::layer(&state.cors_origins);
    // With CORS on, OPTIONS is a method of these routes, so the layer sees the preflight
    // (and answers it) instead of the router's 405; without, OPTIONS stays a 405.
    let login_route = |route: MethodRouter<ApiState>| match &cors {
        Some(cors) => route
            .options(|| async { StatusCode::NO_CONTENT })
            .layer(cors.clone()),
        None => route,
    };
    let api = Router::new()
        .route("/v1/logins", login_route(post(logins::mint_login)))
        .route("/v1/logins/poll", login_route(post(poll)))
        .route("/v1/logins/{token}", login_route(get(get_login)))
        .route("/v1/sessions/introspect", post(sessions::introspect))
        .route("/v1/sessions/revoke", post(sessions::revoke))
        .route("/v1/sessions/revoke-all", post(sessions::revoke_all))
        .route("/v1/password-logins", post(sessions::password_login))
        .with_state(state.clone());
    with_json_fallbacks(api.merge(probes(state)).merge(operators))
}

/// The admin listener's app (`[http] admin_listen`): `operators`' routes and the probes, with
/// the API's JSON answers for a wrong path or method, and none of the API's routes.
pub fn admin_router(state: ApiState, operators: Router) -> Router {
    with_json_fallbacks(probes(state).merge(operators))
}

/// `/healthz` and `/readyz`, on every listener: a load balancer and a supervisor may each
/// probe the one they reach.
fn probes(state: ApiState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

fn with_json_fallbacks(routes: Router) -> Router {
    routes
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        // axum keeps the `Allow` header it computed and lets us give the JSON body.
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method",
            )
        })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PollRequest {
    verifier: String,
    token: String,
    #[serde(default)]
    wait_ms: u64,
}

async fn poll(
    State(state): State<ApiState>,
    ClientIp(client): ClientIp,
    body: Result<Json<PollRequest>, JsonRejection>,
) -> Result<Json<PollAnswer>, ApiError> {
    limits::admit(&state.poll_limiter, client)?;
    let Json(request) = body.map_err(ApiError::from_json)?;
    let verifier = Verifier::from_base64url(&request.verifier)
        .map_err(|e| ApiError::bad_request("bad_verifier", e.to_string()))?;
    let token = parse_token(&request.token)?;
    // The SMS text alone never grants a session: only the holder of V can redeem T.
    if !token.verifies(&verifier) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "verifier_mismatch",
            "the verifier does not belong to this token",
        ));
    }
    answer(&state, &token, request.wait_ms, client).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WaitQuery {
    #[serde(default)]
    wait_ms: u64,
}

async fn get_login(
    State(state): State<ApiState>,
    ClientIp(client): ClientIp,
    token: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    query: Result<Query<WaitQuery>, QueryRejection>,
) -> Result<Json<PollAnswer>, ApiError> {
    let backend = authorize(&state, &headers)?;
    debug!(%backend, "token lookup");
    limits::admit(&state.poll_limiter, client)?;
    let Query(query) = query.map_err(|e| ApiError::bad_request("bad_request", e.body_text()))?;
    // A path that is not UTF-8 once percent-decoded cannot be a token either.
    let Path(token) = token.map_err(|e| ApiError::bad_request("bad_token", e.body_text()))?;
    let token = parse_token(&token)?;
    // The token travels in clear (the SMS, webhook bodies, logs): knowing it must not be
    // enough. A key collects only the logins it minted; an app-made login (no owner) only with
    // its verifier, at `POST /v1/logins/poll`. Every other case gets the same answer, so the
    // route tells nothing about whose login a token is.
    let owner = state
        .minter
        .store
        .minted(&token.challenge())
        .await
        .map_err(ApiError::internal)?;
    if owner.is_none_or(|owner| owner.backend != backend) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_your_login",
            "this key did not mint this login; an app's login is collected with its verifier at POST /v1/logins/poll",
        ));
    }
    answer(&state, &token, query.wait_ms, client).await
}

fn parse_token(text: &str) -> Result<Token, ApiError> {
    Token::parse(text).map_err(|e| ApiError::bad_request("bad_token", e.to_string()))
}

async fn answer(
    state: &ApiState,
    token: &Token,
    wait_ms: u64,
    client: std::net::IpAddr,
) -> Result<Json<PollAnswer>, ApiError> {
    if wait_ms > MAX_WAIT_MS {
        return Err(ApiError::bad_request(
            "bad_request",
            format!("wait_ms must be at most {MAX_WAIT_MS}"),
        ));
    }
    // A long-poll holds its slot until it answers; a plain poll needs none.
    let _slot = (wait_ms > 0)
        .then(|| state.long_polls.enter(client))
        .transpose()?;
    let started = Instant::now();
    let answer = state
        .poller
        .poll(token, Duration::from_millis(wait_ms))
        .await
        .map_err(ApiError::internal)?;
    metrics::histogram!("moauth_poll_duration_seconds", "state" => answer.state())
        .record(started.elapsed());
    // A `complete` answer was flushed as `consumed` inside `poll` before we return it.
    Ok(Json(answer))
}

/// The name of the backend whose API key the request carries. With no key configured the
/// keyed routes are switched off (404). The comparison is constant-time (`keys`).
fn authorize(state: &ApiState, headers: &HeaderMap) -> Result<String, ApiError> {
    let keys = state.api_keys.load();
    if keys.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "this route needs an API key and none is configured",
        ));
    }
    let unauthorized = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid `Authorization: Bearer <api key>` header is required",
        )
    };
    let key = bearer(headers).ok_or_else(unauthorized)?;
    keys.authenticate(key)
        .map(str::to_owned)
        .ok_or_else(unauthorized)
}

/// The key of an `Authorization: Bearer <key>` header, trimmed; None without one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// A store that cannot complete a flush this fast is not taking MOs either.
const READY_STORE_WITHIN: Duration = Duration::from_secs(1);

async fn readyz(State(state): State<ApiState>) -> (StatusCode, Json<serde_json::Value>) {
    let bound = state.links.bound();
    // A real check that costs next to nothing: with nothing unwritten, sled's flush returns
    // at once; a store whose disk fails or hangs fails it.
    // A store behind the network (PostgreSQL) also has to have answered its last check.
    let store_ok = state.poller.store.reachable()
        && matches!(
            tokio::time::timeout(READY_STORE_WITHIN, state.poller.store.sync()).await,
            Ok(Ok(()))
        );
    let status = if bound.is_empty() || !store_ok {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let store = if store_ok { "open" } else { "unavailable" };
    // A down auth core is reported but does not fail readiness: MOs are still acknowledged
    // durably and wait for it. Nor does a spent SMS budget: MOs are still processed, only
    // their SMS are held back.
    (
        status,
        Json(json!({
            "store": store,
            "smsc_bound": bound,
            "smsc_errors": state.links.last_errors(),
            "auth_core": state.auth.health(),
            "sms_budget": state.sms_budget.state(state.poller.clock.now()),
        })),
    )
}
