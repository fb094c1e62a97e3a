//! One commit per operation: a backend that counts commits (and keeps the tables the last batch
//! wrote) shows every XMPP machine operation that changes state committing exactly once, reads
//! and no-ops committing not at all, and session records kept one per (version, JID, device).
//! The same backend fails a chosen commit, for `write_faults.rs`.

use std::collections::BTreeMap;

use olmo::omemo::Version;
use olmo::persist::StorageKey;
use olmo::store::block_on;
use olmo::time::Timestamp;
use olmo::xmpp::{Trust, XmppMachine, device_list_node};

use super::common::rng::TestRng;
use super::server::Server;
use super::{Device, NOW, bodies};

const ROMEO: &str = "romeo@montague.example";
const JULIET: &str = "juliet@capulet.example";
const MERCUTIO: &str = "mercutio@verona.example";
const BENVOLIO: &str = "benvolio@montague.example";

pub use super::common::counting_store::CountingStore;

/// Runs `op` and returns its result with the commits it made.
fn commits_of<T>(store: &CountingStore, op: impl FnOnce() -> T) -> (T, u64) {
    let before = store.commits();
    let value = op();
    (value, store.commits() - before)
}

#[test]
fn every_operation_that_changes_state_commits_exactly_once() {
    let mut server = Server::new();
    let mut counts = Vec::new();
    let juliet_store = CountingStore::new();
    let key = StorageKey::from_bytes([31; 32]);
    let mut rng = TestRng::new(31);

    let (machine, n) = commits_of(&juliet_store, || {
        block_on(XmppMachine::open(
            juliet_store.clone(),
            &key,
            JULIET,
            NOW,
            &mut rng,
        ))
        .unwrap()
    });
    counts.push(("open (new store)", n));
    drop(machine);
    let (machine, n) = commits_of(&juliet_store, || {
        block_on(XmppMachine::open(
            juliet_store.clone(),
            &key,
            JULIET,
            NOW,
            &mut rng,
        ))
        .unwrap()
    });
    counts.push(("open (existing store)", n));
    let (items, n) = commits_of(&juliet_store, || {
        block_on(machine.publish(NOW, &mut rng)).unwrap()
    });
    counts.push(("publish (fresh keys, nothing to maintain)", n));
    server.publish(JULIET, &items);
    let list = server
        .item(JULIET, device_list_node(Version::Omemo2), "current")
        .unwrap()
        .to_owned();
    let (_, n) = commits_of(&juliet_store, || {
        block_on(machine.receive_device_list(JULIET, &list, &mut rng)).unwrap()
    });
    counts.push(("receive_device_list (own, new)", n));
    let mut juliet = Device {
        machine,
        rng,
        jid: JULIET.to_owned(),
        read: 0,
    };

    let mut romeo = Device::new(&mut server, ROMEO, 32);
    romeo.send(&mut server, JULIET, "first");

    let romeo_list = server
        .item(ROMEO, device_list_node(Version::Omemo2), "current")
        .unwrap()
        .to_owned();
    let (_, n) = commits_of(&juliet_store, || {
        block_on(
            juliet
                .machine
                .receive_device_list(ROMEO, &romeo_list, &mut juliet.rng),
        )
        .unwrap()
    });
    counts.push(("receive_device_list (contact, new)", n));
    let before = juliet_store.snapshot();
    let (update, n) = commits_of(&juliet_store, || {
        block_on(
            juliet
                .machine
                .receive_device_list(ROMEO, &romeo_list, &mut juliet.rng),
        )
        .unwrap()
    });
    counts.push(("receive_device_list (the same list again)", n));
    assert_eq!(update, Default::default());
    assert!(before == juliet_store.snapshot());
    let (requests, n) = commits_of(&juliet_store, || {
        block_on(juliet.machine.bundle_requests(&[ROMEO])).unwrap()
    });
    counts.push(("bundle_requests", n));
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    let bundle = server
        .item(&request.jid, &request.node, &request.item_id)
        .unwrap()
        .to_owned();

    // Decrypting Romeo's key exchange consumes a pre-key; the same stanza id again is a read.
    let message = server.archive(JULIET, 0).remove(0);
    let decrypt = |juliet: &mut Device<CountingStore>| {
        block_on(juliet.machine.decrypt(
            &message.from,
            &message.to,
            &message.payload,
            Some(&message.id),
            &mut juliet.rng,
        ))
        .unwrap()
    };
    let (outcome, n) = commits_of(&juliet_store, || decrypt(&mut juliet));
    counts.push(("decrypt (key exchange)", n));
    assert!(outcome.republish);
    let before = juliet_store.snapshot();
    let (again, n) = commits_of(&juliet_store, || decrypt(&mut juliet));
    counts.push(("decrypt (stanza id already processed)", n));
    assert_eq!(again, outcome);
    assert!(before == juliet_store.snapshot());

    let (items, n) = commits_of(&juliet_store, || {
        block_on(juliet.machine.publish(NOW, &mut juliet.rng)).unwrap()
    });
    counts.push(("publish (the used pre-key was replaced by decrypt)", n));
    server.publish(JULIET, &items);
    let week_later = Timestamp::from_millis(NOW.as_millis() + 8 * 24 * 60 * 60 * 1000);
    let (items, n) = commits_of(&juliet_store, || {
        block_on(juliet.machine.publish(week_later, &mut juliet.rng)).unwrap()
    });
    counts.push(("publish (signed pre-key rotated)", n));
    server.publish(JULIET, &items);
    let (_, n) = commits_of(&juliet_store, || {
        block_on(
            juliet
                .machine
                .receive_bundle(ROMEO, request.device_id, &bundle, &mut juliet.rng),
        )
        .unwrap()
    });
    counts.push(("receive_bundle", n));
    let (_, n) = commits_of(&juliet_store, || {
        block_on(
            juliet
                .machine
                .encrypt(&[ROMEO], ROMEO, "reply", NOW, &mut juliet.rng),
        )
        .unwrap()
    });
    counts.push(("encrypt", n));
    let fingerprint = outcome.message.unwrap().fingerprint;
    let (_, n) = commits_of(&juliet_store, || {
        block_on(
            juliet
                .machine
                .set_trust(ROMEO, &fingerprint, Trust::Trusted, &mut juliet.rng),
        )
        .unwrap()
    });
    counts.push(("set_trust", n));
    let (_, n) = commits_of(&juliet_store, || {
        block_on(juliet.machine.trust_decisions(ROMEO)).unwrap();
        block_on(juliet.machine.fingerprint()).unwrap();
        block_on(juliet.machine.device_id()).unwrap()
    });
    counts.push(("trust_decisions, fingerprint, device_id", n));

    for (operation, n) in &counts {
        println!("{operation}: {n} commit(s)");
    }
    let expected = [
        ("open (new store)", 1),
        ("open (existing store)", 0),
        ("publish (fresh keys, nothing to maintain)", 0),
        ("receive_device_list (own, new)", 1),
        ("receive_device_list (contact, new)", 1),
        ("receive_device_list (the same list again)", 0),
        ("bundle_requests", 0),
        ("decrypt (key exchange)", 1),
        ("decrypt (stanza id already processed)", 0),
        ("publish (the used pre-key was replaced by decrypt)", 0),
        ("publish (signed pre-key rotated)", 1),
        ("receive_bundle", 1),
        ("encrypt", 1),
        ("set_trust", 1),
        ("trust_decisions, fingerprint, device_id", 0),
    ];
    assert_eq!(counts, expected);
}

