//! A login's recorded state, keyed by its token's challenge: what an app's poll reads.
//!
//! A challenge with no record is `pending` (derivable from the token alone, so polls for
//! logins whose SMS never came write nothing). A record also marks its token as used, which is
//! how replays are caught: the record outlives the token's acceptance window.

use serde::{Deserialize, Serialize};

use crate::core::clock::UnixSecs;
use crate::core::msisdn::Msisdn;

/// Why a login was refused, as the HTTP API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    BadToken,
    Replayed,
    AuthCoreRefused,
    /// An abuse limit refused the MO (per-number MOs, new accounts per prefix).
    RateLimited,
    /// The sender is on the deny list.
    BlockedNumber,
    AuthCoreUnavailable,
}

impl RejectReason {
    pub const ALL: [RejectReason; 6] = [
        RejectReason::BadToken,
        RejectReason::Replayed,
        RejectReason::AuthCoreRefused,
        RejectReason::RateLimited,
        RejectReason::BlockedNumber,
        RejectReason::AuthCoreUnavailable,
    ];

    /// The reason whose [`RejectReason::as_str`] is `name`.
    pub fn from_name(name: &str) -> Option<RejectReason> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::BadToken => "bad_token",
            RejectReason::Replayed => "replayed",
            RejectReason::AuthCoreRefused => "auth_core_refused",
            RejectReason::RateLimited => "rate_limited",
            RejectReason::BlockedNumber => "blocked_number",
            RejectReason::AuthCoreUnavailable => "auth_core_unavailable",
        }
    }
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LoginState {
    /// The session waits for its one poll. `session` is a secret: no Debug output.
    Complete {
        session: String,
        account_id: String,
        created: bool,
    },
    Consumed,
    Expired,
    Rejected {
        reason: RejectReason,
    },
    /// Its MO waits in the inbox for the auth core; polls say `pending` even past the
    /// token's window, until the MO's outcome replaces this.
    Waiting,
}

impl LoginState {
    /// Whether a recorded `self` may be replaced by `next`. A terminal state stays terminal:
    /// only a login still waiting for the auth core, one marked `bad_token` (a valid SMS
    /// for the same challenge wins), or an uncollected `complete` that another number
    /// claims as well (both lose: `rejected/replayed`) give way. The pipeline decides on a
    /// record it read earlier; a poll may have consumed the session since, and that must
    /// stand, so the store checks this when it commits.
    pub fn may_become(&self, next: &LoginState) -> bool {
        match self {
            LoginState::Waiting
            | LoginState::Rejected {
                reason: RejectReason::BadToken,
            } => true,
            LoginState::Complete { .. } => matches!(
                next,
                LoginState::Rejected {
                    reason: RejectReason::Replayed
                }
            ),
            LoginState::Consumed | LoginState::Expired | LoginState::Rejected { .. } => false,
        }
    }
}

impl std::fmt::Debug for LoginState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoginState::Complete { created, .. } => write!(f, "Complete {{ created: {created} }}"),
            LoginState::Consumed => f.write_str("Consumed"),
            LoginState::Expired => f.write_str("Expired"),
            LoginState::Rejected { reason } => write!(f, "Rejected({})", reason.as_str()),
            LoginState::Waiting => f.write_str("Waiting"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginRecord {
    pub state: LoginState,
    /// The number whose SMS decided this state, if one did.
    pub msisdn: Option<Msisdn>,
    pub issued_at: UnixSecs,
    pub decided_at: UnixSecs,
    /// The sweeper removes the record after this.
    pub keep_until: UnixSecs,
}

/// A login moauth minted for a backend (`POST /v1/logins`): whose webhook its terminal state
/// goes to, and when it falls due if no SMS comes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MintedLogin {
    /// The `[[http.api_keys]]` name of the backend that asked for it.
    pub backend: String,
    pub issued_at: UnixSecs,
    /// The token's window closes here (as a poll sees it).
    pub expires_at: UnixSecs,
    /// Kept as long as the login's own record may be.
    pub keep_until: UnixSecs,
}
