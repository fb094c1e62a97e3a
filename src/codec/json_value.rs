//! `serde_json::Value` read from and written to JSON text by hand. serde_json's own way goes
//! through its generic `Deserializer` and `Serializer` (two reader types, the visitor, the
//! `io::Write` plumbing and its error type: 7.2 KB gzipped of the `.wasm` package, net); the
//! core only ever needs a `Value` from bytes and bytes from a `Value`. Both give what serde_json
//! gives: the same values accepted and rejected (nesting deeper than 127 refused, numbers read
//! by serde_json's own `Number` parser, last duplicate key wins), the same compact bytes out.

use std::str::FromStr;

use serde_json::{Map, Number, Value};

/// A `Value::Object` of `key => value` pairs, each value turned into a `Value` by `From`:
/// what `json!` builds, without the `serde_json::to_value` it calls on every value (which
/// brought serde_json's whole `Value` serialiser).
macro_rules! object {
    ($($key:expr => $value:expr),* $(,)?) => {{
        #[allow(unused_mut)]
        let mut map = serde_json::Map::new();
        $(map.insert(::std::string::String::from($key), serde_json::Value::from($value));)*
        serde_json::Value::Object(map)
    }};
}
pub(crate) use object;

/// How deep arrays and objects may nest: serde_json's recursion limit of 128 refuses the
/// 128th level.
const MAX_DEPTH: usize = 127;

/// Parses one JSON value (whitespace around it allowed), or `None` when `bytes` are not JSON.
pub fn parse(bytes: &[u8]) -> Option<Value> {
    let mut parser = Parser { bytes, at: 0 };
    let value = parser.value(MAX_DEPTH)?;
    parser.skip_whitespace();
    (parser.at == bytes.len()).then_some(value)
}

struct Parser<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn value(&mut self, depth: usize) -> Option<Value> {
        self.skip_whitespace();
        Some(match self.peek()? {
            b'n' => self.word(b"null", Value::Null)?,
            b't' => self.word(b"true", Value::Bool(true))?,
            b'f' => self.word(b"false", Value::Bool(false))?,
            b'"' => Value::String(self.string()?),
            b'[' => {
                let depth = depth.checked_sub(1)?;
                self.at += 1;
                let mut items = Vec::new();
                if !self.close(b']') {
                    loop {
                        items.push(self.value(depth)?);
                        if self.close(b']') {
                            break;
                        }
                        self.expect(b',')?;
                    }
                }
                Value::Array(items)
            }
            b'{' => {
                let depth = depth.checked_sub(1)?;
                self.at += 1;
                let mut map = Map::new();
                if !self.close(b'}') {
                    loop {
                        self.skip_whitespace();
                        let key = self.string()?;
                        self.expect(b':')?;
                        map.insert(key, self.value(depth)?);
                        if self.close(b'}') {
                            break;
                        }
                        self.expect(b',')?;
                    }
                }
                Value::Object(map)
            }
            _ => Value::Number(self.number()?),
        })
    }

    /// A number token, `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, converted by
    /// serde_json's `Number` parser so integers, floats and overflow come out as before.
    fn number(&mut self) -> Option<Number> {
        let start = self.at;
        self.eat(b'-');
        if !self.eat(b'0') {
            self.digits()?;
        }
        if self.eat(b'.') {
            self.digits()?;
        }
        if self.eat(b'e') || self.eat(b'E') {
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            self.digits()?;
        }
        let text = std::str::from_utf8(&self.bytes[start..self.at]).ok()?;
        Number::from_str(text).ok()
    }

    /// One or more decimal digits.
    fn digits(&mut self) -> Option<()> {
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        (self.at > start).then_some(())
    }

    /// A string: valid UTF-8, no raw control characters, escapes resolved, no lone surrogates.
    fn string(&mut self) -> Option<String> {
        self.expect_here(b'"')?;
        let mut out = Vec::new();
        loop {
            let start = self.at;
            while self
                .peek()
                .is_some_and(|b| b != b'"' && b != b'\\' && b >= 0x20)
            {
                self.at += 1;
            }
            out.extend_from_slice(&self.bytes[start..self.at]);
            match self.next()? {
                b'"' => return String::from_utf8(out).ok(),
                b'\\' => {
                    let escaped = match self.next()? {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return None,
                    };
                    let mut utf8 = [0; 4];
                    out.extend_from_slice(escaped.encode_utf8(&mut utf8).as_bytes());
                }
                // A raw control character.
                _ => return None,
            }
        }
    }

    /// The character of a `\uXXXX` escape (its `\u` read), a surrogate pair taken whole.
    fn unicode_escape(&mut self) -> Option<char> {
        let first = self.hex4()?;
        let code = match first {
            0xd800..=0xdbff => {
                self.expect_here(b'\\')?;
                self.expect_here(b'u')?;
                let low = self.hex4()?;
                if !(0xdc00..=0xdfff).contains(&low) {
                    return None;
                }
                0x10000 + ((first - 0xd800) << 10) + (low - 0xdc00)
            }
            _ => first,
        };
        char::from_u32(code)
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.bytes.get(self.at..self.at + 4)?;
        let text = std::str::from_utf8(digits).ok()?;
        if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        self.at += 4;
        u32::from_str_radix(text, 16).ok()
    }

    fn word(&mut self, word: &[u8], value: Value) -> Option<Value> {
        let end = self.at + word.len();
        (self.bytes.get(self.at..end)? == word).then(|| {
            self.at = end;
            value
        })
    }

    /// Skips whitespace, then consumes `byte` if it comes next.
    fn close(&mut self, byte: u8) -> bool {
        self.skip_whitespace();
        self.eat(byte)
    }

    /// Skips whitespace, then requires `byte`.
    fn expect(&mut self, byte: u8) -> Option<()> {
        self.skip_whitespace();
        self.expect_here(byte)
    }

    fn expect_here(&mut self, byte: u8) -> Option<()> {
        self.eat(byte).then_some(())
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        if found {
            self.at += 1;
        }
        found
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }
}

