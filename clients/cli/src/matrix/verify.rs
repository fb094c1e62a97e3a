//! A batch's signatures verified on two threads (the machine itself stays on one).
//!
//! Verifying a window's Megolm signatures is about half of `olmo matrix decrypt`'s CPU time,
//! and the signatures are independent, so the second core shortens the user's wait. The items
//! are split by their key, not by position: each half has its own record of the keys it
//! proved free of torsion, and a session's key always falls in the same half, so it is proven
//! once per run as on one thread.

use olmo::crypto::{Ed25519PublicKey, SignedItem, TorsionFreeKeys};

/// Below this many signatures a second thread costs more than it saves (a cross-key batch has
/// a fixed cost; the smallest ones are verified singly anyway).
const MIN_SPLIT: usize = 2 * olmo::crypto::MIN_CROSS;

/// Two halves' records of keys proven torsion-free, kept across a run's batches.
#[derive(Debug, Default)]
pub struct TwoThreads {
    proven: [TorsionFreeKeys; 2],
}

impl TwoThreads {
    /// One verdict per item, in order, each what [`Ed25519PublicKey::verify`] says of it.
    pub fn verify(&mut self, items: &[SignedItem<'_>]) -> Vec<bool> {
        let [first, second] = &mut self.proven;
        if items.len() < MIN_SPLIT {
            return Ed25519PublicKey::verify_many_with_rng(items, first, &mut rand::rng());
        }
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        let (mut our_items, mut their_items) = (Vec::new(), Vec::new());
        for (index, item) in items.iter().enumerate() {
            if item.0.as_bytes()[0] & 1 == 0 {
                ours.push(index);
                our_items.push(*item);
            } else {
                theirs.push(index);
                their_items.push(*item);
            }
        }
        let (our_verdicts, their_verdicts) = std::thread::scope(|scope| {
            let helper = scope.spawn(|| {
                Ed25519PublicKey::verify_many_with_rng(&their_items, second, &mut rand::rng())
            });
            let here = Ed25519PublicKey::verify_many_with_rng(&our_items, first, &mut rand::rng());
            // A panic in the helper is a bug: it goes on here, rather than its items being
            // reported as bad signatures.
            let there = helper
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (here, there)
        });
        let mut verdicts = vec![false; items.len()];
        for (index, ok) in ours.into_iter().zip(our_verdicts) {
            verdicts[index] = ok;
        }
        for (index, ok) in theirs.into_iter().zip(their_verdicts) {
            verdicts[index] = ok;
        }
        verdicts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use olmo::crypto::{Ed25519KeyPair, Ed25519Signature};

    #[test]
    fn verdicts_are_single_verifications_in_order() {
        let mut rng = rand::rng();
        let keys: Vec<Ed25519KeyPair> = (0..64)
            .map(|_| Ed25519KeyPair::generate(&mut rng))
            .collect();
        let messages: Vec<Vec<u8>> = (0..1200u32).map(|i| i.to_be_bytes().to_vec()).collect();
        let mut signed: Vec<(Ed25519PublicKey, Ed25519Signature)> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let key = &keys[i % keys.len()];
                (key.public_key(), key.sign(m))
            })
            .collect();
        // Every 97th signature is another message's.
        for i in (0..signed.len()).step_by(97) {
            signed[i].1 = keys[i % keys.len()].sign(b"another message");
        }
        let items: Vec<SignedItem<'_>> = signed
            .iter()
            .zip(&messages)
            .map(|((key, signature), message)| (key, message.as_slice(), signature))
            .collect();
        let mut verifier = TwoThreads::default();
        for _ in 0..2 {
            let verdicts = verifier.verify(&items);
            for (i, ok) in verdicts.iter().enumerate() {
                assert_eq!(*ok, i % 97 != 0, "item {i}");
            }
        }
        assert_eq!(verifier.verify(&items[..10]).len(), 10);
    }
}
