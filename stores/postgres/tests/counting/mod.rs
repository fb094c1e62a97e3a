//! A backend that counts the compare-and-swap conflicts its commits met (the machine retries
//! them itself, so the caller never sees them).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use olmo::store::{Backend, Batch, KeyRange, MaybeSend, Record, StoreError};

pub struct ConflictCounting<B> {
    inner: B,
    conflicts: Arc<AtomicU64>,
}

impl<B> ConflictCounting<B> {
    pub fn new(inner: B, conflicts: Arc<AtomicU64>) -> Self {
        Self { inner, conflicts }
    }
}

impl<B: Backend> Backend for ConflictCounting<B> {
    fn get(
        &self,
        table: &str,
        key: &[u8],
    ) -> impl Future<Output = Result<Option<Record>, StoreError>> + MaybeSend {
        self.inner.get(table, key)
    }

    fn get_many(
        &self,
        table: &str,
        keys: &[Vec<u8>],
    ) -> impl Future<Output = Result<Vec<Option<Record>>, StoreError>> + MaybeSend {
        self.inner.get_many(table, keys)
    }

    fn scan(
        &self,
        table: &str,
        range: &KeyRange,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(Vec<u8>, Record)>, StoreError>> + MaybeSend {
        self.inner.scan(table, range, limit)
    }

    fn commit(&self, batch: Batch) -> impl Future<Output = Result<(), StoreError>> + MaybeSend {
        let commit = self.inner.commit(batch);
        let conflicts = Arc::clone(&self.conflicts);
        async move {
            let result = commit.await;
            if let Err(StoreError::Conflict(_)) = result {
                conflicts.fetch_add(1, Ordering::SeqCst);
            }
            result
        }
    }
}
