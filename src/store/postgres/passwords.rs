//! New accounts' pending passwords on the shared database (migration 6).
//!
//! A mark is leased to the node whose registrar takes it, as outbox rows are, so two nodes
//! do not hash the same password; a dead node's lease lapses and another finishes its work.
//! Whether a password goes out is not left to the lease: the statement that stores the hash
//! does so only while the mark is there and the account has no password, and removes the
//! mark, so of two nodes racing on one mark only one stores a hash and queues its SMS.

use super::listen::OUTBOX_CHANNEL;
use super::node::adjust;
use super::{PgStore, PostgresError};
use crate::core::msisdn::Msisdn;
use crate::core::outbound::{Outbound, SmsRoute};
use crate::core::store::PendingPassword;

/// Marks looked at beyond `limit`: room for those this node has in hand, which it skips.
const IN_HAND_ROOM: i64 = 64;

impl PgStore {
    pub(super) async fn pending_passwords(
        &self,
        skip: &(dyn Fn(&Msisdn) -> bool + Send + Sync),
        limit: usize,
    ) -> Result<Vec<PendingPassword>, PostgresError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let candidates = tx
            .prepare_cached(
                "SELECT id, msisdn, smsc, sender, since FROM password_pending
                 WHERE lease_until IS NULL OR lease_until < now() OR lease_owner = $1
                 ORDER BY id LIMIT $2
                 FOR UPDATE SKIP LOCKED",
            )
            .await?;
        let rows = tx
            .query(&candidates, &[&self.node, &(limit as i64 + IN_HAND_ROOM)])
            .await?;
        let mut taken = Vec::new();
        for row in &rows {
            let number: String = row.try_get(1)?;
            let msisdn = Msisdn::parse(&number).map_err(|e| PostgresError::Corrupt {
                table: "password_pending",
                what: format!("msisdn: {e}"),
            })?;
            if taken.len() >= limit || skip(&msisdn) {
                continue;
            }
            taken.push(PendingPassword {
                msisdn,
                account_id: row.try_get::<_, i64>(0)? as u64,
                to: SmsRoute {
                    smsc: row.try_get(2)?,
                    from: row.try_get(3)?,
                },
                since: row.try_get::<_, i64>(4)? as u64,
            });
        }
        let ids: Vec<i64> = taken.iter().map(|p| p.account_id as i64).collect();
        if !ids.is_empty() {
            tx.execute(
                "UPDATE password_pending SET lease_owner = $1,
                     lease_until = now() + $2::bigint * interval '1 millisecond'
                 WHERE id = ANY($3)",
                &[
                    &self.node,
                    &i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX),
                    &ids,
                ],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(taken)
    }

    /// One statement: the mark goes; the hash and the SMS only with a mark that was there
    /// and an account still without a password.
    pub(super) async fn store_password(
        &self,
        pending: &PendingPassword,
        password: Option<(&str, &Outbound)>,
    ) -> Result<bool, PostgresError> {
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
