//! Messages both ways: olmo's outbound to libolm's inbound and libolm's outbound to olmo's
//! inbound, in order, out of order, and from a session key shared mid-session.

use olmo::megolm::{GroupSession, MegolmDecryptError};

use crate::common::peer::Peer;
use crate::support::{
    Lcg, LibInbound, LibOutbound, PICKLE_KEY, flip, now, our_decrypt, our_encrypt, our_expect,
    our_inbound, text,
};

const RUN: u32 = 40;

#[test]
fn ours_to_theirs() {
    let mut peer = Peer::libolm();
    let mut ours = GroupSession::new(now());
    let key = ours.session_key().to_base64().to_string();
    let theirs = LibInbound::new(&mut peer, &key);
    assert_eq!(theirs.session_id(&mut peer), ours.session_id());
    assert_eq!(theirs.first_known_index(&mut peer), 0);
    assert!(theirs.is_verified(&mut peer));

    let sent: Vec<_> = (0..RUN).map(|i| our_encrypt(&mut ours, &text(i))).collect();
    assert_eq!(ours.message_index(), RUN);
    // In order for the first half, then the rest shuffled, then everything again (libolm
    // keeps no replay state: every message decrypts again).
    for (index, body) in &sent[..20] {
        theirs.expect(&mut peer, body, *index, &text(*index));
    }
    let mut rest: Vec<_> = sent[20..].to_vec();
    Lcg(7).shuffle(&mut rest);
    for (index, body) in rest.iter().chain(&sent) {
        theirs.expect(&mut peer, body, *index, &text(*index));
    }
}

#[test]
fn theirs_to_ours() {
    let mut peer = Peer::libolm();
    let theirs = LibOutbound::new(&mut peer);
    assert_eq!(theirs.message_index(&mut peer), 0);
    let mut ours = our_inbound(&theirs.session_key(&mut peer));
    assert_eq!(ours.session_id(), theirs.session_id);
    assert_eq!(ours.first_known_index(), 0);
    assert!(ours.is_verified());

    let sent = theirs.encrypt_run(&mut peer, RUN);
    for (index, body) in &sent[..20] {
        our_expect(&mut ours, body, *index, &text(*index));
    }
    let mut rest: Vec<_> = sent[20..].to_vec();
    Lcg(11).shuffle(&mut rest);
    for (index, body) in rest.iter().chain(&sent) {
        our_expect(&mut ours, body, *index, &text(*index));
    }
    // The single-message op agrees with the batch one.
    let (index, body) = theirs.encrypt(&mut peer, "one more");
    assert_eq!(index, RUN);
    our_expect(&mut ours, &body, RUN, "one more");
}

#[test]
fn session_keys_shared_mid_session_both_ways() {
    let mut peer = Peer::libolm();

    // olmo sends 7 messages, then shares its key: libolm starts at index 7.
    let mut ours = GroupSession::new(now());
    let early: Vec<_> = (0..7).map(|i| our_encrypt(&mut ours, &text(i))).collect();
    let theirs_in = LibInbound::new(&mut peer, &ours.session_key().to_base64());
    assert_eq!(theirs_in.first_known_index(&mut peer), 7);
    let (index, body) = our_encrypt(&mut ours, "after sharing");
    theirs_in.expect(&mut peer, &body, index, "after sharing");
    let error = theirs_in.decrypt(&mut peer, &early[6].1).unwrap_err();
    assert!(error.contains("UNKNOWN_MESSAGE_INDEX"), "{error}");

    // libolm sends 7 messages, then shares its key: olmo starts at index 7.
    let theirs_out = LibOutbound::new(&mut peer);
    let early = theirs_out.encrypt_run(&mut peer, 7);
    let key = theirs_out.session_key(&mut peer);
    let mut ours_in = our_inbound(&key);
    assert_eq!(ours_in.first_known_index(), 7);
    let (index, body) = theirs_out.encrypt(&mut peer, "after sharing");
    our_expect(&mut ours_in, &body, index, "after sharing");
    assert_eq!(
        our_decrypt(&mut ours_in, &early[6].1),
        Err(MegolmDecryptError::UnknownIndex {
            message: 6,
            first_known: 7
        })
    );

    // Ed25519 signatures are deterministic, so both sides write the same session key for the
    // same session: olmo's copy of libolm's sender (via its pickle) shows it.
    let copy = GroupSession::from_libolm_pickle(
        &theirs_out.pickle(&mut peer),
        PICKLE_KEY.as_bytes(),
        now(),
    )
    .unwrap();
    assert_eq!(
        *copy.session_key().to_base64(),
        theirs_out.session_key(&mut peer)
    );
}

#[test]
fn wrong_session_and_tampering_are_refused_by_both() {
    let mut peer = Peer::libolm();
    let mut ours = GroupSession::new(now());
    let theirs_in = LibInbound::new(&mut peer, &ours.session_key().to_base64());
    let theirs_out = LibOutbound::new(&mut peer);
    let mut ours_in = our_inbound(&theirs_out.session_key(&mut peer));

    // Each side's message to the other's session for someone else.
    let (_, from_ours) = our_encrypt(&mut ours, "x");
    let (_, from_theirs) = theirs_out.encrypt(&mut peer, "y");
    let mut stranger = our_inbound(&LibOutbound::new(&mut peer).session_key(&mut peer));
    assert_eq!(
        our_decrypt(&mut stranger, &from_theirs),
        Err(MegolmDecryptError::Signature)
    );
    let other_lib = LibInbound::new(
        &mut peer,
        &GroupSession::new(now()).session_key().to_base64(),
    );
    let error = other_lib.decrypt(&mut peer, &from_ours).unwrap_err();
    assert!(error.contains("BAD_SIGNATURE"), "{error}");

    // Any flipped bit (version aside, which both refuse earlier) breaks the signature.
    for position in [2, 9, 30] {
        let bad = flip(&from_theirs, position, false);
        assert!(our_decrypt(&mut ours_in, &bad).is_err(), "{position}");
        let bad = flip(&from_ours, position, false);
        assert!(theirs_in.decrypt(&mut peer, &bad).is_err(), "{position}");
    }
    for position in [0, 63, 64, 70] {
        let bad = flip(&from_theirs, position, true);
        assert_eq!(
            our_decrypt(&mut ours_in, &bad),
            Err(MegolmDecryptError::Signature)
        );
        let bad = flip(&from_ours, position, true);
        let error = theirs_in.decrypt(&mut peer, &bad).unwrap_err();
        assert!(error.contains("BAD_SIGNATURE"), "{position}: {error}");
    }
    // The originals still decrypt on both sides.
    our_expect(&mut ours_in, &from_theirs, 0, "y");
    theirs_in.expect(&mut peer, &from_ours, 0, "x");
}
