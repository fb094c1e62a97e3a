//! Whole `<encrypted>` elements: a stripped payload is not an empty message, every key addressed
//! to us is tried (a bounded number), and a bad MAC is told without unwrapping errors.

use olmo::omemo::stanza::EncryptedElement;
use olmo::omemo::{FailureReason, MAX_KEY_ATTEMPTS, MessageError, OmemoDevice, Version};

use super::common::rng::TestRng;
use super::{VERSIONS, pair};
use olmo::persist::StorageKey;

pub const KEY: StorageKey = StorageKey::from_bytes([7; 32]);

/// The device as stored under a fixed nonce: equal snapshots mean equal state.
pub fn snapshot(device: &OmemoDevice) -> Vec<u8> {
    device.save_with_rng(&KEY, &mut TestRng::new(0))
}

fn message(
    from: &mut OmemoDevice,
    to: &OmemoDevice,
    version: Version,
    text: &[u8],
) -> EncryptedElement {
    from.encrypt_message(
        version,
        &[(to.jid(), to.device_id())],
        text,
        &mut rand::rng(),
    )
    .unwrap()
}

fn open(
    to: &mut OmemoDevice,
    from: &OmemoDevice,
    element: &EncryptedElement,
) -> Result<Vec<u8>, MessageError> {
    to.decrypt_message(from.jid(), element, &mut rand::rng())
        .map(|m| m.plaintext.map(|p| p.to_vec()).unwrap_or_default())
}

/// Alice and Bob after a first message and Bob's empty reply: Alice no longer sends the key
/// exchange.
fn confirmed(version: Version) -> (OmemoDevice, OmemoDevice) {
    let (mut alice, mut bob) = pair(version);
    let first = message(&mut alice, &bob, version, b"hello");
    assert_eq!(open(&mut bob, &alice, &first).unwrap(), b"hello");
    let reply = bob
        .encrypt_empty(
            version,
            &[(alice.jid(), alice.device_id())],
            &mut rand::rng(),
        )
        .unwrap();
    assert_eq!(open(&mut alice, &bob, &reply).unwrap(), b"");
    (alice, bob)
}

#[test]
fn a_stripped_payload_is_refused_and_the_genuine_copy_still_opens() {
    for version in VERSIONS {
        // On the first message (a key exchange) and on a later one.
        for later in [false, true] {
            let (mut alice, mut bob) = if later {
                confirmed(version)
            } else {
                pair(version)
            };
            let genuine = message(&mut alice, &bob, version, b"the real text");
            let mut stripped = genuine.clone();
            stripped.payload = None;
            let before = snapshot(&bob);
            let error = open(&mut bob, &alice, &stripped).unwrap_err();
            assert_eq!(error, MessageError::MissingPayload, "{version:?}");
            assert_eq!(error.reason(), FailureReason::Malformed);
            assert_eq!(snapshot(&bob), before, "{version:?}: state changed");
            assert_eq!(open(&mut bob, &alice, &genuine).unwrap(), b"the real text");
        }
    }
}

#[test]
fn a_removed_iv_is_refused_without_change() {
    let version = Version::Omemo03;
    let (mut alice, mut bob) = confirmed(version);
    let genuine = message(&mut alice, &bob, version, b"text");
    let mut stripped = genuine.clone();
    stripped.iv = None;
    let before = snapshot(&bob);
    assert_eq!(
        open(&mut bob, &alice, &stripped),
        Err(MessageError::MissingIv)
    );
    assert_eq!(snapshot(&bob), before);
    assert_eq!(open(&mut bob, &alice, &genuine).unwrap(), b"text");
}

#[test]
fn empty_messages_still_open_as_empty() {
    for version in VERSIONS {
        let (mut alice, mut bob) = confirmed(version);
        let empty = alice
            .encrypt_empty(version, &[(bob.jid(), bob.device_id())], &mut rand::rng())
            .unwrap();
        let opened = bob
            .decrypt_message(alice.jid(), &empty, &mut rand::rng())
            .unwrap();
        assert!(opened.plaintext.is_none());
    }
}

/// The key element with its last byte flipped: the MAC no longer verifies.
fn garbled(element: &EncryptedElement) -> olmo::omemo::stanza::KeyElement {
    let mut key = element.keys[0].clone();
    *key.data.last_mut().unwrap() ^= 1;
    key
}

#[test]
fn every_key_addressed_to_us_is_tried_and_a_bad_one_changes_nothing() {
    for version in VERSIONS {
        let (mut alice, mut bob) = confirmed(version);
        let genuine = message(&mut alice, &bob, version, b"second key");
        let mut only_bad = genuine.clone();
        only_bad.keys = vec![garbled(&genuine)];
        let before = snapshot(&bob);
        let error = open(&mut bob, &alice, &only_bad).unwrap_err();
        assert_eq!(
            error.reason(),
            FailureReason::BadMac,
            "{version:?}: {error:?}"
        );
        assert_eq!(snapshot(&bob), before);

        let mut two = genuine.clone();
        two.keys.insert(0, garbled(&genuine));
        assert_eq!(open(&mut bob, &alice, &two).unwrap(), b"second key");
        // Committed once: the genuine element is now a duplicate.
        let error = open(&mut bob, &alice, &genuine).unwrap_err();
        assert_eq!(error.reason(), FailureReason::Duplicate);
    }
}

#[test]
fn key_attempts_are_bounded() {
    for version in VERSIONS {
        let (mut alice, mut bob) = confirmed(version);
        let genuine = message(&mut alice, &bob, version, b"too late");
        let mut many = genuine.clone();
        many.keys = vec![garbled(&genuine); MAX_KEY_ATTEMPTS];
        many.keys.push(genuine.keys[0].clone());
        let before = snapshot(&bob);
        assert_eq!(
            open(&mut bob, &alice, &many).unwrap_err().reason(),
            FailureReason::BadMac
        );
        assert_eq!(snapshot(&bob), before);
        assert_eq!(open(&mut bob, &alice, &genuine).unwrap(), b"too late");
    }
}

#[test]
fn a_message_that_cannot_reach_every_device_advances_no_session() {
    for version in VERSIONS {
        // Alice's next message starts a ratchet step (Bob's reply came in): the step, too,
        // must stay unwritten when another recipient fails.
        let (mut alice, bob) = confirmed(version);
        let before = snapshot(&alice);
        let known = (bob.jid(), bob.device_id());
        let unknown = ("carol@example.org", 7);
        for recipients in [[known, unknown], [unknown, known]] {
            let result = alice.encrypt_message(version, &recipients, b"hi", &mut rand::rng());
            assert!(matches!(
                result,
                Err(olmo::omemo::DeviceError::NoSession { device_id: 7, .. })
            ));
            assert_eq!(snapshot(&alice), before);
        }
    }
}
