//! olmo's Matrix machine on olmo-sqlite beside matrix-sdk-crypto's `OlmMachine` on
//! matrix-sdk-sqlite, in one run (issue 10's benchmarks).
//!
//! Both sides decrypt the same room events, written by one Megolm session of a sending device
//! built from olmo's primitives ([`sender`]). olmo's machine receives the room key over Olm as a
//! to-device `m.room_key`; matrix-sdk-crypto imports it from a key export. Both stores encrypt
//! their records (olmo's sealer; the SDK's store passphrase).
//!
//! Rows with a ratio alternate batches of the two sides (`benches/common/summary.rs`); the key
//! import row is each machine's own import of an export file into an empty store; the share row
//! rotates and shares a room key with 100 devices over Olm sessions set up beforehand
//! ([`share`]). Then olmo-only rows: reopening a store of 200,000 inbound sessions and
//! decrypting one event, one decrypted message's commit on a store opened `FULL` and one
//! opened `NORMAL` (the same: a decrypt's commit is loss-tolerant, `NORMAL` in both), and bytes
//! written while idle.
//!
//! `OLMO_BENCH_QUICK=1` shrinks every size so the run takes seconds; `cargo test` (no
//! `--bench`) runs it once with tiny sizes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../../common/summary.rs"]
#[allow(dead_code)]
mod summary;

#[path = "../../../tests/matrix_machine/harness.rs"]
#[allow(dead_code)]
mod harness;
#[path = "machine/olmo_side.rs"]
mod olmo_side;
#[path = "machine/sdk_side.rs"]
mod sdk_side;
#[path = "machine/sender.rs"]
mod sender;
#[path = "machine/share.rs"]
mod share;

use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion};
use olmo::megolm::KEY_EXPORT_DEFAULT_ROUNDS;
use olmo_sqlite::Durability;
use serde_json::Value;
use summary::{batch_runner, budget, configure, format_duration, quick, row, smoke_test};
use tempfile::TempDir;
use tokio::runtime::Runtime;

use sender::Sender;

const ROOM: &str = "!bench:example.org";
const PASSPHRASE: &str = "bench passphrase";

/// (full, quick, `cargo test`) sizes.
fn size(full: usize, quick_size: usize, smoke: usize) -> usize {
    if smoke_test() {
        smoke
    } else if quick() {
        quick_size
    } else {
        full
    }
}

fn backlog_len() -> usize {
    size(10_000, 1_000, 20)
}
fn import_len() -> usize {
    size(10_000, 1_000, 20)
}
fn big_store_sessions() -> usize {
    size(200_000, 2_000, 50)
}
fn event_pool_len() -> usize {
    size(60_000, 6_000, 40)
}
fn export_rounds() -> u32 {
    if quick() {
        1_000
    } else {
        KEY_EXPORT_DEFAULT_ROUNDS
    }
}
/// Events per `decrypt_room_events` call in the backlog row.
const PAGE: usize = 1_000;

/// Hands out distinct events, so each call decrypts a message its machine has not seen (a
/// second decryption finds its replay record and commits nothing).
struct Pool<T> {
    items: Vec<T>,
    next: Cell<usize>,
}

impl<T: Clone> Pool<T> {
    fn new(items: Vec<T>) -> Self {
        Self {
            items,
            next: Cell::new(0),
        }
    }
    fn take(&self) -> T {
        let i = self.next.get();
        self.next.set(i + 1);
        self.items
            .get(i)
            .expect("the event pool is large enough for every run mode")
            .clone()
    }
}

fn temp() -> TempDir {
    tempfile::tempdir().unwrap()
}

fn db(dir: &TempDir) -> PathBuf {
    dir.path().join("olmo.sqlite3")
}

