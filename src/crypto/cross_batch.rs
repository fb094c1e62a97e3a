//! Batch verification of many Ed25519 signatures under many keys (a window of room events
//! over thousands of Megolm sessions, about one event per session).
//!
//! One multi-scalar multiplication checks `−(Σ zᵢsᵢ)·B + Σ zᵢ·Rᵢ + Σⱼ (Σ_{i∈j} zᵢkᵢ)·Aⱼ = 0`
//! for random 128-bit `zᵢ`. That equation only sees the prime-order part of each point, and
//! [`Ed25519PublicKey::verify`] is cofactorless: it accepts only `R = sB − kA` exactly. So the
//! batch also proves every `Rᵢ` and every `Aⱼ` free of torsion, whence each `sᵢB − Rᵢ − kᵢAⱼ`
//! lies in the prime-order group and the batch equation holds (but with probability 2⁻¹²⁸)
//! only if every single equation does. A key with torsion (valid, but not of prime order)
//! makes the batch fail; the fallback verifies its signatures singly.
//!
//! Torsion-freeness is proven for all points together: [`TORSION_TESTS`] random subset sums
//! of the points, each multiplied by the group order. A point with a torsion component `τ`
//! makes a test pass with probability at most 1/2 (adding or leaving out that point changes
//! the sum's torsion by `τ ≠ 0`), so all tests pass with probability at most 2⁻¹²⁸. The sums
//! cost 16 to 32 point additions per point (tests drawn eight or four at a time, each point
//! added once per draw to the bucket of its memberships), far less than one scalar
//! multiplication per point.
//!
//! The other strict checks are those of single verification: canonical `s`, canonical `R` not
//! of small order, `A` not of small order; a signature failing them is verified singly (and
//! fails). A batch that fails is split in halves; below [`MIN_CROSS`] signatures each is
//! verified singly.

use std::collections::{HashMap, HashSet};

// Keys are chosen by whoever sends the events: foldhash with a per-process random seed
// (SipHash was a sixtieth of `olmo matrix decrypt`'s CPU time in these maps).
use foldhash::fast::RandomState;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{Identity, IsIdentity, VartimeMultiscalarMul};
use rand_core::Rng;

use super::batch::{challenge, strict_parts};
use super::ed25519::is_small_order_encoding;
use super::{Ed25519PublicKey, Ed25519Signature};

/// Random subset sums that prove a batch's points torsion-free: each lets a point with
/// torsion through with probability at most 1/2, as the 128-bit `zᵢ` do for the equation.
pub const TORSION_TESTS: usize = 128;

/// Below this many signatures the fixed cost of the torsion tests (one multiplication by the
/// group order each) outweighs the batch; they are verified singly.
pub const MIN_CROSS: usize = 256;

/// One signature of a cross-key batch: the key, the signed message, the signature.
pub type SignedItem<'a> = (&'a Ed25519PublicKey, &'a [u8], &'a Ed25519Signature);

/// Keys earlier batches proved free of torsion, so that later batches leave them out of the
/// torsion tests (a Megolm session's key is proven once, not once per window of events).
#[derive(Debug, Default)]
pub struct TorsionFreeKeys {
    keys: HashSet<[u8; 32], RandomState>,
}

impl TorsionFreeKeys {
    /// Keys remembered at most; past this the memory starts again (it is only a saving).
    pub const CAPACITY: usize = 100_000;

    fn remember(&mut self, key: &[u8; 32]) {
        if self.keys.len() >= Self::CAPACITY {
            self.keys.clear();
        }
        self.keys.insert(*key);
    }
}

