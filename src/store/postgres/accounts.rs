//! The embedded auth core's accounts, sessions and answers on the shared database.
//!
//! One account per number is the UNIQUE constraint on `accounts.msisdn`: a new number's
//! account is an `INSERT … ON CONFLICT DO NOTHING`, and whoever loses the race (another node
//! deciding the same number's first login) reads the winner's account instead — in a new
//! statement, which under READ COMMITTED sees the winner's commit. Answers are keyed by
//! request id with the same constraint: two nodes logging in for the same MO (a lease that
//! lapsed mid-work) end up holding one answer, the first one stored.

use super::node::adjust;
use super::rows::secs;
use super::{PgStore, PostgresError};
use crate::core::auth::{Account, AuthAnswer, Credentials, NewSession, SessionInfo, SessionKey};
use crate::core::msisdn::Msisdn;
use crate::core::store::NewLogin;

/// The account the insert found (another login's) was erased before it could be read.
#[derive(Debug)]
pub struct AccountVanished;

impl PgStore {
    pub(super) async fn account(&self, msisdn: &Msisdn) -> Result<Option<Account>, PostgresError> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached("SELECT id, password_hash, created_at FROM accounts WHERE msisdn = $1")
            .await?;
        client
            .query_opt(&statement, &[&msisdn.as_str()])
            .await?
            .map(|row| {
                Ok(Account {
                    id: row.try_get::<_, i64>(0)? as u64,
                    password_hash: row.try_get(1)?,
                    created_at: row.try_get::<_, i64>(2)? as u64,
                })
            })
            .transpose()
    }

    pub(super) async fn auth_answer(
        &self,
        request_id: u64,
    ) -> Result<Option<AuthAnswer>, PostgresError> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(
                "SELECT account_id, created, session, login, password FROM auth_answers
                 WHERE request_id = $1",
            )
            .await?;
        let row = client
            .query_opt(&statement, &[&(request_id as i64)])
            .await?;
        row.map(|row| answer_from_row(&row)).transpose()
    }

    /// Logs the number in: its account (created if it has none, without a password and, when it is to be texted, marked in `password_pending`), a
    /// session stored by hash, and the answer under the request id; or the answer already
    /// stored for that request id. Committed on return.
    pub(super) async fn log_in(
        &self,
        new: NewLogin<'_>,
    ) -> Result<Result<AuthAnswer, AccountVanished>, PostgresError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let number = new.msisdn.as_str();
        // The mark only with the account this statement created: the loser of a race
        // marks nothing.
        let insert = tx
            .prepare_cached(
                "WITH created AS (
                     INSERT INTO accounts (msisdn, password_hash, created_at)
                     VALUES ($1, NULL, $2) ON CONFLICT (msisdn) DO NOTHING RETURNING id
                 ), marked AS (
                     INSERT INTO password_pending (id, msisdn, smsc, sender, since)
                     SELECT id, $1, $3, $4, $2 FROM created WHERE $3::text IS NOT NULL
                 )
                 SELECT id FROM created",
            )
            .await?;
        let to = new.new_account.password_to.as_ref();
        let mut account = tx
            .query_opt(
                &insert,
                &[
                    &number,
                    &secs(new.now),
                    &to.map(|t| t.smsc.as_str()),
                    &to.map(|t| t.from.as_str()),
                ],
            )
            .await?
            .map(|row| (row.get::<_, i64>(0), true));
        if account.is_none() {
            let select = tx
                .prepare_cached("SELECT id FROM accounts WHERE msisdn = $1")
                .await?;
            account = tx
                .query_opt(&select, &[&number])
                .await?
                .map(|row| (row.get::<_, i64>(0), false));
        }
        let Some((account_id, created)) = account else {
            return Ok(Err(AccountVanished));
        };
        let session = tx
            .prepare_cached(
                "INSERT INTO sessions (hash, account_id, expires_at, issued_at)
                 VALUES ($1, $2, $3, $4)",
            )
            .await?;
        tx.execute(
            &session,
            &[
                &SessionKey::of(&new.session).0.as_slice(),
                &account_id,
                &secs(new.session_expires_at),
                &secs(new.now),
            ],
        )
        .await?;
        let store = tx
            .prepare_cached(
                "WITH stored AS (
                     INSERT INTO auth_answers
                         (request_id, account_id, created, session, login, password)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (request_id) DO NOTHING
                     RETURNING account_id, created, session, login, password
                 )
                 SELECT * FROM stored
                 UNION ALL
                 SELECT account_id, created, session, login, password FROM auth_answers
                 WHERE request_id = $1 AND NOT EXISTS (SELECT 1 FROM stored)",
            )
            .await?;
        let row = tx
            .query_opt(
                &store,
                &[
                    &(new.request_id as i64),
                    &account_id.to_string(),
                    &created,
                    &new.session,
                    // A new account's credentials follow by themselves, once hashed and
                    // stored (answers of earlier releases may still hold some).
                    &None::<&str>,
                    &None::<&str>,
                ],
            )
            .await?;
        let answer = match row {
            Some(row) => answer_from_row(&row)?,
            // Stored by another node after this statement's snapshot: read it anew.
            None => {
                let again = tx
                    .query_one(
                        "SELECT account_id, created, session, login, password FROM auth_answers
                         WHERE request_id = $1",
                        &[&(new.request_id as i64)],
                    )
                    .await?;
                answer_from_row(&again)?
            }
        };
        tx.commit().await?;
        Ok(Ok(answer))
    }

    /// Forgets the requests' answers: one statement for a round.
    pub(super) async fn settle_answers(&self, request_ids: &[u64]) -> Result<(), PostgresError> {
        let ids: Vec<i64> = request_ids.iter().map(|&id| id as i64).collect();
        let client = self.pool.get().await?;
        client
            .execute(
                "DELETE FROM auth_answers WHERE request_id = ANY($1)",
                &[&ids],
            )
            .await?;
        Ok(())
    }

    pub(super) async fn account_count(&self) -> Result<u64, PostgresError> {
        let client = self.pool.get().await?;
        let n: i64 = client
            .query_one("SELECT count(*) FROM accounts", &[])
            .await?
            .get(0);
        Ok(n as u64)
    }
}

