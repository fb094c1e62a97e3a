//! Saving and restoring OMEMO state: whole devices (identity, pre-keys, every session of both
//! versions, previous sessions, skipped keys, pending key exchanges) and single sessions. A
//! restored object must carry on exactly as the original would: given the same randomness it
//! sends the same bytes and decrypts the same messages. Bad blobs are typed errors
//! (`corruption`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod bounds;
#[path = "../common/mod.rs"]
mod common;
mod corruption;

use olmo::megolm::Timestamp;
use olmo::omemo::store::SessionStore;
use olmo::omemo::{
    DeviceError, DeviceIdentity, Omemo2, Omemo03, OmemoDevice, OmemoProfile, OmemoSession,
    PreKeyError, PreKeys, SealedKey, SessionError, VerifiedBundle, Version,
};
use olmo::persist::StorageKey;

pub use common::rng::TestRng;

pub const RAW_KEY: [u8; 32] = [7; 32];
pub const KEY: StorageKey = StorageKey::from_bytes(RAW_KEY);
pub const NOW: Timestamp = Timestamp::from_millis(1_700_000_000_000);
pub const VERSIONS: [Version; 2] = [Version::Omemo2, Version::Omemo03];
const DAY: u64 = 24 * 60 * 60 * 1000;

/// The device as stored under a fixed nonce: equal snapshots mean equal state, field by field.
pub fn snapshot(device: &OmemoDevice) -> Vec<u8> {
    device.save_with_rng(&KEY, &mut TestRng::new(0))
}

pub fn session_snapshot<P: OmemoProfile>(session: &OmemoSession<P>) -> Vec<u8> {
    session.save_with_rng(&KEY, &mut TestRng::new(0))
}

/// Saves (with a random nonce) and restores, checking nothing was lost.
pub fn round_trip(device: &OmemoDevice) -> OmemoDevice {
    let restored = OmemoDevice::restore(&device.save(&KEY), &KEY).unwrap();
    assert_eq!(snapshot(&restored), snapshot(device));
    restored
}

pub fn send(
    from: &mut OmemoDevice,
    to: &OmemoDevice,
    version: Version,
    material: &[u8],
) -> SealedKey {
    let seed = (u64::from(material[0]) << 32) | u64::from(to.device_id());
    from.encrypt_key(
        version,
        to.jid(),
        to.device_id(),
        material,
        &mut TestRng::new(seed),
    )
    .unwrap()
}

pub fn receive(
    to: &mut OmemoDevice,
    from: &OmemoDevice,
    version: Version,
    key: &SealedKey,
) -> Result<Vec<u8>, DeviceError> {
    to.decrypt_key(
        version,
        from.jid(),
        from.device_id(),
        key,
        &mut TestRng::new(u64::from(to.device_id())),
    )
    .map(|d| d.decrypted.key_material.to_vec())
}

/// A device with an imported Curve25519 identity (`secret`) and, in both versions, the same
/// imported signed pre-key and one-time pre-keys (with their ids).
pub fn imported_device(
    address: (&str, u32),
    secret: &[u8; 32],
    signed_pre_key: (u32, &[u8; 32]),
    pre_keys: &[(u32, [u8; 32])],
    rng: &mut TestRng,
) -> OmemoDevice {
    let identity = DeviceIdentity::from_curve25519_secret(secret);
    let [omemo2, omemo03] = VERSIONS
        .map(|version| PreKeys::import(&identity, version, signed_pre_key, pre_keys, NOW, rng));
    OmemoDevice::from_parts(address.0, address.1, identity, omemo2, omemo03)
}

/// Three devices whose sessions, in both versions, are in every state a session can be in.
#[derive(Clone)]
pub struct World {
    pub alice: OmemoDevice,
    pub bob: OmemoDevice,
    pub carol: OmemoDevice,
    /// Per version: bob's messages s0..s3 on the session he replaced (alice holds their skipped
    /// keys in a previous session), bob's repeated key exchange on his new session, and alice's
    /// first key exchange to carol; none delivered yet.
    pub pending: Vec<(Version, Vec<SealedKey>, SealedKey, SealedKey)>,
}

