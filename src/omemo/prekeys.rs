//! One version's pre-keys: the signed pre-key (rotated, the previous one kept for a grace
//! period so key exchanges made from an old bundle still open) and the pool of one-time
//! pre-keys. A pre-key leaves the pool only once the key exchange that used it decrypted.

pub(super) mod storage;

use std::time::Duration;

use rand_core::CryptoRng;
use thiserror::Error;

use super::Version;
use super::bundle::VerifiedBundle;
use super::identity::DeviceIdentity;
use super::wire::omemo03;
use crate::crypto::{
    Curve25519KeyPair, Curve25519PublicKey, Curve25519SecretKey, Ed25519Signature,
};
use crate::time::Timestamp;
use crate::vec_map::VecMap;

/// One-time pre-keys kept published (XEP-0384 asks for at least 25; 100 is customary).
pub const POOL_SIZE: usize = 100;
/// How often the signed pre-key is replaced.
pub const SIGNED_PRE_KEY_PERIOD: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// How long the replaced signed pre-key still answers key exchanges.
pub const SIGNED_PRE_KEY_GRACE: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// Used pre-key ids remembered, to tell a reused id from one never issued.
pub const MAX_USED_IDS: usize = 1000;
/// One-time pre-keys a pool may hold: [`PreKeys::refill`] keeps [`POOL_SIZE`], and
/// [`PreKeys::import`] keeps at most this many (no client's pool nears it).
pub const MAX_POOL_SIZE: usize = 1 << 16;
/// Pre-key ids stay below 2^24, the range libsignal clients use.
const MAX_ID: u32 = 0x00ff_ffff;

/// Why a key exchange's pre-keys could not be found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PreKeyError {
    /// The signed pre-key id is neither the current nor the previous one.
    #[error("unknown signed pre-key {0}")]
    UnknownSignedPreKey(u32),
    /// The one-time pre-key id was never issued.
    #[error("unknown pre-key {0}")]
    UnknownPreKey(u32),
    /// The one-time pre-key was issued and already used by another key exchange.
    #[error("pre-key {0} was already used")]
    PreKeyUsed(u32),
    /// OMEMO 2 requires a one-time pre-key and the key exchange names none.
    #[error("the key exchange names no one-time pre-key")]
    MissingPreKey,
}

/// A signed pre-key with its id, signature and creation time.
#[derive(Clone, Debug)]
pub struct SignedPreKey {
    id: u32,
    key_pair: Curve25519KeyPair,
    signature: Ed25519Signature,
    created: Timestamp,
}

