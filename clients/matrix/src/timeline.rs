//! Room timeline events as the client hands them to the application.

use olmo::matrix::{DecryptedRoomEvent, UnableToDecrypt};
use serde_json::Value;

/// One room event from a sync or the room's history.
#[derive(Debug, Clone)]
pub struct TimelineEvent {
    /// The room.
    pub room_id: String,
    /// The event id.
    pub event_id: String,
    /// The sender.
    pub sender: String,
    /// When the sender's homeserver received it (milliseconds since 1970; 0 if not given).
    pub origin_server_ts: u64,
    /// What it holds.
    pub kind: EventKind,
}

/// A timeline event's contents.
#[derive(Debug, Clone)]
pub enum EventKind {
    /// Sent in the clear (state events included).
    Clear {
        /// The event type.
        event_type: String,
        /// The content.
        content: Value,
    },
    /// An `m.room.encrypted` event, decrypted.
    Decrypted(DecryptedRoomEvent),
    /// An `m.room.encrypted` event that did not decrypt. A missing key is tried again after
    /// later syncs; if it arrives, the event comes again as [`EventKind::Decrypted`].
    Undecryptable(UnableToDecrypt),
    /// An invitation to the room from `sender` (its `event_id` is empty): join to accept.
    Invite,
}

impl TimelineEvent {
    /// The `body` of an `m.room.message`, clear or decrypted.
    pub fn body(&self) -> Option<&str> {
        let (event_type, content) = match &self.kind {
            EventKind::Clear {
                event_type,
                content,
            } => (event_type.as_str(), content),
            EventKind::Decrypted(event) => (event.event_type.as_str(), &event.content),
            EventKind::Undecryptable(_) | EventKind::Invite => return None,
        };
        (event_type == "m.room.message")
            .then(|| content.get("body").and_then(Value::as_str))
            .flatten()
    }

    /// The `msgtype` of an `m.room.message` (`m.text`, `m.notice`, ...), clear or decrypted.
    pub fn msgtype(&self) -> Option<&str> {
        let content = match &self.kind {
            EventKind::Clear { content, .. } => content,
            EventKind::Decrypted(event) => &event.content,
            EventKind::Undecryptable(_) | EventKind::Invite => return None,
        };
        self.body()?;
        content.get("msgtype").and_then(Value::as_str)
    }

    /// The Megolm session of a decrypted event.
    pub fn session_id(&self) -> Option<&str> {
        match &self.kind {
            EventKind::Decrypted(event) => Some(&event.session_id),
            _ => None,
        }
    }
}
