//! One output line per input event, and the summary of a run by status and reason.

use std::collections::BTreeMap;

use olmo::matrix::{DecryptedRoomEvent, UnableToDecrypt};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value, json};

use super::raw_event::{Canonical, RawEvent};

/// The line of an event that decrypted: the event as a client shows it (type and content
/// replaced by the decrypted ones), and how far to trust it. Serialised straight from the
/// event and the decrypted parts, borrowed (no line built as a JSON value first); the keys
/// come in the same sorted order as those of a `serde_json` map.
pub struct Decrypted<'a> {
    /// The encrypted event as it came.
    pub event: Event<'a>,
    /// The room it was decrypted in.
    pub room: &'a str,
    /// What it decrypted to.
    pub decrypted: &'a DecryptedRoomEvent,
}

/// An event as it came: a JSON value, or fields borrowed from its text.
#[derive(Clone, Copy)]
pub enum Event<'a> {
    /// Parsed as a JSON value.
    Json(&'a Value),
    /// Borrowed from its text.
    Raw(&'a RawEvent<'a>),
}

impl Serialize for Decrypted<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut line = serializer.serialize_map(Some(8))?;
        line.serialize_entry("event", &PlainEvent(self))?;
        match self.event {
            Event::Json(event) => line.serialize_entry("event_id", &event.get("event_id"))?,
            Event::Raw(event) => line.serialize_entry(
                "event_id",
                &event.fields.get("event_id").copied().map(Canonical),
            )?,
        }
        line.serialize_entry("forwarded", &self.decrypted.forwarded)?;
        line.serialize_entry("message_index", &self.decrypted.message_index)?;
        line.serialize_entry("room_id", self.room)?;
        line.serialize_entry("session_id", &self.decrypted.session_id)?;
        line.serialize_entry("status", "decrypted")?;
        line.serialize_entry("verified", &self.decrypted.verified)?;
        line.end()
    }
}

/// The event's fields with `type`, `content` and `room_id` replaced, in sorted key order.
struct PlainEvent<'l, 'a>(&'l Decrypted<'a>);

impl Serialize for PlainEvent<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Decrypted {
            event,
            room,
            decrypted,
        } = self.0;
        let replaced = [
            ("content", Field::Json(&decrypted.content)),
            ("room_id", Field::Str(room)),
            ("type", Field::Str(&decrypted.event_type)),
        ];
        match event {
            Event::Json(event) => {
                let empty = Map::new();
                let fields = event.as_object().unwrap_or(&empty);
                merged(
                    serializer,
                    &replaced,
                    fields.iter().map(|(k, v)| (k.as_str(), v)),
                )
            }
            Event::Raw(event) => merged(
                serializer,
                &replaced,
                event.fields.iter().map(|(k, v)| (*k, Canonical(v))),
            ),
        }
    }
}

/// A map of `fields` (in sorted key order) with the `replaced` ones (sorted) in their place.
fn merged<'k, S: Serializer, V: Serialize>(
    serializer: S,
    replaced: &[(&str, Field<'_>)],
    fields: impl Iterator<Item = (&'k str, V)>,
) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(None)?;
    let mut next = replaced.iter().peekable();
    for (key, value) in fields {
        // The replacements that sort before this key go first.
        while let Some((name, field)) = next.next_if(|(name, _)| *name <= key) {
            map.serialize_entry(name, field)?;
        }
        if !replaced.iter().any(|(name, _)| *name == key) {
            map.serialize_entry(key, &value)?;
        }
    }
    for (name, field) in next {
        map.serialize_entry(name, field)?;
    }
    map.end()
}

/// A replaced field's value.
enum Field<'a> {
    Str(&'a str),
    Json(&'a Value),
}

impl Serialize for Field<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Field::Str(text) => serializer.serialize_str(text),
            Field::Json(value) => value.serialize(serializer),
        }
    }
}

/// The line of an event that is not encrypted: passed through.
pub fn unencrypted(event: Value, room: Option<&str>) -> Value {
    json!({
        "status": "unencrypted",
        "event_id": event.get("event_id"),
        "room_id": room,
        "event": event,
    })
}

