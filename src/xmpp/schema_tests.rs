//! A store written in schema 1 (the session clocks and pre-keys inside the account record) or 2
//! (the pre-keys inside it) opens, is migrated in one commit, and the conversation goes on from
//! where it was.

#![allow(clippy::unwrap_used)]

use super::machine::PreKeysUse;
use super::tables::{
    ACCOUNT, ACCOUNT_KEY, CLOCK_KEY, PRE_KEYS_KEY, SCHEMA, SCHEMA_1, SCHEMA_2, SESSIONS,
};
use super::{XmppMachine, device_list_node};
use crate::omemo::Version;
use crate::persist::StorageKey;
use crate::store::records::pack;
use crate::store::{Backend, MemoryStore, Txn, block_on};
use crate::time::Timestamp;

const NOW: Timestamp = Timestamp::from_millis(1_765_000_000_000);
const ALICE: &str = "alice@example.org";
const BOB: &str = "bob@example.org";

fn key() -> StorageKey {
    StorageKey::from_bytes([9; 32])
}

fn open(store: &MemoryStore, jid: &str) -> XmppMachine<MemoryStore> {
    block_on(XmppMachine::open(
        store.clone(),
        &key(),
        jid,
        NOW,
        &mut rand::rng(),
    ))
    .unwrap()
}

/// `to` learns `from`'s device lists and bundles (both versions) and builds sessions.
fn meet(from: &XmppMachine<MemoryStore>, to: &XmppMachine<MemoryStore>) {
    let items = block_on(from.publish(NOW, &mut rand::rng())).unwrap();
    for version in [Version::Omemo2, Version::Omemo03] {
        let list = items
            .iter()
            .find(|i| i.version == version && i.node == device_list_node(version))
            .unwrap();
        block_on(to.receive_device_list(from.jid(), &list.payload, &mut rand::rng())).unwrap();
    }
    for request in block_on(to.bundle_requests(&[from.jid()])).unwrap() {
        let bundle = items
            .iter()
            .find(|i| i.node == request.node && i.item_id == request.item_id)
            .unwrap();
        block_on(to.receive_bundle(
            from.jid(),
            request.device_id,
            &bundle.payload,
            &mut rand::rng(),
        ))
        .unwrap();
    }
}

/// `from` says `body` to `to`, who reads it (and answers a key exchange); every payload of
/// every version is delivered.
fn say(from: &XmppMachine<MemoryStore>, to: &XmppMachine<MemoryStore>, body: &str) {
    let outcome =
        block_on(from.encrypt(&[to.jid()], to.jid(), body, NOW, &mut rand::rng())).unwrap();
    assert!(outcome.skipped.is_empty(), "{:?}", outcome.skipped);
    for stanza in outcome.stanzas {
        let read = block_on(to.decrypt(
            from.jid(),
            to.jid(),
            &stanza.payload,
            None,
            &mut rand::rng(),
        ))
        .unwrap();
        assert_eq!(read.message.unwrap().body.as_deref(), Some(body));
        for reply in read.replies {
            let empty = block_on(from.decrypt(
                to.jid(),
                from.jid(),
                &reply.payload,
                None,
                &mut rand::rng(),
            ))
            .unwrap();
            assert!(empty.message.is_none());
        }
    }
}

/// Rewrites `store` as schema `old` wrote it: every record under that schema, the account
/// record's device with its pre-keys inside (and, schema 1, its clocks: no clock record), no
/// pre-keys record.
fn to_schema(old: u16, machine: &XmppMachine<MemoryStore>, store: &MemoryStore) {
    let mut txn = Txn::new(store, &machine.sealer);
    let loaded = block_on(machine.load(&mut txn, PreKeysUse::Needed)).unwrap();
    let mut txn = Txn::new(store, &machine.sealer);
    for (table, key, _) in store.snapshot() {
        let (_, plaintext) = block_on(txn.get(&table, &key)).unwrap().unwrap();
        let plaintext = if table == ACCOUNT && key == ACCOUNT_KEY {
            let own = match old {
                SCHEMA_1 => loaded.device.own_record_schema_1(),
                _ => loaded.device.own_record(),
            };
            pack(&loaded.meta, &[&own])
        } else {
            plaintext
        };
        let gone =
            table == ACCOUNT && (key == PRE_KEYS_KEY || (key == CLOCK_KEY && old == SCHEMA_1));
        if gone {
            txn.delete(&table, &key).unwrap();
        } else {
            txn.put(&table, &key, old, plaintext).unwrap();
        }
    }
    block_on(txn.commit(&mut rand::rng())).unwrap();
}

