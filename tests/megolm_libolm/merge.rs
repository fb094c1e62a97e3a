//! compare / merge of olmo copies of one libolm session, made from libolm's exports at
//! different indices and from its signed session key.

use olmo::megolm::{InboundGroupSession, MegolmDecryptError, MegolmRatchet, SessionOrdering};

use crate::common::peer::Peer;
use crate::sender::Sender;
use crate::support::{
    LibInbound, LibOutbound, PICKLE_KEY, our_decrypt, our_expect, our_import, our_inbound, text,
};

#[test]
fn copies_from_their_exports_compare_by_first_index_then_trust() {
    let mut peer = Peer::libolm();
    let sender = LibOutbound::new(&mut peer);
    let key = sender.session_key(&mut peer);
    let theirs = LibInbound::new(&mut peer, &key);
    let sent = sender.encrypt_run(&mut peer, 80);

    let signed = our_inbound(&key);
    let at = |peer: &mut Peer, index| our_import(&theirs.export(peer, index).unwrap());
    let (c0, c10, c50, c10_again) = (
        at(&mut peer, 0),
        at(&mut peer, 10),
        at(&mut peer, 50),
        at(&mut peer, 10),
    );

    use SessionOrdering::{Better, Equal, Worse};
    assert_eq!(c0.compare(&c10), Better);
    assert_eq!(c10.compare(&c0), Worse);
    assert_eq!(c10.compare(&c50), Better);
    assert_eq!(c50.compare(&c0), Worse);
    assert_eq!(c10.compare(&c10_again), Equal);
    assert_eq!(c10.compare(&c10), Equal);
    // Same first index: the signed session key beats the unsigned export.
    assert_eq!(signed.compare(&c0), Better);
    assert_eq!(c0.compare(&signed), Worse);
    // An earlier index beats trust: the signed key the sender would share now is at 80.
    let signed_late = our_inbound(&sender.session_key(&mut peer));
    assert_eq!(signed_late.first_known_index(), 80);
    assert_eq!(c0.compare(&signed_late), Better);
    assert_eq!(signed_late.compare(&c50), Worse);

    // Merging keeps the earlier index and the trust of either copy.
    let merged = c50.merge(&signed).unwrap();
    assert_eq!(merged.first_known_index(), 0);
    assert!(merged.is_verified());
    let merged = c10.merge(&c50).unwrap();
    assert_eq!(merged.first_known_index(), 10);
    assert!(!merged.is_verified());
    assert_eq!(
        *merged.export_at_first_known_index().to_base64(),
        theirs.export(&mut peer, 10).unwrap()
    );

    // The merged copy decrypts exactly what the better one does.
    let mut merged = c50.merge(&c10).unwrap();
    for (index, body) in &sent {
        match our_decrypt(&mut merged, body) {
            Ok(got) => assert_eq!(got, (text(*index), *index)),
            Err(e) => {
                assert!(*index < 10, "{index}: {e:?}");
                assert_eq!(
                    e,
                    MegolmDecryptError::UnknownIndex {
                        message: *index,
                        first_known: 10
                    }
                );
            }
        }
    }
}

#[test]
fn merge_keeps_the_latest_ratchet_of_either_copy() {
    let mut peer = Peer::libolm();
    let sender = LibOutbound::new(&mut peer);
    let theirs = sender.receiver(&mut peer);
    let sent = sender.encrypt_run(&mut peer, 30);
    let mut early = our_import(&theirs.export(&mut peer, 2).unwrap());
    let mut late = our_import(&theirs.export(&mut peer, 20).unwrap());
    our_expect(&mut late, &sent[29].1, 29, &text(29));
    our_expect(&mut early, &sent[3].1, 3, &text(3));

    let mut merged = early.merge(&late).unwrap();
    assert_eq!(merged.first_known_index(), 2);
    // Both the old and the newest messages decrypt.
    for index in [2usize, 25, 29, 4] {
        our_expect(
            &mut merged,
            &sent[index].1,
            index as u32,
            &text(index as u32),
        );
    }
    // The merged copy moves to libolm as a pickle and still decrypts there.
    let back = LibInbound::from_pickle(&mut peer, &merged.to_libolm_pickle(PICKLE_KEY.as_bytes()));
    assert_eq!(back.first_known_index(&mut peer), 2);
    back.expect(&mut peer, &sent[28].1, 28, &text(28));
}

#[test]
fn unconnected_copies() {
    let mut peer = Peer::libolm();
    let one = LibOutbound::new(&mut peer);
    let two = LibOutbound::new(&mut peer);
    let a = our_inbound(&one.session_key(&mut peer));
    let b = our_inbound(&two.session_key(&mut peer));
    assert_eq!(a.compare(&b), SessionOrdering::Unconnected);
    assert!(a.merge(&b).is_none());

    // The same signing key with a ratchet that is not the session's: handed to libolm as an
    // outbound pickle, then exported by libolm — olmo sees that the copies do not meet.
    let sender = Sender::new(3);
    let genuine = our_inbound(&sender.session_key());
    let forged_ratchet = MegolmRatchet::from_bytes(&[0x5A; MegolmRatchet::LENGTH], 4);
    let forged = LibOutbound::from_pickle(&mut peer, &sender.pickle_with(&forged_ratchet));
    assert_eq!(forged.session_id, genuine.session_id());
    let forged_key = forged.session_key(&mut peer);
    let forged_copy: InboundGroupSession = our_inbound(&forged_key);
    assert_eq!(forged_copy.first_known_index(), 4);
    assert_eq!(genuine.compare(&forged_copy), SessionOrdering::Unconnected);
    assert_eq!(forged_copy.compare(&genuine), SessionOrdering::Unconnected);
    assert!(forged_copy.merge(&genuine).is_none());
    // While the genuine ratchet moved to index 4 does connect.
    let mut moved = sender.ratchet.clone();
    moved.advance_to(4).unwrap();
    let honest = LibOutbound::from_pickle(&mut peer, &sender.pickle_with(&moved));
    let honest_copy = our_inbound(&honest.session_key(&mut peer));
    assert_eq!(genuine.compare(&honest_copy), SessionOrdering::Better);
}
