//! One world per operation: the machine side on SQLite, and the same work done by core devices
//! with the operation's commit replayed. Every runner takes a batch size and returns the time
//! per operation; what is not the operation (making messages, resetting chains, restoring a
//! device) happens outside the clock.

use std::time::Duration;

use crate::clock::Instant;

use olmo::omemo::VerifiedBundle;
use olmo::omemo::stanza::BundleElement;
use olmo::store::{MemoryStore, block_on};
use tempfile::TempDir;

use crate::stores::{BenchStore, Kind};
use crate::world::{
    Account, CHAIN, Core, Replay, Server, introduce, introduce_core, memory_account, records,
    reset_chain, reset_core_chain,
};

const ALICE: &str = "alice@example.org";
const BOB: &str = "bob@example.org";

/// (sender JID, `<encrypted>`) in the order received.
type Archive = Vec<(String, String)>;

pub type Runner = Box<dyn FnMut(usize) -> Duration>;

fn per_call(elapsed: Duration, n: usize) -> Duration {
    elapsed / u32::try_from(n).unwrap()
}

/// The commit `op` makes on the store `handle` reads.
fn replay_of(
    kind: Kind,
    dir: &TempDir,
    handle: &BenchStore,
    name: &str,
    op: impl FnOnce(),
) -> Replay {
    let before = records(handle);
    op();
    let after = records(handle);
    Replay::new(kind, dir.path(), name, &before, &after)
}

/// A new store of `kind` under `dir` and a second handle on it.
fn new_store(kind: Kind, dir: &TempDir, name: &str) -> (BenchStore, BenchStore) {
    let store = kind.open(&dir.path().join(name));
    let handle = store.handle();
    (store, handle)
}

fn commit_runner(replay: Replay) -> Runner {
    println!("commit replayed for {}", replay.describe());
    Box::new(move |n| {
        let inputs: Vec<_> = (0..n).map(|_| replay.contents()).collect();
        let start = Instant::now();
        for contents in inputs {
            replay.commit(contents);
        }
        per_call(start.elapsed(), n)
    })
}

/// Alice (on the store of the kind given) writes to 3 JIDs of 3 devices each.
pub struct EncryptWorld {
    _dir: TempDir,
    alice: Account<BenchStore>,
    jids: Vec<String>,
    /// Messages sent in the timed rows (see `message_rng`).
    sent: u64,
    core: Option<(Core, Vec<(String, u32)>)>,
    replay: Option<Replay>,
}

impl EncryptWorld {
    pub fn new(kind: Kind) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Server::default();
        let jids: Vec<String> = (0..3).map(|i| format!("contact{i}@example.org")).collect();
        let jid_refs: Vec<&str> = jids.iter().map(String::as_str).collect();
        let mut recipients = Vec::new();
        for jid in &jids {
            for _ in 0..3 {
                recipients.push(memory_account(&mut server, jid));
            }
        }
        let (store, handle) = new_store(kind, &dir, "alice.sqlite3");
        let alice = Account::open(&mut server, store, ALICE);
        alice.refresh(&server, &jid_refs);
        alice.fetch_bundles(&server, &jid_refs);
        alice.send(&jid_refs);
        let replay = replay_of(kind, &dir, &handle, "encrypt", || {
            alice.send(&jid_refs);
        });
        let mut core = Core::new(ALICE, alice.device_id);
        let mut to = Vec::new();
        for r in &recipients {
            let (_, bundle) = Account::<MemoryStore>::bundle(&server, &r.jid, r.device_id);
            core.device
                .build_session(&r.jid, r.device_id, &bundle, &mut rand::rng())
                .unwrap();
            to.push((r.jid.clone(), r.device_id));
        }
        Self {
            _dir: dir,
            alice,
            jids,
            sent: 0,
            core: Some((core, to)),
            replay: Some(replay),
        }
    }

    pub fn machine(&mut self, n: usize) -> Duration {
        let jids: Vec<&str> = self.jids.iter().map(String::as_str).collect();
        let first = self.sent + 1;
        self.sent += n as u64;
        let start = Instant::now();
        for k in first..=self.sent {
            self.alice.send_nth(&jids, k);
        }
        per_call(start.elapsed(), n)
    }

    pub fn core_and_commit(&mut self) -> (Runner, Runner) {
        let (mut core, to) = self.core.take().unwrap();
        let mut sent = 0;
        let core_runner: Runner = Box::new(move |n| {
            let to: Vec<(&str, u32)> = to.iter().map(|(j, d)| (j.as_str(), *d)).collect();
            let first = sent + 1;
            sent += n as u64;
            let start = Instant::now();
            for k in first..=sent {
                std::hint::black_box(core.send_nth(&to, k));
            }
            per_call(start.elapsed(), n)
        });
        (core_runner, commit_runner(self.replay.take().unwrap()))
    }
}

