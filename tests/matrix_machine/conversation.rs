//! Two and three olmo devices in a room: keys shared over Olm, messages both ways, replays,
//! restarts, rotation when a member leaves, and a new device getting the key.

use olmo::matrix::{Machine, ToDeviceOutcome, UnableToDecrypt};
use olmo::persist::StorageKey;
use olmo::store::{Backend, KeyRange, MemoryStore, block_on};

use super::harness::Homeserver;
use super::{Client, body};

const ROOM: &str = "!room:example.org";

fn room_keys_received(outcomes: &[ToDeviceOutcome]) -> usize {
    outcomes
        .iter()
        .filter(|o| matches!(o, ToDeviceOutcome::Decrypted(e) if e.event_type == "m.room_key"))
        .count()
}

#[test]
fn two_devices_exchange_room_messages_both_ways() {
    let mut hs = Homeserver::new();
    let mut alice = Client::new(&mut hs, "@alice:example.org", "ALICE", 1);
    let mut bob = Client::new(&mut hs, "@bob:example.org", "BOB", 2);
    let members = ["@alice:example.org", "@bob:example.org"];

    let share = alice.share(&mut hs, ROOM, &members);
    assert!(
        share.without_session.is_empty(),
        "{:?}",
        share.without_session
    );
    assert_eq!(room_keys_received(&bob.sync(&mut hs)), 1);
    let event = alice.send(ROOM, "Hello Bob");
    let read = bob.read(ROOM, &event).unwrap();
    assert_eq!(body(&read), "Hello Bob");
    assert_eq!(read.sender, "@alice:example.org");
    assert_eq!(read.message_index, 0);
    assert!(!read.forwarded);

    // Bob answers on his own session; Alice reads it, and her own message too.
    bob.share(&mut hs, ROOM, &members);
    assert_eq!(room_keys_received(&alice.sync(&mut hs)), 1);
    let reply = bob.send(ROOM, "Hi Alice");
    assert_eq!(body(&alice.read(ROOM, &reply).unwrap()), "Hi Alice");
    assert_eq!(body(&alice.read(ROOM, &event).unwrap()), "Hello Bob");
}

#[test]
fn the_same_event_again_is_not_a_replay_but_another_event_on_its_index_is() {
    let mut hs = Homeserver::new();
    let mut alice = Client::new(&mut hs, "@alice:example.org", "ALICE", 3);
    let store = MemoryStore::new();
    let mut bob = Client::open(&mut hs, store.clone(), "@bob:example.org", "BOB", 4);
    alice.share(&mut hs, ROOM, &["@alice:example.org", "@bob:example.org"]);
    bob.sync(&mut hs);
    let event = alice.send(ROOM, "once");
    bob.read(ROOM, &event).unwrap();
    bob.read(ROOM, &event).unwrap();

    // After a restart from the same store: still not a replay.
    let key = StorageKey::from_bytes([4; 32]);
    let reopened = block_on(Machine::open(
        store,
        &key,
        "@bob:example.org",
        "BOB",
        &mut bob.rng,
    ))
    .unwrap();
    bob.machine = reopened;
    assert_eq!(body(&bob.read(ROOM, &event).unwrap()), "once");

    let mut forged = event.clone();
    forged["event_id"] = "$another".into();
    assert!(matches!(
        bob.read(ROOM, &forged),
        Err(UnableToDecrypt::Replay { index: 0, .. })
    ));
}

/// The version of the one inbound session record in `store`: how often it was written.
fn inbound_version(store: &MemoryStore) -> u64 {
    let records =
        block_on(store.scan("matrix.inbound_group_sessions", &KeyRange::all(), 10)).unwrap();
    assert_eq!(records.len(), 1);
    records[0].1.version
}

