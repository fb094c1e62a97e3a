//! OMEMO 0.3 (`eu.siacs.conversations.axolotl`) between olmo and the real libsignal
//! (`@signalapp/libsignal-client` 0.72.1 in Node, `tests/peers/libsignal/peer.mjs`), both
//! directions: sessions either side starts, key exchanges repeated until the first reply,
//! ping-pong, out-of-order and skipped messages, whole payloads, heartbeats, bundles without
//! one-time pre-keys, crossed and replaced sessions, a rotated signed pre-key, pre-key ids 0 and
//! 2^32 − 1, XEdDSA signatures, an identity moved from libsignal to olmo, and damaged traffic.
//!
//! What goes over the session is what an OMEMO 0.3 client encrypts per device: 32 bytes of key
//! material (AES-128-GCM key ‖ tag). libsignal only carries it; olmo also opens the payload.
//!
//! Version bytes. The first byte of every message is `(message version << 4) | current
//! version`, and the SignalMessage's byte is covered by its MAC (the PreKeySignalMessage's is
//! not).
//! - olmo writes `0x33` (message version 3, current version 3), in the key exchange and in the
//!   SignalMessage inside it.
//! - libsignal 0.72.1 writes `0x34` (message version 3 from a client whose current version is 4)
//!   for these X3DH sessions, and reads any byte whose high nibble is 3 (`0x33`, `0x34`, and even
//!   `0x35`…`0x3f`): it looks at the message version only.
//! - python-oldmemo accepts only `0x33`.
//! - olmo reads `0x33` and `0x34` only, and refuses every other byte with
//!   `DecodeError::UnsupportedVersion` (so a flipped bit in the unauthenticated key-exchange
//!   byte never goes unnoticed).
//!
//! The registration id in a PreKeySignalMessage is authenticated by neither side; olmo ignores
//! it, so changing it does not stop the key exchange from opening (shown below).
//!
//! Skipped messages: libsignal jumps up to 25000 messages ahead in a chain, olmo (like
//! libsignal-java and libomemo-c) up to 2000; beyond that olmo answers
//! `DecryptError::TooFarAhead`.
//!
//! Every test spawns its own peer; run `.ci/setup-node.sh` first.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../common/mod.rs"]
mod common;
mod support;

use common::hex::hex;
use olmo::DecodeError;
use olmo::crypto::{CipherError, Curve25519PublicKey, Curve25519SecretKey, SignBit, XEdDsaError};
use olmo::megolm::Timestamp;
use olmo::omemo::payload::{decrypt_omemo03, encrypt_omemo03};
use olmo::omemo::prekeys::PreKeyError;
use olmo::omemo::session::HEARTBEAT_THRESHOLD;
use olmo::omemo::{
    BundleError, DecryptedKey, DeviceError, DeviceIdentity, IdentityKey, OmemoDevice, PreKeys,
    SealedKey, SessionError, VerifiedBundle, Version, stanza,
};
use olmo::ratchet::DecryptError;
use serde_json::json;
use support::{
    OLMO_DEVICE, OLMO_JID, Sent, Signal, V, field, inner_message, material, now, olmo_device,
    random,
};

const OLMO: (&str, u32) = (OLMO_JID, OLMO_DEVICE);
const ALICE: (&str, u32) = ("alice@example.org", 7);
const BOB: (&str, u32) = ("bob@example.org", 3);

/// A libsignal device and the olmo device it talks to: its name in the peer, its address, and
/// olmo's.
#[derive(Clone, Copy)]
struct Link<'a> {
    name: &'a str,
    address: (&'a str, u32),
    olmo: (&'a str, u32),
}

const LS_ALICE: Link<'static> = Link {
    name: "alice",
    address: ALICE,
    olmo: OLMO,
};
const LS_BOB: Link<'static> = Link {
    name: "bob",
    address: BOB,
    olmo: OLMO,
};

/// A libsignal peer, and a fresh olmo device at [`OLMO`].
fn start() -> (Signal, OmemoDevice) {
    (Signal::start(), olmo_device(OLMO_JID, OLMO_DEVICE))
}

/// libsignal makes device `name` (`options` as for [`Signal::device_new`]) and builds its session
/// to olmo from `bundle`, on the one-time pre-key at `index` (`None`: on none).
fn ls_session_to_olmo(
    ls: &mut Signal,
    name: &str,
    options: serde_json::Value,
    bundle: &VerifiedBundle,
    index: Option<usize>,
) {
    ls.device_new(name, options);
    ls.process_olmo_bundle(name, OLMO, bundle, index).unwrap();
}

/// olmo decrypts a message libsignal sent.
fn receive(
    olmo: &mut OmemoDevice,
    from: (&str, u32),
    key: &SealedKey,
) -> Result<DecryptedKey, DeviceError> {
    olmo.decrypt_key(V, from.0, from.1, key, &mut rand::rng())
}

/// olmo decrypts, and it must work and give `expected`.
fn receive_ok(
    olmo: &mut OmemoDevice,
    from: (&str, u32),
    sent: &Sent,
    expected: &[u8],
) -> DecryptedKey {
    let decrypted = receive(olmo, from, &sent.key()).unwrap_or_else(|e| {
        panic!(
            "olmo refused libsignal's {} (counter {}): {e:?}",
            if sent.prekey { "prekey" } else { "whisper" },
            sent.counter
        )
    });
    assert_eq!(&decrypted.decrypted.key_material[..], expected);
    decrypted
}

/// olmo encrypts key material to a device.
fn send(olmo: &mut OmemoDevice, to: (&str, u32), material: &[u8]) -> SealedKey {
    let key = olmo
        .encrypt_key(V, to.0, to.1, material, &mut rand::rng())
        .unwrap();
    assert_eq!(key.data[0], 0x33, "olmo's version byte");
    key
}

/// olmo sends fresh key material (`material(tag)`) over `link`, and libsignal must open it. The
/// key, for checks on its form.
fn olmo_to_ls(ls: &mut Signal, olmo: &mut OmemoDevice, link: Link, tag: u8) -> SealedKey {
    let m = material(tag);
    let key = send(olmo, link.address, &m);
    assert_eq!(ls.decrypt(link.name, link.olmo, &key), m);
    key
}

/// libsignal sends fresh key material (`material(tag)`) over `link`, and olmo must open it. The
/// message, and what olmo made of it.
fn ls_to_olmo(
    ls: &mut Signal,
    olmo: &mut OmemoDevice,
    link: Link,
    tag: u8,
) -> (Sent, DecryptedKey) {
    let m = material(tag);
    let sent = ls.encrypt(link.name, link.olmo, &m);
    let decrypted = receive_ok(olmo, link.address, &sent, &m);
    (sent, decrypted)
}

/// `count` messages from olmo, with the key material each carries (`material(0)`, …), not yet
/// delivered.
fn olmo_batch(olmo: &mut OmemoDevice, to: (&str, u32), count: u8) -> Vec<(Vec<u8>, SealedKey)> {
    (0..count)
        .map(|i| {
            let m = material(i);
            let key = send(olmo, to, &m);
            (m, key)
        })
        .collect()
}

/// The `<key>` of an element as the device API takes it.
fn wire_key(key: &stanza::KeyElement) -> SealedKey {
    SealedKey {
        data: key.data.clone(),
        key_exchange: key.key_exchange,
    }
}

