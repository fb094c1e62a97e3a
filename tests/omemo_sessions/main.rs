//! OMEMO sessions between olmo devices, both versions: key exchange repeated until the first
//! reply, empty messages, out-of-order delivery, heartbeats, replaced sessions that still open
//! delayed messages, pre-key consumption, and hostile input that leaves the state unchanged.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod bad_input;
#[path = "../common/mod.rs"]
mod common;
mod identity_change;
mod messages;

use olmo::megolm::Timestamp;
use olmo::omemo::session::HEARTBEAT_THRESHOLD;
use olmo::omemo::{DecryptedKey, DeviceError, OmemoDevice, SealedKey, SessionError, Version};
use olmo::ratchet::DecryptError;

pub const VERSIONS: [Version; 2] = [Version::Omemo2, Version::Omemo03];

pub fn pair(version: Version) -> (OmemoDevice, OmemoDevice) {
    let mut rng = rand::rng();
    let now = Timestamp::from_millis(1_700_000_000_000);
    let mut alice = OmemoDevice::generate("alice@example.org", 1001, now, &mut rng);
    let bob = OmemoDevice::generate("bob@example.org", 2002, now, &mut rng);
    alice
        .build_session("bob@example.org", 2002, &bob.bundle(version), &mut rng)
        .unwrap();
    (alice, bob)
}

pub fn send(
    from: &mut OmemoDevice,
    to: &OmemoDevice,
    version: Version,
    material: &[u8],
) -> SealedKey {
    from.encrypt_key(
        version,
        to.jid(),
        to.device_id(),
        material,
        &mut rand::rng(),
    )
    .unwrap()
}

/// `to` decrypts a key `from` sent.
pub fn decrypt(
    to: &mut OmemoDevice,
    from: &OmemoDevice,
    version: Version,
    key: &SealedKey,
) -> Result<DecryptedKey, DeviceError> {
    to.decrypt_key(version, from.jid(), from.device_id(), key, &mut rand::rng())
}

/// The key material `to` decrypts.
pub fn receive(
    to: &mut OmemoDevice,
    from: &OmemoDevice,
    version: Version,
    key: &SealedKey,
) -> Result<Vec<u8>, DeviceError> {
    decrypt(to, from, version, key).map(|d| d.decrypted.key_material.to_vec())
}

/// `from` sends `material` to `to`, which must open it. The key sent.
pub fn deliver(
    from: &mut OmemoDevice,
    to: &mut OmemoDevice,
    version: Version,
    material: &[u8],
) -> SealedKey {
    let key = send(from, to, version, material);
    assert_eq!(receive(to, from, version, &key).unwrap(), material);
    key
}

#[test]
fn key_exchange_repeats_until_the_first_reply() {
    for version in VERSIONS {
        let (mut alice, mut bob) = pair(version);
        let first = send(&mut alice, &bob, version, &[1; 32]);
        let second = send(&mut alice, &bob, version, &[2; 32]);
        assert!(first.key_exchange && second.key_exchange);
        assert_eq!(receive(&mut bob, &alice, version, &first).unwrap(), [1; 32]);
        // The repeat opens on the same session, not a new one.
        let repeat = decrypt(&mut bob, &alice, version, &second).unwrap();
        assert!(!repeat.new_session);
        assert_eq!(&repeat.decrypted.key_material[..], [2; 32]);

        let reply = deliver(&mut bob, &mut alice, version, &[0; 32]);
        assert!(!reply.key_exchange);
        let third = deliver(&mut alice, &mut bob, version, &[3; 32]);
        assert!(
            !third.key_exchange,
            "{version:?}: key exchange after the reply"
        );
    }
}

#[test]
fn pre_key_is_consumed_only_once_the_exchange_decrypts() {
    for version in VERSIONS {
        let (mut alice, mut bob) = pair(version);
        let before: Vec<u32> = bob.pre_keys(version).pre_key_ids().collect();
        let mut first = send(&mut alice, &bob, version, &[1; 32]);
        let last = first.data.len() - 1;
        first.data[last] ^= 1;
        assert!(receive(&mut bob, &alice, version, &first).is_err());
        let after_failure: Vec<u32> = bob.pre_keys(version).pre_key_ids().collect();
        assert_eq!(
            before, after_failure,
            "a failed exchange consumed a pre-key"
        );
        first.data[last] ^= 1;
        let opened = decrypt(&mut bob, &alice, version, &first).unwrap();
        let used = opened.pre_key_used.expect("a pre-key was used");
        assert!(!bob.pre_keys(version).pre_key_ids().any(|id| id == used));
        assert_eq!(bob.pre_keys(version).pre_key_ids().count(), 100, "refilled");
    }
}

