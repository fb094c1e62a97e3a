//! Both ends of a conversation: olmo `OmemoDevice`s and devices in the python-omemo peer, exchanging
//! the XML each side publishes and sends.

use olmo::megolm::Timestamp;
use olmo::omemo::stanza::{self, EncryptedElement, Envelope};
use olmo::omemo::{OmemoDevice, ReceivedMessage, VerifiedBundle, Version};
use serde_json::{Value, json};

pub use crate::common::hex::{hex, unhex};
use crate::common::peer::Peer;

pub const VERSIONS: [Version; 2] = [Version::Omemo2, Version::Omemo03];

pub fn ns(version: Version) -> &'static str {
    match version {
        Version::Omemo2 => "omemo2",
        Version::Omemo03 => "omemo03",
    }
}

pub fn olmo_device(jid: &str, device_id: u32) -> OmemoDevice {
    OmemoDevice::generate(jid, device_id, Timestamp::now(), &mut rand::rng())
}

/// A device living in the python peer.
pub struct PyDevice {
    pub name: String,
    pub version: Version,
    pub jid: String,
    pub device_id: u32,
    pub bundle_xml: String,
    pub identity_ed25519: String,
}

impl PyDevice {
    pub fn new(peer: &mut Peer, version: Version, jid: &str, device_id: u32) -> PyDevice {
        let name = format!("{}-{jid}-{device_id}", ns(version));
        let made = peer.call(json!({
            "op": "device_new", "name": name, "ns": ns(version), "jid": jid, "device_id": device_id,
        }));
        PyDevice {
            name,
            version,
            jid: jid.to_owned(),
            device_id,
            bundle_xml: made["bundle_xml"].as_str().unwrap().to_owned(),
            identity_ed25519: made["identity_ed25519"].as_str().unwrap().to_owned(),
        }
    }

    /// The text a client would encrypt: an SCE envelope for OMEMO 2, the body for 0.3.
    pub fn plaintext(&self, to: &OmemoDevice, body: &str) -> Vec<u8> {
        plaintext(self.version, body, &self.jid, to.jid())
    }

    /// Encrypts to an olmo device (from its bundle when no session exists yet).
    pub fn encrypt(&self, peer: &mut Peer, to: &OmemoDevice, body: &str) -> String {
        let plaintext = self.plaintext(to, body);
        peer.call_str(
            json!({
                "op": "encrypt", "name": self.name, "plaintext": hex(&plaintext),
                "to": [{"jid": to.jid(), "device_id": to.device_id(),
                        "bundle_xml": olmo_bundle_xml(to, self.version)}],
            }),
            "encrypted_xml",
        )
    }

    pub fn encrypt_empty(&self, peer: &mut Peer, to: &OmemoDevice) -> String {
        peer.call_str(
            json!({"op": "encrypt_empty", "name": self.name,
                   "to": [{"jid": to.jid(), "device_id": to.device_id()}]}),
            "encrypted_xml",
        )
    }

    pub fn try_decrypt(
        &self,
        peer: &mut Peer,
        from: &OmemoDevice,
        xml: &str,
    ) -> Result<Value, String> {
        peer.try_call(json!({
            "op": "decrypt", "name": self.name, "from_jid": from.jid(), "encrypted_xml": xml,
            "sender_identity_ed25519": hex(from.identity().ed25519_key().as_bytes()),
        }))
    }

    /// Decrypts a message from an olmo device; the body (from the envelope for OMEMO 2), or
    /// `None` for an empty message.
    pub fn decrypt(&self, peer: &mut Peer, from: &OmemoDevice, xml: &str) -> Option<String> {
        let response = self.try_decrypt(peer, from, xml).unwrap();
        response["plaintext"]
            .as_str()
            .map(|text| body_of(self.version, &unhex(text)))
    }

    /// Sends `body` to an olmo device, which must open it to that body.
    pub fn send_to_olmo(
        &self,
        peer: &mut Peer,
        olmo: &mut OmemoDevice,
        body: &str,
    ) -> ReceivedMessage {
        let xml = self.encrypt(peer, olmo, body);
        let opened = olmo_receive(olmo, &self.jid, &xml);
        assert_eq!(olmo_body(&opened).as_deref(), Some(body));
        opened
    }

    /// An olmo device sends `body` to this one, which must open it to that body: the XML sent.
    pub fn receive_from_olmo(&self, peer: &mut Peer, olmo: &mut OmemoDevice, body: &str) -> String {
        let xml = olmo_send(olmo, self.version, (&self.jid, self.device_id), body);
        assert_eq!(self.decrypt(peer, olmo, &xml).as_deref(), Some(body));
        xml
    }
}

pub fn plaintext(version: Version, body: &str, from: &str, to: &str) -> Vec<u8> {
    match version {
        Version::Omemo2 => Envelope::for_body(body, from, to, None, &mut rand::rng())
            .serialize()
            .into_bytes(),
        Version::Omemo03 => body.as_bytes().to_vec(),
    }
}

pub fn body_of(version: Version, plaintext: &[u8]) -> String {
    match version {
        Version::Omemo2 => Envelope::parse_bytes(plaintext).unwrap().body().unwrap(),
        Version::Omemo03 => String::from_utf8(plaintext.to_vec()).unwrap(),
    }
}

pub fn olmo_bundle_xml(device: &OmemoDevice, version: Version) -> String {
    device.bundle(version).to_element().serialize()
}

/// olmo reads a bundle the peer published and starts a session with it.
pub fn olmo_build_session(device: &mut OmemoDevice, from: &PyDevice, bundle_xml: &str) {
    let element = stanza::BundleElement::parse(bundle_xml).unwrap();
    assert_eq!(element.version, from.version);
    let bundle = VerifiedBundle::from_element(&element).unwrap();
    device
        .build_session(&from.jid, from.device_id, &bundle, &mut rand::rng())
        .unwrap();
}

pub fn olmo_send(
    device: &mut OmemoDevice,
    version: Version,
    to: (&str, u32),
    body: &str,
) -> String {
    let plaintext = plaintext(version, body, device.jid(), to.0);
    device
        .encrypt_message(version, &[to], &plaintext, &mut rand::rng())
        .unwrap()
        .serialize()
}

pub fn olmo_empty(device: &mut OmemoDevice, version: Version, to: (&str, u32)) -> String {
    device
        .encrypt_empty(version, &[to], &mut rand::rng())
        .unwrap()
        .serialize()
}

pub fn olmo_receive(device: &mut OmemoDevice, from_jid: &str, xml: &str) -> ReceivedMessage {
    let element = EncryptedElement::parse(xml).unwrap();
    device
        .decrypt_message(from_jid, &element, &mut rand::rng())
        .unwrap()
}

pub fn olmo_body(message: &ReceivedMessage) -> Option<String> {
    message
        .plaintext
        .as_ref()
        .map(|plaintext| body_of(message.version, plaintext))
}

/// Whether our key in an element carries the key exchange.
pub fn is_key_exchange(xml: &str) -> bool {
    let element = EncryptedElement::parse(xml).unwrap();
    element.keys.iter().all(|key| key.key_exchange)
}
