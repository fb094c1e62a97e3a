//! What a backend stores and the four operations it offers.

use std::fmt;
use std::future::{Future, ready};
use std::ops::Bound;

use thiserror::Error;

/// `Send` where threads exist; nothing on `wasm32`, where IndexedDB and JavaScript stores hand
/// out futures that are not `Send`.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSend: Send {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + ?Sized> MaybeSend for T {}

/// `Send` where threads exist; nothing on `wasm32`, where IndexedDB and JavaScript stores hand
/// out futures that are not `Send`.
#[cfg(target_arch = "wasm32")]
pub trait MaybeSend {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSend for T {}

/// `Sync` where threads exist; nothing on `wasm32`.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSync: Sync {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Sync + ?Sized> MaybeSync for T {}

/// `Sync` where threads exist; nothing on `wasm32`.
#[cfg(target_arch = "wasm32")]
pub trait MaybeSync {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSync for T {}

/// A stored record: opaque (sealed) bytes and the version the last commit gave them. A record's
/// first version is 1 and each put adds one, so a version is never seen twice for one key.
#[derive(Clone, PartialEq, Eq)]
pub struct Record {
    /// The version of this value.
    pub version: u64,
    /// The bytes, as the core sealed them.
    pub value: Vec<u8>,
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("version", &self.version)
            .field("bytes", &self.value.len())
            .finish()
    }
}

/// What a write expects to find: the compare half of compare-and-swap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Expect {
    /// No record under the key.
    Absent,
    /// The record at exactly this version.
    Version(u64),
}

/// "absent" or "version N", for messages (written out, not `Debug`: the `.wasm` package is
/// built with `Debug` formatting compiled out).
impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::Absent => f.write_str("absent"),
            Expect::Version(version) => write!(f, "version {version}"),
        }
    }
}

impl Expect {
    /// What a record (or its absence) satisfies.
    pub fn of(record: Option<&Record>) -> Self {
        record.map_or(Expect::Absent, |r| Expect::Version(r.version))
    }

    /// Whether a stored version (`None`: absent) is what this expects.
    pub fn matches(self, found: Option<u64>) -> bool {
        match self {
            Expect::Absent => found.is_none(),
            Expect::Version(v) => found == Some(v),
        }
    }

    /// The version a put under this expectation gives the record.
    pub fn next_version(self) -> u64 {
        match self {
            Expect::Absent => 1,
            Expect::Version(v) => v.saturating_add(1),
        }
    }
}

/// One put or delete of a [`Batch`].
#[derive(Clone, PartialEq, Eq)]
pub struct Write {
    /// The table.
    pub table: String,
    /// The record key.
    pub key: Vec<u8>,
    /// What must be stored now for the batch to apply.
    pub expect: Expect,
    /// The new value, or `None` to delete.
    pub value: Option<Vec<u8>>,
}

impl Write {
    /// The error for this write finding `found` (a version, or `None`: absent) where it
    /// expected otherwise: what a backend returns for a batch it refuses.
    pub fn conflict(&self, found: Option<u64>) -> StoreError {
        StoreError::Conflict(Box::new(Conflict {
            table: self.table.clone(),
            key: self.key.clone(),
            expected: self.expect,
            found,
        }))
    }
}

impl fmt::Debug for Write {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Write")
            .field("table", &self.table)
            .field("key", &Hex(&self.key))
            .field("expect", &self.expect)
            .field("put", &self.value.as_ref().map(Vec::len))
            .finish()
    }
}

/// What a commit must survive once [`Backend::commit`] returned. Every returned commit
/// survives the process being killed, whatever its class; the class only says whether it must
/// also survive a power loss or an operating-system crash.
///
/// The rule for marking a commit [`CommitDurability::LossTolerant`]: losing it after a power
/// loss must be harmless, that is, the state before it must still be a state the protocol can
/// go on from without alarm and without losing a key. A room event's replay entry and its
/// inbound Megolm session's advance are (lost, the event is recorded again at its next
/// decrypt). Anything that authorises outgoing ciphertext, consumes a one-time key, creates or
/// rotates keys, or holds the application's own records is not, and stays
/// [`CommitDurability::Durable`], the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum CommitDurability {
    /// On stable storage when the commit returns (the default).
    #[default]
    Durable,
    /// May be lost, whole, on a power loss or an operating-system crash, but never without
    /// the commits that followed it: a backend that honours this keeps the order of commits
    /// (a write-ahead log does, so a later durable commit makes the earlier ones durable too).
    /// Atomicity and the compare-and-swap checks are unchanged. Backends that cannot relax (or
    /// choose not to) treat it as [`CommitDurability::Durable`].
    LossTolerant,
}

