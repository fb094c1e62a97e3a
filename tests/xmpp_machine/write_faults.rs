//! A failed write changes nothing: over a scripted conversation (Romeo sends five messages,
//! Juliet reads them and replies, Romeo reads the reply), the Nth commit of one side's store
//! fails, for every N. The operation that hit it errors, the store is byte-identical to before
//! it, the operation run again goes on, and at the end every message was decrypted exactly once
//! and no pre-key was consumed twice.

use olmo::store::{StoreError, block_on};
use olmo::xmpp::{DecryptOutcome, XmppError};

use super::commits::CountingStore;
use super::server::{Message, Server};
use super::{Device, NOW};

const ROMEO: &str = "romeo@montague.example";
const JULIET: &str = "juliet@capulet.example";

/// Runs `op` until it does not fail with the injected write failure; each failure must have left
/// `store` byte-identical. Returns the result and how many attempts failed.
fn retried<T>(
    store: &CountingStore,
    failures: &mut u32,
    mut op: impl FnMut() -> Result<T, XmppError>,
) -> T {
    loop {
        let before = store.snapshot();
        match op() {
            Err(XmppError::Store(StoreError::Backend(_))) => {
                assert!(
                    before == store.snapshot(),
                    "a failed commit changed the store"
                );
                *failures += 1;
            }
            other => return other.unwrap(),
        }
    }
}

/// One side of the conversation, with its store and what it read.
struct Side {
    device: Device<CountingStore>,
    store: CountingStore,
    failures: u32,
    /// (stanza id, body) of the messages read.
    read: Vec<(String, String)>,
}

impl Side {
    fn open(server: &mut Server, jid: &str, seed: u64, tracking: bool) -> Self {
        let store = if tracking {
            CountingStore::tracking()
        } else {
            CountingStore::new()
        };
        let device = Device::open(server, store.clone(), jid, seed);
        Self {
            device,
            store,
            failures: 0,
            read: Vec::new(),
        }
    }

    fn send(&mut self, server: &mut Server, to: &str, body: &str) {
        let Self {
            device,
            store,
            failures,
            ..
        } = self;
        for jid in [to, &device.jid.clone()] {
            for version in [olmo::omemo::Version::Omemo2, olmo::omemo::Version::Omemo03] {
                let node = olmo::xmpp::device_list_node(version);
                if let Some(list) = server.item(jid, node, "current") {
                    retried(store, failures, || {
                        block_on(
                            device
                                .machine
                                .receive_device_list(jid, list, &mut device.rng),
                        )
                    });
                }
            }
        }
        let requests = retried(store, failures, || {
            block_on(device.machine.bundle_requests(&[to]))
        });
        for request in requests {
            let bundle = server
                .item(&request.jid, &request.node, &request.item_id)
                .unwrap();
            retried(store, failures, || {
                block_on(device.machine.receive_bundle(
                    &request.jid,
                    request.device_id,
                    bundle,
                    &mut device.rng,
                ))
            });
        }
        let outcome = retried(store, failures, || {
            block_on(
                device
                    .machine
                    .encrypt(&[to], to, body, NOW, &mut device.rng),
            )
        });
        assert!(outcome.skipped.is_empty(), "{:?}", outcome.skipped);
        for stanza in outcome.stanzas {
            server.send(&device.jid, to, stanza.version, &stanza.payload);
        }
    }

    /// Reads the account's archive from the start (messages already read return their stored
    /// outcome), answering key exchanges and republishing after a pre-key was used.
    fn read_all(&mut self, server: &mut Server) {
        let Self {
            device,
            store,
            failures,
            read,
        } = self;
        let mut republish = false;
        for message in server.archive(&device.jid, 0) {
            if message.from == device.jid {
                continue;
            }
            let outcome: DecryptOutcome = retried(store, failures, || decrypt(device, &message));
            // The same stanza id gives the same body (the stored outcome): keep it once.
            if let Some(body) = outcome.message.and_then(|m| m.body)
                && !read.iter().any(|(id, _)| *id == message.id)
            {
                read.push((message.id.clone(), body));
            }
            for reply in outcome.replies {
                server.send(&device.jid, &reply.to, reply.version, &reply.payload);
            }
            republish |= outcome.republish;
        }
        if republish {
            let items = retried(store, failures, || {
                block_on(device.machine.publish(NOW, &mut device.rng))
            });
            server.publish(&device.jid, &items);
        }
    }
}

fn decrypt(
    device: &mut Device<CountingStore>,
    message: &Message,
) -> Result<DecryptOutcome, XmppError> {
    block_on(device.machine.decrypt(
        &message.from,
        &message.to,
        &message.payload,
        Some(&message.id),
        &mut device.rng,
    ))
}

/// The script, with the `fail_at`th commit after setup of Juliet's store (`juliet_side`) or
/// Romeo's failing. Returns the commits the script made on that side, and the failures it saw.
/// `tracking`: the stores report their generation, so the machines keep the records they read
/// and committed between operations (a failed commit must drop them).
fn script(juliet_side: bool, fail_at: Option<u64>, tracking: bool) -> (u64, u32) {
    let mut server = Server::new();
    let mut romeo = Side::open(&mut server, ROMEO, 51, tracking);
    let mut juliet = Side::open(&mut server, JULIET, 52, tracking);
    let watched = if juliet_side {
        &juliet.store
    } else {
        &romeo.store
    }
    .clone();
    let start = watched.commits();
    if let Some(n) = fail_at {
        watched.fail_commit(start + n);
    }

    let lines: Vec<String> = (0..5).map(|i| format!("line {i}")).collect();
    for line in &lines {
        romeo.send(&mut server, JULIET, line);
    }
    juliet.read_all(&mut server);
    juliet.send(&mut server, ROMEO, "reply");
    romeo.read_all(&mut server);

    // Every message was read once, in order; reading the archives again changes nothing.
    assert_eq!(bodies_of(&juliet.read), lines);
    assert_eq!(bodies_of(&romeo.read), ["reply"]);
    let before = juliet.store.snapshot();
    juliet.read_all(&mut server);
    assert!(
        before == juliet.store.snapshot(),
        "an archive re-read wrote"
    );
    assert_eq!(bodies_of(&juliet.read), lines);

    let commits = watched.commits() - start;
    // The first key exchange under a new stanza id: its pre-key is gone, nothing decrypts twice.
    let mut first = server.archive(JULIET, 0).remove(0);
    first.id = "replayed".into();
    let replay = decrypt(&mut juliet.device, &first);
    assert!(
        matches!(replay, Err(XmppError::Decrypt(_))),
        "a replayed key exchange: {replay:?}"
    );

    let failures = if juliet_side {
        juliet.failures
    } else {
        romeo.failures
    };
    (commits, failures)
}

#[test]
fn every_failed_commit_leaves_the_store_unchanged_and_the_retry_completes() {
    for tracking in [false, true] {
        for juliet_side in [false, true] {
            let (commits, failures) = script(juliet_side, None, tracking);
            assert_eq!(failures, 0);
            for n in 1..=commits {
                let (_, failures) = script(juliet_side, Some(n), tracking);
                assert_eq!(failures, 1, "commit {n} of {}", name(juliet_side));
            }
            println!(
                "{} (generation {}): each of {commits} commits failed once, every retry \
                 completed",
                name(juliet_side),
                if tracking { "reported" } else { "not reported" },
            );
        }
    }
}

fn bodies_of(read: &[(String, String)]) -> Vec<String> {
    read.iter().map(|(_, body)| body.clone()).collect()
}

fn name(juliet_side: bool) -> &'static str {
    if juliet_side { "Juliet" } else { "Romeo" }
}
