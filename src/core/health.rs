//! What `/readyz`, `/status` and the metrics report about the adapters: which SMPP links are
//! bound and whether the auth core answers. Adapters write it, the HTTP and status side read
//! it; neither knows the other.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;

/// Which connections are bound, and why each that is not went down, for `/readyz` and status
/// output.
#[derive(Clone, Default)]
pub struct LinkStates(Arc<Mutex<BTreeMap<String, LinkState>>>);

#[derive(Default)]
struct LinkState {
    bound: bool,
    /// Why the connection last failed; cleared when it binds.
    last_error: Option<String>,
}

impl LinkStates {
    pub fn set(&self, name: &str, bound: bool) {
        let mut states = self.0.lock().expect("link state lock");
        let state = states.entry(name.to_owned()).or_default();
        state.bound = bound;
        if bound {
            state.last_error = None;
        }
    }

    /// The connection is down for this reason (shown until it binds again).
    pub fn failed(&self, name: &str, error: String) {
        let mut states = self.0.lock().expect("link state lock");
        let state = states.entry(name.to_owned()).or_default();
        state.bound = false;
        state.last_error = Some(error);
    }

    pub fn bound(&self) -> Vec<String> {
        let states = self.0.lock().expect("link state lock");
        states
            .iter()
            .filter(|(_, s)| s.bound)
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Why each connection that has not bound since its last failure failed.
    pub fn last_errors(&self) -> BTreeMap<String, String> {
        let states = self.0.lock().expect("link state lock");
        states
            .iter()
            .filter_map(|(n, s)| Some((n.clone(), s.last_error.clone()?)))
            .collect()
    }
}

/// The auth core's state as `/readyz` and the metrics name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthCoreHealth {
    /// The embedded core: always there while the store is.
    Embedded,
    /// Requests go out.
    Closed,
    /// Requests are held back after repeated failures.
    Open,
    /// One probe may go out (or is out) to see whether the auth core is back.
    HalfOpen,
}

impl AuthCoreHealth {
    /// The state as `/readyz` and the logs name it.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthCoreHealth::Embedded => "embedded",
            AuthCoreHealth::Closed => "closed",
            AuthCoreHealth::Open => "open",
            AuthCoreHealth::HalfOpen => "half_open",
        }
    }

    /// Whether the auth core is believed to answer (the `moauth_auth_core_up` gauge).
    pub fn is_up(self) -> bool {
        matches!(self, AuthCoreHealth::Embedded | AuthCoreHealth::Closed)
    }

    /// Sets the `moauth_auth_core_up` gauge: 1 while requests go out, 0 while held back.
    pub fn publish(self) {
        metrics::gauge!("moauth_auth_core_up").set(if self.is_up() { 1.0 } else { 0.0 });
    }
}
