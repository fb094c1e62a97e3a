//! The libsignal peer as typed calls, olmo devices for the tests, and a small protobuf field
//! scanner to find where things sit in a message.

use std::ops::Range;

use olmo::megolm::Timestamp;
use olmo::omemo::{OmemoDevice, SealedKey, VerifiedBundle, Version, stanza};
use rand::RngExt as _;
use serde_json::{Value, json};

use crate::common::hex::{hex, unhex};
use crate::common::peer::Peer;

pub const V: Version = Version::Omemo03;
pub const OLMO_JID: &str = "olmo@example.org";
pub const OLMO_DEVICE: u32 = 1_987_654_321;

/// A fresh olmo device (clock fixed: nothing here depends on time).
pub fn olmo_device(jid: &str, device_id: u32) -> OmemoDevice {
    OmemoDevice::generate(jid, device_id, now(), &mut rand::rng())
}

pub fn now() -> Timestamp {
    Timestamp::from_millis(1_700_000_000_000)
}

pub fn random<const N: usize>() -> [u8; N] {
    rand::rng().random::<[u8; N]>()
}

/// Key material as an OMEMO 0.3 client sends it: a 16-byte AES key and a 16-byte GCM tag.
pub fn material(tag: u8) -> Vec<u8> {
    let mut bytes = random::<32>().to_vec();
    bytes[0] = tag;
    bytes
}

fn unhex_field(value: &Value, field: &str) -> Vec<u8> {
    unhex(
        value[field]
            .as_str()
            .unwrap_or_else(|| panic!("no hex field {field:?} in {value}")),
    )
}

fn u32_field(value: &Value, field: &str) -> u32 {
    value[field]
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or_else(|| panic!("no u32 field {field:?} in {value}"))
}

pub fn address(jid: &str, device_id: u32) -> Value {
    json!({"name": jid, "device_id": device_id})
}

/// A bundle as libsignal publishes it (keys `0x05 ‖ 32`).
#[derive(Debug, Clone)]
pub struct LsBundle {
    pub identity_key: Vec<u8>,
    pub signed_pre_key_id: u32,
    pub signed_pre_key: Vec<u8>,
    pub signature: Vec<u8>,
    pub pre_keys: Vec<(u32, Vec<u8>)>,
    pub registration_id: u32,
    pub device_id: u32,
}

impl LsBundle {
    fn from_json(value: &Value) -> Self {
        let pre_keys = value["pre_keys"]
            .as_array()
            .unwrap_or_else(|| panic!("no pre_keys in {value}"))
            .iter()
            .map(|pk| (u32_field(pk, "id"), unhex_field(pk, "key")))
            .collect();
        Self {
            identity_key: unhex_field(value, "identity_key"),
            signed_pre_key_id: u32_field(value, "signed_pre_key_id"),
            signed_pre_key: unhex_field(value, "signed_pre_key"),
            signature: unhex_field(value, "signed_pre_key_signature"),
            pre_keys,
            registration_id: u32_field(value, "registration_id"),
            device_id: u32_field(value, "device_id"),
        }
    }

    /// The `<bundle>` element an OMEMO 0.3 client would publish for this device.
    pub fn element(&self) -> stanza::BundleElement {
        stanza::BundleElement {
            version: V,
            signed_pre_key_id: self.signed_pre_key_id,
            signed_pre_key: self.signed_pre_key.clone(),
            signed_pre_key_signature: self.signature.clone(),
            identity_key: self.identity_key.clone(),
            pre_keys: self.pre_keys.clone(),
        }
    }

    /// olmo's typed bundle, through the XML an XMPP client would fetch.
    pub fn to_olmo(&self) -> VerifiedBundle {
        let xml = self.element().serialize();
        let parsed = stanza::BundleElement::parse(&xml).expect("parse the bundle element");
        assert_eq!(parsed, self.element());
        VerifiedBundle::from_element(&parsed).expect("olmo accepts libsignal's bundle")
    }
}

/// A message libsignal encrypted.
#[derive(Debug, Clone)]
pub struct Sent {
    pub prekey: bool,
    pub body: Vec<u8>,
    pub counter: u32,
}

impl Sent {
    /// The key element's content as olmo receives it.
    pub fn key(&self) -> SealedKey {
        SealedKey {
            data: self.body.clone(),
            key_exchange: self.prekey,
        }
    }
}

fn kind(key: &SealedKey) -> &'static str {
    if key.key_exchange {
        "prekey"
    } else {
        "whisper"
    }
}

/// The Node peer running libsignal-client 0.72.1.
pub struct Signal(Peer);

impl Signal {
    pub fn start() -> Self {
        Self(Peer::libsignal())
    }

    pub fn call(&mut self, request: Value) -> Value {
        self.0.call(request)
    }

    pub fn try_call(&mut self, request: Value) -> Result<Value, String> {
        self.0.try_call(request)
    }

