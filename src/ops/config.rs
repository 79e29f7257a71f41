//! The one TOML configuration file, every key documented in `config/moauth.toml`.
//!
//! Operators edit this file by hand at 3 a.m., so a mistake is reported with the file, line,
//! column and key, and unknown keys are errors rather than silently ignored typos.
//!
//! Secrets need not sit in the file: `password_file` (e.g. a systemd credential) or
//! `password_env` (an environment variable) stand in for `password`, and likewise for every
//! secret listed in `SECRET_SITES`. They are resolved on the
//! parsed document before it is typed, so the secret takes the span of the key that named it
//! and every later error still points at the right line.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use thiserror::Error;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use crate::core::token::DEFAULT_KEYWORDS;

/// `[limits]` and `[templates]` configure the core's decisions and live beside them.
pub use crate::core::limits::LimitsConfig;
pub use crate::core::replies::{Language, Templates};

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: key `{key}`: {message}")]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        key: String,
        message: String,
    },
    /// Several independent mistakes, so one run of `check-config` shows them all.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Several(Vec<ConfigError>),
}

#[derive(Debug, Clone)]
pub struct Config {
    pub store: StoreConfig,
    pub http: HttpConfig,
    pub login: LoginConfig,
    pub numbering: NumberingConfig,
    pub templates: Templates,
    pub inbound: InboundConfig,
    pub log: LogConfig,
    pub smsc: Vec<SmscConfig>,
    pub limits: LimitsConfig,
    pub auth: AuthConfig,
    pub webhooks: Vec<WebhookConfig>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter (`info`, `info,moauth::smpp=debug`); reloaded on SIGHUP.
    #[serde(default = "default_log_level")]
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: default_log_level(),
        }
    }
}

fn default_log_level() -> String {
    "info".into()
}

/// How incoming SMS are put together before they reach the login pipeline.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundConfig {
    /// Parts of a concatenated MO still incomplete after this are dropped.
    #[serde(default = "default_concat_timeout")]
    pub concat_timeout_secs: u64,
    /// The same PDU delivered again within this is acknowledged but not processed again.
    #[serde(default = "default_redelivery_window")]
    pub redelivery_window_secs: u64,
}

impl Default for InboundConfig {
    fn default() -> Self {
        InboundConfig {
            concat_timeout_secs: default_concat_timeout(),
            redelivery_window_secs: default_redelivery_window(),
        }
    }
}

fn default_concat_timeout() -> u64 {
    600
}
fn default_redelivery_window() -> u64 {
    600
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    pub path: PathBuf,
    #[serde(default = "default_cache_mb")]
    pub cache_capacity_mb: u64,
}

fn default_cache_mb() -> u64 {
    64
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Enables `GET /v1/logins/{token}` for backends holding one of these keys.
    #[serde(default)]
    pub api_keys: Vec<ApiKey>,
    /// Open HTTP connections at most; lowered at start to leave descriptors for the rest of
    /// the daemon under the open-file limit (`http::serve`).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// A request's head must arrive within this (a new or a kept-alive connection alike).
    #[serde(default = "default_header_read_timeout_secs")]
    pub header_read_timeout_secs: u64,
    /// A kept-alive connection with no request is closed this long after its last answer.
    #[serde(default = "default_idle_timeout_secs")]
    pub idle_timeout_secs: u64,
    /// Serves the login page at `/login` (`http::page`); `/moauth.js` is always served.
    #[serde(default)]
    pub login_page: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: default_listen(),
            api_keys: Vec::new(),
            max_connections: default_max_connections(),
            header_read_timeout_secs: default_header_read_timeout_secs(),
            idle_timeout_secs: default_idle_timeout_secs(),
            login_page: false,
        }
    }
}

fn default_max_connections() -> usize {
    1024
}

fn default_header_read_timeout_secs() -> u64 {
    10
}

fn default_idle_timeout_secs() -> u64 {
    5
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    pub name: String,
    /// Hex SHA-256 of the key, so the file never holds the key itself.
    pub sha256: String,
}

/// A backend's webhook: where the events of the logins it minted are POSTed
/// (protocol/webhooks.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The `name` of the `[[http.api_keys]]` entry whose logins this webhook receives.
    pub backend: String,
    /// An `https://` URL; `http://` only to a loopback address or with `allow_plain_http`.
    pub url: String,
    /// Signs every call (protocol/signing.md); also `secret_file` / `secret_env`.
    pub secret: String,
    /// The operator's explicit choice to send events, sessions included, over plain http://
    /// to a host that is not loopback (e.g. a private network they trust).
    #[serde(default)]
    pub allow_plain_http: bool,
}

/// Why plain `http://` is refused for a webhook beyond loopback.
const WEBHOOK_PLAIN_HTTP: &str =
    "a `complete` event carries the session; set allow_plain_http = true to accept that";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginConfig {
    #[serde(default = "default_keywords")]
    pub keywords: Vec<String>,
    #[serde(default = "default_max_age")]
    pub max_age_secs: u64,
    #[serde(default = "default_max_future")]
    pub max_future_secs: u64,
    #[serde(default = "default_session_ttl")]
    pub session_ttl_secs: u64,
    /// How long a finished login stays answerable (`complete`, then `consumed`).
    #[serde(default = "default_result_ttl")]
    pub result_ttl_secs: u64,
    #[serde(default = "default_true")]
    pub send_credentials: bool,
}

