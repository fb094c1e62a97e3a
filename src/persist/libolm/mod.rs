//! libolm's pickle format: import and export of accounts (v4), sessions (v1) and Megolm group
//! sessions (outbound v1, inbound v2, reading v1).
//!
//! A pickle is `base64(AES-256-CBC(raw) ‖ HMAC-SHA-256(ciphertext)[..8])` with key, MAC key and IV
//! from HKDF-SHA-256(pickle key, no salt, "Pickle"). The IV is derived from the key, so two
//! pickles under one key share it: that is libolm's design, kept here only for compatibility.
//! Our own format (see [`super`]) uses a fresh nonce for every save.

pub(crate) mod fields;

use thiserror::Error;
use zeroize::Zeroizing;

use crate::codec::DecodeError;
use crate::crypto::{CipherError, CipherKeys, base64};

const PICKLE_INFO: &[u8] = b"Pickle";
const MAC_LENGTH: usize = 8;

/// Why a libolm pickle could not be imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum LibolmPickleError {
    /// The pickle is not valid base64.
    #[error("the pickle is not valid base64")]
    Base64,
    /// The MAC does not verify: wrong pickle key or altered pickle.
    #[error("the pickle does not authenticate under this key")]
    Authentication,
    /// A pickle version this crate does not read.
    #[error("unsupported libolm pickle version {0}")]
    UnsupportedVersion(u32),
    /// The decrypted pickle is malformed.
    #[error("malformed libolm pickle: {0}")]
    Malformed(#[from] DecodeError),
    /// A key in the pickle is not a valid key.
    #[error("the pickle holds an invalid key")]
    InvalidKey,
}

fn cipher_keys(pickle_key: &[u8]) -> CipherKeys {
    CipherKeys::derive_with_salt(&[], pickle_key, PICKLE_INFO)
}

pub(crate) fn encrypt(raw: &[u8], pickle_key: &[u8]) -> String {
    let keys = cipher_keys(pickle_key);
    let mut ciphertext = keys.encrypt(raw);
    let mac = keys.mac(&[&ciphertext]);
    ciphertext.extend_from_slice(&mac[..MAC_LENGTH]);
    base64::encode(ciphertext)
}

pub(crate) fn decrypt(
    pickle: &str,
    pickle_key: &[u8],
) -> Result<Zeroizing<Vec<u8>>, LibolmPickleError> {
    let bytes = base64::decode(pickle.trim()).map_err(|_| LibolmPickleError::Base64)?;
    let split = bytes
        .len()
        .checked_sub(MAC_LENGTH)
        .ok_or(LibolmPickleError::Authentication)?;
    let (ciphertext, mac) = bytes.split_at(split);
    let keys = cipher_keys(pickle_key);
    keys.verify_mac(&[ciphertext], mac)
        .map_err(|_| LibolmPickleError::Authentication)?;
    keys.decrypt(ciphertext).map_err(|error| match error {
        CipherError::Mac => LibolmPickleError::Authentication,
        CipherError::Padding => LibolmPickleError::Malformed(DecodeError::BadLength {
            field: 0,
            expected: 16,
            actual: ciphertext.len() % 16,
        }),
    })
}
