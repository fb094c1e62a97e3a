//! Room events read as a stream, whatever the dump's shape: the serde visitors below walk a
//! JSON value as it is parsed and hand each event to a sink as soon as it is complete, so only
//! one event is in memory at a time, however large the `chunk` array or the `/sync` response.
//!
//! Shapes recognised, at any nesting of arrays and one value after another (JSON lines):
//! - an event (an object that is none of the below);
//! - `{"chunk": [...]}`: `/messages` and the Synapse admin API's room messages;
//! - `{"rooms": {"join"|"leave": {ROOM: {"timeline": {"events": [...]}}}}}`: `/sync`, the room
//!   taken from the key;
//! - `{"room_id": ..., "json": "<event>"}`: a row of Synapse's `event_json` table.

use std::cell::Cell;
use std::fmt;
use std::io::{BufRead, Read};
use std::rc::Rc;

use serde::de::{
    self, DeserializeSeed, Deserializer as _, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use serde_json::{Map, Value};

/// Receives the events in input order. An error stops the reading.
pub trait EventSink {
    /// One event, with the room its container names (a `/sync` room), if any.
    fn event(&mut self, room: Option<&str>, event: Value) -> Result<(), String>;

    /// One event given as its JSON text (a line that is one event object, in no container):
    /// by default parsed and given to [`EventSink::event`]; a sink may keep the text instead.
    fn raw_event(&mut self, text: &str) -> Result<(), String> {
        let event = serde_json::from_str(text).map_err(|e| e.to_string())?;
        self.event(None, event)
    }
}

/// The text of `line` when it is one JSON object that is an event (none of the containers):
/// such a line goes to [`EventSink::raw_event`] unparsed. The line is checked as parsing it
/// into a JSON value would check it (numbers in range, escapes valid), so whatever that
/// refuses still takes the streaming parser, which names the line.
fn one_event(line: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(line).ok()?;
    if !text.trim_start().starts_with('{') {
        return None;
    }
    let mut parser = serde_json::Deserializer::from_str(text);
    let event = parser.deserialize_map(EventProbe).ok()?;
    parser.end().ok()?;
    event.then_some(text)
}

/// A top-level object: true when no key makes it a container.
struct EventProbe;

impl<'de> Visitor<'de> for EventProbe {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut event = true;
        while let Some(container) = map.next_key::<ContainerKey>()? {
            event &= !container.0;
            map.next_value::<Checked>()?;
        }
        Ok(event)
    }
}

/// A key, and whether it makes an object a container (decoded, not kept).
struct ContainerKey(bool);

impl<'de> serde::Deserialize<'de> for ContainerKey {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = ContainerKey;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<ContainerKey, E> {
                Ok(ContainerKey(matches!(key, "chunk" | "rooms" | "json")))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// Any JSON value, read as a JSON value would be (its numbers and strings decoded) but not
/// kept.
struct Checked;

impl<'de> serde::Deserialize<'de> for Checked {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CheckedVisitor)
    }
}

struct CheckedVisitor;

macro_rules! accept {
    ($($method:ident: $type:ty),*) => {$(
        fn $method<E: de::Error>(self, _: $type) -> Result<Checked, E> {
            Ok(Checked)
        }
    )*};
}

impl<'de> Visitor<'de> for CheckedVisitor {
    type Value = Checked;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    accept!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);

    fn visit_unit<E: de::Error>(self) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        while map.next_entry::<Checked, Checked>()?.is_some() {}
        Ok(Checked)
    }
}

/// Adds `bytes` to what `position` has seen.
fn count(position: &Position, bytes: &[u8]) {
    let newlines = bytes.iter().filter(|b| **b == b'\n').count() as u64;
    position
        .bytes
        .set(position.bytes.get() + bytes.len() as u64);
    position.newlines.set(position.newlines.get() + newlines);
}

/// Events held until their line parsed whole.
#[derive(Default)]
struct Held(Vec<(Option<String>, Value)>);

