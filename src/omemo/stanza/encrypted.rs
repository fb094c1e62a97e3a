//! `<encrypted>`: the OMEMO message element, one ratchet-encrypted key per recipient device plus
//! the optional symmetric payload.
//!
//! OMEMO 2 groups keys by recipient bare JID (`<keys jid='…'>`) and marks key exchanges with
//! `kex`; OMEMO 0.3 lists `<key>` directly under `<header>`, marks them with `prekey`, and
//! carries the payload IV in `<iv>`.

use super::error::{Limit, StanzaError};
use super::xml::{
    Node, Wanted, Writer, attribute, base64_content, children, encode_base64, find_element,
    optional_attribute, optional_child, parse_bool, parse_device_id, parse_document,
    required_child,
};
use crate::omemo::Version;

const ELEMENT: &str = "encrypted";

/// One recipient device's copy of the message key (the ratchet message, for the protocol layer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyElement {
    /// The recipient's bare JID (`<keys jid>`): `Some` in OMEMO 2, `None` in OMEMO 0.3, which
    /// has no such grouping.
    pub jid: Option<String>,
    /// The recipient device (`rid`).
    pub device_id: u32,
    /// Whether this is a key exchange: `kex` in OMEMO 2, `prekey` in OMEMO 0.3.
    pub key_exchange: bool,
    /// The decoded element text.
    pub data: Vec<u8>,
}

/// An `<encrypted>` element of either version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedElement {
    /// Which OMEMO, decided by the element's namespace.
    pub version: Version,
    /// The sending device (`<header sid>`).
    pub sender_device: u32,
    /// Every `<key>` in document order. Serializing OMEMO 2 groups them by `jid` in first-seen
    /// order; a key without a `jid` is written in a `<keys>` without one, which parsing rejects.
    pub keys: Vec<KeyElement>,
    /// The payload IV (`<iv>`): required in OMEMO 0.3, absent in OMEMO 2 (ignored when writing
    /// OMEMO 2).
    pub iv: Option<Vec<u8>>,
    /// The encrypted payload; `None` for key-exchange completions and heartbeats.
    pub payload: Option<Vec<u8>>,
}

impl EncryptedElement {
    /// Parses an `<encrypted>` element of either version, given alone or as a direct child of a
    /// `<message>` root; the first one in document order wins.
    pub fn parse(xml: &str) -> Result<Self, StanzaError> {
        Self::parse_among(xml, &[Version::Omemo2, Version::Omemo03])
    }

    /// Like [`EncryptedElement::parse`], but only the element of `version`: for messages that carry
    /// both.
    pub fn parse_version(xml: &str, version: Version) -> Result<Self, StanzaError> {
        Self::parse_among(xml, &[version])
    }

    fn parse_among(xml: &str, versions: &[Version]) -> Result<Self, StanzaError> {
        let doc = parse_document(xml)?;
        let wanted: Vec<Wanted<Version>> = versions
            .iter()
            .map(|&v| Wanted {
                name: ELEMENT,
                namespace: v.namespace(),
                tag: v,
            })
            .collect();
        let (node, version) = find_element(&doc, &wanted, &["message"])?;
        Self::from_node(node, version)
    }

    fn from_node(node: Node<'_, '_>, version: Version) -> Result<Self, StanzaError> {
        let ns = version.namespace();
        let header = required_child(node, ns, "header")?;
        let sender_device = parse_device_id(attribute(header, "header", "sid")?, "header", "sid")?;
        let mut keys = Vec::new();
        let mut iv = None;
        match version {
            Version::Omemo2 => {
                for group in children(header, ns, "keys") {
                    let jid = attribute(group, "keys", "jid")?;
                    for key in children(group, ns, "key") {
                        push_key(&mut keys, key, Some(jid), "kex")?;
                    }
                }
            }
            Version::Omemo03 => {
                for key in children(header, ns, "key") {
                    push_key(&mut keys, key, None, "prekey")?;
                }
                iv = Some(base64_content(required_child(header, ns, "iv")?, "iv")?);
            }
        }
        let payload = optional_child(node, ns, "payload")?
            .map(|p| base64_content(p, "payload"))
            .transpose()?;
        Ok(Self {
            version,
            sender_device,
            keys,
            iv,
            payload,
        })
    }

