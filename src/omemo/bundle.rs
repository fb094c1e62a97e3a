//! A device's published bundle, typed and verified.

use rand::RngExt as _;
use rand_core::CryptoRng;
use thiserror::Error;

use super::prekeys::signed_bytes_of;
use super::stanza;
use super::wire::omemo03;
use super::{DeviceIdentity, IdentityKey, Version};
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

/// A device's bundle (identity key, signed pre-key and one-time pre-keys) whose signature has
/// been checked. Only [`VerifiedBundle::from_element`] (which verifies) and our own pre-keys
/// make one, so building a session from it does not verify again; the identity's Ed25519 and
/// Curve25519 forms are kept from that one check (the OMEMO 2 conversion costs as much as it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedBundle {
    version: Version,
    identity_key: IdentityKey,
    identity_ed25519: Ed25519PublicKey,
    identity_curve25519: Curve25519PublicKey,
    signed_pre_key_id: u32,
    signed_pre_key: Curve25519PublicKey,
    signed_pre_key_signature: Ed25519Signature,
    pre_keys: Vec<(u32, Curve25519PublicKey)>,
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
        let signed_pre_key = public_key(version, &element.signed_pre_key, "signed pre-key")?;
        let signed_pre_key_signature =
            Ed25519Signature::from_slice(&element.signed_pre_key_signature)
                .map_err(|_| BundleError::Malformed("signature"))?;
        let (identity_ed25519, identity_curve25519) = verify(
            version,
            identity_key,
            &signed_pre_key,
            &signed_pre_key_signature,
        )?;
        Ok(Self {
            version,
            identity_key,
            identity_ed25519,
            identity_curve25519,
            signed_pre_key_id: element.signed_pre_key_id,
            signed_pre_key,
            signed_pre_key_signature,
            pre_keys,
        })
    }

    /// Our own bundle, from keys we hold and a signature we made (nothing to verify).
    pub(super) fn ours(
        version: Version,
        identity: &DeviceIdentity,
        signed_pre_key_id: u32,
        signed_pre_key: Curve25519PublicKey,
        signed_pre_key_signature: Ed25519Signature,
        pre_keys: Vec<(u32, Curve25519PublicKey)>,
    ) -> Self {
        Self {
            version,
            identity_key: identity.identity_key(version),
            identity_ed25519: identity.ed25519_key(),
            identity_curve25519: identity.curve25519_key(),
            signed_pre_key_id,
            signed_pre_key,
            signed_pre_key_signature,
            pre_keys,
        }
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

    /// The version the bundle is for.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The identity key as the version publishes it.
    pub fn identity_key(&self) -> IdentityKey {
        self.identity_key
    }

    /// The identity's Ed25519 form, which is what a device is trusted by across both versions.
    pub fn identity_ed25519(&self) -> Ed25519PublicKey {
        self.identity_ed25519
    }

    /// The identity's Curve25519 form, for X3DH.
    pub(crate) fn identity_curve25519(&self) -> &Curve25519PublicKey {
        &self.identity_curve25519
    }

    /// The signed pre-key's id.
    pub fn signed_pre_key_id(&self) -> u32 {
        self.signed_pre_key_id
    }

    /// The signed pre-key.
    pub fn signed_pre_key(&self) -> &Curve25519PublicKey {
        &self.signed_pre_key
    }

    /// The identity's signature over the signed pre-key.
    pub fn signed_pre_key_signature(&self) -> Ed25519Signature {
        self.signed_pre_key_signature
    }

    /// The one-time pre-keys and their ids.
    pub fn pre_keys(&self) -> &[(u32, Curve25519PublicKey)] {
        &self.pre_keys
    }

    /// Keeps only the one-time pre-keys `keep` accepts (for instance to skip ones known to be
    /// used). They are not signed, so the bundle stays verified.
    pub fn retain_pre_keys(&mut self, keep: impl FnMut(&(u32, Curve25519PublicKey)) -> bool) {
        self.pre_keys.retain(keep);
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

/// Checks the signed pre-key signature (strict Ed25519 for OMEMO 2; XEdDSA with the sign bit in
/// the signature for 0.3) and returns the identity's Ed25519 and Curve25519 forms.
fn verify(
    version: Version,
    identity_key: IdentityKey,
    signed_pre_key: &Curve25519PublicKey,
    signature: &Ed25519Signature,
) -> Result<(Ed25519PublicKey, Curve25519PublicKey), BundleError> {
    let signed = signed_bytes_of(version, signed_pre_key);
    match (version, identity_key) {
        (Version::Omemo2, IdentityKey::Ed25519(key)) => {
            let curve = key.to_curve25519().map_err(|_| BundleError::IdentityKey)?;
            key.verify(&signed, signature)
                .map_err(|_| BundleError::BadSignature)?;
            Ok((key, curve))
        }
        (Version::Omemo03, IdentityKey::Curve25519(key)) => key
            .xeddsa_verify(&signed, signature, SignBit::InSignature)
            .map(|ed25519| (ed25519, key))
            .map_err(|error| match error {
                crate::crypto::XEdDsaError::InvalidSignature => BundleError::BadSignature,
                _ => BundleError::IdentityKey,
            }),
        _ => Err(BundleError::IdentityKey),
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
