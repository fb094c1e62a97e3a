//! olmo's libolm-format pickles read by vodozemac (`from_libolm_pickle`), mid-session, for
//! outbound and inbound sessions. vodozemac 0.11 writes no libolm pickles, so the other
//! direction goes through session keys and exports (see `sessions`).

use olmo::megolm::{GroupSession, InboundGroupSession};
use vodozemac::megolm::{GroupSession as VGroupSession, InboundGroupSession as VInbound};

use crate::support::{PICKLE_KEY, now, our_expect, text, to_ours, to_v, v_expect, v_inbound};

#[test]
fn our_outbound_continues_in_vodozemac() {
    let mut ours = GroupSession::new(now());
    let mut receiver = v_inbound(&ours);
    for i in 0..9 {
        v_expect(
            &mut receiver,
            &ours.encrypt(text(i).as_bytes()).unwrap(),
            &text(i),
        );
    }
    let mut theirs =
        VGroupSession::from_libolm_pickle(&ours.to_libolm_pickle(PICKLE_KEY), PICKLE_KEY).unwrap();
    assert_eq!(theirs.session_id(), ours.session_id());
    assert_eq!(theirs.message_index(), 9);
    assert_eq!(
        theirs.session_key().to_bytes(),
        *ours.session_key().to_bytes()
    );
    // Both copies write the very same message at index 9, and vodozemac carries on.
    let from_theirs = theirs.encrypt(text(9));
    let from_ours = ours.encrypt(text(9).as_bytes()).unwrap();
    assert_eq!(from_theirs.to_bytes(), from_ours.to_bytes());
    v_expect(&mut receiver, &from_ours, &text(9));
    for i in 10..20 {
        let message = to_ours(&theirs.encrypt(text(i)));
        assert_eq!(message.message_index(), i);
        v_expect(&mut receiver, &message, &text(i));
    }
    assert!(
        VGroupSession::from_libolm_pickle(&ours.to_libolm_pickle(PICKLE_KEY), b"wrong").is_err()
    );
}

#[test]
fn our_inbound_continues_in_vodozemac() {
    let mut sender = GroupSession::new(now());
    let signed = InboundGroupSession::new(&sender.session_key());
    let sent: Vec<_> = (0..30)
        .map(|i| sender.encrypt(text(i).as_bytes()).unwrap())
        .collect();
    let imported = InboundGroupSession::import(&signed.export_at(12).unwrap());

    for mut ours in [signed, imported] {
        let first = ours.first_known_index();
        // Out of order, so that the latest ratchet (25) is ahead of the first known one.
        for index in [25usize, 14] {
            our_expect(&mut ours, &to_v(&sent[index]), &text(index as u32));
        }
        let mut theirs =
            VInbound::from_libolm_pickle(&ours.to_libolm_pickle(PICKLE_KEY), PICKLE_KEY).unwrap();
        assert_eq!(theirs.session_id(), ours.session_id());
        assert_eq!(theirs.first_known_index(), first);
        let pickle = serde_json::to_value(theirs.pickle()).unwrap();
        assert_eq!(pickle["signing_key_verified"], ours.is_verified());
        for message in &sent[first as usize..] {
            v_expect(&mut theirs, message, &text(message.message_index()));
        }
        if first > 0 {
            assert!(theirs.export_at(first - 1).is_none());
        }
        assert_eq!(
            theirs.export_at_first_known_index().to_bytes(),
            *ours.export_at_first_known_index().to_bytes()
        );
    }
}
