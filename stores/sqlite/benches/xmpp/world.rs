//! The bench's XMPP world: a server of PEP items, accounts driving `XmppMachine`s through it,
//! and the replay of one operation's commit on a second store of the same kind.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use olmo::omemo::Version;
use olmo::omemo::stanza::{BundleElement, EncryptedElement, Envelope};
use olmo::omemo::{OmemoDevice, VerifiedBundle};
use olmo::persist::StorageKey;
use olmo::store::{Backend, Batch, Expect, KeyRange, MemoryStore, Sealer, Txn, block_on};
use olmo::time::Timestamp;
use olmo::xmpp::{XmppMachine, device_list_node};
use rand::rngs::StdRng;
use rand::{CryptoRng, SeedableRng};
use zeroize::Zeroizing;

use crate::stores::{BenchStore, Kind};

pub const NOW: Timestamp = Timestamp::from_millis(1_765_000_000_000);
pub const BODY: &str = "Are we still on for lunch tomorrow? I booked a table at the place near \
                        the station for half past twelve.";
/// Messages on one chain before the receiver answers: below the heartbeat threshold (53).
pub const CHAIN: usize = 40;
/// Every table of the XMPP machine (olmo::xmpp's tables).
const TABLES: [&str; 6] = [
    "xmpp.account",
    "xmpp.sessions",
    "xmpp.device_lists",
    "xmpp.trust",
    "xmpp.failures",
    "xmpp.processed",
];

pub fn storage_key() -> StorageKey {
    StorageKey::from_bytes([7; 32])
}

/// PEP items by (JID, node, item id).
#[derive(Default)]
pub struct Server {
    pep: HashMap<(String, String, String), String>,
    stanzas: u64,
}

impl Server {
    pub fn item(&self, jid: &str, node: &str, item: &str) -> Option<&str> {
        self.pep
            .get(&(jid.to_owned(), node.to_owned(), item.to_owned()))
            .map(String::as_str)
    }

