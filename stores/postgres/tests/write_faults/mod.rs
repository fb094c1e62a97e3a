//! PostgreSQL under failing writes: a two-device conversation (Alice shares a room key over
//! Olm and sends three messages, Bob decrypts them) where one device's store is PostgreSQL
//! behind a wrapper that fails its Nth commit, for every N the script makes, in each way a
//! database write fails:
//! - refused: the operation errs and made no other commit, so the database is as before;
//! - answer lost: the commit landed but the caller saw an error (the connection dropped
//!   between the server's COMMIT and its answer);
//! - connection dropped: the server terminates the store's connection just before the commit.
//!
//! The failed operation is retried until it succeeds. After each run the store opens again (the
//! same device), nothing Bob was told he decrypted is lost (every message decrypts again from
//! the reopened store), no Megolm index and no Olm chain index was handed out twice, and no
//! one-time key of Bob's was claimed twice. The other device runs in memory.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::time::Instant;

use olmo::matrix::{MEGOLM_V1, Machine, MachineError, RoomSettings, SyncChanges};
use olmo::megolm::MegolmMessage;
use olmo::persist::StorageKey;
use olmo::store::{Backend, MemoryStore, block_on};
use olmo::time::Timestamp;
use olmo_postgres::{Options, PostgresStore};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::{Value, json};

use crate::backends::{FailingCommits, Fault};
use crate::cluster::Cluster;
use crate::harness::Homeserver;

const ROOM: &str = "!faults:example.org";
const ALICE: &str = "@alice:example.org";
const BOB: &str = "@bob:example.org";
const MESSAGES: usize = 3;
const NOW: Timestamp = Timestamp::from_millis(1_765_000_000_000);

fn settings() -> RoomSettings {
    RoomSettings::from_encryption_content(&json!({"algorithm": MEGOLM_V1})).unwrap()
}

fn key_of(user: &str) -> StorageKey {
    StorageKey::from_bytes([if user == ALICE { 61 } else { 62 }; 32])
}

/// Runs made at most by one kind of fault: each has a schema of its own, made up front.
const MAX_RUNS: u64 = 40;

/// One run's database: the cluster's, with the run's own schema first in the search path (the
/// store makes its table there), so runs need no emptying in between.
struct Db<'a> {
    cluster: &'a Cluster,
    database: &'static str,
    schema: String,
}

impl Db<'_> {
    fn connection_string(&self) -> String {
        let path = &self.schema;
        let database = self.cluster.database(self.database);
        format!("{database} options='-c search_path={path}'")
    }
}

struct Device<B: Backend> {
    user: &'static str,
    device: &'static str,
    store: FailingCommits<B>,
    machine: Machine<FailingCommits<B>>,
    rng: StdRng,
}

impl<B: Backend> Device<B> {
    fn open(
        user: &'static str,
        device: &'static str,
        store: FailingCommits<B>,
        cluster: &Db,
    ) -> Self {
        let mut rng = StdRng::seed_from_u64(u64::from(user == BOB));
        let machine = attempt(&store, cluster, || {
            block_on(Machine::open(
                store.clone(),
                &key_of(user),
                user,
                device,
                &mut rng,
            ))
        });
        Self {
            user,
            device,
            store,
            machine,
            rng,
        }
    }
}

/// Runs `op` until it succeeds: each failure must come from the injected fault, and an
/// operation whose write was refused must have made no other commit (every write goes through
/// `commit`, so the database is as it was).
fn attempt<B: Backend, T, E: Debug>(
    store: &FailingCommits<B>,
    _db: &Db,
    mut op: impl FnMut() -> Result<T, E>,
) -> T {
    loop {
        let refused = store.next_fault() == Some(Fault::Refused);
        let (failed, commits) = (store.failed(), store.commits());
        match op() {
            Ok(value) => return value,
            Err(error) => {
                assert!(store.failed() > failed, "failed by itself: {error:?}");
                if refused {
                    assert_eq!(store.commits(), commits + 1, "a refused operation wrote");
                }
            }
        }
    }
}

/// What the script saw of keys and ciphertexts.
#[derive(Default)]
struct Seen {
    /// (session id, message index) of every ciphertext Alice returned.
    megolm: BTreeSet<(String, u32)>,
    /// (ratchet key, chain index) of every Olm message Alice sent to Bob.
    olm: BTreeSet<(Vec<u8>, u32)>,
    /// Bob's one-time keys as uploaded and as claimed.
    uploaded: BTreeSet<String>,
    claimed: BTreeSet<String>,
}

