//! Matrix machines driven by hand over the in-memory homeserver (included with `#[path]`, beside
//! `tests/matrix_machine/harness.rs` as `harness`): the store crates' kill and fleet tests.

use olmo::matrix::{MEGOLM_V1, Machine, RoomSettings, SyncChanges};
use olmo::store::{Backend, block_on};
use rand::rngs::StdRng;
use serde_json::json;

use super::harness::Homeserver;

/// No rotation inside a test: every process encrypts on the session that was shared.
pub fn settings() -> RoomSettings {
    RoomSettings::from_encryption_content(
        &json!({"algorithm": MEGOLM_V1, "rotation_period_msgs": 1_000_000}),
    )
    .unwrap()
}

/// Sends every outgoing request of `machine` to the homeserver, until none are left.
pub fn flush<B: Backend>(hs: &mut Homeserver, machine: &Machine<B>, rng: &mut StdRng) {
    for _ in 0..10 {
        let requests = block_on(machine.outgoing_requests(rng)).unwrap();
        if requests.is_empty() {
            return;
        }
        for request in requests {
            let (_, path) = request.endpoint();
            let response = hs.handle(machine.user_id(), machine.device_id(), &path, &request.body);
            block_on(machine.mark_request_as_sent(&request.id, &response, rng)).unwrap();
        }
    }
    panic!("requests kept coming");
}

/// Gives `machine` its to-device events and device-list changes from the homeserver.
pub fn sync<B: Backend>(hs: &mut Homeserver, machine: &Machine<B>, rng: &mut StdRng) {
    let sync = hs.sync(machine.user_id(), machine.device_id());
    let changes = SyncChanges {
        to_device_events: &sync.to_device,
        changed_users: &sync.changed,
        ..Default::default()
    };
    block_on(machine.receive_sync_changes(changes, &[], rng)).unwrap();
}
