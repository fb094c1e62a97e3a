//! One-time and fallback keys: the keys other devices claim to start a session with us.
//!
//! One-time keys are bounded (the oldest are evicted) and removed only once a session built on
//! them has decrypted its first message. The fallback key is reused until replaced; the previous
//! one stays valid until forgotten, for messages already in flight. Ids come from one counter
//! shared by both kinds, as in libolm, so an account moves between the two unchanged.

use std::fmt;

use rand_core::CryptoRng;

use crate::crypto::{Curve25519KeyPair, Curve25519PublicKey, base64};

/// One-time keys kept at most (libolm's bound, so every account exports to a libolm pickle).
pub const MAX_ONE_TIME_KEYS: usize = 100;

/// A key's id: a counter, shown as the unpadded base64 of its four big-endian bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub u32);

impl KeyId {
    /// The id as Matrix key ids write it (`"AAAAAQ"` for 1).
    pub fn to_base64(self) -> String {
        base64::encode(self.0.to_be_bytes())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.0)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

/// A key with its id and whether the server has it.
#[derive(Clone, Debug)]
pub(crate) struct OneTimeKey {
    pub(super) id: KeyId,
    pub(super) key: Curve25519KeyPair,
    pub(super) published: bool,
}

/// The account's claimable keys.
#[derive(Clone, Debug, Default)]
pub(crate) struct OneTimeKeys {
    /// Oldest first, at most [`MAX_ONE_TIME_KEYS`] (a `Vec`: a `VecDeque` type brought its own
    /// 2 KB of ring-buffer code to the `.wasm` package).
    pub(super) keys: Vec<OneTimeKey>,
    pub(super) fallback: Option<OneTimeKey>,
    pub(super) previous_fallback: Option<OneTimeKey>,
    /// The last id handed out (0: none yet).
    pub(super) last_key_id: u32,
}

impl OneTimeKeys {
    fn next_key(&mut self, rng: &mut impl CryptoRng) -> OneTimeKey {
        self.last_key_id = self.last_key_id.wrapping_add(1);
        OneTimeKey {
            id: KeyId(self.last_key_id),
            key: Curve25519KeyPair::generate(rng),
            published: false,
        }
    }

    pub(crate) fn generate(&mut self, count: usize, rng: &mut impl CryptoRng) {
        for _ in 0..count {
            let key = self.next_key(rng);
            self.keys.push(key);
        }
        let excess = self.keys.len().saturating_sub(MAX_ONE_TIME_KEYS);
        self.keys.drain(..excess);
    }

    pub(crate) fn generate_fallback(&mut self, rng: &mut impl CryptoRng) -> KeyId {
        let key = self.next_key(rng);
        let id = key.id;
        self.previous_fallback = self.fallback.replace(key);
        id
    }

    pub(crate) fn forget_previous_fallback(&mut self) -> bool {
        self.previous_fallback.take().is_some()
    }

    pub(crate) fn unpublished(&self) -> Vec<(KeyId, Curve25519PublicKey)> {
        self.keys
            .iter()
            .filter(|key| !key.published)
            .map(|key| (key.id, key.key.public_key()))
            .collect()
    }

    pub(crate) fn unpublished_fallback(&self) -> Option<(KeyId, Curve25519PublicKey)> {
        self.fallback
            .as_ref()
            .filter(|key| !key.published)
            .map(|key| (key.id, key.key.public_key()))
    }

    pub(crate) fn mark_published(&mut self) {
        for key in self.keys.iter_mut().chain(self.fallback.as_mut()) {
            key.published = true;
        }
    }

    /// The key pair behind `public`, with whether it is a (reusable) fallback key.
    pub(crate) fn find(&self, public: &Curve25519PublicKey) -> Option<(&Curve25519KeyPair, bool)> {
        if let Some(key) = self.keys.iter().find(|key| key.key.public_key() == *public) {
            return Some((&key.key, false));
        }
        self.fallback
            .iter()
            .chain(&self.previous_fallback)
            .find(|key| key.key.public_key() == *public)
            .map(|key| (&key.key, true))
    }

    pub(crate) fn remove(&mut self, public: &Curve25519PublicKey) -> bool {
        let before = self.keys.len();
        self.keys.retain(|key| key.key.public_key() != *public);
        self.keys.len() != before
    }
}