#[test]
fn sequential_events_write_the_session_back_only_every_few_steps_and_survive_a_restart() {
    let mut hs = Homeserver::new();
    let mut alice = Client::new(&mut hs, "@alice:example.org", "ALICE", 5);
    let store = MemoryStore::new();
    let mut bob = Client::open(&mut hs, store.clone(), "@bob:example.org", "BOB", 6);
    alice.share(&mut hs, ROOM, &["@alice:example.org", "@bob:example.org"]);
    bob.sync(&mut hs);
    let events: Vec<_> = (0..10)
        .map(|i| alice.send(ROOM, &format!("m{i}")))
        .collect();
    let written = inbound_version(&store);
    // Advances of fewer than 4 steps write only the replay entry; the 4th writes the ratchet.
    for event in &events[..4] {
        bob.read(ROOM, event).unwrap();
    }
    assert_eq!(inbound_version(&store), written);
    for event in &events[4..8] {
        bob.read(ROOM, event).unwrap();
    }
    assert_eq!(inbound_version(&store), written + 1);

    // After a restart the stored ratchet (index 4) serves an event read before from it, an
    // earlier one behind it (from the initial ratchet) and the next one.
    let key = StorageKey::from_bytes([6; 32]);
    bob.machine = block_on(Machine::open(
        store.clone(),
        &key,
        "@bob:example.org",
        "BOB",
        &mut bob.rng,
    ))
    .unwrap();
    assert_eq!(body(&bob.read(ROOM, &events[7]).unwrap()), "m7");
    assert_eq!(body(&bob.read(ROOM, &events[1]).unwrap()), "m1");
    assert_eq!(body(&bob.read(ROOM, &events[8]).unwrap()), "m8");
    for (index, event) in [(2, &events[2]), (6, &events[6])] {
        let mut forged = event.clone();
        forged["event_id"] = "$another".into();
        assert!(matches!(
            bob.read(ROOM, &forged),
            Err(UnableToDecrypt::Replay { index: i, .. }) if i == index
        ));
    }
    assert_eq!(body(&bob.read(ROOM, &events[9]).unwrap()), "m9");
}

#[test]
fn a_member_leaving_rotates_the_room_key_and_a_new_device_gets_it() {
    let mut hs = Homeserver::new();
    let mut alice = Client::new(&mut hs, "@alice:example.org", "ALICE", 5);
    let mut bob = Client::new(&mut hs, "@bob:example.org", "BOB", 6);
    let mut carol = Client::new(&mut hs, "@carol:example.org", "CAROL", 7);
    let everyone = [
        "@alice:example.org",
        "@bob:example.org",
        "@carol:example.org",
    ];
    alice.share(&mut hs, ROOM, &everyone);
    bob.sync(&mut hs);
    carol.sync(&mut hs);
    let before = alice.send(ROOM, "to all three");
    assert!(carol.read(ROOM, &before).is_ok());

    // Carol leaves: the next share makes a new session she never gets.
    alice.share(&mut hs, ROOM, &everyone[..2]);
    bob.sync(&mut hs);
    assert_eq!(room_keys_received(&carol.sync(&mut hs)), 0);
    let after = alice.send(ROOM, "without carol");
    assert_ne!(
        after["content"]["session_id"],
        before["content"]["session_id"]
    );
    assert_eq!(body(&bob.read(ROOM, &after).unwrap()), "without carol");
    assert!(matches!(
        carol.read(ROOM, &after),
        Err(UnableToDecrypt::NoSession { .. })
    ));

    // Bob logs in on a second device: Alice learns of it from the device list and shares the
    // same session with it, from the current index.
    let mut bob2 = Client::new(&mut hs, "@bob:example.org", "BOB2", 8);
    alice.sync(&mut hs);
    alice.share(&mut hs, ROOM, &everyone[..2]);
    assert_eq!(room_keys_received(&bob2.sync(&mut hs)), 1);
    let later = alice.send(ROOM, "bob has two devices");
    assert_eq!(
        later["content"]["session_id"],
        after["content"]["session_id"]
    );
    assert_eq!(
        body(&bob2.read(ROOM, &later).unwrap()),
        "bob has two devices"
    );
    assert!(matches!(
        bob2.read(ROOM, &after),
        Err(UnableToDecrypt::UnknownIndex { .. })
    ));
}

#[test]
fn a_repeated_to_device_delivery_is_recognised_and_one_time_keys_are_topped_up() {
    let mut hs = Homeserver::new();
    let mut alice = Client::new(&mut hs, "@alice:example.org", "ALICE", 9);
    let mut bob = Client::new(&mut hs, "@bob:example.org", "BOB", 10);
    alice.share(&mut hs, ROOM, &["@alice:example.org", "@bob:example.org"]);
    let sync = hs.sync("@bob:example.org", "BOB");
    assert_eq!(sync.to_device.len(), 1);
    let changes = olmo::matrix::SyncChanges {
        to_device_events: &sync.to_device,
        one_time_key_count: Some(sync.one_time_key_count),
        ..Default::default()
    };
    let first = block_on(bob.machine.receive_sync_changes(changes, &[], &mut bob.rng)).unwrap();
    assert!(matches!(first[0], ToDeviceOutcome::Decrypted(_)));
    let again = block_on(bob.machine.receive_sync_changes(changes, &[], &mut bob.rng)).unwrap();
    assert_eq!(again, vec![ToDeviceOutcome::Repeated]);
    // Alice claimed one of Bob's 50 keys: his next requests upload one more.
    assert_eq!(sync.one_time_key_count, 49);
    bob.flush(&mut hs);
    assert_eq!(hs.sync("@bob:example.org", "BOB").one_time_key_count, 50);
}

