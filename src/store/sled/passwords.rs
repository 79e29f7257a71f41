//! New accounts' pending passwords: the registrar's side of the accounts.
//!
//! `password_pending` holds one entry per account created without its password (keyed by
//! account id, so the oldest come first). The entry leaves in the one transaction that
//! stores the hash and queues the SMS carrying the password, so a crash leaves either the
//! mark (and the registrar makes a new password after the restart) or the hash with its SMS
//! in the outbox, never a password queued whose hash is not stored. One process holds a sled
//! store, so the registrar's `skip` is all the claiming there is.

use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

use super::record::PendingRecord;
use super::{SledStore, StoreError, decode, encode};
use crate::core::auth::Account;
use crate::core::msisdn::Msisdn;
use crate::core::outbound::{Outbound, SmsRoute};
use crate::core::store::PendingPassword;

impl SledStore {
    pub(super) fn pending_passwords(
        &self,
        skip: &(dyn Fn(&Msisdn) -> bool + Send + Sync),
        limit: usize,
    ) -> Result<Vec<PendingPassword>, StoreError> {
        let mut found = Vec::new();
        for entry in self.accounts.pending.iter() {
            if found.len() >= limit {
                break;
            }
            let (key, value) = entry?;
            let record: PendingRecord = decode("password_pending", &value)?;
            if skip(&record.msisdn) {
                continue;
            }
            let account_id = <[u8; 8]>::try_from(key.as_ref())
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::Corrupt {
                    tree: "password_pending",
                    message: format!("a key of {} bytes", key.len()),
                })?;
            found.push(PendingPassword {
                msisdn: record.msisdn,
                account_id,
                to: SmsRoute {
                    smsc: record.smsc,
                    from: record.from,
                },
                since: record.since,
            });
        }
        Ok(found)
    }

    /// One transaction over the account, its mark and the outbox.
    pub(super) fn store_password(
        &self,
        pending: &PendingPassword,
        password: Option<(&str, &Outbound)>,
    ) -> Result<bool, StoreError> {
        let mark = pending.account_id.to_be_bytes();
        let password = password.map(|(hash, sms)| (hash, encode(sms)));
        let stored = (
            &self.accounts.pending,
            self.accounts.accounts_tree(),
            &self.outbox.tree,
        )
            .transaction(|(marks, accounts, outbox)| {
                if marks.remove(&mark)?.is_none() {
                    return Ok(false);
                }
                let Some((hash, sms)) = &password else {
                    return Ok(false);
                };
                let key = pending.msisdn.as_str().as_bytes();
                let Some(value) = accounts.get(key)? else {
                    return Ok(false);
                };
                let mut account: Account =
                    decode("accounts", &value).map_err(ConflictableTransactionError::Abort)?;
                // Another account under the number (erased and made again), or a password
                // set meanwhile (PASSWORD texted): this one is not to be sent.
                if account.id != pending.account_id || account.password_hash.is_some() {
                    return Ok(false);
                }
                account.password_hash = Some((*hash).to_owned());
                accounts.insert(key, encode(&account))?;
                let id = outbox.generate_id()?;
                outbox.insert(&id.to_be_bytes(), sms.as_slice())?;
                Ok::<_, ConflictableTransactionError<StoreError>>(true)
            })?;
        if stored {
            self.outbox.depth.add(1);
            self.outbox.wake();
        }
        Ok(stored)
    }
}
