//! Hand-written wire codecs. Canonical output and strict input matter here more than anywhere:
//! MACs cover the exact bytes, so the encoders write every field (index 0 included) in one
//! order, and the decoders refuse anything an encoder would not have written.

pub(crate) mod bytes;
pub(crate) mod json;
pub(crate) mod json_value;
pub(crate) mod proto;

use thiserror::Error;

/// Why bytes could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended in the middle of a value.
    #[error("the input is truncated")]
    Truncated,
    /// Bytes remain after the last expected value.
    #[error("unexpected trailing bytes")]
    TrailingBytes,
    /// A varint is longer than needed, or overflows its type.
    #[error("a varint is not in its shortest form or is too large")]
    NonCanonicalVarint,
    /// A field is not expected here, is repeated, or comes out of order.
    #[error("unexpected field number {0}")]
    UnexpectedField(u32),
    /// A required field is absent.
    #[error("required field {0} is missing")]
    MissingField(u32),
    /// A field has the wrong length.
    #[error("field {field} has length {actual}, expected {expected}")]
    BadLength {
        /// The field number (or the position in a fixed layout).
        field: u32,
        /// The length the format requires.
        expected: usize,
        /// The length found.
        actual: usize,
    },
    /// The version byte is not one this format knows.
    #[error("unsupported version {0}")]
    UnsupportedVersion(u32),
    /// A public key is not in its canonical encoding.
    #[error("a public key is not canonically encoded")]
    NonCanonicalKey,
    /// A value is out of the range the format allows.
    #[error("a value is out of range")]
    OutOfRange,
    /// A public key's type byte is not libsignal's `0x05` (OMEMO 0.3).
    #[error("unknown key type byte {0:#04x}")]
    KeyType(u8),
    /// The bytes are not a well-formed protobuf message (OMEMO).
    #[error("malformed protobuf")]
    Protobuf,
    /// A protobuf message that the MAC does not cover is not in the form every peer writes
    /// (unknown, repeated or reordered fields, overlong varints).
    #[error("the protobuf is not in canonical form")]
    NonCanonicalProtobuf,
}
