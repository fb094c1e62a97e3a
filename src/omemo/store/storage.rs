//! One version's sessions as the device's record holds them:
//!
//! `count ‖ clock (u64) ‖ (JID ‖ device id ‖ last used (u64) ‖ accepted? ‖ current ‖ count ‖
//! previous*)*` in increasing (JID, device id) order, the previous sessions newest first, each
//! last used at most the clock; `accepted?` is a presence byte and, if present, the Curve25519
//! form of the identity the application accepted for the device. A JID is its length (u32, at
//! most [`MAX_JID_LENGTH`]) and its UTF-8 bytes.
//!
//! Device schema 1 had none of the per-device fields: its devices restore as never used, none
//! with an accepted identity, and a store beyond today's limits (up to the 100,000 devices
//! schema 1 allowed) is trimmed by the eviction rule of [`super`] instead of refused.

use super::{
    Address, MAX_DEVICES, MAX_DEVICES_PER_JID, MAX_JID_LENGTH, MAX_PREVIOUS_SESSIONS, SessionSlot,
    SessionStore, Slots,
};
use crate::codec::DecodeError;
use crate::codec::bytes::{ByteReader, ByteWriter};
use crate::crypto::{Curve25519PublicKey, DecodedKeys};
use crate::vec_map::VecMap;
use zeroize::Zeroizing;

use crate::omemo::session::storage::{read_session, write_session};
use crate::omemo::{IdentityKey, OmemoProfile, OmemoSession, Version};
use crate::persist::PersistError;

/// The devices a schema-1 version state could hold, before the live limits existed.
const SCHEMA_1_MAX_DEVICES: usize = 100_000;

/// A JID: its length (u32, at most [`MAX_JID_LENGTH`]) and its UTF-8 bytes.
pub(in crate::omemo) fn write_jid(out: &mut ByteWriter, jid: &str) {
    out.u32(jid.len() as u32).bytes(jid.as_bytes());
}

pub(in crate::omemo) fn read_jid(input: &mut ByteReader<'_>) -> Result<String, DecodeError> {
    let length = input.count(MAX_JID_LENGTH)?;
    std::str::from_utf8(input.take(length)?)
        .map(str::to_owned)
        .map_err(|_| DecodeError::OutOfRange)
}

pub(in crate::omemo) fn write_sessions<P: OmemoProfile>(
    out: &mut ByteWriter,
    store: &SessionStore<P>,
) {
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
    write_session(out, &slot.current.state);
    out.u32(slot.previous.len() as u32);
    for session in &slot.previous {
        write_session(out, &session.state);
    }
}

/// `version`'s sessions (`P`'s: the version is a value so that the code exists once).
pub(in crate::omemo) fn read_sessions<P: OmemoProfile>(
    version: Version,
    input: &mut ByteReader<'_>,
) -> Result<SessionStore<P>, DecodeError> {
    let count = input.count(MAX_DEVICES)?;
    let clock = input.u64()?;
    let mut slots = VecMap::new();
    let mut same_jid = 0;
    // The devices' sessions all name our identity: decompressed once per read.
    let keys = &mut DecodedKeys::default();
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
        let mut slot = read_slot_sessions(version, input, keys)?;
        slot.last_used = last_used;
        slot.accepted = accepted;
        // After the last (checked above): an append.
        slots.insert(address, Box::new(slot));
    }
    Ok(SessionStore { slots, clock })
}

/// Schema 1: no counters, and the old limit; trimmed to today's limits.
pub(in crate::omemo) fn read_schema_1_sessions<P: OmemoProfile>(
    version: Version,
    input: &mut ByteReader<'_>,
) -> Result<SessionStore<P>, DecodeError> {
    let mut slots = VecMap::new();
    let keys = &mut DecodedKeys::default();
    for _ in 0..input.count(SCHEMA_1_MAX_DEVICES)? {
        let address = (read_jid(input)?, input.u32()?);
        check_order(&slots, &address)?;
        slots.insert(address, Box::new(read_slot_sessions(version, input, keys)?));
    }
    let mut store = SessionStore { slots, clock: 0 };
    store.trim();
    Ok(store)
}

/// Increasing (JID, device id): a repeated one would silently replace a slot.
fn check_order<T>(
    slots: &VecMap<(String, u32), T>,
    address: &(String, u32),
) -> Result<(), DecodeError> {
    match slots.last_key_value() {
        Some((last, _)) if last >= address => Err(DecodeError::OutOfRange),
        _ => Ok(()),
    }
}

/// A device's current and previous sessions, of `version`; `keys` holds the identities already
/// decompressed (a device's sessions name the same ones).
fn read_slot_sessions<P: OmemoProfile>(
    version: Version,
    input: &mut ByteReader<'_>,
    keys: &mut DecodedKeys,
) -> Result<SessionSlot<P>, DecodeError> {
    let mut slot = SessionSlot::new(OmemoSession::from_state(read_session(
        version, input, keys,
    )?));
    for _ in 0..input.count(MAX_PREVIOUS_SESSIONS)? {
        let session = read_session(version, input, keys)?;
        slot.previous.push(OmemoSession::from_state(session));
    }
    Ok(slot)
}