impl World {
    pub fn new() -> Self {
        let mut alice = OmemoDevice::generate("alice@example.org", 1001, NOW, &mut TestRng::new(1));
        let mut bob = OmemoDevice::generate("bob@example.net", 2002, NOW, &mut TestRng::new(2));
        let carol = OmemoDevice::generate("carol@example.com", 3003, NOW, &mut TestRng::new(3));
        let mut pending = Vec::new();
        for version in VERSIONS {
            let mut rng = TestRng::new(10);
            alice
                .build_session(bob.jid(), 2002, &bob.bundle(version), &mut rng)
                .unwrap();
            let first = send(&mut alice, &bob, version, &[1; 32]);
            assert!(first.key_exchange);
            assert_eq!(receive(&mut bob, &alice, version, &first).unwrap(), [1; 32]);
            for round in 2..5u8 {
                let reply = send(&mut bob, &alice, version, &[round; 32]);
                assert_eq!(
                    receive(&mut alice, &bob, version, &reply).unwrap(),
                    [round; 32]
                );
                let back = send(&mut alice, &bob, version, &[round + 100; 32]);
                assert!(!back.key_exchange);
                receive(&mut bob, &alice, version, &back).unwrap();
            }
            // Skipped keys: only the last of five arrives.
            let skipped: Vec<_> = (0..5u8)
                .map(|i| send(&mut bob, &alice, version, &[50 + i; 32]))
                .collect();
            assert_eq!(
                receive(&mut alice, &bob, version, &skipped[4]).unwrap(),
                [54; 32]
            );
            // Bob starts over: his old session and alice's become previous ones.
            bob.build_session(alice.jid(), 1001, &alice.bundle(version), &mut rng)
                .unwrap();
            let restart = send(&mut bob, &alice, version, &[60; 32]);
            let opened = alice
                .decrypt_key(version, bob.jid(), 2002, &restart, &mut rng)
                .unwrap();
            assert!(opened.new_session);
            let repeat = send(&mut bob, &alice, version, &[61; 32]);
            assert!(repeat.key_exchange);
            // Alice to carol: a key exchange not answered yet.
            alice
                .build_session(carol.jid(), 3003, &carol.bundle(version), &mut rng)
                .unwrap();
            let to_carol = send(&mut alice, &carol, version, &[70; 32]);
            assert!(to_carol.key_exchange);
            pending.push((version, skipped[..4].to_vec(), repeat, to_carol));
        }
        World {
            alice,
            bob,
            carol,
            pending,
        }
    }

    /// Runs the rest of the conversation, returning everything sent and received.
    pub fn carry_on(&mut self) -> Vec<String> {
        let World {
            alice,
            bob,
            carol,
            pending,
        } = self;
        let mut transcript = Vec::new();
        let mut log = |entry: String| transcript.push(entry);
        for (version, skipped, repeat, to_carol) in pending.iter() {
            let version = *version;
            // Delayed messages on the replaced session open from alice's previous session.
            for i in [1usize, 0] {
                let opened = receive(alice, bob, version, &skipped[i]).unwrap();
                assert_eq!(opened, [50 + i as u8; 32]);
                log(format!("{opened:?}"));
            }
            // Bob's repeated key exchange opens on the session it made.
            assert_eq!(receive(alice, bob, version, repeat).unwrap(), [61; 32]);
            let to_bob = send(alice, bob, version, &[80; 32]);
            log(format!("{to_bob:?}"));
            assert_eq!(receive(bob, alice, version, &to_bob).unwrap(), [80; 32]);
            let from_bob = send(bob, alice, version, &[81; 32]);
            assert!(!from_bob.key_exchange);
            log(format!("{from_bob:?}"));
            assert_eq!(receive(alice, bob, version, &from_bob).unwrap(), [81; 32]);
            // Carol answers alice's pending key exchange.
            assert_eq!(receive(carol, alice, version, to_carol).unwrap(), [70; 32]);
            let reply = send(carol, alice, version, &[90; 32]);
            log(format!("{reply:?}"));
            assert_eq!(receive(alice, carol, version, &reply).unwrap(), [90; 32]);
            let again = send(alice, carol, version, &[91; 32]);
            assert!(!again.key_exchange);
            log(format!("{again:?}"));
            // The rest of the skipped messages, and a replay.
            for i in [3usize, 2] {
                let opened = receive(alice, bob, version, &skipped[i]).unwrap();
                log(format!("{opened:?}"));
            }
            log(format!("{:?}", receive(alice, bob, version, &skipped[2])));
            log(format!(
                "{:?}",
                alice.pre_keys(version).pre_key_ids().collect::<Vec<_>>()
            ));
        }
        transcript
    }

