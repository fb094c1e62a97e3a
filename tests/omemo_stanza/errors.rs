//! Every error variant, and every limit.

use olmo::omemo::stanza::{
    BundleElement, DeviceListElement, EncryptedElement, Envelope, Limit, MAX_DEVICE_ID, StanzaError,
};

use crate::{B4, B12, B32};

const O2: &str = "urn:xmpp:omemo:2";
const O3: &str = "eu.siacs.conversations.axolotl";

/// An OMEMO 2 `<encrypted>` with `header` as the inside of `<header sid='1'>`.
fn enc2(header: &str) -> String {
    format!("<encrypted xmlns='{O2}'><header sid='1'>{header}</header></encrypted>")
}

fn bundle2(spk_attrs: &str, prekeys: &str) -> String {
    format!(
        "<bundle xmlns='{O2}'><spk {spk_attrs}>{B32}</spk><spks>{B32}</spks><ik>{B32}</ik>\
         <prekeys>{prekeys}</prekeys></bundle>"
    )
}

fn malformed(result: Result<impl std::fmt::Debug, StanzaError>) {
    assert!(
        matches!(result, Err(StanzaError::Malformed(_))),
        "{result:?}"
    );
}

#[test]
fn malformed_xml() {
    for xml in [
        "",
        "not xml",
        "<encrypted xmlns='urn:xmpp:omemo:2'>",
        "<encrypted xmlns='urn:xmpp:omemo:2'></payload>",
        "<a/><b/>",
        "<a b='1' b='2'/>",
        "<a xmlns:p='x' xmlns:q='x' p:b='1' q:b='2'/>",
        "<p:a/>",
        "<a>&undefined;</a>",
        "<a>&#0;</a>",
        "<a b=1/>",
        "<a>\u{1}</a>",
    ] {
        malformed(EncryptedElement::parse(xml));
        malformed(BundleElement::parse(xml));
        malformed(DeviceListElement::parse(xml));
        malformed(Envelope::parse(xml));
    }
}

#[test]
fn dtds_and_entity_expansion_are_refused() {
    let laughs = "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>\
                  <!ENTITY lol2 '&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;'>\
                  <!ENTITY lol3 '&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;'>]>\
                  <envelope xmlns='urn:xmpp:sce:1'><content>&lol3;</content></envelope>";
    malformed(Envelope::parse(laughs));
    let external = "<!DOCTYPE e [<!ENTITY x SYSTEM 'file:///etc/passwd'>]>\
                    <envelope xmlns='urn:xmpp:sce:1'><content>&x;</content></envelope>";
    malformed(Envelope::parse(external));
    malformed(DeviceListElement::parse(
        "<!DOCTYPE list><list xmlns='eu.siacs.conversations.axolotl'/>",
    ));
}

#[test]
fn wrong_or_missing_namespace() {
    assert_eq!(
        EncryptedElement::parse(
            "<encrypted xmlns='urn:xmpp:omemo:1'><header sid='1'/></encrypted>"
        ),
        Err(StanzaError::WrongNamespace {
            element: "encrypted",
            found: Some("urn:xmpp:omemo:1".into())
        })
    );
    assert_eq!(
        EncryptedElement::parse("<encrypted><header sid='1'/></encrypted>"),
        Err(StanzaError::WrongNamespace {
            element: "encrypted",
            found: None
        })
    );
    assert_eq!(
        BundleElement::parse("<item><bundle xmlns='urn:example'/></item>"),
        Err(StanzaError::WrongNamespace {
            element: "bundle",
            found: Some("urn:example".into())
        })
    );
    assert_eq!(
        Envelope::parse("<envelope><content/></envelope>"),
        Err(StanzaError::WrongNamespace {
            element: "envelope",
            found: None
        })
    );
    // A child in another namespace is simply not that child.
    assert_eq!(
        EncryptedElement::parse(&format!(
            "<encrypted xmlns='{O2}'><header xmlns='urn:x' sid='1'/></encrypted>"
        )),
        Err(StanzaError::MissingElement("header"))
    );
}

