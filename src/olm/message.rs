//! Olm's wire messages and their JSON form.
//!
//! Normal: `0x03 ‖ 1: ratchet key ‖ 2: chain index ‖ 4: ciphertext ‖ MAC[8]`.
//! Pre-key: `0x03 ‖ 1: one-time key ‖ 2: base key ‖ 3: identity key ‖ 4: normal message`.
//! Decoding is strict (fields in order, no unknown or repeated fields, shortest varints, exact
//! key lengths, nothing trailing) and keeps the received bytes, which are what the MAC covers.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{OlmProfile, PROTOCOL_VERSION};
use crate::codec::DecodeError;
use crate::codec::proto::{ProtoReader, ProtoWriter};
use crate::crypto::{Curve25519PublicKey, base64};
use crate::ratchet::{RatchetProfile, ReceivedHeader, Sealed, SendingHeader};

const MAC_LENGTH: usize = OlmProfile::MAC_LENGTH;

/// Largest message accepted for decoding: far above any real event, small enough to bound work.
pub const MAX_MESSAGE_LENGTH: usize = 256 * 1024;

/// Largest plaintext encrypted: its pre-key message (padding, keys and framing add at most
/// 16 + 3 × 34 + 64 bytes) stays within [`MAX_MESSAGE_LENGTH`], so every message we write we
/// can also read.
pub const MAX_PLAINTEXT_LENGTH: usize = MAX_MESSAGE_LENGTH - 512;

/// A normal Olm message.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    ratchet_key: Curve25519PublicKey,
    chain_index: u32,
    ciphertext_range: (usize, usize),
    bytes: Vec<u8>,
}

impl Message {
    pub(crate) fn encode_body(
        ratchet_key: &Curve25519PublicKey,
        index: u32,
        ciphertext: &[u8],
    ) -> Vec<u8> {
        ProtoWriter::with_prefix(&[PROTOCOL_VERSION], ciphertext.len() + 48 + MAC_LENGTH)
            .bytes_field(1, ratchet_key.as_bytes())
            .varint_field(2, u64::from(index))
            .bytes_field(4, ciphertext)
            .finish()
    }

    /// Assembles the message our encoder just wrote, without decoding it again: the
    /// ciphertext is the last field of the body.
    pub(crate) fn from_sealed(
        sealed: Sealed,
        header: &SendingHeader,
        ciphertext_length: usize,
    ) -> Self {
        let Sealed {
            message: mut bytes,
            mac,
        } = sealed;
        let end = bytes.len();
        bytes.extend_from_slice(&mac);
        Self {
            ratchet_key: header.ratchet_key,
            chain_index: header.index,
            ciphertext_range: (end - ciphertext_length, end),
            bytes,
        }
    }

