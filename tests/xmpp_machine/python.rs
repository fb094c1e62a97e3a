//! The XMPP machine against python-omemo 2.1's `SessionManager` (twomemo and oldmemo backends)
//! as the other account. The test plays the server: it relays PEP items both ways (olmo's
//! device lists and bundles into the peer's in-memory PEP, the peer's into [`Server`]) and routes
//! every message, the managers' own empty messages (their outbox) included.
//!
//! The python account has a manager with both backends (listed in both device lists: it and
//! olmo talk OMEMO 2) and an oldmemo-only one (listed in 0.3 only: it gets 0.3), so every
//! scenario runs in both versions.

use olmo::omemo::stanza::{BundleElement, DeviceListElement, EncryptedElement, Envelope};
use olmo::omemo::{VerifiedBundle, Version};
use olmo::store::{Backend, MemoryStore, block_on};
use olmo::xmpp::{
    DecryptOutcome, PepItem, SkipReason, Trust, XmppError, bundle_node, device_list_node,
};
use olmo_sqlite::SqliteStore;
use serde_json::{Value, json};

use super::Device;
use super::server::Server;
use crate::common::hex::{hex, unhex};
use crate::common::peer::Peer;
use crate::common::rng::TestRng;

const OLMO: &str = "olmo@rust.example";
const PY: &str = "python@py.example";
const VERSIONS: [Version; 2] = [Version::Omemo2, Version::Omemo03];

fn ns(version: Version) -> &'static str {
    match version {
        Version::Omemo2 => "omemo2",
        Version::Omemo03 => "omemo03",
    }
}

fn version_of(ns: &str) -> Version {
    match ns {
        "omemo2" => Version::Omemo2,
        _ => Version::Omemo03,
    }
}

/// Whether the element carries a key for `device_id`.
fn addressed_to(xml: &str, device_id: u32) -> bool {
    EncryptedElement::parse(xml).is_ok_and(|e| e.keys.iter().any(|k| k.device_id == device_id))
}

/// The device ids an element carries keys for.
fn recipients(xml: &str) -> Vec<u32> {
    let mut ids: Vec<u32> = EncryptedElement::parse(xml)
        .unwrap()
        .keys
        .iter()
        .map(|k| k.device_id)
        .collect();
    ids.sort_unstable();
    ids
}

/// A `SessionManager` in the peer, and how far it has read its account's archive.
struct Manager {
    name: String,
    device_id: u32,
    versions: Vec<Version>,
    read: usize,
}

/// One olmo device, with its own archive cursor: messages not addressed to it (the python
/// account's 0.3 copy for its oldmemo-only device) are passed over, as a client would.
struct OlmoDevice<B: Backend> {
    device: Device<B>,
    read: usize,
}

struct World {
    server: Server,
    peer: Peer,
    /// The olmo devices ever opened (their bundles are relayed while published).
    olmo_ids: Vec<u32>,
}

impl World {
    fn new() -> Self {
        Self {
            server: Server::new(),
            peer: Peer::omemo(),
            olmo_ids: Vec::new(),
        }
    }

    /// Opens an olmo device over `store` (the storage key from the low byte of `seed`, the
    /// randomness from all of it) and relays what it published.
    fn olmo<B: Backend>(&mut self, store: B, seed: u64) -> OlmoDevice<B> {
        let device = Device::open(&mut self.server, store, OLMO, seed);
        let id = device.device_id();
        if !self.olmo_ids.contains(&id) {
            self.olmo_ids.push(id);
        }
        self.olmo_to_peer();
        OlmoDevice { device, read: 0 }
    }

    /// A manager of the python account; `versions` are the backends it loads.
    fn manager(&mut self, name: &str, versions: &[Version]) -> Manager {
        let namespaces: Vec<&str> = versions.iter().map(|v| ns(*v)).collect();
        let made = self
            .peer
            .call(json!({"op": "sm_new", "name": name, "jid": PY, "namespaces": namespaces}));
        self.peer_to_olmo();
        Manager {
            name: name.to_owned(),
            device_id: u32::try_from(made["device_id"].as_u64().unwrap()).unwrap(),
            versions: versions.to_vec(),
            read: 0,
        }
    }

