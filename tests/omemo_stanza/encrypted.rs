//! `<encrypted>` in both namespaces: examples, namespace forms, lookup inside `<message>`,
//! exact output, round trips.

use olmo::omemo::Version;
use olmo::omemo::stanza::{EncryptedElement, KeyElement, StanzaError};

use crate::{B4, B12, B32, b64, seq};

/// Romeo's device 27183 writes to Juliet's device 31415 (a key exchange) and to his own other
/// device 1337, pretty-printed the way the XEP prints its examples.
fn omemo2_message() -> String {
    format!(
        r#"<message to='juliet@capulet.lit' from='romeo@montague.lit/orchard' id='m1' type='chat'
         xmlns='jabber:client'>
  <encrypted xmlns='urn:xmpp:omemo:2'>
    <header sid='27183'>
      <keys jid='juliet@capulet.lit'>
        <key rid='31415' kex='true'>
          {B32}
        </key>
      </keys>
      <keys jid="romeo@montague.lit">
        <key rid="1337">{B4}</key>
        <key rid='4242' kex='1'>{B4}</key>
        <key rid='4343' kex='false'>{B4}</key>
        <key rid='4444' kex='0'>{B4}</key>
      </keys>
    </header>
    <payload>
      AAECAwQFBgcICQoLDA0ODxAREhMU
      FRYXGBkaGxwdHh8=
    </payload>
  </encrypted>
  <store xmlns='urn:xmpp:hints'/>
  <encryption xmlns='urn:xmpp:eme:0' namespace='urn:xmpp:omemo:2' name='OMEMO'/>
</message>"#
    )
}

fn omemo03_message() -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<message xmlns="jabber:client" to="juliet@capulet.lit" from="romeo@montague.lit/orchard">
  <encrypted xmlns="eu.siacs.conversations.axolotl">
    <header sid="27183">
      <key prekey="true" rid="31415">{B32}</key>
      <key rid="1337">{B4}</key>
      <key rid="2718" prekey="1">{B4}</key>
      <iv>{B12}</iv>
    </header>
    <payload>{B4}</payload>
  </encrypted>
  <body>I sent you an OMEMO encrypted message but your client doesn't seem to support that.</body>
</message>"#
    )
}

#[test]
fn omemo2_example_in_message() {
    let e = EncryptedElement::parse(&omemo2_message()).unwrap();
    assert_eq!(e.version, Version::Omemo2);
    assert_eq!(e.sender_device, 27183);
    assert_eq!(e.iv, None);
    assert_eq!(e.payload, Some(seq(32)));
    let summary: Vec<(&str, u32, bool)> = e
        .keys
        .iter()
        .map(|k| (k.jid.as_deref().unwrap(), k.device_id, k.key_exchange))
        .collect();
    assert_eq!(
        summary,
        [
            ("juliet@capulet.lit", 31415, true),
            ("romeo@montague.lit", 1337, false),
            ("romeo@montague.lit", 4242, true),
            ("romeo@montague.lit", 4343, false),
            ("romeo@montague.lit", 4444, false),
        ]
    );
    assert_eq!(
        e.keys[0].data,
        seq(32),
        "whitespace around base64 is ignored"
    );
    assert_eq!(e.keys[1].data, b64(B4));
}

#[test]
fn omemo03_example_in_message() {
    let e = EncryptedElement::parse(&omemo03_message()).unwrap();
    assert_eq!(e.version, Version::Omemo03);
    assert_eq!(e.sender_device, 27183);
    assert_eq!(e.iv, Some(seq(12)));
    assert_eq!(e.payload, Some(b64(B4)));
    let summary: Vec<(Option<&str>, u32, bool)> = e
        .keys
        .iter()
        .map(|k| (k.jid.as_deref(), k.device_id, k.key_exchange))
        .collect();
    assert_eq!(
        summary,
        [(None, 31415, true), (None, 1337, false), (None, 2718, true)]
    );
}

#[test]
fn element_alone_and_without_payload() {
    let xml = format!(
        "<encrypted xmlns='urn:xmpp:omemo:2'><header sid='1'><keys jid='a@b'>\
         <key rid='2'>{B4}</key></keys></header></encrypted>"
    );
    let e = EncryptedElement::parse(&xml).unwrap();
    assert_eq!(e.payload, None);
    assert_eq!(e.keys.len(), 1);
    // An empty message in 0.3: header and IV, no payload.
    let xml = format!(
        "<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='1'><key rid='2' \
         prekey='true'>{B4}</key><iv>{B12}</iv></header></encrypted>"
    );
    let e = EncryptedElement::parse(&xml).unwrap();
    assert_eq!((e.payload, e.iv), (None, Some(seq(12))));
}

