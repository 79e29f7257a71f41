//! The remote auth core (issue 5) over real sockets: MOs through the simulator and SMPP, the
//! daemon's signed requests to an auth core that this test runs on loopback (axum), and the
//! app's polls over HTTP.
//!
//! The test auth core follows protocol/auth-core.md: it checks the signature, deduplicates by
//! request_id and can be switched down (503), to refusing, or to sitting on the first request
//! of each id. Every request it receives is reported on a channel, so the tests wait for
//! events, never for time.

use crate::common;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::{ALICE, BOB, Harness, PATIENCE, START};
use moauth::core::clock::Clock;
use moauth::core::token::Token;
use moauth::daemon::Options;
use moauth::ops::config::{AuthMode, RemoteAuthConfig};
use moauth::signing;
use serde_json::{Value, json};
use tokio::sync::mpsc;

pub const SECRET: &str = "shared secret of the test auth core";
const CAROL: &str = "+8613700137000";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Up,
    /// 503 to everything.
    Down,
    /// `{"refused": "account_suspended"}` to everything.
    Refusing,
    /// Works out the answer for a new request_id, then never sends it; answers repeats.
    SlowFirst,
}

/// One request as the test auth core saw it.
#[derive(Debug, Clone)]
struct Seen {
    header: String,
    body: Vec<u8>,
    json: Value,
    signature_ok: bool,
    status: u16,
}

impl Seen {
    fn request_id(&self) -> &str {
        self.json["request_id"].as_str().unwrap_or_default()
    }
    fn msisdn(&self) -> &str {
        self.json["msisdn"].as_str().unwrap_or_default()
    }
}

struct CoreState {
    clock: Mutex<Clock>,
    mode: Mutex<Mode>,
    /// request_id → answer: the deduplication the protocol asks for.
    answers: Mutex<HashMap<String, Value>>,
    /// msisdn → account id.
    accounts: Mutex<HashMap<String, String>>,
    /// How many answers were worked out (not replayed from `answers`).
    computed: Mutex<usize>,
    held: Mutex<HashSet<String>>,
    /// An older auth core: creates accounts whatever `may_create` says.
    ignores_may_create: Mutex<bool>,
    seen: mpsc::UnboundedSender<Seen>,
}

struct AuthCore {
    url: String,
    state: Arc<CoreState>,
    seen: mpsc::UnboundedReceiver<Seen>,
    /// One event per TLS handshake that failed (HTTPS only).
    handshake_failures: mpsc::UnboundedReceiver<()>,
}

impl AuthCore {
    async fn start(mode: Mode) -> AuthCore {
        Self::start_with(mode, None).await
    }

    /// Over HTTPS with this certificate and key.
    async fn start_tls(mode: Mode, tls: Arc<rustls::ServerConfig>) -> AuthCore {
        Self::start_with(mode, Some(tls)).await
    }

    async fn start_with(mode: Mode, tls: Option<Arc<rustls::ServerConfig>>) -> AuthCore {
        let (tx, seen) = mpsc::unbounded_channel();
        let state = Arc::new(CoreState {
            clock: Mutex::new(Clock::manual(START)),
            mode: Mutex::new(mode),
            answers: Mutex::default(),
            accounts: Mutex::default(),
            computed: Mutex::new(0),
            held: Mutex::default(),
            ignores_may_create: Mutex::new(false),
            seen: tx,
        });
        let app = axum::Router::new()
            .route("/login", post(handle))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (handshake_failed, handshake_failures) = mpsc::unbounded_channel();
        let scheme = match tls {
            None => {
                tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
                "http"
            }
            Some(config) => {
                let tls = TlsListener {
                    tcp: listener,
                    acceptor: tokio_rustls::TlsAcceptor::from(config),
                    failed: handshake_failed,
                };
                tokio::spawn(async move { axum::serve(tls, app).await.unwrap() });
                "https"
            }
        };
        AuthCore {
            url: format!("{scheme}://{addr}/login"),
            state,
            seen,
            handshake_failures,
        }
    }

    fn url(&self) -> String {
        self.url.clone()
    }