/// Bob (on the store of the kind given) reads Alice's messages; `extra` more sessions stored
/// beside hers.
pub struct DecryptWorld {
    _dir: TempDir,
    server: Server,
    alice: Account<MemoryStore>,
    bob: Account<BenchStore>,
    /// Messages Alice has sent in the timed rows (see `message_rng`).
    sent: u64,
    core: Option<(Core, Core)>,
    replay: Option<Replay>,
}

impl DecryptWorld {
    pub fn new(kind: Kind, extra: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Server::default();
        let alice = memory_account(&mut server, ALICE);
        let (store, handle) = new_store(kind, &dir, "bob.sqlite3");
        let bob = Account::open(&mut server, store, BOB);
        let mut alice_core = Core::new(ALICE, alice.device_id);
        let mut bob_core = Core::new(BOB, bob.device_id);
        for i in 0..extra {
            let other = Core::new(&format!("other{i}@example.org"), 5_000 + i as u32);
            let bundle = other.device.bundle(olmo::omemo::Version::Omemo2);
            let xml = bundle_xml(&bundle);
            block_on(
                bob.machine
                    .receive_bundle(&other.jid, other.id(), &xml, &mut rand::rng()),
            )
            .unwrap();
            bob_core
                .device
                .build_session(&other.jid, other.id(), &bundle, &mut rand::rng())
                .unwrap();
        }
        introduce(&mut server, &alice, &bob);
        introduce_core(&mut alice_core, &mut bob_core);
        let message = alice.send(&[BOB]);
        let replay = replay_of(kind, &dir, &handle, "decrypt", || {
            assert!(bob.receive(&mut server, ALICE, &message).is_empty());
        });
        reset_chain(&mut server, &alice, &bob);
        Self {
            _dir: dir,
            server,
            alice,
            bob,
            sent: 0,
            core: Some((alice_core, bob_core)),
            replay: Some(replay),
        }
    }

    pub fn machine(&mut self, n: usize) -> Duration {
        let mut elapsed = Duration::ZERO;
        let mut done = 0;
        while done < n {
            let chunk: Vec<(String, String)> = (0..CHAIN.min(n - done))
                .map(|_| {
                    self.sent += 1;
                    let xml = self.alice.send_nth(&[BOB], self.sent);
                    (xml, self.server.stanza_id())
                })
                .collect();
            let start = Instant::now();
            for (xml, id) in &chunk {
                assert!(self.bob.receive_as(ALICE, xml, id).is_empty());
            }
            elapsed += start.elapsed();
            done += chunk.len();
            reset_chain(&mut self.server, &self.alice, &self.bob);
        }
        per_call(elapsed, n)
    }