/// libsignal's device on `link` opens its key in olmo's `<encrypted>` element, and that key
/// material (an AES-128-GCM key and tag) opens the payload: the plaintext.
fn ls_opens_payload(ls: &mut Signal, link: Link, element: &stanza::EncryptedElement) -> Vec<u8> {
    let key = element.keys_for(None, link.address.1).next().unwrap();
    let key_material = ls.decrypt(link.name, link.olmo, &wire_key(key));
    assert_eq!(key_material.len(), 32);
    decrypt_omemo03(
        &key_material,
        element.iv.as_deref().unwrap(),
        element.payload.as_deref().unwrap(),
    )
    .unwrap()
    .to_vec()
}

/// olmo refuses libsignal's message whose version byte was rewritten to `byte`, unsupported.
fn assert_version_byte_refused(olmo: &mut OmemoDevice, from: (&str, u32), sent: &Sent, byte: u8) {
    assert_eq!(sent.body[0], byte);
    assert_eq!(
        receive(olmo, from, &sent.key()).err(),
        Some(DeviceError::Session(SessionError::Decode(
            DecodeError::UnsupportedVersion(byte.into())
        ))),
        "version byte {byte:#04x}"
    );
}

/// An olmo device at `address` whose OMEMO 0.3 pre-keys are imported: the signed pre-key and the
/// one-time pre-keys, with their ids. Its OMEMO 2 pre-keys are fresh.
fn imported_device(
    address: (&str, u32),
    identity: DeviceIdentity,
    signed_pre_key: (u32, &[u8; 32]),
    pre_keys: &[(u32, [u8; 32])],
) -> OmemoDevice {
    let mut rng = rand::rng();
    let omemo03 = PreKeys::import(&identity, V, signed_pre_key, pre_keys, now(), &mut rng);
    let omemo2 = PreKeys::generate(&identity, Version::Omemo2, now(), &mut rng);
    OmemoDevice::from_parts(address.0, address.1, identity, omemo2, omemo03)
}

/// Rounds of traffic on an established session, both sides sending one to three messages in a
/// row; none of it carries a key exchange any more.
fn ping_pong(ls: &mut Signal, olmo: &mut OmemoDevice, link: Link, rounds: usize) {
    for round in 0..rounds {
        for _ in 0..=(round % 3) {
            let (sent, d) = ls_to_olmo(ls, olmo, link, round as u8);
            assert!(
                !sent.prekey,
                "libsignal still sends key exchanges in round {round}"
            );
            assert_eq!(sent.body[0], 0x34);
            assert!(!d.new_session);
            assert!(!d.decrypted.heartbeat_due);
        }
        for _ in 0..=(round % 2) {
            let key = olmo_to_ls(ls, olmo, link, round as u8);
            assert!(
                !key.key_exchange,
                "olmo still sends key exchanges in round {round}"
            );
        }
    }
}

/// Messages delivered out of order both ways, also across ratchet steps, and a batch that was
/// never delivered (or delivered late), on an established session.
fn out_of_order(ls: &mut Signal, olmo: &mut OmemoDevice, link: Link) {
    // libsignal → olmo, in reverse.
    let batch: Vec<(Vec<u8>, Sent)> = (0..6)
        .map(|i| {
            let m = material(i);
            let sent = ls.encrypt(link.name, link.olmo, &m);
            (m, sent)
        })
        .collect();
    for (m, sent) in batch.iter().rev() {
        receive_ok(olmo, link.address, sent, m);
    }
    // olmo → libsignal, shuffled.
    let batch = olmo_batch(olmo, link.address, 6);
    for i in [3, 0, 5, 1, 4, 2] {
        assert_eq!(ls.decrypt(link.name, link.olmo, &batch[i].1), batch[i].0);
    }

    // Across a ratchet step: libsignal's message on its old chain arrives after one on the new.
    let old_m = material(10);
    let old = ls.encrypt(link.name, link.olmo, &old_m);
    olmo_to_ls(ls, olmo, link, 11);
    let new_m = material(12);
    let new = ls.encrypt(link.name, link.olmo, &new_m);
    receive_ok(olmo, link.address, &new, &new_m);
    receive_ok(olmo, link.address, &old, &old_m);
    // And olmo's old-chain message after its new-chain one.
    let old_m = material(13);
    let old = send(olmo, link.address, &old_m);
    ls_to_olmo(ls, olmo, link, 14);
    let new_m = material(15);
    let new = send(olmo, link.address, &new_m);
    assert_eq!(ls.decrypt(link.name, link.olmo, &new), new_m);
    assert_eq!(ls.decrypt(link.name, link.olmo, &old), old_m);

    // A skipped batch from libsignal: 150 messages never arrive.
    let m = material(16);
    let before = ls.encrypt(link.name, link.olmo, &material(17));
    let sent = ls.encrypt_with(link.name, link.olmo, &m, json!({"skip": 150}));
    assert_eq!(sent.counter, before.counter + 151);
    receive_ok(olmo, link.address, &sent, &m);
    // The one before the gap still opens late.
    receive(olmo, link.address, &before.key()).unwrap();
    // A skipped batch from olmo: 150 sent, the last delivered first, two of the rest late.
    let batch = olmo_batch(olmo, link.address, 150);
    for i in [149, 10, 75] {
        assert_eq!(ls.decrypt(link.name, link.olmo, &batch[i].1), batch[i].0);
    }
}

/// A whole OMEMO 0.3 message each way: olmo's `<encrypted>` element (XML round trip) whose key
/// libsignal opens and whose payload the key material opens; and libsignal's key around an
/// AES-GCM payload, opened by olmo's `decrypt_message`.
fn payloads(ls: &mut Signal, olmo: &mut OmemoDevice, link: Link) {
    let body = "Wherefore art thou, libsignal? ✓".as_bytes();
    let element = olmo
        .encrypt_message(V, &[link.address], body, &mut rand::rng())
        .unwrap();
    let element = stanza::EncryptedElement::parse(&element.serialize()).unwrap();
    assert_eq!(element.sender_device, link.olmo.1);
    let opened = ls_opens_payload(ls, link, &element);
    assert_eq!(opened, body);

    let body = "A rose by any other name".as_bytes();
    let sealed = encrypt_omemo03(body, &mut rand::rng());
    let sent = ls.encrypt(link.name, link.olmo, &sealed.key_material);
    let element = stanza::EncryptedElement {
        version: V,
        sender_device: link.address.1,
        keys: vec![stanza::KeyElement {
            jid: None,
            device_id: link.olmo.1,
            key_exchange: sent.prekey,
            data: sent.body.clone(),
        }],
        iv: Some(sealed.iv.to_vec()),
        payload: Some(sealed.ciphertext.clone()),
    };
    let element = stanza::EncryptedElement::parse(&element.serialize()).unwrap();
    let received = olmo
        .decrypt_message(link.address.0, &element, &mut rand::rng())
        .unwrap();
    assert_eq!(received.plaintext.as_deref().map(|p| &p[..]), Some(body));
    assert_eq!(received.sender_device, link.address.1);
}

// -------------------------------------------------------------------------------------------
// 1. libsignal starts the session

