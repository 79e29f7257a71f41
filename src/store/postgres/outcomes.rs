//! Committing what a batch of MOs led to: one statement, one round trip, one commit.
//!
//! Exactly-once across nodes rests on the inbox row: the statement deletes the batch's MOs
//! from the inbox and writes the outcomes only of those it deleted. Two nodes that both
//! decided an MO (the first one's lease lapsed while it was still working) race on that
//! DELETE; PostgreSQL lets one delete the row, and the other deletes nothing and so records
//! nothing — no second login state, no second reply, no second event. On top of that a login
//! state, once terminal, is never overwritten (`LoginState::may_become`: only `waiting`,
//! `rejected/bad_token` and an uncollected `complete` claimed by a second number give way),
//! and an event id is queued once.

use std::collections::HashSet;
use std::sync::LazyLock;

use tokio_postgres::types::ToSql;

use super::listen::{LOGIN_CHANNEL, OUTBOX_CHANNEL, WEBHOOK_CHANNEL};
use super::node::adjust;
use super::rows::{MO_COLUMNS, MoArrays, login_columns, secs};
use super::{PgStore, PostgresError};
use crate::core::store::Outcome;

#[derive(Default)]
struct Logins {
    mo_id: Vec<i64>,
    challenge: Vec<Vec<u8>>,
    state: Vec<&'static str>,
    session: Vec<Option<String>>,
    account_id: Vec<Option<String>>,
    created: Vec<Option<bool>>,
    reason: Vec<Option<&'static str>>,
    msisdn: Vec<Option<String>>,
    issued_at: Vec<i64>,
    decided_at: Vec<i64>,
    keep_until: Vec<i64>,
}

/// Sessions left to this commit by the embedded auth core, stored only with their login.
#[derive(Default)]
struct Sessions {
    challenge: Vec<Vec<u8>>,
    hash: Vec<Vec<u8>>,
    account_id: Vec<i64>,
    expires_at: Vec<i64>,
    issued_at: Vec<i64>,
}

#[derive(Default)]
struct Replies {
    mo_id: Vec<i64>,
    smsc: Vec<String>,
    sender: Vec<String>,
    recipient: Vec<String>,
    body: Vec<String>,
    created_at: Vec<i64>,
}

#[derive(Default)]
struct SetAside {
    mo_id: Vec<i64>,
    reason: Vec<String>,
    mos: MoArrays,
}

#[derive(Default)]
struct Events {
    mo_id: Vec<i64>,
    backend: Vec<String>,
    event_id: Vec<String>,
    body: Vec<String>,
    /// The challenge of the login state the event reports.
    challenge: Vec<Option<Vec<u8>>>,
}

