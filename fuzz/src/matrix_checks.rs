//! The Matrix machine's fuzz target, `matrix_machine`: arbitrary JSON (or a real event or
//! response with one field replaced or removed) through the machine's JSON entry points, on a
//! copy of a device's store taken from an olmo-to-olmo conversation.
//!
//! The first byte picks the entry point (mod 4: a to-device event, a room event, a
//! `/keys/query` response, a `/keys/claim` response) and whether the rest is the whole JSON
//! (bit 2 clear) or a mutation of one of the fixture's real inputs of that kind (bit 2 set:
//! byte 1 picks the input, byte 2 the field, its top bit removes it, the rest is the new
//! value, as JSON when it parses, else as a string). Nothing may panic, and an input the
//! machine refuses leaves the store byte-identical (a broken message on a known session may
//! record only the wedged session).

use std::sync::OnceLock;

use olmo::matrix::{Machine, RoomSettings, SyncChanges, ToDeviceError, ToDeviceOutcome};
use olmo::persist::StorageKey;
use olmo::store::{Backend, Batch, Expect, MemoryStore, Record, block_on};
use olmo::time::Timestamp;
use serde_json::{Value, json};

use super::DeterministicRng;

const ALICE: &str = "@alice:example.org";
const BOB: &str = "@bob:example.org";
/// The room whose key Bob holds; its events decrypt.
pub const MATRIX_ROOM: &str = "!room:example.org";
/// The room whose key is still on its way to Bob (the to-device inputs).
const SECOND_ROOM: &str = "!second:example.org";
const BOB_STORAGE_KEY: [u8; 32] = [0x0b; 32];
const NOW: Timestamp = Timestamp::from_millis(1_765_000_000_000);

type Snapshot = Vec<(String, Vec<u8>, Record)>;

/// Bob's device after a conversation with Alice, and real inputs for each entry point.
pub struct MatrixFixture {
    /// Bob's store: he holds Alice's key for [`MATRIX_ROOM`], and has a `/keys/query` and a
    /// `/keys/claim` request waiting for their responses.
    bob: Snapshot,
    query_id: String,
    claim_id: String,
    /// Alice's room key for the second room, over Olm, not yet delivered.
    pub to_device: Vec<Value>,
    /// Alice's events in [`MATRIX_ROOM`].
    pub room_events: Vec<Value>,
    /// The true responses to Bob's pending query and claim.
    pub query_response: Value,
    /// See `query_response`.
    pub claim_response: Value,
}

/// The entry point an input goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatrixInput {
    /// `receive_sync_changes`, as the sync's only to-device event.
    ToDevice,
    /// `decrypt_room_event` in [`MATRIX_ROOM`].
    RoomEvent,
    /// `mark_request_as_sent` for the pending `/keys/query`.
    QueryResponse,
    /// `mark_request_as_sent` for the pending `/keys/claim`.
    ClaimResponse,
}

impl MatrixInput {
    fn from_selector(selector: u8) -> Self {
        match selector % 4 {
            0 => Self::ToDevice,
            1 => Self::RoomEvent,
            2 => Self::QueryResponse,
            _ => Self::ClaimResponse,
        }
    }

    fn templates(self, fixture: &MatrixFixture) -> Vec<&Value> {
        match self {
            Self::ToDevice => fixture.to_device.iter().collect(),
            Self::RoomEvent => fixture.room_events.iter().collect(),
            Self::QueryResponse => vec![&fixture.query_response],
            Self::ClaimResponse => vec![&fixture.claim_response],
        }
    }
}

/// `matrix_machine`: see the module documentation.
pub fn check_matrix_machine(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let fixture = matrix_fixture();
    let kind = MatrixInput::from_selector(selector);
    let input = if selector & 4 == 0 {
        match serde_json::from_slice(rest) {
            Ok(value) => value,
            Err(_) => Value::String(String::from_utf8_lossy(rest).into_owned()),
        }
    } else {
        let [pick, field, value @ ..] = rest else {
            return;
        };
        let templates = kind.templates(fixture);
        let mut input = templates[usize::from(*pick) % templates.len()].clone();
        mutate(&mut input, *field, value);
        input
    };
    run_matrix_input(fixture, kind, &input);
}

