//! The Matrix machine on SQLite under real process faults: Alice's device, in a child process,
//! encrypts room events in a loop and is killed with SIGKILL at random points; two processes
//! encrypt on one device's database at once. Across every run no Megolm (session, index) is
//! handed out twice, and Bob (in the parent) decrypts every ciphertext a child printed.
//!
//! The parent does the one-time setup (keys, the Olm session, the room key shared with Bob)
//! against the harness homeserver, so the children need no server: they only encrypt, and print
//! each ciphertext after `encrypt_room_event` returned it. Each test re-runs this test binary as
//! its child, as `faults.rs` does: `MACHINE_CHILD` names the role and `--exact` selects the
//! child's function, which does nothing when run without it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../../test-support/child.rs"]
mod child;

#[allow(dead_code)]
#[path = "../../test-support/backends.rs"]
mod backends;

// The homeserver of the machine's own tests; this file uses only part of it.
#[allow(dead_code)]
#[path = "../../../tests/matrix_machine/harness.rs"]
mod harness;
#[allow(dead_code)]
#[path = "../../test-support/matrix_world.rs"]
mod matrix_world;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use backends::ConflictCounting;
use harness::Homeserver;
use matrix_world::{flush, settings};
use olmo::matrix::{Machine, SyncChanges};
use olmo::megolm::MegolmMessage;
use olmo::persist::StorageKey;
use olmo::store::{Backend, MemoryStore, block_on};
use olmo::time::Timestamp;
use olmo_sqlite::SqliteStore;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

const ROOM: &str = "!kill:example.org";
const ALICE: &str = "@alice:example.org";
const BOB: &str = "@bob:example.org";
const NOW: Timestamp = Timestamp::from_millis(1_765_000_000_000);
/// Encryptions each racing child makes.
const RACE_MESSAGES: usize = 100;
/// A child left running by a failed parent stops by itself after this long.
const CHILD_LIFETIME: Duration = Duration::from_secs(30);

fn alice_key() -> StorageKey {
    StorageKey::from_bytes([41; 32])
}

/// Alice's device in `alice_db` and Bob's in memory, with Alice's room key shared with Bob.
fn set_up(alice_db: &Path, rng: &mut StdRng) -> Machine<MemoryStore> {
    let mut hs = Homeserver::new();
    hs.join(ALICE, "ALICE");
    hs.join(BOB, "BOB");
    let store = SqliteStore::open(alice_db).unwrap();
    let alice = block_on(Machine::open(store, &alice_key(), ALICE, "ALICE", rng)).unwrap();
    flush(&mut hs, &alice, rng);
    let bob_key = StorageKey::from_bytes([42; 32]);
    let bob = block_on(Machine::open(MemoryStore::new(), &bob_key, BOB, "BOB", rng)).unwrap();
    flush(&mut hs, &bob, rng);

    let members = [ALICE, BOB];
    block_on(alice.update_tracked_users(&members, rng)).unwrap();
    flush(&mut hs, &alice, rng);
    let claim = block_on(alice.missing_sessions(&members, rng))
        .unwrap()
        .unwrap();
    let (_, path) = claim.endpoint();
    let response = hs.handle(ALICE, "ALICE", &path, &claim.body);
    block_on(alice.mark_request_as_sent(&claim.id, &response, rng)).unwrap();
    let share = block_on(alice.share_room_key(ROOM, &members, &settings(), NOW, rng)).unwrap();
    assert!(share.without_session.is_empty());
    flush(&mut hs, &alice, rng);

    let sync = hs.sync(BOB, "BOB");
    let changes = SyncChanges {
        to_device_events: &sync.to_device,
        changed_users: &sync.changed,
        one_time_key_count: Some(sync.one_time_key_count),
        unused_fallback_key_types: Some(&sync.unused_fallback_key_types),
        ..Default::default()
    };
    block_on(bob.receive_sync_changes(changes, &[], rng)).unwrap();
    bob
}

/// Encrypts one room event as Alice and prints the ciphertext once it was returned.
fn encrypt_and_say<B: Backend>(
    alice: &Machine<B>,
    body: &str,
) -> Result<(), olmo::matrix::MachineError> {
    let content = json!({"msgtype": "m.text", "body": body});
    let sealed = block_on(alice.encrypt_room_event(
        ROOM,
        "m.room.message",
        &content,
        &settings(),
        NOW,
        &mut rand::rng(),
    ))?;
    child::say(&format!("sealed {sealed}"));
    Ok(())
}

/// The ciphertexts a child printed, as room events, with their (session, index).
fn sealed_events(lines: &[String], events: &mut Vec<(Value, (String, u32))>) {
    for content in lines
        .iter()
        .filter_map(|l| child::said(l)?.strip_prefix("sealed "))
    {
        let content: Value = serde_json::from_str(content).expect("a printed line is whole");
        let session = content["session_id"].as_str().unwrap().to_owned();
        let index = MegolmMessage::from_base64(content["ciphertext"].as_str().unwrap())
            .unwrap()
            .message_index();
        let event = json!({
            "type": "m.room.encrypted",
            "sender": ALICE,
            "event_id": format!("$event-{}", events.len()),
            "origin_server_ts": NOW.as_millis(),
            "content": content,
        });
        events.push((event, (session, index)));
    }
}