fn flush<B: Backend>(hs: &mut Homeserver, d: &mut Device<B>, seen: &mut Seen, cluster: &Db) {
    for _ in 0..10 {
        let requests = attempt(&d.store, cluster, || {
            block_on(d.machine.outgoing_requests(&mut d.rng))
        });
        if requests.is_empty() {
            return;
        }
        for request in requests {
            let (_, path) = request.endpoint();
            for (id, key) in request.body["one_time_keys"]
                .as_object()
                .into_iter()
                .flatten()
            {
                assert!(
                    seen.uploaded.insert(format!("{id} {key}")),
                    "one-time key {id} uploaded twice"
                );
            }
            if path.contains("/sendToDevice/") {
                let content = &request.body["messages"][BOB]["BOB"];
                if !content.is_null() {
                    let (key, _) = crate::olm_key(content);
                    assert!(seen.olm.insert(key.clone()), "Olm key {key:?} sent twice");
                }
            }
            let response = hs.handle(d.user, d.device, &path, &request.body);
            // A commit whose answer was lost removed the request already.
            attempt(&d.store, cluster, || {
                match block_on(
                    d.machine
                        .mark_request_as_sent(&request.id, &response, &mut d.rng),
                ) {
                    Err(MachineError::UnknownRequest) if d.store.failed() > 0 => Ok(()),
                    other => other,
                }
            });
        }
    }
    panic!("requests kept coming");
}

/// The script, Alice's and Bob's stores given; Bob's messages as decrypted.
fn conversation<A: Backend, B: Backend>(
    alice: FailingCommits<A>,
    bob: FailingCommits<B>,
    cluster: &Db,
) -> (Device<A>, Device<B>, Vec<Value>, Seen) {
    let mut hs = Homeserver::new();
    let mut seen = Seen::default();
    hs.join(ALICE, "ALICE");
    hs.join(BOB, "BOB");
    let mut alice = Device::open(ALICE, "ALICE", alice, cluster);
    flush(&mut hs, &mut alice, &mut seen, cluster);
    let mut bob = Device::open(BOB, "BOB", bob, cluster);
    flush(&mut hs, &mut bob, &mut seen, cluster);

    let members = [ALICE, BOB];
    let a = &mut alice;
    attempt(&a.store, cluster, || {
        block_on(a.machine.update_tracked_users(&members, &mut a.rng))
    });
    flush(&mut hs, a, &mut seen, cluster);
    let claim = attempt(&a.store, cluster, || {
        block_on(a.machine.missing_sessions(&members, &mut a.rng))
    })
    .expect("Alice has no session with Bob yet");
    let response = hs.handle(ALICE, "ALICE", &claim.endpoint().1, &claim.body);
    for (id, key) in response["one_time_keys"][BOB]["BOB"]
        .as_object()
        .into_iter()
        .flatten()
    {
        assert!(
            seen.claimed.insert(format!("{id} {key}")),
            "one-time key {id} claimed twice"
        );
    }
    attempt(&a.store, cluster, || {
        match block_on(
            a.machine
                .mark_request_as_sent(&claim.id, &response, &mut a.rng),
        ) {
            Err(MachineError::UnknownRequest) if a.store.failed() > 0 => Ok(()),
            other => other,
        }
    });
    attempt(&a.store, cluster, || {
        block_on(
            a.machine
                .share_room_key(ROOM, &members, &settings(), NOW, &mut a.rng),
        )
    });
    flush(&mut hs, a, &mut seen, cluster);

    let sync = hs.sync(BOB, "BOB");
    let changes = SyncChanges {
        to_device_events: &sync.to_device,
        changed_users: &sync.changed,
        one_time_key_count: Some(sync.one_time_key_count),
        unused_fallback_key_types: Some(&sync.unused_fallback_key_types),
        ..Default::default()
    };
    let b = &mut bob;
    attempt(&b.store, cluster, || {
        block_on(b.machine.receive_sync_changes(changes, &[], &mut b.rng))
    });
    flush(&mut hs, b, &mut seen, cluster);

    let mut events = Vec::new();
    for i in 0..MESSAGES {
        let body = format!("message {i}");
        let content = json!({"msgtype": "m.text", "body": body});
        let a = &mut alice;
        let sealed = attempt(&a.store, cluster, || {
            block_on(a.machine.encrypt_room_event(
                ROOM,
                "m.room.message",
                &content,
                &settings(),
                NOW,
                &mut a.rng,
            ))
        });
        let session = sealed["session_id"].as_str().unwrap().to_owned();
        let index = MegolmMessage::from_base64(sealed["ciphertext"].as_str().unwrap())
            .unwrap()
            .message_index();
        assert!(
            seen.megolm.insert((session, index)),
            "Alice handed out index {index} twice"
        );
        let event = json!({
            "type": "m.room.encrypted",
            "sender": ALICE,
            "event_id": format!("$message-{i}"),
            "origin_server_ts": NOW.as_millis(),
            "content": sealed,
        });
        let b = &mut bob;
        let read = attempt(&b.store, cluster, || {
            block_on(b.machine.decrypt_room_event(ROOM, &event, &[], &mut b.rng))
        });
        assert_eq!(read.content["body"], Value::from(body));
        events.push(event);
    }
    assert_eq!(seen.claimed.len(), 1);
    assert!(seen.claimed.is_subset(&seen.uploaded));
    (alice, bob, events, seen)
}

/// Ends the store's connections, as a server restart would (only the runs that drop
/// connections use this database).
/// Waits (up to 5 s) until each has ended, so the commit that follows meets a closed socket.
const DROP_CONNECTIONS: &str = "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity \
     WHERE datname = 'dropped'";

