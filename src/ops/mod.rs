//! Operating the daemon: configuration and logging.

pub mod config;
pub mod logging;
