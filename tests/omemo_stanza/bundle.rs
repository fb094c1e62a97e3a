//! `<bundle>` in both namespaces: examples wrapped in pubsub replies, exact output, round trips.

use olmo::omemo::Version;
use olmo::omemo::stanza::{BundleElement, StanzaError};

use crate::{B4, B32, B33, B64, b64, seq};

/// Juliet's client fetched Romeo's bundle for device 31415 and got this IQ result.
fn omemo2_iq_result() -> String {
    format!(
        r#"<iq xmlns='jabber:client' type='result' from='romeo@montague.lit'
    to='juliet@capulet.lit/balcony' id='fetch1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <items node='urn:xmpp:omemo:2:bundles'>
      <item id='31415'>
        <bundle xmlns='urn:xmpp:omemo:2'>
          <spk id='0'>{B32}</spk>
          <spks>
            {B64}
          </spks>
          <ik>{B32}</ik>
          <prekeys>
            <pk id='0'>{B32}</pk>
            <pk id="1">{B4}</pk>
            <pk id='4294967295'>{B4}</pk>
          </prekeys>
        </bundle>
      </item>
    </items>
  </pubsub>
</iq>"#
    )
}

fn omemo03_item() -> String {
    format!(
        r#"<item id="current">
  <bundle xmlns="eu.siacs.conversations.axolotl">
    <signedPreKeyPublic signedPreKeyId="1">{B33}</signedPreKeyPublic>
    <signedPreKeySignature>{B64}</signedPreKeySignature>
    <identityKey>{B33}</identityKey>
    <prekeys>
      <preKeyPublic preKeyId="1">{B33}</preKeyPublic>
      <preKeyPublic preKeyId="2">{B33}</preKeyPublic>
    </prekeys>
  </bundle>
</item>"#
    )
}

#[test]
fn omemo2_example_in_iq_result() {
    let b = BundleElement::parse(&omemo2_iq_result()).unwrap();
    assert_eq!(b.version, Version::Omemo2);
    assert_eq!(b.signed_pre_key_id, 0);
    assert_eq!(b.signed_pre_key, seq(32));
    assert_eq!(b.signed_pre_key_signature, seq(64));
    assert_eq!(b.identity_key, seq(32));
    assert_eq!(
        b.pre_keys,
        vec![(0, seq(32)), (1, b64(B4)), (u32::MAX, b64(B4))]
    );
}

#[test]
fn omemo03_example_in_item() {
    let b = BundleElement::parse(&omemo03_item()).unwrap();
    assert_eq!(b.version, Version::Omemo03);
    assert_eq!(b.signed_pre_key_id, 1);
    assert_eq!(b.signed_pre_key, b64(B33));
    assert_eq!(b.signed_pre_key_signature, seq(64));
    assert_eq!(b.identity_key, b64(B33));
    assert_eq!(b.pre_keys, vec![(1, b64(B33)), (2, b64(B33))]);
}

#[test]
fn wrappers_items_publish_and_event() {
    let bare = BundleElement::parse(&omemo03_item()).unwrap().serialize();
    let forms = [
        format!(
            "<items node='eu.siacs.conversations.axolotl.bundles:1'><item>{bare}</item></items>"
        ),
        format!(
            "<iq type='set' xmlns='jabber:client'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
             <publish node='eu.siacs.conversations.axolotl.bundles:1'><item id='current'>{bare}\
             </item></publish></pubsub></iq>"
        ),
        format!(
            "<message xmlns='jabber:client'><event xmlns='http://jabber.org/protocol/pubsub#event'>\
             <items node='eu.siacs.conversations.axolotl.bundles:1'><item id='current'>{bare}\
             </item></items></event></message>"
        ),
    ];
    for form in &forms {
        assert_eq!(
            BundleElement::parse(form).unwrap(),
            BundleElement::parse(&bare).unwrap(),
            "{form}"
        );
    }
    let elsewhere = format!("<item><other>{bare}</other></item>");
    assert_eq!(
        BundleElement::parse(&elsewhere),
        Err(StanzaError::MissingElement("bundle"))
    );
}

#[test]
fn exact_output_both_versions() {
    let b = BundleElement {
        version: Version::Omemo2,
        signed_pre_key_id: 3,
        signed_pre_key: vec![1, 2, 3, 4],
        signed_pre_key_signature: vec![1, 2, 3, 4],
        identity_key: vec![1, 2, 3, 4],
        pre_keys: vec![(9, vec![1, 2, 3, 4]), (0, vec![])],
    };
    assert_eq!(
        b.serialize(),
        "<bundle xmlns='urn:xmpp:omemo:2'><spk id='3'>AQIDBA==</spk><spks>AQIDBA==</spks>\
         <ik>AQIDBA==</ik><prekeys><pk id='9'>AQIDBA==</pk><pk id='0'/></prekeys></bundle>"
    );
    assert_eq!(BundleElement::parse(&b.serialize()).unwrap(), b);

    let old = BundleElement {
        version: Version::Omemo03,
        pre_keys: vec![],
        ..b
    };
    assert_eq!(
        old.serialize(),
        "<bundle xmlns='eu.siacs.conversations.axolotl'><signedPreKeyPublic signedPreKeyId='3'>\
         AQIDBA==</signedPreKeyPublic><signedPreKeySignature>AQIDBA==</signedPreKeySignature>\
         <identityKey>AQIDBA==</identityKey><prekeys/></bundle>"
    );
    assert_eq!(BundleElement::parse(&old.serialize()).unwrap(), old);
}

#[test]
fn examples_round_trip() {
    for xml in [omemo2_iq_result(), omemo03_item()] {
        let b = BundleElement::parse(&xml).unwrap();
        assert_eq!(BundleElement::parse(&b.serialize()).unwrap(), b);
    }
}

#[test]
fn names_of_the_other_version_do_not_count() {
    // OMEMO 2 element names inside a 0.3 bundle.
    let xml = format!(
        "<bundle xmlns='eu.siacs.conversations.axolotl'><spk id='0'>{B32}</spk><spks>{B64}</spks>\
         <ik>{B32}</ik><prekeys/></bundle>"
    );
    assert_eq!(
        BundleElement::parse(&xml),
        Err(StanzaError::MissingElement("signedPreKeyPublic"))
    );
}
