//! olmo's side: a Matrix machine on olmo-sqlite, given room keys over Olm by [`Sender`], and
//! the bench-local key import (the machine has no import operation yet).

use std::path::Path;

use olmo::matrix::{AppRecord, Machine, SyncChanges};
use olmo::megolm::{ExportedRoomKey, InboundGroupSession, decrypt_key_export};
use olmo::persist::StorageKey;
use olmo::store::{Sealer, Txn};
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

/// The table the bench-local import writes.
const IMPORTED: &str = "bench.imported_sessions";

/// What the olmo key-import row measures, with public APIs only: decrypt the export file
/// (PBKDF2, HMAC, AES-CTR, JSON), check each key's session id, build its inbound session, and
/// write one sealed record per session (room, sender and claimed keys as JSON, the session key
/// at its first index) in one commit of the store under the machine.
pub async fn import_key_export(bob: &Bob, file: &str, passphrase: &str) -> usize {
    let keys: Vec<ExportedRoomKey> = decrypt_key_export(file, passphrase).unwrap();
    let sealer = Sealer::new(&StorageKey::from_bytes(STORAGE_KEY));
    let mut txn = Txn::new(bob.backend(), &sealer);
    let mut imported = 0;
    for key in &keys {
        if key.algorithm != olmo::matrix::MEGOLM_V1 || !key.session_id_matches() {
            continue;
        }
        let session = InboundGroupSession::import(&key.session_key);
        let meta = json!({
            "room_id": key.room_id,
            "sender_key": key.sender_key,
            "sender_claimed_keys": key.sender_claimed_keys,
            "first_known_index": session.first_known_index(),
        });
        let mut value = serde_json::to_vec(&meta).unwrap();
        value.extend_from_slice(&session.export_at_first_known_index().to_bytes());
        let name = sealer.name(
            IMPORTED,
            &[key.room_id.as_bytes(), key.session_id.as_bytes()],
        );
        txn.insert(IMPORTED, &name, 1, zeroize::Zeroizing::new(value));
        imported += 1;
    }
    txn.commit(&mut rand::rng()).await.unwrap();
    imported
}
