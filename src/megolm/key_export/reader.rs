//! The decrypted JSON array of room keys, read by hand. A serde derive brought the `.wasm`
//! package serde_json's typed struct parser for this one type; this reader is smaller, keeps
//! every string it reads in a buffer wiped on drop (serde_json's unescaping scratch buffer was
//! not), and takes exactly what the derive took from an object: unknown fields skipped whatever
//! they hold, a known field twice refused, the five strings required, the claimed keys (an
//! object of strings, the last of a repeated name kept), the forwarding chain (an array of
//! strings) and `m.shared_history` (a boolean) optional, `null` refused for each of them,
//! nothing but whitespace after the array. One form the derive also took is refused: a room key written as
//! an array of its fields in order, which no exporter writes.

use std::collections::BTreeMap;

use zeroize::{Zeroize, Zeroizing};

use super::{ExportedRoomKey, KeyExportError};
use crate::megolm::ExportedSessionKey;

/// Parses the decrypted array; on failure keeps only the position, never the (secret) text.
pub(super) fn from_json(json: &[u8]) -> Result<Vec<ExportedRoomKey>, KeyExportError> {
    let mut reader = Reader { json, at: 0 };
    reader.keys().map_err(|Stop| reader.error())
}

/// Parsing stopped at the reader's position.
struct Stop;

type Step<T> = Result<T, Stop>;

/// A cursor over the JSON bytes.
struct Reader<'a> {
    json: &'a [u8],
    at: usize,
}

/// The optional fields, while an object is read.
#[derive(Default)]
struct Optional {
    claimed: Option<BTreeMap<String, String>>,
    chain: Option<Vec<String>>,
    shared_history: Option<bool>,
}