#[test]
fn missing_elements() {
    let cases: Vec<(Result<(), StanzaError>, &str)> = vec![
        (EncryptedElement::parse("<message/>").map(drop), "encrypted"),
        (EncryptedElement::parse(&format!("<encrypted xmlns='{O2}'/>")).map(drop), "header"),
        (
            EncryptedElement::parse(&format!("<encrypted xmlns='{O3}'><header sid='1'/></encrypted>"))
                .map(drop),
            "iv",
        ),
        (BundleElement::parse("<items><item/></items>").map(drop), "bundle"),
        (BundleElement::parse(&format!("<bundle xmlns='{O2}'/>")).map(drop), "spk"),
        (
            BundleElement::parse(&format!(
                "<bundle xmlns='{O2}'><spk id='1'>{B32}</spk><ik>{B32}</ik><prekeys/></bundle>"
            ))
            .map(drop),
            "spks",
        ),
        (
            BundleElement::parse(&format!(
                "<bundle xmlns='{O2}'><spk id='1'>{B32}</spk><spks>{B32}</spks><prekeys/></bundle>"
            ))
            .map(drop),
            "ik",
        ),
        (
            BundleElement::parse(&format!(
                "<bundle xmlns='{O2}'><spk id='1'>{B32}</spk><spks>{B32}</spks><ik>{B32}</ik></bundle>"
            ))
            .map(drop),
            "prekeys",
        ),
        (DeviceListElement::parse("<iq/>").map(drop), "devices"),
        (Envelope::parse("<envelope xmlns='urn:xmpp:sce:1'/>").map(drop), "content"),
    ];
    for (result, element) in cases {
        assert_eq!(result, Err(StanzaError::MissingElement(element)));
    }
}

#[test]
fn missing_attributes() {
    let missing = |element, attribute| Err(StanzaError::MissingAttribute { element, attribute });
    assert_eq!(
        EncryptedElement::parse(&format!("<encrypted xmlns='{O2}'><header/></encrypted>"))
            .map(drop),
        missing("header", "sid")
    );
    assert_eq!(
        EncryptedElement::parse(&enc2(&format!("<keys><key rid='1'>{B4}</key></keys>"))).map(drop),
        missing("keys", "jid")
    );
    assert_eq!(
        EncryptedElement::parse(&enc2(&format!("<keys jid='a@b'><key>{B4}</key></keys>")))
            .map(drop),
        missing("key", "rid")
    );
    assert_eq!(
        BundleElement::parse(&bundle2("", "")).map(drop),
        missing("spk", "id")
    );
    assert_eq!(
        BundleElement::parse(&bundle2("id='1'", &format!("<pk>{B32}</pk>"))).map(drop),
        missing("pk", "id")
    );
    assert_eq!(
        BundleElement::parse(&format!(
            "<bundle xmlns='{O3}'><signedPreKeyPublic>{B32}</signedPreKeyPublic>\
             <signedPreKeySignature/><identityKey/><prekeys/></bundle>"
        ))
        .map(drop),
        missing("signedPreKeyPublic", "signedPreKeyId")
    );
    assert_eq!(
        DeviceListElement::parse(&format!("<devices xmlns='{O2}'><device/></devices>")).map(drop),
        missing("device", "id")
    );
    for (affix, attribute) in [("time", "stamp"), ("to", "jid"), ("from", "jid")] {
        let xml = format!("<envelope xmlns='urn:xmpp:sce:1'><content/><{affix}/></envelope>");
        assert_eq!(Envelope::parse(&xml).map(drop), missing(affix, attribute));
    }
}

#[test]
fn bad_integers_and_device_ids() {
    for sid in [
        "",
        "abc",
        "-1",
        "+5",
        "1.0",
        "0x10",
        "4294967296",
        "99999999999999999999",
        "0",
        "2147483648",
        "4294967295",
        "1 2",
    ] {
        let xml = format!("<encrypted xmlns='{O2}'><header sid='{sid}'/></encrypted>");
        assert_eq!(
            EncryptedElement::parse(&xml),
            Err(StanzaError::BadInteger {
                element: "header",
                attribute: "sid"
            }),
            "sid={sid:?}"
        );
    }
    for sid in ["1", "0001", " 42 ", "2147483647"] {
        let xml = format!("<encrypted xmlns='{O2}'><header sid='{sid}'/></encrypted>");
        assert!(EncryptedElement::parse(&xml).is_ok(), "sid={sid:?}");
    }
    assert_eq!(MAX_DEVICE_ID, 2_147_483_647);
    assert_eq!(
        EncryptedElement::parse(&enc2(&format!(
            "<keys jid='a@b'><key rid='0'>{B4}</key></keys>"
        ))),
        Err(StanzaError::BadInteger {
            element: "key",
            attribute: "rid"
        })
    );
    assert_eq!(
        DeviceListElement::parse(&format!("<list xmlns='{O3}'><device id='x'/></list>")),
        Err(StanzaError::BadInteger {
            element: "device",
            attribute: "id"
        })
    );
    // Key ids are plain u32: 0 and 2^32-1 are fine, 2^32 is not.
    assert!(
        BundleElement::parse(&bundle2(
            "id='0'",
            &format!("<pk id='4294967295'>{B4}</pk>")
        ))
        .is_ok()
    );
    assert_eq!(
        BundleElement::parse(&bundle2("id='4294967296'", "")),
        Err(StanzaError::BadInteger {
            element: "spk",
            attribute: "id"
        })
    );
    assert_eq!(
        BundleElement::parse(&bundle2("id='1'", &format!("<pk id='-1'>{B4}</pk>"))),
        Err(StanzaError::BadInteger {
            element: "pk",
            attribute: "id"
        })
    );
}

