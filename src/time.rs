//! Time as the protocols see it. The core never reads a clock on its own: every operation that
//! depends on time (rotation, signed pre-key age) takes a [`Timestamp`], and the application
//! passes in the time it trusts.

use std::time::Duration;

/// Milliseconds since the Unix epoch, Matrix's unit of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    /// A timestamp from milliseconds since the Unix epoch.
    pub const fn from_millis(millis: u64) -> Self {
        Self(millis)
    }

    /// The system clock's time: the one place the crate reads a clock, a convenience for
    /// native callers. Not on `wasm32`, where `SystemTime::now` panics: pass the time in.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn now() -> Self {
        use std::time::{SystemTime, UNIX_EPOCH};

        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Self(u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX))
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// The time elapsed from `earlier` to `self`; zero if `earlier` is later (a clock set back
    /// must not make a session immortal, so age is also bounded by message count).
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}
