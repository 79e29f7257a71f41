//! The shared inbox: MOs committed before their deliver_sm_resp, redeliveries recognised on
//! any node, and work claimed by one node at a time with a lease.
//!
//! Appending a batch is one statement (one round trip, one commit): the digests go into
//! `inbox_seen`, whose primary key lets exactly one of two nodes receiving the same PDU store
//! it, and only the MOs whose digest was new go into the inbox.
//!
//! Claiming takes the oldest MOs that are free (or this node's already) `FOR UPDATE SKIP
//! LOCKED`, so nodes claiming at once get different rows and never wait on each other, and
//! stamps them with a lease on the database's clock. Asking again hands this node the same
//! MOs (renewing the lease) until their outcome is committed, as on one node. A node that
//! dies holds its claims only until the lease runs out; then any node takes them. An MO whose
//! sender has an earlier MO under another node's live lease is not claimable, so one number's
//! MOs are decided in arrival order by one node at a time (two nodes claiming in the same
//! instant can still split a number's MOs; each MO is still decided once).

use std::collections::HashSet;

use super::listen::INBOX_CHANNEL;
use super::node::adjust;
use super::rows::{MO_COLUMNS, MoArrays, mo_from_row, secs};
use super::{PgStore, PostgresError};
use crate::core::mo::{MoMessage, RejectedMo};

impl PgStore {
    /// Commits a batch, skipping MOs already received within `window` seconds (redeliveries,
    /// on this node or any other); returns how many were redeliveries. Durable on return.
    pub(super) async fn append(
        &self,
        messages: &[(MoMessage, [u8; 16])],
        window: u64,
    ) -> Result<usize, PostgresError> {
        let mut digests = HashSet::new();
        let mut fresh = MoArrays::default();
        let mut fresh_digests = Vec::new();
        for (mo, digest) in messages {
            if digests.insert(*digest) {
                fresh.push(mo);
                fresh_digests.push(digest.to_vec());
            }
        }
        if fresh_digests.is_empty() {
            return Ok(messages.len());
        }
        let window = secs(window);
        let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
            vec![&fresh_digests, &window];
        params.extend(fresh.params());
        let _writing = self.signals.writing();
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(&format!(
                "WITH batch AS (
                     SELECT * FROM unnest($1::bytea[], $3::text[], $4::text[], $5::smallint[],
                         $6::text[], $7::smallint[], $8::smallint[], $9::bytea[], $10::int[],
                         $11::smallint[], $12::smallint[], $13::bigint[])
                     WITH ORDINALITY AS b(digest, {MO_COLUMNS}, ord)
                 ), fresh AS (
                     INSERT INTO inbox_seen (digest, seen_at)
                     SELECT digest, received_at FROM batch
                     ON CONFLICT (digest) DO UPDATE SET seen_at = EXCLUDED.seen_at
                         WHERE inbox_seen.seen_at + $2 < EXCLUDED.seen_at
                     RETURNING digest
                 ), stored AS (
                     INSERT INTO inbox ({MO_COLUMNS})
                     SELECT {MO_COLUMNS} FROM batch
                     WHERE digest IN (SELECT digest FROM fresh) ORDER BY ord
                     RETURNING id
                 ), woken AS (
                     SELECT pg_notify('{INBOX_CHANNEL}', '') FROM (SELECT 1) AS one
                     WHERE EXISTS (SELECT 1 FROM stored)
                 )
                 SELECT (SELECT count(*) FROM stored), (SELECT count(*) FROM woken)"
            ))
            .await?;
        let row = client.query_one(&statement, &params).await?;
        let stored: i64 = row.get(0);
        adjust(&self.signals.inbox, stored);
        Ok(messages.len() - usize::try_from(stored).unwrap_or(0))
    }

    /// Claims up to `limit` MOs for this node, oldest first.
    pub(super) async fn claim_inbox(
        &self,
        limit: usize,
    ) -> Result<Vec<(u64, MoMessage)>, PostgresError> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(&format!(
                "UPDATE inbox SET lease_owner = $1,
                     lease_until = now() + $2::bigint * interval '1 millisecond'
                 WHERE id IN (
                     SELECT id FROM inbox i
                     WHERE (i.lease_until IS NULL OR i.lease_until < now()
                            OR i.lease_owner = $1)
                       AND NOT EXISTS (SELECT 1 FROM inbox e
                                       WHERE e.source_addr = i.source_addr AND e.id < i.id
                                         AND e.lease_owner <> $1 AND e.lease_until >= now())
                     ORDER BY id LIMIT $3
                     FOR UPDATE SKIP LOCKED)
                 RETURNING id, {MO_COLUMNS}"
            ))
            .await?;
        let rows = client
            .query(
                &statement,
                &[
                    &self.node,
                    &i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX),
                    &i64::try_from(limit).unwrap_or(i64::MAX),
                ],
            )
            .await?;
        let mut claimed = rows
            .iter()
            .map(|row| {
                let id: i64 = row.try_get(0)?;
                Ok((id as u64, mo_from_row("inbox", row, 1)?))
            })
            .collect::<Result<Vec<_>, PostgresError>>()?;
        claimed.sort_by_key(|(id, _)| *id);
        Ok(claimed)
    }

    /// When the oldest MO still in the inbox was received.
    pub(super) async fn oldest_received_at(&self) -> Result<Option<u64>, PostgresError> {
        let client = self.pool.get().await?;
        let oldest: Option<i64> = client
            .query_one("SELECT min(received_at) FROM inbox", &[])
            .await?
            .get(0);
        Ok(oldest.map(|t| t as u64))
    }

    pub(super) async fn rejected(&self) -> Result<Vec<RejectedMo>, PostgresError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!("SELECT reason, {MO_COLUMNS} FROM rejected ORDER BY id"),
                &[],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(RejectedMo {
                    reason: row.try_get(0)?,
                    mo: mo_from_row("rejected", row, 1)?,
                })
            })
            .collect()
    }
}
