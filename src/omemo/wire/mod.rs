//! The ratchet messages and key exchanges of both OMEMO versions, as protobuf.
//!
//! Encoding and decoding go through [`fields`], one reader and writer for every message type.
//! Every field is optional and written in field number order: the encoders set every field, so the output has all of them (zero values
//! included, as proto2 `required` demands) in the order python-omemo and libsignal write them,
//! and the decoders can tell a missing field from a zero. The MAC always covers the bytes as
//! received, never a re-encoding.

mod fields;
pub(crate) mod omemo03;
pub(crate) mod omemo2;

use crate::codec::DecodeError;

/// The largest ratchet message or key exchange accepted (they carry 32 to 48 bytes of key
/// material, so real ones are under 300 bytes).
pub const MAX_MESSAGE_LENGTH: usize = 4096;

pub(crate) fn check_length(bytes: &[u8]) -> Result<(), DecodeError> {
    if bytes.len() > MAX_MESSAGE_LENGTH {
        Err(DecodeError::OutOfRange)
    } else {
        Ok(())
    }
}

pub(crate) fn required<T>(field: Option<T>, number: u32) -> Result<T, DecodeError> {
    field.ok_or(DecodeError::MissingField(number))
}

pub(crate) fn fixed_field<const N: usize>(
    field: Option<Vec<u8>>,
    number: u32,
) -> Result<[u8; N], DecodeError> {
    let bytes = required(field, number)?;
    bytes
        .as_slice()
        .try_into()
        .map_err(|_| DecodeError::BadLength {
            field: number,
            expected: N,
            actual: bytes.len(),
        })
}

/// A received X25519 public key: its encoding must be canonical (`u < p`, bit 255 clear), since
/// X25519 ignores bit 255 and OMEMO 2's MAC does not cover the key exchange's keys: a flipped
/// bit would otherwise go unnoticed.
pub(crate) fn public_key(
    field: Option<Vec<u8>>,
    number: u32,
) -> Result<crate::crypto::Curve25519PublicKey, DecodeError> {
    let key = crate::crypto::Curve25519PublicKey::from_bytes(fixed_field(field, number)?);
    if key.is_canonical() {
        Ok(key)
    } else {
        Err(DecodeError::NonCanonicalKey)
    }
}

/// Decodes a message the MAC does not cover, refusing any form but the canonical one (all
/// fields in number order, each once, shortest varints), so that no bit of it can change
/// unnoticed.
fn decode_canonical<'a, const N: usize>(
    bytes: &'a [u8],
    kinds: [fields::Field<'a>; N],
) -> Result<fields::Fields<'a, N>, DecodeError> {
    let message = fields::Fields::decode(bytes, kinds)?;
    if message.is_encoding_of(bytes) {
        Ok(message)
    } else {
        Err(DecodeError::NonCanonicalProtobuf)
    }
}

/// A ratchet message as decoded, with the exact bytes its MAC covers (opaque: the session
/// reads it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatchetMessage {
    pub(crate) ratchet_key: crate::crypto::Curve25519PublicKey,
    pub(crate) index: u32,
    pub(crate) previous_chain_length: u32,
    pub(crate) ciphertext: Vec<u8>,
    /// The received bytes the MAC covers (after the identity keys or associated data).
    pub(crate) authenticated: Vec<u8>,
    pub(crate) mac: Vec<u8>,
}

impl RatchetMessage {
    /// The sender's ratchet public key.
    pub fn ratchet_key(&self) -> crate::crypto::Curve25519PublicKey {
        self.ratchet_key
    }

    /// The message's index in its chain (`n`, `counter`).
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The length of the sender's previous chain (`pn`, `previousCounter`).
    pub fn previous_chain_length(&self) -> u32 {
        self.previous_chain_length
    }

    /// The received bytes the MAC covers after the identity keys (OMEMO 2: the `OMEMOMessage`;
    /// 0.3: version byte and `SignalMessage`).
    pub fn authenticated(&self) -> &[u8] {
        &self.authenticated
    }
}

/// The X3DH parameters an initiator sends with its messages until the first reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyExchange {
    /// The responder's one-time pre-key that was used (always present in OMEMO 2).
    pub pre_key_id: Option<u32>,
    /// The responder's signed pre-key that was used.
    pub signed_pre_key_id: u32,
    /// The initiator's identity key.
    pub identity_key: crate::omemo::IdentityKey,
    /// The initiator's ephemeral (base) key.
    pub base_key: crate::crypto::Curve25519PublicKey,
    /// OMEMO 0.3's `registrationId` (Conversations puts its device id there).
    pub registration_id: Option<u32>,
}
