//! The remote auth core: the app's own account system, asked over HTTP (protocol/auth-core.md).
//!
//! One `reqwest::Client` lives as long as the daemon, so connections (and TLS sessions) are
//! reused. Each MO is one signed `POST`; a connect error, a timeout, a 408/429 or a 5xx is
//! retried with [`Backoff`] (same body, same `request_id`, fresh signature timestamp), other
//! 4xx are final. When the retries are spent the pipeline gets [`AuthError::Unavailable`] and
//! the MO stays in the inbox; the [`Breaker`] keeps a down auth core from being hammered by
//! every retry of every MO.
//!
//! The request id is not the bare inbox id: sled ids start again in a new store, and an auth
//! core that remembered an old id would hand a stranger the old answer (a session). It is a
//! digest of the inbox id with the MO's number, token and arrival time, all stored with the
//! MO, so it is the same on every retry and after a restart, and new for every other MO.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::{FutureExt, TryFutureExt};
use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;
use tracing::{error, info, warn};

use super::backoff::Backoff;
use super::breaker::{Admit, Breaker};
use super::config::RemoteAuthConfig;
use crate::core::auth::{
    AuthAnswer, AuthCore, AuthError, AuthRequest, ByNumber, Credentials, Granted,
};
use crate::core::clock::{Clock, UnixSecs};
use crate::core::health::AuthCoreHealth;
use crate::core::msisdn::Msisdn;
use crate::signing;
use crate::smpp::tls::{TlsError, root_store};

/// Answers larger than this are not an auth-core answer; reading stops there.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Limits of protocol/auth-core.answer.schema.json.
const MAX_ID_LEN: usize = 256;
const MAX_SESSION_LEN: usize = 4096;
const MAX_CREDENTIAL_LEN: usize = 64;
const MAX_REASON_LEN: usize = 64;

/// Why plain `http://` is refused for the auth core beyond loopback.
pub const PLAIN_HTTP_REFUSED: &str = "the answer may carry a password";

/// Why plain `http://` is refused for the logout URL beyond loopback.
pub const LOGOUT_PLAIN_HTTP_REFUSED: &str = "it names a number";

#[derive(Debug, Error)]
pub enum RemoteError {
    /// Never a silent fallback to the embedded core: accounts would land in the wrong place.
    #[error("[auth] mode = \"remote\" needs an [auth.remote] table")]
    NotConfigured,
    #[error("auth core url: {0}")]
    Url(String),
    #[error("auth core HTTP client: {0}")]
    Client(String),
    #[error("auth core TLS: {0}")]
    Tls(#[from] TlsError),
}

/// The request body (protocol/auth-core.request.schema.json).
#[derive(Debug, Serialize)]
struct WireRequest<'a> {
    msisdn: &'a str,
    token: String,
    channel: &'static str,
    received_at: UnixSecs,
    request_id: String,
    /// False: the number's prefix is past its new-account limit; log it in only if known.
    may_create: bool,
}

impl<'a> WireRequest<'a> {
    fn new(request: &'a AuthRequest) -> Self {
        WireRequest {
            msisdn: request.msisdn.as_str(),
            token: request.token.compact(),
            channel: "sms",
            received_at: request.received_at,
            request_id: wire_request_id(request),
            may_create: request.may_create,
        }
    }
}

/// 128 bits of SHA-256 over everything stored with the MO that identifies it; see the module
/// documentation for why not the inbox id alone.
fn wire_request_id(request: &AuthRequest) -> String {
    let mut h = Sha256::new();
    h.update(b"moauth auth-core request v1\0");
    h.update(request.request_id.to_be_bytes());
    h.update(request.received_at.to_be_bytes());
    h.update(request.msisdn.as_str().as_bytes());
    h.update(b"\0");
    h.update(request.token.compact().as_bytes());
    hex::encode(&h.finalize()[..16])
}

