//! One output line per input event, and the summary of a run by status and reason.

use std::collections::BTreeMap;

use olmo::matrix::{DecryptedRoomEvent, UnableToDecrypt};
use serde_json::{Map, Value, json};

/// The line of an event that decrypted: the event as a client shows it (type and content
/// replaced by the decrypted ones), and how far to trust it.
pub fn decrypted(event: Value, room: &str, decrypted: DecryptedRoomEvent) -> Value {
    let mut plain = match event {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    let event_id = plain.get("event_id").cloned();
    plain.insert("type".into(), Value::String(decrypted.event_type));
    plain.insert("content".into(), decrypted.content);
    plain.insert("room_id".into(), Value::String(room.to_owned()));
    json!({
        "status": "decrypted",
        "event_id": event_id,
        "room_id": room,
        "session_id": decrypted.session_id,
        "message_index": decrypted.message_index,
        "forwarded": decrypted.forwarded,
        "verified": decrypted.verified,
        "event": Value::Object(plain),
    })
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
    use UnableToDecrypt as U;
    let mut line = Map::new();
    line.insert("status".into(), "failed".into());
    line.insert("reason".into(), reason(error).into());
    line.insert("detail".into(), error.to_string().into());
    line.insert(
        "event_id".into(),
        event.get("event_id").cloned().unwrap_or(Value::Null),
    );
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
    json!({
        "status": "failed",
        "reason": "no_room",
        "detail": "the event names no room_id and --room was not given",
        "event_id": event.get("event_id"),
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
