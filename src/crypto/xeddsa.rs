//! OMEMO device identities: one key that both signs and does X25519.
//!
//! OMEMO 2 publishes the identity as Ed25519 and runs X3DH on its Montgomery form; OMEMO 0.3
//! (libsignal) publishes it as Curve25519 and signs with XEdDSA. Both need the birational maps
//! `u = (1 + y) / (1 − y)` and back, X25519 from an Ed25519 key, and XEdDSA signatures.
//!
//! A u-coordinate fixes the Edwards point only up to its sign, so signatures over a Curve25519
//! key come in two conventions ([`SignBit`]). Identity keys of small or mixed order are refused
//! (as libsodium's conversion does): clamped key generation never makes them.

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::scalar::{Scalar, clamp_integer};
use rand_core::CryptoRng;
use sha2::{Digest, Sha512};
use subtle::{Choice, ConditionallySelectable};
use thiserror::Error;
use zeroize::Zeroizing;

use super::{
    Curve25519PublicKey, Curve25519SecretKey, Ed25519KeyPair, Ed25519PublicKey, Ed25519Signature,
    KeyError,
};

/// XEdDSA's `hash1` domain separation: SHA-512 of the little-endian 2^256 − 2 first.
const HASH1_PREFIX: [u8; 32] = {
    let mut prefix = [0xff; 32];
    prefix[0] = 0xfe;
    prefix
};

/// How the Edwards sign bit of a Curve25519 signing key is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignBit {
    /// The XEdDSA specification: the signer negates its scalar when `A = aB` has sign bit 1, and
    /// the verifier lifts `u` with sign bit 0 (python-x3dh with Curve25519 identities).
    Zero,
    /// libsignal's `curve25519_sign` (OMEMO 0.3, python-oldmemo): the signer keeps `A` and stores
    /// its sign bit in bit 7 of signature byte 63, free because `s < 2^253`; the verifier lifts `u`
    /// with that bit. Signatures made under [`SignBit::Zero`] carry 0 there, so they verify too.
    /// A device with an Ed25519 identity signs this way so that peers recover the same Ed25519
    /// key from its OMEMO 0.3 bundle as from its OMEMO 2 one.
    InSignature,
}

/// A point conversion or XEdDSA verification was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum XEdDsaError {
    /// The encoding is not the canonical one (a coordinate ≥ 2^255 − 19).
    #[error("the key is not canonically encoded")]
    NonCanonical,
    /// The bytes are no point of Curve25519 (the twist, or `u = −1`).
    #[error("the key is not a point on the curve")]
    NotOnCurve,
    /// The point has order dividing 8: every exchange with it is predictable.
    #[error("the key has small order")]
    SmallOrder,
    /// The point has a torsion component, which no honestly generated key has.
    #[error("the key is not in the prime-order subgroup")]
    MixedOrder,
    /// The signature does not verify under strict Ed25519 rules.
    #[error("the signature does not verify")]
    InvalidSignature,
}

impl From<XEdDsaError> for KeyError {
    fn from(error: XEdDsaError) -> Self {
        match error {
            XEdDsaError::InvalidSignature => KeyError::InvalidSignature,
            _ => KeyError::InvalidEncoding,
        }
    }
}

/// Refuses small-order and mixed-order points.
fn check_prime_order(point: &EdwardsPoint) -> Result<(), XEdDsaError> {
    if point.is_small_order() {
        Err(XEdDsaError::SmallOrder)
    } else if !point.is_torsion_free() {
        Err(XEdDsaError::MixedOrder)
    } else {
        Ok(())
    }
}

impl Ed25519PublicKey {
    /// The Curve25519 form `u = (1 + y) / (1 − y)`, for X3DH with an OMEMO 2 identity and for
    /// its fingerprint. Non-canonical encodings and small- or mixed-order points are refused.
    pub fn to_curve25519(&self) -> Result<Curve25519PublicKey, XEdDsaError> {
        let point = CompressedEdwardsY(*self.as_bytes())
            .decompress()
            .ok_or(XEdDsaError::NotOnCurve)?;
        if point.compress().as_bytes() != self.as_bytes() {
            return Err(XEdDsaError::NonCanonical);
        }
        check_prime_order(&point)?;
        Ok(Curve25519PublicKey::from_bytes(
            point.to_montgomery().to_bytes(),
        ))
    }

    /// [`Self::to_curve25519`] of a key that passed it before (the identity of a session,
    /// whose X3DH converted it): the same u, without checking again what that call checked
    /// (the prime order, a scalar multiplication, and the canonical encoding), nor decompressing
    /// again the point the key holds.
    pub(crate) fn accepted_curve25519(&self) -> Result<Curve25519PublicKey, XEdDsaError> {
        Ok(self.held_curve25519())
    }
}

