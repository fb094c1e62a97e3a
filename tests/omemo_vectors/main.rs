//! Replays the OMEMO vectors in `test-vectors/omemo2/` and `test-vectors/omemo03/` byte for
//! byte: `conversation.json` and `payloads.json`, made by python-omemo (twomemo, oldmemo), and
//! `olmo_conversation.json`, the same conversation made by olmo (regenerate it with
//! `OLMO_WRITE_OMEMO_VECTORS=1 cargo test --test omemo_vectors -- --ignored write_olmo_vectors`).
//!
//! olmo devices and sessions are built from the recorded private keys, and every random input
//! the maker drew is handed to olmo through [`ScriptedRng`] in the order olmo draws it
//! (python-omemo draws a ratchet key when a new peer ratchet key arrives, olmo when it next
//! sends; python draws the payload key before X3DH, olmo after: the values are the same). Then:
//! * every `<key>` element olmo writes equals the recorded one, bit for bit, and so do the
//!   payloads and `<encrypted>` elements (parsed, and as text: olmo writes python-omemo's XML
//!   exactly, but with single quotes);
//! * every recorded message decrypts in olmo to the recorded key material and plaintext;
//! * the X3DH shared secret and associated data follow from the recorded keys, the recorded
//!   bundles parse and verify in olmo, and olmo's bundles hold the same keys.
//!
//! What cannot match, and why (see the READMEs): olmo's OMEMO 0.3 `Device` writes the key
//! exchange's `registrationId` (its device id, as Conversations does) where oldmemo writes none
//! (`OmemoSession::initiate` takes it as a parameter, and matches oldmemo without it); and
//! python-omemo's signed pre-key signatures, which olmo does not reproduce (both valid): olmo
//! signs OMEMO 2 with deterministic RFC 8032 Ed25519 where python-omemo uses XEdDSA, and for
//! 0.3 both use XEdDSA with the same nonce but hash different encodings of the scalar.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../common/mod.rs"]
mod common;
mod olmo_made;
mod support;

use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::{Scalar, clamp_integer};
use olmo::crypto::hazmat::hkdf_sha256;
use olmo::crypto::{Curve25519PublicKey, Ed25519KeyPair, Ed25519Signature};
use olmo::omemo::payload;
use olmo::omemo::stanza::{self, EncryptedElement, Envelope};
use olmo::omemo::{
    Omemo2, Omemo03, OmemoProfile, OmemoSession, SealedKey, VerifiedBundle, Version,
};
use serde_json::Value;
use sha2::{Digest, Sha512};

use support::{
    CONVERSATIONS, Maker, ScriptedRng, TestRng, arr, b, b32, bundle_with_chosen_pre_key, device,
    device_id, hex, identity, import_pre_keys, import_rng, jid, load, public_of, python_bundle, s,
    u32_of, x3dh,
};

const VERSIONS: [Version; 2] = [Version::Omemo2, Version::Omemo03];

fn conversation(version: Version, maker: Maker) -> Value {
    let vectors = load(version, maker.file());
    assert_eq!(s(&vectors["namespace"]), version.namespace());
    assert_eq!(arr(&vectors["messages"]).len(), 7);
    vectors
}

fn messages(vectors: &Value) -> &Vec<Value> {
    arr(&vectors["messages"])
}

fn from_alice(message: &Value) -> bool {
    match s(&message["from"]) {
        "alice" => true,
        "bob" => false,
        other => panic!("unknown sender {other}"),
    }
}

fn is_empty(message: &Value) -> bool {
    s(&message["type"]) == "empty"
}

fn number(message: &Value) -> u32 {
    u32_of(&message["number"])
}

/// The registration id the conversation's key exchanges carry (OMEMO 0.3 made by olmo).
fn registration_id(vectors: &Value) -> Option<u32> {
    let first = &messages(vectors)[0]["key_exchange"]["registration_id"];
    first.as_u64().map(|id| u32::try_from(id).unwrap())
}

