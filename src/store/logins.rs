//! Logins keyed by token challenge: the state an app's poll reads.
//!
//! A challenge with no record is `pending` (derivable from the token alone, so polls for
//! logins whose SMS never came write nothing). A record also marks its token as used, which is
//! how replays are caught: the record outlives the token's acceptance window.

use super::record::login_keep_until;
use super::{StoreError, decode, encode};
use crate::core::clock::UnixSecs;
use crate::core::login::{LoginRecord, LoginState};
use crate::core::token::Challenge;

#[derive(Clone)]
pub struct Logins {
    pub(super) tree: sled::Tree,
}

impl Logins {
    pub(super) fn new(tree: sled::Tree) -> Self {
        Logins { tree }
    }

    pub fn get(&self, challenge: &Challenge) -> Result<Option<LoginRecord>, StoreError> {
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

    /// Records that the login's MO waits for the auth core, unless something is recorded
    /// already: a decided state is never overwritten. Not durable until the store is flushed;
    /// after a crash the MO is tried again and marks itself again.
    pub fn mark_waiting(
        &self,
        challenge: &Challenge,
        record: &LoginRecord,
    ) -> Result<(), StoreError> {
        let _already = self.tree.compare_and_swap(
            challenge.as_bytes(),
            None as Option<&[u8]>,
            Some(encode(record)),
        )?;
        Ok(())
    }

    /// Resolves when the record for `challenge` changes. Subscribe before reading the state,
    /// then await, so no change slips between the read and the wait.
    pub fn watch(&self, challenge: &Challenge) -> sled::Subscriber {
        self.tree.watch_prefix(challenge.as_bytes())
    }

    /// Removes records past their `keep_until`; returns how many.
    pub fn sweep(&self, now: UnixSecs) -> Result<usize, StoreError> {
        let mut removed = 0;
        for entry in self.tree.iter() {
            let (key, value) = entry?;
            if login_keep_until("logins", &value)? < now
                && self
                    .tree
                    .compare_and_swap(&key, Some(value), None as Option<&[u8]>)?
                    .is_ok()
            {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::msisdn::Msisdn;
    use crate::core::token::Verifier;

    fn kept_until(keep_until: UnixSecs) -> LoginRecord {
        LoginRecord {
            state: LoginState::Complete {
                session: "s".into(),
                account_id: "1".into(),
                created: false,
            },
            msisdn: Some(Msisdn::parse("+8613800138000").unwrap()),
            issued_at: 1,
            decided_at: 2,
            keep_until,
        }
    }

    #[test]
    fn sweep_removes_only_records_past_their_keep_until() {
        let store = crate::store::temporary();
        let (old, young) = (
            Verifier::random().challenge(),
            Verifier::random().challenge(),
        );
        store
            .commit_outcome(1, Some((old, kept_until(10))), &[], None)
            .unwrap();
        store
            .commit_outcome(2, Some((young, kept_until(20))), &[], None)
            .unwrap();
        assert_eq!(store.logins.sweep(15).unwrap(), 1);
        assert!(store.logins.get(&old).unwrap().is_none());
        assert_eq!(store.logins.get(&young).unwrap(), Some(kept_until(20)));
    }
}