impl Default for LoginConfig {
    fn default() -> Self {
        LoginConfig {
            keywords: default_keywords(),
            max_age_secs: default_max_age(),
            max_future_secs: default_max_future(),
            session_ttl_secs: default_session_ttl(),
            result_ttl_secs: default_result_ttl(),
            send_credentials: true,
        }
    }
}

fn default_keywords() -> Vec<String> {
    DEFAULT_KEYWORDS.iter().map(|k| k.to_string()).collect()
}
fn default_max_age() -> u64 {
    600
}
fn default_max_future() -> u64 {
    120
}
fn default_session_ttl() -> u64 {
    30 * 86_400
}
fn default_result_ttl() -> u64 {
    3_600
}
fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumberingConfig {
    /// Country code prepended to national numbers (TON national or unknown).
    #[serde(default = "default_cc")]
    pub default_country_code: String,
}

impl Default for NumberingConfig {
    fn default() -> Self {
        NumberingConfig {
            default_country_code: default_cc(),
        }
    }
}

fn default_cc() -> String {
    "86".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmscConfig {
    pub name: String,
    /// host:port; a host name is resolved at every connect.
    pub address: crate::smpp::address::SmscAddress,
    pub system_id: String,
    pub password: String,
    #[serde(default)]
    pub system_type: String,
    /// address_range sent in the bind, if the carrier routes by it.
    #[serde(default)]
    pub address_range: String,
    /// "transceiver", or "pair" for a receiver and a transmitter connection.
    #[serde(default)]
    pub bind: BindMode,
    /// SMPP over TLS.
    #[serde(default)]
    pub tls: bool,
    /// PEM file of the CAs that sign the SMSC's certificate; the Mozilla roots when absent.
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    /// Name to verify in the SMSC's certificate; its IP address when absent.
    #[serde(default)]
    pub tls_server_name: Option<String>,
    /// The number the app's SMS composer sends to; also the source of replies.
    pub short_code: String,
    #[serde(default = "default_interface_version")]
    pub interface_version: String,
    #[serde(default = "default_enquire_link")]
    pub enquire_link_secs: u64,
    #[serde(default = "default_response_timeout")]
    pub response_timeout_secs: u64,
    /// A submit_sm unanswered within `response_timeout_secs` may still have been accepted:
    /// its late answer is matched until the next copy would go, this long after the copy
    /// went unanswered.
    #[serde(default = "default_resend_after")]
    pub resend_after_secs: u64,
    /// Copies sent after the first of a message whose submit_sm went unanswered; then it is
    /// given up as of unknown fate.
    #[serde(default = "default_max_resends")]
    pub max_resends: u32,
    /// Outstanding submit_sm allowed before waiting for responses.
    #[serde(default = "default_window")]
    pub window: usize,
    /// submit_sm per second allowed on this connection by the carrier; 0 for no cap.
    #[serde(default = "default_max_tps")]
    pub max_tps: u32,
    /// Ask for delivery receipts (registered_delivery) on every submit_sm.
    #[serde(default = "default_true")]
    pub delivery_receipts: bool,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BindMode {
    #[default]
    Transceiver,
    Pair,
}

fn default_interface_version() -> String {
    "3.4".into()
}
fn default_enquire_link() -> u64 {
    30
}
fn default_response_timeout() -> u64 {
    10
}
fn default_resend_after() -> u64 {
    60
}
fn default_max_resends() -> u32 {
    1
}
fn default_window() -> usize {
    10
}
fn default_max_tps() -> u32 {
    50
}

/// `[auth.argon2]`: the hash's cost and how many run at once.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Argon2Config {
    /// Memory per hash in KiB (OWASP: 19456, i.e. 19 MiB).
    #[serde(default = "default_memory_kib")]
    pub memory_kib: u32,
    /// Passes over the memory (OWASP: 2).
    #[serde(default = "default_iterations")]
    pub iterations: u32,
    /// Lanes per hash (OWASP: 1).
    #[serde(default = "default_parallelism")]
    pub parallelism: u32,
    /// Hashes computed at once, each on its own thread; 0 means one per CPU.
    #[serde(default)]
    pub threads: usize,
}

impl Default for Argon2Config {
    fn default() -> Self {
        Argon2Config {
            memory_kib: default_memory_kib(),
            iterations: default_iterations(),
            parallelism: default_parallelism(),
            threads: 0,
        }
    }
}

fn default_memory_kib() -> u32 {
    19 * 1024
}

fn default_iterations() -> u32 {
    2
}

fn default_parallelism() -> u32 {
    1
}

/// Which auth core answers logins: the embedded one, or the app's own over HTTP.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    #[serde(default)]
    pub mode: AuthMode,
    /// The embedded core's password hashes.
    #[serde(default)]
    pub argon2: Argon2Config,
    /// Required when `mode = "remote"`.
    pub remote: Option<RemoteAuthConfig>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    #[default]
    Embedded,
    Remote,
}

