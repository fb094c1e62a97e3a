//! A device stored as parts, for a store that writes only what an operation changed and
//! reads only what it needs: the device's own record (identity and each version's pre-keys),
//! its session clocks (which change with every message, so they live apart from the pre-keys),
//! and one record per session slot, (version, JID, device id), as [`SessionStore`] lays it out.
//!
//! The own record is `schema (2) ‖ JID ‖ device id ‖ identity ‖ OMEMO 2 pre-keys ‖ OMEMO 0.3
//! pre-keys`, the fields as in the whole device's record. Schema 1 held each version's clock
//! (u64) after its pre-keys; it still reads, its clocks taken from it. A store may also split
//! the own record in two: the identity record `schema (3) ‖ JID ‖ device id ‖ identity` and the
//! pre-keys record `OMEMO 2 pre-keys ‖ OMEMO 0.3 pre-keys`, so that the operations that use no
//! pre-key (every message on an established session) neither read nor write the pools.

#[cfg(test)]
use std::collections::BTreeMap;

use zeroize::Zeroizing;

use super::storage::{read_identity_known, write_identity};
use super::{OmemoDevice, VersionState};
use crate::codec::DecodeError;
use crate::codec::bytes::{ByteReader, ByteWriter};
use crate::crypto::DecodedKeys;
#[cfg(test)]
use crate::crypto::sha256;
use crate::omemo::prekeys::storage::{read_pre_keys, write_pre_keys};
use crate::omemo::store::storage::{read_jid, write_jid};
use crate::omemo::store::{SessionSlot, SessionStore};
use crate::omemo::{DeviceIdentity, Omemo2, Omemo03, OmemoProfile, PreKeys, Version};
use crate::persist::PersistError;

const OWN_SCHEMA: u32 = 2;
/// The own record with each version's clock after its pre-keys.
const OWN_SCHEMA_1: u32 = 1;
/// The identity record: the own record without the pre-keys, kept in a record of their own.
const IDENTITY_SCHEMA: u32 = 3;

/// Each version's session clock (see [`SessionStore`]): the part of a device that changes
/// with every message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(test, derive(serde::Serialize, serde::Deserialize))]
pub(crate) struct Clocks {
    pub(crate) omemo2: u64,
    pub(crate) omemo03: u64,
}

/// A device's pre-keys of both versions, held apart from it between operations.
pub(crate) struct PreKeyPair {
    omemo2: PreKeys,
    omemo03: PreKeys,
}

impl PreKeyPair {
    /// Reads [`OmemoDevice::pre_keys_record`]'s bytes.
    pub(crate) fn from_record(bytes: &[u8]) -> Result<Self, PersistError> {
        let mut input = ByteReader::new(bytes);
        let omemo2 = read_pre_keys(&mut input)?;
        let omemo03 = read_pre_keys(&mut input)?;
        input.finish()?;
        Ok(Self { omemo2, omemo03 })
    }
}

/// A session slot taken out of a device when an operation is done, to go into the next
/// device made from the same records without reading its record again (which checks every
/// identity key's point: the dearest part of a read).
pub(crate) enum HeldSlot {
    Omemo2(Box<SessionSlot<Omemo2>>),
    Omemo03(Box<SessionSlot<Omemo03>>),
}

/// Where one session slot's record lives.
pub(crate) type SlotAddress = (Version, String, u32);

#[cfg(test)]
/// What [`OmemoDevice::slot_digests`] took: compare with a later one to learn what changed.
pub(crate) type SlotDigests = BTreeMap<SlotAddress, [u8; 32]>;

#[cfg(test)]
/// The slots an operation changed: records to write and records to delete.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct SlotChanges {
    pub(crate) written: Vec<SlotAddress>,
    pub(crate) removed: Vec<SlotAddress>,
}

