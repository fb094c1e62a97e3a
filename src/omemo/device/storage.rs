//! A whole OMEMO device's stored form (kind 6, schema 2; schema 1 still restores):
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

use rand_core::CryptoRng;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{OmemoDevice, VersionState};
use crate::codec::DecodeError;
use crate::codec::bytes::{ByteReader, ByteWriter};
use crate::omemo::DeviceIdentity;
use crate::omemo::OmemoProfile;
use crate::omemo::prekeys::storage::{read_pre_keys, write_pre_keys};
use crate::omemo::store::storage::{
    read_jid, read_schema_1_sessions, read_sessions, write_jid, write_sessions,
};
use crate::persist::{Kind, PersistError, StorageKey, open, seal};

/// The device schema written; schema 1 (no usage counters) still restores.
const SCHEMA: u32 = 2;
const SCHEMA_1: u32 = 1;

const SEED: u8 = 0;
const CURVE25519_SECRET: u8 = 1;

impl OmemoDevice {
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

    /// As [`OmemoDevice::save`], drawing the nonce from `rng`.
    pub fn save_with_rng(&self, key: &StorageKey, rng: &mut impl CryptoRng) -> Vec<u8> {
        seal(Kind::OmemoDevice, &self.to_record(), key, rng)
    }

    /// Restores a device saved by [`OmemoDevice::save`].
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

    /// Reads [`OmemoDevice::to_record`]'s bytes, with every check a restore makes.
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

pub(super) fn write_identity(out: &mut ByteWriter, identity: &DeviceIdentity) {
    match identity.seed() {
        Some(seed) => out.u8(SEED).bytes(&*seed),
        None => out
            .u8(CURVE25519_SECRET)
            .bytes(&*identity.curve25519_secret().to_bytes()),
    };
    out.bytes(identity.ed25519_key().as_bytes())
        .bytes(identity.curve25519_key().as_bytes());
}

pub(super) fn read_identity(input: &mut ByteReader<'_>) -> Result<DeviceIdentity, DecodeError> {
    read_identity_known(input, None)
}

/// As [`read_identity`], taking a copy of `known` instead of deriving the keys again when the
/// record holds exactly that identity (a store reading the same device again and again).
pub(super) fn read_identity_known(
    input: &mut ByteReader<'_>,
    known: Option<&DeviceIdentity>,
) -> Result<DeviceIdentity, DecodeError> {
    let form = input.u8()?;
    let secret = input.secret::<32>()?;
    let ed25519 = input.array::<32>()?;
    let curve25519 = input.array::<32>()?;
    if let Some(known) = known
        && known.ed25519_key().as_bytes() == &ed25519
        && known.curve25519_key().as_bytes() == &curve25519
    {
        let known_secret = match (form, known.seed()) {
            (SEED, Some(seed)) => Some(seed),
            (CURVE25519_SECRET, None) => Some(known.curve25519_secret().to_bytes()),
            _ => None,
        };
        if known_secret.is_some_and(|s| bool::from(s.ct_eq(&*secret))) {
            return Ok(known.clone());
        }
    }
    let identity = match form {
        SEED => DeviceIdentity::from_seed(&secret),
        CURVE25519_SECRET => DeviceIdentity::from_curve25519_secret(&secret),
        _ => return Err(DecodeError::OutOfRange),
    };
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
            read_schema_1_sessions(P::VERSION, input)?
        } else {
            read_sessions(P::VERSION, input)?
        },
    })
}
