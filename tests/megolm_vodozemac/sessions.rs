//! Sessions both ways: olmo's `GroupSession` to vodozemac's receiver and back, exported keys at
//! later indices with the first known index enforced on both sides, and compare/merge of copies
//! made from vodozemac's exports.
//!
//! One difference, asserted: at the same first index olmo ranks a copy from a signed session key
//! above one from an export (`Better`), vodozemac calls them `Equal` and only merges the trust.

use olmo::megolm::{
    GroupSession, InboundGroupSession, MegolmDecryptError, SessionOrdering as Ordering,
};
use vodozemac::megolm::{
    DecryptionError, GroupSession as VGroupSession, InboundGroupSession as VInbound, SessionConfig,
    SessionOrdering as VOrdering,
};

use crate::support::{
    now, our_expect, our_import, our_inbound, text, to_ours, v_expect, v_import, v_inbound,
};

#[test]
fn messages_both_ways() {
    let mut ours = GroupSession::new(now());
    let mut theirs_in = v_inbound(&ours);
    assert_eq!(theirs_in.session_id(), ours.session_id());
    let sent: Vec<_> = (0..40)
        .map(|i| ours.encrypt(text(i).as_bytes()).unwrap())
        .collect();
    // Newest first, then in order: vodozemac jumps back from its first known ratchet.
    for message in sent.iter().rev().chain(&sent) {
        v_expect(&mut theirs_in, message, &text(message.message_index()));
    }

    let mut theirs = VGroupSession::new(SessionConfig::version_1());
    let mut ours_in = our_inbound(&theirs);
    assert_eq!(ours_in.session_id(), theirs.session_id());
    let sent: Vec<_> = (0..40).map(|i| theirs.encrypt(text(i))).collect();
    for message in sent.iter().rev().chain(&sent) {
        our_expect(
            &mut ours_in,
            message,
            &text(to_ours(message).message_index()),
        );
    }
}

#[test]
fn exports_both_ways_respect_the_first_known_index() {
    let mut theirs = VGroupSession::new(SessionConfig::version_1());
    let mut theirs_full = VInbound::new(&theirs.session_key(), SessionConfig::version_1());
    let ours_full = our_inbound(&theirs);
    let sent: Vec<_> = (0..50).map(|i| theirs.encrypt(text(i))).collect();

    for at in [0, 1, 17, 49] {
        // vodozemac → olmo.
        let exported = theirs_full.export_at(at).unwrap();
        assert_eq!(
            *ours_full.export_at(at).unwrap().to_bytes(),
            exported.to_bytes()
        );
        let mut ours = our_import(&exported);
        assert_eq!(ours.first_known_index(), at);
        assert!(!ours.is_verified());
        for (index, message) in sent.iter().enumerate() {
            let index = index as u32;
            if index >= at {
                our_expect(&mut ours, message, &text(index));
            } else {
                assert_eq!(
                    ours.decrypt(&to_ours(message)).unwrap_err(),
                    MegolmDecryptError::UnknownIndex {
                        message: index,
                        first_known: at
                    }
                );
            }
        }

        // olmo → vodozemac.
        let mut back = v_import(&ours_full.export_at(at).unwrap());
        assert_eq!(back.first_known_index(), at);
        for (index, message) in sent.iter().enumerate() {
            let index = index as u32;
            match back.decrypt(message) {
                Ok(decrypted) => {
                    assert!(index >= at);
                    assert_eq!(decrypted.plaintext, text(index).as_bytes());
                }
                Err(DecryptionError::UnknownMessageIndex(first, got)) => {
                    assert_eq!((first, got), (at, index));
                    assert!(index < at);
                }
                Err(e) => panic!("vodozemac at {index}: {e}"),
            }
        }
        if at > 0 {
            assert!(back.export_at(at - 1).is_none());
            assert!(ours.export_at(at - 1).is_none());
        }
    }
}

#[test]
fn compare_and_merge_agree_with_vodozemac_except_for_trust() {
    let mut theirs = VGroupSession::new(SessionConfig::version_1());
    let mut signed_v = VInbound::new(&theirs.session_key(), SessionConfig::version_1());
    let signed = our_inbound(&theirs);
    let sent: Vec<_> = (0..60).map(|i| theirs.encrypt(text(i))).collect();

    let indices = [0u32, 10, 10, 50];
    let mut v_copies: Vec<VInbound> = indices
        .iter()
        .map(|&i| VInbound::import(&signed_v.export_at(i).unwrap(), SessionConfig::version_1()))
        .collect();
    let copies: Vec<InboundGroupSession> = indices
        .iter()
        .map(|&i| our_import(&signed_v.export_at(i).unwrap()))
        .collect();
    let same = |ours: Ordering, theirs: VOrdering| {
        matches!(
            (ours, theirs),
            (Ordering::Equal, VOrdering::Equal)
                | (Ordering::Better, VOrdering::Better)
                | (Ordering::Worse, VOrdering::Worse)
                | (Ordering::Unconnected, VOrdering::Unconnected)
        )
    };
    for a in 0..indices.len() {
        for b in 0..indices.len() {
            let ours = copies[a].compare(&copies[b]);
            let (left, right) = v_copies.split_at_mut(a.max(b));
            let theirs = if a == b {
                VOrdering::Equal
            } else if a < b {
                left[a].compare(&mut right[0])
            } else {
                right[0].compare(&mut left[b])
            };
            assert!(same(ours, theirs), "{a} vs {b}: {ours:?} / {theirs:?}");
        }
    }

    // Trust: the signed copy and the export at 0.
    assert_eq!(signed.compare(&copies[0]), Ordering::Better);
    assert_eq!(signed_v.compare(&mut v_copies[0]), VOrdering::Equal);

    // Merging: the earlier copy, trusted if either was; the same keys as vodozemac's merge.
    let signed_late = our_inbound(&theirs);
    let mut signed_late_v = VInbound::new(&theirs.session_key(), SessionConfig::version_1());
    assert_eq!(signed_late.first_known_index(), 60);
    let mut merged = copies[1].merge(&signed_late).unwrap();
    let merged_v = v_copies[1].merge(&mut signed_late_v).unwrap();
    assert_eq!(merged.first_known_index(), 10);
    assert!(merged.is_verified());
    assert_eq!(
        *merged.export_at_first_known_index().to_bytes(),
        merged_v.export_at_first_known_index().to_bytes()
    );
    for message in &sent[10..] {
        our_expect(
            &mut merged,
            message,
            &text(to_ours(message).message_index()),
        );
    }

    // Another session is unconnected on both sides.
    let other = VGroupSession::new(SessionConfig::version_1());
    let mut other_v = VInbound::new(&other.session_key(), SessionConfig::version_1());
    assert_eq!(
        copies[0].compare(&our_inbound(&other)),
        Ordering::Unconnected
    );
    assert_eq!(v_copies[0].compare(&mut other_v), VOrdering::Unconnected);
    assert!(copies[0].merge(&our_inbound(&other)).is_none());
}