    pub fn core_and_commit(&mut self) -> (Runner, Runner) {
        let (mut alice, mut bob) = self.core.take().unwrap();
        let mut sent = 0;
        let core_runner: Runner = Box::new(move |n| {
            let mut elapsed = Duration::ZERO;
            let mut done = 0;
            let bob_id = bob.id();
            while done < n {
                let chunk: Vec<String> = (0..CHAIN.min(n - done))
                    .map(|_| {
                        sent += 1;
                        alice.send_nth(&[(BOB, bob_id)], sent)
                    })
                    .collect();
                let start = Instant::now();
                for xml in &chunk {
                    std::hint::black_box(bob.receive(ALICE, xml).unwrap());
                }
                elapsed += start.elapsed();
                done += chunk.len();
                reset_core_chain(&mut alice, &mut bob);
            }
            per_call(elapsed, n)
        });
        (core_runner, commit_runner(self.replay.take().unwrap()))
    }
}

fn bundle_xml(bundle: &VerifiedBundle) -> String {
    bundle.to_element().serialize()
}

/// Alice (on the store of the kind given) builds sessions with the 10 devices of Bob's JID
/// from their bundles.
pub struct BuildWorld {
    _dir: TempDir,
    alice: Account<BenchStore>,
    bundles: Vec<(u32, String)>,
    core: Option<Core>,
    replay: Option<Replay>,
}

impl BuildWorld {
    pub fn new(kind: Kind) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Server::default();
        let bobs: Vec<_> = (0..10).map(|_| memory_account(&mut server, BOB)).collect();
        let (store, handle) = new_store(kind, &dir, "alice.sqlite3");
        let alice = Account::open(&mut server, store, ALICE);
        alice.refresh(&server, &[BOB]);
        let bundles: Vec<(u32, String)> = block_on(alice.machine.bundle_requests(&[BOB]))
            .unwrap()
            .into_iter()
            .filter(|r| r.version == olmo::omemo::Version::Omemo2)
            .map(|r| {
                let xml = server.item(&r.jid, &r.node, &r.item_id).unwrap().to_owned();
                (r.device_id, xml)
            })
            .collect();
        assert_eq!(bundles.len(), bobs.len());
        let (id, xml) = &bundles[0];
        let replay = replay_of(kind, &dir, &handle, "build", || {
            block_on(
                alice
                    .machine
                    .receive_bundle(BOB, *id, xml, &mut rand::rng()),
            )
            .unwrap();
        });
        let core = Core::new(ALICE, alice.device_id);
        Self {
            _dir: dir,
            alice,
            bundles,
            core: Some(core),
            replay: Some(replay),
        }
    }

    /// Time per 10 sessions.
    pub fn machine(&mut self, n: usize) -> Duration {
        let start = Instant::now();
        for _ in 0..n {
            for (id, xml) in &self.bundles {
                block_on(
                    self.alice
                        .machine
                        .receive_bundle(BOB, *id, xml, &mut rand::rng()),
                )
                .unwrap();
            }
        }
        per_call(start.elapsed(), n)
    }

    /// Time per session, and per session's commit.
    pub fn core_and_commit(&mut self) -> (Runner, Runner) {
        let mut core = self.core.take().unwrap();
        let bundles = self.bundles.clone();
        let core_runner: Runner = Box::new(move |n| {
            let start = Instant::now();
            for i in 0..n {
                let (id, xml) = &bundles[i % bundles.len()];
                let bundle =
                    VerifiedBundle::from_element(&BundleElement::parse(xml).unwrap()).unwrap();
                core.device
                    .build_session(BOB, *id, &bundle, &mut rand::rng())
                    .unwrap();
            }
            per_call(start.elapsed(), n)
        });
        (core_runner, commit_runner(self.replay.take().unwrap()))
    }
}

/// Bob (on the store of the kind given, restored before each run) reads an archive from
/// several contacts.
pub struct CatchUpWorld {
    kind: Kind,
    dir: TempDir,
    base: BenchStore,
    archive: Vec<(String, String)>,
    runs: usize,
    core: Option<(Core, Vec<u8>, Archive)>,
    replay: Option<Replay>,
}

