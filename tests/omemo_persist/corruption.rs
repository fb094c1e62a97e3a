//! Bad blobs: wrong key, kind or version, tampered, truncated, and contents that decrypt but
//! are malformed. Every one is a typed error and none panics. The payload tests seal their
//! input in a valid envelope (as the fuzz targets do), so they reach the parser.

use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use olmo::DecodeError;
use olmo::crypto::Ed25519PublicKey;
use olmo::megolm::GroupSession;
use olmo::olm::Account;
use olmo::omemo::store::{MAX_DEVICES, SessionStore};
use olmo::omemo::{Omemo2, Omemo03, OmemoDevice, OmemoProfile, OmemoSession, SealedKey, Version};
use olmo::persist::{PersistError, StorageKey};

use super::{
    KEY, NOW, RAW_KEY, TestRng, VERSIONS, World, imported_device, receive, send, session_snapshot,
};

const DEVICE: u8 = 6;
const OMEMO2_SESSION: u8 = 7;
const OMEMO03_SESSION: u8 = 8;
const ENVELOPE: usize = 6 + 24 + 16;

/// The contents of a blob sealed under [`KEY`].
pub fn open_payload(blob: &[u8]) -> Vec<u8> {
    let (header, rest) = blob.split_at(6);
    let (nonce, ciphertext) = rest.split_at(24);
    let nonce: [u8; 24] = nonce.try_into().unwrap();
    XChaCha20Poly1305::new(&RAW_KEY.into())
        .decrypt(
            &nonce.into(),
            Payload {
                msg: ciphertext,
                aad: header,
            },
        )
        .unwrap()
}

/// `payload` in a valid envelope of `kind` under [`KEY`].
fn seal_payload(kind: u8, payload: &[u8]) -> Vec<u8> {
    let header = [b'o', b'l', b'm', b'o', 1, kind];
    let nonce = [9u8; 24];
    let ciphertext = XChaCha20Poly1305::new(&RAW_KEY.into())
        .encrypt(
            &nonce.into(),
            Payload {
                msg: payload,
                aad: &header,
            },
        )
        .unwrap();
    [&header[..], &nonce, &ciphertext].concat()
}

pub fn restore_device(payload: &[u8]) -> Result<OmemoDevice, PersistError> {
    OmemoDevice::restore(&seal_payload(DEVICE, payload), &KEY)
}

fn malformed(error: DecodeError) -> PersistError {
    PersistError::Malformed(error)
}

fn fresh() -> OmemoDevice {
    OmemoDevice::generate("alice@example.org", 1001, NOW, &mut TestRng::new(1))
}

/// Offsets in a fresh device's payload ("alice@example.org": a 17-byte JID).
const IDENTITY: usize = 4 + 4 + 17 + 4;
const OMEMO2_PRE_KEYS: usize = IDENTITY + 97;
const OMEMO2_POOL_COUNT: usize = OMEMO2_PRE_KEYS + 1 + 140 + 1 + 4;
const OMEMO2_POOL: usize = OMEMO2_POOL_COUNT + 4;
const OMEMO2_USED_COUNT: usize = OMEMO2_POOL + 100 * 68;
const OMEMO2_SESSION_COUNT: usize = OMEMO2_USED_COUNT + 4;

