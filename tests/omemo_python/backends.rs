//! olmo against the twomemo and oldmemo backends, both directions.

use olmo::crypto::Ed25519PublicKey;
use olmo::omemo::stanza;
use olmo::omemo::{IdentityKey, MessageError, OmemoDevice, Version};

use crate::common::peer::Peer;
use crate::support::*;

/// An olmo device and a device in the python peer, with no session yet.
fn pair(peer: &mut Peer, version: Version) -> (OmemoDevice, PyDevice) {
    let olmo = olmo_device("olmo@example.org", 4711);
    let py = PyDevice::new(peer, version, "py@example.net", 1234);
    (olmo, py)
}

#[test]
fn python_starts_and_olmo_answers() {
    let mut peer = Peer::omemo();
    for version in VERSIONS {
        let (mut olmo, py) = pair(&mut peer, version);

        let first = py.encrypt(&mut peer, &olmo, "hello from python");
        let second = py.encrypt(&mut peer, &olmo, "still waiting");
        assert!(is_key_exchange(&first) && is_key_exchange(&second));
        let opened = olmo_receive(&mut olmo, &py.jid, &first);
        assert!(opened.new_session && opened.reply_due);
        assert!(opened.pre_key_used.is_some());
        assert_eq!(olmo_body(&opened).as_deref(), Some("hello from python"));
        // Both versions name the same identity: the Ed25519 key itself, or its Curve25519 form.
        let ed25519 = Ed25519PublicKey::from_slice(&unhex(&py.identity_ed25519)).unwrap();
        match opened.sender_identity {
            IdentityKey::Ed25519(key) => assert_eq!(key, ed25519),
            IdentityKey::Curve25519(key) => assert_eq!(Ok(key), ed25519.to_curve25519()),
        }
        let repeat = olmo_receive(&mut olmo, &py.jid, &second);
        assert!(
            !repeat.new_session,
            "{version:?}: a repeated key exchange is the same session"
        );
        assert_eq!(olmo_body(&repeat).as_deref(), Some("still waiting"));

        // The empty message completes the key exchange on python's side.
        let empty = olmo_empty(&mut olmo, version, (&py.jid, py.device_id));
        assert!(!is_key_exchange(&empty));
        assert_eq!(py.decrypt(&mut peer, &olmo, &empty), None);
        let third = py.encrypt(&mut peer, &olmo, "no key exchange now");
        assert!(!is_key_exchange(&third), "{version:?}");
        assert_eq!(
            olmo_body(&olmo_receive(&mut olmo, &py.jid, &third)).as_deref(),
            Some("no key exchange now")
        );
        py.receive_from_olmo(&mut peer, &mut olmo, "hi python");
    }
}

#[test]
fn olmo_starts_and_python_answers() {
    let mut peer = Peer::omemo();
    for version in VERSIONS {
        let (mut olmo, py) = pair(&mut peer, version);
        olmo_build_session(&mut olmo, &py, &py.bundle_xml);
        let to = (py.jid.as_str(), py.device_id);

        let first = olmo_send(&mut olmo, version, to, "hello from olmo");
        let second = olmo_send(&mut olmo, version, to, "second, same exchange");
        assert!(is_key_exchange(&first) && is_key_exchange(&second));
        let response = py.try_decrypt(&mut peer, &olmo, &first).unwrap();
        assert_eq!(response["kex"], true);
        let used = response["pre_key_id"].as_u64().unwrap();
        assert_eq!(
            body_of(version, &unhex(response["plaintext"].as_str().unwrap())),
            "hello from olmo"
        );
        assert_eq!(
            py.decrypt(&mut peer, &olmo, &second).as_deref(),
            Some("second, same exchange")
        );
        // python removed the pre-key our exchange used from its bundle.
        let bundle = peer.call_str(
            serde_json::json!({"op": "bundle", "name": py.name}),
            "bundle_xml",
        );
        let bundle = stanza::BundleElement::parse(&bundle).unwrap();
        assert!(!bundle.pre_keys.iter().any(|(id, _)| u64::from(*id) == used));

        let empty = py.encrypt_empty(&mut peer, &olmo);
        let opened = olmo_receive(&mut olmo, &py.jid, &empty);
        assert!(opened.plaintext.is_none());
        let third = py.receive_from_olmo(&mut peer, &mut olmo, "confirmed");
        assert!(
            !is_key_exchange(&third),
            "{version:?}: key exchange after the reply"
        );
        for round in 0..3 {
            py.send_to_olmo(&mut peer, &mut olmo, &format!("python round {round}"));
            py.receive_from_olmo(&mut peer, &mut olmo, &format!("olmo round {round}"));
        }
    }
}

