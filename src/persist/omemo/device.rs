//! A whole OMEMO device:
//!
//! `schema (2) ‖ JID ‖ device id ‖ identity ‖ OMEMO 2 state ‖ OMEMO 0.3 state`, where
//!
//! - the identity is its form (0: Ed25519 seed, 1: imported Curve25519 secret), the 32 secret
//!   bytes, then the Ed25519 and Curve25519 public keys, checked against the secret on read;
//! - a version's state is its pre-keys, then its sessions;
//! - pre-keys are `version (0: OMEMO 2, 1: 0.3) ‖ signed pre-key ‖ previous? (signed pre-key ‖
//!   retired at) ‖ next pre-key id ‖ count ‖ (id ‖ key pair)* ‖ count ‖ used id*`, the pool in
//!   increasing id order and the used ids oldest first, a signed pre-key being `id ‖ key pair ‖
//!   signature (64) ‖ created at (u64 ms)` and a key pair its secret then its public key;
//! - sessions are `count ‖ clock (u64) ‖ (JID ‖ device id ‖ last used (u64) ‖ accepted? ‖
//!   current ‖ count ‖ previous*)*` in increasing (JID, device id) order, the previous sessions
//!   newest first, each last used at most the clock; `accepted?` is a presence byte and, if
//!   present, the Curve25519 form of the identity the application accepted for the device.
//!
//! Schema 1 had none of the per-device fields: its devices restore as never used, none with
//! an accepted identity, and a
//! store beyond today's limits (up to the 100,000 devices schema 1 allowed) is trimmed by the
//! eviction rule of [`crate::omemo::store`] instead of refused.

use std::collections::{BTreeMap, VecDeque};

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::{read_jid, read_session, write_jid, write_session};
use crate::codec::DecodeError;
use crate::codec::bytes::{ByteReader, ByteWriter};
use crate::crypto::{Curve25519PublicKey, Ed25519Signature};
use crate::omemo::prekeys::{MAX_POOL_SIZE, MAX_USED_IDS};
use crate::omemo::store::{
    MAX_DEVICES, MAX_DEVICES_PER_JID, MAX_PREVIOUS_SESSIONS, SessionSlot, SessionStore,
};
use crate::omemo::{
    Device, DeviceIdentity, OmemoProfile, PreKeys, SignedPreKey, Version, VersionState,
};
use crate::persist::{Kind, PersistError, StorageKey, open, seal};
use crate::ratchet::storage::{read_key_pair, write_key_pair};
use crate::time::Timestamp;

/// The device schema written; schema 1 (no usage counters) still restores.
const SCHEMA: u32 = 2;
const SCHEMA_1: u32 = 1;
/// The devices a schema-1 version state could hold, before the live limits existed.
const SCHEMA_1_MAX_DEVICES: usize = 100_000;

const SEED: u8 = 0;
const CURVE25519_SECRET: u8 = 1;

const OMEMO2: u8 = 0;
const OMEMO03: u8 = 1;

impl Device {
    /// Encrypts the device (identity, pre-keys and every session of both versions) for storage
    /// under `key`.
    ///
    /// Restoring refuses what no device can hold: a JID longer than 3071 bytes (RFC 7622),
    /// more sessions than the limits of [`crate::omemo::store`] (which the device enforces as
    /// sessions arrive, so a saved device always restores), or more than 65,536 pre-keys in a
    /// pool. The device's own JID is the caller's: keep it a real JID.
    pub fn save(&self, key: &StorageKey) -> Vec<u8> {
        self.save_with_rng(key, &mut rand::rng())
    }

    /// As [`Device::save`], drawing the nonce from `rng`.
    pub fn save_with_rng(&self, key: &StorageKey, rng: &mut impl CryptoRng) -> Vec<u8> {
        seal(Kind::OmemoDevice, &self.to_record(), key, rng)
    }

    /// Restores a device saved by [`Device::save`].
    pub fn restore(blob: &[u8], key: &StorageKey) -> Result<Self, PersistError> {
        Self::from_record(&open(Kind::OmemoDevice, blob, key)?)
    }

    /// The unsealed stored form of the whole device: schema, then the fields.
    pub(crate) fn to_record(&self) -> Zeroizing<Vec<u8>> {
        let mut out = ByteWriter::default();
        out.u32(SCHEMA);
        write_jid(&mut out, &self.jid);
        out.u32(self.device_id);
        write_identity(&mut out, &self.identity);
        write_version_state(&mut out, &self.omemo2);
        write_version_state(&mut out, &self.omemo03);
        out.finish()
    }

