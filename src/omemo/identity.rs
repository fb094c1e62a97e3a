//! A device's identity key, shared by both OMEMO versions.
//!
//! OMEMO 2 publishes it as Ed25519 and signs with Ed25519; OMEMO 0.3 publishes its Curve25519
//! form and signs with XEdDSA, carrying the Edwards sign bit in the signature so that a peer
//! lifts both bundles to the same Ed25519 key (python-omemo trusts one key across versions).
//! Both versions do X25519 with the Curve25519 form.
//!
//! A new identity is an Ed25519 seed. One moved from a libsignal client (Conversations, Dino)
//! is a bare Curve25519 private key: it signs with XEdDSA in both versions, under `A = aB`.

use std::fmt;

use rand_core::CryptoRng;

use super::wire::omemo03;
use super::{Version, stanza};
use crate::crypto::{
    Curve25519PublicKey, Curve25519SecretKey, Ed25519KeyPair, Ed25519PublicKey, Ed25519Signature,
    KeyError, SharedSecret, SignBit, XEdDsaError,
};

/// A device's public identity key, in the form its version puts on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentityKey {
    /// OMEMO 2: the Ed25519 key, kept exactly as received (its sign bit is part of every MAC).
    Ed25519(Ed25519PublicKey),
    /// OMEMO 0.3: the Curve25519 key (`0x05`-prefixed on the wire).
    Curve25519(Curve25519PublicKey),
}

/// An identity key's wire bytes, on the stack.
pub(crate) struct WireIdentity {
    bytes: [u8; 33],
    length: usize,
}

impl WireIdentity {
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.length]
    }
}

impl IdentityKey {
    /// The bytes on the wire: 32 (Ed25519) or `0x05 ‖ 32` (Curve25519).
    pub fn wire_bytes(&self) -> Vec<u8> {
        match self {
            IdentityKey::Ed25519(key) => key.as_bytes().to_vec(),
            IdentityKey::Curve25519(key) => omemo03::encode_key(key),
        }
    }

    /// [`Self::wire_bytes`] without an allocation: what every message's MAC covers.
    pub(crate) fn wire_form(&self) -> WireIdentity {
        let mut bytes = [0u8; 33];
        let length = match self {
            IdentityKey::Ed25519(key) => {
                bytes[..32].copy_from_slice(key.as_bytes());
                32
            }
            IdentityKey::Curve25519(key) => {
                bytes[0] = omemo03::KEY_TYPE;
                bytes[1..].copy_from_slice(key.as_bytes());
                33
            }
        };
        WireIdentity { bytes, length }
    }

    /// The Curve25519 form, for X3DH. Refuses Ed25519 keys that are not canonical points of the
    /// prime-order group.
    pub fn curve25519(&self) -> Result<Curve25519PublicKey, XEdDsaError> {
        match self {
            IdentityKey::Ed25519(key) => key.to_curve25519(),
            IdentityKey::Curve25519(key) => Ok(*key),
        }
    }

    /// Checks an OMEMO 2 device-list label signature against this (Ed25519) identity. A label
    /// that fails is to be ignored, not the device.
    pub fn verify_label(&self, label: &str, signature: &[u8]) -> Result<(), KeyError> {
        let signature = Ed25519Signature::from_slice(signature)?;
        match self {
            IdentityKey::Ed25519(key) => key.verify(label.as_bytes(), &signature),
            IdentityKey::Curve25519(_) => Err(KeyError::InvalidSignature),
        }
    }

    /// The fingerprint users compare: lowercase hex of the Curve25519 form (XEP-0384).
    pub fn fingerprint(&self) -> Result<String, XEdDsaError> {
        Ok(hex(self.curve25519()?.as_bytes()))
    }

    /// [`Self::curve25519`] of a session's identity, which its X3DH already converted (so
    /// checked): the same form (its hex is the fingerprint), without the checks again.
    pub(crate) fn session_curve25519(&self) -> Result<Curve25519PublicKey, XEdDsaError> {
        match self {
            IdentityKey::Ed25519(key) => key.accepted_curve25519(),
            IdentityKey::Curve25519(key) => Ok(*key),
        }
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    // Two digits pushed per byte: no formatter and no string per byte.
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 15)]));
    }
    text
}

enum Secret {
    Seed(Box<Ed25519KeyPair>),
    Curve25519,
}

/// A device's identity key pair. Wiped on drop; `Debug` shows only the public key.
pub struct DeviceIdentity {
    secret: Secret,
    curve_secret: Curve25519SecretKey,
    ed25519: Ed25519PublicKey,
    curve25519: Curve25519PublicKey,
}

