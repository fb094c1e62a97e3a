//! Out-of-order delivery across a ratchet step, and the 2000-message gap limit.

use olmo::olm::{Account, DecryptError, SessionDecryptError};
use serde_json::json;

use crate::common::peer::Peer;
use crate::support::{
    Party, Wire, bob_replies, curve, expect_decrypt, lib_account, lib_alice_olmo_bob, lib_otks,
    olmo_alice_lib_bob, s,
};

/// `sender` sends m0..m4 (one chain); the receiver gets m0 and replies; the sender reads the
/// reply and sends m5..m9 on a new chain. The receiver then gets the rest shuffled, old chain
/// mixed after the new one. Returns libolm's/olmo's error for a replayed message.
fn out_of_order(peer: &mut Peer, sender: &mut Party, receiver: &mut Party) -> String {
    let texts: Vec<String> = (0..10).map(|i| format!("ooo message {i}")).collect();
    let mut wires = Vec::new();
    for t in &texts[..5] {
        wires.push(sender.encrypt(peer, t));
    }
    expect_decrypt(peer, receiver, &wires[0], &texts[0]);
    let reply = receiver.encrypt(peer, "ratchet please");
    expect_decrypt(peer, sender, &reply, "ratchet please");
    for t in &texts[5..] {
        wires.push(sender.encrypt(peer, t));
    }
    for &i in &[7usize, 3, 9, 1, 5, 2, 8, 4, 6] {
        expect_decrypt(peer, receiver, &wires[i], &texts[i]);
    }
    let replay = receiver
        .decrypt(peer, &wires[3])
        .expect_err("a replayed message must be refused");
    // Still working in both directions.
    let a = sender.encrypt(peer, "after shuffle");
    expect_decrypt(peer, receiver, &a, "after shuffle");
    let b = receiver.encrypt(peer, "answer after shuffle");
    expect_decrypt(peer, sender, &b, "answer after shuffle");
    replay
}

#[test]
fn out_of_order_olmo_sends_libolm_receives() {
    let mut peer = Peer::libolm();
    let (mut alice, mut bob) = olmo_alice_lib_bob(&mut peer);
    bob_replies(&mut peer, &mut alice, &mut bob);
    let err = out_of_order(&mut peer, &mut alice, &mut bob);
    eprintln!("libolm replay error: {err}");
    // And the other role: olmo Bob sends.
    let err = out_of_order(&mut peer, &mut bob, &mut alice);
    assert!(err.contains("Duplicate"), "{err}");
}

#[test]
fn out_of_order_libolm_sends_olmo_receives() {
    let mut peer = Peer::libolm();
    let (mut alice, mut bob) = lib_alice_olmo_bob(&mut peer);
    bob_replies(&mut peer, &mut alice, &mut bob);
    let err = out_of_order(&mut peer, &mut alice, &mut bob);
    assert!(err.contains("Duplicate"), "{err}");
    let err = out_of_order(&mut peer, &mut bob, &mut alice);
    eprintln!("libolm replay error: {err}");
}

/// Pre-key messages delivered out of order to a fresh olmo Bob: the first one to arrive
/// creates the session even if it is not message 0.
#[test]
fn out_of_order_pre_key_messages_to_olmo() {
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
    let wires: Vec<Wire> = (0..4)
        .map(|i| alice_party.encrypt(&mut peer, &format!("p{i}")))
        .collect();
    let created = bob_account
        .create_inbound_session(curve(&alice_curve), &wires[2].pre_key())
        .unwrap();
    assert_eq!(&created.plaintext[..], b"p2");
    let mut bob = Party::Olmo(created.session);
    for i in [0usize, 3, 1] {
        expect_decrypt(&mut peer, &mut bob, &wires[i], &format!("p{i}"));
    }
    bob_replies(&mut peer, &mut alice_party, &mut bob);
}

/// Same, with libolm as Bob.
#[test]
fn out_of_order_pre_key_messages_to_libolm() {
    let mut peer = Peer::libolm();
    let (bob, bob_curve, _) = lib_account(&mut peer);
    let (_, otk) = lib_otks(&mut peer, &bob, 1).remove(0);
    let alice_account = Account::new();
    let mut alice = Party::Olmo(
        alice_account
            .create_outbound_session(curve(&bob_curve), curve(&otk))
            .unwrap(),
    );
    let wires: Vec<Wire> = (0..4)
        .map(|i| alice.encrypt(&mut peer, &format!("p{i}")))
        .collect();
    let r = peer.call(json!({
        "op": "inbound_session", "account": bob, "body": wires[2].body,
        "sender_key": alice_account.curve25519_key().to_base64(),
    }));
    assert_eq!(s(&r["plaintext"]), "p2");
    let mut bob_party = Party::Lib(s(&r["session"]));
    for i in [0usize, 3, 1] {
        expect_decrypt(&mut peer, &mut bob_party, &wires[i], &format!("p{i}"));
    }
    bob_replies(&mut peer, &mut alice, &mut bob_party);
}

