//! Replays the deterministic libolm 3.2.16 Megolm vectors in `test-vectors/megolm/` byte for
//! byte with olmo's first Megolm layer (ratchet, message, session and exported keys).
//!
//! libolm's outbound session takes 160 random bytes: the ratchet `R0‖R1‖R2‖R3` (128) and an
//! RFC 8032 Ed25519 seed (32). AES-CBC (IV from HKDF), HMAC and Ed25519 signatures are all
//! deterministic, so the same ratchet and seed must give exactly libolm's messages and keys.
//! The session-level API and libolm pickles are replayed in `megolm_vectors_pickles.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::hex::unhex;
use common::vectors::{self, arr, index, s};

use olmo::crypto::Ed25519KeyPair;
use olmo::megolm::{AdvanceError, ExportedSessionKey, MegolmMessage, MegolmRatchet, SessionKey};
use serde_json::Value;

fn load(name: &str) -> Value {
    vectors::load("megolm", name)
}

fn ratchet(hex_text: &str, at: u32) -> MegolmRatchet {
    MegolmRatchet::from_bytes(&unhex(hex_text).try_into().unwrap(), at)
}

fn seed(hex_text: &str) -> Ed25519KeyPair {
    Ed25519KeyPair::from_seed(&unhex(hex_text).try_into().unwrap())
}

#[test]
fn meta_names_libolm_3_2_16() {
    for file in ["ratchet.json", "sessions.json", "pickles.json"] {
        let meta = &load(file)["meta"];
        assert_eq!(s(&meta["libolm_version"]), "3.2.16", "{file}");
        assert_eq!(s(&meta["generator"]), "test-vectors/megolm/generate.py");
    }
}

// ---------------------------------------------------------------------------
// Ratchet
// ---------------------------------------------------------------------------

#[test]
fn ratchet_jumps_match_libolm_at_every_index() {
    let v = load("ratchet.json");
    for table in arr(&v["tables"]) {
        let label = s(&table["label"]);
        let start_index = index(&table["start_index"]);
        let start = ratchet(s(&table["start_ratchet"]), start_index);
        let mut chained = start.clone();
        for row in arr(&table["advances"]) {
            let at = index(&row["index"]);
            let expected = unhex(s(&row["ratchet"]));
            // One jump from the start, and a chain of jumps through every earlier row.
            let mut jumped = start.clone();
            jumped.advance_to(at).unwrap();
            chained.advance_to(at).unwrap();
            assert_eq!(jumped.index(), at);
            assert_eq!(
                jumped.as_bytes().as_slice(),
                expected,
                "{label}: jump to {at}"
            );
            assert_eq!(
                chained.as_bytes().as_slice(),
                expected,
                "{label}: chain to {at}"
            );
            // libolm's inbound session refuses a jump of 2^31 or more as "in the past" (the
            // vector then reached the index in shorter hops); olmo orders indices as plain u32.
            let far = u64::from(at) - u64::from(start_index) >= 1 << 31;
            assert_eq!(
                row.get("libolm_error").map(s),
                far.then_some("UNKNOWN_MESSAGE_INDEX"),
                "{label}: {at}"
            );
        }
        // The ratchet only moves forward: the table's first row is now in the past.
        let first = index(&arr(&table["advances"])[0]["index"]);
        assert_eq!(
            chained.advance_to(first),
            Err(AdvanceError::InThePast {
                current: u32::MAX,
                requested: first
            })
        );
    }
}

#[test]
fn ratchet_single_steps_match_libolm() {
    let v = load("ratchet.json");
    for table in arr(&v["tables"]) {
        let start_index = index(&table["start_index"]);
        let mut stepped = ratchet(s(&table["start_ratchet"]), start_index);
        // Step one index at a time through every row within 0x200 of the start (across the
        // roll-overs of R3, R2 and, for the second table, R1 and R0).
        for row in arr(&table["advances"]) {
            let at = index(&row["index"]);
            if at - start_index > 0x200 {
                continue;
            }
            while stepped.index() < at {
                stepped.advance().unwrap();
            }
            assert_eq!(
                stepped.as_bytes().as_slice(),
                unhex(s(&row["ratchet"])),
                "{at}"
            );
        }
    }
}