// ---------------------------------------------------------------------------
// Keys and bundles
// ---------------------------------------------------------------------------

#[test]
fn recorded_keys_make_the_recorded_identities_and_bundles() {
    for (version, maker) in CONVERSATIONS {
        let vectors = conversation(version, maker);
        for name in ["alice", "bob"] {
            let recorded = &vectors["devices"][name];
            let label = format!("{version:?} {maker:?} {name}");
            let identity = identity(recorded);
            assert_eq!(
                hex(identity.curve25519_secret().to_bytes().as_ref()),
                s(&recorded["identity_private"]),
                "{label}: the seed's X25519 scalar (xeddsa.seed_to_priv)"
            );
            assert_eq!(
                hex(identity.ed25519_key().as_bytes()),
                s(&recorded["identity_ed25519"])
            );
            assert_eq!(
                hex(identity.curve25519_key().as_bytes()),
                s(&recorded["identity_curve25519"])
            );
            let spk = &recorded["signed_pre_key"];
            assert_eq!(
                public_of(&b32(&spk["private"])),
                Curve25519PublicKey::from_bytes(b32(&spk["public"]))
            );
            let recorded_pre_keys: Vec<(u32, Curve25519PublicKey)> = arr(&recorded["pre_keys"])
                .iter()
                .map(|key| {
                    let public = public_of(&b32(&key["private"]));
                    assert_eq!(hex(public.as_bytes()), s(&key["public"]));
                    (u32_of(&key["id"]), public)
                })
                .collect();

            // The recorded bundle: parses, its signature verifies, it holds the recorded keys.
            let recorded_bundle = python_bundle(recorded);
            assert_eq!(recorded_bundle.version(), version);
            assert_eq!(
                recorded_bundle.identity_key(),
                identity.identity_key(version)
            );
            assert_eq!(recorded_bundle.signed_pre_key_id(), u32_of(&spk["id"]));
            assert_eq!(
                hex(recorded_bundle.signed_pre_key().as_bytes()),
                s(&spk["public"])
            );
            assert_eq!(
                hex(recorded_bundle.signed_pre_key_signature().as_bytes()),
                s(&spk["signature"])
            );
            assert_eq!(recorded_bundle.pre_keys(), recorded_pre_keys);
            assert_eq!(
                recorded_bundle.identity_ed25519(),
                identity.ed25519_key(),
                "{label}"
            );

            // olmo's bundle from the imported keys: the same keys, and a signature of its own
            // making that verifies.
            let mut rng = import_rng(recorded, version);
            let ours = import_pre_keys(recorded, version, &mut rng).bundle(&identity);
            rng.finish();
            assert_eq!(
                VerifiedBundle::from_element(&ours.to_element()).map(|b| b.identity_ed25519()),
                Ok(identity.ed25519_key()),
                "{label}"
            );
            let mut resigned = ours.to_element();
            resigned.signed_pre_key_signature =
                recorded_bundle.to_element().signed_pre_key_signature;
            assert_eq!(resigned, recorded_bundle.to_element(), "{label}");
            match maker {
                Maker::Olmo => assert_eq!(ours, recorded_bundle, "{label}: signature"),
                Maker::Python => {
                    python_signature(version, &label, recorded, ours.signed_pre_key_signature());
                }
            }
            // The bundle XML olmo writes parses back to the same bundle.
            let written = ours.to_element().serialize();
            let reread =
                VerifiedBundle::from_element(&stanza::BundleElement::parse(&written).unwrap())
                    .unwrap();
            assert_eq!(reread, ours);
        }
    }
}

