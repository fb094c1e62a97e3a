//! matrix-sdk-crypto's side: an `OlmMachine` on matrix-sdk-sqlite's crypto store (encrypted with
//! a passphrase, as olmo's records are sealed), given the sender's room key by key import.

use std::path::Path;

use matrix_sdk_common::ruma::serde::Raw;
use matrix_sdk_common::ruma::{OwnedRoomId, device_id, user_id};
use matrix_sdk_crypto::types::events::room::encrypted::EncryptedEvent;
use matrix_sdk_crypto::{
    DecryptionSettings, OlmMachine, OlmMachineBuilder, TrustRequirement, decrypt_room_key_export,
};
use matrix_sdk_sqlite::SqliteCryptoStore;
use serde_json::Value;

pub type Event = Raw<EncryptedEvent>;

/// A new machine on a new store in `dir`.
pub async fn open(dir: &Path) -> OlmMachine {
    let store = SqliteCryptoStore::open(dir, Some("bench passphrase"))
        .await
        .unwrap();
    OlmMachineBuilder::new(user_id!("@bob:example.org"), device_id!("BOBDEVICE"))
        .with_crypto_store(store)
        .build()
        .await
        .unwrap()
}

pub fn room_id(room: &str) -> OwnedRoomId {
    OwnedRoomId::try_from(room).unwrap()
}

pub fn event(event: &Value) -> Event {
    Raw::from_json_string(event.to_string()).unwrap()
}

/// Reads a key export file and imports its keys; returns how many were imported.
pub async fn import_key_export(machine: &OlmMachine, file: &str, passphrase: &str) -> usize {
    let keys = decrypt_room_key_export(file.as_bytes(), passphrase).unwrap();
    let result = machine
        .store()
        .import_exported_room_keys(keys, |_, _| {})
        .await
        .unwrap();
    result.imported_count
}

fn settings() -> DecryptionSettings {
    DecryptionSettings {
        sender_device_trust_requirement: TrustRequirement::Untrusted,
    }
}

pub async fn decrypt(machine: &OlmMachine, room: &OwnedRoomId, event: &Event) {
    let decrypted = machine.decrypt_room_event(event, room, &settings()).await;
    assert!(decrypted.is_ok(), "matrix-sdk-crypto failed to decrypt");
}

pub async fn decrypt_backlog(machine: &OlmMachine, room: &OwnedRoomId, events: &[Event]) {
    for event in events {
        decrypt(machine, room, event).await;
    }
}
