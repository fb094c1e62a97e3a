//! Two bot workers sharing one device on one PostgreSQL database, under load: two OS processes
//! each drive an `olmo::matrix::Machine` on the same database at once, encrypting room messages
//! with the shared outbound Megolm session (rotating it now and then, which shares the new key
//! over Olm), and decrypting the room's incoming events. Then, from what the workers printed:
//! - no Megolm (session, index) and no Olm (ratchet key, chain index) was used twice;
//! - no key was lost: Bob receives every room key and decrypts every message the workers sent;
//! - no event was decrypted twice, and every incoming event was decrypted by one worker;
//! - the workers' commits met conflicts, which were retried.
//!
//! The parent does the one-time setup against the harness homeserver; the workers need no
//! server (they print what they would send). Each worker is this test binary re-run as a child,
//! as in `race.rs`.
//!
//! The same machines under failing writes, one commit at a time: `write_faults`; two workers of
//! one XMPP account: `xmpp_fleet`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod cluster;

#[path = "../../test-support/child.rs"]
mod child;

#[allow(dead_code)]
#[path = "../../../tests/matrix_machine/harness.rs"]
mod harness;
#[path = "../../test-support/matrix_world.rs"]
mod matrix_world;

#[allow(dead_code)]
#[path = "../../test-support/backends.rs"]
mod backends;
mod write_faults;
mod xmpp_fleet;

#[allow(dead_code)]
#[path = "../../../tests/xmpp_machine/server.rs"]
mod server;
#[path = "../../test-support/xmpp_world.rs"]
mod xmpp_world;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use backends::ConflictCounting;
use cluster::Cluster;
use harness::Homeserver;
use matrix_world::{flush, settings, sync};
use olmo::matrix::{AppRecord, Machine, MachineError, SyncChanges};
use olmo::megolm::MegolmMessage;
use olmo::olm::OlmMessage;
use olmo::persist::StorageKey;
use olmo::store::{Backend, MemoryStore, Sealer, StoreError, Txn, block_on};
use olmo::time::Timestamp;
use olmo_postgres::PostgresStore;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::{Value, json};
use zeroize::Zeroizing;

const ROOM: &str = "!fleet:example.org";
const BOT: &str = "@bot:example.org";
const BOB: &str = "@bob:example.org";
const NOW: Timestamp = Timestamp::from_millis(1_765_000_000_000);
/// Room events each worker sends.
const SENDS: usize = 120;
/// A worker rotates the room key after this many of its sends.
const ROTATE_EVERY: usize = 25;
/// Events Bob sent that the workers decrypt between them.
const INCOMING: usize = 200;
/// A worker left running by a failed parent stops by itself after this long.
const CHILD_LIFETIME: Duration = Duration::from_secs(120);

fn bot_key() -> StorageKey {
    StorageKey::from_bytes([51; 32])
}
/// Shares `machine`'s room key with the other member (claiming an Olm session first).
fn share<B: Backend>(hs: &mut Homeserver, machine: &Machine<B>, rng: &mut StdRng) {
    let members = [BOT, BOB];
    block_on(machine.update_tracked_users(&members, rng)).unwrap();
    flush(hs, machine, rng);
    if let Some(claim) = block_on(machine.missing_sessions(&members, rng)).unwrap() {
        let response = hs.handle(
            machine.user_id(),
            machine.device_id(),
            &claim.endpoint().1,
            &claim.body,
        );
        block_on(machine.mark_request_as_sent(&claim.id, &response, rng)).unwrap();
    }
    block_on(machine.share_room_key(ROOM, &members, &settings(), NOW, rng)).unwrap();
    flush(hs, machine, rng);
}