/// A line of the summary beside `summary::print_table`: one side's figure against a goal.
struct Line(String);

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The SDK's store hands its connections back to the runtime when dropped.
    let _context = rt.enter();
    let mut sender = Sender::new();
    let pool_events: Vec<Value> = (0..event_pool_len())
        .map(|_| sender.room_event(ROOM))
        .collect();
    let backlog: Vec<Value> = (0..backlog_len())
        .map(|_| sender.room_event(ROOM))
        .collect();
    let room_file = olmo::megolm::encrypt_key_export(&[sender.exported_key(ROOM)], PASSPHRASE, 1);
    let sdk_pool: Vec<sdk_side::Event> = pool_events.iter().map(sdk_side::event).collect();
    let sdk_backlog: Vec<sdk_side::Event> = backlog.iter().map(sdk_side::event).collect();
    let room = sdk_side::room_id(ROOM);
    let sender = RefCell::new(sender);

    // Persistent machines for the per-event rows.
    let olmo_dir = temp();
    let normal_dir = temp();
    let sdk_dir = temp();
    let rooms = [ROOM.to_owned()];
    let bob = rt.block_on(olmo_side::bob_with_keys(
        &db(&olmo_dir),
        Durability::Full,
        &mut sender.borrow_mut(),
        &rooms,
    ));
    let bob_normal = rt.block_on(olmo_side::bob_with_keys(
        &db(&normal_dir),
        Durability::Normal,
        &mut sender.borrow_mut(),
        &rooms,
    ));
    let sdk = rt.block_on(async {
        let machine = sdk_side::open(sdk_dir.path()).await;
        assert_eq!(
            sdk_side::import_key_export(&machine, &room_file, PASSPHRASE).await,
            1
        );
        machine
    });

    // One pool per machine, shared by every row that machine decrypts in.
    let olmo_pool = Pool::new(pool_events.clone());
    let normal_pool = Pool::new(pool_events.clone());
    let sdk_pool = Pool::new(sdk_pool);

    // Criterion's view of the per-event rows.
    let mut c = Criterion::default().configure_from_args();
    {
        let mut group = c.benchmark_group("decrypt one room event");
        // Short enough that the event pool outlasts the faster side.
        group
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3));
        configure(&mut group);
        let mut rng = rand::rng();
        group.bench_function("olmo", |b| {
            b.iter_batched(
                || olmo_pool.take(),
                |event| rt.block_on(olmo_side::decrypt(&bob, ROOM, &event, &mut rng)),
                BatchSize::SmallInput,
            )
        });
        group.bench_function("matrix-sdk-crypto", |b| {
            b.iter_batched(
                || sdk_pool.take(),
                |event| rt.block_on(sdk_side::decrypt(&sdk, &room, &event)),
                BatchSize::SmallInput,
            )
        });
        group.finish();
    }
    c.final_summary();

    // The side-by-side summary.
    let mut rows = Vec::new();
    let mut rng = rand::rng();
    let mut rng2 = rand::rng();
    rows.push(row(
        "decrypt one room event",
        0.5,
        budget(),
        batch_runner(
            || olmo_pool.take(),
            |e| rt.block_on(olmo_side::decrypt(&bob, ROOM, &e, &mut rng)),
        ),
        batch_runner(
            || sdk_pool.take(),
            |e| rt.block_on(sdk_side::decrypt(&sdk, &room, &e)),
        ),
    ));
    rows.push(row(
        format!("backlog of {} events", backlog.len()),
        0.2,
        budget(),
        batch_runner(
            || {
                let dir = temp();
                let bob = rt.block_on(olmo_side::bob_with_keys(
                    &db(&dir),
                    Durability::Full,
                    &mut sender.borrow_mut(),
                    &rooms,
                ));
                (dir, bob)
            },
            |(dir, bob)| {
                rt.block_on(olmo_side::decrypt_backlog(&bob, ROOM, &backlog, PAGE));
                (dir, bob)
            },
        ),
        batch_runner(
            || {
                let dir = temp();
                let machine = rt.block_on(async {
                    let machine = sdk_side::open(dir.path()).await;
                    sdk_side::import_key_export(&machine, &room_file, PASSPHRASE).await;
                    machine
                });
                (dir, machine)
            },
            |(dir, machine)| {
                rt.block_on(sdk_side::decrypt_backlog(&machine, &room, &sdk_backlog));
                (dir, machine)
            },
        ),
    ));
    let import_count = import_len();
    let import_file =
        sender::export_file(&sender.borrow(), import_count, PASSPHRASE, export_rounds());
    let import_row = row(
        format!("import {import_count} keys"),
        f64::INFINITY,
        budget(),
        batch_runner(
            || {
                let dir = temp();
                let bob = rt.block_on(olmo_side::open(&db(&dir), Durability::Full));
                (dir, bob)
            },
            |(dir, bob)| {
                let n = rt.block_on(olmo_side::import_key_export(&bob, &import_file, PASSPHRASE));
                assert_eq!(n, import_count);
                (dir, bob)
            },
        ),
        batch_runner(
            || {
                let dir = temp();
                let machine = rt.block_on(sdk_side::open(dir.path()));
                (dir, machine)
            },
            |(dir, machine)| {
                let n = rt.block_on(sdk_side::import_key_export(
                    &machine,
                    &import_file,
                    PASSPHRASE,
                ));
                assert_eq!(n, import_count);
                (dir, machine)
            },
        ),
    );
    let (olmo_import, sdk_import) = import_row.times();
    rows.push(import_row);

    let mut lines = Vec::new();
    let keys_per_second = |d: Duration| import_count as f64 / d.as_secs_f64();
    lines.push(Line(format!(
        "key import ({} PBKDF2 rounds): olmo {:.0} keys/s, matrix-sdk-crypto {:.0} keys/s (goal: olmo ≥ 5000 keys/s) {}",
        export_rounds(),
        keys_per_second(olmo_import),
        keys_per_second(sdk_import),
        verdict(keys_per_second(olmo_import) >= 5_000.0),
    )));

    // olmo only: a store opened FULL against one opened NORMAL. A decrypt's commit is
    // loss-tolerant, so it runs under NORMAL in both: the rows should match.
    let durability = row(
        "decrypt one event: FULL vs NORMAL",
        f64::INFINITY,
        budget(),
        batch_runner(
            || olmo_pool.take(),
            |e| rt.block_on(olmo_side::decrypt(&bob, ROOM, &e, &mut rng)),
        ),
        batch_runner(
            || normal_pool.take(),
            |e| rt.block_on(olmo_side::decrypt(&bob_normal, ROOM, &e, &mut rng2)),
        ),
    );
    let (full, normal) = durability.times();
    lines.push(Line(format!(
        "olmo decrypt one event with its commit: store opened FULL {}, NORMAL {} (the decrypt's \
         commit is loss-tolerant, so both run it with synchronous=NORMAL)",
        format_duration(full),
        format_duration(normal),
    )));

    let devices = size(100, 100, 5);
    rows.push(share_row(&rt, devices));

    lines.push(big_store(&rt, &mut sender.borrow_mut()));
    lines.push(idle_bytes(&rt, &bob, &olmo_dir));

    if smoke_test() {
        return;
    }
    summary::print_table_against(&rows, "olmo", "matrix-sdk");
    for Line(line) in &lines {
        println!("{line}");
    }
}

