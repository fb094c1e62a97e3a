//! matrix-sdk-crypto's side: an `OlmMachine` on matrix-sdk-sqlite's crypto store (encrypted with
//! a passphrase, as olmo's records are sealed), given the sender's room key by key import; and
//! a sharer that learns its recipients from the harness's `/keys/query` and `/keys/claim`
//! responses (see `share`).

use std::path::Path;
use std::time::{Duration, Instant};

use matrix_sdk_common::ruma::api::client::keys::claim_keys::v3::Response as KeysClaimResponse;
use matrix_sdk_common::ruma::api::client::keys::get_keys::v3::Response as KeysQueryResponse;
use matrix_sdk_common::ruma::api::client::to_device::send_event_to_device::v3::Response as ToDeviceResponse;
use matrix_sdk_common::ruma::serde::Raw;
use matrix_sdk_common::ruma::{DeviceId, OwnedRoomId, OwnedUserId, UserId, device_id, user_id};
use matrix_sdk_crypto::types::events::room::encrypted::EncryptedEvent;
use matrix_sdk_crypto::types::requests::AnyOutgoingRequest;
use matrix_sdk_crypto::{
    DecryptionSettings, EncryptionSettings, OlmMachine, OlmMachineBuilder, TrustRequirement,
    decrypt_room_key_export,
};
use matrix_sdk_sqlite::SqliteCryptoStore;
use serde_json::{Value, json};

use crate::harness::Homeserver;

pub type Event = Raw<EncryptedEvent>;

/// A new machine on a new store in `dir`.
pub async fn open(dir: &Path) -> OlmMachine {
    open_as(dir, user_id!("@bob:example.org"), device_id!("BOBDEVICE")).await
}

async fn open_as(dir: &Path, user: &UserId, device: &DeviceId) -> OlmMachine {
    let store = SqliteCryptoStore::open(dir, Some("bench passphrase"))
        .await
        .unwrap();
    OlmMachineBuilder::new(user, device)
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

/// The SDK's sharer: a machine on a new store in `dir` that has queried the recipients' devices
/// and claimed an Olm session with each, through `hs` (the harness's JSON parsed into the ruma
/// responses the SDK takes).
pub struct Sharer {
    machine: OlmMachine,
    users: Vec<OwnedUserId>,
    room: OwnedRoomId,
}

pub async fn sharer(dir: &Path, hs: &mut Homeserver, users: &[String]) -> Sharer {
    let (me, my_device) = ("@dave:example.org", "DAVE");
    let machine = open_as(dir, user_id!("@dave:example.org"), device_id!("DAVE")).await;
    let users: Vec<OwnedUserId> = users
        .iter()
        .map(|u| OwnedUserId::try_from(u.as_str()).unwrap())
        .collect();
    machine
        .update_tracked_users(users.iter().map(|u| &**u))
        .await
        .unwrap();
    let mut queried = 0;
    for request in machine.outgoing_requests().await.unwrap() {
        if let AnyOutgoingRequest::KeysQuery(query) = request.request() {
            let body = json!({ "device_keys": query.device_keys });
            let reply = hs.handle(me, my_device, "/_matrix/client/v3/keys/query", &body);
            let mut response = KeysQueryResponse::new();
            response.device_keys = serde_json::from_value(reply["device_keys"].clone()).unwrap();
            machine
                .mark_request_as_sent(request.request_id(), &response)
                .await
                .unwrap();
            queried += response.device_keys.len();
        }
    }
    assert_eq!(queried, users.len());
    let (id, claim) = machine
        .get_missing_sessions(users.iter().map(|u| &**u))
        .await
        .unwrap()
        .unwrap();
    let body = json!({ "one_time_keys": claim.one_time_keys });
    let reply = hs.handle(me, my_device, "/_matrix/client/v3/keys/claim", &body);
    let response =
        KeysClaimResponse::new(serde_json::from_value(reply["one_time_keys"].clone()).unwrap());
    machine.mark_request_as_sent(&id, &response).await.unwrap();
    assert!(
        machine
            .get_missing_sessions(users.iter().map(|u| &**u))
            .await
            .unwrap()
            .is_none(),
        "matrix-sdk-crypto has a session with every recipient"
    );
    Sharer {
        machine,
        users,
        room: room_id(crate::share::ROOM),
    }
}

impl Sharer {
    /// Rotates the room key and shares it with every recipient: the time of that (see
    /// `share`'s comment), then the requests are marked as sent.
    pub async fn share(&self) -> Duration {
        let start = Instant::now();
        self.machine.discard_room_key(&self.room).await.unwrap();
        let requests = self
            .machine
            .share_room_key(
                &self.room,
                self.users.iter().map(|u| &**u),
                EncryptionSettings::default(),
            )
            .await
            .unwrap();
        let elapsed = start.elapsed();
        let sent: usize = requests
            .iter()
            .flat_map(|r| r.messages.values())
            .map(|devices| devices.len())
            .sum();
        assert_eq!(sent, self.users.len());
        for request in requests {
            self.machine
                .mark_request_as_sent(&request.txn_id, &ToDeviceResponse::new())
                .await
                .unwrap();
        }
        elapsed
    }
}