impl EventSink for Held {
    fn event(&mut self, room: Option<&str>, event: Value) -> Result<(), String> {
        self.0.push((room.map(str::to_owned), event));
        Ok(())
    }
}

/// Why reading stopped.
#[derive(Debug)]
pub enum InputError {
    /// The input is not JSON (or not readable), at this line.
    Syntax {
        /// 1-based line of the input where the error was found.
        line: u64,
        /// What was wrong.
        message: String,
    },
    /// The sink refused an event (writing the output or the store failed).
    Sink(String),
}

/// Bytes and lines read so far, shared with the progress display.
#[derive(Debug, Clone, Default)]
pub struct Position {
    /// Bytes consumed.
    pub bytes: Rc<Cell<u64>>,
    /// Newlines consumed.
    pub newlines: Rc<Cell<u64>>,
}

/// Counts what passes through, for error positions and progress.
struct Counting<R> {
    inner: R,
    position: Position,
}

impl<R: BufRead> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count(&buf[..n]);
        Ok(n)
    }
}

impl<R: BufRead> Counting<R> {
    fn count(&self, bytes: &[u8]) {
        count(&self.position, bytes);
    }

    /// The fast path for JSON lines: when the reader's buffer holds a whole line that is one
    /// complete value, parses it from the buffer (no byte-at-a-time reads), gives its events
    /// to `sink` and consumes it. Anything else (a value spanning lines or the buffer's end, a
    /// syntax error) is left unread for the streaming parser, with nothing given to `sink`.
    fn whole_line(&mut self, sink: &mut dyn EventSink) -> Result<bool, String> {
        let Ok(buffer) = self.inner.fill_buf() else {
            return Ok(false);
        };
        let Some(end) = buffer.iter().position(|b| *b == b'\n') else {
            return Ok(false);
        };
        let line = &buffer[..=end];
        if let Some(text) = one_event(line) {
            sink.raw_event(text)?;
            count(&self.position, &buffer[..=end]);
            self.inner.consume(end + 1);
            return Ok(true);
        }
        let mut held = Held::default();
        let mut stop = None;
        let mut parser = serde_json::Deserializer::from_slice(line);
        let parsed = Item {
            sink: &mut held,
            room: None,
            stop: &mut stop,
        }
        .deserialize(&mut parser)
        .and_then(|()| parser.end());
        if parsed.is_err() || stop.is_some() {
            return Ok(false);
        }
        count(&self.position, line);
        self.inner.consume(end + 1);
        for (room, event) in held.0 {
            sink.event(room.as_deref(), event)?;
        }
        Ok(true)
    }

    /// Skips whitespace; false at the end of the input.
    fn more(&mut self) -> std::io::Result<bool> {
        loop {
            let buffer = self.inner.fill_buf()?;
            if buffer.is_empty() {
                return Ok(false);
            }
            let blank = buffer
                .iter()
                .take_while(|b| b.is_ascii_whitespace())
                .count();
            let all = blank == buffer.len();
            let skipped = buffer[..blank].to_vec();
            self.inner.consume(blank);
            self.count(&skipped);
            if !all {
                return Ok(true);
            }
        }
    }
}

/// Reads every value of `reader` and gives its events to `sink`.
pub fn read_events(
    reader: impl BufRead,
    position: Position,
    sink: &mut dyn EventSink,
) -> Result<(), InputError> {
    let mut input = Counting {
        inner: reader,
        position,
    };
    let line = |input: &Counting<_>| input.position.newlines.get() + 1;
    loop {
        match input.more() {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(e) => {
                return Err(InputError::Syntax {
                    line: line(&input),
                    message: e.to_string(),
                });
            }
        }
        match input.whole_line(sink) {
            Ok(true) => continue,
            Ok(false) => {}
            Err(error) => return Err(InputError::Sink(error)),
        }
        // A fresh parser per top-level value: objects and arrays end on their closing byte,
        // so nothing after it is consumed and the next value starts clean.
        let mut stop = None;
        let mut parser = serde_json::Deserializer::from_reader(&mut input);
        let outcome = Item {
            sink,
            room: None,
            stop: &mut stop,
        }
        .deserialize(&mut parser);
        drop(parser);
        if let Some(error) = stop {
            return Err(InputError::Sink(error));
        }
        if let Err(error) = outcome {
            let text = error.to_string();
            let message = text
                .rsplit_once(" at line ")
                .map_or(text.as_str(), |(message, _)| message)
                .to_owned();
            return Err(InputError::Syntax {
                line: line(&input),
                message,
            });
        }
    }
}

