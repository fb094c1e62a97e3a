//! Canonical JSON (the Matrix specification's appendix): object keys sorted by code point, no
//! insignificant whitespace, UTF-8, integers only, strings minimally escaped. Written here by
//! hand because a signature covers these exact bytes, whatever serde's settings are.

use serde_json::Value;

use super::error::MachineError;
use crate::vec_map::sorted_order;

/// The largest integer canonical JSON allows (2^53 - 1), and its negative.
const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// The canonical encoding of `value`, or [`MachineError::Json`] for a float or an integer
/// outside ±(2^53 - 1).
pub fn encode(value: &Value) -> Result<String, MachineError> {
    let mut out = String::new();
    write(&mut out, value)?;
    Ok(out)
}

fn write(out: &mut String, value: &Value) -> Result<(), MachineError> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let int = n
                .as_i64()
                .filter(|i| (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(i))
                .ok_or(MachineError::Json("a number that is not a safe integer"))?;
            out.push_str(&int.to_string());
        }
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(out, item)?;
            }
            out.push(']');
        }
        Value::Object(map) => write_object(out, map, &[])?,
    }
    Ok(())
}

/// An object without the members named in `skip`.
fn write_object(
    out: &mut String,
    map: &serde_json::Map<String, Value>,
    skip: &[&str],
) -> Result<(), MachineError> {
    let entries: Vec<(&String, &Value)> = map
        .iter()
        .filter(|(key, _)| !skip.contains(&key.as_str()))
        .collect();
    out.push('{');
    for (n, i) in key_order(&entries).into_iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        write_string(out, entries[i].0);
        out.push(':');
        write(out, entries[i].1)?;
    }
    out.push('}');
    Ok(())
}

/// The positions of `keys` in code point order. serde_json's map (a `BTreeMap` unless some
/// crate turns on its `preserve_order`) gives that order already; otherwise the shared index
/// sort, where `sort_unstable_by` brought 3.5 KB of sort code to the `.wasm` package.
fn key_order(entries: &[(&String, &Value)]) -> Vec<usize> {
    // Byte order of UTF-8 is code point order.
    if entries.is_sorted_by(|a, b| a.0 <= b.0) {
        return (0..entries.len()).collect();
    }
    sorted_order(entries.len(), &|a, b| entries[a].0.cmp(entries[b].0))
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The bytes a Matrix signature covers: `value` without `signatures` and `unsigned`.
pub fn signing_bytes(value: &Value) -> Result<String, MachineError> {
    // Written with the two members left out, not removed from a copy: no deep copy, and no
    // map-removal code in the `.wasm` package for that alone.
    let Value::Object(map) = value else {
        return encode(value);
    };
    let mut out = String::new();
    write_object(&mut out, map, &["signatures", "unsigned"])?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_specification_examples_encode_canonically() {
        let cases = [
            (json!({}), "{}"),
            (json!({"one": 1, "two": "Two"}), r#"{"one":1,"two":"Two"}"#),
            (json!({"b": "2", "a": "1"}), r#"{"a":"1","b":"2"}"#),
            (
                json!({"auth": {"success": true, "mxid": "@john.doe:example.com", "profile": {"display_name": "John Doe", "three_pids": [{"medium": "email", "address": "john.doe@example.org"}, {"medium": "msisdn", "address": "123456789"}]}}}),
                r#"{"auth":{"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe","three_pids":[{"address":"john.doe@example.org","medium":"email"},{"address":"123456789","medium":"msisdn"}]},"success":true}}"#,
            ),
            (json!({"a": "日本語"}), r#"{"a":"日本語"}"#),
            (json!({"本": 2, "日": 1}), r#"{"日":1,"本":2}"#),
            (json!({"a": "\u{1d11e}"}), "{\"a\":\"\u{1d11e}\"}"),
            (json!({"a": null}), r#"{"a":null}"#),
            (json!({"a": -0}), r#"{"a":0}"#),
            (
                json!({"a": "\u{0}\u{1f}\"\\\n"}),
                r#"{"a":"\u0000\u001f\"\\\n"}"#,
            ),
        ];
        for (value, canonical) in cases {
            assert_eq!(encode(&value).unwrap(), canonical);
        }
    }

    #[test]
    fn floats_and_unsafe_integers_are_refused() {
        assert!(encode(&json!({"a": 1.5})).is_err());
        assert!(encode(&json!({"a": 1u64 << 53})).is_err());
        assert!(encode(&json!({"a": -(1i64 << 53) + 1})).is_ok());
    }

    #[test]
    fn keys_in_any_order_come_out_in_code_point_order() {
        let keys = ["b", "本", "a", "日", "ab", ""].map(String::from);
        let entries: Vec<(&String, &Value)> = keys.iter().map(|k| (k, &Value::Null)).collect();
        let order: Vec<&str> = key_order(&entries)
            .into_iter()
            .map(|i| keys[i].as_str())
            .collect();
        assert_eq!(order, ["", "a", "ab", "b", "日", "本"]);
        assert_eq!(key_order(&entries[2..4]), [0, 1]);
    }

    #[test]
    fn signing_bytes_leave_out_signatures_and_unsigned() {
        let value = json!({"b": 1, "signatures": {"x": {}}, "unsigned": {"age": 3}, "a": 2});
        assert_eq!(signing_bytes(&value).unwrap(), r#"{"a":2,"b":1}"#);
        // Only the top level's: nested members of those names are signed.
        let nested = json!({"a": {"signatures": 1, "unsigned": 2}, "unsigned": {}});
        assert_eq!(
            signing_bytes(&nested).unwrap(),
            r#"{"a":{"signatures":1,"unsigned":2}}"#
        );
        assert_eq!(signing_bytes(&json!([1, "x"])).unwrap(), r#"[1,"x"]"#);
    }
}
