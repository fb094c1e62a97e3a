//! An XMPP account's machine driven by hand over the test server (included with `#[path]`, beside
//! `tests/xmpp_machine/server.rs` as `server`): the store crates' kill and fleet tests open Romeo
//! and Juliet, publish, meet, and pass messages between processes as lines.

use olmo::omemo::Version;
use olmo::persist::StorageKey;
use olmo::store::{Backend, block_on};
use olmo::time::Timestamp;
use olmo::xmpp::{XmppError, XmppMachine, device_list_node};
use rand::rngs::StdRng;

use super::server::{Message, Server};

pub const ROMEO: &str = "romeo@montague.example";
pub const JULIET: &str = "juliet@capulet.example";
pub const NOW: Timestamp = Timestamp::from_millis(1_765_000_000_000);

pub fn key_of(jid: &str) -> StorageKey {
    StorageKey::from_bytes([if jid == ROMEO { 81 } else { 82 }; 32])
}

pub fn open<B: Backend>(store: B, jid: &str, rng: &mut StdRng) -> XmppMachine<B> {
    block_on(XmppMachine::open(store, &key_of(jid), jid, NOW, rng)).unwrap()
}

/// Publishes the machine's lists and bundles and reads its own lists back.
pub fn join<B: Backend>(server: &mut Server, machine: &XmppMachine<B>, rng: &mut StdRng) {
    let items = block_on(machine.publish(NOW, rng)).unwrap();
    server.publish(machine.jid(), &items);
    read_lists(server, machine, machine.jid(), rng);
}

pub fn read_lists<B: Backend>(
    server: &Server,
    machine: &XmppMachine<B>,
    jid: &str,
    rng: &mut StdRng,
) {
    for version in [Version::Omemo2, Version::Omemo03] {
        if let Some(list) = server.item(jid, device_list_node(version), "current") {
            block_on(machine.receive_device_list(jid, list, rng)).unwrap();
        }
    }
}

/// `machine` reads `to`'s lists and builds sessions from the bundles it needs.
pub fn meet<B: Backend>(server: &Server, machine: &XmppMachine<B>, to: &str, rng: &mut StdRng) {
    read_lists(server, machine, to, rng);
    for request in block_on(machine.bundle_requests(&[to])).unwrap() {
        let bundle = server
            .item(&request.jid, &request.node, &request.item_id)
            .unwrap();
        block_on(machine.receive_bundle(&request.jid, request.device_id, bundle, rng)).unwrap();
    }
}

/// A message as one line: tab-separated fields (the payload is XML without tabs or newlines).
pub fn line_of(message: &Message) -> String {
    assert!(!message.payload.contains(['\t', '\n']));
    format!(
        "{}\t{}\t{}\t{}",
        message.id, message.from, message.to, message.payload
    )
}

pub fn message_of(line: &str) -> Message {
    let mut fields = line.splitn(4, '\t');
    let mut next = || fields.next().unwrap().to_owned();
    Message {
        id: next(),
        from: next(),
        to: next(),
        version: Version::Omemo2,
        payload: next(),
    }
}

/// The body `machine` gives for `message` (decrypting it, or the stored outcome).
pub fn body_of<B: Backend>(
    machine: &XmppMachine<B>,
    message: &Message,
    rng: &mut StdRng,
) -> Result<String, XmppError> {
    let outcome = block_on(machine.decrypt(
        &message.from,
        &message.to,
        &message.payload,
        Some(&message.id),
        rng,
    ))?;
    Ok(outcome.message.and_then(|m| m.body).unwrap_or_default())
}
