//! The XMPP machine (`olmo::xmpp`): OMEMO accounts of several devices talking through a server
//! played by the test (PEP nodes, message routing, archives), each device over its own store.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod bad_input;
mod commits;
#[path = "../common/mod.rs"]
mod common;
mod conversation;
mod generation;
mod interleaved;
mod kept;
mod python;
mod restored;
mod server;
mod write_faults;

use common::rng::TestRng;
use olmo::omemo::Version;
use olmo::omemo::stanza::EncryptedElement;
use olmo::persist::StorageKey;
use olmo::store::{Backend, MemoryStore, block_on};
use olmo::time::Timestamp;
use olmo::xmpp::{DecryptOutcome, EncryptOutcome, XmppError, XmppMachine, device_list_node};
use server::Server;

pub const NOW: Timestamp = Timestamp::from_millis(1_765_000_000_000);

/// One device of an account, and how far it has read its account's archive.
pub struct Device<B: Backend = MemoryStore> {
    pub machine: XmppMachine<B>,
    pub rng: TestRng,
    pub jid: String,
    read: usize,
}

impl Device<MemoryStore> {
    pub fn new(server: &mut Server, jid: &str, seed: u64) -> Self {
        Self::open(server, MemoryStore::new(), jid, seed)
    }
}

impl<B: Backend> Device<B> {
    /// Opens the device and joins it to its account's device lists (as a client does at first
    /// login: read the lists, add itself, publish).
    pub fn open(server: &mut Server, store: B, jid: &str, seed: u64) -> Self {
        let mut rng = TestRng::new(seed);
        let key = StorageKey::from_bytes([seed as u8; 32]);
        let machine = block_on(XmppMachine::open(store, &key, jid, NOW, &mut rng)).unwrap();
        let mut device = Self {
            machine,
            rng,
            jid: jid.to_owned(),
            read: 0,
        };
        device.refresh_lists(server, &[jid]);
        device.publish(server);
        device
    }

    pub fn device_id(&self) -> u32 {
        block_on(self.machine.device_id()).unwrap()
    }

    pub fn publish(&mut self, server: &mut Server) {
        let items = block_on(self.machine.publish(NOW, &mut self.rng)).unwrap();
        server.publish(&self.jid, &items);
    }

    /// Reads the device lists of `jids` from their PEP nodes.
    pub fn refresh_lists(&mut self, server: &Server, jids: &[&str]) {
        for jid in jids {
            for version in [Version::Omemo2, Version::Omemo03] {
                if let Some(list) = server.item(jid, device_list_node(version), "current") {
                    block_on(self.machine.receive_device_list(jid, list, &mut self.rng)).unwrap();
                }
            }
        }
    }

    /// Fetches every bundle the machine asks for.
    pub fn fetch_bundles(&mut self, server: &Server, jids: &[&str]) {
        for request in block_on(self.machine.bundle_requests(jids)).unwrap() {
            if let Some(bundle) = server.item(&request.jid, &request.node, &request.item_id) {
                block_on(self.machine.receive_bundle(
                    &request.jid,
                    request.device_id,
                    bundle,
                    &mut self.rng,
                ))
                .unwrap();
            }
        }
    }

    /// Sends `body` to `to` (a bare JID) as a client would: lists, bundles, encrypt, send.
    pub fn send(&mut self, server: &mut Server, to: &str, body: &str) -> EncryptOutcome {
        let jid = self.jid.clone();
        self.refresh_lists(server, &[to, &jid]);
        self.fetch_bundles(server, &[to]);
        let outcome = block_on(self.machine.encrypt(&[to], to, body, NOW, &mut self.rng)).unwrap();
        for stanza in &outcome.stanzas {
            server.send(&self.jid, to, stanza.version, &stanza.payload);
        }
        outcome
    }

    /// Decrypts the account's archive from where this device stopped, sending the replies the
    /// machine asks for; messages this device sent itself are passed over.
    pub fn catch_up(&mut self, server: &mut Server) -> Vec<Result<DecryptOutcome, XmppError>> {
        let ours = self.device_id();
        let messages = server.archive(&self.jid, self.read);
        self.read += messages.len();
        let mut outcomes = Vec::new();
        for message in messages {
            let sender = EncryptedElement::parse(&message.payload).map(|e| e.sender_device);
            if message.from == self.jid && sender == Ok(ours) {
                continue;
            }
            let outcome = block_on(self.machine.decrypt(
                &message.from,
                &message.to,
                &message.payload,
                Some(&message.id),
                &mut self.rng,
            ));
            if let Ok(outcome) = &outcome {
                for reply in &outcome.replies {
                    server.send(&self.jid, &reply.to, reply.version, &reply.payload);
                }
                if outcome.republish {
                    // A pre-key was used: the bundle others fetch must not offer it again.
                    self.publish(server);
                }
            }
            outcomes.push(outcome);
        }
        outcomes
    }

    /// Forgets how far the archive was read (a client that lost its cursor, or a restart).
    pub fn rewind(&mut self) {
        self.read = 0;
    }
}

/// The bodies of the decrypted messages among `outcomes` (empty messages left out).
pub fn bodies(outcomes: &[Result<DecryptOutcome, XmppError>]) -> Vec<String> {
    outcomes
        .iter()
        .filter_map(|o| o.as_ref().ok()?.message.as_ref()?.body.clone())
        .collect()
}
