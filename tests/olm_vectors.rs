//! Replays the deterministic libolm 3.2.16 vectors in `test-vectors/olm/` byte for byte.
//!
//! Every random input libolm was given is handed to olmo through [`ScriptedRng`], which
//! yields exactly those bytes in order and panics if more are drawn; each test also checks
//! that every byte was consumed. So olmo must draw randomness exactly as libolm does, derive
//! the same keys, produce the same message bodies, and read and write the same pickles.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;

use olmo::crypto::{CipherKeys, Curve25519PublicKey, base64};
use olmo::olm::{Account, KeyId, OlmMessage, Session};
use olmo::persist::StorageKey;
use serde_json::Value;

mod common;

use common::hex::{hex, unhex};
use common::vectors::{self, ScriptedRng, arr, s, u};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn load(name: &str) -> Value {
    vectors::load("olm", name)
}

fn curve(hex_text: &str) -> Curve25519PublicKey {
    Curve25519PublicKey::from_bytes(unhex(hex_text).try_into().unwrap())
}

fn key_id(v: &Value) -> KeyId {
    KeyId(u32::try_from(u(v)).unwrap())
}

/// Decrypts a libolm pickle to its raw bytes (without padding).
fn pickle_raw(pickle: &str, pickle_key: &[u8]) -> Vec<u8> {
    let bytes = base64::decode(pickle).unwrap();
    let (ciphertext, mac) = bytes.split_at(bytes.len() - 8);
    let keys = CipherKeys::derive_with_salt(&[], pickle_key, b"Pickle");
    keys.verify_mac(&[ciphertext], mac).unwrap();
    keys.decrypt(ciphertext).unwrap().to_vec()
}

/// Asserts that `ours` is exactly libolm's pickle `expected["pickle"]`; on a mismatch, names
/// every field (from `expected["fields"]`) whose raw bytes differ.
fn assert_same_pickle(what: &str, ours: &str, expected: &Value, pickle_key: &[u8]) {
    let theirs = s(&expected["pickle"]);
    if ours == theirs {
        return;
    }
    let our_raw = pickle_raw(ours, pickle_key);
    let their_raw = unhex(s(&expected["raw"]));
    assert_eq!(
        pickle_raw(theirs, pickle_key),
        their_raw,
        "{what}: vector raw != its pickle"
    );
    let mut report = format!(
        "{what}: pickle differs from libolm's (raw length ours {} / libolm {})\n",
        our_raw.len(),
        their_raw.len()
    );
    for field in arr(&expected["fields"]) {
        let name = s(&field["name"]);
        let offset = usize::try_from(u(&field["offset"])).unwrap();
        let length = usize::try_from(u(&field["length"])).unwrap();
        let ours = our_raw.get(offset..offset + length);
        let theirs = &their_raw[offset..offset + length];
        if ours != Some(theirs) {
            writeln!(
                report,
                "  field {name} at offset {offset} (+{length}): ours {} / libolm {}",
                ours.map_or_else(|| "<missing>".to_owned(), hex),
                hex(theirs)
            )
            .unwrap();
        }
    }
    if our_raw.len() > their_raw.len() {
        writeln!(
            report,
            "  extra bytes in ours: {}",
            hex(&our_raw[their_raw.len()..])
        )
        .unwrap();
    }
    panic!("{report}");
}

// ---------------------------------------------------------------------------
// Accounts
// ---------------------------------------------------------------------------

fn account_from(label: &str, random_hex: &str) -> Account {
    let mut rng = ScriptedRng::from_hex(label, random_hex);
    let account = Account::with_rng(&mut rng);
    rng.assert_exhausted();
    account
}