/// The answer body (protocol/auth-core.answer.schema.json): a login or a refusal. Members
/// moauth does not know are ignored, so an auth core may add its own.
#[derive(Deserialize)]
struct WireAnswer {
    refused: Option<String>,
    account_id: Option<String>,
    created: Option<bool>,
    session: Option<String>,
    credentials: Option<Credentials>,
}

/// What one request came to.
#[derive(Debug, PartialEq, Eq)]
enum Attempt {
    Answer(AuthAnswer),
    /// `{ "refused": reason }`.
    Refused(String),
    /// A 4xx other than 408/429: the auth core will not take this request, now or later.
    Final(StatusCode),
    /// Worth another try: a connect error, a timeout, 408/429/5xx, a garbled answer.
    Failed(String),
}

/// Reads an HTTP answer; pure, so every branch is a unit test.
fn classify(status: StatusCode, body: &[u8]) -> Attempt {
    if status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
    {
        return Attempt::Failed(format!("HTTP {}", status.as_u16()));
    }
    if !status.is_success() {
        return Attempt::Final(status);
    }
    let garbled =
        |why: &str| Attempt::Failed(format!("answer does not follow the protocol: {why}"));
    // serde's own message quotes the offending value, which may be a password: name the
    // field and the position only.
    let answer: WireAnswer =
        match serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(body)) {
            Ok(answer) => answer,
            Err(e) => {
                let (path, inner) = (e.path().to_string(), e.into_inner());
                let at = format!("line {}, column {}", inner.line(), inner.column());
                return garbled(&if inner.is_data() {
                    format!("`{path}` has the wrong type or value ({at})")
                } else {
                    format!("not a JSON object ({at})")
                });
            }
        };
    if let Some(reason) = answer.refused {
        if reason.is_empty() || reason.len() > MAX_REASON_LEN {
            return garbled("`refused` must be 1 to 64 characters");
        }
        return Attempt::Refused(reason);
    }
    let (Some(account_id), Some(created), Some(session)) =
        (answer.account_id, answer.created, answer.session)
    else {
        return garbled("a login needs account_id, created and session");
    };
    if account_id.is_empty() || account_id.len() > MAX_ID_LEN {
        return garbled("account_id must be 1 to 256 characters");
    }
    if session.is_empty() || session.len() > MAX_SESSION_LEN {
        return garbled("session must be 1 to 4096 characters");
    }
    if let Some(c) = &answer.credentials
        && [&c.login, &c.password]
            .iter()
            .any(|s| s.is_empty() || s.len() > MAX_CREDENTIAL_LEN)
    {
        return garbled("credentials.login and .password must be 1 to 64 characters");
    }
    Attempt::Answer(AuthAnswer {
        account_id,
        created,
        session,
        credentials: answer.credentials,
    })
}

pub struct RemoteAuth {
    client: reqwest::Client,
    url: Url,
    secret: Vec<u8>,
    /// `[auth.remote] logout_url`, checked like `url`.
    logout_url: Option<Url>,
    clock: Clock,
    backoff: Backoff,
    max_wait_secs: u64,
    breaker: Mutex<Breaker>,
}

