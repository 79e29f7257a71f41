//! Expiry on the shared database: one node at a time sweeps, and each sweep reads only what
//! is due (every swept column is indexed).
//!
//! The sweep takes a transaction-scoped advisory lock with `pg_try_advisory_xact_lock`: the
//! node that gets it sweeps, the others skip this round instead of deleting the same rows in
//! competition (which would only make them wait on each other's row locks). A node that dies
//! mid-sweep drops its connection, which rolls the sweep back and frees the lock.

use super::rows::secs;
use super::{PgStore, PostgresError};
use crate::core::clock::UnixSecs;

/// The advisory lock key of sweeps ("moauth" + 1; see the migration lock).
pub const SWEEP_LOCK: i64 = 0x6d6f_6175_7468 + 1;

/// What is due: everything kept until before `now`, and the cut-offs for records kept for
/// a fixed time after they arrived.
#[derive(Debug, Clone, Copy)]
pub struct Cutoffs {
    pub now: UnixSecs,
    /// Redelivery digests seen before this are forgotten.
    pub seen_before: UnixSecs,
    /// Parts of concatenated MOs received before this are dropped.
    pub parts_before: UnixSecs,
    pub rejected_before: UnixSecs,
    /// Sent-message records submitted before this are forgotten (their receipt is late).
    pub sent_before: UnixSecs,
}

/// How many records a sweep removed, per table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    pub logins: u64,
    pub sessions: u64,
    pub seen: u64,
    pub parts: u64,
    pub rejected: u64,
    pub minted: u64,
    pub sent: u64,
}

impl PgStore {
    /// Removes what is due, unless another node is sweeping right now (then `None`).
    pub async fn sweep(&self, cutoffs: Cutoffs) -> Result<Option<Swept>, PostgresError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let locked: bool = tx
            .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&SWEEP_LOCK])
            .await?
            .get(0);
        if !locked {
            return Ok(None);
        }
        let now = secs(cutoffs.now);
        let mut count = async |sql: &str, before: i64| -> Result<u64, PostgresError> {
            Ok(tx.execute(sql, &[&before]).await?)
        };
        let swept = Swept {
            logins: count("DELETE FROM logins WHERE keep_until < $1", now).await?,
            sessions: count("DELETE FROM sessions WHERE expires_at < $1", now).await?,
            seen: count(
                "DELETE FROM inbox_seen WHERE seen_at < $1",
                secs(cutoffs.seen_before),
            )
            .await?,
            parts: count(
                "DELETE FROM parts WHERE received_at < $1",
                secs(cutoffs.parts_before),
            )
            .await?,
            rejected: count(
                "DELETE FROM rejected WHERE received_at < $1",
                secs(cutoffs.rejected_before),
            )
            .await?,
            minted: count("DELETE FROM minted WHERE keep_until < $1", now).await?,
            sent: count(
                "DELETE FROM sent WHERE submitted_at < $1",
                secs(cutoffs.sent_before),
            )
            .await?,
        };
        tx.commit().await?;
        Ok(Some(swept))
    }
}