#[test]
fn libsignal_starts_a_session_with_olmo() {
    let (mut ls, mut olmo) = start();
    let bundle = olmo.bundle(V);
    let (pre_key_id, _) = bundle.pre_keys()[5];
    let options = json!({"device_id": ALICE.1, "registration_id": 4242});
    ls_session_to_olmo(&mut ls, "alice", options, &bundle, Some(5));

    // Three messages before any reply: each carries the key exchange.
    let materials: Vec<Vec<u8>> = (0..3).map(material).collect();
    let sent: Vec<Sent> = materials
        .iter()
        .map(|m| ls.encrypt("alice", OLMO, m))
        .collect();
    for (i, s) in sent.iter().enumerate() {
        assert!(s.prekey);
        assert_eq!(s.counter, i as u32);
    }
    // Delivered out of order: the last one makes the session and uses up the pre-key.
    let first = receive_ok(&mut olmo, ALICE, &sent[2], &materials[2]);
    assert!(first.new_session);
    assert_eq!(first.pre_key_used, Some(pre_key_id));
    assert!(!olmo.pre_keys(V).pre_key_ids().any(|id| id == pre_key_id));
    assert_eq!(olmo.pre_keys(V).pre_key_ids().count(), 100, "pool refilled");
    // The repeats open on that session.
    for i in [0, 1] {
        let d = receive_ok(&mut olmo, ALICE, &sent[i], &materials[i]);
        assert!(!d.new_session);
        assert_eq!(d.pre_key_used, None);
    }
    let slot = olmo.omemo03_sessions().get(ALICE.0, ALICE.1).unwrap();
    let (identity_key, _) = ls.identity("alice");
    assert_eq!(slot.current().their_identity().wire_bytes(), identity_key);
    assert!(!slot.current().is_initiator());

    // olmo answers: the responder never sends a key exchange.
    let reply = olmo_to_ls(&mut ls, &mut olmo, LS_ALICE, 3);
    assert!(!reply.key_exchange);
    let info = ls.session_info("alice", OLMO);
    assert_eq!(info["version"], 3);
    assert_eq!(info["pending_pre_key"], serde_json::Value::Null);
    assert_eq!(
        info["remote_identity_key"],
        hex(&olmo.identity().identity_key(V).wire_bytes())
    );

    ping_pong(&mut ls, &mut olmo, LS_ALICE, 6);
    out_of_order(&mut ls, &mut olmo, LS_ALICE);
    payloads(&mut ls, &mut olmo, LS_ALICE);

    // libsignal sends more than HEARTBEAT_THRESHOLD messages without an answer: olmo says a
    // heartbeat is due, and its empty message (a random 16-byte key) opens in libsignal.
    let m = material(30);
    let sent = ls.encrypt_with("alice", OLMO, &m, json!({"skip": HEARTBEAT_THRESHOLD}));
    assert!(sent.counter >= HEARTBEAT_THRESHOLD);
    let d = receive_ok(&mut olmo, ALICE, &sent, &m);
    assert!(d.decrypted.heartbeat_due);
    let empty = olmo.encrypt_empty(V, &[ALICE], &mut rand::rng()).unwrap();
    assert_eq!(empty.payload, None);
    let key = &empty.keys[0];
    assert_eq!(key.device_id, ALICE.1);
    assert_eq!(ls.decrypt("alice", OLMO, &wire_key(key)).len(), 16);
    ping_pong(&mut ls, &mut olmo, LS_ALICE, 3);
}

// -------------------------------------------------------------------------------------------
// Both sides start a session at once; either side replaces its session.

#[test]
fn crossed_and_replaced_sessions() {
    let (mut ls, mut olmo) = start();
    let theirs = ls.device_new("bob", json!({"device_id": BOB.1, "pre_keys": 10}));

    // Key exchanges cross in flight: each side ends up with two sessions.
    ls.process_olmo_bundle("bob", OLMO, &olmo.bundle(V), Some(1))
        .unwrap();
    olmo.build_session(BOB.0, BOB.1, &theirs.to_olmo(), &mut rand::rng())
        .unwrap();
    let m_ls = material(0);
    let from_ls = ls.encrypt("bob", OLMO, &m_ls);
    let m_olmo = material(1);
    let from_olmo = send(&mut olmo, BOB, &m_olmo);
    assert!(from_ls.prekey && from_olmo.key_exchange);
    assert!(receive_ok(&mut olmo, BOB, &from_ls, &m_ls).new_session);
    assert_eq!(ls.decrypt("bob", OLMO, &from_olmo), m_olmo);
    // olmo now sends on libsignal's session, libsignal on olmo's; the first message each way
    // settles both on one session (a state that decrypts becomes current, on both sides).
    let key = olmo_to_ls(&mut ls, &mut olmo, LS_BOB, 2);
    assert!(!key.key_exchange);
    ping_pong(&mut ls, &mut olmo, LS_BOB, 4);
    assert_eq!(
        olmo.omemo03_sessions()
            .get(BOB.0, BOB.1)
            .unwrap()
            .previous()
            .count(),
        1
    );

    // libsignal loses its session and starts again (no one-time pre-key this time) while
    // messages on the old one are in flight both ways.
    let m_old = material(3);
    let in_flight = ls.encrypt("bob", OLMO, &m_old);
    let m_olmo_old = material(4);
    let olmo_in_flight = send(&mut olmo, BOB, &m_olmo_old);
    ls.archive_session("bob", OLMO);
    ls.process_olmo_bundle("bob", OLMO, &olmo.bundle(V), None)
        .unwrap();
    let (kex, d) = ls_to_olmo(&mut ls, &mut olmo, LS_BOB, 5);
    assert!(kex.prekey);
    assert!(d.new_session);
    assert_eq!(d.pre_key_used, None);
    receive_ok(&mut olmo, BOB, &in_flight, &m_old);
    olmo_to_ls(&mut ls, &mut olmo, LS_BOB, 6);
    assert_eq!(ls.decrypt("bob", OLMO, &olmo_in_flight), m_olmo_old);
    ping_pong(&mut ls, &mut olmo, LS_BOB, 3);

    // olmo starts again from libsignal's current bundle; libsignal's old session still opens
    // olmo's messages in flight, and the new one takes over.
    let m_olmo_old = material(7);
    let olmo_in_flight = send(&mut olmo, BOB, &m_olmo_old);
    olmo.build_session(BOB.0, BOB.1, &ls.bundle("bob").to_olmo(), &mut rand::rng())
        .unwrap();
    let kex = olmo_to_ls(&mut ls, &mut olmo, LS_BOB, 8);
    assert!(kex.key_exchange);
    let (answer, _) = ls_to_olmo(&mut ls, &mut olmo, LS_BOB, 9);
    assert!(!answer.prekey);
    assert_eq!(ls.decrypt("bob", OLMO, &olmo_in_flight), m_olmo_old);
    let key = olmo_to_ls(&mut ls, &mut olmo, LS_BOB, 10);
    assert!(!key.key_exchange);
    ping_pong(&mut ls, &mut olmo, LS_BOB, 3);
}

// -------------------------------------------------------------------------------------------
// 2. olmo starts the session

