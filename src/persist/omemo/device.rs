//! A whole OMEMO device:
//!
//! `schema ‖ JID ‖ device id ‖ identity ‖ OMEMO 2 state ‖ OMEMO 0.3 state`, where
//!
//! - the identity is its form (0: Ed25519 seed, 1: imported Curve25519 secret), the 32 secret
//!   bytes, then the Ed25519 and Curve25519 public keys, checked against the secret on read;
//! - a version's state is its pre-keys, then its sessions;
//! - pre-keys are `version (0: OMEMO 2, 1: 0.3) ‖ signed pre-key ‖ previous? (signed pre-key ‖
//!   retired at) ‖ next pre-key id ‖ count ‖ (id ‖ key pair)* ‖ count ‖ used id*`, the pool in
//!   increasing id order and the used ids oldest first, a signed pre-key being `id ‖ key pair ‖
//!   signature (64) ‖ created at (u64 ms)` and a key pair its secret then its public key;
//! - sessions are `count ‖ (JID ‖ device id ‖ current ‖ count ‖ previous*)*` in increasing
//!   (JID, device id) order, the previous sessions newest first.

use std::collections::{BTreeMap, VecDeque};

use rand_core::CryptoRng;

use super::{read_jid, read_schema, read_session, write_jid, write_session};
use crate::codec::DecodeError;
use crate::codec::bytes::{ByteReader, ByteWriter};
use crate::crypto::Ed25519Signature;
use crate::megolm::Timestamp;
use crate::omemo::prekeys::MAX_USED_IDS;
use crate::omemo::store::{MAX_PREVIOUS_SESSIONS, SessionSlot, SessionStore};
use crate::omemo::{
    Device, DeviceIdentity, OmemoProfile, PreKeys, SignedPreKey, Version, VersionState,
};
use crate::persist::{Kind, PersistError, StorageKey, open, seal};
use crate::ratchet::storage::{read_key_pair, write_key_pair};

/// Sessions (remote devices) a stored version state may hold.
const MAX_SESSIONS: usize = 100_000;
/// One-time pre-keys a stored pool may hold (a pool keeps 100; imports may bring more).
const MAX_PRE_KEYS: usize = 1 << 16;

const SEED: u8 = 0;
const CURVE25519_SECRET: u8 = 1;

const OMEMO2: u8 = 0;
const OMEMO03: u8 = 1;

impl Device {
    /// Encrypts the device (identity, pre-keys and every session of both versions) for storage
    /// under `key`.
    ///
    /// Restoring refuses what no real device holds: a JID longer than 3071 bytes (RFC 7622),
    /// more than 100,000 sessions in a version, or more than 65,536 pre-keys in a pool (only
    /// [`PreKeys::import`] could put them there).
    pub fn save(&self, key: &StorageKey) -> Vec<u8> {
        self.save_with_rng(key, &mut rand::rng())
    }

    /// As [`Device::save`], drawing the nonce from `rng`.
    pub fn save_with_rng(&self, key: &StorageKey, rng: &mut impl CryptoRng) -> Vec<u8> {
        let mut out = ByteWriter::default();
        out.u32(super::SCHEMA);
        write_jid(&mut out, &self.jid);
        out.u32(self.device_id);
        write_identity(&mut out, &self.identity);
        write_version_state(&mut out, &self.omemo2);
        write_version_state(&mut out, &self.omemo03);
        seal(Kind::OmemoDevice, &out.finish(), key, rng)
    }

    /// Restores a device saved by [`Device::save`].
    pub fn restore(blob: &[u8], key: &StorageKey) -> Result<Self, PersistError> {
        let payload = open(Kind::OmemoDevice, blob, key)?;
        let mut input = ByteReader::new(&payload);
        read_schema(&mut input)?;
        let device = Self {
            jid: read_jid(&mut input)?,
            device_id: input.u32()?,
            identity: read_identity(&mut input)?,
            omemo2: read_version_state(&mut input)?,
            omemo03: read_version_state(&mut input)?,
        };
        input.finish()?;
        Ok(device)
    }
}

fn write_identity(out: &mut ByteWriter, identity: &DeviceIdentity) {
    match identity.seed() {
        Some(seed) => out.u8(SEED).bytes(&*seed),
        None => out
            .u8(CURVE25519_SECRET)
            .bytes(&*identity.curve25519_secret().to_bytes()),
    };
    out.bytes(identity.ed25519_key().as_bytes())
        .bytes(identity.curve25519_key().as_bytes());
}

