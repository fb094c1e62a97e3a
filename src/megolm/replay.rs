//! Replay detection: which event each (session, message index) was first seen in.
//!
//! A Megolm message can be copied into a second event, and a server can do it. Decrypting the
//! same index again is normal (a client re-reads its timeline), but decrypting it for a
//! different event means someone replayed the ciphertext. The record is the caller's to keep
//! and persist next to its sessions; neither vodozemac nor matrix-sdk-crypto keeps one.

use std::collections::HashMap;
use std::fmt;

use thiserror::Error;

use crate::crypto::sha256;

/// A message index was already seen in another event.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("message {message_index} of session {session_id} was first seen in another event")]
pub struct Replay {
    /// The session's id.
    pub session_id: String,
    /// The reused index.
    pub message_index: u32,
}

/// The record of (session id, message index) → event, stored as a SHA-256 of the event's
/// identity so that the record reveals nothing of the room's events.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ReplayRecord {
    pub(crate) seen: HashMap<(String, u32), [u8; 32]>,
}

impl ReplayRecord {
    /// An empty record.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `message_index` of `session_id` was decrypted for the event `event_id`
    /// (the event id, or any identity the caller prefers, such as a hash of the event). The
    /// same event again is fine; a different event for a seen index is a [`Replay`] and leaves
    /// the record unchanged.
    pub fn check(
        &mut self,
        session_id: &str,
        message_index: u32,
        event_id: &str,
    ) -> Result<(), Replay> {
        let event = sha256(&[event_id.as_bytes()]);
        let key = (session_id.to_owned(), message_index);
        match self.seen.get(&key) {
            Some(first) if *first != event => Err(Replay {
                session_id: key.0,
                message_index,
            }),
            Some(_) => Ok(()),
            None => {
                self.seen.insert(key, event);
                Ok(())
            }
        }
    }

    /// Forgets a session's entries (when the session itself is deleted).
    pub fn forget_session(&mut self, session_id: &str) {
        self.seen.retain(|(session, _), _| session != session_id);
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether the record is empty.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

impl fmt::Debug for ReplayRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayRecord")
            .field("entries", &self.seen.len())
            .finish()
    }
}