#[test]
fn accounts() {
    let vectors = load("accounts.json");
    let accounts = arr(&vectors["accounts"]);
    assert_eq!(accounts.len(), 3);
    for v in accounts {
        let name = s(&v["name"]);
        let create = s(&v["create_random"]);
        assert_eq!(
            create,
            format!("{}{}", s(&v["ed25519_seed"]), s(&v["curve25519_private"]))
        );
        let mut account = account_from(&format!("{name}/create"), create);
        assert_eq!(
            hex(account.curve25519_key().as_bytes()),
            s(&v["curve25519_public"]),
            "{name}: curve25519 identity key"
        );
        assert_eq!(
            account.curve25519_key().to_base64(),
            s(&v["curve25519_public_base64"])
        );
        assert_eq!(
            hex(account.ed25519_key().as_bytes()),
            s(&v["ed25519_public"]),
            "{name}: ed25519 identity key"
        );
        assert_eq!(
            account.ed25519_key().to_base64(),
            s(&v["ed25519_public_base64"])
        );

        // One-time keys: libolm's ids rise with the chunks of the random input.
        let otk = &v["one_time_keys"];
        let count = usize::try_from(u(&otk["count"])).unwrap();
        let mut rng = ScriptedRng::from_hex(format!("{name}/otk"), s(&otk["random"]));
        account.generate_one_time_keys_with_rng(count, &mut rng);
        rng.assert_exhausted();
        let ours = account.unpublished_one_time_keys();
        let expected = arr(&otk["keys"]);
        assert_eq!(ours.len(), expected.len(), "{name}: one-time key count");
        for ((id, public), e) in ours.iter().zip(expected) {
            assert_eq!(*id, key_id(&e["key_id_u32"]), "{name}: one-time key id");
            assert_eq!(id.to_base64(), s(&e["key_id"]));
            assert_eq!(
                hex(public.as_bytes()),
                s(&e["public"]),
                "{name}: one-time key {id:?}"
            );
            assert_eq!(public.to_base64(), s(&e["public_base64"]));
        }

        // Fallback key: shares the id counter with one-time keys.
        let fb = &v["fallback_key"];
        let mut rng = ScriptedRng::from_hex(format!("{name}/fallback"), s(&fb["random"]));
        let id = account.generate_fallback_key_with_rng(&mut rng);
        rng.assert_exhausted();
        assert_eq!(id, key_id(&fb["key_id_u32"]), "{name}: fallback key id");
        assert_eq!(id.to_base64(), s(&fb["key_id"]));
        let (fb_id, fb_public) = account.unpublished_fallback_key().unwrap();
        assert_eq!(fb_id, id);
        assert_eq!(
            hex(fb_public.as_bytes()),
            s(&fb["public"]),
            "{name}: fallback key"
        );
        assert_eq!(fb_public.to_base64(), s(&fb["public_base64"]));

        // Deterministic RFC 8032 signature.
        let sig = &v["signature"];
        let signature = account.sign(s(&sig["message"]).as_bytes());
        assert_eq!(
            hex(signature.as_bytes()),
            s(&sig["signature"]),
            "{name}: signature"
        );
        assert_eq!(signature.to_base64(), s(&sig["signature_base64"]));
    }
}

// ---------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------

/// Both sides of a replayed conversation.
struct Replayed {
    alice: Session,
    bob: Option<Session>,
}