/// Replaces (or, with `field`'s top bit, removes) one field of `input`, picked by `field`
/// among every object member and array element, depth first.
fn mutate(input: &mut Value, field: u8, value: &[u8]) {
    let mut paths = Vec::new();
    collect_paths(input, &mut Vec::new(), &mut paths);
    if paths.is_empty() {
        return;
    }
    let path = &paths[usize::from(field & 0x7f) % paths.len()];
    let (last, parents) = path.split_last().expect("paths are not empty");
    let mut parent = input;
    for step in parents {
        parent = match step {
            Step::Member(name) => &mut parent[name.as_str()],
            Step::Element(index) => &mut parent[*index],
        };
    }
    let new = match serde_json::from_slice(value) {
        Ok(new) => new,
        Err(_) => Value::String(String::from_utf8_lossy(value).into_owned()),
    };
    match (last, parent) {
        (Step::Member(name), Value::Object(object)) if field & 0x80 != 0 => {
            object.remove(name);
        }
        (Step::Element(index), Value::Array(array)) if field & 0x80 != 0 => {
            array.remove(*index);
        }
        (Step::Member(name), parent) => parent[name.as_str()] = new,
        (Step::Element(index), parent) => parent[*index] = new,
    }
}

#[derive(Clone)]
enum Step {
    Member(String),
    Element(usize),
}

fn collect_paths(value: &Value, prefix: &mut Vec<Step>, paths: &mut Vec<Vec<Step>>) {
    let children: Vec<(Step, &Value)> = match value {
        Value::Object(object) => object
            .iter()
            .map(|(name, child)| (Step::Member(name.clone()), child))
            .collect(),
        Value::Array(array) => array
            .iter()
            .enumerate()
            .map(|(index, child)| (Step::Element(index), child))
            .collect(),
        _ => return,
    };
    for (step, child) in children {
        prefix.push(step);
        paths.push(prefix.clone());
        collect_paths(child, prefix, paths);
        prefix.pop();
    }
}

/// Feeds `input` to a fresh copy of Bob and checks that a refusal changed nothing. Returns
/// whether the machine accepted it.
pub fn run_matrix_input(fixture: &MatrixFixture, kind: MatrixInput, input: &Value) -> bool {
    let store = copy_store(&fixture.bob);
    let mut rng = DeterministicRng::new(0x0b0b);
    let key = StorageKey::from_bytes(BOB_STORAGE_KEY);
    let bob = block_on(Machine::open(store.clone(), &key, BOB, "BOB", &mut rng))
        .expect("the fixture's store opens");
    let before = store.snapshot();
    let (accepted, wedged) = match kind {
        MatrixInput::ToDevice => {
            let changes = SyncChanges {
                to_device_events: std::slice::from_ref(input),
                ..SyncChanges::default()
            };
            match block_on(bob.receive_sync_changes(changes, &[], &mut rng)) {
                Err(_) => (false, false),
                Ok(outcomes) => match &outcomes[..] {
                    [ToDeviceOutcome::Failed(ToDeviceError::NoSession)] => (false, true),
                    [ToDeviceOutcome::Failed(_)] => (false, false),
                    [_] => (true, false),
                    _ => panic!("one event, {} outcomes", outcomes.len()),
                },
            }
        }
        MatrixInput::RoomEvent => {
            let result = block_on(bob.decrypt_room_event(MATRIX_ROOM, input, &[], &mut rng));
            (result.is_ok(), false)
        }
        MatrixInput::QueryResponse | MatrixInput::ClaimResponse => {
            let id = match kind {
                MatrixInput::QueryResponse => &fixture.query_id,
                _ => &fixture.claim_id,
            };
            let result = block_on(bob.mark_request_as_sent(id, input, &mut rng));
            (result.is_ok(), false)
        }
    };
    let after = store.snapshot();
    if wedged {
        // Only a record of the wedged session may be added.
        let added: Vec<_> = after.iter().filter(|r| !before.contains(r)).collect();
        assert!(before.iter().all(|r| after.contains(r)), "a record changed");
        assert!(
            added
                .iter()
                .all(|(table, _, _)| table == "matrix.wedged_devices")
        );
    } else if !accepted {
        assert!(after == before, "a refused {kind:?} changed the store");
    }
    accepted
}

