//! What the machine derives from its records and keeps between operations, because deriving it
//! costs scalar multiplications: our identity's keys (two derivations from the seed on every
//! load otherwise) and contacts' fingerprints (an Ed25519 key's Curve25519 form, one field
//! inversion each, per recipient device of every message). Pure functions of their inputs, so
//! another writer of the store cannot make them stale: a record holding another identity is
//! read as it always was. It also holds the last device's pre-keys, to make the device of an
//! operation that uses none without reading them, and its session slots, each used again only
//! when the store still holds the record it was taken out with. And the records it parses at
//! every operation (the account, the session clocks, trust decisions, device lists), each with
//! the plaintext it was parsed from: the same plaintext again gives the same record without
//! parsing its JSON.
//!
//! Above all it keeps the last operation's assembled device ([`Kept`]): identity, clocks,
//! pre-keys and the session slots loaded so far, with the records they stand for. The next
//! operation uses it as it is when the records it reads anyway (the account record, the
//! clocks, the pre-keys if it reads them, the slots it needs) are those the device stands for,
//! byte for byte; otherwise the device is taken apart and made again from the records (the
//! slots that still match kept). Record contents are compared, not versions: a record deleted
//! and written again starts again at version 1, and a restored backup may bring back any
//! version.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use zeroize::Zeroizing;

use crate::crypto::Curve25519PublicKey;
use crate::omemo::{
    Clocks, DeviceIdentity, HeldSlot, IdentityKey, OmemoDevice, PreKeyPair, SlotAddress, hex,
};
use crate::store::NAME_LEN;
use crate::vec_map::VecMap;

/// Fingerprints kept; past this, the memo starts again (an account has far fewer contacts'
/// devices, and a flood of key exchanges must not grow it without bound).
const MAX_FINGERPRINTS: usize = 4_096;
/// Session slots held between operations; past this, the memo starts again.
const MAX_SLOTS: usize = 1_024;
/// Record names kept; past this, the memo starts again.
const MAX_NAMES: usize = 4_096;
/// Record-name keys up to this long are framed on the stack for the lookup.
const KEY_ON_STACK: usize = 256;
/// Parsed records kept; past this, the memo starts again.
const MAX_PARSED: usize = 4_096;

/// A record's name ([`crate::store::Sealer::name`]).
pub(crate) type Name = [u8; NAME_LEN];

/// The hash of the maps keyed by what the network chooses (JIDs, device ids, identity keys):
/// a folded-multiply hash (SipHash was a twentieth of an encrypt's instructions) seeded from
/// the caller's CSPRNG when the machine opens, so nobody can choose keys that collide.
type Keyed = foldhash::fast::SeedableRandomState;

/// Session slots by address, each with the record it was taken out with.
type HeldSlots = HashMap<SlotAddress, (Zeroizing<Vec<u8>>, HeldSlot), Keyed>;

