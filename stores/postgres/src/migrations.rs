//! The database's own schema, numbered in `olmo_schema`. All pending migrations run in one
//! transaction with the version bump, under an advisory lock, so a process killed half-way
//! leaves the previous schema and workers starting together on a new database migrate it once.

use olmo::store::StoreError;
use tokio_postgres::Client;

use super::backend_error;

/// Serialises migrations of every olmo store in one database ("olmo" in ASCII).
const MIGRATION_LOCK: i64 = 0x6f6c_6d6f;

/// Migration `n` (1-based) takes the database from version `n - 1` to `n`.
const MIGRATIONS: &[&str] = &[
    // The primary key's index serves gets and ordered range scans (bytea compares bytewise).
    // Values are sealed, so compressing them is wasted work: stored out of line as they are.
    // Records are rewritten often and their key never changes: room on each page lets
    // PostgreSQL update them in place (HOT) without touching the index.
    "CREATE TABLE olmo_records (
        tbl text COLLATE \"C\" NOT NULL,
        key bytea NOT NULL,
        version bigint NOT NULL,
        value bytea NOT NULL,
        PRIMARY KEY (tbl, key)
    ) WITH (fillfactor = 80);
    ALTER TABLE olmo_records ALTER COLUMN value SET STORAGE EXTERNAL;",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

pub(crate) async fn run(client: &Client) -> Result<(), StoreError> {
    client.batch_execute("BEGIN").await.map_err(backend_error)?;
    let result = migrate(client).await;
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    client.batch_execute(end).await.map_err(backend_error)?;
    result
}

async fn migrate(client: &Client) -> Result<(), StoreError> {
    client
        .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(backend_error)?;
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS olmo_schema (
                one boolean PRIMARY KEY DEFAULT true CHECK (one),
                version integer NOT NULL
            )",
        )
        .await
        .map_err(backend_error)?;
    let current: i32 = client
        .query_opt("SELECT version FROM olmo_schema", &[])
        .await
        .map_err(backend_error)?
        .map_or(0, |row| row.get(0));
    if current > SCHEMA_VERSION {
        return Err(StoreError::Backend(format!(
            "postgres: database schema {current} is newer than this build ({SCHEMA_VERSION})"
        )));
    }
    for sql in &MIGRATIONS[usize::try_from(current).unwrap_or(0)..] {
        client.batch_execute(sql).await.map_err(backend_error)?;
    }
    if current < SCHEMA_VERSION {
        client
            .execute(
                "INSERT INTO olmo_schema (version) VALUES ($1)
                 ON CONFLICT (one) DO UPDATE SET version = EXCLUDED.version",
                &[&SCHEMA_VERSION],
            )
            .await
            .map_err(backend_error)?;
    }
    Ok(())
}
