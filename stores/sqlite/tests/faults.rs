//! The SQLite backend under real process faults: a writer killed with SIGKILL at random points
//! loses nothing it acknowledged and never leaves half a commit, and two processes incrementing
//! one counter lose no update and hand out no value twice.
//!
//! Each test re-runs this test binary as its child process: `FAULTS_CHILD` names the role and
//! `--exact` selects the child's function, which does nothing when run without it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../../test-support/child.rs"]
mod child;

use std::time::{Duration, Instant};

use olmo::persist::StorageKey;
use olmo::store::{Backend, KeyRange, Sealer, StoreError, Txn, block_on};
use olmo_sqlite::SqliteStore;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use zeroize::Zeroizing;

const COUNTER_TABLE: &str = "counter";
const COUNTER_KEY: &[u8] = b"counter";
/// One record per value handed out, keyed by the value (big-endian).
const ITEMS: &str = "items";
/// Increments each racing child makes.
const RACE_INCREMENTS: u64 = 200;
/// A child left running by a failed parent stops by itself after this long.
const CHILD_LIFETIME: Duration = Duration::from_secs(30);

fn sealer() -> Sealer {
    Sealer::new(&StorageKey::from_bytes([7; 32]))
}

/// One increment in one transaction: read the counter, write it plus one and a new item record
/// named by the new value. The value, once the commit returned Ok.
fn increment(store: &SqliteStore, sealer: &Sealer) -> Result<u64, StoreError> {
    let mut txn = Txn::new(store, sealer);
    let current = match block_on(txn.get(COUNTER_TABLE, COUNTER_KEY))? {
        Some((_, bytes)) => u64::from_be_bytes(bytes[..].try_into().unwrap()),
        None => 0,
    };
    let next = current + 1;
    let bytes = Zeroizing::new(next.to_be_bytes().to_vec());
    txn.put(COUNTER_TABLE, COUNTER_KEY, 1, bytes.clone())?;
    txn.insert(ITEMS, &next.to_be_bytes(), 1, bytes);
    block_on(txn.commit(&mut rand::rng()))?;
    Ok(next)
}

/// The counter and the item values present, after checking every record opens.
fn read_state(store: &SqliteStore, sealer: &Sealer) -> (u64, Vec<u64>) {
    let mut txn = Txn::new(store, sealer);
    let counter = block_on(txn.get(COUNTER_TABLE, COUNTER_KEY))
        .unwrap()
        .map_or(0, |(_, b)| u64::from_be_bytes(b[..].try_into().unwrap()));
    let mut items = Vec::new();
    let mut range = KeyRange::all();
    loop {
        let page = block_on(store.scan(ITEMS, &range, 256)).unwrap();
        let Some((last, _)) = page.last() else { break };
        range = range.after(last);
        for (key, record) in page {
            let (_, plaintext) = sealer
                .open(ITEMS, &key, record.version, &record.value)
                .unwrap();
            assert_eq!(plaintext[..], key[..], "an item holds its own value");
            items.push(u64::from_be_bytes(key[..].try_into().unwrap()));
        }
    }
    (counter, items)
}

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
        let acknowledged: Vec<u64> = lines
            .iter()
            .filter_map(|l| child::said(l)?.strip_prefix("committed "))
            .map(|v| v.parse().unwrap())
            .collect();
        let store = SqliteStore::open(&path).expect("the store opens after a kill");
        let (counter, items) = read_state(&store, &sealer);
        assert_eq!(
            counter,
            items.len() as u64,
            "round {round}: a commit's two writes were split"
        );
        assert_eq!(
            items,
            (1..=counter).collect::<Vec<_>>(),
            "round {round}: the items are exactly 1..=counter"
        );
        assert!(counter >= previous, "round {round}: the counter went back");
        if let Some(&last) = acknowledged.last() {
            assert!(
                last <= counter,
                "round {round}: value {last} was acknowledged but the counter is {counter}"
            );
        }
        assert!(
            acknowledged.iter().all(|&v| v > previous),
            "round {round}: a value was handed out twice"
        );
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
        let got: Vec<u64> = lines
            .iter()
            .filter_map(|l| child::said(l)?.strip_prefix("got "))
            .map(|v| v.parse().unwrap())
            .collect();
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
    handed_out.sort_unstable();
    assert_eq!(
        handed_out,
        (1..=2 * RACE_INCREMENTS).collect::<Vec<_>>(),
        "every value handed out exactly once"
    );
    let store = SqliteStore::open(&path).unwrap();
    let (counter, items) = read_state(&store, &sealer());
    assert_eq!(counter, 2 * RACE_INCREMENTS, "no lost update");
    assert_eq!(items, (1..=2 * RACE_INCREMENTS).collect::<Vec<_>>());
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
