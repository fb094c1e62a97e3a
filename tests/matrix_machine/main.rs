//! The Matrix machine (`olmo::matrix`): olmo devices talking through a homeserver played by the
//! test harness (keys, queries, claims, to-device, room timelines), each over its own store.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod bad_input;
mod batch;
mod commits;
#[path = "../common/mod.rs"]
mod common;
mod conversation;
mod harness;
mod nio;
mod rooms;
mod write_faults;

use common::rng::TestRng;
use harness::Homeserver;
use olmo::matrix::{
    DecryptedRoomEvent, Machine, RoomKeyShare, RoomSettings, SyncChanges, ToDeviceOutcome,
    UnableToDecrypt,
};
use olmo::persist::StorageKey;
use olmo::store::{Backend, MemoryStore, block_on};
use olmo::time::Timestamp;
use serde_json::{Value, json};

pub const NOW: Timestamp = Timestamp::from_millis(1_765_000_000_000);

pub fn settings() -> RoomSettings {
    RoomSettings::from_encryption_content(&json!({"algorithm": "m.megolm.v1.aes-sha2"})).unwrap()
}

/// One olmo device and its store.
pub struct Client<B: Backend = MemoryStore> {
    pub machine: Machine<B>,
    pub rng: TestRng,
    sent: u64,
}

impl Client<MemoryStore> {
    pub fn new(hs: &mut Homeserver, user: &str, device: &str, seed: u64) -> Self {
        Self::open(hs, MemoryStore::new(), user, device, seed)
    }
}

impl<B: Backend> Client<B> {
    pub fn open(hs: &mut Homeserver, store: B, user: &str, device: &str, seed: u64) -> Self {
        hs.join(user, device);
        let mut rng = TestRng::new(seed);
        let key = StorageKey::from_bytes([seed as u8; 32]);
        let machine = block_on(Machine::open(store, &key, user, device, &mut rng)).unwrap();
        let mut client = Self {
            machine,
            rng,
            sent: 0,
        };
        client.flush(hs);
        client
    }

    pub fn user(&self) -> String {
        self.machine.user_id().to_owned()
    }

    /// Sends every outgoing request and hands back the responses, until none are left.
    pub fn flush(&mut self, hs: &mut Homeserver) {
        for _ in 0..10 {
            let requests = block_on(self.machine.outgoing_requests(&mut self.rng)).unwrap();
            if requests.is_empty() {
                return;
            }
            for request in requests {
                let (_, path) = request.endpoint();
                let response = hs.handle(
                    self.machine.user_id(),
                    self.machine.device_id(),
                    &path,
                    &request.body,
                );
                block_on(
                    self.machine
                        .mark_request_as_sent(&request.id, &response, &mut self.rng),
                )
                .unwrap();
            }
        }
        panic!("requests kept coming");
    }

    pub fn sync(&mut self, hs: &mut Homeserver) -> Vec<ToDeviceOutcome> {
        let sync = hs.sync(self.machine.user_id(), self.machine.device_id());
        let changes = SyncChanges {
            to_device_events: &sync.to_device,
            changed_users: &sync.changed,
            left_users: &[],
            one_time_key_count: Some(sync.one_time_key_count),
            unused_fallback_key_types: Some(&sync.unused_fallback_key_types),
        };
        let outcomes = block_on(
            self.machine
                .receive_sync_changes(changes, &[], &mut self.rng),
        )
        .unwrap();
        self.flush(hs);
        outcomes
    }

    /// Tracks the members, queries their devices, claims sessions, shares the room key and
    /// delivers it.
    pub fn share(&mut self, hs: &mut Homeserver, room: &str, members: &[&str]) -> RoomKeyShare {
        block_on(self.machine.update_tracked_users(members, &mut self.rng)).unwrap();
        self.flush(hs);
        if let Some(claim) =
            block_on(self.machine.missing_sessions(members, &mut self.rng)).unwrap()
        {
            let (_, path) = claim.endpoint();
            let response = hs.handle(
                self.machine.user_id(),
                self.machine.device_id(),
                &path,
                &claim.body,
            );
            block_on(
                self.machine
                    .mark_request_as_sent(&claim.id, &response, &mut self.rng),
            )
            .unwrap();
        }
        let share =
            block_on(
                self.machine
                    .share_room_key(room, members, &settings(), NOW, &mut self.rng),
            )
            .unwrap();
        self.flush(hs);
        share
    }

    /// A room event as the server would hand it to others.
    pub fn send(&mut self, room: &str, body: &str) -> Value {
        let content = json!({"msgtype": "m.text", "body": body});
        let encrypted = block_on(self.machine.encrypt_room_event(
            room,
            "m.room.message",
            &content,
            &settings(),
            NOW,
            &mut self.rng,
        ))
        .unwrap();
        self.sent += 1;
        json!({
            "type": "m.room.encrypted",
            "sender": self.machine.user_id(),
            "event_id": format!("${}-{}", self.machine.device_id(), self.sent),
            "origin_server_ts": NOW.as_millis() + self.sent,
            "content": encrypted,
        })
    }

    pub fn read(
        &mut self,
        room: &str,
        event: &Value,
    ) -> Result<DecryptedRoomEvent, UnableToDecrypt> {
        block_on(
            self.machine
                .decrypt_room_event(room, event, &[], &mut self.rng),
        )
    }
}

pub fn body(event: &DecryptedRoomEvent) -> &str {
    event.content["body"].as_str().unwrap()
}
