//! Key export files between olmo and matrix-nio, both ways, through nio's real machinery:
//! `Olm.group_encrypt`, its store, `Olm.export_keys` / `Olm.import_keys` and
//! `decrypt_megolm_event`.

use olmo::megolm::{
    ExportedRoomKey, KeyExportError, MegolmMessage, decrypt_key_export, encrypt_key_export_with_rng,
};
use serde_json::{Value, json};

use crate::common::peer::Peer;
use crate::support::{ROUNDS, Room, TestRng, assert_same_keys, open};

/// ASCII: nio (pycryptodome) encodes a passphrase as Latin-1, every other client as UTF-8
/// (see `non_ascii_passphrases_differ`).
const PASSPHRASE: &str = "correct horse battery staple";

struct Machine {
    handle: String,
    curve25519: String,
    ed25519: String,
}

fn machine(nio: &mut Peer, user_id: &str, device_id: &str) -> Machine {
    let response =
        nio.call(json!({"op": "machine_create", "user_id": user_id, "device_id": device_id}));
    Machine {
        handle: response["machine"].as_str().unwrap().to_owned(),
        curve25519: response["curve25519"].as_str().unwrap().to_owned(),
        ed25519: response["ed25519"].as_str().unwrap().to_owned(),
    }
}

/// A message nio sent: its event content, index and the exact plaintext.
struct Sent {
    content: Value,
    index: u32,
    plaintext: String,
}

fn nio_send(nio: &mut Peer, sender: &Machine, room_id: &str, body: &str) -> Sent {
    let response = nio.call(json!({
        "op": "group_encrypt", "machine": sender.handle, "room_id": room_id, "body": body,
    }));
    Sent {
        content: response["content"].clone(),
        index: u32::try_from(response["message_index"].as_u64().unwrap()).unwrap(),
        plaintext: response["plaintext"].as_str().unwrap().to_owned(),
    }
}

fn nio_export(nio: &mut Peer, machine: &Machine, passphrase: &str) -> String {
    nio.call_str(
        json!({"op": "export_keys", "machine": machine.handle, "passphrase": passphrase, "rounds": ROUNDS}),
        "text",
    )
}

fn key_for<'a>(keys: &'a [ExportedRoomKey], room_id: &str) -> &'a ExportedRoomKey {
    keys.iter().find(|key| key.room_id == room_id).unwrap()
}

fn assert_nio_key(key: &ExportedRoomKey, sender: &Machine, session_id: &str) {
    assert_eq!(key.algorithm, "m.megolm.v1.aes-sha2");
    assert_eq!(key.sender_key, sender.curve25519);
    assert_eq!(key.session_id, session_id);
    assert!(key.session_id_matches());
    assert_eq!(key.sender_claimed_keys["ed25519"], sender.ed25519);
    assert!(key.forwarding_curve25519_key_chain.is_empty());
    // nio does not write `m.shared_history`; it reads as false.
    assert!(!key.shared_history);
}

