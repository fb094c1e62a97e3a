//! `<bundle>`: a device's published X3DH keys (identity key, signed pre-key and its signature,
//! one-time pre-keys). The two versions carry the same fields under different names.

use super::error::{Limit, StanzaError};
use super::xml::{
    Node, PUBSUB_WRAPPERS, Wanted, Writer, attribute, base64_content, children, encode_base64,
    find_element, first_sighting, parse_document, parse_u32, required_child,
};
use crate::omemo::Version;

/// The element and attribute names of one version.
struct Names {
    spk: &'static str,
    spk_id: &'static str,
    spks: &'static str,
    ik: &'static str,
    pk: &'static str,
    pk_id: &'static str,
}

const fn names(version: Version) -> Names {
    match version {
        Version::Omemo2 => Names {
            spk: "spk",
            spk_id: "id",
            spks: "spks",
            ik: "ik",
            pk: "pk",
            pk_id: "id",
        },
        Version::Omemo03 => Names {
            spk: "signedPreKeyPublic",
            spk_id: "signedPreKeyId",
            spks: "signedPreKeySignature",
            ik: "identityKey",
            pk: "preKeyPublic",
            pk_id: "preKeyId",
        },
    }
}

/// A `<bundle>` of either version. Keys are the raw decoded bytes (OMEMO 0.3 keys keep their
/// `0x05` prefix); their lengths are the protocol layer's to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleElement {
    /// Which OMEMO, decided by the element's namespace.
    pub version: Version,
    /// `<spk id>` / `signedPreKeyId`.
    pub signed_pre_key_id: u32,
    /// `<spk>` / `<signedPreKeyPublic>`.
    pub signed_pre_key: Vec<u8>,
    /// `<spks>` / `<signedPreKeySignature>`.
    pub signed_pre_key_signature: Vec<u8>,
    /// `<ik>` / `<identityKey>`.
    pub identity_key: Vec<u8>,
    /// `(id, key)` of every `<pk>` / `<preKeyPublic>`, in document order; ids are distinct.
    pub pre_keys: Vec<(u32, Vec<u8>)>,
}

impl BundleElement {
    /// Parses a `<bundle>` of either version, alone or inside a pubsub `<item>`, `<items>`,
    /// `<publish>`, `<pubsub>`/`<event>`, `<iq>` or `<message>` (the first in document order).
    pub fn parse(xml: &str) -> Result<Self, StanzaError> {
        let doc = parse_document(xml)?;
        let wanted = [Version::Omemo2, Version::Omemo03].map(|v| Wanted {
            name: "bundle",
            namespace: v.namespace(),
            tag: v,
        });
        let (node, version) = find_element(&doc, &wanted, PUBSUB_WRAPPERS)?;
        Self::from_node(node, version)
    }

    fn from_node(node: Node<'_, '_>, version: Version) -> Result<Self, StanzaError> {
        let ns = version.namespace();
        let n = names(version);
        let spk = required_child(node, ns, n.spk)?;
        let signed_pre_key_id = parse_u32(attribute(spk, n.spk, n.spk_id)?, n.spk, n.spk_id)?;
        let signed_pre_key = base64_content(spk, n.spk)?;
        let signed_pre_key_signature = base64_content(required_child(node, ns, n.spks)?, n.spks)?;
        let identity_key = base64_content(required_child(node, ns, n.ik)?, n.ik)?;
        let mut pre_keys = Vec::new();
        let mut seen = Vec::new();
        for pk in children(required_child(node, ns, "prekeys")?, ns, n.pk) {
            if pre_keys.len() >= Limit::PreKeys.max() {
                return Err(StanzaError::TooLarge(Limit::PreKeys));
            }
            let id = parse_u32(attribute(pk, n.pk, n.pk_id)?, n.pk, n.pk_id)?;
            if !first_sighting(&mut seen, id) {
                return Err(StanzaError::DuplicateId { element: n.pk, id });
            }
            pre_keys.push((id, base64_content(pk, n.pk)?));
        }
        Ok(Self {
            version,
            signed_pre_key_id,
            signed_pre_key,
            signed_pre_key_signature,
            identity_key,
            pre_keys,
        })
    }

    /// The element as XML text, with its namespace declared.
    pub fn serialize(&self) -> String {
        let n = names(self.version);
        let mut w = Writer::new();
        w.open("bundle", &[("xmlns", self.version.namespace())]);
        let spk_id = self.signed_pre_key_id.to_string();
        w.leaf(
            n.spk,
            &[(n.spk_id, &spk_id)],
            &encode_base64(&self.signed_pre_key),
        );
        w.leaf(n.spks, &[], &encode_base64(&self.signed_pre_key_signature));
        w.leaf(n.ik, &[], &encode_base64(&self.identity_key));
        if self.pre_keys.is_empty() {
            w.empty("prekeys", &[]);
        } else {
            w.open("prekeys", &[]);
            for (id, key) in &self.pre_keys {
                w.leaf(n.pk, &[(n.pk_id, &id.to_string())], &encode_base64(key));
            }
            w.close("prekeys");
        }
        w.close("bundle");
        w.finish()
    }
}
