//! The replay record: one event per (session, index).

use olmo::megolm::{Replay, ReplayRecord};
use olmo::persist::StorageKey;

use super::{encrypt_many, pair};

#[test]
fn a_reused_index_in_another_event_is_a_replay() {
    let (mut outbound, mut inbound) = pair();
    let messages = encrypt_many(&mut outbound, 2);
    let session = inbound.session_id();
    let mut record = ReplayRecord::new();

    let first = inbound.decrypt(&messages[0]).unwrap();
    record
        .check(&session, first.message_index, "$event-a")
        .unwrap();
    // Re-reading the same event (timeline reload) is not a replay.
    record
        .check(&session, first.message_index, "$event-a")
        .unwrap();
    // The same ciphertext in a second event is.
    assert_eq!(
        record.check(&session, first.message_index, "$event-b"),
        Err(Replay {
            session_id: session.clone(),
            message_index: 0
        })
    );
    // The failed check recorded nothing: the first event still owns the index.
    record.check(&session, 0, "$event-a").unwrap();
    record.check(&session, 1, "$event-b").unwrap();
    record.check("another session", 0, "$event-b").unwrap();
    assert_eq!(record.len(), 3);

    record.forget_session("another session");
    assert_eq!(record.len(), 2);
}

#[test]
fn the_record_survives_storage_and_hides_event_ids() {
    let mut record = ReplayRecord::new();
    for index in 0..50 {
        record
            .check("session", index, &format!("$event-{index}"))
            .unwrap();
    }
    let key = StorageKey::from_bytes([3; 32]);
    let blob = record.save(&key);
    assert!(!blob.windows(6).any(|w| w == b"$event"));
    let mut restored = ReplayRecord::restore(&blob, &key).unwrap();
    assert_eq!(restored, record);
    assert!(restored.check("session", 7, "$other").is_err());
    assert!(!format!("{restored:?}").contains("event"));
}