/// XEdDSA as libxeddsa's `ed25519_priv_sign` computes it (no negation: the signature verifies
/// under `A = aB` with its sign bit), with the nonce hashed over `clamped` as given:
/// `r = SHA-512(0xFE ‖ 0xFF³¹ ‖ nonce_scalar ‖ M ‖ Z)`, `s = r + SHA-512(R ‖ A ‖ M)·a`.
fn xeddsa(private: [u8; 32], nonce_scalar: [u8; 32], message: &[u8], z: &[u8]) -> [u8; 64] {
    let a = Scalar::from_bytes_mod_order(clamp_integer(private));
    let public = EdwardsPoint::mul_base(&a).compress();
    let mut prefix = [0xff; 32];
    prefix[0] = 0xfe;
    let wide = |hash: Sha512| -> [u8; 64] { hash.finalize().into() };
    let r = Scalar::from_bytes_mod_order_wide(&wide(
        Sha512::new()
            .chain_update(prefix)
            .chain_update(nonce_scalar)
            .chain_update(message)
            .chain_update(z),
    ));
    let big_r = EdwardsPoint::mul_base(&r).compress();
    let h = Scalar::from_bytes_mod_order_wide(&wide(
        Sha512::new()
            .chain_update(big_r.as_bytes())
            .chain_update(public.as_bytes())
            .chain_update(message),
    ));
    let mut signature = [0u8; 64];
    signature[..32].copy_from_slice(big_r.as_bytes());
    signature[32..].copy_from_slice((r + h * a).as_bytes());
    signature
}

/// python-omemo's signed pre-key signatures are libxeddsa's XEdDSA with the recorded nonce, over
/// the unreduced clamped scalar; olmo's differ for a documented reason:
/// * OMEMO 2: olmo signs with the seed, deterministic RFC 8032 Ed25519 over the raw key.
/// * OMEMO 0.3: olmo signs with XEdDSA and the same nonce Z, but hashes the scalar reduced
///   mod q into the nonce (as the XEdDSA specification says), so `R` and `s` differ.
fn python_signature(version: Version, label: &str, recorded: &Value, ours: Ed25519Signature) {
    let spk = &recorded["signed_pre_key"];
    let private = b32(&recorded["identity_private"]);
    let z = b(&spk["signature_nonce"]);
    let sign_bit = b(&recorded["identity_ed25519"])[31] & 0x80;
    let mut message = b(&spk["public"]);
    if version == Version::Omemo03 {
        message.insert(0, 0x05);
    }
    let clamped = clamp_integer(private);
    let mut python = xeddsa(private, clamped, &message, &z);
    if version == Version::Omemo03 {
        python[63] |= sign_bit; // oldmemo's bundle carries the identity's sign bit
    }
    assert_eq!(hex(&python), s(&spk["signature"]), "{label}: libxeddsa");
    match version {
        Version::Omemo2 => {
            let pair = Ed25519KeyPair::from_seed(&b32(&recorded["identity_seed"]));
            assert_eq!(ours, pair.sign(&message), "{label}: RFC 8032");
        }
        Version::Omemo03 => {
            let reduced = Scalar::from_bytes_mod_order(clamped).to_bytes();
            let mut expected = xeddsa(private, reduced, &message, &z);
            expected[63] |= sign_bit;
            assert_eq!(
                ours.as_bytes(),
                &expected,
                "{label}: XEdDSA, a mod q in the nonce"
            );
        }
    }
    assert_ne!(ours.as_bytes(), &python, "{label}");
}

#[test]
fn x3dh_shared_secret_and_associated_data_follow_from_the_recorded_keys() {
    for (version, maker) in CONVERSATIONS {
        let vectors = conversation(version, maker);
        let session = &vectors["session"];
        let base = public_of(&b32(&session["base_key_private"]));
        assert_eq!(hex(base.as_bytes()), s(&session["base_key_public"]));
        let (shared, associated) = x3dh(version, &vectors);
        let label = format!("{version:?} {maker:?}");
        assert_eq!(hex(&shared), s(&session["shared_secret"]), "{label}");
        assert_eq!(hex(&associated), s(&session["associated_data"]), "{label}");
        for message in messages(&vectors) {
            let ratchet = public_of(&b32(&message["ratchet_private"]));
            assert_eq!(hex(ratchet.as_bytes()), s(&message["ratchet_public"]));
        }
    }
}

