//! A backend's webhook endpoint, built for the tests: it verifies every call with
//! `signing::verify`, refuses stale timestamps and acts on each `event_id` once, as
//! protocol/webhooks.md tells receivers to do. It can be told to answer 503 for a while.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use moauth::core::clock::Clock;
use moauth::signing;
use serde_json::Value;
use tokio::sync::mpsc;

use super::PATIENCE;

pub const TOLERANCE_SECS: u64 = 300;

#[derive(Clone)]
pub struct ReceiverState {
    pub secret: &'static str,
    /// The daemon's clock, so "now" is the same on both ends; the system's until set.
    clock: Arc<Mutex<Clock>>,
    /// The event_ids acted on.
    pub seen: Arc<Mutex<HashSet<String>>>,
    /// Calls to answer 503 before accepting any.
    pub refuse: Arc<AtomicUsize>,
    /// Every call, refused or not.
    pub calls: Arc<AtomicUsize>,
    /// The signature header and body of each call acted on.
    pub accepted: Arc<Mutex<Vec<(String, Bytes)>>>,
    events: mpsc::UnboundedSender<Value>,
}

pub struct Receiver {
    pub addr: SocketAddr,
    pub state: ReceiverState,
    pub events: mpsc::UnboundedReceiver<Value>,
}

async fn receive(
    State(r): State<ReceiverState>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    r.calls.fetch_add(1, Ordering::SeqCst);
    if r.refuse
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return (StatusCode::SERVICE_UNAVAILABLE, "down".into());
    }
    let header = headers
        .get(signing::HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let now = r.clock.lock().unwrap().now();
    if let Err(e) = signing::verify(r.secret.as_bytes(), &header, &body, now, TOLERANCE_SECS) {
        return (StatusCode::UNAUTHORIZED, e.to_string());
    }
    let event: Value = serde_json::from_slice(&body).unwrap();
    let id = event["event_id"].as_str().unwrap().to_owned();
    // A repeat is acknowledged (so the sender stops) but not acted on again.
    if !r.seen.lock().unwrap().insert(id) {
        return (StatusCode::OK, "duplicate".into());
    }
    r.accepted.lock().unwrap().push((header, body));
    r.events.send(event).unwrap();
    (StatusCode::OK, "ok".into())
}

impl Receiver {
    pub async fn start(secret: &'static str) -> Receiver {
        let (events, rx) = mpsc::unbounded_channel();
        let state = ReceiverState {
            secret,
            clock: Arc::new(Mutex::new(Clock::System)),
            seen: Arc::default(),
            refuse: Arc::default(),
            calls: Arc::default(),
            accepted: Arc::default(),
            events,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/events", post(receive))
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver {
            addr,
            state,
            events: rx,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/events", self.addr)
    }

    pub fn keep_time_with(&self, clock: &Clock) {
        *self.state.clock.lock().unwrap() = clock.clone();
    }

    pub async fn next_event(&mut self) -> Value {
        tokio::time::timeout(PATIENCE, self.events.recv())
            .await
            .expect("no webhook event arrived")
            .unwrap()
    }

    /// Sends a call this receiver accepted once, again, as an attacker who captured it would.
    pub async fn replay(&self, index: usize) -> (u16, String) {
        let (header, body) = self.state.accepted.lock().unwrap()[index].clone();
        self.send(header, body).await
    }

    pub async fn send(&self, header: String, body: Bytes) -> (u16, String) {
        let response = super::http_client()
            .post(self.url())
            .header(signing::HEADER, header)
            .body(body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }
}