    /// `device_new`; `options` is merged into the request.
    pub fn device_new(&mut self, name: &str, options: Value) -> LsBundle {
        let mut request = json!({"op": "device_new", "name": name});
        merge(&mut request, options);
        LsBundle::from_json(&self.call(request))
    }

    /// `device_import` with the private keys given.
    pub fn device_import(
        &mut self,
        name: &str,
        device_id: u32,
        identity_private: &[u8; 32],
        signed_pre_key: (u32, &[u8; 32]),
        pre_keys: &[(u32, [u8; 32])],
    ) -> LsBundle {
        let pre_keys: Vec<Value> = pre_keys
            .iter()
            .map(|(id, private)| json!({"id": id, "private": hex(private)}))
            .collect();
        LsBundle::from_json(&self.call(json!({
            "op": "device_import",
            "name": name,
            "device_id": device_id,
            "identity_private": hex(identity_private),
            "signed_pre_key": {"id": signed_pre_key.0, "private": hex(signed_pre_key.1)},
            "pre_keys": pre_keys,
        })))
    }

    /// `process_bundle` from olmo's bundle, with one of its pre-keys or none.
    pub fn process_olmo_bundle(
        &mut self,
        name: &str,
        to: (&str, u32),
        bundle: &VerifiedBundle,
        pre_key: Option<usize>,
    ) -> Result<Value, String> {
        self.process_olmo_element(name, to, &bundle.to_element(), pre_key)
    }

    /// `process_bundle` from a `<bundle>` element as olmo writes it (which may be tampered with).
    pub fn process_olmo_element(
        &mut self,
        name: &str,
        to: (&str, u32),
        element: &stanza::BundleElement,
        pre_key: Option<usize>,
    ) -> Result<Value, String> {
        let mut request = json!({
            "op": "process_bundle",
            "name": name,
            "address": address(to.0, to.1),
            "registration_id": to.1,
            "identity_key": hex(&element.identity_key),
            "signed_pre_key_id": element.signed_pre_key_id,
            "signed_pre_key": hex(&element.signed_pre_key),
            "signed_pre_key_signature": hex(&element.signed_pre_key_signature),
        });
        if let Some(index) = pre_key {
            let (id, key) = &element.pre_keys[index];
            request["pre_key_id"] = json!(id);
            request["pre_key"] = json!(hex(key));
        }
        self.try_call(request)
    }

    /// `process_bundle` from a libsignal bundle, with one of its pre-keys or none.
    pub fn process_ls_bundle(
        &mut self,
        name: &str,
        to: (&str, u32),
        bundle: &LsBundle,
        pre_key: Option<usize>,
    ) {
        let mut request = json!({
            "op": "process_bundle",
            "name": name,
            "address": address(to.0, to.1),
            "registration_id": bundle.registration_id,
            "identity_key": hex(&bundle.identity_key),
            "signed_pre_key_id": bundle.signed_pre_key_id,
            "signed_pre_key": hex(&bundle.signed_pre_key),
            "signed_pre_key_signature": hex(&bundle.signature),
        });
        if let Some(index) = pre_key {
            let (id, key) = &bundle.pre_keys[index];
            request["pre_key_id"] = json!(id);
            request["pre_key"] = json!(hex(key));
        }
        self.call(request);
    }

    /// `encrypt`; `options` (skip, version_byte) merged into the request.
    pub fn encrypt_with(
        &mut self,
        name: &str,
        to: (&str, u32),
        plaintext: &[u8],
        options: Value,
    ) -> Sent {
        let mut request = json!({
            "op": "encrypt",
            "name": name,
            "address": address(to.0, to.1),
            "plaintext": hex(plaintext),
        });
        merge(&mut request, options);
        let response = self.call(request);
        let prekey = match response["type"].as_str() {
            Some("prekey") => true,
            Some("whisper") => false,
            other => panic!("unexpected message type {other:?}"),
        };
        Sent {
            prekey,
            body: unhex_field(&response, "body"),
            counter: u32_field(&response, "counter"),
        }
    }

    pub fn encrypt(&mut self, name: &str, to: (&str, u32), plaintext: &[u8]) -> Sent {
        self.encrypt_with(name, to, plaintext, json!({}))
    }

    /// `decrypt` of a key element olmo wrote; the whole response.
    pub fn try_decrypt(
        &mut self,
        name: &str,
        from: (&str, u32),
        key: &SealedKey,
    ) -> Result<Value, String> {
        self.try_call(json!({
            "op": "decrypt",
            "name": name,
            "address": address(from.0, from.1),
            "type": kind(key),
            "body": hex(&key.data),
        }))
    }

    /// `decrypt`, which must succeed; the plaintext.
    pub fn decrypt(&mut self, name: &str, from: (&str, u32), key: &SealedKey) -> Vec<u8> {
        let response = self
            .try_decrypt(name, from, key)
            .unwrap_or_else(|e| panic!("libsignal refused olmo's {}: {e}", kind(key)));
        unhex_field(&response, "plaintext")
    }

