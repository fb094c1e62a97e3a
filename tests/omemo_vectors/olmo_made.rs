//! The olmo-made vectors (`test-vectors/*/olmo_conversation.json`): the conversation of the
//! python-made files, made by olmo's `OmemoDevice` with SHA-256-scripted randomness and recorded in
//! the same schema, so the same replay checks both. Written by `write_olmo_vectors`.

use std::collections::BTreeMap;

use olmo::crypto::hazmat::sha256;
use olmo::omemo::payload;
use olmo::omemo::{DeviceIdentity, OmemoDevice, PreKeys, Version};
use serde_json::{Value, json};

use crate::support::{
    NOW, ScriptedRng, TestRng, b, directory, hex, path, protobuf_fields, public_of, x3dh,
};

const ALICE: (&str, u32) = ("alice@example.org", 31_415_926);
const BOB: (&str, u32) = ("bob@example.org", 27_182_818);
const PRE_KEY_IDS: [u32; 3] = [1, 2, 3];
const CHOSEN_PRE_KEY: u32 = 2;

/// The python generators' `CONVERSATION` (test-vectors/omemo_tools.py).
const SCRIPT: [(&str, Option<&str>); 7] = [
    ("alice", Some("Hi Bob, this is Alice.")),
    ("alice", Some("Are you there?")),
    ("bob", Some("Hi Alice! Got both.")),
    ("alice", Some("Great, the ratchet stepped.")),
    ("alice", Some("Sending one more.")),
    ("bob", Some("Grüße zurück")),
    ("alice", None),
];

/// The SCE envelope generate_twomemo.py builds (olmo's canonical form).
fn envelope(body: &str, from: &str, to: &str, rpad: &str) -> String {
    format!(
        "<envelope xmlns='urn:xmpp:sce:1'><content><body xmlns='jabber:client'>{body}</body>\
         </content><rpad>{rpad}</rpad><to jid='{to}'/><from jid='{from}'/></envelope>"
    )
}

fn prefix(version: Version) -> String {
    format!("olmo-{}-olmo", directory(version))
}

/// `SHA-256("<prefix>/<label>/<i>")` for i = 0, 1, ... joined and cut to length; every draw
/// logged.
struct Source {
    prefix: String,
    log: Vec<Value>,
}

impl Source {
    fn draw(&mut self, label: &str, length: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(length + 32);
        let mut i = 0;
        while out.len() < length {
            out.extend(sha256(&[format!("{}/{label}/{i}", self.prefix).as_bytes()]));
            i += 1;
        }
        out.truncate(length);
        self.log.push(json!({
            "label": label,
            "source": "CryptoRng::fill_bytes",
            "length": length,
            "hex": hex(&out),
        }));
        out
    }

    /// Draws and queues on `rng`; returns the bytes.
    fn queue(&mut self, rng: &mut ScriptedRng, label: &str, length: usize) -> Vec<u8> {
        let bytes = self.draw(label, length);
        rng.push(label, bytes.clone());
        bytes
    }
}

fn make_device(
    source: &mut Source,
    version: Version,
    name: &str,
    (jid, device_id): (&str, u32),
) -> (OmemoDevice, Value) {
    let mut rng = ScriptedRng::new(format!("{name} identity"));
    let seed = source.queue(&mut rng, &format!("{name}/identity seed"), 32);
    let identity = DeviceIdentity::generate(&mut rng);
    rng.finish();
    let spk: [u8; 32] = source
        .draw(&format!("{name}/signed pre-key 1 private"), 32)
        .try_into()
        .unwrap();
    let pre_keys: Vec<(u32, [u8; 32])> = PRE_KEY_IDS
        .iter()
        .map(|&id| {
            let private = source.draw(&format!("{name}/pre-key {id} private"), 32);
            (id, private.try_into().unwrap())
        })
        .collect();
    let mut rng = ScriptedRng::new(format!("{name} pre-keys"));
    let nonce = (version == Version::Omemo03).then(|| {
        source.queue(
            &mut rng,
            &format!("{name}/signed pre-key 1 signature nonce"),
            64,
        )
    });
    let keys = PreKeys::import(&identity, version, (1, &spk), &pre_keys, NOW, &mut rng);
    rng.finish();
    let other = match version {
        Version::Omemo2 => Version::Omemo03,
        Version::Omemo03 => Version::Omemo2,
    };
    // The other version's keys are unused: the signed pre-key again, no pre-keys.
    let unused = PreKeys::import(&identity, other, (1, &spk), &[], NOW, &mut TestRng::new(1));
    let bundle = keys.bundle(&identity);
    let record = json!({
        "jid": jid,
        "device_id": device_id,
        "identity_seed": hex(&seed),
        "identity_private": hex(identity.curve25519_secret().to_bytes().as_ref()),
        "identity_ed25519": hex(identity.ed25519_key().as_bytes()),
        "identity_curve25519": hex(identity.curve25519_key().as_bytes()),
        "signed_pre_key": {
            "id": 1,
            "private": hex(&spk),
            "public": hex(public_of(&spk).as_bytes()),
            "signature_nonce": nonce.map(|nonce| hex(&nonce)),
            "signature": hex(bundle.signed_pre_key_signature().as_bytes()),
        },
        "pre_keys": pre_keys.iter().map(|(id, private)| json!({
            "id": id,
            "private": hex(private),
            "public": hex(public_of(private).as_bytes()),
        })).collect::<Vec<_>>(),
        "bundle_xml": bundle.to_element().serialize(),
    });
    let (omemo2, omemo03) = match version {
        Version::Omemo2 => (keys, unused),
        Version::Omemo03 => (unused, keys),
    };
    let device = OmemoDevice::from_parts(jid, device_id, identity, omemo2, omemo03);
    (device, record)
}

