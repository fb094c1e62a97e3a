//! Stores for the machines: in memory, SQLite at a path the app chooses, or one the app writes
//! in its own language ([`StoreBackend`]), all behind the core's `store::Backend` contract and
//! checked by the same conformance suite.

use std::ops::Bound;
use std::sync::Arc;

use olmo::store::{
    Backend, Batch, Conflict, Expect, KeyRange, MemoryStore, Record, StoreError, block_on,
    conformance,
};
use olmo_sqlite::SqliteStore;

use crate::error::OlmoError;

/// A stored record: the sealed bytes the core wrote (never readable without the storage key)
/// and their version.
#[derive(Debug, Clone, uniffi::Record)]
pub struct StoreRecord {
    /// The record's version: 1 for the first put, one more for each later put.
    pub version: u64,
    /// The sealed bytes.
    pub value: Vec<u8>,
}

/// A record with its key, as a scan returns it.
#[derive(Debug, Clone, uniffi::Record)]
pub struct StoreEntry {
    /// The record key.
    pub key: Vec<u8>,
    /// The record.
    pub record: StoreRecord,
}

/// One end of a scan's key range.
#[derive(Debug, Clone, uniffi::Enum)]
pub enum KeyBound {
    /// From or up to this key, including it.
    Included {
        /// The key.
        key: Vec<u8>,
    },
    /// From or up to this key, leaving it out.
    Excluded {
        /// The key.
        key: Vec<u8>,
    },
    /// No bound on this side.
    Unbounded,
}

/// Which keys a scan visits, in increasing byte order.
#[derive(Debug, Clone, uniffi::Record)]
pub struct StoreKeyRange {
    /// The lower end.
    pub start: KeyBound,
    /// The upper end.
    pub end: KeyBound,
}

/// One put or delete of a commit. A store applies all writes of a commit or none.
#[derive(Debug, Clone, uniffi::Record)]
pub struct StoreWrite {
    /// The table.
    pub table: String,
    /// The record key.
    pub key: Vec<u8>,
    /// The version the record must have now; none: the record must be absent.
    pub expected_version: Option<u64>,
    /// The new sealed bytes (stored at the expected version plus one, or 1); none: delete.
    pub value: Option<Vec<u8>>,
}

