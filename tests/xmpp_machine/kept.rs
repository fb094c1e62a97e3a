//! The machine keeps its assembled device between operations and uses it only while the store
//! holds the records it stands for: another process of the same account moving a session
//! between two operations of this one is noticed, and no message key or nonce is used twice.

use olmo::persist::StorageKey;
use olmo::store::{MemoryStore, block_on};
use olmo::xmpp::XmppMachine;

use super::common::rng::TestRng;
use super::server::Server;
use super::{Device, NOW, bodies};

const ROMEO: &str = "romeo@montague.example";
const JULIET: &str = "juliet@capulet.example";

#[test]
fn sessions_moved_by_another_process_between_two_operations_are_read_again() {
    let mut server = Server::new();
    let store = MemoryStore::new();
    let mut juliet = Device::new(&mut server, JULIET, 101);
    let mut a = Device::open(&mut server, store.clone(), ROMEO, 102);
    // Process B: the same account and records, its own randomness.
    let key = StorageKey::from_bytes([102; 32]);
    let machine = block_on(XmppMachine::open(
        store,
        &key,
        ROMEO,
        NOW,
        &mut TestRng::new(103),
    ))
    .unwrap();
    let mut b = Device {
        machine,
        rng: TestRng::new(104),
        jid: ROMEO.to_owned(),
        read: 0,
    };

    // Each send of one process moves the sending chain the other's kept device holds.
    let mut sent = Vec::new();
    for i in 0..5 {
        let process = if i % 2 == 0 { &mut a } else { &mut b };
        let body = format!("romeo {i}");
        let outcome = process.send(&mut server, JULIET, &body);
        for stanza in &outcome.stanzas {
            assert!(!sent.contains(&stanza.payload), "a stanza sent twice");
            sent.push(stanza.payload.clone());
        }
    }
    let read = juliet.catch_up(&mut server);
    assert!(read.iter().all(Result::is_ok), "{read:?}");
    assert_eq!(
        bodies(&read),
        ["romeo 0", "romeo 1", "romeo 2", "romeo 3", "romeo 4"]
    );

    // Each decrypt of one process moves the receiving chain the other's kept device holds.
    juliet.send(&mut server, ROMEO, "juliet 0");
    assert_eq!(bodies(&b.catch_up(&mut server)), ["juliet 0"]);
    juliet.send(&mut server, ROMEO, "juliet 1");
    // A reads the archive from its start: the stanza B decrypted gives B's outcome.
    let read = a.catch_up(&mut server);
    assert!(read.iter().all(Result::is_ok), "{read:?}");
    assert_eq!(bodies(&read), ["juliet 0", "juliet 1"]);
    juliet.send(&mut server, ROMEO, "juliet 2");
    let read = b.catch_up(&mut server);
    assert!(read.iter().all(Result::is_ok), "{read:?}");
    assert_eq!(bodies(&read), ["juliet 1", "juliet 2"]);

    // And sending goes on from the chain the other process left.
    b.send(&mut server, JULIET, "romeo 5");
    a.send(&mut server, JULIET, "romeo 6");
    let read = juliet.catch_up(&mut server);
    assert!(read.iter().all(Result::is_ok), "{read:?}");
    assert_eq!(bodies(&read), ["romeo 5", "romeo 6"]);
}