    /// The keys addressed to `device_id` of `jid` (compared exactly; pass `None` for OMEMO 0.3).
    /// Device ids are random, so two recipients' devices may collide: try each.
    pub fn keys_for(&self, jid: Option<&str>, device_id: u32) -> impl Iterator<Item = &KeyElement> {
        self.keys
            .iter()
            .filter(move |k| k.device_id == device_id && k.jid.as_deref() == jid)
    }

    /// The element as XML text, with its namespace declared.
    pub fn serialize(&self) -> String {
        let mut w = Writer::new();
        w.open(ELEMENT, &[("xmlns", self.version.namespace())]);
        w.open("header", &[("sid", &self.sender_device.to_string())]);
        match self.version {
            Version::Omemo2 => {
                for (jid, keys) in group_by_jid(&self.keys) {
                    match jid {
                        Some(jid) => w.open("keys", &[("jid", jid)]),
                        None => w.open("keys", &[]),
                    }
                    for key in keys {
                        write_key(&mut w, key, "kex");
                    }
                    w.close("keys");
                }
            }
            Version::Omemo03 => {
                for key in &self.keys {
                    write_key(&mut w, key, "prekey");
                }
                if let Some(iv) = &self.iv {
                    w.leaf("iv", &[], &encode_base64(iv));
                }
            }
        }
        w.close("header");
        if let Some(payload) = &self.payload {
            w.leaf("payload", &[], &encode_base64(payload));
        }
        w.close(ELEMENT);
        w.finish()
    }
}

fn push_key(
    keys: &mut Vec<KeyElement>,
    key: Node<'_, '_>,
    jid: Option<&str>,
    flag: &'static str,
) -> Result<(), StanzaError> {
    if keys.len() >= Limit::Keys.max() {
        return Err(StanzaError::TooLarge(Limit::Keys));
    }
    let device_id = parse_device_id(attribute(key, "key", "rid")?, "key", "rid")?;
    let key_exchange = optional_attribute(key, flag)
        .map(|v| parse_bool(v, "key", flag))
        .transpose()?
        .unwrap_or(false);
    let data = base64_content(key, "key")?;
    keys.push(KeyElement {
        jid: jid.map(str::to_owned),
        device_id,
        key_exchange,
        data,
    });
    Ok(())
}

fn write_key(w: &mut Writer, key: &KeyElement, flag: &str) {
    let rid = key.device_id.to_string();
    let data = encode_base64(&key.data);
    if key.key_exchange {
        w.leaf("key", &[("rid", &rid), (flag, "true")], &data);
    } else {
        w.leaf("key", &[("rid", &rid)], &data);
    }
}

/// Keys grouped by JID, groups in the order their JID first appears. The group is found by a
/// look at the last one (keys usually come JID by JID), then a scan: a message has few JIDs,
/// and a hash map keyed by JID would bring its own copy of the table code to the `.wasm`.
fn group_by_jid(keys: &[KeyElement]) -> Vec<(Option<&str>, Vec<&KeyElement>)> {
    let mut groups: Vec<(Option<&str>, Vec<&KeyElement>)> = Vec::new();
    for key in keys {
        let jid = key.jid.as_deref();
        let found = match groups.last_mut() {
            Some(last) if last.0 == jid => Some(last),
            _ => groups.iter_mut().find(|(j, _)| *j == jid),
        };
        match found {
            Some((_, group)) => group.push(key),
            None => groups.push((jid, vec![key])),
        }
    }
    groups
}