impl Reader<'_> {
    /// The 1-based line and column of the position, as serde_json counted them.
    fn error(&self) -> KeyExportError {
        let before = &self.json[..self.at.min(self.json.len())];
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        KeyExportError::Json {
            line: 1 + before.iter().filter(|&&b| b == b'\n').count(),
            column: 1 + before.len() - line_start,
        }
    }

    fn keys(&mut self) -> Step<Vec<ExportedRoomKey>> {
        let mut keys = Vec::new();
        self.expect(b'[')?;
        if !self.eat(b']') {
            loop {
                keys.push(self.key()?);
                if self.eat(b']') {
                    break;
                }
                self.expect(b',')?;
            }
        }
        self.skip_whitespace();
        if self.at == self.json.len() {
            Ok(keys)
        } else {
            Err(Stop)
        }
    }

    /// One room key object.
    fn key(&mut self) -> Step<ExportedRoomKey> {
        let mut texts: [Option<String>; 4] = Default::default();
        let mut session_key = None;
        let mut optional = Optional::default();
        self.expect(b'{')?;
        if !self.eat(b'}') {
            loop {
                let name = self.string()?;
                self.expect(b':')?;
                self.field(&name, &mut texts, &mut session_key, &mut optional)?;
                if self.eat(b'}') {
                    break;
                }
                self.expect(b',')?;
            }
        }
        let [
            Some(algorithm),
            Some(room_id),
            Some(sender_key),
            Some(session_id),
        ] = texts
        else {
            return Err(Stop);
        };
        Ok(ExportedRoomKey {
            algorithm,
            room_id,
            sender_key,
            session_id,
            session_key: session_key.ok_or(Stop)?,
            sender_claimed_keys: optional.claimed.unwrap_or_default(),
            forwarding_curve25519_key_chain: optional.chain.unwrap_or_default(),
            shared_history: optional.shared_history.unwrap_or_default(),
        })
    }

    /// The value of the field `name`, stored in its slot (a slot already filled is refused).
    fn field(
        &mut self,
        name: &str,
        texts: &mut [Option<String>; 4],
        session_key: &mut Option<ExportedSessionKey>,
        optional: &mut Optional,
    ) -> Step<()> {
        const TEXTS: [&str; 4] = ["algorithm", "room_id", "sender_key", "session_id"];
        if let Some(slot) = TEXTS.iter().position(|&text| text == name) {
            let text = std::mem::take(&mut *self.string()?);
            return fill(&mut texts[slot], text);
        }
        match name {
            "session_key" => {
                let text = self.string()?;
                // The derive's message named no part of the key; this error names nothing.
                let key = ExportedSessionKey::from_base64(&text).map_err(|_| Stop)?;
                fill(session_key, key)
            }
            "sender_claimed_keys" => {
                let claimed = self.claimed_keys()?;
                fill(&mut optional.claimed, claimed)
            }
            "forwarding_curve25519_key_chain" => {
                let chain = self.strings()?;
                fill(&mut optional.chain, chain)
            }
            "m.shared_history" => {
                let value = self.boolean()?;
                fill(&mut optional.shared_history, value)
            }
            _ => self.skip_value(),
        }
    }

    /// An object of strings; a name given twice keeps its last value.
    fn claimed_keys(&mut self) -> Step<BTreeMap<String, String>> {
        let mut claimed = BTreeMap::new();
        self.expect(b'{')?;
        if !self.eat(b'}') {
            loop {
                let name = std::mem::take(&mut *self.string()?);
                self.expect(b':')?;
                claimed.insert(name, std::mem::take(&mut *self.string()?));
                if self.eat(b'}') {
                    break;
                }
                self.expect(b',')?;
            }
        }
        Ok(claimed)
    }

    /// An array of strings.
    fn strings(&mut self) -> Step<Vec<String>> {
        let mut strings = Vec::new();
        self.expect(b'[')?;
        if !self.eat(b']') {
            loop {
                strings.push(std::mem::take(&mut *self.string()?));
                if self.eat(b']') {
                    break;
                }
                self.expect(b',')?;
            }
        }
        Ok(strings)
    }

    fn boolean(&mut self) -> Step<bool> {
        self.skip_whitespace();
        if self.literal(b"true") {
            Ok(true)
        } else if self.literal(b"false") {
            Ok(false)
        } else {
            Err(Stop)
        }
    }

    /// A string, unescaped into a buffer of its final capacity that is wiped on drop.
    fn string(&mut self) -> Step<Zeroizing<String>> {
        self.expect(b'"')?;
        // The unescaped text is never longer than the escaped, so nothing reallocates.
        let mut text = Zeroizing::new(Vec::with_capacity(self.raw_string_len()));
        loop {
            match self.next()? {
                b'"' => break,
                b'\\' => self.escape(&mut text)?,
                0..=0x1f => return Err(Stop),
                byte => text.push(byte),
            }
        }
        match String::from_utf8(std::mem::take(&mut *text)) {
            Ok(text) => Ok(Zeroizing::new(text)),
            Err(error) => {
                error.into_bytes().zeroize();
                Err(Stop)
            }
        }
    }

    /// The bytes from the position up to the string's closing quote.
    fn raw_string_len(&self) -> usize {
        let rest = &self.json[self.at..];
        let mut i = 0;
        while i < rest.len() && rest[i] != b'"' {
            i += if rest[i] == b'\\' { 2 } else { 1 };
        }
        i.min(rest.len())
    }

    /// One escape after its `\`, appended as UTF-8; a `\u` surrogate must come in a pair.
    fn escape(&mut self, text: &mut Vec<u8>) -> Step<()> {
        let byte = match self.next()? {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let high = self.hex4()?;
                let code = match high {
                    0xd800..=0xdbff => {
                        if self.next()? != b'\\' || self.next()? != b'u' {
                            return Err(Stop);
                        }
                        let low = self.hex4()?;
                        if !(0xdc00..=0xdfff).contains(&low) {
                            return Err(Stop);
                        }
                        0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00)
                    }
                    0xdc00..=0xdfff => return Err(Stop),
                    _ => high,
                };
                let c = char::from_u32(code).ok_or(Stop)?;
                text.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                return Ok(());
            }
            _ => return Err(Stop),
        };
        text.push(byte);
        Ok(())
    }

    fn hex4(&mut self) -> Step<u32> {
        let mut value = 0;
        for _ in 0..4 {
            let digit = char::from(self.next()?).to_digit(16).ok_or(Stop)?;
            value = value * 16 + digit;
        }
        Ok(value)
    }

    /// Any JSON value, skipped as serde_json skipped an unknown field's: strings are not
    /// checked for UTF-8 or surrogate pairs, and nesting is followed on a heap stack, not by
    /// recursion, so no depth overflows.
    fn skip_value(&mut self) -> Step<()> {
        let mut open: Vec<u8> = Vec::new();
        loop {
            self.skip_whitespace();
            // A value, or the end of an empty array or object.
            match self.next()? {
                b'"' => self.skip_string()?,
                b'-' | b'0'..=b'9' => {
                    self.at -= 1;
                    self.skip_number()?;
                }
                b't' => self.rest_of(b"rue")?,
                b'f' => self.rest_of(b"alse")?,
                b'n' => self.rest_of(b"ull")?,
                b'[' => {
                    if !self.eat(b']') {
                        open.push(b']');
                        continue;
                    }
                }
                b'{' => {
                    if !self.eat(b'}') {
                        open.push(b'}');
                        self.skip_name()?;
                        continue;
                    }
                }
                _ => return Err(Stop),
            }
            // After a value: close what ends here, then the next element or member.
            loop {
                let Some(&close) = open.last() else {
                    return Ok(());
                };
                if self.eat(close) {
                    open.pop();
                    continue;
                }
                self.expect(b',')?;
                if close == b'}' {
                    self.skip_name()?;
                }
                break;
            }
        }
    }

    /// A member's name and its colon.
    fn skip_name(&mut self) -> Step<()> {
        self.expect(b'"')?;
        self.skip_string()?;
        self.expect(b':')
    }

    /// The rest of a string after its opening quote.
    fn skip_string(&mut self) -> Step<()> {
        loop {
            match self.next()? {
                b'"' => return Ok(()),
                b'\\' => match self.next()? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                    b'u' => {
                        self.hex4()?;
                    }
                    _ => return Err(Stop),
                },
                0..=0x1f => return Err(Stop),
                _ => {}
            }
        }
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn skip_number(&mut self) -> Step<()> {
        self.eat_byte(b'-');
        match self.next()? {
            b'0' => {
                if self.peek().is_some_and(|b| b.is_ascii_digit()) {
                    return Err(Stop);
                }
            }
            b'1'..=b'9' => self.skip_digits(),
            _ => return Err(Stop),
        }
        if self.eat_byte(b'.') {
            self.digits()?;
        }
        if self.eat_byte(b'e') || self.eat_byte(b'E') {
            if !self.eat_byte(b'+') {
                self.eat_byte(b'-');
            }
            self.digits()?;
        }
        Ok(())
    }

    /// One digit or more.
    fn digits(&mut self) -> Step<()> {
        if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
            return Err(Stop);
        }
        self.skip_digits();
        Ok(())
    }

    fn skip_digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
    }

    /// The rest of `true`, `false` or `null` after its first letter.
    fn rest_of(&mut self, rest: &[u8]) -> Step<()> {
        if self.literal(rest) {
            Ok(())
        } else {
            Err(Stop)
        }
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        let found = self.json[self.at..].starts_with(word);
        if found {
            self.at += word.len();
        }
        found
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// After whitespace, `byte` if it comes next.
    fn eat(&mut self, byte: u8) -> bool {
        self.skip_whitespace();
        self.eat_byte(byte)
    }

    fn eat_byte(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        if found {
            self.at += 1;
        }
        found
    }

    /// After whitespace, `byte` or a stop.
    fn expect(&mut self, byte: u8) -> Step<()> {
        if self.eat(byte) { Ok(()) } else { Err(Stop) }
    }

    fn peek(&self) -> Option<u8> {
        self.json.get(self.at).copied()
    }

    fn next(&mut self) -> Step<u8> {
        let byte = self.peek().ok_or(Stop)?;
        self.at += 1;
        Ok(byte)
    }
}

/// Fills an empty slot; a field given twice is refused, as the derive refused it.
fn fill<T>(slot: &mut Option<T>, value: T) -> Step<()> {
    if slot.is_some() {
        return Err(Stop);
    }
    *slot = Some(value);
    Ok(())
}
