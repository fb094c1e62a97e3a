//! The few XMPP payloads the bot speaks, as XML: PEP publish and fetch (XEP-0163), archive
//! queries (XEP-0313 with XEP-0059 paging), and OMEMO messages in and out (XEP-0384).

use olmo::omemo::Version;
use olmo::xmpp::PepItem;
use tokio_xmpp::jid::{BareJid, Jid};
use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::message::{Lang, Message};

use crate::Error;

const PUBSUB: &str = "http://jabber.org/protocol/pubsub";
const MAM: &str = "urn:xmpp:mam:2";
const RSM: &str = "http://jabber.org/protocol/rsm";
const FORWARD: &str = "urn:xmpp:forward:0";
const STANZA_ID: &str = "urn:xmpp:sid:0";
/// Archive pages asked for at a time.
const PAGE: usize = 100;

/// An OMEMO message received, live or from the archive.
#[derive(Debug)]
pub struct Incoming {
    /// The sender's bare JID.
    pub from: BareJid,
    /// The bare JID it was sent to.
    pub to: BareJid,
    /// The `<encrypted>` element.
    pub encrypted: String,
    /// The id our archive gave it (the MAM result id, or the live message's `<stanza-id>`).
    pub archive_id: Option<String>,
}

/// A page of the archive asked for: the results arrive as messages, then the answer.
pub fn archive_query(after: Option<&str>) -> Result<Element, Error> {
    let after = after.map_or(String::new(), |id| format!("<after>{}</after>", escape(id)));
    parse(&format!(
        "<query xmlns='{MAM}'><set xmlns='{RSM}'><max>{PAGE}</max>{after}</set></query>"
    ))
}

/// From an archive query's answer: the last id of the page, and whether it was the last page.
pub fn archive_page_end(fin: Option<&Element>) -> (Option<String>, bool) {
    let Some(fin) = fin else { return (None, true) };
    let last = fin
        .get_child("set", RSM)
        .and_then(|set| set.get_child("last", RSM))
        .map(Element::text);
    (last, fin.attr("complete") == Some("true"))
}

/// A PEP publish of one item, open to everyone (XEP-0384 asks for the open access model); the
/// OMEMO 2 bundles node holds one item per device.
pub fn publish(item: &PepItem) -> Result<Element, Error> {
    let mut options = String::from(
        "<field var='FORM_TYPE' type='hidden'>\
         <value>http://jabber.org/protocol/pubsub#publish-options</value></field>\
         <field var='pubsub#access_model'><value>open</value></field>",
    );
    if item.version == Version::Omemo2 {
        options.push_str("<field var='pubsub#max_items'><value>max</value></field>");
    }
    parse(&format!(
        "<pubsub xmlns='{PUBSUB}'><publish node='{}'><item id='{}'>{}</item></publish>\
         <publish-options><x xmlns='jabber:x:data' type='submit'>{options}</x></publish-options>\
         </pubsub>",
        escape(&item.node),
        escape(&item.item_id),
        item.payload
    ))
}

/// A PEP fetch of one item (or the node's items when `item_id` is `None`).
pub fn fetch(node: &str, item_id: Option<&str>) -> Result<Element, Error> {
    let item = item_id.map_or(String::new(), |id| format!("<item id='{}'/>", escape(id)));
    parse(&format!(
        "<pubsub xmlns='{PUBSUB}'><items node='{}'>{item}</items></pubsub>",
        escape(node)
    ))
}

/// A subscription of `subscriber` to `node` of the account the IQ goes to (XEP-0060 6.1; the
/// OMEMO nodes are published with the open access model, which lets anyone subscribe).
pub fn subscribe(node: &str, subscriber: &BareJid) -> Result<Element, Error> {
    parse(&format!(
        "<pubsub xmlns='{PUBSUB}'><subscribe node='{}' jid='{}'/></pubsub>",
        escape(node),
        escape(subscriber.as_str())
    ))
}

/// The payload of the first item of a fetch's answer, as XML.
pub fn fetched_payload(answer: Option<&Element>) -> Option<String> {
    let item = answer?
        .get_child("items", PUBSUB)?
        .children()
        .find(|child| child.is("item", PUBSUB))?;
    item.children().next().map(String::from)
}

/// A chat message carrying `<encrypted>`, with the plain-text fallback and store hint clients
/// send so the server archives it and old clients say what it is.
pub fn omemo_message(to: &BareJid, encrypted: &str) -> Result<Message, Error> {
    let fallback = "This message is encrypted with OMEMO, which your client does not support.";
    Ok(Message::chat(Some(Jid::from(to.clone())))
        .with_body(Lang(String::new()), fallback.into())
        .with_payloads(vec![
            parse(encrypted)?,
            parse("<store xmlns='urn:xmpp:hints'/>")?,
        ]))
}

/// The OMEMO message in a received message: a live one (with the `<stanza-id>` our archive
/// gave it) or an archive result (with the result's id). `None` for anything else.
pub fn incoming(message: &Message, own: &BareJid) -> Option<Incoming> {
    if let Some(result) = message.payloads.iter().find(|p| p.is("result", MAM)) {
        let archive_id = result.attr("id")?.to_owned();
        let inner = result
            .get_child("forwarded", FORWARD)?
            .get_child("message", "jabber:client")?;
        let inner = Message::try_from(inner.clone()).ok()?;
        let mut found = omemo_in(&inner)?;
        found.archive_id = Some(archive_id);
        return Some(found);
    }
    let mut found = omemo_in(message)?;
    found.archive_id = message
        .payloads
        .iter()
        .filter(|p| p.is("stanza-id", STANZA_ID))
        .find(|p| p.attr("by") == Some(own.as_str()))
        .and_then(|p| p.attr("id"))
        .map(str::to_owned);
    Some(found)
}

fn omemo_in(message: &Message) -> Option<Incoming> {
    let encrypted = message.payloads.iter().find(|p| {
        p.is("encrypted", "urn:xmpp:omemo:2") || p.is("encrypted", "eu.siacs.conversations.axolotl")
    })?;
    Some(Incoming {
        from: message.from.as_ref()?.to_bare(),
        to: message.to.as_ref()?.to_bare(),
        encrypted: String::from(encrypted),
        archive_id: None,
    })
}

fn parse(xml: &str) -> Result<Element, Error> {
    xml.parse().map_err(|_| Error::Xml)
}

/// Escapes text for an XML attribute or element.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&apos;")
        .replace('"', "&quot;")
}