impl Curve25519PublicKey {
    /// The Ed25519 key with this u-coordinate and the given sign bit (`y = (u − 1) / (u + 1)`).
    /// Unlike the XEdDSA spec's `convert_mont`, `u ≥ p` is refused rather than masked.
    pub fn to_ed25519(&self, sign_bit: bool) -> Result<Ed25519PublicKey, XEdDsaError> {
        if !self.is_canonical() {
            return Err(XEdDsaError::NonCanonical);
        }
        let point = MontgomeryPoint(*self.as_bytes())
            .to_edwards(u8::from(sign_bit))
            .ok_or(XEdDsaError::NotOnCurve)?;
        check_prime_order(&point)?;
        Ed25519PublicKey::from_bytes(&point.compress().to_bytes())
            .map_err(|_| XEdDsaError::NotOnCurve)
    }

    /// Verifies an XEdDSA `signature` over `message` under `convention`, strictly (canonical `s`,
    /// no small-order `R`; see [`Ed25519PublicKey::verify`]). Returns the Ed25519 key it checked
    /// against: under [`SignBit::InSignature`] that is the signer's Edwards identity.
    pub fn xeddsa_verify(
        &self,
        message: &[u8],
        signature: &Ed25519Signature,
        convention: SignBit,
    ) -> Result<Ed25519PublicKey, XEdDsaError> {
        let mut bytes = *signature.as_bytes();
        let sign_bit = match convention {
            // A set bit 7 makes `s ≥ 2^255`, which strict verification refuses.
            SignBit::Zero => false,
            SignBit::InSignature => {
                let bit = bytes[63] & 0x80 != 0;
                bytes[63] &= 0x7f;
                bit
            }
        };
        let key = self.to_ed25519(sign_bit)?;
        key.verify(message, &Ed25519Signature::from_bytes(bytes))
            .map_err(|_| XEdDsaError::InvalidSignature)?;
        Ok(key)
    }
}

impl Curve25519SecretKey {
    /// The Edwards form `A = aB` of this key, sign bit included: the Ed25519 key that
    /// [`SignBit::InSignature`] signatures verify under, once byte 63's bit 7 is cleared.
    pub fn ed25519_public_key(&self) -> Ed25519PublicKey {
        let clamped = Zeroizing::new(clamp_integer(*self.to_bytes()));
        let a = Zeroizing::new(Scalar::from_bytes_mod_order(*clamped));
        Ed25519PublicKey::from_edwards(EdwardsPoint::mul_base(&a))
    }

    /// [`Self::xeddsa_sign_with_rng`] with the thread's CSPRNG.
    pub fn xeddsa_sign(&self, message: &[u8], convention: SignBit) -> Ed25519Signature {
        self.xeddsa_sign_with_rng(message, convention, &mut rand::rng())
    }

    /// Signs `message` with XEdDSA: 64 fresh bytes `Z` from `rng` go into the nonce
    /// `r = SHA-512(2^256 − 2 ‖ a ‖ M ‖ Z) mod q`, so a weak `rng` alone cannot leak the key.
    /// `a` is the clamped scalar reduced mod q (as the spec says; libxeddsa hashes the unreduced
    /// bytes when it does not negate, which changes `R` but not validity).
    pub fn xeddsa_sign_with_rng(
        &self,
        message: &[u8],
        convention: SignBit,
        rng: &mut impl CryptoRng,
    ) -> Ed25519Signature {
        let clamped = Zeroizing::new(clamp_integer(*self.to_bytes()));
        let mut a = Zeroizing::new(Scalar::from_bytes_mod_order(*clamped));
        let mut public = EdwardsPoint::mul_base(&a).compress().to_bytes();
        let sign = public[31] >> 7;
        if convention == SignBit::Zero {
            let negated = Zeroizing::new(-&*a);
            a.conditional_assign(&negated, Choice::from(sign));
            public[31] &= 0x7f;
        }

        let mut z = Zeroizing::new([0u8; 64]);
        rng.fill_bytes(z.as_mut());
        let nonce: Zeroizing<[u8; 64]> = Zeroizing::new(
            Sha512::new()
                .chain_update(HASH1_PREFIX)
                .chain_update(a.as_bytes())
                .chain_update(message)
                .chain_update(z.as_ref())
                .finalize()
                .into(),
        );
        let r = Zeroizing::new(Scalar::from_bytes_mod_order_wide(&nonce));
        let big_r = EdwardsPoint::mul_base(&r).compress();
        let challenge: [u8; 64] = Sha512::new()
            .chain_update(big_r.as_bytes())
            .chain_update(public)
            .chain_update(message)
            .finalize()
            .into();
        let h = Scalar::from_bytes_mod_order_wide(&challenge);
        let ha = Zeroizing::new(h * *a);
        let s = *r + *ha;

        let mut signature = [0u8; 64];
        signature[..32].copy_from_slice(big_r.as_bytes());
        signature[32..].copy_from_slice(s.as_bytes());
        if convention == SignBit::InSignature {
            signature[63] |= sign << 7;
        }
        Ed25519Signature::from_bytes(signature)
    }
}

