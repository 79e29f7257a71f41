//! `[login]`, `[numbering]` and `[inbound]`: what the login pipeline accepts, how it reads
//! numbers, and how it puts incoming SMS together.
//!
//! `problems()` returns what types alone cannot say, as (key path relative to the section,
//! message) pairs; `ops::config` turns each path into the file's line and column.

use serde::Deserialize;

use crate::core::token::{Command, Commands, DEFAULT_COMMANDS, DEFAULT_KEYWORDS};

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
    /// Text an existing account after each login by SMS, naming the app and the time, with
    /// LOGOUT to end every session (login-jacking becomes visible). One more SMS per login.
    #[serde(default)]
    pub notify_logins: bool,
    /// The words of the SMS commands.
    #[serde(default)]
    pub commands: CommandsConfig,
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
            notify_logins: false,
            commands: CommandsConfig::default(),
        }
    }
}

/// `[login.commands]`: a body that is exactly one of these words (any case, full-width
/// folded) is that command, never a token.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CommandsConfig {
    #[serde(default = "default_help")]
    pub help: Vec<String>,
    #[serde(default = "default_stop")]
    pub stop: Vec<String>,
    #[serde(default = "default_start")]
    pub start: Vec<String>,
    #[serde(default = "default_password")]
    pub password: Vec<String>,
    #[serde(default = "default_logout")]
    pub logout: Vec<String>,
}

impl Default for CommandsConfig {
    fn default() -> Self {
        CommandsConfig {
            help: default_help(),
            stop: default_stop(),
            start: default_start(),
            password: default_password(),
            logout: default_logout(),
        }
    }
}

impl CommandsConfig {
    pub fn commands(&self) -> Commands {
        let words = |list: &Vec<String>, command: Command| {
            list.iter()
                .map(move |w| (w.clone(), command))
                .collect::<Vec<_>>()
        };
        Commands::new(
            [
                words(&self.help, Command::Help),
                words(&self.stop, Command::Stop),
                words(&self.start, Command::Start),
                words(&self.password, Command::Password),
                words(&self.logout, Command::Logout),
            ]
            .concat(),
        )
    }

    fn all(&self) -> impl Iterator<Item = &String> {
        [
            &self.help,
            &self.stop,
            &self.start,
            &self.password,
            &self.logout,
        ]
        .into_iter()
        .flatten()
    }
}

fn default_words(command: Command) -> Vec<String> {
    DEFAULT_COMMANDS
        .iter()
        .filter(|(_, c)| *c == command)
        .map(|(w, _)| w.to_string())
        .collect()
}
fn default_help() -> Vec<String> {
    default_words(Command::Help)
}
fn default_stop() -> Vec<String> {
    default_words(Command::Stop)
}
fn default_start() -> Vec<String> {
    default_words(Command::Start)
}
fn default_password() -> Vec<String> {
    default_words(Command::Password)
}
fn default_logout() -> Vec<String> {
    default_words(Command::Logout)
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

impl LoginConfig {
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if self.keywords.iter().any(|k| k.trim().is_empty()) {
            problems.push(("keywords".into(), "keywords must not be empty".into()));
        }
        if self.commands.all().any(|w| w.trim().is_empty()) {
            problems.push(("commands".into(), "command words must not be empty".into()));
        }
        problems
    }
}

impl NumberingConfig {
    pub fn problems(&self) -> Vec<(String, String)> {
        let code = &self.default_country_code;
        if code.is_empty() || !code.bytes().all(|b| b.is_ascii_digit()) {
            vec![("default_country_code".into(), "must be digits".into())]
        } else {
            Vec::new()
        }
    }
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
