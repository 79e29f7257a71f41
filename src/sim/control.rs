//! The simulator's loopback HTTP API: inject MOs, read back submits.
//!
//! `POST /mo {from, to?, text}` → `{statuses: [...]}` once the ESME answered;
//! `GET /submits` → every submitted message, parts joined; `GET /status` → bound sessions;
//! `POST /faults` [`FaultSettings`] → the faults shown from now on.

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::{FaultSettings, MoRequest, SimError, Simulator};

pub fn control_router(sim: Simulator) -> Router {
    Router::new()
        .route("/mo", post(send_mo))
        .route("/submits", get(submits))
        .route("/status", get(status))
        .route("/faults", post(faults))
        .with_state(sim)
}

async fn send_mo(
    State(sim): State<Simulator>,
    body: Result<Json<MoRequest>, JsonRejection>,
) -> (StatusCode, Json<serde_json::Value>) {
    let request = match body {
        Ok(Json(r)) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    match sim.send_mo(&request).await {
        Ok(result) => (StatusCode::OK, Json(json!(result))),
        Err(e @ SimError::BadRequest(_)) => error(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

fn error(status: StatusCode, message: String) -> (StatusCode, Json<serde_json::Value>) {
    (status, Json(json!({ "error": "sim", "message": message })))
}

async fn submits(State(sim): State<Simulator>) -> Json<serde_json::Value> {
    Json(json!(sim.submits()))
}

async fn status(State(sim): State<Simulator>) -> Json<serde_json::Value> {
    Json(json!({ "bound": sim.bound_sessions() }))
}

async fn faults(
    State(sim): State<Simulator>,
    body: Result<Json<FaultSettings>, JsonRejection>,
) -> (StatusCode, Json<serde_json::Value>) {
    match body {
        Ok(Json(settings)) => {
            sim.set_faults(&settings);
            (StatusCode::OK, Json(json!(settings)))
        }
        Err(e) => error(StatusCode::BAD_REQUEST, e.body_text()),
    }
}
