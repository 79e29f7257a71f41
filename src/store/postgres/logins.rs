//! Logins on the shared database: read by any node, a session taken exactly once whichever
//! node is polled, and every change announced to every node.
//!
//! Taking a session is one `UPDATE … WHERE state = 'complete' RETURNING`: PostgreSQL locks
//! the row, and a second poll racing on another node re-reads it after the first commits,
//! finds it `consumed` and gets nothing. No read-then-write, no retry loop.

use tokio_postgres::types::ToSql;

use super::listen::LOGIN_CHANNEL;
use super::rows::{LOGIN_COLUMNS, login_columns, login_from_row};
use super::{PgStore, PostgresError};
use crate::core::login::{LoginRecord, LoginState};
use crate::core::token::Challenge;

impl PgStore {
    pub(super) async fn login(
        &self,
        challenge: &Challenge,
    ) -> Result<Option<LoginRecord>, PostgresError> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(&format!(
                "SELECT {LOGIN_COLUMNS} FROM logins WHERE challenge = $1"
            ))
            .await?;
        client
            .query_opt(&statement, &[&challenge.as_bytes().as_slice()])
            .await?
            .as_ref()
            .map(login_from_row)
            .transpose()
    }

    /// Hands a completed login's session out exactly once across all nodes: returns the
    /// record as it was (with its session) to the one caller that turned it `consumed`, None
    /// to everyone else, and None if the record is no longer the `seen` one. Committed on
    /// return.
    pub(super) async fn take_session(
        &self,
        challenge: &Challenge,
        seen: &LoginRecord,
    ) -> Result<Option<LoginRecord>, PostgresError> {
        let LoginState::Complete { session, .. } = &seen.state else {
            return Ok(None);
        };
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(&format!(
                "WITH taken AS (
                     SELECT {LOGIN_COLUMNS} FROM logins WHERE challenge = $1 FOR UPDATE
                 ), consumed AS (
                     UPDATE logins SET state = 'consumed', session = NULL, account_id = NULL,
                         created = NULL
                     WHERE challenge = $1 AND state = 'complete' AND session = $3
                     RETURNING 1
                 )
                 SELECT taken.*, pg_notify('{LOGIN_CHANNEL}', $2)
                 FROM taken, consumed"
            ))
            .await?;
        client
            .query_opt(
                &statement,
                &[
                    &challenge.as_bytes().as_slice(),
                    &challenge.as_str(),
                    session,
                ],
            )
            .await?
            .as_ref()
            .map(login_from_row)
            .transpose()
    }

    /// Records that the login's MO waits for the auth core, unless any state is recorded
    /// already (a decided state is never overwritten). Committed on return.
    pub(super) async fn mark_waiting(
        &self,
        challenge: &Challenge,
        record: &LoginRecord,
    ) -> Result<(), PostgresError> {
        let columns = login_columns(record);
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(&format!(
                "INSERT INTO logins (challenge, {LOGIN_COLUMNS})
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 ON CONFLICT (challenge) DO NOTHING"
            ))
            .await?;
        let challenge = challenge.as_bytes().as_slice();
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&challenge];
        params.extend(columns.params());
        client.execute(&statement, &params).await?;
        Ok(())
    }
}
