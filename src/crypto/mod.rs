//! Primitives every protocol is built from: typed keys, the message cipher and base64; the raw
//! KDFs and the passphrase primitives of key export files (PBKDF2, AES-CTR) under [`hazmat`].
//!
//! Nothing above this module touches a RustCrypto or dalek type directly; everything it hands out
//! is a typed key or a byte string, and every secret in it is wiped on drop.

pub mod base64;
mod batch;
mod cipher;
mod cross_batch;
mod curve25519;
mod ed25519;
mod kdf;
mod passphrase;
mod xeddsa;

/// The raw hash, KDF and stream-cipher functions the protocols are built from, for tests,
/// benchmarks and interop tools. Nothing here is a protocol: a caller who reaches for these
/// takes on the nonce, key-separation and authentication duties the protocol objects carry.
pub mod hazmat {
    pub use super::kdf::{hkdf_sha256, hmac_sha256, sha256};
    pub use super::passphrase::{aes256_ctr64_xor, aes256_ctr128_xor, pbkdf2_sha512};
}

pub use cipher::{CipherError, CipherKeys};
pub use cross_batch::{MIN_CROSS, SignedItem, TORSION_TESTS, TorsionFreeKeys};
pub use curve25519::{Curve25519KeyPair, Curve25519PublicKey, Curve25519SecretKey, SharedSecret};
pub(crate) use ed25519::DecodedKeys;
pub use ed25519::{Ed25519KeyPair, Ed25519PublicKey, Ed25519Signature};
pub(crate) use hazmat::*;
pub(crate) use kdf::ByteHmac;
pub use xeddsa::{SignBit, XEdDsaError};

use thiserror::Error;

/// A key, signature or DH result was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key or signature has the wrong number of bytes.
    #[error("expected {expected} bytes, got {actual}")]
    InvalidLength {
        /// The length the key type requires.
        expected: usize,
        /// The length that was given.
        actual: usize,
    },
    /// The bytes are not a valid point or key encoding.
    #[error("the bytes are not a valid key encoding")]
    InvalidEncoding,
    /// An X25519 exchange gave the all-zero result: the peer's key has small order.
    #[error("the Diffie-Hellman result is all zero (non-contributory public key)")]
    NonContributory,
    /// A signature did not verify under strict Ed25519 rules.
    #[error("the signature does not verify")]
    InvalidSignature,
    /// The base64 text is malformed.
    #[error("malformed base64")]
    Base64,
}

/// Turns a byte slice into a fixed array, with a typed error on a length mismatch.
pub(crate) fn fixed<const N: usize>(bytes: &[u8]) -> Result<[u8; N], KeyError> {
    bytes.try_into().map_err(|_| KeyError::InvalidLength {
        expected: N,
        actual: bytes.len(),
    })
}
