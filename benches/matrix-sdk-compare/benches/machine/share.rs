//! olmo only: sharing a fresh room key with 100 devices over established Olm sessions (the
//! recipients are olmo machines in memory behind the test suite's homeserver harness).

use std::time::{Duration, Instant};

use olmo::matrix::{Machine, RoomSettings};
use olmo::persist::StorageKey;
use olmo::store::{Backend, MemoryStore};
use olmo_sqlite::Durability;
use serde_json::json;

use crate::harness::Homeserver;
use crate::sender::NOW;

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

/// The median time of rotating and sharing a room key with `devices` devices, `runs` times.
pub async fn share_to_devices(path: &std::path::Path, devices: usize, runs: usize) -> Duration {
    let mut rng = rand::rng();
    let mut hs = Homeserver::new();
    let users: Vec<String> = (0..devices)
        .map(|i| format!("@member{i}:example.org"))
        .collect();
    let mut recipients = Vec::new();
    for user in &users {
        hs.join(user, "DEVICE");
        let key = StorageKey::from_bytes([1; 32]);
        let machine = Machine::open(MemoryStore::new(), &key, user, "DEVICE", &mut rng)
            .await
            .unwrap();
        flush(&mut hs, &machine).await;
        recipients.push(machine);
    }
    hs.join("@carol:example.org", "CAROL");
    let carol = Machine::open(
        olmo_sqlite::SqliteStore::open_with(
            path,
            &olmo_sqlite::Options {
                durability: Durability::Full,
                ..Default::default()
            },
        )
        .unwrap(),
        &StorageKey::from_bytes([2; 32]),
        "@carol:example.org",
        "CAROL",
        &mut rng,
    )
    .await
    .unwrap();
    flush(&mut hs, &carol).await;
    let members: Vec<&str> = users.iter().map(String::as_str).collect();
    carol
        .update_tracked_users(&members, &mut rng)
        .await
        .unwrap();
    flush(&mut hs, &carol).await;
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
    let room = "!share:example.org";
    let mut times = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        carol.invalidate_room_key(room, &mut rng).await.unwrap();
        let share = carol
            .share_room_key(room, &members, &settings, NOW, &mut rng)
            .await
            .unwrap();
        times.push(start.elapsed());
        assert!(share.without_session.is_empty());
        let sent: usize = share
            .requests
            .iter()
            .map(|r| r.body["messages"].as_object().map_or(0, |m| m.len()))
            .sum();
        assert_eq!(sent, devices);
        for request in share.requests {
            carol
                .mark_request_as_sent(&request.id, &json!({}), &mut rng)
                .await
                .unwrap();
        }
    }
    times.sort();
    times[times.len() / 2]
}
