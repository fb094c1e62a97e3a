//! The XMPP machine's fuzz target, `xmpp_machine`: arbitrary XML (or a real stanza payload with
//! a span cut and bytes inserted) through the machine's stanza entry points, on a copy of
//! Juliet's store taken after a conversation with Romeo.
//!
//! The first byte picks the entry point (mod 3: a device list from Romeo, a bundle of Romeo's
//! device, an `<encrypted>` element from Romeo) and whether the rest is the whole payload (bit 2
//! clear) or a mutation of one of the fixture's real inputs of that kind (bit 2 set: byte 1
//! picks the input, byte 2 where to cut in 256ths of its length, byte 3 how many bytes to cut,
//! the rest is inserted there). Nothing may panic, and an input the machine refuses leaves the
//! store byte-identical but for the sender device's count of failures in a row.

use std::sync::OnceLock;

use olmo::omemo::Version;
use olmo::persist::StorageKey;
use olmo::store::{MemoryStore, Record, block_on};
use olmo::time::Timestamp;
use olmo::xmpp::{PepItem, XmppMachine, bundle_node, device_list_node};

use super::DeterministicRng;
use super::matrix_checks::copy_store;

const ROMEO: &str = "romeo@montague.example";
const JULIET: &str = "juliet@capulet.example";
const JULIET_STORAGE_KEY: [u8; 32] = [0x1e; 32];
const NOW: Timestamp = Timestamp::from_millis(1_765_000_000_000);
/// The table where the machine counts a device's failures in a row: the one record a refused
/// message may write.
const FAILURES: &str = "xmpp.failures";

type Snapshot = Vec<(String, Vec<u8>, Record)>;

/// Juliet's device after a conversation with Romeo, and real inputs for each entry point.
pub struct XmppFixture {
    /// Juliet's store: sessions with Romeo's device in both directions.
    juliet: Snapshot,
    /// Romeo's device lists (both versions).
    pub device_lists: Vec<String>,
    /// Romeo's bundles (both versions).
    pub bundles: Vec<String>,
    /// Romeo's device id, the bundles' owner.
    pub romeo_device: u32,
    /// Romeo's messages Juliet has not read yet.
    pub messages: Vec<String>,
}

/// The entry point an input goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XmppInput {
    /// `receive_device_list` from Romeo.
    DeviceList,
    /// `receive_bundle` for Romeo's device.
    Bundle,
    /// `decrypt` of an element from Romeo to Juliet, with a stanza id.
    Encrypted,
}

impl XmppInput {
    fn from_selector(selector: u8) -> Self {
        match selector % 3 {
            0 => Self::DeviceList,
            1 => Self::Bundle,
            _ => Self::Encrypted,
        }
    }

    fn templates(self, fixture: &XmppFixture) -> &[String] {
        match self {
            Self::DeviceList => &fixture.device_lists,
            Self::Bundle => &fixture.bundles,
            Self::Encrypted => &fixture.messages,
        }
    }
}

/// `xmpp_machine`: see the module documentation.
pub fn check_xmpp_machine(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let fixture = xmpp_fixture();
    let kind = XmppInput::from_selector(selector);
    let input = if selector & 4 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        let [pick, at, cut, insert @ ..] = rest else {
            return;
        };
        let templates = kind.templates(fixture);
        let template = templates[usize::from(*pick) % templates.len()].as_bytes();
        let start = template.len() * usize::from(*at) / 256;
        let end = (start + usize::from(*cut)).min(template.len());
        let mutated = [&template[..start], insert, &template[end..]].concat();
        String::from_utf8_lossy(&mutated).into_owned()
    };
    run_xmpp_input(fixture, kind, &input);
}

/// Feeds `input` to a fresh copy of Juliet and checks that a refusal changed nothing but the
/// failure count. Returns whether the machine accepted it.
pub fn run_xmpp_input(fixture: &XmppFixture, kind: XmppInput, input: &str) -> bool {
    let store = copy_store(&fixture.juliet);
    let mut rng = DeterministicRng::new(0x1e1e);
    let key = StorageKey::from_bytes(JULIET_STORAGE_KEY);
    let juliet = block_on(XmppMachine::open(
        store.clone(),
        &key,
        JULIET,
        NOW,
        &mut rng,
    ))
    .expect("the fixture's store opens");
    let before = store.snapshot();
    let accepted = match kind {
        XmppInput::DeviceList => {
            block_on(juliet.receive_device_list(ROMEO, input, &mut rng)).is_ok()
        }
        XmppInput::Bundle => {
            block_on(juliet.receive_bundle(ROMEO, fixture.romeo_device, input, &mut rng)).is_ok()
        }
        XmppInput::Encrypted => {
            block_on(juliet.decrypt(ROMEO, JULIET, input, Some("fuzz"), &mut rng)).is_ok()
        }
    };
    if !accepted {
        let after = store.snapshot();
        let outside = |snapshot: &Snapshot| -> Snapshot {
            snapshot
                .iter()
                .filter(|(table, _, _)| table != FAILURES)
                .cloned()
                .collect()
        };
        assert!(
            outside(&after) == outside(&before),
            "a refused {kind:?} changed the store"
        );
        let counts = |s: &Snapshot| s.iter().filter(|(t, _, _)| t == FAILURES).count();
        assert!(counts(&after) <= counts(&before) + 1, "more than one count");
    }
    accepted
}

