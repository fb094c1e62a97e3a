//! The store contract: records kept by a [`Backend`] under (table, key), each with a version,
//! read with `get`, `get_many` and paginated `scan`, and changed only by `commit(batch)`, all or
//! nothing, every write compare-and-swap on the version it was computed from.
//!
//! The core seals every record before a backend sees it ([`Sealer`]), and an operation works
//! in one [`Txn`]: it reads what it needs, changes it in memory, and commits once. Nothing an
//! operation produces (a ciphertext to send, a plaintext to show) is handed out before that
//! commit succeeded; when another process committed first, the commit is a
//! [`StoreError::Conflict`] and the operation runs again on fresh reads.
//!
//! Every returned commit survives the process being killed. By default it also survives a
//! power loss; an operation may mark its commit [`CommitDurability::LossTolerant`] when losing
//! it then is harmless (a room event's replay entry and ratchet advance: the event is recorded
//! again at its next decrypt), never when it authorises outgoing ciphertext, consumes a
//! one-time key, creates or rotates keys, or carries the application's records. Backends that
//! honour the mark keep commit order, so a later durable commit makes the earlier ones durable.
//!
//! A backend may report a [`Generation`] that changes with every commit applied by anyone
//! ([`Backend::generation`]): a machine then keeps the records an operation read and committed
//! ([`Known`]) and the next operation, finding the same generation, reads them from there. The
//! default reports none, and every operation reads from the backend.
//!
//! Backends: [`MemoryStore`] here; SQLite, IndexedDB, PostgreSQL and stores written by the
//! application live outside the core. Every backend runs the same [`conformance`] suite.

mod backend;
mod block_on;
pub mod conformance;
mod known;
mod memory;
pub(crate) mod records;
mod seal;
mod transact;
mod txn;

pub use backend::{
    Backend, Batch, CommitDurability, Committed, Conflict, Expect, Generation, KeyRange, MaybeSend,
    MaybeSync, Record, StoreError, Write,
};
pub use block_on::block_on;
pub use known::{Known, KnownSlot};
pub use memory::MemoryStore;
pub(crate) use seal::NAME_LEN;
pub use seal::Sealer;
pub use transact::MAX_ATTEMPTS;
pub(crate) use transact::{Retryable, transact, transact_known};
pub use txn::{Opened, Savepoint, Txn};
