//! PostgreSQL behind olmo's store contract ([`olmo::store::Backend`]), for operators who run
//! several bot workers or bridges of one device on one database.
//!
//! Every record is one row of `olmo_records (tbl, key, version, value)`, keyed by (table, key).
//! A commit is one transaction at READ COMMITTED in which each write is a single conditional
//! statement whose row count is the compare-and-swap check:
//! - a put over version `v`: `UPDATE … SET version = v + 1 … WHERE … AND version = v`;
//! - a put of a new record: `INSERT … ON CONFLICT DO NOTHING` (a concurrent insert of the
//!   same key waits for the other transaction and then finds its row);
//! - a delete of version `v`: `DELETE … WHERE … AND version = v`.
//!
//! A count of 0 rolls the whole transaction back and is a [`StoreError::Conflict`] naming the
//! record. READ COMMITTED suffices because every check is made by the statement that changes the
//! row: PostgreSQL re-evaluates the `WHERE` on the newest committed row after waiting for its
//! lock, and the lock is held to the end of the transaction, so no other commit can change a
//! checked record before this one commits. SERIALIZABLE would add serialization failures (and
//! predicate locks) without catching anything more. Writes are applied in (table, key) order,
//! so two commits lock rows in one order and cannot deadlock each other.
//!
//! Values arrive sealed by the core: the database holds no plaintext and no identifier (table
//! names are olmo's, keys are keyed hashes), so this backend needs no cipher of its own.
//!
//! The client is `tokio-postgres`. Its request futures only wait on channels, so the
//! [`Backend`] futures run on any executor: [`olmo::store::block_on`] in a blocking bot, tokio in
//! an async one. The sockets are driven by a one-thread tokio runtime that the store owns, so a
//! bot needs no runtime of its own and a tokio bot never nests runtimes. TLS (rustls) is used
//! as the connection string's `sslmode` says, the server's certificate checked.

use std::fmt;
use std::future::Future;
use std::ops::Bound;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use olmo::store::{Backend, Batch, Conflict, KeyRange, Record, StoreError};

mod connection;
mod migrations;
mod tls;

pub use migrations::SCHEMA_VERSION;

use connection::{Connection, Link};

/// How a store connects.
#[derive(Debug, Clone)]
pub struct Options {
    /// Connections this handle keeps (operations of one process run on them concurrently).
    pub connections: usize,
    /// How long connecting may take.
    pub connect_timeout: Duration,
    /// PEM certificates trusted for TLS besides the public CAs (a private CA, a self-signed
    /// server). TLS is used as the connection string's `sslmode` says.
    pub root_certificates_pem: Option<Vec<u8>>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            connections: 2,
            connect_timeout: Duration::from_secs(10),
            root_certificates_pem: None,
        }
    }
}

/// How often a commit that PostgreSQL aborted on its own (a deadlock with a foreign writer, a
/// serialization failure under a stricter default isolation) is run again before it is an
/// error. Nothing of an aborted transaction was applied.
const TRANSIENT_RETRIES: usize = 3;

/// A store in one PostgreSQL database (its `olmo_records` and `olmo_schema` tables, in the first
/// schema of the connection's `search_path`).
pub struct PostgresStore {
    link: Link,
    slots: Vec<tokio::sync::Mutex<Option<Connection>>>,
    next: AtomicUsize,
}

impl fmt::Debug for PostgresStore {
    // The connection settings hold a password: never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("connections", &self.slots.len())
            .finish_non_exhaustive()
    }
}

pub(crate) fn backend_error(error: tokio_postgres::Error) -> StoreError {
    // A database error's message names the problem, never a value (values are bound
    // parameters); its detail (which may quote a key) is left out.
    match error.as_db_error() {
        Some(db) => {
            StoreError::Backend(format!("postgres: {} ({})", db.message(), db.code().code()))
        }
        None => StoreError::Backend(format!("postgres: {error}")),
    }
}

fn is_transient(error: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    matches!(
        error.code(),
        Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE
    )
}

impl PostgresStore {
    /// Connects with default options to the database `connection_string` names (libpq's
    /// `host=… port=… user=… password=… dbname=…` or a `postgresql://` URL), creating and
    /// migrating the schema if needed. The string is never logged nor put in an error.
    ///
    /// Blocks the calling thread until connected (run it on a blocking thread in a tokio app).
    pub fn connect(connection_string: &str) -> Result<Self, StoreError> {
        Self::connect_with(connection_string, &Options::default())
    }

    /// Connects with `options`.
    pub fn connect_with(connection_string: &str, options: &Options) -> Result<Self, StoreError> {
        let tls = tls::MakeRustls::new(options.root_certificates_pem.as_deref())?;
        let link = Link::new(connection_string, options.connect_timeout, tls)?;
        olmo::store::block_on(async {
            // The schema first, on a connection of its own: statements are prepared against it.
            migrations::run(&link.client().await?).await
        })?;
        let first = olmo::store::block_on(link.connect())?;
        let mut slots = vec![tokio::sync::Mutex::new(Some(first))];
        slots.extend((1..options.connections.max(1)).map(|_| tokio::sync::Mutex::new(None)));
        Ok(Self {
            link,
            slots,
            next: AtomicUsize::new(0),
        })
    }