#[test]
fn bad_booleans() {
    for flag in ["yes", "TRUE", "True", "", "2", "on"] {
        assert_eq!(
            EncryptedElement::parse(&enc2(&format!(
                "<keys jid='a@b'><key rid='1' kex='{flag}'>{B4}</key></keys>"
            ))),
            Err(StanzaError::BadBoolean {
                element: "key",
                attribute: "kex"
            }),
            "kex={flag:?}"
        );
    }
    let xml = format!(
        "<encrypted xmlns='{O3}'><header sid='1'><key rid='1' prekey='no'>{B4}</key><iv>{B12}</iv>\
         </header></encrypted>"
    );
    assert_eq!(
        EncryptedElement::parse(&xml),
        Err(StanzaError::BadBoolean {
            element: "key",
            attribute: "prekey"
        })
    );
}

#[test]
fn bad_base64() {
    for text in [
        "!!!!",
        "AQI",
        "AQIDBA=",
        "AQIDBA===",
        "AQ==AQ==",
        "AQIDBA==\u{A0}",
        "AR==",
    ] {
        assert_eq!(
            EncryptedElement::parse(&enc2(&format!(
                "<keys jid='a@b'><key rid='1'>{text}</key></keys>"
            ))),
            Err(StanzaError::BadBase64 { element: "key" }),
            "{text:?}"
        );
    }
    assert_eq!(
        EncryptedElement::parse(&format!(
            "<encrypted xmlns='{O2}'><header sid='1'/><payload>AQ-_</payload></encrypted>"
        )),
        Err(StanzaError::BadBase64 { element: "payload" }),
        "URL-safe alphabet is not standard base64"
    );
    assert_eq!(
        EncryptedElement::parse(&format!(
            "<encrypted xmlns='{O3}'><header sid='1'><iv>*</iv></header></encrypted>"
        )),
        Err(StanzaError::BadBase64 { element: "iv" })
    );
    assert_eq!(
        BundleElement::parse(&format!(
            "<bundle xmlns='{O2}'><spk id='1'>{B32}</spk><spks>{B32}</spks><ik>%</ik><prekeys/></bundle>"
        )),
        Err(StanzaError::BadBase64 { element: "ik" })
    );
    assert_eq!(
        DeviceListElement::parse(&format!(
            "<devices xmlns='{O2}'><device id='1' labelsig='@'/></devices>"
        )),
        Err(StanzaError::BadBase64 { element: "device" })
    );
    // Whitespace of any ASCII kind inside is fine.
    let wrapped = "AQ\n ID\tBA\r\n==";
    let e = EncryptedElement::parse(&enc2(&format!(
        "<keys jid='a@b'><key rid='1'>{wrapped}</key></keys>"
    )))
    .unwrap();
    assert_eq!(e.keys[0].data, vec![1, 2, 3, 4]);
}

#[test]
fn unexpected_children_in_text_elements() {
    assert_eq!(
        EncryptedElement::parse(&enc2(&format!(
            "<keys jid='a@b'><key rid='1'>{B4}<b/></key></keys>"
        ))),
        Err(StanzaError::UnexpectedChild { element: "key" })
    );
    assert_eq!(
        Envelope::parse(
            "<envelope xmlns='urn:xmpp:sce:1'><content/><rpad>a<b/>c</rpad></envelope>"
        ),
        Err(StanzaError::UnexpectedChild { element: "rpad" })
    );
}

