//! A backend that fails its Nth write, for every N the script makes: a two-device conversation
//! (Alice shares a room key, sends five messages, Bob decrypts them) where one of Bob's (or
//! Alice's) commits fails. The failing operation returns an error and leaves the store exactly
//! as it was; retrying it completes the script with every message decrypted, no Megolm
//! (session, index) handed out twice and no one-time key of Bob's used twice.

use std::collections::BTreeSet;
use std::fmt::Debug;

use olmo::matrix::{Machine, SyncChanges};
use olmo::megolm::MegolmMessage;
use olmo::persist::StorageKey;
use olmo::store::block_on;
use serde_json::{Value, json};

use super::commits::CountingStore;
use super::common::rng::TestRng;
use super::harness::Homeserver;
use super::{NOW, settings};

const ROOM: &str = "!faults:example.org";
const ALICE: &str = "@alice:example.org";
const BOB: &str = "@bob:example.org";
const MESSAGES: usize = 5;

struct Device {
    user: &'static str,
    device: &'static str,
    store: CountingStore,
    machine: Machine<CountingStore>,
    rng: TestRng,
    /// Operations that failed on an injected fault and were retried.
    retried: u64,
}

impl Device {
    /// Opens a new store (retrying an open whose commit failed).
    fn open(user: &'static str, device: &'static str, store: CountingStore, seed: u64) -> Self {
        let mut rng = TestRng::new(seed);
        let key = StorageKey::from_bytes([seed as u8; 32]);
        let mut retried = 0;
        let machine = loop {
            let failed = store.failed();
            match block_on(Machine::open(store.clone(), &key, user, device, &mut rng)) {
                Ok(machine) => break machine,
                Err(error) => {
                    assert!(store.failed() > failed, "open failed by itself: {error}");
                    assert!(store.snapshot().is_empty(), "a failed open wrote");
                    retried += 1;
                }
            }
        };
        Self {
            user,
            device,
            store,
            machine,
            rng,
            retried,
        }
    }

    /// Runs `op` until it succeeds: each failure must come from an injected fault and leave
    /// the store exactly as before.
    fn attempt<T, E: Debug>(
        &mut self,
        mut op: impl FnMut(&Machine<CountingStore>, &mut TestRng) -> Result<T, E>,
    ) -> T {
        loop {
            let before = self.store.snapshot();
            let failed = self.store.failed();
            match op(&self.machine, &mut self.rng) {
                Ok(value) => {
                    assert_eq!(self.store.failed(), failed, "a failed commit was ignored");
                    return value;
                }
                Err(error) => {
                    assert!(self.store.failed() > failed, "failed by itself: {error:?}");
                    assert!(
                        before == self.store.snapshot(),
                        "a failed operation changed the store"
                    );
                    self.retried += 1;
                }
            }
        }
    }
}

/// What the script saw of keys and ciphertexts.
#[derive(Default)]
struct Ledger {
    /// (session id, message index) of every ciphertext Alice returned.
    sent: BTreeSet<(String, u32)>,
    /// Bob's one-time keys as uploaded (id and key) and as claimed by Alice.
    uploaded: BTreeSet<String>,
    claimed: BTreeSet<String>,
}

fn flush(hs: &mut Homeserver, device: &mut Device, ledger: &mut Ledger) {
    for _ in 0..10 {
        let requests = device.attempt(|m, rng| block_on(m.outgoing_requests(rng)));
        if requests.is_empty() {
            return;
        }
        for request in requests {
            let (_, path) = request.endpoint();
            if device.user == BOB {
                for (id, key) in request.body["one_time_keys"]
                    .as_object()
                    .into_iter()
                    .flatten()
                {
                    assert!(
                        ledger.uploaded.insert(format!("{id} {key}")),
                        "one-time key {id} uploaded twice"
                    );
                }
            }
            let response = hs.handle(device.user, device.device, &path, &request.body);
            device.attempt(|m, rng| block_on(m.mark_request_as_sent(&request.id, &response, rng)));
        }
    }
    panic!("requests kept coming");
}

