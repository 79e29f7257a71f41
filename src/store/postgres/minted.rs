//! Minted logins and sent-message records on the shared database.
//!
//! A minted login whose SMS never came expires by the clock alone; every node's dispatcher
//! may find it due at the same moment. Recording the expiry starts by turning `due` off with
//! `UPDATE … WHERE due`, which one node wins: the expiry and its webhook event are recorded
//! once, not once per node.

use tokio_postgres::types::ToSql;

use super::listen::{LOGIN_CHANNEL, WEBHOOK_CHANNEL};
use super::node::adjust;
use super::rows::{LOGIN_COLUMNS, login_columns, secs};
use super::{PgStore, PostgresError};
use crate::core::clock::UnixSecs;
use crate::core::login::{LoginRecord, MintedLogin};
use crate::core::outbound::{QueuedEvent, SentRecord};
use crate::core::token::Challenge;

fn key(message_id: &str) -> String {
    message_id.trim().to_ascii_lowercase()
}

impl PgStore {
    /// Records a new login and its due date. Committed on return.
    pub(super) async fn insert_minted(
        &self,
        challenge: &Challenge,
        login: &MintedLogin,
    ) -> Result<(), PostgresError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "INSERT INTO minted (challenge, backend, issued_at, expires_at, keep_until)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (challenge) DO UPDATE SET backend = EXCLUDED.backend,
                     issued_at = EXCLUDED.issued_at, expires_at = EXCLUDED.expires_at,
                     keep_until = EXCLUDED.keep_until, due = true",
                &[
                    &challenge.as_bytes().as_slice(),
                    &login.backend,
                    &secs(login.issued_at),
                    &secs(login.expires_at),
                    &secs(login.keep_until),
                ],
            )
            .await?;
        Ok(())
    }

    pub(super) async fn minted(
        &self,
        challenge: &Challenge,
    ) -> Result<Option<MintedLogin>, PostgresError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT backend, issued_at, expires_at, keep_until FROM minted
                 WHERE challenge = $1",
                &[&challenge.as_bytes().as_slice()],
            )
            .await?;
        row.map(|row| {
            Ok(MintedLogin {
                backend: row.try_get(0)?,
                issued_at: row.try_get::<_, i64>(1)? as u64,
                expires_at: row.try_get::<_, i64>(2)? as u64,
                keep_until: row.try_get::<_, i64>(3)? as u64,
            })
        })
        .transpose()
    }

    /// Up to `limit` logins whose window closed before `now`, soonest first.
    pub(super) async fn minted_due(
        &self,
        now: UnixSecs,
        limit: usize,
    ) -> Result<Vec<(UnixSecs, Challenge)>, PostgresError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT expires_at, challenge FROM minted WHERE due AND expires_at < $1
                 ORDER BY expires_at LIMIT $2",
                &[&secs(now), &(limit as i64)],
            )
            .await?;
        rows.iter()
            .map(|row| {
                let bytes: Vec<u8> = row.try_get(1)?;
                let challenge =
                    Challenge::from_bytes(&bytes).ok_or_else(|| PostgresError::Corrupt {
                        table: "minted",
                        what: "a challenge that is not one".into(),
                    })?;
                Ok((row.try_get::<_, i64>(0)? as u64, challenge))
            })
            .collect()
    }

    /// The login fell due and needs no event (its backend has no webhook).
    pub(super) async fn settle_due(&self, challenge: &Challenge) -> Result<(), PostgresError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE minted SET due = false WHERE challenge = $1",
                &[&challenge.as_bytes().as_slice()],
            )
            .await?;
        Ok(())
    }

    /// A minted login fell due with no SMS: records it `expired` and queues `event`, unless
    /// an MO recorded a state first or another node recorded the expiry; either way it is no
    /// longer due. Returns whether this call recorded it. Committed on return.
    pub(super) async fn record_expiry(
        &self,
        challenge: &Challenge,
        record: &LoginRecord,
        event: &QueuedEvent,
    ) -> Result<bool, PostgresError> {
        let columns = login_columns(record);
        let _writing = self.signals.writing();
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(&format!(
                "WITH settled AS (
                     UPDATE minted SET due = false WHERE challenge = $1 AND due RETURNING 1
                 ), recorded AS (
                     INSERT INTO logins (challenge, {LOGIN_COLUMNS})
                     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 FROM settled
                     ON CONFLICT (challenge) DO NOTHING
                     RETURNING 1
                 ), queued AS (
                     INSERT INTO webhooks (backend, event_id, body)
                     SELECT $11, $12, $13 FROM recorded
                     ON CONFLICT (event_id) DO NOTHING
                     RETURNING 1
                 )
                 SELECT (SELECT count(*) FROM recorded), (SELECT count(*) FROM queued),
                        (SELECT count(*) FROM (
                            SELECT pg_notify('{LOGIN_CHANNEL}', $14) FROM recorded
                            UNION ALL
                            SELECT pg_notify('{WEBHOOK_CHANNEL}', '') FROM queued) AS woken)"
            ))
            .await?;
        let challenge_bytes = challenge.as_bytes().as_slice();
        let challenge_str = challenge.as_str();
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&challenge_bytes];
        params.extend(columns.params());
        params.push(&event.backend);
        params.push(&event.event_id);
        params.push(&event.body);
        params.push(&challenge_str);
        let row = client.query_one(&statement, &params).await?;
        adjust(&self.signals.webhooks, row.get(1));
        Ok(row.get::<_, i64>(0) == 1)
    }

    /// Remembers what the SMSC accepted under `message_id`, for its delivery receipt.
    pub(super) async fn record_sent(
        &self,
        smsc: &str,
        message_id: &str,
        record: &SentRecord,
    ) -> Result<(), PostgresError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "INSERT INTO sent (smsc, message_id, recipient, submitted_at, outcome)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (smsc, message_id) DO UPDATE SET recipient = EXCLUDED.recipient,
                     submitted_at = EXCLUDED.submitted_at, outcome = EXCLUDED.outcome",
                &[
                    &smsc,
                    &key(message_id),
                    &record.to.as_str(),
                    &secs(record.submitted_at),
                    &record.outcome,
                ],
            )
            .await?;
        Ok(())
    }

    /// Sets the outcome of the first of `ids` that names a sent message; returns that record.
    pub(super) async fn settle_sent(
        &self,
        smsc: &str,
        ids: &[String],
        outcome: &str,
    ) -> Result<Option<SentRecord>, PostgresError> {
        let keys: Vec<String> = ids.iter().map(|id| key(id)).collect();
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "WITH first AS (
                     SELECT message_id FROM sent WHERE smsc = $1 AND message_id = ANY($2)
                     ORDER BY array_position($2, message_id) LIMIT 1
                 )
                 UPDATE sent SET outcome = $3 FROM first
                 WHERE sent.smsc = $1 AND sent.message_id = first.message_id
                 RETURNING recipient, submitted_at, outcome",
                &[&smsc, &keys, &outcome],
            )
            .await?;
        row.map(|row| super::queues::sent_from_row(&row))
            .transpose()
    }
}
