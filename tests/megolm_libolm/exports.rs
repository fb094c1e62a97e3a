//! Exported session keys both ways at later indices: the first known index holds on both
//! sides, and the exports are byte-identical.

use olmo::megolm::{GroupSession, InboundGroupSession, MegolmDecryptError};

use crate::common::peer::Peer;
use crate::support::{
    LibInbound, LibOutbound, now, our_decrypt, our_encrypt, our_expect, our_import, our_inbound,
    text,
};

const EXPORT_AT: [u32; 5] = [0, 1, 9, 30, 59];

#[test]
fn their_exports_import_into_ours() {
    let mut peer = Peer::libolm();
    let sender = LibOutbound::new(&mut peer);
    let key = sender.session_key(&mut peer);
    let theirs = LibInbound::new(&mut peer, &key);
    let ours_full = our_inbound(&key);
    let sent = sender.encrypt_run(&mut peer, 60);

    for at in EXPORT_AT {
        let exported = theirs.export(&mut peer, at).unwrap();
        // olmo exports the same bytes at the same index.
        assert_eq!(*ours_full.export_at(at).unwrap().to_base64(), exported);

        let mut ours = our_import(&exported);
        assert_eq!(ours.first_known_index(), at);
        assert_eq!(ours.session_id(), sender.session_id);
        assert!(!ours.is_verified());
        for (index, body) in sent.iter().rev() {
            if *index >= at {
                our_expect(&mut ours, body, *index, &text(*index));
            } else {
                assert_eq!(
                    our_decrypt(&mut ours, body),
                    Err(MegolmDecryptError::UnknownIndex {
                        message: *index,
                        first_known: at
                    })
                );
            }
        }
        // Nothing before the first known index can be exported again; later indices can.
        if at > 0 {
            assert!(ours.export_at(at - 1).is_none());
        }
        assert_eq!(*ours.export_at_first_known_index().to_base64(), exported);
        assert_eq!(
            *ours.export_at(59).unwrap().to_base64(),
            theirs.export(&mut peer, 59).unwrap()
        );
    }
}

#[test]
fn our_exports_import_into_theirs() {
    let mut peer = Peer::libolm();
    let mut sender = GroupSession::new(now());
    let ours_full = InboundGroupSession::new(&sender.session_key());
    let theirs_full = LibInbound::new(&mut peer, &sender.session_key().to_base64());
    let sent: Vec<_> = (0..60)
        .map(|i| our_encrypt(&mut sender, &text(i)))
        .collect();

    for at in EXPORT_AT {
        let exported = ours_full.export_at(at).unwrap().to_base64().to_string();
        assert_eq!(theirs_full.export(&mut peer, at).unwrap(), exported);

        let theirs = LibInbound::import(&mut peer, &exported);
        assert_eq!(theirs.first_known_index(&mut peer), at);
        assert_eq!(theirs.session_id(&mut peer), sender.session_id());
        assert!(!theirs.is_verified(&mut peer));
        // Before the first known index: libolm's UNKNOWN_MESSAGE_INDEX.
        if at > 0 {
            let error = theirs
                .decrypt(&mut peer, &sent[at as usize - 1].1)
                .unwrap_err();
            assert_eq!(error, "OlmGroupSessionError: UNKNOWN_MESSAGE_INDEX");
            let error = theirs.export(&mut peer, at - 1).unwrap_err();
            assert_eq!(error, "OlmGroupSessionError: UNKNOWN_MESSAGE_INDEX");
        }
        for (index, body) in &sent[at as usize..] {
            theirs.expect(&mut peer, body, *index, &text(*index));
        }
        // libolm counts a successful decryption as evidence for the key; olmo does not
        // (`is_verified` only says where the key came from).
        assert!(theirs.is_verified(&mut peer));
        let mut ours = our_import(&exported);
        let (index, body) = &sent[59];
        our_expect(&mut ours, body, *index, &text(*index));
        assert!(!ours.is_verified());
    }
}

#[test]
fn exports_chain_across_both_implementations() {
    // olmo → libolm → olmo → libolm, each exporting further on: every hop keeps the session.
    let mut peer = Peer::libolm();
    let sender = LibOutbound::new(&mut peer);
    let start = our_inbound(&sender.session_key(&mut peer));
    let sent = sender.encrypt_run(&mut peer, 40);

    let hop1 = LibInbound::import(&mut peer, &start.export_at(5).unwrap().to_base64());
    let hop2 = our_import(&hop1.export(&mut peer, 17).unwrap());
    let hop3 = LibInbound::import(&mut peer, &hop2.export_at(33).unwrap().to_base64());
    assert_eq!(hop3.first_known_index(&mut peer), 33);
    for (index, body) in &sent[33..] {
        hop3.expect(&mut peer, body, *index, &text(*index));
    }
    let mut back = our_import(&hop3.export(&mut peer, 39).unwrap());
    our_expect(&mut back, &sent[39].1, 39, &text(39));
    assert!(matches!(
        our_decrypt(&mut back, &sent[38].1),
        Err(MegolmDecryptError::UnknownIndex { .. })
    ));
}