impl Ed25519PublicKey {
    /// Verifies each `(key, message, signature)` under its own key, all in a few batches;
    /// the result has one entry per item, each exactly what [`Ed25519PublicKey::verify`]
    /// says (but with probability 2⁻¹²⁸ per batch). Randomness comes from the operating
    /// system.
    pub fn verify_many(items: &[SignedItem<'_>]) -> Vec<bool> {
        Self::verify_many_with_rng(items, &mut TorsionFreeKeys::default(), &mut rand::rng())
    }

    /// As [`Ed25519PublicKey::verify_many`], skipping the torsion tests of the keys in
    /// `proven` and adding the keys this call proves, with batch scalars from `rng`, which
    /// must be unpredictable to whoever made the signatures.
    pub fn verify_many_with_rng(
        items: &[SignedItem<'_>],
        proven: &mut TorsionFreeKeys,
        rng: &mut impl Rng,
    ) -> Vec<bool> {
        if items.len() < MIN_CROSS {
            // Too few for a batch: decoding R here would only be done twice.
            return items
                .iter()
                .map(|(key, message, signature)| key.verify(message, signature).is_ok())
                .collect();
        }
        let mut results = vec![false; items.len()];
        // Signatures single verification refuses on their form fail here (verified singly, so
        // that the answer is its answer); the rest go to the batches.
        let mut batched = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let (key, message, signature) = *item;
            match strict_parts(signature) {
                Some((r, s)) if !is_small_order_encoding(key.as_bytes()) => batched.push(Parsed {
                    index,
                    key,
                    message,
                    signature,
                    r,
                    s,
                }),
                _ => results[index] = key.verify(message, signature).is_ok(),
            }
        }
        bisect(&batched, proven, rng, &mut results);
        results
    }
}

/// A signature whose form passed the strict checks, with its decoded `R` and `s`.
struct Parsed<'a> {
    index: usize,
    key: &'a Ed25519PublicKey,
    message: &'a [u8],
    signature: &'a Ed25519Signature,
    r: EdwardsPoint,
    s: Scalar,
}

