//! New accounts' pending passwords on the shared database (migration 6).
//!
//! A mark is leased to the node whose registrar takes it, as outbox rows are, so two nodes
//! do not hash the same password; a dead node's lease lapses and another finishes its work.
//! Whether a password goes out is not left to the lease: the statement that stores the hash
//! does so only while the mark is there and the account has no password, and removes the
//! mark, so of two nodes racing on one mark only one stores a hash and queues its SMS.

use super::listen::OUTBOX_CHANNEL;
use super::node::adjust;
use super::queues::candidates;
use super::{PgStore, PostgresError};
use crate::core::msisdn::Msisdn;
use crate::core::outbound::{Outbound, SmsRoute};
use crate::core::store::PendingPassword;

impl PgStore {
    /// Leased as outbox rows are ([`PgStore::lease`]): the marks this node has in hand are
    /// among the candidates, skipped, and their leases renewed.
    pub(super) async fn pending_passwords(
        &self,
        skip: &(dyn Fn(&Msisdn) -> bool + Send + Sync),
        limit: usize,
    ) -> Result<Vec<PendingPassword>, PostgresError> {
        let query = candidates("password_pending", "$3", "msisdn, smsc, sender, since");
        let read = |row: &tokio_postgres::Row| -> Result<PendingPassword, PostgresError> {
            let number: String = row.try_get(1)?;
            Ok(PendingPassword {
                msisdn: Msisdn::parse(&number).map_err(|e| PostgresError::Corrupt {
                    table: "password_pending",
                    what: format!("msisdn: {e}"),
                })?,
                account_id: row.try_get::<_, i64>(0)? as u64,
                to: SmsRoute {
                    smsc: row.try_get(2)?,
                    from: row.try_get(3)?,
                },
                since: row.try_get::<_, i64>(4)? as u64,
            })
        };
        let taken = self
            .lease(&query, "password_pending", &true, limit, read, |_, p| {
                !skip(&p.msisdn)
            })
            .await?;
        Ok(taken.into_iter().map(|(_, pending)| pending).collect())
    }

    /// One statement: the mark goes; the hash and the SMS only with a mark that was there
    /// and an account still without a password.
    pub(super) async fn store_password(
        &self,
        pending: &PendingPassword,
        password: Option<(&str, &Outbound)>,
    ) -> Result<bool, PostgresError> {
        // It adjusts the outbox gauge: no depth refresh overlapping it may store its count.
        let _writing = self.signals.writing();
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(&format!(
                "WITH unmarked AS (
                     DELETE FROM password_pending WHERE id = $1 RETURNING id
                 ), hashed AS (
                     UPDATE accounts SET password_hash = $2
                     WHERE id IN (SELECT id FROM unmarked) AND password_hash IS NULL
                       AND $2::text IS NOT NULL
                     RETURNING id
                 ), queued AS (
                     INSERT INTO outbox (smsc, sender, recipient, body, created_at)
                     SELECT $3::text, $4::text, $5::text, $6::text, $7::bigint FROM hashed
                     RETURNING smsc
                 )
                 SELECT count(*), (SELECT count(*) FROM (
                     SELECT pg_notify('{OUTBOX_CHANNEL}', smsc) FROM queued) AS woken)
                 FROM queued"
            ))
            .await?;
        let (hash, sms) = password.unzip();
        let row = client
            .query_one(
                &statement,
                &[
                    &(pending.account_id as i64),
                    &hash,
                    &sms.map(|s| s.smsc.as_str()),
                    &sms.map(|s| s.from.as_str()),
                    &sms.map(|s| s.to.as_str()),
                    &sms.map(|s| s.text.as_str()),
                    &sms.map(|s| s.created_at as i64),
                ],
            )
            .await?;
        let queued: i64 = row.get(0);
        adjust(&self.signals.outbox, queued);
        Ok(queued > 0)
    }
}
