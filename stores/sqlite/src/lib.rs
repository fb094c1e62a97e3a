//! SQLite behind olmo's store contract ([`olmo::store::Backend`]).
//!
//! One connection per store handle does all reads and writes, so a process never races itself
//! for SQLite's write lock (the "database is locked" storms of many writer connections). Each
//! commit is one `BEGIN IMMEDIATE` transaction that first checks every write's expected version
//! and applies nothing on a mismatch. Several processes may open one file: SQLite serialises
//! their transactions (waiting up to [`Options::busy_timeout`] for the lock), and the version
//! checks turn a stale write into a [`StoreError::Conflict`] instead of an overwrite.
//!
//! Durability: WAL, `synchronous=FULL` by default (a commit is on disk when it returns);
//! [`Durability::Normal`] trades the last commits before a power loss (never consistency) for
//! speed when a backlog is decrypted in batches. Under `FULL`, a batch the core marks
//! [`CommitDurability::LossTolerant`] (a room event's replay entry and ratchet advance) commits
//! with `synchronous=NORMAL`: it survives the process being killed (WAL), may be lost in a
//! power loss, and the next unmarked commit, synced with `FULL`, makes it durable too (the WAL
//! is one ordered log). Every unmarked commit runs under `FULL`. Nothing is written while idle: there are no
//! background tasks. The WAL is checkpointed automatically when it reaches
//! [`Options::journal_size_limit`] (16 MiB by default; checkpoints cost fsyncs, so rarer is
//! faster) and truncated to it, and fully on drop.
//!
//! Generation ([`Backend::generation`]): this handle's commit count and SQLite's
//! `PRAGMA data_version`, which changes when another connection (of this process or another)
//! commits and not with this connection's own commits. A commit reads it inside its write
//! transaction, so the generations it reports around itself have no other commit between them.
//! A machine that finds the generation unchanged uses the records it holds without reading.
//!
//! Values arrive sealed by the core; this backend needs no cipher of its own.

use std::future::{Future, ready};
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use olmo::store::{
    Backend, Batch, CommitDurability, Committed, Generation, KeyRange, Record, StoreError,
};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

mod migrations;

/// How much a commit waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=FULL`: a returned commit survives a power loss.
    #[default]
    Full,
    /// `synchronous=NORMAL`: a returned commit survives the process being killed, and the
    /// database stays consistent on power loss, but the last commits may be lost then.
    Normal,
}

/// How a store is opened.
#[derive(Debug, Clone)]
pub struct Options {
    /// Commit durability.
    pub durability: Durability,
    /// How long a commit, or opening the file, waits for another process's transaction to finish.
    pub busy_timeout: Duration,
    /// The size of the WAL file, in bytes, at which it is checkpointed (at least SQLite's
    /// default of 1,000 pages), and the size it is truncated to after a checkpoint.
    pub journal_size_limit: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            durability: Durability::Full,
            busy_timeout: Duration::from_secs(10),
            journal_size_limit: 16 << 20,
        }
    }
}

/// A store in one SQLite file.
#[derive(Debug)]
pub struct SqliteStore {
    connection: Mutex<Connection>,
    /// The durability the store was opened with: what unmarked commits get.
    durability: Durability,
    /// Whether the connection is at `synchronous=NORMAL` now (changed only under the
    /// connection's lock, between transactions).
    at_normal: AtomicBool,
    /// The commits this handle applied (changed only under the connection's lock): with
    /// SQLite's `PRAGMA data_version`, which changes when another connection commits but not
    /// with this connection's own commits, the store's [`Generation`].
    commits: AtomicU64,
}

/// The bytes a WAL frame adds to its page.
const WAL_FRAME_HEADER: u64 = 24;

