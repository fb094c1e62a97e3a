//! Ed25519 signing keys and strict verification (RFC 8032 with canonical `S` and no
//! small-order keys; libolm's lax verifier was CVE-2024-45193).

use std::fmt;

use curve25519_dalek::constants::EIGHT_TORSION;
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar;
use ed25519_dalek::VerifyingKey;
use ed25519_dalek::hazmat::{ExpandedSecretKey, raw_sign};
use rand_core::CryptoRng;
use sha2::Sha512;
use zeroize::{ZeroizeOnDrop, Zeroizing};

use super::{KeyError, base64, fixed};

/// An Ed25519 public key, checked to be a valid point when constructed.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ed25519PublicKey(VerifyingKey);

impl Ed25519PublicKey {
    /// The key's length in bytes.
    pub const LENGTH: usize = 32;

    /// The key of a point already known to be valid (computed, not received).
    pub(super) fn from_edwards(point: curve25519_dalek::edwards::EdwardsPoint) -> Self {
        Self(VerifyingKey::from(point))
    }

    /// Reads a compressed Edwards point, refusing encodings that do not decompress.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        VerifyingKey::from_bytes(bytes)
            .map(Self)
            .map_err(|_| KeyError::InvalidEncoding)
    }

    /// Reads a key from a slice of exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, KeyError> {
        Self::from_bytes(&fixed(bytes)?)
    }

    /// Reads a key from (padded or unpadded) base64.
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        Self::from_slice(&base64::decode(text)?)
    }

    /// The Curve25519 form of the point this key already holds (`u = (1 + y) / (1 − y)`, one
    /// field inversion): no decompression again, and no check beyond the point's validity.
    pub(crate) fn held_curve25519(&self) -> super::Curve25519PublicKey {
        super::Curve25519PublicKey::from_bytes(self.0.to_montgomery().to_bytes())
    }

    /// The compressed point.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// Unpadded base64.
    pub fn to_base64(&self) -> String {
        base64::encode(self.as_bytes())
    }

    /// Verifies `signature` over `message` strictly: non-canonical signatures and weak keys fail.
    ///
    /// The answer is ed25519-dalek's `verify_strict`'s, reached without decoding `R` (a square
    /// root): `[s]B − [k]A` is computed and compressed as there, and compared with `R`'s bytes.
    /// A match makes those bytes the canonical encoding of that point, so `R` decodes, and it
    /// has small order exactly when the bytes are one of the eight small-order points'
    /// encodings; without a match both refuse. A test compares the two.
    pub fn verify(&self, message: &[u8], signature: &Ed25519Signature) -> Result<(), KeyError> {
        let (r_bytes, s_bytes) = signature.0.split_at(32);
        let s = fixed::<32>(s_bytes)
            .ok()
            .and_then(|s| Option::<Scalar>::from(Scalar::from_canonical_bytes(s)));
        let Some(s) = s else {
            return Err(KeyError::InvalidSignature);
        };
        if is_small_order_encoding(self.as_bytes())
            || small_order_encodings().iter().any(|e| e[..] == *r_bytes)
        {
            return Err(KeyError::InvalidSignature);
        }
        let k = super::batch::challenge(signature, self.as_bytes(), message);
        let minus_a = -self.0.to_edwards();
        let expected = EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &minus_a, &s);
        if expected.compress().as_bytes()[..] == *r_bytes {
            Ok(())
        } else {
            Err(KeyError::InvalidSignature)
        }
    }

    pub(super) fn verifying_key(&self) -> &VerifyingKey {
        &self.0
    }
}

impl fmt::Debug for Ed25519PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ed25519PublicKey({})", self.to_base64())
    }
}

impl fmt::Display for Ed25519PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

/// The encodings of the eight points of small order (compressed once).
fn small_order_encodings() -> &'static [[u8; 32]; 8] {
    static ENCODINGS: std::sync::OnceLock<[[u8; 32]; 8]> = std::sync::OnceLock::new();
    ENCODINGS.get_or_init(|| EIGHT_TORSION.map(|point| point.compress().to_bytes()))
}

