//! Room events of several rooms decrypted in one call (`decrypt_room_events_of_rooms`): one
//! commit for all, every signature verified in the same cross-key batches, yet each event
//! decrypted in its own room with its own outcome, as a one-room batch would.

use olmo::matrix::{RoomResults, UnableToDecrypt};
use olmo::store::block_on;
use serde_json::{Value, json};

use super::batch::forged;
use super::commits::CountingStore;
use super::harness::Homeserver;
use super::{Client, body};

const KITCHEN: &str = "!kitchen:example.org";
const GARDEN: &str = "!garden:example.org";
const ALICE: &str = "@alice:example.org";
const BOB: &str = "@bob:example.org";
const REPLAY_TABLE: &str = "matrix.replay";

/// Bob on a counting store, and `per_room` events from Alice in each of two rooms (enough in
/// all for a cross-key batch, over two sessions per room): event i of a room says "room i".
fn two_rooms(per_room: usize) -> (Client<CountingStore>, CountingStore, Vec<Value>, Vec<Value>) {
    let mut hs = Homeserver::new();
    let mut alice = Client::new(&mut hs, ALICE, "ALICE", 41);
    let store = CountingStore::new();
    let mut bob = Client::open(&mut hs, store.clone(), BOB, "BOB", 42);
    let mut kitchen = Vec::new();
    let mut garden = Vec::new();
    for i in 0..per_room {
        // A session is due to rotate after 100 messages: a new one every 90.
        if i % 90 == 0 {
            for room in [KITCHEN, GARDEN] {
                block_on(alice.machine.invalidate_room_key(room, &mut alice.rng)).unwrap();
            }
            alice.share(&mut hs, KITCHEN, &[ALICE, BOB]);
            alice.share(&mut hs, GARDEN, &[ALICE, BOB]);
            bob.sync(&mut hs);
        }
        kitchen.push(alice.send(KITCHEN, &format!("kitchen {i}")));
        garden.push(alice.send(GARDEN, &format!("garden {i}")));
    }
    (bob, store, kitchen, garden)
}

fn decrypt_rooms(
    bob: &mut Client<CountingStore>,
    rooms: &[(&str, &[Value])],
) -> Result<Vec<RoomResults>, UnableToDecrypt> {
    block_on(
        bob.machine
            .decrypt_room_events_of_rooms(rooms, &[], &mut bob.rng),
    )
}

#[test]
fn two_rooms_decrypt_in_one_commit_as_each_room_alone() {
    let (mut bob, store, kitchen, garden) = two_rooms(150);
    let commits = store.commits();
    let results = decrypt_rooms(&mut bob, &[(KITCHEN, &kitchen), (GARDEN, &garden)]).unwrap();
    assert_eq!(store.commits(), commits + 1, "one commit for both rooms");
    assert_eq!(results.len(), 2);
    for ((room, events), results) in [(KITCHEN, &kitchen), (GARDEN, &garden)]
        .into_iter()
        .zip(&results)
    {
        assert_eq!(results.len(), events.len());
        let name = if room == KITCHEN { "kitchen" } else { "garden" };
        for (i, (result, event)) in results.iter().zip(events.iter()).enumerate() {
            let read = result.as_ref().unwrap();
            assert_eq!(body(read), format!("{name} {i}"));
            // The same event alone, after the batch's commit: the same answer, not a replay.
            assert_eq!(read, &bob.read(room, event).unwrap());
        }
    }
    assert_eq!(store.count(REPLAY_TABLE), 300);
}

#[test]
fn bad_events_fail_alone_and_an_event_under_another_room_is_refused() {
    let (mut bob, store, kitchen, garden) = two_rooms(150);
    let mut kitchen_batch = kitchen.clone();
    kitchen_batch[7] = forged(&kitchen[7]);
    // A garden event handed in as the kitchen's: the kitchen has no such session.
    kitchen_batch[8] = garden[8].clone();
    // Another event on a kitchen event's (session, index), in the other room's list.
    let mut replayed = kitchen[9].clone();
    replayed["event_id"] = json!("$another-event");
    let mut garden_batch = garden.clone();
    garden_batch[10] = replayed;
    garden_batch[11] = json!({"type": "m.room.encrypted", "content": {}});
    let results = decrypt_rooms(
        &mut bob,
        &[(KITCHEN, &kitchen_batch), (GARDEN, &garden_batch)],
    )
    .unwrap();
    let (kitchen_results, garden_results) = (&results[0], &results[1]);
    assert_eq!(kitchen_results[7], Err(UnableToDecrypt::BadSignature));
    assert!(matches!(
        kitchen_results[8],
        Err(UnableToDecrypt::NoSession { .. })
    ));
    // The garden has no session of the kitchen's either: refused before the replay record.
    assert!(matches!(
        garden_results[10],
        Err(UnableToDecrypt::NoSession { .. })
    ));
    assert!(matches!(
        garden_results[11],
        Err(UnableToDecrypt::Malformed(_))
    ));
    let good = |results: &RoomResults, bad: &[usize]| {
        results
            .iter()
            .enumerate()
            .all(|(i, r)| bad.contains(&i) != r.is_ok())
    };
    assert!(good(kitchen_results, &[7, 8]));
    assert!(good(garden_results, &[10, 11]));
    assert_eq!(store.count(REPLAY_TABLE), 300 - 4);

    // A replay in the right room, in a later call, meets the committed record.
    let mut replayed = kitchen[9].clone();
    replayed["event_id"] = json!("$another-event");
    let results =
        decrypt_rooms(&mut bob, &[(GARDEN, &garden[..1]), (KITCHEN, &[replayed])]).unwrap();
    assert!(results[0][0].is_ok());
    assert!(matches!(
        results[1][0],
        Err(UnableToDecrypt::Replay { index: 9, .. })
    ));
}

#[test]
fn a_failed_commit_records_nothing_of_any_room_and_the_retry_completes() {
    let (mut bob, store, kitchen, garden) = two_rooms(150);
    let before = store.snapshot();
    store.fail_commit(store.commits() + 1);
    let failed = decrypt_rooms(&mut bob, &[(KITCHEN, &kitchen), (GARDEN, &garden)]);
    assert!(matches!(failed, Err(UnableToDecrypt::Machine(_))));
    assert_eq!(store.snapshot(), before, "a failed call wrote");
    let results = decrypt_rooms(&mut bob, &[(KITCHEN, &kitchen), (GARDEN, &garden)]).unwrap();
    assert!(results.iter().flatten().all(Result::is_ok));
    assert_eq!(store.count(REPLAY_TABLE), 300);
}

#[test]
fn more_than_a_batch_in_all_is_refused_before_any_work() {
    let (mut bob, store, kitchen, _) = two_rooms(1);
    let many = vec![kitchen[0].clone(); 5_001];
    let commits = store.commits();
    assert_eq!(
        decrypt_rooms(&mut bob, &[(KITCHEN, &many), (GARDEN, &many)]),
        Err(UnableToDecrypt::Malformed("batch too large"))
    );
    assert_eq!(store.commits(), commits);
}
