//! One connection to the database, with its prepared statements and the commit that runs on
//! it; and the [`Link`] that makes connections: the parsed settings and the runtime that drives
//! the sockets.

use std::collections::HashMap;
use std::ops::Bound;
use std::time::Duration;

use olmo::store::{CommitDurability, Conflict, Expect, StoreError, Write};
use tokio_postgres::{Client, IsolationLevel, Statement, Transaction};

use super::tls::MakeRustls;
use super::{Outcome, backend_error, version_from_sql, version_to_sql};

/// The settings and the runtime connections are made on. Neither is ever printed: the settings
/// may hold a password.
pub(crate) struct Link {
    config: tokio_postgres::Config,
    tls: MakeRustls,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Link {
    pub(crate) fn new(
        connection_string: &str,
        timeout: Duration,
        tls: MakeRustls,
    ) -> Result<Self, StoreError> {
        let mut config: tokio_postgres::Config = connection_string
            .parse()
            // The parser's message names an option, never a value; still, say only that it
            // did not parse, in case a later version quotes it.
            .map_err(|_| {
                StoreError::Backend("postgres: the connection string does not parse".into())
            })?;
        config.connect_timeout(timeout);
        if config.get_application_name().is_none() {
            // Shown in pg_stat_activity, so an operator can tell olmo's connections apart.
            config.application_name("olmo");
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("olmo-postgres")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Backend(format!("postgres: runtime: {e}")))?;
        Ok(Self {
            config,
            tls,
            runtime: Some(runtime),
        })
    }

    /// A new connection, its socket driven on the store's runtime, statements prepared.
    pub(crate) async fn connect(&self) -> Result<Connection, StoreError> {
        let client = self.client().await?;
        let statements = Statements::prepare(&client).await.map_err(backend_error)?;
        Ok(Connection {
            client,
            statements,
            scans: HashMap::new(),
        })
    }

    /// A new client, its socket driven on the store's runtime.
    pub(crate) async fn client(&self) -> Result<Client, StoreError> {
        let runtime = self
            .runtime
            .as_ref()
            .ok_or_else(|| StoreError::Backend("postgres: store closed".into()))?;
        let (config, tls) = (self.config.clone(), self.tls.clone());
        let connecting = runtime.spawn(async move {
            let (client, connection) = config.connect(tls).await?;
            // Ends when the client is dropped or the server goes away; the next operation
            // then sees a closed client and reconnects.
            tokio::spawn(connection);
            Ok::<_, tokio_postgres::Error>(client)
        });
        connecting
            .await
            .map_err(|e| StoreError::Backend(format!("postgres: connecting: {e}")))?
            .map_err(backend_error)
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // Without blocking: a store may be dropped inside an async task.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The statements every operation uses, prepared once per connection.
pub(crate) struct Statements {
    pub(crate) get: Statement,
    pub(crate) get_many: Statement,
    version: Statement,
    insert: Statement,
    update: Statement,
    delete: Statement,
}

impl Statements {
    async fn prepare(client: &Client) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            get: client
                .prepare("SELECT version, value FROM olmo_records WHERE tbl = $1 AND key = $2")
                .await?,
            get_many: client
                .prepare(
                    "SELECT key, version, value FROM olmo_records WHERE tbl = $1 AND key = ANY($2)",
                )
                .await?,
            version: client
                .prepare("SELECT version FROM olmo_records WHERE tbl = $1 AND key = $2")
                .await?,
            insert: client
                .prepare(
                    "INSERT INTO olmo_records (tbl, key, version, value) VALUES ($1, $2, 1, $3)
                     ON CONFLICT DO NOTHING",
                )
                .await?,
            update: client
                .prepare(
                    "UPDATE olmo_records SET version = $4, value = $5
                     WHERE tbl = $1 AND key = $2 AND version = $3",
                )
                .await?,
            delete: client
                .prepare("DELETE FROM olmo_records WHERE tbl = $1 AND key = $2 AND version = $3")
                .await?,
        })
    }
}

/// How a scan bounds its keys on one side: none, inclusive, exclusive.
type BoundKinds = (u8, u8);

