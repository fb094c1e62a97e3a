//! Device lists: `<devices>` (OMEMO 2, with labels) and `<list>` (OMEMO 0.3).

use olmo::omemo::Version;
use olmo::omemo::stanza::{DeviceListElement, ListedDevice, StanzaError};

use crate::{B64, seq};

/// A PEP notification of Romeo's OMEMO 2 device list.
fn omemo2_notification() -> String {
    format!(
        r#"<message xmlns='jabber:client' from='romeo@montague.lit' to='juliet@capulet.lit'>
  <event xmlns='http://jabber.org/protocol/pubsub#event'>
    <items node='urn:xmpp:omemo:2:devices'>
      <item id='current'>
        <devices xmlns='urn:xmpp:omemo:2'>
          <device id='12345' label='Gajim on Ubuntu &amp; friends' labelsig='{B64}'/>
          <device id="4223" label="Conversations"/>
          <device id='31415'/>
        </devices>
      </item>
    </items>
  </event>
</message>"#
    )
}

const OMEMO03_ITEMS: &str = "<items node='eu.siacs.conversations.axolotl.devicelist'>
  <item id='current'>
    <list xmlns='eu.siacs.conversations.axolotl'>
      <device id='12345'/>
      <device id='4223' label='ignored in 0.3'/>
    </list>
  </item>
</items>";

#[test]
fn omemo2_example_in_pep_notification() {
    let list = DeviceListElement::parse(&omemo2_notification()).unwrap();
    assert_eq!(list.version, Version::Omemo2);
    assert_eq!(
        list.devices,
        vec![
            ListedDevice {
                id: 12345,
                label: Some("Gajim on Ubuntu & friends".into()),
                label_signature: Some(seq(64)),
            },
            ListedDevice {
                id: 4223,
                label: Some("Conversations".into()),
                label_signature: None
            },
            ListedDevice {
                id: 31415,
                label: None,
                label_signature: None
            },
        ]
    );
    assert!(list.contains(4223));
    assert!(!list.contains(4224));
}

#[test]
fn omemo03_example_in_items() {
    let list = DeviceListElement::parse(OMEMO03_ITEMS).unwrap();
    assert_eq!(list.version, Version::Omemo03);
    let ids: Vec<u32> = list.devices.iter().map(|d| d.id).collect();
    assert_eq!(ids, [12345, 4223]);
    assert!(
        list.devices
            .iter()
            .all(|d| d.label.is_none() && d.label_signature.is_none())
    );
}

#[test]
fn element_name_and_namespace_go_together() {
    // <list> is the OMEMO 0.3 name; in the OMEMO 2 namespace it is nothing.
    assert_eq!(
        DeviceListElement::parse("<list xmlns='urn:xmpp:omemo:2'><device id='1'/></list>"),
        Err(StanzaError::WrongNamespace {
            element: "list",
            found: Some("urn:xmpp:omemo:2".into())
        })
    );
    assert_eq!(
        DeviceListElement::parse("<devices xmlns='eu.siacs.conversations.axolotl'/>"),
        Err(StanzaError::WrongNamespace {
            element: "devices",
            found: Some("eu.siacs.conversations.axolotl".into())
        })
    );
    assert_eq!(
        DeviceListElement::parse("<item/>"),
        Err(StanzaError::MissingElement("devices"))
    );
}

#[test]
fn exact_output_and_round_trip() {
    let list = DeviceListElement {
        version: Version::Omemo2,
        devices: vec![
            ListedDevice {
                id: 1,
                label: Some("Dino's \"laptop\"\n<2>".into()),
                label_signature: Some(vec![1, 2, 3, 4]),
            },
            ListedDevice {
                id: 2147483647,
                label: None,
                label_signature: None,
            },
        ],
    };
    assert_eq!(
        list.serialize(),
        "<devices xmlns='urn:xmpp:omemo:2'><device id='1' label='Dino&apos;s &quot;laptop&quot;\
         &#xA;&lt;2&gt;' labelsig='AQIDBA=='/><device id='2147483647'/></devices>"
    );
    assert_eq!(DeviceListElement::parse(&list.serialize()).unwrap(), list);

    let old = DeviceListElement {
        version: Version::Omemo03,
        devices: vec![ListedDevice {
            id: 7,
            label: None,
            label_signature: None,
        }],
    };
    assert_eq!(
        old.serialize(),
        "<list xmlns='eu.siacs.conversations.axolotl'><device id='7'/></list>"
    );
    assert_eq!(DeviceListElement::parse(&old.serialize()).unwrap(), old);

    let empty = DeviceListElement {
        version: Version::Omemo2,
        devices: vec![],
    };
    assert_eq!(empty.serialize(), "<devices xmlns='urn:xmpp:omemo:2'/>");
    assert_eq!(DeviceListElement::parse(&empty.serialize()).unwrap(), empty);
}

#[test]
fn omemo03_output_drops_labels() {
    let old = DeviceListElement {
        version: Version::Omemo03,
        devices: vec![ListedDevice {
            id: 7,
            label: Some("x".into()),
            label_signature: Some(vec![1]),
        }],
    };
    assert_eq!(
        old.serialize(),
        "<list xmlns='eu.siacs.conversations.axolotl'><device id='7'/></list>"
    );
}

#[test]
fn examples_round_trip() {
    for xml in [omemo2_notification(), OMEMO03_ITEMS.to_owned()] {
        let list = DeviceListElement::parse(&xml).unwrap();
        assert_eq!(DeviceListElement::parse(&list.serialize()).unwrap(), list);
    }
}
