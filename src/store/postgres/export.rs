//! The PostgreSQL store's side of `moauth store export` / `import` (see
//! [`crate::store::export`]).
//!
//! Export reads every table in one REPEATABLE READ, READ ONLY transaction: one snapshot of the
//! whole database, taken while other nodes keep running, with rows streamed to the file as
//! they arrive. Leases are not exported: they are a node's claim on work, and the importing
//! store's nodes claim afresh.
//!
//! Import is atomic: one transaction that locks every table (so no node writes meanwhile and
//! emptiness stays true), inserts row by row (so a refused row names its line), moves each
//! identity past the imported ids and commits — all of it or nothing. Ids are kept as they
//! were: an account's id is what apps know a person by, an answer names its MO by id.

use std::collections::HashMap;

use futures::future::BoxFuture;
use futures::{FutureExt, TryStreamExt};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row, Statement};

use super::accounts::answer_from_row;
use super::rows::{
    LOGIN_COLUMNS, MO_COLUMNS, MoArrays, byte, login_columns, login_from_row, mo_from_row, secs,
};
use super::{Connection, PostgresError, migrate};
use crate::core::auth::Account;
use crate::core::error::StoreError;
use crate::core::login::MintedLogin;
use crate::core::mo::RejectedMo;
use crate::core::msisdn::Msisdn;
use crate::core::outbound::{Outbound, QueuedEvent, SentRecord};
use crate::core::token::Challenge;
use crate::store::export::{
    ImportTarget, Item, MoveError, challenge_from, from_hex, invalid, part_group, session_hash,
    to_hex,
};

/// Every table that holds records, in export order; what emptiness, `--replace` and the
/// import's lock cover.
const TABLES: &str = "accounts, password_pending, sessions, auth_answers, logins, minted, \
     inbox, inbox_seen, parts, rejected, outbox, sent, webhooks, opt_outs, sms_budget";

fn db(e: impl Into<PostgresError>) -> StoreError {
    e.into().into()
}

/// Column `i` of `row`.
fn get<'a, T: tokio_postgres::types::FromSql<'a>>(row: &'a Row, i: usize) -> Result<T, StoreError> {
    row.try_get(i).map_err(db)
}

fn corrupt(table: &'static str, what: impl Into<String>) -> StoreError {
    PostgresError::Corrupt {
        table,
        what: what.into(),
    }
    .into()
}

fn unsigned(table: &'static str, value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| corrupt(table, format!("{value} is negative")))
}

fn signed(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| invalid(format!("{value} is beyond PostgreSQL's bigint")))
}

fn number(table: &'static str, text: &str) -> Result<Msisdn, StoreError> {
    Msisdn::parse(text).map_err(|e| corrupt(table, format!("msisdn: {e}")))
}

fn challenge_text(table: &'static str, bytes: &[u8]) -> Result<String, StoreError> {
    Challenge::from_bytes(bytes)
        .map(|c| c.as_str().to_owned())
        .ok_or_else(|| corrupt(table, "a challenge that is not one"))
}

/// A client of its own, with the statement timeout lifted for this long job.
async fn connect(connection: &Connection) -> Result<Client, StoreError> {
    let (client, conn) = connection.config()?.connect(NoTls).await.map_err(db)?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::warn!(error = %e, "postgres: the export/import connection ended");
        }
    });
    Ok(client)
}

/// Streams the rows of `sql` into `each`.
async fn rows(
    client: &Client,
    sql: &str,
    mut each: impl FnMut(&Row) -> Result<(), MoveError>,
) -> Result<(), MoveError> {
    let rows = client
        .query_raw(sql, std::iter::empty::<&(dyn ToSql + Sync)>())
        .await
        .map_err(db)?;
    futures::pin_mut!(rows);
    while let Some(row) = rows.try_next().await.map_err(db)? {
        each(&row)?;
    }
    Ok(())
}