#[test]
fn blobs_are_bound_to_key_kind_and_format() {
    let world = World::new();
    let blob = world.alice.save(&KEY);
    assert_eq!(
        OmemoDevice::restore(&blob, &StorageKey::from_bytes([8; 32])).unwrap_err(),
        PersistError::Authentication
    );
    let omemo2 = world
        .alice
        .omemo2_sessions()
        .get("bob@example.net", 2002)
        .unwrap()
        .current()
        .save(&KEY);
    let omemo03 = world
        .alice
        .omemo03_sessions()
        .get("bob@example.net", 2002)
        .unwrap()
        .current()
        .save(&KEY);
    let account = Account::new().save(&KEY);
    let group = GroupSession::new(NOW).save(&KEY);
    for other in [&omemo2, &omemo03, &account, &group] {
        assert_eq!(
            OmemoDevice::restore(other, &KEY).unwrap_err(),
            PersistError::WrongKind
        );
    }
    for other in [&blob, &omemo03, &account] {
        assert_eq!(
            OmemoSession::<Omemo2>::restore(other, &KEY).unwrap_err(),
            PersistError::WrongKind
        );
    }
    for other in [&blob, &omemo2, &group] {
        assert_eq!(
            OmemoSession::<Omemo03>::restore(other, &KEY).unwrap_err(),
            PersistError::WrongKind
        );
    }
    assert_eq!(
        Account::restore(&blob, &KEY).unwrap_err(),
        PersistError::WrongKind
    );
    assert_eq!(
        GroupSession::restore(&omemo2, &KEY).unwrap_err(),
        PersistError::WrongKind
    );

    let mut version = blob.clone();
    version[4] = 2;
    assert_eq!(
        OmemoDevice::restore(&version, &KEY).unwrap_err(),
        PersistError::UnsupportedVersion(2)
    );
    let mut magic = blob.clone();
    magic[0] = b'O';
    assert_eq!(
        OmemoDevice::restore(&magic, &KEY).unwrap_err(),
        PersistError::NotOurFormat
    );
    for cut in 0..ENVELOPE {
        assert_eq!(
            OmemoDevice::restore(&blob[..cut], &KEY).unwrap_err(),
            PersistError::NotOurFormat
        );
    }
    for cut in [
        ENVELOPE,
        ENVELOPE + 1,
        blob.len() / 2,
        blob.len() - 16,
        blob.len() - 1,
    ] {
        assert_eq!(
            OmemoDevice::restore(&blob[..cut], &KEY).unwrap_err(),
            PersistError::Authentication
        );
    }
    let mut longer = blob.clone();
    longer.push(0);
    assert_eq!(
        OmemoDevice::restore(&longer, &KEY).unwrap_err(),
        PersistError::Authentication
    );
}

#[test]
fn unknown_schema_versions_are_refused() {
    let world = World::new();
    let device = open_payload(&world.alice.save(&KEY));
    let session = world
        .alice
        .omemo2_sessions()
        .get("bob@example.net", 2002)
        .unwrap()
        .current();
    let omemo2 = open_payload(&session.save(&KEY));
    let omemo03 = open_payload(
        &world
            .alice
            .omemo03_sessions()
            .get("bob@example.net", 2002)
            .unwrap()
            .current()
            .save(&KEY),
    );
    // Devices are schema 2 (schema 1 still restores, see `bounds`); single sessions schema 1.
    for schema in [0u32, 3, u32::MAX] {
        let with = |payload: &[u8]| [&schema.to_be_bytes()[..], &payload[4..]].concat();
        assert_eq!(
            restore_device(&with(&device)).unwrap_err(),
            PersistError::UnsupportedVersion(schema)
        );
        assert_eq!(
            OmemoSession::<Omemo2>::restore(&seal_payload(OMEMO2_SESSION, &with(&omemo2)), &KEY)
                .unwrap_err(),
            PersistError::UnsupportedVersion(schema)
        );
        assert_eq!(
            OmemoSession::<Omemo03>::restore(&seal_payload(OMEMO03_SESSION, &with(&omemo03)), &KEY)
                .unwrap_err(),
            PersistError::UnsupportedVersion(schema)
        );
    }
    // The helpers themselves are sound: the unchanged payloads restore.
    assert!(restore_device(&device).is_ok());
    let restored =
        OmemoSession::<Omemo2>::restore(&seal_payload(OMEMO2_SESSION, &omemo2), &KEY).unwrap();
    assert_eq!(session_snapshot(&restored), session_snapshot(session));
}

