//! Sessions arrive from anyone, under device ids of their choosing: every count a restore
//! limits is limited as it grows, so a device filled to each limit still restores; eviction
//! spares answered sessions. Schema-1 devices (no usage counters) still restore.

use olmo::omemo::prekeys::{MAX_POOL_SIZE, MAX_USED_IDS};
use olmo::omemo::store::{
    MAX_DEVICES, MAX_DEVICES_PER_JID, MAX_JID_LENGTH, MAX_PREVIOUS_SESSIONS, SessionStore,
};
use olmo::omemo::{DeviceError, OmemoDevice, OmemoProfile, PreKeys, Version};

use super::corruption::{open_payload, restore_device};
use super::{KEY, NOW, TestRng, VERSIONS, receive, round_trip, send, snapshot};

fn device(jid: &str, id: u32, seed: u64) -> OmemoDevice {
    OmemoDevice::generate(jid, id, NOW, &mut TestRng::new(seed))
}

/// `from` makes a fresh session with `to` from its bundle and delivers a key exchange.
fn key_exchange(from: &mut OmemoDevice, to: &mut OmemoDevice, version: Version, seed: u64) {
    from.build_session(
        to.jid(),
        to.device_id(),
        &to.bundle(version),
        &mut TestRng::new(seed),
    )
    .unwrap();
    let kex = send(from, to, version, &[1; 32]);
    assert!(kex.key_exchange);
    receive(to, from, version, &kex).unwrap();
}

/// Bob holds a session with Alice that she answered: her key exchange, his reply, her answer
/// on a new ratchet key.
fn answered(version: Version) -> (OmemoDevice, OmemoDevice) {
    let mut alice = device("alice@example.org", 1001, 1);
    let mut bob = device("bob@example.net", 2002, 2);
    key_exchange(&mut alice, &mut bob, version, 3);
    let reply = send(&mut bob, &alice, version, &[2; 32]);
    receive(&mut alice, &bob, version, &reply).unwrap();
    let answer = send(&mut alice, &bob, version, &[3; 32]);
    receive(&mut bob, &alice, version, &answer).unwrap();
    (alice, bob)
}

fn store(device: &OmemoDevice, version: Version) -> Vec<(String, u32, bool)> {
    fn list<P: OmemoProfile>(store: &SessionStore<P>) -> Vec<(String, u32, bool)> {
        store
            .devices()
            .map(|(jid, id)| {
                (
                    jid.to_owned(),
                    id,
                    store.get(jid, id).unwrap().is_answered(),
                )
            })
            .collect()
    }
    match version {
        Version::Omemo2 => list(device.omemo2_sessions()),
        Version::Omemo03 => list(device.omemo03_sessions()),
    }
}

/// Bob copies an unanswered session (his own, to a device that never replied) to `addresses`.
fn fill(bob: &mut OmemoDevice, version: Version, addresses: &[(String, u32)]) {
    let silent = device("silent@example.com", 9, 9);
    bob.build_session(
        silent.jid(),
        9,
        &silent.bundle(version),
        &mut TestRng::new(9),
    )
    .unwrap();
    assert!(bob.copy_session_for_tests(version, ("silent@example.com", 9), addresses));
}

#[test]
fn devices_per_jid_are_bounded_and_answered_sessions_kept() {
    for version in VERSIONS {
        let (mut alice, mut bob) = answered(version);
        // Alice's JID filled to its limit with unanswered sessions, all used after hers.
        let copies: Vec<(String, u32)> = (1..MAX_DEVICES_PER_JID as u32)
            .map(|id| ("alice@example.org".to_owned(), id))
            .collect();
        fill(&mut bob, version, &copies);
        let of_alice = |bob: &OmemoDevice| {
            store(bob, version)
                .into_iter()
                .filter(|(jid, _, _)| jid == "alice@example.org")
                .collect::<Vec<_>>()
        };
        assert_eq!(of_alice(&bob).len(), MAX_DEVICES_PER_JID);
        // Key exchanges under new device ids of her JID: each evicts the least recently used
        // unanswered device, never her answered one.
        for id in 0..3u32 {
            let mut other = device("alice@example.org", 5000 + id, 20 + u64::from(id));
            key_exchange(&mut other, &mut bob, version, 30 + u64::from(id));
            let now = of_alice(&bob);
            assert_eq!(now.len(), MAX_DEVICES_PER_JID, "{version:?}");
            assert!(now.iter().any(|(_, id, answered)| *id == 1001 && *answered));
            assert!(now.iter().any(|(_, got, _)| *got == 5000 + id));
            // The copies went in order of use: 1, 2, 3 are gone first.
            assert!(!now.iter().any(|(_, got, _)| (1..=id + 1).contains(got)));
        }
        // Her session still works, and the device restores.
        let next = send(&mut alice, &bob, version, &[4; 32]);
        receive(&mut bob, &alice, version, &next).unwrap();
        round_trip(&bob);
    }
}