/// The bot's device on `url` and Bob's in memory, each holding the other's room key; Bob's
/// [`INCOMING`] room events.
fn set_up(url: &str, rng: &mut StdRng) -> (Machine<MemoryStore>, Vec<Value>) {
    let mut hs = Homeserver::new();
    hs.join(BOT, "BOT");
    hs.join(BOB, "BOB");
    let bot = block_on(Machine::open(
        PostgresStore::connect(url).unwrap(),
        &bot_key(),
        BOT,
        "BOT",
        rng,
    ))
    .unwrap();
    flush(&mut hs, &bot, rng);
    let bob_key = StorageKey::from_bytes([52; 32]);
    let bob = block_on(Machine::open(MemoryStore::new(), &bob_key, BOB, "BOB", rng)).unwrap();
    flush(&mut hs, &bob, rng);
    share(&mut hs, &bot, rng);
    sync(&mut hs, &bob, rng);
    share(&mut hs, &bob, rng);
    sync(&mut hs, &bot, rng);
    let incoming = (0..INCOMING)
        .map(|i| {
            let content = json!({"msgtype": "m.text", "body": format!("from bob {i}")});
            let sealed = block_on(bob.encrypt_room_event(
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
                "sender": BOB,
                "event_id": format!("$bob-{i}"),
                "origin_server_ts": NOW.as_millis() + i as u64,
                "content": sealed,
            })
        })
        .collect();
    (bob, incoming)
}