/// Rebuilds both accounts and Alice's outbound session from the vector's random inputs, then
/// replays every message: olmo's ciphertext must equal libolm's body, and the receiver (if the
/// message was delivered) must decrypt libolm's body to the plaintext.
fn replay(label: &str, c: &Value) -> Replayed {
    let alice_account = account_from(&format!("{label}/alice"), s(&c["alice_account_random"]));
    let mut bob_account = account_from(&format!("{label}/bob"), s(&c["bob_account_random"]));
    assert_eq!(
        hex(alice_account.curve25519_key().as_bytes()),
        s(&c["alice_identity_key"]),
        "{label}: Alice's identity key"
    );
    assert_eq!(
        hex(bob_account.curve25519_key().as_bytes()),
        s(&c["bob_identity_key"]),
        "{label}: Bob's identity key"
    );

    // Bob's one-time (or fallback) key.
    let mut rng =
        ScriptedRng::from_hex(format!("{label}/bob key"), s(&c["bob_one_time_key_random"]));
    let (id, bob_key) = match s(&c["bob_key_kind"]) {
        "fallback" => {
            bob_account.generate_fallback_key_with_rng(&mut rng);
            bob_account.unpublished_fallback_key().unwrap()
        }
        "one_time" => {
            bob_account.generate_one_time_keys_with_rng(1, &mut rng);
            let keys = bob_account.unpublished_one_time_keys();
            assert_eq!(keys.len(), 1);
            keys[0]
        }
        other => panic!("unknown key kind {other}"),
    };
    rng.assert_exhausted();
    let expected_key = &c["bob_one_time_key"];
    assert_eq!(id, key_id(&expected_key["key_id_u32"]), "{label}: key id");
    assert_eq!(id.to_base64(), s(&expected_key["key_id"]));
    assert_eq!(
        bob_key,
        curve(s(&expected_key["public"])),
        "{label}: Bob's key"
    );

    // Alice's outbound session: base key, then first ratchet key.
    let outbound = s(&c["alice_outbound_random"]);
    assert_eq!(
        outbound,
        format!(
            "{}{}",
            s(&c["alice_base_key_private"]),
            s(&c["alice_ratchet_key_private"])
        )
    );
    let mut rng = ScriptedRng::from_hex(format!("{label}/outbound"), outbound);
    let alice = alice_account
        .create_outbound_session_with_rng(bob_account.curve25519_key(), bob_key, &mut rng)
        .unwrap();
    rng.assert_exhausted();

    let mut sides = Replayed { alice, bob: None };
    for (i, m) in arr(&c["messages"]).iter().enumerate() {
        let sender = s(&m["sender"]);
        let plaintext = s(&m["plaintext"]);
        let what = format!("{label} message {i} ({sender}: {plaintext:?})");
        let message_type = u8::try_from(u(&m["message_type"])).unwrap();
        let body = unhex(s(&m["body"]));
        assert_eq!(base64::encode(&body), s(&m["body_base64"]));

        // Encrypt on olmo's side with exactly libolm's randomness.
        let random = s(&m["encrypt_random"]);
        let mut rng = if random.is_empty() {
            ScriptedRng::empty(format!("{what} encrypt"))
        } else {
            ScriptedRng::from_hex(format!("{what} encrypt"), random)
        };
        let session = match sender {
            "alice" => &mut sides.alice,
            "bob" => sides
                .bob
                .as_mut()
                .unwrap_or_else(|| panic!("{what}: Bob has no session yet")),
            other => panic!("unknown sender {other}"),
        };
        let ours = session
            .encrypt_with_rng(plaintext.as_bytes(), &mut rng)
            .unwrap();
        rng.assert_exhausted();
        assert_eq!(
            ours.message_type().as_u8(),
            message_type,
            "{what}: message type"
        );
        assert_eq!(
            hex(ours.as_bytes()),
            hex(&body),
            "{what}: olmo's ciphertext differs from libolm's"
        );

        if m.get("delivered").and_then(Value::as_bool) == Some(false) {
            continue;
        }

        // The receiver decrypts libolm's body.
        let message = OlmMessage::from_parts(message_type, &body).unwrap();
        let decrypted = match (sender, sides.bob.as_mut()) {
            ("alice", None) => {
                let OlmMessage::PreKey(pre_key) = &message else {
                    panic!("{what}: Bob's first message must be a pre-key message");
                };
                let created = bob_account
                    .create_inbound_session(alice_account.curve25519_key(), pre_key)
                    .unwrap();
                sides.bob = Some(created.session);
                created.plaintext.to_vec()
            }
            ("alice", Some(bob)) => bob.decrypt(&message).unwrap().to_vec(),
            _ => sides.alice.decrypt(&message).unwrap().to_vec(),
        };
        assert_eq!(decrypted, plaintext.as_bytes(), "{what}: decryption");
    }

    let bob = sides.bob.as_ref().expect("Bob never received a message");
    let session_id = s(&c["session_id_base64"]);
    assert_eq!(base64::encode(unhex(s(&c["session_id"]))), session_id);
    assert_eq!(sides.alice.session_id(), session_id, "{label}: Alice's id");
    assert_eq!(bob.session_id(), session_id, "{label}: Bob's id");
    sides
}

#[test]
fn sessions() {
    let vectors = load("sessions.json");
    let conversations = arr(&vectors["conversations"]);
    let names: Vec<&str> = conversations.iter().map(|c| s(&c["name"])).collect();
    assert_eq!(names, ["ping_pong", "burst", "fallback"]);
    for c in conversations {
        replay(s(&c["name"]), c);
    }
}

// ---------------------------------------------------------------------------
// Pickles
// ---------------------------------------------------------------------------