fn read_identity(input: &mut ByteReader<'_>) -> Result<DeviceIdentity, DecodeError> {
    let identity = match input.u8()? {
        SEED => DeviceIdentity::from_seed(&*input.secret::<32>()?),
        CURVE25519_SECRET => DeviceIdentity::from_curve25519_secret(&*input.secret::<32>()?),
        _ => return Err(DecodeError::OutOfRange),
    };
    let ed25519 = input.array::<32>()?;
    let curve25519 = input.array::<32>()?;
    if identity.ed25519_key().as_bytes() != &ed25519
        || identity.curve25519_key().as_bytes() != &curve25519
    {
        return Err(DecodeError::OutOfRange);
    }
    Ok(identity)
}

fn write_version_state<P: OmemoProfile>(out: &mut ByteWriter, state: &VersionState<P>) {
    write_pre_keys(out, &state.pre_keys);
    write_sessions(out, &state.sessions);
}

fn read_version_state<P: OmemoProfile>(
    input: &mut ByteReader<'_>,
) -> Result<VersionState<P>, DecodeError> {
    Ok(VersionState {
        pre_keys: read_pre_keys(input)?,
        sessions: read_sessions(input)?,
    })
}

fn write_pre_keys(out: &mut ByteWriter, keys: &PreKeys) {
    out.u8(match keys.version {
        Version::Omemo2 => OMEMO2,
        Version::Omemo03 => OMEMO03,
    });
    write_signed_pre_key(out, &keys.signed);
    out.bool(keys.previous_signed.is_some());
    if let Some((previous, retired)) = &keys.previous_signed {
        write_signed_pre_key(out, previous);
        out.u64(retired.as_millis());
    }
    out.u32(keys.next_pre_key_id).u32(keys.pool.len() as u32);
    for (id, key) in &keys.pool {
        out.u32(*id);
        write_key_pair(out, key);
    }
    out.u32(keys.used.len() as u32);
    for id in &keys.used {
        out.u32(*id);
    }
}

fn read_pre_keys(input: &mut ByteReader<'_>) -> Result<PreKeys, DecodeError> {
    let version = match input.u8()? {
        OMEMO2 => Version::Omemo2,
        OMEMO03 => Version::Omemo03,
        _ => return Err(DecodeError::OutOfRange),
    };
    let signed = read_signed_pre_key(input)?;
    let previous_signed = if input.bool()? {
        let previous = read_signed_pre_key(input)?;
        Some((previous, Timestamp::from_millis(input.u64()?)))
    } else {
        None
    };
    let next_pre_key_id = input.u32()?;
    let mut pool = BTreeMap::new();
    for _ in 0..input.count(MAX_PRE_KEYS)? {
        let id = input.u32()?;
        // Increasing ids: a repeated one would silently replace a key.
        if pool.last_key_value().is_some_and(|(last, _)| *last >= id) {
            return Err(DecodeError::OutOfRange);
        }
        pool.insert(id, read_key_pair(input)?);
    }
    let mut used = VecDeque::new();
    for _ in 0..input.count(MAX_USED_IDS)? {
        used.push_back(input.u32()?);
    }
    Ok(PreKeys {
        version,
        signed,
        previous_signed,
        pool,
        next_pre_key_id,
        used,
    })
}

fn write_signed_pre_key(out: &mut ByteWriter, key: &SignedPreKey) {
    out.u32(key.id);
    write_key_pair(out, &key.key_pair);
    out.bytes(key.signature.as_bytes())
        .u64(key.created.as_millis());
}

fn read_signed_pre_key(input: &mut ByteReader<'_>) -> Result<SignedPreKey, DecodeError> {
    Ok(SignedPreKey {
        id: input.u32()?,
        key_pair: read_key_pair(input)?,
        signature: Ed25519Signature::from_bytes(input.array()?),
        created: Timestamp::from_millis(input.u64()?),
    })
}

fn write_sessions<P: OmemoProfile>(out: &mut ByteWriter, store: &SessionStore<P>) {
    out.u32(store.slots.len() as u32);
    for ((jid, device_id), slot) in &store.slots {
        write_jid(out, jid);
        out.u32(*device_id);
        write_session(out, &slot.current);
        out.u32(slot.previous.len() as u32);
        for session in &slot.previous {
            write_session(out, session);
        }
    }
}

fn read_sessions<P: OmemoProfile>(
    input: &mut ByteReader<'_>,
) -> Result<SessionStore<P>, DecodeError> {
    let mut slots = BTreeMap::new();
    for _ in 0..input.count(MAX_SESSIONS)? {
        let address = (read_jid(input)?, input.u32()?);
        // Increasing (JID, device id): a repeated one would silently replace a slot.
        if slots
            .last_key_value()
            .is_some_and(|(last, _)| *last >= address)
        {
            return Err(DecodeError::OutOfRange);
        }
        let current = read_session(input)?;
        let mut previous = VecDeque::new();
        for _ in 0..input.count(MAX_PREVIOUS_SESSIONS)? {
            previous.push_back(read_session(input)?);
        }
        slots.insert(address, SessionSlot { current, previous });
    }
    Ok(SessionStore { slots })
}
