//! An event read from its JSON text without building a JSON value: its top-level fields and
//! its content's fields borrowed from the text, and the fields decryption reads picked out.
//! Anything unusual (a string with escapes among the fields read, a content that is not an
//! object, a key with escapes) makes [`RawEvent::parse`] answer `None`, and the caller takes
//! the JSON value path, so every event gives the same line either way.

use std::collections::BTreeMap;
use std::fmt;

use olmo::matrix::EncryptedEventFields;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

/// An event's fields, borrowed from its text, in the sorted order of a `serde_json` map.
pub struct RawEvent<'a> {
    /// The whole text.
    pub text: &'a str,
    /// Every top-level field but `content` (a repeated key keeps its last value, as a JSON
    /// value would).
    pub fields: BTreeMap<&'a str, &'a RawValue>,
    /// `type`, when a string.
    pub event_type: Option<&'a str>,
    /// `room_id`, when a string.
    pub room_id: Option<&'a str>,
    /// What decryption reads.
    pub encrypted: EncryptedEventFields<'a>,
}

impl<'a> RawEvent<'a> {
    /// The event of `text` (a JSON object), or `None` when only a JSON value will do. One pass:
    /// the content's fields are read where they are (its long ciphertext scanned once), and
    /// the content is not kept (a decrypted line replaces it).
    pub fn parse(text: &'a str) -> Option<Self> {
        let mut parser = serde_json::Deserializer::from_str(text);
        let (fields, content) = parser.deserialize_map(EventVisitor).ok()?;
        let string = |name: &str| plain_str(fields.get(name).copied());
        let encrypted = EncryptedEventFields {
            sender: string("sender")?,
            event_id: string("event_id")?,
            origin_server_ts: fields
                .get("origin_server_ts")
                .and_then(|raw| raw.get().parse::<u64>().ok()),
            algorithm: content.algorithm,
            session_id: content.session_id,
            ciphertext: content.ciphertext,
        };
        Some(Self {
            text,
            event_type: string("type")?,
            room_id: string("room_id")?,
            encrypted,
            fields,
        })
    }

    /// `event_id` as a JSON value (null when absent), for the lines that name it.
    pub fn event_id(&self) -> Value {
        self.fields
            .get("event_id")
            .and_then(|raw| serde_json::from_str(raw.get()).ok())
            .unwrap_or(Value::Null)
    }
}

/// The top-level fields but `content`, and what decryption reads of the content.
type Fields<'a> = (BTreeMap<&'a str, &'a RawValue>, ContentFields<'a>);

struct EventVisitor;

impl<'de> Visitor<'de> for EventVisitor {
    type Value = Fields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
        let mut fields = BTreeMap::new();
        let mut content = ContentFields::default();
        while let Some(key) = map.next_key::<&'de str>()? {
            if key == "content" {
                content = map.next_value()?;
            } else {
                fields.insert(key, map.next_value::<&'de RawValue>()?);
            }
        }
        Ok((fields, content))
    }
}

/// The content's fields decryption reads: `None` when absent or not strings (as
/// `Value::as_str`); a content neither an object nor null, or one of these strings with
/// escapes, is refused (only a JSON value will do).
#[derive(Default)]
struct ContentFields<'a> {
    algorithm: Option<&'a str>,
    session_id: Option<&'a str>,
    ciphertext: Option<&'a str>,
}

impl<'de> Deserialize<'de> for ContentFields<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ContentVisitor)
    }
}

struct ContentVisitor;

impl<'de> Visitor<'de> for ContentVisitor {
    type Value = ContentFields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a content object")
    }

    fn visit_unit<E: de::Error>(self) -> Result<ContentFields<'de>, E> {
        Ok(ContentFields::default())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ContentFields<'de>, A::Error> {
        let mut content = ContentFields::default();
        while let Some(key) = map.next_key::<&'de str>()? {
            let slot = match key {
                "algorithm" => &mut content.algorithm,
                "session_id" => &mut content.session_id,
                "ciphertext" => &mut content.ciphertext,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            *slot = map.next_value::<PlainStr<'de>>()?.0;
        }
        Ok(content)
    }
}

