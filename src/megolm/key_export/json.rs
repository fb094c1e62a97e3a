//! The plaintext: a JSON array of [`ExportedRoomKey`], kept in wiped buffers.

use std::io;

use zeroize::Zeroizing;

use super::{ExportedRoomKey, KeyExportError};

/// The JSON of `keys` in a wiped buffer of exactly its length (so no reallocation leaves a copy).
pub(super) fn to_json(keys: &[ExportedRoomKey]) -> Zeroizing<Vec<u8>> {
    struct Count(usize);
    impl io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    // Strings, maps of strings, lists and booleans always serialise, and neither writer fails.
    let mut count = Count(0);
    serde_json::to_writer(&mut count, keys).unwrap_or_else(|_| unreachable!());
    let mut json = Zeroizing::new(Vec::with_capacity(count.0));
    serde_json::to_writer(&mut *json, keys).unwrap_or_else(|_| unreachable!());
    json
}

/// Parses the decrypted array; on failure keeps only the position, never the (secret) text.
pub(super) fn from_json(plaintext: &[u8]) -> Result<Vec<ExportedRoomKey>, KeyExportError> {
    serde_json::from_slice(plaintext).map_err(|error| KeyExportError::Json {
        line: error.line(),
        column: error.column(),
    })
}

/// `session_key` as a base64 string, never held in an unwiped `String` by us.
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
