//! olmo against a whole python-omemo `SessionManager` (both backends loaded), which finds olmo
//! through the device list and bundles olmo publishes, and sends its own empty messages.

use olmo::omemo::stanza::{self, DeviceListElement};
use olmo::omemo::{OmemoDevice, VerifiedBundle, Version};
use serde_json::{Value, json};

use crate::common::peer::Peer;
use crate::support::*;

const PY_JID: &str = "carol@python.example";

/// Publishes olmo's device list (OMEMO 2 with a signed label) and bundles for both versions.
fn publish(peer: &mut Peer, device: &OmemoDevice) {
    for version in VERSIONS {
        let entry = match version {
            Version::Omemo2 => device
                .identity()
                .device_list_entry(device.device_id(), Some("olmo test")),
            Version::Omemo03 => device
                .identity()
                .device_list_entry(device.device_id(), None),
        };
        let list = DeviceListElement {
            version,
            devices: vec![entry],
        };
        peer.call(
            json!({"op": "sm_publish_devices", "ns": ns(version), "jid": device.jid(),
                         "device_list_xml": list.serialize()}),
        );
        peer.call(
            json!({"op": "sm_publish", "ns": ns(version), "jid": device.jid(),
                         "device_id": device.device_id(),
                         "bundle_xml": olmo_bundle_xml(device, version)}),
        );
    }
}

fn outbox(peer: &mut Peer, name: &str) -> Vec<Value> {
    peer.call(json!({"op": "sm_outbox", "name": name}))["messages"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn session_manager_talks_to_olmo_in_both_versions() {
    let mut peer = Peer::omemo();
    let mut olmo = olmo_device("dave@olmo.example", 31337);
    publish(&mut peer, &olmo);
    let carol = peer.call(json!({"op": "sm_new", "name": "carol", "jid": PY_JID, "label": "py"}));
    let carol_device = u32::try_from(carol["device_id"].as_u64().unwrap()).unwrap();

    for version in VERSIONS {
        let body = format!("hello over {}", ns(version));
        let sent = peer.call(json!({
            "op": "sm_encrypt", "name": "carol", "to_jid": olmo.jid(),
            "plaintext": hex(body.as_bytes()),
            "plaintexts": {ns(version): hex(&plaintext(version, &body, PY_JID, olmo.jid()))},
            "priority": [ns(version)],
        }));
        let xml = sent["messages"][ns(version)]
            .as_str()
            .unwrap_or_else(|| panic!("no {} message from the manager: {sent}", ns(version)));
        let opened = olmo_receive(&mut olmo, PY_JID, xml);
        assert_eq!(opened.sender_device, carol_device);
        assert_eq!(olmo_body(&opened), Some(body));
        assert!(opened.new_session && opened.reply_due);

        // Our empty message completes the exchange; the manager stops sending it.
        let empty = olmo_empty(&mut olmo, version, (PY_JID, carol_device));
        let response = peer.call(
            json!({"op": "sm_decrypt", "name": "carol", "from_jid": olmo.jid(),
                                       "ns": ns(version), "encrypted_xml": empty}),
        );
        assert!(response["plaintext"].is_null());
        let again = peer.call(json!({
            "op": "sm_encrypt", "name": "carol", "to_jid": olmo.jid(), "plaintext": "",
            "plaintexts": {ns(version): hex(&plaintext(version, "again", PY_JID, olmo.jid()))},
            "priority": [ns(version)],
        }));
        let xml = again["messages"][ns(version)].as_str().unwrap();
        assert!(!is_key_exchange(xml), "{version:?}");
        assert_eq!(
            olmo_body(&olmo_receive(&mut olmo, PY_JID, xml)).as_deref(),
            Some("again")
        );
    }
}

#[test]
fn olmo_finds_the_session_manager_through_what_it_published() {
    let mut peer = Peer::omemo();
    let mut olmo = olmo_device("erin@olmo.example", 2718);
    publish(&mut peer, &olmo);
    peer.call(json!({"op": "sm_new", "name": "frank", "jid": PY_JID}));

    for version in VERSIONS {
        let published = peer.call(json!({"op": "sm_published", "ns": ns(version), "jid": PY_JID}));
        let list =
            DeviceListElement::parse(published["device_list_xml"].as_str().unwrap()).unwrap();
        assert_eq!(list.devices.len(), 1);
        let device = &list.devices[0];
        let bundle_xml = published["bundles"][device.id.to_string()]
            .as_str()
            .unwrap();
        let bundle =
            VerifiedBundle::from_element(&stanza::BundleElement::parse(bundle_xml).unwrap())
                .unwrap();
        if version == Version::Omemo2 {
            // The manager signed no label here; a label, when present, must verify.
            if let (Some(label), Some(signature)) = (&device.label, &device.label_signature) {
                bundle
                    .identity_key()
                    .verify_label(label, signature)
                    .unwrap();
            }
        }
        olmo.build_session(PY_JID, device.id, &bundle, &mut rand::rng())
            .unwrap();
        let xml = olmo_send(&mut olmo, version, (PY_JID, device.id), "from olmo");
        let response = peer.call(json!({"op": "sm_decrypt", "name": "frank",
                                       "from_jid": olmo.jid(), "ns": ns(version),
                                       "encrypted_xml": xml}));
        let text = body_of(version, &unhex(response["plaintext"].as_str().unwrap()));
        assert_eq!(text, "from olmo");
        // The manager answers the key exchange on its own with an empty message.
        let sent = outbox(&mut peer, "frank");
        let answer = sent
            .iter()
            .find(|m| m["ns"] == ns(version))
            .unwrap_or_else(|| panic!("no empty message from the manager: {sent:?}"));
        let opened = olmo_receive(&mut olmo, PY_JID, answer["encrypted_xml"].as_str().unwrap());
        assert!(opened.plaintext.is_none());
        let next = olmo_send(&mut olmo, version, (PY_JID, device.id), "confirmed");
        assert!(!is_key_exchange(&next), "{version:?}");
    }
}

#[test]
fn olmo_verifies_the_managers_signed_label() {
    let mut peer = Peer::omemo();
    peer.call(json!({"op": "sm_new", "name": "grace", "jid": PY_JID, "label": "Gajim-like"}));
    let published = peer.call(json!({"op": "sm_published", "ns": "omemo2", "jid": PY_JID}));
    let list = DeviceListElement::parse(published["device_list_xml"].as_str().unwrap()).unwrap();
    let device = &list.devices[0];
    let bundle_xml = published["bundles"][device.id.to_string()]
        .as_str()
        .unwrap();
    let bundle =
        VerifiedBundle::from_element(&stanza::BundleElement::parse(bundle_xml).unwrap()).unwrap();
    let label = device.label.as_deref().unwrap();
    let signature = device.label_signature.as_deref().unwrap();
    assert_eq!(label, "Gajim-like");
    bundle
        .identity_key()
        .verify_label(label, signature)
        .unwrap();
    assert!(
        bundle
            .identity_key()
            .verify_label("forged", signature)
            .is_err()
    );
}
