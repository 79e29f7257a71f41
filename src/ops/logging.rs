//! tracing output: readable on a terminal, JSON lines for log shippers.
//!
//! Phone numbers are masked by `Msisdn`'s Debug/`masked()`; secrets (passwords, verifiers,
//! session tokens) have no Display and are never passed to a log macro.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once; `RUST_LOG` overrides the default level.
pub fn init(json: bool, default_level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{default_level},rusmpp=warn,sled=warn")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