/// Every record of the database at `connection`, in the order of [`Item`], into `out`, from
/// one snapshot; safe beside running nodes. The schema is brought up to this build's first,
/// as a node starting would.
pub async fn export(
    connection: &Connection,
    out: &mut (dyn FnMut(&Item) -> Result<(), MoveError> + Send),
) -> Result<(), MoveError> {
    let mut client = connect(connection).await?;
    let migrated = migrate(&mut client).await.map_err(db)?;
    if migrated.ahead {
        return Err(invalid(format!(
            "the schema is at version {}, newer than this moauth knows: export with the moauth \
             that migrated it",
            migrated.version
        ))
        .into());
    }
    client
        .batch_execute(
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET LOCAL statement_timeout = 0",
        )
        .await
        .map_err(db)?;
    let c = &client;
    rows(
        c,
        "SELECT id, msisdn, password_hash, created_at FROM accounts ORDER BY id",
        |r| {
            let t = "accounts";
            out(&Item::Account {
                msisdn: number(t, get(r, 1)?)?,
                account: Account {
                    id: unsigned(t, get(r, 0)?)?,
                    password_hash: get(r, 2)?,
                    created_at: unsigned(t, get(r, 3)?)?,
                },
            })
        },
    )
    .await?;
    rows(
        c,
        "SELECT id, msisdn, smsc, sender, since FROM password_pending ORDER BY id",
        |r| {
            let t = "password_pending";
            out(&Item::PasswordPending {
                account_id: unsigned(t, get(r, 0)?)?,
                msisdn: number(t, get(r, 1)?)?,
                smsc: get(r, 2)?,
                from: get(r, 3)?,
                since: unsigned(t, get(r, 4)?)?,
            })
        },
    )
    .await?;
    rows(
        c,
        "SELECT s.hash, s.account_id, s.expires_at, s.issued_at, a.msisdn
         FROM sessions s JOIN accounts a ON a.id = s.account_id ORDER BY s.hash",
        |r| {
            let t = "sessions";
            let hash: Vec<u8> = get(r, 0)?;
            let issued_at: Option<i64> = get(r, 3)?;
            out(&Item::Session {
                hash: to_hex(&hash),
                account_id: unsigned(t, get(r, 1)?)?,
                expires_at: unsigned(t, get(r, 2)?)?,
                issued_at: issued_at.map(|i| unsigned(t, i)).transpose()?,
                msisdn: Some(number(t, get(r, 4)?)?),
            })
        },
    )
    .await?;
    rows(
        c,
        "SELECT account_id, created, session, login, password, request_id FROM auth_answers
         ORDER BY request_id",
        |r| {
            out(&Item::AuthAnswer {
                request_id: unsigned("auth_answers", get(r, 5)?)?,
                answer: answer_from_row(r).map_err(db)?,
            })
        },
    )
    .await?;
    rows(
        c,
        &format!("SELECT {LOGIN_COLUMNS}, challenge FROM logins ORDER BY challenge"),
        |r| {
            out(&Item::Login {
                challenge: challenge_text("logins", get(r, 9)?)?,
                record: login_from_row(r).map_err(db)?,
            })
        },
    )
    .await?;
    rows(
        c,
        "SELECT challenge, backend, issued_at, expires_at, keep_until, due FROM minted
         ORDER BY challenge",
        |r| {
            let t = "minted";
            out(&Item::Minted {
                challenge: challenge_text(t, get(r, 0)?)?,
                login: MintedLogin {
                    backend: get(r, 1)?,
                    issued_at: unsigned(t, get(r, 2)?)?,
                    expires_at: unsigned(t, get(r, 3)?)?,
                    keep_until: unsigned(t, get(r, 4)?)?,
                },
                due: get(r, 5)?,
            })
        },
    )
    .await?;
    rows(
        c,
        &format!("SELECT {MO_COLUMNS}, id FROM inbox ORDER BY id"),
        |r| {
            out(&Item::Inbox {
                id: unsigned("inbox", get(r, 11)?)?,
                mo: mo_from_row("inbox", r, 0).map_err(db)?,
            })
        },
    )
    .await?;
    rows(
        c,
        "SELECT digest, seen_at FROM inbox_seen ORDER BY digest",
        |r| {
            let digest: Vec<u8> = get(r, 0)?;
            out(&Item::Seen {
                digest: to_hex(&digest),
                seen_at: unsigned("inbox_seen", get(r, 1)?)?,
            })
        },
    )
    .await?;
    rows(
        c,
        &format!("SELECT {MO_COLUMNS}, grp, seq, total FROM parts ORDER BY grp, seq"),
        |r| {
            let group: Vec<u8> = get(r, 11)?;
            out(&Item::Part {
                group: to_hex(&group),
                seq: byte("parts", get(r, 12)?).map_err(db)?,
                total: byte("parts", get(r, 13)?).map_err(db)?,
                mo: mo_from_row("parts", r, 0).map_err(db)?,
            })
        },
    )
    .await?;
    rows(
        c,
        &format!("SELECT {MO_COLUMNS}, id, reason FROM rejected ORDER BY id"),
        |r| {
            out(&Item::Rejected {
                id: unsigned("rejected", get(r, 11)?)?,
                rejected: RejectedMo {
                    mo: mo_from_row("rejected", r, 0).map_err(db)?,
                    reason: get(r, 12)?,
                },
            })
        },
    )
    .await?;
    rows(
        c,
        "SELECT id, smsc, sender, recipient, body, created_at FROM outbox ORDER BY id",
        |r| {
            let t = "outbox";
            out(&Item::Outbox {
                id: unsigned(t, get(r, 0)?)?,
                reply: Outbound {
                    smsc: get(r, 1)?,
                    from: get(r, 2)?,
                    to: number(t, get(r, 3)?)?,
                    text: get(r, 4)?,
                    created_at: unsigned(t, get(r, 5)?)?,
                },
            })
        },
    )
    .await?;
    rows(
        c,
        "SELECT smsc, message_id, recipient, submitted_at, outcome FROM sent
         ORDER BY smsc, message_id",
        |r| {
            let t = "sent";
            out(&Item::Sent {
                smsc: get(r, 0)?,
                message_id: get(r, 1)?,
                record: SentRecord {
                    to: number(t, get(r, 2)?)?,
                    submitted_at: unsigned(t, get(r, 3)?)?,
                    outcome: get(r, 4)?,
                },
            })
        },
    )
    .await?;
    rows(
        c,
        "SELECT id, backend, event_id, body FROM webhooks ORDER BY id",
        |r| {
            out(&Item::Webhook {
                id: unsigned("webhooks", get(r, 0)?)?,
                event: QueuedEvent {
                    backend: get(r, 1)?,
                    event_id: get(r, 2)?,
                    body: get(r, 3)?,
                },
            })
        },
    )
    .await?;
    rows(
        c,
        "SELECT msisdn, since FROM opt_outs ORDER BY msisdn",
        |r| {
            let t = "opt_outs";
            out(&Item::OptOut {
                msisdn: number(t, get(r, 0)?)?,
                since: unsigned(t, get(r, 1)?)?,
            })
        },
    )
    .await?;
    rows(
        c,
        "SELECT period, window_no, count FROM sms_budget ORDER BY period",
        |r| {
            let t = "sms_budget";
            out(&Item::SmsBudget {
                period: get(r, 0)?,
                window: unsigned(t, get(r, 1)?)?,
                count: unsigned(t, get(r, 2)?)?,
            })
        },
    )
    .await?;
    client.batch_execute("COMMIT").await.map_err(db)?;
    Ok(())
}

