//! What one round of the pipeline decided, held until it is committed as one store transaction.
//!
//! The pipeline decides every MO of a round first and commits all their outcomes with one
//! [`PipelineStore::commit_outcomes`](crate::core::store::PipelineStore::commit_outcomes) and
//! one flush: a transaction and a flush per MO cost several times the CPU of the same writes
//! batched (see `/work/shared/notes/sled-batching.md`). Until then the round's decisions live
//! only here, so an MO later in the round reads the login states decided earlier in it from
//! here first (a token sent twice in one round is a replay the second time, as it would be
//! across rounds).

use std::collections::HashMap;

use crate::core::clock::UnixSecs;
use crate::core::login::LoginRecord;
use crate::core::msisdn::Msisdn;
use crate::core::store::Outcome;
use crate::core::token::Challenge;

use super::report::MoReport;

/// A login the round completed: counted in the metrics and limits once committed, so an MO
/// processed again after a failure counts once.
pub(super) struct Completed {
    pub sender: Msisdn,
    pub created: bool,
    pub received_at: UnixSecs,
    /// The MO's digest, by which its arrival instant was noted.
    pub digest: [u8; 16],
    pub now: UnixSecs,
}

#[derive(Default)]
pub(super) struct Batch {
    outcomes: Vec<Outcome>,
    /// Per challenge, the outcome whose login state the round records: the latest that may
    /// follow the one before it.
    recorded: HashMap<Challenge, usize>,
    /// Auth requests whose answers may be forgotten once `outcomes` are committed.
    pub settle: Vec<u64>,
    pub completed: Vec<Completed>,
    /// Each MO's outcome line, written once `outcomes` are durable.
    pub reports: Vec<MoReport>,
}

impl Batch {
    /// The login state this round decided for `challenge`, if it decided one.
    pub fn recorded(&self, challenge: &Challenge) -> Option<&LoginRecord> {
        match &self.outcomes[*self.recorded.get(challenge)?] {
            Outcome::Decided {
                login: Some((_, record)),
                ..
            } => Some(record),
            _ => None,
        }
    }

    /// Adds an MO's outcome. Of two logins of one challenge in the round, one state is
    /// recorded, as the store would leave it had they come in two rounds: a terminal state
    /// decided earlier stays, else the later one replaces it. The other outcome loses its
    /// login, with the session and the event that went with it (the MO still leaves the
    /// inbox and its replies still go), so no session or event leaves for a state never
    /// recorded: an uncollected `complete` claimed by a second number becomes `replayed`
    /// and neither number gets a session.
    pub fn push(&mut self, mut outcome: Outcome) {
        let index = self.outcomes.len();
        if let Outcome::Decided {
            login: Some((challenge, record)),
            ..
        } = &outcome
        {
            let challenge = *challenge;
            match self.recorded(&challenge) {
                Some(earlier) if !earlier.state.may_become(&record.state) => {
                    outcome.drop_login();
                }
                Some(_) => {
                    let earlier = self.recorded[&challenge];
                    self.outcomes[earlier].drop_login();
                    self.recorded.insert(challenge, index);
                }
                None => {
                    self.recorded.insert(challenge, index);
                }
            }
        }
        self.outcomes.push(outcome);
    }

    pub fn outcomes(&self) -> &[Outcome] {
        &self.outcomes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::auth::{NewSession, SessionKey};
    use crate::core::login::{LoginState, RejectReason};
    use crate::core::outbound::QueuedEvent;
    use crate::core::token::{Token, Verifier};

    fn decided(mo: u64, challenge: Challenge, state: LoginState) -> Outcome {
        let msisdn = Msisdn::parse("+8613800138000").unwrap();
        Outcome::Decided {
            mo,
            login: Some((
                challenge,
                LoginRecord {
                    state,
                    msisdn: Some(msisdn.clone()),
                    issued_at: 1_000,
                    decided_at: 1_000,
                    keep_until: 2_000,
                },
            )),
            session: Some(NewSession {
                account_id: 7,
                msisdn,
                key: SessionKey::of(&format!("s{mo}")),
                issued_at: 1_000,
                expires_at: 9_000,
            }),
            replies: vec![],
            event: Some(QueuedEvent {
                backend: "shop".into(),
                event_id: format!("e{mo}"),
                body: "{}".into(),
            }),
        }
    }

    fn complete(session: &str) -> LoginState {
        LoginState::Complete {
            session: session.into(),
            account_id: "7".into(),
            created: false,
        }
    }

    /// Which outcomes still carry a login, with its session and event, by MO.
    fn carrying(batch: &Batch) -> Vec<(u64, bool, bool, bool)> {
        batch
            .outcomes()
            .iter()
            .map(|o| match o {
                Outcome::Decided {
                    mo,
                    login,
                    session,
                    event,
                    ..
                } => (*mo, login.is_some(), session.is_some(), event.is_some()),
                Outcome::Rejected { mo, .. } => (*mo, false, false, false),
            })
            .collect()
    }

    /// An uncollected `complete` claimed by a second number in the same round becomes
    /// `replayed`: the first outcome's session and event are not stored, as if the two MOs
    /// had come in two rounds and the second had taken the login from the first.
    #[test]
    fn a_later_state_replaces_an_earlier_one_with_its_session_and_event() {
        let challenge = Token::for_verifier(&Verifier::random(), 1_000).challenge();
        let mut batch = Batch::default();
        batch.push(decided(1, challenge, complete("s1")));
        let replayed = LoginState::Rejected {
            reason: RejectReason::Replayed,
        };
        batch.push(decided(2, challenge, replayed.clone()));
        assert_eq!(
            carrying(&batch),
            [(1, false, false, false), (2, true, true, true)]
        );
        assert_eq!(batch.recorded(&challenge).unwrap().state, replayed);
    }

    /// A terminal state decided earlier in the round stays; the later outcome records
    /// nothing, and its session and event go nowhere.
    #[test]
    fn a_terminal_state_decided_earlier_stays() {
        let challenge = Token::for_verifier(&Verifier::random(), 1_000).challenge();
        let mut batch = Batch::default();
        batch.push(decided(1, challenge, LoginState::Expired));
        batch.push(decided(2, challenge, complete("s2")));
        assert_eq!(
            carrying(&batch),
            [(1, true, true, true), (2, false, false, false)]
        );
        assert_eq!(
            batch.recorded(&challenge).unwrap().state,
            LoginState::Expired
        );
    }
}
