//! Far indices, both ways, without encrypting millions of messages: the sender is put at the
//! index through a libolm outbound pickle (see `support::Sender`).
//!
//! The u32 edge, as each side behaves (asserted here so that a change is noticed):
//!
//! - libolm compares indices modulo 2^32: a receiver opens an index less than 2^31 ahead of its
//!   latest ratchet from that ratchet (moving it there), else one less than 2^31 ahead of its
//!   first known index from the first known ratchet, and otherwise answers
//!   `UNKNOWN_MESSAGE_INDEX` (exports likewise). So from index 0 it refuses 2^31 and later,
//!   unless it first decrypted something that moved its latest ratchet closer.
//! - libolm's sender at `u32::MAX` writes that index, then wraps to index 0 with keys derived
//!   on from `R0`; libolm receivers that followed along decrypt the wrapped messages (and
//!   report index 0, 1, ...).
//! - olmo uses plain u32 order: every index at or after the first known one decrypts, the
//!   wrapped messages are refused, and olmo's sender refuses to write index `u32::MAX`
//!   (`GroupEncryptError::Exhausted`), although olmo reads a message at `u32::MAX`.

use olmo::crypto::CipherError;
use olmo::megolm::{GroupEncryptError, GroupSession, InboundGroupSession, MegolmDecryptError};

use crate::common::peer::Peer;
use crate::sender::Sender;
use crate::support::{
    LibInbound, PICKLE_KEY, our_decrypt, our_encrypt, our_expect, our_import, our_inbound,
};

const HALF: u32 = 1 << 31;
const UNKNOWN: &str = "OlmGroupSessionError: UNKNOWN_MESSAGE_INDEX";

#[test]
fn past_2_pow_24_both_ways() {
    let mut peer = Peer::libolm();
    for (seed, far) in [(1, (1 << 24) + 3), (2, 0x00FF_FFFF), (3, 0x0102_0304)] {
        let sender = Sender::new(seed);
        let key = sender.session_key();

        // olmo's sender (ratchet moved by olmo) → libolm's receiver from index 0 (moved by
        // libolm) and olmo's.
        let mut ours = sender.ours_at(far);
        let theirs_in = LibInbound::new(&mut peer, &key);
        let mut ours_in = our_inbound(&key);
        for offset in 0..3 {
            let (index, body) = our_encrypt(&mut ours, &format!("olmo at {far} + {offset}"));
            assert_eq!(index, far + offset);
            theirs_in.expect(
                &mut peer,
                &body,
                index,
                &format!("olmo at {far} + {offset}"),
            );
            our_expect(
                &mut ours_in,
                &body,
                index,
                &format!("olmo at {far} + {offset}"),
            );
        }

        // libolm's sender (ratchet moved by libolm's export) → olmo's receiver from index 0.
        let exported = LibInbound::new(&mut peer, &key)
            .export(&mut peer, far)
            .unwrap();
        assert_eq!(
            *our_inbound(&key).export_at(far).unwrap().to_base64(),
            exported,
            "both jump to the same ratchet"
        );
        let theirs = sender.theirs_from_export(&mut peer, &exported);
        let mut fresh = our_inbound(&key);
        for offset in 0..3 {
            let (index, body) = theirs.encrypt(&mut peer, "libolm far away");
            assert_eq!(index, far + offset);
            our_expect(&mut fresh, &body, index, "libolm far away");
        }
    }
}

#[test]
fn libolm_refuses_2_pow_31_ahead_olmo_does_not() {
    let mut peer = Peer::libolm();
    let sender = Sender::new(9);
    let key = sender.session_key();
    let mut ours = sender.ours_at(HALF - 1);
    let sent: Vec<_> = (0..3)
        .map(|i| our_encrypt(&mut ours, &format!("m{i}")))
        .collect();
    assert_eq!(sent[2].0, HALF + 1);

    // olmo and a fresh libolm receiver, both from index 0.
    let mut ours_in = our_inbound(&key);
    for (i, (index, body)) in sent.iter().enumerate() {
        our_expect(&mut ours_in, body, *index, &format!("m{i}"));
    }
    let theirs = LibInbound::new(&mut peer, &key);
    assert_eq!(theirs.decrypt(&mut peer, &sent[1].1).unwrap_err(), UNKNOWN);
    assert_eq!(theirs.decrypt(&mut peer, &sent[2].1).unwrap_err(), UNKNOWN);
    assert_eq!(theirs.export(&mut peer, HALF).unwrap_err(), UNKNOWN);
    assert_eq!(theirs.export(&mut peer, u32::MAX).unwrap_err(), UNKNOWN);
    // 2^31 − 1 ahead is fine, and moves libolm's latest ratchet: what follows it decrypts.
    theirs.expect(&mut peer, &sent[0].1, HALF - 1, "m0");
    theirs.expect(&mut peer, &sent[2].1, HALF + 1, "m2");
    // But 2^31 is now behind the latest ratchet and still 2^31 past the first known index.
    assert_eq!(theirs.decrypt(&mut peer, &sent[1].1).unwrap_err(), UNKNOWN);
    // In order, a fresh receiver gets all three.
    let fresh = LibInbound::new(&mut peer, &key);
    theirs_in_order(&mut peer, &fresh, &sent);

    // The window is relative to the first known index: from index 2 all three are near.
    let from_2 = LibInbound::import(&mut peer, &ours_in.export_at(2).unwrap().to_base64());
    theirs_in_order(&mut peer, &from_2, &sent);
    // olmo exports anywhere after its first known index; libolm imports the far export.
    let far = LibInbound::import(&mut peer, &ours_in.export_at(HALF + 1).unwrap().to_base64());
    far.expect(&mut peer, &sent[2].1, HALF + 1, "m2");
    assert_eq!(far.decrypt(&mut peer, &sent[1].1).unwrap_err(), UNKNOWN);
}