/// An import into the database: one open transaction until [`ImportTarget::finish`]. Dropped
/// before that, its connection closes and PostgreSQL rolls everything back.
///
/// Records are inserted row by row, so that a refused one names its line, but [`BATCH`] at a
/// time on the one connection: tokio-postgres pipelines them (sends them all, then reads the
/// answers), so the import does not wait a round-trip per record. A refused row aborts the
/// transaction; the rows after it in the batch then fail too, and the first failure in the
/// file's order is the one reported.
pub struct PgImport {
    client: Client,
    /// One prepared INSERT per record kind.
    statements: HashMap<&'static str, Statement>,
    pending: Vec<(u64, Item)>,
}

/// How many records are sent before their answers are read.
const BATCH: usize = 256;

/// `unnest` over the eleven MO columns, bound from parameter `$first` on.
fn mo_unnest(first: usize) -> String {
    let types = [
        "text", "text", "smallint", "text", "smallint", "smallint", "bytea", "int", "smallint",
        "smallint", "bigint",
    ];
    let arrays: Vec<String> = types
        .iter()
        .enumerate()
        .map(|(i, t)| format!("${}::{t}[]", first + i))
        .collect();
    format!("unnest({}) AS m", arrays.join(", "))
}

/// The INSERT of each record kind. Ids are inserted as they were (`OVERRIDING SYSTEM VALUE`).
fn inserts() -> [(&'static str, String); 15] {
    [
        (
            "password_pending",
            "INSERT INTO password_pending (id, msisdn, smsc, sender, since)
             VALUES ($1, $2, $3, $4, $5)"
                .into(),
        ),
        (
            "sms_budget",
            "INSERT INTO sms_budget (period, window_no, count) VALUES ($1, $2, $3)".into(),
        ),
        (
            "account",
            "INSERT INTO accounts (id, msisdn, password_hash, created_at)
             OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4)"
                .into(),
        ),
        (
            "session",
            "INSERT INTO sessions (hash, account_id, expires_at, issued_at)
             VALUES ($1, $2, $3, $4)"
                .into(),
        ),
        (
            "auth_answer",
            "INSERT INTO auth_answers (request_id, account_id, created, session, login, password)
             VALUES ($1, $2, $3, $4, $5, $6)"
                .into(),
        ),
        (
            "login",
            format!(
                "INSERT INTO logins (challenge, {LOGIN_COLUMNS})
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            ),
        ),
        (
            "minted",
            "INSERT INTO minted (challenge, backend, issued_at, expires_at, keep_until, due)
             VALUES ($1, $2, $3, $4, $5, $6)"
                .into(),
        ),
        (
            "inbox",
            format!(
                "INSERT INTO inbox (id, {MO_COLUMNS}) OVERRIDING SYSTEM VALUE
                 SELECT $1, m.* FROM {}",
                mo_unnest(2)
            ),
        ),
        (
            "seen",
            "INSERT INTO inbox_seen (digest, seen_at) VALUES ($1, $2)".into(),
        ),
        (
            "part",
            format!(
                "INSERT INTO parts (grp, seq, total, {MO_COLUMNS}) SELECT $1, $2, $3, m.* FROM {}",
                mo_unnest(4)
            ),
        ),
        (
            "rejected",
            format!(
                "INSERT INTO rejected (id, reason, {MO_COLUMNS}) SELECT $1, $2, m.* FROM {}",
                mo_unnest(3)
            ),
        ),
        (
            "outbox",
            "INSERT INTO outbox (id, smsc, sender, recipient, body, created_at)
             OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4, $5, $6)"
                .into(),
        ),
        (
            "sent",
            "INSERT INTO sent (smsc, message_id, recipient, submitted_at, outcome)
             VALUES ($1, $2, $3, $4, $5)"
                .into(),
        ),
        (
            "webhook",
            "INSERT INTO webhooks (id, backend, event_id, body)
             OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4)"
                .into(),
        ),
        (
            "opt_out",
            "INSERT INTO opt_outs (msisdn, since) VALUES ($1, $2)".into(),
        ),
    ]
}

