//! The XEP-0420 Stanza Content Encryption `<envelope>`: what OMEMO 2 encrypts. `<content>` holds
//! the stanza's sensitive child elements; the affix elements beside it bind the message to its
//! sender, recipient and time, and `<rpad>` hides its length.
//!
//! The content is kept as XML text in a canonical form, so that it round-trips exactly: every
//! top-level element declares its namespace with `xmlns='…'`, nested elements declare it only
//! when it changes, prefixes are dropped (namespaced attributes get generated `nsN` prefixes,
//! `xml:` stays), comments and processing instructions are dropped, empty elements are written
//! `<x/>`, and text is re-escaped.

use rand_core::CryptoRng;

use super::error::StanzaError;
use super::xml::{
    Node, Wanted, Writer, XML_NS, attribute, find_element, optional_child, parse_document,
    required_child, text_content,
};
use super::{CLIENT_NAMESPACE, SCE_NAMESPACE};

/// Padding length bound: XEP-0420 recommends 0 to 200 characters of random content.
const MAX_PADDING: u32 = 200;

/// The characters random padding is drawn from: safe in any XML context and any transport.
const PADDING_ALPHABET: &[u8; 62] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// An SCE `<envelope xmlns='urn:xmpp:sce:1'>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The inner XML of `<content>`, canonical when it comes from [`Envelope::parse`] or
    /// [`Envelope::for_body`]. Written verbatim by [`Envelope::serialize`], so a hand-built value
    /// must be a well-formed fragment whose top-level elements declare their namespace.
    pub content: String,
    /// `<rpad>` text, random padding (no length limit when reading, as XEP-0420 requires).
    pub rpad: Option<String>,
    /// `<time stamp>`, an XEP-0082 timestamp (not validated here).
    pub time: Option<String>,
    /// `<to jid>`, the recipient's bare JID.
    pub to: Option<String>,
    /// `<from jid>`, the sender's bare JID.
    pub from: Option<String>,
}

impl Envelope {
    /// An envelope whose content is one `<body xmlns='jabber:client'>` holding `body` (escaped;
    /// characters XML cannot carry become U+FFFD), with `from`, `to`, the optional `time`, and
    /// fresh random padding (see [`Envelope::random_padding`]).
    pub fn for_body(
        body: &str,
        from: &str,
        to: &str,
        time: Option<&str>,
        rng: &mut (impl CryptoRng + ?Sized),
    ) -> Self {
        let mut content = Writer::new();
        content.leaf("body", &[("xmlns", CLIENT_NAMESPACE)], body);
        Self {
            content: content.finish(),
            rpad: Some(Self::random_padding(rng)),
            time: time.map(str::to_owned),
            to: Some(to.to_owned()),
            from: Some(from.to_owned()),
        }
    }

    /// Random padding for `<rpad>`: a length uniform in 0..=200 (XEP-0420's recommendation) of
    /// characters uniform over `A–Z a–z 0–9`. Values are scaled from 32-bit draws (bias below
    /// 2⁻²⁴, irrelevant for padding) rather than rejection-sampled, so a degenerate generator
    /// cannot make this loop.
    pub fn random_padding(rng: &mut (impl CryptoRng + ?Sized)) -> String {
        let len = scale(rng.next_u32(), MAX_PADDING + 1);
        (0..len)
            .map(|_| {
                let index = scale(rng.next_u32(), 62);
                PADDING_ALPHABET.get(index).map_or('A', |&b| char::from(b))
            })
            .collect()
    }

    /// Parses an `<envelope>` (the root element of the decrypted payload).
    pub fn parse(xml: &str) -> Result<Self, StanzaError> {
        Ok(Self::parse_document(xml, true)?.0)
    }

    /// What a receiver reads of the decrypted bytes: the body (as [`Envelope::body`] gives it)
    /// and the affixes, from one parse, without writing the content's canonical form. Accepts
    /// and refuses exactly what [`Envelope::parse_bytes`] does.
    pub(crate) fn parse_received(xml: &[u8]) -> Result<ReceivedEnvelope, StanzaError> {
        let text = std::str::from_utf8(xml).map_err(|e| StanzaError::Malformed(e.to_string()))?;
        let (envelope, body) = Self::parse_document(text, false)?;
        Ok(ReceivedEnvelope {
            body,
            time: envelope.time,
            to: envelope.to,
            from: envelope.from,
        })
    }

    /// The envelope with its content in canonical form (`canonical`), or with the content
    /// left empty and its body read instead (the same text [`Envelope::body`] reads from the
    /// canonical form, which keeps elements, namespaces and text).
    fn parse_document(xml: &str, canonical: bool) -> Result<(Self, Option<String>), StanzaError> {
        let doc = parse_document(xml)?;
        let wanted = [Wanted {
            name: "envelope",
            namespace: SCE_NAMESPACE,
            tag: (),
        }];
        let (node, ()) = find_element(&doc, &wanted, &[])?;
        let content_node = required_child(node, SCE_NAMESPACE, "content")?;
        let mut content = Writer::new();
        if canonical {
            for child in content_node.children() {
                write_canonical(&mut content, child, None);
            }
        }
        let rpad = optional_child(node, SCE_NAMESPACE, "rpad")?
            .map(|r| text_content(r, "rpad"))
            .transpose()?;
        let affix =
            |name: &'static str, attr: &'static str| -> Result<Option<String>, StanzaError> {
                optional_child(node, SCE_NAMESPACE, name)?
                    .map(|e| attribute(e, name, attr).map(str::to_owned))
                    .transpose()
            };
        let body = if canonical {
            None
        } else {
            body_of(content_node)
        };
        let envelope = Self {
            content: content.finish(),
            rpad,
            time: affix("time", "stamp")?,
            to: affix("to", "jid")?,
            from: affix("from", "jid")?,
        };
        Ok((envelope, body))
    }

