//! The PostgreSQL store beside SQLite, through the Matrix machine on a cluster the bench starts
//! (fsync and synchronous_commit on, as SQLite's `synchronous=FULL`):
//! - a bot's steady state: one commit per decrypted room message (the replay record and the
//!   application's own record of the event, together);
//! - a batch import: a key export of many sessions imported in one commit.
//!
//! `OLMO_BENCH_QUICK=1` shortens both; run by `cargo test` (no `--bench`) it is a smoke test.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/cluster/mod.rs"]
mod cluster;

use std::time::{Duration, Instant};

use olmo::matrix::{AppRecord, MEGOLM_V1, Machine};
use olmo::megolm::{
    ExportedRoomKey, GroupSession, InboundGroupSession, Timestamp, encrypt_key_export,
};
use olmo::persist::StorageKey;
use olmo::store::{Backend, block_on};
use olmo_postgres::PostgresStore;
use olmo_sqlite::SqliteStore;
use serde_json::{Value, json};
use zeroize::Zeroizing;

const ROOM: &str = "!bench:example.org";
const BOT: &str = "@bot:example.org";
const SENDER: &str = "@alice:example.org";
const SENDER_KEY: &str = "3v0Gw8aJ5aBvBEnS1N4nXK0HOqDqs7fQ8O/kxhQWRFM";
const PASSPHRASE: &str = "bench";

fn smoke() -> bool {
    !std::env::args().any(|a| a == "--bench")
}

/// (messages decrypted, sessions imported) per measurement.
fn sizes() -> (usize, usize) {
    if smoke() {
        (10, 20)
    } else if std::env::var("OLMO_BENCH_QUICK").is_ok_and(|v| v == "1") {
        (200, 1_000)
    } else {
        (2_000, 10_000)
    }
}

/// An export of `count` sessions; the first is the one `room_messages` encrypts with.
fn key_export(count: usize, first: &GroupSession) -> String {
    let keys: Vec<ExportedRoomKey> = std::iter::once(first.session_key())
        .chain((1..count).map(|_| GroupSession::new(Timestamp::from_millis(0)).session_key()))
        .map(|key| {
            let exported = InboundGroupSession::new(&key).export_at_first_known_index();
            ExportedRoomKey::new(ROOM, SENDER_KEY, exported)
        })
        .collect();
    // One PBKDF2 round: the bench times the store, not the passphrase.
    encrypt_key_export(&keys, PASSPHRASE, 1)
}

fn room_messages(session: &mut GroupSession, count: usize) -> Vec<Value> {
    (0..count)
        .map(|i| {
            let payload = json!({"type": "m.room.message", "room_id": ROOM,
                "content": {"msgtype": "m.text", "body": format!("message {i}")}});
            let message = session.encrypt(payload.to_string().as_bytes()).unwrap();
            json!({
                "type": "m.room.encrypted",
                "sender": SENDER,
                "event_id": format!("$event-{i}"),
                "origin_server_ts": 1_765_000_000_000u64 + i as u64,
                "content": {
                    "algorithm": MEGOLM_V1,
                    "sender_key": SENDER_KEY,
                    "ciphertext": message.to_base64(),
                    "session_id": session.session_id(),
                    "device_id": "ALICE",
                },
            })
        })
        .collect()
}

/// (time per decrypted message, time of the import) on `store`.
fn measure<B: Backend>(store: B, export: &str, events: &[Value]) -> (Duration, Duration) {
    let rng = &mut rand::rng();
    let key = StorageKey::from_bytes([5; 32]);
    let bot = block_on(Machine::open(store, &key, BOT, "BOT", rng)).unwrap();
    let started = Instant::now();
    block_on(bot.import_room_keys(export, PASSPHRASE, &mut |_, _| {}, rng)).unwrap();
    let import = started.elapsed();
    let started = Instant::now();
    for event in events {
        let id = event["event_id"].as_str().unwrap();
        let record = AppRecord {
            table: "timeline".into(),
            key: id.as_bytes().to_vec(),
            value: Zeroizing::new(id.as_bytes().to_vec()),
        };
        block_on(bot.decrypt_room_event(ROOM, event, &[record], rng)).unwrap();
    }
    (started.elapsed() / events.len() as u32, import)
}

fn main() {
    let Some(cluster) = cluster::Cluster::start_or_skip() else {
        return;
    };
    let (messages, sessions) = sizes();
    let mut session = GroupSession::new(Timestamp::from_millis(0));
    let export = key_export(sessions, &session);
    let events = room_messages(&mut session, messages);

    let url = cluster.create_database("bench");
    let (pg_decrypt, pg_import) = measure(PostgresStore::connect(&url).unwrap(), &export, &events);
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(dir.path().join("bench.sqlite3")).unwrap();
    let (sqlite_decrypt, sqlite_import) = measure(sqlite, &export, &events);

    if smoke() {
        return; // figures from a debug build are noise, and the test run ends with its summary
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!();
    println!(
        "{:<44} {:>12} {:>12} {:>7}",
        "store (machine, durable commits)", "PostgreSQL", "SQLite", "ratio"
    );
    println!("{}", "-".repeat(78));
    println!(
        "{:<44} {:>9.3} ms {:>9.3} ms {:>7.2}",
        format!("decrypt one message, one commit (x{messages})"),
        ms(pg_decrypt),
        ms(sqlite_decrypt),
        pg_decrypt.as_secs_f64() / sqlite_decrypt.as_secs_f64()
    );
    println!(
        "{:<44} {:>9.1} ms {:>9.1} ms {:>7.2}",
        format!("import {sessions} sessions, one commit"),
        ms(pg_import),
        ms(sqlite_import),
        pg_import.as_secs_f64() / sqlite_import.as_secs_f64()
    );
    println!(
        "(PostgreSQL over TCP on 127.0.0.1, one machine; {:.0} and {:.0} sessions/s imported)",
        sessions as f64 / pg_import.as_secs_f64(),
        sessions as f64 / sqlite_import.as_secs_f64()
    );
}
