//! Bad input to the machine's stanza entry points: malformed, forged, mismatched, stripped,
//! swapped or oversized payloads get typed errors and leave the store as it was, except for what
//! the machine says it records (a device's count of failures in a row, our id moving when
//! another identity claims it), asserted here record by record.

use std::collections::{BTreeMap, BTreeSet};

use olmo::omemo::stanza::{BundleElement, EncryptedElement, StanzaError};
use olmo::omemo::{FailureReason, OmemoDevice, Version};
use olmo::store::{Record, block_on};
use olmo::xmpp::{XmppError, bundle_node, device_list_node};

use super::commits::CountingStore;
use super::common::rng::TestRng;
use super::server::{Message, Server};
use super::{Device, NOW, bodies};

const ROMEO: &str = "romeo@montague.example";
const JULIET: &str = "juliet@capulet.example";

type Snapshot = Vec<(String, Vec<u8>, Record)>;

/// Records added, changed or removed per table between two snapshots.
fn changes(before: &Snapshot, after: &Snapshot) -> BTreeMap<String, usize> {
    let index = |s: &Snapshot| -> BTreeMap<(String, Vec<u8>), Record> {
        s.iter()
            .map(|(t, k, r)| ((t.clone(), k.clone()), r.clone()))
            .collect()
    };
    let (before, after) = (index(before), index(after));
    let names: BTreeSet<_> = before.keys().chain(after.keys()).collect();
    let mut changed = BTreeMap::new();
    for name in names {
        if before.get(name) != after.get(name) {
            *changed.entry(name.0.clone()).or_insert(0) += 1;
        }
    }
    changed
}

/// Romeo and Juliet (on a counting store) after one message each way.
fn talking() -> (Server, Device, Device<CountingStore>, CountingStore) {
    let mut server = Server::new();
    let store = CountingStore::new();
    let mut romeo = Device::new(&mut server, ROMEO, 61);
    let mut juliet = Device::open(&mut server, store.clone(), JULIET, 62);
    romeo.send(&mut server, JULIET, "hello");
    assert_eq!(bodies(&juliet.catch_up(&mut server)), ["hello"]);
    juliet.send(&mut server, ROMEO, "hello yourself");
    assert_eq!(bodies(&romeo.catch_up(&mut server)), ["hello yourself"]);
    (server, romeo, juliet, store)
}

/// Runs `op` on Juliet and returns its result with the records it changed.
fn recorded<T>(store: &CountingStore, op: impl FnOnce() -> T) -> (T, BTreeMap<String, usize>) {
    let before = store.snapshot();
    let value = op();
    (value, changes(&before, &store.snapshot()))
}

fn decrypt(juliet: &mut Device<CountingStore>, message: &Message) -> Result<(), XmppError> {
    block_on(juliet.machine.decrypt(
        &message.from,
        &message.to,
        &message.payload,
        Some(&message.id),
        &mut juliet.rng,
    ))
    .map(|_| ())
}

/// The message Romeo sends now, taken off the wire before Juliet sees it.
fn intercepted(server: &mut Server, romeo: &mut Device, body: &str) -> Message {
    let outcome = romeo.send(server, JULIET, body);
    let stanza = &outcome.stanzas[0];
    Message {
        id: format!("intercepted-{body}"),
        from: ROMEO.into(),
        to: JULIET.into(),
        version: stanza.version,
        payload: stanza.payload.clone(),
    }
}

#[test]
fn malformed_device_lists_and_bundles_are_refused_and_change_nothing() {
    let (server, _romeo, mut juliet, store) = talking();
    let lists = [
        String::new(),
        "not xml".into(),
        "<devices xmlns='urn:xmpp:omemo:2'><device/></devices>".into(),
        "<devices xmlns='urn:xmpp:omemo:2'><device id='x'/></devices>".into(),
        "<devices xmlns='urn:xmpp:omemo:2'><device id='4294967296'/></devices>".into(),
        "<devices xmlns='urn:example:other'><device id='1'/></devices>".into(),
        "<list xmlns='eu.siacs.conversations.axolotl'><device id='-1'/></list>".into(),
        format!(
            "<devices xmlns='urn:xmpp:omemo:2'>{}</devices>",
            "<device id='7'/>".repeat(100_000)
        ),
    ];
    for list in &lists {
        let (result, changed) = recorded(&store, || {
            block_on(
                juliet
                    .machine
                    .receive_device_list(ROMEO, list, &mut juliet.rng),
            )
        });
        assert!(
            matches!(result, Err(XmppError::Stanza(_))),
            "{:.60}: {result:?}",
            list
        );
        assert!(changed.is_empty(), "{:.60}: {changed:?}", list);
    }

    let romeo_id = bundle_owner(&server);
    let (node, item) = bundle_node(Version::Omemo2, romeo_id);
    let good = server.item(ROMEO, &node, &item).unwrap().to_owned();
    let bundles = [
        String::new(),
        "<bundle xmlns='urn:xmpp:omemo:2'/>".into(),
        good.replace("<ik>", "<ik>AAAA"),
        good.replace("<spks>", "<spks>%%%"),
        format!("{good}{}", " ".repeat(2 << 20)),
    ];
    for bundle in &bundles {
        let (result, changed) = recorded(&store, || {
            block_on(
                juliet
                    .machine
                    .receive_bundle(ROMEO, romeo_id, bundle, &mut juliet.rng),
            )
        });
        assert!(
            matches!(
                result,
                Err(XmppError::Stanza(_) | XmppError::BadBundle { .. })
            ),
            "{:.60}: {result:?}",
            bundle
        );
        assert!(changed.is_empty(), "{:.60}: {changed:?}", bundle);
    }
}