/// `value` as serde_json's compact writer writes it.
pub(crate) fn write(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        // `Number`'s `Display` is serde_json's own number writer (a float is always finite).
        Value::Number(number) => out.extend_from_slice(number.to_string().as_bytes()),
        Value::String(text) => write_str(out, text),
        Value::Array(items) => super::json::write_array(out, items, write),
        Value::Object(map) => {
            out.push(b'{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, key);
                out.push(b':');
                write(out, item);
            }
            out.push(b'}');
        }
    }
}

/// `value` as compact JSON text.
pub fn to_vec(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write(&mut out, value);
    out
}

/// A JSON string escaped as serde_json escapes it: `\"`, `\\`, the short escapes of
/// backspace, tab, line feed, form feed and carriage return, other control characters as
/// `\u00xx`, everything else as it is.
pub(crate) fn write_str(out: &mut Vec<u8>, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    // `start`: the first byte not yet copied out; `at`: the next byte to look at.
    let mut start = 0;
    let mut at = 0;
    while at < bytes.len() {
        // Eight bytes at a time while none needs an escape (most text needs none): a byte at
        // a time was ~20 instructions per byte, most of a stored JSON record's cost. The last
        // few bytes too (a field name is shorter than a word).
        if let Some(taken) = plain_word(&bytes[at..]) {
            at += taken;
            continue;
        }
        let byte = bytes[at];
        at += 1;
        let short = match byte {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            0x09 => b't',
            0x0a => b'n',
            0x0c => b'f',
            0x0d => b'r',
            0..=0x1f => b'u',
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..at - 1]);
        start = at;
        out.extend_from_slice(&[b'\\', short]);
        if short == b'u' {
            out.extend_from_slice(&[
                b'0',
                b'0',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xf)],
            ]);
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// The length [`write_str`] writes for `text`, quotes included: for a buffer allocated once,
/// exactly (a bound of six bytes per byte made plaintext records six times their size, every
/// byte of it wiped when they drop).
pub(crate) fn str_len(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut len = bytes.len() + 2;
    let mut at = 0;
    while at < bytes.len() {
        if let Some(taken) = plain_word(&bytes[at..]) {
            at += taken;
            continue;
        }
        len += match bytes[at] {
            b'"' | b'\\' | 0x08 | 0x09 | 0x0a | 0x0c | 0x0d => 1,
            0..=0x1f => 5,
            _ => 0,
        };
        at += 1;
    }
    len
}

/// How many of the first bytes of `bytes` (eight, or all of fewer) are known to need no
/// escape, looked at as one word; `None` when one of them may need one.
fn plain_word(bytes: &[u8]) -> Option<usize> {
    // A short tail padded with a byte that needs no escape.
    let mut word = [b' '; 8];
    let taken = match bytes.get(..8) {
        Some(chunk) => {
            word.copy_from_slice(chunk);
            8
        }
        None => {
            word[..bytes.len()].copy_from_slice(bytes);
            bytes.len()
        }
    };
    (!any_to_escape(u64::from_le_bytes(word))).then_some(taken)
}