fn commit_statement() -> String {
    format!(
        "
WITH gone AS (
    DELETE FROM inbox WHERE id = ANY($1) RETURNING id
), decided AS (
    INSERT INTO logins (challenge, state, session, account_id, created, reason, msisdn,
                        issued_at, decided_at, keep_until)
    SELECT challenge, state, session, account_id, created, reason, msisdn,
           issued_at, decided_at, keep_until
    FROM unnest($2::bigint[], $3::bytea[], $4::text[], $5::text[], $6::text[], $7::bool[],
                $8::text[], $9::text[], $10::bigint[], $11::bigint[], $12::bigint[])
         AS b(mo_id, challenge, state, session, account_id, created, reason, msisdn,
              issued_at, decided_at, keep_until)
    WHERE mo_id IN (SELECT id FROM gone)
    ON CONFLICT (challenge) DO UPDATE SET
        state = EXCLUDED.state, session = EXCLUDED.session, account_id = EXCLUDED.account_id,
        created = EXCLUDED.created, reason = EXCLUDED.reason, msisdn = EXCLUDED.msisdn,
        issued_at = EXCLUDED.issued_at, decided_at = EXCLUDED.decided_at,
        keep_until = EXCLUDED.keep_until
    -- LoginState::may_become: a terminal state stays terminal.
    WHERE logins.state = 'waiting'
       OR (logins.state = 'rejected' AND logins.reason = 'bad_token')
       OR (logins.state = 'complete' AND EXCLUDED.state = 'rejected'
           AND EXCLUDED.reason = 'replayed')
    RETURNING challenge
), queued AS (
    INSERT INTO outbox (smsc, sender, recipient, body, created_at)
    SELECT smsc, sender, recipient, body, created_at
    FROM unnest($13::bigint[], $14::text[], $15::text[], $16::text[], $17::text[],
                $18::bigint[]) WITH ORDINALITY
         AS r(mo_id, smsc, sender, recipient, body, created_at, ord)
    WHERE mo_id IN (SELECT id FROM gone)
    ORDER BY ord
    RETURNING smsc
), events AS (
    INSERT INTO webhooks (backend, event_id, body)
    SELECT backend, event_id, body
    FROM unnest($19::bigint[], $20::text[], $21::text[], $22::text[], $41::bytea[])
         WITH ORDINALITY AS e(mo_id, backend, event_id, body, challenge, ord)
    WHERE mo_id IN (SELECT id FROM gone)
      -- The event reports its login state: none for a state not recorded.
      AND (challenge IS NULL OR challenge IN (SELECT challenge FROM decided))
    ORDER BY ord
    ON CONFLICT (event_id) DO NOTHING
    RETURNING 1
), set_aside AS (
    INSERT INTO rejected (id, reason, {MO_COLUMNS})
    SELECT mo_id, reason, {MO_COLUMNS}
    FROM unnest($23::bigint[], $24::text[], $25::text[], $26::text[], $27::smallint[],
                $28::text[], $29::smallint[], $30::smallint[], $31::bytea[], $32::int[],
                $33::smallint[], $34::smallint[], $35::bigint[])
         AS x(mo_id, reason, {MO_COLUMNS})
    WHERE mo_id IN (SELECT id FROM gone)
    ON CONFLICT (id) DO NOTHING
), sessions_stored AS (
    INSERT INTO sessions (hash, account_id, expires_at, issued_at)
    SELECT hash, account_id, expires_at, issued_at
    FROM unnest($36::bytea[], $37::bytea[], $38::bigint[], $39::bigint[], $40::bigint[])
         AS s(challenge, hash, account_id, expires_at, issued_at)
    WHERE challenge IN (SELECT challenge FROM decided)
), woken AS (
    SELECT pg_notify('moauth_login', encode(challenge, 'escape')) FROM decided
    UNION ALL
    SELECT pg_notify('moauth_outbox', smsc) FROM (SELECT DISTINCT smsc FROM queued) AS s
    UNION ALL
    SELECT pg_notify('moauth_webhooks', '') FROM (SELECT 1) AS one
    WHERE EXISTS (SELECT 1 FROM events)
)
SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM woken),\n       (SELECT count(*) FROM queued), (SELECT count(*) FROM events)"
    )
}

static COMMIT: LazyLock<String> = LazyLock::new(commit_statement);

