//! The plaintext: a JSON array of [`ExportedRoomKey`], kept in wiped buffers (read by
//! [`super::reader`]).

use zeroize::Zeroizing;

use super::ExportedRoomKey;
use crate::codec::json::{ObjectWriter, write_array, write_str};

/// The JSON of `keys` in a wiped buffer of exactly its length (so no reallocation leaves a copy).
/// Written by hand, byte for byte what serde_json writes for the derived `Serialize` (the
/// tests compare): one writer in the `.wasm` package instead of a serialiser per output.
pub(super) fn to_json(keys: &[ExportedRoomKey]) -> Zeroizing<Vec<u8>> {
    let session_keys: Vec<Zeroizing<String>> =
        keys.iter().map(|k| k.session_key.to_base64()).collect();
    let len = 2
        + keys.len().saturating_sub(1)
        + keys
            .iter()
            .zip(&session_keys)
            .map(|(key, session_key)| key_len(key, session_key))
            .sum::<usize>();
    let mut json = Zeroizing::new(Vec::with_capacity(len));
    json.push(b'[');
    for (i, (key, session_key)) in keys.iter().zip(&session_keys).enumerate() {
        if i > 0 {
            json.push(b',');
        }
        let mut object = ObjectWriter::new(&mut json);
        object
            .str("algorithm", &key.algorithm)
            .str("room_id", &key.room_id)
            .str("sender_key", &key.sender_key)
            .str("session_id", &key.session_id)
            .str("session_key", session_key);
        let mut claimed = ObjectWriter::new(object.key("sender_claimed_keys"));
        for (algorithm, claimed_key) in &key.sender_claimed_keys {
            claimed.str(algorithm, claimed_key);
        }
        claimed.end();
        write_array(
            object.key("forwarding_curve25519_key_chain"),
            &key.forwarding_curve25519_key_chain,
            |out, chain_key| write_str(out, chain_key),
        );
        object.bool("m.shared_history", key.shared_history);
        object.end();
    }
    json.push(b']');
    json
}

/// The length of one key's JSON as [`to_json`] writes it.
fn key_len(key: &ExportedRoomKey, session_key: &str) -> usize {
    // Field names with their quotes, colons and separating commas, the braces and brackets.
    const NAMES: usize = r#"{"algorithm":,"room_id":,"sender_key":,"session_id":,"session_key":,"sender_claimed_keys":{},"forwarding_curve25519_key_chain":[],"m.shared_history":}"#.len();
    let claimed: usize = key
        .sender_claimed_keys
        .iter()
        .map(|(algorithm, claimed_key)| str_len(algorithm) + 1 + str_len(claimed_key))
        .sum::<usize>()
        + key.sender_claimed_keys.len().saturating_sub(1);
    let chain: usize = key
        .forwarding_curve25519_key_chain
        .iter()
        .map(|k| str_len(k))
        .sum::<usize>()
        + key.forwarding_curve25519_key_chain.len().saturating_sub(1);
    NAMES
        + [
            &key.algorithm,
            &key.room_id,
            &key.sender_key,
            &key.session_id,
            session_key,
        ]
        .iter()
        .map(|text| str_len(text))
        .sum::<usize>()
        + claimed
        + chain
        + if key.shared_history { 4 } else { 5 }
}

/// The length of a JSON string as serde_json escapes it: quotes, `\"`, `\\` and the short
/// escapes of backspace, tab, line feed, form feed and carriage return in two bytes, other
/// control characters as `\u00XX`, everything else as it is.
fn str_len(text: &str) -> usize {
    2 + text
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' | 0x08 | 0x09 | 0x0a | 0x0c | 0x0d => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum::<usize>()
}

/// `session_key` as a base64 string for the serde derives (native users' API; the crate reads
/// and writes key export JSON by hand), never held in an unwiped `String` by us.
#[cfg(any(test, feature = "serde"))]
pub(super) mod session_key_base64 {
    use std::fmt;

    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    use crate::megolm::ExportedSessionKey;

    pub(in crate::megolm::key_export) fn serialize<S: Serializer>(
        key: &ExportedSessionKey,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&key.to_base64())
    }

    pub(in crate::megolm::key_export) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<ExportedSessionKey, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }

    struct KeyVisitor;

    impl Visitor<'_> for KeyVisitor {
        type Value = ExportedSessionKey;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a base64 exported Megolm session key")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<ExportedSessionKey, E> {
            // The message names no part of the key.
            ExportedSessionKey::from_base64(text)
                .map_err(|_| E::custom("malformed exported session key"))
        }
    }
}