/// Whether one of the eight bytes of `word` needs an escape in a JSON string: a control
/// character (below 0x20), a quote or a backslash. Each test is exact for "any byte" (the
/// classic has-zero-byte and has-less-than tricks: a byte's high bit is set only past a match).
fn any_to_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGHS;
    let control = below(word, 0x20);
    let quote = below(word ^ (ONES * u64::from(b'"')), 1);
    let backslash = below(word ^ (ONES * u64::from(b'\\')), 1);
    control | quote | backslash != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inputs serde_json reads, and some it refuses; ours must agree on each, value for value.
    const CASES: &[&str] = &[
        "null",
        " true ",
        "false",
        "0",
        "-0",
        "1",
        "-1",
        "1.5",
        "-1.25e-3",
        "1E5",
        "1e+2",
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775808",
        "-9223372036854775809",
        "123456789012345678901234567890",
        "0.1",
        "1e400",
        "-1e400",
        "2.2250738585072014e-308",
        "\"\"",
        "\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"",
        "\"\\u00e9\\u0001\\ud834\\udd1e\"",
        "\"\\ud834\"",
        "\"\\ud834\\u0041\"",
        "\"\\udd1e\"",
        "\"\\u12\"",
        "\"\\x\"",
        "\"tab\there\"",
        "\"日本語\"",
        "[]",
        "[1,[2,[3]],{}]",
        "{\"b\":1,\"a\":{\"c\":[null]}}",
        "{\"a\":1,\"a\":2}",
        " { \"a\" : [ 1 , 2 ] } ",
        "[1,]",
        "{\"a\":1,}",
        "{,}",
        "[",
        "{\"a\"}",
        "{1:2}",
        "01",
        "1.",
        ".5",
        "-",
        "+1",
        "1e",
        "1e+",
        "nul",
        "truex",
        "[1] x",
        "",
        " ",
        "\"unterminated",
        "NaN",
        "[1 2]",
        "{\"a\":1 \"b\":2}",
    ];

    #[test]
    fn reads_what_serde_json_reads() {
        for case in CASES {
            let theirs = serde_json::from_slice::<Value>(case.as_bytes()).ok();
            assert_eq!(parse(case.as_bytes()), theirs, "{case}");
        }
        // Invalid UTF-8 in a string, and a string split inside a character.
        for bytes in [&b"\"\xff\""[..], b"\"\xe6\x97\"", b"\xef\xbb\xbfnull"] {
            let theirs = serde_json::from_slice::<Value>(bytes).ok();
            assert_eq!(parse(bytes), theirs);
        }
    }

    #[test]
    fn nests_as_deep_as_serde_json() {
        for depth in [127, 128, 129, 1000] {
            let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            let theirs = serde_json::from_slice::<Value>(text.as_bytes()).ok();
            assert_eq!(parse(text.as_bytes()), theirs, "{depth}");
            let text = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
            let theirs = serde_json::from_slice::<Value>(text.as_bytes()).ok();
            assert_eq!(parse(text.as_bytes()), theirs, "{depth}");
        }
    }

    #[test]
    fn writes_what_serde_json_writes() {
        for case in CASES {
            if let Ok(value) = serde_json::from_slice::<Value>(case.as_bytes()) {
                assert_eq!(
                    to_vec(&value),
                    serde_json::to_vec(&value).unwrap(),
                    "{case}"
                );
            }
        }
        let all_bytes: String = (0u8..0x80)
            .map(char::from)
            .chain(['é', '\u{1d11e}'])
            .collect();
        let numbers = serde_json::json!([1.0, -0.0, 1e21, 5e-324, 0.3, u64::MAX, i64::MIN]);
        let value = serde_json::json!({"k\u{1}\"": [all_bytes, numbers]});
        assert_eq!(to_vec(&value), serde_json::to_vec(&value).unwrap());
    }

    /// Strings are looked at eight bytes at a time: each byte that needs an escape (and some
    /// that do not) at every place in and around a word, in texts of every length up to three
    /// words, escaped as serde_json escapes them.
    #[test]
    fn escapes_at_every_place_as_serde_json() {
        let specials = [
            '"', '\\', '\u{0}', '\u{8}', '\n', '\u{1f}', ' ', '!', '#', '[', ']', '\u{7f}', 'é',
        ];
        for len in 0..24 {
            for at in 0..len.max(1) {
                for special in specials {
                    let text: String = (0..len)
                        .map(|i| {
                            if i == at {
                                special
                            } else {
                                char::from(b'a' + (i % 26) as u8)
                            }
                        })
                        .collect();
                    let mut ours = Vec::new();
                    write_str(&mut ours, &text);
                    assert_eq!(ours, serde_json::to_vec(&text).unwrap(), "{text:?}");
                    assert_eq!(str_len(&text), ours.len(), "{text:?}");
                }
            }
        }
    }
}
