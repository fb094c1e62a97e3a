//! Room events decrypted as one batch: signatures verified a session's batch at a time, yet
//! every event keeps its own outcome and the store records only what decrypted.

use olmo::matrix::UnableToDecrypt;
use olmo::store::block_on;
use serde_json::{Value, json};

use super::harness::Homeserver;
use super::{Client, body};

const ROOM: &str = "!room:example.org";
const ALICE: &str = "@alice:example.org";
const BOB: &str = "@bob:example.org";
const CAROL: &str = "@carol:example.org";
const REPLAY_TABLE: &str = "matrix.replay";

/// Bob, and events from three sessions (Alice's two, Carol's one) interleaved: event `i`
/// says "message i".
fn three_sessions(hs: &mut Homeserver, per_session: usize) -> (Client, Vec<Value>) {
    let members = [ALICE, BOB, CAROL];
    let mut alice = Client::new(hs, ALICE, "ALICE", 31);
    let mut bob = Client::new(hs, BOB, "BOB", 32);
    let mut carol = Client::new(hs, CAROL, "CAROL", 33);
    let mut alice_first = Vec::new();
    let mut alice_second = Vec::new();
    let mut carol_only = Vec::new();
    alice.share(hs, ROOM, &members);
    carol.share(hs, ROOM, &members);
    bob.sync(hs);
    for _ in 0..per_session {
        alice_first.push(alice.send(ROOM, ""));
        carol_only.push(carol.send(ROOM, ""));
    }
    block_on(alice.machine.invalidate_room_key(ROOM, &mut alice.rng)).unwrap();
    alice.share(hs, ROOM, &members);
    bob.sync(hs);
    for _ in 0..per_session {
        alice_second.push(alice.send(ROOM, ""));
    }
    // Interleaved: event 3i is Alice's first session at index i, 3i + 1 Carol's, 3i + 2 Alice's second.
    let mut events = Vec::new();
    for i in 0..per_session {
        events.push(alice_first[i].clone());
        events.push(carol_only[i].clone());
        events.push(alice_second[i].clone());
    }
    (bob, events)
}

fn decrypt_batch(
    client: &mut Client,
    events: &[Value],
) -> Vec<Result<olmo::matrix::DecryptedRoomEvent, UnableToDecrypt>> {
    block_on(
        client
            .machine
            .decrypt_room_events(ROOM, events, &[], &mut client.rng),
    )
    .unwrap()
}

fn replay_records(client: &Client) -> usize {
    client
        .machine
        .backend()
        .snapshot()
        .iter()
        .filter(|(table, _, _)| table == REPLAY_TABLE)
        .count()
}

/// The event with one bit of its Megolm signature (the ciphertext's last 64 bytes) flipped.
pub(super) fn forged(event: &Value) -> Value {
    let ciphertext = event["content"]["ciphertext"].as_str().unwrap();
    let mut bytes = olmo::crypto::base64::decode(ciphertext).unwrap();
    let at = bytes.len() - 20;
    bytes[at] ^= 0x04;
    let mut event = event.clone();
    event["content"]["ciphertext"] = json!(olmo::crypto::base64::encode(&bytes));
    event
}

#[test]
fn a_forged_signature_in_a_batch_fails_alone_and_records_nothing() {
    let mut hs = Homeserver::new();
    let (mut bob, events) = three_sessions(&mut hs, 60);
    let bad = 100;
    let mut batch = events.clone();
    batch[bad] = forged(&events[bad]);
    let results = decrypt_batch(&mut bob, &batch);
    assert_eq!(results.len(), batch.len());
    for (i, result) in results.iter().enumerate() {
        if i == bad {
            assert_eq!(result, &Err(UnableToDecrypt::BadSignature));
        } else {
            let read = result.as_ref().unwrap();
            assert_eq!(read.sender, if i % 3 == 1 { CAROL } else { ALICE });
            assert_eq!(read.message_index as usize, i / 3);
        }
    }
    // Every event but the forged one is in the replay record.
    assert_eq!(replay_records(&bob), batch.len() - 1);
    // The authentic event on the forged one's (session, index) is not taken for a replay.
    let read = decrypt_batch(&mut bob, &events[bad..=bad]).pop().unwrap();
    assert_eq!(read.unwrap().message_index as usize, bad / 3);
    assert_eq!(replay_records(&bob), batch.len());
}

#[test]
fn replays_inside_one_batch_are_caught_and_the_same_event_twice_is_not_one() {
    let mut hs = Homeserver::new();
    let (mut bob, events) = three_sessions(&mut hs, 5);
    let mut replayed = events[4].clone();
    replayed["event_id"] = json!("$another-event");
    // The original, itself again, then another event on its (session, index), all in one batch
    // and before the original's first commit.
    let batch = vec![
        events[4].clone(),
        events[0].clone(),
        events[4].clone(),
        replayed.clone(),
        events[1].clone(),
    ];
    let results = decrypt_batch(&mut bob, &batch);
    assert!(results[0].is_ok() && results[1].is_ok() && results[4].is_ok());
    assert_eq!(results[2], results[0]);
    assert_eq!(
        results[3],
        Err(UnableToDecrypt::Replay {
            index: 1,
            first_event_id: events[4]["event_id"].as_str().unwrap().to_owned()
        })
    );
    // The replay first in a batch still meets the committed record.
    let results = decrypt_batch(&mut bob, &[replayed, events[4].clone()]);
    assert!(matches!(results[0], Err(UnableToDecrypt::Replay { .. })));
    assert!(results[1].is_ok());
    assert_eq!(replay_records(&bob), 3);
}

#[test]
fn a_batch_decrypts_like_single_events_whatever_the_order() {
    let mut hs = Homeserver::new();
    let (mut bob, events) = three_sessions(&mut hs, 20);
    let mut reversed = events.clone();
    reversed.reverse();
    let results = decrypt_batch(&mut bob, &reversed);
    for (result, event) in results.iter().zip(&reversed) {
        let single = bob.read(ROOM, event).unwrap();
        assert_eq!(result.as_ref().unwrap(), &single);
        assert_eq!(body(&single), "");
    }
}