    /// A connection of the pool, (re)connected if it was not or has been closed.
    async fn acquire(&self) -> Result<tokio::sync::MutexGuard<'_, Option<Connection>>, StoreError> {
        let mut guard = match self.slots.iter().find_map(|s| s.try_lock().ok()) {
            Some(guard) => guard,
            None => {
                let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
                self.slots[i].lock().await
            }
        };
        if guard.as_ref().is_none_or(|c| c.client.is_closed()) {
            *guard = None;
            *guard = Some(self.link.connect().await?);
        }
        Ok(guard)
    }

    async fn get_async(&self, table: &str, key: &[u8]) -> Result<Option<Record>, StoreError> {
        let guard = self.acquire().await?;
        let c = connected(&guard)?;
        let row = c
            .client
            .query_opt(&c.statements.get, &[&table, &key])
            .await
            .map_err(backend_error)?;
        Ok(row.map(|row| Record {
            version: version_from_sql(row.get(0)),
            value: row.get(1),
        }))
    }

    async fn get_many_async(
        &self,
        table: &str,
        keys: &[Vec<u8>],
    ) -> Result<Vec<Option<Record>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let guard = self.acquire().await?;
        let c = connected(&guard)?;
        // One statement: the records come from one snapshot.
        let rows = c
            .client
            .query(&c.statements.get_many, &[&table, &keys])
            .await
            .map_err(backend_error)?;
        let found: std::collections::HashMap<Vec<u8>, Record> = rows
            .into_iter()
            .map(|row| {
                let record = Record {
                    version: version_from_sql(row.get(1)),
                    value: row.get(2),
                };
                (row.get::<_, Vec<u8>>(0), record)
            })
            .collect();
        Ok(keys.iter().map(|key| found.get(key).cloned()).collect())
    }

    async fn scan_async(
        &self,
        table: &str,
        range: &KeyRange,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Record)>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut guard = self.acquire().await?;
        let c = guard
            .as_mut()
            .ok_or_else(|| StoreError::Backend("postgres: not connected".into()))?;
        let statement = c.scan_statement(&range.start, &range.end).await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&table];
        for bound in [&range.start, &range.end] {
            if let Bound::Included(k) | Bound::Excluded(k) = bound {
                params.push(k);
            }
        }
        params.push(&limit);
        let rows = c
            .client
            .query(&statement, &params)
            .await
            .map_err(backend_error)?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let record = Record {
                    version: version_from_sql(row.get(1)),
                    value: row.get(2),
                };
                (row.get(0), record)
            })
            .collect())
    }

    async fn commit_async(&self, batch: Batch) -> Result<(), StoreError> {
        batch.validate()?;
        if batch.is_empty() {
            return Ok(());
        }
        let mut writes: Vec<_> = batch.writes.iter().collect();
        writes.sort_by(|a, b| (&a.table, &a.key).cmp(&(&b.table, &b.key)));
        let mut guard = self.acquire().await?;
        let c = guard
            .as_mut()
            .ok_or_else(|| StoreError::Backend("postgres: not connected".into()))?;
        let mut attempt = 0;
        loop {
            match c.apply(&writes, batch.durability).await {
                Err(error) if attempt < TRANSIENT_RETRIES && is_transient(&error) => attempt += 1,
                Err(error) => return Err(backend_error(error)),
                Ok(None) => return Ok(()),
                Ok(Some(conflict)) => return Err(StoreError::Conflict(Box::new(conflict))),
            }
        }
    }
}

fn connected(guard: &Option<Connection>) -> Result<&Connection, StoreError> {
    guard
        .as_ref()
        .ok_or_else(|| StoreError::Backend("postgres: not connected".into()))
}

/// Versions are `bigint`: stored as their two's-complement bit pattern, as SQLite does.
pub(crate) fn version_to_sql(version: u64) -> i64 {
    i64::from_ne_bytes(version.to_ne_bytes())
}

pub(crate) fn version_from_sql(value: i64) -> u64 {
    u64::from_ne_bytes(value.to_ne_bytes())
}

/// What a commit found: `None` when it applied, else the first record that was not as expected.
pub(crate) type Outcome = Option<Conflict>;

impl Backend for PostgresStore {
    fn get(
        &self,
        table: &str,
        key: &[u8],
    ) -> impl Future<Output = Result<Option<Record>, StoreError>> + Send {
        self.get_async(table, key)
    }

    fn get_many(
        &self,
        table: &str,
        keys: &[Vec<u8>],
    ) -> impl Future<Output = Result<Vec<Option<Record>>, StoreError>> + Send {
        self.get_many_async(table, keys)
    }

    fn scan(
        &self,
        table: &str,
        range: &KeyRange,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(Vec<u8>, Record)>, StoreError>> + Send {
        self.scan_async(table, range, limit)
    }

    fn commit(&self, batch: Batch) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.commit_async(batch)
    }
}
