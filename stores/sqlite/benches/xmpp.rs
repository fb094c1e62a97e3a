//! The XMPP machine (`XmppMachine` on SQLite) beside python-omemo's `SessionManager` doing the
//! same work, and beside the sum of its core operations plus its one commit.
//!
//! Operations: one message encrypted to 3 JIDs of 3 devices each (sessions built, not yet
//! confirmed, so every key carries its key exchange, on both sides); one message decrypted on a
//! confirmed session (chains reset every 40 messages, below the heartbeat threshold); 10
//! sessions built from fetched bundles (the machine: 10 `receive_bundle`, each one commit;
//! python-omemo: its first message to a JID of 10 devices, which downloads the bundles, builds
//! the sessions and encrypts one message to them); an archive catch-up of 1,000 messages from
//! 20 contacts (50 each, round robin, confirmed sessions), the device restored before each run.
//!
//! Two tables: the machine against python-omemo (timed inside Python by tests/peers/
//! omemo_bench.py, so no IPC is measured; the goal is ≤ 0.1×), and each machine operation
//! against its core operations (`OmemoDevice` directly: XML parsed and written, the envelope
//! made or read, encrypt/decrypt/build_session) plus one SQLite commit of the records the
//! machine wrote for it, replayed on a second store (goal ≤ 1.15×). The replay is the store
//! contract's commit, not a batch sealed beforehand: each record read for its version, put as
//! plaintext in a `Txn` and sealed by its `Sealer` in `Txn::commit` (same tables, keys, schemas
//! and plaintexts as the machine's, on a backend of the same kind). Sides alternate in batches,
//! as in the other benches. Last (full mode only), the machine's decrypt with 1, 9 and 100
//! sessions stored, on SQLite FULL and on the memory store (quick mode: the memory store only).
//!
//! Both tables are printed for three stores: SQLite with the default options (`synchronous=FULL`:
//! each commit waits for the disk), SQLite with `synchronous=NORMAL` (WAL, no fsync per commit),
//! and olmo's memory store (the engine's own cost). python-omemo's storage is in memory
//! (omemo_peer.py's MemoryStorage).
//!
//! `OLMO_BENCH_CLOCK=cpu` times with the thread's CPU time instead of the wall clock: steadier
//! ratios on a machine busy with other work (SQLite FULL's disk waits are then not counted).
//!
//! `OLMO_BENCH_QUICK=1`: short measurements, a 30-message archive (3 contacts × 10), no
//! criterion group. Under `cargo test` the criterion group runs
//! each operation once (a 6-message archive) and the tables are skipped. Without the venv (`.ci/setup-python.sh`) the python-omemo column is left out.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code)]
#[path = "../../../benches/common/summary.rs"]
mod summary;

#[path = "xmpp/clock.rs"]
mod clock;
#[path = "xmpp/python.rs"]
mod python;
#[path = "xmpp/stores.rs"]
mod stores;
#[path = "xmpp/world.rs"]
mod world;
#[path = "xmpp/worlds.rs"]
mod worlds;

use std::time::Duration;

use crate::clock::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;

use stores::Kind;
use summary::{budget, calibrate, configure, format_duration, quick, smoke_test};
use worlds::{BuildWorld, CatchUpWorld, DecryptWorld, EncryptWorld};

/// Archive senders × messages each.
fn archive_shape() -> (usize, usize) {
    if smoke_test() {
        (2, 3)
    } else if quick() {
        (3, 10)
    } else {
        (20, 50)
    }
}

/// `OLMO_BENCH_COUNT=<row>:<side>:<n>[:<store>]` (row: encrypt, decrypt, build or catch-up;
/// side: machine, core or commit; store: memory, the default, normal or full): runs that one
/// side n times on that store and nothing else, for `xmpp/callgrind.sh` to count its
/// instructions or perf to sample its windows (clock.rs).
fn count_one_side(spec: &str) {
    let parts: Vec<&str> = spec.split(':').collect();
    let (&[row, side, n], store) = (&parts[..parts.len().min(3)], parts.get(3)) else {
        panic!("OLMO_BENCH_COUNT=<row>:<side>:<n>[:<store>]")
    };
    let n: usize = n.parse().unwrap();
    let (senders, each) = archive_shape();
    let kind = match store.copied() {
        None | Some("memory") => Kind::Memory,
        Some("normal") => Kind::Normal,
        Some("full") => Kind::Full,
        Some(other) => panic!("no store {other}"),
    };
    let machine: Side<'_>;
    let (core, commit): (Side<'_>, Side<'_>);
    match row {
        "encrypt" => {
            let mut world = EncryptWorld::new(kind);
            (core, commit) = world.core_and_commit();
            machine = Box::new(move |n| world.machine(n));
        }
        "decrypt" => {
            let mut world = DecryptWorld::new(kind, 0);
            (core, commit) = world.core_and_commit();
            machine = Box::new(move |n| world.machine(n));
        }
        "build" => {
            let mut world = BuildWorld::new(kind);
            (core, commit) = world.core_and_commit();
            machine = Box::new(move |n| world.machine(n));
        }
        "catch-up" => {
            let mut world = CatchUpWorld::new(kind, senders, each);
            println!("commits per catch-up: {}", world.replay_per_message());
            (core, commit) = world.core_and_commit();
            machine = Box::new(move |n| world.machine(n));
        }
        other => panic!("no row {other}"),
    }
    let mut run = match side {
        "machine" => machine,
        "core" => core,
        "commit" => commit,
        other => panic!("no side {other}"),
    };
    // The timed windows only (the clock of `OLMO_BENCH_CLOCK`): for comparing two builds.
    println!("per operation: {:.3} us", run(n).as_secs_f64() * 1e6);
}

