"""A store written in Python over the standard library's sqlite3: what an app with its own
database hands olmo (`olmo.OlmoStore.foreign`). Compare-and-swap commits inside one
`BEGIN IMMEDIATE` transaction, so two connections on one file never overwrite each other."""

import asyncio
import sqlite3
import threading
from typing import List, Optional

import olmo

SCHEMA = """CREATE TABLE IF NOT EXISTS records (
    tbl TEXT NOT NULL, key BLOB NOT NULL, version INTEGER NOT NULL, value BLOB NOT NULL,
    PRIMARY KEY (tbl, key)) WITHOUT ROWID"""


class SqliteStore(olmo.StoreBackend):
    def __init__(self, path: str):
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(SCHEMA)
        self.lock = threading.Lock()

    def get(self, table: str, key: bytes) -> Optional[olmo.StoreRecord]:
        with self.lock:
            row = self.db.execute("SELECT version, value FROM records WHERE tbl=? AND key=?", (table, key)).fetchone()
        return olmo.StoreRecord(version=row[0], value=row[1]) if row else None

    def get_many(self, table: str, keys: List[bytes]) -> List[Optional[olmo.StoreRecord]]:
        return [self.get(table, key) for key in keys]

    def scan(self, table: str, range: olmo.StoreKeyRange, limit: int) -> List[olmo.StoreEntry]:
        clauses, args = ["tbl=?"], [table]
        for bound, inclusive, exclusive in ((range.start, ">=", ">"), (range.end, "<=", "<")):
            if bound.is_INCLUDED():
                clauses.append(f"key {inclusive} ?")
                args.append(bound.key)
            elif bound.is_EXCLUDED():
                clauses.append(f"key {exclusive} ?")
                args.append(bound.key)
        sql = f"SELECT key, version, value FROM records WHERE {' AND '.join(clauses)} ORDER BY key LIMIT ?"
        with self.lock:
            rows = self.db.execute(sql, (*args, limit)).fetchall()
        return [olmo.StoreEntry(key=k, record=olmo.StoreRecord(version=v, value=val)) for k, v, val in rows]

    def commit(self, writes: List[olmo.StoreWrite]) -> None:
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                for write in writes:
                    row = self.db.execute(
                        "SELECT version FROM records WHERE tbl=? AND key=?", (write.table, write.key)
                    ).fetchone()
                    found = row[0] if row else None
                    if found != write.expected_version:
                        raise olmo.StoreFailure.Conflict(
                            table=write.table, key=write.key,
                            expected_version=write.expected_version, found_version=found,
                        )
                for write in writes:
                    if write.value is None:
                        self.db.execute("DELETE FROM records WHERE tbl=? AND key=?", (write.table, write.key))
                    else:
                        self.db.execute(
                            "INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?)",
                            (write.table, write.key, (write.expected_version or 0) + 1, write.value),
                        )
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise


class AsyncSqliteStore(olmo.AsyncStoreBackend):
    """The same store with `async def` methods (`olmo.OlmoStore.foreign_async`), as an app on an
    async database driver writes it; each method yields to the event loop once, so the machine
    really waits on a suspended coroutine."""

    def __init__(self, path: str):
        self.inner = SqliteStore(path)

    async def get(self, table: str, key: bytes) -> Optional[olmo.StoreRecord]:
        await asyncio.sleep(0)
        return self.inner.get(table, key)

    async def get_many(self, table: str, keys: List[bytes]) -> List[Optional[olmo.StoreRecord]]:
        await asyncio.sleep(0)
        return self.inner.get_many(table, keys)

    async def scan(self, table: str, range: olmo.StoreKeyRange, limit: int) -> List[olmo.StoreEntry]:
        await asyncio.sleep(0)
        return self.inner.scan(table, range, limit)

    async def commit(self, writes: List[olmo.StoreWrite]) -> None:
        await asyncio.sleep(0)
        self.inner.commit(writes)
