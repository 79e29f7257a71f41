//! Expiry-ordered indexes: a sweep reads what is due and nothing else.
//!
//! A tree whose records expire gets a companion tree keyed by expiry (8 bytes, big-endian)
//! ‖ the record's key, with empty values, so `range(..due)` lists exactly the records that
//! may be due, oldest first. The entry is written in the same transaction as the record, or
//! before it where the record is written alone: a crash between leaves an entry pointing at
//! nothing, never a record no sweep finds. A record rewritten with a later expiry leaves its
//! old entry behind; the sweep asks the owner whether the record it points at is still due,
//! and drops the entry either way, so stale entries cost one read each, once.
//!
//! Owners: `logins_due` (logins, by `keep_until`), `parts_due` (parts, by arrival),
//! `inbox_seen_due` (redelivery digests, by arrival), `minted_kept` (minted logins, by
//! `keep_until`), `sent_due` (accepted SMS, by submission). Sessions have their own index
//! in [`super::accounts`]; rejected MOs are keyed by arrival already (see
//! [`super::rejected`]); queues (inbox, outbox, webhooks) are emptied by their consumers.
//! A tree that wants sweeping plugs in the same way: an [`Expiry`], a `note` beside each
//! write, and a `sweep` with the owner's "is it still due" check.

use sled::transaction::{ConflictableTransactionError, TransactionalTree};

use super::record::Record;
use super::{StoreError, decode};
use crate::core::clock::UnixSecs;

/// What one sweep did: `visited` is every index entry it read, for the tests that prove a
/// sweep never reads an entry that is not due.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Sweep {
    pub visited: usize,
    pub removed: usize,
}

#[derive(Clone)]
pub(super) struct Expiry {
    tree: sled::Tree,
}

/// An index key: `at` (8 bytes, big-endian) ‖ `key`.
pub(super) fn entry(at: UnixSecs, key: &[u8]) -> Vec<u8> {
    let mut entry = Vec::with_capacity(8 + key.len());
    entry.extend_from_slice(&at.to_be_bytes());
    entry.extend_from_slice(key);
    entry
}

/// The tree that marks each index whose fill is under way: index tree name → nothing.
pub(super) const FILLING: &str = "indexes_filling";

/// Fills `index` with keys `at_of(key, value)` (8 bytes, big-endian) ‖ `key` from every
/// record of `main`: a store written before the index existed has records and no entries.
/// Also serves indexes by another leading number than expiry (sessions by account).
///
/// An empty index beside records is filled; a non-empty one is complete (written beside
/// its records since), unless it carries the mark in [`FILLING`]. The mark is durable
/// before the first entry and removed only once the last is, so a fill that died half-way
/// (non-empty, yet incomplete) runs again at the next open, and a store whose indexes are
/// whole is never read through at start.
pub(super) fn fill(
    db: &sled::Db,
    index: &sled::Tree,
    main: &sled::Tree,
    at_of: impl Fn(&[u8], &[u8]) -> Result<u64, StoreError>,
) -> Result<(), StoreError> {
    let filling = db.open_tree(FILLING)?;
    let cut_short = filling.contains_key(index.name())?;
    if !cut_short && (!index.is_empty() || main.is_empty()) {
        return Ok(());
    }
    filling.insert(index.name(), &[])?;
    db.flush()?;
    for record in main.iter() {
        let (key, value) = record?;
        index.insert(entry(at_of(&key, &value)?, &key), &[])?;
    }
    db.flush()?;
    filling.remove(index.name())?;
    Ok(())
}

impl Expiry {
    /// Opens the index of `main`. A store written before the index existed has records and
    /// no entries: they are indexed here once, by `expiry_of(key, value)` (see [`fill`]).
    pub fn open(
        db: &sled::Db,
        name: &str,
        main: &sled::Tree,
        expiry_of: impl Fn(&[u8], &[u8]) -> Result<UnixSecs, StoreError>,
    ) -> Result<Expiry, StoreError> {
        let tree = db.open_tree(name)?;
        fill(db, &tree, main, expiry_of)?;
        Ok(Expiry { tree })
    }

    /// The index tree, to take part in a transaction with its records.
    pub fn tree(&self) -> &sled::Tree {
        &self.tree
    }

    /// Indexes `key` as due at `at`, outside a transaction: call it before writing the record.
    pub fn note(&self, at: UnixSecs, key: &[u8]) -> Result<(), StoreError> {
        self.tree.insert(entry(at, key), &[])?;
        Ok(())
    }

    /// Indexes `key` as due at `at` inside a transaction over [`Expiry::tree`].
    pub fn note_in(
        index: &TransactionalTree,
        at: UnixSecs,
        key: &[u8],
    ) -> Result<(), ConflictableTransactionError<StoreError>> {
        index.insert(entry(at, key), &[])?;
        Ok(())
    }

    /// Visits the entries due before `before`, oldest first, and only those. For each,
    /// `remove(key)` removes the record if it is still due and says whether it did; the
    /// entry goes either way.
    pub fn sweep(
        &self,
        before: UnixSecs,
        mut remove: impl FnMut(&[u8]) -> Result<bool, StoreError>,
    ) -> Result<Sweep, StoreError> {
        let mut sweep = Sweep::default();
        for indexed in self.tree.range(..before.to_be_bytes()) {
            let (entry, _) = indexed?;
            sweep.visited += 1;
            if let Some(key) = entry.get(8..)
                && remove(key)?
            {
                sweep.removed += 1;
            }
            self.tree.remove(entry)?;
        }
        Ok(sweep)
    }

