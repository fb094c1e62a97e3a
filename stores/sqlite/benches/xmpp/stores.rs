//! The stores the machine side runs on: SQLite with each commit on disk (`synchronous=FULL`,
//! the default), SQLite with `synchronous=NORMAL` (no fsync per commit in WAL mode), and the
//! memory store (the engine's own cost, no SQLite at all).

use std::path::{Path, PathBuf};

use olmo::store::{
    Backend, Batch, Committed, Generation, KeyRange, MemoryStore, Record, StoreError,
};
use olmo_sqlite::{Durability, Options, SqliteStore};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Full,
    Normal,
    Memory,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Full, Kind::Normal, Kind::Memory];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Full => "SQLite FULL",
            Kind::Normal => "SQLite NORMAL",
            Kind::Memory => "memory store",
        }
    }

    /// A new store at `path` (ignored by the memory store).
    pub fn open(self, path: &Path) -> BenchStore {
        match self {
            Kind::Memory => BenchStore::Memory(MemoryStore::new()),
            _ => BenchStore::Sqlite(self.open_sqlite(path), path.to_owned(), self),
        }
    }

    fn open_sqlite(self, path: &Path) -> SqliteStore {
        let durability = match self {
            Kind::Normal => Durability::Normal,
            _ => Durability::Full,
        };
        let options = Options {
            durability,
            ..Options::default()
        };
        SqliteStore::open_with(path, &options).unwrap()
    }
}

pub enum BenchStore {
    Sqlite(SqliteStore, PathBuf, Kind),
    Memory(MemoryStore),
}

impl BenchStore {
    /// Another handle on the same records (SQLite: a second connection).
    pub fn handle(&self) -> Self {
        match self {
            BenchStore::Sqlite(_, path, kind) => {
                BenchStore::Sqlite(kind.open_sqlite(path), path.clone(), *kind)
            }
            BenchStore::Memory(store) => BenchStore::Memory(store.clone()),
        }
    }

    /// An independent copy of the records at `to` (SQLite: the store must be closed, so this
    /// is called on a handle whose machine is gone).
    pub fn copy(&self, to: &Path) -> Self {
        match self {
            BenchStore::Sqlite(_, path, kind) => {
                crate::world::copy_store(path, to);
                BenchStore::Sqlite(kind.open_sqlite(to), to.to_owned(), *kind)
            }
            BenchStore::Memory(store) => BenchStore::Memory(store.fork()),
        }
    }

    /// Deletes an SQLite store's files.
    pub fn remove(self) {
        if let BenchStore::Sqlite(store, path, _) = self {
            drop(store);
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
        }
    }
}

impl Backend for BenchStore {
    async fn get(&self, table: &str, key: &[u8]) -> Result<Option<Record>, StoreError> {
        match self {
            BenchStore::Sqlite(store, ..) => store.get(table, key).await,
            BenchStore::Memory(store) => store.get(table, key).await,
        }
    }

    async fn get_many(
        &self,
        table: &str,
        keys: &[Vec<u8>],
    ) -> Result<Vec<Option<Record>>, StoreError> {
        match self {
            BenchStore::Sqlite(store, ..) => store.get_many(table, keys).await,
            BenchStore::Memory(store) => store.get_many(table, keys).await,
        }
    }

    async fn scan(
        &self,
        table: &str,
        range: &KeyRange,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Record)>, StoreError> {
        match self {
            BenchStore::Sqlite(store, ..) => store.scan(table, range, limit).await,
            BenchStore::Memory(store) => store.scan(table, range, limit).await,
        }
    }

    async fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        match self {
            BenchStore::Sqlite(store, ..) => store.commit(batch).await,
            BenchStore::Memory(store) => store.commit(batch).await,
        }
    }

    async fn generation(&self) -> Option<Generation> {
        match self {
            BenchStore::Sqlite(store, ..) => store.generation().await,
            BenchStore::Memory(store) => store.generation().await,
        }
    }

    async fn commit_tracked(&self, batch: Batch) -> Result<Option<Committed>, StoreError> {
        match self {
            BenchStore::Sqlite(store, ..) => store.commit_tracked(batch).await,
            BenchStore::Memory(store) => store.commit_tracked(batch).await,
        }
    }
}
