//! tracing output: readable on a terminal, JSON lines under systemd and log shippers.
//!
//! The format is chosen once at start (`auto` looks at whether stderr is a terminal, which
//! under systemd it is not); the level sits behind a reload handle so SIGHUP can change it
//! without a restart. `RUST_LOG`, when set, wins over the config file, at start and on reload,
//! because an operator who set it by hand is debugging something.
//!
//! Phone numbers are masked by `Msisdn::masked()` at every level; secrets (passwords, verifiers,
//! session tokens) have no Display and are never passed to a log macro. Libraries that could
//! print raw PDU or HTTP bytes are capped below trace, so even `RUST_LOG=trace` keeps them out
//! (tests/it/ops_logs.rs checks this over a whole login).

use std::io::IsTerminal;

use serde::Deserialize;
use thiserror::Error;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

#[derive(Debug, Error)]
pub enum LoggingError {
    #[error("log level {level:?}: {message}")]
    BadLevel { level: String, message: String },
    #[error("log level not changed: {0}")]
    Reload(#[from] reload::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human text on a terminal, JSON lines otherwise.
    Auto,
    Human,
    Json,
}

/// Directives appended to every filter: these crates log wire bytes at debug/trace.
const ALWAYS: &[&str] = &[
    "rusmpp=warn",
    "sled=warn",
    "hyper=info",
    "h2=info",
    "reqwest=info",
];

/// Changes the level of the installed subscriber.
#[derive(Clone)]
pub struct LogControl {
    handle: Option<reload::Handle<EnvFilter, Registry>>,
    from_env: bool,
}

/// Installs the global subscriber once; a second call returns a handle that changes nothing.
pub fn init(format: LogFormat, default_level: &str) -> LogControl {
    let from_env = std::env::var(EnvFilter::DEFAULT_ENV).ok();
    let filter = from_env
        .as_deref()
        .and_then(|level| capped(level).ok())
        .or_else(|| capped(default_level).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let json = match format {
        LogFormat::Auto => !std::io::stderr().is_terminal(),
        LogFormat::Human => false,
        LogFormat::Json => true,
    };
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let installed = if json {
        Registry::default()
            .with(filter)
            .with(layer.json().flatten_event(true))
            .try_init()
    } else {
        Registry::default().with(filter).with(layer).try_init()
    };
    LogControl {
        handle: installed.is_ok().then_some(handle),
        from_env: from_env.is_some(),
    }
}

impl LogControl {
    /// Applies the config file's level, unless `RUST_LOG` was set.
    pub fn set_level(&self, level: &str) -> Result<(), LoggingError> {
        let filter = capped(level)?;
        if let (Some(handle), false) = (&self.handle, self.from_env) {
            handle.reload(filter)?;
        }
        Ok(())
    }
}

fn capped(level: &str) -> Result<EnvFilter, LoggingError> {
    let bad = |e: &dyn std::fmt::Display| LoggingError::BadLevel {
        level: level.to_owned(),
        message: e.to_string(),
    };
    let mut filter = EnvFilter::try_new(level).map_err(|e| bad(&e))?;
    for directive in ALWAYS {
        filter = filter.add_directive(directive.parse().map_err(|e| bad(&e))?);
    }
    Ok(filter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_level_crates_stay_capped_under_trace() {
        let shown = capped("trace").unwrap().to_string();
        assert!(shown.contains("rusmpp=warn"), "{shown}");
        assert!(shown.contains("hyper=info"), "{shown}");
    }

    #[test]
    fn a_bad_level_is_refused() {
        assert!(matches!(
            capped("loud=["),
            Err(LoggingError::BadLevel { .. })
        ));
    }
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

impl LogConfig {
    pub fn problems(&self) -> Vec<(String, String)> {
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