/// The line of an event that did not decrypt: the typed reason and its particulars.
pub fn failed(event: &Value, room: Option<&str>, error: &UnableToDecrypt) -> Value {
    let event_id = event.get("event_id").cloned().unwrap_or(Value::Null);
    failed_with_id(event_id, room, error)
}

/// [`failed`] given the event's `event_id` (null when it has none).
pub fn failed_with_id(event_id: Value, room: Option<&str>, error: &UnableToDecrypt) -> Value {
    use UnableToDecrypt as U;
    let mut line = Map::new();
    line.insert("status".into(), "failed".into());
    line.insert("reason".into(), reason(error).into());
    line.insert("detail".into(), error.to_string().into());
    line.insert("event_id".into(), event_id);
    line.insert("room_id".into(), room.into());
    match error {
        U::NoSession { session_id } => {
            line.insert("session_id".into(), session_id.as_str().into());
        }
        U::UnknownIndex { index, first_known } => {
            line.insert("message_index".into(), (*index).into());
            line.insert("first_known_index".into(), (*first_known).into());
        }
        U::Withheld { code } => {
            line.insert("code".into(), code.as_str().into());
        }
        U::Replay {
            index,
            first_event_id,
        } => {
            line.insert("message_index".into(), (*index).into());
            line.insert("first_event_id".into(), first_event_id.as_str().into());
        }
        _ => {}
    }
    Value::Object(line)
}

/// The line of an event that names no room while none was given with --room.
pub fn no_room(event: &Value) -> Value {
    no_room_with_id(event.get("event_id").cloned().unwrap_or(Value::Null))
}

/// [`no_room`] given the event's `event_id` (null when it has none).
pub fn no_room_with_id(event_id: Value) -> Value {
    json!({
        "status": "failed",
        "reason": "no_room",
        "detail": "the event names no room_id and --room was not given",
        "event_id": event_id,
        "room_id": null,
    })
}

/// The reason's name in a line.
fn reason(error: &UnableToDecrypt) -> &'static str {
    use UnableToDecrypt as U;
    match error {
        U::NoSession { .. } => "no_session",
        U::UnknownIndex { .. } => "unknown_index",
        U::Withheld { .. } => "withheld",
        U::Replay { .. } => "replay",
        U::BadSignature => "bad_signature",
        U::SenderMismatch(_) => "sender_mismatch",
        U::Malformed(_) => "malformed",
        _ => "store",
    }
}

/// One more of `key`, allocating its name only the first time.
fn bump(counts: &mut BTreeMap<String, u64>, key: &str) {
    match counts.get_mut(key) {
        Some(count) => *count += 1,
        None => {
            counts.insert(key.to_owned(), 1);
        }
    }
}

/// Counts by status, and failures by reason.
#[derive(Debug, Default)]
pub struct Summary {
    /// Lines written.
    pub events: u64,
    /// Lines by status.
    pub statuses: BTreeMap<String, u64>,
    /// Failed lines by reason.
    pub reasons: BTreeMap<String, u64>,
}

impl Summary {
    /// Counts one decrypted line.
    pub fn count_decrypted(&mut self) {
        self.events += 1;
        bump(&mut self.statuses, "decrypted");
    }

    /// Counts one line.
    pub fn count(&mut self, line: &Value) {
        self.events += 1;
        bump(&mut self.statuses, line["status"].as_str().unwrap_or("?"));
        if let Some(reason) = line.get("reason").and_then(Value::as_str) {
            bump(&mut self.reasons, reason);
        }
    }

    /// Lines of this status.
    pub fn of(&self, status: &str) -> u64 {
        self.statuses.get(status).copied().unwrap_or(0)
    }

    /// One line for stderr.
    pub fn line(&self) -> String {
        let mut text = format!(
            "{} events: {} decrypted, {} unencrypted, {} failed",
            self.events,
            self.of("decrypted"),
            self.of("unencrypted"),
            self.of("failed")
        );
        if !self.reasons.is_empty() {
            let reasons: Vec<String> = self
                .reasons
                .iter()
                .map(|(reason, count)| format!("{reason} {count}"))
                .collect();
            text.push_str(&format!(" ({})", reasons.join(", ")));
        }
        text
    }
}