#[test]
fn prefixed_and_inherited_namespaces() {
    let plain = format!(
        "<encrypted xmlns='urn:xmpp:omemo:2'><header sid='7'><keys jid='a@b'><key rid='8' \
         kex='true'>{B4}</key></keys></header><payload>{B4}</payload></encrypted>"
    );
    let expected = EncryptedElement::parse(&plain).unwrap();
    let forms = [
        // Every element prefixed.
        format!(
            "<o:encrypted xmlns:o='urn:xmpp:omemo:2'><o:header sid='7'><o:keys jid='a@b'><o:key \
             rid='8' kex='true'>{B4}</o:key></o:keys></o:header><o:payload>{B4}</o:payload>\
             </o:encrypted>"
        ),
        // The prefix declared on the enclosing <message>.
        format!(
            "<message xmlns='jabber:client' xmlns:omemo='urn:xmpp:omemo:2'><omemo:encrypted>\
             <omemo:header sid='7'><omemo:keys jid='a@b'><omemo:key rid='8' kex='true'>{B4}\
             </omemo:key></omemo:keys></omemo:header><omemo:payload>{B4}</omemo:payload>\
             </omemo:encrypted></message>"
        ),
        // Prefixed root, children in the default namespace it also declares.
        format!(
            "<x:encrypted xmlns:x='urn:xmpp:omemo:2' xmlns='urn:xmpp:omemo:2'><header sid='7'>\
             <keys jid='a@b'><key rid='8' kex='true'>{B4}</key></keys></header>\
             <payload>{B4}</payload></x:encrypted>"
        ),
        // A prefixed <message> in jabber:server, the default namespace inherited from it.
        format!(
            "<s:message xmlns:s='jabber:server' xmlns='urn:xmpp:omemo:2'><encrypted>\
             <header sid='7'><keys jid='a@b'><key rid='8' kex='true'>{B4}</key></keys>\
             </header><payload>{B4}</payload></encrypted></s:message>"
        ),
    ];
    for form in &forms {
        assert_eq!(EncryptedElement::parse(form).unwrap(), expected, "{form}");
    }
}

#[test]
fn a_prefixed_attribute_is_not_the_attribute() {
    // `o:sid` is in the OMEMO namespace; the XEP's `sid` is unprefixed (no namespace).
    let xml = "<o:encrypted xmlns:o='urn:xmpp:omemo:2'><o:header o:sid='7'/></o:encrypted>";
    assert_eq!(
        EncryptedElement::parse(xml),
        Err(StanzaError::MissingAttribute {
            element: "header",
            attribute: "sid"
        })
    );
}

#[test]
fn foreign_children_are_ignored_but_foreign_wrappers_are_not_entered() {
    let xml = format!(
        "<encrypted xmlns='urn:xmpp:omemo:2'><header sid='1'><x xmlns='urn:example'/>\
         <keys jid='a@b'><key rid='2'>{B4}</key><key xmlns='urn:example' rid='3'>{B4}</key>\
         </keys></header><unknown/></encrypted>"
    );
    assert_eq!(EncryptedElement::parse(&xml).unwrap().keys.len(), 1);

    // A carbon copy or forwarded message is the caller's to unwrap and vet.
    let carbon = format!(
        "<message xmlns='jabber:client'><sent xmlns='urn:xmpp:carbons:2'>\
         <forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client'>{}</message>\
         </forwarded></sent></message>",
        EncryptedElement::parse(&xml).unwrap().serialize()
    );
    assert_eq!(
        EncryptedElement::parse(&carbon),
        Err(StanzaError::MissingElement("encrypted"))
    );
}

#[test]
fn both_versions_in_one_message() {
    let xml = format!(
        "<message xmlns='jabber:client'>\
         <encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='3'><iv>{B12}</iv>\
         </header></encrypted>\
         <encrypted xmlns='urn:xmpp:omemo:2'><header sid='2'/></encrypted></message>"
    );
    assert_eq!(
        EncryptedElement::parse(&xml).unwrap().version,
        Version::Omemo03,
        "first wins"
    );
    let two = EncryptedElement::parse_version(&xml, Version::Omemo2).unwrap();
    assert_eq!((two.version, two.sender_device), (Version::Omemo2, 2));
    let old = EncryptedElement::parse_version(&xml, Version::Omemo03).unwrap();
    assert_eq!((old.version, old.sender_device), (Version::Omemo03, 3));
    let only_old = format!(
        "<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='3'><iv>{B12}</iv>\
         </header></encrypted>"
    );
    assert_eq!(
        EncryptedElement::parse_version(&only_old, Version::Omemo2),
        Err(StanzaError::WrongNamespace {
            element: "encrypted",
            found: Some("eu.siacs.conversations.axolotl".into())
        })
    );
}

fn key(jid: Option<&str>, device_id: u32, key_exchange: bool, data: &[u8]) -> KeyElement {
    KeyElement {
        jid: jid.map(str::to_owned),
        device_id,
        key_exchange,
        data: data.to_vec(),
    }
}

