//! Decryption: tampered, replayed and too-far-ahead messages leave the session unchanged.

use olmo::crypto::CipherError;
use olmo::olm::{DecryptError, OlmMessage, SessionCreationError, SessionDecryptError};

use crate::support::{established, pre_key_setup, snapshot};

#[test]
fn every_bit_flip_is_refused_and_leaves_the_session_unchanged() {
    let mut setup = established(11);
    let message = setup.bob_session.encrypt(b"flip me").unwrap();
    let before = snapshot(&setup.alice_session);
    let valid = message.as_bytes().to_vec();
    let message_type = message.message_type().as_u8();
    for position in 0..valid.len() {
        for bit in 0..8 {
            let mut bytes = valid.clone();
            bytes[position] ^= 1 << bit;
            if let Ok(tampered) = OlmMessage::from_parts(message_type, &bytes) {
                let result = setup.alice_session.decrypt(&tampered);
                assert!(
                    result.is_err(),
                    "flipping bit {bit} of byte {position} was accepted"
                );
            }
            assert_eq!(
                snapshot(&setup.alice_session),
                before,
                "state changed after flipping bit {bit} of byte {position}"
            );
        }
    }
    assert_eq!(
        &setup.alice_session.decrypt(&message).unwrap()[..],
        b"flip me"
    );
    assert_ne!(snapshot(&setup.alice_session), before);
}

#[test]
fn every_byte_replaced_in_a_new_chain_message() {
    // The message opens a new receiving chain (Alice ratcheted), so a failed attempt would
    // have a root-key step and a new chain to roll back.
    let mut setup = established(12);
    let message = setup.alice_session.encrypt(b"new chain").unwrap();
    let before = snapshot(&setup.bob_session);
    let valid = message.as_bytes().to_vec();
    for position in 0..valid.len() {
        for replacement in [0x00u8, 0xff, valid[position] ^ 0x80] {
            if replacement == valid[position] {
                continue;
            }
            let mut bytes = valid.clone();
            bytes[position] = replacement;
            if let Ok(tampered) = OlmMessage::from_parts(1, &bytes) {
                assert!(
                    setup.bob_session.decrypt(&tampered).is_err(),
                    "byte {position}"
                );
            }
            assert_eq!(snapshot(&setup.bob_session), before, "byte {position}");
        }
    }
    assert_eq!(
        &setup.bob_session.decrypt(&message).unwrap()[..],
        b"new chain"
    );
}

#[test]
fn tampered_mac_is_a_mac_error() {
    let mut setup = established(13);
    let message = setup.bob_session.encrypt(b"mac").unwrap();
    let mut bytes = message.as_bytes().to_vec();
    *bytes.last_mut().unwrap() ^= 1;
    let tampered = OlmMessage::from_parts(1, &bytes).unwrap();
    assert_eq!(
        setup.alice_session.decrypt(&tampered).unwrap_err(),
        SessionDecryptError::Decrypt(DecryptError::Cipher(CipherError::Mac))
    );
    assert_eq!(&setup.alice_session.decrypt(&message).unwrap()[..], b"mac");
}

#[test]
fn replays_are_duplicates() {
    let mut setup = established(14);
    let messages: Vec<OlmMessage> = (0..3)
        .map(|i| {
            setup
                .bob_session
                .encrypt(format!("m{i}").as_bytes())
                .unwrap()
        })
        .collect();
    for message in &messages {
        setup.alice_session.decrypt(message).unwrap();
    }
    let before = snapshot(&setup.alice_session);
    for message in &messages {
        let OlmMessage::Normal(normal) = message else {
            panic!("expected a normal message");
        };
        assert_eq!(
            setup.alice_session.decrypt(message).unwrap_err(),
            SessionDecryptError::Decrypt(DecryptError::Duplicate {
                index: normal.chain_index()
            })
        );
    }
    assert_eq!(snapshot(&setup.alice_session), before);

    // A skipped key is used once only.
    let late = setup.bob_session.encrypt(b"late").unwrap();
    let later = setup.bob_session.encrypt(b"later").unwrap();
    setup.alice_session.decrypt(&later).unwrap();
    setup.alice_session.decrypt(&late).unwrap();
    assert!(matches!(
        setup.alice_session.decrypt(&late),
        Err(SessionDecryptError::Decrypt(DecryptError::Duplicate { .. }))
    ));
    // A replay from an earlier chain, after both sides ratcheted again.
    let old = messages[0].clone();
    let to_bob = setup.alice_session.encrypt(b"ratchet").unwrap();
    setup.bob_session.decrypt(&to_bob).unwrap();
    let from_bob = setup.bob_session.encrypt(b"new chain").unwrap();
    setup.alice_session.decrypt(&from_bob).unwrap();
    assert!(matches!(
        setup.alice_session.decrypt(&old),
        Err(SessionDecryptError::Decrypt(DecryptError::Duplicate { .. }))
    ));
}

#[test]
fn replayed_pre_key_message_is_a_duplicate() {
    let mut setup = pre_key_setup(15);
    let created = setup
        .bob
        .create_inbound_session(setup.alice.curve25519_key(), &setup.pre_key)
        .unwrap();
    let mut session = created.session;
    assert_eq!(
        session
            .decrypt(&OlmMessage::PreKey(setup.pre_key.clone()))
            .unwrap_err(),
        SessionDecryptError::Decrypt(DecryptError::Duplicate { index: 0 })
    );
    // ... and the one-time key is gone, so it cannot create a second session either.
    assert_eq!(
        setup
            .bob
            .create_inbound_session(setup.alice.curve25519_key(), &setup.pre_key)
            .unwrap_err(),
        SessionCreationError::MissingOneTimeKey
    );
    // The next pre-key message of the same session still works.
    let second = setup.alice_session.encrypt(b"second").unwrap();
    assert_eq!(&session.decrypt(&second).unwrap()[..], b"second");
}

#[test]
fn message_past_the_gap_is_too_far_ahead() {
    let mut setup = established(16);
    // Alice's chain for Bob's key stands at 1 (she decrypted the reply, index 0), so
    // `messages[k]` has index k + 1 and is k messages ahead.
    let messages: Vec<OlmMessage> = (0..2002)
        .map(|_| setup.bob_session.encrypt(b"x").unwrap())
        .collect();
    let before = snapshot(&setup.alice_session);
    assert_eq!(
        setup.alice_session.decrypt(&messages[2001]).unwrap_err(),
        SessionDecryptError::Decrypt(DecryptError::TooFarAhead {
            index: 2002,
            gap: 2001,
            limit: 2000
        })
    );
    assert_eq!(snapshot(&setup.alice_session), before);
    setup.alice_session.decrypt(&messages[2000]).unwrap();
    setup.alice_session.decrypt(&messages[2001]).unwrap();

    // The same on a chain that is new to the receiver: it starts at index 0.
    let far: Vec<OlmMessage> = (0..2002)
        .map(|_| setup.alice_session.encrypt(b"y").unwrap())
        .collect();
    let before = snapshot(&setup.bob_session);
    assert_eq!(
        setup.bob_session.decrypt(&far[2001]).unwrap_err(),
        SessionDecryptError::Decrypt(DecryptError::TooFarAhead {
            index: 2001,
            gap: 2001,
            limit: 2000
        })
    );
    assert_eq!(snapshot(&setup.bob_session), before);
    setup.bob_session.decrypt(&far[2000]).unwrap();
}