/// Writes applied all or nothing by [`Backend::commit`]. At most one write per (table, key).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// The writes, in the order they were added.
    pub writes: Vec<Write>,
    /// What the commit must survive; [`CommitDurability::Durable`] unless the operation
    /// declared otherwise.
    pub durability: CommitDurability,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a put.
    pub fn put(&mut self, table: &str, key: &[u8], expect: Expect, value: Vec<u8>) {
        self.writes.push(Write {
            table: table.to_owned(),
            key: key.to_vec(),
            expect,
            value: Some(value),
        });
    }

    /// Adds a delete.
    pub fn delete(&mut self, table: &str, key: &[u8], expect: Expect) {
        self.writes.push(Write {
            table: table.to_owned(),
            key: key.to_vec(),
            expect,
            value: None,
        });
    }

    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// Checks what every backend must refuse before touching storage: two writes to one
    /// record, an empty table name, or a delete that expects nothing there.
    pub fn validate(&self) -> Result<(), StoreError> {
        // A hash set: a batch of room events holds tens of thousands of writes.
        let mut seen = std::collections::HashSet::with_capacity(self.writes.len());
        for write in &self.writes {
            if write.table.is_empty() {
                return Err(StoreError::InvalidBatch("empty table name"));
            }
            if !seen.insert((write.table.as_str(), write.key.as_slice())) {
                return Err(StoreError::InvalidBatch("two writes to one record"));
            }
            if write.value.is_none() && write.expect == Expect::Absent {
                return Err(StoreError::InvalidBatch("a delete must expect a version"));
            }
        }
        Ok(())
    }
}

/// Which keys of a table a [`Backend::scan`] visits, in increasing byte order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    /// The lower bound.
    pub start: Bound<Vec<u8>>,
    /// The upper bound.
    pub end: Bound<Vec<u8>>,
}

impl KeyRange {
    /// Every key.
    pub fn all() -> Self {
        Self {
            start: Bound::Unbounded,
            end: Bound::Unbounded,
        }
    }

    /// Every key starting with `prefix`.
    pub fn prefix(prefix: &[u8]) -> Self {
        let end = prefix_end(prefix).map_or(Bound::Unbounded, Bound::Excluded);
        Self {
            start: Bound::Included(prefix.to_vec()),
            end,
        }
    }

    /// The same range from just after `key`: the next page after a scan that ended at `key`.
    pub fn after(&self, key: &[u8]) -> Self {
        Self {
            start: Bound::Excluded(key.to_vec()),
            end: self.end.clone(),
        }
    }

    /// Whether `key` lies in the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        let above = match &self.start {
            Bound::Included(s) => key >= s.as_slice(),
            Bound::Excluded(s) => key > s.as_slice(),
            Bound::Unbounded => true,
        };
        let below = match &self.end {
            Bound::Included(e) => key <= e.as_slice(),
            Bound::Excluded(e) => key < e.as_slice(),
            Bound::Unbounded => true,
        };
        above && below
    }
}

/// The smallest key greater than every key starting with `prefix` (`None`: there is none).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// A record that was not as a write expected: another process committed first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The table.
    pub table: String,
    /// The record key.
    pub key: Vec<u8>,
    /// What the write expected.
    pub expected: Expect,
    /// The version found (`None`: absent).
    pub found: Option<u64>,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "record {}/{} changed: expected {}, found ",
            self.table,
            Hex(&self.key),
            self.expected,
        )?;
        match self.found {
            Some(version) => write!(f, "version {version}"),
            None => f.write_str("none"),
        }
    }
}

/// Why a store operation failed. After any error of [`Backend::commit`], nothing of the batch
/// was applied.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A write's expectation failed (compare-and-swap): reload and retry.
    #[error("conflict: {0}")]
    Conflict(Box<Conflict>),
    /// The batch breaks the contract (a caller bug, not a storage fault).
    #[error("invalid batch: {0}")]
    InvalidBatch(&'static str),
    /// A record did not open under the store key: altered, moved to another key, or rolled
    /// forward by hand. Delete it (its table and key are given) to go on without it.
    #[error("record {table}/{key} does not open (altered or moved)")]
    Corrupt {
        /// The table.
        table: String,
        /// The record key, in hex.
        key: String,
    },
    /// The record opened but its contents were written by a newer olmo.
    #[error("record {table} has schema {found}, newer than this build reads")]
    NewerSchema {
        /// The table.
        table: String,
        /// The schema found.
        found: u16,
    },
    /// The backend failed (I/O, the database, the host's own store); its message, which never
    /// holds record contents (backends only see sealed bytes).
    #[error("backend: {0}")]
    Backend(String),
}

/// A backend's token for the state of its storage ([`Backend::generation`]): two equal tokens
/// from one handle mean that no commit was applied in between, by anyone. Opaque: only
/// compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Generation(u64, u64);

impl Generation {
    /// A token made of two numbers (for example a commit counter and the database's own
    /// change counter); tokens are equal when both are.
    pub fn new(first: u64, second: u64) -> Self {
        Self(first, second)
    }
}

/// What [`Backend::commit_tracked`] reports of a commit it applied: the generation of the
/// storage just before the batch applied and just after, both read atomically with it (no
/// other commit can fall between `before` and the batch, nor between the batch and `after`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// The generation the batch was applied on.
    pub before: Generation,
    /// The generation the batch made.
    pub after: Generation,
}

