//! Queue depths kept as counters, so `/metrics` and `/status` never walk a tree (also the
//! accounts waiting for their password, a queue of the registrar's).
//!
//! sled's `Tree::len` visits every entry; on a backlog of a million MOs that is a second of
//! CPU per scrape. Each queue's owner counts its tree once when the store opens (the count
//! survives a restart that way, whatever a crash left behind) and then adjusts the counter
//! after every write that commits, by what the write really did (a removal of a key already
//! gone counts nothing). Concurrent writers adjust it in any order: the pipeline can take
//! and commit an MO between the ingest's transaction and its `add`, so the counter is signed
//! and may dip below zero for that moment (read as zero); it settles to the tree's size
//! whenever no write is in flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

#[derive(Clone)]
pub(super) struct Gauge(Arc<AtomicI64>);

impl Gauge {
    /// Counts `tree` once: the only scan, at open.
    pub fn counted(tree: &sled::Tree) -> Gauge {
        Gauge(Arc::new(AtomicI64::new(tree.len() as i64)))
    }

    pub fn add(&self, n: usize) {
        self.0.fetch_add(n as i64, Ordering::Relaxed);
    }

    /// Never clamped: a removal counted before the insert it undoes must still cancel it.
    pub fn sub(&self, n: usize) {
        self.0.fetch_sub(n as i64, Ordering::Relaxed);
    }

    pub fn get(&self) -> usize {
        usize::try_from(self.0.load(Ordering::Relaxed)).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::super::SledStore;
    use crate::core::mo::MoMessage;
    use crate::core::store::{IngestStore, Outcome, PipelineStore, StoreBase};

    fn mo(n: u64) -> MoMessage {
        super::super::tests::mo_from(&format!("861380013{n:04}"))
    }

    #[tokio::test]
    async fn depths_follow_the_writes_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        {
            let store = SledStore::open(&path, 16).unwrap();
            let mos: Vec<MoMessage> = (0..5).map(mo).collect();
            store.append_mos(&mos, 600).await.unwrap();
            assert_eq!(store.append_mos(&mos[..1], 600).await.unwrap(), 1);
            let taken = store.oldest_mos(2).await.unwrap();
            let outcomes: Vec<Outcome> = taken
                .iter()
                .map(|(id, _)| Outcome::Decided {
                    mo: *id,
                    login: None,
                    session: None,
                    replies: vec![],
                    event: None,
                })
                .collect();
            store.commit_outcomes(&outcomes).await.unwrap();
            // Committed twice (a retry): the MOs left once.
            store.commit_outcomes(&outcomes).await.unwrap();
            assert_eq!(store.depths().inbox, 3);
            store.sync().await.unwrap();
        }
        let store = super::super::tests::reopen(&path);
        assert_eq!(store.depths().inbox, 3);
    }

    /// The pipeline may commit an MO before the ingest that appended it has counted it.
    #[test]
    fn a_removal_counted_before_its_insert_still_cancels_it() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let gauge = super::Gauge::counted(&db.open_tree("t").unwrap());
        gauge.sub(1);
        assert_eq!(gauge.get(), 0);
        gauge.add(1);
        assert_eq!(gauge.get(), 0);
    }
}