#[test]
fn sessions_are_one_record_per_device_and_a_message_rewrites_only_its_own() {
    let mut server = Server::new();
    let juliet_store = CountingStore::new();
    let mut juliet = Device::open(&mut server, juliet_store.clone(), JULIET, 41);
    let mut peers = [
        Device::new(&mut server, ROMEO, 42),
        Device::new(&mut server, MERCUTIO, 43),
        Device::new(&mut server, BENVOLIO, 44),
    ];
    for peer in &mut peers {
        juliet.send(&mut server, &peer.jid.clone(), "hello");
        assert_eq!(bodies(&peer.catch_up(&mut server)), ["hello"]);
    }
    // Each peer answers; Juliet reads all three answers.
    for peer in &mut peers {
        peer.send(&mut server, JULIET, "hello yourself");
    }
    let read = juliet.catch_up(&mut server);
    assert_eq!(bodies(&read), ["hello yourself"; 3]);
    assert_eq!(juliet_store.count("xmpp.sessions"), 3);

    // A message to one peer rewrites that peer's session record, and the account record (it
    // holds the sessions' use clock), nothing else.
    juliet.send(&mut server, ROMEO, "to Romeo alone");
    let written = juliet_store.last_batch();
    println!("encrypt to one device wrote {written:?}");
    assert_eq!(
        written,
        BTreeMap::from([
            ("xmpp.account".to_owned(), 1),
            ("xmpp.sessions".to_owned(), 1)
        ]),
        "encrypt to one device"
    );
    assert_eq!(juliet_store.count("xmpp.sessions"), 3);

    // A message from one peer rewrites its session record (with the account's clock and the
    // processed-id record).
    peers[1].send(&mut server, JULIET, "from Mercutio");
    let read = juliet.catch_up(&mut server);
    assert_eq!(bodies(&read), ["from Mercutio"]);
    let written = juliet_store.last_batch();
    println!("decrypt from one device wrote {written:?}");
    assert_eq!(
        written,
        BTreeMap::from([
            ("xmpp.account".to_owned(), 1),
            ("xmpp.processed".to_owned(), 1),
            ("xmpp.sessions".to_owned(), 1)
        ]),
        "decrypt from one device"
    );
    assert_eq!(juliet_store.count("xmpp.sessions"), 3);
}

#[test]
fn a_device_list_reports_each_change_once_and_a_repeated_list_writes_nothing() {
    let store = CountingStore::new();
    let key = StorageKey::from_bytes([91; 32]);
    let mut rng = TestRng::new(91);
    let machine = block_on(XmppMachine::open(
        store.clone(),
        &key,
        JULIET,
        NOW,
        &mut rng,
    ))
    .unwrap();
    let list = |ids: &[u32]| {
        let devices: String = ids
            .iter()
            .map(|id| format!("<device id='{id}'/>"))
            .collect();
        format!("<devices xmlns='urn:xmpp:omemo:2'>{devices}</devices>")
    };
    let mut receive = |ids: &[u32]| {
        commits_of(&store, || {
            block_on(machine.receive_device_list(ROMEO, &list(ids), &mut rng)).unwrap()
        })
    };
    let (update, n) = receive(&[1, 2]);
    assert_eq!((update.added, update.removed, n), (vec![1, 2], vec![], 1));
    let (update, n) = receive(&[1, 2]);
    assert_eq!((update.added, update.removed, n), (vec![], vec![], 0));
    let (update, n) = receive(&[1]);
    assert_eq!((update.added, update.removed, n), (vec![], vec![2], 1));
    let (update, n) = receive(&[1]);
    assert_eq!((update.added, update.removed, n), (vec![], vec![], 0));
    // A device coming back is added again.
    let (update, n) = receive(&[1, 2]);
    assert_eq!((update.added, update.removed, n), (vec![2], vec![], 1));
}
