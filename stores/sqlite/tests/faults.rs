//! The SQLite backend under real process faults: a writer killed with SIGKILL at random points
//! loses nothing it acknowledged and never leaves half a commit, and two processes incrementing
//! one counter lose no update and hand out no value twice.
//!
//! Each test re-runs this test binary as its child process: `FAULTS_CHILD` names the role and
//! `--exact` selects the child's function, which does nothing when run without it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../../test-support/child.rs"]
mod child;
#[path = "../../test-support/counter.rs"]
mod counter;

use std::time::{Duration, Instant};

use counter::{check_after_kill, check_after_race, increment, read_state, sealer, values_said};
use olmo::store::StoreError;
use olmo_sqlite::SqliteStore;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Increments each racing child makes.
const RACE_INCREMENTS: u64 = 200;
/// A child left running by a failed parent stops by itself after this long.
const CHILD_LIFETIME: Duration = Duration::from_secs(30);

#[test]
fn kill_child() {
    let Some(path) = child::database("kill") else {
        return;
    };
    let store = SqliteStore::open(&path).unwrap();
    let sealer = sealer();
    child::say("open");
    let started = Instant::now();
    while started.elapsed() < CHILD_LIFETIME {
        let value = increment(&store, &sealer).unwrap();
        child::say(&format!("committed {value}"));
    }
}

#[test]
fn a_writer_killed_at_random_points_loses_nothing_it_acknowledged() {
    const ROUNDS: usize = 50;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("olmo.sqlite3");
    let sealer = sealer();
    let mut rng = StdRng::seed_from_u64(0x5eed_0009);
    let mut previous = 0;
    // Rounds where a commit landed that the child did not get to acknowledge.
    let mut unacknowledged = 0;
    let started = Instant::now();
    for round in 0..ROUNDS {
        let delay = Duration::from_millis(rng.random_range(0..=30));
        let lines = child::kill_after_open(child::spawn("kill_child", "kill", &path), delay);
        let acknowledged = values_said(&lines, "committed ");
        let store = SqliteStore::open(&path).expect("the store opens after a kill");
        let state = read_state(&store, &sealer);
        check_after_kill(round, previous, &acknowledged, &state);
        let counter = state.0;
        if counter > acknowledged.last().copied().unwrap_or(previous) {
            unacknowledged += 1;
        }
        previous = counter;
    }
    println!(
        "{ROUNDS} kills, {previous} commits survived, {unacknowledged} kills after a commit \
         and before its acknowledgement, {:?}",
        started.elapsed()
    );
}

#[test]
fn race_child() {
    let Some(path) = child::database("race") else {
        return;
    };
    let store = SqliteStore::open(&path).unwrap();
    let sealer = sealer();
    let (mut conflicts, mut busy) = (0u64, 0u64);
    // Both children open first and start together, so their increments overlap.
    child::say("open");
    std::io::stdin().lines().next().unwrap().unwrap();
    let started = Instant::now();
    let mut done = 0;
    while done < RACE_INCREMENTS && started.elapsed() < CHILD_LIFETIME {
        match increment(&store, &sealer) {
            Ok(value) => {
                child::say(&format!("got {value}"));
                done += 1;
            }
            // Reread in a fresh transaction and retry.
            Err(StoreError::Conflict(_)) => conflicts += 1,
            Err(StoreError::Backend(message))
                if message.contains("locked") || message.contains("busy") =>
            {
                busy += 1;
            }
            Err(error) => panic!("increment failed: {error}"),
        }
    }
    child::say(&format!("conflicts {conflicts}"));
    child::say(&format!("busy {busy}"));
}

#[test]
fn two_processes_racing_on_one_counter_lose_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("olmo.sqlite3");
    // No file yet: both children create and migrate it at once.
    let started = Instant::now();
    let mut handed_out = Vec::new();
    let (mut conflicts, mut busy) = (0, 0);
    for lines in child::race("race_child", "race", &path, ["go", "go"]) {
        let got = values_said(&lines, "got ");
        assert_eq!(got.len() as u64, RACE_INCREMENTS, "a child did not finish");
        handed_out.extend(got);
        conflicts += child::count_of(&lines, "conflicts ");
        busy += child::count_of(&lines, "busy ");
    }
    println!(
        "2 x {RACE_INCREMENTS} increments, {conflicts} conflicts retried, {busy} busy errors, {:?}",
        started.elapsed()
    );
    assert_eq!(busy, 0, "a lock wait surfaced as an error");
    let store = SqliteStore::open(&path).unwrap();
    check_after_race(RACE_INCREMENTS, handed_out, &read_state(&store, &sealer()));
}

#[test]
fn a_fresh_file_opens_while_another_connection_holds_its_write_lock() {
    // Two processes creating one file at once: one sets WAL while the other is mid-write, a
    // lock upgrade SQLite's busy handler does not wait for.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("olmo.sqlite3");
    let writer = rusqlite::Connection::open(&path).unwrap();
    writer
        .execute_batch("BEGIN IMMEDIATE; CREATE TABLE other (x);")
        .unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        writer.execute_batch("COMMIT;").unwrap();
    });
    let opened = SqliteStore::open(&path);
    release.join().unwrap();
    opened.expect("the open waits for the other writer");
}