/// A device small enough to corrupt byte by byte: an imported Curve25519 identity, two
/// pre-keys per version, and it only ever initiates (so its pools are never refilled). In each
/// version: a session with bob after ratchet steps, holding skipped keys, replaced by a new one
/// still sending its key exchange; and a pending one with carol. Returns it with bob's messages
/// it has not read (two per version, on the replaced sessions).
fn small_alice() -> (OmemoDevice, Vec<(Version, SealedKey)>) {
    let mut rng = TestRng::new(20);
    let secret = rng.bytes();
    let pre_keys = [(1, rng.bytes()), (2, rng.bytes())];
    let signed = rng.bytes();
    let mut alice = imported_device(
        ("alice@example.org", 1001),
        &secret,
        (1, &signed),
        &pre_keys,
        &mut rng,
    );
    let mut bob = OmemoDevice::generate("bob@example.net", 2002, NOW, &mut TestRng::new(2));
    let carol = OmemoDevice::generate("carol@example.com", 3003, NOW, &mut TestRng::new(3));
    let mut unread = Vec::new();
    for version in VERSIONS {
        alice
            .build_session(bob.jid(), 2002, &bob.bundle(version), &mut rng)
            .unwrap();
        let first = send(&mut alice, &bob, version, &[1; 32]);
        receive(&mut bob, &alice, version, &first).unwrap();
        let messages: Vec<_> = (0..3u8)
            .map(|i| send(&mut bob, &alice, version, &[10 + i; 32]))
            .collect();
        receive(&mut alice, &bob, version, &messages[2]).unwrap();
        let back = send(&mut alice, &bob, version, &[20; 32]);
        assert!(!back.key_exchange);
        alice
            .build_session(bob.jid(), 2002, &bob.bundle(version), &mut rng)
            .unwrap();
        alice
            .build_session(carol.jid(), 3003, &carol.bundle(version), &mut rng)
            .unwrap();
        unread.extend(messages[..2].iter().map(|m| (version, m.clone())));
    }
    assert!(alice.pre_keys(Version::Omemo2).pre_key_ids().eq([1, 2]));
    (alice, unread)
}

#[test]
fn every_envelope_bit_flip_is_a_typed_error() {
    let (alice, _) = small_alice();
    let session = alice
        .omemo03_sessions()
        .get("bob@example.net", 2002)
        .unwrap()
        .current();
    let blobs = [alice.save(&KEY), session.save(&KEY)];
    for (which, blob) in blobs.iter().enumerate() {
        for bit in 0..blob.len() * 8 {
            let mut flipped = blob.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            let error = if which == 0 {
                OmemoDevice::restore(&flipped, &KEY)
                    .map(|_| ())
                    .unwrap_err()
            } else {
                OmemoSession::<Omemo03>::restore(&flipped, &KEY)
                    .map(|_| ())
                    .unwrap_err()
            };
            let expected = match bit / 8 {
                0..4 => PersistError::NotOurFormat,
                4 => PersistError::UnsupportedVersion(u32::from(flipped[4])),
                5 => PersistError::WrongKind,
                _ => PersistError::Authentication,
            };
            assert_eq!(error, expected, "blob {which}, bit {bit}");
        }
    }
}

#[test]
fn malformed_device_payloads_are_typed_errors() {
    let payload = open_payload(&fresh().save(&KEY));
    assert_eq!(
        u32::from_be_bytes(payload[OMEMO2_SESSION_COUNT..][..4].try_into().unwrap()),
        0
    );
    let with = |offset: usize, bytes: &[u8]| {
        let mut changed = payload.clone();
        changed[offset..offset + bytes.len()].copy_from_slice(bytes);
        restore_device(&changed).map(|_| ())
    };
    // A count at its cap is read (and runs out of input where the payload is cut).
    let at_cap = |offset: usize, count: u32| {
        let mut changed = payload[..offset + 4].to_vec();
        changed[offset..].copy_from_slice(&count.to_be_bytes());
        restore_device(&changed).map(|_| ())
    };
    let out_of_range = Err(malformed(DecodeError::OutOfRange));
    let truncated = Err(malformed(DecodeError::Truncated));
    // JIDs: too long, not UTF-8.
    assert_eq!(with(4, &3072u32.to_be_bytes()), out_of_range);
    assert_eq!(with(4, &u32::MAX.to_be_bytes()), out_of_range);
    assert_eq!(with(8, &[0xff]), out_of_range);
    // The identity: unknown form; secret and public keys that disagree.
    assert_eq!(with(IDENTITY, &[2]), out_of_range);
    assert_eq!(with(IDENTITY, &[1]), out_of_range);
    for offset in [IDENTITY + 1, IDENTITY + 33, IDENTITY + 65, IDENTITY + 96] {
        assert_eq!(
            with(offset, &[payload[offset] ^ 1]),
            out_of_range,
            "{offset}"
        );
    }
    // Pre-keys: unknown version, bad flag, counts over the cap, repeated or unordered ids.
    assert_eq!(with(OMEMO2_PRE_KEYS, &[2]), out_of_range);
    assert_eq!(with(OMEMO2_POOL_COUNT - 5, &[2]), out_of_range);
    assert_eq!(
        with(OMEMO2_POOL_COUNT, &65_537u32.to_be_bytes()),
        out_of_range
    );
    assert_eq!(at_cap(OMEMO2_POOL_COUNT, 65_536), truncated);
    assert_eq!(with(OMEMO2_POOL + 68, &1u32.to_be_bytes()), out_of_range);
    assert_eq!(with(OMEMO2_POOL, &7u32.to_be_bytes()), out_of_range);
    // Used pre-key ids: count over the cap.
    assert_eq!(
        with(OMEMO2_USED_COUNT, &1001u32.to_be_bytes()),
        out_of_range
    );
    assert_eq!(at_cap(OMEMO2_USED_COUNT, 1000), truncated);
    // Sessions: count over the cap (the live limit: a device never holds more).
    let cap = MAX_DEVICES as u32;
    assert_eq!(
        with(OMEMO2_SESSION_COUNT, &(cap + 1).to_be_bytes()),
        out_of_range
    );
    assert_eq!(at_cap(OMEMO2_SESSION_COUNT, cap), truncated);
    // Trailing bytes.
    let mut longer = payload.clone();
    longer.push(0);
    assert_eq!(
        restore_device(&longer).unwrap_err(),
        malformed(DecodeError::TrailingBytes)
    );
    // A JID longer than RFC 7622 allows saves, but is refused on restore.
    let long = OmemoDevice::generate(&"x".repeat(3072), 1, NOW, &mut TestRng::new(1));
    assert_eq!(
        OmemoDevice::restore(&long.save(&KEY), &KEY).unwrap_err(),
        malformed(DecodeError::OutOfRange)
    );
}

