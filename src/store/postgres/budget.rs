//! The global SMS budget's counts on PostgreSQL: two rows (`hour`, `day`) every node adds to
//! with one upsert, so the budget is one for the whole cluster, at one statement per SMS.

use futures::FutureExt;

use super::{PgStore, PostgresError};
use crate::core::budget::{SmsCounts, Windows};
use crate::core::error::StoreError;
use crate::core::store::{SmsBudgetStore, StoreFuture};

/// Adds to both rows at once; a row of an earlier window starts again, a later window (a node
/// whose clock is ahead) is kept and added to. Counts never go below 0.
const COUNT: &str = "
    INSERT INTO sms_budget AS b (period, window_no, count)
    VALUES ('hour', $1::bigint, GREATEST($3::bigint, 0)), ('day', $2::bigint, GREATEST($3::bigint, 0))
    ON CONFLICT (period) DO UPDATE SET
        count = CASE WHEN EXCLUDED.window_no > b.window_no THEN EXCLUDED.count
                     ELSE GREATEST(b.count + $3::bigint, 0) END,
        window_no = GREATEST(b.window_no, EXCLUDED.window_no)
    RETURNING period, count";

/// [`COUNT`] adding nothing, without writing: a row of an earlier window reads as 0.
const READ: &str = "
    SELECT period, CASE WHEN window_no < (CASE period WHEN 'hour' THEN $1::bigint ELSE $2::bigint END)
                        THEN 0 ELSE count END AS count
    FROM sms_budget";

fn counts(rows: Vec<tokio_postgres::Row>) -> SmsCounts {
    let mut counts = SmsCounts::default();
    for row in rows {
        let count = u64::try_from(row.get::<_, i64>("count")).unwrap_or(0);
        match row.get::<_, &str>("period") {
            "hour" => counts.hour = count,
            _ => counts.day = count,
        }
    }
    counts
}

impl PgStore {
    /// The upsert decides each row on its own, so an addition that must fit both caps or
    /// neither is made, and given back when it passes one: two statements for a refusal,
    /// where sled writes nothing (checking both rows first would take a transaction and its
    /// round-trips on every SMS).
    async fn count_sms_in(
        &self,
        at: Windows,
        segments: u64,
        caps: SmsCounts,
    ) -> Result<SmsCounts, PostgresError> {
        let client = self.pool.get().await?;
        let (hour, day) = (at.hour as i64, at.day as i64);
        // Asking whether there is room (0 segments) takes no row lock and writes no WAL on
        // the two rows every node's SMS contend for.
        if segments == 0 {
            return Ok(counts(client.query(READ, &[&hour, &day]).await?));
        }
        let segments = i64::try_from(segments).unwrap_or(i64::MAX);
        let after = counts(client.query(COUNT, &[&hour, &day, &segments]).await?);
        if after.over(caps).is_some() {
            client.query(COUNT, &[&hour, &day, &-segments]).await?;
        }
        Ok(after)
    }
}

impl SmsBudgetStore for PgStore {
    fn count_sms(&self, at: Windows, segments: u64, caps: SmsCounts) -> StoreFuture<'_, SmsCounts> {
        self.count_sms_in(at, segments, caps)
            .map(|r| r.map_err(StoreError::from))
            .boxed()
    }
}
