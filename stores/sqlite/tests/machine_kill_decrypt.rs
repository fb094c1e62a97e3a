//! Bob's device on SQLite, in a child process, decrypts a room's timeline in order, keeping
//! each even-numbered decrypted event as an application record in the same commit (a durable
//! commit, `synchronous=FULL`) and decrypting the odd-numbered ones alone (a loss-tolerant
//! commit, `synchronous=NORMAL`), and is killed with SIGKILL at random points. After every
//! kill the store opens, every event the child reported as decrypted is in the store (its
//! application record, or for the odd ones its replay record: a copy under another event id
//! is refused as a replay of it), re-reading it is not a replay, and the next child resumes
//! where the store and the reports say it stopped: at the end every event was decrypted exactly
//! once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[allow(dead_code)]
#[path = "../../../tests/matrix_machine/harness.rs"]
mod harness;
#[allow(dead_code)]
#[path = "../../test-support/matrix_world.rs"]
mod matrix_world;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use harness::Homeserver;
use matrix_world::{flush, settings};
use olmo::matrix::{AppRecord, Machine, SyncChanges, UnableToDecrypt};
use olmo::persist::StorageKey;
use olmo::store::{Backend, MemoryStore, block_on};
use olmo::time::Timestamp;
use olmo_sqlite::{Durability, SqliteStore};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};
use zeroize::Zeroizing;

const ROLE: &str = "DECRYPT_CHILD";
const ROOM: &str = "!timeline:example.org";
const ALICE: &str = "@alice:example.org";
const BOB: &str = "@bob:example.org";
const NOW: Timestamp = Timestamp::from_millis(1_765_000_000_000);
const EVENTS: usize = 400;
const ROUNDS: usize = 60;
const MARK: &str = "@decrypted: ";

fn bob_key() -> StorageKey {
    StorageKey::from_bytes([43; 32])
}
/// Bob's device in `bob_db` holding Alice's room key, and Alice's timeline of [`EVENTS`].
fn set_up(bob_db: &Path, rng: &mut StdRng) -> Vec<Value> {
    let mut hs = Homeserver::new();
    hs.join(ALICE, "ALICE");
    hs.join(BOB, "BOB");
    let alice_key = StorageKey::from_bytes([44; 32]);
    let alice = block_on(Machine::open(
        MemoryStore::new(),
        &alice_key,
        ALICE,
        "ALICE",
        rng,
    ))
    .unwrap();
    flush(&mut hs, &alice, rng);
    let bob = block_on(Machine::open(
        SqliteStore::open(bob_db).unwrap(),
        &bob_key(),
        BOB,
        "BOB",
        rng,
    ))
    .unwrap();
    flush(&mut hs, &bob, rng);
    let members = [ALICE, BOB];
    block_on(alice.update_tracked_users(&members, rng)).unwrap();
    flush(&mut hs, &alice, rng);
    let claim = block_on(alice.missing_sessions(&members, rng))
        .unwrap()
        .unwrap();
    let response = hs.handle(ALICE, "ALICE", &claim.endpoint().1, &claim.body);
    block_on(alice.mark_request_as_sent(&claim.id, &response, rng)).unwrap();
    block_on(alice.share_room_key(ROOM, &members, &settings(), NOW, rng)).unwrap();
    flush(&mut hs, &alice, rng);
    let sync = hs.sync(BOB, "BOB");
    let changes = SyncChanges {
        to_device_events: &sync.to_device,
        ..Default::default()
    };
    block_on(bob.receive_sync_changes(changes, &[], rng)).unwrap();
    (0..EVENTS)
        .map(|i| {
            let content = json!({"msgtype": "m.text", "body": format!("message {i}")});
            let sealed = block_on(alice.encrypt_room_event(
                ROOM,
                "m.room.message",
                &content,
                &settings(),
                NOW,
                rng,
            ))
            .unwrap();
            json!({
                "type": "m.room.encrypted",
                "sender": ALICE,
                "event_id": format!("$event-{i}"),
                "origin_server_ts": NOW.as_millis() + i as u64,
                "content": sealed,
            })
        })
        .collect()
}

/// The application's own record of a decrypted event.
fn stored_body<B: Backend>(bob: &Machine<B>, event_id: &str) -> Option<String> {
    let value = block_on(bob.app_record("timeline", event_id.as_bytes())).unwrap()?;
    Some(String::from_utf8(value.to_vec()).unwrap())
}

