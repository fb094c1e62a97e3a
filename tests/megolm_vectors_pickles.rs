//! Replays the libolm 3.2.16 Megolm vectors in `test-vectors/megolm/` with olmo's sessions:
//! [`GroupSession`] fed libolm's random bytes writes libolm's keys, messages and pickles, and
//! [`InboundGroupSession`] decrypts, exports and pickles as libolm does.
//!
//! One known difference: libolm marks an imported session's signing key verified once a
//! message decrypts under it; olmo (like vodozemac) keeps `is_verified` for keys that came
//! signed (`m.room_key`), so that one pickle differs from libolm's in its last byte.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::hex::unhex;
use common::vectors::{self, ScriptedRng, arr, index, s};

use olmo::crypto::{CipherKeys, base64};
use olmo::megolm::{
    ExportedSessionKey, GroupSession, InboundGroupSession, MegolmMessage, SessionKey, Timestamp,
};
use serde_json::Value;

fn load(name: &str) -> Value {
    vectors::load("megolm", name)
}

const T0: Timestamp = Timestamp::from_millis(0);

/// An outbound session from libolm's 160 random bytes, all of which must be drawn.
fn outbound(random_hex: &str) -> GroupSession {
    assert_eq!(random_hex.len(), 2 * 160, "libolm draws 160 bytes");
    let mut rng = ScriptedRng::from_hex("libolm", random_hex);
    let session = GroupSession::new_with_rng(T0, &mut rng);
    rng.assert_exhausted();
    session
}

fn message(m: &Value) -> MegolmMessage {
    MegolmMessage::from_base64(s(&m["message_base64"])).unwrap()
}

/// Decrypts a libolm pickle to its raw bytes (without padding).
fn pickle_raw(pickle: &str, pickle_key: &[u8]) -> Vec<u8> {
    let bytes = base64::decode(pickle).unwrap();
    let (ciphertext, mac) = bytes.split_at(bytes.len() - 8);
    let keys = CipherKeys::derive_with_salt(&[], pickle_key, b"Pickle");
    keys.verify_mac(&[ciphertext], mac).unwrap();
    keys.decrypt(ciphertext).unwrap().to_vec()
}

// ---------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------

#[test]
fn group_session_writes_libolm_keys_and_messages() {
    let v = load("sessions.json");
    let out = &v["outbound"];
    let mut session = outbound(s(&out["random"]));
    assert_eq!(session.session_id(), s(&out["session_id_base64"]));
    assert_eq!(
        *session.session_key().to_base64(),
        s(&out["session_key_base64"])
    );
    for m in arr(&out["messages"]) {
        assert_eq!(session.message_index(), index(&m["index"]));
        let ours = session.encrypt(s(&m["plaintext"]).as_bytes()).unwrap();
        assert_eq!(ours.to_base64(), s(&m["message_base64"]));
    }
    // Up to 257 by encrypting (Ed25519 signing in a debug build is too slow for 65,536).
    for m in arr(&out["later"]).iter().take(3) {
        while session.message_index() < index(&m["index"]) {
            session.encrypt(b"filler").unwrap();
        }
        assert_eq!(
            *session.session_key().to_base64(),
            s(&m["session_key_base64"])
        );
        let ours = session.encrypt(s(&m["plaintext"]).as_bytes()).unwrap();
        assert_eq!(ours.to_base64(), s(&m["message_base64"]));
    }
}

#[test]
fn inbound_session_decrypts_and_exports_as_libolm() {
    let v = load("sessions.json");
    let out = &v["outbound"];
    let key = SessionKey::from_base64(s(&out["session_key_base64"])).unwrap();
    let mut inbound = InboundGroupSession::new(&key);
    assert_eq!(inbound.session_id(), s(&out["session_id_base64"]));
    assert!(inbound.is_verified());
    for m in arr(&out["messages"]).iter().chain(arr(&out["later"])) {
        let decrypted = inbound.decrypt(&message(m)).unwrap();
        assert_eq!(decrypted.message_index, index(&m["index"]));
        assert_eq!(&decrypted.plaintext[..], s(&m["plaintext"]).as_bytes());
    }
    let exports = &v["inbound_exports"];
    for e in arr(&exports["exports"]) {
        let ours = inbound.export_at(index(&e["index"])).unwrap();
        assert_eq!(*ours.to_base64(), s(&e["export_base64"]));
    }
    let imported = &exports["imported"];
    let from = arr(&exports["exports"])
        .iter()
        .find(|e| index(&e["index"]) == index(&imported["from_export_index"]))
        .unwrap();
    let copy = InboundGroupSession::import(
        &ExportedSessionKey::from_base64(s(&from["export_base64"])).unwrap(),
    );
    assert_eq!(
        copy.first_known_index(),
        index(&imported["first_known_index"])
    );
    assert!(!copy.is_verified());
    // libolm: UNKNOWN_MESSAGE_INDEX.
    assert!(copy.export_at(255).is_none());
    assert_eq!(
        *copy.export_at(1000).unwrap().to_base64(),
        s(&imported["export_at_1000"]["export_base64"])
    );
}

