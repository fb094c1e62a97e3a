//! Two copies of one session: compare and merge.

use olmo::megolm::{InboundGroupSession, SessionOrdering};

use super::{encrypt_many, pair};

#[test]
fn the_earlier_copy_is_better_and_merging_keeps_it() {
    let (mut outbound, signed) = pair();
    let messages = encrypt_many(&mut outbound, 12);
    let from_five = InboundGroupSession::import(&signed.export_at(5).unwrap());
    let from_ten = InboundGroupSession::import(&signed.export_at(10).unwrap());

    assert_eq!(from_five.compare(&from_ten), SessionOrdering::Better);
    assert_eq!(from_ten.compare(&from_five), SessionOrdering::Worse);
    assert_eq!(
        from_five.compare(&from_five.clone()),
        SessionOrdering::Equal
    );

    let mut merged = from_ten.merge(&from_five).unwrap();
    assert_eq!(merged.first_known_index(), 5);
    assert!(!merged.is_verified());
    assert_eq!(merged.decrypt(&messages[6]).unwrap().message_index, 6);
}

#[test]
fn a_signed_copy_beats_an_exported_one_at_the_same_index() {
    let (_, signed) = pair();
    let exported = InboundGroupSession::import(&signed.export_at_first_known_index());
    assert_eq!(signed.compare(&exported), SessionOrdering::Better);
    assert_eq!(exported.compare(&signed), SessionOrdering::Worse);
    // Merging a verified copy in vouches for the same key in the later-starting one.
    let later = InboundGroupSession::import(&signed.export_at(3).unwrap());
    assert!(later.merge(&signed).unwrap().is_verified());
}

#[test]
fn other_sessions_and_forged_ratchets_are_unconnected() {
    let (_, one) = pair();
    let (_, two) = pair();
    assert_eq!(one.compare(&two), SessionOrdering::Unconnected);
    assert!(one.merge(&two).is_none());

    // The same signing key with a ratchet that does not lead to ours: someone forwarded a
    // forged key under a known session id.
    let mut bytes = one.export_at(4).unwrap().to_bytes();
    bytes[10] ^= 0xFF;
    let forged = olmo::megolm::ExportedSessionKey::decode(&bytes).unwrap();
    let forged = InboundGroupSession::import(&forged);
    assert_eq!(forged.session_id(), one.session_id());
    assert_eq!(one.compare(&forged), SessionOrdering::Unconnected);
    assert_eq!(forged.compare(&one), SessionOrdering::Unconnected);
}
