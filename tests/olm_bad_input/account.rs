//! Pre-key messages against the account: mismatches, tampering and reuse keep the one-time
//! key.

use olmo::crypto::CipherError;
use olmo::olm::{Account, DecryptError, OlmMessage, SessionCreationError, SessionDecryptError};

use crate::support::{account_snapshot, established, pre_key_setup, snapshot};

#[test]
fn pre_key_message_of_another_session_is_a_mismatch() {
    let mut setup = established(17);
    // A second session from the same Alice to the same Bob (his second one-time key).
    setup.bob.generate_one_time_keys(1);
    let (_, otk) = setup.bob.unpublished_one_time_keys()[0];
    let mut other = setup
        .alice
        .create_outbound_session(setup.bob.curve25519_key(), otk)
        .unwrap();
    let foreign = other.encrypt(b"other session").unwrap();
    let before = snapshot(&setup.bob_session);
    assert_eq!(
        setup.bob_session.decrypt(&foreign).unwrap_err(),
        SessionDecryptError::SessionMismatch
    );
    let OlmMessage::PreKey(pre_key) = &foreign else {
        panic!("expected a pre-key message");
    };
    assert!(!setup.bob_session.matches_inbound_session(pre_key));
    assert_eq!(snapshot(&setup.bob_session), before);
    // Its inner message, sent on its own, is just a message the session cannot use.
    let inner = OlmMessage::Normal(pre_key.message().clone());
    assert!(setup.bob_session.decrypt(&inner).is_err());
    assert_eq!(snapshot(&setup.bob_session), before);
}

#[test]
fn wrong_expected_identity_key_keeps_the_one_time_key() {
    let mut setup = pre_key_setup(18);
    let keys_before = setup.bob.unpublished_one_time_keys();
    let before = account_snapshot(&setup.bob);
    let stranger = Account::new();
    assert_eq!(
        setup
            .bob
            .create_inbound_session(stranger.curve25519_key(), &setup.pre_key)
            .unwrap_err(),
        SessionCreationError::MismatchedIdentityKey
    );
    assert_eq!(setup.bob.unpublished_one_time_keys(), keys_before);
    assert_eq!(account_snapshot(&setup.bob), before);
    // The right key still works.
    let created = setup
        .bob
        .create_inbound_session(setup.alice.curve25519_key(), &setup.pre_key)
        .unwrap();
    assert_eq!(&created.plaintext[..], b"hello bob");
    assert!(setup.bob.unpublished_one_time_keys().is_empty());
}

#[test]
fn tampered_pre_key_message_keeps_the_one_time_key() {
    let mut setup = pre_key_setup(19);
    let before = account_snapshot(&setup.bob);
    // The inner message's MAC is the last 8 bytes of the pre-key message.
    let mut bytes = setup.pre_key.to_bytes();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    let OlmMessage::PreKey(tampered) = OlmMessage::from_parts(0, &bytes).unwrap() else {
        panic!("expected a pre-key message");
    };
    assert_eq!(
        setup
            .bob
            .create_inbound_session(setup.alice.curve25519_key(), &tampered)
            .unwrap_err(),
        SessionCreationError::Decrypt(DecryptError::Cipher(CipherError::Mac))
    );
    assert_eq!(account_snapshot(&setup.bob), before);
    assert_eq!(setup.bob.unpublished_one_time_keys().len(), 1);
    // The genuine message afterwards creates the session.
    let created = setup
        .bob
        .create_inbound_session(setup.alice.curve25519_key(), &setup.pre_key)
        .unwrap();
    assert_eq!(&created.plaintext[..], b"hello bob");
    assert_eq!(
        created.session.session_id(),
        setup.alice_session.session_id()
    );
}

#[test]
fn every_bit_flip_of_a_pre_key_message_is_refused_by_the_account() {
    let mut setup = pre_key_setup(20);
    let before = account_snapshot(&setup.bob);
    let valid = setup.pre_key.to_bytes();
    let base_key_start = valid
        .windows(32)
        .position(|w| w == setup.pre_key.base_key().as_bytes())
        .unwrap();
    // X25519 ignores a public key's top bit and the MAC covers only the inner message, so
    // libolm and vodozemac accept this flip and make a session with another id. olmo refuses
    // non-canonical keys when decoding.
    let mut top_bit = valid.clone();
    top_bit[base_key_start + 31] ^= 0x80;
    assert_eq!(
        OlmMessage::from_parts(0, &top_bit).unwrap_err(),
        olmo::DecodeError::NonCanonicalKey
    );
    for position in 0..valid.len() {
        for bit in 0..8 {
            let mut bytes = valid.clone();
            bytes[position] ^= 1 << bit;
            let Ok(OlmMessage::PreKey(tampered)) = OlmMessage::from_parts(0, &bytes) else {
                continue;
            };
            let result = setup
                .bob
                .create_inbound_session(setup.alice.curve25519_key(), &tampered);
            assert!(
                result.is_err(),
                "flipping bit {bit} of byte {position} was accepted"
            );
            assert_eq!(
                account_snapshot(&setup.bob),
                before,
                "byte {position} bit {bit}"
            );
        }
    }
    setup
        .bob
        .create_inbound_session(setup.alice.curve25519_key(), &setup.pre_key)
        .unwrap();
}

#[test]
fn reused_pre_key_message_after_its_key_was_used() {
    let mut setup = pre_key_setup(21);
    setup
        .bob
        .create_inbound_session(setup.alice.curve25519_key(), &setup.pre_key)
        .unwrap();
    let before = account_snapshot(&setup.bob);
    assert_eq!(
        setup
            .bob
            .create_inbound_session(setup.alice.curve25519_key(), &setup.pre_key)
            .unwrap_err(),
        SessionCreationError::MissingOneTimeKey
    );
    // A later pre-key message of the same session names the same, now used, key.
    let second = setup.alice_session.encrypt(b"again").unwrap();
    let OlmMessage::PreKey(second) = second else {
        panic!("expected a pre-key message");
    };
    assert_eq!(
        setup
            .bob
            .create_inbound_session(setup.alice.curve25519_key(), &second)
            .unwrap_err(),
        SessionCreationError::MissingOneTimeKey
    );
    assert_eq!(account_snapshot(&setup.bob), before);
}
