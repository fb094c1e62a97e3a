//! The replay record: one event per (session, index), recorded only for messages that
//! decrypted.

use olmo::crypto::Ed25519KeyPair;
use olmo::megolm::{MegolmMessage, Replay, ReplayRecord};
use olmo::persist::StorageKey;

use super::{encrypt_many, pair};

#[test]
fn a_reused_index_in_another_event_is_a_replay() {
    let (mut outbound, mut inbound) = pair();
    let messages = encrypt_many(&mut outbound, 2);
    let session = inbound.session_id();
    let mut record = ReplayRecord::new();

    let first = inbound.decrypt(&messages[0]).unwrap();
    assert_eq!(first.session_id(), session);
    record.check(&first, "$event-a").unwrap();
    // Re-reading the same event (timeline reload) is not a replay.
    record.check(&first, "$event-a").unwrap();
    // The same ciphertext in a second event is.
    let copied = inbound.decrypt(&messages[0]).unwrap();
    assert_eq!(
        record.check(&copied, "$event-b"),
        Err(Replay {
            session_id: session.clone(),
            message_index: 0
        })
    );
    // The failed check recorded nothing: the first event still owns the index.
    record.check(&first, "$event-a").unwrap();
    let second = inbound.decrypt(&messages[1]).unwrap();
    record.check(&second, "$event-b").unwrap();

    let (mut other_outbound, mut other_inbound) = pair();
    let other = other_inbound
        .decrypt(&other_outbound.encrypt(b"elsewhere").unwrap())
        .unwrap();
    record.check(&other, "$event-b").unwrap();
    assert_eq!(record.len(), 3);

    record.forget_session(&other_inbound.session_id());
    assert_eq!(record.len(), 2);
}

/// A forged message with the genuine event's index (made by someone who holds the session's
/// ratchet, so its MAC is right, but not its signing key) does not decrypt, so it can claim
/// nothing in the record: the genuine event, arriving later, is not taken for a replay.
#[test]
fn a_forged_message_cannot_make_the_genuine_event_a_replay() {
    let (mut outbound, mut inbound) = pair();
    let ratchet = inbound.export_at(0).unwrap().ratchet().clone();
    let forger = Ed25519KeyPair::from_seed(&[0x66; 32]);
    let forged = MegolmMessage::encrypt(&ratchet, &forger, b"forged").unwrap();
    let genuine = outbound.encrypt(b"genuine").unwrap();
    assert_eq!(forged.message_index(), genuine.message_index());

    let mut record = ReplayRecord::new();
    assert!(inbound.decrypt(&forged).is_err());
    let backlog = inbound.decrypt_backlog(std::slice::from_ref(&forged));
    assert!(backlog[0].is_err());

    let decrypted = inbound.decrypt(&genuine).unwrap();
    assert_eq!(&decrypted.plaintext[..], b"genuine");
    record.check(&decrypted, "$genuine").unwrap();
    assert_eq!(record.len(), 1);
}

/// Messages decrypted as a backlog prove themselves to the record like single ones.
#[test]
fn backlog_results_are_recorded_like_single_messages() {
    let (mut outbound, mut inbound) = pair();
    let messages = encrypt_many(&mut outbound, 3);
    let mut record = ReplayRecord::new();
    for (n, result) in inbound.decrypt_backlog(&messages).iter().enumerate() {
        record
            .check(result.as_ref().unwrap(), &format!("$event-{n}"))
            .unwrap();
    }
    let again = inbound.decrypt(&messages[2]).unwrap();
    assert!(record.check(&again, "$event-2").is_ok());
    assert!(record.check(&again, "$event-0").is_err());
}

#[test]
fn the_record_survives_storage_and_hides_event_ids() {
    let (mut outbound, mut inbound) = pair();
    let messages = encrypt_many(&mut outbound, 50);
    let mut record = ReplayRecord::new();
    for (index, message) in messages.iter().enumerate() {
        let decrypted = inbound.decrypt(message).unwrap();
        record
            .check(&decrypted, &format!("$event-{index}"))
            .unwrap();
    }
    let key = StorageKey::from_bytes([3; 32]);
    let blob = record.save(&key);
    assert!(!blob.windows(6).any(|w| w == b"$event"));
    let mut restored = ReplayRecord::restore(&blob, &key).unwrap();
    assert_eq!(restored, record);
    let seventh = inbound.decrypt(&messages[7]).unwrap();
    assert!(restored.check(&seventh, "$other").is_err());
    assert!(!format!("{restored:?}").contains("event"));
}