impl DeviceIdentity {
    /// A new identity from a fresh Ed25519 seed.
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        Self::from_key_pair(Ed25519KeyPair::generate(rng))
    }

    /// Imports an identity stored as a 32-byte Ed25519 seed (python-omemo's default form).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self::from_key_pair(Ed25519KeyPair::from_seed(seed))
    }

    /// Imports an identity stored as a 32-byte Curve25519 private key (libsignal,
    /// Conversations, Dino, libomemo-c). Its Ed25519 form is `A = aB`, sign bit included.
    pub fn from_curve25519_secret(secret: &[u8; 32]) -> Self {
        let curve_secret = Curve25519SecretKey::from_bytes(secret);
        Self {
            secret: Secret::Curve25519,
            ed25519: curve_secret.ed25519_public_key(),
            curve25519: curve_secret.public_key(),
            curve_secret,
        }
    }

    fn from_key_pair(pair: Ed25519KeyPair) -> Self {
        let curve_secret = pair.to_curve25519_secret();
        Self {
            ed25519: pair.public_key(),
            curve25519: curve_secret.public_key(),
            curve_secret,
            secret: Secret::Seed(Box::new(pair)),
        }
    }

    /// The Ed25519 seed, if the identity has one (it does unless imported from Curve25519).
    pub fn seed(&self) -> Option<zeroize::Zeroizing<[u8; 32]>> {
        match &self.secret {
            Secret::Seed(pair) => pair.seed(),
            Secret::Curve25519 => None,
        }
    }

    /// The Curve25519 private key (the clamped Ed25519 scalar for seeded identities).
    pub fn curve25519_secret(&self) -> &Curve25519SecretKey {
        &self.curve_secret
    }

    /// The Ed25519 public key (OMEMO 2's identity on the wire).
    pub fn ed25519_key(&self) -> Ed25519PublicKey {
        self.ed25519
    }

    /// The Curve25519 public key (OMEMO 0.3's identity; the fingerprint).
    pub fn curve25519_key(&self) -> Curve25519PublicKey {
        self.curve25519
    }

    /// The identity key as `version` publishes it.
    pub fn identity_key(&self, version: Version) -> IdentityKey {
        match version {
            Version::Omemo2 => IdentityKey::Ed25519(self.ed25519),
            Version::Omemo03 => IdentityKey::Curve25519(self.curve25519),
        }
    }

    /// The fingerprint: lowercase hex of the Curve25519 public key.
    pub fn fingerprint(&self) -> String {
        hex(self.curve25519.as_bytes())
    }

    /// Signs as `version` requires: Ed25519 for OMEMO 2 (a plain Ed25519 signature under
    /// [`Self::ed25519_key`]), XEdDSA with the sign bit in the signature for OMEMO 0.3.
    pub fn sign(&self, version: Version, message: &[u8]) -> Ed25519Signature {
        self.sign_with_rng(version, message, &mut rand::rng())
    }

    /// [`Self::sign`] with the XEdDSA nonce's randomness from `rng`.
    pub fn sign_with_rng(
        &self,
        version: Version,
        message: &[u8],
        rng: &mut impl CryptoRng,
    ) -> Ed25519Signature {
        match (version, &self.secret) {
            (Version::Omemo2, Secret::Seed(pair)) => pair.sign(message),
            (Version::Omemo2, Secret::Curve25519) => {
                // XEdDSA under `A = aB` is an Ed25519 signature once the carried bit is cleared.
                let mut bytes = *self
                    .curve_secret
                    .xeddsa_sign_with_rng(message, SignBit::InSignature, rng)
                    .as_bytes();
                bytes[63] &= 0x7f;
                Ed25519Signature::from_bytes(bytes)
            }
            (Version::Omemo03, _) => {
                self.curve_secret
                    .xeddsa_sign_with_rng(message, SignBit::InSignature, rng)
            }
        }
    }

    /// The signature of an OMEMO 2 device-list label: plain Ed25519 over its UTF-8 bytes
    /// (twomemo's `labelsig`).
    pub fn sign_label(&self, label: &str) -> Ed25519Signature {
        self.sign(Version::Omemo2, label.as_bytes())
    }

    /// The entry for this device in an OMEMO 2 device list, with a signed label if given.
    pub fn device_list_entry(&self, device_id: u32, label: Option<&str>) -> stanza::ListedDevice {
        stanza::ListedDevice {
            id: device_id,
            label: label.map(str::to_owned),
            label_signature: label.map(|label| self.sign_label(label).as_bytes().to_vec()),
        }
    }

    /// X25519 of the identity key with `their_key`.
    pub(crate) fn diffie_hellman(
        &self,
        their_key: &Curve25519PublicKey,
    ) -> Result<SharedSecret, KeyError> {
        self.curve_secret.diffie_hellman(their_key)
    }
}

// Every secret field (the Ed25519 key pair, the Curve25519 secret) wipes itself on drop.
impl zeroize::ZeroizeOnDrop for DeviceIdentity {}

/// A copy of the keys as they are: no key is derived again.
impl Clone for DeviceIdentity {
    fn clone(&self) -> Self {
        Self {
            secret: match &self.secret {
                Secret::Seed(pair) => Secret::Seed(pair.clone()),
                Secret::Curve25519 => Secret::Curve25519,
            },
            curve_secret: self.curve_secret.clone(),
            ed25519: self.ed25519,
            curve25519: self.curve25519,
        }
    }
}

impl fmt::Debug for DeviceIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceIdentity")
            .field("ed25519", &self.ed25519)
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}