#[test]
fn malformed_session_payloads_are_typed_errors() {
    let world = World::new();
    let bob = "bob@example.net";
    let omemo2 = world.alice.omemo2_sessions().get(bob, 2002).unwrap();
    let omemo2 = open_payload(&omemo2.current().save(&KEY));
    let omemo03 = world.alice.omemo03_sessions().get(bob, 2002).unwrap();
    let omemo03 = open_payload(&omemo03.current().save(&KEY));
    let as2 = |payload: &[u8]| {
        OmemoSession::<Omemo2>::restore(&seal_payload(OMEMO2_SESSION, payload), &KEY).map(|_| ())
    };
    let as03 = |payload: &[u8]| {
        OmemoSession::<Omemo03>::restore(&seal_payload(OMEMO03_SESSION, payload), &KEY).map(|_| ())
    };
    let out_of_range = Err(malformed(DecodeError::OutOfRange));
    // A session of one version in the other's envelope: its identity keys are in the wrong form.
    assert_eq!(as03(&omemo2), out_of_range);
    assert_eq!(as2(&omemo03), out_of_range);
    // Flags and identity forms: `schema ‖ initiator ‖ confirmed ‖ form ‖ key ‖ form ‖ key`.
    for (offset, value) in [(4, 2), (5, 2), (6, 2), (39, 7)] {
        let mut changed = omemo2.clone();
        changed[offset] = value;
        assert_eq!(as2(&changed), out_of_range, "{offset}");
    }
    // An Ed25519 identity that is not a point.
    let not_a_point = (2u8..)
        .map(|y| {
            let mut bytes = [0u8; 32];
            bytes[0] = y;
            bytes
        })
        .find(|bytes| Ed25519PublicKey::from_bytes(bytes).is_err())
        .unwrap();
    let mut changed = omemo2.clone();
    changed[7..39].copy_from_slice(&not_a_point);
    assert_eq!(as2(&changed), out_of_range);
    let mut longer = omemo03.clone();
    longer.push(0);
    assert_eq!(as03(&longer), Err(malformed(DecodeError::TrailingBytes)));
}

#[test]
fn too_many_previous_sessions_are_refused() {
    // One OMEMO 2 session and no OMEMO 0.3 ones: the slot's previous count sits just before
    // the OMEMO 0.3 pre-keys (6954 bytes: no previous signed pre-key, no used ids), session
    // count and clock.
    let mut alice = fresh();
    let bob = OmemoDevice::generate("bob@example.net", 2002, NOW, &mut TestRng::new(2));
    alice
        .build_session(
            bob.jid(),
            2002,
            &bob.bundle(Version::Omemo2),
            &mut TestRng::new(3),
        )
        .unwrap();
    let mut payload = open_payload(&alice.save(&KEY));
    let at = payload.len() - 12 - 6954 - 4;
    assert_eq!(payload[at..at + 4], [0, 0, 0, 0]);
    payload[at + 3] = 6;
    assert_eq!(
        restore_device(&payload).unwrap_err(),
        malformed(DecodeError::OutOfRange)
    );
    payload[at + 3] = 5;
    assert_eq!(
        restore_device(&payload[..at + 4]).unwrap_err(),
        malformed(DecodeError::Truncated)
    );
}