fn backend_error(error: rusqlite::Error) -> StoreError {
    StoreError::Backend(format!("sqlite: {error}"))
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) the store at `path` with default options.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, &Options::default())
    }

    /// Opens the store at `path`.
    pub fn open_with(path: impl AsRef<Path>, options: &Options) -> Result<Self, StoreError> {
        let connection = Connection::open(path).map_err(backend_error)?;
        Self::configure(connection, options)
    }

    /// A store in memory (one handle only; for tests).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let connection = Connection::open_in_memory().map_err(backend_error)?;
        Self::configure(connection, &Options::default())
    }

    fn configure(mut connection: Connection, options: &Options) -> Result<Self, StoreError> {
        connection
            .busy_timeout(options.busy_timeout)
            .map_err(backend_error)?;
        // WAL is a property of the file, set outside any transaction; the rest are per
        // connection.
        let synchronous = match options.durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        switch_to_wal(&connection, options.busy_timeout)?;
        // A checkpoint costs two or three fsyncs (milliseconds each on a busy disk), and a
        // decrypted room event commits about two pages: checkpointing when the WAL reaches its
        // size limit rather than at SQLite's 1,000 pages makes them four times rarer, and the
        // pages written again meanwhile are copied once. The WAL stays bounded by the limit.
        let page_size: i64 = connection
            .query_row("PRAGMA page_size", [], |row| row.get(0))
            .map_err(backend_error)?;
        let page_size = u64::try_from(page_size).unwrap_or(4096);
        let checkpoint_pages =
            (options.journal_size_limit / (page_size + WAL_FRAME_HEADER)).max(1000);
        connection
            .execute_batch(&format!(
                "PRAGMA synchronous = {synchronous};
                 PRAGMA journal_size_limit = {};
                 PRAGMA wal_autocheckpoint = {checkpoint_pages};",
                options.journal_size_limit
            ))
            .map_err(backend_error)?;
        migrations::run(&mut connection)?;
        Ok(Self {
            connection: Mutex::new(connection),
            durability: options.durability,
            at_normal: AtomicBool::new(options.durability == Durability::Normal),
            commits: AtomicU64::new(0),
        })
    }

    /// The `synchronous` level the connection is at now, as SQLite reports it: the level its
    /// last commit ran under (for tests and diagnostics).
    pub fn synchronous(&self) -> Result<Durability, StoreError> {
        let level: i64 = self
            .lock()
            .query_row("PRAGMA synchronous", [], |row| row.get(0))
            .map_err(backend_error)?;
        // 1 is NORMAL, 2 FULL (3 EXTRA is never set here).
        Ok(if level <= 1 {
            Durability::Normal
        } else {
            Durability::Full
        })
    }

    /// Sets `synchronous` for the next transaction: `NORMAL` for a loss-tolerant batch (or a
    /// store opened with [`Durability::Normal`]), `FULL` for every other one. SQLite refuses
    /// the change inside a transaction, so this runs before `BEGIN`.
    fn set_synchronous(
        &self,
        connection: &Connection,
        batch: CommitDurability,
    ) -> Result<(), StoreError> {
        let normal =
            self.durability == Durability::Normal || batch == CommitDurability::LossTolerant;
        if normal == self.at_normal.load(Ordering::Relaxed) {
            return Ok(());
        }
        let level = if normal { "NORMAL" } else { "FULL" };
        connection
            .execute_batch(&format!("PRAGMA synchronous = {level};"))
            .map_err(backend_error)?;
        self.at_normal.store(normal, Ordering::Relaxed);
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // Every transaction is finished or rolled back before the guard drops, so a poisoned
        // lock still guards a consistent connection.
        self.connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get_now(&self, table: &str, key: &[u8]) -> Result<Option<Record>, StoreError> {
        read_record(&self.lock(), table, key)
    }

    fn get_many_now(
        &self,
        table: &str,
        keys: &[Vec<u8>],
    ) -> Result<Vec<Option<Record>>, StoreError> {
        let connection = self.lock();
        if let [key] = keys {
            // One statement reads one state already: no transaction to begin and end.
            return Ok(vec![read_record(&connection, table, key)?]);
        }
        // One read transaction, so the records come from one state of the database.
        let tx = connection.unchecked_transaction().map_err(backend_error)?;
        let records = keys
            .iter()
            .map(|key| read_record(&tx, table, key))
            .collect::<Result<_, _>>()?;
        tx.finish().map_err(backend_error)?;
        Ok(records)
    }

    fn scan_now(
        &self,
        table: &str,
        range: &KeyRange,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Record)>, StoreError> {
        let (start, start_value) = match &range.start {
            Bound::Included(k) => ("AND key >= ?2", k.clone()),
            Bound::Excluded(k) => ("AND key > ?2", k.clone()),
            Bound::Unbounded => ("AND ?2 IS NOT NULL", Vec::new()),
        };
        let (end, end_value) = match &range.end {
            Bound::Included(k) => ("AND key <= ?3", k.clone()),
            Bound::Excluded(k) => ("AND key < ?3", k.clone()),
            Bound::Unbounded => ("AND ?3 IS NOT NULL", Vec::new()),
        };
        let sql = format!(
            "SELECT key, version, value FROM records WHERE tbl = ?1 {start} {end}
             ORDER BY key LIMIT ?4"
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let connection = self.lock();
        let mut statement = connection.prepare_cached(&sql).map_err(backend_error)?;
        let rows = statement
            .query_map(params![table, start_value, end_value, limit], |row| {
                Ok((
                    row.get::<_, Vec<u8>>(0)?,
                    Record {
                        version: version_from_sql(row.get(1)?),
                        value: row.get(2)?,
                    },
                ))
            })
            .map_err(backend_error)?;
        rows.collect::<Result<_, _>>().map_err(backend_error)
    }

    /// The generation: this handle's commits and the database's `data_version` as this
    /// connection sees it now (or inside its transaction, as of that transaction's snapshot).
    fn generation_of(&self, connection: &Connection) -> Result<Generation, StoreError> {
        Ok(Generation::new(
            self.commits.load(Ordering::Relaxed),
            data_version(connection)?,
        ))
    }

    fn generation_now(&self) -> Option<Generation> {
        self.generation_of(&self.lock()).ok()
    }

    fn commit_now(&self, batch: Batch) -> Result<Committed, StoreError> {
        batch.validate()?;
        let mut connection = self.lock();
        if batch.is_empty() {
            let now = self.generation_of(&connection)?;
            return Ok(Committed {
                before: now,
                after: now,
            });
        }
        self.set_synchronous(&connection, batch.durability)?;
        let tx = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend_error)?;
        // Read under the write lock: no other connection commits until this one ends, and
        // this connection's own commit leaves `data_version` as it is, so `after` is what
        // `generation` reads until someone commits again.
        let data_version = data_version(&tx)?;
        let commits = self.commits.load(Ordering::Relaxed);
        let before = Generation::new(commits, data_version);
        for write in &batch.writes {
            let found = read_version(&tx, &write.table, &write.key)?;
            if !write.expect.matches(found) {
                // Dropping `tx` rolls back; nothing was written yet.
                return Err(write.conflict(found));
            }
        }
        for write in &batch.writes {
            match &write.value {
                Some(value) => tx
                    .prepare_cached(
                        "INSERT OR REPLACE INTO records (tbl, key, version, value)
                         VALUES (?1, ?2, ?3, ?4)",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            write.table,
                            write.key,
                            version_to_sql(write.expect.next_version()),
                            value
                        ])
                    }),
                None => tx
                    .prepare_cached("DELETE FROM records WHERE tbl = ?1 AND key = ?2")
                    .and_then(|mut s| s.execute(params![write.table, write.key])),
            }
            .map_err(backend_error)?;
        }
        tx.commit().map_err(backend_error)?;
        let commits = commits.wrapping_add(1);
        self.commits.store(commits, Ordering::Relaxed);
        let after = Generation::new(commits, data_version);
        Ok(Committed { before, after })
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Leave no WAL behind; a failure here only means the next open replays it.
        let _ = self
            .lock()
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
    }
}