impl PgImport {
    /// Connects, brings the schema up to date, opens the import's transaction and locks
    /// every table (waiting at most 30 s for nodes still writing: stop them first).
    pub async fn begin(connection: &Connection) -> Result<PgImport, StoreError> {
        let mut client = connect(connection).await?;
        migrate(&mut client).await?;
        client
            .batch_execute(&format!(
                "BEGIN; SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = '30s';
                 LOCK TABLE {TABLES} IN ACCESS EXCLUSIVE MODE"
            ))
            .await
            .map_err(db)?;
        let mut statements = HashMap::new();
        for (kind, sql) in inserts() {
            statements.insert(kind, client.prepare(&sql).await.map_err(db)?);
        }
        Ok(PgImport {
            client,
            statements,
            pending: Vec::with_capacity(BATCH),
        })
    }

    async fn empty(&mut self) -> Result<bool, StoreError> {
        let any: Vec<String> = TABLES
            .split(", ")
            .map(|t| format!("EXISTS (SELECT 1 FROM {t})"))
            .collect();
        let row = self
            .client
            .query_one(&format!("SELECT {}", any.join(" OR ")), &[])
            .await
            .map_err(db)?;
        Ok(!row.get::<_, bool>(0))
    }

    async fn clear(&mut self) -> Result<(), StoreError> {
        self.client
            .batch_execute(&format!("TRUNCATE {TABLES} RESTART IDENTITY"))
            .await
            .map_err(db)
    }

