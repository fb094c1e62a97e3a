//! Batch verification of many Ed25519 signatures under one key (a Megolm session's backlog),
//! and the strict parts of a signature that the batch verifier (cross_batch.rs) checks.
//!
//! A batch under one key is the cross-key batch with every item naming that key: it proves
//! every `R` free of torsion, so it accepts exactly what [`Ed25519PublicKey::verify`] accepts.
//! (An earlier one-key batch folded the key's terms into one scalar but let an `R` with a
//! small-order component pass with probability 1/2; the cross-key batch is as fast on a
//! backlog and exact.)

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use sha2::{Digest, Sha512};

use super::ed25519::is_small_order_encoding;
use super::{Ed25519PublicKey, Ed25519Signature};

impl Ed25519PublicKey {
    /// Verifies each `(message, signature)` pair under this key; the result has one entry per
    /// pair, exactly as [`Ed25519PublicKey::verify`] would give it. Randomness for the batch
    /// comes from the operating system.
    pub fn verify_batch(&self, items: &[(&[u8], &Ed25519Signature)]) -> Vec<bool> {
        let items: Vec<_> = items
            .iter()
            .map(|(message, signature)| (self, *message, *signature))
            .collect();
        Self::verify_many(&items)
    }
}

/// `R` and `s`, if `s` is canonical and `R` is a canonical encoding of a point not of small
/// order.
pub(super) fn strict_parts(signature: &Ed25519Signature) -> Option<(EdwardsPoint, Scalar)> {
    let bytes = signature.as_bytes();
    let mut r_bytes = [0u8; 32];
    r_bytes.copy_from_slice(&bytes[..32]);
    let mut s_bytes = [0u8; 32];
    s_bytes.copy_from_slice(&bytes[32..]);
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))?;
    // Canonical: `y < p`. (The other non-canonical form, `x = 0` with the sign bit set, is
    // `y = ±1`, of small order.) Cheaper than compressing `R` again, which costs an inversion;
    // and small order read from the bytes, cheaper than three doublings of the point.
    if !canonical_y(&r_bytes) || is_small_order_encoding(&r_bytes) {
        return None;
    }
    let r = CompressedEdwardsY(r_bytes).decompress()?;
    Some((r, s))
}

/// Whether the low 255 bits of `bytes` (little-endian) are less than p = 2^255 − 19.
fn canonical_y(bytes: &[u8; 32]) -> bool {
    let top_all_ones = bytes[31] & 0x7f == 0x7f && bytes[1..31].iter().all(|b| *b == 0xff);
    !(top_all_ones && bytes[0] >= 0xed)
}

/// `k = SHA-512(R ‖ A ‖ M) mod ℓ`.
pub(super) fn challenge(signature: &Ed25519Signature, key: &[u8; 32], message: &[u8]) -> Scalar {
    let mut hash = Sha512::new();
    hash.update(&signature.as_bytes()[..32]);
    hash.update(key);
    hash.update(message);
    Scalar::from_hash(hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Ed25519KeyPair;
    use rand_core::Rng;

    #[test]
    fn batches_agree_with_single_verification() {
        let pair = Ed25519KeyPair::generate(&mut rand::rng());
        let key = pair.public_key();
        let messages: Vec<Vec<u8>> = (0..300u32).map(|i| i.to_be_bytes().to_vec()).collect();
        let mut signatures: Vec<Ed25519Signature> = messages.iter().map(|m| pair.sign(m)).collect();
        assert!(
            key.verify_batch(&pairs(&messages, &signatures))
                .iter()
                .all(|ok| *ok)
        );

        // A swapped signature, a flipped bit, and a non-canonical s (s + ℓ) each fail alone.
        signatures.swap(3, 4);
        let mut flipped = *signatures[150].as_bytes();
        flipped[10] ^= 1;
        signatures[150] = Ed25519Signature::from_slice(&flipped).unwrap();
        let mut raised = *signatures[290].as_bytes();
        add_group_order(&mut raised[32..]);
        signatures[290] = Ed25519Signature::from_slice(&raised).unwrap();
        let results = key.verify_batch(&pairs(&messages, &signatures));
        for (index, ok) in results.iter().enumerate() {
            assert_eq!(*ok, ![3, 4, 150, 290].contains(&index), "at {index}");
            assert_eq!(
                *ok,
                key.verify(&messages[index], &signatures[index]).is_ok()
            );
        }
    }

    #[test]
    fn canonical_y_agrees_with_compressing_again() {
        let mut rng = rand::rng();
        for low in 0xe0..=0xffu8 {
            for top in [0x7f, 0xff] {
                let mut bytes = [0xffu8; 32];
                bytes[0] = low;
                bytes[31] = top;
                if let Some(point) = CompressedEdwardsY(bytes).decompress() {
                    assert_eq!(
                        canonical_y(&bytes),
                        point.compress().0 == bytes || point.is_small_order() && low < 0xed
                    );
                }
            }
        }
        for _ in 0..200 {
            let mut bytes = [0u8; 32];
            rng.fill_bytes(&mut bytes);
            if let Some(point) = CompressedEdwardsY(bytes).decompress() {
                assert_eq!(canonical_y(&bytes), point.compress().0 == bytes);
            }
        }
    }

    fn pairs<'a>(
        messages: &'a [Vec<u8>],
        signatures: &'a [Ed25519Signature],
    ) -> Vec<(&'a [u8], &'a Ed25519Signature)> {
        messages
            .iter()
            .map(Vec::as_slice)
            .zip(signatures.iter())
            .collect()
    }

    /// Adds ℓ = 2^252 + 27742317777372353535851937790883648493 to a little-endian scalar.
    fn add_group_order(s: &mut [u8]) {
        const ORDER: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for (byte, add) in s.iter_mut().zip(ORDER) {
            let sum = u16::from(*byte) + u16::from(add) + carry;
            *byte = sum as u8;
            carry = sum >> 8;
        }
    }
}
