//! The client against a real homeserver: a throw-away Synapse (tests/peers/synapse_server.py),
//! matrix-nio persons (tests/peers/nio_person.py) and an olmo client on SQLite, in one
//! encrypted room — messages both ways, a restart of olmo from its store, a second device of a
//! person, and a member leaving.
//!
//! Needs `.venv-synapse` (`.ci/setup-synapse.sh`) and `.venv` (`.ci/setup-python.sh`). Without
//! `.venv-synapse` the test says it skipped, unless `CI` is set: then it fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod processes;

use std::time::{Duration, Instant};

use olmo::megolm::decrypt_key_export;
use olmo::persist::StorageKey;
use olmo_matrix_client::{Client, EventKind, Session, TimelineEvent, login};
use processes::{Person, Synapse};
use serde_json::{Value, json};

/// Syncs olmo until `body` arrives in `room`, decrypted; returns it and every event seen.
fn olmo_wait_for(olmo: &mut Client, room: &str, body: &str) -> (TimelineEvent, Vec<TimelineEvent>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        for event in olmo.sync_once(1_000).unwrap() {
            let hit = event.room_id == room && event.body() == Some(body);
            seen.push(event.clone());
            if hit {
                assert!(matches!(event.kind, EventKind::Decrypted(_)), "{event:?}");
                return (event, seen);
            }
        }
    }
    panic!("olmo never decrypted {body:?}; saw {seen:?}");
}

/// Syncs olmo until `done` holds.
fn olmo_sync_until(olmo: &mut Client, what: &str, mut done: impl FnMut(&mut Client) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done(olmo) {
        assert!(Instant::now() < deadline, "olmo never saw: {what}");
        olmo.sync_once(500).unwrap();
    }
}

fn session_of(message: &Value) -> String {
    message["session_id"].as_str().unwrap().to_owned()
}

/// Logs the time of each step, so a slow one shows in the test's output.
struct Clock(Instant, Instant);

impl Clock {
    fn step(&mut self, name: &str) {
        let now = Instant::now();
        eprintln!(
            "{:>6.1} s  {:>5.1} s  {name}",
            now.duration_since(self.0).as_secs_f64(),
            now.duration_since(self.1).as_secs_f64()
        );
        self.1 = now;
    }
}