// ---------------------------------------------------------------------------
// 5: the 2000-message gap limit
// ---------------------------------------------------------------------------

/// The sender sends 2002 messages the receiver does not see (indices g..g+2001 past the
/// receiver's chain position g). Returns (error for the one 2001 ahead, whether the one
/// exactly 2000 ahead decrypted).
fn gap(
    peer: &mut Peer,
    sender: &mut Party,
    receiver: &mut Party,
    new_chain: bool,
) -> (String, bool) {
    if new_chain {
        // The receiver has just answered, so the sender's next message starts a new chain.
        let w = receiver.encrypt(peer, "turn");
        expect_decrypt(peer, sender, &w, "turn");
    } else {
        // The receiver's chain sits right after a decrypted message of the current chain.
        let w = sender.encrypt(peer, "in chain");
        expect_decrypt(peer, receiver, &w, "in chain");
    }
    let wires: Vec<Wire> = (0..2002)
        .map(|i| sender.encrypt(peer, &format!("g{i}")))
        .collect();
    let err = receiver
        .decrypt(peer, &wires[2001])
        .expect_err("a message 2001 ahead must be refused");
    let boundary_ok = match receiver.decrypt(peer, &wires[2000]) {
        Ok(p) => {
            assert_eq!(p, "g2000");
            true
        }
        Err(e) => {
            eprintln!(
                "{} refused the message exactly 2000 ahead: {e}",
                receiver.name()
            );
            false
        }
    };
    // The session still works: the next message (or the refused one, once in range) decrypts.
    if boundary_ok {
        expect_decrypt(peer, receiver, &wires[2001], "g2001");
    } else {
        expect_decrypt(peer, receiver, &wires[1999], "g1999");
    }
    let w = sender.encrypt(peer, "after gap");
    expect_decrypt(peer, receiver, &w, "after gap");
    let w = receiver.encrypt(peer, "answer after gap");
    expect_decrypt(peer, sender, &w, "answer after gap");
    (err, boundary_ok)
}

fn assert_too_far(err: &str) {
    assert!(
        err.contains("TooFarAhead"),
        "olmo should say TooFarAhead, said {err}"
    );
}

#[test]
fn gap_limit_olmo_receives() {
    let mut peer = Peer::libolm();
    let (mut alice, mut bob) = lib_alice_olmo_bob(&mut peer);
    bob_replies(&mut peer, &mut alice, &mut bob);

    // Check the exact variant once, directly.
    let w = alice.encrypt(&mut peer, "sync");
    expect_decrypt(&mut peer, &mut bob, &w, "sync");
    let wires: Vec<Wire> = (0..2002)
        .map(|i| alice.encrypt(&mut peer, &format!("g{i}")))
        .collect();
    let err = bob.olmo().decrypt(&wires[2001].to_olmo()).unwrap_err();
    assert!(
        matches!(
            err,
            SessionDecryptError::Decrypt(DecryptError::TooFarAhead {
                gap: 2001,
                limit: 2000,
                ..
            })
        ),
        "{err:?}"
    );
    expect_decrypt(&mut peer, &mut bob, &wires[2000], "g2000");
    expect_decrypt(&mut peer, &mut bob, &wires[2001], "g2001");
    // Messages far behind the kept skipped keys are gone.
    let old = bob.olmo().decrypt(&wires[0].to_olmo()).unwrap_err();
    assert!(
        matches!(
            old,
            SessionDecryptError::Decrypt(DecryptError::Expired { .. })
        ),
        "{old:?}"
    );

    let (err, ok) = gap(&mut peer, &mut alice, &mut bob, false);
    assert_too_far(&err);
    assert!(ok);
    let (err, ok) = gap(&mut peer, &mut alice, &mut bob, true);
    assert_too_far(&err);
    assert!(ok, "olmo should accept a new chain's message 2000");
}

#[test]
fn gap_limit_libolm_receives() {
    let mut peer = Peer::libolm();
    let (mut alice, mut bob) = olmo_alice_lib_bob(&mut peer);
    bob_replies(&mut peer, &mut alice, &mut bob);
    let (err, ok) = gap(&mut peer, &mut alice, &mut bob, false);
    eprintln!("libolm, same chain: refuses 2001 ahead with {err:?}; accepts 2000 ahead: {ok}");
    let (err2, ok2) = gap(&mut peer, &mut alice, &mut bob, true);
    eprintln!("libolm, new chain: refuses 2001 ahead with {err2:?}; accepts 2000 ahead: {ok2}");
    assert!(ok && ok2, "olmo and libolm should agree on the boundary");
}