impl Ed25519KeyPair {
    /// The X25519 secret of this identity: the clamped `SHA-512(seed)[..32]`, i.e. the Ed25519
    /// scalar itself, so its public key is [`Ed25519PublicKey::to_curve25519`] of ours. Works for
    /// keys imported without a seed too (the expanded form starts with that scalar).
    pub fn to_curve25519_secret(&self) -> Curve25519SecretKey {
        let expanded = self.expanded();
        let mut scalar = Zeroizing::new([0u8; 32]);
        scalar.copy_from_slice(&expanded[..32]);
        Curve25519SecretKey::from_bytes(&scalar)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out XEdDSA's 64-byte Z as 0, 1, …, 63.
    struct CountingZ;

    impl rand_core::TryRng for CountingZ {
        type Error = core::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            Ok(0)
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            Ok(0)
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            dst.iter_mut().zip(0u8..).for_each(|(byte, i)| *byte = i);
            Ok(())
        }
    }

    impl rand_core::TryCryptoRng for CountingZ {}

    /// libxeddsa 1.2.0's `ed25519_priv_sign` (given `a mod q`, Z = 0..63) over "OMEMO" by the
    /// seed 0x02×32, whose Edwards sign bit is 1: spec, then in-signature.
    const SPEC: &str = "1e8c259c76184102fcf2675baf60634a83fda1c3f1c7f51a96f048a08ac8ef24\
                        e36bb53d1b89bf79881bdb50e55b89fe4988790c8c9237a02b0bb0427d175002";
    const SIGNAL: &str = "c30b13061760a29e53953eae388327cc3e83afdaa4f919c48da3bae7681cbe6f\
                          5d019a09be5bf9af3b8ba178e2a1da622b9b67af92b3624554dfef65ff1f5d8b";

    #[test]
    fn known_answers_from_libxeddsa() {
        let pair = Ed25519KeyPair::from_seed(&[2; 32]);
        let secret = pair.to_curve25519_secret();
        let curve = secret.public_key();
        assert_eq!(pair.public_key().to_curve25519(), Ok(curve));
        for seed in [[2; 32], [7; 32], [255; 32]] {
            let key = Ed25519KeyPair::from_seed(&seed).public_key();
            assert_eq!(key.accepted_curve25519(), key.to_curve25519());
        }
        for (convention, expected, sign_bit) in [
            (SignBit::Zero, SPEC, false),
            (SignBit::InSignature, SIGNAL, true),
        ] {
            let signature = secret.xeddsa_sign_with_rng(b"OMEMO", convention, &mut CountingZ);
            let text: String = signature
                .as_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(text, expected, "{convention:?}");
            let key = curve.xeddsa_verify(b"OMEMO", &signature, SignBit::InSignature);
            assert_eq!(key, curve.to_ed25519(sign_bit));
            assert_eq!(key == Ok(pair.public_key()), sign_bit);
        }
    }

    #[test]
    fn conventions_and_errors() {
        let secret = Ed25519KeyPair::from_seed(&[2; 32]).to_curve25519_secret();
        let curve = secret.public_key();
        let spec = secret.xeddsa_sign(b"m", SignBit::Zero);
        assert!(curve.xeddsa_verify(b"m", &spec, SignBit::Zero).is_ok());
        let signal = secret.xeddsa_sign(b"m", SignBit::InSignature);
        for (message, convention) in [(b"m", SignBit::Zero), (b"n", SignBit::InSignature)] {
            let result = curve.xeddsa_verify(message, &signal, convention);
            assert_eq!(result, Err(XEdDsaError::InvalidSignature));
        }

        let u = |low: u8, high: u8| {
            let mut bytes = [0u8; 32];
            (bytes[0], bytes[31]) = (low, high);
            Curve25519PublicKey::from_bytes(bytes)
        };
        assert_eq!(u(0, 0).to_ed25519(false), Err(XEdDsaError::SmallOrder));
        assert_eq!(u(1, 0).to_ed25519(true), Err(XEdDsaError::SmallOrder));
        assert_eq!(u(9, 0x80).to_ed25519(false), Err(XEdDsaError::NonCanonical));
        let mut minus_one = [0xff; 32];
        (minus_one[0], minus_one[31]) = (0xec, 0x7f);
        let minus_one = Curve25519PublicKey::from_bytes(minus_one);
        assert_eq!(minus_one.to_ed25519(false), Err(XEdDsaError::NotOnCurve));
        let weak = u(0, 0).xeddsa_verify(b"m", &spec, SignBit::InSignature);
        assert_eq!(weak, Err(XEdDsaError::SmallOrder));
        assert_eq!(
            [XEdDsaError::SmallOrder, XEdDsaError::InvalidSignature].map(KeyError::from),
            [KeyError::InvalidEncoding, KeyError::InvalidSignature]
        );
    }
}