impl OmemoDevice {
    /// The device's own record: everything but its sessions and clocks (the account record of
    /// the XMPP machine's schema 2; the tests migrate from it).
    #[cfg(test)]
    pub(crate) fn own_record(&self) -> Zeroizing<Vec<u8>> {
        let mut out = ByteWriter::default();
        out.u32(OWN_SCHEMA);
        write_jid(&mut out, &self.jid);
        out.u32(self.device_id);
        write_identity(&mut out, &self.identity);
        write_pre_keys(&mut out, &self.omemo2.pre_keys);
        write_pre_keys(&mut out, &self.omemo03.pre_keys);
        out.finish()
    }

    /// The device's identity record: the own record without the pre-keys (schema 3), for a
    /// store that keeps the pre-keys apart ([`OmemoDevice::pre_keys_record`]) so that an
    /// operation that does not use them neither reads nor writes them.
    pub(crate) fn identity_record(&self) -> Zeroizing<Vec<u8>> {
        let mut out = ByteWriter::default();
        out.u32(IDENTITY_SCHEMA);
        write_jid(&mut out, &self.jid);
        out.u32(self.device_id);
        write_identity(&mut out, &self.identity);
        out.finish()
    }

    /// Both versions' pre-keys (OMEMO 2, then 0.3), as in the own record.
    pub(crate) fn pre_keys_record(&self) -> Zeroizing<Vec<u8>> {
        let mut out = ByteWriter::default();
        write_pre_keys(&mut out, &self.omemo2.pre_keys);
        write_pre_keys(&mut out, &self.omemo03.pre_keys);
        out.finish()
    }

    /// The device's pre-keys, taken out of it when the operation is done.
    pub(crate) fn into_pre_keys(self) -> PreKeyPair {
        PreKeyPair {
            omemo2: self.omemo2.pre_keys,
            omemo03: self.omemo03.pre_keys,
        }
    }

    /// Takes every session slot out of the device, with its address.
    pub(crate) fn take_slots(&mut self) -> Vec<(SlotAddress, HeldSlot)> {
        let omemo2 = std::mem::take(&mut self.omemo2.sessions.slots)
            .into_iter()
            .map(|((jid, id), slot)| ((Version::Omemo2, jid, id), HeldSlot::Omemo2(slot)));
        let omemo03 = std::mem::take(&mut self.omemo03.sessions.slots)
            .into_iter()
            .map(|((jid, id), slot)| ((Version::Omemo03, jid, id), HeldSlot::Omemo03(slot)));
        omemo2.chain(omemo03).collect()
    }