#[test]
fn every_truncation_of_a_payload_is_refused() {
    let (alice, _) = small_alice();
    let device = open_payload(&alice.save(&KEY));
    for cut in 0..device.len() {
        assert_eq!(
            restore_device(&device[..cut]).unwrap_err(),
            malformed(DecodeError::Truncated),
            "cut at {cut}"
        );
    }
    let world = World::new();
    for (jid, id) in world.alice.omemo2_sessions().devices() {
        let slot = world.alice.omemo2_sessions().get(jid, id).unwrap();
        for session in std::iter::once(slot.current()).chain(slot.previous()) {
            let payload = open_payload(&session.save(&KEY));
            for cut in 0..payload.len() {
                let blob = seal_payload(OMEMO2_SESSION, &payload[..cut]);
                assert_eq!(
                    OmemoSession::<Omemo2>::restore(&blob, &KEY).unwrap_err(),
                    malformed(DecodeError::Truncated)
                );
            }
        }
    }
}

/// The documented layout accounts for every byte of a device with sessions: the head, then per
/// version the pre-keys and the slots, each holding session records as a single session stores
/// them (without its schema).
#[test]
fn device_layout_embeds_session_records() {
    let world = World::new();
    for device in [&world.alice, &world.bob, &world.carol] {
        let payload = open_payload(&device.save(&KEY));
        let mut at = 4 + 4 + device.jid().len() + 4 + 97;
        for version in VERSIONS {
            at += 1 + 140 + 1 + 4 + 4 + 68 * device.pre_keys(version).pre_key_ids().count();
            let used = u32::from_be_bytes(payload[at..at + 4].try_into().unwrap()) as usize;
            at += 4 + 4 * used;
            at += match version {
                Version::Omemo2 => check_store(&payload, at, device.omemo2_sessions()),
                Version::Omemo03 => check_store(&payload, at, device.omemo03_sessions()),
            };
        }
        assert_eq!(at, payload.len());
    }
}

/// Checks the slots stored at `at`; returns their length.
fn check_store<P: OmemoProfile>(payload: &[u8], start: usize, store: &SessionStore<P>) -> usize {
    // Count and clock.
    let mut at = start + 4 + 8;
    for (jid, id) in store.devices() {
        let slot = store.get(jid, id).unwrap();
        assert_eq!(&payload[at + 4..at + 4 + jid.len()], jid.as_bytes());
        // JID, device id, last used, no accepted identity.
        assert_eq!(payload[at + 4 + jid.len() + 4 + 8], 0);
        at += 4 + jid.len() + 4 + 8 + 1;
        for (i, session) in std::iter::once(slot.current())
            .chain(slot.previous())
            .enumerate()
        {
            let record = &open_payload(&session.save(&KEY))[4..];
            assert_eq!(&payload[at..at + record.len()], record);
            at += record.len() + if i == 0 { 4 } else { 0 };
        }
    }
    at - start
}

/// Whatever restores from corrupted contents saves back to exactly those contents (the
/// format has one encoding per state).
fn check_canonical(device: &OmemoDevice, payload: &[u8]) {
    assert_eq!(open_payload(&device.save(&KEY)), payload);
}

/// Uses a restored device: the results do not matter, only that nothing panics.
fn exercise(mut device: OmemoDevice, unread: &[(Version, SealedKey)]) {
    for version in VERSIONS {
        for (jid, id) in [("bob@example.net", 2002), ("carol@example.com", 3003)] {
            let _ = device.encrypt_key(version, jid, id, &[1; 32], &mut TestRng::new(1));
        }
        let _ = device.bundle(version);
    }
    for (version, key) in unread {
        let _ = device.decrypt_key(*version, "bob@example.net", 2002, key, &mut TestRng::new(2));
    }
    let _ = device.maintain(NOW, &mut TestRng::new(3));
}