/// No (session, index) twice, and Bob decrypts every event to its index.
fn check_all(bob: &Machine<MemoryStore>, events: &[(Value, (String, u32))], rng: &mut StdRng) {
    let mut seen = BTreeSet::new();
    for (_, id) in events {
        assert!(seen.insert(id.clone()), "{id:?} handed out twice");
    }
    for chunk in events.chunks(500) {
        let batch: Vec<Value> = chunk.iter().map(|(event, _)| event.clone()).collect();
        let results = block_on(bob.decrypt_room_events(ROOM, &batch, &[], rng)).unwrap();
        for (result, (_, (_, index))) in results.into_iter().zip(chunk) {
            let read = result.expect("Bob decrypts every printed ciphertext");
            assert_eq!(read.message_index, *index);
        }
    }
}

#[test]
fn kill_child() {
    let Some(path) = child::database("kill") else {
        return;
    };
    let store = SqliteStore::open(&path).unwrap();
    let alice = block_on(Machine::open(
        store,
        &alice_key(),
        ALICE,
        "ALICE",
        &mut rand::rng(),
    ))
    .unwrap();
    child::say("open");
    let started = Instant::now();
    let mut sent = 0u64;
    while started.elapsed() < CHILD_LIFETIME {
        encrypt_and_say(&alice, &format!("message {sent}")).unwrap();
        sent += 1;
    }
}

#[test]
fn alice_killed_at_random_points_never_hands_out_a_megolm_index_twice() {
    const ROUNDS: usize = 150;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alice.sqlite3");
    let mut rng = StdRng::seed_from_u64(0x5eed_0010);
    let bob = set_up(&path, &mut rng);
    let started = Instant::now();
    let mut events = Vec::new();
    for round in 0..ROUNDS {
        let delay = Duration::from_millis(rng.random_range(0..=50));
        let lines = child::kill_after_open(child::spawn("kill_child", "kill", &path), delay);
        sealed_events(&lines, &mut events);
        let store = SqliteStore::open(&path).expect("the store opens after a kill");
        block_on(Machine::open(store, &alice_key(), ALICE, "ALICE", &mut rng))
            .unwrap_or_else(|e| panic!("round {round}: the machine does not open: {e}"));
    }
    assert!(!events.is_empty(), "no child got to encrypt");
    check_all(&bob, &events, &mut rng);
    // Indices up to the highest that were never printed: a kill between an encryption's
    // commit and its print (an index lost, never reused).
    let highest = events.iter().map(|(_, (_, index))| *index).max().unwrap();
    println!(
        "{ROUNDS} kills, {} ciphertexts printed and decrypted, {} indices committed but never \
         printed, {:?}",
        events.len(),
        u64::from(highest) + 1 - events.len() as u64,
        started.elapsed()
    );
}

#[test]
fn race_child() {
    let Some(path) = child::database("race") else {
        return;
    };
    let conflicts = Arc::new(AtomicU64::new(0));
    let store = ConflictCounting::new(SqliteStore::open(&path).unwrap(), Arc::clone(&conflicts));
    let alice = block_on(Machine::open(
        store,
        &alice_key(),
        ALICE,
        "ALICE",
        &mut rand::rng(),
    ))
    .unwrap();
    // Both children open first and start together, so their encryptions overlap.
    child::say("open");
    std::io::stdin().lines().next().unwrap().unwrap();
    let started = Instant::now();
    let (mut done, mut failed) = (0, 0u64);
    while done < RACE_MESSAGES && started.elapsed() < CHILD_LIFETIME {
        match encrypt_and_say(&alice, &format!("race {done}")) {
            Ok(()) => done += 1,
            // Conflicts beyond the machine's retries, or a lock wait that surfaced: try again.
            Err(olmo::matrix::MachineError::Store(_)) => failed += 1,
            Err(error) => panic!("encryption failed: {error}"),
        }
    }
    child::say(&format!("conflicts {}", conflicts.load(Ordering::SeqCst)));
    child::say(&format!("failed {failed}"));
}

#[test]
fn two_processes_encrypting_on_one_device_take_turns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alice.sqlite3");
    let mut rng = StdRng::seed_from_u64(0x5eed_0011);
    let bob = set_up(&path, &mut rng);
    let started = Instant::now();
    let mut events = Vec::new();
    let (mut conflicts, mut failed) = (0, 0);
    for lines in child::race("race_child", "race", &path, ["go", "go"]) {
        let before = events.len();
        sealed_events(&lines, &mut events);
        assert_eq!(
            events.len() - before,
            RACE_MESSAGES,
            "a child did not finish"
        );
        conflicts += child::count_of(&lines, "conflicts ");
        failed += child::count_of(&lines, "failed ");
    }
    check_all(&bob, &events, &mut rng);
    println!(
        "2 x {RACE_MESSAGES} encryptions, {conflicts} conflicts retried by the machine, \
         {failed} operations failed and retried by the child, {:?}",
        started.elapsed()
    );
}
