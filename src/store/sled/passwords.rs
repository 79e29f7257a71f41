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
        // Whether the mark was there (and went), and whether the password was stored.
        let (unmarked, stored) = (
            &self.accounts.pending,
            self.accounts.accounts_tree(),
            &self.outbox.tree,
        )
            .transaction(|(marks, accounts, outbox)| {
                if marks.remove(&mark)?.is_none() {
                    return Ok((false, false));
                }
                let Some((hash, sms)) = &password else {
                    return Ok((true, false));
                };
                let key = pending.msisdn.as_str().as_bytes();
                let Some(value) = accounts.get(key)? else {
                    return Ok((true, false));
                };
                let mut account: Account =
                    decode("accounts", &value).map_err(ConflictableTransactionError::Abort)?;
                // Another account under the number (erased and made again), or a password
                // set meanwhile (PASSWORD texted): this one is not to be sent.
                if account.id != pending.account_id || account.password_hash.is_some() {
                    return Ok((true, false));
                }
                account.password_hash = Some((*hash).to_owned());
                accounts.insert(key, encode(&account))?;
                let id = outbox.generate_id()?;
                outbox.insert(&id.to_be_bytes(), sms.as_slice())?;
                Ok::<_, ConflictableTransactionError<StoreError>>((true, true))
            })?;
        if unmarked {
            self.passwords_pending.sub(1);
        }
        if stored {
            self.outbox.depth.add(1);
            self.outbox.wake();
        }
        Ok(stored)
    }
}

#[cfg(test)]
mod tests {
    use super::super::SledStore;
    use crate::core::msisdn::Msisdn;
    use crate::core::outbound::SmsRoute;
    use crate::core::store::{AccountStore, NewAccount, NewLogin, StoreBase as _};

    const NOW: u64 = 1_800_000_000;

    async fn log_in(store: &SledStore, request_id: u64, msisdn: &Msisdn, texted: bool) -> bool {
        let route = SmsRoute {
            smsc: "sim".into(),
            from: "10690000".into(),
        };
        store
            .log_in(NewLogin {
                request_id,
                msisdn,
                new_account: NewAccount {
                    password_to: texted.then_some(route),
                },
                session: format!("session-{request_id}"),
                session_expires_at: NOW + 3_600,
                now: NOW,
            })
            .await
            .unwrap()
            .created
    }

    /// The count of accounts waiting for their password follows the marks: up with each new
    /// account whose password is to be texted, down when one is stored or its mark lifted or
    /// its number erased, and counted again when the store opens.
    #[tokio::test]
    async fn pending_passwords_are_counted_as_their_marks_come_and_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        let numbers: Vec<Msisdn> = (0..4)
            .map(|n| Msisdn::parse(&format!("+861380013800{n}")).unwrap())
            .collect();
        {
            let store = SledStore::open(&path, 16).unwrap();
            let pending = |store: &SledStore| store.depths().passwords_pending;
            assert_eq!(pending(&store), 0);
            for (n, number) in numbers.iter().enumerate() {
                // The last one's password is not to be texted: no mark.
                assert!(log_in(&store, n as u64, number, n < 3).await);
            }
            assert_eq!(pending(&store), 3);
            assert!(!log_in(&store, 9, &numbers[0], true).await, "returning");
            assert_eq!(pending(&store), 3);

            let marks = store.pending_passwords(&|_| false, 10).unwrap();
            let sms = marks[0]
                .to
                .clone()
                .sms(marks[0].msisdn.clone(), "pw".into(), NOW);
            assert!(
                store
                    .store_password(&marks[0], Some(("$argon2id$x", &sms)))
                    .unwrap()
            );
            assert_eq!(pending(&store), 2);
            // Again (a retry): the mark is gone already, nothing counts twice.
            assert!(
                !store
                    .store_password(&marks[0], Some(("$argon2id$x", &sms)))
                    .unwrap()
            );
            assert_eq!(pending(&store), 2);
            // Lifted without a password (an opted-out number).
            store.store_password(&marks[1], None).unwrap();
            assert_eq!(pending(&store), 1);
            store.sync().await.unwrap();
        }
        let store = super::super::tests::reopen(&path);
        assert_eq!(store.depths().passwords_pending, 1);
        store.erase_number(&numbers[2]).await.unwrap();
        assert_eq!(store.depths().passwords_pending, 0);
        assert!(store.pending_passwords(&|_| false, 10).unwrap().is_empty());
    }
}