    /// Checks signatures against the daemon's clock, as a real auth core checks its own.
    fn use_clock(&self, clock: &Clock) {
        *self.state.clock.lock().unwrap() = clock.clone();
    }

    fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    fn computed(&self) -> usize {
        *self.state.computed.lock().unwrap()
    }

    /// The next request the auth core receives.
    async fn next(&mut self) -> Seen {
        tokio::time::timeout(PATIENCE, self.seen.recv())
            .await
            .expect("the auth core got no request")
            .unwrap()
    }

    /// Everything received so far that was not yet read.
    fn drain(&mut self) -> Vec<Seen> {
        std::iter::from_fn(|| self.seen.try_recv().ok()).collect()
    }
}

/// HTTPS for axum: TLS on each accepted connection; a failed handshake is reported.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    failed: mpsc::UnboundedSender<()>,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            match self.acceptor.accept(tcp).await {
                Ok(tls) => return (tls, addr),
                Err(_) => {
                    let _ = self.failed.send(());
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

async fn handle(
    State(core): State<Arc<CoreState>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    let header = headers
        .get(signing::HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let now = core.clock.lock().unwrap().now();
    let signature_ok = signing::verify(SECRET.as_bytes(), &header, &body, now, 300).is_ok();
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mode = *core.mode.lock().unwrap();
    let report = |status: StatusCode| {
        let _ = core.seen.send(Seen {
            header: header.clone(),
            body: body.to_vec(),
            json: request.clone(),
            signature_ok,
            status: status.as_u16(),
        });
    };
    if !signature_ok {
        report(StatusCode::UNAUTHORIZED);
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "error": "bad signature" })),
        );
    }
    if mode == Mode::Down {
        report(StatusCode::SERVICE_UNAVAILABLE);
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": "down" })),
        );
    }
    let id = request["request_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let known = core.answers.lock().unwrap().get(&id).cloned();
    let answer = match known {
        Some(answer) => answer,
        None => {
            *core.computed.lock().unwrap() += 1;
            let msisdn = request["msisdn"].as_str().unwrap_or_default().to_owned();
            let answer = {
                let mut accounts = core.accounts.lock().unwrap();
                let created = !accounts.contains_key(&msisdn);
                // protocol/auth-core.md: `may_create: false` makes no account.
                let may_create =
                    request["may_create"] != false || *core.ignores_may_create.lock().unwrap();
                if mode == Mode::Refusing {
                    json!({ "refused": "account_suspended" })
                } else if created && !may_create {
                    json!({ "refused": "new_accounts_limited" })
                } else {
                    let n = accounts.len();
                    let account_id = accounts
                        .entry(msisdn.clone())
                        .or_insert_with(|| format!("acct-{n}"))
                        .clone();
                    let mut answer = json!({
                        "account_id": account_id,
                        "created": created,
                        "session": format!("app-session {{{id}}} for {account_id}"),
                    });
                    if created {
                        answer["credentials"] = json!({ "login": format!("user{n}"), "password": format!("pw-{n}-secret") });
                    }
                    answer
                }
            };
            core.answers
                .lock()
                .unwrap()
                .insert(id.clone(), answer.clone());
            if mode == Mode::SlowFirst && core.held.lock().unwrap().insert(id) {
                report(StatusCode::OK);
                // The work is done, the answer never leaves: moauth must time out and ask again.
                return std::future::pending().await;
            }
            answer
        }
    };
    report(StatusCode::OK);
    (StatusCode::OK, Json(answer))
}

/// `[auth.remote]` for an auth core at `url`: quick retries, a breaker that stays closed.
pub fn remote_config(url: String) -> RemoteAuthConfig {
    RemoteAuthConfig {
        url,
        secret: SECRET.into(),
        timeout_ms: 5_000,
        retries: 1,
        backoff_initial_ms: 10,
        backoff_max_ms: 50,
        max_wait_secs: 900,
        breaker_failures: 100,
        breaker_open_secs: 1,
        ca_file: None,
        logout_url: None,
    }
}