#[test]
fn olmo_starts_a_session_with_libsignal() {
    let (mut ls, mut olmo) = start();
    let theirs = ls.device_new(
        "bob",
        json!({
            "device_id": BOB.1, "registration_id": 777, "pre_keys": 5,
            "pre_key_start": 40, "signed_pre_key_id": 9,
        }),
    );
    assert_eq!((theirs.device_id, theirs.registration_id), (BOB.1, 777));
    let bundle = theirs.to_olmo();
    // It holds libsignal's keys, typed by hand.
    let key = |bytes: &[u8]| {
        assert_eq!(bytes[0], 0x05);
        Curve25519PublicKey::from_slice(&bytes[1..]).unwrap()
    };
    assert_eq!(bundle.version(), V);
    assert_eq!(
        bundle.identity_key(),
        IdentityKey::Curve25519(key(&theirs.identity_key))
    );
    assert_eq!(bundle.signed_pre_key_id(), 9);
    assert_eq!(bundle.signed_pre_key(), &key(&theirs.signed_pre_key));
    assert_eq!(
        bundle.signed_pre_key_signature(),
        olmo::crypto::Ed25519Signature::from_slice(&theirs.signature).unwrap()
    );
    let pre_keys: Vec<_> = theirs
        .pre_keys
        .iter()
        .map(|(id, k)| (*id, key(k)))
        .collect();
    assert_eq!(bundle.pre_keys(), pre_keys);
    olmo.build_session(BOB.0, BOB.1, &bundle, &mut rand::rng())
        .unwrap();

    // Key exchanges until libsignal answers.
    let materials: Vec<Vec<u8>> = (0..4).map(material).collect();
    let keys: Vec<SealedKey> = materials.iter().map(|m| send(&mut olmo, BOB, m)).collect();
    let mut pre_key_id = None;
    for key in &keys {
        assert!(key.key_exchange);
        let parsed = ls.parse(key).unwrap();
        assert_eq!(parsed["libsignal"]["version"], 3);
        assert_eq!(parsed["libsignal"]["signed_pre_key_id"], 9);
        assert_eq!(parsed["libsignal"]["registration_id"], OLMO_DEVICE);
        let id = parsed["libsignal"]["pre_key_id"].as_u64().unwrap();
        assert!((40..45).contains(&id));
        assert_eq!(
            *pre_key_id.get_or_insert(id),
            id,
            "one pre-key for all repeats"
        );
    }
    let pre_key_id = pre_key_id.unwrap();
    // libsignal opens the second one first (it makes the session), then the first.
    for i in [1, 0] {
        let response = ls.try_decrypt("bob", OLMO, &keys[i]).unwrap();
        assert_eq!(response["plaintext"], hex(&materials[i]));
        assert_eq!(response["version"], 3);
        assert_eq!(response["pre_key_id"], pre_key_id);
        assert_eq!(response["registration_id"], OLMO_DEVICE);
    }
    assert!(!ls.pre_key_ids("bob").contains(&(pre_key_id as u32)));
    let info = ls.session_info("bob", OLMO);
    assert_eq!(info["version"], 3);
    assert_eq!(
        info["remote_identity_key"],
        hex(&olmo.identity().identity_key(V).wire_bytes())
    );

    // libsignal answers; olmo stops sending the key exchange.
    let (answer, d) = ls_to_olmo(&mut ls, &mut olmo, LS_BOB, 9);
    assert!(!answer.prekey);
    assert!(!d.new_session);
    let key = olmo_to_ls(&mut ls, &mut olmo, LS_BOB, 10);
    assert!(!key.key_exchange);
    // The last repeats of the key exchange arrive late, after the answer: they still open.
    for i in [3, 2] {
        assert_eq!(ls.decrypt("bob", OLMO, &keys[i]), materials[i]);
    }

    ping_pong(&mut ls, &mut olmo, LS_BOB, 6);
    out_of_order(&mut ls, &mut olmo, LS_BOB);
    payloads(&mut ls, &mut olmo, LS_BOB);
    ping_pong(&mut ls, &mut olmo, LS_BOB, 3);
}

/// A whole first message from olmo: `encrypt_message` on a fresh session sends the key exchange
/// inside `<key prekey='true'>`.
#[test]
fn olmo_first_message_is_a_whole_stanza() {
    let (mut ls, mut olmo) = start();
    let theirs = ls.device_new("bob", json!({"device_id": BOB.1, "pre_keys": 3}));
    olmo.build_session(BOB.0, BOB.1, &theirs.to_olmo(), &mut rand::rng())
        .unwrap();
    let body = b"first words";
    let element = olmo
        .encrypt_message(V, &[BOB], body, &mut rand::rng())
        .unwrap();
    let xml = element.serialize();
    assert!(xml.contains("prekey"), "{xml}");
    let element = stanza::EncryptedElement::parse(&xml).unwrap();
    assert_eq!(element.keys.len(), 1);
    assert!(element.keys[0].key_exchange);
    let opened = ls_opens_payload(&mut ls, LS_BOB, &element);
    assert_eq!(opened, body);
}

// -------------------------------------------------------------------------------------------
// 3. Version bytes

#[test]
fn version_bytes_each_side_writes_and_reads() {
    let (mut ls, mut olmo) = start();

    // olmo writes 0x33, outside and inside the key exchange; libsignal reads it.
    let theirs = ls.device_new("bob", json!({"device_id": BOB.1, "pre_keys": 3}));
    olmo.build_session(BOB.0, BOB.1, &theirs.to_olmo(), &mut rand::rng())
        .unwrap();
    let m = material(0);
    let kex = send(&mut olmo, BOB, &m);
    assert!(kex.key_exchange);
    assert_eq!(kex.data[0], 0x33);
    assert_eq!(inner_message(&kex.data)[0], 0x33);
    let parsed = ls.parse(&kex).unwrap();
    assert_eq!(parsed["wire"]["version_byte"], 0x33);
    assert_eq!(parsed["wire"]["message"]["version_byte"], 0x33);
    assert_eq!(ls.decrypt("bob", OLMO, &kex), m);
    let (answer, _) = ls_to_olmo(&mut ls, &mut olmo, LS_BOB, 1);
    assert_eq!(answer.body[0], 0x34);
    let m = material(2);
    let whisper = send(&mut olmo, BOB, &m);
    assert!(!whisper.key_exchange);
    assert_eq!(whisper.data[0], 0x33);
    assert_eq!(ls.parse(&whisper).unwrap()["libsignal"]["version"], 3);
    assert_eq!(ls.decrypt("bob", OLMO, &whisper), m);

    // libsignal writes 0x34, outside and inside its key exchange; olmo reads it.
    let options = json!({"device_id": ALICE.1});
    ls_session_to_olmo(&mut ls, "alice", options, &olmo.bundle(V), Some(0));
    let (kex, _) = ls_to_olmo(&mut ls, &mut olmo, LS_ALICE, 3);
    assert!(kex.prekey);
    assert_eq!(kex.body[0], 0x34);
    assert_eq!(inner_message(&kex.body)[0], 0x34);
    // libsignal's key exchange rewritten to olmo's byte (MAC recomputed by the peer): olmo
    // reads it too.
    let m = material(4);
    let kex33 = ls.encrypt_with("alice", OLMO, &m, json!({"version_byte": 0x33}));
    assert!(kex33.prekey);
    assert_eq!((kex33.body[0], inner_message(&kex33.body)[0]), (0x33, 0x33));
    receive_ok(&mut olmo, ALICE, &kex33, &m);

    // Other bytes: libsignal reads any low nibble under message version 3; olmo refuses all
    // but 0x33 and 0x34, and the next genuine message still opens.
    for byte in [0x35u8, 0x3f, 0x32, 0x30, 0x44, 0x23] {
        let bad = ls.encrypt_with("alice", OLMO, &material(5), json!({"version_byte": byte}));
        let libsignal_reads = ls.parse(&bad.key()).is_ok();
        assert_eq!(
            libsignal_reads,
            byte >> 4 == 3,
            "libsignal's parse of version byte {byte:#04x}"
        );
        assert_version_byte_refused(&mut olmo, ALICE, &bad, byte);
    }
    ls_to_olmo(&mut ls, &mut olmo, LS_ALICE, 6);

    // After olmo's reply libsignal sends SignalMessages: 0x34 again, and 0x33 when rewritten.
    olmo_to_ls(&mut ls, &mut olmo, LS_ALICE, 7);
    let (whisper, _) = ls_to_olmo(&mut ls, &mut olmo, LS_ALICE, 8);
    assert!(!whisper.prekey);
    assert_eq!(whisper.body[0], 0x34);
    let m = material(9);
    let whisper33 = ls.encrypt_with("alice", OLMO, &m, json!({"version_byte": 0x33}));
    assert!(!whisper33.prekey);
    assert_eq!(whisper33.body[0], 0x33);
    receive_ok(&mut olmo, ALICE, &whisper33, &m);
    for byte in [0x35u8, 0x31, 0x43] {
        let bad = ls.encrypt_with("alice", OLMO, &material(10), json!({"version_byte": byte}));
        assert_version_byte_refused(&mut olmo, ALICE, &bad, byte);
    }
    ls_to_olmo(&mut ls, &mut olmo, LS_ALICE, 11);

    // libsignal decrypting libsignal: 0x33 and 0x35 (MAC recomputed) open, as the parse above
    // said; only the high nibble counts.
    let x = ls.device_new("x", json!({"device_id": 1, "pre_keys": 1}));
    ls.device_new("y", json!({"device_id": 2}));
    ls.process_ls_bundle("y", ("x", 1), &x, Some(0));
    for byte in [0x33u8, 0x35, 0x34, 0x3f] {
        let m = material(byte);
        let sent = ls.encrypt_with("y", ("x", 1), &m, json!({"version_byte": byte}));
        assert_eq!(sent.body[0], byte);
        let response = ls.try_decrypt("x", ("y", 2), &sent.key()).unwrap();
        assert_eq!(
            response["plaintext"],
            hex(&m),
            "libsignal reads {byte:#04x}"
        );
    }
}