    /// Rebuilds a device from its identity record, its pre-keys (read by
    /// [`PreKeyPair::from_record`]), its clocks, its slots' records and slots taken out of an
    /// earlier device ([`OmemoDevice::take_slots`]) whose records are those in the store, as
    /// [`OmemoDevice::from_records_known`] does from an own record. A slot given twice, or
    /// under the other version's address, is refused.
    pub(crate) fn from_split_records<'a>(
        identity: &[u8],
        pre_keys: PreKeyPair,
        clocks: Clocks,
        slots: impl IntoIterator<Item = &'a [u8]>,
        held: Vec<(SlotAddress, HeldSlot)>,
        known: Option<&DeviceIdentity>,
    ) -> Result<Self, PersistError> {
        let mut input = ByteReader::new(identity);
        match input.u32()? {
            IDENTITY_SCHEMA => {}
            other => return Err(PersistError::UnsupportedVersion(other)),
        }
        let jid = read_jid(&mut input)?;
        let device_id = input.u32()?;
        let identity = read_identity_known(&mut input, known)?;
        input.finish()?;
        let mut device = Self::assemble(jid, device_id, identity, pre_keys, clocks, slots)?;
        // Held slots come in any order: each version's map is rebuilt by one sort.
        let mut omemo2: Vec<_> = std::mem::take(&mut device.omemo2.sessions.slots)
            .into_iter()
            .collect();
        let mut omemo03: Vec<_> = std::mem::take(&mut device.omemo03.sessions.slots)
            .into_iter()
            .collect();
        for ((version, jid, id), slot) in held {
            match (version, slot) {
                (Version::Omemo2, HeldSlot::Omemo2(slot)) => omemo2.push(((jid, id), slot)),
                (Version::Omemo03, HeldSlot::Omemo03(slot)) => omemo03.push(((jid, id), slot)),
                _ => return Err(PersistError::Malformed(DecodeError::OutOfRange)),
            }
        }
        let (count2, count03) = (omemo2.len(), omemo03.len());
        device.omemo2.sessions.slots = omemo2.into_iter().collect();
        device.omemo03.sessions.slots = omemo03.into_iter().collect();
        if device.omemo2.sessions.slots.len() != count2
            || device.omemo03.sessions.slots.len() != count03
        {
            return Err(PersistError::Malformed(DecodeError::OutOfRange));
        }
        Ok(device)
    }

    /// The own record as schema 1 laid it out, each version's clock after its pre-keys: for
    /// the tests that migrate a store written by that form.
    #[cfg(test)]
    pub(crate) fn own_record_schema_1(&self) -> Zeroizing<Vec<u8>> {
        let mut out = ByteWriter::default();
        out.u32(OWN_SCHEMA_1);
        write_jid(&mut out, &self.jid);
        out.u32(self.device_id);
        write_identity(&mut out, &self.identity);
        write_pre_keys(&mut out, &self.omemo2.pre_keys);
        out.u64(self.omemo2.sessions.clock);
        write_pre_keys(&mut out, &self.omemo03.pre_keys);
        out.u64(self.omemo03.sessions.clock);
        out.finish()
    }

    /// The session clocks, stored beside the own record.
    pub(crate) fn clocks(&self) -> Clocks {
        Clocks {
            omemo2: self.omemo2.sessions.clock,
            omemo03: self.omemo03.sessions.clock,
        }
    }

    /// Every slot's address, in order.
    pub(crate) fn slot_addresses(&self) -> Vec<SlotAddress> {
        let omemo2 = self
            .omemo2
            .sessions
            .slots
            .keys()
            .map(|(jid, id)| (Version::Omemo2, jid.clone(), *id));
        let omemo03 = self
            .omemo03
            .sessions
            .slots
            .keys()
            .map(|(jid, id)| (Version::Omemo03, jid.clone(), *id));
        omemo2.chain(omemo03).collect()
    }

    /// One slot's record, or `None` if the device holds no session there.
    pub(crate) fn slot_record(&self, address: &SlotAddress) -> Option<Zeroizing<Vec<u8>>> {
        let (version, jid, device_id) = address;
        match version {
            Version::Omemo2 => self.omemo2.sessions.slot_record(jid, *device_id),
            Version::Omemo03 => self.omemo03.sessions.slot_record(jid, *device_id),
        }
    }

    #[cfg(test)]
    /// A digest of every slot's record, taken before an operation; [`OmemoDevice::changed_slots`]
    /// after it names the slots to write and to delete (evictions included).
    pub(crate) fn slot_digests(&self) -> SlotDigests {
        self.slot_addresses()
            .into_iter()
            .filter_map(|address| {
                let digest = sha256(&[&self.slot_record(&address)?]);
                Some((address, digest))
            })
            .collect()
    }

    #[cfg(test)]
    /// The slots that differ from `before` (see [`OmemoDevice::slot_digests`]).
    pub(crate) fn changed_slots(&self, before: &SlotDigests) -> SlotChanges {
        let after = self.slot_digests();
        SlotChanges {
            written: after
                .iter()
                .filter(|(address, digest)| before.get(*address) != Some(digest))
                .map(|(address, _)| address.clone())
                .collect(),
            removed: before
                .keys()
                .filter(|address| !after.contains_key(*address))
                .cloned()
                .collect(),
        }
    }

    /// Rebuilds a device from its own record, its clocks and its slots' records (any order,
    /// each version's recognised by its record), with every check a whole restore makes. The
    /// slots may be some of the device's only: the device then holds those, and an operation
    /// that would add a device to a version's sessions needs them all (the limits evict).
    ///
    /// A schema-1 own record carries its clocks: `clocks` is then ignored. A schema-2 one
    /// needs them.
    #[cfg(test)]
    pub(crate) fn from_records<'a>(
        own: &[u8],
        clocks: Option<Clocks>,
        slots: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Self, PersistError> {
        Self::from_records_known(own, clocks, slots, None)
    }

    /// As [`OmemoDevice::from_records`], copying `known` (the identity an earlier read gave)
    /// instead of deriving its keys again when the own record holds that identity.
    pub(crate) fn from_records_known<'a>(
        own: &[u8],
        clocks: Option<Clocks>,
        slots: impl IntoIterator<Item = &'a [u8]>,
        known: Option<&DeviceIdentity>,
    ) -> Result<Self, PersistError> {
        let mut input = ByteReader::new(own);
        let schema = match input.u32()? {
            schema @ (OWN_SCHEMA | OWN_SCHEMA_1) => schema,
            other => return Err(PersistError::UnsupportedVersion(other)),
        };
        let jid = read_jid(&mut input)?;
        let device_id = input.u32()?;
        let identity = read_identity_known(&mut input, known)?;
        let (omemo2, omemo03, clocks) = if schema == OWN_SCHEMA_1 {
            let omemo2_keys = read_pre_keys(&mut input)?;
            let omemo2 = input.u64()?;
            let omemo03_keys = read_pre_keys(&mut input)?;
            let omemo03 = input.u64()?;
            (omemo2_keys, omemo03_keys, Clocks { omemo2, omemo03 })
        } else {
            let omemo2_keys = read_pre_keys(&mut input)?;
            let omemo03_keys = read_pre_keys(&mut input)?;
            let clocks = clocks.ok_or(PersistError::Malformed(DecodeError::OutOfRange))?;
            (omemo2_keys, omemo03_keys, clocks)
        };
        input.finish()?;
        Self::assemble(
            jid,
            device_id,
            identity,
            PreKeyPair { omemo2, omemo03 },
            clocks,
            slots,
        )
    }

    fn assemble<'a>(
        jid: String,
        device_id: u32,
        identity: DeviceIdentity,
        pre_keys: PreKeyPair,
        clocks: Clocks,
        slots: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Self, PersistError> {
        let (mut omemo2, mut omemo03) = (Vec::new(), Vec::new());
        for record in slots {
            // The version byte follows the schema; the slot's own read checks both.
            match record.get(4) {
                Some(0) => omemo2.push(record),
                _ => omemo03.push(record),
            }
        }
        // Every session names our identity: no decompression of it per slot.
        let mut keys = DecodedKeys::default();
        keys.remember(identity.ed25519_key());
        Ok(Self {
            omemo2: version_state(
                pre_keys.omemo2,
                SessionStore::from_slot_records(Version::Omemo2, clocks.omemo2, omemo2, &mut keys)?,
            ),
            omemo03: version_state(
                pre_keys.omemo03,
                SessionStore::from_slot_records(
                    Version::Omemo03,
                    clocks.omemo03,
                    omemo03,
                    &mut keys,
                )?,
            ),
            jid,
            device_id,
            identity,
        })
    }
}