#[test]
fn account_pickle() {
    let vectors = load("pickles.json");
    let pickle_key = unhex(s(&vectors["pickle_key"]));
    assert_eq!(pickle_key, s(&vectors["pickle_key_ascii"]).as_bytes());
    let v = &vectors["account"];

    // Import libolm's pickle.
    let account = Account::from_libolm_pickle(s(&v["pickle"]), &pickle_key).unwrap();
    assert_eq!(
        hex(account.curve25519_key().as_bytes()),
        s(&v["identity_keys"]["curve25519"])
    );
    assert_eq!(
        hex(account.ed25519_key().as_bytes()),
        s(&v["identity_keys"]["ed25519"])
    );
    let mut expected: Vec<(String, String)> = v["one_time_keys"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(id, public)| (id.clone(), s(public).to_owned()))
        .collect();
    expected.sort_by_key(|(id, _)| base64::decode(id).unwrap());
    let ours: Vec<(String, String)> = account
        .unpublished_one_time_keys()
        .iter()
        .map(|(id, public)| (id.to_base64(), hex(public.as_bytes())))
        .collect();
    assert_eq!(ours, expected, "unpublished one-time keys");
    let fallback: Vec<(String, String)> = account
        .unpublished_fallback_key()
        .iter()
        .map(|(id, public)| (id.to_base64(), hex(public.as_bytes())))
        .collect();
    let expected_fallback: Vec<(String, String)> = v["unpublished_fallback_key"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(id, public)| (id.clone(), s(public).to_owned()))
        .collect();
    assert_eq!(fallback, expected_fallback, "unpublished fallback key");

    // Export it again: libolm's pickle is deterministic (IV from the key).
    assert_same_pickle(
        "re-exported account",
        &account.to_libolm_pickle(&pickle_key),
        v,
        &pickle_key,
    );

    // Through our own storage format and back, unchanged.
    let storage_key = StorageKey::from_bytes([7; 32]);
    let restored = Account::restore(&account.save(&storage_key), &storage_key).unwrap();
    assert_same_pickle(
        "account after save/restore",
        &restored.to_libolm_pickle(&pickle_key),
        v,
        &pickle_key,
    );

    // Build the same account from the random inputs and the steps; it pickles identically.
    let mut built = account_from("pickle account", s(&v["create_random"]));
    for (i, step) in arr(&v["steps"]).iter().enumerate() {
        let op = s(&step["op"]);
        let random = s(&step["random"]);
        let mut rng = if random.is_empty() {
            ScriptedRng::empty(format!("step {i} {op}"))
        } else {
            ScriptedRng::from_hex(format!("step {i} {op}"), random)
        };
        match op {
            "generate_fallback_key" => {
                built.generate_fallback_key_with_rng(&mut rng);
            }
            "mark_keys_as_published" => built.mark_keys_as_published(),
            _ => {
                let count = op
                    .strip_prefix("generate_one_time_keys(")
                    .and_then(|rest| rest.strip_suffix(')'))
                    .unwrap_or_else(|| panic!("unknown step {op}"));
                built.generate_one_time_keys_with_rng(count.parse().unwrap(), &mut rng);
            }
        }
        rng.assert_exhausted();
    }
    assert_same_pickle(
        "account built from the steps",
        &built.to_libolm_pickle(&pickle_key),
        v,
        &pickle_key,
    );
}

#[test]
fn session_pickles() {
    let vectors = load("pickles.json");
    let pickle_key = unhex(s(&vectors["pickle_key"]));
    let v = &vectors["session"];
    let conversation = &v["conversation"];
    let session_id = s(&conversation["session_id_base64"]);
    let messages = arr(&conversation["messages"]);
    let (lost_index, lost) = messages
        .iter()
        .enumerate()
        .find(|(_, m)| m.get("delivered").and_then(Value::as_bool) == Some(false))
        .expect("a lost message");
    assert_eq!(s(&lost["plaintext"]), "fourth (lost)");

    // Import both sides.
    let alice = Session::from_libolm_pickle(s(&v["alice"]["pickle"]), &pickle_key).unwrap();
    let mut bob = Session::from_libolm_pickle(s(&v["bob"]["pickle"]), &pickle_key).unwrap();
    assert_eq!(
        alice.session_id(),
        session_id,
        "Alice's imported session id"
    );
    assert_eq!(bob.session_id(), session_id, "Bob's imported session id");
    assert!(alice.has_received_message());
    assert!(bob.has_received_message());

    // Export again, before anything changes the state.
    assert_same_pickle(
        "re-exported Alice session",
        &alice.to_libolm_pickle(&pickle_key),
        &v["alice"],
        &pickle_key,
    );
    assert_same_pickle(
        "re-exported Bob session",
        &bob.to_libolm_pickle(&pickle_key),
        &v["bob"],
        &pickle_key,
    );

    // Our own storage format keeps everything, including the skipped key.
    let storage_key = StorageKey::from_bytes([9; 32]);
    let restored = Session::restore(&bob.save(&storage_key), &storage_key).unwrap();
    assert_same_pickle(
        "Bob session after save/restore",
        &restored.to_libolm_pickle(&pickle_key),
        &v["bob"],
        &pickle_key,
    );

    // Bob decrypts the lost message with the skipped key from libolm's pickle.
    let lost_message = OlmMessage::from_parts(
        u8::try_from(u(&lost["message_type"])).unwrap(),
        &unhex(s(&lost["body"])),
    )
    .unwrap();
    let plaintext = bob.decrypt(&lost_message).unwrap();
    assert_eq!(
        &plaintext[..],
        b"fourth (lost)",
        "lost message {lost_index}"
    );
    // The skipped key is used up.
    assert!(bob.decrypt(&lost_message).is_err());

    // Replaying the conversation in olmo yields the very same pickles.
    let replayed = replay("pickle session", conversation);
    assert_same_pickle(
        "replayed Alice session",
        &replayed.alice.to_libolm_pickle(&pickle_key),
        &v["alice"],
        &pickle_key,
    );
    assert_same_pickle(
        "replayed Bob session",
        &replayed.bob.unwrap().to_libolm_pickle(&pickle_key),
        &v["bob"],
        &pickle_key,
    );
}