/// Romeo's device id, from his published OMEMO 2 device list.
fn bundle_owner(server: &Server) -> u32 {
    let list = server
        .item(ROMEO, device_list_node(Version::Omemo2), "current")
        .unwrap();
    olmo::omemo::stanza::DeviceListElement::parse(list)
        .unwrap()
        .devices[0]
        .id
}

#[test]
fn a_bundle_whose_signature_fails_is_refused() {
    let (server, _romeo, mut juliet, store) = talking();
    let romeo_id = bundle_owner(&server);
    for version in [Version::Omemo2, Version::Omemo03] {
        let (node, item) = bundle_node(version, romeo_id);
        let mut element = BundleElement::parse(server.item(ROMEO, &node, &item).unwrap()).unwrap();
        element.signed_pre_key_signature[10] ^= 1;
        let forged = element.serialize();
        let (result, changed) = recorded(&store, || {
            block_on(
                juliet
                    .machine
                    .receive_bundle(ROMEO, romeo_id, &forged, &mut juliet.rng),
            )
        });
        assert!(
            matches!(result, Err(XmppError::BadBundle { .. })),
            "{version:?}: {result:?}"
        );
        assert!(changed.is_empty(), "{version:?}: {changed:?}");
    }
}

#[test]
fn our_id_listed_with_a_label_signed_by_another_identity_moves_us_to_a_new_id() {
    let (_server, _romeo, mut juliet, store) = talking();
    let ours = juliet.device_id();
    let fingerprint = block_on(juliet.machine.fingerprint()).unwrap();
    // Another device of the account, with another identity, claims our id with a signed label.
    let other = OmemoDevice::generate(JULIET, ours, NOW, &mut TestRng::new(63));
    let entry = other.identity().device_list_entry(ours, Some("tablet"));
    let list = olmo::omemo::stanza::DeviceListElement {
        version: Version::Omemo2,
        devices: vec![entry],
    }
    .serialize();
    let (update, changed) = recorded(&store, || {
        block_on(
            juliet
                .machine
                .receive_device_list(JULIET, &list, &mut juliet.rng),
        )
        .unwrap()
    });
    let moved = update.new_device_id.expect("our id moves");
    assert_ne!(moved, ours);
    assert!(update.republish);
    assert_eq!(juliet.device_id(), moved);
    assert_eq!(block_on(juliet.machine.fingerprint()).unwrap(), fingerprint);
    // Recorded: the account (new id) and our device list as received, nothing else.
    assert_eq!(
        changed,
        BTreeMap::from([
            ("xmpp.account".to_owned(), 1),
            ("xmpp.device_lists".to_owned(), 1)
        ])
    );
    // What we publish next lists the new id (and the other device under the old one).
    let items = block_on(juliet.machine.publish(NOW, &mut juliet.rng)).unwrap();
    let published = items
        .iter()
        .find(|i| i.node == device_list_node(Version::Omemo2))
        .unwrap();
    let ids: Vec<u32> = olmo::omemo::stanza::DeviceListElement::parse(&published.payload)
        .unwrap()
        .devices
        .iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(ids, [moved, ours]);
}