#[test]
fn room_keys_move_through_a_key_export_file_in_one_commit() {
    let mut hs = Homeserver::new();
    let mut alice = Client::new(&mut hs, "@alice:example.org", "ALICE", 11);
    let mut bob = Client::new(&mut hs, "@bob:example.org", "BOB", 12);
    alice.share(&mut hs, ROOM, &["@alice:example.org", "@bob:example.org"]);
    bob.sync(&mut hs);
    let events: Vec<_> = (0..3)
        .map(|i| alice.send(ROOM, &format!("message {i}")))
        .collect();
    for event in &events {
        bob.read(ROOM, event).unwrap();
    }
    let file =
        block_on(
            bob.machine
                .export_room_keys(Some(ROOM), "passphrase", 1_000, &mut bob.rng),
        )
        .unwrap();
    let none = block_on(bob.machine.export_room_keys(
        Some("!other:example.org"),
        "p",
        1_000,
        &mut bob.rng,
    ))
    .unwrap();
    assert!(
        olmo::megolm::decrypt_key_export(&none, "p")
            .unwrap()
            .is_empty()
    );

    let mut fresh = Client::new(&mut hs, "@bob:example.org", "BOB2", 13);
    let mut calls = Vec::new();
    let result = block_on(fresh.machine.import_room_keys(
        &file,
        "passphrase",
        &mut |done, total| calls.push((done, total)),
        &mut fresh.rng,
    ))
    .unwrap();
    assert_eq!((result.imported, result.skipped, result.total), (1, 0, 1));
    assert_eq!(calls.last(), Some(&(1, 1)));
    for (i, event) in events.iter().enumerate() {
        let read = fresh.read(ROOM, event).unwrap();
        assert_eq!(body(&read), format!("message {i}"));
        assert!(read.forwarded && !read.verified);
    }
    let again = block_on(fresh.machine.import_room_keys(
        &file,
        "passphrase",
        &mut |_, _| {},
        &mut fresh.rng,
    ))
    .unwrap();
    assert_eq!((again.imported, again.skipped), (0, 1));
    let wrong = block_on(fresh.machine.import_room_keys(
        &file,
        "wrong",
        &mut |_, _| {},
        &mut fresh.rng,
    ));
    assert!(wrong.is_err());
}

#[test]
fn a_record_that_does_not_open_is_named_and_can_be_dropped() {
    use olmo::matrix::MachineError;
    use olmo::store::{Backend, Batch, Expect, StoreError};

    let mut hs = Homeserver::new();
    let mut alice = Client::new(&mut hs, "@alice:example.org", "ALICE", 14);
    let store = MemoryStore::new();
    let mut bob = Client::open(&mut hs, store.clone(), "@bob:example.org", "BOB", 15);
    alice.share(&mut hs, ROOM, &["@alice:example.org", "@bob:example.org"]);
    bob.sync(&mut hs);
    let event = alice.send(ROOM, "before the damage");

    // Someone with write access to the database damages Bob's copy of the room key.
    let table = "matrix.inbound_group_sessions";
    let (key, record) = store
        .snapshot()
        .into_iter()
        .find(|(t, _, _)| t == table)
        .map(|(_, k, r)| (k, r))
        .unwrap();
    let mut damaged = record.value.clone();
    *damaged.last_mut().unwrap() ^= 1;
    let mut batch = Batch::new();
    batch.put(table, &key, Expect::Version(record.version), damaged);
    block_on(store.commit(batch)).unwrap();

    let Err(UnableToDecrypt::Machine(MachineError::Store(StoreError::Corrupt {
        table: named,
        key: hex,
    }))) = bob.read(ROOM, &event)
    else {
        panic!("a damaged record is reported by table and key");
    };
    assert_eq!(named, table);
    block_on(bob.machine.drop_record(&named, &hex, &mut bob.rng)).unwrap();
    assert!(matches!(
        bob.read(ROOM, &event),
        Err(UnableToDecrypt::NoSession { .. })
    ));
}

