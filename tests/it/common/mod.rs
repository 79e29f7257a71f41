//! Test harness: the simulator and the daemon on free loopback ports, a real HTTP client.
//!
//! Everything crosses real sockets: MOs go simulator → SMPP → daemon, polls go over HTTP.
//! The daemon's clock is manual, so token windows are tested without sleeping.

#![allow(dead_code)]

pub mod browser;
#[path = "../../peers/node_smsc.rs"]
pub mod node_smsc;
pub mod nodes;
pub mod postgres;
pub mod process;
pub mod receiver;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use moauth::cli::{SIM_PASSWORD, SIM_SYSTEM_ID, embedded_config};
use moauth::core::clock::Clock;
use moauth::core::token::{Token, Verifier};
use moauth::daemon::{Daemon, Options};
use moauth::ops::config::Config;
use moauth::sim::{Deliver, MoRequest, MoResult, SimConfig, Simulator, Submitted};
use serde_json::{Value, json};

pub const ALICE: &str = "+8613800138000";
pub const BOB: &str = "+8613900139000";
pub const START: u64 = 1_800_000_000;
/// Generous bound for things that happen "at once": only reached when something is broken.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A plain HTTP client for the tests; reqwest needs the process's TLS provider first.
pub fn http_client() -> reqwest::Client {
    moauth::install_crypto_provider();
    reqwest::Client::new()
}