    /// Olmo's device lists and bundles, as published on the server, into the peer's PEP.
    fn olmo_to_peer(&mut self) {
        for version in VERSIONS {
            if let Some(list) = self.server.item(OLMO, device_list_node(version), "current") {
                self.peer
                    .call(json!({"op": "sm_publish_devices", "ns": ns(version),
                                      "jid": OLMO, "device_list_xml": list}));
            }
            for id in &self.olmo_ids {
                let (node, item) = bundle_node(version, *id);
                if let Some(bundle) = self.server.item(OLMO, &node, &item) {
                    self.peer
                        .call(json!({"op": "sm_publish", "ns": ns(version), "jid": OLMO,
                                          "device_id": id, "bundle_xml": bundle}));
                }
            }
        }
    }

    /// The python account's device lists and bundles, as the managers published them, onto
    /// the server.
    fn peer_to_olmo(&mut self) {
        for version in VERSIONS {
            let published = self
                .peer
                .call(json!({"op": "sm_published", "ns": ns(version), "jid": PY}));
            let mut items = Vec::new();
            if let Some(list) = published["device_list_xml"].as_str() {
                items.push(PepItem {
                    version,
                    node: device_list_node(version).to_owned(),
                    item_id: "current".to_owned(),
                    payload: list.to_owned(),
                });
            }
            for (id, bundle) in published["bundles"].as_object().unwrap() {
                let (node, item_id) = bundle_node(version, id.parse().unwrap());
                items.push(PepItem {
                    version,
                    node,
                    item_id,
                    payload: bundle.as_str().unwrap().to_owned(),
                });
            }
            self.server.publish(PY, &items);
        }
    }

    /// A manager sends `body` to the olmo account (and its own other devices): what it sent,
    /// by version.
    fn py_send(&mut self, from: &Manager, body: &str) -> Vec<(Version, String)> {
        self.olmo_to_peer();
        let envelope = Envelope::for_body(body, PY, OLMO, None, &mut TestRng::new(7)).serialize();
        let sent = self.peer.call(json!({
            "op": "sm_encrypt", "name": from.name, "to_jid": OLMO, "plaintext": null,
            "plaintexts": {"omemo2": hex(envelope.as_bytes()), "omemo03": hex(body.as_bytes())},
        }));
        assert_eq!(sent["errors"], json!([]), "{sent}");
        let mut out = Vec::new();
        for (namespace, xml) in sent["messages"].as_object().unwrap() {
            let version = version_of(namespace);
            let xml = xml.as_str().unwrap().to_owned();
            self.server.send(PY, OLMO, version, &xml);
            out.push((version, xml));
        }
        out.sort();
        out
    }

    /// Routes a manager's own messages (key exchange completions, heartbeats); how many.
    fn flush_outbox(&mut self, manager: &Manager) -> usize {
        let messages = self
            .peer
            .call(json!({"op": "sm_outbox", "name": manager.name}))["messages"]
            .as_array()
            .unwrap()
            .clone();
        for message in &messages {
            self.server.send(
                PY,
                message["to_jid"].as_str().unwrap(),
                version_of(message["ns"].as_str().unwrap()),
                message["encrypted_xml"].as_str().unwrap(),
            );
        }
        messages.len()
    }

    /// The manager reads its account's archive: each body (`None` for an empty message) or the
    /// peer's error, and how many messages its outbox sent.
    fn py_catch_up(
        &mut self,
        manager: &mut Manager,
    ) -> (Vec<Result<Option<String>, String>>, usize) {
        let messages = self.server.archive(PY, manager.read);
        manager.read += messages.len();
        let mut read = Vec::new();
        let mut replies = 0;
        for message in messages {
            if !manager.versions.contains(&message.version)
                || !addressed_to(&message.payload, manager.device_id)
                || (message.from == PY && sender(&message.payload) == manager.device_id)
            {
                continue;
            }
            let response = self.peer.try_call(json!({
                "op": "sm_decrypt", "name": manager.name, "from_jid": message.from,
                "ns": ns(message.version), "encrypted_xml": message.payload,
            }));
            read.push(
                response
                    .map(|r| plaintext_body(message.version, &r))
                    .map_err(|e| {
                        format!("{e} (from {} {})", message.from, sender(&message.payload))
                    }),
            );
            replies += self.flush_outbox(manager);
        }
        (read, replies)
    }