/// After a run: the device's store opens again as the same device; for Bob, every message
/// decrypts again from it; for Alice, a new message gets an index never handed out.
fn check_reopened(
    user: &'static str,
    device: Device<PostgresStore>,
    events: &[Value],
    seen: &Seen,
    cluster: &Db,
) {
    let identity = device.machine.identity_keys();
    drop(device);
    let store = PostgresStore::connect(&cluster.connection_string()).expect("the store opens");
    let mut rng = StdRng::seed_from_u64(9);
    let name = if user == ALICE { "ALICE" } else { "BOB" };
    let machine = block_on(Machine::open(store, &key_of(user), user, name, &mut rng)).unwrap();
    assert_eq!(
        machine.identity_keys(),
        identity,
        "the store opened as another device"
    );
    if user == BOB {
        for event in events {
            let read = block_on(machine.decrypt_room_event(ROOM, event, &[], &mut rng))
                .expect("a message Bob decrypted decrypts again");
            assert!(
                read.content["body"]
                    .as_str()
                    .unwrap()
                    .starts_with("message ")
            );
        }
    } else {
        let sealed = block_on(machine.encrypt_room_event(
            ROOM,
            "m.room.message",
            &json!({"body": "after"}),
            &settings(),
            NOW,
            &mut rng,
        ))
        .unwrap();
        let index = MegolmMessage::from_base64(sealed["ciphertext"].as_str().unwrap())
            .unwrap()
            .message_index();
        let session = sealed["session_id"].as_str().unwrap().to_owned();
        assert!(
            !seen.megolm.contains(&(session, index)),
            "index {index} handed out again after reopening"
        );
    }
}

/// Fails each commit of each device's PostgreSQL store in turn, with `fault`, each run on a
/// schema of its own in `database`; gives the device's commit counts.
fn fail_each_commit(
    cluster: &Cluster,
    (database, prefix): (&'static str, &str),
    fault: Fault,
) -> Vec<String> {
    let mut runs = 0;
    let mut counts = Vec::new();
    for user in [ALICE, BOB] {
        let mut run = |fail_at: Option<u64>| {
            runs += 1;
            assert!(runs <= MAX_RUNS, "more runs than schemas made");
            let db = Db {
                cluster,
                database,
                schema: format!("{prefix}{runs}"),
            };
            // One connection where they are dropped: a pool's idle one would fail its next
            // operation too (it learns of the drop only then), an error no fault injected.
            let options = Options {
                connections: if fault == Fault::Hook { 1 } else { 2 },
                ..Options::default()
            };
            let store = PostgresStore::connect_with(&db.connection_string(), &options).unwrap();
            let postgres =
                FailingCommits::new(store).with_hook(cluster.statement(DROP_CONNECTIONS));
            if let Some(n) = fail_at {
                postgres.fail_commit(n, fault);
            }
            let memory = FailingCommits::new(MemoryStore::new());
            let (device, events, seen) = if user == ALICE {
                let (alice, _, events, seen) = conversation(postgres, memory, &db);
                (alice, events, seen)
            } else {
                let (_, bob, events, seen) = conversation(memory, postgres, &db);
                (bob, events, seen)
            };
            let commits = device.store.commits();
            let failed = u64::from(fail_at.is_some());
            assert_eq!(
                device.store.failed(),
                failed,
                "commit {fail_at:?} not reached"
            );
            check_reopened(user, device, &events, &seen, &db);
            commits
        };
        let total = run(None);
        for n in 1..=total {
            run(Some(n));
        }
        counts.push(format!("{user} {fault:?} {total}"));
    }
    counts
}

#[test]
fn a_failing_commit_of_either_device_loses_nothing_and_reuses_no_key() {
    let Some(cluster) = Cluster::start_or_skip() else {
        return;
    };
    // Each kind of fault in schemas of its own; the one that drops connections in a database
    // of its own, so the connections it drops are its own.
    cluster.create_database("dropped");
    let kinds = [
        (("postgres", "refused"), Fault::Refused),
        (("postgres", "lost"), Fault::AnswerLost),
        (("dropped", "dropped"), Fault::Hook),
    ];
    for ((database, prefix), _) in kinds {
        let schemas: String = (1..=MAX_RUNS)
            .map(|r| format!("CREATE SCHEMA {prefix}{r};"))
            .collect();
        cluster.query_in(database, &schemas);
    }
    // The faults are the client's, not the server's: no need to wait for each WAL flush.
    for database in ["postgres", "dropped"] {
        cluster.query_one(&format!(
            "ALTER DATABASE {database} SET synchronous_commit = off"
        ));
    }
    let started = Instant::now();
    // The three kinds at once (the runs mostly wait on round trips).
    let counts: Vec<String> = std::thread::scope(|scope| {
        let threads: Vec<_> = kinds
            .map(|(database, fault)| {
                let cluster = &cluster;
                scope.spawn(move || fail_each_commit(cluster, database, fault))
            })
            .into_iter()
            .collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect()
    });
    println!(
        "each commit failed in turn, one run each ({}), in {:?}",
        counts.join(", "),
        started.elapsed()
    );
}
