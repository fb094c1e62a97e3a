//! Saving and restoring group sessions in our format.

use olmo::megolm::{GroupSession, InboundGroupSession, Timestamp};
use olmo::persist::{PersistError, StorageKey};

use super::{NOON, encrypt_many, pair};

const KEY: StorageKey = StorageKey::from_bytes([7; 32]);

#[test]
fn outbound_restores_mid_session_and_continues() {
    let mut outbound = GroupSession::new(NOON);
    encrypt_many(&mut outbound, 3);
    outbound.invalidate();
    let restored = GroupSession::restore(&outbound.save(&KEY), &KEY).unwrap();
    assert_eq!(restored.session_id(), outbound.session_id());
    assert_eq!(restored.message_index(), 3);
    assert_eq!(restored.created_at(), NOON);
    assert!(restored.is_invalidated());

    let mut live = GroupSession::new(Timestamp::from_millis(5));
    encrypt_many(&mut live, 2);
    let mut restored = GroupSession::restore(&live.save(&KEY), &KEY).unwrap();
    let message = restored.encrypt(b"after restore").unwrap();
    assert_eq!(message.message_index(), 2);
    let mut reader = InboundGroupSession::new(&live.session_key());
    assert_eq!(
        &*reader.decrypt(&message).unwrap().plaintext,
        b"after restore"
    );
}

#[test]
fn inbound_restores_with_its_first_index_and_trust() {
    let (mut outbound, signed) = pair();
    let messages = encrypt_many(&mut outbound, 6);
    let mut imported = InboundGroupSession::import(&signed.export_at(2).unwrap());
    imported.decrypt(&messages[4]).unwrap();
    let mut restored = InboundGroupSession::restore(&imported.save(&KEY), &KEY).unwrap();
    assert_eq!(restored.first_known_index(), 2);
    assert!(!restored.is_verified());
    assert_eq!(restored.decrypt(&messages[2]).unwrap().message_index, 2);
    assert_eq!(restored.decrypt(&messages[5]).unwrap().message_index, 5);

    let signed_restored = InboundGroupSession::restore(&signed.save(&KEY), &KEY).unwrap();
    assert!(signed_restored.is_verified());
}

#[test]
fn blobs_do_not_cross_kinds_or_keys() {
    let (outbound, inbound) = pair();
    let outbound_blob = outbound.save(&KEY);
    let inbound_blob = inbound.save(&KEY);
    assert_eq!(
        InboundGroupSession::restore(&outbound_blob, &KEY).unwrap_err(),
        PersistError::WrongKind
    );
    assert_eq!(
        GroupSession::restore(&inbound_blob, &KEY).unwrap_err(),
        PersistError::WrongKind
    );
    let other = StorageKey::from_bytes([8; 32]);
    assert_eq!(
        GroupSession::restore(&outbound_blob, &other).unwrap_err(),
        PersistError::Authentication
    );
    for cut in [0, 10, outbound_blob.len() - 1] {
        assert!(GroupSession::restore(&outbound_blob[..cut], &KEY).is_err());
    }
}