#[test]
fn total_devices_are_bounded_and_a_full_device_restores() {
    let started = std::time::Instant::now();
    for version in VERSIONS {
        let (_, mut bob) = answered(version);
        let copies: Vec<(String, u32)> = (0..MAX_DEVICES as u32)
            .map(|i| (format!("u{i}@example.org"), i))
            .collect();
        fill(&mut bob, version, &copies);
        let now = store(&bob, version);
        assert_eq!(now.len(), MAX_DEVICES);
        assert!(
            now.iter()
                .any(|(jid, _, answered)| jid == "alice@example.org" && *answered)
        );
        // A real key exchange from a new JID evicts an unanswered device, not Alice's.
        let mut stranger = device("stranger@example.org", 77, 77);
        key_exchange(&mut stranger, &mut bob, version, 78);
        let now = store(&bob, version);
        assert_eq!(now.len(), MAX_DEVICES);
        assert!(now.iter().any(|(jid, _, _)| jid == "alice@example.org"));
        assert!(now.iter().any(|(jid, _, _)| jid == "stranger@example.org"));
        round_trip(&bob);
    }
    eprintln!(
        "two full stores made, saved and restored in {:?}",
        started.elapsed()
    );
}

#[test]
fn previous_states_and_used_pre_key_ids_are_bounded() {
    let version = Version::Omemo03;
    let mut alice = device("alice@example.org", 1001, 1);
    let mut bob = device("bob@example.net", 2002, 2);
    // Alice starts over more times than there are previous states and pre-key ids remembered.
    for round in 0..=MAX_USED_IDS as u64 {
        key_exchange(&mut alice, &mut bob, version, 100 + round);
    }
    let slot = bob.omemo03_sessions().get(alice.jid(), 1001).unwrap();
    assert_eq!(slot.previous().count(), MAX_PREVIOUS_SESSIONS);
    let restored = round_trip(&bob);
    assert_eq!(snapshot(&restored), snapshot(&bob));
}

#[test]
fn an_imported_pool_is_bounded() {
    let identity = olmo::omemo::DeviceIdentity::from_seed(&[5; 32]);
    let pre_keys: Vec<(u32, [u8; 32])> = (1..=MAX_POOL_SIZE as u32 + 1)
        .map(|id| {
            let mut secret = [0u8; 32];
            secret[..4].copy_from_slice(&id.to_le_bytes());
            (id, secret)
        })
        .collect();
    let keys = PreKeys::import(
        &identity,
        Version::Omemo2,
        (1, &[6; 32]),
        &pre_keys,
        NOW,
        &mut TestRng::new(5),
    );
    assert_eq!(keys.pre_key_ids().count(), MAX_POOL_SIZE);
    assert_eq!(keys.pre_key_ids().last(), Some(MAX_POOL_SIZE as u32));
    let other = PreKeys::generate(&identity, Version::Omemo03, NOW, &mut TestRng::new(6));
    let device = OmemoDevice::from_parts("a@example.org", 1, identity, keys, other);
    round_trip(&device);
}

#[test]
fn a_jid_too_long_to_store_is_refused_without_change() {
    for version in VERSIONS {
        let long = format!("{}@example.org", "l".repeat(MAX_JID_LENGTH));
        let mut alice = device(&long, 1, 1);
        let mut bob = device("bob@example.net", 2, 2);
        alice
            .build_session(bob.jid(), 2, &bob.bundle(version), &mut TestRng::new(3))
            .unwrap();
        let kex = send(&mut alice, &bob, version, &[1; 32]);
        let before = snapshot(&bob);
        assert_eq!(
            receive(&mut bob, &alice, version, &kex),
            Err(DeviceError::JidTooLong { length: long.len() })
        );
        assert_eq!(snapshot(&bob), before);
        assert_eq!(
            bob.build_session(&long, 1, &alice.bundle(version), &mut TestRng::new(4)),
            Err(DeviceError::JidTooLong { length: long.len() })
        );
    }
}

