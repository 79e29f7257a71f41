//! Operators' commands on a running daemon, served only on the admin listener
//! (`[http] admin_listen`), never on the API's address: `moauth accounts|sessions|inbox|
//! rejected …` call these. The embedded store belongs to the daemon's process, so an operator
//! reaches it through the daemon, not by opening it. The outbox routes (one queued SMS listed
//! or dropped) have no command: `moauth outbox` moves whole SMSC queues with the daemon
//! stopped, on the store itself (`daemon::stranded`).
//!
//! Every route needs `Authorization: Bearer <[http] admin_key>`: they read and erase any
//! number's data, so reaching the admin address is not enough (any local user can reach a
//! loopback port). Without a configured key they are refused, never open.
//!
//! Nothing here answers with a secret: listed SMS show their length, not their text (a
//! credential SMS holds a password), and numbers are masked except in the one account the
//! operator named. Erasing a number is logged with its account id and the masked number only.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use tracing::info;

use super::keys::{digest, same_digest};
use super::sessions::RevokeAllRequest;
use super::{ApiError, bearer};
use crate::core::auth::Account;
use crate::core::msisdn::Msisdn;
use crate::core::store::Store;

/// How many MOs `GET /admin/inbox` lists, oldest first.
const INBOX_LISTED: usize = 1_000;
/// How many queued SMS `GET /admin/outbox` lists per SMSC connection.
const OUTBOX_LISTED: usize = 1_000;

#[derive(Clone)]
pub struct AdminState {
    pub store: Arc<dyn Store>,
    /// The configured SMSC connections, whose queues `GET /admin/outbox` lists.
    pub smsc_names: Arc<Vec<String>>,
    /// SHA-256 of `[http] admin_key`; None: every command is refused.
    pub key_sha256: Option<[u8; 32]>,
}

pub fn router(state: AdminState) -> Router {
    Router::new()
        .route(
            "/admin/accounts/{number}",
            get(show_account).delete(erase_account),
        )
        .route("/admin/sessions/revoke-all", post(revoke_sessions))
        .route("/admin/outbox", get(list_outbox))
        .route("/admin/outbox/{id}", delete(drop_reply))
        .route("/admin/inbox", get(list_inbox))
        .route("/admin/rejected", get(list_rejected))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_key))
        .with_state(state)
}

/// Lets a request through only with the admin key; compared as digests, in constant time.
async fn require_key(
    State(state): State<AdminState>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(expected) = state.key_sha256 else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "admin_key_unset",
            "operator commands need [http] admin_key in the daemon's config",
        ));
    };
    let matches = bearer(&headers).is_some_and(|key| same_digest(&expected, &digest(key)));
    if !matches {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid `Authorization: Bearer <admin key>` header is required",
        ));
    }
    Ok(next.run(request).await)
}

fn number(text: &str) -> Result<Msisdn, ApiError> {
    Msisdn::parse(text).map_err(|e| ApiError::bad_request("bad_number", e.to_string()))
}

/// The number in the path (400 if it is not one) and its account, if it has one.
async fn number_and_account(
    state: &AdminState,
    text: &str,
) -> Result<(Msisdn, Option<Account>), ApiError> {
    let number = number(text)?;
    let account = state
        .store
        .account(&number)
        .await
        .map_err(ApiError::internal)?;
    Ok((number, account))
}

async fn show_account(
    State(state): State<AdminState>,
    Path(text): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (number, account) = number_and_account(&state, &text).await?;
    let account = account
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such account"))?;
    let opted_out = state
        .store
        .opted_out(&number)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(json!({
        "account_id": account.id.to_string(),
        "msisdn": number.as_str(),
        "created_at": account.created_at,
        "opted_out": opted_out,
    })))
}

/// A right-to-erasure request: durable (synced) before the 200.
async fn erase_account(
    State(state): State<AdminState>,
    Path(text): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (number, account) = number_and_account(&state, &text).await?;
    let erased = state
        .store
        .erase_number(&number)
        .await
        .map_err(ApiError::internal)?;
    state.store.sync().await.map_err(ApiError::internal)?;
    info!(
        number = %number.masked(),
        account_id = account.as_ref().map(|a| a.id),
        records = erased,
        "number erased on an operator's request"
    );
    Ok(Json(json!({ "erased": erased })))
}

async fn revoke_sessions(
    State(state): State<AdminState>,
    body: Result<Json<RevokeAllRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(request) = body.map_err(ApiError::from_json)?;
    let account_id = request.account_id()?;
    let revoked = state
        .store
        .revoke_sessions(account_id)
        .await
        .map_err(ApiError::internal)?;
    state.store.sync().await.map_err(ApiError::internal)?;
    info!(
        account_id,
        revoked, "sessions revoked on an operator's request"
    );
    Ok(Json(json!({ "revoked": revoked })))
}

async fn list_outbox(State(state): State<AdminState>) -> Result<Json<Value>, ApiError> {
    let mut listed = Vec::new();
    for smsc in state.smsc_names.iter() {
        let queued = state
            .store
            .pending_replies(smsc, &|_| false, OUTBOX_LISTED)
            .await
            .map_err(ApiError::internal)?;
        listed.extend(queued.into_iter().map(|(id, sms)| {
            json!({
                "id": id,
                "smsc": sms.smsc,
                "to": sms.to.masked(),
                "chars": sms.text.chars().count(),
                "created_at": sms.created_at,
            })
        }));
    }
    Ok(Json(json!({ "outbox": listed })))
}

/// Drops a queued SMS for good; durable before the 200.
async fn drop_reply(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id: u64 = id
        .parse()
        .map_err(|_| ApiError::bad_request("bad_id", "the id is a decimal number"))?;
    state
        .store
        .ack_reply(id)
        .await
        .map_err(ApiError::internal)?;
    state.store.sync().await.map_err(ApiError::internal)?;
    info!(id, "queued SMS dropped on an operator's request");
    Ok(Json(json!({ "dropped": id })))
}

async fn list_inbox(State(state): State<AdminState>) -> Result<Json<Value>, ApiError> {
    let mos = state
        .store
        .oldest_mos(INBOX_LISTED)
        .await
        .map_err(ApiError::internal)?;
    let listed: Vec<Value> = mos
        .into_iter()
        .map(|(id, mo)| {
            json!({
                "id": id,
                "smsc": mo.smsc,
                "from": masked_sender(&mo.source_addr),
                "received_at": mo.received_at,
            })
        })
        .collect();
    Ok(Json(json!({ "inbox": listed })))
}

async fn list_rejected(State(state): State<AdminState>) -> Result<Json<Value>, ApiError> {
    let rejected = state
        .store
        .rejected_mos()
        .await
        .map_err(ApiError::internal)?;
    let listed: Vec<Value> = rejected
        .into_iter()
        .map(|r| {
            json!({
                "smsc": r.mo.smsc,
                "from": masked_sender(&r.mo.source_addr),
                "reason": r.reason,
                "received_at": r.mo.received_at,
            })
        })
        .collect();
    Ok(Json(json!({ "rejected": listed })))
}

/// A sender as an SMSC wrote it, with all but its first three and last four characters
/// hidden (it may not be a number at all).
fn masked_sender(addr: &str) -> String {
    let chars: Vec<char> = addr.chars().collect();
    if chars.len() <= 7 {
        return "*".repeat(chars.len());
    }
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i < 3 || i >= chars.len() - 4 {
                *c
            } else {
                '*'
            }
        })
        .collect()
}
