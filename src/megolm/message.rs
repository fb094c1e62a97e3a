//! Megolm's wire message: `0x03 ‖ 1: message index (varint) ‖ 2: ciphertext ‖ MAC[8] ‖
//! Ed25519 signature[64]`.
//!
//! The MAC (HMAC-SHA-256 truncated to 8 bytes) covers version and body; the signature, by the
//! session's Ed25519 key, covers version, body and MAC. Decoding is strict (fields in order,
//! index present even when 0, shortest varints, nothing unknown) and keeps the received bytes.

use std::fmt;

use thiserror::Error;
use zeroize::Zeroizing;

use super::MESSAGE_VERSION;
use super::ratchet::MegolmRatchet;
use crate::codec::DecodeError;
use crate::codec::proto::{ProtoReader, ProtoWriter};
use crate::crypto::{CipherError, Ed25519KeyPair, Ed25519PublicKey, Ed25519Signature, base64};

const MAC_LENGTH: usize = 8;
const SIGNATURE_LENGTH: usize = Ed25519Signature::LENGTH;

/// Largest message accepted for decoding, as for Olm.
pub const MAX_MESSAGE_LENGTH: usize = crate::olm::MAX_MESSAGE_LENGTH;

/// Largest plaintext encrypted, so that every message we write we can also read (padding and
/// framing add at most 16 + 1 + 6 + 1 + 4 + 8 + 64 bytes).
pub const MAX_PLAINTEXT_LENGTH: usize = MAX_MESSAGE_LENGTH - 256;

/// Why a Megolm message was refused. Nothing is decrypted unless the signature and MAC hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MegolmDecryptError {
    /// The ratchet is not at the message's index.
    #[error("the message has index {message}, the ratchet is at {ratchet}")]
    WrongIndex {
        /// The message's index.
        message: u32,
        /// The ratchet's index.
        ratchet: u32,
    },
    /// The message's index is below the first index the session knows: its keys were never
    /// shared with us, or the message is not of this session.
    #[error("the message has index {message}, the session starts at {first_known}")]
    UnknownIndex {
        /// The message's index.
        message: u32,
        /// The session's first known index.
        first_known: u32,
    },
    /// The Ed25519 signature does not verify under the session's key (or the message belongs
    /// to another session).
    #[error("the message signature does not verify")]
    Signature,
    /// The MAC does not match, or the ciphertext is malformed.
    #[error(transparent)]
    Cipher(#[from] CipherError),
}

/// Why a plaintext could not be encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MegolmEncryptError {
    /// The plaintext is larger than [`MAX_PLAINTEXT_LENGTH`].
    #[error("the plaintext is {0} bytes, more than the limit of {MAX_PLAINTEXT_LENGTH}")]
    PlaintextTooLarge(usize),
}

/// A Megolm message, as received or as written by [`MegolmMessage::encrypt`].
#[derive(Clone, PartialEq, Eq)]
pub struct MegolmMessage {
    message_index: u32,
    ciphertext_range: (usize, usize),
    bytes: Vec<u8>,
}

impl MegolmMessage {
    /// Encrypts `plaintext` with the ratchet's keys for its current index and signs the result.
    /// The caller advances the ratchet afterwards.
    pub fn encrypt(
        ratchet: &MegolmRatchet,
        signing_key: &Ed25519KeyPair,
        plaintext: &[u8],
    ) -> Result<Self, MegolmEncryptError> {
        if plaintext.len() > MAX_PLAINTEXT_LENGTH {
            return Err(MegolmEncryptError::PlaintextTooLarge(plaintext.len()));
        }
        let keys = ratchet.cipher_keys();
        let ciphertext = keys.encrypt(plaintext);
        let mut bytes = ProtoWriter::with_prefix(
            &[MESSAGE_VERSION],
            ciphertext.len() + 16 + MAC_LENGTH + SIGNATURE_LENGTH,
        )
        .varint_field(1, u64::from(ratchet.index()))
        .bytes_field(2, &ciphertext)
        .finish();
        let end = bytes.len();
        let mac = keys.mac(&[&bytes]);
        bytes.extend_from_slice(&mac[..MAC_LENGTH]);
        let signature = signing_key.sign(&bytes);
        bytes.extend_from_slice(signature.as_bytes());
        Ok(Self {
            message_index: ratchet.index(),
            ciphertext_range: (end - ciphertext.len(), end),
            bytes,
        })
    }

    /// Checks the signature under `signing_key`, then the MAC with `ratchet`'s keys, then
    /// decrypts. The ratchet must be at the message's index.
    pub fn decrypt(
        &self,
        ratchet: &MegolmRatchet,
        signing_key: &Ed25519PublicKey,
    ) -> Result<Zeroizing<Vec<u8>>, MegolmDecryptError> {
        self.verify_signature(signing_key)?;
        self.open(ratchet)
    }