impl RemoteAuth {
    pub fn new(config: &RemoteAuthConfig, clock: Clock) -> Result<RemoteAuth, RemoteError> {
        let url =
            signing::check_url(&config.url, false, PLAIN_HTTP_REFUSED).map_err(RemoteError::Url)?;
        let logout_url = config
            .logout_url
            .as_deref()
            .map(|url| signing::check_url(url, false, LOGOUT_PLAIN_HTTP_REFUSED))
            .transpose()
            .map_err(RemoteError::Url)?;
        let timeout = Duration::from_millis(config.timeout_ms);
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config(config.ca_file.as_deref())?)
            .timeout(timeout)
            .connect_timeout(timeout)
            // A signed request goes where the config says, nowhere else.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("moauth/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| RemoteError::Client(e.to_string()))?;
        AuthCoreHealth::Closed.publish();
        Ok(RemoteAuth {
            client,
            url,
            secret: config.secret.expose().as_bytes().to_vec(),
            logout_url,
            clock,
            backoff: Backoff {
                initial: Duration::from_millis(config.backoff_initial_ms),
                max: Duration::from_millis(config.backoff_max_ms),
                retries: config.retries,
            },
            max_wait_secs: config.max_wait_secs,
            breaker: Mutex::new(Breaker::new(
                config.breaker_failures,
                Duration::from_secs(config.breaker_open_secs),
            )),
        })
    }

    fn breaker(&self) -> std::sync::MutexGuard<'_, Breaker> {
        self.breaker.lock().expect("breaker lock")
    }

    /// The MO is durable in the inbox while this runs: if moauth dies after the auth core
    /// answered and before the outcome is committed, the MO is asked for again after the
    /// restart with the same request_id, and the auth core gives the same answer.
    async fn login_inner(&self, request: &AuthRequest) -> Result<AuthAnswer, AuthError> {
        let body = serde_json::to_vec(&WireRequest::new(request))
            .expect("the auth-core request serialises to JSON");
        let mut retry = 0;
        loop {
            let admit = self.breaker().admit(Instant::now());
            if admit == Admit::No {
                count("unavailable");
                return Err(AuthError::Unavailable("circuit breaker open".into()));
            }
            let attempt = self.attempt(&body).await;
            let now = Instant::now();
            let failure = match attempt {
                Attempt::Answer(answer) => {
                    self.succeeded(now);
                    count("ok");
                    return Ok(answer);
                }
                Attempt::Refused(reason) => {
                    self.succeeded(now);
                    count("refused");
                    return Err(AuthError::Refused(reason));
                }
                Attempt::Final(status) => {
                    self.succeeded(now);
                    count("refused");
                    error!(
                        status = status.as_u16(),
                        "auth core refused the request itself (check [auth.remote] url and secret); login rejected"
                    );
                    return Err(AuthError::Refused(format!("http_{}", status.as_u16())));
                }
                Attempt::Failed(failure) => failure,
            };
            let health = {
                let mut breaker = self.breaker();
                breaker.failure(now);
                breaker.health(now)
            };
            health.publish();
            // A probe is a single request: its failure reopens the breaker.
            let delay = match admit {
                Admit::Yes => self.backoff.delay(retry, rand::random()),
                _ => None,
            };
            match delay {
                Some(delay) if health == AuthCoreHealth::Closed => {
                    count("retry");
                    info!(error = %failure, retry_in_ms = delay.as_millis() as u64, "auth core request failed; retrying");
                    tokio::time::sleep(delay).await;
                    retry += 1;
                }
                _ => {
                    count("unavailable");
                    warn!(error = %failure, breaker = health.as_str(), "auth core unavailable; the MO waits in the inbox");
                    return Err(AuthError::Unavailable(failure));
                }
            }
        }
    }

    /// One signed POST to `logout_url`. 2xx: done; 404: the number has no account there;
    /// 408, 429, 5xx or no answer: unavailable (the MO waits in the inbox and is tried again);
    /// any other status: the core will not do it, and the number is answered with HELP.
    async fn log_out_inner(&self, msisdn: &Msisdn) -> Result<ByNumber<()>, AuthError> {
        let Some(url) = &self.logout_url else {
            return Ok(ByNumber::NotSupported);
        };
        let now = self.clock.now();
        let body = serde_json::to_vec(&serde_json::json!({
            "event": "logout",
            "msisdn": msisdn.as_str(),
            "requested_at": now,
        }))
        .expect("the logout request serialises to JSON");
        let sent = self
            .client
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(signing::HEADER, signing::sign(&self.secret, now, &body))
            .body(body)
            .send()
            .await
            .map_err(|e| AuthError::Unavailable(describe(&e)))?;
        let status = sent.status();
        if status.is_success() {
            Ok(ByNumber::Done(()))
        } else if status == StatusCode::NOT_FOUND {
            Ok(ByNumber::NoAccount)
        } else if status == StatusCode::REQUEST_TIMEOUT
            || status == StatusCode::TOO_MANY_REQUESTS
            || status.is_server_error()
        {
            Err(AuthError::Unavailable(format!(
                "logout: HTTP {}",
                status.as_u16()
            )))
        } else {
            error!(
                status = status.as_u16(),
                "auth core refused the logout request (check [auth.remote] logout_url and secret)"
            );
            Ok(ByNumber::NotSupported)
        }
    }

    fn succeeded(&self, now: Instant) {
        let health = {
            let mut breaker = self.breaker();
            breaker.success();
            breaker.health(now)
        };
        health.publish();
    }

    /// One signed POST; the signature's timestamp is taken now, so a retry is not stale.
    async fn attempt(&self, body: &[u8]) -> Attempt {
        let signature = signing::sign(&self.secret, self.clock.now(), body);
        let sent = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(signing::HEADER, signature)
            .body(body.to_vec())
            .send()
            .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(e) => return Attempt::Failed(describe(&e)),
        };
        let status = response.status();
        let mut answer = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) if answer.len() + chunk.len() <= MAX_ANSWER_BYTES => {
                    answer.extend_from_slice(&chunk)
                }
                Ok(Some(_)) => return Attempt::Failed("answer larger than 64 KiB".into()),
                Ok(None) => break,
                Err(e) => return Attempt::Failed(describe(&e)),
            }
        }
        classify(status, &answer)
    }
}