#[test]
fn ratchet_at_u32_max_is_exhausted_in_olmo() {
    let v = load("ratchet.json");
    let table = &arr(&v["tables"])[0];
    let last = arr(&table["advances"]).last().unwrap();
    assert_eq!(index(&last["index"]), u32::MAX);
    let mut end = ratchet(s(&last["ratchet"]), u32::MAX);
    assert_eq!(end.advance(), Err(AdvanceError::Exhausted));
}

// ---------------------------------------------------------------------------
// Outbound: session keys and messages
// ---------------------------------------------------------------------------

/// Every message libolm wrote, from the first plaintexts and the later indices.
fn all_messages(outbound: &Value) -> impl Iterator<Item = &Value> {
    arr(&outbound["messages"])
        .iter()
        .chain(arr(&outbound["later"]))
}

#[test]
fn outbound_random_is_ratchet_then_ed25519_seed() {
    let v = load("sessions.json");
    let out = &v["outbound"];
    let random = unhex(s(&out["random"]));
    assert_eq!(random.len(), 160);
    assert_eq!(unhex(s(&out["ratchet_random"])), random[..128]);
    assert_eq!(unhex(s(&out["ed25519_seed"])), random[128..]);
    let signing = seed(s(&out["ed25519_seed"]));
    assert_eq!(
        signing.public_key().as_bytes().as_slice(),
        unhex(s(&out["signing_key"]))
    );
    assert_eq!(
        signing.public_key().to_base64(),
        s(&out["session_id_base64"])
    );
}

#[test]
fn session_keys_match_libolm_byte_for_byte() {
    let v = load("sessions.json");
    let out = &v["outbound"];
    let signing = seed(s(&out["ed25519_seed"]));
    let mut r = ratchet(s(&out["ratchet_random"]), 0);
    let keys = std::iter::once((0, s(&out["session_key_base64"]))).chain(
        arr(&out["later"])
            .iter()
            .map(|m| (index(&m["index"]), s(&m["session_key_base64"]))),
    );
    for (at, expected) in keys {
        r.advance_to(at).unwrap();
        assert_eq!(
            *SessionKey::new(&r, &signing).to_base64(),
            expected,
            "key at {at}"
        );
        let decoded = SessionKey::from_base64(expected).unwrap();
        assert_eq!(decoded.ratchet().index(), at);
        assert_eq!(decoded.ratchet().as_bytes(), r.as_bytes());
        assert_eq!(decoded.signing_key(), signing.public_key());
        assert_eq!(decoded.session_id(), s(&out["session_id_base64"]));
        assert_eq!(*decoded.to_base64(), expected);
    }
}

#[test]
fn encrypting_gives_libolm_messages_byte_for_byte() {
    let v = load("sessions.json");
    let out = &v["outbound"];
    let signing = seed(s(&out["ed25519_seed"]));
    let mut r = ratchet(s(&out["ratchet_random"]), 0);
    let mut count = 0;
    for m in all_messages(out) {
        let at = index(&m["index"]);
        r.advance_to(at).unwrap();
        let ours = MegolmMessage::encrypt(&r, &signing, s(&m["plaintext"]).as_bytes()).unwrap();
        assert_eq!(ours.to_base64(), s(&m["message_base64"]), "message {at}");
        assert_eq!(ours.as_bytes(), unhex(s(&m["message"])));
        r.advance().unwrap();
        count += 1;
    }
    assert_eq!(count, 13);
}

#[test]
fn libolm_messages_decode_and_decrypt() {
    let v = load("sessions.json");
    let out = &v["outbound"];
    let key = SessionKey::from_base64(s(&out["session_key_base64"])).unwrap();
    for m in all_messages(out) {
        let at = index(&m["index"]);
        let message = MegolmMessage::from_base64(s(&m["message_base64"])).unwrap();
        assert_eq!(message.message_index(), at);
        assert_eq!(message.as_bytes(), unhex(s(&m["message"])));
        assert_eq!(message.to_base64(), s(&m["message_base64"]));
        let mut r = key.ratchet().clone();
        r.advance_to(at).unwrap();
        let plaintext = message.decrypt(&r, &key.signing_key()).unwrap();
        assert_eq!(
            &plaintext[..],
            s(&m["plaintext"]).as_bytes(),
            "message {at}"
        );
        // The key libolm shared at that index opens it too, without any advance.
        if let Some(later) = m.get("session_key_base64") {
            let late = SessionKey::from_base64(s(later)).unwrap();
            assert_eq!(late.ratchet().index(), at);
            let plaintext = message
                .decrypt(late.ratchet(), &late.signing_key())
                .unwrap();
            assert_eq!(&plaintext[..], s(&m["plaintext"]).as_bytes());
        }
    }
}