/// The remote auth core (protocol/auth-core.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteAuthConfig {
    pub url: String,
    /// HMAC-SHA256 key of the `Moauth-Signature` header (or `secret_file` / `secret_env`).
    pub secret: String,
    /// One request, connect to last byte of the answer.
    #[serde(default = "default_remote_timeout_ms")]
    pub timeout_ms: u64,
    /// Further attempts after a connect error, a timeout or a 5xx, within one try of an MO.
    #[serde(default = "default_remote_retries")]
    pub retries: u32,
    #[serde(default = "default_remote_backoff_initial_ms")]
    pub backoff_initial_ms: u64,
    #[serde(default = "default_remote_backoff_max_ms")]
    pub backoff_max_ms: u64,
    /// An MO still without an answer this long after it arrived is rejected with an apology.
    #[serde(default = "default_remote_max_wait_secs")]
    pub max_wait_secs: u64,
    /// Consecutive failed requests that open the circuit breaker.
    #[serde(default = "default_breaker_failures")]
    pub breaker_failures: u32,
    /// How long an open breaker sends nothing before one probe.
    #[serde(default = "default_breaker_open_secs")]
    pub breaker_open_secs: u64,
    /// PEM file of the CAs that sign the auth core's certificate; the Mozilla roots when absent.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_remote_timeout_ms() -> u64 {
    5_000
}
fn default_remote_retries() -> u32 {
    2
}
fn default_remote_backoff_initial_ms() -> u64 {
    200
}
fn default_remote_backoff_max_ms() -> u64 {
    5_000
}
fn default_remote_max_wait_secs() -> u64 {
    900
}
fn default_breaker_failures() -> u32 {
    5
}
fn default_breaker_open_secs() -> u64 {
    30
}

impl Config {
    /// Every default and no SMSC: the base of the embedded setups (`run` without a file,
    /// `demo`, tests).
    pub fn defaults(store_path: PathBuf) -> Config {
        Config {
            store: StoreConfig {
                path: store_path,
                cache_capacity_mb: default_cache_mb(),
            },
            http: HttpConfig::default(),
            login: LoginConfig::default(),
            numbering: NumberingConfig::default(),
            templates: Templates::default(),
            log: LogConfig::default(),
            inbound: InboundConfig::default(),
            smsc: Vec::new(),
            limits: LimitsConfig::default(),
            auth: AuthConfig::default(),
            webhooks: Vec::new(),
        }
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        Self::parse(&file, &text)
    }

    /// Parses and validates; `file` only names the source in errors.
    ///
    /// Each section (and each entry of an array table) is typed on its own, so one wrong type
    /// does not hide the mistakes of the others, and every check reports at the span the parser
    /// gave the key it concerns.
    pub fn parse(file: &str, text: &str) -> Result<Config, ConfigError> {
        let mut reading = Reading {
            file,
            text,
            problems: Vec::new(),
        };
        let (document, syntax) = DeTable::parse_recoverable(text);
        if !syntax.is_empty() {
            for e in syntax {
                let offset = e.span().map_or(0, |s| s.start);
                reading.error(offset, key_written_at(text, offset), e.message());
            }
            return Err(reading.finish());
        }
        let mut root = document.into_inner();
        resolve_secrets(&mut reading, &mut root);

        let store = reading.section::<StoreConfig>(&mut root, "store", true);
        let http = reading.section::<HttpConfig>(&mut root, "http", false);
        let login = reading.section::<LoginConfig>(&mut root, "login", false);
        let numbering = reading.section::<NumberingConfig>(&mut root, "numbering", false);
        let templates = reading.section::<Templates>(&mut root, "templates", false);
        let inbound = reading.section::<InboundConfig>(&mut root, "inbound", false);
        let log = reading.section::<LogConfig>(&mut root, "log", false);
        let limits = reading.section::<LimitsConfig>(&mut root, "limits", false);
        let auth = reading.section::<AuthConfig>(&mut root, "auth", false);
        let smsc = reading.entries::<SmscConfig>(&mut root, "smsc");
        let webhooks = reading.entries::<WebhookConfig>(&mut root, "webhooks");
        for (key, _) in root.iter() {
            reading.error(
                key.span().start,
                key.get_ref().to_string(),
                "unknown section",
            );
        }

        if let Some(http) = &http {
            reading.check("http", &http.value, http.config.problems());
        }
        if let Some(login) = &login {
            reading.check("login", &login.value, login.config.problems());
        }
        if let Some(numbering) = &numbering {
            reading.check("numbering", &numbering.value, numbering.config.problems());
        }
        if let Some(log) = &log {
            reading.check("log", &log.value, log.config.problems());
        }
        if let Some(limits) = &limits {
            reading.check("limits", &limits.value, limits.config.problems());
        }
        if let Some(auth) = &auth {
            reading.check("auth", &auth.value, auth.config.problems());
        }
        for (i, entry) in smsc.iter().enumerate() {
            let mut problems = entry.config.problems();
            // Two links of one name would both send every reply (each claims the name's outbox).
            if smsc[..i].iter().any(|e| e.config.name == entry.config.name) {
                problems.push((
                    "name".into(),
                    format!("{:?}: another [[smsc]] has this name", entry.config.name),
                ));
            }
            reading.check("smsc", &entry.value, problems);
        }
        for (i, entry) in webhooks.iter().enumerate() {
            let mut problems = entry.config.problems();
            let backend = &entry.config.backend;
            if let Some(http) = &http
                && !http.config.api_keys.iter().any(|k| &k.name == backend)
            {
                problems.push((
                    "backend".into(),
                    format!("{backend:?} is not the name of an [[http.api_keys]] entry"),
                ));
            } else if webhooks[..i].iter().any(|h| &h.config.backend == backend) {
                problems.push((
                    "backend".into(),
                    format!("{backend:?} has a webhook already"),
                ));
            }
            reading.check("webhooks", &entry.value, problems);
        }

        if !reading.problems.is_empty() {
            return Err(reading.finish());
        }
        let missing = "a section that failed to parse is a reported problem";
        Ok(Config {
            store: store.expect(missing).config,
            http: http.expect(missing).config,
            login: login.expect(missing).config,
            numbering: numbering.expect(missing).config,
            templates: templates.expect(missing).config,
            inbound: inbound.expect(missing).config,
            log: log.expect(missing).config,
            limits: limits.expect(missing).config,
            auth: auth.expect(missing).config,
            smsc: smsc.into_iter().map(|e| e.config).collect(),
            webhooks: webhooks.into_iter().map(|e| e.config).collect(),
        })
    }
}

