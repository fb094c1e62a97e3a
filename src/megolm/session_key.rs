//! The keys a Megolm session is shared with.
//!
//! Session key (`m.room_key`): `0x02 ‖ u32 BE index ‖ ratchet[128] ‖ Ed25519 key[32] ‖
//! signature[64]` = 229 bytes, the signature by the session's own key over the first 165 bytes,
//! checked strictly when decoding. Exported key (forwarded keys, key export): `0x01 ‖ index ‖
//! ratchet ‖ Ed25519 key` = 165 bytes, unsigned. Both hold the ratchet: encodings are wiped on
//! drop and nothing secret is printed.

use std::fmt;

use thiserror::Error;
use zeroize::Zeroizing;

use super::ratchet::MegolmRatchet;
use crate::codec::DecodeError;
use crate::codec::bytes::{ByteReader, ByteWriter};
use crate::crypto::{Ed25519KeyPair, Ed25519PublicKey, Ed25519Signature, base64};

const SESSION_KEY_VERSION: u8 = 2;
const EXPORTED_KEY_VERSION: u8 = 1;
const UNSIGNED_LENGTH: usize = 1 + 4 + MegolmRatchet::LENGTH + Ed25519PublicKey::LENGTH;

/// Why a session key or exported key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SessionKeyError {
    /// The layout is wrong: length, version or base64.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The Ed25519 key is not a valid point.
    #[error("the session's Ed25519 key is invalid")]
    InvalidKey,
    /// The signature does not verify (strictly) under the session's key.
    #[error("the session key's signature does not verify")]
    Signature,
}

/// The signed key a sender shares in `m.room_key`: its ratchet at some index and its public key.
#[derive(Clone)]
pub struct SessionKey {
    ratchet: MegolmRatchet,
    signing_key: Ed25519PublicKey,
    signature: Ed25519Signature,
}

impl SessionKey {
    /// The length of the encoding.
    pub const LENGTH: usize = UNSIGNED_LENGTH + Ed25519Signature::LENGTH;

    /// Signs `ratchet` with the session's key pair.
    pub fn new(ratchet: &MegolmRatchet, signing_key: &Ed25519KeyPair) -> Self {
        let public = signing_key.public_key();
        let unsigned = encode_unsigned(SESSION_KEY_VERSION, ratchet, &public);
        Self {
            ratchet: ratchet.clone(),
            signing_key: public,
            signature: signing_key.sign(&unsigned),
        }
    }

    /// Decodes 229 bytes and verifies the signature.
    pub fn decode(bytes: &[u8]) -> Result<Self, SessionKeyError> {
        let (ratchet, signing_key, mut reader) = decode_unsigned(SESSION_KEY_VERSION, bytes)?;
        let signature = Ed25519Signature::from_bytes(reader.array()?);
        reader.finish()?;
        signing_key
            .verify(&bytes[..UNSIGNED_LENGTH], &signature)
            .map_err(|_| SessionKeyError::Signature)?;
        Ok(Self {
            ratchet,
            signing_key,
            signature,
        })
    }

    /// Decodes (padded or unpadded) base64, as in `m.room_key`'s `session_key`.
    pub fn from_base64(text: &str) -> Result<Self, SessionKeyError> {
        let bytes = base64::decode_secret(text).map_err(|_| DecodeError::OutOfRange)?;
        Self::decode(&bytes)
    }

    /// The encoding, wiped on drop.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut bytes = encode_unsigned(SESSION_KEY_VERSION, &self.ratchet, &self.signing_key);
        bytes.extend_from_slice(self.signature.as_bytes());
        bytes
    }

    /// Unpadded base64 of the encoding, wiped on drop.
    pub fn to_base64(&self) -> Zeroizing<String> {
        base64::encode_secret(&self.to_bytes())
    }

    /// The ratchet at the key's first index.
    pub fn ratchet(&self) -> &MegolmRatchet {
        &self.ratchet
    }

    /// The session's Ed25519 key; its base64 is the session id.
    pub fn signing_key(&self) -> Ed25519PublicKey {
        self.signing_key
    }

    /// The session id: unpadded base64 of the Ed25519 key.
    pub fn session_id(&self) -> String {
        self.signing_key.to_base64()
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionKey")
            .field("index", &self.ratchet.index())
            .field("signing_key", &self.signing_key)
            .finish_non_exhaustive()
    }
}

