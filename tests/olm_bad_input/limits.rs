//! Size limits, responders, skipped-key eviction and failed decryptions.

use olmo::olm::{DecryptError, EncryptError, OlmMessage, SessionDecryptError};

use crate::support::{NormalParts, established, pre_key_setup, snapshot};

#[test]
fn responder_can_answer_at_once() {
    // A responder can always answer (its first chain comes from the pre-key message).
    let mut setup = pre_key_setup(26);
    let created = setup
        .bob
        .create_inbound_session(setup.alice.curve25519_key(), &setup.pre_key)
        .unwrap();
    let mut bob_session = created.session;
    let reply = bob_session.encrypt(b"ok").unwrap();
    assert_eq!(&setup.alice_session.decrypt(&reply).unwrap()[..], b"ok");
}

/// A plaintext too large for the wire limit must not be reported as an exhausted chain, and a
/// failed encryption must leave the session unchanged (the message key must not be burnt).
///
/// Fails today: `Session::encrypt_with_rng` re-decodes its own output with `Message::from_sealed`,
/// whose 256 KiB receive limit turns into `EncryptError::ChainExhausted` after the sending chain
/// has already advanced.
#[test]
fn oversized_plaintext_encryption() {
    let mut setup = established(27);
    let plaintext = vec![0x61u8; 300 * 1024];
    let before = snapshot(&setup.alice_session);
    let mut problems = Vec::new();
    match setup.alice_session.encrypt(&plaintext) {
        Ok(message) => {
            if OlmMessage::from_parts(1, message.as_bytes()).is_err() {
                problems.push("olmo wrote a message it cannot decode".to_owned());
            }
        }
        Err(error) => {
            if error == EncryptError::ChainExhausted {
                problems.push("a too-large plaintext is reported as ChainExhausted".to_owned());
            }
            if snapshot(&setup.alice_session) != before {
                problems.push("the failed encryption advanced the sending chain".to_owned());
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// A pre-key message wraps a normal message in about 107 more bytes. When the inner message is
/// just under the 256 KiB receive limit, the pre-key message olmo writes is over it, and olmo
/// (the receiving side) cannot decode its own output.
///
/// Fails today: the size check on encryption (via `Message::from_sealed`) covers only the inner
/// message, not the `PreKeyMessage` built around it.
#[test]
fn pre_key_message_just_under_the_limit_round_trips() {
    let setup = pre_key_setup(28);
    let mut alice_session = setup.alice_session;
    // Ciphertext 262 080 bytes (16 380 blocks): inner message 262 129 bytes, under 256 KiB.
    let plaintext = vec![0x62u8; 262_070];
    match alice_session.encrypt(&plaintext) {
        Ok(message) => {
            let OlmMessage::PreKey(pre_key) = &message else {
                panic!("expected a pre-key message");
            };
            assert!(pre_key.message().as_bytes().len() <= 256 * 1024);
            let decoded = OlmMessage::from_parts(0, message.as_bytes());
            assert!(
                decoded.is_ok(),
                "olmo wrote a {}-byte pre-key message it cannot decode: {decoded:?}",
                message.as_bytes().len()
            );
        }
        Err(error) => assert_ne!(error, EncryptError::ChainExhausted),
    }
}

#[test]
fn evicted_skipped_keys_are_expired_not_duplicates() {
    let mut setup = established(29);
    // Alice's chain stands at 1, so `messages[k]` has index k + 1.
    let messages: Vec<OlmMessage> = (0..260)
        .map(|i| {
            setup
                .bob_session
                .encrypt(format!("{i}").as_bytes())
                .unwrap()
        })
        .collect();
    // Index 260 skips 1..=259; only the newest 200 keys (60..=259) are kept.
    setup.alice_session.decrypt(&messages[259]).unwrap();
    let before = snapshot(&setup.alice_session);
    for (k, index) in [(0usize, 1u32), (58, 59)] {
        assert_eq!(
            setup.alice_session.decrypt(&messages[k]).unwrap_err(),
            SessionDecryptError::Decrypt(DecryptError::Expired { index })
        );
    }
    assert_eq!(snapshot(&setup.alice_session), before);
    assert_eq!(
        &setup.alice_session.decrypt(&messages[59]).unwrap()[..],
        b"59"
    );
    assert_eq!(
        setup.alice_session.decrypt(&messages[59]).unwrap_err(),
        SessionDecryptError::Decrypt(DecryptError::Duplicate { index: 60 })
    );
    assert_eq!(
        setup.alice_session.decrypt(&messages[259]).unwrap_err(),
        SessionDecryptError::Decrypt(DecryptError::Duplicate { index: 260 })
    );
}

#[test]
fn failed_decryption_does_not_count_as_a_received_message() {
    let mut setup = pre_key_setup(30);
    assert!(!setup.alice_session.has_received_message());
    // A forged "reply" on a made-up ratchet key.
    let mut parts = NormalParts::of(setup.pre_key.message());
    parts.ratchet_key = [0x24; 32];
    let forged = OlmMessage::from_parts(1, &parts.encode()).unwrap();
    let before = snapshot(&setup.alice_session);
    assert!(setup.alice_session.decrypt(&forged).is_err());
    assert!(!setup.alice_session.has_received_message());
    assert_eq!(snapshot(&setup.alice_session), before);
    // Alice still sends pre-key messages.
    let next = setup.alice_session.encrypt(b"still pre-key").unwrap();
    assert!(matches!(next, OlmMessage::PreKey(_)));
    // Her own message reflected back to her is refused too.
    let reflected = setup.alice_session.encrypt(b"reflected").unwrap();
    assert!(setup.alice_session.decrypt(&reflected).is_err());
    let OlmMessage::PreKey(reflected) = reflected else {
        panic!("expected a pre-key message");
    };
    assert!(
        setup
            .alice_session
            .decrypt(&OlmMessage::Normal(reflected.message().clone()))
            .is_err()
    );
    assert!(!setup.alice_session.has_received_message());
}