// -------------------------------------------------------------------------------------------
// 4. Bundles without one-time pre-keys

#[test]
fn bundles_without_one_time_pre_keys() {
    let (mut ls, mut olmo) = start();

    // libsignal publishes none: olmo's X3DH has three DHs, libsignal agrees.
    let theirs = ls.device_new("bob", json!({"device_id": BOB.1, "pre_keys": 0}));
    assert!(theirs.pre_keys.is_empty());
    let bundle = theirs.to_olmo();
    assert!(bundle.pre_keys().is_empty());
    assert_eq!(
        bundle.choose_pre_key(&mut rand::rng()),
        Err(BundleError::NoPreKeys)
    );
    olmo.build_session(BOB.0, BOB.1, &bundle, &mut rand::rng())
        .unwrap();
    let m = material(0);
    let kex = send(&mut olmo, BOB, &m);
    assert!(kex.key_exchange);
    assert!(field(&kex.data, 0, 1).is_none(), "no pre-key id field");
    let parsed = ls.parse(&kex).unwrap();
    assert_eq!(parsed["libsignal"]["pre_key_id"], serde_json::Value::Null);
    let response = ls.try_decrypt("bob", OLMO, &kex).unwrap();
    assert_eq!(response["plaintext"], hex(&m));
    assert_eq!(response["pre_key_id"], serde_json::Value::Null);
    ls_to_olmo(&mut ls, &mut olmo, LS_BOB, 1);
    ping_pong(&mut ls, &mut olmo, LS_BOB, 3);

    // olmo's bundle without its pre-keys (still validly signed): libsignal's three-DH key
    // exchange opens, and no pre-key is used up.
    let mut bundle = olmo.bundle(V);
    bundle.retain_pre_keys(|_| false);
    ls_session_to_olmo(
        &mut ls,
        "alice",
        json!({"device_id": ALICE.1}),
        &bundle,
        None,
    );
    let m = material(2);
    let kex = ls.encrypt("alice", OLMO, &m);
    assert!(kex.prekey);
    assert!(field(&kex.body, 0, 1).is_none(), "no pre-key id field");
    let pool: Vec<u32> = olmo.pre_keys(V).pre_key_ids().collect();
    let d = receive_ok(&mut olmo, ALICE, &kex, &m);
    assert!(d.new_session);
    assert_eq!(d.pre_key_used, None);
    assert_eq!(olmo.pre_keys(V).pre_key_ids().collect::<Vec<_>>(), pool);
    olmo_to_ls(&mut ls, &mut olmo, LS_ALICE, 3);
    ping_pong(&mut ls, &mut olmo, LS_ALICE, 3);
}

// -------------------------------------------------------------------------------------------
// 5. XEdDSA

#[test]
fn xeddsa_signatures_verify_across() {
    let mut ls = Signal::start();

    // libsignal signs; olmo verifies (sign bit in the signature) and finds the Edwards key of
    // the private key. Keys until both sign bits have been seen.
    let mut sign_bits = [false; 2];
    let mut keys = 0;
    while keys < 8 || !(sign_bits[0] && sign_bits[1]) {
        assert!(keys < 64, "never saw both sign bits");
        keys += 1;
        let private = random::<32>();
        let secret = Curve25519SecretKey::from_bytes(&private);
        let public = ls.public_key(&private);
        assert_eq!(public[0], 0x05);
        assert_eq!(&public[1..], secret.public_key().as_bytes());
        let public = secret.public_key();
        let message = random::<48>();
        let signature = ls.sign_with(&private, &message);
        sign_bits[usize::from(signature[63] >> 7)] = true;
        let signature = olmo::crypto::Ed25519Signature::from_bytes(signature);
        let ed = public
            .xeddsa_verify(&message, &signature, SignBit::InSignature)
            .unwrap();
        assert_eq!(ed, secret.ed25519_public_key());
        let mut other = message;
        other[0] ^= 1;
        assert_eq!(
            public.xeddsa_verify(&other, &signature, SignBit::InSignature),
            Err(XEdDsaError::InvalidSignature)
        );
        // olmo signs with the same private key; libsignal verifies.
        let ours = secret.xeddsa_sign(&message, SignBit::InSignature);
        let wire = [&[0x05][..], public.as_bytes()].concat();
        assert!(ls.verify(&wire, &message, ours.as_bytes()));
        assert!(!ls.verify(&wire, &other, ours.as_bytes()));
    }

    // A libsignal device's identity signature and its bundle's signed pre-key signature.
    let theirs = ls.device_new("bob", json!({"pre_keys": 1}));
    let identity = Curve25519PublicKey::from_slice(&theirs.identity_key[1..]).unwrap();
    let message = b"eu.siacs.conversations.axolotl";
    let signature = olmo::crypto::Ed25519Signature::from_bytes(ls.sign("bob", message));
    let ed = identity
        .xeddsa_verify(message, &signature, SignBit::InSignature)
        .unwrap();
    let spk_signature = olmo::crypto::Ed25519Signature::from_slice(&theirs.signature).unwrap();
    assert_eq!(
        identity.xeddsa_verify(&theirs.signed_pre_key, &spk_signature, SignBit::InSignature),
        Ok(ed),
        "libsignal signs 0x05 ‖ spk"
    );
    assert_eq!(theirs.to_olmo().identity_ed25519(), ed);
    let mut bad = theirs.clone();
    bad.signature[10] ^= 0x20;
    assert_eq!(
        VerifiedBundle::from_element(&bad.element()),
        Err(BundleError::BadSignature)
    );

    // olmo identities (seeded and imported) sign; libsignal verifies, also the bundle's
    // signed pre-key signature.
    let seeded = olmo_device(OLMO_JID, OLMO_DEVICE);
    let imported = DeviceIdentity::from_curve25519_secret(&random::<32>());
    for identity in [seeded.identity(), &imported] {
        let wire = identity.identity_key(V).wire_bytes();
        for _ in 0..4 {
            let message = random::<40>();
            let signature = identity.sign(V, &message);
            assert!(ls.verify(&wire, &message, signature.as_bytes()));
            let mut flipped = *signature.as_bytes();
            flipped[63] ^= 0x80;
            assert!(!ls.verify(&wire, &message, &flipped));
        }
    }
    let bundle = seeded.bundle(V).to_element();
    assert!(ls.verify(
        &bundle.identity_key,
        &bundle.signed_pre_key,
        &bundle.signed_pre_key_signature
    ));
    // libsignal's process_bundle checks the same signature: a broken one is refused.
    ls.device_new("alice", json!({}));
    let mut broken = seeded.bundle(V).to_element();
    broken.signed_pre_key_signature[0] ^= 1;
    let refused = ls.process_olmo_element("alice", OLMO, &broken, Some(0));
    assert!(refused.is_err(), "libsignal took a bad signature");
    ls.process_olmo_bundle("alice", OLMO, &seeded.bundle(V), Some(0))
        .unwrap();
}