// ---------------------------------------------------------------------------
// Payloads
// ---------------------------------------------------------------------------

/// Encrypts `plaintext` with the recorded payload key (and IV), checks every recorded byte,
/// decrypts the recorded ciphertext; returns the key material.
fn check_payload(version: Version, label: &str, recorded: &Value, plaintext: &[u8]) -> Vec<u8> {
    let mut rng = ScriptedRng::new(label);
    rng.push("payload key", b(&recorded["key"]));
    let ciphertext = b(&recorded["ciphertext"]);
    let key_material = match version {
        Version::Omemo2 => {
            let sealed = payload::encrypt_omemo2(plaintext, &mut rng);
            assert_eq!(
                hex(&sealed.ciphertext),
                s(&recorded["ciphertext"]),
                "{label}"
            );
            // HKDF(0³², key, "OMEMO Payload", 80) = AES key ‖ HMAC key ‖ IV.
            let mut okm = [0u8; 80];
            hkdf_sha256(&[0; 32], &b(&recorded["key"]), b"OMEMO Payload", &mut okm);
            assert_eq!(hex(&okm[..32]), s(&recorded["encryption_key"]));
            assert_eq!(hex(&okm[32..64]), s(&recorded["authentication_key"]));
            assert_eq!(hex(&okm[64..]), s(&recorded["iv"]));
            let mut expected = b(&recorded["key"]);
            expected.extend(b(&recorded["hmac"]));
            assert_eq!(sealed.key_material.to_vec(), expected, "{label}");
            let opened = payload::decrypt_omemo2(&expected, &ciphertext).unwrap();
            assert_eq!(&opened[..], plaintext, "{label}");
            expected
        }
        Version::Omemo03 => {
            rng.push("payload iv", b(&recorded["iv"]));
            let sealed = payload::encrypt_omemo03(plaintext, &mut rng);
            assert_eq!(
                hex(&sealed.ciphertext),
                s(&recorded["ciphertext"]),
                "{label}"
            );
            assert_eq!(hex(&sealed.iv), s(&recorded["iv"]));
            let mut expected = b(&recorded["key"]);
            expected.extend(b(&recorded["tag"]));
            assert_eq!(sealed.key_material.to_vec(), expected, "{label}");
            let opened =
                payload::decrypt_omemo03(&expected, &b(&recorded["iv"]), &ciphertext).unwrap();
            assert_eq!(&opened[..], plaintext, "{label}");
            expected
        }
    };
    rng.finish();
    key_material
}

#[test]
fn payload_vectors_match() {
    for version in VERSIONS {
        let vectors = load(version, "payloads.json");
        let payloads = arr(&vectors["payloads"]);
        assert_eq!(payloads.len(), 3);
        for recorded in payloads {
            let label = format!("{version:?} payload {}", s(&recorded["name"]));
            let key_material =
                check_payload(version, &label, recorded, &b(&recorded["plaintext_hex"]));
            assert_eq!(hex(&key_material), s(&recorded["key_material"]), "{label}");
        }
    }
}

// ---------------------------------------------------------------------------
// The conversation, session by session
// ---------------------------------------------------------------------------