#[test]
fn out_of_order_both_ways() {
    let mut peer = Peer::omemo();
    for version in VERSIONS {
        let (mut olmo, py) = pair(&mut peer, version);
        let to = (py.jid.as_str(), py.device_id);
        py.send_to_olmo(&mut peer, &mut olmo, "start");
        let empty = olmo_empty(&mut olmo, version, to);
        py.decrypt(&mut peer, &olmo, &empty);

        let order = [4usize, 0, 6, 2, 1, 5, 3];
        let from_python: Vec<String> = (0..7)
            .map(|i| py.encrypt(&mut peer, &olmo, &format!("p{i}")))
            .collect();
        for &i in &order {
            let opened = olmo_receive(&mut olmo, &py.jid, &from_python[i]);
            assert_eq!(olmo_body(&opened), Some(format!("p{i}")));
        }
        let from_olmo: Vec<String> = (0..7)
            .map(|i| olmo_send(&mut olmo, version, to, &format!("o{i}")))
            .collect();
        for &i in &order {
            assert_eq!(
                py.decrypt(&mut peer, &olmo, &from_olmo[i]),
                Some(format!("o{i}"))
            );
        }
        // Across a ratchet step: old-chain messages arrive after new-chain ones.
        let old_chain = py.encrypt(&mut peer, &olmo, "old chain");
        py.receive_from_olmo(&mut peer, &mut olmo, "ratchet");
        let new_chain = py.encrypt(&mut peer, &olmo, "new chain");
        assert_eq!(
            olmo_body(&olmo_receive(&mut olmo, &py.jid, &new_chain)).as_deref(),
            Some("new chain")
        );
        assert_eq!(
            olmo_body(&olmo_receive(&mut olmo, &py.jid, &old_chain)).as_deref(),
            Some("old chain")
        );
    }
}

#[test]
fn heartbeat_after_53_unanswered_messages() {
    let mut peer = Peer::omemo();
    for version in VERSIONS {
        let (mut olmo, py) = pair(&mut peer, version);
        let to = (py.jid.as_str(), py.device_id);
        py.send_to_olmo(&mut peer, &mut olmo, "start");
        py.receive_from_olmo(&mut peer, &mut olmo, "ok");

        let mut due = Vec::new();
        for i in 0..55 {
            let xml = py.encrypt(&mut peer, &olmo, &format!("m{i}"));
            due.push(olmo_receive(&mut olmo, &py.jid, &xml).reply_due);
        }
        assert!(
            due[..53].iter().all(|d| !d),
            "{version:?}: heartbeat too early"
        );
        assert!(
            due[53] && due[54],
            "{version:?}: heartbeat due from index 53"
        );
        // Our heartbeat moves python's ratchet on; its next message starts a new chain.
        let heartbeat = olmo_empty(&mut olmo, version, to);
        let response = py.try_decrypt(&mut peer, &olmo, &heartbeat).unwrap();
        assert!(response["plaintext"].is_null());
        let after = py.encrypt(&mut peer, &olmo, "after");
        assert!(!olmo_receive(&mut olmo, &py.jid, &after).reply_due);
    }
}

#[test]
fn tampered_messages_are_refused_and_change_nothing() {
    let mut peer = Peer::omemo();
    for version in VERSIONS {
        let (mut olmo, py) = pair(&mut peer, version);
        py.send_to_olmo(&mut peer, &mut olmo, "start");
        let xml = py.encrypt(&mut peer, &olmo, "genuine");

        let mut element = stanza::EncryptedElement::parse(&xml).unwrap();
        let payload = element.payload.as_mut().unwrap();
        payload[0] ^= 1;
        let refused = olmo.decrypt_message(&py.jid, &element, &mut rand::rng());
        assert!(
            matches!(refused, Err(MessageError::Payload(_))),
            "{refused:?}"
        );

        let mut element = stanza::EncryptedElement::parse(&xml).unwrap();
        element.keys[0].data[5] ^= 0x10;
        assert!(
            olmo.decrypt_message(&py.jid, &element, &mut rand::rng())
                .is_err()
        );

        let mut element = stanza::EncryptedElement::parse(&xml).unwrap();
        element.keys[0].device_id += 1;
        assert!(matches!(
            olmo.decrypt_message(&py.jid, &element, &mut rand::rng()),
            Err(MessageError::NotForUs)
        ));
        // Nothing moved: the genuine message still opens, once.
        let opened = olmo_receive(&mut olmo, &py.jid, &xml);
        assert_eq!(olmo_body(&opened).as_deref(), Some("genuine"));
        let element = stanza::EncryptedElement::parse(&xml).unwrap();
        assert!(
            olmo.decrypt_message(&py.jid, &element, &mut rand::rng())
                .is_err()
        );

        // And python refuses olmo's tampered payload.
        let reply = olmo_send(&mut olmo, version, (&py.jid, py.device_id), "reply");
        let mut element = stanza::EncryptedElement::parse(&reply).unwrap();
        element.payload.as_mut().unwrap()[0] ^= 1;
        assert!(
            py.try_decrypt(&mut peer, &olmo, &element.serialize())
                .is_err()
        );
    }
}
