//! Committing what a batch of MOs led to: one statement, one round trip, one commit.
//!
//! Exactly-once across nodes rests on the inbox row: the statement deletes the batch's MOs
//! from the inbox and writes the outcomes only of those it deleted. Two nodes that both
//! decided an MO (the first one's lease lapsed while it was still working) race on that
//! DELETE; PostgreSQL lets one delete the row, and the other deletes nothing and so records
//! nothing — no second login state, no second reply, no second event. On top of that a login
//! state, once decided, is never overwritten (only `waiting` gives way to a decision), and an
//! event id is queued once.

use super::listen::{LOGIN_CHANNEL, OUTBOX_CHANNEL, WEBHOOK_CHANNEL};
use super::rows::{login_columns, secs};
use super::{PgStore, PostgresError};
use crate::core::login::LoginRecord;
use crate::core::outbound::{Outbound, QueuedEvent};
use crate::core::token::Challenge;

/// What one MO led to.
pub struct PgOutcome<'a> {
    pub mo_id: u64,
    pub login: Option<(Challenge, &'a LoginRecord)>,
    pub replies: &'a [Outbound],
    pub event: Option<&'a QueuedEvent>,
}

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
struct Events {
    mo_id: Vec<i64>,
    backend: Vec<String>,
    event_id: Vec<String>,
    body: Vec<String>,
}

const COMMIT: &str = "
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
    WHERE logins.state = 'waiting'
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
    FROM unnest($19::bigint[], $20::text[], $21::text[], $22::text[]) WITH ORDINALITY
         AS e(mo_id, backend, event_id, body, ord)
    WHERE mo_id IN (SELECT id FROM gone)
    ORDER BY ord
    ON CONFLICT (event_id) DO NOTHING
    RETURNING 1
), woken AS (
    SELECT pg_notify('moauth_login', encode(challenge, 'escape')) FROM decided
    UNION ALL
    SELECT pg_notify('moauth_outbox', smsc) FROM (SELECT DISTINCT smsc FROM queued) AS s
    UNION ALL
    SELECT pg_notify('moauth_webhooks', '') FROM (SELECT 1) AS one
    WHERE EXISTS (SELECT 1 FROM events)
)
SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM woken)";

impl PgStore {
    /// Records what a batch of MOs led to, atomically, for the MOs still in the inbox (those
    /// no other node committed first); returns how many that was. Committed on return.
    pub async fn commit_outcomes(
        &self,
        outcomes: &[PgOutcome<'_>],
    ) -> Result<usize, PostgresError> {
        debug_assert!(COMMIT.contains(LOGIN_CHANNEL));
        debug_assert!(COMMIT.contains(OUTBOX_CHANNEL) && COMMIT.contains(WEBHOOK_CHANNEL));
        let ids: Vec<i64> = outcomes.iter().map(|o| o.mo_id as i64).collect();
        let mut logins = Logins::default();
        let mut replies = Replies::default();
        let mut events = Events::default();
        for outcome in outcomes {
            let mo_id = outcome.mo_id as i64;
            // One row per challenge per statement (PostgreSQL refuses to upsert a row twice
            // in one command): the first decision in the batch is the one that counts.
            if let Some((challenge, record)) = &outcome.login
                && !logins
                    .challenge
                    .iter()
                    .any(|c| c.as_slice() == challenge.as_bytes())
            {
                let c = login_columns(&record.state);
                logins.mo_id.push(mo_id);
                logins.challenge.push(challenge.as_bytes().to_vec());
                logins.state.push(c.state);
                logins.session.push(c.session.map(str::to_owned));
                logins.account_id.push(c.account_id.map(str::to_owned));
                logins.created.push(c.created);
                logins.reason.push(c.reason);
                logins
                    .msisdn
                    .push(record.msisdn.as_ref().map(|m| m.as_str().to_owned()));
                logins.issued_at.push(secs(record.issued_at));
                logins.decided_at.push(secs(record.decided_at));
                logins.keep_until.push(secs(record.keep_until));
            }
            for reply in outcome.replies {
                replies.mo_id.push(mo_id);
                replies.smsc.push(reply.smsc.clone());
                replies.sender.push(reply.from.clone());
                replies.recipient.push(reply.to.as_str().to_owned());
                replies.body.push(reply.text.clone());
                replies.created_at.push(secs(reply.created_at));
            }
            if let Some(event) = outcome.event {
                events.mo_id.push(mo_id);
                events.backend.push(event.backend.clone());
                events.event_id.push(event.event_id.clone());
                events.body.push(event.body.clone());
            }
        }
        let client = self.pool.get().await?;
        let statement = client.prepare_cached(COMMIT).await?;
        let row = client
            .query_one(
                &statement,
                &[
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
                ],
            )
            .await?;
        let gone: i64 = row.get(0);
        Ok(gone as usize)
    }
}