/// Sets WAL mode, retrying while another connection holds the file's write lock: switching
/// needs an exclusive lock, and SQLite answers "database is locked" at once, without its busy
/// handler, to a reader asking for it while someone else writes (two processes creating one
/// file at once). Bounded by `busy_timeout` like every other lock wait.
fn switch_to_wal(connection: &Connection, busy_timeout: Duration) -> Result<(), StoreError> {
    let started = Instant::now();
    loop {
        match connection.execute_batch("PRAGMA journal_mode = WAL;") {
            Ok(()) => return Ok(()),
            Err(error)
                if error.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                    && started.elapsed() < busy_timeout =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(error) => return Err(backend_error(error)),
        }
    }
}

fn read_record(
    connection: &Connection,
    table: &str,
    key: &[u8],
) -> Result<Option<Record>, StoreError> {
    connection
        .prepare_cached("SELECT version, value FROM records WHERE tbl = ?1 AND key = ?2")
        .and_then(|mut s| {
            s.query_row(params![table, key], |row| {
                Ok(Record {
                    version: version_from_sql(row.get(0)?),
                    value: row.get(1)?,
                })
            })
            .optional()
        })
        .map_err(backend_error)
}

fn read_version(
    connection: &Connection,
    table: &str,
    key: &[u8],
) -> Result<Option<u64>, StoreError> {
    connection
        .prepare_cached("SELECT version FROM records WHERE tbl = ?1 AND key = ?2")
        .and_then(|mut s| {
            s.query_row(params![table, key], |row| row.get::<_, i64>(0))
                .optional()
        })
        .map(|v| v.map(version_from_sql))
        .map_err(backend_error)
}

