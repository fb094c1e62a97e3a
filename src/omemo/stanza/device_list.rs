//! The device list: which device ids an account publishes. OMEMO 2 calls it `<devices>` and may
//! label each device (the label signed by the identity key since XEP-0384 0.9); OMEMO 0.3 calls
//! it `<list>` and has ids only.

use super::error::{Limit, StanzaError};
use super::xml::{
    Node, PUBSUB_WRAPPERS, Wanted, Writer, attribute, children, decode_base64, encode_base64,
    find_element, first_sighting, optional_attribute, parse_device_id, parse_document,
};
use crate::omemo::Version;

const fn list_name(version: Version) -> &'static str {
    match version {
        Version::Omemo2 => "devices",
        Version::Omemo03 => "list",
    }
}

/// One `<device>` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedDevice {
    /// The device id.
    pub id: u32,
    /// `label`, a human-readable name (OMEMO 2 only; not read or written for OMEMO 0.3).
    pub label: Option<String>,
    /// `labelsig`, the decoded signature over the label (OMEMO 2 only; unchecked here).
    pub label_signature: Option<Vec<u8>>,
}

/// A device list of either version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceListElement {
    /// Which OMEMO, decided by the element's name and namespace.
    pub version: Version,
    /// The devices in document order; ids are distinct.
    pub devices: Vec<ListedDevice>,
}

impl DeviceListElement {
    /// Parses `<devices xmlns='urn:xmpp:omemo:2'>` or `<list xmlns='eu.siacs.conversations.axolotl'>`,
    /// alone or inside a pubsub `<item>`, `<items>`, `<publish>`, `<pubsub>`/`<event>`, `<iq>` or
    /// `<message>` (the first in document order).
    pub fn parse(xml: &str) -> Result<Self, StanzaError> {
        let doc = parse_document(xml)?;
        let wanted = [Version::Omemo2, Version::Omemo03].map(|v| Wanted {
            name: list_name(v),
            namespace: v.namespace(),
            tag: v,
        });
        let (node, version) = find_element(&doc, &wanted, PUBSUB_WRAPPERS)?;
        Self::from_node(node, version)
    }

    fn from_node(node: Node<'_, '_>, version: Version) -> Result<Self, StanzaError> {
        let mut devices = Vec::new();
        let mut seen = Vec::new();
        for device in children(node, version.namespace(), "device") {
            if devices.len() >= Limit::Devices.max() {
                return Err(StanzaError::TooLarge(Limit::Devices));
            }
            let id = parse_device_id(attribute(device, "device", "id")?, "device", "id")?;
            if !first_sighting(&mut seen, id) {
                return Err(StanzaError::DuplicateId {
                    element: "device",
                    id,
                });
            }
            let (label, label_signature) = match version {
                Version::Omemo2 => (
                    optional_attribute(device, "label").map(str::to_owned),
                    optional_attribute(device, "labelsig")
                        .map(|sig| decode_base64(sig, "device"))
                        .transpose()?,
                ),
                Version::Omemo03 => (None, None),
            };
            devices.push(ListedDevice {
                id,
                label,
                label_signature,
            });
        }
        Ok(Self { version, devices })
    }

    /// Whether `id` is on the list.
    pub fn contains(&self, id: u32) -> bool {
        self.devices.iter().any(|d| d.id == id)
    }

    /// The element as XML text, with its namespace declared.
    pub fn serialize(&self) -> String {
        let name = list_name(self.version);
        let mut w = Writer::new();
        if self.devices.is_empty() {
            w.empty(name, &[("xmlns", self.version.namespace())]);
            return w.finish();
        }
        w.open(name, &[("xmlns", self.version.namespace())]);
        for device in &self.devices {
            w.start_tag("device");
            w.attr("id", &device.id.to_string());
            if self.version == Version::Omemo2 {
                if let Some(label) = &device.label {
                    w.attr("label", label);
                }
                if let Some(sig) = &device.label_signature {
                    w.attr("labelsig", &encode_base64(sig));
                }
            }
            w.end_empty();
        }
        w.close(name);
        w.finish()
    }
}
