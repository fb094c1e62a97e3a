//! Sharing a fresh room key with 100 devices over established Olm sessions, both sides. The
//! recipients are olmo machines in memory behind the test suite's homeserver harness, which
//! serves their uploaded device keys and one-time keys to olmo's sharer (its own JSON) and to
//! matrix-sdk-crypto's (ruma responses parsed from the same JSON: `sdk_side::sharer`).
//!
//! What is timed, on each side: rotating the room's outbound Megolm session and building the
//! `m.room_key` to-device requests for every device, which is one Olm encryption per device
//! over a session set up beforehand, and the store writes the call makes (olmo's SQLite store
//! opened `FULL`; the SDK's SQLite store as the other rows open it). Setting up the devices,
//! sessions and marking the to-device requests as sent are not timed.

use std::time::{Duration, Instant};

use olmo::matrix::{Machine, RoomSettings};
use olmo::persist::StorageKey;
use olmo::store::{Backend, MemoryStore};
use olmo_sqlite::{Durability, SqliteStore};
use serde_json::json;

use crate::harness::Homeserver;
use crate::sender::NOW;

pub const ROOM: &str = "!share:example.org";

/// The devices a room key is shared with, each the only device of its user, and the server
/// that holds their keys.
pub struct Recipients {
    pub hs: Homeserver,
    pub users: Vec<String>,
    /// Kept so the recipients' keys stay theirs (nothing decrypts here).
    _machines: Vec<Machine<MemoryStore>>,
}

/// Sends every request the machine has through the harness.
async fn flush<B: Backend>(hs: &mut Homeserver, machine: &Machine<B>) {
    let mut rng = rand::rng();
    for _ in 0..10 {
        let requests = machine.outgoing_requests(&mut rng).await.unwrap();
        if requests.is_empty() {
            return;
        }
        for request in requests {
            let (_, path) = request.endpoint();
            let response = hs.handle(machine.user_id(), machine.device_id(), &path, &request.body);
            machine
                .mark_request_as_sent(&request.id, &response, &mut rng)
                .await
                .unwrap();
        }
    }
}

/// `devices` recipients whose device keys and one-time keys are on the server.
pub async fn recipients(devices: usize) -> Recipients {
    let mut rng = rand::rng();
    let mut hs = Homeserver::new();
    let users: Vec<String> = (0..devices)
        .map(|i| format!("@member{i}:example.org"))
        .collect();
    let mut machines = Vec::new();
    for user in &users {
        hs.join(user, "DEVICE");
        let key = StorageKey::from_bytes([1; 32]);
        let machine = Machine::open(MemoryStore::new(), &key, user, "DEVICE", &mut rng)
            .await
            .unwrap();
        flush(&mut hs, &machine).await;
        machines.push(machine);
    }
    Recipients {
        hs,
        users,
        _machines: machines,
    }
}

/// olmo's sharer: a machine on a SQLite store opened `FULL`, with the recipients' devices
/// queried and an Olm session claimed for each.
pub struct OlmoSharer {
    machine: Machine<SqliteStore>,
    members: Vec<String>,
    settings: RoomSettings,
}

pub async fn olmo_sharer(path: &std::path::Path, recipients: &mut Recipients) -> OlmoSharer {
    let mut rng = rand::rng();
    let hs = &mut recipients.hs;
    hs.join("@carol:example.org", "CAROL");
    let store = SqliteStore::open_with(
        path,
        &olmo_sqlite::Options {
            durability: Durability::Full,
            ..Default::default()
        },
    )
    .unwrap();
    let carol = Machine::open(
        store,
        &StorageKey::from_bytes([2; 32]),
        "@carol:example.org",
        "CAROL",
        &mut rng,
    )
    .await
    .unwrap();
    flush(hs, &carol).await;
    let members: Vec<&str> = recipients.users.iter().map(String::as_str).collect();
    carol
        .update_tracked_users(&members, &mut rng)
        .await
        .unwrap();
    flush(hs, &carol).await;
    let claim = carol
        .missing_sessions(&members, &mut rng)
        .await
        .unwrap()
        .unwrap();
    let (_, claim_path) = claim.endpoint();
    let response = hs.handle("@carol:example.org", "CAROL", &claim_path, &claim.body);
    carol
        .mark_request_as_sent(&claim.id, &response, &mut rng)
        .await
        .unwrap();
    let settings =
        RoomSettings::from_encryption_content(&json!({"algorithm": olmo::matrix::MEGOLM_V1}))
            .unwrap();
    OlmoSharer {
        machine: carol,
        members: recipients.users.clone(),
        settings,
    }
}

impl OlmoSharer {
    /// Rotates the room key and shares it with every recipient: the time of that (see the
    /// module's comment), then the requests are marked as sent.
    pub async fn share(&self) -> Duration {
        let mut rng = rand::rng();
        let members: Vec<&str> = self.members.iter().map(String::as_str).collect();
        let start = Instant::now();
        self.machine
            .invalidate_room_key(ROOM, &mut rng)
            .await
            .unwrap();
        let share = self
            .machine
            .share_room_key(ROOM, &members, &self.settings, NOW, &mut rng)
            .await
            .unwrap();
        let elapsed = start.elapsed();
        assert!(share.without_session.is_empty());
        let sent: usize = share
            .requests
            .iter()
            .map(|r| r.body["messages"].as_object().map_or(0, |m| m.len()))
            .sum();
        assert_eq!(sent, members.len());
        for request in share.requests {
            self.machine
                .mark_request_as_sent(&request.id, &json!({}), &mut rng)
                .await
                .unwrap();
        }
        elapsed
    }
}

/// One side of the summary row: `n` shares, timed one by one (see the module's comment).
pub fn runner(mut share: impl FnMut() -> Duration) -> impl FnMut(usize) -> Duration {
    move |n| (0..n).map(|_| share()).sum::<Duration>() / u32::try_from(n).unwrap()
}
