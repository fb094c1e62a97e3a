//! Secret hygiene: every secret type wipes itself on drop, and no `Debug` output shows secrets.
//!
//! The `ZeroizeOnDrop` bounds below are checked at compile time. They include the dependency
//! types our secrets are built from: x25519-dalek's and ed25519-dalek's secrets implement
//! `ZeroizeOnDrop` only when their `zeroize` feature is on, so turning it off (vodozemac's
//! CVE-2024-34063) makes this test fail to build.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use olmo::crypto::{
    CipherKeys, Curve25519KeyPair, Curve25519SecretKey, Ed25519KeyPair, SharedSecret,
};
use olmo::megolm::{
    ExportedSessionKey, GroupSession, InboundGroupSession, MegolmRatchet, SessionKey, Timestamp,
};
use olmo::olm::Account;
use olmo::persist::StorageKey;
use zeroize::{Zeroize, ZeroizeOnDrop};

fn wiped_on_drop<T: ZeroizeOnDrop>() {}

#[test]
fn secret_types_zeroize_on_drop() {
    wiped_on_drop::<Curve25519SecretKey>();
    wiped_on_drop::<Curve25519KeyPair>();
    wiped_on_drop::<Ed25519KeyPair>();
    wiped_on_drop::<SharedSecret>();
    wiped_on_drop::<CipherKeys>();
    wiped_on_drop::<StorageKey>();
    wiped_on_drop::<MegolmRatchet>();
    wiped_on_drop::<olmo::omemo::DeviceIdentity>();
    // What ours are made of: these fail to build without the dependencies' `zeroize` feature.
    wiped_on_drop::<x25519_dalek::StaticSecret>();
    wiped_on_drop::<ed25519_dalek::SigningKey>();
    wiped_on_drop::<ed25519_dalek::hazmat::ExpandedSecretKey>();
    wiped_on_drop::<zeroize::Zeroizing<[u8; 32]>>();
}

/// Megolm's state prints ids and indices, never ratchet bytes.
#[test]
fn megolm_debug_output_hides_ratchets() {
    let session = GroupSession::new(Timestamp::from_millis(0));
    let key: SessionKey = session.session_key();
    let inbound = InboundGroupSession::new(&key);
    let exported: ExportedSessionKey = inbound.export_at_first_known_index();
    let shown = format!("{session:?} {key:?} {inbound:?} {exported:?}");
    let ratchet = base64_of(&exported.to_bytes()[5..37]);
    assert!(!shown.contains(&ratchet[..12]), "ratchet in Debug: {shown}");
}

fn base64_of(bytes: &[u8]) -> String {
    olmo::crypto::base64::encode(bytes)
}

#[test]
fn zeroize_clears_cipher_keys() {
    let mut keys = CipherKeys::derive(&[5; 32], b"TEST");
    let before = keys.encrypt(b"x");
    keys.zeroize();
    // All-zero key material now: the ciphertext under it differs from the derived one.
    assert_ne!(keys.encrypt(b"x"), before);
    assert_eq!(
        keys.mac(&[b"m"]),
        olmo::crypto::hazmat::hmac_sha256(&[0; 32], &[b"m"])
    );
}

#[test]
fn debug_output_hides_secrets() {
    let mut alice = Account::new();
    alice.generate_one_time_keys(2);
    let mut bob = Account::new();
    bob.generate_one_time_keys(1);
    let (_, otk) = bob.unpublished_one_time_keys()[0];
    let mut session = alice
        .create_outbound_session(bob.curve25519_key(), otk)
        .unwrap();
    let message = session.encrypt(b"top secret plaintext").unwrap();
    let secret = Curve25519SecretKey::from_bytes(&[0x41; 32]);
    let shown = format!(
        "{alice:?} {session:?} {message:?} {secret:?} {:?} {:?}",
        StorageKey::from_bytes([0x41; 32]),
        CipherKeys::derive(&[1; 32], b"x")
    );
    assert!(!shown.contains("top secret"));
    assert!(
        !shown.contains("65, 65"),
        "raw secret bytes in Debug: {shown}"
    );
    assert!(
        !shown.contains("QUFBQU"),
        "base64 secret bytes in Debug: {shown}"
    );
}

/// OMEMO devices, sessions and received messages print ids and public keys, never secrets or
/// plaintext.
#[test]
fn omemo_debug_output_hides_secrets_and_plaintext() {
    use olmo::omemo::{DeviceIdentity, OmemoDevice, Version};

    let identity = DeviceIdentity::from_seed(&[0x41; 32]);
    let mut alice = OmemoDevice::new("alice@example.org", 1);
    let mut bob = OmemoDevice::new("bob@example.org", 2);
    alice
        .build_session(
            "bob@example.org",
            2,
            &bob.bundle(Version::Omemo2),
            &mut rand::rng(),
        )
        .unwrap();
    let element = alice
        .encrypt_message(
            Version::Omemo2,
            &[("bob@example.org", 2)],
            b"top secret",
            &mut rand::rng(),
        )
        .unwrap();
    let received = bob
        .decrypt_message("alice@example.org", &element, &mut rand::rng())
        .unwrap();
    let shown = format!("{identity:?} {alice:?} {bob:?} {received:?}");
    assert!(!shown.contains("top secret"));
    assert!(!shown.contains("65, 65"), "raw secret bytes in Debug");
    assert!(!shown.contains("QUFBQU"), "base64 secret bytes in Debug");
    let seed = identity.seed().unwrap();
    assert!(!shown.contains(&base64_of(&seed[..])[..12]));
}

/// The results that carry a plaintext print neither its text nor its bytes, whatever `Debug`
/// the `zeroize` in use gives `Zeroizing` (1.9.0 and older print the contents).
#[test]
fn decrypted_results_hide_their_plaintext() {
    use olmo::olm::OlmMessage;

    const PLAINTEXT: &[u8] = b"top secret plaintext";
    let alice = Account::new();
    let mut bob = Account::new();
    bob.generate_one_time_keys(1);
    let (_, otk) = bob.unpublished_one_time_keys()[0];
    let mut outbound = alice
        .create_outbound_session(bob.curve25519_key(), otk)
        .unwrap();
    let OlmMessage::PreKey(pre_key) = outbound.encrypt(PLAINTEXT).unwrap() else {
        panic!("the first message is a pre-key message");
    };
    let created = bob
        .create_inbound_session(alice.curve25519_key(), &pre_key)
        .unwrap();
    assert_eq!(&created.plaintext[..], PLAINTEXT);

    let mut group = GroupSession::new(Timestamp::from_millis(0));
    let mut inbound = InboundGroupSession::new(&group.session_key());
    let decrypted = inbound.decrypt(&group.encrypt(PLAINTEXT).unwrap()).unwrap();
    assert_eq!(&decrypted.plaintext[..], PLAINTEXT);

    for shown in [format!("{created:?}"), format!("{decrypted:?}")] {
        assert!(!shown.contains("top secret"), "plaintext in Debug: {shown}");
        let as_numbers = format!("{:?}", &PLAINTEXT[..4]);
        let as_numbers = &as_numbers[1..as_numbers.len() - 1];
        assert!(
            !shown.contains(as_numbers),
            "plaintext bytes in Debug: {shown}"
        );
    }
}