/// Whether `bytes`, which decompress to a point, name a point of small order: what
/// `is_small_order` says of that point (three doublings) from the bytes alone, for a check
/// made once per signature of a batch.
///
/// A decoded point has small order exactly when its `y` is one of a small-order point's, and
/// then both signs of `x` are small-order points too (`±P`, or `x = 0`). The bytes' `y` (the
/// low 255 bits) is that `y` or, only for `y < 19` (the `y` = 0 and 1 of small order), that
/// `y` plus p: those two non-canonical forms are listed as well.
pub(super) fn is_small_order_encoding(bytes: &[u8; 32]) -> bool {
    static YS: std::sync::OnceLock<Vec<[u8; 32]>> = std::sync::OnceLock::new();
    let ys = YS.get_or_init(|| {
        let mut ys: Vec<[u8; 32]> = small_order_encodings()
            .iter()
            .map(|encoding| {
                let mut y = *encoding;
                y[31] &= 0x7f;
                y
            })
            .collect();
        // p = 2^255 − 19 and p + 1, little-endian: y = 0 and y = 1 written past p.
        for low in [0xed, 0xee] {
            let mut y = [0xff; 32];
            y[0] = low;
            y[31] = 0x7f;
            ys.push(y);
        }
        ys.sort_unstable();
        ys.dedup();
        ys
    });
    let mut y = *bytes;
    y[31] &= 0x7f;
    ys.contains(&y)
}

/// Ed25519 public keys already decoded, by their compressed bytes, so that a key read again and
/// again (a Megolm session's signing key, loaded at every decrypt) is decompressed once (a
/// square root in the field). Public keys only: nothing secret is kept.
#[derive(Debug, Default)]
pub(crate) struct DecodedKeys {
    // foldhash, per-process seed: keys come from the network and the store.
    keys: std::collections::HashMap<[u8; 32], Ed25519PublicKey, foldhash::fast::RandomState>,
}

impl DecodedKeys {
    /// Keys remembered at most (about 200 bytes each, 3 MB in all); past this the memory
    /// starts again. A backlog window spans thousands of sessions and every window loads them
    /// again: at 1,024, a dump over 10,000 sessions decoded every key at every load (7% of
    /// `olmo matrix decrypt`'s CPU).
    pub(crate) const CAPACITY: usize = 16_384;

    /// Remembers a key decoded elsewhere (a device's own identity, which each of its sessions
    /// names), so that reading it again costs no decompression.
    pub(crate) fn remember(&mut self, key: Ed25519PublicKey) {
        if self.keys.len() >= Self::CAPACITY {
            self.keys.clear();
        }
        self.keys.insert(*key.as_bytes(), key);
    }

    /// [`Ed25519PublicKey::from_bytes`], remembered.
    pub(crate) fn decode(&mut self, bytes: &[u8; 32]) -> Result<Ed25519PublicKey, KeyError> {
        if let Some(key) = self.keys.get(bytes) {
            return Ok(*key);
        }
        let key = Ed25519PublicKey::from_bytes(bytes)?;
        if self.keys.len() >= Self::CAPACITY {
            self.keys.clear();
        }
        self.keys.insert(*bytes, key);
        Ok(key)
    }
}

/// An Ed25519 signature (64 bytes).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Ed25519Signature([u8; 64]);

impl Ed25519Signature {
    /// The signature's length in bytes.
    pub const LENGTH: usize = 64;

    /// Wraps 64 raw bytes.
    pub const fn from_bytes(bytes: [u8; 64]) -> Self {
        Self(bytes)
    }

    /// Reads a signature from a slice of exactly 64 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, KeyError> {
        fixed(bytes).map(Self)
    }

    /// Reads a signature from (padded or unpadded) base64.
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        Self::from_slice(&base64::decode(text)?)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }

    /// Unpadded base64.
    pub fn to_base64(&self) -> String {
        base64::encode(self.0)
    }
}

impl fmt::Debug for Ed25519Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ed25519Signature({})", self.to_base64())
    }
}

/// The two forms a signing secret comes in: a 32-byte seed (RFC 8032), or the 64-byte expanded
/// key `clamp(SHA-512(seed)[..32]) ‖ SHA-512(seed)[32..]` that libolm stores without its seed.
#[derive(Clone)]
enum Secret {
    Seed(Box<Zeroizing<[u8; 32]>>),
    Expanded(Box<Zeroizing<[u8; 64]>>),
}

/// Both variants wipe themselves on drop.
impl ZeroizeOnDrop for Secret {}
/// The secret half wipes itself; the public half is public.
impl ZeroizeOnDrop for Ed25519KeyPair {}

/// An Ed25519 signing key with its public key.
#[derive(Clone)]
pub struct Ed25519KeyPair {
    secret: Secret,
    signing: SigningScalar,
    public: Ed25519PublicKey,
}

/// The expanded secret both forms sign with, computed once: ed25519-dalek's `SigningKey::sign`
/// would hash the seed again (SHA-512 and a scalar reduction) at every signature.
struct SigningScalar(Box<ExpandedSecretKey>);

impl Clone for SigningScalar {
    fn clone(&self) -> Self {
        Self(Box::new(ExpandedSecretKey {
            scalar: self.0.scalar,
            hash_prefix: self.0.hash_prefix,
        }))
    }
}