    /// Decodes a normal message from its raw bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_MESSAGE_LENGTH {
            return Err(DecodeError::OutOfRange);
        }
        let body_length = bytes
            .len()
            .checked_sub(MAC_LENGTH)
            .filter(|&length| length > 0)
            .ok_or(DecodeError::Truncated)?;
        let body = &bytes[..body_length];
        check_version(body)?;
        let mut reader = ProtoReader::new(&body[1..]);
        let (mut ratchet_key, mut chain_index, mut ciphertext) = (None, None, None);
        while let Some((field, value)) = reader.next_field()? {
            match field {
                1 => ratchet_key = Some(canonical_key(value.fixed(1)?)?),
                2 => {
                    let index = value.varint(2)?;
                    chain_index = Some(u32::try_from(index).map_err(|_| DecodeError::OutOfRange)?);
                }
                4 => ciphertext = Some(value.bytes(4)?),
                other => return Err(DecodeError::UnexpectedField(other)),
            }
        }
        let ciphertext = ciphertext.ok_or(DecodeError::MissingField(4))?;
        let start = ciphertext.as_ptr() as usize - bytes.as_ptr() as usize;
        Ok(Self {
            ratchet_key: ratchet_key.ok_or(DecodeError::MissingField(1))?,
            chain_index: chain_index.ok_or(DecodeError::MissingField(2))?,
            ciphertext_range: (start, start + ciphertext.len()),
            bytes: bytes.to_vec(),
        })
    }

    /// The sender's ratchet key.
    pub fn ratchet_key(&self) -> Curve25519PublicKey {
        self.ratchet_key
    }

    /// The message's index in its chain.
    pub fn chain_index(&self) -> u32 {
        self.chain_index
    }

    /// The AES-CBC ciphertext.
    pub fn ciphertext(&self) -> &[u8] {
        &self.bytes[self.ciphertext_range.0..self.ciphertext_range.1]
    }

    /// The bytes the MAC covers: version and body as received.
    pub(crate) fn authenticated_bytes(&self) -> &[u8] {
        &self.bytes[..self.bytes.len() - MAC_LENGTH]
    }

    /// The truncated MAC.
    pub fn mac(&self) -> &[u8] {
        &self.bytes[self.bytes.len() - MAC_LENGTH..]
    }

    pub(crate) fn header(&self) -> ReceivedHeader {
        ReceivedHeader {
            ratchet_key: self.ratchet_key,
            index: self.chain_index,
        }
    }

    /// The encoded message.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.bytes.clone()
    }

    /// The encoded message, as a borrowed slice.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("ratchet_key", &self.ratchet_key)
            .field("chain_index", &self.chain_index)
            .field("ciphertext_length", &self.ciphertext().len())
            .finish()
    }
}

/// The first messages of a session: the keys Bob needs to build it, around a normal message.
#[derive(Clone, PartialEq, Eq)]
pub struct PreKeyMessage {
    one_time_key: Curve25519PublicKey,
    base_key: Curve25519PublicKey,
    identity_key: Curve25519PublicKey,
    message: Message,
    bytes: Vec<u8>,
}

impl PreKeyMessage {
    pub(crate) fn new(
        one_time_key: Curve25519PublicKey,
        base_key: Curve25519PublicKey,
        identity_key: Curve25519PublicKey,
        message: Message,
    ) -> Self {
        let bytes = ProtoWriter::with_prefix(&[PROTOCOL_VERSION], message.bytes.len() + 120)
            .bytes_field(1, one_time_key.as_bytes())
            .bytes_field(2, base_key.as_bytes())
            .bytes_field(3, identity_key.as_bytes())
            .bytes_field(4, &message.bytes)
            .finish();
        Self {
            one_time_key,
            base_key,
            identity_key,
            message,
            bytes,
        }
    }

    /// Decodes a pre-key message from its raw bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_MESSAGE_LENGTH {
            return Err(DecodeError::OutOfRange);
        }
        check_version(bytes)?;
        let mut reader = ProtoReader::new(&bytes[1..]);
        let (mut one_time_key, mut base_key, mut identity_key, mut message) =
            (None, None, None, None);
        while let Some((field, value)) = reader.next_field()? {
            match field {
                1 => one_time_key = Some(canonical_key(value.fixed(1)?)?),
                2 => base_key = Some(canonical_key(value.fixed(2)?)?),
                3 => identity_key = Some(canonical_key(value.fixed(3)?)?),
                4 => message = Some(Message::decode(value.bytes(4)?)?),
                other => return Err(DecodeError::UnexpectedField(other)),
            }
        }
        Ok(Self {
            one_time_key: one_time_key.ok_or(DecodeError::MissingField(1))?,
            base_key: base_key.ok_or(DecodeError::MissingField(2))?,
            identity_key: identity_key.ok_or(DecodeError::MissingField(3))?,
            message: message.ok_or(DecodeError::MissingField(4))?,
            bytes: bytes.to_vec(),
        })
    }

    /// The one-time (or fallback) key of the receiver that the sender used.
    pub fn one_time_key(&self) -> Curve25519PublicKey {
        self.one_time_key
    }

    /// The sender's base key for this session.
    pub fn base_key(&self) -> Curve25519PublicKey {
        self.base_key
    }

    /// The sender's identity key.
    pub fn identity_key(&self) -> Curve25519PublicKey {
        self.identity_key
    }

    /// The normal message inside.
    pub fn message(&self) -> &Message {
        &self.message
    }

    /// The encoded message.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.bytes.clone()
    }

    /// The encoded message, as a borrowed slice.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Debug for PreKeyMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreKeyMessage")
            .field("one_time_key", &self.one_time_key)
            .field("base_key", &self.base_key)
            .field("identity_key", &self.identity_key)
            .field("message", &self.message)
            .finish()
    }
}