    /// An olmo device sends `body` to the python account (and its own other devices).
    fn olmo_send<B: Backend>(
        &mut self,
        from: &mut OlmoDevice<B>,
        body: &str,
    ) -> olmo::xmpp::EncryptOutcome {
        self.peer_to_olmo();
        from.device.send(&mut self.server, PY, body)
    }

    /// An olmo device reads its account's archive (messages addressed to it only), sending the
    /// replies the machine asks for.
    fn olmo_catch_up<B: Backend>(
        &mut self,
        device: &mut OlmoDevice<B>,
    ) -> Vec<Result<DecryptOutcome, XmppError>> {
        let ours = device.device.device_id();
        let messages = self.server.archive(OLMO, device.read);
        device.read += messages.len();
        let mut outcomes = Vec::new();
        for message in messages {
            if !addressed_to(&message.payload, ours)
                || (message.from == OLMO && sender(&message.payload) == ours)
            {
                continue;
            }
            let outcome = block_on(device.device.machine.decrypt(
                &message.from,
                &message.to,
                &message.payload,
                Some(&message.id),
                &mut device.device.rng,
            ));
            if let Ok(outcome) = &outcome {
                for reply in &outcome.replies {
                    self.server
                        .send(OLMO, &reply.to, reply.version, &reply.payload);
                }
                if outcome.republish {
                    device.device.publish(&mut self.server);
                    self.olmo_to_peer();
                }
            }
            outcomes.push(outcome);
        }
        outcomes
    }

    /// Republishes the device list of `version` of `jid` without `gone` (another device of the
    /// account removing it), relayed to both sides.
    fn drop_from_list(&mut self, jid: &str, version: Version, gone: u32) {
        let list = self
            .server
            .item(jid, device_list_node(version), "current")
            .unwrap();
        let mut list = DeviceListElement::parse(list).unwrap();
        list.devices.retain(|d| d.id != gone);
        let xml = list.serialize();
        self.server.publish(
            jid,
            &[PepItem {
                version,
                node: device_list_node(version).to_owned(),
                item_id: "current".to_owned(),
                payload: xml.clone(),
            }],
        );
        self.peer.call(
            json!({"op": "sm_publish_devices", "ns": ns(version), "jid": jid,
                              "device_list_xml": xml}),
        );
    }

    /// The fingerprint olmo gives a manager's key (lowercase hex of its Curve25519 form), from
    /// its published bundle.
    fn py_fingerprint(&mut self, manager: &Manager) -> String {
        let version = manager.versions[0];
        let published = self
            .peer
            .call(json!({"op": "sm_published", "ns": ns(version), "jid": PY}));
        let xml = published["bundles"][manager.device_id.to_string()]
            .as_str()
            .unwrap();
        let bundle = VerifiedBundle::from_element(&BundleElement::parse(xml).unwrap()).unwrap();
        bundle.identity_key().fingerprint().unwrap()
    }

    /// The Ed25519 identity key of an olmo device (python's trust is keyed by it), from its
    /// OMEMO 2 bundle.
    fn olmo_identity(&self, device_id: u32) -> String {
        let (node, item) = bundle_node(Version::Omemo2, device_id);
        let bundle = BundleElement::parse(self.server.item(OLMO, &node, &item).unwrap()).unwrap();
        hex(&bundle.identity_key)
    }
}

fn sender(xml: &str) -> u32 {
    EncryptedElement::parse(xml).map_or(0, |e| e.sender_device)
}

fn plaintext_body(version: Version, response: &Value) -> Option<String> {
    let plaintext = unhex(response["plaintext"].as_str()?);
    Some(match version {
        Version::Omemo2 => Envelope::parse_bytes(&plaintext).unwrap().body().unwrap(),
        Version::Omemo03 => String::from_utf8(plaintext).unwrap(),
    })
}

/// Everything each party read: bodies, and `None` for empty messages.
struct Settled {
    olmo: Vec<Vec<Option<String>>>,
    python: Vec<Vec<Option<String>>>,
    /// Empty messages the managers sent (their outbox).
    python_replies: usize,
    /// Empty messages the olmo devices sent.
    olmo_replies: usize,
}