#[test]
fn decrypt_child() {
    let Ok(database) = std::env::var(ROLE) else {
        return;
    };
    let mut lines = std::io::stdin().lock().lines();
    // First line: the events earlier children reported.
    let reported: Vec<String> = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    let events: Vec<Value> = lines
        .map(|line| serde_json::from_str(&line.unwrap()).unwrap())
        .collect();
    let store = SqliteStore::open(&database).unwrap();
    let mut rng = StdRng::seed_from_u64(0);
    let bob = block_on(Machine::open(store, &bob_key(), BOB, "BOB", &mut rng)).unwrap();
    let mut first = true;
    for (i, event) in events.iter().enumerate() {
        let id = event["event_id"].as_str().unwrap();
        if stored_body(&bob, id).is_some() || reported.iter().any(|r| r == id) {
            continue; // decrypted by an earlier run
        }
        let durable = i.is_multiple_of(2);
        let app = if durable {
            vec![AppRecord {
                table: "timeline".into(),
                key: id.as_bytes().to_vec(),
                value: Zeroizing::new(id.as_bytes().to_vec()),
            }]
        } else {
            Vec::new()
        };
        let read = block_on(bob.decrypt_room_event(ROOM, event, &app, &mut rng)).unwrap();
        assert!(
            read.content["body"]
                .as_str()
                .unwrap()
                .starts_with("message ")
        );
        // The commit ran at the level the connection is at now. Only this child's first event
        // may be one a killed child committed without reporting it, whose decrypt writes
        // nothing and so leaves the level as it was.
        let level = bob.backend().synchronous().unwrap();
        if !std::mem::replace(&mut first, false) {
            let want = if durable {
                Durability::Full
            } else {
                Durability::Normal
            };
            assert_eq!(level, want, "event {i}");
        }
        let mut out = std::io::stdout().lock();
        writeln!(out, "{MARK}{id}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn bob_killed_while_decrypting_loses_no_decrypted_event_and_decrypts_each_once() {
    if std::env::var(ROLE).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("bob.sqlite3");
    let mut rng = StdRng::seed_from_u64(0xdec0de);
    let events = set_up(&database, &mut rng);
    let timeline: String = events.iter().map(|e| format!("{e}\n")).collect();
    let mut reported = Vec::new();
    for round in 0..ROUNDS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "decrypt_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ROLE, &database)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{}", serde_json::to_string(&reported).unwrap()).unwrap();
        stdin.write_all(timeline.as_bytes()).unwrap();
        drop(stdin);
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some((_, id)) = line.split_once(MARK) {
                    let _ = tx.send(id.to_owned());
                }
            }
        });
        // Kill after the child has decrypted a few events (or finished).
        let wanted = rng.random_range(1..=15);
        let mut got = 0;
        while got < wanted {
            match rx.recv_timeout(Duration::from_secs(20)) {
                Ok(id) => {
                    reported.push(id);
                    got += 1;
                }
                Err(_) => break,
            }
        }
        std::thread::sleep(Duration::from_micros(rng.random_range(0..3_000)));
        let _ = child.kill();
        let _ = child.wait();
        reader.join().unwrap();
        reported.extend(rx.try_iter());

        // The store opens, and holds every event the child reported.
        let bob = block_on(Machine::open(
            SqliteStore::open(&database).unwrap(),
            &bob_key(),
            BOB,
            "BOB",
            &mut rng,
        ))
        .unwrap();
        for id in &reported {
            let i = index_of(id);
            if i.is_multiple_of(2) {
                assert_eq!(
                    stored_body(&bob, id).as_deref(),
                    Some(id.as_str()),
                    "round {round}: {id} lost"
                );
            } else {
                // A copy under another id is a replay of the recorded event (and commits
                // nothing).
                let mut copy = events[i].clone();
                copy["event_id"] = json!("$copy");
                match block_on(bob.decrypt_room_event(ROOM, &copy, &[], &mut rng)) {
                    Err(UnableToDecrypt::Replay { first_event_id, .. }) => {
                        assert_eq!(&first_event_id, id, "round {round}")
                    }
                    other => panic!("round {round}: {id}'s replay record lost: {other:?}"),
                }
            }
        }
        if reported.len() == EVENTS {
            break;
        }
    }
    // Each event was reported once, and re-reading every stored one is not a replay.
    let mut unique = reported.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), reported.len(), "an event was decrypted twice");
    let bob = block_on(Machine::open(
        SqliteStore::open(&database).unwrap(),
        &bob_key(),
        BOB,
        "BOB",
        &mut rng,
    ))
    .unwrap();
    let results = block_on(bob.decrypt_room_events(ROOM, &events, &[], &mut rng)).unwrap();
    assert!(
        results.iter().all(Result::is_ok),
        "no replay after the kills"
    );
    println!(
        "{} of {EVENTS} events decrypted across the kills",
        reported.len()
    );
}

/// The position of `$event-{i}` in the timeline.
fn index_of(event_id: &str) -> usize {
    event_id.trim_start_matches("$event-").parse().unwrap()
}