/// X25519 ignores the top bit and reduces values ≥ p, so 20 encodings stand for some keys. Honest
/// peers never write them; refusing them keeps a key, and the session id made from it, unique.
fn canonical_key(bytes: [u8; 32]) -> Result<Curve25519PublicKey, DecodeError> {
    let key = Curve25519PublicKey::from_bytes(bytes);
    if key.is_canonical() {
        Ok(key)
    } else {
        Err(DecodeError::NonCanonicalKey)
    }
}

fn check_version(bytes: &[u8]) -> Result<(), DecodeError> {
    match bytes.first() {
        None => Err(DecodeError::Truncated),
        Some(&PROTOCOL_VERSION) => Ok(()),
        Some(&other) => Err(DecodeError::UnsupportedVersion(u32::from(other))),
    }
}

/// The `type` of an Olm message in a Matrix event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    /// 0: a pre-key message.
    PreKey,
    /// 1: a normal message.
    Normal,
}

impl MessageType {
    /// The number Matrix uses.
    pub fn as_u8(self) -> u8 {
        match self {
            MessageType::PreKey => 0,
            MessageType::Normal => 1,
        }
    }
}

/// Either kind of Olm message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OlmMessage {
    /// A message that can start a session.
    PreKey(PreKeyMessage),
    /// A message of an established session.
    Normal(Message),
}

impl OlmMessage {
    /// The message type.
    pub fn message_type(&self) -> MessageType {
        match self {
            OlmMessage::PreKey(_) => MessageType::PreKey,
            OlmMessage::Normal(_) => MessageType::Normal,
        }
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            OlmMessage::PreKey(message) => message.as_bytes(),
            OlmMessage::Normal(message) => message.as_bytes(),
        }
    }

    /// Decodes from a Matrix `type` number and raw bytes.
    pub fn from_parts(message_type: u8, bytes: &[u8]) -> Result<Self, DecodeError> {
        match message_type {
            0 => PreKeyMessage::decode(bytes).map(OlmMessage::PreKey),
            1 => Message::decode(bytes).map(OlmMessage::Normal),
            other => Err(DecodeError::UnsupportedVersion(u32::from(other))),
        }
    }

    /// The `(type, base64 body)` pair of a Matrix event.
    pub fn to_parts(&self) -> (u8, String) {
        (self.message_type().as_u8(), base64::encode(self.as_bytes()))
    }

    /// Decodes the `(type, base64 body)` pair of a Matrix event.
    pub fn from_base64_parts(message_type: u8, body: &str) -> Result<Self, DecodeError> {
        let bytes = base64::decode(body).map_err(|_| DecodeError::OutOfRange)?;
        Self::from_parts(message_type, &bytes)
    }
}

#[derive(Serialize, Deserialize)]
struct JsonMessage {
    #[serde(rename = "type")]
    message_type: u8,
    body: String,
}

impl Serialize for OlmMessage {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (message_type, body) = self.to_parts();
        JsonMessage { message_type, body }.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for OlmMessage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let json = JsonMessage::deserialize(deserializer)?;
        OlmMessage::from_base64_parts(json.message_type, &json.body)
            .map_err(serde::de::Error::custom)
    }
}
