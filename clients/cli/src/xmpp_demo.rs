//! The XMPP machine: Romeo and Juliet again, each an account on SQLite, the server played by a
//! map of PEP items and a list of messages; Juliet's client restarts in the middle and carries
//! on from her store.

use std::collections::BTreeMap;
use std::path::Path;

use olmo::omemo::Version;
use olmo::persist::StorageKey;
use olmo::store::block_on;
use olmo::time::Timestamp;
use olmo::xmpp::{PepItem, XmppMachine, device_list_node};
use olmo_sqlite::SqliteStore;

const ROMEO: &str = "romeo@montague.example";
const JULIET: &str = "juliet@capulet.example";

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// PEP items by (JID, node, item id), and the messages in flight.
#[derive(Default)]
struct Server {
    pep: BTreeMap<(String, String, String), String>,
    /// (stanza id, from, to, `<encrypted>`).
    inbox: Vec<(String, String, String, String)>,
    sent: u32,
}

impl Server {
    fn publish(&mut self, jid: &str, items: Vec<PepItem>) {
        for item in items {
            self.pep
                .insert((jid.into(), item.node, item.item_id), item.payload);
        }
    }

    fn item(&self, jid: &str, node: &str, id: &str) -> Option<&String> {
        self.pep.get(&(jid.into(), node.into(), id.into()))
    }

    fn deliver(&mut self, from: &str, to: &str, payload: String) {
        self.sent += 1;
        self.inbox.push((
            format!("stanza-{}", self.sent),
            from.into(),
            to.into(),
            payload,
        ));
    }
}

struct Client {
    jid: &'static str,
    machine: XmppMachine<SqliteStore>,
}

impl Client {
    fn open(path: &Path, jid: &'static str, now: Timestamp) -> Result<Self> {
        let key = StorageKey::from_bytes(*b"demo storage key from a keystore");
        let store = SqliteStore::open(path)?;
        let machine = block_on(XmppMachine::open(store, &key, jid, now, &mut rand::rng()))?;
        Ok(Self { jid, machine })
    }

    fn publish(&self, server: &mut Server, now: Timestamp) -> Result<()> {
        server.publish(
            self.jid,
            block_on(self.machine.publish(now, &mut rand::rng()))?,
        );
        Ok(())
    }

    fn send(&self, server: &mut Server, to: &str, body: &str, now: Timestamp) -> Result<()> {
        let rng = &mut rand::rng();
        for jid in [to, self.jid] {
            for version in [Version::Omemo2, Version::Omemo03] {
                if let Some(list) = server.item(jid, device_list_node(version), "current") {
                    block_on(self.machine.receive_device_list(jid, list, rng))?;
                }
            }
        }
        for request in block_on(self.machine.bundle_requests(&[to]))? {
            if let Some(bundle) = server.item(&request.jid, &request.node, &request.item_id) {
                block_on(self.machine.receive_bundle(
                    &request.jid,
                    request.device_id,
                    bundle,
                    rng,
                ))?;
            }
        }
        let outcome = block_on(self.machine.encrypt(&[to], to, body, now, rng))?;
        for stanza in outcome.stanzas {
            println!(
                "{} → {to}: <encrypted> for {:?}, {} bytes",
                self.jid,
                stanza.version,
                stanza.payload.len()
            );
            server.deliver(self.jid, to, stanza.payload);
        }
        Ok(())
    }

    fn read(&self, server: &mut Server, now: Timestamp) -> Result<()> {
        let (mine, rest): (Vec<_>, Vec<_>) = server
            .inbox
            .drain(..)
            .partition(|(_, _, to, _)| to == self.jid);
        server.inbox = rest;
        for (id, from, to, payload) in mine {
            let rng = &mut rand::rng();
            let outcome = block_on(self.machine.decrypt(&from, &to, &payload, Some(&id), rng))?;
            match outcome.message.and_then(|m| m.body.map(|b| (b, m.trust))) {
                Some((body, trust)) => {
                    println!("{} reads {body:?} (from {from}, {trust:?})", self.jid)
                }
                None => println!(
                    "{} reads an empty message from {from}: the key exchange is complete",
                    self.jid
                ),
            }
            for reply in outcome.replies {
                server.deliver(self.jid, &reply.to, reply.payload);
            }
            if outcome.republish {
                self.publish(server, now)?;
            }
        }
        Ok(())
    }
}

pub fn run() -> Result<()> {
    println!("\n== XMPP machine: Romeo and Juliet on SQLite, Juliet restarting in between ==\n");
    let now = Timestamp::now();
    let dir = tempfile::tempdir()?;
    let juliet_db = dir.path().join("juliet.sqlite3");
    let mut server = Server::default();
    let romeo = Client::open(&dir.path().join("romeo.sqlite3"), ROMEO, now)?;
    let juliet = Client::open(&juliet_db, JULIET, now)?;
    romeo.publish(&mut server, now)?;
    juliet.publish(&mut server, now)?;

    romeo.send(&mut server, JULIET, "Did my heart love till now?", now)?;
    juliet.read(&mut server, now)?;
    romeo.read(&mut server, now)?;

    println!(
        "-- Juliet's client stops; it starts again from {}",
        juliet_db.display()
    );
    drop(juliet);
    let juliet = Client::open(&juliet_db, JULIET, now)?;
    println!("   same device: {}", block_on(juliet.machine.device_id())?);
    juliet.send(
        &mut server,
        ROMEO,
        "My bounty is as boundless as the sea.",
        now,
    )?;
    romeo.read(&mut server, now)?;
    romeo.send(&mut server, JULIET, "Parting is such sweet sorrow.", now)?;
    juliet.read(&mut server, now)?;
    Ok(())
}
