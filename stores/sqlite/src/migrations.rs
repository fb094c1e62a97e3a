//! The database's own schema, numbered by `PRAGMA user_version`. Each migration runs in its own
//! `BEGIN IMMEDIATE` transaction together with the version bump, so a process killed half-way
//! leaves the previous schema, and two processes opening a new file at once migrate it once.

use olmo::store::StoreError;
use rusqlite::{Connection, TransactionBehavior};

use super::backend_error;

/// Migration `n` (1-based) takes the database from version `n - 1` to `n`.
const MIGRATIONS: &[&str] = &["CREATE TABLE records (
        tbl TEXT NOT NULL,
        key BLOB NOT NULL,
        version INTEGER NOT NULL,
        value BLOB NOT NULL,
        PRIMARY KEY (tbl, key)
    ) WITHOUT ROWID;"];

pub(crate) fn run(connection: &mut Connection) -> Result<(), StoreError> {
    for (index, sql) in MIGRATIONS.iter().enumerate() {
        let target = index as i64 + 1;
        let tx = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend_error)?;
        let current: i64 = tx
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(backend_error)?;
        if current > MIGRATIONS.len() as i64 {
            return Err(StoreError::Backend(format!(
                "sqlite: database schema {current} is newer than this build ({})",
                MIGRATIONS.len()
            )));
        }
        if current >= target {
            continue;
        }
        tx.execute_batch(sql).map_err(backend_error)?;
        tx.pragma_update(None, "user_version", target)
            .map_err(backend_error)?;
        tx.commit().map_err(backend_error)?;
    }
    Ok(())
}
