//! `POST /v1/logins`: a login minted for the backend whose API key calls (`login::mint`).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use tracing::info;

use super::{ApiError, ApiState, authorize};
use crate::login::mint::MintAnswer;

pub(super) async fn mint_login(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<MintAnswer>), ApiError> {
    let backend = authorize(&state, &headers)?;
    state.mint_limiter.load().admit(&backend)?;
    let answer = state
        .minter
        .mint(&backend)
        .await
        .map_err(ApiError::internal)?;
    info!(%backend, "login minted");
    // Durable now: `mint` flushed the login's owner before returning.
    Ok((StatusCode::CREATED, Json(answer)))
}