/// Why the app's store refused or failed an operation.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum StoreFailure {
    /// A write's expected version was not what the store holds: nothing was applied.
    #[error("conflict on {table}")]
    Conflict {
        /// The table.
        table: String,
        /// The record key.
        key: Vec<u8>,
        /// What the write expected (none: absent).
        expected_version: Option<u64>,
        /// What the store holds (none: absent).
        found_version: Option<u64>,
    },
    /// The storage failed (I/O, the database); the message never holds record contents.
    #[error("{reason}")]
    Backend {
        /// What failed.
        reason: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for StoreFailure {
    fn from(error: uniffi::UnexpectedUniFFICallbackError) -> Self {
        StoreFailure::Backend {
            reason: format!("the foreign store raised: {}", error.reason),
        }
    }
}

/// A store the app implements in its own language (Kotlin, Swift, Python), over its own
/// database. The contract is the core's: each commit applies all writes or none, atomically
/// with every other commit on the same storage, and fails with [`StoreFailure::Conflict`] when
/// any write's expected version is not the stored one; a put stores the expected version plus
/// one (1 when absent). Batches reach it already validated (no two writes to one record, no
/// delete of an absent record). Check an implementation with [`run_store_conformance`].
#[uniffi::export(with_foreign)]
pub trait StoreBackend: Send + Sync {
    /// One record, or none.
    fn get(&self, table: String, key: Vec<u8>) -> Result<Option<StoreRecord>, StoreFailure>;
    /// Several records of one table, in the order of `keys`.
    fn get_many(
        &self,
        table: String,
        keys: Vec<Vec<u8>>,
    ) -> Result<Vec<Option<StoreRecord>>, StoreFailure>;
    /// Up to `limit` records of `range`, in increasing byte order of their keys.
    fn scan(
        &self,
        table: String,
        range: StoreKeyRange,
        limit: u32,
    ) -> Result<Vec<StoreEntry>, StoreFailure>;
    /// Applies every write or none.
    fn commit(&self, writes: Vec<StoreWrite>) -> Result<(), StoreFailure>;
}

/// [`StoreBackend`] with async methods: Python `async def`, Kotlin `suspend fun`, Swift `async`,
/// for an app whose database API is asynchronous. Same contract, same conformance suite
/// ([`run_async_store_conformance`]). The machines call their store and wait for it on the
/// calling thread, so with an async store call them off the thread that runs the store's
/// coroutines: in Python, register the event loop with `uniffi_set_event_loop(loop)` and call
/// the machine through `asyncio.to_thread`; Kotlin runs the store's coroutines by itself.
#[uniffi::export(with_foreign)]
#[async_trait::async_trait]
pub trait AsyncStoreBackend: Send + Sync {
    /// One record, or none.
    async fn get(&self, table: String, key: Vec<u8>) -> Result<Option<StoreRecord>, StoreFailure>;
    /// Several records of one table, in the order of `keys`.
    async fn get_many(
        &self,
        table: String,
        keys: Vec<Vec<u8>>,
    ) -> Result<Vec<Option<StoreRecord>>, StoreFailure>;
    /// Up to `limit` records of `range`, in increasing byte order of their keys.
    async fn scan(
        &self,
        table: String,
        range: StoreKeyRange,
        limit: u32,
    ) -> Result<Vec<StoreEntry>, StoreFailure>;
    /// Applies every write or none.
    async fn commit(&self, writes: Vec<StoreWrite>) -> Result<(), StoreFailure>;
}

/// A foreign store, synchronous or async: the one place the two are told apart.
#[derive(Clone)]
pub(crate) enum ForeignBackend {
    Sync(Arc<dyn StoreBackend>),
    Async(Arc<dyn AsyncStoreBackend>),
}

impl ForeignBackend {
    async fn get(&self, table: String, key: Vec<u8>) -> Result<Option<StoreRecord>, StoreFailure> {
        match self {
            ForeignBackend::Sync(store) => store.get(table, key),
            ForeignBackend::Async(store) => store.get(table, key).await,
        }
    }

    async fn get_many(
        &self,
        table: String,
        keys: Vec<Vec<u8>>,
    ) -> Result<Vec<Option<StoreRecord>>, StoreFailure> {
        match self {
            ForeignBackend::Sync(store) => store.get_many(table, keys),
            ForeignBackend::Async(store) => store.get_many(table, keys).await,
        }
    }

    async fn scan(
        &self,
        table: String,
        range: StoreKeyRange,
        limit: u32,
    ) -> Result<Vec<StoreEntry>, StoreFailure> {
        match self {
            ForeignBackend::Sync(store) => store.scan(table, range, limit),
            ForeignBackend::Async(store) => store.scan(table, range, limit).await,
        }
    }

    async fn commit(&self, writes: Vec<StoreWrite>) -> Result<(), StoreFailure> {
        match self {
            ForeignBackend::Sync(store) => store.commit(writes),
            ForeignBackend::Async(store) => store.commit(writes).await,
        }
    }
}

/// The core's contract over a foreign store: converts the values and errors, validates
/// batches before the app sees them.
#[derive(Clone)]
pub(crate) struct Foreign(ForeignBackend);

fn core_error(failure: StoreFailure) -> StoreError {
    match failure {
        StoreFailure::Conflict {
            table,
            key,
            expected_version,
            found_version,
        } => StoreError::Conflict(Box::new(Conflict {
            table,
            key,
            expected: expected_version.map_or(Expect::Absent, Expect::Version),
            found: found_version,
        })),
        StoreFailure::Backend { reason } => StoreError::Backend(reason),
    }
}

fn core_record(record: StoreRecord) -> Record {
    Record {
        version: record.version,
        value: record.value,
    }
}

fn foreign_bound(bound: &Bound<Vec<u8>>) -> KeyBound {
    match bound {
        Bound::Included(key) => KeyBound::Included { key: key.clone() },
        Bound::Excluded(key) => KeyBound::Excluded { key: key.clone() },
        Bound::Unbounded => KeyBound::Unbounded,
    }
}

impl Backend for Foreign {
    async fn get(&self, table: &str, key: &[u8]) -> Result<Option<Record>, StoreError> {
        let record = self
            .0
            .get(table.to_owned(), key.to_vec())
            .await
            .map_err(core_error)?;
        Ok(record.map(core_record))
    }

    async fn get_many(
        &self,
        table: &str,
        keys: &[Vec<u8>],
    ) -> Result<Vec<Option<Record>>, StoreError> {
        let records = self
            .0
            .get_many(table.to_owned(), keys.to_vec())
            .await
            .map_err(core_error)?;
        if records.len() != keys.len() {
            return Err(StoreError::Backend(format!(
                "get_many returned {} records for {} keys",
                records.len(),
                keys.len()
            )));
        }
        Ok(records.into_iter().map(|r| r.map(core_record)).collect())
    }

    async fn scan(
        &self,
        table: &str,
        range: &KeyRange,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Record)>, StoreError> {
        let range = StoreKeyRange {
            start: foreign_bound(&range.start),
            end: foreign_bound(&range.end),
        };
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        let entries = self
            .0
            .scan(table.to_owned(), range, limit)
            .await
            .map_err(core_error)?;
        Ok(entries
            .into_iter()
            .map(|entry| (entry.key, core_record(entry.record)))
            .collect())
    }

    async fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        batch.validate()?;
        let writes = batch
            .writes
            .into_iter()
            .map(|write| StoreWrite {
                table: write.table,
                key: write.key,
                expected_version: match write.expect {
                    Expect::Absent => None,
                    Expect::Version(version) => Some(version),
                },
                value: write.value,
            })
            .collect();
        self.0.commit(writes).await.map_err(core_error)
    }
}