/// A mistake a section's own check found: the key it concerns, as a dotted path relative to
/// the section (a number picks an entry of an array table: `api_keys.1.sha256`), and what is
/// wrong. The loader turns the path into the file's line and column.
pub type Problem = (String, String);

impl SmscConfig {
    /// What types alone cannot say.
    pub fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut at = |key: &str, message: &str| problems.push((key.into(), message.into()));
        if !matches!(self.interface_version.as_str(), "3.4" | "5.0") {
            at("interface_version", "must be \"3.4\" or \"5.0\"");
        }
        if self.system_id.len() > 15 {
            at("system_id", "SMPP allows at most 15 characters");
        }
        if self.password.len() > 8 {
            at("password", "SMPP 3.4 allows at most 8 characters");
        }
        if self.system_type.len() > 12 {
            at("system_type", "SMPP allows at most 12 characters");
        }
        if self.tls
            && let Err(e) = crate::smpp::tls::TlsClient::new(
                self.tls_ca_file.as_deref(),
                self.tls_server_name.as_deref(),
                self.address.host(),
            )
        {
            let key = match e {
                crate::smpp::tls::TlsError::ServerName(_) => "tls_server_name",
                _ => "tls_ca_file",
            };
            at(key, &e.to_string());
        }
        if self.address_range.len() > 40 || !self.address_range.is_ascii() {
            at("address_range", "at most 40 ASCII characters");
        }
        if self.short_code.is_empty() || self.short_code.len() > 20 {
            at("short_code", "must be 1 to 20 characters");
        }
        if self.window == 0 {
            at("window", "must be at least 1");
        }
        problems
    }
}

impl HttpConfig {
    pub fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        for (key, value) in [
            ("max_connections", self.max_connections as u64),
            ("header_read_timeout_secs", self.header_read_timeout_secs),
            ("idle_timeout_secs", self.idle_timeout_secs),
        ] {
            if value == 0 {
                problems.push((key.into(), "must be at least 1".into()));
            }
        }
        for (i, key) in self.api_keys.iter().enumerate() {
            if key.sha256.len() != 64 || !key.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                problems.push((
                    format!("api_keys.{i}.sha256"),
                    "must be 64 hex digits".into(),
                ));
            }
            // Logs and webhooks name the backend by it.
            if key.name.trim().is_empty() || self.api_keys[..i].iter().any(|k| k.name == key.name) {
                problems.push((
                    format!("api_keys.{i}.name"),
                    format!("{:?}: names must be non-empty and unique", key.name),
                ));
            }
        }
        problems
    }
}

impl WebhookConfig {
    pub fn problems(&self) -> Vec<Problem> {
        match crate::signing::check_url(&self.url, self.allow_plain_http, WEBHOOK_PLAIN_HTTP) {
            Ok(_) => Vec::new(),
            Err(message) => vec![("url".into(), message)],
        }
    }
}

impl LoginConfig {
    pub fn problems(&self) -> Vec<Problem> {
        if self.keywords.iter().any(|k| k.trim().is_empty()) {
            vec![("keywords".into(), "keywords must not be empty".into())]
        } else {
            Vec::new()
        }
    }
}

impl NumberingConfig {
    pub fn problems(&self) -> Vec<Problem> {
        let code = &self.default_country_code;
        if code.is_empty() || !code.bytes().all(|b| b.is_ascii_digit()) {
            vec![("default_country_code".into(), "must be digits".into())]
        } else {
            Vec::new()
        }
    }
}

impl LimitsConfig {
    pub fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        for (i, number) in self.deny_numbers.iter().enumerate() {
            let digits = number.strip_prefix('+').unwrap_or_default();
            if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                problems.push((
                    format!("deny_numbers.{i}"),
                    format!(
                        "{number:?} is not an E.164 number or prefix (\"+\" and 1 to 15 digits)"
                    ),
                ));
            }
        }
        if !(1..=15).contains(&self.new_account_prefix_digits) {
            problems.push(("new_account_prefix_digits".into(), "must be 1 to 15".into()));
        }
        problems
    }
}

impl AuthConfig {
    pub fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut at = |key: &str, message: &str| problems.push((key.into(), message.into()));
        match (self.mode, &self.remote) {
            (AuthMode::Remote, None) => at(
                "mode",
                "\"remote\" needs an [auth.remote] table with url and secret",
            ),
            (_, Some(remote)) => {
                if let Err(message) =
                    crate::signing::check_url(&remote.url, false, crate::auth::PLAIN_HTTP_REFUSED)
                {
                    at("remote.url", &message);
                }
                if remote.timeout_ms == 0 {
                    at("remote.timeout_ms", "must be at least 1");
                }
                if remote.backoff_initial_ms == 0
                    || remote.backoff_initial_ms > remote.backoff_max_ms
                {
                    at(
                        "remote.backoff_initial_ms",
                        "must be at least 1 and at most backoff_max_ms",
                    );
                }
                if remote.max_wait_secs == 0 {
                    at("remote.max_wait_secs", "must be at least 1");
                }
                if remote.breaker_failures == 0 {
                    at("remote.breaker_failures", "must be at least 1");
                }
                if remote.breaker_open_secs == 0 {
                    at("remote.breaker_open_secs", "must be at least 1");
                }
                if let Some(path) = &remote.ca_file
                    && let Err(e) = crate::smpp::tls::root_store(Some(path))
                {
                    at("remote.ca_file", &e.to_string());
                }
            }
            (AuthMode::Embedded, None) => {}
        }
        let argon2 = &self.argon2;
        if let Err(e) = argon2::Params::new(
            argon2.memory_kib,
            argon2.iterations,
            argon2.parallelism,
            None,
        ) {
            at("argon2.memory_kib", &format!("no Argon2id cost: {e}"));
        }
        problems
    }
}