#[test]
fn duplicate_elements() {
    let dup = |name| -> Result<(), StanzaError> { Err(StanzaError::DuplicateElement(name)) };
    assert_eq!(
        EncryptedElement::parse(&format!(
            "<encrypted xmlns='{O2}'><header sid='1'/><header sid='2'/></encrypted>"
        ))
        .map(drop),
        dup("header")
    );
    assert_eq!(
        EncryptedElement::parse(&format!(
            "<encrypted xmlns='{O2}'><header sid='1'/><payload>{B4}</payload><payload/></encrypted>"
        ))
        .map(drop),
        dup("payload")
    );
    assert_eq!(
        EncryptedElement::parse(&format!(
            "<encrypted xmlns='{O3}'><header sid='1'><iv>{B12}</iv><iv>{B12}</iv></header></encrypted>"
        )).map(drop),
        dup("iv")
    );
    assert_eq!(
        BundleElement::parse(&format!(
            "<bundle xmlns='{O2}'><spk id='1'>{B32}</spk><spk id='2'>{B32}</spk><spks/><ik/><prekeys/></bundle>"
        )).map(drop),
        dup("spk")
    );
    for affix in ["content", "rpad", "time", "to", "from"] {
        let one = match affix {
            "content" | "rpad" => format!("<{affix}/>"),
            "time" => "<time stamp='x'/>".to_owned(),
            _ => format!("<{affix} jid='x'/>"),
        };
        let content = if affix == "content" { "" } else { "<content/>" };
        let xml = format!("<envelope xmlns='urn:xmpp:sce:1'>{content}{one}{one}</envelope>");
        assert_eq!(Envelope::parse(&xml).map(drop), dup(affix), "{xml}");
    }
}

#[test]
fn duplicate_ids() {
    assert_eq!(
        BundleElement::parse(&bundle2(
            "id='1'",
            &format!("<pk id='5'>{B4}</pk><pk id='6'>{B4}</pk><pk id='05'>{B4}</pk>")
        )),
        Err(StanzaError::DuplicateId {
            element: "pk",
            id: 5
        })
    );
    assert_eq!(
        BundleElement::parse(&format!(
            "<bundle xmlns='{O3}'><signedPreKeyPublic signedPreKeyId='1'/><signedPreKeySignature/>\
             <identityKey/><prekeys><preKeyPublic preKeyId='2'/><preKeyPublic preKeyId='2'/>\
             </prekeys></bundle>"
        )),
        Err(StanzaError::DuplicateId {
            element: "preKeyPublic",
            id: 2
        })
    );
    assert_eq!(
        DeviceListElement::parse(&format!(
            "<devices xmlns='{O2}'><device id='7'/><device id='8'/><device id='7'/></devices>"
        )),
        Err(StanzaError::DuplicateId {
            element: "device",
            id: 7
        })
    );
    // Duplicate recipient devices in <encrypted> are allowed: ids are random and may collide
    // across accounts.
    let e = EncryptedElement::parse(&enc2(&format!(
        "<keys jid='a@b'><key rid='3'>{B4}</key></keys><keys jid='c@d'><key rid='3'>{B4}</key></keys>"
    )))
    .unwrap();
    assert_eq!(e.keys.len(), 2);
}

#[test]
fn limit_values() {
    assert_eq!(Limit::InputBytes.max(), 262_144);
    assert_eq!(Limit::Depth.max(), 64);
    assert_eq!(Limit::Keys.max(), 10_000);
    assert_eq!(Limit::PreKeys.max(), 1_000);
    assert_eq!(Limit::Devices.max(), 1_000);
    assert_eq!(Limit::Nodes.max(), 40_000);
    assert_eq!(Limit::Attributes.max(), 64);
    assert_eq!(Limit::Namespaces.max(), 16);
    assert_eq!(
        StanzaError::TooLarge(Limit::Namespaces).to_string(),
        "too large: namespace prefixes in scope (at most 16)"
    );
    assert_eq!(
        StanzaError::TooLarge(Limit::Keys).to_string(),
        "too large: number of keys (at most 10000)"
    );
}

#[test]
fn input_size_limit() {
    let pad = " ".repeat(Limit::InputBytes.max());
    let big = format!("<devices xmlns='{O2}'/>{pad}");
    let too_large = Err(StanzaError::TooLarge(Limit::InputBytes));
    assert_eq!(DeviceListElement::parse(&big).map(drop), too_large);
    assert_eq!(EncryptedElement::parse(&big).map(drop), too_large);
    assert_eq!(BundleElement::parse(&big).map(drop), too_large);
    assert_eq!(Envelope::parse(&big).map(drop), too_large);
    // Exactly at the limit is fine.
    let head = format!("<devices xmlns='{O2}'/>");
    let exact = format!("{head}{}", " ".repeat(Limit::InputBytes.max() - head.len()));
    assert!(DeviceListElement::parse(&exact).is_ok());
}

