//! Which backend minted a login (`POST /v1/logins`), keyed by its token's challenge, and when
//! each such login falls due.
//!
//! Two trees. `minted` (challenge → [`MintedLogin`]) answers "whose login is this?" when its
//! terminal state is recorded, so the event goes to that backend's webhook. `minted_due`
//! (`expires_at` ‖ challenge) lists the same logins in expiry order: a login whose SMS never
//! came expires by the clock alone, a state nothing else writes, and this lets the webhook
//! dispatcher find exactly the ones that fell due without reading the rest. App-made tokens
//! have no entry here, so they work exactly as before.

use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

use super::expiry::{self, Expiry};
use super::{StoreError, decode, encode};
use crate::core::clock::UnixSecs;
use crate::core::login::MintedLogin;
use crate::core::token::Challenge;

#[derive(Clone)]
pub struct Minted {
    pub(super) tree: sled::Tree,
    pub(super) due: sled::Tree,
    /// keep_until ‖ challenge: what the sweep reads.
    kept: Expiry,
}

/// The `minted_due` key: big-endian time first, so iteration is in expiry order.
pub(super) fn due_key(expires_at: UnixSecs, challenge: &Challenge) -> Vec<u8> {
    expiry::entry(expires_at, challenge.as_bytes())
}

impl Minted {
    pub(super) fn open(db: &sled::Db) -> Result<Self, StoreError> {
        let tree = db.open_tree("minted")?;
        Ok(Minted {
            kept: Expiry::open(db, "minted_kept", &tree, |_, value| {
                Ok(decode::<MintedLogin>("minted", value)?.keep_until)
            })?,
            due: db.open_tree("minted_due")?,
            tree,
        })
    }

    /// Records a new login and its due date together. Not durable until the store is flushed.
    pub fn insert(&self, challenge: &Challenge, login: &MintedLogin) -> Result<(), StoreError> {
        let value = encode(login);
        let due = due_key(login.expires_at, challenge);
        (&self.tree, &self.due, self.kept.tree()).transaction(|(tree, due_tree, kept)| {
            Expiry::note_in(kept, login.keep_until, challenge.as_bytes())?;
            tree.insert(challenge.as_bytes(), value.as_slice())?;
            due_tree.insert(due.as_slice(), &[][..])?;
            Ok::<_, ConflictableTransactionError<StoreError>>(())
        })?;
        Ok(())
    }

    pub fn get(&self, challenge: &Challenge) -> Result<Option<MintedLogin>, StoreError> {
        self.tree
            .get(challenge.as_bytes())?
            .map(|v| decode("minted", &v))
            .transpose()
    }

    /// Up to `limit` logins whose window closed before `now`, soonest first.
    pub fn due(
        &self,
        now: UnixSecs,
        limit: usize,
    ) -> Result<Vec<(UnixSecs, Challenge)>, StoreError> {
        let mut found = Vec::new();
        for entry in self.due.range(..now.to_be_bytes().to_vec()).take(limit) {
            let (key, _) = entry?;
            let expires_at = u64::from_be_bytes(key[..8].try_into().unwrap_or_default());
            if let Some(challenge) = Challenge::from_bytes(&key[8..]) {
                found.push((expires_at, challenge));
            }
        }
        Ok(found)
    }

    /// The login fell due and needs no event (its backend has no webhook).
    pub fn settle_due(
        &self,
        expires_at: UnixSecs,
        challenge: &Challenge,
    ) -> Result<(), StoreError> {
        self.due.remove(due_key(expires_at, challenge))?;
        Ok(())
    }

    /// Removes entries past their `keep_until`, reading only those; returns how many.
    pub fn sweep(&self, now: UnixSecs) -> Result<usize, StoreError> {
        let sweep = self
            .kept
            .sweep_records(&self.tree, "minted", now, |login: &MintedLogin| {
                login.keep_until
            })?;
        Ok(sweep.removed)
    }
}