impl Ed25519KeyPair {
    /// Generates a key pair from a 32-byte seed drawn from `rng`.
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(seed.as_mut());
        Self::from_seed(&seed)
    }

    /// The key pair of an RFC 8032 seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        // One SHA-512 of the seed and one base-point multiplication: ed25519-dalek's
        // `SigningKey::from_bytes` would hash the seed a second time.
        let signing = Box::new(ExpandedSecretKey::from(seed));
        let public = Ed25519PublicKey(VerifyingKey::from(&*signing));
        Self {
            secret: Secret::Seed(Box::new(Zeroizing::new(*seed))),
            signing: SigningScalar(signing),
            public,
        }
    }

    /// The key pair of a libolm-style expanded secret (clamped scalar ‖ hash prefix).
    pub fn from_expanded(expanded: &[u8; 64]) -> Self {
        let signing = Box::new(ExpandedSecretKey::from_bytes(expanded));
        let public = Ed25519PublicKey(VerifyingKey::from(&*signing));
        Self {
            secret: Secret::Expanded(Box::new(Zeroizing::new(*expanded))),
            signing: SigningScalar(signing),
            public,
        }
    }

    /// The seed, if this key was made from one (keys imported from libolm have none).
    pub fn seed(&self) -> Option<Zeroizing<[u8; 32]>> {
        match &self.secret {
            Secret::Seed(seed) => Some(Zeroizing::new(***seed)),
            Secret::Expanded(_) => None,
        }
    }

    /// The 64-byte expanded form libolm stores.
    pub fn expanded(&self) -> Zeroizing<[u8; 64]> {
        match &self.secret {
            Secret::Seed(seed) => {
                let hash = Zeroizing::new(<[u8; 64]>::from(<Sha512 as sha2::Digest>::digest(
                    seed.as_slice(),
                )));
                let mut out = Zeroizing::new(*hash);
                out[0] &= 248;
                out[31] &= 63;
                out[31] |= 64;
                out
            }
            Secret::Expanded(bytes) => Zeroizing::new(***bytes),
        }
    }

    /// The public key.
    pub fn public_key(&self) -> Ed25519PublicKey {
        self.public
    }

    /// Signs `message` (deterministic RFC 8032 signatures).
    pub fn sign(&self, message: &[u8]) -> Ed25519Signature {
        Ed25519Signature(raw_sign::<Sha512>(&self.signing.0, message, &self.public.0).to_bytes())
    }
}