fn machine_ops(c: &mut Criterion) {
    if let Ok(spec) = std::env::var("OLMO_BENCH_COUNT") {
        count_one_side(&spec);
        return;
    }
    let (senders, each) = archive_shape();
    // Quick mode keeps its time for the tables.
    if smoke_test() || !quick() {
        let mut encrypt = EncryptWorld::new(Kind::Full);
        let mut decrypt = DecryptWorld::new(Kind::Full, 0);
        let mut build = BuildWorld::new(Kind::Full);
        let mut catch_up = CatchUpWorld::new(Kind::Full, senders, each);
        let mut group = c.benchmark_group("xmpp machine on sqlite");
        configure(&mut group);
        group.bench_function("encrypt to 3 JIDs x 3 devices", |b| {
            b.iter(|| encrypt.machine(1))
        });
        group.bench_function("decrypt", |b| b.iter(|| decrypt.machine(1)));
        group.bench_function("build 10 sessions from bundles", |b| {
            b.iter(|| build.machine(1))
        });
        // A full catch-up takes seconds: criterion's least sample count.
        group.sample_size(10);
        group.bench_function(format!("catch up {} messages", senders * each), |b| {
            b.iter(|| catch_up.machine(1))
        });
        group.finish();
    }
    if !smoke_test() {
        let mut python = python::Python::start();
        if python.is_none() {
            println!("\n(no .venv: python-omemo column left out; run .ci/setup-python.sh)");
        }
        for kind in Kind::ALL {
            tables(kind, python.as_mut());
        }
        let kinds: &[Kind] = if quick() {
            &[Kind::Memory]
        } else {
            &[Kind::Full, Kind::Memory]
        };
        for kind in kinds {
            by_sessions_stored(*kind);
        }
    }
}

/// One side of a row: runs a batch of the size given, returns the time per operation.
type Side<'a> = Box<dyn FnMut(usize) -> Duration + 'a>;