/// Every party catches up, again and again until nothing new arrives; every message decrypts.
fn settle<B: Backend>(
    world: &mut World,
    olmo: &mut [&mut OlmoDevice<B>],
    python: &mut [&mut Manager],
) -> Settled {
    let mut settled = Settled {
        olmo: vec![Vec::new(); olmo.len()],
        python: vec![Vec::new(); python.len()],
        python_replies: 0,
        olmo_replies: 0,
    };
    loop {
        let mut read_any = false;
        for (i, device) in olmo.iter_mut().enumerate() {
            for outcome in world.olmo_catch_up(device) {
                let outcome = outcome
                    .unwrap_or_else(|e| panic!("{e:?} {:#?}", world.server.archive(OLMO, 0)));
                settled.olmo_replies += outcome.replies.len();
                settled.olmo[i].push(outcome.message.and_then(|m| m.body));
                read_any = true;
            }
        }
        for (i, manager) in python.iter_mut().enumerate() {
            let (read, replies) = world.py_catch_up(manager);
            settled.python_replies += replies;
            for body in read {
                settled.python[i].push(body.unwrap_or_else(|e| panic!("{}: {e}", manager.name)));
                read_any = true;
            }
        }
        if !read_any {
            return settled;
        }
    }
}

/// The bodies among what was read, empty messages left out.
fn texts(read: &[Option<String>]) -> Vec<&str> {
    read.iter().flatten().map(String::as_str).collect()
}

/// Two olmo devices over `stores`, a twomemo+oldmemo manager and an oldmemo-only one, having
/// exchanged a first message each way, every key exchange answered.
fn two_accounts<B: Backend>(stores: [B; 2]) -> (World, [OlmoDevice<B>; 2], Manager, Manager) {
    let mut world = World::new();
    let [phone_store, laptop_store] = stores;
    let mut phone = world.olmo(phone_store, 1);
    let mut laptop = world.olmo(laptop_store, 2);
    phone.device.refresh_lists(&world.server, &[OLMO]);
    let mut both = world.manager("both", &VERSIONS);
    let mut old = world.manager("old", &[Version::Omemo03]);
    let laptop_id = laptop.device.device_id();

    // olmo → python: OMEMO 2 to the twomemo manager (and olmo's laptop), 0.3 to the
    // oldmemo-only one; each answers the key exchange with an empty message.
    let sent = world.olmo_send(&mut phone, "hello python");
    assert!(sent.skipped.is_empty(), "{:?}", sent.skipped);
    let versions: Vec<Version> = sent.stanzas.iter().map(|s| s.version).collect();
    assert_eq!(versions, VERSIONS);
    assert_eq!(
        recipients(&sent.stanzas[0].payload),
        sorted(&[both.device_id, laptop_id])
    );
    assert_eq!(recipients(&sent.stanzas[1].payload), [old.device_id]);
    let got = settle(
        &mut world,
        &mut [&mut phone, &mut laptop],
        &mut [&mut both, &mut old],
    );
    assert_eq!(texts(&got.python[0]), ["hello python"]);
    assert_eq!(texts(&got.python[1]), ["hello python"]);
    assert_eq!(texts(&got.olmo[1]), ["hello python"]);
    assert_eq!(
        got.python_replies, 2,
        "both managers answer the key exchange"
    );
    assert_eq!(got.olmo_replies, 1, "the laptop answers its key exchange");
    assert_eq!(
        got.olmo[0],
        [None, None, None],
        "the phone reads three answers"
    );

    // python → olmo: OMEMO 2 from the first manager, 0.3 from the oldmemo-only one.
    for (index, version) in [(0, Version::Omemo2), (1, Version::Omemo03)] {
        let sender = if index == 0 { &both } else { &old };
        let body = format!("hello olmo in {}", ns(version));
        let sent = world.py_send(sender, &body);
        let to_olmo: Vec<_> = sent
            .iter()
            .filter(|(_, xml)| addressed_to(xml, laptop_id))
            .collect();
        assert_eq!(to_olmo.len(), 1);
        assert_eq!(to_olmo[0].0, version);
        let got = settle(
            &mut world,
            &mut [&mut phone, &mut laptop],
            &mut [&mut both, &mut old],
        );
        assert_eq!(texts(&got.olmo[0]), [body.as_str()]);
        assert_eq!(texts(&got.olmo[1]), [body.as_str()]);
        // The phone's session with the manager exists already: only the laptop answers.
        assert_eq!(got.olmo_replies, 1, "the laptop answers the key exchange");
        // The oldmemo-only manager answers the first manager's key exchange; the other way the
        // session exists by then.
        assert_eq!(got.python_replies, 1 - index);
        assert_eq!(
            texts(&got.python[1 - index]),
            [body.as_str()],
            "its other device"
        );
    }
    (world, [phone, laptop], both, old)
}