/// The fields of a `<key>`'s bytes, named as the python generators name them.
fn parse_key(version: Version, kex: bool, data: &[u8]) -> BTreeMap<&'static str, Value> {
    let mut out = BTreeMap::new();
    let authenticated = match (version, kex) {
        (_, false) => data.to_vec(),
        (Version::Omemo2, true) => {
            let fields = protobuf_fields(data);
            assert_eq!(fields.keys().copied().collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
            out.insert(
                "key_exchange",
                json!({
                    "pre_key_id": fields[&1].varint(),
                    "signed_pre_key_id": fields[&2].varint(),
                    "identity_key": hex(fields[&3].bytes()),
                    "base_key": hex(fields[&4].bytes()),
                }),
            );
            fields[&5].bytes().to_vec()
        }
        (Version::Omemo03, true) => {
            assert_eq!(data[0], 0x33);
            let fields = protobuf_fields(&data[1..]);
            assert_eq!(
                fields.keys().copied().collect::<Vec<_>>(),
                [1, 2, 3, 4, 5, 6]
            );
            out.insert(
                "key_exchange",
                json!({
                    "pre_key_id": fields[&1].varint(),
                    "signed_pre_key_id": fields[&6].varint(),
                    "identity_key": hex(fields[&3].bytes()),
                    "base_key": hex(fields[&2].bytes()),
                    "registration_id": fields[&5].varint(),
                }),
            );
            fields[&4].bytes().to_vec()
        }
    };
    let (message, mac, inner, ratchet_key) = match version {
        Version::Omemo2 => {
            let outer = protobuf_fields(&authenticated);
            let message = outer[&2].bytes().to_vec();
            let inner = protobuf_fields(&message);
            let ratchet_key = inner[&3].bytes().to_vec();
            let inner = [inner[&1].varint(), inner[&2].varint()].map(Some);
            let ciphertext = protobuf_fields(&message)[&4].bytes().to_vec();
            out.insert("ciphertext", json!(hex(&ciphertext)));
            (message, outer[&1].bytes().to_vec(), inner, ratchet_key)
        }
        Version::Omemo03 => {
            let split = authenticated.len() - 8;
            let (message, mac) = authenticated.split_at(split);
            assert_eq!(message[0], 0x33);
            let inner = protobuf_fields(&message[1..]);
            let key = inner[&1].bytes();
            assert_eq!(key[0], 0x05);
            out.insert("ciphertext", json!(hex(inner[&4].bytes())));
            let counters = [inner[&2].varint(), inner[&3].varint()].map(Some);
            (message.to_vec(), mac.to_vec(), counters, key[1..].to_vec())
        }
    };
    out.insert("ratchet_public", json!(hex(&ratchet_key)));
    out.insert("n", json!(inner[0]));
    out.insert("pn", json!(inner[1]));
    out.insert("authenticated_message", json!(hex(&authenticated)));
    out.insert("message", json!(hex(&message)));
    out.insert("mac", json!(hex(&mac)));
    out
}