impl PgStore {
    /// Records what a batch of MOs led to, atomically, for the MOs still in the inbox (those
    /// no other node committed first); returns how many that was. Committed on return.
    pub(super) async fn commit_outcomes(
        &self,
        outcomes: &[Outcome],
    ) -> Result<usize, PostgresError> {
        debug_assert!(COMMIT.contains(LOGIN_CHANNEL));
        debug_assert!(COMMIT.contains(OUTBOX_CHANNEL) && COMMIT.contains(WEBHOOK_CHANNEL));
        let mut ids = Vec::with_capacity(outcomes.len());
        let mut logins = Logins::default();
        let mut replies = Replies::default();
        let mut events = Events::default();
        let mut aside = SetAside::default();
        let mut sessions = Sessions::default();
        let mut challenges = HashSet::new();
        for outcome in outcomes {
            let (mo, login, session, queued, event) = match outcome {
                Outcome::Decided {
                    mo,
                    login,
                    session,
                    replies,
                    event,
                } => (
                    *mo,
                    login.as_ref(),
                    session.as_ref(),
                    replies.as_slice(),
                    event.as_ref(),
                ),
                Outcome::Rejected { mo, rejected } => {
                    ids.push(*mo as i64);
                    aside.mo_id.push(*mo as i64);
                    aside.reason.push(rejected.reason.clone());
                    aside.mos.push(&rejected.mo);
                    continue;
                }
            };
            let mo_id = mo as i64;
            ids.push(mo_id);
            // One row per challenge per statement (PostgreSQL refuses to upsert a row twice
            // in one command). The pipeline sends one login per challenge per batch (its
            // `Batch::push`); should another caller send two, the first one counts, and the
            // second one's session and event are not stored either.
            let second = login.is_some_and(|(challenge, _)| !challenges.insert(*challenge));
            if let Some((challenge, record)) = login.filter(|_| !second) {
                let c = login_columns(record);
                logins.mo_id.push(mo_id);
                logins.challenge.push(challenge.as_bytes().to_vec());
                logins.state.push(c.state);
                logins.session.push(c.session.map(str::to_owned));
                logins.account_id.push(c.account_id.map(str::to_owned));
                logins.created.push(c.created);
                logins.reason.push(c.reason);
                logins.msisdn.push(c.msisdn.map(str::to_owned));
                logins.issued_at.push(c.issued_at);
                logins.decided_at.push(c.decided_at);
                logins.keep_until.push(c.keep_until);
                if let Some(new) = session {
                    sessions.challenge.push(challenge.as_bytes().to_vec());
                    sessions.hash.push(new.key.0.to_vec());
                    sessions.account_id.push(new.account_id as i64);
                    sessions.expires_at.push(secs(new.expires_at));
                    sessions.issued_at.push(secs(new.issued_at));
                }
            }
            for reply in queued {
                replies.mo_id.push(mo_id);
                replies.smsc.push(reply.smsc.clone());
                replies.sender.push(reply.from.clone());
                replies.recipient.push(reply.to.as_str().to_owned());
                replies.body.push(reply.text.clone());
                replies.created_at.push(secs(reply.created_at));
            }
            if let Some(event) = event.filter(|_| !second) {
                events.mo_id.push(mo_id);
                events.backend.push(event.backend.clone());
                events.event_id.push(event.event_id.clone());
                events.body.push(event.body.clone());
                events
                    .challenge
                    .push(login.map(|(c, _)| c.as_bytes().to_vec()));
            }
        }
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![
            &ids,
            &logins.mo_id,
            &logins.challenge,
            &logins.state,
            &logins.session,
            &logins.account_id,
            &logins.created,
            &logins.reason,
            &logins.msisdn,
            &logins.issued_at,
            &logins.decided_at,
            &logins.keep_until,
            &replies.mo_id,
            &replies.smsc,
            &replies.sender,
            &replies.recipient,
            &replies.body,
            &replies.created_at,
            &events.mo_id,
            &events.backend,
            &events.event_id,
            &events.body,
            &aside.mo_id,
            &aside.reason,
        ];
        params.extend(aside.mos.params());
        params.extend([
            &sessions.challenge as &(dyn ToSql + Sync),
            &sessions.hash,
            &sessions.account_id,
            &sessions.expires_at,
            &sessions.issued_at,
            &events.challenge,
        ]);
        let _writing = self.signals.writing();
        let client = self.pool.get().await?;
        let statement = client.prepare_cached(&COMMIT).await?;
        let row = client.query_one(&statement, &params).await?;
        let gone: i64 = row.get(0);
        adjust(&self.signals.inbox, -gone);
        adjust(&self.signals.outbox, row.get(2));
        adjust(&self.signals.webhooks, row.get(3));
        Ok(gone as usize)
    }
}
