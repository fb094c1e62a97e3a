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
#[path = "../../test-support/counter.rs"]
mod counter;

use std::path::Path;
use std::time::{Duration, Instant};

use cluster::Cluster;
use counter::{
    COUNTER_TABLE, ITEMS, check_after_kill, check_after_race, increment, read_state, sealer,
    values_said,
};
use olmo::store::StoreError;
use olmo_postgres::PostgresStore;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Increments each racing child makes.
const RACE_INCREMENTS: u64 = 300;
/// A child left running by a failed parent stops by itself after this long.
const CHILD_LIFETIME: Duration = Duration::from_secs(60);

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
        let got = values_said(&lines, "got ");
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
    let store = PostgresStore::connect(&url).unwrap();
    check_after_race(RACE_INCREMENTS, handed_out, &read_state(&store, &sealer()));
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
        let acknowledged = values_said(&lines, "committed ");
        // A commit the child sent just before it died may still land: the server finishes it
        // (or rolls it back) when it sees the connection gone. Read after that, or the two
        // reads below could straddle it.
        cluster.wait_until_olmo_disconnected();
        let store = PostgresStore::connect(&url).unwrap();
        let state = read_state(&store, &sealer);
        drop(store);
        check_after_kill(round, previous, &acknowledged, &state);
        let counter = state.0;
        previous = counter;
    }
    println!("{ROUNDS} kills, {previous} commits survived");
}
