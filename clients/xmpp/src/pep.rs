//! Following device lists with PEP (XEP-0163) instead of fetching them before every answer:
//! the bot's presence carries entity capabilities (XEP-0115) whose features include the
//! `+notify` of both device-list nodes, it answers the server's disco#info query for them,
//! it subscribes to a contact's nodes when it first writes to them, and the server then pushes
//! every new list as a headline message with a pubsub event.

use olmo::omemo::Version;
use olmo::xmpp::device_list_node;
use tokio_xmpp::jid::{BareJid, Jid};
use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::caps::{Caps, compute_disco, hash_caps};
use tokio_xmpp::parsers::disco::{DiscoInfoResult, Identity};
use tokio_xmpp::parsers::hashes::Algo;
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::message::Message;
use tokio_xmpp::parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

use crate::Error;

const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
const PUBSUB_EVENT: &str = "http://jabber.org/protocol/pubsub#event";
/// The caps node naming this software.
const CAPS_NODE: &str = "https://github.com/olmo-e2ee/olmo";
/// Both versions' device-list nodes, OMEMO 2 first.
pub const VERSIONS: [Version; 2] = [Version::Omemo2, Version::Omemo03];

/// What the bot says it is and does: a client of type bot that wants both device lists pushed.
fn disco_info(node: Option<String>) -> DiscoInfoResult {
    let mut features: Vec<String> = vec![DISCO_INFO.into()];
    features.extend(VERSIONS.map(|v| format!("{}+notify", device_list_node(v))));
    DiscoInfoResult {
        node,
        identities: vec![Identity::new("client", "bot", "en", "olmo xmpp bot")],
        features: features.into_iter().collect(),
        extensions: Vec::new(),
    }
}

/// The `<c>` element for the bot's presence (XEP-0115, SHA-1 as the XEP requires).
pub fn caps() -> Result<Element, Error> {
    let hash = hash_caps(&compute_disco(&disco_info(None)), Algo::Sha_1).map_err(|_| Error::Xml)?;
    Ok(Caps::new(CAPS_NODE, hash).into())
}

/// The answer to an IQ request addressed to the bot: its disco#info (for the server's caps
/// query, which asks with the caps node), and an error for anything else. `None` for answers.
pub fn answer_request(iq: Iq) -> Option<Iq> {
    let (from, id, disco_node) = match iq {
        Iq::Get {
            from, id, payload, ..
        } if payload.is("query", DISCO_INFO) => {
            (from, id, Some(payload.attr("node").map(str::to_owned)))
        }
        Iq::Get { from, id, .. } | Iq::Set { from, id, .. } => (from, id, None),
        Iq::Result { .. } | Iq::Error { .. } => return None,
    };
    let answer = match disco_node {
        Some(node) => Iq::from_result(id, Some(disco_info(node))),
        None => Iq::from_error(
            id,
            StanzaError::new(
                ErrorType::Cancel,
                DefinedCondition::ServiceUnavailable,
                "en",
                "",
            ),
        ),
    };
    Some(match from {
        Some(from) => answer.with_to(from),
        None => answer,
    })
}

/// A device list pushed by a PEP service: the owner (the service's bare JID: a contact or the
/// bot's own account) and the list's XML. `None` for any other message.
pub fn device_list_notification(message: &Message) -> Option<(BareJid, String)> {
    let from = message.from.as_ref().filter(|jid| jid.is_bare())?;
    let event = message
        .payloads
        .iter()
        .find(|p| p.is("event", PUBSUB_EVENT))?;
    let items = event.get_child("items", PUBSUB_EVENT)?;
    let node = items.attr("node")?;
    if !VERSIONS.iter().any(|v| device_list_node(*v) == node) {
        return None;
    }
    let item = items.children().find(|c| c.is("item", PUBSUB_EVENT))?;
    let list = item.children().next()?;
    Some((Jid::to_bare(from), String::from(list)))
}