/// The daemon with its auth core at `core`; `tweak` adjusts `[auth.remote]`.
async fn start(core: &AuthCore, tweak: impl FnOnce(&mut RemoteAuthConfig)) -> Harness {
    let mut remote = remote_config(core.url());
    tweak(&mut remote);
    let h = Harness::start_with(Options::default(), move |config| {
        config.auth.mode = AuthMode::Remote;
        config.auth.remote = Some(remote);
    })
    .await;
    core.use_clock(&h.clock);
    h
}

fn login_text(token: &Token) -> String {
    format!("LOGIN {token}")
}

#[tokio::test]
async fn the_signed_request_verifies_and_follows_its_schema() {
    let mut core = AuthCore::start(Mode::Up).await;
    let h = start(&core, |_| {}).await;
    let (_, token) = h.app_token(5);
    h.phone_sends(ALICE, &login_text(&token)).await;

    let seen = core.next().await;
    assert!(
        seen.signature_ok,
        "signature did not verify: {}",
        seen.header
    );
    assert!(
        signing::verify(b"another secret", &seen.header, &seen.body, START, 300).is_err(),
        "the signature must depend on the secret"
    );
    assert!(
        signing::verify(
            SECRET.as_bytes(),
            &seen.header,
            &seen.body,
            START + 301,
            300
        )
        .is_err(),
        "the signature must carry a timestamp a receiver can hold against replays"
    );
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/protocol/auth-core.request.schema.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&seen.json)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{}: {errors:?}", seen.json);
    assert_eq!(seen.json["msisdn"], ALICE);
    assert_eq!(seen.json["token"], token.compact());
    assert_eq!(seen.json["channel"], "sms");
    assert_eq!(seen.json["received_at"], START);
    assert_eq!(h.readyz().await["auth_core"], "closed");
}

#[tokio::test]
async fn new_user_gets_the_credential_sms_the_auth_core_asked_for_and_its_session() {
    let mut core = AuthCore::start(Mode::Up).await;
    let h = start(&core, |_| {}).await;
    let (verifier, token) = h.app_token(0);
    h.phone_sends(ALICE, &login_text(&token)).await;

    let (_, answer) = h.poll(&verifier, &token, 10_000).await;
    let seen = core.next().await;
    let session = format!("app-session {{{}}} for acct-0", seen.request_id());
    assert_eq!(
        answer,
        json!({ "state": "complete", "session": session, "account_id": "acct-0", "created": true, "msisdn": "+86 138****8000" })
    );
    let sms = h.settled_submits(1).await;
    assert_eq!(sms[0].to, ALICE);
    assert_eq!(
        sms[0].text,
        "moauth: your account is user0, password pw-0-secret. Keep it private."
    );
    assert_eq!(
        h.daemon().store.account_count().await.unwrap(),
        0,
        "the remote core keeps the accounts"
    );

    // Returning: the auth core sends no credentials, so no SMS.
    let (v2, t2) = h.app_token(0);
    h.phone_sends(ALICE, &login_text(&t2)).await;
    let (_, again) = h.poll(&v2, &t2, 10_000).await;
    assert_eq!(again["created"], false);
    assert_eq!(again["account_id"], "acct-0");
    assert_ne!(core.next().await.request_id(), seen.request_id());
    h.settled_submits(1).await;
}

#[tokio::test]
async fn a_refusal_becomes_a_rejection_sms_and_state() {
    let mut core = AuthCore::start(Mode::Refusing).await;
    let h = start(&core, |_| {}).await;
    let (verifier, token) = h.app_token(0);
    h.phone_sends(BOB, &login_text(&token)).await;

    let (_, answer) = h.poll(&verifier, &token, 10_000).await;
    assert_eq!(
        answer,
        json!({ "state": "rejected", "reason": "auth_core_refused" })
    );
    let sms = h.settled_submits(1).await;
    assert_eq!(sms[0].to, BOB);
    assert!(sms[0].text.contains("cannot log you in"), "{}", sms[0].text);
    assert_eq!(core.next().await.status, 200);
    assert_eq!(h.daemon().store.depths().inbox, 0);
}