// -------------------------------------------------------------------------------------------
// 6. An identity moved from libsignal to olmo

#[test]
fn identity_moved_from_libsignal_to_olmo() {
    const LEGACY: (&str, u32) = ("legacy@example.org", 55);
    const CAROL: (&str, u32) = ("carol@example.org", 9);
    let mut ls = Signal::start();

    // A libsignal client's identity, and its pre-keys with private keys we know (random bytes,
    // unclamped: both sides clamp).
    ls.device_new("legacy-original", json!({"device_id": LEGACY.1}));
    let (identity_key, identity_private) = ls.identity("legacy-original");
    let signed_private = random::<32>();
    let pre_keys: Vec<(u32, [u8; 32])> = (0..10).map(|i| (300 + i, random::<32>())).collect();
    let legacy = ls.device_import(
        "legacy",
        LEGACY.1,
        &identity_private,
        (17, &signed_private),
        &pre_keys,
    );
    assert_eq!(legacy.identity_key, identity_key);

    // The same keys in olmo.
    let identity = DeviceIdentity::from_curve25519_secret(&identity_private);
    assert_eq!(identity.identity_key(V).wire_bytes(), identity_key);
    assert_eq!(identity.curve25519_key().as_bytes(), &identity_key[1..]);
    assert_eq!(identity.fingerprint(), hex(&identity_key[1..]));
    let signature = olmo::crypto::Ed25519Signature::from_bytes(ls.sign("legacy", b"who"));
    assert_eq!(
        identity
            .curve25519_key()
            .xeddsa_verify(b"who", &signature, SignBit::InSignature),
        Ok(identity.ed25519_key()),
        "olmo's Ed25519 form of the identity is the key libsignal signs under"
    );
    let mut olmo = imported_device(LEGACY, identity, (17, &signed_private), &pre_keys);
    let ours = olmo.bundle(V);
    let element = ours.to_element();
    assert_eq!(element.identity_key, legacy.identity_key);
    assert_eq!(element.signed_pre_key_id, 17);
    assert_eq!(element.signed_pre_key, legacy.signed_pre_key);
    assert_eq!(element.pre_keys, legacy.pre_keys);
    // olmo signed the signed pre-key afresh: another signature, valid for both libraries.
    assert!(ls.verify(
        &legacy.identity_key,
        &element.signed_pre_key,
        &element.signed_pre_key_signature
    ));
    assert_eq!(legacy.to_olmo().identity_ed25519(), ours.identity_ed25519());

    // Carol fetched the bundle the libsignal client published before the move; she trusts on
    // first use.
    let carol = ls.device_new("carol", json!({"device_id": CAROL.1, "trust": "tofu"}));
    ls.process_ls_bundle("carol", LEGACY, &legacy, Some(3));
    let m = material(0);
    let kex = ls.encrypt("carol", LEGACY, &m);
    assert!(kex.prekey);
    // The libsignal device would open it, and so does olmo holding the same keys.
    assert_eq!(ls.decrypt("legacy", CAROL, &kex.key()), m);
    let d = receive_ok(&mut olmo, CAROL, &kex, &m);
    assert!(d.new_session);
    assert_eq!(d.pre_key_used, Some(303));
    let to_carol = Link {
        name: "carol",
        address: CAROL,
        olmo: LEGACY,
    };
    olmo_to_ls(&mut ls, &mut olmo, to_carol, 1);
    ping_pong(&mut ls, &mut olmo, to_carol, 3);

    // Carol's second device uses olmo's republished bundle (olmo's signature) and the same ids.
    ls.device_new("carol2", json!({"device_id": CAROL.1 + 1}));
    let carol2 = (CAROL.0, CAROL.1 + 1);
    let index = ours
        .pre_keys()
        .iter()
        .position(|(id, _)| *id == 305)
        .unwrap();
    ls.process_olmo_bundle("carol2", LEGACY, &ours, Some(index))
        .unwrap();
    let to_carol2 = Link {
        name: "carol2",
        address: carol2,
        olmo: LEGACY,
    };
    let (_, d) = ls_to_olmo(&mut ls, &mut olmo, to_carol2, 2);
    assert_eq!(d.pre_key_used, Some(305));
    olmo_to_ls(&mut ls, &mut olmo, to_carol2, 3);
    // One message to both of Carol's devices: one payload, a key for each.
    let body = b"to both of you";
    let mut rng = rand::rng();
    let element = olmo
        .encrypt_message(V, &[CAROL, carol2], body, &mut rng)
        .unwrap();
    for link in [to_carol, to_carol2] {
        let opened = ls_opens_payload(&mut ls, link, &element);
        assert_eq!(opened, body);
    }

    // olmo starts a new session with Carol: she already holds this identity for the address,
    // so her trust-on-first-use store takes it.
    olmo.build_session(CAROL.0, CAROL.1, &carol.to_olmo(), &mut rng)
        .unwrap();
    let m = material(4);
    let kex = send(&mut olmo, CAROL, &m);
    assert!(kex.key_exchange);
    let response = ls.try_decrypt("carol", LEGACY, &kex).unwrap();
    assert_eq!(response["plaintext"], hex(&m));
    let used = response["pre_key_id"].as_u64().unwrap() as u32;
    ls_to_olmo(&mut ls, &mut olmo, to_carol, 5);
    ping_pong(&mut ls, &mut olmo, to_carol, 2);
    // A device with another identity at the same address is refused by that store.
    let mut impostor = olmo_device(LEGACY.0, LEGACY.1);
    let mut bundle = carol.to_olmo();
    bundle.retain_pre_keys(|(id, _)| *id != used);
    impostor
        .build_session(CAROL.0, CAROL.1, &bundle, &mut rng)
        .unwrap();
    let kex = send(&mut impostor, CAROL, &material(6));
    let error = ls.try_decrypt("carol", LEGACY, &kex).unwrap_err();
    assert!(error.contains("ntrusted"), "{error}");
}

// -------------------------------------------------------------------------------------------
// 7. Damaged libsignal traffic toward olmo

