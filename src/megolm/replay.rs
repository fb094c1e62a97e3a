//! Replay detection: which event each (session, message index) was first seen in.
//!
//! A Megolm message can be copied into a second event, and a server can do it. Decrypting the
//! same index again is normal (a client re-reads its timeline), but decrypting it for a
//! different event means someone replayed the ciphertext. The record is the caller's to keep
//! and persist next to its sessions; neither vodozemac nor matrix-sdk-crypto keeps one.
//!
//! Only a message that decrypted can be recorded: [`ReplayRecord::check`] takes the
//! [`DecryptedMessage`], which only a successful decrypt makes. Were an index recorded before
//! its message was authenticated, a forged message carrying a genuine event's index would
//! claim that index first, and the genuine event would then read as the replay.

mod storage;

use std::collections::BTreeMap;
use std::fmt;

use thiserror::Error;

use super::inbound::DecryptedMessage;
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
///
/// It holds at most [`ReplayRecord::MAX_ENTRIES`]. When full, recording a new index first
/// drops the oldest (lowest) index of the same session, which is the new one itself if it is
/// lower than all the session's others; a session not yet in the record takes the place of
/// the oldest index of the session with the most entries (the first by id on a tie). A dropped
/// index is no longer guarded: its message could then be replayed unnoticed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ReplayRecord {
    /// Per session id, message index → SHA-256 of the event.
    seen: BTreeMap<String, BTreeMap<u32, [u8; 32]>>,
    entries: usize,
}

impl ReplayRecord {
    /// The most entries a record holds, and the most a stored record may hold: 65,536, some
    /// 650 sessions of 100 messages (the usual rotation). An entry is about 80 bytes stored
    /// (a 43-character session id, an index, a hash), so a full record stores in under 6 MB.
    pub const MAX_ENTRIES: usize = 1 << 16;

    /// An empty record.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that the message behind `decrypted` came in the event `event_id` (the event
    /// id, or any identity the caller prefers, such as a hash of the event). The
    /// same event again is fine; a different event for a seen index is a [`Replay`] and leaves
    /// the record unchanged.
    pub fn check(&mut self, decrypted: &DecryptedMessage, event_id: &str) -> Result<(), Replay> {
        let session_id = decrypted.session_id();
        let message_index = decrypted.message_index;
        let event = sha256(&[event_id.as_bytes()]);
        let first = self
            .seen
            .get(session_id)
            .and_then(|indices| indices.get(&message_index));
        match first {
            Some(first) if *first != event => Err(Replay {
                session_id: session_id.to_owned(),
                message_index,
            }),
            Some(_) => Ok(()),
            None => {
                self.insert(session_id, message_index, event);
                Ok(())
            }
        }
    }

    /// Adds or replaces an entry, dropping one by the eviction rule when the record is full.
    pub(crate) fn insert(&mut self, session_id: &str, message_index: u32, event: [u8; 32]) {
        if let Some(first) = self
            .seen
            .get_mut(session_id)
            .and_then(|indices| indices.get_mut(&message_index))
        {
            *first = event;
            return;
        }
        if self.entries >= Self::MAX_ENTRIES && !self.evict_for(session_id, message_index) {
            return;
        }
        self.seen
            .entry(session_id.to_owned())
            .or_default()
            .insert(message_index, event);
        self.entries += 1;
    }

    /// Makes room for a new entry; false if the new entry is itself the one to drop.
    fn evict_for(&mut self, session_id: &str, message_index: u32) -> bool {
        let victim = match self.seen.get(session_id) {
            Some(_) => session_id.to_owned(),
            None => match self.largest_session() {
                Some(largest) => largest,
                None => return false,
            },
        };
        let Some(indices) = self.seen.get_mut(&victim) else {
            return false;
        };
        match indices.first_key_value() {
            Some((oldest, _)) if victim == session_id && *oldest > message_index => false,
            Some(_) => {
                indices.pop_first();
                if indices.is_empty() {
                    self.seen.remove(&victim);
                }
                self.entries -= 1;
                true
            }
            None => false,
        }
    }

    /// The session with the most entries, the first by id on a tie.
    fn largest_session(&self) -> Option<String> {
        let mut largest: Option<(&String, usize)> = None;
        for (session_id, indices) in &self.seen {
            if largest.is_none_or(|(_, most)| indices.len() > most) {
                largest = Some((session_id, indices.len()));
            }
        }
        largest.map(|(session_id, _)| session_id.clone())
    }

    /// Forgets a session's entries (when the session itself is deleted).
    pub fn forget_session(&mut self, session_id: &str) {
        if let Some(indices) = self.seen.remove(session_id) {
            self.entries -= indices.len();
        }
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries
    }

    /// Whether the record is empty.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }
}

impl fmt::Debug for ReplayRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayRecord")
            .field("entries", &self.entries)
            .finish()
    }
}