    /// [`Expiry::sweep`] for a `main` tree of `T` records (named `name`) whose time is
    /// `at(record)`: removes each record still due before `before`.
    pub fn sweep_records<T: Record>(
        &self,
        main: &sled::Tree,
        name: &'static str,
        before: UnixSecs,
        at: impl Fn(&T) -> UnixSecs,
    ) -> Result<Sweep, StoreError> {
        self.sweep(before, |key| {
            let Some(value) = main.get(key)? else {
                return Ok(false);
            };
            let due = at(&decode::<T>(name, &value)?) < before;
            if due {
                main.remove(key)?;
            }
            Ok(due)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> sled::Db {
        sled::Config::new().temporary(true).open().unwrap()
    }

    /// A record's value is its expiry, as 8 big-endian bytes.
    fn expiry_of(_key: &[u8], value: &[u8]) -> Result<UnixSecs, StoreError> {
        Ok(u64::from_be_bytes(value.try_into().unwrap()))
    }

    fn put(main: &sled::Tree, index: &Expiry, key: &str, at: UnixSecs) {
        index.note(at, key.as_bytes()).unwrap();
        main.insert(key, &at.to_be_bytes()).unwrap();
    }

    fn sweep(main: &sled::Tree, index: &Expiry, now: UnixSecs) -> Sweep {
        index
            .sweep(now, |key| {
                let due = main
                    .get(key)?
                    .is_some_and(|v| expiry_of(key, &v).unwrap() < now);
                if due {
                    main.remove(key)?;
                }
                Ok(due)
            })
            .unwrap()
    }

    #[test]
    fn a_sweep_removes_what_is_due_and_reads_nothing_that_is_not() {
        let db = db();
        let main = db.open_tree("main").unwrap();
        let index = Expiry::open(&db, "main_due", &main, expiry_of).unwrap();
        for i in 0..1_000 {
            put(&main, &index, &format!("later{i}"), 2_000 + i);
        }
        for i in 0..10 {
            put(&main, &index, &format!("due{i}"), 1_000 + i);
        }
        assert_eq!(
            sweep(&main, &index, 1_500),
            Sweep {
                visited: 10,
                removed: 10
            }
        );
        assert_eq!(main.len(), 1_000);
        assert!(main.get("due3").unwrap().is_none());
        assert_eq!(sweep(&main, &index, 1_500), Sweep::default());
        // Everything falls due in the end, and nothing is missed.
        assert_eq!(sweep(&main, &index, 10_000).removed, 1_000);
        assert!(main.is_empty());
    }

    #[test]
    fn a_record_rewritten_with_a_later_expiry_stays_until_then() {
        let db = db();
        let main = db.open_tree("main").unwrap();
        let index = Expiry::open(&db, "main_due", &main, expiry_of).unwrap();
        put(&main, &index, "k", 1_000);
        put(&main, &index, "k", 3_000);
        assert_eq!(
            sweep(&main, &index, 2_000),
            Sweep {
                visited: 1,
                removed: 0
            }
        );
        assert!(main.get("k").unwrap().is_some());
        assert_eq!(sweep(&main, &index, 4_000).removed, 1);
    }

    /// A fill that died half-way left some entries and no mark: the next open indexes the
    /// rest, so every record is swept in the end.
    #[test]
    fn a_fill_cut_short_is_completed_at_the_next_open() {
        let db = db();
        let main = db.open_tree("main").unwrap();
        let cut_short = db.open_tree("main_due").unwrap();
        let filling = db.open_tree(FILLING).unwrap();
        filling.insert("main_due", &[]).unwrap();
        for i in 0..10u64 {
            let key = format!("k{i}");
            main.insert(&key, &(1_000 + i).to_be_bytes()).unwrap();
            if i < 4 {
                cut_short
                    .insert(entry(1_000 + i, key.as_bytes()), &[])
                    .unwrap();
            }
        }
        let index = Expiry::open(&db, "main_due", &main, expiry_of).unwrap();
        assert!(filling.is_empty(), "the mark goes once the fill is whole");
        assert_eq!(sweep(&main, &index, 2_000).removed, 10);
        assert!(main.is_empty());
    }

    /// Once a fill is complete (or the index was written beside its records all along),
    /// later opens do not read the records again.
    #[test]
    fn a_completed_fill_is_not_read_again() {
        let db = db();
        let main = db.open_tree("main").unwrap();
        for i in 0..10u64 {
            main.insert(format!("k{i}"), &(1_000 + i).to_be_bytes())
                .unwrap();
        }
        let read = std::cell::Cell::new(0);
        let counted = |key: &[u8], value: &[u8]| {
            read.set(read.get() + 1);
            expiry_of(key, value)
        };
        Expiry::open(&db, "main_due", &main, counted).unwrap();
        assert_eq!(read.get(), 10);
        let index = Expiry::open(&db, "main_due", &main, counted).unwrap();
        assert_eq!(read.get(), 10, "the second open read records again");
        assert_eq!(sweep(&main, &index, 2_000).removed, 10);
    }

    #[test]
    fn records_from_before_the_index_are_indexed_at_open() {
        let db = db();
        let main = db.open_tree("main").unwrap();
        main.insert("old", &1_000u64.to_be_bytes()).unwrap();
        main.insert("young", &5_000u64.to_be_bytes()).unwrap();
        let index = Expiry::open(&db, "main_due", &main, expiry_of).unwrap();
        assert_eq!(sweep(&main, &index, 2_000).removed, 1);
        assert!(main.get("young").unwrap().is_some());
    }
}