impl PgStore {
    pub(super) async fn session(
        &self,
        key: &SessionKey,
    ) -> Result<Option<SessionInfo>, PostgresError> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(
                "SELECT s.account_id, a.msisdn, s.issued_at, s.expires_at
                 FROM sessions s JOIN accounts a ON a.id = s.account_id WHERE s.hash = $1",
            )
            .await?;
        let Some(row) = client.query_opt(&statement, &[&key.0.as_slice()]).await? else {
            return Ok(None);
        };
        let msisdn: String = row.try_get(1)?;
        Ok(Some(SessionInfo {
            account_id: row.try_get::<_, i64>(0)? as u64,
            msisdn: Msisdn::parse(&msisdn).ok(),
            issued_at: row.try_get::<_, Option<i64>>(2)?.map(|t| t as u64),
            expires_at: row.try_get::<_, i64>(3)? as u64,
        }))
    }

    /// A session for an account that exists (the foreign key refuses one that does not).
    pub(super) async fn add_session(&self, new: NewSession) -> Result<(), PostgresError> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(
                "INSERT INTO sessions (hash, account_id, expires_at, issued_at)
                 VALUES ($1, $2, $3, $4)",
            )
            .await?;
        client
            .execute(
                &statement,
                &[
                    &new.key.0.as_slice(),
                    &(new.account_id as i64),
                    &secs(new.expires_at),
                    &secs(new.issued_at),
                ],
            )
            .await?;
        Ok(())
    }

    pub(super) async fn revoke_session(&self, key: &SessionKey) -> Result<bool, PostgresError> {
        let client = self.pool.get().await?;
        let n = client
            .execute("DELETE FROM sessions WHERE hash = $1", &[&key.0.as_slice()])
            .await?;
        Ok(n > 0)
    }

    pub(super) async fn revoke_sessions(&self, account_id: u64) -> Result<usize, PostgresError> {
        let client = self.pool.get().await?;
        let n = client
            .execute(
                "DELETE FROM sessions WHERE account_id = $1",
                &[&(account_id as i64)],
            )
            .await?;
        Ok(n as usize)
    }

    /// Every row naming `msisdn`, in one transaction: the account (its sessions go by the
    /// foreign key) and its pending password, logins, unsettled answers for the account or
    /// with its credentials, queued and sent SMS, MOs
    /// from it (its digits, or their national tail of six or more, as an SMSC may write them)
    /// and its opt-out.
    pub(super) async fn erase_number(&self, msisdn: &Msisdn) -> Result<usize, PostgresError> {
        // It adjusts the queue gauges: no depth refresh overlapping it may store its counts.
        let _writing = self.signals.writing();
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let number = msisdn.as_str();
        let digits = msisdn.digits();
        let sent_by = "length(ltrim(source_addr, '+')) >= 6
             AND ltrim(source_addr, '+') ~ '^[0-9]+$'
             AND right($1, length(ltrim(source_addr, '+'))) = ltrim(source_addr, '+')";
        let mut erased = 0;
        erased += tx
            .execute(
                "DELETE FROM sessions WHERE account_id IN (SELECT id FROM accounts WHERE msisdn = $1)",
                &[&number],
            )
            .await?;
        for sql in [
            "DELETE FROM password_pending WHERE msisdn = $1",
            "DELETE FROM auth_answers
             WHERE login = $1 OR account_id = (SELECT id::text FROM accounts WHERE msisdn = $1)",
            "DELETE FROM accounts WHERE msisdn = $1",
            "DELETE FROM logins WHERE msisdn = $1",
            "DELETE FROM sent WHERE recipient = $1",
            "DELETE FROM opt_outs WHERE msisdn = $1",
        ] {
            erased += tx.execute(sql, &[&number]).await?;
        }
        let outbox = tx
            .execute("DELETE FROM outbox WHERE recipient = $1", &[&number])
            .await?;
        let mut by_table = Vec::new();
        for table in ["inbox", "parts", "rejected"] {
            let sql = format!("DELETE FROM {table} WHERE {sent_by}");
            by_table.push(tx.execute(&sql, &[&digits]).await?);
        }
        tx.commit().await?;
        // The gauges of this node.
        adjust(&self.signals.outbox, -(outbox as i64));
        adjust(&self.signals.inbox, -(by_table[0] as i64));
        adjust(&self.signals.parts, -(by_table[1] as i64));
        Ok((erased + outbox + by_table.iter().sum::<u64>()) as usize)
    }

    pub(super) async fn set_password(
        &self,
        msisdn: &Msisdn,
        hash: &str,
    ) -> Result<bool, PostgresError> {
        let client = self.pool.get().await?;
        let n = client
            .execute(
                "UPDATE accounts SET password_hash = $2 WHERE msisdn = $1",
                &[&msisdn.as_str(), &hash],
            )
            .await?;
        Ok(n > 0)
    }
}

pub(super) fn answer_from_row(row: &tokio_postgres::Row) -> Result<AuthAnswer, PostgresError> {
    let login: Option<String> = row.try_get(3)?;
    let password: Option<String> = row.try_get(4)?;
    Ok(AuthAnswer {
        account_id: row.try_get(0)?,
        created: row.try_get(1)?,
        session: row.try_get(2)?,
        credentials: login
            .zip(password)
            .map(|(login, password)| Credentials { login, password }),
    })
}