impl LogConfig {
    pub fn problems(&self) -> Vec<Problem> {
        if tracing_subscriber::EnvFilter::try_new(&self.level).is_err() {
            vec![(
                "level".into(),
                "not a log filter (try \"info\" or \"info,moauth=debug\")".into(),
            )]
        } else {
            Vec::new()
        }
    }
}

/// One section of the file, typed, beside its parsed value whose spans locate its keys.
struct Section<'de, T> {
    config: T,
    value: Spanned<DeValue<'de>>,
}

/// The file being read: its name and text to turn spans into positions, and every mistake
/// found so far.
struct Reading<'a> {
    file: &'a str,
    text: &'a str,
    problems: Vec<ConfigError>,
}

impl Reading<'_> {
    /// `[name]`, taken out of the document and typed. An absent table is typed from an empty
    /// one, so its defaults apply; if that fails the table was `required`.
    fn section<'de, T: DeserializeOwned>(
        &mut self,
        root: &mut DeTable<'de>,
        name: &str,
        required: bool,
    ) -> Option<Section<'de, T>> {
        let Some(value) = root.remove(name) else {
            let empty = Spanned::new(0..0, DeValue::Table(DeTable::new()));
            return match T::deserialize(ValueDeserializer::from(empty.clone())) {
                Ok(config) => Some(Section {
                    config,
                    value: empty,
                }),
                Err(e) => {
                    let need = if required { "required" } else { "incomplete" };
                    self.error(
                        0,
                        name.into(),
                        format!("missing [{name}] table ({need}: {})", e.message()),
                    );
                    None
                }
            };
        };
        match T::deserialize(ValueDeserializer::from(value.clone())) {
            Ok(config) => Some(Section { config, value }),
            Err(e) => {
                self.type_error(name, &value, e);
                None
            }
        }
    }

    /// `[[name]]`, each entry typed on its own so a mistake in one hides none in another.
    fn entries<'de, T: DeserializeOwned>(
        &mut self,
        root: &mut DeTable<'de>,
        name: &str,
    ) -> Vec<Section<'de, T>> {
        let Some(value) = root.remove(name) else {
            return Vec::new();
        };
        let span = value.span();
        let DeValue::Array(items) = value.into_inner() else {
            self.error(
                span.start,
                name.into(),
                format!("must be [[{name}]] tables"),
            );
            return Vec::new();
        };
        items
            .into_iter()
            .filter_map(
                |item| match T::deserialize(ValueDeserializer::from(item.clone())) {
                    Ok(config) => Some(Section {
                        config,
                        value: item,
                    }),
                    Err(e) => {
                        self.type_error(name, &item, e);
                        None
                    }
                },
            )
            .collect()
    }

    /// Reports a section's own findings, each at its key's span (or, for a key left at its
    /// default, at the table that lacks it).
    fn check(&mut self, name: &str, value: &Spanned<DeValue<'_>>, problems: Vec<Problem>) {
        for (path, message) in problems {
            let mut here = value;
            let mut offset = value.span().start;
            for segment in path.split('.') {
                let next = match (here.get_ref(), segment.parse::<usize>()) {
                    (DeValue::Array(items), Ok(i)) => items.get(i).map(|item| (item, None)),
                    (DeValue::Table(table), _) => table
                        .get_key_value(segment)
                        .map(|(k, v)| (v, Some(k.span().start))),
                    _ => None,
                };
                let Some((next, key_offset)) = next else {
                    break;
                };
                here = next;
                offset = key_offset.unwrap_or(next.span().start);
            }
            // A path the document lacks (a default value) still names every key.
            let shown: Vec<&str> = path
                .split('.')
                .filter(|s| s.parse::<usize>().is_err())
                .collect();
            let key = format!("{name}.{}", shown.join("."));
            self.error(offset, key, message);
        }
    }

    /// A parser or serde error inside `value` (the section `name`), named by the deepest key
    /// whose span holds the error's.
    fn type_error(&mut self, name: &str, value: &Spanned<DeValue<'_>>, e: toml::de::Error) {
        let offset = e.span().map_or(value.span().start, |s| s.start);
        let mut key: Vec<String> = (!name.is_empty())
            .then(|| name.to_owned())
            .into_iter()
            .collect();
        key.extend(key_path(value, offset).unwrap_or_default());
        // serde reports a missing key at the table that lacks it; name the key itself.
        if let Some(field) = e
            .message()
            .strip_prefix("missing field `")
            .and_then(|m| m.split('`').next())
        {
            key.push(field.to_owned());
        }
        self.error(offset, key.join("."), e.message());
    }

    fn error(&mut self, offset: usize, key: String, message: impl Into<String>) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        self.problems.push(ConfigError::Invalid {
            file: self.file.to_owned(),
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
            key,
            message: message.into(),
        });
    }

    /// Every mistake, in the order of the file.
    fn finish(mut self) -> ConfigError {
        let position = |e: &ConfigError| match e {
            ConfigError::Invalid { line, column, .. } => (*line, *column),
            _ => (0, 0),
        };
        self.problems.sort_by_key(position);
        match self.problems.len() {
            1 => self.problems.remove(0),
            _ => ConfigError::Several(self.problems),
        }
    }
}

