//! Records a machine knows to be the store's, as of one [`Generation`] of a backend that
//! tracks its generation ([`Backend::generation`]): what its last operations read and
//! committed, opened. While the backend reports that generation again, nothing was committed
//! since, by anyone, so a [`Txn`](super::Txn) given them serves its reads from them (no
//! backend read, no copy of the sealed bytes, no opening) and its writes expect their
//! versions. Any other generation, a failed commit or an error: they are dropped, and the
//! next operation reads everything, as from a backend that tracks nothing.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use zeroize::Zeroizing;

use super::backend::{Backend, Generation};

/// Plaintext bytes the records known may hold; past this, they start again (a machine reads
/// a few dozen records per operation, a few kilobytes each at most).
const KNOWN_BYTES: usize = 1 << 20;

/// One record known: its version and contents (`None` in [`Known`]: known absent).
pub(super) struct KnownRecord {
    pub(super) version: u64,
    pub(super) schema: u16,
    pub(super) plaintext: Zeroizing<Vec<u8>>,
}

/// Records by key (record names: keyed hashes nobody without the storage key chooses, so a
/// randomly seeded folded-multiply hash).
type ByKey = HashMap<Vec<u8>, Option<KnownRecord>, foldhash::fast::RandomState>;

/// The records known at one generation.
pub struct Known {
    generation: Generation,
    /// By table: a handful of tables, a linear search.
    tables: Vec<(String, ByKey)>,
    bytes: usize,
}

impl Known {
    fn new(generation: Generation) -> Self {
        Self {
            generation,
            tables: Vec::new(),
            bytes: 0,
        }
    }

    /// The generation the records are the store's at.
    pub(super) fn generation(&self) -> Generation {
        self.generation
    }

    /// The place of `table` among the tables, for [`Known::get_in`]: valid until the records
    /// change ([`Known::set`]).
    pub(super) fn table(&self, table: &str) -> Option<usize> {
        self.tables.iter().position(|(name, _)| name == table)
    }

    /// The record of (table, key) for the table at `index` ([`Known::table`]): `None` when
    /// not known, `Some(None)` when known absent.
    pub(super) fn get_in(&self, index: usize, key: &[u8]) -> Option<&Option<KnownRecord>> {
        let (_, records) = self.tables.get(index)?;
        // Most reads find nothing only when nothing is known of the table yet.
        if records.is_empty() {
            return None;
        }
        records.get(key)
    }

    /// Replaces the record of (table, key) where it is, when the table at `index`
    /// ([`Known::table`]) knows the key already and the records stay within their bound: no
    /// key copied, no table searched. Otherwise gives `record` back, for [`Known::set`].
    pub(super) fn replace_in(
        &mut self,
        index: usize,
        key: &[u8],
        record: Option<KnownRecord>,
    ) -> Result<(), Option<KnownRecord>> {
        let Some(held) = self
            .tables
            .get_mut(index)
            .and_then(|(_, records)| records.get_mut(key))
        else {
            return Err(record);
        };
        let old_bytes = held.as_ref().map_or(0, |r| r.plaintext.len());
        let new_bytes = record.as_ref().map_or(0, |r| r.plaintext.len());
        let bytes = self.bytes - old_bytes + new_bytes;
        if bytes > KNOWN_BYTES {
            return Err(record);
        }
        *held = record;
        self.bytes = bytes;
        Ok(())
    }

    /// Records (table, key) as it is at `generation` (the one a commit made), replacing what
    /// was known of it.
    pub(super) fn set(&mut self, table: &str, key: Vec<u8>, record: Option<KnownRecord>) {
        let key_bytes = key.len();
        let value_bytes = record.as_ref().map_or(0, |r| r.plaintext.len());
        if self.bytes + key_bytes + value_bytes > KNOWN_BYTES {
            self.tables.clear();
            self.bytes = 0;
        }
        let id = match self.tables.iter().position(|(name, _)| name == table) {
            Some(id) => id,
            None => {
                self.tables.push((table.to_owned(), ByKey::default()));
                self.tables.len() - 1
            }
        };
        match self.tables[id].1.insert(key, record) {
            // The key was counted when first known; the old contents go.
            Some(old) => {
                self.bytes -= old.map_or(0, |r| r.plaintext.len());
                self.bytes += value_bytes;
            }
            None => self.bytes += key_bytes + value_bytes,
        }
    }

    /// Moves the records to the generation a commit made.
    pub(super) fn advance(&mut self, generation: Generation) {
        self.generation = generation;
    }
}

/// Where a machine keeps its [`Known`] records between operations: an operation takes them
/// (an operation running at the same time reads from the backend) and gives them back after
/// its commit.
#[derive(Default)]
pub struct KnownSlot(Mutex<Option<Known>>);

impl KnownSlot {
    /// An empty slot.
    pub fn new() -> Self {
        Self::default()
    }

    /// The records known, if the backend is still at their generation; else none, at the
    /// generation it is at now (`None` altogether from a backend that tracks none).
    pub async fn take_valid<B: Backend>(&self, backend: &B) -> Option<Known> {
        let held = self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
        let now = backend.generation().await?;
        match held {
            Some(known) if known.generation == now => Some(known),
            _ => Some(Known::new(now)),
        }
    }

    /// Keeps `known` for the next operation.
    pub fn put(&self, known: Known) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(known);
    }
}

impl std::fmt::Debug for KnownSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KnownSlot(<records>)")
    }
}