#[test]
fn a_key_forwarded_between_our_own_devices_decrypts_but_is_not_verified() {
    let mut hs = Homeserver::new();
    let mut alice = Client::new(&mut hs, "@alice:example.org", "ALICE", 16);
    let mut bob = Client::new(&mut hs, "@bob:example.org", "BOB", 17);
    alice.share(&mut hs, ROOM, &["@alice:example.org", "@bob:example.org"]);
    bob.sync(&mut hs);
    let event = alice.send(ROOM, "for bob's devices");
    let session_id = event["content"]["session_id"].as_str().unwrap().to_owned();

    // Bob's second device appears after the key was shared; his first forwards it.
    let mut bob2 = Client::new(&mut hs, "@bob:example.org", "BOB2", 18);
    bob.share(&mut hs, "!bobs-own:example.org", &["@bob:example.org"]);
    let request = block_on(
        bob.machine
            .forward_room_key(ROOM, &session_id, "BOB2", &mut bob.rng),
    )
    .unwrap()
    .expect("a session with BOB2 and the room key");
    let (_, path) = request.endpoint();
    let response = hs.handle("@bob:example.org", "BOB", &path, &request.body);
    block_on(
        bob.machine
            .mark_request_as_sent(&request.id, &response, &mut bob.rng),
    )
    .unwrap();
    let received = bob2.sync(&mut hs);
    assert!(received.iter().any(
        |o| matches!(o, ToDeviceOutcome::Decrypted(e) if e.event_type == "m.forwarded_room_key")
    ));
    let read = bob2.read(ROOM, &event).unwrap();
    assert_eq!(body(&read), "for bob's devices");
    assert!(read.forwarded && !read.verified);
}

/// A machine on an ephemeral memory store keeps its records framed in the clear (nothing at
/// rest to protect); on any other store, the memory store made by `new` included, every record
/// is sealed, and a record framed in the clear put there does not open.
#[test]
fn only_an_ephemeral_store_keeps_records_unsealed() {
    use olmo::matrix::MachineError;
    use olmo::store::{Batch, Expect, StoreError};

    let mut hs = Homeserver::new();
    let mut alice = Client::new(&mut hs, "@alice:example.org", "ALICE", 18);
    let plain = MemoryStore::ephemeral();
    let sealed = MemoryStore::new();
    let mut bob = Client::open(&mut hs, plain.clone(), "@bob:example.org", "BOB", 19);
    let mut carol = Client::open(&mut hs, sealed.clone(), "@carol:example.org", "CAROL", 20);
    let people = [
        "@alice:example.org",
        "@bob:example.org",
        "@carol:example.org",
    ];
    alice.share(&mut hs, ROOM, &people);
    bob.sync(&mut hs);
    carol.sync(&mut hs);
    let event = alice.send(ROOM, "to both stores");
    assert_eq!(body(&bob.read(ROOM, &event).unwrap()), "to both stores");
    assert_eq!(body(&carol.read(ROOM, &event).unwrap()), "to both stores");
    assert!(plain.is_ephemeral() && !sealed.is_ephemeral());

    let table = "matrix.inbound_group_sessions";
    let records = |store: &MemoryStore| -> Vec<_> {
        store
            .snapshot()
            .into_iter()
            .filter(|(t, _, _)| t == table)
            .map(|(_, k, r)| (k, r))
            .collect()
    };
    let (bob_records, carol_records) = (records(&plain), records(&sealed));
    assert_eq!((bob_records.len(), carol_records.len()), (1, 1));
    assert!(plain.snapshot().iter().all(|(_, _, r)| r.value[0] == 0));
    assert!(sealed.snapshot().iter().all(|(_, _, r)| r.value[0] == 1));
    // The same session in the clear, or sealed: not one 16-byte run of the first is in the
    // second.
    let clear = &bob_records[0].1.value;
    assert!(
        clear
            .windows(16)
            .all(|run| !carol_records[0].1.value.windows(16).any(|w| w == run))
    );

    // Bob's record in the clear, put in Carol's sealed store, is refused as corrupt.
    let (key, record) = &carol_records[0];
    let mut batch = Batch::new();
    batch.put(table, key, Expect::Version(record.version), clear.clone());
    block_on(sealed.commit(batch)).unwrap();
    assert!(matches!(
        carol.read(ROOM, &event),
        Err(UnableToDecrypt::Machine(MachineError::Store(
            StoreError::Corrupt { .. }
        )))
    ));
}
