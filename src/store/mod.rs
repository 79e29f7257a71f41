//! The embedded sled store behind a narrow interface.
//!
//! Each tree has one owner module (inbox, logins, accounts, outbox); the daemon sees only their
//! methods, so a shared-database backend can replace sled later without touching SMPP or HTTP.
//! Changes that span trees (an MO's outcome) go through [`Store::commit_outcome`], one sled
//! transaction. Nothing is durable until [`Store::flush`] returns: callers that acknowledge
//! something to the outside flush first and say so in a comment.

mod accounts;
mod flush;
mod inbox;
pub mod ingest;
mod logins;
mod minted;
mod outbox;
mod parts;
pub mod postgres;
mod record;
mod rejected;
mod sent;
mod webhooks;

use std::path::Path;
use std::sync::Arc;

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

pub use accounts::{Accounts, NewLogin};
pub use inbox::Inbox;
pub use logins::Logins;
pub use minted::Minted;
pub use outbox::Outbox;
pub use parts::{Filed, PartKey, Parts};
pub use rejected::Rejected;
pub use sent::Sent;
pub use webhooks::Webhooks;

use crate::core::clock::UnixSecs;
use crate::core::error::StoreError;
use crate::core::login::LoginRecord;
use crate::core::outbound::{Outbound, QueuedEvent};
use crate::core::token::Challenge;
use record::Record;

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Backend(e.to_string())
    }
}

impl From<TransactionError<StoreError>> for StoreError {
    fn from(e: TransactionError<StoreError>) -> Self {
        match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => e.into(),
        }
    }
}

/// Handles to every tree; cheap to clone (sled trees are reference-counted).
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    flusher: Arc<flush::Flusher>,
    pub inbox: Inbox,
    pub logins: Logins,
    pub accounts: Accounts,
    pub outbox: Outbox,
    pub parts: Parts,
    pub rejected: Rejected,
    pub sent: Sent,
    pub minted: Minted,
    pub webhooks: Webhooks,
}

impl Store {
    pub fn open(path: &Path, cache_capacity_mb: u64) -> Result<Store, StoreError> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(cache_capacity_mb * 1024 * 1024)
            .open()?;
        Self::from_db(db)
    }

    fn from_db(db: sled::Db) -> Result<Store, StoreError> {
        Ok(Store {
            inbox: Inbox::new(db.open_tree("inbox")?, db.open_tree("inbox_seen")?),
            logins: Logins::new(db.open_tree("logins")?),
            accounts: Accounts::new(
                db.open_tree("accounts")?,
                db.open_tree("sessions")?,
                db.open_tree("auth_receipts")?,
            ),
            outbox: Outbox::new(db.open_tree("outbox")?),
            flusher: Arc::new(flush::Flusher::default()),
            parts: Parts::new(db.open_tree("parts")?),
            rejected: Rejected::new(db.open_tree("rejected")?),
            sent: Sent::new(db.open_tree("sent")?),
            minted: Minted::new(db.open_tree("minted")?, db.open_tree("minted_due")?),
            webhooks: Webhooks::new(db.open_tree("webhooks")?),
            db,
        })
    }

    /// Makes every write so far durable. Callers that wait at the same time share one flush
    /// (group commit, see [`flush`]).
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.flusher.flush(&self.db).await
    }

    /// Records what an MO led to, atomically: the login state (if any), the replies to send,
    /// the webhook event that reports the state (if any), and the MO's removal from the
    /// inbox. Either all of it happens or none.
    pub fn commit_outcome(
        &self,
        mo_id: u64,
        login: Option<(Challenge, LoginRecord)>,
        replies: &[Outbound],
        event: Option<&QueuedEvent>,
    ) -> Result<(), StoreError> {
        let login_value = login.as_ref().map(|(c, r)| (*c, encode(r)));
        let reply_values: Vec<Vec<u8>> = replies.iter().map(encode).collect();
        let event_value = event.map(encode);
        (
            &self.inbox.tree,
            &self.logins.tree,
            &self.outbox.tree,
            &self.webhooks.tree,
        )
            .transaction(|(inbox, logins, outbox, webhooks)| {
                inbox.remove(&mo_id.to_be_bytes())?;
                if let Some((challenge, value)) = &login_value {
                    logins.insert(challenge.as_bytes(), value.as_slice())?;
                }
                for value in &reply_values {
                    let id = outbox.generate_id()?;
                    outbox.insert(&id.to_be_bytes(), value.as_slice())?;
                }
                if let Some(value) = &event_value {
                    let id = webhooks.generate_id()?;
                    webhooks.insert(&id.to_be_bytes(), value.as_slice())?;
                }
                Ok::<_, ConflictableTransactionError<StoreError>>(())
            })?;
        self.outbox.wake();
        if event.is_some() {
            self.webhooks.wake();
        }
        Ok(())
    }

    /// A minted login fell due with no SMS: records it `expired` and queues `event`, unless
    /// an MO recorded a state first; either way it is no longer due. Returns whether it was
    /// recorded. Not durable until the store is flushed.
    pub fn record_expiry(
        &self,
        expires_at: UnixSecs,
        challenge: &Challenge,
        record: &LoginRecord,
        event: &QueuedEvent,
    ) -> Result<bool, StoreError> {
        let record_value = encode(record);
        let event_value = encode(event);
        let due = minted::due_key(expires_at, challenge);
        let recorded = (&self.logins.tree, &self.minted.due, &self.webhooks.tree).transaction(
            |(logins, minted_due, webhooks)| {
                minted_due.remove(due.as_slice())?;
                if logins.get(challenge.as_bytes())?.is_some() {
                    return Ok(false);
                }
                logins.insert(challenge.as_bytes(), record_value.as_slice())?;
                let id = webhooks.generate_id()?;
                webhooks.insert(&id.to_be_bytes(), event_value.as_slice())?;
                Ok::<_, ConflictableTransactionError<StoreError>>(true)
            },
        )?;
        if recorded {
            self.webhooks.wake();
        }
        Ok(recorded)
    }
}

fn encode<T: Record>(value: &T) -> Vec<u8> {
    value.to_bytes()
}

fn decode<T: Record>(tree: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    T::from_bytes(tree, bytes)
}

/// Removes the records of `tree` that `expired` picks; returns how many. For trees whose
/// records nobody else rewrites (a swap-free remove is enough).
fn remove_where<T: Record>(
    tree: &sled::Tree,
    name: &'static str,
    expired: impl Fn(&T) -> bool,
) -> Result<usize, StoreError> {
    let mut removed = 0;
    for entry in tree.iter() {
        let (key, value) = entry?;
        if expired(&decode(name, &value)?) {
            tree.remove(key)?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
pub(crate) fn temporary() -> Store {
    let db = sled::Config::new().temporary(true).open().unwrap();
    Store::from_db(db).unwrap()
}