/// Every one-bit change (bits 0 and 7 of each byte) of a libsignal message is refused with a
/// typed error and leaves olmo unchanged, except in a key exchange's registration id, which
/// nothing authenticates: there the message opens as before (tried on a copy).
fn every_flip_is_refused(olmo: &mut OmemoDevice, from: (&str, u32), sent: &Sent, expected: &[u8]) {
    let registration_id = sent
        .prekey
        .then(|| field(&sent.body, 0, 5).expect("registration id").value);
    let mut refused = 0;
    let mut unauthenticated = 0;
    for at in 0..sent.body.len() {
        for mask in [0x01u8, 0x80] {
            let mut key = sent.key();
            key.data[at] ^= mask;
            if registration_id.as_ref().is_some_and(|r| r.contains(&at)) {
                if let Ok(d) = receive(&mut olmo.clone(), from, &key) {
                    assert_eq!(&d.decrypted.key_material[..], expected);
                    unauthenticated += 1;
                }
                continue;
            }
            let error = receive(olmo, from, &key)
                .err()
                .unwrap_or_else(|| panic!("flip {mask:#04x} at byte {at} accepted"));
            match error {
                DeviceError::Session(
                    SessionError::Decode(_)
                    | SessionError::Decrypt(_)
                    | SessionError::PreKey(_)
                    | SessionError::Key(_)
                    | SessionError::IdentityKey
                    | SessionError::SessionMismatch,
                ) => refused += 1,
                other => panic!("flip {mask:#04x} at byte {at}: {other:?}"),
            }
            if at == 0 {
                assert_eq!(
                    error,
                    DeviceError::Session(SessionError::Decode(DecodeError::UnsupportedVersion(
                        (0x34 ^ mask).into()
                    )))
                );
            }
            if at == sent.body.len() - 1 && !sent.prekey {
                assert_eq!(
                    error,
                    DeviceError::Session(SessionError::Decrypt(DecryptError::Cipher(
                        CipherError::Mac
                    )))
                );
            }
        }
    }
    assert!(refused > sent.body.len());
    assert_eq!(unauthenticated > 0, sent.prekey);
}

#[test]
fn damaged_libsignal_traffic_is_refused_and_the_session_goes_on() {
    const MALLORY: (&str, u32) = ("mallory@example.org", 66);
    let (mut ls, mut olmo) = start();
    let bundle = olmo.bundle(V);
    let pre_key_id = bundle.pre_keys()[0].0;
    ls_session_to_olmo(
        &mut ls,
        "alice",
        json!({"device_id": ALICE.1}),
        &bundle,
        Some(0),
    );

    // The key exchange, damaged, then for another device, then genuine.
    let m = material(0);
    let kex = ls.encrypt("alice", OLMO, &m);
    every_flip_is_refused(&mut olmo, ALICE, &kex, &m);
    assert!(!olmo.has_session(V, ALICE.0, ALICE.1));
    let mut other = olmo_device(OLMO_JID, OLMO_DEVICE);
    assert_eq!(
        receive(&mut other, ALICE, &kex.key()).err(),
        Some(DeviceError::Session(SessionError::Decrypt(
            DecryptError::Cipher(CipherError::Mac)
        ))),
        "same pre-key ids, other keys"
    );
    let truncated = SealedKey {
        data: kex.body[..kex.body.len() - 20].to_vec(),
        key_exchange: true,
    };
    assert!(matches!(
        receive(&mut olmo, ALICE, &truncated),
        Err(DeviceError::Session(SessionError::Decode(_)))
    ));
    let d = receive_ok(&mut olmo, ALICE, &kex, &m);
    assert!(d.new_session);
    // Replayed.
    assert_eq!(
        receive(&mut olmo, ALICE, &kex.key()).err(),
        Some(DeviceError::Session(SessionError::Decrypt(
            DecryptError::Duplicate { index: 0 }
        )))
    );
    // A new session from another libsignal device on the pre-key already used.
    let options = json!({"device_id": MALLORY.1});
    ls_session_to_olmo(&mut ls, "mallory", options, &bundle, Some(0));
    let stale = ls.encrypt("mallory", OLMO, &material(1));
    assert_eq!(
        receive(&mut olmo, MALLORY, &stale.key()).err(),
        Some(DeviceError::Session(SessionError::PreKey(
            PreKeyError::PreKeyUsed(pre_key_id)
        )))
    );
    assert!(!olmo.has_session(V, MALLORY.0, MALLORY.1));
    // The next genuine key exchange still opens.
    let (_, d) = ls_to_olmo(&mut ls, &mut olmo, LS_ALICE, 2);
    assert!(!d.new_session);

    // olmo answers; libsignal's SignalMessages, damaged, replayed, misaddressed.
    olmo_to_ls(&mut ls, &mut olmo, LS_ALICE, 3);
    let m = material(4);
    let whisper = ls.encrypt("alice", OLMO, &m);
    assert!(!whisper.prekey);
    every_flip_is_refused(&mut olmo, ALICE, &whisper, &m);
    // From a device we have no session with (another device id, another JID).
    for from in [(ALICE.0, 8), ("eve@example.org", ALICE.1)] {
        assert_eq!(
            receive(&mut olmo, from, &whisper.key()).err(),
            Some(DeviceError::NoSession {
                version: V,
                jid: from.0.to_owned(),
                device_id: from.1,
            })
        );
    }
    // A SignalMessage flagged as a key exchange, and a key exchange flagged as a SignalMessage.
    let flagged = SealedKey {
        data: whisper.body.clone(),
        key_exchange: true,
    };
    assert!(matches!(
        receive(&mut olmo, ALICE, &flagged),
        Err(DeviceError::Session(SessionError::Decode(_)))
    ));
    let unflagged = SealedKey {
        data: kex.body.clone(),
        key_exchange: false,
    };
    assert!(matches!(
        receive(&mut olmo, ALICE, &unflagged),
        Err(DeviceError::Session(_))
    ));
    let empty = SealedKey {
        data: Vec::new(),
        key_exchange: false,
    };
    assert!(matches!(
        receive(&mut olmo, ALICE, &empty),
        Err(DeviceError::Session(SessionError::Decode(_)))
    ));
    receive_ok(&mut olmo, ALICE, &whisper, &m);
    assert_eq!(
        receive(&mut olmo, ALICE, &whisper.key()).err(),
        Some(DeviceError::Session(SessionError::Decrypt(
            DecryptError::Duplicate {
                index: whisper.counter
            }
        )))
    );
    // An out-of-order message replayed after it was opened from its skipped key.
    let late_m = material(5);
    let late = ls.encrypt("alice", OLMO, &late_m);
    let m = material(6);
    let sent = ls.encrypt("alice", OLMO, &m);
    receive_ok(&mut olmo, ALICE, &sent, &m);
    receive_ok(&mut olmo, ALICE, &late, &late_m);
    assert!(matches!(
        receive(&mut olmo, ALICE, &late.key()),
        Err(DeviceError::Session(SessionError::Decrypt(_)))
    ));

    // Too far ahead: libsignal itself jumps up to 25000 messages, olmo at most 2000 (as
    // libsignal-java and libomemo-c). One message 2001 ahead is refused; once the one before
    // it arrived, it is 2000 ahead and opens.
    let held_m = material(7);
    let held = ls.encrypt("alice", OLMO, &held_m);
    let far_m = material(8);
    let far = ls.encrypt_with("alice", OLMO, &far_m, json!({"skip": 2000}));
    assert_eq!(far.counter, held.counter + 2001);
    assert_eq!(
        receive(&mut olmo, ALICE, &far.key()).err(),
        Some(DeviceError::Session(SessionError::Decrypt(
            DecryptError::TooFarAhead {
                index: far.counter,
                gap: 2001,
                limit: 2000
            }
        )))
    );
    receive_ok(&mut olmo, ALICE, &held, &held_m);
    let d = receive_ok(&mut olmo, ALICE, &far, &far_m);
    assert!(d.decrypted.heartbeat_due);
    olmo_to_ls(&mut ls, &mut olmo, LS_ALICE, 9);

    // The session goes on.
    ping_pong(&mut ls, &mut olmo, LS_ALICE, 3);
}