    /// Sends every pending record, then reads every answer; the first refusal in the file's
    /// order, with its line.
    async fn send(&mut self) -> Result<(), MoveError> {
        let pending = std::mem::take(&mut self.pending);
        let this = &*self;
        let answers = futures::future::join_all(pending.iter().map(|(line, item)| async move {
            this.insert(item)
                .await
                .map_err(|source| MoveError::Rejected {
                    line: *line,
                    kind: item.kind(),
                    source,
                })
        }))
        .await;
        answers.into_iter().collect()
    }

    async fn run(&self, item: &Item, params: &[&(dyn ToSql + Sync)]) -> Result<(), StoreError> {
        let statement = &self.statements[item.kind()];
        self.client.execute(statement, params).await.map_err(db)?;
        Ok(())
    }

    async fn mo_row(
        &self,
        item: &Item,
        head: &[&(dyn ToSql + Sync)],
        mo: &crate::core::mo::MoMessage,
    ) -> Result<(), StoreError> {
        let mut row = MoArrays::default();
        row.push(mo);
        let mut params: Vec<&(dyn ToSql + Sync)> = head.to_vec();
        params.extend(row.params());
        self.run(item, &params).await
    }

    async fn insert(&self, item: &Item) -> Result<(), StoreError> {
        match item {
            Item::Account { msisdn, account } => {
                self.run(
                    item,
                    &[
                        &signed(account.id)?,
                        &msisdn.as_str(),
                        &account.password_hash,
                        &secs(account.created_at),
                    ],
                )
                .await
            }
            Item::PasswordPending {
                account_id,
                msisdn,
                smsc,
                from,
                since,
            } => {
                self.run(
                    item,
                    &[
                        &signed(*account_id)?,
                        &msisdn.as_str(),
                        smsc,
                        from,
                        &secs(*since),
                    ],
                )
                .await
            }
            Item::SmsBudget {
                period,
                window,
                count,
            } => {
                self.run(item, &[period, &signed(*window)?, &signed(*count)?])
                    .await
            }
            Item::Session {
                hash,
                account_id,
                expires_at,
                issued_at,
                msisdn: _,
            } => {
                let hash = session_hash(hash)?;
                self.run(
                    item,
                    &[
                        &hash.as_slice(),
                        &signed(*account_id)?,
                        &secs(*expires_at),
                        &issued_at.map(secs),
                    ],
                )
                .await
            }
            Item::AuthAnswer { request_id, answer } => {
                let (login, password) = answer
                    .credentials
                    .as_ref()
                    .map(|c| (c.login.as_str(), c.password.as_str()))
                    .unzip();
                self.run(
                    item,
                    &[
                        &signed(*request_id)?,
                        &answer.account_id,
                        &answer.created,
                        &answer.session,
                        &login,
                        &password,
                    ],
                )
                .await
            }
            Item::Login { challenge, record } => {
                let challenge = challenge_from(challenge)?;
                let key = challenge.as_bytes().as_slice();
                let columns = login_columns(record);
                let mut params: Vec<&(dyn ToSql + Sync)> = vec![&key];
                params.extend(columns.params());
                self.run(item, &params).await
            }
            Item::Minted {
                challenge,
                login,
                due,
            } => {
                let challenge = challenge_from(challenge)?;
                self.run(
                    item,
                    &[
                        &challenge.as_bytes().as_slice(),
                        &login.backend,
                        &secs(login.issued_at),
                        &secs(login.expires_at),
                        &secs(login.keep_until),
                        due,
                    ],
                )
                .await
            }
            Item::Inbox { id, mo } => self.mo_row(item, &[&signed(*id)?], mo).await,
            Item::Seen { digest, seen_at } => {
                self.run(item, &[&from_hex("digest", digest)?, &secs(*seen_at)])
                    .await
            }
            Item::Part {
                group,
                seq,
                total,
                mo,
            } => {
                let group = part_group(group, *total)?;
                let (seq, total) = (i16::from(*seq), i16::from(*total));
                self.mo_row(item, &[&group, &seq, &total], mo).await
            }
            Item::Rejected { id, rejected } => {
                self.mo_row(item, &[&signed(*id)?, &rejected.reason], &rejected.mo)
                    .await
            }
            Item::Outbox { id, reply } => {
                self.run(
                    item,
                    &[
                        &signed(*id)?,
                        &reply.smsc,
                        &reply.from,
                        &reply.to.as_str(),
                        &reply.text,
                        &secs(reply.created_at),
                    ],
                )
                .await
            }
            Item::Sent {
                smsc,
                message_id,
                record,
            } => {
                self.run(
                    item,
                    &[
                        smsc,
                        &message_id.trim().to_ascii_lowercase(),
                        &record.to.as_str(),
                        &secs(record.submitted_at),
                        &record.outcome,
                    ],
                )
                .await
            }
            Item::Webhook { id, event } => {
                self.run(
                    item,
                    &[&signed(*id)?, &event.backend, &event.event_id, &event.body],
                )
                .await
            }
            Item::OptOut { msisdn, since } => {
                self.run(item, &[&msisdn.as_str(), &secs(*since)]).await
            }
            Item::End { .. } => Ok(()),
        }
    }

