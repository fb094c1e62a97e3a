//! Romeo (two devices) and Juliet talking through the machine: sessions from bundles, messages
//! to every device including the sender's own other one, key exchanges answered, archive
//! catch-up run twice, trust decisions, a device leaving.

use olmo::omemo::Version;
use olmo::store::block_on;
use olmo::xmpp::{SkipReason, Trust, XmppError};

use super::server::Server;
use super::{Device, bodies};

const ROMEO: &str = "romeo@montague.example";
const JULIET: &str = "juliet@capulet.example";

#[test]
fn a_message_reaches_every_device_and_the_key_exchange_is_answered() {
    let mut server = Server::new();
    let mut phone = Device::new(&mut server, ROMEO, 1);
    let mut laptop = Device::new(&mut server, ROMEO, 2);
    let mut juliet = Device::new(&mut server, JULIET, 3);
    phone.refresh_lists(&server, &[ROMEO]);

    let sent = phone.send(&mut server, JULIET, "Hi Juliet");
    assert!(sent.skipped.is_empty(), "{:?}", sent.skipped);
    assert_eq!(sent.stanzas.len(), 1);
    assert_eq!(sent.stanzas[0].version, Version::Omemo2);

    let read = juliet.catch_up(&mut server);
    assert_eq!(bodies(&read), ["Hi Juliet"]);
    let outcome = read[0].as_ref().unwrap();
    assert_eq!(outcome.replies.len(), 1, "the key exchange is answered");
    assert!(outcome.republish, "a pre-key was used");
    let message = outcome.message.as_ref().unwrap();
    assert_eq!(message.trust, Trust::Blind);
    assert!(message.time.is_some());

    // Romeo's laptop reads its copy; his phone reads Juliet's empty answer.
    assert_eq!(bodies(&laptop.catch_up(&mut server)), ["Hi Juliet"]);
    let answers = phone.catch_up(&mut server);
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");

    // Juliet replies to both of Romeo's devices.
    let reply = juliet.send(&mut server, ROMEO, "Hi Romeo");
    assert!(reply.skipped.is_empty(), "{:?}", reply.skipped);
    assert_eq!(bodies(&phone.catch_up(&mut server)), ["Hi Romeo"]);
    assert_eq!(bodies(&laptop.catch_up(&mut server)), ["Hi Romeo"]);
}

#[test]
fn an_archive_read_twice_decrypts_once_and_gives_the_same_result() {
    let mut server = Server::new();
    let mut romeo = Device::new(&mut server, ROMEO, 4);
    let mut juliet = Device::new(&mut server, JULIET, 5);
    for i in 0..5 {
        romeo.send(&mut server, JULIET, &format!("line {i}"));
    }
    let first = juliet.catch_up(&mut server);
    juliet.rewind();
    let again = juliet.catch_up(&mut server);
    assert_eq!(bodies(&first), bodies(&again));
    assert_eq!(bodies(&again).len(), 5);
    assert!(again.iter().all(Result::is_ok));
}

#[test]
fn a_distrusted_key_gets_nothing_and_the_sender_is_told() {
    let mut server = Server::new();
    let mut romeo = Device::new(&mut server, ROMEO, 6);
    let mut juliet = Device::new(&mut server, JULIET, 7);
    romeo.send(&mut server, JULIET, "before");
    let read = juliet.catch_up(&mut server);
    let fingerprint = read[0]
        .as_ref()
        .unwrap()
        .message
        .as_ref()
        .unwrap()
        .fingerprint
        .clone();

    block_on(
        juliet
            .machine
            .set_trust(ROMEO, &fingerprint, Trust::Distrusted, &mut juliet.rng),
    )
    .unwrap();
    let reply = juliet.send(&mut server, ROMEO, "not to you");
    assert!(reply.stanzas.is_empty());
    assert_eq!(reply.skipped.len(), 1);
    assert_eq!(reply.skipped[0].reason, SkipReason::Distrusted);
    let decisions = block_on(juliet.machine.trust_decisions(ROMEO)).unwrap();
    assert_eq!(decisions, vec![(fingerprint, Trust::Distrusted)]);
}

#[test]
fn a_device_that_left_the_list_is_no_longer_encrypted_to() {
    let mut server = Server::new();
    let mut romeo = Device::new(&mut server, ROMEO, 8);
    let juliet_phone = Device::new(&mut server, JULIET, 9);
    let mut juliet_tablet = Device::new(&mut server, JULIET, 10);
    let first = romeo.send(&mut server, JULIET, "to both");
    assert!(first.skipped.is_empty());
    assert_eq!(first.stanzas[0].payload.matches("<key ").count(), 2);

    // The tablet republishes a list without the phone.
    let phone_id = juliet_phone.device_id();
    let tablet_id = juliet_tablet.device_id();
    let list = format!("<devices xmlns='urn:xmpp:omemo:2'><device id='{tablet_id}'/></devices>");
    server.publish(
        JULIET,
        &[olmo::xmpp::PepItem {
            version: Version::Omemo2,
            node: "urn:xmpp:omemo:2:devices".into(),
            item_id: "current".into(),
            payload: list,
        }],
    );
    let second = romeo.send(&mut server, JULIET, "to the tablet");
    assert_eq!(second.stanzas[0].payload.matches("<key ").count(), 1);
    assert!(
        !second.stanzas[0]
            .payload
            .contains(&format!("rid='{phone_id}'"))
    );
    assert_eq!(
        bodies(&juliet_tablet.catch_up(&mut server)),
        ["to both", "to the tablet"]
    );
}

#[test]
fn a_changed_identity_under_a_known_device_is_reported_not_installed() {
    let mut server = Server::new();
    let mut romeo = Device::new(&mut server, ROMEO, 11);
    let mut juliet = Device::new(&mut server, JULIET, 12);
    romeo.send(&mut server, JULIET, "hello");
    juliet.catch_up(&mut server);
    let romeo_id = romeo.device_id();
    // Another account's device publishes a bundle under Romeo's id.
    let mut impostor = Device::new(&mut Server::new(), ROMEO, 13);
    let bundle = block_on(impostor.machine.publish(super::NOW, &mut impostor.rng))
        .unwrap()
        .into_iter()
        .find(|item| item.version == Version::Omemo2 && item.node.ends_with("bundles"))
        .unwrap()
        .payload;
    let refused = block_on(juliet.machine.receive_bundle(
        ROMEO,
        romeo_id,
        &bundle,
        &mut juliet.rng,
    ));
    assert!(
        matches!(refused, Err(XmppError::IdentityChanged { .. })),
        "{refused:?}"
    );
}