#[test]
fn out_of_order_and_ping_pong() {
    for version in VERSIONS {
        let (mut alice, mut bob) = pair(version);
        deliver(
            &mut alice,
            &mut bob,
            version,
            b"first key material..............",
        );
        for round in 0..4u8 {
            let messages: Vec<_> = (0..6u8)
                .map(|i| send(&mut bob, &alice, version, &[round, i]))
                .collect();
            for i in [5usize, 0, 3, 1, 4, 2] {
                let opened = receive(&mut alice, &bob, version, &messages[i]).unwrap();
                assert_eq!(opened, [round, i as u8]);
            }
            // A replay is refused and changes nothing.
            assert!(matches!(
                receive(&mut alice, &bob, version, &messages[2]),
                Err(DeviceError::Session(SessionError::Decrypt(
                    DecryptError::Duplicate { .. }
                )))
            ));
            deliver(&mut alice, &mut bob, version, &[round]);
        }
    }
}

#[test]
fn heartbeat_is_due_when_a_chain_starts_late() {
    for version in VERSIONS {
        let (mut alice, mut bob) = pair(version);
        deliver(&mut alice, &mut bob, version, &[0; 32]);
        deliver(&mut bob, &mut alice, version, &[0; 32]);
        let burst: Vec<_> = (0..=HEARTBEAT_THRESHOLD)
            .map(|_| send(&mut alice, &bob, version, &[7; 32]))
            .collect();
        let late = decrypt(&mut bob, &alice, version, burst.last().unwrap()).unwrap();
        assert!(late.decrypted.heartbeat_due, "{version:?}");
        let early = decrypt(&mut bob, &alice, version, &burst[0]).unwrap();
        assert!(!early.decrypted.heartbeat_due);
    }
}

#[test]
fn a_new_key_exchange_keeps_the_old_session_for_delayed_messages() {
    for version in VERSIONS {
        let (mut alice, mut bob) = pair(version);
        deliver(&mut alice, &mut bob, version, &[1; 32]);
        let delayed = send(&mut alice, &bob, version, &[2; 32]);
        // Alice loses her session and starts again from Bob's bundle.
        alice
            .build_session(
                bob.jid(),
                bob.device_id(),
                &bob.bundle(version),
                &mut rand::rng(),
            )
            .unwrap();
        let fresh = send(&mut alice, &bob, version, &[3; 32]);
        let opened = decrypt(&mut bob, &alice, version, &fresh).unwrap();
        assert!(opened.new_session);
        assert_eq!(
            receive(&mut bob, &alice, version, &delayed).unwrap(),
            [2; 32]
        );
    }
}

#[test]
fn too_far_ahead_is_refused() {
    for version in VERSIONS {
        let (mut alice, mut bob) = pair(version);
        deliver(&mut alice, &mut bob, version, &[1; 32]);
        let limit = match version {
            Version::Omemo2 => 1000,
            Version::Omemo03 => 2000,
        };
        let mut last = None;
        for _ in 0..=limit + 1 {
            last = Some(send(&mut alice, &bob, version, &[9; 32]));
        }
        assert!(matches!(
            receive(&mut bob, &alice, version, &last.unwrap()),
            Err(DeviceError::Session(SessionError::Decrypt(
                DecryptError::TooFarAhead { .. }
            )))
        ));
    }
}

#[test]
fn new_key_exchanges_evict_unanswered_previous_sessions_first() {
    for version in VERSIONS {
        let (mut alice, mut bob) = pair(version);
        deliver(&mut alice, &mut bob, version, &[1; 32]);
        deliver(&mut bob, &mut alice, version, &[2; 32]);
        // Bob's session is answered once Alice replies on a new ratchet key.
        deliver(&mut alice, &mut bob, version, &[3; 32]);
        let delayed = send(&mut alice, &bob, version, &[4; 32]);
        // More fresh starts than previous states are kept, none of them answered.
        for _ in 0..olmo::omemo::store::MAX_PREVIOUS_SESSIONS + 2 {
            let mut restart = alice.clone();
            restart
                .build_session(
                    bob.jid(),
                    bob.device_id(),
                    &bob.bundle(version),
                    &mut rand::rng(),
                )
                .unwrap();
            let kex = send(&mut restart, &bob, version, &[5; 32]);
            assert!(
                decrypt(&mut bob, &alice, version, &kex)
                    .unwrap()
                    .new_session
            );
        }
        assert_eq!(
            receive(&mut bob, &alice, version, &delayed).unwrap(),
            [4; 32]
        );
    }
}