/// The script; returns the two stores' commit counts.
fn conversation(alice_store: CountingStore, bob_store: CountingStore) -> (u64, u64) {
    let mut hs = Homeserver::new();
    let mut ledger = Ledger::default();
    hs.join(ALICE, "ALICE");
    hs.join(BOB, "BOB");
    let mut alice = Device::open(ALICE, "ALICE", alice_store, 31);
    flush(&mut hs, &mut alice, &mut ledger);
    let mut bob = Device::open(BOB, "BOB", bob_store, 32);
    flush(&mut hs, &mut bob, &mut ledger);

    let members = [ALICE, BOB];
    alice.attempt(|m, rng| block_on(m.update_tracked_users(&members, rng)));
    flush(&mut hs, &mut alice, &mut ledger);
    let claim = alice
        .attempt(|m, rng| block_on(m.missing_sessions(&members, rng)))
        .expect("Alice has no session with Bob yet");
    let (_, path) = claim.endpoint();
    let response = hs.handle(ALICE, "ALICE", &path, &claim.body);
    for (id, key) in response["one_time_keys"][BOB]["BOB"]
        .as_object()
        .into_iter()
        .flatten()
    {
        assert!(
            ledger.claimed.insert(format!("{id} {key}")),
            "one-time key {id} claimed twice"
        );
    }
    alice.attempt(|m, rng| block_on(m.mark_request_as_sent(&claim.id, &response, rng)));
    let share =
        alice.attempt(|m, rng| block_on(m.share_room_key(ROOM, &members, &settings(), NOW, rng)));
    assert!(share.without_session.is_empty());
    flush(&mut hs, &mut alice, &mut ledger);

    let sync = hs.sync(BOB, "BOB");
    let changes = SyncChanges {
        to_device_events: &sync.to_device,
        changed_users: &sync.changed,
        one_time_key_count: Some(sync.one_time_key_count),
        unused_fallback_key_types: Some(&sync.unused_fallback_key_types),
        ..Default::default()
    };
    bob.attempt(|m, rng| block_on(m.receive_sync_changes(changes, &[], rng)));
    flush(&mut hs, &mut bob, &mut ledger);

    for i in 0..MESSAGES {
        let body = format!("message {i}");
        let content = json!({"msgtype": "m.text", "body": body});
        let sealed = alice.attempt(|m, rng| {
            block_on(m.encrypt_room_event(ROOM, "m.room.message", &content, &settings(), NOW, rng))
        });
        let session = sealed["session_id"].as_str().unwrap().to_owned();
        let index = MegolmMessage::from_base64(sealed["ciphertext"].as_str().unwrap())
            .unwrap()
            .message_index();
        assert!(
            ledger.sent.insert((session, index)),
            "Alice handed out index {index} twice"
        );
        let event = json!({
            "type": "m.room.encrypted",
            "sender": ALICE,
            "event_id": format!("$message-{i}"),
            "origin_server_ts": NOW.as_millis(),
            "content": sealed,
        });
        let read = bob.attempt(|m, rng| block_on(m.decrypt_room_event(ROOM, &event, &[], rng)));
        assert_eq!(read.content["body"], Value::from(body));
    }
    assert_eq!(ledger.sent.len(), MESSAGES);
    assert_eq!(ledger.claimed.len(), 1);
    assert!(ledger.claimed.is_subset(&ledger.uploaded));
    (alice.store.commits(), bob.store.commits())
}

fn fail_each_commit(of_bob: bool) {
    let (alice_commits, bob_commits) = conversation(CountingStore::new(), CountingStore::new());
    let total = if of_bob { bob_commits } else { alice_commits };
    for n in 1..=total {
        let (alice, bob) = (CountingStore::new(), CountingStore::new());
        let failing = if of_bob { &bob } else { &alice };
        failing.fail_commit(n);
        let (a, b) = conversation(alice.clone(), bob.clone());
        assert_eq!(failing.failed(), 1, "commit {n} was not reached");
        // The failed commit is made again by the retry.
        let (expected_a, expected_b) = if of_bob {
            (alice_commits, bob_commits + 1)
        } else {
            (alice_commits + 1, bob_commits)
        };
        assert_eq!((a, b), (expected_a, expected_b), "commit {n}");
    }
    println!(
        "{} commits of {} failed one at a time (Alice's script: {alice_commits} commits, \
         Bob's: {bob_commits})",
        total,
        if of_bob { "Bob" } else { "Alice" }
    );
}

#[test]
fn bob_failing_any_one_commit_loses_nothing_and_the_retry_completes() {
    fail_each_commit(true);
}

#[test]
fn alice_failing_any_one_commit_loses_nothing_and_the_retry_completes() {
    fail_each_commit(false);
}
