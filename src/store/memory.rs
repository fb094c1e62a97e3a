//! A backend in memory: for tests, short-lived bots and the reference every other backend is
//! measured against by the conformance suite.

mod records;

use std::future::{Future, ready};
use std::sync::{Arc, Mutex, MutexGuard};

use zeroize::Zeroize as _;

use super::backend::{
    Backend, Batch, Committed, Generation, KeyRange, MaybeSend, Record, StoreError,
};

use crate::vec_map::VecMap;
use records::Records;

// Tables by name in a sorted `Vec`: a store has a dozen tables.
type Tables = VecMap<String, Records>;

/// The records and how many commits applied to them (the store's [`Generation`]), under one
/// lock so that a commit and its count are one step.
#[derive(Debug, Clone, Default)]
struct Shared {
    tables: Tables,
    commits: u64,
}

/// Records in memory. Clones are handles to the same records, as two processes would share
/// one database, so the conflict rules can be exercised without a disk.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    shared: Arc<Mutex<Shared>>,
    /// Made by [`MemoryStore::ephemeral`].
    ephemeral: bool,
}

impl MemoryStore {
    /// An empty store. Machines seal its records, as for any backend: the store the
    /// conformance suite and the tests hold up as every backend's reference.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store that says it is ephemeral ([`Backend::is_ephemeral`]): the Matrix
    /// machine keeps its records on it framed but not encrypted. For a process that never persists its
    /// store (a command decrypting a dump with a key export, a test): the records are wiped
    /// when replaced, removed or dropped, as sealed ones are.
    pub fn ephemeral() -> Self {
        Self {
            ephemeral: true,
            ..Self::default()
        }
    }

    /// How many records a table holds (for tests and statistics; nothing on a hot path counts).
    pub fn len(&self, table: &str) -> usize {
        self.lock().tables.get(table).map_or(0, Records::len)
    }

    /// Whether the store holds no record at all.
    pub fn is_empty(&self) -> bool {
        self.lock().tables.values().all(Records::is_empty)
    }

    /// An independent copy of every record, versions included (clones share their records):
    /// a store as this one is now, to run something on without changing this one.
    pub fn fork(&self) -> Self {
        Self {
            shared: Arc::new(Mutex::new(self.lock().clone())),
            ephemeral: self.ephemeral,
        }
    }

    /// Every record, for comparing a store before and after an operation that must not change
    /// it.
    pub fn snapshot(&self) -> Vec<(String, Vec<u8>, Record)> {
        self.lock()
            .tables
            .iter()
            .flat_map(|(table, records)| {
                records
                    .iter()
                    .map(move |(key, record)| (table.clone(), key.clone(), record.clone()))
            })
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A panic while holding the lock cannot leave a half-applied batch (commit checks
        // everything before changing anything), so the data is still consistent.
        self.shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Applies the batch and gives the generations around it.
    fn apply(&self, mut batch: Batch) -> Result<Committed, StoreError> {
        let mut shared = self.lock();
        let before = Generation::new(shared.commits, 0);
        if let Err(error) = batch
            .validate()
            .and_then(|()| check(&shared.tables, &batch))
        {
            // A batch refused is dropped here; the values an accepted one puts become
            // records, wiped when they go.
            for write in &mut batch.writes {
                if let Some(value) = &mut write.value {
                    value.zeroize();
                }
            }
            return Err(error);
        }
        if batch.is_empty() {
            return Ok(Committed {
                before,
                after: before,
            });
        }
        shared.commits += 1;
        let after = Generation::new(shared.commits, 0);
        let tables = &mut shared.tables;
        for write in batch.writes {
            let table = tables.get_or_default(write.table);
            match write.value {
                Some(value) => {
                    let version = write.expect.next_version();
                    table.insert(write.key, Record { version, value });
                }
                None => {
                    table.remove(&write.key);
                }
            }
        }
        Ok(Committed { before, after })
    }
}

/// Whether every write of `batch` finds what it expects.
fn check(tables: &Tables, batch: &Batch) -> Result<(), StoreError> {
    for write in &batch.writes {
        let found = tables
            .get(write.table.as_str())
            .and_then(|t| t.get(&write.key))
            .map(|r| r.version);
        if !write.expect.matches(found) {
            return Err(write.conflict(found));
        }
    }
    Ok(())
}

impl Backend for MemoryStore {
    fn get(
        &self,
        table: &str,
        key: &[u8],
    ) -> impl Future<Output = Result<Option<Record>, StoreError>> + MaybeSend {
        let shared = self.lock();
        ready(Ok(shared
            .tables
            .get(table)
            .and_then(|t| t.get(key))
            .cloned()))
    }

    fn get_many(
        &self,
        table: &str,
        keys: &[Vec<u8>],
    ) -> impl Future<Output = Result<Vec<Option<Record>>, StoreError>> + MaybeSend {
        let shared = self.lock();
        let records = shared.tables.get(table);
        ready(Ok(keys
            .iter()
            .map(|key| records.and_then(|t| t.get(key)).cloned())
            .collect()))
    }

    fn scan(
        &self,
        table: &str,
        range: &KeyRange,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(Vec<u8>, Record)>, StoreError>> + MaybeSend {
        let shared = self.lock();
        let Some(records) = shared.tables.get(table) else {
            return ready(Ok(Vec::new()));
        };
        ready(Ok(records
            .range(
                range.start.as_ref().map(Vec::as_slice),
                range.end.as_ref().map(Vec::as_slice),
            )
            .take(limit)
            .map(|(k, r)| (k.clone(), r.clone()))
            .collect()))
    }

    fn commit(&self, batch: Batch) -> impl Future<Output = Result<(), StoreError>> + MaybeSend {
        ready(self.apply(batch).map(|_| ()))
    }

    /// A count of the commits applied, under the records' lock: every handle (clone) shares it.
    fn generation(&self) -> impl Future<Output = Option<Generation>> + MaybeSend {
        ready(Some(Generation::new(self.lock().commits, 0)))
    }

    fn commit_tracked(
        &self,
        batch: Batch,
    ) -> impl Future<Output = Result<Option<Committed>, StoreError>> + MaybeSend {
        ready(self.apply(batch).map(Some))
    }

    fn is_ephemeral(&self) -> bool {
        self.ephemeral
    }
}
