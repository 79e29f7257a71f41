//! The outbox and the webhook queue on the shared database: at-least-once delivery with
//! leases, so a node that dies mid-send leaves its items to the others once the lease lapses.
//!
//! A node claims only the outbox rows of SMSC connections it is bound to (carriers give each
//! node its own binds; a reply goes out the SMSC its MO came in on). Claims are
//! `FOR UPDATE SKIP LOCKED`: nodes claiming at once get different rows. An item leaves the
//! table only when it was accepted (submit_sm_resp OK, a 2xx from the backend); one that
//! failed for now is given back with a later lease, which is its retry time.

use std::time::Duration;

use super::{PgStore, PostgresError};
use crate::core::msisdn::Msisdn;
use crate::core::outbound::{Outbound, QueuedEvent};

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn id(row: &tokio_postgres::Row) -> Result<u64, PostgresError> {
    Ok(row.try_get::<_, i64>(0)? as u64)
}

fn ids(ids: &[u64]) -> Vec<i64> {
    ids.iter().map(|&id| id as i64).collect()
}

impl PgStore {
    /// Claims up to `limit` replies for connection `smsc` for `lease`, oldest first.
    pub async fn claim_outbox(
        &self,
        smsc: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<(u64, Outbound)>, PostgresError> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(
                "UPDATE outbox SET lease_owner = $1,
                     lease_until = now() + $2::bigint * interval '1 millisecond'
                 WHERE id IN (
                     SELECT id FROM outbox
                     WHERE smsc = $3 AND (lease_until IS NULL OR lease_until < now())
                     ORDER BY id LIMIT $4
                     FOR UPDATE SKIP LOCKED)
                 RETURNING id, smsc, sender, recipient, body, created_at",
            )
            .await?;
        let rows = client
            .query(
                &statement,
                &[&self.node, &millis(lease), &smsc, &(limit as i64)],
            )
            .await?;
        let mut claimed = rows
            .iter()
            .map(|row| {
                let recipient: String = row.try_get(3)?;
                let to = Msisdn::parse(&recipient).map_err(|e| PostgresError::Corrupt {
                    table: "outbox",
                    what: format!("recipient: {e}"),
                })?;
                Ok((
                    id(row)?,
                    Outbound {
                        smsc: row.try_get(1)?,
                        from: row.try_get(2)?,
                        to,
                        text: row.try_get(4)?,
                        created_at: row.try_get::<_, i64>(5)? as u64,
                    },
                ))
            })
            .collect::<Result<Vec<_>, PostgresError>>()?;
        claimed.sort_by_key(|(id, _)| *id);
        Ok(claimed)
    }

    /// The SMSC accepted these (or refused them for good): they leave the outbox.
    pub async fn ack_outbox(&self, done: &[u64]) -> Result<(), PostgresError> {
        let client = self.pool.get().await?;
        client
            .execute("DELETE FROM outbox WHERE id = ANY($1)", &[&ids(done)])
            .await?;
        Ok(())
    }

    /// Gives a claimed reply back, to be claimed again (by any node) after `after`.
    pub async fn retry_outbox(&self, id: u64, after: Duration) -> Result<(), PostgresError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE outbox SET lease_owner = NULL,
                     lease_until = now() + $2::bigint * interval '1 millisecond'
                 WHERE id = $1",
                &[&(id as i64), &millis(after)],
            )
            .await?;
        Ok(())
    }

    /// Replies waiting, claimed or not.
    pub async fn outbox_len(&self) -> Result<u64, PostgresError> {
        let client = self.pool.get().await?;
        let n: i64 = client
            .query_one("SELECT count(*) FROM outbox", &[])
            .await?
            .get(0);
        Ok(n as u64)
    }

    /// Claims up to `limit` webhook events for `lease`, oldest first, leaving out those of
    /// the backends in `paused`.
    pub async fn claim_webhooks(
        &self,
        paused: &[String],
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<(u64, QueuedEvent)>, PostgresError> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(
                "UPDATE webhooks SET lease_owner = $1,
                     lease_until = now() + $2::bigint * interval '1 millisecond'
                 WHERE id IN (
                     SELECT id FROM webhooks
                     WHERE backend <> ALL($3) AND (lease_until IS NULL OR lease_until < now())
                     ORDER BY id LIMIT $4
                     FOR UPDATE SKIP LOCKED)
                 RETURNING id, backend, event_id, body",
            )
            .await?;
        let rows = client
            .query(
                &statement,
                &[&self.node, &millis(lease), &paused, &(limit as i64)],
            )
            .await?;
        let mut claimed = rows
            .iter()
            .map(|row| {
                Ok((
                    id(row)?,
                    QueuedEvent {
                        backend: row.try_get(1)?,
                        event_id: row.try_get(2)?,
                        body: row.try_get(3)?,
                    },
                ))
            })
            .collect::<Result<Vec<_>, PostgresError>>()?;
        claimed.sort_by_key(|(id, _)| *id);
        Ok(claimed)
    }

    /// The backend answered 2xx: the event leaves the queue.
    pub async fn ack_webhook(&self, id: u64) -> Result<(), PostgresError> {
        let client = self.pool.get().await?;
        client
            .execute("DELETE FROM webhooks WHERE id = $1", &[&(id as i64)])
            .await?;
        Ok(())
    }

    /// Gives a claimed event back, to be claimed again after `after`.
    pub async fn retry_webhook(&self, id: u64, after: Duration) -> Result<(), PostgresError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE webhooks SET lease_owner = NULL,
                     lease_until = now() + $2::bigint * interval '1 millisecond'
                 WHERE id = $1",
                &[&(id as i64), &millis(after)],
            )
            .await?;
        Ok(())
    }
}