/// A new store holding exactly `records`, versions included (each record is put as often as
/// its version says, the last time with its value, so the sealed values still open).
pub(crate) fn copy_store(records: &Snapshot) -> MemoryStore {
    let store = MemoryStore::new();
    let top = records.iter().map(|(_, _, r)| r.version).max().unwrap_or(0);
    for version in 1..=top {
        let mut batch = Batch::new();
        for (table, key, record) in records.iter().filter(|(_, _, r)| r.version >= version) {
            let expect = match version {
                1 => Expect::Absent,
                _ => Expect::Version(version - 1),
            };
            let value = if version == record.version {
                record.value.clone()
            } else {
                Vec::new()
            };
            batch.put(table, key, expect, value);
        }
        block_on(store.commit(batch)).expect("a fresh store takes the copy");
    }
    store
}

/// The conversation behind the fixture, built once (deterministically).
pub fn matrix_fixture() -> &'static MatrixFixture {
    static FIXTURE: OnceLock<MatrixFixture> = OnceLock::new();
    FIXTURE.get_or_init(build_matrix_fixture)
}

/// A device and what the server keeps of it.
struct Device {
    machine: Machine<MemoryStore>,
    rng: DeterministicRng,
    device_keys: Value,
    one_time_keys: Vec<(String, Value)>,
}

impl Device {
    fn open(user: &str, device: &str, storage_key: [u8; 32], seed: u64) -> Self {
        let mut rng = DeterministicRng::new(seed);
        let key = StorageKey::from_bytes(storage_key);
        let machine = block_on(Machine::open(
            MemoryStore::new(),
            &key,
            user,
            device,
            &mut rng,
        ))
        .expect("a new machine opens");
        let mut device = Self {
            machine,
            rng,
            device_keys: Value::Null,
            one_time_keys: Vec::new(),
        };
        // The first requests are the key upload: the server keeps the keys.
        for request in device.requests("/keys/upload") {
            if let Some(keys) = request.body.get("device_keys") {
                device.device_keys = keys.clone();
            }
            for (id, key) in request.body["one_time_keys"]
                .as_object()
                .into_iter()
                .flatten()
            {
                device.one_time_keys.push((id.clone(), key.clone()));
            }
            let count = device.one_time_keys.len();
            device.answer(
                &request.id,
                &json!({"one_time_key_counts": {"signed_curve25519": count}}),
            );
        }
        device
    }

    fn requests(&mut self, path_end: &str) -> Vec<olmo::matrix::OutgoingRequest> {
        block_on(self.machine.outgoing_requests(&mut self.rng))
            .expect("requests")
            .into_iter()
            .filter(|r| r.endpoint().1.ends_with(path_end))
            .collect()
    }

    fn answer(&mut self, id: &str, response: &Value) {
        block_on(
            self.machine
                .mark_request_as_sent(id, response, &mut self.rng),
        )
        .expect("the response is accepted");
    }

    /// The query response listing `other`'s device.
    fn query_response(other: &Device) -> Value {
        let user = other.machine.user_id();
        let device = other.machine.device_id();
        json!({ "device_keys": { user: { device: other.device_keys } }, "failures": {} })
    }

    /// The claim response with `other`'s one-time key number `index`.
    fn claim_response(other: &Device, index: usize) -> Value {
        let user = other.machine.user_id();
        let device = other.machine.device_id();
        let (id, key) = &other.one_time_keys[index];
        json!({ "one_time_keys": { user: { device: { id.clone(): key } } }, "failures": {} })
    }

    /// Queries `other`'s devices (tracking it first) and answers with `other`'s keys.
    fn learn(&mut self, other: &Device) {
        let user = other.machine.user_id().to_owned();
        block_on(self.machine.update_tracked_users(&[&user], &mut self.rng)).expect("tracked");
        for request in self.requests("/keys/query") {
            self.answer(&request.id, &Self::query_response(other));
        }
    }
}