/// The recorded fields of a message agree with its `<key>` bytes and its `<encrypted>` XML.
fn check_message_fields(version: Version, vectors: &Value, message: &Value, label: &str) {
    let key = b(&message["key"]);
    let authenticated = b(&message["authenticated_message"]);
    let inner = b(&message["message"]);
    let mac = b(&message["mac"]);
    let kex = message["kex"].as_bool().unwrap();
    if kex {
        assert!(key.windows(authenticated.len()).any(|w| w == authenticated));
        let exchange = &message["key_exchange"];
        let alice = identity(&vectors["devices"]["alice"]);
        assert_eq!(
            s(&exchange["identity_key"]),
            hex(&alice.identity_key(version).wire_bytes()),
            "{label}"
        );
        let mut base = b(&vectors["session"]["base_key_public"]);
        if version == Version::Omemo03 {
            base.insert(0, 0x05);
        }
        assert_eq!(s(&exchange["base_key"]), hex(&base), "{label}");
        assert_eq!(exchange["pre_key_id"], vectors["session"]["pre_key_id"]);
        assert_eq!(
            exchange["signed_pre_key_id"],
            vectors["session"]["signed_pre_key_id"]
        );
    } else {
        assert_eq!(key, authenticated, "{label}");
        assert!(message["key_exchange"].is_null());
    }
    assert!(authenticated.windows(inner.len()).any(|w| w == inner));
    assert!(authenticated.windows(mac.len()).any(|w| w == mac));
    let ciphertext = b(&message["ciphertext"]);
    assert!(inner.windows(ciphertext.len()).any(|w| w == ciphertext));
    // The XML carries these bytes, and the payload (and 0.3's IV) recorded.
    let element = EncryptedElement::parse(s(&message["encrypted_xml"])).unwrap();
    let [only] = element.keys.as_slice() else {
        panic!("{label}: one <key>")
    };
    assert_eq!(only.data, key, "{label}");
    assert_eq!(only.key_exchange, kex);
    let payload = &message["payload"];
    match (&element.payload, is_empty(message)) {
        (None, true) => {}
        (Some(bytes), false) => assert_eq!(hex(bytes), s(&payload["ciphertext"])),
        _ => panic!("{label}: payload"),
    }
    if version == Version::Omemo03 {
        assert_eq!(hex(element.iv.as_deref().unwrap()), s(&payload["iv"]));
    }
}

/// Sessions only: every `<key>` element byte for byte, every recorded message decrypted.
fn replay_sessions<P: OmemoProfile>(maker: Maker) {
    let version = P::VERSION;
    let vectors = conversation(version, maker);
    let (alice_device, bob_device) = (&vectors["devices"]["alice"], &vectors["devices"]["bob"]);
    let alice_identity = identity(alice_device);
    let bob_identity = identity(bob_device);
    let bob_pre_keys = import_pre_keys(bob_device, version, &mut import_rng(bob_device, version));
    let bundle = bundle_with_chosen_pre_key(&vectors);
    let chosen = u32_of(&vectors["session"]["pre_key_id"]);
    let mut alice: Option<OmemoSession<P>> = None;
    let mut bob: Option<OmemoSession<P>> = None;
    for message in messages(&vectors) {
        let n = number(message);
        let label = format!("{version:?} {maker:?} message {n}");
        check_message_fields(version, &vectors, message, &label);
        let key_material = b(&message["key_material"]);
        if !is_empty(message) {
            let plaintext = b(&message["plaintext_hex"]);
            let payload_key_material =
                check_payload(version, &label, &message["payload"], &plaintext);
            assert_eq!(payload_key_material, key_material, "{label}");
        }
        let mut rng = ScriptedRng::new(&label);
        if n == 1 {
            assert!(from_alice(message));
            rng.allow_words()
                .push("base key", b(&vectors["session"]["base_key_private"]))
                .push("ratchet key", b(&message["ratchet_private"]));
            let registration = registration_id(&vectors);
            alice = Some(
                OmemoSession::initiate(&alice_identity, &bundle, registration, &mut rng).unwrap(),
            );
        } else if message["new_ratchet_key"].as_bool().unwrap() {
            rng.push("ratchet key", b(&message["ratchet_private"]));
        }
        let (sender, receiver) = if from_alice(message) {
            (&mut alice, &mut bob)
        } else {
            (&mut bob, &mut alice)
        };
        let sent = sender
            .as_mut()
            .unwrap()
            .encrypt_with_rng(&key_material, &mut rng)
            .unwrap();
        rng.finish();
        let kex = message["kex"].as_bool().unwrap();
        assert_eq!(hex(&sent.data), s(&message["key"]), "{label}: <key>");
        assert_eq!(sent.key_exchange, kex, "{label}");

        let recorded = SealedKey {
            data: b(&message["key"]),
            key_exchange: kex,
        };
        let opened = if n == 1 {
            let inbound =
                OmemoSession::<P>::respond(&bob_identity, &bob_pre_keys, &recorded.data).unwrap();
            assert_eq!(inbound.used_pre_key, Some(chosen));
            *receiver = Some(inbound.session);
            inbound.decrypted
        } else {
            receiver.as_mut().unwrap().decrypt(&recorded).unwrap()
        };
        assert_eq!(
            hex(&opened.key_material),
            s(&message["key_material"]),
            "{label}"
        );
        assert!(!opened.heartbeat_due);
    }
    assert!(!alice.unwrap().sends_key_exchange());
}