/// Rotating and sharing a room key with `devices` devices over established Olm sessions, both
/// sides against the same recipients (what is timed: `share`'s comment).
fn share_row(rt: &Runtime, devices: usize) -> summary::Row {
    let (olmo_dir, sdk_dir) = (temp(), temp());
    let (olmo, sdk) = rt.block_on(async {
        let mut recipients = share::recipients(devices).await;
        let olmo = share::olmo_sharer(&db(&olmo_dir), &mut recipients).await;
        let sdk = sdk_side::sharer(sdk_dir.path(), &mut recipients.hs, &recipients.users).await;
        (olmo, sdk)
    });
    row(
        format!("share a room key, {devices} devices"),
        f64::INFINITY,
        budget(),
        share::runner(|| rt.block_on(olmo.share())),
        share::runner(|| rt.block_on(sdk.share())),
    )
}

fn verdict(ok: bool) -> &'static str {
    if ok { "ok" } else { "MISSED" }
}

/// Opens a store holding `big_store_sessions()` inbound sessions and decrypts one event: the
/// median of a few cold opens (goal ≤ 200 ms).
fn big_store(rt: &Runtime, sender: &mut Sender) -> Line {
    let sessions = big_store_sessions();
    let dir = temp();
    let mut rooms: Vec<String> = (1..sessions)
        .map(|i| format!("!filler{i}:example.org"))
        .collect();
    rooms.push(ROOM.to_owned());
    let setup = Instant::now();
    drop(rt.block_on(olmo_side::bob_with_keys(
        &db(&dir),
        Durability::Full,
        sender,
        &rooms,
    )));
    let setup = setup.elapsed();
    let mut rng = rand::rng();
    let mut times: Vec<Duration> = (0..5)
        .map(|_| {
            let event = sender.room_event(ROOM);
            let start = Instant::now();
            rt.block_on(async {
                let bob = olmo_side::open(&db(&dir), Durability::Full).await;
                olmo_side::decrypt(&bob, ROOM, &event, &mut rng).await;
            });
            start.elapsed()
        })
        .collect();
    times.sort();
    let median = times[times.len() / 2];
    Line(format!(
        "olmo open a store of {sessions} inbound sessions + decrypt one event: {} (goal ≤ 200 ms) {} \
         [filling it over Olm took {:.1} s]",
        format_duration(median),
        verdict(median <= Duration::from_millis(200)),
        setup.as_secs_f64(),
    ))
}

/// Bytes the process writes while the machine sits open and idle (goal 0): `wchar` of
/// /proc/self/io and the database files' sizes, before and after a pause.
fn idle_bytes(rt: &Runtime, bob: &olmo_side::Bob, dir: &TempDir) -> Line {
    // One operation first, so any deferred work would show in the pause.
    rt.block_on(async {
        let _ = bob.outgoing_requests(&mut rand::rng()).await;
    });
    let files = || -> u64 {
        std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum()
    };
    let (io_before, files_before) = (written_bytes(), files());
    std::thread::sleep(if quick() {
        Duration::from_millis(200)
    } else {
        Duration::from_secs(2)
    });
    let (io_after, files_after) = (written_bytes(), files());
    let io = io_after.zip(io_before).map(|(a, b)| a - b);
    Line(format!(
        "olmo bytes written while idle: {} by the process, {} bytes of file growth (goal 0) {}",
        io.map_or("unknown".to_owned(), |b| b.to_string()),
        files_after as i64 - files_before as i64,
        verdict(io.unwrap_or(0) == 0 && files_after == files_before),
    ))
}

fn written_bytes() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("wchar:"))
        .and_then(|v| v.trim().parse().ok())
}