    /// Reads [`Device::to_record`]'s bytes, with every check a restore makes.
    pub(crate) fn from_record(bytes: &[u8]) -> Result<Self, PersistError> {
        let mut input = ByteReader::new(bytes);
        let schema = match input.u32()? {
            schema @ (SCHEMA_1 | SCHEMA) => schema,
            other => return Err(PersistError::UnsupportedVersion(other)),
        };
        let device = Self {
            jid: read_jid(&mut input)?,
            device_id: input.u32()?,
            identity: read_identity(&mut input)?,
            omemo2: read_version_state(&mut input, schema)?,
            omemo03: read_version_state(&mut input, schema)?,
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
    schema: u32,
) -> Result<VersionState<P>, DecodeError> {
    Ok(VersionState {
        pre_keys: read_pre_keys(input)?,
        sessions: if schema == SCHEMA_1 {
            read_schema_1_sessions(input)?
        } else {
            read_sessions(input)?
        },
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
    for _ in 0..input.count(MAX_POOL_SIZE)? {
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
    out.u32(store.slots.len() as u32).u64(store.clock);
    for ((jid, device_id), slot) in &store.slots {
        write_jid(out, jid);
        out.u32(*device_id).u64(slot.last_used);
        out.bool(slot.accepted.is_some());
        if let Some(identity) = &slot.accepted {
            out.bytes(identity.as_bytes());
        }
        write_slot_sessions(out, slot);
    }
}

fn write_slot_sessions<P: OmemoProfile>(out: &mut ByteWriter, slot: &SessionSlot<P>) {
    write_session(out, &slot.current);
    out.u32(slot.previous.len() as u32);
    for session in &slot.previous {
        write_session(out, session);
    }
}

fn read_sessions<P: OmemoProfile>(
    input: &mut ByteReader<'_>,
) -> Result<SessionStore<P>, DecodeError> {
    let count = input.count(MAX_DEVICES)?;
    let clock = input.u64()?;
    let mut slots = BTreeMap::new();
    let mut same_jid = 0;
    for _ in 0..count {
        let address = (read_jid(input)?, input.u32()?);
        check_order(&slots, &address)?;
        // In address order a JID's devices are consecutive.
        same_jid = match slots.last_key_value() {
            Some(((jid, _), _)) if *jid == address.0 => same_jid + 1,
            _ => 1,
        };
        if same_jid > MAX_DEVICES_PER_JID {
            return Err(DecodeError::OutOfRange);
        }
        let last_used = input.u64()?;
        if last_used > clock {
            return Err(DecodeError::OutOfRange);
        }
        let accepted = if input.bool()? {
            Some(Curve25519PublicKey::from_bytes(input.array()?))
        } else {
            None
        };
        let mut slot = read_slot_sessions(input)?;
        slot.last_used = last_used;
        slot.accepted = accepted;
        slots.insert(address, slot);
    }
    Ok(SessionStore { slots, clock })
}

/// Schema 1: no counters, and the old limit; trimmed to today's limits.
fn read_schema_1_sessions<P: OmemoProfile>(
    input: &mut ByteReader<'_>,
) -> Result<SessionStore<P>, DecodeError> {
    let mut slots = BTreeMap::new();
    for _ in 0..input.count(SCHEMA_1_MAX_DEVICES)? {
        let address = (read_jid(input)?, input.u32()?);
        check_order(&slots, &address)?;
        slots.insert(address, read_slot_sessions(input)?);
    }
    let mut store = SessionStore { slots, clock: 0 };
    store.trim();
    Ok(store)
}

/// Increasing (JID, device id): a repeated one would silently replace a slot.
fn check_order<T>(
    slots: &BTreeMap<(String, u32), T>,
    address: &(String, u32),
) -> Result<(), DecodeError> {
    match slots.last_key_value() {
        Some((last, _)) if last >= address => Err(DecodeError::OutOfRange),
        _ => Ok(()),
    }
}

fn read_slot_sessions<P: OmemoProfile>(
    input: &mut ByteReader<'_>,
) -> Result<SessionSlot<P>, DecodeError> {
    let mut slot = SessionSlot::new(read_session(input)?);
    for _ in 0..input.count(MAX_PREVIOUS_SESSIONS)? {
        slot.previous.push_back(read_session(input)?);
    }
    Ok(slot)
}
