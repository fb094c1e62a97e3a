//! The store contract (`olmo::store`): the conformance suite on the memory backend, sealed
//! records that cannot be read, moved or relabelled, keyed record names, and transactions that
//! commit all or nothing and never overwrite another writer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../common/mod.rs"]
mod common;
mod sealing;
mod transactions;

use olmo::persist::StorageKey;
use olmo::store::{Backend, Batch, Expect, MemoryStore, Sealer, block_on, conformance};

pub fn sealer() -> Sealer {
    Sealer::new(&StorageKey::from_bytes([7; 32]))
}

#[test]
fn memory_store_passes_the_conformance_suite() {
    // Ephemeral or not, the same contract (only the machines' sealing differs).
    for store in [MemoryStore::new(), MemoryStore::ephemeral()] {
        let second = store.clone();
        let passed = block_on(conformance::run(&store, &second)).unwrap();
        assert_eq!(passed, conformance::CHECKS.len());
        assert_eq!(second.is_ephemeral(), store.is_ephemeral());
    }
}

/// A backend that breaks one rule of the contract at a time, so the suite is seen to catch it.
#[derive(Clone, Default)]
struct Broken {
    inner: MemoryStore,
    rule: usize,
}

impl Backend for Broken {
    fn get(
        &self,
        table: &str,
        key: &[u8],
    ) -> impl Future<Output = Result<Option<olmo::store::Record>, olmo::store::StoreError>> + Send
    {
        self.inner.get(table, key)
    }

    fn get_many(
        &self,
        table: &str,
        keys: &[Vec<u8>],
    ) -> impl Future<Output = Result<Vec<Option<olmo::store::Record>>, olmo::store::StoreError>> + Send
    {
        self.inner.get_many(table, keys)
    }

    fn scan(
        &self,
        table: &str,
        range: &olmo::store::KeyRange,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(Vec<u8>, olmo::store::Record)>, olmo::store::StoreError>> + Send
    {
        // Rule 2: ignore the limit.
        let limit = if self.rule == 2 { usize::MAX } else { limit };
        self.inner.scan(table, range, limit)
    }

    fn commit(
        &self,
        mut batch: Batch,
    ) -> impl Future<Output = Result<(), olmo::store::StoreError>> + Send {
        match self.rule {
            // Rule 0: last writer wins (no compare-and-swap).
            0 => {
                for write in &mut batch.writes {
                    let found = block_on(self.inner.get(&write.table, &write.key)).unwrap();
                    write.expect = Expect::of(found.as_ref());
                }
            }
            // Rule 1: apply the writes one by one, so a conflict leaves the earlier ones.
            1 => {
                for write in batch.writes.drain(..) {
                    let mut one = Batch::new();
                    one.writes.push(write);
                    if let Err(e) = block_on(self.inner.commit(one)) {
                        return std::future::ready(Err(e));
                    }
                }
            }
            _ => {}
        }
        std::future::ready(block_on(self.inner.commit(batch)))
    }
}

#[test]
fn the_conformance_suite_catches_broken_backends() {
    let expected = [
        conformance::CHECKS[2], // last writer wins: a stale version is not caught
        conformance::CHECKS[4], // writes applied one by one
        conformance::CHECKS[7], // scan ignores its limit
    ];
    for (rule, check) in expected.into_iter().enumerate() {
        let store = Broken {
            inner: MemoryStore::new(),
            rule,
        };
        let failure = block_on(conformance::run(&store, &store.clone())).unwrap_err();
        assert_eq!(failure.check, check, "rule {rule}: {failure}");
    }
}
