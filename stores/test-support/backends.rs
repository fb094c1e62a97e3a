//! Backend wrappers the store crates' tests share (included with `#[path]`): one counts the
//! compare-and-swap conflicts its commits met (the machine retries them itself, so the caller
//! never sees them); one fails a chosen commit, in one of the ways a database write fails.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use olmo::store::{Backend, Batch, MaybeSend, StoreError};

include!("forward.rs");

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
    forward_reads!(|this| &this.inner);

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

/// How the chosen commit fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The write is refused: nothing of it is applied.
    Refused,
    /// The write is applied but its answer is lost (the connection dropped after the server
    /// committed): the caller sees an error for a commit that landed.
    AnswerLost,
    /// A hook runs first (a test drops the database connection there), then the commit goes
    /// to the backend as it is: whatever the backend does with a dropped connection.
    Hook,
}

/// A backend that fails its `n`th commit (1-based, counted over all clones), once. Clones
/// share the backend and the counters.
pub struct FailingCommits<B> {
    inner: Arc<B>,
    commits: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    plan: Arc<Mutex<Option<(u64, Fault)>>>,
    hook: Arc<dyn Fn() + Send + Sync>,
}

impl<B> FailingCommits<B> {
    /// Fails nothing until told to.
    pub fn new(inner: B) -> Self {
        Self::shared(Arc::new(inner))
    }

    /// Over a backend other wrappers share (one database handle for many runs).
    pub fn shared(inner: Arc<B>) -> Self {
        Self {
            inner,
            commits: Arc::default(),
            failed: Arc::default(),
            plan: Arc::default(),
            hook: Arc::new(|| {}),
        }
    }

    /// With `hook` run before the commit that fails with [`Fault::Hook`].
    pub fn with_hook(mut self, hook: impl Fn() + Send + Sync + 'static) -> Self {
        self.hook = Arc::new(hook);
        self
    }

    /// Fails the `n`th commit (counted from the wrapper's creation) with `fault`.
    pub fn fail_commit(&self, n: u64, fault: Fault) {
        *self.plan.lock().unwrap() = Some((n, fault));
    }

    /// Commits attempted so far, the failed one included.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::SeqCst)
    }

    /// Commits made to fail so far.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::SeqCst)
    }

    /// The fault the next commit meets, if any.
    pub fn next_fault(&self) -> Option<Fault> {
        let plan = *self.plan.lock().unwrap();
        plan.filter(|(n, _)| *n == self.commits() + 1)
            .map(|(_, fault)| fault)
    }

    pub fn inner(&self) -> &B {
        &self.inner
    }
}

impl<B> Clone for FailingCommits<B> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            commits: Arc::clone(&self.commits),
            failed: Arc::clone(&self.failed),
            plan: Arc::clone(&self.plan),
            hook: Arc::clone(&self.hook),
        }
    }
}

impl<B: Backend> Backend for FailingCommits<B> {
    forward_reads!(|this| &*this.inner);

    fn commit(&self, batch: Batch) -> impl Future<Output = Result<(), StoreError>> + MaybeSend {
        let fault = self.next_fault();
        self.commits.fetch_add(1, Ordering::SeqCst);
        if fault.is_some() {
            *self.plan.lock().unwrap() = None;
            self.failed.fetch_add(1, Ordering::SeqCst);
        }
        if fault == Some(Fault::Hook) {
            (self.hook)();
        }
        let commit = (fault != Some(Fault::Refused)).then(|| self.inner.commit(batch));
        async move {
            let Some(commit) = commit else {
                return Err(StoreError::Backend("injected: write refused".into()));
            };
            let result = commit.await;
            match fault {
                Some(Fault::AnswerLost) if result.is_ok() => {
                    Err(StoreError::Backend("injected: answer lost".into()))
                }
                _ => result,
            }
        }
    }
}
