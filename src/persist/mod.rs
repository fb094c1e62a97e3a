//! Saving and restoring state objects, and moving them to and from libolm.
//!
//! # Our format
//!
//! `"olmo" ‖ format version (1 byte) ‖ object kind (1 byte) ‖ nonce (24) ‖ ciphertext ‖ tag (16)`:
//! XChaCha20-Poly1305 under the caller's 32-byte [`StorageKey`], with a fresh random nonce for
//! every save (never one derived from the key) and the six header bytes as associated data, so
//! an account cannot be restored as a session or the version byte rewritten.
//!
//! Inside, each object starts with its own schema version (u32) followed by fixed-width
//! big-endian fields. Public keys are stored beside their secrets, so a restore is a decryption
//! and a copy, with no curve arithmetic beyond what a secret's own constructor does (an Ed25519
//! seed, an OMEMO identity), whose derived public keys are checked against the stored ones.
//!
//! Kinds: Olm account (1) and session (2), Megolm outbound (3) and inbound (4) sessions and
//! replay record (5), OMEMO device (6), OMEMO 2 session (7) and OMEMO 0.3 session (8).
//!
//! Each object's fields are laid out by a `storage` module beside it (`olm::account::storage`,
//! `megolm::inbound::storage`, `omemo::device::storage`, ...), as `to_record`/`from_record`; this
//! module keeps what they share: the envelope, the kinds, the key and the errors.
//!
//! # Upgrades
//!
//! Readers dispatch on the schema version and convert older schemas on read; writers always
//! write the newest. A change of the envelope itself (cipher, header) bumps the format version,
//! and `open` keeps accepting every earlier format version it has shipped. Restoring never
//! silently drops state: an unknown version is [`PersistError::UnsupportedVersion`].
//!
//! # libolm
//!
//! [`libolm`] holds what libolm's own pickles (Account v4, Session v1, group sessions) share;
//! each object's pickle form is its `libolm_pickle` module, so applications can migrate from
//! libolm and, if they must, back.

pub(crate) mod fields;
pub mod libolm;

use std::fmt;

use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use rand_core::CryptoRng;
use thiserror::Error;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

pub use libolm::LibolmPickleError;

use crate::codec::DecodeError;

const MAGIC: &[u8; 4] = b"olmo";
const FORMAT_VERSION: u8 = 1;
const HEADER_LENGTH: usize = MAGIC.len() + 2;
const NONCE_LENGTH: usize = 24;
const TAG_LENGTH: usize = 16;

/// What a stored blob holds; part of the authenticated header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    Account = 1,
    Session = 2,
    GroupSession = 3,
    InboundGroupSession = 4,
    ReplayRecord = 5,
    OmemoDevice = 6,
    Omemo2Session = 7,
    Omemo03Session = 8,
}

/// The caller's 32-byte key for stored state. Wiped on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct StorageKey([u8; 32]);

impl StorageKey {
    /// Wraps 32 key bytes (from the platform keystore, or a KDF of a passphrase).
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for StorageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StorageKey(<secret>)")
    }
}

/// Why stored state could not be restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PersistError {
    /// The blob is not in our format (bad magic or too short).
    #[error("not an olmo storage blob")]
    NotOurFormat,
    /// The blob was written by a newer or unknown version.
    #[error("unsupported storage version {0}")]
    UnsupportedVersion(u32),
    /// The blob holds another kind of object.
    #[error("the blob holds a different kind of object")]
    WrongKind,
    /// The key is wrong or the blob was altered.
    #[error("the blob does not authenticate under this key")]
    Authentication,
    /// The decrypted contents are malformed.
    #[error("malformed stored state: {0}")]
    Malformed(#[from] DecodeError),
}

pub(crate) fn seal(
    kind: Kind,
    payload: &[u8],
    key: &StorageKey,
    rng: &mut impl CryptoRng,
) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LENGTH];
    rng.fill_bytes(&mut nonce);
    let mut header = [0u8; HEADER_LENGTH];
    header[..4].copy_from_slice(MAGIC);
    header[4] = FORMAT_VERSION;
    header[5] = kind as u8;
    let cipher = XChaCha20Poly1305::new(&key.0.into());
    // Encryption fails only beyond 256 GiB of plaintext.
    let ciphertext = cipher
        .encrypt(
            &nonce.into(),
            Payload {
                msg: payload,
                aad: &header,
            },
        )
        .unwrap_or_default();
    let mut out = Vec::with_capacity(HEADER_LENGTH + NONCE_LENGTH + ciphertext.len());
    out.extend_from_slice(&header);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    out
}

pub(crate) fn open(
    kind: Kind,
    blob: &[u8],
    key: &StorageKey,
) -> Result<Zeroizing<Vec<u8>>, PersistError> {
    if blob.len() < HEADER_LENGTH + NONCE_LENGTH + TAG_LENGTH || &blob[..4] != MAGIC {
        return Err(PersistError::NotOurFormat);
    }
    let (header, rest) = blob.split_at(HEADER_LENGTH);
    if header[4] != FORMAT_VERSION {
        return Err(PersistError::UnsupportedVersion(u32::from(header[4])));
    }
    if header[5] != kind as u8 {
        return Err(PersistError::WrongKind);
    }
    let (nonce, ciphertext) = rest.split_at(NONCE_LENGTH);
    let nonce: [u8; NONCE_LENGTH] = nonce.try_into().map_err(|_| PersistError::NotOurFormat)?;
    XChaCha20Poly1305::new(&key.0.into())
        .decrypt(
            &nonce.into(),
            Payload {
                msg: ciphertext,
                aad: header,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| PersistError::Authentication)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_is_bound_to_kind_and_key() {
        let key = StorageKey::from_bytes([1; 32]);
        let blob = seal(Kind::Account, b"state", &key, &mut rand::rng());
        assert_eq!(&*open(Kind::Account, &blob, &key).unwrap(), b"state");
        assert_eq!(
            open(Kind::Session, &blob, &key),
            Err(PersistError::WrongKind)
        );
        let other = StorageKey::from_bytes([2; 32]);
        assert_eq!(
            open(Kind::Account, &blob, &other),
            Err(PersistError::Authentication)
        );
        let mut tampered = blob.clone();
        tampered[4] = 2;
        assert_eq!(
            open(Kind::Account, &tampered, &key),
            Err(PersistError::UnsupportedVersion(2))
        );
        let mut flipped = blob.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(
            open(Kind::Account, &flipped, &key),
            Err(PersistError::Authentication)
        );
        // Two saves of the same state never share a nonce.
        assert_ne!(blob, seal(Kind::Account, b"state", &key, &mut rand::rng()));
    }
}
