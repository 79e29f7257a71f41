//! Expiry on the shared database: one node at a time sweeps, and each sweep reads only what
//! is due (every swept column is indexed).
//!
//! A sweep takes a transaction-scoped advisory lock with `pg_try_advisory_xact_lock`: the
//! node that gets it sweeps, the others skip this round (and report nothing removed) instead
//! of deleting the same rows in competition, which would only make them wait on each other's
//! row locks. A node that dies mid-sweep drops its connection, which rolls the sweep back
//! and frees the lock.

use super::rows::secs;
use super::{PgStore, PostgresError};
use crate::core::clock::UnixSecs;
use crate::core::store::{SweepDue, Swept};

/// The advisory lock key of sweeps ("moauth" in ASCII, plus one; see the migrations' lock).
pub const SWEEP_LOCK: i64 = 0x6d6f_6175_7468 + 1;

impl PgStore {
    /// Runs `deletes` (statement, cut-off) in one transaction if no other node is sweeping;
    /// returns the rows each removed, or None when another node holds the lock.
    async fn sweep_locked(
        &self,
        deletes: &[(&str, UnixSecs)],
    ) -> Result<Option<Vec<u64>>, PostgresError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let locked: bool = tx
            .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&SWEEP_LOCK])
            .await?
            .get(0);
        if !locked {
            return Ok(None);
        }
        let mut removed = Vec::with_capacity(deletes.len());
        for (sql, before) in deletes {
            removed.push(tx.execute(*sql, &[&secs(*before)]).await?);
        }
        tx.commit().await?;
        Ok(Some(removed))
    }

    /// Logins past their `keep_until`.
    pub(super) async fn sweep_logins_due(&self, now: UnixSecs) -> Result<usize, PostgresError> {
        let removed = self
            .sweep_locked(&[("DELETE FROM logins WHERE keep_until < $1", now)])
            .await?;
        Ok(removed.map_or(0, |r| r[0] as usize))
    }

    /// Sessions past their expiry (by `sessions_by_expiry`).
    pub(super) async fn sweep_sessions_due(&self, now: UnixSecs) -> Result<usize, PostgresError> {
        let removed = self
            .sweep_locked(&[("DELETE FROM sessions WHERE expires_at < $1", now)])
            .await?;
        Ok(removed.map_or(0, |r| r[0] as usize))
    }

    pub(super) async fn sweep_leftovers_due(&self, due: SweepDue) -> Result<Swept, PostgresError> {
        let _writing = self.signals.writing();
        let removed = self
            .sweep_locked(&[
                ("DELETE FROM parts WHERE received_at < $1", due.parts_before),
                ("DELETE FROM inbox_seen WHERE seen_at < $1", due.seen_before),
                (
                    "DELETE FROM rejected WHERE received_at < $1",
                    due.rejected_before,
                ),
                ("DELETE FROM sent WHERE submitted_at < $1", due.sent_before),
            ])
            .await?;
        if let Some(r) = &removed {
            super::node::adjust(&self.signals.parts, -(r[0] as i64));
        }
        Ok(removed.map_or_else(Swept::default, |r| Swept {
            parts: r[0] as usize,
            seen: r[1] as usize,
            rejected: r[2] as usize,
            sent: r[3] as usize,
        }))
    }

    pub(super) async fn sweep_minted_due(&self, now: UnixSecs) -> Result<usize, PostgresError> {
        let removed = self
            .sweep_locked(&[("DELETE FROM minted WHERE keep_until < $1", now)])
            .await?;
        Ok(removed.map_or(0, |r| r[0] as usize))
    }
}
