//! A device's published bundle, typed and verified.

use rand::RngExt as _;
use rand_core::CryptoRng;
use thiserror::Error;

use super::prekeys::signed_bytes_of;
use super::{IdentityKey, Version};
use crate::crypto::{Curve25519PublicKey, Ed25519PublicKey, Ed25519Signature, SignBit};

/// Why a bundle was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum BundleError {
    /// The identity key is not in this version's form or is not a valid key.
    #[error("the identity key is invalid for this version")]
    IdentityKey,
    /// The signed pre-key signature does not verify under the identity key.
    #[error("the signed pre-key signature does not verify")]
    BadSignature,
    /// The bundle offers no one-time pre-key (OMEMO 2 requires one per key exchange).
    #[error("the bundle has no pre-keys")]
    NoPreKeys,
}

/// A device's bundle: identity key, signed pre-key and one-time pre-keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// The version the bundle is for.
    pub version: Version,
    /// The identity key as the version publishes it.
    pub identity_key: IdentityKey,
    /// The signed pre-key's id.
    pub signed_pre_key_id: u32,
    /// The signed pre-key.
    pub signed_pre_key: Curve25519PublicKey,
    /// The identity's signature over the signed pre-key.
    pub signed_pre_key_signature: Ed25519Signature,
    /// The one-time pre-keys and their ids.
    pub pre_keys: Vec<(u32, Curve25519PublicKey)>,
}

impl Bundle {
    /// Checks the signed pre-key signature (strict Ed25519 for OMEMO 2; XEdDSA with the sign
    /// bit in the signature for 0.3) and returns the identity's Ed25519 form, which is what a
    /// device is trusted by across both versions.
    pub fn verify(&self) -> Result<Ed25519PublicKey, BundleError> {
        let signed = signed_bytes_of(self.version, &self.signed_pre_key);
        match (self.version, self.identity_key) {
            (Version::Omemo2, IdentityKey::Ed25519(key)) => {
                key.to_curve25519().map_err(|_| BundleError::IdentityKey)?;
                key.verify(&signed, &self.signed_pre_key_signature)
                    .map_err(|_| BundleError::BadSignature)?;
                Ok(key)
            }
            (Version::Omemo03, IdentityKey::Curve25519(key)) => key
                .xeddsa_verify(
                    &signed,
                    &self.signed_pre_key_signature,
                    SignBit::InSignature,
                )
                .map_err(|error| match error {
                    crate::crypto::XEdDsaError::InvalidSignature => BundleError::BadSignature,
                    _ => BundleError::IdentityKey,
                }),
            _ => Err(BundleError::IdentityKey),
        }
    }

    /// Picks a one-time pre-key at random (spreading concurrent initiators over the pool).
    pub fn choose_pre_key(
        &self,
        rng: &mut impl CryptoRng,
    ) -> Result<(u32, Curve25519PublicKey), BundleError> {
        if self.pre_keys.is_empty() {
            return Err(BundleError::NoPreKeys);
        }
        let index = rng.random_range(0..self.pre_keys.len());
        self.pre_keys
            .get(index)
            .copied()
            .ok_or(BundleError::NoPreKeys)
    }
}