/// Per-call times of each side, over alternating batches.
fn alternate(sides: &mut [Side<'_>]) -> Vec<Vec<Duration>> {
    const MIN_BATCHES: usize = 5;
    let budget = budget();
    let sizes: Vec<usize> = sides
        .iter_mut()
        .map(|side| calibrate(side, budget / 10))
        .collect();
    let mut samples = vec![Vec::new(); sides.len()];
    let start = Instant::now();
    while samples[0].len() < MIN_BATCHES || start.elapsed() < budget * 2 {
        for ((side, n), out) in sides.iter_mut().zip(&sizes).zip(&mut samples) {
            out.push(side(*n));
        }
    }
    samples
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

struct Row {
    name: String,
    machine: f64,
    other: f64,
    ratio: f64,
    target: f64,
}

/// The machine against `others` summed (each with its count per machine operation).
fn row(
    name: &str,
    target: f64,
    machine: &mut dyn FnMut(usize) -> Duration,
    others: Vec<(f64, Side<'_>)>,
) -> Row {
    let (counts, runners): (Vec<f64>, Vec<_>) = others.into_iter().unzip();
    let mut sides: Vec<Side<'_>> = vec![Box::new(machine)];
    sides.extend(runners);
    let samples = alternate(&mut sides);
    let batches = samples[0].len();
    let sum_at = |i: usize| -> f64 {
        counts
            .iter()
            .zip(&samples[1..])
            .map(|(count, s)| count * s[i].as_secs_f64())
            .sum()
    };
    Row {
        name: name.to_owned(),
        machine: median(samples[0].iter().map(Duration::as_secs_f64).collect()),
        other: median((0..batches).map(sum_at).collect()),
        ratio: median(
            (0..batches)
                .map(|i| samples[0][i].as_secs_f64() / sum_at(i))
                .collect(),
        ),
        target,
    }
}

fn print(title: &str, other: &str, rows: &[Row]) {
    println!();
    println!("{title}");
    println!(
        "{:<40} {:>12} {:>14} {:>7} {:>7}",
        "operation", "machine", other, "ratio", "target"
    );
    println!("{}", "-".repeat(86));
    for row in rows {
        let verdict = if row.ratio <= row.target {
            "ok"
        } else {
            "MISSED"
        };
        println!(
            "{:<40} {:>12} {:>14} {:>7.3} {:>7}  {verdict}",
            row.name,
            format_duration(Duration::from_secs_f64(row.machine)),
            format_duration(Duration::from_secs_f64(row.other)),
            row.ratio,
            format!("≤{}", row.target),
        );
    }
}

/// The two tables for the machine on one kind of store.
fn tables(kind: Kind, python: Option<&mut python::Python>) {
    let mut encrypt = EncryptWorld::new(kind);
    let mut decrypt = DecryptWorld::new(kind, 0);
    let mut build = BuildWorld::new(kind);
    let (senders, each) = archive_shape();
    let mut catch_up = CatchUpWorld::new(kind, senders, each);
    let archive = format!("catch up {} messages", senders * each);
    let archive_extra = json!({"senders": senders, "per_sender": each});
    if let Some(py) = python {
        let mut rows = Vec::new();
        for (name, operation, extra, machine) in [
            (
                "encrypt to 3 JIDs x 3 devices",
                "encrypt",
                json!({}),
                &mut (|n| encrypt.machine(n)) as &mut dyn FnMut(usize) -> Duration,
            ),
            ("decrypt", "decrypt", json!({}), &mut |n| decrypt.machine(n)),
            (
                "build 10 sessions from bundles",
                "build",
                json!({}),
                &mut |n| build.machine(n),
            ),
            (archive.as_str(), "catch_up", archive_extra, &mut |n| {
                catch_up.machine(n)
            }),
        ] {
            let other = Box::new(|n| py.time(operation, &extra, n));
            rows.push(row(name, 0.1, machine, vec![(1.0, other)]));
        }
        print(
            &format!(
                "XMPP machine on {} / python-omemo SessionManager (timed inside Python)",
                kind.name()
            ),
            "python-omemo",
            &rows,
        );
        if kind == Kind::Full {
            println!(
                "(SQLite FULL waits for the disk at every commit, and python-omemo's storage is \
                 in memory: here the fsync per commit sets the machine's time, not the engine; \
                 the SQLite NORMAL and memory store tables hold the goal)"
            );
        }
    }

    let per_message = catch_up.replay_per_message();
    let rows = vec![
        {
            let (core, commit) = encrypt.core_and_commit();
            row(
                "encrypt to 3 JIDs x 3 devices",
                1.15,
                &mut |n| encrypt.machine(n),
                vec![(1.0, core), (1.0, commit)],
            )
        },
        {
            let (core, commit) = decrypt.core_and_commit();
            row(
                "decrypt",
                1.15,
                &mut |n| decrypt.machine(n),
                vec![(1.0, core), (1.0, commit)],
            )
        },
        {
            let (core, commit) = build.core_and_commit();
            row(
                "build 10 sessions (10 commits)",
                1.15,
                &mut |n| build.machine(n),
                vec![(10.0, core), (10.0, commit)],
            )
        },
        {
            let (core, commit) = catch_up.core_and_commit();
            row(
                &format!("{archive} ({} commits)", senders * each),
                1.15,
                &mut |n| catch_up.machine(n),
                vec![(1.0, core), (per_message, commit)],
            )
        },
    ];
    print(
        &format!(
            "XMPP machine on {0} / Σ core operations + one {0} commit of the same records",
            kind.name()
        ),
        "core+commit",
        &rows,
    );
}

/// The machine's decrypt with more sessions stored: it loads the sender's slot only.
fn by_sessions_stored(kind: Kind) {
    let mut slots = Vec::new();
    for sessions in [1, 9, 100] {
        let mut world = DecryptWorld::new(kind, sessions - 1);
        let (core, commit) = world.core_and_commit();
        slots.push(row(
            &format!("decrypt, {sessions} sessions stored"),
            1.15,
            &mut |n| world.machine(n),
            vec![(1.0, core), (1.0, commit)],
        ));
    }
    print(
        &format!(
            "The machine's decrypt on {} by sessions stored (core: the same sessions)",
            kind.name()
        ),
        "core+commit",
        &slots,
    );
}

criterion_group!(benches, machine_ops);
criterion_main!(benches);
