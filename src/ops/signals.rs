//! The signals an operator (or systemd) uses to steer the daemon.
//!
//! SIGTERM and SIGINT both mean "drain and exit 0"; SIGHUP means "read the config file
//! again". Handlers are installed once, before READY, so a signal sent the moment systemd
//! considers us started is never lost to the default action (which would kill us mid-write).

use thiserror::Error;
use tokio::signal::unix::{Signal, SignalKind, signal};

#[derive(Debug, Error)]
#[error("installing signal handlers: {0}")]
pub struct SignalError(#[from] std::io::Error);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Stop,
    Reload,
}

pub struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

impl Signals {
    pub fn install() -> Result<Signals, SignalError> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// The next request; a closed signal stream (never expected) reads as a stop.
    pub async fn next(&mut self) -> Request {
        tokio::select! {
            _ = self.term.recv() => Request::Stop,
            _ = self.int.recv() => Request::Stop,
            hup = self.hup.recv() => match hup {
                Some(()) => Request::Reload,
                None => Request::Stop,
            },
        }
    }
}