/// Tracks one side's ratchet keys: a new one is drawn on the first send after a new peer key.
struct Side {
    name: &'static str,
    device: OmemoDevice,
    record: Value,
    count: u32,
    ratchet: Vec<u8>,
    needs_new: bool,
}

pub fn write(version: Version) {
    let mut source = Source {
        prefix: prefix(version),
        log: Vec::new(),
    };
    let (alice_device, alice_record) = make_device(&mut source, version, "alice", ALICE);
    let (bob_device, bob_record) = make_device(&mut source, version, "bob", BOB);
    let mut bundle = bob_device.bundle(version);
    bundle.retain_pre_keys(|(id, _)| *id == CHOSEN_PRE_KEY);
    let mut alice = Side {
        name: "alice",
        device: alice_device,
        record: alice_record,
        count: 0,
        ratchet: Vec::new(),
        needs_new: false,
    };
    let mut bob = Side {
        name: "bob",
        device: bob_device,
        record: bob_record,
        count: 0,
        ratchet: Vec::new(),
        needs_new: false,
    };
    let mut session = json!({});
    let mut messages = Vec::new();
    for (index, (from, body)) in SCRIPT.iter().enumerate() {
        let n = index + 1;
        let label = format!("olmo {version:?} message {n}");
        let (sender, receiver) = if *from == "alice" {
            (&mut alice, &mut bob)
        } else {
            (&mut bob, &mut alice)
        };
        let plaintext = body.map(|body| match version {
            Version::Omemo2 => {
                let (from_jid, to_jid) = (
                    sender.record["jid"].as_str().unwrap(),
                    receiver.record["jid"].as_str().unwrap(),
                );
                envelope(body, from_jid, to_jid, &format!("pad{n}")).into_bytes()
            }
            Version::Omemo03 => body.as_bytes().to_vec(),
        });
        let receiver_address = (
            receiver.record["jid"].as_str().unwrap().to_owned(),
            receiver.device.device_id(),
        );
        let mut rng = ScriptedRng::new(&label);
        let first_draw = source.log.len();
        let mut new_key = false;
        if n == 1 {
            rng.allow_words();
            let base = source.queue(&mut rng, "alice/base key", 32);
            sender.count += 1;
            sender.ratchet =
                source.queue(&mut rng, &format!("alice/ratchet key {}", sender.count), 32);
            new_key = true;
            sender
                .device
                .build_session(BOB.0, BOB.1, &bundle, &mut rng)
                .unwrap();
            session = json!({
                "initiator": "alice",
                "responder": "bob",
                "pre_key_id": CHOSEN_PRE_KEY,
                "signed_pre_key_id": 1,
                "base_key_private": hex(&base),
                "base_key_public": hex(public_of(&base.clone().try_into().unwrap()).as_bytes()),
            });
        }
        let mut payload_rng = ScriptedRng::new(format!("{label} payload"));
        let payload_record = match (version, &plaintext) {
            (Version::Omemo2, None) => None,
            (Version::Omemo2, Some(_)) => {
                let key = source.queue(&mut rng, &format!("message {n}/payload key"), 32);
                payload_rng.push("payload key", key.clone());
                Some(json!({"key": hex(&key)}))
            }
            (Version::Omemo03, _) => {
                // Empty messages too: a fresh 16-byte key and an IV (olmo draws key, then IV).
                let key = source.queue(&mut rng, &format!("message {n}/key"), 16);
                let iv = source.queue(&mut rng, &format!("message {n}/iv"), 12);
                if plaintext.is_some() {
                    payload_rng.push("key", key.clone()).push("iv", iv.clone());
                }
                Some(json!({"key": hex(&key), "iv": hex(&iv)}))
            }
        };
        if sender.needs_new {
            sender.count += 1;
            let ratchet_label = format!("{}/ratchet key {}", sender.name, sender.count);
            sender.ratchet = source.queue(&mut rng, &ratchet_label, 32);
            sender.needs_new = false;
            new_key = true;
        }
        let sender_draws: Vec<String> = source.log[first_draw..]
            .iter()
            .map(|draw| draw["label"].as_str().unwrap().to_owned())
            .collect();
        let to = [(receiver_address.0.as_str(), receiver_address.1)];
        let element = match &plaintext {
            Some(plaintext) => sender
                .device
                .encrypt_message(version, &to, plaintext, &mut rng),
            None => sender.device.encrypt_empty(version, &to, &mut rng),
        }
        .unwrap();
        rng.finish();
        let xml = element.serialize();

        // The payload again, through the payload functions: its fields and the key material.
        let (payload, key_material) = match (version, &plaintext, payload_record) {
            (Version::Omemo2, None, _) => (Value::Null, vec![0; 32]),
            (Version::Omemo2, Some(plaintext), Some(mut record)) => {
                let sealed = payload::encrypt_omemo2(plaintext, &mut payload_rng);
                assert_eq!(element.payload.as_ref(), Some(&sealed.ciphertext));
                let mut okm = [0u8; 80];
                olmo::crypto::hazmat::hkdf_sha256(
                    &[0; 32],
                    &b(&record["key"]),
                    b"OMEMO Payload",
                    &mut okm,
                );
                record["encryption_key"] = json!(hex(&okm[..32]));
                record["authentication_key"] = json!(hex(&okm[32..64]));
                record["iv"] = json!(hex(&okm[64..]));
                record["hmac"] = json!(hex(&sealed.key_material[32..]));
                record["ciphertext"] = json!(hex(&sealed.ciphertext));
                (record, sealed.key_material.to_vec())
            }
            (Version::Omemo03, None, Some(record)) => {
                assert_eq!(element.iv.as_deref(), Some(&b(&record["iv"])[..]));
                let key = b(&record["key"]);
                (record, key)
            }
            (Version::Omemo03, Some(plaintext), Some(mut record)) => {
                let sealed = payload::encrypt_omemo03(plaintext, &mut payload_rng);
                assert_eq!(element.payload.as_ref(), Some(&sealed.ciphertext));
                record["ciphertext"] = json!(hex(&sealed.ciphertext));
                record["tag"] = json!(hex(&sealed.key_material[16..]));
                (record, sealed.key_material.to_vec())
            }
            _ => unreachable!(),
        };
        payload_rng.finish();

        let [key] = element.keys.as_slice() else {
            panic!("{label}: one key")
        };
        let parsed = parse_key(version, key.key_exchange, &key.data);
        assert_eq!(
            parsed["ratchet_public"],
            json!(hex(
                public_of(&sender.ratchet.clone().try_into().unwrap()).as_bytes()
            ))
        );

        // The receiver opens it (its refills take unscripted randomness).
        let received = receiver
            .device
            .decrypt_message(
                sender.record["jid"].as_str().unwrap(),
                &element,
                &mut TestRng::new(n as u64),
            )
            .unwrap();
        assert_eq!(received.plaintext.as_deref().map(|p| p.to_vec()), plaintext);
        if new_key {
            receiver.needs_new = true;
        }

        let mut record = json!({
            "number": n,
            "from": sender.name,
            "to": receiver.name,
            "type": if plaintext.is_some() { "message" } else { "empty" },
            "plaintext": plaintext.as_ref().map(|p| String::from_utf8(p.clone()).unwrap()),
            "plaintext_hex": plaintext.as_ref().map(|p| hex(p)),
            "payload": payload,
            "key_material": hex(&key_material),
            "ratchet_private": hex(&sender.ratchet),
            "new_ratchet_key": new_key,
            "kex": key.key_exchange,
            "key_exchange": Value::Null,
            "key": hex(&key.data),
            "encrypted_xml": xml,
            "sender_draws": sender_draws,
            "receiver_draws": [],
        });
        for (name, value) in parsed {
            record[name] = value;
        }
        messages.push(record);
    }
    let mut vectors = json!({
        "description": format!(
            "The conversation of conversation.json, made by olmo's OmemoDevice ({:?}) with scripted \
             randomness. See README.md.",
            version
        ),
        "generator": "tests/omemo_vectors (write_olmo_vectors, OLMO_WRITE_OMEMO_VECTORS=1)",
        "libraries": {"olmo": env!("CARGO_PKG_VERSION")},
        "namespace": version.namespace(),
        "random": format!(
            "SHA-256(\"{}/<label>/<i>\") for i = 0, 1, ... joined and cut to length",
            prefix(version)
        ),
        "devices": {"alice": alice.record, "bob": bob.record},
        "session": session,
        "messages": messages,
        "random_draws": source.log,
    });
    let (shared, associated) = x3dh(version, &vectors);
    vectors["session"]["shared_secret"] = json!(hex(&shared));
    vectors["session"]["associated_data"] = json!(hex(&associated));
    let text = serde_json::to_string_pretty(&vectors).unwrap() + "\n";
    std::fs::write(path(version, "olmo_conversation.json"), text).unwrap();
}