fn sorted(ids: &[u32]) -> Vec<u32> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids
}

fn memory() -> [MemoryStore; 2] {
    [MemoryStore::new(), MemoryStore::new()]
}

#[test]
fn several_devices_each_talk_in_both_versions() {
    let (mut world, [mut phone, mut laptop], mut both, mut old) = two_accounts(memory());
    // Established sessions: no more key exchanges, no more empty messages.
    let sent = world.olmo_send(&mut laptop, "second");
    assert_eq!(sent.stanzas.len(), 2);
    world.py_send(&old, "second back");
    let got = settle(
        &mut world,
        &mut [&mut phone, &mut laptop],
        &mut [&mut both, &mut old],
    );
    assert_eq!(texts(&got.olmo[0]), ["second", "second back"]);
    assert_eq!(texts(&got.olmo[1]), ["second back"]);
    assert_eq!(texts(&got.python[0]), ["second", "second back"]);
    assert_eq!(texts(&got.python[1]), ["second"]);
    assert_eq!((got.olmo_replies, got.python_replies), (0, 0));
}

#[test]
fn heartbeats_follow_many_unanswered_messages_both_ways() {
    let (mut world, [mut phone, mut laptop], mut both, mut old) = two_accounts(memory());
    // olmo → python, 60 messages nobody answers: past 53 on its receiving chain a manager
    // sends a heartbeat with every message (python's rule), before that nothing.
    for (count, beats) in [(50, false), (10, true)] {
        for i in 0..count {
            world.olmo_send(&mut phone, &format!("olmo {i}"));
        }
        for manager in [&mut both, &mut old] {
            let (read, replies) = world.py_catch_up(manager);
            assert_eq!(read.len(), count);
            assert!(read.iter().all(|r| matches!(r, Ok(Some(_)))), "{read:?}");
            assert_eq!(
                replies > 0,
                beats,
                "{replies} heartbeats after {count} more"
            );
        }
    }
    let got = settle(
        &mut world,
        &mut [&mut phone, &mut laptop],
        &mut [&mut both, &mut old],
    );
    assert!(
        got.olmo[0].iter().all(Option::is_none),
        "heartbeats are empty"
    );
    assert!(!got.olmo[0].is_empty());

    // python → olmo, 60 messages from each manager: olmo answers with heartbeats once its
    // receiving chain reaches 53, the managers read them as empty messages.
    for (index, manager) in [&both, &old].into_iter().enumerate() {
        for i in 0..60 {
            world.py_send(manager, &format!("python {index} {i}"));
        }
    }
    let mut replies_by_message = Vec::new();
    for outcome in world.olmo_catch_up(&mut laptop) {
        let outcome = outcome.unwrap();
        replies_by_message.push(outcome.replies.len());
    }
    assert_eq!(replies_by_message.len(), 120);
    // Olmo's rule: one heartbeat, at index 53 of an unanswered chain (the 54th message); the
    // heartbeat answers the chain, so the messages after it ask for none.
    let mut expected = vec![0; 60];
    expected[53] = 1;
    for half in replies_by_message.chunks(60) {
        assert_eq!(half, expected);
    }
    let got = settle(
        &mut world,
        &mut [&mut phone, &mut laptop],
        &mut [&mut both, &mut old],
    );
    assert_eq!(texts(&got.olmo[0]).len(), 120);
    for read in &got.python {
        assert!(read.contains(&None), "the heartbeats arrive");
    }
}