    /// [`Envelope::parse`] for the decrypted bytes; invalid UTF-8 is [`StanzaError::Malformed`].
    pub fn parse_bytes(xml: &[u8]) -> Result<Self, StanzaError> {
        let text = std::str::from_utf8(xml).map_err(|e| StanzaError::Malformed(e.to_string()))?;
        Self::parse(text)
    }

    /// The envelope as XML text: `<content>`, then `<rpad>`, `<time>`, `<to>`, `<from>` when set.
    pub fn serialize(&self) -> String {
        let mut w = Writer::new();
        w.open("envelope", &[("xmlns", SCE_NAMESPACE)]);
        if self.content.is_empty() {
            w.empty("content", &[]);
        } else {
            w.open("content", &[]);
            w.raw(&self.content);
            w.close("content");
        }
        if let Some(rpad) = &self.rpad {
            w.leaf("rpad", &[], rpad);
        }
        if let Some(time) = &self.time {
            w.empty("time", &[("stamp", time)]);
        }
        if let Some(to) = &self.to {
            w.empty("to", &[("jid", to)]);
        }
        if let Some(from) = &self.from {
            w.empty("from", &[("jid", from)]);
        }
        w.close("envelope");
        w.finish()
    }

    /// The text of the first top-level `<body xmlns='jabber:client'>` in the content, if there
    /// is one and the content parses.
    pub fn body(&self) -> Option<String> {
        let mut wrapped = Writer::new();
        wrapped.open("content", &[("xmlns", SCE_NAMESPACE)]);
        wrapped.raw(&self.content);
        wrapped.close("content");
        let wrapped = wrapped.finish();
        let doc = parse_document(&wrapped).ok()?;
        body_of(doc.root_element())
    }
}

/// The text of the first `<body xmlns='jabber:client'>` child of `content`, if it holds only
/// text.
fn body_of(content: Node<'_, '_>) -> Option<String> {
    let body = content.children().find(|c| {
        c.is_element() && c.name() == "body" && c.namespace() == Some(CLIENT_NAMESPACE)
    })?;
    text_content(body, "body").ok()
}

/// What [`Envelope::parse_received`] reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReceivedEnvelope {
    /// [`Envelope::body`].
    pub body: Option<String>,
    /// [`Envelope::time`].
    pub time: Option<String>,
    /// [`Envelope::to`].
    pub to: Option<String>,
    /// [`Envelope::from`].
    pub from: Option<String>,
}

/// `⌊x · n / 2³²⌋`, in `0..n`.
fn scale(x: u32, n: u32) -> usize {
    let scaled = (u64::from(x) * u64::from(n)) >> 32;
    usize::try_from(scaled).unwrap_or(0)
}

/// Writes `node` in canonical form (see the module docs). `parent_ns` is the namespace in scope
/// in the output, `None` at the top of the content so that every top-level element declares
/// one. Recursion depth is bounded by the document depth limit.
fn write_canonical(w: &mut Writer, node: Node<'_, '_>, parent_ns: Option<Option<&str>>) {
    if node.is_text() {
        w.text(node.text().unwrap_or_default());
        return;
    }
    if !node.is_element() {
        return;
    }
    let name = node.name();
    let ns = node.namespace();
    w.start_tag(name);
    if parent_ns != Some(ns) {
        w.attr("xmlns", ns.unwrap_or(""));
    }
    let mut prefixes: Vec<&str> = Vec::new();
    for attr in node.attributes() {
        match attr.namespace {
            None => w.attr(attr.name, attr.value),
            Some(XML_NS) => w.attr(&format!("xml:{}", attr.name), attr.value),
            Some(uri) => {
                let index = match prefixes.iter().position(|&p| p == uri) {
                    Some(index) => index,
                    None => {
                        prefixes.push(uri);
                        let index = prefixes.len() - 1;
                        w.attr(&format!("xmlns:ns{index}"), uri);
                        index
                    }
                };
                w.attr(&format!("ns{index}:{}", attr.name), attr.value);
            }
        }
    }
    let mut kids = node
        .children()
        .filter(|c| c.is_element() || c.is_text())
        .peekable();
    if kids.peek().is_none() {
        w.end_empty();
        return;
    }
    w.end_start();
    for child in kids {
        write_canonical(w, child, Some(ns));
    }
    w.close(name);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_parse_reads_the_body_that_body_reads() {
        let sce = SCE_NAMESPACE;
        let client = CLIENT_NAMESPACE;
        for content in [
            format!("<body xmlns='{client}'>plain &amp; simple</body>"),
            format!("<body xmlns='{client}'>a<!-- note -->b<![CDATA[<c>]]></body>"),
            format!(
                "<x xmlns='urn:x'/><body xmlns='{client}'> two </body><body xmlns='{client}'>3</body>"
            ),
            format!("<body xmlns='{client}'>nested <b/></body>"),
            format!("<c:body xmlns:c='{client}'>prefixed</c:body>"),
            "<body xmlns='urn:other'>not a body</body>".to_owned(),
            String::new(),
        ] {
            let xml = format!(
                "<envelope xmlns='{sce}'><content>{content}</content><rpad>xy</rpad>\
                 <time stamp='2026-12-06T20:00:00Z'/><to jid='b@x'/><from jid='a@x'/></envelope>"
            );
            let received = Envelope::parse_received(xml.as_bytes()).unwrap();
            let envelope = Envelope::parse(&xml).unwrap();
            assert_eq!(received.body, envelope.body(), "{content}");
            assert_eq!(
                (received.time, received.to, received.from),
                (envelope.time, envelope.to, envelope.from)
            );
        }
    }
}