    async fn put(&mut self, line: u64, item: Item) -> Result<(), MoveError> {
        self.pending.push((line, item));
        if self.pending.len() >= BATCH {
            self.send().await?;
        }
        Ok(())
    }

    /// Sends what is pending, moves each identity past the ids imported (the inbox's also
    /// past every id an answer or a rejected MO names, since those are MO ids too), then
    /// commits.
    async fn finish(mut self) -> Result<(), MoveError> {
        self.send().await?;
        self.client
            .batch_execute(
                "SELECT setval(pg_get_serial_sequence('accounts', 'id'), m)
                     FROM (SELECT max(id) AS m FROM accounts) t WHERE m IS NOT NULL;
                 SELECT setval(pg_get_serial_sequence('inbox', 'id'), m)
                     FROM (SELECT GREATEST((SELECT max(id) FROM inbox),
                                           (SELECT max(id) FROM rejected),
                                           (SELECT max(request_id) FROM auth_answers)) AS m) t
                     WHERE m IS NOT NULL;
                 SELECT setval(pg_get_serial_sequence('outbox', 'id'), m)
                     FROM (SELECT max(id) AS m FROM outbox) t WHERE m IS NOT NULL;
                 SELECT setval(pg_get_serial_sequence('webhooks', 'id'), m)
                     FROM (SELECT max(id) AS m FROM webhooks) t WHERE m IS NOT NULL;
                 COMMIT",
            )
            .await
            .map_err(db)?;
        Ok(())
    }
}

impl ImportTarget for PgImport {
    fn is_empty(&mut self) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.empty().boxed()
    }

    fn clear(&mut self) -> BoxFuture<'_, Result<(), StoreError>> {
        PgImport::clear(self).boxed()
    }

    fn put(&mut self, line: u64, item: Item) -> BoxFuture<'_, Result<(), MoveError>> {
        PgImport::put(self, line, item).boxed()
    }

    fn finish(self) -> BoxFuture<'static, Result<(), MoveError>> {
        PgImport::finish(self).boxed()
    }
}