#[test]
fn depth_limit() {
    let nest = |depth: usize| {
        let inner = "<envelope xmlns='urn:xmpp:sce:1'><content/></envelope>";
        let open = "<message>".repeat(depth);
        let close = "</message>".repeat(depth);
        format!("{open}{inner}{close}")
    };
    // The envelope must be the root, but depth is checked first, for any document.
    assert_eq!(
        Envelope::parse(&nest(64)),
        Err(StanzaError::TooLarge(Limit::Depth))
    );
    assert_eq!(
        Envelope::parse(&nest(62)),
        Err(StanzaError::MissingElement("envelope"))
    );
    let content_depth = |depth: usize| {
        format!(
            "<envelope xmlns='urn:xmpp:sce:1'><content>{}{}</content></envelope>",
            "<x>".repeat(depth),
            "</x>".repeat(depth)
        )
    };
    assert!(
        Envelope::parse(&content_depth(62)).is_ok(),
        "64 levels in all"
    );
    assert_eq!(
        Envelope::parse(&content_depth(63)),
        Err(StanzaError::TooLarge(Limit::Depth))
    );
}

#[test]
fn very_deep_input_neither_overflows_the_stack_nor_passes() {
    // ~240 KiB of nesting, far deeper than any recursion could survive on a test thread.
    let depth = 35_000;
    let xml = format!("{}{}", "<a>".repeat(depth), "</a>".repeat(depth));
    assert!(xml.len() <= Limit::InputBytes.max());
    assert_eq!(
        Envelope::parse(&xml),
        Err(StanzaError::TooLarge(Limit::Depth))
    );
    let unclosed = "<a>".repeat(80_000);
    assert!(EncryptedElement::parse(&unclosed).is_err());
}

#[test]
fn count_limits() {
    let keys = |n: usize| {
        enc2(&format!(
            "<keys jid='a@b'>{}</keys>",
            "<key rid='1'/>".repeat(n)
        ))
    };
    assert_eq!(
        EncryptedElement::parse(&keys(10_000)).unwrap().keys.len(),
        10_000
    );
    assert_eq!(
        EncryptedElement::parse(&keys(10_001)),
        Err(StanzaError::TooLarge(Limit::Keys))
    );
    let old_keys = format!(
        "<encrypted xmlns='{O3}'><header sid='1'>{}<iv/></header></encrypted>",
        "<key rid='1'/>".repeat(10_001)
    );
    assert_eq!(
        EncryptedElement::parse(&old_keys),
        Err(StanzaError::TooLarge(Limit::Keys))
    );

    let pre_keys = |n: usize| {
        bundle2(
            "id='1'",
            &(0..n)
                .map(|i| format!("<pk id='{i}'/>"))
                .collect::<String>(),
        )
    };
    assert_eq!(
        BundleElement::parse(&pre_keys(1_000))
            .unwrap()
            .pre_keys
            .len(),
        1_000
    );
    assert_eq!(
        BundleElement::parse(&pre_keys(1_001)),
        Err(StanzaError::TooLarge(Limit::PreKeys))
    );

    let devices = |n: usize| {
        format!(
            "<list xmlns='{O3}'>{}</list>",
            (1..=n)
                .map(|i| format!("<device id='{i}'/>"))
                .collect::<String>()
        )
    };
    assert_eq!(
        DeviceListElement::parse(&devices(1_000))
            .unwrap()
            .devices
            .len(),
        1_000
    );
    assert_eq!(
        DeviceListElement::parse(&devices(1_001)),
        Err(StanzaError::TooLarge(Limit::Devices))
    );
}

#[test]
fn errors_display_their_element() {
    assert_eq!(
        StanzaError::MissingElement("iv").to_string(),
        "missing element <iv>"
    );
    assert_eq!(
        StanzaError::MissingAttribute {
            element: "key",
            attribute: "rid"
        }
        .to_string(),
        "missing attribute 'rid' on <key>"
    );
    assert_eq!(
        StanzaError::DuplicateId {
            element: "device",
            id: 7
        }
        .to_string(),
        "duplicate id 7 in <device>"
    );
}