/// A string without escapes, borrowed; `None` for any other value but a string with escapes.
struct PlainStr<'a>(Option<&'a str>);

impl<'de> Deserialize<'de> for PlainStr<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(PlainStrVisitor)
    }
}

struct PlainStrVisitor;

macro_rules! not_a_string {
    ($($method:ident: $type:ty),*) => {$(
        fn $method<E: de::Error>(self, _: $type) -> Result<PlainStr<'de>, E> {
            Ok(PlainStr(None))
        }
    )*};
}

impl<'de> Visitor<'de> for PlainStrVisitor {
    type Value = PlainStr<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a value")
    }

    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<PlainStr<'de>, E> {
        Ok(PlainStr(Some(text)))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<PlainStr<'de>, E> {
        Err(E::custom("a string with escapes"))
    }

    not_a_string!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64);

    fn visit_unit<E: de::Error>(self) -> Result<PlainStr<'de>, E> {
        Ok(PlainStr(None))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PlainStr<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(PlainStr(None))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PlainStr<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(PlainStr(None))
    }
}

/// A string field's text: `Some(None)` when absent or not a string (as `Value::as_str`),
/// `None` when it has escapes (only a JSON value unescapes it).
fn plain_str(raw: Option<&RawValue>) -> Option<Option<&str>> {
    let Some(text) = raw.map(RawValue::get) else {
        return Some(None);
    };
    match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) if inner.contains('\\') => None,
        Some(inner) => Some(Some(inner)),
        None => Some(None),
    }
}

/// A field's value written as `serde_json` writes the JSON value it parses to: the text as it
/// came when that is already so, else through a JSON value.
pub struct Canonical<'a>(pub &'a RawValue);

impl Serialize for Canonical<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if is_canonical(self.0.get()) {
            return self.0.serialize(serializer);
        }
        let value: Value = serde_json::from_str(self.0.get()).map_err(serde::ser::Error::custom)?;
        value.serialize(serializer)
    }
}

/// Whether `serde_json` writes the value of this text back as this text: a string without
/// escapes (one with none cannot hold a quote or a control character), an unsigned integer,
/// or a literal.
fn is_canonical(text: &str) -> bool {
    match text.as_bytes().first() {
        Some(b'"') => !text.contains('\\'),
        Some(b'0'..=b'9') => {
            text.bytes().all(|b| b.is_ascii_digit()) && text.parse::<u64>().is_ok()
        }
        _ => matches!(text, "true" | "false" | "null"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_values_are_written_as_a_json_value_would_be() {
        for text in [
            r#""plain""#,
            r#""esc\u00e9\/""#,
            "123",
            "18446744073709551616",
            "-0",
            "1.50",
            "1e3",
            "true",
            "null",
            r#"{ "b": 1, "a": [1, 2.0] }"#,
        ] {
            let raw: &RawValue = serde_json::from_str(text).unwrap();
            let value: Value = serde_json::from_str(text).unwrap();
            assert_eq!(
                serde_json::to_string(&Canonical(raw)).unwrap(),
                serde_json::to_string(&value).unwrap(),
                "{text}"
            );
        }
    }

    #[test]
    fn fields_match_the_json_value_path() {
        let text = r#"{"type": "m.room.encrypted", "sender": "@a:b", "event_id": "$e",
            "origin_server_ts": 17, "content": {"algorithm": "m.megolm.v1.aes-sha2",
            "session_id": "s", "ciphertext": "c"}, "room_id": 5}"#;
        let event = RawEvent::parse(text).unwrap();
        let value: Value = serde_json::from_str(text).unwrap();
        assert_eq!(event.encrypted, EncryptedEventFields::of_event(&value));
        assert_eq!(event.event_type, Some("m.room.encrypted"));
        assert_eq!(event.room_id, None);
        assert!(RawEvent::parse(r#"{"sender": "@a\u0040b"}"#).is_none());
        assert!(RawEvent::parse(r#"{"content": 1}"#).is_none());
        assert!(RawEvent::parse("[1]").is_none());
    }
}