fn theirs_in_order(peer: &mut Peer, theirs: &LibInbound, sent: &[(u32, String)]) {
    for (i, (index, body)) in sent.iter().enumerate() {
        theirs.expect(peer, body, *index, &format!("m{i}"));
    }
}

#[test]
fn libolm_sender_across_2_pow_31_to_olmo() {
    let mut peer = Peer::libolm();
    let sender = Sender::new(10);
    let key = sender.session_key();
    // libolm cannot export 2^31 ahead in one go: two hops, each under 2^31.
    let theirs_in = LibInbound::new(&mut peer, &key);
    theirs_in.export(&mut peer, HALF - 1).unwrap();
    let exported = theirs_in.export(&mut peer, HALF + 5).unwrap();
    let theirs = sender.theirs_from_export(&mut peer, &exported);
    let mut ours_in = our_inbound(&key);
    for index in HALF + 5..HALF + 8 {
        let (at, body) = theirs.encrypt(&mut peer, "over the half");
        assert_eq!(at, index);
        our_expect(&mut ours_in, &body, index, "over the half");
    }
}

#[test]
fn u32_max_olmo_stops_libolm_wraps() {
    let mut peer = Peer::libolm();
    let sender = Sender::new(11);
    let key = sender.session_key();

    // olmo: writes u32::MAX − 1, then refuses, and stays refusing.
    let mut ours = sender.ours_at(u32::MAX - 1);
    let (index, last) = our_encrypt(&mut ours, "last one");
    assert_eq!(index, u32::MAX - 1);
    assert_eq!(ours.message_index(), u32::MAX);
    for _ in 0..2 {
        assert_eq!(
            ours.encrypt(b"one too many"),
            Err(GroupEncryptError::Exhausted)
        );
        assert_eq!(ours.message_index(), u32::MAX);
    }
    let mut ours_in = our_inbound(&key);
    our_expect(&mut ours_in, &last, u32::MAX - 1, "last one");

    // libolm's copy of olmo's exhausted sender still writes u32::MAX, which olmo reads.
    let their_copy = crate::support::LibOutbound::from_pickle(
        &mut peer,
        &ours.to_libolm_pickle(PICKLE_KEY.as_bytes()),
    );
    let (index, at_max) = their_copy.encrypt(&mut peer, "at the top");
    assert_eq!(index, u32::MAX);
    our_expect(&mut ours_in, &at_max, u32::MAX, "at the top");
    // ...and then wraps to index 0, with keys that are not those of index 0.
    let wrapped: Vec<_> = (0..2)
        .map(|i| their_copy.encrypt(&mut peer, &format!("wrapped {i}")))
        .collect();
    assert_eq!(wrapped.iter().map(|w| w.0).collect::<Vec<_>>(), [0, 1]);
    for (_, body) in &wrapped {
        assert_eq!(
            our_decrypt(&mut ours_in, body),
            Err(MegolmDecryptError::Cipher(CipherError::Mac)),
            "olmo from index 0 knows index 0 and 1: the wrapped keys do not match"
        );
    }
    let export = ours_in
        .export_at(u32::MAX - 1)
        .unwrap()
        .to_base64()
        .to_string();
    let mut ours_late = our_import(&export);
    for (index, body) in &wrapped {
        assert_eq!(
            our_decrypt(&mut ours_late, body),
            Err(MegolmDecryptError::UnknownIndex {
                message: *index,
                first_known: u32::MAX - 1
            })
        );
    }

    // libolm's receiver from u32::MAX − 1 follows the wrap.
    let theirs_late = LibInbound::import(&mut peer, &export);
    theirs_late.expect(&mut peer, &last, u32::MAX - 1, "last one");
    theirs_late.expect(&mut peer, &at_max, u32::MAX, "at the top");
    for (i, (index, body)) in wrapped.iter().enumerate() {
        theirs_late.expect(&mut peer, body, *index, &format!("wrapped {i}"));
    }
    // Its pickle now has a latest index (1) before its first known one (u32::MAX − 1): olmo
    // takes it, drops that latest ratchet, and keeps refusing the wrapped messages.
    let mut imported = InboundGroupSession::from_libolm_pickle(
        &theirs_late.pickle(&mut peer),
        PICKLE_KEY.as_bytes(),
    )
    .unwrap();
    assert_eq!(imported.first_known_index(), u32::MAX - 1);
    our_expect(&mut imported, &at_max, u32::MAX, "at the top");
    assert!(matches!(
        our_decrypt(&mut imported, &wrapped[1].1),
        Err(MegolmDecryptError::UnknownIndex { .. })
    ));

    // An olmo sender made at u32::MAX cannot write at all.
    let mut top: GroupSession = sender.ours_at(u32::MAX);
    assert_eq!(top.encrypt(b"x"), Err(GroupEncryptError::Exhausted));
}