/// nio encrypts in two rooms, shares one room's key with a second device after three
/// messages, and both devices export: olmo reads both files and decrypts every message the
/// exported index allows, and none before it.
#[test]
fn nio_exports_open_in_olmo() {
    let mut nio = Peer::nio();
    let alice = machine(&mut nio, "@alice:example.org", "ALICE");
    let bob = machine(&mut nio, "@bob:example.org", "BOB");
    let (room, other_room) = ("!room:example.org", "!other:example.org");
    let session_id = nio.call_str(
        json!({"op": "outbound_create", "machine": alice.handle, "room_id": room}),
        "session_id",
    );
    let other_id = nio.call_str(
        json!({"op": "outbound_create", "machine": alice.handle, "room_id": other_room}),
        "session_id",
    );

    let mut sent: Vec<Sent> = (0..3)
        .map(|i| nio_send(&mut nio, &alice, room, &format!("early {i}")))
        .collect();
    // Bob joins late: he gets the room key at index 3, as `m.room_key` would carry it.
    let late =
        nio.call(json!({"op": "outbound_session_key", "machine": alice.handle, "room_id": room}));
    assert_eq!(late["message_index"], 3);
    let added = nio.call(json!({
        "op": "add_inbound", "machine": bob.handle, "sender_key": alice.curve25519,
        "ed25519": alice.ed25519, "room_id": room, "session_id": session_id,
        "session_key": late["session_key"],
    }));
    assert_eq!(added["first_known_index"], 3);
    sent.extend((3..5).map(|i| nio_send(&mut nio, &alice, room, &format!("late {i}"))));
    let other = nio_send(&mut nio, &alice, other_room, "elsewhere");

    // Alice's export: both rooms, from index 0.
    let keys = decrypt_key_export(&nio_export(&mut nio, &alice, PASSPHRASE), PASSPHRASE).unwrap();
    assert_eq!(keys.len(), 2);
    let key = key_for(&keys, room);
    assert_nio_key(key, &alice, &session_id);
    assert_eq!(key.session_key.ratchet().index(), 0);
    for message in &sent {
        let megolm =
            MegolmMessage::from_base64(message.content["ciphertext"].as_str().unwrap()).unwrap();
        assert_eq!(message.content["session_id"], session_id.as_str());
        let (plaintext, index) = open(&key.session_key, &megolm).unwrap();
        assert_eq!(
            (plaintext.as_str(), index),
            (message.plaintext.as_str(), message.index)
        );
    }
    let other_key = key_for(&keys, other_room);
    assert_nio_key(other_key, &alice, &other_id);
    let megolm = MegolmMessage::from_base64(other.content["ciphertext"].as_str().unwrap()).unwrap();
    assert_eq!(
        open(&other_key.session_key, &megolm).unwrap().0,
        other.plaintext
    );
    assert!(
        open(&key.session_key, &megolm).is_none(),
        "another session's message"
    );

    // Bob's export: one session from index 3, so the first three messages stay closed.
    let keys = decrypt_key_export(&nio_export(&mut nio, &bob, PASSPHRASE), PASSPHRASE).unwrap();
    assert_eq!(keys.len(), 1);
    assert_nio_key(&keys[0], &alice, &session_id);
    assert_eq!(keys[0].session_key.ratchet().index(), 3);
    for message in &sent {
        let megolm =
            MegolmMessage::from_base64(message.content["ciphertext"].as_str().unwrap()).unwrap();
        let opened = open(&keys[0].session_key, &megolm);
        if message.index < 3 {
            assert!(
                opened.is_none(),
                "index {} is before the export",
                message.index
            );
        } else {
            assert_eq!(opened.unwrap().0, message.plaintext);
        }
    }

    // A wrong passphrase is a MAC failure, as is nio's file with a byte changed.
    let text = nio_export(&mut nio, &alice, PASSPHRASE);
    assert_eq!(
        decrypt_key_export(&text, "Correct horse").unwrap_err(),
        KeyExportError::Mac
    );
    let body_start = text.find('\n').unwrap() + 10;
    let mut tampered = text.clone().into_bytes();
    tampered[body_start] = if tampered[body_start] == b'A' {
        b'B'
    } else {
        b'A'
    };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_eq!(
        decrypt_key_export(&tampered, PASSPHRASE).unwrap_err(),
        KeyExportError::Mac
    );
}

