//! X25519 keys. Every Diffie-Hellman result is checked for contribution: an all-zero output
//! means the peer sent a small-order point, and the exchange is refused.

use std::fmt;

use curve25519_dalek::montgomery::MontgomeryPoint;
use rand_core::CryptoRng;
use subtle::ConstantTimeEq;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::{KeyError, base64, fixed};

/// A Curve25519 public key (32 bytes, Montgomery u-coordinate).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Curve25519PublicKey([u8; 32]);

impl Curve25519PublicKey {
    /// The key's length in bytes.
    pub const LENGTH: usize = 32;

    /// Wraps 32 raw bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Reads a key from a slice of exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, KeyError> {
        fixed(bytes).map(Self)
    }

    /// Reads a key from (padded or unpadded) base64.
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        Self::from_slice(&base64::decode(text)?)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Whether this is the canonical encoding of its point: top bit clear and value below
    /// p = 2^255 - 19 (what every X25519 implementation outputs).
    pub fn is_canonical(&self) -> bool {
        let top = self.0[31];
        if top & 0x80 != 0 {
            return false;
        }
        // The only values in [p, 2^255) are 0x7f ff … ff followed by a low byte ≥ 0xed.
        let high_all_ones = top == 0x7f && self.0[1..31].iter().all(|&byte| byte == 0xff);
        !(high_all_ones && self.0[0] >= 0xed)
    }

    /// Unpadded base64, as Matrix writes keys.
    pub fn to_base64(&self) -> String {
        base64::encode(self.0)
    }
}

impl fmt::Debug for Curve25519PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Curve25519PublicKey({})", self.to_base64())
    }
}

impl fmt::Display for Curve25519PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

/// A Curve25519 secret scalar, boxed so moves don't leave copies behind, wiped on drop.
#[derive(Clone)]
pub struct Curve25519SecretKey(Box<StaticSecret>);

/// `StaticSecret` wipes itself on drop (x25519-dalek's `zeroize` feature, checked by a test).
impl ZeroizeOnDrop for Curve25519SecretKey {}

impl Curve25519SecretKey {
    /// Draws a fresh secret from `rng` (32 bytes, used as-is and clamped at use, like libolm).
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(bytes.as_mut());
        Self::from_bytes(&bytes)
    }

    /// Takes raw secret bytes (unclamped, as libolm and OMEMO store them).
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self(Box::new(StaticSecret::from(*bytes)))
    }

    /// The raw secret bytes; the copy is wiped when dropped.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// Computes the public key (one base-point multiplication).
    pub fn public_key(&self) -> Curve25519PublicKey {
        Curve25519PublicKey(PublicKey::from(self.0.as_ref()).to_bytes())
    }

    /// X25519 with `their_key`, refusing the all-zero result.
    ///
    /// Points on the curve go through the Edwards form, whose vectorised constant-time scalar
    /// multiplication beats the Montgomery ladder; the u-coordinate of the product does not
    /// depend on the sign chosen for the lift. Points on the twist (which only a broken or
    /// hostile peer sends) take x25519-dalek's ladder, so every input gives RFC 7748's answer.
    pub fn diffie_hellman(
        &self,
        their_key: &Curve25519PublicKey,
    ) -> Result<SharedSecret, KeyError> {
        let shared = match MontgomeryPoint(their_key.0).to_edwards(0) {
            Some(point) => {
                let scalar = Zeroizing::new(self.0.to_bytes());
                Zeroizing::new(point.mul_clamped(*scalar).to_montgomery().to_bytes())
            }
            None => Zeroizing::new(
                self.0
                    .diffie_hellman(&PublicKey::from(their_key.0))
                    .to_bytes(),
            ),
        };
        if bool::from(shared.ct_eq(&[0u8; 32])) {
            return Err(KeyError::NonContributory);
        }
        Ok(SharedSecret(shared))
    }
}

impl fmt::Debug for Curve25519SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Curve25519SecretKey(<secret>)")
    }
}

/// The secret half wipes itself; the public half is public.
impl ZeroizeOnDrop for Curve25519KeyPair {}

/// A secret key together with its public key, computed once and kept.
#[derive(Clone)]
pub struct Curve25519KeyPair {
    secret: Curve25519SecretKey,
    public: Curve25519PublicKey,
}