/// The worker's side of an event claim: a sealed record per event id, created by exactly one
/// worker (an insert that conflicts when the other worker's is there).
fn claim<B: Backend>(
    bot: &Machine<B>,
    sealer: &Sealer,
    event_id: &str,
) -> Result<bool, StoreError> {
    let mut txn = Txn::new(bot.backend(), sealer);
    let name = sealer.name("fleet.claims", &[event_id.as_bytes()]);
    txn.insert("fleet.claims", &name, 1, Zeroizing::new(Vec::new()));
    match block_on(txn.commit(&mut rand::rng())) {
        Ok(()) => Ok(true),
        Err(StoreError::Conflict(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Says the to-device requests waiting to be sent, and marks them sent.
fn send_to_device<B: Backend>(bot: &Machine<B>, rng: &mut StdRng) {
    for request in block_on(bot.outgoing_requests(rng)).unwrap() {
        if !request.endpoint().1.contains("/sendToDevice/") {
            continue;
        }
        child::say(&format!("todevice {}", request.body));
        match block_on(bot.mark_request_as_sent(&request.id, &json!({}), rng)) {
            // The other worker sent it too: the same bytes twice, not a key used twice.
            Ok(()) | Err(MachineError::UnknownRequest) => {}
            Err(e) => panic!("mark sent: {e}"),
        }
    }
}

/// Encrypts one room message, sharing a new room key first when the other worker rotated.
fn send<B: Backend>(bot: &Machine<B>, body: &str, rng: &mut StdRng) -> Result<(), MachineError> {
    let content = json!({"msgtype": "m.text", "body": body});
    loop {
        match block_on(bot.encrypt_room_event(
            ROOM,
            "m.room.message",
            &content,
            &settings(),
            NOW,
            rng,
        )) {
            Ok(sealed) => {
                child::say(&format!("sealed {sealed}"));
                return Ok(());
            }
            Err(MachineError::Encrypt(_)) => {
                block_on(bot.share_room_key(ROOM, &[BOT, BOB], &settings(), NOW, rng))?;
                send_to_device(bot, rng);
            }
            Err(e) => return Err(e),
        }
    }
}

#[test]
fn worker_child() {
    let Some(url) = child::database("worker") else {
        return;
    };
    let conflicts = Arc::new(AtomicU64::new(0));
    let store = ConflictCounting::new(
        PostgresStore::connect(url.to_str().unwrap()).unwrap(),
        Arc::clone(&conflicts),
    );
    let mut rng = StdRng::from_rng(&mut rand::rng());
    let bot = block_on(Machine::open(store, &bot_key(), BOT, "BOT", &mut rng)).unwrap();
    let sealer = Sealer::new(&StorageKey::from_bytes([53; 32]));
    child::say("open");
    let start = std::io::stdin().lines().next().unwrap().unwrap();
    let (worker, events) = start.split_once(' ').unwrap();
    let incoming: Vec<Value> = std::fs::read_to_string(events)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let started = Instant::now();
    let (mut sent, mut next_event, mut failed, mut claims_lost) = (0, 0, 0u64, 0u64);
    while (sent < SENDS || next_event < incoming.len()) && started.elapsed() < CHILD_LIFETIME {
        if sent < SENDS {
            if sent > 0 && sent % ROTATE_EVERY == 0 {
                block_on(bot.invalidate_room_key(ROOM, &mut rng)).unwrap();
            }
            match send(&bot, &format!("worker {worker} message {sent}"), &mut rng) {
                Ok(()) => sent += 1,
                // Conflicts beyond the machine's own retries: try again.
                Err(MachineError::Store(StoreError::Conflict(_))) => failed += 1,
                Err(e) => panic!("send failed: {e}"),
            }
        }
        // Two incoming events per send, so decrypts and sends overlap throughout.
        for _ in 0..2 {
            let Some(event) = incoming.get(next_event) else {
                break;
            };
            let id = event["event_id"].as_str().unwrap();
            match claim(&bot, &sealer, id) {
                Ok(false) => {
                    claims_lost += 1;
                    next_event += 1;
                }
                Ok(true) => {
                    let record = AppRecord {
                        table: "timeline".into(),
                        key: id.as_bytes().to_vec(),
                        value: Zeroizing::new(id.as_bytes().to_vec()),
                    };
                    let read =
                        block_on(bot.decrypt_room_event(ROOM, event, &[record], &mut rng)).unwrap();
                    child::say(&format!(
                        "decrypted {id} {}",
                        read.content["body"].as_str().unwrap()
                    ));
                    next_event += 1;
                }
                Err(StoreError::Conflict(_)) => failed += 1,
                Err(e) => panic!("claim failed: {e}"),
            }
        }
    }
    child::say(&format!("claims-lost {claims_lost}"));
    child::say(&format!("conflicts {}", conflicts.load(Ordering::SeqCst)));
    child::say(&format!("failed {failed}"));
}

/// (ratchet key, chain index) of an Olm message to Bob, and its body.
pub fn olm_key(content: &Value) -> ((Vec<u8>, u32), String) {
    let (_, ciphertext) = content["ciphertext"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .unwrap();
    let body = ciphertext["body"].as_str().unwrap().to_owned();
    let kind = u8::try_from(ciphertext["type"].as_u64().unwrap()).unwrap();
    let message = OlmMessage::from_base64_parts(kind, &body).unwrap();
    let inner = match &message {
        OlmMessage::PreKey(m) => m.message().clone(),
        OlmMessage::Normal(m) => m.clone(),
    };
    (
        (inner.ratchet_key().as_bytes().to_vec(), inner.chain_index()),
        body,
    )
}

#[test]
fn two_workers_on_one_database_never_reuse_or_lose_a_key_nor_decrypt_twice() {
    let Some(cluster) = Cluster::start_or_skip() else {
        return;
    };
    let url = cluster.connection_string();
    let mut rng = StdRng::seed_from_u64(0xf1ee7);
    let (bob, incoming) = set_up(&url, &mut rng);
    let events_file = cluster.dir().join("incoming.jsonl");
    let lines: String = incoming.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(&events_file, lines).unwrap();
    let starts = [0, 1].map(|w| format!("{w} {}", events_file.display()));
    let started = Instant::now();
    let outputs = child::race(
        "worker_child",
        "worker",
        Path::new(&url),
        [&starts[0], &starts[1]],
    );
    let elapsed = started.elapsed();

    let mut sealed = Vec::new();
    let mut to_device: BTreeMap<String, Value> = BTreeMap::new();
    let mut decrypted = Vec::new();
    let (mut conflicts, mut failed, mut claims_lost) = (0, 0, 0);
    for lines in &outputs {
        for said in lines.iter().filter_map(|l| child::said(l)) {
            if let Some(content) = said.strip_prefix("sealed ") {
                sealed.push(serde_json::from_str::<Value>(content).unwrap());
            } else if let Some(body) = said.strip_prefix("todevice ") {
                let body: Value = serde_json::from_str(body).unwrap();
                let content = body["messages"][BOB]["BOB"].clone();
                let (_, text) = olm_key(&content);
                to_device.insert(text, content);
            } else if let Some(rest) = said.strip_prefix("decrypted ") {
                decrypted.push(rest.to_owned());
            }
        }
        conflicts += child::count_of(lines, "conflicts ");
        failed += child::count_of(lines, "failed ");
        claims_lost += child::count_of(lines, "claims-lost ");
    }

    // No Olm message key twice: distinct messages never share (ratchet key, chain index).
    let mut olm_keys = BTreeSet::new();
    for content in to_device.values() {
        let (key, _) = olm_key(content);
        assert!(olm_keys.insert(key.clone()), "Olm key {key:?} used twice");
    }
    // Bob gets every room key, in chain order.
    let mut room_keys: Vec<&Value> = to_device.values().collect();
    room_keys.sort_by_key(|c| olm_key(c).0.1);
    let events: Vec<Value> = room_keys
        .iter()
        .map(|content| json!({"type": "m.room.encrypted", "sender": BOT, "content": content}))
        .collect();
    let changes = SyncChanges {
        to_device_events: &events,
        ..Default::default()
    };
    block_on(bob.receive_sync_changes(changes, &[], &mut rng)).unwrap();

    // No Megolm (session, index) twice, and Bob decrypts every message sent.
    let mut megolm_keys = BTreeSet::new();
    let mut timeline = Vec::new();
    for (i, content) in sealed.iter().enumerate() {
        let session = content["session_id"].as_str().unwrap().to_owned();
        let index = MegolmMessage::from_base64(content["ciphertext"].as_str().unwrap())
            .unwrap()
            .message_index();
        assert!(
            megolm_keys.insert((session.clone(), index)),
            "Megolm ({session}, {index}) used twice"
        );
        timeline.push(json!({
            "type": "m.room.encrypted",
            "sender": BOT,
            "event_id": format!("$bot-{i}"),
            "origin_server_ts": NOW.as_millis(),
            "content": content,
        }));
    }
    assert_eq!(
        sealed.len(),
        2 * SENDS,
        "a worker did not send all its messages"
    );
    for chunk in timeline.chunks(100) {
        for result in block_on(bob.decrypt_room_events(ROOM, chunk, &[], &mut rng)).unwrap() {
            let read = result.expect("Bob decrypts every message a worker sent");
            assert!(
                read.content["body"]
                    .as_str()
                    .unwrap()
                    .starts_with("worker ")
            );
        }
    }

    // Every incoming event decrypted, once, to what Bob wrote.
    let mut ids: Vec<&str> = decrypted
        .iter()
        .map(|d| d.split_once(' ').unwrap().0)
        .collect();
    for line in &decrypted {
        let (id, body) = line.split_once(' ').unwrap();
        assert_eq!(body, format!("from bob {}", id.trim_start_matches("$bob-")));
    }
    ids.sort_unstable();
    let before = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), before, "an event was decrypted twice");
    assert_eq!(ids.len(), INCOMING, "an incoming event was not decrypted");

    println!(
        "2 workers x ({SENDS} sends, rotation every {ROTATE_EVERY}) + {INCOMING} incoming events \
         on PostgreSQL in {elapsed:?}: {} Megolm sessions, {} Olm messages, {conflicts} commit \
         conflicts retried by the machine, {failed} operations retried by the workers, \
         {claims_lost} events left to the other worker",
        megolm_keys
            .iter()
            .map(|(s, _)| s)
            .collect::<BTreeSet<_>>()
            .len(),
        to_device.len(),
    );
    assert!(conflicts > 0, "the workers never met: nothing was tested");
}
