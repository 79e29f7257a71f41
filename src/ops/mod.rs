//! Operating the daemon: configuration, logging, signals and systemd notification. The parts
//! that read every adapter (live reload, metrics, the status report) live beside the wiring,
//! in [`crate::daemon`].

pub mod config;
pub mod logging;
pub mod notify;
pub mod signals;
