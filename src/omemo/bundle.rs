//! A device's published bundle, typed and verified.

use rand::RngExt as _;
use rand_core::CryptoRng;
use thiserror::Error;

use super::prekeys::signed_bytes_of;
use super::stanza;
use super::wire::omemo03;
use super::{IdentityKey, Version};
use crate::crypto::{Curve25519PublicKey, Ed25519PublicKey, Ed25519Signature, SignBit};

/// Why a bundle was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
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
    /// A key or signature has the wrong length, lacks its `0x05` type byte (0.3) or is not a
    /// canonical encoding.
    #[error("malformed {0} in the bundle")]
    Malformed(&'static str),
}

/// A device's bundle: identity key, signed pre-key and one-time pre-keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedBundle {
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

impl VerifiedBundle {
    /// Types a parsed `<bundle>` element and verifies its signature.
    pub fn from_element(element: &stanza::BundleElement) -> Result<Self, BundleError> {
        let version = element.version;
        let identity_key = match version {
            Version::Omemo2 => IdentityKey::Ed25519(
                Ed25519PublicKey::from_slice(&element.identity_key)
                    .map_err(|_| BundleError::Malformed("identity key"))?,
            ),
            Version::Omemo03 => {
                IdentityKey::Curve25519(public_key(version, &element.identity_key, "identity key")?)
            }
        };
        let pre_keys = element
            .pre_keys
            .iter()
            .map(|(id, key)| Ok((*id, public_key(version, key, "pre-key")?)))
            .collect::<Result<_, BundleError>>()?;
        let bundle = Self {
            version,
            identity_key,
            signed_pre_key_id: element.signed_pre_key_id,
            signed_pre_key: public_key(version, &element.signed_pre_key, "signed pre-key")?,
            signed_pre_key_signature: Ed25519Signature::from_slice(
                &element.signed_pre_key_signature,
            )
            .map_err(|_| BundleError::Malformed("signature"))?,
            pre_keys,
        };
        bundle.verify()?;
        Ok(bundle)
    }

    /// The `<bundle>` element to publish.
    pub fn to_element(&self) -> stanza::BundleElement {
        let key = |key: &Curve25519PublicKey| match self.version {
            Version::Omemo2 => key.as_bytes().to_vec(),
            Version::Omemo03 => omemo03::encode_key(key),
        };
        stanza::BundleElement {
            version: self.version,
            signed_pre_key_id: self.signed_pre_key_id,
            signed_pre_key: key(&self.signed_pre_key),
            signed_pre_key_signature: self.signed_pre_key_signature.as_bytes().to_vec(),
            identity_key: self.identity_key.wire_bytes(),
            pre_keys: self.pre_keys.iter().map(|(id, k)| (*id, key(k))).collect(),
        }
    }

    /// Checks the signed pre-key signature (strict Ed25519 for OMEMO 2; XEdDSA with the sign
    /// bit in the signature for 0.3) and returns the identity's Ed25519 form, which is what a
    /// device is trusted by across both versions.
    pub fn verify(&self) -> Result<Ed25519PublicKey, BundleError> {
        self.verified_identity().map(|(ed25519, _)| ed25519)
    }

    /// [`VerifiedBundle::verify`], also giving the identity's Curve25519 form for X3DH (computed once:
    /// the OMEMO 2 conversion is as dear as a signature check).
    pub(crate) fn verified_identity(
        &self,
    ) -> Result<(Ed25519PublicKey, Curve25519PublicKey), BundleError> {
        let signed = signed_bytes_of(self.version, &self.signed_pre_key);
        match (self.version, self.identity_key) {
            (Version::Omemo2, IdentityKey::Ed25519(key)) => {
                let curve = key.to_curve25519().map_err(|_| BundleError::IdentityKey)?;
                key.verify(&signed, &self.signed_pre_key_signature)
                    .map_err(|_| BundleError::BadSignature)?;
                Ok((key, curve))
            }
            (Version::Omemo03, IdentityKey::Curve25519(key)) => key
                .xeddsa_verify(
                    &signed,
                    &self.signed_pre_key_signature,
                    SignBit::InSignature,
                )
                .map(|ed25519| (ed25519, key))
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

/// A public key as the version writes it: 32 raw bytes, or `0x05 ‖ 32`; canonical either way.
fn public_key(
    version: Version,
    bytes: &[u8],
    what: &'static str,
) -> Result<Curve25519PublicKey, BundleError> {
    let raw = match (version, bytes) {
        (Version::Omemo2, raw) => raw,
        (Version::Omemo03, [omemo03::KEY_TYPE, raw @ ..]) => raw,
        (Version::Omemo03, _) => return Err(BundleError::Malformed(what)),
    };
    Curve25519PublicKey::from_slice(raw)
        .ok()
        .filter(Curve25519PublicKey::is_canonical)
        .ok_or(BundleError::Malformed(what))
}
