//! A [`MemoryStore`] that counts commit calls and reads, remembers what the last applied batch
//! wrote, and can fail one chosen commit (without applying it). The machines' commit and
//! write-fault tests use it. Clones share the records and the counters. Made
//! [`CountingStore::tracking`], it also reports the memory store's generation, so a machine
//! keeps the records it read and committed between operations (and reads fewer).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use olmo::store::{
    Backend, Batch, Committed, Generation, MaybeSend, MemoryStore, Record, StoreError,
};

include!("../../stores/test-support/forward.rs");

#[derive(Clone, Default)]
pub struct CountingStore {
    pub inner: MemoryStore,
    commits: Arc<AtomicU64>,
    reads: Arc<AtomicU64>,
    /// The commit number (as counted by `commits`) that fails, once.
    fail_at: Arc<Mutex<Option<u64>>>,
    failed: Arc<AtomicU64>,
    /// Puts and deletes per table of the last batch applied.
    last_batch: Arc<Mutex<BTreeMap<String, usize>>>,
    /// Whether the generation is reported ([`CountingStore::tracking`]).
    tracking: bool,
}

impl CountingStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store that reports its generation ([`Backend::generation`]).
    pub fn tracking() -> Self {
        Self {
            tracking: true,
            ..Self::default()
        }
    }

    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::SeqCst)
    }

    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::SeqCst)
    }

    /// Injected failures so far.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::SeqCst)
    }

    /// Fails the `n`th commit counted from the store's creation (1-based).
    pub fn fail_commit(&self, n: u64) {
        *self.fail_at.lock().unwrap() = Some(n);
    }

    /// Writes per table in the last batch applied.
    pub fn last_batch(&self) -> BTreeMap<String, usize> {
        self.last_batch.lock().unwrap().clone()
    }

    pub fn snapshot(&self) -> Vec<(String, Vec<u8>, Record)> {
        self.inner.snapshot()
    }

    /// Records of `table`.
    pub fn count(&self, table: &str) -> usize {
        self.snapshot()
            .iter()
            .filter(|(t, _, _)| t == table)
            .count()
    }

    /// Whether this commit is the one chosen to fail (the choice is used up).
    fn takes_failure(&self, n: u64) -> bool {
        let mut fail_at = self.fail_at.lock().unwrap();
        let fail = *fail_at == Some(n);
        if fail {
            *fail_at = None;
        }
        fail
    }
}

impl Backend for CountingStore {
    forward_reads!(
        |this, _table| this.reads.fetch_add(1, Ordering::SeqCst),
        &this.inner
    );

    fn commit(&self, batch: Batch) -> impl Future<Output = Result<(), StoreError>> + MaybeSend {
        let commit = self.commit_counted(batch);
        async move { commit.await.map(|_| ()) }
    }

    fn generation(&self) -> impl Future<Output = Option<Generation>> + MaybeSend {
        let inner = self.tracking.then(|| self.inner.generation());
        async move {
            match inner {
                Some(generation) => generation.await,
                None => None,
            }
        }
    }

    fn commit_tracked(
        &self,
        batch: Batch,
    ) -> impl Future<Output = Result<Option<Committed>, StoreError>> + MaybeSend {
        let commit = self.commit_counted(batch);
        let tracking = self.tracking;
        async move { Ok(commit.await?.filter(|_| tracking)) }
    }
}

impl CountingStore {
    /// A commit, counted, failed if it is the one chosen, else applied: with the generations
    /// around it.
    fn commit_counted(
        &self,
        batch: Batch,
    ) -> impl Future<Output = Result<Option<Committed>, StoreError>> + MaybeSend + 'static {
        let n = self.commits.fetch_add(1, Ordering::SeqCst) + 1;
        let fail = self.takes_failure(n);
        let mut tables = BTreeMap::new();
        for write in &batch.writes {
            *tables.entry(write.table.clone()).or_insert(0) += 1;
        }
        let inner = self.inner.clone();
        let failed = Arc::clone(&self.failed);
        let last_batch = Arc::clone(&self.last_batch);
        async move {
            if fail {
                failed.fetch_add(1, Ordering::SeqCst);
                return Err(StoreError::Backend("injected write failure".into()));
            }
            let committed = inner.commit_tracked(batch).await?;
            *last_batch.lock().unwrap() = tables;
            Ok(committed)
        }
    }
}