#[test]
fn olmo_client_talks_with_nio_persons_on_synapse() {
    let mut clock = Clock(Instant::now(), Instant::now());
    let Some(synapse) = Synapse::start_or_skip(&["alice", "bob", "olmo"]) else {
        return;
    };
    clock.step("synapse ready");

    let mut alice = Person::login(&synapse, "alice", "alice phone");
    let mut bob = Person::login(&synapse, "bob", "bob laptop");
    let session: Session =
        login(&synapse.base_url, "olmo", &synapse.password("olmo"), "olmo").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("olmo.sqlite");
    let key = StorageKey::from_bytes(rand::random());
    let mut olmo = Client::open(&session, &db, &key).unwrap();
    olmo.sync_once(0).unwrap();
    clock.step("two nio persons and olmo logged in");

    // An encrypted room of alice's, with bob and olmo. Its id has no server part (room
    // version 12): olmo must take it as it comes.
    let room = alice.peer.call_str(
        json!({"op": "create_room", "invite": [session.user_id, bob.user_id],
               "encrypted": true, "name": "olmo"}),
        "room_id",
    );
    olmo.join(&room).unwrap();
    bob.peer.call(json!({"op": "join", "room_id": room}));
    olmo.sync_once(0).unwrap();
    let members = &olmo.room(&room).unwrap().members;
    assert!(members.contains(&bob.user_id) && members.contains(&alice.user_id));
    assert!(olmo.room(&room).unwrap().settings.is_some());
    clock.step("encrypted room: alice, bob, olmo");

    olmo.send_text(&room, "hello from olmo").unwrap();
    let first = alice.wait_for(&room, "hello from olmo");
    assert_eq!(first["sender"], json!(session.user_id));
    bob.wait_for(&room, "hello from olmo");
    alice.send(&room, "hello olmo");
    let (read, _) = olmo_wait_for(&mut olmo, &room, "hello olmo");
    assert_eq!(read.sender, alice.user_id);
    clock.step("olmo -> alice, bob; alice -> olmo");

    // A restart: the same store, device and token; the sync resumes where it stopped.
    let keys = olmo.machine().identity_keys();
    let since = olmo.since().unwrap().to_owned();
    drop(olmo);
    let mut olmo = Client::open(&session, &db, &key).unwrap();
    assert_eq!(olmo.machine().identity_keys(), keys);
    assert_eq!(olmo.since(), Some(since.as_str()));
    let history = olmo.history(&room, 50).unwrap();
    for body in ["hello from olmo", "hello olmo"] {
        let event = history.iter().find(|e| e.body() == Some(body));
        assert!(event.is_some(), "{body:?} no longer decrypts: {history:?}");
    }
    let undecryptable: Vec<_> = history
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Undecryptable(_)))
        .collect();
    assert!(undecryptable.is_empty(), "{undecryptable:?}");
    olmo.send_text(&room, "olmo after restart").unwrap();
    let after = alice.wait_for(&room, "olmo after restart");
    assert_eq!(
        session_of(&after),
        session_of(&first),
        "the outbound session survives"
    );
    alice.send(&room, "alice after restart");
    let (_, seen) = olmo_wait_for(&mut olmo, &room, "alice after restart");
    let replayed: Vec<_> = seen
        .iter()
        .filter(|e| matches!(e.body(), Some("hello olmo" | "hello from olmo")))
        .collect();
    assert!(replayed.is_empty(), "the sync started over: {replayed:?}");
    clock.step("olmo restarted from SQLite: history decrypts, both ways after");

    // A second device of alice: olmo hears of it, shares the key with it, and reads it.
    let mut tablet = Person::login(&synapse, "alice", "alice tablet");
    let alice_id = alice.user_id.clone();
    olmo_sync_until(&mut olmo, "alice's new device", |olmo| {
        let devices = olmo::store::block_on(olmo.machine().devices(&alice_id)).unwrap();
        devices.iter().any(|d| d.device_id == tablet.device_id)
    });
    olmo.send_text(&room, "olmo to both of alice's devices")
        .unwrap();
    tablet.wait_for(&room, "olmo to both of alice's devices");
    let shared = alice.wait_for(&room, "olmo to both of alice's devices");
    tablet.send(&room, "alice from her tablet");
    let (read, _) = olmo_wait_for(&mut olmo, &room, "alice from her tablet");
    assert_eq!(read.sender, alice.user_id);
    clock.step("alice's new device reads olmo and is read");

    // Bob leaves: olmo's next message is in a new session, whose key bob's device never got.
    bob.peer.call(json!({"op": "leave", "room_id": room}));
    let bob_id = bob.user_id.clone();
    let room_id = room.clone();
    olmo_sync_until(&mut olmo, "bob leaving", |olmo| {
        !olmo.room(&room_id).unwrap().members.contains(&bob_id)
    });
    olmo.send_text(&room, "olmo after bob left").unwrap();
    let rotated = alice.wait_for(&room, "olmo after bob left");
    assert_ne!(session_of(&rotated), session_of(&shared), "no rotation");
    tablet.wait_for(&room, "olmo after bob left");
    alice.send(&room, "alice after bob left");
    olmo_wait_for(&mut olmo, &room, "alice after bob left");
    let export = dir.path().join("bob.keys");
    bob.peer
        .call(json!({"op": "export_keys", "path": export, "passphrase": "bob"}));
    let text = std::fs::read_to_string(&export).unwrap();
    let bob_sessions: Vec<String> = decrypt_key_export(&text, "bob")
        .unwrap()
        .into_iter()
        .map(|k| k.session_id)
        .collect();
    assert!(
        bob_sessions.contains(&session_of(&shared)),
        "bob had the old key"
    );
    assert!(
        !bob_sessions.contains(&session_of(&rotated)),
        "bob got the new key"
    );
    clock.step("bob left: new session, not his");
}