/// Any value: an event, a container of events, or an array of them.
struct Item<'a> {
    sink: &'a mut dyn EventSink,
    room: Option<&'a str>,
    stop: &'a mut Option<String>,
}

impl Item<'_> {
    fn give<E: de::Error>(self, room: Option<&str>, event: Value) -> Result<(), E> {
        self.sink.event(room, event).map_err(|error| {
            *self.stop = Some(error);
            E::custom("stopped by the output")
        })
    }
}

impl<'de> DeserializeSeed<'de> for Item<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

macro_rules! scalar_is_an_item {
    ($($method:ident: $type:ty),*) => {$(
        fn $method<E: de::Error>(self, value: $type) -> Result<(), E> {
            let room = self.room;
            self.give(room, Value::from(value))
        }
    )*};
}

impl<'de> Visitor<'de> for Item<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("room events")
    }

    scalar_is_an_item!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        let room = self.room;
        self.give(room, Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Item { sink, room, stop } = self;
        while seq
            .next_element_seed(Item {
                sink: &mut *sink,
                room,
                stop: &mut *stop,
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Item { sink, room, stop } = self;
        let mut fields = Map::new();
        let mut container = false;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "chunk" => {
                    container = true;
                    map.next_value_seed(Item {
                        sink: &mut *sink,
                        room,
                        stop: &mut *stop,
                    })?;
                }
                "rooms" => {
                    container = true;
                    map.next_value_seed(Rooms {
                        sink: &mut *sink,
                        stop: &mut *stop,
                    })?;
                }
                _ => {
                    let value: Value = map.next_value()?;
                    fields.insert(key, value);
                }
            }
        }
        if container {
            return Ok(());
        }
        let item = Item { sink, room, stop };
        // A row of the event_json table: the event is a string inside it.
        if !fields.contains_key("content")
            && let Some(Value::String(json)) = fields.get("json")
        {
            let event = serde_json::from_str::<Value>(json).unwrap_or(Value::Null);
            let row_room = fields.get("room_id").and_then(Value::as_str);
            return item.give(row_room.or(room), event);
        }
        item.give(room, Value::Object(fields))
    }
}

/// `/sync`'s `rooms`: `join` and `leave` hold timelines; `invite` and `knock` none.
struct Rooms<'a> {
    sink: &'a mut dyn EventSink,
    stop: &'a mut Option<String>,
}