#[tokio::test]
async fn a_client_error_is_final_and_not_retried() {
    let mut core = AuthCore::start(Mode::Up).await;
    let h = start(&core, |remote| {
        remote.secret = "not the auth core's secret".into()
    })
    .await;
    let (verifier, token) = h.app_token(0);
    h.phone_sends(ALICE, &login_text(&token)).await;

    let (_, answer) = h.poll(&verifier, &token, 10_000).await;
    assert_eq!(
        answer,
        json!({ "state": "rejected", "reason": "auth_core_refused" })
    );
    h.settled_submits(1).await;
    let seen = core.drain();
    assert_eq!(
        seen.iter().map(|s| s.status).collect::<Vec<_>>(),
        [401],
        "a 4xx must not be retried"
    );
}

#[tokio::test]
async fn auth_core_down_for_a_while_mos_wait_and_complete_in_arrival_order() {
    let mut core = AuthCore::start(Mode::Down).await;
    let h = start(&core, |remote| remote.breaker_failures = 2).await;
    let phones = [ALICE, BOB, CAROL];
    let mut logins = Vec::new();
    for phone in phones {
        let (verifier, token) = h.app_token(0);
        assert_eq!(
            h.phone_sends(phone, &login_text(&token)).await.statuses,
            [0],
            "acknowledged while the auth core is down"
        );
        logins.push((verifier, token));
    }
    // Two failed requests open the breaker: the auth core is left alone for a while.
    let failed = core.next().await;
    assert_eq!(failed.status, 503);
    common::eventually("the breaker open", async || {
        h.readyz().await["auth_core"] == "open"
    })
    .await;
    let readyz = h.http.get(h.api("/readyz")).send().await.unwrap();
    assert_eq!(
        readyz.status(),
        200,
        "a down auth core does not fail readiness"
    );
    for (verifier, token) in &logins {
        assert_eq!(h.poll(verifier, token, 0).await.1["state"], "pending");
    }
    assert_eq!(h.daemon().store.depths().inbox, 3, "nothing lost");

    core.set_mode(Mode::Up);
    for (verifier, token) in &logins {
        let (_, answer) = h.poll(verifier, token, 20_000).await;
        assert_eq!(answer["state"], "complete", "{answer}");
        assert_eq!(answer["created"], true);
    }
    let sms = h.settled_submits(3).await;
    assert_eq!(
        sms.iter().map(|s| s.to.as_str()).collect::<Vec<_>>(),
        phones
    );

    let mut all = vec![failed];
    all.extend(core.drain());
    let answered: Vec<&str> = all
        .iter()
        .filter(|s| s.status == 200)
        .map(Seen::msisdn)
        .collect();
    assert_eq!(answered, phones, "answered in order of arrival, each once");
    let first_asked: Vec<&str> = all.iter().fold(Vec::new(), |mut order, s| {
        if !order.contains(&s.msisdn()) {
            order.push(s.msisdn());
        }
        order
    });
    assert_eq!(
        first_asked, phones,
        "a later MO was asked before an earlier one"
    );
    assert_eq!(h.readyz().await["auth_core"], "closed");
}

#[tokio::test]
async fn slow_auth_core_times_out_and_the_retry_with_the_same_request_id_is_processed_once() {
    let mut core = AuthCore::start(Mode::SlowFirst).await;
    let h = start(&core, |remote| remote.timeout_ms = 1_000).await;
    let (verifier, token) = h.app_token(0);
    h.phone_sends(ALICE, &login_text(&token)).await;

    let (_, answer) = h.poll(&verifier, &token, 20_000).await;
    assert_eq!(answer["state"], "complete", "{answer}");
    assert_eq!(answer["created"], true);
    let seen = core.drain();
    assert!(seen.len() >= 2, "no retry after the timeout: {seen:?}");
    let ids: HashSet<&str> = seen.iter().map(Seen::request_id).collect();
    assert_eq!(ids.len(), 1, "every retry carries the same request_id");
    assert!(seen.iter().all(|s| s.signature_ok));
    assert_eq!(core.computed(), 1, "the auth core did the work once");
    let session = format!("app-session {{{}}} for acct-0", seen[0].request_id());
    assert_eq!(answer["session"], session);
    let sms = h.settled_submits(1).await;
    assert!(sms[0].text.contains("pw-0-secret"), "{}", sms[0].text);
}