/// The conversation behind the fixture, built once (deterministically).
pub fn xmpp_fixture() -> &'static XmppFixture {
    static FIXTURE: OnceLock<XmppFixture> = OnceLock::new();
    FIXTURE.get_or_init(build_xmpp_fixture)
}

/// A device and the PEP items it published.
struct Device {
    machine: XmppMachine<MemoryStore>,
    /// The machine's store (clones share the records).
    store: MemoryStore,
    rng: DeterministicRng,
    items: Vec<PepItem>,
}

impl Device {
    fn open(jid: &str, storage_key: [u8; 32], seed: u64) -> Self {
        let mut rng = DeterministicRng::new(seed);
        let key = StorageKey::from_bytes(storage_key);
        let store = MemoryStore::new();
        let machine = block_on(XmppMachine::open(store.clone(), &key, jid, NOW, &mut rng))
            .expect("a new machine opens");
        let items = block_on(machine.publish(NOW, &mut rng)).expect("publish");
        let mut device = Self {
            machine,
            store,
            rng,
            items,
        };
        let own = device.items.clone();
        device.meet(jid, &own);
        device
    }

    fn item(&self, node: &str, item_id: &str) -> Option<&str> {
        self.items
            .iter()
            .find(|i| i.node == node && i.item_id == item_id)
            .map(|i| i.payload.as_str())
    }

    /// Reads `jid`'s lists from `items` and builds sessions from the bundles asked for.
    fn meet(&mut self, jid: &str, items: &[PepItem]) {
        let find = |node: &str, id: &str| {
            items
                .iter()
                .find(|i| i.node == node && i.item_id == id)
                .map(|i| i.payload.clone())
        };
        for version in [Version::Omemo2, Version::Omemo03] {
            if let Some(list) = find(device_list_node(version), "current") {
                block_on(self.machine.receive_device_list(jid, &list, &mut self.rng))
                    .expect("a real list");
            }
        }
        for request in block_on(self.machine.bundle_requests(&[jid])).expect("requests") {
            if let Some(bundle) = find(&request.node, &request.item_id) {
                block_on(self.machine.receive_bundle(
                    jid,
                    request.device_id,
                    &bundle,
                    &mut self.rng,
                ))
                .expect("a real bundle");
            }
        }
    }

    fn send(&mut self, to: &str, body: &str) -> String {
        let outcome =
            block_on(self.machine.encrypt(&[to], to, body, NOW, &mut self.rng)).expect("encrypted");
        outcome.stanzas[0].payload.clone()
    }

    fn read(&mut self, from: &str, payload: &str, id: &str) -> Vec<String> {
        let own = self.machine.jid().to_owned();
        let outcome = block_on(
            self.machine
                .decrypt(from, &own, payload, Some(id), &mut self.rng),
        )
        .expect("decrypted");
        outcome.replies.into_iter().map(|r| r.payload).collect()
    }
}

fn build_xmpp_fixture() -> XmppFixture {
    let mut romeo = Device::open(ROMEO, [0x0e; 32], 0x0e0e);
    let mut juliet = Device::open(JULIET, JULIET_STORAGE_KEY, 0x1e1e);
    let romeo_items = romeo.items.clone();
    let juliet_items = juliet.items.clone();
    romeo.meet(JULIET, &juliet_items);
    juliet.meet(ROMEO, &romeo_items);

    // A key exchange each way, answered, so both hold a session.
    let hello = romeo.send(JULIET, "hello");
    for reply in juliet.read(ROMEO, &hello, "hello") {
        romeo.read(JULIET, &reply, "answer");
    }
    let back = juliet.send(ROMEO, "hello yourself");
    romeo.read(JULIET, &back, "back");
    let messages = vec![
        romeo.send(JULIET, "not read yet"),
        romeo.send(JULIET, "nor this"),
    ];

    let romeo_device = block_on(romeo.machine.device_id()).expect("device id");
    let mut device_lists = Vec::new();
    let mut bundles = Vec::new();
    for version in [Version::Omemo2, Version::Omemo03] {
        device_lists.extend(
            romeo
                .item(device_list_node(version), "current")
                .map(String::from),
        );
        let (node, item_id) = bundle_node(version, romeo_device);
        bundles.extend(romeo.item(&node, &item_id).map(String::from));
    }
    XmppFixture {
        juliet: juliet.store.snapshot(),
        device_lists,
        bundles,
        romeo_device,
        messages,
    }
}

/// Seeds of `xmpp_machine`: the fixture's real inputs whole, and a few mutations of them.
pub fn xmpp_seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let fixture = xmpp_fixture();
    let mut seeds = Vec::new();
    let kinds = [
        (XmppInput::DeviceList, 0u8, "device-list"),
        (XmppInput::Bundle, 1, "bundle"),
        (XmppInput::Encrypted, 2, "encrypted"),
    ];
    for (kind, selector, name) in kinds {
        for (index, template) in kind.templates(fixture).iter().enumerate() {
            seeds.push((
                "xmpp_machine",
                format!("{name}-{index}"),
                [&[selector][..], template.as_bytes()].concat(),
            ));
            // Cut a few bytes at a quarter and at the middle, putting another value in.
            for (at, cut, insert) in [(64u8, 4u8, &b"'7'"[..]), (128, 16, b"<x/>"), (200, 1, b"")] {
                seeds.push((
                    "xmpp_machine",
                    format!("{name}-{index}-cut-{at}-{cut}"),
                    [&[selector | 4, index as u8, at, cut][..], insert].concat(),
                ));
            }
        }
    }
    seeds
}
