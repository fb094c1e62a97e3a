//! The inbox: a sync's timeline events and invitations, committed with its sync token and kept
//! until the application says it handled them, so a crash between the sync and the answer
//! loses nothing (the events come again from the store at the next start).

use serde_json::{Value, json};
use zeroize::Zeroizing;

use olmo::matrix::AppRecord;

/// The application table and key of the inbox record.
const TABLE: &str = "inbox";
const KEY: &[u8] = b"events";
/// Entries kept at most; the oldest go first (an event whose key never comes must not pile up).
const MAX_ENTRIES: usize = 1024;

/// One entry: an event of a joined room, or an invitation (no event id).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Entry {
    Event { room_id: String, event: Value },
    Invite { room_id: String, sender: String },
}

impl Entry {
    /// The room and event id the application hands back to [`Inbox::remove`] (empty for an
    /// invitation: one per room).
    fn id(&self) -> (&str, &str) {
        match self {
            Self::Event { room_id, event } => (
                room_id,
                event.get("event_id").and_then(Value::as_str).unwrap_or(""),
            ),
            Self::Invite { room_id, .. } => (room_id, ""),
        }
    }
}

/// The entries not handled yet, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Inbox {
    pub(crate) entries: Vec<Entry>,
}

impl Inbox {
    /// The inbox as the store had it (`None`: empty).
    pub(crate) fn load(stored: Option<&[u8]>) -> Self {
        let parsed: Vec<Value> = stored
            .and_then(|bytes| serde_json::from_slice(bytes).ok())
            .unwrap_or_default();
        let entries = parsed
            .into_iter()
            .filter_map(|item| {
                let room_id = item.get("room_id")?.as_str()?.to_owned();
                match item.get("event") {
                    Some(event) => Some(Entry::Event {
                        room_id,
                        event: event.clone(),
                    }),
                    None => Some(Entry::Invite {
                        room_id,
                        sender: item.get("sender")?.as_str()?.to_owned(),
                    }),
                }
            })
            .collect();
        Self { entries }
    }

    /// Adds an entry unless it is there already.
    pub(crate) fn push(&mut self, entry: Entry) {
        if self.entries.iter().any(|e| e.id() == entry.id()) {
            return;
        }
        if self.entries.len() == MAX_ENTRIES {
            self.entries.remove(0);
        }
        self.entries.push(entry);
    }

    /// Forgets the entry of `event_id` in `room_id` (empty: the room's invitation).
    pub(crate) fn remove(&mut self, room_id: &str, event_id: &str) {
        self.entries.retain(|e| e.id() != (room_id, event_id));
    }

    /// The record to commit with the sync token.
    pub(crate) fn record(&self) -> AppRecord {
        let items: Vec<Value> = self
            .entries
            .iter()
            .map(|entry| match entry {
                Entry::Event { room_id, event } => json!({"room_id": room_id, "event": event}),
                Entry::Invite { room_id, sender } => json!({"room_id": room_id, "sender": sender}),
            })
            .collect();
        AppRecord {
            table: TABLE.to_owned(),
            key: KEY.to_vec(),
            value: Zeroizing::new(Value::Array(items).to_string().into_bytes()),
        }
    }

    /// Where the inbox is kept, for [`Machine::app_record`](olmo::matrix::Machine::app_record).
    pub(crate) fn location() -> (&'static str, &'static [u8]) {
        (TABLE, KEY)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn event(room: &str, id: &str) -> Entry {
        Entry::Event {
            room_id: room.to_owned(),
            event: json!({"event_id": id, "type": "m.room.encrypted"}),
        }
    }

    #[test]
    fn the_record_reads_back_and_removal_is_by_room_and_event() {
        let mut inbox = Inbox::default();
        inbox.push(event("!a", "$1"));
        inbox.push(event("!a", "$1"));
        inbox.push(event("!b", "$1"));
        inbox.push(Entry::Invite {
            room_id: "!c".into(),
            sender: "@x:y".into(),
        });
        assert_eq!(inbox.entries.len(), 3, "a duplicate is added once");
        let read = Inbox::load(Some(&inbox.record().value));
        assert_eq!(read.entries, inbox.entries);
        inbox.remove("!a", "$1");
        inbox.remove("!c", "");
        assert_eq!(inbox.entries, vec![event("!b", "$1")]);
    }

    #[test]
    fn the_oldest_entries_go_first_and_garbage_reads_as_empty() {
        let mut inbox = Inbox::default();
        for n in 0..=MAX_ENTRIES {
            inbox.push(event("!a", &format!("${n}")));
        }
        assert_eq!(inbox.entries.len(), MAX_ENTRIES);
        assert_eq!(inbox.entries[0], event("!a", "$1"));
        assert!(Inbox::load(Some(b"not json")).entries.is_empty());
        assert!(Inbox::load(None).entries.is_empty());
    }
}