    /// Checks the MAC and decrypts, for a message whose signature was already verified.
    pub(crate) fn open(
        &self,
        ratchet: &MegolmRatchet,
    ) -> Result<Zeroizing<Vec<u8>>, MegolmDecryptError> {
        if ratchet.index() != self.message_index {
            return Err(MegolmDecryptError::WrongIndex {
                message: self.message_index,
                ratchet: ratchet.index(),
            });
        }
        let keys = ratchet.cipher_keys();
        keys.verify_mac(&[self.authenticated_bytes()], self.mac())?;
        Ok(keys.decrypt(self.ciphertext())?)
    }

    /// Checks the Ed25519 signature over version, body and MAC.
    pub fn verify_signature(
        &self,
        signing_key: &Ed25519PublicKey,
    ) -> Result<(), MegolmDecryptError> {
        signing_key
            .verify(self.signed_bytes(), &self.signature())
            .map_err(|_| MegolmDecryptError::Signature)
    }

    /// Decodes a message from its raw bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_MESSAGE_LENGTH {
            return Err(DecodeError::OutOfRange);
        }
        let body_length = bytes
            .len()
            .checked_sub(MAC_LENGTH + SIGNATURE_LENGTH)
            .filter(|&length| length > 0)
            .ok_or(DecodeError::Truncated)?;
        let body = &bytes[..body_length];
        if body[0] != MESSAGE_VERSION {
            return Err(DecodeError::UnsupportedVersion(u32::from(body[0])));
        }
        let mut reader = ProtoReader::new(&body[1..]);
        let (mut message_index, mut ciphertext) = (None, None);
        while let Some((field, value)) = reader.next_field()? {
            match field {
                1 => {
                    let index = value.varint(1)?;
                    message_index =
                        Some(u32::try_from(index).map_err(|_| DecodeError::OutOfRange)?);
                }
                2 => ciphertext = Some(value.bytes(2)?),
                other => return Err(DecodeError::UnexpectedField(other)),
            }
        }
        let ciphertext = ciphertext.ok_or(DecodeError::MissingField(2))?;
        let start = ciphertext.as_ptr() as usize - bytes.as_ptr() as usize;
        Ok(Self {
            message_index: message_index.ok_or(DecodeError::MissingField(1))?,
            ciphertext_range: (start, start + ciphertext.len()),
            bytes: bytes.to_vec(),
        })
    }

    /// Decodes unpadded (or padded) base64, as in a Matrix event's `ciphertext`.
    pub fn from_base64(text: &str) -> Result<Self, DecodeError> {
        // A ciphertext is public: decoded by table.
        let bytes = base64::decode_public(text).map_err(|_| DecodeError::OutOfRange)?;
        Self::decode(&bytes)
    }

    /// Unpadded base64 of the encoded message.
    pub fn to_base64(&self) -> String {
        base64::encode(&self.bytes)
    }

    /// The index of the ratchet that encrypted this message.
    pub fn message_index(&self) -> u32 {
        self.message_index
    }

    /// The AES-CBC ciphertext.
    pub fn ciphertext(&self) -> &[u8] {
        &self.bytes[self.ciphertext_range.0..self.ciphertext_range.1]
    }

    /// The truncated MAC.
    pub fn mac(&self) -> &[u8] {
        let end = self.bytes.len() - SIGNATURE_LENGTH;
        &self.bytes[end - MAC_LENGTH..end]
    }

    /// The sender's signature.
    pub fn signature(&self) -> Ed25519Signature {
        let mut signature = [0u8; SIGNATURE_LENGTH];
        signature.copy_from_slice(&self.bytes[self.bytes.len() - SIGNATURE_LENGTH..]);
        Ed25519Signature::from_bytes(signature)
    }

    /// The bytes the MAC covers: version and body as received.
    fn authenticated_bytes(&self) -> &[u8] {
        &self.bytes[..self.bytes.len() - SIGNATURE_LENGTH - MAC_LENGTH]
    }

    /// The bytes the signature covers: version, body and MAC as received.
    pub(crate) fn signed_bytes(&self) -> &[u8] {
        &self.bytes[..self.bytes.len() - SIGNATURE_LENGTH]
    }

    /// The encoded message, as a borrowed slice.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The encoded message.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.bytes.clone()
    }
}

