//! When an outbound session must be replaced.
//!
//! Clients rotate a room's session after a number of messages or an age, both taken from the
//! room's `m.room.encryption` event (`rotation_period_msgs`, `rotation_period_ms`) and clamped:
//! 1 to 10,000 messages and at least one hour, 100 messages and one week when unset. A member
//! leaving or a device being removed forces a rotation at once. Time is passed in by the
//! caller, so nothing here reads a clock.

use std::time::Duration;

pub use crate::time::Timestamp;

/// How long an outbound session may be used. Built through [`RotationPolicy::new`] or
/// [`RotationPolicy::from_room_settings`], which clamp to the limits clients apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationPolicy {
    max_messages: u32,
    max_age: Duration,
}

impl RotationPolicy {
    /// Messages per session when the room does not say.
    pub const DEFAULT_MESSAGES: u32 = 100;
    /// Session lifetime when the room does not say: one week.
    pub const DEFAULT_AGE: Duration = Duration::from_secs(7 * 24 * 60 * 60);
    /// The most messages a room may ask for.
    pub const MAX_MESSAGES: u32 = 10_000;
    /// The shortest lifetime a room may ask for: one hour.
    pub const MIN_AGE: Duration = Duration::from_secs(60 * 60);

    /// A policy of at most `max_messages` messages (clamped to 1..=10,000) and `max_age`
    /// (at least one hour).
    pub fn new(max_messages: u32, max_age: Duration) -> Self {
        Self {
            max_messages: max_messages.clamp(1, Self::MAX_MESSAGES),
            max_age: max_age.max(Self::MIN_AGE),
        }
    }

    /// The policy of a room's `m.room.encryption` content, defaults for absent fields.
    pub fn from_room_settings(
        rotation_period_msgs: Option<u64>,
        rotation_period_ms: Option<u64>,
    ) -> Self {
        let messages = rotation_period_msgs.map_or(Self::DEFAULT_MESSAGES, |count| {
            u32::try_from(count).unwrap_or(u32::MAX)
        });
        let age = rotation_period_ms.map_or(Self::DEFAULT_AGE, Duration::from_millis);
        Self::new(messages, age)
    }

    /// The message limit.
    pub fn max_messages(&self) -> u32 {
        self.max_messages
    }

    /// The age limit.
    pub fn max_age(&self) -> Duration {
        self.max_age
    }
}

impl Default for RotationPolicy {
    fn default() -> Self {
        Self::new(Self::DEFAULT_MESSAGES, Self::DEFAULT_AGE)
    }
}

/// Why an outbound session must be replaced before the next message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationReason {
    /// It has encrypted the policy's number of messages.
    MessageCount,
    /// It is older than the policy allows.
    Age,
    /// It was invalidated: a member left or a device was removed, so its key has reached
    /// someone who must not read what comes next.
    Invalidated,
}
