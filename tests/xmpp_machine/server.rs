//! An XMPP server in memory, as much of one as OMEMO needs: PEP nodes with items (device lists
//! and bundles, open to everyone) and message delivery to every device of a bare JID, with an
//! archive per account for catch-up.

use std::collections::BTreeMap;

use olmo::omemo::Version;
use olmo::xmpp::PepItem;

/// A message as stored and routed: the bare JIDs and the `<encrypted>` payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: String,
    pub from: String,
    pub to: String,
    pub version: Version,
    pub payload: String,
}

#[derive(Default)]
pub struct Server {
    /// (jid, node, item id) → payload.
    pep: BTreeMap<(String, String, String), String>,
    /// Bare JID → messages, in order (the archive; every device of the JID reads it).
    archive: BTreeMap<String, Vec<Message>>,
    sent: u64,
}

impl Server {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn publish(&mut self, jid: &str, items: &[PepItem]) {
        for item in items {
            self.pep.insert(
                (jid.to_owned(), item.node.clone(), item.item_id.clone()),
                item.payload.clone(),
            );
        }
    }

    pub fn item(&self, jid: &str, node: &str, item_id: &str) -> Option<&str> {
        self.pep
            .get(&(jid.to_owned(), node.to_owned(), item_id.to_owned()))
            .map(String::as_str)
    }

    /// Stores a message for every device of `to` (and a carbon for the sender's account).
    pub fn send(&mut self, from: &str, to: &str, version: Version, payload: &str) -> Message {
        self.sent += 1;
        let message = Message {
            id: format!("msg-{}", self.sent),
            from: from.to_owned(),
            to: to.to_owned(),
            version,
            payload: payload.to_owned(),
        };
        self.archive
            .entry(to.to_owned())
            .or_default()
            .push(message.clone());
        if from != to {
            self.archive
                .entry(from.to_owned())
                .or_default()
                .push(message.clone());
        }
        message
    }

    /// The archive of `jid` after the first `skip` messages.
    pub fn archive(&self, jid: &str, skip: usize) -> Vec<Message> {
        self.archive
            .get(jid)
            .map(|messages| messages.iter().skip(skip).cloned().collect())
            .unwrap_or_default()
    }
}