fn version_state<P: OmemoProfile>(
    pre_keys: crate::omemo::PreKeys,
    sessions: SessionStore<P>,
) -> VersionState<P> {
    VersionState { pre_keys, sessions }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Timestamp;

    const VERSIONS: [Version; 2] = [Version::Omemo2, Version::Omemo03];

    fn talk(from: &mut OmemoDevice, to: &mut OmemoDevice, version: Version, byte: u8) {
        let key = from
            .encrypt_key(
                version,
                &to.jid,
                to.device_id,
                &[byte; 32],
                &mut rand::rng(),
            )
            .unwrap();
        let opened = to
            .decrypt_key(
                version,
                &from.jid.clone(),
                from.device_id,
                &key,
                &mut rand::rng(),
            )
            .unwrap();
        assert_eq!(&opened.decrypted.key_material[..], &[byte; 32]);
    }

    /// Alice with an OMEMO 2 session to Bob, one message sent on it.
    fn alice_talking_to_bob() -> (OmemoDevice, OmemoDevice) {
        let now = Timestamp::from_millis(1_700_000_000_000);
        let mut alice = OmemoDevice::generate("alice@example.org", 1001, now, &mut rand::rng());
        let mut bob = OmemoDevice::generate("bob@example.net", 2002, now, &mut rand::rng());
        let bundle = bob.bundle(Version::Omemo2);
        alice
            .build_session(&bob.jid, bob.device_id, &bundle, &mut rand::rng())
            .unwrap();
        talk(&mut alice, &mut bob, Version::Omemo2, 1);
        (alice, bob)
    }

    fn rebuilt(device: &OmemoDevice) -> OmemoDevice {
        let slots: Vec<_> = device
            .slot_addresses()
            .iter()
            .map(|address| device.slot_record(address).unwrap())
            .collect();
        OmemoDevice::from_records(
            &device.own_record(),
            Some(device.clocks()),
            slots.iter().map(|r| &r[..]),
        )
        .unwrap()
    }

    #[test]
    fn a_device_split_into_parts_rebuilds_whole_and_names_what_changed() {
        let now = Timestamp::from_millis(1_700_000_000_000);
        let mut alice = OmemoDevice::generate("alice@example.org", 1001, now, &mut rand::rng());
        let mut bob = OmemoDevice::generate("bob@example.net", 2002, now, &mut rand::rng());
        let mut carol = OmemoDevice::generate("carol@example.com", 3003, now, &mut rand::rng());
        for version in VERSIONS {
            for peer in [&mut bob, &mut carol] {
                alice
                    .build_session(
                        &peer.jid,
                        peer.device_id,
                        &peer.bundle(version),
                        &mut rand::rng(),
                    )
                    .unwrap();
                talk(&mut alice, peer, version, 1);
                talk(peer, &mut alice, version, 2);
            }
        }
        let copy = rebuilt(&alice);
        assert!(copy.to_record() == alice.to_record());

        // An operation with bob changes bob's slot of that version only.
        let before = alice.slot_digests();
        talk(&mut bob, &mut alice, Version::Omemo03, 3);
        let changes = alice.changed_slots(&before);
        assert_eq!(
            changes,
            SlotChanges {
                written: vec![(Version::Omemo03, "bob@example.net".to_owned(), 2002)],
                removed: vec![],
            }
        );
        assert!(alice.changed_slots(&alice.slot_digests()) == SlotChanges::default());

        // The rebuilt copy, given that one changed record, goes on like the original.
        let mut copy = rebuilt(&alice);
        for version in VERSIONS {
            talk(&mut bob, &mut copy, version, 4);
            talk(&mut carol, &mut copy, version, 5);
            talk(&mut copy, &mut bob, version, 6);
        }
    }

    #[test]
    fn each_part_refuses_truncation_and_trailing_bytes() {
        let (alice, _bob) = alice_talking_to_bob();
        let own = alice.own_record();
        let slot = alice
            .slot_record(&(Version::Omemo2, "bob@example.net".to_owned(), 2002))
            .unwrap();
        let clocks = Some(alice.clocks());
        let bad = |own: &[u8], slot: &[u8]| OmemoDevice::from_records(own, clocks, [slot]).is_err();
        for cut in [0, 1, own.len() / 2, own.len() - 1] {
            assert!(bad(&own[..cut], &slot), "own record cut at {cut}");
        }
        for cut in [0, 4, 5, slot.len() / 2, slot.len() - 1] {
            assert!(bad(&own, &slot[..cut]), "slot record cut at {cut}");
        }
        let mut long_own = own.to_vec();
        long_own.push(0);
        assert!(bad(&long_own, &slot));
        let mut long_slot = slot.to_vec();
        long_slot.push(0);
        assert!(bad(&own, &long_slot));
        // The same slot twice, or a slot under the other version, is refused.
        assert!(OmemoDevice::from_records(&own, clocks, [&slot[..], &slot[..]]).is_err());
        // A schema-2 own record without its clocks is refused.
        assert!(OmemoDevice::from_records(&own, None, [&slot[..]]).is_err());
        let mut other_version = slot.to_vec();
        other_version[4] = 1;
        assert!(bad(&own, &other_version));
        assert!(!bad(&own, &slot));
    }

    /// A slot keeps its identity's Curve25519 form once derived, in its record (schema 2), and
    /// a record of schema 1 (without it) still reads.
    #[test]
    fn a_slot_record_keeps_the_identity_curve_and_schema_1_still_reads() {
        let (mut alice, _bob) = alice_talking_to_bob();
        let own = alice.own_record();
        let clocks = Some(alice.clocks());
        let address = (Version::Omemo2, "bob@example.net".to_owned(), 2002);
        let identity = alice
            .omemo2_sessions()
            .get("bob@example.net", 2002)
            .unwrap()
            .current()
            .their_identity();
        let before = alice.slot_record(&address).unwrap();
        assert_eq!(before[..4], 2u32.to_be_bytes());
        let curve = alice
            .session_identity_curve(Version::Omemo2, "bob@example.net", 2002, &identity)
            .unwrap();
        assert_eq!(curve, identity.curve25519().unwrap());
        let after = alice.slot_record(&address).unwrap();
        assert_eq!(after.len(), before.len() + 32);
        // Read again, the slot holds it (and writes the same record).
        let again = OmemoDevice::from_records(&own, clocks, [&after[..]]).unwrap();
        let slot = again
            .omemo2_sessions()
            .get("bob@example.net", 2002)
            .unwrap();
        assert_eq!(slot.identity_curve(), Some(curve));
        assert_eq!(again.slot_record(&address).unwrap(), after);
        // Schema 1: no presence byte at the end.
        let mut old = before[..before.len() - 1].to_vec();
        old[..4].copy_from_slice(&1u32.to_be_bytes());
        let from_old = OmemoDevice::from_records(&own, clocks, [&old[..]]).unwrap();
        let slot = from_old
            .omemo2_sessions()
            .get("bob@example.net", 2002)
            .unwrap();
        assert_eq!(slot.identity_curve(), None);
        assert_eq!(from_old.slot_record(&address).unwrap(), before);
        // Schema 1 with the field, or schema 2 without it, is refused.
        let mut long_old = after.to_vec();
        long_old[..4].copy_from_slice(&1u32.to_be_bytes());
        assert!(OmemoDevice::from_records(&own, clocks, [&long_old[..]]).is_err());
        let mut short = before.to_vec();
        short.pop();
        assert!(OmemoDevice::from_records(&own, clocks, [&short[..]]).is_err());
    }

    /// Identities are decompressed once per read (ours not at all): a key that is not a point
    /// is still refused wherever it stands, before or after valid copies of the same field.
    #[test]
    fn slot_identities_that_are_not_points_are_refused() {
        let (mut alice, mut bob) = alice_talking_to_bob();
        talk(&mut bob, &mut alice, Version::Omemo2, 2);
        let own = alice.own_record();
        let clocks = Some(alice.clocks());
        let slot = alice
            .slot_record(&(Version::Omemo2, "bob@example.net".to_owned(), 2002))
            .unwrap();
        let not_a_point = (2u8..)
            .map(|y| {
                let mut bytes = [0u8; 32];
                bytes[0] = y;
                bytes
            })
            .find(|bytes| crate::crypto::Ed25519PublicKey::from_bytes(bytes).is_err())
            .unwrap();
        let malformed = |slot: &[u8]| {
            matches!(
                OmemoDevice::from_records(&own, clocks, [slot]),
                Err(PersistError::Malformed(DecodeError::OutOfRange))
            )
        };
        for identity in [alice.identity.ed25519_key(), bob.identity.ed25519_key()] {
            let at: Vec<usize> = (0..slot.len() - 31)
                .filter(|&i| slot[i..i + 32] == identity.as_bytes()[..])
                .collect();
            assert!(!at.is_empty());
            // Each occurrence alone, and all of them.
            for &i in &at {
                let mut changed = slot.to_vec();
                changed[i..i + 32].copy_from_slice(&not_a_point);
                assert!(malformed(&changed), "identity at {i}");
            }
            let mut changed = slot.to_vec();
            for &i in &at {
                changed[i..i + 32].copy_from_slice(&not_a_point);
            }
            assert!(malformed(&changed));
        }
        assert!(OmemoDevice::from_records(&own, clocks, [&slot[..]]).is_ok());
    }
}