fn kind(bound: &Bound<Vec<u8>>) -> u8 {
    match bound {
        Bound::Unbounded => 0,
        Bound::Included(_) => 1,
        Bound::Excluded(_) => 2,
    }
}

/// A live connection.
pub(crate) struct Connection {
    pub(crate) client: Client,
    pub(crate) statements: Statements,
    /// Scan statements by the kinds of their bounds, prepared on first use.
    scans: HashMap<BoundKinds, Statement>,
}

impl Connection {
    /// The scan statement for these bounds: parameters are the table, the bounds present, and
    /// the limit. Walks the primary key's index from the start bound.
    pub(crate) async fn scan_statement(
        &mut self,
        start: &Bound<Vec<u8>>,
        end: &Bound<Vec<u8>>,
    ) -> Result<Statement, StoreError> {
        let kinds = (kind(start), kind(end));
        if let Some(statement) = self.scans.get(&kinds) {
            return Ok(statement.clone());
        }
        let mut sql = String::from("SELECT key, version, value FROM olmo_records WHERE tbl = $1");
        let mut parameter = 2;
        for (kind, inclusive, exclusive) in [(kinds.0, ">=", ">"), (kinds.1, "<=", "<")] {
            let operator = match kind {
                1 => inclusive,
                2 => exclusive,
                _ => continue,
            };
            sql.push_str(&format!(" AND key {operator} ${parameter}"));
            parameter += 1;
        }
        sql.push_str(&format!(" ORDER BY key LIMIT ${parameter}"));
        let statement = self.client.prepare(&sql).await.map_err(backend_error)?;
        self.scans.insert(kinds, statement.clone());
        Ok(statement)
    }

    /// Applies `writes` (in lock order) in one transaction, or nothing and the first record
    /// that was not as its write expected. A loss-tolerant commit does not wait for its WAL
    /// flush (`synchronous_commit = off` for this transaction only): the server may lose it in
    /// a crash of its own, never a commit after it, and never a part of it.
    pub(crate) async fn apply(
        &mut self,
        writes: &[&Write],
        durability: CommitDurability,
    ) -> Result<Outcome, tokio_postgres::Error> {
        let statements = &self.statements;
        let tx = self
            .client
            .build_transaction()
            .isolation_level(IsolationLevel::ReadCommitted)
            .start()
            .await?;
        if durability == CommitDurability::LossTolerant {
            tx.batch_execute("SET LOCAL synchronous_commit = off")
                .await?;
        }
        // Sent back to back (tokio-postgres pipelines futures polled together): one round trip
        // for the whole batch instead of one per write.
        let counts = futures_util::future::try_join_all(
            writes.iter().map(|write| execute(&tx, statements, write)),
        )
        .await?;
        for (write, count) in writes.iter().zip(counts) {
            if count != 1 {
                let found = tx
                    .query_opt(&statements.version, &[&write.table, &write.key])
                    .await?
                    .map(|row| version_from_sql(row.get(0)));
                tx.rollback().await?;
                return Ok(Some(Conflict {
                    table: write.table.clone(),
                    key: write.key.clone(),
                    expected: write.expect,
                    found,
                }));
            }
        }
        tx.commit().await?;
        Ok(None)
    }
}

/// Runs one write's conditional statement; the rows it changed (1: as expected).
async fn execute(
    tx: &Transaction<'_>,
    statements: &Statements,
    write: &Write,
) -> Result<u64, tokio_postgres::Error> {
    let (table, key) = (&write.table, &write.key);
    match (&write.value, write.expect) {
        (Some(value), Expect::Absent) => tx.execute(&statements.insert, &[table, key, value]).await,
        (Some(value), Expect::Version(v)) => {
            let (old, new) = (
                version_to_sql(v),
                version_to_sql(write.expect.next_version()),
            );
            tx.execute(&statements.update, &[table, key, &old, &new, value])
                .await
        }
        (None, Expect::Version(v)) => {
            let old = version_to_sql(v);
            tx.execute(&statements.delete, &[table, key, &old]).await
        }
        // Refused by `Batch::validate` before any transaction starts.
        (None, Expect::Absent) => Ok(0),
    }
}