impl SignedPreKey {
    fn new(
        identity: &DeviceIdentity,
        version: Version,
        id: u32,
        key_pair: Curve25519KeyPair,
        created: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Self {
        let signature = identity.sign_with_rng(version, &signed_bytes(version, &key_pair), rng);
        Self {
            id,
            key_pair,
            signature,
            created,
        }
    }

    /// The id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The key pair.
    pub fn key_pair(&self) -> &Curve25519KeyPair {
        &self.key_pair
    }

    /// The identity's signature over the public key.
    pub fn signature(&self) -> Ed25519Signature {
        self.signature
    }

    /// When it was made (or imported).
    pub fn created(&self) -> Timestamp {
        self.created
    }
}

/// What a signed pre-key signature covers: the raw key (OMEMO 2) or `0x05 ‖ key` (0.3).
fn signed_bytes(version: Version, key_pair: &Curve25519KeyPair) -> Vec<u8> {
    signed_bytes_of(version, &key_pair.public_key())
}

pub(crate) fn signed_bytes_of(version: Version, key: &Curve25519PublicKey) -> Vec<u8> {
    match version {
        Version::Omemo2 => key.as_bytes().to_vec(),
        Version::Omemo03 => omemo03::encode_key(key),
    }
}

/// A version's signed pre-keys and one-time pre-key pool.
#[derive(Clone, Debug)]
pub struct PreKeys {
    version: Version,
    signed: SignedPreKey,
    previous_signed: Option<(SignedPreKey, Timestamp)>,
    pool: VecMap<u32, Curve25519KeyPair>,
    next_pre_key_id: u32,
    /// Ids consumed by key exchanges, newest last, at most [`MAX_USED_IDS`] (a `Vec`: dropping
    /// the oldest moves 4 KB, once per key exchange, where a `VecDeque` brought its own code).
    used: Vec<u32>,
}

impl PreKeys {
    /// Fresh keys: signed pre-key 1 and pre-keys 1..=100.
    pub fn generate(
        identity: &DeviceIdentity,
        version: Version,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Self {
        let signed = SignedPreKey::new(
            identity,
            version,
            1,
            Curve25519KeyPair::generate(rng),
            now,
            rng,
        );
        let mut keys = Self {
            version,
            signed,
            previous_signed: None,
            pool: VecMap::new(),
            next_pre_key_id: 1,
            used: Vec::new(),
        };
        keys.refill(rng);
        keys
    }

    /// Keys moved from another client: the signed pre-key and pre-keys from their private
    /// bytes and ids. The signed pre-key is signed afresh (the identity may be new to it). Of
    /// more than [`MAX_POOL_SIZE`] pre-keys, the lowest ids are kept (the device would not
    /// restore with more).
    pub fn import(
        identity: &DeviceIdentity,
        version: Version,
        signed_pre_key: (u32, &[u8; 32]),
        pre_keys: &[(u32, [u8; 32])],
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Self {
        let key_pair =
            Curve25519KeyPair::from_secret(Curve25519SecretKey::from_bytes(signed_pre_key.1));
        let signed = SignedPreKey::new(identity, version, signed_pre_key.0, key_pair, now, rng);
        let mut pool: VecMap<u32, Curve25519KeyPair> = pre_keys
            .iter()
            .map(|(id, secret)| {
                let pair = Curve25519KeyPair::from_secret(Curve25519SecretKey::from_bytes(secret));
                (*id, pair)
            })
            .collect();
        while pool.len() > MAX_POOL_SIZE {
            pool.pop_last();
        }
        let next_pre_key_id = pool.keys().next_back().map_or(1, |id| next_id(*id));
        Self {
            version,
            signed,
            previous_signed: None,
            pool,
            next_pre_key_id,
            used: Vec::new(),
        }
    }

    /// The version these keys are for.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The current signed pre-key.
    pub fn signed_pre_key(&self) -> &SignedPreKey {
        &self.signed
    }

    /// The ids of the one-time pre-keys in the pool.
    pub fn pre_key_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.pool.keys().copied()
    }

    /// Tops the pool up to [`POOL_SIZE`]; returns how many keys were added.
    pub fn refill(&mut self, rng: &mut impl CryptoRng) -> usize {
        let mut added = 0;
        while self.pool.len() < POOL_SIZE {
            let id = self.next_pre_key_id;
            self.next_pre_key_id = next_id(id);
            if self.pool.contains_key(&id) || self.used.contains(&id) {
                continue;
            }
            self.pool.insert(id, Curve25519KeyPair::generate(rng));
            added += 1;
        }
        added
    }

    /// Replaces the signed pre-key, keeping the old one for [`SIGNED_PRE_KEY_GRACE`].
    pub fn rotate_signed_pre_key(
        &mut self,
        identity: &DeviceIdentity,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) {
        let id = next_id(self.signed.id);
        let fresh = SignedPreKey::new(
            identity,
            self.version,
            id,
            Curve25519KeyPair::generate(rng),
            now,
            rng,
        );
        let old = std::mem::replace(&mut self.signed, fresh);
        self.previous_signed = Some((old, now));
    }

    /// Periodic upkeep: rotates a signed pre-key older than [`SIGNED_PRE_KEY_PERIOD`], forgets
    /// a previous one past its grace period, refills the pool. Returns whether the bundle
    /// changed (then publish it again).
    pub fn maintain(
        &mut self,
        identity: &DeviceIdentity,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> bool {
        let mut changed = false;
        if now.since(self.signed.created) >= SIGNED_PRE_KEY_PERIOD {
            self.rotate_signed_pre_key(identity, now, rng);
            changed = true;
        }
        if self
            .previous_signed
            .as_ref()
            .is_some_and(|(_, retired)| now.since(*retired) >= SIGNED_PRE_KEY_GRACE)
        {
            self.previous_signed = None;
        }
        changed | (self.refill(rng) > 0)
    }

    /// The signed pre-key with `id`, current or previous.
    pub(crate) fn find_signed(&self, id: u32) -> Result<&Curve25519KeyPair, PreKeyError> {
        if self.signed.id == id {
            return Ok(&self.signed.key_pair);
        }
        match &self.previous_signed {
            Some((previous, _)) if previous.id == id => Ok(&previous.key_pair),
            _ => Err(PreKeyError::UnknownSignedPreKey(id)),
        }
    }

    /// The one-time pre-key with `id`, telling a used key from one never issued.
    pub(crate) fn find_pre_key(&self, id: u32) -> Result<&Curve25519KeyPair, PreKeyError> {
        self.pool.get(&id).ok_or(if self.used.contains(&id) {
            PreKeyError::PreKeyUsed(id)
        } else {
            PreKeyError::UnknownPreKey(id)
        })
    }

    /// Removes a pre-key whose key exchange decrypted, remembering its id.
    pub(crate) fn consume(&mut self, id: u32) {
        if self.pool.remove(&id).is_some() {
            self.used.push(id);
            if self.used.len() > MAX_USED_IDS {
                self.used.remove(0);
            }
        }
    }

    /// The bundle to publish.
    pub fn bundle(&self, identity: &DeviceIdentity) -> VerifiedBundle {
        VerifiedBundle::ours(
            self.version,
            identity,
            self.signed.id,
            self.signed.key_pair.public_key(),
            self.signed.signature,
            self.pool
                .iter()
                .map(|(id, pair)| (*id, pair.public_key()))
                .collect(),
        )
    }
}

fn next_id(id: u32) -> u32 {
    if id >= MAX_ID { 1 } else { id + 1 }
}