impl CatchUpWorld {
    pub fn new(kind: Kind, senders: usize, each: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Server::default();
        let (store, base) = new_store(kind, &dir, "bob.sqlite3");
        let bob = Account::open(&mut server, store, BOB);
        let mut bob_core = Core::new(BOB, bob.device_id);
        let mut contacts = Vec::new();
        let mut contact_cores = Vec::new();
        for i in 0..senders {
            let contact = memory_account(&mut server, &format!("contact{i}@example.org"));
            introduce(&mut server, &contact, &bob);
            let mut core = Core::new(&contact.jid, contact.device_id);
            introduce_core(&mut core, &mut bob_core);
            contacts.push(contact);
            contact_cores.push(core);
        }
        let mut archive = Vec::new();
        let mut core_archive = Vec::new();
        for _ in 0..each {
            for (contact, core) in contacts.iter().zip(&mut contact_cores) {
                let k = archive.len() as u64;
                archive.push((contact.jid.clone(), contact.send_nth(&[BOB], k)));
                let xml = core.send_nth(&[(BOB, bob_core.id())], k);
                core_archive.push((core.jid.clone(), xml));
            }
        }
        drop(bob);
        let saved = bob_core.save();
        let mut world = Self {
            kind,
            dir,
            base,
            archive,
            runs: 0,
            core: Some((bob_core, saved, core_archive)),
            replay: None,
        };
        world.replay = Some(world.capture_replay(senders));
        world
    }

    /// The commit of one message in the second round (a chain already open).
    fn capture_replay(&mut self, senders: usize) -> Replay {
        let (handle, bob) = self.restored();
        let mut server = Server::default();
        for (from, xml) in &self.archive[..senders.min(self.archive.len() - 1)] {
            let replies = bob.receive(&mut server, from, xml);
            assert!(replies.is_empty(), "capture: {replies:?}");
        }
        let (from, xml) = &self.archive[senders.min(self.archive.len() - 1)];
        replay_of(self.kind, &self.dir, &handle, "catch-up", || {
            bob.receive(&mut server, from, xml);
        })
    }

    /// Bob as he was before the archive, in a fresh copy of his store, and a second handle on
    /// that copy.
    fn restored(&mut self) -> (BenchStore, Account<BenchStore>) {
        self.runs += 1;
        let path = self.dir.path().join(format!("run-{}.sqlite3", self.runs));
        let store = self.base.copy(&path);
        let handle = store.handle();
        (handle, Account::reopen(store, BOB))
    }

    pub fn replay_per_message(&self) -> f64 {
        self.archive.len() as f64
    }

    /// Time per catch-up of the whole archive.
    pub fn machine(&mut self, n: usize) -> Duration {
        let mut elapsed = Duration::ZERO;
        for _ in 0..n {
            let (handle, bob) = self.restored();
            let mut server = Server::default();
            let ids: Vec<String> = self.archive.iter().map(|_| server.stanza_id()).collect();
            let start = Instant::now();
            for (i, ((from, xml), id)) in self.archive.iter().zip(&ids).enumerate() {
                let replies = bob.receive_as(from, xml, id);
                assert!(replies.is_empty(), "message {i}: {replies:?}");
            }
            elapsed += start.elapsed();
            drop(bob);
            handle.remove();
        }
        per_call(elapsed, n)
    }

    /// Time per catch-up of the whole archive by the core device, restored from its saved
    /// bytes first, and per message's commit. The restore is timed: the machine's side starts
    /// from its store just as this one starts from the saved device, and loads its device
    /// (identity, slots) inside its timed catch-up.
    pub fn core_and_commit(&mut self) -> (Runner, Runner) {
        let (mut bob, saved, archive) = self.core.take().unwrap();
        let core_runner: Runner = Box::new(move |n| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..n {
                let start = Instant::now();
                // Dropped at the end of the iteration, after the clock stops.
                let _replaced = bob.restore(&saved);
                for (from, xml) in &archive {
                    std::hint::black_box(bob.receive(from, xml).unwrap());
                }
                elapsed += start.elapsed();
            }
            per_call(elapsed, n)
        });
        (core_runner, commit_runner(self.replay.take().unwrap()))
    }
}
