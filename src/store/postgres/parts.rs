//! Parts of concatenated MOs on the shared database.
//!
//! Filing a part is serialised per message with an advisory lock on the part's group: two
//! nodes filing the last two parts at once would otherwise each see the other's part
//! missing (neither committed yet) and both wait forever for a message that is complete.

use super::node::adjust;
use super::rows::{MO_COLUMNS, MoArrays, mo_from_row};
use super::{PgStore, PostgresError};
use crate::core::mo::MoMessage;
use crate::core::store::{Filed, PartKey};

impl PgStore {
    /// Moves inbox MO `id`, a part, into the parts table; when it was the last one, `join`
    /// makes the whole message from the parts in order, which replaces them in the inbox.
    /// Committed on return.
    pub(super) async fn file_part(
        &self,
        id: u64,
        at: PartKey<'_>,
        part: &MoMessage,
        join: impl Fn(Vec<MoMessage>) -> MoMessage,
    ) -> Result<Filed, PostgresError> {
        let _writing = self.signals.writing();
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(encode($1, 'hex'), 0))",
            &[&at.group],
        )
        .await?;
        let gone = tx
            .execute("DELETE FROM inbox WHERE id = $1", &[&(id as i64)])
            .await?;
        if gone == 0 {
            // Another node filed it first (its lease on it had lapsed).
            return Ok(Filed::Duplicate);
        }
        let mut row = MoArrays::default();
        row.push(part);
        let (seq, total) = (i16::from(at.seq), i16::from(at.total));
        let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
            vec![&at.group, &seq, &total];
        params.extend(row.params());
        let inserted = tx
            .execute(
                &format!(
                    "INSERT INTO parts (grp, seq, total, {MO_COLUMNS})
                     SELECT $1, $2, $3, m.* FROM
                         unnest($4::text[], $5::text[], $6::smallint[], $7::text[],
                             $8::smallint[], $9::smallint[], $10::bytea[], $11::int[],
                             $12::smallint[], $13::smallint[], $14::bigint[]) AS m
                     ON CONFLICT (grp, seq) DO NOTHING"
                ),
                &params,
            )
            .await?;
        if inserted == 0 {
            tx.commit().await?;
            adjust(&self.signals.inbox, -1);
            return Ok(Filed::Duplicate);
        }
        let rows = tx
            .query(
                &format!(
                    "SELECT {MO_COLUMNS} FROM parts WHERE grp = $1 AND seq BETWEEN 1 AND $2
                     ORDER BY seq"
                ),
                &[&at.group, &total],
            )
            .await?;
        if rows.len() < usize::from(at.total) {
            tx.commit().await?;
            adjust(&self.signals.inbox, -1);
            adjust(&self.signals.parts, 1);
            return Ok(Filed::Waiting);
        }
        let all = rows
            .iter()
            .map(|row| mo_from_row("parts", row, 0))
            .collect::<Result<Vec<_>, _>>()?;
        tx.execute("DELETE FROM parts WHERE grp = $1", &[&at.group])
            .await?;
        let mut whole = MoArrays::default();
        whole.push(&join(all));
        let joined: i64 = tx
            .query_one(
                &format!(
                    "INSERT INTO inbox ({MO_COLUMNS})
                     SELECT * FROM unnest($1::text[], $2::text[], $3::smallint[], $4::text[],
                         $5::smallint[], $6::smallint[], $7::bytea[], $8::int[],
                         $9::smallint[], $10::smallint[], $11::bigint[])
                     RETURNING id"
                ),
                &whole.params(),
            )
            .await?
            .get(0);
        tx.commit().await?;
        adjust(&self.signals.parts, 1 - i64::from(at.total));
        Ok(Filed::Complete(joined as u64))
    }
}