impl Curve25519KeyPair {
    /// Generates a key pair from `rng`.
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        Self::from_secret(Curve25519SecretKey::generate(rng))
    }

    /// Derives the public half of `secret`.
    pub fn from_secret(secret: Curve25519SecretKey) -> Self {
        let public = secret.public_key();
        Self { secret, public }
    }

    /// Pairs a secret with a public key already known to match it (restored from authenticated
    /// storage), skipping the base-point multiplication.
    pub(crate) fn from_parts_unchecked(
        secret: Curve25519SecretKey,
        public: Curve25519PublicKey,
    ) -> Self {
        Self { secret, public }
    }

    /// The secret half.
    pub fn secret(&self) -> &Curve25519SecretKey {
        &self.secret
    }

    /// The public half.
    pub fn public_key(&self) -> Curve25519PublicKey {
        self.public
    }

    /// X25519 with `their_key`, refusing the all-zero result.
    pub fn diffie_hellman(
        &self,
        their_key: &Curve25519PublicKey,
    ) -> Result<SharedSecret, KeyError> {
        self.secret.diffie_hellman(their_key)
    }
}

impl fmt::Debug for Curve25519KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Curve25519KeyPair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// The output of one X25519 exchange, wiped on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SharedSecret(Zeroizing<[u8; 32]>);

impl SharedSecret {
    /// The 32 shared bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedSecret(<secret>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7748_vector() {
        let alice = Curve25519SecretKey::from_bytes(&hex(
            "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
        ));
        let bob = Curve25519SecretKey::from_bytes(&hex(
            "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
        ));
        let shared = alice.diffie_hellman(&bob.public_key()).unwrap();
        assert_eq!(
            shared.as_bytes(),
            &hex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
        );
    }

    #[test]
    fn rejects_small_order_points() {
        let secret = Curve25519SecretKey::from_bytes(&[9u8; 32]);
        for point in [[0u8; 32], {
            let mut one = [0u8; 32];
            one[0] = 1;
            one
        }] {
            assert_eq!(
                secret
                    .diffie_hellman(&Curve25519PublicKey::from_bytes(point))
                    .unwrap_err(),
                KeyError::NonContributory
            );
        }
    }

    #[test]
    fn edwards_path_matches_the_ladder() {
        // Real public keys, arbitrary u values (about half are on the twist), and the edges.
        let mut inputs: Vec<[u8; 32]> = (0u8..=255)
            .map(|i| Curve25519SecretKey::from_bytes(&[i; 32]).public_key().0)
            .collect();
        let mut state = [7u8; 32];
        for _ in 0..512 {
            state = crate::crypto::sha256(&[&state]);
            inputs.push(state);
        }
        let mut minus_one = [0xff; 32];
        minus_one[0] = 0xec;
        minus_one[31] = 0x7f;
        inputs.extend([minus_one, [0xff; 32], [0; 32]]);
        for (i, input) in inputs.iter().enumerate() {
            let secret = Curve25519SecretKey::from_bytes(&crate::crypto::sha256(&[&[i as u8]]));
            let expected = x25519_dalek::x25519(*secret.to_bytes(), *input);
            match secret.diffie_hellman(&Curve25519PublicKey::from_bytes(*input)) {
                Ok(shared) => assert_eq!(shared.as_bytes(), &expected, "input {i}"),
                Err(_) => assert_eq!(expected, [0; 32], "input {i}"),
            }
        }
    }

    #[test]
    fn canonical_encodings() {
        let generated = Curve25519SecretKey::from_bytes(&[3; 32]).public_key();
        assert!(generated.is_canonical());
        let mut top_bit = *generated.as_bytes();
        top_bit[31] |= 0x80;
        assert!(!Curve25519PublicKey::from_bytes(top_bit).is_canonical());
        let mut p = [0xff; 32];
        p[31] = 0x7f;
        p[0] = 0xed;
        assert!(!Curve25519PublicKey::from_bytes(p).is_canonical());
        p[0] = 0xec;
        assert!(Curve25519PublicKey::from_bytes(p).is_canonical());
    }

    #[test]
    fn debug_hides_secrets() {
        let pair = Curve25519KeyPair::from_secret(Curve25519SecretKey::from_bytes(&[1; 32]));
        let shown = format!("{pair:?} {:?}", pair.secret());
        assert!(!shown.contains("[1, 1"));
        assert!(shown.contains("<secret>") || shown.contains(".."));
    }

    fn hex(text: &str) -> [u8; 32] {
        let bytes: Vec<u8> = (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect();
        bytes.try_into().unwrap()
    }
}