    /// libsignal's parse of a key element: `{libsignal: {...}, wire: {...}}`.
    pub fn parse(&mut self, key: &SealedKey) -> Result<Value, String> {
        self.try_call(json!({"op": "parse", "type": kind(key), "body": hex(&key.data)}))
    }

    /// `(identity_key (33), identity_private (32))`.
    pub fn identity(&mut self, name: &str) -> (Vec<u8>, [u8; 32]) {
        let response = self.call(json!({"op": "identity", "name": name}));
        let private = unhex_field(&response, "identity_private");
        (
            unhex_field(&response, "identity_key"),
            private.try_into().expect("32-byte private key"),
        )
    }

    pub fn sign_with(&mut self, private: &[u8; 32], message: &[u8]) -> [u8; 64] {
        let response =
            self.call(json!({"op": "sign", "private": hex(private), "message": hex(message)}));
        unhex_field(&response, "signature")
            .try_into()
            .expect("64-byte signature")
    }

    pub fn sign(&mut self, name: &str, message: &[u8]) -> [u8; 64] {
        let response = self.call(json!({"op": "sign", "name": name, "message": hex(message)}));
        unhex_field(&response, "signature")
            .try_into()
            .expect("64-byte signature")
    }

    pub fn verify(&mut self, identity_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
        let response = self.call(json!({
            "op": "verify",
            "identity_key": hex(identity_key),
            "message": hex(message),
            "signature": hex(signature),
        }));
        response["valid"].as_bool().expect("valid")
    }

    /// libsignal's public key (`0x05 ‖ 32`) for a private key.
    pub fn public_key(&mut self, private: &[u8; 32]) -> Vec<u8> {
        let response = self.call(json!({"op": "public_key", "private": hex(private)}));
        unhex_field(&response, "public_key")
    }

    pub fn pre_key_ids(&mut self, name: &str) -> Vec<u32> {
        let response = self.call(json!({"op": "device_info", "name": name}));
        response["pre_key_ids"]
            .as_array()
            .expect("pre_key_ids")
            .iter()
            .map(|id| u32::try_from(id.as_u64().expect("id")).expect("u32"))
            .collect()
    }

    /// The device's current bundle (the pre-keys it still holds).
    pub fn bundle(&mut self, name: &str) -> LsBundle {
        LsBundle::from_json(&self.call(json!({"op": "bundle", "name": name})))
    }

    pub fn archive_session(&mut self, name: &str, with: (&str, u32)) {
        self.call(
            json!({"op": "archive_session", "name": name, "address": address(with.0, with.1)}),
        );
    }

    pub fn session_info(&mut self, name: &str, with: (&str, u32)) -> Value {
        self.call(json!({"op": "session_info", "name": name, "address": address(with.0, with.1)}))
    }
}

fn merge(request: &mut Value, options: Value) {
    if let (Some(request), Value::Object(options)) = (request.as_object_mut(), options) {
        request.extend(options);
    }
}

/// One protobuf field of a message: its number and where its value sits.
#[derive(Debug, Clone)]
pub struct Field {
    pub number: u32,
    /// The value (a varint's bytes, or a length-delimited field's content).
    pub value: Range<usize>,
}

fn varint(bytes: &[u8], mut at: usize) -> (u64, usize) {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = bytes[at];
        at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return (value, at);
        }
    }
    panic!("varint too long");
}

/// The top-level fields of `version ‖ protobuf [‖ mac]`, offsets into `body`; `mac` is the
/// length of a trailing MAC (8 for a SignalMessage, 0 for a PreKeySignalMessage).
pub fn fields(body: &[u8], mac: usize) -> Vec<Field> {
    let end = body.len() - mac;
    let mut at = 1;
    let mut out = Vec::new();
    while at < end {
        let (key, next) = varint(body, at);
        let number = u32::try_from(key >> 3).expect("field number");
        let (value, next) = match key & 7 {
            0 => {
                let (_, after) = varint(body, next);
                (next..after, after)
            }
            2 => {
                let (length, after) = varint(body, next);
                let length = usize::try_from(length).expect("length");
                (after..after + length, after + length)
            }
            other => panic!("wire type {other}"),
        };
        out.push(Field { number, value });
        at = next;
    }
    assert_eq!(at, end, "fields run past the MAC");
    out
}

/// The field `number` of a message.
pub fn field(body: &[u8], mac: usize, number: u32) -> Option<Field> {
    fields(body, mac).into_iter().find(|f| f.number == number)
}

/// The SignalMessage inside a PreKeySignalMessage.
pub fn inner_message(prekey: &[u8]) -> Vec<u8> {
    let inner = field(prekey, 0, 4).expect("PreKeySignalMessage.message");
    prekey[inner.value].to_vec()
}
