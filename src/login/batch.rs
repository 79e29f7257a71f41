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
    /// The login states `outcomes` record, the latest per challenge.
    recorded: HashMap<Challenge, LoginRecord>,
    /// Auth requests whose answers may be forgotten once `outcomes` are committed.
    pub settle: Vec<u64>,
    pub completed: Vec<Completed>,
    /// Each MO's outcome line, written once `outcomes` are durable.
    pub reports: Vec<MoReport>,
}

impl Batch {
    /// The login state this round decided for `challenge`, if it decided one.
    pub fn recorded(&self, challenge: &Challenge) -> Option<&LoginRecord> {
        self.recorded.get(challenge)
    }

    pub fn push(&mut self, outcome: Outcome) {
        if let Outcome::Decided {
            login: Some((challenge, record)),
            ..
        } = &outcome
        {
            // As the store will commit it: a terminal state decided earlier in the round stays.
            let stays = self
                .recorded
                .get(challenge)
                .is_some_and(|earlier| !earlier.state.may_become(&record.state));
            if !stays {
                self.recorded.insert(*challenge, record.clone());
            }
        }
        self.outcomes.push(outcome);
    }

    pub fn outcomes(&self) -> &[Outcome] {
        &self.outcomes
    }
}
