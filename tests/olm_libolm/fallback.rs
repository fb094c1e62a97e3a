//! Fallback keys, olmo's and libolm's, used by the other side's Alices.

use olmo::olm::{Account, SessionCreationError};
use serde_json::json;

use crate::common::peer::Peer;
use crate::support::{Party, bob_replies, curve, lib_account, lib_alice_to, s};

#[test]
fn olmo_fallback_key_with_libolm_alices() {
    let mut peer = Peer::libolm();
    let mut bob = Account::new();
    let id = bob.generate_fallback_key();
    let (fid, fallback) = bob.unpublished_fallback_key().unwrap();
    assert_eq!(fid, id);
    bob.mark_keys_as_published();
    assert!(bob.unpublished_fallback_key().is_none());

    // Two different libolm accounts start sessions on the same fallback key.
    let mut sessions = Vec::new();
    for i in 0..2 {
        let text = format!("fallback hello {i}");
        let (alice_session, alice_curve, wire) = lib_alice_to(&mut peer, &bob, fallback, &text);
        let created = bob
            .create_inbound_session(curve(&alice_curve), &wire.pre_key())
            .unwrap_or_else(|e| panic!("fallback session {i}: {e:?}"));
        assert_eq!(&created.plaintext[..], text.as_bytes());
        sessions.push((Party::Lib(alice_session), Party::Olmo(created.session)));
    }
    for (alice, bob_session) in &mut sessions {
        bob_replies(&mut peer, alice, bob_session);
    }

    // Rotate: the previous fallback key keeps working until forgotten.
    bob.generate_fallback_key();
    let (_, new_fallback) = bob.unpublished_fallback_key().unwrap();
    assert_ne!(new_fallback, fallback);
    bob.mark_keys_as_published();
    let (_, c_old, w_old) = lib_alice_to(&mut peer, &bob, fallback, "old fallback after rotation");
    let created = bob
        .create_inbound_session(curve(&c_old), &w_old.pre_key())
        .unwrap();
    assert_eq!(&created.plaintext[..], b"old fallback after rotation");
    let (_, c_new, w_new) = lib_alice_to(&mut peer, &bob, new_fallback, "new fallback");
    assert_eq!(
        &bob.create_inbound_session(curve(&c_new), &w_new.pre_key())
            .unwrap()
            .plaintext[..],
        b"new fallback"
    );
    // A message to the old key that is already in flight when it is forgotten.
    let (_, c_late, w_late) = lib_alice_to(&mut peer, &bob, fallback, "too late");
    assert!(bob.forget_fallback_key());
    assert!(!bob.forget_fallback_key());
    assert_eq!(
        bob.create_inbound_session(curve(&c_late), &w_late.pre_key())
            .unwrap_err(),
        SessionCreationError::MissingOneTimeKey
    );
    // The current one still works, also for a second sender.
    let (_, c_new2, w_new2) = lib_alice_to(&mut peer, &bob, new_fallback, "new fallback 2");
    assert_eq!(
        &bob.create_inbound_session(curve(&c_new2), &w_new2.pre_key())
            .unwrap()
            .plaintext[..],
        b"new fallback 2"
    );
}

#[test]
fn libolm_fallback_key_with_olmo_alices() {
    let mut peer = Peer::libolm();
    let (bob, bob_curve, _) = lib_account(&mut peer);
    let r = peer.call(json!({"op": "generate_fallback_key", "account": bob}));
    let keys = r["keys"].as_object().unwrap();
    assert_eq!(keys.len(), 1);
    let fallback = s(keys.values().next().unwrap());
    peer.call(json!({"op": "mark_keys_as_published", "account": bob}));

    for i in 0..3 {
        let alice_account = Account::new();
        let mut alice = Party::Olmo(
            alice_account
                .create_outbound_session(curve(&bob_curve), curve(&fallback))
                .unwrap(),
        );
        let text = format!("to libolm fallback {i}");
        let wire = alice.encrypt(&mut peer, &text);
        let r = peer
            .try_call(json!({
                "op": "inbound_session", "account": bob, "body": wire.body,
                "sender_key": alice_account.curve25519_key().to_base64(),
            }))
            .unwrap_or_else(|e| panic!("libolm fallback session {i}: {e}"));
        assert_eq!(s(&r["plaintext"]), text);
        assert_eq!(s(&r["session_id"]), alice.olmo().session_id());
        let mut bob_party = Party::Lib(s(&r["session"]));
        bob_replies(&mut peer, &mut alice, &mut bob_party);
    }
}