/// `device`'s payload in schema 1: no clock, no last-used counters or accepted identities. `extra` device ids of
/// Alice's JID are added (copies of her device 1's sessions) after her device 1001, as a
/// schema-1 device could hold beyond today's limits.
fn schema_1(device: &OmemoDevice, extra: &[u32]) -> Vec<u8> {
    let payload = open_payload(&device.save(&KEY));
    let mut out = 1u32.to_be_bytes().to_vec();
    let mut at = 4 + 4 + device.jid().len() + 4 + 97;
    out.extend_from_slice(&payload[4..at]);
    for version in VERSIONS {
        let start = at;
        at += 1 + 140 + 1 + 4 + 4 + 68 * device.pre_keys(version).pre_key_ids().count();
        let used = u32::from_be_bytes(payload[at..at + 4].try_into().unwrap()) as usize;
        at += 4 + 4 * used;
        out.extend_from_slice(&payload[start..at]);
        // The count and clock.
        at += 4 + 8;
        let lengths = match version {
            Version::Omemo2 => slot_lengths(device.omemo2_sessions()),
            Version::Omemo03 => slot_lengths(device.omemo03_sessions()),
        };
        let mut slots: Vec<(String, u32, Vec<u8>)> = Vec::new();
        for (jid, id, records) in lengths {
            // The address, last used and (absent) accepted identity.
            at += 4 + jid.len() + 4 + 8 + 1;
            slots.push((jid, id, payload[at..at + records].to_vec()));
            at += records;
        }
        let copy = slots
            .iter()
            .find(|(jid, id, _)| jid == "alice@example.org" && *id == 1)
            .map(|(_, _, records)| records.clone());
        if let Some(after) = slots
            .iter()
            .position(|(jid, id, _)| jid == "alice@example.org" && *id == 1001)
        {
            for (k, id) in extra.iter().enumerate() {
                let records = copy.clone().unwrap();
                slots.insert(
                    after + 1 + k,
                    ("alice@example.org".to_owned(), *id, records),
                );
            }
        }
        out.extend_from_slice(&(slots.len() as u32).to_be_bytes());
        for (jid, id, records) in slots {
            out.extend_from_slice(&(jid.len() as u32).to_be_bytes());
            out.extend_from_slice(jid.as_bytes());
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&records);
        }
    }
    assert_eq!(at, payload.len());
    out
}

/// Per slot: its address and the length of its session records (with the previous count).
fn slot_lengths<P: OmemoProfile>(store: &SessionStore<P>) -> Vec<(String, u32, usize)> {
    store
        .devices()
        .map(|(jid, id)| {
            let slot = store.get(jid, id).unwrap();
            let records: usize = std::iter::once(slot.current())
                .chain(slot.previous())
                .map(|s| open_payload(&s.save(&KEY)).len() - 4)
                .sum();
            (jid.to_owned(), id, records + 4)
        })
        .collect()
}

#[test]
fn schema_1_devices_restore_and_are_trimmed_to_the_limits() {
    for version in VERSIONS {
        let (mut alice, mut bob) = answered(version);
        let mut restored = restore_device(&schema_1(&bob, &[])).unwrap();
        assert_eq!(store(&restored, version), store(&bob, version));
        let next = send(&mut alice, &restored, version, &[5; 32]);
        receive(&mut restored, &alice, version, &next).unwrap();

        // Alice's JID over its limit, as schema 1 allowed: the restore trims the unanswered
        // devices (all never used: the lowest ids go), keeping her answered one.
        let copies: Vec<(String, u32)> = (1..MAX_DEVICES_PER_JID as u32)
            .map(|id| ("alice@example.org".to_owned(), id))
            .collect();
        fill(&mut bob, version, &copies);
        let restored = restore_device(&schema_1(&bob, &[5000, 5001])).unwrap();
        let ids: Vec<u32> = store(&restored, version)
            .into_iter()
            .filter(|(jid, _, _)| jid == "alice@example.org")
            .map(|(_, id, _)| id)
            .collect();
        assert_eq!(ids.len(), MAX_DEVICES_PER_JID);
        assert!(ids.contains(&1001) && ids.contains(&5001));
        assert!(!ids.contains(&1) && !ids.contains(&2));
        round_trip(&restored);
    }
}