#[tokio::test]
async fn a_daemon_restart_while_mos_wait_keeps_them_and_they_complete() {
    let mut core = AuthCore::start(Mode::Down).await;
    let mut h = start(&core, |_| {}).await;
    let mut logins = Vec::new();
    for phone in [ALICE, BOB] {
        let (verifier, token) = h.app_token(0);
        h.phone_sends(phone, &login_text(&token)).await;
        logins.push((verifier, token));
    }
    let before = core.next().await;
    assert_eq!((before.status, before.msisdn()), (503, ALICE));

    h.restart(Options::default()).await;
    assert_eq!(
        h.daemon().store.depths().inbox,
        2,
        "the waiting MOs survived"
    );
    for (verifier, token) in &logins {
        assert_eq!(h.poll(verifier, token, 0).await.1["state"], "pending");
    }
    core.set_mode(Mode::Up);
    for (verifier, token) in &logins {
        assert_eq!(h.poll(verifier, token, 20_000).await.1["state"], "complete");
    }
    h.settled_submits(2).await;
    assert_eq!(h.daemon().store.depths().inbox, 0);
    let after: Vec<Seen> = core
        .drain()
        .into_iter()
        .filter(|s| s.status == 200)
        .collect();
    assert_eq!(after.len(), 2);
    assert_eq!(
        after[0].request_id(),
        before.request_id(),
        "the request_id is the same after a restart"
    );
}

#[tokio::test]
async fn an_mo_that_waits_too_long_is_rejected_with_an_apology() {
    // Nothing listens at the auth core's address: every request is a connect error.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let h = Harness::start_with(Options::default(), |config| {
        config.auth.mode = AuthMode::Remote;
        config.auth.remote = Some(remote_config(format!("http://{addr}/login")));
    })
    .await;
    let (verifier, token) = h.app_token(0);
    h.phone_sends(ALICE, &login_text(&token)).await;

    // Waiting: still pending after the token's own window (600 s) has passed.
    common::eventually("the login marked waiting", async || {
        h.daemon()
            .store
            .login(&token.challenge())
            .await
            .unwrap()
            .is_some()
    })
    .await;
    h.clock.advance(700);
    assert_eq!(h.poll(&verifier, &token, 0).await.1["state"], "pending");
    assert_eq!(h.daemon().store.depths().inbox, 1);

    h.clock.advance(200);
    let (_, answer) = h.poll(&verifier, &token, 20_000).await;
    assert_eq!(
        answer,
        json!({ "state": "rejected", "reason": "auth_core_unavailable" })
    );
    let sms = h.settled_submits(1).await;
    assert_eq!(sms[0].to, ALICE);
    assert!(sms[0].text.contains("sorry"), "{}", sms[0].text);
    assert_eq!(h.daemon().store.depths().inbox, 0);
}

#[tokio::test]
async fn the_auth_core_is_reached_over_https_with_a_private_ca() {
    let (tls, pem) = common::self_signed("127.0.0.1");
    let mut core = AuthCore::start_tls(Mode::Up, tls).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("auth-core-ca.pem");
    std::fs::write(&ca, pem).unwrap();
    let h = start(&core, |remote| remote.ca_file = Some(ca)).await;
    let (verifier, token) = h.app_token(0);
    h.phone_sends(ALICE, &login_text(&token)).await;

    let (_, answer) = h.poll(&verifier, &token, 10_000).await;
    assert_eq!(answer["state"], "complete", "{answer}");
    assert!(core.next().await.signature_ok);
    h.settled_submits(1).await;
}

#[tokio::test]
async fn an_auth_core_certificate_nobody_vouches_for_is_refused() {
    let (tls, _) = common::self_signed("127.0.0.1");
    let mut core = AuthCore::start_tls(Mode::Up, tls).await;
    // No ca_file: the Mozilla roots do not know the test's self-signed certificate.
    let h = start(&core, |_| {}).await;
    let (verifier, token) = h.app_token(0);
    h.phone_sends(ALICE, &login_text(&token)).await;

    tokio::time::timeout(PATIENCE, core.handshake_failures.recv())
        .await
        .expect("moauth never tried the handshake")
        .unwrap();
    assert_eq!(h.poll(&verifier, &token, 0).await.1["state"], "pending");
    assert!(core.drain().is_empty(), "a request got through");
    assert_eq!(h.daemon().store.depths().inbox, 1, "the MO waits");
}