fn build_matrix_fixture() -> MatrixFixture {
    let settings =
        RoomSettings::from_encryption_content(&json!({"algorithm": "m.megolm.v1.aes-sha2"}))
            .expect("megolm settings");
    let mut alice = Device::open(ALICE, "ALICE", [0x0a; 32], 0xa11ce);
    let mut bob = Device::open(BOB, "BOB", BOB_STORAGE_KEY, 0xb0b);

    // Bob learns Alice's device and asks for a session (the claim stays unanswered), then
    // hears her list changed (the new query stays unanswered).
    bob.learn(&alice);
    let claim = block_on(bob.machine.missing_sessions(&[ALICE], &mut bob.rng))
        .expect("missing sessions")
        .expect("a claim for Alice's device");
    let changed = [ALICE.to_owned()];
    let changes = SyncChanges {
        changed_users: &changed,
        ..SyncChanges::default()
    };
    block_on(bob.machine.receive_sync_changes(changes, &[], &mut bob.rng)).expect("sync");
    let query = bob.requests("/keys/query").remove(0);

    // Alice shares two rooms' keys with Bob and writes in the first.
    alice.learn(&bob);
    let alice_claim = block_on(alice.machine.missing_sessions(&[BOB], &mut alice.rng))
        .expect("missing sessions")
        .expect("a claim for Bob's device");
    alice.answer(&alice_claim.id, &Device::claim_response(&bob, 0));
    let mut to_device = Vec::new();
    for room in [MATRIX_ROOM, SECOND_ROOM] {
        block_on(
            alice
                .machine
                .share_room_key(room, &[ALICE, BOB], &settings, NOW, &mut alice.rng),
        )
        .expect("shared");
        for request in alice.requests("") {
            let (_, path) = request.endpoint();
            if path.contains("/sendToDevice/") {
                let content = request.body["messages"][BOB]["BOB"].clone();
                to_device
                    .push(json!({"type": "m.room.encrypted", "sender": ALICE, "content": content}));
            }
            alice.answer(&request.id, &json!({}));
        }
    }
    let mut room_events = Vec::new();
    for (index, text) in ["Hello Bob", "a second message"].into_iter().enumerate() {
        let content = json!({"msgtype": "m.text", "body": text});
        let encrypted = block_on(alice.machine.encrypt_room_event(
            MATRIX_ROOM,
            "m.room.message",
            &content,
            &settings,
            NOW,
            &mut alice.rng,
        ))
        .expect("encrypted");
        room_events.push(json!({
            "type": "m.room.encrypted",
            "sender": ALICE,
            "event_id": format!("$alice-{index}"),
            "origin_server_ts": NOW.as_millis() + index as u64,
            "content": encrypted,
        }));
    }

    // Bob gets the first room's key; the second stays the fuzzer's.
    assert_eq!(to_device.len(), 2, "one room key per room");
    let first = to_device.remove(0);
    let changes = SyncChanges {
        to_device_events: std::slice::from_ref(&first),
        ..SyncChanges::default()
    };
    let outcomes =
        block_on(bob.machine.receive_sync_changes(changes, &[], &mut bob.rng)).expect("sync");
    assert!(matches!(&outcomes[..], [ToDeviceOutcome::Decrypted(_)]));

    MatrixFixture {
        bob: bob.machine.backend().snapshot(),
        query_id: query.id,
        claim_id: claim.id,
        to_device,
        room_events,
        query_response: Device::query_response(&alice),
        claim_response: Device::claim_response(&alice, 0),
    }
}

/// Seeds of `matrix_machine`: the fixture's real inputs whole, and a few mutations of them.
pub fn matrix_seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let fixture = matrix_fixture();
    let mut seeds = Vec::new();
    let kinds = [
        (MatrixInput::ToDevice, 0u8, "to-device"),
        (MatrixInput::RoomEvent, 1, "room-event"),
        (MatrixInput::QueryResponse, 2, "query-response"),
        (MatrixInput::ClaimResponse, 3, "claim-response"),
    ];
    for (kind, selector, name) in kinds {
        for (index, template) in kind.templates(fixture).into_iter().enumerate() {
            let json = serde_json::to_vec(template).expect("JSON");
            seeds.push((
                "matrix_machine",
                format!("{name}-{index}"),
                [&[selector][..], &json].concat(),
            ));
            // The same input with its field 3 and field 9 replaced by a number, and removed.
            for (field, value) in [(3u8, &b"7"[..]), (9, b"\"AAAA\""), (0x85, b"")] {
                seeds.push((
                    "matrix_machine",
                    format!("{name}-{index}-field-{field}"),
                    [&[selector | 4, index as u8, field][..], value].concat(),
                ));
            }
        }
    }
    seeds
}