fn schemas(store: &MemoryStore, machine: &XmppMachine<MemoryStore>) -> Vec<(String, Vec<u8>, u16)> {
    let mut txn = Txn::new(store, &machine.sealer);
    store
        .snapshot()
        .into_iter()
        .map(|(table, key, _)| {
            let (schema, _) = block_on(txn.get(&table, &key)).unwrap().unwrap();
            (table, key, schema)
        })
        .collect()
}

#[test]
fn a_schema_1_store_is_migrated_on_open_and_goes_on() {
    migrates_from(SCHEMA_1);
}

#[test]
fn a_schema_2_store_is_migrated_on_open_and_goes_on() {
    migrates_from(SCHEMA_2);
}

fn migrates_from(old: u16) {
    let (alice_store, bob_store) = (MemoryStore::new(), MemoryStore::new());
    let alice = open(&alice_store, ALICE);
    let bob = open(&bob_store, BOB);
    meet(&alice, &bob);
    meet(&bob, &alice);
    for round in 0..3 {
        say(&alice, &bob, &format!("alice {round}"));
        say(&bob, &alice, &format!("bob {round}"));
    }
    let mut txn = Txn::new(&bob_store, &bob.sealer);
    let before = block_on(bob.load(&mut txn, PreKeysUse::Needed)).unwrap();
    let clocks = before.device.clocks();
    assert!(clocks.omemo2 > 0);
    drop(bob);

    to_schema(old, &before_machine(&bob_store), &bob_store);
    assert!(
        schemas(&bob_store, &before_machine(&bob_store))
            .iter()
            .all(|(_, _, schema)| *schema == old)
    );
    let clock_record = block_on(bob_store.get(ACCOUNT, CLOCK_KEY)).unwrap();
    assert_eq!(clock_record.is_some(), old != SCHEMA_1);
    assert!(
        block_on(bob_store.get(ACCOUNT, PRE_KEYS_KEY))
            .unwrap()
            .is_none()
    );
    let sessions = bob_store.len(SESSIONS);

    // Opening migrates the account record, in one commit; the sessions stay as they were.
    let bob = open(&bob_store, BOB);
    let after = schemas(&bob_store, &bob);
    let schema_of = |key: &[u8]| {
        after
            .iter()
            .find(|(table, k, _)| table == ACCOUNT && k == key)
            .map(|(_, _, schema)| *schema)
    };
    assert_eq!(schema_of(ACCOUNT_KEY), Some(SCHEMA));
    assert_eq!(schema_of(CLOCK_KEY), Some(SCHEMA));
    assert_eq!(schema_of(PRE_KEYS_KEY), Some(SCHEMA));
    assert_eq!(bob_store.len(SESSIONS), sessions);
    let mut txn = Txn::new(&bob_store, &bob.sealer);
    let migrated = block_on(bob.load(&mut txn, PreKeysUse::Needed)).unwrap();
    assert_eq!(migrated.device.clocks(), clocks);
    assert!(migrated.device.to_record() == before.device.to_record());
    assert_eq!(migrated.meta, before.meta);

    // Opening again writes nothing; the conversation goes on, both ways.
    let snapshot = bob_store.snapshot();
    let bob = open(&bob_store, BOB);
    assert_eq!(bob_store.snapshot(), snapshot);
    for round in 3..6 {
        say(&alice, &bob, &format!("alice {round}"));
        say(&bob, &alice, &format!("bob {round}"));
    }
}

/// A machine over `store` without opening it (opening would migrate).
fn before_machine(store: &MemoryStore) -> XmppMachine<MemoryStore> {
    XmppMachine {
        backend: store.clone(),
        sealer: crate::store::Sealer::new(&key()),
        jid: BOB.to_owned(),
        memo: super::memo::Memo::default(),
        known: crate::store::KnownSlot::new(),
    }
}
