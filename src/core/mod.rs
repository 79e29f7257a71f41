//! The domain core: what moauth is about, with no adapter in sight.
//!
//! Domain types (the number, the token, an MO, a login's state, an SMS to send, a webhook
//! event), the pure decisions made on them (what an MO asks for, the abuse limits, the reply
//! texts, the event bodies), and the interfaces the adapters plug into: the store traits and
//! [`auth::AuthCore`]. This module imports nothing else from the crate; the sled store, SMPP,
//! HTTP, webhooks, the auth cores and the simulator depend on it, never on each other
//! around a circle, and `daemon` is the one place that wires them together.
//!
//! Room for several apps per daemon: [`AppId`] names the app a login belongs to. Today there
//! is one app per daemon and nothing stores it; a later change adds it to MOs, logins and
//! accounts, which is why the store traits key everything by values of this module's types.

pub mod arrivals;
pub mod auth;
pub mod budget;
pub mod clock;
pub mod decide;
pub mod error;
pub mod events;
pub mod health;
pub mod limits;
pub mod live;
pub mod login;
pub mod mo;
pub mod msisdn;
pub mod notify;
pub mod outbound;
pub mod replies;
pub mod secret;
pub mod sms_budget;
pub mod store;
pub mod token;

/// The short code a login SMS goes to when the config names none (`moauth token`, the demo).
pub const DEFAULT_SHORT_CODE: &str = "10690000";

/// The app (tenant) a login, an MO or an account belongs to. One daemon serves one app today,
/// [`AppId::single`]; several apps per daemon is a later change, which fills this in from the
/// short code or the API key instead of assuming one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AppId(String);

impl AppId {
    /// The only app of a single-app daemon.
    pub fn single() -> AppId {
        AppId(String::new())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}
