//! Logins keyed by token challenge: the state an app's poll reads.
//!
//! A challenge with no record is `pending` (derivable from the token alone, so polls for
//! logins whose SMS never came write nothing). A record also marks its token as used, which is
//! how replays are caught: the record outlives the token's acceptance window.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::expiry::Expiry;
use super::record::login_keep_until;
use super::{StoreError, decode, encode};
use crate::core::clock::UnixSecs;
use crate::core::login::{LoginRecord, LoginState};
use crate::core::msisdn::Msisdn;
use crate::core::token::Challenge;

#[derive(Clone)]
pub struct Logins {
    pub(super) tree: sled::Tree,
    /// keep_until ‖ challenge: what the sweep reads.
    pub(super) due: Expiry,
    /// Sessions swapped to `consumed` in the tree whose flush failed: not handed out, and
    /// not durably consumed either. They read as the `complete` record they were until a
    /// flush succeeds for a poll that then hands them out (`Logins::untaken`).
    untaken: Arc<Mutex<HashMap<Challenge, LoginRecord>>>,
}

impl Logins {
    pub(super) fn open(db: &sled::Db) -> Result<Self, StoreError> {
        let tree = db.open_tree("logins")?;
        let due = Expiry::open(db, "logins_due", &tree, |_, value| {
            login_keep_until("logins", value)
        })?;
        Ok(Logins {
            tree,
            due,
            untaken: Arc::default(),
        })
    }

    pub fn get(&self, challenge: &Challenge) -> Result<Option<LoginRecord>, StoreError> {
        if let Some(record) = self.untaken().get(challenge) {
            return Ok(Some(record.clone()));
        }
        self.tree
            .get(challenge.as_bytes())?
            .map(|v| decode("logins", &v))
            .transpose()
    }

    /// Hands a completed login's session out exactly once: swaps `Complete` for `Consumed`
    /// only if the record is still the one read. Returns the record as it was before the swap,
    /// or None if another poll won the race. Not durable until the store is flushed.
    pub fn consume(
        &self,
        challenge: &Challenge,
        seen: &LoginRecord,
    ) -> Result<Option<LoginRecord>, StoreError> {
        let consumed = LoginRecord {
            state: LoginState::Consumed,
            ..seen.clone()
        };
        let swapped = self.tree.compare_and_swap(
            challenge.as_bytes(),
            Some(encode(seen)),
            Some(encode(&consumed)),
        )?;
        Ok(swapped.is_ok().then(|| seen.clone()))
    }

    /// Starts handing `seen`'s session out: swaps it to `consumed` in the tree (or finds it
    /// swapped by an earlier take whose flush failed) and notes it as not yet handed out.
    /// False if another poll won. The caller flushes, then calls [`Logins::handed_out`].
    pub fn begin_take(
        &self,
        challenge: &Challenge,
        seen: &LoginRecord,
    ) -> Result<bool, StoreError> {
        if self.untaken().get(challenge) == Some(seen) {
            return Ok(true);
        }
        if self.consume(challenge, seen)?.is_none() {
            return Ok(false);
        }
        self.untaken().insert(*challenge, seen.clone());
        Ok(true)
    }

    /// The flush after [`Logins::begin_take`] succeeded: `consumed` is durable. True for the
    /// one poll that hands the session out, false for any that raced it.
    pub fn handed_out(&self, challenge: &Challenge) -> bool {
        self.untaken().remove(challenge).is_some()
    }

    /// Forgets the sessions of `msisdn` still waiting to be handed out (erasure): their
    /// records left the tree, and nothing may read or hand them out from here either.
    pub(super) fn forget_untaken(&self, msisdn: &Msisdn) {
        self.untaken()
            .retain(|_, record| record.msisdn.as_ref() != Some(msisdn));
    }

    fn untaken(&self) -> std::sync::MutexGuard<'_, HashMap<Challenge, LoginRecord>> {
        self.untaken.lock().expect("untaken sessions")
    }

    /// Records that the login's MO waits for the auth core, unless something is recorded
    /// already: a decided state is never overwritten. Not durable until the store is flushed;
    /// after a crash the MO is tried again and marks itself again.
    pub fn mark_waiting(
        &self,
        challenge: &Challenge,
        record: &LoginRecord,
    ) -> Result<(), StoreError> {
        self.due.note(record.keep_until, challenge.as_bytes())?;
        let _already = self.tree.compare_and_swap(
            challenge.as_bytes(),
            None as Option<&[u8]>,
            Some(encode(record)),
        )?;
        Ok(())
    }

    /// Removes records past their `keep_until`, never one that changed meanwhile; reads
    /// only the index entries due. Returns how many.
    pub fn sweep(&self, now: UnixSecs) -> Result<usize, StoreError> {
        let sweep = self.due.sweep(now, |key| {
            let Some(value) = self.tree.get(key)? else {
                return Ok(false);
            };
            Ok(login_keep_until("logins", &value)? < now
                && self
                    .tree
                    .compare_and_swap(key, Some(value), None as Option<&[u8]>)?
                    .is_ok())
        })?;
        Ok(sweep.removed)
    }
}
