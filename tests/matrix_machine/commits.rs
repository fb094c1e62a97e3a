//! One commit per operation: a backend that counts commits and reads shows every machine
//! operation that changes state committing exactly once, and operations that change nothing
//! committing not at all. The same backend fails a chosen commit, for `write_faults.rs`.

use olmo::matrix::{MEGOLM_V1, RoomSettings};
use olmo::store::block_on;
use serde_json::json;

use super::harness::Homeserver;
use super::{Client, NOW, settings};

const ROOM: &str = "!commits:example.org";
const ALICE: &str = "@alice:example.org";
const BOB: &str = "@bob:example.org";

pub use super::common::counting_store::CountingStore;

/// Runs `op` and returns its result with the commits it made.
fn commits_of<T>(store: &CountingStore, op: impl FnOnce() -> T) -> (T, u64) {
    let before = store.commits();
    let value = op();
    (value, store.commits() - before)
}

#[test]
fn every_operation_that_changes_state_commits_exactly_once() {
    let mut hs = Homeserver::new();
    let alice_store = CountingStore::new();
    let bob_store = CountingStore::new();
    hs.join(ALICE, "ALICE");
    hs.join(BOB, "BOB");
    let mut counts = Vec::new();

    // Open of a new store: the account is created in one commit.
    let mut rng = super::common::rng::TestRng::new(21);
    let key = olmo::persist::StorageKey::from_bytes([21; 32]);
    let (machine, n) = commits_of(&bob_store, || {
        block_on(olmo::matrix::Machine::open(
            bob_store.clone(),
            &key,
            BOB,
            "BOB",
            &mut rng,
        ))
        .unwrap()
    });
    counts.push(("open (new store)", n));
    assert_eq!(n, 1);
    // Open of an existing store changes nothing.
    drop(machine);
    let (machine, n) = commits_of(&bob_store, || {
        block_on(olmo::matrix::Machine::open(
            bob_store.clone(),
            &key,
            BOB,
            "BOB",
            &mut rng,
        ))
        .unwrap()
    });
    counts.push(("open (existing store)", n));
    assert_eq!(n, 0);

    // outgoing_requests generating keys, then mark_request_as_sent for each request.
    let (requests, n) = commits_of(&bob_store, || {
        block_on(machine.outgoing_requests(&mut rng)).unwrap()
    });
    counts.push(("outgoing_requests (generates keys)", n));
    assert_eq!(n, 1);
    assert!(!requests.is_empty());
    let (again, n) = commits_of(&bob_store, || {
        block_on(machine.outgoing_requests(&mut rng)).unwrap()
    });
    counts.push(("outgoing_requests (nothing new)", n));
    assert_eq!(n, 0);
    assert_eq!(again.len(), requests.len());
    for request in requests {
        let (_, path) = request.endpoint();
        let response = hs.handle(BOB, "BOB", &path, &request.body);
        let (_, n) = commits_of(&bob_store, || {
            block_on(machine.mark_request_as_sent(&request.id, &response, &mut rng)).unwrap()
        });
        counts.push(("mark_request_as_sent", n));
        assert_eq!(n, 1);
    }
    let mut bob = Client {
        machine,
        rng,
        sent: 0,
    };
    bob.flush(&mut hs);

    // Alice shares a room key with Bob: one commit for share_room_key itself.
    let mut alice = Client::open(&mut hs, alice_store.clone(), ALICE, "ALICE", 22);
    block_on(
        alice
            .machine
            .update_tracked_users(&[ALICE, BOB], &mut alice.rng),
    )
    .unwrap();
    alice.flush(&mut hs);
    let claim = block_on(
        alice
            .machine
            .missing_sessions(&[ALICE, BOB], &mut alice.rng),
    )
    .unwrap()
    .unwrap();
    let (_, path) = claim.endpoint();
    let response = hs.handle(ALICE, "ALICE", &path, &claim.body);
    block_on(
        alice
            .machine
            .mark_request_as_sent(&claim.id, &response, &mut alice.rng),
    )
    .unwrap();
    let (_, n) = commits_of(&alice_store, || {
        block_on(alice.machine.share_room_key(
            ROOM,
            &[ALICE, BOB],
            &settings(),
            NOW,
            &mut alice.rng,
        ))
        .unwrap()
    });
    counts.push(("share_room_key", n));
    assert_eq!(n, 1);
    alice.flush(&mut hs);

    // Bob's sync with the to-device room key, and an empty sync.
    let sync = hs.sync(BOB, "BOB");
    assert!(!sync.to_device.is_empty());
    let changes = olmo::matrix::SyncChanges {
        to_device_events: &sync.to_device,
        one_time_key_count: Some(sync.one_time_key_count),
        ..Default::default()
    };
    let (_, n) = commits_of(&bob_store, || {
        block_on(bob.machine.receive_sync_changes(changes, &[], &mut bob.rng)).unwrap()
    });
    counts.push(("receive_sync_changes (to-device batch)", n));
    assert_eq!(n, 1);
    bob.flush(&mut hs);
    let (_, n) = commits_of(&bob_store, || {
        block_on(bob.machine.receive_sync_changes(
            olmo::matrix::SyncChanges::default(),
            &[],
            &mut bob.rng,
        ))
        .unwrap()
    });
    counts.push(("receive_sync_changes (empty)", n));
    assert_eq!(n, 0);

    // Encrypt, decrypt, decrypt the same event again.
    let (event, n) = commits_of(&alice_store, || alice.send(ROOM, "counted"));
    counts.push(("encrypt_room_event", n));
    assert_eq!(n, 1);
    let (read, n) = commits_of(&bob_store, || bob.read(ROOM, &event));
    read.unwrap();
    counts.push(("decrypt_room_event", n));
    assert_eq!(n, 1);
    let before = bob_store.snapshot();
    let (read, n) = commits_of(&bob_store, || bob.read(ROOM, &event));
    read.unwrap();
    counts.push(("decrypt_room_event (same event again)", n));
    assert_eq!(n, 0);
    assert!(before == bob_store.snapshot());

    // A batch of 100 events: one commit.
    // The default rotation (100 messages) would end the session inside the batch.
    let long = RoomSettings::from_encryption_content(
        &json!({"algorithm": MEGOLM_V1, "rotation_period_msgs": 1000}),
    )
    .unwrap();
    let events: Vec<_> = (0..100)
        .map(|i| {
            let content = json!({"msgtype": "m.text", "body": format!("batch {i}")});
            let sealed = block_on(alice.machine.encrypt_room_event(
                ROOM,
                "m.room.message",
                &content,
                &long,
                NOW,
                &mut alice.rng,
            ))
            .unwrap();
            json!({
                "type": "m.room.encrypted",
                "sender": ALICE,
                "event_id": format!("$batch-{i}"),
                "origin_server_ts": NOW.as_millis(),
                "content": sealed,
            })
        })
        .collect();
    let reads_before = bob_store.reads();
    let (results, n) = commits_of(&bob_store, || {
        block_on(
            bob.machine
                .decrypt_room_events(ROOM, &events, &[], &mut bob.rng),
        )
        .unwrap()
    });
    let reads = bob_store.reads() - reads_before;
    assert!(results.iter().all(Result::is_ok));
    counts.push(("decrypt_room_events (100 events)", n));
    assert_eq!(n, 1);
    // An unknown session's event: nothing to record.
    let mut unknown = event.clone();
    unknown["content"]["session_id"] = json!("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    let (read, n) = commits_of(&bob_store, || bob.read(ROOM, &unknown));
    assert!(read.is_err());
    counts.push(("decrypt_room_event (no session)", n));
    assert_eq!(n, 0);

    for (operation, n) in &counts {
        println!("{operation}: {n} commit(s)");
    }
    println!("decrypt_room_events (100 events): {reads} read call(s)");
}
