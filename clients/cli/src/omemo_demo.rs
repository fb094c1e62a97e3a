//! The OMEMO part of the demonstration: two XMPP accounts with two devices each. Romeo's phone
//! sends one OMEMO 2 message to Juliet's two devices and to his own laptop (one payload, one key
//! per device), everyone answers the key exchange with an empty message, Juliet replies; then
//! the same conversation over OMEMO 0.3.

use olmo::omemo::stanza::{EncryptedElement, Envelope};
use olmo::omemo::{Omemo2, Omemo03, OmemoDevice, OmemoProfile, VerifiedBundle, Version};

use crate::olm_demo::fail;

const ROMEO: &str = "romeo@montague.example";
const JULIET: &str = "juliet@capulet.example";

pub fn run() {
    let mut devices = vec![
        (OmemoDevice::new(ROMEO, 1001), "Romeo's phone"),
        (OmemoDevice::new(ROMEO, 1002), "Romeo's laptop"),
        (OmemoDevice::new(JULIET, 2001), "Juliet's phone"),
        (OmemoDevice::new(JULIET, 2002), "Juliet's desktop"),
    ];
    println!("\n== OMEMO: two XMPP accounts, two devices each ==\n");
    for (device, name) in &devices {
        println!(
            "{name:<17} {}/{}  fingerprint {}",
            device.jid(),
            device.device_id(),
            group(&device.identity().fingerprint())
        );
    }
    for version in [Version::Omemo2, Version::Omemo03] {
        conversation(&mut devices, version);
    }
}

fn conversation(devices: &mut [(OmemoDevice, &str)], version: Version) {
    println!("\n-- {} ({}) --\n", label(version), version.namespace());
    // Everyone publishes a bundle; Romeo's phone fetches the three others and checks them.
    let bundles: Vec<String> = devices
        .iter()
        .map(|(device, _)| device.bundle(version).to_element().serialize())
        .collect();
    println!(
        "Juliet's phone publishes a {}-byte bundle: {}…",
        bundles[2].len(),
        &bundles[2][..90.min(bundles[2].len())]
    );
    let (phone, others) = devices
        .split_first_mut()
        .unwrap_or_else(|| fail("no devices"));
    let mut recipients = Vec::new();
    for ((device, _), xml) in others.iter().zip(&bundles[1..]) {
        let element =
            olmo::omemo::stanza::BundleElement::parse(xml).unwrap_or_else(|e| fail(&e.to_string()));
        let bundle =
            VerifiedBundle::from_element(&element).unwrap_or_else(|e| fail(&e.to_string()));
        phone
            .0
            .build_session(device.jid(), device.device_id(), &bundle, &mut rand::rng())
            .unwrap_or_else(|e| fail(&e.to_string()));
        recipients.push((device.jid().to_owned(), device.device_id()));
    }
    let targets: Vec<(&str, u32)> = recipients.iter().map(|(j, d)| (j.as_str(), *d)).collect();

    let body = "But soft, what light through yonder window breaks?";
    let plaintext = content(version, body, ROMEO, JULIET);
    let element = phone
        .0
        .encrypt_message(version, &targets, &plaintext, &mut rand::rng())
        .unwrap_or_else(|e| fail(&e.to_string()));
    let xml = element.serialize();
    println!(
        "Romeo's phone sends one message: {} bytes of <encrypted>, one payload of {} bytes,\n  keys for {} devices, each a key exchange ({} bytes):",
        xml.len(),
        element.payload.as_ref().map_or(0, Vec::len),
        element.keys.len(),
        element.keys.first().map_or(0, |k| k.data.len()),
    );
    describe(&element);

    // Each recipient reads it and completes the exchange with an empty message.
    let sender = (ROMEO, phone.0.device_id());
    let mut completions = Vec::new();
    for (device, name) in others.iter_mut() {
        let received = EncryptedElement::parse(&xml).unwrap_or_else(|e| fail(&e.to_string()));
        let opened = device
            .decrypt_message(ROMEO, &received, &mut rand::rng())
            .unwrap_or_else(|e| fail(&e.to_string()));
        let text = opened
            .plaintext
            .as_ref()
            .map(|p| read(version, p))
            .unwrap_or_default();
        println!(
            "  {name:<17} reads {text:?} (new session {}, reply due {})",
            opened.new_session, opened.reply_due
        );
        let empty = device
            .encrypt_empty(version, &[sender], &mut rand::rng())
            .unwrap_or_else(|e| fail(&e.to_string()));
        completions.push(empty.serialize());
    }
    for empty in &completions {
        let received = EncryptedElement::parse(empty).unwrap_or_else(|e| fail(&e.to_string()));
        let sender_device = received.sender_device;
        phone
            .0
            .decrypt_message(
                &recipients_jid(&recipients, sender_device),
                &received,
                &mut rand::rng(),
            )
            .unwrap_or_else(|e| fail(&e.to_string()));
    }
    println!(
        "Romeo's phone got {} empty messages: key exchanges complete",
        completions.len()
    );

    // Juliet's phone answers Romeo's phone; no key exchange is attached any more.
    let juliet = &mut others[1].0;
    let reply = content(
        version,
        "Romeo, Romeo, wherefore art thou Romeo?",
        JULIET,
        ROMEO,
    );
    let answer = juliet
        .encrypt_message(version, &[sender], &reply, &mut rand::rng())
        .unwrap_or_else(|e| fail(&e.to_string()));
    let opened = phone
        .0
        .decrypt_message(JULIET, &answer, &mut rand::rng())
        .unwrap_or_else(|e| fail(&e.to_string()));
    println!(
        "Juliet's phone replies ({} bytes, key exchange {}): Romeo reads {:?}",
        answer.serialize().len(),
        answer.keys.iter().any(|k| k.key_exchange),
        opened
            .plaintext
            .as_ref()
            .map(|p| read(version, p))
            .unwrap_or_default()
    );
}