#[test]
fn devices_leave_and_appear_on_both_sides() {
    let (mut world, [mut phone, mut laptop], mut both, mut old) = two_accounts(memory());
    let laptop_id = laptop.device.device_id();

    // The python account drops its oldmemo-only device from its 0.3 list: olmo stops
    // encrypting to it (no 0.3 stanza at all), the first manager stops too.
    world.drop_from_list(PY, Version::Omemo03, old.device_id);
    let sent = world.olmo_send(&mut phone, "without old");
    assert_eq!(sent.stanzas.len(), 1);
    assert_eq!(sent.stanzas[0].version, Version::Omemo2);
    assert!(!recipients(&sent.stanzas[0].payload).contains(&old.device_id));
    let sent = world.py_send(&both, "from both without old");
    assert!(
        sent.iter()
            .all(|(_, xml)| !addressed_to(xml, old.device_id))
    );
    let got = settle(
        &mut world,
        &mut [&mut phone, &mut laptop],
        &mut [&mut both, &mut old],
    );
    assert_eq!(texts(&got.python[0]), ["without old"]);
    assert!(got.python[1].is_empty(), "{:?}", got.python[1]);
    assert_eq!(texts(&got.olmo[0]), ["from both without old"]);

    // olmo's phone drops the laptop from both lists: python stops encrypting to it.
    for version in VERSIONS {
        world.drop_from_list(OLMO, version, laptop_id);
    }
    let sent = world.py_send(&both, "not to the laptop");
    assert!(sent.iter().all(|(_, xml)| !addressed_to(xml, laptop_id)));
    phone.device.refresh_lists(&world.server, &[OLMO]);
    let sent = world.olmo_send(&mut phone, "own laptop gone");
    assert!(!recipients(&sent.stanzas[0].payload).contains(&laptop_id));

    // A new device on each side: found through the lists, sessions from the bundles.
    let mut tablet = world.olmo(MemoryStore::new(), 3);
    let tablet_id = tablet.device.device_id();
    let mut fresh = world.manager("fresh", &VERSIONS);
    let sent = world.olmo_send(&mut phone, "hello newcomers");
    assert!(sent.skipped.is_empty(), "{:?}", sent.skipped);
    let to = recipients(&sent.stanzas[0].payload);
    assert!(
        to.contains(&tablet_id) && to.contains(&fresh.device_id),
        "{to:?}"
    );
    // Each side reads the other's key exchange before sending its own: when both start at
    // once, python-omemo replaces its session with the one olmo started and the answer to its
    // own key exchange no longer opens.
    let got = settle(
        &mut world,
        &mut [&mut phone, &mut tablet],
        &mut [&mut both, &mut fresh],
    );
    assert_eq!(texts(&got.olmo[0]), ["not to the laptop"]);
    assert_eq!(texts(&got.olmo[1]), ["hello newcomers"]);
    assert_eq!(
        texts(&got.python[0]),
        ["own laptop gone", "hello newcomers"]
    );
    assert_eq!(texts(&got.python[1]), ["hello newcomers"]);
    let sent = world.py_send(&fresh, "fresh here");
    assert!(sent.iter().any(|(_, xml)| addressed_to(xml, tablet_id)));
    let got = settle(
        &mut world,
        &mut [&mut phone, &mut tablet],
        &mut [&mut both, &mut fresh],
    );
    assert_eq!(texts(&got.olmo[0]), ["fresh here"]);
    assert_eq!(texts(&got.olmo[1]), ["fresh here"]);
    assert_eq!(texts(&got.python[0]), ["fresh here"]);
}

