//! Two OS processes incrementing one counter on one PostgreSQL database: no update is lost, no
//! value is handed out twice, and the losers of each race see a conflict naming the counter
//! and retry. A writer killed with SIGKILL at random points loses nothing it acknowledged and
//! leaves no half commit (PostgreSQL rolls back the open transaction of a dropped connection). Each test re-runs this test binary as its child (the SQLite fault tests' helper:
//! `--exact` selects the child's function, which does nothing unless its role is set); the
//! child gets the connection string where that helper passes a database path.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod cluster;

#[path = "../../test-support/child.rs"]
mod child;

use std::path::Path;
use std::time::{Duration, Instant};

use cluster::Cluster;
use olmo::persist::StorageKey;
use olmo::store::{Backend, KeyRange, Sealer, StoreError, Txn, block_on};
use olmo_postgres::PostgresStore;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use zeroize::Zeroizing;

const COUNTER_TABLE: &str = "counter";
const COUNTER_KEY: &[u8] = b"counter";
/// One record per value handed out, keyed by the value (big-endian).
const ITEMS: &str = "items";
/// Increments each racing child makes.
const RACE_INCREMENTS: u64 = 300;
/// A child left running by a failed parent stops by itself after this long.
const CHILD_LIFETIME: Duration = Duration::from_secs(60);

fn sealer() -> Sealer {
    Sealer::new(&StorageKey::from_bytes([7; 32]))
}

/// One increment in one transaction: the counter plus one and a new item named by the value.
fn increment(store: &PostgresStore, sealer: &Sealer) -> Result<u64, StoreError> {
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

fn read_state(store: &PostgresStore, sealer: &Sealer) -> (u64, Vec<u64>) {
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
fn race_child() {
    let Some(url) = child::database("race") else {
        return;
    };
    let store = PostgresStore::connect(url.to_str().unwrap()).unwrap();
    let sealer = sealer();
    let mut conflicts = 0u64;
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
            // Another process committed first: reread in a fresh transaction and retry.
            Err(StoreError::Conflict(conflict)) => {
                assert!(
                    conflict.table == COUNTER_TABLE || conflict.table == ITEMS,
                    "the conflict names a record of the increment"
                );
                conflicts += 1;
            }
            Err(error) => panic!("increment failed: {error}"),
        }
    }
    child::say(&format!("conflicts {conflicts}"));
    child::say("busy 0");
}

#[test]
fn two_processes_racing_on_one_counter_lose_no_update() {
    let Some(cluster) = Cluster::start_or_skip() else {
        return;
    };
    // No schema yet: both children create and migrate it at once.
    let url = cluster.connection_string();
    let started = Instant::now();
    let mut handed_out = Vec::new();
    let mut conflicts = 0;
    for lines in child::race("race_child", "race", Path::new(&url), ["go", "go"]) {
        let got: Vec<u64> = lines
            .iter()
            .filter_map(|l| child::said(l)?.strip_prefix("got "))
            .map(|v| v.parse().unwrap())
            .collect();
        assert_eq!(got.len() as u64, RACE_INCREMENTS, "a child did not finish");
        handed_out.extend(got);
        conflicts += child::count_of(&lines, "conflicts ");
    }
    println!(
        "2 x {RACE_INCREMENTS} increments on PostgreSQL, {conflicts} conflicts retried, {:?}",
        started.elapsed()
    );
    assert!(
        conflicts > 0,
        "the two processes never met: no race was tested"
    );
    handed_out.sort_unstable();
    assert_eq!(
        handed_out,
        (1..=2 * RACE_INCREMENTS).collect::<Vec<_>>(),
        "every value handed out exactly once"
    );
    let store = PostgresStore::connect(&url).unwrap();
    let (counter, items) = read_state(&store, &sealer());
    assert_eq!(counter, 2 * RACE_INCREMENTS, "no lost update");
    assert_eq!(items, (1..=2 * RACE_INCREMENTS).collect::<Vec<_>>());
}

#[test]
fn kill_child() {
    let Some(url) = child::database("kill") else {
        return;
    };
    let store = PostgresStore::connect(url.to_str().unwrap()).unwrap();
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
    const ROUNDS: usize = 30;
    let Some(cluster) = Cluster::start_or_skip() else {
        return;
    };
    let url = cluster.connection_string();
    let sealer = sealer();
    let mut rng = StdRng::seed_from_u64(0x5eed_0012);
    let mut previous = 0;
    for round in 0..ROUNDS {
        let delay = Duration::from_millis(rng.random_range(0..=60));
        let lines =
            child::kill_after_open(child::spawn("kill_child", "kill", Path::new(&url)), delay);
        let acknowledged: Vec<u64> = lines
            .iter()
            .filter_map(|l| child::said(l)?.strip_prefix("committed "))
            .map(|v| v.parse().unwrap())
            .collect();
        // A commit the child sent just before it died may still land: the server finishes it
        // (or rolls it back) when it sees the connection gone. Read after that, or the two
        // reads below could straddle it.
        cluster.wait_until_olmo_disconnected();
        let store = PostgresStore::connect(&url).unwrap();
        let (counter, items) = read_state(&store, &sealer);
        drop(store);
        assert_eq!(
            items,
            (1..=counter).collect::<Vec<_>>(),
            "round {round}: a commit's two writes were split"
        );
        assert!(counter >= previous, "round {round}: the counter went back");
        if let Some(&last) = acknowledged.last() {
            assert!(last <= counter, "round {round}: acknowledged {last} lost");
        }
        assert!(
            acknowledged.iter().all(|&v| v > previous),
            "round {round}: a value was handed out twice"
        );
        previous = counter;
    }
    println!("{ROUNDS} kills, {previous} commits survived");
}