#[test]
fn omemo2_conversations_replay_session_by_session() {
    replay_sessions::<Omemo2>(Maker::Python);
    replay_sessions::<Omemo2>(Maker::Olmo);
}

#[test]
fn omemo03_conversations_replay_session_by_session() {
    replay_sessions::<Omemo03>(Maker::Python);
    replay_sessions::<Omemo03>(Maker::Olmo);
}

// ---------------------------------------------------------------------------
// The conversation, device by device
// ---------------------------------------------------------------------------

/// What olmo's `Device` writes for an OMEMO 0.3 key exchange: oldmemo's bytes with the
/// `registrationId` field (5), holding the sender's device id, before `signedPreKeyId` (6,
/// the last field).
fn with_registration_id(kex: &[u8], registration_id: u32, signed_pre_key_id: u32) -> Vec<u8> {
    let tail = [0x30, u8::try_from(signed_pre_key_id).unwrap()];
    assert!(tail[1] < 0x80 && kex.ends_with(&tail));
    let mut out = kex[..kex.len() - 2].to_vec();
    out.push(0x28);
    let mut value = registration_id;
    while value >= 0x80 {
        out.push((value & 0x7f) as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
    out.extend_from_slice(&tail);
    out
}

/// Devices: `build_session`, `encrypt_message`/`encrypt_empty` and `decrypt_message` on the
/// `<encrypted>` elements.
fn replay_devices(version: Version, maker: Maker) {
    let vectors = conversation(version, maker);
    let (alice_device, bob_device) = (&vectors["devices"]["alice"], &vectors["devices"]["bob"]);
    let mut alice = device(alice_device, version);
    let mut bob = device(bob_device, version);
    let bundle = bundle_with_chosen_pre_key(&vectors);
    let chosen = u32_of(&vectors["session"]["pre_key_id"]);
    for message in messages(&vectors) {
        let n = number(message);
        let label = format!("{version:?} {maker:?} message {n} (devices)");
        let (sender, receiver, sender_recorded, receiver_recorded) = if from_alice(message) {
            (&mut alice, &mut bob, alice_device, bob_device)
        } else {
            (&mut bob, &mut alice, bob_device, alice_device)
        };
        let mut rng = ScriptedRng::new(&label);
        if n == 1 {
            rng.allow_words()
                .push("base key", b(&vectors["session"]["base_key_private"]))
                .push("ratchet key", b(&message["ratchet_private"]));
            sender
                .build_session(jid(bob_device), device_id(bob_device), &bundle, &mut rng)
                .unwrap();
        }
        // The payload first (OMEMO 2: a 32-byte key, nothing for an empty message; 0.3: a
        // 16-byte key, then the IV, for empty messages too), then a new ratchet key if due.
        let recorded_payload = &message["payload"];
        if !(version == Version::Omemo2 && is_empty(message)) {
            rng.push("payload key", b(&recorded_payload["key"]));
        }
        if version == Version::Omemo03 {
            rng.push("payload iv", b(&recorded_payload["iv"]));
        }
        if n != 1 && message["new_ratchet_key"].as_bool().unwrap() {
            rng.push("ratchet key", b(&message["ratchet_private"]));
        }
        let to = [(jid(receiver_recorded), device_id(receiver_recorded))];
        let element = if is_empty(message) {
            sender.encrypt_empty(version, &to, &mut rng)
        } else {
            let plaintext = b(&message["plaintext_hex"]);
            sender.encrypt_message(version, &to, &plaintext, &mut rng)
        }
        .unwrap();
        rng.finish();

        let recorded = EncryptedElement::parse(s(&message["encrypted_xml"])).unwrap();
        let mut expected = recorded.clone();
        if version == Version::Omemo03 && registration_id(&vectors).is_none() {
            let spk = u32_of(&vectors["session"]["signed_pre_key_id"]);
            for key in expected.keys.iter_mut().filter(|key| key.key_exchange) {
                key.data = with_registration_id(&key.data, device_id(sender_recorded), spk);
            }
        }
        assert_eq!(element, expected, "{label}: <encrypted>");
        assert_eq!(
            EncryptedElement::parse(&element.serialize()).unwrap(),
            element
        );
        // The XML text: olmo's own, or python-omemo's but for its double quotes.
        let xml = s(&message["encrypted_xml"]);
        match maker {
            Maker::Olmo => assert_eq!(element.serialize(), xml, "{label}"),
            Maker::Python => assert_eq!(recorded.serialize(), xml.replace('"', "'"), "{label}"),
        }

        // The recorded element decrypts on the other side.
        let received = receiver
            .decrypt_message(
                jid(sender_recorded),
                &recorded,
                &mut TestRng::new(u64::from(n)),
            )
            .unwrap();
        assert_eq!(received.version, version);
        assert_eq!(received.sender_device, device_id(sender_recorded));
        assert_eq!(
            received.sender_identity,
            identity(sender_recorded).identity_key(version)
        );
        assert_eq!(received.new_session, n == 1, "{label}");
        assert_eq!(received.pre_key_used, (n == 1).then_some(chosen), "{label}");
        assert_eq!(
            received.reply_due,
            message["kex"].as_bool().unwrap(),
            "{label}"
        );
        match received.plaintext {
            None => assert!(is_empty(message), "{label}"),
            Some(plaintext) => {
                assert_eq!(hex(&plaintext), s(&message["plaintext_hex"]), "{label}");
                if version == Version::Omemo2 {
                    // An SCE envelope, written in the form olmo writes one.
                    let envelope = Envelope::parse_bytes(&plaintext).unwrap();
                    assert_eq!(envelope.serialize().as_bytes(), &plaintext[..]);
                    assert_eq!(envelope.from.as_deref(), Some(jid(sender_recorded)));
                    assert_eq!(envelope.to.as_deref(), Some(jid(receiver_recorded)));
                    let body = envelope.body().unwrap();
                    assert!(s(&message["plaintext"]).contains(&format!(">{body}<")));
                }
            }
        }
    }
}

#[test]
fn omemo2_conversations_replay_device_by_device() {
    replay_devices(Version::Omemo2, Maker::Python);
    replay_devices(Version::Omemo2, Maker::Olmo);
}

#[test]
fn omemo03_conversations_replay_device_by_device() {
    replay_devices(Version::Omemo03, Maker::Python);
    replay_devices(Version::Omemo03, Maker::Olmo);
}

/// Writes `test-vectors/*/olmo_conversation.json`. Run with `OLMO_WRITE_OMEMO_VECTORS=1` (see
/// the module docs).
#[test]
#[ignore = "writes test-vectors/*/olmo_conversation.json; run with OLMO_WRITE_OMEMO_VECTORS=1"]
fn write_olmo_vectors() {
    if std::env::var_os("OLMO_WRITE_OMEMO_VECTORS").is_none() {
        return;
    }
    for version in VERSIONS {
        olmo_made::write(version);
    }
}
