//! libolm group session pickles both ways, mid-session: the other side carries on, and
//! re-exporting gives the identical pickle string (libolm derives the IV from the key, so its
//! pickles are deterministic).

use olmo::megolm::{GroupSession, InboundGroupSession};
use olmo::persist::{LibolmPickleError, StorageKey};

use crate::common::peer::Peer;
use crate::support::{
    LibInbound, LibOutbound, PICKLE_KEY, now, our_encrypt, our_expect, our_import, our_inbound,
    text,
};

const KEY: &[u8] = PICKLE_KEY.as_bytes();

#[test]
fn their_outbound_continues_in_olmo() {
    let mut peer = Peer::libolm();
    let theirs = LibOutbound::new(&mut peer);
    let receiver = theirs.receiver(&mut peer);
    for (index, body) in theirs.encrypt_run(&mut peer, 5) {
        receiver.expect(&mut peer, &body, index, &text(index));
    }
    let pickle = theirs.pickle(&mut peer);
    let mut ours = GroupSession::from_libolm_pickle(&pickle, KEY, now()).unwrap();
    assert_eq!(ours.session_id(), theirs.session_id);
    assert_eq!(ours.message_index(), 5);
    assert_eq!(ours.created_at(), now());
    assert_eq!(ours.to_libolm_pickle(KEY), pickle, "identical re-export");
    assert_eq!(
        *ours.session_key().to_base64(),
        theirs.session_key(&mut peer)
    );
    // Through olmo's own storage and back, still the same libolm pickle.
    let storage = StorageKey::from_bytes([7; 32]);
    let restored = GroupSession::restore(&ours.save(&storage), &storage).unwrap();
    assert_eq!(restored.to_libolm_pickle(KEY), pickle);

    // Megolm encryption is deterministic (derived IV, Ed25519): the two copies write the
    // same message at index 5.
    let (index, body) = our_encrypt(&mut ours, &text(5));
    assert_eq!(theirs.encrypt(&mut peer, &text(5)), (index, body.clone()));
    receiver.expect(&mut peer, &body, 5, &text(5));
    for index in 6..12 {
        let (at, body) = our_encrypt(&mut ours, &text(index));
        assert_eq!(at, index);
        receiver.expect(&mut peer, &body, index, &text(index));
    }
}

#[test]
fn our_outbound_continues_in_libolm() {
    let mut peer = Peer::libolm();
    let mut ours = GroupSession::new(now());
    let mut receiver = InboundGroupSession::new(&ours.session_key());
    for index in 0..7 {
        let (_, body) = our_encrypt(&mut ours, &text(index));
        our_expect(&mut receiver, &body, index, &text(index));
    }
    let pickle = ours.to_libolm_pickle(KEY);
    let theirs = LibOutbound::from_pickle(&mut peer, &pickle);
    assert_eq!(theirs.session_id, ours.session_id());
    assert_eq!(theirs.message_index(&mut peer), 7);
    assert_eq!(theirs.pickle(&mut peer), pickle, "identical re-export");
    assert_eq!(
        theirs.session_key(&mut peer),
        *ours.session_key().to_base64()
    );
    for (index, body) in theirs.encrypt_run(&mut peer, 20) {
        our_expect(&mut receiver, &body, index, &text(index));
    }

    // Invalidation is not part of libolm's format: libolm's copy of a retired session
    // encrypts again (callers must not hand retired sessions to libolm).
    ours.invalidate();
    let copy = LibOutbound::from_pickle(&mut peer, &ours.to_libolm_pickle(KEY));
    let (index, body) = copy.encrypt(&mut peer, "after invalidate");
    our_expect(&mut receiver, &body, index, "after invalidate");

    // Wrong keys fail on both sides.
    assert_eq!(
        GroupSession::from_libolm_pickle(&theirs.pickle(&mut peer), b"wrong", now()).unwrap_err(),
        LibolmPickleError::Authentication
    );
    let error = peer
        .try_call(
            serde_json::json!({"op": "group_unpickle_outbound", "pickle": pickle,
            "key": "wrong"}),
        )
        .unwrap_err();
    assert!(error.contains("BAD_ACCOUNT_KEY"), "{error}");
}