/// An unsigned session key, as forwarded or exported: who holds one can decrypt from its index on.
#[derive(Clone)]
pub struct ExportedSessionKey {
    ratchet: MegolmRatchet,
    signing_key: Ed25519PublicKey,
}

impl ExportedSessionKey {
    /// The length of the encoding.
    pub const LENGTH: usize = UNSIGNED_LENGTH;

    /// The export of `ratchet` for the session with key `signing_key`.
    pub fn new(ratchet: &MegolmRatchet, signing_key: Ed25519PublicKey) -> Self {
        Self {
            ratchet: ratchet.clone(),
            signing_key,
        }
    }

    /// Takes `ratchet` as it is, without a copy.
    pub(crate) fn from_ratchet(ratchet: MegolmRatchet, signing_key: Ed25519PublicKey) -> Self {
        Self {
            ratchet,
            signing_key,
        }
    }

    /// Decodes 165 bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, SessionKeyError> {
        let (ratchet, signing_key, reader) = decode_unsigned(EXPORTED_KEY_VERSION, bytes)?;
        reader.finish()?;
        Ok(Self {
            ratchet,
            signing_key,
        })
    }

    /// Decodes (padded or unpadded) base64.
    pub fn from_base64(text: &str) -> Result<Self, SessionKeyError> {
        let bytes = base64::decode_secret(text).map_err(|_| DecodeError::OutOfRange)?;
        Self::decode(&bytes)
    }

    /// The encoding, wiped on drop.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        encode_unsigned(EXPORTED_KEY_VERSION, &self.ratchet, &self.signing_key)
    }

    /// Unpadded base64 of the encoding, wiped on drop.
    pub fn to_base64(&self) -> Zeroizing<String> {
        base64::encode_secret(&self.to_bytes())
    }

    /// The ratchet at the key's first index.
    pub fn ratchet(&self) -> &MegolmRatchet {
        &self.ratchet
    }

    /// The session's Ed25519 key.
    pub fn signing_key(&self) -> Ed25519PublicKey {
        self.signing_key
    }
}

impl From<&SessionKey> for ExportedSessionKey {
    fn from(key: &SessionKey) -> Self {
        Self::new(&key.ratchet, key.signing_key)
    }
}

impl fmt::Debug for ExportedSessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExportedSessionKey")
            .field("index", &self.ratchet.index())
            .field("signing_key", &self.signing_key)
            .finish_non_exhaustive()
    }
}

fn encode_unsigned(
    version: u8,
    ratchet: &MegolmRatchet,
    signing_key: &Ed25519PublicKey,
) -> Zeroizing<Vec<u8>> {
    // Room for a signature too, so `SessionKey::to_bytes` appends it without reallocating.
    let mut writer = ByteWriter::with_capacity(SessionKey::LENGTH);
    writer
        .u8(version)
        .u32(ratchet.index())
        .bytes(ratchet.as_bytes())
        .bytes(signing_key.as_bytes());
    writer.finish()
}