#[test]
fn omemo2_output_groups_keys_by_jid_in_first_seen_order() {
    let e = EncryptedElement {
        version: Version::Omemo2,
        sender_device: 27183,
        keys: vec![
            key(Some("juliet@capulet.lit"), 31415, true, &[1, 2, 3, 4]),
            key(Some("romeo@montague.lit"), 1337, false, &[1, 2, 3, 4]),
            key(Some("juliet@capulet.lit"), 2, false, &[]),
        ],
        iv: Some(vec![9; 12]),
        payload: Some(vec![1, 2, 3, 4]),
    };
    assert_eq!(
        e.serialize(),
        "<encrypted xmlns='urn:xmpp:omemo:2'><header sid='27183'>\
         <keys jid='juliet@capulet.lit'><key rid='31415' kex='true'>AQIDBA==</key><key rid='2'/>\
         </keys><keys jid='romeo@montague.lit'><key rid='1337'>AQIDBA==</key></keys></header>\
         <payload>AQIDBA==</payload></encrypted>",
        "the IV is not part of OMEMO 2"
    );
    let back = EncryptedElement::parse(&e.serialize()).unwrap();
    assert_eq!(back.keys[0], e.keys[0]);
    assert_eq!(back.keys[1], e.keys[2], "grouping reorders keys by JID");
    assert_eq!(back.keys[2], e.keys[1]);
}

#[test]
fn omemo03_exact_output_and_round_trip() {
    let e = EncryptedElement {
        version: Version::Omemo03,
        sender_device: 1,
        keys: vec![key(None, 2, true, &[1, 2, 3, 4]), key(None, 3, false, &[5])],
        iv: Some(seq(12)),
        payload: None,
    };
    assert_eq!(
        e.serialize(),
        format!(
            "<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='1'>\
             <key rid='2' prekey='true'>AQIDBA==</key><key rid='3'>BQ==</key><iv>{B12}</iv>\
             </header></encrypted>"
        )
    );
    assert_eq!(EncryptedElement::parse(&e.serialize()).unwrap(), e);
}

#[test]
fn jids_are_escaped_on_output() {
    let jid = "o'brien&\"co\"<x>@example.org";
    let e = EncryptedElement {
        version: Version::Omemo2,
        sender_device: 5,
        keys: vec![key(Some(jid), 6, false, &[0])],
        iv: None,
        payload: Some(vec![]),
    };
    let xml = e.serialize();
    assert!(
        xml.contains("jid='o&apos;brien&amp;&quot;co&quot;&lt;x&gt;@example.org'"),
        "{xml}"
    );
    assert_eq!(EncryptedElement::parse(&xml).unwrap(), e);
}

#[test]
fn keys_for_matches_jid_and_device() {
    let e = EncryptedElement {
        version: Version::Omemo2,
        sender_device: 1,
        keys: vec![
            key(Some("a@x"), 7, false, &[1]),
            key(Some("b@x"), 7, false, &[2]),
            key(Some("a@x"), 8, false, &[3]),
            key(Some("a@x"), 7, true, &[4]),
        ],
        iv: None,
        payload: None,
    };
    let found: Vec<&[u8]> = e
        .keys_for(Some("a@x"), 7)
        .map(|k| k.data.as_slice())
        .collect();
    assert_eq!(found, [&[1u8][..], &[4u8][..]]);
    assert_eq!(e.keys_for(Some("b@x"), 8).count(), 0);
    assert_eq!(
        e.keys_for(None, 7).count(),
        0,
        "OMEMO 2 keys all have a JID"
    );

    let old = EncryptedElement::parse(&omemo03_message()).unwrap();
    assert_eq!(old.keys_for(None, 1337).count(), 1);
    assert_eq!(old.keys_for(Some("juliet@capulet.lit"), 1337).count(), 0);
}

#[test]
fn omemo2_key_without_jid_does_not_round_trip() {
    // Documented: the type allows it, the wire format does not.
    let e = EncryptedElement {
        version: Version::Omemo2,
        sender_device: 1,
        keys: vec![key(None, 2, false, &[1])],
        iv: None,
        payload: None,
    };
    assert_eq!(
        EncryptedElement::parse(&e.serialize()),
        Err(StanzaError::MissingAttribute {
            element: "keys",
            attribute: "jid"
        })
    );
}

#[test]
fn examples_round_trip() {
    for xml in [omemo2_message(), omemo03_message()] {
        let e = EncryptedElement::parse(&xml).unwrap();
        let again = EncryptedElement::parse(&e.serialize()).unwrap();
        assert_eq!(again, e);
        assert_eq!(again.serialize(), e.serialize());
    }
}

#[test]
fn cdata_comments_and_character_references_in_text() {
    let xml = "<encrypted xmlns='urn:xmpp:omemo:2'><header sid='1'><keys jid='a@b'>\
               <key rid='2'><![CDATA[AQID]]><!-- split -->&#66;&#x41;==</key></keys></header>\
               </encrypted>";
    assert_eq!(EncryptedElement::parse(xml).unwrap().keys[0].data, b64(B4));
}