/// The key a line that does not parse was meant to set: `table.key` from the text, as no
/// span says it.
fn key_written_at(text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("").trim();
    let header = |l: &str| {
        l.starts_with('[')
            .then(|| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned())
    };
    if let Some(table) = header(line) {
        return table;
    }
    let key = line.split_once('=').map_or("", |(k, _)| k.trim());
    match text[..line_start]
        .lines()
        .rev()
        .find_map(|l| header(l.trim()))
    {
        Some(table) if !key.is_empty() => format!("{table}.{key}"),
        Some(table) => table,
        None => key.to_owned(),
    }
}

/// The dotted key path under `value` whose key or value span holds `offset`, deepest first;
/// `None` when `value` does not hold it at all.
fn key_path(value: &Spanned<DeValue<'_>>, offset: usize) -> Option<Vec<String>> {
    let inner = match value.get_ref() {
        DeValue::Table(table) => table.iter().find_map(|(k, v)| {
            key_path(v, offset)
                .or_else(|| k.span().contains(&offset).then(Vec::new))
                .map(|mut path| {
                    path.insert(0, k.get_ref().to_string());
                    path
                })
        }),
        DeValue::Array(items) => items.iter().find_map(|item| key_path(item, offset)),
        _ => None,
    };
    inner.or_else(|| value.span().contains(&offset).then(Vec::new))
}

/// Where a secret may be given as `KEY_file` (a path to read) or `KEY_env` (a variable to
/// read) instead of inline: a dotted table path (a table, or an array of tables) and the key.
const SECRET_SITES: &[(&str, &str)] = &[
    ("smsc", "password"),
    ("auth.remote", "secret"),
    ("webhooks", "secret"),
];

/// Replaces `KEY_file` / `KEY_env` by `KEY` at every site of [`SECRET_SITES`].
fn resolve_secrets(reading: &mut Reading<'_>, root: &mut DeTable<'_>) {
    for (path, key) in SECRET_SITES {
        for table in tables_at(root, path) {
            if let Err((span, name, message)) = resolve_secret(table, key) {
                reading.error(span.start, format!("{path}.{name}"), message);
                // Reported once: typing the table must not add "missing field" for it.
                table.insert(
                    Spanned::new(span.clone(), Cow::Owned(key.to_string())),
                    Spanned::new(span, DeValue::String(Cow::Borrowed(""))),
                );
            }
        }
    }
}

/// The tables under a dotted path. Anything of another shape is a type error that serde
/// reports with its span, so it is skipped here.
fn tables_at<'t, 'de>(root: &'t mut DeTable<'de>, path: &str) -> Vec<&'t mut DeTable<'de>> {
    let mut here = vec![root];
    for segment in path.split('.') {
        here = here
            .into_iter()
            .filter_map(|table| table.get_mut(segment))
            .flat_map(|value| match value.get_mut() {
                DeValue::Table(table) => vec![table],
                DeValue::Array(items) => items
                    .iter_mut()
                    .filter_map(|item| match item.get_mut() {
                        DeValue::Table(table) => Some(table),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            })
            .collect();
    }
    here
}

/// Puts the secret that `KEY_file` / `KEY_env` points to under `KEY`, with the span of the
/// key that named it; a mistake comes back as (the span of the key written, that key, what is
/// wrong).
fn resolve_secret(
    table: &mut DeTable<'_>,
    key: &str,
) -> Result<(), (std::ops::Range<usize>, String, String)> {
    let from_file = table.remove_entry(format!("{key}_file").as_str());
    let from_env = table.remove_entry(format!("{key}_env").as_str());
    let given = [
        table.contains_key(key),
        from_file.is_some(),
        from_env.is_some(),
    ];
    let (name, source, read): (_, _, ReadSecret) = match (from_file, from_env) {
        (None, None) => return Ok(()),
        (Some((name, source)), None) => (name, source, read_secret_file),
        (None, Some((name, source))) => (name, source, read_secret_env),
        (Some(_), Some((name, _))) => {
            return Err((
                name.span(),
                name.get_ref().to_string(),
                format!("give only one of {key}, {key}_file and {key}_env"),
            ));
        }
    };
    let fail = |message: String| (name.span(), name.get_ref().to_string(), message);
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(fail(format!(
            "give only one of {key}, {key}_file and {key}_env"
        )));
    }
    let DeValue::String(reference) = source.get_ref() else {
        return Err(fail("must be a string".into()));
    };
    let secret = read(reference).map_err(fail)?;
    if secret.is_empty() {
        return Err(fail(format!("the secret from {reference:?} is empty")));
    }
    let span = source.span();
    table.insert(
        Spanned::new(name.span(), Cow::Owned(key.to_owned())),
        Spanned::new(span, DeValue::String(Cow::Owned(secret))),
    );
    Ok(())
}

/// Reads a secret from where its `KEY_file` / `KEY_env` value points; the error says why not.
type ReadSecret = fn(&str) -> Result<String, String>;

/// The file's content without its trailing newline (editors and `echo` add one).
fn read_secret_file(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim_end_matches(['\n', '\r']).to_owned())
        .map_err(|e| format!("cannot read secret file {path:?}: {e}"))
}