/// Every store a machine can sit on.
#[derive(Clone)]
pub(crate) enum AnyStore {
    Memory(MemoryStore),
    Sqlite(Arc<SqliteStore>),
    Foreign(Foreign),
}

impl Backend for AnyStore {
    async fn get(&self, table: &str, key: &[u8]) -> Result<Option<Record>, StoreError> {
        match self {
            AnyStore::Memory(store) => store.get(table, key).await,
            AnyStore::Sqlite(store) => store.get(table, key).await,
            AnyStore::Foreign(store) => store.get(table, key).await,
        }
    }

    async fn get_many(
        &self,
        table: &str,
        keys: &[Vec<u8>],
    ) -> Result<Vec<Option<Record>>, StoreError> {
        match self {
            AnyStore::Memory(store) => store.get_many(table, keys).await,
            AnyStore::Sqlite(store) => store.get_many(table, keys).await,
            AnyStore::Foreign(store) => store.get_many(table, keys).await,
        }
    }

    async fn scan(
        &self,
        table: &str,
        range: &KeyRange,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Record)>, StoreError> {
        match self {
            AnyStore::Memory(store) => store.scan(table, range, limit).await,
            AnyStore::Sqlite(store) => store.scan(table, range, limit).await,
            AnyStore::Foreign(store) => store.scan(table, range, limit).await,
        }
    }

    async fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        match self {
            AnyStore::Memory(store) => store.commit(batch).await,
            AnyStore::Sqlite(store) => store.commit(batch).await,
            AnyStore::Foreign(store) => store.commit(batch).await,
        }
    }
}

/// Where a machine keeps its state. One store holds one device; open a machine on it with the
/// same storage key each time.
#[derive(uniffi::Object)]
pub struct OlmoStore(pub(crate) AnyStore);

#[uniffi::export]
impl OlmoStore {
    /// A store in memory, gone with the process (tests, short-lived bots).
    #[uniffi::constructor]
    pub fn memory() -> Arc<Self> {
        Arc::new(Self(AnyStore::Memory(MemoryStore::new())))
    }

    /// A SQLite database at `path` (created and migrated if needed).
    #[uniffi::constructor]
    pub fn sqlite(path: String) -> Result<Arc<Self>, OlmoError> {
        let store = SqliteStore::open(path)?;
        Ok(Arc::new(Self(AnyStore::Sqlite(Arc::new(store)))))
    }

    /// The app's own store.
    #[uniffi::constructor]
    pub fn foreign(backend: Arc<dyn StoreBackend>) -> Arc<Self> {
        Arc::new(Self(AnyStore::Foreign(Foreign(ForeignBackend::Sync(
            backend,
        )))))
    }

    /// The app's own store, with async methods (see [`AsyncStoreBackend`] for which thread to
    /// call the machines on).
    #[uniffi::constructor]
    pub fn foreign_async(backend: Arc<dyn AsyncStoreBackend>) -> Arc<Self> {
        Arc::new(Self(AnyStore::Foreign(Foreign(ForeignBackend::Async(
            backend,
        )))))
    }
}

/// Runs the core's store conformance suite on an app's store, given two handles to one fresh,
/// empty store (two connections to one database). Returns how many checks passed, or the
/// first failure as [`OlmoError::Conformance`].
#[uniffi::export]
pub fn run_store_conformance(
    first: Arc<dyn StoreBackend>,
    second: Arc<dyn StoreBackend>,
) -> Result<u32, OlmoError> {
    conformance_on(
        Foreign(ForeignBackend::Sync(first)),
        Foreign(ForeignBackend::Sync(second)),
    )
}

/// [`run_store_conformance`] for an async store. It waits on the calling thread: from Python,
/// call it through `asyncio.to_thread` after `uniffi_set_event_loop(loop)`.
#[uniffi::export]
pub fn run_async_store_conformance(
    first: Arc<dyn AsyncStoreBackend>,
    second: Arc<dyn AsyncStoreBackend>,
) -> Result<u32, OlmoError> {
    conformance_on(
        Foreign(ForeignBackend::Async(first)),
        Foreign(ForeignBackend::Async(second)),
    )
}

fn conformance_on(first: Foreign, second: Foreign) -> Result<u32, OlmoError> {
    let passed =
        block_on(conformance::run(&first, &second)).map_err(|failure| OlmoError::Conformance {
            reason: failure.to_string(),
        })?;
    Ok(u32::try_from(passed).unwrap_or(u32::MAX))
}

/// The names of the conformance suite's checks, in the order they run.
#[uniffi::export]
pub fn store_conformance_checks() -> Vec<String> {
    conformance::CHECKS.iter().map(|&c| c.to_owned()).collect()
}
