//! The one way the objects hold their core values: a mutex around the value.

use std::sync::{Mutex, MutexGuard};

/// A core value behind a mutex. A panic while the lock was held cannot leave the value half
/// changed (the core plans, then commits), so a poisoned lock is simply taken over.
pub(crate) struct Locked<T>(Mutex<T>);

impl<T> Locked<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(Mutex::new(value))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