#[test]
fn an_envelope_naming_another_recipient_or_sender_is_refused() {
    let (mut server, mut romeo, mut juliet, store) = talking();
    // Romeo's envelope says the stanza was for someone else.
    let outcome = block_on(romeo.machine.encrypt(
        &[JULIET],
        "nurse@capulet.example",
        "not for this chat",
        NOW,
        &mut romeo.rng,
    ))
    .unwrap();
    let message = server.send(ROMEO, JULIET, Version::Omemo2, &outcome.stanzas[0].payload);
    let (result, changed) = recorded(&store, || decrypt(&mut juliet, &message));
    assert_eq!(result, Err(XmppError::EnvelopeMismatch("to")));
    assert!(changed.is_empty(), "{changed:?}");

    // A device of another account publishing under Romeo's JID: its envelopes name its own.
    let mut mallory = Device::new(&mut server, "mallory@evil.example", 64);
    mallory.refresh_lists(&server, &[JULIET]);
    mallory.fetch_bundles(&server, &[JULIET]);
    let sent =
        block_on(
            mallory
                .machine
                .encrypt(&[JULIET], JULIET, "I am Romeo", NOW, &mut mallory.rng),
        )
        .unwrap();
    let message = server.send(ROMEO, JULIET, Version::Omemo2, &sent.stanzas[0].payload);
    let (result, changed) = recorded(&store, || decrypt(&mut juliet, &message));
    assert_eq!(result, Err(XmppError::EnvelopeMismatch("from")));
    assert!(changed.is_empty(), "{changed:?}");
}

#[test]
fn swapped_payloads_count_a_failure_and_the_genuine_message_still_decrypts() {
    let (mut server, mut romeo, mut juliet, store) = talking();
    let first = intercepted(&mut server, &mut romeo, "first");
    let second = intercepted(&mut server, &mut romeo, "second");
    let mut a = EncryptedElement::parse(&first.payload).unwrap();
    let b = EncryptedElement::parse(&second.payload).unwrap();
    a.payload = b.payload.clone();
    let swapped = Message {
        id: "swapped".into(),
        payload: a.serialize(),
        ..first.clone()
    };
    let (result, changed) = recorded(&store, || decrypt(&mut juliet, &swapped));
    let Err(XmppError::Decrypt(failure)) = result else {
        panic!("{result:?}")
    };
    assert_eq!(failure.failures_in_a_row, 1);
    assert_eq!(
        changed,
        BTreeMap::from([("xmpp.failures".to_owned(), 1)]),
        "only the failure count is recorded"
    );
    // The genuine messages decrypt, and the count is cleared.
    decrypt(&mut juliet, &first).unwrap();
    decrypt(&mut juliet, &second).unwrap();
    assert_eq!(store.count("xmpp.failures"), 0);
}

#[test]
fn a_stripped_payload_is_refused_and_the_genuine_message_still_decrypts() {
    let (mut server, mut romeo, mut juliet, store) = talking();
    let message = intercepted(&mut server, &mut romeo, "stripped");
    let mut element = EncryptedElement::parse(&message.payload).unwrap();
    element.payload = None;
    let stripped = Message {
        id: "stripped".into(),
        payload: element.serialize(),
        ..message.clone()
    };
    // The key of a message with a payload is not taken for a key-transport (empty) message:
    // refused as malformed, its message key not spent.
    let (result, changed) = recorded(&store, || decrypt(&mut juliet, &stripped));
    let Err(XmppError::Decrypt(failure)) = result else {
        panic!("{result:?}")
    };
    assert_eq!(failure.reason, FailureReason::Malformed);
    assert_eq!(failure.failures_in_a_row, 1);
    assert_eq!(changed, BTreeMap::from([("xmpp.failures".to_owned(), 1)]));
    decrypt(&mut juliet, &message).unwrap();
    assert_eq!(store.count("xmpp.failures"), 0);
}

#[test]
fn oversized_and_misaddressed_stanzas_are_refused_without_a_trace() {
    let (mut server, mut romeo, mut juliet, store) = talking();
    let message = intercepted(&mut server, &mut romeo, "big");
    // Padding inside the element to beyond the parser's input bound.
    let oversized = Message {
        payload: message
            .payload
            .replacen("<header", &format!("{}<header", " ".repeat(2 << 20)), 1),
        ..message.clone()
    };
    let (result, changed) = recorded(&store, || decrypt(&mut juliet, &oversized));
    assert!(
        matches!(result, Err(XmppError::Stanza(StanzaError::TooLarge(_)))),
        "{result:?}"
    );
    assert!(changed.is_empty());

    // No key for our device: not for us, and not counted as the sender's failure.
    let ours = juliet.device_id();
    let misaddressed = Message {
        id: "misaddressed".into(),
        payload: message
            .payload
            .replace(&format!("rid='{ours}'"), "rid='1234'"),
        ..message.clone()
    };
    assert_ne!(misaddressed.payload, message.payload);
    let (result, changed) = recorded(&store, || decrypt(&mut juliet, &misaddressed));
    let Err(XmppError::Decrypt(failure)) = result else {
        panic!("{result:?}")
    };
    assert_eq!(failure.reason, FailureReason::NotForUs);
    assert_eq!(failure.failures_in_a_row, 0);
    assert!(changed.is_empty(), "{changed:?}");
    decrypt(&mut juliet, &message).unwrap();
}
