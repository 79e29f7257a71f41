//! The outbox and the webhook queue on the shared database: at-least-once delivery with
//! leases, so a node that dies mid-send leaves its items to the others once the lease lapses.
//!
//! A node asks only for the outbox rows of SMSC connections it is bound to (carriers give
//! each node its own binds; a reply goes out the SMSC its MO came in on). Rows are locked
//! `FOR UPDATE SKIP LOCKED`, so nodes asking at once get different rows and never wait on
//! each other; those handed out get a lease in this node's name. Asking again renews the
//! leases of what this node still has in flight (it is in the candidates, skipped by the
//! caller, and leased anew), so a long retry on a live node does not hand its message to
//! another. An item leaves the table only once accepted (submit_sm_resp OK, a 2xx).

use std::collections::BTreeMap;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use tokio::sync::Notify;

use super::listen::OUTBOX_CHANNEL;
use super::node::adjust;
use super::{PgStore, PostgresError};
use crate::core::msisdn::Msisdn;
use crate::core::outbound::{Outbound, QueuedEvent, SentRecord};
use crate::core::store::QueueId;

/// Candidates looked at beyond `limit`: room for this node's own items in flight, which
/// the caller skips.
const IN_FLIGHT_ROOM: i64 = 512;

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The free rows of `table` (and this node's own), oldest first, locked for this
/// transaction. `filter` is an extra SQL condition on `$3`.
pub(super) fn candidates(table: &str, filter: &str, columns: &str) -> String {
    format!(
        "SELECT id, {columns} FROM {table}
         WHERE {filter} AND (lease_until IS NULL OR lease_until < now() OR lease_owner = $1)
         ORDER BY id LIMIT $2
         FOR UPDATE SKIP LOCKED"
    )
}

/// An outbox row read as (id, smsc, sender, recipient, body, created_at).
fn outbound(row: &tokio_postgres::Row) -> Result<Outbound, PostgresError> {
    let recipient: String = row.try_get(3)?;
    Ok(Outbound {
        smsc: row.try_get(1)?,
        from: row.try_get(2)?,
        to: Msisdn::parse(&recipient).map_err(|e| PostgresError::Corrupt {
            table: "outbox",
            what: format!("recipient: {e}"),
        })?,
        text: row.try_get(4)?,
        created_at: row.try_get::<_, i64>(5)? as u64,
    })
}

impl PgStore {
    /// Locks the candidates `query` finds, keeps those `keep` accepts (up to `limit`),
    /// leases them to this node and returns them.
    pub(super) async fn lease<T>(
        &self,
        query: &str,
        table: &str,
        extra: &(dyn tokio_postgres::types::ToSql + Sync),
        limit: usize,
        read: impl Fn(&tokio_postgres::Row) -> Result<T, PostgresError>,
        keep: impl Fn(QueueId, &T) -> bool,
    ) -> Result<Vec<(QueueId, T)>, PostgresError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let statement = tx.prepare_cached(query).await?;
        let rows = tx
            .query(
                &statement,
                &[&self.node, &(limit as i64 + IN_FLIGHT_ROOM), extra],
            )
            .await?;
        let mut kept = Vec::new();
        for row in &rows {
            let id = row.try_get::<_, i64>(0)? as QueueId;
            let item = read(row)?;
            if kept.len() < limit && keep(id, &item) {
                kept.push((id, item));
            }
        }
        let ids: Vec<i64> = kept.iter().map(|(id, _)| *id as i64).collect();
        if !ids.is_empty() {
            tx.execute(
                &format!(
                    "UPDATE {table} SET lease_owner = $1,
                         lease_until = now() + $2::bigint * interval '1 millisecond'
                     WHERE id = ANY($3)"
                ),
                &[&self.node, &millis(self.lease), &ids],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(kept)
    }

    /// Up to `limit` replies for connection `smsc`, oldest first, not those `skip` picks;
    /// leased to this node.
    pub(super) async fn claim_replies(
        &self,
        smsc: &str,
        skip: &(dyn Fn(QueueId) -> bool + Send + Sync),
        limit: usize,
    ) -> Result<Vec<(QueueId, Outbound)>, PostgresError> {
        let query = candidates(
            "outbox",
            "smsc = $3",
            "smsc, sender, recipient, body, created_at",
        );
        let smsc = smsc.to_owned();
        self.lease(&query, "outbox", &smsc, limit, outbound, |id, _| !skip(id))
            .await
    }

    /// How many replies wait for each SMSC name.
    pub(super) async fn replies_per_smsc(&self) -> Result<BTreeMap<String, u64>, PostgresError> {
        let client = self.pool.get().await?;
        let rows = client
            .query("SELECT smsc, count(*) FROM outbox GROUP BY smsc", &[])
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get::<_, i64>(1)? as u64)))
            .collect()
    }

    /// Gives the replies queued for `from` the SMSC `to` picks for each; how many moved.
    /// Rows leased to a node are moved too: the node sending them acknowledges by id.
    pub(super) async fn reroute(
        &self,
        from: &str,
        to: &(dyn Fn(&Outbound) -> Option<String> + Send + Sync),
    ) -> Result<u64, PostgresError> {
        let _writing = self.signals.writing();
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let rows = tx
            .query(
                "SELECT id, smsc, sender, recipient, body, created_at FROM outbox
                 WHERE smsc = $1 FOR UPDATE",
                &[&from],
            )
            .await?;
        let mut moved = 0;
        for row in &rows {
            if let Some(smsc) = to(&outbound(row)?) {
                let id: i64 = row.try_get(0)?;
                moved += tx
                    .execute(
                        &format!(
                            "WITH moved AS (UPDATE outbox SET smsc = $2 WHERE id = $1 RETURNING 1)
                             SELECT pg_notify('{OUTBOX_CHANNEL}', $2) FROM moved"
                        ),
                        &[&id, &smsc],
                    )
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(moved)
    }

    /// Removes every reply queued for `smsc`; how many.
    pub(super) async fn drop_replies_for(&self, smsc: &str) -> Result<u64, PostgresError> {
        let _writing = self.signals.writing();
        let client = self.pool.get().await?;
        let removed = client
            .execute("DELETE FROM outbox WHERE smsc = $1", &[&smsc])
            .await?;
        adjust(&self.signals.outbox, -(removed as i64));
        self.signals.replies_removed.notify_waiters();
        Ok(removed)
    }

    /// Deletes item `id` from queue `table` and lowers its `gauge` by what went; then
    /// wakes `removed`'s waiters, if given.
    async fn remove_item(
        &self,
        table: &str,
        gauge: &AtomicUsize,
        removed: Option<&Notify>,
        id: QueueId,
    ) -> Result<(), PostgresError> {
        let _writing = self.signals.writing();
        let client = self.pool.get().await?;
        let deleted = client
            .execute(
                &format!("DELETE FROM {table} WHERE id = $1"),
                &[&(id as i64)],
            )
            .await?;
        adjust(gauge, -(deleted as i64));
        if let Some(removed) = removed {
            removed.notify_waiters();
        }
        Ok(())
    }

    /// The SMSC accepted the reply (or refused it for good): it leaves the outbox.
    pub(super) async fn remove_reply(&self, id: QueueId) -> Result<(), PostgresError> {
        let signals = &self.signals;
        self.remove_item(
            "outbox",
            &signals.outbox,
            Some(&signals.replies_removed),
            id,
        )
        .await
    }

    /// Resolves once the outbox is empty (on every node's account, not only this one's).
    pub(super) async fn wait_outbox_empty(&self) {
        loop {
            let removed = self.signals.replies_removed.notified();
            tokio::pin!(removed);
            removed.as_mut().enable();
            let empty = async {
                let client = self.pool.get().await?;
                let row = client
                    .query_one("SELECT NOT EXISTS (SELECT 1 FROM outbox)", &[])
                    .await?;
                Ok::<bool, PostgresError>(row.get(0))
            };
            if let Ok(true) = empty.await {
                return;
            }
            // Another node's sends do not wake this one: look again now and then.
            tokio::select! {
                _ = removed => {}
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    }

    /// Up to `limit` webhook events, oldest first, not those `skip` picks; leased to this
    /// node.
    pub(super) async fn claim_events(
        &self,
        skip: &(dyn Fn(QueueId, &QueuedEvent) -> bool + Send + Sync),
        limit: usize,
    ) -> Result<Vec<(QueueId, QueuedEvent)>, PostgresError> {
        let query = candidates("webhooks", "$3", "backend, event_id, body");
        self.lease(
            &query,
            "webhooks",
            &true,
            limit,
            |row| {
                Ok(QueuedEvent {
                    backend: row.try_get(1)?,
                    event_id: row.try_get(2)?,
                    body: row.try_get(3)?,
                })
            },
            |id, event| !skip(id, event),
        )
        .await
    }

    /// The backend answered 2xx: the event leaves the queue.
    pub(super) async fn remove_event(&self, id: QueueId) -> Result<(), PostgresError> {
        self.remove_item("webhooks", &self.signals.webhooks, None, id)
            .await
    }

    pub(super) async fn sent(
        &self,
        smsc: &str,
        message_id: &str,
    ) -> Result<Option<SentRecord>, PostgresError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT recipient, submitted_at, outcome FROM sent
                 WHERE smsc = $1 AND message_id = $2",
                &[&smsc, &message_id.trim().to_ascii_lowercase()],
            )
            .await?;
        row.map(|row| sent_from_row(&row)).transpose()
    }
}

pub(super) fn sent_from_row(row: &tokio_postgres::Row) -> Result<SentRecord, PostgresError> {
    let recipient: String = row.try_get(0)?;
    Ok(SentRecord {
        to: Msisdn::parse(&recipient).map_err(|e| PostgresError::Corrupt {
            table: "sent",
            what: format!("recipient: {e}"),
        })?,
        submitted_at: row.try_get::<_, i64>(1)? as u64,
        outcome: row.try_get(2)?,
    })
}