fn recipients_jid(recipients: &[(String, u32)], device_id: u32) -> String {
    recipients
        .iter()
        .find(|(_, id)| *id == device_id)
        .map(|(jid, _)| jid.clone())
        .unwrap_or_default()
}

/// What the payload carries: an SCE envelope for OMEMO 2, the bare body for 0.3.
fn content(version: Version, body: &str, from: &str, to: &str) -> Vec<u8> {
    match version {
        Version::Omemo2 => Envelope::for_body(body, from, to, None, &mut rand::rng())
            .serialize()
            .into_bytes(),
        Version::Omemo03 => body.as_bytes().to_vec(),
    }
}

fn read(version: Version, plaintext: &[u8]) -> String {
    match version {
        Version::Omemo2 => Envelope::parse_bytes(plaintext)
            .ok()
            .and_then(|envelope| envelope.body())
            .unwrap_or_default(),
        Version::Omemo03 => String::from_utf8_lossy(plaintext).into_owned(),
    }
}

/// One line per key element: the decoded key exchange and ratchet header.
pub fn describe(element: &EncryptedElement) {
    for key in &element.keys {
        let header = match (element.version, key.key_exchange) {
            (Version::Omemo2, true) => {
                Omemo2::open_key_exchange(&key.data).map(|(k, m)| (Some(k), m))
            }
            (Version::Omemo2, false) => Omemo2::open(&key.data).map(|m| (None, m)),
            (Version::Omemo03, true) => {
                Omemo03::open_key_exchange(&key.data).map(|(k, m)| (Some(k), m))
            }
            (Version::Omemo03, false) => Omemo03::open(&key.data).map(|m| (None, m)),
        };
        let recipient = key.jid.as_deref().unwrap_or("-");
        match header {
            Ok((exchange, message)) => {
                let exchange = exchange.map_or(String::new(), |k| {
                    format!(
                        " kex(pre-key {:?}, signed pre-key {}, base key {})",
                        k.pre_key_id, k.signed_pre_key_id, k.base_key
                    )
                });
                println!(
                    "    rid {} {recipient}: n={} pn={} ratchet {}{exchange}",
                    key.device_id,
                    message.index(),
                    message.previous_chain_length(),
                    message.ratchet_key(),
                );
            }
            Err(error) => println!(
                "    rid {} {recipient}: undecodable ({error})",
                key.device_id
            ),
        }
    }
}

fn label(version: Version) -> &'static str {
    match version {
        Version::Omemo2 => "OMEMO 2",
        Version::Omemo03 => "OMEMO 0.3",
    }
}

/// A fingerprint in groups of eight, as clients show it.
fn group(hex: &str) -> String {
    hex.as_bytes()
        .chunks(8)
        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