/// Parsed records by table and name (a keyed hash, see [`crate::store::Sealer::name`]: not
/// chosen by anyone without the storage key), each with the schema and plaintext it was parsed
/// from. The tables are a handful: a `Vec` of them, not a second hash map type in the
/// `.wasm` package, found by address first ([`parsed_table`]).
type Parsed = Vec<(&'static str, HashMap<Vec<u8>, ParsedRecord, Fast>)>;

/// The place of `table` among the parsed tables. The names are the machine's constants, so
/// their addresses nearly always decide: a binary search by name compared strings that share
/// their first five bytes (`xmpp.`), a `memcmp` call each, for every record read through
/// the memo (a few dozen per encrypt).
fn parsed_table(parsed: &Parsed, table: &str) -> Option<usize> {
    parsed
        .iter()
        .position(|(name, _)| std::ptr::eq(*name, table))
        .or_else(|| parsed.iter().position(|(name, _)| *name == table))
}

/// The hash of the maps whose keys nobody outside chooses: randomly seeded per map.
type Fast = foldhash::fast::RandomState;

struct ParsedRecord {
    schema: u16,
    plaintext: Zeroizing<Vec<u8>>,
    /// A [`super::tables::Record`] of the type it was read as.
    record: Box<dyn Any + Send>,
}

/// An assembled device kept between operations, with the records it stands for.
pub(crate) struct Kept {
    /// Boxed, as in [`super::machine::Loaded`]: kept and taken again by moving a pointer.
    pub device: Box<OmemoDevice>,
    /// The identity record (schema 3) the device stands for.
    pub identity: Zeroizing<Vec<u8>>,
    /// The clocks record's contents (also the device's clocks).
    pub clocks: Clocks,
    /// The pre-keys record the device holds, when known to be the stored one at release;
    /// `None`: the device's pre-keys may be stale (fine for an operation that uses none).
    pub pre_keys: Option<Zeroizing<Vec<u8>>>,
    /// Each slot the device holds, with the record it stands for.
    pub slots: VecMap<SlotAddress, Zeroizing<Vec<u8>>>,
}

impl Kept {
    /// Takes the device apart for the memo's other parts: its slots (each with its record)
    /// and its pre-keys (the identity is already held). Gives the pre-keys and the addresses
    /// of the slots it held.
    pub(crate) fn dissolve(self, memo: &Memo) -> (PreKeyPair, Vec<SlotAddress>) {
        let Kept {
            mut device,
            mut slots,
            ..
        } = self;
        let mut addresses = Vec::with_capacity(slots.len());
        // Last first: the slots come in address order, so each record is the map's last.
        let held = device
            .take_slots()
            .into_iter()
            .rev()
            .filter_map(|(address, slot)| {
                let record = slots.remove(&address)?;
                addresses.push(address.clone());
                Some((address, record, slot))
            });
        memo.hold_slots(held);
        (device.into_pre_keys(), addresses)
    }
}

#[derive(Default)]
pub(crate) struct Memo {
    /// The last operation's device (taken by an operation, given back when it is done).
    /// Boxed: an operation's future holds it across its reads, and moves only a pointer.
    device: Mutex<Option<Box<Kept>>>,
    identity: Mutex<Option<DeviceIdentity>>,
    /// The pre-keys of the last operation's device, for the next one that uses none (see
    /// [`super::machine::PreKeysUse::Unused`]): whether or not they are current, they are
    /// only there to make a whole device, never used nor written.
    pre_keys: Mutex<Option<PreKeyPair>>,
    /// The session slots of the last operations' devices, each with its record as it was
    /// when taken out: a slot is used again only when the store holds that same record.
    slots: Mutex<HeldSlots>,
    /// Record names by (table, parts), each part framed by its length: an HMAC each (`None`:
    /// a record that has no name, see [`Memo::name`]).
    names: Mutex<HashMap<Vec<u8>, Option<Name>, Keyed>>,
    fingerprints: Mutex<HashMap<IdentityKey, String, Keyed>>,
    parsed: Mutex<Parsed>,
}

impl Memo {
    /// An empty memo whose maps of network-chosen keys hash with `seed` (from a CSPRNG).
    pub(crate) fn new(seed: u64) -> Self {
        let keyed =
            |i: u64| Keyed::with_seed(seed.wrapping_add(i), foldhash::SharedSeed::global_random());
        Self {
            slots: Mutex::new(HashMap::with_hasher(keyed(0))),
            names: Mutex::new(HashMap::with_hasher(keyed(1))),
            fingerprints: Mutex::new(HashMap::with_hasher(keyed(2))),
            ..Self::default()
        }
    }

    /// Runs `read` with our identity as last read (for it to copy instead of deriving), and
    /// remembers the identity it read.
    pub(crate) fn with_identity<E>(
        &self,
        read: impl FnOnce(Option<&DeviceIdentity>) -> Result<OmemoDevice, E>,
    ) -> Result<OmemoDevice, E> {
        let mut known = self.identity.lock().unwrap_or_else(PoisonError::into_inner);
        let device = read(known.as_ref())?;
        let same = known
            .as_ref()
            .is_some_and(|k| k.ed25519_key() == device.identity().ed25519_key());
        if !same {
            *known = Some(device.identity().clone());
        }
        Ok(device)
    }

    /// The device kept, taken (an operation running at the same time assembles its own).
    pub(crate) fn take_device(&self) -> Option<Box<Kept>> {
        self.device
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Keeps `kept` for the next operation.
    pub(crate) fn keep_device(&self, kept: Box<Kept>) {
        *self.device.lock().unwrap_or_else(PoisonError::into_inner) = Some(kept);
    }

    /// Drops the device kept (after a failed commit: never a device ahead of the store).
    pub(crate) fn forget_device(&self) {
        self.take_device();
    }

    /// The pre-keys held, taken (an operation running at the same time reads its own).
    pub(crate) fn take_pre_keys(&self) -> Option<PreKeyPair> {
        self.pre_keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    pub(crate) fn hold_pre_keys(&self, pre_keys: PreKeyPair) {
        *self.pre_keys.lock().unwrap_or_else(PoisonError::into_inner) = Some(pre_keys);
    }

    /// The slot held for `address`, taken, if its record was `record`.
    pub(crate) fn take_slot(&self, address: &SlotAddress, record: &[u8]) -> Option<HeldSlot> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let (held_record, _) = slots.get(address)?;
        if held_record.as_slice() != record {
            slots.remove(address);
            return None;
        }
        slots.remove(address).map(|(_, slot)| slot)
    }

    /// The slot held for `address`, taken, with its record.
    pub(crate) fn take_held(
        &self,
        address: &SlotAddress,
    ) -> Option<(Zeroizing<Vec<u8>>, HeldSlot)> {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(address)
    }

    /// The addresses of the slots held.
    pub(crate) fn held_addresses(&self) -> Vec<SlotAddress> {
        let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.keys().cloned().collect()
    }

    /// Holds the slots, each with its record.
    pub(crate) fn hold_slots(
        &self,
        held: impl IntoIterator<Item = (SlotAddress, Zeroizing<Vec<u8>>, HeldSlot)>,
    ) {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        for (address, record, slot) in held {
            if slots.len() >= MAX_SLOTS {
                slots.clear();
            }
            slots.insert(address, (record, slot));
        }
    }

    /// The name of the record of `table` and `parts`, made by `make` the first time (`None`:
    /// the parts name no record, remembered as well). A copy of the array given, not
    /// allocated (some 26 names per encrypt to 9 devices).
    pub(crate) fn name(
        &self,
        table: &str,
        parts: &[&[u8]],
        make: impl FnOnce() -> Option<Name>,
    ) -> Option<Name> {
        let framed = |part: &&[u8]| 8 + part.len();
        let size = 8 + table.len() + parts.iter().map(framed).sum::<usize>();
        let write = |key: &mut [u8]| {
            let mut at = 0;
            for part in std::iter::once(&table.as_bytes()).chain(parts) {
                key[at..at + 8].copy_from_slice(&(part.len() as u64).to_be_bytes());
                key[at + 8..at + 8 + part.len()].copy_from_slice(part);
                at += 8 + part.len();
            }
        };
        // Looked up from the stack: the key is allocated only when a name is new (an
        // allocation and its free were a third of a lookup, ~26 per encrypt to 9 devices).
        let mut on_stack = [0u8; KEY_ON_STACK];
        let mut on_heap = Vec::new();
        let key: &mut [u8] = if size <= KEY_ON_STACK {
            &mut on_stack[..size]
        } else {
            on_heap.resize(size, 0);
            &mut on_heap
        };
        write(key);
        let mut names = self.names.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(name) = names.get(&*key) {
            return *name;
        }
        let name = make();
        if names.len() >= MAX_NAMES {
            names.clear();
        }
        names.insert(key.to_vec(), name);
        name
    }

    /// The record of `table` and `key` parsed from exactly this schema and plaintext before,
    /// as the type `T` it was read as.
    #[cfg(test)]
    pub(crate) fn parsed<T: Clone + 'static>(
        &self,
        table: &'static str,
        key: &[u8],
        schema: u16,
        plaintext: &[u8],
    ) -> Option<T> {
        self.parsed_with(table, key, schema, plaintext, T::clone)
    }

    /// As [`Self::parsed`], giving what `read` takes from the record (no copy of the rest).
    pub(crate) fn parsed_with<T: 'static, R>(
        &self,
        table: &'static str,
        key: &[u8],
        schema: u16,
        plaintext: &[u8],
        read: impl FnOnce(&T) -> R,
    ) -> Option<R> {
        let parsed = self.parsed.lock().unwrap_or_else(PoisonError::into_inner);
        let (_, records) = &parsed[parsed_table(&parsed, table)?];
        let held = records.get(key)?;
        if held.schema != schema || held.plaintext.as_slice() != plaintext {
            return None;
        }
        held.record.downcast_ref::<T>().map(read)
    }

    /// Remembers `record`, parsed from `schema` and `plaintext`.
    pub(crate) fn hold_parsed<T: Send + 'static>(
        &self,
        table: &'static str,
        key: &[u8],
        schema: u16,
        plaintext: Zeroizing<Vec<u8>>,
        record: T,
    ) {
        self.hold_parsed_with(table, key, schema, record, |held| *held = plaintext);
    }

    /// As [`Self::hold_parsed`], the plaintext copied: into the buffer of the record held
    /// before when there is one (a record written at every operation, such as the clocks,
    /// then costs no allocation here).
    pub(crate) fn hold_parsed_copy<T: Send + 'static>(
        &self,
        table: &'static str,
        key: &[u8],
        schema: u16,
        plaintext: &[u8],
        record: T,
    ) {
        self.hold_parsed_with(table, key, schema, record, |held| {
            if held.capacity() < plaintext.len() {
                // A new buffer: growing the old one would free it unwiped.
                *held = Zeroizing::new(plaintext.to_vec());
            } else {
                // The old contents are overwritten or, past the new length, left in a buffer
                // wiped whole (capacity included) when it drops.
                held.clear();
                held.extend_from_slice(plaintext);
            }
        });
    }

    /// Holds `record` in place of the record held under (table, key), if any (its key, box
    /// and plaintext buffer used again), else beside the others; `set` puts the plaintext in.
    fn hold_parsed_with<T: Send + 'static>(
        &self,
        table: &'static str,
        key: &[u8],
        schema: u16,
        record: T,
        set: impl FnOnce(&mut Zeroizing<Vec<u8>>),
    ) {
        let mut parsed = self.parsed.lock().unwrap_or_else(PoisonError::into_inner);
        let at = parsed_table(&parsed, table);
        if let Some(held) = at.and_then(|at| parsed[at].1.get_mut(key)) {
            held.schema = schema;
            set(&mut held.plaintext);
            match held.record.downcast_mut::<T>() {
                Some(old) => *old = record,
                None => held.record = Box::new(record),
            }
            return;
        }
        let mut at = at;
        if parsed
            .iter()
            .map(|(_, records)| records.len())
            .sum::<usize>()
            >= MAX_PARSED
        {
            *parsed = Parsed::new();
            at = None;
        }
        let mut plaintext = Zeroizing::new(Vec::new());
        set(&mut plaintext);
        let held = ParsedRecord {
            schema,
            plaintext,
            record: Box::new(record),
        };
        let at = at.unwrap_or_else(|| {
            parsed.push((table, HashMap::default()));
            parsed.len() - 1
        });
        parsed[at].1.insert(key.to_vec(), held);
    }

    /// The key's fingerprint ([`IdentityKey::fingerprint`]); `None` for a key that has none.
    pub(crate) fn fingerprint(&self, key: &IdentityKey) -> Option<String> {
        self.fingerprint_with(key, IdentityKey::fingerprint)
    }

    /// The fingerprint of the identity of one of our sessions, of the Curve25519 form `curve`
    /// gives when the memo does not hold it (checked when the session was made, not again; a
    /// device's slot may keep it from its record: see
    /// [`OmemoDevice::session_identity_curve`]).
    pub(crate) fn session_fingerprint_by<E>(
        &self,
        key: &IdentityKey,
        curve: impl FnOnce() -> Result<Curve25519PublicKey, E>,
    ) -> Option<String> {
        self.fingerprint_with(key, |_| curve().map(|curve| hex(curve.as_bytes())))
    }

    fn fingerprint_with<E>(
        &self,
        key: &IdentityKey,
        make: impl FnOnce(&IdentityKey) -> Result<String, E>,
    ) -> Option<String> {
        let mut known = self
            .fingerprints
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(fingerprint) = known.get(key) {
            return Some(fingerprint.clone());
        }
        let fingerprint = make(key).ok()?;
        if known.len() >= MAX_FINGERPRINTS {
            known.clear();
        }
        known.insert(*key, fingerprint.clone());
        Some(fingerprint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_once_per_table_and_parts_short_or_long() {
        let memo = Memo::default();
        let made = std::cell::Cell::new(0);
        let make = |name: u8| {
            made.set(made.get() + 1);
            (name != 0).then_some([name; NAME_LEN])
        };
        let long = vec![7u8; KEY_ON_STACK];
        for _ in 0..2 {
            assert_eq!(
                memo.name("t", &[b"ab", b"c"], || make(1)),
                Some([1; NAME_LEN])
            );
            assert_eq!(
                memo.name("t", &[b"a", b"bc"], || make(2)),
                Some([2; NAME_LEN])
            );
            assert_eq!(
                memo.name("u", &[b"ab", b"c"], || make(3)),
                Some([3; NAME_LEN])
            );
            assert_eq!(memo.name("t", &[&long], || make(4)), Some([4; NAME_LEN]));
            assert_eq!(
                memo.name("t", &[&long, b""], || make(5)),
                Some([5; NAME_LEN])
            );
            assert_eq!(memo.name("t", &[b"none"], || make(0)), None);
        }
        assert_eq!(made.get(), 6);
    }

    #[test]
    fn a_parsed_record_is_given_only_for_its_own_schema_plaintext_and_type() {
        let memo = Memo::default();
        let plaintext = Zeroizing::new(b"{\"a\":1}".to_vec());
        memo.hold_parsed("t", b"k", 3, plaintext.clone(), 1u32);
        assert_eq!(memo.parsed::<u32>("t", b"k", 3, &plaintext), Some(1));
        assert_eq!(memo.parsed::<u32>("t", b"k", 3, b"{\"a\":2}"), None);
        assert_eq!(memo.parsed::<u32>("t", b"k", 2, &plaintext), None);
        assert_eq!(memo.parsed::<u64>("t", b"k", 3, &plaintext), None);
        assert_eq!(memo.parsed::<u32>("t", b"other", 3, &plaintext), None);
        assert_eq!(memo.parsed::<u32>("u", b"k", 3, &plaintext), None);
    }
}