#[test]
fn their_inbound_continues_in_olmo() {
    let mut peer = Peer::libolm();
    let sender = LibOutbound::new(&mut peer);
    let theirs = sender.receiver(&mut peer);
    let sent = sender.encrypt_run(&mut peer, 30);
    // Out of order, so that libolm's latest ratchet (12) is ahead of its first known (0).
    for index in [12, 3, 7] {
        theirs.expect(&mut peer, &sent[index].1, index as u32, &text(index as u32));
    }
    let pickle = theirs.pickle(&mut peer);
    let mut ours = InboundGroupSession::from_libolm_pickle(&pickle, KEY).unwrap();
    assert_eq!(ours.session_id(), sender.session_id);
    assert_eq!(ours.first_known_index(), 0);
    assert!(ours.is_verified());
    assert_eq!(ours.to_libolm_pickle(KEY), pickle, "identical re-export");

    // Both decrypt the same further messages and stay identical.
    for index in [20, 2, 29] {
        our_expect(&mut ours, &sent[index].1, index as u32, &text(index as u32));
        theirs.expect(&mut peer, &sent[index].1, index as u32, &text(index as u32));
    }
    assert_eq!(ours.to_libolm_pickle(KEY), theirs.pickle(&mut peer));
    for (index, body) in &sent {
        our_expect(&mut ours, body, *index, &text(*index));
    }
    assert_eq!(
        InboundGroupSession::from_libolm_pickle(&pickle, b"wrong").unwrap_err(),
        LibolmPickleError::Authentication
    );
}

#[test]
fn their_imported_inbound_keeps_its_trust_flag() {
    let mut peer = Peer::libolm();
    let sender = LibOutbound::new(&mut peer);
    let source = sender.receiver(&mut peer);
    let sent = sender.encrypt_run(&mut peer, 20);
    let exported = source.export(&mut peer, 4).unwrap();

    // Imported, nothing decrypted: unverified on both sides, identical pickles.
    let theirs = LibInbound::import(&mut peer, &exported);
    let pickle = theirs.pickle(&mut peer);
    let mut ours = InboundGroupSession::from_libolm_pickle(&pickle, KEY).unwrap();
    assert!(!ours.is_verified());
    assert_eq!(ours.first_known_index(), 4);
    assert_eq!(ours.to_libolm_pickle(KEY), pickle);

    // After the same decryptions libolm marks its copy verified, olmo does not: the pickles
    // differ in that flag only (each side reads the other's and keeps decrypting).
    for index in [9, 5] {
        theirs.expect(&mut peer, &sent[index].1, index as u32, &text(index as u32));
        our_expect(&mut ours, &sent[index].1, index as u32, &text(index as u32));
    }
    let their_pickle = theirs.pickle(&mut peer);
    assert_ne!(ours.to_libolm_pickle(KEY), their_pickle);
    let mut from_theirs = InboundGroupSession::from_libolm_pickle(&their_pickle, KEY).unwrap();
    assert!(from_theirs.is_verified());
    let back = LibInbound::from_pickle(&mut peer, &ours.to_libolm_pickle(KEY));
    assert!(!back.is_verified(&mut peer));
    assert_eq!(back.first_known_index(&mut peer), 4);
    let mut flag_cleared = our_import(&exported);
    assert_eq!(
        flag_cleared.compare(&ours),
        olmo::megolm::SessionOrdering::Equal
    );
    for (index, body) in &sent[4..] {
        our_expect(&mut from_theirs, body, *index, &text(*index));
        our_expect(&mut flag_cleared, body, *index, &text(*index));
        back.expect(&mut peer, body, *index, &text(*index));
    }
}

#[test]
fn our_inbound_continues_in_libolm() {
    let mut peer = Peer::libolm();
    let mut sender = GroupSession::new(now());
    let key = sender.session_key().to_base64().to_string();
    let sent: Vec<_> = (0..25)
        .map(|i| our_encrypt(&mut sender, &text(i)))
        .collect();

    for mut ours in [our_inbound(&key), our_import(&ours_export(&key, 3))] {
        let verified = ours.is_verified();
        let first = ours.first_known_index();
        for index in [15usize, 4] {
            our_expect(&mut ours, &sent[index].1, index as u32, &text(index as u32));
        }
        let pickle = ours.to_libolm_pickle(KEY);
        let theirs = LibInbound::from_pickle(&mut peer, &pickle);
        assert_eq!(theirs.first_known_index(&mut peer), first);
        assert_eq!(theirs.is_verified(&mut peer), verified);
        assert_eq!(theirs.pickle(&mut peer), pickle, "identical re-export");
        for (index, body) in &sent[first as usize..] {
            theirs.expect(&mut peer, body, *index, &text(*index));
        }
    }
}

fn ours_export(session_key: &str, index: u32) -> String {
    our_inbound(session_key)
        .export_at(index)
        .unwrap()
        .to_base64()
        .to_string()
}
