//! Message keys skipped over when a later message of a chain arrived first.

use std::collections::VecDeque;

use super::keys::MessageKeySeed;
use crate::crypto::Curve25519PublicKey;

#[derive(Clone, Debug)]
pub(crate) struct SkippedKey {
    pub(crate) ratchet_key: Curve25519PublicKey,
    pub(crate) index: u32,
    pub(crate) seed: MessageKeySeed,
}

/// A FIFO of skipped keys: the oldest are evicted first when the profile's bound is reached.
#[derive(Clone, Debug, Default)]
pub(crate) struct SkippedKeys {
    keys: VecDeque<SkippedKey>,
}

impl SkippedKeys {
    pub(crate) fn position(&self, ratchet_key: &Curve25519PublicKey, index: u32) -> Option<usize> {
        self.keys
            .iter()
            .position(|key| key.index == index && key.ratchet_key == *ratchet_key)
    }

    pub(crate) fn get(&self, position: usize) -> Option<&SkippedKey> {
        self.keys.get(position)
    }

    pub(crate) fn remove(&mut self, position: usize) {
        self.keys.remove(position);
    }

    /// Appends `key`, returning the keys evicted to stay within `max`.
    pub(crate) fn push(&mut self, key: SkippedKey, max: usize) -> Vec<SkippedKey> {
        self.keys.push_back(key);
        let excess = self.keys.len().saturating_sub(max);
        self.keys.drain(..excess).collect()
    }

    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &SkippedKey> + ExactSizeIterator {
        self.keys.iter()
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }
}

impl SkippedKeys {
    /// Drops the keys of a chain that is no longer kept.
    pub(crate) fn retain_other_chains(&mut self, ratchet_key: &Curve25519PublicKey) {
        self.keys.retain(|key| key.ratchet_key != *ratchet_key);
    }
}