#[tokio::test]
async fn credentials_sessions_and_the_signing_secret_never_reach_the_logs() {
    let mut core = AuthCore::start(Mode::Up).await;
    core.use_clock(&Clock::System);
    let extra = format!(
        "[auth]\nmode = \"remote\"\n\n[auth.remote]\nurl = \"{}\"\nsecret_env = \"MOAUTH_TEST_AUTH_CORE_SECRET\"\n",
        core.url()
    );
    let mut d = common::process::Spawned::start(
        &extra,
        &[
            ("RUST_LOG", "trace"),
            ("MOAUTH_TEST_AUTH_CORE_SECRET", SECRET),
        ],
    )
    .await;
    let verifier = moauth::core::token::Verifier::random();
    let token = Token::for_verifier(&verifier, Clock::System.now());
    d.phone_sends(ALICE, &login_text(&token)).await;

    let (_, answer) =
        common::poll_login(&common::http_client(), d.http, &verifier, &token, 10_000).await;
    assert_eq!(answer["state"], "complete", "{answer}");
    let seen = core.next().await;
    assert!(seen.signature_ok, "secret_env did not reach the signature");
    let sms = d.nth_submit(1).await.text;
    assert!(sms.contains("pw-0-secret"), "{sms}");

    d.stop_and_check_secrets(&[
        ("the password from the auth core", "pw-0-secret"),
        (
            "the session from the auth core",
            answer["session"].as_str().unwrap(),
        ),
        ("the signing secret", SECRET),
        ("the signature", seen.header.as_str()),
    ])
    .await;
}

/// Review item 8 in remote mode: a prefix over its new-account limit must not lock out the
/// numbers the auth core already knows. moauth cannot ask beforehand, so it asks the core to
/// log the number in without creating an account (`may_create: false`), and only accounts the
/// core reports as created count against the prefix.
#[tokio::test]
async fn a_prefix_over_its_new_account_limit_still_lets_the_auth_cores_known_users_in() {
    let mut core = AuthCore::start(Mode::Up).await;
    let mut remote = remote_config(core.url());
    remote.retries = 0;
    let h = Harness::start_with(Options::default(), move |config| {
        config.auth.mode = AuthMode::Remote;
        config.auth.remote = Some(remote);
        config.limits.new_accounts_per_prefix_per_hour = 1;
        config.limits.new_account_prefix_digits = 9;
    })
    .await;
    core.use_clock(&h.clock);
    let log_in = async |from: &str| {
        let (verifier, token) = h.app_token(0);
        h.phone_sends(from, &login_text(&token)).await;
        h.poll(&verifier, &token, 10_000).await.1
    };
    // ALICE's account fills the prefix's hour.
    assert_eq!(log_in(ALICE).await["created"], true);
    assert_eq!(core.next().await.json["may_create"], true);

    // A stranger of the same prefix: the core is asked, but may not create the account.
    let stranger = "+8613800138001";
    assert_eq!(
        log_in(stranger).await,
        json!({ "state": "rejected", "reason": "rate_limited" })
    );
    let asked = core.next().await;
    assert_eq!(
        (asked.msisdn(), &asked.json["may_create"]),
        (stranger, &json!(false))
    );

    // ALICE is known to the core: she still logs in.
    let again = log_in(ALICE).await;
    assert_eq!(
        (&again["state"], &again["created"]),
        (&json!("complete"), &json!(false)),
        "{again}"
    );

    // A core that predates `may_create` creates the account anyway: the login is refused all
    // the same and its credentials are not texted.
    *core.state.ignores_may_create.lock().unwrap() = true;
    let other = "+8613800138002";
    assert_eq!(
        log_in(other).await,
        json!({ "state": "rejected", "reason": "rate_limited" })
    );
    assert!(core.state.accounts.lock().unwrap().contains_key(other));
    let sms = h.settled_submits(1).await;
    assert_eq!(sms[0].to, ALICE, "only ALICE's credentials: {sms:?}");
}
