//! Record metadata as JSON, written and read by hand. A serde derive brings each type its own
//! copy of serde_json's struct parser and serialiser (2-4 KB each in the `.wasm` package);
//! here every type shares one writer and one `Value` parser ([`super::json_value`]), and says
//! its fields in a few lines. The writer gives the bytes serde_json gives a derived type
//! (fields in declaration order, strings escaped as serde_json escapes them), so records read
//! and write the same bytes as before; the reader accepts what the derive accepted (unknown
//! fields ignored, a missing or `null` optional field is `None`).

use serde_json::{Map, Value};

/// Writes one JSON object into `out`, fields in the order they are given.
pub(crate) struct ObjectWriter<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> ObjectWriter<'a> {
    /// Opens an object.
    pub(crate) fn new(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Self { out, empty: true }
    }

    /// Writes the next field's name; its value follows.
    pub(crate) fn key(&mut self, name: &str) -> &mut Vec<u8> {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        write_str(self.out, name);
        self.out.push(b':');
        self.out
    }

    /// A string field.
    pub(crate) fn str(&mut self, name: &str, value: &str) -> &mut Self {
        write_str(self.key(name), value);
        self
    }

    /// A string field that may be `null`.
    pub(crate) fn opt_str(&mut self, name: &str, value: Option<&str>) -> &mut Self {
        let out = self.key(name);
        match value {
            Some(value) => write_str(out, value),
            None => out.extend_from_slice(b"null"),
        }
        self
    }

    /// A number field.
    pub(crate) fn u64(&mut self, name: &str, value: u64) -> &mut Self {
        write_u64(self.key(name), value);
        self
    }

    /// A boolean field.
    pub(crate) fn bool(&mut self, name: &str, value: bool) -> &mut Self {
        let out = self.key(name);
        out.extend_from_slice(if value { b"true" } else { b"false" });
        self
    }

    /// A field holding any JSON value.
    pub(crate) fn value(&mut self, name: &str, value: &Value) -> &mut Self {
        write_value(self.key(name), value);
        self
    }

    /// Closes the object.
    pub(crate) fn end(self) {
        self.out.push(b'}');
    }
}

/// A JSON string, escaped as serde_json escapes it.
pub(crate) fn write_str(out: &mut Vec<u8>, text: &str) {
    super::json_value::write_str(out, text);
}

/// A JSON array of `items`, each written by `write` (no whitespace, as serde_json writes one).
pub(crate) fn write_array<T>(
    out: &mut Vec<u8>,
    items: impl IntoIterator<Item = T>,
    mut write: impl FnMut(&mut Vec<u8>, T),
) {
    out.push(b'[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(out, item);
    }
    out.push(b']');
}

/// Any JSON value, as serde_json writes it.
pub(crate) fn write_value(out: &mut Vec<u8>, value: &Value) {
    super::json_value::write(out, value);
}

/// A decimal number.
pub(crate) fn write_u64(out: &mut Vec<u8>, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// The fields of a JSON object, read as a derived `Deserialize` reads them. Each getter is
/// `None` when the field is absent or of another type.
#[derive(Clone, Copy)]
pub(crate) struct Fields<'a>(&'a Map<String, Value>);

impl<'a> Fields<'a> {
    /// The fields of `value`, if it is an object.
    pub(crate) fn of(value: &'a Value) -> Option<Self> {
        value.as_object().map(Self)
    }

    /// A field of any type.
    pub(crate) fn get(self, name: &str) -> Option<&'a Value> {
        self.0.get(name)
    }

    /// A string field.
    pub(crate) fn str(self, name: &str) -> Option<String> {
        self.0.get(name)?.as_str().map(str::to_owned)
    }

    /// A string field that may be absent or `null` (`Some(None)`).
    pub(crate) fn opt_str(self, name: &str) -> Option<Option<String>> {
        match self.0.get(name) {
            None | Some(Value::Null) => Some(None),
            Some(Value::String(text)) => Some(Some(text.clone())),
            Some(_) => None,
        }
    }

    /// A non-negative integer field.
    pub(crate) fn u64(self, name: &str) -> Option<u64> {
        self.0.get(name)?.as_u64()
    }

    /// A field that fits a `u32`.
    pub(crate) fn u32(self, name: &str) -> Option<u32> {
        u32::try_from(self.u64(name)?).ok()
    }

    /// A boolean field.
    pub(crate) fn bool(self, name: &str) -> Option<bool> {
        self.0.get(name)?.as_bool()
    }

    /// Every field, in key order.
    pub(crate) fn iter(self) -> serde_json::map::Iter<'a> {
        self.0.iter()
    }
}

/// Asserts that `meta`'s hand-written JSON is serde's byte for byte and reads back as itself.
#[cfg(test)]
pub(crate) fn same_as_serde<T>(meta: &T)
where
    T: crate::store::records::Meta
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let mut ours = Vec::new();
    meta.write_json(&mut ours);
    assert_eq!(
        String::from_utf8(ours.clone()).unwrap(),
        serde_json::to_string(meta).unwrap()
    );
    let value: Value = serde_json::from_slice(&ours).unwrap();
    let back = T::read_json(&value).unwrap();
    assert_eq!(format!("{back:?}"), format!("{meta:?}"));
    // And serde reads ours as it read its own.
    let theirs: T = serde_json::from_slice(&ours).unwrap();
    assert_eq!(format!("{theirs:?}"), format!("{meta:?}"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_what_serde_json_writes() {
        let mut out = Vec::new();
        let mut object = ObjectWriter::new(&mut out);
        object
            .str("a", "quote \" slash \\ control \u{1} tab \t é")
            .opt_str("b", None)
            .opt_str("c", Some("x"))
            .u64("d", u64::MAX)
            .u64("e", 0)
            .bool("f", true)
            .value("g", &serde_json::json!({"z": [1, null], "a": "b"}));
        object.end();
        let expected = serde_json::json!({
            "a": "quote \" slash \\ control \u{1} tab \t é", "b": null, "c": "x",
            "d": u64::MAX, "e": 0, "f": true, "g": {"z": [1, null], "a": "b"},
        });
        assert_eq!(out, serde_json::to_vec(&expected).unwrap());
    }

    #[test]
    fn reads_fields_as_a_derive_would() {
        let value = serde_json::json!({"s": "x", "n": null, "u": 7, "b": false, "f": 1.5});
        let fields = Fields::of(&value).unwrap();
        assert_eq!(fields.str("s").as_deref(), Some("x"));
        assert_eq!(fields.opt_str("n"), Some(None));
        assert_eq!(fields.opt_str("missing"), Some(None));
        assert_eq!(fields.opt_str("u"), None);
        assert_eq!(fields.u64("u"), Some(7));
        assert_eq!(fields.u64("f"), None);
        assert_eq!(fields.bool("b"), Some(false));
        assert_eq!(fields.str("missing"), None);
        assert!(Fields::of(&serde_json::json!([1])).is_none());
    }
}
