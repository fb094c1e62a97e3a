//! Sessions both ways with a long conversation, and Alice repeating pre-key messages
//! until she hears back.

use olmo::olm::{Account, SessionCreationError, SessionDecryptError};
use serde_json::json;

use crate::common::peer::Peer;
use crate::support::{
    Party, Wire, bob_replies, curve, expect_decrypt, lib_account, lib_otks, long_exchange,
    olmo_alice_lib_bob, s,
};

#[test]
fn olmo_alice_to_libolm_bob_long_conversation() {
    let mut peer = Peer::libolm();
    let (mut alice, mut bob) = olmo_alice_lib_bob(&mut peer);
    bob_replies(&mut peer, &mut alice, &mut bob);
    long_exchange(&mut peer, &mut alice, &mut bob, 30, 1);
    assert_eq!(alice.session_id(&mut peer), bob.session_id(&mut peer));
    assert!(alice.olmo().has_received_message());
}

#[test]
fn libolm_alice_to_olmo_bob_long_conversation() {
    let mut peer = Peer::libolm();
    let (alice, alice_curve, _) = lib_account(&mut peer);
    let mut bob_account = Account::new();
    bob_account.generate_one_time_keys(3);
    let unpublished = bob_account.unpublished_one_time_keys();
    assert_eq!(unpublished.len(), 3);
    let (_, otk) = unpublished[1];
    let r = peer.call(json!({
        "op": "outbound_session", "account": alice,
        "identity_key": bob_account.curve25519_key().to_base64(), "one_time_key": otk.to_base64(),
    }));
    let mut alice_party = Party::Lib(s(&r["session"]));
    let first = alice_party.encrypt(&mut peer, "hello from libolm");
    assert_eq!(first.ty, 0);
    let pre_key = first.pre_key();
    assert_eq!(pre_key.one_time_key(), otk);
    assert_eq!(pre_key.identity_key(), curve(&alice_curve));

    // A wrong sender identity is refused and the key is kept.
    let stranger = Account::new();
    assert_eq!(
        bob_account
            .create_inbound_session(stranger.curve25519_key(), &pre_key)
            .unwrap_err(),
        SessionCreationError::MismatchedIdentityKey
    );
    assert_eq!(bob_account.unpublished_one_time_keys().len(), 3);

    let created = bob_account
        .create_inbound_session(curve(&alice_curve), &pre_key)
        .unwrap();
    assert_eq!(&created.plaintext[..], b"hello from libolm");
    assert_eq!(created.session.session_id(), s(&r["session_id"]));
    assert!(created.session.matches_inbound_session(&pre_key));

    // The one-time key is gone: the list shrank (and lost exactly that key) ...
    let left = bob_account.unpublished_one_time_keys();
    assert_eq!(left.len(), 2);
    assert!(left.iter().all(|(_, k)| *k != otk));
    // ... and the same pre-key message cannot create a second session.
    assert_eq!(
        bob_account
            .create_inbound_session(curve(&alice_curve), &pre_key)
            .unwrap_err(),
        SessionCreationError::MissingOneTimeKey
    );

    let mut bob = Party::Olmo(created.session);
    bob_replies(&mut peer, &mut alice_party, &mut bob);
    long_exchange(&mut peer, &mut bob, &mut alice_party, 30, 2);
    assert_eq!(alice_party.session_id(&mut peer), bob.session_id(&mut peer));
}

// ---------------------------------------------------------------------------
// 3: Alice keeps sending pre-key messages until she hears back
// ---------------------------------------------------------------------------