#[test]
fn trust_decisions_on_both_sides() {
    let (mut world, [mut phone, mut laptop], mut both, mut old) = two_accounts(memory());
    // olmo's phone distrusts the first manager's key: skipped, told why.
    let known: Vec<String> = block_on(phone.device.machine.trust_decisions(PY))
        .unwrap()
        .into_iter()
        .map(|(fingerprint, _)| fingerprint)
        .collect();
    assert_eq!(known.len(), 2);
    let both_key = world.py_fingerprint(&both);
    assert!(known.contains(&both_key));
    block_on(phone.device.machine.set_trust(
        PY,
        &both_key,
        Trust::Distrusted,
        &mut phone.device.rng,
    ))
    .unwrap();
    let sent = world.olmo_send(&mut phone, "not for both");
    let skipped: Vec<_> = sent
        .skipped
        .iter()
        .map(|s| (s.device_id, s.reason))
        .collect();
    assert_eq!(skipped, [(both.device_id, SkipReason::Distrusted)]);
    assert!(
        sent.stanzas
            .iter()
            .all(|s| !addressed_to(&s.payload, both.device_id))
    );

    // The oldmemo-only manager distrusts olmo's laptop: it encrypts to the phone only and
    // refuses the laptop's messages.
    let laptop_id = laptop.device.device_id();
    let laptop_key = world.olmo_identity(laptop_id);
    world
        .peer
        .call(json!({"op": "sm_set_trust", "name": old.name, "jid": OLMO,
                           "identity_ed25519": laptop_key, "trust": "distrusted"}));
    let (read, _) = world.py_catch_up(&mut old);
    assert_eq!(read, [Ok(Some("not for both".to_owned()))]);
    let sent = world.py_send(&old, "not for the laptop");
    assert!(sent.iter().all(|(_, xml)| !addressed_to(xml, laptop_id)));
    let got = settle(&mut world, &mut [&mut phone, &mut laptop], &mut [&mut both]);
    assert_eq!(texts(&got.olmo[0]), ["not for the laptop"]);
    assert_eq!(texts(&got.olmo[1]), ["not for both"]);
    assert_eq!(texts(&got.python[0]), ["not for the laptop"]);

    world.olmo_send(&mut laptop, "refused");
    let (read, _) = world.py_catch_up(&mut old);
    assert_eq!(read.len(), 1, "{read:?}");
    assert!(
        read[0]
            .as_ref()
            .unwrap_err()
            .starts_with("SenderDistrusted"),
        "{read:?}"
    );
}

#[test]
fn olmo_restarts_from_sqlite_and_python_from_its_storage() {
    let dir = std::env::temp_dir().join(format!("olmo-xmpp-python-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let paths = [dir.join("phone.sqlite"), dir.join("laptop.sqlite")];
    let stores = paths.clone().map(|path| SqliteStore::open(path).unwrap());
    let (mut world, [phone, mut laptop], mut both, mut old) = two_accounts(stores);
    let phone_id = phone.device.device_id();
    let read = phone.read;
    drop(phone);

    // Python writes while the phone is off; the phone comes back from its file (same storage
    // key, fresh randomness) and reads on from where it stopped.
    world.py_send(&both, "while you were away");
    let store = SqliteStore::open(&paths[0]).unwrap();
    let mut phone = world.olmo(store, 1 + 256);
    phone.read = read;
    assert_eq!(phone.device.device_id(), phone_id);
    let got = settle(
        &mut world,
        &mut [&mut phone, &mut laptop],
        &mut [&mut both, &mut old],
    );
    assert_eq!(texts(&got.olmo[0]), ["while you were away"]);
    assert_eq!(texts(&got.olmo[1]), ["while you were away"]);
    assert_eq!(texts(&got.python[1]), ["while you were away"]);

    // Both managers restart from their storage too; the sessions carry on both ways.
    for manager in [&both, &old] {
        let again = world
            .peer
            .call(json!({"op": "sm_restart", "name": manager.name}));
        assert_eq!(again["device_id"], manager.device_id);
    }
    let sent = world.olmo_send(&mut phone, "back again");
    assert!(sent.skipped.is_empty(), "{:?}", sent.skipped);
    world.py_send(&old, "welcome back");
    let got = settle(
        &mut world,
        &mut [&mut phone, &mut laptop],
        &mut [&mut both, &mut old],
    );
    assert_eq!(texts(&got.olmo[0]), ["welcome back"]);
    assert_eq!(texts(&got.olmo[1]), ["back again", "welcome back"]);
    assert_eq!(texts(&got.python[0]), ["back again", "welcome back"]);
    assert_eq!(texts(&got.python[1]), ["back again"]);
    assert_eq!((got.olmo_replies, got.python_replies), (0, 0));
    drop((phone, laptop));
    std::fs::remove_dir_all(&dir).unwrap();
}