/// The app's poll against the daemon whose HTTP API is at `addr`: (status, answer).
pub async fn poll_login(
    http: &reqwest::Client,
    addr: SocketAddr,
    verifier: &Verifier,
    token: &Token,
    wait_ms: u64,
) -> (u16, Value) {
    let body = json!({ "verifier": verifier.to_base64url(), "token": token.to_string(), "wait_ms": wait_ms });
    let response = http
        .post(format!("http://{addr}/v1/logins/poll"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// A phone texting the default short code through `sim`; returns the deliver_sm_resp statuses.
pub async fn phone_sends(sim: &Simulator, from: &str, text: &str) -> MoResult {
    sim.send_mo(&MoRequest {
        from: from.into(),
        to: Some("10690000".into()),
        text: text.into(),
        ..MoRequest::default()
    })
    .await
    .unwrap()
}

/// The simulator on a free loopback port, with the embedded default credentials.
pub async fn loopback_sim() -> Simulator {
    Simulator::start(SimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        control: None,
        system_id: SIM_SYSTEM_ID.into(),
        password: SIM_PASSWORD.into(),
        tls: None,
    })
    .await
    .unwrap()
}

pub struct Harness {
    pub sim: Simulator,
    pub daemon: Option<Daemon>,
    pub clock: Clock,
    pub config: Config,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Harness {
    pub async fn start() -> Harness {
        Self::start_with(Options::default(), |_| {}).await
    }

    pub async fn start_with(options: Options, tweak: impl FnOnce(&mut Config)) -> Harness {
        Self::start_on(loopback_sim().await, options, tweak).await
    }

    /// The daemon bound to a simulator the test set up itself.
    pub async fn start_on(
        sim: Simulator,
        options: Options,
        tweak: impl FnOnce(&mut Config),
    ) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let mut config = embedded_config(
            dir.path().join("store"),
            "127.0.0.1:0".parse().unwrap(),
            sim.smpp_addr,
        );
        tweak(&mut config);
        let clock = Clock::manual(START);
        let mut harness = Harness {
            sim,
            daemon: None,
            clock,
            config,
            http: http_client(),
            _dir: dir,
        };
        harness.boot(options).await;
        harness
    }

    async fn boot(&mut self, options: Options) {
        let bound = self.sim.bound_sessions();
        let daemon = Daemon::start(self.config.clone(), self.clock.clone(), options)
            .await
            .unwrap();
        assert!(
            self.sim.wait_bound(bound + 1, PATIENCE).await,
            "daemon did not bind"
        );
        self.daemon = Some(daemon);
    }

    /// Stops the daemon (unbind, flush) and starts it again on the same store.
    pub async fn restart(&mut self, options: Options) {
        self.restart_after(options, |_| async {}).await;
    }

    /// Stops the daemon, hands its store directory to `meanwhile`, and starts it again.
    pub async fn restart_after<F: Future<Output = ()>>(
        &mut self,
        options: Options,
        meanwhile: impl FnOnce(PathBuf) -> F,
    ) {
        self.daemon.take().unwrap().shutdown().await;
        meanwhile(self._dir.path().join("store")).await;
        self.config.http.listen = "127.0.0.1:0".parse().unwrap();
        self.boot(options).await;
    }

    pub fn daemon(&self) -> &Daemon {
        self.daemon.as_ref().unwrap()
    }

    /// `GET /readyz`'s body.
    pub async fn readyz(&self) -> Value {
        self.http
            .get(self.api("/readyz"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub fn api(&self, path: &str) -> String {
        format!("http://{}{path}", self.daemon().http_addr)
    }

    /// What an app does: a secret verifier and a token issued `age` seconds ago.
    pub fn app_token(&self, age: u64) -> (Verifier, Token) {
        let verifier = Verifier::random();
        let token = Token::for_verifier(&verifier, self.clock.now() - age);
        (verifier, token)
    }

    pub async fn phone_sends(&self, from: &str, text: &str) -> MoResult {
        phone_sends(&self.sim, from, text).await
    }

    pub async fn poll(&self, verifier: &Verifier, token: &Token, wait_ms: u64) -> (u16, Value) {
        poll_login(
            &self.http,
            self.daemon().http_addr,
            verifier,
            token,
            wait_ms,
        )
        .await
    }

    /// The login's state once it is no longer `pending`: long-polls again while it is, for
    /// up to a minute, so a machine whose disk stalls the pipeline's flush for longer than
    /// one long-poll still gets its answer; a login never decided still fails the test.
    pub async fn poll_decided(&self, verifier: &Verifier, token: &Token) -> Value {
        for _ in 0..6 {
            let (status, answer) = self.poll(verifier, token, 10_000).await;
            assert_eq!(status, 200, "{answer}");
            if answer["state"] != "pending" {
                return answer;
            }
        }
        panic!("the login was still pending after a minute");
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.api(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    /// What a backend does for an app that makes no tokens: `POST /v1/logins` with its API
    /// key. Returns the verifier and token of the 201 answer, and the answer itself.
    pub async fn mint(&self, api_key: &str) -> (Verifier, Token, Value) {
        let response = self
            .http
            .post(self.api("/v1/logins"))
            .bearer_auth(api_key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let answer: Value = response.json().await.unwrap();
        let verifier = Verifier::from_base64url(answer["verifier"].as_str().unwrap()).unwrap();
        let token = Token::parse(answer["token"].as_str().unwrap()).unwrap();
        (verifier, token, answer)
    }

    /// Waits until `count` SMS were submitted and the outbox is empty, so no further SMS can
    /// be on its way, and checks that exactly `count` were sent.
    pub async fn settled_submits(&self, count: usize) -> Vec<Submitted> {
        self.sim.wait_submits(count, PATIENCE).await;
        tokio::time::timeout(PATIENCE, self.daemon().store.outbox_drained())
            .await
            .expect("outbox did not drain");
        let submits = self.sim.submits();
        assert_eq!(submits.len(), count, "{submits:?}");
        submits
    }
}

/// `token` as a phone would send it with its last check symbol mistyped: the challenge still
/// reads, so the login it claims is marked `rejected/bad_token`.
pub fn mistyped(token: &Token) -> String {
    let mut text: Vec<char> = token.to_string().chars().collect();
    let last = text.last_mut().unwrap();
    *last = if *last == 'Z' { 'Y' } else { 'Z' };
    text.into_iter().collect()
}

/// A self-signed certificate for `name` (a DNS name or an IP address) as a TLS server's
/// config, and its PEM for the client's `ca_file`.
pub fn self_signed(name: &str) -> (Arc<rustls::ServerConfig>, String) {
    let certified = rcgen::generate_simple_self_signed(vec![name.into()]).unwrap();
    let cert = certified.cert.der().clone();
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(rustls_pki_types::PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    (Arc::new(config), certified.cert.pem())
}

/// A HELP from the i-th of many numbers: an MO that needs no token and gets one reply.
pub fn help_from(i: usize) -> Deliver {
    Deliver {
        from: format!("+86139{i:08}"),
        data_coding: 1,
        short_message: b"HELP".to_vec(),
        ..Deliver::default()
    }
}

/// How often [`eventually`] asks again: often enough to add no noticeable wait, seldom enough
/// to leave the machine to the daemon.
const ASK_EVERY: Duration = Duration::from_millis(10);

/// Waits until `check` holds, asking again every few milliseconds, up to [`PATIENCE`]: the
/// one way the tests wait on a condition they cannot be told about (a gauge, a queue depth, a
/// page's state). The deadline is only reached when something is broken, so a busy machine
/// makes the test slower, never wrong. Panics with `what` when it never holds.
pub async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    eventually_ok(what, async || {
        if check().await {
            Ok(())
        } else {
            Err("it never held")
        }
    })
    .await
}

/// As [`eventually`], for an `attempt` that gives a value once it can (a store to open, an
/// answer to wait for); on timeout the panic also shows its last error.
pub async fn eventually_ok<T, E: std::fmt::Display>(
    what: &str,
    mut attempt: impl AsyncFnMut() -> Result<T, E>,
) -> T {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match attempt().await {
            Ok(value) => return value,
            Err(e) if tokio::time::Instant::now() >= deadline => {
                panic!("timed out waiting for {what}: {e}")
            }
            Err(_) => tokio::time::sleep(ASK_EVERY).await,
        }
    }
}

/// The value of one sample (`name` or `name{labels}`, exactly as exposed) of `GET /metrics`
/// on the daemon at `addr`; `None` when the series is not there.
pub async fn scrape(http: &reqwest::Client, addr: SocketAddr, series: &str) -> Option<f64> {
    let text = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter_map(|line| line.rsplit_once(' '))
        .find(|(name, _)| *name == series)
        .map(|(_, value)| value.parse().unwrap())
}

/// The password in a credential SMS ("... password abc. ...") or a new-password SMS
/// ("... new password for +86... is abc. ...").
pub fn texted_password(text: &str) -> String {
    let marker = if text.contains("new password") {
        " is "
    } else {
        "password "
    };
    let after = text
        .split(marker)
        .nth(1)
        .unwrap_or_else(|| panic!("no password in {text:?}"));
    after.split('.').next().unwrap().to_owned()
}

/// The moauth binary in a directory any user may enter, as an install puts it in /usr/bin, for
/// tests that run it as the service user: the build's own copy may lie under a checkout only
/// its owner can enter (a clone in a `mktemp -d` directory is 0700). Removed with the TempDir.
pub fn binary_for_any_user() -> (tempfile::TempDir, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let binary = dir.path().join("moauth");
    // A hard link costs nothing and shares the build's mode; another filesystem needs a copy.
    let built = env!("CARGO_BIN_EXE_moauth");
    if std::fs::hard_link(built, &binary).is_err() {
        std::fs::copy(built, &binary).unwrap();
    }
    (dir, binary)
}