fn decode_unsigned(
    version: u8,
    bytes: &[u8],
) -> Result<(MegolmRatchet, Ed25519PublicKey, ByteReader<'_>), SessionKeyError> {
    let mut reader = ByteReader::new(bytes);
    let found = reader.u8()?;
    if found != version {
        return Err(DecodeError::UnsupportedVersion(u32::from(found)).into());
    }
    let index = reader.u32()?;
    let ratchet = MegolmRatchet::from_bytes(&*reader.secret()?, index);
    let signing_key =
        Ed25519PublicKey::from_bytes(&reader.array()?).map_err(|_| SessionKeyError::InvalidKey)?;
    Ok((ratchet, signing_key, reader))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> (MegolmRatchet, Ed25519KeyPair) {
        let mut ratchet = MegolmRatchet::from_bytes(&[5; MegolmRatchet::LENGTH], 0);
        ratchet.advance_to(0x0102_0304).unwrap();
        (ratchet, Ed25519KeyPair::from_seed(&[6; 32]))
    }

    #[test]
    fn session_key_round_trip() {
        let (ratchet, signing) = fixtures();
        let key = SessionKey::new(&ratchet, &signing);
        let bytes = key.to_bytes();
        assert_eq!(bytes.len(), SessionKey::LENGTH);
        // Written in one buffer sized for it: no reallocation left a copy of the ratchet.
        assert_eq!(bytes.capacity(), SessionKey::LENGTH);
        assert_eq!(SessionKey::LENGTH, 229);
        assert_eq!(&bytes[..5], &[2, 1, 2, 3, 4]);
        assert_eq!(&bytes[5..133], ratchet.as_bytes());
        let decoded = SessionKey::decode(&bytes).unwrap();
        assert_eq!(decoded.ratchet().as_bytes(), ratchet.as_bytes());
        assert_eq!(decoded.ratchet().index(), 0x0102_0304);
        assert_eq!(decoded.signing_key(), signing.public_key());
        assert_eq!(decoded.session_id(), signing.public_key().to_base64());
        let again = SessionKey::from_base64(&key.to_base64()).unwrap();
        assert_eq!(*again.to_bytes(), *bytes);
    }

    #[test]
    fn session_key_is_strict() {
        let (ratchet, signing) = fixtures();
        let bytes = SessionKey::new(&ratchet, &signing).to_bytes();
        assert_eq!(
            SessionKey::decode(&bytes[..228]).unwrap_err(),
            SessionKeyError::Decode(DecodeError::Truncated)
        );
        let trailing = [&bytes[..], &[0]].concat();
        assert_eq!(
            SessionKey::decode(&trailing).unwrap_err(),
            SessionKeyError::Decode(DecodeError::TrailingBytes)
        );
        let mut version = bytes.to_vec();
        version[0] = 1;
        assert_eq!(
            SessionKey::decode(&version).unwrap_err(),
            SessionKeyError::Decode(DecodeError::UnsupportedVersion(1))
        );
        // Any change to the signed part or the signature breaks the signature.
        for position in [1, 4, 5, 132, 228] {
            let mut tampered = bytes.to_vec();
            tampered[position] ^= 0x10;
            assert_eq!(
                SessionKey::decode(&tampered).unwrap_err(),
                SessionKeyError::Signature,
                "{position}"
            );
        }
        // A signature with S ≥ ℓ (S + ℓ) is refused by the strict verifier.
        let mut malleable = bytes.to_vec();
        let order: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for (byte, add) in malleable[197..].iter_mut().zip(order) {
            let sum = u16::from(*byte) + u16::from(add) + carry;
            *byte = sum as u8;
            carry = sum >> 8;
        }
        assert_eq!(
            SessionKey::decode(&malleable).unwrap_err(),
            SessionKeyError::Signature
        );
    }

    #[test]
    fn exported_key_round_trip_and_strictness() {
        let (ratchet, signing) = fixtures();
        let session_key = SessionKey::new(&ratchet, &signing);
        let exported = ExportedSessionKey::from(&session_key);
        let bytes = exported.to_bytes();
        assert_eq!(bytes.len(), 165);
        assert_eq!(bytes[0], 1);
        assert_eq!(&bytes[1..], &session_key.to_bytes()[1..165]);
        let decoded = ExportedSessionKey::decode(&bytes).unwrap();
        assert_eq!(decoded.ratchet().as_bytes(), ratchet.as_bytes());
        assert_eq!(decoded.signing_key(), signing.public_key());
        let again = ExportedSessionKey::from_base64(&exported.to_base64()).unwrap();
        assert_eq!(*again.to_bytes(), *bytes);

        assert_eq!(
            ExportedSessionKey::decode(&bytes[..164]).unwrap_err(),
            SessionKeyError::Decode(DecodeError::Truncated)
        );
        let trailing = [&bytes[..], &[0]].concat();
        assert_eq!(
            ExportedSessionKey::decode(&trailing).unwrap_err(),
            SessionKeyError::Decode(DecodeError::TrailingBytes)
        );
        // A signed session key is not an exported one, nor the other way round.
        assert_eq!(
            ExportedSessionKey::decode(&session_key.to_bytes()[..165]).unwrap_err(),
            SessionKeyError::Decode(DecodeError::UnsupportedVersion(2))
        );
        assert_eq!(
            SessionKey::decode(&[&bytes[..], &[0; 64]].concat()).unwrap_err(),
            SessionKeyError::Decode(DecodeError::UnsupportedVersion(1))
        );
    }

    #[test]
    fn debug_hides_the_ratchet() {
        let (ratchet, signing) = fixtures();
        let key = SessionKey::new(&ratchet, &signing);
        let text = format!("{key:?} {:?}", ExportedSessionKey::from(&key));
        let public = signing.public_key();
        assert_eq!(
            text,
            format!(
                "SessionKey {{ index: 16909060, signing_key: {public:?}, .. }} \
                 ExportedSessionKey {{ index: 16909060, signing_key: {public:?}, .. }}"
            )
        );
    }
}