// -------------------------------------------------------------------------------------------
// Signed pre-key rotation

/// libsignal fetched olmo's bundle, then olmo rotated its signed pre-key: the key exchange on the
/// old one still opens during the grace period, and is refused once it is over.
#[test]
fn key_exchanges_on_a_rotated_signed_pre_key() {
    let (mut ls, mut olmo) = start();
    let old = olmo.bundle(V);
    let later = Timestamp::from_millis(now().as_millis() + 8 * 24 * 3600 * 1000);
    assert_eq!(
        olmo.maintain(later, &mut rand::rng()),
        vec![Version::Omemo2, V]
    );
    let new = olmo.bundle(V);
    assert_ne!(new.signed_pre_key_id(), old.signed_pre_key_id());

    ls_session_to_olmo(
        &mut ls,
        "alice",
        json!({"device_id": ALICE.1}),
        &old,
        Some(0),
    );
    let (_, d) = ls_to_olmo(&mut ls, &mut olmo, LS_ALICE, 0);
    assert!(d.new_session);
    olmo_to_ls(&mut ls, &mut olmo, LS_ALICE, 1);
    ping_pong(&mut ls, &mut olmo, LS_ALICE, 2);

    // The new bundle works too.
    ls_session_to_olmo(&mut ls, "bob", json!({"device_id": BOB.1}), &new, Some(1));
    let (_, d) = ls_to_olmo(&mut ls, &mut olmo, LS_BOB, 2);
    assert!(d.new_session);

    // After the grace period the old signed pre-key is gone.
    let much_later = Timestamp::from_millis(later.as_millis() + 31 * 24 * 3600 * 1000);
    olmo.maintain(much_later, &mut rand::rng());
    ls_session_to_olmo(&mut ls, "carol", json!({"device_id": 9}), &old, Some(2));
    let kex = ls.encrypt("carol", OLMO, &material(3));
    assert_eq!(
        receive(&mut olmo, ("carol@example.org", 9), &kex.key()).err(),
        Some(DeviceError::Session(SessionError::PreKey(
            PreKeyError::UnknownSignedPreKey(old.signed_pre_key_id())
        )))
    );
    // The established sessions do not depend on it.
    ping_pong(&mut ls, &mut olmo, LS_ALICE, 2);
}

// -------------------------------------------------------------------------------------------
// Pre-key ids at the ends of the range

#[test]
fn pre_key_ids_at_the_ends_of_the_range() {
    let (mut ls, mut olmo) = start();

    // libsignal's signed pre-key and pre-keys numbered 0 and 2^32 - 1: olmo's key exchanges
    // name them, libsignal opens them.
    for (name, signed_id, start) in [("low", 0, 0), ("high", u32::MAX, u32::MAX - 1)] {
        let theirs = ls.device_new(
            name,
            json!({"device_id": 20, "pre_keys": 2, "pre_key_start": start,
                   "signed_pre_key_id": signed_id}),
        );
        let jid = format!("{name}@example.org");
        for index in 0..2 {
            let mut bundle = theirs.to_olmo();
            let (id, _) = bundle.pre_keys()[index];
            assert_eq!(id, start + index as u32);
            bundle.retain_pre_keys(|(kept, _)| *kept == id);
            olmo.build_session(&jid, 20, &bundle, &mut rand::rng())
                .unwrap();
            let m = material(index as u8);
            let kex = send(&mut olmo, (&jid, 20), &m);
            let parsed = ls.parse(&kex).unwrap();
            assert_eq!(parsed["libsignal"]["signed_pre_key_id"], signed_id);
            assert_eq!(parsed["libsignal"]["pre_key_id"], id);
            let response = ls.try_decrypt(name, OLMO, &kex).unwrap();
            assert_eq!(response["plaintext"], hex(&m));
            assert_eq!(response["pre_key_id"], id);
        }
    }

    // olmo with imported pre-keys so numbered: libsignal's key exchanges on them open.
    let identity = DeviceIdentity::generate(&mut rand::rng());
    let pre_keys = [
        (0, random::<32>()),
        (7, random::<32>()),
        (u32::MAX, random::<32>()),
    ];
    let mut olmo = imported_device(OLMO, identity, (u32::MAX, &random::<32>()), &pre_keys);
    let bundle = olmo.bundle(V);
    assert_eq!(bundle.signed_pre_key_id(), u32::MAX);
    for (index, id) in [(0, 0), (2, u32::MAX)] {
        assert_eq!(bundle.pre_keys()[index].0, id);
        let name = format!("sender{index}");
        let options = json!({"device_id": 30 + index});
        ls_session_to_olmo(&mut ls, &name, options, &bundle, Some(index));
        let link = Link {
            name: &name,
            address: ("senders@example.org", 30 + index as u32),
            olmo: OLMO,
        };
        let (_, d) = ls_to_olmo(&mut ls, &mut olmo, link, 9);
        assert_eq!(d.pre_key_used, Some(id));
        olmo_to_ls(&mut ls, &mut olmo, link, 10);
    }
}

/// A used pre-key is told from one never issued by the ids the device consumed, not by counting
/// ids up from 1: imported ids (0, 2^32 − 1, or a pool at 300..=309) are judged right too.
#[test]
fn imported_pre_key_ids_are_told_used_from_unknown() {
    let mut ls = Signal::start();
    let import = |ids: &[u32]| {
        let identity = DeviceIdentity::generate(&mut rand::rng());
        let pre_keys: Vec<(u32, [u8; 32])> = ids.iter().map(|id| (*id, random::<32>())).collect();
        imported_device(OLMO, identity, (1, &random::<32>()), &pre_keys)
    };
    // libsignal's key exchange naming pre-key `index` of `bundle` (or `id` with another key).
    let mut key_exchange = |bundle: &VerifiedBundle, index: usize, id: Option<u32>| {
        let mut element = bundle.to_element();
        if let Some(id) = id {
            element.pre_keys[index].0 = id;
        }
        // Pre-keys are not signed: the renamed one verifies as the bundle did.
        let bundle = VerifiedBundle::from_element(&element).unwrap();
        ls_session_to_olmo(
            &mut ls,
            "sender",
            json!({"replace": true}),
            &bundle,
            Some(index),
        );
        ls.encrypt("sender", OLMO, &material(0)).key()
    };

    // Never issued, reported as used.
    let mut olmo = import(&(300..310).collect::<Vec<_>>());
    let kex = key_exchange(&olmo.bundle(V), 0, Some(5));
    assert_eq!(
        receive(&mut olmo, ALICE, &kex).err(),
        Some(DeviceError::Session(SessionError::PreKey(
            PreKeyError::UnknownPreKey(5)
        )))
    );
    // Used, reported as never issued.
    let mut olmo = import(&[0, u32::MAX]);
    let bundle = olmo.bundle(V);
    for (index, id) in [(0, 0), (1, u32::MAX)] {
        // Each key exchange comes from a new libsignal identity: under a device of its own, as
        // one under a known device would be an identity change.
        let first = key_exchange(&bundle, index, None);
        let sender = (ALICE.0, ALICE.1 + index as u32);
        receive(&mut olmo, sender, &first).unwrap();
        let second = key_exchange(&bundle, index, None);
        assert_eq!(
            receive(&mut olmo, BOB, &second).err(),
            Some(DeviceError::Session(SessionError::PreKey(
                PreKeyError::PreKeyUsed(id)
            )))
        );
    }
}
