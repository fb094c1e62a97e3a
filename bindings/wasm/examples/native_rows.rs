//! The rows of `bench/bench.mjs` for olmo native (memory store, this thread), so the cost of
//! the WebAssembly build and the JavaScript boundary can be read off beside it:
//! `cargo run --release -p olmo-wasm --example native_rows` (OLMO_BENCH_QUICK=1: fewer rows).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Instant;

use olmo::matrix::Machine;
use olmo::megolm::{ExportedRoomKey, GroupSession, InboundGroupSession, encrypt_key_export};
use olmo::olm::Account;
use olmo::persist::StorageKey;
use olmo::store::{MemoryStore, block_on};
use olmo::time::Timestamp;
use serde_json::{Value, json};

const ROOM: &str = "!bench:example.org";

fn main() {
    let quick = std::env::var("OLMO_BENCH_QUICK").as_deref() == Ok("1");
    let (events_n, keys_n) = if quick { (500, 100) } else { (10_000, 1_000) };
    let now = Timestamp::from_millis(1_765_000_000_000);
    let sender = Account::new();
    let mut sessions: Vec<GroupSession> = (0..keys_n).map(|_| GroupSession::new(now)).collect();
    let keys: Vec<ExportedRoomKey> = sessions
        .iter()
        .map(|s| {
            let inbound = InboundGroupSession::new(&s.session_key());
            ExportedRoomKey::new(
                ROOM,
                sender.curve25519_key().to_base64(),
                inbound.export_at_first_known_index(),
            )
        })
        .collect();
    let events: Vec<Value> = (0..events_n)
        .map(|i| {
            let payload = json!({"type": "m.room.message", "content": {"msgtype": "m.text", "body": format!("message {i}")}, "room_id": ROOM});
            let ciphertext = sessions[0]
                .encrypt(payload.to_string().as_bytes())
                .unwrap()
                .to_base64();
            json!({
                "type": "m.room.encrypted", "sender": "@sender:example.org", "event_id": format!("$e{i}"),
                "origin_server_ts": 1_765_000_000_000u64 + i as u64, "room_id": ROOM,
                "content": {
                    "algorithm": "m.megolm.v1.aes-sha2", "sender_key": sender.curve25519_key().to_base64(),
                    "device_id": "SENDER", "session_id": sessions[0].session_id(), "ciphertext": ciphertext,
                },
            })
        })
        .collect();
    let file = encrypt_key_export(&keys, "bench", 1);
    let mut rng = rand::rng();
    let open = |n: u8, rng: &mut rand::rngs::ThreadRng| {
        let key = StorageKey::from_bytes([n; 32]);
        block_on(Machine::open(
            MemoryStore::new(),
            &key,
            "@reader:example.org",
            "NATIVE",
            rng,
        ))
        .unwrap()
    };

    let machine = open(1, &mut rng);
    let start = Instant::now();
    block_on(machine.import_room_keys(&file, "bench", &mut |_, _| {}, &mut rng)).unwrap();
    println!(
        "import {keys_n} room keys: {:.1} ms",
        start.elapsed().as_secs_f64() * 1e3
    );

    let start = Instant::now();
    for event in &events {
        block_on(machine.decrypt_room_event(ROOM, event, &[], &mut rng)).unwrap();
    }
    println!(
        "decrypt {events_n} events, one call each: {:.1} ms",
        start.elapsed().as_secs_f64() * 1e3
    );

    let batched = open(2, &mut rng);
    block_on(batched.import_room_keys(&file, "bench", &mut |_, _| {}, &mut rng)).unwrap();
    let start = Instant::now();
    let results = block_on(batched.decrypt_room_events(ROOM, &events, &[], &mut rng)).unwrap();
    assert!(results.iter().all(Result::is_ok));
    println!(
        "decrypt {events_n} events, one batch: {:.1} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
}