impl<'de> DeserializeSeed<'de> for Rooms<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Rooms<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the rooms of a /sync response")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(membership) = map.next_key::<String>()? {
            if membership == "join" || membership == "leave" {
                map.next_value_seed(Keyed {
                    sink: &mut *self.sink,
                    stop: &mut *self.stop,
                    path: &["timeline", "events"],
                    room: None,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// A map walked down a path of keys: first level keyed by room id, then `timeline`, then
/// `events` (an array of items in that room).
struct Keyed<'a> {
    sink: &'a mut dyn EventSink,
    stop: &'a mut Option<String>,
    path: &'static [&'static str],
    room: Option<String>,
}

impl<'de> DeserializeSeed<'de> for Keyed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Keyed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a /sync room")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Keyed {
            sink,
            stop,
            path,
            room,
        } = self;
        while let Some(key) = map.next_key::<String>()? {
            match (&room, path) {
                // The first level: the key is the room id.
                (None, _) => map.next_value_seed(Keyed {
                    sink: &mut *sink,
                    stop: &mut *stop,
                    path,
                    room: Some(key),
                })?,
                (Some(room), [last]) if key == *last => map.next_value_seed(Item {
                    sink: &mut *sink,
                    room: Some(room),
                    stop: &mut *stop,
                })?,
                (Some(room), [next, rest @ ..]) if key == *next => map.next_value_seed(Keyed {
                    sink: &mut *sink,
                    stop: &mut *stop,
                    path: rest,
                    room: Some(room.clone()),
                })?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect(Vec<(Option<String>, Value)>);

    impl EventSink for Collect {
        fn event(&mut self, room: Option<&str>, event: Value) -> Result<(), String> {
            self.0.push((room.map(str::to_owned), event));
            Ok(())
        }
    }

    fn read(text: &str) -> Result<Vec<(Option<String>, Value)>, InputError> {
        let mut sink = Collect::default();
        read_events(text.as_bytes(), Position::default(), &mut sink)?;
        Ok(sink.0)
    }

    fn ids(events: &[(Option<String>, Value)]) -> Vec<String> {
        events
            .iter()
            .map(|(room, e)| {
                format!(
                    "{}@{}",
                    e["event_id"].as_str().unwrap_or("?"),
                    room.as_deref().unwrap_or("-")
                )
            })
            .collect()
    }

    #[test]
    fn shapes() {
        let lines = "{\"event_id\":\"$1\"}\n{\"event_id\":\"$2\"}\n";
        assert_eq!(ids(&read(lines).unwrap()), ["$1@-", "$2@-"]);
        let array = "[{\"event_id\":\"$1\"},[{\"event_id\":\"$2\"}]]";
        assert_eq!(ids(&read(array).unwrap()), ["$1@-", "$2@-"]);
        let messages = r#"{"start":"s","chunk":[{"event_id":"$1"},{"event_id":"$2"}],"end":"e"}"#;
        assert_eq!(ids(&read(messages).unwrap()), ["$1@-", "$2@-"]);
        let sync = r#"{"next_batch":"n","rooms":{"invite":{"!x":{}},"join":{"!a":{"state":{"events":[{"event_id":"$s"}]},"timeline":{"events":[{"event_id":"$1"}],"limited":false}},"!b":{"timeline":{"events":[{"event_id":"$2"}]}}},"leave":{"!c":{"timeline":{"events":[{"event_id":"$3"}]}}}}}"#;
        assert_eq!(ids(&read(sync).unwrap()), ["$1@!a", "$2@!b", "$3@!c"]);
        let rows = r#"{"event_id":"$1","room_id":"!r","json":"{\"event_id\":\"$1\"}"}"#;
        assert_eq!(ids(&read(rows).unwrap()), ["$1@!r"]);
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let Err(InputError::Syntax { line, message }) = read("{\"a\":1}\n{\"a\":1}\n{\"a\" 1}\n")
        else {
            panic!("accepted")
        };
        assert_eq!(line, 3);
        assert!(message.contains("expected `:`"), "{message}");
        // A line that parses loosely but not as a JSON value is refused as the value would be.
        for (bad, why) in [
            ("{\"n\": 1e400}", "out of range"),
            (r#"{"s": "\ud800"}"#, "escape"),
        ] {
            let Err(InputError::Syntax { line, message }) = read(&format!("{{}}\n{bad}\n")) else {
                panic!("accepted {bad}")
            };
            assert_eq!(line, 2);
            assert!(message.contains(why), "{message}");
        }
    }

    #[test]
    fn only_event_lines_go_as_text() {
        assert!(one_event(b" {\"type\": \"m\", \"x\": [1, {\"chunk\": 2}]}\n").is_some());
        for line in [
            &b"{\"chunk\": []}\n"[..],
            br#"{"\u0063hunk": null}"#,
            br#"{"rooms": {}}"#,
            br#"{"json": "{}"}"#,
            b"[{}]",
            b"{} {}",
        ] {
            assert!(
                one_event(line).is_none(),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }
}
