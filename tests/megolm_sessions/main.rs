//! Megolm sessions on their own: round trips, rotation, replay records, backlog decryption,
//! storage and bad input. Interop with libolm and vodozemac lives in their own test targets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod backlog;
mod bad_input;
mod copies;
mod replay;
mod rotation;
mod storage;

use olmo::megolm::{GroupSession, InboundGroupSession, MegolmMessage, Timestamp};

const NOON: Timestamp = Timestamp::from_millis(1_700_000_000_000);

/// An outbound session and an inbound one made from its session key.
fn pair() -> (GroupSession, InboundGroupSession) {
    let outbound = GroupSession::new(NOON);
    let inbound = InboundGroupSession::new(&outbound.session_key());
    (outbound, inbound)
}

fn encrypt_many(outbound: &mut GroupSession, count: u32) -> Vec<MegolmMessage> {
    (0..count)
        .map(|i| outbound.encrypt(format!("message {i}").as_bytes()).unwrap())
        .collect()
}

#[test]
fn messages_round_trip_in_and_out_of_order() {
    let (mut outbound, mut inbound) = pair();
    assert_eq!(outbound.session_id(), inbound.session_id());
    let messages = encrypt_many(&mut outbound, 5);
    assert_eq!(outbound.message_index(), 5);
    for i in [0usize, 1, 4, 2, 3, 3] {
        let decrypted = inbound.decrypt(&messages[i]).unwrap();
        assert_eq!(decrypted.message_index, i as u32);
        assert_eq!(&*decrypted.plaintext, format!("message {i}").as_bytes());
    }
}

#[test]
fn session_key_taken_later_starts_at_that_index() {
    let mut outbound = GroupSession::new(NOON);
    let early = encrypt_many(&mut outbound, 3);
    let mut late = InboundGroupSession::new(&outbound.session_key());
    assert_eq!(late.first_known_index(), 3);
    let next = outbound.encrypt(b"after").unwrap();
    assert_eq!(&*late.decrypt(&next).unwrap().plaintext, b"after");
    assert!(late.decrypt(&early[0]).is_err());
}

#[test]
fn exports_start_where_asked() {
    let (mut outbound, inbound) = pair();
    let messages = encrypt_many(&mut outbound, 10);
    assert!(inbound.export_at(7).is_some());
    let mut imported = InboundGroupSession::import(&inbound.export_at(7).unwrap());
    assert!(!imported.is_verified());
    assert_eq!(imported.first_known_index(), 7);
    assert_eq!(imported.decrypt(&messages[9]).unwrap().message_index, 9);
    let again = imported.export_at_first_known_index();
    assert_eq!(again.to_base64(), inbound.export_at(7).unwrap().to_base64());
    assert!(imported.export_at(6).is_none());
}