impl fmt::Debug for MegolmMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MegolmMessage")
            .field("message_index", &self.message_index)
            .field("ciphertext_length", &self.ciphertext().len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> (MegolmRatchet, Ed25519KeyPair) {
        (
            MegolmRatchet::from_bytes(&[7; MegolmRatchet::LENGTH], 0),
            Ed25519KeyPair::from_seed(&[9; 32]),
        )
    }

    #[test]
    fn round_trip_writes_index_zero() {
        let (ratchet, signing) = fixtures();
        let message = MegolmMessage::encrypt(&ratchet, &signing, b"hello room").unwrap();
        assert_eq!(&message.as_bytes()[..3], &[0x03, 0x08, 0x00]);
        assert_eq!(message.as_bytes()[3], 0x12);
        let decoded = MegolmMessage::decode(message.as_bytes()).unwrap();
        assert_eq!(decoded, message);
        assert_eq!(decoded.message_index(), 0);
        let plaintext = decoded.decrypt(&ratchet, &signing.public_key()).unwrap();
        assert_eq!(&plaintext[..], b"hello room");
        assert_eq!(
            MegolmMessage::from_base64(&message.to_base64()).unwrap(),
            message
        );
    }

    #[test]
    fn decrypt_checks_signature_index_and_mac() {
        let (mut ratchet, signing) = fixtures();
        let message = MegolmMessage::encrypt(&ratchet, &signing, b"x").unwrap();
        let other = Ed25519KeyPair::from_seed(&[1; 32]).public_key();
        assert_eq!(
            message.decrypt(&ratchet, &other),
            Err(MegolmDecryptError::Signature)
        );
        ratchet.advance().unwrap();
        assert_eq!(
            message.decrypt(&ratchet, &signing.public_key()),
            Err(MegolmDecryptError::WrongIndex {
                message: 0,
                ratchet: 1
            })
        );
        // A wrong ratchet at the right index: the signature holds, the MAC does not.
        let wrong = MegolmRatchet::from_bytes(&[8; MegolmRatchet::LENGTH], 0);
        assert_eq!(
            message.decrypt(&wrong, &signing.public_key()),
            Err(MegolmDecryptError::Cipher(CipherError::Mac))
        );
    }

    #[test]
    fn decoding_is_strict() {
        let (mut ratchet, signing) = fixtures();
        ratchet.advance_to(300).unwrap();
        let message = MegolmMessage::encrypt(&ratchet, &signing, b"strict").unwrap();
        let bytes = message.as_bytes();
        assert_eq!(MegolmMessage::decode(bytes).unwrap().message_index(), 300);

        // Truncated anywhere.
        for length in 0..bytes.len() {
            assert!(MegolmMessage::decode(&bytes[..length]).is_err(), "{length}");
        }
        assert_eq!(
            MegolmMessage::decode(&bytes[..72]),
            Err(DecodeError::Truncated)
        );
        // Trailing bytes shift the MAC and signature into the body: refused as a field.
        let mut trailing = bytes.to_vec();
        trailing.push(0);
        assert!(MegolmMessage::decode(&trailing).is_err());
        // Bad version.
        let mut version = bytes.to_vec();
        version[0] = 2;
        assert_eq!(
            MegolmMessage::decode(&version),
            Err(DecodeError::UnsupportedVersion(2))
        );
        // Non-canonical varint: index 0 written as 0x80 0x00.
        let body = [0x03, 0x08, 0x80, 0x00, 0x12, 0x01, 0xAA];
        let padded = [&body[..], &[0u8; 72]].concat();
        assert_eq!(
            MegolmMessage::decode(&padded),
            Err(DecodeError::NonCanonicalVarint)
        );
        // Missing index, missing ciphertext, fields out of order, an unknown field.
        let cases: [(&[u8], DecodeError); 4] = [
            (&[0x03, 0x12, 0x01, 0xAA], DecodeError::MissingField(1)),
            (&[0x03, 0x08, 0x01], DecodeError::MissingField(2)),
            (
                &[0x03, 0x12, 0x01, 0xAA, 0x08, 0x01],
                DecodeError::UnexpectedField(1),
            ),
            (
                &[0x03, 0x08, 0x01, 0x18, 0x01],
                DecodeError::UnexpectedField(3),
            ),
        ];
        for (body, error) in cases {
            let message = [body, &[0u8; 72]].concat();
            assert_eq!(MegolmMessage::decode(&message), Err(error));
        }
        // An index beyond u32.
        let big = [
            &[0x03, 0x08, 0x80, 0x80, 0x80, 0x80, 0x10, 0x12, 0x00][..],
            &[0; 72],
        ]
        .concat();
        assert_eq!(MegolmMessage::decode(&big), Err(DecodeError::OutOfRange));
        // Too long.
        let huge = vec![0u8; MAX_MESSAGE_LENGTH + 1];
        assert_eq!(
            MegolmMessage::encrypt(&ratchet, &signing, &huge),
            Err(MegolmEncryptError::PlaintextTooLarge(huge.len()))
        );
        assert_eq!(MegolmMessage::decode(&huge), Err(DecodeError::OutOfRange));
    }

    #[test]
    fn tampering_breaks_the_signature() {
        let (ratchet, signing) = fixtures();
        let message = MegolmMessage::encrypt(&ratchet, &signing, b"signed").unwrap();
        for position in [
            0,
            4,
            message.as_bytes().len() - 70,
            message.as_bytes().len() - 1,
        ] {
            let mut bytes = message.to_bytes();
            bytes[position] ^= 1;
            if let Ok(tampered) = MegolmMessage::decode(&bytes) {
                assert_eq!(
                    tampered.decrypt(&ratchet, &signing.public_key()),
                    Err(MegolmDecryptError::Signature),
                    "{position}"
                );
            }
        }
    }
}