#[test]
fn olmo_alice_repeats_pre_key_messages_until_reply() {
    let mut peer = Peer::libolm();
    let (bob, bob_curve, _) = lib_account(&mut peer);
    let (_, otk) = lib_otks(&mut peer, &bob, 1).remove(0);
    let alice_account = Account::new();
    let mut alice = alice_account
        .create_outbound_session(curve(&bob_curve), curve(&otk))
        .unwrap();
    let texts = ["pk one", "pk two", "pk three"];
    let wires: Vec<Wire> = texts
        .iter()
        .map(|t| Wire::from_olmo(&alice.encrypt(t.as_bytes()).unwrap()))
        .collect();
    for w in &wires {
        assert_eq!(
            w.ty, 0,
            "olmo Alice must send pre-key messages before any reply"
        );
    }
    let r = peer.call(json!({
        "op": "inbound_session", "account": bob, "body": wires[0].body,
        "sender_key": alice_account.curve25519_key().to_base64(),
    }));
    assert_eq!(s(&r["plaintext"]), texts[0]);
    let mut bob_party = Party::Lib(s(&r["session"]));
    // The one-time key is gone in libolm too: the same pre-key message cannot start a second
    // session, and a wrong sender key is refused.
    let again = peer
        .try_call(json!({"op": "inbound_session", "account": bob, "body": wires[1].body}))
        .expect_err("libolm reused a removed one-time key");
    eprintln!("libolm, pre-key message on a used one-time key: {again}");
    let wrong_sender = peer
        .try_call(
            json!({"op": "inbound_session", "account": bob, "body": wires[1].body,
            "sender_key": bob_curve}),
        )
        .expect_err("libolm accepted a wrong sender key");
    eprintln!("libolm, wrong sender key: {wrong_sender}");
    // libolm recognises the later ones as belonging to the session.
    for w in &wires[1..] {
        let m = peer.call(
            json!({"op": "matches", "session": s(&r["session"]), "body": w.body,
            "sender_key": alice_account.curve25519_key().to_base64()}),
        );
        assert_eq!(m["matches"], json!(true));
    }
    // Deliver the third before the second.
    expect_decrypt(&mut peer, &mut bob_party, &wires[2], texts[2]);
    expect_decrypt(&mut peer, &mut bob_party, &wires[1], texts[1]);

    let mut alice_party = Party::Olmo(alice);
    // Still no reply: still pre-key messages.
    let w4 = alice_party.encrypt(&mut peer, "pk four");
    assert_eq!(w4.ty, 0);
    expect_decrypt(&mut peer, &mut bob_party, &w4, "pk four");

    bob_replies(&mut peer, &mut alice_party, &mut bob_party);
    long_exchange(&mut peer, &mut alice_party, &mut bob_party, 6, 3);
}

#[test]
fn libolm_alice_repeats_pre_key_messages_until_reply() {
    let mut peer = Peer::libolm();
    let (alice, alice_curve, _) = lib_account(&mut peer);
    let mut bob_account = Account::new();
    bob_account.generate_one_time_keys(1);
    let (_, otk) = bob_account.unpublished_one_time_keys()[0];
    let r = peer.call(json!({
        "op": "outbound_session", "account": alice,
        "identity_key": bob_account.curve25519_key().to_base64(), "one_time_key": otk.to_base64(),
    }));
    let mut alice_party = Party::Lib(s(&r["session"]));
    let texts = ["pk one", "pk two", "pk three"];
    let wires: Vec<Wire> = texts
        .iter()
        .map(|t| alice_party.encrypt(&mut peer, t))
        .collect();
    for w in &wires {
        assert_eq!(
            w.ty, 0,
            "libolm Alice sends pre-key messages before any reply"
        );
    }
    let created = bob_account
        .create_inbound_session(curve(&alice_curve), &wires[0].pre_key())
        .unwrap();
    assert_eq!(&created.plaintext[..], texts[0].as_bytes());
    let mut bob = created.session;
    for w in &wires[1..] {
        assert!(bob.matches_inbound_session(&w.pre_key()));
    }
    // A pre-key message of another session is refused by session.decrypt.
    let (_, other_bob) = {
        let mut other_peer_account = Account::new();
        other_peer_account.generate_one_time_keys(1);
        let (_, k) = other_peer_account.unpublished_one_time_keys()[0];
        let r2 = peer.call(json!({
            "op": "outbound_session", "account": alice,
            "identity_key": other_peer_account.curve25519_key().to_base64(), "one_time_key": k.to_base64(),
        }));
        ((), s(&r2["session"]))
    };
    let foreign = Party::Lib(other_bob).encrypt(&mut peer, "other session");
    assert!(!bob.matches_inbound_session(&foreign.pre_key()));
    assert_eq!(
        bob.decrypt(&foreign.to_olmo()).unwrap_err(),
        SessionDecryptError::SessionMismatch
    );

    let mut bob_party = Party::Olmo(bob);
    expect_decrypt(&mut peer, &mut bob_party, &wires[2], texts[2]);
    expect_decrypt(&mut peer, &mut bob_party, &wires[1], texts[1]);
    // A replayed pre-key message is a duplicate now.
    let dup = bob_party.decrypt(&mut peer, &wires[1]).unwrap_err();
    assert!(dup.contains("Duplicate"), "{dup}");

    let w4 = alice_party.encrypt(&mut peer, "pk four");
    assert_eq!(w4.ty, 0);
    expect_decrypt(&mut peer, &mut bob_party, &w4, "pk four");

    bob_replies(&mut peer, &mut alice_party, &mut bob_party);
    long_exchange(&mut peer, &mut bob_party, &mut alice_party, 6, 4);
}