/// olmo exports two sessions (one from index 0, one from index 2, with a forwarding chain and
/// `m.shared_history`); nio imports the file with `Olm.import_keys` and decrypts olmo's
/// messages as room events; nio's own export of what it imported reads back in olmo unchanged.
#[test]
fn olmo_export_opens_in_nio() {
    let mut nio = Peer::nio();
    let bob = machine(&mut nio, "@bob:example.org", "BOB");
    let sender_key = "NvmgRzZzrBkwrpWKvK9SnwoW4eTZ65Z0w94BNLrNW3c";
    let ed25519 = "tdBbOt9vhfYr4Z4dtqUb6EWi3pDoxHjaSLTKS7NQG3I";
    let first = Room::new("!first:example.org", 1, 3);
    let second = Room::new("!second:example.org", 2, 4);
    let mut later = second.exported(2, sender_key, ed25519);
    later.forwarding_curve25519_key_chain =
        vec!["hYdnRj8Cbo8KhuPiW6OFvoMZ6tNFh7e4S3d6cQFHLRc".to_owned()];
    later.shared_history = true;
    let keys = vec![first.exported(0, sender_key, ed25519), later];
    let text = encrypt_key_export_with_rng(&keys, PASSPHRASE, ROUNDS, &mut TestRng::new(5));

    // nio's file reader sees the fields as written.
    let raw = nio.call_str(
        json!({"op": "decrypt_file", "text": text, "passphrase": PASSPHRASE}),
        "json",
    );
    let raw: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(raw[1]["m.shared_history"], true);
    assert_eq!(raw[0]["m.shared_history"], false);
    assert_eq!(
        raw[1]["session_key"].as_str().unwrap(),
        &*keys[1].session_key.to_base64()
    );

    let error = nio
        .try_call(
            json!({"op": "import_keys", "machine": bob.handle, "text": text, "passphrase": "nope"}),
        )
        .unwrap_err();
    assert!(error.contains("HMAC"), "{error}");
    let imported = nio.call(
        json!({"op": "import_keys", "machine": bob.handle, "text": text, "passphrase": PASSPHRASE}),
    );
    let sessions = imported["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    for (room, key, first_index) in [(&first, &keys[0], 0), (&second, &keys[1], 2)] {
        let session = sessions
            .iter()
            .find(|s| s["room_id"] == room.room_id.as_str())
            .unwrap();
        assert_eq!(session["session_id"], room.session.session_id().as_str());
        assert_eq!(session["first_known_index"], first_index);
        assert_eq!(session["ed25519"], ed25519);
        assert_eq!(
            session["forwarding_chain"],
            json!(key.forwarding_curve25519_key_chain)
        );
        for (index, (message, plaintext)) in room.messages.iter().enumerate() {
            let content = json!({
                "algorithm": "m.megolm.v1.aes-sha2", "sender_key": sender_key,
                "device_id": "OLMO", "session_id": room.session.session_id(),
                "ciphertext": message.to_base64(),
            });
            let result = nio.try_call(json!({
                "op": "decrypt_event", "machine": bob.handle, "room_id": room.room_id,
                "event_id": format!("${}-{index}", room.room_id), "sender": "@olmo:example.org",
                "content": content,
            }));
            if index < first_index {
                assert!(
                    result.is_err(),
                    "nio decrypted index {index} before the export"
                );
                continue;
            }
            let decrypted = result.unwrap();
            let expected: Value = serde_json::from_str(plaintext).unwrap();
            assert_eq!(decrypted["event_class"], "RoomMessageText");
            assert_eq!(decrypted["body"], expected["content"]["body"]);
            assert_eq!(decrypted["decrypted_room_id"], room.room_id.as_str());
        }
    }

    // Through nio's store and back: the same keys (nio drops `m.shared_history`).
    let again = decrypt_key_export(&nio_export(&mut nio, &bob, "another"), "another").unwrap();
    let mut expected = keys.clone();
    expected[1].shared_history = false;
    let mut again = again;
    again.sort_by(|a, b| a.room_id.cmp(&b.room_id));
    assert_same_keys(&again, &expected);
}

/// nio hands its passphrase to pycryptodome's PBKDF2 as a `str`, which encodes it as Latin-1;
/// the spec, Element, matrix-rust-sdk and olmo use UTF-8. So an ASCII passphrase works both
/// ways, a Latin-1 one gives files the other side rejects as a MAC failure, and anything
/// beyond Latin-1 makes nio fail outright. This pins that behaviour.
#[test]
fn non_ascii_passphrases_differ() {
    let mut nio = Peer::nio();
    let alice = machine(&mut nio, "@alice:example.org", "ALICE");
    nio.call(
        json!({"op": "outbound_create", "machine": alice.handle, "room_id": "!r:example.org"}),
    );
    let text = nio_export(&mut nio, &alice, "café");
    assert_eq!(
        decrypt_key_export(&text, "café").unwrap_err(),
        KeyExportError::Mac
    );
    let error = nio
        .try_call(json!({"op": "export_keys", "machine": alice.handle, "passphrase": "✓", "rounds": ROUNDS}))
        .unwrap_err();
    assert!(error.contains("latin-1"), "{error}");
    let ours = encrypt_key_export_with_rng(&[], "café", ROUNDS, &mut TestRng::new(1));
    let error = nio
        .try_call(json!({"op": "decrypt_file", "text": ours, "passphrase": "café"}))
        .unwrap_err();
    assert!(error.contains("HMAC"), "{error}");
}