/// Verifies `items` as one batch; if that fails, each half, down to [`MIN_CROSS`].
fn bisect(
    items: &[Parsed<'_>],
    proven: &mut TorsionFreeKeys,
    rng: &mut impl Rng,
    results: &mut [bool],
) {
    if items.len() < MIN_CROSS {
        singly(items, results);
    } else if batch_holds(items, proven, rng) {
        for item in items {
            results[item.index] = true;
        }
    } else {
        let (left, right) = items.split_at(items.len() / 2);
        bisect(left, proven, rng, results);
        bisect(right, proven, rng, results);
    }
}

/// Single verification of each (the per-key batch verifier lets an `R` with torsion through
/// with probability 1/2, so it is no fallback here).
fn singly(items: &[Parsed<'_>], results: &mut [bool]) {
    for item in items {
        results[item.index] = item.key.verify(item.message, item.signature).is_ok();
    }
}

/// The batch equation holds and every `R` and `A` is free of torsion (the keys not yet in
/// `proven` are tested, and remembered there if the batch holds).
fn batch_holds(items: &[Parsed<'_>], proven: &mut TorsionFreeKeys, rng: &mut impl Rng) -> bool {
    let mut key_slots: HashMap<&[u8; 32], usize, RandomState> = HashMap::default();
    let mut unproven: Vec<usize> = Vec::new();
    let mut key_points: Vec<EdwardsPoint> = Vec::new();
    let mut key_scalars: Vec<Scalar> = Vec::new();
    let mut base_scalar = Scalar::ZERO;
    let mut scalars = Vec::with_capacity(items.len() * 2 + 1);
    let mut points = Vec::with_capacity(items.len() * 2 + 1);
    for item in items {
        let k = challenge(item.signature, item.key.as_bytes(), item.message);
        let mut z = [0u8; 16];
        rng.fill_bytes(&mut z);
        let z = Scalar::from(u128::from_le_bytes(z));
        base_scalar -= z * item.s;
        scalars.push(z);
        points.push(item.r);
        let slot = *key_slots.entry(item.key.as_bytes()).or_insert_with(|| {
            if !proven.keys.contains(item.key.as_bytes()) {
                unproven.push(key_points.len());
            }
            key_points.push(item.key.verifying_key().to_edwards());
            key_scalars.push(Scalar::ZERO);
            key_points.len() - 1
        });
        key_scalars[slot] += z * k;
    }
    let mut torsion_tested = points.clone();
    torsion_tested.extend(unproven.iter().map(|&slot| key_points[slot]));
    points.extend_from_slice(&key_points);
    scalars.extend(key_scalars);
    points.push(ED25519_BASEPOINT_POINT);
    scalars.push(base_scalar);
    let holds = EdwardsPoint::vartime_multiscalar_mul(&scalars, &points).is_identity()
        && all_torsion_free(&torsion_tested, rng);
    if holds {
        for key in key_slots.into_keys() {
            proven.remember(key);
        }
    }
    holds
}

/// Whether every point is of prime order (or the identity), but with probability 2⁻¹²⁸:
/// [`TORSION_TESTS`] random subset sums, each multiplied by the group order.
///
/// The tests are drawn `b` at a time: each point gets a random `b`-bit pattern (bit `j`: it is
/// in the round's test `j`) and is added to the bucket of its pattern, then each test sums the
/// buckets whose pattern has its bit. A point is thus in each test independently with
/// probability 1/2, as the proof above needs, for `128/b` additions per point and
/// about `2^(b+1)·128/b` per call: `b = 8` for large batches (16 per point), 4 for small ones.
pub(super) fn all_torsion_free(points: &[EdwardsPoint], rng: &mut impl Rng) -> bool {
    if points.len() >= LARGE_TORSION_BATCH {
        torsion_free_in_rounds::<8, 256>(points, rng)
    } else {
        torsion_free_in_rounds::<4, 16>(points, rng)
    }
}

/// Points from which 8-bit patterns cost fewer additions than 4-bit ones (16·n + 8,192
/// against 32·n + 1,024).
const LARGE_TORSION_BATCH: usize = 450;

/// [`all_torsion_free`] with `BITS`-bit patterns (`BUCKETS = 2^BITS`).
fn torsion_free_in_rounds<const BITS: usize, const BUCKETS: usize>(
    points: &[EdwardsPoint],
    rng: &mut impl Rng,
) -> bool {
    let mut patterns = vec![0u8; points.len()];
    for _ in 0..TORSION_TESTS / BITS {
        rng.fill_bytes(&mut patterns);
        let mut buckets = [EdwardsPoint::identity(); BUCKETS];
        for (point, pattern) in points.iter().zip(&patterns) {
            let bucket = usize::from(*pattern) % BUCKETS;
            if bucket != 0 {
                buckets[bucket] += point;
            }
        }
        // Test `bit` sums the buckets whose pattern has that bit. From the top bit down: the
        // upper half of the buckets is its test, then the upper half is folded onto the lower
        // (the bit dropped), so each bucket stands for every pattern with its low bits.
        // About 2^(BITS+1) additions per round, not BITS·2^(BITS−1).
        for bit in (0..BITS).rev() {
            let half = 1 << bit;
            let (lower, upper) = buckets[..2 * half].split_at_mut(half);
            let mut sum = EdwardsPoint::identity();
            for (low, high) in lower.iter_mut().zip(upper.iter()) {
                sum += high;
                *low += high;
            }
            if !sum.is_torsion_free() {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::constants::EIGHT_TORSION;
    use proptest::prelude::*;

    /// A signer that controls its nonce point and its key point, to make the signatures an
    /// honest signer never makes: `R` or `A` with a torsion component.
    struct RawSigner {
        secret: Scalar,
        key: Ed25519PublicKey,
    }

    impl RawSigner {
        /// A key `aB + torsion`.
        fn new(seed: u64, torsion: usize) -> Self {
            let secret = scalar(seed);
            let point = ED25519_BASEPOINT_POINT * secret + EIGHT_TORSION[torsion];
            let key = Ed25519PublicKey::from_bytes(&point.compress().0).unwrap();
            Self { secret, key }
        }

        /// `R = rB + torsion`, `s = r + k·a`.
        fn sign(&self, message: &[u8], nonce: u64, torsion: usize) -> Ed25519Signature {
            let r = scalar(nonce);
            let point = ED25519_BASEPOINT_POINT * r + EIGHT_TORSION[torsion];
            let mut bytes = [0u8; 64];
            bytes[..32].copy_from_slice(&point.compress().0);
            let k = challenge(
                &Ed25519Signature::from_bytes(bytes),
                self.key.as_bytes(),
                message,
            );
            bytes[32..].copy_from_slice((r + k * self.secret).as_bytes());
            Ed25519Signature::from_bytes(bytes)
        }
    }

    fn scalar(seed: u64) -> Scalar {
        let mut wide = [0u8; 64];
        wide[..8].copy_from_slice(&seed.to_le_bytes());
        wide[8] = 0x5a;
        Scalar::from_bytes_mod_order_wide(&wide) * Scalar::from(0x9e37_79b9_7f4a_7c15u64)
    }

    /// Adds ℓ to the little-endian `s` of a signature (the same signature to a lax verifier).
    fn raise_s(signature: &Ed25519Signature) -> Ed25519Signature {
        const ORDER: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut bytes = *signature.as_bytes();
        let mut carry = 0u16;
        for (byte, add) in bytes[32..].iter_mut().zip(ORDER) {
            let sum = u16::from(*byte) + u16::from(add) + carry;
            *byte = sum as u8;
            carry = sum >> 8;
        }
        Ed25519Signature::from_bytes(bytes)
    }

    /// The kinds of signature mixed in a batch; each item's expected answer is what single
    /// verification says.
    const KINDS: u8 = 10;

    fn item(
        kind: u8,
        i: u64,
        signers: &[RawSigner],
    ) -> (Ed25519PublicKey, Vec<u8>, Ed25519Signature) {
        let message = format!("event {i}").into_bytes();
        let honest = &signers[(i % 3) as usize];
        let signed = |signer: &RawSigner, torsion| {
            let signature = signer.sign(&message, i + 1000, torsion);
            (signer.key, message.clone(), signature)
        };
        match kind {
            // Honest: prime-order key, prime-order R. Most items, so batches mostly pass.
            0..=3 => signed(&signers[3 + (i % 40) as usize], 0),
            // Forged: signed, then the message changed.
            4 => {
                let (key, _, signature) = signed(honest, 0);
                (key, b"another message".to_vec(), signature)
            }
            // Non-canonical s (s + ℓ).
            5 => {
                let (key, message, signature) = signed(honest, 0);
                (key, message, raise_s(&signature))
            }
            // R with a torsion component of order 8, 4 or 2 (made by the key's holder).
            6 => signed(honest, [1, 2, 4][(i % 3) as usize]),
            // A key with torsion: valid exactly when k·T = 0 (about half for order 2).
            7 => signed(&signers[43 + (i % 3) as usize], 0),
            // Small-order R (any s).
            8 => {
                let mut bytes = *signed(honest, 0).2.as_bytes();
                bytes[..32].copy_from_slice(&EIGHT_TORSION[(i % 8) as usize].compress().0);
                (
                    honest.key,
                    message.clone(),
                    Ed25519Signature::from_bytes(bytes),
                )
            }
            // A small-order key.
            _ => {
                let key =
                    Ed25519PublicKey::from_bytes(&EIGHT_TORSION[(i % 8) as usize].compress().0)
                        .unwrap();
                (key, message.clone(), signed(honest, 0).2)
            }
        }
    }

    fn signers() -> Vec<RawSigner> {
        // 0..43: prime-order keys; 43..46: keys with torsion of order 2, 4 and 8.
        let mut signers: Vec<RawSigner> = (0..43).map(|i| RawSigner::new(i, 0)).collect();
        signers.extend([4, 2, 1].map(|t| RawSigner::new(100 + t as u64, t)));
        signers
    }

    fn check_against_single(kinds: &[u8], seed: u64) {
        let signers = signers();
        let items: Vec<_> = kinds
            .iter()
            .enumerate()
            .map(|(i, kind)| item(*kind, seed.wrapping_add(i as u64), &signers))
            .collect();
        let borrowed: Vec<SignedItem<'_>> =
            items.iter().map(|(k, m, s)| (k, m.as_slice(), s)).collect();
        // Twice, the second time with the keys the first proved left out of the torsion tests.
        let mut proven = TorsionFreeKeys::default();
        let mut rng = rand::rng();
        let first = Ed25519PublicKey::verify_many_with_rng(&borrowed, &mut proven, &mut rng);
        for torsion_key in &signers[43..] {
            assert!(!proven.keys.contains(torsion_key.key.as_bytes()));
        }
        let second = Ed25519PublicKey::verify_many_with_rng(&borrowed, &mut proven, &mut rng);
        assert_eq!(first, second);
        for (i, ((key, message, signature), ok)) in items.iter().zip(first).enumerate() {
            let single = key.verify(message, signature).is_ok();
            assert_eq!(ok, single, "item {i}, kind {}", kinds[i]);
            if kinds[i] <= 3 {
                assert!(ok, "honest item {i}");
            } else if kinds[i] != 7 {
                assert!(!ok, "bad item {i}, kind {}", kinds[i]);
            }
        }
    }

    #[test]
    fn honest_batches_pass_and_each_kind_fails_as_single_verification_does() {
        let honest = vec![0u8; 600];
        check_against_single(&honest, 1);
        // One of each bad kind among honest items, at a random place each time.
        for kind in 4..KINDS {
            let mut kinds = vec![0u8; 300];
            kinds[(kind as usize * 37) % 300] = kind;
            check_against_single(&kinds, u64::from(kind) * 7919);
        }
    }

    #[test]
    fn a_key_with_torsion_gives_singles_answers_both_ways() {
        let signers = signers();
        let (mut valid, mut invalid) = (0, 0);
        for i in 0..64 {
            let (key, message, signature) = item(7, i, &signers);
            if key.verify(&message, &signature).is_ok() {
                valid += 1;
            } else {
                invalid += 1;
            }
        }
        assert!(valid > 0 && invalid > 0, "{valid} valid, {invalid} invalid");
    }

    #[test]
    fn one_point_with_torsion_among_many_is_found() {
        let mut rng = rand::rng();
        // Both pattern widths: 4 bits below LARGE_TORSION_BATCH points, 8 from there.
        for count in [301u64, LARGE_TORSION_BATCH as u64 + 1] {
            let mut points: Vec<EdwardsPoint> = (0..count)
                .map(|i| ED25519_BASEPOINT_POINT * scalar(i))
                .collect();
            assert!(all_torsion_free(&points, &mut rng));
            let last = points.len() - 1;
            for (which, torsion) in EIGHT_TORSION.iter().enumerate().skip(1) {
                for at in [0, last / 2, last] {
                    let clean = points[at];
                    points[at] += torsion;
                    assert!(
                        !all_torsion_free(&points, &mut rng),
                        "torsion point {which} at {at} of {count}"
                    );
                    points[at] = clean;
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

        /// Random mixes (mostly honest, so that batches pass and split) give single
        /// verification's answer for every item.
        #[test]
        fn random_mixes_agree_with_single_verification(
            kinds in proptest::collection::vec(
                prop_oneof![8 => Just(0u8), 1 => 4u8..KINDS], MIN_CROSS..3 * MIN_CROSS),
            seed in any::<u64>(),
        ) {
            check_against_single(&kinds, seed);
        }
    }
}