    /// A stanza id unique in the process: the machine keeps outcomes by stanza id, and stores
    /// restored from a copy must not see an id again.
    pub fn stanza_id(&mut self) -> String {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        self.stanzas += 1;
        format!("archive-{}", NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// One device of an account.
pub struct Account<B: Backend> {
    pub machine: XmppMachine<B>,
    pub jid: String,
    pub device_id: u32,
}

pub fn memory_account(server: &mut Server, jid: &str) -> Account<MemoryStore> {
    Account::open(server, MemoryStore::new(), jid)
}

impl<B: Backend> Account<B> {
    /// Opens the device, adds it to its account's device lists and publishes.
    pub fn open(server: &mut Server, store: B, jid: &str) -> Self {
        let machine = block_on(XmppMachine::open(
            store,
            &storage_key(),
            jid,
            NOW,
            &mut rand::rng(),
        ))
        .unwrap();
        let device_id = block_on(machine.device_id()).unwrap();
        let account = Self {
            machine,
            jid: jid.to_owned(),
            device_id,
        };
        account.refresh(server, &[jid]);
        account.publish(server);
        account
    }

    /// Reopens the account of `store` (already created).
    pub fn reopen(store: B, jid: &str) -> Self {
        let machine = block_on(XmppMachine::open(
            store,
            &storage_key(),
            jid,
            NOW,
            &mut rand::rng(),
        ))
        .unwrap();
        let device_id = block_on(machine.device_id()).unwrap();
        Self {
            machine,
            jid: jid.to_owned(),
            device_id,
        }
    }

    pub fn publish(&self, server: &mut Server) {
        for item in block_on(self.machine.publish(NOW, &mut rand::rng())).unwrap() {
            server
                .pep
                .insert((self.jid.clone(), item.node, item.item_id), item.payload);
        }
    }

    /// Reads the device lists of `jids`.
    pub fn refresh(&self, server: &Server, jids: &[&str]) {
        for jid in jids {
            for version in [Version::Omemo2, Version::Omemo03] {
                if let Some(list) = server.item(jid, device_list_node(version), "current") {
                    block_on(
                        self.machine
                            .receive_device_list(jid, list, &mut rand::rng()),
                    )
                    .unwrap();
                }
            }
        }
    }

    /// Fetches every bundle the machine asks for.
    pub fn fetch_bundles(&self, server: &Server, jids: &[&str]) {
        for request in block_on(self.machine.bundle_requests(jids)).unwrap() {
            let bundle = server
                .item(&request.jid, &request.node, &request.item_id)
                .unwrap();
            block_on(self.machine.receive_bundle(
                &request.jid,
                request.device_id,
                bundle,
                &mut rand::rng(),
            ))
            .unwrap();
        }
    }

    /// Encrypts `BODY` to `to`; the one `<encrypted>` payload.
    pub fn send(&self, to: &[&str]) -> String {
        self.send_with(to, &mut rand::rng())
    }

    /// As [`Account::send`], the `k`th message of a row: see [`message_rng`].
    pub fn send_nth(&self, to: &[&str], k: u64) -> String {
        self.send_with(to, &mut message_rng(k))
    }

    fn send_with(&self, to: &[&str], rng: &mut impl CryptoRng) -> String {
        let outcome = block_on(self.machine.encrypt(to, to[0], BODY, NOW, rng)).unwrap();
        assert!(outcome.skipped.is_empty(), "{:?}", outcome.skipped);
        assert_eq!(outcome.stanzas.len(), 1);
        outcome.stanzas.into_iter().next().unwrap().payload
    }

    /// Decrypts a payload from `from`; the replies it asks to send.
    pub fn receive(&self, server: &mut Server, from: &str, xml: &str) -> Vec<String> {
        self.receive_as(from, xml, &server.stanza_id())
    }

    /// As [`Account::receive`], the stanza's archive id made beforehand (outside a clock).
    pub fn receive_as(&self, from: &str, xml: &str, id: &str) -> Vec<String> {
        let outcome =
            block_on(
                self.machine
                    .decrypt(from, &self.jid, xml, Some(id), &mut rand::rng()),
            )
            .unwrap();
        outcome.replies.into_iter().map(|r| r.payload).collect()
    }

    /// The device of `jid` published for OMEMO 2, as a verified bundle.
    pub fn bundle(server: &Server, jid: &str, device_id: u32) -> (String, VerifiedBundle) {
        let (node, item) = olmo::xmpp::bundle_node(Version::Omemo2, device_id);
        let xml = server.item(jid, &node, &item).unwrap().to_owned();
        let bundle = VerifiedBundle::from_element(&BundleElement::parse(&xml).unwrap()).unwrap();
        (xml, bundle)
    }
}

/// `receiver` meets `sender` and their sessions are confirmed: a first message, its empty
/// answer read by the sender.
pub fn introduce<A: Backend, B: Backend>(
    server: &mut Server,
    sender: &Account<A>,
    receiver: &Account<B>,
) {
    sender.refresh(server, &[&receiver.jid]);
    receiver.refresh(server, &[&sender.jid]);
    sender.fetch_bundles(server, &[&receiver.jid]);
    let first = sender.send(&[&receiver.jid]);
    let replies = receiver.receive(server, &sender.jid, &first);
    assert_eq!(replies.len(), 1, "the key exchange is answered");
    receiver.publish(server); // the pre-key used is replaced
    assert!(
        sender
            .receive(server, &receiver.jid, &replies[0])
            .is_empty()
    );
}

/// The receiver answers and the sender reads the answer: the sender's next message opens a new
/// chain.
pub fn reset_chain<A: Backend, B: Backend>(
    server: &mut Server,
    sender: &Account<A>,
    receiver: &Account<B>,
) {
    let answer = receiver.send(&[&sender.jid]);
    assert!(sender.receive(server, &receiver.jid, &answer).is_empty());
}

/// A core device (no machine) and its peers, for the core rows.
pub struct Core {
    pub jid: String,
    pub device: OmemoDevice,
}

impl Core {
    pub fn new(jid: &str, device_id: u32) -> Self {
        Self {
            jid: jid.to_owned(),
            device: OmemoDevice::generate(jid, device_id, NOW, &mut rand::rng()),
        }
    }

    /// The SCE envelope the machine would encrypt to `to`.
    fn envelope(&self, to: &str, rng: &mut impl CryptoRng) -> Vec<u8> {
        Envelope::for_body(BODY, &self.jid, to, Some("2025-12-06T05:46:40Z"), rng)
            .serialize()
            .into_bytes()
    }

    /// One message to `to`, as XML.
    pub fn send(&mut self, to: &[(&str, u32)]) -> String {
        self.send_with(to, &mut rand::rng())
    }

    /// As [`Core::send`], the `k`th message of a row: see [`message_rng`].
    pub fn send_nth(&mut self, to: &[(&str, u32)], k: u64) -> String {
        self.send_with(to, &mut message_rng(k))
    }

    fn send_with(&mut self, to: &[(&str, u32)], rng: &mut impl CryptoRng) -> String {
        let plaintext = self.envelope(to[0].0, rng);
        self.device
            .encrypt_message(Version::Omemo2, to, &plaintext, rng)
            .unwrap()
            .serialize()
    }

    /// The core of the machine's decrypt: parse, decrypt, read the envelope.
    pub fn receive(&mut self, from: &str, xml: &str) -> Option<Envelope> {
        let element = EncryptedElement::parse(xml).unwrap();
        let received = self
            .device
            .decrypt_message(from, &element, &mut rand::rng())
            .unwrap();
        received
            .plaintext
            .map(|p| Envelope::parse_bytes(&p).unwrap())
    }

    pub fn id(&self) -> u32 {
        self.device.device_id()
    }

    pub fn save(&self) -> Vec<u8> {
        self.device.save(&storage_key())
    }

    /// Restores the device from `saved`, giving back the one it replaces (for the caller to
    /// drop outside its timed window).
    pub fn restore(&mut self, saved: &[u8]) -> OmemoDevice {
        let restored = OmemoDevice::restore(saved, &storage_key()).unwrap();
        std::mem::replace(&mut self.device, restored)
    }
}

/// The generator the `k`th message of a row is encrypted with, on either side. `<rpad>` is
/// uniform in 0..=200 characters (XEP-0420) and is the first value an encrypt draws, both in the
/// machine's encrypt and in [`Core::send`]: seeded by `k`, the two sides' `k`th messages carry
/// padding of the same length, in every process. Drawn freely, the padding of a quick run's
/// 30 archive messages moved a side's instruction count by about 1% from one process to the
/// next (base64, XML and HMAC over the longer or shorter payloads), and the two sides apart.
pub fn message_rng(k: u64) -> StdRng {
    StdRng::seed_from_u64(k)
}

/// Confirmed sessions between two core devices.
pub fn introduce_core(sender: &mut Core, receiver: &mut Core) {
    let bundle = receiver.device.bundle(Version::Omemo2);
    sender
        .device
        .build_session(&receiver.jid, receiver.id(), &bundle, &mut rand::rng())
        .unwrap();
    let first = sender.send(&[(&receiver.jid.clone(), receiver.id())]);
    receiver.receive(&sender.jid.clone(), &first).unwrap();
    reset_core_chain(sender, receiver);
}

/// As [`reset_chain`], for core devices.
pub fn reset_core_chain(sender: &mut Core, receiver: &mut Core) {
    let answer = receiver
        .device
        .encrypt_empty(
            Version::Omemo2,
            &[(&sender.jid, sender.id())],
            &mut rand::rng(),
        )
        .unwrap()
        .serialize();
    assert!(sender.receive(&receiver.jid.clone(), &answer).is_none());
}

/// Every record of the store: (table, name) → (version, sealed value).
pub type Records = BTreeMap<(String, Vec<u8>), (u64, Vec<u8>)>;

pub fn records<B: Backend>(store: &B) -> Records {
    let mut all = Records::new();
    for table in TABLES {
        let mut range = KeyRange::all();
        loop {
            let page = block_on(store.scan(table, &range, 1_000)).unwrap();
            let Some((last, _)) = page.last() else { break };
            range = range.after(last);
            for (name, record) in page {
                all.insert((table.to_owned(), name), (record.version, record.value));
            }
        }
    }
    all
}

/// One record written: table, name, schema, contents, and whether the operation created it.
type Write = (String, Vec<u8>, u16, Zeroizing<Vec<u8>>, bool);

/// One operation's commit played again: the records it wrote, with their contents, written in
/// one transaction (each read for its version first, as the machine does) to a store of the
/// same kind holding the records as they were before. A record the operation created (a
/// processed stanza's outcome, a new session) is created again at every replay, under a new
/// name of the same length, so the replay inserts into a growing table as the machine does
/// rather than overwriting the record its first replay made.
pub struct Replay {
    store: BenchStore,
    sealer: Sealer,
    writes: Vec<Write>,
    name: String,
    bytes: usize,
    replays: std::cell::Cell<u64>,
}

impl Replay {
    /// The commit that turned `before` into `after`; its store (SQLite: a file under `dir`)
    /// is of `kind`.
    pub fn new(kind: Kind, dir: &Path, name: &str, before: &Records, after: &Records) -> Self {
        let sealer = Sealer::new(&storage_key());
        let store = kind.open(&dir.join(format!("replay-{name}.sqlite3")));
        let mut batch = Batch::new();
        for ((table, key), (_, value)) in before {
            batch.put(table, key, Expect::Absent, value.clone());
        }
        block_on(store.commit(batch)).unwrap();
        let mut writes = Vec::new();
        let mut bytes = 0;
        for ((table, key), (version, value)) in after {
            let was = before.get(&(table.clone(), key.clone())).map(|(v, _)| *v);
            if was != Some(*version) {
                let (schema, plaintext) = sealer.open(table, key, *version, value).unwrap();
                bytes += plaintext.len();
                writes.push((table.clone(), key.clone(), schema, plaintext, was.is_none()));
            }
        }
        assert!(
            before.keys().all(|k| after.contains_key(k)),
            "the operation removed records: replay covers writes only"
        );
        Self {
            store,
            sealer,
            writes,
            name: name.to_owned(),
            bytes,
            replays: std::cell::Cell::new(0),
        }
    }

    /// What the commit writes, for the report.
    pub fn describe(&self) -> String {
        let tables: Vec<&str> = self.writes.iter().map(|(t, ..)| t.as_str()).collect();
        let created = self.writes.iter().filter(|w| w.4).count();
        format!(
            "{}: {} records ({created} created), {} bytes before sealing ({})",
            self.name,
            self.writes.len(),
            self.bytes,
            tables.join(", ")
        )
    }

    /// The contents to write, made outside the timed region.
    pub fn contents(&self) -> Vec<Zeroizing<Vec<u8>>> {
        self.writes
            .iter()
            .map(|(_, _, _, p, _)| p.clone())
            .collect()
    }

    /// Reads, seals and writes the records in one commit.
    pub fn commit(&self, contents: Vec<Zeroizing<Vec<u8>>>) {
        let replay = self.replays.get();
        self.replays.set(replay + 1);
        let mut txn = Txn::new(&self.store, &self.sealer);
        for ((table, key, schema, _, created), plaintext) in self.writes.iter().zip(contents) {
            let renamed;
            let key = if *created && replay > 0 {
                renamed = fresh_name(key, replay);
                &renamed
            } else {
                key
            };
            // Read for its version and written, as the machine does (`Txn::put_read`).
            block_on(txn.put_read(table, key, *schema, plaintext)).unwrap();
        }
        block_on(txn.commit(&mut rand::rng())).unwrap();
    }
}

/// `key` with the replay's number written over its last bytes: a name no earlier replay used,
/// of the same length.
fn fresh_name(key: &[u8], replay: u64) -> Vec<u8> {
    let mut name = key.to_vec();
    let tail = name.len().saturating_sub(8);
    for (byte, mark) in name[tail..].iter_mut().zip(replay.to_le_bytes()) {
        *byte ^= mark;
    }
    name
}

/// A copy of a closed SQLite store (its main file and WAL, if any) at `to`.
pub fn copy_store(from: &Path, to: &Path) -> PathBuf {
    std::fs::copy(from, to).unwrap();
    let wal = PathBuf::from(format!("{}-wal", from.display()));
    if wal.exists() {
        std::fs::copy(&wal, format!("{}-wal", to.display())).unwrap();
    }
    to.to_owned()
}