/// A reqwest error in a few words (its Display omits the cause that matters).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect error"
    } else {
        "request error"
    };
    match std::error::Error::source(e) {
        Some(source) => format!("{kind}: {source}"),
        None => kind.to_owned(),
    }
}

fn count(outcome: &'static str) {
    metrics::counter!("moauth_auth_core_requests_total", "outcome" => outcome).increment(1);
}

/// rustls with ring (as for SMPP over TLS), trusting `ca_file` or the Mozilla roots;
/// HTTP/1.1 only.
fn tls_config(ca_file: Option<&std::path::Path>) -> Result<rustls::ClientConfig, RemoteError> {
    let roots = root_store(ca_file)?;
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| RemoteError::Client(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

impl AuthCore for RemoteAuth {
    /// The app's core stores its own sessions: nothing is left to the pipeline's commit.
    fn login<'a>(&'a self, request: &'a AuthRequest) -> BoxFuture<'a, Result<Granted, AuthError>> {
        self.login_inner(request)
            .map_ok(|answer| Granted {
                answer,
                session: None,
            })
            .boxed()
    }

    /// The auth core keeps its own answers by request id (protocol/auth-core.md); moauth
    /// keeps nothing to forget.
    fn settle<'a>(&'a self, _request_ids: &'a [u64]) -> BoxFuture<'a, Result<(), AuthError>> {
        futures::future::ready(Ok(())).boxed()
    }

    fn log_out<'a>(&'a self, msisdn: &'a Msisdn) -> BoxFuture<'a, Result<ByNumber<()>, AuthError>> {
        self.log_out_inner(msisdn).boxed()
    }

    fn health(&self) -> AuthCoreHealth {
        self.breaker().health(Instant::now())
    }

    fn max_wait_secs(&self) -> Option<u64> {
        Some(self.max_wait_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::token::{Token, Verifier};

    fn request(id: u64) -> AuthRequest {
        AuthRequest {
            request_id: id,
            msisdn: Msisdn::parse("+8613800138000").unwrap(),
            token: Token::for_verifier(&Verifier::random(), 1_800_000_000),
            received_at: 1_800_000_005,
            reply_via: crate::core::outbound::SmsRoute {
                smsc: "sim".into(),
                from: "10690000".into(),
            },
            may_create: true,
        }
    }

    fn schema(name: &str) -> jsonschema::Validator {
        let path = format!("{}/protocol/{name}", env!("CARGO_MANIFEST_DIR"));
        let schema: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        jsonschema::draft202012::new(&schema).unwrap()
    }

    #[test]
    fn request_follows_its_schema_and_its_id_is_stable_per_mo() {
        let r = request(42);
        let body = serde_json::to_value(WireRequest::new(&r)).unwrap();
        let errors: Vec<String> = schema("auth-core.request.schema.json")
            .iter_errors(&body)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{body}: {errors:?}");
        assert_eq!(body["request_id"], wire_request_id(&r));
        let other_token = AuthRequest {
            token: Token::for_verifier(&Verifier::random(), 1_800_000_000),
            ..r.clone()
        };
        assert_ne!(
            wire_request_id(&r),
            wire_request_id(&other_token),
            "a reused inbox id must not reuse the request id"
        );
    }

    #[test]
    fn answers_and_refusals_that_follow_the_schema_are_read() {
        let login = br#"{"account_id":"u-1","created":true,"session":"opaque","credentials":{"login":"alice","password":"pw"},"extra":1}"#;
        let refusal = br#"{"refused":"account_suspended"}"#;
        let answer_schema = schema("auth-core.answer.schema.json");
        for body in [&login[..], &refusal[..]] {
            let value: serde_json::Value = serde_json::from_slice(body).unwrap();
            assert!(answer_schema.is_valid(&value), "{value}");
        }
        let Attempt::Answer(answer) = classify(StatusCode::OK, login) else {
            panic!("not read as a login")
        };
        assert_eq!(
            (
                answer.account_id.as_str(),
                answer.created,
                answer.session.as_str()
            ),
            ("u-1", true, "opaque")
        );
        assert_eq!(answer.credentials.unwrap().login, "alice");
        assert_eq!(
            classify(StatusCode::OK, refusal),
            Attempt::Refused("account_suspended".into())
        );
    }

    #[test]
    fn server_trouble_is_retried_and_client_errors_are_final() {
        for status in [500, 502, 503, 504, 408, 429] {
            let status = StatusCode::from_u16(status).unwrap();
            assert!(
                matches!(classify(status, b""), Attempt::Failed(_)),
                "{status}"
            );
        }
        for status in [400, 401, 403, 404, 422] {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(classify(status, b""), Attempt::Final(status));
        }
    }

    #[test]
    fn a_mistyped_field_is_named_and_its_value_never_quoted() {
        let body = br#"{"account_id":"u","created":true,"session":"s","credentials":{"login":"a","password":["pw-Secret-1"]}}"#;
        let Attempt::Failed(why) = classify(StatusCode::OK, body) else {
            panic!("a mistyped answer is a failure");
        };
        assert!(why.contains("credentials.password"), "{why}");
        assert!(!why.contains("pw-Secret-1"), "{why}");
        let Attempt::Failed(why) = classify(StatusCode::OK, br#"{"created":"pw-Secret-2"}"#) else {
            panic!("a mistyped answer is a failure");
        };
        assert!(
            why.contains("`created`") && !why.contains("pw-Secret-2"),
            "{why}"
        );
    }

    #[test]
    fn garbled_answers_are_failures_not_logins() {
        for body in [
            &b"not json"[..],
            br#"{"account_id":"u-1","created":true}"#,
            br#"{"account_id":"","created":true,"session":"s"}"#,
            br#"{"refused":""}"#,
            br#"{"account_id":"u","created":true,"session":"s","credentials":{"login":"a"}}"#,
        ] {
            assert!(
                matches!(classify(StatusCode::OK, body), Attempt::Failed(_)),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    /// Records counters and gauges as `name{label=value}` → value, for one thread.
    #[derive(Default)]
    struct Recorded(Arc<Mutex<std::collections::BTreeMap<String, f64>>>);

    struct Cell(Arc<Mutex<std::collections::BTreeMap<String, f64>>>, String);

    impl metrics::CounterFn for Cell {
        fn increment(&self, value: u64) {
            *self.0.lock().unwrap().entry(self.1.clone()).or_default() += value as f64;
        }
        fn absolute(&self, value: u64) {
            self.0.lock().unwrap().insert(self.1.clone(), value as f64);
        }
    }

    impl metrics::GaugeFn for Cell {
        fn increment(&self, value: f64) {
            *self.0.lock().unwrap().entry(self.1.clone()).or_default() += value;
        }
        fn decrement(&self, value: f64) {
            *self.0.lock().unwrap().entry(self.1.clone()).or_default() -= value;
        }
        fn set(&self, value: f64) {
            self.0.lock().unwrap().insert(self.1.clone(), value);
        }
    }

    impl Recorded {
        fn cell(&self, key: &metrics::Key) -> Arc<Cell> {
            let labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            Arc::new(Cell(
                self.0.clone(),
                format!("{}{{{}}}", key.name(), labels.join(",")),
            ))
        }
        fn get(&self, name: &str) -> f64 {
            self.0.lock().unwrap().get(name).copied().unwrap_or(0.0)
        }
    }

    impl metrics::Recorder for Recorded {
        fn describe_counter(
            &self,
            _: metrics::KeyName,
            _: Option<metrics::Unit>,
            _: metrics::SharedString,
        ) {
        }
        fn describe_gauge(
            &self,
            _: metrics::KeyName,
            _: Option<metrics::Unit>,
            _: metrics::SharedString,
        ) {
        }
        fn describe_histogram(
            &self,
            _: metrics::KeyName,
            _: Option<metrics::Unit>,
            _: metrics::SharedString,
        ) {
        }
        fn register_counter(
            &self,
            key: &metrics::Key,
            _: &metrics::Metadata<'_>,
        ) -> metrics::Counter {
            metrics::Counter::from_arc(self.cell(key))
        }
        fn register_gauge(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
            metrics::Gauge::from_arc(self.cell(key))
        }
        fn register_histogram(
            &self,
            _: &metrics::Key,
            _: &metrics::Metadata<'_>,
        ) -> metrics::Histogram {
            metrics::Histogram::noop()
        }
    }

    #[test]
    fn an_unreachable_core_is_retried_then_left_alone_and_the_metrics_say_so() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/login", closed.local_addr().unwrap());
        drop(closed);
        let config = RemoteAuthConfig {
            url,
            secret: "k".into(),
            timeout_ms: 2_000,
            retries: 1,
            backoff_initial_ms: 1,
            backoff_max_ms: 1,
            max_wait_secs: 60,
            breaker_failures: 2,
            breaker_open_secs: 3_600,
            ca_file: None,
            logout_url: None,
        };
        let recorded = Recorded::default();
        // The local recorder is per thread: a current-thread runtime keeps every emission here.
        metrics::with_local_recorder(&recorded, || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let auth = RemoteAuth::new(&config, Clock::manual(1_800_000_000)).unwrap();
                assert_eq!(recorded.get("moauth_auth_core_up{}"), 1.0);
                let r = request(1);
                let first = auth.login(&r).await.unwrap_err();
                assert!(
                    matches!(&first, AuthError::Unavailable(why) if why.contains("connect")),
                    "{first:?}"
                );
                assert_eq!(auth.health(), AuthCoreHealth::Open);
                let second = auth.login(&r).await.unwrap_err();
                assert!(
                    matches!(&second, AuthError::Unavailable(why) if why.contains("breaker")),
                    "{second:?}"
                );
            });
        });
        assert_eq!(
            recorded.get("moauth_auth_core_requests_total{outcome=retry}"),
            1.0
        );
        assert_eq!(
            recorded.get("moauth_auth_core_requests_total{outcome=unavailable}"),
            2.0
        );
        assert_eq!(recorded.get("moauth_auth_core_up{}"), 0.0);
    }
}