    fn snapshots(&self) -> [Vec<u8>; 3] {
        [
            snapshot(&self.alice),
            snapshot(&self.bob),
            snapshot(&self.carol),
        ]
    }
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

#[test]
fn fresh_device_round_trips() {
    let device = OmemoDevice::generate("alice@example.org", 1001, NOW, &mut TestRng::new(1));
    let restored = round_trip(&device);
    assert_eq!(restored.jid(), "alice@example.org");
    assert_eq!(restored.device_id(), 1001);
    assert_eq!(restored.identity().seed(), device.identity().seed());
    assert_eq!(
        restored.identity().fingerprint(),
        device.identity().fingerprint()
    );
    for version in VERSIONS {
        assert_eq!(restored.bundle(version), device.bundle(version));
        VerifiedBundle::from_element(&restored.bundle(version).to_element()).unwrap();
        let ids: Vec<u32> = restored.pre_keys(version).pre_key_ids().collect();
        assert_eq!(ids, (1..=100).collect::<Vec<_>>());
        assert_eq!(
            restored.pre_keys(version).signed_pre_key().created(),
            device.pre_keys(version).signed_pre_key().created()
        );
    }
    // Two saves never share bytes (fresh nonce), and the restored device saves the same state.
    assert_ne!(device.save(&KEY), device.save(&KEY));
    // Debug output shows no secret.
    let seed = device.identity().seed().unwrap();
    let seed_hex: String = seed.iter().map(|b| format!("{b:02x}")).collect();
    let debug = format!("{restored:?}");
    assert!(!debug.contains(&seed_hex) && !debug.contains(&format!("{:?}", &seed[..8])));
}

#[test]
fn restored_devices_carry_on_exactly_as_the_originals() {
    let world = World::new();
    let mut restored = World {
        alice: round_trip(&world.alice),
        bob: round_trip(&world.bob),
        carol: round_trip(&world.carol),
        pending: world.pending.clone(),
    };
    // The states are all there: previous sessions, both versions, pending exchanges.
    for (store_a, store_b) in [
        (
            count_states(restored.alice.omemo2_sessions()),
            count_states(world.alice.omemo2_sessions()),
        ),
        (
            count_states(restored.alice.omemo03_sessions()),
            count_states(world.alice.omemo03_sessions()),
        ),
    ] {
        assert_eq!(store_a, store_b);
        assert_eq!(
            store_a,
            vec![2, 1],
            "bob: current and previous; carol: pending"
        );
    }
    let mut original = world.clone();
    let expected = original.carry_on();
    assert_eq!(restored.carry_on(), expected);
    assert_eq!(restored.snapshots(), original.snapshots());
}

fn count_states<P: OmemoProfile>(store: &SessionStore<P>) -> Vec<usize> {
    store
        .devices()
        .map(|(jid, id)| 1 + store.get(jid, id).unwrap().previous().count())
        .collect()
}

#[test]
fn restore_mid_conversation_repeatedly() {
    // Saving and restoring after every step changes nothing about the conversation.
    let world = World::new();
    let mut original = world.clone();
    let expected = original.carry_on();
    let mut stepwise = world;
    let mut transcript = Vec::new();
    let pending = stepwise.pending.clone();
    for (version, skipped, repeat, to_carol) in &pending {
        let version = *version;
        let w = |stepwise: &mut World| {
            stepwise.alice = round_trip(&stepwise.alice);
            stepwise.bob = round_trip(&stepwise.bob);
            stepwise.carol = round_trip(&stepwise.carol);
        };
        for i in [1usize, 0] {
            w(&mut stepwise);
            let opened = receive(&mut stepwise.alice, &stepwise.bob, version, &skipped[i]);
            transcript.push(format!("{:?}", opened.unwrap()));
        }
        w(&mut stepwise);
        receive(&mut stepwise.alice, &stepwise.bob, version, repeat).unwrap();
        w(&mut stepwise);
        let to_bob = send(&mut stepwise.alice, &stepwise.bob, version, &[80; 32]);
        transcript.push(format!("{to_bob:?}"));
        w(&mut stepwise);
        receive(&mut stepwise.bob, &stepwise.alice, version, &to_bob).unwrap();
        w(&mut stepwise);
        let from_bob = send(&mut stepwise.bob, &stepwise.alice, version, &[81; 32]);
        transcript.push(format!("{from_bob:?}"));
        w(&mut stepwise);
        receive(&mut stepwise.alice, &stepwise.bob, version, &from_bob).unwrap();
        w(&mut stepwise);
        receive(&mut stepwise.carol, &stepwise.alice, version, to_carol).unwrap();
        w(&mut stepwise);
        let reply = send(&mut stepwise.carol, &stepwise.alice, version, &[90; 32]);
        transcript.push(format!("{reply:?}"));
        w(&mut stepwise);
        receive(&mut stepwise.alice, &stepwise.carol, version, &reply).unwrap();
        w(&mut stepwise);
        let again = send(&mut stepwise.alice, &stepwise.carol, version, &[91; 32]);
        transcript.push(format!("{again:?}"));
        for i in [3usize, 2] {
            w(&mut stepwise);
            let opened = receive(&mut stepwise.alice, &stepwise.bob, version, &skipped[i]);
            transcript.push(format!("{:?}", opened.unwrap()));
        }
        w(&mut stepwise);
        let replay = receive(&mut stepwise.alice, &stepwise.bob, version, &skipped[2]);
        transcript.push(format!("{replay:?}"));
        transcript.push(format!(
            "{:?}",
            stepwise
                .alice
                .pre_keys(version)
                .pre_key_ids()
                .collect::<Vec<_>>()
        ));
    }
    assert_eq!(transcript, expected);
    assert_eq!(stepwise.snapshots(), original.snapshots());
}

/// Single sessions of version `P`: every state alice and bob hold, saved and restored alone,
/// sends the same bytes as the original and is understood by the peer.
fn single_sessions_carry_on<P: OmemoProfile>(
    version: Version,
    sessions: fn(&OmemoDevice) -> &SessionStore<P>,
) {
    let world = World::new();
    let (alice, bob, carol) = (&world.alice, &world.bob, &world.carol);
    let mut states = 0;
    for device in [alice, bob] {
        for (jid, id) in sessions(device).devices() {
            let slot = sessions(device).get(jid, id).unwrap();
            for session in std::iter::once(slot.current()).chain(slot.previous()) {
                let restored = OmemoSession::<P>::restore(&session.save(&KEY), &KEY).unwrap();
                assert_eq!(session_snapshot(&restored), session_snapshot(session));
                assert_eq!(restored.base_key(), session.base_key());
                assert_eq!(restored.their_identity(), session.their_identity());
                assert_eq!(restored.is_initiator(), session.is_initiator());
                assert_eq!(restored.sends_key_exchange(), session.sends_key_exchange());
                let (mut a, mut b) = (session.clone(), restored);
                let sent_a = a.encrypt_with_rng(&[5; 32], &mut TestRng::new(9));
                let sent_b = b.encrypt_with_rng(&[5; 32], &mut TestRng::new(9));
                assert_eq!(sent_a, sent_b);
                assert_eq!(session_snapshot(&a), session_snapshot(&b));
                states += 1;
            }
        }
    }
    assert_eq!(states, 5, "alice: bob ×2, carol; bob: alice ×2");

    // The pending exchange to carol, restored, still opens a session at carol.
    let pending = sessions(alice).get(carol.jid(), 3003).unwrap().current();
    assert!(pending.sends_key_exchange());
    let mut restored = OmemoSession::<P>::restore(&pending.save(&KEY), &KEY).unwrap();
    let kex = restored
        .encrypt_with_rng(&[6; 32], &mut TestRng::new(4))
        .unwrap();
    assert!(kex.key_exchange);
    let mut carol = carol.clone();
    assert_eq!(receive(&mut carol, alice, version, &kex).unwrap(), [6; 32]);

    // Alice's session with bob, restored, is understood by bob.
    let current = sessions(alice).get(bob.jid(), 2002).unwrap().current();
    let mut restored = OmemoSession::<P>::restore(&current.save(&KEY), &KEY).unwrap();
    let message = restored
        .encrypt_with_rng(&[7; 32], &mut TestRng::new(4))
        .unwrap();
    let mut bob = bob.clone();
    assert_eq!(
        receive(&mut bob, alice, version, &message).unwrap(),
        [7; 32]
    );
}

#[test]
fn single_omemo2_sessions_round_trip_in_every_state() {
    single_sessions_carry_on::<Omemo2>(Version::Omemo2, OmemoDevice::omemo2_sessions);
}

#[test]
fn single_omemo03_sessions_round_trip_in_every_state() {
    single_sessions_carry_on::<Omemo03>(Version::Omemo03, OmemoDevice::omemo03_sessions);
}

#[test]
fn imported_curve25519_identity_round_trips() {
    let mut rng = TestRng::new(40);
    let secret = rng.bytes::<32>();
    let signed = rng.bytes::<32>();
    let pre_keys: Vec<(u32, [u8; 32])> = (500..510).map(|id| (id, rng.bytes())).collect();
    let dave = imported_device(
        ("dave@example.org", 4004),
        &secret,
        (9, &signed),
        &pre_keys,
        &mut rng,
    );
    let restored = round_trip(&dave);
    assert!(restored.identity().seed().is_none());
    assert_eq!(*restored.identity().curve25519_secret().to_bytes(), secret);
    assert_eq!(
        restored.identity().ed25519_key(),
        dave.identity().ed25519_key()
    );
    assert_eq!(
        restored.identity().curve25519_key(),
        dave.identity().curve25519_key()
    );
    for version in VERSIONS {
        let bundle = restored.bundle(version);
        assert_eq!(bundle, dave.bundle(version));
        VerifiedBundle::from_element(&bundle.to_element()).unwrap();
        assert_eq!(bundle.signed_pre_key_id(), 9);
        assert_eq!(
            restored
                .identity()
                .sign_with_rng(version, b"label", &mut TestRng::new(3)),
            dave.identity()
                .sign_with_rng(version, b"label", &mut TestRng::new(3))
        );
    }
    // A peer starts sessions from the restored bundles; the restored device answers them.
    let mut restored = restored;
    let mut original = dave.clone();
    let mut erin = OmemoDevice::generate("erin@example.org", 5005, NOW, &mut TestRng::new(41));
    for version in VERSIONS {
        erin.build_session(
            restored.jid(),
            4004,
            &restored.bundle(version),
            &mut TestRng::new(42),
        )
        .unwrap();
        let kex = send(&mut erin, &restored, version, &[8; 32]);
        let used = restored
            .decrypt_key(version, erin.jid(), 5005, &kex, &mut TestRng::new(43))
            .unwrap();
        assert!((500..510).contains(&used.pre_key_used.unwrap()));
        original
            .decrypt_key(version, erin.jid(), 5005, &kex, &mut TestRng::new(43))
            .unwrap();
        let reply = send(&mut restored, &erin, version, &[9; 32]);
        assert_eq!(reply, send(&mut original, &erin, version, &[9; 32]));
        assert_eq!(
            receive(&mut erin, &restored, version, &reply).unwrap(),
            [9; 32]
        );
    }
    assert_eq!(snapshot(&restored), snapshot(&original));
    assert_eq!(snapshot(&round_trip(&restored)), snapshot(&original));
}

#[test]
fn previous_signed_pre_key_survives_in_its_grace_period() {
    let mut bob = OmemoDevice::generate("bob@example.net", 2002, NOW, &mut TestRng::new(50));
    let old: Vec<VerifiedBundle> = VERSIONS.iter().map(|v| bob.bundle(*v)).collect();
    let week_later = Timestamp::from_millis(NOW.as_millis() + 8 * DAY);
    assert_eq!(bob.maintain(week_later, &mut TestRng::new(51)), VERSIONS);
    let mut restored = round_trip(&bob);
    for (version, old) in VERSIONS.iter().zip(&old) {
        let version = *version;
        let current = restored.bundle(version);
        assert_eq!(current, bob.bundle(version));
        assert_ne!(current.signed_pre_key_id(), old.signed_pre_key_id());
        assert_eq!(
            restored.pre_keys(version).signed_pre_key().created(),
            week_later
        );
        // A key exchange made from the old bundle opens on the restored device.
        let mut alice =
            OmemoDevice::generate("alice@example.org", 1001, NOW, &mut TestRng::new(52));
        alice
            .build_session(bob.jid(), 2002, old, &mut TestRng::new(53))
            .unwrap();
        let kex = send(&mut alice, &bob, version, &[1; 32]);
        let used = restored
            .decrypt_key(version, alice.jid(), 1001, &kex, &mut TestRng::new(54))
            .unwrap()
            .pre_key_used
            .unwrap();
        bob.decrypt_key(version, alice.jid(), 1001, &kex, &mut TestRng::new(54))
            .unwrap();
        assert_eq!(snapshot(&restored), snapshot(&bob));

        // The used pre-key stays used after another restore.
        restored = round_trip(&restored);
        let mut replay = old.clone();
        replay.retain_pre_keys(|(id, _)| *id == used);
        assert_eq!(replay.pre_keys().len(), 1);
        let mut mallory =
            OmemoDevice::generate("mallory@example.org", 6006, NOW, &mut TestRng::new(55));
        mallory
            .build_session(bob.jid(), 2002, &replay, &mut TestRng::new(56))
            .unwrap();
        let stale = send(&mut mallory, &bob, version, &[2; 32]);
        assert_eq!(
            restored
                .decrypt_key(version, mallory.jid(), 6006, &stale, &mut TestRng::new(57))
                .unwrap_err(),
            DeviceError::Session(SessionError::PreKey(PreKeyError::PreKeyUsed(used)))
        );
    }

    // Past the grace period both forget the old signed pre-key alike.
    let later = Timestamp::from_millis(week_later.as_millis() + 31 * DAY);
    let mut bob_later = bob.clone();
    let mut restored_later = round_trip(&restored);
    assert_eq!(
        bob_later.maintain(later, &mut TestRng::new(58)),
        restored_later.maintain(later, &mut TestRng::new(58))
    );
    assert_eq!(snapshot(&round_trip(&restored_later)), snapshot(&bob_later));
    let mut alice = OmemoDevice::generate("alice@example.org", 1001, NOW, &mut TestRng::new(59));
    alice
        .build_session(bob.jid(), 2002, &old[0], &mut TestRng::new(60))
        .unwrap();
    let kex = send(&mut alice, &bob, Version::Omemo2, &[3; 32]);
    assert_eq!(
        restored_later
            .decrypt_key(
                Version::Omemo2,
                alice.jid(),
                1001,
                &kex,
                &mut TestRng::new(61)
            )
            .unwrap_err(),
        DeviceError::Session(SessionError::PreKey(PreKeyError::UnknownSignedPreKey(
            old[0].signed_pre_key_id()
        )))
    );
}

#[test]
fn longest_jids_round_trip() {
    // RFC 7622: up to 1023 bytes each for the local part, domain part and resource.
    let part = |c: &str| c.repeat(1023);
    let jid = format!("{}@{}/{}", part("l"), part("d"), part("r"));
    assert_eq!(jid.len(), 3071);
    let mut device = OmemoDevice::generate(&jid, 1, NOW, &mut TestRng::new(70));
    let peer = OmemoDevice::generate(&jid, 2, NOW, &mut TestRng::new(71));
    device
        .build_session(
            &jid,
            2,
            &peer.bundle(Version::Omemo2),
            &mut TestRng::new(72),
        )
        .unwrap();
    let restored = round_trip(&device);
    assert_eq!(restored.jid(), jid);
    assert!(restored.has_session(Version::Omemo2, &jid, 2));
}

#[test]
fn stored_sizes() {
    let fresh = OmemoDevice::generate("alice@example.org", 1001, NOW, &mut TestRng::new(1));
    let size = fresh.save(&KEY).len();
    // Envelope 46; schema, JID, device id, identity 126; per version 6966 (signed pre-key 140,
    // 100 pre-keys of 68, no used ids, no sessions, the usage clock).
    assert_eq!(size, 46 + 4 + 4 + 17 + 4 + 97 + 2 * 6966);

    let mut alice = fresh;
    let mut pending = alice.clone();
    for i in 0..5u32 {
        for version in VERSIONS {
            let mut peer = OmemoDevice::generate(
                &format!("peer{i}@example.org"),
                100 + i,
                NOW,
                &mut TestRng::new(u64::from(i)),
            );
            for device in [&mut alice, &mut pending] {
                device
                    .build_session(
                        peer.jid(),
                        peer.device_id(),
                        &peer.bundle(version),
                        &mut TestRng::new(5),
                    )
                    .unwrap();
            }
            let kex = send(&mut alice, &peer, version, &[1; 32]);
            receive(&mut peer, &alice, version, &kex).unwrap();
            let reply = send(&mut peer, &alice, version, &[2; 32]);
            receive(&mut alice, &peer, version, &reply).unwrap();
        }
    }
    let established = alice.save(&KEY).len();
    let pending = pending.save(&KEY).len();
    eprintln!(
        "device, no sessions: {size} bytes; with 10 sessions (5 per version) pending: {pending} \
         bytes, after one exchange each way: {established} bytes"
    );
    assert!(established < size + 10 * 500);
}