fn read_secret_env(variable: &str) -> Result<String, String> {
    std::env::var(variable).map_err(|_| format!("environment variable {variable} is not set"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[store]
path = "/tmp/x"

[http]
listen = "127.0.0.1:8080"

[[smsc]]
name = "main"
address = "127.0.0.1:2775"
system_id = "moauth"
password = "secret"
short_code = "10690000"
"#;

    fn error_of(text: &str) -> (usize, String, String) {
        match Config::parse("moauth.toml", text) {
            Err(ConfigError::Invalid {
                line, key, message, ..
            }) => (line, key, message),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn documented_example_parses() {
        let config = Config::parse("moauth.toml", GOOD).unwrap();
        assert_eq!(config.smsc[0].short_code, "10690000");
        assert_eq!(config.login.max_age_secs, 600);
    }

    #[test]
    fn the_shipped_config_file_parses() {
        let text = include_str!("../../config/moauth.toml");
        Config::parse("config/moauth.toml", text).unwrap();
    }

    #[test]
    fn an_argon2_cost_argon2_cannot_run_names_its_line() {
        let text = format!("{GOOD}\n[auth.argon2]\nmemory_kib = 4\nparallelism = 4\n");
        let (line, key, message) = error_of(&text);
        assert_eq!((line, key.as_str()), (16, "auth.argon2.memory_kib"));
        assert!(message.contains("Argon2id"), "{message}");
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let text = GOOD.replace("listen =", "listn =");
        let (line, key, message) = error_of(&text);
        assert_eq!((line, key.as_str()), (6, "http.listn"));
        assert!(message.contains("unknown field"), "{message}");
    }

    #[test]
    fn wrong_type_names_line_and_key() {
        let text = GOOD.replace("\"127.0.0.1:2775\"", "2775");
        let (line, key, _) = error_of(&text);
        assert_eq!((line, key.as_str()), (10, "smsc.address"));
    }

    #[test]
    fn bad_address_names_line_and_key() {
        let text = GOOD.replace("127.0.0.1:8080", "localhost-8080");
        let (line, key, _) = error_of(&text);
        assert_eq!((line, key.as_str()), (6, "http.listen"));
    }

    #[test]
    fn semantic_error_names_line_and_key() {
        let text = GOOD.replace("\"secret\"", "\"much-too-long\"");
        let (line, key, message) = error_of(&text);
        assert_eq!((line, key.as_str()), (12, "smsc.password"));
        assert!(message.contains("8 characters"));
    }

    #[test]
    fn unreadable_tls_ca_file_names_its_key() {
        let text = GOOD.replace(
            "short_code = \"10690000\"",
            "short_code = \"10690000\"\ntls = true\ntls_ca_file = \"/nonexistent/ca.pem\"",
        );
        let (line, key, message) = error_of(&text);
        assert_eq!((line, key.as_str()), (15, "smsc.tls_ca_file"), "{message}");
        assert!(message.contains("/nonexistent/ca.pem"), "{message}");
    }

    #[test]
    fn password_file_stands_in_for_password() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("smsc-main");
        std::fs::write(&secret, "s3cret\n").unwrap();
        let text = GOOD.replace(
            "password = \"secret\"",
            &format!("password_file = {:?}", secret.display().to_string()),
        );
        let config = Config::parse("moauth.toml", &text).unwrap();
        assert_eq!(config.smsc[0].password, "s3cret");
    }

    #[test]
    fn missing_secrets_name_line_and_key() {
        let text = GOOD.replace(
            "password = \"secret\"",
            "password_file = \"/nonexistent/pw\"",
        );
        let (line, key, message) = error_of(&text);
        assert_eq!((line, key.as_str()), (12, "smsc.password_file"));
        assert!(message.contains("/nonexistent/pw"), "{message}");

        let text = GOOD.replace(
            "password = \"secret\"",
            "password_env = \"MOAUTH_TEST_SURELY_UNSET_VARIABLE\"",
        );
        let (line, key, message) = error_of(&text);
        assert_eq!((line, key.as_str()), (12, "smsc.password_env"));
        assert!(message.contains("is not set"), "{message}");
    }

    #[test]
    fn a_secret_given_twice_is_an_error() {
        let text = GOOD.replace(
            "password = \"secret\"",
            "password = \"secret\"\npassword_env = \"HOME\"",
        );
        let (line, key, message) = error_of(&text);
        assert_eq!((line, key.as_str()), (13, "smsc.password_env"));
        assert!(message.contains("only one of"), "{message}");
    }

    #[test]
    fn several_mistakes_are_all_reported() {
        let text = GOOD
            .replace("\"secret\"", "\"much-too-long\"")
            .replace("[store]", "[log]\nlevel = \"loud=[\"\n\n[store]");
        let shown = Config::parse("moauth.toml", &text).unwrap_err().to_string();
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines.len(), 2, "{shown}");
        assert!(
            lines[0].starts_with("moauth.toml:3:1: key `log.level`"),
            "{shown}"
        );
        assert!(lines[1].contains("key `smsc.password`"), "{shown}");
    }

    #[test]
    fn a_bad_deny_list_entry_names_its_line_and_key() {
        let text = format!("{GOOD}\n[limits]\ndeny_numbers = [\"+86 139\"]\n");
        let (line, key, message) = error_of(&text);
        assert_eq!(
            (line, key.as_str()),
            (16, "limits.deny_numbers"),
            "{message}"
        );
        assert!(message.contains("E.164"), "{message}");
    }

    #[test]
    fn remote_auth_core_takes_its_secret_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("auth-core");
        std::fs::write(&secret, "hmac-key\n").unwrap();
        let text = format!(
            "{GOOD}\n[auth]\nmode = \"remote\"\n\n[auth.remote]\nurl = \"https://accounts.example/moauth\"\nsecret_file = {:?}\n",
            secret.display().to_string()
        );
        let config = Config::parse("moauth.toml", &text).unwrap();
        assert_eq!(config.auth.mode, AuthMode::Remote);
        let remote = config.auth.remote.unwrap();
        assert_eq!(remote.secret, "hmac-key");
        assert_eq!((remote.timeout_ms, remote.max_wait_secs), (5_000, 900));
    }

    #[test]
    fn remote_auth_core_mistakes_name_line_and_key() {
        let text = format!("{GOOD}\n[auth]\nmode = \"remote\"\n");
        let (line, key, message) = error_of(&text);
        assert_eq!((line, key.as_str()), (16, "auth.mode"), "{message}");
        assert!(message.contains("[auth.remote]"), "{message}");

        let text = format!(
            "{GOOD}\n[auth]\nmode = \"remote\"\n\n[auth.remote]\nurl = \"http://accounts.example/x\"\nsecret = \"k\"\nbreaker_failures = 0\n"
        );
        let shown = Config::parse("moauth.toml", &text).unwrap_err().to_string();
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines.len(), 2, "{shown}");
        assert!(
            lines[0].starts_with("moauth.toml:19:1: key `auth.remote.url`: must be https://"),
            "{shown}"
        );
        assert!(
            lines[1].starts_with("moauth.toml:21:1: key `auth.remote.breaker_failures`"),
            "{shown}"
        );

        let text = format!(
            "{GOOD}\n[auth.remote]\nurl = \"https://a.example/\"\nsecret = \"k\"\nca_file = \"/nonexistent/ca.pem\"\n"
        );
        let (line, key, message) = error_of(&text);
        assert_eq!(
            (line, key.as_str()),
            (18, "auth.remote.ca_file"),
            "{message}"
        );
        assert!(message.contains("/nonexistent/ca.pem"), "{message}");

        let text = format!("{GOOD}\n[auth.remote]\nurl = \"https://a.example/\"\n");
        let (line, key, message) = error_of(&text);
        assert_eq!(
            (line, key.as_str()),
            (15, "auth.remote.secret"),
            "{message}"
        );
    }

    #[test]
    fn webhooks_name_a_backend_and_take_their_secret_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("hook");
        std::fs::write(&secret, "hook-secret\n").unwrap();
        let keyed = format!(
            "{GOOD}\n[[http.api_keys]]\nname = \"shop\"\nsha256 = \"{}\"\n",
            "ab".repeat(32)
        );
        let text = format!(
            "{keyed}\n[[webhooks]]\nbackend = \"shop\"\nurl = \"https://shop.example/moauth\"\nsecret_file = {:?}\n",
            secret.display().to_string()
        );
        let config = Config::parse("moauth.toml", &text).unwrap();
        assert_eq!(config.webhooks[0].secret, "hook-secret");

        let stranger = text.replace("backend = \"shop\"", "backend = \"nobody\"");
        let (line, key, message) = error_of(&stranger);
        assert_eq!((line, key.as_str()), (20, "webhooks.backend"), "{message}");
        let ftp = text.replace("https://shop.example/moauth", "ftp://shop.example/");
        let (_, key, _) = error_of(&ftp);
        assert_eq!(key, "webhooks.url");
        // A `complete` event carries the session: plain http only to loopback, or by choice.
        let plain = text.replace("https://shop.example/moauth", "http://shop.example/moauth");
        let (line, key, message) = error_of(&plain);
        assert_eq!((line, key.as_str()), (21, "webhooks.url"), "{message}");
        assert!(message.contains("allow_plain_http"), "{message}");
        let chosen = format!("{plain}allow_plain_http = true\n");
        assert!(Config::parse("moauth.toml", &chosen).is_ok());
        let local = text.replace("https://shop.example/moauth", "http://127.0.0.1:8081/hook");
        assert!(Config::parse("moauth.toml", &local).is_ok());
        let twice = format!(
            "{keyed}\n[[http.api_keys]]\nname = \"shop\"\nsha256 = \"{}\"\n",
            "cd".repeat(32)
        );
        let (_, key, message) = error_of(&twice);
        assert_eq!(key, "http.api_keys.name", "{message}");
    }

    #[test]
    fn a_line_that_does_not_parse_names_its_key() {
        let text = GOOD.replace("listen = \"127.0.0.1:8080\"", "listen = ");
        let (line, key, _) = error_of(&text);
        assert_eq!((line, key.as_str()), (6, "http.listen"));
    }

    #[test]
    fn an_unknown_section_names_its_line() {
        let text = format!("{GOOD}\n[limit]\npoll_burst = 1\n");
        let (line, key, message) = error_of(&text);
        assert_eq!((line, key.as_str()), (15, "limit"), "{message}");
    }

    #[test]
    fn error_display_is_file_line_column_key() {
        let text = GOOD.replace("listen =", "listn =");
        let shown = Config::parse("moauth.toml", &text).unwrap_err().to_string();
        assert!(
            shown.starts_with("moauth.toml:6:1: key `http.listn`:"),
            "{shown}"
        );
    }
}