// ---------------------------------------------------------------------------
// Inbound exports
// ---------------------------------------------------------------------------

fn check_export(e: &Value, from: &SessionKey) {
    let at = index(&e["index"]);
    let expected = s(&e["export_base64"]);
    let mut r = from.ratchet().clone();
    r.advance_to(at).unwrap();
    let ours = ExportedSessionKey::new(&r, from.signing_key());
    assert_eq!(*ours.to_base64(), expected, "export at {at}");
    let decoded = ExportedSessionKey::from_base64(expected).unwrap();
    assert_eq!(decoded.ratchet().index(), at);
    assert_eq!(
        decoded.ratchet().as_bytes().as_slice(),
        unhex(s(&e["ratchet"]))
    );
    assert_eq!(
        decoded.signing_key().as_bytes().as_slice(),
        unhex(s(&e["signing_key"]))
    );
    assert_eq!(*decoded.to_base64(), expected);
}

#[test]
fn exports_match_libolm_byte_for_byte() {
    let v = load("sessions.json");
    let key = SessionKey::from_base64(s(&v["outbound"]["session_key_base64"])).unwrap();
    let exports = &v["inbound_exports"];
    let listed: Vec<u32> = arr(&exports["exports"])
        .iter()
        .map(|e| index(&e["index"]))
        .collect();
    assert_eq!(
        listed,
        [
            0,
            1,
            255,
            256,
            257,
            1000,
            65535,
            65536,
            1 << 24,
            0x0102_0304,
            0x7FFF_FFFF
        ]
    );
    for e in arr(&exports["exports"]) {
        check_export(e, &key);
    }
    // An export decrypts the message libolm wrote at its index, whichever index that is.
    for m in all_messages(&v["outbound"]) {
        let at = index(&m["index"]);
        let Some(e) = arr(&exports["exports"])
            .iter()
            .find(|e| index(&e["index"]) == at)
        else {
            continue;
        };
        let export = ExportedSessionKey::from_base64(s(&e["export_base64"])).unwrap();
        let message = MegolmMessage::from_base64(s(&m["message_base64"])).unwrap();
        let plaintext = message
            .decrypt(export.ratchet(), &export.signing_key())
            .unwrap();
        assert_eq!(&plaintext[..], s(&m["plaintext"]).as_bytes());
    }
}

#[test]
fn an_import_knows_nothing_before_its_index() {
    let v = load("sessions.json");
    let exports = &v["inbound_exports"];
    let imported = &exports["imported"];
    let from = index(&imported["from_export_index"]);
    let source = arr(&exports["exports"])
        .iter()
        .find(|e| index(&e["index"]) == from)
        .unwrap();
    let export = ExportedSessionKey::from_base64(s(&source["export_base64"])).unwrap();
    // libolm refuses an export before the first known index; so does olmo's ratchet.
    assert_eq!(
        s(&imported["export_at_255_libolm_error"]),
        "UNKNOWN_MESSAGE_INDEX"
    );
    let mut r = export.ratchet().clone();
    assert_eq!(
        r.advance_to(255),
        Err(AdvanceError::InThePast {
            current: 256,
            requested: 255
        })
    );
    // From the import, 1000 is reached as from the signed key.
    let export_key = SessionKey::from_base64(s(&v["outbound"]["session_key_base64"])).unwrap();
    check_export(&imported["export_at_1000"], &export_key);
    r.advance_to(1000).unwrap();
    let ours = ExportedSessionKey::new(&r, export.signing_key());
    assert_eq!(
        *ours.to_base64(),
        s(&imported["export_at_1000"]["export_base64"])
    );
}