/// SQLite's count of the commits other connections made to the database, as this connection
/// sees it.
fn data_version(connection: &Connection) -> Result<u64, StoreError> {
    connection
        .prepare_cached("PRAGMA data_version")
        .and_then(|mut s| s.query_row([], |row| row.get::<_, i64>(0)))
        .map(version_from_sql)
        .map_err(backend_error)
}

/// SQLite integers are signed: versions are stored as their two's-complement bit pattern.
fn version_to_sql(version: u64) -> i64 {
    i64::from_ne_bytes(version.to_ne_bytes())
}

fn version_from_sql(value: i64) -> u64 {
    u64::from_ne_bytes(value.to_ne_bytes())
}

impl Backend for SqliteStore {
    fn get(
        &self,
        table: &str,
        key: &[u8],
    ) -> impl Future<Output = Result<Option<Record>, StoreError>> + Send {
        ready(self.get_now(table, key))
    }

    fn get_many(
        &self,
        table: &str,
        keys: &[Vec<u8>],
    ) -> impl Future<Output = Result<Vec<Option<Record>>, StoreError>> + Send {
        ready(self.get_many_now(table, keys))
    }

    fn scan(
        &self,
        table: &str,
        range: &KeyRange,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(Vec<u8>, Record)>, StoreError>> + Send {
        ready(self.scan_now(table, range, limit))
    }

    fn commit(&self, batch: Batch) -> impl Future<Output = Result<(), StoreError>> + Send {
        ready(self.commit_now(batch).map(|_| ()))
    }

    /// This handle's commits and SQLite's `data_version` (other connections' commits).
    fn generation(&self) -> impl Future<Output = Option<Generation>> + Send {
        ready(self.generation_now())
    }

    fn commit_tracked(
        &self,
        batch: Batch,
    ) -> impl Future<Output = Result<Option<Committed>, StoreError>> + Send {
        ready(self.commit_now(batch).map(Some))
    }
}