#[test]
fn corrupted_device_payloads_never_panic() {
    let (alice, unread) = small_alice();
    let payload = open_payload(&alice.save(&KEY));
    // One bit of every byte (rotating through the bit positions); every bit of the head's
    // fields that are not key bytes (schema, JID, device id, identity form; the signed
    // pre-key's creation time, the previous flag, the next id and the pool count).
    let head = IDENTITY + 97 + 1 + 140 + 1 + 4 + 4;
    let exhaustive = (0..IDENTITY + 1).chain(head - 8 - 1 - 4 - 4..head);
    let flips = exhaustive
        .flat_map(|byte| (0..8).map(move |bit| byte * 8 + bit))
        .chain((0..payload.len()).map(|byte| byte * 8 + byte % 8));
    let mut restored = 0;
    for bit in flips {
        let mut flipped = payload.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        match restore_device(&flipped) {
            Ok(device) => {
                restored += 1;
                check_canonical(&device, &flipped);
                // Using a device is slow in a debug build: every device changed in its head, a
                // sample of the others.
                if bit < head * 8 || restored % 16 == 0 {
                    exercise(device, &unread);
                }
            }
            Err(PersistError::Malformed(_) | PersistError::UnsupportedVersion(_)) => {}
            Err(other) => panic!("bit {bit}: {other:?}"),
        }
    }
    assert!(restored > 0);
    check_canonical(&alice, &payload);
    exercise(alice, &unread);
}

fn corrupted_sessions_never_panic<P: OmemoProfile>(
    kind: u8,
    sessions: fn(&OmemoDevice) -> &SessionStore<P>,
) {
    let world = World::new();
    let alice = &world.alice;
    // The replaced session (skipped keys, after ratchet steps), the current responder one,
    // and the pending key exchange to carol.
    let bob = sessions(alice).get("bob@example.net", 2002).unwrap();
    let carol = sessions(alice).get("carol@example.com", 3003).unwrap();
    let states = [
        bob.previous().next().unwrap(),
        bob.current(),
        carol.current(),
    ];
    for session in states {
        let payload = open_payload(&session.save(&KEY));
        for bit in 0..payload.len() * 8 {
            let mut flipped = payload.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            match OmemoSession::<P>::restore(&seal_payload(kind, &flipped), &KEY) {
                Ok(restored) => {
                    // One encoding per state: it saves back to exactly what it was read from.
                    assert_eq!(open_payload(&restored.save(&KEY)), flipped);
                    let _ = restored
                        .clone()
                        .encrypt_with_rng(&[1; 32], &mut TestRng::new(1));
                    for (version, skipped, repeat, _) in &world.pending {
                        if *version == P::VERSION {
                            let _ = restored.clone().decrypt(&skipped[0]);
                            let _ = restored.clone().decrypt(repeat);
                        }
                    }
                }
                Err(PersistError::Malformed(_) | PersistError::UnsupportedVersion(_)) => {}
                Err(other) => panic!("bit {bit}: {other:?}"),
            }
        }
    }
}

#[test]
fn corrupted_omemo2_session_payloads_never_panic() {
    corrupted_sessions_never_panic::<Omemo2>(OMEMO2_SESSION, OmemoDevice::omemo2_sessions);
}

#[test]
fn corrupted_omemo03_session_payloads_never_panic() {
    corrupted_sessions_never_panic::<Omemo03>(OMEMO03_SESSION, OmemoDevice::omemo03_sessions);
}

#[test]
fn random_payloads_never_panic() {
    let (alice, _) = small_alice();
    let device = open_payload(&alice.save(&KEY));
    let mut rng = TestRng::new(99);
    for round in 0..600u32 {
        // Garbage of every small length, and valid prefixes followed by garbage.
        let length = (round as usize * 7) % 600;
        let mut garbage = vec![0u8; length];
        rand_core::Rng::fill_bytes(&mut rng, &mut garbage);
        let prefix = &device[..(round as usize * 13) % device.len()];
        for payload in [garbage.clone(), [prefix, &garbage].concat()] {
            let _ = restore_device(&payload);
            let _ = OmemoSession::<Omemo2>::restore(&seal_payload(OMEMO2_SESSION, &payload), &KEY);
            let _ =
                OmemoSession::<Omemo03>::restore(&seal_payload(OMEMO03_SESSION, &payload), &KEY);
        }
    }
}
