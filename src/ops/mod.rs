//! Operating the daemon: configuration, logging, signals, systemd notification, live reload
//! and the status report.

pub mod config;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod reload;
pub mod signals;
pub mod status;
