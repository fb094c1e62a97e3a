//! olmo's side: a Matrix machine on olmo-sqlite, given room keys over Olm by [`Sender`], and
//! its key import.

use std::path::Path;

use olmo::matrix::{AppRecord, Machine, SyncChanges};
use olmo::persist::StorageKey;
use olmo_sqlite::{Durability, Options, SqliteStore};
use rand::rngs::ThreadRng;
use serde_json::{Value, json};

use crate::sender::Sender;

pub const BOB: &str = "@bob:example.org";
pub const BOB_DEVICE: &str = "BOBDEVICE";
pub const STORAGE_KEY: [u8; 32] = [7; 32];

pub type Bob = Machine<SqliteStore>;

/// Opens (or creates) Bob's machine in the SQLite file at `path`.
pub async fn open(path: &Path, durability: Durability) -> Bob {
    let options = Options {
        durability,
        ..Options::default()
    };
    let store = SqliteStore::open_with(path, &options).unwrap();
    let key = StorageKey::from_bytes(STORAGE_KEY);
    Machine::open(store, &key, BOB, BOB_DEVICE, &mut rand::rng())
        .await
        .unwrap()
}

/// Uploads Bob's keys (to nobody) and returns one of his signed one-time keys.
pub async fn one_time_key(bob: &Bob) -> String {
    let mut rng = rand::rng();
    let mut found = None;
    for request in bob.outgoing_requests(&mut rng).await.unwrap() {
        if let Some(keys) = request.body.get("one_time_keys").and_then(Value::as_object) {
            found = keys
                .values()
                .find_map(|k| k.get("key").and_then(Value::as_str).map(str::to_owned));
        }
        let count = json!({"one_time_key_counts": {"signed_curve25519": 50}});
        bob.mark_request_as_sent(&request.id, &count, &mut rng)
            .await
            .unwrap();
    }
    found.expect("the first upload carries one-time keys")
}

/// Delivers to-device events to Bob, as many syncs as the machine's per-sync bound needs.
pub async fn deliver(bob: &Bob, events: &[Value]) {
    let mut rng = rand::rng();
    for chunk in events.chunks(1_000) {
        let changes = SyncChanges {
            to_device_events: chunk,
            changed_users: &[],
            left_users: &[],
            one_time_key_count: None,
            unused_fallback_key_types: None,
        };
        bob.receive_sync_changes(changes, &[], &mut rng)
            .await
            .unwrap();
    }
}

/// Bob with `sender`'s room keys for `rooms` (one sync per thousand keys).
pub async fn bob_with_keys(
    path: &Path,
    durability: Durability,
    sender: &mut Sender,
    rooms: &[String],
) -> Bob {
    let bob = open(path, durability).await;
    let otk = one_time_key(&bob).await;
    sender.connect(&bob, &otk);
    let events: Vec<Value> = rooms
        .iter()
        .map(|room| sender.room_key_event(room))
        .collect();
    deliver(&bob, &events).await;
    bob
}

/// Decrypts one event and checks it decrypted.
pub async fn decrypt(bob: &Bob, room: &str, event: &Value, rng: &mut ThreadRng) {
    let app: &[AppRecord] = &[];
    let decrypted = bob.decrypt_room_event(room, event, app, rng).await;
    assert!(decrypted.is_ok(), "olmo failed to decrypt: {decrypted:?}");
}

/// Decrypts a backlog in pages of `page` events (one commit each).
pub async fn decrypt_backlog(bob: &Bob, room: &str, events: &[Value], page: usize) {
    let mut rng = rand::rng();
    for chunk in events.chunks(page) {
        let results = bob
            .decrypt_room_events(room, chunk, &[], &mut rng)
            .await
            .unwrap();
        assert!(results.iter().all(Result::is_ok));
    }
}

/// What the olmo key-import row measures: the machine's own `import_room_keys` (the file
/// decrypted, every key's session id checked, one inbound session record per key, in one commit).
pub async fn import_key_export(bob: &Bob, file: &str, passphrase: &str) -> usize {
    bob.import_room_keys(file, passphrase, &mut |_, _| {}, &mut rand::rng())
        .await
        .unwrap()
        .imported
}