// ---------------------------------------------------------------------------
// Pickles
// ---------------------------------------------------------------------------

#[test]
fn outbound_pickles_match_libolm() {
    let v = load("pickles.json");
    let key = v["pickle_key_ascii"].as_str().unwrap().as_bytes().to_vec();
    assert_eq!(key, unhex(s(&v["pickle_key"])));
    let out = &v["outbound"];
    let (fresh, advanced) = (&out["pickles"]["fresh"], &out["pickles"]["advanced"]);
    let mut session = outbound(s(&fresh["random"]));
    assert_eq!(session.to_libolm_pickle(&key), s(&fresh["pickle"]));
    for m in arr(&out["messages"]) {
        assert_eq!(
            session
                .encrypt(s(&m["plaintext"]).as_bytes())
                .unwrap()
                .to_base64(),
            s(&m["message_base64"])
        );
    }
    assert_eq!(session.to_libolm_pickle(&key), s(&advanced["pickle"]));

    for p in [fresh, advanced] {
        let restored = GroupSession::from_libolm_pickle(s(&p["pickle"]), &key, T0).unwrap();
        assert_eq!(restored.message_index(), index(&p["message_index"]));
        assert_eq!(restored.session_id(), s(&out["session_id_base64"]));
        assert_eq!(restored.to_libolm_pickle(&key), s(&p["pickle"]));
    }
    let mut restored = GroupSession::from_libolm_pickle(s(&advanced["pickle"]), &key, T0).unwrap();
    assert_eq!(
        *restored.session_key().to_base64(),
        s(&advanced["session_key_base64"])
    );
    let after = &out["message_after_pickle"];
    assert_eq!(
        restored
            .encrypt(s(&after["plaintext"]).as_bytes())
            .unwrap()
            .to_base64(),
        s(&after["message_base64"])
    );
}

#[test]
fn inbound_pickles_match_libolm() {
    let v = load("pickles.json");
    let key = v["pickle_key_ascii"].as_str().unwrap().as_bytes().to_vec();
    let (out, inb) = (&v["outbound"], &v["inbound"]);
    let msgs = arr(&out["messages"]);
    let key0 = SessionKey::from_base64(s(&out["session_key_at_0_base64"])).unwrap();

    let mut session = InboundGroupSession::new(&key0);
    assert_eq!(session.to_libolm_pickle(&key), s(&inb["new"]["pickle"]));
    // Out of order, as libolm was given them: the latest ratchet ends at 2.
    for m in [&msgs[2], &msgs[0]] {
        session.decrypt(&message(m)).unwrap();
    }
    assert_eq!(
        session.to_libolm_pickle(&key),
        s(&inb["decrypted"]["pickle"])
    );

    let export = ExportedSessionKey::from_base64(s(&inb["imported"]["export_base64"])).unwrap();
    let mut imported = InboundGroupSession::import(&export);
    assert_eq!(
        imported.to_libolm_pickle(&key),
        s(&inb["imported"]["pickle"])
    );
    imported.decrypt(&message(&msgs[1])).unwrap();
    // libolm sets signing_key_verified after a successful decrypt; olmo does not.
    let ours = pickle_raw(&imported.to_libolm_pickle(&key), &key);
    let theirs = pickle_raw(s(&inb["imported_decrypted"]["pickle"]), &key);
    assert_eq!(unhex(s(&inb["imported_decrypted"]["raw"])), theirs);
    assert_eq!(ours.len(), theirs.len());
    assert_eq!(ours[..ours.len() - 1], theirs[..theirs.len() - 1]);
    assert_eq!((ours[ours.len() - 1], theirs[theirs.len() - 1]), (0, 1));

    for (name, p) in inb.as_object().unwrap() {
        let restored = InboundGroupSession::from_libolm_pickle(s(&p["pickle"]), &key).unwrap();
        assert_eq!(
            restored.first_known_index(),
            index(&p["first_known_index"]),
            "{name}"
        );
        assert_eq!(
            restored.is_verified(),
            p["is_verified"].as_bool().unwrap(),
            "{name}"
        );
        assert_eq!(restored.session_id(), s(&out["session_id_base64"]));
        assert_eq!(restored.to_libolm_pickle(&key), s(&p["pickle"]), "{name}");
        // Every restored copy opens the message written after the outbound pickle.
        let mut restored = restored;
        let after = &out["message_after_pickle"];
        let decrypted = restored.decrypt(&message(after)).unwrap();
        assert_eq!(&decrypted.plaintext[..], s(&after["plaintext"]).as_bytes());
    }
}