impl fmt::Debug for Ed25519KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ed25519KeyPair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::traits::IsIdentity;
    use ed25519_dalek::{Signature, SigningKey};

    /// Every 32-byte string whose `y` is a small-order point's (canonical, or written past
    /// p), with either sign bit, and random ones: read from the bytes as the point says.
    #[test]
    fn small_order_is_read_from_the_bytes_as_the_point_says() {
        use curve25519_dalek::edwards::CompressedEdwardsY;
        use rand_core::Rng;
        let mut candidates: Vec<[u8; 32]> = Vec::new();
        for torsion in EIGHT_TORSION {
            let bytes = torsion.compress().to_bytes();
            for sign in [0, 0x80] {
                let mut with_sign = bytes;
                with_sign[31] = with_sign[31] & 0x7f | sign;
                candidates.push(with_sign);
                // y + p, when it fits in 255 bits (y = 0, 1).
                let y = u16::from(with_sign[0]);
                if with_sign[1..31].iter().all(|b| *b == 0) && with_sign[31] & 0x7f == 0 && y < 19 {
                    let mut past = [0xff; 32];
                    past[0] = 0xed + y as u8;
                    past[31] = 0x7f | sign;
                    candidates.push(past);
                }
            }
        }
        let mut rng = rand::rng();
        for _ in 0..2000 {
            let mut bytes = [0u8; 32];
            rng.fill_bytes(&mut bytes);
            candidates.push(bytes);
        }
        candidates.sort_unstable();
        candidates.dedup();
        let mut small = 0;
        for bytes in candidates {
            if let Some(point) = CompressedEdwardsY(bytes).decompress() {
                assert_eq!(
                    is_small_order_encoding(&bytes),
                    point.is_small_order(),
                    "{bytes:?}"
                );
                small += usize::from(point.is_small_order());
            }
        }
        // Five y values with either sign, and y = 0 and 1 written past p with either sign.
        assert_eq!(small, 14);
    }

    #[test]
    fn expanded_and_seed_forms_sign_alike() {
        let pair = Ed25519KeyPair::from_seed(&[42; 32]);
        let imported = Ed25519KeyPair::from_expanded(&pair.expanded());
        assert_eq!(pair.public_key(), imported.public_key());
        assert_eq!(pair.sign(b"hello"), imported.sign(b"hello"));
        assert!(imported.seed().is_none());
        pair.public_key()
            .verify(b"hello", &imported.sign(b"hello"))
            .unwrap();
    }

    #[test]
    fn signing_with_the_kept_expansion_equals_rfc8032_signing() {
        use ed25519_dalek::Signer;
        for seed in [[0u8; 32], [42; 32], [0xFF; 32]] {
            let pair = Ed25519KeyPair::from_seed(&seed);
            let reference = SigningKey::from_bytes(&seed).sign(b"message");
            assert_eq!(
                pair.public_key().0,
                SigningKey::from_bytes(&seed).verifying_key()
            );
            assert_eq!(*pair.seed().unwrap(), seed);
            assert_eq!(pair.sign(b"message").as_bytes(), &reference.to_bytes());
            assert_eq!(pair.clone().sign(b"message"), pair.sign(b"message"));
        }
    }

    #[test]
    fn verification_is_strict() {
        let pair = Ed25519KeyPair::from_seed(&[1; 32]);
        let signature = pair.sign(b"message");
        assert!(pair.public_key().verify(b"other", &signature).is_err());
        // S + l is the same signature to a lax verifier; strict verification refuses it.
        let mut malleated = *signature.as_bytes();
        let order: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for (s, l) in malleated[32..].iter_mut().zip(order) {
            let sum = u16::from(*s) + u16::from(l) + carry;
            *s = sum as u8;
            carry = sum >> 8;
        }
        assert!(
            pair.public_key()
                .verify(b"message", &Ed25519Signature::from_bytes(malleated))
                .is_err()
        );
    }

    /// ed25519-dalek's own strict verifier, which [`Ed25519PublicKey::verify`] must agree with.
    fn dalek_strict(key: &VerifyingKey, message: &[u8], signature: &[u8; 64]) -> bool {
        key.verify_strict(message, &Signature::from_bytes(signature))
            .is_ok()
    }

    fn agree(key: &VerifyingKey, message: &[u8], signature: &[u8; 64]) -> bool {
        let ours = Ed25519PublicKey(*key)
            .verify(message, &Ed25519Signature::from_bytes(*signature))
            .is_ok();
        assert_eq!(ours, dalek_strict(key, message, signature));
        ours
    }

    #[test]
    fn verification_agrees_with_dalek_verify_strict() {
        use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
        use rand_core::Rng;
        let mut rng = rand::rng();
        let pair = Ed25519KeyPair::generate(&mut rng);
        let key = *pair.public_key().verifying_key();
        for i in 0..50u32 {
            let message = i.to_be_bytes();
            let good = *pair.sign(&message).as_bytes();
            assert!(agree(&key, &message, &good));
            assert!(!agree(&key, b"other", &good));
            let mut flipped = good;
            flipped[rng.next_u32() as usize % 64] ^= 1 << (rng.next_u32() % 8);
            agree(&key, &message, &flipped);
            for torsion in EIGHT_TORSION {
                let mut small_r = good;
                small_r[..32].copy_from_slice(torsion.compress().as_bytes());
                assert!(!agree(&key, &message, &small_r));
                // A weak key refuses everything.
                let weak = VerifyingKey::from(torsion);
                assert!(!agree(&weak, &message, &good));
            }
            let mut random = [0u8; 64];
            rng.fill_bytes(&mut random);
            assert!(!agree(&key, &message, &random));
        }
        // A small-order R that satisfies the equation: A = [a]B + T with T of order 2, and
        // s = k·a, so [s]B − [k]A = −[k]T = T when k is odd. Both refuse it for R's order.
        let t = EIGHT_TORSION
            .into_iter()
            .find(|p| !p.is_identity() && (p + p).is_identity())
            .unwrap();
        let a = Scalar::from(rng.next_u64());
        let key = VerifyingKey::from(ED25519_BASEPOINT_POINT * a + t);
        let mut tried = 0;
        for i in 0..64u32 {
            let message = i.to_be_bytes();
            let mut signature = [0u8; 64];
            signature[..32].copy_from_slice(t.compress().as_bytes());
            let k = crate::crypto::batch::challenge(
                &Ed25519Signature::from_bytes(signature),
                key.as_bytes(),
                &message,
            );
            if k.as_bytes()[0] & 1 == 0 {
                continue;
            }
            signature[32..].copy_from_slice((k * a).as_bytes());
            let r = ED25519_BASEPOINT_POINT * (k * a) - key.to_edwards() * k;
            assert_eq!(r.compress(), t.compress());
            assert!(!agree(&key, &message, &signature));
            tried += 1;
        }
        assert!(tried > 0);
    }

    #[test]
    fn rfc8032_test_1() {
        let seed: [u8; 32] = [
            0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec,
            0x2c, 0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03,
            0x1c, 0xae, 0x7f, 0x60,
        ];
        let pair = Ed25519KeyPair::from_seed(&seed);
        assert_eq!(
            pair.public_key().to_base64(),
            "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo"
        );
    }
}
