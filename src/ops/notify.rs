//! The systemd notify protocol: READY, STATUS, WATCHDOG, RELOADING and STOPPING.
//!
//! systemd starts dependent units when we say READY and kills us when the watchdog goes
//! unfed, so both must be honest: READY only once the store is open and HTTP listens, and
//! WATCHDOG only from the main loop after a health check passed; a wedged pipeline then
//! earns a restart instead of a quiet outage. Without `NOTIFY_SOCKET` (a terminal, a test
//! harness) every call is a no-op, so callers never branch on how they were started.

use std::time::Duration;

use sd_notify::NotifyState;
use tracing::warn;

/// Talks to the service manager named by `NOTIFY_SOCKET`, if any.
#[derive(Debug, Clone, Copy, Default)]
pub struct Notifier;

impl Notifier {
    pub fn ready(&self, status: &str) {
        send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    /// RELOADING carries the monotonic time systemd uses to match it with the READY after it.
    pub fn reloading(&self) {
        match NotifyState::monotonic_usec_now() {
            Ok(now) => send(&[NotifyState::Reloading, now]),
            Err(_) => send(&[NotifyState::Reloading]),
        }
    }

    pub fn stopping(&self) {
        send(&[NotifyState::Stopping, NotifyState::Status("draining")]);
    }

    pub fn status(&self, status: &str) {
        send(&[NotifyState::Status(status)]);
    }

    pub fn watchdog(&self) {
        send(&[NotifyState::Watchdog]);
    }

    /// How often to feed the watchdog: half its timeout, as sd_watchdog_enabled(3) advises.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        sd_notify::watchdog_enabled().map(|timeout| timeout / 2)
    }
}

/// A lost notification is logged, never fatal: the daemon works the same without systemd.
fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        warn!(error = %e, "systemd notification not delivered");
    }
}