/// Where records live. Implemented by the memory and SQLite backends, and by the application
/// for its own storage (IndexedDB, a platform database, a network database).
///
/// Contract, checked for every backend by [`conformance`](super::conformance):
/// - a [`Batch`] is applied all or nothing, atomically with respect to every other commit, by
///   every process sharing the storage;
/// - each write carries the [`Expect`]ation it was computed from; if any fails, nothing applies
///   and the result is [`StoreError::Conflict`] naming that record;
/// - a put stores the value at [`Expect::next_version`];
/// - reads return what the last successful commit left, and [`Backend::scan`] visits keys in
///   increasing byte order, at most `limit` of them;
/// - a returned commit survives the process being killed; a [`CommitDurability::Durable`]
///   one (the default) also survives a power loss, a [`CommitDurability::LossTolerant`] one
///   may be lost then, whole, and only together with the commits after it;
/// - a backend that reports a [`Backend::generation`] changes it with every commit applied to
///   the storage, by any handle or process, and reports with each of its own commits the
///   generations around it ([`Backend::commit_tracked`]).
pub trait Backend: MaybeSend + MaybeSync {
    /// One record.
    fn get(
        &self,
        table: &str,
        key: &[u8],
    ) -> impl Future<Output = Result<Option<Record>, StoreError>> + MaybeSend;

    /// Several records of one table, in the order of `keys`.
    fn get_many(
        &self,
        table: &str,
        keys: &[Vec<u8>],
    ) -> impl Future<Output = Result<Vec<Option<Record>>, StoreError>> + MaybeSend;

    /// Up to `limit` records of `range` in increasing key order; continue with
    /// [`KeyRange::after`] the last key returned.
    fn scan(
        &self,
        table: &str,
        range: &KeyRange,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(Vec<u8>, Record)>, StoreError>> + MaybeSend;

    /// Applies the batch all or nothing.
    fn commit(&self, batch: Batch) -> impl Future<Output = Result<(), StoreError>> + MaybeSend;

    /// The storage's generation now, if the backend tracks one: a token that stays equal as
    /// long as no commit is applied to the storage, by this handle or any other (another
    /// connection, another process), and changes with every commit applied. So a caller that
    /// holds what it read at generation `g` and finds `g` again may use it without reading.
    /// Tokens are only compared, and only those of one handle. A failed commit applies
    /// nothing and need not change it; a spurious change only costs the caller a read.
    ///
    /// The default, `None`, tracks nothing: callers read everything at every operation, as
    /// they must from a backend that cannot tell (PostgreSQL, IndexedDB, application stores).
    /// A backend that returns `Some` here must also implement [`Backend::commit_tracked`].
    fn generation(&self) -> impl Future<Output = Option<Generation>> + MaybeSend {
        ready(None)
    }

    /// As [`Backend::commit`], also reporting, for a backend that tracks its
    /// [`Backend::generation`], the generations just before and just after the batch applied
    /// ([`Committed`]), read atomically with it: `after` is what `generation` gives until the
    /// next commit by anyone. `None` from a backend that tracks none (the default).
    fn commit_tracked(
        &self,
        batch: Batch,
    ) -> impl Future<Output = Result<Option<Committed>, StoreError>> + MaybeSend {
        let commit = self.commit(batch);
        async move { commit.await.map(|()| None) }
    }

    /// Whether the records live only in this process's memory, die with it, and are read by
    /// nobody else: then there is nothing at rest for sealing to protect (the storage key sits
    /// in the same memory), and the Matrix machine stores them framed but not encrypted,
    /// sparing an XChaCha20-Poly1305 seal or open per record ([`Sealer::passing_through`]);
    /// other machines seal them as always. Record keys are the same keyed hashes either way. Only [`MemoryStore::ephemeral`] says yes; every
    /// backend that persists, or that other code can read (SQLite, PostgreSQL, IndexedDB, an
    /// application's own store), keeps the default, `false`, and gets sealed records only.
    /// Such a store's records hold their plaintext: it wipes those it replaces, removes or
    /// drops, and the machine those it reads (in a [`Txn`](super::Txn), or scanned for their
    /// keys).
    ///
    /// [`Sealer::passing_through`]: super::Sealer::passing_through
    /// [`MemoryStore::ephemeral`]: super::MemoryStore::ephemeral
    fn is_ephemeral(&self) -> bool {
        false
    }
}

/// Bytes as lowercase hex, for messages.
pub(crate) struct Hex<'a>(pub(crate) &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written out field by field: the `.wasm` package is built with `Debug` formatting
    /// compiled out, and this message reaches JavaScript.
    #[test]
    fn a_conflict_says_what_was_expected_and_found() {
        let conflict = |expected, found| {
            Conflict {
                table: "sessions".into(),
                key: vec![0xab, 1],
                expected,
                found,
            }
            .to_string()
        };
        assert_eq!(
            conflict(Expect::Version(3), None),
            "record sessions/ab01 changed: expected version 3, found none"
        );
        assert_eq!(
            conflict(Expect::Absent, Some(7)),
            "record sessions/ab01 changed: expected absent, found version 7"
        );
    }
}