/// The schema of one slot's own record: 2 ends with the identity's Curve25519 form when
/// known; 1, without it, still reads.
#[allow(dead_code)]
const SLOT_SCHEMA: u32 = 2;
/// A slot's own record without the identity's Curve25519 form.
const SLOT_SCHEMA_1: u32 = 1;
/// A slot record's first buffer holds its fields and this much per session, so that it
/// usually does not grow: a session with a key exchange pending and a chain each way is about
/// 300 bytes, and the writer's default of 256 made every save of a slot grow it (a copy, a
/// wipe and a free), a slot with earlier sessions several times.
const SESSION_BYTES: usize = 384;
/// A slot record's fields besides its sessions, for the first buffer (a JID of up to about 40
/// bytes fits).
const SLOT_RECORD_HEADER: usize = 128;

// The engine layer (issue 10) is the caller; until it lands only the device's tests use these.
#[allow(dead_code)]
impl<P: OmemoProfile> SessionStore<P> {
    /// One slot's own record, for a store that keeps each (JID, device id) apart:
    /// `schema (2) ‖ version (0: OMEMO 2, 1: 0.3) ‖ JID ‖ device id ‖ last used ‖ accepted? ‖
    /// current ‖ count ‖ previous* ‖ identity curve?`, the fields laid out as in the whole
    /// device's record; the last is the Curve25519 form of the current session's Ed25519
    /// identity, when derived (schema 1 ends before it).
    pub(in crate::omemo) fn slot_record(
        &self,
        jid: &str,
        device_id: u32,
    ) -> Option<Zeroizing<Vec<u8>>> {
        let (address, slot) = self
            .slots
            .get_key_value(&(jid, device_id) as &dyn Address)?;
        let sessions = 1 + slot.previous.len();
        let mut out = ByteWriter::with_capacity(SLOT_RECORD_HEADER + sessions * SESSION_BYTES);
        out.u32(SLOT_SCHEMA)
            .u8(version_byte(slot.current.state.version()));
        write_jid(&mut out, &address.0);
        out.u32(address.1).u64(slot.last_used);
        out.bool(slot.accepted.is_some());
        if let Some(identity) = &slot.accepted {
            out.bytes(identity.as_bytes());
        }
        write_slot_sessions(&mut out, slot);
        let curve = slot.identity_curve();
        out.bool(curve.is_some());
        if let Some(curve) = curve {
            out.bytes(curve.as_bytes());
        }
        Some(out.finish())
    }

    /// Rebuilds a store from its clock and its slots' records (any order), with the checks a
    /// whole record's read makes: one record per address, the per-JID and total limits, no
    /// slot used after the clock, no trailing bytes. `keys`: Ed25519 identities already
    /// decompressed (the device's own, which every session names), shared by the records.
    /// `version` is `P`'s, as a value (the code exists once for both versions).
    pub(in crate::omemo) fn from_slot_records<'a>(
        version: Version,
        clock: u64,
        records: impl IntoIterator<Item = &'a [u8]>,
        keys: &mut DecodedKeys,
    ) -> Result<Self, PersistError> {
        // Records come in any order (sealed names): sorted once, not inserted one by one.
        let mut read = Vec::new();
        for record in records {
            let (address, slot) = read_slot_record::<P>(version, record, keys)?;
            if slot.last_used > clock || read.len() >= MAX_DEVICES {
                return Err(DecodeError::OutOfRange.into());
            }
            read.push((address, Box::new(slot)));
        }
        let count = read.len();
        let slots: Slots<P> = read.into_iter().collect();
        if slots.len() != count {
            return Err(DecodeError::OutOfRange.into());
        }
        let mut same_jid = 0;
        let mut previous: Option<&str> = None;
        for (jid, _) in slots.keys() {
            same_jid = if previous == Some(jid.as_str()) {
                same_jid + 1
            } else {
                1
            };
            if same_jid > MAX_DEVICES_PER_JID {
                return Err(DecodeError::OutOfRange.into());
            }
            previous = Some(jid);
        }
        Ok(SessionStore { slots, clock })
    }
}

#[allow(dead_code)]
/// Reads [`SessionStore::slot_record`]'s bytes; a record of the other version is refused.
fn read_slot_record<P: OmemoProfile>(
    version: Version,
    bytes: &[u8],
    keys: &mut DecodedKeys,
) -> Result<((String, u32), SessionSlot<P>), PersistError> {
    let mut input = ByteReader::new(bytes);
    let schema = match input.u32()? {
        schema @ (SLOT_SCHEMA_1 | SLOT_SCHEMA) => schema,
        other => return Err(PersistError::UnsupportedVersion(other)),
    };
    if input.u8()? != version_byte(version) {
        return Err(PersistError::WrongKind);
    }
    let address = (read_jid(&mut input)?, input.u32()?);
    let last_used = input.u64()?;
    let accepted = if input.bool()? {
        Some(Curve25519PublicKey::from_bytes(input.array()?))
    } else {
        None
    };
    let mut slot = read_slot_sessions(version, &mut input, keys)?;
    slot.last_used = last_used;
    slot.accepted = accepted;
    if schema == SLOT_SCHEMA && input.bool()? {
        let identity = slot.current.their_identity();
        // Only an Ed25519 identity's form is kept (a Curve25519 identity is its own).
        if !matches!(identity, IdentityKey::Ed25519(_)) {
            return Err(DecodeError::OutOfRange.into());
        }
        let curve = Curve25519PublicKey::from_bytes(input.array()?);
        slot.identity_curve = Some((identity, curve));
    }
    input.finish()?;
    Ok((address, slot))
}

#[allow(dead_code)]
fn version_byte(version: Version) -> u8 {
    match version {
        Version::Omemo2 => 0,
        Version::Omemo03 => 1,
    }
}
