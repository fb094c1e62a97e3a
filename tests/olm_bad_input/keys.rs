//! Small-order points and unknown ratchet keys.

use olmo::crypto::{Curve25519PublicKey, KeyError};
use olmo::olm::{DecryptError, OlmMessage, SessionCreationError, SessionDecryptError};

use crate::support::{
    NormalParts, PreKeyParts, account_snapshot, established, pre_key_setup, snapshot,
};

/// Points of small order on Curve25519 (u-coordinates): every exchange with them is all-zero.
fn small_order_points() -> Vec<[u8; 32]> {
    let mut one = [0u8; 32];
    one[0] = 1;
    // p - 1 (order 2), little-endian: 0xec, 0xff.., 0x7f.
    let mut minus_one = [0xffu8; 32];
    minus_one[0] = 0xec;
    minus_one[31] = 0x7f;
    vec![[0u8; 32], one, minus_one]
}

#[test]
fn small_order_base_key_is_a_key_error() {
    for point in small_order_points() {
        let mut setup = pre_key_setup(22);
        let before = account_snapshot(&setup.bob);
        let mut parts = PreKeyParts::of(&setup.pre_key);
        parts.base_key = point;
        let OlmMessage::PreKey(bad) = OlmMessage::from_parts(0, &parts.encode()).unwrap() else {
            panic!("expected a pre-key message");
        };
        assert_eq!(
            setup
                .bob
                .create_inbound_session(setup.alice.curve25519_key(), &bad)
                .unwrap_err(),
            SessionCreationError::Key(KeyError::NonContributory)
        );
        assert_eq!(account_snapshot(&setup.bob), before);
    }
}

#[test]
fn small_order_identity_key_is_a_key_error() {
    let mut setup = pre_key_setup(23);
    let mut parts = PreKeyParts::of(&setup.pre_key);
    parts.identity_key = [0; 32];
    let OlmMessage::PreKey(bad) = OlmMessage::from_parts(0, &parts.encode()).unwrap() else {
        panic!("expected a pre-key message");
    };
    assert_eq!(
        setup
            .bob
            .create_inbound_session(Curve25519PublicKey::from_bytes([0; 32]), &bad)
            .unwrap_err(),
        SessionCreationError::Key(KeyError::NonContributory)
    );
}

#[test]
fn small_order_ratchet_key_is_a_key_error() {
    for point in small_order_points() {
        let mut setup = established(24);
        // Alice holds a ratchet key (she has sent), so an unknown ratchet key means a DH step.
        let _ = setup.alice_session.encrypt(b"ratchet").unwrap();
        let message = setup.bob_session.encrypt(b"template").unwrap();
        let OlmMessage::Normal(normal) = &message else {
            panic!("expected a normal message");
        };
        let mut parts = NormalParts::of(normal);
        parts.ratchet_key = point;
        let bad = OlmMessage::from_parts(1, &parts.encode()).unwrap();
        let before = snapshot(&setup.alice_session);
        assert_eq!(
            setup.alice_session.decrypt(&bad).unwrap_err(),
            SessionDecryptError::Decrypt(DecryptError::Key(KeyError::NonContributory))
        );
        assert_eq!(snapshot(&setup.alice_session), before);
    }
}

#[test]
fn unknown_ratchet_key_without_our_own_is_refused() {
    // Bob created his session and has not sent: he holds no ratchet key to answer with.
    let mut setup = pre_key_setup(25);
    let created = setup
        .bob
        .create_inbound_session(setup.alice.curve25519_key(), &setup.pre_key)
        .unwrap();
    let mut bob_session = created.session;
    let OlmMessage::PreKey(next) = setup.alice_session.encrypt(b"next").unwrap() else {
        panic!("expected a pre-key message");
    };
    let mut parts = NormalParts::of(next.message());
    parts.ratchet_key = [0x42; 32];
    let bad = OlmMessage::from_parts(1, &parts.encode()).unwrap();
    let before = snapshot(&bob_session);
    assert_eq!(
        bob_session.decrypt(&bad).unwrap_err(),
        SessionDecryptError::Decrypt(DecryptError::UnexpectedRatchetKey)
    );
    assert_eq!(snapshot(&bob_session), before);
    assert_eq!(
        &bob_session.decrypt(&OlmMessage::PreKey(next)).unwrap()[..],
        b"next"
    );
}
